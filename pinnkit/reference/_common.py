"""Helpers shared by the reference solvers."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..errors import SpecError


def broadcast_points(x: ArrayLike, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``t`` broadcast together as float64, checked finite (and ``t >= 0``)."""
    xb, tb = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))
    if not np.all(np.isfinite(xb)):
        raise SpecError("x must be finite", path="x")
    if not np.all(np.isfinite(tb)) or np.any(tb < 0):
        raise SpecError("t must be finite and non-negative", path="t")
    return xb, tb
