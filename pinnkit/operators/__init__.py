"""Neural operators for flows: the spatiotemporal FNO (SFNO), the FNO-3D baseline, and the
Spectral-Refiner fine-tuning of Cao et al. (2024, arXiv:2405.17211).

Operators map functions to functions (the first vorticity snapshots of a flow to the next
ones) rather than representing one solution's fields, so they are not `pinnkit.backends`
models; they train with the same trainer, `pinnkit.train.train`, through the objective
adapters `OperatorObjective` (data) and `RefinementObjective` (the Navier–Stokes residual).
docs/sfno.md has the mathematics and the measured figures.
"""

from ._answer import SpectralFields as SpectralFields
from ._answer import vorticity_equation as vorticity_equation
from ._answer import vorticity_residual as vorticity_residual
from ._models import SFNO as SFNO
from ._models import FNO3d as FNO3d
from ._models import FourierBlock as FourierBlock
from ._models import Pointwise as Pointwise
from ._models import decode as decode
from ._spectral import OutputSpectralLayer as OutputSpectralLayer
from ._spectral import SpectralConv3d as SpectralConv3d
from ._spectral import max_modes as max_modes
from ._spectral import relative_l2 as relative_l2
from ._spectral import resample as resample
from ._spectral import sobolev_norm as sobolev_norm
from ._spectral import synthesize as synthesize
from ._training import OperatorObjective as OperatorObjective
from ._training import RefinementObjective as RefinementObjective
from ._training import refine as refine
from ._training import residual_times as residual_times
from ._training import train_operator as train_operator
from ._training import trajectory_residual as trajectory_residual
