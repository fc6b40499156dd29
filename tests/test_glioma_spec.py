"""``pinnkit solve`` on a glioma spec (pinnkit._glioma, pinnkit.spec.glioma).

A synthetic patient on the MNI atlas coarsened to 4 mm is written in the NIfTI layout of
`pinnkit data glioma` (with its problem.yaml), then solved through the command line:

* the run directory of the contract: summary.json with the unknowns, the Dice and plan
  figures against the named truth and the density's error; the NIfTI maps on the patient's
  grid and affine; one metrics line per step; without a truth, no recovery section;
* the same answer as `gliodil.infer` called directly;
* wrong specs (missing file, misspelt key, bad labels, another grid, unknown optimizer) exit
  with code 2 and name the key;
* a run stopped by SIGINT keeps its checkpoint and `--resume` ends where an uninterrupted run
  ends; a diverging optimiser exits with code 3.
"""

from __future__ import annotations

import json
import os
import signal

import jax
import numpy as np
import pytest

from pinnkit._solve import solve
from pinnkit.cli import main
from pinnkit.errors import InterruptedRun
from pinnkit.reference import gliodil, glioma

FAST = ["--set", "model.nt=16", "--set", "train.steps=6", "--set", "model.ratios=[1]"]


@pytest.fixture(scope="module")
def patient_dir(tmp_path_factory):
    atlas = glioma.load_atlas(2)
    z = int(round(float(atlas.world_to_voxel((0.0, 0.0, 20.0))[2])))
    anatomy = atlas.axial_slice(z).crop().coarsen(2)
    with jax.enable_x64(True):
        patient = glioma.synthetic_patient(
            anatomy, origin=(-28.0, -10.0), D_w=0.2, rho=0.06, T=80.0
        )
    return glioma.write_patient(patient, tmp_path_factory.mktemp("patient") / "p1")


@pytest.fixture(scope="module")
def run(patient_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "p1"
    code = main(["solve", str(patient_dir / "problem.yaml"), "--out", str(out), "--quiet", *FAST])
    assert code == 0
    return out


def test_the_run_directory_follows_the_contract(run, patient_dir):
    summary = json.loads((run / "summary.json").read_text())
    for key in ("problem", "backend", "status", "steps", "wall_s", "loss", "errors", "unknowns"):
        assert key in summary, key
    assert summary["backend"] == "gliodil" and summary["status"] == "ok"
    truth = json.loads((patient_dir / "truth.json").read_text())
    u = summary["unknowns"]
    assert abs(u["D_w_T"] / truth["D_w_T"] - 1) < 0.2 and abs(u["rho_T"] / truth["rho_T"] - 1) < 0.2
    rec = summary["recovery"]
    assert rec["dice_c>=0.1"] > 0.9
    assert rec["plans"]["density_volume_to_cover"] < rec["plans"]["margin_volume_to_cover"]
    assert summary["errors"]["c"]["rel_l2"] < 0.2
    density, affine = glioma.read_nifti(run / "inferred_density.nii.gz", ndim=2)
    _, patient_affine = glioma.read_nifti(patient_dir / "wm.nii.gz", ndim=2)
    np.testing.assert_allclose(affine, patient_affine)
    saved = np.load(run / "solution.npz")
    np.testing.assert_allclose(saved["c"].astype(np.float32), density)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[-1])["step"] == 6
    assert (run / "plots" / "gliodil.png").stat().st_size > 10_000
    assert main(["report", str(run)]) == 0


def test_the_spec_gives_what_infer_gives(run, patient_dir):
    patient = glioma.read_patient(patient_dir)
    result = gliodil.infer(
        patient.anatomy, patient.segmentation, patient.pet, nt=16, steps=6, ratios=(1.0,)
    )
    u = json.loads((run / "summary.json").read_text())["unknowns"]
    assert u["D_w_T"] == pytest.approx(result.D_w_T, rel=1e-9)
    assert u["rho_T"] == pytest.approx(result.rho_T, rel=1e-9)


def test_without_a_truth_there_is_no_recovery(patient_dir, tmp_path):
    out = tmp_path / "plain"
    spec = str(patient_dir / "problem.yaml")
    assert (
        main(["solve", spec, "--out", str(out), "--quiet", *FAST, "--set", "patient.truth=null"])
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert "recovery" not in summary and summary["errors"] == {}
    assert set(summary["unknowns"]) >= {"D_w_T", "rho_T", "origin_mm", "th_up", "th_down"}


def _spec_error(capsys, *argv) -> str:
    assert main(["validate", *argv]) == 2
    return capsys.readouterr().err


def test_wrong_specs_name_the_key(patient_dir, tmp_path, capsys):
    spec = str(patient_dir / "problem.yaml")
    err = _spec_error(capsys, spec, "--set", "patient.wm=missing.nii.gz")
    assert "patient.wm" in err and "missing.nii.gz" in err and "Traceback" not in err
    err = _spec_error(capsys, spec, "--set", "patient.segmentaton=segmentation.nii.gz")
    assert "did you mean 'segmentation'" in err
    err = _spec_error(capsys, spec, "--set", "train.optimizer=adma")
    assert "train.optimizer.name" in err and "adam" in err
    err = _spec_error(capsys, spec, "--set", "model.nt=2")
    assert "model.nt" in err
    # labels outside 0/1/3/4, and a map on another grid
    seg, affine = glioma.read_nifti(patient_dir / "segmentation.nii.gz", ndim=2)
    bad = seg.astype(np.float32).copy()
    bad[bad == glioma.EDEMA] = 2
    glioma.write_nifti(tmp_path / "seg2.nii.gz", bad, affine)
    err = _spec_error(capsys, spec, "--set", f"patient.segmentation={tmp_path / 'seg2.nii.gz'}")
    assert "patient.segmentation" in err and "[2]" in err
    glioma.write_nifti(tmp_path / "gm_small.nii.gz", np.zeros((5, 5), np.float32), affine)
    err = _spec_error(capsys, spec, "--set", f"patient.gm={tmp_path / 'gm_small.nii.gz'}")
    assert "patient.gm" in err


def test_interrupt_then_resume_ends_where_an_uninterrupted_run_ends(run, patient_dir, tmp_path):
    out = tmp_path / "stopped"
    spec = str(patient_dir / "problem.yaml")
    overrides = [o for o in FAST if o != "--set"]

    def ctrl_c(entry):
        if entry["step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: the run stops after this step

    with pytest.raises(InterruptedRun):
        solve(spec, out=out, overrides=overrides, progress=False, log=ctrl_c)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert (out / "checkpoint" / "meta.json").exists()
    assert main(["solve", "--resume", str(out), "--quiet"]) == 0
    resumed = json.loads((out / "summary.json").read_text())
    whole = json.loads((run / "summary.json").read_text())
    assert resumed["status"] == "ok"
    assert resumed["unknowns"]["D_w_T"] == pytest.approx(whole["unknowns"]["D_w_T"], rel=1e-9)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 6


def test_a_diverging_optimiser_exits_with_code_3(patient_dir, tmp_path):
    out = tmp_path / "diverged"
    code = main(
        ["solve", str(patient_dir / "problem.yaml"), "--out", str(out), "--quiet", *FAST]
        + [
            "--set",
            "train.optimizer={name: sgd, lr: 1.0e+200}",
            "--set",
            "model.initial={D_w_T: 10, rho_T: 5}",
        ]
    )
    assert code == 3
    assert json.loads((out / "summary.json").read_text())["status"] == "diverged"
    assert (out / "checkpoint" / "meta.json").exists()


def _fisher_spec(D, rho):
    return {
        "name": "fk",
        "coords": ["x", "y", "t"],
        "domain": {"x": [-5, 5], "y": [0, 1], "t": [0, 2]},
        "fields": ["c"],
        "equation": {"name": "fisher_kolmogorov", "D": D, "rho": rho},
    }


def test_the_fisher_kolmogorov_builtin_vanishes_on_the_travelling_wave():
    """Ablowitz & Zeppetella's exact front c = (1 + exp((x s - 5 rho t / sqrt 6) / sqrt 6))^-2,
    s = sqrt(rho / D), solves c_t = D Δc + rho c (1 - c); with another D it does not."""
    import jax.numpy as jnp

    from pinnkit import load_spec
    from pinnkit.backends import PointFunction
    from pinnkit.core.derivatives import ForwardMode
    from pinnkit.core.objective import Objective

    D, rho = 0.3, 0.8

    def front(p):
        z = (p[0] * jnp.sqrt(rho / D) - 5 * rho * p[2] / jnp.sqrt(6.0)) / jnp.sqrt(6.0)
        return jnp.array([(1 + jnp.exp(z)) ** -2])

    def residual(D_spec):
        problem = load_spec(_fisher_spec(D_spec, rho)).problem()
        model = PointFunction(("c",), ForwardMode(), lambda params, x: front(x), {})
        objective = Objective(problem, interior=256, boundary=16)
        points = objective.sample(key=jax.random.key(0))
        terms = objective.reduce(objective.squared(model, {}, points), points)
        return float(terms[problem.equation.names[0]])

    assert residual(D) < 1e-10
    assert residual(2 * D) > 1e-4


def test_train_steps_is_the_runs_total_split_over_the_starts(patient_dir):
    from pinnkit import load_spec
    from pinnkit.errors import SpecError

    spec = str(patient_dir / "problem.yaml")
    three = ["model.ratios=[0.5, 1, 2]"]
    loaded = load_spec(spec, [*three, "train.steps=12"])
    assert (loaded.spec.train.steps, loaded.spec.train.steps_per_start) == (12, 4)
    assert loaded.total_steps() == 12
    loaded = load_spec(spec, [*three, "train.steps_per_start=5"])
    assert (loaded.spec.train.steps, loaded.spec.train.steps_per_start) == (15, 5)
    # both: the total decides, as --set train.steps=N does on a resumed run
    loaded = load_spec(spec, [*three, "train.steps_per_start=5", "train.steps=6"])
    assert loaded.spec.train.steps_per_start == 2
    assert "steps" not in loaded.resolved()["train"]  # resolved per start
    # one start when both D_w T and rho T are given
    loaded = load_spec(spec, [*three, "train.steps=7", "model.initial={D_w_T: 10, rho_T: 5}"])
    assert loaded.spec.train.steps_per_start == 7
    with pytest.raises(SpecError, match="multiple of 3") as e:
        load_spec(spec, [*three, "train.steps=10"])
    assert e.value.path == "train.steps"
