"""The battery family: the SPM surrogate (`pinnkit.battery.surrogate`) of a battery spec.

`BatteryFamily.run` trains the surrogate level by level (each level one `pinnkit.train.train`
call) and `write_outputs` writes the run directory of DESIGN.md §6: ``summary.json`` (the
contract's keys; ``errors``: per field the mean absolute relative error against the reference
solver on the parameter grid and the voltage error in mV, for the last level; ``levels``: the
same per level), ``metrics.jsonl``, ``surrogate.json`` + ``surrogate.eqx`` (the model, for
``pinnkit calibrate``), ``solution.npz`` (voltages on the grid), ``plots/voltage.png``,
``checkpoint/`` (the finished levels: ``--resume`` trains the rest) and
``spec.resolved.yaml``.

The checkpoint after each level is a folder ``checkpoint/levels-<n>/`` (the surrogate and
the finished levels' records) named by ``checkpoint/meta.json``, which is replaced last
(`RunDirectory.save_checkpoint_folder`): a run killed while it writes keeps the previous
level's checkpoint loadable.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from ..errors import DivergenceError, InterruptedRun, SpecError
from ..report.rundir import RunDirectory, run_header
from ..spec.battery import BatterySpec, is_battery_spec, resolve_steps
from ..spec.loader import SpecSource, refuse_beyond_device, validate_as
from ..train.checkpoint import Checkpointer
from ._base import AbstractFamily, Outcome, headline


@dataclasses.dataclass(frozen=True)
class BatteryFamily(SpecSource, AbstractFamily):
    """A validated battery spec (`BatterySpec`) and the folder its relative paths start
    from."""

    spec: BatterySpec

    kind = "battery"

    @classmethod
    def claims(cls, data) -> bool:
        return is_battery_spec(data)

    @classmethod
    def load(cls, data, lines, base_dir) -> BatteryFamily:
        """Validate a battery spec and check its parameter file (read, not trained)."""
        spec = resolve_steps(validate_as(BatterySpec, data, lines))
        loaded = cls(spec, data, pathlib.Path(base_dir))
        loaded.parameters()
        loaded.levels()
        loaded._check_memory()
        return loaded

    def _check_memory(self) -> None:
        """The largest level's step (its points through the surrogate, with the derivatives
        in r and t the residuals take, kept for the backward pass) and the reference grid's
        solves (every degradation pair, at every time and node, with the ODE solver's
        stages), each against the device's memory."""
        s = self.spec
        if not s.train.memory_check:
            return
        itemsize = 8 if s.train.dtype == "float64" else 4
        units = s.model.width * (s.model.depth + 1) * (1 + 4 + 16)
        level = max(range(len(s.train.levels)), key=lambda i: s.train.levels[i].points)
        points = s.train.levels[level].points
        r = s.reference
        refuse_beyond_device(
            3.0 * points * units * itemsize, f"train.levels[{level}].points", points, "a level"
        )
        refuse_beyond_device(
            16.0 * r.grid**2 * r.times * r.nodes * 8, "reference.times", r.times, "the reference"
        )

    def resolved(self) -> dict:
        return self.spec.model_dump(mode="json", exclude_none=True)

    def _level_steps(self) -> list[int]:
        return [c.adam_steps + c.lbfgs_steps for c in self.levels()]

    def total_steps(self) -> int:
        return sum(self._level_steps())

    def _start(self, rundir):
        """(the surrogate of the finished levels, their records) in the checkpoint, or
        (None, [])."""
        from ..battery import surrogate as S

        folder = rundir.checkpoint_folder()
        if folder is None or not (folder / "surrogate.json").exists():
            return None, []
        start, _ = S.load(folder)
        return start, json.loads((folder / "records.json").read_text())

    def resume_step(self, rundir) -> int:
        start, _ = self._start(rundir)
        done = 0 if start is None else len(start.levels)
        current = _level_store(rundir, done + 1)
        within = int(current.meta()["step"]) if current.exists() else 0
        return sum(self._level_steps()[:done]) + within

    def run(self, rundir, *, resume, log) -> Outcome:
        import jax

        from ..battery import surrogate as S

        spec = self.spec
        configs = self.levels()
        steps = self._level_steps()
        start, records_done = self._start(rundir) if resume else (None, [])
        if rundir.checkpoint_meta() is None:  # resumable from the first step on
            rundir.write_json("checkpoint/meta.json", {"levels": 0, "step": 0})

        def on_chunk(level, step, loss):
            log({"step": sum(steps[: level - 1]) + step, "phase": f"level {level}", "loss": loss})

        def on_level(model, record):
            records_done.append(record)
            n = len(model.levels)

            def write(folder):
                S.save(model, configs, folder)
                (folder / "records.json").write_text(json.dumps(records_done))

            # meta.json ("step": the metrics step these levels end at) names the folder; last
            meta = {"levels": n, "step": sum(steps[:n])}
            rundir.save_checkpoint_folder(f"levels-{n}", write, meta)

        x64 = spec.train.dtype == "float64"
        try:
            with jax.enable_x64(x64):
                model, _ = S.train_surrogate(
                    self.parameters(),
                    configs,
                    ranges=_ranges(spec),
                    kinetics=spec.equation.kinetics,
                    dtype=np.dtype("float64" if x64 else "float32"),
                    key=jax.random.key(spec.train.seed),
                    callback=on_chunk,
                    log_every=100,
                    start=start,
                    on_level=on_level,
                    checkpoint=lambda n: _level_store(rundir, n),
                    checkpoint_every=100,
                )
        except (KeyboardInterrupt, InterruptedRun):
            message = f"interrupted after {len(records_done)} finished level(s)"
            return Outcome("interrupted", message)
        except DivergenceError as e:
            return Outcome("diverged", f"{e}. The finished levels are in {rundir.checkpoint}.")
        return Outcome("ok", "", (model, configs, records_done))

    def write_outputs(self, outcome, rundir) -> BatteryRun | None:
        if outcome.status != "ok":
            spec = self.spec
            header = run_header(
                self.name, "spm_pinn", outcome.status, spec.train.dtype, spec.train.seed
            )
            rundir.write_partial(header, outcome.message)
            return None
        model, configs, records = outcome.value
        summary = write_battery_outputs(self, model, configs, records, rundir.path)
        return BatteryRun(model, summary, rundir.path)

    def describe_spec(self) -> list[str]:
        s = self.spec
        return [
            f"  battery {s.name}: equation spm ({s.equation.kinetics} kinetics), degradation "
            f"{dict(s.degradation)}; model spm_pinn {s.model.width}x{s.model.depth}, "
            f"{len(s.train.levels)} level(s)"
        ]

    def parameters(self):
        from ..reference import spm

        path = self.file(self.spec.equation.parameters, "equation.parameters")
        if path is None:
            return spm.SPMParameters()
        try:
            return spm.load_spm_parameters(path)
        except SpecError as e:
            raise SpecError(e.message, path=f"equation.parameters.{e.path}") from None

    def levels(self):
        from ..battery.surrogate import LevelConfig

        m = self.spec.model
        return [
            LevelConfig(width=m.width, depth=m.depth, **level.model_dump())
            for level in self.spec.train.levels
        ]


@dataclasses.dataclass
class BatteryRun:
    """A finished surrogate training: the model, the summary written, the run folder."""

    model: object
    summary: dict
    run_dir: pathlib.Path

    def describe(self) -> list[str]:
        s = self.summary
        lines = [headline(s)]
        for level in s["levels"]:
            e = level["errors"]
            fields = ", ".join(f"{k} {v:.2e}" for k, v in e["fields"].items())
            lines.append(
                f"  level {level['level']}: voltage max {e['voltage_mV']['max']:.2f} mV, mean "
                f"{e['voltage_mV']['mean']:.3f} mV; mean abs rel: {fields}"
            )
        lines.append(f"  outputs and plots in {self.run_dir}")
        return lines


def _level_store(rundir: RunDirectory, level: int) -> Checkpointer:
    """The trainer's checkpoint of the level in progress (dropped once the level is done and
    saved, by `RunDirectory.save_checkpoint_folder`)."""
    return Checkpointer(rundir.checkpoint / f"level-{level}-state")


def _ranges(spec: BatterySpec) -> dict:
    from ..battery.surrogate import DEGRADATION_RANGES

    return {**DEGRADATION_RANGES, **{k: tuple(v) for k, v in spec.degradation.items()}}


def write_battery_outputs(loaded, model, configs, records, run_dir: pathlib.Path) -> dict:
    import jax

    from ..battery import surrogate as S
    from ..reference import spm

    spec = loaded.spec
    ref_cfg = spec.reference
    (lo_i, hi_i), (lo_d, hi_d) = model.ranges
    A, D = np.meshgrid(
        np.geomspace(lo_i, hi_i, ref_cfg.grid),
        np.geomspace(lo_d, hi_d, ref_cfg.grid),
        indexing="ij",
    )
    t = np.linspace(0.0, model.params.t_max, ref_cfg.times)
    reference = spm.solve_spm(
        model.params, t, deg_i0_a=A, deg_ds_c=D, nodes=ref_cfg.nodes, kinetics=model.kinetics
    )
    levels = []
    for n in range(1, len(model.levels) + 1):
        errors = S.evaluate_errors(
            model,
            grid=ref_cfg.grid,
            times=ref_cfg.times,
            nodes=ref_cfg.nodes,
            n_levels=n,
            reference=reference,
        )
        record = records[n - 1] if n - 1 < len(records) else {}
        levels.append({**record, "level": n, "errors": errors})
    predict = jax.jit(jax.vmap(jax.vmap(lambda a, d: model.voltage(t, a, d))))
    voltage = np.asarray(predict(A, D))
    error = voltage - np.asarray(reference.voltage)
    rundir = RunDirectory(run_dir)
    S.save(model, configs, run_dir)
    # the surrogate's error at each time (RMS over the grid's cells): `pinnkit calibrate`
    # adds it to the noise
    rms = np.sqrt(np.mean(error.reshape(-1, t.size) ** 2, axis=0))
    rundir.write_json("model_error.json", {"t": t.tolist(), "rms_V": rms.tolist()})
    last = levels[-1]["errors"]
    wall = sum(level.get("wall_s", 0.0) for level in levels)
    total = sum(c.adam_steps + c.lbfgs_steps for c in configs)
    summary = {
        **run_header(loaded.name, "spm_pinn", "ok", spec.train.dtype, spec.train.seed),
        "steps": total,
        "wall_s": round(wall, 3),
        "compile_s": None,
        "steps_per_s": round(total / wall, 3) if wall else None,
        "loss": _loss(levels[-1].get("loss", {})),
        "errors": {
            **{k: {"mean_abs_rel": v} for k, v in last["fields"].items()},
            "voltage": {"max_mV": last["voltage_mV"]["max"], "mean_mV": last["voltage_mV"]["mean"]},
        },
        "unknowns": {},
        "levels": levels,
        "reference": {
            "solver": "pinnkit.reference.spm.solve_spm",
            "nodes": ref_cfg.nodes,
            "grid": last["grid"],
        },
        "paper": "Hassanaly et al., arXiv:2312.17329 (Part II: 2 mV voltage error)",
    }
    rundir.write_summary(summary)
    arrays = {
        "t": t,
        "deg_i0_a": A,
        "deg_ds_c": D,
        "voltage": voltage,
        "reference_voltage": np.asarray(reference.voltage),
    }
    rundir.write("solution.npz", lambda f: np.savez_compressed(f, **arrays))
    (run_dir / "plots").mkdir(exist_ok=True)
    _plot_voltage(
        t, A, D, voltage, np.asarray(reference.voltage), run_dir / "plots" / "voltage.png"
    )
    return summary


def _loss(terms: dict) -> dict:
    """The summary's loss: the total first, then its terms (DESIGN.md §6)."""
    terms = {k: v for k, v in terms.items() if k != "total"}
    return {"total": sum(terms.values()), **terms}


def _plot_voltage(t, A, D, voltage, reference, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    ax, bx = fig.subplots(1, 2)
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            label = f"({A[i, j]:.2g}, {D[i, j]:.2g})"
            line = ax.plot(t, reference[i, j], lw=2, alpha=0.4)[0]
            ax.plot(t, voltage[i, j], "--", color=line.get_color(), label=label)
            bx.plot(t, 1e3 * (voltage[i, j] - reference[i, j]), color=line.get_color())
    ax.set_xlabel("t (s)")
    ax.set_ylabel("V (V)")
    ax.set_title("voltage: reference (solid), surrogate (dashed)")
    ax.legend(fontsize=7, title="(deg_i0_a, deg_ds_c)", title_fontsize=7)
    bx.set_xlabel("t (s)")
    bx.set_ylabel("surrogate - reference (mV)")
    bx.set_title("voltage error")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
