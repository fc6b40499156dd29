"""The spatiotemporal Fourier neural operator (SFNO) and the plain FNO-3D baseline.

Both map the first ``in_steps`` vorticity snapshots of a 2D flow, ``(in_steps, n, n)`` with axes
(time, x, y) as in `pinnkit.reference.ns2d`, to the next ``out_steps`` ones, on any grid fine
enough for their modes. They are Equinox modules: pytrees of float arrays (float32 by default,
float64 under x64) applied to one sample; batch with `jax.vmap`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..errors import SpecError
from ._spectral import OutputSpectralLayer, SpectralConv3d, float_dtype, max_modes


class Pointwise(eqx.Module):
    """A linear map of the channels at every grid point: (W v + b)(x) = W v(x) + b.

    Initialised like `eqx.nn.Linear`: entries uniform in +-1 / sqrt(in_channels).
    """

    weight: Float[Array, "cout cin"]
    bias: Float[Array, " cout"]

    def __init__(self, in_channels: int, out_channels: int, *, dtype=None, key: PRNGKeyArray):
        dtype = float_dtype(dtype)
        bound = 1.0 / in_channels**0.5
        kw, kb = jax.random.split(key)
        self.weight = jax.random.uniform(kw, (out_channels, in_channels), dtype, -bound, bound)
        self.bias = jax.random.uniform(kb, (out_channels,), dtype, -bound, bound)

    def __call__(self, v: Float[Array, "cin ..."]) -> Float[Array, "cout ..."]:
        out = jnp.tensordot(self.weight, v, axes=(1, 0))
        return out + self.bias.reshape(-1, *([1] * (v.ndim - 1)))


class FourierBlock(eqx.Module):
    """One Fourier layer: v -> sigma(F(K v) + W v), K a `SpectralConv3d`, W `Pointwise`, and F a
    pointwise feed-forward network (two `Pointwise` maps with a GELU between; the identity when
    ``expansion`` is 0, as in Li et al.'s FNO-3D)."""

    conv: SpectralConv3d
    skip: Pointwise
    feed_forward: tuple[Pointwise, Pointwise] | None

    def __init__(
        self,
        width: int,
        modes: tuple[int, int, int],
        *,
        expansion: int = 0,
        dtype=None,
        key: PRNGKeyArray,
    ):
        kc, ks, k1, k2 = jax.random.split(key, 4)
        self.conv = SpectralConv3d(width, width, modes, dtype=dtype, key=kc)
        self.skip = Pointwise(width, width, dtype=dtype, key=ks)
        if expansion:
            hidden = expansion * width
            self.feed_forward = (
                Pointwise(width, hidden, dtype=dtype, key=k1),
                Pointwise(hidden, width, dtype=dtype, key=k2),
            )
        else:
            self.feed_forward = None

    def __call__(self, v: Float[Array, "c nx ny nt"], *, activate: bool = True) -> Array:
        y = self.conv(v)
        if self.feed_forward is not None:
            first, second = self.feed_forward
            y = second(jax.nn.gelu(first(y)))
        y = y + self.skip(v)
        return jax.nn.gelu(y) if activate else y


def _check_inputs(inputs: ArrayLike, in_steps: int, dtype) -> Array:
    a = jnp.asarray(inputs)
    if a.ndim != 3 or a.shape[0] != in_steps or a.shape[1] != a.shape[2]:
        raise SpecError(
            f"expected one sample of {in_steps} snapshots on a square grid, shape "
            f"({in_steps}, n, n) with axes (time, x, y); got {tuple(a.shape)} (batch with "
            "jax.vmap)",
            path="inputs",
        )
    return a.astype(dtype)


def _space_features(n: int, dtype) -> Array:
    """sin and cos of 2 pi x and 2 pi y on the grid x_i = i / n: periodic, grid-independent."""
    x = jnp.arange(n, dtype=dtype) * (2 * jnp.pi / n)
    X, Y = jnp.meshgrid(x, x, indexing="ij")
    return jnp.stack([jnp.sin(X), jnp.cos(X), jnp.sin(Y), jnp.cos(Y)])


def decode(
    head: OutputSpectralLayer,
    latent: Float[Array, "c n n nt"],
    last: Float[Array, "n n"],
    times: Float[ArrayLike, " k"],
    *,
    time_scale: float,
    derivative: bool = False,
) -> Array | tuple[Array, Array]:
    """The SFNO's output: omega(theta) = omega_last + w(s(theta)) - w(0), s = theta * time_scale.

    w is the head's temporal series (`OutputSpectralLayer`), theta the time after the last input
    snapshot in snapshot intervals. Subtracting w(0) makes the prediction start exactly at the
    last input: the skip connection carries omega_last, the head only its change.

    Returns:
        omega at the times, (k, n, n); with ``derivative``, also d omega / d theta.
    """
    s = jnp.asarray(times, latent.dtype).reshape(-1) * time_scale
    out = head(latent, jnp.concatenate([jnp.zeros((1,), s.dtype), s]), derivative=derivative)
    if not derivative:
        return last + out[1:] - out[0]
    values, d_values = out
    return last + values[1:] - values[0], d_values[1:] * time_scale


class SFNO(eqx.Module):
    """The spatiotemporal Fourier neural operator of Cao et al. (2024, "Spectral-Refiner:
    Accurate Fine-Tuning of Spatiotemporal Fourier Neural Operator for Turbulent Flows",
    arXiv:2405.17211, ICLR 2025).

    For inputs omega(t_j), j = 0..T-1 (T = ``in_steps``), on an n x n grid:

    1. Lifting with space-time positional features. At every (x, t_j) the features are
       omega(x, t_j), sin and cos of 2 pi x and 2 pi y, tau_j = j / T and sin, cos(pi l tau_j)
       for l = 1..``time_features``; a `Pointwise` map takes them to ``width`` channels, and the
       time axis is zero-padded to N = ``latent_steps`` (a latent time grid, periodic in the
       Fourier layers, longer than the data so the periodic extension has room to wrap).
    2. ``layers`` Fourier layers v -> GELU(F(K v) + W v) over (x, y, t) (`FourierBlock`, with
       the pointwise feed-forward F).
    3. A `Pointwise` projection to ``head_channels`` channels and the output spectral layer
       (`OutputSpectralLayer`), a truncated space-time Fourier series w(x, s) in the latent
       time s, evaluated at any times.
    4. The skip connection: omega(t_last + theta dt) = omega(t_last) + w(s) - w(0) with
       s = theta T / ``out_steps`` (`decode`). theta = 1..``out_steps`` are the trained output
       steps; any other theta in [0, out_steps] (finer in time, not equispaced) evaluates the
       same series, and d omega / d theta is exact.

    Where pinnkit differs from Cao et al.: positional features are added as input channels
    (periodic in space) rather than to a lifted channel; no normalisation layer; the output
    series is evaluated directly at the requested times (not by an inverse FFT of another length)
    and anchored so that it starts at the last input snapshot (theirs adds the last snapshot
    to an unanchored series); the spatial mode sets are symmetric (|k| < m).

    Arguments:
        in_steps: T, input snapshots (10 in the paper).
        out_steps: trained output snapshots (10 to 40 in the paper).
        latent_steps: N, the latent time grid (default 2 T; must exceed T).
        width: channels of the Fourier layers.
        modes: (m_x, m_y, m_t) of the Fourier layers.
        head_modes: (m_x, m_y, m_t) of the output layer (default ``modes``).
        layers: number of Fourier layers.
        expansion: hidden width of the feed-forward networks, in multiples of ``width``.
        head_channels: channels into the output layer.
        time_features: number of sine/cosine pairs of the temporal positional features.
        dtype: a float dtype (default: JAX's default float).
        key: PRNG key.

    Example:
        >>> model = SFNO(in_steps=10, out_steps=10, width=12, modes=(8, 8, 5), key=key)
        >>> future = jax.vmap(model)(inputs)                 # (batch, 10, n, n)
        >>> finer = model(inputs[0], jnp.linspace(0.5, 10, 20))   # 20 steps over the horizon
    """

    lifting: Pointwise
    blocks: tuple[FourierBlock, ...]
    projection: Pointwise
    head: OutputSpectralLayer
    in_steps: int = eqx.field(static=True)
    out_steps: int = eqx.field(static=True)
    latent_steps: int = eqx.field(static=True)
    time_features: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_steps: int = 10,
        out_steps: int = 10,
        latent_steps: int | None = None,
        width: int = 16,
        modes: tuple[int, int, int] = (8, 8, 6),
        head_modes: tuple[int, int, int] | None = None,
        layers: int = 4,
        expansion: int = 2,
        head_channels: int = 1,
        time_features: int = 4,
        dtype=None,
        key: PRNGKeyArray,
    ):
        latent_steps = 2 * in_steps if latent_steps is None else int(latent_steps)
        if in_steps < 1 or out_steps < 1 or latent_steps <= in_steps:
            raise SpecError(
                f"expected in_steps >= 1, out_steps >= 1 and latent_steps > in_steps, got "
                f"{in_steps}, {out_steps}, {latent_steps}",
                path="latent_steps",
            )
        head_modes = modes if head_modes is None else head_modes
        for name, m in (("modes", modes), ("head_modes", head_modes)):
            if len(m) != 3:
                raise SpecError(f"expected three mode counts (x, y, t), got {tuple(m)}", path=name)
            if m[2] > max_modes(latent_steps):
                raise SpecError(
                    f"{name}[2] = {m[2]} temporal modes do not fit {latent_steps} latent steps "
                    f"(at most {max_modes(latent_steps)})",
                    path=name,
                )
        self.in_steps, self.out_steps = int(in_steps), int(out_steps)
        self.latent_steps, self.time_features = latent_steps, int(time_features)
        keys = jax.random.split(key, layers + 3)
        features = 1 + 4 + 1 + 2 * self.time_features
        self.lifting = Pointwise(features, width, dtype=dtype, key=keys[0])
        self.blocks = tuple(
            FourierBlock(width, modes, expansion=expansion, dtype=dtype, key=k)
            for k in keys[1 : layers + 1]
        )
        self.projection = Pointwise(width, head_channels, dtype=dtype, key=keys[-2])
        self.head = OutputSpectralLayer(
            head_channels, head_modes, scale=0.1 / head_channels, dtype=dtype, key=keys[-1]
        )

    @property
    def dtype(self):
        return self.lifting.weight.dtype

    @property
    def time_scale(self) -> float:
        """ds / dtheta: latent time per snapshot interval of the output."""
        return self.in_steps / self.out_steps

    def _time_features(self, dtype) -> Array:
        tau = jnp.arange(self.in_steps, dtype=dtype) / self.in_steps
        l = jnp.arange(1, self.time_features + 1, dtype=dtype)[:, None]
        return jnp.concatenate([tau[None], jnp.sin(jnp.pi * l * tau), jnp.cos(jnp.pi * l * tau)])

    def latent(self, inputs: Float[ArrayLike, "t n n"]) -> Float[Array, "c n n nt"]:
        """Everything before the output layer: the latent v, shape (head_channels, n, n, N)."""
        w = _check_inputs(inputs, self.in_steps, self.dtype)
        n = w.shape[-1]
        w = jnp.moveaxis(w, 0, -1)  # (x, y, t)
        space = jnp.broadcast_to(_space_features(n, w.dtype)[..., None], (4, n, n, self.in_steps))
        time = self._time_features(w.dtype)
        time = jnp.broadcast_to(time[:, None, None, :], (time.shape[0], n, n, self.in_steps))
        v = self.lifting(jnp.concatenate([w[None], space, time]))
        v = jnp.pad(v, ((0, 0), (0, 0), (0, 0), (0, self.latent_steps - self.in_steps)))
        for block in self.blocks:
            v = block(v)
        return self.projection(v)

    def decode(
        self,
        latent: Float[Array, "c n n nt"],
        last: Float[Array, "n n"],
        times: Float[ArrayLike, " k"] | None = None,
        *,
        derivative: bool = False,
    ) -> Array | tuple[Array, Array]:
        """The output layer and skip connection (`decode`) at times theta (default 1..out)."""
        if times is None:
            times = jnp.arange(1, self.out_steps + 1)
        return decode(
            self.head, latent, last, times, time_scale=self.time_scale, derivative=derivative
        )

    def __call__(
        self,
        inputs: Float[ArrayLike, "t n n"],
        times: Float[ArrayLike, " k"] | None = None,
        *,
        derivative: bool = False,
    ) -> Float[Array, "k n n"] | tuple[Float[Array, "k n n"], Float[Array, "k n n"]]:
        """The predicted snapshots.

        Arguments:
            inputs: (in_steps, n, n), axes (time, x, y), the last at time t_last.
            times: theta, the times after t_last in snapshot intervals (default
                1..out_steps: the trained steps).
            derivative: also return d omega / d theta (divide by the snapshot interval for the
                physical time derivative).

        Returns:
            (k, n, n); with ``derivative``, ``(omega, d omega / d theta)``.
        """
        w = _check_inputs(inputs, self.in_steps, self.dtype)
        return self.decode(self.latent(w), w[-1], times, derivative=derivative)


class FNO3d(eqx.Module):
    """The plain FNO-3D of Li et al. (2021, "Fourier Neural Operator for Parametric Partial
    Differential Equations", arXiv:2010.08895; their ``fourier_3d.py``), the baseline.

    The output time grid is the latent one: at each output step t_j = (j + 1) / out_steps the
    features are the ``in_steps`` input snapshots (as channels) and the coordinates (x, y, t_j);
    a `Pointwise` lift to ``width`` channels, zero padding of the time axis by ``padding`` steps,
    ``layers`` Fourier layers v -> GELU(K v + W v) (the last without GELU), the padding cut off,
    and a pointwise network width -> ``projection`` -> 1 with a GELU. It predicts exactly
    ``out_steps`` equispaced steps. Where pinnkit differs: symmetric spatial mode sets.

    Arguments:
        in_steps, out_steps: input and output snapshots.
        width: channels (20 in Li et al.).
        modes: (m_x, m_y, m_t) (8, 8, 8 in Li et al., whose sets hold 2m spatial modes).
        layers: Fourier layers (4).
        padding: zero time steps appended before the Fourier layers (6).
        projection: hidden width of the output network (128).
        dtype: a float dtype (default: JAX's default float).
        key: PRNG key.
    """

    lifting: Pointwise
    blocks: tuple[FourierBlock, ...]
    project_hidden: Pointwise
    project_out: Pointwise
    in_steps: int = eqx.field(static=True)
    out_steps: int = eqx.field(static=True)
    padding: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_steps: int = 10,
        out_steps: int = 10,
        width: int = 20,
        modes: tuple[int, int, int] = (8, 8, 8),
        layers: int = 4,
        padding: int = 6,
        projection: int = 128,
        dtype=None,
        key: PRNGKeyArray,
    ):
        if modes[2] > max_modes(out_steps + padding):
            raise SpecError(
                f"modes[2] = {modes[2]} temporal modes do not fit out_steps + padding = "
                f"{out_steps + padding} (at most {max_modes(out_steps + padding)})",
                path="modes",
            )
        self.in_steps, self.out_steps, self.padding = int(in_steps), int(out_steps), int(padding)
        keys = jax.random.split(key, layers + 3)
        self.lifting = Pointwise(in_steps + 3, width, dtype=dtype, key=keys[0])
        self.blocks = tuple(
            FourierBlock(width, modes, dtype=dtype, key=k) for k in keys[1 : layers + 1]
        )
        self.project_hidden = Pointwise(width, projection, dtype=dtype, key=keys[-2])
        self.project_out = Pointwise(projection, 1, dtype=dtype, key=keys[-1])

    @property
    def dtype(self):
        return self.lifting.weight.dtype

    def __call__(self, inputs: Float[ArrayLike, "t n n"]) -> Float[Array, "k n n"]:
        """The ``out_steps`` predicted snapshots, (out_steps, n, n), from (in_steps, n, n)."""
        w = _check_inputs(inputs, self.in_steps, self.dtype)
        n, nt = w.shape[-1], self.out_steps
        x = jnp.arange(n, dtype=w.dtype) / n
        t = jnp.arange(1, nt + 1, dtype=w.dtype) / nt
        X, Y, Tm = jnp.meshgrid(x, x, t, indexing="ij")
        snapshots = jnp.broadcast_to(jnp.moveaxis(w, 0, -1)[:, :, None, :], (n, n, nt, w.shape[0]))
        v = self.lifting(jnp.concatenate([jnp.moveaxis(snapshots, -1, 0), jnp.stack([X, Y, Tm])]))
        v = jnp.pad(v, ((0, 0), (0, 0), (0, 0), (0, self.padding)))
        for i, block in enumerate(self.blocks):
            v = block(v, activate=i < len(self.blocks) - 1)
        v = v[..., :nt]
        out = self.project_out(jax.nn.gelu(self.project_hidden(v)))[0]
        return jnp.moveaxis(out, -1, 0)
