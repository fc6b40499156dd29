"""``pinnkit calibrate`` and ``pinnkit data spm``: the battery commands beside ``pinnkit solve``
(the surrogate's training is the battery family, `pinnkit.families.battery`)."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from pinnkit.errors import SpecError


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
