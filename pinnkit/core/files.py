"""Files written so that a kill at any moment leaves the old version or the new, never half."""

from __future__ import annotations

import os
import pathlib
import tempfile


def atomic_write(path: str | os.PathLike, write) -> None:
    """Write a file so that it is either the old one or the whole new one, never a part.

    Arguments:
        path: the file.
        write: ``write(f)`` writes the contents into a binary file object (a temporary file
            in the same folder, moved onto `path` with `os.replace` once flushed to disk).
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def is_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a regular file; False, not an exception, for a name the system
    cannot look up (too long, a NUL byte)."""
    try:
        return pathlib.Path(path).is_file()
    except (OSError, ValueError):
        return False
