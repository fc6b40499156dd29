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


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (a swap of neighbours counts as one edit)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def closest(name: str, options) -> str | None:
    """The valid name a typo most likely meant, or None."""
    options = [str(o) for o in options]
    if not options:
        return None
    best = min(options, key=lambda o: (_edit_distance(str(name), o), abs(len(o) - len(str(name)))))
    if _edit_distance(str(name), best) <= max(1, min(3, len(str(name)) // 2)):
        return best
    import difflib

    close = difflib.get_close_matches(str(name), options, n=1)
    return close[0] if close else None


def did_you_mean(name: str, options) -> str:
    """``"; did you mean 'x'?"`` for the closest option, or ``""``."""
    best = closest(name, options)
    return f"; did you mean {best!r}?" if best is not None else ""
