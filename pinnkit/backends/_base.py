"""What a backend is: a trainable model that answers derivative requests at points.

`AbstractModel` is the one interface the objective and the trainer use: given points and
the derivatives an equation asked for, return them as named arrays. Pointwise models
(MLP, Gaussians, a Flax network, anything ``x -> fields``) get that for free from
`AbstractPointModel`, which maps a swappable derivative strategy over the points. Grid and
spectral backends implement `fields_at` their own way.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..core.derivatives import AbstractDerivatives
from ..core.domain import Derivative


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
