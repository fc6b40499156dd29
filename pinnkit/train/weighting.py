"""Loss weighting strategies: fixed weights, gradient-norm balancing, causal temporal weights.

- `Fixed`: the weights given in the spec, never changed.
- `GradNorm`: learning-rate annealing by gradient norms (Wang, Teng & Perdikaris, "Understanding
  and mitigating gradient pathologies in physics-informed neural networks", arXiv 2001.04536),
  in the norm form jaxpi uses: every ``every`` steps, ``w_i <- a w_i + (1-a) sum_j |g_j| / |g_i|``
  with ``g_i`` the gradient of term ``i`` with respect to the parameters.
- `Causal`: residuals weighted along time so later times count only once earlier ones are
  resolved (Wang, Sankaran & Perdikaris, "Respecting causality is all you need for training
  physics-informed neural networks", arXiv 2203.07404). The interval of ``t`` is cut into
  ``chunks``; chunk ``i`` gets ``exp(-eps * sum_{k<i} L_k)`` (no gradient through the weights).
  **Patent note:** the paper's authors state the method is patent-protected for commercial use
  at the University of Pennsylvania. pinnkit implements it from the paper, keeps it opt-in
  (``train.causal``), and users with commercial aims must check the licence themselves.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

from ..core.domain import Box


class AbstractWeighting(eqx.Module):
    """How the loss terms' weights change during training."""

    every: eqx.AbstractVar[int]

    @abc.abstractmethod
    def update(self, grads: Mapping[str, object], weights: Mapping[str, Array]) -> dict[str, Array]:
        """New weights from each term's gradient (a pytree like the parameters)."""


class Fixed(AbstractWeighting):
    """Weights stay as given."""

    every: int = 0

    def update(self, grads, weights):
        return dict(weights)


class GradNorm(AbstractWeighting):
    """Gradient-norm balancing (Wang, Teng & Perdikaris 2021, arXiv 2001.04536).

    Arguments:
        every: steps between updates (the weights' gradients cost one backward pass per term).
        alpha: moving-average factor of the weights.
    """

    every: int = 100
    alpha: float = 0.9

    def update(self, grads, weights):
        norms = {k: optax.tree.norm(g) for k, g in grads.items()}
        total = sum(norms.values())
        tiny = jnp.finfo(total.dtype).tiny
        return {
            k: self.alpha * weights[k] + (1 - self.alpha) * total / jnp.maximum(norms[k], tiny)
            for k in weights
        }


class Causal(eqx.Module):
    """Causal weights over time for residual terms (Wang, Sankaran & Perdikaris 2022,
    arXiv 2203.07404; opt-in, see the patent note in this module's docstring).

    Arguments:
        eps: causality strength; larger waits longer for early times.
        chunks: number of time slabs.
    """

    eps: float = 1.0
    chunks: int = 32

    def weights(self, squared: Array, points: Array, box: Box) -> tuple[Array, Array]:
        """Per-slab mean residuals and their causal weights."""
        axis = box.time_axis
        t0, t1 = box.bounds[box.coords[axis]]
        t = points[:, axis]
        idx = jnp.clip(jnp.floor((t - t0) / (t1 - t0) * self.chunks), 0, self.chunks - 1)
        idx = idx.astype(jnp.int32)
        sums = jax.ops.segment_sum(squared, idx, self.chunks)
        counts = jax.ops.segment_sum(jnp.ones_like(squared), idx, self.chunks)
        slab = sums / jnp.maximum(counts, 1.0)
        before = jnp.cumsum(slab) - slab
        return slab, jax.lax.stop_gradient(jnp.exp(-self.eps * before))

    def __call__(self, squared: Array, points: Array, box: Box, weights=None) -> Array:
        """The causally weighted residual loss; ``weights`` fixes the slab weights (a line
        search needs them fixed: weights that move with the parameters but carry no gradient
        make the objective's values and gradients disagree)."""
        slab, w = self.weights(squared, points, box)
        return jnp.mean((w if weights is None else weights) * slab)
