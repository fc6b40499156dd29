"""What a method family is: the one contract every kind of spec goes through `solve`.

A family is a kind of problem with its own spec schema and its own outputs — PDE problems
(every backend), glioma scans (GliODIL), battery surrogates (SPM). A validated spec of a
family is an `AbstractFamily` instance; `pinnkit.solve` does the same five things with every
one of them:

1. the registry (`pinnkit.families.family_of`) picks the family from the spec's data and
   `load` validates it (every file read and every name checked, nothing trained);
2. `RunDirectory.create`, then `write_spec(resolved())`;
3. `RunDirectory.open_log` with `total_steps()` (cut back to `resume_step` on resume);
4. `run(rundir, resume=, log=)`: the family sets up its model, objective and phases and
   trains them with `pinnkit.train.train` (once, or once per start or level), returning an
   `Outcome` whose status is the trainer's;
5. `write_outputs(outcome, rundir)`: summary.json (the partial one for a run that stopped
   early), solution arrays, plots; its return value is what `solve` returns, and
   ``describe()`` on it gives the lines ``pinnkit solve`` prints.

Divergence (exit 3) and interrupts (exit 130) are raised by `solve` alike for every family.
"""

from __future__ import annotations

import abc
import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any, ClassVar


@dataclasses.dataclass
class Outcome:
    """What a family's `AbstractFamily.run` ended with.

    Attributes:
        status: ``"ok"``, ``"diverged"`` or ``"interrupted"``.
        message: why it stopped early (empty when ``ok``).
        value: what the family's `write_outputs` needs (a trained model and its record, ...).
    """

    status: str
    message: str = ""
    value: Any = None


def headline(summary: dict, note: str = "") -> str:
    """The first line ``pinnkit solve`` prints for a finished run of any family."""
    s = summary
    line = f"{s['problem']}: {s['status']} after {s['steps']} steps in {s['wall_s']:.1f} s"
    return f"{line} ({note})" if note else line


class AbstractFamily(abc.ABC):
    """A validated spec of one method family (see the module docstring for the contract).

    Attributes:
        kind: the family's name in the registry.
        base_dir: the folder the spec's relative paths start from.
    """

    kind: ClassVar[str]
    base_dir: pathlib.Path

    @classmethod
    @abc.abstractmethod
    def claims(cls, data: dict) -> bool:
        """Whether raw spec data is of this family."""

    @classmethod
    @abc.abstractmethod
    def load(cls, data: dict, lines: dict, base_dir: pathlib.Path) -> AbstractFamily:
        """Validate spec data (with its YAML line numbers) and check everything it names."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The problem's name."""

    @abc.abstractmethod
    def resolved(self) -> dict:
        """The spec with every default filled in (``spec.resolved.yaml``: what ``--resume``
        reloads)."""

    @abc.abstractmethod
    def total_steps(self) -> int:
        """The optimizer steps the run takes (``train.steps``)."""

    def resume_step(self, rundir) -> int | None:
        """The metrics step a resumed run continues after (None: the checkpoint's)."""
        del rundir
        return None

    @abc.abstractmethod
    def run(self, rundir, *, resume: bool, log: Callable[[dict], None]) -> Outcome:
        """Set up and train; ``log`` takes each metrics entry."""

    @abc.abstractmethod
    def write_outputs(self, outcome: Outcome, rundir):
        """Write the run's outputs; return the result `solve` hands back."""

    @abc.abstractmethod
    def describe_spec(self) -> list[str]:
        """The lines ``pinnkit validate`` prints after ``ok``."""

    @classmethod
    def report(cls, rundir) -> dict:
        """``pinnkit report``: re-render what can be, return the summary (by default the
        outputs are written once, when the run finishes)."""
        from ..errors import SpecError

        if not rundir.summary_path.is_file():
            raise SpecError(f"{str(rundir.path)!r} has no summary.json", path="run")
        return rundir.read_summary()
