"""pinnkit benchmarks on the reference problems in problems/.

For each problem (poisson1d, helmholtz2d, burgers1d; allen_cahn1d with --allen-cahn):
  (a) Adam step rate: the spec with ``train.optimizer=adam`` (all its other settings kept:
      points, resampling, weighting, hard constraints), steps/s with compilation excluded
      (pinnkit's own figure) and seconds per 1000 steps after the first 100;
  (b) time to accuracy: the spec as shipped but evaluated every ``--eval-every`` steps; the
      time from the start of training (compilation included, the evaluations themselves left
      out) until the rel. L2 error of ``u`` first drops to each threshold (1e-2, 1e-3);
  (c) the spec as shipped (nothing overridden): final error, training wall time, compile time
      and the whole `solve` call (building, reference, outputs and plots included).
And on helmholtz2d, the derivative strategies (model.derivatives = forward, reverse, taylor):
Adam steps/s as in (a); with --ablation, where the Adam step time goes (from the spec's
defaults to the DeepXDE-like settings, one change at a time).

Prints markdown tables and writes JSON (machine info included).

Usage:
    .venv/bin/python benchmarks/run_benchmarks.py                      # everything, ~15 min
    .venv/bin/python benchmarks/run_benchmarks.py --quick              # short smoke run
    .venv/bin/python benchmarks/run_benchmarks.py --only helmholtz2d --only derivatives
    .venv/bin/python benchmarks/run_benchmarks.py --allen-cahn         # also allen_cahn1d (slow)
    .venv/bin/python benchmarks/run_benchmarks.py --single-thread      # XLA single-threaded
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    PROBLEMS,
    REPO,
    best_error,
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

PROBLEM_NAMES = ["poisson1d", "helmholtz2d", "burgers1d"]
OPTIONAL = ["allen_cahn1d"]
THRESHOLDS = [1e-2, 1e-3]
STRATEGIES = ["forward", "reverse", "taylor"]
# Where the Adam step time goes on helmholtz2d: from the spec's defaults towards the
# DeepXDE-like settings of deepxde_compare.py, one change at a time (cumulative).
ABLATION = [
    ("spec defaults (64x4, 2048+256 pts, hard BC, GradNorm, resampled Sobol)", []),
    ("+ fixed weights", ["train.weighting=fixed"]),
    ("+ fixed points", ["train.points.resample_every=0"]),
    ("+ soft BC", ["model.hard_constraints=false"]),
    ("+ 1000+200 points", ["train.points.interior=1000", "train.points.boundary=200"]),
    ("+ 50x4 net (= DeepXDE-like settings)", ["model.width=50"]),
]
WORK = REPO / "benchmarks" / "_work"


def _now() -> str:
    import datetime

    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def settings(quick: bool) -> dict:
    return {
        "adam_steps": 300 if quick else 1000,
        "tta_steps": 600 if quick else None,  # None: the spec's own steps
        "derivative_steps": 300 if quick else 1000,
    }


def _slim(run: dict) -> dict:
    """A run without its long history (kept only where it is the point)."""
    return {k: v for k, v in run.items() if k != "history"}


def bench_adam(spec, steps: int, extra=()) -> dict:
    overrides = ["train.optimizer=adam", f"train.steps={steps}", f"train.eval_every={10 * steps}"]
    run = run_pinnkit(spec, overrides + list(extra), WORK / "run")
    return {
        **_slim(run),
        "s_per_1000_after_100": per_1000_after(run["history"], 100),
        "cpu_s_per_1000_after_100": per_1000_after(run["history"], 100, key="cpu_s"),
    }


def bench_tta(spec, eval_every: int, steps: int | None) -> dict:
    overrides = [f"train.eval_every={eval_every}"]
    if steps is not None:
        overrides.append(f"train.steps={steps}")
    run = run_pinnkit(spec, overrides, WORK / "run")
    hits = {}
    for th in THRESHOLDS:
        hit = first_below(run["history"], th)
        hits[f"{th:g}"] = (
            None
            if hit is None
            else {
                "step": hit["step"],
                "phase": hit["phase"],
                "train_time_s": hit["train_time_s"],
                "time_s_with_evals": hit["time_s"],
                "rel_l2": hit["rel_l2"],
            }
        )
    history = [
        {k: e.get(k) for k in ("step", "phase", "train_time_s", "rel_l2")}
        for e in run["history"]
        if e.get("rel_l2") is not None
    ]
    return {
        **_slim(run),
        "thresholds": hits,
        "best_rel_l2": best_error(run["history"]),
        "history": history,
    }


def bench_shipped(spec) -> dict:
    return _slim(run_pinnkit(spec, [], WORK / "run"))


def bench_problem(name: str, s: dict, eval_every: int) -> dict:
    spec = PROBLEMS / f"{name}.yaml"
    out = {"spec": str(spec.relative_to(REPO)), "loadavg_1min_at_start": os.getloadavg()[0]}
    t0 = time.perf_counter()
    log(f"[{name}] (a) Adam step rate, {s['adam_steps']} steps")
    out["adam"] = bench_adam(spec, s["adam_steps"])
    log(f"[{name}]     {out['adam']['steps_per_s']:.1f} steps/s")
    log(f"[{name}] (b) time to accuracy, eval every {eval_every}")
    out["tta"] = bench_tta(spec, eval_every, s["tta_steps"])
    log(f"[{name}]     {json.dumps(out['tta']['thresholds'])}")
    log(f"[{name}] (c) the spec as shipped")
    out["shipped"] = bench_shipped(spec)
    log(
        f"[{name}]     rel. L2 {out['shipped']['final_rel_l2']:.3e} "
        f"in {out['shipped']['wall_s']:.1f} s"
    )
    out["bench_wall_s"] = time.perf_counter() - t0
    return out


def bench_derivatives(s: dict) -> dict:
    spec = PROBLEMS / "helmholtz2d.yaml"
    out = {"spec": str(spec.relative_to(REPO)), "steps": s["derivative_steps"], "strategies": {}}
    for strat in STRATEGIES:
        log(
            f"[derivatives] helmholtz2d, model.derivatives={strat}, "
            f"{s['derivative_steps']} Adam steps"
        )
        r = bench_adam(spec, s["derivative_steps"], [f"model.derivatives={strat}"])
        out["strategies"][strat] = r
        log(f"[derivatives]     {r['steps_per_s']:.1f} steps/s, compile {r['compile_s']:.1f} s")
    return out


def bench_ablation(s: dict) -> dict:
    spec = PROBLEMS / "helmholtz2d.yaml"
    out = {"spec": str(spec.relative_to(REPO)), "steps": s["derivative_steps"], "rows": []}
    extra: list[str] = []
    for label, more in ABLATION:
        extra = extra + more
        log(f"[ablation] {label}")
        r = bench_adam(spec, s["derivative_steps"], extra)
        out["rows"].append({"label": label, "overrides": list(extra), **r})
        log(f"[ablation]     {r['steps_per_s']:.1f} steps/s, compile {r['compile_s']:.1f} s")
    return out


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"{m['date']}; {m.get('cpu_model') or m['processor']}; os.cpu_count() = {m['cpu_count']}; "
        f"jax {m['jax']} on {', '.join(m['jax_devices'])}; "
        f"{'XLA single-threaded' if m.get('XLA_FLAGS') else 'XLA default threads'}; "
        f"load average at start {m['loadavg_at_start'][0]:.2f}",
        "",
    ]
    probs = results.get("problems", {})
    if probs:
        lines += [
            "| problem | Adam steps/s | s/1000 Adam steps (after 100) | compile s | "
            + " | ".join(f"time to rel. L2 <= {th:g} (step)" for th in THRESHOLDS)
            + " | shipped: final rel. L2 | shipped: train wall s (compile s) "
            "| shipped: whole solve s |",
            "|---|---|---|---|" + "---|" * len(THRESHOLDS) + "---|---|---|",
        ]
        for name, r in probs.items():
            a, t, sh = r["adam"], r["tta"], r["shipped"]
            cells = []
            for th in THRESHOLDS:
                hit = t["thresholds"].get(f"{th:g}")
                cells.append(
                    f"{hit['train_time_s']:.1f} s ({hit['step']}, {hit['phase']})"
                    if hit
                    else f"not reached in {t['steps']} steps (best {fmt(t['best_rel_l2'], '.2e')})"
                )
            lines.append(
                f"| {name} | {a['steps_per_s']:.1f} | {fmt(a['s_per_1000_after_100'], '.2f')} | "
                f"{a['compile_s']:.1f} | "
                + " | ".join(cells)
                + f" | {fmt(sh['final_rel_l2'], '.2e')} | "
                f"{sh['wall_s']:.1f} ({sh['compile_s']:.1f}) | {sh['solve_total_s']:.1f} |"
            )
    d = results.get("derivatives")
    if d:
        lines += [
            "",
            f"helmholtz2d, spec defaults with Adam only, {d['steps']} steps:",
            "",
            "| model.derivatives | Adam steps/s | s/1000 steps (after 100) | compile s |",
            "|---|---|---|---|",
        ]
        for strat, r in d["strategies"].items():
            lines.append(
                f"| {strat} | {r['steps_per_s']:.1f} | {fmt(r['s_per_1000_after_100'], '.2f')} | "
                f"{r['compile_s']:.1f} |"
            )
    ab = results.get("ablation")
    if ab:
        lines += [
            "",
            f"helmholtz2d, Adam only, {ab['steps']} steps, changes applied cumulatively:",
            "",
            "| settings | Adam steps/s | s/1000 steps (after 100) | CPU s/1000 steps | compile s |",
            "|---|---|---|---|---|",
        ]
        for r in ab["rows"]:
            lines.append(
                f"| {r['label']} | {r['steps_per_s']:.1f} | "
                f"{fmt(r['s_per_1000_after_100'], '.2f')} | "
                f"{fmt(r['cpu_s_per_1000_after_100'], '.2f')} | {r['compile_s']:.1f} |"
            )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument(
        "--only",
        action="append",
        choices=PROBLEM_NAMES + OPTIONAL + ["derivatives", "ablation"],
        help="run only this (repeatable)",
    )
    parser.add_argument("--allen-cahn", action="store_true", help="also allen_cahn1d (slow)")
    parser.add_argument(
        "--ablation", action="store_true", help="also the helmholtz2d step-time ablation"
    )
    parser.add_argument("--eval-every", type=int, default=100, help="for time to accuracy")
    parser.add_argument(
        "--single-thread", action="store_true", help="XLA single-threaded (shared machines)"
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"))
    args = parser.parse_args()

    if args.only:
        todo = list(dict.fromkeys(args.only))
    else:
        todo = PROBLEM_NAMES + (OPTIONAL if args.allen_cahn else []) + ["derivatives"]
        if args.ablation:
            todo.append("ablation")
    s = settings(args.quick)
    out = pathlib.Path(args.out)
    # With --only, earlier results in the file are kept and the ones run now replaced.
    results = json.loads(out.read_text()) if (args.only and out.exists()) else {}
    results.setdefault("problems", {})
    results["machine"] = machine_info()
    results["settings"] = {
        **s,
        "eval_every": args.eval_every,
        "thresholds": THRESHOLDS,
        "quick": args.quick,
        "single_thread": SINGLE_THREAD,
    }
    results["command"] = " ".join(
        [".venv/bin/python", "benchmarks/run_benchmarks.py"] + sys.argv[1:]
    )
    WORK.mkdir(parents=True, exist_ok=True)
    for item in todo:
        if item == "derivatives":
            results["derivatives"] = {**bench_derivatives(s), "date": _now()}
        elif item == "ablation":
            results["ablation"] = {**bench_ablation(s), "date": _now()}
        else:
            results["problems"][item] = {**bench_problem(item, s, args.eval_every), "date": _now()}
        write_json(out, results)
    results["machine"]["loadavg_at_end"] = list(os.getloadavg())
    write_json(out, results)
    print(markdown(results))


if __name__ == "__main__":
    main()
