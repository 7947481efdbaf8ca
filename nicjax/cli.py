"""What the command-line entry points share: one-line errors with a non-zero exit, and atomic output."""

from __future__ import annotations

import logging
import sys

from absl import app

from nicjax.errors import NicError


def fail(message: str, code: int = 1):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def run(main):
    """absl's app.run, with user errors reported as one line on stderr and exit status 1."""
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU found" noise on CPU hosts

    def guarded(argv):
        try:
            return main(argv)
        except NicError as e:
            fail(str(e))
        except OSError as e:  # unreadable/unwritable paths: name the path, skip the traceback
            fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "))

    app.run(guarded)


def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise NicError(f"{path}: no such file")
    except IsADirectoryError:
        raise NicError(f"{path}: is a directory")
