"""Bayesian calibration of the SPM degradation parameters from a voltage curve (NUTS).

Given a measured discharge curve (t_i, V_i), the posterior of (deg_i0_a, deg_ds_c) is

    p(deg | V) ∝ prior(deg) prod_i N(V_i; V_model(t_i; deg), sigma^2),

with a log-uniform prior over the degradation ranges (uniform in q = the log-multiplier
mapped onto [-1, 1]) and either a given noise level sigma or sigma inferred with a
log-uniform prior on [0.1 mV, 100 mV]; a surrogate's own error at each time (measured
against the reference) adds to sigma^2. The sampler is the No-U-Turn sampler of blackjax with
Stan's window adaptation of the step size and a diagonal mass matrix, on unconstrained
coordinates (q = tanh(u); log sigma through a scaled tanh as well), several chains vmapped.
``V_model`` is any JAX function of (t, deg_i0_a, deg_ds_c): the PINN surrogate
(`SPMSurrogate.voltage`) or the reference solver in the loop (`reference_voltage`).

As in Hassanaly et al. Part II (arXiv:2312.17336) the point is speed: the surrogate's voltage
and its gradient cost microseconds, the reference solver's a stiff ODE solve and its adjoint.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from pinnkit.errors import SpecError
from pinnkit.reference import spm

__all__ = ["Calibration", "calibrate", "read_voltage_csv", "reference_voltage"]

NAMES = ("deg_i0_a", "deg_ds_c")
_SIGMA_RANGE = (1e-4, 1e-1)  # V: the log-uniform prior of an inferred noise level


def read_voltage_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A measured curve from a CSV file with the columns ``time_s`` and ``voltage_V``.

    Returns:
        (t, V) as float64 arrays, t strictly increasing.

    Raises:
        SpecError: the file is missing, a column is missing (the message lists the columns
            found), a value is not a finite number, or the times do not increase.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise SpecError(f"no file {str(path)!r}", path="--data")
    import csv

    with open(path, newline="") as f:
        rows = list(csv.reader(line for line in f if line.strip() and not line.startswith("#")))
    if not rows:
        raise SpecError(f"{path} is empty", path="--data")
    header = [h.strip() for h in rows[0]]
    for column in ("time_s", "voltage_V"):
        if column not in header:
            raise SpecError(
                f"{path}: expected a column {column!r}; the header has {header}",
                path="--data",
            )
    it, iv = header.index("time_s"), header.index("voltage_V")
    try:
        t = np.array([float(r[it]) for r in rows[1:]])
        v = np.array([float(r[iv]) for r in rows[1:]])
    except (ValueError, IndexError) as e:
        raise SpecError(f"{path}: a row is not two numbers ({e})", path="--data") from None
    if t.size < 2 or not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
        raise SpecError(f"{path}: expected at least 2 rows of finite numbers", path="--data")
    if np.any(np.diff(t) <= 0) or t[0] < 0:
        raise SpecError(f"{path}: expected times >= 0, strictly increasing", path="--data")
    if not np.all((v > 0) & (v < 10)):
        bad = float(v[np.argmax(~((v > 0) & (v < 10)))])
        unit = " (millivolts? give volts)" if 100 < abs(bad) < 10_000 else ""
        raise SpecError(
            f"{path}: voltage_V {bad} is outside (0, 10) V{unit}; a cell's voltage in volts",
            path="--data",
        )
    return t, v


def reference_voltage(
    params: spm.SPMParameters | None = None, *, nodes: int = 32, kinetics: str = "linear"
) -> Callable[[Array, Array, Array], Array]:
    """The reference solver's voltage as a function ``(t, deg_i0_a, deg_ds_c) -> V`` for the
    calibration (differentiable through diffrax): the "reference solver in the loop"."""
    params = spm.SPMParameters() if params is None else params

    def voltage(t, deg_i0_a, deg_ds_c):
        return spm.solve_spm(
            params, t, deg_i0_a=deg_i0_a, deg_ds_c=deg_ds_c, nodes=nodes, kinetics=kinetics
        ).voltage

    return voltage


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The posterior samples and their summary.

    Attributes:
        samples: ``{"deg_i0_a", "deg_ds_c"[, "sigma_V"]}`` of shape (chains, draws).
        summary: per parameter: mean, median, sd, the 90 % interval (5th and 95th
            percentiles), R-hat and the effective sample size; and the sampler's figures
            (divergences, acceptance rate, step sizes, wall time).
    """

    samples: dict[str, np.ndarray]
    summary: dict

    def covers(self, truth: dict[str, float]) -> dict[str, bool]:
        """Whether each true value lies in its 90 % interval."""
        return {
            k: self.summary["parameters"][k]["q05"] <= v <= self.summary["parameters"][k]["q95"]
            for k, v in truth.items()
        }


def calibrate(
    voltage_fn: Callable[[Array, Array, Array], Array],
    t: Float[ArrayLike, " n"],
    voltage: Float[ArrayLike, " n"],
    *,
    ranges: dict[str, tuple[float, float]] | None = None,
    noise_V: float | None = None,
    model_error_V: Float[ArrayLike, " n"] | None = None,
    draws: int = 1000,
    warmup: int = 500,
    chains: int = 2,
    seed: int = 0,
) -> Calibration:
    """Sample the posterior of (deg_i0_a, deg_ds_c) given a voltage curve by NUTS.

    Arguments:
        voltage_fn: ``(t, deg_i0_a, deg_ds_c) -> V`` (e.g. `SPMSurrogate.voltage`, or
            `reference_voltage`), a JAX function.
        t, voltage: the measured curve (s, V).
        ranges: the prior's ranges (default: `surrogate.DEGRADATION_RANGES`).
        noise_V: the measurement noise's standard deviation (V); None to infer it.
        model_error_V: the model's own error at each time (V), added to the noise in
            quadrature (a surrogate's error against the reference: without it, a posterior
            as narrow as the noise allows can miss the truth by the surrogate's bias).
        draws, warmup, chains, seed: the sampler's settings (draws per chain after warmup).

    Returns:
        a `Calibration`.
    """
    from .surrogate import DEGRADATION_RANGES, _from_unit

    ranges = {**DEGRADATION_RANGES, **(ranges or {})}
    t = jnp.asarray(t)
    v = jnp.asarray(voltage)
    if t.shape != v.shape or t.ndim != 1:
        raise SpecError(f"expected t and V of one shape, got {t.shape}, {v.shape}", path="t")
    for name, value in (("draws", draws), ("warmup", warmup), ("chains", chains)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise SpecError(f"expected a positive integer, got {value!r}", path=name)
    if noise_V is not None and not (math.isfinite(noise_V) and noise_V > 0):
        raise SpecError(f"expected a noise level > 0 (V), got {noise_V!r}", path="noise_V")
    infer_sigma = noise_V is None
    extra = jnp.zeros_like(v) if model_error_V is None else jnp.asarray(model_error_V, v.dtype)
    if extra.shape != v.shape or not bool(jnp.all(jnp.isfinite(extra) & (extra >= 0))):
        raise SpecError("expected a model error >= 0 at every time", path="model_error_V")
    lo_s, hi_s = (math.log(x) for x in _SIGMA_RANGE)

    def unpack(u):
        q = jnp.tanh(u[:2])
        degs = [_from_unit(q[i], *ranges[n]) for i, n in enumerate(NAMES)]
        if infer_sigma:
            log_sigma = lo_s + (jnp.tanh(u[2]) + 1) / 2 * (hi_s - lo_s)
            sigma = jnp.exp(log_sigma)
        else:
            sigma = jnp.asarray(noise_V, u.dtype)
        return degs, sigma

    def logdensity(u):
        degs, sigma = unpack(u)
        model = voltage_fn(t, degs[0], degs[1])
        variance = sigma**2 + extra**2
        loglik = -0.5 * jnp.sum((model - v) ** 2 / variance + jnp.log(variance))
        # uniform priors on q = tanh(u) (and on log sigma): the Jacobian of tanh
        return loglik + jnp.sum(jnp.log1p(-(jnp.tanh(u) ** 2) + 1e-30))

    import blackjax

    dim = 3 if infer_sigma else 2
    start = time.perf_counter()
    key = jax.random.key(seed)
    k_init, k_warm, k_draw = jax.random.split(key, 3)
    initial = 0.3 * jax.random.normal(k_init, (chains, dim), v.dtype)

    def chain(u0, kw, kd):
        adapt = blackjax.window_adaptation(blackjax.nuts, logdensity)
        (state, parameters), _ = adapt.run(kw, u0, num_steps=warmup)
        kernel = blackjax.nuts(logdensity, **parameters)

        def one(state, k):
            state, info = kernel.step(k, state)
            return state, (state.position, info.is_divergent, info.acceptance_rate)

        _, (positions, divergent, acceptance) = jax.lax.scan(
            one, state, jax.random.split(kd, draws)
        )
        return positions, divergent, acceptance, parameters["step_size"]

    run = jax.jit(jax.vmap(chain))
    positions, divergent, acceptance, step_size = run(
        initial, jax.random.split(k_warm, chains), jax.random.split(k_draw, chains)
    )
    positions.block_until_ready()
    wall = time.perf_counter() - start
    degs, sigma = jax.vmap(jax.vmap(unpack))(positions)
    samples = {NAMES[0]: np.asarray(degs[0]), NAMES[1]: np.asarray(degs[1])}
    if infer_sigma:
        samples["sigma_V"] = np.asarray(sigma)
    summary = {"parameters": {k: _describe(s) for k, s in samples.items()}}
    summary["sampler"] = {
        "algorithm": "NUTS (blackjax), window adaptation, diagonal mass matrix",
        "chains": chains,
        "warmup": warmup,
        "draws": draws,
        "divergences": int(np.asarray(divergent).sum()),
        "acceptance_rate": float(np.asarray(acceptance).mean()),
        "step_size": [float(s) for s in np.asarray(step_size)],
        "noise_V": noise_V,
        "model_error_V": None if model_error_V is None else float(jnp.sqrt(jnp.mean(extra**2))),
        "wall_s": wall,
        "points": int(t.shape[0]),
    }
    return Calibration(samples, summary)


def _describe(samples: np.ndarray) -> dict:
    """Mean, median, sd, 90 % interval, split R-hat and ESS of (chains, draws) samples."""
    import blackjax.diagnostics as diag

    flat = samples.ravel()
    out = {
        "mean": float(flat.mean()),
        "median": float(np.median(flat)),
        "sd": float(flat.std()),
        "q05": float(np.quantile(flat, 0.05)),
        "q95": float(np.quantile(flat, 0.95)),
    }
    if samples.shape[0] >= 2:
        out["r_hat"] = float(diag.potential_scale_reduction(jnp.asarray(samples)))
    out["ess"] = float(diag.effective_sample_size(jnp.asarray(samples)))
    return out


def corner_plot(
    calibration: Calibration, path: str | os.PathLike, truth: dict | None = None
) -> None:
    """A corner plot of the posterior (histograms, and the joint scatter), with the truth."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(calibration.samples)
    n = len(names)
    fig = Figure(figsize=(3.2 * n, 3.2 * n))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, n, squeeze=False)
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            x = calibration.samples[xj].ravel()
            if i == j:
                ax.hist(x, bins=40, color="tab:blue", alpha=0.8)
                s = calibration.summary["parameters"][xj]
                for q in (s["q05"], s["q95"]):
                    ax.axvline(q, color="k", ls="--", lw=0.8)
                if truth and xj in truth:
                    ax.axvline(truth[xj], color="tab:red")
            else:
                y = calibration.samples[yi].ravel()
                ax.plot(x, y, ".", ms=1, alpha=0.3)
                if truth and xj in truth and yi in truth:
                    ax.plot(truth[xj], truth[yi], "*", color="tab:red", ms=12)
            if i == n - 1:
                ax.set_xlabel(xj)
            if j == 0 and i > 0:
                ax.set_ylabel(yi)
    fig.suptitle("posterior (90 % intervals dashed; truth red)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
