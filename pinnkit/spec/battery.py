"""The battery spec: train the SPM surrogate through ``pinnkit solve`` (docs/battery.md).

A spec whose equation is ``spm`` is a battery spec::

    name: spm_surrogate
    equation: {name: spm, kinetics: linear}     # parameters: FILE (json/yaml) for another set
    degradation: {deg_i0_a: [0.5, 4], deg_ds_c: [1, 10]}
    model: {backend: spm_pinn, width: 32, depth: 3}
    train:
      levels:
        - {adam_steps: 1500, lbfgs_steps: 300, points: 1024, lr: 1.0e-3}
        - {adam_steps: 1500, lbfgs_steps: 300, points: 2048, lr: 3.0e-4, scale: 0.1}
      dtype: float32
      seed: 0
    reference: {grid: 3, times: 136, nodes: 64}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from ..errors import SpecError
from .schema import MAX_COUNT, Count, Seed, Strict


class SPMEquation(Strict):
    name: Literal["spm"]
    kinetics: Literal["linear", "butler_volmer"] = "linear"
    parameters: str | None = Field(
        None, description="a JSON/YAML file of SPMParameters fields (default: the simple set)"
    )


class SPMModel(Strict):
    backend: Literal["spm_pinn"] = "spm_pinn"
    width: Annotated[int, Field(ge=1, le=1024)] = 32
    depth: Annotated[int, Field(ge=1, le=16)] = 3


class SPMLevel(Strict):
    adam_steps: Count = 1500
    lbfgs_steps: Count = 300
    points: Annotated[int, Field(ge=8, le=MAX_COUNT)] = 1024
    lr: Annotated[float, Field(gt=0)] = 1e-3
    scale: Annotated[float, Field(gt=0)] = 1.0


class SPMTrain(Strict):
    levels: list[SPMLevel] = Field(
        [SPMLevel(), SPMLevel(points=2048, lr=3e-4, scale=0.1)], min_length=1
    )
    steps: Count | None = Field(
        None,
        description="the run's optimizer steps, all levels together (as in every spec): the "
        "last level's last phase takes up the difference",
    )
    dtype: Literal["float32", "float64"] = "float32"
    seed: Seed = 0
    memory_check: bool = Field(
        True,
        description="refuse levels or a reference grid estimated to need more memory than "
        "the device has",
    )


class SPMReference(Strict):
    grid: Annotated[int, Field(ge=1, le=16)] = Field(3, description="values per multiplier")
    times: Annotated[int, Field(ge=2, le=MAX_COUNT)] = 136
    nodes: Annotated[int, Field(ge=3, le=MAX_COUNT)] = 64


class BatterySpec(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]
    description: str = ""
    equation: SPMEquation
    degradation: dict[Literal["deg_i0_a", "deg_ds_c"], tuple[float, float]] = {
        "deg_i0_a": (0.5, 4.0),
        "deg_ds_c": (1.0, 10.0),
    }
    model: SPMModel = SPMModel()
    train: SPMTrain = SPMTrain()
    reference: SPMReference = SPMReference()

    @field_validator("equation", mode="before")
    @classmethod
    def _expand(cls, v):
        return {"name": v} if isinstance(v, str) else v

    @field_validator("degradation")
    @classmethod
    def _ordered(cls, v):
        for name, (lo, hi) in v.items():
            if not 0 < lo < hi:
                raise ValueError(f"{name}: expected 0 < lo < hi, got ({lo}, {hi})")
        return v


def is_battery_spec(data) -> bool:
    """Whether spec data is a battery spec (``equation: spm`` or ``{name: spm}``)."""
    if not isinstance(data, dict):
        return False
    eq = data.get("equation")
    return eq == "spm" or (isinstance(eq, dict) and eq.get("name") == "spm")


def resolve_steps(spec: BatterySpec) -> BatterySpec:
    """``train.steps`` is the run's total, as in every spec: the last level's last phase
    (L-BFGS, or Adam where it has none) takes up the difference; the levels say it on
    return."""
    t = spec.train
    if t.steps is None:
        return spec
    last = t.levels[-1]
    phase = "lbfgs_steps" if last.lbfgs_steps > 0 else "adam_steps"
    total = sum(level.adam_steps + level.lbfgs_steps for level in t.levels)
    head = total - getattr(last, phase)
    if t.steps < head:
        raise SpecError(
            f"train.steps={t.steps} is fewer than the steps before the last level's last "
            f"phase ({head}); lower the levels' steps instead",
            path="train.steps",
        )
    levels = [*t.levels[:-1], last.model_copy(update={phase: t.steps - head})]
    train = t.model_copy(update={"levels": levels, "steps": None})
    return spec.model_copy(update={"train": train})
