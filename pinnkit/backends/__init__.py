"""Backends: trainable representations of the fields that answer derivative requests.

`BACKENDS` maps a spec's ``model.backend`` to a builder
``(problem, config, *, dtype, key) -> BuiltModel``.
"""

from ._base import AbstractModel as AbstractModel
from ._base import AbstractPointModel as AbstractPointModel
from ._base import BuiltModel as BuiltModel
from ._base import Constrained as Constrained
from ._base import Frozen as Frozen
from ._base import Orthonormal as Orthonormal
from ._base import PointFunction as PointFunction
from ._base import hooks_of as hooks_of
from ._base import trainable_filter as trainable_filter
from .flax import from_flax as from_flax
from .gp import GP as GP
from .gp import build_gp as build_gp
from .mlp import MLP as MLP
from .mlp import build_mlp as build_mlp
from .odil import ODIL as ODIL
from .odil import build_odil as build_odil
from .pig import PIG as PIG
from .pig import build_pig as build_pig

BACKENDS = {"mlp": build_mlp, "pig": build_pig, "gp": build_gp, "odil": build_odil}
