"""The ODIL backend: the fields' values on a space-time grid are the unknowns (no network).

"Optimizing a DIscrete Loss" (Karnakov, Litvinov & Koumoutsakos, PNAS Nexus 2024, arXiv
2205.04611) and its multigrid variant (arXiv 2303.04679). The equation a spec writes is the
same one every other backend answers; here every derivative it asks for is a
finite-difference stencil on the grid (DESIGN.md §3, the "grid" answer):

- inside, second-order central differences (``u_x`` by ``(u_{i+1} - u_{i-1}) / 2h``, ``u_xx``
  by ``(u_{i+1} - 2u_i + u_{i-1}) / h²``, a mixed ``u_xt`` as the product of the two central
  first differences), so the residual at an interior node is the classic discretisation of
  the PDE there;
- on the faces, second-order one-sided differences, so conditions on derivatives (``u_t`` at
  ``t = 0``, a Neumann wall) are residual rows on the face nodes;
- between the nodes (data at arbitrary points, the report's evaluation grid), multilinear
  interpolation of the node values and of their difference grids.

The loss is the sum of squared discrete residuals (the interior nodes), condition rows (the
face nodes), data and regularisation terms — `pinnkit.core.objective.Objective` with the
model's ``collocation_axes()``. Whatever minimises it works: Gauss–Newton on the sparse
residual Jacobian (matrix-free, `pinnkit.train.trainer.GaussNewton`; the default), L-BFGS or
Adam. With ``multigrid: L`` the field is parametrised as a sum of ``L`` fields on ever
coarser grids (``n_l = (n - 1) / 2^l + 1`` nodes per axis), each interpolated to the finest:
a re-parameterisation that does not change the set of representable fields but lets a
first-order optimizer move smooth components at the coarse levels' pace (the multigrid
variant's preconditioner).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..core.domain import parse_derivative
from ..errors import SpecError
from ._base import AbstractModel, check_grid_backend, per_axis
from .config import ODILConfig

MAX_GRID_POINTS = 1 << 24


def difference(u: Array, axis: int, order: int, h: float) -> Array:
    """The ``order``-th derivative of the node values ``u`` along ``axis`` (spacing ``h``),
    second-order accurate: central inside, one-sided on the two end nodes. Orders above 2 are
    compositions of the first two (second order inside, first order within a few nodes of
    the ends). Same shape as ``u``."""
    if order == 0:
        return u
    n = u.shape[axis]
    take = lambda i: jax.lax.index_in_dim(u, i % n, axis, keepdims=True)
    piece = lambda lo, hi: jax.lax.slice_in_dim(u, lo, hi, axis=axis)
    if order > 2:
        return difference(difference(u, axis, 2, h), axis, order - 2, h)
    if order == 1:
        if n < 3:
            raise ValueError(f"a first difference needs 3 nodes along an axis, got {n}")
        inner = (piece(2, n) - piece(0, n - 2)) / (2 * h)
        first = (-3 * take(0) + 4 * take(1) - take(2)) / (2 * h)
        last = (3 * take(-1) - 4 * take(-2) + take(-3)) / (2 * h)
    else:
        if n < 4:
            raise ValueError(f"a second difference needs 4 nodes along an axis, got {n}")
        inner = (piece(2, n) - 2 * piece(1, n - 1) + piece(0, n - 2)) / h**2
        first = (2 * take(0) - 5 * take(1) + 4 * take(2) - take(3)) / h**2
        last = (2 * take(-1) - 5 * take(-2) + 4 * take(-3) - take(-4)) / h**2
    return jnp.concatenate([first, inner, last], axis=axis)


def interpolation_matrix(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """``(len(fine), len(coarse))``: piecewise-linear interpolation from the coarse nodes to
    the fine ones (both uniform over the same interval)."""
    n = len(coarse)
    h = (coarse[-1] - coarse[0]) / (n - 1)
    s = np.clip((fine - coarse[0]) / h, 0.0, n - 1.0)
    i = np.clip(np.floor(s).astype(int), 0, n - 2)
    w = s - i
    out = np.zeros((len(fine), n))
    rows = np.arange(len(fine))
    out[rows, i] += 1.0 - w
    out[rows, i + 1] += w
    return out


def level_sizes(sizes: Sequence[int], levels: int) -> list[tuple[int, ...]]:
    """Nodes per axis of each multigrid level, finest first: ``(n - 1) / 2^l + 1``, rounded
    up, never under 3."""
    out = []
    for level in range(levels):
        out.append(tuple(max(3, -(-(n - 1) // 2**level) + 1) for n in sizes))
    return out


def _along(mat: Array, x: Array, axis: int) -> Array:
    """``mat`` (``n × k``) applied along ``axis`` of ``x`` (length ``k`` there)."""
    return jnp.moveaxis(jnp.tensordot(mat, x, axes=([1], [axis])), 0, axis)


class ODIL(AbstractModel):
    """Field values on a uniform tensor grid, optionally as a sum of multigrid levels.

    Arguments:
        axes: the grid's nodes per axis, faces included (uniform).
        field_names: the fields (each one value per node).
        levels: multigrid levels (1: the plain grid).
        max_order: the highest derivative order along one axis that will be asked for (sets
            the stencil width of `jacobian_colours`).
        dtype: the values' dtype.

    Example:
        >>> from pinnkit.core.domain import Derivative
        >>> x = np.linspace(0.0, 1.0, 11)
        >>> m = ODIL([x], ("u",)).with_values(jnp.asarray(x**2)[None])
        >>> float(m.fields_on_grid([Derivative("u", (2,), "u_xx")])["u_xx"][0])
        2.0...
    """

    levels: tuple[Array, ...]  # finest first; each (m, *sizes of the level)
    axes: tuple[tuple[float, ...], ...] = eqx.field(static=True)
    field_names: tuple[str, ...] = eqx.field(static=True)
    max_order: int = eqx.field(static=True)
    midpoints: bool = eqx.field(static=True, default=False)  # the objective asks

    def __init__(
        self,
        axes: Sequence[np.ndarray],
        field_names: Sequence[str],
        *,
        levels: int = 1,
        max_order: int = 2,
        dtype=None,
    ):
        dtype = dtype or jnp.zeros(()).dtype
        self.max_order = int(max_order)
        self.axes = tuple(tuple(float(v) for v in np.asarray(a)) for a in axes)
        self.field_names = tuple(field_names)
        m = len(self.field_names)
        sizes = [len(a) for a in self.axes]
        self.levels = tuple(jnp.zeros((m, *s), dtype) for s in level_sizes(sizes, levels))
        self.midpoints = False

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple((a[-1] - a[0]) / (len(a) - 1) for a in self.axes)

    def _prolongations(self, level: int) -> list[np.ndarray]:
        shape = self.levels[level].shape[1:]
        return [
            interpolation_matrix(np.asarray(a), np.linspace(a[0], a[-1], n))
            for a, n in zip(self.axes, shape)
        ]

    def grid_values(self) -> Float[Array, "m ..."]:
        """The fields on the finest grid, ``(m, n_1, ..., n_d)``: the sum of the levels."""
        total = self.levels[0]
        for level in range(1, len(self.levels)):
            x = self.levels[level]
            for a, mat in enumerate(self._prolongations(level)):
                x = _along(jnp.asarray(mat, x.dtype), x, a + 1)
            total = total + x
        return total

    def with_values(self, values: Array) -> ODIL:
        """The same model holding ``values`` (``(m, n_1, ..., n_d)``) on its finest level and
        zeros on the coarser ones: an initial guess (a forward run's field, say)."""
        values = jnp.asarray(values, self.levels[0].dtype).reshape(self.levels[0].shape)
        levels = (values,) + tuple(jnp.zeros_like(x) for x in self.levels[1:])
        return eqx.tree_at(lambda m: m.levels, self, levels)

    def _differences(self, requests) -> dict[str, Array]:
        """Each request's difference grid on the whole grid (faces one-sided)."""
        column = {n: i for i, n in enumerate(self.field_names)}
        values = self.grid_values()
        out = {}
        for r in requests:
            d = values[column[r.field]]
            for a, (o, h) in enumerate(zip(r.orders, self.spacing)):
                d = difference(d, a, o, h)
            out[r.name] = d
        return out

    def jacobian_colours(self) -> ODIL:
        """For a sparse Jacobian (`pinnkit.train.sparse`): the model with each finest-level
        value replaced by its colour, such that no residual row depends on two values of one
        colour. A row's stencil (one-sided on the faces, interpolated between nodes) spans at
        most ``w = 2 max_order + 3`` nodes per axis, so nodes ``w`` apart share a colour:
        ``w^d`` colours per field. Coarser multigrid levels couple widely: ``-1`` (a colour
        each)."""
        width = 2 * self.max_order + 3
        shape = self.levels[0].shape
        index = np.indices(shape[1:])
        colour = sum((index[a] % width) * width**a for a in range(len(shape) - 1))
        fields = np.arange(shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
        finest = fields * width ** (len(shape) - 1) + colour[None]
        rest = tuple(np.full(x.shape, -1) for x in self.levels[1:])
        return eqx.tree_at(lambda m: m.levels, self, (finest,) + rest)

    # -- the model interface ----------------------------------------------------------------

    def collocation_axes(self) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(a) for a in self.axes)

    def fields_on_grid(self, requests):
        """The requested differences at the interior nodes (C order)."""
        inner = tuple(slice(1, -1) for _ in self.axes)
        return {k: v[inner].reshape(-1) for k, v in self._differences(requests).items()}

    def fields_at(self, points, requests):
        """The requested differences at any points, by multilinear interpolation of the
        difference grids (exact node values at the nodes)."""
        grids = self._differences(requests)
        lo = np.asarray([a[0] for a in self.axes])
        sizes = [len(a) for a in self.axes]
        s = (points - jnp.asarray(lo, points.dtype)) / jnp.asarray(self.spacing, points.dtype)
        index = jnp.clip(jnp.floor(s).astype(jnp.int32), 0, jnp.asarray(sizes) - 2)
        frac = jnp.clip(s - index, 0.0, 1.0)
        out = {}
        for name, g in grids.items():
            total = jnp.zeros(points.shape[0], points.dtype)
            for corner in itertools.product((0, 1), repeat=len(self.axes)):
                weight = jnp.ones(points.shape[0], points.dtype)
                for a, c in enumerate(corner):
                    weight = weight * (frac[:, a] if c else 1.0 - frac[:, a])
                total = (
                    total + weight * g[tuple(index[:, a] + corner[a] for a in range(len(corner)))]
                )
            out[name] = total.astype(points.dtype)
        return out


def _max_order(problem) -> int:
    """The highest order along one axis of any derivative the problem's equation, conditions
    or data ask for."""
    symbols = set(problem.equation.requests)
    for cond in problem.conditions:
        symbols |= set(cond.targets)
        for fn in cond.residuals:
            symbols |= set(getattr(fn, "names", ()))
    for obs in problem.data:
        symbols |= set(obs.values)
    orders = [0]
    for symbol in symbols:
        d = parse_derivative(symbol, problem.coords, problem.fields)
        if d is not None:
            orders.append(max(d.orders))
    return max(orders)


def build_odil(problem, config: ODILConfig, *, dtype, key):
    """The spec's ``model: {backend: odil}``: node values on a grid over the problem's box."""
    from ._base import BuiltModel

    del key  # the initial state is zero
    box = problem.box
    check_grid_backend(problem, config, "odil")
    sizes = per_axis(config.grid, box.dim, "model.grid", int)
    if min(sizes) < 4:
        raise SpecError(f"each grid size must be >= 4, got {sizes}", path="model.grid")
    if math.prod(sizes) > MAX_GRID_POINTS:
        raise SpecError(
            f"a grid of {sizes} has {math.prod(sizes)} nodes, more than {MAX_GRID_POINTS}; "
            "lower model.grid",
            path="model.grid",
        )
    axes = [np.linspace(box.lo[a], box.hi[a], n) for a, n in enumerate(sizes)]
    model = ODIL(
        axes, problem.fields, levels=config.multigrid, max_order=_max_order(problem), dtype=dtype
    )
    return BuiltModel(model, frozenset(), periodic_exact=False)
