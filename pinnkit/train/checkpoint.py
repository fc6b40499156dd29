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

import equinox as eqx

from ..core.files import atomic_write as atomic_write


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
