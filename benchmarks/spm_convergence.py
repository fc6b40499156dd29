"""Reproduce benchmarks/spm_results.md: grid convergence of the SPM reference solver.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/spm_convergence.py [--nodes 8 16 ...]
        [--json runs/spm_convergence.json]

Solves the simple parameter set (Hassanaly et al., arXiv:2312.17329) at the two corners of the
degradation box, (deg_i0_a, deg_ds_c) = (0.5, 1) and (4, 10), in one vmapped batch per grid,
with linearised kinetics, and compares the voltage with the exact oracle
(`pinnkit.reference.spm.exact_voltage`). Errors are maxima over both corners of
|V - V_exact| on three time sets: every 10 s over [0, 1350] s (the paper's outputs), a
geometric grid of 300 times in [1, 1350] s, and the end of the discharge. The observed order is
log2 of the ratio of successive errors. Wall times: the first call (compilation included) and
a second call with other degradation values (compiled program reused). Prints a markdown table
and, with ``--json``, writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from pinnkit.reference.spm import SPMParameters, exact_voltage, solve_spm  # noqa: E402

CORNERS = ((0.5, 1.0), (4.0, 10.0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    args = parser.parse_args()

    jax.config.update("jax_enable_x64", True)
    params = SPMParameters()
    sets = {
        "10 s grid": np.linspace(0.0, params.t_max, 136),
        "t >= 1 s": np.geomspace(1.0, params.t_max, 300),
        "t = 1350 s": np.array([params.t_max]),
    }
    t_all = np.unique(np.concatenate(list(sets.values())))
    index = {k: np.searchsorted(t_all, v) for k, v in sets.items()}
    a = np.array([c[0] for c in CORNERS])
    d = np.array([c[1] for c in CORNERS])
    exact = np.stack(
        [np.asarray(exact_voltage(params, t_all, deg_i0_a=x, deg_ds_c=y)) for x, y in CORNERS]
    )

    rows = []
    for nodes in args.nodes:
        start = time.perf_counter()
        solution = solve_spm(params, t_all, deg_i0_a=a, deg_ds_c=d, nodes=nodes)
        solution.voltage.block_until_ready()
        first = time.perf_counter() - start
        start = time.perf_counter()
        solve_spm(
            params, t_all, deg_i0_a=a * 1.1, deg_ds_c=d * 0.9, nodes=nodes
        ).voltage.block_until_ready()
        second = time.perf_counter() - start
        err = np.abs(np.asarray(solution.voltage) - exact)
        row = {"nodes": nodes, "first_call_s": first, "second_call_s": second}
        row.update({k: float(err[:, i].max()) for k, i in index.items()})
        rows.append(row)

    header = (
        "| nodes | "
        + " | ".join(f"max error, {k} (V) | order" for k in sets)
        + " | first call s | second call s |"
    )
    print(header)
    print("|" + "---|" * (2 * len(sets) + 3))
    for i, row in enumerate(rows):
        cells = [str(row["nodes"])]
        for k in sets:
            order = "" if i == 0 else f"{np.log2(rows[i - 1][k] / row[k]):.2f}"
            cells += [f"{row[k]:.3e}", order]
        cells += [f"{row['first_call_s']:.2f}", f"{row['second_call_s']:.3f}"]
        print("| " + " | ".join(cells) + " |")
    device = jax.devices()[0].platform
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, {device}"
    )
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
