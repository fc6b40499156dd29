"""Quantum-well eigenvalue problems (issue 3), solved as shipped and held to their bars.

The reported eigenvalues are the Ritz values of the trained states (orthonormal by
construction, rotated by a final Rayleigh–Ritz step); the bars are the issue's. Exact energies
of the piecewise-constant wells come from their matching conditions
(`pinnkit.reference.schrodinger.finite_well_energies`, `barrier_box_energies`), independent of
the finite-difference reference the runs report against.
"""

import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from pinnkit.reference.schrodinger import barrier_box_energies, finite_well_energies

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


def energies_within(summary, exact, bar):
    rel = np.abs(np.array(summary["eigenvalues"]) - exact) / exact
    assert np.all(rel < bar), rel


def test_finite_well_three_states(tmp_path):
    s = eigen("finite_well", tmp_path)
    energies_within(s, finite_well_energies(100.0, 1.0, -2.0, 2.0, states=3), 1e-4)
    assert all(s["errors"][f"psi{n}"]["rel_l2"] < 1e-2 for n in range(3))


def test_double_well_pair(tmp_path):
    s = eigen("double_well", tmp_path)
    exact = barrier_box_energies(100.0, 1.0, -2.0, 2.0, states=2)
    energies_within(s, exact, 1e-4)
    # The pair is resolved: after the Ritz rotation each state is the symmetric or the
    # antisymmetric one, not a mixture localised in one well (that would be ~100% off).
    assert all(s["errors"][f"psi{n}"]["rel_l2"] < 0.2 for n in range(2))
    # Resolved: the Ritz values are two, in order, split by the right amount to within a
    # factor of two. The split (2.7e-5 of the energy) is set by psi's tail in the barrier,
    # where psi is ~1e-4 of its peak; over seeds it came out 1.1x to 1.9x (RESULTS.md).
    split, exact_split = np.diff(s["eigenvalues"])[0], np.diff(exact)[0]  # 1.0402e-4
    assert 0.5 * exact_split < split < 2 * exact_split, (split, exact_split)


def test_harmonic_oscillator(tmp_path):
    s = eigen("harmonic", tmp_path)
    energies_within(s, 2 * np.arange(4) + 1.0, 1e-4)
