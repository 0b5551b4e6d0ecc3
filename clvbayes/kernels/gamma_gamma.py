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
  sum) and are computed in fixed blocks whose partial sums are added serially, so the
  result is bit-identical whatever the Numba thread count.

The log-likelihood is written without the cancelling ``px log x + (px-1) log m
- (px+q) log(γ + xm)`` form: with ``u = x m``,
``ln f = -ln B(px, q) - px·log1p(γ/u) - q·log1p(u/γ) - ln m``, and the Gamma-function ratios
use :func:`lgamma_diff` / :func:`digamma_diff`, which stay accurate when one argument is
much larger than the other (``px`` up to 1e8).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "lgamma_diff",
    "digamma_diff",
    "gg_loglik_one",
    "gg_loglik_grad_one",
    "gg_expected_spend_one",
    "gg_loglik",
    "gg_loglik_sum",
    "gg_loglik_sum_grad",
    "gg_expected_spend",
]

# Rows per block in the deterministic weighted sums.
_BLOCK = 2048

# Stirling series coefficients B_{2k} / (2k (2k-1)), k = 1..7, for ln Γ (A&S 6.1.40).
_LG_C = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
)
# Asymptotic series coefficients B_{2k} / (2k), k = 1..7, for ψ (A&S 6.3.18).
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
def lgamma_diff(a: float, d: float) -> float:
    """``ln Γ(a + d) - ln Γ(a)`` for ``a > 0``, ``d >= 0`` without cancellation.

    For ``a >= 10`` the difference of the Stirling series (Abramowitz & Stegun 6.1.40,
    seven correction terms, truncation error < 1e-17 there) is taken term by term:
    ``(a - 1/2) log1p(d/a) + d (ln(a + d) - 1) + Σ c_k a^{1-2k} expm1(-(2k-1) log1p(d/a))``,
    which keeps full relative accuracy when ``d << a`` (e.g. ``a = 1e8``, ``d = 3``), where
    ``lgamma(a + d) - lgamma(a)`` would lose ~8 digits. Below 10 the recurrence
    ``Γ(a+1) = a Γ(a)`` shifts ``a`` up first: ``- Σ_k log1p(d / (a + k))``.
    """
    acc = 0.0
    while a < 10.0:
        acc -= math.log1p(d / a)
        a += 1.0
    l1 = math.log1p(d / a)
    out = acc + (a - 0.5) * l1 + d * (math.log(a + d) - 1.0)
    inv = 1.0 / a
    inv2 = inv * inv
    pw = inv  # a^{-(2k-1)}
    for k in range(7):
        out += _LG_C[k] * pw * math.expm1(-(2.0 * k + 1.0) * l1)
        pw *= inv2
    return out


@njit(cache=True, fastmath=False)
def digamma_diff(a: float, d: float) -> float:
    """``ψ(a + d) - ψ(a)`` for ``a > 0``, ``d >= 0`` without cancellation.

    For ``a >= 10`` the asymptotic series (A&S 6.3.18) is differenced term by term:
    ``log1p(d/a) + d / (2 a (a+d)) - Σ c_k a^{-2k} expm1(-2k log1p(d/a))``.
    Below 10 the recurrence ``ψ(a+1) = ψ(a) + 1/a`` shifts ``a`` up first:
    ``+ Σ_k d / ((a + k)(a + k + d))`` (positive terms, no cancellation).
    """
    acc = 0.0
    while a < 10.0:
        acc += d / (a * (a + d))
        a += 1.0
    l1 = math.log1p(d / a)
    out = acc + l1 + 0.5 * d / (a * (a + d))
    inv2 = 1.0 / (a * a)
    pw = inv2  # a^{-2k}
    for k in range(7):
        out -= _DG_C[k] * pw * math.expm1(-2.0 * (k + 1.0) * l1)
        pw *= inv2
    return out


@njit(cache=True, fastmath=False)
def _lbeta_neg(s: float, t: float) -> float:
    """``ln Γ(s+t) - ln Γ(s) - ln Γ(t)`` (= -ln B(s, t)), differencing against the larger."""
    if s >= t:
        return lgamma_diff(s, t) - math.lgamma(t)
    return lgamma_diff(t, s) - math.lgamma(s)


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
    if not (p > 0.0 and q > 0.0 and gamma > 0.0 and x >= 0.0):
        return math.nan
    if x == 0.0:
        return 0.0
    if not (m > 0.0):
        return math.nan
    px = p * x
    u = x * m
    # px ln(u/(γ+u)) + q ln(γ/(γ+u)) - ln m, written with log1p: no large cancelling terms.
    return (
        _lbeta_neg(px, q)
        - px * math.log1p(gamma / u)
        - q * math.log1p(u / gamma)
        - math.log(m)
    )


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
    if not (p > 0.0 and q > 0.0 and gamma > 0.0 and x >= 0.0):
        return math.nan, math.nan, math.nan, math.nan
    if x == 0.0:
        return 0.0, 0.0, 0.0, 0.0
    if not (m > 0.0):
        return math.nan, math.nan, math.nan, math.nan
    px = p * x
    u = x * m
    l_gu = math.log1p(gamma / u)  # ln((γ+u)/u)
    l_ug = math.log1p(u / gamma)  # ln((γ+u)/γ)
    ll = _lbeta_neg(px, q) - px * l_gu - q * l_ug - math.log(m)
    d_p = x * (digamma_diff(px, q) - l_gu)
    d_q = digamma_diff(q, px) - l_ug
    # q/γ - (px+q)/(γ+u) = (q u - px γ) / (γ (γ+u)): one rounding, no cancellation of
    # two large fractions.
    d_g = (q * u - px * gamma) / (gamma * (gamma + u))
    return ll, d_p, d_q, d_g


@njit(cache=True, fastmath=False)
def gg_expected_spend_one(p: float, q: float, gamma: float, x: float, m: float) -> float:
    """Conditional expected value of a future transaction, ``E[Z | x, m]``.

    Fader, Hardie & Lee (2005), "RFM and CLV", JMR 42(4), eq. (5)::

        E[Z | p, q, γ, x, m] = p (γ + x m) / (p x + q - 1)

    i.e. the posterior mean of ``p/ν`` with ``ν | data ~ Gamma(px + q, rate γ + x m)``.
    With ``x = 0`` this is the population mean ``p γ / (q - 1)`` (``m`` is ignored).

    Returns
    -------
    float
        The expected spend; ``nan`` when ``p x + q <= 1`` (the mean does not exist, e.g.
        ``q <= 1`` for ``x = 0``) or for invalid inputs.
    """
    if not (p > 0.0 and q > 0.0 and gamma > 0.0 and x >= 0.0):
        return math.nan
    if x == 0.0:
        if q <= 1.0:
            return math.nan
        return p * gamma / (q - 1.0)
    if not (m > 0.0):
        return math.nan
    den = p * x + q - 1.0
    if den <= 0.0:
        return math.nan
    return p * (gamma + x * m) / den


@njit(cache=True, fastmath=False, parallel=True)
def gg_loglik(p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood, :func:`gg_loglik_one` over arrays."""
    n = x.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = gg_loglik_one(p, q, gamma, x[i], m[i])
    return out


@njit(cache=True, fastmath=False, parallel=True)
def gg_loglik_sum_grad(
    p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted Gamma-Gamma log-likelihood ``Σ w_i ln f(m_i)`` and its gradient.

    One pass over the data (FHL 2005 RFM & CLV appendix density; derivatives as in
    :func:`gg_loglik_grad_one`). Rows with ``w_i == 0`` are skipped. Partial sums over
    fixed blocks of rows are added serially: the result does not depend on the number of
    threads.

    Returns
    -------
    (float, ndarray)
        The sum and the gradient ``[d/dp, d/dq, d/dgamma]``.
    """
    n = x.shape[0]
    nb = (n + _BLOCK - 1) // _BLOCK
    part = np.zeros((nb, 4))
    for blk in prange(nb):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        hi = min(n, (blk + 1) * _BLOCK)
        for i in range(blk * _BLOCK, hi):
            w = weights[i]
            if w == 0.0:
                continue
            ll, dp, dq, dg = gg_loglik_grad_one(p, q, gamma, x[i], m[i])
            s0 += w * ll
            s1 += w * dp
            s2 += w * dq
            s3 += w * dg
        part[blk, 0] = s0
        part[blk, 1] = s1
        part[blk, 2] = s2
        part[blk, 3] = s3
    tot = 0.0
    grad = np.zeros(3)
    for blk in range(nb):
        tot += part[blk, 0]
        grad[0] += part[blk, 1]
        grad[1] += part[blk, 2]
        grad[2] += part[blk, 3]
    return tot, grad


@njit(cache=True, fastmath=False, parallel=True)
def gg_loglik_sum(
    p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray, weights: np.ndarray
) -> float:
    """Weighted Gamma-Gamma log-likelihood ``Σ w_i ln f(m_i)`` (no gradient).

    Same blocking and zero-weight convention as :func:`gg_loglik_sum_grad`.
    """
    n = x.shape[0]
    nb = (n + _BLOCK - 1) // _BLOCK
    part = np.zeros(nb)
    for blk in prange(nb):
        s = 0.0
        hi = min(n, (blk + 1) * _BLOCK)
        for i in range(blk * _BLOCK, hi):
            w = weights[i]
            if w == 0.0:
                continue
            s += w * gg_loglik_one(p, q, gamma, x[i], m[i])
        part[blk] = s
    tot = 0.0
    for blk in range(nb):
        tot += part[blk]
    return tot


@njit(cache=True, fastmath=False, parallel=True)
def gg_expected_spend(
    p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """``E[Z | x, m]`` per customer (FHL 2005 RFM & CLV eq. (5)); see
    :func:`gg_expected_spend_one` for the ``x = 0`` and ``nan`` conventions."""
    n = x.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = gg_expected_spend_one(p, q, gamma, x[i], m[i])
    return out
