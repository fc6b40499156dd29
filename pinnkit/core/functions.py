"""Unknown functions of an inverse problem: a conductivity ``k(u)``, a reaction rate ``r(c)``.

A spec declares them under ``functions:`` (`pinnkit.spec.schema.FunctionConfig`); each is a
small MLP of its named arguments, trained with the fields and the scalar unknowns. Residuals
call it like a built-in function, ``k(u)``, and its partial derivatives by argument name,
``k_u(u)`` (exact, by forward-mode autodiff of the network; the chain rule of a flux
``(k(u) u_x)_x = k(u) u_xx + k_u(u) u_x²`` is written out in the residual). An optional
``range: [lo, hi]`` squashes the output into that interval (``lo + (hi - lo) σ(·)``), which
keeps a conductivity positive.

Its weights are an unknown like any other (``unknowns[name]``, a dict of arrays), so the
trainer, freezing, checkpoints and ``--resume`` treat them alike.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": jnp.tanh, "sin": jnp.sin, "gelu": jax.nn.gelu, "softplus": jax.nn.softplus}


@dataclasses.dataclass(frozen=True)
class UnknownFunction:
    """A trainable function ``name(args...)``: an MLP of ``depth`` hidden layers of ``width``.

    Arguments:
        name: how residuals call it.
        args: the names of its arguments (they name its derivatives: ``k_u``).
        width, depth: the hidden layers.
        activation: one of `ACTIVATIONS`.
        range: ``(lo, hi)`` to squash the output into, or None.
        scale: per argument, the typical size of its inputs (inputs are divided by it).
    """

    name: str
    args: tuple[str, ...]
    width: int = 16
    depth: int = 2
    activation: str = "tanh"
    range: tuple[float, float] | None = None
    scale: tuple[float, ...] | None = None

    @property
    def derivative_names(self) -> dict[str, int]:
        """``{"k_u": 0}``: each partial derivative's name and its argument's index."""
        return {f"{self.name}_{a}": i for i, a in enumerate(self.args)}

    @property
    def arity(self) -> dict[str, int]:
        """Every callable name it gives expressions, with its number of arguments."""
        return {self.name: len(self.args), **{d: len(self.args) for d in self.derivative_names}}

    def init(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Glorot-normal weights, zero biases (float64 NumPy; cast by the trainer)."""
        rng = np.random.default_rng(seed)
        sizes = [len(self.args)] + [self.width] * self.depth + [1]
        out = {}
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            std = math.sqrt(2.0 / (n_in + n_out))
            out[f"w{i}"] = rng.normal(0.0, std, (n_in, n_out))
            out[f"b{i}"] = np.zeros(n_out)
        return out

    def apply(self, weights: Mapping[str, jax.Array], *args) -> jax.Array:
        """The value at the arguments (arrays that broadcast together)."""
        args = jnp.broadcast_arrays(*(jnp.asarray(a) for a in args))
        shape = args[0].shape
        x = jnp.stack([a.reshape(-1) for a in args], axis=-1)
        if self.scale is not None:
            x = x / jnp.asarray(self.scale, x.dtype)
        act = ACTIVATIONS[self.activation]
        for i in range(self.depth + 1):
            w, b = weights[f"w{i}"], weights[f"b{i}"]
            x = x @ w.astype(x.dtype) + b.astype(x.dtype)
            if i < self.depth:
                x = act(x)
        y = x[:, 0]
        if self.range is not None:
            lo, hi = self.range
            y = lo + (hi - lo) * jax.nn.sigmoid(y)
        return y.reshape(shape)

    def partial(self, weights, index: int, *args) -> jax.Array:
        """``∂f/∂args[index]`` at the arguments, by forward mode (the network acts pointwise,
        so one JVP with a unit tangent in that argument gives every point's derivative)."""
        args = jnp.broadcast_arrays(*(jnp.asarray(a) for a in args))
        tangents = [
            jnp.ones_like(a) if i == index else jnp.zeros_like(a) for i, a in enumerate(args)
        ]
        return jax.jvp(lambda *a: self.apply(weights, *a), tuple(args), tuple(tangents))[1]

    def callables(self, weights) -> dict[str, object]:
        """The names expressions call, bound to these weights."""
        out = {self.name: lambda *a: self.apply(weights, *a)}
        for name, index in self.derivative_names.items():
            out[name] = lambda *a, index=index: self.partial(weights, index, *a)
        return out


def function_env(
    functions: Sequence[UnknownFunction], unknowns: Mapping[str, object]
) -> dict[str, object]:
    """The callables of every unknown function, at the weights in ``unknowns``."""
    out = {}
    for f in functions:
        out.update(f.callables(unknowns[f.name]))
    return out
