"""Physics-Informed Gaussians (Kang, Oh, Hong & Park, "PIG: Physics-Informed Gaussians as
Adaptive Parametric Mesh Representations", ICLR 2025, arXiv 2412.05994).

The fields are a small network of a Gaussian feature embedding,

    FE(x) = Σᵢ fᵢ Gᵢ(x),   Gᵢ(x) = exp(-½ (x - μᵢ)ᵀ Σᵢ⁻¹ (x - μᵢ)),
    u(x) = W₂ σ(W₁ FE(x) + b₁) + b₂,

with trainable means ``μᵢ``, covariances ``Σᵢ`` (diagonal, or full through a lower-triangular
precision factor) and feature vectors ``fᵢ``: a mesh whose nodes move to where the solution
needs resolution, followed by one hidden layer. Coordinates are scaled to ``[-1, 1]`` first
so that one learning rate and one initial width suit every box.

Derivatives are closed-form, not nested autodiff. With ``A`` the precision factor
(``Σ⁻¹ = AᵀA``), ``z = A(x - μ)`` and ``y = Aᵀz = Σ⁻¹(x - μ)``,

    ∂ₐG = -yₐ G,     ∂ₐ∂_bG = (yₐ y_b - (Σ⁻¹)ₐ_b) G,

the features' derivatives are those contracted with ``f``, and the one hidden layer is
differentiated by the chain rule (``u_ab = W₂[σ''(s) s_a s_b + σ'(s) s_ab]``, ``s = W₁FE + b₁``).
Requests of total order above two fall back to the model's derivative strategy.

With ``neighbours = K`` each point sees only its K nearest Gaussians (in the Gaussians' own
metric): the selection is one fused pass over all pairs, and everything else — the
exponentials, the derivative factors, the feature sums and the whole backward pass — runs on
the ``points × K`` pairs kept, rather than on ``points × Gaussians``. Gaussians further away
than the K-th contribute ``exp(-q/2)`` with ``q`` beyond the K-th distance, which the
selection makes negligible once the Gaussians are local (the point of the method).
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from ..core.derivatives import AbstractDerivatives, ForwardMode
from ..errors import SpecError
from ._base import AbstractPointModel
from .mlp import ACTIVATIONS, check_activation, glorot_linear


class PIG(AbstractPointModel):
    """Physics-Informed Gaussians over a box.

    Arguments:
        in_lo, in_hi: the box's corners (coordinates are scaled to ``[-1, 1]``).
        field_names: the output fields (one network outputs all of them).
        gaussians: number of Gaussians.
        features: length of each Gaussian's feature vector (the network's input size).
        hidden: width of the one hidden layer.
        activation: a name in `pinnkit.backends.mlp.ACTIVATIONS`.
        sigma: initial standard deviation of every Gaussian, in scaled units (the box is
            ``[-1, 1]`` on every axis).
        covariance: ``"diagonal"`` or ``"full"`` (a trainable precision factor per Gaussian).
        neighbours: if > 0, each point uses only its this many nearest Gaussians.
        derivatives: strategy for requests above second order.
        dtype: parameter dtype.
        key: PRNG key.

    Example:
        >>> pig = PIG((0.0,), (1.0,), ("u",), gaussians=16, key=jax.random.key(0))
        >>> pig(jnp.array([0.5])).shape
        (1,)
    """

    means: jax.Array  # (N, d), scaled coordinates
    scales: jax.Array  # (N, d): the diagonal of A is 1 / scales
    shear: jax.Array | None  # (N, d, d) strictly lower part of A (full covariance)
    features: jax.Array  # (N, k)
    hidden: eqx.nn.Linear
    out: eqx.nn.Linear
    field_names: tuple[str, ...] = eqx.field(static=True)
    derivatives: AbstractDerivatives
    activation: str = eqx.field(static=True)
    neighbours: int = eqx.field(static=True)
    in_lo: tuple[float, ...] = eqx.field(static=True)
    in_hi: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        in_lo: Sequence[float],
        in_hi: Sequence[float],
        field_names: Sequence[str],
        *,
        gaussians: int = 400,
        features: int = 4,
        hidden: int = 16,
        activation: str = "tanh",
        sigma: float = 0.1,
        covariance: str = "diagonal",
        neighbours: int = 0,
        derivatives: AbstractDerivatives | None = None,
        dtype=None,
        key: jax.Array,
    ):
        check_activation(activation)
        if covariance not in ("diagonal", "full"):
            raise SpecError(
                f"covariance must be 'diagonal' or 'full', got {covariance!r}",
                path="model.covariance",
            )
        if neighbours > gaussians:
            raise SpecError(
                f"neighbours ({neighbours}) cannot exceed the number of Gaussians ({gaussians}); "
                f"lower it, or set 0 to use them all",
                path="model.neighbours",
            )
        dtype = dtype or jnp.zeros(()).dtype
        self.in_lo = tuple(float(v) for v in in_lo)
        self.in_hi = tuple(float(v) for v in in_hi)
        self.field_names = tuple(field_names)
        self.activation = activation
        self.neighbours = int(neighbours)
        self.derivatives = derivatives if derivatives is not None else ForwardMode()
        d = len(self.in_lo)
        k_mu, k_f, k_h, k_o = jax.random.split(key, 4)
        self.means = jax.random.uniform(k_mu, (gaussians, d), dtype, -1.0, 1.0)
        self.scales = jnp.full((gaussians, d), sigma, dtype)
        self.shear = jnp.zeros((gaussians, d, d), dtype) if covariance == "full" else None
        self.features = 0.01 * jax.random.normal(k_f, (gaussians, features), dtype)
        self.hidden = glorot_linear(features, hidden, k_h, dtype)
        self.out = glorot_linear(hidden, len(self.field_names), k_o, dtype)

    # --- the embedding ----------------------------------------------------------------------

    def _scale(self, dtype) -> jax.Array:
        """``dz/dx``: the scaling of each coordinate to ``[-1, 1]``."""
        return 2.0 / (jnp.asarray(self.in_hi, dtype) - jnp.asarray(self.in_lo, dtype))

    def _precision_factor(self, means_dtype) -> jax.Array:
        """``A`` per Gaussian, ``(N, d, d)`` lower triangular (full covariance only)."""
        d = self.means.shape[1]
        lower = jnp.tril(self.shear, -1)
        return lower + jnp.eye(d, dtype=means_dtype) / self.scales[:, :, None]

    def _select(self, z: jax.Array):
        """The Gaussians each point uses: all of them, or its K nearest.

        Returns ``(means, scales, shear, features)`` gathered to ``(n, K, ...)`` or, with no
        truncation, broadcastable ``(1, N, ...)`` arrays.
        """
        if self.neighbours == 0:
            shear = None if self.shear is None else self.shear[None]
            return self.means[None], self.scales[None], shear, self.features[None]
        # Selection: one fused pass over all pairs, no gradient; ties are harmless.
        mu, sc = jax.lax.stop_gradient((self.means, self.scales))
        if self.shear is None:
            q = jnp.sum(jnp.square((z[:, None, :] - mu[None]) / sc[None]), -1)
        else:
            a = jax.lax.stop_gradient(self._precision_factor(mu.dtype))
            r = z[:, None, :] - mu[None]
            q = jnp.sum(jnp.square(jnp.einsum("gab,ngb->nga", a, r)), -1)
        _, idx = jax.lax.top_k(-q, self.neighbours)  # (n, K)
        shear = None if self.shear is None else self.shear[idx]
        return self.means[idx], self.scales[idx], shear, self.features[idx]

    def embedding(self, points: jax.Array, orders: Sequence[tuple[int, ...]]) -> dict:
        """The feature embedding and its derivatives in the scaled coordinates.

        Arguments:
            points: ``(n, d)`` physical coordinates.
            orders: multi-indices of total order at most two.

        Returns ``{order: (n, k)}``.
        """
        lo = jnp.asarray(self.in_lo, points.dtype)
        z = (points - lo) * self._scale(points.dtype) - 1.0
        mu, sc, shear, feats = self._select(z)
        r = z[:, None, :] - mu  # (n, N|K, d), fused by XLA into what uses it
        if shear is None:
            w = r / sc  # A r
            y = w / sc  # Aᵀ A r
            g = jnp.exp(-0.5 * jnp.sum(jnp.square(w), -1))  # (n, N|K)

            def precision(a, b):
                return (1.0 / jnp.square(sc[..., a])) if a == b else None

        else:
            d = z.shape[1]
            lower = jnp.tril(shear, -1) + jnp.eye(d, dtype=z.dtype) / sc[..., :, None]
            w = jnp.einsum("...ab,...b->...a", lower, r)
            y = jnp.einsum("...ba,...b->...a", lower, w)
            g = jnp.exp(-0.5 * jnp.sum(jnp.square(w), -1))

            def precision(a, b):
                return jnp.sum(lower[..., :, a] * lower[..., :, b], -1)

        def contract(values):  # Σᵢ values_i f_i
            if self.neighbours == 0:
                return values @ feats[0]
            return jnp.einsum("nk,nkf->nf", values, feats)

        out = {}
        for o in orders:
            axes = [a for a, c in enumerate(o) for _ in range(c)]
            if len(axes) == 0:
                gd = g
            elif len(axes) == 1:
                gd = -y[..., axes[0]] * g
            elif len(axes) == 2:
                a, b = axes
                p = precision(a, b)
                cross = y[..., a] * y[..., b]
                gd = (cross - p) * g if p is not None else cross * g
            else:
                raise ValueError(f"closed-form Gaussian derivatives go to order 2, got {o}")
            out[o] = contract(gd)
        return out

    def __call__(self, x):
        feats = self.embedding(x[None], [(0,) * x.shape[0]])[(0,) * x.shape[0]][0]
        act = ACTIVATIONS[self.activation]
        return self.out(act(self.hidden(feats)))

    # --- closed-form derivatives ------------------------------------------------------------

    def fields_at(self, points, requests):
        closed = [r for r in requests if sum(r.orders) <= 2]
        rest = [r for r in requests if sum(r.orders) > 2]
        out = super().fields_at(points, rest) if rest else {}
        if not closed:
            return out
        orders = sorted({r.orders for r in closed})
        needed = set(orders)
        for o in orders:  # second derivatives need the first ones of their axes
            if sum(o) == 2:
                needed.update(_unit(points.shape[1], a) for a, c in enumerate(o) if c)
        needed.add((0,) * points.shape[1])
        needed = sorted(needed)
        fe = self.embedding(points, needed)
        w1, b1 = self.hidden.weight, self.hidden.bias
        w2, b2 = self.out.weight, self.out.bias
        act = ACTIVATIONS[self.activation]
        s = fe[needed[0]] @ w1.T + b1  # the value's order comes first
        ones = jnp.ones_like(s)
        d1 = lambda v: jax.jvp(act, (v,), (ones,))[1]
        a1, a2 = jax.jvp(d1, (s,), (ones,))  # σ'(s), σ''(s)
        ds = {o: fe[o] @ w1.T for o in needed if sum(o) > 0}
        scale = self._scale(points.dtype)
        column = {name: i for i, name in enumerate(self.field_names)}
        values = {}
        for o in orders:
            axes = [a for a, c in enumerate(o) for _ in range(c)]
            if not axes:
                h = act(s) @ w2.T + b2
            elif len(axes) == 1:
                h = (a1 * ds[o]) @ w2.T
            else:
                a, b = axes
                first = a2 * ds[_unit(len(o), a)] * ds[_unit(len(o), b)]
                h = (first + a1 * ds[o]) @ w2.T
            factor = jnp.prod(scale ** jnp.asarray(o, scale.dtype))
            values[o] = h * factor
        for r in closed:
            out[r.name] = values[r.orders][:, column[r.field]]
        return out


def _unit(d: int, a: int) -> tuple[int, ...]:
    return tuple(int(i == a) for i in range(d))


def build_pig(problem, config, *, dtype, key):
    """The spec's ``model: {backend: pig}``."""
    from ._base import BuiltModel, derivative_strategy
    from .mlp import with_constraints

    net = PIG(
        problem.box.lo,
        problem.box.hi,
        problem.fields,
        gaussians=config.gaussians,
        features=config.features,
        hidden=config.hidden,
        activation=config.activation,
        sigma=config.sigma,
        covariance=config.covariance,
        neighbours=config.neighbours,
        derivatives=derivative_strategy(config),
        dtype=dtype,
        key=key,
    )
    model, enforced = with_constraints(net, problem, config.hard_constraints)
    return BuiltModel(model, enforced, periodic_exact=False)
