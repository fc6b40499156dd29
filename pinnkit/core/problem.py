"""The `Problem`: domain, fields, equation, conditions, observations and reference.

A problem is plain data. It says nothing about how it is solved: backends, trainers and
reports read it. Conditions and references hold callables of an environment (a mapping
from names to arrays), which is what a parsed expression is; from Python any function of
that mapping works too. Complex fields are rewritten over real ones when a problem is made
(`pinnkit.core.complex`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .complex import ComplexFields, split_complex
from .domain import Box, Derivative, Face, parse_derivative
from .equation import AbstractEquation
from .functions import UnknownFunction

EnvFunction = Callable[[Mapping[str, Any]], Any]


@dataclasses.dataclass(frozen=True)
class Condition:
    """A boundary, initial, periodic or other side condition.

    Arguments:
        faces: where it holds; several faces share the same targets (``on: boundary``).
        targets: ``{symbol: value}``: a field (Dirichlet) or a derivative (Neumann, initial
            velocity) equal to a function of the environment.
        residuals: other conditions as functions that vanish (Robin, ``u_x + u``).
        periodic: a coordinate along which every field is periodic (then `faces` is empty).
        weight: the loss weight's starting value.
        label: a short name for reports.
    """

    faces: tuple[Face, ...] = ()
    targets: Mapping[str, EnvFunction] = dataclasses.field(default_factory=dict)
    residuals: tuple[EnvFunction, ...] = ()
    periodic: str | None = None
    weight: float = 1.0
    label: str = "condition"


@dataclasses.dataclass(frozen=True)
class Observations:
    """Measured values of fields (or derivatives) at points: a data term in the loss.

    Arguments:
        points: ``(n, dim)`` coordinates in the problem's order.
        values: ``{symbol: (n,) values}``.
        weight: the loss weight.
        label: a short name for reports.
    """

    points: np.ndarray
    values: Mapping[str, np.ndarray]
    weight: float = 1.0
    label: str = "data"


@dataclasses.dataclass(frozen=True)
class Integral:
    """An integral condition: ``∫ integrand d(over) = equals`` (normalisation, conservation).

    Integrated by Gauss–Legendre quadrature over the coordinates in `over`; when some
    coordinates are left out (``∫ u dx = 1`` at every ``t``), the condition is imposed at
    `samples` values of them drawn each step.

    Arguments:
        integrand: a function of the environment (fields, derivatives, coordinates).
        equals: the value: a number, or a function of the coordinates not integrated over.
        over: the coordinates integrated over.
        points: quadrature nodes per integrated coordinate.
        samples: values of the other coordinates per step (ignored if `over` is all).
        weight: the loss weight's starting value.
        label: a short name for reports.
        name: a symbol for the integral's value that residuals and conditions may use (only
            for integrals over every coordinate): ``psi0_xx/sqrt(N0)`` makes a residual
            blind to the scale of ``psi0``.
        minimize: the term is the integral itself (times its weight), not its misfit to
            `equals`: a variational principle, such as the sum of Rayleigh quotients of
            orthonormal states, whose minimum is the lowest eigenspace.
        breaks: per coordinate, points where the integrand may have a kink or a jump (a
            potential's discontinuities): the quadrature is composite, split there.
        log: compare logarithms (positive quantities such as a norm): the pull towards the
            target is then as strong at a tiny value as near it.
    """

    integrand: EnvFunction
    equals: EnvFunction | float
    over: tuple[str, ...]
    points: int = 64
    samples: int = 16
    weight: float = 1.0
    label: str = "integral"
    name: str | None = None
    log: bool = False
    minimize: bool = False
    breaks: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Reference:
    """Trusted values of the fields on evaluation points.

    Arguments:
        points: ``(n, dim)`` points.
        values: ``{field: (n,)}``; a complex field's values are complex.
        grid_shape: the tensor-grid shape the points come from (C order), for plots.
        source: where the values come from (``exact``, a file, a solver name).
        sign_free: compare up to sign (eigenfunctions).
        up_to_constant: fields compared up to an additive constant (a pressure fixed only by
            its gradient): one constant per time level when ``time_axis`` is given.
        time_axis: the column of ``points`` that is time, if any.

    A value that is NaN is not known there (a table that gives one field on one line and
    another field on another); errors are taken over the known values.
    """

    points: np.ndarray
    values: Mapping[str, np.ndarray]
    grid_shape: tuple[int, ...] | None = None
    source: str = "exact"
    sign_free: bool = False
    up_to_constant: tuple[str, ...] = ()
    time_axis: int | None = None


@dataclasses.dataclass(frozen=True)
class Problem:
    """A PDE problem, forward or inverse.

    Arguments:
        name: a short name (``[a-z0-9_-]+``).
        box: the domain and its ordered coordinates.
        fields: the unknown fields' names.
        equation: the residuals that vanish at the solution.
        conditions: boundary, initial and periodic conditions.
        params: named constants visible to every expression.
        unknowns: trainable scalars with their initial values (inverse problems), and the
            initial weights (a dict of arrays) of each unknown function.
        data: observation terms.
        integrals: integral conditions (normalisation, conservation).
        reference: a lazily computed reference, called once when first needed.
        description: free text.
        true_unknowns: known values of unknowns, to report their errors.
        eigenvalues: unknowns or named integrals that are eigenvalues (reported ascending).
        potential: for an eigenvalue problem, the potential ``V`` (a function of the
            environment), drawn beside the eigenfunctions.
        complex_fields: fields that are complex. Each is listed in `fields` and becomes two
            real fields there, ``h_re`` and ``h_im``; residuals, conditions and observations
            written over the complex values are split into real and imaginary parts (see
            `pinnkit.core.complex`). The equation's requests and the condition targets name the
            complex field (``h``, ``h_xx``) and see complex values.
        functions: unknown functions residuals may call (`pinnkit.core.functions`); their
            weights are in `unknowns` under their names.
        true_functions: ``name -> (exact, grid)``: the true function (an expression of its
            arguments) and the ``(n, args)`` points where its error is measured.

    Example:
        >>> problem = Problem("nls", box, ("h",), equation, conditions, complex_fields=("h",))
        >>> problem.fields
        ('h_re', 'h_im')
    """

    name: str
    box: Box
    fields: tuple[str, ...]
    equation: AbstractEquation
    conditions: tuple[Condition, ...] = ()
    params: Mapping[str, float] = dataclasses.field(default_factory=dict)
    unknowns: Mapping[str, float] = dataclasses.field(default_factory=dict)
    data: tuple[Observations, ...] = ()
    integrals: tuple[Integral, ...] = ()
    reference: Callable[[], Reference] | None = None
    description: str = ""
    true_unknowns: Mapping[str, float] = dataclasses.field(default_factory=dict)
    eigenvalues: tuple[str, ...] = ()
    potential: EnvFunction | None = None
    complex_fields: tuple[str, ...] = ()
    functions: tuple[UnknownFunction, ...] = ()
    true_functions: Mapping[str, tuple] = dataclasses.field(default_factory=dict)

    @property
    def scalar_unknowns(self) -> dict[str, float]:
        """The unknowns that are numbers (not the weights of an unknown function)."""
        names = {f.name for f in self.functions}
        return {k: v for k, v in self.unknowns.items() if k not in names}

    def __post_init__(self):
        object.__setattr__(self, "complex_fields", tuple(self.complex_fields))
        if self.complex_fields:
            for name, value in split_complex(self).items():
                object.__setattr__(self, name, value)

    @property
    def coords(self) -> tuple[str, ...]:
        return self.box.coords

    @property
    def complex(self) -> ComplexFields:
        """The complex fields and the names of their parts."""
        return ComplexFields(self.coords, self.complex_fields)

    def derivative(self, name: str) -> Derivative | None:
        return parse_derivative(name, self.coords, self.fields)

    @property
    def periodic_axes(self) -> tuple[int, ...]:
        return tuple(self.box.axis(c.periodic) for c in self.conditions if c.periodic)

    def constants(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.params.items()}

    def potential_at(self, points):
        """The potential ``V`` at ``(n, d)`` points, shape ``(n,)`` (numpy or jax arrays)."""
        env = {c: points[:, i] for i, c in enumerate(self.coords)}
        env.update(self.constants())
        value = self.potential(env)
        return value + 0 * points[:, 0]  # a constant potential, broadcast


def with_reference_cache(make: Callable[[], Reference]) -> Callable[[], Reference]:
    """Compute a reference once, on first use (reference solvers can take seconds)."""
    cache: list[Reference] = []

    def get() -> Reference:
        if not cache:
            cache.append(make())
        return cache[0]

    return get


def symbols_of(problem_coords: Sequence[str], params, unknowns) -> tuple[str, ...]:
    """Every plain name an expression may use: coordinates, params and unknowns."""
    return tuple(problem_coords) + tuple(params) + tuple(unknowns)
