"""The equation library: builtin PDE families and residuals written as expressions."""

from ._base import AbstractEquation as AbstractEquation
from ._base import ExpressionEquation as ExpressionEquation
from ._base import as_derivatives as as_derivatives
from ._base import parse_symbolic as parse_symbolic
from ._library import BUILTINS as BUILTINS
from ._library import Builtin as Builtin
from ._library import builtin_equation as builtin_equation
