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
    assert problem.eigenvalues == ("E0", "E1", "E2")
    assert len(problem.equation.names) == 3
    assert len(problem.conditions) == 3  # the boundary condition, once per state
    labels = [i.label for i in problem.integrals]
    assert labels == [
        "norm psi0",
        "norm psi1",
        "<psi0,psi1>",
        "norm psi2",
        "<psi0,psi2>",
        "<psi1,psi2>",
    ]
    exact = [6.827141981875, 26.951445478594, 58.904615276174]  # pinnkit.reference.schrodinger
    # The coarse finite-difference start is close (so each energy finds its own state) but
    # not the answer: training has to refine it.
    start = [s.unknowns[e] for e in problem.eigenvalues]
    np.testing.assert_allclose(start, exact, rtol=2e-2)
    assert abs(start[0] - exact[0]) / exact[0] > 1e-5
    np.testing.assert_allclose(
        [problem.true_unknowns[e] for e in problem.eigenvalues], exact, rtol=1e-9
    )
    ref = problem.reference()
    assert ref.sign_free and set(ref.values) == {"psi0", "psi1", "psi2"}


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
