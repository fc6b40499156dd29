"""Bring a Flax network (nnx or linen) as the model.

A Flax module becomes a `PointFunction`: its parameters are the trained pytree, its apply
function is static. Flax is imported only when used (``pip install pinnkit[flax]``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.derivatives import AbstractDerivatives, ForwardMode
from ._base import PointFunction


def from_flax(
    module,
    field_names: Sequence[str],
    *,
    params=None,
    derivatives: AbstractDerivatives | None = None,
) -> PointFunction:
    """Wrap a Flax module mapping one point ``(d,)`` to ``(m,)`` field values.

    Arguments:
        module: a ``flax.nnx.Module`` (its parameters are taken from it), or a
            ``flax.linen.Module`` together with ``params`` from ``module.init``.
        field_names: names of the outputs.
        params: the linen variables (``{"params": ...}``); not used for nnx.
        derivatives: the derivative strategy (forward mode by default).

    Example:
        >>> from flax import nnx
        >>> net = nnx.Sequential(nnx.Linear(2, 32, rngs=nnx.Rngs(0)), nnx.tanh,
        ...                      nnx.Linear(32, 1, rngs=nnx.Rngs(1)))
        >>> model = from_flax(net, ["u"])
    """
    strategy = derivatives if derivatives is not None else ForwardMode()
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - flax is an extra
        nnx = None
    if nnx is not None and isinstance(module, nnx.Module):
        graphdef, state = nnx.split(module)

        def apply_nnx(p, x):
            return nnx.merge(graphdef, p)(x)

        return PointFunction(tuple(field_names), strategy, apply_nnx, state)
    if params is None:
        raise TypeError("a linen module needs its variables: from_flax(module, names, params=...)")
    return PointFunction(tuple(field_names), strategy, module.apply, params)
