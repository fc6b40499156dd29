"""A safe expression language for the strings written in problem specs.

Specs contain small formulas such as ``"u_t - nu*u_xx"``, ``"exp(-pi^2*nu*t)*sin(pi*x)"`` or
``"where(abs(x) < 0.5, 0, 50)"``. A spec must never be able to run code, so an expression is
parsed with `ast.parse` and then checked against a whitelist of syntax: anything not listed below
is refused with an `ExpressionError` before a single value is computed. The checked tree is
compiled once into a tree of small Python closures that call `jax.numpy`; evaluation never walks
the AST again and nothing here ever calls `eval`, `exec` or `compile`.

Grammar:

- numbers: ``1``, ``2.5``, ``1e-3`` (stored as floats, so ``1/2`` is ``0.5``);
- names: coordinates, fields, derivatives (``u_x``, ``u_xt``), params and unknowns. Names that
  start with ``_`` are refused;
- the constants ``pi``, ``e`` and the imaginary unit ``i``. They always mean the constants: a
  symbol of the same name given by the caller does not shadow them (a spec may not name a param
  ``pi``, ``e`` or ``i``);
- ``+ - * /``, powers written ``^`` or ``**`` (right-associative and binding tighter than unary
  minus, so ``-x^2`` is ``-(x^2)`` and ``2^3^2`` is ``512``), unary ``+`` and ``-``, parentheses;
- comparisons ``< <= > >= == !=``, single or chained (``0 < x < 1``);
- calls of the functions in `FUNCTIONS`, with positional arguments only.

Booleans: a comparison gives a boolean array. Booleans are tracked while parsing, and one used
where a number is expected (``(x < 0)*2``, ``sin(x > 0)``) is refused; write
``where(x < 0, 2, 0)`` or ``heaviside(-x)*2`` instead. Conversely the first argument of ``where``
must be a comparison. An expression that is a comparison as a whole is allowed and evaluates to a
boolean array (`Expression.is_boolean` tells the caller).

Complex values: ``i`` and the names the caller declares complex (``complex_symbols``: a complex
field and its derivatives) are complex, and so is any arithmetic on them; ``abs``, ``real`` and
``imag`` give real numbers, ``conj`` the complex conjugate. Complex values are tracked while
parsing like booleans: comparisons, ``min``, ``max``, ``heaviside``, ``step`` and ``arctan2`` of a
complex value are refused (they have no meaning there; compare ``abs(h)`` or ``real(h)``), and
`Expression.is_complex` says whether the value is complex. Complex literals such as ``2j`` are
refused: write ``2*i``.
"""

from __future__ import annotations

import ast
import difflib
import io
import math
import numbers
import tokenize
import types
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any, NoReturn

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from pinnkit.errors import ExpressionError

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Expression",
    "parse_expression",
]

MAX_LENGTH = 2000
"""The longest expression text accepted, in characters."""

MAX_DEPTH = 100
"""The deepest nesting accepted (parentheses, calls, unary signs, powers). Long flat sums and
products such as ``a + b + c + ...`` do not count towards it."""

# name -> (number of arguments, implementation). Every implementation is a jnp function, so that
# an expression traces under jit, grad and vmap.
_FUNCTION_TABLE: dict[str, tuple[int, Callable[..., Any]]] = {
    "sin": (1, jnp.sin),
    "cos": (1, jnp.cos),
    "tan": (1, jnp.tan),
    "exp": (1, jnp.exp),
    "log": (1, jnp.log),
    "sqrt": (1, jnp.sqrt),
    "abs": (1, jnp.abs),
    "tanh": (1, jnp.tanh),
    "sinh": (1, jnp.sinh),
    "cosh": (1, jnp.cosh),
    "sech": (1, lambda x: 1 / jnp.cosh(x)),
    "arcsin": (1, jnp.arcsin),
    "arccos": (1, jnp.arccos),
    "arctan": (1, jnp.arctan),
    "arctan2": (2, jnp.arctan2),
    "sign": (1, jnp.sign),
    "heaviside": (1, lambda x: jnp.heaviside(x, 0.5)),
    "step": (1, lambda x: jnp.heaviside(x, 0.5)),
    "min": (2, jnp.minimum),
    "max": (2, jnp.maximum),
    "where": (3, jnp.where),
    "real": (1, jnp.real),
    "imag": (1, jnp.imag),
    "conj": (1, jnp.conj),
}

# Functions whose value is real for a complex argument, and those a complex argument is refused by.
_REAL_VALUED = frozenset({"abs", "real", "imag"})
_REAL_ONLY = frozenset({"heaviside", "step", "min", "max", "arctan2"})

FUNCTIONS: Mapping[str, int] = types.MappingProxyType(
    {name: nargs for name, (nargs, _) in _FUNCTION_TABLE.items()}
)
"""The functions an expression may call, with their number of (positional) arguments."""

CONSTANTS: Mapping[str, float | complex] = types.MappingProxyType(
    {"pi": math.pi, "e": math.e, "i": 1j}
)
"""The named constants (``i`` is the imaginary unit). They win over any symbol of the same name."""

# An exponent that is a compile-time integer goes through `lax.integer_pow`, which is exact for
# negative bases and has clean higher derivatives; huge exponents fall back to the float power.
_MAX_INTEGER_POWER = 2**16

_BINARY_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: jnp.add,
    ast.Sub: jnp.subtract,
    ast.Mult: jnp.multiply,
    ast.Div: jnp.divide,
}
_ADDITIVE = (ast.Add, ast.Sub)
_MULTIPLICATIVE = (ast.Mult, ast.Div)

_PYTHON_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}

_COMPARISONS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: jnp.less,
    ast.LtE: jnp.less_equal,
    ast.Gt: jnp.greater,
    ast.GtE: jnp.greater_equal,
    ast.Eq: jnp.equal,
    ast.NotEq: jnp.not_equal,
}

_REFUSED_OPERATORS: dict[type[ast.AST], str] = {
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Not: "not",
    ast.Invert: "~",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}

# What to call a refused node in a message, and what to write instead; a node missing here is
# named by its AST class.
_REFUSED_NODES: dict[type[ast.AST], tuple[str, str | None]] = {
    ast.Attribute: ("attribute access ('.')", None),
    ast.Subscript: ("indexing ('[...]')", None),
    ast.Slice: ("slicing", None),
    ast.Lambda: ("a lambda", None),
    ast.ListComp: ("a comprehension", None),
    ast.SetComp: ("a comprehension", None),
    ast.DictComp: ("a comprehension", None),
    ast.GeneratorExp: ("a generator expression", None),
    ast.List: ("a list", None),
    ast.Tuple: ("a tuple", None),
    ast.Set: ("a set", None),
    ast.Dict: ("a dict", None),
    ast.JoinedStr: ("an f-string", None),
    ast.FormattedValue: ("an f-string", None),
    ast.NamedExpr: ("assignment (':=')", None),
    ast.IfExp: ("a conditional expression ('a if c else b')", "use where(c, a, b)"),
    ast.BoolOp: (
        "'and'/'or'",
        "use a chained comparison such as 0 < x < 1, or nest where(...)",
    ),
    ast.Starred: ("a starred argument ('*args')", None),
    ast.Await: ("await", None),
    ast.Yield: ("yield", None),
    ast.YieldFrom: ("yield", None),
}

_Evaluator = Callable[[Mapping[str, Any]], Any]


class _Compiled:
    """One compiled sub-expression.

    Arguments:
        fn: computes the value from the environment of symbol values.
        boolean: whether the value is a boolean array (the result of a comparison).
        value: the value as a Python float where it is known while parsing (numbers, real
            constants and arithmetic on them), else None.
        complex: whether the value is complex.
    """

    __slots__ = ("fn", "boolean", "value", "complex")

    def __init__(
        self,
        fn: _Evaluator,
        boolean: bool = False,
        value: float | None = None,
        complex: bool = False,
    ):
        self.fn = fn
        self.boolean = boolean
        self.value = value
        self.complex = complex


def _constant(value: float) -> _Compiled:
    # A Python float stays weakly typed in jnp, so it takes on the dtype of the arrays it meets.
    return _Compiled(lambda env: value, value=value)


def _fold(op: Callable[..., float], *values: float | None) -> float | None:
    """Computes `op` on known values while parsing, or None if any is unknown or the result is
    not a finite real (then jnp computes it at run time, with its own inf/nan semantics)."""
    if any(v is None for v in values):
        return None
    try:
        result = op(*values)
    except (ArithmeticError, ValueError):
        return None
    if not isinstance(result, float | int) or not math.isfinite(result):
        return None
    return float(result)


class _Compiler:
    """Checks a parsed expression against the whitelist and compiles it into closures.

    Arguments:
        text: the expression text as the user wrote it (for messages).
        columns: maps each column of the parsed text to the column of `text`.
        path, line: where the expression is in the spec (for messages).
        complex_symbols: the names whose values are complex.
    """

    def __init__(
        self,
        text: str,
        columns: list[int],
        path: str | None,
        line: int | None,
        complex_symbols: Collection[str] = (),
        functions: Mapping[str, int] | None = None,
    ):
        self.text = text
        self.columns = columns
        self.path = path
        self.line = line
        self.complex_symbols = frozenset(complex_symbols)
        self.functions = dict(functions or {})
        self.names: set[str] = set()

    def fail(self, message: str, node: ast.AST | None = None, hint: str | None = None) -> NoReturn:
        column = None
        if node is not None and hasattr(node, "col_offset"):
            offset = min(node.col_offset, len(self.columns) - 1)
            column = self.columns[offset]
        raise _error(self.text, message, column, hint, path=self.path, line=self.line)

    def compile(self, node: ast.AST, depth: int) -> _Compiled:
        # The depth check comes first so that the recursion below (and the nesting of closures
        # at evaluation) stays far from Python's recursion limit.
        if depth > MAX_DEPTH:
            self.fail(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, depth)
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.Compare):
            return self.compare(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            self.fail(
                "indexing ('[...]') is not allowed",
                node,
                hint="derivatives are written as names such as u_x or u_xx",
            )
        what, hint = _REFUSED_NODES.get(type(node), (f"a {type(node).__name__} node", None))
        self.fail(f"{what} is not allowed", node, hint=hint)

    def numeric(self, node: ast.AST, depth: int, where: str) -> _Compiled:
        """Compiles `node`, refusing a boolean where a number is expected."""
        compiled = self.compile(node, depth)
        if compiled.boolean:
            self.fail(
                f"a comparison cannot be used as a number ({where})",
                node,
                hint="turn a condition into numbers with where(condition, a, b) or heaviside(...)",
            )
        return compiled

    def real(self, node: ast.AST, depth: int, where: str) -> _Compiled:
        """Compiles `node`, refusing a complex value where only a real one has a meaning."""
        compiled = self.numeric(node, depth, where)
        if compiled.complex:
            self.fail(
                f"a complex value has no order ({where})",
                node,
                hint="compare or bound a real number such as abs(h), real(h) or imag(h)",
            )
        return compiled

    def constant(self, node: ast.Constant) -> _Compiled:
        value = node.value
        # bool is an int subclass, so it must be ruled out before the number case.
        if isinstance(value, bool) or value is None or value is Ellipsis:
            self.fail(f"'{value!r}' is not allowed", node, hint="use a number such as 0 or 1")
        if isinstance(value, str | bytes):
            self.fail("strings are not allowed", node)
        if isinstance(value, complex):
            self.fail(
                "complex literals are not allowed", node, hint="write the imaginary unit i, as 2*i"
            )
        if not isinstance(value, int | float):
            self.fail(f"the literal {value!r} is not allowed", node)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            self.fail("number is too large", node)
        return _constant(number)

    def name(self, node: ast.Name) -> _Compiled:
        name = node.id
        if name.startswith("_"):
            self.fail(f"names starting with '_' are not allowed ('{name}')", node)
        if name in CONSTANTS:
            value = CONSTANTS[name]
            if isinstance(value, complex):  # not folded: a float is all `_fold` knows
                return _Compiled(lambda env: value, complex=True)
            return _constant(value)
        if name in FUNCTIONS:
            self.fail(
                f"'{name}' is a function and must be called",
                node,
                hint=f"write it as {name}({', '.join('xyz'[: FUNCTIONS[name]])})",
            )
        self.names.add(name)
        return _Compiled(lambda env: env[name], complex=name in self.complex_symbols)

    def unary(self, node: ast.UnaryOp, depth: int) -> _Compiled:
        if isinstance(node.op, ast.UAdd):
            return self.numeric(node.operand, depth + 1, "after unary '+'")
        if isinstance(node.op, ast.USub):
            operand = self.numeric(node.operand, depth + 1, "after unary '-'")
            value = _fold(lambda v: -v, operand.value)
            if value is not None:
                return _constant(value)
            fn = operand.fn
            return _Compiled(lambda env: jnp.negative(fn(env)), complex=operand.complex)
        self.operator_refused(node.op, node)

    def binary(self, node: ast.BinOp, depth: int) -> _Compiled:
        if isinstance(node.op, ast.Pow):
            return self.power(node, depth)
        if not isinstance(node.op, _ADDITIVE + _MULTIPLICATIVE):
            self.operator_refused(node.op, node)
        # A left-nested chain such as a + b - c + ... is compiled as one flat loop, so that long
        # sums and products neither count as deep nesting nor nest closures.
        group = _ADDITIVE if isinstance(node.op, _ADDITIVE) else _MULTIPLICATIVE
        chain: list[tuple[ast.operator, ast.expr]] = []
        left: ast.expr = node
        while isinstance(left, ast.BinOp) and isinstance(left.op, group):
            chain.append((left.op, left.right))
            left = left.left
        chain.reverse()
        first = self.numeric(left, depth + 1, f"operand of '{_symbol(chain[0][0])}'")
        value = first.value
        is_complex = first.complex
        steps: list[tuple[Callable[[Any, Any], Any], _Evaluator]] = []
        for op, right in chain:
            operand = self.numeric(right, depth + 1, f"operand of '{_symbol(op)}'")
            value = _fold(_PYTHON_OPERATORS[type(op)], value, operand.value)
            is_complex = is_complex or operand.complex
            steps.append((_BINARY_OPERATORS[type(op)], operand.fn))
        if value is not None:
            return _constant(value)
        first_fn = first.fn

        def fn(env: Mapping[str, Any]) -> Any:
            result = first_fn(env)
            for apply, operand_fn in steps:
                result = apply(result, operand_fn(env))
            return result

        return _Compiled(fn, complex=is_complex)

    def power(self, node: ast.BinOp, depth: int) -> _Compiled:
        base = self.numeric(node.left, depth + 1, "base of a power")
        exponent = self.numeric(node.right, depth + 1, "exponent of a power")
        value = _fold(_PYTHON_OPERATORS[ast.Pow], base.value, exponent.value)
        if value is not None:
            return _constant(value)
        base_fn, exponent_fn = base.fn, exponent.fn
        power = exponent.value
        is_complex = base.complex or exponent.complex
        if power is not None and power.is_integer() and abs(power) <= _MAX_INTEGER_POWER:
            integer = int(power)
            return _Compiled(lambda env: jnp.power(base_fn(env), integer), complex=is_complex)
        return _Compiled(lambda env: jnp.power(base_fn(env), exponent_fn(env)), complex=is_complex)

    def compare(self, node: ast.Compare, depth: int) -> _Compiled:
        for op in node.ops:
            if type(op) not in _COMPARISONS:
                self.operator_refused(op, node)
        operands = [
            self.real(operand, depth + 1, "operand of a comparison").fn
            for operand in [node.left, *node.comparators]
        ]
        ops = [_COMPARISONS[type(op)] for op in node.ops]

        def fn(env: Mapping[str, Any]) -> Any:
            # Each operand is computed once, as Python does for a < b < c.
            left = operands[0](env)
            result = None
            for op, operand_fn in zip(ops, operands[1:], strict=True):
                right = operand_fn(env)
                test = op(left, right)
                result = test if result is None else jnp.logical_and(result, test)
                left = right
            return result

        return _Compiled(fn, boolean=True)

    def call(self, node: ast.Call, depth: int) -> _Compiled:
        if not isinstance(node.func, ast.Name):
            self.fail("only the listed functions can be called, by their plain name", node)
        name = node.func.id
        if name.startswith("_"):
            self.fail(f"names starting with '_' are not allowed ('{name}')", node)
        if name in self.functions:
            return self.declared_call(node, name, depth)
        if name not in FUNCTIONS:
            matches = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
            hint = f"did you mean '{matches[0]}'?" if matches else None
            known = f"allowed functions: {', '.join(FUNCTIONS)}"
            hint = f"{hint} {known}" if hint else known
            what = "a constant" if name in CONSTANTS else "not an allowed function"
            self.fail(f"'{name}' is {what} and cannot be called", node, hint=hint)
        if node.keywords:
            self.fail(f"keyword arguments are not allowed (in the call of {name})", node)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail(f"starred arguments are not allowed (in the call of {name})", arg)
        expected = FUNCTIONS[name]
        if len(node.args) != expected:
            plural = "argument" if expected == 1 else "arguments"
            self.fail(f"{name} takes {expected} {plural}, got {len(node.args)}", node)
        implementation = _FUNCTION_TABLE[name][1]
        if name == "where":
            condition = self.compile(node.args[0], depth + 1)
            if not condition.boolean:
                self.fail(
                    "the first argument of where must be a comparison",
                    node.args[0],
                    hint="for example where(x < 0.5, a, b)",
                )
            args = [condition] + [
                self.numeric(arg, depth + 1, f"argument of {name}") for arg in node.args[1:]
            ]
        elif name in _REAL_ONLY:
            args = [self.real(arg, depth + 1, f"argument of {name}") for arg in node.args]
        else:
            args = [self.numeric(arg, depth + 1, f"argument of {name}") for arg in node.args]
        is_complex = name not in _REAL_VALUED and any(arg.complex for arg in args)
        fns = [arg.fn for arg in args]
        if len(fns) == 1:
            only = fns[0]
            return _Compiled(lambda env: implementation(only(env)), complex=is_complex)
        return _Compiled(lambda env: implementation(*(f(env) for f in fns)), complex=is_complex)

    def declared_call(self, node: ast.Call, name: str, depth: int) -> _Compiled:
        """A call of a function the caller declared (an unknown function of an inverse
        problem): its value is a callable in the environment under its name."""
        if node.keywords:
            self.fail(f"keyword arguments are not allowed (in the call of {name})", node)
        expected = self.functions[name]
        if len(node.args) != expected or any(isinstance(a, ast.Starred) for a in node.args):
            plural = "argument" if expected == 1 else "arguments"
            self.fail(f"{name} takes {expected} {plural}, got {len(node.args)}", node)
        fns = [self.real(arg, depth + 1, f"argument of {name}").fn for arg in node.args]
        self.names.add(name)
        return _Compiled(lambda env: env[name](*(f(env) for f in fns)))

    def operator_refused(self, op: ast.AST, node: ast.AST) -> NoReturn:
        symbol = _REFUSED_OPERATORS.get(type(op), type(op).__name__)
        hint = "allowed: + - * / ^ ** and the comparisons < <= > >= == !="
        if isinstance(op, ast.Not):
            hint = "use where(...) with a comparison"
        self.fail(f"operator '{symbol}' is not allowed", node, hint=hint)


def _symbol(op: ast.operator) -> str:
    return {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(op)]


def _quote(text: str, column: int | None = None, width: int = 120) -> str:
    """The text in double quotes, cut to a window around `column` when it is long."""
    if len(text) <= width:
        return f'"{text}"'
    center = column if column is not None else 0
    start = max(0, min(center - width // 2, len(text) - width))
    snippet = text[start : start + width]
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + width < len(text) else ""
    return f'"{prefix}{snippet}{suffix}"'


def _error(
    text: str,
    message: str,
    column: int | None = None,
    hint: str | None = None,
    *,
    path: str | None,
    line: int | None,
) -> ExpressionError:
    """An ExpressionError saying what is wrong, in which text and at which (1-based) column."""
    where = f" in {_quote(text, column)}"
    if column is not None:
        where += f" at column {column + 1}"
    full = f"{message}{where}"
    if hint:
        full += f"; {hint}"
    return ExpressionError(full, path=path, line=line)


def _source_text(text: object, path: str | None, line: int | None) -> str:
    """The expression text for a spec value: a string, or a number as YAML may give it."""
    if isinstance(text, str):
        return text.strip()
    # bool is an int subclass (and numpy's bool is no number); YAML `true` is a mistake here.
    if isinstance(text, bool) or not isinstance(text, numbers.Real):
        raise ExpressionError(
            f"expected an expression (a string or a number), got {type(text).__name__} {text!r}",
            path=path,
            line=line,
        )
    if isinstance(text, numbers.Integral):
        return str(int(text))
    value = float(text)
    if not math.isfinite(value):
        raise ExpressionError(
            f"expected a finite number or an expression, got {text!r}", path=path, line=line
        )
    return repr(value)


def _replace_carets(text: str) -> tuple[str, list[int]]:
    """Rewrites each '^' operator token as '**' and maps the new columns to the old ones.

    Python's '^' is bitwise xor, which binds looser than + and * and associates to the left;
    mapping the parsed xor node to a power would read a*b^2 as (a*b)^2. Working on tokens (not
    on raw text) keeps the rewrite to real operators.
    """
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    carets = {
        token.start[1] for token in tokens if token.type == tokenize.OP and token.string == "^"
    }
    parts: list[str] = []
    columns: list[int] = []
    for index, char in enumerate(text):
        if index in carets:
            parts.append("**")
            columns.extend((index, index))
        else:
            parts.append(char)
            columns.append(index)
    columns.append(len(text))
    return "".join(parts), columns


def _parse(text: str, path: str | None, line: int | None) -> tuple[ast.expr, list[int]]:
    """Parses text (already checked for length and characters) into an expression node.

    Returns:
        the body of the parsed expression and the column map of `_replace_carets`.
    """

    def syntax_error(error: SyntaxError, columns: list[int]) -> ExpressionError:
        # Python reports an unexpected end of input at offset 0; point just past the text then.
        offset = error.offset if error.offset else len(columns)
        column = columns[min(offset - 1, len(columns) - 1)]
        reason = (error.msg or "invalid syntax").split(" (detected at")[0]
        hint = None
        if "Maybe you meant '==' or ':='" in reason or text[column : column + 1] == "=":
            reason, hint = "invalid syntax", "use '==' to compare"
        elif "invalid decimal literal" in reason:
            hint = "multiplication must be written out, e.g. 2*x"
        return _error(text, f"syntax error ({reason})", column, hint, path=path, line=line)

    identity = list(range(len(text) + 1))
    try:
        source, columns = _replace_carets(text)
    except (tokenize.TokenError, SyntaxError):
        # The tokenizer only gives up on unclosed brackets or strings; the parser explains both
        # better, with a position.
        source, columns = text, identity
    try:
        # Python warns about things like 1(2) while parsing; the whitelist refuses them anyway.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise syntax_error(error, columns) from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise _error(text, f"cannot parse ({type(error).__name__})", path=path, line=line) from None
    return tree.body, columns


def _compile(
    text: str,
    path: str | None,
    line: int | None,
    complex_symbols: Collection[str] = (),
    functions: Mapping[str, int] | None = None,
) -> tuple[_Evaluator, frozenset[str], bool, bool]:
    """Checks and compiles an expression text.

    Returns:
        the evaluator, the free symbols, whether the result is boolean and whether it is complex.
    """
    if not text:
        raise ExpressionError("empty expression", path=path, line=line)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(text)} characters; the limit is {MAX_LENGTH}): "
            f'"{text[:40]}..."',
            path=path,
            line=line,
        )
    for column, char in enumerate(text):
        # A '#' would start a Python comment and silently drop the rest of the text.
        if char == "#" or not (" " <= char <= "~" or char in "\t\n\r"):
            hint = {
                "#": "comments are not allowed",
                "\u2212": "use '-'",
                "\u00d7": "use '*'",
                "\u00b7": "use '*'",
            }.get(char)
            raise _error(
                text,
                f"character {char!r} (U+{ord(char):04X}) is not allowed",
                column,
                hint or "expressions are written in ASCII",
                path=path,
                line=line,
            )
    # YAML block scalars may span lines; one space per character keeps the columns.
    flat = text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    # Python's own parser limits bracket nesting (to 200) with a less helpful message.
    nesting = deepest = 0
    for column, char in enumerate(flat):
        nesting += char in "([{"
        nesting -= char in ")]}"
        if nesting > deepest:
            deepest = nesting
            if deepest > MAX_DEPTH:
                raise _error(
                    text,
                    f"expression is nested too deeply (more than {MAX_DEPTH} levels)",
                    column,
                    path=path,
                    line=line,
                )
    body, columns = _parse(flat, path, line)
    compiler = _Compiler(flat, columns, path, line, complex_symbols, functions)
    compiled = compiler.compile(body, 0)
    return compiled.fn, frozenset(compiler.names), compiled.boolean, compiled.complex


def _as_number(name: str, value: Any, path: str | None, line: int | None) -> Any:
    """A symbol value ready for evaluation: integers and booleans become floats, so that
    ``x^-1`` and ``1/x`` mean the same for ``x: 2`` as for ``x: 2.0``."""
    if isinstance(value, float) or callable(value):  # a declared function is called as is
        return value
    if isinstance(value, int):  # bool included
        return float(value)
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError) as error:
        raise ExpressionError(
            f"the value of symbol '{name}' is not numeric ({type(value).__name__}): {error}",
            path=path,
            line=line,
        ) from None
    if not jnp.issubdtype(array.dtype, jnp.inexact):
        array = array.astype(jnp.result_type(float))
    return array


class Expression:
    """A parsed, checked and compiled expression. Immutable; equal and hashed by its text (and
    its complex symbols), so it can be a static field of a module or a `jax.jit` static argument.

    Build one with `parse_expression` (or `Expression(text)`, which takes the same arguments).

    Attributes:
        text: the source text (surrounding whitespace removed; a number given as such is
            written as text).
        names: the free symbols used, excluding the built-in functions and the constants
            (a declared function that is called is one of them).
        is_boolean: whether the expression is a comparison, which evaluates to a boolean array.
        is_complex: whether its value is complex (it uses ``i`` or a complex symbol, other than
            through ``abs``, ``real`` or ``imag``).
        complex_symbols: the names declared complex that the expression uses.
        functions: the declared functions (name -> number of arguments) it may call.
        path, line: where the expression is in the spec, for messages (not part of equality).
    """

    __slots__ = (
        "text",
        "names",
        "is_boolean",
        "is_complex",
        "complex_symbols",
        "functions",
        "path",
        "line",
        "_fn",
    )

    text: str
    names: frozenset[str]
    is_boolean: bool
    is_complex: bool
    complex_symbols: frozenset[str]
    path: str | None
    line: int | None

    def __init__(
        self,
        text: str | int | float,
        *,
        symbols: Collection[str] | None = None,
        complex_symbols: Collection[str] = (),
        functions: Mapping[str, int] | None = None,
        path: str | None = None,
        line: int | None = None,
    ):
        source = _source_text(text, path, line)
        fn, names, is_boolean, is_complex = _compile(source, path, line, complex_symbols, functions)
        for attribute, value in (
            ("text", source),
            ("names", names),
            ("is_boolean", is_boolean),
            ("is_complex", is_complex),
            ("complex_symbols", names & frozenset(complex_symbols)),
            (
                "functions",
                tuple(sorted((k, v) for k, v in (functions or {}).items() if k in names)),
            ),
            ("path", path),
            ("line", line),
            ("_fn", fn),
        ):
            object.__setattr__(self, attribute, value)
        if symbols is not None:
            self.check_symbols(symbols)

    def check_symbols(self, symbols: Collection[str]) -> None:
        """Raises an ExpressionError unless every free name is one of `symbols`.

        Arguments:
            symbols: the names the expression may use (the constants are always allowed).
        """
        known = set(symbols)
        unknown = sorted(self.names - known)
        if not unknown:
            return
        quoted = ", ".join(f"'{name}'" for name in unknown)
        message = f"unknown symbol{'s' if len(unknown) > 1 else ''} {quoted} in {_quote(self.text)}"
        candidates = sorted(known | set(CONSTANTS))
        suggestions = []
        for name in unknown:
            matches = difflib.get_close_matches(name, candidates, n=1)
            if matches:
                suggestions.append((name, matches[0]))
        if len(unknown) == 1 and suggestions:
            message += f"; did you mean '{suggestions[0][1]}'?"
        elif suggestions:
            message += "; did you mean " + ", ".join(
                f"'{match}' for '{name}'" for name, match in suggestions
            )
            message += "?"
        listed = ", ".join(sorted(known - set(CONSTANTS))) or "(none)"
        message += f" known symbols: {listed} (constants: {', '.join(CONSTANTS)})"
        raise ExpressionError(message, path=self.path, line=self.line)

    def __call__(self, env: Mapping[str, ArrayLike]) -> jax.Array:
        """Evaluates the expression with `jax.numpy`.

        Values broadcast as in numpy. Only jnp operations are used, so the call traces under
        `jax.jit`, `jax.grad` and `jax.vmap`. As always in JAX, ``where(x > 0, sqrt(x), 0)`` has
        a nan gradient at negative x: both branches are differentiated.

        Arguments:
            env: a value for every name in `names` (more are ignored). Integer and boolean
                values are converted to the default float type.

        Returns:
            the value as an array; a constant expression such as ``"0"`` gives a 0-d array,
            which the caller broadcasts.
        """
        missing = sorted(self.names.difference(env))
        if missing:
            given = ", ".join(sorted(env)) or "(none)"
            raise ExpressionError(
                f"cannot evaluate {_quote(self.text)}: no value for symbol"
                f"{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}; "
                f"given: {given}",
                path=self.path,
                line=self.line,
            )
        values = {name: _as_number(name, env[name], self.path, self.line) for name in self.names}
        return jnp.asarray(self._fn(values))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Expression is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Expression is immutable (cannot delete {name!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expression):
            return NotImplemented
        return (
            self.text == other.text
            and self.complex_symbols == other.complex_symbols
            and self.functions == other.functions
        )

    def __hash__(self) -> int:
        return hash((Expression, self.text, self.complex_symbols, self.functions))

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __str__(self) -> str:
        return self.text

    # The compiled closures cannot be pickled; the text is enough to rebuild them.
    def __reduce__(self):
        return (
            _rebuild,
            (
                self.text,
                self.path,
                self.line,
                tuple(sorted(self.complex_symbols)),
                self.functions,
            ),
        )

    def __copy__(self) -> Expression:
        return self

    def __deepcopy__(self, memo: dict) -> Expression:
        return self


def _rebuild(
    text: str,
    path: str | None,
    line: int | None,
    complex_symbols: tuple[str, ...] = (),
    functions: tuple[tuple[str, int], ...] = (),
) -> Expression:
    return Expression(
        text, path=path, line=line, complex_symbols=complex_symbols, functions=dict(functions)
    )


def parse_expression(
    text: str | int | float | Expression,
    *,
    symbols: Collection[str] | None = None,
    complex_symbols: Collection[str] | None = None,
    functions: Mapping[str, int] | None = None,
    path: str | None = None,
    line: int | None = None,
) -> Expression:
    """Parses, checks and compiles an expression.

    Arguments:
        text: the expression. Numbers (YAML may give ``u: 0``) are accepted and written as
            text. An `Expression` is accepted too: it is checked against `symbols` and returned
            (compiled again if `complex_symbols` is given and changes which of its names are
            complex).
        symbols: the names the expression may use, if given. An unknown name raises an
            ExpressionError that names it, suggests the closest known one and lists them all.
            The constants ``pi``, ``e`` and ``i`` are always allowed and always mean the
            constants.
        complex_symbols: the names whose values are complex (a complex field and its
            derivatives); arithmetic on them is complex, ordering them is refused. None (the
            default) is none for a text, and leaves an `Expression` as it is.
        functions: functions the caller declares (name -> number of arguments), called like
            the built-in ones; the environment gives each as a callable under its name (the
            unknown functions of an inverse problem). A text that calls one must be compiled
            with it declared.
        path: the key path of the expression in the spec, for messages.
        line: the 1-based YAML line of that key, for messages.

    Returns:
        the compiled `Expression`.

    Raises:
        ExpressionError: on a syntax error (quoting the text and the column), a refused
            construct, a wrong number of function arguments, an unknown symbol, a complex value
            where order matters, a text longer than `MAX_LENGTH` or nested deeper than
            `MAX_DEPTH`.
    """
    if (
        isinstance(text, Expression)
        and (
            complex_symbols is None
            or text.complex_symbols == text.names & frozenset(complex_symbols)
        )
        and (functions is None or not text.functions)
    ):
        if symbols is not None:
            text.check_symbols(symbols)
        return text
    if isinstance(text, Expression):  # the same text, with other complex symbols
        path = path if path is not None else text.path
        line = line if line is not None else text.line
        text = text.text
    return Expression(
        text,
        symbols=symbols,
        complex_symbols=complex_symbols or (),
        functions=functions,
        path=path,
        line=line,
    )


def evaluate_numpy(text: str, coords: dict, params: dict, *, path: str) -> np.ndarray:
    """An expression of coordinates and params evaluated in float64 on NumPy arrays (a spec's
    potential on a reference solver's grid, say), broadcast to the coordinates' shape."""
    import jax

    expr = parse_expression(text, symbols=[*coords, *params], path=path)
    shape = np.broadcast_shapes(*(np.shape(v) for v in coords.values()))
    with jax.enable_x64(True):
        value = expr({**{k: np.asarray(v, float) for k, v in coords.items()}, **params})
        return np.broadcast_to(np.asarray(value, dtype=float), shape).copy()
