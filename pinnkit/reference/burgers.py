"""Exact reference solution of the viscous Burgers benchmark via the Cole–Hopf transform.

The benchmark (Raissi, Perdikaris & Karniadakis 2019, and Basdevant et al. 1986, "Spectral and
finite difference solutions of the Burgers equation", Computers & Fluids 14(1):23-41) is

    u_t + u u_x = nu u_xx,   x in [-1, 1],   u(x, 0) = -sin(pi x),   u(-1, t) = u(1, t) = 0,

with nu = 0.01 / pi. The Cole–Hopf transform u = -2 nu phi_x / phi turns it into the heat equation
for phi; the heat kernel gives (Basdevant et al. 1986)

    u(x, t) = - int sin(pi (x - eta)) f(x - eta) exp(-eta^2 / (4 nu t)) d eta
                / int f(x - eta) exp(-eta^2 / (4 nu t)) d eta,
    f(y) = exp(-cos(pi y) / (2 pi nu)).

(The integral over the whole line satisfies the boundary conditions because the data are odd about
x = 0 and x = 1.) With eta = sqrt(4 nu t) z both integrals carry the Gauss–Hermite weight
exp(-z^2).

Accuracy of the quadrature (measured, not assumed). ``n_quad = 200`` Gauss–Hermite nodes agree with
an adaptive ``scipy.integrate.quad`` over eta (relative tolerance 1e-13, every local maximum of
the integrand given as a breakpoint) to within 2e-15 for nu = 0.01/pi at 65 points with
1e-4 <= t <= 3 (60 random ones plus the shock: x = 0, 1e-3, 5e-3 at t = 1 and t = 0.5105); 100
nodes still give 7e-9 there. The feared failure of Gauss–Hermite does not occur for this nu: in
z the factor f(x - sqrt(4 nu t) z) has an exponent whose slope is at most
pi sqrt(4 nu t) / (2 nu) ~ 18 per unit z at t = 1, so the integrand's peak stays well inside the
node range (|z| <= 19.4 for 200 nodes) and is several nodes wide. It does occur for smaller nu or
larger t (e.g. nu = 0.001/pi at t = 1 needs about 400 nodes); the outermost nodes then carry
weight, and this module raises instead of returning a wrong number (a necessary check, not a
sufficient one: 100 nodes at t = 3 pass it with a 7e-9 error). At t = 0 the exact initial
condition -sin(pi x) is returned.

The analytic x-derivative (used for the classic benchmark figure max |u_x| = 152.00516 at x = 0,
t = 0.5105 of Basdevant et al. 1986) follows from the same weights:
u_x = -pi <cos(pi y)> - Var(sin(pi y)) / (2 nu), with <.> the average under the normalised
integrand weight f(y) exp(-z^2), y = x - sqrt(4 nu t) z.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import roots_hermite

from pinnkit.errors import SpecError
from pinnkit.reference._common import broadcast_points

__all__ = ["burgers_cole_hopf", "burgers_cole_hopf_ux"]

# Points evaluated at once: bounds the (points x nodes) work arrays to ~16 MiB each at 200 nodes.
_CHUNK = 10_000
# Largest normalised weight allowed on the outermost quadrature node: above it the integrand is
# not contained in the node range and the quadrature cannot be trusted.
_EDGE_TOL = 1e-12


@functools.lru_cache(maxsize=8)
def _hermite_log_rule(n_quad: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Hermite nodes and log-weights (cached: computing 200+ nodes is not free).

    Arguments:
        n_quad: number of nodes.

    Returns:
        (z, log_w): nodes and the logarithms of the weights; underflowed weights give -inf.
    """
    # scipy's rule stays accurate for large n, where numpy's hermgauss overflows (n >= ~400).
    z, w = roots_hermite(n_quad)
    with np.errstate(divide="ignore"):
        log_w = np.log(w)
    z.setflags(write=False)
    log_w.setflags(write=False)
    return z, log_w


def _check(x: ArrayLike, t: ArrayLike, nu: float, n_quad: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate the arguments and broadcast x and t to float64 arrays of a common shape."""
    if not (np.isfinite(nu) and nu > 0):
        raise SpecError(f"expected a positive finite viscosity, got nu={nu!r}", path="nu")
    if int(n_quad) != n_quad or n_quad < 2:
        raise SpecError(f"expected an integer n_quad >= 2, got {n_quad!r}", path="n_quad")
    return broadcast_points(x, t)


def _moments(x: np.ndarray, t: np.ndarray, nu: float, n_quad: int, derivative: bool) -> np.ndarray:
    """u (or u_x) at flat arrays of points with t > 0 by Gauss–Hermite quadrature.

    Arguments:
        x, t: 1-D float64 arrays of equal length, t > 0.
        nu: viscosity.
        n_quad: number of Gauss–Hermite nodes.
        derivative: return u_x instead of u.

    Returns:
        1-D float64 array of u or u_x.
    """
    z, log_w = _hermite_log_rule(n_quad)
    out = np.empty_like(x)
    for lo in range(0, x.size, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        y = x[sl, None] - np.sqrt(4.0 * nu * t[sl, None]) * z
        cos_y = np.cos(np.pi * y)
        # log f(y) = -cos(pi y) / (2 pi nu) spans +-50 for nu = 0.01/pi: subtract the row maximum
        # before exponentiating (log-sum-exp) so neither integral overflows nor underflows.
        expo = -cos_y / (2.0 * np.pi * nu) + log_w
        expo -= expo.max(axis=1, keepdims=True)
        weight = np.exp(expo)
        weight /= weight.sum(axis=1, keepdims=True)
        edge = np.maximum(weight[:, 0], weight[:, -1]).max()
        if edge > _EDGE_TOL:
            raise SpecError(
                f"Gauss–Hermite quadrature with n_quad={n_quad} does not contain the Cole–Hopf "
                f"integrand (weight {edge:.1e} on the outermost node) at nu={nu:g}, "
                f"t up to {t[sl].max():g}; increase n_quad (e.g. to {2 * n_quad})",
                path="n_quad",
            )
        sin_y = np.sin(np.pi * y)
        mean_sin = np.sum(sin_y * weight, axis=1)
        if not derivative:
            out[sl] = -mean_sin
        else:
            # Two-pass variance: the one-pass <s^2> - <s>^2 would cancel digits off the shock.
            var_sin = np.sum((sin_y - mean_sin[:, None]) ** 2 * weight, axis=1)
            out[sl] = -np.pi * np.sum(cos_y * weight, axis=1) - var_sin / (2.0 * nu)
    return out


def _evaluate(x: ArrayLike, t: ArrayLike, nu: float, n_quad: int, derivative: bool) -> np.ndarray:
    """Shared driver of `burgers_cole_hopf` and `burgers_cole_hopf_ux`."""
    xb, tb = _check(x, t, nu, n_quad)
    xf, tf = xb.ravel(), tb.ravel()
    if derivative:
        out = -np.pi * np.cos(np.pi * xf)
    else:
        out = -np.sin(np.pi * xf)
    # t = 0 keeps the exact initial condition: the kernel is a delta there and the substitution
    # eta = sqrt(4 nu t) z degenerates.
    pos = tf > 0
    if np.any(pos):
        out[pos] = _moments(xf[pos], tf[pos], float(nu), int(n_quad), derivative)
    return out.reshape(xb.shape)


def burgers_cole_hopf(
    x: ArrayLike, t: ArrayLike, *, nu: float = 0.01 / np.pi, n_quad: int = 200
) -> np.ndarray:
    """Exact solution of the viscous Burgers benchmark by Cole–Hopf and Gauss–Hermite quadrature.

    Solves u_t + u u_x = nu u_xx on x in [-1, 1] with u(x, 0) = -sin(pi x), u(+-1, t) = 0
    (Basdevant et al. 1986, "Spectral and finite difference solutions of the Burgers equation";
    the PINN benchmark of Raissi et al. 2019). The Cole–Hopf integrals are evaluated with
    ``n_quad`` Gauss–Hermite nodes after the substitution eta = sqrt(4 nu t) z, factoring out the
    largest exponent per point so that exp(+-1/(2 pi nu)) cannot overflow. With the defaults the
    result agrees with adaptive quadrature to ~2e-15 for 0 < t <= 3 (see the module docstring);
    when the node range cannot contain the integrand (small nu or large t) a `SpecError` asks for
    more nodes rather than returning an inaccurate value.

    Arguments:
        x: positions; broadcast against ``t``. Values outside [-1, 1] give the odd, 2-periodic
            continuation of the solution.
        t: times, non-negative; at t = 0 the exact -sin(pi x) is returned.
        nu: viscosity (default 0.01/pi, the benchmark value).
        n_quad: number of Gauss–Hermite nodes (default 200).

    Returns:
        float64 array of u(x, t) with the broadcast shape of ``x`` and ``t``.
    """
    return _evaluate(x, t, nu, n_quad, derivative=False)


def burgers_cole_hopf_ux(
    x: ArrayLike, t: ArrayLike, *, nu: float = 0.01 / np.pi, n_quad: int = 200
) -> np.ndarray:
    """Exact x-derivative u_x of the Burgers benchmark solution of `burgers_cole_hopf`.

    Differentiating the Cole–Hopf quotient under the integral gives
    u_x = -pi <cos(pi y)> - Var(sin(pi y)) / (2 nu), averages taken under the same normalised
    quadrature weights as `burgers_cole_hopf` (Basdevant et al. 1986 tabulate the maximum of
    |u_x|, 152.00516 at x = 0, t = 0.5105, for nu = 0.01/pi).

    Arguments:
        x: positions; broadcast against ``t``.
        t: times, non-negative; at t = 0 the exact -pi cos(pi x) is returned.
        nu: viscosity (default 0.01/pi).
        n_quad: number of Gauss–Hermite nodes (default 200).

    Returns:
        float64 array of u_x(x, t) with the broadcast shape of ``x`` and ``t``.
    """
    return _evaluate(x, t, nu, n_quad, derivative=True)
