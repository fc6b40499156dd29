"""Reproduce benchmarks/gp_results.md: every GP reference problem as shipped (rel. L2, wall
time), and the time-to-accuracy of the GP on the multi-scale Poisson problem.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/gp_bench.py [--out runs/gp_bench]

Prints a markdown table and writes ``results.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see benchmarks/gp_results.md

import pinnkit  # noqa: E402

PROBLEMS = pathlib.Path(__file__).resolve().parents[1] / "problems"
CASES = {
    "gp_poisson1d_sin100": 1e-3,
    "gp_poisson1d_multiscale": 1e-4,
    "gp_poisson1d_xsin200": 1e-2,
    "gp_poisson1d_sin500": 1e-2,
    "gp_allen_cahn1d": 1e-2,
    "gp_poisson2d_sin100": 1e-2,
}


def run(name: str, out: pathlib.Path, overrides=()) -> dict:
    spec = pinnkit.load_spec(PROBLEMS / f"{name}.yaml", list(overrides))
    solution = pinnkit.solve(spec, out=out / name, progress=False)
    rec = solution.record
    return {
        "problem": name,
        "rel_l2": solution.errors()["u"]["rel_l2"],
        "wall_s": rec.wall_s,
        "compile_s": rec.compile_s,
        "steps": rec.steps,
        "status": rec.status,
        "history": [
            (e["step"], e["time_s"], e["errors"]["u"]["rel_l2"])
            for e in rec.history
            if "errors" in e
        ],
    }


def time_to(history, target):
    """Seconds (since the run started) at the first evaluation below ``target``."""
    for _, t, err in history:
        if err < target:
            return t
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/gp_bench")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name, bar in CASES.items():
        if args.only and name not in args.only:
            continue
        r = run(name, out)
        r["bar"] = bar
        results.append(r)
        print(
            f"| {name} | {bar:.0e} | {r['rel_l2']:.2e} | {r['wall_s']:.0f} s | {r['steps']} |",
            flush=True,
        )
    if not args.only or "tta" in args.only:
        tta = run(
            "gp_poisson1d_multiscale",
            out / "tta",
            ["train.eval_every=10", "train.log_every=10"],
        )
        tta["time_to"] = {str(t): time_to(tta["history"], t) for t in (1e-1, 1e-2, 1e-3, 1e-4)}
        print("time to accuracy (multiscale):", tta["time_to"], flush=True)
        results.append({**tta, "problem": "tta_multiscale"})
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
