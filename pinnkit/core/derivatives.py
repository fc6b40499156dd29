"""Partial derivatives of point functions by multi-index, with swappable strategies.

A field model is a *point function* ``fn: Float[Array, "d"] -> Float[Array, "m"]``: one point of
the d input coordinates in, all m output fields out. PDE residuals need partial derivatives of
those fields with respect to the coordinates. They are requested as *multi-indices*: a tuple of
d non-negative ints, so for coordinates ``(x, t)`` the index ``(2, 0)`` is d²/dx², ``(1, 1)`` is
d²/dxdt and ``(0, 0)`` is the value itself.

A strategy (an `AbstractDerivatives`) evaluates a list of multi-indices at ONE point and returns
one row per request; callers `jax.vmap` over points. Every strategy is pure JAX and safe under
`jax.jit`, `jax.vmap` and `jax.grad` (training differentiates the result with respect to the
parameters that ``fn`` closes over). The strategies are

- `NestedReverse`: repeated `jax.jacrev`, reading each multi-index off the full derivative
  tensor of its order. Slow, simple, the oracle the others are tested against.
- `ForwardMode`: nested `jax.jvp` along unit vectors, sharing work between requests through a
  trie of the requested multi-indices (see `ForwardMode`).
- `TaylorMode`: univariate Taylor series through `jax.experimental.jet`; pure derivatives come
  from one jet per axis, mixed partials of any order by polarisation (exact interpolation from
  jets along integer lattice directions), or optionally from `ForwardMode` (see `TaylorMode`).

On top sit `partial_derivatives` (default strategy `ForwardMode`) and the vector-calculus
operators `gradient`, `jacobian`, `divergence`, `laplacian` and `hessian`.
"""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Literal

import equinox as eqx
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
from jax.experimental.jet import jet
from jaxtyping import Array, Float

from pinnkit.errors import SpecError

__all__ = [
    "MultiIndex",
    "AbstractDerivatives",
    "NestedReverse",
    "ForwardMode",
    "TaylorMode",
    "partial_derivatives",
    "gradient",
    "jacobian",
    "divergence",
    "laplacian",
    "hessian",
]

MultiIndex = tuple[int, ...]
# Single-axis shapes are written " d" rather than "d": jaxtyping strips the space, and without it
# ruff reads the string as a forward reference to an undefined name (F821).
PointFn = Callable[[Float[Array, " d"]], Float[Array, " m"]]


# ---------------------------------------------------------------------------------------------
# Validation and assembly shared by every strategy
# ---------------------------------------------------------------------------------------------


def _as_point(x) -> Float[Array, " d"]:
    """Checks that `x` is a single point: a 1-D floating array."""
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise SpecError(
            f"derivatives are taken at ONE point: x must have shape (d,), got shape "
            f"{tuple(x.shape)}; to evaluate many points, jax.vmap over them"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise SpecError(
            f"x must be a floating-point array to be differentiated, got dtype {x.dtype}; "
            f"convert it, e.g. x.astype(float)"
        )
    return x


def _output_struct(fn: PointFn, x: Float[Array, " d"]) -> jax.ShapeDtypeStruct:
    """Traces `fn` abstractly (no FLOPs) to check it returns one vector of m fields."""
    out = jax.eval_shape(fn, x)
    if not isinstance(out, jax.ShapeDtypeStruct) or len(out.shape) != 1:
        got = tuple(out.shape) if isinstance(out, jax.ShapeDtypeStruct) else type(out).__name__
        raise SpecError(
            f"fn must map a point of shape (d,) to the fields of shape (m,), got {got}; "
            f"for a scalar field return e.g. jnp.atleast_1d(u)"
        )
    return out


def _is_int(value) -> bool:
    # bool is an int subclass, but `(True, 0)` is far more likely a bug than a derivative order.
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _check_orders(orders, d: int) -> tuple[MultiIndex, ...]:
    """Normalises `orders` to a tuple of int tuples, raising SpecError on anything malformed."""
    if isinstance(orders, str) or not isinstance(orders, Sequence):
        raise SpecError(
            f"orders must be a sequence of multi-indices (tuples of {d} non-negative ints), "
            f"got {orders!r}"
        )
    if len(orders) > 0 and all(_is_int(o) for o in orders):
        raise SpecError(
            f"orders must be a sequence of multi-indices, got the bare multi-index "
            f"{tuple(orders)!r}; wrap it in a list: [{tuple(int(o) for o in orders)!r}]"
        )
    checked = []
    for i, index in enumerate(orders):
        if not isinstance(index, tuple | list):
            raise SpecError(
                f"orders[{i}] = {index!r} is not a multi-index: expected a tuple of {d} "
                f"non-negative ints (one derivative order per input coordinate)"
            )
        if len(index) != d:
            raise SpecError(
                f"multi-index orders[{i}] = {tuple(index)!r} has length {len(index)}, expected "
                f"length {d} (one derivative order per input coordinate of x)"
            )
        if not all(_is_int(n) and n >= 0 for n in index):
            raise SpecError(
                f"multi-index orders[{i}] = {tuple(index)!r} must hold non-negative ints, got "
                f"{[type(n).__name__ if not _is_int(n) else n for n in index]!r}"
            )
        checked.append(tuple(int(n) for n in index))
    return tuple(checked)


def _prepare(fn: PointFn, x, orders) -> tuple[Float[Array, " d"], tuple[MultiIndex, ...], tuple]:
    """Validates a request; returns the point, the normalised orders and the output struct."""
    x = _as_point(x)
    checked = _check_orders(orders, x.shape[0])
    out = _output_struct(fn, x)
    return x, checked, out


def _unique(orders: tuple[MultiIndex, ...]) -> tuple[MultiIndex, ...]:
    # dict keeps first-occurrence order, so traces are deterministic across calls.
    return tuple(dict.fromkeys(orders))


def _assemble(
    values: dict[MultiIndex, Array], orders: tuple[MultiIndex, ...], out: jax.ShapeDtypeStruct
) -> Float[Array, "k m"]:
    """Stacks the computed derivatives into rows in the requested order (repeats included)."""
    if not orders:
        return jnp.zeros((0, *out.shape), out.dtype)
    return jnp.stack([jnp.asarray(values[o], out.dtype) for o in orders])


def _shift(index: MultiIndex, axis: int, by: int) -> MultiIndex:
    return index[:axis] + (index[axis] + by,) + index[axis + 1 :]


def _axis_sequence(index: MultiIndex) -> list[int]:
    """Expands a multi-index to its sorted sequence of axes, e.g. (2, 1) -> [0, 0, 1]."""
    return [axis for axis, n in enumerate(index) for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------


class AbstractDerivatives(eqx.Module):
    """Computes partial derivatives of a point function by a multi-index."""

    @abc.abstractmethod
    def __call__(
        self, fn: PointFn, x: Float[Array, " d"], orders: Sequence[MultiIndex]
    ) -> Float[Array, "k m"]:
        """Evaluates the requested partial derivatives of `fn` at the point `x`.

        Works at ONE point; callers `jax.vmap` over points. Safe under `jax.jit`, `jax.vmap` and
        `jax.grad` with respect to parameters closed over by `fn`. Repeated requests are
        computed once.

        Arguments:
            fn: the point function, mapping coordinates of shape (d,) to fields of shape (m,).
            x: the point, shape (d,), floating dtype.
            orders: k multi-indices, each a tuple of d non-negative ints.

        Returns:
            An array of shape (k, m): row i holds d^{orders[i]} fn (x) for all m outputs. A zero
            multi-index gives fn(x).

        Raises:
            SpecError: at trace time, for a malformed multi-index, a point that is not 1-D and
                floating, or an `fn` that does not return a 1-D array.
        """
        raise NotImplementedError


class NestedReverse(AbstractDerivatives):
    """Repeated reverse mode: the oracle the other strategies are tested against.

    For each total order n among the requests, n nested `jax.jacrev` give the full derivative
    tensor of shape (m, d, ..., d), and every requested multi-index of that order is read off
    it at its sorted axis sequence, e.g. (2, 1) -> [:, 0, 0, 1]. One chain per order rather than
    one per multi-index keeps it obviously right while compiling several times faster (the 35
    multi-indices up to order 4 in d = 3 compile in ~30 s as one chain each, in ~4 s as one
    chain per order). The n-th level needs m d^(n-1) reverse passes, so keep it to tests and
    small problems.
    """

    def __call__(
        self, fn: PointFn, x: Float[Array, " d"], orders: Sequence[MultiIndex]
    ) -> Float[Array, "k m"]:
        x, orders, out = _prepare(fn, x, orders)
        values = {}
        unique = _unique(orders)
        for total in sorted({sum(index) for index in unique}):
            tensor = _nested_jacrev(fn, total)(x)
            for index in unique:
                if sum(index) == total:
                    values[index] = tensor[(slice(None), *_axis_sequence(index))]
        return _assemble(values, orders, out)


def _nested_jacrev(fn: PointFn, order: int) -> Callable[[Array], Array]:
    g = fn
    for _ in range(order):
        g = jax.jacrev(g)
    return g


class ForwardMode(AbstractDerivatives):
    """Nested forward mode along unit vectors, sharing work between requests.

    Each multi-index is expanded to its sorted sequence of axes, e.g. (2, 1) -> [0, 0, 1], and
    the sequences form a trie whose root is the value fn(x). A trie node is computed by one
    more `jax.jvp` along the node's axis on top of its parent's function. Because
    ``jax.jvp(g, (x,), (e,))`` returns ``(g(x), Dg·e)``, the primal outputs of a nested chain
    give every ancestor for free: u, u_x and u_xx come out of one chain of two jvps, and only
    the leaves of the trie start a chain of their own. Every value a chain produces is kept, so
    a node that some other chain happens to produce (u_y inside the chain for u_xy) is not
    recomputed either. Each jvp carries all m outputs at once.

    Chains that branch apart re-evaluate their shared prefix (for the Laplacian, u is computed
    by the x chain and the y chain); under `jax.jit` XLA usually merges those duplicates.
    """

    def __call__(
        self, fn: PointFn, x: Float[Array, " d"], orders: Sequence[MultiIndex]
    ) -> Float[Array, "k m"]:
        x, orders, out = _prepare(fn, x, orders)
        values = _forward_values(fn, x, frozenset(orders))
        return _assemble(values, orders, out)


def _forward_values(
    fn: PointFn, x: Float[Array, " d"], wanted: frozenset[MultiIndex]
) -> dict[MultiIndex, Array]:
    """Every derivative in `wanted` (and possibly a few more) by nested forward mode."""
    if not wanted:
        return {}
    basis = np.eye(x.shape[0], dtype=x.dtype)
    plan, _ = _forward_plan(fn, wanted, basis)
    return plan(x)


def _forward_plan(
    g: PointFn, wanted: frozenset[MultiIndex], basis: np.ndarray
) -> tuple[Callable[[Array], dict[MultiIndex, Array]], frozenset[MultiIndex]]:
    """Builds, at trace time, a function returning every derivative of `g` in `wanted`.

    This walks the trie of sorted axis sequences without materialising it: the children of the
    root are the smallest axis that any request uses. The subtree under that axis is the set of
    its requests with one derivative along the axis removed; it is planned recursively and
    wrapped in a single jvp along the axis, whose primal outputs give the subtree's own values
    and whose tangents give its children's. Requests that chain does not produce (the other
    root children) get a plan of their own.

    Every value a chain computes is returned, not only the requested ones: forward mode
    propagates the tangents of all intermediates anyway, so extra outputs cost nothing after
    XLA's dead-code elimination, and they let other requests be served for free.

    Arguments:
        g: the point function being differentiated.
        wanted: the requested multi-indices.
        basis: the unit vectors, in the dtype of x.

    Returns:
        The plan, x -> {multi-index: value}, and the static set of multi-indices it returns (a
        superset of `wanted`).
    """
    zero = (0,) * basis.shape[0]
    if all(sum(index) == 0 for index in wanted):
        return (lambda x: {zero: g(x)}), frozenset({zero})
    axis = min(a for index in wanted for a, n in enumerate(index) if n > 0)
    below = frozenset(_shift(index, axis, -1) for index in wanted if index[axis] > 0)
    inner, inner_keys = _forward_plan(g, below, basis)
    tangent = basis[axis]

    def chain(x):
        primal, tangents = jax.jvp(inner, (x,), (tangent,))
        values = dict(primal)
        for index, value in tangents.items():
            # A primal already holds any index that both sides produce; either is exact.
            values.setdefault(_shift(index, axis, 1), value)
        return values

    keys = inner_keys | {_shift(index, axis, 1) for index in inner_keys}
    rest = wanted - keys
    if not rest:
        return chain, keys
    other, other_keys = _forward_plan(g, rest, basis)

    def both(x):
        return {**other(x), **chain(x)}

    return both, keys | other_keys


class TaylorMode(AbstractDerivatives):
    """Univariate Taylor-mode arithmetic through `jax.experimental.jet`.

    One jet of order n along a direction v gives all directional derivatives d^k fn/dv^k for
    k = 1..n at once, with cost that grows about quadratically in n rather than exponentially
    as nested jvps do. Pure derivatives along an axis therefore come from one jet along that
    unit vector, up to the highest order requested (u_x, u_xx, u_xxx in one pass). At the
    orders PINNs use (<= 3) that asymptotic edge does not show yet: on CPU, for a 4x50 tanh
    MLP, `ForwardMode` evaluated 1.5-2x faster on every request set tried, parameter gradients
    were level within noise for pure derivatives and slower here for mixed third-order sets
    (benchmarks/derivative_strategies.py).

    Mixed partials depend on `mixed`:

    - ``"polarise"`` (default): every mixed partial, of any total order k, is recovered exactly
      from k-th derivatives along the integer directions j with |j| = k supported on the
      multi-index's axes (for order 2 this is polarisation: u_xy = (D²_{e_x+e_y} u - u_xx -
      u_yy) / 2). The weights are exact rationals solved at trace time (Griewank, Utke and
      Walther, Math. Comp. 2000). Directions are shared between requests. The subtraction
      loses some accuracy: expect errors of a few ulps times the size of the largest
      directional derivative involved, not of the mixed partial itself.
    - ``"forward"``: mixed partials are delegated to `ForwardMode`; pure ones still use jets.

    Each direction gets its own jet, up to the highest order asked along it; the primal pass
    they all repeat is merged by XLA under `jax.jit`. `jet` covers fewer primitives than `jvp`
    (no `reduce_prod`, and custom-JVP functions such as `jax.nn.relu` fail to trace); such an
    `fn` raises a `SpecError` that says so.

    Arguments:
        mixed: how mixed partials are computed, ``"polarise"`` or ``"forward"``.
    """

    mixed: Literal["polarise", "forward"] = eqx.field(default="polarise", static=True)

    def __check_init__(self):
        if self.mixed not in ("polarise", "forward"):
            raise SpecError(
                f"TaylorMode(mixed=...) must be 'polarise' or 'forward', got {self.mixed!r}"
            )

    def __call__(
        self, fn: PointFn, x: Float[Array, " d"], orders: Sequence[MultiIndex]
    ) -> Float[Array, "k m"]:
        x, orders, out = _prepare(fn, x, orders)
        unique = _unique(orders)
        d = x.shape[0]
        zero = (0,) * d
        mixed = [index for index in unique if sum(n > 0 for n in index) > 1]
        jetted = [index for index in unique if sum(n > 0 for n in index) == 1]
        values: dict[MultiIndex, Array] = {}
        if self.mixed == "forward" and mixed:
            values.update(_forward_values(fn, x, frozenset(mixed)))
            mixed = []

        # recipes[index] = [(primitive direction, order, weight)]: d^index fn = sum of
        # weight * (order-th derivative along direction).
        recipes: dict[MultiIndex, list[tuple[tuple[int, ...], int, float]]] = {}
        for index in jetted:
            axis = next(a for a, n in enumerate(index) if n > 0)
            recipes[index] = [(_unit(axis, d), index[axis], 1.0)]
        for index in mixed:
            recipes[index] = _polarisation_recipe(index)

        need: dict[tuple[int, ...], int] = {}
        for recipe in recipes.values():
            for direction, order, _ in recipe:
                need[direction] = max(need.get(direction, 0), order)
        series, primal = _directional_series(fn, x, need)

        for index, recipe in recipes.items():
            values[index] = sum(
                weight * series[direction][order - 1] for direction, order, weight in recipe
            )
        if zero in unique and zero not in values:
            values[zero] = fn(x) if primal is None else primal
        return _assemble(values, orders, out)


def _unit(axis: int, d: int) -> MultiIndex:
    return tuple(int(a == axis) for a in range(d))


def _directional_series(
    fn: PointFn, x: Float[Array, " d"], need: dict[tuple[int, ...], int]
) -> tuple[dict[tuple[int, ...], list[Array]], Array | None]:
    """Runs one jet per direction; returns derivatives 1..n along each.

    Arguments:
        fn: the point function.
        x: the point.
        need: direction (an integer vector) -> highest derivative order needed along it.

    Returns:
        direction -> [d fn/dv, ..., d^n fn/dv^n] (each of shape (m,)), and fn(x) if any jet
        ran (its primal output), else None.
    """
    series: dict[tuple[int, ...], list[Array]] = {}
    primal = None
    for direction, order in need.items():
        # One jet per direction rather than one jax.vmap over directions: vmapping with x
        # unbatched would share the primal pass, but the batched program it makes is slower
        # (4x for the parameter gradient of a Laplacian of a tanh MLP on CPU), and XLA merges
        # the identical primal passes of separate jets anyway.
        v = jnp.asarray(direction, dtype=x.dtype)
        terms = [v] + [jnp.zeros_like(v)] * (order - 1)
        try:
            primal, series[direction] = jet(fn, (x,), (terms,))
        except KeyError as error:
            # jet looks rules up in a dict keyed by primitive; a miss surfaces as a bare KeyError.
            if not error.args or not isinstance(error.args[0], jax.extend.core.Primitive):
                raise
            raise SpecError(
                f"TaylorMode cannot differentiate fn: jax.experimental.jet has no Taylor rule for "
                f"the primitive '{error.args[0]}' used by fn; use ForwardMode() instead, or "
                f"rewrite fn without it (e.g. jnp.prod -> explicit products)"
            ) from error
        except jax.errors.UnexpectedTracerError as error:
            raise SpecError(
                "TaylorMode cannot differentiate fn: jax.experimental.jet failed to trace it, as "
                "it does for functions with custom JVP/VJP rules (jax.nn.relu, jax.nn.softplus, "
                "jnp.logaddexp, ...); use ForwardMode() instead, or a jet-friendly activation "
                "such as tanh"
            ) from error
    return series, primal


def _polarisation_recipe(index: MultiIndex) -> list[tuple[tuple[int, ...], int, float]]:
    """Expresses a mixed partial through pure k-th directional derivatives.

    Returns:
        [(primitive direction, k, weight)] with d^index fn = sum weight * D^k_direction fn.
    """
    d = len(index)
    support = tuple(a for a, n in enumerate(index) if n > 0)
    order = sum(index)
    lattice, inverse = _polarisation_weights(order, len(support))
    row = inverse[lattice.index(tuple(index[a] for a in support))]
    recipe = []
    for point, weight in zip(lattice, row, strict=True):
        if weight == 0:
            continue
        # Jets along j and along j / gcd(j) differ by the factor gcd^k; using the primitive
        # direction lets requests of different orders share one jet (e.g. e_x + e_y).
        g = math.gcd(*point)
        direction = [0] * d
        for a, n in zip(support, point, strict=True):
            direction[a] = n // g
        recipe.append((tuple(direction), order, float(weight * g**order)))
    return recipe


@functools.cache
def _polarisation_weights(
    order: int, dims: int
) -> tuple[list[tuple[int, ...]], list[list[Fraction]]]:
    """Exact interpolation weights from k-th directional derivatives to k-th partials.

    Along an integer direction j with |j| = k, the k-th derivative is
    D^k_j f = sum_{|b| = k} k! / b! * j^b * d^b f, a square linear system M over the lattice
    {j : |j| = k}, which is unisolvent for homogeneous polynomials of degree k, so M is
    invertible. It is solved in exact rational arithmetic so that zero weights are exactly zero
    (those directions are skipped) and no rounding enters the weights.

    Arguments:
        order: k, the total derivative order.
        dims: the number of axes involved (the support size of the multi-index).

    Returns:
        The lattice (tuples of length `dims` summing to k) and M^{-1} as rows of Fractions: row
        b holds the weights of the lattice directions for the partial d^b.
    """
    lattice = _compositions(order, dims)
    size = len(lattice)
    factorial = math.factorial(order)
    matrix = [
        [
            Fraction(factorial, math.prod(math.factorial(n) for n in b))
            * math.prod(ji**bi for ji, bi in zip(j, b, strict=True))
            for b in lattice
        ]
        for j in lattice
    ]
    # Gauss-Jordan on [M | I]; the system is at most a few dozen unknowns for PDE orders.
    augmented = [row + [Fraction(int(i == r)) for i in range(size)] for r, row in enumerate(matrix)]
    for col in range(size):
        pivot = next(r for r in range(col, size) if augmented[r][col] != 0)
        augmented[col], augmented[pivot] = augmented[pivot], augmented[col]
        lead = augmented[col][col]
        augmented[col] = [v / lead for v in augmented[col]]
        for r in range(size):
            if r != col and augmented[r][col] != 0:
                factor = augmented[r][col]
                augmented[r] = [
                    v - factor * p for v, p in zip(augmented[r], augmented[col], strict=True)
                ]
    inverse = [row[size:] for row in augmented]
    return lattice, inverse


def _compositions(total: int, parts: int) -> list[tuple[int, ...]]:
    """All tuples of `parts` non-negative ints summing to `total`, in lexicographic order."""
    if parts == 1:
        return [(total,)]
    return [
        (first, *rest)
        for first in range(total, -1, -1)
        for rest in _compositions(total - first, parts - 1)
    ]


# ---------------------------------------------------------------------------------------------
# Convenience functions and vector-calculus operators
# ---------------------------------------------------------------------------------------------


def _resolve(strategy: AbstractDerivatives | None) -> AbstractDerivatives:
    if strategy is None:
        return ForwardMode()
    if not isinstance(strategy, AbstractDerivatives):
        raise SpecError(
            f"strategy must be an AbstractDerivatives (e.g. ForwardMode()), got "
            f"{type(strategy).__name__}"
        )
    return strategy


def partial_derivatives(
    fn: PointFn,
    x: Float[Array, " d"],
    orders: Sequence[MultiIndex],
    *,
    strategy: AbstractDerivatives | None = None,
) -> Float[Array, "k m"]:
    """Evaluates partial derivatives of a point function at one point.

    Arguments:
        fn: the point function, coordinates of shape (d,) -> fields of shape (m,).
        x: the point, shape (d,).
        orders: k multi-indices, each a tuple of d non-negative ints.
        strategy: how to differentiate; defaults to `ForwardMode()`.

    Returns:
        Shape (k, m): row i holds d^{orders[i]} fn (x).
    """
    return _resolve(strategy)(fn, x, orders)


def _check_axes(axes: Sequence[int] | None, d: int) -> tuple[int, ...]:
    """Normalises `axes` (default: all d) to distinct non-negative ints below d."""
    if axes is None:
        return tuple(range(d))
    if isinstance(axes, str) or not isinstance(axes, Sequence):
        raise SpecError(f"axes must be a sequence of coordinate indices, got {axes!r}")
    if len(axes) == 0:
        raise SpecError("axes must name at least one input coordinate, got an empty sequence")
    checked = []
    for axis in axes:
        # Negative axes count from the end as in NumPy, so axes=[-1] is the last coordinate.
        if not _is_int(axis) or not -d <= axis < d:
            raise SpecError(
                f"axes = {tuple(axes)!r} holds {axis!r}, expected ints in [0, {d}) (or negative "
                f"ones counting from the end) for x of shape ({d},)"
            )
        checked.append(int(axis) % d)
    if len(set(checked)) != len(checked):
        raise SpecError(f"axes = {tuple(axes)!r} names a coordinate twice")
    return tuple(checked)


def gradient(
    fn: PointFn,
    x: Float[Array, " d"],
    *,
    axes: Sequence[int] | None = None,
    strategy: AbstractDerivatives | None = None,
) -> Float[Array, "m a"]:
    """First derivatives of every output along the chosen coordinates.

    Arguments:
        fn: the point function, (d,) -> (m,).
        x: the point, shape (d,).
        axes: which coordinates to differentiate along (default all), e.g. the spatial ones.
        strategy: how to differentiate; defaults to `ForwardMode()`.

    Returns:
        Shape (m, a) with entry [j, i] = d fn_j / d x_{axes[i]}.
    """
    x = _as_point(x)
    d = x.shape[0]
    orders = [_unit(axis, d) for axis in _check_axes(axes, d)]
    return partial_derivatives(fn, x, orders, strategy=strategy).T


def jacobian(
    fn: PointFn, x: Float[Array, " d"], *, strategy: AbstractDerivatives | None = None
) -> Float[Array, "m d"]:
    """The full Jacobian d fn_j / d x_i.

    Arguments:
        fn: the point function, (d,) -> (m,).
        x: the point, shape (d,).
        strategy: how to differentiate; defaults to `ForwardMode()`.

    Returns:
        Shape (m, d).
    """
    return gradient(fn, x, strategy=strategy)


def divergence(
    fn: PointFn,
    x: Float[Array, " d"],
    *,
    axes: Sequence[int] | None = None,
    strategy: AbstractDerivatives | None = None,
) -> Float[Array, ""]:
    """Divergence of a vector field: sum_a d fn_a / d x_{axes[a]}.

    Arguments:
        fn: the point function, (d,) -> (m,), with m == len(axes): output a is the component
            along coordinate axes[a].
        x: the point, shape (d,).
        axes: the coordinates the components live along (default all).
        strategy: how to differentiate; defaults to `ForwardMode()`.

    Returns:
        A scalar.
    """
    x = _as_point(x)
    d = x.shape[0]
    axes = _check_axes(axes, d)
    m = _output_struct(fn, x).shape[0]
    if m != len(axes):
        raise SpecError(
            f"divergence needs one output component per axis: fn has m = {m} outputs but "
            f"axes = {axes!r} has {len(axes)} entries; pass axes matching the components"
        )
    return jnp.trace(gradient(fn, x, axes=axes, strategy=strategy))


def laplacian(
    fn: PointFn,
    x: Float[Array, " d"],
    *,
    axes: Sequence[int] | None = None,
    strategy: AbstractDerivatives | None = None,
) -> Float[Array, " m"]:
    """Laplacian of every output over the chosen coordinates: sum_a d² fn / d x_a².

    Arguments:
        fn: the point function, (d,) -> (m,).
        x: the point, shape (d,).
        axes: which coordinates to sum over (default all), e.g. the spatial ones.
        strategy: how to differentiate; defaults to `ForwardMode()`.

    Returns:
        Shape (m,).
    """
    x = _as_point(x)
    d = x.shape[0]
    orders = [tuple(2 * n for n in _unit(axis, d)) for axis in _check_axes(axes, d)]
    return jnp.sum(partial_derivatives(fn, x, orders, strategy=strategy), axis=0)


def hessian(
    fn: PointFn, x: Float[Array, " d"], *, strategy: AbstractDerivatives | None = None
) -> Float[Array, "m d d"]:
    """Second derivatives d² fn_j / d x_a d x_b of every output.

    Only the upper triangle is computed; the result is symmetric by construction.

    Arguments:
        fn: the point function, (d,) -> (m,).
        x: the point, shape (d,).
        strategy: how to differentiate; defaults to `ForwardMode()`.

    Returns:
        Shape (m, d, d).
    """
    x = _as_point(x)
    d = x.shape[0]
    pairs = [(a, b) for a in range(d) for b in range(a, d)]
    orders = [tuple(int(i == a) + int(i == b) for i in range(d)) for a, b in pairs]
    rows = partial_derivatives(fn, x, orders, strategy=strategy)
    where = np.zeros((d, d), dtype=np.int32)
    for row, (a, b) in enumerate(pairs):
        where[a, b] = where[b, a] = row
    return jnp.moveaxis(rows[where], -1, 0)


STRATEGIES = {"forward": ForwardMode, "reverse": NestedReverse, "taylor": TaylorMode}
"""The derivative strategies by the name a spec gives them (``model.derivatives``)."""
