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
:func:`lnpoch` ``= lnΓ(z+x) - lnΓ(z)`` and :func:`digamma_diff` ``= ψ(z+x) - ψ(z)``, which
use asymptotic series for z >= 10 instead of subtracting two large values (an lgamma
difference loses ``eps·lnΓ(z)``, 1e-11 absolute at z = 1e4).

The terms that depend on ``x`` only (the lnΓ / ln B differences, ``ln(b+x-1)`` and the digamma
differences of the gradient) are tabulated once per call over ``x = 0..max(x)`` when the
frequencies are non-negative integers and ``max(x) + 1 <= n_rows``; otherwise they are evaluated
per row. Both paths use the same expressions, so they give bit-identical per-row values.
Rows ordered by x (as ``np.unique`` leaves compressed data) run faster than shuffled rows:
the ``x > 0`` branch is then predictable.

Array wrappers split the rows into fixed chunks of ``_CHUNK`` rows, reduce each chunk in a
``prange`` loop and add the chunk sums in order, so sums do not depend on the thread count.

Data preconditions (not checked in the hot loop): ``x >= 0``, ``0 <= t_x <= T``, ``T > 0``,
``t_x == 0`` when ``x == 0`` (``t_x`` is ignored when ``x == 0``). Parameters outside the support
(any of r, alpha, a, b not > 0, or NaN) give a log-likelihood of ``-inf`` and a NaN gradient.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels.special import digamma

__all__ = [
    "bgnbd_constants",
    "bgnbd_loglik_from_constants",
    "bgnbd_loglik_grad_from_constants",
    "bgnbd_loglik_one",
    "bgnbd_loglik_grad_one",
    "bgnbd_loglik",
    "bgnbd_loglik_sum",
    "bgnbd_loglik_sum_grad",
]

# Rows per reduction chunk. Fixed (not derived from the thread count) so that the summation
# order, hence the rounding of the sums, is the same on any number of threads.
_CHUNK = 4096

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
def log1p_fast(y: float) -> float:
    """``ln(1 + y)`` for y > -1 from one ``log`` and one division, within ~1 ulp.

    ``u = 1 + y`` rounds to ``1 + y + δ``; ``(u - 1) - y`` recovers δ exactly and
    ``ln u - δ/u`` removes its first-order effect (for u == 1 it returns y exactly). No
    branch, and cheaper than libm ``log1p``; this kernel evaluates up to three per customer.
    """
    u = 1.0 + y
    return math.log(u) - ((u - 1.0) - y) / u


@njit(cache=True, fastmath=False)
def _lse(u1: float, u2: float) -> float:
    """``ln(e^u1 + e^u2)``; same operations as in :func:`_lse_weights` (bit-identical)."""
    return max(u1, u2) + log1p_fast(math.exp(-abs(u2 - u1)))


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
    return max(u1, u2) + log1p_fast(e), s, sc


# Stirling series coefficients B_2k / (2k (2k-1)), k = 1..7.
_ST1 = 1.0 / 12.0
_ST2 = -1.0 / 360.0
_ST3 = 1.0 / 1260.0
_ST4 = -1.0 / 1680.0
_ST5 = 1.0 / 1188.0
_ST6 = -691.0 / 360360.0
_ST7 = 1.0 / 156.0
# Above this argument the series to 1/z^13 is exact to ~3e-17 (next term 3617/(122400 z^15)).
_STIRLING_MIN = 10.0


@njit(cache=True, fastmath=False)
def _stirling_corr(z: float) -> float:
    """lnΓ(z) - [(z - 1/2) ln z - z + ln(2π)/2] for z >= 10 (Stirling series)."""
    iz = 1.0 / z
    iz2 = iz * iz
    return iz * (
        _ST1 + iz2 * (_ST2 + iz2 * (_ST3 + iz2 * (_ST4 + iz2 * (_ST5 + iz2 * (_ST6 + iz2 * _ST7)))))
    )


@njit(cache=True, fastmath=False)
def _lnpoch_hoist(z: float) -> float:
    """The part of ``lnpoch(z, ·)`` that depends on z only (computed once per call)."""
    if z >= _STIRLING_MIN:
        return _stirling_corr(z)
    return math.lgamma(z)


@njit(cache=True, fastmath=False)
def _lnpoch_h(z: float, hz: float, x: float) -> float:
    """``lnpoch(z, x)`` given ``hz = _lnpoch_hoist(z)``."""
    if x == 0.0:
        return 0.0
    if z >= _STIRLING_MIN:
        y = z + x
        return (z - 0.5) * log1p_fast(x / z) + x * (math.log(y) - 1.0) + (_stirling_corr(y) - hz)
    return math.lgamma(z + x) - hz


@njit(cache=True, fastmath=False)
def lnpoch(z: float, x: float) -> float:
    """Log rising factorial ``lnΓ(z + x) - lnΓ(z)`` for z > 0, x >= 0.

    For z >= 10 the Stirling forms of both lnΓ are subtracted analytically,
    ``(z - 1/2) ln(1 + x/z) + x (ln(z + x) - 1) + φ(z + x) - φ(z)``: within ~2 ulps for
    integer x (``lgamma(z + x) - lgamma(z)`` would have an absolute error of
    ``eps·lnΓ(z)``, 1e-11 at z = 1e4). Below 10 it is ``lgamma(z + x) - lgamma(z)``, accurate
    to ~4e-15 absolute (as well as the problem's conditioning allows where the result is
    small, e.g. ln z for z near 1).
    """
    return _lnpoch_h(z, _lnpoch_hoist(z), x)


# Digamma asymptotic series coefficients B_2k / (2k), k = 1..7.
_PS1 = 1.0 / 12.0
_PS2 = -1.0 / 120.0
_PS3 = 1.0 / 252.0
_PS4 = -1.0 / 240.0
_PS5 = 1.0 / 132.0
_PS6 = -691.0 / 32760.0
_PS7 = 1.0 / 12.0


@njit(cache=True, fastmath=False)
def _psi_series(z: float) -> float:
    """ln z - 1/(2z) - ψ(z) for z >= 10 (asymptotic series; next term 4e-17 at z = 10)."""
    iz2 = 1.0 / (z * z)
    return iz2 * (
        _PS1 + iz2 * (_PS2 + iz2 * (_PS3 + iz2 * (_PS4 + iz2 * (_PS5 + iz2 * (_PS6 + iz2 * _PS7)))))
    )


@njit(cache=True, fastmath=False)
def _digamma_diff_hoist(z: float) -> float:
    """The part of ``digamma_diff(z, ·)`` that depends on z only (computed once per call)."""
    if z >= _STIRLING_MIN:
        return _psi_series(z)
    return digamma(z)


@njit(cache=True, fastmath=False)
def _digamma_diff_h(z: float, hz: float, x: float) -> float:
    """``digamma_diff(z, x)`` given ``hz = _digamma_diff_hoist(z)``."""
    if x == 0.0:
        return 0.0
    if z >= _STIRLING_MIN:
        y = z + x
        return log1p_fast(x / z) + x / (2.0 * z * y) + (hz - _psi_series(y))
    return digamma(z + x) - hz


@njit(cache=True, fastmath=False)
def digamma_diff(z: float, x: float) -> float:
    """``ψ(z + x) - ψ(z)`` for z > 0, x >= 0.

    For z >= 10 from the asymptotic series of both terms,
    ``ln(1 + x/z) + x / (2 z (z + x)) + S(z) - S(z + x)``, without the cancellation of
    ``digamma(z + x) - digamma(z)`` when x << z. Below 10 it is that difference.
    """
    return _digamma_diff_h(z, _digamma_diff_hoist(z), x)


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
_K_H_R = 8  # _lnpoch_hoist(r)
_K_H_B = 9  # _lnpoch_hoist(b)
_K_H_AB = 10  # _lnpoch_hoist(a + b)
_K_P_R = 11  # _digamma_diff_hoist(r)
_K_P_B = 12  # _digamma_diff_hoist(b)
_K_P_AB = 13  # _digamma_diff_hoist(a + b)


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
        Opaque tuple of 14 floats (r, alpha, a, b, a + b, 1/alpha, ln alpha, ln a, the
        lnΓ and ψ parts of r, b and a + b).
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
        _lnpoch_hoist(r),
        _lnpoch_hoist(b),
        _lnpoch_hoist(ab),
        _digamma_diff_hoist(r),
        _digamma_diff_hoist(b),
        _digamma_diff_hoist(ab),
    )


@njit(cache=True, fastmath=False)
def _xterms_value(k: tuple, x: float) -> tuple[float, float]:
    """x-only terms of ln L: ``(lnΓ(r+x)-lnΓ(r) + lnB(a,b+x)-lnB(a,b), ln(a/(b+x-1)))``."""
    if x == 0.0:
        return 0.0, 0.0
    # ln B(a, b+x) - ln B(a, b) = [lnΓ(b+x) - lnΓ(b)] - [lnΓ(a+b+x) - lnΓ(a+b)].
    logc = _lnpoch_h(k[_K_R], k[_K_H_R], x) + (
        _lnpoch_h(k[_K_B], k[_K_H_B], x) - _lnpoch_h(k[_K_AB], k[_K_H_AB], x)
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
    d_r = _digamma_diff_h(k[_K_R], k[_K_P_R], x)
    d_ab = _digamma_diff_h(k[_K_AB], k[_K_P_AB], x)
    d_bm1 = _digamma_diff_h(k[_K_B], k[_K_P_B], x - 1.0)
    return logc, lnw, 1.0 / (k[_K_B] + (x - 1.0)), d_r, d_ab, d_bm1


@njit(cache=True, fastmath=False)
def _row_value(
    k: tuple, x: float, t_x: float, T: float, logc: float, lnw: float
) -> float:
    """ln L of one customer given its x-only terms (log form in the module docstring)."""
    rx = k[_K_R] + x
    inv_alpha = k[_K_INV_ALPHA]
    lse = -rx * log1p_fast(T * inv_alpha)
    if x > 0.0:
        lse = _lse(lse, lnw - rx * log1p_fast(t_x * inv_alpha))
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
) -> tuple[float, float, float, float, float]:
    """(ln L, ∂/∂r, ∂/∂α, ∂/∂a, ∂/∂b) of one customer given its x-only terms.

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
    alpha = k[_K_ALPHA]
    inv_alpha = k[_K_INV_ALPHA]
    rx = r + x
    lT = log1p_fast(T * inv_alpha)
    lse = -rx * lT
    g_r = d_r - lT
    g_alpha = r * T * inv_alpha - x
    g_a = -d_ab
    g_b = -d_ab
    if x > 0.0:
        lt = log1p_fast(t_x * inv_alpha)
        lse, s, sc = _lse_weights(lse, lnw - rx * lt)
        g_r += s * (lT - lt)
        g_alpha -= s * rx * (T - t_x) / (alpha + t_x)
        g_a += s / k[_K_A]
        g_b += d_bm1 + sc * inv_bx1
    g_alpha /= alpha + T
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
    return _row_value(k, x, t_x, T, logc, lnw)


@njit(cache=True, fastmath=False)
def bgnbd_loglik_grad_from_constants(
    k: tuple, x: float, t_x: float, T: float
) -> tuple[float, float, float, float, float]:
    """:func:`bgnbd_loglik_grad_one` given ``k = bgnbd_constants(r, alpha, a, b)``."""
    logc, lnw, inv_bx1, d_r, d_ab, d_bm1 = _xterms_grad(k, x)
    return _row_grad(k, x, t_x, T, logc, lnw, inv_bx1, d_r, d_ab, d_bm1)


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
        Length of the observation period of the customer, > 0.

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
# x-table
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, parallel=True)
def _table_size(x: np.ndarray) -> int:
    """``max(x) + 1`` if every x is a non-negative integer <= n_rows - 1, else 0 (no table)."""
    n = x.size
    if n == 0:
        return 0
    nchunk = (n + _CHUNK - 1) // _CHUNK
    cmax = np.empty(nchunk)
    cbad = np.zeros(nchunk, dtype=np.bool_)
    for k in prange(nchunk):
        lo = k * _CHUNK
        hi = min(lo + _CHUNK, n)
        m = 0.0
        bad = False
        for i in range(lo, hi):
            xi = x[i]
            # NaN fails xi >= 0; non-integers fail the floor test.
            if not (xi >= 0.0) or math.floor(xi) != xi:
                bad = True
            m = max(m, xi)
        cmax[k] = m
        cbad[k] = bad
    m = 0.0
    for k in range(nchunk):
        if cbad[k]:
            return 0
        m = max(m, cmax[k])
    # A table larger than the data costs more than it saves.
    if m + 1.0 > n:
        return 0
    return int(m) + 1


@njit(cache=True, fastmath=False, parallel=True)
def _build_table(k: tuple, size: int, grad: bool) -> np.ndarray:
    """Rows x = 0..size-1 of the x-only terms (see the column list at the top)."""
    if grad:
        tab = np.empty((size, _NCOL_GRAD))
        for j in prange(size):
            t = _xterms_grad(k, float(j))
            tab[j, 0] = t[0]
            tab[j, 1] = t[1]
            tab[j, 2] = t[2]
            tab[j, 3] = t[3]
            tab[j, 4] = t[4]
            tab[j, 5] = t[5]
    else:
        tab = np.empty((size, _NCOL_VALUE))
        for j in prange(size):
            t = _xterms_value(k, float(j))
            tab[j, 0] = t[0]
            tab[j, 1] = t[1]
    return tab


# --------------------------------------------------------------------------------------
# Serial chunk loops (called from the prange loops of the array wrappers)
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _chunk_value(
    k: tuple,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    tab: np.ndarray,
    use_table: bool,
    lo: int,
    hi: int,
) -> float:
    """``Σ_{lo <= i < hi} w_i ln L_i``, x-terms from the table or computed per row."""
    acc = 0.0
    if use_table:
        for i in range(lo, hi):
            j = int(x[i])
            acc += weights[i] * _row_value(k, x[i], t_x[i], T[i], tab[j, 0], tab[j, 1])
    else:
        for i in range(lo, hi):
            logc, lnw = _xterms_value(k, x[i])
            acc += weights[i] * _row_value(k, x[i], t_x[i], T[i], logc, lnw)
    return acc


@njit(cache=True, fastmath=False)
def _chunk_grad_table(
    k: tuple,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    tab: np.ndarray,
    lo: int,
    hi: int,
) -> tuple[float, float, float, float, float]:
    """Weighted sums of (ln L, ∂r, ∂α, ∂a, ∂b) over rows lo..hi-1 (x-terms: table)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for i in range(lo, hi):
        j = int(x[i])
        ll, g_r, g_al, g_a, g_b = _row_grad(
            k, x[i], t_x[i], T[i],
            tab[j, 0], tab[j, 1], tab[j, 2], tab[j, 3], tab[j, 4], tab[j, 5],
        )
        w = weights[i]
        s0 += w * ll
        s1 += w * g_r
        s2 += w * g_al
        s3 += w * g_a
        s4 += w * g_b
    return s0, s1, s2, s3, s4


@njit(cache=True, fastmath=False)
def _chunk_grad_direct(
    k: tuple,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    lo: int,
    hi: int,
) -> tuple[float, float, float, float, float]:
    """As :func:`_chunk_grad_table`, x-terms computed per row."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for i in range(lo, hi):
        logc, lnw, inv_bx1, d_r, d_ab, d_bm1 = _xterms_grad(k, x[i])
        ll, g_r, g_al, g_a, g_b = _row_grad(
            k, x[i], t_x[i], T[i], logc, lnw, inv_bx1, d_r, d_ab, d_bm1
        )
        w = weights[i]
        s0 += w * ll
        s1 += w * g_r
        s2 += w * g_al
        s3 += w * g_a
        s4 += w * g_b
    return s0, s1, s2, s3, s4


# --------------------------------------------------------------------------------------
# Array wrappers
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, parallel=True)
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
    n = x.size
    out = np.empty(n)
    if not _params_ok(r, alpha, a, b):
        out[:] = -math.inf
        return out
    k = bgnbd_constants(r, alpha, a, b)
    size = _table_size(x)
    if size > 0:
        tab = _build_table(k, size, False)
        for i in prange(n):
            j = int(x[i])
            out[i] = _row_value(k, x[i], t_x[i], T[i], tab[j, 0], tab[j, 1])
    else:
        for i in prange(n):
            logc, lnw = _xterms_value(k, x[i])
            out[i] = _row_value(k, x[i], t_x[i], T[i], logc, lnw)
    return out


@njit(cache=True, fastmath=False, parallel=True)
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
    bit, the first element returned by :func:`bgnbd_loglik_sum_grad`.

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
    if not _params_ok(r, alpha, a, b):
        return -math.inf
    n = x.size
    k = bgnbd_constants(r, alpha, a, b)
    nchunk = (n + _CHUNK - 1) // _CHUNK
    part = np.zeros(nchunk)
    size = _table_size(x)
    use_table = size > 0
    # A 1-row dummy keeps the array typed when the table is not used.
    tab = _build_table(k, size, False) if use_table else np.zeros((1, _NCOL_VALUE))
    for c in prange(nchunk):
        lo = c * _CHUNK
        part[c] = _chunk_value(k, x, t_x, T, weights, tab, use_table, lo, min(lo + _CHUNK, n))
    # Chunk sums in a fixed order: the result does not depend on the thread count.
    total = 0.0
    for c in range(nchunk):
        total += part[c]
    return total


@njit(cache=True, fastmath=False, parallel=True)
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
    Science 24(2), eq. (6); the derivatives are listed in :func:`_row_grad`.

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
    grad = np.zeros(4)
    if not _params_ok(r, alpha, a, b):
        grad[:] = math.nan
        return -math.inf, grad
    n = x.size
    k = bgnbd_constants(r, alpha, a, b)
    nchunk = (n + _CHUNK - 1) // _CHUNK
    part = np.zeros((nchunk, 5))
    size = _table_size(x)
    use_table = size > 0
    tab = _build_table(k, size, True) if use_table else np.zeros((1, _NCOL_GRAD))
    for c in prange(nchunk):
        lo = c * _CHUNK
        hi = min(lo + _CHUNK, n)
        if use_table:
            t = _chunk_grad_table(k, x, t_x, T, weights, tab, lo, hi)
        else:
            t = _chunk_grad_direct(k, x, t_x, T, weights, lo, hi)
        part[c, 0] = t[0]
        part[c, 1] = t[1]
        part[c, 2] = t[2]
        part[c, 3] = t[3]
        part[c, 4] = t[4]
    # Chunk sums in a fixed order: the result does not depend on the thread count.
    total = 0.0
    for c in range(nchunk):
        total += part[c, 0]
        grad[0] += part[c, 1]
        grad[1] += part[c, 2]
        grad[2] += part[c, 3]
        grad[3] += part[c, 4]
    return total, grad
