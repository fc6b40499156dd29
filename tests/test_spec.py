"""The spec layer: validation, helpful errors, overrides, and what a spec builds."""

import textwrap

import numpy as np
import pytest

from pinnkit import SpecError, load_spec
from pinnkit.spec.build import build_phases, phase_configs

BASE = """
name: heat1d
description: Heat equation with an exact solution
coords: [x, t]
domain: {x: [0, 1], t: [0, 1]}
fields: [u]
params: {nu: 0.1}
equation:
  residuals: ["u_t - nu*u_xx"]
conditions:
  - {on: "x=0", u: "0"}
  - {on: "x=1", u_x: "0"}
  - {on: "t=0", u: "sin(pi*x)"}
  - {on: "x=0", residual: "u_x + u"}
reference:
  exact: {u: "exp(-pi^2*nu*t)*sin(pi*x)"}
model: {backend: mlp, width: 64, depth: 4, activation: tanh}
train:
  steps: 5000
  optimizer: {name: adam, lr: 1.0e-3}
  points: {interior: 2048, boundary: 256}
  seed: 0
"""


def write(tmp_path, text, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def error_of(tmp_path, text, overrides=()):
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text), list(overrides))
    return info.value


def test_design_example_is_valid(tmp_path):
    loaded = load_spec(write(tmp_path, BASE))
    problem = loaded.problem()
    assert problem.coords == ("x", "t")
    assert problem.box.time_axis == 1
    assert set(problem.equation.requests) == {"u_t", "u_xx"}
    assert [c.label for c in problem.conditions] == ["x=0", "x=1", "t=0", "x=0"]
    assert loaded.model.width == 64
    ref = problem.reference()
    i = np.argmin(np.abs(ref.points[:, 0] - 0.5) + np.abs(ref.points[:, 1] - 1.0))
    assert ref.values["u"][i] == pytest.approx(np.exp(-(np.pi**2) * 0.1), rel=1e-6)


def test_model_and_train_may_be_left_out(tmp_path):
    text = BASE.split("model:")[0]
    loaded = load_spec(write(tmp_path, text))
    phases = build_phases(loaded.spec.train)
    assert [p.name for p in phases] == ["adam", "lbfgs"]
    assert loaded.model.backend == "mlp"


def test_typo_in_model_key_suggests_the_fix(tmp_path):
    err = error_of(tmp_path, BASE.replace("width: 64", "widht: 64"))
    assert err.path == "model.widht"
    assert "did you mean 'width'" in str(err)
    assert (
        err.line
        == BASE.splitlines().index(next(l for l in BASE.splitlines() if l.startswith("model:"))) + 1
    )


def test_typo_in_train_key_names_path_and_line(tmp_path):
    err = error_of(tmp_path, BASE.replace("  seed: 0", "  sede: 0"))
    assert err.path == "train.sede"
    assert "did you mean 'seed'" in str(err)
    assert err.line is not None


def test_top_level_typo(tmp_path):
    err = error_of(tmp_path, BASE.replace("params:", "parms:"))
    assert "did you mean 'params'" in str(err)


def test_bad_type_says_what_was_got(tmp_path):
    err = error_of(tmp_path, BASE.replace("steps: 5000", "steps: many"))
    assert err.path == "train.steps"
    assert "'many'" in str(err)


def test_unknown_symbol_in_residual(tmp_path):
    err = error_of(tmp_path, BASE.replace("u_t - nu*u_xx", "u_t - nuu*u_xx"))
    assert "nuu" in str(err) and "did you mean 'nu'" in str(err)
    assert err.path.startswith("equation")


def test_unknown_symbol_in_condition(tmp_path):
    err = error_of(tmp_path, BASE.replace('u: "sin(pi*x)"', 'u: "sin(pi*z)"'))
    assert "'z'" in str(err) and err.path == "conditions[2].u"


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('echo hacked')",
        "().__class__.__bases__",
        "(lambda: 1)()",
        "u.real",
        "open('/etc/passwd')",
        "[u for u in x]",
        "exec('1')",
    ],
)
def test_injection_in_spec_is_refused(tmp_path, payload):
    quoted = "'" + payload.replace("'", "''") + "'"  # a YAML single-quoted string
    err = error_of(tmp_path, BASE.replace('["u_t - nu*u_xx"]', f"[{quoted}]"))
    assert err.exit_code == 2


def test_condition_target_must_be_field_or_derivative(tmp_path):
    err = error_of(tmp_path, BASE.replace('u_x: "0"', 'v: "0"'))
    assert err.path == "conditions[1].v"


def test_condition_on_must_be_a_face(tmp_path):
    err = error_of(tmp_path, BASE.replace('on: "x=1"', 'on: "x=0.5"'))
    assert "x=0" in str(err) and "x=1" in str(err)
    err = error_of(tmp_path, BASE.replace('on: "x=1"', 'on: "z=1"'))
    assert "unknown coordinate" in str(err)


def test_unknown_builtin_equation_suggests(tmp_path):
    err = error_of(tmp_path, BASE.replace('residuals: ["u_t - nu*u_xx"]', "name: heet"))
    assert "did you mean 'heat'" in str(err)


def test_builtin_option_typo(tmp_path):
    err = error_of(tmp_path, BASE.replace('residuals: ["u_t - nu*u_xx"]', "name: heat\n  nuu: 1"))
    assert err.path == "equation.nuu" and "did you mean 'nu'" in str(err)


def test_unknown_backend_and_optimizer(tmp_path):
    err = error_of(tmp_path, BASE.replace("backend: mlp", "backend: mpl"))
    assert err.path == "model.backend" and "did you mean 'mlp'" in str(err)
    err = error_of(tmp_path, BASE, ["train.optimizer.name=adma"])
    assert "did you mean 'adam'" in str(err)
    with pytest.raises(SpecError, match="did you mean 'b1'"):
        build_phases(load_spec(write(tmp_path, BASE), ["train.optimizer.b11=0.8"]).spec.train)


def test_overrides_set_nested_keys_and_types(tmp_path):
    loaded = load_spec(
        write(tmp_path, BASE), ["train.steps=200", "model.width=32", "params.nu=0.5"]
    )
    assert loaded.spec.train.steps == 200
    assert loaded.model.width == 32
    assert loaded.spec.params["nu"] == 0.5
    with pytest.raises(SpecError, match="KEY=VALUE"):
        load_spec(write(tmp_path, BASE), ["train.steps"])


def test_yaml_on_key_is_not_a_boolean(tmp_path):
    loaded = load_spec(write(tmp_path, BASE))
    assert loaded.spec.conditions[0].on == "x=0"


def test_invalid_yaml_names_line(tmp_path):
    err = error_of(tmp_path, "name: a\ncoords: [x\n")
    assert err.line is not None


def test_names_may_not_collide(tmp_path):
    err = error_of(tmp_path, BASE.replace("params: {nu: 0.1}", "params: {u: 0.1}"))
    assert "both" in str(err)


def test_domain_bounds_accept_constant_expressions(tmp_path):
    text = BASE.replace("x: [0, 1]", 'x: [0, "2*pi"]').replace('on: "x=1"', 'on: "x=2*pi"')
    loaded = load_spec(write(tmp_path, text), [])
    assert loaded.problem().box.bounds["x"][1] == pytest.approx(2 * np.pi)


def test_phases_and_steps_extend_the_last_phase(tmp_path):
    text = BASE.replace(
        "  optimizer: {name: adam, lr: 1.0e-3}",
        "  phases:\n    - {optimizer: adam, steps: 100}\n    - {optimizer: lbfgs, steps: 50}",
    ).replace("  steps: 5000\n", "")
    loaded = load_spec(write(tmp_path, text), ["train.steps=400"])
    assert [p.steps for p in phase_configs(loaded.spec.train)] == [100, 300]


def test_optimizer_with_schedule_and_kwargs(tmp_path):
    loaded = load_spec(
        write(tmp_path, BASE),
        [
            "train.optimizer.name=adamw",
            "train.optimizer.weight_decay=0.01",
            "train.optimizer.schedule=cosine",
        ],
    )
    (phase,) = build_phases(loaded.spec.train)
    assert phase.name == "adamw" and phase.steps == 5000


def test_data_file_columns(tmp_path):
    x = np.linspace(0, 1, 5)
    np.savez(tmp_path / "obs.npz", x=x, t=np.zeros(5), u=np.sin(np.pi * x))
    loaded = load_spec(write(tmp_path, BASE + "data:\n  - {file: obs.npz}\n"))
    (obs,) = loaded.problem().data
    assert obs.points.shape == (5, 2) and set(obs.values) == {"u"}
    np.savez(tmp_path / "bad.npz", x=x, u=x)
    err = error_of(tmp_path, BASE + "data:\n  - {file: bad.npz}\n")
    assert "'t'" in str(err)
