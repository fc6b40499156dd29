"""The reference problems, each solved as shipped and held to its accuracy bar (issue 2).

Run alone with ``pytest -m regression``. Each spec's CPU budget finishes in about three
minutes or less on 2 cores. Figures measured with these specs are in benchmarks/RESULTS.md.
"""

import pathlib

import pytest

import pinnkit

PROBLEMS = pathlib.Path(__file__).resolve().parents[2] / "problems"
pytestmark = pytest.mark.regression


def solve(name, tmp_path, overrides=()):
    spec = pinnkit.load_spec(PROBLEMS / f"{name}.yaml", list(overrides))
    solution = pinnkit.solve(spec, out=tmp_path / name, progress=False)
    errors = solution.errors()
    print(f"\n{name}: {errors}  ({solution.record.wall_s:.0f} s, {solution.record.steps} steps)")
    assert solution.status == "ok"
    return errors


@pytest.mark.parametrize(
    "name, bar",
    [("poisson1d", 1e-3), ("poisson2d", 1e-2), ("helmholtz2d", 1e-2), ("burgers1d", 1e-2)],
)
def test_reference_problem_meets_its_bar(name, bar, tmp_path):
    assert solve(name, tmp_path)["u"]["rel_l2"] < bar


def test_allen_cahn_causal_training_beats_the_same_budget_without(tmp_path):
    causal = solve("allen_cahn1d", tmp_path / "causal")["u"]["rel_l2"]
    plain = solve("allen_cahn1d", tmp_path / "plain", ["train.causal=false"])["u"]["rel_l2"]
    print(f"allen_cahn1d rel. L2: causal {causal:.3e}, without {plain:.3e}")
    assert causal < 0.15
    assert causal < 0.5 * plain
