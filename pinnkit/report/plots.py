"""Figures of a solution: prediction, reference, pointwise error, and the loss history.

One coordinate gives line plots; two give colour maps over the plane; more give the plane of
the first two coordinates at the middle of the others.
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


def plot_fields(solution, path: pathlib.Path | None):
    problem = solution.problem
    pts, shape, ref = _plane(solution)
    pred = solution.predict(pts)
    fields = list(problem.fields)
    cols = 3 if ref is not None else 1
    fig, axes = plt.subplots(
        len(fields), cols, figsize=(4.2 * cols, 3.4 * len(fields)), squeeze=False
    )
    coords = problem.coords
    for row, f in enumerate(fields):
        p = pred[f]
        r = None if ref is None or f not in ref else np.asarray(ref[f])
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


def plot_solution(solution, directory=None, *, show: bool = False):
    """Draw the figures; with a directory, save ``fields.png`` and ``history.png`` there and
    return their paths, otherwise return the figures."""
    d = pathlib.Path(directory) if directory is not None else None
    out = [
        plot_fields(solution, d / "fields.png" if d else None),
        plot_history(solution.record.history, d / "history.png" if d else None),
    ]
    if show and d is None:
        plt.show()
    return out
