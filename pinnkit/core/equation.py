"""The equation contract: an equation declares the derivatives it needs and computes residuals
from them with plain arithmetic (DESIGN.md §3). The library of equations is
`pinnkit.equations`; the `Problem` holds one."""

from __future__ import annotations

import abc
from collections.abc import Mapping

import equinox as eqx
from jaxtyping import Array

Env = Mapping[str, Array]


class AbstractEquation(eqx.Module):
    """A PDE written as residuals that vanish at the solution.

    Subclasses set `names` (one per residual) and `requests` (every symbol their residuals
    read that a backend must supply: fields and derivatives; coordinates, params and unknowns
    are supplied by the objective) and implement `residuals`.
    """

    names: eqx.AbstractVar[tuple[str, ...]]
    requests: eqx.AbstractVar[tuple[str, ...]]

    @abc.abstractmethod
    def residuals(self, env: Env) -> tuple[Array, ...]:
        """Residual arrays (one per name), each shaped like the points' batch."""
