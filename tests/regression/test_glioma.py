"""GliODIL on the shipped synthetic patient (problems/glioma2d.yaml, the default patient of
`pinnkit data glioma`), through ``pinnkit solve``, held to issue 6's bar: D_w T and rho T
within 20 %, Dice >= 0.8 between the inferred and true c >= 0.1 regions, and the inferred plan
covering the true c >= 0.001 region with less volume than the uniform 15 mm margin needs.
Figures: benchmarks/RESULTS.md (glioma)."""

import json
import pathlib

import pytest

import pinnkit

PROBLEMS = pathlib.Path(__file__).resolve().parents[2] / "problems"
pytestmark = pytest.mark.regression


def test_default_patient_meets_the_issue_bar(tmp_path):
    run = pinnkit.solve(PROBLEMS / "glioma2d.yaml", out=tmp_path / "glioma2d", progress=False)
    summary = json.loads((tmp_path / "glioma2d" / "summary.json").read_text())
    print("\n" + "\n".join(run.describe()))
    rec = summary["recovery"]
    assert abs(rec["D_w_T_relative_error"]) < 0.2, rec
    assert abs(rec["rho_T_relative_error"]) < 0.2, rec
    assert rec["dice_c>=0.1"] >= 0.8, rec
    plans = rec["plans"]
    assert plans["density_volume_to_cover"] < plans["margin_volume_to_cover"], plans
    assert plans["density_coverage"] >= plans["margin_coverage"], plans
    assert summary["wall_s"] < 180
