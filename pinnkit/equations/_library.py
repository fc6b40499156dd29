"""The builtin equations, selected in a spec by name (``equation: burgers``).

Each builtin is a template that writes its residuals in the expression language for the
problem's coordinates (the Laplacian of ``u`` in ``(x, y, t)`` is ``u_xx + u_yy``), so builtins
and user expressions share one evaluation path and one set of tests. Options come from the
``equation:`` mapping, then from ``params`` of the same name, then from the default; an option
may be a number or an expression (a source term ``"-2*pi^2*sin(pi*x)*sin(pi*y)"``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from ..core.domain import TIME
from ..errors import SpecError, did_you_mean
from ._base import ExpressionEquation


@dataclasses.dataclass(frozen=True)
class Builtin:
    """A named equation family.

    Arguments:
        name: the spec name.
        summary: one line for `pinnkit list`.
        fields: how many fields it solves for.
        options: option name -> default (number or expression text).
        template: ``(coords, fields, option_texts) -> residual expressions``.
        needs_time: whether the coordinates must include ``t``.
    """

    name: str
    summary: str
    fields: int
    options: Mapping[str, object]
    template: Callable[[Sequence[str], Sequence[str], Mapping[str, str]], list[str]]
    needs_time: bool = False
    spatial_dims: tuple[int, ...] | None = None


BUILTINS: dict[str, Builtin] = {}


def _register(b: Builtin) -> Builtin:
    BUILTINS[b.name] = b
    return b


def _space(coords):
    return [c for c in coords if c != TIME]


def _lap(u, coords):
    return "(" + " + ".join(f"{u}_{c}{c}" for c in _space(coords)) + ")"


_register(
    Builtin(
        "poisson",
        "-Δu = f",
        1,
        {"source": 0.0},
        lambda c, f, o: [f"{_lap(f[0], c)} + ({o['source']})"],
    )
)
_register(
    Builtin(
        "helmholtz",
        "Δu + k²u = q",
        1,
        {"k": 1.0, "source": 0.0},
        lambda c, f, o: [f"{_lap(f[0], c)} + ({o['k']})^2*{f[0]} - ({o['source']})"],
    )
)
_register(
    Builtin(
        "heat",
        "u_t = nu Δu + f",
        1,
        {"nu": 1.0, "source": 0.0},
        lambda c, f, o: [f"{f[0]}_t - ({o['nu']})*{_lap(f[0], c)} - ({o['source']})"],
        needs_time=True,
    )
)
_register(
    Builtin(
        "wave",
        "u_tt = c² Δu + f",
        1,
        {"c": 1.0, "source": 0.0},
        lambda c, f, o: [f"{f[0]}_tt - ({o['c']})^2*{_lap(f[0], c)} - ({o['source']})"],
        needs_time=True,
    )
)
_register(
    Builtin(
        "advection",
        "u_t + c·∇u = 0 (c the same speed along every spatial axis unless given per axis)",
        1,
        {"c": 1.0},
        lambda c, f, o: [
            f"{f[0]}_t + ({o['c']})*(" + " + ".join(f"{f[0]}_{x}" for x in _space(c)) + ")"
        ],
        needs_time=True,
    )
)
_register(
    Builtin(
        "burgers",
        "u_t + u u_x = nu u_xx (viscous Burgers, 1D)",
        1,
        {"nu": 0.01 / 3.141592653589793},
        lambda c, f, o: [
            f"{f[0]}_t + {f[0]}*{f[0]}_{_space(c)[0]} - ({o['nu']})*{f[0]}_{2 * _space(c)[0]}"
        ],
        needs_time=True,
        spatial_dims=(1,),
    )
)
_register(
    Builtin(
        "allen_cahn",
        "u_t = eps Δu - a (u³ - u)",
        1,
        {"eps": 1.0e-4, "a": 5.0},
        lambda c, f, o: [
            f"{f[0]}_t - ({o['eps']})*{_lap(f[0], c)} + ({o['a']})*({f[0]}^3 - {f[0]})"
        ],
        needs_time=True,
    )
)


def builtin_equation(
    name: str,
    options: Mapping[str, object],
    *,
    coords: Sequence[str],
    fields: Sequence[str],
    params: Mapping[str, float],
    symbols: Sequence[str],
    path: str = "equation",
) -> ExpressionEquation:
    """Build a builtin equation for a problem.

    Arguments:
        name: the builtin's name (see `BUILTINS`).
        options: the options given in the spec's ``equation:`` mapping (without ``name``).
        coords, fields: the problem's coordinates and fields.
        params: the problem's params; an option not given falls back to the param of its name.
        symbols: every name expressions may use besides coordinates, fields and derivatives.
    """
    if name not in BUILTINS:
        hint = did_you_mean(name, list(BUILTINS))
        raise SpecError(
            f"unknown builtin equation {name!r}{hint} builtins are {sorted(BUILTINS)}; "
            "or give `equation: {residuals: [...]}`",
            path=f"{path}.name" if isinstance(options, Mapping) and options else path,
        )
    b = BUILTINS[name]
    unknown = set(options) - set(b.options)
    if unknown:
        key = sorted(unknown)[0]
        hint = did_you_mean(key, list(b.options))
        raise SpecError(
            f"equation {name!r} has no option {key!r}{hint} its options are {sorted(b.options)}",
            path=f"{path}.{key}",
        )
    if len(fields) != b.fields:
        raise SpecError(
            f"equation {name!r} solves for {b.fields} field(s), the spec declares {list(fields)}",
            path="fields",
        )
    if b.needs_time and TIME not in coords:
        raise SpecError(f"equation {name!r} is time dependent: add `t` to coords", path="coords")
    if b.spatial_dims is not None and len(_space(coords)) not in b.spatial_dims:
        raise SpecError(
            f"equation {name!r} takes {b.spatial_dims} spatial coordinate(s), got {_space(coords)}",
            path="coords",
        )
    texts = {}
    for key, default in b.options.items():
        if key in options:
            texts[key] = str(options[key])
        elif key in params:
            texts[key] = key  # read the param by name so `--set params.nu=...` reaches it
        else:
            texts[key] = repr(default) if isinstance(default, float) else str(default)
    residuals = b.template(coords, fields, texts)
    return ExpressionEquation(
        residuals, coords=coords, fields=fields, symbols=symbols, path=path, names=("residual",)
    )
