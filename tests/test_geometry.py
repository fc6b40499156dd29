"""CSG geometry (issue 17, first part): exact distances, outward normals, and sampling that is
uniform by volume and by boundary measure, checked against closed forms and brute force."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit.core.geometry import (
    Ball,
    Box,
    Disk,
    Ellipse,
    Interval,
    Polygon,
    Transformed,
    Triangle,
    boundary_measure,
    sample_boundary,
    sample_interior,
)
from pinnkit.errors import SpecError

L_SHAPE = [[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]]
PRIMITIVES = {
    "box": Box([-1, 0], [1, 0.5]),
    "disk": Disk([0.2, -0.1], 0.7),
    "ellipse": Ellipse([0.1, 0.0], [1.5, 0.6]),
    "l_shape": Polygon(L_SHAPE),
    "triangle_cw": Triangle([0, 0], [0, 1], [1, 0]),  # clockwise: orientation is found
}


def _brute_sdf(geometry, x, n=50_000):
    """Distance to a dense sample of the boundary, signed by membership."""
    (piece_points, _, _) = sample_boundary(geometry, jax.random.PRNGKey(9), n)
    d = np.min(np.linalg.norm(x[:, None] - np.asarray(piece_points)[None], axis=2), axis=1)
    return np.where(np.asarray(geometry.contains(jnp.asarray(x))), -d, d)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_the_signed_distance_of_each_primitive_is_exact(name):
    g = PRIMITIVES[name]
    lo, hi = g.bbox()
    x = np.random.default_rng(0).uniform(lo - 0.5, hi + 0.5, (300, 2))
    got = np.asarray(g.sdf(jnp.asarray(x)))
    np.testing.assert_allclose(got, _brute_sdf(g, x), atol=2e-3)  # the sample's spacing


@pytest.mark.parametrize(
    "geometry",
    [
        *PRIMITIVES.values(),
        Box([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.2),
        Transformed(Polygon(L_SHAPE), angle=0.7, scale=1.5, shift=[2, -1]),
        Ball([0, 0, 0], 1.0) - Box([-0.3, -0.3, -0.3], [0.3, 0.3, 0.3]),
    ],
    ids=[*sorted(PRIMITIVES), "square_minus_disk", "moved_l_shape", "ball_minus_cube"],
)
def test_sampled_boundary_points_lie_on_it_with_the_outward_normal(geometry):
    x, normal, kept = sample_boundary(geometry, jax.random.PRNGKey(1), 2000)
    assert float(kept) > 0.05
    np.testing.assert_allclose(geometry.sdf(x), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.linalg.norm(normal, axis=1), 1.0, atol=1e-5)
    # away from corners the gradient of the signed distance (just inside) is the normal
    grad = jax.vmap(jax.grad(lambda p: geometry.sdf(p)))(x - 1e-4 * normal)
    smooth = jnp.abs(jnp.linalg.norm(grad, axis=1) - 1) < 1e-3
    cos = jnp.sum(grad * normal, axis=1)[smooth]
    assert float(jnp.mean(cos > 0.999)) > 0.97
    # finite on the boundary itself too (distance functions are differentiated there)
    assert bool(jnp.all(jnp.isfinite(jax.vmap(jax.grad(lambda p: geometry.sdf(p)))(x))))
    # and stepping along it leaves the domain
    assert bool(jnp.all(geometry.sdf(x + 1e-3 * normal) > 0))


def test_interior_points_are_uniform_in_a_domain_with_a_hole():
    g = Box([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.2)
    x, kept = sample_interior(g, jax.random.PRNGKey(2), 20_000)
    assert bool(jnp.all(g.contains(x)))
    np.testing.assert_allclose(float(kept), 1 - math.pi * 0.04, atol=0.02)
    expected = 0.3 / (1 - math.pi * 0.04)  # the strip x < 0.3 misses the hole
    p = float(jnp.mean(x[:, 0] < 0.3))
    assert abs(p - expected) < 4 * math.sqrt(expected * (1 - expected) / x.shape[0])


def test_boundary_points_are_spread_by_measure_and_a_union_drops_its_inner_arcs():
    g = Box([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.2, name="hole1")
    x, _, _ = sample_boundary(g, jax.random.PRNGKey(3), 20_000)
    on_hole = jnp.abs(jnp.linalg.norm(x - 0.5, axis=1) - 0.2) < 1e-5
    expected = 2 * math.pi * 0.2 / (4 + 2 * math.pi * 0.2)
    assert abs(float(on_hole.mean()) - expected) < 4 * math.sqrt(expected / x.shape[0])
    # two unit circles one apart: each keeps 2/3 of its circumference
    two = Disk([0, 0], 1.0) | Disk([1, 0], 1.0)
    np.testing.assert_allclose(boundary_measure(two), 8 * math.pi / 3, rtol=2e-2)
    x, _, _ = sample_boundary(two, jax.random.PRNGKey(4), 4000)
    inner = (jnp.linalg.norm(x, axis=1) < 1 - 1e-4) | (
        jnp.linalg.norm(x - jnp.array([1, 0]), axis=1) < 1 - 1e-4
    )
    assert not bool(jnp.any(inner))


def test_named_pieces_and_faces():
    g = Box([0, 0], [2, 1], name="outer") - Disk([1, 0.5], 0.2, name="hole1")
    assert g.names() == ["outer", "outer:x=0", "outer:x=2", "outer:y=0", "outer:y=1", "hole1"]
    face = [p for p in g.pieces() if p.label == "x=2"]
    x, normal, _ = sample_boundary(g, jax.random.PRNGKey(5), 50, pieces=face)
    np.testing.assert_allclose(x[:, 0], 2.0)
    np.testing.assert_allclose(normal, jnp.tile(jnp.array([1.0, 0.0]), (50, 1)))
    line = Interval(-1, 3)
    assert line.dim == 1 and [p.label for p in line.pieces()] == ["x=-1", "x=3"]


def test_sampling_compiles_once_with_fixed_shapes():
    g = Polygon(L_SHAPE) & Disk([1, 1], 1.2)
    traces = []

    @jax.jit
    def draw(key):
        traces.append(1)
        return sample_interior(g, key, 256, oversample=3.0)[0]

    for seed in range(3):
        assert draw(jax.random.PRNGKey(seed)).shape == (256, 2)
    assert len(traces) == 1


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Box([0, 1], [1, 1]), "lo < hi"),
        (lambda: Disk([0, 0], -1.0), "radius"),
        (lambda: Polygon([[0, 0], [1, 1], [2, 2]]), "no area"),
        (lambda: Ellipse([0, 0], [1, 0]), "semi-axes"),
        (lambda: Box([0, 0], [1, 1]) | Ball([0, 0, 0], 1.0), "2D and a 3D"),
        (lambda: (Disk([0, 0], 1.0) & Disk([5, 0], 1.0)).bbox(), "empty"),
        (lambda: Transformed(Box([0, 0, 0], [1, 1, 1]), angle=1.0), "angle"),
    ],
)
def test_a_wrong_geometry_is_a_clean_error(make, match):
    with pytest.raises(SpecError, match=match):
        make()
