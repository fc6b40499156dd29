"""Flax networks (nnx and linen) as pinnkit models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnkit
from pinnkit import Objective, from_flax, load_spec
from pinnkit.core.derivatives import NestedReverse

flax = pytest.importorskip("flax")
from flax import linen, nnx  # noqa: E402
from test_trainer import small_spec  # noqa: E402


def nnx_net():
    return nnx.Sequential(
        nnx.Linear(1, 16, rngs=nnx.Rngs(0)), nnx.tanh, nnx.Linear(16, 1, rngs=nnx.Rngs(1))
    )


class LinenNet(linen.Module):
    @linen.compact
    def __call__(self, x):
        return linen.Dense(1)(jnp.tanh(linen.Dense(16)(x)))


def linen_model():
    net = LinenNet()
    return from_flax(net, ["u"], params=net.init(jax.random.key(0), jnp.zeros(1)))


@pytest.mark.parametrize("make", [lambda: from_flax(nnx_net(), ["u"]), linen_model])
def test_flax_model_trains_with_the_pinnkit_trainer(make):
    problem = load_spec(small_spec()).problem()
    model = make()
    objective = Objective(problem, interior=64, boundary=8)
    trained, _, record = pinnkit.train(
        problem,
        model,
        phases=[pinnkit.Phase(__import__("optax").adam(1e-2), 200)],
        objective=objective,
        chunk=50,
        key=jax.random.key(0),
    )
    losses = [h["loss"] for h in record.history]
    assert record.status == "ok" and losses[-1] < 0.1 * losses[0]
    # Derivatives of a Flax model agree with the nested reverse-mode oracle.
    x = jnp.array([0.3])
    ours = trained.derivatives(trained, x, [(1,), (2,)])
    oracle = NestedReverse()(trained, x, [(1,), (2,)])
    np.testing.assert_allclose(ours, oracle, rtol=1e-4, atol=1e-5)
