"""Li-ion batteries: a PINN surrogate of the single-particle model and Bayesian calibration of
its degradation parameters (issue 7; the reference solver is `pinnkit.reference.spm`)."""

from .surrogate import (
    DEGRADATION_RANGES as DEGRADATION_RANGES,
)
from .surrogate import (
    LevelConfig as LevelConfig,
)
from .surrogate import (
    SPMSurrogate as SPMSurrogate,
)
from .surrogate import (
    evaluate_errors as evaluate_errors,
)
from .surrogate import (
    train_surrogate as train_surrogate,
)
