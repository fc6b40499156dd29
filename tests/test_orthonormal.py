"""Orthonormal fields by construction, composite quadrature, and interface-enriched networks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit import SpecError, load_spec
from pinnkit.backends._base import Orthonormal
from pinnkit.backends.mlp import MLP, _Level
from pinnkit.core.derivatives import NestedReverse
from pinnkit.core.domain import Box, Derivative
from pinnkit.core.objective import gauss_legendre


def test_composite_gauss_legendre_is_exact_across_a_kink():
    box = Box(("x",), {"x": (-2.0, 2.0)})
    f = lambda x: np.where(x < 0.5, x**3, 0.125 + 2 * (x - 0.5) - x**2)  # kink at 0.5
    exact = 0.25 * (0.5**4 - 16) + (0.125 * 1.5 + (1.5**2) - (8 - 0.125) / 3)
    nodes, weights = gauss_legendre(box, (0,), 8, {0: [0.5]})
    assert abs(f(nodes[:, 0]) @ weights - exact) < 1e-12
    nodes, weights = gauss_legendre(box, (0,), 8)
    assert abs(f(nodes[:, 0]) @ weights - exact) > 1e-4  # one piece does not see the kink


def _wrapped(dtype=jnp.float64):
    box = Box(("x",), {"x": (-1.0, 2.0)})
    net = MLP(box.lo, box.hi, ("a", "b", "c"), width=8, depth=2, key=jax.random.key(3), dtype=dtype)
    nodes, weights = gauss_legendre(box, (0,), 40)
    return net, Orthonormal(net, nodes, weights, box.coords)


def test_orthonormal_fields_and_their_derivatives():
    with jax.enable_x64(True):
        net, model = _wrapped()
        box = Box(("x",), {"x": (-1.0, 2.0)})
        fine, w = gauss_legendre(box, (0,), 120)  # a different rule than the model's
        req = [Derivative(f, (0,), f) for f in "abc"]
        v = model.fields_at(jnp.asarray(fine), req)
        phi = np.stack([np.asarray(v[f]) for f in "abc"], -1)
        np.testing.assert_allclose(phi.T @ (w[:, None] * phi), np.eye(3), atol=1e-10)
        # Derivatives transform like the fields: compare with nested reverse mode of psi(x).
        t = model.transform()
        pts = jnp.linspace(-0.9, 1.9, 7)[:, None]
        got = model.fields_at(pts, [Derivative("b", (2,), "b_xx"), Derivative("c", (1,), "c_x")])
        psi = lambda x: t @ net(x)
        d1 = jax.vmap(lambda x: NestedReverse()(lambda y: psi(y), x, [(1,), (2,)]))(pts)
        np.testing.assert_allclose(got["b_xx"], d1[:, 1, 1], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got["c_x"], d1[:, 0, 2], rtol=1e-10, atol=1e-10)
        # Gram–Schmidt order: the first field is the inner one, only normalised.
        assert t[0, 1] == 0 and t[0, 2] == 0 and t[0, 0] > 0


def test_interface_inputs_bend_the_network_only_there():
    with jax.enable_x64(True):
        level = _Level(lambda env: env["x"] - 0.5, ("x",), ())
        net = MLP(
            (-2.0,),
            (2.0,),
            ("u",),
            width=8,
            depth=2,
            interfaces=(level,),
            key=jax.random.key(0),
            dtype=jnp.float64,
        )
        deriv = NestedReverse()
        at = lambda x: deriv(net, jnp.array([x]), [(0,), (1,), (2,), (3,)])[:, 0]
        left, right = at(0.5 - 1e-7), at(0.5 + 1e-7)
        np.testing.assert_allclose(left[:2], right[:2], atol=1e-5)  # C^1 across
        assert abs(left[2] - right[2]) > 1e-3  # u'' jumps
        plain = MLP(
            (-2.0,), (2.0,), ("u",), width=8, depth=2, key=jax.random.key(0), dtype=jnp.float64
        )
        pl, pr = (deriv(plain, jnp.array([x]), [(2,)])[0, 0] for x in (0.5 - 1e-7, 0.5 + 1e-7))
        assert abs(pl - pr) < 1e-5


def test_orthonormal_spec_keeps_only_homogeneous_conditions():
    s = {
        "name": "modes",
        "coords": ["x"],
        "domain": {"x": [0, 1]},
        "fields": ["u", "v"],
        "equation": {"residuals": ["u_xx + 1", "v_xx + 1"]},
        "conditions": [{"on": "boundary", "u": "0", "v": "0"}],
        "model": {"orthonormal": True},
    }
    from pinnkit.spec.build import build_model

    loaded = load_spec(s)
    built = build_model(loaded.problem(), loaded.model, dtype=jnp.float32, key=jax.random.key(0))
    assert isinstance(built.model, Orthonormal)
    s["conditions"] = [{"on": "x=0", "u": "1"}]
    loaded = load_spec(s)
    with pytest.raises(SpecError, match="homogeneous") as err:
        build_model(loaded.problem(), loaded.model, dtype=jnp.float32, key=jax.random.key(0))
    assert err.value.path == "conditions[0].u"
