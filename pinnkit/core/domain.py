"""Box domains, their faces, and the names of derivatives.

A domain is an axis-aligned box over the ordered coordinates of a problem; a coordinate
named ``t`` is time. Conditions live on faces (``x=0``), on the whole spatial boundary, or
pair opposite faces (periodicity). Derivatives are named the way equations ask for them:
``u_xx`` is the field ``u`` differentiated twice by ``x``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import SpecError, did_you_mean

TIME = "t"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclasses.dataclass(frozen=True)
class Box:
    """An axis-aligned box ``[lo_i, hi_i]`` over named coordinates.

    Arguments:
        coords: ordered coordinate names, e.g. ``("x", "t")``; ``t`` is time.
        bounds: ``{coord: (lo, hi)}`` with ``lo < hi`` for every coordinate.

    Example:
        >>> box = Box(("x", "t"), {"x": (-1.0, 1.0), "t": (0.0, 1.0)})
        >>> box.spatial
        ('x',)
    """

    coords: tuple[str, ...]
    bounds: Mapping[str, tuple[float, float]]

    def __post_init__(self):
        for c in self.coords:
            if not _NAME.match(c):
                raise SpecError(
                    f"coordinate name {c!r} must be letters and digits starting with a letter",
                    path="coords",
                )
            if c not in self.bounds:
                raise SpecError(
                    f"coordinate {c!r} has no interval; add `{c}: [lo, hi]`", path="domain"
                )
            lo, hi = self.bounds[c]
            if not float(lo) < float(hi):
                raise SpecError(
                    f"interval of {c!r} must have lo < hi, got [{lo}, {hi}]", path=f"domain.{c}"
                )
        extra = set(self.bounds) - set(self.coords)
        if extra:
            raise SpecError(
                f"domain names {sorted(extra)} which are not coordinates {list(self.coords)}",
                path="domain",
            )
        object.__setattr__(
            self,
            "bounds",
            {c: (float(self.bounds[c][0]), float(self.bounds[c][1])) for c in self.coords},
        )

    @property
    def dim(self) -> int:
        return len(self.coords)

    @property
    def lo(self) -> np.ndarray:
        return np.array([self.bounds[c][0] for c in self.coords])

    @property
    def hi(self) -> np.ndarray:
        return np.array([self.bounds[c][1] for c in self.coords])

    @property
    def time_axis(self) -> int | None:
        return self.coords.index(TIME) if TIME in self.coords else None

    @property
    def spatial(self) -> tuple[str, ...]:
        return tuple(c for c in self.coords if c != TIME)

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.coords) if c != TIME)

    def axis(self, coord: str, *, path: str | None = None) -> int:
        if coord not in self.coords:
            raise SpecError(
                f"unknown coordinate {coord!r}; coordinates are {list(self.coords)}"
                + did_you_mean(coord, self.coords),
                path=path,
            )
        return self.coords.index(coord)

    def boundary_faces(self) -> tuple[Face, ...]:
        """Both faces of every spatial coordinate (time has an initial face, not a boundary)."""
        return tuple(
            Face(axis, side, self.bounds[self.coords[axis]][side], self.coords[axis])
            for axis in self.spatial_axes
            for side in (0, 1)
        )

    def grid(self, shape: Sequence[int]) -> np.ndarray:
        """Points of a tensor grid including the faces, shape ``(prod(shape), dim)``, C order."""
        axes = [
            np.linspace(self.bounds[c][0], self.bounds[c][1], n) for c, n in zip(self.coords, shape)
        ]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.reshape(-1) for m in mesh], axis=-1)


@dataclasses.dataclass(frozen=True)
class Face:
    """The face ``coords[axis] = value`` of a box; ``side`` is 0 (lower) or 1 (upper)."""

    axis: int
    side: int
    value: float
    coord: str

    def __str__(self) -> str:
        return f"{self.coord}={self.value:g}"


def parse_face(text: str, box: Box, *, path: str | None = None) -> tuple[Face, ...]:
    """Read where a condition holds: ``"x=0"``, ``"t=0"``, or ``"boundary"`` (every spatial face).

    The value must be one end of the coordinate's interval.
    """
    text = str(text).strip()
    if text == "boundary":
        faces = box.boundary_faces()
        if not faces:
            raise SpecError("`boundary` needs at least one spatial coordinate", path=path)
        return faces
    coord, eq, value_text = text.partition("=")
    coord = coord.strip()
    if not eq or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", coord):
        raise SpecError(
            f"cannot read {text!r}: expected `COORD=VALUE` at an end of the domain "
            "(e.g. `x=0`, `t=0`, `x=2*pi`) or `boundary`",
            path=path,
        )
    axis = box.axis(coord, path=path)
    from .expressions import parse_expression

    value = float(parse_expression(value_text.strip(), symbols=(), path=path)({}))
    lo, hi = box.bounds[coord]
    for side, end in ((0, lo), (1, hi)):
        if abs(value - end) <= 1e-12 * max(1.0, abs(end)):
            return (Face(axis, side, end, coord),)
    raise SpecError(
        f"{text!r} is not a face of the domain: {coord} ranges over [{lo:g}, {hi:g}]; "
        f"use `{coord}={lo:g}` or `{coord}={hi:g}`",
        path=path,
    )


@dataclasses.dataclass(frozen=True)
class Derivative:
    """A request for a derivative of a field: ``u_xt`` is ``Derivative("u", (1, 1), "u_xt")``."""

    field: str
    orders: tuple[int, ...]
    name: str

    @property
    def order(self) -> int:
        return sum(self.orders)


def parse_derivative(name: str, coords: Sequence[str], fields: Sequence[str]) -> Derivative | None:
    """Read a symbol as a field or a derivative of one; ``None`` if it is neither.

    ``u`` is the field itself; ``u_xx`` differentiates twice by ``x``; coordinate names of more
    than one letter are matched greedily (``u_x1x1`` with coordinates ``x1, x2``). A field name
    may contain ``_`` (the parts ``h_re``, ``h_im`` of a complex field): ``h_re_x`` is ``h_re``
    differentiated by ``x``.
    """
    if name in fields:
        return Derivative(name, (0,) * len(coords), name)
    if "_" not in name:
        return None
    # The longest field that prefixes the name, so `h_re_x` is read as `h_re` then `x`.
    candidates = [f for f in fields if name.startswith(f + "_")]
    if not candidates:
        return None
    field = max(candidates, key=len)
    suffix = name[len(field) + 1 :]
    if not suffix:
        return None
    orders = [0] * len(coords)
    # Longest coordinate names first, so `x1` is not read as `x` then `1`.
    ordered = sorted(range(len(coords)), key=lambda i: -len(coords[i]))
    pos = 0
    while pos < len(suffix):
        for i in ordered:
            if suffix.startswith(coords[i], pos):
                orders[i] += 1
                pos += len(coords[i])
                break
        else:
            return None
    return Derivative(field, tuple(orders), name)


def derivative_name(field: str, orders: Sequence[int], coords: Sequence[str]) -> str:
    """The canonical name of a derivative, coordinates in their declared order."""
    suffix = "".join(c * k for c, k in zip(coords, orders))
    return f"{field}_{suffix}" if suffix else field
