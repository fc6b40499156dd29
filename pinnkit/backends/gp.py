"""The Gaussian-process backend: a GP on a collocation grid whose power spectrum is a mixture
(Fang, Cooley, Long, Li, Kirby & Zhe, "Solving High Frequency and Multi-Scale PDEs with
Gaussian Processes", ICLR 2024, arXiv 2311.04465; "GP-HM").

The solution ``u`` has a GP prior with a product kernel ``k(x, x') = Π_a k_a(x_a - x'_a)``.
Each factor is a spectral mixture: its power spectrum is a mixture of ``Q`` Gaussians (or
Student-t densities) at frequencies ``ω_q`` with widths ``1/ℓ_q`` and weights ``w_q``, whose
inverse Fourier transform is

    k_a(τ) = Σ_q w_q exp(-τ² / 2ℓ_q²) cos(ω_q τ)            (gaussian)
    k_a(τ) = Σ_q w_q m_{5/2}(τ; ℓ_q) cos(ω_q τ)            (student_t: 5 degrees of freedom,
                                                            a Matérn-5/2 envelope)

The weights live in the log domain; a Jeffreys prior ``p(w) ∝ 1/w`` on them (the term
``sparsity · Σ log w_q``) drives the components the solution does not need to zero, so a
wide initial spread of frequencies is pruned to the few that matter.

The unknowns are the solution's values ``U`` on a tensor grid of collocation points. Because
the grid is a tensor product and the kernel a product, the covariance is a Kronecker product
``K = ⊗_a K_a``: pinnkit never forms it. It factors each ``K_a = L_a L_aᵀ`` (jitter added)
and parametrises ``U = (⊗_a L_a) z`` (whitened): the prior ``-log N(U | 0, K)`` becomes
``½‖z‖² + ½ log det K`` with ``log det K = Σ_a (N / n_a) log det K_a``, and the posterior mean
``m(x) = k(x, X) K⁻¹ U = k(x, X) (⊗_a L_a⁻ᵀ) z`` is a contraction axis by axis. Its
derivatives come from closed-form derivatives of the kernel (no nested autodiff): on the grid
they are ``⊗_a (∂^{o_a} k_a(X_a, X_a) L_a⁻ᵀ)`` applied along each axis, at other points the
same with ``∂^{o_a} k_a(x_a, X_a)``.

Where pinnkit differs from the paper: the grid values are whitened (the paper trains ``U``
itself), which makes the prior a plain sum of squares and the least-squares problem at fixed
kernel well conditioned; and instead of training everything with Adam, the default schedule
alternates a Gauss–Newton solve for the grid values (for a linear PDE one step is the exact
minimiser of the quadratic objective) with Adam on the kernel parameters
(`pinnkit.train.trainer.gauss_newton_phase`). The equation is enforced on the grid; boundary
conditions at points on the faces, through the posterior mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..errors import SpecError
from ._base import AbstractModel, check_grid_backend, per_axis
from .config import GPConfig

KERNELS = ("gaussian", "student_t")
PRECONDITIONERS = ("laplacian", "none")
MAX_GRID_POINTS = 1 << 20
STUDENT_T_MAX_ORDER = 3


# --- kernels -----------------------------------------------------------------------------


def _gaussian_derivative(tau, weights, freqs, scales, order: int):
    """``d^n/dτ^n Σ_q w_q exp(-τ²/2ℓ²) cos(ωτ)`` in closed form.

    ``exp(p)`` with the quadratic ``p = -τ²/2ℓ² + iωτ`` has ``d^n e^p = e^p Σ_k n! / (k!
    (n-2k)!) p'^(n-2k) (p''/2)^k``; the kernel is its real part.
    """
    t = tau[..., None]
    inv = 1.0 / scales**2
    envelope = jnp.exp(-0.5 * t**2 * inv)
    cos, sin = envelope * jnp.cos(freqs * t), envelope * jnp.sin(freqs * t)
    if order == 0:
        return cos @ weights
    dp = jax.lax.complex(-t * inv, jnp.broadcast_to(freqs, (t * inv).shape))
    half = -0.5 * inv
    poly = sum(
        math.factorial(order)
        / (math.factorial(k) * math.factorial(order - 2 * k))
        * dp ** (order - 2 * k)
        * half**k
        for k in range(order // 2 + 1)
    )
    # Re[(cos + i sin) poly], in real arithmetic (complex exponentials are slow on CPU)
    return (cos * jnp.real(poly) - sin * jnp.imag(poly)) @ weights


def _matern52_derivatives(tau, a):
    """``m, m', m'', m'''`` of ``m(τ) = (1 + a|τ| + a²τ²/3) e^{-a|τ|}``."""
    s = jnp.abs(tau)
    e = jnp.exp(-a * s)
    a2 = a**2
    return (
        (1 + a * s + a2 * s**2 / 3) * e,
        -(a2 / 3) * tau * (1 + a * s) * e,
        -(a2 / 3) * (1 + a * s - a2 * s**2) * e,
        (a2**2 / 3) * tau * (3 - a * s) * e,
    )


def _student_t_derivative(tau, weights, freqs, scales, order: int):
    """``d^n/dτ^n Σ_q w_q m_{5/2}(τ; ℓ_q) cos(ω_q τ)`` by Leibniz' rule, ``n <= 3``."""
    t = tau[..., None]
    ms = _matern52_derivatives(t, math.sqrt(5.0) / scales)
    # Re[(iω)^k e^{iωτ}] = ω^k cos(ωτ + kπ/2)
    total = sum(
        math.comb(order, j)
        * ms[j]
        * freqs ** (order - j)
        * jnp.cos(freqs * t + (order - j) * math.pi / 2)
        for j in range(order + 1)
    )
    return total @ weights


def kernel_derivative(
    tau: Float[Array, "..."],
    weights: Float[Array, " q"],
    freqs: Float[Array, " q"],
    scales: Float[Array, " q"],
    order: int,
    kind: str = "gaussian",
) -> Float[Array, "..."]:
    """The ``order``-th derivative in ``τ = x - x'`` of a 1D spectral-mixture kernel.

    ``∂^a_x ∂^b_{x'} k = (-1)^b k^{(a+b)}(τ)``; the posterior mean needs ``b = 0`` only.

    Arguments:
        tau: differences ``x - x'``, any shape.
        weights, freqs, scales: the mixture's ``w_q``, ``ω_q`` (rad per unit), ``ℓ_q``.
        order: the derivative order ``n >= 0`` (at most 3 for ``student_t``).
        kind: ``gaussian`` or ``student_t``.

    Example:
        >>> k = kernel_derivative(jnp.zeros(()), jnp.ones(1), jnp.zeros(1), jnp.ones(1), 0)
        >>> float(k)
        1.0
    """
    if kind == "gaussian":
        return _gaussian_derivative(tau, weights, freqs, scales, order)
    if order > STUDENT_T_MAX_ORDER:
        raise SpecError(
            f"the student_t kernel has closed-form derivatives up to order "
            f"{STUDENT_T_MAX_ORDER}; the equation asks for order {order}: use kernel: gaussian",
            path="model.kernel",
        )
    return _student_t_derivative(tau, weights, freqs, scales, order)


# --- Kronecker algebra -------------------------------------------------------------------


def kron_apply(mats: Sequence[Float[Array, "m n"]], x: Float[Array, "..."]) -> Array:
    """``(⊗_a M_a) vec(x)`` for ``x`` of shape ``(n_1, ..., n_d)``, returned as ``(m_1, ...,
    m_d)``: one matrix per axis, never the Kronecker product."""
    for axis, m in enumerate(mats):
        x = jnp.moveaxis(jnp.tensordot(m, x, axes=([1], [axis])), 0, axis)
    return x


def kron_solve_cholesky(chols: Sequence[Array], x: Array, *, transpose: bool = False) -> Array:
    """``(⊗_a L_a)⁻¹ x`` (or ``(⊗_a L_a)⁻ᵀ x``) for lower-triangular factors ``L_a``."""
    for axis, chol in enumerate(chols):
        moved = jnp.moveaxis(x, axis, 0)
        flat = moved.reshape(moved.shape[0], -1)
        solved = jax.scipy.linalg.solve_triangular(chol, flat, lower=True, trans=int(transpose))
        x = jnp.moveaxis(solved.reshape(moved.shape), 0, axis)
    return x


def kron_logdet(chols: Sequence[Array]) -> Array:
    """``log det (⊗_a L_a L_aᵀ) = Σ_a (N / n_a) log det(L_a L_aᵀ)``."""
    sizes = [c.shape[0] for c in chols]
    total = math.prod(sizes)
    return sum((total // n) * 2.0 * jnp.sum(jnp.log(jnp.diag(c))) for n, c in zip(sizes, chols))


def kron_contract_rows(mats: Sequence[Float[Array, "m n"]], x: Array) -> Float[Array, " m"]:
    """``Σ_j Π_a M_a[i, j_a] x[j_1, ..., j_d]`` for each row ``i``: the value at point ``i`` of
    a function with coefficients ``x`` on a grid, contracted one axis at a time."""
    t = jnp.tensordot(mats[0], x, axes=([1], [0]))  # (m, n_2, ..., n_d)
    for m in mats[1:]:
        t = jnp.einsum("ij,ij...->i...", m, t)
    return t


class DirichletLaplacian(eqx.Module):
    """The exact inverse ``S⁻¹`` of the square collocation operator of ``Δu = f`` inside a
    tensor grid with ``u = g`` on its faces, for differentiation matrices ``D_a`` (one per
    axis), by fast diagonalisation (Lynch, Rice & Thomas 1964).

    ``S`` maps grid values ``U`` to a grid-shaped array holding ``Σ_a D_a ×_a U`` at the
    interior nodes and ``U`` itself on the faces. Inverting it sets the faces, moves their
    contribution to the right-hand side and solves the Sylvester equation ``Σ_a A_a ×_a U_I
    = F`` in the eigenbases of the interior blocks ``A_a = V_a Λ_a V_a⁻¹``:
    ``U_I = (⊗_a V_a) [(⊗_a V_a⁻¹) F / (Σ_a λ_a)]``. Cost: the eigendecompositions, ``O(n³)``
    per axis, then ``O(d N n)`` per application — never a matrix of ``N`` rows.

    Example:
        >>> x = np.linspace(0, 1, 9); h = x[1] - x[0]
        >>> d2 = (np.eye(9, k=1) - 2 * np.eye(9) + np.eye(9, k=-1)) / h**2
        >>> s = DirichletLaplacian([jnp.asarray(d2), jnp.asarray(d2)])
        >>> u = jnp.asarray(np.outer(x, 1 - x))
        >>> bool(jnp.allclose(s.solve(s.apply(u)), u))
        True
    """

    mats: tuple[Array, ...]  # D_a, (n_a, n_a)
    vecs: tuple[Array, ...]  # V_a of the interior block (complex)
    inverse_vecs: tuple[Array, ...]  # V_a⁻¹
    denominator: Array  # Σ_a λ_a over the interior grid (complex)

    def __init__(self, mats: Sequence[Array]):
        self.mats = tuple(mats)
        eigs = [jnp.linalg.eig(m[1:-1, 1:-1]) for m in self.mats]
        self.vecs = tuple(v for _, v in eigs)
        self.inverse_vecs = tuple(jnp.linalg.inv(v) for _, v in eigs)
        total = 0.0
        for a, (lam, _) in enumerate(eigs):
            shape = [1] * len(eigs)
            shape[a] = lam.shape[0]
            total = total + lam.reshape(shape)
        self.denominator = total

    def _interior(self):
        return (slice(1, -1),) * len(self.mats)

    def _laplacian(self, u: Array) -> Array:
        """``Σ_a D_a ×_a u`` at the interior nodes."""
        inner = self._interior()
        out = 0.0
        for a, m in enumerate(self.mats):
            rows = jnp.moveaxis(jnp.tensordot(m[1:-1], u, axes=([1], [a])), 0, a)
            keep = list(inner)
            keep[a] = slice(None)
            out = out + rows[tuple(keep)]
        return out

    def apply(self, u: Array) -> Array:
        """``S U``: the interior rows of the operator, and the face values."""
        return u.at[self._interior()].set(self._laplacian(u))

    def solve(self, rows: Array) -> Array:
        """``S⁻¹ R`` (real, grid-shaped in and out)."""
        inner = self._interior()
        faces = rows.at[inner].set(0.0)
        rhs = rows[inner] - self._laplacian(faces)
        spectral = kron_apply(self.inverse_vecs, rhs.astype(self.denominator.dtype))
        interior = kron_apply(self.vecs, spectral / self.denominator)
        return faces.at[inner].set(jnp.real(interior).astype(rows.dtype))

    def solve_transpose(self, rows: Array) -> Array:
        """``S⁻ᵀ R``."""
        zero = jax.ShapeDtypeStruct(rows.shape, rows.dtype)
        return jax.linear_transpose(self.solve, zero)(rows)[0]


# --- the model ----------------------------------------------------------------------------


class GP(AbstractModel):
    """A GP posterior mean on a tensor grid, with spectral-mixture product kernels.

    Arguments:
        axes: the grid's coordinates per axis (``n_a`` points each, faces included).
        field_names: the fields (each its own GP, with its own kernels and grid values).
        components: mixture components per axis.
        max_frequency: per axis, the top of the initial frequency spread (rad per unit).
        kernel: ``gaussian`` or ``student_t``.
        jitter: relative diagonal jitter of each ``K_a``.
        prior_weight, sparsity: see `penalties`.
        width: initial spectral width in units of the spacing of the initial frequencies.
        midpoints: ask the objective to enforce the equation at the cells' midpoints too.
        preconditioner: ``laplacian``: precondition the conjugate gradients of a Gauss–Newton
            solve for the grid values by the fast-diagonalised Dirichlet Laplacian of the
            current kernel (`normal_preconditioner`); ``none``: plain conjugate gradients.
        dtype: parameter dtype (float64 is what the method needs).

    Example:
        >>> gp = GP([np.linspace(0, 1, 16)], ("u",), components=4, max_frequency=[20.0])
        >>> gp.fields_at(jnp.zeros((3, 1)), [Derivative("u", (2,), "u_xx")])["u_xx"].shape
        (3,)
    """

    values: Array  # whitened grid values z, (m, n_1, ..., n_d)
    log_weights: Array  # (m, d, Q)
    freqs: Array  # (m, d, Q), in units of `freq_unit` (so Adam's steps are O(1) per axis)
    log_scales: Array  # (m, d, Q)
    axes: tuple[tuple[float, ...], ...] = eqx.field(static=True)
    field_names: tuple[str, ...] = eqx.field(static=True)
    freq_unit: tuple[float, ...] = eqx.field(static=True)  # rad per unit, per axis
    kernel: str = eqx.field(static=True)
    jitter: float = eqx.field(static=True)
    prior_weight: float = eqx.field(static=True)
    sparsity: float = eqx.field(static=True)
    midpoints: bool = eqx.field(static=True)
    preconditioner: str = eqx.field(static=True)

    def __init__(
        self,
        axes: Sequence[np.ndarray],
        field_names: Sequence[str],
        *,
        components: int = 30,
        max_frequency: Sequence[float],
        kernel: str = "gaussian",
        jitter: float = 1e-8,
        prior_weight: float = 1e-6,
        sparsity: float = 1.0,
        width: float = 1.0,
        midpoints: bool = True,
        preconditioner: str = "none",
        dtype=None,
    ):
        dtype = dtype or jnp.zeros(()).dtype
        self.axes = tuple(tuple(float(v) for v in np.asarray(a)) for a in axes)
        self.field_names = tuple(field_names)
        self.kernel = kernel
        self.jitter = float(jitter)
        self.prior_weight = float(prior_weight)
        self.sparsity = float(sparsity)
        self.midpoints = bool(midpoints)
        if preconditioner not in PRECONDITIONERS:
            raise SpecError(
                f"preconditioner is one of {PRECONDITIONERS}, not {preconditioner!r}",
                path="model.preconditioner",
            )
        self.preconditioner = preconditioner
        m, d = len(self.field_names), len(self.axes)
        freqs = np.stack([np.linspace(0.0, f, components) for f in max_frequency])  # (d, Q)
        spacing = np.asarray(max_frequency, dtype=np.float64) / max(components - 1, 1)
        scales = np.broadcast_to(1.0 / (width * spacing[:, None]), freqs.shape)
        shape = (m, d, components)
        self.freq_unit = tuple(float(v) for v in spacing)
        self.log_weights = jnp.full(shape, -math.log(components), dtype)
        self.freqs = jnp.broadcast_to(jnp.asarray(freqs / spacing[:, None], dtype), shape)
        self.log_scales = jnp.broadcast_to(jnp.asarray(np.log(scales), dtype), shape)
        self.values = jnp.zeros((m, *(len(a) for a in self.axes)), dtype)

    # -- kernel pieces ----------------------------------------------------------------------

    def _mixture(self, f: int, a: int):
        omega = self.freqs[f, a] * self.freq_unit[a]
        return jnp.exp(self.log_weights[f, a]), omega, jnp.exp(self.log_scales[f, a])

    def _k(self, f: int, a: int, tau, order: int):
        w, om, ell = self._mixture(f, a)
        return kernel_derivative(tau, w, om, ell, order, self.kernel)

    def _grid_axis(self, a: int, dtype) -> Array:
        return jnp.asarray(np.asarray(self.axes[a]), dtype)

    def gram(self, f: int, a: int, order: int) -> Array:
        """``∂^o k_a(X_a, X_a)``: on the uniform grid a Toeplitz matrix, so the kernel is
        evaluated at the ``2n - 1`` lags only."""
        x = np.asarray(self.axes[a])
        n = x.shape[0]
        h = (x[-1] - x[0]) / (n - 1)
        lags = jnp.asarray((np.arange(2 * n - 1) - (n - 1)) * h, self.values.dtype)
        values = self._k(f, a, lags, order)
        index = np.arange(n)[:, None] - np.arange(n)[None, :] + n - 1
        return values[index]

    def cholesky_factors(self, f: int) -> list[Array]:
        """``L_a`` with ``L_a L_aᵀ = K_a + jitter k_a(0) I`` for each axis of field ``f``."""
        out = []
        for a in range(len(self.axes)):
            x = self._grid_axis(a, self.values.dtype)
            gram = self.gram(f, a, 0)
            scale = jnp.sum(jnp.exp(self.log_weights[f, a]))
            gram = gram + self.jitter * scale * jnp.eye(x.shape[0], dtype=x.dtype)
            out.append(jnp.linalg.cholesky(gram))
        return out

    def coefficients(self, f: int, chols=None) -> Array:
        """``α = K⁻¹ U = (⊗_a L_a⁻ᵀ) z`` on the grid, for field ``f``."""
        chols = self.cholesky_factors(f) if chols is None else chols
        return kron_solve_cholesky(chols, self.values[f], transpose=True)

    def grid_values(self) -> Array:
        """``U = (⊗_a L_a) z``: the fields' GP values on the grid, ``(m, n_1, ..., n_d)``."""
        return jnp.stack(
            [
                kron_apply(self.cholesky_factors(f), self.values[f])
                for f in range(len(self.field_names))
            ]
        )

    # -- the model interface ----------------------------------------------------------------

    def fields_at(self, points, requests):
        column = {n: i for i, n in enumerate(self.field_names)}
        alphas = {}
        cross = {}
        out = {}
        for r in requests:
            f = column[r.field]
            if f not in alphas:
                alphas[f] = self.coefficients(f)
            mats = []
            for a, o in enumerate(r.orders):
                if (f, a, o) not in cross:
                    x = self._grid_axis(a, points.dtype)
                    cross[f, a, o] = self._k(f, a, points[:, a : a + 1] - x[None, :], o)
                mats.append(cross[f, a, o])
            out[r.name] = kron_contract_rows(mats, alphas[f]).astype(points.dtype)
        return out

    def collocation_axes(self) -> tuple[np.ndarray, ...]:
        """The grid's nodes per axis, faces included."""
        return tuple(np.asarray(a) for a in self.axes)

    def fields_on_grid(self, requests):
        """The requested derivatives of the posterior mean at the interior grid nodes (C
        order), by Kronecker products of ``(n_a - 2) × n_a`` matrices: the equation is
        enforced inside, the conditions on the faces, so for a Dirichlet problem the
        collocation system is square."""
        column = {n: i for i, n in enumerate(self.field_names)}
        chols, ops, out = {}, {}, {}
        for r in requests:
            f = column[r.field]
            if f not in chols:
                chols[f] = self.cholesky_factors(f)
            mats = []
            for a, o in enumerate(r.orders):
                if (f, a, o) not in ops:
                    k = self.gram(f, a, o)
                    # ∂^o k(X, X) L⁻ᵀ, formed as (L⁻¹ (∂^o k)ᵀ)ᵀ
                    ops[f, a, o] = jax.scipy.linalg.solve_triangular(
                        chols[f][a], k[1:-1].T, lower=True
                    ).T
                mats.append(ops[f, a, o])
            out[r.name] = kron_apply(mats, self.values[f]).reshape(-1)
        return out

    def normal_preconditioner(self, group: str):
        """An approximate inverse of the Gauss–Newton normal matrix ``JᵀJ`` of the grid values
        (``group == "values"``), as a function on the group's pytree, or ``None``.

        For ``Δu = f`` with Dirichlet rows on the faces, ``J = S (⊗_a L_a)``: the whitened
        values ``z`` map to ``U = (⊗_a L_a) z``, and `DirichletLaplacian` ``S`` (with the
        kernel's differentiation matrices ``D_a = ∂²K_a K_a⁻¹``) maps ``U`` to the rows. So
        ``M = (⊗ L_a)⁻¹ S⁻¹ S⁻ᵀ (⊗ L_a)⁻ᵀ = (JᵀJ)⁻¹`` exactly when the loss is that square
        system with equal row weights; with the spec's weights (equation against face rows)
        ``M JᵀJ`` has about as many distinct eigenvalues as there are weights, and conjugate
        gradients converge in a few iterations instead of thousands. Other operators
        (Helmholtz, a reaction term) keep the Laplacian's structure and converge a little
        slower. Built from the current kernel, outside differentiation.
        """
        if self.preconditioner == "none" or group != "values" or len(self.axes) < 2:
            return None
        model = jax.tree.map(jax.lax.stop_gradient, self)
        fields = []
        for f in range(len(self.field_names)):
            chols = model.cholesky_factors(f)
            # D_a = K''_a K_a⁻¹ = (K_a⁻¹ K''_a)ᵀ: both are symmetric
            mats = [
                jax.scipy.linalg.cho_solve((c, True), model.gram(f, a, 2)).T
                for a, c in enumerate(chols)
            ]
            fields.append((chols, DirichletLaplacian(mats)))

        def apply(values):
            out = []
            for f, (chols, laplacian) in enumerate(fields):
                b = kron_solve_cholesky(chols, values[f], transpose=True)
                b = laplacian.solve(laplacian.solve_transpose(b))
                out.append(kron_solve_cholesky(chols, b))
            return jnp.stack(out)

        return lambda part: eqx.tree_at(lambda t: t.values, part, apply(part.values))

    def penalties(self) -> dict[str, tuple[Array, Array]]:
        """The GP prior as a loss term: ``prior = Σ r² + c`` with ``r = z / √(2N)`` and
        ``c = (½ log det K + sparsity Σ_q log w_q) / N`` (summed over fields), i.e.
        ``(-log N(U | 0, K) - log p(w)) / N`` up to a constant."""
        residuals, offset = [], 0.0
        for f in range(len(self.field_names)):
            chols = self.cholesky_factors(f)
            n = self.values[f].size
            residuals.append(self.values[f].reshape(-1) / math.sqrt(2.0 * n))
            offset = (
                offset
                + (0.5 * kron_logdet(chols) + self.sparsity * jnp.sum(self.log_weights[f])) / n
            )
        return {"prior": (jnp.concatenate(residuals), jnp.asarray(offset, self.values.dtype))}

    def penalty_weights(self) -> dict[str, float]:
        return {"prior": self.prior_weight}

    def parameter_group(self, name: str):
        """``values`` (the whitened grid values) or ``kernel`` (log weights, frequencies,
        log length scales): a filter pytree for a phase that trains only that group."""
        groups = {
            "values": lambda m: (m.values,),
            "kernel": lambda m: (m.log_weights, m.freqs, m.log_scales),
        }
        if name not in groups:
            raise SpecError(
                f"the gp backend has parameter groups {sorted(groups)}, not {name!r}",
                path="train.phases.params",
            )
        mask = jax.tree_util.tree_map(lambda _: False, self)
        return eqx.tree_at(groups[name], mask, replace=(True,) * len(groups[name](self)))

    def spectrum(self, f: int = 0) -> dict[str, np.ndarray]:
        """The learned mixture of field ``f``: weights, frequencies and scales, ``(d, Q)``."""
        return {
            "weights": np.exp(np.asarray(self.log_weights[f])),
            "freqs": np.asarray(self.freqs[f]) * np.asarray(self.freq_unit)[:, None],
            "scales": np.exp(np.asarray(self.log_scales[f])),
        }


def _preconditioner(problem, config: GPConfig) -> str:
    """``auto``: the Laplacian preconditioner where the equation holds a pure second
    derivative in every coordinate (an elliptic operator; not u_t = u_xx), else none."""
    if config.preconditioner != "auto":
        return config.preconditioner
    orders = set()
    for name in problem.equation.requests:
        derivative = problem.derivative(name)
        if derivative is not None:
            orders.add(tuple(derivative.orders))
    dim = problem.box.dim
    pure = [tuple(2 if b == a else 0 for b in range(dim)) for a in range(dim)]
    return "laplacian" if all(o in orders for o in pure) else "none"


def build_gp(problem, config: GPConfig, *, dtype, key):
    """The spec's ``model: {backend: gp}``: a GP on a grid over the problem's box."""
    from ._base import BuiltModel

    del key  # the initial state is deterministic
    box = problem.box
    if box.dim > 3:
        raise SpecError(
            f"the gp backend handles 1 to 3 coordinates, the problem has {box.dim}", path="coords"
        )
    check_grid_backend(problem, config, "gp")
    sizes = per_axis(config.grid, box.dim, "model.grid", int)
    for n in sizes:
        if n < 3:
            raise SpecError(f"each grid size must be >= 3, got {sizes}", path="model.grid")
    if math.prod(sizes) > MAX_GRID_POINTS:
        raise SpecError(
            f"a grid of {sizes} has {math.prod(sizes)} points, more than {MAX_GRID_POINTS}; "
            "lower model.grid",
            path="model.grid",
        )
    lengths = [box.hi[a] - box.lo[a] for a in range(box.dim)]
    nyquist = [math.pi * (n - 1) / length for n, length in zip(sizes, lengths)]
    top = (
        nyquist
        if config.max_frequency is None
        else per_axis(config.max_frequency, box.dim, "model.max_frequency")
    )
    if any(f <= 0 for f in top):
        raise SpecError(f"max_frequency must be > 0, got {top}", path="model.max_frequency")
    axes = [np.linspace(box.lo[a], box.hi[a], n) for a, n in enumerate(sizes)]
    model = GP(
        axes,
        problem.fields,
        components=config.components,
        max_frequency=top,
        kernel=config.kernel,
        jitter=config.jitter,
        prior_weight=config.prior_weight,
        sparsity=config.sparsity,
        width=config.width,
        midpoints=config.midpoints,
        preconditioner=_preconditioner(problem, config),
        dtype=dtype,
    )
    return BuiltModel(model, frozenset(), periodic_exact=False)
