"""pinnkit: physics-informed machine learning for PDEs in JAX.

A problem is written once (a YAML spec or Python) and solved by interchangeable backends
that share one core of derivative operators and one trainer.

Example:
    >>> import pinnkit
    >>> spec = pinnkit.load_spec("problems/poisson1d.yaml", ["train.steps=500"])
    >>> solution = pinnkit.solve(spec, out="runs/poisson1d")
    >>> solution.errors()["u"]["rel_l2"]
"""

import os as _os

# Dense solves here are small (a Cholesky of a few hundred rows): OpenBLAS's thread pool only
# oversubscribes the cores XLA already uses, and on a busy 2-core machine a 400 x 400
# Cholesky took 0.5 s instead of 2 ms. One thread, unless the user chose otherwise; this
# takes effect only if NumPy is not loaded yet.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from ._solve import LoadedSpec as LoadedSpec  # noqa: E402
from ._solve import load_run as load_run
from ._solve import load_spec as load_spec
from ._solve import report as report
from ._solve import solve as solve
from ._version import __version__ as __version__
from .backends import MLP as MLP
from .backends import AbstractModel as AbstractModel
from .backends import AbstractPointModel as AbstractPointModel
from .backends import Constrained as Constrained
from .backends import PointFunction as PointFunction
from .backends import from_flax as from_flax
from .core.derivatives import ForwardMode as ForwardMode
from .core.derivatives import NestedReverse as NestedReverse
from .core.derivatives import TaylorMode as TaylorMode
from .core.domain import Box as Box
from .core.domain import Face as Face
from .core.expressions import parse_expression as parse_expression
from .core.objective import Objective as Objective
from .core.problem import Condition as Condition
from .core.problem import Observations as Observations
from .core.problem import Problem as Problem
from .core.problem import Reference as Reference
from .core.sampling import RAD as RAD
from .core.sampling import Grid as Grid
from .core.sampling import Sobol as Sobol
from .core.sampling import Uniform as Uniform
from .errors import DivergenceError as DivergenceError
from .errors import InterruptedRun as InterruptedRun
from .errors import PinnkitError as PinnkitError
from .errors import SpecError as SpecError
from .train.checkpoint import Checkpointer as Checkpointer
from .train.solution import Solution as Solution
from .train.steps import Phase as Phase
from .train.steps import lbfgs_phase as lbfgs_phase
from .train.trainer import train as train
from .train.weighting import Causal as Causal
from .train.weighting import Fixed as Fixed
from .train.weighting import GradNorm as GradNorm
