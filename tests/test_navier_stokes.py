"""The `navier_stokes` builtin: its residuals vanish on exact Navier–Stokes solutions (2D and
3D, steady and unsteady, both forms) and not on wrong ones; and references that give a field
only where it is tabulated, or a pressure up to a constant."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit import SpecError, load_spec
from pinnkit.backends import PointFunction
from pinnkit.core.derivatives import ForwardMode
from pinnkit.core.objective import Objective
from pinnkit.core.problem import Reference
from pinnkit.train.solution import field_errors

LAM = 10.0 - np.sqrt(100.0 + 4 * np.pi**2)  # Kovasznay, Re = 20


def kovasznay(x):
    e = jnp.exp(LAM * x[0])
    return jnp.array(
        [
            1 - e * jnp.cos(2 * jnp.pi * x[1]),
            LAM / (2 * jnp.pi) * e * jnp.sin(2 * jnp.pi * x[1]),
            0.5 * (1 - jnp.exp(2 * LAM * x[0])),
        ]
    )


def taylor_green(x, nu=0.1):
    decay = jnp.exp(-2 * nu * x[2])
    return jnp.array(
        [
            -jnp.cos(x[0]) * jnp.sin(x[1]) * decay,
            jnp.sin(x[0]) * jnp.cos(x[1]) * decay,
            -0.25 * (jnp.cos(2 * x[0]) + jnp.cos(2 * x[1])) * decay**2,
        ]
    )


def beltrami(x, nu=0.1, a=np.pi / 4, d=np.pi / 2):
    """Ethier & Steinman (1994): an exact unsteady 3D Navier–Stokes solution."""
    px, py, pz, t = x
    decay = jnp.exp(-(d**2) * nu * t)
    u = -a * (
        jnp.exp(a * px) * jnp.sin(a * py + d * pz) + jnp.exp(a * pz) * jnp.cos(a * px + d * py)
    )
    v = -a * (
        jnp.exp(a * py) * jnp.sin(a * pz + d * px) + jnp.exp(a * px) * jnp.cos(a * py + d * pz)
    )
    w = -a * (
        jnp.exp(a * pz) * jnp.sin(a * px + d * py) + jnp.exp(a * py) * jnp.cos(a * pz + d * px)
    )
    p = (
        -(a**2)
        / 2
        * (
            jnp.exp(2 * a * px)
            + jnp.exp(2 * a * py)
            + jnp.exp(2 * a * pz)
            + 2 * jnp.sin(a * px + d * py) * jnp.cos(a * pz + d * px) * jnp.exp(a * (py + pz))
            + 2 * jnp.sin(a * py + d * pz) * jnp.cos(a * px + d * py) * jnp.exp(a * (pz + px))
            + 2 * jnp.sin(a * pz + d * px) * jnp.cos(a * py + d * pz) * jnp.exp(a * (px + py))
        )
    )
    return jnp.array([u * decay, v * decay, w * decay, p * decay**2])


def residual_terms(spec, fn, fields):
    problem = load_spec(spec).problem()
    model = PointFunction(tuple(fields), ForwardMode(), lambda p, x: fn(x), {})
    objective = Objective(problem, interior=256, boundary=16)
    points = objective.sample(key=jax.random.key(0))
    terms = objective.reduce(objective.squared(model, {}, points), points)
    return {k: float(v) for k, v in terms.items() if k in problem.equation.names}


def ns_spec(coords, domain, fields, **equation):
    return {
        "name": "ns",
        "coords": coords,
        "domain": domain,
        "fields": fields,
        "equation": {"name": "navier_stokes", **equation},
        "conditions": [],
    }


CASES = {
    "kovasznay (steady 2D)": (
        ns_spec(["x", "y"], {"x": [-0.5, 1], "y": [-0.5, 1.5]}, ["u", "v", "p"], nu=0.05),
        kovasznay,
        ["momentum_x", "momentum_y", "continuity"],
    ),
    "taylor-green (unsteady 2D)": (
        ns_spec(["x", "y", "t"], {"x": [0, 6], "y": [0, 6], "t": [0, 2]}, ["u", "v", "p"], nu=0.1),
        taylor_green,
        ["momentum_x", "momentum_y", "continuity"],
    ),
    "beltrami (unsteady 3D)": (
        ns_spec(
            ["x", "y", "z", "t"],
            {"x": [-1, 1], "y": [-1, 1], "z": [-1, 1], "t": [0, 1]},
            ["u", "v", "w", "p"],
            nu=0.1,
        ),
        beltrami,
        ["momentum_x", "momentum_y", "momentum_z", "continuity"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_residuals_vanish_on_exact_solutions_and_not_on_wrong_ones(case):
    spec, fn, names = CASES[case]
    terms = residual_terms(spec, fn, spec["fields"])
    assert sorted(terms) == sorted(names)
    for name, value in terms.items():
        assert value < 1e-9, (name, value)
    # A wrong viscosity breaks the momentum equations only; a scaled field breaks them all.
    nu = spec["equation"]["nu"]
    wrong_nu = residual_terms(
        {**spec, "equation": {**spec["equation"], "nu": 2 * nu}}, fn, spec["fields"]
    )
    assert wrong_nu["momentum_x"] > 1e-6 and wrong_nu["continuity"] < 1e-9
    stretched = lambda x: (
        fn(x) * jnp.concatenate([jnp.array([1.0 + 0.1 * x[0]]), jnp.ones(len(names) - 1)])
    )
    assert residual_terms(spec, stretched, spec["fields"])["continuity"] > 1e-4


def test_vorticity_streamfunction_form():
    """Taylor–Green as (w, psi): psi = cos x cos y e^{-2 nu t}, w = -Δpsi = 2 psi."""
    spec = ns_spec(
        ["x", "y", "t"],
        {"x": [0, 6], "y": [0, 6], "t": [0, 1]},
        ["w", "psi"],
        nu=0.1,
        form="vorticity",
    )
    psi = lambda x: jnp.cos(x[0]) * jnp.cos(x[1]) * jnp.exp(-0.2 * x[2])
    terms = residual_terms(spec, lambda x: jnp.array([2 * psi(x), psi(x)]), ["w", "psi"])
    assert set(terms) == {"vorticity", "streamfunction"}
    assert max(terms.values()) < 1e-10
    # A forced steady Kolmogorov flow: w = sin(4y) with psi = sin(4y)/16 needs the source
    # nu * 16 sin(4y) (the advection of a shear flow vanishes).
    steady = ns_spec(
        ["x", "y"],
        {"x": [0, 6], "y": [0, 6]},
        ["w", "psi"],
        nu=0.01,
        form="vorticity",
        source="0.16*sin(4*y)",
    )
    flow = lambda x: jnp.array([jnp.sin(4 * x[1]), jnp.sin(4 * x[1]) / 16])
    assert max(residual_terms(steady, flow, ["w", "psi"]).values()) < 1e-10
    unforced = {**steady, "equation": {**steady["equation"], "source": 0}}
    assert residual_terms(unforced, flow, ["w", "psi"])["vorticity"] > 1e-3


def test_forcing_per_axis():
    """Steady Poiseuille-like flow u = y(1-y) needs the body force f_x = 2 nu (no pressure)."""
    spec = ns_spec(["x", "y"], {"x": [0, 1], "y": [0, 1]}, ["u", "v", "p"], nu=0.3, force_x="2*0.3")
    flow = lambda x: jnp.array([x[1] * (1 - x[1]), 0.0, 0.0])
    assert max(residual_terms(spec, flow, ["u", "v", "p"]).values()) < 1e-10


@pytest.mark.parametrize(
    "change, path, words",
    [
        ({"fields": ["u", "v"]}, "fields", "3 field(s)"),
        ({"equation": {"name": "navier_stokes", "form": "vortex"}}, "equation.form", "vorticity"),
        ({"equation": {"name": "navier_stokes", "force_z": 1}}, "equation.force_z", "force_y"),
        ({"coords": ["x"], "domain": {"x": [0, 1]}}, "coords", "spatial"),
    ],
)
def test_bad_navier_stokes_specs_name_the_key(change, path, words):
    spec = {**ns_spec(["x", "y"], {"x": [0, 1], "y": [0, 1]}, ["u", "v", "p"]), **change}
    with pytest.raises(SpecError) as info:
        load_spec(spec).problem()
    assert info.value.path == path and words in str(info.value)


def test_tabulated_reference_and_pressure_up_to_a_constant(tmp_path):
    """A table that gives u on one line and v on another (blank elsewhere), and a pressure
    compared up to its constant."""
    (tmp_path / "table.csv").write_text("x,y,u,v\n0.5,0.25,1.0,\n0.5,0.75,2.0,\n0.25,0.5,,3.0\n")
    spec = {
        **ns_spec(["x", "y"], {"x": [0, 1], "y": [0, 1]}, ["u", "v", "p"]),
        "reference": {"file": "table.csv"},
    }
    ref = load_spec(spec, base_dir=tmp_path).problem().reference()
    assert set(ref.values) == {"u", "v"}
    predicted = {"u": np.array([1.0, 2.5, 99.0]), "v": np.array([99.0, 99.0, 3.0])}
    errors = field_errors(predicted, ref)
    np.testing.assert_allclose(errors["u"]["max_abs"], 0.5)
    np.testing.assert_allclose(errors["v"]["max_abs"], 0.0)

    pts = np.zeros((3, 2))
    shifted = Reference(pts, {"p": np.array([1.0, 2.0, 4.0])}, up_to_constant=("p",))
    errors = field_errors({"p": np.array([11.0, 12.0, 14.0])}, shifted)
    assert errors["p"]["rel_l2"] < 1e-15
    errors = field_errors({"p": np.array([11.0, 12.0, 14.0])}, Reference(pts, shifted.values))
    assert errors["p"]["rel_l2"] > 1

    # Unsteady: one constant per time level.
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    levels = Reference(pts, {"p": np.array([1.0, 2.0, 3.0, 5.0])}, up_to_constant=("p",))
    offsets = np.array([10.0, 10.0, -4.0, -4.0])
    assert field_errors({"p": levels.values["p"] + offsets}, levels)["p"]["rel_l2"] > 0.5
    per_time = Reference(pts, levels.values, up_to_constant=("p",), time_axis=1)
    assert field_errors({"p": levels.values["p"] + offsets}, per_time)["p"]["rel_l2"] < 1e-15

    with pytest.raises(SpecError) as info:
        load_spec({**spec, "reference": {"file": "table.csv", "up_to_constant": ["q"]}}).problem()
    assert info.value.path == "reference.up_to_constant[0]"


def test_a_flow_run_draws_streamlines_and_the_table_profiles(tmp_path):
    """A short cavity-like solve against a centreline table: the run writes the streamline
    plot and the profile plot next to the usual ones, and errors only where the table has
    values."""
    import pinnkit

    rows = ["x,y,u,v"] + [f"0.5,{y / 10},{(y / 10) ** 2}," for y in range(11)]
    rows += [f"{x / 10},0.5,,{x / 10 * (1 - x / 10)}" for x in range(11) if x != 5]
    (tmp_path / "centre.csv").write_text("\n".join(rows) + "\n")
    spec = {
        **ns_spec(["x", "y"], {"x": [0, 1], "y": [0, 1]}, ["u", "v", "p"]),
        "conditions": [{"on": "y=1", "u": 1, "v": 0}, {"on": "y=0", "u": 0, "v": 0}],
        "reference": {"file": "centre.csv"},
        "model": {"width": 8, "depth": 1},
        "train": {"steps": 3, "points": {"interior": 32, "boundary": 8}},
    }
    solution = pinnkit.solve(
        load_spec(spec, base_dir=tmp_path), out=tmp_path / "run", progress=False
    )
    plots = sorted(p.name for p in (tmp_path / "run" / "plots").iterdir())
    assert {"profiles.png", "streamlines.png", "fields.png"} <= set(plots)
    assert set(solution.errors()) == {"u", "v"}


def test_a_3d_unsteady_flow_trains_end_to_end(tmp_path):
    """The 3D velocity-pressure form through the whole pipeline: the Beltrami flow's data at
    t = 0 and on the inflow face x = -1, a short run, finite errors against the exact solution
    (no accuracy asked: a few steps)."""
    import pinnkit

    a, d, nu = "(pi/4)", "(pi/2)", 0.1
    u = f"-{a}*(exp({a}*x)*sin({a}*y + {d}*z) + exp({a}*z)*cos({a}*x + {d}*y))*exp(-{d}^2*nu*t)"
    v = f"-{a}*(exp({a}*y)*sin({a}*z + {d}*x) + exp({a}*x)*cos({a}*y + {d}*z))*exp(-{d}^2*nu*t)"
    w = f"-{a}*(exp({a}*z)*sin({a}*x + {d}*y) + exp({a}*y)*cos({a}*z + {d}*x))*exp(-{d}^2*nu*t)"
    spec = {
        **ns_spec(
            ["x", "y", "z", "t"],
            {"x": [-1, 1], "y": [-1, 1], "z": [-1, 1], "t": [0, 1]},
            ["u", "v", "w", "p"],
        ),
        "params": {"nu": nu},
        "conditions": [
            {"on": "x=-1", "u": u, "v": v, "w": w},
            {"on": "t=0", "u": u, "v": v, "w": w},
        ],
        "reference": {"exact": {"u": u, "v": v, "w": w}, "grid": [5, 5, 5, 3]},
        "model": {"width": 8, "depth": 1},
        "train": {"steps": 3, "points": {"interior": 32, "boundary": 16}},
    }
    solution = pinnkit.solve(load_spec(spec), out=tmp_path / "run", progress=False)
    errors = solution.errors()
    assert set(errors) == {"u", "v", "w"}
    assert all(np.isfinite(e["rel_l2"]) for e in errors.values())
    # Velocity data on the face are met exactly (the lift), whatever the network.
    corner = {"x": [-1.0], "y": [0.4], "z": [0.3], "t": [0.7]}
    exact = beltrami(jnp.array([-1.0, 0.4, 0.3, 0.7]))
    predicted = solution.predict(corner)
    np.testing.assert_allclose(
        [predicted[f][0] for f in ("u", "v", "w")], np.asarray(exact[:3]), rtol=1e-5, atol=1e-6
    )
