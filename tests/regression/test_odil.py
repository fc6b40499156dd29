"""The ODIL backend's reference problems (Karnakov et al., arXiv 2205.04611), held to the bars
of issue 6. Figures and settings: benchmarks/odil_results.md."""

import pathlib

import numpy as np
import pytest

import pinnkit

PROBLEMS = pathlib.Path(__file__).resolve().parents[2] / "problems"
pytestmark = pytest.mark.regression


def solve(name, tmp_path, overrides=()):
    spec = pinnkit.load_spec(PROBLEMS / f"{name}.yaml", list(overrides))
    solution = pinnkit.solve(spec, out=tmp_path / "-".join([name, *overrides]), progress=False)
    print(f"\n{name} {list(overrides)}: {solution.errors()}  ({solution.record.wall_s:.1f} s)")
    assert solution.status == "ok"
    return solution


def test_wave_converges_at_second_order_with_newton_in_one_step(tmp_path):
    """The five-mode wave solution: the error falls by 4 per halving of the spacing, and the
    first Newton step already reaches the discrete least-squares solution."""
    errors = []
    for n in (33, 65, 129):
        sol = solve("wave1d_odil", tmp_path, [f"model.grid={n}"])
        first, second = (h["loss"] for h in sol.record.history)
        assert second >= first * (1 - 1e-6) - 1e-12  # a second step finds nothing to improve
        errors.append(sol.errors()["u"]["rel_l2"])
    rates = np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))
    print(f"errors {errors}, observed orders {rates}")
    assert np.all(rates > 1.8)
    assert errors[-1] < 1.5e-2  # the shipped 129² grid


def test_heat_conductivity_is_inferred_from_a_stripe_of_observations(tmp_path):
    """The ODIL inverse benchmark: k(u) (a network) and u everywhere from u in
    |t - 1/2| < 1/6 on a 64 x 64 grid. Measured: k rel. L2 6.4e-2 over u in [0, 1], u 1.4e-2."""
    errors = solve("heat_inverse_odil", tmp_path).errors()
    assert errors["k"]["rel_l2"] < 0.12
    assert errors["u"]["rel_l2"] < 0.03
