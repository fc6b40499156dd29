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

from .._version import __version__
from ..core.files import atomic_write as atomic_write
from ..errors import SpecError


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
        meta = {**meta, "state": name, "pinnkit_version": __version__}
        atomic_write(self.meta_path, lambda f: f.write(json.dumps(meta, indent=1).encode()))
        for old in self.directory.glob("state-*.eqx"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def meta(self) -> dict:
        """``meta.json``; a `SpecError` (for ``--resume``) if it cannot be read."""
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as e:
            raise SpecError(
                f"the checkpoint's {str(self.meta_path)!r} cannot be read ({type(e).__name__}): "
                "it is not a pinnkit checkpoint, or was cut short; start the run afresh",
                path="--resume",
            ) from None
        if not isinstance(meta, dict) or not isinstance(meta.get("step"), int):
            raise SpecError(
                f"{str(self.meta_path)!r} is not a pinnkit checkpoint's meta.json (no step)",
                path="--resume",
            )
        return meta

    def load(self, template):
        """The saved state, read into the structure of `template`, and its metadata. A
        state file that is missing, cut short or from a run of another shape (another pinnkit
        version, another model) is a `SpecError` that says so."""
        meta = self.meta()
        path = self.directory / str(meta.get("state", ""))
        try:
            with open(path, "rb") as f:
                state = eqx.tree_deserialise_leaves(f, template)
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is refused alike
            saved = meta.get("pinnkit_version")
            other = (
                f"; it was written by pinnkit {saved}, this is {__version__}"
                if saved is not None and saved != __version__
                else ""
            )
            raise SpecError(
                f"the checkpoint {str(path)!r} cannot be read into this run's state "
                f"({type(e).__name__}: {str(e)[:120]}){other}: it was cut short or comes from "
                "another spec or version; start the run afresh (without --resume)",
                path="--resume",
            ) from None
        return state, meta
