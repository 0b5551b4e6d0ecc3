"""Gamma-Gamma spend model kernels.

Model (Colombo & Jiang 1999; Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value
curves for customer base analysis", Journal of Marketing Research 42(4), 415-430):
the value of each transaction of a customer is ``z ~ Gamma(shape p, rate ν)`` and
``ν ~ Gamma(shape q, rate γ)`` across customers. For a customer with ``x >= 1`` repeat
transactions of mean value ``m > 0`` (the sufficient statistics), the likelihood of ``m``
is (FHL 2005 RFM & CLV, appendix)::

    f(m | p, q, γ, x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q · x^{px} · m^{px-1} / (γ + x m)^{px+q}

Conventions (shared by every function here):

- ``x == 0`` (one-time buyers): no transaction value is modelled, the log-likelihood
  contribution is exactly 0 (and so is its gradient), whatever ``m`` is. Arrays of a whole
  customer base can therefore be passed without filtering.
- ``x`` is a float and may be non-integer (the formula is analytic in ``x``); ``x < 0``,
  ``m <= 0`` with ``x > 0``, or non-positive parameters give ``nan``: inputs are validated by
  the model layer, the kernels do not raise.
- Expected spend: ``E[Z | x, m] = p (γ + x m) / (p x + q - 1)`` requires ``p x + q > 1``
  (for ``x = 0``: ``q > 1``, the population mean ``p γ / (q - 1)``). Where the mean does not
  exist the kernels return ``nan`` (not ``inf``), and the model layer is expected to raise a
  clear error.
- Weighted sums skip rows whose weight is exactly 0 (so placeholder rows cannot poison a
  sum) and are computed in fixed chunks of ``special.CHUNK`` rows whose partial sums are
  added in order, so the result is bit-identical whatever the Numba thread count. The chunks
  run in a ``prange`` loop from ``special.PARALLEL_MIN_ROWS`` rows on and serially below
  (same chunks, same bits).

The log-likelihood is written without the cancelling ``px log x + (px-1) log m
- (px+q) log(γ + xm)`` form: with ``u = x m``,
``ln f = -ln B(px, q) - px·log1p(γ/u) - q·log1p(u/γ) - ln m``, and the Gamma-function ratios
use :func:`~clvbayes.kernels.special.lbeta` and
:func:`~clvbayes.kernels.special.digamma_diff`, which stay accurate when one argument is
much larger than the other (``px`` up to 1e8).

Per-row parameters (spend covariates, :mod:`clvbayes.models.covariate_spend`):
:func:`gg_row_loglik_sum_grad` takes ``p, q, γ`` as vectors (row i has its own) and returns
the sum and every row's gradient through the scalar core :func:`gg_loglik_grad_one`, in the
same fixed chunks; :func:`gg_cell_mean_expected_spend` averages eq. (5) over draws of each
customer's cell parameters.

The terms that depend on ``x`` only, ``-ln B(px, q)``, ``ψ(px+q) - ψ(px)`` and
``ψ(px+q) - ψ(q)``, cost ~0.1-0.3 µs; the rest of a row is three logs. The array wrappers
therefore tabulate them once per call over ``x = 0..max(x)`` when the frequencies are
non-negative integers and ``max(x) + 1 <= n_rows`` (the usual case), else evaluate them per
row; both paths use the same expressions and give bit-identical per-row values, equal to the
scalar cores.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels.special import (
    CHUNK,
    PARALLEL_MIN_ROWS,
    digamma_diff,
    int_table_rows,
    lbeta,
    log1p_fast,
    sum_chunks,
)

__all__ = [
    "gg_loglik_one",
    "gg_loglik_grad_one",
    "gg_expected_spend_one",
    "gg_loglik",
    "gg_loglik_sum",
    "gg_loglik_sum_grad",
    "gg_expected_spend",
    "gg_row_loglik_sum_grad",
    "gg_cell_mean_expected_spend",
]

# Columns of the x-table (row j holds the terms for x = j, zeros for j = 0; the value path
# uses the first one):
#   0: -ln B(px, q)
#   1: ψ(px+q) - ψ(px)
#   2: ψ(px+q) - ψ(q)
_NCOL_VALUE = 1
_NCOL_GRAD = 3


# --------------------------------------------------------------------------------------
# Scalar pieces
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _params_ok(p: float, q: float, gamma: float) -> bool:
    # Positive comparisons: NaN parameters are rejected too.
    return p > 0.0 and q > 0.0 and gamma > 0.0


@njit(cache=True, fastmath=False)
def _xterms_value(p: float, q: float, x: float) -> float:
    """``-ln B(px, q)`` for x > 0 (0 otherwise, where it is not used)."""
    if not (x > 0.0):
        return 0.0
    return -lbeta(p * x, q)


@njit(cache=True, fastmath=False)
def _xterms_grad(p: float, q: float, x: float) -> tuple[float, float, float]:
    """``(-ln B(px, q), ψ(px+q) - ψ(px), ψ(px+q) - ψ(q))`` for x > 0 (zeros otherwise)."""
    if not (x > 0.0):
        return 0.0, 0.0, 0.0
    px = p * x
    return -lbeta(px, q), digamma_diff(px, q), digamma_diff(q, px)


@njit(cache=True, fastmath=False)
def _row_logs(
    p: float, q: float, gamma: float, x: float, m: float, lbn: float
) -> tuple[float, float, float]:
    """``(ln f, ln((γ+u)/u), ln((γ+u)/γ))`` with ``u = x m``, for x > 0, m > 0, given
    ``lbn = -ln B(px, q)``."""
    u = x * m
    l_gu = log1p_fast(gamma / u)
    l_ug = log1p_fast(u / gamma)
    # px ln(u/(γ+u)) + q ln(γ/(γ+u)) - ln m, written with log1p: no large cancelling terms.
    return lbn - (p * x) * l_gu - q * l_ug - math.log(m), l_gu, l_ug


@njit(cache=True, fastmath=False)
def _row_value(p: float, q: float, gamma: float, x: float, m: float, lbn: float) -> float:
    """ln f of one customer given its x-only term (valid parameters)."""
    if x == 0.0:
        return 0.0
    if not (x > 0.0 and m > 0.0):
        return math.nan
    return _row_logs(p, q, gamma, x, m, lbn)[0]


@njit(cache=True, fastmath=False)
def _row_grad(
    p: float, q: float, gamma: float, x: float, m: float, lbn: float, dpp: float, dpq: float
) -> tuple[float, float, float, float]:
    """(ln f, ∂/∂p, ∂/∂q, ∂/∂γ) of one customer given its x-only terms (valid parameters);
    the derivatives are listed in :func:`gg_loglik_grad_one`."""
    if x == 0.0:
        return 0.0, 0.0, 0.0, 0.0
    if not (x > 0.0 and m > 0.0):
        return math.nan, math.nan, math.nan, math.nan
    ll, l_gu, l_ug = _row_logs(p, q, gamma, x, m, lbn)
    px = p * x
    u = x * m
    # q/γ - (px+q)/(γ+u) = (q u - px γ) / (γ (γ+u)): one rounding, no cancellation of
    # two large fractions.
    d_g = (q * u - px * gamma) / (gamma * (gamma + u))
    return ll, x * (dpp - l_gu), dpq - l_ug, d_g


# --------------------------------------------------------------------------------------
# Public scalar cores
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def gg_loglik_one(p: float, q: float, gamma: float, x: float, m: float) -> float:
    """Gamma-Gamma log-likelihood of one customer's mean repeat transaction value.

    Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base
    analysis", JMR 42(4), appendix; Colombo & Jiang (1999)::

        ln f(m | p, q, γ, x) = ln Γ(px+q) - ln Γ(px) - ln Γ(q) + q ln γ + px ln x
                               + (px-1) ln m - (px+q) ln(γ + x m)

    Parameters
    ----------
    p, q, gamma : float
        Shape of the transaction values, shape and rate of the Gamma prior on their rate ν.
    x : float
        Number of repeat transactions (0 gives a contribution of exactly 0).
    m : float
        Mean value of those transactions (> 0 when ``x > 0``).

    Returns
    -------
    float
        The log-density of ``m``; ``nan`` for invalid inputs (see module docstring).
    """
    if not _params_ok(p, q, gamma):
        return math.nan
    return _row_value(p, q, gamma, x, m, _xterms_value(p, q, x))


@njit(cache=True, fastmath=False)
def gg_loglik_grad_one(
    p: float, q: float, gamma: float, x: float, m: float
) -> tuple[float, float, float, float]:
    """Log-likelihood of one customer and its gradient in ``(p, q, gamma)``.

    Derivatives of :func:`gg_loglik_one` (FHL 2005 RFM & CLV appendix density)::

        ∂/∂p = x [ψ(px+q) - ψ(px) + ln(x m / (γ + x m))]
        ∂/∂q = ψ(px+q) - ψ(q) + ln(γ / (γ + x m))
        ∂/∂γ = q/γ - (px+q)/(γ + x m)

    Returns
    -------
    tuple of float
        ``(loglik, d_p, d_q, d_gamma)``; zeros for ``x == 0``, nans for invalid inputs.
    """
    if not _params_ok(p, q, gamma):
        return math.nan, math.nan, math.nan, math.nan
    lbn, dpp, dpq = _xterms_grad(p, q, x)
    return _row_grad(p, q, gamma, x, m, lbn, dpp, dpq)


@njit(cache=True, fastmath=False)
def gg_expected_spend_one(p: float, q: float, gamma: float, x: float, m: float) -> float:
    """Conditional expected value of a future transaction, ``E[Z | x, m]``.

    Fader, Hardie & Lee (2005), "RFM and CLV", JMR 42(4), eq. (5)::

        E[Z | p, q, γ, x, m] = p (γ + x m) / (p x + q - 1)

    i.e. the posterior mean of ``p/ν`` with ``ν | data ~ Gamma(px + q, rate γ + x m)``.
    With ``x = 0`` this is the population mean ``p γ / (q - 1)`` (``m`` is ignored); with
    ``x > 0`` and ``m = 0`` (repeat purchases all of amount 0, outside the likelihood's
    support) it is the limit ``m -> 0+``, ``p γ / (p x + q - 1)``.

    Returns
    -------
    float
        The expected spend; ``nan`` when ``p x + q <= 1`` (the mean does not exist, e.g.
        ``q <= 1`` for ``x = 0``) or for invalid inputs.
    """
    if not (_params_ok(p, q, gamma) and x >= 0.0):
        return math.nan
    if x == 0.0:
        if q <= 1.0:
            return math.nan
        return p * gamma / (q - 1.0)
    if not (m >= 0.0):  # m = 0 (all repeat purchases free): the limit m -> 0+ of eq. (5)
        return math.nan
    den = p * x + q - 1.0
    if den <= 0.0:
        return math.nan
    return p * (gamma + x * m) / den


# --------------------------------------------------------------------------------------
# x-table and chunk loops
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _build_table(p: float, q: float, need: np.ndarray, grad: bool) -> np.ndarray:
    """Rows x = j of the x-only terms (column list at the top) where ``need[j]``; for an
    empty mask a 1-row dummy that is never read (keeps the array typed)."""
    ncol = _NCOL_GRAD if grad else _NCOL_VALUE
    tab = np.zeros((max(need.size, 1), ncol))
    for j in range(1, need.size):
        if not need[j]:
            continue
        if grad:
            tab[j, 0], tab[j, 1], tab[j, 2] = _xterms_grad(p, q, float(j))
        else:
            tab[j, 0] = _xterms_value(p, q, float(j))
    return tab


@njit(cache=True, fastmath=False)
def _xvalue_at(p: float, q: float, tab: np.ndarray, use_table: bool, x: float) -> float:
    """``-ln B(px, q)``, from the table or computed (the same bits either way)."""
    if use_table:
        return tab[int(x), 0]
    return _xterms_value(p, q, x)


@njit(cache=True, fastmath=False)
def _xgrad_at(
    p: float, q: float, tab: np.ndarray, use_table: bool, x: float
) -> tuple[float, float, float]:
    """The x-only terms of value and gradient, from the table or computed."""
    if use_table:
        j = int(x)
        return tab[j, 0], tab[j, 1], tab[j, 2]
    return _xterms_grad(p, q, x)


@njit(cache=True, fastmath=False)
def _chunk(
    p: float,
    q: float,
    gamma: float,
    x: np.ndarray,
    m: np.ndarray,
    weights: np.ndarray,
    tab: np.ndarray,
    use_table: bool,
    c: int,
    part: np.ndarray,
) -> None:
    """Weighted sums over chunk c into ``part[c]``, skipping zero weights: ``Σ w ln f`` if
    part has one column, else ``Σ w (ln f, ∂p, ∂q, ∂γ)``."""
    lo = c * CHUNK
    hi = min(lo + CHUNK, x.size)
    if part.shape[1] == 1:
        acc = 0.0
        for i in range(lo, hi):
            w = weights[i]
            if w != 0.0:
                lbn = _xvalue_at(p, q, tab, use_table, x[i])
                acc += w * _row_value(p, q, gamma, x[i], m[i], lbn)
        part[c, 0] = acc
        return
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for i in range(lo, hi):
        w = weights[i]
        if w == 0.0:
            continue
        lbn, dpp, dpq = _xgrad_at(p, q, tab, use_table, x[i])
        ll, d_p, d_q, d_g = _row_grad(p, q, gamma, x[i], m[i], lbn, dpp, dpq)
        s0 += w * ll
        s1 += w * d_p
        s2 += w * d_q
        s3 += w * d_g
    part[c, 0] = s0
    part[c, 1] = s1
    part[c, 2] = s2
    part[c, 3] = s3


@njit(cache=True, fastmath=False, parallel=True)
def _chunks_par(
    p: float,
    q: float,
    gamma: float,
    x: np.ndarray,
    m: np.ndarray,
    weights: np.ndarray,
    tab: np.ndarray,
    use_table: bool,
    part: np.ndarray,
) -> None:
    for c in prange(part.shape[0]):
        _chunk(p, q, gamma, x, m, weights, tab, use_table, c, part)


@njit(cache=True, fastmath=False)
def _sums(
    p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray, weights: np.ndarray, ncol: int
) -> np.ndarray:
    """``Σ w ln f`` (ncol = 1) or ``Σ w (ln f, ∂p, ∂q, ∂γ)`` (ncol = 4) over fixed chunks
    added in order; serial below ``PARALLEL_MIN_ROWS`` rows, else parallel (same bits).
    Invalid parameters: NaN if any weight is non-zero (every such row is NaN), else 0."""
    n = x.size
    if not _params_ok(p, q, gamma):
        return np.full(ncol, math.nan if np.any(weights != 0.0) else 0.0)
    need = int_table_rows(x)
    tab = _build_table(p, q, need, ncol > 1)
    use_table = need.size > 0
    part = np.empty(((n + CHUNK - 1) // CHUNK, ncol))
    if n >= PARALLEL_MIN_ROWS:
        _chunks_par(p, q, gamma, x, m, weights, tab, use_table, part)
    else:
        for c in range(part.shape[0]):
            _chunk(p, q, gamma, x, m, weights, tab, use_table, c, part)
    return sum_chunks(part)


@njit(cache=True, fastmath=False)
def _rows(
    p: float,
    q: float,
    gamma: float,
    x: np.ndarray,
    m: np.ndarray,
    tab: np.ndarray,
    use_table: bool,
    spend: bool,
    lo: int,
    hi: int,
    out: np.ndarray,
) -> None:
    """``out[i]`` = ln f_i, or ``E[Z | x_i, m_i]`` if spend, for rows lo..hi-1."""
    for i in range(lo, hi):
        if spend:
            out[i] = gg_expected_spend_one(p, q, gamma, x[i], m[i])
        else:
            out[i] = _row_value(p, q, gamma, x[i], m[i], _xvalue_at(p, q, tab, use_table, x[i]))


@njit(cache=True, fastmath=False, parallel=True)
def _rows_par(
    p: float,
    q: float,
    gamma: float,
    x: np.ndarray,
    m: np.ndarray,
    tab: np.ndarray,
    use_table: bool,
    spend: bool,
    out: np.ndarray,
) -> None:
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        _rows(p, q, gamma, x, m, tab, use_table, spend, lo, min(lo + CHUNK, n), out)


@njit(cache=True, fastmath=False)
def _per_row(
    p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray, spend: bool
) -> np.ndarray:
    """ln f or ``E[Z | x, m]`` per row; serial below ``PARALLEL_MIN_ROWS`` rows."""
    n = x.size
    out = np.empty(n)
    if not (spend or _params_ok(p, q, gamma)):
        out[:] = math.nan
        return out
    need = np.ones(0, dtype=np.bool_) if spend else int_table_rows(x)
    tab = _build_table(p, q, need, False)
    if n >= PARALLEL_MIN_ROWS:
        _rows_par(p, q, gamma, x, m, tab, need.size > 0, spend, out)
    else:
        _rows(p, q, gamma, x, m, tab, need.size > 0, spend, 0, n, out)
    return out


# --------------------------------------------------------------------------------------
# Array wrappers
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def gg_loglik(p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood (FHL 2005 RFM & CLV appendix density),
    bit-identical to :func:`gg_loglik_one` on each row."""
    return _per_row(p, q, gamma, x, m, False)


@njit(cache=True, fastmath=False)
def gg_loglik_sum_grad(
    p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted Gamma-Gamma log-likelihood ``Σ w_i ln f(m_i)`` and its gradient.

    One pass over the data (FHL 2005 RFM & CLV appendix density; derivatives as in
    :func:`gg_loglik_grad_one`). Rows with ``w_i == 0`` are skipped. Partial sums over
    fixed chunks of rows are added in order: the result does not depend on the number of
    threads.

    Parameters
    ----------
    p, q, gamma : float
        Model parameters, > 0.
    x, m : np.ndarray
        float64 arrays of equal length: number of repeat transactions, their mean value.
    weights : np.ndarray
        float64 row weights (customers per row for compressed data).

    Returns
    -------
    (float, ndarray)
        The sum and the gradient ``[d/dp, d/dq, d/dgamma]``.
    """
    tot = _sums(p, q, gamma, x, m, weights, 4)
    return tot[0], tot[1:].copy()


@njit(cache=True, fastmath=False)
def gg_loglik_sum(
    p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray, weights: np.ndarray
) -> float:
    """Weighted Gamma-Gamma log-likelihood ``Σ w_i ln f(m_i)`` (no gradient).

    Same chunking and zero-weight convention as :func:`gg_loglik_sum_grad`, whose first
    result it equals bit for bit.
    """
    return _sums(p, q, gamma, x, m, weights, 1)[0]


@njit(cache=True, fastmath=False)
def gg_expected_spend(
    p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """``E[Z | x, m]`` per customer (FHL 2005 RFM & CLV eq. (5)); see
    :func:`gg_expected_spend_one` for the ``x = 0`` and ``nan`` conventions."""
    return _per_row(p, q, gamma, x, m, True)


# --------------------------------------------------------------------------------------
# Per-row parameters (spend covariates)
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _row_param_chunk(
    p: np.ndarray, q: np.ndarray, gamma: np.ndarray, x: np.ndarray, m: np.ndarray, w: np.ndarray,
    lo: int, hi: int, grad: np.ndarray,
) -> float:
    """``Σ w_i ln f_i`` over rows lo..hi-1, writing ``w_i ∇ ln f_i`` into ``grad[i]``."""
    acc = 0.0
    for i in range(lo, hi):
        wi = w[i]
        if wi == 0.0:  # placeholder rows cannot poison the sum (module convention)
            grad[i, 0] = 0.0
            grad[i, 1] = 0.0
            grad[i, 2] = 0.0
            continue
        ll, d_p, d_q, d_g = gg_loglik_grad_one(p[i], q[i], gamma[i], x[i], m[i])
        acc += wi * ll
        grad[i, 0] = wi * d_p
        grad[i, 1] = wi * d_q
        grad[i, 2] = wi * d_g
    return acc


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _row_param_chunks_par(
    p: np.ndarray, q: np.ndarray, gamma: np.ndarray, x: np.ndarray, m: np.ndarray, w: np.ndarray,
    part: np.ndarray, grad: np.ndarray,
) -> None:
    n = x.shape[0]
    for c in prange(part.shape[0]):
        part[c, 0] = _row_param_chunk(p, q, gamma, x, m, w, c * CHUNK, min(n, (c + 1) * CHUNK), grad)


@njit(cache=True, fastmath=False, error_model="numpy")
def gg_row_loglik_sum_grad(
    p: np.ndarray, q: np.ndarray, gamma: np.ndarray, x: np.ndarray, m: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """``Σ_i w_i ln f(m_i | p_i, q_i, γ_i, x_i)`` and its gradient in every row's parameters.

    The density of FHL (2005), "RFM and CLV", JMR 42(4), appendix (:func:`gg_loglik_one`),
    with each row's own parameters (a customer's ``γ_i = γ exp(z_i'δ)`` under spend
    covariates); derivatives as :func:`gg_loglik_grad_one`. Rows with ``x_i == 0`` or
    ``w_i == 0`` contribute 0. Fixed chunks of ``CHUNK`` rows, threaded from
    ``PARALLEL_MIN_ROWS`` rows on, partial sums added in order: the same bits for any
    thread count.

    Parameters
    ----------
    p, q, gamma : np.ndarray
        float64 vectors, one value per row.
    x, m, weights : np.ndarray
        Repeat transactions, their mean value, row weights (customers per row).

    Returns
    -------
    value : float
        The total; ``-inf`` when any row's parameter leaves ``(0, inf)``.
    grad : np.ndarray
        Shape (n, 3): ``w_i ∂ ln f_i / ∂(p_i, q_i, γ_i)`` (all NaN with a ``-inf`` total).
    """
    n = x.shape[0]
    grad = np.empty((n, 3))
    for i in range(n):
        if not (0.0 < p[i] < math.inf and 0.0 < q[i] < math.inf and 0.0 < gamma[i] < math.inf):
            grad[:, :] = math.nan
            return -math.inf, grad
    part = np.empty(((n + CHUNK - 1) // CHUNK, 1))
    if n >= PARALLEL_MIN_ROWS:
        _row_param_chunks_par(p, q, gamma, x, m, weights, part, grad)
    else:
        for c in range(part.shape[0]):
            part[c, 0] = _row_param_chunk(p, q, gamma, x, m, weights, c * CHUNK, min(n, (c + 1) * CHUNK), grad)
    return sum_chunks(part)[0], grad


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def gg_cell_mean_expected_spend(theta: np.ndarray, cell: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Mean over draws of ``E[Z | x_i, m_i]`` (FHL 2005 eq. (5)) at each customer's cell parameters.

    Parameters
    ----------
    theta : np.ndarray
        Shape (C, D, 3): ``(p, q, γ)`` of each cell for D draws.
    cell : np.ndarray
        int64, customer i's cell.
    x, m : np.ndarray
        float64 repeat transactions and mean spend (``x = 0``: the population mean
        ``p γ_c / (q - 1)`` of the customer's cell, as :func:`gg_expected_spend_one`).

    Returns
    -------
    np.ndarray
        ``(1/D) Σ_d gg_expected_spend_one(θ_{cell[i], d}, x_i, m_i)``; NaN where a draw has no
        mean (``p x + q <= 1``). Each customer's draws are added in order: any thread count
        gives the same bits.
    """
    n = x.shape[0]
    D = theta.shape[1]
    out = np.empty(n)
    for i in prange(n):
        c = cell[i]
        acc = 0.0
        for d in range(D):
            acc += gg_expected_spend_one(theta[c, d, 0], theta[c, d, 1], theta[c, d, 2], x[i], m[i])
        out[i] = acc / D
    return out
