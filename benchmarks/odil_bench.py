"""Reproduce benchmarks/odil_results.md: the ODIL backend against an MLP PINN on the same specs.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/odil_bench.py [--out runs/odil_bench]
        [--pinn-steps 4000]

Cases: the five-mode wave problem (problems/wave1d_odil.yaml) on grids 33-257 with Newton,
with multigrid L-BFGS, and the same spec with the default MLP (Adam then L-BFGS); the heat
inverse problem (problems/heat_inverse_odil.yaml) with Newton and with an MLP PINN plus the
same unknown network k(u). Every error is the final state's, against the reference the spec
names. Prints a markdown table and writes ``results.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402

import pinnkit  # noqa: E402

PROBLEMS = pathlib.Path(__file__).resolve().parents[1] / "problems"


def run(label: str, name: str, out: pathlib.Path, overrides=()) -> dict:
    spec = pinnkit.load_spec(PROBLEMS / f"{name}.yaml", list(overrides))
    solution = pinnkit.solve(spec, out=out / label.replace(" ", "_"), progress=False)
    rec = solution.record
    errors = solution.errors()
    row = {
        "case": label,
        "problem": name,
        "overrides": list(overrides),
        "wall_s": round(rec.wall_s, 2),
        "compile_s": round(rec.compile_s, 2),
        "steps": rec.steps,
        "status": rec.status,
        "errors": {k: v["rel_l2"] for k, v in errors.items()},
    }
    print(row, flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/odil_bench")
    parser.add_argument("--pinn-steps", type=int, default=4000)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    rows = []
    for n in (33, 65, 129, 257):
        rows.append(run(f"wave odil newton {n}", "wave1d_odil", out, [f"model.grid={n}"]))
    rows.append(
        run(
            "wave odil multigrid lbfgs 65",
            "wave1d_odil",
            out,
            ["model.grid=65", "model.multigrid=5", "train.phases=null", "train.optimizer=lbfgs"],
        )
    )
    pinn = [
        "model={backend: mlp}",
        "train.phases=null",
        "train.dtype=float32",
        "train.weighting=gradnorm",
        f"train.steps={args.pinn_steps}",
        f"train.log_every={args.pinn_steps // 4}",
        f"train.eval_every={args.pinn_steps // 4}",
    ]
    rows.append(run("wave mlp pinn", "wave1d_odil", out, pinn))
    rows.append(run("heat inverse odil newton", "heat_inverse_odil", out))
    rows.append(run("heat inverse mlp pinn", "heat_inverse_odil", out, pinn))
    meta = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print("\n| case | wall s | steps | errors (rel. L2) |\n|---|---|---|---|")
    for r in rows:
        errs = ", ".join(f"{k} {v:.2e}" for k, v in r["errors"].items())
        print(f"| {r['case']} | {r['wall_s']:.1f} | {r['steps']} | {errs} |")


if __name__ == "__main__":
    main()
