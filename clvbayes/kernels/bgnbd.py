"""BG/NBD log-likelihood and its analytic gradient (Numba kernels).

Implements the individual-level likelihood of Fader, Hardie & Lee (2005), "Counting your
customers the easy way: an alternative to the Pareto/NBD model", Marketing Science 24(2),
eq. (6), for a customer with repeat frequency ``x``, recency ``t_x`` and age ``T``::

    L = B(a, b+x)/B(a, b) * Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))

Since ``B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1)`` and ``r ln α - (r+x) ln(α+T) =
-x ln α - (r+x) ln(1 + T/α)``, the log form evaluated here is::

    ln L = lnΓ(r+x) - lnΓ(r) + ln B(a, b+x) - ln B(a, b) - x ln α + ln(e^u1 + [x > 0] e^u2)
    u1 = -(r+x) ln(1 + T/α),   u2 = ln a - ln(b+x-1) - (r+x) ln(1 + t_x/α)

(log1p for the ``ln(1 + ·)``; the log-sum-exp keeps the large, opposite ``(r+x) ln(·)`` terms of
the two components from cancelling). The lnΓ and ψ differences are taken as
:func:`~clvbayes.kernels.special.lnpoch` ``= lnΓ(z+x) - lnΓ(z)`` and
:func:`~clvbayes.kernels.special.digamma_diff` ``= ψ(z+x) - ψ(z)``, which difference the
asymptotic series analytically instead of subtracting two large values (an lgamma difference
loses ``eps·lnΓ(z)``, 1e-11 absolute at z = 1e4).

The terms that depend on ``x`` only (the lnΓ / ln B differences, ``ln(b+x-1)`` and the digamma
differences of the gradient) are tabulated once per call over ``x = 0..max(x)`` when the
frequencies are non-negative integers and ``max(x) + 1 <= n_rows``; otherwise they are evaluated
per row. Both paths use the same expressions, so they give bit-identical per-row values.
Rows ordered by x (as ``np.unique`` leaves compressed data) run faster than shuffled rows:
the ``x > 0`` branch is then predictable.

Array wrappers split the rows into fixed chunks of ``special.CHUNK`` rows, reduce each chunk
and add the chunk sums in order, so sums do not depend on the thread count. The chunks are
processed in a ``prange`` loop from ``special.PARALLEL_MIN_ROWS`` rows on and in a serial
loop below (same chunks, same bits): for small data the thread launch costs more than the
work.

Data preconditions (not checked in the hot loop): ``x >= 0``, ``0 <= t_x <= T``, ``T >= 0``,
``t_x == 0`` when ``x == 0`` (``t_x`` is ignored when ``x == 0``). A customer first seen at the
end of observation (``x = t_x = T = 0``) gives ln L = 0 and a zero gradient exactly. Parameters outside the support
(any of r, alpha, a, b not > 0, or NaN) give a log-likelihood of ``-inf`` and a NaN gradient.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels.special import (
    CHUNK,
    PARALLEL_MIN_ROWS,
    digamma_diff,
    distinct_times,
    int_table_rows,
    lnpoch_h,
    lnpoch_hoist,
    log1p_fast,
    sum_chunks,
)

# No table of distinct times: the kernels take ln(1 + t/α) per row. _NO_L: the empty time
# tables of the value and of the gradient path (1 and 2 columns).
_NO_TIMES = (np.empty(0), np.empty(0), np.empty(0))
_NO_L = (np.empty((0, 1)), np.empty((0, 2)))

__all__ = [
    "prepare",
    "bgnbd_loglik_prepared",
    "bgnbd_loglik_sum_prepared",
    "bgnbd_loglik_sum_grad_prepared",
    "bgnbd_constants",
    "bgnbd_loglik_from_constants",
    "bgnbd_loglik_grad_from_constants",
    "bgnbd_loglik_one",
    "bgnbd_loglik_grad_one",
    "bgnbd_loglik",
    "bgnbd_loglik_sum",
    "bgnbd_loglik_sum_grad",
]

# Columns of the x-table (row j holds the terms for x = j; the value path uses the first two):
#   0: lnΓ(r+x) - lnΓ(r) + ln B(a, b+x) - ln B(a, b)
#   1: ln a - ln(b + x - 1)          (0 for x = 0)
#   2: 1 / (b + x - 1)               (0 for x = 0)
#   3: ψ(r+x) - ψ(r)
#   4: ψ(a+b+x) - ψ(a+b)
#   5: ψ(b+x-1) - ψ(b)               (0 for x = 0)
_NCOL_VALUE = 2
_NCOL_GRAD = 6


# --------------------------------------------------------------------------------------
# Scalar pieces
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _log1p_q(e: float, q: float) -> float:
    """:func:`~clvbayes.kernels.special.log1p_fast` ``(e)`` given ``q = 1 / (1 + e)``: the
    correction ``δ/u`` taken as ``δ q``, so the division that :func:`_lse_weights` needs
    anyway serves both."""
    u = 1.0 + e
    return math.log(u) - ((u - 1.0) - e) * q


@njit(cache=True, fastmath=False)
def _lse(u1: float, u2: float) -> float:
    """``ln(e^u1 + e^u2)``; same operations as in :func:`_lse_weights` (bit-identical)."""
    e = math.exp(-abs(u2 - u1))
    return max(u1, u2) + _log1p_q(e, 1.0 / (1.0 + e))


@njit(cache=True, fastmath=False)
def _lse_weights(u1: float, u2: float) -> tuple[float, float, float]:
    """``(ln(e^u1 + e^u2), s, 1 - s)`` with ``s = e^u2 / (e^u1 + e^u2)``; one exp, one log.

    ``1 - s`` is formed directly (not by subtraction), so it keeps its relative accuracy
    when s is close to 1. Written without branches (selects only): which of u1, u2 is
    larger is unpredictable from row to row.
    """
    e = math.exp(-abs(u2 - u1))
    q = 1.0 / (1.0 + e)
    eq = e * q
    big2 = u2 > u1
    s = q if big2 else eq
    sc = eq if big2 else q
    return max(u1, u2) + _log1p_q(e, q), s, sc


@njit(cache=True, fastmath=False)
def _params_ok(r: float, alpha: float, a: float, b: float) -> bool:
    # Written as positive comparisons so NaN parameters are rejected too.
    return (r > 0.0) and (alpha > 0.0) and (a > 0.0) and (b > 0.0)


# Layout of the per-call constants tuple returned by bgnbd_constants.
_K_R = 0
_K_ALPHA = 1
_K_A = 2
_K_B = 3
_K_AB = 4  # a + b
_K_INV_ALPHA = 5  # 1 / alpha
_K_LN_ALPHA = 6
_K_LN_A = 7
_K_H_R = 8  # lnpoch_hoist(r)
_K_H_B = 9  # lnpoch_hoist(b)
_K_H_AB = 10  # lnpoch_hoist(a + b)
_K_INV_A = 11  # 1 / a


@njit(cache=True, fastmath=False)
def bgnbd_constants(r: float, alpha: float, a: float, b: float) -> tuple:
    """Parameter-only quantities shared by all customers, for the ``*_from_constants`` cores.

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters, > 0 (not checked here; see :func:`bgnbd_loglik_one`).

    Returns
    -------
    tuple of float
        Opaque tuple of 12 floats (r, alpha, a, b, a + b, 1/alpha, ln alpha, ln a, the
        z-only parts of ``lnpoch(z, ·)`` for z = r, b, a + b, and 1/a).
    """
    ab = a + b
    return (
        r,
        alpha,
        a,
        b,
        ab,
        1.0 / alpha,
        math.log(alpha),
        math.log(a),
        lnpoch_hoist(r),
        lnpoch_hoist(b),
        lnpoch_hoist(ab),
        1.0 / a,
    )


@njit(cache=True, fastmath=False)
def _xterms_value(k: tuple, x: float) -> tuple[float, float]:
    """x-only terms of ln L: ``(lnΓ(r+x)-lnΓ(r) + lnB(a,b+x)-lnB(a,b), ln(a/(b+x-1)))``."""
    if x == 0.0:
        return 0.0, 0.0
    # ln B(a, b+x) - ln B(a, b) = [lnΓ(b+x) - lnΓ(b)] - [lnΓ(a+b+x) - lnΓ(a+b)].
    logc = lnpoch_h(k[_K_R], k[_K_H_R], x) + (
        lnpoch_h(k[_K_B], k[_K_H_B], x) - lnpoch_h(k[_K_AB], k[_K_H_AB], x)
    )
    # b + (x - 1) keeps b exact for x = 1 (b may be ~1e-7: the log is then very negative
    # but finite, and the second mixture component dominates).
    lnw = k[_K_LN_A] - math.log(k[_K_B] + (x - 1.0))
    return logc, lnw


@njit(cache=True, fastmath=False)
def _xterms_grad(k: tuple, x: float) -> tuple[float, float, float, float, float, float]:
    """x-only terms of ln L and of its gradient (the x-table columns)."""
    if x == 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    logc, lnw = _xterms_value(k, x)
    d_r = digamma_diff(k[_K_R], x)
    d_ab = digamma_diff(k[_K_AB], x)
    d_bm1 = digamma_diff(k[_K_B], x - 1.0)
    return logc, lnw, 1.0 / (k[_K_B] + (x - 1.0)), d_r, d_ab, d_bm1


@njit(cache=True, fastmath=False)
def _age_logs(k: tuple, x: float, t_x: float, T: float) -> tuple[float, float]:
    """``(ln(1 + T/α), ln(1 + t_x/α))`` of one row (the second 0 for x = 0: unused there)."""
    inv_alpha = k[_K_INV_ALPHA]
    lT = log1p_fast(T * inv_alpha)
    lt = log1p_fast(t_x * inv_alpha) if x > 0.0 else 0.0
    return lT, lt


@njit(cache=True, fastmath=False)
def _age_terms(k: tuple, x: float, t_x: float, T: float) -> tuple[float, float, float, float]:
    """:func:`_age_logs` and ``(1/(α+T), 1/(α+t_x))`` of one row (the t_x terms 0 for x = 0)."""
    lT, lt = _age_logs(k, x, t_x, T)
    alpha = k[_K_ALPHA]
    return lT, lt, 1.0 / (alpha + T), (1.0 / (alpha + t_x) if x > 0.0 else 0.0)


@njit(cache=True, fastmath=False)
def _row_value(k: tuple, x: float, logc: float, lnw: float, lT: float, lt: float) -> float:
    """ln L of one customer given its x-only terms and ``lT = ln(1 + T/α)``, ``lt = ln(1 +
    t_x/α)`` (log form in the module docstring)."""
    rx = k[_K_R] + x
    lse = -rx * lT
    if x > 0.0:
        lse = _lse(lse, lnw - rx * lt)
    return (logc - x * k[_K_LN_ALPHA]) + lse


@njit(cache=True, fastmath=False)
def _row_grad(
    k: tuple,
    x: float,
    t_x: float,
    T: float,
    logc: float,
    lnw: float,
    inv_bx1: float,
    d_r: float,
    d_ab: float,
    d_bm1: float,
    lT: float,
    lt: float,
    iT: float,
    it: float,
) -> tuple[float, float, float, float, float]:
    """(ln L, ∂/∂r, ∂/∂α, ∂/∂a, ∂/∂b) of one customer given its x-only terms and the time
    terms of :func:`_age_terms` (``iT = 1/(α+T)``, ``it = 1/(α+t_x)``: with the data's
    distinct times they are read from a table, so a row takes one division, in the
    log-sum-exp weights).

    With s = e^u2 / (e^u1 + e^u2) the weight of the second component (0 for x = 0),
    lT = ln(1 + T/α) and lt = ln(1 + t_x/α):
      ∂r = ψ(r+x) - ψ(r) - lT + s (lT - lt)
      ∂α = [r T/α - x - s (r+x)(T-t_x)/(α+t_x)] / (α+T)
      ∂a = -(ψ(a+b+x) - ψ(a+b)) + s/a
      ∂b = ψ(b+x-1) - ψ(b) + (1-s)/(b+x-1) - (ψ(a+b+x) - ψ(a+b))
    (the last uses ψ(b+x) = ψ(b+x-1) + 1/(b+x-1), avoiding 1/(b+x-1) - s/(b+x-1) when s ≈ 1);
    for x = 0, ∂a = ∂b = 0.
    """
    r = k[_K_R]
    inv_alpha = k[_K_INV_ALPHA]
    rx = r + x
    lse = -rx * lT
    g_r = d_r - lT
    g_alpha = r * T * inv_alpha - x
    g_a = -d_ab
    g_b = -d_ab
    if x > 0.0:
        lse, s, sc = _lse_weights(lse, lnw - rx * lt)
        g_r += s * (lT - lt)
        g_alpha -= s * rx * (T - t_x) * it
        g_a += s * k[_K_INV_A]
        g_b += d_bm1 + sc * inv_bx1
    g_alpha *= iT
    return (logc - x * k[_K_LN_ALPHA]) + lse, g_r, g_alpha, g_a, g_b


# --------------------------------------------------------------------------------------
# Public scalar cores
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def bgnbd_loglik_from_constants(k: tuple, x: float, t_x: float, T: float) -> float:
    """:func:`bgnbd_loglik_one` given ``k = bgnbd_constants(r, alpha, a, b)``.

    For loops over many customers at the same parameters (e.g. inside a loop over posterior
    draws): the per-parameter work (logs, lnΓ, ψ) is done once. Parameters must be valid.
    """
    logc, lnw = _xterms_value(k, x)
    return _row_value(k, x, logc, lnw, *_age_logs(k, x, t_x, T))


@njit(cache=True, fastmath=False)
def bgnbd_loglik_grad_from_constants(
    k: tuple, x: float, t_x: float, T: float
) -> tuple[float, float, float, float, float]:
    """:func:`bgnbd_loglik_grad_one` given ``k = bgnbd_constants(r, alpha, a, b)``."""
    logc, lnw, inv_bx1, d_r, d_ab, d_bm1 = _xterms_grad(k, x)
    return _row_grad(k, x, t_x, T, logc, lnw, inv_bx1, d_r, d_ab, d_bm1, *_age_terms(k, x, t_x, T))


@njit(cache=True, fastmath=False)
def bgnbd_loglik_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float
) -> float:
    """BG/NBD log-likelihood of one customer.

    Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing
    Science 24(2), eq. (6), in the log form given in the module docstring.

    Parameters
    ----------
    r, alpha : float
        Gamma mixing distribution of the purchase rate (shape, rate), > 0.
    a, b : float
        Beta mixing distribution of the dropout probability, > 0.
    x : float
        Number of repeat purchases (integer-valued), >= 0.
    t_x : float
        Time of the last repeat purchase, 0 <= t_x <= T (ignored when x == 0).
    T : float
        Length of the observation period of the customer, >= 0.

    Returns
    -------
    float
        ln L(r, alpha, a, b | x, t_x, T); ``-inf`` for parameters outside the support.
    """
    if not _params_ok(r, alpha, a, b):
        return -math.inf
    return bgnbd_loglik_from_constants(bgnbd_constants(r, alpha, a, b), x, t_x, T)


@njit(cache=True, fastmath=False)
def bgnbd_loglik_grad_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float
) -> tuple[float, float, float, float, float]:
    """BG/NBD log-likelihood of one customer and its gradient.

    Fader, Hardie & Lee (2005), Marketing Science 24(2), eq. (6); the derivatives are
    listed in :func:`_row_grad`.

    Parameters
    ----------
    r, alpha, a, b, x, t_x, T : float
        As in :func:`bgnbd_loglik_one`.

    Returns
    -------
    tuple of float
        ``(ln L, ∂lnL/∂r, ∂lnL/∂alpha, ∂lnL/∂a, ∂lnL/∂b)`` on the natural scale;
        ``(-inf, nan, nan, nan, nan)`` for parameters outside the support.
    """
    if not _params_ok(r, alpha, a, b):
        return -math.inf, math.nan, math.nan, math.nan, math.nan
    return bgnbd_loglik_grad_from_constants(bgnbd_constants(r, alpha, a, b), x, t_x, T)


# --------------------------------------------------------------------------------------
# x-table and chunk loops
# --------------------------------------------------------------------------------------

@njit(cache=True, fastmath=False)
def _build_table(k: tuple, need: np.ndarray, grad: bool) -> np.ndarray:
    """Rows x = j of the x-only terms (column list at the top) where ``need[j] != 0`` (the
    float64 mask of :func:`_table_mask`); for an empty mask a 1-row dummy that is never read
    (keeps the array typed)."""
    ncol = _NCOL_GRAD if grad else _NCOL_VALUE
    tab = np.zeros((max(need.size, 1), ncol))
    for j in range(need.size):
        if need[j] == 0.0:
            continue
        if grad:
            t = _xterms_grad(k, float(j))
            for col in range(_NCOL_GRAD):
                tab[j, col] = t[col]
        else:
            tab[j, 0], tab[j, 1] = _xterms_value(k, float(j))
    return tab


@njit(cache=True, fastmath=False)
def _xvalue_at(k: tuple, tab: np.ndarray, use_table: bool, x: float) -> tuple[float, float]:
    """x-only terms of ln L, from the table or computed (the same bits either way)."""
    if use_table:
        j = int(x)
        return tab[j, 0], tab[j, 1]
    return _xterms_value(k, x)


@njit(cache=True, fastmath=False)
def _xgrad_at(
    k: tuple, tab: np.ndarray, use_table: bool, x: float
) -> tuple[float, float, float, float, float, float]:
    """x-only terms of ln L and its gradient, from the table or computed."""
    if use_table:
        j = int(x)
        return tab[j, 0], tab[j, 1], tab[j, 2], tab[j, 3], tab[j, 4], tab[j, 5]
    return _xterms_grad(k, x)


@njit(cache=True, fastmath=False)
def _time_table(k: tuple, times: np.ndarray, grad: bool) -> np.ndarray:
    """Row j: ``ln(1 + t/α)`` and, for the gradient, ``1/(α+t)`` at the distinct time
    ``t = times[j]`` of :func:`prepare` (no rows for none)."""
    inv_alpha = k[_K_INV_ALPHA]
    alpha = k[_K_ALPHA]
    L = np.empty((times.size, 2 if grad else 1))
    for j in range(times.size):
        L[j, 0] = log1p_fast(times[j] * inv_alpha)
        if grad:
            L[j, 1] = 1.0 / (alpha + times[j])
    return L


@njit(cache=True, fastmath=False)
def _logs_at(
    k: tuple, L: np.ndarray, ia: np.ndarray, ib: np.ndarray, i: int, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[float, float]:
    """Row i's :func:`_age_logs`, read from ``L`` (:func:`_time_table`; ``ia[i]``, ``ib[i]``:
    the positions of its t_x and T) when there is a table, else computed. The same function
    of the same numbers either way, so the same bits."""
    if L.shape[0] > 0:
        return L[int(ib[i]), 0], (L[int(ia[i]), 0] if x[i] > 0.0 else 0.0)
    return _age_logs(k, x[i], t_x[i], T[i])


@njit(cache=True, fastmath=False)
def _terms_at(
    k: tuple, L: np.ndarray, ia: np.ndarray, ib: np.ndarray, i: int, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[float, float, float, float]:
    """Row i's :func:`_age_terms`, read from the gradient's :func:`_time_table` or computed
    (the same bits)."""
    if L.shape[0] > 0:
        jb = int(ib[i])
        if x[i] > 0.0:
            ja = int(ia[i])
            return L[jb, 0], L[ja, 0], L[jb, 1], L[ja, 1]
        return L[jb, 0], 0.0, L[jb, 1], 0.0
    return _age_terms(k, x[i], t_x[i], T[i])


@njit(cache=True, fastmath=False)
def _chunk(
    k: tuple,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    tab: np.ndarray,
    use_table: bool,
    L: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    c: int,
    part: np.ndarray,
) -> None:
    """Weighted sums over chunk c into ``part[c]``: ``Σ w ln L`` if part has one column,
    else ``Σ w (ln L, ∂r, ∂α, ∂a, ∂b)``. ``L, ia, ib``: :func:`_logs_at`."""
    lo = c * CHUNK
    hi = min(lo + CHUNK, x.size)
    if part.shape[1] == 1:
        acc = 0.0
        for i in range(lo, hi):
            logc, lnw = _xvalue_at(k, tab, use_table, x[i])
            lT, lt = _logs_at(k, L, ia, ib, i, x, t_x, T)
            acc += weights[i] * _row_value(k, x[i], logc, lnw, lT, lt)
        part[c, 0] = acc
        return
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for i in range(lo, hi):
        logc, lnw, inv_bx1, d_r, d_ab, d_bm1 = _xgrad_at(k, tab, use_table, x[i])
        lT, lt, iT, it = _terms_at(k, L, ia, ib, i, x, t_x, T)
        ll, g_r, g_al, g_a, g_b = _row_grad(
            k, x[i], t_x[i], T[i], logc, lnw, inv_bx1, d_r, d_ab, d_bm1, lT, lt, iT, it
        )
        w = weights[i]
        s0 += w * ll
        s1 += w * g_r
        s2 += w * g_al
        s3 += w * g_a
        s4 += w * g_b
    part[c, 0] = s0
    part[c, 1] = s1
    part[c, 2] = s2
    part[c, 3] = s3
    part[c, 4] = s4


@njit(cache=True, fastmath=False, parallel=True)
def _chunks_par(
    k: tuple,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    tab: np.ndarray,
    use_table: bool,
    L: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    part: np.ndarray,
) -> None:
    for c in prange(part.shape[0]):
        _chunk(k, x, t_x, T, weights, tab, use_table, L, ia, ib, c, part)


@njit(cache=True, fastmath=False)
def _chunk_sums(
    k: tuple, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray, ncol: int,
    times: np.ndarray, ia: np.ndarray, ib: np.ndarray, need: np.ndarray,
) -> np.ndarray:
    """Per-chunk weighted sums, shape (n_chunks, ncol): ncol = 1 for ln L, 5 for ln L and
    its gradient. Serial below ``PARALLEL_MIN_ROWS`` rows, else parallel (same bits).
    ``times, ia, ib, need``: :func:`prepare` (empty times: the logs per row)."""
    tab = _build_table(k, need, ncol > 1)
    if times.size == 0:
        # The module's constant empty arrays: this build of the loops knows there is no
        # time table and is as fast as the unprepared kernels (~12 % faster than with
        # empty arrays passed in, measured on continuous ages).
        return _chunk_loops(k, x, t_x, T, weights, ncol, tab, need.size > 0, _NO_L[1 if ncol > 1 else 0], *_NO_TIMES[1:])
    return _chunk_loops(k, x, t_x, T, weights, ncol, tab, need.size > 0, _time_table(k, times, ncol > 1), ia, ib)


@njit(cache=True, fastmath=False)
def _chunk_loops(
    k: tuple, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray, ncol: int,
    tab: np.ndarray, use_table: bool, L: np.ndarray, ia: np.ndarray, ib: np.ndarray,
) -> np.ndarray:
    """The chunk loop of :func:`_chunk_sums` given the x-table and the time table ``L``."""
    n = x.size
    part = np.empty(((n + CHUNK - 1) // CHUNK, ncol))
    if n >= PARALLEL_MIN_ROWS:
        _chunks_par(k, x, t_x, T, weights, tab, use_table, L, ia, ib, part)
    else:
        for c in range(part.shape[0]):
            _chunk(k, x, t_x, T, weights, tab, use_table, L, ia, ib, c, part)
    return part


@njit(cache=True, fastmath=False)
def _rows(
    k: tuple,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    tab: np.ndarray,
    use_table: bool,
    L: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    lo: int,
    hi: int,
    out: np.ndarray,
) -> None:
    """``out[i] = ln L_i`` for rows lo..hi-1."""
    for i in range(lo, hi):
        logc, lnw = _xvalue_at(k, tab, use_table, x[i])
        lT, lt = _logs_at(k, L, ia, ib, i, x, t_x, T)
        out[i] = _row_value(k, x[i], logc, lnw, lT, lt)


@njit(cache=True, fastmath=False, parallel=True)
def _rows_par(
    k: tuple,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    tab: np.ndarray,
    use_table: bool,
    L: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    out: np.ndarray,
) -> None:
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        _rows(k, x, t_x, T, tab, use_table, L, ia, ib, lo, min(lo + CHUNK, n), out)


# --------------------------------------------------------------------------------------
# Array wrappers
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def bgnbd_loglik(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood.

    Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing
    Science 24(2), eq. (6). Same values, bit for bit, as :func:`bgnbd_loglik_one`.

    Parameters
    ----------
    r, alpha, a, b : float
        Model parameters, > 0.
    x, t_x, T : np.ndarray
        float64 arrays of equal length: frequency, recency, age (see module preconditions).

    Returns
    -------
    np.ndarray
        ln L per customer (all ``-inf`` for parameters outside the support).
    """
    return bgnbd_loglik_prepared(r, alpha, a, b, x, t_x, T, *_NO_TIMES, _table_mask(x))


@njit(cache=True, fastmath=False)
def bgnbd_loglik_prepared(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    times: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    need: np.ndarray,
) -> np.ndarray:
    """:func:`bgnbd_loglik` with the data's structure from :func:`prepare` (the same bits,
    fewer logs when times repeat)."""
    n = x.size
    out = np.empty(n)
    if not _params_ok(r, alpha, a, b):
        out[:] = -math.inf
        return out
    k = bgnbd_constants(r, alpha, a, b)
    tab = _build_table(k, need, False)
    L = _time_table(k, times, False)
    if n >= PARALLEL_MIN_ROWS:
        _rows_par(k, x, t_x, T, tab, need.size > 0, L, ia, ib, out)
    else:
        _rows(k, x, t_x, T, tab, need.size > 0, L, ia, ib, 0, n, out)
    return out


@njit(cache=True, fastmath=False)
def bgnbd_loglik_sum(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
) -> float:
    """Weighted total BG/NBD log-likelihood ``Σ_i w_i ln L_i`` (value only).

    Fader, Hardie & Lee (2005), Marketing Science 24(2), eq. (6). The value equals, bit for
    bit, the first element returned by :func:`bgnbd_loglik_sum_grad`, and does not depend on
    the number of threads.

    Parameters
    ----------
    r, alpha, a, b : float
        Model parameters, > 0.
    x, t_x, T : np.ndarray
        float64 arrays of equal length: frequency, recency, age.
    weights : np.ndarray
        float64 row weights, typically the number of customers sharing the row's
        ``(x, t_x, T)`` (compressed data); ones for one row per customer.

    Returns
    -------
    float
        The weighted sum (``-inf`` for parameters outside the support; 0 for no rows).
    """
    return bgnbd_loglik_sum_prepared(r, alpha, a, b, x, t_x, T, weights, *_NO_TIMES, _table_mask(x))


@njit(cache=True, fastmath=False)
def bgnbd_loglik_sum_prepared(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    times: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    need: np.ndarray,
) -> float:
    """:func:`bgnbd_loglik_sum` with the data's structure from :func:`prepare` (the same
    bits)."""
    if not _params_ok(r, alpha, a, b):
        return -math.inf
    k = bgnbd_constants(r, alpha, a, b)
    return sum_chunks(_chunk_sums(k, x, t_x, T, weights, 1, times, ia, ib, need))[0]


@njit(cache=True, fastmath=False)
def bgnbd_loglik_sum_grad(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
) -> tuple[float, np.ndarray]:
    """Weighted total BG/NBD log-likelihood and its analytic gradient, in one pass.

    Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing
    Science 24(2), eq. (6); the derivatives are listed in :func:`_row_grad`. The result does
    not depend on the number of threads.

    Parameters
    ----------
    r, alpha, a, b : float
        Model parameters, > 0.
    x, t_x, T : np.ndarray
        float64 arrays of equal length: frequency, recency, age.
    weights : np.ndarray
        float64 row weights (customers per row for compressed data).

    Returns
    -------
    value : float
        ``Σ_i w_i ln L_i`` (``-inf`` for parameters outside the support).
    grad : np.ndarray
        Shape (4,): derivatives with respect to ``(r, alpha, a, b)`` on the natural scale
        (NaN for parameters outside the support).
    """
    return bgnbd_loglik_sum_grad_prepared(r, alpha, a, b, x, t_x, T, weights, *_NO_TIMES, _table_mask(x))


@njit(cache=True, fastmath=False)
def bgnbd_loglik_sum_grad_prepared(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    times: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    need: np.ndarray,
) -> tuple[float, np.ndarray]:
    """:func:`bgnbd_loglik_sum_grad` with the data's structure from :func:`prepare` (the
    same bits). On data summarised by day (a few hundred distinct ages and recencies) it
    takes less time per row: the two ``ln(1 + t/α)`` and the two ``1/(α + t)`` of a row are
    read, not computed, and the scan of x for the x-table is done once, in :func:`prepare`
    (benchmarks/results/bgnbd_times_cost.md)."""
    if not _params_ok(r, alpha, a, b):
        return -math.inf, np.full(4, math.nan)
    k = bgnbd_constants(r, alpha, a, b)
    tot = sum_chunks(_chunk_sums(k, x, t_x, T, weights, 5, times, ia, ib, need))
    return tot[0], tot[1:].copy()


@njit(cache=True, fastmath=False)
def _table_mask(x: np.ndarray) -> np.ndarray:
    """:func:`~clvbayes.kernels.special.int_table_rows` as float64 (1: fill the x-table's
    row; no entries: no x-table), the form :func:`prepare` stores it in."""
    return int_table_rows(x).astype(np.float64)


def prepare(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """θ-free structure of the data for the ``*_prepared`` kernels: the distinct times and
    the rows of the x-table.

    The likelihood needs ``ln(1 + T/α)``, ``1/(α+T)`` and, for x > 0, ``ln(1 + t_x/α)``,
    ``1/(α+t_x)`` per row. Data summarised on a calendar grid have few distinct ages and
    recencies (at most 366 per year of days, against up to 10^5 and more distinct rows), so
    the kernels evaluate these once per distinct time and read them per row. Which rows
    ``x = 0..max(x)`` of the table of x-only terms are needed is found here too, so a call
    does not scan x again.

    Parameters
    ----------
    x, t_x, T : np.ndarray
        Frequency, recency and age per row (float64, equal length).

    Returns
    -------
    times, ia, ib, need : np.ndarray
        float64: the sorted distinct values of ``t_x`` and ``T``, and per row the positions of
        its ``t_x`` and its ``T`` in ``times``. These three are empty when there are more
        distinct times than rows (continuous times: a table would cost more than it saves);
        the kernels then evaluate the time terms per row. ``need``: 1 at the x values whose
        table row is filled, 0 elsewhere (:func:`~clvbayes.kernels.special.int_table_rows`);
        empty when x is not tabulated (non-integer x, or ``max(x) + 1`` above the row count).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    need = _table_mask(x)
    times, ia, ib = distinct_times(t_x, T)
    if times.size > x.size:
        return (*_NO_TIMES, need)
    return times, ia.astype(np.float64), ib.astype(np.float64), need
