"""From a validated spec to the objects that solve it: problem, model, objective, phases.

This is the only place that maps names in a spec to classes (backends, samplers, optimizers,
weightings, reference solvers).
"""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..backends import BuiltModel
from ..core.complex import part_names
from ..core.domain import Box, parse_derivative, parse_face
from ..core.expressions import CONSTANTS, FUNCTIONS, parse_expression
from ..core.files import is_file
from ..core.functions import UnknownFunction
from ..core.objective import Objective, gauss_legendre
from ..core.problem import (
    Condition,
    Integral,
    Observations,
    Problem,
    Reference,
    with_reference_cache,
)
from ..core.sampling import RAD, Grid, Sobol, Uniform
from ..equations import ExpressionEquation, builtin_equation, parse_symbolic
from ..errors import SpecError, did_you_mean
from ..train.steps import (
    GaussNewton,
    Phase,
    VariableProjectionStep,
    gauss_newton_phase,
    lbfgs_phase,
)
from ..train.weighting import Causal, Fixed, GradNorm
from .schema import (
    ModelConfig,
    OptimizerConfig,
    OrthonormalConfig,
    PhaseConfig,
    Spec,
    TrainConfig,
)

OPTIMIZERS = (
    "adam",
    "adamw",
    "sgd",
    "lion",
    "rmsprop",
    "adabelief",
    "lamb",
    "nadam",
    "radam",
    "yogi",
    "adagrad",
    "amsgrad",
    "novograd",
    "adamax",
    "lbfgs",
    "gauss_newton",
)
DEFAULT_STEPS = 4000
DEFAULT_LBFGS_FRACTION = 0.5


def _constant(value, path: str) -> float:
    expr = parse_expression(value, symbols=(), path=path)
    return float(expr({}))


def _check_names(spec: Spec) -> None:
    taken: dict[str, str] = {}
    for kind, names in (
        ("coordinate", spec.coords),
        ("field", spec.fields),
        ("param", spec.params),
        ("unknown", spec.unknowns),
        ("function", spec.functions),
        (
            "function derivative",
            [f"{n}_{a}" for n, cfg in spec.functions.items() for a in cfg.args],
        ),
    ):
        for n in names:
            if not n.isidentifier() or n.startswith("_"):
                raise SpecError(f"{kind} name {n!r} must be a plain identifier", path=f"{kind}s")
            if kind in ("field", "coordinate") and "_" in n:
                raise SpecError(
                    f"{kind} name {n!r} may not contain '_' (it separates a field from the "
                    "coordinates of a derivative, as in u_xx)",
                    path=f"{kind}s",
                )
            if n in CONSTANTS or (kind == "function" and n in FUNCTIONS):
                what = "constant" if n in CONSTANTS else "function"
                raise SpecError(
                    f"{kind} name {n!r} is a builtin {what}; rename it", path=f"{kind}s"
                )
            if n in taken:
                raise SpecError(
                    f"{n!r} is both a {taken[n]} and a {kind}; rename one", path=f"{kind}s"
                )
            taken[n] = kind
    for name, cfg in spec.functions.items():
        for a in cfg.args:
            if not a.isidentifier() or a.startswith("_"):
                raise SpecError(
                    f"argument name {a!r} must be a plain identifier", path=f"functions.{name}.args"
                )
        if cfg.scale is not None and len(cfg.scale) != len(cfg.args):
            raise SpecError(
                f"give one scale per argument {cfg.args}, got {cfg.scale}",
                path=f"functions.{name}.scale",
            )
        if cfg.range is not None and not cfg.range[0] < cfg.range[1]:
            raise SpecError(
                f"range must be [lo, hi] with lo < hi, got {list(cfg.range)}",
                path=f"functions.{name}.range",
            )
    for i, n in enumerate(spec.complex):
        if n not in spec.fields:
            raise SpecError(
                f"{n!r} is not a field{did_you_mean(n, spec.fields)} `complex` lists fields of "
                f"{spec.fields} whose values are complex",
                path=f"complex[{i}]",
            )


def _true_functions(spec: Spec, functions) -> dict[str, tuple]:
    """``name -> (exact expression, (n, args) points)`` of each function the reference
    gives."""
    out = {}
    declared = {f.name: f for f in functions}
    refs = spec.reference.functions if spec.reference is not None else {}
    for name, ref in refs.items():
        path = f"reference.functions.{name}"
        if name not in declared:
            raise SpecError(
                f"{name!r} is not an unknown function{did_you_mean(name, declared)} declared "
                f"ones: {sorted(declared)}",
                path=path,
            )
        args = declared[name].args
        if set(ref.domain) != set(args):
            raise SpecError(
                f"give an interval for each argument {list(args)}, got {sorted(ref.domain)}",
                path=f"{path}.domain",
            )
        exact = parse_expression(ref.exact, symbols=args + tuple(spec.params), path=f"{path}.exact")
        axes = [np.linspace(*ref.domain[a], ref.points) for a in args]
        mesh = np.meshgrid(*axes, indexing="ij")
        out[name] = (exact, np.stack([m.reshape(-1) for m in mesh], axis=-1))
    return out


def build_problem(spec: Spec, *, base_dir: str | pathlib.Path = ".") -> Problem:
    """The `Problem` a spec describes (references are computed lazily, on first use)."""
    _check_names(spec)
    base_dir = pathlib.Path(base_dir)
    bounds = {
        c: (_constant(lo, f"domain.{c}[0]"), _constant(hi, f"domain.{c}[1]"))
        for c, (lo, hi) in spec.domain.items()
    }
    for c in spec.coords:
        if c not in bounds:
            raise SpecError(f"coordinate {c!r} has no interval; add `{c}: [lo, hi]`", path="domain")
    box = Box(tuple(spec.coords), bounds)
    coords, fields, complex_fields = box.coords, tuple(spec.fields), tuple(spec.complex)
    named = tuple(i.name for i in spec.integrals if i.name is not None)
    for n in named:
        if not n.isidentifier() or n in (*coords, *fields, *spec.params, *spec.unknowns):
            raise SpecError(f"integral name {n!r} must be a new identifier", path="integrals")
    functions = tuple(
        UnknownFunction(
            name,
            tuple(cfg.args),
            cfg.width,
            cfg.depth,
            cfg.activation,
            None if cfg.range is None else tuple(cfg.range),
            None if cfg.scale is None else tuple(cfg.scale),
        )
        for name, cfg in spec.functions.items()
    )
    arity = {k: v for f in functions for k, v in f.arity.items()}
    symbols = tuple(coords) + tuple(spec.params) + tuple(spec.unknowns) + named
    eq = spec.equation
    if arity and (isinstance(eq, str) or eq.name is not None):
        raise SpecError(
            "unknown functions are called from `residuals:` expressions, not from a builtin "
            "equation",
            path="functions",
        )
    if isinstance(eq, str):
        equation = builtin_equation(
            eq, {}, coords=coords, fields=fields, params=spec.params, symbols=symbols
        )
    elif eq.name is not None:
        if eq.residuals is not None:
            raise SpecError("give either `name` or `residuals`, not both", path="equation")
        equation = builtin_equation(
            eq.name,
            dict(eq.model_extra or {}),
            coords=coords,
            fields=fields,
            params=spec.params,
            symbols=symbols,
        )
    else:
        if eq.model_extra:
            key = sorted(eq.model_extra)[0]
            raise SpecError(
                f"unknown key {key!r}: an equation is a builtin `name:` with options or a list of "
                "`residuals:`",
                path=f"equation.{key}",
            )
        if eq.residuals is None:
            raise SpecError(
                "give a builtin `name:` or a list of `residuals:` expressions", path="equation"
            )
        texts = [eq.residuals] if isinstance(eq.residuals, str) else list(eq.residuals)
        equation = ExpressionEquation(
            texts,
            coords=coords,
            fields=fields,
            symbols=symbols + tuple(arity),
            complex_fields=complex_fields,
            functions=arity,
        )
    if not complex_fields:
        for i, e in enumerate(getattr(equation, "expressions", ())):
            if e.is_complex:
                raise SpecError(
                    f"residual {e.text!r} is complex (it uses i) but no field is: list the complex "
                    "fields under `complex:`",
                    path=f"equation.residuals[{i}]",
                )

    conditions = [
        _condition(i, c, box, fields, symbols, complex_fields)
        for i, c in enumerate(spec.conditions)
    ]
    for i, phase in enumerate(spec.train.phases or []):
        for name in phase.freeze:
            if name not in spec.unknowns:
                raise SpecError(
                    f"{name!r} is not an unknown{did_you_mean(name, spec.unknowns)} unknowns "
                    f"are {sorted(spec.unknowns)}",
                    path=f"train.phases[{i}].freeze",
                )
    named = [i.name for i in spec.integrals if i.name is not None]
    for e in spec.eigenvalues:
        if e not in spec.unknowns and e not in named:
            raise SpecError(
                f"eigenvalue {e!r} is neither an unknown {list(spec.unknowns)} nor a named "
                f"integral {named}",
                path="eigenvalues",
            )
    # Observed columns may name a complex field (complex values) or its parts (h_re, h_im).
    columns = fields + tuple(p for f in complex_fields for p in part_names(f))
    data = tuple(_observations(i, d, box, columns, base_dir) for i, d in enumerate(spec.data))
    integrals = tuple(
        _integral(i, cfg, box, fields, tuple(spec.params) + tuple(spec.unknowns), complex_fields)
        for i, cfg in enumerate(spec.integrals)
    )
    for i, integral in enumerate(integrals):
        if integral.name is not None and len(integral.over) != box.dim:
            raise SpecError(
                "only an integral over every coordinate is a single number that can be named",
                path=f"integrals[{i}].name",
            )
    reference = None
    if spec.reference is not None and (
        spec.reference.exact or spec.reference.file or spec.reference.solver
    ):
        reference = with_reference_cache(_reference_maker(spec, box, fields, symbols, base_dir))
    return Problem(
        name=spec.name,
        box=box,
        fields=fields,
        equation=equation,
        conditions=tuple(conditions),
        params=dict(spec.params),
        unknowns={
            **spec.unknowns,
            **{f.name: f.init(spec.train.seed + i) for i, f in enumerate(functions)},
        },
        data=data,
        integrals=integrals,
        reference=reference,
        description=spec.description,
        true_unknowns=dict(spec.reference.unknowns) if spec.reference else {},
        eigenvalues=tuple(spec.eigenvalues),
        potential=None
        if spec.potential is None
        else parse_expression(
            spec.potential, symbols=box.coords + tuple(spec.params), path="potential"
        ),
        complex_fields=complex_fields,
        functions=functions,
        true_functions=_true_functions(spec, functions),
    )


def _condition(index, cfg, box, fields, symbols, complex_fields=()) -> Condition:
    path = f"conditions[{index}]"
    extra = dict(cfg.model_extra or {})
    if cfg.periodic is not None:
        if cfg.on is not None or extra or cfg.residual is not None:
            raise SpecError(
                "a periodic condition takes only `periodic: COORD` (and `weight`)", path=path
            )
        box.axis(cfg.periodic, path=f"{path}.periodic")
        return Condition(periodic=cfg.periodic, weight=cfg.weight, label=f"periodic {cfg.periodic}")
    if cfg.on is None:
        raise SpecError(
            "say where the condition holds with `on:` (e.g. `on: x=0`, `on: boundary`) or give "
            "`periodic: x`",
            path=path,
        )
    faces = parse_face(cfg.on, box, path=f"{path}.on")
    targets = {}
    for key, value in extra.items():
        if parse_derivative(key, box.coords, fields) is None:
            vocab = list(fields) + ["on", "periodic", "residual", "weight", "label"]
            hint = did_you_mean(key, vocab)
            raise SpecError(
                f"unknown key {key!r}{hint} a condition's targets are fields {list(fields)} or "
                "their derivatives (u_x, u_t, ...)",
                path=f"{path}.{key}",
            )
        targets[key] = parse_expression(value, symbols=symbols, path=f"{path}.{key}")
        if targets[key].is_complex and parse_derivative(key, box.coords, complex_fields) is None:
            raise SpecError(
                f"the target of {key!r} is complex (it uses i) but {key!r} is real: take "
                "real(...) of it, or list the field under `complex:`",
                path=f"{path}.{key}",
            )
    residuals = []
    if cfg.residual is not None:
        texts = cfg.residual if isinstance(cfg.residual, list) else [cfg.residual]
        for j, t in enumerate(texts):
            r = parse_symbolic(
                t,
                box.coords,
                fields,
                symbols,
                path=f"{path}.residual[{j}]",
                complex_fields=complex_fields,
            )
            if r.is_complex and not complex_fields:
                raise SpecError(
                    f"residual {r.text!r} is complex (it uses i) but no field is: list the "
                    "complex fields under `complex:`",
                    path=f"{path}.residual[{j}]",
                )
            residuals.append(r)
    if not targets and not residuals:
        raise SpecError(
            f'condition on {cfg.on!r} sets nothing: add a target such as `{fields[0]}: "0"` or '
            "a `residual:` expression",
            path=path,
        )
    return Condition(
        faces=faces,
        targets=targets,
        residuals=tuple(residuals),
        weight=cfg.weight,
        label=cfg.label or str(cfg.on),
    )


def _integral(index, cfg, box, fields, constants, complex_fields=()) -> Integral:
    path = f"integrals[{index}]"
    over = tuple(cfg.over) if cfg.over is not None else box.coords
    if not over:
        raise SpecError("`over` needs at least one coordinate", path=f"{path}.over")
    for c in over:
        box.axis(c, path=f"{path}.over")
    if len(over) > 3:
        raise SpecError(
            f"integrals over more than 3 coordinates need {cfg.points}^{len(over)} nodes; "
            "integrate over fewer",
            path=f"{path}.over",
        )
    symbols = tuple(box.coords) + tuple(constants)
    integrand = parse_symbolic(
        cfg.integrand,
        box.coords,
        fields,
        symbols,
        path=f"{path}.integrand",
        complex_fields=complex_fields,
    )
    if integrand.is_complex:
        raise SpecError(
            f"the integrand {integrand.text!r} is complex; integrate a real quantity such as "
            "abs(h)^2, real(h) or imag(h)",
            path=f"{path}.integrand",
        )
    rest = tuple(c for c in box.coords if c not in over) + tuple(constants)
    equals = parse_expression(cfg.equals, symbols=rest, path=f"{path}.equals")
    for c in cfg.breaks:
        if c not in over:
            raise SpecError(
                f"breaks are given for {c!r}, which the integral is not over ({list(over)})",
                path=f"{path}.breaks.{c}",
            )
    return Integral(
        integrand,
        float(equals({})) if not equals.names else equals,
        over,
        points=cfg.points,
        samples=cfg.samples,
        weight=cfg.weight,
        label=cfg.label or cfg.name or f"integral{index}",
        name=cfg.name,
        log=cfg.log,
        minimize=cfg.minimize,
        breaks={c: tuple(v) for c, v in cfg.breaks.items()},
    )


def _read_table(path: pathlib.Path, where: str, *, missing: bool = False) -> dict[str, np.ndarray]:
    """The named columns of a ``.npz`` or ``.csv`` file (a header row of names), each finite,
    or NaN where ``missing`` values are allowed (a reference table's empty cells: not known
    there); anything unreadable is a `SpecError` naming the file and the key."""
    if not is_file(path):
        raise SpecError(f"no such file {str(path)!r}", path=where)
    if path.suffix not in (".npz", ".csv"):
        raise SpecError(f"read .npz or .csv files, got {path.name!r}", path=where)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:  # complex columns stay complex
                table = {k: np.asarray(z[k]) for k in z.files}
        else:
            with warnings.catch_warnings():  # an empty file: no names, refused below
                warnings.simplefilter("ignore")
                arr = np.genfromtxt(path, delimiter=",", names=True, encoding="utf-8")
            if arr.dtype.names is None:
                raise ValueError("no header row of column names")
            table = {n: np.atleast_1d(np.asarray(arr[n])) for n in arr.dtype.names}
        table = {k: np.asarray(v, dtype=np.result_type(v, float)) for k, v in table.items()}
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise SpecError(
            f"cannot read {path.name!r} as a table of numeric columns ({type(e).__name__}: "
            f"{str(e)[:120]}); write a .csv with a header row of names or an .npz of arrays",
            path=where,
        ) from None
    for name, column in table.items():
        bad = np.isinf(column) if missing else ~np.isfinite(column)
        if np.any(bad):
            row = int(np.argmax(bad))
            raise SpecError(
                f"column {name!r} of {path.name!r} is {column.flat[row]} at row {row}: values "
                + (
                    "may be missing (empty) but not infinite"
                    if missing
                    else "must be finite (drop or fill missing rows)"
                ),
                path=where,
            )
    return table


def _observations(index, cfg, box, fields, base_dir) -> Observations:
    where = f"data[{index}].file"
    table = _read_table(base_dir / cfg.file, where)
    missing = [c for c in box.coords if c not in table]
    if missing:
        raise SpecError(
            f"{cfg.file} lacks coordinate column(s) {missing}; it has {sorted(table)}", path=where
        )
    names = cfg.fields or [k for k in table if parse_derivative(k, box.coords, fields) is not None]
    for n in names:
        if n not in table or parse_derivative(n, box.coords, fields) is None:
            raise SpecError(
                f"{n!r} is not a field column of {cfg.file} (columns: {sorted(table)})", path=where
            )
    if not names:
        raise SpecError(f"{cfg.file} has no column named after a field {list(fields)}", path=where)
    points = np.stack([table[c].reshape(-1) for c in box.coords], -1)
    values = {n: table[n].reshape(-1) for n in names}
    return Observations(points, values, weight=cfg.weight, label=cfg.label or f"data{index}")


def default_grid(box: Box) -> tuple[int, ...]:
    per = {1: 1001, 2: 201, 3: 41}.get(box.dim, 17)
    return (per,) * box.dim


def _reference_maker(spec: Spec, box, fields, symbols, base_dir):
    ref = spec.reference
    grid = tuple(ref.grid) if ref.grid else default_grid(box)
    if len(grid) != box.dim:
        raise SpecError(
            f"grid needs one size per coordinate {list(box.coords)}, got {list(grid)}",
            path="reference.grid",
        )
    given = [k for k in ("exact", "file", "solver") if getattr(ref, k)]
    if len(given) > 1:
        raise SpecError(f"give one of exact, file or solver, got {given}", path="reference")
    for i, f in enumerate(ref.up_to_constant):
        if f not in fields:
            raise SpecError(
                f"{f!r} is not a field {list(fields)}", path=f"reference.up_to_constant[{i}]"
            )
    make = _reference_values(ref, spec, box, fields, symbols, base_dir, grid)
    if not ref.up_to_constant:
        return make
    return lambda: dataclasses.replace(
        make(), up_to_constant=tuple(ref.up_to_constant), time_axis=box.time_axis
    )


def _reference_values(ref, spec: Spec, box, fields, symbols, base_dir, grid):
    complex_fields = set(spec.complex)
    if ref.exact:
        exprs = {}
        for f, text in ref.exact.items():
            if f not in fields:
                raise SpecError(f"{f!r} is not a field {list(fields)}", path=f"reference.exact.{f}")
            exprs[f] = parse_expression(text, symbols=symbols, path=f"reference.exact.{f}")
            if exprs[f].is_complex and f not in complex_fields:
                raise SpecError(
                    f"the exact solution of the real field {f!r} is complex (it uses i); list "
                    "the field under `complex:`",
                    path=f"reference.exact.{f}",
                )
        consts = {**spec.params, **ref.unknowns}
        missing = [u for u in spec.unknowns if u not in consts]
        for f, e in exprs.items():
            if set(missing) & e.names:
                raise SpecError(
                    f"the exact solution uses unknowns {sorted(set(missing) & e.names)}: "
                    "give their true values in `reference.unknowns`",
                    path=f"reference.exact.{f}",
                )

        def make():
            pts = box.grid(grid)
            env = {c: pts[:, i] for i, c in enumerate(box.coords)}
            env.update(consts)
            with jax.enable_x64(True):
                vals = {
                    f: np.broadcast_to(
                        np.asarray(e(env), dtype=complex if f in complex_fields else float),
                        (len(pts),),
                    )
                    for f, e in exprs.items()
                }
            return Reference(pts, vals, grid, "exact")

        return make
    if ref.file:
        path = base_dir / ref.file

        def make():
            table = _read_table(path, "reference.file", missing=True)
            for f in complex_fields:  # a complex field as one complex column or its parts
                re, im = part_names(f)
                if f not in table and re in table and im in table:
                    table[f] = table[re] + 1j * table[im]
            missing = [c for c in box.coords if c not in table]
            known = [f for f in fields if f in table]
            if missing or not known:
                hint = " (a complex field h may be two columns, h_re and h_im)"
                raise SpecError(
                    f"{ref.file} lacks column(s) {missing or list(fields)}: it needs every "
                    f"coordinate and at least one field; it has {sorted(table)}"
                    + (hint if complex_fields else ""),
                    path="reference.file",
                )
            pts = np.stack([table[c].reshape(-1) for c in box.coords], -1)
            if not np.all(np.isfinite(pts)):
                raise SpecError(
                    f"{ref.file} has a missing or non-finite coordinate", path="reference.file"
                )
            shape = table[known[0]].shape
            vals = {f: table[f].reshape(-1) for f in known}  # NaN: not known there
            return Reference(pts, vals, shape if len(shape) == box.dim else None, str(ref.file))

        return make
    from ..reference import REFERENCE_SOLVERS

    if ref.solver not in REFERENCE_SOLVERS:
        hint = did_you_mean(ref.solver, list(REFERENCE_SOLVERS))
        raise SpecError(
            f"unknown reference solver {ref.solver!r}{hint} "
            f"solvers are {sorted(REFERENCE_SOLVERS)}",
            path="reference.solver",
        )
    solver = REFERENCE_SOLVERS[ref.solver]
    accepted = [
        n for n, p in inspect.signature(solver).parameters.items() if p.kind == p.KEYWORD_ONLY
    ]
    for k in ref.options:
        if k not in accepted or k in ("fields", "params"):
            raise SpecError(
                f"solver {ref.solver!r} has no option {k!r}; its options are "
                f"{[a for a in accepted if a not in ('fields', 'params')]}",
                path=f"reference.options.{k}",
            )

    def make():
        pts = box.grid(grid)
        columns = {c: pts[:, i] for i, c in enumerate(box.coords)}
        vals = solver(columns, fields=fields, params=dict(spec.params), **ref.options)
        return Reference(pts, vals, grid, ref.solver, getattr(solver, "sign_free", False))

    return make


# --- model ------------------------------------------------------------------------------


def build_model(problem: Problem, config: ModelConfig, *, dtype, key) -> BuiltModel:
    """The backend a model config names, wrapped with exact constraints where asked."""
    from ..backends import BACKENDS

    built = BACKENDS[config.backend](problem, config, dtype=dtype, key=key)
    if config.orthonormal is False:
        return built
    return dataclasses.replace(built, model=_orthonormal(problem, config, built.model, dtype))


def _is_zero(fn) -> bool:
    """Whether a condition target is the constant 0 (an expression with no symbols)."""
    if getattr(fn, "names", None) != frozenset():  # a Python function or an expression of x
        return False
    try:
        return float(np.asarray(fn({}))) == 0.0
    except Exception:
        return False


def _orthonormal(problem: Problem, config: ModelConfig, model, dtype):
    """Wrap a model so its fields are orthonormal by construction (`Orthonormal`)."""
    from ..backends import Orthonormal

    cfg = config.orthonormal if not isinstance(config.orthonormal, bool) else OrthonormalConfig()
    box = problem.box
    for i, cond in enumerate(problem.conditions):
        for sym, fn in cond.targets.items():
            if not _is_zero(fn):
                raise SpecError(
                    f"orthonormal fields are mixed linearly, which keeps only homogeneous "
                    f"conditions; {sym!r} is set to something other than 0 here",
                    path=f"conditions[{i}].{sym}",
                )
    breaks = {}
    for c, points in cfg.breaks.items():
        breaks[box.axis(c, path=f"model.orthonormal.breaks.{c}")] = points
    if cfg.points**box.dim > 1 << 20:
        raise SpecError(
            f"{cfg.points}^{box.dim} quadrature nodes are too many; lower the points",
            path="model.orthonormal.points",
        )
    nodes, weights = gauss_legendre(box, tuple(range(box.dim)), cfg.points, breaks)
    return Orthonormal(model, nodes.astype(dtype), weights.astype(dtype), problem.coords)


# --- training ---------------------------------------------------------------------------


def _schedule(cfg: OptimizerConfig, steps: int):
    sched = cfg.schedule
    if sched is None:
        return cfg.lr
    name = sched if isinstance(sched, str) else sched.name
    from .schema import ScheduleConfig

    s = ScheduleConfig(name=name) if isinstance(sched, str) else sched
    steps = max(steps, 1)
    if name == "constant":
        return cfg.lr
    if name == "cosine":
        return optax.cosine_decay_schedule(cfg.lr, steps, alpha=s.alpha)
    if name == "exponential":
        return optax.exponential_decay(cfg.lr, s.transition_steps, s.decay_rate)
    return optax.warmup_cosine_decay_schedule(
        0.0, cfg.lr, max(s.warmup_steps, 1), steps, end_value=cfg.lr * s.alpha
    )


def build_optimizer(cfg: OptimizerConfig | str, steps: int, path: str) -> Phase:
    if isinstance(cfg, str):
        cfg = OptimizerConfig(name=cfg)
    name = cfg.name
    if name not in OPTIMIZERS:
        hint = did_you_mean(name, OPTIMIZERS)
        raise SpecError(
            f"unknown optimizer {name!r}{hint} optimizers are {', '.join(OPTIMIZERS)}",
            path=f"{path}.name",
        )
    extra = dict(cfg.model_extra or {})
    if name == "lbfgs":
        allowed = {"memory_size"}
        bad = set(extra) - allowed
        if bad:
            raise SpecError(
                f"lbfgs takes {sorted(allowed)}, not {sorted(bad)}", path=f"{path}.{sorted(bad)[0]}"
            )
        return lbfgs_phase(steps, **extra)
    if name == "gauss_newton":
        allowed = {f.name for f in dataclasses.fields(GaussNewton)}
        bad = set(extra) - allowed
        if bad:
            raise SpecError(
                f"gauss_newton takes {sorted(allowed)}, not {sorted(bad)}",
                path=f"{path}.{sorted(bad)[0]}",
            )
        for f in dataclasses.fields(GaussNewton):
            if f.name in extra and f.type in ("float", "int"):
                # YAML 1.1 reads 1e-2 (no dot) as text: accept it as the number it means
                cast = float if f.type == "float" else int
                try:
                    extra[f.name] = cast(extra[f.name])
                except (TypeError, ValueError):
                    raise SpecError(
                        f"{f.name} must be a number, got {extra[f.name]!r}",
                        path=f"{path}.{f.name}",
                    ) from None
        return gauss_newton_phase(steps, **extra)
    fn = getattr(optax, name)
    params = inspect.signature(fn).parameters
    for k in extra:
        if k not in params or k == "learning_rate":
            options = [p for p in params if p != "learning_rate"]
            hint = did_you_mean(k, options)
            raise SpecError(
                f"optax.{name} has no argument {k!r}{hint} it takes lr, schedule and {options}",
                path=f"{path}.{k}",
            )
    return Phase(fn(_schedule(cfg, steps), **extra), steps, name)


def phase_configs(train: TrainConfig) -> list[PhaseConfig]:
    """The optimizer phases a train config means: ``phases`` as given; one ``optimizer`` for
    ``steps``; or the default, Adam with a cosine-decayed learning rate then L-BFGS. With
    ``phases`` and ``steps`` both given, the last phase takes up the difference, so
    ``--set train.steps=N`` on a resumed run extends it."""
    if train.phases is not None:
        if train.optimizer is not None:
            raise SpecError("give `phases` or `optimizer`, not both", path="train")
        phases = list(train.phases)
        if train.steps is not None:
            head = sum(p.steps for p in phases[:-1])
            if train.steps < head:
                raise SpecError(
                    f"steps={train.steps} is fewer than the phases before the last ({head})",
                    path="train.steps",
                )
            phases[-1] = phases[-1].model_copy(update={"steps": train.steps - head})
        return phases
    steps = DEFAULT_STEPS if train.steps is None else train.steps
    if train.optimizer is not None:
        return [PhaseConfig(optimizer=train.optimizer, steps=steps)]
    n_lbfgs = int(round(steps * DEFAULT_LBFGS_FRACTION))
    adam = OptimizerConfig(name="adam", lr=1e-3, schedule="cosine")
    return [
        PhaseConfig(optimizer=adam, steps=steps - n_lbfgs),
        PhaseConfig(optimizer="lbfgs", steps=n_lbfgs),
    ]


def build_phases(train: TrainConfig) -> list[Phase]:
    paths = (
        [f"train.phases[{i}].optimizer" for i in range(len(train.phases))]
        if train.phases is not None
        else ["train.optimizer", "train.optimizer"]
    )
    phases = []
    for i, (p, path) in enumerate(zip(phase_configs(train), paths)):
        phase = build_optimizer(p.optimizer, p.steps, path)
        step = phase.step
        if p.solve is not None and step.fixed_objective:
            raise SpecError(
                "`solve` is for gradient phases (adam and the like)",
                path=f"train.phases[{i}].solve",
            )
        if p.freeze and step.fixed_objective:
            raise SpecError(
                "a line-search or gauss_newton phase cannot hold unknowns fixed; freeze "
                "them in an Adam-type phase",
                path=f"train.phases[{i}].freeze",
            )
        if p.params is not None:
            if not hasattr(step, "group"):  # spec validation, not the hot path
                raise SpecError(
                    "a parameter group is trained by adam-type and gauss_newton phases, not by "
                    "a line search",
                    path=f"train.phases[{i}].params",
                )
            step = dataclasses.replace(step, group=p.params)
        if p.freeze:
            step = dataclasses.replace(step, freeze=frozenset(p.freeze))
        if p.solve is not None:
            step = VariableProjectionStep(step, p.solve)
        phases.append(Phase(step, p.steps))
    return phases


def build_objective(problem: Problem, train: TrainConfig, built: BuiltModel, dtype) -> Objective:
    pts = train.points
    sampler = {
        "uniform": lambda: Uniform(),
        "sobol": lambda: Sobol(),
        "grid": lambda: Grid(jitter=pts.jitter),
        "rad": lambda: RAD(pts.rad.k, pts.rad.c, pts.rad.candidates),
    }[pts.sampler]()
    n_dev = len(jax.local_devices()) if train.devices is None else train.devices
    round_up = lambda n: -(-n // n_dev) * n_dev  # shards must be equal
    model = built.model
    # A model that owns a collocation grid (gp) answers the equation there; a model may add
    # its own loss terms (a GP prior).
    from ..backends import AbstractModel

    own = isinstance(model, AbstractModel)
    grid = model.collocation_axes() if own else None
    penalties = model.penalty_weights() if own else None
    return Objective(
        problem,
        enforced=built.enforced,
        interior=round_up(pts.interior),
        boundary=round_up(pts.boundary),
        sampler=sampler,
        periodic_exact=built.periodic_exact,
        dtype=dtype,
        grid=grid,
        midpoints=bool(getattr(model, "midpoints", False)),
        penalties=penalties,
    )


def build_weighting(train: TrainConfig):
    w = train.weighting
    name = w if isinstance(w, str) else w.name
    if name == "fixed":
        return Fixed()
    return GradNorm() if isinstance(w, str) else GradNorm(every=w.every, alpha=w.alpha)


def build_causal(train: TrainConfig, problem: Problem):
    c = train.causal
    if c is False:
        return None
    if problem.box.time_axis is None:
        raise SpecError("causal weighting needs a time coordinate `t`", path="train.causal")
    return Causal() if c is True else Causal(eps=c.eps, chunks=c.chunks)


def dtype_of(train: TrainConfig):
    if train.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
        return jnp.float64
    return jnp.float32
