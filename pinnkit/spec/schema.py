"""The problem spec, contract v1 (DESIGN.md §5), as pydantic models.

Unknown keys are refused everywhere (with a "did you mean"), except where a mapping is open
by design: a condition's targets (``u: "0"``, ``u_x: "0"``), a builtin equation's options and
an optimizer's keyword arguments, which are checked against what they feed when the spec is
built. The ``model`` mapping is validated by the schema of its ``backend``, so backends add
their own keys without touching the rest.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Number = float | str  # a number or a constant expression such as "2*pi"
MAX_COORDINATE = 1e12  # a domain's ends; beyond, grid spacings and scalings overflow


from ..backends.config import MAX_COUNT as MAX_COUNT  # noqa: E402
from ..backends.config import MODEL_CONFIGS as MODEL_CONFIGS  # noqa: E402
from ..backends.config import Count as Count  # noqa: E402
from ..backends.config import GPConfig as GPConfig  # noqa: E402
from ..backends.config import MLPConfig as MLPConfig  # noqa: E402
from ..backends.config import ModelConfig as ModelConfig  # noqa: E402
from ..backends.config import ODILConfig as ODILConfig  # noqa: E402
from ..backends.config import OrthonormalConfig as OrthonormalConfig  # noqa: E402
from ..backends.config import PIGConfig as PIGConfig  # noqa: E402
from ..backends.config import PositiveCount as PositiveCount  # noqa: E402
from ..backends.config import Seed as Seed  # noqa: E402
from ..backends.config import Strict as Strict  # noqa: E402


class ScheduleConfig(Strict):
    """A learning-rate schedule over the phase's steps."""

    name: Literal["constant", "cosine", "exponential", "warmup_cosine"] = "cosine"
    alpha: Annotated[float, Field(ge=0)] = 0.01  # cosine: final lr as a fraction of lr
    decay_rate: Annotated[float, Field(gt=0)] = 0.9  # exponential
    transition_steps: PositiveCount = 1000  # exponential
    warmup_steps: Count = 0


class OptimizerConfig(BaseModel):
    """An optax optimizer by name; other keys are its keyword arguments (``b1``, ...)."""

    model_config = ConfigDict(extra="allow")
    name: str = "adam"
    lr: Annotated[float, Field(gt=0)] = 1.0e-3
    schedule: (
        ScheduleConfig | Literal["constant", "cosine", "exponential", "warmup_cosine"] | None
    ) = None


class PhaseConfig(Strict):
    optimizer: OptimizerConfig | str
    steps: Count
    freeze: list[str] = Field([], description="unknowns held at their values in this phase")
    params: str | None = Field(
        None,
        description="train only this parameter group of the model (gp: values, kernel)",
    )
    solve: str | None = Field(
        None,
        description="before each step, one Gauss–Newton step on this parameter group "
        "(variable projection; gp: values)",
    )


class RADConfig(Strict):
    k: Annotated[float, Field(ge=0)] = 1.0
    c: Annotated[float, Field(ge=0)] = 1.0
    candidates: PositiveCount = 4


class PointsConfig(Strict):
    interior: PositiveCount = 2048
    boundary: PositiveCount = 256
    sampler: Literal["uniform", "sobol", "grid", "rad"] = "sobol"
    resample_every: Count = 1
    rad: RADConfig = RADConfig()
    jitter: bool = False


class WeightingConfig(Strict):
    name: Literal["fixed", "gradnorm"] = "gradnorm"
    every: PositiveCount = 100
    alpha: Annotated[float, Field(ge=0, lt=1)] = 0.9


class CausalConfig(Strict):
    eps: Annotated[float, Field(gt=0)] = 1.0
    chunks: PositiveCount = 32


class TrainConfig(Strict):
    steps: Count | None = None
    optimizer: OptimizerConfig | str | None = None
    phases: list[PhaseConfig] | None = None
    points: PointsConfig = PointsConfig()
    weighting: WeightingConfig | Literal["fixed", "gradnorm"] = WeightingConfig()
    causal: CausalConfig | bool = False
    seed: Seed = 0
    dtype: Literal["float32", "float64"] = "float32"
    log_every: PositiveCount = 100
    eval_every: PositiveCount = 500
    checkpoint_every: PositiveCount = 1000
    devices: PositiveCount | None = None
    memory_check: bool = Field(
        True,
        description="refuse a spec whose training step is estimated to need more memory "
        "than the device has (false: try anyway)",
    )


class ConditionConfig(BaseModel):
    """``{on: "x=0", u: "0"}``; keys other than these are targets (fields or derivatives)."""

    model_config = ConfigDict(extra="allow")
    on: str | None = None
    periodic: str | None = None
    residual: str | float | list[str | float] | None = None
    weight: Annotated[float, Field(ge=0)] = 1.0
    label: str | None = None


class FunctionConfig(Strict):
    """``functions: {k: {args: [u], ...}}``: an unknown function, a small MLP trained with the
    fields (see `pinnkit.core.functions`)."""

    args: list[str] = Field(min_length=1, description="argument names (k_u is ∂k/∂u)")
    width: Annotated[int, Field(ge=1, le=1024)] = 16
    depth: Annotated[int, Field(ge=1, le=8)] = 2
    activation: Literal["tanh", "sin", "gelu", "softplus"] = "tanh"
    range: tuple[float, float] | None = Field(
        None, description="squash the output into [lo, hi] (a positive conductivity, say)"
    )
    scale: list[float] | None = Field(
        None, description="per argument, the typical size of its values (inputs are divided)"
    )


class FunctionReferenceConfig(Strict):
    """The true unknown function, to report the inferred one's error."""

    exact: str | float
    domain: dict[str, tuple[float, float]] = Field(
        description="the interval of each argument over which the error is measured"
    )
    points: Annotated[int, Field(ge=2, le=4096)] = 201


class ReferenceConfig(Strict):
    exact: dict[str, str | float] | None = None
    file: str | None = None
    solver: str | None = None
    options: dict[str, Any] = {}
    grid: list[Annotated[int, Field(ge=2, le=MAX_COUNT)]] | None = None
    unknowns: dict[str, float] = {}
    functions: dict[str, FunctionReferenceConfig] = {}
    up_to_constant: list[str] = Field(
        [],
        description="fields compared up to an additive constant (a pressure that only its "
        "gradient fixes)",
    )


class DataConfig(Strict):
    file: str
    fields: list[str] | None = None
    weight: Annotated[float, Field(ge=0)] = 1.0
    label: str | None = None


class IntegralConfig(Strict):
    """``{integrand: "u^2", equals: 1}``: an integral condition (normalisation, conservation)."""

    integrand: str | float
    equals: str | float
    over: list[str] | None = None
    points: Annotated[int, Field(ge=2, le=512)] = 64
    samples: PositiveCount = 16
    weight: Annotated[float, Field(ge=0)] = 1.0
    label: str | None = None
    name: str | None = None
    log: bool = False
    minimize: bool = False
    breaks: dict[str, list[float]] = {}


class EquationConfig(BaseModel):
    """``{name: helmholtz, k: 1}`` (a builtin and its options) or ``{residuals: [...]}``."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    residuals: list[str | float] | str | None = None


class Spec(Strict):
    """A whole problem spec."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]
    description: str = ""
    coords: list[str]
    domain: dict[str, tuple[Number, Number]]
    fields: list[str]
    complex: list[str] = Field([], description="fields that are complex (held as NAME_re, NAME_im)")
    params: dict[str, float] = {}
    unknowns: dict[str, float] = {}
    functions: dict[str, FunctionConfig] = Field(
        {}, description="unknown functions (small networks) residuals may call"
    )
    equation: str | EquationConfig
    conditions: list[ConditionConfig] = []
    reference: ReferenceConfig | None = None
    data: list[DataConfig] = []
    integrals: list[IntegralConfig] = []
    eigenvalues: list[str] = []
    potential: str | None = None  # an eigenvalue problem's V(x), for the plots
    model: dict[str, Any] = {}
    train: TrainConfig = TrainConfig()

    @field_validator("coords", "fields")
    @classmethod
    def _nonempty_unique(cls, v):
        if not v:
            raise ValueError("give at least one name")
        if len(set(v)) != len(v):
            raise ValueError(f"names must be unique, got {v}")
        return v

    @field_validator("domain")
    @classmethod
    def _bounded(cls, v):
        for name, ends in v.items():
            for end in ends:
                if isinstance(end, float) and abs(end) > MAX_COORDINATE:
                    raise ValueError(
                        f"{name}: {end} is beyond ±{MAX_COORDINATE:g}; rescale the coordinates"
                    )
        return v

    @field_validator("complex")
    @classmethod
    def _unique(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"names must be unique, got {v}")
        return v
