"""Collocation samplers: where residuals and conditions are evaluated.

A sampler draws ``n`` points in a region of the box (the interior, or a face: a box with one
coordinate pinned) from a PRNG key, inside the compiled training step, so resampling every
step costs no Python. Uniform and randomly shifted Sobol points draw fresh sets; a grid is
fixed (optionally jittered); residual-based adaptive distribution (RAD: Wu, Zhu, Tan, Kartha
& Lu, "A comprehensive study of non-adaptive and residual-based adaptive sampling for PINNs",
arXiv 2207.10289) draws candidates and keeps them with probability proportional to
``|r|^k / mean |r|^k + c``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from scipy.stats import qmc

Score = Callable[[Float[Array, "n d"]], Float[Array, " n"]]


class AbstractSampler(eqx.Module):
    """Draws points in ``[lo, hi]`` (a coordinate with ``lo == hi`` is pinned: a face)."""

    @abc.abstractmethod
    def __call__(
        self,
        lo: Float[Array, " d"],
        hi: Float[Array, " d"],
        n: int,
        *,
        score: Score | None = None,
        key: PRNGKeyArray,
    ) -> Float[Array, "n d"]: ...

    @property
    def resamples(self) -> bool:
        """Whether a new draw gives new points (a fixed grid does not)."""
        return True


class Uniform(AbstractSampler):
    """Independent uniform points."""

    def __call__(self, lo, hi, n, *, score=None, key):
        u = jax.random.uniform(key, (n, lo.shape[0]), lo.dtype)
        return lo + u * (hi - lo)


_SOBOL_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _sobol(n: int, d: int) -> np.ndarray:
    if (n, d) not in _SOBOL_CACHE:
        m = int(np.ceil(np.log2(max(n, 2))))
        pts = qmc.Sobol(d, scramble=True, seed=12345).random_base2(m)[:n]
        _SOBOL_CACHE[(n, d)] = pts
    return _SOBOL_CACHE[(n, d)]


class Sobol(AbstractSampler):
    """A scrambled Sobol set with a fresh random shift modulo 1 each draw (Cranley–Patterson
    rotation): low discrepancy like Sobol, and new points every draw like uniform sampling."""

    def __call__(self, lo, hi, n, *, score=None, key):
        base = jnp.asarray(_sobol(n, lo.shape[0]), lo.dtype)
        shift = jax.random.uniform(key, (lo.shape[0],), lo.dtype)
        return lo + jnp.mod(base + shift, 1.0) * (hi - lo)


class Grid(AbstractSampler):
    """A tensor grid of cell centres with about ``n`` points, ``ceil(n^(1/k))`` per free axis
    (then the first ``n`` taken); ``jitter`` moves every point randomly within its cell."""

    jitter: bool = False

    @property
    def resamples(self) -> bool:
        return self.jitter

    def __call__(self, lo, hi, n, *, score=None, key):
        d = lo.shape[0]
        per = int(np.ceil(n ** (1.0 / d)))
        centres = (np.arange(per) + 0.5) / per
        mesh = np.stack(np.meshgrid(*([centres] * d), indexing="ij"), -1).reshape(-1, d)
        # Spread the kept points over the grid instead of taking a corner of it.
        idx = np.round(np.linspace(0, mesh.shape[0] - 1, n)).astype(int)
        u = jnp.asarray(mesh[idx], lo.dtype)
        if self.jitter:
            u = u + (jax.random.uniform(key, u.shape, lo.dtype) - 0.5) / per
        return lo + u * (hi - lo)


class RAD(AbstractSampler):
    """Residual-based adaptive distribution (Wu et al. 2023, arXiv 2207.10289).

    Arguments:
        k, c: the density is ``|r|^k / mean(|r|^k) + c`` (the paper's defaults ``k=1, c=1``).
        candidates: how many uniform candidates to score per kept point.
    """

    k: float = 1.0
    c: float = 1.0
    candidates: int = 4

    def __call__(self, lo, hi, n, *, score=None, key):
        k_cand, k_pick = jax.random.split(key)
        cand = Uniform()(lo, hi, n * self.candidates, key=k_cand)
        if score is None:
            return cand[:n]
        r = jnp.abs(jax.lax.stop_gradient(score(cand))) ** self.k
        p = r / jnp.maximum(jnp.mean(r), jnp.finfo(r.dtype).tiny) + self.c
        idx = jax.random.choice(k_pick, cand.shape[0], (n,), replace=False, p=p / p.sum())
        return cand[idx]


SAMPLERS: dict[str, type[AbstractSampler]] = {
    "uniform": Uniform,
    "sobol": Sobol,
    "grid": Grid,
    "rad": RAD,
}
