"""Optimizer steps as strategy objects: what one training step does, in the shape of
Optimistix's ``init / step / terminate`` (`optimistix._iterate`).

The trainer (`pinnkit.train.train`) knows nothing about optimizers. Each phase holds one
`AbstractStep`; the trainer calls ``init`` where the phase starts, ``step`` inside its compiled
`lax.scan` chunk, and ``terminate`` to skip the phase's remaining steps once the step says it
can make no more progress. What a step may ask of the loss comes from `LossFunctions`, which
the trainer builds once from the objective.

The steps:

* `OptaxStep`: any optax gradient transformation (Adam, SGD, ...), optionally on one parameter
  group of the model, optionally with named unknowns held fixed.
* `LineSearchStep`: an optax optimizer that takes ``value, grad, value_fn`` (``optax.lbfgs``
  with its zoom line search); trains on fixed points and weights.
* `GaussNewtonStep`: Levenberg–Marquardt on the stacked residual vector (matrix-free CG, dense
  QR for small groups, or a sparse direct solve by Jacobian colouring).
* `VariableProjectionStep`: a gradient step on the other parameters with a group solved by
  Gauss–Newton after every step and differentiated implicitly (Golub & Pereyra 1973).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optax

from ..backends import hooks_of, trainable_filter
from ..errors import SpecError
from .sparse import direct_step


@dataclasses.dataclass(frozen=True)
class GaussNewton:
    """Levenberg–Marquardt settings for `GaussNewtonStep` (and the solves of
    `VariableProjectionStep`).

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
            solver (`pinnkit.train.sparse`). Variable projection always uses ``cg``.
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


MAX_DAMPING = 1e20  # a Gauss–Newton step damped this far moves nothing: the phase is over


class LossFunctions:
    """The loss as the steps see it: functions of the trainable parameters ``p`` (the arrays
    of ``(model, unknowns)`` that `eqx.partition` leaves to the optimizer).

    Arguments:
        objective: the objective (`pinnkit.core.objective.Objective` or any object with
            ``squared``, ``reduce``, ``least_squares`` and ``causal_weights``).
        static: the non-trainable part of ``(model, unknowns)``.
        model: the model as it started (its structure and declared hooks).
        unknowns: the unknowns as they started.
        causal: causal temporal weighting, or None.
    """

    def __init__(self, objective, static, model, unknowns, causal):
        self.objective = objective
        self.static = static
        self.model = model
        self.unknowns = unknowns
        self.causal = causal

    def combine(self, p):
        """``(model, unknowns)`` from the trainable parameters."""
        return eqx.combine(p, self.static)

    def terms(self, p, points, causal_weights=None) -> dict:
        m, u = self.combine(p)
        sq = self.objective.squared(m, u, points)
        return self.objective.reduce(sq, points, self.causal, causal_weights)

    def total(self, p, points, weights, causal_weights=None):
        """``(weighted sum, terms)``."""
        terms = self.terms(p, points, causal_weights)
        return sum(weights[k] * v for k, v in terms.items()), terms

    def frozen_causal_weights(self, p, points):
        """The causal weights at ``p``, to hold fixed over a line search (None without causal
        weighting)."""
        if self.causal is None:
            return None
        m, u = self.combine(p)
        return self.objective.causal_weights(
            self.objective.squared(m, u, points), points, self.causal
        )

    def group_mask(self, group: str):
        """A parameter group of the model (its ``parameter_group``) as a filter over ``p``
        (unknowns excluded)."""
        full = (hooks_of(self.model).parameter_group(group), {k: False for k in self.unknowns})
        mask, _ = eqx.partition(full, (trainable_filter(self.model), True))
        return mask

    def group_residual(self, group, params, points, weights):
        """``(sub, rest, residual)``: the group's parameters (all of them for None), the
        others, and the stacked least-squares residual as a function ``residual(sub, rest)``."""
        if group is None:
            sub, rest = params, None
        else:
            sub, rest = eqx.partition(params, self.group_mask(group))

        def residual(s, rest):
            p = s if rest is None else eqx.combine(s, rest)
            m, u = self.combine(p)
            return self.objective.least_squares(m, u, points, weights)

        return sub, rest, residual

    def group_preconditioner(self, group, params):
        """The model's preconditioner of a group's normal equations at ``params`` (a function
        on the group's pytree), or None."""
        if group is None:
            return None
        m, _ = self.combine(params)
        apply = hooks_of(m).normal_preconditioner(group)
        return None if apply is None else (lambda s: (apply(s[0]), s[1]))

    def group_colours(self, group) -> np.ndarray:
        """A Jacobian colour for each flat parameter of the group (`pinnkit.train.sparse`):
        the model's own ``jacobian_colours`` where it has them, a colour each otherwise."""
        own = hooks_of(self.model).jacobian_colours()
        unique = lambda x: np.full(np.shape(x), -1) if eqx.is_array(x) else x
        tree = (
            jax.tree.map(unique, self.model) if own is None else own,
            jax.tree.map(unique, self.unknowns),
        )
        tree, _ = eqx.partition(tree, (trainable_filter(self.model), True))
        if group is not None:
            tree, _ = eqx.partition(tree, self.group_mask(group))
        leaves = [np.asarray(x).reshape(-1) for x in jax.tree.leaves(tree)]
        colours = np.concatenate(leaves) if leaves else np.zeros(0, int)
        free = colours < 0
        colours[free] = colours.max(initial=-1) + 1 + np.arange(int(free.sum()))
        return colours


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


class AbstractStep(eqx.Module):
    """One optimizer step of a training phase.

    ``init(loss, params) -> state`` where the phase starts; ``step(loss, params, state,
    points, weights, first) -> (params, state, value)`` inside the compiled chunk (``value``:
    the loss at the parameters the step started from, or at the trial point for a line
    search; ``first``: whether this is the phase's first step); ``terminate(loss, params,
    state) -> bool`` whether the remaining steps of the phase can be skipped. Every step has
    a ``name`` for logs.
    """

    fixed_objective = False
    """Whether the step needs one deterministic objective: the trainer then neither resamples
    points nor reweights terms during the phase."""

    @abc.abstractmethod
    def init(self, loss: LossFunctions, params): ...

    @abc.abstractmethod
    def step(self, loss: LossFunctions, params, state, points, weights, first): ...

    def terminate(self, loss: LossFunctions, params, state) -> jax.Array:
        del loss, params, state
        return jnp.asarray(False)


def _frozen_unknowns(optimizer, names: frozenset[str]) -> optax.GradientTransformation:
    """The optimizer, with the named unknowns' updates zeroed (params are (model, unknowns))."""

    def labels(params):
        model, unknowns = params
        return (
            jax.tree_util.tree_map(lambda _: "train", model),
            {k: "frozen" if k in names else "train" for k in unknowns},
        )

    return optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)


class OptaxStep(AbstractStep):
    """A step of any optax gradient transformation.

    Arguments:
        optimizer: the transformation (e.g. ``optax.adam(1e-3)``).
        name: for logs.
        group: train only this parameter group of the model (its ``parameter_group``); the
            others' updates are zero.
        freeze: unknowns whose updates are zero.
    """

    optimizer: optax.GradientTransformation = eqx.field(static=True)
    name: str = eqx.field(static=True, default="adam")
    group: str | None = eqx.field(static=True, default=None)
    freeze: frozenset[str] = eqx.field(static=True, default=frozenset())

    def transformation(self, loss: LossFunctions) -> optax.GradientTransformation:
        opt = self.optimizer
        if self.freeze:
            opt = _frozen_unknowns(opt, frozenset(self.freeze))
        if self.group is not None:
            labels = jax.tree.map(lambda b: "train" if b else "frozen", loss.group_mask(self.group))
            opt = optax.multi_transform(
                {"train": opt, "frozen": optax.set_to_zero()}, lambda _: labels
            )
        return opt

    def init(self, loss, params):
        return self.transformation(loss).init(params)

    def step(self, loss, params, state, points, weights, first):
        del first
        (value, _), grads = jax.value_and_grad(loss.total, has_aux=True)(params, points, weights)
        updates, state = self.transformation(loss).update(grads, state, params)
        return optax.apply_updates(params, updates), state, value


class LineSearchStep(AbstractStep):
    """A step of an optax optimizer with a line search (``update(..., value=, grad=,
    value_fn=)``), by default L-BFGS with a zoom line search. At convergence a line search can
    fail to a non-finite step: the step then keeps the last good point, which ends the phase's
    progress but is no divergence.

    Arguments:
        optimizer: e.g. ``optax.lbfgs(memory_size=20)``.
        name: for logs.
    """

    optimizer: optax.GradientTransformation = eqx.field(static=True)
    name: str = eqx.field(static=True, default="lbfgs")

    fixed_objective = True

    def init(self, loss, params):
        del loss
        return self.optimizer.init(params)

    def step(self, loss, params, state, points, weights, first):
        del first
        frozen = loss.frozen_causal_weights(params, points)  # one objective per search
        # In the dtype optax.lbfgs holds its value in: a float32 run after a float64 one in
        # the same process (x64 then on) must still trace.
        value_dtype = optax.tree_utils.tree_get(state, "value").dtype
        fn = lambda p: loss.total(p, points, weights, frozen)[0].astype(value_dtype)
        value, grad = optax.value_and_grad_from_state(fn)(params, state=state)
        updates, new_state = self.optimizer.update(
            grad, state, params, value=value, grad=grad, value_fn=fn
        )
        new = optax.apply_updates(params, updates)
        ok = _all_finite(new) & jnp.isfinite(value)
        new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, params)
        new_state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new_state, state)
        return new, new_state, value


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


def levenberg_marquardt(
    config: GaussNewton, loss: LossFunctions, group, params, points, weights, mu
):
    """One Levenberg–Marquardt step on a parameter group (None: all); returns
    ``(params, damping)``. See `GaussNewton`."""
    sub, rest, residual_of = loss.group_residual(group, params, points, weights)
    residual = lambda s: residual_of(s, rest)
    r, jvp = jax.linearize(residual, sub)
    inverse, qr = (None, None)
    if config.linear_solver == "cg":
        precondition = loss.group_preconditioner(group, params)
        inverse, qr = normal_system(config, jvp, sub, mu, precondition)
    if inverse is None:
        _, unravel = jax.flatten_util.ravel_pytree(sub)
        colours = loss.group_colours(group)
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
    accept = jnp.isfinite(new_cost) & _all_finite(trial) & (new_cost <= cost)
    mu_new = jnp.where(gain > 0.75, mu / 3, jnp.where(gain < 0.25, 2 * mu, mu))
    mu_new = jnp.clip(jnp.where(accept, mu_new, 4 * mu), 1e-20, MAX_DAMPING).astype(mu.dtype)
    chosen = jax.tree.map(lambda a, b: jnp.where(accept, a, b), trial, sub)
    return (chosen if rest is None else eqx.combine(chosen, rest)), mu_new


class GaussNewtonStep(AbstractStep):
    """A Levenberg–Marquardt step (`GaussNewton`) on all parameters or one group of the
    model (``values`` of the gp backend: its grid values, the kernel held). Its state is the
    damping; it terminates once the damping has grown to `MAX_DAMPING` (every step rejected).

    Arguments:
        config: the `GaussNewton` settings.
        group: the parameter group, or None for all.
    """

    config: GaussNewton = eqx.field(static=True, default=GaussNewton())
    group: str | None = eqx.field(static=True, default=None)
    name: str = eqx.field(static=True, default="gauss_newton")

    fixed_objective = True

    def init(self, loss, params):
        del loss, params
        return {"damping": jnp.asarray(self.config.damping)}

    def step(self, loss, params, state, points, weights, first):
        del first
        value = loss.total(params, points, weights)[0]
        params, mu = levenberg_marquardt(
            self.config, loss, self.group, params, points, weights, state["damping"]
        )
        return params, {"damping": mu}, value

    def terminate(self, loss, params, state):
        del loss, params
        return state["damping"] >= MAX_DAMPING


class VariableProjectionStep(AbstractStep):
    """Variable projection (Golub & Pereyra, "The differentiation of pseudo-inverses and
    nonlinear least squares problems whose variables separate", SIAM J. Numer. Anal. 10,
    1973): the group ``solve`` (the gp backend's ``values``) is kept at its optimum for the
    other parameters θ — solved by a Gauss–Newton step where the phase starts and after every
    step — while the gradient step ``inner`` moves θ along the profile ``loss(solve(θ), θ)``.
    The gradient follows the implicit function theorem at the solved group (one adjoint solve
    with the normal matrix held fixed, `implicit_solution`), so nothing is differentiated
    through the solver's iterations.

    Arguments:
        inner: the gradient step on θ.
        solve: the parameter group solved for.
    """

    inner: OptaxStep
    solve: str = eqx.field(static=True)

    @property
    def name(self) -> str:
        return self.inner.name

    def init(self, loss, params):
        return self.inner.init(loss, params)

    def step(self, loss, params, state, points, weights, first):
        dtype = loss.objective.dtype
        config = GaussNewton(cg_steps=500)  # warm started: a correction
        mu0 = jnp.asarray(config.damping, dtype)
        adjoint = GaussNewton(cg_steps=500, cg_rtol=1e-8)

        def solved(p):
            return levenberg_marquardt(config, loss, self.solve, p, points, weights, mu0)[0]

        def implicit(p, points, weights):
            # z*(θ) differentiable in θ: terms outside the solve (the gp's midpoint residuals)
            # see how z* moves; for the others it is the envelope theorem.
            sub, rest, residual = loss.group_residual(self.solve, p, points, weights)
            precondition = loss.group_preconditioner(self.solve, p)
            z = implicit_solution(residual, sub, rest, adjoint, mu0, precondition)
            return eqx.combine(z, rest)

        params = jax.lax.cond(first, solved, lambda p: p, params)
        objective = lambda p, points, weights: loss.total(
            implicit(p, points, weights), points, weights
        )
        (value, _), grads = jax.value_and_grad(objective, has_aux=True)(params, points, weights)
        updates, state = self.inner.transformation(loss).update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return solved(params), state, value  # kept solved for its new θ


class AbstractSeparable(abc.ABC):
    """An objective whose unknowns separate into a field and parameters θ, such that for any
    θ one field zeroes the physics rows (a forward solve), leaving data rows in θ alone: what
    `EliminatedGaussNewtonStep` needs (the glioma objective is one)."""

    @abc.abstractmethod
    def theta_of(self, params):
        """θ (a flat array) from the trainable parameters."""

    @abc.abstractmethod
    def eliminate(self, theta):
        """The field that zeroes the physics rows for θ."""

    @abc.abstractmethod
    def data_residual(self, theta, field):
        """The data rows (a flat array) of θ and its field."""

    @abc.abstractmethod
    def assemble(self, params, theta, field):
        """The trainable parameters holding θ and its field."""


class EliminatedGaussNewtonStep(AbstractStep):
    """Levenberg–Marquardt on the parameters θ with the field eliminated: variable projection
    (Golub & Pereyra 1973) where the inner solve is the forward model itself.

    Each step solves for the field of θ (`AbstractSeparable.eliminate`), gets the sensitivities
    of the data rows by forward-mode differentiation through that solve, and takes a damped
    Gauss–Newton step for θ (a dense solve: θ has few entries) with Marquardt's scaling of
    the damping by ``diag(JᵀJ)`` and the gain-ratio rule of `GaussNewton`. This is the
    whole-vector Gauss–Newton method in the limit of heavy physics weights; unlike it, it needs
    no linear solve over the field. Its state is the damping; it terminates once the damping
    reaches its upper clip (every step rejected).

    Arguments:
        damping: the initial damping, relative to ``diag(JᵀJ)``.
    """

    damping: float = eqx.field(static=True, default=1e-3)
    name: str = eqx.field(static=True, default="gauss_newton")

    fixed_objective = True
    max_damping = 1e12

    def init(self, loss, params):
        if not isinstance(loss.objective, AbstractSeparable):
            raise SpecError(
                f"the eliminated Gauss–Newton step needs an objective whose field can be "
                f"eliminated; {type(loss.objective).__name__} is not one",
                path="train.optimizer.name",
            )
        return {"damping": jnp.asarray(self.damping, loss.objective.dtype)}

    def step(self, loss, params, state, points, weights, first):
        del points, weights, first
        objective, mu = loss.objective, state["damping"]
        theta = objective.theta_of(params)
        rows = lambda t, field=None: objective.data_residual(
            t, objective.eliminate(t) if field is None else field
        )
        r, jvp = jax.linearize(rows, theta)
        J = jax.vmap(jvp, out_axes=1)(jnp.eye(theta.size, dtype=theta.dtype))
        H = J.T @ J
        scaling = jnp.diag(H) + 1e-9 * jnp.max(jnp.diag(H)) + 1e-30
        delta = jnp.linalg.solve(H + mu * jnp.diag(scaling), -(J.T @ r))
        trial = theta + delta
        field = objective.eliminate(trial)
        cost = jnp.sum(r**2)
        new_cost = jnp.sum(rows(trial, field) ** 2)
        predicted = jnp.sum((r + J @ delta) ** 2)
        gain = (cost - new_cost) / jnp.maximum(cost - predicted, jnp.finfo(cost.dtype).tiny)
        accept = jnp.isfinite(new_cost) & (new_cost <= cost)
        mu_new = jnp.where(gain > 0.75, mu / 3, jnp.where(gain < 0.25, 2 * mu, mu))
        mu_new = jnp.clip(jnp.where(accept, mu_new, 4 * mu), 1e-12, self.max_damping)
        moved = objective.assemble(params, trial, field)
        params = jax.tree.map(lambda a, b: jnp.where(accept, a, b), moved, params)
        return params, {"damping": mu_new}, cost

    def terminate(self, loss, params, state):
        del loss, params
        return state["damping"] >= self.max_damping


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of training with one optimizer step.

    Arguments:
        step: an `AbstractStep`, or any optax gradient transformation (then an `OptaxStep`).
        steps: how many steps.
        name: for logs (an optax transformation's; a step object has its own).
    """

    step: AbstractStep | optax.GradientTransformation
    steps: int
    name: str | None = None

    def __post_init__(self):
        if not isinstance(self.step, AbstractStep):
            object.__setattr__(self, "step", OptaxStep(self.step, self.name or "adam"))
        object.__setattr__(self, "name", self.step.name)

    @property
    def fixed_objective(self) -> bool:
        """Whether the phase needs one deterministic objective (fixed points and weights)."""
        return self.step.fixed_objective


def lbfgs_phase(steps: int, *, memory_size: int = 20) -> Phase:
    """L-BFGS with a zoom line search (optax.lbfgs)."""
    return Phase(LineSearchStep(optax.lbfgs(memory_size=memory_size)), steps)


def gauss_newton_phase(steps: int, *, group: str | None = None, **options) -> Phase:
    """Gauss–Newton (Levenberg–Marquardt) steps, optionally only on a parameter group of the
    model (``values`` of the gp backend: its grid values, the kernel held). See `GaussNewton`."""
    return Phase(GaussNewtonStep(GaussNewton(**options), group), steps)


def phase_steps(phases: Sequence[Phase]) -> np.ndarray:
    """The step at which each phase starts, and the total last: ``[0, n0, n0 + n1, ...]``."""
    return np.cumsum([0] + [p.steps for p in phases])
