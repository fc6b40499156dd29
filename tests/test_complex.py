"""Complex fields: the expression language's complex arithmetic, the split of complex
residuals and conditions into real parts, derivatives of complex fields, errors of complex
solutions, and what a spec with a wrong complex declaration is told.

The manufactured solution is the NLS soliton h = sech(x) exp(i t/2), which solves
i h_t + 0.5 h_xx + |h|^2 h = 0 on the whole line: i h_t = -h/2, h_xx = (sech - 2 sech^3) e^{it/2}.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnkit
from pinnkit import SpecError, load_spec
from pinnkit.backends import PointFunction
from pinnkit.core.derivatives import ForwardMode, NestedReverse
from pinnkit.core.domain import parse_face
from pinnkit.core.objective import Objective
from pinnkit.core.problem import Condition, Observations, Problem, Reference
from pinnkit.equations import AbstractEquation
from pinnkit.errors import ExpressionError
from pinnkit.spec.build import build_model
from pinnkit.train.solution import evaluate_fields, field_errors

NLS = "i*h_t + 0.5*h_xx + abs(h)^2*h"


def soliton(x):
    """sech(x) exp(i t/2) as (re, im) at a point (x, t)."""
    amplitude, phase = 1 / jnp.cosh(x[0]), x[1] / 2
    return jnp.array([amplitude * jnp.cos(phase), amplitude * jnp.sin(phase)])


def exact_model(fn, fields=("h_re", "h_im"), strategy=None):
    return PointFunction(tuple(fields), strategy or ForwardMode(), lambda p, x: fn(x), {})


def nls_spec(**changes):
    spec = {
        "name": "soliton",
        "coords": ["x", "t"],
        "domain": {"x": [-5, 5], "t": [0, 1]},
        "fields": ["h"],
        "complex": ["h"],
        "equation": {"residuals": [NLS]},
        "conditions": [
            {"on": "t=0", "h": "sech(x)"},
            # h_x = -tanh(x) h everywhere: a complex residual condition, and a complex target.
            {"on": "x=-5", "residual": "h_x + tanh(x)*h"},
            {"on": "x=5", "h_x": "-tanh(x)*sech(x)*exp(i*t/2)"},
        ],
        "reference": {"exact": {"h": "sech(x)*exp(i*t/2)"}, "grid": [33, 9]},
    }
    spec.update(changes)
    return spec


# --- the expression language ------------------------------------------------------------


def test_imaginary_unit_and_complex_functions():
    from pinnkit import parse_expression

    e = parse_expression("i*h_t + 0.5*h_xx + abs(h)^2*h", complex_symbols={"h", "h_t", "h_xx"})
    assert e.is_complex and e.complex_symbols == {"h", "h_t", "h_xx"}
    # i (2i) + 0.5 (0.5) + |1 + i|^2 (1 + i) = -2 + 0.25 + 2 + 2i
    assert complex(e({"h": 1 + 1j, "h_t": 2j, "h_xx": 0.5})) == pytest.approx(0.25 + 2j)
    z = {"h": 3 - 4j}
    for text, value, is_complex in [
        ("abs(h)", 5.0, False),
        ("real(h)", 3.0, False),
        ("imag(h)", -4.0, False),
        ("conj(h)", 3 + 4j, True),
        ("h*conj(h)", 25.0, True),  # complex-typed even where the value is real
        ("exp(i*pi)", -1.0, True),
        ("i^2", -1.0, True),
        ("2*sech(0)", 2.0, False),
        ("where(abs(h) > 1, h, 0)", 3 - 4j, True),
    ]:
        e = parse_expression(text, complex_symbols={"h"})
        assert e.is_complex == is_complex, text
        assert complex(e(z)) == pytest.approx(value, abs=1e-6), text
    # Without complex symbols only i makes a value complex.
    assert not parse_expression("abs(h)^2*h").is_complex


@pytest.mark.parametrize(
    "text, message",
    [
        ("h < 1", "complex value has no order"),
        ("where(h > 0, 1, 0)", "complex value has no order"),
        ("max(h, 0)", "argument of max"),
        ("heaviside(i*x)", "argument of heaviside"),
        ("2j*h", "write the imaginary unit i"),
    ],
)
def test_complex_values_are_refused_where_order_matters(text, message):
    with pytest.raises(ExpressionError, match=message):
        pinnkit.parse_expression(text, complex_symbols={"h"})


def test_complex_symbols_are_part_of_identity():
    from pinnkit import parse_expression

    real = parse_expression("h*h")
    cplx = parse_expression(real, complex_symbols={"h"})
    assert cplx.is_complex and not real.is_complex and real != cplx
    assert parse_expression(cplx, complex_symbols={"h"}) is cplx
    assert parse_expression(cplx) is cplx  # without complex symbols given: left as it is
    import pickle

    assert pickle.loads(pickle.dumps(cplx)).is_complex


# --- problems with complex fields -------------------------------------------------------


def test_spec_splits_a_complex_field_into_real_parts():
    problem = load_spec(nls_spec()).problem()
    assert problem.fields == ("h_re", "h_im") and problem.complex_fields == ("h",)
    assert problem.equation.names == ("residual_re", "residual_im")
    assert set(problem.equation.requests) == {
        f"h_{p}{d}" for p in ("re", "im") for d in ("", "_t", "_xx")
    }
    initial, robin, neumann = problem.conditions
    assert set(initial.targets) == {"h_re", "h_im"}
    assert len(robin.residuals) == 2  # complex: real and imaginary parts
    assert set(neumann.targets) == {"h_re_x", "h_im_x"}
    # A real residual of a complex field stays one residual.
    real = load_spec(nls_spec(equation={"residuals": [NLS, "abs(h)^2 - abs(h)^2"]})).problem()
    assert real.equation.names == ("residual0_re", "residual0_im", "residual1")


@pytest.mark.parametrize("strategy", [ForwardMode(), NestedReverse()])
def test_objective_vanishes_on_an_exact_complex_solution(strategy):
    problem = load_spec(nls_spec()).problem()
    obj = Objective(problem, interior=256, boundary=64)  # every condition a loss term
    points = obj.sample(key=jax.random.key(0))
    terms = obj.reduce(obj.squared(exact_model(soliton, strategy=strategy), {}, points), points)
    assert set(terms) == {
        "residual_re",
        "residual_im",
        "t=0:h_re",
        "t=0:h_im",
        "x=-5:residual0",
        "x=-5:residual1",
        "x=5:h_re_x",
        "x=5:h_im_x",
    }
    for name, value in terms.items():
        # float32: O(1) values cancel to ~1e-7, squared 1e-14; 1e-10 leaves room.
        assert float(value) < 1e-10, name
    # The wrong phase speed (exp(i t)) leaves a residual of size sech/2 in both parts.
    wrong = lambda x: jnp.array([jnp.cos(x[1]), jnp.sin(x[1])]) / jnp.cosh(x[0])
    terms = obj.reduce(obj.squared(exact_model(wrong), {}, points), points)
    assert float(terms["residual_re"]) > 1e-3 and float(terms["residual_im"]) > 1e-3
    assert float(terms["x=5:h_im_x"]) > 1e-6  # |h_x| is 0.013 at x = 5


def test_derivatives_of_a_complex_field_against_calculus():
    problem = load_spec(nls_spec()).problem()
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-5, 5, 50), rng.uniform(0, 1, 50)])
    x, t = pts[:, 0], pts[:, 1]
    with jax.enable_x64(True):
        got = evaluate_fields(exact_model(soliton), problem, pts, ["h", "h_x", "h_xx", "h_t"])
    phase = np.exp(0.5j * t)
    sech, tanh = 1 / np.cosh(x), np.tanh(x)
    exact = {
        "h": sech * phase,
        "h_x": -sech * tanh * phase,
        "h_xx": (sech - 2 * sech**3) * phase,
        "h_t": 0.5j * sech * phase,
    }
    for name, value in exact.items():
        assert np.iscomplexobj(got[name])
        np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-6, err_msg=name)


def test_periodic_condition_holds_for_both_parts():
    spec = nls_spec(
        domain={"x": [0, 1], "t": [0, 1]},
        conditions=[{"periodic": "x"}],
        reference=None,
    )
    problem = load_spec(spec).problem()
    obj = Objective(problem, interior=16, boundary=32)
    pts = obj.sample(key=jax.random.key(0))
    wave = lambda x: jnp.array([jnp.cos(2 * jnp.pi * x[0]), jnp.sin(2 * jnp.pi * x[0])])
    assert float(obj.reduce(obj.squared(exact_model(wave), {}, pts), pts)["periodic x"]) < 1e-10
    # A real part that is periodic does not hide an imaginary part that is not.
    skew = lambda x: jnp.array([jnp.cos(2 * jnp.pi * x[0]), x[0] + x[1]])
    assert float(obj.reduce(obj.squared(exact_model(skew), {}, pts), pts)["periodic x"]) > 0.5


def test_initial_condition_is_met_exactly_for_both_parts():
    loaded = load_spec(nls_spec(conditions=[{"on": "t=0", "h": "2*sech(x)"}]))
    problem = loaded.problem()
    built = build_model(problem, loaded.model, dtype=jnp.float32, key=jax.random.key(0))
    assert built.enforced == {(0, "h_re"), (0, "h_im")}
    x = np.linspace(-5, 5, 11)
    h = evaluate_fields(built.model, problem, np.column_stack([x, 0 * x]), ["h"])["h"]
    np.testing.assert_allclose(h, 2 / np.cosh(x), atol=1e-6)


def test_a_python_problem_with_a_complex_residual_function():
    class NLSEquation(AbstractEquation):
        names: tuple = ("nls",)
        requests: tuple = ("h", "h_t", "h_xx")

        def residuals(self, env):
            h = env["h"]
            return (1j * env["h_t"] + 0.5 * env["h_xx"] + jnp.abs(h) ** 2 * h,)

    box = pinnkit.Box(("x", "t"), {"x": (-5.0, 5.0), "t": (0.0, 1.0)})
    initial = Condition(
        faces=parse_face("t=0", box), targets={"h": lambda env: 1 / jnp.cosh(env["x"])}
    )
    # Observed complex values of h become observations of both parts.
    seen = np.array([[0.5, 0.25], [-1.0, 0.75]])
    values = np.cosh(seen[:, 0]) ** -1 * np.exp(0.5j * seen[:, 1])
    problem = Problem(
        "nls",
        box,
        ("h",),
        NLSEquation(),
        (initial,),
        data=(Observations(seen, {"h": values}),),
        complex_fields=("h",),
    )
    assert problem.fields == ("h_re", "h_im")
    assert problem.equation.names == ("nls_re", "nls_im")
    np.testing.assert_array_equal(problem.data[0].values["h_im"], values.imag)
    obj = Objective(problem, interior=128, boundary=32)
    pts = obj.sample(key=jax.random.key(1))
    terms = obj.reduce(obj.squared(exact_model(soliton), {}, pts), pts)
    assert max(float(v) for v in terms.values()) < 1e-10
    # Made again (dataclasses.replace), a problem is not split twice.
    import dataclasses

    again = dataclasses.replace(problem, name="again")
    assert again.fields == problem.fields and again.equation.names == problem.equation.names


# --- errors of complex solutions ----------------------------------------------------------


def test_errors_of_a_complex_field_and_its_modulus():
    x = np.linspace(-5, 5, 101)
    ref = Reference(np.zeros((101, 1)), {"h": 2 / np.cosh(x) * np.exp(0.3j)})
    shifted = ref.values["h"] * np.exp(0.1j)  # a phase error: |h| exact, h off by |1 - e^0.1i|
    errors = field_errors({"h": shifted}, ref)
    assert errors["|h|"]["rel_l2"] < 1e-15
    assert errors["h"]["rel_l2"] == pytest.approx(abs(1 - np.exp(0.1j)), rel=1e-12)


def test_solve_writes_complex_outputs(tmp_path):
    spec = nls_spec(
        model={"width": 8, "depth": 1},
        train={"optimizer": "adam", "steps": 10, "log_every": 5, "points": {"interior": 64}},
    )
    sol = pinnkit.solve(spec, out=tmp_path / "r", progress=False)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert set(summary["errors"]) == {"h", "|h|"}
    with np.load(tmp_path / "r" / "solution.npz") as z:
        assert {"h_re", "h_im", "|h|", "reference_h"} <= set(z.files)
        assert np.iscomplexobj(z["reference_h"])
        np.testing.assert_allclose(z["|h|"], np.hypot(z["h_re"], z["h_im"]))
    assert (tmp_path / "r" / "plots" / "fields.png").exists()
    assert np.iscomplexobj(sol.predict({"x": [0.0], "t": [0.5]}, ["h"])["h"])


def test_nls_reference_solver_is_registered():
    from pinnkit.reference import REFERENCE_SOLVERS

    cols = {"x": np.array([-5.0, 0.0, 5.0]), "t": np.zeros(3)}
    values = REFERENCE_SOLVERS["nls_split_step"](cols, fields=("h",), params={}, n=64)
    np.testing.assert_allclose(values["h"], 2 / np.cosh(cols["x"]))
    with pytest.raises(SpecError, match=r"\[-5, 5\]"):
        REFERENCE_SOLVERS["nls_split_step"](
            {"x": np.array([6.0]), "t": np.zeros(1)}, fields=("h",), params={}
        )


# --- spec errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, path, message",
    [
        ({"complex": ["g"]}, "complex[0]", "'g' is not a field"),
        ({"complex": ["h", "h"]}, "complex", "unique"),
        ({"complex": "h"}, "complex", "list"),
        ({"params": {"i": 1.0}}, "params", "builtin constant"),
        (
            {"equation": {"residuals": ["where(h > 0, h_t, 0)"]}},
            "equation.residuals[0]",
            "no order",
        ),
        (
            {"complex": [], "equation": {"residuals": ["i*h_t + h_xx"]}},
            "equation.residuals[0]",
            "under `complex:`",
        ),
        (
            {
                "complex": [],
                "equation": {"residuals": ["h_t"]},
                "conditions": [{"on": "t=0", "h": "exp(i*x)"}],
            },
            "conditions[0].h",
            "'h' is real",
        ),
        (
            {"integrals": [{"integrand": "h", "equals": 1}]},
            "integrals[0].integrand",
            r"abs\(h\)\^2",
        ),
        (
            {"complex": [], "equation": {"residuals": ["h_t"]}, "conditions": []},
            "reference.exact.h",
            "under `complex:`",
        ),
    ],
)
def test_bad_complex_declarations_name_the_key(changes, path, message):
    with pytest.raises(SpecError, match=message) as info:
        load_spec(nls_spec(**changes))
    assert info.value.path == path


def test_a_coordinate_may_not_be_named_like_a_part():
    # h_re would be both the real part of h and its derivative by the coordinate re.
    spec = nls_spec(
        coords=["x", "re"],
        domain={"x": [0, 1], "re": [0, 1]},
        equation={"residuals": ["h_xx + h_rere"]},
        conditions=[],
        reference=None,
    )
    with pytest.raises(SpecError, match="no coordinate may be named re or im") as info:
        load_spec(spec)
    assert info.value.path == "coords"
