"""The MLP backend: a fully connected network ``x -> fields`` (Raissi, Perdikaris & Karniadakis,
"Physics-informed neural networks", J. Comput. Phys. 2019).

Inputs are scaled to ``[-1, 1]`` by the domain box; periodic coordinates enter as
``cos``/``sin`` of their phase so periodicity holds exactly (as in jaxpi); an optional random
Fourier-feature embedding (Tancik et al. 2020, arXiv 2006.10739; Wang, Wang & Perdikaris 2021,
arXiv 2012.10047) fights spectral bias. Weights start Glorot-normal, biases zero.

``interfaces`` enrich the input with ``max(0, φ(x))^p`` for level sets ``φ = 0`` where the
solution is known to be only ``C^{p-1}``: a jump in a coefficient or a potential at ``x = a``
makes ``u''`` jump there, and a smooth network cannot bend that sharply, while
``N(x, max(0, x - a)^2)`` represents exactly the functions that are smooth on each side and
``C^1`` across (the enrichment of XFEM, applied to a network's input).
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..core.derivatives import AbstractDerivatives, ForwardMode
from ..errors import SpecError
from ._base import AbstractPointModel, Frozen

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "sin": jnp.sin,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "elu": jax.nn.elu,
}


def check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise SpecError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}",
            path="model.activation",
        )


def glorot_linear(n_in: int, n_out: int, key, dtype) -> eqx.nn.Linear:
    """A linear layer with Glorot-normal weights and zero biases, in ``dtype``."""
    lin = eqx.nn.Linear(n_in, n_out, key=key, dtype=dtype)
    std = np.sqrt(2.0 / (n_in + n_out))
    # astype: std is a NumPy float64, which would promote the weights when x64 is on.
    weight = (std * jax.random.normal(key, (n_out, n_in), dtype)).astype(dtype)
    lin = eqx.tree_at(lambda m: m.weight, lin, weight)
    return eqx.tree_at(lambda m: m.bias, lin, jnp.zeros((n_out,), dtype))


class MLP(AbstractPointModel):
    """A multilayer perceptron over a box domain.

    Arguments:
        in_lo, in_hi: the box's lower and upper corners (inputs are scaled to ``[-1, 1]``).
        field_names: the output fields.
        width, depth: hidden width and number of hidden layers.
        activation: a name in `ACTIVATIONS`.
        periodic: ``(axis, ...)`` coordinates embedded as ``cos``/``sin`` of their phase.
        harmonics: how many harmonics of each periodic coordinate to feed in.
        fourier_features: number of random Fourier features (0 for none).
        fourier_scale: standard deviation of their frequencies (in units of the scaled inputs).
        interfaces: functions ``φ(x)`` of a point whose zero sets are interfaces; each adds
            the input ``(max(0, φ) / s)^power`` (``s`` half the box's largest side).
        interface_power: ``p``: 2 for a jump in the second derivative, 1 for a kink.
        derivatives: the derivative strategy.
        dtype: parameter dtype.
        key: PRNG key.

    Example:
        >>> net = MLP((0.0, 0.0), (1.0, 1.0), ("u",), width=32, depth=3, key=jax.random.key(0))
        >>> net(jnp.array([0.5, 0.5])).shape
        (1,)
    """

    layers: tuple[eqx.nn.Linear, ...]
    field_names: tuple[str, ...] = eqx.field(static=True)
    derivatives: AbstractDerivatives
    activation: str = eqx.field(static=True)
    in_lo: tuple[float, ...] = eqx.field(static=True)
    in_hi: tuple[float, ...] = eqx.field(static=True)
    periodic: tuple[int, ...] = eqx.field(static=True)
    harmonics: int = eqx.field(static=True)
    fourier: Frozen | None
    interfaces: tuple = eqx.field(static=True)
    interface_power: int = eqx.field(static=True)

    def __init__(
        self,
        in_lo: Sequence[float],
        in_hi: Sequence[float],
        field_names: Sequence[str],
        *,
        width: int = 64,
        depth: int = 4,
        activation: str = "tanh",
        periodic: Sequence[int] = (),
        harmonics: int = 1,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        interfaces: Sequence = (),
        interface_power: int = 2,
        derivatives: AbstractDerivatives | None = None,
        dtype=None,
        key: jax.Array,
    ):
        check_activation(activation)
        if width < 1 or depth < 1:
            raise SpecError(f"width and depth must be >= 1, got {width} and {depth}", path="model")
        dtype = dtype or jnp.zeros(()).dtype
        self.in_lo = tuple(float(v) for v in in_lo)
        self.in_hi = tuple(float(v) for v in in_hi)
        self.field_names = tuple(field_names)
        self.activation = activation
        self.periodic = tuple(periodic)
        self.harmonics = int(harmonics)
        self.interfaces = tuple(interfaces)
        self.interface_power = int(interface_power)
        self.derivatives = derivatives if derivatives is not None else ForwardMode()
        dim = len(self.in_lo)
        n_in = dim + len(self.periodic) * (2 * self.harmonics - 1) + len(self.interfaces)
        k_ff, k_layers = jax.random.split(key)
        if fourier_features:
            freqs = fourier_scale * jax.random.normal(k_ff, (fourier_features, n_in), dtype)
            self.fourier = Frozen(freqs)
            n_in = 2 * fourier_features
        else:
            self.fourier = None
        sizes = [n_in] + [width] * depth + [len(self.field_names)]
        keys = jax.random.split(k_layers, len(sizes) - 1)
        layers = []
        for k, (a, b) in zip(keys, zip(sizes[:-1], sizes[1:])):
            layers.append(glorot_linear(a, b, k, dtype))
        self.layers = tuple(layers)

    def embed(self, x):
        lo = jnp.asarray(self.in_lo, x.dtype)
        hi = jnp.asarray(self.in_hi, x.dtype)
        z = 2.0 * (x - lo) / (hi - lo) - 1.0
        parts = [z[i : i + 1] for i in range(z.shape[0]) if i not in self.periodic]
        for i in self.periodic:
            phase = jnp.pi * (z[i] + 1.0)  # one period over the interval
            k = jnp.arange(1, self.harmonics + 1, dtype=x.dtype)
            parts += [jnp.cos(k * phase), jnp.sin(k * phase)]
        scale = jnp.max(hi - lo) / 2
        for phi in self.interfaces:
            parts.append(jnp.atleast_1d(jnp.maximum(phi(x), 0) / scale) ** self.interface_power)
        z = jnp.concatenate(parts)
        if self.fourier is not None:
            proj = 2 * jnp.pi * self.fourier.value @ z
            z = jnp.concatenate([jnp.cos(proj), jnp.sin(proj)])
        return z

    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        h = self.embed(x)
        for layer in self.layers[:-1]:
            h = act(layer(h))
        return self.layers[-1](h)


def with_constraints(
    model: AbstractPointModel, problem, mode
) -> tuple[AbstractPointModel, frozenset]:
    """Wrap a point model so the problem's value conditions hold exactly (``mode`` True or
    "auto"); returns the model and the enforced ``(condition, field)`` pairs."""
    from ..core.constraints import hard_constraints
    from ._base import Constrained

    if mode is False:
        return model, frozenset()
    lifts, enforced = hard_constraints(problem)
    if not lifts:
        return model, frozenset()
    return Constrained(model, tuple(lifts.get(f) for f in problem.fields)), enforced


def build_mlp(problem, config, *, dtype, key):
    """The spec's ``model: {backend: mlp}``."""
    from ._base import BuiltModel, derivative_strategy

    net = MLP(
        problem.box.lo,
        problem.box.hi,
        problem.fields,
        width=config.width,
        depth=config.depth,
        activation=config.activation,
        periodic=problem.periodic_axes,
        harmonics=config.harmonics,
        fourier_features=config.fourier_features,
        fourier_scale=config.fourier_scale,
        interfaces=_interfaces(problem, config),
        interface_power=config.interface_power,
        derivatives=derivative_strategy(config),
        dtype=dtype,
        key=key,
    )
    model, enforced = with_constraints(net, problem, config.hard_constraints)
    return BuiltModel(model, enforced, periodic_exact=bool(problem.periodic_axes))


def _interfaces(problem, config) -> tuple:
    """The spec's ``interfaces`` (expressions of the coordinates) as functions of a point."""
    from ..core.expressions import parse_expression

    coords = problem.coords
    out = []
    for i, text in enumerate(config.interfaces):
        expr = parse_expression(
            text, symbols=[*coords, *problem.params], path=f"model.interfaces[{i}]"
        )
        params = dict(problem.params)
        out.append(_Level(expr, tuple(coords), tuple(params.items())))
    return tuple(out)


class _Level:
    """``φ(x)`` of one point from an expression of the coordinates (hashable, for jit)."""

    def __init__(self, expr, coords, params):
        self.expr, self.coords, self.params = expr, coords, params

    def __call__(self, x):
        env = {c: x[i] for i, c in enumerate(self.coords)}
        env.update({k: jnp.asarray(v, x.dtype) for k, v in self.params})
        return jnp.asarray(self.expr(env), x.dtype)
