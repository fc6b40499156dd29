"""Each optimizer step kind (`pinnkit.train.steps`) under `jax.jit`, on a least-squares fit
whose minimiser is known: a line ``a x + b`` through points of ``2 x + 1``. Linear in the
parameters, so a Gauss–Newton step (of any kind) lands on the minimiser at once, and the
gradient steps converge to it."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnkit.backends import AbstractModel
from pinnkit.core.objective import AbstractObjective, Term
from pinnkit.errors import SpecError
from pinnkit.train.steps import (
    MAX_DAMPING,
    AbstractSeparable,
    EliminatedGaussNewtonStep,
    GaussNewton,
    GaussNewtonStep,
    LineSearchStep,
    LossFunctions,
    OptaxStep,
    VariableProjectionStep,
)

X = np.linspace(0.0, 1.0, 9)
Y = 2.0 * X + 1.0


class Line(AbstractModel):
    slope: jax.Array
    offset: jax.Array

    def fields_at(self, points, requests):
        raise NotImplementedError

    def parameter_group(self, name):
        mask = jax.tree.map(lambda _: False, self)
        return eqx.tree_at(lambda m: getattr(m, name), mask, True)


@dataclasses.dataclass(frozen=True)
class _Fixed:
    resamples: bool = False


class Fit(AbstractObjective, AbstractSeparable):
    """The squared misfit; separable: for a slope the best offset is ``mean(y - a x)``."""

    def __init__(self):
        self.terms = [Term("fit", "fit", "data")]
        self.dtype = jnp.float64
        self.sampler = _Fixed()

    def sample(self, *, score=None, key):
        return {}

    def rows(self, model):
        return model.slope * X + model.offset - Y

    def squared(self, model, unknowns, points):
        return {"fit": self.rows(model) ** 2}

    def least_squares(self, model, unknowns, points, weights):
        return jnp.sqrt(weights["fit"]) * self.rows(model)

    def theta_of(self, params):
        return jnp.atleast_1d(params[0].slope)

    def eliminate(self, theta):
        return jnp.mean(Y - theta[0] * X)

    def data_residual(self, theta, field):
        return theta[0] * X + field - Y

    def assemble(self, params, theta, field):
        return eqx.tree_at(lambda p: (p[0].slope, p[0].offset), params, (theta[0], field))


def _run(step, steps):
    """``steps`` steps of ``step`` from (0, 0), compiled whole; the final line and losses."""
    model = Line(jnp.asarray(0.0), jnp.asarray(0.0))
    params, static = eqx.partition((model, {}), eqx.is_inexact_array)
    loss = LossFunctions(Fit(), static, model, {}, None)
    weights = {"fit": jnp.asarray(1.0)}

    @jax.jit
    def run(params):
        state = step.init(loss, params)

        def body(carry, i):
            p, s = carry
            p, s, value = step.step(loss, p, s, {}, weights, i == 0)
            return (p, s), value

        (params, state), values = jax.lax.scan(body, (params, state), jnp.arange(steps))
        return params, state, values

    params, state, values = run(params)
    line, _ = eqx.combine(params, static)
    return line, state, np.asarray(values), loss


@pytest.fixture(autouse=True)
def _float64(x64):
    yield


@pytest.mark.parametrize(
    "step, steps, tol",
    [
        (OptaxStep(optax.adam(0.05)), 1500, 1e-3),
        (LineSearchStep(optax.lbfgs()), 20, 1e-9),
        (GaussNewtonStep(GaussNewton()), 1, 1e-9),  # dense QR: few parameters
        (GaussNewtonStep(GaussNewton(dense_limit=0, cg_steps=50)), 1, 1e-9),  # matrix-free CG
        (EliminatedGaussNewtonStep(damping=1e-12), 3, 1e-9),
    ],
    ids=["adam", "lbfgs", "gauss_newton_qr", "gauss_newton_cg", "eliminated_gauss_newton"],
)
def test_each_step_kind_finds_the_minimiser_under_jit(step, steps, tol):
    line, _, values, _ = _run(step, steps)
    assert abs(float(line.slope) - 2.0) < tol and abs(float(line.offset) - 1.0) < tol
    assert values[-1] <= values[0]


def test_a_step_on_a_parameter_group_leaves_the_others():
    line, _, _, _ = _run(OptaxStep(optax.adam(0.05), group="slope"), 50)
    assert float(line.offset) == 0.0 and float(line.slope) > 0.5
    line, _, _, _ = _run(GaussNewtonStep(GaussNewton(), group="offset"), 1)
    assert float(line.slope) == 0.0
    np.testing.assert_allclose(float(line.offset), np.mean(Y), rtol=1e-9)  # best with a = 0


def test_variable_projection_keeps_the_solved_group_at_its_optimum():
    step = VariableProjectionStep(OptaxStep(optax.adam(0.05)), solve="offset")
    line, _, _, _ = _run(step, 400)
    # after every step the offset is the best one for the slope it has
    np.testing.assert_allclose(float(line.offset), np.mean(Y - float(line.slope) * X), atol=1e-9)
    assert abs(float(line.slope) - 2.0) < 1e-3


def test_gauss_newton_terminates_once_its_damping_is_at_the_cap():
    step = GaussNewtonStep(GaussNewton())
    _, state, _, loss = _run(step, 1)
    assert not bool(step.terminate(loss, None, state))
    assert bool(step.terminate(loss, None, {"damping": jnp.asarray(MAX_DAMPING)}))


def test_the_eliminated_step_refuses_an_objective_that_is_not_separable():
    model = Line(jnp.asarray(0.0), jnp.asarray(0.0))

    class Plain(AbstractObjective):  # the fit, without its separable form
        terms, dtype, sampler = Fit().terms, jnp.float64, _Fixed()

        def sample(self, *, score=None, key):
            return {}

        def squared(self, model, unknowns, points):
            return Fit().squared(model, unknowns, points)

    params, static = eqx.partition((model, {}), eqx.is_inexact_array)
    with pytest.raises(SpecError, match="eliminated"):
        EliminatedGaussNewtonStep().init(LossFunctions(Plain(), static, model, {}, None), params)
