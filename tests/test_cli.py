"""The command line: exit codes, messages without tracebacks, list, validate, report."""

import json
import subprocess
import sys

import pytest
import yaml
from test_trainer import small_spec

from pinnkit.cli import main


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "pinnkit.cli", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(small_spec()))
    return path


def test_bad_spec_exits_2_without_traceback(tmp_path, spec_file):
    text = spec_file.read_text().replace("width: 16", "widht: 16")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = run_cli("solve", str(bad), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "model.widht" in proc.stderr and "did you mean 'width'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_file_and_bad_override_exit_2(tmp_path, spec_file):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert main(["validate", str(spec_file), "--set", "train.steps"]) == 2
    assert main(["validate", str(spec_file), "--set", "train.steps=-3"]) == 2
    proc = run_cli("solve")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_unknown_command_exits_2():
    proc = run_cli("frobnicate")
    assert proc.returncode == 2


def test_validate_and_list(spec_file, capsys):
    assert main(["validate", str(spec_file)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "u_xx" in out
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("burgers", "helmholtz", "mlp", "adam", "lbfgs", "sobol", "rad", "poisson1d"):
        assert word in out


def test_solve_then_report(tmp_path, spec_file, capsys):
    out = tmp_path / "run"
    assert main(["solve", str(spec_file), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "rel_l2" in printed and str(out) in printed
    summary = json.loads((out / "summary.json").read_text())
    (out / "plots" / "fields.png").unlink()
    assert main(["report", str(out)]) == 0
    reported = json.loads(capsys.readouterr().out)
    assert (out / "plots" / "fields.png").exists()
    assert reported["errors"]["u"]["rel_l2"] == pytest.approx(summary["errors"]["u"]["rel_l2"])
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_default_run_directory(tmp_path, spec_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["solve", str(spec_file), "--quiet", "--set", "train.phases.1.steps=0"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("poisson-small-") and (run / "summary.json").exists()
