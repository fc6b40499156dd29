"""The objective: a problem's residual, condition and data terms as mean squared errors.

`Objective` turns a `Problem` into loss terms over groups of points: the interior (the
equation's residuals), each condition's faces, and each observation set. It asks the model
for exactly the derivatives each group needs, once per group, and evaluates the terms with
plain arithmetic, so it works with every backend. Conditions already enforced exactly by the
model (hard constraints) are left out.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from ..errors import SpecError
from .domain import derivative_name, parse_derivative
from .functions import function_env
from .problem import Problem
from .sampling import AbstractSampler, Sobol


@dataclasses.dataclass(frozen=True)
class Term:
    """One loss term: mean of squared residuals of one kind on one group of points."""

    name: str
    group: str
    kind: str  # "residual" | "condition" | "data" | "integral" | "penalty"
    weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class _Group:
    name: str
    regions: tuple[tuple[np.ndarray, np.ndarray], ...]  # (lo, hi) per face or the box
    n_each: int
    fixed: np.ndarray | None = None  # observation points never move
    pair_axis: int | None = None  # periodic: evaluate on the opposite face too
    quadrature: tuple | None = None  # integral: (axes, nodes (q, k), weights (q,))


class AbstractObjective(abc.ABC):
    """What the trainer asks of an objective (`pinnkit.train.train`).

    ``terms`` (a list of `Term`), ``dtype``, ``sampler`` (with ``resamples``: whether a new
    draw gives new points); ``sample(score=, key=)`` the points (a dict of arrays, possibly
    empty); ``squared(model, unknowns, points)`` each term's values; ``reduce(squared,
    points, causal, causal_weights)`` each term's scalar. The rest have defaults: no residual
    score (``score``), no least-squares form (``least_squares``, needed by Gauss–Newton
    steps) and no causal weighting.
    """

    terms: list
    dtype: object
    sampler: object

    @abc.abstractmethod
    def sample(self, *, score=None, key: PRNGKeyArray) -> dict[str, Array]: ...

    @abc.abstractmethod
    def squared(self, model, unknowns, points: Mapping[str, Array]) -> dict[str, Array]: ...

    def reduce(self, squared, points, causal=None, causal_weights=None) -> dict[str, Array]:
        """Each term's sum (the default: ``squared`` holds the scalars already summed)."""
        del points, causal, causal_weights
        return {t.name: jnp.sum(squared[t.name]) for t in self.terms}

    def score(self, model, unknowns):
        """A function of points ranking them for residual-based sampling, or None."""
        del model, unknowns
        return None

    def least_squares(self, model, unknowns, points, weights: Mapping[str, Array]) -> Array:
        """The stacked weighted residual vector whose squared norm is the loss."""
        raise SpecError(
            f"{type(self).__name__} has no least-squares form: use a gradient optimizer",
            path="train.optimizer",
        )

    def causal_weights(self, squared, points, causal):
        raise SpecError(f"{type(self).__name__} has no causal weighting", path="train.causal")


class Objective(AbstractObjective):
    """Loss terms of a problem.

    Arguments:
        problem: the problem.
        enforced: ``(condition index, symbol)`` pairs the model meets exactly; skipped.
        interior: number of residual points.
        boundary: number of points per condition (spread over its faces).
        sampler: how points are drawn (a `pinnkit.core.sampling.AbstractSampler`).
        periodic_exact: whether the model is periodic by construction (no periodic terms).
        dtype: floating dtype of the points.
        grid: the nodes per axis of a model's own tensor grid (its ``collocation_axes()``):
            the equation is enforced at the interior nodes, with the model's
            ``fields_on_grid`` answering, and the conditions at the nodes on their faces;
            these points never move.
        midpoints: with a grid, also enforce the equation at the cells' midpoints (answered
            by ``fields_at``, terms named ``<residual>@mid``): what steers a grid model's
            interpolation (a GP's kernel) towards accuracy between the nodes.
        penalties: ``name -> weight`` of terms the model supplies itself
            (``model.penalties()``: a GP prior, say); each is ``Σ r² + c``.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        enforced: frozenset[tuple[int, str]] = frozenset(),
        interior: int = 2048,
        boundary: int = 256,
        sampler: AbstractSampler | None = None,
        periodic_exact: bool = False,
        dtype=jnp.float32,
        grid: Sequence[np.ndarray] | None = None,
        midpoints: bool = False,
        penalties: Mapping[str, float] | None = None,
    ):
        self.problem = problem
        self.sampler = sampler if sampler is not None else Sobol()
        self.dtype = dtype
        box = problem.box
        lo, hi = box.lo, box.hi
        self.grid = None if grid is None else tuple(np.asarray(a) for a in grid)
        if self.grid is None:
            self.groups: dict[str, _Group] = {"interior": _Group("interior", ((lo, hi),), interior)}
        else:
            nodes = _tensor([a[1:-1] for a in self.grid])
            self.groups = {"interior": _Group("interior", ((lo, hi),), len(nodes), fixed=nodes)}
        self.terms: list[Term] = [Term(n, "interior", "residual") for n in problem.equation.names]
        self.midpoints = self.grid is not None and midpoints
        if self.midpoints:
            mids = _tensor([(a[:-1] + a[1:]) / 2 for a in self.grid])
            self.groups["midpoints"] = _Group("midpoints", ((lo, hi),), len(mids), fixed=mids)
            self.terms += [
                Term(f"{n}@mid", "midpoints", "residual") for n in problem.equation.names
            ]
        self._condition_parts: dict[str, tuple] = {}
        labels: dict[str, int] = {}
        for index, cond in enumerate(problem.conditions):
            label = cond.label
            if label in labels:
                labels[label] += 1
                label = f"{label}#{labels[label]}"
            else:
                labels[label] = 0
            group = f"condition{index}"
            if cond.periodic:
                if periodic_exact:
                    continue
                axis = box.axis(cond.periodic)
                face_hi = hi.copy()
                face_hi[axis] = lo[axis]
                fixed = None
                if self.grid is not None:
                    fixed = _tensor([a[:1] if i == axis else a for i, a in enumerate(self.grid)])
                n = boundary if fixed is None else len(fixed)
                self.groups[group] = _Group(group, ((lo, face_hi),), n, fixed=fixed, pair_axis=axis)
                self.terms.append(Term(label, group, "condition", cond.weight))
                continue
            parts = [
                (sym, fn) for sym, fn in cond.targets.items() if (index, sym) not in enforced
            ] + [(f"residual{i}", fn) for i, fn in enumerate(cond.residuals)]
            if not parts:
                continue
            regions = []
            for face in cond.faces:
                flo, fhi = lo.copy(), hi.copy()
                flo[face.axis] = fhi[face.axis] = face.value
                regions.append((flo, fhi))
            n_each = max(1, math.ceil(boundary / len(regions)))
            fixed = None
            if self.grid is not None:  # the grid's nodes on the faces
                fixed = np.concatenate(
                    [
                        _tensor(
                            [
                                np.asarray([face.value]) if i == face.axis else a
                                for i, a in enumerate(self.grid)
                            ]
                        )
                        for face in cond.faces
                    ]
                )
                n_each = len(fixed)
            self.groups[group] = _Group(group, tuple(regions), n_each, fixed=fixed)
            for sym, fn in parts:
                name = label if len(parts) == 1 else f"{label}:{sym}"
                self.terms.append(Term(name, group, "condition", cond.weight))
                self._condition_parts[name] = (sym, fn)
        for index, integral in enumerate(problem.integrals):
            group = f"integral{index}"
            axes = tuple(box.axis(c) for c in integral.over)
            breaks = {box.axis(c): v for c, v in integral.breaks.items()}
            nodes, weights = gauss_legendre(box, axes, integral.points, breaks)
            samples = 1 if len(axes) == box.dim else integral.samples
            self.groups[group] = _Group(
                group, ((lo, hi),), samples, quadrature=(axes, nodes, weights)
            )
            self.terms.append(Term(integral.label, group, "integral", integral.weight))
        for index, obs in enumerate(problem.data):
            group = f"data{index}"
            self.groups[group] = _Group(group, (), len(obs.points), fixed=np.asarray(obs.points))
            self.terms.append(Term(obs.label, group, "data", obs.weight))
        for name, weight in (penalties or {}).items():
            self.terms.append(Term(name, "model", "penalty", weight))

    # --- points -------------------------------------------------------------------------

    def sample(self, *, score=None, key: PRNGKeyArray) -> dict[str, Array]:
        """Draw every group's points (observation points are returned unchanged)."""
        keys = jax.random.split(key, len(self.groups))
        out = {}
        for k, g in zip(keys, self.groups.values()):
            if g.fixed is not None:
                out[g.name] = jnp.asarray(g.fixed, self.dtype)
                continue
            if g.quadrature is not None:
                out[g.name] = self._quadrature_points(g, k)
                continue
            rk = jax.random.split(k, len(g.regions))
            pts = [
                self.sampler(
                    jnp.asarray(rlo, self.dtype),
                    jnp.asarray(rhi, self.dtype),
                    g.n_each,
                    score=score if g.name == "interior" else None,
                    key=kk,
                )
                for kk, (rlo, rhi) in zip(rk, g.regions)
            ]
            out[g.name] = jnp.concatenate(pts, axis=0)
        return out

    def _integral_groups(self) -> list[_Group]:
        return [self.groups[f"integral{i}"] for i in range(len(self.problem.integrals))]

    def _quadrature_points(self, g: _Group, key) -> Array:
        """Samples of the other coordinates, each with the quadrature nodes of the integrated
        ones: ``(samples * q, d)``, sample-major."""
        axes, nodes, _ = g.quadrature
        lo, hi = g.regions[0]
        base = self.sampler(
            jnp.asarray(lo, self.dtype), jnp.asarray(hi, self.dtype), g.n_each, key=key
        )
        pts = jnp.repeat(base, nodes.shape[0], axis=0)
        tiled = jnp.tile(jnp.asarray(nodes, self.dtype), (g.n_each, 1))
        return pts.at[:, jnp.asarray(axes)].set(tiled)

    # --- evaluation -----------------------------------------------------------------------

    def env(
        self, model, unknowns: Mapping[str, Array], points: Array, requests, on_grid=False
    ) -> dict:
        """Coordinates, params, unknowns and the requested fields/derivatives at points."""
        p = self.problem
        env = {c: points[:, i] for i, c in enumerate(p.coords)}
        env.update({k: jnp.asarray(v, points.dtype) for k, v in p.params.items()})
        env.update(unknowns)
        env.update(function_env(p.functions, unknowns))
        derivs = [parse_derivative(r, p.coords, p.fields) for r in sorted(set(requests))]
        derivs = [d for d in derivs if d is not None]
        if on_grid:
            values = model.fields_on_grid(derivs)
            env.update({k: jnp.asarray(v, points.dtype) for k, v in values.items()})
        else:
            env.update(model.fields_at(points, derivs))
        return env

    def residuals(self, model, unknowns, points, *, on_grid: bool = False) -> tuple[Array, ...]:
        """The equation's residuals at interior points (``on_grid``: at the model's own grid,
        which ``points`` must be, answered by its ``fields_on_grid``)."""
        env = self.env(model, unknowns, points, self.problem.equation.requests, on_grid=on_grid)
        n = points.shape[0]
        return tuple(jnp.broadcast_to(r, (n,)) for r in self.problem.equation.residuals(env))

    def named_integrals(self, model, unknowns, points) -> dict[str, Array]:
        """Values of the integrals that have a name (symbols other terms may use)."""
        out = {}
        for index, integral in enumerate(self.problem.integrals):
            if integral.name is not None:
                g = self.groups[f"integral{index}"]
                out[integral.name] = self._totals(model, unknowns, points[g.name], g, integral)[0]
        return out

    def integral_values(self, model, unknowns) -> dict[str, Array]:
        """The named integrals' values (Rayleigh quotients, norms) at the current model."""
        named = [g for i, g in zip(self.problem.integrals, self._integral_groups()) if i.name]
        if not named:
            return {}
        nodes = {g.name: self._quadrature_points(g, jax.random.key(0)) for g in named}
        return self.named_integrals(model, unknowns, nodes)

    def squared(self, model, unknowns, points: Mapping[str, Array]) -> dict[str, Array]:
        """Per-point squared residual of every term, keyed by term name (a penalty term's
        entries are its squared residuals and its constant; it is summed, not averaged)."""
        out = {}
        for name, parts in self.signed(model, unknowns, points).items():
            if isinstance(parts, _Penalty):
                out[name] = jnp.concatenate([parts.residual**2, parts.offset[None]])
            elif isinstance(parts, _NotSquared):
                out[name] = parts.value
            else:
                out[name] = sum(r**2 for r in parts)
        return out

    def least_squares(self, model, unknowns, points, weights: Mapping[str, Array]) -> Array:
        """The stacked weighted residual vector ``r`` with ``‖r‖² = Σ_t w_t term_t`` (up to
        the penalties' constants): what Gauss–Newton minimises. Every term must be a mean of
        squares; causal weighting does not apply here. Midpoint residuals are left out: the
        solve is the square collocation system, and they judge its result."""
        parts = self.signed(model, unknowns, points)
        out = []
        for t in self.terms:
            if t.group == "midpoints":  # they steer the kernel, never the solve
                continue
            value = parts[t.name]
            w = jnp.asarray(weights[t.name])
            if isinstance(value, _NotSquared):
                raise SpecError(
                    f"the term {t.name!r} is not a sum of squares (an integral to minimise); a "
                    "gauss_newton phase needs least-squares terms only",
                    path="train.phases",
                )
            if isinstance(value, _Penalty):
                out.append(jnp.sqrt(w) * value.residual)
                continue
            n = value[0].shape[0]
            out += [jnp.sqrt(w / n) * r for r in value]
        return jnp.concatenate(out)

    def signed(self, model, unknowns, points: Mapping[str, Array]) -> dict:
        """Signed residuals of every term: a tuple of per-point arrays whose squares sum to
        the term's per-point values (a `_Penalty` or `_NotSquared` for the other kinds)."""
        out = {}
        p = self.problem
        if any(i.name is not None for i in p.integrals):
            unknowns = {**unknowns, **self.named_integrals(model, unknowns, points)}
        interior = self.residuals(
            model, unknowns, points["interior"], on_grid=self.grid is not None
        )
        for name, r in zip(p.equation.names, interior):
            out[name] = (r,)
        if self.midpoints:
            mids = self.residuals(model, unknowns, points["midpoints"])
            for name, r in zip(p.equation.names, mids):
                out[f"{name}@mid"] = (r,)
        for t in self.terms:
            if t.kind == "penalty":
                residual, offset = model.penalties()[t.name]
                out[t.name] = _Penalty(residual, offset)
        for g in self.groups.values():
            if g.name in ("interior", "midpoints"):
                continue
            pts = points[g.name]
            n = pts.shape[0]
            terms = [t for t in self.terms if t.group == g.name]
            if g.pair_axis is not None:
                out[terms[0].name] = self._periodic(model, pts, g.pair_axis)
                continue
            if g.quadrature is not None:
                integral = p.integrals[int(g.name.removeprefix("integral"))]
                out[terms[0].name] = self._integral(model, unknowns, pts, g, integral)
                continue
            if g.name.startswith("data"):
                obs = p.data[int(g.name.removeprefix("data"))]
                env = self.env(model, unknowns, pts, obs.values)
                out[terms[0].name] = tuple(
                    env[s] - jnp.asarray(v, pts.dtype) for s, v in obs.values.items()
                )
                continue
            requests = set()
            for t in terms:
                sym, fn = self._condition_parts[t.name]
                if not sym.startswith("residual"):
                    requests.add(sym)
                requests |= set(getattr(fn, "names", ()))
            env = self.env(model, unknowns, pts, requests)
            for t in terms:
                sym, fn = self._condition_parts[t.name]
                value = fn(env)
                r = value if sym.startswith("residual") else env[sym] - value
                out[t.name] = (jnp.broadcast_to(r, (n,)),)
        return out

    def _periodic(self, model, pts, axis):
        """Fields and their first derivatives along the axis match on opposite faces."""
        p = self.problem
        other = pts.at[:, axis].set(p.box.hi[axis])
        orders = [0] * p.box.dim
        orders[axis] = 1
        req = [parse_derivative(f, p.coords, p.fields) for f in p.fields] + [
            parse_derivative(derivative_name(f, orders, p.coords), p.coords, p.fields)
            for f in p.fields
        ]
        a, b = model.fields_at(pts, req), model.fields_at(other, req)
        return tuple(a[r.name] - b[r.name] for r in req)

    def causal_weights(self, squared: Mapping[str, Array], points, causal) -> dict[str, Array]:
        """The causal slab weights of each residual term at the current residuals."""
        return {
            t.name: causal.weights(squared[t.name], points["interior"], self.problem.box)[1]
            for t in self.terms
            if t.kind == "residual"
        }

    def _totals(self, model, unknowns, pts, g: _Group, integral) -> Array:
        _, nodes, weights = g.quadrature
        env = self.env(model, unknowns, pts, getattr(integral.integrand, "names", ()))
        values = jnp.broadcast_to(integral.integrand(env), (pts.shape[0],))
        return values.reshape(g.n_each, nodes.shape[0]) @ jnp.asarray(weights, pts.dtype)

    def _integral(self, model, unknowns, pts, g: _Group, integral):
        _, nodes, _ = g.quadrature
        totals = (
            unknowns[integral.name][None]
            if integral.name is not None and integral.name in unknowns
            else self._totals(model, unknowns, pts, g, integral)
        )
        if integral.minimize:
            return _NotSquared(totals)
        if callable(integral.equals):
            first = pts[:: nodes.shape[0]]
            target_env = {c: first[:, i] for i, c in enumerate(self.problem.coords)}
            target_env.update(
                {k: jnp.asarray(v, pts.dtype) for k, v in self.problem.params.items()}
            )
            target_env.update(unknowns)
            target = integral.equals(target_env)
        else:
            target = integral.equals
        if integral.log:
            tiny = jnp.finfo(totals.dtype).tiny
            return (jnp.log(jnp.maximum(totals, tiny)) - jnp.log(target),)
        return (totals - target,)

    def score(self, model, unknowns):
        """Squared equation residual at points: what residual-based samplers rank by."""

        def score(points):
            # residuals may use named integrals (over every coordinate: their nodes are fixed)
            known = {**unknowns, **self.integral_values(model, unknowns)}
            return sum(r**2 for r in self.residuals(model, known, points))

        return score

    def reduce(
        self, squared: Mapping[str, Array], points, causal=None, causal_weights=None
    ) -> dict[str, Array]:
        """Mean of each term; residual terms through the causal weighting when given (with
        fixed slab weights from `causal_weights`, per residual term, if given)."""
        out = {}
        for t in self.terms:
            sq = squared[t.name]
            if t.kind == "penalty":
                out[t.name] = jnp.sum(sq)
            elif t.kind == "residual" and causal is not None:
                fixed = None if causal_weights is None else causal_weights[t.name]
                out[t.name] = causal(sq, points["interior"], self.problem.box, fixed)
            else:
                out[t.name] = jnp.mean(sq)
        return out


def _tensor(axes: Sequence[np.ndarray]) -> np.ndarray:
    """The points of a tensor grid, ``(N, d)`` in C order."""
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=-1)


class _Penalty(NamedTuple):
    """A model-supplied term ``Σ residual² + offset``."""

    residual: Array
    offset: Array


class _NotSquared(NamedTuple):
    """A term that is its values themselves (an integral to minimise), not their squares."""

    value: Array


def gauss_legendre(
    box, axes, n: int, breaks: Mapping[int, Sequence[float]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss–Legendre nodes ``(q, k)`` and weights ``(q,)`` over the box's `axes`.

    ``n`` nodes per coordinate, or per piece where `breaks` (axis -> points inside the interval)
    splits it: composite quadrature keeps its spectral accuracy on a piecewise-smooth integrand
    (a potential with jumps) when the pieces meet at the kinks.
    """
    x, w = np.polynomial.legendre.leggauss(n)
    nodes, weights = [], []
    for a in axes:
        lo, hi = box.lo[a], box.hi[a]
        inner = sorted(float(b) for b in (breaks or {}).get(a, ()) if lo < float(b) < hi)
        ends = [lo, *inner, hi]
        nodes.append(np.concatenate([p + (x + 1) * (q - p) / 2 for p, q in zip(ends, ends[1:])]))
        weights.append(np.concatenate([w * (q - p) / 2 for p, q in zip(ends, ends[1:])]))
    grids = np.meshgrid(*nodes, indexing="ij")
    wgrid = np.prod(np.meshgrid(*weights, indexing="ij"), axis=0)
    return np.stack([g.reshape(-1) for g in grids], -1), wgrid.reshape(-1)
