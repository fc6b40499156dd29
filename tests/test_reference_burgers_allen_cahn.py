"""Tests of the trusted reference solutions of the Burgers and Allen–Cahn benchmarks.

Burgers: the Cole–Hopf/Gauss–Hermite solution is checked against its defining properties
(initial and boundary data, odd symmetry, the PDE residual), an independent adaptive quadrature
of the Cole–Hopf integrals, and the benchmark figure max |u_x| = 152.00516 of Basdevant et al.
(1986, "Spectral and finite difference solutions of the Burgers equation").

Allen–Cahn: the ETDRK4 solver (Cox & Matthews 2002; Kassam & Trefethen 2005) is checked for its
fourth order in time, spectral convergence in space, the exact heat-equation limit a = 0, an
independent method-of-lines integration (scipy DOP853) and the benchmark's features.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.integrate import IntegrationWarning, quad, solve_ivp
from scipy.optimize import minimize_scalar

from pinnkit.errors import SpecError
from pinnkit.reference.allen_cahn import allen_cahn_etdrk4, allen_cahn_reference
from pinnkit.reference.burgers import burgers_cole_hopf, burgers_cole_hopf_ux

NU = 0.01 / np.pi


# --------------------------------------------------------------------------------------------
# Burgers
# --------------------------------------------------------------------------------------------


def _cole_hopf_adaptive(x: float, t: float, nu: float = NU) -> float:
    """u(x, t) from the Cole–Hopf integrals in eta by adaptive quadrature (scipy QUADPACK).

    Independent of the Gauss–Hermite rule: the integrals run over eta in [-4, 4] (the heat kernel
    is below exp(-400) beyond for t <= 1), the largest exponent is factored out, and every local
    maximum of the integrand is a breakpoint, because near the shock the integrand has two
    narrow peaks that an adaptive rule started on a coarse partition can miss.
    """

    def expo(eta):
        return -np.cos(np.pi * (x - eta)) / (2 * np.pi * nu) - eta**2 / (4 * nu * t)

    grid = np.linspace(-4.0, 4.0, 80001)
    g = expo(grid)
    top = g.max()
    inner = (g[1:-1] > g[:-2]) & (g[1:-1] >= g[2:]) & (g[1:-1] > top - 60)
    opts = dict(limit=2000, epsabs=0.0, epsrel=1e-13, points=list(grid[1:-1][inner]))
    with warnings.catch_warnings():
        # QUADPACK flags round-off when asked for 1e-13; the quotient still agrees to ~1e-15.
        warnings.simplefilter("ignore", IntegrationWarning)
        num = quad(lambda e: np.sin(np.pi * (x - e)) * np.exp(expo(e) - top), -4, 4, **opts)[0]
        den = quad(lambda e: np.exp(expo(e) - top), -4, 4, **opts)[0]
    return -num / den


def test_burgers_initial_condition_is_exact():
    x = np.linspace(-1, 1, 101)
    np.testing.assert_array_equal(burgers_cole_hopf(x, 0.0), -np.sin(np.pi * x))
    np.testing.assert_array_equal(burgers_cole_hopf_ux(x, 0.0), -np.pi * np.cos(np.pi * x))


def test_burgers_shapes_and_dtype():
    u = burgers_cole_hopf(np.linspace(-1, 1, 5)[:, None], np.array([[0.0, 0.3, 1.0]]))
    assert u.shape == (5, 3) and u.dtype == np.float64
    assert burgers_cole_hopf(0.5, 0.5).shape == ()


def test_burgers_boundary_values_vanish():
    t = np.linspace(0.0, 1.0, 41)
    for xb in (-1.0, 1.0):
        # exp(+-50) weights cancel symmetrically: only round-off remains.
        np.testing.assert_allclose(burgers_cole_hopf(xb, t), 0.0, atol=1e-14)


def test_burgers_odd_symmetry():
    x = np.linspace(0.0, 1.0, 57)[None, :]
    t = np.linspace(0.0, 1.0, 11)[:, None]
    np.testing.assert_allclose(burgers_cole_hopf(-x, t), -burgers_cole_hopf(x, t), atol=1e-14)


def test_burgers_matches_adaptive_quadrature():
    # Shock (x = 0, 1e-3, 5e-3 at t = 1 and at the time of steepest gradient), early times and
    # smooth regions. Measured agreement ~2e-15 (also over 65 random points, 1e-4 <= t <= 3).
    pts = [(0.0, 1.0), (1e-3, 1.0), (5e-3, 1.0), (3e-3, 0.5105), (0.3, 0.01), (0.9, 0.01),
           (0.5, 1e-4), (-0.5, 0.3), (0.05, 0.75)]  # fmt: skip
    x, t = np.array(pts).T
    ref = np.array([_cole_hopf_adaptive(a, b) for a, b in pts])
    np.testing.assert_allclose(burgers_cole_hopf(x, t), ref, rtol=0, atol=1e-12)
    # More nodes change nothing: the default rule is converged.
    np.testing.assert_allclose(burgers_cole_hopf(x, t, n_quad=400), ref, rtol=0, atol=1e-12)


def test_burgers_pde_residual_is_finite_difference_error():
    # Away from the shock (|x| >= 0.2) u is smooth on scales ~0.1, so centred differences of step
    # h leave a residual O(h^2) (measured 1.5e-4 at h = 2e-3, 3.7e-5 at h = 1e-3 against terms of
    # size ~2). A wrong solution would leave an O(1) residual that does not shrink with h.
    x = np.concatenate([np.linspace(-0.95, -0.2, 16), np.linspace(0.2, 0.95, 16)])[None, :]
    t = np.linspace(0.05, 1.0, 20)[:, None]

    def residual(h):
        u = burgers_cole_hopf(x, t)
        u_t = (burgers_cole_hopf(x, t + h) - burgers_cole_hopf(x, t - h)) / (2 * h)
        u_p, u_m = burgers_cole_hopf(x + h, t), burgers_cole_hopf(x - h, t)
        return np.abs(u_t + u * (u_p - u_m) / (2 * h) - NU * (u_p - 2 * u + u_m) / h**2).max()

    r_coarse, r_fine = residual(2e-3), residual(1e-3)
    assert r_fine < 1e-4
    assert 3.5 < r_coarse / r_fine < 4.5  # second-order truncation error, nothing else


def test_burgers_derivative_matches_finite_differences():
    x = np.array([-0.7, -0.2, 0.0, 0.004, 0.4])
    t = np.array([0.2, 0.5, 0.5105, 1.0, 0.8])
    h = 1e-5
    # Richardson-extrapolated centred differences: O(h^4), accurate even in the shock layer.
    d1 = (burgers_cole_hopf(x + h, t) - burgers_cole_hopf(x - h, t)) / (2 * h)
    d2 = (burgers_cole_hopf(x + 2 * h, t) - burgers_cole_hopf(x - 2 * h, t)) / (4 * h)
    fd = (4 * d1 - d2) / 3
    np.testing.assert_allclose(burgers_cole_hopf_ux(x, t), fd, rtol=1e-6, atol=1e-8)


def test_burgers_basdevant_max_gradient():
    # Basdevant et al. (1986): max over x, t of |u_x| is 152.00516 for nu = 0.01/pi, at x = 0,
    # t = 1.6037/pi = 0.5105. Measured: u_x(0, 0.5105) = -152.0051602, and the maximum over t of
    # |u_x(0, t)| is 152.0051616 at t = 0.510470.
    assert burgers_cole_hopf_ux(0.0, 0.5105) == pytest.approx(-152.00516, rel=1e-6)
    best = minimize_scalar(
        lambda s: burgers_cole_hopf_ux(0.0, s), bounds=(0.45, 0.55), method="bounded"
    )
    assert best.x == pytest.approx(0.5105, abs=1e-3)
    assert -best.fun == pytest.approx(152.00516, rel=1e-6)
    # The steepest gradient in x at that time is at the shock x = 0.
    x = np.linspace(-0.05, 0.05, 201)
    assert np.argmax(np.abs(burgers_cole_hopf_ux(x, 0.5105))) == 100


def test_burgers_refuses_an_uncontained_integrand():
    # nu = 0.001/pi at t = 1 needs ~400 nodes; 200 would silently give 0.81 instead of 0.73.
    with pytest.raises(SpecError, match="n_quad"):
        burgers_cole_hopf(0.01, 1.0, nu=0.001 / np.pi)
    assert burgers_cole_hopf(0.01, 1.0, nu=0.001 / np.pi, n_quad=400) == pytest.approx(
        -0.72944061655, abs=1e-10
    )
    with pytest.raises(SpecError):
        burgers_cole_hopf(0.0, -0.1)


# --------------------------------------------------------------------------------------------
# Allen–Cahn
# --------------------------------------------------------------------------------------------


def _benchmark_u0(x):
    return x**2 * np.cos(np.pi * x)


def test_allen_cahn_fourth_order_in_time():
    # Reduced grid and horizon; the error against a 2000-step run falls by 16 per halving
    # (measured log2 ratios 3.96, 3.97, fitted slope 4.0).
    n, horizon = 128, 0.5
    _, ref = allen_cahn_etdrk4(_benchmark_u0, t_eval=[horizon], n=n, dt=horizon / 2000)
    dts = np.array([horizon / 20, horizon / 40, horizon / 80])
    errs = []
    for dt in dts:
        _, u = allen_cahn_etdrk4(_benchmark_u0, t_eval=[horizon], n=n, dt=dt)
        errs.append(np.abs(u - ref).max())
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert 3.5 <= slope <= 4.5, (slope, errs)


def test_allen_cahn_spectral_convergence_in_space():
    # At t = 1 the interfaces (width ~0.006) are not resolved by 512 modes (measured 1.4e-6 from
    # the n = 2048 run) but are by 1024 (6e-12): the error drops by > 1e4 when n doubles.
    sols = {
        n: allen_cahn_etdrk4(_benchmark_u0, t_eval=[0.5, 1.0], n=n)[1] for n in (512, 1024, 2048)
    }
    err = {n: np.abs(sols[n] - sols[2048][:, :: 2048 // n]).max(axis=1) for n in (512, 1024)}
    assert np.all(err[1024] < 1e-10)
    assert 1e-7 < err[512][1] < 1e-5
    assert err[1024][1] < 1e-4 * err[512][1]


@pytest.mark.parametrize("eps", [1e-4, 0.05])
def test_allen_cahn_heat_equation_limit(eps):
    # a = 0: u_t = eps u_xx, and cos(pi x) decays as exp(-eps pi^2 t); the linear part is
    # integrated exactly, so only round-off remains (also for the array form of u0).
    t = np.array([0.0, 0.1, 0.5, 1.0])
    x, u = allen_cahn_etdrk4(lambda s: np.cos(np.pi * s), t_eval=t, n=64, eps=eps, a=0.0)
    exact = np.exp(-eps * np.pi**2 * t)[:, None] * np.cos(np.pi * x)[None, :]
    np.testing.assert_allclose(u, exact, rtol=0, atol=1e-10)
    _, u_arr = allen_cahn_etdrk4(np.cos(np.pi * x), t_eval=t, n=64, eps=eps, a=0.0)
    np.testing.assert_allclose(u_arr, exact, rtol=0, atol=1e-10)


def test_allen_cahn_grid_and_output_times():
    x, u = allen_cahn_etdrk4(_benchmark_u0, t_eval=[0.0, 0.013, 0.013, 0.05], n=16, x_range=(-1, 3))
    np.testing.assert_allclose(x, -1 + 4 * np.arange(16) / 16)
    assert u.shape == (4, 16)
    np.testing.assert_array_equal(u[0], _benchmark_u0(x))  # t = 0 returns the exact data
    np.testing.assert_array_equal(u[1], u[2])  # a repeated time is hit exactly once
    with pytest.raises(SpecError):
        allen_cahn_etdrk4(_benchmark_u0, t_eval=[0.2, 0.1])
    with pytest.raises(SpecError):
        allen_cahn_etdrk4(np.zeros(10), t_eval=[0.1], n=16)


def test_allen_cahn_matches_independent_method_of_lines():
    # Same Fourier discretisation, different time integrator: scipy's adaptive DOP853 at tight
    # tolerance, started from the truncated Fourier series of u0 computed here by a 2^22-point
    # FFT. Measured agreement 6e-11 with the reference at t = 1.
    n, m = 1024, 2**22
    fine = np.fft.rfft(_benchmark_u0(-1 + 2 * np.arange(m) / m))[: n // 2 + 1] * (n / m)
    fine[-1] = 0.0
    k = np.pi * np.arange(n // 2 + 1)

    def rhs(_, u):
        return np.fft.irfft(-1e-4 * k**2 * np.fft.rfft(u), n) + 5.0 * (u - u**3)

    u_init = np.fft.irfft(fine, n)
    sol = solve_ivp(rhs, (0.0, 1.0), u_init, method="DOP853", rtol=1e-13, atol=1e-13)
    x = -1 + 2 * np.arange(n) / n
    ref = allen_cahn_reference(x, 1.0, n=n)
    np.testing.assert_allclose(sol.y[:, -1], ref, rtol=0, atol=1e-8)


def test_allen_cahn_reference_benchmark_features():
    # The 201 x 512 grid of the benchmark data (Raissi et al. 2019, AC.mat).
    x = np.linspace(-1, 1, 512, endpoint=False)
    t = np.linspace(0, 1, 201)
    u = allen_cahn_reference(x[None, :], t[:, None])
    assert u.shape == (201, 512)
    np.testing.assert_array_equal(u[0], _benchmark_u0(x))
    assert -1.01 <= u.min() and u.max() <= 1.01
    # u0 is even, so the solution stays even: u(-x) = u(x) (x_{512-j} = -x_j on this grid).
    np.testing.assert_allclose(u, u[:, (-np.arange(512)) % 512], rtol=0, atol=1e-12)
    # At t = 1: metastable plateaus at -1 near x = +-1 and near +1 around x = +-0.25; at x = 0,
    # where u0 has a double zero, u has only grown to 0.0296 (not to +-1). These values agree
    # with the DOP853 run above and with second-order finite differences at n = 8192 (0.0295797).
    at_1 = allen_cahn_reference(np.array([-1.0, -0.25, 0.0, 0.25, 1.0]), 1.0)
    np.testing.assert_allclose(at_1, [-1.0, 0.98847, 0.02958, 0.98847, -1.0], atol=1e-5)


def test_allen_cahn_reference_interpolates_spectrally():
    # Off-grid points: n = 1024 and n = 2048 agree to 7e-11 at t = 1 (measured).
    xs = np.linspace(-1, 1, 777)
    a = allen_cahn_reference(xs, 1.0, n=1024)
    b = allen_cahn_reference(xs, 1.0, n=2048)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    # On the grid the interpolant reproduces the solver's grid values (the two differ only by
    # the initial projection: exact coefficients vs a fine FFT, ~1e-10), periodically.
    x, u = allen_cahn_etdrk4(_benchmark_u0, t_eval=[0.3], n=256)
    np.testing.assert_allclose(allen_cahn_reference(x, 0.3, n=256), u[0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(allen_cahn_reference(x + 2, 0.3, n=256), u[0], rtol=0, atol=1e-9)
    # Scattered (x, t) pairs take a different summation path from grid requests.
    rng = np.random.default_rng(0)
    xr, tr = rng.uniform(-1, 1, 300), rng.choice([0.1, 0.2, 0.3], 300)
    grid = allen_cahn_reference(xr[None, :], np.array([0.1, 0.2, 0.3])[:, None], n=256)
    rows = np.searchsorted([0.1, 0.2, 0.3], tr)
    np.testing.assert_allclose(
        allen_cahn_reference(xr, tr, n=256), grid[rows, np.arange(300)], rtol=0, atol=1e-13
    )
    with pytest.raises(SpecError):
        allen_cahn_reference(0.0, 1.0, x_range=(0, 1))
