"""The one trainer: optimizer phases, a compiled step run in `lax.scan` chunks, logging,
evaluation, checkpoints, divergence and interrupt handling.

Every backend trains here. The trainable state is ``(model, unknowns)`` split by
`eqx.partition` into arrays the optimizer moves and everything else. Each phase (Adam, then
L-BFGS, ...) compiles one step function and runs it ``chunk`` steps at a time inside
`lax.scan`; Python only runs between chunks to log, evaluate against the reference,
checkpoint and look for a non-finite loss or a signal. Steps past the end of a phase inside
the last chunk are masked, so every chunk of a phase has one shape and the step compiles once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..backends._base import trainable_filter
from ..core.objective import Objective
from ..core.problem import Problem
from ..errors import SpecError
from .checkpoint import Checkpointer
from .sparse import direct_step
from .weighting import AbstractWeighting, Causal, Fixed


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of training with one optimizer.

    Arguments:
        optimizer: any optax transformation.
        steps: how many steps.
        name: for logs.
        line_search: whether the optimizer takes ``value, grad, value_fn`` (optax.lbfgs); such
            phases train on fixed points and fixed weights, since a line search needs one
            deterministic objective.
        gauss_newton: a `GaussNewton` config for a Gauss–Newton phase (see
            `gauss_newton_phase`).
        group: train only this parameter group of the model (``model.parameter_group``).
        solve: variable projection (Golub & Pereyra 1973): this group (the gp backend's
            ``values``) is solved by a Gauss–Newton step where the phase starts and after
            every step, so for a linear PDE it is always at its exact optimum and the
            optimizer moves the other parameters θ along the profile ``loss(solve(θ), θ)``.
            Its gradient follows the implicit function theorem at the solved group (one
            adjoint solve with the normal matrix held fixed), so nothing is differentiated
            through the iterations of the solve.
    """

    optimizer: optax.GradientTransformation
    steps: int
    name: str = "adam"
    line_search: bool = False
    gauss_newton: GaussNewton | None = None
    group: str | None = None
    solve: str | None = None

    @property
    def fixed_objective(self) -> bool:
        """Whether the phase needs one deterministic objective (fixed points and weights)."""
        return self.line_search or self.gauss_newton is not None


@dataclasses.dataclass(frozen=True)
class GaussNewton:
    """Levenberg–Marquardt steps on the stacked weighted residual vector ``r(θ)``.

    Each step solves ``min_δ ‖r + J δ‖² + μ ‖δ‖²`` matrix-free — ``J`` by `jax.linearize`,
    ``Jᵀ`` by its transpose, the normal equations by conjugate gradients (lineax) — and
    accepts the step if the loss went down. ``μ`` adapts by the gain ratio ``ρ`` (actual over
    predicted decrease): divided by 3 when ``ρ > 0.75``, doubled when ``ρ < 0.25``, and
    multiplied by 4 on a rejected step. For a linear PDE (a quadratic loss) one step with small
    ``μ`` is the exact minimiser; a nonlinear one (Allen–Cahn) converges in a few steps.

    Arguments:
        damping: the initial ``μ``.
        cg_steps: most conjugate-gradient iterations per step.
        cg_rtol: relative tolerance of the conjugate gradients.
        pcg_steps: most iterations where the model preconditions the solve (the gp backend's
            ``normal_preconditioner``): preconditioned, the gradients converge in about ten,
            after which rounding (a kernel matrix's condition number of up to ``1/jitter``)
            keeps them from reaching ``cg_rtol``.
        dense_limit: up to this many parameters, form ``J`` and solve by QR instead.
        linear_solver: ``cg`` (matrix-free, above) or ``direct``: ``J`` assembled sparse by
            colouring (the model's ``jacobian_colours``, e.g. the odil backend's stencils;
            a colour per parameter otherwise) and ``JᵀJ + μI`` factorised by a sparse direct
            solver (`pinnkit.train.sparse`). Variable projection (``solve``) always uses
            ``cg``.
    """

    damping: float = 1e-10
    cg_steps: int = 2000
    cg_rtol: float = 1e-12
    pcg_steps: int = 15
    dense_limit: int = 4096
    linear_solver: str = "cg"

    def __post_init__(self):
        if self.linear_solver not in ("cg", "direct"):
            raise SpecError(
                f"linear_solver is `cg` or `direct`, not {self.linear_solver!r}",
                path="train.phases.optimizer.linear_solver",
            )


def normal_system(config: GaussNewton, jvp, sub, mu, precondition=None):
    """The damped normal matrix ``H = JᵀJ + μI`` of a linearised residual ``jvp`` at
    ``sub``, as ``(inverse, qr)``: ``inverse(b) = H⁻¹ b`` on the group's pytree, and when
    the group is small (``dense_limit``) the QR factors of ``[J; √μ I]`` with the
    unflattening, else ``None`` (then ``inverse`` is matrix-free CG, preconditioned by
    ``precondition``, a symmetric positive definite ``M ≈ H⁻¹`` on the group's pytree, where
    the model gives one)."""
    flat, unravel = jax.flatten_util.ravel_pytree(sub)
    if flat.size <= config.dense_limit:
        jac = jax.vmap(lambda v: jax.flatten_util.ravel_pytree(jvp(unravel(v)))[0])(
            jnp.eye(flat.size, dtype=flat.dtype)
        ).T
        stacked = jnp.concatenate([jac, jnp.sqrt(mu) * jnp.eye(flat.size, dtype=flat.dtype)])
        q, upper = jnp.linalg.qr(stacked)

        def inverse(b):  # H = RᵀR
            flat_b = jax.flatten_util.ravel_pytree(b)[0]
            y = jax.scipy.linalg.solve_triangular(upper, flat_b, trans="T", lower=False)
            return unravel(jax.scipy.linalg.solve_triangular(upper, y, lower=False))

        return inverse, (q, upper, unravel)
    vjp = jax.linear_transpose(jvp, sub)

    def normal(v):
        return jax.tree.map(lambda a, b: a + mu * b, vjp(jvp(v))[0], v)

    operator = lx.FunctionLinearOperator(
        normal, jax.eval_shape(lambda: sub), tags=lx.positive_semidefinite_tag
    )
    steps = config.cg_steps if precondition is None else min(config.cg_steps, config.pcg_steps)
    solver = lx.CG(rtol=config.cg_rtol, atol=0.0, max_steps=steps)
    options = {}
    if precondition is not None:
        options["preconditioner"] = lx.FunctionLinearOperator(
            precondition, jax.eval_shape(lambda: sub), tags=lx.positive_semidefinite_tag
        )

    def cg(matvec, b):
        del matvec
        return lx.linear_solve(operator, b, solver, options=options, throw=False).value

    # H is symmetric: its solve is its own transpose, so reverse mode through ``inverse`` is
    # one more CG solve (and a solve that stops at ``cg_steps`` does not raise there either).
    return (lambda b: jax.lax.custom_linear_solve(normal, b, cg, symmetric=True)), None


def implicit_solution(residual, sub, rest, config: GaussNewton, mu, precondition=None):
    """The minimiser ``z*(θ)`` of ``‖residual(z, θ)‖²``, given at ``sub`` (``≈ z*``), as a
    differentiable function of ``rest`` (``θ``) by the implicit function theorem.

    The value ``z* - H⁻¹ g(z*, θ)``, with ``g = Jᵀr`` the gradient in ``z`` and ``H = JᵀJ +
    μI`` held fixed, is ``z*`` itself (``g`` vanishes at the optimum; if ``sub`` is not quite
    optimal this is one more Gauss–Newton correction), and its derivative ``-H⁻¹ ∂g/∂θ`` is
    ``dz*/dθ``. Reverse mode costs one adjoint solve with ``H`` and never differentiates through
    the solver's iterations. ``precondition``: see `normal_system`. Returns the group's
    pytree.
    """
    z = jax.lax.stop_gradient(sub)
    fixed = jax.lax.stop_gradient(rest)
    _, jvp = jax.linearize(lambda s: residual(s, fixed), z)
    inverse, _ = normal_system(config, jvp, z, mu, precondition)
    r, pullback = jax.vjp(lambda s: residual(s, rest), z)
    delta = inverse(pullback(r)[0])
    return jax.tree.map(lambda a, b: a - b, z, delta)


def lbfgs_phase(steps: int, *, memory_size: int = 20) -> Phase:
    """L-BFGS with a zoom line search (optax.lbfgs)."""
    return Phase(optax.lbfgs(memory_size=memory_size), steps, "lbfgs", line_search=True)


def gauss_newton_phase(steps: int, *, group: str | None = None, **options) -> Phase:
    """Gauss–Newton (Levenberg–Marquardt) steps, optionally only on a parameter group of the
    model (``values`` of the gp backend: its grid values, the kernel held). See `GaussNewton`."""
    config = GaussNewton(**options)

    def init(params):
        del params
        return {"damping": jnp.asarray(config.damping)}

    return Phase(
        optax.GradientTransformation(init, None),
        steps,
        "gauss_newton",
        gauss_newton=config,
        group=group,
    )


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


class _Signals:
    """Turns SIGINT/SIGTERM into a flag checked between chunks (main thread only)."""

    def __init__(self):
        self.caught: int | None = None

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum, frame):
            if self.caught is not None:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            self.caught = signum

        for s in old:
            signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def _points_sharding(n_devices: int | None):
    devices = jax.local_devices()
    if n_devices is not None:
        devices = devices[:n_devices]
    if len(devices) <= 1:
        return None, None
    mesh = Mesh(np.array(devices), ("points",))
    return NamedSharding(mesh, P("points")), NamedSharding(mesh, P())


def train(
    problem: Problem,
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
    devices: int | None = None,
    key: jax.Array,
):
    """Train a model on a problem.

    Arguments:
        problem: the problem.
        model: an `AbstractModel` (or any pytree the objective can evaluate).
        phases: optimizer phases run one after another.
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
        devices: number of local devices to shard the collocation points over (default all).
        key: PRNG key.

    Returns:
        ``(model, unknowns, record)``: the trained model and unknowns and a `Record`.
    """
    t_start = time.perf_counter()
    record = Record()
    objective = objective if objective is not None else Objective(problem)
    weighting = weighting if weighting is not None else Fixed()
    unknowns = dict(problem.unknowns if unknowns is None else unknowns)
    dtype = objective.dtype
    unknowns = jax.tree.map(lambda v: jnp.asarray(v, dtype), dict(unknowns))
    params, static = eqx.partition((model, unknowns), (trainable_filter(model), True))
    shard_pts, replicated = _points_sharding(devices)

    def place(state, constrain=False):
        """Points sharded over devices, everything else replicated, inside and outside jit
        alike, so a chunk's output state has the layout of its input (no second trace)."""
        if shard_pts is None:
            return state
        put = jax.lax.with_sharding_constraint if constrain else jax.device_put
        arrays, rest = eqx.partition(state, eqx.is_array)
        arrays = put(arrays, replicated)
        arrays = eqx.tree_at(lambda s: s.points, arrays, put(arrays.points, shard_pts))
        return eqx.combine(arrays, rest)

    def constrain(points):
        if shard_pts is None:
            return points
        return {k: jax.lax.with_sharding_constraint(v, shard_pts) for k, v in points.items()}

    def terms_fn(p, points, causal_weights=None):
        m, u = eqx.combine(p, static)
        sq = objective.squared(m, u, points)
        return objective.reduce(sq, points, causal, causal_weights)

    def total_fn(p, points, weights, causal_weights=None):
        terms = terms_fn(p, points, causal_weights)
        return sum(weights[k] * v for k, v in terms.items()), terms

    def draw(p, key):
        m, u = eqx.combine(p, static)
        return constrain(objective.sample(score=objective.score(m, u), key=key))

    weights0 = {t.name: jnp.asarray(t.weight, dtype) for t in objective.terms}

    def group_mask(group: str):
        """The phase's parameter group as a filter over ``params`` (unknowns excluded)."""
        if not hasattr(model, "parameter_group"):
            raise SpecError(
                f"this backend has no parameter groups (asked for {group!r})",
                path="train.phases.params",
            )
        full = (model.parameter_group(group), {k: False for k in unknowns})
        mask, _ = eqx.partition(full, (trainable_filter(model), True))
        return mask

    def with_group(phase: Phase) -> Phase:
        """An optax phase on a parameter group: the other parameters' updates are zero."""
        if phase.group is None or phase.gauss_newton is not None:
            return phase
        labels = jax.tree.map(lambda b: "train" if b else "frozen", group_mask(phase.group))
        opt = optax.multi_transform(
            {"train": phase.optimizer, "frozen": optax.set_to_zero()}, lambda _: labels
        )
        return dataclasses.replace(phase, optimizer=opt)

    phases = [with_group(ph) for ph in phases]
    bounds = np.cumsum([0] + [ph.steps for ph in phases])
    total_steps = int(bounds[-1])

    def init_state(phase: Phase, p, points, weights, key, step):
        state = TrainState(p, phase.optimizer.init(p), points, weights, key, jnp.asarray(step))
        # Strong dtypes: a weakly typed leaf (a Python scalar in an optimizer state) comes out
        # of the first chunk strongly typed, which would trace the step a second time.
        return jax.tree.map(
            lambda x: jnp.asarray(x, dtype=x.dtype) if eqx.is_array(x) else x, state
        )

    def split_key(data):
        # The state holds raw key data: typed PRNG keys cannot be serialised in checkpoints.
        new, sub = jax.random.split(jax.random.wrap_key_data(data))
        return jax.random.key_data(new), sub

    def group_residual(group, params, points, weights):
        """``(sub, rest, residual)``: the group's parameters, the others, and the stacked
        least-squares residual as a function ``residual(sub, rest)``."""
        if group is None:
            sub, rest = params, None
        else:
            sub, rest = eqx.partition(params, group_mask(group))

        def residual(s, rest):
            p = s if rest is None else eqx.combine(s, rest)
            m, u = eqx.combine(p, static)
            return objective.least_squares(m, u, points, weights)

        return sub, rest, residual

    def group_preconditioner(group, params):
        """The model's preconditioner of a group's normal equations at ``params`` (a function
        on the group's pytree), or None."""
        if group is None or not hasattr(model, "normal_preconditioner"):
            return None
        m, _ = eqx.combine(params, static)
        apply = m.normal_preconditioner(group)
        return None if apply is None else (lambda s: (apply(s[0]), s[1]))

    def group_colours(group) -> np.ndarray:
        """A Jacobian colour for each flat parameter of the group (`pinnkit.train.sparse`):
        the model's own ``jacobian_colours`` where it has them, a colour each otherwise."""
        own = model.jacobian_colours() if hasattr(model, "jacobian_colours") else None
        unique = lambda x: np.full(np.shape(x), -1) if eqx.is_array(x) else x
        tree = (
            jax.tree.map(unique, model) if own is None else own,
            jax.tree.map(unique, unknowns),
        )
        tree, _ = eqx.partition(tree, (trainable_filter(model), True))
        if group is not None:
            tree, _ = eqx.partition(tree, group_mask(group))
        leaves = [np.asarray(x).reshape(-1) for x in jax.tree.leaves(tree)]
        colours = np.concatenate(leaves) if leaves else np.zeros(0, int)
        free = colours < 0
        colours[free] = colours.max(initial=-1) + 1 + np.arange(int(free.sum()))
        return colours

    def gauss_newton_step(config: GaussNewton, group, params, points, weights, mu):
        """One Levenberg–Marquardt step on a parameter group (None: all); returns
        ``(params, damping)``."""
        sub, rest, residual_of = group_residual(group, params, points, weights)
        residual = lambda s: residual_of(s, rest)
        r, jvp = jax.linearize(residual, sub)
        inverse, qr = (None, None)
        if config.linear_solver == "cg":
            precondition = group_preconditioner(group, params)
            inverse, qr = normal_system(config, jvp, sub, mu, precondition)
        if inverse is None:
            _, unravel = jax.flatten_util.ravel_pytree(sub)
            colours = group_colours(group)
            delta = unravel(direct_step(lambda v: jvp(unravel(v)), r, colours, mu))
        elif qr is not None:
            # Small: solve [J; √μ I] δ = [-r; 0] by QR (no normal equations, so no squared
            # condition number).
            q, upper, unravel = qr
            rhs = -(q[: r.shape[0]].T @ r)
            delta = unravel(jax.scipy.linalg.solve_triangular(upper, rhs, lower=False))
        else:
            vjp = jax.linear_transpose(jvp, sub)
            delta = inverse(jax.tree.map(jnp.negative, vjp(r)[0]))
        trial = jax.tree.map(lambda a, b: a + b, sub, delta)
        cost = jnp.sum(r**2)
        new_cost = jnp.sum(residual(trial) ** 2)
        predicted = jnp.sum((r + jvp(delta)) ** 2)
        gain = (cost - new_cost) / jnp.maximum(cost - predicted, jnp.finfo(cost.dtype).tiny)
        finite = jnp.isfinite(new_cost) & jnp.all(
            jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(trial)])
        )
        accept = finite & (new_cost <= cost)
        mu_new = jnp.where(gain > 0.75, mu / 3, jnp.where(gain < 0.25, 2 * mu, mu))
        mu_new = jnp.clip(jnp.where(accept, mu_new, 4 * mu), 1e-20, 1e20).astype(mu.dtype)
        chosen = jax.tree.map(lambda a, b: jnp.where(accept, a, b), trial, sub)
        return (chosen if rest is None else eqx.combine(chosen, rest)), mu_new

    def make_chunk(phase: Phase, length: int):
        opt = phase.optimizer

        def step(state: TrainState, end):
            active = state.step < end
            key, k_draw = split_key(state.key)
            points = state.points
            weights = state.weights
            if not phase.fixed_objective and resample_every > 0 and objective.sampler.resamples:
                points = jax.lax.cond(
                    state.step % resample_every == 0,
                    lambda: draw(state.params, k_draw),
                    lambda: points,
                )
            if not phase.fixed_objective and weighting.every > 0:

                def reweight():
                    grads = jax.jacrev(lambda p: terms_fn(p, points))(state.params)
                    new = weighting.update(grads, weights)
                    # Keep the state's dtypes even where float64 is on for the process.
                    return {k: jnp.asarray(v, weights[k].dtype) for k, v in new.items()}

                weights = jax.lax.cond(state.step % weighting.every == 0, reweight, lambda: weights)
            if phase.gauss_newton is not None:
                params, mu = gauss_newton_step(
                    phase.gauss_newton,
                    phase.group,
                    state.params,
                    points,
                    weights,
                    state.opt_state["damping"],
                )
                opt_state = {"damping": mu}
                loss = total_fn(state.params, points, weights)[0]
            elif phase.line_search:
                frozen = None
                if causal is not None:  # one objective for the whole line search
                    m, u = eqx.combine(state.params, static)
                    frozen = objective.causal_weights(
                        objective.squared(m, u, points), points, causal
                    )
                # In the dtype optax.lbfgs holds its value in: a float32 run after a float64
                # one in the same process (x64 then on) must still trace.
                value_dtype = optax.tree_utils.tree_get(state.opt_state, "value").dtype
                fn = lambda p: total_fn(p, points, weights, frozen)[0].astype(value_dtype)
                value, grad = optax.value_and_grad_from_state(fn)(
                    state.params, state=state.opt_state
                )
                updates, opt_state = opt.update(
                    grad, state.opt_state, state.params, value=value, grad=grad, value_fn=fn
                )
                params = optax.apply_updates(state.params, updates)
                # At convergence a line search can fail to a non-finite step: keep the last
                # good point instead, which ends the phase's progress but is no divergence.
                ok = jnp.all(
                    jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)])
                )
                ok = ok & jnp.isfinite(value)
                params = jax.tree.map(lambda a, b: jnp.where(ok, a, b), params, state.params)
                opt_state = jax.tree.map(
                    lambda a, b: jnp.where(ok, a, b), opt_state, state.opt_state
                )
                loss = value
            else:
                params_in = state.params
                if phase.solve is None:
                    objective_fn = total_fn
                else:
                    # Variable projection. The state's group is kept at its optimum for the
                    # other parameters θ: solved once where the phase starts, then after every
                    # step (one solve per step), and differentiated implicitly.
                    config = GaussNewton(cg_steps=500)  # warm started: a correction
                    mu0 = jnp.asarray(config.damping, dtype)
                    adjoint = GaussNewton(cg_steps=500, cg_rtol=1e-8)

                    def solved(p):
                        return gauss_newton_step(config, phase.solve, p, points, weights, mu0)[0]

                    params_in = jax.lax.cond(
                        state.step == end - phase.steps, solved, lambda p: p, params_in
                    )

                    def objective_fn(p, points, weights):
                        return total_fn(implicit(p, points, weights), points, weights)

                    def implicit(p, points, weights):
                        # z*(θ) differentiable in θ: terms outside the solve (the gp's
                        # midpoint residuals) see how z* moves; for the others it is the
                        # envelope theorem.
                        sub, rest, residual = group_residual(phase.solve, p, points, weights)
                        precondition = group_preconditioner(phase.solve, p)
                        z = implicit_solution(residual, sub, rest, adjoint, mu0, precondition)
                        return eqx.combine(z, rest)

                (loss, _), grads = jax.value_and_grad(objective_fn, has_aux=True)(
                    params_in, points, weights
                )
                updates, opt_state = opt.update(grads, state.opt_state, params_in)
                params = optax.apply_updates(params_in, updates)
                if phase.solve is not None:  # keep the state solved for its new θ
                    params = solved(params)
            new = TrainState(params, opt_state, points, weights, key, state.step + 1)
            new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)
            return new, jnp.where(active, loss, jnp.nan)

        @eqx.filter_jit
        @eqx.debug.assert_max_traces(max_traces=1)  # the step compiles once per phase
        def run(state: TrainState, end):
            state, losses = jax.lax.scan(lambda s, _: step(s, end), state, None, length=length)
            return place(state, constrain=True), losses

        return run

    @eqx.filter_jit
    def report_terms(state: TrainState):
        terms = terms_fn(state.params, state.points)
        return terms, sum(state.weights[k] * v for k, v in terms.items())

    # --- state: fresh or resumed ----------------------------------------------------------
    key, k_points = jax.random.split(key)
    key = jax.random.key_data(key)
    start_step = 0
    phase_index = 0
    state = init_state(phases[0], params, draw(params, k_points), weights0, key, 0)
    if resume and checkpoint is not None and checkpoint.exists():
        meta = checkpoint.meta()
        phase_index = min(int(meta["phase"]), len(phases) - 1)
        template = init_state(phases[phase_index], params, state.points, weights0, key, 0)
        try:
            state, meta = checkpoint.load(template)
        except Exception as e:  # a structure mismatch: the spec changed what is trained
            raise SpecError(
                f"the checkpoint in {checkpoint.directory} does not fit this spec's model and "
                f"optimizer phases ({type(e).__name__}); resume with the spec the run was made "
                "with (only train.steps may change)",
                path="--resume",
            ) from None
        start_step = int(meta["step"])
    state = place(state)

    signals = _Signals()
    last_finite, last_finite_phase = state, phase_index
    last_eval = -1
    first_chunk: tuple[float, int] | None = None
    steps_timed = 0

    def save(st, ph, status):
        if checkpoint is not None:
            checkpoint.save(
                st,
                {"step": int(st.step), "phase": ph, "status": status, "total_steps": total_steps},
            )

    with signals.installed():
        step_now = start_step
        state_phase = phase_index
        for index in range(phase_index, len(phases)):
            phase = phases[index]
            end = int(bounds[index + 1])
            if step_now >= end:
                continue
            if index != state_phase:
                state = place(
                    init_state(
                        phase, state.params, state.points, state.weights, state.key, step_now
                    )
                )
                state_phase = index
            run = make_chunk(phase, max(1, min(chunk, end - int(bounds[index]))))
            first = True
            while step_now < end:
                t0 = time.perf_counter()
                new_state, losses = run(state, jnp.asarray(end))
                losses = np.asarray(losses)
                done = int(new_state.step) - step_now
                dt = time.perf_counter() - t0
                if first and first_chunk is None:
                    first_chunk = (dt, done)  # includes compilation; split out below
                elif first:
                    record.compile_s += dt  # a later phase's compile, charged whole
                else:
                    record.train_s += dt
                    steps_timed += done
                first = False
                ran = losses[~np.isnan(losses)]
                if not np.all(np.isfinite(ran)) or not np.all(
                    [np.all(np.isfinite(x)) for x in jax.tree.leaves(new_state.params)]
                ):
                    record.status = "diverged"
                    record.message = (
                        f"non-finite loss in steps {step_now}..{step_now + done} (phase "
                        f"{phase.name}); kept the last finite state, from step "
                        f"{int(last_finite.step)}. Try a smaller learning rate "
                        "(train.optimizer.lr), float64 (train.dtype: float64), or smaller loss "
                        "weights."
                    )
                    state = last_finite
                    save(state, last_finite_phase, "diverged")
                    break
                state = new_state
                step_now = int(state.step)
                last_finite, last_finite_phase = state, index
                terms, loss = report_terms(state)
                entry = {
                    "step": step_now,
                    "phase": phase.name,
                    "loss": float(loss),
                    "terms": {k: float(v) for k, v in terms.items()},
                    "weights": {k: float(v) for k, v in state.weights.items()},
                    "time_s": time.perf_counter() - t_start,
                }
                _, u_now = eqx.combine(state.params, static)
                if u_now:
                    entry["unknowns"] = {
                        k: float(v) for k, v in u_now.items() if not isinstance(v, dict)
                    }
                if evaluate is not None and (
                    step_now - last_eval >= eval_every or step_now == total_steps
                ):
                    entry["errors"] = evaluate(*eqx.combine(state.params, static))
                    last_eval = step_now
                record.history.append(entry)
                if log is not None:
                    log(entry)
                if signals.caught is not None:
                    record.status = "interrupted"
                    record.message = f"interrupted at step {step_now}; continue with --resume"
                    save(state, index, "interrupted")
                    break
                if checkpoint is not None and (
                    step_now // checkpoint_every != (step_now - done) // checkpoint_every
                ):
                    save(state, index, "running")
            record.traces[f"{index}:{phase.name}"] = eqx.debug.get_num_traces(run)
            if record.status != "ok":
                break
        record.steps = int(state.step)
        if record.status == "ok":
            save(state, state_phase, "ok")
    if first_chunk is not None:
        per_step = record.train_s / steps_timed if steps_timed else 0.0
        record.compile_s += max(0.0, first_chunk[0] - per_step * first_chunk[1])
        record.train_s += first_chunk[0] - max(0.0, first_chunk[0] - per_step * first_chunk[1])
        steps_timed += first_chunk[1]
    record.steps_timed = steps_timed
    record.wall_s = time.perf_counter() - t_start
    trained_model, trained_unknowns = eqx.combine(state.params, static)
    return trained_model, trained_unknowns, record
