"""GliODIL: the glioma inverse problem solved by optimising a discrete loss (ODIL).

Balcerak et al. (2023), "Individualizing Glioma Radiotherapy Planning by Optimization of Data
and Physics-Informed Discrete Loss", arXiv:2312.05063; ODIL after Karnakov, Litvinov &
Koumoutsakos, arXiv:2205.04611. From one scan (a segmentation into enhancing core and edema,
optionally a FET-PET signal) and the patient's white- and grey-matter maps, find the tumour
cell density c on a space-time grid together with the growth parameters, by minimising one
sum of squared residual rows:

* the Fisher–Kolmogorov equation, discretised on every space-time cell by Crank–Nicolson in
  time and the finite-volume operator of `pinnkit.reference.glioma` in space (the same face
  diffusivities, no flux into cerebrospinal fluid or background);
* the initial condition: GliODIL's Gaussian seed at an unknown origin;
* one-sided hinges at the scan: c >= th_up in the enhancing core, th_down <= c < th_up in the
  edema, c < th_down in the rest of the tissue, with the thresholds unknown;
* PET in the core: c = s * PET with an unknown scale s.

Time is non-dimensional, tau = t / T in [0, 1] (one scan identifies only D_w T and rho T;
see `pinnkit.reference.glioma`), so the unknown parameters are D~ = D_w T (mm^2) and
rho~ = rho T. The entry point is `infer` (results: `GliodilResult`, with `write`); `setup`
builds the `GliodilProblem` (the unknowns and the loss rows by name) for one's own
optimiser; `solve_crank_nicolson` is the forward model of the same discretisation (the
initial guesses are runs of it, as in the paper).

Optimisation. By default `GaussNewton`: Levenberg–Marquardt on the parameters with the field
eliminated (variable projection): the physics rows are square in c, so each step solves them
exactly (a Crank–Nicolson run) and takes a damped Gauss–Newton step for the parameters on the
data rows, with the sensitivities by forward-mode differentiation through the solve. This is
the whole-vector Gauss–Newton method in the limit of heavy physics weights. Any optax
optimizer instead runs on the whole unknown vector (the field on multigrid levels, and the
parameters) with the PDE and initial condition as weighted penalty rows, as the paper does
with Adam.

Where pinnkit differs from the paper (and its code, github.com/m1balcerak/GliODIL):

* The default optimiser above instead of Adam on a multigrid representation (9000 epochs on a
  GPU there; from its initial guess Adam barely moves the parameters in minutes on a CPU, and
  the field drifts off the PDE, docs/glioma.md). A whole-vector Gauss–Newton step with the
  field free was tried: its sparse direct factorisation fills in like a 3D grid's (2 minutes
  per step at the default patient's size), and the e^(rho T) growth of early perturbations
  makes its damped steps ill-conditioned and its linear model poor.
* Several initial guesses (D_w / rho ratios), the lowest final loss kept: one scan at 2 mm
  constrains the ratio weakly (the infiltration length sqrt(D_w / rho) is about 1 mm), and
  the thresholds can compensate, so the loss has several basins.
* Hard bounds by reparametrisation (log for D~, rho~, s; a scaled sigmoid for the thresholds)
  instead of hinge penalties on the parameters.
* The ratio r = D_w / D_g is given (default 20, the synthetic patients'), not inferred; no
  PET background level (our PET model has none).
* The grid is the patient's own voxel grid cropped around the tumour (no resampling to 48^3),
  and c is unknown only in tissue (0 elsewhere, not a penalty).
* The Dice-stopping initial guess is kept (a forward run from the centre of mass of the core,
  stopped where its segmentation matches best, sets the time scale); the thresholds start
  at mid-range.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import pathlib
import shutil
import time
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float

from pinnkit.core.objective import AbstractObjective, Term
from pinnkit.errors import DivergenceError, InterruptedRun, SpecError
from pinnkit.reference import glioma
from pinnkit.reference.glioma import (
    EDEMA,
    ENHANCING,
    NECROTIC,
    Anatomy,
    FKSolution,
    SyntheticPatient,
    compare_plans,
    density_plan,
    dice,
    margin_plan,
    write_nifti,
)
from pinnkit.train.checkpoint import Checkpointer
from pinnkit.train.steps import (
    AbstractSeparable,
    AbstractStep,
    EliminatedGaussNewtonStep,
    LineSearchStep,
    OptaxStep,
    Phase,
)
from pinnkit.train.trainer import train

__all__ = [
    "GaussNewton",
    "GliodilProblem",
    "GliodilResult",
    "THRESHOLD_BOUNDS",
    "Weights",
    "fisher_kolmogorov_residual",
    "infer",
    "plot",
    "segmentation_hinges",
    "setup",
    "solve_crank_nicolson",
]

THRESHOLD_BOUNDS = {"th_up": (0.45, 0.85), "th_down": (0.1, 0.4)}
"""The open intervals the thresholds are kept in (a scaled sigmoid): GliODIL's penalty bounds
(th_up in [0.5, 0.85], th_down in [0.2, 0.5]) widened to its synthetic cohort's ranges
(th_up in [0.45, 0.6], th_down in [0.15, 0.35]), and disjoint so th_down < th_up always."""

_MID_RANGE = math.sqrt(0.035 * 0.2) * 100  # D_w T and rho T at the cohort's geometric mid-range


# --------------------------------------------------------------------------------------------
# The discrete physics: Crank–Nicolson on the forward solver's finite volumes
# --------------------------------------------------------------------------------------------


def _operator(D: Array, spacing: Sequence[float]):
    """F(c) = div(D grad c) + rho c (1 - c) of `pinnkit.reference.glioma` (the same faces)."""
    faces = glioma._face_diffusivities(D)
    inv_h2 = tuple(1.0 / float(h) ** 2 for h in spacing)
    return lambda c, rho: glioma._rhs(c, faces, inv_h2, rho)


def fisher_kolmogorov_residual(
    c: Float[Array, " levels *grid"],
    D: Float[Array, "*grid"],
    rho: Float[ArrayLike, ""],
    dt: float,
    *,
    spacing: Sequence[float],
) -> Float[Array, " steps *grid"]:
    """The Crank–Nicolson residual of dc/dt = div(D grad c) + rho c (1 - c) between levels:

        r^n = c^{n+1} - c^n - dt/2 (F(c^{n+1}) + F(c^n)),   n = 0 .. nt - 2,

    with F the finite-volume right-hand side of `glioma.solve_fisher_kolmogorov` (face
    diffusivity the mean of the two cells', 0 next to a cell with D = 0, walls closed). Zero
    to round-off on a trajectory of `solve_crank_nicolson` with the same D, rho and step.

    Arguments:
        c: the density on nt >= 2 equally spaced time levels.
        D: the diffusivity (0 outside the domain), in the units of the time axis.
        rho: the proliferation rate (a scalar or a field).
        dt: the step between levels.
        spacing: the voxel size along each grid axis.

    Returns:
        the residual, one level fewer than ``c``.
    """
    F = jax.vmap(_operator(D, spacing), in_axes=(0, None))(c, rho)
    return c[1:] - c[:-1] - 0.5 * dt * (F[1:] + F[:-1])


@functools.partial(jax.jit, static_argnames=("spacing", "steps", "newton"))
def _crank_nicolson(c0, D, rho, dt, *, spacing, steps, newton):
    F = _operator(D, spacing)

    def step(c_old, _):
        b = c_old + 0.5 * dt * F(c_old, rho)

        def newton_iteration(_, c):
            residual = lambda v: v - 0.5 * dt * F(v, rho) - b
            r, jvp = jax.linearize(residual, c)
            # I - dt/2 dF/dc is symmetric, and positive definite while rho dt < 2.
            operator = lx.FunctionLinearOperator(
                jvp,
                jax.eval_shape(lambda: c),
                tags=(lx.symmetric_tag, lx.positive_semidefinite_tag),
            )
            delta = lx.linear_solve(
                operator, -r, lx.CG(rtol=1e-13, atol=1e-15, max_steps=500), throw=False
            ).value
            return c + delta

        c_new = jax.lax.fori_loop(0, newton, newton_iteration, c_old + dt * F(c_old, rho))
        return c_new, c_new

    _, levels = jax.lax.scan(step, c0, None, length=steps)
    return jnp.concatenate([c0[None], levels])


def solve_crank_nicolson(
    c0: Float[ArrayLike, "*grid"],
    D: Float[ArrayLike, "*grid"],
    rho: float,
    t_final: float,
    *,
    spacing: Sequence[float],
    steps: int,
    newton: int = 6,
) -> FKSolution:
    """The forward model of GliODIL's discretisation: Crank–Nicolson steps of the Fisher–
    Kolmogorov equation on the finite volumes of `glioma.solve_fisher_kolmogorov`.

    Each step solves c^{n+1} - dt/2 F(c^{n+1}) = c^n + dt/2 F(c^n) by Newton's method from a
    forward-Euler predictor, each Newton system by conjugate gradients (lineax; the matrix
    I - dt/2 F'(c) is symmetric positive definite while rho dt < 2). ``newton`` iterations
    bring `fisher_kolmogorov_residual` to round-off at the steps GliODIL uses (rho dt <= 0.5).
    Second order in time and A-stable for the diffusion, so accuracy, not stability, limits
    the step (rho dt < 2 is required, and rho dt <= 0.5 keeps the front speed accurate).

    Arguments:
        c0: the initial density (set to 0 where D = 0).
        D: the diffusivity field (0 outside the domain).
        rho: the proliferation rate, a scalar.
        t_final: the final time.
        spacing: the voxel size per axis.
        steps: the number of equal steps.
        newton: Newton iterations per step.

    Returns:
        an `FKSolution` with all ``steps + 1`` levels.
    """
    c0 = jnp.asarray(c0)
    if not jnp.issubdtype(c0.dtype, jnp.floating):
        c0 = c0.astype(jnp.zeros(()).dtype)
    D = jnp.asarray(D, c0.dtype)
    if D.shape != c0.shape:
        raise SpecError(f"expected c0 and D of one shape, got {c0.shape} and {D.shape}", "D")
    spacing = tuple(float(s) for s in np.atleast_1d(spacing))
    if len(spacing) != c0.ndim:
        raise SpecError(f"expected {c0.ndim} voxel sizes, got {len(spacing)}", path="spacing")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise SpecError(f"expected a positive number of steps, got {steps!r}", path="steps")
    rho = glioma._number(rho, "rho", allow_low=True)
    t_final = glioma._number(t_final, "t_final")
    dt = t_final / int(steps)
    if rho * dt >= 2:
        raise SpecError(
            f"rho dt = {rho * dt:.3g} >= 2: the Crank–Nicolson system is indefinite; take more "
            "steps",
            path="steps",
        )
    c0 = jnp.where(D > 0, jnp.clip(c0, 0.0, 1.0), 0.0)
    levels = _crank_nicolson(
        c0,
        D,
        jnp.asarray(rho, c0.dtype),
        jnp.asarray(dt, c0.dtype),
        spacing=spacing,
        steps=int(steps),
        newton=int(newton),
    )
    t = jnp.asarray(np.arange(int(steps) + 1) * dt, c0.dtype)
    return FKSolution(t=t, c=levels, dt=dt, steps=int(steps))


# --------------------------------------------------------------------------------------------
# The data terms
# --------------------------------------------------------------------------------------------


def segmentation_hinges(
    c: Float[Array, "*grid"],
    segmentation: ArrayLike,
    th_up: Float[ArrayLike, ""],
    th_down: Float[ArrayLike, ""],
) -> Float[Array, "*grid"]:
    """The one-sided misfit of a density to a segmentation, per voxel (GliODIL's "bottom" and
    "ceiling" distributions):

    * enhancing core or necrosis (labels 1, 4): max(0, th_up - c);
    * edema (3): max(0, th_down - c) + max(0, c - th_up);
    * elsewhere (0): max(0, c - th_down).

    Exactly zero where `glioma.segment` (c, th_up, th_down) gives the voxel's label (a voxel
    on a threshold counts as consistent from both sides).
    """
    seg = jnp.asarray(segmentation)
    core = (seg == ENHANCING) | (seg == NECROTIC)
    edema = seg == EDEMA
    below = jnp.maximum(th_down - c, 0.0)
    above_up = jnp.maximum(c - th_up, 0.0)
    return jnp.where(
        core,
        jnp.maximum(th_up - c, 0.0),
        jnp.where(edema, below + above_up, jnp.maximum(c - th_down, 0.0)),
    )


@dataclasses.dataclass(frozen=True)
class Weights:
    """The weights of the loss rows (each row is multiplied by its weight, then squared).

    `GaussNewton` zeroes the physics rows exactly, so only the data weights matter to it; an
    optax optimizer trades all four off. The PDE rows are the Crank–Nicolson residual divided
    by sqrt(dtau) (so their sum of squares approximates the space-time integral of
    (c_t - F)^2 / h^d for any number of levels); the other rows are in units of c, summed over
    voxels. The defaults put the physics a factor 100 (in squares) above the data, which the
    paper's weights (PDE 2400, initial condition 1000, hinges 4, PET 45, per-day units) also
    favour.

    Attributes:
        pde: the Fisher–Kolmogorov rows on every space-time cell of tissue.
        initial: c(tau = 0) minus the Gaussian seed, on every tissue voxel.
        segmentation: the hinges of `segmentation_hinges` at tau = 1, on every tissue voxel.
        pet: c(1) - s PET in the core where PET > 0.
    """

    pde: float = 10.0
    initial: float = 10.0
    segmentation: float = 1.0
    pet: float = 1.0


# --------------------------------------------------------------------------------------------
# The unknowns and the residual rows
# --------------------------------------------------------------------------------------------


def _logit_bounded(value: float, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    s = (value - lo) / (hi - lo)
    return math.log(s / (1 - s))


def _bounded(z: Array, bounds: tuple[float, float]) -> Array:
    lo, hi = bounds
    return lo + (hi - lo) * jax.nn.sigmoid(z)


class GliodilProblem(eqx.Module):
    """The GliODIL problem of one scan on its crop box (from `setup`): the data, the geometry
    and the discrete loss as residual rows.

    The unknown vector z is [the multigrid levels of c, theta]. Level l holds values on the
    space-time grid (nt, *grid) coarsened 2^l times per axis (rounded up); the field is their
    sum, each interpolated multilinearly to the finest grid, in tissue (0 elsewhere). theta is
    (log D_w T, log rho T, the origin's offset from ``origin0`` in voxels (one per axis),
    logit th_up, logit th_down, log s), bounded by construction (`THRESHOLD_BOUNDS`).

    Close over a problem in compiled code rather than passing it as an argument: its tissue
    mask must stay concrete (it indexes the rows).
    """

    tissue: Array  # bool grid
    relative_D: Array  # (m_WM + m_GM / r) in tissue, 0 elsewhere
    points: Array  # world mm of the voxel centres, (*grid, 3)
    axes: Array  # (3, ndim): world mm per voxel index
    origin0: Array  # world mm of the initial origin
    segmentation: Array  # labels on the grid (0 outside tissue)
    pet: Array  # PET on the grid (0 where none)
    pet_mask: Array  # where PET rows are: core voxels with PET > 0
    spacing: tuple[float, ...] = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    weights: Weights = eqx.field(static=True)
    levels: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    box: tuple[tuple[int, int], ...] = eqx.field(static=True)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.tissue.shape

    @property
    def ndim(self) -> int:
        return len(self.spacing)

    @property
    def index(self) -> np.ndarray:
        """The flat grid indices of the tissue voxels (the problem is closed over, never traced,
        so the mask is concrete)."""
        return np.flatnonzero(np.asarray(self.tissue))

    @property
    def n_field(self) -> int:
        return sum(math.prod(level) for level in self.levels)

    @property
    def n_params(self) -> int:
        return 5 + self.ndim

    @property
    def n_unknowns(self) -> int:
        return self.n_field + self.n_params

    @property
    def dtau(self) -> float:
        return 1.0 / (self.nt - 1)

    @property
    def pde_scale(self) -> float:
        """The factor of the Crank–Nicolson residual in a PDE row: w_pde / sqrt(dtau)."""
        return self.weights.pde / math.sqrt(self.dtau)

    def field(self, z: Array) -> Array:
        """c on the grid, (nt, *grid): the sum of the multigrid levels, each interpolated
        (multilinearly, in space and time) to the finest, in tissue; 0 elsewhere."""
        full = (self.nt, *self.shape)
        total, offset = 0.0, 0
        for level in self.levels:
            u = z[offset : offset + math.prod(level)].reshape(level)
            offset += math.prod(level)
            total = total + (u if level == full else jax.image.resize(u, full, "linear"))
        return jnp.where(self.tissue, total, 0.0)

    def gather(self, grids: Array) -> Array:
        """The tissue entries of (..., *grid) arrays, flattened."""
        lead = grids.shape[: grids.ndim - self.ndim]
        return grids.reshape(*lead, -1)[..., self.index].reshape(-1)

    def parameters(self, theta: Array) -> dict[str, Array]:
        """The parameter values of theta (the last n_params unknowns)."""
        nd = self.ndim
        return {
            "D_w_T": jnp.exp(theta[0]),
            "rho_T": jnp.exp(theta[1]),
            "origin_mm": self.origin0 + self.axes @ theta[2 : 2 + nd],
            "th_up": _bounded(theta[2 + nd], THRESHOLD_BOUNDS["th_up"]),
            "th_down": _bounded(theta[3 + nd], THRESHOLD_BOUNDS["th_down"]),
            "pet_scale": jnp.exp(theta[4 + nd]),
        }

    def theta(self, params: dict) -> np.ndarray:
        """The parameter vector of values ("D_w_T", "rho_T", "origin_mm", "th_up", "th_down",
        and optionally "pet_scale"), the inverse of `parameters`."""
        offset = np.linalg.lstsq(
            np.asarray(self.axes),
            np.asarray(params["origin_mm"], float) - np.asarray(self.origin0),
            rcond=None,
        )[0]
        return np.r_[
            math.log(params["D_w_T"]),
            math.log(params["rho_T"]),
            offset,
            _logit_bounded(params["th_up"], THRESHOLD_BOUNDS["th_up"]),
            _logit_bounded(params["th_down"], THRESHOLD_BOUNDS["th_down"]),
            math.log(params.get("pet_scale", 1.0)),
        ]

    def unknowns(self, c: Array, theta: ArrayLike) -> Array:
        """The unknown vector of a field c (nt, *grid), held on the finest level (the coarser
        ones 0), and the parameter vector theta."""
        c = jnp.asarray(c)
        coarse = sum(math.prod(level) for level in self.levels[1:])
        theta = jnp.asarray(theta, c.dtype)
        return jnp.concatenate([c.reshape(-1), jnp.zeros(coarse, c.dtype), theta])

    def seed(self, origin_mm: Array) -> Array:
        """GliODIL's Gaussian initial density at ``origin_mm`` (as `glioma.initial_density`)."""
        d2 = jnp.sum((self.points - origin_mm) ** 2, axis=-1)
        g = glioma._INITIAL_AMPLITUDE * jnp.exp(-d2 / (2 * glioma._INITIAL_WIDTH_MM**2))
        return jnp.where(self.tissue & (g >= glioma._INITIAL_CUTOFF), g, 0.0)

    def rows(self, c: Array, theta: Array) -> tuple[Array, Array]:
        """The weighted residual rows on the grid (0 outside tissue): the initial condition
        and the PDE, (nt, *grid) (level 0: the initial condition; level n: the PDE between
        levels n - 1 and n), and the data at tau = 1, (2, *grid) (segmentation, PET)."""
        w = self.weights
        p = self.parameters(theta)
        D = p["D_w_T"] * self.relative_D
        pde = fisher_kolmogorov_residual(c, D, p["rho_T"], self.dtau, spacing=self.spacing)
        initial = w.initial * (c[0] - self.seed(p["origin_mm"]))
        physics = jnp.concatenate([initial[None], self.pde_scale * pde])
        final = c[-1]
        hinge = segmentation_hinges(final, self.segmentation, p["th_up"], p["th_down"])
        pet = jnp.where(self.pet_mask, final - p["pet_scale"] * self.pet, 0.0)
        data = jnp.stack([w.segmentation * hinge, w.pet * pet])
        return jnp.where(self.tissue, physics, 0.0), jnp.where(self.tissue, data, 0.0)

    def forward(self, theta: Array) -> Array:
        """The Crank–Nicolson solution (nt, *grid) for the parameters theta: the field whose
        physics rows vanish (to round-off)."""
        p = self.parameters(theta)
        c0 = self.seed(p["origin_mm"])
        D = p["D_w_T"] * self.relative_D
        dtau = jnp.asarray(self.dtau, theta.dtype)
        return _crank_nicolson(
            c0, D, p["rho_T"], dtau, spacing=self.spacing, steps=self.nt - 1, newton=6
        )

    def split(self, z: Array) -> tuple[Array, Array]:
        return self.field(z), z[self.n_field :]

    def residuals(self, z: Array) -> dict[str, Array]:
        """The weighted residual rows by term, on the tissue voxels."""
        physics, data = self.rows(*self.split(z))
        return {
            "pde": self.gather(physics[1:]),
            "initial": self.gather(physics[0]),
            "segmentation": self.gather(data[0]),
            "pet": self.gather(data[1]),
        }

    def flat(self, z: Array) -> Array:
        """All residual rows, concatenated."""
        return jnp.concatenate(list(self.residuals(z).values()))

    def loss(self, z: Array) -> Array:
        """The sum of squared residual rows."""
        return jnp.sum(self.flat(z) ** 2)


# --------------------------------------------------------------------------------------------
# The inputs, the initial guess and the optimisation
# --------------------------------------------------------------------------------------------


def _inputs(data, segmentation, pet) -> tuple[Anatomy, np.ndarray, np.ndarray | None]:
    if isinstance(data, SyntheticPatient):
        if segmentation is not None or pet is not None:
            raise SpecError(
                "a SyntheticPatient carries its own segmentation and PET; pass either a patient "
                "or (anatomy, segmentation, pet)",
                path="segmentation",
            )
        return data.anatomy, np.asarray(data.segmentation), data.pet
    if not isinstance(data, Anatomy):
        raise SpecError(
            f"expected a SyntheticPatient or an Anatomy, got {type(data).__name__}", path="data"
        )
    if segmentation is None:
        raise SpecError("an Anatomy needs its segmentation (labels 0/1/3/4)", "segmentation")
    seg = np.rint(np.asarray(segmentation)).astype(np.int64)
    if seg.shape != data.shape:
        raise SpecError(
            f"expected a segmentation of the anatomy's shape {data.shape}, got {seg.shape}",
            path="segmentation",
        )
    unknown = np.setdiff1d(np.unique(seg), [0, ENHANCING, EDEMA, NECROTIC])
    if unknown.size:
        raise SpecError(
            f"expected labels 0, {ENHANCING} (enhancing), {EDEMA} (edema), {NECROTIC} "
            f"(necrotic), got also {unknown.tolist()}",
            path="segmentation",
        )
    if pet is not None:
        pet = np.asarray(pet, np.float64)
        if pet.shape != data.shape or not np.all(np.isfinite(pet)):
            raise SpecError(f"expected a finite PET of shape {data.shape}", path="pet")
        peak = pet.max(initial=0.0)
        pet = np.clip(pet, 0.0, None) / peak if peak > 0 else None
    return data, seg.astype(np.uint8), pet


def _box(anatomy: Anatomy, mask: np.ndarray, pad_mm: float) -> tuple[slice, ...]:
    """The bounding box of ``mask`` widened by ``pad_mm`` per side, within the grid."""
    box = []
    for axis, h in enumerate(anatomy.spacing):
        other = tuple(a for a in range(anatomy.ndim) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        pad = int(math.ceil(pad_mm / h))
        box.append(slice(max(int(idx[0]) - pad, 0), min(int(idx[-1]) + 1 + pad, mask.shape[axis])))
    return tuple(box)


def _sub_anatomy(anatomy: Anatomy, box: tuple[slice, ...]) -> Anatomy:
    affine = anatomy.affine.copy()
    lo = np.asarray([s.start for s in box], float)
    affine[:3, 3] = anatomy.affine[:3, : anatomy.ndim] @ lo + anatomy.affine[:3, 3]
    return Anatomy(anatomy.wm[box], anatomy.gm[box], affine, anatomy.spacing)


def _segmentation_score(c: np.ndarray, seg: np.ndarray, th_up: float, th_down: float) -> np.ndarray:
    """GliODIL's stopping score per level: the Dice of the core and of the edema, weighted by
    their volumes in the data."""
    core = np.isin(seg, (ENHANCING, NECROTIC))
    edema = seg == EDEMA
    axes = tuple(range(1, c.ndim))

    def dice(a, b):
        total = a.sum(axes) + b.sum()
        return np.where(total > 0, 2 * (a & b).sum(axes) / np.maximum(total, 1), 1.0)

    return dice(c >= th_up, core) * core.sum() + dice((c >= th_down) & (c < th_up), edema) * (
        edema.sum()
    )


@dataclasses.dataclass(frozen=True, eq=False)
class GliodilResult:
    """What `infer` found (on the anatomy's full grid; lengths in mm, time tau = t / T).

    Attributes:
        density: c at the scan (tau = 1), float64, the anatomy's shape.
        field: c on all nt levels, (nt, *shape) (0 outside the crop box and outside tissue).
        tau: the levels, (nt,).
        D_w_T: white-matter diffusivity times growth time, mm^2.
        rho_T: proliferation rate times growth time.
        r: the white-to-grey diffusivity ratio used (given, not inferred).
        origin_mm: the centre of the initial seed, world mm (x, y, z).
        th_up, th_down: the segmentation thresholds.
        pet_scale: s in c = s PET (None without PET).
        loss: the loss after each step, (steps + 1,) (entry 0: the initial guess).
        terms: the sum of squared rows of each term after each step.
        initial_guess: the parameters the optimisation started from.
        wall_time_s: the time `infer` took, compilation included.
        segmentation: the segmentation fitted.
        pet: the PET fitted (normalised), or None.
        box: the crop box (slices of the anatomy grid) the unknowns live on.
        starts: per initial guess (one per initial ratio): its parameters, the parameters
            found from it and the final loss; the result is the start of lowest loss.
    """

    density: np.ndarray
    field: np.ndarray
    tau: np.ndarray
    D_w_T: float
    rho_T: float
    r: float
    origin_mm: tuple[float, float, float]
    th_up: float
    th_down: float
    pet_scale: float | None
    loss: np.ndarray
    terms: dict[str, np.ndarray]
    initial_guess: dict[str, float | list[float]]
    wall_time_s: float
    segmentation: np.ndarray
    pet: np.ndarray | None
    box: tuple[slice, ...]
    starts: list[dict]

    def unknowns(self) -> dict:
        """The inferred parameters as JSON-ready values."""
        return {
            "D_w_T": self.D_w_T,
            "rho_T": self.rho_T,
            "origin_mm": list(self.origin_mm),
            "th_up": self.th_up,
            "th_down": self.th_down,
            "pet_scale": self.pet_scale,
        }

    def summary(
        self,
        anatomy: Anatomy | SyntheticPatient,
        *,
        true_density: ArrayLike | None = None,
        margin_mm: float = 15.0,
    ) -> dict:
        """What `write` puts in summary.json: the unknowns, the fit, and, given a truth, the
        Dice of c >= 0.1 and the plan comparison of `glioma.compare_plans` (volumes in mm^3,
        or mm^2 in 2D), with the parameter errors when the truth is a `SyntheticPatient`.

        Arguments:
            anatomy: the `Anatomy` inferred on, or the `SyntheticPatient` (its truth is
                compared with).
            true_density: a true density on the anatomy's grid (when ``anatomy`` is an
                `Anatomy`): Dice and plans without parameter errors.
            margin_mm: the margin of the standard plan.
        """
        anatomy, patient, truth = _truth(anatomy, true_density)
        _check_grid(self, anatomy)
        v = anatomy.voxel_volume
        margin = margin_plan(self.segmentation, anatomy, margin_mm)
        record = {
            "unknowns": self.unknowns(),
            "units": {"D_w_T": "mm^2", "rho_T": "1", "origin_mm": "mm", "volumes": _unit(anatomy)},
            "r": self.r,
            "initial_guess": self.initial_guess,
            "starts": self.starts,
            "loss": float(self.loss[-1]),
            "terms": {k: float(t[-1]) for k, t in self.terms.items()},
            "steps": len(self.loss) - 1,
            "nt": len(self.tau),
            "box": [[b.start, b.stop] for b in self.box],
            "wall_time_s": self.wall_time_s,
            "volumes": {
                "c>=0.1": float((self.density >= 0.1).sum() * v),
                "c>=0.001": float((self.density >= 1e-3).sum() * v),
                f"margin_plan_{margin_mm:g}mm": float(margin.sum() * v),
            },
            "reference": "Balcerak et al., arXiv:2312.05063 (GliODIL)",
        }
        if truth is None:
            return record
        plans = compare_plans(self.density, self.segmentation, truth, anatomy, margin_mm=margin_mm)
        recovery = {}
        if patient is not None:
            t = patient.truth
            record["truth"] = {
                "D_w_T": t.D_w_T,
                "rho_T": t.rho_T,
                "origin_mm": list(t.origin_mm),
                "th_up": t.th_up,
                "th_down": t.th_down,
            }
            recovery = {
                "D_w_T_relative_error": self.D_w_T / t.D_w_T - 1,
                "rho_T_relative_error": self.rho_T / t.rho_T - 1,
                "origin_error_mm": float(np.linalg.norm(np.subtract(self.origin_mm, t.origin_mm))),
                "th_up_error": self.th_up - t.th_up,
                "th_down_error": self.th_down - t.th_down,
            }
        record["recovery"] = {
            **recovery,
            "dice_c>=0.1": dice(self.density >= 0.1, truth >= 0.1),
            "plans": dataclasses.asdict(plans),
        }
        return record

    def write(
        self,
        out_dir: str | os.PathLike,
        anatomy: Anatomy | SyntheticPatient,
        *,
        true_density: ArrayLike | None = None,
        margin_mm: float = 15.0,
        figure: str = "gliodil.png",
    ) -> pathlib.Path:
        """Write the result: ``inferred_density.nii.gz`` (c at the scan) and
        ``inferred_initial.nii.gz`` (c at tau = 0) on the anatomy's grid and affine,
        ``summary.json`` (`summary`) and the figure (the slice: anatomy, segmentation,
        true and inferred density, the plans' outlines, the loss).

        Arguments:
            out_dir: the folder (created if missing; its parent must exist).
            anatomy, true_density, margin_mm: as `summary`.
            figure: the figure's path relative to ``out_dir``.

        Returns:
            the folder.
        """
        summary = self.summary(anatomy, true_density=true_density, margin_mm=margin_mm)
        anatomy, _, truth = _truth(anatomy, true_density)
        out = pathlib.Path(out_dir)
        out.mkdir(exist_ok=True)
        write_nifti(out / "inferred_density.nii.gz", self.density, anatomy.affine)
        write_nifti(out / "inferred_initial.nii.gz", self.field[0], anatomy.affine)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (out / figure).parent.mkdir(exist_ok=True)
        plot(self, anatomy, out / figure, true_density=truth, margin_mm=margin_mm)
        return out


def _truth(anatomy, true_density):
    """(anatomy, patient or None, true density or None) of `GliodilResult.summary`'s input."""
    if isinstance(anatomy, SyntheticPatient):
        if true_density is not None:
            raise SpecError("a SyntheticPatient carries its own true density", "true_density")
        return anatomy.anatomy, anatomy, np.asarray(anatomy.density)
    if true_density is not None:
        true_density = np.asarray(true_density, np.float64)
        if true_density.shape != getattr(anatomy, "shape", None):
            raise SpecError(
                f"expected a true density of the anatomy's shape {getattr(anatomy, 'shape', '')}"
                f", got {true_density.shape}",
                path="true_density",
            )
    return anatomy, None, true_density


def _unit(anatomy: Anatomy) -> str:
    return "mm^3" if anatomy.ndim == 3 else "mm^2"


def _check_grid(result: GliodilResult, anatomy: Anatomy) -> None:
    if not isinstance(anatomy, Anatomy):
        raise SpecError(
            f"expected an Anatomy or a SyntheticPatient, got {type(anatomy).__name__}", "anatomy"
        )
    if anatomy.shape != result.density.shape:
        raise SpecError(
            f"the result is on a grid {result.density.shape}, the anatomy {anatomy.shape}: "
            "pass the anatomy that was inferred on",
            path="anatomy",
        )


def plot(
    result: GliodilResult,
    anatomy: Anatomy,
    path: str | os.PathLike,
    *,
    true_density: ArrayLike | None = None,
    margin_mm: float = 15.0,
) -> None:
    """One figure of the slice through the inferred origin (2D: the anatomy itself): the
    anatomy, the segmentation, the true density (if given) and the inferred one, the outlines
    of the margin plan and of the density plan of equal volume (and of the true c >= 0.001),
    and the loss.

    Arguments:
        result: from `infer`.
        anatomy: the anatomy inferred on.
        path: the PNG file.
        true_density: the true density, if known.
        margin_mm: the margin of the standard plan.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def plane(a):
        a = np.asarray(a)
        if a.ndim == 3:
            k = int(np.clip(round(anatomy.world_to_voxel(result.origin_mm)[2]), 0, a.shape[2] - 1))
            a = a[:, :, k]
        return a.T  # rows: the second index, so the image is upright in RAS

    seg = plane(result.segmentation)
    tissue = plane(anatomy.wm + anatomy.gm)
    margin_mask = margin_plan(result.segmentation, anatomy, margin_mm)
    margin = plane(margin_mask)
    volume = float(margin_mask.sum() * anatomy.voxel_volume)
    by_density = plane(density_plan(result.density, volume, anatomy))
    panels = 5 if true_density is not None else 4
    fig = Figure(figsize=(4 * (panels + 1), 4.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels + 1)
    show = dict(origin="lower", interpolation="nearest")
    gm, wm = plane(anatomy.gm), plane(anatomy.wm)
    axes[0].imshow(np.clip(np.stack([gm, wm, 0 * wm], -1), 0, 1), **show)
    axes[0].set_title("anatomy (WM green, GM red)")
    axes[1].imshow(tissue, cmap="gray", **show)
    axes[1].imshow(np.ma.masked_equal(seg, 0), cmap="autumn", alpha=0.7, **show)
    axes[1].set_title("segmentation (core, edema)")
    i = 2
    if true_density is not None:
        axes[i].imshow(plane(true_density), vmin=0, vmax=1, cmap="magma", **show)
        axes[i].set_title("true density")
        i += 1
    axes[i].imshow(plane(result.density), vmin=0, vmax=1, cmap="magma", **show)
    axes[i].set_title(f"inferred: D·T {result.D_w_T:.3g} mm², ρ·T {result.rho_T:.3g}")
    i += 1
    axes[i].imshow(tissue, cmap="gray", **show)
    axes[i].contour(margin, levels=[0.5], colors="tab:blue")
    axes[i].contour(by_density, levels=[0.5], colors="tab:orange")
    title = f"plans: {margin_mm:g} mm margin (blue), density (orange)"
    if true_density is not None:
        axes[i].contour(plane(np.asarray(true_density) >= 1e-3), levels=[0.5], colors="tab:green")
        title += ",\ntrue c ≥ 0.001 (green)"
    axes[i].set_title(title, fontsize=9)
    for ax in axes[: i + 1]:
        ax.set_xticks([])
        ax.set_yticks([])
    ax = axes[i + 1]
    ax.semilogy(result.loss)
    ax.set_xlabel("step")
    ax.set_title("loss")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def setup(
    data: SyntheticPatient | Anatomy,
    segmentation: ArrayLike | None = None,
    pet: ArrayLike | None = None,
    *,
    nt: int = 64,
    r: float = 20.0,
    weights: Weights = Weights(),
    pad_mm: float = 20.0,
    levels: int = 4,
    ratios: Sequence[float] = (0.25, 1.0, 4.0),
    initial: dict | None = None,
) -> tuple[GliodilProblem, list[tuple[Array, dict]]]:
    """The GliODIL problem of a scan and its initial guesses (what `infer` optimises).

    Call it under ``jax.enable_x64(True)`` (as `infer` does) for a float64 problem.

    Arguments:
        data, segmentation, pet, nt, r, weights, pad_mm, levels, ratios, initial: as `infer`.

    Returns:
        the `GliodilProblem`, and per initial guess its unknown vector and parameters.
    """
    anatomy, seg, pet = _inputs(data, segmentation, pet)
    if isinstance(nt, bool) or int(nt) != nt or nt < 3:
        raise SpecError(f"expected nt >= 3 time levels, got {nt!r}", path="nt")
    if isinstance(levels, bool) or int(levels) != levels or levels < 1:
        raise SpecError(f"expected levels >= 1, got {levels!r}", path="levels")
    nt, levels = int(nt), int(levels)
    r = glioma._number(r, "r")
    pad_mm = glioma._number(pad_mm, "pad_mm", allow_low=True)
    ratios = [glioma._number(q, "ratios") for q in np.atleast_1d(ratios)]
    if not ratios:
        raise SpecError("expected at least one initial ratio D_w / rho (mm^2)", path="ratios")
    guess = dict(initial or {})
    unknown = set(guess) - {"D_w_T", "rho_T", "origin_mm", "th_up", "th_down"}
    if unknown:
        raise SpecError(
            f"unknown initial values {sorted(unknown)}; expected some of D_w_T, rho_T, "
            "origin_mm, th_up, th_down",
            path="initial",
        )
    if not (seg > 0).any():
        raise SpecError("the segmentation has no tumour voxel", path="segmentation")
    box = _box(anatomy, seg > 0, pad_mm)
    sub = _sub_anatomy(anatomy, box)
    tissue = sub.tissue
    seg_sub = np.where(tissue, seg[box], 0)
    core = np.isin(seg_sub, (ENHANCING, NECROTIC))
    if not (seg_sub > 0).any():
        raise SpecError("the segmentation has no tumour voxel in tissue", path="segmentation")
    centre = np.argwhere(core if core.any() else seg_sub > 0).mean(0)
    relative_D = np.where(tissue, sub.wm + sub.gm / r, 0.0).astype(np.float64)
    pet_sub = np.zeros(sub.shape) if pet is None else np.asarray(pet)[box]
    origin0 = glioma._origin_mm(sub, guess.get("origin_mm", sub.voxel_to_world(centre)))
    problem = GliodilProblem(
        tissue=jnp.asarray(tissue),
        relative_D=jnp.asarray(relative_D),
        points=jnp.asarray(sub.world_coordinates()),
        axes=jnp.asarray(sub.affine[:3, : sub.ndim]),
        origin0=jnp.asarray(origin0),
        segmentation=jnp.asarray(seg_sub),
        pet=jnp.asarray(pet_sub, relative_D.dtype),
        pet_mask=jnp.asarray(core & (pet_sub > 0)),
        spacing=tuple(sub.spacing),
        nt=nt,
        weights=weights,
        levels=tuple(tuple(-(-n // 2**k) for n in (nt, *sub.shape)) for k in range(levels)),
        box=tuple((b.start, b.stop) for b in box),
    )
    th_up0 = float(guess.get("th_up", np.mean(THRESHOLD_BOUNDS["th_up"])))
    th_down0 = float(guess.get("th_down", np.mean(THRESHOLD_BOUNDS["th_down"])))
    seed = problem.seed(jnp.asarray(origin0))
    if "D_w_T" in guess and "rho_T" in guess:
        pairs = [(float(guess["D_w_T"]), float(guess["rho_T"]))]
    else:
        pairs = []
        for ratio in ratios:
            D0 = _MID_RANGE * math.sqrt(ratio)
            rho0 = _MID_RANGE / math.sqrt(ratio)
            steps = max(3 * (nt - 1), math.ceil(6 * rho0))  # rho dtau <= 0.5
            search = solve_crank_nicolson(
                seed, D0 * relative_D, rho0, 3.0, spacing=sub.spacing, steps=steps
            )
            score = _segmentation_score(np.asarray(search.c), seg_sub, th_up0, th_down0)
            t = float(search.t[int(np.argmax(score[1:])) + 1])
            pairs.append((D0 * t, rho0 * t))
    starts = []
    for D0, rho0 in pairs:
        if rho0 * problem.dtau >= 2:
            raise SpecError(
                f"nt = {nt} levels are too few for rho T = {rho0:.3g} (rho T dtau = "
                f"{rho0 * problem.dtau:.2g}; Crank–Nicolson needs < 2, accuracy < 0.5)",
                path="nt",
            )
        run = solve_crank_nicolson(
            seed, D0 * relative_D, rho0, 1.0, spacing=sub.spacing, steps=nt - 1
        )
        final = np.asarray(run.c[-1])
        scale0 = float(final[core].max()) if (core.any() and pet is not None) else 1.0
        start = {
            "D_w_T": D0,
            "rho_T": rho0,
            "origin_mm": origin0,
            "th_up": th_up0,
            "th_down": th_down0,
            "pet_scale": scale0,
        }
        starts.append((problem.unknowns(run.c, problem.theta(start)), start))
    return problem, starts


def infer(
    data: SyntheticPatient | Anatomy,
    segmentation: ArrayLike | None = None,
    pet: ArrayLike | None = None,
    *,
    nt: int = 64,
    steps: int = 30,
    optimizer: GaussNewton | optax.GradientTransformation | None = None,
    ratios: Sequence[float] = (0.25, 1.0, 4.0),
    r: float = 20.0,
    weights: Weights = Weights(),
    initial: dict | None = None,
    pad_mm: float = 20.0,
    levels: int = 4,
    callback: Callable[[int, float, dict], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> GliodilResult:
    """Infer a glioma's cell density and growth parameters from one scan by GliODIL.

    The unknowns (module docstring) live on the anatomy's grid cropped to the visible
    tumour's bounding box plus ``pad_mm`` per side, on ``nt`` levels of tau = t / T in
    [0, 1]. Runs in float64 (a `jax.enable_x64` context).

    Initial guesses (GliODIL's "forward_character_dice_breaking", once per entry of
    ``ratios``): with D_w T / rho T = ratio at the cohort's geometric mid-range product, a
    Crank–Nicolson run from the Gaussian seed at the centre of mass of the enhancing core
    (all labels if there is none) to tau = 3; the level whose segmentation, with mid-range
    thresholds, matches the data best (core and edema Dice, weighted by their volumes) sets
    the time scale tau*, so D_w T and rho T start at tau* times those values and the field at
    a run with them. One scan constrains the product D_w rho far better than the ratio, so the
    optimisation runs from each and keeps the lowest loss.

    Example:
        >>> anatomy = load_atlas(2).axial_slice(46).crop()
        >>> patient = synthetic_patient(anatomy, origin=(-28.0, -10.0))
        >>> result = infer(patient)
        >>> result.D_w_T, result.rho_T      # about 10 mm^2 and 10
        >>> result.write("out", patient)    # NIfTI, summary.json, a figure

    Arguments:
        data: a `SyntheticPatient` (its segmentation and PET are used; its truth is not), or
            the `Anatomy` of one's own scan with ``segmentation`` (and optionally ``pet``).
        segmentation: labels 0, 1 (enhancing), 3 (edema), 4 (necrotic: part of the core), on
            the anatomy's grid (e.g. `glioma.read_nifti`).
        pet: a PET signal on the anatomy's grid (any scale: it is normalised to a maximum of
            1; rows where it is positive in the core).
        nt: time levels (PDE rows between successive ones); 64 keeps the Crank–Nicolson
            error in the front speed below a few per cent up to rho T = 20.
        steps: optimiser steps per initial guess.
        optimizer: `GaussNewton` (the default) or any optax gradient transformation, which is
            then run on the whole unknown vector (field on multigrid levels and parameters)
            with the PDE and initial condition as weighted penalty rows, as in the paper.
        ratios: initial D_w T / rho T ratios (mm^2), one optimisation each (the cohort's
            range: 0.18 to 5.7).
        r: the ratio D_w / D_g (given, not inferred).
        weights: the weights of the loss rows (`Weights`).
        initial: values to start from instead of the guesses above (any of "D_w_T",
            "rho_T", "origin_mm", "th_up", "th_down"; with both D_w_T and rho_T, a single
            start, no Dice search).
        pad_mm: the margin of the crop box around the visible tumour, mm.
        levels: multigrid levels of the field for an optax optimizer (1: the plain grid).
        callback: called after every step as ``callback(step, loss, parameters)``
            (``parameters["start"]``: the index of the initial guess).
        checkpoint: a folder to keep the optimisation state in, written atomically after
            every step. If it holds a state of the same problem, `infer` continues from it
            (the finished initial guesses are not redone). With a checkpoint, Ctrl-C (SIGINT)
            or SIGTERM stops after the current step with `InterruptedRun`.

    Returns:
        a `GliodilResult`.

    Raises:
        DivergenceError: a step gave a non-finite loss (an optax optimizer with too large a
            learning rate); the checkpoint keeps the last finite state.
        InterruptedRun: stopped by a signal (only with a checkpoint).
    """
    start = time.perf_counter()
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise SpecError(f"expected a number of steps >= 0, got {steps!r}", path="steps")
    steps = int(steps)
    with jax.enable_x64(True):
        problem, starts = setup(
            data,
            segmentation,
            pet,
            nt=nt,
            r=r,
            weights=weights,
            pad_mm=pad_mm,
            levels=levels,
            ratios=ratios,
            initial=initial,
        )
        objective = GliodilObjective(problem)
        phase = Phase(_step_of(optimizer, starts[0][0]), steps)
        store = _Store(checkpoint, problem, starts)
        runs, elapsed = store.restore()
        for index in range(len(runs), len(starts)):
            z, losses, terms = _optimise(
                objective,
                index,
                starts[index],
                phase,
                store,
                runs,
                callback,
                elapsed + time.perf_counter() - start,
            )
            runs.append({"z": z, "losses": losses, "terms": terms, "start": starts[index][1]})
            store.finished(runs, elapsed + time.perf_counter() - start)
        for run in runs:
            run["summary"] = {
                "initial": _jsonable(run["start"]),
                "final": _jsonable(problem.parameters(run["z"][problem.n_field :])),
                "loss": run["losses"][-1],
            }
        best = min(runs, key=lambda run: run["losses"][-1])
        z = best["z"]
        params = _jsonable(problem.parameters(z[problem.n_field :]))
        c_box = np.asarray(problem.field(z))

    anatomy, seg, pet = _inputs(data, segmentation, pet)
    box = tuple(slice(a, b) for a, b in problem.box)
    field = np.zeros((problem.nt, *anatomy.shape))
    field[(slice(None), *box)] = c_box
    return GliodilResult(
        density=field[-1],
        field=field,
        tau=np.linspace(0.0, 1.0, problem.nt),
        D_w_T=params["D_w_T"],
        rho_T=params["rho_T"],
        r=float(r),
        origin_mm=tuple(params["origin_mm"]),
        th_up=params["th_up"],
        th_down=params["th_down"],
        pet_scale=None if pet is None else params["pet_scale"],
        loss=np.asarray(best["losses"]),
        terms={k: np.asarray(v) for k, v in best["terms"].items()},
        initial_guess=best["summary"]["initial"],
        starts=[run["summary"] for run in runs],
        wall_time_s=elapsed + time.perf_counter() - start,
        segmentation=seg,
        pet=pet,
        box=box,
    )


GaussNewton = EliminatedGaussNewtonStep
"""GliODIL's default optimiser: Levenberg–Marquardt on the parameters with the field
eliminated (`pinnkit.train.steps.EliminatedGaussNewtonStep`). The physics rows (initial
condition and PDE) are square in c: for any parameters theta there is one field that zeroes
them, the Crank–Nicolson solution c(theta); each step solves for it, differentiates the data
rows through that solve in forward mode and takes a damped Gauss–Newton step for theta (7
unknowns in 2D). Unlike the whole-vector method it needs no linear solve over the field, which
fills in like a 3D grid's and whose damped steps the e^(rho T) growth of early perturbations
makes ill-conditioned.

The seed's cutoff (c0 = 0 below 0.1) makes the loss a fine staircase in the origin: when a
voxel crosses it the linear model misses the jump, the step is rejected and the damping grows,
so the last digits of the loss come slowly (a few tenths of a millimetre of origin)."""


class Unknowns(eqx.Module):
    """The model the trainer moves for GliODIL: the unknown vector z of a `GliodilProblem`."""

    z: Array


@dataclasses.dataclass(frozen=True)
class _NoDraws:
    resamples: bool = False


TERMS = ("pde", "initial", "segmentation", "pet")


class GliodilObjective(AbstractObjective, AbstractSeparable):
    """The GliODIL loss of a problem as an objective of `pinnkit.train.train`: one term per
    kind of residual row (each the sum of its squared, already weighted rows), no points; and
    its separable form (the field eliminated by the Crank–Nicolson solve) for
    `EliminatedGaussNewtonStep`."""

    def __init__(self, problem: GliodilProblem):
        self.problem = problem
        self.terms = [Term(name, name, "residual") for name in TERMS]
        self.dtype = jnp.float64
        self.sampler = _NoDraws()

    def sample(self, *, score=None, key) -> dict:
        del score, key
        return {}

    def squared(self, model, unknowns, points) -> dict:
        del unknowns, points
        return {k: jnp.sum(v**2) for k, v in self.problem.residuals(model.z).items()}

    def least_squares(self, model, unknowns, points, weights):
        del unknowns, points, weights  # the rows carry their weights
        return self.problem.flat(model.z)

    def theta_of(self, params):
        return params[0].z[self.problem.n_field :]

    def eliminate(self, theta):
        return self.problem.forward(theta)

    def data_residual(self, theta, field):
        return self.problem.gather(self.problem.rows(field, theta)[1])

    def assemble(self, params, theta, field):
        return eqx.tree_at(lambda p: p[0].z, params, self.problem.unknowns(field, theta))


def _step_of(optimizer, z0) -> AbstractStep:
    """The trainer's step for `infer`'s ``optimizer``: a step object as it is; an optax
    transformation whose state keeps the loss value (L-BFGS) with its line search, any other
    as a plain gradient step (whose non-finite loss is a divergence)."""
    if optimizer is None:
        return GaussNewton()
    if isinstance(optimizer, AbstractStep):
        return optimizer
    if optax.tree_utils.tree_get(optimizer.init(z0), "value", None) is not None:
        return LineSearchStep(optimizer, "lbfgs")
    return OptaxStep(optimizer, "optax")


def _jsonable(params: dict) -> dict:
    return {
        k: [float(x) for x in np.ravel(v)] if np.ndim(v) else float(v) for k, v in params.items()
    }


class _Store:
    """`infer`'s checkpoint folder: ``meta.json`` and ``state-*.eqx`` (the finished starts'
    unknown vectors, the histories, the time spent), and ``start<i>/``, the trainer's checkpoint
    of the start in progress. Every file is written atomically (`Checkpointer`), the trainer's
    after the history that covers it, so a kill at any moment leaves a state to resume."""

    def __init__(self, directory, problem: GliodilProblem, starts):
        self.directory = None if directory is None else pathlib.Path(directory)
        self.problem, self.starts = problem, starts
        self.meta: dict = {}

    def checkpointer(self, index: int) -> Checkpointer | None:
        return None if self.directory is None else Checkpointer(self.directory / f"start{index}")

    def restore(self) -> tuple[list, float]:
        """(the finished starts, seconds already spent); nothing without a checkpoint."""
        if self.directory is None or not Checkpointer(self.directory).exists():
            return [], 0.0
        top = Checkpointer(self.directory)
        meta = top.meta()
        n = self.problem.n_unknowns
        if meta.get("n_unknowns") != n or meta.get("start", len(self.starts)) > len(self.starts):
            raise SpecError(
                f"the checkpoint in {str(self.directory)!r} is of another problem "
                f"({meta.get('n_unknowns')} unknowns, start {meta.get('start')}; this one has "
                f"{n} unknowns and {len(self.starts)} starts); remove it or choose another folder",
                path="checkpoint",
            )
        saved, _ = top.load({"done": jnp.zeros((len(meta["runs"]), n))})
        runs = [
            {"z": z, "losses": run["losses"], "terms": run["terms"], "start": self.starts[i][1]}
            for i, (z, run) in enumerate(zip(saved["done"], meta["runs"], strict=True))
        ]
        self.meta = meta
        return runs, float(meta["elapsed_s"])

    def current(self, index: int):
        """(resume, (losses, terms) or None): the history of start ``index`` cut back to its
        trainer checkpoint's step."""
        ckpt = self.checkpointer(index)
        current = self.meta.get("current")
        if ckpt is None or not ckpt.exists() or current is None or current["index"] != index:
            return False, None
        step = int(ckpt.meta()["step"])
        losses = current["losses"][: step + 1]
        terms = {k: v[: step + 1] for k, v in current["terms"].items()}
        return True, (losses, terms)

    def save(self, runs, elapsed, current=None) -> None:
        if self.directory is None:
            return
        n = self.problem.n_unknowns
        done = jnp.stack([run["z"] for run in runs]) if runs else jnp.zeros((0, n))
        self.meta = {
            "step": sum(len(run["losses"]) for run in runs)
            + (len(current["losses"]) if current else 0),
            "n_unknowns": n,
            "start": len(runs),
            "runs": [
                {"losses": run["losses"], "terms": run["terms"], "start": _jsonable(run["start"])}
                for run in runs
            ],
            "current": current,
            "elapsed_s": elapsed,
        }
        Checkpointer(self.directory).save({"done": done}, self.meta)

    def finished(self, runs, elapsed) -> None:
        """Record a finished start, then drop its trainer checkpoint."""
        self.save(runs, elapsed)
        if self.directory is not None:
            shutil.rmtree(self.directory / f"start{len(runs) - 1}", ignore_errors=True)


def _optimise(objective, index, start, phase, store, runs, callback, elapsed):
    """Run one start through the trainer, continuing its checkpoint if there is one. Returns
    (final z, losses, terms), the histories from the start's initial loss on."""
    problem = objective.problem
    z0, start_params = start
    resume, history = store.current(index)
    if history is None:
        first = jax.jit(lambda z: objective.squared(Unknowns(z), {}, {}))(z0)
        terms = {k: [float(v)] for k, v in first.items()}
        history = ([sum(v[0] for v in terms.values())], terms)
    losses, terms = history
    t0 = time.perf_counter()

    def progress():
        current = {"index": index, "losses": losses, "terms": terms}
        store.save(runs, elapsed + time.perf_counter() - t0, current)

    progress()

    def monitor(model, unknowns):
        del unknowns
        return {"parameters": problem.parameters(model.z[problem.n_field :])}

    def log(entry):
        losses.append(entry["loss"])
        for name, value in entry["terms"].items():
            terms[name].append(value)
        progress()  # before the trainer's checkpoint of this step
        if callback is not None:
            params = {n: np.asarray(v) for n, v in entry["parameters"].items()}
            callback(entry["step"], entry["loss"], {**params, "start": index})

    model, _, record = train(
        None,
        Unknowns(jnp.asarray(z0)),
        phases=[phase],
        objective=objective,
        unknowns={},
        chunk=1,
        checkpoint=store.checkpointer(index),
        checkpoint_every=1,
        resume=resume,
        log=log,
        monitor=monitor,
        key=jax.random.key(0),
    )
    if record.status == "diverged":
        raise DivergenceError(
            f"a step of start {index} gave a non-finite loss; the last finite state is kept. "
            "Lower the learning rate, or use the Gauss–Newton optimiser"
        )
    if record.status == "interrupted":
        raise InterruptedRun(
            f"stopped after step {len(losses) - 1} of {phase.steps}; the checkpoint is kept"
        )
    return model.z, losses, terms


def checkpoint_progress(directory) -> tuple[int, int] | None:
    """(the start in progress, the steps it has done) that an `infer` checkpoint folder holds
    (the number of starts and 0 when all are done); None without a checkpoint."""
    store = Checkpointer(directory)
    if not store.exists():
        return None
    start = int(store.meta().get("start", 0))
    current = Checkpointer(pathlib.Path(directory) / f"start{start}")
    return start, int(current.meta()["step"]) if current.exists() else 0
