"""``pinnkit solve | validate | list | report | data``.

Exit codes (DESIGN.md §6): 0 done; 2 the spec or the command line is wrong (a message naming
the key path and the fix, no traceback); 3 training diverged (the last finite checkpoint is
kept); 130 interrupted (a checkpoint is written; ``--resume DIR`` continues).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from .errors import DivergenceError, InterruptedRun, PinnkitError, SpecError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 with a hint, as for a bad spec
        self.print_usage(sys.stderr)
        print(f"pinnkit: error: {message}", file=sys.stderr)
        sys.exit(2)


def _problems_dir() -> pathlib.Path:
    here = pathlib.Path(__file__).resolve().parent.parent / "problems"
    return here if here.exists() else pathlib.Path("problems")


def _cmd_solve(args) -> int:
    from ._solve import solve

    if args.spec is None and args.resume is None:
        raise SpecError("give a SPEC.yaml to solve, or --resume RUN_DIR", path="solve")
    if args.spec is not None and args.resume is not None:
        raise SpecError("give either SPEC.yaml or --resume RUN_DIR, not both", path="solve")
    solution = solve(
        args.spec,
        out=args.out,
        overrides=args.set or [],
        resume=args.resume,
        progress=not args.quiet,
    )
    _print_summary(solution)
    return 0


def _print_summary(solution) -> None:
    print("\n".join(solution.describe()))


def _cmd_validate(args) -> int:
    from ._solve import load_spec

    loaded = load_spec(args.spec, args.set or [])
    print(f"{args.spec}: ok")
    print("\n".join(loaded.describe_spec()))
    return 0


def _cmd_list(args) -> int:
    from .backends import BACKENDS
    from .core.sampling import SAMPLERS
    from .equations import BUILTINS
    from .reference import REFERENCE_SOLVERS
    from .spec.build import OPTIMIZERS

    print("equations:")
    for name, b in sorted(BUILTINS.items()):
        opts = ", ".join(f"{k}={v}" for k, v in b.options.items())
        opts += "".join(f", {k}<coord>={v}" for k, v in b.coord_options.items())
        print(f"  {name:12s} {b.summary}  [{opts}]")
    print("  spm          the Li-ion single-particle model: a battery spec (docs/battery.md)")
    print(
        "backends:   "
        + ", ".join(sorted(BACKENDS))
        + "; gliodil (glioma specs), spm_pinn (battery specs), sfno, fno3d (operator specs)"
    )
    print("optimizers: " + ", ".join(OPTIMIZERS))
    print("samplers:   " + ", ".join(sorted(SAMPLERS)))
    print("weightings: fixed, gradnorm; causal (opt-in, train.causal)")
    print("reference solvers: " + ", ".join(sorted(REFERENCE_SOLVERS)))
    problems = sorted(_problems_dir().glob("*.yaml"))
    print("problems:")
    for p in problems:
        import yaml

        try:
            desc = (yaml.safe_load(p.read_text()) or {}).get("description", "")
        except Exception:  # a broken file is listed, not fatal
            desc = "(unreadable)"
        print(f"  {p.stem:16s} {desc}")
    return 0


def _cmd_report(args) -> int:
    from ._solve import report

    summary = report(args.run)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_data_glioma(args) -> int:
    """``pinnkit data glioma``: a synthetic glioma patient (NIfTI files and truth.json) grown by
    the Fisher–Kolmogorov equation on the MNI atlas (issue 6; docs/glioma.md)."""
    import time

    out = pathlib.Path(args.out)
    if not out.parent.is_dir():
        raise SpecError(f"the folder {str(out.parent)!r} does not exist", path="--out")
    if out.exists() and not out.is_dir():
        raise SpecError(f"{str(out)!r} is a file; give a folder for the patient", path="--out")
    origin = args.origin
    if origin is not None and len(origin) not in ((2, 3) if not args.three_d else (3,)):
        raise SpecError(
            f"expected --origin X Y Z in mm (or X Y on the slice), got {len(origin)} numbers",
            path="--origin",
        )
    from .reference import glioma

    def say(message: str) -> None:
        if not args.quiet:
            print(f"[glioma] {message}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    atlas = glioma.load_atlas(args.resolution)
    if args.three_d:
        anatomy = atlas.crop()
        origin = (-28.0, -10.0, 20.0) if origin is None else tuple(origin)
        where = "3D"
    else:
        z_mm = 20.0 if args.slice is None else args.slice
        z = int(round(float(atlas.world_to_voxel((0.0, 0.0, z_mm))[2])))
        if not 0 <= z < atlas.shape[2]:
            raise SpecError(f"the slice z = {z_mm:g} mm is outside the atlas", path="--slice")
        anatomy = atlas.axial_slice(z).crop()
        origin = (-28.0, -10.0) if origin is None else tuple(origin)
        where = f"axial slice z = {float(anatomy.affine[2, 3]):g} mm"
    grid = " x ".join(str(n) for n in anatomy.shape)
    say(f"MNI152 atlas at {args.resolution} mm, {where}: grid {grid}")
    t0 = time.perf_counter()
    patient = glioma.synthetic_patient(
        anatomy,
        origin=origin,
        D_w=args.D_w,
        rho=args.rho,
        r=args.r,
        T=args.T,
        th_up=args.th_up,
        th_down=args.th_down,
        pet_noise=args.pet_noise,
        seed=args.seed,
    )
    grow_s = time.perf_counter() - t0
    say(f"grown for {args.T:g} days in {patient.truth.steps} steps ({grow_s:.1f} s)")
    glioma.write_patient(patient, out)
    t = patient.truth
    v = patient.volumes()
    unit = "mm^3" if anatomy.ndim == 3 else "mm^2"
    print(
        f"{out}: {where}, grid {grid} at {args.resolution} mm; D_w {t.D_w:g} mm^2/day, "
        f"rho {t.rho:g} /day, r {t.r:g}, T {t.T:g} days (D_w T {t.D_w_T:g} mm^2, "
        f"rho T {t.rho_T:g}); origin {list(t.origin_mm)} mm; core {v['core']:g}, edema "
        f"{v['edema']:g} {unit}; {time.perf_counter() - start:.1f} s"
    )
    return 0


def _cmd_calibrate(args) -> int:
    from .battery.commands import calibrate_command

    return calibrate_command(args)


def _cmd_data(args) -> int:
    """``pinnkit data ns2d``: a data set of 2D Navier–Stokes vorticity trajectories (.npz)."""
    if args.dataset == "glioma":
        return _cmd_data_glioma(args)
    if args.dataset == "spm":
        from .battery.commands import data_spm_command

        return data_spm_command(args)
    import math
    import os
    import time

    from .errors import did_you_mean

    presets = ("fno", "mcwilliams")  # NS2D_PRESETS' keys: bad input is refused before JAX loads
    if args.preset not in presets:
        raise SpecError(
            f"unknown preset {args.preset!r}; expected one of {list(presets)}"
            + did_you_mean(args.preset, presets),
            path="--preset",
        )
    out = pathlib.Path(args.out)
    if not out.parent.is_dir():
        raise SpecError(f"the folder {str(out.parent)!r} does not exist", path="--out")
    for flag, value in (("--n", args.n), ("--res", args.res), ("--batch", args.batch)):
        if value < 1 or (flag == "--res" and value < 4):
            raise SpecError(f"expected a positive integer (>= 4 for --res), got {value}", path=flag)
    import jax
    import numpy as np

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    from .reference import ns2d

    preset = ns2d.NS2D_PRESETS[args.preset]
    initial = {"grf": ns2d.GaussianRandomField(), "mcwilliams": ns2d.McWilliams()}.get(
        args.ic, preset.initial
    )
    t_final = preset.t_final if args.t_final is None else args.t_final
    snapshots = preset.snapshots if args.snapshots is None else args.snapshots
    if args.steps is None:
        if not (t_final > 0 and snapshots >= 1):
            raise SpecError("expected --t-final > 0 and --snapshots >= 1", path="--t-final")
        # at most the preset's time step, with a whole number of steps between snapshots
        steps = snapshots * math.ceil(t_final / preset.dt / snapshots - 1e-9)
    else:
        steps = args.steps
    total = args.n

    def report(done: int, _total: int) -> None:
        if bar is not None:
            bar.update(task, completed=done)
        elif not args.quiet:
            print(f"[ns2d] {done}/{total} trajectories", file=sys.stderr, flush=True)

    bar = None
    if not args.quiet and sys.stderr.isatty():
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("[bold]ns2d"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} trajectories"),
            TimeRemainingColumn(),
        )
        task = bar.add_task("ns2d", total=total)
        bar.start()
    start = time.perf_counter()
    try:
        data = ns2d.ns2d_dataset(
            args.n,
            res=args.res,
            nu=preset.nu if args.nu is None else args.nu,
            t_final=t_final,
            steps=steps,
            snapshots=snapshots,
            initial=initial,
            forcing=preset.forcing,
            length=preset.length,
            stepper=ns2d.CrankNicolsonRK4() if args.stepper == "rk4" else ns2d.CrankNicolsonHeun(),
            batch=args.batch,
            dtype=args.dtype,
            on_batch=report,
            key=jax.random.key(args.seed),
        )
    except DivergenceError as e:
        print(f"pinnkit: the solver diverged: {e}", file=sys.stderr)
        return e.exit_code
    finally:
        if bar is not None:
            bar.stop()
    wall = time.perf_counter() - start
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
        np.savez(fh, **data)
    os.replace(tmp, out)  # atomic: a reader never sees half a file
    w = data["vorticity"]
    print(
        f"{out}: vorticity {tuple(w.shape)} {w.dtype} (sample, time, x, y), "
        f"t in [0, {float(data['t'][-1]):g}] every {float(data['t'][1] - data['t'][0]):g}, "
        f"dt {float(data['dt']):g}, nu {float(data['nu']):g}; {wall:.1f} s"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pinnkit", description="Physics-informed PDE solving in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser("solve", help="train on a spec and write a run directory")
    s.add_argument("spec", nargs="?", help="problem spec (YAML)")
    s.add_argument("--out", help="run directory (default runs/<name>-<time>)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a spec key")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoint")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    s.set_defaults(func=_cmd_solve)
    v = sub.add_parser("validate", help="check a spec without training")
    v.add_argument("spec")
    v.add_argument("--set", action="append", metavar="KEY=VALUE")
    v.set_defaults(func=_cmd_validate)
    lst = sub.add_parser("list", help="builtin equations, backends, optimizers, problems")
    lst.set_defaults(func=_cmd_list)
    r = sub.add_parser("report", help="re-render a run's plots and print its summary")
    r.add_argument("run", help="run directory")
    r.set_defaults(func=_cmd_report)
    d = sub.add_parser("data", help="write a data set of reference solutions (.npz)")
    d.add_argument(
        "dataset",
        choices=["ns2d", "glioma", "spm"],
        help="ns2d: 2D Navier–Stokes vorticity; glioma: a synthetic tumour patient (NIfTI); "
        "spm: a noisy battery discharge curve (CSV)",
    )
    d.add_argument("--out", required=True, help="output file, e.g. ns2d.npz (glioma: a folder)")
    d.add_argument("--n", type=int, default=64, help="number of trajectories (default 64)")
    d.add_argument("--res", type=int, default=64, help="grid points per direction (default 64)")
    d.add_argument("--preset", default="fno", help="fno (default) or mcwilliams")
    d.add_argument("--ic", choices=["grf", "mcwilliams"], help="initial condition (preset's)")
    d.add_argument("--nu", type=float, help="viscosity (preset's)")
    d.add_argument("--t-final", type=float, help="final time (preset's)")
    d.add_argument("--snapshots", type=int, help="snapshots after t = 0 (preset's)")
    d.add_argument("--steps", type=int, help="time steps, a multiple of --snapshots")
    d.add_argument("--stepper", choices=["rk2", "rk4"], default="rk2", help="CN + RK2 or RK4")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--batch", type=int, default=32, help="trajectories solved at once")
    d.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    d.add_argument("--quiet", action="store_true", help="no progress output")
    g = d.add_argument_group("glioma", "options of `pinnkit data glioma` (mm and days)")
    g.add_argument("--D-w", dest="D_w", type=float, default=0.1, help="mm^2/day (0.1)")
    g.add_argument("--rho", type=float, default=0.1, help="proliferation rate, 1/day (0.1)")
    g.add_argument("--r", type=float, default=20.0, help="D_w / D_g (20)")
    g.add_argument("--T", type=float, default=100.0, help="growth time, days (100)")
    g.add_argument("--origin", type=float, nargs="+", metavar="MM", help="x y [z] (-28 -10 20)")
    g.add_argument("--slice", type=float, help="axial slice height z in mm (20)")
    g.add_argument("--3d", dest="three_d", action="store_true", help="the whole brain in 3D")
    g.add_argument("--resolution", type=int, default=2, help="atlas voxel size, mm (2)")
    g.add_argument("--th-up", type=float, default=0.5, help="enhancing-core threshold (0.5)")
    g.add_argument("--th-down", type=float, default=0.25, help="edema threshold (0.25)")
    g.add_argument("--pet-noise", type=float, default=0.0, help="relative PET noise (0)")
    b = d.add_argument_group("spm", "options of `pinnkit data spm` (a CSV of time_s, voltage_V)")
    b.add_argument("--deg-i0-a", type=float, default=1.0, help="anode i0 multiplier (1)")
    b.add_argument("--deg-ds-c", type=float, default=1.0, help="cathode D_s multiplier (1)")
    b.add_argument("--noise-mv", type=float, default=2.0, help="voltage noise, mV (2)")
    b.add_argument("--points", type=int, default=136, help="samples over [0, t_max] (136)")
    b.add_argument("--parameters", help="a JSON/YAML SPM parameter file (the simple set)")
    d.set_defaults(func=_cmd_data)
    c = sub.add_parser(
        "calibrate", help="posterior of the battery degradation from a voltage curve (NUTS)"
    )
    c.add_argument("run", help="a surrogate run directory (pinnkit solve on an spm spec)")
    c.add_argument("--data", required=True, help="CSV with columns time_s, voltage_V")
    c.add_argument("--out", help="output folder (default RUN/calibration)")
    c.add_argument("--noise-mv", type=float, help="known noise level, mV (default: inferred)")
    c.add_argument("--draws", type=int, default=1000, help="draws per chain (1000)")
    c.add_argument("--warmup", type=int, default=500, help="adaptation steps (500)")
    c.add_argument("--chains", type=int, default=2, help="chains (2)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument(
        "--no-model-error",
        action="store_true",
        help="leave the surrogate's own error (model_error.json) out of the likelihood",
    )
    c.add_argument(
        "--truth",
        type=float,
        nargs=2,
        metavar=("DEG_I0_A", "DEG_DS_C"),
        help="true values, to report whether the 90%% intervals cover them",
    )
    c.set_defaults(func=_cmd_calibrate)
    return p


def _use_compilation_cache() -> None:
    """Keep compiled programs between runs (JAX's persistent cache): a second solve of the
    same spec skips most of its compile time. ``JAX_COMPILATION_CACHE_DIR`` overrides the
    folder; ``PINNKIT_COMPILATION_CACHE=0`` turns it off."""
    import os

    if os.environ.get("PINNKIT_COMPILATION_CACHE", "1") == "0":
        return
    import jax

    if not jax.config.jax_compilation_cache_dir:
        folder = os.path.join(os.path.expanduser("~"), ".cache", "pinnkit", "jax")
        jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "solve":
        _use_compilation_cache()
    try:
        code = args.func(args)
    except SpecError as e:
        print(f"pinnkit: spec error: {e}", file=sys.stderr)
        code = e.exit_code
    except DivergenceError as e:
        print(f"pinnkit: training diverged: {e}", file=sys.stderr)
        code = e.exit_code
    except InterruptedRun as e:
        print(f"pinnkit: {e}", file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        print("pinnkit: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        sys.stderr.close()
        code = 0
    except PinnkitError as e:
        print(f"pinnkit: {e}", file=sys.stderr)
        code = e.exit_code
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
