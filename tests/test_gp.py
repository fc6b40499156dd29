"""The GP backend (GP-HM, arXiv 2311.04465): closed-form kernel derivatives against nested
autodiff, Kronecker algebra against dense algebra, the grid hook against pointwise answers,
the prior term, Gauss–Newton phases, and pruning of the spectral mixture."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnkit
from pinnkit.backends.gp import (
    GP,
    DirichletLaplacian,
    kernel_derivative,
    kron_apply,
    kron_contract_rows,
    kron_logdet,
    kron_solve_cholesky,
)
from pinnkit.core.domain import Derivative
from pinnkit.errors import SpecError

# Float64 throughout: closed forms and autodiff agree to rounding (~1e-12 relative here).
RTOL = 1e-9


@pytest.fixture(autouse=True)
def _float64():
    """x64 for these tests only (a module-level switch would leak into every other test
    module, since pytest imports them all before running any)."""
    with jax.enable_x64(True):
        yield


def _mixture():
    return (
        jnp.array([0.3, 0.5, 0.2]),
        jnp.array([0.0, 7.0, 25.0]),
        jnp.array([0.8, 0.3, 0.15]),
    )


@pytest.mark.parametrize("kind, max_order", [("gaussian", 4), ("student_t", 3)])
def test_kernel_derivatives_match_nested_autodiff(kind, max_order):
    w, om, ell = _mixture()
    tau = jnp.linspace(-1.3, 1.7, 23) + 1e-3  # away from τ = 0 (|τ| in the Matérn envelope)
    fn = lambda t: kernel_derivative(t, w, om, ell, 0, kind)
    for order in range(1, max_order + 1):
        fn = jax.grad(fn)
        auto = jax.vmap(fn)(tau)
        closed = kernel_derivative(tau, w, om, ell, order, kind)
        scale = jnp.max(jnp.abs(auto))
        np.testing.assert_allclose(closed, auto, rtol=0, atol=RTOL * scale, err_msg=str(order))


def test_student_t_refuses_orders_it_has_no_closed_form_for():
    w, om, ell = _mixture()
    with pytest.raises(SpecError, match="gaussian"):
        kernel_derivative(jnp.zeros(3), w, om, ell, 4, "student_t")


def _spd(key, n):
    a = jax.random.normal(key, (n, n))
    return a @ a.T + n * jnp.eye(n)


def test_kronecker_algebra_matches_dense():
    sizes = (4, 3, 5)
    keys = jax.random.split(jax.random.key(0), 5)
    mats = [_spd(k, n) for k, n in zip(keys, sizes)]
    chols = [jnp.linalg.cholesky(m) for m in mats]
    x = jax.random.normal(keys[3], sizes)
    dense = np.kron(np.kron(mats[0], mats[1]), mats[2])
    dense_l = np.kron(np.kron(chols[0], chols[1]), chols[2])
    flat = np.asarray(x).reshape(-1)
    np.testing.assert_allclose(kron_apply(mats, x).reshape(-1), dense @ flat, rtol=1e-12)
    np.testing.assert_allclose(
        kron_solve_cholesky(chols, x).reshape(-1), np.linalg.solve(dense_l, flat), rtol=1e-10
    )
    np.testing.assert_allclose(
        kron_solve_cholesky(chols, x, transpose=True).reshape(-1),
        np.linalg.solve(dense_l.T, flat),
        rtol=1e-10,
    )
    # whitening: U = L z has covariance K, and K⁻¹ U = L⁻ᵀ z
    u = kron_apply(chols, x)
    alpha = kron_solve_cholesky(chols, x, transpose=True)
    np.testing.assert_allclose(
        alpha.reshape(-1), np.linalg.solve(dense, np.asarray(u).reshape(-1)), rtol=1e-9
    )
    np.testing.assert_allclose(kron_logdet(chols), np.linalg.slogdet(dense)[1], rtol=1e-12)
    # rows: Σ_j Π_a M_a[i, j_a] x[j]  ==  (row-wise Khatri–Rao product) @ vec(x)
    rows = [jax.random.normal(k, (6, n)) for k, n in zip(jax.random.split(keys[4], 3), sizes)]
    khatri = np.stack([np.kron(np.kron(rows[0][i], rows[1][i]), rows[2][i]) for i in range(6)])
    np.testing.assert_allclose(kron_contract_rows(rows, x), khatri @ flat, rtol=1e-10)


def _gp2d(**options):
    axes = [np.linspace(0.0, 1.0, 9), np.linspace(-1.0, 0.5, 7)]
    gp = GP(axes, ("u",), components=4, max_frequency=[12.0, 9.0], jitter=1e-6, **options)
    z = jax.random.normal(jax.random.key(1), gp.values.shape)
    return eqx.tree_at(lambda m: m.values, gp, z)


def test_grid_answers_match_pointwise_answers_and_autodiff():
    gp = _gp2d()
    orders = [(0, 0), (1, 0), (0, 2), (2, 0), (1, 1)]
    requests = [Derivative("u", o, f"u{o}") for o in orders]
    inner = np.stack(
        np.meshgrid(*(np.asarray(a)[1:-1] for a in gp.collocation_axes()), indexing="ij"), -1
    ).reshape(-1, 2)
    on_grid = gp.fields_on_grid(requests)
    at_points = gp.fields_at(jnp.asarray(inner), requests)
    for r in requests:
        np.testing.assert_allclose(on_grid[r.name], at_points[r.name], rtol=1e-8, atol=1e-8)
    # the closed-form derivatives of the posterior mean, against nested autodiff of its value
    value = lambda x: gp.fields_at(x[None], [requests[0]])[requests[0].name][0]
    x = jnp.array([0.37, -0.21])
    hess = jax.hessian(value)(x)
    grad = jax.grad(value)(x)
    got = gp.fields_at(x[None], requests)
    np.testing.assert_allclose(got["u(1, 0)"][0], grad[0], rtol=1e-8)
    np.testing.assert_allclose(got["u(2, 0)"][0], hess[0, 0], rtol=1e-8)
    np.testing.assert_allclose(got["u(0, 2)"][0], hess[1, 1], rtol=1e-8)
    np.testing.assert_allclose(got["u(1, 1)"][0], hess[0, 1], rtol=1e-8)
    # the posterior mean interpolates its grid values
    nodes = np.stack(np.meshgrid(*gp.collocation_axes(), indexing="ij"), -1).reshape(-1, 2)
    values = gp.fields_at(jnp.asarray(nodes), requests[:1])[requests[0].name]
    np.testing.assert_allclose(values, gp.grid_values()[0].reshape(-1), atol=1e-5)


def _dense(fn, shape):
    """The matrix of a linear map on arrays of ``shape``, column by column."""
    n = math.prod(shape)
    eye = np.eye(n).reshape(n, *shape)
    return np.stack([np.asarray(fn(jnp.asarray(e))).reshape(-1) for e in eye], 1)


@pytest.mark.parametrize("sizes", [(9, 7), (6, 5, 7)])
def test_fast_diagonalisation_inverts_the_dirichlet_operator(sizes):
    # non-symmetric differentiation matrices with complex eigenvalues: the solve is exact
    rng = np.random.default_rng(0)
    mats = [jnp.asarray(rng.normal(size=(n, n)) - 2 * n * np.eye(n)) for n in sizes]
    op = DirichletLaplacian(mats)
    apply, solve = _dense(op.apply, sizes), _dense(op.solve, sizes)
    np.testing.assert_allclose(solve @ apply, np.eye(apply.shape[0]), atol=1e-10)
    np.testing.assert_allclose(_dense(op.solve_transpose, sizes), solve.T, atol=1e-12)
    # S itself: the Kronecker-sum rows inside, the values on the faces
    n = math.prod(sizes)
    total = sum(
        np.kron(
            np.kron(np.eye(math.prod(sizes[:a])), np.asarray(m)),
            np.eye(n // math.prod(sizes[: a + 1])),
        )
        for a, m in enumerate(mats)
    )
    inside = np.zeros(sizes, bool)
    inside[(slice(1, -1),) * len(sizes)] = True
    inside = inside.reshape(-1)
    expect = np.where(inside[:, None], total, np.eye(n))
    np.testing.assert_allclose(apply, expect, atol=1e-12)


def test_normal_preconditioner_inverts_the_square_collocation_system():
    gp = _gp2d(preconditioner="laplacian")
    chols = gp.cholesky_factors(0)
    mats = [jnp.linalg.solve(c @ c.T, gp.gram(0, a, 2)).T for a, c in enumerate(chols)]
    s = DirichletLaplacian(mats)
    shape = gp.values.shape[1:]
    # J: whitened values z -> U = (⊗ L_a) z -> the equation rows inside, values on faces
    jac = _dense(lambda z: s.apply(kron_apply(chols, z)), shape)
    precondition = gp.normal_preconditioner("values")
    m = _dense(
        lambda b: precondition(eqx.tree_at(lambda t: t.values, gp, b[None])).values[0], shape
    )
    np.testing.assert_allclose(m @ (jac.T @ jac), np.eye(jac.shape[1]), atol=1e-6)
    np.testing.assert_allclose(m, m.T, atol=1e-8 * np.abs(m).max())
    assert gp.normal_preconditioner("kernel") is None
    assert _gp2d().normal_preconditioner("values") is None  # preconditioner: none


def test_preconditioned_gauss_newton_matches_the_exact_solve_in_few_iterations(tmp_path):
    two_d = {
        "name": "gp-2d",
        "coords": ["x", "y"],
        "domain": {"x": [0, 1], "y": [0, 1]},
        "fields": ["u"],
        "equation": {"residuals": ["u_xx + u_yy + 50*sin(5*x)*sin(5*y)"]},
        "conditions": [
            {"on": side, "u": "sin(5*x)*sin(5*y)"} for side in ("x=0", "x=1", "y=0", "y=1")
        ],
        "reference": {"exact": {"u": "sin(5*x)*sin(5*y)"}, "grid": [41, 41]},
        "train": {"log_every": 1, "eval_every": 1},
    }
    errors = {}
    for name, model, optimizer in [
        # 576 grid values: a dense QR solve, the reference
        ("dense", {"preconditioner": "none"}, {"name": "gauss_newton"}),
        (
            "pcg",
            {"preconditioner": "auto"},
            {"name": "gauss_newton", "dense_limit": 0, "pcg_steps": 12},
        ),
        (
            "cg",
            {"preconditioner": "none"},
            {"name": "gauss_newton", "dense_limit": 0, "cg_steps": 12},
        ),
    ]:
        spec = {
            **two_d,
            "model": {"backend": "gp", "grid": 24, "components": 8, "midpoints": False, **model},
        }
        spec["train"] = {
            **two_d["train"],
            "phases": [{"optimizer": optimizer, "steps": 1, "params": "values"}],
        }
        solution = pinnkit.solve(spec, out=tmp_path / name, progress=False)
        errors[name] = solution.errors()["u"]["rel_l2"]
    # twelve preconditioned iterations reach the exact solve; twelve plain ones do not
    assert abs(errors["pcg"] - errors["dense"]) < 1e-6 * max(errors["dense"], 1e-3), errors
    assert abs(errors["cg"] - errors["dense"]) > 100 * abs(errors["pcg"] - errors["dense"]), errors


def test_prior_term_is_the_negative_log_density_over_n():
    gp = _gp2d()
    residual, offset = gp.penalties()["prior"]
    n = gp.values.size
    chols = gp.cholesky_factors(0)
    dense = np.kron(chols[0] @ chols[0].T, chols[1] @ chols[1].T)
    u = np.asarray(gp.grid_values()[0]).reshape(-1)
    neg_log = 0.5 * u @ np.linalg.solve(dense, u) + 0.5 * np.linalg.slogdet(dense)[1]
    jeffreys = float(jnp.sum(gp.log_weights))
    np.testing.assert_allclose(
        float(jnp.sum(residual**2) + offset), (neg_log + jeffreys) / n, rtol=1e-8
    )


def _spec(**overrides):
    spec = {
        "name": "gp-small",
        "coords": ["x"],
        "domain": {"x": [0, 1]},
        "fields": ["u"],
        "equation": {"residuals": ["u_xx + 400*sin(20*x)"]},
        "conditions": [{"on": "x=0", "u": "sin(20*x)"}, {"on": "x=1", "u": "sin(20*x)"}],
        "reference": {"exact": {"u": "sin(20*x)"}, "grid": [201]},
        "model": {"backend": "gp", "grid": 48, "components": 12},
        "train": {"steps": 150, "log_every": 50, "eval_every": 1000},
    }
    for k, v in overrides.items():
        spec[k] = {**spec[k], **v}
    return spec


def test_one_gauss_newton_step_solves_a_linear_problem(tmp_path):
    spec = _spec(train={"phases": [{"optimizer": "gauss_newton", "steps": 1, "params": "values"}]})
    solution = pinnkit.solve(spec, out=tmp_path / "gn", progress=False)
    terms = solution.record.history[-1]["terms"]
    # square collocation system: the residual and conditions vanish to rounding
    assert terms["residual"] < 1e-16 * 400**2
    assert terms["x=0"] < 1e-12 and terms["x=1"] < 1e-12
    assert all(v == 1 for v in solution.record.traces.values())


def test_log_domain_prior_prunes_to_the_one_frequency(tmp_path):
    # The kernel trained on the prior alone (no midpoint residuals): the GP evidence with
    # the Jeffreys prior on the weights.
    spec = _spec(model={"midpoints": False})
    solution = pinnkit.solve(spec, out=tmp_path / "prune", progress=False)
    assert solution.status == "ok"
    assert all(v == 1 for v in solution.record.traces.values())  # one trace per phase
    spectrum = solution.model.spectrum()
    w, om = spectrum["weights"][0], np.abs(spectrum["freqs"][0])
    top = np.argmax(w)
    # from equal weights (1/12 each), most components pruned: driven an order of magnitude
    # and more below the dominant one ...
    assert np.sum(w > 0.1 * w[top]) <= 2, w
    assert np.median(w) < 0.05 * w[top], w
    # ... and the survivor sits at the true frequency (20 rad per unit; spacing ~13.7)
    assert abs(om[top] - 20.0) < 2.0, (om[top], w)
    # a sanity bound only (48 nodes, 150 steps; measured 2.3e-2): accuracy is the regression
    # tests' business
    assert solution.errors()["u"]["rel_l2"] < 0.05


@pytest.mark.parametrize(
    "model, path",
    [
        ({"grid": [2000, 2000]}, "model.grid"),
        ({"grid": [10, 10, 10]}, "model.grid"),
        ({"max_frequency": -1.0}, "model.max_frequency"),
        ({"hard_constraints": True}, "model.hard_constraints"),
    ],
)
def test_bad_gp_config_names_the_key(model, path, tmp_path):
    spec = _spec(model=model)
    if model.get("grid") == [2000, 2000]:
        spec |= {
            "coords": ["x", "y"],
            "domain": {"x": [0, 1], "y": [0, 1]},
            "reference": {"exact": {"u": "sin(20*x)"}, "grid": [11, 11]},
        }
    with pytest.raises(SpecError) as e:
        pinnkit.solve(spec, out=tmp_path / "bad", progress=False)
    assert e.value.path == path


def test_unknown_parameter_group_is_a_spec_error(tmp_path):
    spec = _spec(train={"phases": [{"optimizer": "gauss_newton", "steps": 1, "params": "weights"}]})
    with pytest.raises(SpecError, match="values"):
        pinnkit.solve(spec, out=tmp_path / "bad", progress=False)


def test_gp_defaults_are_float64_gauss_newton_phases():
    loaded = pinnkit.load_spec(_spec(train={"steps": 100}))
    train = loaded.spec.train
    assert train.dtype == "float64"
    names = [
        p.optimizer if isinstance(p.optimizer, str) else p.optimizer.name for p in train.phases
    ]
    assert names == ["gauss_newton", "adam", "gauss_newton"]
    assert sum(p.steps for p in train.phases) == 100
    assert train.phases[1].solve == "values" and train.phases[1].params == "kernel"
    assert math.isclose(sum(p.steps for p in train.phases), 100)


def test_gauss_newton_phases_resume_from_their_checkpoint(tmp_path):
    spec = _spec(train={"steps": 30, "log_every": 10})
    first = pinnkit.solve(spec, out=tmp_path / "run", progress=False)
    assert first.record.steps == 30
    resumed = pinnkit.solve(
        None, resume=tmp_path / "run", overrides=["train.steps=40"], progress=False
    )
    assert resumed.status == "ok" and resumed.record.steps == 40
