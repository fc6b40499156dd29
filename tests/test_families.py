"""The contract every method family keeps (issue 15), checked the same way for each: the one
`solve` path, the same summary keys, `train.steps` as the run's total, Ctrl-C (a real SIGINT)
then ``--resume`` ending where an uninterrupted run ends, divergence exiting with code 3 and
the last finite checkpoint kept, and a wrong key exiting with code 2."""

from __future__ import annotations

import json
import os
import pathlib
import signal

import pytest
from test_glioma_spec import patient_dir  # noqa: F401  (a fixture)
from test_trainer import CONTRACT_KEYS, small_spec

import pinnkit
from pinnkit.cli import main
from pinnkit.errors import InterruptedRun

PROBLEMS = pathlib.Path(__file__).resolve().parents[1] / "problems"


@pytest.fixture(scope="module")
def patient_spec(patient_dir):  # noqa: F811
    return patient_dir / "problem.yaml"


def _family(name, request):
    """(spec, overrides, total steps, a step to interrupt at, overrides that diverge)."""
    if name == "pde":
        return (
            small_spec(log_every=5, checkpoint_every=5),
            [],
            60,
            20,
            ["train.phases=[{optimizer: {name: sgd, lr: 1.0e+30}, steps: 30}]"],
        )
    if name == "glioma":
        fast = ["model.nt=12", "model.ratios=[1, 2]", "train.steps=8"]
        diverge = ["train.optimizer={name: sgd, lr: 1.0e+200}"]
        return request.getfixturevalue("patient_spec"), fast, 8, 6, diverge
    levels = "train.levels=[{adam_steps: 40, lbfgs_steps: 0, points: 64}, " + (
        "{adam_steps: 30, lbfgs_steps: 5, points: 64, lr: 3.0e-4, scale: 0.1}]"
    )
    fast = [levels, "model.width=8", "model.depth=2", "reference.grid=2", "reference.times=11"]
    diverge = ["train.levels=[{adam_steps: 30, lbfgs_steps: 0, points: 64, lr: 1.0e+30}]"]
    return PROBLEMS / "spm_surrogate.yaml", fast, 75, 60, diverge


FAMILIES = ["pde", "glioma", "battery"]


def _summary(run_dir):
    return json.loads((pathlib.Path(run_dir) / "summary.json").read_text())


def _steps(run_dir):
    text = (pathlib.Path(run_dir) / "metrics.jsonl").read_text()
    return [json.loads(line)["step"] for line in text.splitlines()]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_same_road_and_the_same_summary(family, request, tmp_path):
    spec, overrides, total, stop_at, _ = _family(family, request)
    loaded = pinnkit.load_spec(spec, overrides)
    assert loaded.kind == family
    assert loaded.total_steps() == total  # train.steps: the run's total
    result = pinnkit.solve(loaded, out=tmp_path / "run", progress=False)
    summary = _summary(tmp_path / "run")
    assert set(CONTRACT_KEYS) <= set(summary), set(CONTRACT_KEYS) - set(summary)
    assert summary["status"] == "ok" and summary["steps"] == total
    steps = _steps(tmp_path / "run")
    assert steps == sorted(set(steps)) and steps[-1] == total
    assert result.describe()[0].startswith(summary["problem"])
    assert (tmp_path / "run" / "spec.resolved.yaml").is_file()
    assert main(["report", str(tmp_path / "run")]) == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_ctrl_c_then_resume_ends_where_an_uninterrupted_run_ends(family, request, tmp_path):
    spec, overrides, total, stop_at, _ = _family(family, request)

    def ctrl_c(entry):
        if entry["step"] >= stop_at and not ctrl_c.sent:
            ctrl_c.sent = True
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C

    ctrl_c.sent = False
    stopped = tmp_path / "stopped"
    with pytest.raises(InterruptedRun):
        pinnkit.solve(spec, out=stopped, overrides=overrides, progress=False, log=ctrl_c)
    assert _summary(stopped)["status"] == "interrupted"
    assert (stopped / "checkpoint" / "meta.json").is_file()
    assert main(["solve", "--resume", str(stopped), "--quiet"]) == 0
    pinnkit.solve(spec, out=tmp_path / "whole", overrides=overrides, progress=False)
    resumed, whole = _summary(stopped), _summary(tmp_path / "whole")
    assert resumed["status"] == "ok" and resumed["steps"] == whole["steps"] == total
    assert resumed["loss"]["total"] == pytest.approx(whole["loss"]["total"], rel=1e-6)
    assert _flat(resumed["errors"]) == pytest.approx(_flat(whole["errors"]), rel=1e-6)
    steps = _steps(stopped)
    assert steps == sorted(set(steps)) and steps[-1] == total


@pytest.mark.parametrize("family", FAMILIES)
def test_divergence_exits_3_and_keeps_the_last_finite_checkpoint(family, request, tmp_path):
    spec, overrides, _, _, diverge = _family(family, request)
    out = tmp_path / "diverged"
    sets = [x for o in [*overrides, *diverge] for x in ("--set", o)]
    if family == "glioma":
        sets += ["--set", "model.initial={D_w_T: 10, rho_T: 5}"]
    assert main(["solve", str(_as_file(spec, tmp_path)), "--out", str(out), "--quiet", *sets]) == 3
    assert _summary(out)["status"] == "diverged"
    assert (out / "checkpoint" / "meta.json").is_file()


@pytest.mark.parametrize("family", FAMILIES)
def test_a_wrong_key_exits_2_naming_it(family, request, tmp_path, capsys):
    spec, overrides, _, _, _ = _family(family, request)
    sets = [x for o in overrides for x in ("--set", o)] + ["--set", "train.stpes=3"]
    assert main(["validate", str(_as_file(spec, tmp_path)), *sets]) == 2
    err = capsys.readouterr().err
    assert "train.stpes" in err and "steps" in err  # the key and a "did you mean"


def _flat(tree, prefix="") -> dict:
    if not isinstance(tree, dict):
        return {prefix: tree}
    return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}


def _as_file(spec, tmp_path) -> pathlib.Path:
    if isinstance(spec, dict):
        import yaml

        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
        return path
    return pathlib.Path(spec)
