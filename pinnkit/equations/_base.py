"""What an equation is: it declares the derivatives it needs and computes residuals from them.

An equation never differentiates. `requests` names the fields and derivatives it reads
(``u``, ``u_t``, ``u_xx``); a backend answers them at points in its own way (autodiff, grid
stencils, spectra) and hands the equation an environment of arrays. `residuals` then uses
plain arithmetic, so one definition serves every backend (DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from jaxtyping import Array

from ..core.domain import Derivative, parse_derivative
from ..core.equation import AbstractEquation as AbstractEquation
from ..core.equation import Env as Env
from ..core.expressions import Expression, parse_expression
from ..errors import SpecError


class ExpressionEquation(AbstractEquation):
    """Residuals written as expressions, e.g. ``["u_t - nu*u_xx"]``.

    Arguments:
        texts: one expression per residual.
        coords, fields: the problem's coordinates and fields (to tell derivatives apart).
        symbols: every other name an expression may use (params, unknowns).
        path: the spec key the texts came from, for error messages.
        names: one name per residual (default ``residual`` or ``residual0, residual1, ...``).
        complex_fields: the fields that are complex: their values (and their derivatives')
            are complex, so a residual such as ``i*h_t + 0.5*h_xx`` is complex.
        functions: declared functions the residuals may call (name -> arguments), given as
            callables in the environment (`pinnkit.core.functions`).
    """

    names: tuple[str, ...]
    requests: tuple[str, ...]
    expressions: tuple[Expression, ...]

    def __init__(
        self,
        texts: Sequence[str],
        *,
        coords: Sequence[str],
        fields: Sequence[str],
        symbols: Sequence[str] = (),
        path: str = "equation.residuals",
        names: Sequence[str] | None = None,
        complex_fields: Sequence[str] = (),
        functions: Mapping[str, int] | None = None,
    ):
        if not texts:
            raise SpecError("give at least one residual expression", path=path)
        exprs = tuple(
            parse_symbolic(
                t,
                coords,
                fields,
                symbols,
                path=f"{path}[{i}]",
                complex_fields=complex_fields,
                functions=functions,
            )
            for i, t in enumerate(texts)
        )
        self.expressions = exprs
        self.names = (
            tuple(names)
            if names is not None
            else tuple("residual" if len(exprs) == 1 else f"residual{i}" for i in range(len(exprs)))
        )
        self.requests = requested_symbols(exprs, coords, fields)

    def residuals(self, env: Env) -> tuple[Array, ...]:
        return tuple(e(env) for e in self.expressions)


def parse_symbolic(
    text,
    coords: Sequence[str],
    fields: Sequence[str],
    symbols: Sequence[str],
    *,
    path: str,
    complex_fields: Sequence[str] = (),
    functions: Mapping[str, int] | None = None,
) -> Expression:
    """Parse an expression whose names may be coordinates, fields, derivatives, symbols or
    calls of the declared `functions`; those of `complex_fields` (fields and their
    derivatives) are complex."""
    expr = parse_expression(text, functions=functions, path=path)
    if complex_fields:
        is_complex = [
            n for n in expr.names if parse_derivative(n, coords, complex_fields) is not None
        ]
        expr = parse_expression(
            expr.text, complex_symbols=is_complex, functions=functions, path=path
        )
    known = set(coords) | set(symbols)
    unknown = [
        n
        for n in sorted(expr.names)
        if n not in known and parse_derivative(n, coords, fields) is None
    ]
    if unknown:
        # Re-parse against the full vocabulary so the message lists it with a suggestion.
        vocabulary = sorted(known | set(fields)) + [f"{f}_{c}" for f in fields for c in coords]
        parse_expression(text, symbols=vocabulary, functions=functions, path=path)
    return expr


def requested_symbols(
    exprs: Sequence[Expression], coords: Sequence[str], fields: Sequence[str]
) -> tuple[str, ...]:
    """The field and derivative names the expressions read, sorted."""
    names = set().union(*(e.names for e in exprs)) if exprs else set()
    return tuple(sorted(n for n in names if parse_derivative(n, coords, fields) is not None))


def as_derivatives(
    requests: Sequence[str], coords: Sequence[str], fields: Sequence[str]
) -> tuple[Derivative, ...]:
    out = []
    for name in requests:
        d = parse_derivative(name, coords, fields)
        if d is None:
            raise SpecError(f"{name!r} is neither a field nor a derivative of one ({list(fields)})")
        out.append(d)
    return tuple(out)
