"""The glioma spec: one patient's scan, solved by GliODIL through ``pinnkit solve``.

A spec with a ``patient:`` section is a glioma spec (docs/glioma.md)::

    name: my_patient
    equation: {name: fisher_kolmogorov, r: 20}
    patient:
      wm: wm.nii.gz                      # white-matter probability map
      gm: gm.nii.gz                      # grey-matter probability map, same grid
      segmentation: segmentation.nii.gz  # labels 0, 1 enhancing, 3 edema, 4 necrotic
      pet: pet.nii.gz                    # optional
      truth: truth.json                  # optional: Dice and plan figures against it
    model: {backend: gliodil, nt: 64}
    train: {steps_per_start: 30, optimizer: gauss_newton}   # or steps: the total, all starts
    plan: {margin_mm: 15}

Unknown keys are refused with a "did you mean", as in the PDE spec (`pinnkit.spec.schema`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from ..errors import SpecError
from .schema import Count, Strict


class GliomaEquation(Strict):
    """``equation: {name: fisher_kolmogorov, r: 20}``: dc/dt = div(D grad c) + rho c (1 - c)
    with D = D_w (m_WM + m_GM / r); D_w T and rho T are inferred, r is given."""

    name: Literal["fisher_kolmogorov"]
    r: Annotated[float, Field(gt=0)] = Field(20.0, description="D_w / D_g (given, not inferred)")


class PatientConfig(Strict):
    """The scan's NIfTI files (paths relative to the spec's folder), all on one grid."""

    wm: str = Field(description="white-matter probability map, values in [0, 1]")
    gm: str = Field(description="grey-matter probability map, values in [0, 1]")
    segmentation: str = Field(description="labels 0, 1 (enhancing), 3 (edema), 4 (necrotic)")
    pet: str | None = Field(None, description="a PET signal (any scale), optional")
    truth: str | None = Field(
        None,
        description="the hidden truth: a truth.json of `pinnkit data glioma` (parameters and "
        "density) or a NIfTI density map; adds Dice and plan figures to summary.json",
    )
    dimension: Literal[2, 3] | None = Field(
        None, description="2 for a single slice, 3 for a volume (default: 2 if one slice)"
    )


class InitialConfig(Strict):
    """Values to start from instead of the Dice-stopped forward runs."""

    D_w_T: Annotated[float, Field(gt=0)] | None = None
    rho_T: Annotated[float, Field(gt=0)] | None = None
    origin_mm: list[float] | None = None
    th_up: Annotated[float, Field(gt=0, lt=1)] | None = None
    th_down: Annotated[float, Field(gt=0, lt=1)] | None = None


class WeightsConfig(Strict):
    """The weights of the loss rows (`pinnkit.reference.gliodil.Weights`)."""

    pde: Annotated[float, Field(ge=0)] = 10.0
    initial: Annotated[float, Field(ge=0)] = 10.0
    segmentation: Annotated[float, Field(ge=0)] = 1.0
    pet: Annotated[float, Field(ge=0)] = 1.0


class GliodilModel(Strict):
    """``model: {backend: gliodil, ...}``: the space-time grid of the unknown density."""

    backend: Literal["gliodil"] = "gliodil"
    nt: Annotated[int, Field(ge=3, le=4096)] = Field(64, description="time levels in [0, T]")
    pad_mm: Annotated[float, Field(ge=0)] = Field(
        20.0, description="margin of the crop box around the visible tumour, mm"
    )
    levels: Annotated[int, Field(ge=1, le=8)] = Field(
        4, description="multigrid levels of the field (first-order optimisers only)"
    )
    ratios: list[Annotated[float, Field(gt=0)]] = Field(
        [0.25, 1.0, 4.0], min_length=1, description="initial D_w / rho ratios (mm^2), one run each"
    )
    weights: WeightsConfig = WeightsConfig()
    initial: InitialConfig | None = None


class GliomaOptimizer(Strict):
    """``gauss_newton`` (variable projection, the default) or an optax optimizer on the whole
    unknown vector (``adam``, ``lbfgs``...) with its learning rate."""

    name: str = "gauss_newton"
    damping: Annotated[float, Field(gt=0)] = Field(1e-3, description="gauss_newton's initial mu")
    lr: Annotated[float, Field(gt=0)] = Field(1e-3, description="an optax optimizer's rate")


class GliomaTrain(Strict):
    steps: Count | None = Field(
        None,
        description="the run's optimiser steps, all starts together (as in every spec); split "
        "evenly over the starts, and decides over steps_per_start when both are given",
    )
    steps_per_start: Count | None = Field(
        None, description="optimiser steps per start (default 30)"
    )
    optimizer: GliomaOptimizer | str = GliomaOptimizer()

    @field_validator("optimizer")
    @classmethod
    def _named(cls, v):
        return GliomaOptimizer(name=v) if isinstance(v, str) else v


class PlanConfig(Strict):
    margin_mm: Annotated[float, Field(ge=0)] = Field(
        15.0, description="the uniform margin of the standard radiotherapy plan, mm"
    )


class GliomaSpec(Strict):
    """A glioma spec (module docstring)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]
    description: str = ""
    equation: GliomaEquation | Literal["fisher_kolmogorov"] = "fisher_kolmogorov"
    patient: PatientConfig
    model: GliodilModel = GliodilModel()
    train: GliomaTrain = GliomaTrain()
    plan: PlanConfig = PlanConfig()

    @field_validator("equation")
    @classmethod
    def _expand(cls, v):
        return GliomaEquation(name=v) if isinstance(v, str) else v


def resolve_steps(spec: GliomaSpec) -> GliomaSpec:
    """``train.steps`` is the run's total, as in every spec: split evenly over the starts
    (deciding over ``train.steps_per_start`` when both are given); both set on return."""
    i = spec.model.initial
    single = i is not None and i.D_w_T is not None and i.rho_T is not None
    starts = 1 if single else len(spec.model.ratios)
    t = spec.train
    if t.steps is not None:
        if t.steps % starts:
            raise SpecError(
                f"train.steps is the run's total over its {starts} starts, so a multiple of "
                f"{starts}; got {t.steps}. Give train.steps_per_start instead, or "
                f"train.steps: {starts * max(1, round(t.steps / starts))}",
                path="train.steps",
            )
        per_start = t.steps // starts
    else:
        per_start = 30 if t.steps_per_start is None else t.steps_per_start
    train = t.model_copy(update={"steps": per_start * starts, "steps_per_start": per_start})
    return spec.model_copy(update={"train": train})


def is_glioma_spec(data) -> bool:
    """Whether spec data is a glioma spec (it has a ``patient`` section)."""
    return isinstance(data, dict) and "patient" in data
