"""Reference solutions used to measure errors: exact formulas and tested reference solvers.

`REFERENCE_SOLVERS` maps ``reference: {solver: NAME, options: {...}}`` in a spec to a function
``solver(columns, *, fields, params, **options) -> {field: values}`` evaluated at the points
whose coordinates are ``columns`` (``{coord: (n,) array}``).
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecError


def _need(columns, names, solver):
    missing = [c for c in names if c not in columns]
    if missing:
        raise SpecError(
            f"reference solver {solver!r} needs coordinates {names}; the problem lacks {missing}",
            path="reference.solver",
        )


def _burgers(columns, *, fields, params, nu=None, n_quad=None):
    from .burgers import burgers_cole_hopf

    _need(columns, ["x", "t"], "burgers_cole_hopf")
    nu = float(params.get("nu", 0.01 / np.pi)) if nu is None else float(nu)
    kwargs = {} if n_quad is None else {"n_quad": int(n_quad)}
    return {fields[0]: burgers_cole_hopf(columns["x"], columns["t"], nu=nu, **kwargs)}


def _allen_cahn(columns, *, fields, params, eps=None, a=None, n=None):
    from .allen_cahn import allen_cahn_reference

    _need(columns, ["x", "t"], "allen_cahn_spectral")
    eps = float(params.get("eps", 1e-4)) if eps is None else float(eps)
    a = float(params.get("a", 5.0)) if a is None else float(a)
    kwargs = {} if n is None else {"n": int(n)}
    return {fields[0]: allen_cahn_reference(columns["x"], columns["t"], eps=eps, a=a, **kwargs)}


def _schrodinger(columns, *, fields, params, potential, states, jumps=None, n=2000):
    from ..core.expressions import evaluate_numpy
    from .schrodinger import schrodinger_reference

    _need(columns, ["x"], "schrodinger")
    x = np.asarray(columns["x"], float)
    _, grid, psi = schrodinger_reference(
        lambda z: evaluate_numpy(
            potential, {"x": np.asarray(z, float)}, params, path="equation.potential"
        ),
        float(x.min()),
        float(x.max()),
        states=int(states),
        n=int(n),
        jumps=jumps or None,
    )
    return {f: np.interp(x, grid, psi[k]) for k, f in enumerate(fields[: int(states)])}


_schrodinger.sign_free = True  # eigenfunctions are compared up to sign


def _nls(columns, *, fields, params, n=None, dt=None, order=None):
    """The NLS benchmark i h_t + 0.5 h_xx + |h|^2 h = 0, h(x, 0) = 2 sech(x), periodic on
    [-5, 5] (Raissi et al. 2019), by split-step Fourier: complex values of the first field."""
    from .schrodinger import nls_reference

    _need(columns, ["x", "t"], "nls_split_step")
    x = np.asarray(columns["x"], float)
    if x.min() < -5 - 1e-9 or x.max() > 5 + 1e-9:
        raise SpecError(
            "reference solver 'nls_split_step' solves the benchmark on x in [-5, 5]; the domain "
            f"spans [{x.min():g}, {x.max():g}]",
            path="reference.solver",
        )
    options = {k: v for k, v in (("n", n), ("dt", dt), ("order", order)) if v is not None}
    return {fields[0]: nls_reference(x, columns["t"], **options)}


def _nonlinear_heat(columns, *, fields, params, k, u0, n=801, times=401):
    """``u_t = (k(u) u_x)_x`` on x in [0, 1], t from 0, ``u`` held at ``u0`` on the ends (the
    ODIL inverse benchmark): ``k`` an expression in ``u``, ``u0`` one in ``x``."""
    from ..core.expressions import parse_expression
    from .heat import heat_at, nonlinear_heat

    _need(columns, ["x", "t"], "nonlinear_heat")
    names = tuple(params)
    k_expr = parse_expression(k, symbols=("u", *names), path="reference.options.k")
    u0_expr = parse_expression(u0, symbols=("x", *names), path="reference.options.u0")
    x, t = (np.asarray(columns[c], float) for c in ("x", "t"))
    if x.min() < -1e-12 or x.max() > 1 + 1e-12 or t.min() < -1e-12:
        raise SpecError(
            "reference solver 'nonlinear_heat' solves on x in [0, 1] from t = 0; the points span "
            f"x in [{x.min():g}, {x.max():g}], t from {t.min():g}",
            path="reference.solver",
        )
    solution = nonlinear_heat(
        lambda u: k_expr({"u": u, **params}) + 0 * u,
        lambda z: u0_expr({"x": z, **params}) + 0 * z,
        t_final=float(t.max()),
        n=int(n),
        times=int(times),
    )
    return {fields[0]: heat_at(t, x, solution)}


REFERENCE_SOLVERS = {
    "nonlinear_heat": _nonlinear_heat,
    "schrodinger": _schrodinger,
    "burgers_cole_hopf": _burgers,
    "allen_cahn_spectral": _allen_cahn,
    "nls_split_step": _nls,
}
