"""Cohort tracking of expected repeat purchases (Numba kernels).

Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2),
Figure 3 (FHL below): the expected cumulative repeat transactions of a cohort by calendar
time τ are ``Σ_i E[X(τ - s_i)]``, the unconditional expectation of eq. (9) at each
customer's age ``τ - s_i`` (``s_i`` the first purchase, ``E[X(t)] = 0`` for ``t <= 0``).

Customers share first-purchase days and the period ends are days too, so the ages that
occur are a short list of distinct day counts (CDNOW: at most ~550). The kernels therefore
evaluate eq. (9) once per (parameter draw, distinct age) and then sum, per draw and period,
the weighted values of the distinct first-purchase days: ``D x A`` evaluations of
:func:`expected_purchases_one` and ``D x K x F`` additions, instead of ``D x K x N``
evaluations. Each output element is a sequential sum that depends only on its own inputs,
so results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from clvbayes.kernels.bgnbd_predict import expected_purchases_one

__all__ = ["expected_purchases_grid", "cohort_cumulative_purchases"]


@njit(cache=True, error_model="numpy", parallel=True)
def expected_purchases_grid(
    r: np.ndarray, alpha: np.ndarray, a: np.ndarray, b: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """E[X(t_j)] (FHL eq. (9)) for every parameter draw ``d`` and age ``t_j``.

    Parameters
    ----------
    r, alpha, a, b : ndarray of float64, shape (D,)
        BG/NBD parameters per draw (> 0).
    t : ndarray of float64, shape (A,)
        Ages (time since the first purchase); values <= 0 give 0.

    Returns
    -------
    ndarray of float64, shape (D, A)
    """
    nd = r.shape[0]
    na = t.shape[0]
    out = np.empty((nd, na))
    for k in prange(nd * na):
        d = k // na
        j = k % na
        out[d, j] = expected_purchases_one(r[d], alpha[d], a[d], b[d], t[j]) if t[j] > 0.0 else 0.0
    return out


@njit(cache=True, error_model="numpy", parallel=True)
def cohort_cumulative_purchases(e: np.ndarray, index: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted cohort sums ``C[d, k] = Σ_f w_f e[d, index[f, k]]``.

    Parameters
    ----------
    e : ndarray of float64, shape (D, A)
        Expected purchases per draw and distinct age (:func:`expected_purchases_grid`).
    index : ndarray of int64, shape (F, K)
        Position in ``e``'s second axis of the age of first-purchase group ``f`` at the end of
        period ``k``.
    weights : ndarray of float64, shape (F,)
        Number of customers in each first-purchase group.

    Returns
    -------
    ndarray of float64, shape (D, K)
        Expected cumulative repeat purchases of the cohort at each period end, per draw.
    """
    nd = e.shape[0]
    nf, nk = index.shape
    out = np.empty((nd, nk))
    for d in prange(nd):
        for k in range(nk):
            s = 0.0
            for f in range(nf):
                s += weights[f] * e[d, index[f, k]]
            out[d, k] = s
    return out
