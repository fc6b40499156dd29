"""``pinnkit solve`` on a battery spec, ``pinnkit calibrate`` and ``pinnkit data spm``.

`solve_battery` trains the SPM surrogate level by level (`pinnkit.battery.surrogate`) and
writes the run directory of DESIGN.md §6: ``summary.json`` (the contract's keys; ``errors``:
per field the mean absolute relative error against the reference solver on the parameter
grid and the voltage error in mV, for the last level; ``levels``: the same per level),
``metrics.jsonl``, ``surrogate.json`` + ``surrogate.eqx`` (the model, for ``pinnkit
calibrate``), ``solution.npz`` (voltages on the grid), ``plots/voltage.png``,
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

from pinnkit.errors import DivergenceError, InterruptedRun, SpecError
from pinnkit.report.rundir import RunDirectory, run_header
from pinnkit.spec.battery import BatterySpec
from pinnkit.spec.loader import SpecSource


class LoadedBatterySpec(SpecSource):
    """A validated battery spec (`BatterySpec`) and the folder its relative paths start
    from."""

    spec: BatterySpec

    def parameters(self):
        from pinnkit.reference import spm

        path = self.file(self.spec.equation.parameters, "equation.parameters")
        if path is None:
            return spm.SPMParameters()
        try:
            return spm.load_spm_parameters(path)
        except SpecError as e:
            raise SpecError(e.message, path=f"equation.parameters.{e.path}") from None

    def levels(self):
        from .surrogate import LevelConfig

        m = self.spec.model
        return [
            LevelConfig(width=m.width, depth=m.depth, **level.model_dump())
            for level in self.spec.train.levels
        ]


def load_battery_spec(data: dict, lines: dict, base_dir: pathlib.Path) -> LoadedBatterySpec:
    """Validate a battery spec and check its parameter file (read, not trained)."""
    from pinnkit.spec.loader import validate_as

    loaded = LoadedBatterySpec(validate_as(BatterySpec, data, lines), data, base_dir)
    loaded.parameters()
    loaded.levels()
    return loaded


@dataclasses.dataclass
class BatteryRun:
    """A finished surrogate training: the model, the summary written, the run folder."""

    model: object
    summary: dict
    run_dir: pathlib.Path

    def describe(self) -> list[str]:
        s = self.summary
        lines = [f"{s['problem']}: {s['status']} after {s['steps']} steps in {s['wall_s']:.1f} s"]
        for level in s["levels"]:
            e = level["errors"]
            fields = ", ".join(f"{k} {v:.2e}" for k, v in e["fields"].items())
            lines.append(
                f"  level {level['level']}: voltage max {e['voltage_mV']['max']:.2f} mV, mean "
                f"{e['voltage_mV']['mean']:.3f} mV; mean abs rel: {fields}"
            )
        lines.append(f"  outputs and plots in {self.run_dir}")
        return lines


def _ranges(spec: BatterySpec) -> dict:
    from .surrogate import DEGRADATION_RANGES

    return {**DEGRADATION_RANGES, **{k: tuple(v) for k, v in spec.degradation.items()}}


def solve_battery(
    loaded: LoadedBatterySpec, run_dir: pathlib.Path, *, resume=False, progress=True, log=None
) -> BatteryRun:
    import jax

    from . import surrogate as S

    spec = loaded.spec
    params = loaded.parameters()
    configs = loaded.levels()
    rundir = RunDirectory(run_dir)
    rundir.create(resume=resume)
    start, records_done = None, []
    folder = rundir.checkpoint_folder() if resume else None
    if folder is not None and (folder / "surrogate.json").exists():
        start, _ = S.load(folder)
        records_done = json.loads((folder / "records.json").read_text())
    rundir.write_spec(spec.model_dump(mode="json", exclude_none=True), base_dir=loaded.base_dir)
    steps = [c.adam_steps + c.lbfgs_steps for c in configs]
    levels_done = 0 if start is None else len(start.levels)
    on_log = rundir.open_log(
        total=sum(steps),
        name=spec.name,
        progress=progress,
        log=log,
        resume=resume,
        resume_step=sum(steps[:levels_done]),
    )

    def on_chunk(level, step, loss):
        on_log({"step": sum(steps[: level - 1]) + step, "phase": f"level {level}", "loss": loss})

    def on_level(model, record):
        records_done.append(record)
        n = len(model.levels)

        def write(folder):
            S.save(model, configs, folder)
            (folder / "records.json").write_text(json.dumps(records_done))

        # meta.json ("step": the metrics step these levels end at) names the folder; last
        rundir.save_checkpoint_folder(f"levels-{n}", write, {"levels": n, "step": sum(steps[:n])})

    x64 = spec.train.dtype == "float64"
    dtype = "float64" if x64 else "float32"
    try:
        with jax.enable_x64(x64):
            model, _ = S.train_surrogate(
                params,
                configs,
                ranges=_ranges(spec),
                kinetics=spec.equation.kinetics,
                dtype=np.dtype(dtype),
                key=jax.random.key(spec.train.seed),
                callback=on_chunk,
                log_every=100,
                start=start,
                on_level=on_level,
            )
    except KeyboardInterrupt:
        _partial(loaded, rundir, "interrupted", "interrupted; the finished levels are kept")
        raise InterruptedRun(
            f"interrupted after {len(records_done)} finished level(s): pinnkit solve --resume "
            f"{run_dir}"
        ) from None
    except DivergenceError as e:
        _partial(loaded, rundir, "diverged", str(e))
        raise DivergenceError(f"{e}. The finished levels are in {rundir.checkpoint}.") from None
    finally:
        on_log.close()
    summary = write_battery_outputs(loaded, model, configs, records_done, run_dir)
    return BatteryRun(model, summary, run_dir)


def _partial(loaded, rundir: RunDirectory, status, message):
    """summary.json of a run stopped early: the steps of the levels in the checkpoint."""
    spec = loaded.spec
    header = run_header(loaded.name, "spm_pinn", status, spec.train.dtype, spec.train.seed)
    rundir.write_partial(header, message)


def write_battery_outputs(loaded, model, configs, records, run_dir: pathlib.Path) -> dict:
    import jax

    from pinnkit.reference import spm

    from . import surrogate as S

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
        "loss": levels[-1].get("loss", {}),
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


# --------------------------------------------------------------------------------------------
# pinnkit calibrate and pinnkit data spm
# --------------------------------------------------------------------------------------------


def calibrate_command(args) -> int:
    """``pinnkit calibrate RUN --data CSV``: the posterior of the degradation multipliers."""
    from . import surrogate as S
    from .calibrate import calibrate, corner_plot, read_voltage_csv

    model, _ = S.load(args.run)
    t, v = read_voltage_csv(args.data)
    if t[-1] > model.params.t_max * (1 + 1e-9):
        raise SpecError(
            f"the curve runs to {t[-1]:g} s, past the surrogate's t_max {model.params.t_max:g} s",
            path="--data",
        )
    truth = None
    if args.truth is not None:
        truth = dict(zip(("deg_i0_a", "deg_ds_c"), args.truth, strict=True))
    model_error = None
    error_file = pathlib.Path(args.run) / "model_error.json"
    if error_file.is_file() and not args.no_model_error:
        record = json.loads(error_file.read_text())
        model_error = np.interp(t, record["t"], record["rms_V"])
    cal = calibrate(
        model.voltage,
        t,
        v,
        model_error_V=model_error,
        ranges=dict(zip(("deg_i0_a", "deg_ds_c"), model.ranges, strict=True)),
        noise_V=None if args.noise_mv is None else args.noise_mv * 1e-3,
        draws=args.draws,
        warmup=args.warmup,
        chains=args.chains,
        seed=args.seed,
    )
    out = pathlib.Path(args.out) if args.out else pathlib.Path(args.run) / "calibration"
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "surrogate": str(pathlib.Path(args.run).resolve()),
        "data": str(pathlib.Path(args.data).resolve()),
        "posterior": cal.summary["parameters"],
        "sampler": cal.summary["sampler"],
    }
    if truth is not None:
        summary["truth"] = truth
        summary["covered_by_90pct"] = cal.covers(truth)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    np.savez_compressed(out / "samples.npz", **cal.samples)
    corner_plot(cal, out / "corner.png", truth)
    for name, s in cal.summary["parameters"].items():
        print(
            f"{name}: mean {s['mean']:.4g}, 90% interval [{s['q05']:.4g}, {s['q95']:.4g}]"
            + (f", R-hat {s['r_hat']:.3f}" if "r_hat" in s else "")
        )
    sampler = cal.summary["sampler"]
    print(
        f"NUTS: {sampler['chains']} chains x {sampler['draws']} draws, "
        f"{sampler['divergences']} divergences, {sampler['wall_s']:.1f} s; outputs in {out}"
    )
    return 0


def data_spm_command(args) -> int:
    """``pinnkit data spm``: a synthetic noisy discharge curve (CSV) from the reference."""
    import jax

    from pinnkit.reference import spm

    out = pathlib.Path(args.out)
    if not out.parent.is_dir():
        raise SpecError(f"the folder {str(out.parent)!r} does not exist", path="--out")
    params = (
        spm.SPMParameters() if args.parameters is None else spm.load_spm_parameters(args.parameters)
    )
    if args.points < 2:
        raise SpecError(f"expected --points >= 2, got {args.points}", path="--points")
    t = np.linspace(0.0, params.t_max, args.points)
    with jax.enable_x64(True):
        v = np.asarray(
            spm.solve_spm(params, t, deg_i0_a=args.deg_i0_a, deg_ds_c=args.deg_ds_c).voltage
        )
    rng = np.random.default_rng(args.seed)
    noisy = v + rng.normal(0.0, args.noise_mv * 1e-3, v.shape)
    lines = [
        f"# pinnkit data spm: deg_i0_a={args.deg_i0_a:g}, deg_ds_c={args.deg_ds_c:g}, "
        f"noise {args.noise_mv:g} mV, seed {args.seed}",
        "time_s,voltage_V",
        *(f"{a:.6g},{b:.9f}" for a, b in zip(t, noisy, strict=True)),
    ]
    out.write_text("\n".join(lines) + "\n")
    print(
        f"{out}: {args.points} points over [0, {params.t_max:g}] s, V from {noisy.max():.4f} "
        f"to {noisy.min():.4f} V"
    )
    return 0
