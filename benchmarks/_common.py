"""Helpers shared by the benchmark scripts: machine info and one timed pinnkit run.

`run_pinnkit` calls `pinnkit.solve` and returns its timings, plus a rel. L2 history whose
times leave out the evaluations against the reference (which the benchmark asks for far more
often than a normal run would): pinnkit's evaluator is wrapped, for this process only, so that
each call is timed; nothing in pinnkit is changed on disk.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
PROBLEMS = REPO / "problems"


def machine_info() -> dict:
    """Where and when the numbers were taken."""
    import jax
    import numpy as np

    import pinnkit

    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_devices": [str(d) for d in jax.devices()],
        "numpy": np.__version__,
        "pinnkit": pinnkit.__version__,
        "loadavg_at_start": list(os.getloadavg()),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }
    for mod in ("jaxlib", "equinox", "optax"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - informational only
            pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        info["cpu_model"] = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in lscpu.splitlines()
                if ln.startswith("Model name")
            ),
            None,
        )
    except Exception:  # pragma: no cover
        pass
    return info


class _EvalTimer:
    """Wraps pinnkit's evaluator factory so every evaluation is timed (in this process)."""

    def __init__(self):
        self.durations: list[float] = []
        self.cpu_durations: list[float] = []

    def __enter__(self):
        import pinnkit._solve as solve_mod

        self._mod = solve_mod
        self._orig = getattr(solve_mod, "make_evaluator", None)
        if self._orig is None:  # pinnkit changed: run without the correction
            return self
        orig = self._orig
        durations, cpu_durations = self.durations, self.cpu_durations

        def make_evaluator(problem):
            evaluate = orig(problem)
            if evaluate is None:
                return None

            def timed(*args, **kwargs):
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    return evaluate(*args, **kwargs)
                finally:
                    durations.append(time.perf_counter() - t0)
                    cpu_durations.append(time.process_time() - c0)

            return timed

        solve_mod.make_evaluator = make_evaluator
        return self

    def __exit__(self, *exc):
        if self._orig is not None:
            self._mod.make_evaluator = self._orig
        return False


SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def single_thread_from_argv(flag: str = "--single-thread") -> bool:
    """If `flag` is on the command line, make JAX (XLA) and BLAS/OpenMP single-threaded. Call
    before jax is imported."""
    if flag not in sys.argv:
        return False
    if "jax" in sys.modules:
        raise RuntimeError("single_thread_from_argv must run before jax is imported")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + SINGLE_THREAD_XLA).strip()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    return True


def enable_compile_cache(path) -> None:
    """JAX's persistent compilation cache in `path` (every program cached, however quick to
    compile): a second run of the same programs skips XLA compilation, not tracing."""
    import jax

    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def run_pinnkit(spec_path, overrides, out, *, field: str = "u", keep: bool = False) -> dict:
    """Solve a spec with overrides; return timings, the error history and final errors.

    History entries carry ``time_s`` (pinnkit's, from the start of training: compilation and
    all earlier evaluations included) and ``train_time_s`` (the same less the time spent in
    the evaluations before it, so it does not depend on how often one evaluates) and
    ``cpu_s``: process CPU time (all threads) since the start of `solve`, less all evaluations
    up to this entry; CPU time is less disturbed than wall time by other jobs on a shared
    machine, but counts every thread (two busy threads: twice the wall time).
    """
    from pinnkit import load_spec, solve

    out = pathlib.Path(out)
    if out.exists():
        shutil.rmtree(out)
    spec = load_spec(str(spec_path), list(overrides))
    load_before = os.getloadavg()[0]
    cpu_at_log: list[float] = []
    t0, c0 = time.perf_counter(), time.process_time()
    with _EvalTimer() as timer:
        sol = solve(
            spec,
            out=str(out),
            progress=False,
            log=lambda entry: cpu_at_log.append(time.process_time() - c0),
        )
    total_s = time.perf_counter() - t0
    r = sol.record
    history = []
    spent = 0.0  # evaluation time before the current entry
    spent_cpu = 0.0
    i_eval = 0
    evals_timed = timer._orig is not None
    for i, e in enumerate(r.history):
        entry = {
            "step": e["step"],
            "phase": e.get("phase"),
            "time_s": e["time_s"],
            "loss": e["loss"],
        }
        entry["train_time_s"] = e["time_s"] - spent
        errs = e.get("errors")
        if errs is not None:
            if field in errs and "rel_l2" in errs[field]:
                entry["rel_l2"] = errs[field]["rel_l2"]
            if evals_timed and i_eval < len(timer.durations):
                spent += timer.durations[i_eval]
                spent_cpu += timer.cpu_durations[i_eval]
            i_eval += 1
        if i < len(cpu_at_log):
            entry["cpu_s"] = cpu_at_log[i] - spent_cpu
        history.append(entry)
    errors = sol.errors()
    result = {
        "overrides": list(overrides),
        "status": r.status,
        "steps": r.steps,
        "steps_per_s": r.steps_per_s,
        "compile_s": r.compile_s,
        "wall_s": r.wall_s,  # train(): compile + steps + logging + evaluations
        "eval_s": sum(timer.durations),
        "cpu_s": (cpu_at_log[-1] - sum(timer.cpu_durations)) if cpu_at_log else None,
        "n_evals": len(timer.durations),
        "train_wall_s": r.wall_s - sum(timer.durations),
        "solve_total_s": total_s,  # solve(): also building, outputs and plots
        "final_rel_l2": errors.get(field, {}).get("rel_l2"),
        "final_max_abs": errors.get(field, {}).get("max_abs"),
        "history": history,
        "loadavg_1min_before": load_before,
        "loadavg_1min_after": os.getloadavg()[0],
        "eval_times_subtracted": evals_timed,
    }
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return result


def first_below(history: list, threshold: float) -> dict | None:
    """The first evaluated history entry with rel. L2 at or below `threshold`."""
    for e in history:
        if e.get("rel_l2") is not None and e["rel_l2"] <= threshold:
            return e
    return None


def best_error(history: list) -> float | None:
    errs = [e["rel_l2"] for e in history if e.get("rel_l2") is not None]
    return min(errs) if errs else None


def per_1000_after(history: list, skip: int = 100, key: str = "train_time_s") -> float | None:
    """Seconds per 1000 steps between the first logged step >= `skip` and the last entry."""
    after = [e for e in history if e["step"] >= skip]
    if len(after) < 2:
        return None
    a, b = after[0], after[-1]
    if b["step"] <= a["step"]:
        return None
    return 1000.0 * (b[key] - a[key]) / (b["step"] - a["step"])


def write_json(path, data) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")


def fmt(x, spec: str = ".3g", missing: str = "–") -> str:
    if x is None:
        return missing
    try:
        return format(x, spec)
    except (TypeError, ValueError):
        return str(x)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
