"""Sparse Jacobians by colouring, and a direct sparse Gauss–Newton solve.

A grid model's residual at a node depends only on the values at nearby nodes (a stencil), so
its Jacobian ``J`` is sparse. Give each parameter a colour such that no residual row depends
on two parameters of the same colour (nodes of one colour lie a stencil width apart); then one
Jacobian–vector product with the indicator of a colour returns, in each row, the one entry of
that colour — ``C`` products recover all of ``J`` (Curtis, Powell & Reid 1974), where ``C``
is the number of colours, not of parameters.

Which column each entry belongs to is read off further products with the same seed weighted
by the column index (in base-``B`` digits, so the ratio is exact even in float32): with one
contributing column per row and colour, ``(J (d ∘ e_c))_r / (J e_c)_r = d_j``. So the
colouring is the only structure the model states (`jacobian_colours`); rows need no location.

The Levenberg–Marquardt step ``(JᵀJ + μI) δ = -Jᵀr`` is then solved by a sparse direct
factorisation (SciPy's SuperLU on the host, through `jax.pure_callback`: the same code runs
with the arrays on a GPU), never forming a dense matrix.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
import scipy.sparse.linalg

DIGIT = 1024  # column labels in base-1024 digits: each ratio is at most 1024 (exact in f32)


def sparse_jacobian(jvp, colours: np.ndarray, dtype):
    """The Jacobian of a linear map ``jvp`` (flat ``(P,)`` -> ``(R,)``) whose columns of one
    colour never share a row, as ``(rows, cols, values)`` arrays of shape ``(C, R)``: in row
    ``r``, colour ``c`` holds at most one entry, at column ``cols[c, r]`` (``values`` 0 where
    none)."""
    colours = np.asarray(colours)
    size = colours.size
    n_colours = int(colours.max()) + 1
    digits = max(1, math.ceil(math.log(size + 1) / math.log(DIGIT)))
    index = np.arange(size)
    labels = np.stack([(index // DIGIT**k) % DIGIT + 1 for k in range(digits)])  # (k, P)
    colour_of = jnp.asarray(colours)
    labels = jnp.asarray(labels, dtype)

    def per_colour(c):
        unit = (colour_of == c).astype(dtype)
        value = jvp(unit)
        tagged = jax.vmap(lambda lab: jvp(unit * lab))(labels)  # (k, R)
        safe = jnp.where(value == 0, 1.0, value)
        digit = jnp.rint(tagged / safe).astype(jnp.int64 if size > 2**31 - 1 else jnp.int32) - 1
        scale = jnp.asarray([DIGIT**k for k in range(digits)], digit.dtype)
        col = jnp.sum(digit * scale[:, None], axis=0)
        return jnp.where(value == 0, 0, col), value

    cols, values = jax.lax.map(per_colour, jnp.arange(n_colours))
    rows = jnp.broadcast_to(jnp.arange(values.shape[1]), values.shape)
    return rows, cols, values


def _host_solve(rows, cols, values, r, mu, size: int):
    rows, cols, values = (np.asarray(a).reshape(-1) for a in (rows, cols, values))
    keep = values != 0
    jac = scipy.sparse.csr_matrix(
        (values[keep].astype(np.float64), (rows[keep], cols[keep])), shape=(r.shape[0], size)
    )
    normal = (jac.T @ jac + float(mu) * scipy.sparse.identity(size, format="csr")).tocsc()
    rhs = -(jac.T @ np.asarray(r, np.float64))
    delta = scipy.sparse.linalg.spsolve(normal, rhs)
    return np.asarray(delta, dtype=np.asarray(r).dtype)


def direct_step(jvp, r, colours: np.ndarray, mu):
    """``δ = -(JᵀJ + μI)⁻¹ Jᵀ r`` with ``J`` the sparse Jacobian of ``jvp`` (flat in, flat
    out), factorised directly."""
    size = int(np.asarray(colours).size)
    rows, cols, values = sparse_jacobian(jvp, colours, r.dtype)
    shape = jax.ShapeDtypeStruct((size,), r.dtype)
    return jax.pure_callback(
        lambda *a: _host_solve(*a, size=size), shape, rows, cols, values, r, mu
    )
