"""The PIG reference problems (issue 4), each solved as shipped and held to its bar.

Paper figures (Kang et al., ICLR 2025, Table 1, GPU, full budget): Helmholtz 4.13e-5, flow
mixing 4.51e-4, Klein–Gordon 2.76e-3. The shipped specs are CPU budgets of a few minutes;
benchmarks/RESULTS.md §6 has the measured figures and docs/pig.md the full-scale settings.
"""

import pytest

from .test_problems import solve

pytestmark = pytest.mark.regression


@pytest.mark.parametrize(
    "name, bar",
    [
        ("helmholtz2d_pig", 1e-3),  # the bar at a CPU budget of at most 5 minutes
        ("klein_gordon_pig", 2e-2),  # measured 7.0e-3 (soft conditions, as in the paper)
        ("flow_mixing_pig", 5e-2),  # measured 2.1e-2
    ],
)
def test_pig_problem_meets_its_bar(name, bar, tmp_path):
    assert solve(name, tmp_path)["u"]["rel_l2"] < bar
