"""The error hierarchy of pinnkit.

Every error a user can cause is a `PinnkitError` whose message says where the problem is
(the YAML key path and line, or the argument name), what was expected, what was got and how
to fix it. The command line prints such errors without a traceback and exits with the code
stored on the class (DESIGN.md §6).
"""

from __future__ import annotations


class PinnkitError(Exception):
    """Base class of every error pinnkit raises on purpose."""

    exit_code: int = 1


class SpecError(PinnkitError, ValueError):
    """A problem specification (YAML or Python) or a command-line argument is wrong.

    Arguments:
        message: what is wrong, what was expected and how to fix it.
        path: the key path in the spec, e.g. ``"model.width"`` (optional).
        line: the 1-based YAML line of that key, where known (optional).
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}"
            if self.line is not None:
                where += f" (line {self.line})"
            where += ": "
        return f"{where}{self.message}"


class ExpressionError(SpecError):
    """An expression in a spec cannot be parsed, uses a refused construct or an unknown name."""


class DivergenceError(PinnkitError, FloatingPointError):
    """Training produced a non-finite loss; the last finite checkpoint was kept."""

    exit_code = 3


class InterruptedRun(PinnkitError, KeyboardInterrupt):
    """Training was interrupted by SIGINT/SIGTERM; a checkpoint was written."""

    exit_code = 130


class InternalError(PinnkitError, RuntimeError):
    """An invariant inside pinnkit failed: this is a bug, please report it."""

    def __init__(self, message: str):
        super().__init__(f"internal error (this is a bug in pinnkit, please report it): {message}")
