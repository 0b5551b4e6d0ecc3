"""Special functions for the Numba kernels, and the chunking helpers of the likelihood sums.

Numba supports ``math.lgamma`` but none of ``scipy.special``; the few functions the
BTYD likelihoods need beyond it are written here once, as scalar ``@njit`` functions,
and tested against SciPy and mpmath in ``tests/test_kernels_special.py``:

- :func:`lbeta`, :func:`digamma`, :func:`log1pexp`, :func:`logaddexp`, :func:`exprel`;
- :func:`log1p_fast`: ``ln(1 + y)`` within ~1 ulp, cheaper than libm ``log1p``;
- :func:`lnpoch` ``= lnΓ(z+x) - lnΓ(z)`` and :func:`digamma_diff` ``= ψ(z+x) - ψ(z)``,
  which take the difference of the asymptotic series analytically for ``z >= 10`` instead of
  subtracting two large values (``lgamma(z+x) - lgamma(z)`` loses ``eps·lnΓ(z)``, 1e-11
  absolute at z = 1e4; ``ψ(z+x) - ψ(z)`` loses all digits when x << z).

The second part holds what the BG/NBD and Gamma-Gamma log-likelihood sums share: the fixed
chunking that makes their sums independent of the thread count, the row count below which
they run serially, the choice of the x values at which their x-only terms are tabulated
(:func:`int_table_rows`) and the in-order sum of the chunk results (:func:`sum_chunks`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "distinct_times",
    "lbeta",
    "digamma",
    "log1pexp",
    "logaddexp",
    "exprel",
    "log1p_fast",
    "lnpoch",
    "lnpoch_hoist",
    "lnpoch_h",
    "digamma_diff",
    "CHUNK",
    "PARALLEL_MIN_ROWS",
    "int_table_rows",
    "sum_chunks",
]

# Below this argument lnpoch uses lgamma and digamma_diff shifts the argument up; at or
# above it the asymptotic series (seven terms) are exact to ~3e-17.
_ASYMPTOTIC_MIN = 10.0

# Stirling series of lnΓ: coefficients B_2k / (2k (2k-1)), k = 1..7 (Abramowitz & Stegun
# 6.1.40); next term 3617/(122400 z^15), 3e-17 at z = 10.
_LG_C = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
)
# Asymptotic series of ψ: coefficients B_2k / (2k), k = 1..7 (A&S 6.3.18); next term
# 3617/(8160 z^16), 4e-17 at z = 10.
_DG_C = (
    1.0 / 12.0,
    -1.0 / 120.0,
    1.0 / 252.0,
    -1.0 / 240.0,
    1.0 / 132.0,
    -691.0 / 32760.0,
    1.0 / 12.0,
)


@njit(cache=True, fastmath=False)
def log1p_fast(y: float) -> float:
    """``ln(1 + y)`` for -1 < y < inf from one ``log`` and one division, within ~1 ulp.

    ``u = 1 + y`` rounds to ``1 + y + δ``; ``(u - 1) - y`` recovers δ exactly and
    ``ln u - δ/u`` removes its first-order effect (for u == 1 it returns y exactly). No
    branch, and cheaper than libm ``log1p`` (Goldberg 1991, "What every computer scientist
    should know about floating-point arithmetic", ACM Computing Surveys 23(1), thm. 4, uses
    the same correction in the form ``y ln u / (u - 1)``). ``y = inf`` gives NaN.
    """
    u = 1.0 + y
    return math.log(u) - ((u - 1.0) - y) / u


@njit(cache=True, fastmath=False)
def lbeta(a: float, b: float) -> float:
    """Log of the Beta function, ``ln B(a, b) = lnΓ(a) + lnΓ(b) - lnΓ(a + b)``, a, b > 0.

    Evaluated as ``lnΓ(lo) - lnpoch(hi, lo)`` with ``lo = min(a, b)``, ``hi = max(a, b)``:
    the large ``lnΓ(hi)`` and ``lnΓ(hi + lo)`` are differenced analytically by
    :func:`lnpoch`, so the result is accurate relative to ``|lnΓ(lo)| + |ln B|`` even when
    ``hi`` is huge (e.g. ``B(1e8, 3)``), where the three-lgamma form loses ~8 digits.
    """
    lo = min(a, b)
    return math.lgamma(lo) - lnpoch(max(a, b), lo)


@njit(cache=True, fastmath=False)
def digamma(x: float) -> float:
    """Digamma function ψ(x) for x > 0.

    Shifts x above 10 with ψ(x) = ψ(x + 1) - 1/x, then uses the asymptotic series
    (Abramowitz & Stegun 6.3.18), whose truncation error there is below 1e-16.
    """
    if x <= 0.0:
        # BTYD parameters and counts are positive; poles and the reflection formula
        # are not needed.
        return math.nan
    acc = 0.0
    while x < 10.0:
        acc -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (
        1.0 / 12.0
        - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0))))
    )
    return acc + math.log(x) - 0.5 * inv - series


@njit(cache=True, fastmath=False)
def log1pexp(x: float) -> float:
    """``ln(1 + e^x)`` without overflow for large x or loss for very negative x."""
    if x > 35.0:
        return x + math.exp(-x)
    if x > -35.0:
        return math.log1p(math.exp(x))
    return math.exp(x)


@njit(cache=True, fastmath=False)
def logaddexp(x: float, y: float) -> float:
    """``ln(e^x + e^y)`` computed stably."""
    if x == -math.inf and y == -math.inf:
        return -math.inf
    if x > y:
        return x + math.log1p(math.exp(y - x))
    return y + math.log1p(math.exp(x - y))


@njit(cache=True, fastmath=False)
def exprel(x: float) -> float:
    """``(e^x - 1) / x`` with its limit 1 at x = 0 (no cancellation for small x)."""
    if x == 0.0:
        return 1.0
    if abs(x) < 1e-5:
        return 1.0 + x * (0.5 + x / 6.0)
    return math.expm1(x) / x


# --------------------------------------------------------------------------------------
# lnΓ and ψ differences
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _stirling_diff(z: float, y: float, x: float) -> float:
    """``φ(z) - φ(y)`` for ``y = z + x``, z >= 10, φ(z) = Σ_k c_k z^(1-2k) the Stirling
    correction of lnΓ (A&S 6.1.40), without cancellation.

    With ``a = 1/z``, ``b = 1/y``: ``a^n - b^n = (a - b) e_n``, ``a - b = x a b`` and
    ``e_n = Σ_{j<n} a^j b^(n-1-j)`` (positive terms), ``e_{n+2} = b² e_n + a^n (a + b)``.
    """
    a = 1.0 / z
    b = 1.0 / y
    a2 = a * a
    b2 = b * b
    s = a + b
    an = a  # a^(2k-3) when e_(2k-1) is formed
    e = 1.0  # e_1
    acc = _LG_C[0]
    for k in range(1, 7):
        e = b2 * e + an * s
        an *= a2
        acc += _LG_C[k] * e
    return x * a * b * acc


@njit(cache=True, fastmath=False)
def _psi_series_diff(z: float, y: float, x: float) -> float:
    """``S(z) - S(y)`` for ``y = z + x``, z >= 10, S(z) = Σ_k c_k z^(-2k) the asymptotic
    series of ``ln z - 1/(2z) - ψ(z)`` (A&S 6.3.18), without cancellation.

    With ``u = 1/z²``, ``v = 1/y²``: ``u^k - v^k = (u - v) h_(k-1)``, ``u - v = x (z + y) u v``
    and ``h_k = Σ_{j<=k} u^j v^(k-j)`` (positive terms), ``h_k = v h_(k-1) + u^k``.
    """
    u = 1.0 / (z * z)
    v = 1.0 / (y * y)
    uk = 1.0
    h = 1.0  # h_0
    acc = _DG_C[0]
    for k in range(1, 7):
        uk *= u
        h = v * h + uk
        acc += _DG_C[k] * h
    return x * (z + y) * u * v * acc


@njit(cache=True, fastmath=False)
def lnpoch_hoist(z: float) -> float:
    """The part of :func:`lnpoch` ``(z, ·)`` that depends on z only: ``lnΓ(z)`` for z < 10
    (unused, 0, above). Compute it once per z for many calls of :func:`lnpoch_h`."""
    if z < _ASYMPTOTIC_MIN:
        return math.lgamma(z)
    return 0.0


@njit(cache=True, fastmath=False)
def lnpoch_h(z: float, hz: float, x: float) -> float:
    """:func:`lnpoch` ``(z, x)`` given ``hz = lnpoch_hoist(z)`` (bit-identical to it)."""
    if x == 0.0:
        return 0.0
    if not (z >= _ASYMPTOTIC_MIN):
        if not (z > 0.0):
            return math.nan
        return math.lgamma(z + x) - hz
    # Stirling forms of lnΓ(y) and lnΓ(z) subtracted term by term; every term is >= 0
    # and O(result) (ln y > 1), so the result keeps its relative accuracy.
    y = z + x
    return (z - 0.5) * log1p_fast(x / z) + x * (math.log(y) - 1.0) - _stirling_diff(z, y, x)


@njit(cache=True, fastmath=False)
def lnpoch(z: float, x: float) -> float:
    """Log rising factorial ``lnΓ(z + x) - lnΓ(z)`` for z > 0, x >= 0 (x need not be an
    integer).

    For z >= 10 the Stirling series (Abramowitz & Stegun 6.1.40) of both lnΓ are
    subtracted analytically, ``(z - 1/2) ln(1 + x/z) + x (ln(z + x) - 1) - (φ(z) - φ(z+x))``
    with the correction difference in a cancellation-free form: relative accuracy of a few
    ulps for any x (``lgamma(z + x) - lgamma(z)`` has an absolute error of ``eps·lnΓ(z)``,
    1e-11 at z = 1e4, and no relative accuracy for x << z). Below 10 it is
    ``lgamma(z + x) - lgamma(z)``, accurate to a few ulps of ``|lnΓ(z)| + |lnΓ(z + x)|``
    (as well as the conditioning allows where the result is small, e.g. z near 1 or 2).
    Non-positive or NaN z gives NaN.
    """
    return lnpoch_h(z, lnpoch_hoist(z), x)


@njit(cache=True, fastmath=False)
def digamma_diff(z: float, x: float) -> float:
    """``ψ(z + x) - ψ(z)`` for z > 0, x >= 0 (x need not be an integer), to a few ulps
    relative.

    Below 10, z is shifted up with ``ψ(z+1) = ψ(z) + 1/z``, which adds the positive terms
    ``1/(z+k) - 1/(z+k+x) = x / ((z+k)(z+k+x))``. From there the asymptotic series
    (Abramowitz & Stegun 6.3.18) of both terms are differenced analytically,
    ``ln(1 + x/z) + x / (2 z (z + x)) + S(z) - S(z + x)``, every term >= 0: no cancellation
    even when x << z (where ``digamma(z + x) - digamma(z)`` has no correct digits).
    Non-positive or NaN z gives NaN.
    """
    if x == 0.0:
        return 0.0
    if not (z > 0.0):
        return math.nan
    acc = 0.0
    while z < _ASYMPTOTIC_MIN:
        acc += x / (z * (z + x))
        z += 1.0
    y = z + x
    return acc + log1p_fast(x / z) + x / (2.0 * z * y) + _psi_series_diff(z, y, x)


# --------------------------------------------------------------------------------------
# Chunked, thread-count-independent sums of the likelihood kernels
# --------------------------------------------------------------------------------------

# Rows per reduction chunk. Fixed (not derived from the thread count) so that the summation
# order, hence the rounding of the sums, is the same on any number of threads.
CHUNK = 4096

# Row count from which the array kernels run their chunk loop with prange. Below it a
# serial loop over the same chunks is faster (the thread launch costs 10-100 µs, more on a
# loaded machine) and gives the same bits.
PARALLEL_MIN_ROWS = 20_000


@njit(cache=True, fastmath=False)
def _scan_chunk(x: np.ndarray, lo: int, hi: int) -> tuple[float, bool]:
    """``(max x, all x non-negative integers)`` over rows lo..hi-1 (NaN fails the test)."""
    m = 0.0
    ok = True
    for i in range(lo, hi):
        xi = x[i]
        if not (xi >= 0.0 and math.floor(xi) == xi):
            ok = False
        m = max(m, xi)
    return m, ok


@njit(cache=True, fastmath=False, parallel=True)
def _scan_par(x: np.ndarray, cmax: np.ndarray, cok: np.ndarray) -> None:
    n = x.size
    for c in prange(cmax.size):
        lo = c * CHUNK
        cmax[c], cok[c] = _scan_chunk(x, lo, min(lo + CHUNK, n))


# Tables of x-only terms up to this size are filled completely; larger ones only at the x
# values that occur (a marking pass costs ~1 ns per row, an unused entry ~0.1-0.5 µs).
_MARK_MIN = 256


@njit(cache=True, fastmath=False)
def _int_table_size(x: np.ndarray) -> int:
    """``max(x) + 1`` if every x is a non-negative integer and ``max(x) + 1 <= x.size``,
    else 0 (no table: a table larger than the data costs more than it saves)."""
    n = x.size
    if n == 0:
        return 0
    if n < PARALLEL_MIN_ROWS:
        m, ok = _scan_chunk(x, 0, n)
    else:
        nchunk = (n + CHUNK - 1) // CHUNK
        cmax = np.empty(nchunk)
        cok = np.empty(nchunk, dtype=np.bool_)
        _scan_par(x, cmax, cok)
        m = cmax.max()
        ok = cok.all()
    if not ok or m + 1.0 > n:
        return 0
    return int(m) + 1


def distinct_times(t_x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted distinct values of ``t_x`` and ``T`` together, and per row the positions
    (int64) of its ``t_x`` and its ``T`` among them: the structure of the likelihood kernels
    that evaluate time-only terms once per distinct time (BG/NBD's
    :func:`clvbayes.kernels.bgnbd.prepare`, Pareto/NBD's grid ``prepare``)."""
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    times = np.unique(np.concatenate([t_x, T]))
    return times, np.searchsorted(times, t_x), np.searchsorted(times, T)


@njit(cache=True, fastmath=False)
def int_table_rows(x: np.ndarray) -> np.ndarray:
    """Rows of a table of x-only terms indexed by ``x = 0..max(x)`` that a call needs.

    A table is used when every x is a non-negative integer and ``max(x) + 1 <= x.size``;
    otherwise the x-only terms are computed per row. Small tables are filled completely;
    larger ones only at the x values that occur (heavy-tailed frequencies).

    Parameters
    ----------
    x : np.ndarray
        float64 frequencies.

    Returns
    -------
    np.ndarray
        bool mask of length ``max(x) + 1`` (True: fill this row), or of length 0 when no
        table is to be used.
    """
    size = _int_table_size(x)
    if size <= _MARK_MIN:
        return np.ones(size, dtype=np.bool_)
    need = np.zeros(size, dtype=np.bool_)
    for i in range(x.size):
        need[int(x[i])] = True
    return need


@njit(cache=True, fastmath=False)
def sum_chunks(part: np.ndarray) -> np.ndarray:
    """Column sums of the per-chunk results ``part`` (chunks x quantities), adding the
    chunks in index order: the sum does not depend on which thread computed which chunk."""
    out = np.zeros(part.shape[1])
    for c in range(part.shape[0]):
        for j in range(part.shape[1]):
            out[j] += part[c, j]
    return out
