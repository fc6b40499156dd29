"""The Li-ion single-particle model (SPM): parameters, an exact oracle and a reference solver.

The model and its "simple" parameter set are those of Hassanaly et al., "PINN surrogate of
Li-ion battery models for parameter inference. Part I: Implementation and multi-fidelity
hierarchies for the single-particle model" (arXiv:2312.17329). One spherical particle stands
for each electrode (``a`` the anode, ``c`` the cathode); lithium diffuses in it,

    dc/dt = (1/r^2) d/dr (r^2 D dc/dr),    dc/dr = 0 at r = 0,    D dc/dr = -j at r = R,

with the outward molar flux ``j`` (mol/m^2/s) set by the applied current ``I`` (A, negative
for a discharge, the paper's convention):

    j_a = -I R_a / (3 eps_a F A L_a)   (> 0 in discharge: the anode delithiates),
    j_c = +I R_c / (3 eps_c F A L_c)   (< 0 in discharge: the cathode lithiates),

i.e. ``j = i / F`` with the interfacial current density ``i = ±I / (a A L)`` and the specific
interfacial area ``a = 3 eps / R``. Kinetics give the overpotentials from ``i`` and the
exchange-current density ``i0``: linearised Butler-Volmer ``eta = (RT/F) i / i0`` or the full
symmetric ``i = 2 i0 sinh(F eta / (2 RT))``. With the anode's solid potential as the ground
(phi_s,a = 0), the electrolyte potential, the cathode's solid potential and the cell voltage are

    phi_e = -eta_a - U_a(x_a,surf),    phi_c = phi_e + eta_c + U_c(x_c,surf),    V = phi_c,

where ``x = c / c_max`` is the stoichiometry and ``U`` the open-circuit potential. The two
degradation multipliers of the paper scale the anode's exchange current (``i0_a``) and the
cathode's diffusivity (``D_s,c``).

Exact oracle. With constant ``D``, ``j`` the surface concentration has the classical series
(Carslaw & Jaeger §9.3, Crank eq. 6.60), with ``tau = D t / R^2``,

    c(R, t) = c0 - (j R / D) [3 tau + 1/5 - 2 sum_n exp(-lambda_n^2 tau) / lambda_n^2],

``lambda_n`` the positive roots of ``tan(lambda) = lambda``. It converges slowly as t -> 0, so
below ``tau = 0.02`` the oracle uses the short-time (Laplace) solution
``c(R, t) = c0 - (j R / D) [exp(tau) erfc(-sqrt(tau)) - 1]``, exact up to reflections from the
centre of relative size ``exp(-1 / tau)`` (below 1e-21 there); both branches agree to round-off
where they meet (tested). With the simple set it gives the paper's numbers: the voltage at
1350 s is 3.726275 V at (deg_i0_a, deg_ds_c) = (0.5, 1) and 3.782628 V at (4, 10) with the
*linearised* kinetics (the full Butler-Volmer form gives 3.729301 V and 3.782657 V).

Reference solver. Cell-centred finite volumes in r on ``nodes`` shells of equal width ``h``:
the unknowns are the shell averages, the flux through the face at ``r_{i+1/2}`` is
``D (c_{i+1} - c_i) / h`` weighted by the face area, the centre face carries nothing and the
outer face the applied flux, so the discrete lithium content changes by exactly the applied
flux (tested to round-off; a Runge-Kutta method keeps linear invariants). The surface value is
extrapolated from the last two shell averages and the known surface gradient ``-j / D`` by the
quadratic in r that reproduces them (exact for quadratics), so the surface concentration and
the voltage converge at second order in ``h`` (measured: order 2.0; 64 shells are 7.2e-6 V
from the oracle over the paper's output times; `benchmarks/spm_results.md`). Time: diffrax's
Kvaerno5 (L-stable ESDIRK) with a PID step-size controller, both particles in one vmapped
solve, the whole solve jit-compiled and vmapped over batches of degradation parameters.

Where pinnkit differs from the paper's own integrator (PINNSTRIPES ``spm_int.py``, node-based
finite differences with implicit Euler): finite volumes that conserve lithium, adaptive
high-order time steps, SI units (mol/m^3) throughout and no clipping of the stoichiometry (the
open-circuit potentials of the simple set are linear, defined for every x).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from collections.abc import Mapping
from typing import Literal, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erfc
from jaxtyping import Array, ArrayLike, Float

from pinnkit.errors import SpecError

__all__ = [
    "FARADAY",
    "GAS_CONSTANT",
    "SPMParameters",
    "SPMSolution",
    "exact_surface_concentration",
    "exact_voltage",
    "load_spm_parameters",
    "potentials",
    "solve_spm",
    "surface_fluxes",
]

FARADAY = 96485.33212
"""The Faraday constant, C/mol (CODATA 2018, exact)."""
GAS_CONSTANT = 8.314462618
"""The molar gas constant, J/(mol K) (CODATA 2018, exact)."""

Kinetics = Literal["linear", "butler_volmer"]
_KINETICS = ("linear", "butler_volmer")

_SHORT_TIME_TAU = 0.02  # below: the short-time oracle; above: the eigenfunction series
_SERIES_TERMS = 64  # at tau >= 0.02 the first omitted term is exp(-840)


def _series_roots(count: int) -> np.ndarray:
    """The first ``count`` positive roots of ``tan(lambda) = lambda``.

    Writing ``lambda = (n + 1/2) pi - delta`` turns the equation into
    ``delta = arctan(1 / lambda)``, a contraction (factor below 0.05 for every n >= 1) whose
    fixed point is the root in ((n - 1/2) pi, (n + 1/2) pi) free of the poles of tan."""
    mu = (np.arange(1, count + 1) + 0.5) * np.pi
    delta = np.zeros(count)
    for _ in range(100):
        delta = np.arctan(1.0 / (mu - delta))
    return mu - delta


_ROOTS = _series_roots(_SERIES_TERMS)


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def _number(value, name: str, *, positive: bool = True, nonzero: bool = False) -> float:
    if isinstance(value, bool):
        raise SpecError(f"expected a number, got {value!r}", path=name)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"expected a number, got {value!r}", path=name) from None
    if not math.isfinite(v):
        raise SpecError(f"expected a finite number, got {value!r}", path=name)
    if positive and v <= 0:
        raise SpecError(f"expected a number > 0, got {value!r}", path=name)
    if nonzero and v == 0:
        raise SpecError(f"expected a non-zero number, got {value!r}", path=name)
    return v


@dataclasses.dataclass(frozen=True)
class SPMParameters:
    """The physical parameters of the single-particle model, in SI units.

    The defaults are the paper's simple set (Hassanaly et al., arXiv:2312.17329): a 2C
    discharge of a graphite-like anode against a cathode with linear open-circuit potentials,
    constant exchange-current densities and diffusivities. Suffix ``_a`` is the anode
    (negative electrode), ``_c`` the cathode. The degradation multipliers are not parameters
    here but arguments of the solvers (``i0_a`` and ``diffusivity_c`` are their reference
    values: the model uses ``deg_i0_a * i0_a`` and ``deg_ds_c * diffusivity_c``).

    Attributes:
        current: the applied current I (A); negative for a discharge.
        area: the electrode plate area A (m^2).
        thickness_a, thickness_c: electrode thicknesses L (m).
        eps_s_a, eps_s_c: active-material volume fractions (in (0, 1]).
        radius_a, radius_c: particle radii R_s (m).
        c_max_a, c_max_c: maximum lithium concentrations in the solid (mol/m^3).
        x0_a, x0_c: initial stoichiometries c / c_max (in (0, 1)).
        ocp_a, ocp_c: open-circuit potentials as polynomial coefficients in the stoichiometry,
            lowest power first (V): ``U(x) = ocp[0] + ocp[1] x + ...``.
        i0_a, i0_c: exchange-current densities (A/m^2); ``i0_a`` before ``deg_i0_a``.
        diffusivity_a, diffusivity_c: solid diffusivities D_s (m^2/s); ``diffusivity_c``
            before ``deg_ds_c``.
        temperature: the cell temperature T (K).
        t_max: the end of the discharge the parameter set describes (s).
    """

    current: float = -0.0378
    area: float = 1.4e-3
    thickness_a: float = 44e-6
    thickness_c: float = 42e-6
    eps_s_a: float = 0.5430727763
    eps_s_c: float = 0.47662
    radius_a: float = 4e-6
    radius_c: float = 1.8e-6
    c_max_a: float = 30530.0
    c_max_c: float = 49600.0
    x0_a: float = 0.91
    x0_c: float = 0.39
    ocp_a: tuple[float, ...] = (0.2, -0.2)
    ocp_c: tuple[float, ...] = (5.0, -1.4)
    i0_a: float = 2.0
    i0_c: float = 3.0
    diffusivity_a: float = 3e-14
    diffusivity_c: float = 3.5e-15
    temperature: float = 303.15
    t_max: float = 1350.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            name = field.name
            value = getattr(self, name)
            if name in ("ocp_a", "ocp_c"):
                if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                    raise SpecError(
                        f"expected a list of polynomial coefficients (lowest power first), "
                        f"got {value!r}",
                        path=name,
                    )
                coeffs = tuple(
                    _number(v, f"{name}[{i}]", positive=False) for i, v in enumerate(value)
                )
                if not coeffs:
                    raise SpecError("expected at least one coefficient, got none", path=name)
                object.__setattr__(self, name, coeffs)
            elif name == "current":
                object.__setattr__(self, name, _number(value, name, positive=False, nonzero=True))
            else:
                object.__setattr__(self, name, _number(value, name))
        for name in ("eps_s_a", "eps_s_c"):
            if getattr(self, name) > 1:
                value = getattr(self, name)
                raise SpecError(f"expected a volume fraction in (0, 1], got {value}", path=name)
        for name in ("x0_a", "x0_c"):
            if getattr(self, name) >= 1:
                value = getattr(self, name)
                raise SpecError(f"expected a stoichiometry in (0, 1), got {value}", path=name)

    @property
    def thermal_voltage(self) -> float:
        """RT/F (V)."""
        return GAS_CONSTANT * self.temperature / FARADAY


def load_spm_parameters(source: str | os.PathLike | Mapping) -> SPMParameters:
    """Read SPM parameters from a JSON or YAML file (or a mapping) of `SPMParameters` fields.

    Missing fields keep the simple set's values, so a file lists only what it changes.

    Arguments:
        source: a path to a ``.json``, ``.yaml`` or ``.yml`` file holding one mapping, or the
            mapping itself.

    Returns:
        The `SPMParameters`.

    Raises:
        SpecError: the file cannot be read or is not a mapping, a key is not a field (the
            message lists the fields), or a value is out of range (the message names it).

    Example:
        ```python
        params = load_spm_parameters({"current": -0.0189})   # a 1C discharge
        ```
    """
    if isinstance(source, Mapping):
        data, where = source, "parameters"
    else:
        path = pathlib.Path(source)
        where = str(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise SpecError(f"cannot read the parameter file: {e}", path="source") from None
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            elif path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                raise SpecError(
                    f"expected a .json, .yaml or .yml parameter file, got {path.name!r}",
                    path="source",
                )
        except (json.JSONDecodeError, ValueError) as e:
            if isinstance(e, SpecError):
                raise
            raise SpecError(f"{where} is not valid JSON/YAML: {e}", path="source") from None
        except Exception as e:  # yaml.YAMLError and friends
            raise SpecError(f"{where} is not valid YAML: {e}", path="source") from None
    if not isinstance(data, Mapping):
        raise SpecError(
            f"expected a mapping of parameter names to values in {where}, got "
            f"{type(data).__name__}",
            path="source",
        )
    known = [f.name for f in dataclasses.fields(SPMParameters)]
    unknown = [k for k in data if k not in known]
    if unknown:
        raise SpecError(
            f"unknown SPM parameter {unknown[0]!r} in {where}; the fields are {', '.join(known)}",
            path=str(unknown[0]),
        )
    return SPMParameters(**dict(data))


def surface_fluxes(params: SPMParameters) -> tuple[float, float]:
    """The outward molar fluxes ``(j_a, j_c)`` (mol/m^2/s) at the particle surfaces.

    ``j = i / F`` with the interfacial current density ``i_a = -I / (a_a A L_a)``,
    ``i_c = I / (a_c A L_c)`` and ``a = 3 eps_s / R_s``; with ``I < 0`` (discharge) lithium
    leaves the anode (``j_a > 0``) and enters the cathode (``j_c < 0``).
    """
    p = params
    j_a = -p.current * p.radius_a / (3 * p.eps_s_a * FARADAY * p.area * p.thickness_a)
    j_c = p.current * p.radius_c / (3 * p.eps_s_c * FARADAY * p.area * p.thickness_c)
    return j_a, j_c


def _ocp(coeffs: tuple[float, ...], x):
    return jnp.polyval(jnp.asarray(coeffs[::-1]), x)


def _check_kinetics(kinetics) -> str:
    if kinetics not in _KINETICS:
        raise SpecError(
            f"expected one of {', '.join(map(repr, _KINETICS))}, got {kinetics!r}",
            path="kinetics",
        )
    return kinetics


def _overpotential(i, i0, thermal_voltage, kinetics: str):
    if kinetics == "linear":
        return thermal_voltage * i / i0
    return 2 * thermal_voltage * jnp.arcsinh(i / (2 * i0))


def potentials(
    params: SPMParameters,
    c_surface_a: Float[ArrayLike, "*shape"],
    c_surface_c: Float[ArrayLike, "*shape"],
    *,
    deg_i0_a: Float[ArrayLike, "*shape"] = 1.0,
    kinetics: Kinetics = "linear",
) -> tuple[Float[Array, "*shape"], Float[Array, "*shape"]]:
    """The electrolyte and cathode potentials from the surface concentrations.

    ``phi_e = -eta_a - U_a(x_a)`` and ``phi_c = phi_e + eta_c + U_c(x_c)`` with the anode as
    ground, so ``phi_c`` is the cell voltage (module docstring).

    Arguments:
        params: the `SPMParameters`.
        c_surface_a, c_surface_c: surface concentrations (mol/m^3), broadcastable.
        deg_i0_a: the anode exchange-current multiplier.
        kinetics: ``"linear"`` (linearised Butler-Volmer, the paper's) or ``"butler_volmer"``.

    Returns:
        ``(phi_e, phi_c)`` in volts.
    """
    kinetics = _check_kinetics(kinetics)
    j_a, j_c = surface_fluxes(params)
    vt = params.thermal_voltage
    eta_a = _overpotential(FARADAY * j_a, params.i0_a * jnp.asarray(deg_i0_a), vt, kinetics)
    eta_c = _overpotential(FARADAY * j_c, params.i0_c, vt, kinetics)
    phi_e = -eta_a - _ocp(params.ocp_a, jnp.asarray(c_surface_a) / params.c_max_a)
    phi_c = phi_e + eta_c + _ocp(params.ocp_c, jnp.asarray(c_surface_c) / params.c_max_c)
    return phi_e, phi_c


# --------------------------------------------------------------------------------------------
# Exact oracle
# --------------------------------------------------------------------------------------------


def _short_time_shape(tau):
    """``(D / (j R)) (c0 - c(R, t))`` for small ``tau``, up to O(exp(-1 / tau)): the inverse
    Laplace transform of ``1 / (s (p - 1))``, ``p = sqrt(s)``, i.e. of the transform
    ``1 / (s (p coth p - 1))`` with ``coth p`` -> 1."""
    # sqrt of at least the smallest normal number: at tau = 0 the gradient of sqrt is
    # infinite, and a sampler differentiating in D at t = 0 would get 0 * inf = NaN
    root = jnp.sqrt(jnp.maximum(tau, jnp.finfo(jnp.result_type(tau, float)).tiny))
    return jnp.exp(tau) * erfc(-root) - 1.0


def _series_shape(tau):
    """The same from the eigenfunction series (64 terms: exact to round-off for
    ``tau >= 0.02``)."""
    lam2 = jnp.asarray(_ROOTS**2, dtype=jnp.result_type(tau, float))
    decay = jnp.exp(-lam2 * jnp.asarray(tau)[..., None]) / lam2
    return 3 * tau + 0.2 - 2 * jnp.sum(decay, axis=-1)


def exact_surface_concentration(
    t: Float[ArrayLike, "*shape"],
    R: float,
    D: Float[ArrayLike, "*shape"],
    c0: float,
    j: float,
) -> Float[Array, "*shape"]:
    """The surface concentration of a sphere under a constant outward surface flux.

    Solves ``c_t = D (1/r^2)(r^2 c_r)_r`` with ``c = c0`` at t = 0 and ``D c_r(R) = -j``
    (the module docstring gives the series and its short-time form); exact to round-off for
    every ``t >= 0`` (negative times are read as 0). Pure JAX: jit-, vmap- and
    grad-compatible (in D also at t = 0); call it with float64 inputs (under x64) for full accuracy.

    Arguments:
        t: times (s).
        R: the particle radius (m).
        D: the diffusivity (m^2/s), broadcastable against ``t``.
        c0: the initial (uniform) concentration (mol/m^3).
        j: the outward molar flux (mol/m^2/s); positive removes lithium.

    Returns:
        ``c(R, t)`` (mol/m^3), the broadcast shape of ``t`` and ``D``.
    """
    D = jnp.asarray(D)
    tau = jnp.maximum(jnp.asarray(t), 0.0) * D / R**2
    shape = jnp.where(tau < _SHORT_TIME_TAU, _short_time_shape(tau), _series_shape(tau))
    return c0 - (j * R / D) * shape


def _degradation(value, name: str):
    """A degradation multiplier: checked positive and finite when it is concrete."""
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, jax.errors.TracerArrayConversionError):
        return value  # a tracer: checked by the caller's concrete call, if any
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise SpecError(f"expected positive finite values, got {value!r}", path=name)
    return v


def exact_voltage(
    params: SPMParameters,
    t: Float[ArrayLike, "*shape"],
    *,
    deg_i0_a: Float[ArrayLike, "*shape"] = 1.0,
    deg_ds_c: Float[ArrayLike, "*shape"] = 1.0,
    kinetics: Kinetics = "linear",
) -> Float[Array, "*shape"]:
    """The exact cell voltage of the SPM under constant current (`exact_surface_concentration`
    in each particle, then `potentials`).

    Valid for constant diffusivities (the simple set); ``t``, ``deg_i0_a`` and ``deg_ds_c``
    broadcast together. Runs in float64.

    Arguments:
        params: the `SPMParameters`.
        t: times (s), ``>= 0``.
        deg_i0_a: the anode exchange-current multiplier (paper: in [0.5, 4]).
        deg_ds_c: the cathode diffusivity multiplier (paper: in [1, 10]).
        kinetics: ``"linear"`` or ``"butler_volmer"``.

    Returns:
        The voltage ``V = phi_c - phi_s,a`` (V).

    Example:
        ```python
        exact_voltage(SPMParameters(), 1350.0, deg_i0_a=0.5, deg_ds_c=1.0)   # 3.726275 V
        ```
    """
    kinetics = _check_kinetics(kinetics)
    deg_i0_a = _degradation(deg_i0_a, "deg_i0_a")
    deg_ds_c = _degradation(deg_ds_c, "deg_ds_c")
    with jax.enable_x64(True):
        p = params
        j_a, j_c = surface_fluxes(p)
        t = jnp.asarray(t, jnp.float64)
        c_a = exact_surface_concentration(t, p.radius_a, p.diffusivity_a, p.x0_a * p.c_max_a, j_a)
        d_c = p.diffusivity_c * jnp.asarray(deg_ds_c, jnp.float64)
        c_c = exact_surface_concentration(t, p.radius_c, d_c, p.x0_c * p.c_max_c, j_c)
        return potentials(p, c_a, c_c, deg_i0_a=deg_i0_a, kinetics=kinetics)[1]


# --------------------------------------------------------------------------------------------
# Reference solver
# --------------------------------------------------------------------------------------------


class SPMSolution(eqx.Module):
    """The SPM solved over time (leading batch axes where the degradation was a batch).

    Attributes:
        t: the output times (s), shape ``(times,)``.
        r_a, r_c: the shell centres (m), shape ``(nodes,)``.
        c_a, c_c: the shell-average concentrations (mol/m^3), shape ``(*batch, times, nodes)``.
        c_surface_a, c_surface_c: the surface concentrations (mol/m^3), ``(*batch, times)``.
        phi_e: the electrolyte potential (V), ``(*batch, times)``.
        phi_c: the cathode solid potential (V), ``(*batch, times)``.
        voltage: the cell voltage ``phi_c - phi_s,a = phi_c`` (V), ``(*batch, times)``.
    """

    t: Float[Array, " times"]
    r_a: Float[Array, " nodes"]
    r_c: Float[Array, " nodes"]
    c_a: Float[Array, "*batch times nodes"]
    c_c: Float[Array, "*batch times nodes"]
    c_surface_a: Float[Array, "*batch times"]
    c_surface_c: Float[Array, "*batch times"]
    phi_e: Float[Array, "*batch times"]
    phi_c: Float[Array, "*batch times"]
    voltage: Float[Array, "*batch times"]


class _Shells(NamedTuple):
    """The finite-volume geometry of one particle on the unit radius (scaled by R)."""

    volume: np.ndarray  # shell volumes / (4 pi), (n,)
    area: np.ndarray  # face areas / (4 pi) at r_{i+1/2}, i = 0..n, (n + 1,)
    centres: np.ndarray  # shell midpoints, (n,)
    weights: np.ndarray  # surface = w0 c[n-2] + w1 c[n-1] + w2 * (R * surface gradient)


def _shells(nodes: int) -> _Shells:
    faces = np.linspace(0.0, 1.0, nodes + 1)
    volume = (faces[1:] ** 3 - faces[:-1] ** 3) / 3.0
    # Shell averages of (r - 1)^k, k = 0, 1, 2, for the last two shells (4-point Gauss is exact
    # for these degree-4 integrands): the quadratic c_s + g (r - 1) + q (r - 1)^2 with the
    # known slope g matching both averages gives c_s = w0 c[-2] + w1 c[-1] + w2 g.
    z, w = np.polynomial.legendre.leggauss(4)
    moments = []
    for lo, hi in ((faces[-3], faces[-2]), (faces[-2], faces[-1])):
        r = 0.5 * (hi - lo) * z + 0.5 * (hi + lo)
        weight = w * r**2
        moments.append([np.sum(weight * (r - 1.0) ** k) / np.sum(weight) for k in (1, 2)])
    (m1a, m2a), (m1b, m2b) = moments
    # c[-2] - g m1a = c_s + q m2a ;  c[-1] - g m1b = c_s + q m2b
    w0 = -m2b / (m2a - m2b)
    w1 = m2a / (m2a - m2b)
    w2 = -(w0 * m1a + w1 * m1b)
    return _Shells(volume, faces**2, 0.5 * (faces[1:] + faces[:-1]), np.array([w0, w1, w2]))


def _particle(t_eval, rate, g_out, *, nodes, rtol, atol):
    """One particle in scaled variables: ``u = c / c0`` on ``s = r / R``, so that
    ``du/dt = rate * (1/s^2) d/ds (s^2 du/ds)`` with ``rate = D / R^2`` and
    ``du/ds (1) = -g_out``, ``g_out = j R / (D c0)``; uniform tolerances on ``u`` suit both
    particles. Returns the shell averages ``(times, nodes)`` and the surface values
    ``(times,)`` of ``u``."""
    shells = _shells(nodes)
    h = 1.0 / nodes
    volume = jnp.asarray(shells.volume)
    inner_area = jnp.asarray(shells.area[1:-1])

    def rhs(t, u, args):
        # What crosses each face (per 4 pi): nothing at the centre, the applied flux at s = 1.
        through = jnp.concatenate(
            [
                jnp.zeros(1, u.dtype),
                inner_area * rate * (u[1:] - u[:-1]) / h,
                -(rate * g_out)[None],
            ]
        )
        return (through[1:] - through[:-1]) / volume

    t1 = t_eval[-1]
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        diffrax.Kvaerno5(),
        0.0,
        t1,
        dt0=t1 * 1e-8,
        y0=jnp.ones(nodes, jnp.float64),
        saveat=diffrax.SaveAt(ts=t_eval),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=100_000,
    )
    u = sol.ys
    w0, w1, w2 = shells.weights
    # The flux starts at t = 0+: at t = 0 itself the profile is flat.
    slope = jnp.where(t_eval > 0, -g_out, 0.0)
    return u, w0 * u[:, -2] + w1 * u[:, -1] + w2 * slope


@eqx.filter_jit
def _solve_batch(params, t_eval, deg_ds_c, nodes, rtol, atol):
    # Both particles in one vmapped solve (one compiled integrator; the adaptive steps run in
    # lockstep, each error-controlled). The kinetics only post-process the surface
    # concentrations (`potentials`, outside), so one program serves both kinetics and every
    # deg_i0_a.
    p = params
    j = jnp.asarray(surface_fluxes(p))
    c0 = jnp.asarray([p.x0_a * p.c_max_a, p.x0_c * p.c_max_c])
    radius = jnp.asarray([p.radius_a, p.radius_c])

    def one(d):
        D = jnp.stack([jnp.asarray(p.diffusivity_a, d.dtype), p.diffusivity_c * d])
        u, surface = jax.vmap(
            lambda rate, g: _particle(t_eval, rate, g, nodes=nodes, rtol=rtol, atol=atol)
        )(D / radius**2, j * radius / (D * c0))
        return c0[0] * u[0], c0[1] * u[1], c0[0] * surface[0], c0[1] * surface[1]

    return jax.vmap(one)(deg_ds_c)


def solve_spm(
    params: SPMParameters,
    t_eval: Float[ArrayLike, " times"],
    *,
    deg_i0_a: Float[ArrayLike, "*batch"] = 1.0,
    deg_ds_c: Float[ArrayLike, "*batch"] = 1.0,
    nodes: int = 64,
    kinetics: Kinetics = "linear",
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> SPMSolution:
    """Solve the single-particle model by finite volumes in r and diffrax in time.

    Method in the module docstring: ``nodes`` equal-width shells per particle (lithium is
    conserved exactly), Kvaerno5 with a PID controller, second-order surface extrapolation.
    ``deg_i0_a`` and ``deg_ds_c`` may be arrays (broadcast together): the batch is solved in
    one compiled, vmapped program and the result gains their shape as leading axes. Runs in
    float64 (a `jax.enable_x64` context). The time integration is converged at the defaults
    (tightening them changes the voltage by less than 2e-9 V); the grid error falls as
    ``nodes^-2``: against the exact oracle, 7.2e-6 V at 64 shells over the paper's outputs
    (every 10 s) and 2.2e-5 V over t >= 1 s, 0.55 mV at t = 1 ms, where the diffusion layer
    is thinner than one shell (`benchmarks/spm_results.md`).

    Arguments:
        params: the `SPMParameters` (e.g. the default simple set, or `load_spm_parameters`).
        t_eval: output times (s): finite, non-decreasing, from ``>= 0`` to ``> 0``. The
            solve runs from 0 to ``t_eval[-1]``.
        deg_i0_a: the anode exchange-current multiplier (paper: [0.5, 4]).
        deg_ds_c: the cathode diffusivity multiplier (paper: [1, 10]).
        nodes: shells per particle (>= 3).
        kinetics: ``"linear"`` (linearised Butler-Volmer, the paper's) or ``"butler_volmer"``.
        rtol, atol: the step-size controller's tolerances on ``c / c0``.

    Returns:
        An `SPMSolution`.

    Raises:
        SpecError: an argument is malformed (the message names it).

    Example:
        ```python
        t = np.linspace(0.0, 1350.0, 136)
        solution = solve_spm(SPMParameters(), t, deg_i0_a=[0.5, 4.0], deg_ds_c=[1.0, 10.0])
        solution.voltage.shape   # (2, 136)
        ```
    """
    if not isinstance(params, SPMParameters):
        raise SpecError(
            f"expected SPMParameters, got {type(params).__name__}; build one with "
            "SPMParameters(...) or load_spm_parameters(path)",
            path="params",
        )
    kinetics = _check_kinetics(kinetics)
    if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or nodes < 3:
        raise SpecError(f"expected an integer >= 3, got {nodes!r}", path="nodes")
    nodes = int(nodes)
    rtol = _number(rtol, "rtol")
    atol = _number(atol, "atol")
    try:
        t = np.asarray(t_eval, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpecError(f"expected an array of times, got {t_eval!r}", path="t_eval") from None
    if (
        t.ndim != 1
        or t.size == 0
        or not np.all(np.isfinite(t))
        or t[0] < 0
        or t[-1] <= 0
        or np.any(np.diff(t) < 0)
    ):
        raise SpecError(
            "expected a non-empty 1D array of finite, non-decreasing times from >= 0 to > 0, "
            f"got shape {t.shape} with values in [{np.min(t, initial=np.nan):g}, "
            f"{np.max(t, initial=np.nan):g}]",
            path="t_eval",
        )
    deg_i0_a = _degradation(deg_i0_a, "deg_i0_a")
    deg_ds_c = _degradation(deg_ds_c, "deg_ds_c")
    with jax.enable_x64(True):
        # jnp, not np: under an outer jax.vmap / jit the multipliers are tracers
        a, d = jnp.broadcast_arrays(
            jnp.asarray(deg_i0_a, jnp.float64), jnp.asarray(deg_ds_c, jnp.float64)
        )
        batch = a.shape
        out = _solve_batch(params, jnp.asarray(t), d.reshape(-1), nodes, rtol, atol)
        c_a, c_c, s_a, s_c = (x.reshape(batch + x.shape[1:]) for x in out)
        phi_e, phi_c = potentials(params, s_a, s_c, deg_i0_a=a[..., None], kinetics=kinetics)
        centres = _shells(nodes).centres
        return SPMSolution(
            t=jnp.asarray(t),
            r_a=jnp.asarray(centres * params.radius_a),
            r_c=jnp.asarray(centres * params.radius_c),
            c_a=c_a,
            c_c=c_c,
            c_surface_a=s_a,
            c_surface_c=s_c,
            phi_e=phi_e,
            phi_c=phi_c,
            voltage=phi_c,
        )
