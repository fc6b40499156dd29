"""The spec path: load a spec, build everything, train, and write the run directory.

``solve`` is what ``pinnkit solve`` runs and what a notebook calls. It writes (DESIGN.md §6)
``summary.json``, ``metrics.jsonl``, ``solution.npz``, ``plots/*.png``, ``checkpoint/`` and
``spec.resolved.yaml`` and returns a `Solution`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._version import __version__ as __version__
from .errors import DivergenceError, InterruptedRun, SpecError
from .report.rundir import RunDirectory, run_header
from .spec.battery import is_battery_spec
from .spec.build import (
    build_causal,
    build_model,
    build_objective,
    build_phases,
    build_problem,
    build_weighting,
    dtype_of,
    phase_configs,
)
from .spec.glioma import is_glioma_spec
from .spec.loader import apply_overrides, read_yaml, validate
from .spec.schema import ModelConfig, Spec
from .train.checkpoint import Checkpointer
from .train.solution import Solution, evaluate_fields, make_evaluator, scalars
from .train.trainer import Record, train


@dataclasses.dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with its model config and the folder relative paths start from."""

    spec: Spec
    model: ModelConfig
    data: dict
    base_dir: pathlib.Path

    @property
    def name(self) -> str:
        return self.spec.name

    def problem(self):
        return build_problem(self.spec, base_dir=self.base_dir)


def load_spec(
    source: str | os.PathLike | dict, overrides: Sequence[str] = (), *, base_dir=None
) -> LoadedSpec:
    """Read and validate a spec from a YAML file or a dict (the same keys as the YAML).

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
    if is_glioma_spec(data):  # a patient's scan, solved by GliODIL (pinnkit._glioma)
        from ._glioma import load_glioma_spec

        return load_glioma_spec(data, lines, base)
    if is_battery_spec(data):  # the SPM surrogate (pinnkit.battery.run)
        from .battery.run import load_battery_spec

        return load_battery_spec(data, lines, base)
    spec, model = validate(data, lines)
    loaded = LoadedSpec(spec, model, data, base)
    # Build once so every expression, name and optimizer is checked before any training.
    loaded.problem()
    build_phases(spec.train)
    return loaded


def solve(
    spec: LoadedSpec | str | os.PathLike | dict,
    *,
    out: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    log: Callable[[dict], None] | None = None,
) -> Solution:
    """Solve a spec and write its run directory.

    Arguments:
        spec: a `LoadedSpec`, a YAML path or a dict.
        out: the run directory (default ``runs/<name>-<time>``).
        overrides: ``key.path=value`` overrides.
        resume: a run directory to continue (its resolved spec, with `overrides` applied).
        progress: print progress.
        log: an extra callback for each logged chunk.

    Returns:
        The `Solution` (for a glioma spec a `pinnkit._glioma.GliomaRun`, for a battery spec
        a `pinnkit.battery.run.BatteryRun`). A diverged run
        raises `DivergenceError` and an interrupted one `InterruptedRun` after writing their
        outputs (the solution is their ``.solution``).
    """
    if resume is not None:
        rundir = RunDirectory(resume)
        rundir.check_resumable()
        loaded = load_spec(rundir.spec_path, overrides, base_dir=rundir.base_dir())
    else:
        loaded = spec if hasattr(spec, "base_dir") else load_spec(spec, overrides)
        rundir = RunDirectory(out) if out is not None else RunDirectory.default(loaded.name)
    run_dir = rundir.path
    if not isinstance(loaded, LoadedSpec):  # a glioma or battery spec
        from ._glioma import LoadedGliomaSpec, solve_glioma
        from .battery.run import solve_battery

        run = solve_glioma if isinstance(loaded, LoadedGliomaSpec) else solve_battery
        return run(loaded, run_dir, resume=resume is not None, progress=progress, log=log)
    s, model_cfg = loaded.spec, loaded.model
    rundir.create(resume=resume is not None)
    dtype = dtype_of(s.train)
    problem = loaded.problem()
    key = jax.random.key(s.train.seed)
    k_model, k_train = jax.random.split(key)
    built = build_model(problem, model_cfg, dtype=dtype, key=k_model)
    phases = build_phases(s.train)
    objective = build_objective(problem, s.train, built, dtype)
    rundir.write_spec(_resolved(loaded), base_dir=loaded.base_dir)
    total = sum(p.steps for p in phases)
    on_log = rundir.open_log(
        total=total, name=s.name, progress=progress, log=log, resume=resume is not None
    )
    with on_log:
        model, unknowns, record = train(
            problem,
            built.model,
            phases=phases,
            objective=objective,
            weighting=build_weighting(s.train),
            causal=build_causal(s.train, problem),
            resample_every=s.train.points.resample_every,
            chunk=s.train.log_every,
            eval_every=s.train.eval_every,
            evaluate=make_evaluator(problem),
            checkpoint=Checkpointer(rundir.checkpoint),
            checkpoint_every=s.train.checkpoint_every,
            resume=resume is not None,
            log=on_log,
            devices=s.train.devices,
            key=k_train,
        )
    if resume is not None:
        record.history = rundir.history()
    model = _rayleigh_ritz(problem, model, record)
    solution = Solution(
        problem,
        model,
        dict(unknowns),
        record,
        model_cfg.backend,
        s.train.dtype,
        s.train.seed,
        run_dir,
    )
    write_outputs(solution, run_dir)
    if record.status == "diverged":
        err = DivergenceError(f"{record.message} Outputs are in {run_dir}.")
        err.solution = solution
        raise err
    if record.status == "interrupted":
        err = InterruptedRun(f"{record.message}: pinnkit solve --resume {run_dir}")
        err.solution = solution
        raise err
    return solution


def _rayleigh_ritz(problem, model, record):
    """An eigenvalue problem with orthonormal states ends with a Rayleigh–Ritz step: the
    states are rotated within their span to diagonalise ``-Δ + V`` (`Orthonormal.ritz`)."""
    from .backends._base import Orthonormal

    if problem.potential is None or not isinstance(model, Orthonormal):
        return model
    if record.status == "diverged":
        return model
    rotated, _ = model.ritz(problem.potential_at)
    return rotated


def _resolved(loaded: LoadedSpec) -> dict:
    data = loaded.spec.model_dump(mode="json", exclude_none=True)
    data["model"] = loaded.model.model_dump(mode="json", exclude_none=True)
    # Phases written out, so `--resume DIR --set train.steps=N` extends the last one.
    train = data["train"]
    train.pop("optimizer", None)
    train.pop("steps", None)
    train["phases"] = [
        p.model_dump(mode="json", exclude_none=True) for p in phase_configs(loaded.spec.train)
    ]
    return data


def summary_of(solution: Solution, errors: dict) -> dict:
    """The summary.json of a PDE run (DESIGN.md §6)."""
    r = solution.record
    last = r.history[-1] if r.history else {}
    summary = {
        **run_header(
            solution.problem.name, solution.backend, r.status, solution.dtype, solution.seed
        ),
        "steps": r.steps,
        "wall_s": round(r.wall_s, 3),
        "compile_s": round(r.compile_s, 3),
        "steps_per_s": round(r.steps_per_s, 3) if np.isfinite(r.steps_per_s) else None,
        "loss": {"total": last.get("loss"), **last.get("terms", {})},
        "errors": {
            k: v
            for k, v in errors.items()
            if k not in solution.problem.unknowns and k not in solution.problem.eigenvalues
        },
        "unknowns": {k: float(v) for k, v in scalars(solution.problem, solution.unknowns).items()},
    }
    if solution.problem.eigenvalues:
        summary["eigenvalues"] = solution.eigenvalues()
        true = solution.problem.true_unknowns
        if all(e in true for e in solution.problem.eigenvalues):
            ref = sorted(true[e] for e in solution.problem.eigenvalues)
            summary["eigenvalue_errors"] = [
                abs(e - r) / max(abs(r), 1e-300) for e, r in zip(summary["eigenvalues"], ref)
            ]
    named = solution.integrals()
    if named:
        summary["integrals"] = named
    unknown_errors = {k: v for k, v in errors.items() if k in solution.problem.unknowns}
    if unknown_errors:
        summary["unknown_errors"] = unknown_errors
    if r.message:
        summary["message"] = r.message
    return summary


def write_outputs(solution: Solution, run_dir: pathlib.Path) -> dict:
    """summary.json, solution.npz and plots/ for a solution."""
    rundir = RunDirectory(run_dir)
    problem = solution.problem
    errors = solution.errors() if problem.reference is not None else {}
    summary = summary_of(solution, errors)
    rundir.write_summary(summary)
    arrays = {}
    if problem.reference is not None:
        ref = problem.reference()
        pts = ref.points
        arrays.update({f"reference_{f}": np.asarray(v) for f, v in ref.values.items()})
        if ref.grid_shape is not None:
            arrays["grid_shape"] = np.asarray(ref.grid_shape)
    else:
        from .spec.build import default_grid

        shape = tuple(min(n, 101) for n in default_grid(problem.box))
        pts = problem.box.grid(shape)
        arrays["grid_shape"] = np.asarray(shape)
    arrays["points"] = pts
    arrays.update({c: pts[:, i] for i, c in enumerate(problem.coords)})
    arrays.update(evaluate_fields(solution.model, problem, pts))
    for f in problem.complex_fields:  # saved as h_re, h_im; the modulus too
        re, im = problem.complex.parts(f)
        arrays[f"|{f}|"] = np.hypot(arrays[re], arrays[im])
    rundir.write("solution.npz", lambda f: np.savez_compressed(f, **arrays))
    rundir.write(
        "model.eqx", lambda f: eqx.tree_serialise_leaves(f, (solution.model, solution.unknowns))
    )
    solution.plot(rundir.path / "plots")
    return summary


def load_run(run_dir: str | os.PathLike) -> Solution:
    """The `Solution` saved in a run directory (its model, history and status)."""
    rundir = RunDirectory(run_dir)
    run_dir = rundir.path
    needed = ["spec.resolved.yaml", "model.eqx", "summary.json"]
    missing = [n for n in needed if not (run_dir / n).exists()]
    if missing:
        raise SpecError(
            f"{str(run_dir)!r} is not a finished pinnkit run directory (missing {missing})",
            path="run",
        )
    loaded = load_spec(rundir.spec_path, base_dir=rundir.base_dir())
    summary = rundir.read_summary()
    s = loaded.spec
    dtype = dtype_of(s.train)
    problem = loaded.problem()
    k_model, _ = jax.random.split(jax.random.key(s.train.seed))
    built = build_model(problem, loaded.model, dtype=dtype, key=k_model)
    unknowns = jax.tree.map(lambda v: jnp.asarray(v, dtype), dict(problem.unknowns))
    with open(run_dir / "model.eqx", "rb") as f:
        model, unknowns = eqx.tree_deserialise_leaves(f, (built.model, unknowns))
    record = Record(
        status=summary["status"],
        steps=summary["steps"],
        wall_s=summary["wall_s"],
        compile_s=summary["compile_s"],
        history=rundir.history(),
        message=summary.get("message", ""),
    )
    if summary.get("steps_per_s"):
        record.steps_timed = summary["steps"]
        record.train_s = summary["steps"] / summary["steps_per_s"]
    return Solution(
        problem, model, unknowns, record, loaded.model.backend, s.train.dtype, s.train.seed, run_dir
    )


def report(run_dir: str | os.PathLike) -> dict:
    """Re-render a run's plots and solution file from its saved model; return its summary.
    A glioma or battery run's outputs are written once, when it finishes: its summary is
    returned."""
    from ._glioma import is_glioma_run

    rundir = RunDirectory(run_dir)
    if is_glioma_run(run_dir) or (rundir.path / "surrogate.json").is_file():
        if not rundir.summary_path.is_file():
            raise SpecError(f"{str(run_dir)!r} has no summary.json", path="run")
        return rundir.read_summary()
    solution = load_run(run_dir)
    return write_outputs(solution, pathlib.Path(run_dir))
