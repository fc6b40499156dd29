"""What a backend is: a trainable model that answers derivative requests at points.

`AbstractModel` is the one interface the objective and the trainer use: given points and
the derivatives an equation asked for, return them as named arrays. Pointwise models
(MLP, Gaussians, a Flax network, anything ``x -> fields``) get that for free from
`AbstractPointModel`, which maps a swappable derivative strategy over the points. Grid and
spectral backends implement `fields_at` their own way.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..core.derivatives import STRATEGIES, AbstractDerivatives
from ..core.domain import Derivative, derivative_name
from ..errors import SpecError


class AbstractModel(eqx.Module):
    """A trainable representation of the fields."""

    @abc.abstractmethod
    def fields_at(
        self, points: Float[Array, "n d"], requests: Sequence[Derivative]
    ) -> dict[str, Float[Array, " n"]]:
        """The requested fields and derivatives at the points, keyed by request name."""

    def trainable(self):
        """A filter pytree (or callable) for `eqx.partition`: which leaves the optimizer moves."""
        return _trainable_leaves(self)

    def collocation_axes(self) -> tuple[np.ndarray, ...] | None:
        """A model that owns a tensor collocation grid (GP, ODIL) returns its nodes per axis
        here (faces included) and answers derivative requests at the interior nodes (C order)
        with ``fields_on_grid(requests) -> {name: (n,)}``. The objective then enforces the
        equation at the interior nodes and the conditions at the face nodes, and never moves
        them. ``None``: the objective samples points."""
        return None

    def penalties(self) -> dict[str, tuple[Array, Array]]:
        """Loss terms the model adds itself (a GP prior): ``name -> (r, c)``, the term being
        ``Σ r² + c``; weighted by `penalty_weights`."""
        return {}

    def penalty_weights(self) -> dict[str, float]:
        """The loss weight of each of `penalties`."""
        return {}

    # Hooks of the optimizer steps (`pinnkit.train.steps`); the defaults mean "none".

    def parameter_group(self, name: str):
        """A filter pytree over the model selecting one named group of its parameters, for a
        phase that trains (or solves for) only that group (``train.phases[i].params``)."""
        raise SpecError(
            f"the {type(self).__name__} model has no parameter groups (asked for {name!r})",
            path="train.phases.params",
        )

    def normal_preconditioner(self, group: str):
        """A symmetric positive definite approximation of the inverse normal matrix of a
        Gauss–Newton solve for ``group``, as a function on the group's pytree; or None."""
        del group
        return None

    def jacobian_colours(self):
        """A pytree like the model with an integer colour per parameter, such that parameters
        of one colour never share a residual row (structurally orthogonal Jacobian columns,
        `pinnkit.train.sparse`); or None (a colour each)."""
        return None


class _PlainModel(AbstractModel):
    """The hooks of a model that is not an `AbstractModel` (any pytree): none."""

    def fields_at(self, points, requests):
        raise NotImplementedError("a bug: _PlainModel only stands in for a model's hooks")


_PLAIN = _PlainModel()


def hooks_of(model) -> AbstractModel:
    """The model itself where it declares the hooks (an `AbstractModel`), else an object whose
    hooks all say "none"."""
    return model if isinstance(model, AbstractModel) else _PLAIN


@dataclasses.dataclass(frozen=True)
class BuiltModel:
    """What a backend's builder returns: the model, the ``(condition index, symbol)`` pairs it
    meets exactly (the objective leaves them out) and whether it is periodic by
    construction."""

    model: Any
    enforced: frozenset
    periodic_exact: bool


class Frozen(eqx.Module):
    """An array a model uses but training never moves (e.g. random Fourier features)."""

    value: Array


def _is_frozen(x) -> bool:
    return isinstance(x, Frozen)


def _trainable_leaves(tree) -> object:
    return jax.tree_util.tree_map(
        lambda leaf: False if _is_frozen(leaf) else eqx.is_inexact_array(leaf),
        tree,
        is_leaf=_is_frozen,
    )


def trainable_filter(model) -> object:
    """The `eqx.partition` filter of a model: inexact arrays, except `Frozen` ones."""
    return model.trainable() if isinstance(model, AbstractModel) else _trainable_leaves(model)


class AbstractPointModel(AbstractModel):
    """A model evaluated one point at a time: ``__call__(x: (d,)) -> (m,)`` field values.

    Derivatives come from `derivatives`, a strategy object (forward mode by default, nested
    reverse mode as the oracle); `fields_at` groups requests by multi-index so each
    multi-index is computed once for all fields.
    """

    field_names: eqx.AbstractVar[tuple[str, ...]]
    derivatives: eqx.AbstractVar[AbstractDerivatives]

    @abc.abstractmethod
    def __call__(self, x: Float[Array, " d"]) -> Float[Array, " m"]: ...

    def fields_at(self, points, requests):
        orders = sorted({r.orders for r in requests})
        if not orders:
            return {}
        column = {name: i for i, name in enumerate(self.field_names)}

        def at_point(x):
            return self.derivatives(self, x, orders)  # (k, m)

        values = jax.vmap(at_point)(points)  # (n, k, m)
        row = {o: i for i, o in enumerate(orders)}
        return {r.name: values[:, row[r.orders], column[r.field]] for r in requests}


class PointFunction(AbstractPointModel):
    """Wrap any ``x -> fields`` function (with its parameters in a pytree) as a point model.

    Arguments:
        field_names: names of the m outputs.
        derivatives: the derivative strategy (e.g. `ForwardMode()`).
        fn: ``fn(params, x) -> (m,)``; static (not trained).
        params: the pytree of parameters the optimizer moves.
    """

    field_names: tuple[str, ...] = eqx.field(static=True)
    derivatives: AbstractDerivatives
    fn: object = eqx.field(static=True)
    params: object

    def __call__(self, x):
        return jnp.atleast_1d(self.fn(self.params, x))


def derivative_strategy(config) -> AbstractDerivatives:
    """The derivative strategy a model config names (``model.derivatives``)."""
    return STRATEGIES[config.derivatives]()


def field_dict(values: Float[Array, "n m"], names: Sequence[str]) -> Mapping[str, Array]:
    return {n: values[:, i] for i, n in enumerate(names)}


class Constrained(AbstractPointModel):
    """A point model whose fields meet their value conditions exactly.

    Field ``j`` with a lift becomes ``lift_j(x) + distance_j(x) * inner(x)_j``; see
    `pinnkit.core.constraints`. Works around any point model (MLP, Gaussians, Flax).
    """

    field_names: tuple[str, ...] = eqx.field(static=True)
    derivatives: AbstractDerivatives
    inner: AbstractPointModel
    lifts: tuple = eqx.field(static=True)  # per field: FieldLift or None

    def __init__(self, inner: AbstractPointModel, lifts: tuple):
        self.field_names = inner.field_names
        self.derivatives = inner.derivatives
        self.inner = inner
        self.lifts = tuple(lifts)

    def __call__(self, x):
        raw = self.inner(x)
        out = [
            raw[j] if lift is None else lift.lift(x) + lift.distance(x) * raw[j]
            for j, lift in enumerate(self.lifts)
        ]
        return jnp.stack(out)

    def fields_at(self, points, requests):
        if type(self.inner).fields_at is AbstractPointModel.fields_at:
            return super().fields_at(points, requests)  # differentiate the whole point function
        return self._leibniz(points, requests)

    def _leibniz(self, points, requests):
        """Keep an inner model's own derivatives (closed-form ones, say): by the Leibniz rule
        ``∂^α(B + D N) = ∂^α B + Σ_{β≤α} C(α, β) ∂^β D ∂^{α-β} N``, with ``B`` and ``D``
        differentiated by the strategy (they are cheap closed expressions of the point)."""
        column = {f: j for j, f in enumerate(self.field_names)}
        inner_req, lifted = {}, {}
        for r in requests:
            lift = self.lifts[column[r.field]]
            subs = [r.orders] if lift is None else _sub_indices(r.orders)
            for b in subs:
                inner_req[(r.field, b)] = Derivative(r.field, b, f"{r.field}@{b}")
            if lift is not None:
                lifted.setdefault(column[r.field], set()).update(subs)
        inner = self.inner.fields_at(points, list(inner_req.values()))
        parts = {}
        for j, subs in lifted.items():
            lift = self.lifts[j]
            orders = sorted(subs)
            fn = lambda x, lift=lift: jnp.stack([lift.lift(x), lift.distance(x)])
            parts[j] = (orders, jax.vmap(lambda x: self.derivatives(fn, x, orders))(points))
        out = {}
        for r in requests:
            j = column[r.field]
            if self.lifts[j] is None:
                out[r.name] = inner[f"{r.field}@{r.orders}"]
                continue
            orders, table = parts[j]
            row = {o: i for i, o in enumerate(orders)}
            value = table[:, row[r.orders], 0]
            for b in _sub_indices(r.orders):
                rest = tuple(a - c for a, c in zip(r.orders, b))
                coef = math.prod(math.comb(a, c) for a, c in zip(r.orders, b))
                value = value + coef * table[:, row[b], 1] * inner[f"{r.field}@{rest}"]
            out[r.name] = value
        return out


def _sub_indices(alpha: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every multi-index ``β ≤ α`` (componentwise)."""
    return [tuple(b) for b in itertools.product(*(range(a + 1) for a in alpha))]


class Orthonormal(AbstractModel):
    """Fields made orthonormal in L2 over the domain by construction.

    The inner model's fields ``phi`` become ``psi = L^{-1} phi`` with ``L L^T = S`` the Cholesky
    factor of their Gram matrix ``S_ij = ∫ phi_i phi_j`` (Gauss–Legendre quadrature), so
    ``∫ psi_i psi_j = δ_ij`` holds exactly, whatever the weights: Gram–Schmidt in the order of
    the fields, differentiable end to end. ``psi ≡ 0`` is not representable, so an eigenvalue
    residual cannot collapse to it, and no normalisation or orthogonality penalty (with its
    weight to tune) is needed. The map is linear, so derivatives mix the same way; homogeneous
    linear conditions (``psi = 0`` on a face, periodicity) survive it, others do not.

    Arguments:
        inner: the model whose fields are orthonormalised (all of its fields).
        nodes, weights: quadrature over the domain, ``(q, d)`` and ``(q,)``.
        coords: coordinate names (to name derivative requests).
    """

    inner: AbstractModel
    nodes: Frozen
    weights: Frozen
    rotation: Frozen
    coords: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, inner: AbstractModel, nodes, weights, coords: Sequence[str], rotation=None):
        self.inner = inner
        self.nodes = Frozen(jnp.asarray(nodes))
        self.weights = Frozen(jnp.asarray(weights))
        m = len(inner.field_names)
        self.rotation = Frozen(
            jnp.eye(m, dtype=self.nodes.value.dtype) if rotation is None else rotation
        )
        self.coords = tuple(coords)

    @property
    def field_names(self) -> tuple[str, ...]:
        return self.inner.field_names

    def transform(self) -> Float[Array, "m m"]:
        """``L^{-1}``: the matrix that maps the inner fields to orthonormal ones."""
        names = self.field_names
        nodes = self.nodes.value
        zero = (0,) * nodes.shape[1]
        values = self.inner.fields_at(nodes, [Derivative(f, zero, f) for f in names])
        phi = jnp.stack([values[f] for f in names], axis=-1)  # (q, m)
        gram = phi.T @ (self.weights.value.astype(phi.dtype)[:, None] * phi)
        chol = jnp.linalg.cholesky(gram)
        eye = jnp.eye(len(names), dtype=phi.dtype)
        inverse = jax.scipy.linalg.solve_triangular(chol, eye, lower=True)
        return self.rotation.value.astype(phi.dtype) @ inverse

    def ritz(self, potential) -> tuple["Orthonormal", Float[Array, " m"]]:
        """Rayleigh–Ritz in the span of the fields for ``H = -Δ + V``: rotate them to the
        eigenvectors of ``H_ij = ∫ ∇psi_i · ∇psi_j + V psi_i psi_j`` (weak form, on the
        model's quadrature) and return the rotated model and the Ritz values, ascending.

        States that are nearly degenerate (a double well's pair) are only fixed up to a
        rotation by their residuals; the Ritz step picks the rotation that diagonalises H, and
        each Ritz value is the best energy that span offers (min-max).

        Arguments:
            potential: ``V`` at points ``(q, d) -> (q,)``.
        """
        names = self.field_names
        nodes = self.nodes.value
        dim = nodes.shape[1]
        unit = [tuple(int(i == a) for i in range(dim)) for a in range(dim)]
        req = [Derivative(f, (0,) * dim, f) for f in names] + [
            Derivative(f, o, derivative_name(f, o, self.coords)) for f in names for o in unit
        ]
        values = self.fields_at(nodes, req)
        w = self.weights.value.astype(nodes.dtype)
        psi = jnp.stack([values[f] for f in names], -1)
        v = jnp.broadcast_to(jnp.asarray(potential(nodes), nodes.dtype), w.shape)
        ham = psi.T @ ((w * v)[:, None] * psi)
        for o in unit:
            grad = jnp.stack([values[derivative_name(f, o, self.coords)] for f in names], -1)
            ham = ham + grad.T @ (w[:, None] * grad)
        energies, vectors = jnp.linalg.eigh(0.5 * (ham + ham.T))
        # Keep each sign as it was (the largest component positive) so plots do not flip.
        signs = jnp.sign(jnp.take_along_axis(vectors, jnp.argmax(jnp.abs(vectors), 0)[None], 0))
        vectors = vectors * signs
        rotated = eqx.tree_at(
            lambda m: m.rotation.value, self, vectors.T @ self.rotation.value.astype(nodes.dtype)
        )
        return rotated, energies

    def fields_at(self, points, requests):
        names = self.field_names
        orders = sorted({r.orders for r in requests})
        inner_requests = [
            Derivative(f, o, derivative_name(f, o, self.coords)) for o in orders for f in names
        ]
        values = self.inner.fields_at(points, inner_requests)
        t = self.transform().astype(points.dtype)
        row = {f: i for i, f in enumerate(names)}
        out = {}
        for r in requests:
            stacked = jnp.stack(
                [values[derivative_name(f, r.orders, self.coords)] for f in names], axis=-1
            )
            out[r.name] = stacked @ t[row[r.field]]
        return out


def check_grid_backend(problem, config, backend: str) -> None:
    """What a grid backend (gp, odil) cannot do, refused with the key to change: exact
    conditions (it enforces them as rows on the face nodes), orthonormal fields, complex
    fields."""
    from ..errors import SpecError

    if config.hard_constraints is True:
        raise SpecError(
            f"the {backend} backend enforces conditions as loss terms on the face nodes; set "
            "hard_constraints: auto or false",
            path="model.hard_constraints",
        )
    if config.orthonormal is not False:
        raise SpecError(f"the {backend} backend has no orthonormal mode", path="model.orthonormal")
    if problem.complex_fields:
        raise SpecError(
            f"the {backend} backend has real fields only; split a complex field into parts",
            path="complex",
        )


def per_axis(value, dim: int, path: str, cast=float) -> list:
    """One value per coordinate, from one value or a list of ``dim`` (else a SpecError)."""
    from ..errors import SpecError

    values = list(value) if isinstance(value, (list, tuple)) else [value] * dim
    if len(values) != dim:
        raise SpecError(f"give one value or one per coordinate ({dim}), got {values}", path=path)
    return [cast(v) for v in values]
