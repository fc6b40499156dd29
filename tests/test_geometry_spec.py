"""The ``geometry:`` section (issue 17): a CSG tree written in YAML, validated with key paths
and built into the geometry of `pinnkit.core.geometry`."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit.core.geometry import boundary_measure, sample_interior
from pinnkit.errors import SpecError
from pinnkit.spec.geometry import read_geometry
from pinnkit.spec.loader import _line_map, load_yaml

PLATE = """
geometry:
  difference:
    - {rectangle: {lo: [0, 0], hi: [1, 1]}, name: outer}
    - {disk: {center: [0.3, 0.3], radius: 0.1}, name: hole1}
    - {polygon: [[0.6, 0.6], [0.8, 0.6], [0.7, 0.8]], name: hole2,
       transform: {scale: 1.2, shift: [-0.15, -0.15]}}
"""


def read(text):
    return read_geometry(load_yaml(text), _line_map(text))


def test_a_plate_with_two_holes_is_built_with_its_names_and_measures():
    plate = read(PLATE)
    assert plate.names()[0] == "outer" and {"hole1", "hole2"} <= set(plate.names())
    triangle = 0.5 * 0.2 * 0.2 * 1.2**2  # area scales by scale^2
    x, kept = sample_interior(plate, jax.random.PRNGKey(0), 20_000)
    expected = 1 - math.pi * 0.01 - triangle
    np.testing.assert_allclose(float(kept), expected, atol=0.02)
    assert bool(jnp.all(plate.contains(x)))
    edges = 1.2 * (0.2 + 2 * math.hypot(0.1, 0.2))
    np.testing.assert_allclose(boundary_measure(plate), 4 + 2 * math.pi * 0.1 + edges, rtol=1e-2)


def test_nested_booleans_and_every_shape():
    text = """
geometry:
  union:
    - intersection:
        - {ellipse: {center: [0, 0], axes: [2, 1]}}
        - {box: {lo: [-1, -1], hi: [1, 1]}}
    - {triangle: [[1, 0], [3, 0], [2, 1]]}
    - {ball: {center: [-2, 0], radius: 0.5}}
"""
    shape = read(text)
    inside = shape.contains(jnp.array([[0.0, 0.0], [2.0, 0.3], [-2.0, 0.2], [0.0, 1.5]]))
    assert inside.tolist() == [True, True, True, False]
    assert read("geometry: {interval: [-1, 2]}").dim == 1


@pytest.mark.parametrize(
    "text, path",
    [
        ("geometry: {disk: {center: [0, 0], radius: -1}}", "geometry.disk.radius"),
        ("geometry: {disk: {center: [0, 0], radius: 1}, box: {lo: [0], hi: [1]}}", "geometry"),
        ("geometry: {dsik: {center: [0, 0], radius: 1}}", "geometry.dsik"),
        ("geometry: {difference: [{disk: {center: [0, 0], radius: 1}}]}", "geometry.difference"),
        ("geometry: {polygon: [[0, 0], [1, 1], [2, 2]]}", "geometry.polygon"),
        ("geometry: {box: {lo: [0, 0], hi: [1, 0]}}", "geometry.box"),
        (
            "geometry: {union: [{disk: {center: [0, 0], radius: 1}}, "
            "{ball: {center: [0, 0, 0], radius: 1}}]}",
            "geometry.union",
        ),
        (
            "geometry: {disk: {center: [0, 0], radius: 1}, transform: {shift: [1, 2, 3]}}",
            "geometry.transform",
        ),
        ("geometry: {disk: {center: [0, .nan], radius: 1}}", "geometry.disk.center.1"),
    ],
)
def test_a_wrong_geometry_names_its_key_path(text, path):
    with pytest.raises(SpecError) as info:
        read(text)
    assert info.value.path == path, info.value
