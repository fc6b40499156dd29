"""The glioma family: read a patient's NIfTI files, run GliODIL, write the run.

A glioma spec (`pinnkit.spec.glioma`) names the tissue maps, the segmentation, optionally a
PET image and a hidden truth. `GliomaFamily.run` runs `pinnkit.reference.gliodil.infer` (each
start one `pinnkit.train.train` call) with the spec's settings, and `write_outputs` writes the
run directory of DESIGN.md §6: ``summary.json`` (the contract's keys; the inferred parameters
under ``"unknowns"``; with a truth, ``"recovery"``: Dice of c >= 0.1 and the plan comparison,
and ``"errors"``: the density's error), ``metrics.jsonl`` (one line per optimiser step),
``solution.npz`` (the density on all time levels), ``inferred_density.nii.gz`` and
``inferred_initial.nii.gz`` (the patient's grid and affine), ``plots/gliodil.png``,
``checkpoint/`` (after every step: Ctrl-C, then ``--resume DIR`` continues) and
``spec.resolved.yaml``.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from ..errors import DivergenceError, InterruptedRun, SpecError
from ..report.rundir import RunDirectory, run_header
from ..spec.glioma import GliomaSpec, is_glioma_spec, resolve_steps
from ..spec.loader import SpecSource, validate_as
from ._base import AbstractFamily, Outcome, headline


@dataclasses.dataclass(frozen=True)
class GliomaFamily(SpecSource, AbstractFamily):
    """A validated glioma spec (`GliomaSpec`) and the folder its relative paths start from."""

    spec: GliomaSpec

    kind = "glioma"

    @classmethod
    def claims(cls, data) -> bool:
        return is_glioma_spec(data)

    @classmethod
    def load(cls, data, lines, base_dir) -> GliomaFamily:
        """Validate a glioma spec and check its files (read, not solved)."""
        spec = resolve_steps(validate_as(GliomaSpec, data, lines))
        loaded = cls(spec, data, pathlib.Path(base_dir))
        loaded.inputs()
        loaded.optimizer()
        return loaded

    def resolved(self) -> dict:
        data = self.spec.model_dump(mode="json", exclude_none=True)
        # per start, so `--resume DIR --set train.steps=N` (the total) can extend the run
        del data["train"]["steps"]
        return data

    def starts(self) -> int:
        return 1 if _single_start(self.spec) else len(self.spec.model.ratios)

    def total_steps(self) -> int:
        return self.spec.train.steps

    def resume_step(self, rundir) -> int:
        return _checkpoint_step(rundir, self.spec.train.steps_per_start)

    def run(self, rundir, *, resume, log) -> Outcome:
        from ..reference import gliodil

        spec = self.spec
        anatomy, seg, pet, truth = self.inputs()

        def on_step(k, loss, params):
            log(
                {
                    "step": int(params["start"]) * spec.train.steps_per_start + k,
                    "phase": f"start {int(params['start'])}",
                    "loss": loss,
                    **{n: np.asarray(v).tolist() for n, v in params.items() if n != "start"},
                }
            )

        m = spec.model
        w = m.weights
        try:
            result = gliodil.infer(
                anatomy,
                seg,
                pet,
                nt=m.nt,
                steps=spec.train.steps_per_start,
                optimizer=self.optimizer(),
                ratios=m.ratios,
                r=spec.equation.r,
                weights=gliodil.Weights(w.pde, w.initial, w.segmentation, w.pet),
                initial=m.initial.model_dump(exclude_none=True) if m.initial else None,
                pad_mm=m.pad_mm,
                levels=m.levels,
                callback=on_step,
                checkpoint=rundir.checkpoint,
            )
        except InterruptedRun as e:
            return Outcome("interrupted", str(e))
        except DivergenceError as e:
            return Outcome("diverged", str(e))
        return Outcome("ok", "", (result, anatomy, truth))

    def write_outputs(self, outcome, rundir) -> GliomaRun | None:
        if outcome.status != "ok":
            header = run_header(self.name, "gliodil", outcome.status, "float64", None)
            steps = _checkpoint_step(rundir, self.spec.train.steps_per_start)
            rundir.write_partial(header, outcome.message, steps=steps)
            return None
        result, anatomy, truth = outcome.value
        summary = write_glioma_outputs(self, result, anatomy, truth, rundir.path)
        return GliomaRun(result, summary, rundir.path)

    def describe_spec(self) -> list[str]:
        anatomy, seg, pet, truth = self.inputs()
        s = self.spec
        return [
            f"  glioma {s.name}: {anatomy.ndim}D grid {anatomy.shape}, voxels "
            f"{'x'.join(f'{h:g}' for h in anatomy.spacing)} mm, {int((seg > 0).sum())} tumour "
            f"voxels; PET {'yes' if pet is not None else 'no'}; truth "
            f"{'yes' if truth is not None else 'no'}",
            f"  equation fisher_kolmogorov (r = {s.equation.r:g}); model gliodil, nt "
            f"{s.model.nt}, starts {self.starts()}; {s.train.optimizer.name} x"
            f"{s.train.steps_per_start} per start ({s.train.steps} steps)",
        ]

    def path(self, key: str) -> pathlib.Path | None:
        """The file ``patient.<key>`` names, checked to exist (None if not given)."""
        return self.file(getattr(self.spec.patient, key), f"patient.{key}")

    def dimension(self) -> int:
        if self.spec.patient.dimension is not None:
            return self.spec.patient.dimension
        import nibabel as nib

        shape = nib.load(str(self.path("wm"))).shape
        return 2 if len(shape) >= 3 and shape[2] == 1 else 3

    def inputs(self):
        """(anatomy, segmentation, pet, truth): truth a `SyntheticPatient` (a truth.json), a
        density array (a NIfTI file) or None. Every file is checked against the tissue maps'
        grid, with errors that name the key."""
        from ..reference import glioma

        ndim = self.dimension()

        def read(key):
            path = self.path(key)
            if path is None:
                return None, None
            try:
                return glioma.read_nifti(path, ndim=ndim)
            except SpecError as e:
                raise SpecError(e.message, path=f"patient.{key}") from None
            except Exception as e:  # nibabel's errors for a file that is not NIfTI
                raise SpecError(
                    f"cannot read {str(path)!r} as NIfTI: {e}", path=f"patient.{key}"
                ) from None

        wm, affine = read("wm")
        gm, affine_gm = read("gm")
        if gm.shape != wm.shape or not np.allclose(affine_gm, affine, atol=1e-3):
            raise SpecError(
                f"expected the white-matter map's grid {wm.shape} (and affine), got "
                f"{gm.shape}; resample the maps to one grid",
                path="patient.gm",
            )
        try:
            anatomy = glioma.Anatomy.from_maps(wm, gm, affine)
        except SpecError as e:
            raise SpecError(e.message, path="patient.wm") from None
        arrays = {}
        for key in ("segmentation", "pet"):
            array, aff = read(key)
            if array is not None and (
                array.shape != anatomy.shape or not np.allclose(aff, affine, atol=1e-3)
            ):
                raise SpecError(
                    f"expected the tissue maps' grid {anatomy.shape} (and affine), got "
                    f"{array.shape}; resample it to the tissue maps' grid",
                    path=f"patient.{key}",
                )
            arrays[key] = array
        seg = np.rint(arrays["segmentation"]).astype(np.int64)
        labels = (0, glioma.ENHANCING, glioma.EDEMA, glioma.NECROTIC)
        unknown = np.setdiff1d(np.unique(seg), labels)
        if unknown.size:
            raise SpecError(
                f"expected labels {list(labels)} (none, enhancing, edema, necrotic), got also "
                f"{unknown.tolist()}; relabel it (BraTS: 2 is edema here 3)",
                path="patient.segmentation",
            )
        if not (seg > 0).any():
            raise SpecError("the segmentation has no tumour voxel", path="patient.segmentation")
        return anatomy, seg.astype(np.uint8), arrays["pet"], self._truth(anatomy, seg, ndim)

    def _truth(self, anatomy, seg, ndim):
        from ..reference import glioma

        path = self.path("truth")
        if path is None:
            return None
        if path.suffix == ".json":
            if path.name != "truth.json":
                raise SpecError(
                    "expected the truth.json of a folder written by `pinnkit data glioma`, or a "
                    f"NIfTI density map; got {path.name!r}",
                    path="patient.truth",
                )
            patient = glioma.read_patient(path.parent)
            if patient.density is None or patient.density.shape != anatomy.shape:
                raise SpecError(
                    f"the truth's density is not on the tissue maps' grid {anatomy.shape}",
                    path="patient.truth",
                )
            return dataclasses.replace(
                patient, anatomy=anatomy, segmentation=seg.astype(np.uint8), pet=None
            )
        try:
            density, _ = glioma.read_nifti(path, ndim=ndim)
        except Exception as e:
            raise SpecError(f"cannot read {str(path)!r}: {e}", path="patient.truth") from None
        if density.shape != anatomy.shape:
            raise SpecError(
                f"expected a density on the tissue maps' grid {anatomy.shape}, got {density.shape}",
                path="patient.truth",
            )
        return np.asarray(density, np.float64)

    def optimizer(self):
        """The `infer` optimizer the spec names."""
        import optax

        from ..reference.gliodil import GaussNewton
        from ..spec.build import OPTIMIZERS

        cfg = self.spec.train.optimizer
        if cfg.name == "gauss_newton":
            return GaussNewton(damping=cfg.damping)
        if cfg.name == "lbfgs":
            return optax.lbfgs()
        if cfg.name not in OPTIMIZERS:
            from ..errors import did_you_mean

            names = ["gauss_newton", *OPTIMIZERS]
            raise SpecError(
                f"unknown optimizer {cfg.name!r}{did_you_mean(cfg.name, names)} expected one "
                f"of {', '.join(names)}",
                path="train.optimizer.name",
            )
        return getattr(optax, cfg.name)(cfg.lr)


@dataclasses.dataclass
class GliomaRun:
    """A finished glioma solve: the GliODIL result, the summary written, the run folder."""

    result: object
    summary: dict
    run_dir: pathlib.Path

    def describe(self) -> list[str]:
        """The lines ``pinnkit solve`` prints."""
        s = self.summary
        u = s["unknowns"]
        lines = [
            headline(s, f"GliODIL, {len(s['starts'])} starts"),
            f"  D_w T = {u['D_w_T']:.4g} mm^2, rho T = {u['rho_T']:.4g}, origin "
            + ", ".join(f"{v:.1f}" for v in u["origin_mm"])
            + f" mm, th_up {u['th_up']:.3f}, th_down {u['th_down']:.3f}",
        ]
        rec = s.get("recovery")
        if rec:
            if "D_w_T_relative_error" in rec:
                lines.append(
                    f"  vs truth: D_w T {rec['D_w_T_relative_error']:+.1%}, rho T "
                    f"{rec['rho_T_relative_error']:+.1%}, origin {rec['origin_error_mm']:.2f} mm"
                )
            p = rec["plans"]
            unit = s["units"]["volumes"]
            lines.append(
                f"  Dice(c >= 0.1) {rec['dice_c>=0.1']:.3f}; to cover the true c >= "
                f"{p['level']:g}: density plan {p['density_volume_to_cover']:.0f} {unit}, "
                f"margin plan {p['margin_volume_to_cover']:.0f} {unit}"
            )
        lines.append(f"  outputs and plots in {self.run_dir}")
        return lines


def _checkpoint_step(rundir: RunDirectory, steps: int) -> int:
    """The metrics step a glioma checkpoint holds (``start * steps + k``, as ``on_step`` numbers
    them): the rows after it are trained again on resume."""
    from ..reference.gliodil import checkpoint_progress

    progress = checkpoint_progress(rundir.checkpoint)
    return 0 if progress is None else progress[0] * steps + progress[1]


def _patient_type():
    from ..reference.glioma import SyntheticPatient

    return SyntheticPatient


def _single_start(spec: GliomaSpec) -> bool:
    i = spec.model.initial
    return i is not None and i.D_w_T is not None and i.rho_T is not None


def write_glioma_outputs(loaded, result, anatomy, truth, run_dir: pathlib.Path) -> dict:
    """summary.json, solution.npz, the NIfTI maps and plots/ of a finished glioma run."""
    margin = loaded.spec.plan.margin_mm
    patient = truth if isinstance(truth, _patient_type()) else None
    true_density = None if patient is not None or truth is None else truth
    result.write(
        run_dir,
        patient if patient is not None else anatomy,
        true_density=true_density,
        margin_mm=margin,
        figure="plots/gliodil.png",
    )
    rundir = RunDirectory(run_dir)
    found = rundir.read_summary()
    steps = found.pop("steps")
    total_steps = steps * len(found["starts"])
    summary = {
        **run_header(loaded.name, "gliodil", "ok", "float64", None),
        "steps": total_steps,
        "steps_per_start": steps,
        "wall_s": round(result.wall_time_s, 3),
        "compile_s": None,
        "steps_per_s": round(total_steps / result.wall_time_s, 3) if result.wall_time_s else None,
        "loss": {"total": found.pop("loss"), **found.pop("terms")},
        "errors": {},
    }
    density = np.asarray(result.density)
    reference = patient.density if patient is not None else true_density
    if reference is not None:
        diff = density - reference
        summary["errors"] = {
            "c": {
                "rel_l2": float(np.linalg.norm(diff) / max(np.linalg.norm(reference), 1e-300)),
                "max_abs": float(np.abs(diff).max()),
            }
        }
    summary.update(found)
    rundir.write_summary(summary)
    arrays = {
        "c": density,
        "field": np.asarray(result.field, np.float32),
        "tau": result.tau,
        "segmentation": result.segmentation,
        "loss": result.loss,
        "affine": anatomy.affine,
    }
    if reference is not None:
        arrays["reference_c"] = np.asarray(reference)
    rundir.write("solution.npz", lambda f: np.savez_compressed(f, **arrays))
    return summary
