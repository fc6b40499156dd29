"""Tests of the safe expression language (pinnkit.core.expressions)."""

from __future__ import annotations

import ast
import copy
import inspect
import math
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit.core import expressions
from pinnkit.core.expressions import (
    CONSTANTS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    Expression,
    parse_expression,
)
from pinnkit.errors import ExpressionError, SpecError


@pytest.fixture
def x64():
    """Float64 for the duration of one test, leaving the session's setting alone."""
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older jax
        from jax.experimental import enable_x64 as enable
    with enable(True):
        yield


RNG = np.random.default_rng(0)
ENV = {
    "x": RNG.uniform(-2.0, 2.0, size=7),
    "y": RNG.uniform(0.5, 3.0, size=7),
    "a": 3.0,
    "b": 4.0,
    "c": 5.0,
    "nu": 0.1,
    "t": np.linspace(0.0, 1.0, 7),
}

NUMERIC_CASES = [
    ("-x^2", lambda x, **_: -(x**2)),
    ("-x**2", lambda x, **_: -(x**2)),
    ("2^3^2", lambda **_: 512.0),
    ("2**3**2", lambda **_: 512.0),
    ("a/b*c", lambda a, b, c, **_: (a / b) * c),
    ("a*b^2", lambda a, b, **_: a * b**2),
    ("a+b^2", lambda a, b, **_: a + b**2),
    ("(a+b)^2", lambda a, b, **_: (a + b) ** 2),
    ("x^-1", lambda x, **_: 1.0 / x),
    ("-x^-2", lambda x, **_: -(x**-2.0)),
    ("y^0.5", lambda y, **_: np.sqrt(y)),
    ("y^x", lambda x, y, **_: y**x),
    ("x - y - 1", lambda x, y, **_: x - y - 1),
    ("x / y / 2", lambda x, y, **_: x / y / 2),
    ("+x - -y", lambda x, y, **_: x + y),
    ("1e-3*x + 2.5", lambda x, **_: 1e-3 * x + 2.5),
    ("1/2", lambda **_: 0.5),
    ("e^x", lambda x, **_: np.exp(x)),
    (
        "exp(-pi^2*nu*t)*sin(pi*x)",
        lambda x, t, nu, **_: np.exp(-(np.pi**2) * nu * t) * np.sin(np.pi * x),
    ),
    ("sin(x)*cos(y) + tan(x/10)", lambda x, y, **_: np.sin(x) * np.cos(y) + np.tan(x / 10)),
    ("log(1 + x^2) + sqrt(abs(x))", lambda x, **_: np.log(1 + x**2) + np.sqrt(np.abs(x))),
    ("tanh(x) + sinh(y) - cosh(x)", lambda x, y, **_: np.tanh(x) + np.sinh(y) - np.cosh(x)),
    (
        "arcsin(x/10) + arccos(y/10) + arctan(x)",
        lambda x, y, **_: np.arcsin(x / 10) + np.arccos(y / 10) + np.arctan(x),
    ),
    ("arctan2(y, x)", lambda x, y, **_: np.arctan2(y, x)),
    ("sign(x)", lambda x, **_: np.sign(x)),
    ("min(x, y) + 2*max(x, 0)", lambda x, y, **_: np.minimum(x, y) + 2 * np.maximum(x, 0)),
    ("where(abs(x) < 0.5, 0, 50)", lambda x, **_: np.where(np.abs(x) < 0.5, 0.0, 50.0)),
    ("where(x >= y, x, y)", lambda x, y, **_: np.where(x >= y, x, y)),
    ("heaviside(x) + step(-x)", lambda x, **_: np.heaviside(x, 0.5) + np.heaviside(-x, 0.5)),
    ("2*x^2*y - x*y/3", lambda x, y, **_: 2 * x**2 * y - x * y / 3),
]


@pytest.mark.parametrize(("text", "reference"), NUMERIC_CASES, ids=[c[0] for c in NUMERIC_CASES])
def test_evaluation_matches_numpy(x64, text, reference):
    expression = parse_expression(text)
    got = np.asarray(expression(ENV))
    want = np.broadcast_to(reference(**ENV), got.shape)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_heaviside_and_step_values():
    x = jnp.array([-2.0, 0.0, 3.0])
    for name in ("heaviside", "step"):
        np.testing.assert_array_equal(parse_expression(f"{name}(x)")({"x": x}), [0.0, 0.5, 1.0])


def test_comparisons_single_and_chained():
    x = jnp.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    cases = {
        "x < 0.5": [True, True, False, False, False],
        "x <= 0.5": [True, True, True, False, False],
        "x > 0.5": [False, False, False, True, True],
        "x >= 0.5": [False, False, True, True, True],
        "x == 0.5": [False, False, True, False, False],
        "x != 0.5": [True, True, False, True, True],
        "0 <= x < 1": [False, True, True, False, False],
        "-1 < x <= 1 < 2": [False, True, True, True, False],
    }
    for text, want in cases.items():
        expression = parse_expression(text)
        assert expression.is_boolean
        got = expression({"x": x})
        assert got.dtype == jnp.bool_
        np.testing.assert_array_equal(got, want, err_msg=text)
    assert not parse_expression("where(x < 0, 1, 2)").is_boolean


def test_broadcasting():
    expression = parse_expression("exp(-pi^2*nu*t)*sin(pi*x)")
    x = jnp.linspace(0.0, 1.0, 5)[:, None]
    t = jnp.linspace(0.0, 1.0, 3)[None, :]
    value = expression({"x": x, "t": t, "nu": 0.1})
    assert value.shape == (5, 3)
    want = np.exp(-(np.pi**2) * 0.1 * np.asarray(t)) * np.sin(np.pi * np.asarray(x))
    np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-6)


def test_constant_expression_is_a_0d_array():
    value = parse_expression("0")({})
    assert isinstance(value, jax.Array)
    assert value.shape == ()
    assert float(value) == 0.0
    assert parse_expression("-pi^2")({"unused": 1.0}).shape == ()
    np.testing.assert_allclose(parse_expression("-pi^2")({}), -(math.pi**2), rtol=1e-6)


def test_numbers_are_accepted_as_text():
    assert parse_expression(0).text == "0"
    assert parse_expression(1.5).text == "1.5"
    assert parse_expression(-2).text == "-2"
    assert float(parse_expression(1e-3)({})) == pytest.approx(1e-3)
    assert parse_expression(np.int64(3)).text == "3"
    for bad in (True, None, [1], {"a": 1}, float("nan"), float("inf")):
        with pytest.raises(ExpressionError):
            parse_expression(bad)


def test_integer_inputs_are_converted_to_float():
    np.testing.assert_allclose(parse_expression("x^-1")({"x": 2}), 0.5)
    np.testing.assert_allclose(parse_expression("1/x")({"x": np.array([1, 2, 4])}), [1, 0.5, 0.25])
    assert jnp.issubdtype(parse_expression("x")({"x": np.array([1, 2])}).dtype, jnp.floating)


def test_jit_grad_vmap():
    cube = parse_expression("x^3")
    assert float(jax.grad(lambda x: cube({"x": x}))(2.0)) == pytest.approx(12.0)
    square = parse_expression("x^2")
    assert float(jax.grad(jax.grad(lambda x: square({"x": x})))(0.0)) == pytest.approx(2.0)
    # Integer exponents go through integer_pow: exact for negative bases.
    assert float(cube({"x": -2.0})) == pytest.approx(-8.0)

    expression = parse_expression("where(x < 0, -x, x^2) + heaviside(x)*nu")
    jitted = jax.jit(lambda x, nu: expression({"x": x, "nu": nu}))
    x = jnp.array([-1.5, 0.0, 2.0])
    np.testing.assert_allclose(jitted(x, 0.5), [1.5, 0.25, 4.5], rtol=1e-6)
    slope = jax.vmap(jax.grad(lambda x: expression({"x": x, "nu": 0.5})))(x)
    np.testing.assert_allclose(slope, [-1.0, 0.0, 4.0], rtol=1e-6)

    residual = parse_expression("u_t - nu*u_xx")
    batched = jax.vmap(lambda u_t, u_xx: residual({"u_t": u_t, "u_xx": u_xx, "nu": 0.1}))
    np.testing.assert_allclose(batched(jnp.ones(4), jnp.full(4, 2.0)), jnp.full(4, 0.8), rtol=1e-6)


def test_names():
    assert parse_expression("u_t - nu*u_xx").names == frozenset({"u_t", "nu", "u_xx"})
    assert parse_expression("sin(pi*x) + e*where(t < 1, y, 0)").names == frozenset({"x", "t", "y"})
    assert parse_expression("2^3").names == frozenset()
    # Constants win over a symbol of the same name.
    expression = parse_expression("e + pi", symbols={"e", "pi"})
    assert expression.names == frozenset()
    assert float(expression({"e": 100.0, "pi": 100.0})) == pytest.approx(math.e + math.pi)


def test_public_tables():
    assert CONSTANTS["pi"] == math.pi and CONSTANTS["e"] == math.e and CONSTANTS["i"] == 1j
    assert FUNCTIONS["sin"] == 1 and FUNCTIONS["arctan2"] == 2 and FUNCTIONS["where"] == 3
    expected = "sin cos tan exp log sqrt abs tanh sinh cosh sech arcsin arccos arctan arctan2 sign"
    extra = {"heaviside", "step", "min", "max", "where", "real", "imag", "conj"}
    assert set(FUNCTIONS) == set(expected.split()) | extra
    with pytest.raises(TypeError):
        FUNCTIONS["eval"] = 1  # type: ignore[index]


def test_unknown_symbol_message():
    symbols = ["x", "t", "u_t", "u_xx", "nu"]
    with pytest.raises(ExpressionError) as info:
        parse_expression("u_t - nuu*u_xx", symbols=symbols, path="equation.residuals[0]", line=7)
    message = str(info.value)
    assert "unknown symbol 'nuu'" in message
    assert '"u_t - nuu*u_xx"' in message
    assert "did you mean 'nu'?" in message
    assert "known symbols: nu, t, u_t, u_xx, x" in message
    assert message.startswith("equation.residuals[0] (line 7): ")
    assert info.value.path == "equation.residuals[0]" and info.value.line == 7
    assert isinstance(info.value, SpecError)

    with pytest.raises(ExpressionError, match="unknown symbols 'aa', 'tt'"):
        parse_expression("aa + tt", symbols=symbols)
    assert parse_expression("u_t - nu*u_xx", symbols=symbols).names <= set(symbols)


def test_parse_expression_accepts_an_expression():
    expression = parse_expression("x + y")
    assert parse_expression(expression, symbols={"x", "y"}) is expression
    with pytest.raises(ExpressionError, match="unknown symbol 'y'"):
        parse_expression(expression, symbols={"x"})


def test_syntax_error_quotes_text_and_position():
    with pytest.raises(ExpressionError) as info:
        parse_expression("u_t - )", path="equation.residuals[0]")
    message = str(info.value)
    assert '"u_t - )"' in message and "column 7" in message and "syntax error" in message
    with pytest.raises(ExpressionError, match="column 5"):
        parse_expression("1 + (x")
    # Columns refer to the text as written, even after a '^'.
    with pytest.raises(ExpressionError, match="column 7"):
        parse_expression("x^2 + )")
    with pytest.raises(ExpressionError, match="2\\*x"):
        parse_expression("2x")
    with pytest.raises(ExpressionError, match="'=='"):
        parse_expression("x=0")


def test_missing_symbol_at_evaluation():
    expression = parse_expression("x + y*z", path="reference.exact.u")
    with pytest.raises(ExpressionError) as info:
        expression({"x": 1.0})
    message = str(info.value)
    assert "'y'" in message and "'z'" in message and message.startswith("reference.exact.u")


INJECTIONS = [
    "__import__('os').system('ls')",
    "__import__",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "x.real",
    "(lambda: 1)()",
    "[x for x in y]",
    "{x: 1 for x in y}",
    "(x for x in y)",
    "'abc'",
    "b'abc'",
    "f'{x}'",
    "x[0]",
    "x[1:2]",
    "open('f')",
    "sin(x, y)",
    "sin()",
    "where(x < 0, 1)",
    "f(x=1)",
    "sin(x=1)",
    "sin(*x)",
    "exec('1')",
    "eval('1')",
    "compile('1', 'f', 'eval')",
    "globals()",
    "x if y else z",
    "x and y",
    "x or y",
    "not x",
    "(y := 1)",
    "x % 2",
    "x // 2",
    "x @ y",
    "x & y",
    "x | y",
    "x << 2",
    "~x",
    "x in y",
    "x is y",
    "[1, 2]",
    "(1, 2)",
    "{1}",
    "{}",
    "...",
    "None",
    "True",
    "1j",
    "_x + 1",
    "sin",
    "sin(x)(y)",
    "pi(2)",
    "(x < 1)*2",
    "-(x < 1)",
    "sin(x > 0)",
    "where(x, 1, 2)",
    "(x < 1) < 2",
    "x − 1",
    "x\x00",
    "x # comment",
    "",
    "   ",
    "x" * (MAX_LENGTH + 1),
    "(" * (MAX_DEPTH + 50) + "x" + ")" * (MAX_DEPTH + 50),
    "(" * 1000 + "x" + ")" * 1000,
    "-" * 1900 + "x",
    "sin(" * 300 + "x" + ")" * 300,
    "x^" * 500 + "x",
    "1e999",
]


@pytest.mark.parametrize("text", INJECTIONS, ids=[repr(t[:30]) for t in INJECTIONS])
def test_refused(text):
    with pytest.raises(ExpressionError):
        parse_expression(text)


def test_refusal_messages_are_clear():
    cases = {
        "sin(x, y)": "sin takes 1 argument, got 2",
        "where(x < 0, 1)": "where takes 3 arguments, got 2",
        "open('f')": "'open' is not an allowed function",
        "sinn(x)": "did you mean 'sin'?",
        "x.real": "attribute access",
        "x and y": "'and'/'or'",
        "x if y else z": "where(c, a, b)",
        "f(x=1)": "'f' is not an allowed function",
        "sin(x=1)": "keyword arguments are not allowed",
        "'abc'": "strings are not allowed",
        "(x < 1)*2": "comparison cannot be used as a number",
        "x" * (MAX_LENGTH + 1): "too long",
        "(" * 150 + "x" + ")" * 150: "nested too deeply",
        "-" * 1900 + "x": "nested too deeply",
        "__import__('os')": "names starting with '_'",
        "x − 1": "U+2212",
    }
    for text, fragment in cases.items():
        with pytest.raises(ExpressionError) as info:
            parse_expression(text)
        assert fragment in str(info.value), (text, str(info.value))


def test_size_limits_leave_room_for_real_expressions():
    # A long flat sum is neither deep nesting nor a recursion hazard.
    terms = 600
    expression = parse_expression("+".join(["x"] * terms))
    assert float(expression({"x": 1.0})) == terms
    nested = "(" * (MAX_DEPTH // 2) + "x" + ")" * (MAX_DEPTH // 2)
    assert float(parse_expression(nested)({"x": 2.0})) == 2.0
    deep_calls = "sin(" * 40 + "x" + ")" * 40
    assert jnp.isfinite(jax.grad(lambda x: parse_expression(deep_calls)({"x": x}))(0.3))
    # YAML block scalars may span lines.
    assert float(parse_expression("x +\n  2*x")({"x": 1.0})) == 3.0


def test_evaluation_does_not_reparse(monkeypatch):
    expression = parse_expression("sin(x)^2 + cos(x)^2")

    def refuse(*args, **kwargs):
        raise AssertionError("evaluation must not parse")

    monkeypatch.setattr(ast, "parse", refuse)
    np.testing.assert_allclose(expression({"x": jnp.arange(3.0)}), 1.0, rtol=1e-6)


def test_module_never_calls_eval_exec_or_compile():
    tree = ast.parse(inspect.getsource(expressions))
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__", "getattr"}


def test_expression_value_semantics():
    expression = parse_expression("x + 1", path="a.b", line=3)
    assert repr(expression) == "Expression('x + 1')"
    assert str(expression) == "x + 1"
    assert expression == Expression("x + 1") and hash(expression) == hash(Expression("x + 1"))
    assert expression != parse_expression("x+1")
    with pytest.raises(AttributeError):
        expression.text = "y"  # type: ignore[misc]
    assert copy.deepcopy(expression) is expression
    restored = pickle.loads(pickle.dumps(expression))
    assert restored == expression and restored.path == "a.b" and restored.line == 3
    assert float(restored({"x": 1.0})) == 2.0
    # Hashable by text, so usable as a static argument of jit.
    f = jax.jit(lambda e, x: e({"x": x}), static_argnums=0)
    assert float(f(expression, 2.0)) == 3.0
