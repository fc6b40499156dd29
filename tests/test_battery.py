"""The SPM surrogate and the calibration (pinnkit.battery).

* The residual rows, whose time and radius derivatives are assembled by hand through the
  sqrt(t) input and the zero-mean projection, against nested reverse-mode derivatives of the
  surrogate's stoichiometry (float64, an untrained network with non-zero output).
* The constraints built into the surrogate: x = x0 at t = 0 everywhere, the volume mean of x
  equals the charge balance's bulk value at every time, dx/dr = 0 at the centre.
* Training lowers the loss; save/load reproduce the predictions; the voltage is the reference
  potentials' algebra applied to the surface values.
* Calibration: NUTS with the exact oracle as the model covers the truth of synthetic cells
  with their 90 % intervals; the CSV reader's and the command line's errors.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit.battery import surrogate as S
from pinnkit.battery.calibrate import calibrate, read_voltage_csv
from pinnkit.cli import main
from pinnkit.errors import SpecError
from pinnkit.reference import spm


def _random_model(dtype=jnp.float64, seed=0) -> S.SPMSurrogate:
    """An untrained two-level surrogate with random (non-zero) last layers."""
    params = spm.SPMParameters()
    key = jax.random.key(seed)
    levels = []
    for scale in (1.0, 0.1):
        key, k = jax.random.split(key)
        ka, kc = jax.random.split(k)
        make = lambda kk: eqx.nn.MLP(4, 1, 16, 2, jnp.tanh, key=kk, dtype=dtype)  # noqa: E731
        levels.append(S._Level(make(ka), make(kc), scale))
    return S.SPMSurrogate(params, tuple(levels), ((0.5, 4.0), (1.0, 10.0)))


def _points(n, seed, surface=False):
    return S._sample(jax.random.key(seed), n, jnp.float64, surface=surface)


def test_residual_rows_match_nested_reverse_mode(x64):
    model = _random_model()
    interior, surface = _points(16, 1), _points(8, 2, surface=True)
    pde, flux = S.residual_rows(model, interior, surface)
    a, c = S._scales(model.params)
    lo, hi = model.ranges[1]

    def expected_pde(z):
        x_t = jax.jacrev(model.stoichiometry)(z)[:, 0]
        x_r = jax.jacrev(model.stoichiometry)(z)[:, 1]
        x_rr = jax.jacrev(jax.jacrev(model.stoichiometry))(z)[:, 1, 1]
        deg = S._from_unit(z[3], lo, hi)
        K = jnp.stack([a.K, c.K * deg])
        return jnp.sqrt(z[0]) * (x_t - K * (x_rr + 2 * x_r / z[1])) / jnp.array([a.s, c.s])

    def expected_flux(z):
        x_r = jax.jacrev(model.stoichiometry)(z)[:, 1]
        deg = S._from_unit(z[3], lo, hi)
        J = jnp.stack([a.J, c.J / deg])
        return jnp.sqrt(z[0]) * (x_r + J) / jnp.abs(jnp.array([a.J, c.J]))

    np.testing.assert_allclose(pde, jax.vmap(expected_pde)(interior), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(flux, jax.vmap(expected_flux)(surface), rtol=1e-9, atol=1e-12)
    assert float(jnp.abs(pde).max()) > 1e-3  # the random model is far from a solution


def test_initial_condition_charge_balance_and_symmetry_hold_by_construction(x64):
    model = _random_model()
    p = model.params
    a, c = S._scales(p)
    r = jnp.linspace(0.0, 1.0, 7)
    at = lambda t, rr, q=(0.3, -0.4): model.stoichiometry(jnp.array([t, rr, *q]))  # noqa: E731
    x0 = jax.vmap(lambda rr: at(0.0, rr))(r)
    np.testing.assert_allclose(x0, np.broadcast_to([p.x0_a, p.x0_c], x0.shape), atol=1e-15)
    # the volume mean 3 int x r^2 dr by a fine Gauss rule equals x0 - 3 K J t
    nodes, weights = np.polynomial.legendre.leggauss(40)
    rr = (nodes + 1) / 2
    w = 3 * rr**2 * weights / 2
    for t in (0.01, 0.3, 1.0):
        mean = w @ np.asarray(jax.vmap(lambda y: at(t, y))(jnp.asarray(rr)))
        bulk = np.array([p.x0_a - 3 * a.K * a.J * t, p.x0_c - 3 * c.K * c.J * t])
        np.testing.assert_allclose(mean, bulk, atol=1e-12)
        slope = jax.jacrev(lambda y: at(t, y))(0.0)
        np.testing.assert_allclose(slope, 0.0, atol=1e-14)


def test_training_lowers_the_loss_and_save_load_roundtrip(tmp_path):
    configs = [S.LevelConfig(width=16, depth=2, adam_steps=200, lbfgs_steps=20, points=256)]
    seen = []
    model, records = S.train_surrogate(
        levels=configs, callback=lambda lv, st, loss: seen.append(loss), log_every=50
    )
    assert seen[-1] < 0.2 * seen[0]
    assert records[0]["level"] == 1 and set(records[0]["loss"]) == {
        "pde_a",
        "pde_c",
        "flux_a",
        "flux_c",
    }
    S.save(model, configs, tmp_path)
    loaded, configs2 = S.load(tmp_path)
    assert configs2 == configs
    t = np.linspace(0, 1350, 11)
    a = model.predict(t, deg_i0_a=2.0, deg_ds_c=3.0)
    b = loaded.predict(t, deg_i0_a=2.0, deg_ds_c=3.0)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    phi_e, phi_c = spm.potentials(model.params, a["c_surface_a"], a["c_surface_c"], deg_i0_a=2.0)
    np.testing.assert_allclose(a["voltage"], phi_c, rtol=1e-6)
    with pytest.raises(SpecError, match="surrogate"):
        S.load(tmp_path / "nothing")


@pytest.mark.parametrize("truth", [(0.8, 2.0), (3.0, 7.0)])
def test_nuts_covers_the_truth_of_synthetic_cells(x64, truth):
    params = spm.SPMParameters()
    t = np.linspace(0.0, 1350.0, 68)
    true = dict(zip(("deg_i0_a", "deg_ds_c"), truth))
    rng = np.random.default_rng(0)  # coverage is a probability: a fixed draw, not a tuned one
    v = np.asarray(spm.exact_voltage(params, t, **true)) + rng.normal(0, 2e-3, t.size)
    model = lambda tt, a, d: spm.exact_voltage(params, tt, deg_i0_a=a, deg_ds_c=d)  # noqa: E731
    cal = calibrate(model, t, v, noise_V=2e-3, draws=300, warmup=200, chains=2, seed=1)
    assert all(cal.covers(true).values()), cal.summary["parameters"]
    assert cal.summary["sampler"]["divergences"] < 10
    for name in true:
        assert cal.summary["parameters"][name]["r_hat"] < 1.1


def test_voltage_csv_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("t,V\n0,4.1\n1,4.0\n")
    with pytest.raises(SpecError, match="time_s"):
        read_voltage_csv(bad)
    bad.write_text("time_s,voltage_V\n0,4.1\n0,4.0\n")
    with pytest.raises(SpecError, match="increasing"):
        read_voltage_csv(bad)
    good = tmp_path / "good.csv"
    good.write_text("# a comment\ntime_s,voltage_V\n0,4.1\n10,4.0\n")
    t, v = read_voltage_csv(good)
    np.testing.assert_array_equal(t, [0, 10])


def test_command_line_errors(tmp_path, capsys):
    assert main(["calibrate", str(tmp_path), "--data", str(tmp_path / "x.csv")]) == 2
    assert "surrogate" in capsys.readouterr().err
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nequation: {name: spm, kinetcs: linear}\n")
    assert main(["validate", str(spec)]) == 2
    assert "did you mean 'kinetics'" in capsys.readouterr().err
    spec.write_text("name: s\nequation: spm\ndegradation: {deg_i0_a: [4, 0.5]}\n")
    assert main(["validate", str(spec)]) == 2
    assert "degradation" in capsys.readouterr().err
    out = tmp_path / "curve.csv"
    assert main(["data", "spm", "--out", str(out), "--points", "20", "--deg-ds-c", "3"]) == 0
    t, v = read_voltage_csv(out)
    assert t.size == 20 and 3.5 < v.min() < v.max() < 4.6


def test_an_interrupted_battery_run_resumes_to_the_same_surrogate(tmp_path):
    """Ctrl-C during level 2 keeps level 1 (checkpoint/); --resume trains level 2 and ends
    where an uninterrupted run ends."""
    import json
    import pathlib

    import pinnkit
    from pinnkit.errors import InterruptedRun

    spec = pathlib.Path(__file__).resolve().parents[1] / "problems" / "spm_surrogate.yaml"
    overrides = [
        "train.levels.0.adam_steps=100",
        "train.levels.0.lbfgs_steps=0",
        "train.levels.1.adam_steps=100",
        "train.levels.1.lbfgs_steps=0",
        "train.levels.0.points=64",
        "train.levels.1.points=64",
        "reference.grid=2",
        "reference.times=11",
    ]

    def ctrl_c(entry):
        if entry["phase"] == "level 2":
            raise KeyboardInterrupt

    out = tmp_path / "stopped"
    with pytest.raises(InterruptedRun):
        pinnkit.solve(spec, out=out, overrides=overrides, progress=False, log=ctrl_c)
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    assert (out / "checkpoint" / "meta.json").exists()
    assert main(["solve", "--resume", str(out), "--quiet"]) == 0
    whole = tmp_path / "whole"
    pinnkit.solve(spec, out=whole, overrides=overrides, progress=False)
    a, b = (json.loads((d / "summary.json").read_text()) for d in (out, whole))
    assert a["status"] == "ok" and len(a["levels"]) == 2
    assert a["errors"]["voltage"] == b["errors"]["voltage"]
    # the level-2 rows logged before Ctrl-C are dropped on resume: each step once, in order
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 200


def test_a_battery_run_killed_while_writing_a_checkpoint_keeps_the_previous_one(
    tmp_path, monkeypatch
):
    """The level checkpoint goes into its own folder and meta.json, naming it, is written
    last: a kill that tears the level-2 files leaves level 1 loadable, and --resume ends with
    both levels and each metrics step once."""
    import pathlib

    import pinnkit
    from pinnkit.report import RunDirectory

    spec = pathlib.Path(__file__).resolve().parents[1] / "problems" / "spm_surrogate.yaml"
    overrides = [
        *(f"train.levels.{i}.adam_steps=30" for i in (0, 1)),
        *(f"train.levels.{i}.lbfgs_steps=0" for i in (0, 1)),
        *(f"train.levels.{i}.points=64" for i in (0, 1)),
        "reference.grid=2",
        "reference.times=11",
    ]

    class Killed(BaseException):
        pass

    real_save, calls = S.save, []

    def torn_save(model, configs, directory):
        real_save(model, configs, directory)
        calls.append(directory)
        if len(calls) == 2:  # the level-2 checkpoint: its weights cut short, then killed
            eqx_file = pathlib.Path(directory) / "surrogate.eqx"
            eqx_file.write_bytes(eqx_file.read_bytes()[:100])
            raise Killed

    monkeypatch.setattr(S, "save", torn_save)
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        pinnkit.solve(spec, out=out, overrides=overrides, progress=False)
    monkeypatch.undo()
    run = RunDirectory(out)
    assert run.checkpoint_meta()["levels"] == 1
    model, configs = S.load(run.checkpoint_folder())
    assert len(model.levels) == 1 and len(configs) == 1
    assert main(["solve", "--resume", str(out), "--quiet"]) == 0
    summary = run.read_summary()
    assert summary["status"] == "ok" and len(summary["levels"]) == 2
    steps = [row["step"] for row in run.history()]
    assert steps == sorted(set(steps)) and steps[-1] == 60


def test_train_steps_is_the_runs_total_taken_up_by_the_last_phase():
    from pinnkit import load_spec
    from pinnkit.errors import SpecError

    levels = "train.levels=[{adam_steps: 10, lbfgs_steps: 5}, {adam_steps: 20, lbfgs_steps: 4}]"
    spec = {"name": "cell", "equation": "spm"}
    loaded = load_spec(spec, [levels, "train.steps=50"])
    assert loaded.total_steps() == 50
    assert [(lv.adam_steps, lv.lbfgs_steps) for lv in loaded.spec.train.levels] == [
        (10, 5),
        (20, 15),
    ]
    assert "steps" not in loaded.resolved()["train"]  # the levels say it
    no_lbfgs = "train.levels=[{adam_steps: 10, lbfgs_steps: 0}]"
    assert load_spec(spec, [no_lbfgs, "train.steps=30"]).spec.train.levels[0].adam_steps == 30
    with pytest.raises(SpecError, match="fewer") as e:
        load_spec(spec, [levels, "train.steps=30"])
    assert e.value.path == "train.steps"


def test_each_level_trains_through_the_trainer_with_earlier_levels_frozen(monkeypatch):
    """Every level is one `pinnkit.train.train` call that moves that level alone: level 1's
    weights are bit-for-bit the same after level 2 has trained; a diverged record is a
    `DivergenceError`."""
    from pinnkit.errors import DivergenceError
    from pinnkit.train.trainer import Record, train

    calls = []

    def spy(problem, model, **kwargs):
        calls.append((model, [phase.name for phase in kwargs["phases"]]))
        return train(problem, model, **kwargs)

    monkeypatch.setattr(S, "train", spy)
    small = dict(width=8, depth=2, adam_steps=20, lbfgs_steps=5, points=32)
    configs = [S.LevelConfig(**small), S.LevelConfig(**small, scale=0.1)]
    after = []
    model, records = S.train_surrogate(
        levels=configs, log_every=10, on_level=lambda m, r: after.append(m)
    )
    assert [phases for _, phases in calls] == [["adam", "lbfgs"], ["adam", "lbfgs"]]
    assert all(isinstance(m, S._Level) for m, _ in calls)  # the trained model is the level
    before, final = (eqx.filter(m.levels[0], eqx.is_array) for m in (after[0], model))
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(final), strict=True):
        np.testing.assert_array_equal(a, b)
    # level 2 did train: its last layer started at zero
    assert float(jnp.abs(model.levels[1].anode.layers[-1].weight).max()) > 0
    assert [r["level"] for r in records] == [1, 2]

    def diverged(problem, model, **kwargs):
        return model, {}, Record(status="diverged", steps=7)

    monkeypatch.setattr(S, "train", diverged)
    with pytest.raises(DivergenceError, match="level 1: non-finite loss after step 7"):
        S.train_surrogate(levels=configs[:1])
