"""Times the derivative strategies of `pinnkit.core.derivatives` on typical PINN request sets.

For a 4x50 tanh MLP with 2 inputs and 1 output, each request set is evaluated on N points under
``jax.jit(jax.vmap(...))`` ("eval"), and the gradient of the summed squares with respect to the
MLP parameters is taken as a training step would ("grad"). Reported: the best of K calls in
milliseconds after a warm-up call (compile excluded, `block_until_ready`; the minimum rather than
the median, and the strategies interleaved call by call, so that load from elsewhere on the
machine disturbs them least and alike), and the compile time of both programs.
TaylorMode(mixed="forward") differs from TaylorMode only on mixed partials, so it is timed only
for request sets that have some.

Usage:
    python benchmarks/derivative_strategies.py --points 2000 --repeat 20
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp

from pinnkit.core.derivatives import ForwardMode, NestedReverse, TaylorMode

# Coordinates are (x, y) for the Laplacian and (x, t) otherwise; only the multi-indices matter.
REQUEST_SETS = {
    "laplace {u,u_x,u_y,u_xx,u_yy}": [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2)],
    "heat {u,u_t,u_x,u_xx}": [(0, 0), (0, 1), (1, 0), (2, 0)],
    "kdv {u,u_t,u_x,u_xxx}": [(0, 0), (0, 1), (1, 0), (3, 0)],
    "3rd-mixed {u_xxx,u_xxy,u_xyy,u_yyy}": [(3, 0), (2, 1), (1, 2), (0, 3)],
}

STRATEGIES = {
    "NestedReverse": NestedReverse(),
    "ForwardMode": ForwardMode(),
    "TaylorMode": TaylorMode(),
    "TaylorMode(forward)": TaylorMode(mixed="forward"),
}


def init_mlp(key, sizes, dtype):
    """Glorot-normal weights and zero biases for a tanh MLP with layer sizes `sizes`."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        key, sub = jax.random.split(key)
        scale = jnp.sqrt(2.0 / (fan_in + fan_out))
        params.append(
            (scale * jax.random.normal(sub, (fan_out, fan_in), dtype), jnp.zeros(fan_out, dtype))
        )
    return params


def mlp(params, x):
    h = x
    for w, b in params[:-1]:
        h = jnp.tanh(w @ h + b)
    w, b = params[-1]
    return w @ h + b


def make_programs(strategy, orders):
    """The jitted eval (all points, all requests) and training-gradient programs."""

    def rows(params, points):
        fn = lambda x: mlp(params, x)
        return jax.vmap(lambda x: strategy(fn, x, orders))(points)

    def loss(params, points):
        return jnp.sum(rows(params, points) ** 2)

    return jax.jit(rows), jax.jit(jax.grad(loss))


def compile_program(program, args):
    """Runs `program` once (compiling it); returns the seconds that took."""
    start = time.perf_counter()
    jax.block_until_ready(program(*args))
    return time.perf_counter() - start


def time_interleaved(programs, args, repeat):
    """Best milliseconds per call of each program over `repeat` rounds.

    Each round calls every program once, so a burst of load from elsewhere on the machine hits
    all strategies alike instead of whichever happened to be running.
    """
    best = {key: float("inf") for key in programs}
    for _ in range(repeat):
        for key, program in programs.items():
            start = time.perf_counter()
            jax.block_until_ready(program(*args))
            best[key] = min(best[key], 1e3 * (time.perf_counter() - start))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2000, help="collocation points N")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls K per program")
    parser.add_argument("--x64", action="store_true", help="run in float64 (default float32)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    dtype = jnp.float64 if args.x64 else jnp.float32

    key_params, key_points = jax.random.split(jax.random.key(args.seed))
    params = init_mlp(key_params, [2, 50, 50, 50, 50, 1], dtype)
    points = jax.random.uniform(key_points, (args.points, 2), dtype, -1.0, 1.0)

    print(f"processor: {platform.processor() or platform.machine()}  ({platform.platform()})")
    print(f"devices:   {jax.devices()}")
    print(
        f"jax {jax.__version__}, {jnp.dtype(dtype).name}, 4x50 tanh MLP, 2 -> 1, "
        f"N = {args.points} points, best of K = {args.repeat} calls"
    )
    print()
    header = f"{'request set':<38} {'strategy':<21} {'eval ms':>9} {'grad ms':>9} {'compile s':>10}"
    print(header)
    print("-" * len(header))
    for set_name, orders in REQUEST_SETS.items():
        has_mixed = any(sum(n > 0 for n in index) > 1 for index in orders)
        names = [n for n in STRATEGIES if has_mixed or n != "TaylorMode(forward)"]
        programs, compile_s = {}, {}
        for name in names:
            evaluate, grad = make_programs(STRATEGIES[name], orders)
            programs[name, "eval"], programs[name, "grad"] = evaluate, grad
            compile_s[name] = sum(compile_program(p, (params, points)) for p in (evaluate, grad))
        ms = time_interleaved(programs, (params, points), args.repeat)
        results = {name: (ms[name, "eval"], ms[name, "grad"], compile_s[name]) for name in names}
        best_eval = min(r[0] for r in results.values())
        best_grad = min(r[1] for r in results.values())
        for name, (ms_eval, ms_grad, seconds) in results.items():
            # A star marks the fastest strategy for this request set.
            mark_eval = "*" if ms_eval == best_eval else " "
            mark_grad = "*" if ms_grad == best_grad else " "
            print(
                f"{set_name:<38} {name:<21} {ms_eval:>8.2f}{mark_eval} {ms_grad:>8.2f}{mark_grad} "
                f"{seconds:>10.2f}"
            )
        print()


if __name__ == "__main__":
    main()
