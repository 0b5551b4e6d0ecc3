"""MBG/NBD scalar cores (Numba): likelihood and gradient, P(alive), predictions, value
factors and simulation, on BG/NBD's kernels at shifted parameters.

Model: Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of
models for customer base analysis", International Journal of Research in Marketing 24(3),
201-209 (BDF below), with the conditional expectation corrected by Wagner & Hoppe (2008),
"Erratum on the MBG/NBD model", IJRM 25(3), 225-226. As BG/NBD (Fader, Hardie & Lee 2005,
Marketing Science 24(2); FHL): λ ~ Gamma(r, rate α), p ~ Beta(a, b), Poisson(λ) purchases,
but the customer may drop out with probability p right after *every* purchase, the first
(at time 0) included. A customer has x repeat purchases, the last at t_x, and age T.

Likelihood (BDF section 2)::

    L = B(a, b+x+1)/B(a,b) Γ(r+x)α^r / (Γ(r)(α+T)^(r+x))
        + B(a+1, b+x)/B(a,b) Γ(r+x)α^r / (Γ(r)(α+t_x)^(r+x))       (every x, x = 0 included)

Two identities reduce MBG/NBD to BG/NBD (derivation: integrate p against the factor
(1 - p) of surviving time 0, which turns Beta(a, b) into b/(a+b) · Beta(a, b+1)):

1. **Likelihood.** With B(a, b+1)/B(a, b) = b/(a+b),
   ``L = b/(a+b) · L_BG(r, α, a, b+1 | x, t_x, T) + [x = 0] a/(a+b)``: the customer
   either survives time 0 (then p ~ Beta(a, b+1) and the rest is a BG/NBD history) or drops
   out at once (only possible to see when x = 0). For x > 0 the log-likelihood and its
   gradient are BG/NBD's (:mod:`clvbayes.kernels.bgnbd`, FHL eq. 6) at b+1 plus
   ``ln(b/(a+b)) = -log1p(a/b)``; for x = 0, ``L = 1 - b/(a+b) (1 - (α/(α+T))^r)`` in closed
   form (:func:`_no_repeat`).
2. **Given alive at T.** The likelihood of an alive customer is (1-p)^(x+1) λ^x e^{-λT},
   so λ ~ Gamma(r+x, α+T) and p ~ Beta(a, b+x+1), and by memorylessness the future is a fresh
   BG/NBD process with these parameters. Every "given alive" quantity of MBG/NBD is BG/NBD's
   (:mod:`clvbayes.kernels.bgnbd_predict`, :mod:`clvbayes.kernels.clv`) at
   ``(r+x, α+T, a, b+x+1)``; a new customer (age 0) is alive with probability b/(a+b) after
   the first purchase and then a BG/NBD customer with ``(r, α, a, b+1)``.

P(alive) (BDF appendix A, eq. 5): ``1 / (1 + a/(b+x) ((α+T)/(α+t_x))^(r+x))`` for every x;
a customer with no repeat purchase is no longer surely alive (unlike BG/NBD).

Accuracy is that of the BG/NBD kernels reused (the shifts add one rounding to b+1 or
b+x+1, i.e. an absolute perturbation of ~1e-16 in b where the functions' sensitivity to b,
apart from the ln b term handled exactly, is O(1)). Preconditions as in BG/NBD: parameters
> 0, x >= 0 integer-valued, 0 <= t_x <= T (t_x ignored when x = 0), t >= 0, δ >= 0.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from clvbayes.kernels import bgnbd_predict as _bgp
from clvbayes.kernels.bgnbd import (
    _NO_TIMES,
    _params_ok,
    _table_mask,
    bgnbd_loglik,
    bgnbd_loglik_grad_one,
    bgnbd_loglik_one,
    bgnbd_loglik_sum_grad_prepared,
    bgnbd_loglik_sum_prepared,
)
from clvbayes.kernels.clv import _factor_ap
from clvbayes.kernels.predictive import _count_and_last, bgnbd_replicate_one
from clvbayes.kernels.special import log1p_fast, log1pexp

__all__ = [
    "loglik_one",
    "loglik_grad_one",
    "loglik_rows",
    "loglik_sum",
    "loglik_sum_grad",
    "loglik_sum_prepared",
    "loglik_sum_grad_prepared",
    "p_alive_one",
    "expected_purchases_one",
    "pmf_one",
    "conditional_expected_purchases_one",
    "conditional_pmf_one",
    "dert_one",
    "alive_factor_one",
    "replicate_one",
    "holdout_replicate_one",
]


# --------------------------------------------------------------------------------------
# Likelihood
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _no_repeat(
    r: float, alpha: float, a: float, b: float, T: float
) -> tuple[float, float, float, float, float]:
    """(ln L, ∂r, ∂α, ∂a, ∂b) of a customer with x = 0 (BDF likelihood at x = t_x = 0).

    ``L = c + q e`` with ``q = b/(a+b)`` (survive time 0), ``c = a/(a+b)`` (drop out at
    once) and ``e = (1 + T/α)^(-r)``; a sum of positive terms. ln L is ``log1p(-q E)``
    (``E = 1 - e = -expm1(-r lT)``) while ``qE <= 1/2`` (no cancellation near L = 1: ln L
    keeps its relative accuracy for tiny T and is exactly 0 at T = 0), else ``ln L`` itself
    (|ln L| >= ln 2 there). With ``w = q e / L`` the weight of the surviving component:
    ``∂r = -w lT``, ``∂α = w r T / (α(α+T))``, ``∂a = q E/((a+b) L)``,
    ``∂b = -c E/((a+b) L)`` (all products of positive factors: no cancellation).
    """
    lT = log1p_fast(T / alpha)
    rl = r * lT
    e = math.exp(-rl)
    E = -math.expm1(-rl)
    ab = a + b
    q = b / ab
    c = a / ab
    L = c + q * e
    qE = q * E
    ll = math.log1p(-qE) if qE <= 0.5 else math.log(L)
    w = q * e / L
    abL = ab * L
    return ll, -w * lT, w * r * T / alpha / (alpha + T), qE / abL, -c * E / abL


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float
) -> float:
    """MBG/NBD log-likelihood of one customer.

    BDF (2007) section 2 (module docstring): ``ln L_BG(r, α, a, b+1) - log1p(a/b)`` for
    x > 0 (FHL eq. 6 at b+1, :func:`clvbayes.kernels.bgnbd.bgnbd_loglik_one`), the closed
    form of :func:`_no_repeat` for x = 0.

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
        Age of the customer (time since the first purchase), >= 0.

    Returns
    -------
    float
        ln L; ``-inf`` for parameters outside the support. 0 for x = T = 0.
    """
    if not _params_ok(r, alpha, a, b):
        return -math.inf
    if x > 0.0:
        return bgnbd_loglik_one(r, alpha, a, b + 1.0, x, t_x, T) - math.log1p(a / b)
    return _no_repeat(r, alpha, a, b, T)[0]


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_grad_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float
) -> tuple[float, float, float, float, float]:
    """MBG/NBD log-likelihood of one customer and its exact gradient.

    BDF (2007) section 2. For x > 0 BG/NBD's analytic gradient at b+1
    (:func:`clvbayes.kernels.bgnbd.bgnbd_loglik_grad_one`: log-sum-exp weights and digamma
    differences) plus that of ``-log1p(a/b)``: ``∂a -= 1/(a+b)``, ``∂b += a/(b(a+b))``;
    for x = 0 the closed form of :func:`_no_repeat`.

    Parameters
    ----------
    r, alpha, a, b, x, t_x, T : float
        As in :func:`loglik_one`.

    Returns
    -------
    tuple of float
        ``(ln L, ∂/∂r, ∂/∂alpha, ∂/∂a, ∂/∂b)`` on the natural scale;
        ``(-inf, nan, nan, nan, nan)`` for parameters outside the support.
    """
    if not _params_ok(r, alpha, a, b):
        return -math.inf, math.nan, math.nan, math.nan, math.nan
    if x > 0.0:
        ll, g_r, g_al, g_a, g_b = bgnbd_loglik_grad_one(r, alpha, a, b + 1.0, x, t_x, T)
        ab = a + b
        return ll - math.log1p(a / b), g_r, g_al, g_a - 1.0 / ab, g_b + a / (b * ab)
    return _no_repeat(r, alpha, a, b, T)


# --------------------------------------------------------------------------------------
# Array kernels (the family's fast likelihood: BG/NBD's tabulated kernels at b + 1)
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _no_repeat_correction(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, T: np.ndarray, weights: np.ndarray,
    with_grad: bool,
) -> np.ndarray:
    """What turns BG/NBD's weighted sums at b + 1 into MBG/NBD's (BDF section 2).

    Rows with x > 0 add ``-log1p(a/b)`` each (and its gradient); rows with x = 0 replace
    BG/NBD's ``-r log1p(T/α)`` (gradient ``(-log1p(T/α), rT/(α(α+T)), 0, 0)``) by the closed
    form of :func:`_no_repeat`. Returns ``(Δ ln L, Δ∂r, Δ∂α, Δ∂a, Δ∂b)`` (only the first
    entry filled when ``with_grad`` is False). Compressed data hold few x = 0 rows (one per
    distinct age), so this pass costs one comparison per row.
    """
    out = np.zeros(5)
    w_pos = 0.0
    for i in range(x.size):
        w = weights[i]
        if x[i] > 0.0:
            w_pos += w
            continue
        lT = log1p_fast(T[i] / alpha)
        if with_grad:
            ll, g_r, g_al, g_a, g_b = _no_repeat(r, alpha, a, b, T[i])
            out[0] += w * (ll + r * lT)
            out[1] += w * (g_r + lT)
            out[2] += w * (g_al - r * T[i] / alpha / (alpha + T[i]))
            out[3] += w * g_a
            out[4] += w * g_b
        else:
            out[0] += w * (_no_repeat(r, alpha, a, b, T[i])[0] + r * lT)
    ab = a + b
    out[0] -= w_pos * math.log1p(a / b)
    out[3] -= w_pos / ab
    out[4] += w_pos * a / (b * ab)
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_rows(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-row MBG/NBD log-likelihood: BG/NBD's tabulated kernel
    (:func:`clvbayes.kernels.bgnbd.bgnbd_loglik`) at b + 1 minus ``log1p(a/b)`` for x > 0,
    :func:`_no_repeat` for x = 0 (BDF 2007 section 2). Bit for bit :func:`loglik_one`.

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters, > 0.
    x, t_x, T : np.ndarray
        float64 arrays of equal length (preconditions of :func:`loglik_one`).

    Returns
    -------
    np.ndarray
        ln L per row (all ``-inf`` for parameters outside the support).
    """
    if not _params_ok(r, alpha, a, b):
        return np.full(x.size, -math.inf)
    out = bgnbd_loglik(r, alpha, a, b + 1.0, x, t_x, T)
    shift = math.log1p(a / b)
    for i in range(x.size):
        if x[i] > 0.0:
            out[i] -= shift
        else:
            out[i] = _no_repeat(r, alpha, a, b, T[i])[0]
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_sum(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    weights: np.ndarray,
) -> float:
    """Weighted total MBG/NBD log-likelihood ``Σ w_i ln L_i`` (value only).

    BDF (2007) section 2: BG/NBD's tabulated, threaded sum
    (:func:`clvbayes.kernels.bgnbd.bgnbd_loglik_sum`) at b + 1 plus
    :func:`_no_repeat_correction`. Independent of the thread count.

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters, > 0.
    x, t_x, T, weights : np.ndarray
        float64 arrays of equal length; weights = customers per compressed row.

    Returns
    -------
    float
        The weighted sum (``-inf`` for parameters outside the support).
    """
    return loglik_sum_prepared(r, alpha, a, b, x, t_x, T, weights, *_NO_TIMES, _table_mask(x))


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_sum_prepared(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    weights: np.ndarray, times: np.ndarray, ia: np.ndarray, ib: np.ndarray, need: np.ndarray,
) -> float:
    """:func:`loglik_sum` with the data's structure (:func:`clvbayes.kernels.bgnbd.prepare`;
    BG/NBD's prepared sum at b + 1): the same bits."""
    if not _params_ok(r, alpha, a, b):
        return -math.inf
    base = bgnbd_loglik_sum_prepared(r, alpha, a, b + 1.0, x, t_x, T, weights, times, ia, ib, need)
    return base + _no_repeat_correction(r, alpha, a, b, x, T, weights, False)[0]


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_sum_grad(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    weights: np.ndarray,
) -> tuple[float, np.ndarray]:
    """Weighted total MBG/NBD log-likelihood and its exact gradient, in one pass.

    BDF (2007) section 2: BG/NBD's tabulated kernel
    (:func:`clvbayes.kernels.bgnbd.bgnbd_loglik_sum_grad`) at b + 1 (∂/∂b of a function
    of b + 1 is its derivative in the shifted argument) plus :func:`_no_repeat_correction`.

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters, > 0.
    x, t_x, T, weights : np.ndarray
        float64 arrays of equal length.

    Returns
    -------
    value : float
        ``Σ w_i ln L_i`` (``-inf`` for parameters outside the support).
    grad : np.ndarray
        Shape (4,): derivatives with respect to (r, alpha, a, b) (NaN outside the support).
    """
    return loglik_sum_grad_prepared(r, alpha, a, b, x, t_x, T, weights, *_NO_TIMES, _table_mask(x))


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_sum_grad_prepared(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    weights: np.ndarray, times: np.ndarray, ia: np.ndarray, ib: np.ndarray, need: np.ndarray,
) -> tuple[float, np.ndarray]:
    """:func:`loglik_sum_grad` with the data's structure (BG/NBD's prepared kernel at b + 1):
    the same bits, less time per row on day-grid data."""
    if not _params_ok(r, alpha, a, b):
        return -math.inf, np.full(4, math.nan)
    val, grad = bgnbd_loglik_sum_grad_prepared(r, alpha, a, b + 1.0, x, t_x, T, weights, times, ia, ib, need)
    corr = _no_repeat_correction(r, alpha, a, b, x, T, weights, True)
    return val + corr[0], grad + corr[1:]


# --------------------------------------------------------------------------------------
# P(alive) and predictions
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _alive_dead(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float
) -> tuple[float, float]:
    """(P_alive, 1 - P_alive) from the log odds of being dead,
    ``u = ln(a/(b+x)) + (r+x) ln((α+T)/(α+t_x))`` (BDF appendix A, eq. 5); both formed
    directly (no cancellation near either end, no overflow for large x)."""
    tx = t_x if x > 0.0 else 0.0
    u = math.log(a) - math.log(b + x) + (r + x) * math.log1p((T - tx) / (alpha + tx))
    return math.exp(-log1pexp(u)), math.exp(-log1pexp(-u))


@njit(cache=True, fastmath=False, error_model="numpy")
def p_alive_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float
) -> float:
    """P(alive at T | x, t_x, T) = ``1 / (1 + a/(b+x) ((α+T)/(α+t_x))^(r+x))``.

    BDF (2007) appendix A, eq. (5); for every x (x = 0: ``1 / (1 + a/b ((α+T)/α)^r)``,
    which is b/(a+b) at T = 0: the chance of surviving the first purchase).

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.

    Returns
    -------
    float
        Probability in (0, 1].
    """
    return _alive_dead(r, alpha, a, b, x, t_x, T)[0]


@njit(cache=True, fastmath=False, error_model="numpy")
def expected_purchases_one(r: float, alpha: float, a: float, b: float, t: float) -> float:
    """Unconditional E[X(t)], repeat purchases in (0, t] of a new customer.

    BDF (2007): ``b/(a-1) [1 - (α/(α+t))^r 2F1(r, b+1; a+b; t/(α+t))]``, evaluated as
    ``b/(a+b) · E_BG[X(t); r, α, a, b+1]`` (FHL eq. 9 at b+1,
    :func:`clvbayes.kernels.bgnbd_predict.expected_purchases_one`: no removable
    singularity at a = 1, any t/α).

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters (> 0).
    t : float
        Length of the period (>= 0).

    Returns
    -------
    float
    """
    return _bgp.expected_purchases_one(r, alpha, a, b + 1.0, t) / (1.0 + a / b)


@njit(cache=True, fastmath=False, error_model="numpy")
def pmf_one(r: float, alpha: float, a: float, b: float, t: float, n: int) -> float:
    """Unconditional P(X(t) = n) for a new customer.

    BDF (2007): ``B(a, b+n+1)/B(a,b) NB(n) + B(a+1, b+n)/B(a,b) [1 - Σ_{j<n} NB(j)]``,
    NB the negative binomial of the Gamma-Poisson counts; evaluated as
    ``b/(a+b) P_BG(X(t) = n; r, α, a, b+1) + [n = 0] a/(a+b)`` (FHL eq. 8 at b+1,
    :func:`clvbayes.kernels.bgnbd_predict.pmf_one`).

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters (> 0).
    t : float
        Length of the period (>= 0).
    n : int
        Number of repeat purchases (0 for n < 0).

    Returns
    -------
    float
    """
    val = _bgp.pmf_one(r, alpha, a, b + 1.0, t, n) / (1.0 + a / b)
    if n == 0:
        val += 1.0 / (1.0 + b / a)
    return val


@njit(cache=True, fastmath=False, error_model="numpy")
def conditional_expected_purchases_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, t: float
) -> float:
    """E[Y(t) | x, t_x, T], expected repeat purchases in (T, T+t].

    Wagner & Hoppe (2008): ``(a+b+x)/(a-1) [1 - ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x+1;
    a+b+x; t/(α+T+t))] · P_alive``, evaluated as ``P_alive · E_BG[X(t); r+x, α+T, a,
    b+x+1]`` (module docstring, identity 2).

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.
    t : float
        Length of the prediction period (>= 0).

    Returns
    -------
    float
    """
    pa = p_alive_one(r, alpha, a, b, x, t_x, T)
    return pa * _bgp.expected_purchases_one(r + x, alpha + T, a, b + x + 1.0, t)


@njit(cache=True, fastmath=False, error_model="numpy")
def conditional_pmf_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, t: float, n: int
) -> float:
    """P(Y(t) = n | x, t_x, T), n repeat purchases in (T, T+t] given the history.

    ``(1 - P_alive) [n = 0] + P_alive · P_BG(X(t) = n; r+x, α+T, a, b+x+1)`` (the dead buy
    nothing; identity 2 of the module docstring, FHL eq. 8 at the updated parameters).

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.
    t : float
        Length of the prediction period (>= 0).
    n : int
        Number of future repeat purchases.

    Returns
    -------
    float
    """
    pa, pd = _alive_dead(r, alpha, a, b, x, t_x, T)
    val = pa * _bgp.pmf_one(r + x, alpha + T, a, b + x + 1.0, t, n)
    if n == 0:
        val += pd
    return val


@njit(cache=True, fastmath=False, error_model="numpy")
def dert_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, delta: float
) -> float:
    """Discounted expected residual transactions ``E[∫_T^∞ e^{-δ(s-T)} dY(s) | x, t_x, T]``.

    ``P_alive · E[λ/(δ + pλ)]`` over λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x+1) (identity 2),
    i.e. ``P_alive · dert_alive_one(r+x, α+T, a, b+x+1, δ)``
    (:func:`clvbayes.kernels.bgnbd_predict.dert_alive_one`).

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.
    delta : float
        Continuous discount rate per time unit (> 0). At delta == 0 the undiscounted
        expected number of future purchases ``P_alive (a+b+x)/(a-1)`` (+inf for a <= 1).

    Returns
    -------
    float
        NaN for negative or NaN delta.
    """
    f = _bgp.dert_alive_one(r + x, alpha + T, a, b + x + 1.0, delta)
    if f == math.inf:
        return f  # also where P_alive underflows to 0 (no 0 · inf)
    return p_alive_one(r, alpha, a, b, x, t_x, T) * f


@njit(cache=True, fastmath=False, error_model="numpy")
def alive_factor_one(
    quantity: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: float,
    T: float,
    delta: float,
    horizon: float,
) -> float:
    """The value-engine factor F after P(alive), given alive at T (codes of
    :mod:`clvbayes.kernels.clv`).

    BG/NBD's factor (:func:`clvbayes.kernels.clv._factor_ap`) at the posterior given alive,
    ``(r+x, α+T, a, b+x+1)`` (identity 2): ``PURCHASES`` E[X(T, T+h] | alive];
    ``DISCOUNTED``/``CLV``/``LOST`` the discounted expected purchases (DERT factor at
    h = inf); ``DROPOUT`` P(drop out in (T, T+h] | alive); ``PMF + n`` P(n purchases in
    (T, T+h] | alive); ``P_ALIVE``, ``SPEND``: 1. F depends on the customer only through
    α+T for fixed x, so the value engine may interpolate it in ln(α+T).

    Parameters
    ----------
    quantity : int
        Quantity code.
    r, alpha, a, b : float
        MBG/NBD parameters (> 0).
    x, T : float
        Repeat frequency and age of the customer.
    delta : float
        Continuous discount rate per time unit (>= 0).
    horizon : float
        Length of the period (>= 0, may be inf).

    Returns
    -------
    float
    """
    return _factor_ap(quantity, r + x, alpha + T, a, b + x + 1.0, delta, horizon)


# --------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def replicate_one(r: float, alpha: float, a: float, b: float, T: float) -> tuple[float, float]:
    """One new MBG/NBD customer over ``(0, T]``: (repeat count, time of the last repeat).

    BDF (2007) model: with probability E[p] = a/(a+b) the customer drops out right after
    the first purchase (then ``(0, 0)``, one uniform drawn); otherwise p ~ Beta(a, b+1)
    given that survival and the rest is a BG/NBD customer
    (:func:`clvbayes.kernels.predictive.bgnbd_replicate_one` at b+1, its draw order).
    Draws from Numba's global generator (seed it first).

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters (> 0).
    T : float
        Length of the observation period after the first purchase (>= 0).
    """
    if np.random.random() < a / (a + b):
        return 0.0, 0.0
    return bgnbd_replicate_one(r, alpha, a, b + 1.0, T)


@njit(cache=True, error_model="numpy")
def holdout_replicate_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, t: float
) -> float:
    """Repeat purchases in ``(T, T + t]`` of one customer with history ``(x, t_x, T)``.

    Alive at T with probability :func:`p_alive_one` (BDF appendix A, eq. 5; one uniform,
    for every x); if alive, λ ~ Gamma(r+x, rate α+T), p ~ Beta(a, b+x+1) and a fresh BG/NBD
    process over t (:func:`clvbayes.kernels.predictive._count_and_last`). Its mean is
    :func:`conditional_expected_purchases_one`, its law :func:`conditional_pmf_one`. Draws
    from Numba's global generator.

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.
    t : float
        Length of the holdout period (>= 0).
    """
    if np.random.random() >= p_alive_one(r, alpha, a, b, x, t_x, T):
        return 0.0
    lam = np.random.gamma(r + x, 1.0 / (alpha + T))
    j, _ = _count_and_last(lam, a, b + x + 1.0, t, False)
    return j


# --------------------------------------------------------------------------------------
# Event-by-event simulation (the cores of clvbayes.kernels.simulate)
# --------------------------------------------------------------------------------------

# The latent draws are BG/NBD's: λ ~ Gamma(r, rate α), p ~ Beta(a, b), no lifetime drawn up
# front (BDF 2007 section 2).
from clvbayes.kernels.simulate import latent_one  # noqa: E402


@njit(cache=True, error_model="numpy")
def drops_out_one(r: float, alpha: float, a: float, b: float, lam: float, p_drop: float, k: int) -> bool:
    """Whether an MBG/NBD customer drops out right after purchase ``k``: with probability
    ``p_drop`` after every purchase, the first (``k = 0``, at time 0) included (BDF 2007
    section 2; one uniform).

    Parameters
    ----------
    r, alpha, a, b : float
        MBG/NBD parameters (unused: the latent draws carry the customer).
    lam, p_drop : float
        The customer's latent draws (:func:`latent_one`).
    k : int
        Purchases so far after the first one.

    Returns
    -------
    bool
    """
    return np.random.random() < p_drop


__all__ += ["latent_one", "drops_out_one"]
