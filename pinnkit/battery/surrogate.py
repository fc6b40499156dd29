"""A PINN surrogate of the single-particle model over degradation parameters, with the
multi-fidelity hierarchy of Hassanaly et al. (arXiv:2312.17329).

The surrogate maps (t, r, deg_i0_a, deg_ds_c) to the lithium stoichiometry x = c / c_max in
each particle (`pinnkit.reference.spm` has the model). It is trained on the physics alone —
no solution data — with everything non-dimensional:

* inputs: t~ = t / t_max in [0, 1]; r~ = r / R in [0, 1] (each particle on its own unit
  radius); each degradation multiplier as log(deg) mapped onto [-1, 1];
* outputs: ``x(t~, r~) = x0 + t~ s N(t~, r~^2, q)``, so the initial condition holds exactly
  (the hard constraint of the paper) and the symmetry dx/dr = 0 at r = 0 too (the network
  sees r~^2); ``s`` is the scale of the stoichiometry change over the discharge (3 K J
  below), so N is of order one;
* residuals: ``x_t - K (x_rr + 2 x_r / r)`` inside, with ``K = t_max D / R^2``, and the
  surface flux ``x_r + J`` at r~ = 1, with ``J = j R / (D c_max)``, each divided by its scale.

The potentials and the voltage are algebraic in the surface stoichiometries
(`pinnkit.reference.spm.potentials`), so the surrogate evaluates them exactly from its
surface values instead of fitting them with networks as the paper does: the voltage inherits
only the concentration error. The anode's exchange current then enters only through that
algebra, and the anode network is independent of deg_i0_a in practice (it still sees it).

Multi-fidelity hierarchy: level 2 adds a correction network ``t~ eps s N_2`` to the frozen
level 1 and trains it on the same residuals (more points, more steps); ``eps`` (default 0.1)
sizes the correction. `train_surrogate` trains level by level, each by one call of
`pinnkit.train.train` with the earlier levels held fixed in its objective; `SPMSurrogate`
holds the levels and evaluates any prefix of them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from pinnkit.core.objective import Term
from pinnkit.errors import DivergenceError, SpecError
from pinnkit.reference import spm
from pinnkit.train.checkpoint import Checkpointer
from pinnkit.train.trainer import Phase, Record, lbfgs_phase, train

__all__ = [
    "DEGRADATION_RANGES",
    "LevelConfig",
    "SPMSurrogate",
    "evaluate_errors",
    "load",
    "residual_rows",
    "save",
    "train_surrogate",
]

DEGRADATION_RANGES = {"deg_i0_a": (0.5, 4.0), "deg_ds_c": (1.0, 10.0)}
"""The paper's ranges of the degradation multipliers."""


@dataclasses.dataclass(frozen=True)
class _Scales:
    """The non-dimensional groups of one particle (module docstring)."""

    x0: float
    K: float  # t_max D / R^2 at deg = 1
    J: float  # j R / (D c_max) at deg = 1
    s: float  # |3 K J|: the scale of the change of x over the discharge


def _scales(params: spm.SPMParameters) -> tuple[_Scales, _Scales]:
    j_a, j_c = spm.surface_fluxes(params)
    out = []
    for x0, D, R, c_max, j in (
        (params.x0_a, params.diffusivity_a, params.radius_a, params.c_max_a, j_a),
        (params.x0_c, params.diffusivity_c, params.radius_c, params.c_max_c, j_c),
    ):
        K = params.t_max * D / R**2
        J = j * R / (D * c_max)
        out.append(_Scales(x0, K, J, abs(3 * K * J)))
    return out[0], out[1]


def _to_unit(value, lo: float, hi: float):
    """log(value) mapped from [log lo, log hi] onto [-1, 1]."""
    return 2 * (jnp.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo)) - 1


def _from_unit(q, lo: float, hi: float):
    return jnp.exp(math.log(lo) + (q + 1) / 2 * (math.log(hi) - math.log(lo)))


def _mean_rule(n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes on [0, 1] and weights of the sphere's volume mean
    3 int_0^1 f(r) r^2 dr (exact for polynomials in r of degree 2n - 3)."""
    x, w = np.polynomial.legendre.leggauss(n)
    r = (x + 1) / 2
    return r, 3 * r**2 * w / 2


_MEAN_RULE = _mean_rule()


class _Level(eqx.Module):
    """One level: a network per particle, inputs (t~, r~^2, q_i0, q_ds) -> one output."""

    anode: eqx.nn.MLP
    cathode: eqx.nn.MLP
    scale: float = eqx.field(static=True)

    def __call__(self, z: Float[Array, " 4"]) -> Float[Array, " 2"]:
        return jnp.concatenate([self.anode(z), self.cathode(z)])


class SPMSurrogate(eqx.Module):
    """The surrogate: the SPM parameters, the degradation ranges and the trained levels.

    Attributes:
        params: the `SPMParameters` it was trained for.
        levels: the networks of each level, coarsest first.
        ranges: the (lo, hi) of deg_i0_a and deg_ds_c it covers.
        kinetics: the kinetics of the voltage (``"linear"`` or ``"butler_volmer"``).
    """

    params: spm.SPMParameters = eqx.field(static=True)
    levels: tuple[_Level, ...]
    ranges: tuple[tuple[float, float], tuple[float, float]] = eqx.field(static=True)
    kinetics: str = eqx.field(static=True, default="linear")

    def _network(self, root, r, q, n_levels=None):
        """The summed levels' raw output N at (sqrt(t~), r~), shape (2,)."""
        dtype = _dtype(self)
        z = jnp.stack([root, r**2, q[0], q[1]]).astype(dtype)
        total = jnp.zeros(2, dtype)
        for level in self.levels[: n_levels or len(self.levels)]:
            total = total + level.scale * level(z)
        return total

    def _mean(self, root, q, n_levels=None):
        """The volume mean of N over the sphere (Gauss–Legendre in r), shape (2,)."""
        nodes, weights = (jnp.asarray(v, _dtype(self)) for v in _MEAN_RULE)
        values = jax.vmap(lambda rr: self._network(root, rr, q, n_levels))(nodes)
        return weights @ values

    def stoichiometry(
        self, point: Float[Array, " 4"], n_levels: int | None = None
    ) -> Float[Array, " 2"]:
        """(x_a, x_c) at one non-dimensional point (t~, r~, q_i0, q_ds), from the first
        ``n_levels`` levels (all by default):
        ``x = x0 - 3 K J t~ + sqrt(t~) |J| (N(r~) - mean N)``. The deviation from the bulk
        value has zero mean over the sphere, so the lithium content is exactly what the
        applied current leaves (charge balance), whatever the network."""
        a, c = _scales(self.params)
        dtype = _dtype(self)
        t, r, q = point[0], point[1], point[2:]
        root = jnp.sqrt(jnp.maximum(t, 0))
        deviation = self._network(root, r, q, n_levels) - self._mean(root, q, n_levels)
        return _bulk(a, c, t, dtype) + root * _amplitude(a, c, dtype) * deviation

    def _point(self, t, r, deg_i0_a, deg_ds_c):
        (lo_i, hi_i), (lo_d, hi_d) = self.ranges
        return jnp.stack(
            [
                t / self.params.t_max,
                r,
                _to_unit(deg_i0_a, lo_i, hi_i),
                _to_unit(deg_ds_c, lo_d, hi_d),
            ]
        )

    def predict(
        self,
        t: Float[ArrayLike, " times"],
        *,
        deg_i0_a: float | Array = 1.0,
        deg_ds_c: float | Array = 1.0,
        r: Float[ArrayLike, " nodes"] | None = None,
        n_levels: int | None = None,
    ) -> dict[str, Array]:
        """The fields over time for one cell (jit- and vmap-compatible in the multipliers).

        Arguments:
            t: times (s).
            deg_i0_a, deg_ds_c: the degradation multipliers.
            r: radial points on the unit radius (r / R) for the concentration profiles;
                None for the surface only.
            n_levels: how many levels to use (default: all).

        Returns:
            ``c_surface_a``, ``c_surface_c`` (mol/m^3), ``phi_e``, ``phi_c`` and ``voltage``
            (V), each of shape ``(times,)``; with ``r``, also ``c_a`` and ``c_c`` of shape
            ``(times, nodes)``.
        """
        t = jnp.asarray(t, _dtype(self))
        p = self.params

        def at(tt, rr):
            return self.stoichiometry(self._point(tt, rr, deg_i0_a, deg_ds_c), n_levels)

        surface = jax.vmap(lambda tt: at(tt, jnp.ones((), t.dtype)))(t)
        c_a, c_c = surface[:, 0] * p.c_max_a, surface[:, 1] * p.c_max_c
        phi_e, phi_c = spm.potentials(p, c_a, c_c, deg_i0_a=deg_i0_a, kinetics=self.kinetics)
        out = {
            "c_surface_a": c_a,
            "c_surface_c": c_c,
            "phi_e": phi_e,
            "phi_c": phi_c,
            "voltage": phi_c,
        }
        if r is not None:
            r = jnp.asarray(r, t.dtype)
            grid = jax.vmap(lambda tt: jax.vmap(lambda rr: at(tt, rr))(r))(t)
            out["c_a"] = grid[..., 0] * p.c_max_a
            out["c_c"] = grid[..., 1] * p.c_max_c
        return out

    def voltage(self, t, deg_i0_a, deg_ds_c, n_levels: int | None = None) -> Array:
        """The cell voltage (V) at times ``t`` (s): a pure function of the multipliers, for
        calibration."""
        return self.predict(t, deg_i0_a=deg_i0_a, deg_ds_c=deg_ds_c, n_levels=n_levels)["voltage"]


def _bulk(a: _Scales, c: _Scales, t, dtype):
    """x0 - 3 K J t~: the mean stoichiometry under the constant current (exact)."""
    return jnp.array([a.x0, c.x0], dtype) - t * jnp.array([3 * a.K * a.J, 3 * c.K * c.J], dtype)


def _amplitude(a: _Scales, c: _Scales, dtype):
    return jnp.abs(jnp.array([a.J, c.J], dtype))


def _dtype(model: SPMSurrogate):
    return model.levels[0].anode.layers[0].weight.dtype


# --------------------------------------------------------------------------------------------
# The physics loss
# --------------------------------------------------------------------------------------------


def residual_rows(model: SPMSurrogate, interior: Array, surface: Array) -> tuple[Array, Array]:
    """The scaled residual rows: the diffusion equation on interior points and the surface
    flux on surface points, each (n, 2) for (anode, cathode); points (n, 4) non-dimensional
    (t~, r~, q_i0, q_ds)."""
    a, c = _scales(model.params)
    (lo_d, hi_d) = model.ranges[1]
    dtype = _dtype(model)
    amplitude = _amplitude(a, c, dtype)

    # x = bulk(t) + sqrt(t) A (N(sqrt t, r) - M(sqrt t)): the r-derivatives involve N only,
    # so the mean's quadrature is differentiated in t alone
    def interior_rows(z):
        t, r, q = z[0], z[1], z[2:]
        root = jnp.sqrt(t)
        N = lambda s, rr: model._network(s, rr, q)
        n, n_s = jax.jvp(lambda s: N(s, r), (root,), (jnp.ones_like(root),))
        n_r_fn = lambda rr: jax.jvp(lambda y: N(root, y), (rr,), (jnp.ones_like(rr),))[1]
        n_r, n_rr = jax.jvp(n_r_fn, (r,), (jnp.ones_like(r),))
        m, m_s = jax.jvp(lambda s: model._mean(s, q), (root,), (jnp.ones_like(root),))
        # d/dt [sqrt(t) (n - m)] = (n - m) / (2 sqrt t) + (n_s - m_s) / 2
        bulk_t = -jnp.array([3 * a.K * a.J, 3 * c.K * c.J], dtype)
        x_t = bulk_t + amplitude * ((n - m) / (2 * root) + (n_s - m_s) / 2)
        x_r = root * amplitude * n_r
        x_rr = root * amplitude * n_rr
        deg = _from_unit(z[3], lo_d, hi_d)
        K = jnp.stack([a.K, c.K * deg])
        residual = x_t - K * (x_rr + 2 * x_r / r)
        # weighted by sqrt(t~): the flux switched on at t = 0 leaves a boundary layer of width
        # sqrt(K t) whose x_t ~ 1 / sqrt(t) no smooth network resolves; unweighted, it
        # dominates the loss (the charge balance above keeps its error from accumulating)
        return root * residual / jnp.array([a.s, c.s], dtype)

    def surface_rows(z):
        t, r, q = z[0], z[1], z[2:]
        root = jnp.sqrt(t)
        _, n_r = jax.jvp(lambda y: model._network(root, y, q), (r,), (jnp.ones_like(r),))
        deg = _from_unit(z[3], lo_d, hi_d)
        J = jnp.stack([a.J, c.J / deg])
        return root * (root * amplitude * n_r + J) / amplitude  # sqrt(t~)-weighted as above

    return jax.vmap(interior_rows)(interior), jax.vmap(surface_rows)(surface)


def _sample(key, n: int, dtype, *, surface: bool) -> Array:
    """Random points (t~, r~, q_i0, q_ds): sqrt(t~) uniform in [0.01, 1] (the network's time
    input; early times, where the diffusion layer is thin, get more points), r~ uniform in
    [0.01, 1] (or 1 on the surface), q uniform in [-1, 1]^2."""
    k1, k2, k3 = jax.random.split(key, 3)
    t = jax.random.uniform(k1, (n,), dtype, 1e-2, 1.0) ** 2  # uniform in sqrt(t~)
    r = jnp.ones((n,), dtype) if surface else jax.random.uniform(k2, (n,), dtype, 0.01, 1.0)
    q = jax.random.uniform(k3, (n, 2), dtype, -1.0, 1.0)
    return jnp.column_stack([t, r, q])


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LevelConfig:
    """How to train one level.

    Attributes:
        width, depth: the MLPs (tanh).
        adam_steps: Adam steps (cosine-decayed rate from ``lr``), fresh points every step.
        lbfgs_steps: L-BFGS steps after Adam, on one fixed draw of points.
        points: interior points per step (and a quarter as many surface points).
        lr: Adam's initial rate.
        scale: the level's output scale (level 1: 1; a correction: about the error left).
    """

    width: int = 32
    depth: int = 3
    adam_steps: int = 3000
    lbfgs_steps: int = 500
    points: int = 1024
    lr: float = 1e-3
    scale: float = 1.0

    def __post_init__(self):
        for name in ("width", "depth", "points"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise SpecError(f"expected a positive integer, got {v!r}", path=name)
        for name in ("adam_steps", "lbfgs_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise SpecError(f"expected an integer >= 0, got {v!r}", path=name)
        for name in ("lr", "scale"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise SpecError(f"expected a number > 0, got {v!r}", path=name)


def _new_level(cfg: LevelConfig, dtype, key) -> _Level:
    ka, kc = jax.random.split(key)
    make = lambda k: eqx.nn.MLP(4, 1, cfg.width, cfg.depth, jnp.tanh, key=k, dtype=dtype)

    def zero_last(m):  # every level starts at zero output: a correction starts as no change
        last = m.layers[-1]
        return eqx.tree_at(
            lambda n: (n.layers[-1].weight, n.layers[-1].bias),
            m,
            (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
        )

    return _Level(zero_last(make(ka)), zero_last(make(kc)), float(cfg.scale))


class _Draws(NamedTuple):
    """What the trainer asks of an objective's sampler: whether a new draw gives new points."""

    resamples: bool


_TERMS = ("pde_a", "pde_c", "flux_a", "flux_c")


class _LevelObjective:
    """The physics loss of the level being trained, as an objective of `pinnkit.train.train`.

    The model the trainer moves is the new `_Level` alone; the surrogate's parameters, ranges,
    kinetics and the frozen earlier levels are held here, so nothing the trainer updates can
    reach them. The terms are the mean squared scaled residuals (`residual_rows`) of each
    particle's diffusion equation on interior points and surface flux on surface points; the
    points (``points`` interior, a quarter as many on the surface, `_sample`) are drawn anew
    every Adam step (L-BFGS phases keep the last draw: the trainer's rule for line searches).
    """

    def __init__(self, frozen: SPMSurrogate, cfg: LevelConfig, dtype):
        self.frozen = frozen
        self.dtype = jnp.dtype(dtype)
        self.n_interior = int(cfg.points)
        self.n_surface = max(int(cfg.points) // 4, 1)
        self.terms = [
            Term(name, "surface" if name.startswith("flux") else "interior", "residual")
            for name in _TERMS
        ]
        self.sampler = _Draws(resamples=True)

    def surrogate(self, level: _Level) -> SPMSurrogate:
        """The frozen levels with ``level`` on top."""
        f = self.frozen
        return SPMSurrogate(f.params, (*f.levels, level), f.ranges, f.kinetics)

    def sample(self, *, score=None, key: PRNGKeyArray) -> dict[str, Array]:
        del score
        k1, k2 = jax.random.split(key)
        return {
            "interior": _sample(k1, self.n_interior, self.dtype, surface=False),
            "surface": _sample(k2, self.n_surface, self.dtype, surface=True),
        }

    def score(self, model, unknowns):
        """No residual-based sampling."""
        return None

    def squared(self, model: _Level, unknowns, points) -> dict[str, Array]:
        pde, flux = residual_rows(self.surrogate(model), points["interior"], points["surface"])
        return {
            "pde_a": pde[:, 0] ** 2,
            "pde_c": pde[:, 1] ** 2,
            "flux_a": flux[:, 0] ** 2,
            "flux_c": flux[:, 1] ** 2,
        }

    def reduce(self, squared, points, causal=None, causal_weights=None) -> dict[str, Array]:
        return {name: jnp.mean(squared[name]) for name in _TERMS}


def train_surrogate(
    params: spm.SPMParameters | None = None,
    levels: Sequence[LevelConfig] = (LevelConfig(), LevelConfig(scale=0.1, points=2048)),
    *,
    ranges: dict[str, tuple[float, float]] | None = None,
    kinetics: str = "linear",
    dtype=jnp.float32,
    key: PRNGKeyArray | None = None,
    callback: Callable[[int, int, float], None] | None = None,
    log_every: int = 100,
    start: SPMSurrogate | None = None,
    on_level: Callable[[SPMSurrogate, dict], None] | None = None,
    checkpoint: Callable[[int], Checkpointer | None] | None = None,
    checkpoint_every: int = 1000,
) -> tuple[SPMSurrogate, list[dict]]:
    """Train the surrogate level by level on the physics residuals.

    Arguments:
        params: the SPM parameters (default: the simple set).
        levels: one `LevelConfig` per level; each later level is a correction trained on top
            of the frozen earlier ones.
        ranges: the degradation ranges (default `DEGRADATION_RANGES`).
        kinetics: the kinetics of the voltage.
        dtype: float32 (default) or float64 (call under ``jax.enable_x64``).
        key: the PRNG key (default ``jax.random.key(0)``).
        callback: ``callback(level, step, loss)`` every ``log_every`` steps.
        log_every: steps per compiled chunk.
        start: a surrogate whose levels are kept (frozen) and counted as the first ones of
            ``levels`` (to continue an interrupted hierarchy).
        on_level: called as ``on_level(model, record)`` after each level is trained.
        checkpoint: ``checkpoint(level) -> Checkpointer`` (level from 1): where the trainer
            keeps the state of the level in progress (every ``checkpoint_every`` steps, on
            Ctrl-C, and the last finite state on divergence); a level whose checkpoint is
            there continues from it.
        checkpoint_every: steps between those checkpoints.

    Returns:
        (the surrogate, per level a record: steps, final loss terms, wall time).
    """
    params = spm.SPMParameters() if params is None else params
    ranges = dict(DEGRADATION_RANGES if ranges is None else ranges)
    unknown = set(ranges) - set(DEGRADATION_RANGES)
    if unknown:
        raise SpecError(f"unknown degradation parameters {sorted(unknown)}", path="ranges")
    ranges = {**DEGRADATION_RANGES, **ranges}
    for name, (lo, hi) in ranges.items():
        if not (0 < lo < hi and math.isfinite(hi)):
            raise SpecError(f"expected 0 < lo < hi, got ({lo}, {hi})", path=f"ranges.{name}")
    spm._check_kinetics(kinetics)
    if not levels:
        raise SpecError("expected at least one level", path="levels")
    key = jax.random.key(0) if key is None else key
    model = SPMSurrogate(
        params,
        (),
        (tuple(ranges["deg_i0_a"]), tuple(ranges["deg_ds_c"])),
        kinetics,
    )
    if start is not None:
        if len(start.levels) > len(levels):
            raise SpecError(
                f"the start has {len(start.levels)} levels, more than {len(levels)}", "start"
            )
        model = SPMSurrogate(params, start.levels, model.ranges, kinetics)
    records = []
    for index, cfg in enumerate(levels):
        key, k_init, k_train = jax.random.split(key, 3)
        if index < len(model.levels):
            continue
        began = time.perf_counter()
        level = _new_level(cfg, dtype, k_init)
        model = SPMSurrogate(params, (*model.levels, level), model.ranges, kinetics)
        store = None if checkpoint is None else checkpoint(index + 1)
        model, terms, record = _train_level(
            model, cfg, dtype, k_train, index, callback, log_every, store, checkpoint_every
        )
        records.append(
            {
                "level": index + 1,
                "adam_steps": cfg.adam_steps,
                "lbfgs_steps": cfg.lbfgs_steps,
                "loss": {k: float(v) for k, v in terms.items()},
                "wall_s": time.perf_counter() - began,
                "compile_s": record.compile_s,
                "steps_per_s": record.steps_per_s if record.steps_timed else None,
            }
        )
        if on_level is not None:
            on_level(model, records[-1])
    return model, records


def _train_level(model, cfg, dtype, key, index, callback, log_every, store, checkpoint_every):
    """Train the last level of ``model`` (the others frozen) with `pinnkit.train.train`: Adam
    (cosine-decayed rate, fresh points each step), then L-BFGS (fixed points). Returns the
    surrogate, the loss terms on a fresh draw of points and the trainer's `Record`."""
    objective = _LevelObjective(
        SPMSurrogate(model.params, model.levels[:-1], model.ranges, model.kinetics), cfg, dtype
    )
    schedule = optax.cosine_decay_schedule(cfg.lr, max(cfg.adam_steps, 1), alpha=0.01)
    phases = [
        phase
        for phase in (
            Phase(optax.adam(schedule), cfg.adam_steps, "adam"),
            lbfgs_phase(cfg.lbfgs_steps, memory_size=10),
        )
        if phase.steps > 0
    ]
    k_train, k_loss = jax.random.split(key)
    level, record = model.levels[-1], Record()
    if phases:
        level, _, record = train(
            None,
            level,
            phases=phases,
            objective=objective,
            unknowns={},
            chunk=log_every,
            log=None if callback is None else (lambda e: callback(index + 1, e["step"], e["loss"])),
            checkpoint=store,
            checkpoint_every=checkpoint_every,
            resume=store is not None and store.exists(),
            key=k_train,
        )
    if record.status == "diverged":
        raise DivergenceError(
            f"level {index + 1}: non-finite loss after step {record.steps} of "
            f"{cfg.adam_steps + cfg.lbfgs_steps}; try a smaller lr (train.levels.{index}.lr) or "
            "float64 (train.dtype: float64)"
        )
    if record.status == "interrupted":
        raise KeyboardInterrupt
    points = objective.sample(key=k_loss)
    terms = objective.reduce(objective.squared(level, {}, points), points)
    return objective.surrogate(level), terms, record


# --------------------------------------------------------------------------------------------
# Errors against the reference solver
# --------------------------------------------------------------------------------------------


def evaluate_errors(
    model: SPMSurrogate,
    *,
    grid: int = 3,
    times: int = 136,
    nodes: int = 64,
    n_levels: int | None = None,
    reference: spm.SPMSolution | None = None,
) -> dict:
    """The surrogate against `pinnkit.reference.spm.solve_spm` on a grid of parameter values.

    The grid is ``grid`` log-spaced values of each multiplier across the surrogate's ranges
    (3 x 3 by default: the corners, the edge midpoints and the centre); the times are
    ``times`` equally spaced in [0, t_max]; the concentration profiles are compared at the
    reference's shell centres.

    Returns:
        ``{"fields": {name: mean absolute relative error}, "voltage_mV": {"max", "mean"},
        "per_cell": [{deg_i0_a, deg_ds_c, voltage_max_mV}], "grid": [...]}``, for the first
        ``n_levels`` levels.
    """
    (lo_i, hi_i), (lo_d, hi_d) = model.ranges
    gi = np.geomspace(lo_i, hi_i, grid)
    gd = np.geomspace(lo_d, hi_d, grid)
    A, D = np.meshgrid(gi, gd, indexing="ij")
    t = np.linspace(0.0, model.params.t_max, times)
    if reference is None:
        reference = spm.solve_spm(
            model.params, t, deg_i0_a=A, deg_ds_c=D, nodes=nodes, kinetics=model.kinetics
        )
    r_unit = np.asarray(reference.r_a) / model.params.radius_a
    predict = jax.jit(
        jax.vmap(
            jax.vmap(
                lambda a, d: model.predict(t, deg_i0_a=a, deg_ds_c=d, r=r_unit, n_levels=n_levels)
            )
        )
    )
    pred = jax.tree.map(np.asarray, predict(jnp.asarray(A), jnp.asarray(D)))
    ref = {
        "c_a": reference.c_a,
        "c_c": reference.c_c,
        "phi_e": reference.phi_e,
        "phi_c": reference.phi_c,
    }
    fields = {}
    for name, value in ref.items():
        value = np.asarray(value)
        fields[name] = float(np.mean(np.abs(pred[name] - value) / np.abs(value)))
    dv = np.abs(pred["voltage"] - np.asarray(reference.voltage)) * 1e3
    return {
        "fields": fields,
        "voltage_mV": {"max": float(dv.max()), "mean": float(dv.mean())},
        "per_cell": [
            {"deg_i0_a": float(a), "deg_ds_c": float(d), "voltage_max_mV": float(e)}
            for a, d, e in zip(A.ravel(), D.ravel(), dv.max(-1).ravel(), strict=True)
        ],
        "grid": {"deg_i0_a": gi.tolist(), "deg_ds_c": gd.tolist(), "times": times},
    }


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def save(model: SPMSurrogate, configs: Sequence[LevelConfig], directory: str | os.PathLike) -> None:
    """Write ``surrogate.json`` (parameters, ranges, kinetics, level configs, dtype) and
    ``surrogate.eqx`` (the weights) into ``directory``; `load` reads them back."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "params": dataclasses.asdict(model.params),
        "ranges": [list(r) for r in model.ranges],
        "kinetics": model.kinetics,
        "levels": [dataclasses.asdict(c) for c in configs[: len(model.levels)]],
        "dtype": str(_dtype(model)),
    }
    (directory / "surrogate.json").write_text(json.dumps(meta, indent=2) + "\n")
    with open(directory / "surrogate.eqx", "wb") as f:
        eqx.tree_serialise_leaves(f, model)


def load(directory: str | os.PathLike) -> tuple[SPMSurrogate, list[LevelConfig]]:
    """The surrogate `save` wrote, and its level configs."""
    directory = pathlib.Path(directory)
    path = directory / "surrogate.json"
    if not path.is_file() or not (directory / "surrogate.eqx").is_file():
        raise SpecError(
            f"{str(directory)!r} holds no surrogate (surrogate.json and surrogate.eqx); train "
            "one with `pinnkit solve problems/spm_surrogate.yaml`",
            path="surrogate",
        )
    meta = json.loads(path.read_text())
    params = spm.SPMParameters(**meta["params"])
    configs = [LevelConfig(**c) for c in meta["levels"]]
    dtype = jnp.dtype(meta["dtype"])
    key = jax.random.key(0)
    template = SPMSurrogate(
        params,
        tuple(_new_level(c, dtype, key) for c in configs),
        tuple(tuple(r) for r in meta["ranges"]),
        meta["kinetics"],
    )
    with open(directory / "surrogate.eqx", "rb") as f:
        return eqx.tree_deserialise_leaves(f, template), configs
