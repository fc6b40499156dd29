"""Reproduce benchmarks/sfno_results.md: FNO-3D vs SFNO test error, and the Spectral-Refiner
(Cao et al. 2024, arXiv:2405.17211) before/after on test trajectories, against the solver.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/sfno_bench.py            # CPU, minutes
    .venv/bin/python benchmarks/sfno_bench.py --scale full --out benchmarks/sfno_results_full.md

Steps (both scales):

1. Data: trajectories of the FNO benchmark flow (`NS2D_PRESETS["fno"]`: GRF(2.5, 7) initial
   vorticity, f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)), nu = 1e-3) solved by
   `pinnkit.reference.ns2d.solve_ns2d` at the solver resolution, run through a warm-up, then
   ``in_steps + out_steps`` snapshots ``snapshot_dt`` apart. The training and test data are
   their spectral truncation to the training resolution (`pinnkit.operators.resample`); the
   refinement uses the test trajectories at the solver resolution.
2. FNO-3D and SFNO trained by `pinnkit.operators.train_operator` (the project's trainer) with
   the same optimizer, schedule, batch and steps; test error = mean relative L2 in space-time.
3. Spectral refinement of the SFNO on a few test trajectories at the solver resolution: true
   error (against the solver) and residual ||R||_{L2(H^-1)} before and after; wall time of the
   refinement against solving the same window with the solver; an ablation that keeps the
   trained modes (no new ones).

``--scale full`` carries the authors' settings for a GPU run (64^2 training data truncated from
256^2 solves, 1152 training trajectories, 10 epochs at batch 4, 10 -> 40 steps, warm-up 30,
snapshots every 0.2, width 20, 12 spatial and 5 temporal modes; 50 Adam refinement steps at
256^2). The authors report 8.1e-3 test error, and one trajectory refined from 8.2e-3 to 4.4e-3.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import machine_info  # noqa: E402

from pinnkit.operators import (  # noqa: E402
    SFNO,
    FNO3d,
    max_modes,
    refine,
    relative_l2,
    resample,
    train_operator,
    trajectory_residual,
)
from pinnkit.reference.ns2d import NS2D_PRESETS, solve_ns2d  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Settings:
    solver_res: int  # the solver's grid, and the refinement's
    train_res: int  # the training data's grid (spectral truncation of the solver's)
    solver_dt: float
    warmup: float  # time solved before the first snapshot
    snapshot_dt: float
    in_steps: int
    out_steps: int
    train: int  # training trajectories
    test: int  # test trajectories (the last ones)
    refine_trajectories: int  # test trajectories refined (at solver_res)
    epochs: int
    batch: int
    lr: float  # peak of the one-cycle cosine schedule (Adam)
    sfno: dict
    fno: dict
    refine_steps: int
    refine_lr: float  # peak of a warm-up + cosine schedule (Adam)
    solve_batch: int  # trajectories per solver call


SCALES = {
    "cpu": Settings(
        solver_res=64,
        train_res=32,
        solver_dt=1e-2,
        warmup=5.0,
        snapshot_dt=0.2,
        in_steps=10,
        out_steps=10,
        train=128,
        test=32,
        refine_trajectories=4,
        epochs=20,
        batch=8,
        lr=3e-3,
        sfno=dict(width=12, modes=(8, 8, 5), latent_steps=16, expansion=1),
        fno=dict(width=12, modes=(8, 8, 6), padding=6, projection=64),
        refine_steps=50,
        refine_lr=1e-4,
        solve_batch=48,
    ),
    "full": Settings(
        solver_res=256,
        train_res=64,
        solver_dt=2e-3,
        warmup=30.0,
        snapshot_dt=0.2,
        in_steps=10,
        out_steps=40,
        train=1152,
        test=128,
        refine_trajectories=16,
        epochs=10,
        batch=4,
        lr=3e-3,
        sfno=dict(width=20, modes=(12, 12, 5), latent_steps=20, expansion=6),
        fno=dict(width=20, modes=(12, 12, 8), padding=6, projection=128),
        refine_steps=50,
        refine_lr=1e-4,
        solve_batch=128,
    ),
}


def generate(cfg: Settings, *, key) -> tuple[np.ndarray, np.ndarray, float]:
    """All trajectories at train_res, the test ones also at solver_res (float32, axes
    (trajectory, time, x, y), in_steps + out_steps snapshots), and the seconds it took."""
    preset = NS2D_PRESETS["fno"]
    total = cfg.train + cfg.test
    per = round(cfg.snapshot_dt / cfg.solver_dt)
    window = cfg.in_steps + cfg.out_steps - 1
    start = time.perf_counter()
    w0 = preset.initial.sample(cfg.solver_res, batch=total, dtype=jnp.float32, key=key)
    coarse, fine = [], []
    for lo in range(0, total, cfg.solve_batch):
        w = w0[lo : lo + cfg.solve_batch]
        if cfg.warmup > 0:
            steps = round(cfg.warmup / cfg.solver_dt)
            w = solve_ns2d(
                w, nu=preset.nu, t_final=cfg.warmup, steps=steps, forcing=preset.forcing
            ).vorticity[:, -1]
        sol = solve_ns2d(
            w,
            nu=preset.nu,
            t_final=window * cfg.snapshot_dt,
            steps=window * per,
            save_every=per,
            forcing=preset.forcing,
        )
        coarse.append(np.asarray(resample(sol.vorticity, cfg.train_res)))
        first_test = max(cfg.train - lo, 0)
        fine.append(np.asarray(sol.vorticity[first_test:]))
        print(f"  solved {lo + len(w)}/{total}", flush=True)
    return np.concatenate(coarse), np.concatenate(fine), time.perf_counter() - start


@eqx.filter_jit
def _predict(model, inputs, batch: int):
    return jax.lax.map(model, inputs, batch_size=batch)


def mean_error(model, inputs, targets, batch: int = 8) -> float:
    """Mean relative L2 error of a model over trajectories, ``batch`` at a time (compiled once
    per model structure, not per call)."""
    return float(jnp.mean(relative_l2(_predict(model, inputs, batch), targets)))


def parameters(model) -> int:
    return sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))


def train_one(name, model, cfg: Settings, inputs, targets, test_in, test_out, *, key) -> dict:
    steps = cfg.epochs * cfg.train // cfg.batch
    schedule = optax.cosine_onecycle_schedule(steps, cfg.lr)

    def test_error(m):
        return mean_error(m, test_in, test_out)

    start = time.perf_counter()
    trained, record = train_operator(
        model,
        inputs,
        targets,
        steps=steps,
        batch_size=cfg.batch,
        optimizer=optax.adam(schedule),
        evaluate=lambda m: {"test": float(test_error(m))},
        eval_every=max(steps // 5, 1),
        chunk=min(50, steps),
        log=lambda e: print(
            f"  {name} step {e['step']}: loss {e['loss']:.3e} {e.get('errors', '')}"
        ),
        key=key,
    )
    wall = time.perf_counter() - start
    return {
        "model": trained,
        "name": name,
        "params": parameters(model),
        "steps": steps,
        "status": record.status,
        "test": float(test_error(trained)),
        "wall_s": wall,
        "compile_s": record.compile_s,
        "history": [(e["step"], e["errors"]["test"]) for e in record.history if "errors" in e],
    }


def time_solver(cfg: Settings, initial: np.ndarray) -> tuple[float, float]:
    """Seconds to solve one trajectory's output window at solver_res: first call (with
    compilation) and a second one."""
    preset = NS2D_PRESETS["fno"]
    steps = cfg.out_steps * round(cfg.snapshot_dt / cfg.solver_dt)

    def once():
        start = time.perf_counter()
        sol = solve_ns2d(
            initial,
            nu=preset.nu,
            t_final=cfg.out_steps * cfg.snapshot_dt,
            steps=steps,
            save_every=steps // cfg.out_steps,
            forcing=preset.forcing,
        )
        sol.vorticity.block_until_ready()
        return time.perf_counter() - start

    return once(), once()


def refine_one(model, cfg: Settings, fine: np.ndarray, *, modes=None, key) -> dict:
    preset = NS2D_PRESETS["fno"]
    inputs, target = fine[: cfg.in_steps], fine[cfg.in_steps :]
    physics = dict(nu=preset.nu, dt=cfg.snapshot_dt, forcing=preset.forcing)
    predict = eqx.filter_jit(lambda m: m(inputs))

    def error(m):
        return float(relative_l2(predict(m), target))

    def residual(m):
        return float(trajectory_residual(m, inputs, **physics)[0])

    before = (error(model), residual(model))
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, cfg.refine_lr, max(cfg.refine_steps // 5, 1), cfg.refine_steps
    )
    start = time.perf_counter()
    refined, record = refine(
        model,
        inputs,
        steps=cfg.refine_steps,
        optimizer=optax.adam(schedule),
        modes=modes,
        evaluate=lambda m: {"error": error(m)},
        eval_every=10,
        key=key,
        **physics,
    )
    wall = time.perf_counter() - start
    evals = sum(1 for e in record.history if "errors" in e)
    return {
        "error": (before[0], error(refined)),
        "residual": (before[1], residual(refined)),
        "wall_s": wall,
        "train_s": record.train_s,
        "compile_s": record.compile_s,
        "evaluations": evals,
        "history": [(e["step"], e["errors"]["error"]) for e in record.history if "errors" in e],
        "modes": refined.head.modes,
    }


def report(cfg, scale, info, data_s, runs, zero_shot, refinements, ablation, solver) -> str:
    sfno_cfg = ", ".join(f"{k}={v}" for k, v in cfg.sfno.items())
    fno_cfg = ", ".join(f"{k}={v}" for k, v in cfg.fno.items())
    lines = [
        "# SFNO and Spectral-Refiner: measured results",
        "",
        f"Scale `{scale}`; reproduce with `OPENBLAS_NUM_THREADS=1 .venv/bin/python "
        f"benchmarks/sfno_bench.py --scale {scale}`.",
        "",
        f"Machine: {info.get('cpu_model')}, {info.get('affinity_cpus')} cores available "
        f"(load average at start {', '.join(f'{x:.1f}' for x in info['loadavg_at_start'])}: "
        f"**shared** with another engineer's runs), JAX {info['jax']} on "
        f"{', '.join(info['jax_devices'])}, float32, {info['date']}.",
        "",
        "## Settings",
        "",
        f"- Flow: `NS2D_PRESETS['fno']` (GRF(2.5, 7) initial vorticity, nu = 1e-3, "
        f"f = 0.1 (sin 2pi(x+y) + cos 2pi(x+y))), solved at {cfg.solver_res}^2 with "
        f"CN + RK2, dt = {cfg.solver_dt:g}, float32; warm-up {cfg.warmup:g}, then "
        f"{cfg.in_steps} input and {cfg.out_steps} output snapshots {cfg.snapshot_dt:g} apart.",
        f"- Data: {cfg.train} training and {cfg.test} test trajectories at {cfg.train_res}^2 "
        f"(spectral truncation); generated in {data_s:.0f} s.",
        f"- Training: Adam, one-cycle cosine schedule to {cfg.lr:g}, batch {cfg.batch}, "
        f"{cfg.epochs} epochs = {runs[0]['steps']} steps, loss = batch mean of the relative "
        "L2 error in space-time (Parseval), through `pinnkit.train.train`.",
        f"- SFNO: {sfno_cfg}, 4 layers, head modes = modes. FNO-3D: {fno_cfg}, 4 layers.",
        f"- Refinement: {cfg.refine_steps} Adam steps, warm-up (first fifth) + cosine to "
        f"{cfg.refine_lr:g}, on {cfg.refine_trajectories} test trajectories one at a time, "
        f"inputs and reference at {cfg.solver_res}^2; loss mean_t ||R(t)||^2_(H^-1) "
        "(alpha = 1) at twice the output rate; output layer untruncated.",
        "",
        "## Test error, FNO-3D vs SFNO",
        "",
        "| model | parameters | test rel. L2 | wall (incl. compile, evaluations) | compile |"
        " error during training (step: error) |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        hist = ", ".join(f"{s}: {e:.2e}" for s, e in r["history"])
        lines.append(
            f"| {r['name']} | {r['params']:,} | **{r['test']:.2e}** | {r['wall_s']:.0f} s | "
            f"{r['compile_s']:.1f} s | {hist} |"
        )
    persistence = runs[0]["persistence"]
    lines += [
        "",
        f"Persistence (every output = the last input) scores {persistence:.2e}. The trained "
        f"SFNO evaluated zero-shot on the same test trajectories at {cfg.solver_res}^2 (inputs "
        f"and targets from the solver at that resolution): {zero_shot:.2e}.",
        "",
        f"## Spectral refinement at {cfg.solver_res}^2",
        "",
        "| trajectory | true error before | after | residual before | after | wall (compile) |"
        " error every 10 steps |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in refinements:
        hist = ", ".join(f"{e:.2e}" for _, e in r["history"])
        lines.append(
            f"| {i} | {r['error'][0]:.2e} | **{r['error'][1]:.2e}** | {r['residual'][0]:.2e} | "
            f"{r['residual'][1]:.2e} | {r['wall_s']:.1f} s ({r['compile_s']:.1f} s) | {hist} |"
        )
    mean = lambda k, j: np.mean([r[k][j] for _, r in refinements])  # noqa: E731
    lines += [
        f"| mean | {mean('error', 0):.2e} | **{mean('error', 1):.2e}** | "
        f"{mean('residual', 0):.2e} | {mean('residual', 1):.2e} | | |",
        "",
        "True error: relative L2 in space-time against the solver's trajectory at the same "
        "resolution. Residual: (mean over the residual times of ||R(t)||^2_(H^-1))^(1/2), R "
        "exact in space (`trajectory_residual`). The modes of the refined output layer: "
        f"{refinements[0][1]['modes']} (trained: {runs[1]['model'].head.modes}).",
        "",
        "Ablation, same steps and schedule, **no new modes** (the trained modes fine-tuned):",
        "",
        "| trajectory | true error before | after | residual before | after |",
        "|---|---|---|---|---|",
    ]
    for i, r in ablation:
        lines.append(
            f"| {i} | {r['error'][0]:.2e} | {r['error'][1]:.2e} | {r['residual'][0]:.2e} | "
            f"{r['residual'][1]:.2e} |"
        )
    r0 = refinements[0][1]
    per_step = r0["train_s"] / cfg.refine_steps
    lines += [
        "",
        "## Wall time: refinement vs the solver",
        "",
        f"- Refinement of one trajectory, {cfg.refine_steps} steps: {r0['wall_s']:.1f} s in all "
        f"({r0['compile_s']:.1f} s compilation, {r0['evaluations']} evaluations of the true "
        f"error included), about {1e3 * per_step:.0f} ms per Adam step.",
        f"- The solver on the same window ({cfg.out_steps} snapshots, "
        f"{cfg.out_steps * round(cfg.snapshot_dt / cfg.solver_dt)} steps at "
        f"{cfg.solver_res}^2, dt = {cfg.solver_dt:g}): {solver[0]:.2f} s on the first call "
        f"(with compilation), {solver[1]:.2f} s on the second.",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    parser.add_argument("--out", default=None, help="markdown file (default: printed only)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = SCALES[args.scale]
    info = machine_info()
    key = jax.random.key(args.seed)
    k_data, k_fno, k_sfno, k_train, k_refine = jax.random.split(key, 5)

    print("data", flush=True)
    coarse, fine, data_s = generate(cfg, key=k_data)
    tr, te = slice(0, cfg.train), slice(cfg.train, cfg.train + cfg.test)
    inputs, targets = coarse[:, : cfg.in_steps], coarse[:, cfg.in_steps :]
    test_in, test_out = jnp.asarray(inputs[te]), jnp.asarray(targets[te])

    runs = []
    common = dict(in_steps=cfg.in_steps, out_steps=cfg.out_steps)
    for name, model in (
        ("FNO-3D", FNO3d(**common, **cfg.fno, key=k_fno)),
        ("SFNO", SFNO(**common, **cfg.sfno, key=k_sfno)),
    ):
        print(name, flush=True)
        runs.append(
            train_one(name, model, cfg, inputs[tr], targets[tr], test_in, test_out, key=k_train)
        )
    runs[0]["persistence"] = float(
        jnp.mean(relative_l2(jnp.repeat(test_in[:, -1:], cfg.out_steps, axis=1), test_out))
    )
    sfno = runs[1]["model"]
    zero_shot = mean_error(sfno, fine[:, : cfg.in_steps], fine[:, cfg.in_steps :])

    print("refinement", flush=True)
    refinements, ablation = [], []
    for j in range(cfg.refine_trajectories):
        i = cfg.train + j
        r = refine_one(sfno, cfg, fine[j], key=k_refine)
        print(f"  trajectory {i}: error {r['error']}, residual {r['residual']}", flush=True)
        refinements.append((i, r))
    trained_modes = sfno.head.modes
    for j in range(min(cfg.refine_trajectories, 4)):
        i = cfg.train + j
        r = refine_one(sfno, cfg, fine[j], modes=trained_modes, key=k_refine)
        print(f"  trajectory {i}, trained modes: error {r['error']}", flush=True)
        ablation.append((i, r))
    assert refinements[0][1]["modes"][0] == max_modes(cfg.solver_res)
    solver = time_solver(cfg, fine[0, cfg.in_steps - 1])

    text = report(cfg, args.scale, info, data_s, runs, zero_shot, refinements, ablation, solver)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
