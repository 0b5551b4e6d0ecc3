"""Per-customer posterior summaries of a (draws x customers) block, and per-draw segment
totals (Numba): mean, sd, quantiles (NumPy's default "linear" rule) and ArviZ's HDI rule,
by partial sorts. Model-free: the value engine
(:mod:`clvbayes.kernels.clv`, :mod:`clvbayes.value.engine`) fills the blocks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["clv_summarise"]

# Partial sorts: segments up to this length are insertion-sorted.
_INSERTION = 16



@njit(cache=True, fastmath=False)
def _insertion_sort(v: np.ndarray, lo: int, hi: int) -> None:
    for i in range(lo + 1, hi + 1):
        t = v[i]
        j = i - 1
        while j >= lo and v[j] > t:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = t


@njit(cache=True, fastmath=False)
def _partial_sort(v: np.ndarray, cnt: np.ndarray, stack: np.ndarray) -> None:
    """Permute v (no NaN) so that ``v[k]`` is its k-th smallest value for every rank k marked
    in ``cnt`` (prefix counts: rank k is marked when ``cnt[k+1] > cnt[k]``).

    Quicksort that skips the segments without marked ranks (O(D + m log m) for m marked
    ranks), with a median-of-three pivot and a branch-free Lomuto partition (random draws
    make the branches of a classical partition unpredictable; this is ~2x faster). When no
    value is below the pivot, the values equal to it are gathered at the front instead: they
    are in their final place, so runs of equal values (e.g. P(alive) = 1) cost O(D).
    """
    n = v.shape[0]
    if n < 2:
        return
    sp = 1
    stack[0] = 0
    stack[1] = n - 1
    while sp > 0:
        sp -= 1
        lo = stack[2 * sp]
        hi = stack[2 * sp + 1]
        while hi > lo and cnt[hi + 1] > cnt[lo]:
            if hi - lo < _INSERTION:
                _insertion_sort(v, lo, hi)
                break
            x0 = v[lo]
            x1 = v[(lo + hi) >> 1]
            x2 = v[hi]
            piv = max(min(x0, x1), min(max(x0, x1), x2))
            st = lo
            for i in range(lo, hi + 1):
                t = v[i]
                v[i] = v[st]
                v[st] = t
                st += t < piv
            if st == lo:
                for i in range(lo, hi + 1):
                    t = v[i]
                    v[i] = v[st]
                    v[st] = t
                    st += t <= piv
                lo = st
                continue
            # v[lo..st-1] < piv <= v[st..hi]; continue with the smaller side (stack depth
            # <= log2 n), push the larger
            if st - lo > hi - st + 1:
                stack[2 * sp] = lo
                stack[2 * sp + 1] = st - 1
                sp += 1
                lo = st
            else:
                stack[2 * sp] = st
                stack[2 * sp + 1] = hi
                sp += 1
                hi = st - 1


@njit(cache=True, fastmath=False)
def _summary_plan(nd: int, probs: np.ndarray, hdi_prob: float) -> tuple[np.ndarray, int]:
    """(prefix counts of the ranks the summaries read, HDI width in ranks)."""
    mark = np.zeros(nd, dtype=np.int64)
    for j in range(probs.shape[0]):
        virt = (nd - 1) * probs[j]
        lo = min(max(int(math.floor(virt)), 0), nd - 1)
        mark[lo] = 1
        mark[min(lo + 1, nd - 1)] = 1
    inc = int(math.floor(hdi_prob * nd))
    for k in range(nd - inc):
        mark[k] = 1
        mark[k + inc] = 1
    cnt = np.zeros(nd + 1, dtype=np.int64)
    for k in range(nd):
        cnt[k + 1] = cnt[k] + mark[k]
    return cnt, inc


@njit(cache=True, fastmath=False)
def _column_summary(
    v: np.ndarray,
    probs: np.ndarray,
    cnt: np.ndarray,
    inc: int,
    stack: np.ndarray,
    qout: np.ndarray,
    hout: np.ndarray,
) -> tuple[float, float]:
    """(mean, sd) of v, its quantiles into qout and its HDI into hout; v is reordered.

    mean = Σ v / D and sd = sqrt(Σ (v - mean)^2 / (D - 1)) summed in draw order (the
    operations of ``numpy.mean``/``numpy.std(ddof=1)`` along axis 0); quantiles by NumPy's
    default ("linear", Hyndman & Fan type 7) rule and its interpolation formula; the HDI is
    ArviZ's: the shortest interval between order statistics k and k + floor(prob·D), the first
    one on ties. Any NaN gives NaN everywhere.
    """
    nd = v.shape[0]
    s = 0.0
    for k in range(nd):
        s += v[k]
    mean = s / nd
    if math.isnan(mean):
        for j in range(qout.shape[0]):
            qout[j] = math.nan
        hout[0] = math.nan
        hout[1] = math.nan
        return math.nan, math.nan
    ss = 0.0
    for k in range(nd):
        dv = v[k] - mean
        ss += dv * dv
    sd = math.sqrt(ss / (nd - 1)) if nd > 1 else math.nan
    _partial_sort(v, cnt, stack)
    for j in range(probs.shape[0]):
        virt = (nd - 1) * probs[j]
        lo = int(math.floor(virt))
        if virt >= nd - 1:
            lo = nd - 1
            hi = nd - 1
        elif virt < 0.0:
            lo = 0
            hi = 0
        else:
            hi = lo + 1
        g = virt - math.floor(virt)
        diff = v[hi] - v[lo]
        if g >= 0.5:
            qout[j] = v[hi] - diff * (1.0 - g)
        else:
            qout[j] = v[lo] + diff * g
    best = math.inf
    bi = 0
    for k in range(nd - inc):
        wdt = v[k + inc] - v[k]
        if wdt < best:
            best = wdt
            bi = k
    hout[0] = v[bi]
    hout[1] = v[bi + inc]
    return mean, sd


# Customers summarised together: their columns are copied (transposed) into a contiguous
# buffer, reading whole cache lines of the (D, block) matrix.
_TILE = 32


@njit(cache=True, fastmath=False, parallel=True)
def clv_summarise(
    mat: np.ndarray,
    probs: np.ndarray,
    hdi_prob: float,
    segments: np.ndarray,
    mean: np.ndarray,
    sd: np.ndarray,
    quant: np.ndarray,
    hdi: np.ndarray,
    seg_tot: np.ndarray,
) -> None:
    """Per-customer summaries over the draws of a (D, block) matrix, and segment totals.

    For customer i (column i): ``mean[i]``, ``sd[i]`` (ddof = 1), ``quant[i, j]`` at
    ``probs[j]`` (NumPy's default rule) and ``hdi[i] = (lower, upper)``, the shortest interval
    holding ``floor(hdi_prob · D)`` + 1 draws (ArviZ's rule); NaN for a column with a NaN.
    ``seg_tot[segments[i], d] += mat[d, i]``, added in customer order.

    Parameters
    ----------
    mat : numpy.ndarray
        (D, block) values, e.g. from :func:`clv_block`.
    probs : numpy.ndarray
        Quantile levels in [0, 1].
    hdi_prob : float
        HDI mass in (0, 1).
    segments : numpy.ndarray of int64
        Segment of each customer (0 <= s < seg_tot.shape[0]).
    mean, sd : numpy.ndarray
        Outputs, length block.
    quant, hdi : numpy.ndarray
        Outputs, shapes (block, len(probs)) and (block, 2).
    seg_tot : numpy.ndarray
        (n_segments, D) running totals, updated in place.

    Notes
    -----
    Summaries are parallel over customers, totals over draws; each output is computed by one
    thread in a fixed order, so results do not depend on the thread count, and totals
    accumulated block by block equal those of one pass over all customers.
    """
    nd = mat.shape[0]
    nb = mat.shape[1]
    cnt, inc = _summary_plan(nd, probs, hdi_prob)
    ntile = (nb + _TILE - 1) // _TILE
    for t in prange(ntile):
        i0 = t * _TILE
        i1 = min(nb, i0 + _TILE)
        buf = np.empty((i1 - i0, nd))
        for d in range(nd):
            for i in range(i0, i1):
                buf[i - i0, d] = mat[d, i]
        stack = np.empty(128, dtype=np.int64)
        for i in range(i0, i1):
            mean[i], sd[i] = _column_summary(buf[i - i0], probs, cnt, inc, stack, quant[i], hdi[i])
    for d in prange(nd):
        for i in range(nb):
            seg_tot[segments[i], d] += mat[d, i]
