"""Predictive simulation for the Bayesian models: one replicate per (parameter draw, customer).

Three replicates, each a scalar ``@njit`` core (drawing from Numba's global generator)
and a parallel array wrapper over a grid of ``D`` parameter draws x ``N`` customers:

- **calibration** (:func:`bgnbd_replicate_one`, :func:`clvbayes.kernels.drivers.calibration_replicates`): a
  fresh BG/NBD customer observed for ``(0, T_i]`` (Fader, Hardie & Lee 2005, "Counting your
  customers the easy way", Marketing Science 24(2), section 2): ``λ ~ Gamma(r, rate α)``,
  ``p ~ Beta(a, b)``, first purchase at 0, Poisson repeat purchases of rate ``λ``, dropout
  with probability ``p`` right after each repeat purchase. Returns the repeat count and the
  time of the last repeat purchase (the replicate of ``frequency`` and ``recency``).
- **holdout** (:func:`bgnbd_holdout_replicate_one`, :func:`clvbayes.kernels.drivers.holdout_replicates`):
  purchases in ``(T, T + t]`` of a customer with history ``(x, t_x, T)``. The customer is
  alive at ``T`` with probability ``P(alive | θ, x, t_x, T)`` (:func:`p_alive_one`); given
  the history and being alive, ``λ ~ Gamma(r + x, rate α + T)`` and ``p ~ Beta(a, b + x)``
  (the likelihood of an alive customer is ``λ^x e^{-λT} (1-p)^x``), and by memorylessness
  the future is a fresh BG/NBD process with those values. This is the same identity the
  closed forms of :func:`conditional_expected_purchases_one` and
  :func:`conditional_pmf_one` use.
- **Gamma-Gamma** (:func:`gg_replicate_one`, :func:`gg_mean_spend_replicates`): the mean of
  ``x`` transaction values of a customer (Fader, Hardie & Lee 2005, "RFM and CLV", Journal
  of Marketing Research 42(4); Colombo & Jiang 1999): ``ν ~ Gamma(q, rate γ)`` and the mean
  of ``x`` values ``Gamma(p, rate ν)`` is ``Gamma(p x, rate ν x)``.

Exact sampling of a BG/NBD count without an event loop
------------------------------------------------------
The purchase times do not depend on the dropout coin flips, so over a period of length
``t`` the number of Poisson arrivals is ``K ~ Poisson(λ t)`` and the index ``N`` of the
purchase after which the customer drops is independent of ``K``; the count is ``j =
min(K, N)``. With ``p`` integrated out, ``P(N > n) = B(a, b + n) / B(a, b)`` (beta-geometric),
so ``min(K, N)`` is found by inversion with one uniform and a sequential search of at most
``min(K, 32)`` steps; if the search is not done after 32 steps the rest is drawn exactly
from the conditional law given ``N > 32`` (``p ~ Beta(a, b + 32)``, then a geometric).
Given ``K = k`` the arrival times are the order statistics of ``k`` uniforms on ``(0, t]``,
so the last observed purchase is at ``t · Beta(j, k - j + 1)`` (``t · U^{1/k}`` when ``j =
k``). The cost is a handful of random numbers per replicate whatever ``λ t`` and ``1/p``
are, where the event-by-event simulator of :mod:`clvbayes.kernels.simulate` costs ``min(λ
t, 1/p)`` steps (prior draws routinely imply thousands of purchases per customer).
``tests/test_predictive.py`` checks the two simulators against each other and against the
closed forms.

Numerical range: in the continuation ``p`` is drawn as ``G_a / (G_a + G_b)`` from log-Gamma
draws (shapes below 1 by ``G_s = G_{s+1} U^{1/s}``), so ``-ln(1 - p)``, the rate of the
geometric variable, is ``log1pexp(ln G_a - ln G_b)`` with no underflow to 0 for tiny ``a``
or huge ``b``; the Gamma-Gamma mean is formed in log space (no 0/0). A Poisson mean above
``1e15`` is used as the count itself (relative sd < 3.2e-8). Counts are returned as int32
and capped at ``2^31 - 1``.

Reproducibility (as in :mod:`clvbayes.kernels.simulate`): the ``D x N`` grid is cut into
blocks of one draw x ``SIM_BLOCK`` consecutive customers; block ``k = d · n_blocks + c``
reseeds Numba's thread-local MT19937 with :func:`block_seed` ``(seed, k)`` and draws its
customers in order. Blocks run under ``prange``, and each block's numbers depend only on
``(seed, k)``, so the output is identical for any thread count (and the first draws'
replicates do not change when more draws are added). Per replicate the draw order is:
calibration ``λ, [K, [U, [G_a, G_b, E]], time]``; holdout ``[alive uniform (x > 0 only)],
then as calibration without the time``; Gamma-Gamma ``G_q, G_px`` (brackets: only when
needed).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels.bgnbd_predict import p_alive_one
from clvbayes.kernels.simulate import SIM_BLOCK, block_seed
from clvbayes.kernels.special import log1pexp

__all__ = [
    "INT32_MAX",
    "bgnbd_replicate_one",
    "bgnbd_holdout_replicate_one",
    "gg_replicate_one",
    "gg_mean_spend_replicates",
]

#: Largest count an int32 output holds; larger replicate counts are capped here.
INT32_MAX = 2147483647

# Above this Poisson mean the count is taken equal to the mean (relative sd < 3.2e-8).
_POISSON_MAX = 1e15
# Steps of the sequential search for the dropout purchase before the exact conditional
# Beta-geometric continuation takes over (tiny a, i.e. customers who almost never drop).
_SEARCH_MAX = 32.0


@njit(cache=True, error_model="numpy")
def _log_gamma_draw(shape: float) -> float:
    """ln G for G ~ Gamma(shape, 1); for shape < 1 via G = G_{shape+1} U^{1/shape}.

    The boost (Marsaglia & Tsang 2000, section 6) keeps ln G finite where G itself would
    underflow to 0 (shape ~ 1e-3 gives G < 1e-300 with probability ~ 0.5).
    """
    if shape >= 1.0:
        return math.log(np.random.gamma(shape, 1.0))
    g = np.random.gamma(shape + 1.0, 1.0)
    return math.log(g) + math.log(1.0 - np.random.random()) / shape


@njit(cache=True, error_model="numpy")
def _drop_rate(a: float, b: float) -> float:
    """``-ln(1 - p)`` for ``p ~ Beta(a, b)`` drawn as ``G_a / (G_a + G_b)``."""
    la = _log_gamma_draw(a)
    lb = _log_gamma_draw(b)
    return log1pexp(la - lb)


@njit(cache=True, error_model="numpy")
def _min_dropout_index(a: float, b: float, k: float) -> float:
    """``min(N, k)`` for the purchase ``N`` after which a customer with ``p ~ Beta(a, b)``
    drops out, ``P(N > n) = B(a, b + n) / B(a, b)``, and a count ``k >= 1``.

    Inversion by sequential search with one uniform, ``S_n = Π_{i<n} (b+i)/(a+b+i)``, for
    ``n < min(k, _SEARCH_MAX)``: O(min(N, k)) multiplications, a few for typical
    parameters. If the search ends with ``N > n`` unresolved (``n = _SEARCH_MAX``), it
    continues exactly from the conditional law: given ``N > n``, ``p ~ Beta(a, b + n)`` and
    ``N - n ~ Geometric(p)``, drawn as ``floor(E / -ln(1 - p)) + 1`` with ``E ~ Exp(1)``.
    """
    u = np.random.random()
    s = 1.0
    n = 0.0
    stop = min(k - 1.0, _SEARCH_MAX)
    while n < stop:
        s *= (b + n) / (a + b + n)
        n += 1.0
        if u >= s:
            return n
    if n >= k - 1.0:
        return k  # N > k - 1
    c = _drop_rate(a, b + n)
    e = -math.log(1.0 - np.random.random())
    if not c > 0.0:
        return k  # p underflowed to 0: the customer never drops
    # float: math.floor would return an int64 and overflow for tiny c
    return min(k, n + np.floor(e / c) + 1.0)


@njit(cache=True, error_model="numpy")
def _count_and_last(lam: float, a: float, b: float, t: float, need_time: bool) -> tuple[float, float]:
    """Repeat purchases in ``(0, t]`` of a BG/NBD customer alive at 0 with rate ``lam`` and
    ``p ~ Beta(a, b)``, and the time of the last of them (0 if none).

    ``min(K, N)``, K ~ Poisson(lam t), N the dropout purchase (see module docstring).
    """
    mean = lam * t
    if not mean > 0.0:
        return 0.0, 0.0
    if mean > _POISSON_MAX:
        k = mean
    else:
        k = float(np.random.poisson(mean))
    if k == 0.0:
        return 0.0, 0.0
    j = _min_dropout_index(a, b, k)
    if not need_time:
        return j, 0.0
    if j >= k:
        # the largest of k uniforms on (0, t]
        last = t * math.exp(math.log(1.0 - np.random.random()) / k)
    else:
        last = t * np.random.beta(j, k - j + 1.0)
    return j, last


@njit(cache=True, error_model="numpy")
def bgnbd_replicate_one(r: float, alpha: float, a: float, b: float, T: float) -> tuple[float, float]:
    """One fresh BG/NBD customer over ``(0, T]``: (repeat count, time of the last repeat).

    FHL 2005 section 2: ``λ ~ Gamma(r, rate α)``, ``p ~ Beta(a, b)``; draws from Numba's
    global generator (seed it first). The count is a float (it may exceed the int32 range);
    the time is 0 when the count is 0.

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (> 0).
    T : float
        Length of the observation period after the first purchase (> 0).
    """
    lam = np.random.gamma(r, 1.0 / alpha)
    return _count_and_last(lam, a, b, T, True)


@njit(cache=True, error_model="numpy")
def bgnbd_holdout_replicate_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, t: float
) -> float:
    """Repeat purchases in ``(T, T + t]`` of one customer with history ``(x, t_x, T)``.

    Alive at ``T`` with probability :func:`p_alive_one` (FHL 2005 eq. (10) note; Fader, Hardie
    & Lee, note 021); if alive, ``λ ~ Gamma(r + x, rate α + T)``, ``p ~ Beta(a, b + x)`` and a
    fresh BG/NBD process over ``t``. Its mean is eq. (10) and its distribution
    :func:`conditional_pmf_one`. Draws from Numba's global generator.

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.
    t : float
        Length of the holdout period (>= 0).
    """
    if x > 0.0:
        if np.random.random() >= p_alive_one(r, alpha, a, b, x, t_x, T):
            return 0.0
    lam = np.random.gamma(r + x, 1.0 / (alpha + T))
    j, _ = _count_and_last(lam, a, b + x, t, False)
    return j


@njit(cache=True, error_model="numpy")
def gg_replicate_one(p: float, q: float, gamma: float, x: float) -> float:
    """Mean of ``x`` transaction values of a fresh Gamma-Gamma customer (FHL 2005, RFM & CLV).

    ``ν ~ Gamma(q, rate γ)``; the mean of ``x`` values is ``Gamma(p x, rate ν x)``, formed as
    ``exp(ln G_px - ln G_q + ln γ - ln x)``. Draws from Numba's global generator.

    Parameters
    ----------
    p, q, gamma : float
        Gamma-Gamma parameters (> 0).
    x : float
        Number of transactions (> 0).
    """
    lq = _log_gamma_draw(q)
    lpx = _log_gamma_draw(p * x)
    return math.exp(lpx - lq + math.log(gamma) - math.log(x))


@njit(cache=True, error_model="numpy")
def _to_count(j: float) -> np.int32:
    return np.int32(j) if j < INT32_MAX else np.int32(INT32_MAX)


@njit(cache=True, error_model="numpy", parallel=True)
def gg_mean_spend_replicates(
    p: np.ndarray, q: np.ndarray, gamma: np.ndarray, x: np.ndarray, seed: int
) -> np.ndarray:
    """Gamma-Gamma replicates of the mean spend, per (parameter draw, customer).

    Parameters
    ----------
    p, q, gamma : ndarray of float64, shape (D,)
        One Gamma-Gamma parameter set per draw (> 0).
    x : ndarray of float64, shape (N,)
        Number of repeat transactions per customer (> 0; customers with 0 get nan).
    seed : int
        Non-negative seed; same seed, same output, for any thread count.

    Returns
    -------
    ndarray of float64, shape (D, N)
        Replicated mean value of the customers' ``x`` transactions (``inf`` only if the
        value exceeds the float64 range).
    """
    nd = p.shape[0]
    n = x.shape[0]
    nbc = (n + SIM_BLOCK - 1) // SIM_BLOCK
    out = np.empty((nd, n))
    for k in prange(nd * nbc):
        d = k // nbc
        lo = (k % nbc) * SIM_BLOCK
        hi = min(n, lo + SIM_BLOCK)
        np.random.seed(block_seed(seed, k))
        for i in range(lo, hi):
            out[d, i] = gg_replicate_one(p[d], q[d], gamma[d], x[i]) if x[i] > 0.0 else math.nan
    return out
