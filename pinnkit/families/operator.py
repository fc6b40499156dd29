"""The operator family: a neural operator (`SFNO` or `FNO3d`) trained on vorticity
trajectories of an ``.npz`` file (`pinnkit data ns2d`), from an operator spec
(`pinnkit.spec.operator`).

`OperatorFamily.run` trains the operator on the data loss with `train_operator` (one
`pinnkit.train.train` call, checkpointed in ``checkpoint/``), then, when the spec has a
``refine:`` section, fine-tunes the SFNO's output layer on the Navier–Stokes residual of the
test inputs with `refine` (a second call, checkpointed in ``checkpoint/refine/``); together
they take ``train.steps`` optimizer steps, numbered 1..train.steps in ``metrics.jsonl``.
``--resume DIR`` continues whichever of the two was stopped.

`write_outputs` writes the run directory of DESIGN.md §6: ``summary.json`` (the contract's
keys; ``errors``: the mean relative L2 error in space-time of the train and test sets, and
after a refinement the test set's error and residual before and after it), ``solution.npz``
(the test inputs, targets and predictions), ``model.eqx`` (the trained model's leaves; the
resolved spec says how to build its template), ``plots/trajectory.png`` and
``spec.resolved.yaml``.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from ..errors import SpecError
from ..report.rundir import run_header
from ..spec.loader import SpecSource, refuse_beyond_device
from ..spec.operator import OperatorSpec, is_operator_spec, validate_operator_spec
from ._base import AbstractFamily, Outcome, headline

REFINE_FOLDER = "refine"  # checkpoint/refine/: the refinement's training state


@dataclasses.dataclass(frozen=True)
class OperatorFamily(SpecSource, AbstractFamily):
    """A validated operator spec (`OperatorSpec`), its raw data and the folder its relative
    paths start from."""

    spec: OperatorSpec
    _cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    kind = "operator"

    @classmethod
    def claims(cls, data) -> bool:
        return is_operator_spec(data)

    @classmethod
    def load(cls, data, lines, base_dir) -> OperatorFamily:
        """Validate an operator spec, read its data file and check that the model fits it
        (shapes traced, nothing trained)."""
        loaded = cls(validate_operator_spec(data, lines), data, pathlib.Path(base_dir))
        arrays = loaded.arrays()
        loaded._optimizer()
        import jax

        with jax.enable_x64(loaded.spec.train.dtype == "float64"):
            model = loaded.build_model()
            try:
                jax.eval_shape(model, arrays["test_inputs"][0])
            except SpecError as e:
                raise SpecError(e.message, path=f"model.{e.path or 'modes'}") from None
        loaded._check_memory(arrays["test_inputs"].shape)
        return loaded

    def _check_memory(self, shape) -> None:
        """A batch's activations (every layer's channels, lifted by the expansion, on the
        padded space-time grid, kept for the backward pass) against the device's memory."""
        t, m = self.spec.train, self.spec.model
        if not t.memory_check:
            return
        grid = float(np.prod(shape[1:]))  # one input: (time, x, y)
        latent = 2 * (self.spec.data.in_steps + self.spec.data.out_steps)
        channels = m.width * (getattr(m, "expansion", 1) + 1) * (m.layers + 2)
        itemsize = 8 if t.dtype == "float64" else 4
        need = 3.0 * t.batch_size * grid / max(shape[1], 1) * latent * channels * itemsize
        refuse_beyond_device(need, "train.batch_size", t.batch_size, "one batch")

    # --- what the spec names --------------------------------------------------------------
    @property
    def data_steps(self) -> int:
        """The optimizer steps on the data loss (``train.steps`` less the refinement's)."""
        refine = self.spec.refine
        return self.spec.train.steps - (0 if refine is None else refine.steps)

    def resolved(self) -> dict:
        return self.spec.model_dump(mode="json", exclude_none=True)

    def total_steps(self) -> int:
        return self.spec.train.steps

    def resume_step(self, rundir) -> int | None:
        meta = _meta(rundir.checkpoint / REFINE_FOLDER)
        return None if meta is None else self.data_steps + int(meta.get("step", 0))

    def arrays(self) -> dict:
        """The data file's trajectories split and windowed: ``train_inputs``,
        ``train_targets``, ``test_inputs``, ``test_targets`` (at ``data.res``),
        ``fine_inputs``, ``fine_targets`` (the test set at the file's resolution), ``times``
        (of the targets), ``nu``, ``dt`` (between snapshots), ``forcing`` (on the file's grid,
        or None) and ``length``."""
        if "arrays" not in self._cache:
            self._cache["arrays"] = self._read()
        return self._cache["arrays"]

    def _read(self) -> dict:
        d = self.spec.data
        path = self.file(d.file, "data.file")
        try:
            with np.load(path, allow_pickle=False) as f:
                contents = {k: f[k] for k in f.files}
        except Exception as e:  # not an .npz file, or a truncated one
            raise SpecError(
                f"cannot read {str(path)!r} as an .npz file ({type(e).__name__}: {e}); write "
                "one with `pinnkit data ns2d --out FILE`",
                path="data.file",
            ) from None
        w = contents.get("vorticity")
        if w is None or w.ndim != 4 or w.shape[-1] != w.shape[-2]:
            found = None if w is None else w.shape
            raise SpecError(
                f"{str(path)!r} needs an array 'vorticity' with axes (sample, time, x, y) on a "
                f"square grid (as `pinnkit data ns2d` writes); found {found}",
                path="data.file",
            )
        samples, snapshots, n = w.shape[0], w.shape[1], w.shape[-1]
        if d.train + d.test > samples:
            raise SpecError(
                f"data.train + data.test = {d.train + d.test} trajectories, but the file has "
                f"{samples}",
                path="data.test",
            )
        end = d.start + d.in_steps + d.out_steps
        if end > snapshots:
            raise SpecError(
                f"data.start + data.in_steps + data.out_steps = {end} snapshots, but the file "
                f"has {snapshots} per trajectory",
                path="data.out_steps",
            )
        t = np.asarray(contents.get("t", np.arange(snapshots)), np.float64)
        window = w[:, d.start : end].astype(self.spec.train.dtype)
        split = d.in_steps
        fine_test = window[d.train : d.train + d.test]
        res = n if d.res is None else d.res
        if res != n:
            from ..operators import resample

            window = np.asarray(resample(window[: d.train + d.test], res), window.dtype)
        forcing = contents.get("forcing")
        return {
            "train_inputs": window[: d.train, :split],
            "train_targets": window[: d.train, split:],
            "test_inputs": window[d.train : d.train + d.test, :split],
            "test_targets": window[d.train : d.train + d.test, split:],
            "fine_inputs": fine_test[:, :split],
            "fine_targets": fine_test[:, split:],
            "times": t[d.start + split : end],
            "nu": None if "nu" not in contents else float(contents["nu"]),
            "dt": float(t[1] - t[0]) if t.size > 1 else 1.0,
            "forcing": None if forcing is None else np.asarray(forcing, window.dtype),
            "length": float(contents.get("length", 1.0)),
            "file_res": n,
        }

    def build_model(self):
        import jax

        from ..operators import SFNO, FNO3d

        m, d = self.spec.model, self.spec.data
        options = m.model_dump(exclude={"backend"}, exclude_none=True)
        cls = SFNO if m.backend == "sfno" else FNO3d
        key = jax.random.split(jax.random.key(self.spec.train.seed))[0]
        try:
            return cls(
                in_steps=d.in_steps,
                out_steps=d.out_steps,
                dtype=self.spec.train.dtype,
                key=key,
                **options,
            )
        except SpecError as e:
            raise SpecError(e.message, path=f"model.{e.path}") from None

    def _optimizer(self):
        """The data phase's optax transformation (first-order optax optimizers only)."""
        from ..spec.build import build_optimizer
        from ..train.steps import OptaxStep

        phase = build_optimizer(self.spec.train.optimizer, self.data_steps, "train.optimizer")
        if not isinstance(phase.step, OptaxStep):
            raise SpecError(
                f"an operator trains with a first-order optax optimizer (adam, adamw, sgd, ...), "
                f"not {phase.name}",
                path="train.optimizer.name",
            )
        return phase.step.optimizer

    # --- training -------------------------------------------------------------------------
    def run(self, rundir, *, resume, log) -> Outcome:
        import jax

        from ..train.checkpoint import Checkpointer

        spec, a = self.spec, self.arrays()
        with jax.enable_x64(spec.train.dtype == "float64"):
            k_train, k_refine = jax.random.split(
                jax.random.split(jax.random.key(spec.train.seed))[1]
            )
            errors = _errors_of(a)
            model, record = _train_operator(
                self.build_model(),
                a["train_inputs"],
                a["train_targets"],
                steps=self.data_steps,
                batch_size=spec.train.batch_size,
                optimizer=self._optimizer(),
                evaluate=errors,
                eval_every=spec.train.eval_every,
                chunk=spec.train.log_every,
                checkpoint=Checkpointer(rundir.checkpoint),
                checkpoint_every=spec.train.checkpoint_every,
                resume=resume,
                log=log,
                key=k_train,
            )
            records = [record]
            if record.status != "ok" or spec.refine is None:
                return Outcome(record.status, record.message, (model, None, records))
            trained = model
            model, record = self._refine(model, rundir, resume=resume, log=log, key=k_refine)
            records.append(record)
            return Outcome(record.status, record.message, (model, trained, records))

    def _refine(self, model, rundir, *, resume, log, key):
        import optax

        from ..operators import refine
        from ..train.checkpoint import Checkpointer

        r, a = self.spec.refine, self.arrays()
        if a["nu"] is None:
            raise SpecError(
                "refine needs the viscosity 'nu' in the data file (as `pinnkit data ns2d` "
                "writes it)",
                path="refine",
            )
        offset = self.data_steps

        def shifted(entry):
            log({**entry, "step": entry["step"] + offset})

        warmup = max(r.steps // 5, 1)
        return refine(
            model,
            a["fine_inputs"],
            nu=a["nu"],
            dt=a["dt"],
            forcing=a["forcing"],
            steps=r.steps,
            optimizer=optax.adam(optax.warmup_cosine_decay_schedule(0.0, r.lr, warmup, r.steps)),
            s=r.s,
            alpha=r.alpha,
            length=a["length"],
            chunk=min(self.spec.train.log_every, r.steps),
            checkpoint=Checkpointer(rundir.checkpoint / REFINE_FOLDER),
            checkpoint_every=self.spec.train.checkpoint_every,
            resume=resume,
            log=shifted,
            key=key,
        )

    # --- outputs --------------------------------------------------------------------------
    def _header(self, status: str) -> dict:
        s = self.spec
        return run_header(self.name, s.model.backend, status, s.train.dtype, s.train.seed)

    def write_outputs(self, outcome, rundir) -> OperatorRun | None:
        if outcome.status != "ok":
            meta = _meta(rundir.checkpoint / REFINE_FOLDER)
            steps = None if meta is None else self.data_steps + int(meta.get("step", 0))
            rundir.write_partial(self._header(outcome.status), outcome.message, steps=steps)
            return None
        import jax

        with jax.enable_x64(self.spec.train.dtype == "float64"):
            return self._write(outcome.value, rundir)

    def _write(self, value, rundir) -> OperatorRun:
        import equinox as eqx

        from ..operators import trajectory_residual

        model, trained, records = value
        spec, a = self.spec, self.arrays()
        errors = {
            name: {"rel_l2": float(np.mean(e)), "rel_l2_max": float(np.max(e))}
            for name, e in _relative_errors(trained or model, a).items()
        }
        if trained is None:
            prediction, target = _predict(model, a["test_inputs"]), a["test_targets"]
        else:  # the refined model holds the modes of the file's grid: compare there
            before = _predict(trained, a["fine_inputs"])
            prediction, target = _predict(model, a["fine_inputs"]), a["fine_targets"]
            settings = dict(nu=a["nu"], dt=a["dt"], forcing=a["forcing"], length=a["length"])
            settings.update(s=spec.refine.s, alpha=spec.refine.alpha)
            residual = {
                name: float(np.mean(trajectory_residual(m, a["fine_inputs"], **settings)))
                for name, m in (("before", trained), ("after", model))
            }
            errors["refine"] = {
                "res": a["file_res"],
                "rel_l2_before": float(np.mean(_rel(before, target))),
                "rel_l2_after": float(np.mean(_rel(prediction, target))),
                "residual_before": residual["before"],
                "residual_after": residual["after"],
            }
        wall = sum(r.wall_s for r in records)
        train_s = sum(r.train_s for r in records)
        timed = sum(r.steps_timed for r in records)
        last = next((r.history[-1] for r in reversed(records) if r.history), {})
        terms = {k: v for r in records if r.history for k, v in r.history[-1]["terms"].items()}
        summary = {
            **self._header("ok"),
            "steps": spec.train.steps,
            "wall_s": round(wall, 3),
            "compile_s": round(sum(r.compile_s for r in records), 3),
            "steps_per_s": round(timed / train_s, 3) if train_s > 0 else None,
            "loss": {"total": last.get("loss"), **terms},
            "errors": errors,
            "unknowns": {},
            "data": {
                "file": spec.data.file,
                "train": spec.data.train,
                "test": spec.data.test,
                "res": a["test_inputs"].shape[-1],
                "file_res": a["file_res"],
            },
        }
        rundir.write_summary(summary)
        arrays = {
            "inputs": np.asarray(a["fine_inputs"] if trained is not None else a["test_inputs"]),
            "target": np.asarray(target),
            "prediction": np.asarray(prediction),
            "t": a["times"],
        }
        rundir.write("solution.npz", lambda f: np.savez_compressed(f, **arrays))
        rundir.write("model.eqx", lambda f: eqx.tree_serialise_leaves(f, model))
        (rundir.path / "plots").mkdir(exist_ok=True)
        _plot_trajectory(arrays, rundir.path / "plots" / "trajectory.png")
        return OperatorRun(model, summary, rundir.path)

    def describe_spec(self) -> list[str]:
        s, a = self.spec, self.arrays()
        n = a["test_inputs"].shape[-1]
        lines = [
            f"  operator {s.name}: {s.data.train} train + {s.data.test} test trajectories of "
            f"{s.data.file} at {n}x{n} (file {a['file_res']}x{a['file_res']}), "
            f"{s.data.in_steps} snapshots in, {s.data.out_steps} out",
            f"  model {s.model.backend} width {s.model.width}, modes {list(s.model.modes)}, "
            f"{s.model.layers} layers; {self.data_steps} data steps, batch {s.train.batch_size}",
        ]
        if s.refine is not None:
            lines.append(
                f"  refine: {s.refine.steps} Spectral-Refiner steps on the test inputs at "
                f"{a['file_res']}x{a['file_res']} (lr {s.refine.lr:g})"
            )
        return lines


@dataclasses.dataclass
class OperatorRun:
    """A finished operator training: the model, the summary written, the run folder."""

    model: object
    summary: dict
    run_dir: pathlib.Path

    def describe(self) -> list[str]:
        s = self.summary
        e = s["errors"]
        lines = [
            headline(s, s["backend"]),
            f"  relative L2: train {e['train']['rel_l2']:.3e}, test {e['test']['rel_l2']:.3e} "
            f"(max {e['test']['rel_l2_max']:.3e})",
        ]
        if "refine" in e:
            r = e["refine"]
            lines.append(
                f"  refined at {r['res']}^2: test {r['rel_l2_before']:.3e} -> "
                f"{r['rel_l2_after']:.3e}, residual {r['residual_before']:.3e} -> "
                f"{r['residual_after']:.3e}"
            )
        lines.append(f"  outputs and plots in {self.run_dir}")
        return lines


def _meta(folder: pathlib.Path) -> dict | None:
    import json

    path = folder / "meta.json"
    return json.loads(path.read_text()) if path.exists() else None


def _train_operator(*args, **kwargs):
    from ..operators import train_operator

    return train_operator(*args, **kwargs)


def _predict(model, inputs) -> np.ndarray:
    import equinox as eqx
    import jax

    global _VMAPPED
    if _VMAPPED is None:  # compiled once per model structure
        _VMAPPED = eqx.filter_jit(lambda m, x: jax.vmap(m)(x))
    return np.asarray(_VMAPPED(model, inputs))


_VMAPPED = None


def _rel(prediction, target) -> np.ndarray:
    from ..operators import relative_l2

    return np.asarray(relative_l2(prediction, target))


def _relative_errors(model, a) -> dict:
    """Per trajectory, the relative L2 error in space-time of the train and test sets."""
    return {
        name: _rel(_predict(model, a[f"{name}_inputs"]), a[f"{name}_targets"])
        for name in ("train", "test")
    }


def _errors_of(a):
    """``evaluate(model)`` for the trainer: the mean relative L2 errors of both sets."""

    def evaluate(model):
        return {k: float(np.mean(v)) for k, v in _relative_errors(model, a).items()}

    return evaluate


def _plot_trajectory(arrays, path):
    """One test trajectory: target, prediction and error at each predicted time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    target, prediction, t = arrays["target"][0], arrays["prediction"][0], arrays["t"]
    k = target.shape[0]
    fig = Figure(figsize=(2.2 * k + 0.8, 6.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, k, squeeze=False)
    lim = float(np.max(np.abs(target)))
    err = prediction - target
    elim = float(np.max(np.abs(err))) or 1.0
    for j in range(k):
        for row, (field, vmax, cmap) in enumerate(
            ((target[j], lim, "RdBu_r"), (prediction[j], lim, "RdBu_r"), (err[j], elim, "PuOr"))
        ):
            ax = axes[row, j]
            im = ax.imshow(field.T, origin="lower", cmap=cmap, vmin=-vmax, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == k - 1:
                fig.colorbar(im, ax=ax, fraction=0.046)
        axes[0, j].set_title(f"t = {t[j]:g}" if j < len(t) else f"step {j + 1}", fontsize=9)
    for row, label in enumerate(("target", "prediction", "error")):
        axes[row, 0].set_ylabel(label)
    fig.suptitle("test trajectory 0: vorticity")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
