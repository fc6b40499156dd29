"""DeepXDE (PyTorch backend) and pinnkit side by side at identical network, points and optimizer.

For each case (Helmholtz 2D, 1D Poisson):
  1. pinnkit at DeepXDE-like settings: the same MLP (width, depth, tanh, Glorot normal, zero
     biases), the same fixed points (the very coordinates pinnkit draws are handed to DeepXDE
     as anchors), soft boundary terms with weight 1, MSE, constant-lr Adam 1e-3, float32.
     One run timed with no evaluations but the last; one with an evaluation every
     ``--eval-every`` steps for the error history (evaluation time left out of its clock).
  2. DeepXDE at those settings, in its own venv (benchmarks/_work/dxvenv) through
     `benchmarks/_dx_cases.py`.
  3. pinnkit with its defaults (the spec as shipped: hard constraints, Adam with cosine decay
     then L-BFGS, resampled Sobol points, GradNorm weights) and, as a second variant, the same
     defaults at the DeepXDE network and point counts: when does each first reach DeepXDE's
     final error?

Seconds per 1000 steps leave out the first 100 steps (warm-up, JIT compilation) on both
sides. Time-to-accuracy clocks start at the start of training and include compilation but not
the evaluations against the reference. Errors are rel. L2 on pinnkit's reference grid (201x201
for Helmholtz, 1001 points for Poisson), computed the same way on both sides.

Setup (once; keeps the project venv clean):
    python3.11 -m venv benchmarks/_work/dxvenv
    benchmarks/_work/dxvenv/bin/pip install torch==2.13.0 deepxde

Usage:
    .venv/bin/python benchmarks/deepxde_compare.py [--quick] [--only helmholtz2d]
        [--out benchmarks/deepxde_results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    PROBLEMS,
    REPO,
    enable_compile_cache,
    first_below,
    fmt,
    log,
    machine_info,
    per_1000_after,
    run_pinnkit,
    single_thread_from_argv,
    write_json,
)

SINGLE_THREAD = single_thread_from_argv()  # before jax is imported

WORK = REPO / "benchmarks" / "_work"
DX_PYTHON = WORK / "dxvenv" / "bin" / "python"
DX_SCRIPT = REPO / "benchmarks" / "_dx_cases.py"

CASES = {
    "helmholtz2d": {
        "spec": PROBLEMS / "helmholtz2d.yaml",
        "title": "Helmholtz 2D, 4x50 tanh, 1000 + 200 points",
        "steps": 5000,  # DeepXDE's Helmholtz example
        "same": [
            "model.width=50",
            "model.depth=4",
            "model.activation=tanh",
            "train.points.interior=1000",
            "train.points.boundary=200",
            "train.points.resample_every=0",
        ],
        "reported_dx_s_per_1000": 18.8,
    },
    "poisson1d": {
        "spec": PROBLEMS / "poisson1d.yaml",
        "title": "1D Poisson, 3x50 tanh, 128 points",
        "steps": 10000,  # DeepXDE's Poisson_Dirichlet_1d example
        "same": [
            "model.width=50",
            "model.depth=3",
            "model.activation=tanh",
            "train.points.interior=128",
            "train.points.boundary=1",  # one point on each of the two end conditions
            "train.points.resample_every=0",
        ],
        "reported_dx_s_per_1000": 2.7,
    },
}
SOFT_ADAM = [
    "model.hard_constraints=false",
    "train.weighting=fixed",
    "train.optimizer=adam",  # constant lr 1e-3
]


def export_reference(case: str) -> pathlib.Path:
    """pinnkit's reference grid and values, for DeepXDE's error."""
    from pinnkit import load_spec

    spec = load_spec(str(CASES[case]["spec"]))
    ref = spec.problem().reference()
    path = WORK / f"ref_{case}.npz"
    np.savez(path, points=np.asarray(ref.points), u=np.asarray(ref.values["u"]))
    return path


def export_points(case: str, overrides) -> pathlib.Path:
    """The fixed training points pinnkit draws for these overrides (as `solve` -> `train` do:
    key(seed) -> (model key, train key); train key -> (key, points key); one draw)."""
    import jax

    from pinnkit import load_spec
    from pinnkit.spec.build import build_model, build_objective, dtype_of

    loaded = load_spec(str(CASES[case]["spec"]), list(overrides))
    s = loaded.spec
    dtype = dtype_of(s.train)
    problem = loaded.problem()
    k_model, k_train = jax.random.split(jax.random.key(s.train.seed))
    built = build_model(problem, loaded.model, dtype=dtype, key=k_model)
    objective = build_objective(problem, s.train, built, dtype)
    _, k_points = jax.random.split(k_train)
    pts = objective.sample(score=None, key=k_points)
    interior = np.asarray(pts["interior"])
    boundary = np.concatenate([np.asarray(v) for k, v in pts.items() if k != "interior"], axis=0)
    path = WORK / f"points_{case}.npz"
    np.savez(path, interior=interior, boundary=boundary)
    return path


def run_deepxde(
    case: str, ref: pathlib.Path, points: pathlib.Path, steps: int, eval_every: int, seed: int = 0
):
    out = WORK / f"dx_{case}.json"
    threads = ["--threads", "1"] if SINGLE_THREAD else []
    threads += ["--seed", str(seed)] if seed else []
    out.unlink(missing_ok=True)
    cmd = [
        str(DX_PYTHON),
        str(DX_SCRIPT),
        "--case",
        case,
        "--ref",
        str(ref),
        "--points",
        str(points),
        "--steps",
        str(steps),
        "--eval-every",
        str(eval_every),
        "--out",
        str(out),
        *threads,
    ]
    env = {**os.environ, "DDE_BACKEND": "pytorch"}
    log(
        "  $ DDE_BACKEND=pytorch "
        + " ".join(
            cmd[:1] + [os.path.relpath(c, REPO) if c.startswith("/") else c for c in cmd[1:]]
        )
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"DeepXDE run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    log("  " + proc.stdout.strip().splitlines()[-1])
    return json.loads(out.read_text())


def tta(history, target, key="train_time_s"):
    hit = first_below(history, target)
    return (
        None if hit is None else {"step": hit["step"], "time_s": hit[key], "rel_l2": hit["rel_l2"]}
    )


def compare_case(
    case: str,
    steps: int,
    eval_every: int,
    defaults_variants: bool,
    timing_only: bool = False,
    seed: int = 0,
) -> dict:
    c = CASES[case]
    seeded = [f"train.seed={seed}"] if seed else []
    same = c["same"] + SOFT_ADAM + [f"train.steps={steps}"] + seeded
    log(f"[{case}] reference and points")
    ref = export_reference(case)
    points = export_points(case, same)

    log(f"[{case}] pinnkit, identical settings, timing run ({steps} steps)")
    pk_time = run_pinnkit(c["spec"], same + [f"train.eval_every={10 * steps}"], WORK / "run")
    if timing_only:
        pk_hist = pk_time
    else:
        log(f"[{case}] pinnkit, identical settings, error history (eval every {eval_every})")
        pk_hist = run_pinnkit(c["spec"], same + [f"train.eval_every={eval_every}"], WORK / "run")

    log(f"[{case}] DeepXDE, identical settings ({steps} steps)")
    dx = run_deepxde(case, ref, points, steps, steps if timing_only else eval_every, seed)
    target = dx["final_rel_l2"]
    dx_first = tta(dx["history"], target)

    pk_s1000 = per_1000_after(pk_time["history"], 100)
    pk_cpu_s1000 = per_1000_after(pk_time["history"], 100, key="cpu_s")
    result = {
        "title": c["title"],
        "steps": steps,
        "deepxde": dx,
        "pinnkit_same": {
            "timing": pk_time,
            "history_run": pk_hist,
            "s_per_1000": pk_s1000,
            "cpu_s_per_1000": pk_cpu_s1000,
            "final_rel_l2": pk_time["final_rel_l2"],
            "time_to_dx_final": tta(pk_hist["history"], target),
        },
        "target_rel_l2": target,
        "deepxde_time_to_own_final": dx_first,
        "step_rate_ratio": dx["s_per_1000"] / pk_s1000 if pk_s1000 else None,
        "step_rate_ratio_cpu": dx["cpu_s_per_1000"] / pk_cpu_s1000 if pk_cpu_s1000 else None,
        "reported_dx_s_per_1000": c["reported_dx_s_per_1000"],
        "defaults": {},
    }
    variants = {} if timing_only else {"shipped": []}
    if defaults_variants and not timing_only:
        variants["shipped@same-net-points"] = [o for o in c["same"] if "resample_every" not in o]
    for name, extra in variants.items():
        log(f"[{case}] pinnkit defaults ({name}), eval every {eval_every}")
        run = run_pinnkit(
            c["spec"], extra + seeded + [f"train.eval_every={eval_every}"], WORK / "run"
        )
        hit = tta(run["history"], target)
        entry = {"run": run, "time_to_dx_final": hit}
        if hit is not None:
            entry["ratio_vs_dx_total"] = hit["time_s"] / dx["train_time_s"]
            if dx_first is not None:
                entry["ratio_vs_dx_first"] = hit["time_s"] / dx_first["time_s"]
        result["defaults"][name] = entry
    return result


def goal_verdict(r: dict) -> dict:
    """The goal: >= 5x DeepXDE's step rate, and DeepXDE's accuracy in <= 1/10 of its time."""
    rate = r["step_rate_ratio"]
    best = None
    for name, d in r["defaults"].items():
        ratio = d.get("ratio_vs_dx_total")
        if ratio is not None and (best is None or ratio < best[1]):
            best = (name, ratio)
    same = r["pinnkit_same"]["time_to_dx_final"]
    same_ratio = same["time_s"] / r["deepxde"]["train_time_s"] if same else None
    return {
        "step_rate_ratio": rate,
        "step_rate_goal_met": bool(rate is not None and rate >= 5),
        "tta_ratio_best_defaults": best[1] if best else None,
        "tta_best_variant": best[0] if best else None,
        "tta_ratio_same_settings": same_ratio,
        "tta_goal_met": bool(best is not None and best[1] <= 0.1),
    }


def markdown(results: dict) -> str:
    m = results["machine"]
    threads = "single-threaded (XLA and torch)" if m.get("XLA_FLAGS") else "default threads"
    lines = [
        f"{m['date']}, {m.get('cpu_model') or m['processor']}, {m['cpu_count']} CPUs, {threads}, "
        f"load average at start {m['loadavg_at_start'][0]:.2f}",
        "",
    ]
    lines.append(
        "| case | DeepXDE s/1000 steps | pinnkit s/1000 steps | step-rate ratio | "
        "(CPU-time ratio) | DeepXDE final rel. L2 | pinnkit same-settings final rel. L2 |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for r in results["cases"].values():
        dx, pk = r["deepxde"], r["pinnkit_same"]
        lines.append(
            f"| {r['title']} ({r['steps']} Adam steps) | {fmt(dx['s_per_1000'], '.2f')} | "
            f"{fmt(pk['s_per_1000'], '.2f')} | {fmt(r['step_rate_ratio'], '.2f')}x | "
            f"{fmt(r['step_rate_ratio_cpu'], '.2f')}x | {fmt(dx['final_rel_l2'], '.2e')} | "
            f"{fmt(pk['final_rel_l2'], '.2e')} |"
        )
    if all(r.get("timing_only") for r in results["cases"].values()):
        return "\n".join(lines)
    lines.append("")
    lines.append(
        "| case | target (DeepXDE final) | DeepXDE: time to target (first) / total | run | "
        "pinnkit: time to target (step) | ratio to DeepXDE total | ratio to DeepXDE first | "
        "pinnkit final rel. L2 | pinnkit train wall s |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for case, r in results["cases"].items():
        if r.get("timing_only"):
            continue
        dx = r["deepxde"]
        first = r["deepxde_time_to_own_final"]
        dx_txt = f"{fmt(first['time_s'] if first else None, '.1f')} s / {dx['train_time_s']:.1f} s"
        rows = [
            (
                "same settings (Adam only)",
                {
                    "time_to_dx_final": r["pinnkit_same"]["time_to_dx_final"],
                    "run": r["pinnkit_same"]["history_run"],
                },
            )
        ]
        rows += list(r["defaults"].items())
        for name, d in rows:
            hit = d["time_to_dx_final"]
            run = d["run"]
            if hit:
                t = f"{hit['time_s']:.1f} s (step {hit['step']})"
                ratio_total = hit["time_s"] / dx["train_time_s"]
                ratio_first = hit["time_s"] / first["time_s"] if first else None
            else:
                t = f"not reached in {run['steps']} steps"
                ratio_total = ratio_first = None
            lines.append(
                f"| {case} | {fmt(r['target_rel_l2'], '.2e')} | {dx_txt} | {name} | {t} | "
                f"{fmt(ratio_total, '.3f')} | {fmt(ratio_first, '.3f')} | "
                f"{fmt(run['final_rel_l2'], '.2e')} | {fmt(run['train_wall_s'], '.1f')} |"
            )
    lines.append("")
    lines.append("| case | >= 5x step rate? | same accuracy in <= 1/10 of the time? |")
    lines.append("|---|---|---|")
    for case, r in results["cases"].items():
        if r.get("timing_only"):
            continue
        v = r["verdict"]
        lines.append(
            f"| {case} | {'yes' if v['step_rate_goal_met'] else 'no'} "
            f"({fmt(v['step_rate_ratio'], '.2f')}x) | "
            f"{'yes' if v['tta_goal_met'] else 'no'} "
            f"(best: {fmt(v['tta_ratio_best_defaults'], '.3f')} of DeepXDE's time, "
            f"{v['tta_best_variant'] or 'not reached'}) |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--only", choices=sorted(CASES), action="append", help="one case")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--steps", type=int, default=None, help="Adam steps (default per case)")
    parser.add_argument(
        "--timing-only",
        action="store_true",
        help="only the step rates (no error histories, no pinnkit-defaults runs)",
    )
    parser.add_argument(
        "--single-thread",
        action="store_true",
        help="run JAX (XLA) and torch single-threaded: robust to other jobs on a shared machine",
    )
    parser.add_argument(
        "--no-variant", action="store_true", help="skip the defaults@same-net-points run"
    )
    parser.add_argument("--seed", type=int, default=0, help="pinnkit train.seed and DeepXDE seed")
    parser.add_argument(
        "--compile-cache",
        default=None,
        metavar="DIR",
        help="use JAX's persistent compilation cache in DIR (run twice: the second is warm)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="JSON file (default benchmarks/deepxde_results[_1thread][_timing].json)",
    )
    args = parser.parse_args()
    if args.out is None:
        suffix = ("_1thread" if SINGLE_THREAD else "") + ("_timing" if args.timing_only else "")
        suffix += f"_seed{args.seed}" if args.seed else ""
        suffix += "_cache" if args.compile_cache else ""
        args.out = str(REPO / "benchmarks" / f"deepxde_results{suffix}.json")
    if not DX_PYTHON.exists():
        sys.exit(
            f"no DeepXDE venv at {DX_PYTHON}: python3.11 -m venv {WORK / 'dxvenv'} && "
            f"{WORK / 'dxvenv/bin/pip'} install torch==2.13.0 deepxde"
        )
    WORK.mkdir(parents=True, exist_ok=True)
    if args.compile_cache:
        enable_compile_cache(args.compile_cache)
    cases = args.only or list(CASES)
    out = pathlib.Path(args.out)
    results = json.loads(out.read_text()) if (args.only and out.exists()) else {}
    results.setdefault("cases", {})
    results["machine"] = machine_info()
    results["command"] = " ".join(
        [".venv/bin/python", "benchmarks/deepxde_compare.py"] + sys.argv[1:]
    )
    for case in cases:
        steps = args.steps or (500 if args.quick else CASES[case]["steps"])
        t0 = time.perf_counter()
        r = compare_case(
            case, steps, args.eval_every, not args.no_variant, args.timing_only, args.seed
        )
        r["verdict"] = goal_verdict(r)
        r["bench_wall_s"] = time.perf_counter() - t0
        r["quick"] = args.quick
        r["single_thread"] = SINGLE_THREAD
        r["timing_only"] = args.timing_only
        r["seed"] = args.seed
        r["compile_cache"] = args.compile_cache
        results["cases"][case] = r
        write_json(out, results)
    results["machine"]["loadavg_at_end"] = list(os.getloadavg())
    write_json(out, results)
    print(markdown(results))


if __name__ == "__main__":
    main()
