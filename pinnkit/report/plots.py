"""Figures of a solution: prediction, reference, pointwise error, and the loss history; a
reference table's profiles; a 2D flow's streamlines.

One coordinate gives line plots; two give colour maps over the plane; more give the plane of
the first two coordinates at the middle of the others. A complex field is drawn as its modulus.
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _plane(solution, n: int = 201):
    """Points on a plotting grid and its shape, plus reference values there if on a grid."""
    problem = solution.problem
    box = problem.box
    ref = problem.reference() if problem.reference is not None else None
    if ref is not None and ref.grid_shape is not None and len(ref.grid_shape) <= 2:
        return ref.points, tuple(ref.grid_shape), ref.values
    dims = min(box.dim, 2)
    shape = (n,) * dims if dims == 1 else (min(n, 161),) * dims
    axes = [np.linspace(box.lo[i], box.hi[i], s) for i, s in zip(range(dims), shape)]
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.tile((box.lo + box.hi) / 2, (mesh[0].size, 1))
    for i in range(dims):
        pts[:, i] = mesh[i].reshape(-1)
    return pts, shape, None  # off the reference grid: the summary holds the comparison


def _rows(problem, pred, ref):
    """``(title, prediction, reference or None)`` per field drawn: real fields as they are,
    complex ones as their modulus ``|h|``."""
    parts = set(problem.complex.real_names(problem.complex_fields))
    rows = [
        (f, pred[f], None if ref is None or f not in ref else np.asarray(ref[f]))
        for f in problem.fields
        if f not in parts
    ]
    for f in problem.complex_fields:
        r = None if ref is None or f not in ref else np.abs(np.asarray(ref[f]))
        rows.append((f"|{f}|", np.abs(pred[f]), r))
    return rows


def plot_fields(solution, path: pathlib.Path | None):
    problem = solution.problem
    pts, shape, ref = _plane(solution)
    names = [f for f in problem.fields] + list(problem.complex_fields)
    rows = _rows(problem, solution.predict(pts, names), ref)
    cols = 3 if ref is not None else 1
    fig, axes = plt.subplots(len(rows), cols, figsize=(4.2 * cols, 3.4 * len(rows)), squeeze=False)
    coords = problem.coords
    for row, (f, p, r) in enumerate(rows):
        panels = [("prediction", p)]
        if r is not None:
            panels += [("reference", r), ("|error|", np.abs(p - r))]
        for col, (title, v) in enumerate(panels):
            ax = axes[row, col]
            if len(shape) == 1:
                x = pts[:, 0]
                if title == "reference":
                    ax.plot(x, p, label="prediction", lw=2)
                    ax.plot(x, v, "--", label="reference", lw=1.5)
                    ax.legend()
                elif title == "|error|":
                    ax.semilogy(x, np.maximum(v, 1e-16))
                else:
                    ax.plot(x, v)
                ax.set_xlabel(coords[0])
            else:
                grid = v.reshape(shape)
                xs = pts[:, 0].reshape(shape)
                ys = pts[:, 1].reshape(shape)
                im = ax.pcolormesh(
                    xs, ys, grid, shading="auto", cmap="viridis" if col < 2 else "magma"
                )
                fig.colorbar(im, ax=ax)
                ax.set_xlabel(coords[0])
                ax.set_ylabel(coords[1])
            ax.set_title(f"{f}: {title}")
    fig.tight_layout()
    return _finish(fig, path)


def plot_history(history, path: pathlib.Path | None):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    if history:
        steps = [h["step"] for h in history]
        ax1.semilogy(steps, [max(h["loss"], 1e-30) for h in history], "k", lw=2, label="total")
        for name in history[-1].get("terms", {}):
            ax1.semilogy(
                steps, [max(h["terms"].get(name, np.nan), 1e-30) for h in history], lw=1, label=name
            )
        ax1.legend(fontsize=7)
        evals = [h for h in history if "errors" in h]
        for f in evals[-1]["errors"] if evals else []:
            key = "rel_l2" if "rel_l2" in evals[-1]["errors"][f] else "rel_err"
            ax2.semilogy(
                [h["step"] for h in evals],
                [h["errors"][f].get(key, np.nan) for h in evals],
                "o-",
                label=f"{f} {key}",
            )
        if evals:
            ax2.legend(fontsize=7)
    ax1.set_xlabel("step")
    ax1.set_title("loss")
    ax2.set_xlabel("step")
    ax2.set_title("error against the reference")
    fig.tight_layout()
    return _finish(fig, path)


def _finish(fig, path):
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path
    return fig


def plot_spectrum(solution, path: pathlib.Path | None):
    """An eigenvalue problem: the potential with each state drawn at its energy (against the
    reference), and the relative error of each energy over training."""
    problem = solution.problem
    lo, hi = problem.box.lo[0], problem.box.hi[0]
    x = np.linspace(lo, hi, 801)
    pred = solution.predict(x[:, None])
    energies = solution.eigenvalues()
    order = np.argsort([solution.eigenvalues_by_name()[e] for e in problem.eigenvalues])
    ref = problem.reference() if problem.reference is not None else None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    v = None
    if problem.potential is not None:
        v = np.asarray(problem.potential_at(x[:, None]), float)
    # One state's drawing height: the spacing of the levels, but visible for a close pair.
    floor = min(energies) - (np.min(v) if v is not None else 0.0)
    spacing = (max(energies) - min(energies)) / max(len(energies) - 1, 1)
    scale = 0.4 * max(spacing, 0.5 * abs(floor), 1e-12)
    if v is not None:
        ax1.plot(x, np.minimum(v, max(energies) + 2 * scale), "k", lw=1.5, label="V(x)")
    for rank, j in enumerate(order):
        f = problem.fields[j]
        psi = np.asarray(pred[f])
        e = energies[rank]
        if ref is not None and f in ref.values:
            r = np.interp(x, ref.points[:, 0], np.asarray(ref.values[f]))
            psi = psi if np.dot(psi, r) >= 0 else -psi
            ax1.plot(x, e + scale * r / np.max(np.abs(r)), "k--", lw=1)
        ax1.plot(x, e + scale * psi / np.max(np.abs(psi)), lw=2, label=f"{f}: E = {e:.6g}")
        ax1.axhline(e, color="0.8", lw=0.5)
    ax1.set_xlabel(problem.coords[0])
    ax1.set_title("states at their energies (dashed: reference)")
    ax1.legend(fontsize=7)
    evals = [h for h in solution.record.history if "errors" in h]
    for name in problem.eigenvalues:
        pts = [(h["step"], h["errors"][name]["rel_err"]) for h in evals if name in h["errors"]]
        if pts:
            ax2.semilogy(*zip(*pts), "o-", ms=3, label=name)
    ax2.set_xlabel("step")
    ax2.set_ylabel("relative error of the energy")
    ax2.set_title("energy convergence (before the final Ritz step)")
    if ax2.lines:
        ax2.legend(fontsize=7)
    return _finish(fig, path)


def _profiles(ref):
    """Per field of a scattered reference: ``(field, axis varying, known mask)`` where its known
    points lie on one line along a coordinate axis, else ``(field, None, mask)``."""
    out = []
    for f, values in ref.values.items():
        known = np.isfinite(np.abs(np.asarray(values)))
        pts = ref.points[known]
        varying = [i for i in range(pts.shape[1]) if np.ptp(pts[:, i]) > 0] if len(pts) else []
        out.append((f, varying[0] if len(varying) == 1 else None, known))
    return out


def plot_profiles(solution, path: pathlib.Path | None):
    """A reference given at scattered points (a published table): along a line, the prediction
    on that line against the tabulated values (a centreline profile); otherwise prediction
    against reference, point by point."""
    problem = solution.problem
    ref = problem.reference()
    rows = _profiles(ref)
    fig, axes = plt.subplots(1, len(rows), figsize=(4.6 * len(rows), 3.8), squeeze=False)
    for ax, (f, axis, known) in zip(axes[0], rows):
        pts, r = ref.points[known], np.real(np.asarray(ref.values[f])[known])
        if axis is not None:
            line = np.tile(pts[0], (401, 1))
            line[:, axis] = np.linspace(problem.box.lo[axis], problem.box.hi[axis], 401)
            ax.plot(line[:, axis], np.real(solution.predict(line, [f])[f]), lw=2, label="pinnkit")
            ax.plot(pts[:, axis], r, "ks", ms=4, mfc="none", label=ref.source)
            fixed = ", ".join(
                f"{c} = {pts[0, i]:g}" for i, c in enumerate(problem.coords) if i != axis
            )
            ax.set_xlabel(problem.coords[axis])
            ax.set_title(f"{f} on {fixed}")
        else:
            p = np.real(solution.predict(pts, [f])[f])
            ax.plot(r, p, "o", ms=3, label="points")
            lims = [min(r.min(), p.min()), max(r.max(), p.max())]
            ax.plot(lims, lims, "k--", lw=1, label="exact agreement")
            ax.set_xlabel(f"{f}: reference")
            ax.set_ylabel(f"{f}: pinnkit")
            ax.set_title(f"{f} against {ref.source}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def _velocity_names(problem):
    """The names that give a 2D flow's velocity: ``(u, v)`` of the velocity–pressure form, or
    ``(psi_y, -psi_x)`` of the vorticity–streamfunction form; None for other problems."""
    names = tuple(problem.equation.names)
    space = [c for c in problem.coords if c != "t"]
    if len(space) != 2:
        return None
    if names == (f"momentum_{space[0]}", f"momentum_{space[1]}", "continuity"):
        return problem.fields[0], problem.fields[1], 1.0
    if names == ("vorticity", "streamfunction"):
        psi = problem.fields[1]
        return f"{psi}_{space[1]}", f"{psi}_{space[0]}", -1.0
    return None


def plot_flow(solution, path: pathlib.Path | None, n: int = 101):
    """A 2D flow (the `navier_stokes` builtin): speed and streamlines, at the final time if
    the flow is unsteady."""
    problem = solution.problem
    ux, vy, sign = _velocity_names(problem)
    box = problem.box
    space = [i for i, c in enumerate(problem.coords) if c != "t"]
    xs = np.linspace(box.lo[space[0]], box.hi[space[0]], n)
    ys = np.linspace(box.lo[space[1]], box.hi[space[1]], n)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")  # streamplot wants rows along y
    pts = np.tile(np.asarray(box.hi, float), (gx.size, 1))  # time at its end
    pts[:, space[0]], pts[:, space[1]] = gx.reshape(-1), gy.reshape(-1)
    pred = solution.predict(pts, [ux, vy])
    u = np.asarray(pred[ux], float).reshape(gx.shape)
    v = sign * np.asarray(pred[vy], float).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(5.4, 4.6))
    im = ax.pcolormesh(gx, gy, np.hypot(u, v), shading="auto", cmap="viridis")
    fig.colorbar(im, ax=ax, label="speed")
    ax.streamplot(xs, ys, u, v, color="w", linewidth=0.7, density=1.4)
    ax.set_xlabel(problem.coords[space[0]])
    ax.set_ylabel(problem.coords[space[1]])
    ax.set_aspect("equal")
    when = f" at t = {box.hi[problem.coords.index('t')]:g}" if "t" in problem.coords else ""
    ax.set_title(f"streamlines{when}")
    fig.tight_layout()
    return _finish(fig, path)


def plot_solution(solution, directory=None, *, show: bool = False):
    """Draw the figures; with a directory, save ``fields.png`` and ``history.png`` there and
    return their paths, otherwise return the figures."""
    d = pathlib.Path(directory) if directory is not None else None
    out = [
        plot_fields(solution, d / "fields.png" if d else None),
        plot_history(solution.record.history, d / "history.png" if d else None),
    ]
    if solution.problem.eigenvalues and solution.problem.box.dim == 1:
        out.append(plot_spectrum(solution, d / "spectrum.png" if d else None))
    problem = solution.problem
    if problem.reference is not None and problem.reference().grid_shape is None:
        out.append(plot_profiles(solution, d / "profiles.png" if d else None))
    if _velocity_names(problem) is not None:
        out.append(plot_flow(solution, d / "streamlines.png" if d else None))
    if show and d is None:
        plt.show()
    return out
