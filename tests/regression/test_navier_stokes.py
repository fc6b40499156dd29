"""The Navier–Stokes reference problems (issue 5), each solved as shipped and held to the bar
the issue names: Kovasznay flow and the Taylor–Green vortex against their exact solutions,
the lid-driven cavity at Re = 100 against the centreline table of Ghia, Ghia & Shin (1982).
Figures measured with these specs are in benchmarks/RESULTS.md."""

import pytest

from .test_problems import solve

pytestmark = pytest.mark.regression


@pytest.mark.parametrize("name, bar", [("kovasznay", 1e-3), ("taylor_green2d", 1e-2)])
def test_exact_flows_meet_their_bar(name, bar, tmp_path):
    errors = solve(name, tmp_path)
    assert errors["u"]["rel_l2"] < bar and errors["v"]["rel_l2"] < bar


def test_cavity_centrelines_match_ghia(tmp_path):
    errors = solve("cavity_re100", tmp_path)
    assert errors["u"]["max_abs"] < 0.02 and errors["v"]["max_abs"] < 0.02
