"""Hand-written floors for the Helmholtz 2D training step of `deepxde_compare.py`.

The same step as there (4x50 tanh MLP, 1000 interior + 200 boundary points, Laplacian
residual MSE + boundary MSE, Adam 1e-3, float32), written directly:
  * JAX: ``jit`` + ``lax.scan`` over 100 steps, the Laplacian by forward-over-forward ``jvp``
    ("fwd", pinnkit's default strategy) or by a Hessian-vector product ("hvp");
  * PyTorch (run in the DeepXDE venv): eager, the Laplacian by nested ``autograd.grad``, as
    DeepXDE does.
It answers: how far is pinnkit from what JAX itself gives here, and DeepXDE from PyTorch?

Usage:
    .venv/bin/python benchmarks/step_floor.py [--single-thread] [--steps 500]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
DX_PYTHON = HERE / "_work" / "dxvenv" / "bin" / "python"
SIZES = [2, 50, 50, 50, 50, 1]
N_INTERIOR, N_BOUNDARY = 1000, 200


def jax_floor(mode: str, steps: int) -> dict:
    import jax
    import jax.numpy as jnp
    import optax

    key = jax.random.key(0)
    params = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        key, k = jax.random.split(key)
        params.append((jnp.sqrt(2.0 / (a + b)) * jax.random.normal(k, (b, a)), jnp.zeros(b)))

    def net(p, x):
        h = x
        for w, b in p[:-1]:
            h = jnp.tanh(w @ h + b)
        w, b = p[-1]
        return (w @ h + b)[0]

    xi = jax.random.uniform(jax.random.key(1), (N_INTERIOR, 2), minval=-1, maxval=1)
    xb = jax.random.uniform(jax.random.key(2), (N_BOUNDARY, 2), minval=-1, maxval=1)

    def q(x):
        return (1 - 17 * jnp.pi**2) * jnp.sin(jnp.pi * x[0]) * jnp.sin(4 * jnp.pi * x[1])

    def lap(p, x):
        f = lambda x: net(p, x)
        total = 0.0
        for e in jnp.eye(2):
            if mode == "hvp":
                total += jax.jvp(jax.grad(f), (x,), (e,))[1] @ e
            else:
                df = lambda x, e=e: jax.jvp(f, (x,), (e,))[1]
                total += jax.jvp(df, (x,), (e,))[1]
        return total

    def loss(p):
        r = jax.vmap(lambda x: lap(p, x) + net(p, x) - q(x))(xi)
        ub = jax.vmap(lambda x: net(p, x))(xb)
        return jnp.mean(r**2) + jnp.mean(ub**2)

    opt = optax.adam(1e-3)

    @jax.jit
    def run(p, s):
        def step(c, _):
            p, s = c
            value, g = jax.value_and_grad(loss)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), value

        return jax.lax.scan(step, (p, s), None, length=100)

    state = opt.init(params)
    t0 = time.perf_counter()
    (params, state), _ = run(params, state)  # compile + 100 warm-up steps
    jax.block_until_ready(params)
    first = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(max(1, steps // 100)):
        (params, state), values = run(params, state)
    jax.block_until_ready(values)
    n = 100 * max(1, steps // 100)
    return {
        "framework": f"jax {jax.__version__}",
        "laplacian": mode,
        "ms_per_step": 1e3 * (time.perf_counter() - t0) / n,
        "cpu_ms_per_step": 1e3 * (time.process_time() - c0) / n,
        "first_100_s": first,
        "steps": n,
    }


def torch_floor(steps: int, threads: int) -> dict:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.Tanh()]
    net = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    xi = (2 * torch.rand(N_INTERIOR, 2) - 1).requires_grad_(True)
    xb = 2 * torch.rand(N_BOUNDARY, 2) - 1
    q = (1 - 17 * torch.pi**2) * torch.sin(torch.pi * xi[:, 0]) * torch.sin(4 * torch.pi * xi[:, 1])
    q = q.detach()

    def step():
        u = net(xi)
        g = torch.autograd.grad(u.sum(), xi, create_graph=True)[0]
        u_xx = torch.autograd.grad(g[:, 0].sum(), xi, create_graph=True)[0][:, 0]
        u_yy = torch.autograd.grad(g[:, 1].sum(), xi, create_graph=True)[0][:, 1]
        loss = ((u_xx + u_yy + u[:, 0] - q) ** 2).mean() + (net(xb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    for _ in range(100):  # warm-up
        step()
    first = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return {
        "framework": f"torch {torch.__version__} (eager), {torch.get_num_threads()} threads",
        "laplacian": "nested autograd.grad",
        "ms_per_step": 1e3 * (time.perf_counter() - t0) / steps,
        "cpu_ms_per_step": 1e3 * (time.process_time() - c0) / steps,
        "first_100_s": first,
        "steps": steps,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single-thread", action="store_true")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:
        print(json.dumps(torch_floor(args.steps, 1 if args.single_thread else 0)))
        return
    if args.single_thread:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()
    rows = [jax_floor("fwd", args.steps), jax_floor("hvp", args.steps)]
    if DX_PYTHON.exists():
        cmd = [str(DX_PYTHON), __file__, "--torch-worker", "--steps", str(args.steps)]
        cmd += ["--single-thread"] if args.single_thread else []
        env = {**os.environ, "OMP_NUM_THREADS": "1"} if args.single_thread else None
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode == 0:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        else:
            print(proc.stderr[-2000:], file=sys.stderr)
    print(f"load average {os.getloadavg()[0]:.2f}; single-thread: {args.single_thread}\n")
    print("| implementation | Laplacian | ms/step | CPU ms/step | first 100 steps s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['framework']} | {r['laplacian']} | {r['ms_per_step']:.2f} | "
            f"{r['cpu_ms_per_step']:.2f} | {r['first_100_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
