"""Write the observations of the ODIL heat inverse benchmark (problems/heat_inverse_odil.yaml):
the reference solution of u_t = (k(u) u_x)_x with k(u) = 0.02 exp(-20 (u - 1/2)^2) at the
nodes of a 64 x 64 grid over [0, 1]^2 in the stripe |t - 1/2| < 1/6 (Karnakov et al., arXiv
2205.04611). Deterministic: rerunning writes the same file.

    python benchmarks/odil_heat_data.py [--out problems/data/heat_inverse_stripe.csv] [--n 64]
"""

import argparse
import pathlib

import jax.numpy as jnp
import numpy as np

from pinnkit.reference.heat import heat_at, nonlinear_heat

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "problems/data/heat_inverse_stripe.csv"))
    parser.add_argument("--n", type=int, default=64, help="grid nodes per axis")
    args = parser.parse_args()
    solution = nonlinear_heat(
        lambda u: 0.02 * jnp.exp(-20 * (u - 0.5) ** 2),
        lambda x: jnp.exp(-50 * (x - 0.5) ** 2) - np.exp(-12.5),
    )
    nodes = np.linspace(0.0, 1.0, args.n)
    t, x = (a.reshape(-1) for a in np.meshgrid(nodes, nodes, indexing="ij"))
    keep = np.abs(t - 0.5) < 1 / 6
    u = heat_at(t[keep], x[keep], solution)
    table = np.stack([t[keep], x[keep], u], axis=-1)
    np.savetxt(args.out, table, delimiter=",", header="t,x,u", comments="", fmt="%.10g")
    print(f"wrote {len(table)} observations to {args.out}")


if __name__ == "__main__":
    main()
