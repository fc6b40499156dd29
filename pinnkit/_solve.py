"""The spec path: find the spec's family, set it up, train, and write the run directory.

``solve`` is what ``pinnkit solve`` runs and what a notebook calls. It does the same for every
method family (`pinnkit.families`: PDE problems on every backend, glioma, battery): the
family validates and sets up, trains through `pinnkit.train.train`, and writes its outputs
into one `RunDirectory` (DESIGN.md §6).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Sequence

from ._version import __version__ as __version__
from .errors import DivergenceError, InterruptedRun
from .families import AbstractFamily, family_of
from .families.pde import PDEFamily
from .families.pde import load_run as load_run
from .families.pde import summary_of as summary_of
from .families.pde import write_outputs as write_outputs
from .report.rundir import RunDirectory
from .report.rundir import run_header as run_header
from .spec.loader import apply_overrides, read_yaml

LoadedSpec = PDEFamily  # the name a PDE spec had before the families


def load_spec(
    source: str | os.PathLike | dict, overrides: Sequence[str] = (), *, base_dir=None
) -> AbstractFamily:
    """Read and validate a spec from a YAML file or a dict (the same keys as the YAML): the
    spec of its family (`pinnkit.families.family_of`), with every file it names read and every
    name checked.

    Arguments:
        source: a path to a YAML file, or a dict.
        overrides: ``"key.path=value"`` strings, as ``--set`` on the command line.
        base_dir: where relative file paths in the spec start (default: the file's folder).
    """
    if isinstance(source, dict):
        data, lines = source, {}
        base = pathlib.Path(base_dir or ".")
    else:
        data, lines = read_yaml(source)
        base = pathlib.Path(base_dir or pathlib.Path(source).parent)
    data = apply_overrides(data, list(overrides))
    return family_of(data).load(data, lines, base)


def solve(
    spec: AbstractFamily | str | os.PathLike | dict,
    *,
    out: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    log: Callable[[dict], None] | None = None,
):
    """Solve a spec and write its run directory.

    Arguments:
        spec: a loaded spec (`load_spec`), a YAML path or a dict.
        out: the run directory (default ``runs/<name>-<time>``).
        overrides: ``key.path=value`` overrides.
        resume: a run directory to continue (its resolved spec, with `overrides` applied).
        progress: print progress.
        log: an extra callback for each logged chunk.

    Returns:
        What the family's outputs are: a `Solution` for a PDE spec, a
        `pinnkit.families.glioma.GliomaRun` for a glioma spec, a
        `pinnkit.families.battery.BatteryRun` for a battery spec; each has ``describe()``.
        A diverged run raises `DivergenceError` and an interrupted one `InterruptedRun` after
        writing their outputs (what was written is their ``.solution``).
    """
    if resume is not None:
        rundir = RunDirectory(resume)
        rundir.check_resumable()
        loaded = load_spec(rundir.spec_path, overrides, base_dir=rundir.base_dir())
    else:
        loaded = spec if isinstance(spec, AbstractFamily) else load_spec(spec, overrides)
        rundir = RunDirectory(out) if out is not None else RunDirectory.default(loaded.name)
    resuming = resume is not None
    rundir.create(resume=resuming)
    rundir.write_spec(loaded.resolved(), base_dir=loaded.base_dir)
    on_log = rundir.open_log(
        total=loaded.total_steps(),
        name=loaded.name,
        progress=progress,
        log=log,
        resume=resuming,
        resume_step=loaded.resume_step(rundir) if resuming else None,
    )
    with on_log:
        outcome = loaded.run(rundir, resume=resuming, log=on_log)
    result = loaded.write_outputs(outcome, rundir)
    if outcome.status == "diverged":
        err = DivergenceError(f"{outcome.message.rstrip('.')}. Outputs are in {rundir.path}.")
        err.solution = result
        raise err
    if outcome.status == "interrupted":
        err = InterruptedRun(f"{outcome.message}: pinnkit solve --resume {rundir.path}")
        err.solution = result
        raise err
    return result


def report(run_dir: str | os.PathLike) -> dict:
    """``pinnkit report``: re-render a run's plots and solution file from its saved model where
    its family can (a PDE run), and return its summary (`AbstractFamily.report`)."""
    rundir = RunDirectory(run_dir)
    if not rundir.spec_path.is_file():
        from .errors import SpecError

        raise SpecError(
            f"{str(run_dir)!r} is not a finished pinnkit run directory (missing "
            "['spec.resolved.yaml'])",
            path="run",
        )
    data, _ = read_yaml(rundir.spec_path)
    return family_of(data).report(rundir)
