"""The one trainer: optimizer phases, a compiled step run in `lax.scan` chunks, logging,
evaluation, checkpoints, divergence and interrupt handling.

What a step does is the phase's step object (`pinnkit.train.steps`: optax, line search,
Gauss–Newton, variable projection); the trainer only runs it.

Every backend trains here. The trainable state is ``(model, unknowns)`` split by
`eqx.partition` into arrays the optimizer moves and everything else. Each phase (Adam, then
L-BFGS, ...) compiles one step function and runs it ``chunk`` steps at a time inside
`lax.scan`; Python only runs between chunks to log, evaluate against the reference,
checkpoint and look for a non-finite loss or a signal. Steps past the end of a phase inside
the last chunk are masked, so every chunk of a phase has one shape and the step compiles once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..backends import trainable_filter
from ..core.objective import Objective
from ..core.problem import Problem
from ..errors import SpecError
from .checkpoint import Checkpointer
from .signals import Signals
from .steps import LossFunctions, Phase, lbfgs_phase, phase_steps
from .weighting import AbstractWeighting, Causal, Fixed

__all__ = ["Phase", "Record", "TrainState", "lbfgs_phase", "split_key", "train"]


class TrainState(eqx.Module):
    params: object
    opt_state: object
    points: dict
    weights: dict
    key: jax.Array  # raw key data (uint32), see `split_key`
    step: jax.Array


@dataclasses.dataclass
class Record:
    """What happened: status, history and timings."""

    status: str = "ok"
    steps: int = 0
    wall_s: float = 0.0
    compile_s: float = 0.0
    train_s: float = 0.0
    history: list = dataclasses.field(default_factory=list)
    message: str = ""
    steps_timed: int = 0
    traces: dict = dataclasses.field(default_factory=dict)

    @property
    def steps_per_s(self) -> float:
        """Training steps per second, compilation excluded."""
        return self.steps_timed / self.train_s if self.train_s > 0 else float("nan")


def _points_sharding(n_devices: int | None):
    devices = jax.local_devices()
    if n_devices is not None:
        devices = devices[:n_devices]
    if len(devices) <= 1:
        return None, None
    mesh = Mesh(np.array(devices), ("points",))
    return NamedSharding(mesh, P("points")), NamedSharding(mesh, P())


class _Layout:
    """Where the state lives: collocation points sharded over devices, everything else
    replicated, inside and outside jit alike, so a chunk's output state has the layout of its
    input (no second trace)."""

    def __init__(self, n_devices: int | None):
        self.points, self.replicated = _points_sharding(n_devices)

    def place(self, state, constrain=False):
        if self.points is None:
            return state
        put = jax.lax.with_sharding_constraint if constrain else jax.device_put
        arrays, rest = eqx.partition(state, eqx.is_array)
        arrays = put(arrays, self.replicated)
        arrays = eqx.tree_at(lambda s: s.points, arrays, put(arrays.points, self.points))
        return eqx.combine(arrays, rest)

    def constrain(self, points):
        if self.points is None:
            return points
        return {k: jax.lax.with_sharding_constraint(v, self.points) for k, v in points.items()}


def split_key(data):
    """A new key and a subkey from raw key data; the state holds raw data because typed PRNG
    keys cannot be serialised in checkpoints."""
    new, sub = jax.random.split(jax.random.wrap_key_data(data))
    return jax.random.key_data(new), sub


class _Program:
    """The compiled pieces of a run: one chunk function per phase (a `lax.scan` of the phase's
    step with resampling and reweighting around it), the point draws and the term report."""

    def __init__(self, loss: LossFunctions, weighting, resample_every, layout: _Layout):
        self.loss, self.weighting, self.layout = loss, weighting, layout
        self.resample_every = resample_every
        self.report = eqx.filter_jit(self._report)

    def draw(self, p, key):
        m, u = self.loss.combine(p)
        objective = self.loss.objective
        return self.layout.constrain(objective.sample(score=objective.score(m, u), key=key))

    def init_state(self, phase: Phase, p, points, weights, key, step) -> TrainState:
        opt_state = phase.step.init(self.loss, p)
        state = TrainState(p, opt_state, points, weights, key, jnp.asarray(step))
        # Strong dtypes: a weakly typed leaf (a Python scalar in an optimizer state) comes out
        # of the first chunk strongly typed, which would trace the step a second time.
        strong = jax.tree.map(
            lambda x: jnp.asarray(x, dtype=x.dtype) if eqx.is_array(x) else x, state
        )
        return self.layout.place(strong)

    def _report(self, state: TrainState):
        terms = self.loss.terms(state.params, state.points)
        return terms, sum(state.weights[k] * v for k, v in terms.items())

    def _refresh(self, state: TrainState, k_draw):
        """The points and weights a step of a phase that may move them uses."""
        points, weights = state.points, state.weights
        if self.resample_every > 0 and self.loss.objective.sampler.resamples:
            points = jax.lax.cond(
                state.step % self.resample_every == 0,
                lambda: self.draw(state.params, k_draw),
                lambda: points,
            )
        if self.weighting.every > 0:

            def reweight():
                grads = jax.jacrev(lambda p: self.loss.terms(p, points))(state.params)
                new = self.weighting.update(grads, weights)
                # Keep the state's dtypes even where float64 is on for the process.
                return {k: jnp.asarray(v, weights[k].dtype) for k, v in new.items()}

            weights = jax.lax.cond(
                state.step % self.weighting.every == 0, reweight, lambda: weights
            )
        return points, weights

    def chunk(self, phase: Phase, length: int):
        """``run(state, end) -> (state, losses)``: ``length`` steps of the phase ending at
        ``end``; steps at or past ``end``, or after the step says to terminate, leave the state
        as it is (loss NaN), so every chunk of a phase has one shape."""
        stepper = phase.step

        def one(state: TrainState, end):
            key, k_draw = split_key(state.key)
            points, weights = state.points, state.weights
            if not stepper.fixed_objective:
                points, weights = self._refresh(state, k_draw)
            first = state.step == end - phase.steps
            params, opt_state, value = stepper.step(
                self.loss, state.params, state.opt_state, points, weights, first
            )
            return TrainState(params, opt_state, points, weights, key, state.step + 1), value

        def idle(state: TrainState, end):
            # a terminated step still counts; one past the phase's end does not
            moved = (state.step < end).astype(state.step.dtype)
            nan = jnp.asarray(jnp.nan, self.loss.objective.dtype)
            return eqx.tree_at(lambda s: s.step, state, state.step + moved), nan

        def step(state: TrainState, end):
            go = (state.step < end) & ~stepper.terminate(self.loss, state.params, state.opt_state)
            new, value = jax.lax.cond(go, one, idle, state, end)
            return new, jnp.where(go, value.astype(self.loss.objective.dtype), jnp.nan)

        @eqx.filter_jit
        @eqx.debug.assert_max_traces(max_traces=1)  # the step compiles once per phase
        def run(state: TrainState, end):
            state, losses = jax.lax.scan(lambda s, _: step(s, end), state, None, length=length)
            return self.layout.place(state, constrain=True), losses

        return run


class _Clock:
    """Wall time split into compilation (the first chunk of each phase, less its steps at the
    measured step rate) and training."""

    def __init__(self):
        self.start = time.perf_counter()
        self.compile_s = self.train_s = 0.0
        self.steps = 0
        self.first: tuple[float, int] | None = None

    def chunk(self, dt: float, done: int, first_of_phase: bool):
        if first_of_phase and self.first is None:
            self.first = (dt, done)  # includes compilation; split out in `close`
        elif first_of_phase:
            self.compile_s += dt  # a later phase's compile, charged whole
        else:
            self.train_s += dt
            self.steps += done

    def close(self, record: Record):
        if self.first is not None:
            dt, done = self.first
            per_step = self.train_s / self.steps if self.steps else 0.0
            compile_s = max(0.0, dt - per_step * done)
            self.compile_s += compile_s
            self.train_s += dt - compile_s
            self.steps += done
        record.compile_s, record.train_s, record.steps_timed = (
            self.compile_s,
            self.train_s,
            self.steps,
        )
        record.wall_s = time.perf_counter() - self.start

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _diverged(losses, state) -> bool:
    ran = losses[~np.isnan(losses)]
    finite = np.all(np.isfinite(ran))
    return not (finite and all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.params)))


def train(
    problem: Problem | None,
    model,
    *,
    phases: Sequence[Phase],
    objective: Objective | None = None,
    weighting: AbstractWeighting | None = None,
    causal: Causal | None = None,
    resample_every: int = 1,
    unknowns: Mapping[str, float] | None = None,
    chunk: int = 100,
    eval_every: int = 500,
    evaluate: Callable[[object, dict], dict] | None = None,
    checkpoint: Checkpointer | None = None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    log: Callable[[dict], None] | None = None,
    monitor: Callable[[object, dict], dict] | None = None,
    devices: int | None = None,
    key: jax.Array,
):
    """Train a model on a problem.

    Arguments:
        problem: the problem (None when ``objective`` is given and ``unknowns`` says them).
        model: an `AbstractModel` (or any pytree the objective can evaluate).
        phases: `Phase` objects run one after another, each with its optimizer step
            (`pinnkit.train.steps`).
        objective: the loss terms (default: built from the problem with default points).
        weighting: loss weighting strategy (default `Fixed`).
        causal: causal temporal weighting of residual terms (opt-in).
        resample_every: draw new collocation points every this many steps (0: never).
        unknowns: trainable scalars and their initial values (default: the problem's).
        chunk: steps per compiled `lax.scan` call; logging happens between chunks.
        eval_every: steps between evaluations (``evaluate(model, unknowns) -> metrics``).
        checkpoint: where to save; saved every ``checkpoint_every`` steps, at the end, on
            interrupt, and (the last finite state) on divergence.
        resume: continue from ``checkpoint``.
        log: called with a dict after each chunk (step, loss, terms, metrics).
        monitor: ``monitor(model, unknowns) -> dict``, merged into every log entry (what a
            caller wants to see of the state after each chunk).
        devices: number of local devices to shard the collocation points over (default all).
        key: PRNG key.

    Returns:
        ``(model, unknowns, record)``: the trained model and unknowns and a `Record`.
    """
    clock, record = _Clock(), Record()
    objective = objective if objective is not None else Objective(problem)
    unknowns = dict(problem.unknowns if unknowns is None else unknowns)
    unknowns = jax.tree.map(lambda v: jnp.asarray(v, objective.dtype), unknowns)
    params, static = eqx.partition((model, unknowns), (trainable_filter(model), True))
    loss = LossFunctions(objective, static, model, unknowns, causal)
    program = _Program(loss, weighting or Fixed(), resample_every, _Layout(devices))
    bounds = phase_steps(phases)
    total_steps = int(bounds[-1])
    state, phase_index = _start(program, phases, params, objective, checkpoint, resume, key)

    def save(st, ph, status):
        if checkpoint is not None:
            meta = {"step": int(st.step), "phase": ph, "status": status}
            checkpoint.save(st, {**meta, "total_steps": total_steps})

    signals = Signals()
    last_finite, last_eval = (state, phase_index), -1
    with signals.installed():
        for index in range(phase_index, len(phases)):
            phase, end = phases[index], int(bounds[index + 1])
            step_now = int(state.step)
            if step_now >= end:
                continue
            if index != phase_index:
                state = program.init_state(
                    phase, state.params, state.points, state.weights, state.key, step_now
                )
                phase_index = index
            run = program.chunk(phase, max(1, min(chunk, end - int(bounds[index]))))
            first = True
            while step_now < end:
                t0 = time.perf_counter()
                new_state, losses = run(state, jnp.asarray(end))
                losses = np.asarray(losses)
                done = int(new_state.step) - step_now
                clock.chunk(time.perf_counter() - t0, done, first)
                first = False
                if _diverged(losses, new_state):
                    state, ph = last_finite
                    record.status = "diverged"
                    record.message = (
                        f"non-finite loss in steps {step_now}..{step_now + done} (phase "
                        f"{phase.name}); kept the last finite state, from step "
                        f"{int(state.step)}. Try a smaller learning rate "
                        "(train.optimizer.lr), float64 (train.dtype: float64), or smaller loss "
                        "weights."
                    )
                    save(state, ph, "diverged")
                    break
                state, step_now = new_state, int(new_state.step)
                last_finite = (state, index)
                entry = _entry(program, state, phase, clock)
                if evaluate is not None and (
                    step_now - last_eval >= eval_every or step_now == total_steps
                ):
                    entry["errors"] = evaluate(*loss.combine(state.params))
                    last_eval = step_now
                if monitor is not None:
                    entry.update(monitor(*loss.combine(state.params)))
                record.history.append(entry)
                if log is not None:
                    log(entry)
                if signals.caught is not None:
                    record.status = "interrupted"
                    record.message = f"interrupted at step {step_now}; continue with --resume"
                    save(state, index, "interrupted")
                    break
                if step_now // checkpoint_every != (step_now - done) // checkpoint_every:
                    save(state, index, "running")
            record.traces[f"{index}:{phase.name}"] = eqx.debug.get_num_traces(run)
            if record.status != "ok":
                break
        record.steps = int(state.step)
        if record.status == "ok":
            save(state, phase_index, "ok")
    clock.close(record)
    trained_model, trained_unknowns = loss.combine(state.params)
    return trained_model, trained_unknowns, record


def _start(program: _Program, phases, params, objective, checkpoint, resume, key):
    """``(state, phase index)``: a fresh state for the first phase, or the checkpoint's."""
    key, k_points = jax.random.split(key)
    key = jax.random.key_data(key)
    weights = {t.name: jnp.asarray(t.weight, objective.dtype) for t in objective.terms}
    state = program.init_state(phases[0], params, program.draw(params, k_points), weights, key, 0)
    if not (resume and checkpoint is not None and checkpoint.exists()):
        return state, 0
    index = min(int(checkpoint.meta()["phase"]), len(phases) - 1)
    template = program.init_state(phases[index], params, state.points, weights, key, 0)
    try:
        state, _ = checkpoint.load(template)
    except Exception as e:  # a structure mismatch: the spec changed what is trained
        raise SpecError(
            f"the checkpoint in {checkpoint.directory} does not fit this spec's model and "
            f"optimizer phases ({type(e).__name__}); resume with the spec the run was made "
            "with (only train.steps may change)",
            path="--resume",
        ) from None
    return program.layout.place(state), index


def _entry(program: _Program, state: TrainState, phase: Phase, clock: _Clock) -> dict:
    """The log entry after a chunk: step, phase, loss and its terms, weights, unknowns."""
    terms, total = program.report(state)
    entry = {
        "step": int(state.step),
        "phase": phase.name,
        "loss": float(total),
        "terms": {k: float(v) for k, v in terms.items()},
        "weights": {k: float(v) for k, v in state.weights.items()},
        "time_s": clock.elapsed(),
    }
    _, u_now = program.loss.combine(state.params)
    if u_now:
        entry["unknowns"] = {k: float(v) for k, v in u_now.items() if not isinstance(v, dict)}
    return entry
