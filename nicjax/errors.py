"""The one exception type users see: its message is a single line that says what is wrong with their input."""


class NicError(Exception):
    """Bad input: a missing or malformed file, a damaged bitstream, a geometry that does not match."""
