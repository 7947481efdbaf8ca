"""What the command-line entry points share: one-line errors with a non-zero exit, and atomic output."""

from __future__ import annotations

import logging
import os
import sys
import tempfile

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


def check_output(output: str, inputs=()) -> None:
    """Refuses, before any work, an output the run could not write or must not write.

    One `error:` line and exit status 2 if `output` is a folder, is one of `inputs` (the same file, through a
    symlink or a hard link too: writing it would destroy the input), or lies in a folder that is missing or
    that this process cannot create files in. None entries of `inputs` are skipped.
    """
    if os.path.isdir(output):
        fail(f"{output}: is a directory", 2)
    for source in inputs:
        if source and _same_file(output, source):
            fail(f"{output}: is the input {source}; writing it would destroy the input: choose another output", 2)
    folder = os.path.dirname(output) or "."
    if not os.path.isdir(folder):
        fail(f"{output}: folder {folder} does not exist", 2)
    try:  # the only honest test of writability (permissions, read-only mounts, ACLs): create a file there
        tempfile.TemporaryFile(dir=folder).close()  # unnamed where the OS allows it: nothing is left behind
    except OSError as e:
        fail(f"{output}: cannot write in folder {folder} ({e.strerror or e})", 2)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False
