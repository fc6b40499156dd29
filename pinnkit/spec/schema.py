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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class OrthonormalConfig(Strict):
    """``orthonormal: {points: 64, breaks: {x: [0.5]}}``: the fields orthonormal in L2."""

    points: Annotated[int, Field(ge=2, le=512)] = 64
    breaks: dict[str, list[float]] = {}


class ModelConfig(Strict):
    """Keys every backend understands; backends subclass it with their own."""

    backend: str = "mlp"
    hard_constraints: bool | Literal["auto"] = Field(
        "auto", description="enforce value conditions exactly where the faces allow it"
    )
    derivatives: Literal["forward", "reverse", "taylor"] = Field(
        "forward", description="derivative strategy for pointwise backends"
    )
    orthonormal: bool | OrthonormalConfig = Field(
        False, description="make the fields orthonormal in L2 by construction (eigenproblems)"
    )


class MLPConfig(ModelConfig):
    """``model: {backend: mlp, ...}``."""

    width: Annotated[int, Field(ge=1)] = 64
    depth: Annotated[int, Field(ge=1)] = 4
    activation: str = "tanh"
    fourier_features: Annotated[int, Field(ge=0)] = 0
    fourier_scale: Annotated[float, Field(gt=0)] = 1.0
    harmonics: Annotated[int, Field(ge=1)] = 1
    interfaces: list[str] = Field(
        [], description="level sets φ(x) = 0 across which the solution is only C^(p-1)"
    )
    interface_power: Annotated[int, Field(ge=1, le=4)] = 2


class PIGConfig(ModelConfig):
    """``model: {backend: pig, ...}``: Physics-Informed Gaussians (arXiv 2412.05994)."""

    gaussians: Annotated[int, Field(ge=1, le=1 << 20)] = 800
    features: Annotated[int, Field(ge=1)] = 4
    hidden: Annotated[int, Field(ge=1)] = 16
    activation: str = "tanh"
    sigma: Annotated[float, Field(gt=0)] = Field(
        0.1, description="initial standard deviation, in units of the box scaled to [-1, 1]"
    )
    covariance: Literal["diagonal", "full"] = "diagonal"
    neighbours: Annotated[int, Field(ge=0)] = Field(
        0, description="each point uses only its K nearest Gaussians (0: all)"
    )


GP_DEFAULT_STEPS = 300


class GPConfig(ModelConfig):
    """``model: {backend: gp, ...}``: a GP solver (GP-HM, arXiv 2311.04465)."""

    grid: int | list[Annotated[int, Field(ge=3)]] = Field(
        200, description="collocation grid: points per axis (one size, or one per coordinate)"
    )
    components: Annotated[int, Field(ge=1, le=512)] = Field(
        30, description="mixture components Q per axis"
    )
    max_frequency: float | list[float] | None = Field(
        None,
        description="initial frequencies ω_q (rad per unit) spread over [0, max_frequency]; "
        "default: the grid's Nyquist frequency π (n-1) / length",
    )
    kernel: Literal["gaussian", "student_t"] = Field(
        "gaussian", description="spectral density of each component"
    )
    jitter: Annotated[float, Field(gt=0)] = Field(
        1e-8, description="added to each K_a's diagonal, relative to k_a(0)"
    )
    prior_weight: Annotated[float, Field(ge=0)] = Field(
        1e-6, description="weight of the GP prior term (-log N(U|0,K)) / N in the loss"
    )
    sparsity: Annotated[float, Field(ge=0)] = Field(
        1.0, description="strength of the Jeffreys prior Σ log w_q on the mixture weights"
    )
    width: Annotated[float, Field(gt=0)] = Field(
        1.0, description="initial spectral width of a component, in units of their spacing"
    )
    midpoints: bool = Field(
        True,
        description="also enforce the equation at the grid cells' midpoints (steers the "
        "kernel towards accuracy between the nodes)",
    )
    preconditioner: Literal["auto", "laplacian", "none"] = Field(
        "auto",
        description="preconditioner of the conjugate gradients that solve for the grid values "
        "(2D and 3D): the fast-diagonalised Dirichlet Laplacian of the kernel, or none; auto: "
        "laplacian where the equation has a second derivative in every coordinate",
    )

    @staticmethod
    def train_defaults(train: dict) -> dict:
        """The GP's training when the spec names no optimizer: float64, fixed weights, and
        Gauss–Newton on the grid values around Adam on the kernel with the values re-solved
        after every step (variable projection)."""
        train = dict(train)
        train.setdefault("dtype", "float64")
        train.setdefault("weighting", "fixed")
        if train.get("phases") is None and train.get("optimizer") is None:
            steps = int(train.pop("steps", GP_DEFAULT_STEPS))
            solve = {"optimizer": "gauss_newton", "steps": 2, "params": "values"}
            adam = {"name": "adam", "lr": 0.05, "schedule": "cosine"}
            train["phases"] = [
                solve,
                {
                    "optimizer": adam,
                    "steps": max(steps - 4, 0),
                    "params": "kernel",
                    "solve": "values",
                },
                solve,
            ]
        return train


ODIL_DEFAULT_STEPS = 8


class ODILConfig(ModelConfig):
    """``model: {backend: odil, ...}``: node values on a grid, finite differences (ODIL,
    arXiv 2205.04611)."""

    grid: int | list[Annotated[int, Field(ge=4)]] = Field(
        65, description="nodes per axis, faces included (one size, or one per coordinate)"
    )
    multigrid: Annotated[int, Field(ge=1, le=12)] = Field(
        1,
        description="levels of the multigrid re-parameterisation (each field a sum of fields "
        "on grids coarsened by 2, 4, ...): preconditions Adam and L-BFGS; 1 = the plain grid",
    )

    @staticmethod
    def train_defaults(train: dict) -> dict:
        """ODIL's training when the spec names no optimizer: float64, fixed weights and
        Gauss–Newton (Newton's method on the discrete least-squares problem) on all values."""
        train = dict(train)
        train.setdefault("dtype", "float64")
        train.setdefault("weighting", "fixed")
        if train.get("phases") is None and train.get("optimizer") is None:
            steps = int(train.pop("steps", ODIL_DEFAULT_STEPS))
            train["phases"] = [{"optimizer": "gauss_newton", "steps": steps}]
        return train


MODEL_CONFIGS: dict[str, type[ModelConfig]] = {
    "mlp": MLPConfig,
    "pig": PIGConfig,
    "gp": GPConfig,
    "odil": ODILConfig,
}


class ScheduleConfig(Strict):
    """A learning-rate schedule over the phase's steps."""

    name: Literal["constant", "cosine", "exponential", "warmup_cosine"] = "cosine"
    alpha: Annotated[float, Field(ge=0)] = 0.01  # cosine: final lr as a fraction of lr
    decay_rate: Annotated[float, Field(gt=0)] = 0.9  # exponential
    transition_steps: Annotated[int, Field(ge=1)] = 1000  # exponential
    warmup_steps: Annotated[int, Field(ge=0)] = 0


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
    steps: Annotated[int, Field(ge=0)]
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
    candidates: Annotated[int, Field(ge=1)] = 4


class PointsConfig(Strict):
    interior: Annotated[int, Field(ge=1)] = 2048
    boundary: Annotated[int, Field(ge=1)] = 256
    sampler: Literal["uniform", "sobol", "grid", "rad"] = "sobol"
    resample_every: Annotated[int, Field(ge=0)] = 1
    rad: RADConfig = RADConfig()
    jitter: bool = False


class WeightingConfig(Strict):
    name: Literal["fixed", "gradnorm"] = "gradnorm"
    every: Annotated[int, Field(ge=1)] = 100
    alpha: Annotated[float, Field(ge=0, lt=1)] = 0.9


class CausalConfig(Strict):
    eps: Annotated[float, Field(gt=0)] = 1.0
    chunks: Annotated[int, Field(ge=1)] = 32


class TrainConfig(Strict):
    steps: Annotated[int, Field(ge=0)] | None = None
    optimizer: OptimizerConfig | str | None = None
    phases: list[PhaseConfig] | None = None
    points: PointsConfig = PointsConfig()
    weighting: WeightingConfig | Literal["fixed", "gradnorm"] = WeightingConfig()
    causal: CausalConfig | bool = False
    seed: int = 0
    dtype: Literal["float32", "float64"] = "float32"
    log_every: Annotated[int, Field(ge=1)] = 100
    eval_every: Annotated[int, Field(ge=1)] = 500
    checkpoint_every: Annotated[int, Field(ge=1)] = 1000
    devices: Annotated[int, Field(ge=1)] | None = None


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
    grid: list[Annotated[int, Field(ge=2)]] | None = None
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
    samples: Annotated[int, Field(ge=1)] = 16
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

    @field_validator("complex")
    @classmethod
    def _unique(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"names must be unique, got {v}")
        return v
