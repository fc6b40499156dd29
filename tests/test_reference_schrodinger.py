"""Tests of the trusted Schrödinger references (pinnkit.reference.schrodinger).

Eigenproblems -psi'' + V psi = E psi, psi(a) = psi(b) = 0 (Sarkar 2025, arXiv:2504.05367): the
finite-difference solver and its Richardson extrapolation against exact energies (infinite
well, harmonic oscillator) and against the exact matching-condition energies of the finite
well and the double well (barrier in a box), which are themselves checked against the textbook
tan/cot/coth forms. Nonlinear Schrödinger (Raissi et al. 2019): the split-step solver against the
exact N = 2 soliton on a wide box, its conservation laws and temporal order, and the benchmark's
spatial convergence and measured values.

The parameters of the finite well (depth 100, width 1, box [-2, 2]) and the double well
(barrier height 100, width 1, box [-2, 2]) are those of the PINN problem specs.
"""

from __future__ import annotations

import numpy as np
import pytest

from pinnkit.errors import SpecError
from pinnkit.reference.schrodinger import (
    barrier_box_energies,
    finite_well_energies,
    finite_well_energies_open,
    nls_reference,
    nls_split_step,
    schrodinger_fd,
    schrodinger_reference,
)

# Finite well: V = 0 for |x| < 0.5, 100 elsewhere in [-2, 2] (four levels below the barrier).
WELL = dict(depth=100.0, width=1.0, a=-2.0, b=2.0)
WELL_ENERGIES = [
    6.827141981875,
    26.951445478594,
    58.904615276174,
    96.309793347583,
    104.160233008156,
    105.801776690781,
]
# Double well: V = 100 for |x| < 0.5, 0 elsewhere in [-2, 2].
BARRIER = dict(height=100.0, width=1.0, a=-2.0, b=2.0)
BARRIER_ENERGIES = [3.852115212151, 3.852219235830, 15.367900145002, 15.368610853507]


def _well(x):
    return np.where(np.abs(x) < 0.5, 0.0, 100.0)


def _barrier(x):
    return np.where(np.abs(x) < 0.5, 100.0, 0.0)


def _free(x):
    return np.zeros_like(x)


# --------------------------------------------------------------------------------------------
# Finite differences and Richardson extrapolation
# --------------------------------------------------------------------------------------------


def test_infinite_well_fd_is_second_order():
    exact = (np.pi * np.arange(1, 4)) ** 2
    ns = np.array([100, 200, 400, 800])
    errors = np.array([schrodinger_fd(_free, 0, 1, states=3, n=n)[0] - exact for n in ns])
    assert np.all(errors < 0)  # (4 / h^2) sin^2(k h / 2) < k^2
    for err in errors.T:
        slope = np.polyfit(np.log(1.0 / ns), np.log(-err), 1)[0]
        assert abs(slope - 2) < 1e-3


def test_infinite_well_richardson_energies_and_wavefunctions():
    energies, x, psi = schrodinger_reference(_free, 0, 1, states=5)
    exact = (np.pi * np.arange(1, 6)) ** 2
    # Measured: 8e-16 (the FD error is an exact even series in h here).
    np.testing.assert_allclose(energies, exact, rtol=1e-9, atol=0)
    assert x.shape == (2001,) and psi.shape == (5, 2001)
    assert x[0] == 0 and x[-1] == 1
    # The discrete eigenvectors are samples of sqrt(2) sin(n pi x), first lobe positive.
    np.testing.assert_allclose(
        psi, np.sqrt(2) * np.sin(np.pi * np.arange(1, 6)[:, None] * x), rtol=0, atol=1e-10
    )


def test_harmonic_oscillator():
    energies, x, psi = schrodinger_reference(lambda x: x**2, -8, 8, states=6)
    # Measured: 2e-11 absolute (the wall at |x| = 8 shifts levels by ~exp(-64)).
    np.testing.assert_allclose(energies, 2 * np.arange(6) + 1, rtol=0, atol=1e-8)
    plain = schrodinger_fd(lambda x: x**2, -8, 8, states=6)[0]
    assert 1e-5 < np.abs(plain - (2 * np.arange(6) + 1)).max() < 1e-3  # plain FD: O(h^2)
    gram = np.trapezoid(psi[:, None, :] * psi[None, :, :], x, axis=-1)
    np.testing.assert_allclose(gram, np.eye(6), rtol=0, atol=1e-8)
    # Parity alternates, ground state even: psi_n(-x) = (-1)^n psi_n(x).
    for k in range(6):
        np.testing.assert_allclose(psi[k, ::-1], (-1) ** k * psi[k], rtol=0, atol=1e-8)


def test_finite_well_fd_with_jumps_matches_exact():
    exact = finite_well_energies(**WELL, states=6)
    np.testing.assert_allclose(exact, WELL_ENERGIES, rtol=1e-11)
    energies, x, psi = schrodinger_reference(_well, -2, 2, states=6, jumps=[-0.5, 0.5])
    # Measured: 4e-12 relative.
    np.testing.assert_allclose(energies, exact, rtol=1e-7, atol=0)
    gram = np.trapezoid(psi[:, None, :] * psi[None, :, :], x, axis=-1)
    np.testing.assert_allclose(gram, np.eye(6), rtol=0, atol=1e-8)
    # Sign convention: the first node above 1e-2 of the maximum is positive.
    for p in psi:
        first = np.argmax(np.abs(p) >= 1e-2 * np.abs(p).max())
        assert p[first] > 0
    # With the jumps on nodes the plain FD error is a regular c h^2 (slope 2 for every state).
    ns = np.array([400, 800, 1600])
    errors = np.array(
        [schrodinger_fd(_well, -2, 2, states=6, n=n, jumps=[-0.5, 0.5])[0] for n in ns]
    )
    for err in (errors - exact).T:
        slope = np.polyfit(np.log(1.0 / ns), np.log(np.abs(err)), 1)[0]
        assert abs(slope - 2) < 0.01


def test_finite_well_without_jump_handling_is_not_extrapolable():
    # The same grids with V sampled as given (V = 100 at the nodes x = +-0.5) shift the walls of
    # the well by h/2: an O(h) error that Richardson in h^2, h^4 cannot remove.
    exact = finite_well_energies(**WELL, states=3)
    energies = schrodinger_reference(_well, -2, 2, states=3)[0]
    assert np.abs(energies / exact - 1).max() > 1e-6


def test_finite_well_exact_solves_textbook_conditions():
    depth, w, d = 100.0, 0.5, 1.5
    for index, energy in enumerate(finite_well_energies(**WELL, states=6)):
        k = np.sqrt(energy)
        if energy < depth:
            kap = np.sqrt(depth - energy)
            outer = kap / np.tanh(kap * d)  # psi = sinh(kap (L - y)): -psi'/psi at y = w
        else:
            kp = np.sqrt(energy - depth)
            outer = kp / np.tan(kp * d)  # psi = sin(k' (L - y))
        inner = k * np.tan(k * w) if index % 2 == 0 else -k / np.tan(k * w)
        assert abs(inner - outer) < 1e-8 * (1 + abs(outer))


def test_open_well_matches_wide_box_and_textbook():
    open_e = finite_well_energies_open(100.0, 1.0, states=4)
    boxed = finite_well_energies(100.0, 1.0, -10.0, 10.0, states=4)
    np.testing.assert_allclose(open_e, boxed, rtol=1e-12)
    # The narrow box [-2, 2] raises the weakly bound fourth level (E = 96.287 -> 96.310).
    assert finite_well_energies(**WELL, states=4)[3] - open_e[3] > 0.02
    for index, energy in enumerate(open_e):
        k, kap = np.sqrt(energy), np.sqrt(100.0 - energy)
        lhs = k * np.tan(k * 0.5) if index % 2 == 0 else -k / np.tan(k * 0.5)
        assert abs(lhs - kap) < 1e-8 * kap
    with pytest.raises(SpecError, match="holds 4 bound states"):
        finite_well_energies_open(100.0, 1.0, states=5)


def test_barrier_box_pair_and_splitting():
    exact = barrier_box_energies(**BARRIER, states=4)
    np.testing.assert_allclose(exact, BARRIER_ENERGIES, rtol=1e-11)
    split = exact[1] - exact[0]
    # Near-degenerate lowest pair (tunnelling through the barrier), well below the next pair.
    assert 1e-4 < split < 1.1e-4 and split < 1e-4 * (exact[2] - exact[1])
    energies, x, psi = schrodinger_reference(_barrier, -2, 2, states=4, jumps=[-0.5, 0.5])
    # Measured: 2e-11 relative in the splitting.
    assert abs((energies[1] - energies[0]) / split - 1) < 1e-6
    np.testing.assert_allclose(energies, exact, rtol=1e-9)
    # Parity to 1e-10 (measured 7e-12): the Rayleigh-Ritz step has separated the pair, which the
    # tridiagonal solver alone mixes at 3e-7.
    np.testing.assert_allclose(psi[0, ::-1], psi[0], rtol=0, atol=1e-10)  # even, lobes positive
    np.testing.assert_allclose(psi[1, ::-1], -psi[1], rtol=0, atol=1e-10)  # odd, left lobe positive
    assert psi[0].min() > -1e-12 and psi[1][x < 0].min() > -1e-12


def test_jump_grid_selection_and_errors():
    # 3/8 of [-2, 2] needs n divisible by 8: the coarsest target 500 becomes 504.
    _, x, _ = schrodinger_reference(_well, -2, 2, states=1, n=2000, jumps=[0.5, -0.5])
    assert x.size == 2001
    with pytest.raises(SpecError, match="node"):
        schrodinger_fd(_well, -2, 2, n=1001, jumps=[-0.5, 0.5])
    with pytest.raises(SpecError, match="jump"):
        schrodinger_reference(_well, -2, 2, n=400, jumps=[1 / np.pi])
    with pytest.raises(SpecError, match="in \\[-2.0, 2.0\\]"):
        schrodinger_fd(_well, -2, 2, jumps=[3.0])
    with pytest.raises(SpecError, match="a < b"):
        schrodinger_fd(_free, 1, 0)
    with pytest.raises(SpecError, match="states >= 1"):
        schrodinger_fd(_free, 0, 1, states=0)
    with pytest.raises(SpecError, match="too coarse"):
        schrodinger_reference(_free, 0, 1, states=5, n=16, levels=3)
    with pytest.raises(SpecError, match="shape"):
        schrodinger_fd(lambda x: np.zeros(3), 0, 1, n=10)
    with pytest.raises(SpecError, match="width < b - a"):
        finite_well_energies(100.0, 4.0, -2, 2, states=1)
    with pytest.raises(SpecError, match="positive finite depth"):
        finite_well_energies(-1.0, 1.0, -2, 2, states=1)


# --------------------------------------------------------------------------------------------
# Nonlinear Schrödinger
# --------------------------------------------------------------------------------------------


def _sech2(x):
    return 2.0 / np.cosh(x)


def _soliton2(x, t):
    """The whole-line N = 2 soliton with h(x, 0) = 2 sech x (Satsuma & Yajima 1974)."""
    num = np.cosh(3 * x) + 3 * np.exp(4j * t) * np.cosh(x)
    return 4 * np.exp(0.5j * t) * num / (np.cosh(4 * x) + 4 * np.cosh(2 * x) + 3 * np.cos(4 * t))


def _invariants(h, length):
    """Discrete mass sum |h|^2 dx and Hamiltonian int 0.5 |h_x|^2 - 0.5 |h|^4 (spectral h_x)."""
    n = h.shape[-1]
    c = np.fft.fft(h, axis=-1) / n
    k = 2 * np.pi / length * np.fft.fftfreq(n, 1.0 / n)
    mass = length / n * np.sum(np.abs(h) ** 2, axis=-1)
    kinetic = 0.5 * length * np.sum(k**2 * np.abs(c) ** 2, axis=-1)
    return mass, kinetic - 0.5 * length / n * np.sum(np.abs(h) ** 4, axis=-1)


def test_nls_matches_exact_two_soliton_on_wide_box():
    # On [-24, 24] the periodic images are ~2 sech(24) = 1.5e-10 away: the whole-line soliton.
    t = np.array([np.pi / 4, np.pi / 2])
    x, h = nls_split_step(_sech2, t_eval=t, x_range=(-24, 24), n=1024)
    # Measured: 2.1e-9 and 1.8e-9 (dt = 2.5e-4, fourth order).
    np.testing.assert_allclose(h, _soliton2(x, t[:, None]), rtol=0, atol=1e-8)
    mass, ham = _invariants(h, 48.0)
    np.testing.assert_allclose(mass, 8.0, rtol=1e-11)  # int 4 sech^2 = 8 (measured 2.7e-12)
    np.testing.assert_allclose(ham, -28 / 3, rtol=1e-9)  # 0.5 (8/3) - 0.5 (64/3)


def test_nls_benchmark_conservation():
    t = np.linspace(0, np.pi / 2, 6)[1:]
    _, h = nls_split_step(_sech2, t_eval=t, n=256)
    mass, ham = _invariants(h, 10.0)
    assert np.ptp(mass) < 1e-11  # exact up to rounding (measured 3e-12)
    assert np.ptp(ham) < 1e-8  # splitting error, carried by the kink's high modes


def test_nls_temporal_order():
    # n = 128 keeps (k_max^2 / 2) |w| dt below the resonance limit for all these steps.
    for order, dts in ((2, [1e-3, 5e-4, 2.5e-4]), (4, [2e-3, 1e-3, 5e-4])):
        runs = [
            nls_split_step(_sech2, t_eval=[np.pi / 2], n=128, dt=dt, order=order)[1][0]
            for dt in dts
        ]
        e1, e2 = np.abs(runs[0] - runs[1]).max(), np.abs(runs[1] - runs[2]).max()
        assert abs(np.log2(e1 / e2) - order) < 0.2


def test_nls_benchmark_spatial_convergence_and_values():
    t = [np.pi / 4, np.pi / 2]
    x256, h256 = nls_split_step(_sech2, t_eval=t, n=256)
    x512, h512 = nls_split_step(_sech2, t_eval=t, n=512)
    np.testing.assert_array_equal(x256, x512[::2])
    # Measured: max ||h_256| - |h_512|| = 1.6e-5 at t = pi/2 (1.7e-5 at pi/4); 512 vs 1024:
    # 4.4e-6. The kink of the periodic data at x = +-5 limits the convergence to ~n^-1.5.
    diff = np.abs(np.abs(h256) - np.abs(h512[:, ::2])).max(axis=1)
    assert np.all(diff < 3e-5) and np.all(diff > 3e-6)
    # The periodic box is not the whole line: |h(0, pi/2)| = 2.0022625, not the soliton's 2,
    # and the peak at t = pi/4 is 3.998782, not 4 (n = 1024 gives 2.00226249, 3.99878152).
    centre = np.argmin(np.abs(x512))
    assert abs(np.abs(h512[1, centre]) - 2.0022625) < 1e-6
    assert abs(np.abs(h512[0, centre]) - 3.998782) < 1e-5


def test_nls_reference_interpolates_and_broadcasts():
    x_fine = -5 + 10 * np.arange(256) / 256
    _, grid = nls_split_step(_sech2, t_eval=[0.5], n=128)
    ref = nls_reference(x_fine, 0.5, n=128)
    assert ref.shape == (256,) and ref.dtype == np.complex128
    np.testing.assert_allclose(ref[::2], grid[0], rtol=0, atol=1e-12)
    _, finer = nls_split_step(_sech2, t_eval=[0.5], n=256)
    assert np.abs(ref[1::2] - finer[0][1::2]).max() < 2e-4  # the n = 128 spatial error
    # Broadcasting, periodicity and the exact initial condition.
    x = np.array([[-1.0], [0.25], [9.0]])
    t = np.array([0.0, 0.5, 1.0])
    vals = nls_reference(x, t, n=128)
    assert vals.shape == (3, 3)
    np.testing.assert_allclose(vals[:, 0], 2 / np.cosh(x[:, 0] - np.array([0, 0, 10])))
    np.testing.assert_allclose(vals[2], nls_reference(-1.0, t, n=128), atol=1e-12)
    with pytest.raises(SpecError, match="unexpected"):
        nls_reference(0.0, 0.1, eps=1)
    with pytest.raises(SpecError, match="non-negative"):
        nls_reference(0.0, -0.1)
    with pytest.raises(SpecError, match="order 2"):
        nls_split_step(_sech2, t_eval=[0.1], order=3)
