"""Tests of `pinnkit.core.derivatives`: every strategy against analytic derivatives of closed-form
functions and against the nested-reverse oracle, the vector-calculus operators, composition with
jit/vmap/grad, work sharing, and validation.

Everything runs in float64. Tolerance: relative 1e-10 per entry, with an absolute floor of 1e-10
times the largest magnitude of that output among the derivatives compared (`_assert_close`).
The floor is needed because `TaylorMode` recovers mixed partials by polarisation, a signed sum
of directional derivatives whose rounding error is relative to the largest of them, not to the
(possibly tiny or zero) mixed partial itself. Observed errors are below 1e-13 of that scale.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit.core.derivatives import (
    AbstractDerivatives,
    ForwardMode,
    NestedReverse,
    TaylorMode,
    _polarisation_recipe,
    divergence,
    gradient,
    hessian,
    jacobian,
    laplacian,
    partial_derivatives,
)
from pinnkit.errors import SpecError

RTOL = 1e-10

FAST = {
    "forward": ForwardMode(),
    "taylor": TaylorMode(),
    "taylor-forward": TaylorMode(mixed="forward"),
}
ALL = {"reverse": NestedReverse(), **FAST}


@pytest.fixture(autouse=True, scope="module")
def _float64():
    # A context manager, not a global config update, so modules that run after this one in the
    # same session keep the default float32.
    with jax.enable_x64(True):
        yield


def _assert_close(got, want, rtol=RTOL):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = np.max(np.abs(want), axis=tuple(range(want.ndim - 1)), keepdims=True)
    bound = rtol * np.abs(want) + rtol * scale
    bad = np.abs(got - want) > bound
    assert not bad.any(), (
        f"{bad.sum()} entries differ; worst excess "
        f"{np.max(np.abs(got - want) / np.maximum(bound, 1e-300))} times the bound"
    )


# ---------------------------------------------------------------------------------------------
# Closed-form functions with closed-form partial derivatives of every order
# ---------------------------------------------------------------------------------------------

A = (0.7, -1.3, 0.4)
B = (0.2, 0.5, -0.3)
C = (0.9, 0.6, -0.8)
POWERS = (3, 2, 4)
POINT = (0.3, -0.4, 0.6)


def closed_form(x):
    """[sin(a·x) exp(b·x), prod x_k^p_k, (c·x + 1.5)^5, prod 1 / (2 + x_k)], for d = len(x)."""
    d = x.shape[0]
    a, b, c = (jnp.asarray(v[:d], x.dtype) for v in (A, B, C))
    # Explicit products rather than jnp.prod: jet has no rule for reduce_prod.
    monomial, reciprocal = 1.0, 1.0
    for k in range(d):
        monomial = monomial * x[k] ** POWERS[k]
        reciprocal = reciprocal / (2.0 + x[k])
    return jnp.stack([jnp.sin(a @ x) * jnp.exp(b @ x), monomial, (c @ x + 1.5) ** 5, reciprocal])


def closed_form_derivative(index, x):
    """d^index of `closed_form` at x, in NumPy."""
    x = np.asarray(x, dtype=np.float64)
    d, n = len(x), sum(index)
    a, b, c = (np.array(v[:d]) for v in (A, B, C))
    # sin(a·x) exp(b·x) = Im exp(z·x) with z = b + i a, so d^index brings down z^index.
    z = b + 1j * a
    first = (np.prod(z ** np.array(index)) * np.exp(z @ x)).imag
    monomial = 1.0
    for k in range(d):
        p, q = POWERS[k], index[k]
        monomial *= 0.0 if q > p else math.perm(p, q) * x[k] ** (p - q)
    power = (
        0.0 if n > 5 else math.perm(5, n) * np.prod(c ** np.array(index)) * (c @ x + 1.5) ** (5 - n)
    )
    reciprocal = 1.0
    for k in range(d):
        q = index[k]
        reciprocal *= (-1) ** q * math.factorial(q) / (2.0 + x[k]) ** (q + 1)
    return np.array([first, monomial, power, reciprocal])


def multi_indices(d, max_order):
    return [o for o in itertools.product(range(max_order + 1), repeat=d) if sum(o) <= max_order]


# Highest order compared, per strategy and dimension. Compile time, not accuracy, sets these: the
# oracle's order-4 derivative tensors in d = 2, 3 alone take several seconds to compile on two
# cores, so it stops earlier there (ForwardMode and TaylorMode were checked against it up to
# order 4 in d = 1, 2, 3 while writing this module; errors stayed below 1e-13 of the scale).
# TaylorMode(mixed="forward") equals TaylorMode without mixed partials (d = 1) and takes them
# from ForwardMode, so d = 2 covers it.
MAX_ORDER = {
    "reverse": {1: 4, 2: 3, 3: 2},
    "forward": {1: 4, 2: 4, 3: 4},
    "taylor": {1: 4, 2: 4, 3: 4},
    "taylor-forward": {2: 4},
}
# The order-4 programs of ForwardMode and TaylorMode compile for seconds but run eagerly in a
# fraction of that, so they are evaluated eagerly here (jit is tested below); nested reverse
# mode is the other way round.
JIT = {"reverse": True, "forward": False, "taylor": False, "taylor-forward": False}
CASES = [(name, d) for name, orders in MAX_ORDER.items() for d in orders]
_cache: dict = {}


def _evaluate(name, d):
    """{multi-index: row} for every index up to MAX_ORDER, computed once per session."""
    if (name, d) not in _cache:
        x = jnp.asarray(POINT[:d])
        orders = multi_indices(d, MAX_ORDER[name][d])
        strategy = ALL[name]
        evaluate = lambda x: strategy(closed_form, x, orders)
        rows = np.asarray((jax.jit(evaluate) if JIT[name] else evaluate)(x))
        _cache[name, d] = dict(zip(orders, rows, strict=True))
    return _cache[name, d]


@pytest.mark.parametrize(("name", "d"), CASES)
def test_closed_form_against_analytic(name, d):
    values = _evaluate(name, d)
    got = np.stack(list(values.values()))
    want = np.stack([closed_form_derivative(o, POINT[:d]) for o in values])
    _assert_close(got, want)


@pytest.mark.parametrize(("name", "d"), [case for case in CASES if case[0] != "reverse"])
def test_closed_form_against_oracle(name, d):
    oracle = _evaluate("reverse", d)
    values = _evaluate(name, d)
    common = [o for o in oracle if o in values]
    _assert_close(np.stack([values[o] for o in common]), np.stack([oracle[o] for o in common]))


def test_polarisation_weights_for_second_order_mixed():
    # u_xy = (D²_{e_x+e_y} u - D²_{e_x} u - D²_{e_y} u) / 2, the textbook polarisation.
    recipe = {direction: weight for direction, _, weight in _polarisation_recipe((1, 1))}
    assert recipe == {(1, 0): -0.5, (1, 1): 0.5, (0, 1): -0.5}


# ---------------------------------------------------------------------------------------------
# A random tanh MLP against the oracle, and gradients with respect to its parameters
# ---------------------------------------------------------------------------------------------


def mlp_params(key, sizes):
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        key, k_w, k_b = jax.random.split(key, 3)
        w = jax.random.normal(k_w, (fan_out, fan_in), jnp.float64) / np.sqrt(fan_in)
        b = 0.1 * jax.random.normal(k_b, (fan_out,), jnp.float64)
        params.append((w, b))
    return params


def mlp(params, x):
    h = x
    for w, b in params[:-1]:
        h = jnp.tanh(w @ h + b)
    w, b = params[-1]
    return w @ h + b


# TaylorMode(mixed="forward") is left out below: its two halves are the other two strategies.
MLP_STRATEGIES = {"forward": ForwardMode(), "taylor": TaylorMode()}


def test_mlp_against_oracle_up_to_order_3():
    params = mlp_params(jax.random.key(0), [2, 12, 12, 2])
    fn = lambda x: mlp(params, x)
    orders = multi_indices(2, 3)
    x = jnp.array([0.4, -0.7])
    oracle = jax.jit(lambda x: NestedReverse()(fn, x, orders))(x)
    for name, strategy in MLP_STRATEGIES.items():
        got = jax.jit(lambda x, strategy=strategy: strategy(fn, x, orders))(x)
        assert got.shape == (len(orders), 2), name
        _assert_close(got, oracle)


def test_grad_wrt_parameters_matches_between_strategies():
    # Training differentiates residuals with respect to the weights: the gradient of
    # sum_points u_xx^2 must agree with the oracle's.
    params = mlp_params(jax.random.key(1), [2, 8, 1])
    points = jax.random.uniform(jax.random.key(2), (6, 2), jnp.float64, -1.0, 1.0)
    orders = [(2, 0)]

    def loss(params, strategy):
        fn = lambda x: mlp(params, x)
        rows = jax.vmap(lambda x: strategy(fn, x, orders))(points)
        return jnp.sum(rows**2)

    grad = jax.jit(jax.grad(loss), static_argnums=1)
    oracle = jax.tree.leaves(grad(params, NestedReverse()))
    for name, strategy in MLP_STRATEGIES.items():
        for got, want in zip(jax.tree.leaves(grad(params, strategy)), oracle, strict=True):
            assert np.all(np.isfinite(got)), name
            _assert_close(got.reshape(-1, 1), want.reshape(-1, 1))


# ---------------------------------------------------------------------------------------------
# Composition with vmap and jit, deduplication, work sharing
# ---------------------------------------------------------------------------------------------

# Repeats, a mixed partial and the value itself, deliberately out of order.
REQUEST = [(2, 0), (0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1), (0, 0)]


@pytest.mark.parametrize("name", list(FAST))
def test_vmap_and_jit_with_repeated_requests(name):
    # The strategy is a jit argument: eqx.Modules without array leaves pass through as static.
    batched = jax.jit(
        lambda strategy, points: jax.vmap(lambda x: strategy(closed_form, x, REQUEST))(points)
    )
    points = np.array([[0.1, 0.2], [-0.5, 0.3], [0.7, -0.9], [0.0, 0.0]])
    got = batched(ALL[name], jnp.asarray(points))
    assert got.shape == (4, len(REQUEST), 4)
    want = np.stack([[closed_form_derivative(o, p) for o in REQUEST] for p in points])
    _assert_close(got.reshape(-1, 4), want.reshape(-1, 4))


def _traces(strategy, orders, d=2):
    """How many times `strategy` traces fn for `orders` (each jvp chain or jet traces it once,
    and every call traces it once more, abstractly, to check its output shape)."""
    count = [0]

    def fn(x):
        count[0] += 1
        return closed_form(x)

    jax.eval_shape(lambda x: strategy(fn, x, orders), jnp.asarray(POINT[:d]))
    return count[0]


@pytest.mark.parametrize("name", list(ALL))
def test_repeated_requests_are_computed_once(name):
    strategy = ALL[name]
    assert _traces(strategy, REQUEST) == _traces(strategy, list(dict.fromkeys(REQUEST)))


def test_forward_mode_shares_one_chain_for_a_trie_path():
    # u, u_x, u_xx and u_xxx all come out of the chain for u_xxx: its primals are the parents.
    alone = _traces(ForwardMode(), [(3, 0)])
    assert alone == 2
    assert _traces(ForwardMode(), [(0, 0), (1, 0), (2, 0), (3, 0)]) == alone
    # u_xy's chain [0, 1] also yields u_y, so asking for u_y adds nothing.
    assert _traces(ForwardMode(), [(1, 1), (0, 1)]) == alone
    # A second leaf (u_yy) needs a second chain.
    assert _traces(ForwardMode(), [(2, 0), (0, 2)]) == alone + 1


def test_taylor_mode_uses_one_jet_per_direction():
    # u, u_x, u_xx and u_xxx all come out of the one jet along e_x.
    alone = _traces(TaylorMode(), [(3, 0)])
    assert alone == 2
    assert _traces(TaylorMode(), [(0, 0), (1, 0), (2, 0), (3, 0)]) == alone
    # The Laplacian set needs one jet per axis.
    laplacian_set = [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2)]
    assert _traces(TaylorMode(), laplacian_set) == alone + 1
    # Polarising u_xy adds only the direction e_x + e_y; e_x and e_y are shared.
    assert _traces(TaylorMode(), [*laplacian_set, (1, 1)]) == alone + 2


def test_empty_request_gives_empty_rows():
    for strategy in ALL.values():
        rows = strategy(closed_form, jnp.asarray(POINT[:2]), [])
        assert rows.shape == (0, 4)


# ---------------------------------------------------------------------------------------------
# Vector-calculus operators against analytic results
# ---------------------------------------------------------------------------------------------


def vector_field(x):
    """F(x, y, t) = [x^2 t, sin(y) t, exp(x y)]; its divergence is 2 x t + t cos(y) + 0."""
    return jnp.stack([x[0] ** 2 * x[2], jnp.sin(x[1]) * x[2], jnp.exp(x[0] * x[1])])


def _all_operators(strategy, x):
    planar = lambda p: vector_field(p)[:2]
    return {
        "jacobian": jacobian(closed_form, x, strategy=strategy),
        "gradient": gradient(closed_form, x, strategy=strategy),
        "gradient[2, 0]": gradient(closed_form, x, axes=[2, 0], strategy=strategy),
        # Negative axes count from the end, as in NumPy.
        "gradient[-1]": gradient(closed_form, x, axes=[-1], strategy=strategy),
        "laplacian": laplacian(closed_form, x, strategy=strategy),
        "laplacian[0, 1]": laplacian(closed_form, x, axes=(0, 1), strategy=strategy),
        "hessian": hessian(closed_form, x, strategy=strategy),
        "divergence": divergence(vector_field, x, strategy=strategy),
        "divergence[0, 1]": divergence(planar, x, axes=[0, 1], strategy=strategy),
    }


# The operators only choose multi-indices and combine rows, so one strategy (the default) is
# enough here; the strategies themselves are tested above.
OPERATOR_STRATEGIES = {"default": None}
_operators: dict = {}


def _operator(strategy_name, operator):
    if strategy_name not in _operators:
        # One compile per strategy for all operators, to keep the file fast.
        strategy = OPERATOR_STRATEGIES[strategy_name]
        results = jax.jit(lambda x: _all_operators(strategy, x))(jnp.asarray(POINT))
        _operators[strategy_name] = {k: np.asarray(v) for k, v in results.items()}
    return _operators[strategy_name][operator]


def _analytic(index_list):
    return np.stack([closed_form_derivative(o, POINT) for o in index_list])


def _unit(a, n=1):
    return tuple(n * int(i == a) for i in range(3))


@pytest.mark.parametrize("strategy", list(OPERATOR_STRATEGIES))
def test_gradient_and_jacobian(strategy):
    full = _analytic([_unit(a) for a in range(3)]).T
    assert _operator(strategy, "jacobian").shape == (4, 3)
    _assert_close(_operator(strategy, "jacobian"), full)
    _assert_close(_operator(strategy, "gradient"), full)
    _assert_close(_operator(strategy, "gradient[2, 0]"), full[:, [2, 0]])
    _assert_close(_operator(strategy, "gradient[-1]"), full[:, [2]])


@pytest.mark.parametrize("strategy", list(OPERATOR_STRATEGIES))
def test_laplacian(strategy):
    pure = _analytic([_unit(a, n=2) for a in range(3)])
    assert _operator(strategy, "laplacian").shape == (4,)
    _assert_close(_operator(strategy, "laplacian")[None], pure.sum(0)[None])
    _assert_close(_operator(strategy, "laplacian[0, 1]")[None], pure[:2].sum(0)[None])


@pytest.mark.parametrize("strategy", list(OPERATOR_STRATEGIES))
def test_hessian(strategy):
    got = _operator(strategy, "hessian")
    assert got.shape == (4, 3, 3)
    want = np.empty((4, 3, 3))
    for a, b in itertools.product(range(3), repeat=2):
        want[:, a, b] = closed_form_derivative(tuple(np.add(_unit(a), _unit(b))), POINT)
    _assert_close(got.reshape(4, 9).T, want.reshape(4, 9).T)
    np.testing.assert_array_equal(got, np.swapaxes(got, 1, 2))


@pytest.mark.parametrize("strategy", list(OPERATOR_STRATEGIES))
def test_divergence(strategy):
    x, y, t = POINT
    assert _operator(strategy, "divergence").shape == ()
    want = 2 * x * t + t * np.cos(y)
    _assert_close(_operator(strategy, "divergence")[None, None], np.array([[want]]))
    # The spatial divergence of the first two components, with time left out.
    _assert_close(_operator(strategy, "divergence[0, 1]")[None, None], np.array([[want]]))


def test_operators_under_vmap_and_partial_derivatives_default():
    points = jnp.array([[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]])
    got = jax.jit(jax.vmap(lambda p: laplacian(closed_form, p, axes=[0, 1])))(points)
    want = [
        sum(closed_form_derivative(_unit(a, n=2), p) for a in (0, 1)) for p in np.asarray(points)
    ]
    _assert_close(got, np.stack(want))
    # partial_derivatives defaults to ForwardMode.
    x = jnp.asarray(POINT)
    _assert_close(
        partial_derivatives(closed_form, x, [(1, 0, 1)]),
        ForwardMode()(closed_form, x, [(1, 0, 1)]),
    )


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orders", "fragments"),
    [
        ([(1, 0, 0)], ["(1, 0, 0)", "length 3", "expected length 2"]),
        ([(0, 0), (1,)], ["orders[1]", "(1,)", "length 1", "expected length 2"]),
        ([(-1, 0)], ["(-1, 0)", "non-negative"]),
        ([(1.0, 0)], ["(1.0, 0)", "non-negative ints"]),
        ([(True, 0)], ["(True, 0)"]),
        ([(1, 0), 2], ["orders[1] = 2", "tuple of 2"]),
        ((2, 0), ["bare multi-index", "[(2, 0)]"]),
        ("xx", ["sequence of multi-indices"]),
    ],
)
@pytest.mark.parametrize("name", list(ALL))
def test_malformed_orders_raise_spec_error(name, orders, fragments):
    with pytest.raises(SpecError) as info:
        ALL[name](closed_form, jnp.asarray(POINT[:2]), orders)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_validation_happens_at_trace_time_under_jit():
    f = jax.jit(lambda x: partial_derivatives(closed_form, x, [(1, 0, 0)]))
    with pytest.raises(SpecError, match="expected length 2"):
        f(jnp.asarray(POINT[:2]))


def test_bad_points_and_outputs_raise_spec_error():
    with pytest.raises(SpecError, match="ONE point"):
        partial_derivatives(closed_form, jnp.ones((3, 2)), [(1, 0)])
    with pytest.raises(SpecError, match="floating"):
        partial_derivatives(closed_form, jnp.array([1, 2]), [(1, 0)])
    with pytest.raises(SpecError, match="shape \\(m,\\)"):
        partial_derivatives(lambda x: jnp.sum(x**2), jnp.ones(2), [(1, 0)])


def test_operator_arguments_are_validated():
    x = jnp.asarray(POINT)
    with pytest.raises(SpecError, match="m = 4 outputs"):
        divergence(closed_form, x)
    with pytest.raises(SpecError, match="expected ints in"):
        gradient(closed_form, x, axes=[3])
    with pytest.raises(SpecError, match="twice"):
        laplacian(closed_form, x, axes=[0, -3])
    with pytest.raises(SpecError, match="at least one"):
        laplacian(closed_form, x, axes=[])
    with pytest.raises(SpecError, match="AbstractDerivatives"):
        partial_derivatives(closed_form, x, [(1, 0, 0)], strategy="forward")
    with pytest.raises(SpecError, match="'polarise' or 'forward'"):
        TaylorMode(mixed="bogus")


def test_taylor_mode_explains_functions_jet_cannot_handle():
    x = jnp.ones(2)
    with pytest.raises(SpecError, match="reduce_prod"):
        TaylorMode()(lambda x: jnp.atleast_1d(jnp.prod(x)), x, [(2, 0)])
    with pytest.raises(SpecError, match="custom JVP"):
        TaylorMode()(jax.nn.softplus, x, [(2, 0)])
    # ForwardMode handles both.
    ForwardMode()(lambda x: jnp.atleast_1d(jnp.prod(x)), x, [(2, 0)])
    ForwardMode()(jax.nn.softplus, x, [(2, 0)])


def test_strategies_are_derivative_strategies():
    for strategy in ALL.values():
        assert isinstance(strategy, AbstractDerivatives)
