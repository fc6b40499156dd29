"""Atomic checkpoints of the training state.

A checkpoint directory holds ``state-<step>.eqx`` (the pytree's leaves, Equinox
serialisation) and ``meta.json`` naming it. Each file is written to a temporary name and
moved into place with `os.replace`, and ``meta.json`` last: at every moment the directory
names a complete state, so an interrupted write never loses the previous checkpoint.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

import equinox as eqx


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


class Checkpointer:
    """Saves and restores a training state pytree in a directory.

    Arguments:
        directory: where the checkpoint lives (created if missing).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = pathlib.Path(directory)

    @property
    def meta_path(self) -> pathlib.Path:
        return self.directory / "meta.json"

    def exists(self) -> bool:
        return self.meta_path.exists()

    def save(self, state, meta: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"state-{int(meta['step'])}.eqx"
        atomic_write(self.directory / name, lambda f: eqx.tree_serialise_leaves(f, state))
        meta = {**meta, "state": name}
        atomic_write(self.meta_path, lambda f: f.write(json.dumps(meta, indent=1).encode()))
        for old in self.directory.glob("state-*.eqx"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def meta(self) -> dict:
        return json.loads(self.meta_path.read_text())

    def load(self, template):
        """The saved state, read into the structure of `template`, and its metadata."""
        meta = self.meta()
        with open(self.directory / meta["state"], "rb") as f:
            state = eqx.tree_deserialise_leaves(f, template)
        return state, meta
