"""Complex fields, stored as pairs of real ones.

A complex field ``h`` is two real fields, ``h_re`` and ``h_im``: that is what a model outputs,
what the objective asks derivatives of, and what the run files hold. Everything a user writes
about ``h`` is complex: ``h``, ``h_t`` and ``h_xx`` are ``h_re + i h_im`` and its derivatives,
and a residual such as ``i*h_t + 0.5*h_xx + abs(h)^2*h`` is a complex number. `split_complex`
turns a problem written that way into a real one, once, when the `Problem` is made:

- the fields ``h`` become ``h_re, h_im``;
- a complex residual becomes two real ones, its real and imaginary parts (a real residual stays
  one: an imaginary part that is identically zero would be a dead loss term);
- a condition target on ``h`` (or ``h_x``) becomes targets on both parts, so a real target
  ``2*sech(x)`` sets ``h_re`` and pins ``h_im`` to 0, and hard constraints and periodicity treat
  the parts like any real field; a complex condition residual becomes two;
- observed values of ``h`` (complex arrays) become observations of both parts;
- integrands must be real (``abs(h)^2``, not ``h``).

Which residuals are complex is found by evaluating them once on ones (`_Probe`), so a Python
function of the environment that returns a complex array is split like an expression.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..errors import SpecError
from .domain import Derivative, derivative_name, parse_derivative
from .equation import AbstractEquation

PARTS = ("re", "im")


def part_names(field: str) -> tuple[str, str]:
    """The real fields that hold a complex field: ``h -> (h_re, h_im)``."""
    return f"{field}_re", f"{field}_im"


@dataclasses.dataclass(frozen=True)
class ComplexFields:
    """The complex fields of a problem and the names of their parts.

    Arguments:
        coords: the problem's coordinates.
        names: the complex fields (``("h",)``).

    Example:
        >>> c = ComplexFields(("x", "t"), ("h",))
        >>> c.parts("h_xx")
        ('h_re_xx', 'h_im_xx')
    """

    coords: tuple[str, ...]
    names: tuple[str, ...]

    def derivative(self, symbol: str) -> Derivative | None:
        """``symbol`` as a complex field or a derivative of one; None if it is neither."""
        return parse_derivative(symbol, self.coords, self.names)

    def is_complex(self, symbol: str) -> bool:
        return self.derivative(symbol) is not None

    def parts(self, symbol: str) -> tuple[str, str]:
        """The real and imaginary parts of a complex symbol: ``h_x -> (h_re_x, h_im_x)``."""
        d = self.derivative(symbol)
        if d is None:
            raise ValueError(f"{symbol!r} is not a complex field {list(self.names)} or derivative")
        return tuple(derivative_name(p, d.orders, self.coords) for p in part_names(d.field))

    def real_names(self, symbols) -> tuple[str, ...]:
        """The symbols with each complex one replaced by its two parts."""
        out: list[str] = []
        for s in symbols:
            for name in self.parts(s) if self.is_complex(s) else (s,):
                if name not in out:
                    out.append(name)
        return tuple(out)

    def combine(self, env: Mapping[str, Any]) -> dict[str, Any]:
        """The environment with the complex value of every symbol whose two parts it holds."""
        out = dict(env)
        if not self.names:
            return out
        real = {part_names(f)[0]: f for f in self.names}
        fields = tuple(real) + tuple(part_names(f)[1] for f in self.names)
        for key in env:
            d = parse_derivative(key, self.coords, fields)
            if d is None or d.field not in real:
                continue
            im = derivative_name(part_names(real[d.field])[1], d.orders, self.coords)
            if im in env:
                out[derivative_name(real[d.field], d.orders, self.coords)] = env[key] + 1j * env[im]
        return out


@dataclasses.dataclass(frozen=True)
class ComplexPart:
    """The real or imaginary part of a function of an environment that may read complex fields.

    Arguments:
        fn: a function of the environment (an expression, or any Python callable); it sees the
            complex fields' values.
        part: ``"re"`` or ``"im"``.
        fields: the problem's complex fields.
    """

    fn: Callable[[Mapping[str, Any]], Any]
    part: str
    fields: ComplexFields

    @property
    def names(self) -> frozenset[str]:
        """What the objective must supply: the function's names, complex ones as parts."""
        return frozenset(self.fields.real_names(sorted(getattr(self.fn, "names", ()))))

    def __call__(self, env: Mapping[str, Any]):
        value = self.fn(self.fields.combine(env))
        return jnp.real(value) if self.part == "re" else jnp.imag(value)


class ComplexEquation(AbstractEquation):
    """An equation over complex fields as real residuals (the parts of each complex one).

    Arguments:
        inner: the equation as written, reading complex fields (``requests`` such as ``h_xx``).
        fields: the complex fields.
        split: per residual of `inner`, whether it is complex (and so becomes two).
    """

    names: tuple[str, ...]
    requests: tuple[str, ...]
    inner: AbstractEquation
    fields: ComplexFields = eqx.field(static=True)
    split: tuple[bool, ...] = eqx.field(static=True)

    def __init__(self, inner: AbstractEquation, fields: ComplexFields, split: Sequence[bool]):
        self.inner = inner
        self.fields = fields
        self.split = tuple(bool(s) for s in split)
        names: list[str] = []
        for name, s in zip(inner.names, self.split):
            names += [f"{name}_{p}" for p in PARTS] if s else [name]
        self.names = tuple(names)
        self.requests = fields.real_names(inner.requests)

    def residuals(self, env) -> tuple[Array, ...]:
        out = []
        for r, s in zip(self.inner.residuals(self.fields.combine(env)), self.split):
            out += [jnp.real(r), jnp.imag(r)] if s else [jnp.real(r)]
        return tuple(out)


class _Probe(dict):
    """An environment of ones (complex ones for complex symbols) to learn what a function of
    the environment returns: fields and derivatives are made up as they are asked for."""

    def __init__(self, base: Mapping[str, Any], fields: Sequence[str], cplx: ComplexFields):
        super().__init__(base)
        self._fields = tuple(fields)
        self._complex = cplx

    def value(self, key: str):
        if self._complex.is_complex(key):
            return jnp.ones(1, jnp.complex64)
        if parse_derivative(key, self._complex.coords, self._fields) is not None:
            return jnp.ones(1, jnp.float32)
        return None

    def __missing__(self, key):
        value = self.value(key)
        if value is None:
            raise KeyError(key)
        self[key] = value
        return value

    def fill(self, names) -> _Probe:
        for n in names:
            if n not in self:
                value = self.value(n)
                if value is not None:
                    self[n] = value
        return self

    def is_complex(self, fn) -> bool:
        """Whether ``fn`` returns a complex value (evaluated on this environment)."""
        self.fill(getattr(fn, "names", ()))
        return bool(np.iscomplexobj(fn(self)))


def split_complex(problem) -> dict[str, Any]:
    """The attributes of a `Problem` with complex fields rewritten over real ones (see the
    module docstring); `Problem` applies them when it is made.

    Arguments:
        problem: a problem whose ``complex_fields`` are listed in ``fields`` (or already as
            their parts, which leaves it as it is).

    Returns:
        ``{attribute: new value}`` for ``fields``, ``equation``, ``conditions``, ``data`` and
        ``integrals``.
    """
    cplx = ComplexFields(problem.coords, tuple(problem.complex_fields))
    clash = [c for c in problem.coords if c in PARTS]
    if clash:  # h_re would read as a derivative of h by the coordinate re
        raise SpecError(
            f"with complex fields no coordinate may be named {' or '.join(PARTS)}; rename {clash}",
            path="coords",
        )
    fields: list[str] = []
    for f in problem.fields:
        fields += list(part_names(f)) if f in cplx.names else [f]
    for f in cplx.names:
        if not set(part_names(f)) <= set(fields):
            raise SpecError(f"complex field {f!r} is not a field {list(problem.fields)}", "complex")
    if len(set(fields)) != len(fields):
        raise SpecError(f"fields {fields} repeat a name (the parts of a complex field?)", "fields")
    base = {c: jnp.ones(1, jnp.float32) for c in problem.coords}
    base.update({k: float(v) for k, v in {**problem.params, **problem.scalar_unknowns}.items()})
    base.update({i.name: 1.0 for i in problem.integrals if i.name is not None})

    def probe():
        return _Probe(base, fields, cplx)

    equation = problem.equation
    if not isinstance(equation, ComplexEquation):
        p = probe().fill(equation.requests)
        split = [np.iscomplexobj(r) for r in equation.residuals(p)]
        equation = ComplexEquation(equation, cplx, split)

    def parts(fn) -> tuple:
        if isinstance(fn, ComplexPart):
            return (fn,)
        if probe().is_complex(fn):
            return tuple(ComplexPart(fn, p, cplx) for p in PARTS)
        return (ComplexPart(fn, "re", cplx),)

    conditions = []
    for index, cond in enumerate(problem.conditions):
        targets: dict[str, Any] = {}
        for sym, fn in cond.targets.items():
            if cplx.is_complex(sym):
                for name, p in zip(cplx.parts(sym), PARTS):
                    targets[name] = fn if isinstance(fn, ComplexPart) else ComplexPart(fn, p, cplx)
                continue
            if not isinstance(fn, ComplexPart) and probe().is_complex(fn):
                raise SpecError(
                    f"the target of the real field {sym!r} is complex; take real(...) of it or "
                    "make the field complex",
                    path=f"conditions[{index}].{sym}",
                )
            targets[sym] = fn if isinstance(fn, ComplexPart) else ComplexPart(fn, "re", cplx)
        residuals = tuple(r for fn in cond.residuals for r in parts(fn))
        conditions.append(dataclasses.replace(cond, targets=targets, residuals=residuals))

    data = []
    for obs in problem.data:
        values: dict[str, np.ndarray] = {}
        for sym, v in obs.values.items():
            if cplx.is_complex(sym):
                v = np.asarray(v)
                values.update(zip(cplx.parts(sym), (np.real(v), np.imag(v))))
            else:
                values[sym] = v
        data.append(dataclasses.replace(obs, values=values))

    integrals = []
    for index, integral in enumerate(problem.integrals):
        integrand = integral.integrand
        if not isinstance(integrand, ComplexPart):
            if probe().is_complex(integrand):
                raise SpecError(
                    "an integrand must be real: integrate abs(h)^2, real(h) or imag(h)",
                    path=f"integrals[{index}].integrand",
                )
            integrand = ComplexPart(integrand, "re", cplx)
        integrals.append(dataclasses.replace(integral, integrand=integrand))
    return {
        "fields": tuple(fields),
        "equation": equation,
        "conditions": tuple(conditions),
        "data": tuple(data),
        "integrals": tuple(integrals),
    }
