"""Pseudo-spectral solver of the 2D incompressible Navier–Stokes equations in vorticity form.

The equations, on the periodic box [0, L)^2 (default L = 1):

    omega_t + u . grad(omega) = nu Laplacian(omega) + f(x, y),
    -Laplacian(psi) = omega,   u = psi_y,   v = -psi_x,

so that omega = v_x - u_y (the curl of (u, v)) and u_x + v_y = 0 exactly. This is the sign
convention of the Navier–Stokes benchmark of Li et al. (2021, "Fourier Neural Operator for
Parametric Partial Differential Equations", arXiv:2010.08895; their ``ns_2d.py``), whose forcing
f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)), nu = 1e-3 on [0, 1]^2 is the preset
``NS2D_PRESETS["fno"]``. Arrays are indexed ``[..., i, j]`` = (x_i, y_j) with x_i = i L / n
("ij" indexing; the last two axes are x then y).

Space. Fourier collocation on an n x n grid with ``rfft2``: wavenumbers k = 2 pi m / L for the
integer mode numbers m. The Poisson solve is psi_hat = omega_hat / |k|^2 (the mean of psi is 0).
First derivatives multiply by i k with the Nyquist mode number m = -n/2 set to zero (its sine
component is not represented on the grid). The advection term u . grad(omega) is formed from
u, v, omega_x, omega_y in physical space and dealiased by the 2/3 rule (Orszag 1971, "On the
elimination of aliasing in finite-difference schemes by filtering high-wavenumber components",
J. Atmos. Sci. 28:1074): its Fourier coefficients are kept only for |m_x|, |m_y| < n/3. With that
strict inequality the quadratic product of two fields inside the mask aliases only onto modes
outside it, so for such fields the kept coefficients are those of the exact product (Galerkin
truncation). The semi-discrete flow then conserves kinetic energy and enstrophy exactly when
nu = 0 and f = 0 (tested). The mask is the one of Li et al. for n not divisible by 3 (they keep
|m| <= n/3). The state itself is not filtered: modes outside the mask are never fed by the
advection term and decay by diffusion alone.

Time. An implicit–explicit Runge–Kutta step (Ascher, Ruuth & Spiteri 1997, "Implicit-explicit
Runge–Kutta methods for time-dependent partial differential equations", Appl. Numer. Math.
25:151-167): the stiff, diagonal diffusion L = -nu |k|^2 by the trapezoidal rule
(Crank–Nicolson), the advection and forcing N(omega) = f - P(u . grad omega) (P the 2/3-rule
truncation) by an explicit Runge–Kutta tableau (a, b, c). For a step of size h from omega^n,
stage i is

    Y_i = (1 - c_i h L / 2)^-1 [ (1 + c_i h L / 2) omega^n + h sum_{j<i} a_ij N(Y_j) ],
    omega^{n+1} = (1 - h L / 2)^-1 [ (1 + h L / 2) omega^n + h sum_j b_j N(Y_j) ],

i.e. Crank–Nicolson over [t_n, t_n + c_i h] for each stage. As an IMEX pair this has the
implicit tableau with rows (c_i / 2, 0, ..., 0, c_i / 2) and is stiffly accurate; its order
conditions up to order 2 (sum b c = 1/2 for both tableaux and for the couplings) hold for any
explicit tableau of order >= 2, so the scheme is second order, and it reduces to the explicit
tableau when nu = 0 (fourth order with `CrankNicolsonRK4`) and to plain Crank–Nicolson on
every mode when N = 0. `CrankNicolsonHeun` (RK2) is the default.

Where pinnkit differs from Li et al.'s generator: they step with Crank–Nicolson and forward
Euler (first order) at dt = 1e-4 on 256^2; here the step is second order (the FNO preset uses
dt = 2e-3, see docs/ns2d.md for its measured error), the batch is vmapped in one compiled
program, and the dealiasing mask is strict (|m| < n/3; the same for n not divisible by 3).
The initial field, forcing, viscosity, axis order and sign convention are theirs.

Initial conditions (both batched and seeded by a PRNG key):

* `GaussianRandomField`: omega_0 ~ N(0, C) with C proportional to (-Laplacian + tau^2)^-alpha,
  alpha = 2.5, tau = 7 by default, in the scaling of Li et al.'s ``GaussianRF``:
  omega_0(x) = Re sum_m sqrt(2) sigma lambda_m^(-alpha/2) xi_m exp(2 pi i m . x / L), m over
  the n x n grid's mode numbers (|m_x|, |m_y| <= n/2), m = 0 excluded, lambda_m =
  4 pi^2 |m|^2 / L^2 + tau^2, xi_m independent standard complex normals (real and imaginary parts
  of variance 1), sigma = tau^(alpha - 1). Hence E[omega_0(x) omega_0(x')] =
  sum_m 2 sigma^2 lambda_m^-alpha cos(2 pi m . (x - x') / L). The FNO paper writes
  N(0, 7^(3/2) (-Laplacian + 49 I)^-2.5); their code, followed here, has the prefactor
  2 sigma^2 = 2 * 7^3.
* `McWilliams`: the decaying-turbulence initial condition of McWilliams (1984, "The emergence
  of isolated coherent vortices in turbulent flow", J. Fluid Mech. 146:21-43), in the form of
  pyqg's reproduction: psi_hat_m = A(kappa) exp(i phi_m) with random phases phi_m ~ U[0, 2 pi),
  A(kappa) = [kappa^2 (1 + (kappa / k0)^4)]^(-1/2), kappa = |m| the mode number (k0 = 6), the real
  part taken in physical space (zero mean: there is no m = 0 mode) and psi scaled so that every
  sample has the domain-mean kinetic energy (1/2) <u^2 + v^2> = E exactly (E = 0.5);
  omega = -Laplacian(psi). The shell energy spectrum is then proportional to
  kappa (1 + (kappa / k0)^4)^-1.

Measured (tests/test_ns2d.py; docs/ns2d.md has the tables): Taylor–Green decays as the
Crank–Nicolson factor to 3e-15 and as exp(-2 nu k^2 t) to 8e-13 relative in float64 (nu = 1e-3,
h = 1e-4, t = 1: the CN error is 4e-13); the fitted time order is 2.00 for CN+RK2 and for
CN+RK4 with nu > 0 and 4.00 for RK4 with nu = 0; the dealiased inviscid flow conserves energy
and enstrophy to the RK4 error (4e-14, 3e-12), the aliased one drifts by 1.4e-3 in enstrophy.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from pinnkit.errors import DivergenceError, SpecError

__all__ = [
    "AbstractIMEXStepper",
    "AbstractVorticitySampler",
    "CrankNicolsonHeun",
    "CrankNicolsonRK4",
    "GaussianRandomField",
    "McWilliams",
    "NS2DPreset",
    "NS2DSolution",
    "NS2D_PRESETS",
    "enstrophy",
    "fno_forcing",
    "kinetic_energy",
    "ns2d_dataset",
    "ns2d_grid",
    "solve_ns2d",
    "streamfunction",
    "velocity",
]


# --------------------------------------------------------------------------------------------
# Grid and spectral operators
# --------------------------------------------------------------------------------------------


def _float_dtype(dtype) -> np.dtype:
    """``dtype`` if it is a real floating type, else JAX's default float (float64 under x64)."""
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return jnp.dtype(dtype)
    return jnp.dtype(jnp.zeros(()).dtype)


def _as_field(vorticity: ArrayLike, name: str = "vorticity") -> Array:
    """A float array whose last two axes are an n x n grid (n >= 4); other dtypes are cast."""
    w = jnp.asarray(vorticity)
    w = w.astype(_float_dtype(w.dtype))
    if w.ndim < 2 or w.shape[-1] != w.shape[-2] or w.shape[-1] < 4:
        raise SpecError(
            f"expected an array whose last two axes are a square n x n grid with n >= 4 "
            f"(axes ..., x, y), got shape {tuple(w.shape)}",
            path=name,
        )
    return w


def ns2d_grid(n: int, *, length: float = 1.0, dtype=None) -> Float[Array, " n"]:
    """The grid coordinates x_i = i L / n, i = 0 .. n-1, of a periodic box [0, L).

    Arguments:
        n: number of grid points per direction.
        length: the period L.
        dtype: a float dtype (default: float64 under x64, else float32).

    Returns:
        the n coordinates (the same for x and y).
    """
    return jnp.arange(n, dtype=_float_dtype(dtype)) * (length / n)


class _Spectral(NamedTuple):
    """Fourier symbols on the ``rfft2`` half-plane of an n x n grid (axes x, y)."""

    ikx: Array  # i k_x with the Nyquist mode zeroed, shape (n, 1)
    iky: Array  # i k_y with the Nyquist mode zeroed, shape (1, n//2 + 1)
    k2: Array  # |k|^2 (Nyquist included), shape (n, n//2 + 1)
    inv_k2: Array  # 1 / |k|^2, 0 at k = 0
    mask: Array  # 2/3-rule dealiasing mask (ones without dealiasing)


def _spectral(n: int, length, dtype, dealias: bool = True) -> _Spectral:
    """The symbols of d/dx, d/dy, -Laplacian and the dealiasing mask, in ``dtype``."""
    mx = np.fft.fftfreq(n, 1.0 / n)  # integer mode numbers, -n/2 included for even n
    my = np.fft.rfftfreq(n, 1.0 / n)
    scale = 2 * jnp.pi / jnp.asarray(length, dtype)
    kx = scale * jnp.asarray(mx, dtype)[:, None]
    ky = scale * jnp.asarray(my, dtype)[None, :]
    kx_d = jnp.where(jnp.asarray(np.abs(mx) * 2 == n)[:, None], 0.0, kx)
    ky_d = jnp.where(jnp.asarray(my * 2 == n)[None, :], 0.0, ky)
    k2 = kx**2 + ky**2
    inv_k2 = jnp.where(k2 == 0, 0.0, 1.0 / jnp.where(k2 == 0, 1.0, k2))
    if dealias:
        keep = (3 * np.abs(mx)[:, None] < n) & (3 * my[None, :] < n)
    else:
        keep = np.ones((n, n // 2 + 1), bool)
    return _Spectral(1j * kx_d, 1j * ky_d, k2, inv_k2, jnp.asarray(keep, dtype))


def _irfft2(a: Array, n: int) -> Array:
    return jnp.fft.irfft2(a, s=(n, n))


def _velocity_hat(w_hat: Array, ops: _Spectral) -> tuple[Array, Array]:
    """(u_hat, v_hat) = (i k_y, -i k_x) psi_hat with psi_hat = omega_hat / |k|^2."""
    psi_hat = w_hat * ops.inv_k2
    return ops.iky * psi_hat, -ops.ikx * psi_hat


def streamfunction(vorticity: Float[ArrayLike, "*batch n n"], *, length: float = 1.0):
    """The streamfunction psi with -Laplacian(psi) = omega and zero mean, spectrally.

    Arguments:
        vorticity: omega on the grid of `ns2d_grid` (axes ..., x, y). Its mean is ignored: on
            the periodic box only a zero-mean omega has a periodic streamfunction.
        length: the period L of the box.

    Returns:
        psi, with the shape and dtype of ``vorticity``.
    """
    w = _as_field(vorticity)
    n = w.shape[-1]
    ops = _spectral(n, length, w.dtype)
    return _irfft2(jnp.fft.rfft2(w) * ops.inv_k2, n)


def velocity(
    vorticity: Float[ArrayLike, "*batch n n"], *, length: float = 1.0
) -> tuple[Float[Array, "*batch n n"], Float[Array, "*batch n n"]]:
    """The velocity (u, v) = (psi_y, -psi_x) of a vorticity field, with -Laplacian(psi) = omega.

    Then u_x + v_y = 0 and v_x - u_y = omega - mean(omega) exactly (for omega without a Nyquist
    component, whose first derivatives are dropped).

    Example:
        >>> x = ns2d_grid(32)
        >>> k = 2 * jnp.pi
        >>> X, Y = jnp.meshgrid(x, x, indexing="ij")
        >>> u, v = velocity(2 * k * jnp.cos(k * X) * jnp.cos(k * Y))  # Taylor–Green:
        >>> # u = -cos(kx) sin(ky), v = sin(kx) cos(ky)

    Arguments:
        vorticity: omega on the grid (axes ..., x, y).
        length: the period L of the box.

    Returns:
        (u, v), each with the shape and dtype of ``vorticity``.
    """
    w = _as_field(vorticity)
    n = w.shape[-1]
    u_hat, v_hat = _velocity_hat(jnp.fft.rfft2(w), _spectral(n, length, w.dtype))
    return _irfft2(u_hat, n), _irfft2(v_hat, n)


def kinetic_energy(
    vorticity: Float[ArrayLike, "*batch n n"], *, length: float = 1.0
) -> Float[Array, "*batch"]:
    """The domain-mean kinetic energy (1/2) <u^2 + v^2> of the flow with vorticity omega."""
    u, v = velocity(vorticity, length=length)
    return 0.5 * jnp.mean(u**2 + v**2, axis=(-2, -1))


def enstrophy(vorticity: Float[ArrayLike, "*batch n n"]) -> Float[Array, "*batch"]:
    """The domain-mean enstrophy (1/2) <omega^2>."""
    w = _as_field(vorticity)
    return 0.5 * jnp.mean(w**2, axis=(-2, -1))


def _advection_hat(w_hat: Array, ops: _Spectral, n: int) -> Array:
    """The dealiased Fourier coefficients of u . grad(omega), formed in physical space."""
    u_hat, v_hat = _velocity_hat(w_hat, ops)
    u, v = _irfft2(u_hat, n), _irfft2(v_hat, n)
    w_x, w_y = _irfft2(ops.ikx * w_hat, n), _irfft2(ops.iky * w_hat, n)
    return jnp.fft.rfft2(u * w_x + v * w_y) * ops.mask


# --------------------------------------------------------------------------------------------
# Time stepping
# --------------------------------------------------------------------------------------------


class AbstractIMEXStepper(eqx.Module):
    """An IMEX Runge–Kutta step: Crank–Nicolson for diffusion, an explicit tableau for the rest.

    A final subclass gives the explicit Butcher tableau as class variables ``a`` (the strictly
    lower-triangular rows, row i with i entries), ``b`` and ``c`` (with ``c[0] == 0``), and
    ``cfl_limit``: the largest advective CFL number h max(|u| + |v|) k_max that `solve_ns2d`
    accepts for the initial state, where the explicit step's amplification of a purely advective
    mode, |R(iy)| at y = CFL, is still at most about 1.1. The step is described in the module
    docstring; it is second order for any explicit tableau of order >= 2, and of the explicit
    tableau's order when the diffusion vanishes.
    """

    a: eqx.AbstractClassVar[tuple[tuple[float, ...], ...]]
    b: eqx.AbstractClassVar[tuple[float, ...]]
    c: eqx.AbstractClassVar[tuple[float, ...]]
    cfl_limit: eqx.AbstractClassVar[float]

    def make_step(
        self, h: Array, lin: Array, rhs: Callable[[Array], Array]
    ) -> Callable[[Array], Array]:
        """The map omega_hat^n -> omega_hat^{n+1} for a step h (factors computed once).

        Arguments:
            h: the time step.
            lin: the diagonal linear operator L in Fourier space (here -nu |k|^2), real.
            rhs: the explicit part N(omega_hat) in Fourier space.

        Returns:
            the step function.
        """
        # Crank–Nicolson factors for each distinct sub-step c_i h (and h for the final update).
        factors = {}
        for ci in {*self.c, 1.0}:
            half = 0.5 * ci * h * lin
            factors[ci] = (1.0 + half, 1.0 / (1.0 - half))

        def step(w_hat: Array) -> Array:
            stages = []
            for i, ci in enumerate(self.c):
                if i == 0:
                    y = w_hat
                else:
                    plus, inv_minus = factors[ci]
                    acc = sum(aij * nj for aij, nj in zip(self.a[i], stages) if aij != 0)
                    y = (plus * w_hat + h * acc) * inv_minus
                stages.append(rhs(y))
            plus, inv_minus = factors[1.0]
            acc = sum(bj * nj for bj, nj in zip(self.b, stages) if bj != 0)
            return (plus * w_hat + h * acc) * inv_minus

        return step


class CrankNicolsonHeun(AbstractIMEXStepper):
    """Crank–Nicolson for diffusion with Heun's explicit RK2 (second order overall).

    One step: Y = CN_h[omega^n] + h N(omega^n) / (1 - h L / 2) and
    omega^{n+1} = (1 - h L / 2)^-1 [(1 + h L / 2) omega^n + h (N(omega^n) + N(Y)) / 2]:
    two evaluations of the advection term. Heun's |R(iy)| = (1 + y^4 / 4)^(1/2) exceeds 1 for
    every y != 0 (inviscid advection is only kept in check by small steps or by viscosity); it
    reaches 1.1 at y = 0.96, hence ``cfl_limit = 1``.
    """

    a: ClassVar[tuple[tuple[float, ...], ...]] = ((), (1.0,))
    b: ClassVar[tuple[float, ...]] = (0.5, 0.5)
    c: ClassVar[tuple[float, ...]] = (0.0, 1.0)
    cfl_limit: ClassVar[float] = 1.0


class CrankNicolsonRK4(AbstractIMEXStepper):
    """Crank–Nicolson for diffusion with the classical explicit RK4 (second order overall,
    fourth order for nu = 0): four evaluations of the advection term per step. RK4 is stable on
    the imaginary axis up to |y| = 2 sqrt(2), hence ``cfl_limit = 2.8``."""

    a: ClassVar[tuple[tuple[float, ...], ...]] = ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0))
    b: ClassVar[tuple[float, ...]] = (1 / 6, 1 / 3, 1 / 3, 1 / 6)
    c: ClassVar[tuple[float, ...]] = (0.0, 0.5, 0.5, 1.0)
    cfl_limit: ClassVar[float] = 2.8


# The default stepper (a module-level instance: steppers are immutable).
_DEFAULT_STEPPER = CrankNicolsonHeun()


@eqx.filter_jit
def _integrate(
    w0: Array,
    f: Array,
    nu: Array,
    h: Array,
    length: Array,
    stepper: AbstractIMEXStepper,
    steps_per_save: int,
    saves: int,
    dealias: bool,
) -> Array:
    """Snapshots (batch, saves + 1, n, n) of the flow from a batch w0 (batch, n, n).

    Traced once per (shape, dtype, stepper, step counts); nu, h and L are traced values.
    """
    n = w0.shape[-1]
    ops = _spectral(n, length, w0.dtype, dealias)
    f_hat = jnp.fft.rfft2(f)
    step = stepper.make_step(h, -nu * ops.k2, lambda w_hat: f_hat - _advection_hat(w_hat, ops, n))

    def trajectory(w: Array) -> Array:
        def block(w_hat, _):
            w_hat = jax.lax.fori_loop(0, steps_per_save, lambda _, wh: step(wh), w_hat)
            return w_hat, _irfft2(w_hat, n)

        _, snaps = jax.lax.scan(block, jnp.fft.rfft2(w), None, length=saves)
        return jnp.concatenate([w[None], snaps])

    return jax.vmap(trajectory)(w0)


class NS2DSolution(eqx.Module):
    """Vorticity snapshots of `solve_ns2d`.

    Attributes:
        t: the snapshot times, t[0] = 0 (the initial condition), shape (nt,).
        x: the grid coordinates of axis -2, shape (n,).
        y: the grid coordinates of axis -1, shape (n,).
        vorticity: omega[..., k, i, j] at (t_k, x_i, y_j), shape (*batch, nt, n, n).
    """

    t: Float[Array, " nt"]
    x: Float[Array, " n"]
    y: Float[Array, " n"]
    vorticity: Float[Array, "*batch nt n n"]


def _positive(value, name: str, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"expected a number, got {value!r}", path=name) from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        what = "non-negative" if allow_zero else "positive"
        raise SpecError(f"expected a finite {what} number, got {value!r}", path=name)
    return v


def _count(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise SpecError(f"expected a positive integer, got {value!r}", path=name)
    return int(value)


def _advective_cfl(w: Array, h: float, length: float, dealias: bool) -> float:
    """h max(|u| + |v|) k_max over a batch: k_max = 2 pi / L times the largest mode number that
    the advection term produces (below n/3 with dealiasing, n/2 without)."""
    n = w.shape[-1]
    u, v = velocity(w, length=length)
    m_max = (n - 1) // 3 if dealias else n // 2
    return float(jnp.max(jnp.abs(u) + jnp.abs(v))) * h * 2 * math.pi * m_max / length


def _forcing_on_grid(forcing, n: int, length: float, dtype) -> Array:
    """The forcing as an (n, n) array: a callable f(x, y) on the "ij" meshgrid, values, or 0."""
    if forcing is None:
        return jnp.zeros((n, n), dtype)
    if callable(forcing):
        x = ns2d_grid(n, length=length, dtype=dtype)
        X, Y = jnp.meshgrid(x, x, indexing="ij")
        forcing = forcing(X, Y)
    f = jnp.asarray(forcing, dtype)
    if f.shape != (n, n):
        raise SpecError(
            f"the forcing must be a callable f(x, y) or its values on the {n} x {n} grid, got "
            f"shape {tuple(f.shape)}",
            path="forcing",
        )
    return f


def solve_ns2d(
    vorticity0: Float[ArrayLike, "*batch n n"],
    *,
    nu: float,
    t_final: float,
    steps: int,
    save_every: int | None = None,
    forcing: Callable[[Array, Array], Array] | Float[ArrayLike, "n n"] | None = None,
    length: float = 1.0,
    stepper: AbstractIMEXStepper = _DEFAULT_STEPPER,
    dealias: bool = True,
) -> NS2DSolution:
    """Solve omega_t + u . grad(omega) = nu Laplacian(omega) + f on the periodic box [0, L)^2.

    Pseudo-spectral in space (rfft2, 2/3-rule dealiasing of the advection term), IMEX
    Runge–Kutta in time with a fixed step h = t_final / steps (see the module docstring for the
    scheme and the sign convention u = psi_y, v = -psi_x, -Laplacian(psi) = omega). The leading
    axes of ``vorticity0`` are a batch, integrated by `jax.vmap` in one compiled program; the
    time loop is `jax.lax.scan`, with a snapshot every ``save_every`` steps. The computation
    runs in the dtype of ``vorticity0`` (float32, or float64 under x64).

    Example:
        >>> key = jax.random.key(0)
        >>> w0 = GaussianRandomField().sample(64, batch=8, key=key)
        >>> sol = solve_ns2d(w0, nu=1e-3, t_final=1.0, steps=200, save_every=20,
        ...                  forcing=fno_forcing)
        >>> sol.vorticity.shape  # (8, 11, 64, 64)

    Arguments:
        vorticity0: the initial vorticity, axes (*batch, x, y), on the grid of `ns2d_grid`.
        nu: the kinematic viscosity (>= 0).
        t_final: the final time (> 0).
        steps: the number of time steps.
        save_every: steps between snapshots; must divide ``steps`` (default: ``steps``, i.e.
            the initial and the final state).
        forcing: f as a callable f(x, y) evaluated on the "ij" meshgrid, or its (n, n) grid
            values, the same for the whole batch; None for no forcing.
        length: the period L of the box.
        stepper: `CrankNicolsonHeun()` (default) or `CrankNicolsonRK4()`.
        dealias: apply the 2/3 rule to the advection term (turn off only to study aliasing).

    Returns:
        an `NS2DSolution` with snapshots at t = 0, save_every h, ..., t_final.

    Raises:
        SpecError: for invalid arguments.
        SpecError: also when the initial state's advective CFL number h max(|u| + |v|) k_max
            exceeds ``stepper.cfl_limit`` (the message gives the number of steps needed).
        DivergenceError: if the vorticity became non-finite later (the flow accelerated beyond
            the explicit step's stability limit: take more steps).
    """
    w0 = _as_field(vorticity0, "vorticity0")
    n, dtype = w0.shape[-1], w0.dtype
    nu = _positive(nu, "nu", allow_zero=True)
    t_final = _positive(t_final, "t_final")
    length = _positive(length, "length")
    steps = _count(steps, "steps")
    save_every = steps if save_every is None else _count(save_every, "save_every")
    if steps % save_every:
        raise SpecError(
            f"save_every={save_every} must divide steps={steps}: choose steps as a multiple",
            path="save_every",
        )
    if not isinstance(stepper, AbstractIMEXStepper):
        raise SpecError(
            f"expected CrankNicolsonHeun() or CrankNicolsonRK4(), got {stepper!r}", path="stepper"
        )
    f = _forcing_on_grid(forcing, n, length, dtype)
    h = t_final / steps
    batch = w0.shape[:-2]
    concrete = not isinstance(w0, jax.core.Tracer)
    cfl = _advective_cfl(w0, h, length, dealias) if concrete else 0.0
    if cfl > stepper.cfl_limit:
        raise SpecError(
            f"the time step h = {h:g} gives the initial state an advective CFL number "
            f"h max(|u| + |v|) k_max = {cfl:.3g}, above {stepper.cfl_limit:g} for "
            f"{type(stepper).__name__}: the explicit step would be unstable; use at least "
            f"{math.ceil(steps * cfl / stepper.cfl_limit)} steps",
            path="steps",
        )
    snaps = _integrate(
        w0.reshape(-1, n, n),
        f,
        jnp.asarray(nu, dtype),
        jnp.asarray(h, dtype),
        jnp.asarray(length, dtype),
        stepper,
        save_every,
        steps // save_every,
        bool(dealias),
    )
    snaps = snaps.reshape(*batch, *snaps.shape[1:])
    t = jnp.asarray(np.arange(steps // save_every + 1) * (save_every * h), dtype)
    if concrete and not bool(jnp.all(jnp.isfinite(snaps))):
        finite_t = jnp.all(jnp.isfinite(snaps), axis=tuple(range(len(batch))) + (-2, -1))
        first_bad = int(jnp.argmin(finite_t))
        raise DivergenceError(
            f"the vorticity became non-finite by t = {float(t[first_bad]):g} with the time step "
            f"h = {h:g} (initial advective CFL number {cfl:.2g}): the flow outran the explicit "
            "advection step; increase steps"
        )
    x = ns2d_grid(n, length=length, dtype=dtype)
    return NS2DSolution(t=t, x=x, y=x, vorticity=snaps)


# --------------------------------------------------------------------------------------------
# Initial conditions
# --------------------------------------------------------------------------------------------


class AbstractVorticitySampler(eqx.Module):
    """Draws random initial vorticity fields on the periodic box."""

    def sample(
        self,
        n: int,
        *,
        batch: int | tuple[int, ...] = (),
        length: float = 1.0,
        dtype=None,
        key: PRNGKeyArray,
    ) -> Float[Array, "*batch n n"]:
        """Samples on the n x n grid of `ns2d_grid`.

        A single sample (``batch=()``) is drawn with ``key``; sample i of a batch with
        ``jax.random.split(key, prod(batch))[i]``, so a batch equals the samples drawn one by one
        with those keys.

        Arguments:
            n: grid points per direction.
            batch: the batch shape (an int or a tuple; () for one sample).
            length: the period L of the box.
            dtype: a float dtype (default: float64 under x64, else float32).
            key: a JAX PRNG key.

        Returns:
            the vorticity samples, shape (*batch, n, n).
        """
        n = _count(n, "n")
        if n < 4:
            raise SpecError(f"expected n >= 4 grid points, got {n}", path="n")
        length = _positive(length, "length")
        shape = (batch,) if isinstance(batch, int) else tuple(batch)
        dtype = _float_dtype(dtype)
        if shape == ():
            return _draw_many(self, n, length, dtype, key[None])[0]
        keys = jax.random.split(key, math.prod(shape))
        return _draw_many(self, n, length, dtype, keys).reshape(*shape, n, n)

    @abc.abstractmethod
    def _draw(self, n: int, length: float, dtype, key: PRNGKeyArray) -> Array:
        """One (n, n) sample in ``dtype`` from ``key``."""


@eqx.filter_jit
def _draw_many(
    sampler: AbstractVorticitySampler, n: int, length: float, dtype, keys: PRNGKeyArray
) -> Array:
    """One sample per key, compiled once per (sampler, n, length, dtype, number of keys)."""
    return jax.vmap(lambda k: sampler._draw(n, length, dtype, k))(keys)


def _mode_numbers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer mode numbers (m_x, m_y) on the full n x n FFT grid."""
    m = np.fft.fftfreq(n, 1.0 / n)
    return m[:, None], m[None, :]


def _real_part_of_series(coeffs: Array, n: int) -> Array:
    """Re sum_m coeffs_m exp(2 pi i m . x / L) on the grid (numpy's ifft2 carries 1/n^2)."""
    return jnp.real(jnp.fft.ifft2(coeffs)) * (n * n)


class GaussianRandomField(AbstractVorticitySampler):
    """Gaussian random vorticity with covariance proportional to (-Laplacian + tau^2)^-alpha.

    omega(x) = Re sum_{m != 0} sqrt(2) sigma lambda_m^(-alpha/2) xi_m exp(2 pi i m . x / L),
    lambda_m = 4 pi^2 |m|^2 / L^2 + tau^2, xi_m standard complex normal, over the grid's mode
    numbers: the scaling of the ``GaussianRF`` data generator of Li et al. (2021, "Fourier
    Neural Operator for Parametric Partial Differential Equations", arXiv:2010.08895), so the
    samples have zero mean and E |rfft2(omega)_m|^2 = n^4 2 sigma^2 lambda_m^-alpha
    (half that on the self-conjugate modes m = -m mod n).

    Attributes:
        alpha: the smoothness exponent (2.5 in the FNO benchmark).
        tau: the inverse length scale (7 in the FNO benchmark).
        sigma: the amplitude; None means tau^(alpha - 1) (their tau^((2 alpha - d) / 2), d = 2).
    """

    alpha: float = 2.5
    tau: float = 7.0
    sigma: float | None = None

    def __check_init__(self):
        _positive(self.alpha, "alpha")
        _positive(self.tau, "tau", allow_zero=True)
        if self.sigma is not None:
            _positive(self.sigma, "sigma")

    @property
    def amplitude(self) -> float:
        """sigma, or its default tau^(alpha - 1)."""
        return float(self.tau) ** (float(self.alpha) - 1.0) if self.sigma is None else self.sigma

    def _draw(self, n: int, length: float, dtype, key: PRNGKeyArray) -> Array:
        mx, my = _mode_numbers(n)
        lam = 4 * np.pi**2 * (mx**2 + my**2) / length**2 + float(self.tau) ** 2
        sqrt_eig = np.sqrt(2.0) * self.amplitude * lam ** (-float(self.alpha) / 2)
        sqrt_eig[0, 0] = 0.0
        xi = jax.random.normal(key, (2, n, n), dtype)
        coeffs = jnp.asarray(sqrt_eig, dtype) * (xi[0] + 1j * xi[1])
        return _real_part_of_series(coeffs, n).astype(dtype)


class McWilliams(AbstractVorticitySampler):
    """McWilliams' (1984) decaying-turbulence initial vorticity, with a set kinetic energy.

    psi_hat_m = A(|m|) exp(i phi_m), A(kappa) = [kappa^2 (1 + (kappa / k0)^4)]^(-1/2), random
    phases phi_m, the real part taken on the grid, and psi scaled so that
    (1/2) <u^2 + v^2> = energy exactly; omega = -Laplacian(psi). This is the form of pyqg's
    reproduction of McWilliams (1984, "The emergence of isolated coherent vortices in turbulent
    flow", J. Fluid Mech. 146:21-43, doi:10.1017/S0022112084001750); the expected shell energy
    spectrum is proportional to kappa (1 + (kappa / k0)^4)^-1. Wavenumbers are mode numbers
    (units of 2 pi / L), so the shape does not depend on L; McWilliams' box is L = 2 pi.

    Attributes:
        k0: the spectral peak parameter (6 in McWilliams 1984).
        energy: the domain-mean kinetic energy of every sample (0.5 in pyqg's example).
    """

    k0: float = 6.0
    energy: float = 0.5

    def __check_init__(self):
        _positive(self.k0, "k0")
        _positive(self.energy, "energy")

    def _draw(self, n: int, length: float, dtype, key: PRNGKeyArray) -> Array:
        mx, my = _mode_numbers(n)
        kappa2 = mx**2 + my**2
        with np.errstate(divide="ignore"):
            amp = 1.0 / np.sqrt(kappa2 * (1.0 + (kappa2 / float(self.k0) ** 2) ** 2))
        amp[0, 0] = 0.0
        phase = jax.random.uniform(key, (n, n), dtype, 0.0, 2 * jnp.pi)
        psi = _real_part_of_series(jnp.asarray(amp, dtype) * jnp.exp(1j * phase), n)
        psi = psi.astype(dtype)  # zero mean on the grid: the m = 0 mode is absent
        ops = _spectral(n, length, dtype)
        omega = _irfft2(jnp.fft.rfft2(psi) * ops.k2, n)
        # kinetic energy is quadratic in the amplitude: one rescaling sets it exactly.
        return omega * jnp.sqrt(self.energy / kinetic_energy(omega, length=length))


# --------------------------------------------------------------------------------------------
# Presets and datasets
# --------------------------------------------------------------------------------------------


def fno_forcing(x: Array, y: Array) -> Array:
    """The forcing f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)) of the FNO benchmark."""
    s = 2 * jnp.pi * (x + y)
    return 0.1 * (jnp.sin(s) + jnp.cos(s))


@dataclasses.dataclass(frozen=True)
class NS2DPreset:
    """Named settings of a Navier–Stokes data set (any of them can be overridden).

    Attributes:
        description: one line.
        nu: the viscosity.
        forcing: a callable f(x, y), or None.
        initial: the initial-condition sampler.
        t_final: the final time.
        snapshots: the number of snapshots after t = 0.
        dt: the default time step (``steps = round(t_final / dt)``).
        length: the period L.
    """

    description: str
    nu: float
    forcing: Callable[[Array, Array], Array] | None
    initial: AbstractVorticitySampler
    t_final: float
    snapshots: int
    dt: float
    length: float = 1.0


NS2D_PRESETS: dict[str, NS2DPreset] = {
    "fno": NS2DPreset(
        description="Li et al. (2021) FNO benchmark: GRF(2.5, 7) initial vorticity, "
        "f = 0.1 (sin 2pi(x+y) + cos 2pi(x+y)), nu = 1e-3 on [0, 1]^2, T = 50",
        nu=1e-3,
        forcing=fno_forcing,
        initial=GaussianRandomField(alpha=2.5, tau=7.0),
        t_final=50.0,
        snapshots=50,
        # Measured at 64^2 (float64, 4 samples, T = 50, against dt = 2.5e-4): relative L2 error
        # 2.5e-5 at dt = 1e-2, 1e-6 at 2e-3; 2e-3 keeps the advective CFL number < 0.4 up to 256^2.
        dt=2e-3,
    ),
    "mcwilliams": NS2DPreset(
        description="decaying turbulence from McWilliams' (1984) spectrum (k0 = 6, energy 0.5), "
        "no forcing, nu = 1e-3 on [0, 1]^2, T = 1",
        nu=1e-3,
        forcing=None,
        initial=McWilliams(k0=6.0, energy=0.5),
        t_final=1.0,
        snapshots=20,
        dt=2e-4,
    ),
}


def _describe(obj) -> dict:
    """The fields of a sampler or stepper, with its class name, for a data set's metadata."""
    out = {"type": type(obj).__name__}
    for field in dataclasses.fields(obj):
        out[field.name] = getattr(obj, field.name)
    return out


def ns2d_dataset(
    samples: int,
    *,
    res: int,
    nu: float,
    t_final: float,
    steps: int,
    snapshots: int,
    initial: AbstractVorticitySampler,
    forcing: Callable[[Array, Array], Array] | Float[ArrayLike, "n n"] | None = None,
    length: float = 1.0,
    stepper: AbstractIMEXStepper = _DEFAULT_STEPPER,
    batch: int = 32,
    dtype=None,
    on_batch: Callable[[int, int], None] | None = None,
    key: PRNGKeyArray,
) -> dict[str, np.ndarray]:
    """A data set of vorticity trajectories, solved ``batch`` trajectories at a time.

    Trajectory i starts from ``initial`` drawn with ``jax.random.split(key, samples)[i]``, so
    the data do not depend on ``batch``.

    Arguments:
        samples: the number of trajectories.
        res: grid points per direction.
        nu, t_final, steps, forcing, length, stepper: as in `solve_ns2d`.
        snapshots: the number of snapshots after t = 0; must divide ``steps``.
        initial: the initial-condition sampler (`GaussianRandomField`, `McWilliams`).
        batch: trajectories solved together (bounds memory; the result does not depend on it).
        dtype: float32 or float64 (float64 needs x64; default: JAX's default float).
        on_batch: called as ``on_batch(done, samples)`` after each batch (progress).
        key: a JAX PRNG key.

    Returns:
        a dict of numpy arrays, the contents of the ``.npz`` file (docs/ns2d.md): ``vorticity``
        (samples, snapshots + 1, res, res) with axes (sample, time, x, y), ``t``, ``x``, ``y``,
        ``forcing`` (res, res), ``nu``, ``length``, ``dt``, and ``metadata`` (a JSON string).
    """
    import json

    from pinnkit import __version__

    samples, res, batch = _count(samples, "samples"), _count(res, "res"), _count(batch, "batch")
    steps, snapshots = _count(steps, "steps"), _count(snapshots, "snapshots")
    if steps % snapshots:
        raise SpecError(
            f"snapshots={snapshots} must divide steps={steps}: choose steps as a multiple",
            path="snapshots",
        )
    dtype = _float_dtype(dtype)
    if jnp.dtype(dtype) != _float_dtype(None) and jnp.dtype(dtype).itemsize == 8:
        raise SpecError("float64 needs jax_enable_x64 = True", path="dtype")
    f = _forcing_on_grid(forcing, res, _positive(length, "length"), dtype)
    keys = jax.random.split(key, samples)
    out = np.empty((samples, snapshots + 1, res, res), np.dtype(dtype))
    sol = None
    for lo in range(0, samples, batch):
        chunk = keys[lo : lo + batch]
        w0 = _draw_many(initial, res, float(length), dtype, chunk)
        sol = solve_ns2d(
            w0,
            nu=nu,
            t_final=t_final,
            steps=steps,
            save_every=steps // snapshots,
            forcing=f,
            length=length,
            stepper=stepper,
        )
        out[lo : lo + len(chunk)] = np.asarray(sol.vorticity)
        if on_batch is not None:
            on_batch(lo + len(chunk), samples)
    metadata = {
        "generator": "pinnkit.reference.ns2d.ns2d_dataset",
        "pinnkit_version": __version__,
        "equation": "omega_t + u.grad(omega) = nu Laplacian(omega) + f, -Laplacian(psi) = omega, "
        "u = psi_y, v = -psi_x, periodic [0, L)^2",
        "axes": {"vorticity": ["sample", "time", "x", "y"], "forcing": ["x", "y"]},
        "initial": _describe(initial),
        "stepper": type(stepper).__name__,
        "steps": steps,
        "save_every": steps // snapshots,
        "dealias": "2/3 rule on the advection term",
        "dtype": str(np.dtype(dtype)),
    }
    return {
        "vorticity": out,
        "t": np.asarray(sol.t),
        "x": np.asarray(sol.x),
        "y": np.asarray(sol.y),
        "forcing": np.asarray(f),
        "nu": np.asarray(nu, np.float64),
        "length": np.asarray(length, np.float64),
        "dt": np.asarray(t_final / steps, np.float64),
        "metadata": np.asarray(json.dumps(metadata)),
    }
