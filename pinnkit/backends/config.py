"""The ``model:`` section of a PDE spec, one pydantic schema per backend (`MODEL_CONFIGS`).

Each backend validates its own keys here, so a backend's builder reads a typed config and the
spec layer (`pinnkit.spec.schema`) only collects these; nothing here imports the spec layer.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Number = float | str  # a number or a constant expression such as "2*pi"


def _count(train: dict) -> bool:
    """Whether ``train.steps`` is absent or a whole number (anything else is left for the
    schema to refuse with its key path)."""
    steps = train.get("steps")
    return steps is None or (isinstance(steps, int) and not isinstance(steps, bool))


MAX_COUNT = 10**9  # points, steps, widths, grid sizes: a count above this is not meant
Seed = Annotated[int, Field(ge=0, lt=2**32)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
PositiveCount = Annotated[int, Field(ge=1, le=MAX_COUNT)]


class Strict(BaseModel):
    """Unknown keys refused; numbers must be finite (a NaN or inf sizes nothing)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


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

    def step_bytes(self, dims: int, points: int, itemsize: int) -> tuple[float, str]:
        """A rough upper estimate of one training step's working set, in bytes, and the key
        that sizes it most: what `check_memory` holds against the device before anything is
        allocated. Pointwise backends: ``points`` times the activations that forward-mode
        derivatives up to second order carry (1 + d + d² per unit), kept for the backward
        pass and the optimizer."""
        units = self._units_per_point()
        return 3.0 * points * units * (1 + dims + dims**2) * itemsize, "train.points.interior"

    def _units_per_point(self) -> float:
        return 64.0 * 5


class MLPConfig(ModelConfig):
    """``model: {backend: mlp, ...}``."""

    width: PositiveCount = 64
    depth: PositiveCount = 4
    activation: str = "tanh"
    fourier_features: Count = 0
    fourier_scale: Annotated[float, Field(gt=0)] = 1.0
    harmonics: PositiveCount = 1
    interfaces: list[str] = Field(
        [], description="level sets φ(x) = 0 across which the solution is only C^(p-1)"
    )
    interface_power: Annotated[int, Field(ge=1, le=4)] = 2

    def _units_per_point(self) -> float:
        return float(self.width) * (self.depth + 1) + 2 * self.fourier_features


class PIGConfig(ModelConfig):
    """``model: {backend: pig, ...}``: Physics-Informed Gaussians (arXiv 2412.05994)."""

    gaussians: Annotated[int, Field(ge=1, le=1 << 20)] = 800
    features: PositiveCount = 4
    hidden: PositiveCount = 16
    activation: str = "tanh"
    sigma: Annotated[float, Field(gt=0)] = Field(
        0.1, description="initial standard deviation, in units of the box scaled to [-1, 1]"
    )
    covariance: Literal["diagonal", "full"] = "diagonal"
    neighbours: Count = Field(
        0, description="each point uses only its K nearest Gaussians (0: all)"
    )

    def step_bytes(self, dims: int, points: int, itemsize: int) -> tuple[float, str]:
        """Each point against each Gaussian it uses (its feature values and the d
        coordinates' offsets), kept for the backward pass and the optimizer. A rough figure:
        for flow_mixing_pig (5120 points, 1000 Gaussians, 3D, float32) it says 0.49 GB; the
        process peaked at 1.01 GB training 60 steps and at 0.28 GB validating only."""
        near = float(min(self.neighbours or self.gaussians, self.gaussians))
        units = near * (self.features + 1 + dims) + self.hidden * 2
        return 3.0 * points * units * itemsize, "train.points.interior"


GP_DEFAULT_STEPS = 300


def _nodes(grid: int | list[int], dims: int) -> float:
    return float(math.prod([grid] * dims if isinstance(grid, int) else grid))


class GPConfig(ModelConfig):
    """``model: {backend: gp, ...}``: a GP solver (GP-HM, arXiv 2311.04465)."""

    grid: (
        Annotated[int, Field(ge=3, le=MAX_COUNT)] | list[Annotated[int, Field(ge=3, le=MAX_COUNT)]]
    ) = Field(
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

    def step_bytes(self, dims: int, points: int, itemsize: int) -> tuple[float, str]:
        """Grid values and their residual rows (cells and midpoints), times the mixture
        components per axis and the solver's work vectors."""
        return 32.0 * _nodes(self.grid, dims) * (2 + self.components) * itemsize, "model.grid"

    @staticmethod
    def train_defaults(train: dict) -> dict:
        """The GP's training when the spec names no optimizer: float64, fixed weights, and
        Gauss–Newton on the grid values around Adam on the kernel with the values re-solved
        after every step (variable projection)."""
        train = dict(train)
        train.setdefault("dtype", "float64")
        train.setdefault("weighting", "fixed")
        if train.get("phases") is None and train.get("optimizer") is None and _count(train):
            steps = train.pop("steps", None)
            steps = GP_DEFAULT_STEPS if steps is None else steps
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

    grid: (
        Annotated[int, Field(ge=4, le=MAX_COUNT)] | list[Annotated[int, Field(ge=4, le=MAX_COUNT)]]
    ) = Field(65, description="nodes per axis, faces included (one size, or one per coordinate)")
    multigrid: Annotated[int, Field(ge=1, le=12)] = Field(
        1,
        description="levels of the multigrid re-parameterisation (each field a sum of fields "
        "on grids coarsened by 2, 4, ...): preconditions Adam and L-BFGS; 1 = the plain grid",
    )

    def step_bytes(self, dims: int, points: int, itemsize: int) -> tuple[float, str]:
        """Node values and the sparse Jacobian of Gauss–Newton: a stencil of 1 + 2d nodes
        per residual row, its normal matrix (squared stencil) and the factorisation's fill."""
        stencil = (1 + 2 * dims) ** 2
        return 16.0 * _nodes(self.grid, dims) * stencil * itemsize, "model.grid"

    @staticmethod
    def train_defaults(train: dict) -> dict:
        """ODIL's training when the spec names no optimizer: float64, fixed weights and
        Gauss–Newton (Newton's method on the discrete least-squares problem) on all values."""
        train = dict(train)
        train.setdefault("dtype", "float64")
        train.setdefault("weighting", "fixed")
        if train.get("phases") is None and train.get("optimizer") is None and _count(train):
            steps = train.pop("steps", None)
            steps = ODIL_DEFAULT_STEPS if steps is None else steps
            train["phases"] = [{"optimizer": "gauss_newton", "steps": steps}]
        return train


MODEL_CONFIGS: dict[str, type[ModelConfig]] = {
    "mlp": MLPConfig,
    "pig": PIGConfig,
    "gp": GPConfig,
    "odil": ODILConfig,
}
