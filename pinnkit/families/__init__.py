"""The registry of method families: the one place that maps a spec to its family.

Adding a family: a module here with an `AbstractFamily` subclass, and one entry in
`FAMILIES`. The PDE family is last: it takes every spec no other family claims.
"""

from __future__ import annotations

from ._base import AbstractFamily as AbstractFamily
from ._base import Outcome as Outcome
from .battery import BatteryFamily as BatteryFamily
from .glioma import GliomaFamily as GliomaFamily
from .operator import OperatorFamily as OperatorFamily
from .pde import PDEFamily as PDEFamily

FAMILIES: dict[str, type[AbstractFamily]] = {
    GliomaFamily.kind: GliomaFamily,
    BatteryFamily.kind: BatteryFamily,
    OperatorFamily.kind: OperatorFamily,
    PDEFamily.kind: PDEFamily,
}


def family_of(data) -> type[AbstractFamily]:
    """The family whose spec ``data`` is (the first in `FAMILIES` that claims it)."""
    for family in FAMILIES.values():
        if family.claims(data):
            return family
    raise AssertionError("a bug: the PDE family claims every spec")
