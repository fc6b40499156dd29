"""The DeepXDE side of `deepxde_compare.py`: run in the separate DeepXDE venv, PyTorch backend.

    DDE_BACKEND=pytorch benchmarks/_work/dxvenv/bin/python benchmarks/_dx_cases.py \
        --case helmholtz2d --ref benchmarks/_work/ref_helmholtz2d.npz --steps 5000 \
        --out benchmarks/_work/dx_helmholtz2d.json

Cases (the network and loss as pinnkit's "identical settings" runs):
    helmholtz2d: Δu + k²u = q on [-1,1]², u = 0 on the boundary (soft, MSE, weight 1), k = 1,
        u = sin(πx)·sin(4πy); FNN [2]+[50]*4+[1], tanh, Glorot normal; Adam lr 1e-3; 1000
        domain + 200 boundary points, fixed.
    poisson1d: -u'' = f on [0,1], u(0) = u(1) = 0 (two soft terms, as pinnkit's two
        conditions), u = sin(2πx) + 0.1 sin(8πx); FNN [1]+[50]*3+[1] after the input scaling
        x -> 2x - 1 that pinnkit's MLP applies; 128 domain + 2 boundary points, fixed.

With ``--points NPZ`` (arrays ``interior`` and ``boundary``) the training points are exactly
those (DeepXDE anchors, num_domain = num_boundary = 0); otherwise DeepXDE draws its own
(Hammersley). As always in DeepXDE, the PDE residual is taken at all training points, the
boundary ones included, and each boundary condition at the points on its boundary.

Timing: a callback stamps the clock after every step; every ``--eval-every`` steps it computes
the rel. L2 error ||pred - ref|| / ||ref|| on the reference grid of ``--ref`` (arrays
``points`` and ``u``, written by deepxde_compare.py from pinnkit's reference) and that time is
left out of the training clock. Reported: seconds per 1000 steps from step 100 to the end
(warm-up excluded), in wall and process-CPU time, the total, and the error history.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("DDE_BACKEND", "pytorch")

import numpy as np  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", required=True, choices=["helmholtz2d", "poisson1d"])
    parser.add_argument("--ref", required=True, help="npz with `points` and `u`")
    parser.add_argument("--points", default=None, help="npz with `interior`, `boundary`")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--skip", type=int, default=100, help="warm-up steps left out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import deepxde as dde
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dde.config.set_default_float("float32")
    dde.config.set_random_seed(args.seed)
    ref = np.load(args.ref)
    ref_x = ref["points"].astype(np.float32)
    ref_u = ref["u"].astype(np.float64).reshape(-1)

    pts = np.load(args.points) if args.points else None
    anchors = None
    if pts is not None:
        anchors = np.vstack([pts["boundary"], pts["interior"]]).astype(np.float32)

    if args.case == "helmholtz2d":
        k = 1.0
        geom = dde.geometry.Rectangle([-1.0, -1.0], [1.0, 1.0])

        def pde(x, u):
            u_xx = dde.grad.hessian(u, x, i=0, j=0)
            u_yy = dde.grad.hessian(u, x, i=1, j=1)
            q = (
                (k**2 - 17 * np.pi**2)
                * torch.sin(np.pi * x[:, 0:1])
                * torch.sin(4 * np.pi * x[:, 1:2])
            )
            return u_xx + u_yy + k**2 * u - q

        bcs = [dde.icbc.DirichletBC(geom, lambda x: 0.0, lambda x, on_b: on_b)]
        n_domain, n_boundary = 1000, 200
        layers = [2] + [50] * 4 + [1]
        transform = None
    else:
        geom = dde.geometry.Interval(0.0, 1.0)

        def pde(x, u):
            u_xx = dde.grad.hessian(u, x)
            f = 4 * np.pi**2 * torch.sin(2 * np.pi * x) + 6.4 * np.pi**2 * torch.sin(8 * np.pi * x)
            return -u_xx - f

        bcs = [
            dde.icbc.DirichletBC(geom, lambda x: 0.0, lambda x, on_b: on_b and np.isclose(x[0], 0)),
            dde.icbc.DirichletBC(geom, lambda x: 0.0, lambda x, on_b: on_b and np.isclose(x[0], 1)),
        ]
        n_domain, n_boundary = 128, 2
        layers = [1] + [50] * 3 + [1]
        transform = lambda x: 2.0 * x - 1.0  # pinnkit's MLP scales inputs to [-1, 1]

    if anchors is not None:
        data = dde.data.PDE(geom, pde, bcs, num_domain=0, num_boundary=0, anchors=anchors)
    else:
        data = dde.data.PDE(geom, pde, bcs, num_domain=n_domain, num_boundary=n_boundary)
    net = dde.nn.FNN(layers, "tanh", "Glorot normal")
    if transform is not None:
        net.apply_feature_transform(transform)
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)

    def rel_l2() -> float:
        pred = model.predict(ref_x).astype(np.float64).reshape(-1)
        return float(np.linalg.norm(pred - ref_u) / np.linalg.norm(ref_u))

    class Clock(dde.callbacks.Callback):
        """Training clock per step; evaluation time is left out of it."""

        def __init__(self):
            super().__init__()
            self.step = 0
            self.eval_wall = 0.0
            self.eval_cpu = 0.0
            self.stamps = {}  # step -> (wall_s, cpu_s) since the start of training
            self.history = []

        def on_train_begin(self):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_epoch_end(self):
            self.step += 1
            wall = time.perf_counter() - self.t0 - self.eval_wall
            cpu = time.process_time() - self.c0 - self.eval_cpu
            if (
                self.step == args.skip
                or self.step % args.eval_every == 0
                or self.step == args.steps
            ):
                self.stamps[self.step] = (wall, cpu)
            if self.step % args.eval_every == 0 or self.step == args.steps:
                w0, c0 = time.perf_counter(), time.process_time()
                err = rel_l2()
                self.eval_wall += time.perf_counter() - w0
                self.eval_cpu += time.process_time() - c0
                self.history.append(
                    {"step": self.step, "train_time_s": wall, "cpu_s": cpu, "rel_l2": err}
                )

    clock = Clock()
    t0 = time.perf_counter()
    model.train(iterations=args.steps, display_every=1000, callbacks=[clock], verbose=0)
    wall_total = time.perf_counter() - t0
    end = clock.stamps[args.steps]
    start = clock.stamps[args.skip]
    n = args.steps - args.skip
    final = clock.history[-1]["rel_l2"]
    out = {
        "framework": "deepxde",
        "case": args.case,
        "deepxde": dde.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "steps": args.steps,
        "n_train_points": int(len(data.train_x_all)),
        "n_bc_points": [int(n) for n in data.num_bcs],
        "points": "given (anchors)" if anchors is not None else "DeepXDE Hammersley",
        "s_per_1000": 1000.0 * (end[0] - start[0]) / n,
        "cpu_s_per_1000": 1000.0 * (end[1] - start[1]) / n,
        "train_time_s": end[0],  # all steps, evaluations left out
        "train_cpu_s": end[1],
        "wall_total_s": wall_total,  # model.train, evaluations included
        "eval_s": clock.eval_wall,
        "final_rel_l2": final,
        "history": clock.history,
        "loadavg_1min_after": os.getloadavg()[0],
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(
        f"deepxde {args.case}: {out['s_per_1000']:.2f} s/1000 steps "
        f"(cpu {out['cpu_s_per_1000']:.2f}), final rel. L2 {final:.3e}"
    )


if __name__ == "__main__":
    main()
