"""The run directory of DESIGN.md §6, written in one place for every kind of run.

`RunDirectory` owns the folder a run writes: ``spec.resolved.yaml`` and ``run.json`` (the
folder the spec's relative paths start from), ``metrics.jsonl`` (through `RunLog`, which also
drives the `Progress` display), ``checkpoint/``, and ``summary.json`` (whose shared keys
`run_header` gives), including the partial summary of a run that diverged or was interrupted.
The PDE runner (`pinnkit._solve`), the glioma runner (`pinnkit._glioma`) and the battery
runner (`pinnkit.battery.run`) all write through it; it imports none of them.

Every file is written atomically (`pinnkit.train.checkpoint.atomic_write`): a run killed at
any moment leaves each file either as it was or whole.

On resume the metrics log is cut back to the checkpoint's step before new rows are appended:
the rows a killed run logged after its last checkpoint are trained again, and would otherwise
appear twice.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import shutil
import sys
from collections.abc import Callable

from .._version import __version__
from ..core.files import atomic_write
from ..errors import SpecError


def device_description() -> str:
    """``platform:kind xN`` of the devices JAX computes on, as summary.json's ``"device"``."""
    import jax

    d = jax.devices()[0]
    kind = getattr(d, "device_kind", d.platform)
    return f"{d.platform}:{kind} x{len(jax.devices())}"


def run_header(problem: str, backend: str, status: str, dtype: str, seed) -> dict:
    """The keys of summary.json that every kind of run shares (DESIGN.md §6) but its steps,
    times, losses, errors and unknowns."""
    import jax

    return {
        "problem": problem,
        "backend": backend,
        "status": status,
        "device": device_description(),
        "dtype": dtype,
        "seed": seed,
        "pinnkit_version": __version__,
        "python": platform.python_version(),
        "jax_version": jax.__version__,
    }


class Progress:
    """The progress of a run: one line per logged entry on a non-terminal, a rich progress
    bar on a terminal.

    Arguments:
        total: the number of steps the run ends at.
        name: the run's name, shown before each line.
        enabled: False shows nothing.
    """

    def __init__(self, total: int, name: str, enabled: bool = True):
        self.total, self.name, self.enabled = total, name, enabled
        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich import progress as rp

            self.bar = rp.Progress(
                rp.TextColumn("[bold]{task.description}"),
                rp.BarColumn(),
                rp.TextColumn("{task.completed}/{task.total}"),
                rp.TimeRemainingColumn(),
                rp.TextColumn("{task.fields[info]}"),
                transient=False,
            )
            self.task = self.bar.add_task(name, total=total, info="")
            self.bar.start()

    def __call__(self, entry: dict) -> None:
        if not self.enabled:
            return
        info = f"loss {entry['loss']:.3e}"
        for f, e in (entry.get("errors") or {}).items():
            if "rel_l2" in e:
                info += f"  {f} rel.L2 {e['rel_l2']:.2e}"
        if self.bar is not None:
            self.bar.update(self.task, completed=entry["step"], info=info)
        else:
            print(
                f"[{self.name}] step {entry['step']}/{self.total} {entry['phase']}: {info}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class RunLog:
    """The callback a runner hands its training loop: each entry (a dict with ``"step"``,
    ``"phase"``, ``"loss"``) goes to ``metrics.jsonl`` (flushed), to the progress display and
    to the caller's own callback. Made by `RunDirectory.open_log`; a context manager that
    closes the file and the display."""

    def __init__(self, file, progress: Progress, log: Callable[[dict], None] | None):
        self._file, self._progress, self._log = file, progress, log

    def __call__(self, entry: dict) -> None:
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        self._progress(entry)
        if self._log is not None:
            self._log(entry)

    def close(self) -> None:
        self._progress.close()
        self._file.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _text(text: str):
    return lambda f: f.write(text.encode())


def _rows(path: pathlib.Path) -> list[dict]:
    """The rows of a JSON-lines file; a last line cut short by a kill is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class RunDirectory:
    """The folder of one run (DESIGN.md §6).

    Arguments:
        path: the folder (created by `create`).

    Example:
        >>> run = RunDirectory("runs/poisson")
        >>> run.create(resume=False)
        >>> run.write_spec(resolved, base_dir=".")
        >>> with run.open_log(total=1000, name="poisson") as log:
        ...     train(..., log=log, checkpoint=Checkpointer(run.checkpoint))
        >>> run.write_summary({**run_header("poisson", "mlp", "ok", "float32", 0), ...})
    """

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)

    @classmethod
    def default(cls, name: str) -> RunDirectory:
        """``runs/<name>-<date>-<time>``, where a run goes when no folder is given."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        return cls(pathlib.Path("runs") / f"{name}-{stamp}")

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    # --- the files ------------------------------------------------------------------------
    @property
    def checkpoint(self) -> pathlib.Path:
        """The checkpoint folder (``checkpoint/``; its ``meta.json`` is written last)."""
        return self.path / "checkpoint"

    @property
    def metrics_path(self) -> pathlib.Path:
        return self.path / "metrics.jsonl"

    @property
    def summary_path(self) -> pathlib.Path:
        return self.path / "summary.json"

    @property
    def spec_path(self) -> pathlib.Path:
        return self.path / "spec.resolved.yaml"

    def write(self, name: str, write: Callable) -> pathlib.Path:
        """Write the file `name` (relative to the run folder) atomically: ``write(f)`` writes
        into a binary file object. Returns the file's path."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
        return path

    def write_json(self, name: str, data) -> pathlib.Path:
        return self.write(name, _text(json.dumps(data, indent=2) + "\n"))

    # --- start and resume -----------------------------------------------------------------
    def create(self, *, resume: bool = False) -> None:
        """Make the folder. A fresh run (not `resume`) drops a checkpoint left by an earlier
        run in the same folder, so that a later ``--resume`` cannot continue that one."""
        self.path.mkdir(parents=True, exist_ok=True)
        if not resume:
            shutil.rmtree(self.checkpoint, ignore_errors=True)

    def check_resumable(self) -> None:
        """Raise `SpecError` (for ``--resume``) unless this is a run folder with a
        checkpoint."""
        if not self.spec_path.exists() or not (self.checkpoint / "meta.json").exists():
            raise SpecError(
                f"{str(self.path)!r} is not a pinnkit run directory with a checkpoint "
                "(expected spec.resolved.yaml and checkpoint/)",
                path="--resume",
            )
        meta = self.checkpoint_meta()
        if not isinstance(meta, dict) or not isinstance(meta.get("step"), int):
            raise SpecError(
                f"{str(self.checkpoint / 'meta.json')!r} is not a pinnkit checkpoint's "
                "meta.json; start the run afresh (without --resume)",
                path="--resume",
            )

    def write_spec(self, resolved: dict, *, base_dir: str | os.PathLike) -> None:
        """``spec.resolved.yaml`` (the spec with every default filled in, what ``--resume``
        reads) and ``run.json`` (the folder its relative file paths start from)."""
        import yaml

        self.path.mkdir(parents=True, exist_ok=True)
        self.write("spec.resolved.yaml", _text(yaml.safe_dump(resolved, sort_keys=False)))
        info = {"base_dir": str(pathlib.Path(base_dir).resolve())}
        self.write("run.json", _text(json.dumps(info)))

    def base_dir(self) -> str | None:
        """The folder the resolved spec's relative paths start from (None: not recorded)."""
        path = self.path / "run.json"
        return json.loads(path.read_text()).get("base_dir") if path.exists() else None

    def checkpoint_meta(self) -> dict | None:
        """The checkpoint's ``meta.json`` (None: no checkpoint)."""
        path = self.checkpoint / "meta.json"
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            raise SpecError(
                f"{str(path)!r} cannot be read: the checkpoint is not pinnkit's or was cut "
                "short; start the run afresh (without --resume)",
                path="--resume",
            ) from None

    # --- the metrics log ------------------------------------------------------------------
    def open_log(
        self,
        *,
        total: int,
        name: str,
        progress: bool = True,
        log: Callable[[dict], None] | None = None,
        resume: bool = False,
        resume_step: int | None = None,
    ) -> RunLog:
        """Open ``metrics.jsonl`` and the progress display.

        Arguments:
            total: the step the run ends at (for the display).
            name: the run's name (for the display).
            progress: show progress.
            log: a further callback for each entry.
            resume: continue the existing log instead of starting a new one. Its rows past
                `resume_step` are dropped first (written atomically): the run trains those
                steps again, so a step never appears twice.
            resume_step: the step the run continues from, in the log's numbering (default:
                the checkpoint's ``meta.json`` ``"step"``; 0 without a checkpoint).

        Returns:
            The `RunLog`, to pass as the training loop's callback and to close after it.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if resume:
            if resume_step is None:
                meta = self.checkpoint_meta() or {}
                resume_step = int(meta.get("step", 0))
            self.truncate_metrics(resume_step)
            file = open(self.metrics_path, "a")
        else:
            file = open(self.metrics_path, "w")
        return RunLog(file, Progress(total, name, progress), log)

    def truncate_metrics(self, step: int) -> None:
        """Drop the rows of ``metrics.jsonl`` whose step is past `step` (and a last line cut
        short), keeping the file whole at every moment."""
        if not self.metrics_path.exists():
            return
        kept = [r for r in _rows(self.metrics_path) if not r.get("step", 0) > step]
        self.write("metrics.jsonl", _text("".join(json.dumps(r) + "\n" for r in kept)))

    def history(self) -> list[dict]:
        """The rows of ``metrics.jsonl``, in order."""
        return _rows(self.metrics_path)

    # --- the summary ----------------------------------------------------------------------
    def write_summary(self, summary: dict) -> None:
        """``summary.json``, atomically."""
        self.write_json("summary.json", summary)

    def read_summary(self) -> dict:
        return json.loads(self.summary_path.read_text())

    def write_partial(self, header: dict, message: str, *, steps: int | None = None) -> dict:
        """The summary of a run that stopped early (diverged or interrupted): `header`
        (`run_header`, with its status), the steps it got to and `message`. The state is in
        the checkpoint.

        Arguments:
            header: the summary's shared keys, ``"status"`` among them.
            message: what happened and what to do.
            steps: the steps done (default: the checkpoint's ``meta.json`` ``"step"``, 0
                without one).
        """
        if steps is None:
            steps = int((self.checkpoint_meta() or {}).get("step", 0))
        summary = {**header, "steps": steps, "message": message}
        self.write_summary(summary)
        return summary

    # --- checkpoints written as folders ---------------------------------------------------
    def save_checkpoint_folder(
        self, name: str, write: Callable[[pathlib.Path], None], meta: dict
    ) -> None:
        """A checkpoint whose state is a folder of files that `write` writes: it goes into
        ``checkpoint/<name>/``, then ``meta.json`` naming it is replaced (atomically, last),
        then the other state folders are removed. A kill at any point leaves ``meta.json``
        naming a complete folder, the new or the previous one."""
        folder = self.checkpoint / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        write(folder)
        meta = {**meta, "folder": name}
        atomic_write(self.checkpoint / "meta.json", _text(json.dumps(meta, indent=1)))
        for old in self.checkpoint.iterdir():
            if old.is_dir() and old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def checkpoint_folder(self) -> pathlib.Path | None:
        """The folder `save_checkpoint_folder` last completed (a checkpoint written before
        folders were named: ``checkpoint/`` itself); None without a checkpoint."""
        meta = self.checkpoint_meta()
        if meta is None:
            return None
        return self.checkpoint / meta["folder"] if "folder" in meta else self.checkpoint
