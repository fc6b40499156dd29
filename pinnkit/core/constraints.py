"""Exact (hard) enforcement of Dirichlet and initial conditions on a box.

A field with value conditions on some faces is written ``u(x) = B(x) + D(x) N(x)``: ``N`` is
the network, ``D`` vanishes on exactly those faces, and ``B`` interpolates the face data
transfinitely (a Coons patch: for each constrained axis, blend the two faces linearly and
subtract what the axes before it already put there), so ``u`` equals the data on every
constrained face whatever ``N`` is. This is the box case of the theory of functional
connections (Leake & Mortari, arXiv 1910.12264) and of Sukumar & Srivastava's distance
functions (arXiv 2104.08426). Data that disagree at a corner cannot be matched exactly by
any smooth function: then the most faces that agree are exact and the rest stay soft (loss
terms), with a warning.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .domain import Box
from .problem import Problem

PointFn = Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class _Axis:
    axis: int
    lo: float
    hi: float
    g_lo: PointFn | None
    g_hi: PointFn | None


@dataclasses.dataclass(frozen=True)
class FieldLift:
    """``u = lift(x) + distance(x) * n`` for one field; both are functions of one point.

    The lift uses the face data only on the faces (a transfinite patch), never the data
    expression's values inside the box: a boundary expression that happens to be the exact
    solution (manufactured problems) must not hand the interior its answer.
    """

    axes: tuple[_Axis, ...]

    def lift(self, x: jax.Array) -> jax.Array:
        return _lift(x, self.axes)

    def distance(self, x: jax.Array) -> jax.Array:
        d = jnp.ones((), x.dtype)
        for a in self.axes:
            s, width = x[a.axis], a.hi - a.lo
            if a.g_lo is not None and a.g_hi is not None:
                d = d * 4.0 * (s - a.lo) * (a.hi - s) / width**2
            elif a.g_lo is not None:
                d = d * (s - a.lo) / width
            else:
                d = d * (a.hi - s) / width
        return d


def _lift(x, axes):
    if not axes:
        return jnp.zeros((), x.dtype)
    *rest, a = axes
    base = _lift(x, rest)
    s = x[a.axis]
    # A select, not `x.at[].set()`: Taylor-mode (jet) has no rule for scatter.
    on_axis = jnp.arange(x.shape[0]) == a.axis
    xa = jnp.where(on_axis, jnp.asarray(a.lo, x.dtype), x)
    xb = jnp.where(on_axis, jnp.asarray(a.hi, x.dtype), x)
    if a.g_lo is not None and a.g_hi is not None:
        w = (s - a.lo) / (a.hi - a.lo)
        return base + (1 - w) * (a.g_lo(xa) - _lift(xa, rest)) + w * (a.g_hi(xb) - _lift(xb, rest))
    if a.g_lo is not None:
        return base + a.g_lo(xa) - _lift(xa, rest)
    return base + a.g_hi(xb) - _lift(xb, rest)


def _point_function(target, box: Box, constants: Mapping[str, float]) -> PointFn:
    def g(x):
        env = {c: x[i] for i, c in enumerate(box.coords)}
        env.update(constants)
        return jnp.asarray(target(env), x.dtype)

    return g


def hard_constraints(
    problem: Problem, *, check_points: int = 64
) -> tuple[dict[str, FieldLift], frozenset[tuple[int, str]]]:
    """Work out which value conditions can be enforced exactly.

    Returns:
        ``({field: FieldLift}, enforced)`` where ``enforced`` holds ``(condition index,
        field)`` pairs the objective must no longer add as loss terms.
    """
    constants = problem.constants()
    unknown_names = set(problem.unknowns)
    periodic = set(problem.periodic_axes)
    lifts: dict[str, FieldLift] = {}
    enforced: set[tuple[int, str]] = set()
    for field in problem.fields:
        faces: dict[tuple[int, int], tuple[int, PointFn]] = {}
        for index, cond in enumerate(problem.conditions):
            target = cond.targets.get(field) if cond.faces else None
            if target is None or unknown_names & set(getattr(target, "names", ())):
                continue
            for face in cond.faces:
                if face.axis in periodic:
                    continue
                faces.setdefault(
                    (face.axis, face.side),
                    (index, _point_function(target, problem.box, constants), target),
                )
        if not faces:
            continue
        kept = _largest_consistent(faces, problem.box, check_points)
        if len(kept) < len(faces):
            soft = sorted(
                {problem.conditions[i].label for k, (i, *_) in faces.items() if k not in kept}
            )
            warnings.warn(
                f"the value conditions of field {field!r} disagree where faces meet, so no smooth "
                f"function meets them all; {soft} stay soft loss terms for this field"
                + (", the others are exact" if kept else ""),
                stacklevel=2,
            )
        if not kept:
            continue
        lifts[field] = _field_lift(kept, problem.box)
        # A condition leaves the loss only when every face it names is exact.
        indices = {i for i, *_ in kept.values()}
        enforced.update(
            (i, field) for i in indices if all(k in kept for k, (j, *_) in faces.items() if j == i)
        )
    return lifts, frozenset(enforced)


def _field_lift(faces, box: Box) -> FieldLift:
    """The lift of ``faces``: ``{(axis, side): (condition index, g, target)}``."""
    axes = []
    for axis in sorted({a for a, _ in faces}):
        lo, hi = box.bounds[box.coords[axis]]
        g_lo = faces.get((axis, 0), (None, None))[1]
        g_hi = faces.get((axis, 1), (None, None))[1]
        axes.append(_Axis(axis, lo, hi, g_lo, g_hi))
    return FieldLift(tuple(axes))


def _largest_consistent(faces, box: Box, n: int) -> dict:
    """The most faces whose data agree where they meet (all of them when they do), preferring
    the conditions listed first among subsets of one size: a lid-driven cavity keeps its three
    walls exact and its lid, whose velocity jumps at the corners, soft.

    Two faces conflict when their data differ where they meet (adjacent faces of a box share
    an edge; opposite faces never meet), and a transfinite interpolant of edge-compatible face
    data meets every face. So the faces kept are the largest set without a conflicting pair
    (a search over the subsets of at most ``2 dim`` faces on the conflict graph, in Python),
    checked once more through the interpolant itself."""
    if len({target for _, _, target in faces.values()}) == 1:
        return dict(faces)  # one expression on every face agrees with itself
    if _consistent(_field_lift(faces, box), faces, box, n):
        return dict(faces)
    keys = sorted(faces, key=lambda k: (faces[k][0], k))
    conflicts = {
        (p, q)
        for p, q in itertools.combinations(keys, 2)
        if p[0] != q[0] and not _agree_on_edge(p, faces[p][1], q, faces[q][1], box, n)
    }
    for size in range(len(keys) - 1, 0, -1):
        for subset in itertools.combinations(keys, size):
            if any(pair in conflicts for pair in itertools.combinations(subset, 2)):
                continue
            chosen = {k: faces[k] for k in subset}
            return chosen if _consistent(_field_lift(chosen, box), chosen, box, n) else {}
    return {}


def _agree_on_edge(p, g_p, q, g_q, box: Box, n: int) -> bool:
    """Whether the data of two adjacent faces agree on the edge (or face, in higher
    dimensions) where they meet, at ``n`` random points of it."""
    rng = np.random.default_rng(1)
    pts = box.lo + rng.random((n, box.dim)) * (box.hi - box.lo)
    for axis, side in (p, q):
        pts[:, axis] = box.bounds[box.coords[axis]][side]
    pts = jnp.asarray(pts)
    a, b = np.asarray(jax.vmap(g_p)(pts)), np.asarray(jax.vmap(g_q)(pts))
    return bool(np.allclose(a, b, rtol=1e-5, atol=1e-5 * (1 + np.abs(a).max())))


def _consistent(lift: FieldLift, faces, box: Box, n: int) -> bool:
    rng = np.random.default_rng(0)
    lift_at = jax.jit(jax.vmap(lift.lift))
    for (axis, side), (_, g, _) in faces.items():
        pts = box.lo + rng.random((n, box.dim)) * (box.hi - box.lo)
        pts[:, axis] = box.bounds[box.coords[axis]][side]
        # Include the corners of this face, where disagreements show.
        for other in range(box.dim):
            if other != axis:
                pts[: n // 4, other] = box.lo[other]
                pts[n // 4 : n // 2, other] = box.hi[other]
        pts = jnp.asarray(pts)
        want = np.asarray(jax.vmap(g)(pts))
        got = np.asarray(lift_at(pts))
        if not np.allclose(got, want, rtol=1e-5, atol=1e-5 * (1 + np.abs(want).max())):
            return False
    return True
