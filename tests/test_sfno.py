"""Tests of the neural operators (pinnkit.operators): SFNO, FNO-3D and the Spectral-Refiner.

What is checked, and why it pins the code down:

* `SpectralConv3d` against the same operator written with dense DFT matrices and the real
  series of its definition (odd and even axes, so the Nyquist exclusion is exercised).
* `sobolev_norm` on sin(2 pi k . x / L), where
  ||.||_{H^s}^2 = (alpha + 4 pi^2 |k|^2 / L^2)^s L^2 / 2 exactly, and on a sum of sines.
* `relative_l2` (Parseval, half spectrum weighted) against the direct ratio of norms.
* `OutputSpectralLayer`, with identity weights, reproduces a band-limited space-time signal at
  the latent grid times and interpolates it (and its time derivative) exactly at other times,
  and drops what lies outside its modes.
* `vorticity_residual`: zero for the exact Taylor–Green decay; for a wrong nu exactly
  2 |nu' - nu| k^2 ||omega||_{H^-1}; the advection term of cos 2 pi x + cos 4 pi y in closed
  form (this fixes the sign convention); and small on a trajectory of the reference solver.
* The refinement's extended output layer reproduces the trained model exactly, on the training
  grid and on a finer one.
* End to end at tiny sizes: training through `pinnkit.train.train` (step traced once, minibatches
  really fetched from the data) lowers the data loss; refinement lowers the residual loss.

Exactness checks run in float64 (x64 switched on per test; conftest restores it).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_ns2d import _mesh  # noqa: E402

from pinnkit.errors import SpecError
from pinnkit.operators import (
    SFNO,
    FNO3d,
    OperatorObjective,
    OutputSpectralLayer,
    RefinementObjective,
    SpectralConv3d,
    refine,
    relative_l2,
    resample,
    sobolev_norm,
    train_operator,
    trajectory_residual,
    vorticity_residual,
)
from pinnkit.reference.ns2d import (
    CrankNicolsonRK4,
    GaussianRandomField,
    fno_forcing,
    solve_ns2d,
)

TWO_PI = 2 * np.pi


def _freqs(n: int) -> np.ndarray:
    return np.fft.fftfreq(n, 1.0 / n)


# --------------------------------------------------------------------------------------------
# Spectral convolution
# --------------------------------------------------------------------------------------------


def _dense_spectral_conv(v, weight, modes):
    """K v from the definition, with explicit DFT matrices: coefficients
    c_o(k) = sum_i W_io(k) v_hat_i(k) on the kept modes |k_x| < m_x, |k_y| < m_y, 0 <= k_t < m_t,
    and the real series (1/N) [Re sum_k c(k, 0) e^{i k.x} + 2 Re sum_{k_t >= 1} ...]."""
    _, nx, ny, nt = v.shape
    mx, my, mt = modes
    fx, fy, ft = (np.exp(-2j * np.pi * np.outer(_freqs(n), np.arange(n)) / n) for n in (nx, ny, nt))
    v_hat = np.einsum("ax,by,ct,ixyt->iabc", fx, fy, ft, v)  # full spectrum, FFT order
    w = weight[..., 0] + 1j * weight[..., 1]  # (i, o, 2mx-1, 2my-1, mt)
    kx = np.concatenate([np.arange(mx), np.arange(-mx + 1, 0)])
    ky = np.concatenate([np.arange(my), np.arange(-my + 1, 0)])
    out = np.zeros((w.shape[1], nx, ny, nt))
    x, y, t = np.arange(nx), np.arange(ny), np.arange(nt)
    for a, kxa in enumerate(kx):
        for b, kyb in enumerate(ky):
            for kt in range(mt):
                c = np.einsum("i,io->o", v_hat[:, kxa % nx, kyb % ny, kt], w[:, :, a, b, kt])
                wave = np.exp(
                    2j
                    * np.pi
                    * (
                        kxa * x[:, None, None] / nx
                        + kyb * y[None, :, None] / ny
                        + kt * t[None, None, :] / nt
                    )
                )
                factor = 1.0 if kt == 0 else 2.0
                out += factor * np.real(c[:, None, None, None] * wave) / (nx * ny * nt)
    return out


@pytest.mark.parametrize("grid, modes", [((6, 8, 5), (2, 3, 2)), ((8, 6, 6), (4, 3, 3))])
def test_spectral_conv_matches_dense_dft(x64, grid, modes):
    """The second case keeps every non-Nyquist mode of even axes (m = n / 2)."""
    key = jax.random.key(0)
    conv = SpectralConv3d(2, 3, modes, key=key)
    assert conv.weight.dtype == jnp.float64 and conv.modes == modes
    v = np.asarray(jax.random.normal(jax.random.key(1), (2, *grid)))
    expected = _dense_spectral_conv(v, np.asarray(conv.weight), modes)
    np.testing.assert_allclose(np.asarray(conv(v)), expected, atol=1e-13 * np.abs(expected).max())


def test_spectral_conv_refuses_a_grid_too_coarse_for_its_modes():
    conv = SpectralConv3d(1, 1, (5, 5, 2), key=jax.random.key(0))
    with pytest.raises(SpecError, match="at least"):
        conv(jnp.ones((1, 8, 8, 4)))  # |k| < 5 needs 9 points


# --------------------------------------------------------------------------------------------
# Norms and losses
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1.0, 2.0])
def test_sobolev_norm_is_exact_on_sines(x64, length):
    n = 16
    X, Y = _mesh(n, length)
    for k in [(1, 0), (0, 3), (2, -5), (7, 7)]:
        v = np.sin(TWO_PI * (k[0] * X + k[1] * Y) / length)
        k2 = TWO_PI**2 * (k[0] ** 2 + k[1] ** 2) / length**2
        for s in (-1.0, -0.5, 0.0, 1.0, 2.0):
            for alpha in (1.0, 0.25):
                got = float(sobolev_norm(v, s, alpha=alpha, length=length)) ** 2
                expected = (alpha + k2) ** s * length**2 / 2
                assert got == pytest.approx(expected, rel=1e-12), (k, s, alpha)
    # Orthogonal modes add in squares; a batch gives one norm per field.
    a, b = np.sin(TWO_PI * X / length), 3 * np.cos(TWO_PI * 4 * Y / length)
    norms = sobolev_norm(np.stack([a, b, a + b]), -1.0, length=length)
    assert float(norms[2]) ** 2 == pytest.approx(float(norms[0]) ** 2 + float(norms[1]) ** 2)


@pytest.mark.parametrize("shape", [(3, 5, 8, 8), (2, 4, 6, 7)])
def test_parseval_relative_l2_equals_the_direct_ratio(x64, shape):
    rng = np.random.default_rng(0)
    target, prediction = rng.normal(size=shape), rng.normal(size=shape)
    prediction = target + 0.1 * prediction
    direct = np.linalg.norm((prediction - target).reshape(shape[0], -1), axis=1) / np.linalg.norm(
        target.reshape(shape[0], -1), axis=1
    )
    np.testing.assert_allclose(np.asarray(relative_l2(prediction, target)), direct, rtol=1e-12)
    # And in float32, to float32 rounding.
    jax.config.update("jax_enable_x64", False)
    got = relative_l2(prediction.astype(np.float32), target.astype(np.float32))
    np.testing.assert_allclose(np.asarray(got), direct, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# The output layer's temporal series
# --------------------------------------------------------------------------------------------


def _identity_head(modes, key=0):
    head = OutputSpectralLayer(1, modes, key=jax.random.key(key))
    ones = jnp.stack([jnp.ones_like(head.weight[..., 0]), jnp.zeros_like(head.weight[..., 1])], -1)
    return eqx.tree_at(lambda h: h.weight, head, ones)


def _signal(X, Y, s, period, waves):
    """sum_j a_j cos(2 pi (k_j . x + m_j s / N) + phi_j) and its s-derivative, (len(s), n, n)."""
    s = np.asarray(s)[:, None, None]
    value, d_value = 0.0, 0.0
    for a, (kx, ky), m, phi in waves:
        arg = TWO_PI * (kx * X + ky * Y + m * s / period) + phi
        value = value + a * np.cos(arg)
        d_value = d_value - a * np.sin(arg) * TWO_PI * m / period
    return value, d_value


@pytest.mark.parametrize("period", [9, 10])
def test_output_layer_reproduces_and_interpolates_a_band_limited_signal(x64, period):
    n = 8
    X, Y = _mesh(n)
    waves = [
        (1.0, (0, 0), 0, 0.0),
        (0.7, (1, -2), 1, 0.3),
        (0.4, (3, 1), 4, -1.1),
        (0.2, (-2, 3), 2, 2.0),
    ]
    grid_times = np.arange(period)
    latent, _ = _signal(X, Y, grid_times, period, waves)
    latent = np.moveaxis(latent, 0, -1)[None]  # (1, x, y, s)
    head = _identity_head((4, 4, 5))  # every mode of the 8 x 8 grid, temporal modes 0..4
    np.testing.assert_allclose(
        np.asarray(head(latent, grid_times)), np.moveaxis(latent[0], -1, 0), atol=1e-13
    )
    new_times = np.array([0.25, 1.5, np.pi, 7.9, 8.5])
    value, d_value = head(latent, new_times, derivative=True)
    expected, d_expected = _signal(X, Y, new_times, period, waves)
    np.testing.assert_allclose(np.asarray(value), expected, atol=1e-13)
    np.testing.assert_allclose(np.asarray(d_value), d_expected, atol=1e-12)
    # A head with fewer modes keeps exactly the waves inside them.
    small = _identity_head((2, 3, 3))
    inside = [w for w in waves if abs(w[1][0]) < 2 and abs(w[1][1]) < 3 and w[2] < 3]
    np.testing.assert_allclose(
        np.asarray(small(latent, new_times)),
        _signal(X, Y, new_times, period, inside)[0],
        atol=1e-13,
    )


# --------------------------------------------------------------------------------------------
# The Navier–Stokes residual
# --------------------------------------------------------------------------------------------


def _taylor_green(n, m, nu, t):
    k = TWO_PI * m
    X, Y = _mesh(n)
    omega = 2 * k * np.cos(k * X) * np.cos(k * Y) * np.exp(-2 * nu * k**2 * t)
    return omega, -2 * nu * k**2 * omega


@pytest.mark.parametrize("m", [1, 3])
def test_residual_vanishes_on_taylor_green_and_measures_a_wrong_viscosity(x64, m):
    nu, n = 1e-2, 16
    omega, omega_t = _taylor_green(n, m, nu, t=0.3)
    r = vorticity_residual(omega, omega_t, nu=nu)
    assert r.shape == (2 * n, 2 * n)
    assert float(jnp.max(jnp.abs(r))) < 1e-12 * np.abs(omega_t).max()
    assert float(sobolev_norm(r, -1.0)) < 1e-13
    # With nu' the residual is 2 (nu' - nu) k^2 omega, so its norm is known exactly.
    wrong = 3 * nu
    expected = 2 * (wrong - nu) * (TWO_PI * m) ** 2 * float(sobolev_norm(omega, -1.0))
    got = float(sobolev_norm(vorticity_residual(omega, omega_t, nu=wrong), -1.0))
    assert got == pytest.approx(expected, rel=1e-12)


def test_residual_advection_and_forcing_in_closed_form(x64):
    """omega = cos 2 pi x + cos 4 pi y (psi = cos 2 pi x / 4 pi^2 + cos 4 pi y / 16 pi^2):
    u . grad omega = -(3/2) sin 2 pi x sin 4 pi y with u = psi_y, v = -psi_x. Any other sign
    convention gives a different sign or amplitude."""
    n = 8
    X, Y = _mesh(n)
    omega = np.cos(TWO_PI * X) + np.cos(2 * TWO_PI * Y)
    r = vorticity_residual(omega, np.zeros_like(omega), nu=0.0, forcing=fno_forcing)
    X2, Y2 = _mesh(2 * n)
    expected = -1.5 * np.sin(TWO_PI * X2) * np.sin(2 * TWO_PI * Y2) - fno_forcing(X2, Y2)
    np.testing.assert_allclose(np.asarray(r), expected, atol=1e-13)
    # Forcing given as grid values is interpolated spectrally: the same residual.
    X1, Y1 = _mesh(n)
    r_grid = vorticity_residual(omega, np.zeros_like(omega), nu=0.0, forcing=fno_forcing(X1, Y1))
    np.testing.assert_allclose(np.asarray(r_grid), expected, atol=1e-13)


def test_residual_is_small_on_a_reference_solver_trajectory(x64):
    """The solver's own sign convention: a centred difference of its trajectory (CN + RK4,
    h = 1e-3, second order) leaves a residual far below ||omega_t||; a sign error in any term
    would leave one of its size."""
    n, nu, h = 32, 1e-2, 1e-3
    w0 = GaussianRandomField(alpha=4.0, tau=3.0).sample(n, key=jax.random.key(0))
    w0 = resample(resample(w0, 8), n)  # modes |k| < 4 only: the solver's 2/3 rule is exact
    sol = solve_ns2d(
        w0,
        nu=nu,
        t_final=0.1,
        steps=100,
        save_every=50,
        forcing=fno_forcing,
        stepper=CrankNicolsonRK4(),
    )
    mid = solve_ns2d(
        sol.vorticity[1], nu=nu, t_final=h, steps=1, forcing=fno_forcing, stepper=CrankNicolsonRK4()
    ).vorticity
    before = solve_ns2d(
        sol.vorticity[0],
        nu=nu,
        t_final=0.05 - h,
        steps=49,
        forcing=fno_forcing,
        stepper=CrankNicolsonRK4(),
    ).vorticity[-1]
    omega_t = (mid[-1] - before) / (2 * h)
    r = vorticity_residual(sol.vorticity[1], omega_t, nu=nu, forcing=fno_forcing)
    scale = float(sobolev_norm(omega_t, -1.0))
    assert float(sobolev_norm(r, -1.0)) < 1e-5 * scale
    wrong_sign = vorticity_residual(
        sol.vorticity[1], omega_t, nu=nu, forcing=lambda x, y: -fno_forcing(x, y)
    )
    assert float(sobolev_norm(wrong_sign, -1.0)) > 0.1 * scale


# --------------------------------------------------------------------------------------------
# Models, training and refinement
# --------------------------------------------------------------------------------------------


def _tiny_sfno(key=0, **options):
    settings = dict(
        in_steps=4, out_steps=4, latent_steps=8, width=6, modes=(3, 3, 3), layers=2, expansion=1
    )
    settings.update(options)
    return SFNO(**settings, key=jax.random.key(key))


def test_models_shapes_times_and_derivative(x64):
    model = _tiny_sfno()
    a = jax.random.normal(jax.random.key(1), (4, 8, 8))
    theta, eps = jnp.array([1.3, 2.7]), 1e-4

    @eqx.filter_jit
    def outputs(model, a):
        _, d = model(a, theta, derivative=True)
        fd = (model(a, theta + eps) - model(a, theta - eps)) / (2 * eps)
        return model(a), model(a, jnp.arange(0, 4.5, 0.5)), d, fd

    out, fine, d, fd = outputs(model, a)
    assert out.shape == (4, 8, 8) and out.dtype == jnp.float64
    # The trained steps are theta = 1..4; other times evaluate the same series, and theta = 0
    # is the last input exactly (the anchored skip connection).
    np.testing.assert_allclose(np.asarray(fine[2::2]), np.asarray(out), atol=1e-13)
    np.testing.assert_allclose(np.asarray(fine[0]), np.asarray(a[-1]), atol=1e-14)
    # d omega / d theta against a centred difference of the series (error ~ eps^2).
    np.testing.assert_allclose(np.asarray(d), np.asarray(fd), atol=1e-6 * float(jnp.abs(d).max()))
    fno = FNO3d(
        in_steps=4,
        out_steps=3,
        width=5,
        modes=(3, 3, 2),
        padding=2,
        projection=8,
        key=jax.random.key(2),
    )
    assert eqx.filter_jit(fno)(a).shape == (3, 8, 8)
    with pytest.raises(SpecError, match="snapshots"):
        model(a[:3])


def test_extended_output_layer_reproduces_the_trained_model(x64):
    """Copying the trained modes and zeroing the new ones changes nothing, on the training grid
    and on a finer one, which is where the refinement starts."""
    model = _tiny_sfno()
    a = jax.random.normal(jax.random.key(1), (4, 8, 8))
    a_fine = resample(a, 16) + 1e-3 * jax.random.normal(jax.random.key(2), (4, 16, 16))
    call = eqx.filter_jit(lambda m, inputs, times: m(inputs, times))
    times = jnp.linspace(0, 4, 9)
    for inputs, n in ((a, 8), (a_fine, 16)):
        extended = eqx.tree_at(lambda m: m.head, model, model.head.extended((n // 2, n // 2, 4)))
        assert extended.head.modes == (n // 2, n // 2, 4)
        np.testing.assert_allclose(
            np.asarray(call(extended, inputs, times)),
            np.asarray(call(model, inputs, times)),
            rtol=0,
            atol=1e-14,
        )
    with pytest.raises(SpecError, match="at least the trained modes"):
        model.head.extended((2, 3, 3))


@pytest.fixture(scope="module")
def tiny_data():
    """16 + 2 trajectories of the FNO benchmark flow solved at 32^2 (dt = 1e-2), snapshots
    every 0.2: 4 inputs, 4 outputs; the training set is their 16^2 spectral truncation."""
    w0 = GaussianRandomField().sample(32, batch=18, key=jax.random.key(3))
    sol = solve_ns2d(w0, nu=1e-3, t_final=1.4, steps=140, save_every=20, forcing=fno_forcing)
    fine = np.asarray(sol.vorticity[:, :8], np.float32)
    return fine, np.asarray(resample(fine, 16))


def test_training_through_the_trainer_lowers_the_data_loss(tiny_data):
    _, coarse = tiny_data
    inputs, targets = coarse[:16, :4], coarse[:16, 4:]
    objective = OperatorObjective(inputs, targets, batch_size=4)
    batch = jax.jit(lambda k: objective.sample(key=k))(jax.random.key(5))
    rows = [
        int(np.argmin(np.abs(inputs - b).sum(axis=(1, 2, 3)))) for b in np.asarray(batch["inputs"])
    ]
    np.testing.assert_array_equal(np.asarray(batch["targets"]), targets[rows])  # fetched, paired
    assert len(set(rows)) == 4
    model = _tiny_sfno(key=4, dtype=jnp.float32)
    error = eqx.filter_jit(lambda m: jnp.mean(relative_l2(jax.vmap(m)(inputs), targets)))
    before = float(error(model))
    trained, record = train_operator(
        model,
        inputs,
        targets,
        steps=60,
        batch_size=4,
        optimizer=optax.adam(3e-3),
        chunk=20,
        key=jax.random.key(6),
    )
    after = float(error(trained))
    assert record.status == "ok" and record.traces == {"0:adam": 1}
    assert after < 0.5 * before, (before, after)


def test_refinement_lowers_the_residual_from_the_trained_prediction(tiny_data):
    fine, _ = tiny_data
    inputs = fine[16:, :4]
    model = _tiny_sfno(key=4, dtype=jnp.float32)
    before = trajectory_residual(model, inputs, nu=1e-3, dt=0.2, forcing=fno_forcing)
    refined, record = refine(
        model,
        inputs,
        nu=1e-3,
        dt=0.2,
        forcing=fno_forcing,
        steps=30,
        chunk=10,
        optimizer=optax.adam(1e-3),
        key=jax.random.key(7),
    )
    after = trajectory_residual(refined, inputs, nu=1e-3, dt=0.2, forcing=fno_forcing)
    assert refined.head.modes == (16, 16, 4)  # untruncated on 32^2 and 8 latent steps
    assert record.status == "ok" and record.traces == {"0:refine": 1}
    assert np.all(np.asarray(after) < 0.5 * np.asarray(before)), (before, after)
    # Only the output layer changed.
    assert eqx.tree_equal(eqx.tree_at(lambda m: m.head, refined, model.head), model)
    fno = FNO3d(in_steps=4, out_steps=4, modes=(3, 3, 2), padding=2, key=jax.random.key(0))
    with pytest.raises(SpecError, match="SFNO"):
        RefinementObjective(fno, inputs, nu=1e-3, dt=0.2)


def test_bad_operator_arguments_name_the_argument():
    with pytest.raises(SpecError) as info:
        sobolev_norm(jnp.ones((8, 8)), -1.0, alpha=0.0)
    assert info.value.path == "alpha"
    with pytest.raises(SpecError) as info:
        sobolev_norm(jnp.ones((8, 8)), 1.0, alpha=-1.0)
    assert info.value.path == "alpha"
    with pytest.raises(SpecError) as info:
        SFNO(modes=(4, 4), key=jax.random.key(0))
    assert info.value.path == "modes"
