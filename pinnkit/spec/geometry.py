"""The ``geometry:`` section of a spec (issue 17): a CSG tree of primitives and booleans.

Each node is a mapping with exactly one shape key, an optional ``name`` (what conditions
will name with ``on:``) and an optional ``transform``::

    geometry:
      difference:
        - {rectangle: {lo: [0, 0], hi: [1, 1]}, name: outer}
        - {disk: {center: [0.3, 0.3], radius: 0.1}, name: hole1}
        - {polygon: [[0.6, 0.6], [0.8, 0.6], [0.7, 0.8]], name: hole2,
           transform: {scale: 1.2, shift: [-0.15, -0.15]}}

Shapes: ``interval: [a, b]``, ``rectangle`` / ``box: {lo, hi}``, ``disk`` / ``ball:
{center, radius}``, ``ellipse: {center, axes}``, ``polygon: [[x, y], ...]``, ``triangle:
[[x, y] x 3]``; booleans ``union: [...]``, ``intersection: [...]`` and ``difference: [a, b,
...]`` (``a`` minus the others), nested freely. `build_geometry` turns a validated node into a
`pinnkit.core.geometry.AbstractGeometry`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from ..core import geometry as g
from ..errors import SpecError
from .loader import _validated
from .schema import Strict

Finite = Annotated[float, Field(ge=-1e12, le=1e12)]
PointList = Annotated[list[Finite], Field(min_length=1, max_length=3)]

SHAPES = (
    "interval",
    "rectangle",
    "box",
    "disk",
    "ball",
    "ellipse",
    "polygon",
    "triangle",
    "union",
    "intersection",
    "difference",
)


class BoxShape(Strict):
    lo: PointList
    hi: PointList


class BallShape(Strict):
    center: PointList
    radius: Annotated[float, Field(gt=0, le=1e12)]


class EllipseShape(Strict):
    center: Annotated[list[Finite], Field(min_length=2, max_length=2)]
    axes: Annotated[list[Annotated[float, Field(gt=0, le=1e12)]], Field(min_length=2, max_length=2)]


class Transform(Strict):
    """A similarity: rotate (2D, radians, about the origin), then scale, then shift."""

    rotate: Finite | None = None
    rotation: list[list[Finite]] | None = Field(None, description="an orthogonal matrix (3D)")
    scale: Annotated[float, Field(gt=0, le=1e12)] = 1.0
    shift: PointList | None = None


Vertex = Annotated[list[Finite], Field(min_length=2, max_length=2)]


class GeometryNode(Strict):
    """One node of the tree: exactly one shape key."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")] | None = None
    transform: Transform | None = None
    interval: Annotated[list[Finite], Field(min_length=2, max_length=2)] | None = None
    rectangle: BoxShape | None = None
    box: BoxShape | None = None
    disk: BallShape | None = None
    ball: BallShape | None = None
    ellipse: EllipseShape | None = None
    polygon: Annotated[list[Vertex], Field(min_length=3, max_length=100_000)] | None = None
    triangle: Annotated[list[Vertex], Field(min_length=3, max_length=3)] | None = None
    union: Annotated[list[GeometryNode], Field(min_length=1)] | None = None
    intersection: Annotated[list[GeometryNode], Field(min_length=1)] | None = None
    difference: Annotated[list[GeometryNode], Field(min_length=2)] | None = None

    @model_validator(mode="after")
    def _one_shape(self):
        given = [k for k in SHAPES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one shape of {list(SHAPES)}, got {given or 'none'}")
        return self

    @property
    def shape(self) -> str:
        return next(k for k in SHAPES if getattr(self, k) is not None)


def build_geometry(node: GeometryNode, path: str = "geometry") -> g.AbstractGeometry:
    """The geometry a validated node describes; a `SpecError` naming the node's key path for
    what the schema cannot see (a polygon without area, dimensions that do not match)."""
    shape, value, name = node.shape, getattr(node, node.shape), node.name or ""
    here = f"{path}.{shape}"
    try:
        if shape == "interval":
            out = g.Interval(*value, name=name)
        elif shape in ("rectangle", "box"):
            out = g.Box(value.lo, value.hi, name=name)
        elif shape in ("disk", "ball"):
            out = g.Ball(value.center, value.radius, name=name)
        elif shape == "ellipse":
            out = g.Ellipse(value.center, value.axes, name=name)
        elif shape in ("polygon", "triangle"):
            out = g.Polygon(value, name=name)
        else:
            parts = [build_geometry(n, f"{here}[{i}]") for i, n in enumerate(value)]
            out = parts[0]
            for part in parts[1:]:
                out = {"union": g.Union, "intersection": g.Intersection}.get(shape, g.Difference)(
                    out, part
                )
            if shape == "intersection":
                out.bbox()  # refuses an empty one
        if node.transform is not None:
            t = node.transform
            out = g.Transformed(
                out, angle=t.rotate, rotation=t.rotation, scale=t.scale, shift=t.shift
            )
    except SpecError as e:
        if e.path is not None:
            raise
        where = here if node.transform is None else f"{path}.transform"
        raise SpecError(e.message, path=where) from None
    return out


def read_geometry(data: dict, lines: dict | None = None) -> g.AbstractGeometry:
    """Validate the ``geometry`` section of spec data and build it (errors name the key
    path, e.g. ``geometry.difference.1.disk.radius``, and its line)."""
    node = _validated(GeometryNode, data, lines or {}, ("geometry",))
    return build_geometry(node)
