"""Trusted references for the Schrödinger problems: 1-D eigenproblems and the NLS benchmark.

Eigenproblems. The quantum-well PINN problems of Sarkar (2025, "Physics-Informed Neural Networks
for One-Dimensional Quantum Well Problems", arXiv:2504.05367) are, in dimensionless form,

    -psi'' + V(x) psi = E psi   on [a, b],   psi(a) = psi(b) = 0,

so the infinite well of width 1 has E_n = (n pi)^2, n = 1, 2, ..., and V = x^2 on a wide enough
interval has E_n = 2 n + 1, n = 0, 1, ... Two references are given:

* `schrodinger_fd`: second-order finite differences on a uniform grid, the symmetric tridiagonal
  matrix solved by `scipy.linalg.eigh_tridiagonal`. The energies are then recomputed as Rayleigh
  quotients of the eigenvectors in the gradient form sum (psi_{i+1} - psi_i)^2 / h^2 +
  sum V_i psi_i^2 (no cancellation, so relative precision even where the matrix norm 4 / h^2 is
  10^6 times the energy, as LAPACK's eigenvalues have not; the eigenvector error enters
  squared). Done as Rayleigh-Ritz over all computed vectors, this also separates
  near-degenerate pairs: the tridiagonal solver mixes the double well's pair below (splitting
  1e-4) at 3e-7, after Ritz their parity holds to 7e-12.
* `schrodinger_reference`: Richardson extrapolation of those energies over `levels` grids. For a
  smooth V the error of the three-point scheme is c_1 h^2 + c_2 h^4 + ... (even powers only: the
  scheme is symmetric), so `levels` grids remove `levels - 1` of those terms.

A jump in V breaks this: sampled at nodes, the jump is effectively moved to the nearest cell face,
an O(h) error whose constant depends on where the jump falls in its cell, so FD converges
irregularly and Richardson fails. It works again when the jump sits exactly on a node whose
potential value is the mean of the two one-sided limits (the exact cell average of V over
[x_i - h/2, x_i + h/2] for a piecewise-constant V). Measured for the finite well below (depth 100,
width 1 in the box [-2, 2]): the error is then c_1 h^2 + c_2 h^4 + ... with fitted slopes 2.000
+- 2e-4 for six states and n = 400..6400, the [h^2, h^4] extrapolation from n = 400, 800, 1600
agrees with the exact energies to 1.2e-11 relative, while fitting an h^3 term instead leaves 1e-8.
(Jumps placed on cell midpoints, i.e. faces, behave the same but cannot stay faces under grid
halving.) Hence the ``jumps`` argument: every grid is chosen so that each jump is a node.

Exact energies for piecewise-constant potentials (`finite_well_energies`, `barrier_box_energies`,
`finite_well_energies_open`) come from the matching conditions at the jumps, written as the
Wronskian of the inner solution (even or odd about the centre) and the outer one (vanishing at
the wall, or decaying for the open well): an entire function of E without the poles of the
tan/cot forms, whose roots are bracketed on a fine scan in sqrt(E) and polished by
`scipy.optimize.brentq`. The levels of a symmetric potential alternate in parity (the n-th has
n nodes), which is checked: a missed root would break the alternation.

Nonlinear Schrödinger. The benchmark of Raissi, Perdikaris & Karniadakis (2019, "Physics-informed
neural networks", J. Comput. Phys. 378:686-707, section 3.1.1) is

    i h_t + 0.5 h_xx + |h|^2 h = 0,   x in [-5, 5] periodic,   t in [0, pi/2],
    h(x, 0) = 2 sech(x).

On the whole line this is the N = 2 soliton (Satsuma & Yajima 1974, "Initial value problems
of one-dimensional self-modulation of nonlinear waves in dispersive media", Prog. Theor. Phys.
Suppl. 55:284-306), |h| periodic in t with period pi/2, and

    h(x, t) = 4 e^{it/2} (cosh 3x + 3 e^{4it} cosh x) / (cosh 4x + 4 cosh 2x + 3 cos 4t)

(as in Agrawal, "Nonlinear Fiber Optics", chapter 5, higher-order solitons), which `nls_split_step`
reproduces on a wide periodic box. On [-5, 5] the periodic extension of 2 sech(x) has a derivative
jump of 0.027 at x = +-5 (2 sech 5 = 0.0135), so the Fourier coefficients decay only like k^-2; the
initial data are therefore the truncated Fourier series (from an FFT on a >= 2^18-point grid), not
grid samples, and the periodic problem differs from the whole-line soliton. It is solved by
split-step Fourier with Yoshida's fourth-order composition: ~1e-9 in time at the default step, ~6e-6
in space at the default n = 512 (figures in `nls_split_step` and `nls_reference`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import eigh, eigh_tridiagonal
from scipy.optimize import brentq

from pinnkit.errors import SpecError
from pinnkit.reference._common import broadcast_points

__all__ = [
    "barrier_box_energies",
    "finite_well_energies",
    "finite_well_energies_open",
    "nls_reference",
    "nls_split_step",
    "schrodinger_fd",
    "schrodinger_reference",
]

# A wavefunction's sign is fixed by its first node where |psi| reaches this fraction of max |psi|
# (the first lobe that is not a tunnelling tail), which is stable under grid refinement.
_SIGN_FRACTION = 1e-2
# One-sided limits of V at a jump are sampled this far (times b - a) from it: far above rounding
# of x near the jump, far below any length scale of a piecewise-smooth V.
_JUMP_OFFSET = 1e-9
# A jump counts as lying on a grid node when (x_j - a) / h is this close to an integer.
_NODE_TOL = 1e-7


# --------------------------------------------------------------------------------------------
# Finite differences and Richardson extrapolation
# --------------------------------------------------------------------------------------------


def _check_interval(a: float, b: float) -> tuple[float, float]:
    """Validate the interval [a, b].

    Arguments:
        a, b: the ends.

    Returns:
        (a, b) as floats.
    """
    a, b = float(a), float(b)
    if not (np.isfinite(a) and np.isfinite(b) and b > a):
        raise SpecError(f"expected a finite interval a < b, got a={a!r}, b={b!r}", path="a, b")
    return a, b


def _check_count(value: int, name: str, minimum: int) -> int:
    """Validate an integer argument.

    Arguments:
        value: the argument.
        name: its name, for the message.
        minimum: the smallest value allowed.

    Returns:
        the value as an int.
    """
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise SpecError(f"expected an integer {name} >= {minimum}, got {value!r}", path=name)
    return int(value)


def _check_jumps(jumps: Sequence[float] | None, a: float, b: float) -> np.ndarray:
    """Validate jump locations and return those strictly inside (a, b), sorted.

    Arguments:
        jumps: discontinuity locations of V, or None.
        a, b: the interval.

    Returns:
        float64 array of the interior jumps (jumps at a or b are walls anyway and dropped).
    """
    if jumps is None:
        return np.empty(0)
    arr = np.atleast_1d(np.asarray(jumps, dtype=np.float64))
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise SpecError(f"expected a 1-D sequence of finite jump locations, got {jumps!r}", "jumps")
    if np.any((arr < a) | (arr > b)):
        raise SpecError(f"expected jump locations in [{a}, {b}], got {arr.tolist()}", path="jumps")
    return np.unique(arr[(arr > a) & (arr < b)])


def _jump_nodes(jumps: np.ndarray, a: float, b: float, n: int) -> np.ndarray | None:
    """Grid indices of the jumps on the n-interval grid, or None if one is not on a node.

    Arguments:
        jumps: interior jump locations.
        a, b: the interval.
        n: number of grid intervals.

    Returns:
        int array of node indices (1..n-1), or None.
    """
    pos = (jumps - a) / (b - a) * n
    idx = np.rint(pos)
    if np.any(np.abs(pos - idx) > _NODE_TOL):
        return None
    return idx.astype(int)


def _fd_solve(
    potential: Callable[[np.ndarray], ArrayLike],
    a: float,
    b: float,
    n: int,
    states: int,
    jumps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The FD eigenproblem on one grid (arguments already validated).

    Arguments:
        potential: vectorised callable V(x).
        a, b: the interval.
        n: number of grid intervals; every jump must lie on a node.
        states: number of lowest states.
        jumps: interior jump locations.

    Returns:
        (energies, x, psi) as in `schrodinger_fd`.
    """
    h = (b - a) / n
    x = a + h * np.arange(n + 1)
    x[-1] = b
    inner = x[1:-1]
    v = np.asarray(potential(inner), dtype=np.float64)
    try:
        v = np.array(np.broadcast_to(v, inner.shape))
    except ValueError:
        raise SpecError(
            f"potential must map x of shape {inner.shape} to values of that shape, got {v.shape}",
            path="potential",
        ) from None
    if jumps.size:
        nodes = _jump_nodes(jumps, a, b, n)
        if nodes is None:
            raise SpecError(
                f"every jump must lie on a node of the {n}-interval grid on [{a}, {b}], got "
                f"jumps={jumps.tolist()}; choose n so that n (x_j - a) / (b - a) are integers",
                path="jumps",
            )
        # The mean of the one-sided limits is the cell average over [x_i - h/2, x_i + h/2] of a
        # piecewise-constant V: this restores the even-power error expansion (module docstring).
        off = _JUMP_OFFSET * (b - a)
        left = np.asarray(potential(jumps - off), dtype=np.float64)
        right = np.asarray(potential(jumps + off), dtype=np.float64)
        v[nodes - 1] = 0.5 * (np.broadcast_to(left, jumps.shape) + right)
    if not np.all(np.isfinite(v)):
        raise SpecError("potential must give finite values on [a, b]", path="potential")
    diag = 2.0 / h**2 + v
    off_diag = np.full(n - 2, -1.0 / h**2)
    _, vec = eigh_tridiagonal(diag, off_diag, select="i", select_range=(0, states - 1))
    vec = vec.T  # (states, n - 1), orthonormal in the Euclidean sense
    # Rayleigh-Ritz on the computed vectors with the matrix in gradient form,
    # sum (psi_{i+1} - psi_i)^2 / h^2 + sum V_i psi_i^2: its terms carry no cancellation, so the
    # energies keep their relative precision where LAPACK's carry an absolute error
    # ~ eps * 4 / h^2 (1e-10 at h = 2e-3), and near-degenerate pairs (a double well), which the
    # tridiagonal solver mixes at ~eps * |T| / gap (3e-7 for a 1e-4 splitting), are separated.
    padded = np.pad(vec, ((0, 0), (1, 1)))
    grad = np.diff(padded, axis=1)
    stiff = grad @ grad.T / h**2 + (vec * v) @ vec.T
    energies, rot = eigh(0.5 * (stiff + stiff.T), vec @ vec.T)
    padded = rot.T @ padded
    # Trapezoid rule with zero end values: int psi^2 dx = h sum psi_i^2.
    psi = padded / np.sqrt(h * np.sum(padded**2, axis=1, keepdims=True))
    scale = np.abs(psi).max(axis=1, keepdims=True)
    first = np.argmax(np.abs(psi) >= _SIGN_FRACTION * scale, axis=1)
    psi *= np.sign(psi[np.arange(states), first])[:, None]
    return energies, x, psi


def schrodinger_fd(
    potential: Callable[[np.ndarray], ArrayLike],
    a: float,
    b: float,
    *,
    states: int = 3,
    n: int = 2000,
    jumps: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lowest eigenpairs of -psi'' + V psi = E psi, psi(a) = psi(b) = 0, by finite differences.

    The second derivative is the three-point difference on the n - 1 interior nodes of a uniform
    grid, so the energies carry an O(h^2) error (h = (b - a) / n) for a smooth V; the symmetric
    tridiagonal matrix is solved with `scipy.linalg.eigh_tridiagonal` (``select="i"``) and its
    eigenvectors refined by Rayleigh-Ritz with the matrix in gradient form (module docstring),
    which gives the energies to relative precision and separates near-degenerate pairs. For a V with
    jumps, list them in ``jumps``: each must lie on a grid node, where V is set to the mean of its
    one-sided limits, which keeps the error a regular c h^2 + O(h^4).

    Sign convention: each psi is positive at its first node where |psi| reaches 1e-2 of its
    maximum, i.e. its first lobe above the tunnelling tails is positive (for a symmetric
    potential the left lobe; stable under grid refinement). Compare other solutions up to sign.

    Arguments:
        potential: V as a vectorised callable of a numpy array x (a scalar result is broadcast).
        a, b: the interval, a < b.
        states: number of lowest states returned.
        n: number of grid intervals (n + 1 nodes).
        jumps: locations of discontinuities of V in [a, b], or None for a continuous V.

    Returns:
        (energies, x, psi): energies ascending, shape (states,); the grid x, shape (n + 1,), with
        the end points; psi, shape (states, n + 1), zero at the ends and normalised to
        int psi^2 dx = 1 by the trapezoid rule (equal to the Euclidean norm times sqrt(h)).
    """
    a, b = _check_interval(a, b)
    states = _check_count(states, "states", 1)
    n = _check_count(n, "n", 2)
    if n - 1 < states:
        raise SpecError(
            f"expected n - 1 >= states interior nodes, got n={n}, states={states}", path="n"
        )
    return _fd_solve(potential, a, b, n, states, _check_jumps(jumps, a, b))


def _compatible_n(target: int, jumps: np.ndarray, a: float, b: float) -> int:
    """Smallest grid size >= target that puts every jump on a node.

    Arguments:
        target: the wanted number of intervals.
        jumps: interior jump locations.
        a, b: the interval.

    Returns:
        the number of intervals.
    """
    if jumps.size == 0:
        return target
    for n in range(target, 2 * target + 64):
        if _jump_nodes(jumps, a, b, n) is not None:
            return n
    raise SpecError(
        f"no grid with {target} to {2 * target + 63} intervals on [{a}, {b}] has nodes at the "
        f"jumps {jumps.tolist()}: expected (x_j - a) / (b - a) to be fractions p/q with a "
        "small common denominator q",
        path="jumps",
    )


def schrodinger_reference(
    potential: Callable[[np.ndarray], ArrayLike],
    a: float,
    b: float,
    *,
    states: int = 3,
    n: int = 2000,
    levels: int = 3,
    jumps: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Richardson-extrapolated finite-difference energies and the finest-grid wavefunctions.

    The `schrodinger_fd` energies on ``levels`` grids of about n / 2^(levels-1), ...,
    n / 2, n intervals are fitted by E + c_1 h^2 + ... + c_{levels-1} h^(2 (levels-1)) (the
    FD error expansion for smooth V, and for V with jumps on nodes, module docstring) and E is
    returned. With the defaults (grids 500, 1000, 2000) the infinite well, the harmonic
    oscillator and the finite well of the tests agree with their exact energies to ~1e-11
    relative (tests/test_reference_schrodinger.py). With ``jumps`` every grid is the smallest one
    at or above its target size that has nodes at all jumps (so the finest is n itself when n
    already has), and the extrapolation is done for the actual spacings. Accuracy needs the
    states resolved on the coarsest grid, and a V smooth between its listed jumps.

    Arguments:
        potential: V as a vectorised callable of a numpy array x.
        a, b: the interval, a < b.
        states: number of lowest states.
        n: number of intervals of the finest grid (before any adjustment for ``jumps``).
        levels: number of grids (1 gives plain FD).
        jumps: locations of discontinuities of V, or None.

    Returns:
        (energies, x, psi) as in `schrodinger_fd`, with x and psi from the finest grid.
    """
    a, b = _check_interval(a, b)
    states = _check_count(states, "states", 1)
    n = _check_count(n, "n", 2)
    levels = _check_count(levels, "levels", 1)
    jumps_arr = _check_jumps(jumps, a, b)
    coarsest = n // 2 ** (levels - 1)
    if coarsest - 1 < max(states, 3):
        raise SpecError(
            f"the coarsest grid n / 2^(levels - 1) = {coarsest} intervals is too coarse for "
            f"{states} states: increase n (got {n}) or lower levels (got {levels})",
            path="n",
        )
    sizes = [
        _compatible_n(int(np.ceil(n / 2 ** (levels - 1 - k))), jumps_arr, a, b)
        for k in range(levels)
    ]
    runs = [_fd_solve(potential, a, b, m, states, jumps_arr) for m in sizes]
    # Solve E_k = E + sum_j c_j (h_k / h_0)^(2 j) for E; scaling by h_0 keeps the matrix O(1).
    rel = np.asarray(sizes[0], dtype=np.float64) / np.asarray(sizes)
    design = rel[:, None] ** (2 * np.arange(levels))[None, :]
    coef = np.linalg.solve(design, np.stack([r[0] for r in runs]))
    _, x, psi = runs[-1]
    return coef[0], x, psi


# --------------------------------------------------------------------------------------------
# Exact energies of piecewise-constant wells
# --------------------------------------------------------------------------------------------


def _cos_sin(q: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Fundamental solutions of psi'' = q psi at distance z, scaled by exp(-sqrt(q) z) for q > 0.

    C(0) = 1, C'(0) = 0 and S(0) = 0, S'(0) = 1; C' = q S and S' = C. For q > 0 they are
    cosh and sinh / sqrt(q), for q < 0 cos and sin / sqrt(-q), for q = 0 they are 1 and z. The
    positive factor exp(-sqrt(q) z) avoids overflow and changes no sign.

    Arguments:
        q: array of U - E (region potential minus energy).
        z: the distance.

    Returns:
        (C, S) scaled, arrays like q.
    """
    q = np.asarray(q, dtype=np.float64)
    kap = np.sqrt(np.abs(q))
    safe = np.where(kap > 0, kap, 1.0)
    ez = np.exp(-2.0 * kap * z)
    c_pos, s_pos = 0.5 * (1.0 + ez), -0.5 * np.expm1(-2.0 * kap * z) / safe
    c_neg, s_neg = np.cos(kap * z), np.sin(kap * z) / safe
    c = np.where(q > 0, c_pos, c_neg)
    s = np.where(q > 0, s_pos, np.where(q < 0, s_neg, z))
    return c, s


def _box_wronskian(
    energy: np.ndarray, u_in: float, w: float, u_out: float, d: float, parity: int
) -> np.ndarray:
    """Matching function of V = u_in for |y| < w, u_out for w < |y| < w + d, walls at |y| = w + d.

    The inner solution is C (even) or S (odd) about y = 0, the outer one S(w + d - y), which
    vanishes at the wall; the energy is an eigenvalue exactly when their Wronskian at y = w,
    psi_in' psi_out - psi_in psi_out' = psi_in' S_out(d) + psi_in C_out(d), vanishes.

    Arguments:
        energy: array of trial energies.
        u_in, w: inner potential and half-width.
        u_out, d: outer potential and width.
        parity: 0 for even states, 1 for odd.

    Returns:
        array of the (positively scaled) Wronskian.
    """
    q_in = u_in - energy
    c_in, s_in = _cos_sin(q_in, w)
    c_out, s_out = _cos_sin(u_out - energy, d)
    psi, dpsi = (c_in, q_in * s_in) if parity == 0 else (s_in, c_in)
    return dpsi * s_out + psi * c_out


def _roots(f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, points: int) -> list:
    """All roots of f in (lo, hi) that change sign between points of a scan uniform in sqrt(E - lo).

    Arguments:
        f: vectorised function of E.
        lo, hi: the energy range.
        points: number of scan points.

    Returns:
        the roots, ascending, polished by brentq to ~1e-15 relative.
    """
    s = np.linspace(0.0, np.sqrt(hi - lo), points)
    e = lo + s**2
    val = f(e)
    found = []
    for i in range(points - 1):
        if val[i] == 0.0 and i > 0:
            found.append(e[i])
        elif val[i] * val[i + 1] < 0:
            g = lambda en: float(f(np.array([en]))[0])
            found.append(brentq(g, e[i], e[i + 1], xtol=1e-300, rtol=1e-15, maxiter=500))
    return found


def _alternating(
    even: Callable[[np.ndarray], np.ndarray],
    odd: Callable[[np.ndarray], np.ndarray],
    lo: float,
    hi: float,
    states: int,
    spacing: float,
) -> np.ndarray:
    """Lowest ``states`` roots of the even and odd matching functions, with a parity check.

    Arguments:
        even, odd: matching functions of E for the two parities.
        lo, hi: the energy range; all wanted levels lie in (lo, hi).
        states: number of levels wanted (fewer are returned if fewer lie below hi).
        spacing: the typical level spacing in sqrt(E - lo) (pi / length of the domain).

    Returns:
        the energies, ascending.
    """
    # ~100 scan points per level; the parity check below catches (and retries) a miss.
    points = max(2000, int(100 * np.sqrt(hi - lo) / spacing))
    for _ in range(4):
        roots = [(e, 0) for e in _roots(even, lo, hi, points)]
        roots += [(e, 1) for e in _roots(odd, lo, hi, points)]
        roots.sort()
        # Level k of a symmetric potential has k nodes and parity (-1)^k: a missed root shows.
        if all(p == k % 2 for k, (_, p) in enumerate(roots)):
            return np.array([e for e, _ in roots[:states]])
        points *= 4
    raise RuntimeError("the root scan kept missing levels; this is a bug in pinnkit")


def _check_positive(value: float, name: str) -> float:
    """Validate a positive finite parameter and return it as a float."""
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise SpecError(f"expected a positive finite {name}, got {value!r}", path=name)
    return value


def _symmetric_box(
    u_in: float, u_out: float, width: float, a: float, b: float, states: int
) -> np.ndarray:
    """Energies of V = u_in for |x - c| < width / 2, u_out elsewhere in [a, b], walls at a, b.

    Arguments:
        u_in, u_out: the two potential values.
        width: the width of the central piece, 0 < width < b - a.
        a, b: the box; c = (a + b) / 2.
        states: number of lowest levels.

    Returns:
        the energies, ascending, shape (states,).
    """
    if width >= b - a:
        raise SpecError(f"expected width < b - a = {b - a}, got width={width}", path="width")
    w, d = width / 2, (b - a - width) / 2
    # V >= min(u) gives E_k > min(u) + (k pi / (b - a))^2 and V <= max(u) gives
    # E_k <= max(u) + (k pi / (b - a))^2: the wanted levels lie below hi.
    lo = min(u_in, u_out)
    hi = max(u_in, u_out) + ((states + 1) * np.pi / (b - a)) ** 2
    return _alternating(
        lambda e: _box_wronskian(e, u_in, w, u_out, d, 0),
        lambda e: _box_wronskian(e, u_in, w, u_out, d, 1),
        lo,
        hi,
        states,
        np.pi / (b - a),
    )


def finite_well_energies(
    depth: float, width: float, a: float, b: float, *, states: int
) -> np.ndarray:
    """Exact lowest energies of a finite square well inside a box with hard walls.

    V = 0 for |x - c| < width / 2, c = (a + b) / 2, and V = depth elsewhere in [a, b];
    psi(a) = psi(b) = 0 (the PINN domain is finite). Inside the well psi is cos(k y) (even) or
    sin(k y) (odd), y = x - c, k = sqrt(E); between the well and the wall it is
    sinh(kappa (L - |y|)) below the barrier (kappa = sqrt(depth - E), L = (b - a) / 2) and
    sin(k' (L - |y|)) above it (k' = sqrt(E - depth)), so that it vanishes at the wall. The
    matching of psi'/psi at |y| = width / 2 is solved as a Wronskian root (module docstring).

    Arguments:
        depth: the potential outside the well, > 0.
        width: the well width, 0 < width < b - a.
        a, b: the box.
        states: number of lowest levels (levels above the barrier included).

    Returns:
        float64 array of the energies, ascending, shape (states,).
    """
    a, b = _check_interval(a, b)
    depth = _check_positive(depth, "depth")
    width = _check_positive(width, "width")
    states = _check_count(states, "states", 1)
    return _symmetric_box(0.0, depth, width, a, b, states)


def barrier_box_energies(
    height: float, width: float, a: float, b: float, *, states: int
) -> np.ndarray:
    """Exact lowest energies of a box [a, b] with a central rectangular barrier (a double well).

    V = height for |x - c| < width / 2, c = (a + b) / 2, V = 0 elsewhere in [a, b], and
    psi(a) = psi(b) = 0. Inside the barrier psi is cosh / sinh (below its top) or cos / sin
    (above) about c, even or odd; between barrier and wall sin(k (L - |y|)), k = sqrt(E). Below
    the barrier the levels come in near-degenerate even/odd pairs (the even one lower) whose
    splitting falls like exp(-sqrt(height - E) width) (tunnelling).

    Arguments:
        height: the barrier height, > 0.
        width: the barrier width, 0 < width < b - a.
        a, b: the box.
        states: number of lowest levels.

    Returns:
        float64 array of the energies, ascending, shape (states,).
    """
    a, b = _check_interval(a, b)
    height = _check_positive(height, "height")
    width = _check_positive(width, "width")
    states = _check_count(states, "states", 1)
    return _symmetric_box(height, 0.0, width, a, b, states)


def finite_well_energies_open(depth: float, width: float, *, states: int) -> np.ndarray:
    """Exact bound-state energies of the classic finite square well on the whole line.

    V = 0 for |x| < width / 2 and V = depth elsewhere; bound states (0 < E < depth) decay like
    exp(-kappa |x|), kappa = sqrt(depth - E). With k = sqrt(E) and w = width / 2 the conditions
    are k tan(k w) = kappa (even) and -k cot(k w) = kappa (odd) (e.g. Griffiths, "Introduction
    to Quantum Mechanics", section 2.6, in units hbar^2 / 2m = 1), solved here in the pole-free
    forms kappa cos(k w) - k sin(k w) = 0 and kappa sin(k w) + k cos(k w) = 0. There are
    ceil(w sqrt(depth) / (pi / 2)) bound states. For a box much wider than the decay lengths,
    `finite_well_energies` approaches these values.

    Arguments:
        depth: the potential outside the well, > 0.
        width: the well width, > 0.
        states: number of lowest bound states.

    Returns:
        float64 array of the energies, ascending, shape (states,).
    """
    depth = _check_positive(depth, "depth")
    width = _check_positive(width, "width")
    states = _check_count(states, "states", 1)
    w = width / 2
    bound = int(np.ceil(w * np.sqrt(depth) / (np.pi / 2)))
    if states > bound:
        raise SpecError(
            f"the well (depth {depth}, width {width}) holds {bound} bound states, got "
            f"states={states}",
            path="states",
        )

    def matching(energy: np.ndarray, parity: int) -> np.ndarray:
        k, kap = np.sqrt(energy), np.sqrt(np.maximum(depth - energy, 0.0))
        if parity == 0:
            return kap * np.cos(k * w) - k * np.sin(k * w)
        return kap * np.sin(k * w) + k * np.cos(k * w)

    # A root at E = depth exactly (w sqrt(depth) a multiple of pi / 2) is not bound: stop short.
    hi = depth * (1 - 1e-14)
    found = _alternating(
        lambda e: matching(e, 0), lambda e: matching(e, 1), 0.0, hi, states, np.pi / width
    )
    if found.size < states:
        raise SpecError(
            f"the well (depth {depth}, width {width}) holds {found.size} bound states, got "
            f"states={states}",
            path="states",
        )
    return found


# --------------------------------------------------------------------------------------------
# Nonlinear Schrödinger equation
# --------------------------------------------------------------------------------------------

# Yoshida (1990, "Construction of higher order symplectic integrators", Phys. Lett. A 150:262)
# fourth-order composition of the symmetric Strang step: weights w1, w0, w1.
_YOSHIDA_W1 = 1.0 / (2.0 - 2.0 ** (1.0 / 3.0))
_YOSHIDA_W0 = -(2.0 ** (1.0 / 3.0)) * _YOSHIDA_W1
# Largest substep phase (k_max^2 / 2) |w| dt of the automatic step (see `_auto_dt`).
_MAX_PHASE = 0.8 * np.pi
# Cap of the automatic step: fourth order reaches ~2e-9 at dt = 2.5e-4 (see `nls_split_step`).
_MAX_DT = 2.5e-4
# Oversampling of a callable initial condition for its Fourier projection (see `_nls_project`).
_NLS_OVERSAMPLE = 64
_NLS_MIN_FINE = 2**18
# Default number of modes of `nls_reference`.
_NLS_REFERENCE_N = 512
_NLS_CHUNK = 1024


def _nls_project(
    h0: Callable[[np.ndarray], ArrayLike] | ArrayLike, x0: float, x1: float, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid values and FFT coefficients of the initial condition.

    Arguments:
        h0: a vectorised callable of x (real or complex values), or the n grid values.
        x0, x1: the periodic interval.
        n: number of grid points.

    Returns:
        (x, h0_grid, c): the grid, h0 on it (complex) and the FFT coefficients (numpy's scaling)
        the solver starts from.
    """
    length = x1 - x0
    x = x0 + length * np.arange(n) / n
    grid = np.asarray(h0(x) if callable(h0) else h0, dtype=np.complex128)
    if grid.shape != (n,) or not np.all(np.isfinite(grid)):
        raise SpecError(f"h0 must give {n} finite grid values, got shape {grid.shape}", path="h0")
    if not callable(h0):
        return x, grid, np.fft.fft(grid)
    # Truncate the Fourier series instead of interpolating samples: the benchmark's periodic
    # extension has a kink at x = +-5, whose O(n^-2) aliasing would pollute every resolved mode.
    m = max(_NLS_OVERSAMPLE * n, _NLS_MIN_FINE)
    fine = np.asarray(h0(x0 + length * np.arange(m) / m), dtype=np.complex128)
    if fine.shape != (m,) or not np.all(np.isfinite(fine)):
        raise SpecError("h0 must map an array of shape (m,) to finite values of that shape", "h0")
    full = np.fft.fft(fine) * (n / m)
    c = np.zeros(n, dtype=np.complex128)
    half = (n - 1) // 2  # modes -half..half; an even n's Nyquist mode cannot hold both +-n/2
    c[: half + 1] = full[: half + 1]
    c[n - half :] = full[m - half :]
    return x, grid, c


def _auto_dt(n: int, length: float, order: int) -> float:
    """Default time step: min(2.5e-4, 0.8 pi / ((k_max^2 / 2) |w|)), k_max = pi n / length.

    Splitting methods for NLS have step-size resonances: four-wave couplings oscillate with
    frequencies up to k_max^2, and a substep |w| dt whose phase (k_max^2 / 2) |w| dt passes pi
    resonates with them. For the kinked benchmark data the high modes carry k^-2 amplitudes and
    a resonant step leaves errors there (measured in `nls_split_step`), so the step stays below
    0.8 of that limit; w is Yoshida's largest weight |w0| = 1.70 for order 4, 1 for Strang.

    Arguments:
        n: number of modes.
        length: the period.
        order: 2 or 4.

    Returns:
        the time step.
    """
    k_max = np.pi * n / length
    weight = abs(_YOSHIDA_W0) if order == 4 else 1.0
    return min(_MAX_DT, _MAX_PHASE / (0.5 * k_max**2 * weight))


def _nls_step(
    c: np.ndarray, t: np.ndarray, length: float, n: int, dt: float, order: int
) -> np.ndarray:
    """Advance FFT coefficients by split-step Fourier and record them at the requested times.

    One Strang step of size tau is N(tau/2) L(tau) N(tau/2) with L the exact linear flow
    exp(-i k^2 tau / 2) in Fourier space and N the exact nonlinear flow h exp(i |h|^2 tau)
    in physical space (|h| is invariant under it). Consecutive N flows commute and merge, so a
    Yoshida step costs three linear flows and three nonlinear ones.

    Arguments:
        c: FFT coefficients at t = 0.
        t: output times, non-negative and non-decreasing.
        length: the period.
        n: number of modes.
        dt: largest time step.
        order: 2 (Strang) or 4 (Yoshida composition).

    Returns:
        complex array (len(t), n) of the FFT coefficients at the times t.
    """
    k = 2.0 * np.pi / length * np.fft.fftfreq(n, 1.0 / n)
    weights = [_YOSHIDA_W1, _YOSHIDA_W0, _YOSHIDA_W1] if order == 4 else [1.0]
    # Nonlinear flow lengths between linear ones (in units of the step): w1/2, (w1+w0)/2, ...
    halves = [0.5 * weights[0]]
    halves += [0.5 * (weights[i] + weights[i + 1]) for i in range(len(weights) - 1)]
    out = np.empty((t.size, n), dtype=np.complex128)
    cache: dict[float, list[np.ndarray]] = {}
    t_now = 0.0
    for i, t_next in enumerate(t):
        span = t_next - t_now
        if span > 0:
            n_steps = int(np.ceil(span / dt * (1 - 1e-12)))
            tau = span / n_steps
            key = float(f"{tau:.12e}")
            if key not in cache:
                cache[key] = [np.exp(-0.5j * k**2 * w * tau) for w in weights]
            linear = cache[key]
            h = np.fft.ifft(c)
            for step in range(n_steps):
                for j, (half, lin) in enumerate(zip(halves, linear)):
                    # The last half-flow of a step merges with the first of the next one.
                    frac = 2 * half if (j == 0 and step > 0) else half
                    h = h * np.exp(1j * frac * tau * (h.real**2 + h.imag**2))
                    h = np.fft.ifft(lin * np.fft.fft(h))
            h = h * np.exp(1j * halves[0] * tau * (h.real**2 + h.imag**2))
            c = np.fft.fft(h)
            t_now = t_next
        out[i] = c
    return out


def _check_nls_args(
    t_eval: ArrayLike, x_range: tuple[float, float], n: int, dt: float | None, order: int
) -> tuple[np.ndarray, float, float, int, float]:
    """Validate the `nls_split_step` arguments.

    Arguments:
        t_eval, x_range, n, dt, order: as in `nls_split_step`.

    Returns:
        (t, x0, x1, n, dt): times as float64, the interval, n as int and the step.
    """
    if isinstance(n, bool) or int(n) != n or n < 4:
        raise SpecError(f"expected an integer number of grid points n >= 4, got {n!r}", path="n")
    n = int(n)
    x0, x1 = (float(v) for v in x_range)
    if not (np.isfinite(x0) and np.isfinite(x1) and x1 > x0):
        raise SpecError(f"expected a finite interval x0 < x1, got {x_range!r}", path="x_range")
    if order not in (2, 4):
        raise SpecError(f"expected order 2 (Strang) or 4 (Yoshida), got {order!r}", path="order")
    if dt is None:
        dt = _auto_dt(n, x1 - x0, order)
    if not (np.isfinite(dt) and dt > 0):
        raise SpecError(f"expected a positive time step, got dt={dt!r}", path="dt")
    t = np.atleast_1d(np.asarray(t_eval, dtype=np.float64))
    if t.ndim != 1 or t.size == 0:
        raise SpecError("t_eval must be a non-empty 1-D sequence of times", path="t_eval")
    if not np.all(np.isfinite(t)) or t[0] < 0 or np.any(np.diff(t) < 0):
        raise SpecError("t_eval must be finite, non-negative and non-decreasing", path="t_eval")
    return t, x0, x1, n, float(dt)


def nls_split_step(
    h0: Callable[[np.ndarray], ArrayLike] | ArrayLike,
    *,
    t_eval: ArrayLike,
    x_range: tuple[float, float] = (-5.0, 5.0),
    n: int = 512,
    dt: float | None = None,
    order: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve i h_t + 0.5 h_xx + |h|^2 h = 0, periodic in x, by split-step Fourier.

    The symmetric (Strang) splitting N(dt/2) L(dt) N(dt/2) of the exact linear (Fourier) and
    nonlinear (pointwise phase) flows is second order (Strang 1968; for NLS Weideman & Herbst
    1986, "Split-step methods for the solution of the nonlinear Schrödinger equation", SIAM J.
    Numer. Anal. 23:485-507); ``order=4`` composes it with Yoshida's (1990) weights for fourth
    order. Both conserve the discrete mass sum |h|^2 dx exactly (up to rounding) and the
    Hamiltonian int 0.5 |h_x|^2 - 0.5 |h|^4 dx up to their splitting error. The step is shrunk
    in each interval between requested times so that every time is hit exactly. A callable
    ``h0`` is projected by truncating its Fourier series (computed on max(64 n, 2^18) points);
    an array is taken as grid values. At t = 0 the initial grid values are returned.

    Time accuracy, measured (max |h| error over the grid at t = pi/2, order 4). Benchmark,
    n = 512, against dt = pi/2 / 50000: dt = 1e-3 gives 4.1e-6, 5e-4 2.5e-7, 2.5e-4 1.3e-7,
    1.25e-4 9.5e-10, 6.25e-5 2.4e-10. The irregular steps are resonant: at dt = 2.5e-4 (Yoshida
    substep phase 5.5 for k_max = 161) the error sat in the modes |k| > 200 (index), 2e-8 each,
    while the modes below 200 were within 2e-10. Strang (order 2) needs dt = 5e-5 for 4e-7, so
    order 4 is the default. The default dt is min(2.5e-4, 0.8 pi / ((k_max^2 / 2) |w|)) with w
    the largest substep weight: 1.14e-4 at n = 512 (8.6e-10, 1.7 s on one core), 2.5e-4 at
    n = 256 (0.6 s). On [-24, 24] with n = 1024 and dt = 2.5e-4 the exact N = 2 soliton (module
    docstring) is reproduced to 2.3e-9 at t = pi/4 and pi/2 (1.1 s). Conservation over
    [0, pi/2] on the benchmark: the mass varies by 5e-12 (n = 256) and 3e-11 (n = 512, rounding
    over 2e4 steps), the Hamiltonian by 3.7e-9 (n = 256) and 2.3e-10 (n = 512). The measured
    orders (step halving at n = 128) are 2.000 and 3.97.

    Space: see `nls_reference`; the kink of the benchmark's periodic data limits the
    convergence to about n^-1.5.

    Arguments:
        h0: initial condition, a vectorised callable of x or an array of the n grid values.
        t_eval: output times, non-negative and non-decreasing.
        x_range: the periodic interval (x0, x1).
        n: number of grid points (and Fourier modes).
        dt: largest time step; None for the default above.
        order: 2 (Strang) or 4 (Yoshida composition of Strang steps).

    Returns:
        (x, h): the grid x0 + k (x1 - x0) / n, k = 0..n-1, and the complex solution of shape
        (len(t_eval), n) at the requested times.
    """
    t, x0, x1, n, dt = _check_nls_args(t_eval, x_range, n, dt, order)
    x, grid, c = _nls_project(h0, x0, x1, n)
    h = np.fft.ifft(_nls_step(c, t, x1 - x0, n, dt, order), axis=1)
    h[t == 0] = grid
    return x, h


def _fourier_basis(theta: np.ndarray, n: int) -> np.ndarray:
    """Rows exp(i k theta) for the FFT's modes k, the Nyquist mode of an even n as cos.

    The trigonometric interpolant of n grid values uses the modes -n/2 < k < n/2 and, for an even
    n, the Nyquist coefficient split evenly between +-n/2, i.e. times cos(n/2 theta), which is
    real on real data and interpolates the grid values.

    Arguments:
        theta: angles 2 pi (x - x0) / length, shape (m,).
        n: number of modes.

    Returns:
        complex array (m, n) in numpy's FFT mode order.
    """
    modes = np.fft.fftfreq(n, 1.0 / n)
    basis = np.exp(1j * theta[:, None] * modes)
    if n % 2 == 0:
        basis[:, n // 2] = np.cos(n / 2 * theta)
    return basis


def _benchmark_h0(x: np.ndarray) -> np.ndarray:
    """The benchmark's initial condition 2 sech(x) (Raissi et al. 2019)."""
    return 2.0 / np.cosh(x)


def nls_reference(x: ArrayLike, t: ArrayLike, **kwargs) -> np.ndarray:
    """Reference solution of the NLS PINN benchmark at arbitrary (x, t).

    The benchmark is i h_t + 0.5 h_xx + |h|^2 h = 0, periodic on [-5, 5], h(x, 0) = 2 sech(x)
    (Raissi et al. 2019). It is solved by `nls_split_step` at the distinct requested times and
    evaluated at each x by summing the Fourier series of the grid solution (its trigonometric
    interpolant, the Nyquist mode split evenly between +-n/2). t = 0 gives the exact initial
    condition.

    Accuracy, measured at t = pi/4 and pi/2 (max over the grid): the default time step is good
    to ~1e-9 (`nls_split_step`), so space dominates. The periodic extension of 2 sech x has a
    derivative jump of 0.027 at x = +-5, its Fourier coefficients decay like k^-2 and the
    spectral convergence is lost: against n = 1024, n = 128 is off by 5.6e-5, n = 256 by 1.7e-5
    and the default n = 512 by 5.9e-6 (4.4e-6 in |h| at t = pi/2); n = 256 and 512 differ by
    1.6e-5 in |h| at t = pi/2. (Raissi et al.'s data come from 256 Fourier modes, Chebfun.)
    The box is not the whole line: |h(0, pi/2)| = 2.0022625 (n = 512: 2.00226270, n = 1024:
    2.00226249) instead of the N = 2 soliton's 2, and |h(0, pi/4)| = 3.998782 instead of 4; the
    soliton formula is off by 2.6e-2 at t = pi/2. The 201 x 256 grid of the benchmark data takes
    about 2 s (one solve with n = 512 up to t = pi/2 dominates); extra distinct times cost the
    steps needed to land on them, so request times on a grid rather than at scattered values.

    Arguments:
        x: positions; broadcast against ``t``; values outside [-5, 5] are taken periodically.
        t: times, non-negative.
        **kwargs: solver settings as in `nls_split_step`: ``n`` (default 512), ``dt`` (None:
            automatic), ``order`` (4).

    Returns:
        complex128 array of h(x, t) with the broadcast shape of ``x`` and ``t``.
    """
    unknown = set(kwargs) - {"n", "dt", "order"}
    if unknown:
        raise SpecError(
            f"unexpected arguments {sorted(unknown)}; allowed: n, dt, order "
            "(h0, t_eval and x_range are fixed by the benchmark: call nls_split_step instead)",
            path=sorted(unknown)[0],
        )
    xb, tb = broadcast_points(x, t)
    out = np.empty(xb.size, dtype=np.complex128)
    if out.size == 0:
        return out.reshape(xb.shape)
    xf, tf = xb.ravel(), tb.ravel()
    t_unique, t_index = np.unique(tf, return_inverse=True)
    x0, x1 = -5.0, 5.0
    t_unique, x0, x1, n, dt = _check_nls_args(
        t_unique,
        (x0, x1),
        kwargs.get("n", _NLS_REFERENCE_N),
        kwargs.get("dt"),
        kwargs.get("order", 4),
    )
    _, _, c0 = _nls_project(_benchmark_h0, x0, x1, n)
    coeffs = _nls_step(c0, t_unique, x1 - x0, n, dt, order=kwargs.get("order", 4)) / n
    # Reduce modulo the period first: the phase k theta stays below 2 pi k (~1e-12 accuracy).
    theta = 2.0 * np.pi * np.mod(xf - x0, x1 - x0) / (x1 - x0)
    x_unique, x_index = np.unique(theta, return_inverse=True)
    if x_unique.size * t_unique.size <= 2 * xf.size:
        # Grid-like request (few distinct x): one basis row per distinct x, a matrix product
        # against all times, then gather.
        table = np.empty((x_unique.size, t_unique.size), dtype=np.complex128)
        for lo in range(0, x_unique.size, _NLS_CHUNK):
            table[lo : lo + _NLS_CHUNK] = _fourier_basis(x_unique[lo : lo + _NLS_CHUNK], n) @ (
                coeffs.T
            )
        out = table[x_index, t_index]
    else:
        # Scattered points: evaluate each point against its own time's coefficients.
        for lo in range(0, xf.size, _NLS_CHUNK):
            sl = slice(lo, lo + _NLS_CHUNK)
            out[sl] = np.sum(_fourier_basis(theta[sl], n) * coeffs[t_index[sl]], axis=1)
    at_zero = tf == 0
    out[at_zero] = _benchmark_h0(x0 + np.mod(xf[at_zero] - x0, x1 - x0))
    return out.reshape(xb.shape)
