"""Tests of the pseudo-spectral 2D Navier–Stokes vorticity solver (pinnkit.reference.ns2d).

What is checked, and why it pins the solver down:

* Taylor–Green vortex, omega = 2 k cos(kx) cos(ky): an exact steady solution of the Euler
  nonlinearity (u . grad omega = 0), so the scheme reduces to Crank–Nicolson on one mode. The
  solver must reproduce that discrete decay to round-off, and the exact exp(-2 nu k^2 t) to
  round-off where the Crank–Nicolson error is below it.
* Time order fitted as a slope against a fine-step solution of a forced nonlinear flow: 2 for
  CN + RK2 and CN + RK4 (Crank–Nicolson limits it), 4 for RK4 when nu = 0.
* The sign convention u = psi_y, v = -psi_x, -Laplacian(psi) = omega on a known streamfunction,
  and incompressibility and the curl, with numpy's FFT as the independent derivative.
* Dealiasing: with the 2/3 rule the semi-discrete inviscid flow is a Galerkin truncation and
  conserves energy and enstrophy exactly; without it they drift, whatever the time step.
* The initial-condition samplers' spectra (slope and prefactor of the GRF, McWilliams' shape and
  energy), the batch (vmap) against one-by-one solves, dtypes and the `pinnkit data` command.

All runs use float64 (x64 is switched on per test; conftest restores it) unless stated.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit.cli import main
from pinnkit.errors import DivergenceError, SpecError
from pinnkit.reference.ns2d import (
    CrankNicolsonHeun,
    CrankNicolsonRK4,
    GaussianRandomField,
    McWilliams,
    enstrophy,
    fno_forcing,
    kinetic_energy,
    ns2d_grid,
    solve_ns2d,
    streamfunction,
    velocity,
)

TWO_PI = 2 * np.pi


def _mesh(n: int, length: float = 1.0):
    x = np.arange(n) * (length / n)
    return np.meshgrid(x, x, indexing="ij")


def _taylor_green(n: int, m: int, length: float = 1.0):
    X, Y = _mesh(n, length)
    k = TWO_PI * m / length
    return 2 * k * np.cos(k * X) * np.cos(k * Y), k


def _np_derivative(f: np.ndarray, axis: int, length: float = 1.0) -> np.ndarray:
    """Spectral derivative along ``axis`` with numpy's FFT (Nyquist mode dropped)."""
    n = f.shape[axis]
    m = np.fft.fftfreq(n, 1.0 / n)
    m[np.abs(m) * 2 == n] = 0
    shape = [1] * f.ndim
    shape[axis] = n
    ik = 1j * TWO_PI / length * m.reshape(shape)
    return np.real(np.fft.ifft(ik * np.fft.fft(f, axis=axis), axis=axis))


# --------------------------------------------------------------------------------------------
# Taylor–Green: exact decay
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stepper", [CrankNicolsonHeun(), CrankNicolsonRK4()])
def test_taylor_green_is_crank_nicolson_on_one_mode_to_round_off(x64, stepper):
    # |k|^2 = 2 k^2 for the mode; Crank–Nicolson multiplies it by (1 - h lam/2) / (1 + h lam/2)
    # per step, lam = 2 nu k^2. Any error of the Poisson solve, the velocity signs or the
    # advection term (which must cancel exactly) would show far above round-off.
    n, nu, t_final, steps = 32, 1e-2, 0.5, 40
    for m, length in ((1, 1.0), (3, 1.0), (2, 2 * np.pi)):
        w0, k = _taylor_green(n, m, length)
        sol = solve_ns2d(
            w0, nu=nu, t_final=t_final, steps=steps, save_every=8, length=length, stepper=stepper
        )
        lam, h = 2 * nu * k**2, t_final / steps
        factor = ((1 - h * lam / 2) / (1 + h * lam / 2)) ** np.arange(0, steps + 1, 8)
        expected = factor[:, None, None] * w0
        err = np.max(np.abs(np.asarray(sol.vorticity) - expected)) / np.max(np.abs(w0))
        assert err < 1e-13, (m, length, err)
        np.testing.assert_allclose(sol.t, np.arange(0, steps + 1, 8) * h, rtol=1e-15)


def test_taylor_green_decays_as_exp_minus_2_nu_k2_t(x64):
    # nu = 1e-3, k = 2 pi (the FNO viscosity on [0, 1]^2): lam = 2 nu k^2 = 0.079. The
    # Crank–Nicolson error after time t is t lam^3 h^2 / 12 relative = 4.1e-13 at h = 1e-4, t = 1;
    # the decay factor's rounding adds up to 1e4 steps x 1.1e-16 = 1.1e-12 (it is the same every
    # step, so it accumulates linearly). Hence the bound 2e-12: round-off. Measured 7.8e-13.
    n, nu = 16, 1e-3
    w0, k = _taylor_green(n, 1)
    sol = solve_ns2d(w0, nu=nu, t_final=1.0, steps=10_000, save_every=2_500)
    exact = np.exp(-2 * nu * k**2 * np.asarray(sol.t))[:, None, None] * w0
    err = np.max(np.abs(np.asarray(sol.vorticity) - exact)) / np.max(np.abs(w0))
    assert err < 2e-12, err
    # The velocity is the classical Taylor–Green field, decaying at the same rate.
    u, v = velocity(sol.vorticity[-1])
    X, Y = _mesh(n)
    decay = np.exp(-2 * nu * k**2)
    np.testing.assert_allclose(u, -decay * np.cos(k * X) * np.sin(k * Y), atol=1e-12)
    np.testing.assert_allclose(v, decay * np.sin(k * X) * np.cos(k * Y), atol=1e-12)


def test_taylor_green_in_float32_follows_input_dtype():
    w0, k = _taylor_green(16, 1)
    sol = solve_ns2d(w0.astype(np.float32), nu=1e-3, t_final=1.0, steps=100)
    assert sol.vorticity.dtype == jnp.float32 and sol.t.dtype == jnp.float32
    exact = np.exp(-2 * 1e-3 * k**2) * w0
    # float32 round-off (6e-8) accumulated over 100 steps, plus the CN error (4e-9).
    assert np.max(np.abs(np.asarray(sol.vorticity[-1]) - exact)) / np.max(np.abs(w0)) < 2e-6


# --------------------------------------------------------------------------------------------
# Time convergence
# --------------------------------------------------------------------------------------------


def _smooth_flow(n: int = 32) -> np.ndarray:
    """Three modes of different |k|: the advection term does not vanish (unlike Taylor–Green)."""
    X, Y = _mesh(n)
    return (
        4 * np.sin(TWO_PI * X) * np.cos(2 * TWO_PI * Y)
        + 3 * np.cos(TWO_PI * (X + 2 * Y))
        + 2 * np.sin(TWO_PI * (3 * X - Y))
    )


@pytest.mark.parametrize(
    "stepper, nu, order",
    [
        (CrankNicolsonHeun(), 1e-2, (1.8, 2.3)),
        # Crank–Nicolson limits CN + RK4 to second order as soon as nu > 0 ...
        (CrankNicolsonRK4(), 1e-2, (1.8, 2.3)),
        # ... and without diffusion the scheme is the classical RK4.
        (CrankNicolsonRK4(), 0.0, (3.7, 4.3)),
    ],
)
def test_time_convergence_order(x64, stepper, nu, order):
    # Forced (FNO forcing), nonlinear, t in [0, 0.5], max |u| + |v| = 0.46: the coarsest step
    # h = 0.025 has an advective CFL number of 0.12. Errors are against 128x finer steps of the
    # same scheme (the spatial discretisation is the same, so only the time error remains); the
    # reference's own error shifts the fitted slope by < 0.001. Measured slopes: 1.997, 2.001,
    # 3.997.
    w0 = _smooth_flow()
    t_final = 0.5

    def final(steps):
        sol = solve_ns2d(
            w0, nu=nu, t_final=t_final, steps=steps, forcing=fno_forcing, stepper=stepper
        )
        return np.asarray(sol.vorticity[-1])

    ref = final(2560)
    steps = np.array([20, 40, 80, 160])
    errors = [np.max(np.abs(final(int(s)) - ref)) for s in steps]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert order[0] <= slope <= order[1], (slope, errors)


# --------------------------------------------------------------------------------------------
# Sign convention, incompressibility, dealiasing
# --------------------------------------------------------------------------------------------


def test_streamfunction_and_velocity_sign_convention(x64):
    # psi given; omega = -Laplacian(psi) by hand; the solver's psi, u = psi_y, v = -psi_x.
    length = 2.0
    X, Y = _mesh(32, length)
    a, b = TWO_PI / length, 2 * TWO_PI / length
    psi = np.sin(a * X) * np.cos(b * Y) + 0.3 * np.cos(a * (X - 3 * Y))
    omega = (a**2 + b**2) * np.sin(a * X) * np.cos(b * Y) + 0.3 * 10 * a**2 * np.cos(
        a * (X - 3 * Y)
    )
    psi_y = -b * np.sin(a * X) * np.sin(b * Y) + 0.3 * 3 * a * np.sin(a * (X - 3 * Y))
    psi_x = a * np.cos(a * X) * np.cos(b * Y) - 0.3 * a * np.sin(a * (X - 3 * Y))
    np.testing.assert_allclose(streamfunction(omega, length=length), psi, atol=1e-13)
    u, v = velocity(omega, length=length)
    np.testing.assert_allclose(u, psi_y, atol=1e-12)
    np.testing.assert_allclose(v, -psi_x, atol=1e-12)
    # A positive vortex turns counter-clockwise: Taylor–Green has omega > 0 at the origin and
    # v = sin(kx) cos(ky) > 0 just to its right (x = L/8, y = 0).
    w_tg, _ = _taylor_green(32, 1)
    assert w_tg[0, 0] > 0 and float(velocity(w_tg)[1][4, 0]) > 0


def test_velocity_is_divergence_free_and_its_curl_is_the_vorticity(x64):
    # A rough field (GRF with its Nyquist modes) and numpy's FFT as the independent derivative.
    w = np.asarray(GaussianRandomField(alpha=1.5, tau=3.0).sample(64, key=jax.random.key(0)))
    u, v = (np.asarray(c) for c in velocity(w))
    scale = np.max(np.abs(_np_derivative(u, 0)))
    div = _np_derivative(u, 0) + _np_derivative(v, 1)
    assert np.max(np.abs(div)) < 1e-13 * scale
    # The curl returns omega on every mode whose mode numbers are both below Nyquist (first
    # derivatives drop the Nyquist modes).
    m = np.fft.fftfreq(64, 1.0 / 64)
    inner = ((np.abs(m) * 2 != 64)[:, None] & (np.abs(m) * 2 != 64)[None, :]).astype(float)
    curl = _np_derivative(v, 0) - _np_derivative(u, 1)
    np.testing.assert_allclose(
        np.real(np.fft.ifft2(np.fft.fft2(curl) * inner)),
        np.real(np.fft.ifft2(np.fft.fft2(w) * inner)),
        atol=1e-13 * np.max(np.abs(w)),
    )
    assert abs(np.mean(w)) < 1e-15 * np.max(np.abs(w))


def test_dealiased_inviscid_flow_conserves_energy_and_enstrophy(x64):
    # Initial modes |m| < n/3: the 2/3 rule makes the advection term the exact projection of
    # u . grad(omega), and the truncated system conserves E = <|u|^2>/2 and Z = <omega^2>/2.
    # Only the RK4 time error remains (measured 4e-14 and 3e-12 at 400 steps). Without
    # dealiasing the aliased products change Z by 1.4e-3 at any time step.
    n = 32
    w0 = np.asarray(
        GaussianRandomField(alpha=1.5, tau=3.0).sample(n, batch=2, key=jax.random.key(3))
    )
    m = np.fft.fftfreq(n, 1.0 / n)
    keep = (3 * np.abs(m)[:, None] < n) & (3 * np.abs(m)[None, :] < n)
    w0 = np.real(np.fft.ifft2(np.fft.fft2(w0) * keep))

    def drift(dealias, steps):
        sol = solve_ns2d(
            w0,
            nu=0.0,
            t_final=2.0,
            steps=steps,
            save_every=steps // 4,
            stepper=CrankNicolsonRK4(),
            dealias=dealias,
        )
        e, z = kinetic_energy(sol.vorticity), enstrophy(sol.vorticity)
        return float(jnp.max(jnp.abs(e / e[:, :1] - 1))), float(jnp.max(jnp.abs(z / z[:, :1] - 1)))

    de, dz = drift(True, 400)
    assert de < 1e-12 and dz < 1e-10, (de, dz)
    de_aliased, dz_aliased = drift(False, 400)
    assert dz_aliased > 1e-4 and de_aliased > 1e-7, (de_aliased, dz_aliased)
    # The aliased drift is spatial, not temporal: halving the step leaves it.
    assert drift(False, 800)[1] == pytest.approx(dz_aliased, rel=1e-3)


# --------------------------------------------------------------------------------------------
# Initial conditions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha, tau", [(2.5, 7.0), (2.0, 3.0)])
def test_gaussian_random_field_spectrum(x64, alpha, tau):
    # E |rfft2(omega)_m|^2 / n^4 = 2 sigma^2 lambda_m^-alpha, lambda = 4 pi^2 |m|^2 + tau^2, on
    # the modes that are not self-conjugate (there it is half). Fit log power against
    # log lambda over 256 samples of 32^2: slope -alpha, intercept log(2 sigma^2). Each mode's
    # sample mean has a relative spread of 1/16; over ~1000 modes the fit is good to ~0.01.
    n, samples = 32, 256
    grf = GaussianRandomField(alpha=alpha, tau=tau)
    w = np.asarray(grf.sample(n, batch=samples, key=jax.random.key(1)))
    assert w.shape == (samples, n, n)
    assert np.max(np.abs(w.mean(axis=(-2, -1)))) < 1e-15 * np.max(np.abs(w))
    power = np.mean(np.abs(np.fft.fft2(w)) ** 2, axis=0) / n**4
    m = np.fft.fftfreq(n, 1.0 / n)
    mx, my = np.meshgrid(m, m, indexing="ij")
    lam = TWO_PI**2 * (mx**2 + my**2) + tau**2
    self_conjugate = ((mx == 0) | (np.abs(mx) * 2 == n)) & ((my == 0) | (np.abs(my) * 2 == n))
    sel = ~self_conjugate
    slope, intercept = np.polyfit(np.log(lam[sel]), np.log(power[sel]), 1)
    assert slope == pytest.approx(-alpha, abs=0.05)
    # log E|.|^2 is the intercept; the mean of log(power) is biased low by the spread (< 0.01).
    sigma = tau ** (alpha - 1)
    assert intercept == pytest.approx(np.log(2 * sigma**2), abs=0.3)
    ratio = power[sel] / (2 * sigma**2 * lam[sel] ** -alpha)
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.02)


def test_mcwilliams_energy_mean_and_spectrum_shape(x64):
    # Every sample has kinetic energy 0.5 exactly and zero mean; the sample-mean |psi_hat_m|^2
    # is proportional to A(|m|)^2 = 1 / (|m|^2 (1 + (|m| / k0)^4)) (a random-phase real part
    # halves it everywhere, the self-conjugate modes included).
    n, samples, k0 = 32, 128, 6.0
    w = McWilliams(k0=k0, energy=0.5).sample(n, batch=samples, key=jax.random.key(2))
    np.testing.assert_allclose(kinetic_energy(w), 0.5, rtol=1e-13)
    w = np.asarray(w)
    assert np.max(np.abs(w.mean(axis=(-2, -1)))) < 1e-14 * np.max(np.abs(w))
    psi = np.asarray(streamfunction(w))
    power = np.mean(np.abs(np.fft.fft2(psi)) ** 2, axis=0)
    m = np.fft.fftfreq(n, 1.0 / n)
    kappa2 = m[:, None] ** 2 + m[None, :] ** 2
    kappa2[0, 0] = 1.0
    ratio = (power * kappa2 * (1 + (kappa2 / k0**2) ** 2)).ravel()[1:]
    ratio = ratio / np.mean(ratio)
    # per mode the sample mean of 128 draws spreads by ~9 %; binned by |m| it is flat
    shells = np.rint(np.sqrt(kappa2.ravel()[1:])).astype(int)
    for s in range(1, n // 2):
        assert np.mean(ratio[shells == s]) == pytest.approx(1.0, abs=0.12), s


def test_samplers_batch_equals_split_keys_and_dtype():
    key = jax.random.key(5)
    for sampler in (GaussianRandomField(), McWilliams()):
        batch = sampler.sample(16, batch=(2, 3), key=key)
        assert batch.shape == (2, 3, 16, 16) and batch.dtype == jnp.float32
        keys = jax.random.split(key, 6)
        one = sampler.sample(16, key=keys[4])
        np.testing.assert_allclose(batch[1, 1], one, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Batching, arguments, divergence
# --------------------------------------------------------------------------------------------


def test_vmap_batch_equals_one_by_one(x64):
    w0 = np.asarray(GaussianRandomField().sample(32, batch=3, key=jax.random.key(4)))
    kwargs = dict(nu=1e-3, t_final=0.5, steps=50, save_every=10, forcing=fno_forcing)
    batch = np.asarray(solve_ns2d(w0, **kwargs).vorticity)
    assert batch.shape == (3, 6, 32, 32)
    for i in range(3):
        one = np.asarray(solve_ns2d(w0[i], **kwargs).vorticity)
        np.testing.assert_allclose(batch[i], one, rtol=0, atol=1e-14 * np.max(np.abs(one)))
    # two batch axes are flattened and restored
    nested = solve_ns2d(w0[None], **kwargs).vorticity
    assert nested.shape == (1, 3, 6, 32, 32)


def test_forcing_as_callable_or_grid_values(x64):
    w0, _ = _taylor_green(16, 1)
    x = np.asarray(ns2d_grid(16))
    X, Y = np.meshgrid(x, x, indexing="ij")
    values = 0.1 * (np.sin(TWO_PI * (X + Y)) + np.cos(TWO_PI * (X + Y)))
    a = solve_ns2d(w0, nu=1e-3, t_final=0.1, steps=10, forcing=fno_forcing).vorticity
    b = solve_ns2d(w0, nu=1e-3, t_final=0.1, steps=10, forcing=values).vorticity
    np.testing.assert_allclose(a, b, atol=1e-14)


def test_bad_arguments_raise_spec_errors():
    w0 = np.zeros((16, 16), np.float32)
    ok = dict(nu=1e-3, t_final=1.0, steps=10)
    with pytest.raises(SpecError, match="save_every"):
        solve_ns2d(w0, **ok, save_every=3)
    with pytest.raises(SpecError, match="nu"):
        solve_ns2d(w0, nu=-1.0, t_final=1.0, steps=10)
    with pytest.raises(SpecError, match="square"):
        solve_ns2d(np.zeros((16, 8)), **ok)
    with pytest.raises(SpecError, match="forcing"):
        solve_ns2d(w0, **ok, forcing=np.zeros((8, 8)))
    with pytest.raises(SpecError, match="steps"):
        solve_ns2d(w0, nu=1e-3, t_final=1.0, steps=0)
    with pytest.raises(SpecError, match="alpha"):
        GaussianRandomField(alpha=-1.0)


def test_too_large_time_step_is_refused_before_the_run():
    # McWilliams flow with energy 0.5 at 32^2: max(|u| + |v|) ~ 3.4 and k_max = 2 pi 10, so
    # h = 0.5 gives an advective CFL number ~ 100, far above Heun's limit 1.
    w0 = McWilliams().sample(32, key=jax.random.key(0))
    with pytest.raises(SpecError, match="use at least [0-9]+ steps"):
        solve_ns2d(w0, nu=0.0, t_final=100.0, steps=200)


def test_flow_that_outruns_the_step_raises_divergence_error():
    # Starts at rest (CFL 0) and is driven by a strong forcing without viscosity: the velocity
    # grows until the explicit step is unstable; the result must not be returned silently.
    X, Y = _mesh(16)
    f = 50 * (
        np.sin(TWO_PI * X) * np.cos(2 * TWO_PI * Y)
        + np.cos(TWO_PI * (X + 2 * Y))
        + np.sin(TWO_PI * (3 * X - Y))
    )
    with pytest.raises(DivergenceError, match="increase steps"):
        solve_ns2d(np.zeros((16, 16)), nu=0.0, t_final=10.0, steps=200, save_every=20, forcing=f)


# --------------------------------------------------------------------------------------------
# pinnkit data ns2d
# --------------------------------------------------------------------------------------------


def test_cli_data_writes_the_documented_arrays(tmp_path, capsys):
    out = tmp_path / "ns.npz"
    args = ["data", "ns2d", "--n", "3", "--res", "16", "--t-final", "0.2", "--steps", "20"]
    args += ["--snapshots", "4", "--seed", "7", "--quiet"]
    assert main([*args, "--batch", "2", "--out", str(out)]) == 0
    assert "(3, 5, 16, 16)" in capsys.readouterr().out
    with np.load(out) as data:
        assert data["vorticity"].shape == (3, 5, 16, 16)
        assert data["vorticity"].dtype == np.float32
        np.testing.assert_allclose(data["t"], [0.0, 0.05, 0.1, 0.15, 0.2], rtol=1e-6)
        assert data["x"].shape == data["y"].shape == (16,)
        assert data["forcing"].shape == (16, 16)
        assert float(data["nu"]) == 1e-3 and float(data["dt"]) == pytest.approx(0.01)
        meta = json.loads(str(data["metadata"]))
        assert meta["axes"]["vorticity"] == ["sample", "time", "x", "y"]
        assert meta["initial"]["type"] == "GaussianRandomField"
        first = data["vorticity"].copy()
    # The batch size does not change the data (keys are split per trajectory).
    other = tmp_path / "ns1.npz"
    assert main([*args, "--batch", "3", "--out", str(other)]) == 0
    with np.load(other) as data:
        np.testing.assert_allclose(data["vorticity"], first, rtol=1e-5, atol=1e-6)


def test_cli_data_bad_arguments_exit_2(tmp_path, capsys):
    base = ["data", "ns2d", "--n", "2", "--res", "16", "--quiet"]
    out = ["--out", str(tmp_path / "x.npz")]
    assert main([*base, "--steps", "10", "--snapshots", "3", *out]) == 2
    assert "snapshots" in capsys.readouterr().err
    assert main([*base, "--preset", "fn0", *out]) == 2
    assert "did you mean 'fno'" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "missing" / "x.npz")]) == 2
    assert main([*base, "--nu", "-1", "--steps", "4", "--snapshots", "2", *out]) == 2
    with pytest.raises(SystemExit) as exc:
        main([*base, "--ic", "vortex", *out])
    assert exc.value.code == 2
    assert not (tmp_path / "x.npz").exists()
