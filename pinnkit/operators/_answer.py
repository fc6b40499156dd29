"""The spectral answer to an equation's derivative requests (DESIGN.md §3).

An equation declares the fields and derivatives it reads (``w_t``, ``psi_y``, ``w_xx``) and
computes its residuals from them by arithmetic (`pinnkit.equations`). Pointwise backends answer
those requests by automatic differentiation, ODIL by finite-difference stencils
(``fields_on_grid``); `SpectralFields` answers them for fields on a periodic space grid at a set
of times (the SFNO output layout ``(time, x, y)``):

* in space by FFT: a request's spatial multi-index alpha multiplies the field's Fourier
  coefficients by prod_a (i k_a)^alpha_a, k_a = 2 pi m / L_a. The field is read as the
  trigonometric polynomial of its grid values without the Nyquist modes (|m| < n / 2), so the
  answer is exact for band-limited fields; it is given on a grid of ``grid`` points per axis
  (finer than the fields' to evaluate a quadratic residual without aliasing);
* in time by what the model supplies: each field comes with its time derivatives, as an SFNO's
  output layer gives them exactly from its temporal series (`pinnkit.operators.decode` with
  ``derivative=True``). ``w_xt`` is the x derivative of the supplied ``w_t``;
* a streamfunction psi of a vorticity w, -Laplacian(psi) = w with zero mean (the Biot–Savart
  solve of `pinnkit.reference.ns2d`), is a field like any other: psi_hat = w_hat / |k|^2.

`vorticity_residual` is the library's ``navier_stokes`` equation in its vorticity form evaluated
through this answer: the residual the Spectral-Refiner fine-tunes on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..core.domain import TIME, Derivative
from ..equations import AbstractEquation, as_derivatives, builtin_equation
from ..errors import SpecError
from ._spectral import _embed_full, _pad_half, _truncate_full, float_dtype, max_modes, resample


def _spectrum(values: Array, sizes: tuple[int, ...]) -> Array:
    """The ``rfftn`` coefficients (Fourier-series scaling) over the last ``len(sizes)`` axes,
    without the Nyquist modes of the field's grid or of the target grid, placed on the ``rfftn``
    layout of a grid of ``sizes`` points."""
    d = len(sizes)
    hat = jnp.fft.rfftn(values, axes=tuple(range(-d, 0)), norm="forward")
    for a in range(-d, -1):  # the full axes
        m = min(max_modes(values.shape[a]), max_modes(sizes[a]))
        hat = _embed_full(_truncate_full(hat, m, a), sizes[a], a)
    m = min(max_modes(values.shape[-1]), max_modes(sizes[-1]))
    return _pad_half(hat[..., :m], sizes[-1] // 2 + 1, hat.ndim - 1)


def _wavenumbers(sizes: tuple[int, ...], lengths: tuple[float, ...], dtype) -> list[Array]:
    """k_a = 2 pi m / L_a on the ``rfftn`` layout, each shaped to broadcast over the spectrum."""
    d = len(sizes)
    out = []
    for a, (n, length) in enumerate(zip(sizes, lengths)):
        freq = np.fft.rfftfreq(n, 1.0 / n) if a == d - 1 else np.fft.fftfreq(n, 1.0 / n)
        shape = [1] * d
        shape[a] = len(freq)
        k = (2 * jnp.pi / jnp.asarray(length, dtype)) * jnp.asarray(freq, dtype)
        out.append(k.reshape(shape))
    return out


class SpectralFields(eqx.Module):
    """Fields on a periodic space grid at some times, answering derivative requests.

    Arguments:
        fields: field name -> its values ``(..., n_1, ..., n_d)`` (space last, in the order of
            the spatial ``coords``; leading axes such as time are kept), or a sequence
            ``(values, d/dt values, d²/dt² values, ...)``: the time derivatives a request may
            ask for.
        coords: the equation's coordinates, ``t`` (if any) being time.
        streamfunctions: ``{psi: w}``: psi is not given but solved from w, -Laplacian(psi) = w
            with zero mean (u = psi_y, v = -psi_x in 2D); psi's time derivatives are those of w,
            solved alike.
        length: the period L, one for every axis or one per spatial axis.
        grid: points per axis of the grid the answers are given on (one or one per axis;
            default the fields' grid). Twice the fields' grid evaluates products of two answers
            without aliasing, so a quadratic residual there is exact.

    Example:
        >>> x = jnp.arange(8) / 8
        >>> u = jnp.sin(2 * jnp.pi * x)[:, None] * jnp.ones(8)
        >>> answer = SpectralFields({"u": u}, coords=("x", "y"))
        >>> d = answer.fields_on_grid([Derivative("u", (2, 0), "u_xx")])["u_xx"]
        >>> bool(jnp.allclose(d, -(2 * jnp.pi) ** 2 * u, atol=1e-4))
        True
    """

    fields: dict[str, tuple[Array, ...]]
    coords: tuple[str, ...] = eqx.field(static=True)
    streamfunctions: tuple[tuple[str, str], ...] = eqx.field(static=True)
    lengths: tuple[float, ...] = eqx.field(static=True)
    grid: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        fields: Mapping[str, ArrayLike | Sequence[ArrayLike]],
        *,
        coords: Sequence[str] = ("x", "y", TIME),
        streamfunctions: Mapping[str, str] | None = None,
        length: float | Sequence[float] = 1.0,
        grid: int | Sequence[int] | None = None,
    ):
        self.coords = tuple(coords)
        space = [c for c in self.coords if c != TIME]
        d = len(space)
        if not fields:
            raise SpecError("give at least one field", path="fields")
        out = {}
        for name, given in fields.items():
            series = tuple(given) if isinstance(given, tuple | list) else (given,)
            series = tuple(jnp.asarray(v) for v in series)
            dtype = float_dtype(jnp.result_type(*series))
            out[name] = tuple(v.astype(dtype) for v in series)
        shape = next(iter(out.values()))[0].shape
        if len(shape) < d or any(v.shape != shape for s in out.values() for v in s):
            shapes = {k: [tuple(v.shape) for v in s] for k, s in out.items()}
            raise SpecError(
                f"expected every field and time derivative of one shape (..., "
                f"{', '.join(f'n_{c}' for c in space)}), got {shapes}",
                path="fields",
            )
        self.fields = out
        self.streamfunctions = tuple((streamfunctions or {}).items())
        for psi, w in self.streamfunctions:
            if w not in out or psi in out:
                raise SpecError(
                    f"the streamfunction {psi!r} is solved from a given field, {w!r} is "
                    f"{'given as well' if psi in out else 'not one'} (fields: {sorted(out)})",
                    path="streamfunctions",
                )
        lengths = (length,) * d if np.ndim(length) == 0 else tuple(length)
        sizes = shape[len(shape) - d :] if grid is None else grid
        sizes = (sizes,) * d if np.ndim(sizes) == 0 else tuple(sizes)
        if len(lengths) != d or len(sizes) != d:
            raise SpecError(
                f"give one length and grid size, or one per spatial axis {space}; got "
                f"{length!r} and {grid!r}",
                path="length",
            )
        self.lengths = tuple(float(v) for v in lengths)
        self.grid = tuple(int(n) for n in sizes)

    @property
    def field_names(self) -> tuple[str, ...]:
        return (*self.fields, *(psi for psi, _ in self.streamfunctions))

    def coordinates(self) -> dict[str, Array]:
        """The spatial coordinates x_i = i L / n of the answer grid (``(n_1, ..., n_d)`` each)."""
        space = [c for c in self.coords if c != TIME]
        dtype = next(iter(self.fields.values()))[0].dtype
        axes = [
            jnp.arange(n, dtype=dtype) * (length / n) for n, length in zip(self.grid, self.lengths)
        ]
        return dict(zip(space, jnp.meshgrid(*axes, indexing="ij")))

    def fields_on_grid(self, requests: Sequence[Derivative]) -> dict[str, Array]:
        """Each requested field or derivative on the answer grid, ``(..., *grid)``, keyed by the
        request's name (the mapping `pinnkit.core.objective.Objective.env` hands an equation)."""
        time = self.coords.index(TIME) if TIME in self.coords else None
        space = [a for a, c in enumerate(self.coords) if c != TIME]
        solved = dict(self.streamfunctions)
        spectra: dict[tuple[str, int], Array] = {}
        out = {}
        for r in requests:
            source = solved.get(r.field, r.field)
            if source not in self.fields:
                raise SpecError(
                    f"{r.name!r} asks for the field {r.field!r}; the spectral answer holds "
                    f"{list(self.field_names)}",
                    path="fields",
                )
            rate = r.orders[time] if time is not None else 0
            series = self.fields[source]
            if rate >= len(series):
                raise SpecError(
                    f"{r.name!r} asks for the time derivative of order {rate} of {source!r}, "
                    f"which was given with {len(series) - 1}: a spectral answer takes time "
                    "derivatives from the model (pass them with the field's values)",
                    path="fields",
                )
            if (source, rate) not in spectra:
                spectra[source, rate] = _spectrum(series[rate], self.grid)
            hat = spectra[source, rate]
            k = _wavenumbers(self.grid, self.lengths, hat.real.dtype)
            orders = [r.orders[a] for a in space]
            factor = None
            for ka, o in zip(k, orders):
                if o:
                    factor = ka**o if factor is None else factor * ka**o
            if r.field in solved:  # -Laplacian(psi) = w, zero mean
                k2 = sum(ka**2 for ka in k)
                inverse = jnp.where(k2 == 0, 0.0, 1.0 / jnp.where(k2 == 0, 1.0, k2))
                factor = inverse if factor is None else factor * inverse
            if factor is not None:
                hat = hat * factor
            total = sum(orders)
            if total % 4:
                hat = hat * (1j**total)  # i^|alpha|, exactly
            axes = tuple(range(-len(self.grid), 0))
            out[r.name] = jnp.fft.irfftn(hat, s=self.grid, axes=axes, norm="forward")
        return out

    def env(self, equation: AbstractEquation, **symbols) -> dict[str, Array]:
        """What ``equation.residuals`` reads: the answer grid's coordinates, the ``symbols``
        (params, sources on the answer grid) and the answers to its requests."""
        requests = as_derivatives(equation.requests, self.coords, self.field_names)
        return {**self.coordinates(), **symbols, **self.fields_on_grid(requests)}

    def residuals(self, equation: AbstractEquation, **symbols) -> dict[str, Array]:
        """The equation's residuals on the answer grid, keyed by their names."""
        return dict(zip(equation.names, equation.residuals(self.env(equation, **symbols))))


# --------------------------------------------------------------------------------------------
# The Navier–Stokes vorticity residual, from the equation library
# --------------------------------------------------------------------------------------------


@functools.cache
def vorticity_equation() -> AbstractEquation:
    """The library's ``navier_stokes`` in its vorticity form on (x, y, t), fields (w, psi), with
    the viscosity ``nu`` and the source ``f`` read as symbols:
    ``w_t + psi_y w_x - psi_x w_y - nu (w_xx + w_yy) - f`` and ``psi_xx + psi_yy + w``."""
    return builtin_equation(
        "navier_stokes",
        {"form": "vorticity", "source": "f"},
        coords=("x", "y", TIME),
        fields=("w", "psi"),
        params={"nu": 0.0},
        symbols=("nu", "f"),
    )


def _forcing_on(forcing, n: int, grid: int, length, dtype) -> Array:
    """The forcing on the answer grid: a callable evaluated there, grid values interpolated
    spectrally, None as zero."""
    if forcing is None:
        return jnp.zeros((), dtype)
    if callable(forcing):
        x = jnp.arange(grid, dtype=dtype) * (jnp.asarray(length, dtype) / grid)
        f = forcing(*jnp.meshgrid(x, x, indexing="ij"))
        return jnp.broadcast_to(jnp.asarray(f, dtype), (grid, grid))
    f = jnp.asarray(forcing, dtype)
    if f.shape[-2:] != (n, n):
        raise SpecError(
            f"expected the forcing as a callable f(x, y) or its values on the {n} x {n} grid, "
            f"got shape {tuple(f.shape)}",
            path="forcing",
        )
    return resample(f, grid)


def vorticity_residual(
    omega: Float[ArrayLike, "*batch n n"],
    omega_t: Float[ArrayLike, "*batch n n"],
    *,
    nu: float,
    forcing: Callable[[Array, Array], Array] | Float[ArrayLike, "n n"] | None = None,
    length: float = 1.0,
) -> Float[Array, "*batch 2n 2n"]:
    """The residual R = omega_t + u . grad(omega) - nu Laplacian(omega) - f of the 2D vorticity
    equation, exactly, on the grid of twice the resolution: the library's `vorticity_equation`
    answered by `SpectralFields`.

    The sign convention is that of `pinnkit.reference.ns2d` and of the library:
    -Laplacian(psi) = omega, u = psi_y, v = -psi_x. omega and omega_t are read as the
    trigonometric polynomials of their grid values without the Nyquist modes (|k_i| < n / 2).
    Then u . grad(omega) is a trigonometric polynomial with |k_i| <= n - 2: formed on the
    2n x 2n grid from psi_y, psi_x, omega_x, omega_y (all exact there) it has no aliasing, so
    the returned values are those of the exact residual, and `sobolev_norm` of them is the exact
    norm. A callable forcing is evaluated on the 2n grid; grid values are interpolated
    spectrally.

    Arguments:
        omega: the vorticity (..., x, y) on x_i = i L / n.
        omega_t: its time derivative, the same shape.
        nu: the viscosity.
        forcing: f(x, y), its values on the n x n grid, or None.
        length: the period L.

    Returns:
        R on the 2n x 2n grid x_i = i L / (2n), shape (..., 2n, 2n).
    """
    omega, omega_t = jnp.asarray(omega), jnp.asarray(omega_t)
    dtype = float_dtype(jnp.result_type(omega, omega_t))
    n = omega.shape[-1]
    if omega.ndim < 2 or omega.shape[-2] != n or omega_t.shape != omega.shape:
        raise SpecError(
            f"expected omega and omega_t of one shape (..., n, n), got {tuple(omega.shape)} and "
            f"{tuple(omega_t.shape)}",
            path="omega",
        )
    answer = SpectralFields(
        {"w": (omega.astype(dtype), omega_t.astype(dtype))},
        streamfunctions={"psi": "w"},
        length=length,
        grid=2 * n,
    )
    f = _forcing_on(forcing, n, 2 * n, length, dtype)
    nu = nu if isinstance(nu, float | int) else jnp.asarray(nu, dtype)
    r = answer.residuals(vorticity_equation(), nu=nu, f=f)["vorticity"]
    return jnp.broadcast_to(r, (*omega.shape[:-2], 2 * n, 2 * n)).astype(dtype)
