"""Fused covariate likelihood of the rows path: the link and the chain rule inside the kernel.

Continuous covariates give row ``i`` the parameters ``θ_{i,k} = base_k · exp(s_k z_i'γ_k)``
(the links of :data:`clvbayes.models.covariate.COVARIATE_LINKS`; ``s_k = ±1``, ``γ_k`` the
coefficients of parameter ``k`` on columns ``lo_k..hi_k`` of one design matrix ``Z``).
:func:`covariate_rows_loglik_grad` returns ``Σ_i w_i ln L(θ_i | x_i, t_x_i, T_i)`` and its
gradient in the four base parameters and in every coefficient, by the chain rule

    ∂/∂base_k = Σ_i w_i g_{i,k} exp(s_k η_{i,k}),    ∂/∂γ_{k,j} = Σ_i w_i g_{i,k} θ_{i,k} s_k Z_{i,lo_k+j},

(``g_{i,k} = ∂ ln L_i / ∂θ_{i,k}`` from the family's scalar core), so no per-row vector
leaves the kernel (the graph of :meth:`CovariatePurchaseModel._rows_loglik` before built
``θ_i`` and the chain rule as PyTensor vector ops over the rows).

``_loglik_grad_one`` is bound to BG/NBD (Fader, Hardie & Lee 2005, eq. 6) here and rebound
per family by :func:`clvbayes.kernels.build.rebuild`, as in :mod:`clvbayes.kernels.cells`.
Sums are taken per fixed row chunk (:data:`~clvbayes.kernels.special.CHUNK`) and the chunks
added in order (:func:`~clvbayes.kernels.special.sum_chunks`): the same bits for any thread
count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels import bgnbd as _bg
from clvbayes.kernels.special import CHUNK, PARALLEL_MIN_ROWS, sum_chunks

__all__ = ["covariate_rows_loglik_grad"]

_loglik_grad_one = _bg.bgnbd_loglik_grad_one


@njit(cache=True, fastmath=False, error_model="numpy")
def _fused_chunk(base, gam, Z, lo, hi, off, sign, x, t_x, T, w, r0, r1, out):
    """Rows ``r0..r1``: ``out[0]`` the weighted log-likelihood, ``out[1+k]`` the base
    gradients, ``out[5+j]`` the coefficient gradients, ``out[5+G]`` 1.0 when a row's
    parameters leave ``(0, inf)``."""
    G = gam.shape[0]
    for j in range(out.shape[0]):
        out[j] = 0.0
    th = np.empty(4)
    ex = np.empty(4)
    for i in range(r0, r1):
        for k in range(4):
            eta = 0.0
            for j in range(hi[k] - lo[k]):
                eta += Z[i, lo[k] + j] * gam[off[k] + j]
            e = math.exp(sign[k] * eta)
            ex[k] = e
            v = base[k] * e
            th[k] = v
            if not (v > 0.0 and v < math.inf):
                out[5 + G] = 1.0
        ll, g0, g1, g2, g3 = _loglik_grad_one(th[0], th[1], th[2], th[3], x[i], t_x[i], T[i])
        wi = w[i]
        out[0] += wi * ll
        for k in range(4):
            gk = wi * (g0 if k == 0 else g1 if k == 1 else g2 if k == 2 else g3)
            out[1 + k] += gk * ex[k]
            if hi[k] > lo[k]:
                c = gk * th[k] * sign[k]
                for j in range(hi[k] - lo[k]):
                    out[5 + off[k] + j] += c * Z[i, lo[k] + j]


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _fused_par(base, gam, Z, lo, hi, off, sign, x, t_x, T, w, part):
    n = x.shape[0]
    for c in prange(part.shape[0]):
        _fused_chunk(base, gam, Z, lo, hi, off, sign, x, t_x, T, w, c * CHUNK, min(n, (c + 1) * CHUNK), part[c])


@njit(cache=True, fastmath=False, error_model="numpy")
def covariate_rows_loglik_grad(base: np.ndarray, gam: np.ndarray, Z: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                               sign: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                               weights: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``Σ_i w_i ln L(base · exp(s Z_i γ) | row i)`` and its gradient in ``base`` and ``γ``.

    Parameters
    ----------
    base : np.ndarray
        Shape (4,): the base parameters in the family's order.
    gam : np.ndarray
        The coefficients of the four parameters concatenated in order: parameter ``k`` owns
        ``hi[k] - lo[k]`` entries (none when unlinked).
    Z : np.ndarray
        Shape (n, K), C-contiguous float64: the design rows (both sides' columns).
    lo, hi : np.ndarray
        int64 shape (4,): parameter ``k``'s columns of ``Z`` are ``lo[k]:hi[k]``.
    sign : np.ndarray
        Shape (4,): ``±1``, the sign of the exponent of each link.
    x, t_x, T, weights : np.ndarray
        float64 rows (weights: multiplicities of compressed rows).

    Returns
    -------
    value : float
        The total (``-inf`` when a row's parameters leave ``(0, inf)``; the gradients are NaN then).
    grad_base : np.ndarray
        Shape (4,).
    grad_gam : np.ndarray
        Shape like ``gam``.
    """
    n = x.shape[0]
    G = gam.shape[0]
    off = np.empty(4, dtype=np.int64)
    acc = 0
    for k in range(4):
        off[k] = acc
        acc += hi[k] - lo[k]
    if acc != G:
        raise ValueError("covariate_rows_loglik_grad: len(gam) != sum(hi - lo).")
    part = np.empty(((n + CHUNK - 1) // CHUNK, 6 + G))
    if n >= PARALLEL_MIN_ROWS:
        _fused_par(base, gam, Z, lo, hi, off, sign, x, t_x, T, weights, part)
    else:
        for c in range(part.shape[0]):
            _fused_chunk(base, gam, Z, lo, hi, off, sign, x, t_x, T, weights, c * CHUNK, min(n, (c + 1) * CHUNK),
                         part[c])
    tot = sum_chunks(part)
    bad = False
    for k in range(4):
        bad = bad or not (base[k] > 0.0 and base[k] < math.inf)
    if bad or tot[5 + G] > 0.0:
        return -math.inf, np.full(4, math.nan), np.full(G, math.nan)
    return tot[0], tot[1:5].copy(), tot[5:5 + G].copy()
