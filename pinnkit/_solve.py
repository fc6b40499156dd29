"""The spec path: load a spec, build everything, train, and write the run directory.

``solve`` is what ``pinnkit solve`` runs and what a notebook calls. It writes (DESIGN.md §6)
``summary.json``, ``metrics.jsonl``, ``solution.npz``, ``plots/*.png``, ``checkpoint/`` and
``spec.resolved.yaml`` and returns a `Solution`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import platform
import sys
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import yaml

from .errors import DivergenceError, InterruptedRun, SpecError
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

__version__ = "0.1.0"


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


def _device() -> str:
    d = jax.devices()[0]
    kind = getattr(d, "device_kind", d.platform)
    return f"{d.platform}:{kind} x{len(jax.devices())}"


def _default_out(name: str) -> pathlib.Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return pathlib.Path("runs") / f"{name}-{stamp}"


class _Progress:
    """One line per log on a non-terminal; a rich progress bar on a terminal."""

    def __init__(self, total: int, name: str, enabled: bool):
        self.total, self.name, self.enabled = total, name, enabled
        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                transient=False,
            )
            self.task = self.bar.add_task(name, total=total, info="")
            self.bar.start()

    def __call__(self, entry: dict):
        if not self.enabled:
            return
        info = f"loss {entry['loss']:.3e}"
        errs = entry.get("errors") or {}
        for f, e in errs.items():
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

    def close(self):
        if self.bar is not None:
            self.bar.stop()


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
        run_dir = pathlib.Path(resume)
        resolved = run_dir / "spec.resolved.yaml"
        if not resolved.exists() or not (run_dir / "checkpoint" / "meta.json").exists():
            raise SpecError(
                f"{str(run_dir)!r} is not a pinnkit run directory with a checkpoint "
                "(expected spec.resolved.yaml and checkpoint/)",
                path="--resume",
            )
        meta_base = (
            json.loads((run_dir / "run.json").read_text())
            if (run_dir / "run.json").exists()
            else {}
        )
        loaded = load_spec(resolved, overrides, base_dir=meta_base.get("base_dir"))
    else:
        loaded = spec if hasattr(spec, "base_dir") else load_spec(spec, overrides)
        run_dir = pathlib.Path(out) if out is not None else _default_out(loaded.name)
    if not isinstance(loaded, LoadedSpec):  # a glioma or battery spec
        from ._glioma import LoadedGliomaSpec, solve_glioma
        from .battery.run import solve_battery

        run = solve_glioma if isinstance(loaded, LoadedGliomaSpec) else solve_battery
        return run(loaded, run_dir, resume=resume is not None, progress=progress, log=log)
    s, model_cfg = loaded.spec, loaded.model
    run_dir.mkdir(parents=True, exist_ok=True)
    dtype = dtype_of(s.train)
    problem = loaded.problem()
    key = jax.random.key(s.train.seed)
    k_model, k_train = jax.random.split(key)
    built = build_model(problem, model_cfg, dtype=dtype, key=k_model)
    phases = build_phases(s.train)
    objective = build_objective(problem, s.train, built, dtype)
    (run_dir / "spec.resolved.yaml").write_text(yaml.safe_dump(_resolved(loaded), sort_keys=False))
    (run_dir / "run.json").write_text(json.dumps({"base_dir": str(loaded.base_dir.resolve())}))
    total = sum(p.steps for p in phases)
    bar = _Progress(total, s.name, progress)
    metrics = open(run_dir / "metrics.jsonl", "a" if resume else "w")

    def on_log(entry):
        metrics.write(json.dumps(entry) + "\n")
        metrics.flush()
        bar(entry)
        if log is not None:
            log(entry)

    try:
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
            checkpoint=Checkpointer(run_dir / "checkpoint"),
            checkpoint_every=s.train.checkpoint_every,
            resume=resume is not None,
            log=on_log,
            devices=s.train.devices,
            key=k_train,
        )
    finally:
        bar.close()
        metrics.close()
    if resume is not None:
        record.history = _read_history(run_dir / "metrics.jsonl")
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


def _read_history(path: pathlib.Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_header(problem: str, backend: str, status: str, dtype: str, seed) -> dict:
    """The keys of summary.json that every kind of run shares (DESIGN.md §6) but its steps,
    times, losses, errors and unknowns."""
    return {
        "problem": problem,
        "backend": backend,
        "status": status,
        "device": _device(),
        "dtype": dtype,
        "seed": seed,
        "pinnkit_version": __version__,
        "python": platform.python_version(),
        "jax_version": jax.__version__,
    }


def summary_of(solution: Solution, errors: dict) -> dict:
    r = solution.record
    last = r.history[-1] if r.history else {}
    summary = {
        "problem": solution.problem.name,
        "backend": solution.backend,
        "status": r.status,
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
        "device": _device(),
        "dtype": solution.dtype,
        "seed": solution.seed,
        "pinnkit_version": __version__,
        "python": platform.python_version(),
        "jax_version": jax.__version__,
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
    problem = solution.problem
    errors = solution.errors() if problem.reference is not None else {}
    summary = summary_of(solution, errors)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
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
    np.savez_compressed(run_dir / "solution.npz", **arrays)
    with open(run_dir / "model.eqx", "wb") as f:
        eqx.tree_serialise_leaves(f, (solution.model, solution.unknowns))
    solution.plot(run_dir / "plots")
    return summary


def load_run(run_dir: str | os.PathLike) -> Solution:
    """The `Solution` saved in a run directory (its model, history and status)."""
    run_dir = pathlib.Path(run_dir)
    needed = ["spec.resolved.yaml", "model.eqx", "summary.json"]
    missing = [n for n in needed if not (run_dir / n).exists()]
    if missing:
        raise SpecError(
            f"{str(run_dir)!r} is not a finished pinnkit run directory (missing {missing})",
            path="run",
        )
    meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    loaded = load_spec(run_dir / "spec.resolved.yaml", base_dir=meta.get("base_dir"))
    summary = json.loads((run_dir / "summary.json").read_text())
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
        history=_read_history(run_dir / "metrics.jsonl"),
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

    if is_glioma_run(run_dir) or (pathlib.Path(run_dir) / "surrogate.json").is_file():
        path = pathlib.Path(run_dir) / "summary.json"
        if not path.is_file():
            raise SpecError(f"{str(run_dir)!r} has no summary.json", path="run")
        return json.loads(path.read_text())
    solution = load_run(run_dir)
    return write_outputs(solution, pathlib.Path(run_dir))
