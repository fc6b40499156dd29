"""Spectral building blocks of the neural operators, and the norms they are judged by.

Conventions. Fields on a periodic grid are sampled at x_i = i L / n (``pinnkit.reference.ns2d``).
A Fourier mode set is symmetric: along a full (``fft``) axis the kept frequencies are |k| < m,
stored in FFT order as k = 0, 1, ..., m - 1 followed by k = -(m - 1), ..., -1 (2m - 1 entries);
along the half (``rfft``) axis, the last one, they are k = 0, ..., m - 1. So m <= (n + 1) // 2
keeps every mode except the Nyquist mode of an even n, whose sine is not represented on the grid.
Complex weights are stored as real arrays with a trailing axis (real, imaginary), so every
optimizer sees real parameters and float32 / float64 follow JAX's default float.

Contents:

* `SpectralConv3d`: v -> irfftn(W . rfftn(v)) over (x, y, t), W a complex channel matrix per kept
  mode (Li et al. 2021, "Fourier Neural Operator for Parametric Partial Differential Equations",
  arXiv:2010.08895).
* `OutputSpectralLayer`: the output layer of the spatiotemporal FNO of Cao et al. (2024,
  "Spectral-Refiner: Accurate Fine-Tuning of Spatiotemporal Fourier Neural Operator for Turbulent
  Flows", arXiv:2405.17211, ICLR 2025). It forms the truncated space-time Fourier coefficients of
  its latent input and evaluates that Fourier series at any requested times, so the number and
  placement of output steps is free and the time derivative is exact.
* `sobolev_norm`: ||v||_{H^s} = ||(alpha - Laplacian)^{s/2} v||_{L^2}, by Parseval.
* `relative_l2`: the relative L2 error in space-time, by Parseval.
* `resample`: a periodic field on another grid, spectrally.

The Navier–Stokes residual the refinement minimises is the equation library's, answered by FFT
(`pinnkit.operators._answer`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..errors import SpecError

# --------------------------------------------------------------------------------------------
# Mode sets
# --------------------------------------------------------------------------------------------


def float_dtype(dtype=None) -> np.dtype:
    """``dtype`` if it is a real floating type, else JAX's default float (float64 under x64)."""
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return jnp.dtype(dtype)
    return jnp.dtype(jnp.zeros(()).dtype)


def max_modes(n: int) -> int:
    """The largest symmetric mode count m (|k| < m) of an n-point axis without its Nyquist mode."""
    return (n + 1) // 2


def _truncate_full(a: Array, m: int, axis: int) -> Array:
    """The 2m - 1 frequencies |k| < m of a full FFT axis, in FFT order."""
    n = a.shape[axis]
    low = jax.lax.slice_in_dim(a, 0, m, axis=axis)
    high = jax.lax.slice_in_dim(a, n - m + 1, n, axis=axis)
    return jnp.concatenate([low, high], axis=axis)


def _embed_full(a: Array, n: int, axis: int) -> Array:
    """Inverse of `_truncate_full`: the 2m - 1 kept frequencies placed on an n-point FFT axis."""
    kept = a.shape[axis]
    m = (kept + 1) // 2
    shape = list(a.shape)
    shape[axis] = n - kept
    low = jax.lax.slice_in_dim(a, 0, m, axis=axis)
    high = jax.lax.slice_in_dim(a, m, kept, axis=axis)
    return jnp.concatenate([low, jnp.zeros(shape, a.dtype), high], axis=axis)


def _pad_half(a: Array, n_half: int, axis: int) -> Array:
    """Frequencies 0..m-1 of a half (rfft) axis placed on an axis of n_half entries."""
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, n_half - a.shape[axis])
    return jnp.pad(a, widths)


def _check_modes(modes: tuple[int, int, int], shape: tuple[int, int, int], what: str):
    """Trace-time check that a grid (nx, ny, nt) is fine enough for the modes (mx, my, mt)."""
    limits = tuple(max_modes(n) for n in shape)
    if any(m > lim for m, lim in zip(modes, limits)):
        raise SpecError(
            f"{what} keeps the modes |k| < {modes} on axes (x, y, t), which needs a grid of "
            f"at least {tuple(2 * m - 1 for m in modes)} points; got {shape}. Use a finer grid "
            "(or more time steps), or a layer with fewer modes",
            path="inputs",
        )


def _complex(w: Array) -> Array:
    """A complex array from its stored (real, imaginary) trailing axis."""
    return jax.lax.complex(w[..., 0], w[..., 1])


def _mode_shape(modes: tuple[int, int, int]) -> tuple[int, int, int]:
    mx, my, mt = modes
    return (2 * mx - 1, 2 * my - 1, mt)


def _modes_of(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Inverse of `_mode_shape`."""
    return ((shape[0] + 1) // 2, (shape[1] + 1) // 2, shape[2])


def _check_mode_counts(modes, name: str) -> tuple[int, int, int]:
    modes = tuple(int(m) for m in modes)
    if len(modes) != 3 or min(modes) < 1:
        raise SpecError(f"expected three positive mode counts (x, y, t), got {modes!r}", path=name)
    return modes


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------


class SpectralConv3d(eqx.Module):
    """A spectral convolution over (x, y, t): the FNO kernel integral operator in 3D.

    For v with channels c = 1..C_in on an (n_x, n_y, n_t) periodic grid,

        (K v)_o = irfftn( sum_c W_{c o}(k) rfftn(v_c)(k) ),

    with W_{c o}(k) complex for the kept modes k = (k_x, k_y, k_t), |k_x| < m_x, |k_y| < m_y,
    0 <= k_t < m_t (the rfft axis is time) and zero for the others. As a function of the continuous
    variables it is a convolution with a band-limited periodic kernel, so the same weights act on
    any grid fine enough to hold the modes (n >= 2m).

    Where pinnkit differs from Li et al. (2021, arXiv:2010.08895): the spatial mode set is
    symmetric (|k| < m, 2m - 1 modes per axis; theirs is -m <= k < m) and never holds the
    Nyquist mode, so the kept set is closed under k -> -k.

    Arguments:
        in_channels, out_channels: C_in, C_out.
        modes: (m_x, m_y, m_t).
        dtype: a float dtype (default: JAX's default float).
        key: PRNG key.
    """

    weight: Float[Array, "cin cout kx ky kt 2"]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: tuple[int, int, int],
        *,
        dtype=None,
        key: PRNGKeyArray,
    ):
        modes = _check_mode_counts(modes, "modes")
        # Li et al.'s scale 1 / (C_in C_out), with zero-mean entries.
        scale = 1.0 / (in_channels * out_channels)
        shape = (in_channels, out_channels, *_mode_shape(modes), 2)
        self.weight = scale * jax.random.uniform(key, shape, float_dtype(dtype), -1.0, 1.0)

    @property
    def modes(self) -> tuple[int, int, int]:
        """(m_x, m_y, m_t), read off the weights' shape."""
        return _modes_of(self.weight.shape[-4:-1])

    def __call__(self, v: Float[Array, "cin nx ny nt"]) -> Float[Array, "cout nx ny nt"]:
        _, nx, ny, nt = v.shape
        _check_modes(self.modes, (nx, ny, nt), "SpectralConv3d")
        mx, my, mt = self.modes
        v_hat = jnp.fft.rfftn(v, axes=(1, 2, 3))
        kept = _truncate_full(_truncate_full(v_hat, mx, 1), my, 2)[..., :mt]
        out = jnp.einsum("ixyt,ioxyt->oxyt", kept, _complex(self.weight))
        out = _pad_half(_embed_full(_embed_full(out, nx, 1), ny, 2), nt // 2 + 1, 3)
        return jnp.fft.irfftn(out, s=(nx, ny, nt), axes=(1, 2, 3))


class OutputSpectralLayer(eqx.Module):
    """The output layer of the spatiotemporal FNO: a truncated space-time Fourier series,
    evaluated at any times.

    For a latent v with channels c on an (n_x, n_y, N) grid, periodic in the latent time s with
    period N (grid points s = 0, 1, ..., N - 1), the layer forms the coefficients

        w_hat(k, m) = sum_c W_c(k, m) v_hat_c(k, m) + b(k, m),
        v_hat_c(k, m) = (1 / (n_x n_y N)) sum_{x, s} v_c(x, s) exp(-2 pi i (k . x / L + m s / N)),

    for |k_x| < m_x, |k_y| < m_y, 0 <= m < m_t (v_hat are Fourier-series coefficients, so W and
    b mean the same thing on every grid), and evaluates the real series

        w(x, s) = Re[g_0(x)] + 2 sum_{m = 1}^{m_t - 1} Re[g_m(x) exp(2 pi i m s / N)],
        g_m(x) = sum_k w_hat(k, m) exp(2 pi i k . x / L),

    at the requested latent times s (any reals). At the grid times s = 0..N-1 this is
    ``irfftn`` of the coefficients; between them it is the band-limited interpolant, and
    d w / d s = 2 sum_m Re[(2 pi i m / N) g_m(x) exp(2 pi i m s / N)] exactly. This is the layer
    that maps the latent time steps to any number of output steps in Cao et al. (2024,
    "Spectral-Refiner", arXiv:2405.17211); pinnkit evaluates the series directly instead of
    re-sampling it with an inverse FFT of another length, so the output times need not be
    equispaced.

    Arguments:
        in_channels: C, the latent channels.
        modes: (m_x, m_y, m_t).
        scale: half-width of the uniform initial weights (the bias starts at zero).
        dtype: a float dtype (default: JAX's default float).
        key: PRNG key.
    """

    weight: Float[Array, "c kx ky kt 2"]
    bias: Float[Array, "kx ky kt 2"]

    def __init__(
        self,
        in_channels: int,
        modes: tuple[int, int, int],
        *,
        scale: float | None = None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        dtype = float_dtype(dtype)
        scale = 1.0 / in_channels if scale is None else scale
        shape = _mode_shape(_check_mode_counts(modes, "modes"))
        self.weight = scale * jax.random.uniform(key, (in_channels, *shape, 2), dtype, -1.0, 1.0)
        self.bias = jnp.zeros((*shape, 2), dtype)

    @property
    def modes(self) -> tuple[int, int, int]:
        """(m_x, m_y, m_t), read off the weights' shape."""
        return _modes_of(self.bias.shape[:3])

    def coefficients(self, latent: Float[Array, "c nx ny nt"]) -> Array:
        """g_m(x) on the grid: complex, shape (n_x, n_y, m_t)."""
        _, nx, ny, nt = latent.shape
        _check_modes(self.modes, (nx, ny, nt), "OutputSpectralLayer")
        mx, my, mt = self.modes
        v_hat = jnp.fft.rfftn(latent, axes=(1, 2, 3), norm="forward")
        kept = _truncate_full(_truncate_full(v_hat, mx, 1), my, 2)[..., :mt]
        w_hat = jnp.einsum("cxyt,cxyt->xyt", kept, _complex(self.weight)) + _complex(self.bias)
        w_hat = _embed_full(_embed_full(w_hat, nx, 0), ny, 1)
        return jnp.fft.ifft2(w_hat, axes=(0, 1), norm="forward")

    def __call__(
        self,
        latent: Float[Array, "c nx ny nt"],
        times: Float[ArrayLike, " k"],
        *,
        derivative: bool = False,
    ) -> Float[Array, "k nx ny"] | tuple[Float[Array, "k nx ny"], Float[Array, "k nx ny"]]:
        """The series at latent times s (grid units of the latent time axis, period N).

        Arguments:
            latent: v, shape (C, n_x, n_y, N).
            times: the latent times s, shape (k,).
            derivative: also return d w / d s.

        Returns:
            w(s), shape (k, n_x, n_y); with ``derivative``, ``(w, dw/ds)``.
        """
        g = self.coefficients(latent)
        return synthesize(g, times, latent.shape[-1], derivative=derivative)

    def extended(self, modes: tuple[int, int, int]) -> OutputSpectralLayer:
        """The same layer with more modes: the trained weights and bias copied to their
        frequencies, the new ones zero. Its output equals this layer's on every grid that
        holds the new modes (the refinement's starting point)."""
        modes = _check_mode_counts(modes, "modes")
        if any(new < old for new, old in zip(modes, self.modes)):
            raise SpecError(
                f"an extended layer must keep at least the trained modes {self.modes}, got {modes}",
                path="modes",
            )
        nx, ny, nt = _mode_shape(modes)

        def grow(a: Array, first: int) -> Array:
            a = _embed_full(_embed_full(a, nx, first), ny, first + 1)
            return _pad_half(a, nt, first + 2)

        return eqx.tree_at(
            lambda h: (h.weight, h.bias), self, (grow(self.weight, 1), grow(self.bias, 0))
        )


def synthesize(
    g: Array, times: Float[ArrayLike, " k"], period: int, *, derivative: bool = False
) -> Array | tuple[Array, Array]:
    """Evaluate the real temporal series Re g_0 + 2 sum_{m>=1} Re[g_m exp(2 pi i m s / N)].

    Arguments:
        g: complex (n_x, n_y, m_t): g_m(x) for m = 0..m_t-1.
        times: latent times s, shape (k,).
        period: N.
        derivative: also return the derivative in s.

    Returns:
        shape (k, n_x, n_y); with ``derivative``, ``(values, d/ds values)``.
    """
    real = jnp.real(g).dtype
    s = jnp.asarray(times, real).reshape(-1)
    m = jnp.arange(g.shape[-1], dtype=real)
    weight = jnp.where(m == 0, 1.0, 2.0).astype(real)
    phase = jnp.exp(2j * jnp.pi * s[:, None] * m[None, :] / period)  # (k, m_t)
    basis = weight * phase
    values = jnp.real(jnp.einsum("km,xym->kxy", basis, g))
    if not derivative:
        return values
    d_basis = basis * (2j * jnp.pi * m / period)
    return values, jnp.real(jnp.einsum("km,xym->kxy", d_basis, g))


# --------------------------------------------------------------------------------------------
# Norms and losses
# --------------------------------------------------------------------------------------------


def _half_axis_weights(n: int, dtype) -> Array:
    """Multiplicity of each rfft frequency 0..n//2 in the full spectrum (2, or 1 for the zero
    and the Nyquist frequency)."""
    k = np.arange(n // 2 + 1)
    w = np.where((k == 0) | (2 * k == n), 1.0, 2.0)
    return jnp.asarray(w, dtype)


def _wavenumbers(nx: int, ny: int, length, dtype) -> tuple[Array, Array]:
    """k_x (full axis, shape (nx, 1)) and k_y (half axis, shape (1, ny//2 + 1)), 2 pi m / L."""
    scale = 2 * jnp.pi / jnp.asarray(length, dtype)
    kx = scale * jnp.asarray(np.fft.fftfreq(nx, 1.0 / nx), dtype)[:, None]
    ky = scale * jnp.asarray(np.fft.rfftfreq(ny, 1.0 / ny), dtype)[None, :]
    return kx, ky


def sobolev_norm(
    v: Float[ArrayLike, "*batch nx ny"],
    s: float,
    *,
    alpha: float = 1.0,
    length: float = 1.0,
) -> Float[Array, "*batch"]:
    """The Sobolev norm ||v||_{H^s} = ||(alpha - Laplacian)^{s/2} v||_{L^2} on the periodic box
    [0, L)^2, computed exactly for the trigonometric interpolant of the grid values by Parseval:

        ||v||_{H^s}^2 = L^2 sum_k (alpha + |2 pi k / L|^2)^s |v_hat_k|^2,
        v_hat_k = (1 / (n_x n_y)) sum_x v(x) exp(-2 pi i k . x / L).

    For v = sin(2 pi k . x) on [0, 1)^2 (k != 0, |k_i| < n / 2) this is
    (alpha + 4 pi^2 |k|^2)^s / 2 exactly, the L2 norm squared being 1 / 2. s = -1 gives the
    negative norm H^{-1} that the spectral refinement minimises (Cao et al. 2024,
    arXiv:2405.17211): it weighs a residual's frequency k by 1 / (alpha + |k|^2), the norm of the
    dual of H^1.

    Arguments:
        v: values on the grid x_i = i L / n (last two axes x, y).
        s: the order (any real).
        alpha: the shift: > 0, or 0 with s >= 0 (else a SpecError).
        length: the period L.

    Returns:
        the norm, one per leading index.
    """
    if alpha < 0 or (alpha == 0 and s < 0):
        raise SpecError(
            f"expected alpha > 0 (or alpha = 0 with s >= 0), got alpha = {alpha}, s = {s}: "
            "(alpha - Laplacian)^s is not defined on the mean otherwise",
            path="alpha",
        )
    v = jnp.asarray(v)
    v = v.astype(float_dtype(v.dtype))
    nx, ny = v.shape[-2:]
    v_hat = jnp.fft.rfft2(v, norm="forward")
    kx, ky = _wavenumbers(nx, ny, length, v.dtype)
    symbol = (alpha + kx**2 + ky**2) ** s
    energy = jnp.abs(v_hat) ** 2 * symbol * _half_axis_weights(ny, v.dtype)
    return jnp.sqrt(jnp.asarray(length, v.dtype) ** 2 * jnp.sum(energy, axis=(-2, -1)))


def relative_l2(
    prediction: Float[ArrayLike, "*batch nt nx ny"],
    target: Float[ArrayLike, "*batch nt nx ny"],
) -> Float[Array, "*batch"]:
    """The relative L2 error ||prediction - target|| / ||target|| over space-time, by Parseval.

    On the grid, sum_j |e_j|^2 = (1 / N) sum_k |e_hat_k|^2 over the N space-time points; with
    ``rfftn`` only half of the last axis is stored, and each stored frequency counts as often as
    it occurs in the full spectrum (`_half_axis_weights`). This equals the relative error of the
    grid values (and of the space-time trigonometric interpolants) exactly; computing it in
    Fourier space is what lets a model that outputs Fourier coefficients be trained without
    synthesising its fields.

    Arguments:
        prediction, target: (..., time, x, y).

    Returns:
        one relative error per leading index.
    """
    prediction, target = jnp.asarray(prediction), jnp.asarray(target)
    weights = _half_axis_weights(target.shape[-1], float_dtype(target.dtype))

    def energy(a: Array) -> Array:
        a_hat = jnp.fft.rfftn(a, axes=(-3, -2, -1))
        return jnp.sum(jnp.abs(a_hat) ** 2 * weights, axis=(-3, -2, -1))

    return jnp.sqrt(energy(prediction - target) / energy(target))


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------


def _upsampled_hat(field: Array, n_to: int) -> Array:
    """rfft2 coefficients (Fourier-series scaling) of a field on n x n, without the Nyquist modes
    of either grid, placed on the rfft2 grid of n_to x n_to."""
    m = min(max_modes(field.shape[-1]), max_modes(n_to))
    hat = jnp.fft.rfft2(field, norm="forward")
    hat = _truncate_full(hat, m, -2)[..., :m]
    return _pad_half(_embed_full(hat, n_to, -2), n_to // 2 + 1, -1)


def resample(field: Float[ArrayLike, "*batch n n"], n: int) -> Float[Array, "*batch {n} {n}"]:
    """A periodic field on another grid, spectrally: its trigonometric interpolant without the
    Nyquist modes, truncated to the modes |k_i| < n / 2 of the new grid when that is coarser,
    evaluated at x_i = i L / n. Exact (an identity on the kept modes) both ways: coarsening is the
    L2 projection onto the coarse grid's modes, refining a band-limited field loses nothing.

    Arguments:
        field: values on x_i = i L / n_0 (last two axes x, y).
        n: the new number of points per direction.

    Returns:
        (..., n, n).
    """
    field = jnp.asarray(field)
    field = field.astype(float_dtype(field.dtype))
    return jnp.fft.irfft2(_upsampled_hat(field, n), s=(n, n), norm="forward")
