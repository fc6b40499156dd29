"""The operator family (`pinnkit.families.operator`): an SFNO spec through ``pinnkit solve``.

The contract every family keeps, checked on the shipped spec problems/sfno_ns2d_small.yaml
(its committed data file, at a tiny budget): the same `solve` path writes the contract's
summary keys, solution arrays, model and plot; an interrupted run resumed with
``--resume DIR`` ends where an uninterrupted one ends (both the data phase and the
refinement); a huge learning rate exits 3 with ``status: diverged``; a bad key or a missing
data file exits 2 naming the key path; ``pinnkit validate`` and ``pinnkit report`` work.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal

import numpy as np
import pytest

from pinnkit._solve import load_spec, solve
from pinnkit.cli import main
from pinnkit.errors import InterruptedRun, SpecError
from pinnkit.families import OperatorFamily, family_of

SPEC = str(pathlib.Path(__file__).parents[1] / "problems" / "sfno_ns2d_small.yaml")
# 8 data steps and 4 refinement steps, logged every 4: metrics rows at 4, 8 and 12
FAST = [
    "train.steps=12",
    "refine.steps=4",
    "train.log_every=4",
    "train.eval_every=4",
    "train.checkpoint_every=4",
    "data.train=4",
    "data.test=2",
    "model.width=4",
    "model.layers=1",
]
CONTRACT = {"problem", "backend", "status", "device", "dtype", "seed", "pinnkit_version"}
CONTRACT |= {"python", "jax_version", "steps", "wall_s", "compile_s", "steps_per_s", "loss"}
CONTRACT |= {"errors", "unknowns"}


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("operator") / "run"
    assert main(["solve", SPEC, "--out", str(out), "--quiet", *_sets(FAST)]) == 0
    return out


def test_the_family_is_claimed_by_the_model_backend():
    assert family_of({"model": {"backend": "sfno"}}) is OperatorFamily
    assert family_of({"model": {"backend": "fno3d"}}) is OperatorFamily
    assert family_of({"model": {"backend": "mlp"}}) is not OperatorFamily


def test_solve_writes_the_contract_summary_and_outputs(run):
    summary = json.loads((run / "summary.json").read_text())
    assert CONTRACT <= set(summary)
    assert summary["status"] == "ok" and summary["backend"] == "sfno"
    assert summary["steps"] == 12 and summary["unknowns"] == {}
    errors = summary["errors"]
    for name in ("train", "test"):
        assert 0 < errors[name]["rel_l2"] <= errors[name]["rel_l2_max"] < 2
    assert errors["refine"]["res"] == 32 and np.isfinite(errors["refine"]["residual_after"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 8, 12]
    assert rows[0]["phase"] == "adam" and rows[-1]["phase"] == "refine"
    with np.load(run / "solution.npz") as f:
        # refined: compared on the file's 32^2 grid; 2 test trajectories, 4 predicted steps
        assert f["prediction"].shape == f["target"].shape == (2, 4, 32, 32)
        assert f["inputs"].shape == (2, 4, 32, 32)
        np.testing.assert_allclose(f["t"], [0.8, 1.0, 1.2, 1.4], rtol=1e-6)
    assert (run / "model.eqx").stat().st_size > 0
    assert (run / "plots" / "trajectory.png").stat().st_size > 0
    assert (run / "spec.resolved.yaml").exists()


@pytest.mark.parametrize("stop", [4, 12], ids=["in-training", "in-refinement"])
def test_interrupt_then_resume_ends_where_an_uninterrupted_run_ends(run, tmp_path, stop):
    out = tmp_path / "stopped"

    def ctrl_c(entry):
        if entry["step"] == stop:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: the run stops after this step

    with pytest.raises(InterruptedRun):
        solve(SPEC, out=out, overrides=FAST, progress=False, log=ctrl_c)
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    assert json.loads((out / "checkpoint" / "meta.json").read_text())["step"] == min(stop, 8)
    assert main(["solve", "--resume", str(out), "--quiet"]) == 0
    resumed = json.loads((out / "summary.json").read_text())
    whole = json.loads((run / "summary.json").read_text())
    assert resumed["status"] == "ok"
    for name, errors in whole["errors"].items():
        assert resumed["errors"][name] == pytest.approx(errors, rel=1e-5), name
    with np.load(out / "solution.npz") as a, np.load(run / "solution.npz") as b:
        np.testing.assert_allclose(a["prediction"], b["prediction"], rtol=1e-5, atol=1e-6)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4, 8, 12]


def test_a_huge_learning_rate_exits_3_with_status_diverged(tmp_path):
    out = tmp_path / "diverged"
    sets = [*FAST, "refine=null", "train.optimizer={name: sgd, lr: 1.0e+30}"]
    assert main(["solve", SPEC, "--out", str(out), "--quiet", *_sets(sets)]) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and "message" in summary
    assert (out / "checkpoint" / "meta.json").exists()


@pytest.mark.parametrize(
    "override, path",
    [
        ("model.widht=4", "model.widht"),
        ("data.file=missing.npz", "data.file"),
        ("data.test=40", "data.test"),
        ("data.out_steps=8", "data.out_steps"),
        ("model.modes=[6, 6, 9]", "model.modes"),
        ("train.optimizer.name=adamm", "train.optimizer.name"),
    ],
)
def test_a_bad_key_or_file_exits_2_naming_the_key_path(capsys, tmp_path, override, path):
    code = main(["solve", SPEC, "--out", str(tmp_path / "bad"), "--quiet", "--set", override])
    assert code == 2
    assert path in capsys.readouterr().err


def test_a_file_that_is_not_npz_is_a_spec_error(tmp_path):
    (tmp_path / "bad.npz").write_text("not a zip file")
    with pytest.raises(SpecError) as e:
        load_spec(SPEC, [f"data.file={tmp_path / 'bad.npz'}"])
    assert e.value.path == "data.file"


def test_refine_needs_an_sfno():
    with pytest.raises(SpecError, match="SFNO"):
        load_spec(SPEC, ["model={backend: fno3d, modes: [4, 4, 2], width: 4, layers: 1}"])


def test_validate_describes_the_spec(capsys):
    assert main(["validate", SPEC]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "operator sfno_ns2d_small" in out and "refine" in out


def test_report_returns_the_summary(run, capsys):
    assert main(["report", str(run)]) == 0
    assert "sfno_ns2d_small" in capsys.readouterr().out
    from pinnkit import report

    assert report(run) == json.loads((run / "summary.json").read_text())
