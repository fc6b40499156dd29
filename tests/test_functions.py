"""Unknown functions (``functions:`` in a spec): expressions that call them, their exact
derivatives, and an inverse problem that recovers one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnkit
from pinnkit.core.expressions import parse_expression
from pinnkit.core.functions import UnknownFunction
from pinnkit.errors import ExpressionError, SpecError


def test_expressions_call_declared_functions_from_the_environment():
    e = parse_expression(
        "u_t - k(u)*u_xx - k_u(u)*u_x^2",
        symbols=["u", "u_t", "u_x", "u_xx", "k", "k_u"],
        functions={"k": 1, "k_u": 1},
    )
    assert {"k", "k_u"} <= e.names
    env = {"u": jnp.arange(3.0), "u_t": 1.0, "u_x": 2.0, "u_xx": 3.0}
    env.update(k=lambda u: 2 * u, k_u=lambda u: 2 + 0 * u)
    np.testing.assert_allclose(e(env), 1 - 6 * np.arange(3.0) - 8)
    import pickle

    assert pickle.loads(pickle.dumps(e)) == e


def test_calls_of_undeclared_functions_and_wrong_arity_are_refused():
    with pytest.raises(ExpressionError, match="not an allowed function"):
        parse_expression("k(u)", symbols=["u"])
    with pytest.raises(ExpressionError, match="k takes 1 argument, got 2"):
        parse_expression("k(u, u)", functions={"k": 1})


def test_function_derivatives_match_finite_differences(x64):
    f = UnknownFunction("k", ("u", "v"), width=8, depth=2, range=(0.0, 0.1))
    w = jax.tree.map(jnp.asarray, f.init(3))
    u, v = jnp.linspace(-1, 1, 7), jnp.linspace(0.5, 2, 7)
    values = f.apply(w, u, v)
    assert values.shape == (7,) and bool(jnp.all((values > 0) & (values < 0.1)))
    h = 1e-6
    for i, (name, index) in enumerate(f.derivative_names.items()):
        shift = [u, v]
        shift[i] = shift[i] + h
        fd = (f.apply(w, *shift) - values) / h
        got = f.callables(w)[name](u, v)
        np.testing.assert_allclose(got, fd, rtol=1e-4, atol=1e-9)
        assert index == i


STEADY = {
    "name": "conductivity",
    "coords": ["x"],
    "domain": {"x": [0, 1]},
    "fields": ["u"],
    # -(k(u) u_x)_x = f with k(u) = 1 + u and u = sin(pi x)
    "params": {},
    "functions": {"k": {"args": ["u"], "width": 8, "depth": 1, "range": [0, 5]}},
    "equation": {
        "residuals": [
            "-(k(u)*u_xx + k_u(u)*u_x^2) - ((1 + sin(pi*x))*pi^2*sin(pi*x) - pi^2*cos(pi*x)^2)"
        ]
    },
    "conditions": [{"on": "x=0", "u": 0}, {"on": "x=1", "u": 0}],
    "reference": {
        "exact": {"u": "sin(pi*x)"},
        "grid": [101],
        "functions": {"k": {"exact": "1 + u", "domain": {"u": [0, 1]}}},
    },
    "model": {"backend": "odil", "grid": 101},
}


def test_a_conductivity_is_recovered_from_the_field(tmp_path):
    """With u observed everywhere (the data term), the residual pins k(u) down over the
    values u takes: an inverse problem with an unknown function, solved by Newton."""
    x = np.linspace(0, 1, 101)
    table = np.stack([x, np.sin(np.pi * x)], -1)
    np.savetxt(tmp_path / "u.csv", table, delimiter=",", header="x,u", comments="")
    spec = {
        **STEADY,
        "data": [{"file": str(tmp_path / "u.csv")}],
        "train": {
            "phases": [
                {
                    "optimizer": {
                        "name": "gauss_newton",
                        "linear_solver": "direct",
                        "damping": 1e-2,
                    },
                    "steps": 60,
                }
            ]
        },
    }
    sol = pinnkit.solve(spec, out=tmp_path / "run", progress=False)
    errors = sol.errors()
    assert errors["k"]["rel_l2"] < 2e-2, errors  # 6.1e-3 measured
    assert errors["u"]["rel_l2"] < 5e-3, errors  # 1.1e-3
    summary = (tmp_path / "run" / "summary.json").read_text()
    assert '"k"' in summary  # the function's error is reported


@pytest.mark.parametrize(
    "change, path",
    [
        ({"functions": {"sin": {"args": ["u"]}}}, "functions"),
        ({"functions": {"k": {"args": []}}}, "functions.k.args"),
        ({"functions": {"k": {"args": ["u"], "range": [1, 0]}}}, "functions.k.range"),
        ({"params": {"k_u": 1.0}}, "function derivatives"),
        (
            {
                "reference": {
                    "exact": {"u": "sin(pi*x)"},
                    "functions": {"k": {"exact": "1 + u", "domain": {"v": [0, 1]}}},
                }
            },
            "reference.functions.k.domain",
        ),
    ],
)
def test_bad_function_declarations_name_their_key(tmp_path, change, path):
    spec = {**STEADY, **change}
    with pytest.raises(SpecError) as e:
        pinnkit.solve(spec, out=tmp_path / "bad", progress=False)
    assert path in str(e.value)
