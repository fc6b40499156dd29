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
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..core.expressions import evaluate_numpy
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
COARSE_INTERVALS = 64
QUADRATURE_POINTS = 64
TRACE_WEIGHT = 1e-2
EIGEN_STEPS = 9000  # default training: Adam then L-BFGS
ADAM_FRACTION = 1 / 3
MAX_STATES = 64
MAX_POTENTIAL = 1e150  # beyond this V(x) psi overflows float64 in the residuals
Positive = Annotated[float, Field(gt=0, le=1e12)]
Weight = Annotated[float, Field(ge=0, le=1e12)]


class SchrodingerOptions(BaseModel):
    """The options of ``equation: {name: schrodinger, ...}``, checked before the spec is
    expanded, so the expansion only ever sees values of the right type and range."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)
    name: Literal["schrodinger"] = "schrodinger"
    potential: Annotated[str, Field(min_length=1, max_length=2000)] | float = "infinite_well"
    states: Annotated[int, Field(ge=1, le=MAX_STATES, strict=True)] = 1
    energies: list[Annotated[float, Field(ge=-1e12, le=1e12)]] | None = None
    normalisation: Literal["exact", "penalty"] = "exact"
    normalisation_weight: Weight = 1.0
    energy_weight: Weight = 1.0
    trace_weight: Weight = TRACE_WEIGHT
    # the builtin wells' sizes; their defaults are in `POTENTIALS`
    depth: Annotated[float, Field(ge=-1e12, le=1e12)] | None = None
    width: Positive | None = None
    height: Annotated[float, Field(ge=-1e12, le=1e12)] | None = None


OPTIONS = set(SchrodingerOptions.model_fields) - {"name"}


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
    return str(pot), None


def find_jumps(fn, lo: float, hi: float, *, n: int = 4096) -> list[float]:
    """Where a potential given as an expression jumps: steps that stay as the grid is refined.

    A scan on ``n`` cells flags cells whose increment is far above the typical one; bisection
    then narrows each to 1e-12 of the interval, where a jump keeps its height and a steep but
    continuous rise does not. Each location is snapped to the nearest fraction ``p/q`` of the
    interval (q <= 1000) when that is within the bisection's tolerance, so the finite-difference
    reference can put a grid node on it.
    """
    from fractions import Fraction

    x = np.linspace(lo, hi, n + 1)
    v = fn(x)
    dv = np.abs(np.diff(v))
    typical = np.median(dv) + 1e-12 * (1.0 + np.max(np.abs(v)))
    jumps = []
    for i in np.flatnonzero(dv > 50 * typical):
        a, b = x[i], x[i + 1]
        va, height = fn(np.array([a]))[0], dv[i]
        for _ in range(60):
            m = 0.5 * (a + b)
            if abs(fn(np.array([m]))[0] - va) < 0.5 * height:
                a = m
            else:
                b = m
            if b - a < 1e-12 * (hi - lo):
                break
        left, right = fn(np.array([a, b]))
        if abs(right - left) < 0.5 * height:
            continue  # steep, not a jump
        frac = Fraction((0.5 * (a + b) - lo) / (hi - lo)).limit_denominator(1000)
        snapped = lo + float(frac) * (hi - lo)
        jumps.append(snapped if abs(snapped - 0.5 * (a + b)) < 1e-9 * (hi - lo) else 0.5 * (a + b))
    return jumps


def _check_finite(fn, lo: float, hi: float, n: int = 4097) -> None:
    """Refuse a potential that is not finite, or too large to train with, on the interval."""
    with np.errstate(all="ignore"):
        v = np.asarray(fn(np.linspace(lo, hi, n)), float)
    bad = ~np.isfinite(v) | (np.abs(v) > MAX_POTENTIAL)
    if bad.any():
        x = np.linspace(lo, hi, n)[np.argmax(bad)]
        raise SpecError(
            f"the potential is {float(v[np.argmax(bad)])!r} at x = {x:.6g}: it must be finite "
            "and at "
            f"most {MAX_POTENTIAL:g} in size over the domain",
            path="equation.potential",
        )


def _evaluate(text: str, x: np.ndarray, params: dict) -> np.ndarray:
    return evaluate_numpy(text, {"x": x}, params, path="equation.potential")


def expand_schrodinger(data: dict, options: SchrodingerOptions) -> dict:
    """Rewrite an eigenvalue spec (``equation: {name: schrodinger, ...}``) as a plain spec;
    ``options`` are its equation's options, validated (`SchrodingerOptions`)."""
    from ..reference.schrodinger import schrodinger_fd

    data = copy.deepcopy(data)
    options = options.model_dump(exclude_none=True, exclude={"name"})
    coords, fields = data.get("coords"), data.get("fields")
    if coords != ["x"] or not isinstance(fields, list) or len(fields) != 1:
        raise SpecError(
            "the schrodinger equation takes `coords: [x]` and one field (`fields: [psi]`)",
            path="coords" if coords != ["x"] else "fields",
        )
    states = options["states"]
    try:
        lo, hi = (float(v) for v in data["domain"]["x"])
    except Exception:
        raise SpecError(
            "give the interval as `domain: {x: [a, b]}` with numbers", path="domain"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 1e-9 < hi - lo < 1e9):
        raise SpecError(
            f"the interval must be finite with a < b and 1e-9 < b - a < 1e9, got [{lo}, {hi}]",
            path="domain.x",
        )
    params = {k: float(v) for k, v in (data.get("params") or {}).items()}
    potential, jumps = _potential(options, lo, hi)
    psi = fields[0]
    names = [f"{psi}{n}" for n in range(states)]
    energies = [f"E{n}" for n in range(states)]
    pot_fn = lambda x: _evaluate(potential, np.asarray(x, float), params)
    _check_finite(pot_fn, lo, hi)
    if jumps is None:  # an expression: find its steps (where(), step functions)
        jumps = find_jumps(pot_fn, lo, hi)

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
    data["conditions"] = _per_state(data.get("conditions") or [], psi, names)
    integrals = list(data.get("integrals") or [])
    breaks = {"x": jumps} if jumps else {}
    exact = options["normalisation"]
    model = dict(data.get("model") or {})
    if model.get("backend", "mlp") == "mlp" and jumps:
        model.setdefault("interfaces", [f"x - ({a})" for a in jumps])
    if exact == "exact":
        # psi_n = L^{-1} phi_n: orthonormal by construction, so psi = 0 cannot be reached.
        model.setdefault("orthonormal", {"points": QUADRATURE_POINTS, "breaks": breaks})
        residuals = [f"-{p}_xx + ({potential})*{p} - {e}*{p}" for p, e in zip(names, energies)]
    else:
        # Each residual is divided by its state's norm, so shrinking psi does not shrink it.
        norms = [f"N{n}" for n in range(states)]
        residuals = [
            f"(-{p}_xx + ({potential})*{p} - {e}*{p})/sqrt({z})"
            for p, e, z in zip(names, energies, norms)
        ]
        weight = options["normalisation_weight"]
        for i, p in enumerate(names):
            integrals.append(
                {
                    "integrand": f"{p}^2",
                    "equals": 1,
                    "weight": weight,
                    "label": f"norm {p}",
                    "name": norms[i],
                    "log": True,
                    "points": QUADRATURE_POINTS,
                    "breaks": breaks,
                }
            )
            for q in names[:i]:
                integrals.append(
                    {
                        "integrand": f"{p}*{q}",
                        "equals": 0,
                        "label": f"<{q},{p}>",
                        "points": QUADRATURE_POINTS,
                        "breaks": breaks,
                    }
                )
    data["model"] = model
    # Gradient-norm balancing would rescale the energy ties against the residuals; the terms
    # are already in the units of the residual, so fixed weights are the default here.
    train = dict(data.get("train") or {})
    train.setdefault("weighting", "fixed")
    steps = train.get("steps")
    whole = steps is None or (isinstance(steps, int) and not isinstance(steps, bool))
    if train.get("phases") is None and train.get("optimizer") is None and whole:
        # Adam with the energies held at their estimates, so each state settles on the
        # eigenfunction nearest its energy before the energies move; Adam on all; L-BFGS.
        steps = train.pop("steps", None)
        steps = EIGEN_STEPS if steps is None else steps
        adam = int(round(steps * ADAM_FRACTION))
        held = adam // 2
        train["phases"] = [
            {"optimizer": {"name": "adam", "lr": 1e-2}, "steps": held, "freeze": energies},
            {"optimizer": {"name": "adam", "lr": 1e-2}, "steps": adam - held},
            {"optimizer": "lbfgs", "steps": steps - adam},
        ]
    data["train"] = train
    data["equation"] = {"residuals": residuals}
    data["potential"] = potential
    data["integrals"] = integrals
    if exact == "penalty":  # the paper's formulation: the trained energies are the result
        data["eigenvalues"] = energies
        return _with_reference(data, potential, states, jumps)
    # The Rayleigh quotient <psi|H|psi> in weak form (no psi'', exact across jumps of V with
    # the quadrature split there): second-order accurate in the error of psi, so it is what the
    # run reports as the eigenvalue. Tied to the trained energy, it also steers training.
    quotients = [f"R{n}" for n in range(states)]
    for n, (p, e) in enumerate(zip(names, energies)):
        integrals.append(
            {
                "integrand": f"{p}_x^2 + ({potential})*{p}^2",
                "equals": e,
                "label": f"energy {p}",
                "name": quotients[n],
                "points": QUADRATURE_POINTS,
                "breaks": breaks,
                "weight": options["energy_weight"],
            }
        )
    trace = options["trace_weight"]
    if trace > 0:
        # The sum of the quotients of orthonormal states is least for the lowest N states
        # (Ky Fan): it keeps a state from settling on a higher eigenfunction than its own.
        integrals.append(
            {
                "integrand": " + ".join(f"{p}_x^2 + ({potential})*{p}^2" for p in names),
                "equals": 0,
                "minimize": True,
                "label": "trace",
                "points": QUADRATURE_POINTS,
                "breaks": breaks,
                "weight": trace,
            }
        )
    data["eigenvalues"] = quotients
    return _with_reference(data, potential, states, jumps)


def _with_reference(data: dict, potential: str, states: int, jumps: list[float]) -> dict:
    if not data.get("reference"):
        data["reference"] = {
            "solver": "schrodinger",
            "options": {"potential": potential, "states": states, "jumps": jumps},
        }
    return data


def _per_state(conditions: list, psi: str, names: list[str]) -> list:
    """Conditions on ``psi`` (or its derivatives) repeated for every state."""
    out = []
    for cond in conditions:
        targets = {k: v for k, v in cond.items() if k == psi or k.startswith(psi + "_")}
        if not targets:
            out.append(cond)
            continue
        for p in names:
            new = {k: v for k, v in cond.items() if k not in targets}
            new.update({p + k[len(psi) :]: v for k, v in targets.items()})
            out.append(new)
    return out


def reference_energies(data: dict) -> dict[str, float] | None:
    """Reference energies of an expanded spec whose reference is the schrodinger solver, keyed
    by its eigenvalue names and by the trained energies ``E0 ..``."""
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
    values = [float(e) for e in energies]
    trained = [f"E{n}" for n in range(len(values))]
    return {**dict(zip(trained, values)), **dict(zip(data["eigenvalues"], values))}
