"""The ODIL backend: finite differences, interpolation, multigrid, the sparse Jacobian and the
direct Gauss–Newton solve."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnkit
from pinnkit.backends.odil import ODIL, difference, interpolation_matrix, level_sizes
from pinnkit.core.domain import Derivative
from pinnkit.errors import SpecError
from pinnkit.train.sparse import sparse_jacobian


@pytest.mark.parametrize("order, degree", [(1, 2), (2, 3)])
def test_differences_are_exact_on_polynomials_up_to_their_degree(x64, order, degree):
    x = np.linspace(-0.3, 1.1, 9)
    h = x[1] - x[0]
    coeffs = np.arange(1.0, degree + 2)
    u = np.polynomial.polynomial.polyval(x, coeffs)
    exact = np.polynomial.polynomial.polyval(x, np.polynomial.polynomial.polyder(coeffs, order))
    np.testing.assert_allclose(difference(jnp.asarray(u), 0, order, h), exact, atol=1e-9)


@pytest.mark.parametrize("order, inner", [(1, 0), (2, 0), (3, 3)])
def test_differences_converge_at_second_order(x64, order, inner):
    """Orders 1 and 2 up to the faces; a composed third order inside (first order there)."""
    errors = []
    for n in (17, 33, 65):
        x = np.linspace(0.0, 1.0, n)
        d = difference(jnp.asarray(np.sin(3 * x)), 0, order, x[1] - x[0])
        exact = 3**order * np.sin(3 * x + order * np.pi / 2)
        keep = slice(inner, n - inner)
        errors.append(np.abs(np.asarray(d) - exact)[keep].max())
    rates = np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))
    assert np.all(rates > 1.8), rates


def test_difference_along_an_axis_of_a_grid(x64):
    t, x = np.linspace(0, 1, 6), np.linspace(0, 2, 7)
    T, X = np.meshgrid(t, x, indexing="ij")
    u = jnp.asarray(T**2 * X)
    np.testing.assert_allclose(difference(u, 0, 1, t[1] - t[0]), 2 * T * X, atol=1e-12)
    np.testing.assert_allclose(difference(difference(u, 0, 1, 0.2), 1, 1, 1 / 3), 2 * T)


def _model(values, *axes):
    model = ODIL(list(axes), ("u",))
    return model.with_values(jnp.asarray(values)[None])


def test_fields_at_interpolates_multilinear_functions_exactly(x64):
    t, x = np.linspace(0, 1, 5), np.linspace(-1, 1, 8)
    f = lambda t, x: 1 + 2 * t - 3 * x + 4 * t * x
    T, X = np.meshgrid(t, x, indexing="ij")
    model = _model(f(T, X), t, x)
    pts = np.random.default_rng(0).uniform([0, -1], [1, 1], (50, 2))
    pts = np.concatenate([pts, [[0, -1], [1, 1], [0, 1], [1, -1]]])
    got = model.fields_at(jnp.asarray(pts), [Derivative("u", (0, 0), "u")])["u"]
    np.testing.assert_allclose(got, f(pts[:, 0], pts[:, 1]), atol=1e-12)
    # first derivatives of a multilinear function are exact everywhere, faces included
    d = model.fields_at(jnp.asarray(pts), [Derivative("u", (1, 0), "u_t")])["u_t"]
    np.testing.assert_allclose(d, 2 + 4 * pts[:, 1], atol=1e-12)


def test_fields_on_grid_are_the_interior_nodes_in_c_order(x64):
    t, x = np.linspace(0, 1, 6), np.linspace(0, 1, 5)
    T, X = np.meshgrid(t, x, indexing="ij")
    model = _model(np.sin(T + 2 * X), t, x)
    req = [Derivative("u", (1, 1), "u_tx"), Derivative("u", (0, 2), "u_xx")]
    on_grid = model.fields_on_grid(req)
    nodes = np.stack([T[1:-1, 1:-1].ravel(), X[1:-1, 1:-1].ravel()], -1)
    at = model.fields_at(jnp.asarray(nodes), req)
    for r in req:
        np.testing.assert_allclose(on_grid[r.name], at[r.name], atol=1e-12)


def test_multigrid_levels_sum_to_the_fine_field(x64):
    assert level_sizes([65, 17], 3) == [(65, 17), (33, 9), (17, 5)]
    x = np.linspace(0, 1, 9)
    mat = interpolation_matrix(x, np.linspace(0, 1, 5))
    np.testing.assert_allclose(mat @ (2 * np.linspace(0, 1, 5) + 1), 2 * x + 1)
    model = ODIL([x, np.linspace(0, 2, 5)], ("u",), levels=3)
    coarse = jnp.ones_like(model.levels[2])
    model = eqx.tree_at(lambda m: m.levels[2], model, coarse)
    np.testing.assert_allclose(model.grid_values(), 1.0)  # a constant is one coarse value


def test_sparse_jacobian_by_colours_equals_the_dense_one(x64):
    t, x = np.linspace(0, 1, 9), np.linspace(0, 1, 11)
    model = ODIL([t, x], ("u", "v"), max_order=2)
    rng = np.random.default_rng(1)
    model = model.with_values(jnp.asarray(rng.normal(size=model.levels[0].shape)))
    req = [
        Derivative("u", (1, 0), "u_t"),
        Derivative("u", (0, 2), "u_xx"),
        Derivative("v", (0, 1), "v_x"),
        Derivative("v", (0, 0), "v"),
    ]
    pts = jnp.asarray(rng.uniform(0, 1, (7, 2)))

    def residual(values):
        m = model.with_values(values.reshape(model.levels[0].shape))
        g = m.fields_on_grid(req)
        inside = g["u_t"] - g["u_xx"] * g["v"] + g["u_t"] * g["v_x"] ** 2
        face = m.fields_at(jnp.asarray([[0.0, 0.3], [1.0, 1.0]]), req)  # one-sided rows
        data = m.fields_at(pts, req)  # interpolated rows
        return jnp.concatenate([inside, face["u_xx"], face["v_x"], data["v"] * data["u_t"]])

    flat = model.levels[0].reshape(-1)
    _, jvp = jax.linearize(residual, flat)
    colours = np.asarray(model.jacobian_colours().levels[0]).reshape(-1)
    rows, cols, values = sparse_jacobian(jvp, colours, flat.dtype)
    sparse = np.zeros((residual(flat).shape[0], flat.size))
    keep = np.asarray(values) != 0
    np.add.at(sparse, (np.asarray(rows)[keep], np.asarray(cols)[keep]), np.asarray(values)[keep])
    dense = jax.jacfwd(residual)(flat)
    np.testing.assert_allclose(sparse, dense, atol=1e-10)
    assert colours.max() + 1 == 2 * 7**2  # (2·2 + 3)² per field, not one per value


WAVE = {
    "name": "wave",
    "coords": ["t", "x"],
    "domain": {"t": [0, 1], "x": [-1, 1]},
    "fields": ["u"],
    "equation": {"residuals": ["u_tt - u_xx"]},
    "conditions": [
        {"on": "t=0", "u": "cos(pi*x)", "u_t": "0"},
        {"on": "boundary", "u": "-cos(pi*t)"},
    ],
    "reference": {"exact": {"u": "cos(pi*t)*cos(pi*x)"}, "grid": [41, 41]},
}


def _wave(tmp_path, n, phases, **model):
    spec = {
        **WAVE,
        "model": {"backend": "odil", "grid": n, **model},
        "train": {"phases": phases, "log_every": 1, "eval_every": 1},
    }
    sol = pinnkit.solve(spec, out=tmp_path / f"wave{n}", progress=False)
    return sol


def test_direct_newton_solves_a_linear_problem_in_one_step_at_second_order(tmp_path):
    newton = [{"optimizer": {"name": "gauss_newton", "linear_solver": "direct"}, "steps": 2}]
    errors = []
    for n in (17, 33, 65):
        sol = _wave(tmp_path, n, newton)
        first, second = (h["loss"] for h in sol.record.history)
        # one Newton step reaches the least-squares solution (the rows at the corners are
        # consistent only to O(h²), so the loss is small, not zero); the second has nothing left
        assert first < 1e-8 and abs(second - first) < 1e-10
        errors.append(sol.errors()["u"]["rel_l2"])
    rates = np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))
    assert np.all(rates > 1.8), (errors, rates)
    assert sol.dtype == "float64"  # the backend's default


def test_direct_and_conjugate_gradient_newton_agree(tmp_path):
    direct = _wave(
        tmp_path,
        17,
        [{"optimizer": {"name": "gauss_newton", "linear_solver": "direct"}, "steps": 1}],
    )
    cg = _wave(
        tmp_path / "cg", 17, [{"optimizer": {"name": "gauss_newton", "cg_steps": 5000}, "steps": 3}]
    )
    np.testing.assert_allclose(direct.model.grid_values(), cg.model.grid_values(), atol=1e-6)


def test_multigrid_speeds_up_a_first_order_optimizer(tmp_path):
    lbfgs = [{"optimizer": "lbfgs", "steps": 300}]
    plain = _wave(tmp_path, 33, lbfgs).errors()["u"]["rel_l2"]  # about 0.9
    multigrid = _wave(tmp_path / "mg", 33, lbfgs, multigrid=5).errors()["u"]["rel_l2"]
    assert multigrid < 0.5 * plain, (multigrid, plain)


@pytest.mark.parametrize(
    "model, path",
    [
        ({"grid": 3}, "model.grid"),
        ({"grid": [9, 9, 9]}, "model.grid"),
        ({"hard_constraints": True}, "model.hard_constraints"),
        ({"multigrid": 0}, "model.multigrid"),
    ],
)
def test_bad_odil_settings_name_their_key(tmp_path, model, path):
    spec = {**WAVE, "model": {"backend": "odil", **model}}
    with pytest.raises(SpecError) as e:
        pinnkit.solve(spec, out=tmp_path / "bad", progress=False)
    assert path in str(e.value)


def test_an_unknown_linear_solver_is_refused(tmp_path):
    spec = {
        **WAVE,
        "model": {"backend": "odil", "grid": 9},
        "train": {
            "phases": [{"optimizer": {"name": "gauss_newton", "linear_solver": "lu"}, "steps": 1}]
        },
    }
    with pytest.raises(SpecError, match="linear_solver"):
        pinnkit.solve(spec, out=tmp_path / "bad", progress=False)


def test_the_heat_reference_decays_a_sine_exactly_at_second_order():
    from pinnkit.reference.heat import nonlinear_heat

    errors = []
    for n in (21, 41):
        t, x, u = nonlinear_heat(
            lambda u: 0.05 + 0 * u, lambda x: jnp.sin(jnp.pi * x), n=n, times=5, t_final=0.5
        )
        exact = np.exp(-(np.pi**2) * 0.05 * t)[:, None] * np.sin(np.pi * x)[None]
        errors.append(np.abs(u - exact).max())
    assert errors[1] < 1e-3 and 3.5 < errors[0] / errors[1] < 4.5, errors
