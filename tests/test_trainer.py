"""The trainer: one trace per phase, checkpoints, resume, divergence, interrupts, devices."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnkit
from pinnkit import Checkpointer, DivergenceError, InterruptedRun, load_spec, solve
from pinnkit.cli import main
from pinnkit.train.weighting import Causal, GradNorm

CONTRACT_KEYS = (
    "problem",
    "backend",
    "status",
    "steps",
    "wall_s",
    "compile_s",
    "steps_per_s",
    "loss",
    "errors",
    "unknowns",
    "device",
    "dtype",
    "seed",
    "pinnkit_version",
)
"""The keys of summary.json every run has (DESIGN.md §6)."""


def small_spec(**train):
    spec = {
        "name": "poisson-small",
        "coords": ["x"],
        "domain": {"x": [0, 1]},
        "fields": ["u"],
        "equation": {"name": "poisson", "source": "pi^2*sin(pi*x)"},
        "conditions": [{"on": "x=0", "u": "0"}, {"on": "x=1", "u": "0"}],
        "reference": {"exact": {"u": "sin(pi*x)"}, "grid": [101]},
        "model": {"width": 16, "depth": 2},
        "train": {
            "phases": [{"optimizer": "adam", "steps": 40}, {"optimizer": "lbfgs", "steps": 20}],
            "points": {"interior": 64, "boundary": 8},
            "log_every": 7,
            "eval_every": 1000,
            **train,
        },
    }
    return spec


def leaves(model):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))]


def test_step_is_traced_once_per_phase(tmp_path):
    sol = solve(small_spec(), out=tmp_path / "run", progress=False)
    assert sol.record.steps == 60
    # 40 and 20 steps in chunks of 7: the last chunk of each phase is partial, yet masked
    # steps keep its shape, so each phase's step function is traced exactly once.
    assert sol.record.traces == {"0:adam": 1, "1:lbfgs": 1}


def test_float32_lbfgs_runs_after_a_float64_solve_turned_x64_on(tmp_path):
    """A notebook solving a float64 problem, then a float32 one with L-BFGS: the line search's
    value must keep one dtype although x64 is now on."""
    for model in ({"width": 16, "depth": 2}, {"backend": "pig", "gaussians": 8}):
        spec = {**small_spec(weighting="fixed"), "model": model}
        with jax.enable_x64(True):
            sol = solve(spec, out=tmp_path / model.get("backend", "mlp"), progress=False)
        assert sol.status == "ok" and sol.record.steps == 60
        assert {x.dtype for x in leaves(sol.model)} == {np.dtype("float32")}


def test_outputs_follow_the_contract(tmp_path):
    out = tmp_path / "run"
    sol = solve(small_spec(), out=out, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    for key in CONTRACT_KEYS:
        assert key in summary, key
    assert summary["status"] == "ok" and summary["steps"] == 60
    assert summary["errors"]["u"]["rel_l2"] == pytest.approx(sol.errors()["u"]["rel_l2"])
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 60
    with np.load(out / "solution.npz") as z:
        assert z["u"].shape == (101,) and z["reference_u"].shape == (101,)
    assert (out / "plots" / "fields.png").stat().st_size > 1000
    assert (out / "plots" / "history.png").exists()
    assert (out / "checkpoint" / "meta.json").exists()
    assert "phases" in (out / "spec.resolved.yaml").read_text()


def test_checkpoint_round_trip(tmp_path):
    state = {"w": jnp.arange(6.0).reshape(2, 3), "k": jax.random.key_data(jax.random.key(3))}
    ck = Checkpointer(tmp_path / "ck")
    assert not ck.exists()
    ck.save(state, {"step": 5, "phase": 0})
    ck.save(jax.tree.map(lambda x: x + 1, state), {"step": 9, "phase": 1})
    loaded, meta = ck.load(jax.tree.map(jnp.zeros_like, state))
    assert meta["step"] == 9 and meta["phase"] == 1
    np.testing.assert_array_equal(loaded["w"], np.asarray(state["w"]) + 1)
    assert len(list((tmp_path / "ck").glob("state-*.eqx"))) == 1  # older states removed


def test_interrupt_then_resume_matches_an_uninterrupted_run(tmp_path):
    whole = solve(small_spec(), out=tmp_path / "whole", progress=False)

    def interrupt_at_28(entry):
        if entry["step"] == 28:
            os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "cut"
    with pytest.raises(InterruptedRun) as info:
        solve(small_spec(), out=out, progress=False, log=interrupt_at_28)
    assert info.value.solution.record.steps == 28
    meta = json.loads((out / "checkpoint" / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["step"] == 28
    resumed = solve(None, resume=out, progress=False)
    assert resumed.record.steps == 60
    for a, b in zip(leaves(whole.model), leaves(resumed.model)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # History covers the whole run across the interruption.
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[0] == 7 and steps[-1] == 60


def test_resume_a_finished_run_with_more_steps(tmp_path):
    out = tmp_path / "run"
    solve(small_spec(), out=out, progress=False)
    more = solve(None, resume=out, overrides=["train.steps=80"], progress=False)
    assert more.record.steps == 80


def test_divergence_keeps_last_finite_checkpoint_and_exits_3(tmp_path):
    spec = small_spec(phases=None, optimizer={"name": "sgd", "lr": 1.0e4}, steps=200)
    spec["model"]["hard_constraints"] = False
    out = tmp_path / "run"
    with pytest.raises(DivergenceError) as info:
        solve(spec, out=out, progress=False)
    sol = info.value.solution
    assert sol.status == "diverged"
    meta = json.loads((out / "checkpoint" / "meta.json").read_text())
    assert meta["status"] == "diverged" and meta["step"] < 200
    assert all(np.all(np.isfinite(x)) for x in leaves(sol.model))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and "learning rate" in summary["message"]
    # The same through the command line: exit code 3, no traceback.
    import yaml

    path = tmp_path / "div.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["solve", str(path), "--out", str(tmp_path / "cli"), "--quiet"]) == 3


def test_gradnorm_update_balances_by_gradient_norms():
    g = {"a": {"w": jnp.array([3.0, 4.0])}, "b": {"w": jnp.array([0.0, 1.0])}}
    w = {"a": jnp.array(1.0), "b": jnp.array(1.0)}
    new = GradNorm(every=1, alpha=0.5).update(g, w)
    # sum of norms = 6: a -> 0.5 + 0.5*6/5, b -> 0.5 + 0.5*6/1
    assert float(new["a"]) == pytest.approx(0.5 + 0.5 * 6 / 5)
    assert float(new["b"]) == pytest.approx(0.5 + 0.5 * 6)


def test_causal_weights_follow_the_paper():
    box = pinnkit.Box(("x", "t"), {"x": (0.0, 1.0), "t": (0.0, 1.0)})
    t = jnp.array([0.1, 0.1, 0.4, 0.6, 0.9])
    pts = jnp.stack([jnp.zeros_like(t), t], -1)
    sq = jnp.array([1.0, 3.0, 2.0, 5.0, 7.0])
    slab, w = Causal(eps=0.5, chunks=4).weights(sq, pts, box)
    np.testing.assert_allclose(slab, [2.0, 2.0, 5.0, 7.0])
    np.testing.assert_allclose(w, np.exp(-0.5 * np.array([0.0, 2.0, 4.0, 9.0])), rtol=1e-6)
    value = Causal(eps=0.5, chunks=4)(sq, pts, box)
    assert float(value) == pytest.approx(float(jnp.mean(w * slab)))


def test_inverse_problem_recovers_an_unknown(tmp_path):
    x = np.linspace(0.05, 0.95, 19)
    np.savez(tmp_path / "obs.npz", x=x, u=np.sin(np.pi * x))
    spec = small_spec(
        phases=[{"optimizer": "adam", "steps": 600}, {"optimizer": "lbfgs", "steps": 300}]
    )
    spec["unknowns"] = {"k": 0.5}
    spec["equation"] = {"residuals": ["k*u_xx + 2*pi^2*sin(pi*x)"]}  # true k = 2
    spec["data"] = [{"file": "obs.npz"}]
    spec["reference"]["unknowns"] = {"k": 2.0}
    loaded = load_spec(spec, base_dir=tmp_path)
    sol = solve(loaded, out=tmp_path / "run", progress=False)
    assert float(sol.unknowns["k"]) == pytest.approx(2.0, rel=2e-2)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["unknowns"]["k"] == pytest.approx(float(sol.unknowns["k"]))
    assert summary["unknown_errors"]["k"]["rel_err"] < 2e-2


SUBPROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np, jax, equinox as eqx
    from pinnkit import solve
    sys.path.insert(0, {tests!r})
    from test_trainer import small_spec
    out = {{}}
    for devices in {devices}:
        spec = small_spec(devices=devices, dtype={dtype!r},
                          phases=[{{"optimizer": "adam", "steps": 30}}])
        sol = solve(spec, out={out!r} + f"/d{{devices}}", progress=False)
        leaves = jax.tree.leaves(eqx.filter(sol.model, eqx.is_inexact_array))
        out[devices] = {{"leaves": [np.asarray(l).tolist() for l in leaves],
                        "dtype": str(leaves[0].dtype), "n": len(jax.devices()),
                        "loss": sol.record.history[-1]["loss"]}}
    print("RESULT" + json.dumps(out))
    """
)


def run_isolated(tmp_path, devices, dtype="float32", n_host=1):
    code = SUBPROCESS.format(
        tests=os.path.dirname(__file__), devices=devices, dtype=dtype, out=str(tmp_path)
    )
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_host}")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def test_data_parallel_over_four_devices_matches_one(tmp_path):
    result = run_isolated(tmp_path, devices=[1, 4], n_host=4)
    one, four = result["1"], result["4"]
    assert four["n"] == 4
    # Same points, same steps; only the order of float32 sums across shards differs.
    for a, b in zip(one["leaves"], four["leaves"]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    assert four["loss"] == pytest.approx(one["loss"], rel=1e-3)


def test_float64_on_request(tmp_path):
    # In a subprocess: float64 turns on jax_enable_x64 for the whole process.
    result = run_isolated(tmp_path, devices=[1], dtype="float64")
    assert result["1"]["dtype"] == "float64"


@pytest.mark.parametrize("dense_limit", [4096, 0], ids=["qr", "cg"])
def test_variable_projection_gradient_matches_the_profile_derivative(dense_limit):
    """d/dθ L(z*(θ), θ) for z*(θ) = argmin ‖A(θ) z - b(θ)‖² + ‖z‖², with L depending on z
    beyond the solved residual (as the gp's midpoint terms do): the implicit derivative must
    match autodiff through a dense direct solve, on both the QR and the CG path."""
    from pinnkit.train.steps import GaussNewton, implicit_solution

    with jax.enable_x64(True):
        base = jax.random.normal(jax.random.key(0), (12, 7), jnp.float64)
        probe = jax.random.normal(jax.random.key(1), (5, 7), jnp.float64)

        def matrix(theta):
            return base * jnp.cos(theta[0] * jnp.arange(7.0)) + theta[1] * jnp.eye(12, 7)

        def rhs(theta):
            return jnp.sin(theta[0] * jnp.arange(12.0)) + theta[1]

        def residual(z, theta):
            return jnp.concatenate([matrix(theta) @ z - rhs(theta), z])

        def loss(z, theta):  # depends on z through more than the solved residual
            return jnp.sum((probe @ z - theta[1]) ** 2) + jnp.sum(residual(z, theta) ** 2)

        def exact(theta):
            a = matrix(theta)
            z = jnp.linalg.solve(a.T @ a + jnp.eye(7), a.T @ rhs(theta))
            return loss(z, theta)

        config = GaussNewton(dense_limit=dense_limit, cg_rtol=1e-13, cg_steps=200)
        mu = jnp.asarray(1e-14)

        def profile(theta):
            z_star = jax.lax.stop_gradient(
                jnp.linalg.solve(
                    matrix(theta).T @ matrix(theta) + jnp.eye(7), matrix(theta).T @ rhs(theta)
                )
            )
            return loss(implicit_solution(residual, z_star, theta, config, mu), theta)

        theta = jnp.asarray([0.3, 0.7])
        np.testing.assert_allclose(profile(theta), exact(theta), rtol=1e-12)
        np.testing.assert_allclose(
            jax.grad(profile)(theta), jax.grad(exact)(theta), rtol=1e-7, atol=1e-10
        )
        # The envelope theorem alone (z* held fixed) would miss the probe term's share.
        held = jax.grad(
            lambda t: loss(
                jax.lax.stop_gradient(implicit_solution(residual, jnp.zeros(7), t, config, mu)), t
            )
        )(theta)
        assert not np.allclose(held, jax.grad(exact)(theta), rtol=1e-3)
