"""Pareto-smoothed importance sampling (PSIS) per row of log importance ratios (Numba).

Vehtari, Gelman & Gabry (2017), "Practical Bayesian model evaluation using leave-one-out
cross-validation and WAIC", Statistics and Computing 27, 1413-1432 (sec. 2.1, PSIS-LOO);
Vehtari, Simpson, Gelman, Yao & Gabry (2024), "Pareto smoothed importance sampling",
JMLR 25(72), 1-58 (sec. 3, the algorithm; sec. 3.2, the tail length; the k diagnostic).

For one row of ``S`` log ratios ``lr_s`` (for LOO: ``-ln p(y_i | θ_s)``):

1. shift by the maximum (``lr_s - max``, so the largest raw weight is 1);
2. the ``M = ceil(min(0.2 S, 3 sqrt(S / r_eff)))`` largest weights form the tail: the cutoff
   ``u`` is the ``(S - M)``-th largest shifted ratio (at least ``ln(tiny)``), the tail the
   ratios strictly above it (ties at the cutoff stay in the body);
3. a generalized Pareto distribution is fitted to the tail excesses ``e^lr - e^u`` by the
   empirical Bayes method of Zhang & Stephens (2009), "A new and efficient estimation method
   for the generalized Pareto distribution", Technometrics 51(3), 316-325, with the weakly
   informative prior of Vehtari et al. (2024, Appendix C) that pulls ``k`` towards 0.5 with
   the weight of 10 observations;
4. the tail weights are replaced, in their order, by the fitted quantiles at
   ``(i - 1/2) / M_tail`` and truncated at the largest raw weight (1, i.e. 0 in logs);
5. the row is normalised (log weights sum to 0 in ``exp``).

With 4 tail values or fewer nothing is fitted and ``k = inf`` (the weights are only
normalised). These are the conventions of ArviZ 0.23 (``arviz.psislw``), written
independently; the tests check the smoothed log weights and ``k`` against it to 1e-10.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["tail_length", "gpdfit", "gpinv_log", "psis_inplace", "psis_rows", "loo_row", "loo_rows", "psislw"]

_EPS = float(np.finfo(np.float64).eps)
#: ln of the smallest normal double: the lowest tail cutoff (weights below it are zero).
_CUTOFF_MIN = float(np.log(np.finfo(np.float64).tiny))
#: Zhang & Stephens (2009) prior on b: quartile scaling; Vehtari et al. (2024) prior on k:
#: weight of the pseudo-observations at k = 0.5.
_PRIOR_BS = 3.0
_PRIOR_K = 10.0


@njit(cache=True, fastmath=False, error_model="numpy")
def tail_length(n_samples: int, r_eff: float) -> int:
    """Tail length ``M = ceil(min(0.2 S, 3 sqrt(S / r_eff)))``.

    Vehtari et al. (2024), sec. 3.2 (``min(0.2 S, 3 sqrt(S))`` for independent draws; for
    MCMC draws of relative efficiency ``r_eff`` the square root is of ``S / r_eff``, as in
    ArviZ and the R package loo).
    """
    return int(math.ceil(min(n_samples / 5.0, 3.0 * math.sqrt(n_samples / r_eff))))


#: Factors multiplied before one log in :func:`_mean_log1p_neg` (their logs are summed by
#: chunks: 1/16 of the logarithms, ~16 eps relative error per chunk).
_LOG_CHUNK = 16


@njit(cache=True, fastmath=False, error_model="numpy")
def _mean_log1p_neg(th: float, z: np.ndarray) -> float:
    """``mean_i ln(1 - th z_i)``, as the log of products of ``_LOG_CHUNK`` factors (one
    log per chunk instead of one per value); a chunk whose product leaves the normal range
    is summed term by term."""
    n = z.size
    s = 0.0
    for lo in range(0, n, _LOG_CHUNK):
        hi = min(lo + _LOG_CHUNK, n)
        prod = 1.0
        for i in range(lo, hi):
            prod *= 1.0 - th * z[i]
        if 1e-280 < prod < 1e280:
            s += math.log(prod)
        else:
            for i in range(lo, hi):
                s += math.log1p(-th * z[i])
    return s / n


@njit(cache=True, fastmath=False, error_model="numpy")
def gpdfit(z: np.ndarray) -> tuple[float, float]:
    """Generalized Pareto fit ``(k, sigma)`` to sorted positive excesses ``z``.

    Zhang & Stephens (2009), Technometrics 51(3), sec. 3: the posterior mean of
    ``θ = -k / σ`` over ``m = 30 + floor(sqrt(n))`` grid points
    ``θ_j = 1/z_(n) + (1 - sqrt(m / (j - 1/2))) / (3 z_(q))`` (``z_(q)`` the first quartile),
    each weighted by its profile likelihood ``exp(n (ln(-θ/k(θ)) - k(θ) - 1))`` with
    ``k(θ) = mean ln(1 - θ z)``, normalised; grid points of weight below ``10 eps`` are
    dropped. Then ``σ = -k/θ`` and the prior of Vehtari et al. (2024), Appendix C:
    ``k = (n k + 10 · 0.5) / (n + 10)`` (``σ`` from the unadjusted ``k``, as in ArviZ).
    """
    n = z.size
    m = 30 + int(math.sqrt(n))
    quart = z[int(n / 4 + 0.5) - 1]
    theta = np.empty(m)
    lscale = np.empty(m)
    top = -math.inf
    for j in range(m):
        th = (1.0 - math.sqrt(m / (j + 1 - 0.5))) / (_PRIOR_BS * quart) + 1.0 / z[n - 1]
        kj = _mean_log1p_neg(th, z)
        theta[j] = th
        lscale[j] = n * (math.log(-(th / kj)) - kj - 1.0)
        if lscale[j] > top:
            top = lscale[j]
    # weight_j = exp(L_j) / sum_l exp(L_l), shifted by the largest L (no overflow)
    total = 0.0
    for j in range(m):
        total += math.exp(lscale[j] - top)
    kept = 0.0
    th_post = 0.0
    for j in range(m):
        wj = math.exp(lscale[j] - top) / total
        if wj >= 10.0 * _EPS:  # also drops NaN
            kept += wj
            th_post += theta[j] * wj
    th_post /= kept
    s = 0.0
    for i in range(n):
        s += math.log1p(-th_post * z[i])
    k = s / n
    sigma = -k / th_post
    k = (n * k + _PRIOR_K * 0.5) / (n + _PRIOR_K)
    return k, sigma


@njit(cache=True, fastmath=False, error_model="numpy")
def gpinv_log(p: float, k: float, sigma: float, shift: float) -> float:
    """``ln(shift + F^{-1}(p))`` for the generalized Pareto quantile function
    ``F^{-1}(p) = σ ((1 - p)^{-k} - 1) / k`` (``-σ ln(1 - p)`` at ``k = 0``); NaN for
    ``σ <= 0`` (Vehtari et al. 2024, eq. 2)."""
    if not sigma > 0.0:
        return math.nan
    if abs(k) < _EPS:
        q = -math.log1p(-p)
    else:
        q = math.expm1(-k * math.log1p(-p)) / k
    return math.log(q * sigma + shift)


@njit(cache=True, fastmath=False, error_model="numpy")
def _logsumexp(v: np.ndarray) -> float:
    mx = -math.inf
    for i in range(v.size):
        if v[i] > mx:
            mx = v[i]
    if not math.isfinite(mx):
        return mx
    s = 0.0
    for i in range(v.size):
        s += math.exp(v[i] - mx)
    return mx + math.log(s)


@njit(cache=True, fastmath=False, error_model="numpy")
def _select_largest(w: np.ndarray, m: int) -> None:
    """Reorder ``w`` in place so that ``w[-m:]`` holds its ``m`` largest values (in no
    order), in O(S) expected time: Hoare's FIND (Hoare 1961, "Algorithm 65: Find", CACM
    4(7), 321-322) with a median-of-three pivot; after ``2 log2(S) + 8`` rounds the range
    left is sorted instead (O(S log S) at worst, as introselect)."""
    n = w.size
    kth = n - m  # the position that must hold the m-th largest value
    lo = 0
    hi = n - 1
    rounds = 2 * int(math.log2(max(n, 1))) + 8
    while hi > lo:
        if rounds == 0:
            w[lo:hi + 1] = np.sort(w[lo:hi + 1])
            return
        rounds -= 1
        mid = (lo + hi) >> 1
        a, b, c = w[lo], w[mid], w[hi]
        if a > b:
            a, b = b, a
        if b > c:
            b = c
        if a > b:
            b = a
        i = lo
        j = hi
        # Hoare partition: values equal to the pivot may go either side (ties do not degrade it)
        while i <= j:
            while w[i] < b:
                i += 1
            while w[j] > b:
                j -= 1
            if i <= j:
                w[i], w[j] = w[j], w[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:  # w[j+1:i] all equal the pivot, and kth is among them
            return


#: Subsampling step of :func:`_tail`'s threshold guess.
_SUB_STEP = 8


@njit(cache=True, fastmath=False, error_model="numpy")
def _top_sorted(v: np.ndarray, m: int, work: np.ndarray) -> np.ndarray:
    """The ``m`` largest values of ``v`` in ascending order (a view of ``work``, of length
    at least ``v.size``; ``v`` is not changed).

    A threshold from the subsample ``v[::8]`` that about ``1.5 m`` values exceed keeps only
    those candidates (a comparison per value and no branch, where a selection on all S
    mispredicts about half its branches); :func:`_select_largest` and a sort of ``m``
    values on them. Exact whenever at least ``m`` values exceed the threshold (any value
    not above it is below every candidate), else the selection runs on all of ``v``.
    """
    S = v.size
    ns = (S + _SUB_STEP - 1) // _SUB_STEP
    r = int(1.5 * m / _SUB_STEP) + 8  # rank from the top in the subsample
    n_cand = 0
    if ns >= 4 * r:
        sub = work[:ns]
        for j in range(ns):
            sub[j] = v[j * _SUB_STEP]
        _select_largest(sub, r + 1)
        t = sub[ns - r - 1]
        for j in range(ns - r, ns):
            t = min(t, sub[j])
        # t is the (r+1)-th largest of the subsample: about (r+1) * 8 values are above it
        for s in range(S):
            work[n_cand] = v[s]
            n_cand += 1 if v[s] > t else 0  # branch-free compaction
    if n_cand < m:
        work[:S] = v
        n_cand = S
    cand = work[:n_cand]
    _select_largest(cand, m)
    top = cand[n_cand - m:]
    top.sort()
    return top


@njit(cache=True, fastmath=False, error_model="numpy")
def _tail(lw: np.ndarray, m_tail: int, work: np.ndarray) -> tuple[float, np.ndarray]:
    """Step 2 of the module docstring on shifted log ratios ``lw``.

    Returns ``(cutoff, tail)``: ``tail`` (a view of ``work``, length ``>= S``) holds the
    ratios strictly above the cutoff, in ascending order. Only the ``m_tail + 1`` largest
    ratios are sorted (:func:`_top_sorted`), not all S.
    """
    top = _top_sorted(lw, min(m_tail + 1, lw.size), work)
    cut = top[0]  # the value at position S - M - 1 of the ascending order
    if cut < _CUTOFF_MIN:
        cut = _CUTOFF_MIN
    first = 0
    while first < top.size and top[first] <= cut:
        first += 1
    return cut, top[first:]


@njit(cache=True, fastmath=False, error_model="numpy")
def _pareto_smooth(tail: np.ndarray, cut: float, out: np.ndarray) -> float:
    """Steps 3-4 of the module docstring: ``out[:n]`` = the smoothed log weights of the
    ascending tail ratios ``tail`` (n of them) above ``cutoff``, in the same order; the
    Pareto shape ``k`` returned. With ``n <= 4`` or a failed fit (``k`` not finite) the
    tail is copied unchanged."""
    n_tail = tail.size
    out[:n_tail] = tail
    if n_tail <= 4:
        return math.inf
    exp_cut = math.exp(cut)
    z = np.empty(n_tail)
    for i in range(n_tail):
        z[i] = math.exp(tail[i]) - exp_cut
    k, sigma = gpdfit(z)
    if math.isfinite(k):
        for i in range(n_tail):
            v = gpinv_log((i + 0.5) / n_tail, k, sigma, exp_cut)
            out[i] = 0.0 if v > 0.0 else v  # truncated at the largest raw weight
    return k


@njit(cache=True, fastmath=False, error_model="numpy")
def psis_inplace(lw: np.ndarray, m_tail: int) -> float:
    """Replace the log ratios ``lw`` (one row of ``S``) by their Pareto-smoothed,
    truncated, normalised log weights; return the Pareto shape ``k``.

    ``m_tail`` is :func:`tail_length`. The steps are those of the module docstring
    (Vehtari et al. 2024, sec. 3).
    """
    S = lw.size
    mx = -math.inf
    for i in range(S):
        if lw[i] > mx:
            mx = lw[i]
    for i in range(S):
        lw[i] -= mx
    cut, tail = _tail(lw, m_tail, np.empty(S))
    n_tail = tail.size
    smooth = np.empty(n_tail)
    k = _pareto_smooth(tail, cut, smooth)
    if n_tail > 4:
        # the tail draws' positions, in ascending order of their ratios (ties: any order)
        pos = np.flatnonzero(lw > cut)
        order = np.argsort(lw[pos])
        for i in range(n_tail):
            lw[pos[order[i]]] = smooth[i]
    norm = _logsumexp(lw)
    for i in range(S):
        lw[i] -= norm
    return k


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def psis_rows(log_ratios: np.ndarray, m_tail: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`psis_inplace` on every row of ``log_ratios`` (n, S); returns the smoothed log
    weights (a new array) and ``k`` per row."""
    n = log_ratios.shape[0]
    out = np.empty_like(log_ratios)
    k = np.empty(n)
    for i in prange(n):
        row = log_ratios[i].copy()
        k[i] = psis_inplace(row, m_tail)
        out[i] = row
    return out, k


@njit(cache=True, fastmath=False, error_model="numpy")
def range_of(v: np.ndarray) -> tuple[float, float]:
    """``(min(v), max(v))``."""
    lo = math.inf
    hi = -math.inf
    for s in range(v.size):
        lo = min(lo, v[s])
        hi = max(hi, v[s])
    return lo, hi


@njit(cache=True, fastmath=False, error_model="numpy")
def loo_row(ll: np.ndarray, m_tail: int, work: np.ndarray, smooth: np.ndarray,
            lo_hi: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """PSIS-LOO terms ``(elpd_i, lppd_i, k_i)`` of one row ``ll`` of S pointwise
    log-likelihoods.

    Vehtari, Gelman & Gabry (2017), eqs. (3) and (10): with ``w_s`` the PSIS weights of the
    ratios ``1 / p(y_i | θ_s)`` (normalised), ``elpd_i = ln Σ_s w_s p(y_i | θ_s)``;
    ``lppd_i = ln((1/S) Σ_s p(y_i | θ_s))`` (eq. 5); ``k_i`` the Pareto shape. A row whose
    log-likelihood is the same for every draw (a customer with ``T = 0``: ln L = 0) gets
    ``k = -inf``: its leave-one-out posterior is the posterior, so the estimate is exact
    (ArviZ reports ``inf``, having no tail to fit).

    A body (untouched) draw has ``ln w_s + ln p_s = -max_s(-ln p_s) = min_s ln p_s``, so
    only the tail's terms of ``elpd_i`` are summed draw by draw; a tail draw of raw ratio
    ``r`` and smoothed log weight ``v`` has ``ln w_s + ln p_s - min ln p = v - r``, so the
    tail is needed by value only (no positions). ``work`` (length 2 S) and ``smooth``
    (length ``m_tail + 1``) are work space; ``lo_hi`` is ``range_of(ll)`` when the caller
    has it already.
    """
    S = ll.size
    lo, hi = range_of(ll) if lo_hi is None else lo_hi
    if lo == hi:
        return lo, lo, -math.inf
    lw = work[:S]
    for s in range(S):
        lw[s] = lo - ll[s]  # log ratios -ln p shifted by their maximum, -min ln p
    cut, tail_raw = _tail(lw, m_tail, work[S:])
    n_tail = tail_raw.size
    k = _pareto_smooth(tail_raw, cut, smooth)
    # one exp per draw: exp(lo - ll) = exp(lo - hi) / exp(ll - hi) while exp(lo - hi) is normal
    c = math.exp(lo - hi)
    recip = c > 1e-300
    e_sum = 0.0
    body = 0.0
    for s in range(S):
        e = math.exp(ll[s] - hi)
        e_sum += e
        raw = lo - ll[s]  # the ratio before smoothing: body draws are those <= cut
        if raw <= cut:
            body += c / e if recip else math.exp(raw)
    lppd = hi + math.log(e_sum) - math.log(S)
    tail = 0.0
    tail_ll = 0.0
    for t in range(n_tail):
        tail += math.exp(smooth[t])
        tail_ll += math.exp(smooth[t] - tail_raw[t])
    # ln Σ_s w_s p_s with w normalised; a body draw has ln w_s + ln p_s = lo
    elpd = lo + math.log((S - n_tail) + tail_ll) - math.log(body + tail)
    return elpd, lppd, k


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def loo_rows(loglik: np.ndarray, m_tail: int, elpd: np.ndarray, lppd: np.ndarray, k: np.ndarray) -> None:
    """:func:`loo_row` of each row of a pointwise log-likelihood block ``loglik`` (n, S),
    written into ``elpd``, ``lppd`` and ``k`` (length n)."""
    n, S = loglik.shape
    for i in prange(n):
        elpd[i], lppd[i], k[i] = loo_row(loglik[i], m_tail, np.empty(2 * S), np.empty(m_tail + 1))


def psislw(log_ratios: np.ndarray, r_eff: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed normalised log weights and ``k`` of each row of ``log_ratios``.

    The last axis holds the ``S`` draws (as in :func:`arviz.psislw`, same results).

    Parameters
    ----------
    log_ratios : array_like, shape (..., S)
        Log importance ratios; for leave-one-out, minus the pointwise log-likelihood.
    r_eff : float, default 1
        Relative efficiency of the draws (effective sample size / S), for the tail length.

    Returns
    -------
    log_weights : ndarray, shape (..., S)
    k : ndarray, shape (...)
    """
    lr = np.asarray(log_ratios, dtype=np.float64)
    if not np.isfinite(lr).all():
        raise ValueError("log_ratios must be finite.")
    S = lr.shape[-1]
    if S < 2:
        raise ValueError(f"PSIS needs at least 2 draws, got {S}.")
    if not (np.isfinite(r_eff) and r_eff > 0):
        raise ValueError(f"r_eff must be positive and finite, got {r_eff!r}.")
    flat = np.ascontiguousarray(lr.reshape(-1, S))
    lw, k = psis_rows(flat, tail_length(S, float(r_eff)))
    return lw.reshape(lr.shape), k.reshape(lr.shape[:-1])
