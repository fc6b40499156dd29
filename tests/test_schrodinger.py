"""Eigenvalue specs: the schrodinger builtin expands into states, energies and integrals."""

import numpy as np
import pytest

from pinnkit import SpecError, load_spec
from pinnkit.core.problem import Reference
from pinnkit.train.solution import field_errors


def spec(**equation):
    return {
        "name": "well",
        "coords": ["x"],
        "domain": {"x": [-2, 2]},
        "fields": ["psi"],
        "equation": {"name": "schrodinger", **equation},
        "conditions": [{"on": "boundary", "psi": "0"}],
    }


def test_states_expand_into_fields_energies_and_integrals():
    loaded = load_spec(spec(potential="finite_well", depth=100, width=1, states=3))
    s, problem = loaded.spec, loaded.problem()
    assert problem.fields == ("psi0", "psi1", "psi2")
    # Reported: the Rayleigh quotients R_n, tied by integral terms to the trained energies E_n.
    assert problem.eigenvalues == ("R0", "R1", "R2")
    assert set(s.unknowns) == {"E0", "E1", "E2"}
    assert len(problem.equation.names) == 3
    assert len(problem.conditions) == 3  # the boundary condition, once per state
    labels = [i.label for i in problem.integrals]
    assert labels == ["energy psi0", "energy psi1", "energy psi2", "trace"]
    assert problem.integrals[-1].minimize and not problem.integrals[0].minimize
    assert all(i.breaks == {"x": (-0.5, 0.5)} for i in problem.integrals)
    # Orthonormal by construction, and the network sees the jumps of V.
    assert loaded.model.orthonormal.breaks == {"x": [-0.5, 0.5]}
    assert loaded.model.interfaces == ["x - (-0.5)", "x - (0.5)"]
    assert s.train.weighting == "fixed"
    exact = [6.827141981875, 26.951445478594, 58.904615276174]  # pinnkit.reference.schrodinger
    # The coarse finite-difference start is close (so each energy finds its own state) but
    # not the answer: training has to refine it.
    start = [s.unknowns[f"E{n}"] for n in range(3)]
    np.testing.assert_allclose(start, exact, rtol=2e-2)
    assert abs(start[0] - exact[0]) / exact[0] > 1e-5
    for names in (problem.eigenvalues, ("E0", "E1", "E2")):
        np.testing.assert_allclose([problem.true_unknowns[e] for e in names], exact, rtol=1e-9)
    ref = problem.reference()
    assert ref.sign_free and set(ref.values) == {"psi0", "psi1", "psi2"}


def test_penalty_normalisation_is_the_papers_formulation():
    loaded = load_spec(spec(potential="finite_well", states=3, normalisation="penalty"))
    problem = loaded.problem()
    assert problem.eigenvalues == ("E0", "E1", "E2")
    assert loaded.model.orthonormal is False
    assert [i.label for i in problem.integrals] == [
        "norm psi0",
        "norm psi1",
        "<psi0,psi1>",
        "norm psi2",
        "<psi0,psi2>",
        "<psi1,psi2>",
    ]
    with pytest.raises(SpecError, match="normalisation") as err:
        load_spec(spec(normalisation="soft"))
    assert err.value.path == "equation.normalisation"


def test_jumps_of_an_expression_potential_are_found():
    from pinnkit.equations.schrodinger import _evaluate, find_jumps

    def jumps(text, lo=-2.0, hi=2.0):
        return find_jumps(lambda x: _evaluate(text, np.asarray(x, float), {}), lo, hi)

    np.testing.assert_allclose(jumps("where(abs(x) < 0.5, 0, 100)"), [-0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(jumps("where(x > 1/3, 10, 0) + x^2"), [1 / 3], atol=1e-12)
    assert jumps("x^2") == [] and jumps("50*tanh(100*x)") == []  # steep is not a jump
    loaded = load_spec(spec(potential="where(abs(x) < 0.5, 0, 100)", states=1))
    assert len(loaded.model.interfaces) == 2


def test_potential_expression_and_errors():
    problem = load_spec(spec(potential="x^2", states=2)).problem()
    assert "(x^2)*psi0" in problem.equation.expressions[0].text
    with pytest.raises(SpecError, match="did you mean 'harmonic'"):
        load_spec(spec(potential="harmonik"))
    with pytest.raises(SpecError, match="did you mean 'states'"):
        load_spec(spec(stats=2))
    with pytest.raises(SpecError, match="states"):
        load_spec(spec(states=0))
    with pytest.raises(SpecError, match="one field"):
        load_spec({**spec(), "fields": ["a", "b"]})


def test_eigenfunction_errors_ignore_the_sign():
    ref = Reference(np.zeros((3, 1)), {"psi0": np.array([1.0, 2.0, 1.0])}, sign_free=True)
    errors = field_errors({"psi0": -np.array([1.0, 2.0, 1.0])}, ref)
    assert errors["psi0"]["rel_l2"] == 0.0
    strict = Reference(ref.points, ref.values)
    assert field_errors({"psi0": -np.array([1.0, 2.0, 1.0])}, strict)["psi0"]["rel_l2"] == 2.0


def test_residual_based_sampling_sees_the_named_norms(tmp_path):
    import pinnkit

    s = spec(potential="infinite_well", states=1)
    s["domain"] = {"x": [0, 1]}
    s["train"] = {
        "optimizer": "adam",
        "steps": 20,
        "points": {"interior": 32, "sampler": "rad"},
        "log_every": 10,
    }
    s["model"] = {"width": 8, "depth": 1}
    sol = pinnkit.solve(s, out=tmp_path / "r", progress=False)
    assert sol.status == "ok" and sol.record.steps == 20


def test_a_phase_can_hold_unknowns_fixed(tmp_path):
    import pinnkit

    s = spec(potential="infinite_well", states=2)
    s["domain"] = {"x": [0, 1]}
    s["model"] = {"width": 8, "depth": 1}
    loaded = load_spec(s)
    phases = loaded.spec.train.phases  # the eigenvalue default: Adam with energies held
    assert phases[0].freeze == ["E0", "E1"] and not phases[1].freeze
    assert phases[-1].optimizer == "lbfgs"
    s["train"] = {
        "phases": [
            {"optimizer": {"name": "adam", "lr": 0.1}, "steps": 20, "freeze": ["E1"]},
        ],
        "points": {"interior": 32},
        "log_every": 10,
    }
    sol = pinnkit.solve(s, out=tmp_path / "r", progress=False)
    start = loaded.spec.unknowns
    assert float(sol.unknowns["E1"]) == pytest.approx(start["E1"], rel=1e-7)  # float32
    assert abs(float(sol.unknowns["E0"]) - start["E0"]) > 1e-3  # the other one moved
    bad = {**s, "train": {"phases": [{"optimizer": "adam", "steps": 5, "freeze": ["E7"]}]}}
    with pytest.raises(SpecError, match="not an unknown") as err:
        load_spec(bad)
    assert err.value.path == "train.phases[0].freeze"
    bad["train"]["phases"] = [{"optimizer": "lbfgs", "steps": 5, "freeze": ["E0"]}]
    with pytest.raises(SpecError, match="line-search") as err:
        load_spec(bad)
    assert err.value.path == "train.phases[0].freeze"
