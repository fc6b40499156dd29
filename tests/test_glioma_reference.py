"""Tests of the glioma reference module (pinnkit.reference.glioma) and `pinnkit data glioma`.

What is checked, and why it pins the module down:

* The finite-volume operator: a two-cell system relaxes with the arithmetic face mean of the two
  diffusivities exactly at Heun's discrete rate, and a cosine mode of the walled 1D grid decays
  at the discrete Neumann eigenvalue: the face mean, the 1 / h^2 scaling and the no-flux walls.
* Mass conservation with rho = 0 on a 3D grid with holes (D = 0, i.e. CSF): the total stays
  to round-off and no cell of a hole ever receives tumour cells.
* Second order in time (Heun), fitted as a slope on a heterogeneous 2D anatomy.
* The Fisher front speed 2 sqrt(D rho) in a homogeneous 1D medium, with Bramson's logarithmic
  delay accounting for the rest.
* The maximum principle: 0 <= c <= 1 at the stable step with a discontinuous initial density,
  and steps above the bound refused.
* The atlas, slicing, cropping and coarsening keep world coordinates; NIfTI files and patient
  folders read back equal; segmentation thresholds and the PET model on hand-made values.
* Plan metrics on disks and ellipses with analytic areas; the CLI writes a readable patient.

Solver tests run in float64 (x64 per test; conftest restores it).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pinnkit.cli import main
from pinnkit.errors import SpecError
from pinnkit.reference.glioma import (
    EDEMA,
    ENHANCING,
    NECROTIC,
    TISSUE_THRESHOLD,
    Anatomy,
    compare_plans,
    coverage,
    density_plan,
    dice,
    initial_density,
    load_atlas,
    margin_plan,
    pet_signal,
    read_nifti,
    read_patient,
    read_tissue,
    segment,
    solve_fisher_kolmogorov,
    stable_time_step,
    synthetic_patient,
    write_nifti,
    write_patient,
)

ORIGIN = (-28.0, -10.0, 20.0)  # MNI mm: left deep white matter, the CLI's default


@pytest.fixture(scope="module")
def atlas() -> Anatomy:
    return load_atlas(2)


@pytest.fixture(scope="module")
def slice2d(atlas) -> Anatomy:
    z = int(round(atlas.world_to_voxel((0.0, 0.0, 20.0))[2]))
    return atlas.axial_slice(z).crop()


def _identity_anatomy(wm: np.ndarray, gm: np.ndarray | None = None, spacing=None) -> Anatomy:
    spacing = (1.0,) * wm.ndim if spacing is None else spacing
    affine = np.diag([*spacing, *([1.0] * (3 - wm.ndim)), 1.0])
    return Anatomy(wm, np.zeros_like(wm) if gm is None else gm, affine, spacing)


def _random_diffusivity(shape, seed: int, holes: float = 0.2) -> np.ndarray:
    """A heterogeneous diffusivity in [0.05, 0.2] with a fraction of holes (D = 0)."""
    rng = np.random.default_rng(seed)
    D = rng.uniform(0.05, 0.2, shape)
    D[rng.uniform(size=shape) < holes] = 0.0
    return D


# --------------------------------------------------------------------------------------------
# The finite-volume operator
# --------------------------------------------------------------------------------------------


def test_two_cells_exchange_through_the_arithmetic_face_mean(x64):
    # c1 - c2 obeys d/dt = -2 D_face / h^2 (c1 - c2); Heun multiplies it by 1 - z + z^2 / 2
    # per step, z = 2 D_face dt / h^2, with D_face = (D1 + D2) / 2 (GliODIL's face mean).
    D = np.array([0.3, 0.1])
    h, dt, steps = 1.5, 0.5, 40
    sol = solve_fisher_kolmogorov(np.array([1.0, 0.0]), D, 0.0, dt * steps, spacing=(h,), dt=dt)
    z = 2 * 0.2 * dt / h**2
    expected = (1 - z + z**2 / 2) ** steps
    c = np.asarray(sol.c[-1])
    np.testing.assert_allclose(c[0] - c[1], expected, rtol=1e-13)
    np.testing.assert_allclose(c.sum(), 1.0, rtol=1e-15)


def test_cosine_mode_decays_at_the_discrete_neumann_eigenvalue(x64):
    # On n cells with no-flux walls, cos(pi (i + 1/2) / n) is an eigenvector of the discrete
    # Laplacian with eigenvalue -(2 - 2 cos(pi / n)) / h^2; a wrong wall (Dirichlet, periodic)
    # or a wrong 1 / h^2 would change the rate.
    n, h, D, dt, steps = 40, 0.5, 0.2, 0.25, 200
    mode = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    c0 = 0.5 + 0.25 * mode
    sol = solve_fisher_kolmogorov(c0, np.full(n, D), 0.0, dt * steps, spacing=(h,), dt=dt)
    z = dt * D * (2 - 2 * np.cos(np.pi / n)) / h**2
    expected = 0.5 + 0.25 * mode * (1 - z + z**2 / 2) ** steps
    np.testing.assert_allclose(np.asarray(sol.c[-1]), expected, rtol=0, atol=1e-14)


def test_mass_is_conserved_without_growth_and_holes_stay_empty(x64):
    shape = (12, 10, 8)
    D = _random_diffusivity(shape, seed=1)
    c0 = np.random.default_rng(2).uniform(0, 1, shape)
    sol = solve_fisher_kolmogorov(c0, D, 0.0, 200.0, spacing=(1.0, 1.5, 2.0), snapshots=4)
    c = np.asarray(sol.c)
    start = (c0 * (D > 0)).sum()
    # the sums telescope: only round-off (1e-16 per operation over ~700 steps) remains
    np.testing.assert_allclose(c.sum(axis=(1, 2, 3)), start, rtol=1e-13)
    assert np.all(c[:, D == 0] == 0.0)
    # ... and diffusion did happen: the spread of c in the largest connected part shrank
    assert c[-1][D > 0].std() < 0.5 * c[0][D > 0].std()


def test_time_order_is_two_on_a_heterogeneous_anatomy(x64):
    shape = (24, 20)
    D = _random_diffusivity(shape, seed=3, holes=0.1)
    x, y = np.meshgrid(np.arange(24), np.arange(20), indexing="ij")
    c0 = 0.6 * np.exp(-((x - 12.0) ** 2 + (y - 10.0) ** 2) / 8.0)
    T, spacing = 20.0, (1.0, 1.0)
    bound = stable_time_step(D, 0.5, spacing)
    fine = solve_fisher_kolmogorov(c0, D, 0.5, T, spacing=spacing, dt=bound / 256).c[-1]
    # at the bound itself the stiffest grid modes are outside the asymptotic range
    dts = bound / np.array([4.0, 8.0, 16.0])
    errors = [
        float(
            np.abs(
                solve_fisher_kolmogorov(c0, D, 0.5, T, spacing=spacing, dt=dt).c[-1] - fine
            ).max()
        )
        for dt in dts
    ]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert 1.9 < slope < 2.1, (slope, errors)


def test_fisher_front_moves_at_two_sqrt_d_rho(x64):
    # u_t = D u_xx + rho u (1 - u) from a step: the front (u = 1/2) moves at 2 sqrt(D rho) less
    # Bramson's delay (3/2) sqrt(D / rho) ln(rho t) (Bramson 1983, "Convergence of solutions of
    # the Kolmogorov equation to travelling waves", Mem. AMS 285). The grid h = 0.2 sqrt(D/rho)
    # adds +0.03 % to the linear speed, the time step < 0.1 %.
    D, rho, h = 0.5, 2.0, 0.1
    n = 1600  # 160 length units: the front reaches about 125 by t = 60
    c0 = (np.arange(n) * h < 5.0).astype(float)
    sol = solve_fisher_kolmogorov(c0, np.full(n, D), rho, 60.0, spacing=(h,), snapshots=4)

    def position(c):
        i = int(np.argmax(c < 0.5))  # first cell below 1/2, the profile is monotone
        return h * (i - 1 + (c[i - 1] - 0.5) / (c[i - 1] - c[i]))

    t = np.asarray(sol.t)
    x1, x2 = position(np.asarray(sol.c[2])), position(np.asarray(sol.c[4]))
    speed = (x2 - x1) / (t[4] - t[2])
    c_star = 2 * math.sqrt(D * rho)
    delay = 1.5 * math.sqrt(D / rho) * math.log(t[4] / t[2]) / (t[4] - t[2])
    assert abs(speed / c_star - 1) < 0.03  # the raw speed: 0.7 % slow here
    assert (
        abs((speed + delay) / c_star - 1) < 0.003
    )  # corrected: +0.2 %, the O(t^-1/2) terms remain


def test_density_stays_in_zero_one_at_the_stable_step(x64):
    shape = (30, 30)
    D = _random_diffusivity(shape, seed=4)
    c0 = np.zeros(shape)
    c0[10:20, 5:15] = 1.0  # discontinuous, the hardest case for the maximum principle
    sol = solve_fisher_kolmogorov(c0, D, 0.2, 50.0, spacing=(1.0, 1.0), dt=None, snapshots=10)
    bound = stable_time_step(D, 0.2, (1.0, 1.0))
    assert sol.dt <= bound
    c = np.asarray(sol.c)
    assert c.min() >= 0.0 and c.max() <= 1.0 + 1e-15
    with pytest.raises(SpecError, match="exceeds the stable step"):
        solve_fisher_kolmogorov(c0, D, 0.2, 50.0, spacing=(1.0, 1.0), dt=1.2 * bound)


def test_homogeneous_default_step_respects_both_limits():
    D = np.full((8, 8), 0.1)
    sol = solve_fisher_kolmogorov(np.zeros((8, 8)), D, 0.1, 10.0, spacing=(2.0, 2.0))
    assert sol.dt == pytest.approx(1.0)  # rho dt <= 0.1 binds: the stability bound is 5 days
    assert sol.steps == 10


# --------------------------------------------------------------------------------------------
# Anatomy, NIfTI
# --------------------------------------------------------------------------------------------


def test_atlas_slice_and_crop_keep_world_coordinates(atlas, slice2d):
    assert atlas.shape == (99, 117, 95) and atlas.spacing == (2.0, 2.0, 2.0)
    assert atlas.voxel_volume == 8.0
    tissue = atlas.tissue
    assert 0.2 < tissue.mean() < 0.3  # ~1.9 l of brain in a 8.8 l box
    np.testing.assert_allclose(atlas.voxel_to_world(atlas.world_to_voxel(ORIGIN)), ORIGIN)
    index = np.rint(atlas.world_to_voxel(ORIGIN)).astype(int)
    assert atlas.wm[tuple(index)] > 0.9
    assert slice2d.ndim == 2 and slice2d.spacing == (2.0, 2.0)
    assert max(slice2d.shape) <= 100 and slice2d.tissue.mean() > 0.5
    # the same world point has the same tissue in the 3D volume and the cropped slice
    i, j = np.rint(slice2d.world_to_voxel(ORIGIN)).astype(int)
    assert slice2d.wm[i, j] == atlas.wm[tuple(index)]
    np.testing.assert_allclose(slice2d.voxel_to_world((i, j)), atlas.voxel_to_world(index))
    coords = slice2d.world_coordinates()
    np.testing.assert_allclose(coords[..., 2], 20.0)


def test_coarsen_averages_blocks_and_centres_the_affine():
    wm = np.zeros((5, 4, 2), np.float32)
    wm[:2, :2, :2] = 1.0
    wm[4, 0, 0] = 0.5
    affine = np.diag([1.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = [10.0, 20.0, 30.0]
    a = Anatomy.from_maps(wm, np.zeros_like(wm), affine)
    c = a.coarsen(2)
    assert c.shape == (3, 2, 1) and c.spacing == (2.0, 4.0, 6.0)
    assert c.wm[0, 0, 0] == 1.0 and c.wm[2, 0, 0] == pytest.approx(0.5 / 8)
    # block (0, 0, 0) is centred between fine voxels 0 and 1 on each axis
    np.testing.assert_allclose(c.voxel_to_world((0, 0, 0)), [10.5, 21.0, 31.5])
    with pytest.raises(SpecError):
        Anatomy(wm * 255, wm, affine, (1.0, 2.0, 3.0))


def test_nifti_round_trip_2d_3d_and_integer(tmp_path):
    rng = np.random.default_rng(0)
    affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    vol = rng.uniform(size=(5, 6, 7)).astype(np.float32)
    write_nifti(tmp_path / "v.nii.gz", vol, affine)
    back, aff = read_nifti(tmp_path / "v.nii.gz")
    assert back.dtype == np.float32 and np.array_equal(back, vol)
    np.testing.assert_array_equal(aff, affine)
    img = rng.uniform(size=(5, 6)).astype(np.float32)
    write_nifti(tmp_path / "s.nii.gz", img, affine)
    assert read_nifti(tmp_path / "s.nii.gz")[0].shape == (5, 6, 1)
    assert np.array_equal(read_nifti(tmp_path / "s.nii.gz", ndim=2)[0], img)
    labels = rng.choice([0, ENHANCING, EDEMA, NECROTIC], size=(5, 6, 7)).astype(np.uint8)
    write_nifti(tmp_path / "l.nii.gz", labels, affine)
    back = read_nifti(tmp_path / "l.nii.gz")[0]
    assert back.dtype == np.uint8 and np.array_equal(back, labels)
    # the tissue reader: two maps on one grid make an anatomy with the affine's voxel size
    wm = rng.uniform(0, 0.5, (5, 6, 7)).astype(np.float32)
    write_nifti(tmp_path / "wm.nii.gz", wm, affine)
    write_nifti(tmp_path / "gm.nii.gz", 0.5 - wm, affine)
    anatomy = read_tissue(tmp_path / "wm.nii.gz", tmp_path / "gm.nii.gz")
    assert np.array_equal(anatomy.wm, wm) and anatomy.spacing == (2.0, 2.0, 2.0)
    write_nifti(tmp_path / "gm2.nii.gz", wm[:4], affine)
    with pytest.raises(SpecError, match="different grids"):
        read_tissue(tmp_path / "wm.nii.gz", tmp_path / "gm2.nii.gz")


# --------------------------------------------------------------------------------------------
# Synthetic patients
# --------------------------------------------------------------------------------------------


def test_segmentation_thresholds_and_pet_on_hand_made_values():
    c = np.array([0.0, 0.1, 0.25, 0.3, 0.4999, 0.5, 0.7, 0.85, 1.0])
    seg = segment(c, th_up=0.5, th_down=0.25)
    np.testing.assert_array_equal(seg, [0, 0, EDEMA, EDEMA, EDEMA, ENHANCING, ENHANCING,
                                        ENHANCING, ENHANCING])  # fmt: skip
    seg = segment(c, th_up=0.5, th_down=0.25, th_necro=0.8)
    np.testing.assert_array_equal(seg[-3:], [ENHANCING, NECROTIC, NECROTIC])
    for bad in ({"th_up": 0.2, "th_down": 0.25}, {"th_up": 0.5, "th_down": 0.25, "th_necro": 0.4}):
        with pytest.raises(SpecError):
            segment(c, **bad)
    pet = pet_signal(c, 0.5)
    np.testing.assert_allclose(pet, np.where(c >= 0.5, c, 0.0), rtol=1e-7)  # max c is 1
    noisy = pet_signal(c * 0.8, 0.5, noise=0.1, seed=3)
    assert np.array_equal(noisy, pet_signal(c * 0.8, 0.5, noise=0.1, seed=3))
    assert noisy.max() == 1.0 and noisy.min() >= 0 and np.all(noisy[c * 0.8 < 0.5] == 0)


def test_initial_density_is_gliodils_truncated_gaussian():
    a = _identity_anatomy(np.ones((41, 41, 41), np.float32))
    c0 = initial_density(a, (20.0, 20.0, 20.0))
    assert c0.max() == pytest.approx(1500 / (60 * math.pi) ** 1.5, rel=1e-6)
    # exp(-d^2 / 60) >= 0.1 / 0.58 for d <= 10.26 mm: the discrete ball of that radius
    d2 = np.sum((a.world_coordinates() - 20.0) ** 2, -1)
    np.testing.assert_array_equal(c0 > 0, d2 <= 60 * math.log(c0.max() / 0.1))


def test_synthetic_patient_on_the_atlas_slice(slice2d):
    p = synthetic_patient(slice2d, origin=ORIGIN, pet=True)
    t = p.truth
    assert (t.D_w_T, t.rho_T) == pytest.approx((10.0, 10.0))
    assert np.array_equal(p.segmentation, segment(p.density, t.th_up, t.th_down))
    assert 0.0 <= p.density.min() and p.density.max() <= 1.0
    assert np.all(p.density[~slice2d.tissue] == 0)
    v = p.volumes()
    # a realistic visible tumour: 1 to 3 cm in radius on the slice
    assert math.pi * 10**2 < v["visible"] < math.pi * 30**2
    assert v["edema"] > 0 and v["c>=0.001"] > v["visible"]
    np.testing.assert_allclose(slice2d.voxel_to_world(p.origin_voxel), ORIGIN)
    with pytest.raises(SpecError, match="not in brain tissue"):
        synthetic_patient(slice2d, origin=(-6.0, 0.0, 20.0))  # the left lateral ventricle


def test_patient_folder_round_trip(tmp_path, slice2d):
    p = synthetic_patient(slice2d, origin=ORIGIN, T=40.0, pet_noise=0.05, seed=5)
    write_patient(p, tmp_path / "patient")
    names = {f.name for f in (tmp_path / "patient").iterdir()}
    assert {"wm.nii.gz", "gm.nii.gz", "segmentation.nii.gz", "pet.nii.gz"} <= names
    assert {"truth_density.nii.gz", "truth_initial.nii.gz", "truth.json"} <= names
    q = read_patient(tmp_path / "patient")
    assert q.truth == p.truth
    for name in ("segmentation", "pet", "density", "initial"):
        a, b = getattr(p, name), getattr(q, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert np.array_equal(q.anatomy.wm, p.anatomy.wm) and np.array_equal(q.anatomy.gm, p.anatomy.gm)
    np.testing.assert_array_equal(q.anatomy.affine, p.anatomy.affine)
    record = json.loads((tmp_path / "patient" / "truth.json").read_text())
    assert record["D_w_T"] == pytest.approx(4.0) and record["rho_T"] == pytest.approx(4.0)
    assert record["origin_mm"] == list(ORIGIN) and len(record["origin_voxel"]) == 2


# --------------------------------------------------------------------------------------------
# Plan metrics
# --------------------------------------------------------------------------------------------


def _plane(n: int = 201, h: float = 1.0) -> tuple[Anatomy, np.ndarray, np.ndarray]:
    """An all-tissue 2D anatomy centred on 0 and its coordinates (mm)."""
    a = _identity_anatomy(np.ones((n, n), np.float32), spacing=(h, h))
    a = Anatomy(a.wm, a.gm, a.affine @ _shift(-(n - 1) / 2), a.spacing)
    xy = a.world_coordinates()
    return a, xy[..., 0], xy[..., 1]


def _shift(s: float) -> np.ndarray:
    m = np.eye(4)
    m[:2, 3] = s
    return m


def test_dice_and_coverage_of_disks():
    a, x, y = _plane()
    R, d = 30.0, 20.0
    disk = x**2 + y**2 <= R**2
    moved = (x - d) ** 2 + y**2 <= R**2
    lens = 2 * R**2 * math.acos(d / (2 * R)) - d / 2 * math.sqrt(4 * R**2 - d**2)
    assert dice(disk, moved) == pytest.approx(lens / (math.pi * R**2), rel=0.01)
    assert coverage(disk, moved) == pytest.approx(lens / (math.pi * R**2), rel=0.01)
    assert dice(disk, disk) == 1.0 and dice(disk & False, disk & False) == 1.0


@pytest.mark.parametrize("h", [1.0, 0.5])
def test_margin_plan_is_the_dilated_disk(h):
    a, x, y = _plane(int(200 / h) + 1, h)
    seg = np.where(x**2 + y**2 <= 20.0**2, ENHANCING, 0)
    plan = margin_plan(seg, a, margin_mm=15.0)
    # the digital disk area is within a perimeter-times-voxel of pi R^2
    area = plan.sum() * a.voxel_volume
    assert area == pytest.approx(math.pi * 35.0**2, rel=0.01)
    # outside tissue only the tumour itself is planned
    a_half = Anatomy(np.where(x < 0, 1.0, 0.0), a.gm, a.affine, a.spacing)
    half = margin_plan(seg, a_half, margin_mm=15.0)
    np.testing.assert_array_equal(half[x >= 0], seg[x >= 0] > 0)
    np.testing.assert_array_equal(half[x < 0], plan[x < 0])


def test_density_plan_and_compare_plans_on_an_ellipse():
    a, x, y = _plane()
    # the truth spreads along x: region c_true >= e^-1 is the ellipse with semi-axes (60, 25)
    c_true = np.exp(-((x / 60.0) ** 2 + (y / 25.0) ** 2))
    level = math.exp(-1.0)
    seg = np.where(x**2 + y**2 <= 20.0**2, ENHANCING, 0)
    # the density plan of a given volume is a level set: here the ellipse of that area
    plan = density_plan(c_true, math.pi * 30.0**2, a)
    assert plan.sum() == round(math.pi * 30.0**2)
    assert c_true[plan].min() >= c_true[~plan].max()
    result = compare_plans(c_true, seg, c_true, a, level=level, margin_mm=15.0)
    ellipse = math.pi * 60.0 * 25.0
    assert result.region_volume == pytest.approx(ellipse, rel=0.01)
    assert result.plan_volume == pytest.approx(math.pi * 35.0**2, rel=0.01)
    # at equal volume the density plan is an ellipse inside the region: coverage = V / |region|
    assert result.density_coverage == pytest.approx(math.pi * 35.0**2 / ellipse, rel=0.01)
    assert result.margin_coverage < result.density_coverage - 0.1
    # to cover the tip at x = 60 the margin must reach 40 mm: a disk of radius 60
    assert result.margin_to_cover_mm == pytest.approx(40.0, abs=1.0)
    assert result.margin_volume_to_cover == pytest.approx(math.pi * 60.0**2, rel=0.02)
    assert result.density_level_to_cover == pytest.approx(level, rel=0.01)
    assert result.density_volume_to_cover == result.region_volume


# --------------------------------------------------------------------------------------------
# pinnkit data glioma
# --------------------------------------------------------------------------------------------


def test_cli_writes_a_default_patient(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["data", "glioma", "--out", str(out), "--T", "60", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "D_w T" in printed
    p = read_patient(out)
    assert p.anatomy.ndim == 2 and p.truth.T == 60.0 and p.truth.origin_mm == ORIGIN
    assert p.pet is not None and (p.segmentation == ENHANCING).any()
    assert p.anatomy.tissue.mean() > TISSUE_THRESHOLD


def test_cli_bad_origin_exits_2(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["data", "glioma", "--out", str(out), "--origin", "-6", "0"]) == 2
    assert "origin" in capsys.readouterr().err
    assert main(["data", "glioma", "--out", str(out), "--origin", "1", "2", "3", "4"]) == 2
    assert not out.exists()
