"""Glioma growth by the Fisher–Kolmogorov equation: anatomy, forward solver, synthetic patients
and radiotherapy plan metrics (the reference and data half of the GliODIL problem).

The model, in millimetres and days (Balcerak et al. 2023, "Individualizing Glioma Radiotherapy
Planning by Optimization of Data and Physics-Informed Discrete Loss", arXiv:2312.05063):

    dc/dt = div(D(x) grad c) + rho c (1 - c),      D(x) = D_w (m_WM(x) + m_GM(x) / r),

c the tumour cell density (a fraction of the carrying capacity, in [0, 1]), m_WM and m_GM the
white- and grey-matter probabilities of a voxel, D_w the diffusivity in white matter (mm^2/day),
r = D_w / D_g the white-to-grey diffusivity ratio and rho the proliferation rate (1/day). Cells
do not enter cerebrospinal fluid or the background: a voxel is *tissue* when
m_WM + m_GM >= `TISSUE_THRESHOLD` (0.1, GliODIL's ``th_matter``), D = 0 elsewhere, and no flux
crosses a face with non-tissue on either side.

Space. Cell-centred finite volumes on the voxel grid (spacing h_k mm along axis k, any number of
axes): the flux through the face between neighbours i and j is F = D_ij (c_j - c_i) / h_k with
the face diffusivity D_ij = (D_i + D_j) / 2 when both cells are tissue and 0 otherwise; the
outer walls of the grid carry no flux. The arithmetic face mean with a tissue mask is GliODIL's
(their ``m_Tildas``), so the data here and the discrete physics of the inverse agree; a harmonic
mean would differ only on white/grey interfaces (where it weights the slower grey matter more).
The discrete divergence telescopes, so with rho = 0 the mass sum c h^d is conserved to
round-off (tested).

Time. Heun's method (the strong-stability-preserving RK2, an average of two forward-Euler
steps), second order, run by `jax.lax.scan` in one compiled program. With
S_i = sum over the faces of cell i of D_face / h_k^2, a forward-Euler step maps [0, 1] into
itself when dt (max_i S_i + rho) <= 1 (the new value is a convex combination of neighbours plus
a monotone logistic term), hence so does Heun's: the default step is the largest one that obeys
this bound and rho dt <= 0.1, and larger steps are refused. The time step then changes the
Fisher front speed by less than 1 % (the linearised front gives a relative error of about
(2 rho dt)^2 / 6).

Where pinnkit differs from GliODIL's generator (their ``synthetic_generator.py``): Heun instead
of forward Euler, physical voxel spacing (mm) instead of unit voxels, the MNI ICBM152 tissue maps
of nilearn (their data: a 192^3 atlas), no necrotic core unless ``th_necro`` is given, and a PET
signal without their downsampling blur. The parameter ranges, the initial density and the
segmentation labels are theirs.

A single scan identifies only D_w T and rho T: rescaling time t = T s turns the equation into
dc/ds = div(T D grad c) + (rho T) c (1 - c), so (D_w, rho, T) and (a D_w, a rho, T / a) give the
same final density for every a > 0. `TumourTruth` records both the parameters and these products.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import re
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from pinnkit.errors import SpecError

__all__ = [
    "Anatomy",
    "EDEMA",
    "ENHANCING",
    "FKSolution",
    "NECROTIC",
    "PARAMETER_RANGES",
    "PlanComparison",
    "SyntheticPatient",
    "TISSUE_THRESHOLD",
    "TumourTruth",
    "compare_plans",
    "coverage",
    "density_plan",
    "dice",
    "diffusivity",
    "initial_density",
    "load_atlas",
    "margin_plan",
    "pet_signal",
    "read_nifti",
    "patient_spec",
    "read_patient",
    "read_tissue",
    "segment",
    "solve_fisher_kolmogorov",
    "stable_time_step",
    "synthetic_patient",
    "write_nifti",
    "write_patient",
]

TISSUE_THRESHOLD = 0.1
"""A voxel is brain tissue when m_WM + m_GM >= this (GliODIL's ``th_matter``)."""

# Segmentation labels as GliODIL's reader expects them (1 enhancing, 3 edema, 4 necrotic).
ENHANCING = 1
EDEMA = 3
NECROTIC = 4

PARAMETER_RANGES = {
    "D_w": (0.035, 0.2),  # mm^2/day
    "rho": (0.035, 0.2),  # 1/day
    "r": (10.0, 30.0),  # D_w / D_g
    "th_up": (0.45, 0.60),
    "th_down": (0.15, 0.35),
    "th_necro": (0.70, 0.85),
}
"""The uniform ranges of GliODIL's synthetic cohort (their ``run_synthetic_generator1T.py``)."""

# GliODIL's initial density: M / (4 pi Dt)^(3/2) exp(-|x|^2 / (4 Dt)) with Dt = 15 mm^2 and
# M = 1500, i.e. a Gaussian of peak 0.58 and standard deviation sqrt(30) mm, set to 0 below 0.1.
_INITIAL_AMPLITUDE = 1500.0 / (4 * math.pi * 15.0) ** 1.5
_INITIAL_WIDTH_MM = math.sqrt(30.0)
_INITIAL_CUTOFF = 0.1
_MAX_RHO_DT = 0.1  # accuracy limit of the default step (front speed error below 1 %)


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _number(value, name: str, *, low: float = 0.0, allow_low: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"expected a number, got {value!r}", path=name) from None
    if not math.isfinite(v) or v < low or (v == low and not allow_low):
        bound = f">= {low:g}" if allow_low else f"> {low:g}"
        raise SpecError(f"expected a finite number {bound}, got {value!r}", path=name)
    return v


def _thresholds(th_up, th_down, th_necro) -> tuple[float, float, float | None]:
    th_up = _number(th_up, "th_up")
    th_down = _number(th_down, "th_down")
    if not th_down < th_up <= 1.0:
        raise SpecError(
            f"expected 0 < th_down < th_up <= 1, got th_down = {th_down:g}, th_up = {th_up:g}",
            path="th_up",
        )
    if th_necro is not None:
        th_necro = _number(th_necro, "th_necro")
        if not th_up < th_necro <= 1.0:
            raise SpecError(
                f"expected th_up < th_necro <= 1, got th_necro = {th_necro:g} "
                f"(th_up = {th_up:g}); or None for no necrotic label",
                path="th_necro",
            )
    return th_up, th_down, th_necro


# --------------------------------------------------------------------------------------------
# Anatomy and NIfTI input/output
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Anatomy:
    """White- and grey-matter probability maps on a voxel grid, with its NIfTI affine.

    Volumes are 3D arrays (i, j, k); a 2D anatomy (`axial_slice`) has arrays (i, j) and keeps
    the 4 x 4 affine of its slice, whose voxel (i, j, 0) is the 3D voxel (i, j, z). Tissue is
    where m_WM + m_GM >= `TISSUE_THRESHOLD`; the rest (cerebrospinal fluid, background) has no
    tumour cells and carries no flux.

    Attributes:
        wm: white-matter probabilities in [0, 1], float32.
        gm: grey-matter probabilities in [0, 1], float32, same shape.
        affine: the 4 x 4 map from voxel indices (i, j, k, 1) to world millimetres (RAS for the
            MNI template).
        spacing: the voxel size in mm along each array axis (the norms of the affine's
            columns), one entry per axis of ``wm``.
    """

    wm: np.ndarray
    gm: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, ...]

    def __post_init__(self):
        wm = np.asarray(self.wm, np.float32)
        gm = np.asarray(self.gm, np.float32)
        if wm.shape != gm.shape or wm.ndim not in (2, 3):
            raise SpecError(
                f"expected white- and grey-matter maps of one 2D or 3D shape, got {wm.shape} "
                f"and {gm.shape}",
                path="anatomy",
            )
        if wm.min(initial=0) < -1e-3 or gm.min(initial=0) < -1e-3 or (wm + gm).max() > 1.01:
            raise SpecError(
                "expected tissue probabilities in [0, 1] with m_WM + m_GM <= 1, got values in "
                f"[{min(wm.min(), gm.min()):g}, {max(wm.max(), gm.max()):g}] (max sum "
                f"{(wm + gm).max():g}); rescale maps stored as 0..255 or 0..100",
                path="anatomy",
            )
        affine = np.asarray(self.affine, np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise SpecError(f"expected a finite 4 x 4 affine, got {affine.shape}", path="affine")
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != wm.ndim or not all(s > 0 for s in spacing):
            raise SpecError(
                f"expected {wm.ndim} positive voxel sizes (mm), got {self.spacing}",
                path="spacing",
            )
        object.__setattr__(self, "wm", np.clip(wm, 0.0, 1.0))
        object.__setattr__(self, "gm", np.clip(gm, 0.0, 1.0))
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "spacing", spacing)

    @classmethod
    def from_maps(cls, wm: ArrayLike, gm: ArrayLike, affine: ArrayLike) -> Anatomy:
        """An anatomy whose spacing is read off the affine (3D maps, or 2D with k = 0)."""
        affine = np.asarray(affine, np.float64)
        wm = np.asarray(wm)
        spacing = tuple(np.linalg.norm(affine[:3, :3], axis=0)[: wm.ndim])
        return cls(wm, gm, affine, spacing)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.wm.shape

    @property
    def ndim(self) -> int:
        return self.wm.ndim

    @property
    def voxel_volume(self) -> float:
        """mm^3 per voxel in 3D, mm^2 per pixel in 2D."""
        return float(np.prod(self.spacing))

    @property
    def tissue(self) -> np.ndarray:
        """The brain-tissue mask m_WM + m_GM >= `TISSUE_THRESHOLD` (bool)."""
        return (self.wm + self.gm) >= TISSUE_THRESHOLD

    def voxel_to_world(self, index: Sequence[float]) -> np.ndarray:
        """World coordinates (mm, shape (3,)) of a voxel index (fractional allowed; a 2D
        anatomy takes (i, j))."""
        index = np.asarray(index, np.float64)
        if index.shape != (self.ndim,):
            raise SpecError(f"expected {self.ndim} voxel indices, got {index.tolist()}", "index")
        full = np.zeros(4)
        full[: self.ndim] = index
        full[3] = 1.0
        return (self.affine @ full)[:3]

    def world_to_voxel(self, point_mm: Sequence[float]) -> np.ndarray:
        """The fractional voxel index (shape (ndim,)) of a world point in mm. A 2D anatomy takes
        (x, y, z) or (x, y) (z of the slice) and returns (i, j) of the point's projection."""
        p = _origin_mm(self, point_mm)
        return (np.linalg.solve(self.affine, np.r_[p, 1.0]))[: self.ndim]

    def world_coordinates(self) -> np.ndarray:
        """The world coordinates (mm) of every voxel centre, shape (*shape, 3)."""
        grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in self.shape], indexing="ij")
        index = np.stack(grids, -1)
        return index @ self.affine[:3, : self.ndim].T + self.affine[:3, 3]

    def axial_slice(self, z: int) -> Anatomy:
        """The 2D anatomy of the plane k = z of a volume (axial for RAS- or LAS-oriented images
        such as the MNI template; `world_to_voxel` gives z for a height in mm)."""
        if self.ndim != 3:
            raise SpecError("axial_slice needs a 3D anatomy", path="anatomy")
        if isinstance(z, bool) or int(z) != z or not 0 <= z < self.shape[2]:
            raise SpecError(
                f"expected a slice index 0 <= z < {self.shape[2]}, got {z!r}", path="slice"
            )
        z = int(z)
        affine = self.affine.copy()
        affine[:3, 3] = self.affine[:3, :3] @ [0.0, 0.0, z] + self.affine[:3, 3]
        return Anatomy(self.wm[:, :, z], self.gm[:, :, z], affine, self.spacing[:2])

    def crop(self, pad: int = 2) -> Anatomy:
        """The anatomy on the bounding box of its tissue, widened by ``pad`` voxels of background
        per side (within the grid), with the affine shifted so world positions are kept."""
        if isinstance(pad, bool) or int(pad) != pad or pad < 0:
            raise SpecError(f"expected a non-negative integer, got {pad!r}", path="pad")
        tissue = self.tissue
        if not tissue.any():
            raise SpecError("the anatomy has no tissue voxel to crop to", path="anatomy")
        lo, hi = [], []
        for axis in range(self.ndim):
            other = tuple(a for a in range(self.ndim) if a != axis)
            idx = np.flatnonzero(tissue.any(axis=other))
            lo.append(max(int(idx[0]) - pad, 0))
            hi.append(min(int(idx[-1]) + 1 + pad, self.shape[axis]))
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        affine = self.affine.copy()
        affine[:3, 3] = self.affine[:3, : self.ndim] @ np.asarray(lo, float) + self.affine[:3, 3]
        return Anatomy(self.wm[box], self.gm[box], affine, self.spacing)

    def coarsen(self, factor: int) -> Anatomy:
        """Block averages of ``factor`` voxels per axis (the grid padded with background to a
        multiple of it): partial-volume probabilities on a grid ``factor`` times coarser."""
        if isinstance(factor, bool) or int(factor) != factor or factor < 1:
            raise SpecError(f"expected a positive integer, got {factor!r}", path="factor")
        f = int(factor)
        if f == 1:
            return self

        def block_mean(a: np.ndarray) -> np.ndarray:
            pad = [(0, -n % f) for n in a.shape]
            a = np.pad(a, pad)
            shape = [m for n in a.shape for m in (n // f, f)]
            return a.reshape(shape).mean(axis=tuple(range(1, 2 * a.ndim, 2)))

        affine = self.affine.copy()
        affine[:3, : self.ndim] *= f
        # the centre of block 0 is voxel (f - 1) / 2 of the fine grid
        shift = np.full(self.ndim, (f - 1) / 2)
        affine[:3, 3] = self.affine[:3, : self.ndim] @ shift + self.affine[:3, 3]
        spacing = tuple(s * f for s in self.spacing)
        return Anatomy(block_mean(self.wm), block_mean(self.gm), affine, spacing)


def load_atlas(resolution: int = 2) -> Anatomy:
    """The MNI ICBM152 (2009) white- and grey-matter probability maps that nilearn ships.

    Offline: the maps are bundled with nilearn (``nilearn.datasets.load_mni152_wm_template``
    and ``load_mni152_gm_template``), resampled by it to the requested voxel size. At 2 mm the
    grid is 99 x 117 x 95 (RAS, world origin at voxel (49, 67, 36)); `Anatomy.crop` trims it to
    the brain.

    Arguments:
        resolution: the voxel size in whole mm (1 is the template's own grid).

    Returns:
        the 3D `Anatomy`.
    """
    if isinstance(resolution, bool) or int(resolution) != resolution or resolution < 1:
        raise SpecError(f"expected a whole number of mm >= 1, got {resolution!r}", "resolution")
    resolution = int(resolution)
    try:
        from nilearn import datasets
    except ImportError as e:  # pragma: no cover - an optional dependency
        raise SpecError(
            "load_atlas needs nilearn (pip install nilearn nibabel)", path="load_atlas"
        ) from e
    wm = datasets.load_mni152_wm_template(resolution=resolution)
    gm = datasets.load_mni152_gm_template(resolution=resolution)
    return Anatomy.from_maps(
        np.asarray(wm.get_fdata(dtype=np.float32)),
        np.asarray(gm.get_fdata(dtype=np.float32)),
        wm.affine,
    )


def write_nifti(path: str | os.PathLike, array: ArrayLike, affine: ArrayLike) -> pathlib.Path:
    """Write an array as a NIfTI-1 image (``.nii`` or ``.nii.gz``).

    A 2D array is written as a volume with one slice (shape (i, j, 1)), so the affine keeps its
    world position. Floats are stored as float32, booleans as uint8, integers as uint8 or int16
    (no intensity scaling, so `read_nifti` gives the values back exactly).

    Arguments:
        path: the file to write.
        array: a 2D or 3D array.
        affine: the 4 x 4 voxel-to-world (mm) matrix.

    Returns:
        the path written.
    """
    import nibabel as nib

    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise SpecError(f"expected a 2D or 3D array, got shape {a.shape}", path="array")
    if a.dtype == bool:
        a = a.astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.uint8 if a.min(initial=0) >= 0 and a.max(initial=0) < 256 else np.int16)
    else:
        a = a.astype(np.float32)
    image = nib.Nifti1Image(a, np.asarray(affine, np.float64))
    image.header.set_data_dtype(a.dtype)
    image.set_qform(np.asarray(affine, np.float64), code=1)
    image.set_sform(np.asarray(affine, np.float64), code=1)
    path = pathlib.Path(path)
    nib.save(image, str(path))
    return path


def read_nifti(path: str | os.PathLike, *, ndim: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI image written by `write_nifti` (or any 3D NIfTI file).

    Arguments:
        path: the file.
        ndim: 2 to drop the single slice of a 2D image written by `write_nifti`.

    Returns:
        (array, affine): float32 for floating images, the stored integer type otherwise.
    """
    import nibabel as nib

    try:
        image = nib.load(str(path))
        scaled = getattr(image.dataobj, "slope", 1.0) != 1.0 or getattr(image.dataobj, "inter", 0.0)
        if np.issubdtype(image.get_data_dtype(), np.floating) or scaled:
            array = np.asarray(image.get_fdata(dtype=np.float32))
        else:
            array = np.asarray(image.dataobj)
        affine = np.asarray(image.affine, np.float64)
    except Exception as e:  # noqa: BLE001 - whatever nibabel finds wrong with the file
        raise SpecError(
            f"{path}: not a readable NIfTI image ({type(e).__name__}: {str(e)[:120]}); give a "
            ".nii or .nii.gz file"
        ) from None
    if array.ndim < 3 or any(n != 1 for n in array.shape[3:]):
        raise SpecError(f"{path}: expected a 3D image (or one slice), got shape {array.shape}")
    array = array.reshape(array.shape[:3])  # drop trailing singleton axes of 4D files
    if not np.all(np.isfinite(array)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise SpecError(
            f"{path}: the value at voxel {where} is {array[where]}; values must be finite"
        )
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise SpecError(f"{path}: the image's affine is not an invertible finite matrix")
    if ndim == 2:
        if array.shape[2] != 1:
            raise SpecError(f"{path}: expected one slice for a 2D image, got {array.shape}")
        array = array[:, :, 0]
    return array, affine


def read_tissue(wm_path: str | os.PathLike, gm_path: str | os.PathLike) -> Anatomy:
    """A 3D `Anatomy` from a user's white- and grey-matter probability maps (NIfTI).

    Arguments:
        wm_path: the white-matter probability map (values in [0, 1]).
        gm_path: the grey-matter probability map, on the same grid.

    Returns:
        the anatomy, with the white-matter file's affine.
    """
    wm, affine = read_nifti(wm_path)
    gm, affine_gm = read_nifti(gm_path)
    if wm.shape != gm.shape or not np.allclose(affine, affine_gm, atol=1e-3):
        raise SpecError(
            f"the tissue maps are on different grids: {wm.shape} and {gm.shape} "
            "(or different affines); resample them to one grid first",
            path="gm_path",
        )
    return Anatomy.from_maps(wm.astype(np.float32), gm.astype(np.float32), affine)


# --------------------------------------------------------------------------------------------
# The forward Fisher–Kolmogorov solver
# --------------------------------------------------------------------------------------------


def diffusivity(anatomy: Anatomy, D_w: float, r: float) -> np.ndarray:
    """D = D_w (m_WM + m_GM / r) in tissue and 0 elsewhere (mm^2/day, float32).

    Arguments:
        anatomy: the tissue maps.
        D_w: the white-matter diffusivity, mm^2/day (GliODIL's range: 0.035 to 0.2).
        r: the ratio D_w / D_g of white- to grey-matter diffusivity (10 to 30).

    Returns:
        the diffusivity, shape ``anatomy.shape``.
    """
    D_w = _number(D_w, "D_w")
    r = _number(r, "r")
    D = D_w * (anatomy.wm + anatomy.gm / r)
    return np.where(anatomy.tissue, D, 0.0).astype(np.float32)


def _face_diffusivities(D: Array) -> tuple[Array, ...]:
    """Per axis k, the diffusivity of the n_k - 1 interior faces: the mean of the two cells',
    or 0 when either cell is outside the domain (D = 0)."""
    faces = []
    for k in range(D.ndim):
        n = D.shape[k]
        lo = jax.lax.slice_in_dim(D, 0, n - 1, axis=k)
        hi = jax.lax.slice_in_dim(D, 1, n, axis=k)
        faces.append(jnp.where((lo > 0) & (hi > 0), 0.5 * (lo + hi), 0.0))
    return tuple(faces)


def _pad_faces(flux: Array, axis: int) -> Array:
    """Fluxes through all n + 1 faces along ``axis``: the walls carry none."""
    pad = [(0, 0)] * flux.ndim
    pad[axis] = (1, 1)
    return jnp.pad(flux, pad)


def _rhs(c: Array, faces: tuple[Array, ...], inv_h2: tuple[float, ...], rho: Array) -> Array:
    """div(D grad c) + rho c (1 - c) by finite volumes (zero flux through walls and into D = 0)."""
    out = rho * c * (1.0 - c)
    for k, (face, w) in enumerate(zip(faces, inv_h2)):
        flux = face * jnp.diff(c, axis=k) * w
        out = out + jnp.diff(_pad_faces(flux, k), axis=k)
    return out


def _max_rate(D: np.ndarray, spacing: Sequence[float]) -> float:
    """max_i S_i, S_i = sum over the faces of cell i of D_face / h_k^2 (the faces of
    `_face_diffusivities`, in NumPy: the bound is needed before tracing)."""
    total = np.zeros(D.shape)
    for k, h in enumerate(spacing):
        d = np.moveaxis(D, k, 0)
        face = np.where((d[:-1] > 0) & (d[1:] > 0), 0.5 * (d[:-1] + d[1:]), 0.0)
        s = np.zeros(d.shape)
        s[:-1] += face
        s[1:] += face
        total += np.moveaxis(s, 0, k) / h**2
    return float(total.max(initial=0.0))


def stable_time_step(D: Float[ArrayLike, "*grid"], rho: float, spacing: Sequence[float]) -> float:
    """The largest step dt with dt (max_i S_i + rho) <= 1 (S_i: the sum of D_face / h^2 over
    the faces of cell i), for which every Heun step keeps c in [0, 1].

    Arguments:
        D: the diffusivity on the grid (mm^2/day; 0 outside the domain).
        rho: the proliferation rate (1/day).
        spacing: the voxel size in mm per axis.

    Returns:
        the bound in days.
    """
    D = np.asarray(D, np.float64)
    rate = _max_rate(D, tuple(float(s) for s in spacing)) + float(rho)
    return math.inf if rate == 0 else 1.0 / rate


@eqx.filter_jit
def _integrate(
    c0: Array,
    D: Array,
    rho: Array,
    dt: Array,
    inv_h2: tuple[float, ...],
    steps_per_save: int,
    saves: int,
) -> Array:
    """Snapshots (saves + 1, *grid) of Heun steps from c0; traced once per (shape, dtype,
    spacing, step counts)."""
    faces = _face_diffusivities(D)

    def euler(c: Array) -> Array:
        return c + dt * _rhs(c, faces, inv_h2, rho)

    def heun(c: Array, _) -> tuple[Array, None]:
        return 0.5 * (c + euler(euler(c))), None

    def block(c: Array, _) -> tuple[Array, Array]:
        c, _ = jax.lax.scan(heun, c, None, length=steps_per_save)
        return c, c

    _, snaps = jax.lax.scan(block, c0, None, length=saves)
    return jnp.concatenate([c0[None], snaps])


class FKSolution(eqx.Module):
    """Snapshots of `solve_fisher_kolmogorov`.

    Attributes:
        t: the snapshot times in days, t[0] = 0, shape (nt,).
        c: the density c[k] at t[k], shape (nt, *grid).
        dt: the time step used (days).
        steps: the number of Heun steps from 0 to the final time.
    """

    t: Float[Array, " nt"]
    c: Float[Array, " nt *grid"]
    dt: float = eqx.field(static=True)
    steps: int = eqx.field(static=True)


def solve_fisher_kolmogorov(
    c0: Float[ArrayLike, "*grid"],
    D: Float[ArrayLike, "*grid"],
    rho: float,
    t_final: float,
    *,
    spacing: Sequence[float],
    dt: float | None = None,
    snapshots: int = 1,
) -> FKSolution:
    """Solve dc/dt = div(D grad c) + rho c (1 - c) on a voxel grid, in mm and days.

    Finite volumes with face diffusivity (D_i + D_j) / 2 between two cells of the domain
    (D > 0) and no flux through the walls or into cells with D = 0, where c is held at 0; Heun
    steps of equal size dt <= the requested ``dt``, one compiled `jax.lax.scan` (see the module
    docstring). Works for any number of axes; runs in the dtype of ``c0`` (float32, or float64
    under x64).

    Example:
        >>> anatomy = load_atlas(2).axial_slice(46).crop()
        >>> D = diffusivity(anatomy, D_w=0.1, r=20)
        >>> c0 = initial_density(anatomy, (-28.0, -10.0, 20.0))
        >>> sol = solve_fisher_kolmogorov(c0, D, 0.1, 100.0, spacing=anatomy.spacing)
        >>> sol.c[-1]  # the density after 100 days

    Arguments:
        c0: the initial density in [0, 1] (set to 0 where D = 0).
        D: the diffusivity field in mm^2/day (`diffusivity`), same shape; 0 outside the domain.
        rho: the proliferation rate in 1/day (a scalar, or a field of the grid's shape).
        t_final: the final time in days.
        spacing: the voxel size in mm along each axis.
        dt: the largest step to take (days); default: the largest step with
            dt (max S + rho) <= 1 (`stable_time_step`) and rho dt <= 0.1. Larger steps than
            the stability bound are refused.
        snapshots: the number of equally spaced snapshots after t = 0 (the last at t_final).

    Returns:
        an `FKSolution` with ``snapshots + 1`` states.
    """
    c0 = jnp.asarray(c0)
    if not jnp.issubdtype(c0.dtype, jnp.floating):
        c0 = c0.astype(jnp.zeros(()).dtype)
    D = jnp.asarray(D, c0.dtype)
    if D.shape != c0.shape or c0.ndim < 1:
        raise SpecError(f"expected c0 and D of one shape, got {c0.shape} and {D.shape}", "D")
    spacing = tuple(_number(s, "spacing") for s in np.atleast_1d(spacing))
    if len(spacing) != c0.ndim:
        raise SpecError(f"expected {c0.ndim} voxel sizes, got {len(spacing)}", path="spacing")
    rho_arr = jnp.asarray(rho, c0.dtype)
    if rho_arr.ndim and rho_arr.shape != c0.shape:
        raise SpecError(f"expected a scalar rho or one of shape {c0.shape}", path="rho")
    rho_np = np.asarray(rho, np.float64)  # the step bound in float64 (0.1 / rho exact)
    rho_max = float(rho_np.max())
    if not (math.isfinite(rho_max) and float(rho_np.min()) >= 0):
        raise SpecError("expected a finite, non-negative proliferation rate", path="rho")
    if not (bool(jnp.all(D >= 0)) and bool(jnp.all(jnp.isfinite(D)))):
        raise SpecError("expected a finite, non-negative diffusivity", path="D")
    t_final = _number(t_final, "t_final")
    if isinstance(snapshots, bool) or int(snapshots) != snapshots or snapshots < 1:
        raise SpecError(f"expected a positive integer, got {snapshots!r}", path="snapshots")
    snapshots = int(snapshots)
    bound = stable_time_step(D, rho_max, spacing)
    if dt is None:
        dt = min(bound, _MAX_RHO_DT / rho_max if rho_max > 0 else math.inf, t_final)
    else:
        dt = _number(dt, "dt")
        if dt > bound * (1 + 1e-9):
            raise SpecError(
                f"dt = {dt:g} days exceeds the stable step {bound:.4g} days (dt (max S + rho) "
                "<= 1 keeps c in [0, 1]); take a smaller step or leave dt=None",
                path="dt",
            )
    per_save = max(1, math.ceil(t_final / (snapshots * dt) - 1e-9))
    steps = per_save * snapshots
    h = t_final / steps
    c0 = jnp.where(D > 0, jnp.clip(c0, 0.0, 1.0), 0.0)
    snaps = _integrate(
        c0,
        D,
        rho_arr,
        jnp.asarray(h, c0.dtype),
        tuple(1.0 / s**2 for s in spacing),
        per_save,
        snapshots,
    )
    t = jnp.asarray(np.arange(snapshots + 1) * (per_save * h), c0.dtype)
    return FKSolution(t=t, c=snaps, dt=h, steps=steps)


# --------------------------------------------------------------------------------------------
# Synthetic patients
# --------------------------------------------------------------------------------------------


def _origin_mm(anatomy: Anatomy, origin: Sequence[float]) -> np.ndarray:
    """A world point (x, y, z) in mm; a 2D anatomy also takes (x, y) and adds its slice's z."""
    p = np.asarray(origin, np.float64)
    if p.shape == (2,) and anatomy.ndim == 2:
        p = np.r_[p, anatomy.affine[2, 3]]
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise SpecError(f"expected a world point (x, y, z) in mm, got {p.tolist()}", "origin")
    return p


def initial_density(
    anatomy: Anatomy,
    origin: Sequence[float],
    *,
    amplitude: float = _INITIAL_AMPLITUDE,
    width_mm: float = _INITIAL_WIDTH_MM,
    cutoff: float = _INITIAL_CUTOFF,
) -> np.ndarray:
    """A truncated Gaussian c0 = a exp(-|x - x0|^2 / (2 w^2)) in tissue, 0 below ``cutoff``.

    The defaults are GliODIL's initial condition M / (4 pi Dt)^(3/2) exp(-|x|^2 / (4 Dt)) with
    Dt = 15 mm^2, M = 1500: a = 0.58, w = sqrt(30) mm = 5.5 mm, cut at 0.1 (radius 10 mm). The
    cutoff gives compact support, so no far-away tail grows exponentially into the low-density
    region that the plans are judged on.

    Arguments:
        anatomy: the grid (distances are world distances from voxel centres, in mm).
        origin: x0 in world mm (x, y, z); a 2D anatomy also takes (x, y) in its slice.
        amplitude: the peak a (<= 1).
        width_mm: the standard deviation w in mm.
        cutoff: values below it are set to 0 (0 for the plain Gaussian).

    Returns:
        c0, float32, shape ``anatomy.shape``.
    """
    amplitude = _number(amplitude, "amplitude")
    if amplitude > 1:
        raise SpecError(f"expected an amplitude <= 1, got {amplitude:g}", path="amplitude")
    width = _number(width_mm, "width_mm")
    cutoff = _number(cutoff, "cutoff", allow_low=True)
    x0 = _origin_mm(anatomy, origin)
    d2 = np.sum((anatomy.world_coordinates() - x0) ** 2, axis=-1)
    c0 = amplitude * np.exp(-d2 / (2 * width**2))
    c0 = np.where((c0 >= cutoff) & anatomy.tissue, c0, 0.0)
    return c0.astype(np.float32)


def segment(
    c: Float[ArrayLike, "*grid"],
    th_up: float,
    th_down: float,
    th_necro: float | None = None,
) -> np.ndarray:
    """Segmentation labels of a density: `ENHANCING` (1) where c >= th_up, `EDEMA` (3) where
    th_down <= c < th_up, `NECROTIC` (4) where c >= th_necro (if given), 0 elsewhere (uint8)."""
    th_up, th_down, th_necro = _thresholds(th_up, th_down, th_necro)
    c = np.asarray(c)
    seg = np.zeros(c.shape, np.uint8)
    seg[c >= th_down] = EDEMA
    seg[c >= th_up] = ENHANCING
    if th_necro is not None:
        seg[c >= th_necro] = NECROTIC
    return seg


def pet_signal(
    c: Float[ArrayLike, "*grid"],
    th_up: float,
    *,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A synthetic FET-PET signal: proportional to c in the tumour core (c >= th_up), 0 outside,
    normalised to a maximum of 1 (as GliODIL's reader normalises it).

    Arguments:
        c: the density.
        th_up: the core threshold.
        noise: the standard deviation of Gaussian noise added in the core, relative to the
            peak density (the result is clipped at 0 before normalising).
        seed: the NumPy seed of the noise.

    Returns:
        the signal in [0, 1], float32 (all zeros if the core is empty).
    """
    th_up = _number(th_up, "th_up")
    noise = _number(noise, "noise", allow_low=True)
    c = np.asarray(c, np.float64)
    core = c >= th_up
    pet = np.where(core, c, 0.0)
    if noise > 0 and core.any():
        rng = np.random.default_rng(seed)
        pet = pet + noise * c.max() * rng.standard_normal(c.shape) * core
    pet = np.clip(pet, 0.0, None)
    peak = pet.max(initial=0.0)
    return (pet / peak if peak > 0 else pet).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class TumourTruth:
    """The parameters of a synthetic patient (units: mm, days).

    Attributes:
        D_w: white-matter diffusivity, mm^2/day.
        rho: proliferation rate, 1/day.
        r: D_w / D_g.
        T: growth time from the initial density to the scan, days.
        origin_mm: the centre of the initial density, world mm (x, y, z).
        th_up: the enhancing-core threshold.
        th_down: the edema threshold.
        th_necro: the necrotic-core threshold, or None.
        amplitude: the peak of the initial density.
        width_mm: its standard deviation, mm.
        cutoff: its truncation level.
        pet_noise: the PET noise level (relative), 0 for none.
        seed: the seed of the PET noise.
        dt: the solver's time step, days.
        steps: the number of Heun steps.
    """

    D_w: float
    rho: float
    r: float
    T: float
    origin_mm: tuple[float, float, float]
    th_up: float
    th_down: float
    th_necro: float | None
    amplitude: float
    width_mm: float
    cutoff: float
    pet_noise: float
    seed: int
    dt: float
    steps: int

    @property
    def D_w_T(self) -> float:
        """D_w T (mm^2): identifiable from one scan, unlike D_w and T separately."""
        return self.D_w * self.T

    @property
    def rho_T(self) -> float:
        """rho T (dimensionless): identifiable from one scan."""
        return self.rho * self.T


@dataclasses.dataclass(frozen=True, eq=False)
class SyntheticPatient:
    """A synthetic scan with its ground truth.

    Attributes:
        anatomy: the tissue maps and grid.
        segmentation: labels 0, `ENHANCING`, `EDEMA` (and `NECROTIC`), uint8.
        pet: the PET signal in [0, 1] (float32) or None.
        density: the true density at the scan (t = T), float32.
        initial: the true initial density (t = 0), float32.
        truth: the parameters.
    """

    anatomy: Anatomy
    segmentation: np.ndarray
    pet: np.ndarray | None
    density: np.ndarray
    initial: np.ndarray
    truth: TumourTruth

    @property
    def origin_voxel(self) -> np.ndarray:
        """The fractional voxel index of the origin (its projection for a 2D slice)."""
        return self.anatomy.world_to_voxel(self.truth.origin_mm)

    def volumes(self) -> dict[str, float]:
        """Volumes of the labels and of c >= 0.001 (mm^3 in 3D, mm^2 in 2D)."""
        v = self.anatomy.voxel_volume
        core = np.isin(self.segmentation, (ENHANCING, NECROTIC))
        return {
            "core": float(core.sum() * v),
            "edema": float((self.segmentation == EDEMA).sum() * v),
            "visible": float((self.segmentation > 0).sum() * v),
            "c>=0.001": float((self.density >= 1e-3).sum() * v),
        }


def synthetic_patient(
    anatomy: Anatomy,
    *,
    origin: Sequence[float],
    D_w: float = 0.1,
    rho: float = 0.1,
    r: float = 20.0,
    T: float = 100.0,
    th_up: float = 0.5,
    th_down: float = 0.25,
    th_necro: float | None = None,
    pet: bool = True,
    pet_noise: float = 0.0,
    seed: int = 0,
    dt: float | None = None,
) -> SyntheticPatient:
    """Grow a tumour from GliODIL's initial density and segment it as a single scan would.

    The density c(T) of `solve_fisher_kolmogorov` from `initial_density` at ``origin``, with
    D = `diffusivity` (anatomy, D_w, r), is thresholded by `segment` and, with ``pet``, turned into
    `pet_signal`. The paper's cohort draws D_w, rho in [0.035, 0.2], r in [10, 30], th_up in
    [0.45, 0.6], th_down in [0.15, 0.35] (`PARAMETER_RANGES`) and grows for 100 days; the
    defaults are mid-range. Fronts move at about 2 sqrt(D_w rho) mm/day in white matter
    (0.2 mm/day by default) and more slowly in grey matter; with the defaults and the CLI's
    origin the visible tumour has an equivalent radius of about 2 cm at T = 100.

    Arguments:
        anatomy: a 2D or 3D `Anatomy` (`load_atlas`, `read_tissue`, `Anatomy.axial_slice`).
        origin: the centre of the initial density, world mm (x, y, z), in tissue.
        D_w: white-matter diffusivity, mm^2/day.
        rho: proliferation rate, 1/day.
        r: the ratio D_w / D_g.
        T: growth time, days.
        th_up: the enhancing-core threshold (c >= th_up).
        th_down: the edema threshold (th_down <= c < th_up).
        th_necro: the necrotic threshold, or None for no necrotic label.
        pet: also make a PET signal.
        pet_noise: its relative noise level (`pet_signal`).
        seed: the seed of the PET noise.
        dt: the largest time step (default: `solve_fisher_kolmogorov`'s).

    Returns:
        a `SyntheticPatient`.
    """
    th_up, th_down, th_necro = _thresholds(th_up, th_down, th_necro)
    D_w, rho, r, T = (_number(v, k) for k, v in (("D_w", D_w), ("rho", rho), ("r", r), ("T", T)))
    if r < 1:
        raise SpecError(f"expected r = D_w / D_g >= 1, got {r:g}", path="r")
    origin = _origin_mm(anatomy, origin)
    index = np.rint(anatomy.world_to_voxel(origin)).astype(int)
    inside = np.all((index >= 0) & (index < np.asarray(anatomy.shape)))
    if not inside or not anatomy.tissue[tuple(index)]:
        where = "outside the grid" if not inside else "not in brain tissue"
        raise SpecError(
            f"the origin {origin.tolist()} mm (voxel {index.tolist()}) is {where}; choose a "
            "point in white or grey matter",
            path="origin",
        )
    c0 = initial_density(anatomy, origin)
    D = diffusivity(anatomy, D_w, r)
    sol = solve_fisher_kolmogorov(c0, D, rho, T, spacing=anatomy.spacing, dt=dt)
    density = np.asarray(sol.c[-1], np.float32)
    truth = TumourTruth(
        D_w=D_w,
        rho=rho,
        r=r,
        T=T,
        origin_mm=tuple(float(v) for v in origin),
        th_up=th_up,
        th_down=th_down,
        th_necro=th_necro,
        amplitude=_INITIAL_AMPLITUDE,
        width_mm=_INITIAL_WIDTH_MM,
        cutoff=_INITIAL_CUTOFF,
        pet_noise=_number(pet_noise, "pet_noise", allow_low=True),
        seed=int(seed),
        dt=float(sol.dt),
        steps=int(sol.steps),
    )
    return SyntheticPatient(
        anatomy=anatomy,
        segmentation=segment(density, th_up, th_down, th_necro),
        pet=pet_signal(density, th_up, noise=pet_noise, seed=seed) if pet else None,
        density=density,
        initial=c0,
        truth=truth,
    )


_FILES = {
    "wm": "wm.nii.gz",
    "gm": "gm.nii.gz",
    "segmentation": "segmentation.nii.gz",
    "pet": "pet.nii.gz",
    "density": "truth_density.nii.gz",
    "initial": "truth_initial.nii.gz",
}


def write_patient(patient: SyntheticPatient, out_dir: str | os.PathLike) -> pathlib.Path:
    """Write a synthetic patient as NIfTI files and ``truth.json``.

    Files: ``wm.nii.gz``, ``gm.nii.gz`` (tissue probabilities), ``segmentation.nii.gz``
    (uint8 labels 0/1/3/4), ``pet.nii.gz`` (if any), ``truth_density.nii.gz`` (c at T),
    ``truth_initial.nii.gz`` (c at 0), all on one grid and affine (2D: one slice), and
    ``truth.json`` with the parameters, the identifiable products D_w T and rho T, the origin in
    mm and voxels, the grid, the labels, the units and the volumes.

    Arguments:
        patient: from `synthetic_patient`.
        out_dir: the folder (created if missing; its parent must exist).

    Returns:
        the folder.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(exist_ok=True)
    a = patient.anatomy
    arrays = {
        "wm": a.wm,
        "gm": a.gm,
        "segmentation": patient.segmentation,
        "pet": patient.pet,
        "density": patient.density,
        "initial": patient.initial,
    }
    for name, array in arrays.items():
        if array is not None:
            write_nifti(out / _FILES[name], array, a.affine)
    t = patient.truth
    record = {
        **dataclasses.asdict(t),
        "D_g": t.D_w / t.r,
        "D_w_T": t.D_w_T,
        "rho_T": t.rho_T,
        "origin_voxel": [float(v) for v in patient.origin_voxel],
        "front_speed_mm_per_day": 2 * math.sqrt(t.D_w * t.rho),
        "infiltration_length_mm": math.sqrt(t.D_w / t.rho),
        "grid": {
            "ndim": a.ndim,
            "shape": list(a.shape),
            "spacing_mm": list(a.spacing),
            "affine": a.affine.tolist(),
        },
        "volumes": patient.volumes(),
        "labels": {"enhancing": ENHANCING, "edema": EDEMA, "necrotic": NECROTIC},
        "tissue_threshold": TISSUE_THRESHOLD,
        "files": {k: v for k, v in _FILES.items() if arrays[k] is not None},
        "units": {
            "length": "mm",
            "time": "day",
            "D_w": "mm^2/day",
            "rho": "1/day",
            "volumes": "mm^3 (3D) or mm^2 (2D)",
        },
        "model": "dc/dt = div(D grad c) + rho c (1 - c), D = D_w (m_WM + m_GM / r)",
        "reference": "Balcerak et al., arXiv:2312.05063 (GliODIL)",
    }
    (out / "truth.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "problem.yaml").write_text(patient_spec(out, pet=patient.pet is not None, r=t.r))
    return out


def patient_spec(folder: str | os.PathLike, *, pet: bool = False, r: float = 20.0) -> str:
    """The glioma spec (YAML text) of a patient folder in the layout of `write_patient`: its
    files by relative name, so ``pinnkit solve FOLDER/problem.yaml`` infers the tumour.

    Arguments:
        folder: the patient's folder (its name becomes the spec's name).
        pet: whether the spec names ``pet.nii.gz``.
        r: the ratio D_w / D_g the inverse problem assumes.
    """
    name = re.sub(r"[^a-z0-9_-]+", "_", pathlib.Path(folder).resolve().name.lower()) or "patient"
    lines = [
        f"name: {name}",
        "description: >-",
        "  A glioma scan (tissue maps, segmentation) written by `pinnkit data glioma`: infer the",
        "  tumour cell density, D_w T and rho T by GliODIL (docs/glioma.md).",
        f"equation: {{name: fisher_kolmogorov, r: {r:g}}}",
        "patient:",
        f"  wm: {_FILES['wm']}",
        f"  gm: {_FILES['gm']}",
        f"  segmentation: {_FILES['segmentation']}",
        *([f"  pet: {_FILES['pet']}"] if pet else []),
        "  truth: truth.json   # remove for a real patient: no Dice or plan figures then",
        "model: {backend: gliodil, nt: 64}",
        "train: {steps_per_start: 30, optimizer: gauss_newton}",
        "plan: {margin_mm: 15}",
    ]
    return "\n".join(lines) + "\n"


def read_patient(directory: str | os.PathLike) -> SyntheticPatient:
    """Read a patient written by `write_patient` (the inverse of it: arrays and truth equal).

    Arguments:
        directory: the folder.

    Returns:
        the `SyntheticPatient`.
    """
    d = pathlib.Path(directory)
    path = d / "truth.json"
    if not path.is_file():
        raise SpecError(f"{str(d)!r} has no truth.json: not a patient folder", path="directory")
    record = json.loads(path.read_text())
    ndim = int(record["grid"]["ndim"])

    def read(name: str):
        f = d / _FILES[name]
        return read_nifti(f, ndim=ndim) if f.is_file() else (None, None)

    wm, affine = read("wm")
    gm, _ = read("gm")
    anatomy = Anatomy(wm, gm, affine, tuple(record["grid"]["spacing_mm"]))
    fields = {f.name for f in dataclasses.fields(TumourTruth)}
    values = {k: v for k, v in record.items() if k in fields}
    values["origin_mm"] = tuple(values["origin_mm"])
    return SyntheticPatient(
        anatomy=anatomy,
        segmentation=read("segmentation")[0],
        pet=read("pet")[0],
        density=read("density")[0],
        initial=read("initial")[0],
        truth=TumourTruth(**values),
    )


# --------------------------------------------------------------------------------------------
# Radiotherapy plan metrics
# --------------------------------------------------------------------------------------------


def dice(a: Bool[ArrayLike, "*grid"], b: Bool[ArrayLike, "*grid"]) -> float:
    """The Dice coefficient 2 |a & b| / (|a| + |b|) of two masks (1 when both are empty)."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def coverage(plan: Bool[ArrayLike, "*grid"], region: Bool[ArrayLike, "*grid"]) -> float:
    """The fraction |plan & region| / |region| of a region inside a plan (1 if it is empty)."""
    plan = np.asarray(plan, bool)
    region = np.asarray(region, bool)
    n = int(region.sum())
    return 1.0 if n == 0 else int((plan & region).sum()) / n


def _distance_to_tumour(segmentation: ArrayLike, anatomy: Anatomy) -> np.ndarray:
    """The Euclidean distance (mm) of every voxel centre to the nearest visible-tumour voxel."""
    from scipy import ndimage

    tumour = np.asarray(segmentation) > 0
    if tumour.shape != anatomy.shape:
        raise SpecError(
            f"expected a segmentation of shape {anatomy.shape}, got {tumour.shape}",
            path="segmentation",
        )
    if not tumour.any():
        raise SpecError("the segmentation has no tumour voxel to plan around", "segmentation")
    return ndimage.distance_transform_edt(~tumour, sampling=anatomy.spacing)


def margin_plan(segmentation: ArrayLike, anatomy: Anatomy, margin_mm: float = 15.0) -> np.ndarray:
    """The standard plan: the visible tumour (every label > 0) dilated by a uniform margin.

    The voxels within ``margin_mm`` (Euclidean distance between voxel centres, in mm, by
    `scipy.ndimage.distance_transform_edt`) of the tumour, kept to brain tissue.

    Arguments:
        segmentation: the labels (`segment`).
        anatomy: the grid and tissue.
        margin_mm: the margin in mm (clinical practice: 15 to 20).

    Returns:
        the plan mask (bool).
    """
    margin = _number(margin_mm, "margin_mm", allow_low=True)
    distance = _distance_to_tumour(segmentation, anatomy)
    return (distance <= margin) & (anatomy.tissue | (np.asarray(segmentation) > 0))


def density_plan(c: Float[ArrayLike, "*grid"], volume: float, anatomy: Anatomy) -> np.ndarray:
    """The model-based plan: the tissue voxels of highest density whose volume is ``volume``.

    That is, the region above the density level at which it holds ``volume`` (rounded to whole
    voxels; ties between equal densities are broken by voxel order).

    Arguments:
        c: the (inferred) density.
        volume: the plan volume (mm^3 in 3D, mm^2 in 2D).
        anatomy: the grid and tissue.

    Returns:
        the plan mask (bool).
    """
    volume = _number(volume, "volume", allow_low=True)
    c = np.asarray(c)
    if c.shape != anatomy.shape:
        raise SpecError(f"expected a density of shape {anatomy.shape}, got {c.shape}", "c")
    tissue = anatomy.tissue.ravel()
    candidates = np.flatnonzero(tissue)
    k = min(int(round(volume / anatomy.voxel_volume)), candidates.size)
    order = np.argsort(-c.ravel()[candidates], kind="stable")
    plan = np.zeros(c.size, bool)
    plan[candidates[order[:k]]] = True
    return plan.reshape(c.shape)


@dataclasses.dataclass(frozen=True)
class PlanComparison:
    """The margin plan against the density plan, judged on the true region c_true >= level.

    Volumes are mm^3 in 3D and mm^2 in 2D.

    Attributes:
        level: the density level of the true region.
        margin_mm: the margin of the standard plan.
        region_volume: the volume of c_true >= level.
        plan_volume: the volume of the margin plan, and of the density plan at equal volume.
        margin_coverage: the fraction of the region inside the margin plan.
        density_coverage: the fraction of the region inside the density plan of equal volume.
        margin_to_cover_mm: the smallest margin whose plan covers the region (inf if none can:
            a region voxel outside tissue).
        margin_volume_to_cover: that plan's volume.
        density_level_to_cover: the largest level l of c_inferred with {c_inferred >= l} (in
            tissue) covering the region, i.e. the minimum of c_inferred over the region.
        density_volume_to_cover: that plan's volume.
    """

    level: float
    margin_mm: float
    region_volume: float
    plan_volume: float
    margin_coverage: float
    density_coverage: float
    margin_to_cover_mm: float
    margin_volume_to_cover: float
    density_level_to_cover: float
    density_volume_to_cover: float


def compare_plans(
    c_inferred: Float[ArrayLike, "*grid"],
    segmentation: ArrayLike,
    c_true: Float[ArrayLike, "*grid"],
    anatomy: Anatomy,
    level: float = 0.001,
    margin_mm: float = 15.0,
) -> PlanComparison:
    """Compare a uniform-margin plan with a plan from an inferred density, as in GliODIL.

    The region to treat is where the true density is at least ``level`` (the paper judges plans
    on the recurrence; a synthetic patient's truth plays that part). Both plans are compared at
    the margin plan's volume (coverage of the region), and by the volume each needs to cover
    the region completely.

    Arguments:
        c_inferred: the density of the model-based plan.
        segmentation: the visible tumour (labels > 0) for the margin plan.
        c_true: the true density.
        anatomy: the grid and tissue.
        level: the density level of the region to cover.
        margin_mm: the margin of the standard plan, mm.

    Returns:
        a `PlanComparison`.
    """
    level = _number(level, "level")
    c_inferred = np.asarray(c_inferred)
    c_true = np.asarray(c_true)
    for name, a in (("c_inferred", c_inferred), ("c_true", c_true)):
        if a.shape != anatomy.shape:
            raise SpecError(f"expected shape {anatomy.shape}, got {a.shape}", path=name)
    v = anatomy.voxel_volume
    region = c_true >= level
    margin = margin_plan(segmentation, anatomy, margin_mm)
    volume = float(margin.sum() * v)
    by_density = density_plan(c_inferred, volume, anatomy)

    allowed = anatomy.tissue | (np.asarray(segmentation) > 0)
    distance = _distance_to_tumour(segmentation, anatomy)
    if not region.any():
        need_mm, need_margin_volume = 0.0, float(margin_plan(segmentation, anatomy, 0.0).sum() * v)
        need_level, need_density_volume = math.inf, 0.0
    else:
        if np.any(region & ~allowed):
            need_mm, need_margin_volume = math.inf, math.inf
        else:
            need_mm = float(distance[region].max())
            need_margin_volume = float(((distance <= need_mm) & allowed).sum() * v)
        need_level = float(c_inferred[region].min())
        need_density_volume = float(((c_inferred >= need_level) & anatomy.tissue).sum() * v)
    return PlanComparison(
        level=level,
        margin_mm=float(margin_mm),
        region_volume=float(region.sum() * v),
        plan_volume=volume,
        margin_coverage=coverage(margin, region),
        density_coverage=coverage(by_density, region),
        margin_to_cover_mm=need_mm,
        margin_volume_to_cover=need_margin_volume,
        density_level_to_cover=need_level,
        density_volume_to_cover=need_density_volume,
    )
