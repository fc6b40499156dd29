"""How often does each eigenvalue formulation find the right states? (issue 3)

Runs a quantum-well problem over several seeds with three formulations and counts the runs
whose energies are each within a tolerance of the exact ones:

- ``pinnkit``: orthonormal states by construction, energies started from the coarse
  finite-difference estimate, Rayleigh-quotient ties and a final Ritz step (the default);
- ``penalty``: the formulation of arXiv 2504.05367 (normalisation and orthogonality as loss
  terms, trained energies reported), started from the same estimate;
- ``penalty-naive``: the same with every energy started at 1 (luck of initialisation).

Usage::

    python benchmarks/eigen_seeds.py [--problem finite_well] [--seeds 4] [--steps 3000]
        [--tol 1e-3]

Prints a markdown table; figures go in benchmarks/RESULTS.md with the machine and settings.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]

EXACT = {
    "finite_well": [6.827141981875, 26.951445478594, 58.904615276174],
    "harmonic": [1.0, 3.0, 5.0, 7.0],
    "double_well": [3.852115212151, 3.852219235830],
}
METHODS = {
    "pinnkit": [],
    "penalty": ["equation.normalisation=penalty"],
    "penalty-naive": ["equation.normalisation=penalty"],
}


def run(problem: str, method: str, seed: int, steps: int, out: pathlib.Path):
    sets = [f"train.seed={seed}", f"train.steps={steps}", *METHODS[method]]
    if method == "penalty-naive":
        sets.append(f"equation.energies={[1.0] * len(EXACT[problem])}")
    cmd = [sys.executable, "-m", "pinnkit.cli", "solve", str(ROOT / "problems" / f"{problem}.yaml")]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd + ["--out", str(out), "--quiet"], capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        raise RuntimeError(proc.stderr[-2000:])
    summary = json.loads((out / "summary.json").read_text())
    return np.array(summary.get("eigenvalues", [])), summary["wall_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--problem", default="finite_well", choices=sorted(EXACT))
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()
    exact = np.array(EXACT[a.problem])
    print(
        f"| {a.problem}: method | right states (all E within {a.tol:g}) | worst rel. error "
        f"per seed | mean wall s |"
    )
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            worst, walls = [], []
            for seed in range(a.seeds):
                e, wall = run(
                    a.problem, method, seed, a.steps, pathlib.Path(tmp) / f"{method}-{seed}"
                )
                err = np.max(np.abs(e - exact) / exact) if len(e) == len(exact) else np.inf
                worst.append(err)
                walls.append(wall)
            ok = sum(w < a.tol for w in worst)
            cells = ", ".join(f"{w:.1e}" for w in worst)
            print(f"| {method} | {ok}/{a.seeds} | {cells} | {np.mean(walls):.0f} |", flush=True)


if __name__ == "__main__":
    main()
