"""Likelihood sums and predictions when the parameters differ between rows.

Continuous covariates give every customer its own four parameters: ``theta[i]`` per row,
through the family's scalar gradient core (:func:`row_loglik_sum_grad`);
:func:`row_loglik_sum_grad4` takes the four parameter columns as separate vectors (the layout
of the PyTensor Op :class:`clvbayes.models.row_ops.RowLogLik`). Categorical covariates need
no kernel here: the covariate model (:mod:`clvbayes.models.covariate`) calls the family's own
Op once per design cell.

Predictions with per-customer parameters (:func:`cell_mean_p_alive`,
:func:`cell_mean_conditional_expected_purchases`) average the family's scalar core over
draws of each customer's cell parameters (a cell: customers with the same covariate row;
with continuous covariates nearly one per customer).

The likelihood returns the total and the gradient with respect to every row's parameters
(natural scale); the chain rule to coefficients or hyper-parameters is left to the model
graph (PyTensor). The names ``_loglik_grad_one`` / ``_p_alive_one`` /
``_conditional_expected_purchases_one`` are bound to BG/NBD here and rebound per family by
:func:`clvbayes.kernels.build.rebuild`, as in :mod:`clvbayes.kernels.drivers`. Sums are
taken in fixed row chunks, added in order: the same bits for any thread count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels import bgnbd as _bg
from clvbayes.kernels import bgnbd_predict as _bgp
from clvbayes.kernels.special import CHUNK, PARALLEL_MIN_ROWS, sum_chunks

__all__ = ["row_loglik_sum_grad", "row_loglik_sum_grad4", "cell_mean_p_alive",
           "cell_mean_conditional_expected_purchases"]

_loglik_grad_one = _bg.bgnbd_loglik_grad_one
_p_alive_one = _bgp.p_alive_one
_conditional_expected_purchases_one = _bgp.conditional_expected_purchases_one


@njit(cache=True, fastmath=False, error_model="numpy")
def _row_chunk(theta, x, t_x, T, w, lo, hi, grad):
    acc = 0.0
    for i in range(lo, hi):
        ll, g0, g1, g2, g3 = _loglik_grad_one(theta[i, 0], theta[i, 1], theta[i, 2], theta[i, 3], x[i], t_x[i], T[i])
        wi = w[i]
        acc += wi * ll
        grad[i, 0] = wi * g0
        grad[i, 1] = wi * g1
        grad[i, 2] = wi * g2
        grad[i, 3] = wi * g3
    return acc


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _row_chunks_par(theta, x, t_x, T, w, part, grad):
    n = x.shape[0]
    for c in prange(part.shape[0]):
        part[c, 0] = _row_chunk(theta, x, t_x, T, w, c * CHUNK, min(n, (c + 1) * CHUNK), grad)


@njit(cache=True, fastmath=False, error_model="numpy")
def row_loglik_sum_grad(theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                        weights: np.ndarray) -> tuple[float, np.ndarray]:
    """``Σ_i w_i ln L(θ_i | row i)`` and its gradient in every row's ``θ_i``.

    Parameters
    ----------
    theta : np.ndarray
        Shape (n, 4): each row's parameters.
    x, t_x, T, weights : np.ndarray
        float64 rows.

    Returns
    -------
    value : float
        The total, summed in fixed chunks (``-inf`` when a row's parameters leave the support).
    grad : np.ndarray
        Shape (n, 4): ``w_i ∂ ln L_i / ∂θ_i``.
    """
    n = x.shape[0]
    grad = np.empty((n, 4))
    for i in range(n):
        ok = True
        for k in range(4):
            v = theta[i, k]
            ok = ok and v > 0.0 and v < math.inf
        if not ok:
            grad[:, :] = math.nan
            return -math.inf, grad
    part = np.empty(((n + CHUNK - 1) // CHUNK, 1))
    if n >= PARALLEL_MIN_ROWS:
        _row_chunks_par(theta, x, t_x, T, weights, part, grad)
    else:
        for c in range(part.shape[0]):
            part[c, 0] = _row_chunk(theta, x, t_x, T, weights, c * CHUNK, min(n, (c + 1) * CHUNK), grad)
    return sum_chunks(part)[0], grad


@njit(cache=True, fastmath=False, error_model="numpy")
def row_loglik_sum_grad4(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, x: np.ndarray,
                         t_x: np.ndarray, T: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """:func:`row_loglik_sum_grad` with the parameters as four vectors (row i: ``p0[i], ..., p3[i]``).

    Returns the total and the gradient, shape (n, 4) (column k: the derivatives in ``pk``).
    """
    n = x.shape[0]
    theta = np.empty((n, 4))
    for i in range(n):
        theta[i, 0] = p0[i]
        theta[i, 1] = p1[i]
        theta[i, 2] = p2[i]
        theta[i, 3] = p3[i]
    return row_loglik_sum_grad(theta, x, t_x, T, weights)


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def cell_mean_p_alive(theta: np.ndarray, cell: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                      T: np.ndarray) -> np.ndarray:
    """Mean over draws of P(alive at T | history) at each customer's cell parameters.

    Parameters
    ----------
    theta : np.ndarray
        Shape (C, D, 4): each cell's parameters for D draws, in the family's order.
    cell : np.ndarray
        int64, customer i's cell.
    x, t_x, T : np.ndarray
        float64 customer histories.

    Returns
    -------
    np.ndarray
        ``(1/D) Σ_d p_alive_one(θ_{cell[i], d}, x_i, t_x_i, T_i)`` per customer (the family's
        core: for BG/NBD Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD model", note 021).
    """
    n = x.shape[0]
    D = theta.shape[1]
    out = np.empty(n)
    for i in prange(n):
        c = cell[i]
        acc = 0.0
        for d in range(D):
            acc += _p_alive_one(theta[c, d, 0], theta[c, d, 1], theta[c, d, 2], theta[c, d, 3], x[i], t_x[i], T[i])
        out[i] = acc / D
    return out


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def cell_mean_conditional_expected_purchases(theta: np.ndarray, cell: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                                             T: np.ndarray, t: float) -> np.ndarray:
    """Mean over draws of E[X(T, T+t] | history] at each customer's cell parameters
    (arguments as :func:`cell_mean_p_alive`; the family's core, e.g. Fader, Hardie & Lee
    2005, eq. (10) for BG/NBD)."""
    n = x.shape[0]
    D = theta.shape[1]
    out = np.empty(n)
    for i in prange(n):
        c = cell[i]
        acc = 0.0
        for d in range(D):
            acc += _conditional_expected_purchases_one(theta[c, d, 0], theta[c, d, 1], theta[c, d, 2], theta[c, d, 3],
                                                       x[i], t_x[i], T[i], t)
        out[i] = acc / D
    return out
