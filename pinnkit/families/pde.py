"""The PDE family: a problem (domain, fields, equation, conditions, reference) solved by any
backend (mlp, pig, gp, odil, ...) through one `train` call.

Its run directory (DESIGN.md §6): ``summary.json``, ``metrics.jsonl``, ``solution.npz`` (the
fields on the evaluation grid), ``model.eqx``, ``plots/*.png``, ``checkpoint/`` and
``spec.resolved.yaml``; `write_outputs` writes them for a diverged or interrupted run too.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import SpecError
from ..report.rundir import RunDirectory, run_header
from ..spec.build import (
    build_causal,
    build_model,
    build_objective,
    build_phases,
    build_problem,
    build_weighting,
    default_grid,
    dtype_of,
    phase_configs,
)
from ..spec.loader import read_yaml, validate
from ..spec.schema import ModelConfig, Spec
from ..train.checkpoint import Checkpointer
from ..train.solution import Solution, evaluate_fields, make_evaluator, scalars
from ..train.trainer import Record, train
from ._base import AbstractFamily, Outcome


@dataclasses.dataclass(frozen=True)
class PDEFamily(AbstractFamily):
    """A validated PDE spec: the spec, its model section (by the backend's schema), the raw
    data and the folder relative paths start from."""

    spec: Spec
    model: ModelConfig
    data: dict
    base_dir: pathlib.Path

    kind = "pde"

    @classmethod
    def claims(cls, data) -> bool:
        return True  # the registry's fallback

    @classmethod
    def load(cls, data, lines, base_dir) -> PDEFamily:
        spec, model = validate(data, lines)
        loaded = cls(spec, model, data, pathlib.Path(base_dir))
        # Build once so every expression, name and optimizer is checked before any training.
        loaded.problem()
        build_phases(spec.train)
        return loaded

    @property
    def name(self) -> str:
        return self.spec.name

    def problem(self):
        return build_problem(self.spec, base_dir=self.base_dir)

    def resolved(self) -> dict:
        return _resolved(self)

    def total_steps(self) -> int:
        return sum(p.steps for p in phase_configs(self.spec.train))

    def run(self, rundir, *, resume, log) -> Outcome:
        s = self.spec
        dtype = dtype_of(s.train)
        problem = self.problem()
        k_model, k_train = jax.random.split(jax.random.key(s.train.seed))
        built = build_model(problem, self.model, dtype=dtype, key=k_model)
        model, unknowns, record = train(
            problem,
            built.model,
            phases=build_phases(s.train),
            objective=build_objective(problem, s.train, built, dtype),
            weighting=build_weighting(s.train),
            causal=build_causal(s.train, problem),
            resample_every=s.train.points.resample_every,
            chunk=s.train.log_every,
            eval_every=s.train.eval_every,
            evaluate=make_evaluator(problem),
            checkpoint=Checkpointer(rundir.checkpoint),
            checkpoint_every=s.train.checkpoint_every,
            resume=resume,
            log=log,
            devices=s.train.devices,
            key=k_train,
        )
        if resume:
            record.history = rundir.history()
        model = _rayleigh_ritz(problem, model, record)
        solution = Solution(
            problem,
            model,
            dict(unknowns),
            record,
            self.model.backend,
            s.train.dtype,
            s.train.seed,
            rundir.path,
        )
        return Outcome(record.status, record.message, solution)

    def write_outputs(self, outcome, rundir) -> Solution:
        write_outputs(outcome.value, rundir.path)
        return outcome.value

    def describe_spec(self) -> list[str]:
        problem = self.problem()
        phases = phase_configs(self.spec.train)
        complex_note = (
            f" (complex {list(problem.complex_fields)} as real and imaginary parts)"
            if problem.complex_fields
            else ""
        )
        return [
            f"  problem {problem.name}: coords {list(problem.coords)}, "
            f"fields {list(problem.fields)}{complex_note}",
            f"  equation residuals: {list(problem.equation.names)} "
            f"needs {list(problem.equation.requests)}",
            f"  conditions: {[c.label for c in problem.conditions]}",
            f"  model: {self.model.backend}; phases: "
            + ", ".join(
                f"{p.optimizer if isinstance(p.optimizer, str) else p.optimizer.name} x{p.steps}"
                for p in phases
            ),
        ]

    @classmethod
    def report(cls, rundir) -> dict:
        """Re-render the plots and solution file from the saved model."""
        return write_outputs(load_run(rundir.path), rundir.path)


def _rayleigh_ritz(problem, model, record):
    """An eigenvalue problem with orthonormal states ends with a Rayleigh–Ritz step: the
    states are rotated within their span to diagonalise ``-Δ + V`` (`Orthonormal.ritz`)."""
    from ..backends import Orthonormal

    if problem.potential is None or not isinstance(model, Orthonormal):
        return model
    if record.status == "diverged":
        return model
    rotated, _ = model.ritz(problem.potential_at)
    return rotated


def _resolved(loaded: PDEFamily) -> dict:
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
    data, lines = read_yaml(rundir.spec_path)
    loaded = PDEFamily.load(data, lines, rundir.base_dir() or run_dir)
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
