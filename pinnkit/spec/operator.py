"""The operator spec: train a neural operator (SFNO or FNO-3D) on vorticity trajectories
through ``pinnkit solve`` (docs/sfno.md, "From the command line").

A spec whose ``model.backend`` is ``sfno`` or ``fno3d`` is an operator spec::

    name: sfno_ns2d_small
    data:
      file: data/ns2d_small.npz     # written by `pinnkit data ns2d` (keys: vorticity, t, nu, ...)
      in_steps: 4                   # snapshots the operator reads
      out_steps: 4                  # snapshots it predicts
      start: 0                      # the snapshot the input window starts at
      train: 16                     # the first 16 trajectories train
      test: 4                       # the next 4 are the test set
      res: 16                       # train and test on a coarser grid (spectral resampling)
    model: {backend: sfno, width: 8, modes: [6, 6, 4], layers: 2}
    train:
      steps: 300                    # optimizer steps of the whole run (refinement included)
      batch_size: 4
      optimizer: {name: adam, lr: 3.0e-3, schedule: cosine}
      seed: 0
    refine: {steps: 20, lr: 2.0e-5} # optional: Spectral-Refiner fine-tuning (SFNO only)

Unknown keys are refused with a "did you mean", as in the PDE spec (`pinnkit.spec.schema`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .schema import MAX_COUNT, Count, OptimizerConfig, PositiveCount, Seed, Strict

OPERATOR_BACKENDS = ("sfno", "fno3d")

Modes = tuple[PositiveCount, PositiveCount, PositiveCount]


class OperatorData(Strict):
    """Which trajectories of an ``.npz`` file of `pinnkit data ns2d` (``vorticity`` with axes
    (sample, time, x, y)) train and test, and which snapshots are inputs and targets."""

    file: str = Field(description="an .npz file of `pinnkit data ns2d`")
    in_steps: PositiveCount = 4
    out_steps: PositiveCount = 4
    start: Count = Field(0, description="first input snapshot")
    train: PositiveCount = Field(description="the first `train` trajectories")
    test: PositiveCount = Field(description="the `test` trajectories after them")
    res: Annotated[int, Field(ge=4, le=MAX_COUNT)] | None = Field(
        None, description="grid points per direction to train on (default: the file's)"
    )


class SFNOModel(Strict):
    """The constructor arguments of `pinnkit.operators.SFNO` (``in_steps`` and ``out_steps``
    come from ``data``)."""

    backend: Literal["sfno"]
    width: Annotated[int, Field(ge=1, le=512)] = 16
    modes: Modes = (8, 8, 6)
    head_modes: Modes | None = None
    latent_steps: Annotated[int, Field(ge=2, le=MAX_COUNT)] | None = None
    layers: Annotated[int, Field(ge=1, le=16)] = 4
    expansion: Annotated[int, Field(ge=0, le=8)] = 2
    head_channels: PositiveCount = 1
    time_features: Count = 4


class FNO3dModel(Strict):
    """The constructor arguments of `pinnkit.operators.FNO3d`."""

    backend: Literal["fno3d"]
    width: Annotated[int, Field(ge=1, le=512)] = 20
    modes: Modes = (8, 8, 8)
    layers: Annotated[int, Field(ge=1, le=16)] = 4
    padding: Count = 6
    projection: PositiveCount = 128


class OperatorTrain(Strict):
    steps: PositiveCount = Field(
        1000, description="optimizer steps of the whole run (the refinement's included)"
    )
    batch_size: PositiveCount = 8
    optimizer: OptimizerConfig | str = OptimizerConfig(schedule="cosine")
    seed: Seed = 0
    dtype: Literal["float32", "float64"] = "float32"
    log_every: PositiveCount = 50
    eval_every: PositiveCount = 100
    checkpoint_every: PositiveCount = 100
    memory_check: bool = Field(
        True, description="refuse a batch estimated to need more memory than the device has"
    )


class OperatorRefine(Strict):
    """The Spectral-Refiner fine-tuning (`pinnkit.operators.refine`) of the trained SFNO's
    output layer on the test inputs at the file's resolution: the last ``steps`` of
    ``train.steps``."""

    steps: PositiveCount = 50
    lr: Annotated[float, Field(gt=0)] = 1e-4
    s: float = Field(-1.0, description="the Sobolev order of the residual norm")
    alpha: Annotated[float, Field(gt=0)] = 1.0


class OperatorSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]
    description: str = ""
    data: OperatorData
    model: SFNOModel | FNO3dModel = Field(discriminator="backend")
    train: OperatorTrain = OperatorTrain()
    refine: OperatorRefine | None = None

    @model_validator(mode="after")
    def _refine_fits(self):
        if self.refine is not None:
            if self.model.backend != "sfno":
                raise ValueError("refine: the Spectral-Refiner fine-tunes an SFNO (backend: sfno)")
            if self.refine.steps >= self.train.steps:
                raise ValueError(
                    f"refine.steps = {self.refine.steps} must be less than train.steps = "
                    f"{self.train.steps} (the run's total optimizer steps)"
                )
        return self


def is_operator_spec(data) -> bool:
    """Whether spec data is an operator spec (``model.backend`` is ``sfno`` or ``fno3d``)."""
    if not isinstance(data, dict):
        return False
    model = data.get("model")
    return isinstance(model, dict) and model.get("backend") in OPERATOR_BACKENDS


MODEL_SCHEMAS = {"sfno": SFNOModel, "fno3d": FNO3dModel}


def validate_operator_spec(data: dict, lines: dict | None = None) -> OperatorSpec:
    """Validate an operator spec: its model section by its backend's schema first (so that
    an unknown key there is named ``model.<key>`` with that backend's keys), then the whole."""
    import pydantic

    from .loader import translate, validate_as

    raw = data.get("model")
    schema = MODEL_SCHEMAS[raw["backend"]]
    try:
        schema.model_validate(raw)
    except pydantic.ValidationError as e:
        raise translate(e, data, lines or {}, schema, prefix=("model",)) from None
    return validate_as(OperatorSpec, data, lines)
