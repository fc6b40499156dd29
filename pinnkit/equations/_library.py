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
        spatial_dims: the numbers of spatial coordinates it accepts (None: any).
        field_count: ``(coords, option_texts) -> fields`` where that depends on them (then
            `fields` is only for `pinnkit list`).
        names: ``(coords, option_texts) -> residual names`` (default: ``residual``).
        coord_options: options per spatial coordinate ``c``: ``{"force_": 0.0}`` gives
            ``force_x``, ``force_y``, ... for coordinates ``x, y``.
    """

    name: str
    summary: str
    fields: int
    options: Mapping[str, object]
    template: Callable[[Sequence[str], Sequence[str], Mapping[str, str]], list[str]]
    needs_time: bool = False
    spatial_dims: tuple[int, ...] | None = None
    field_count: Callable[[Sequence[str], Mapping[str, str]], int] | None = None
    names: Callable[[Sequence[str], Mapping[str, str]], tuple[str, ...]] | None = None
    coord_options: Mapping[str, object] = dataclasses.field(default_factory=dict)

    def all_options(self, coords: Sequence[str]) -> dict[str, object]:
        """Every option with its default for these coordinates."""
        per = {f"{k}{c}": v for k, v in self.coord_options.items() for c in _space(coords)}
        return {**self.options, **per}


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


_register(
    Builtin(
        "fisher_kolmogorov",
        "c_t = D Δc + rho c (1 - c) (constant D; on tissue maps: a glioma spec)",
        1,
        {"D": 0.1, "rho": 0.1},
        lambda c, f, o: [
            f"{f[0]}_t - ({o['D']})*{_lap(f[0], c)} - ({o['rho']})*{f[0]}*(1 - {f[0]})"
        ],
        needs_time=True,
    )
)


_NS_FORMS = ("velocity_pressure", "vorticity")


def _ns_form(o):
    form = o["form"].strip("'\"")
    if form not in _NS_FORMS:
        raise SpecError(
            f"navier_stokes has the forms {list(_NS_FORMS)}, got {form!r}", path="equation.form"
        )
    return form


def _ns_names(coords, o):
    if _ns_form(o) == "vorticity":
        return ("vorticity", "streamfunction")
    return (*(f"momentum_{c}" for c in _space(coords)), "continuity")


def _ns_fields(coords, o):
    return 2 if _ns_form(o) == "vorticity" else len(_space(coords)) + 1


def _navier_stokes(coords, fields, o):
    """Incompressible Navier–Stokes. Velocity–pressure: fields (velocity..., p),
    ``u_t + (u·∇)u + ∇p/rho - nu Δu - f = 0`` per axis and ``∇·u = 0``. Vorticity–
    streamfunction (2D): fields (w, psi) with ``u = psi_y, v = -psi_x``, so ``w = v_x - u_y =
    -Δpsi``: ``w_t + u w_x + v w_y - nu Δw - source = 0`` and ``Δpsi + w = 0``."""
    space = _space(coords)
    unsteady = TIME in coords
    nu, rho = o["nu"], o["rho"]
    if _ns_form(o) == "vorticity":
        if len(space) != 2:
            raise SpecError(
                "the vorticity–streamfunction form is 2D: give two spatial coordinates",
                path="coords",
            )
        w, psi = fields
        x, y = space
        rate = f"{w}_t + " if unsteady else ""
        return [
            f"{rate}{psi}_{y}*{w}_{x} - {psi}_{x}*{w}_{y} - ({nu})*{_lap(w, coords)}"
            f" - ({o['source']})",
            f"{_lap(psi, coords)} + {w}",
        ]
    velocity, p = fields[:-1], fields[-1]
    out = []
    for ui, c in zip(velocity, space):
        rate = f"{ui}_t + " if unsteady else ""
        advection = " + ".join(f"{uj}*{ui}_{cj}" for uj, cj in zip(velocity, space))
        out.append(
            f"{rate}{advection} + {p}_{c}/({rho}) - ({nu})*{_lap(ui, coords)} - ({o[f'force_{c}']})"
        )
    out.append(" + ".join(f"{ui}_{c}" for ui, c in zip(velocity, space)))
    return out


_register(
    Builtin(
        "navier_stokes",
        "incompressible, 2D/3D, steady or with t: fields (velocity..., p), or (w, psi) with "
        "form=vorticity",
        3,
        {"nu": 0.01, "rho": 1.0, "form": "velocity_pressure", "source": 0.0},
        _navier_stokes,
        spatial_dims=(2, 3),
        field_count=_ns_fields,
        names=_ns_names,
        coord_options={"force_": 0.0},
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
    accepted = b.all_options(coords)
    unknown = set(options) - set(accepted)
    if unknown:
        key = sorted(unknown)[0]
        hint = did_you_mean(key, list(accepted))
        raise SpecError(
            f"equation {name!r} has no option {key!r}{hint} its options are {sorted(accepted)}",
            path=f"{path}.{key}",
        )
    if b.needs_time and TIME not in coords:
        raise SpecError(f"equation {name!r} is time dependent: add `t` to coords", path="coords")
    if b.spatial_dims is not None and len(_space(coords)) not in b.spatial_dims:
        raise SpecError(
            f"equation {name!r} takes {b.spatial_dims} spatial coordinate(s), got {_space(coords)}",
            path="coords",
        )
    texts = {}
    for key, default in accepted.items():
        if key in options:
            texts[key] = str(options[key])
        elif key in params:
            texts[key] = key  # read the param by name so `--set params.nu=...` reaches it
        else:
            texts[key] = repr(default) if isinstance(default, float) else str(default)
    count = b.fields if b.field_count is None else b.field_count(coords, texts)
    if len(fields) != count:
        raise SpecError(
            f"equation {name!r} solves for {count} field(s) here, the spec declares {list(fields)}",
            path="fields",
        )
    residuals = b.template(coords, fields, texts)
    names = ("residual",) if b.names is None else b.names(coords, texts)
    return ExpressionEquation(
        residuals, coords=coords, fields=fields, symbols=symbols, path=path, names=names
    )
