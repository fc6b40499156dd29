"""Issue 7 benchmark: the SPM surrogate's errors and the calibration speed-up.

1. Trains the surrogate of problems/spm_surrogate.yaml (or reads a run: ``--run DIR``) and
   reports its per-level errors against the reference on the 3 x 3 grid.
2. Calibrates synthetic noisy cells (2 mV) with NUTS, the surrogate in the loop (its own
   error from model_error.json added to the noise, as `pinnkit calibrate` does), and
   reports whether the 90 % intervals cover the truth.
3. Runs the same NUTS with the reference solver in the loop (32 shells, float64) for a short
   chain and compares the wall time per NUTS iteration (warmup and draws alike).

Usage: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/battery_bench.py [--run DIR]
       [--draws 1000] [--warmup 500] [--ref-iterations 60] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import jax
import numpy as np

import pinnkit
from pinnkit.battery import surrogate as S
from pinnkit.battery.calibrate import calibrate, reference_voltage
from pinnkit.reference import spm

ROOT = pathlib.Path(__file__).resolve().parents[1]
CELLS = [(0.7, 1.5), (1.5, 4.0), (3.0, 8.0)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", help="a trained surrogate run (default: train one)")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--ref-iterations", type=int, default=60)
    p.add_argument("--json")
    args = p.parse_args()
    out = {
        "machine": f"{platform.machine()} {platform.processor()}, jax {jax.__version__}, "
        f"{jax.devices()[0].platform}"
    }
    run = pathlib.Path(args.run) if args.run else pathlib.Path("runs/bench_spm")
    if not args.run:
        t0 = time.perf_counter()
        pinnkit.solve(ROOT / "problems" / "spm_surrogate.yaml", out=run, progress=False)
        out["train_wall_s"] = time.perf_counter() - t0
    summary = json.loads((run / "summary.json").read_text())
    out["levels"] = [
        {
            "level": lv["level"],
            "voltage_mV": lv["errors"]["voltage_mV"],
            "fields": lv["errors"]["fields"],
            "wall_s": lv.get("wall_s"),
        }
        for lv in summary["levels"]
    ]
    print(json.dumps(out["levels"], indent=1))
    model, _ = S.load(run)
    params = model.params
    t = np.linspace(0.0, params.t_max, 136)
    record = json.loads((run / "model_error.json").read_text())
    model_error = np.interp(t, record["t"], record["rms_V"])  # as `pinnkit calibrate` does
    cells = []
    for a, d in CELLS:
        with jax.enable_x64(True):
            v = np.asarray(spm.solve_spm(params, t, deg_i0_a=a, deg_ds_c=d).voltage)
        v = v + np.random.default_rng(0).normal(0.0, 2e-3, v.shape)
        cal = calibrate(
            model.voltage,
            t,
            v,
            noise_V=2e-3,
            model_error_V=model_error,
            draws=args.draws,
            warmup=args.warmup,
        )
        truth = {"deg_i0_a": a, "deg_ds_c": d}
        cell = {
            "truth": truth,
            "posterior": {
                k: [s["mean"], s["q05"], s["q95"], s.get("r_hat")]
                for k, s in cal.summary["parameters"].items()
            },
            "covered": cal.covers(truth),
            "wall_s": cal.summary["sampler"]["wall_s"],
            "divergences": cal.summary["sampler"]["divergences"],
            "per_iteration_s": cal.summary["sampler"]["wall_s"]
            / (cal.summary["sampler"]["chains"] * (args.draws + args.warmup)),
        }
        print(cell)
        cells.append(cell)
    out["cells"] = cells
    # the reference solver in the loop: one chain, a short run (same cell as the middle one)
    a, d = CELLS[1]
    with jax.enable_x64(True):
        v = np.asarray(spm.solve_spm(params, t, deg_i0_a=a, deg_ds_c=d).voltage)
        v = v + np.random.default_rng(0).normal(0.0, 2e-3, v.shape)
        n = args.ref_iterations
        cal = calibrate(
            reference_voltage(params, nodes=32),
            t,
            v,
            noise_V=2e-3,
            draws=n // 2,
            warmup=n - n // 2,
            chains=1,
        )
    ref_per_iteration = cal.summary["sampler"]["wall_s"] / n
    out["reference_in_the_loop"] = {
        "iterations": n,
        "wall_s": cal.summary["sampler"]["wall_s"],
        "per_iteration_s": ref_per_iteration,
        "posterior": {
            k: [s["mean"], s["q05"], s["q95"]] for k, s in cal.summary["parameters"].items()
        },
    }
    surrogate_per_iteration = cells[1]["per_iteration_s"]
    out["speedup_per_iteration"] = ref_per_iteration / surrogate_per_iteration
    print(json.dumps(out["reference_in_the_loop"], indent=1))
    print(f"speed-up per NUTS iteration: {out['speedup_per_iteration']:.0f}x")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
