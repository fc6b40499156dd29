"""Constructive solid geometry: primitives, boolean operations and rigid transforms (issue 17).

A geometry answers, vectorised over points ``x`` of shape ``(..., d)``:

- `AbstractGeometry.sdf`: the signed distance, negative inside. Exact for every primitive
  (the ellipse's by Newton's method on the closest point); for a boolean combination the
  usual min/max composition, which is exact outside a union and a lower bound elsewhere, and
  has the right sign and zero set everywhere;
- `AbstractGeometry.contains`: membership, ``sdf(x) <= tol``;
- `AbstractGeometry.pieces`: the named boundary pieces (each primitive's boundary, a box's
  faces labelled ``"x=0"``-style), each able to sample points uniformly by arc length or area
  with their outward normals.

Sampling (`sample_interior`, `sample_boundary`) has fixed output shapes, so it runs under
``jit``: draw ``m`` candidates uniformly (in the bounding box, or on the union of the pieces in
proportion to their measure), keep those inside (or on the final boundary, for the pieces of
a boolean combination), and take the first ``n`` kept in the candidates' random order. The
candidates are independent and uniform, so the kept ones are uniform on what is kept: there
is no bias from rejection. ``m`` is set from the kept fraction, estimated once by Monte Carlo
when the sampler is made, with a safety factor; `kept_fraction` is returned so a caller can
check that enough were kept.

Coincident boundaries of a union (two boxes sharing a face) are reported as boundary: the
shared face has zero distance to both pieces. Build such domains as one primitive, or as a
difference, where it matters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import SpecError

Points = Float[Array, "... d"]


def _norm(v: Array) -> Array:
    """The Euclidean norm over the last axis with a finite gradient at zero (0 there), so a
    distance can be differentiated on the boundary itself."""
    s = jnp.sum(v * v, axis=-1)
    positive = s > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, s, 1.0)), 0.0)


def _vec(v) -> tuple[float, ...]:
    return tuple(np.asarray(v, float).ravel().tolist())


def _mat(v) -> tuple[tuple[float, ...], ...]:
    return tuple(map(tuple, np.atleast_2d(np.asarray(v, float)).tolist()))


class Piece(eqx.Module):
    """One boundary piece of a primitive: where conditions can be named (``on: hole1``)."""

    name: str = eqx.field(static=True)
    label: str = eqx.field(static=True)  # a face of a box ("x=0"), else ""
    primitive: AbstractGeometry
    index: int = eqx.field(static=True)  # which of the primitive's parts
    sign: float = eqx.field(static=True)  # -1 where a difference turns the normal around

    @property
    def measure(self) -> float:
        return self.primitive._part_measure(self.index)

    def sample(self, key: PRNGKeyArray, n: int) -> tuple[Points, Points]:
        """``n`` points uniform on this piece (by length or area) and their outward normals
        (outward from the final domain: ``sign`` applied)."""
        x, normal = self.primitive._sample_part(key, self.index, n)
        return x, self.sign * normal


class AbstractGeometry(eqx.Module):
    """A region of R^d. Subclasses give `sdf`, `bbox` and `pieces`."""

    def sdf(self, x: Points) -> Float[Array, "..."]:
        raise NotImplementedError

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def pieces(self) -> tuple[Piece, ...]:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        return len(self.bbox()[0])

    def _a(self, name: str) -> np.ndarray:
        """A static field (kept as a tuple, hashable) as a float array."""
        return np.asarray(getattr(self, name), float)

    def contains(self, x: Points, tol: float = 0.0) -> Array:
        return self.sdf(x) <= tol

    def names(self) -> list[str]:
        """The names a condition may use: each primitive's, and ``name:label`` for faces."""
        out = []
        for p in self.pieces():
            for n in (p.name, f"{p.name}:{p.label}" if p.label else None):
                if n is not None and n not in out:
                    out.append(n)
        return out

    # booleans by operator, as in most CSG libraries
    def __or__(self, other):
        return Union(self, other)

    def __and__(self, other):
        return Intersection(self, other)

    def __sub__(self, other):
        return Difference(self, other)


class _Primitive(AbstractGeometry):
    name: str = eqx.field(static=True, kw_only=True, default="")

    def pieces(self) -> tuple[Piece, ...]:
        return tuple(
            Piece(self.name, self._part_label(i), self, i, 1.0) for i in range(self._parts())
        )

    def _parts(self) -> int:
        return 1

    def _part_label(self, i: int) -> str:
        return ""

    def _part_measure(self, i: int) -> float:
        raise NotImplementedError

    def _sample_part(self, key, i: int, n: int) -> tuple[Points, Points]:
        raise NotImplementedError


def _axis_names(d: int) -> tuple[str, ...]:
    return ("x", "y", "z")[:d] if d <= 3 else tuple(f"x{i}" for i in range(d))


class Box(_Primitive):
    """An axis-aligned box ``[lo, hi]`` (an interval in 1D, a rectangle in 2D); its faces are
    pieces labelled ``x=lo``, ``x=hi``, ``y=lo``... with the numbers written as given."""

    lo: tuple = eqx.field(static=True, converter=_vec)
    hi: tuple = eqx.field(static=True, converter=_vec)

    def __check_init__(self):
        if (
            self._a("lo").shape != self._a("hi").shape
            or self._a("lo").ndim != 1
            or not np.all(self._a("lo") < self._a("hi"))
        ):
            raise SpecError(
                f"a box needs lo < hi in every coordinate, got {self._a('lo')}, {self._a('hi')}"
            )

    def sdf(self, x):
        c, h = (self._a("lo") + self._a("hi")) / 2, (self._a("hi") - self._a("lo")) / 2
        q = jnp.abs(x - c) - h
        outside = _norm(jnp.maximum(q, 0.0))
        return outside + jnp.minimum(jnp.max(q, axis=-1), 0.0)

    def bbox(self):
        return self._a("lo"), self._a("hi")

    def _parts(self):
        return 2 * len(self._a("lo"))

    def _part_label(self, i):
        axis, side = divmod(i, 2)
        value = (self._a("lo"), self._a("hi"))[side][axis]
        return f"{_axis_names(len(self._a('lo')))[axis]}={value:g}"

    def _part_measure(self, i):
        axis = i // 2
        sides = np.delete(self._a("hi") - self._a("lo"), axis)
        return float(np.prod(sides)) if sides.size else 1.0

    def _sample_part(self, key, i, n):
        axis, side = divmod(i, 2)
        d = len(self._a("lo"))
        x = jax.random.uniform(key, (n, d), minval=self._a("lo"), maxval=self._a("hi"))
        x = x.at[:, axis].set((self._a("lo"), self._a("hi"))[side][axis])
        normal = np.zeros(d)
        normal[axis] = 1.0 if side else -1.0
        return x, jnp.broadcast_to(jnp.asarray(normal, x.dtype), (n, d))


def Interval(a: float, b: float, *, name: str = "") -> Box:  # noqa: N802 - a constructor
    """``[a, b]`` on the line: a one-dimensional `Box`."""
    return Box([a], [b], name=name)


Rectangle = Box


class Ball(_Primitive):
    """A disk (2D) or ball (any d) of centre ``center`` and radius ``radius``."""

    center: tuple = eqx.field(static=True, converter=_vec)
    radius: float = eqx.field(static=True, converter=float)

    def __check_init__(self):
        if not self.radius > 0 or self._a("center").ndim != 1:
            raise SpecError(f"a disk or ball needs a centre and radius > 0, got {self.radius}")

    def sdf(self, x):
        return _norm(x - self._a("center")) - self.radius

    def bbox(self):
        return self._a("center") - self.radius, self._a("center") + self.radius

    def _part_measure(self, i):
        d = len(self._a("center"))
        return 2 * math.pi ** (d / 2) / math.gamma(d / 2) * self.radius ** (d - 1)

    def _sample_part(self, key, i, n):
        g = jax.random.normal(key, (n, len(self._a("center"))))
        normal = g / jnp.linalg.norm(g, axis=-1, keepdims=True)
        return self._a("center") + self.radius * normal, normal


Disk = Ball


class Ellipse(_Primitive):
    """An axis-aligned ellipse of centre ``center`` and semi-axes ``axes`` (2D). Its distance
    is exact: the closest point's angle by Newton's method (fixed iterations, in the first
    quadrant by symmetry). Boundary points are uniform by arc length (the angle inverted from
    a tabulated arc length)."""

    center: tuple = eqx.field(static=True, converter=_vec)
    axes: tuple = eqx.field(static=True, converter=_vec)

    def __check_init__(self):
        if (
            self._a("center").shape != (2,)
            or self._a("axes").shape != (2,)
            or not np.all(self._a("axes") > 0)
        ):
            raise SpecError(
                f"an ellipse needs a 2D centre and two semi-axes > 0, got {self._a('axes')}"
            )

    def sdf(self, x):
        a, b = self._a("axes")
        p = jnp.abs(x - self._a("center"))
        inside = (p[..., 0] / a) ** 2 + (p[..., 1] / b) ** 2 <= 1.0
        px, py = p[..., 0], p[..., 1]

        def newton(theta, _):
            c, s = jnp.cos(theta), jnp.sin(theta)
            dx, dy = a * c - px, b * s - py
            f = -a * s * dx + b * c * dy  # d/dθ of half the squared distance
            df = a * a * s * s + b * b * c * c - a * c * dx - b * s * dy
            step = f / jnp.where(df > 1e-30, df, 1e-30)
            return jnp.clip(theta - step, 0.0, jnp.pi / 2), None

        # three starts (the ends of the quarter and the radial angle): at the centre and on
        # the axes the radial start sits on a stationary point that is not the closest one
        d = None
        for start in (
            jnp.zeros_like(px),
            jnp.full_like(px, jnp.pi / 2),
            jnp.arctan2(a * py, b * px),
        ):
            theta, _ = jax.lax.scan(newton, start, None, length=16)
            q = jnp.stack([a * jnp.cos(theta), b * jnp.sin(theta)], axis=-1)
            di = _norm(p - q)
            d = di if d is None else jnp.minimum(d, di)
        return jnp.where(inside, -d, d)

    def bbox(self):
        return self._a("center") - self._a("axes"), self._a("center") + self._a("axes")

    def _table(self):
        t = np.linspace(0.0, 2 * np.pi, 4097)
        speed = np.hypot(self._a("axes")[0] * np.sin(t), self._a("axes")[1] * np.cos(t))
        arc = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2 * np.diff(t))])
        return t, arc

    def _part_measure(self, i):
        return float(self._table()[1][-1])

    def _sample_part(self, key, i, n):
        t, arc = self._table()
        s = jax.random.uniform(key, (n,), maxval=arc[-1])
        theta = jnp.interp(s, arc, t)
        a, b = self._a("axes")
        x = self._a("center") + jnp.stack([a * jnp.cos(theta), b * jnp.sin(theta)], axis=-1)
        g = jnp.stack([jnp.cos(theta) / a, jnp.sin(theta) / b], axis=-1)
        return x, g / jnp.linalg.norm(g, axis=-1, keepdims=True)


class Polygon(_Primitive):
    """A simple polygon given by its vertices in order (either orientation), 2D. Exact
    distance to the nearest edge, sign by the even-odd rule; boundary points uniform by
    length over the edges, normals outward."""

    vertices: tuple = eqx.field(static=True, converter=_mat)

    def __check_init__(self):
        v = self._a("vertices")
        if v.ndim != 2 or v.shape[1] != 2 or len(v) < 3:
            raise SpecError(f"a polygon needs at least 3 vertices [x, y], got shape {v.shape}")
        if abs(self._signed_area()) < 1e-14 * np.ptp(v) ** 2:
            raise SpecError("the polygon's vertices enclose no area")

    def _signed_area(self) -> float:
        v, w = self._a("vertices"), np.roll(self._a("vertices"), -1, axis=0)
        return 0.5 * float(np.sum(v[:, 0] * w[:, 1] - w[:, 0] * v[:, 1]))

    def _edges(self):
        v = self._a("vertices") if self._signed_area() > 0 else self._a("vertices")[::-1]
        return v, np.roll(v, -1, axis=0)  # counter-clockwise

    def sdf(self, x):
        a, b = self._edges()
        e = b - a
        w = x[..., None, :] - a
        t = jnp.clip(jnp.sum(w * e, -1) / jnp.sum(e * e, -1), 0.0, 1.0)
        d = jnp.min(_norm(w - t[..., None] * e), axis=-1)
        y = x[..., None, 1]
        crosses = (a[:, 1] > y) != (b[:, 1] > y)
        at = a[:, 0] + (y - a[:, 1]) * e[:, 0] / jnp.where(e[:, 1] == 0, 1.0, e[:, 1])
        inside = jnp.sum(crosses & (x[..., None, 0] < at), axis=-1) % 2 == 1
        return jnp.where(inside, -d, d)

    def bbox(self):
        return self._a("vertices").min(0), self._a("vertices").max(0)

    def _part_measure(self, i):
        a, b = self._edges()
        return float(np.sum(np.linalg.norm(b - a, axis=1)))

    def _sample_part(self, key, i, n):
        a, b = self._edges()
        lengths = np.linalg.norm(b - a, axis=1)
        cum = np.concatenate([[0.0], np.cumsum(lengths)])
        s = jax.random.uniform(key, (n,), maxval=cum[-1])
        k = jnp.clip(jnp.searchsorted(cum, s, side="right") - 1, 0, len(lengths) - 1)
        t = (s - cum[k]) / lengths[k]
        x = a[k] + t[:, None] * (b - a)[k]
        e = (b - a) / lengths[:, None]
        normal = np.stack([e[:, 1], -e[:, 0]], axis=1)  # right of a counter-clockwise edge
        return x, jnp.asarray(normal)[k]


def Triangle(a, b, c, *, name: str = "") -> Polygon:  # noqa: N802 - a constructor
    """A triangle: a `Polygon` of three vertices."""
    return Polygon([a, b, c], name=name)


class _Boolean(AbstractGeometry):
    a: AbstractGeometry
    b: AbstractGeometry

    def _union_box(self):
        (la, ha), (lb, hb) = self.a.bbox(), self.b.bbox()
        return np.minimum(la, lb), np.maximum(ha, hb)

    def __check_init__(self):
        if self.a.dim != self.b.dim:
            raise SpecError(f"cannot combine a {self.a.dim}D and a {self.b.dim}D geometry")


class Union(_Boolean):
    def sdf(self, x):
        return jnp.minimum(self.a.sdf(x), self.b.sdf(x))

    def bbox(self):
        return self._union_box()

    def pieces(self):
        return self.a.pieces() + self.b.pieces()


class Intersection(_Boolean):
    def sdf(self, x):
        return jnp.maximum(self.a.sdf(x), self.b.sdf(x))

    def bbox(self):
        (la, ha), (lb, hb) = self.a.bbox(), self.b.bbox()
        lo, hi = np.maximum(la, lb), np.minimum(ha, hb)
        if not np.all(lo < hi):
            raise SpecError("the intersection is empty (the bounding boxes do not overlap)")
        return lo, hi

    def pieces(self):
        return self.a.pieces() + self.b.pieces()


class Difference(_Boolean):
    """``a`` with ``b`` cut out: ``b``'s boundary pieces bound the result with their normals
    turned around (outward from the result, into the hole)."""

    def sdf(self, x):
        return jnp.maximum(self.a.sdf(x), -self.b.sdf(x))

    def bbox(self):
        return self.a.bbox()

    def pieces(self):
        flipped = tuple(
            Piece(p.name, p.label, p.primitive, p.index, -p.sign) for p in self.b.pieces()
        )
        return self.a.pieces() + flipped


class Transformed(AbstractGeometry):
    """A geometry rotated (2D: by ``angle`` radians; 3D: by an orthogonal ``rotation``
    matrix), scaled by a factor ``scale`` and moved by ``shift``: a similarity, so distances
    scale by ``scale`` and stay exact. Boundary measures scale by ``scale^(d-1)``."""

    inner: AbstractGeometry
    rotation: tuple = eqx.field(static=True, converter=_mat)
    scale: float = eqx.field(static=True, converter=float)
    shift: tuple = eqx.field(static=True, converter=_vec)

    def __init__(self, inner, *, angle=None, rotation=None, scale=1.0, shift=None):
        d = inner.dim
        if angle is not None:
            if d != 2:
                raise SpecError("`angle` rotates a 2D geometry; give `rotation` in 3D")
            c, s = math.cos(angle), math.sin(angle)
            rotation = [[c, -s], [s, c]]
        r = np.eye(d) if rotation is None else np.asarray(rotation, float)
        if r.shape != (d, d) or not np.allclose(r @ r.T, np.eye(d), atol=1e-9):
            raise SpecError(f"`rotation` must be an orthogonal {d}x{d} matrix")
        if not scale > 0:
            raise SpecError(f"`scale` must be > 0, got {scale}")
        b = np.zeros(d) if shift is None else np.asarray(shift, float).ravel()
        if b.shape != (d,):
            raise SpecError(f"`shift` must have {d} components, got {b.size}")
        self.inner, self.rotation, self.scale, self.shift = inner, r, scale, b

    def _to_inner(self, x):
        return (
            (x - self._a("shift")) @ self._a("rotation")
        ) / self.scale  # R^T (x - b) / s, row-wise

    def _to_outer(self, y):
        return self.scale * (y @ self._a("rotation").T) + self._a("shift")

    def sdf(self, x):
        return self.scale * self.inner.sdf(self._to_inner(x))

    def bbox(self):
        lo, hi = self.inner.bbox()
        corners = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(len(lo), -1).T
        out = np.asarray(self._to_outer(corners))
        return out.min(0), out.max(0)

    def pieces(self):
        return tuple(
            Piece(p.name, p.label, _Moved(p.primitive, self), p.index, p.sign)
            for p in self.inner.pieces()
        )


class _Moved(_Primitive):
    """A primitive seen through a `Transformed`, for its boundary pieces."""

    base: AbstractGeometry
    move: Transformed

    def sdf(self, x):
        return self.move.scale * self.base.sdf(self.move._to_inner(x))

    def bbox(self):
        return Transformed(
            self.base, rotation=self.move.rotation, scale=self.move.scale, shift=self.move.shift
        ).bbox()

    def _part_measure(self, i):
        return self.base._part_measure(i) * self.move.scale ** (len(self.move.shift) - 1)

    def _sample_part(self, key, i, n):
        x, normal = self.base._sample_part(key, i, n)
        return self.move._to_outer(x), normal @ self.move._a("rotation").T


# --- sampling ----------------------------------------------------------------------------


def _estimate(fraction_of, key, n=8192) -> float:
    return float(jnp.mean(fraction_of(key, n)))


def _take(key, candidates, keep, n):
    """The first ``n`` kept candidates in a random order (the candidates are i.i.d., so
    this is a uniform draw from the kept ones); wraps around if fewer than ``n`` were kept."""
    order = jax.random.permutation(key, candidates[0].shape[0])
    keep = keep[order]
    rank = jnp.argsort(~keep, stable=True)  # kept ones first, in the random order
    count = jnp.sum(keep)
    index = order[rank[jnp.arange(n) % jnp.maximum(count, 1)]]
    return tuple(c[index] for c in candidates), count / keep.shape[0]


def sample_interior(
    geometry: AbstractGeometry, key: PRNGKeyArray, n: int, *, oversample: float | None = None
) -> tuple[Points, Array]:
    """``n`` points uniform inside ``geometry``, and the fraction of candidates kept.

    ``oversample`` (candidates per point wanted) defaults to 1.5 / the estimated volume
    fraction of the bounding box, at least 2."""
    lo, hi = geometry.bbox()

    def draw(k, m):
        return jax.random.uniform(k, (m, len(lo)), minval=lo, maxval=hi)

    if oversample is None:
        frac = _estimate(lambda k, m: geometry.contains(draw(k, m)), jax.random.PRNGKey(0))
        if frac <= 0:
            raise SpecError("the geometry has no interior (no point of its box is inside)")
        oversample = max(2.0, 1.5 / frac)
    k1, k2 = jax.random.split(key)
    x = draw(k1, int(math.ceil(n * oversample)))
    (x,), kept = _take(k2, (x,), geometry.contains(x), n)
    return x, kept


def _on_boundary(geometry, x, tol):
    return jnp.abs(geometry.sdf(x)) <= tol


def sample_boundary(
    geometry: AbstractGeometry,
    key: PRNGKeyArray,
    n: int,
    *,
    pieces: Sequence[Piece] | None = None,
    oversample: float | None = None,
) -> tuple[Points, Points, Array]:
    """``n`` points uniform by measure on the boundary of ``geometry`` (or on the named
    ``pieces`` of it), with outward normals, and the fraction of candidates kept.

    Candidates are drawn on each primitive piece in proportion to its measure; those not on
    the final boundary (inside another part of a union, outside an intersection) are dropped."""
    pieces = tuple(geometry.pieces() if pieces is None else pieces)
    measures = np.array([p.measure for p in pieces])
    lo, hi = geometry.bbox()
    tol = 1e-6 * float(np.max(hi - lo))

    def draw(k, m):
        counts = np.maximum(1, np.round(m * measures / measures.sum()).astype(int))
        keys = jax.random.split(k, len(pieces))
        xs, ns = zip(*(p.sample(kk, int(c)) for p, kk, c in zip(pieces, keys, counts)))
        return jnp.concatenate(xs), jnp.concatenate(ns)

    if oversample is None:
        x, _ = draw(jax.random.PRNGKey(0), 8192)
        frac = float(jnp.mean(_on_boundary(geometry, x, tol)))
        if frac <= 0:
            raise SpecError("none of the named boundary lies on the geometry's boundary")
        oversample = max(1.25, 1.5 / frac)
    k1, k2 = jax.random.split(key)
    x, normal = draw(k1, int(math.ceil(n * oversample)))
    (x, normal), kept = _take(k2, (x, normal), _on_boundary(geometry, x, tol), n)
    return x, normal, kept


def boundary_measure(geometry: AbstractGeometry, *, samples: int = 1 << 16) -> float:
    """The measure (length, area) of the boundary: the pieces' measures times the fraction of
    each that lies on the final boundary, estimated from ``samples`` points."""
    lo, hi = geometry.bbox()
    tol = 1e-6 * float(np.max(hi - lo))
    total = 0.0
    for i, p in enumerate(geometry.pieces()):
        x, _ = p.sample(jax.random.PRNGKey(i), samples // max(1, len(geometry.pieces())))
        total += p.measure * float(jnp.mean(_on_boundary(geometry, x, tol)))
    return total
