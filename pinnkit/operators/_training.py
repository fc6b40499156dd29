"""Training neural operators with the project's trainer, and the Spectral-Refiner fine-tuning.

`pinnkit.train.train` takes any ``objective`` that provides ``terms``, ``dtype``, ``sampler``
(with ``resamples``), ``sample(score=, key=)``, ``score(model, unknowns)``,
``squared(model, unknowns, points)`` and ``reduce(squared, points, causal, causal_weights)``.
Two such adapters live here:

* `OperatorObjective`: the data loss, the batch mean of the space-time relative L2 error
  (`relative_l2`, by Parseval). Its "points" are a minibatch of trajectories, drawn anew every
  step by the trainer's resampling. The data set stays in host memory and the compiled step
  fetches each minibatch through `jax.pure_callback` (a data loader), so a large data set is
  never baked into the compiled program as a constant.
* `RefinementObjective`: the Spectral-Refiner loss, the mean over output times and trajectories of
  ||R(omega)(t)||^2_{H^s} (s = -1), R the exact vorticity residual: the equation library's
  ``navier_stokes`` (vorticity form) with its derivative requests answered by FFT
  (`vorticity_residual`, `SpectralFields`). The model it trains is the SFNO's output layer alone:
  the rest of the trained network is frozen, so its latent output is computed once and held as the
  "points".

`train_operator` and `refine` wrap them into one call each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..core.objective import Term
from ..errors import SpecError
from ..train.trainer import Phase, Record, train
from ._answer import vorticity_residual
from ._models import SFNO, decode
from ._spectral import (
    OutputSpectralLayer,
    float_dtype,
    max_modes,
    relative_l2,
    sobolev_norm,
)


@dataclasses.dataclass(frozen=True)
class _Draws:
    """The trainer asks its objective's sampler whether a new draw gives new points."""

    resamples: bool


class OperatorObjective:
    """The data loss of a neural operator, as an objective of `pinnkit.train.train`.

    One term, ``"data"``: the mean over a minibatch of the relative L2 error in space-time,
    ||G(a) - u|| / ||u||, computed by Parseval (`relative_l2`). As in Li et al. (2021,
    arXiv:2010.08895) the relative error is not squared, so every trajectory counts alike.

    Arguments:
        inputs: (samples, in_steps, n, n), axes (sample, time, x, y).
        targets: (samples, out_steps, n, n).
        batch_size: trajectories per step, drawn without replacement each step (all of them
            when ``batch_size >= samples``: then the points never change).
        dtype: the float dtype of the minibatches (default: JAX's default float).
    """

    def __init__(
        self,
        inputs: Float[ArrayLike, "s tin n n"],
        targets: Float[ArrayLike, "s tout n n"],
        *,
        batch_size: int = 8,
        dtype=None,
    ):
        self.dtype = float_dtype(dtype)
        self.inputs = np.asarray(inputs, self.dtype)
        self.targets = np.asarray(targets, self.dtype)
        if self.inputs.ndim != 4 or self.targets.ndim != 4 or len(self.inputs) != len(self.targets):
            raise SpecError(
                "expected inputs (samples, in_steps, n, n) and targets (samples, out_steps, n, n) "
                f"with as many samples; got {self.inputs.shape} and {self.targets.shape}",
                path="inputs",
            )
        self.batch_size = min(int(batch_size), len(self.inputs))
        self.terms = [Term("data", "data", "data")]
        self.sampler = _Draws(resamples=self.batch_size < len(self.inputs))

    def _fetch(self, index):
        index = np.asarray(index)
        return self.inputs[index], self.targets[index]

    def sample(self, *, score=None, key: PRNGKeyArray) -> dict[str, Array]:
        """A minibatch ``{"inputs", "targets"}`` (every trajectory when the batch is all)."""
        del score
        if not self.sampler.resamples:
            return {"inputs": jnp.asarray(self.inputs), "targets": jnp.asarray(self.targets)}
        index = jax.random.choice(key, len(self.inputs), (self.batch_size,), replace=False)
        shapes = (
            jax.ShapeDtypeStruct((self.batch_size, *self.inputs.shape[1:]), self.dtype),
            jax.ShapeDtypeStruct((self.batch_size, *self.targets.shape[1:]), self.dtype),
        )
        inputs, targets = jax.pure_callback(self._fetch, shapes, index)
        return {"inputs": inputs, "targets": targets}

    def score(self, model, unknowns):
        """No residual-based sampling for a data loss."""
        return None

    def squared(self, model, unknowns, points: Mapping[str, Array]) -> dict[str, Array]:
        """The per-trajectory relative errors (the trainer's per-point values of the term)."""
        return {"data": relative_l2(jax.vmap(model)(points["inputs"]), points["targets"])}

    def reduce(self, squared, points, causal=None, causal_weights=None) -> dict[str, Array]:
        """The batch mean."""
        return {"data": jnp.mean(squared["data"])}


def train_operator(
    model: eqx.Module,
    inputs: Float[ArrayLike, "s tin n n"],
    targets: Float[ArrayLike, "s tout n n"],
    *,
    steps: int,
    batch_size: int = 8,
    optimizer: optax.GradientTransformation | None = None,
    evaluate: Callable[[eqx.Module], dict] | None = None,
    eval_every: int = 100,
    chunk: int = 50,
    checkpoint=None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    log: Callable[[dict], None] | None = None,
    key: PRNGKeyArray,
) -> tuple[eqx.Module, Record]:
    """Train an operator (`SFNO`, `FNO3d`, any ``model(inputs) -> outputs``) on data with
    `pinnkit.train.train` and an `OperatorObjective`.

    Arguments:
        model: the operator, applied to one sample.
        inputs, targets: (samples, in_steps, n, n) and (samples, out_steps, n, n).
        steps: optimizer steps.
        batch_size: trajectories per step.
        optimizer: any optax transformation (default Adam, learning rate 1e-3).
        evaluate: called as ``evaluate(model) -> {name: value}`` every ``eval_every`` steps and
            at the end (e.g. the test error); recorded in ``record.history``.
        eval_every, chunk, checkpoint, checkpoint_every, resume, log: as in
            `pinnkit.train.train` (``resume``: continue from ``checkpoint``).
        key: PRNG key (minibatch order).

    Returns:
        ``(model, record)``; ``record.status`` is ``"diverged"`` after a non-finite loss (the last
        finite model is returned).
    """
    objective = OperatorObjective(inputs, targets, batch_size=batch_size, dtype=_model_dtype(model))
    optimizer = optax.adam(1e-3) if optimizer is None else optimizer
    trained, _, record = train(
        None,
        model,
        phases=[Phase(optimizer, int(steps), "adam")],
        objective=objective,
        unknowns={},
        chunk=chunk,
        eval_every=eval_every,
        evaluate=None if evaluate is None else (lambda m, u: evaluate(m)),
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        log=log,
        key=key,
    )
    return trained, record


def _model_dtype(model) -> np.dtype:
    """The float dtype of a model's parameters."""
    leaves = [x for x in jax.tree.leaves(model) if eqx.is_inexact_array(x)]
    return leaves[0].dtype if leaves else float_dtype(None)


# --------------------------------------------------------------------------------------------
# Spectral refinement
# --------------------------------------------------------------------------------------------


def residual_times(out_steps: int, per_step: int = 2) -> Array:
    """theta_j = j / per_step, j = 0..per_step * out_steps: the trained horizon, finer in time."""
    return np.arange(per_step * out_steps + 1) / per_step


@eqx.filter_jit
def _latents(model: SFNO, inputs: Array) -> Array:
    return jax.vmap(model.latent)(inputs)


def _residual_norms(
    head, latent, last, *, times, time_scale, nu, dt, forcing, s, alpha, length
) -> Array:
    """||R(theta_j)||^2_{H^s} for a batch of latents, shape (b, k) (see `RefinementObjective`)."""

    def one(latent, last):
        omega, d_omega = decode(head, latent, last, times, time_scale=time_scale, derivative=True)
        r = vorticity_residual(omega, d_omega / dt, nu=nu, forcing=forcing, length=length)
        return sobolev_norm(r, s, alpha=alpha, length=length) ** 2

    return jax.vmap(one)(latent, last)


class RefinementObjective:
    """The Spectral-Refiner loss of Cao et al. (2024, arXiv:2405.17211), as an objective of
    `pinnkit.train.train`, for a trained `SFNO` whose output layer is being fine-tuned.

    For each trajectory b and residual time theta_j the prediction is
    omega(theta) = omega_last + w(s) - w(0) (`decode`), its time derivative
    omega_t = (d omega / d theta) / dt exact from the temporal series, and the loss is

        L = mean_{b, j} ||R(omega)(theta_j)||^2_{H^s},
        R = omega_t + u . grad(omega) - nu Laplacian(omega) - f,

    R the library's vorticity equation, exact in space on the doubled grid
    (`vorticity_residual`: `SpectralFields` answers its requests w_t, w_x, psi_y, ...), and the
    norm `sobolev_norm` (s = -1, alpha = 1 by default). No data enter beyond the input
    snapshots: the last one fixes omega at theta = 0, and a trajectory of the equation with that
    initial value has zero loss.

    Arguments:
        model: the trained SFNO (frozen: its latent output is computed here, once).
        inputs: (trajectories, in_steps, n, n), usually at a finer grid than the training one.
        nu: the viscosity.
        dt: the time between snapshots (the physical length of theta = 1).
        forcing: f(x, y), its values on the n x n grid, or None.
        times: the residual times theta (default `residual_times`: twice the output rate).
        s, alpha: the Sobolev order and shift.
        length: the period L.
    """

    def __init__(
        self,
        model: SFNO,
        inputs: Float[ArrayLike, "b tin n n"],
        *,
        nu: float,
        dt: float,
        forcing=None,
        times: Float[ArrayLike, " k"] | None = None,
        s: float = -1.0,
        alpha: float = 1.0,
        length: float = 1.0,
    ):
        if not isinstance(model, SFNO):
            raise SpecError(
                "spectral refinement fine-tunes an SFNO's output layer; got "
                f"{type(model).__name__}",
                path="model",
            )
        self.dtype = model.dtype
        inputs = jnp.asarray(inputs, self.dtype)
        if inputs.ndim == 3:
            inputs = inputs[None]
        self.times = residual_times(model.out_steps) if times is None else np.asarray(times)
        self._settings = dict(
            times=self.times,
            time_scale=model.time_scale,
            nu=nu,
            dt=dt,
            forcing=forcing,
            s=s,
            alpha=alpha,
            length=length,
        )
        latent = _latents(model, inputs)  # the frozen part, once
        self._points = {"latent": latent, "last": inputs[:, -1]}
        self.terms = [Term("residual", "trajectories", "residual")]
        self.sampler = _Draws(resamples=False)

    def sample(self, *, score=None, key=None) -> dict[str, Array]:
        """The frozen latents and last input snapshots (they never change)."""
        return self._points

    def score(self, model, unknowns):
        return None

    def norms(self, head: OutputSpectralLayer, points: Mapping[str, Array]) -> Array:
        """||R(theta_j)||^2_{H^s} per trajectory and time, shape (b, k)."""
        return _residual_norms(head, points["latent"], points["last"], **self._settings)

    def squared(self, model, unknowns, points) -> dict[str, Array]:
        return {"residual": self.norms(model, points)}

    def reduce(self, squared, points, causal=None, causal_weights=None) -> dict[str, Array]:
        return {"residual": jnp.mean(squared["residual"])}


def trajectory_residual(
    model: SFNO,
    inputs: Float[ArrayLike, "b tin n n"],
    *,
    nu: float,
    dt: float,
    forcing=None,
    times: Float[ArrayLike, " k"] | None = None,
    s: float = -1.0,
    alpha: float = 1.0,
    length: float = 1.0,
) -> Float[Array, " b"]:
    """The residual an SFNO's predictions leave, per trajectory:
    (mean_j ||R(theta_j)||^2_{H^s})^(1/2), the square root of the `RefinementObjective` loss
    (same arguments)."""
    objective = RefinementObjective(
        model, inputs, nu=nu, dt=dt, forcing=forcing, times=times, s=s, alpha=alpha, length=length
    )
    points = objective.sample()
    norms = eqx.filter_jit(_residual_norms)(
        model.head, points["latent"], points["last"], **objective._settings
    )
    return jnp.sqrt(jnp.mean(norms, axis=-1))


def refine(
    model: SFNO,
    inputs: Float[ArrayLike, "b tin n n"],
    *,
    nu: float,
    dt: float,
    forcing=None,
    steps: int = 50,
    optimizer: optax.GradientTransformation | None = None,
    modes: tuple[int, int, int] | None = None,
    times: Float[ArrayLike, " k"] | None = None,
    s: float = -1.0,
    alpha: float = 1.0,
    length: float = 1.0,
    evaluate: Callable[[SFNO], dict] | None = None,
    eval_every: int = 10,
    chunk: int = 10,
    checkpoint=None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    log: Callable[[dict], None] | None = None,
    key: PRNGKeyArray,
) -> tuple[SFNO, Record]:
    """Spectral-Refiner fine-tuning (Cao et al. 2024, "Spectral-Refiner: Accurate Fine-Tuning of
    Spatiotemporal Fourier Neural Operator for Turbulent Flows", arXiv:2405.17211).

    The trained model is frozen; its output layer is replaced by one with more modes — by default
    all the modes of the inputs' grid and of the latent time grid (untruncated) — initialised
    from the trained one (`OutputSpectralLayer.extended`: trained modes copied, new ones zero, so
    the refined model starts from exactly the trained model's predictions), and only that layer is
    trained, by `pinnkit.train.train`, to minimise the `RefinementObjective` on the given inputs,
    typically at a finer resolution than the training data. The returned model is the trained
    one with the new output layer; it predicts on grids that hold its modes.

    Where pinnkit differs from Cao et al.: the time derivative is that of the output layer's
    temporal series (theirs takes it from an implicit–explicit solver step), the residual is
    exact on the doubled grid, and the prediction is anchored at the last input snapshot.

    Arguments:
        model: the trained SFNO.
        inputs: (trajectories, in_steps, n, n) or one trajectory (in_steps, n, n).
        nu, dt, forcing, times, s, alpha, length: as in `RefinementObjective`.
        steps: optimizer steps (50 in the paper).
        optimizer: an optax transformation (default: Adam with a linear warm-up over the first
            fifth of the steps to 1e-4, then cosine decay). Adam's first steps move every new
            mode by about the learning rate, so it must be of the size of the correction per
            mode (a constant 1e-3 made the true error worse while the residual fell;
            docs/sfno.md).
        modes: the new layer's (m_x, m_y, m_t) (default: untruncated).
        evaluate: ``evaluate(refined_model) -> {name: value}`` every ``eval_every`` steps (the
            true error against a solver, say); recorded in ``record.history``.
        chunk, checkpoint, checkpoint_every, resume, log: as in `pinnkit.train.train` (the
            checkpoint holds the new output layer's training state).
        key: PRNG key.

    Returns:
        ``(refined_model, record)``.
    """
    objective = RefinementObjective(
        model, inputs, nu=nu, dt=dt, forcing=forcing, times=times, s=s, alpha=alpha, length=length
    )
    n = objective.sample()["last"].shape[-1]
    if modes is None:
        modes = (max_modes(n), max_modes(n), max_modes(model.latent_steps))
    head = model.head.extended(modes)
    if optimizer is None:
        warmup = max(int(steps) // 5, 1)
        optimizer = optax.adam(optax.warmup_cosine_decay_schedule(0.0, 1e-4, warmup, int(steps)))

    def with_head(h):
        return eqx.tree_at(lambda m: m.head, model, h)

    refined, _, record = train(
        None,
        head,
        phases=[Phase(optimizer, int(steps), "refine")],
        objective=objective,
        unknowns={},
        chunk=chunk,
        eval_every=eval_every,
        evaluate=None if evaluate is None else (lambda h, u: evaluate(with_head(h))),
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        log=log,
        key=key,
    )
    return with_head(refined), record
