"""Time-to-accuracy of the MLP, PIG and GP backends on the spectral-bias problems (issue 4).

Each case is solved once with frequent evaluation against its reference; the table gives the
wall time (training, compilation included, as `metrics.jsonl` records it) at which the
relative L2 error first fell below each threshold, and the final error.

    .venv/bin/python benchmarks/time_to_accuracy.py [--only helmholtz|multiscale] [--out FILE]

Results: benchmarks/RESULTS.md §6 (raw: benchmarks/time_to_accuracy.json).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import tempfile
import time

import pinnkit
from pinnkit.spec.loader import read_yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROBLEMS = ROOT / "problems"
THRESHOLDS = (1e-1, 1e-2, 1e-3, 1e-4)

MULTISCALE = {
    "name": "multiscale",
    "coords": ["x"],
    "domain": {"x": [0, 1]},
    "fields": ["u"],
    "equation": {"name": "poisson", "source": "4*pi^2*sin(2*pi*x) + 250*pi^2*sin(50*pi*x)"},
    "conditions": [{"on": "x=0", "u": "0"}, {"on": "x=1", "u": "0"}],
    "reference": {"exact": {"u": "sin(2*pi*x) + 0.1*sin(50*pi*x)"}, "grid": [2001]},
}


def _phases(adam_lr: float, steps: int = 3000) -> list:
    adam = steps // 3
    return [
        {"optimizer": {"name": "adam", "lr": adam_lr}, "steps": adam},
        {"optimizer": "lbfgs", "steps": steps - adam},
    ]


def cases() -> dict[str, list[tuple[str, dict]]]:
    """The notebook's four models on the multi-scale problem, and Helmholtz with MLP vs PIG."""
    points = {"interior": 1024, "sampler": "uniform"}
    gp, _ = read_yaml(PROBLEMS / "gp_poisson1d_multiscale.yaml")
    multiscale = [
        ("MLP", {"backend": "mlp"}, {"phases": _phases(1e-3), "points": points}),
        (
            "MLP + Fourier features",
            {"backend": "mlp", "fourier_features": 64, "fourier_scale": 10.0},
            {"phases": _phases(1e-3), "points": points},
        ),
        (
            "PIG",
            {"backend": "pig", "gaussians": 200, "sigma": 0.02},
            {"phases": _phases(1e-2), "points": points, "weighting": "fixed"},
        ),
        ("GP", gp["model"], gp["train"]),
    ]
    out = {
        "multiscale": [
            (label, {**MULTISCALE, "model": m, "train": {**t, "eval_every": 25}})
            for label, m, t in multiscale
        ]
    }
    helm = []
    for label, name in (("MLP (helmholtz2d)", "helmholtz2d"), ("PIG", "helmholtz2d_pig")):
        spec, _ = read_yaml(PROBLEMS / f"{name}.yaml")
        spec.setdefault("train", {})["eval_every"] = 100
        helm.append((label, spec))
    out["helmholtz"] = helm
    return out


def run_case(label: str, spec: dict, workdir: pathlib.Path) -> dict:
    loaded = pinnkit.load_spec(spec, base_dir=PROBLEMS)
    start = time.perf_counter()
    sol = pinnkit.solve(loaded, out=workdir / loaded.name, progress=False)
    wall = time.perf_counter() - start
    history = [
        json.loads(line)
        for line in (workdir / loaded.name / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    evals = [(h["time_s"], h["step"], h["errors"]["u"]["rel_l2"]) for h in history if "errors" in h]
    reached = {}
    for bar in THRESHOLDS:
        hit = next(((t, s) for t, s, e in evals if e <= bar), None)
        reached[f"{bar:.0e}"] = None if hit is None else {"time_s": hit[0], "step": hit[1]}
    return {
        "label": label,
        "spec": loaded.name,
        "final_rel_l2": sol.errors()["u"]["rel_l2"],
        "wall_s": wall,
        "steps": sol.record.steps,
        "reached": reached,
    }


def table(results: list[dict]) -> str:
    head = "| model | final rel. L2 | wall | " + " | ".join(f"to {b:.0e}" for b in THRESHOLDS)
    lines = [head + " |", "|---" * (3 + len(THRESHOLDS)) + "|"]
    for r in results:
        cells = []
        for bar in THRESHOLDS:
            hit = r["reached"][f"{bar:.0e}"]
            cells.append("–" if hit is None else f"{hit['time_s']:.1f} s (step {hit['step']})")
        lines.append(
            f"| {r['label']} | {r['final_rel_l2']:.2e} | {r['wall_s']:.1f} s | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["helmholtz", "multiscale"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "time_to_accuracy.json"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results.update(machine=platform.platform(), date=time.strftime("%Y-%m-%d %H:%M UTC"))
    with tempfile.TemporaryDirectory() as tmp:
        for group, items in cases().items():
            if args.only and group != args.only:
                continue
            results[group] = [run_case(label, spec, pathlib.Path(tmp)) for label, spec in items]
            print(f"\n### {group}\n\n{table(results[group])}", flush=True)
            out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
