"""Quantum-well eigenvalue problems (issue 3), solved as shipped and held to their bars.

Only the infinite well so far: the multi-state wells (finite well, double well, harmonic)
do not yet reach their bars and are not shipped.

Reference energies: `pinnkit.reference.schrodinger` (finite differences with Richardson
extrapolation; exact matching conditions for the piecewise-constant wells).
"""

import json
import math
import pathlib
import subprocess
import sys

import pytest

PROBLEMS = pathlib.Path(__file__).resolve().parents[2] / "problems"
pytestmark = pytest.mark.regression


def eigen(name, tmp_path):
    # Through the command line, in its own process: the spec asks for float64, which JAX
    # turns on for a whole process, and the other tests of this session run in float32.
    cmd = [sys.executable, "-m", "pinnkit.cli", "solve", str(PROBLEMS / f"{name}.yaml")]
    proc = subprocess.run(
        cmd + ["--out", str(tmp_path), "--quiet"], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    print(f"\n{name}: E = {summary['eigenvalues']}, errors {summary['errors']}")
    assert summary["status"] == "ok"
    return summary


def test_infinite_well(tmp_path):
    s = eigen("infinite_well", tmp_path)
    assert abs(s["eigenvalues"][0] - math.pi**2) / math.pi**2 < 1e-5
    assert s["errors"]["psi0"]["rel_l2"] < 1e-3
