"""The GP backend's reference problems (GP-HM, arXiv 2311.04465), each solved as shipped and
held to the bar its issue names. Run alone with ``pytest -m regression -k gp``; the three
longest (``slow``: sin500, x·sin200, Allen–Cahn, 2-4 minutes each on a shared 2-core CPU) are
left out by ``-m "not slow"`` (what ``make test`` runs), which runs them at a CI budget instead.

The 2D problem (``gp_poisson2d_sin100``) runs at its full CPU setting with ``-m slow`` and at
a CI budget otherwise. Figures, timings and settings are in benchmarks/gp_results.md.
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
    record = solution.record
    print(f"\n{name}: {errors}  ({record.wall_s:.0f} s, {record.steps} steps)")
    assert solution.status == "ok"
    assert all(v == 1 for v in record.traces.values())  # one compilation per phase
    return errors["u"]["rel_l2"]


@pytest.mark.parametrize(
    "name, bar",
    [
        ("gp_poisson1d_sin100", 1e-3),
        ("gp_poisson1d_multiscale", 1e-4),
        pytest.param("gp_poisson2d_sin100", 1e-2, marks=pytest.mark.slow),
        pytest.param("gp_poisson1d_xsin200", 1e-2, marks=pytest.mark.slow),
        pytest.param("gp_poisson1d_sin500", 1e-2, marks=pytest.mark.slow),
        pytest.param("gp_allen_cahn1d", 1e-2, marks=pytest.mark.slow),
    ],
)
def test_gp_problem_meets_its_bar(name, bar, tmp_path):
    assert solve(name, tmp_path) < bar


@pytest.mark.parametrize(
    "name, steps, bar",
    [
        # measured on a loaded 2-core machine: 5.6e-2 in 65 s, 1.5e-2 in 123 s, 3.8e-3 in 104 s
        ("gp_poisson1d_xsin200", 80, 0.1),
        ("gp_poisson1d_sin500", 150, 3e-2),
        ("gp_allen_cahn1d", 80, 1e-2),
    ],
)
def test_gp_problem_at_the_ci_budget(name, steps, bar, tmp_path):
    """The slow problems with fewer kernel steps: the method at work, within CI's time."""
    assert solve(name, tmp_path, [f"train.steps={steps}"]) < bar


def test_gp_poisson2d_kernel_steps_at_the_ci_budget(tmp_path):
    """The 2D problem with 25 kernel steps at a constant rate instead of 120 (each a
    preconditioned solve of 48 400 grid values): the kernel learns where the initial one
    leaves 1.0e-1 (measured 3.6e-2)."""
    assert (
        solve(
            "gp_poisson2d_sin100",
            tmp_path,
            ["train.phases.1.steps=25", "train.phases.1.optimizer.schedule=constant"],
        )
        < 6e-2
    )
