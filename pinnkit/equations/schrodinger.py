"""Eigenvalue problems: the time-independent Schrödinger equation ``-ψ'' + V(x) ψ = E ψ``.

After Sarkar, "Physics-Informed Neural Networks for One-Dimensional Quantum Well Problems"
(arXiv 2504.05367): trial wavefunctions that meet the Dirichlet conditions exactly, a
normalisation term, and trainable energies. pinnkit goes further:

- ``states: N`` solves the lowest N eigenpairs in one run, each normalised and orthogonal to
  the others (integral conditions by Gauss–Legendre quadrature);
- the energies start from a cheap finite-difference estimate (a 64-interval grid), so the
  state each one converges to does not depend on the luck of initialisation; the PINN then
  refines them (the estimate is ~1e-3 off; the bars are 1e-4 and tighter);
- ``ψ ≡ 0`` cannot win: normalisation is a loss term that it fails.

A spec writes ``equation: {name: schrodinger, potential: "x^2", states: 3}`` with one field
(``fields: [psi]``); `expand_schrodinger` rewrites it into a plain spec with fields
``psi0 .. psi{N-1}``, unknowns ``E0 .. E{N-1}``, one residual per state, the conditions on
``psi`` repeated for every state, the integral conditions, and (without another reference) the
finite-difference reference with Richardson extrapolation of `pinnkit.reference.schrodinger`.
The potential is an expression of ``x`` or a builtin name: ``infinite_well`` (0),
``harmonic`` (x²), ``finite_well`` (0 inside ``|x - c| < width/2``, ``depth`` outside) and
``barrier`` (``height`` inside, 0 outside), with ``c`` the centre of the domain.
"""

from __future__ import annotations

import copy
import re

import numpy as np

from ..errors import SpecError, did_you_mean

POTENTIALS = {
    "infinite_well": ("0", {}),
    "harmonic": ("x^2", {}),
    "finite_well": (
        "where(abs(x - ({c})) < ({width})/2, 0, {depth})",
        {"depth": 100.0, "width": 1.0},
    ),
    "barrier": (
        "where(abs(x - ({c})) < ({width})/2, {height}, 0)",
        {"height": 100.0, "width": 1.0},
    ),
}
OPTIONS = {"potential", "states", "energies", "normalisation_weight", "depth", "width", "height"}
COARSE_INTERVALS = 64


def is_eigen_spec(data: dict) -> bool:
    eq = data.get("equation")
    name = eq if isinstance(eq, str) else eq.get("name") if isinstance(eq, dict) else None
    return name == "schrodinger"


def _potential(options: dict, lo: float, hi: float) -> tuple[str, list[float]]:
    """The potential as expression text, and where it jumps (for the reference solver)."""
    pot = options.get("potential", "infinite_well")
    if isinstance(pot, str) and re.fullmatch(r"[a-z_]+", pot) and pot in POTENTIALS:
        template, defaults = POTENTIALS[pot]
        values = {k: float(options.get(k, v)) for k, v in defaults.items()}
        c = (lo + hi) / 2
        jumps = [c - values["width"] / 2, c + values["width"] / 2] if "width" in values else []
        return template.format(c=c, **values), jumps
    if isinstance(pot, str) and re.fullmatch(r"[a-z_]+", pot) and pot != "x":
        raise SpecError(
            f"unknown potential {pot!r}{did_you_mean(pot, POTENTIALS)} builtin potentials are "
            f"{sorted(POTENTIALS)}, or give an expression of x",
            path="equation.potential",
        )
    return str(pot), []


def _evaluate(text: str, x: np.ndarray, params: dict) -> np.ndarray:
    import jax

    from ..core.expressions import parse_expression

    expr = parse_expression(text, symbols=["x", *params], path="equation.potential")
    with jax.enable_x64(True):
        return np.broadcast_to(np.asarray(expr({"x": x, **params}), dtype=float), x.shape).copy()


def expand_schrodinger(data: dict) -> dict:
    """Rewrite an eigenvalue spec (``equation: {name: schrodinger, ...}``) as a plain spec."""
    from ..reference.schrodinger import schrodinger_fd

    data = copy.deepcopy(data)
    eq = data["equation"]
    options = {} if isinstance(eq, str) else {k: v for k, v in eq.items() if k != "name"}
    for key in options:
        if key not in OPTIONS:
            raise SpecError(
                f"equation 'schrodinger' has no option {key!r}{did_you_mean(key, OPTIONS)} "
                f"its options are {sorted(OPTIONS)}",
                path=f"equation.{key}",
            )
    coords, fields = data.get("coords"), data.get("fields")
    if coords != ["x"] or not isinstance(fields, list) or len(fields) != 1:
        raise SpecError(
            "the schrodinger equation takes `coords: [x]` and one field (`fields: [psi]`)",
            path="coords" if coords != ["x"] else "fields",
        )
    states = options.get("states", 1)
    if not isinstance(states, int) or isinstance(states, bool) or states < 1:
        raise SpecError(
            f"states must be a whole number >= 1, got {states!r}", path="equation.states"
        )
    try:
        lo, hi = (float(v) for v in data["domain"]["x"])
    except Exception:
        raise SpecError(
            "give the interval as `domain: {x: [a, b]}` with numbers", path="domain"
        ) from None
    params = {k: float(v) for k, v in (data.get("params") or {}).items()}
    potential, jumps = _potential(options, lo, hi)
    psi = fields[0]
    names = [f"{psi}{n}" for n in range(states)]
    energies = [f"E{n}" for n in range(states)]
    pot_fn = lambda x: _evaluate(potential, np.asarray(x, float), params)

    guess = options.get("energies")
    if guess is None:
        guess = list(
            schrodinger_fd(pot_fn, lo, hi, states=states, n=COARSE_INTERVALS, jumps=jumps or None)[
                0
            ]
        )
    elif not isinstance(guess, list) or len(guess) != states:
        raise SpecError(f"energies must list {states} initial values", path="equation.energies")

    data["fields"] = names
    data["unknowns"] = {**(data.get("unknowns") or {}), **dict(zip(energies, map(float, guess)))}
    norms = [f"N{n}" for n in range(states)]
    # Each residual is divided by its state's norm, so shrinking psi does not shrink it: the
    # trivial psi = 0 is no longer a minimum the residual pulls towards.
    data["equation"] = {
        "residuals": [
            f"(-{p}_xx + ({potential})*{p} - {e}*{p})/sqrt({z})"
            for p, e, z in zip(names, energies, norms)
        ]
    }
    data["eigenvalues"] = energies
    conditions = []
    for cond in data.get("conditions") or []:
        targets = {k: v for k, v in cond.items() if k == psi or k.startswith(psi + "_")}
        if not targets:
            conditions.append(cond)
            continue
        for p in names:
            new = {k: v for k, v in cond.items() if k not in targets}
            new.update({p + k[len(psi) :]: v for k, v in targets.items()})
            conditions.append(new)
    data["conditions"] = conditions
    weight = float(options.get("normalisation_weight", 1.0))
    integrals = list(data.get("integrals") or [])
    for i, p in enumerate(names):
        integrals.append(
            {
                "integrand": f"{p}^2",
                "equals": 1,
                "weight": weight,
                "label": f"norm {p}",
                "name": norms[i],
                "log": True,
            }
        )
        for q in names[:i]:
            integrals.append({"integrand": f"{p}*{q}", "equals": 0, "label": f"<{q},{p}>"})
    data["integrals"] = integrals
    if not data.get("reference"):
        data["reference"] = {
            "solver": "schrodinger",
            "options": {"potential": potential, "states": states, "jumps": jumps},
        }
    return data


def reference_energies(data: dict) -> list[float] | None:
    """Reference energies of an expanded spec whose reference is the schrodinger solver."""
    ref = data.get("reference") or {}
    if ref.get("solver") != "schrodinger":
        return None
    from ..reference.schrodinger import schrodinger_reference

    lo, hi = (float(v) for v in data["domain"]["x"])
    params = {k: float(v) for k, v in (data.get("params") or {}).items()}
    opts = ref.get("options", {})
    energies, _, _ = schrodinger_reference(
        lambda x: _evaluate(opts["potential"], np.asarray(x, float), params),
        lo,
        hi,
        states=int(opts["states"]),
        jumps=opts.get("jumps") or None,
    )
    return [float(e) for e in energies]
