"""One equation, three answers (DESIGN.md §3): the library's ``navier_stokes`` vorticity
equation, built once, evaluated on one known periodic flow through

* a pointwise backend (`PointFunction`: automatic differentiation of the closed-form fields),
* a grid backend (`ODIL`: finite differences of the same fields sampled on a grid; second-order
  convergence to the exact residual),
* the spectral answer (`SpectralFields`: FFT in space on a periodic grid, time derivatives from
  a temporal Fourier series as the SFNO's output layer gives them, psi from w by the Poisson
  solve the Spectral-Refiner uses),

all checked against the residual computed by hand. The flow is not a solution: its residual is a
known nonzero field in which every term of the equation shows, so a wrong sign, a swapped axis or
a missing 2 pi in any answer changes it.

The flow, on the box [0, L)^2, k = 2 pi / L, with a(t) = 1 + sin(2 pi t / P) / 2 and
b(t) = cos(2 pi t / P) / 2:

    psi = a sin(k x) + b cos(2 k y),   w = -Laplacian(psi) = a k^2 sin(k x) + 4 b k^2 cos(2 k y),

so with u = psi_y, v = -psi_x (the library's convention) the residual of
``w_t + psi_y w_x - psi_x w_y - nu (w_xx + w_yy)`` is

    R = a' k^2 sin(kx) + 4 b' k^2 cos(2ky) + 6 a b k^4 cos(kx) sin(2ky)
        + nu k^4 (a sin(kx) + 16 b cos(2ky)),

and that of ``psi_xx + psi_yy + w`` is zero.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit.backends import ODIL, PointFunction
from pinnkit.core.derivatives import ForwardMode
from pinnkit.equations import as_derivatives, builtin_equation
from pinnkit.operators import SpectralFields, synthesize, vorticity_equation, vorticity_residual

NU = 0.05
PERIOD = 2.0  # P, the period in time
COORDS = ("x", "y", "t")
FIELDS = ("w", "psi")


def _equation():
    return builtin_equation(
        "navier_stokes",
        {"form": "vorticity", "nu": NU},
        coords=COORDS,
        fields=FIELDS,
        params={},
        symbols=(),
    )


def _ab(t, xp=np):
    theta = 2 * np.pi * t / PERIOD
    a, b = 1 + 0.5 * xp.sin(theta), 0.5 * xp.cos(theta)
    rate = 2 * np.pi / PERIOD
    return a, b, 0.5 * rate * xp.cos(theta), -0.5 * rate * xp.sin(theta)


def _flow(x, y, t, length, xp=np):
    """(w, psi) of the flow."""
    k = 2 * np.pi / length
    a, b, _, _ = _ab(t, xp)
    psi = a * xp.sin(k * x) + b * xp.cos(2 * k * y)
    w = a * k**2 * xp.sin(k * x) + 4 * b * k**2 * xp.cos(2 * k * y)
    return w, psi


def _exact_residual(x, y, t, length):
    k = 2 * np.pi / length
    a, b, da, db = _ab(t)
    sx, cx, s2y, c2y = np.sin(k * x), np.cos(k * x), np.sin(2 * k * y), np.cos(2 * k * y)
    return (
        da * k**2 * sx
        + 4 * db * k**2 * c2y
        + 6 * a * b * k**4 * cx * s2y
        + NU * k**4 * (a * sx + 16 * b * c2y)
    )


def _exact_answers(x, y, t, length):
    """Every field and derivative the equation asks for, in closed form: the answers are
    checked one by one too, since the residual alone cannot see some errors (flipping the sign of
    every first derivative in space leaves psi_y w_x - psi_x w_y unchanged)."""
    k = 2 * np.pi / length
    a, b, da, db = _ab(t)
    sx, cx, s2y, c2y = np.sin(k * x), np.cos(k * x), np.sin(2 * k * y), np.cos(2 * k * y)
    return {
        "psi": a * sx + b * c2y,
        "psi_x": a * k * cx,
        "psi_y": -2 * b * k * s2y,
        "psi_xx": -a * k**2 * sx,
        "psi_yy": -4 * b * k**2 * c2y,
        "w": a * k**2 * sx + 4 * b * k**2 * c2y,
        "w_t": da * k**2 * sx + 4 * db * k**2 * c2y,
        "w_x": a * k**3 * cx,
        "w_y": -8 * b * k**3 * s2y,
        "w_xx": -(a * k**4) * sx,
        "w_yy": -16 * b * k**4 * c2y,
    }


def _answer_errors(answers, exact) -> dict[str, float]:
    """The largest error of each answer relative to the largest exact value."""
    return {
        name: float(np.abs(np.asarray(answers[name]) - value).max() / np.abs(value).max())
        for name, value in exact.items()
        if name in answers
    }


def _residuals(equation, answers):
    """The equation's residuals from an answer mapping (nothing else: no coordinates, params)."""
    return dict(zip(equation.names, equation.residuals(answers)))


def _requests(equation):
    return as_derivatives(equation.requests, COORDS, FIELDS)


LENGTHS = [1.0, 2.0]


@pytest.mark.parametrize("length", LENGTHS)
def test_pointwise_answer_by_autodiff(x64, length):
    equation = _equation()

    def fn(params, p):
        return jnp.stack(_flow(p[0], p[1], p[2], length, jnp))

    model = PointFunction(field_names=FIELDS, derivatives=ForwardMode(), fn=fn, params={})
    points = jax.random.uniform(jax.random.key(0), (64, 3), jnp.float64) * jnp.asarray(
        [length, length, PERIOD]
    )
    answers = model.fields_at(points, _requests(equation))
    r = _residuals(equation, answers)
    p = np.asarray(points)
    errors = _answer_errors(answers, _exact_answers(p[:, 0], p[:, 1], p[:, 2], length))
    assert set(errors) == set(equation.requests)
    assert max(errors.values()) < 1e-13, errors
    exact = _exact_residual(p[:, 0], p[:, 1], p[:, 2], length)
    scale = np.abs(exact).max()
    np.testing.assert_allclose(np.asarray(r["vorticity"]), exact, atol=1e-12 * scale)
    np.testing.assert_allclose(np.asarray(r["streamfunction"]), 0.0, atol=1e-12 * scale)


@pytest.mark.parametrize("length", LENGTHS)
def test_grid_answer_by_finite_differences_converges_at_second_order(x64, length):
    equation = _equation()
    errors = []
    for n in (17, 33, 65):
        axes = [np.linspace(0.0, length, n), np.linspace(0.0, length, n), np.linspace(0, 0.5, n)]
        X, Y, T = np.meshgrid(*axes, indexing="ij")
        model = ODIL(axes, FIELDS).with_values(jnp.stack(_flow(X, Y, T, length)))
        answers = model.fields_on_grid(_requests(equation))
        r = _residuals(equation, answers)
        inner = tuple(a[1:-1, 1:-1, 1:-1].reshape(-1) for a in (X, Y, T))
        exact = _exact_residual(*inner, length)
        scale = np.abs(exact).max()
        by_answer = _answer_errors(answers, _exact_answers(*inner, length))
        assert set(by_answer) == set(equation.requests)
        assert all(by_answer[f] == 0.0 for f in FIELDS if f in by_answer)  # the node values
        errors.append(
            [
                np.abs(np.asarray(r["vorticity"]) - exact).max() / scale,
                np.abs(np.asarray(r["streamfunction"])).max() / scale,
                *(e for name, e in sorted(by_answer.items()) if name not in FIELDS),
            ]
        )
    errors = np.asarray(errors)  # (grids, residuals and derivative answers)
    rates = np.log2(errors[:-1] / errors[1:])
    assert np.all((rates > 1.9) & (rates < 2.1)), (errors, rates)
    assert errors[-1].max() < 1e-2, errors


def _spectral_flow(n, times, length):
    """w and dw/dt on the n x n grid at the times, from the temporal series of the flow
    (`synthesize`, as the SFNO's output layer evaluates it); psi and dpsi/dt alike."""
    k = 2 * np.pi / length
    x = np.arange(n) * length / n
    X, Y = np.meshgrid(x, x, indexing="ij")
    # a = 1 + sin(theta)/2 and b = cos(theta)/2 as Re g_0 + 2 Re[g_1 e^{i theta}].
    ga = np.asarray([1.0, -0.25j])
    gb = np.asarray([0.0, 0.25])
    sa, sb = np.sin(k * X), np.cos(2 * k * Y)
    g_w = ga * (k**2 * sa)[..., None] + gb * (4 * k**2 * sb)[..., None]
    g_psi = ga * sa[..., None] + gb * sb[..., None]
    w = synthesize(jnp.asarray(g_w), times, PERIOD, derivative=True)
    psi = synthesize(jnp.asarray(g_psi), times, PERIOD, derivative=True)
    return w, psi


@pytest.mark.parametrize("length", LENGTHS)
def test_spectral_answer_by_fft(x64, length):
    equation = _equation()
    n, times = 12, np.asarray([0.0, 0.3, 1.1, 1.7])
    w, psi = _spectral_flow(n, times, length)
    x = np.arange(2 * n) * length / (2 * n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    exact = _exact_residual(X, Y, times[:, None, None], length)
    scale = np.abs(exact).max()
    given = SpectralFields({"w": w, "psi": psi}, length=length, grid=2 * n)
    solved = SpectralFields({"w": w}, streamfunctions={"psi": "w"}, length=length, grid=2 * n)
    exact_answers = _exact_answers(X, Y, times[:, None, None], length)
    for answer in (given, solved):  # psi sampled, or solved from w (the refiner's way)
        answers = answer.fields_on_grid(_requests(equation))
        errors = _answer_errors(answers, exact_answers)
        assert set(errors) == set(equation.requests)
        assert max(errors.values()) < 1e-13, errors
        r = _residuals(equation, answers)
        assert r["vorticity"].shape == (len(times), 2 * n, 2 * n)
        np.testing.assert_allclose(np.asarray(r["vorticity"]), exact, atol=1e-12 * scale)
        np.testing.assert_allclose(np.asarray(r["streamfunction"]), 0.0, atol=1e-12 * scale)
    # The refinement's residual is this equation through this answer, with a source term.
    forcing = lambda x, y: 3.0 * jnp.sin(2 * np.pi * (x + y) / length)  # noqa: E731
    got = vorticity_residual(w[0], w[1], nu=NU, forcing=forcing, length=length)
    np.testing.assert_allclose(np.asarray(got), exact - forcing(X, Y), atol=1e-12 * scale)
    assert set(vorticity_equation().requests) == set(equation.requests)


def test_spectral_answer_refuses_what_it_cannot_answer(x64):
    from pinnkit.core.domain import Derivative
    from pinnkit.errors import SpecError

    answer = SpectralFields({"w": jnp.zeros((4, 4))}, coords=("x", "y", "t"))
    with pytest.raises(SpecError, match="time derivative of order 1"):
        answer.fields_on_grid([Derivative("w", (0, 0, 1), "w_t")])
    with pytest.raises(SpecError, match="holds"):
        answer.fields_on_grid([Derivative("v", (0, 0, 0), "v")])
