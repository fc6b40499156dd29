"""Domains, derivative names, samplers, hard constraints and the objective, checked on
functions whose answers are known."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnkit
from pinnkit import SpecError, load_spec
from pinnkit.backends import MLP, Constrained, PointFunction
from pinnkit.core.constraints import hard_constraints
from pinnkit.core.derivatives import ForwardMode, NestedReverse
from pinnkit.core.domain import Box, parse_derivative, parse_face
from pinnkit.core.objective import Objective
from pinnkit.core.sampling import RAD, Grid, Sobol, Uniform

BOX = Box(("x", "y", "t"), {"x": (0.0, 2.0), "y": (-1.0, 1.0), "t": (0.0, 0.5)})


def test_derivative_names():
    d = parse_derivative("u_xxt", BOX.coords, ["u", "v"])
    assert d.field == "u" and d.orders == (2, 0, 1) and d.order == 3
    assert parse_derivative("v", BOX.coords, ["u", "v"]).orders == (0, 0, 0)
    assert parse_derivative("w_x", BOX.coords, ["u"]) is None
    assert parse_derivative("u_z", BOX.coords, ["u"]) is None
    multi = parse_derivative("u_x1x1x2", ("x1", "x2"), ["u"])
    assert multi.orders == (2, 1)


def test_faces():
    (f,) = parse_face("x=2", BOX)
    assert (f.axis, f.side, f.value) == (0, 1, 2.0)
    assert parse_face("t=0", BOX)[0].side == 0
    assert len(parse_face("boundary", BOX)) == 4  # x and y faces; time has no boundary
    with pytest.raises(SpecError, match="not a face"):
        parse_face("x=1", BOX)
    with pytest.raises(SpecError, match="did you mean 'x'"):
        parse_face("xx=0", BOX)


@pytest.mark.parametrize("sampler", [Uniform(), Sobol(), Grid(), Grid(jitter=True), RAD()])
def test_samplers_stay_in_region_and_pin_faces(sampler):
    lo, hi = jnp.asarray(BOX.lo), jnp.asarray(BOX.hi)
    pts = sampler(lo, hi, 500, key=jax.random.key(0))
    assert pts.shape == (500, 3)
    assert bool(jnp.all((pts >= lo) & (pts <= hi)))
    face_hi = hi.at[0].set(lo[0])
    face = sampler(lo, face_hi, 100, key=jax.random.key(1))
    np.testing.assert_array_equal(face[:, 0], 0.0)


def test_resampling_gives_new_points_except_fixed_grid():
    lo, hi = jnp.zeros(2), jnp.ones(2)
    for sampler, moves in ((Uniform(), True), (Sobol(), True), (Grid(), False)):
        a = sampler(lo, hi, 64, key=jax.random.key(0))
        b = sampler(lo, hi, 64, key=jax.random.key(1))
        assert bool(jnp.any(a != b)) == moves
        assert sampler.resamples == moves


def test_sobol_is_more_uniform_than_uniform():
    lo, hi = jnp.zeros(2), jnp.ones(2)

    def worst_cell_error(pts):
        counts, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=8, range=[[0, 1], [0, 1]])
        return np.abs(counts - len(pts) / 64).max()

    s = np.mean([worst_cell_error(Sobol()(lo, hi, 1024, key=jax.random.key(k))) for k in range(5)])
    u = np.mean(
        [worst_cell_error(Uniform()(lo, hi, 1024, key=jax.random.key(k))) for k in range(5)]
    )
    assert s < u / 2


def test_rad_concentrates_where_the_residual_is_large():
    lo, hi = jnp.zeros(1), jnp.ones(1)
    score = lambda p: jnp.exp(-(((p[:, 0] - 0.8) / 0.02) ** 2))
    # 16 candidates per point: about 320 of them fall within 0.05 of the peak, enough for 200
    # picks without replacement to concentrate there.
    pts = RAD(k=2.0, c=0.0, candidates=16)(lo, hi, 200, score=score, key=jax.random.key(0))
    assert float(jnp.mean(jnp.abs(pts[:, 0] - 0.8) < 0.05)) > 0.8


def spec2d(conditions, exact="sin(pi*x)*cos(pi*y/2) + x*y + 1"):
    return {
        "name": "c",
        "coords": ["x", "y"],
        "domain": {"x": [0, 1], "y": [-1, 1]},
        "fields": ["u"],
        "equation": {"residuals": ["u_xx + u_yy"]},
        "conditions": conditions,
        "reference": {"exact": {"u": exact}},
    }


def test_hard_constraints_meet_inhomogeneous_data_exactly():
    g = "sin(pi*x)*cos(pi*y/2) + x*y + 1"
    problem = load_spec(
        spec2d([{"on": "x=0", "u": g}, {"on": "x=1", "u": g}, {"on": "y=-1", "u": g}])
    ).problem()
    lifts, enforced = hard_constraints(problem)
    assert enforced == {(0, "u"), (1, "u"), (2, "u")}
    net = MLP((0.0, -1.0), (1.0, 1.0), ("u",), width=8, depth=2, key=jax.random.key(0))
    model = Constrained(net, (lifts["u"],))
    rng = np.random.default_rng(0)
    exact = lambda x, y: np.sin(np.pi * x) * np.cos(np.pi * y / 2) + x * y + 1
    for axis, value in ((0, 0.0), (0, 1.0), (1, -1.0)):
        pts = np.column_stack([rng.random(50), rng.uniform(-1, 1, 50)])
        pts[:, axis] = value
        got = np.asarray(jax.vmap(model)(jnp.asarray(pts)))[:, 0]
        np.testing.assert_allclose(got, exact(pts[:, 0], pts[:, 1]), atol=2e-6)
    # The free face y=1 is not pinned: the network still moves it.
    top = jnp.array([[0.3, 1.0]])
    assert abs(float(jax.vmap(model)(top)[0, 0]) - exact(0.3, 1.0)) > 1e-4


def test_incompatible_corner_data_stay_soft():
    problem = load_spec(spec2d([{"on": "x=0", "u": "1"}, {"on": "y=-1", "u": "0"}])).problem()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lifts, enforced = hard_constraints(problem)
    # The first-listed condition is exact, the one that disagrees with it stays soft.
    assert set(lifts) == {"u"} and enforced == {(0, "u")}
    assert any("disagree" in str(w.message) and "y=-1" in str(w.message) for w in caught)
    x = jnp.array([0.0, 0.3])
    assert float(lifts["u"].lift(x)) == 1.0 and float(lifts["u"].distance(x)) == 0.0


def test_a_cavity_keeps_its_walls_exact_and_its_lid_soft():
    """u = 1 on the lid and 0 on the walls disagree at two corners: the three walls are
    exact, the lid stays a loss term."""
    walls = [{"on": face, "u": "0"} for face in ("x=0", "x=1", "y=-1")]
    problem = load_spec(spec2d([{"on": "y=1", "u": "1"}, *walls])).problem()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        lifts, enforced = hard_constraints(problem)
    assert enforced == {(1, "u"), (2, "u"), (3, "u")}
    lift = lifts["u"]
    for point in ([0.0, 0.2], [1.0, -0.5], [0.3, -1.0]):
        x = jnp.array(point)
        assert float(lift.lift(x)) == 0.0 and float(lift.distance(x)) == 0.0
    assert float(lift.distance(jnp.array([0.5, 1.0]))) > 0  # the lid is free


def test_a_condition_kept_in_part_stays_a_loss_term():
    """u = 1 on x = 0 and x = 1, and u = (y + 3)/2 on the rest of the boundary: its face
    y = -1 agrees with the walls (u = 1) and is exact, its face y = 1 (u = 2) does not and is
    soft, so the condition stays a loss term."""
    conditions = [
        {"on": "x=0", "u": "1"},
        {"on": "x=1", "u": "1"},
        {"on": "boundary", "u": "(y + 3)/2"},
    ]
    problem = load_spec(spec2d(conditions)).problem()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        lifts, enforced = hard_constraints(problem)
    assert enforced == {(0, "u"), (1, "u")}
    lift = lifts["u"]
    bottom, top = jnp.array([0.4, -1.0]), jnp.array([0.4, 1.0])
    assert float(lift.distance(bottom)) == 0.0 and float(lift.lift(bottom)) == 1.0
    assert float(lift.distance(top)) > 0


def test_derivative_conditions_and_unknown_targets_stay_soft():
    problem = load_spec(
        {**spec2d([{"on": "x=0", "u_x": "0"}, {"on": "x=1", "u": "c0"}]), "unknowns": {"c0": 1.0}}
    ).problem()
    lifts, enforced = hard_constraints(problem)
    assert not lifts and not enforced


def exact_model(fn, fields=("u",), strategy=None):
    return PointFunction(tuple(fields), strategy or ForwardMode(), lambda p, x: fn(x), {})


@pytest.mark.parametrize("strategy", [ForwardMode(), NestedReverse()])
def test_objective_vanishes_on_the_exact_solution(strategy):
    spec = {
        "name": "heat",
        "coords": ["x", "t"],
        "domain": {"x": [0, 1], "t": [0, 1]},
        "fields": ["u"],
        "params": {"nu": 0.1},
        "equation": {"name": "heat"},
        "conditions": [
            {"on": "x=0", "u": "0"},
            {"on": "x=1", "u_x": "-pi*exp(-pi^2*nu*t)"},
            {"on": "t=0", "u": "sin(pi*x)"},
            {"on": "x=1", "residual": "u_x + pi*exp(-pi^2*nu*t)"},
        ],
    }
    problem = load_spec(spec).problem()
    fn = lambda x: jnp.array([jnp.exp(-(jnp.pi**2) * 0.1 * x[1]) * jnp.sin(jnp.pi * x[0])])
    obj = Objective(problem, interior=256, boundary=64)
    points = obj.sample(key=jax.random.key(0))
    sq = obj.squared(exact_model(fn, strategy=strategy), {}, points)
    terms = obj.reduce(sq, points)
    assert set(terms) == {"residual", "x=0", "x=1", "t=0", "x=1#1"}
    for name, value in terms.items():
        assert float(value) < 1e-9, name
    # A wrong solution is caught by the residual term.
    wrong = lambda x: fn(x) * (1 + 0.1 * x[1])
    assert float(obj.reduce(obj.squared(exact_model(wrong), {}, points), points)["residual"]) > 1e-4


def test_periodic_condition_term():
    spec = {
        "name": "p",
        "coords": ["x"],
        "domain": {"x": [0, 1]},
        "fields": ["u"],
        "equation": {"residuals": ["u_xx + 4*pi^2*u"]},
        "conditions": [{"periodic": "x"}],
    }
    problem = load_spec(spec).problem()
    obj = Objective(problem, interior=32, boundary=1)
    pts = obj.sample(key=jax.random.key(0))
    good = exact_model(lambda x: jnp.array([jnp.sin(2 * jnp.pi * x[0])]))
    bad = exact_model(lambda x: jnp.array([x[0] ** 2]))
    assert float(obj.reduce(obj.squared(good, {}, pts), pts)["periodic x"]) < 1e-10
    assert float(obj.reduce(obj.squared(bad, {}, pts), pts)["periodic x"]) > 0.5
    # The MLP with a periodic embedding is periodic by construction.
    net = MLP((0.0,), (1.0,), ("u",), periodic=(0,), harmonics=2, key=jax.random.key(0))
    a, b = net(jnp.array([0.0])), net(jnp.array([1.0]))
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_mlp_fourier_features_are_frozen():
    net = MLP((0.0,), (1.0,), ("u",), fourier_features=8, key=jax.random.key(0))
    filt = net.trainable()
    assert filt.fourier is False  # a prefix: the whole Frozen node is left out
    assert filt.layers[0].weight is True


def test_solution_call_and_predict(tmp_path):
    from test_trainer import small_spec

    spec = small_spec(phases=[{"optimizer": "adam", "steps": 5}])
    sol = pinnkit.solve(spec, out=tmp_path / "r", progress=False)
    values = sol(np.array([[0.25], [0.5]]))
    assert values.shape == (2, 1)
    by_name = sol.predict({"x": np.array([0.25, 0.5])}, names=["u", "u_x"])
    np.testing.assert_allclose(by_name["u"], values[:, 0], rtol=1e-6)
    assert by_name["u_x"].shape == (2,)
    with pytest.raises(ValueError):
        sol(np.zeros((3, 2)))


def test_integral_terms_by_quadrature():
    spec = {
        "name": "q",
        "coords": ["x", "t"],
        "domain": {"x": [0, 1], "t": [0, 2]},
        "fields": ["u"],
        "equation": {"residuals": ["u_t + u"]},
        "integrals": [
            {"integrand": "u", "equals": "2*exp(-t)/pi", "over": ["x"], "points": 16},
            {"integrand": "u^2", "equals": "(1 - exp(-4))/4", "points": 32, "label": "energy"},
        ],
    }
    problem = load_spec(spec).problem()
    obj = Objective(problem, interior=16, boundary=1)
    pts = obj.sample(key=jax.random.key(0))
    assert pts["integral0"].shape == (16 * 16, 2) and pts["integral1"].shape == (32 * 32, 2)
    exact = exact_model(lambda x: jnp.array([jnp.exp(-x[1]) * jnp.sin(jnp.pi * x[0])]))
    terms = obj.reduce(obj.squared(exact, {}, pts), pts)
    assert float(terms["integral0"]) < 1e-10 and float(terms["energy"]) < 1e-10
    wrong = exact_model(lambda x: jnp.array([1.1 * jnp.exp(-x[1]) * jnp.sin(jnp.pi * x[0])]))
    terms = obj.reduce(obj.squared(wrong, {}, pts), pts)
    assert float(terms["integral0"]) > 1e-5 and float(terms["energy"]) > 1e-4


def test_an_integral_condition_pins_a_solution(tmp_path):
    spec = {
        "name": "mean",
        "coords": ["x"],
        "domain": {"x": [0, 1]},
        "fields": ["u"],
        "equation": {"residuals": ["u_x"]},
        "integrals": [{"integrand": "u", "equals": 3, "points": 8}],
        "model": {"width": 8, "depth": 1},
        "train": {
            "optimizer": {"name": "adam", "lr": 0.02},
            "steps": 400,
            "points": {"interior": 32},
        },
    }
    sol = pinnkit.solve(spec, out=tmp_path / "r", progress=False)
    np.testing.assert_allclose(sol(np.linspace(0, 1, 5)), 3.0, atol=2e-2)
    with pytest.raises(SpecError, match="'q'"):
        load_spec({**spec, "integrals": [{"integrand": "q", "equals": 1}]})
    with pytest.raises(SpecError, match="'t'"):
        load_spec({**spec, "integrals": [{"integrand": "u", "equals": 1, "over": ["t"]}]})
