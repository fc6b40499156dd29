"""`Solution`: a trained model you can call at new points, measure and plot."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..core.problem import Problem, Reference
from .trainer import Record


@eqx.filter_jit
def _evaluate(model, points, requests):
    return model.fields_at(points, requests)


def evaluate_fields(model, problem: Problem, points, names=None, *, batch: int = 65536) -> dict:
    """Fields (or derivatives, by name) of a model at points, as numpy arrays, in batches; a
    complex field or a derivative of one (``h``, ``h_x``) comes out complex."""
    names = tuple(names or problem.fields)
    cplx = problem.complex
    real = cplx.real_names(names)
    requests = tuple(problem.derivative(n) for n in real)
    if any(r is None for r in requests):
        bad = [n for n, r in zip(real, requests) if r is None]
        known = list(problem.fields) + list(problem.complex_fields)
        raise ValueError(f"{bad} are not fields or derivatives of {known}")
    points = np.asarray(points)
    dtype = jnp.zeros(()).dtype
    out: dict[str, list] = {n: [] for n in real}
    for start in range(0, max(len(points), 1), batch):
        chunk = jnp.asarray(points[start : start + batch], dtype)
        if chunk.shape[0] == 0:
            break
        values = _evaluate(model, chunk, requests)
        for n in real:
            out[n].append(np.asarray(values[n]))
    values = {n: np.concatenate(v) if v else np.zeros(0) for n, v in out.items()}
    return {n: values[n] if n in values else _combine(values, cplx.parts(n)) for n in names}


def _combine(values, parts):
    re, im = parts
    return values[re] + 1j * values[im]


def _error(pred: np.ndarray, ref: np.ndarray) -> dict:
    diff = pred - ref
    norm = np.linalg.norm(ref)
    return {
        "rel_l2": float(np.linalg.norm(diff) / norm) if norm > 0 else float(np.linalg.norm(diff)),
        "max_abs": float(np.max(np.abs(diff))),
    }


def _offsets(diff: np.ndarray, reference: Reference, known: np.ndarray) -> np.ndarray:
    """The mean of ``diff``: over all points, or per time level of the reference's points
    (a pressure's constant may change with time)."""
    if reference.time_axis is None:
        return np.mean(diff)
    _, level = np.unique(reference.points[known, reference.time_axis], return_inverse=True)
    return (np.bincount(level, diff) / np.bincount(level))[level]


def field_errors(predicted: Mapping[str, np.ndarray], reference: Reference) -> dict:
    """Relative L2 and max absolute error of each field the reference knows; for a complex
    field ``h`` also of its modulus, as ``|h|`` (the phase of NLS-type solutions turns fast, so
    the modulus is the usual figure of merit)."""
    errors = {}
    for f, ref in reference.values.items():
        if f not in predicted:
            continue
        pred, ref = np.asarray(predicted[f]), np.asarray(ref)
        known = np.isfinite(ref)  # a table may leave a field out at some points
        if not np.any(known):
            continue
        pred, ref = pred[known], ref[known]
        if f in reference.up_to_constant:
            pred = pred - _offsets(pred - ref, reference, known)
        if np.iscomplexobj(pred) or np.iscomplexobj(ref):
            pred, ref = pred.astype(complex), ref.astype(complex)
            errors[f] = _error(pred, ref)
            errors[f"|{f}|"] = _error(np.abs(pred), np.abs(ref))
            continue
        pred, ref = pred.astype(float), ref.astype(float)
        if reference.sign_free and np.dot(pred, ref) < 0:
            pred = -pred  # an eigenfunction is defined up to its sign
        errors[f] = _error(pred, ref)
    return errors


def integral_values(model, problem: Problem, unknowns: Mapping) -> dict[str, float]:
    """Values of the problem's named integrals (e.g. the Rayleigh quotients that an eigenvalue
    spec reports as its eigenvalues) for a model and unknowns."""
    if not any(i.name is not None for i in problem.integrals):
        return {}
    from ..core.objective import Objective

    dtype = jnp.zeros(()).dtype
    objective = Objective(problem, interior=1, boundary=1, dtype=dtype)
    known = jax.tree.map(lambda v: jnp.asarray(v, dtype), dict(unknowns))
    return {k: float(v) for k, v in objective.integral_values(model, known).items()}


def scalars(problem: Problem, unknowns: Mapping) -> dict:
    """The scalar unknowns (not the weights of unknown functions)."""
    names = {f.name for f in problem.functions}
    return {k: v for k, v in unknowns.items() if k not in names}


def function_errors(problem: Problem, unknowns: Mapping) -> dict[str, dict[str, float]]:
    """Each unknown function with a known truth: relative L2 and max error over its grid."""
    out = {}
    declared = {f.name: f for f in problem.functions}
    for name, (exact, points) in problem.true_functions.items():
        f = declared[name]
        dtype = jnp.zeros(()).dtype
        cols = [jnp.asarray(points[:, i], dtype) for i in range(points.shape[1])]
        got = np.asarray(f.apply(unknowns[name], *cols), np.float64)
        env = {**problem.params, **{a: np.asarray(c) for a, c in zip(f.args, cols)}}
        true = np.broadcast_to(np.asarray(exact(env), np.float64), got.shape)
        diff = got - true
        out[name] = {
            "rel_l2": float(np.linalg.norm(diff) / max(np.linalg.norm(true), 1e-300)),
            "max_abs": float(np.abs(diff).max()),
        }
    return out


def make_evaluator(problem: Problem):
    """``evaluate(model, unknowns) -> errors`` against the problem's reference, or None."""
    if problem.reference is None and not problem.true_functions:
        return None

    def evaluate(model, unknowns):
        out = {}
        if problem.reference is not None:
            ref = problem.reference()
            out = field_errors(evaluate_fields(model, problem, ref.points, list(ref.values)), ref)
        out.update(function_errors(problem, unknowns))
        values = {k: float(v) for k, v in scalars(problem, unknowns).items()}
        if any(k not in values for k in problem.true_unknowns):
            values.update(integral_values(model, problem, unknowns))
        for k, true in problem.true_unknowns.items():
            if k in values:
                out[k] = {"rel_err": float(abs(values[k] - true) / max(abs(true), 1e-300))}
        return out

    return evaluate


@dataclasses.dataclass
class Solution:
    """The outcome of a solve.

    Attributes:
        problem: the problem solved.
        model: the trained model (call `solution(points)` rather than the model directly).
        unknowns: trained values of the problem's unknowns.
        record: status, steps, timings and history.
        backend: the backend's name.

    Example:
        >>> u = solution(np.array([[0.5, 0.1]]))        # (1, n_fields)
        >>> solution.predict(points)["u"]               # by field name
        >>> solution.errors()                           # against the reference
        >>> solution.plot()                             # matplotlib figures
    """

    problem: Problem
    model: object
    unknowns: dict
    record: Record
    backend: str = "mlp"
    dtype: str = "float32"
    seed: int = 0
    run_dir: object = None

    @property
    def status(self) -> str:
        return self.record.status

    def predict(self, points, names=None) -> dict[str, np.ndarray]:
        """Fields (or derivatives, e.g. ``["u_x"]``) at ``(n, dim)`` points or a dict of coords;
        by default the real fields (``h_re``, ``h_im`` for a complex ``h``), and a complex field
        or derivative (``["h", "h_x"]``) by name, as complex values."""
        return evaluate_fields(self.model, self.problem, self._points(points), names)

    def __call__(self, points) -> np.ndarray:
        values = self.predict(points)
        return np.stack([values[f] for f in self.problem.fields], axis=-1)

    def _points(self, points) -> np.ndarray:
        if isinstance(points, Mapping):
            cols = [np.asarray(points[c], float).reshape(-1) for c in self.problem.coords]
            return np.stack(np.broadcast_arrays(*cols), axis=-1)
        pts = np.asarray(points, float)
        if pts.ndim == 1 and self.problem.box.dim == 1:
            pts = pts[:, None]
        if pts.ndim != 2 or pts.shape[1] != self.problem.box.dim:
            raise ValueError(
                f"points must have shape (n, {self.problem.box.dim}) in the order "
                f"{list(self.problem.coords)}, got {pts.shape}"
            )
        return pts

    def integrals(self) -> dict[str, float]:
        """Values of the named integrals (an eigenvalue spec's Rayleigh quotients ``R0 ..``)."""
        return integral_values(self.model, self.problem, self.unknowns)

    def eigenvalues_by_name(self) -> dict[str, float]:
        """Each eigenvalue (an unknown or a named integral) by its name."""
        values = {
            **self.integrals(),
            **{k: float(v) for k, v in scalars(self.problem, self.unknowns).items()},
        }
        return {e: values[e] for e in self.problem.eigenvalues}

    def eigenvalues(self) -> list[float]:
        """The problem's eigenvalues, ascending."""
        return sorted(self.eigenvalues_by_name().values())

    def errors(self) -> dict:
        """Errors against the problem's reference ({} without one)."""
        evaluate = make_evaluator(self.problem)
        return {} if evaluate is None else evaluate(self.model, self.unknowns)

    def describe(self) -> list[str]:
        """The lines ``pinnkit solve`` prints: status, steps, timings, errors, unknowns."""
        r = self.record
        lines = [
            f"{self.problem.name}: {r.status} after {r.steps} steps in {r.wall_s:.1f} s "
            f"(compile {r.compile_s:.1f} s, {r.steps_per_s:.0f} steps/s)"
        ]
        for name, e in self.errors().items():
            lines.append("  " + name + ": " + ", ".join(f"{k} {v:.3e}" for k, v in e.items()))
        for k in self.problem.scalar_unknowns:
            lines.append(f"  {k} = {float(self.unknowns[k]):.6g}")
        if self.run_dir:
            lines.append(f"  outputs and plots in {self.run_dir}")
        return lines

    def plot(self, directory=None, *, show: bool = False):
        """Prediction, reference, pointwise error and loss history; saved under `directory`."""
        from ..report.plots import plot_solution

        return plot_solution(self, directory, show=show)
