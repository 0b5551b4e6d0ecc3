"""BG/NBD predictions (Numba kernels): P(alive), E[X(t)], conditional E[Y(t)], P(X(t) = n),
the conditional P(Y(t) = n) and discounted expected residual transactions (DERT).

Model: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to
the Pareto/NBD model", Marketing Science 24(2), 275-284 (FHL below). λ ~ Gamma(r, α),
p ~ Beta(a, b); purchases form a Poisson(λ) process and after each repeat purchase the
customer drops out with probability p. A customer has x repeat purchases, the last at t_x,
and has been observed for T time units.

One identity carries everything (derivation in ``docs/theory/bgnbd_predictions.md``): given
the history and *alive at T*, λ ~ Gamma(r+x, α+T) and p ~ Beta(a, b+x) independently, and by
memorylessness the purchases after T form a BG/NBD process with parameters
(r+x, α+T, a, b+x). Hence::

    E[Y(t) | x, t_x, T]     = P_alive · E_BGNBD[X(t); r+x, α+T, a, b+x]        (= FHL eq. 10)
    P(Y(t) = n | x, t_x, T) = (1 - P_alive) [n = 0] + P_alive · P_BGNBD(X(t) = n; r+x, α+T, a, b+x)
    DERT                    = P_alive · (r+x) E[1 / (δ(α+T) + G p)],
                              G ~ Gamma(r+x+1, 1), p ~ Beta(a, b+x)

so one accurate unconditional E[X(t)] and one unconditional pmf serve the conditional
quantities, and DERT needs one two-dimensional integral.

Numerics, all in terms of s = t/α (t/(α+T) for the conditional quantities), L = ln(1+s) and
z = s/(1+s):

- E[X(t)] (FHL eq. 9). For z <= 0.9 a Pfaff-transformed series without the removable
  singularities of eq. 9 at a = 1 and at a + b = 1, with a run-time check of its
  cancellation; otherwise (or when that check fails) a Gauss-Legendre quadrature of
  ``E_p[(1 - (1+ps)^-r) / p]`` over logit(p) with the two Beta tails integrated analytically.
  Accurate to ~1e-12 relative for parameters 1e-4..1e4, x up to 1e4 and s up to 1e8.
- P(X(t) = n) (FHL eq. 8). The tail ``1 - Σ_{j<n} NB(j)`` is the regularized incomplete beta
  ``I_z(n, r)``, taken from its continued fraction where that converges fast and from the
  finite lower sum with ``1 - NB(0) = -expm1(-rL)`` otherwise (no cancellation).
- DERT. A tensor Gauss-Legendre rule in (ln G, logit p) with the small-G, small-p and
  p-near-1 tails summed analytically; accurate to ~1e-10 relative, finite for every δ > 0
  (also for a <= 1, where E[1/p] and hence the undiscounted total are infinite).

Every quantity has a scalar core (``*_one``) for use inside (customer × posterior draw)
loops, and an array wrapper (``bgnbd_*``) that loops over customers with ``prange``; each
output element depends only on its own inputs, so results do not depend on the thread count.

Preconditions (not checked in the hot loops): parameters > 0, x >= 0 integer-valued,
0 <= t_x <= T, t >= 0, δ > 0.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels.special import exprel, lbeta, log1pexp

__all__ = [
    "p_alive_one",
    "expected_purchases_one",
    "conditional_expected_purchases_one",
    "pmf_one",
    "conditional_pmf_one",
    "dert_one",
    "bgnbd_p_alive",
    "bgnbd_expected_purchases",
    "bgnbd_conditional_expected_purchases",
    "bgnbd_pmf",
    "bgnbd_conditional_pmf",
    "bgnbd_dert",
]

# 16-point Gauss-Legendre rule on [-1, 1]. On a panel of width W inside a strip of analyticity
# of half-width d the error is ~ρ^-32 with ρ = 2d/W + sqrt((2d/W)^2 + 1); the integrands below
# are analytic within ~1.2 of the real axis in the log/logit variables, so W = 3 gives ~1e-11
# relative to the panel's mass (and far less for typical panels).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
_NGL = 16

# E[X(t)] series: used for s <= _SERIES_S_MAX (z <= 0.9); at most _SERIES_MAXK terms; accepted
# when (sum of absolute values of the combined terms) / result <= _SERIES_COND_MAX.
_SERIES_S_MAX = 9.0
_SERIES_MAXK = 3000
_SERIES_COND_MAX = 1.0e3

# Number of Taylor terms of the analytic tails (each tail's expansion ratio is <= 0.1).
_TAIL_J = 16
# Relative size below which a quadrature panel's (bounded) contribution is dropped.
_NEG_TOL = 1.0e-18
# Maximal number of quadrature panels per variable (a guard; never reached for valid input).
_MAX_PANELS = 400

# Incomplete-beta continued fraction: used when z < (n+1)/(n+r+2); lower sum up to this n.
_NB_DIRECT_MAX = 2000
_CF_MAXIT = 100000
_FPMIN = 1.0e-300


# --------------------------------------------------------------------------------------
# Special-function helpers
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _stirling_phi(z: float) -> float:
    """lnΓ(z) - [(z - 1/2) ln z - z + ln(2π)/2] for z >= 10 (Stirling series to z^-13)."""
    iz = 1.0 / z
    iz2 = iz * iz
    return iz * (
        1.0 / 12.0
        + iz2
        * (
            -1.0 / 360.0
            + iz2
            * (
                1.0 / 1260.0
                + iz2 * (-1.0 / 1680.0 + iz2 * (1.0 / 1188.0 + iz2 * (-691.0 / 360360.0 + iz2 / 156.0)))
            )
        )
    )


@njit(cache=True, fastmath=False)
def _lnpoch(z: float, x: float) -> float:
    """``lnΓ(z + x) - lnΓ(z)`` for z > 0, x >= 0, accurate in relative terms for large z, x.

    For z >= 10 the Stirling forms are subtracted analytically (no ``eps·lnΓ`` loss); for
    z < 10 and x > 10 the argument is first shifted above 10 with ``Γ(z+1) = zΓ(z)``.
    """
    if x == 0.0:
        return 0.0
    if z >= 10.0:
        y = z + x
        return (z - 0.5) * math.log1p(x / z) + x * (math.log(y) - 1.0) + (_stirling_phi(y) - _stirling_phi(z))
    k = math.ceil(10.0 - z)
    if x > k:
        acc = 0.0
        for i in range(int(k)):
            acc += math.log(z + i)
        return acc + _lnpoch(z + k, x - k)
    return math.lgamma(z + x) - math.lgamma(z)


@njit(cache=True, fastmath=False)
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of ``I_x(a, b)`` (DLMF 8.17.22), modified Lentz.

    ``I_x(a, b) = x^a (1-x)^b / (a B(a, b)) · _betacf(a, b, x)``; converges quickly for
    ``x < (a+1)/(a+b+2)``.
    """
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _FPMIN:
        d = _FPMIN
    d = 1.0 / d
    h = d
    for m in range(1, _CF_MAXIT):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < _FPMIN:
            d = _FPMIN
        c = 1.0 + aa / c
        if abs(c) < _FPMIN:
            c = _FPMIN
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < _FPMIN:
            d = _FPMIN
        c = 1.0 + aa / c
        if abs(c) < _FPMIN:
            c = _FPMIN
        d = 1.0 / d
        dl = d * c
        h *= dl
        if abs(dl - 1.0) < 2.0e-16:
            break
    return h


@njit(cache=True, fastmath=False)
def _log_gammainc_lower(s: float, x: float) -> float:
    """ln P(s, x), the log regularized lower incomplete gamma function, s > 0, x >= 0.

    Series (DLMF 8.7.1, positive terms) for x < s + 1, else ``log1p(-Q)`` with Q from
    Legendre's continued fraction (DLMF 8.9.2).
    """
    if x <= 0.0:
        return -math.inf
    lpre = -x + s * math.log(x) - math.lgamma(s)
    if x < s + 1.0:
        ap = s
        term = 1.0 / s
        tot = term
        for _ in range(100000):
            ap += 1.0
            term *= x / ap
            tot += term
            if term < tot * 1.0e-17:
                break
        return lpre + math.log(tot)
    bb = x + 1.0 - s
    c = 1.0 / _FPMIN
    d = 1.0 / bb
    h = d
    for i in range(1, _CF_MAXIT):
        an = -i * (i - s)
        bb += 2.0
        d = an * d + bb
        if abs(d) < _FPMIN:
            d = _FPMIN
        c = bb + an / c
        if abs(c) < _FPMIN:
            c = _FPMIN
        d = 1.0 / d
        dl = d * c
        h *= dl
        if abs(dl - 1.0) < 2.0e-16:
            break
    return math.log1p(-math.exp(lpre) * h)


@njit(cache=True, fastmath=False)
def _beta_lower_moments(a: float, b: float, x: float, lb: float, out: np.ndarray) -> None:
    """``out[j] = E[p^j; p < x]`` for p ~ Beta(a, b), j = 0..len(out)-1; ``lb = ln B(a, b)``.

    ``B_x(A, b) = x^A (1-x)^b / A · Σ_k (A+b)_k / (A+1)_k x^k`` (DLMF 8.17.8): positive terms,
    ratio <= 0.1 when x <= 0.1 (a+1)/(a+b), which the callers ensure.
    """
    lx = math.log(x)
    l1x = math.log1p(-x)
    for j in range(out.shape[0]):
        A = a + j
        term = 1.0
        tot = 1.0
        for k in range(10000):
            term *= (A + b + k) / (A + 1.0 + k) * x
            tot += term
            if term < tot * 1.0e-17:
                break
        out[j] = math.exp(A * lx + b * l1x - math.log(A) - lb) * tot


# --------------------------------------------------------------------------------------
# P(alive)
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _dead_log_odds(r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float) -> float:
    """``ln[(1 - P_alive) / P_alive] = ln(a/(b+x-1)) + (r+x) ln((α+T)/(α+t_x))`` for x > 0."""
    return math.log(a) - math.log(b + x - 1.0) + (r + x) * math.log1p((T - t_x) / (alpha + t_x))


@njit(cache=True, fastmath=False)
def p_alive_one(r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float) -> float:
    """P(customer alive at T | x, t_x, T) for one customer.

    FHL 2005, eq. (11) / Fader, Hardie & Lee (2008) note "Computing P(alive) using the BG/NBD
    model": ``1 / (1 + [x > 0] a/(b+x-1) ((α+T)/(α+t_x))^(r+x))``, evaluated as
    ``exp(-log1pexp(u))`` with u the log odds of being dead (no overflow for large x).

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.

    Returns
    -------
    float
        Probability in [0, 1]; 1 when x == 0.
    """
    if x <= 0.0:
        return 1.0
    return math.exp(-log1pexp(_dead_log_odds(r, alpha, a, b, x, t_x, T)))


@njit(cache=True, fastmath=False)
def _alive_dead(r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float) -> tuple[float, float]:
    """(P_alive, 1 - P_alive), the second formed directly (no cancellation near P_alive = 1)."""
    if x <= 0.0:
        return 1.0, 0.0
    u = _dead_log_odds(r, alpha, a, b, x, t_x, T)
    return math.exp(-log1pexp(u)), math.exp(-log1pexp(-u))


# --------------------------------------------------------------------------------------
# E[X(t)]
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _ex_series(r: float, a: float, b: float, s: float) -> tuple[float, bool]:
    """E[X(t)] from the Pfaff-transformed series; returns (value, accepted).

    With C = a+b-1, L = ln(1+s), z = s/(1+s)::

        E = C L exprel(-(a-1)L) - e^{-(a-1)L} Σ_{k>=1} (C-r)_k (a)_{k-1} / (C+1)_{k-1} z^k / k!

    (derivation in the docs page); no pole at a = 1 or C = 0. Rejected (``accepted`` False)
    when it does not converge in ``_SERIES_MAXK`` terms or when the two parts cancel by more
    than ``_SERIES_COND_MAX``.
    """
    C = a + b - 1.0
    L = math.log1p(s)
    z = s / (1.0 + s)
    am1L = (a - 1.0) * L
    A1 = C * L * exprel(-am1L)
    c0 = C - r
    term = c0 * z
    y = term
    yabs = abs(term)
    ok = False
    if term == 0.0:
        ok = True
    else:
        for k in range(1, _SERIES_MAXK):
            ratio = (c0 + k) * (a + k - 1.0) / ((C + k) * (k + 1.0)) * z
            term *= ratio
            y += term
            yabs += abs(term)
            if term == 0.0:
                ok = True
                break
            rho = max(abs(ratio), z)
            if rho < 1.0 and abs(term) * rho / (1.0 - rho) <= 1.0e-17 * abs(y):
                ok = True
                break
    e = math.exp(-am1L)
    val = A1 - e * y
    if not ok or not (val > 0.0) or not math.isfinite(val):
        return val, False
    cond = (abs(A1) + e * yabs) / val
    return val, cond <= _SERIES_COND_MAX


@njit(cache=True, fastmath=False)
def _g_knee(r: float, s: float, p: float) -> float:
    """g(p) = (1 - (1+ps)^-r) / p = E[X(t) | p] (λ integrated out); convex, decreasing, <= rs."""
    if p <= 0.0:
        return r * s
    return -math.expm1(-r * math.log1p(p * s)) / p


@njit(cache=True, fastmath=False)
def _ex_quad(r: float, a: float, b: float, s: float) -> float:
    """E[X(t)] = E_p[g(p)], p ~ Beta(a, b), by quadrature (any s > 0, any parameters).

    Over y = logit(p): Gauss-Legendre panels on [logit(pL), logit(1-qR)] walking out from the
    density's mode, dropped once a rigorous log-concavity bound of the remaining mass is
    negligible; p < pL from the Taylor series of g (radius 1/s) against the restricted Beta
    moments, p > 1-qR from the series ``g(1-q) = Σ_j P(NB(r, 1-z) > j) q^j``.
    """
    sig = a + b
    lb = lbeta(a, b)
    L = math.log1p(s)
    pL = min(0.1, 0.1 * (a + 1.0) / sig, 0.1 / (s * (r + 1.0)))
    qR = min(0.1, 0.1 * (b + 1.0) / sig)

    mom = np.empty(_TAIL_J)
    # p < pL: g(p) = Σ_j g_j p^j, g_j = (-1)^j (r)_{j+1} s^{j+1} / (j+1)!
    _beta_lower_moments(a, b, pL, lb, mom)
    gj = r * s
    left = 0.0
    for j in range(_TAIL_J):
        left += gj * mom[j]
        gj *= -(r + j + 1.0) / (j + 2.0) * s
    # 1-p < qR: g(1-q) = Σ_j e_j q^j, e_j = 1 - e^{-rL} Σ_{i<=j} (r)_i z^i / i!
    _beta_lower_moments(b, a, qR, lb, mom)
    z = s / (1.0 + s)
    c = math.exp(-r * L)
    e = -math.expm1(-r * L)
    right = e * mom[0]
    for j in range(1, _TAIL_J):
        c *= (r + j - 1.0) / j * z
        e = max(e - c, 0.0)
        right += e * mom[j]

    yL = math.log(pL) - math.log1p(-pL)
    yH = math.log1p(-qR) - math.log(qR)
    W = min(3.0, 3.0 * math.sqrt(1.0 / a + 1.0 / b))
    ym = math.log(a) - math.log(b)
    anchor = min(max(ym, yL), yH)
    ref0 = max(_g_knee(r, s, a / sig), left + right)
    mid = 0.0
    # Walk right (towards p = 1) then left; panel [y0, y1].
    for direction in range(2):
        edge = anchor
        for _ in range(_MAX_PANELS):
            if direction == 0:
                if edge >= yH:
                    break
                y0 = edge
                y1 = min(edge + W, yH)
                edge = y1
            else:
                if edge <= yL:
                    break
                y1 = edge
                y0 = max(edge - W, yL)
                edge = y0
            h = 0.5 * (y1 - y0)
            cm = 0.5 * (y1 + y0)
            acc = 0.0
            for k in range(_NGL):
                y = cm + h * _GL_X[k]
                lnp = -log1pexp(-y)
                ln1mp = -log1pexp(y)
                p = math.exp(lnp)
                acc += _GL_W[k] * math.exp(a * lnp + b * ln1mp - lb) * _g_knee(r, s, p)
            mid += h * acc
            # Remaining mass beyond `edge` (log-concave density, slope a - sig p in y):
            # ∫ f g <= g_max f(edge) / |slope(edge)| once past the mode.
            pe = 1.0 / (1.0 + math.exp(-edge))
            slope = a - sig * pe
            fe = math.exp(a * (-log1pexp(-edge)) + b * (-log1pexp(edge)) - lb)
            if direction == 0:
                if slope < 0.0 and _g_knee(r, s, pe) * fe / (-slope) < _NEG_TOL * max(ref0, mid + left + right):
                    break
            else:
                if slope > 0.0 and r * s * fe / slope < _NEG_TOL * max(ref0, mid + left + right):
                    break
    return left + mid + right


@njit(cache=True, fastmath=False)
def _expected_purchases_s(r: float, a: float, b: float, s: float) -> float:
    """E[X(t)] of a BG/NBD process as a function of s = t/α (series or quadrature)."""
    if not (s > 0.0):
        return 0.0
    if s <= _SERIES_S_MAX and a * math.log1p(s) < 50.0:
        val, ok = _ex_series(r, a, b, s)
        if ok:
            return val
    return _ex_quad(r, a, b, s)


@njit(cache=True, fastmath=False)
def expected_purchases_one(r: float, alpha: float, a: float, b: float, t: float) -> float:
    """Unconditional expected number of repeat purchases in (0, t], FHL 2005 eq. (9).

    ``E[X(t)] = (a+b-1)/(a-1) [1 - (α/(α+t))^r 2F1(r, b; a+b-1; t/(α+t))]``, evaluated
    without its removable singularities (a = 1, a + b = 1) and for any t/α (see module
    docstring).

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (> 0).
    t : float
        Length of the period (>= 0).

    Returns
    -------
    float
    """
    return _expected_purchases_s(r, a, b, t / alpha)


@njit(cache=True, fastmath=False)
def conditional_expected_purchases_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, t: float
) -> float:
    """E[Y(t) | x, t_x, T], expected repeat purchases in (T, T+t], FHL 2005 eq. (10).

    Computed as ``P_alive · E[X(t); r+x, α+T, a, b+x]`` (memorylessness; identical to eq. 10).

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.
    t : float
        Length of the prediction period (>= 0).

    Returns
    -------
    float
    """
    pa = p_alive_one(r, alpha, a, b, x, t_x, T)
    return pa * _expected_purchases_s(r + x, a, b + x, t / (alpha + T))


# --------------------------------------------------------------------------------------
# P(X(t) = n)
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _nb_log_upper_tail(r: float, n: int, L: float, lnz: float) -> float:
    """ln P(N >= n), N ~ NB with P(N = j) = (r)_j / j! e^{-rL} z^j (z = 1 - e^{-L}), n >= 1.

    This is ln I_z(n, r). Continued fraction for z < (n+1)/(n+r+2); otherwise the lower sum
    ``-expm1(-rL) - Σ_{1<=j<n} P(N = j)`` (n <= ``_NB_DIRECT_MAX``; in this region the tail
    is not small, so the subtraction loses at most a few bits) or ``1 - I_{1-z}(r, n)``.
    """
    z = math.exp(lnz)
    nf = float(n)
    if z < (nf + 1.0) / (nf + r + 2.0):
        lfront = nf * lnz - r * L - math.log(nf) - (math.lgamma(r) - _lnpoch(nf, r))
        return lfront + math.log(_betacf(nf, r, z))
    if n <= _NB_DIRECT_MAX:
        pj = math.exp(-r * L)
        acc = 0.0
        for j in range(1, n):
            pj *= (r + j - 1.0) / j * z
            acc += pj
        u = -math.expm1(-r * L) - acc
        if u > 0.0:
            return math.log(u)
    x1 = math.exp(-L)
    lfront = -r * L + nf * lnz - math.log(r) - (math.lgamma(r) - _lnpoch(nf, r))
    li = lfront + math.log(_betacf(r, nf, x1))
    return math.log(-math.expm1(li))


@njit(cache=True, fastmath=False)
def _pmf_s(r: float, a: float, b: float, s: float, n: int) -> float:
    """P(X(t) = n) of a BG/NBD process as a function of s = t/α, FHL eq. (8)."""
    if n < 0:
        return 0.0
    if not (s > 0.0):
        return 1.0 if n == 0 else 0.0
    L = math.log1p(s)
    lnz = math.log(s) - L
    nf = float(n)
    # B(a, b+n)/B(a, b) Γ(r+n)/(Γ(r) n!) (α/(α+t))^r (t/(α+t))^n
    lt1 = (
        _lnpoch(b, nf)
        - _lnpoch(a + b, nf)
        + _lnpoch(r, nf)
        - math.lgamma(nf + 1.0)
        - r * L
        + nf * lnz
    )
    val = math.exp(lt1)
    if n == 0:
        return val
    # B(a+1, b+n-1)/B(a, b) = a/(a+b) (b)_{n-1} / (a+b+1)_{n-1}
    lt2 = math.log(a) - math.log(a + b) + _lnpoch(b, nf - 1.0) - _lnpoch(a + b + 1.0, nf - 1.0)
    return val + math.exp(lt2 + _nb_log_upper_tail(r, n, L, lnz))


@njit(cache=True, fastmath=False)
def pmf_one(r: float, alpha: float, a: float, b: float, t: float, n: int) -> float:
    """Unconditional P(X(t) = n), FHL 2005 eq. (8).

    ``B(a,b+n)/B(a,b) Γ(r+n)/(Γ(r)n!) (α/(α+t))^r (t/(α+t))^n + [n>0] B(a+1,b+n-1)/B(a,b)
    [1 - (α/(α+t))^r Σ_{j<n} Γ(r+j)/(Γ(r)j!) (t/(α+t))^j]``, the bracket computed as an
    incomplete beta function without cancellation.

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (> 0).
    t : float
        Length of the period (>= 0).
    n : int
        Number of repeat purchases.

    Returns
    -------
    float
    """
    return _pmf_s(r, a, b, t / alpha, n)


@njit(cache=True, fastmath=False)
def conditional_pmf_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, t: float, n: int
) -> float:
    """P(Y(t) = n | x, t_x, T): n repeat purchases in (T, T+t] given the history.

    ``(1 - P_alive) [n = 0] + P_alive · P_BGNBD(X(t) = n; r+x, α+T, a, b+x)`` (memorylessness;
    the same result as Fader & Hardie's note "Deriving the conditional PMF of the BG/NBD
    model", in a form that reuses FHL eq. (8)).

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (> 0).
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
    val = pa * _pmf_s(r + x, a, b + x, t / (alpha + T), n)
    if n == 0:
        val += pd
    return val


# --------------------------------------------------------------------------------------
# DERT
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _panel_extent(
    mode: float, lo: float, hi: float, W: float, logkind: int, c1: float, c2: float, lnorm: float, thresh: float
) -> tuple[float, float]:
    """Extent [start, end] of the panels needed for a log-concave density, within [lo, hi].

    Walks panels of width W out from the mode (clamped to [lo, hi]) and stops once the
    density's remaining mass beyond the edge, bounded by ``f(edge)/|d ln f/dy|``, is below
    ``thresh``. ``logkind`` 0: ln f(v) = c1 v - e^v - lnorm (log of a Gamma(c1) variable);
    1: ln f(y) = c1 ln p + c2 ln(1-p) - lnorm with p = expit(y) (logit of a Beta(c1, c2)).
    """
    anchor = min(max(mode, lo), hi)
    end = anchor
    for _ in range(_MAX_PANELS):
        if end >= hi:
            end = hi
            break
        end = min(end + W, hi)
        if logkind == 0:
            ev = math.exp(end)
            lf = c1 * end - ev - lnorm
            slope = c1 - ev
        else:
            lf = -c1 * log1pexp(-end) - c2 * log1pexp(end) - lnorm
            slope = c1 - (c1 + c2) / (1.0 + math.exp(-end))
        if slope < 0.0 and math.exp(lf) / (-slope) < thresh:
            break
    start = anchor
    for _ in range(_MAX_PANELS):
        if start <= lo:
            start = lo
            break
        start = max(start - W, lo)
        if logkind == 0:
            ev = math.exp(start)
            lf = c1 * start - ev - lnorm
            slope = c1 - ev
        else:
            lf = -c1 * log1pexp(-start) - c2 * log1pexp(start) - lnorm
            slope = c1 - (c1 + c2) / (1.0 + math.exp(-start))
        if slope > 0.0 and math.exp(lf) / slope < thresh:
            break
    return start, end


@njit(cache=True, fastmath=False)
def _dert_core(mu: float, a: float, bp: float, kappa: float) -> float:
    """I = E[1/(κ + G p)], G ~ Gamma(mu, 1), p ~ Beta(a, bp), independent; κ > 0.

    Regions: G < G_L = κ/10 (all p): Σ_j (-1)^j E[p^j] E[G^j; G < G_L] / κ^{j+1}.
    G >= G_L: Gauss-Legendre panels in v = ln G; for each G node the p-integral is
    p < pL (pL <= κ/(10 G_max)): Σ_j (-G/κ)^j E[p^j; p < pL] / κ;
    pL <= p <= 1-qR: Gauss-Legendre panels in y = logit(p);
    1-p < qR: Σ_j (G/(κ+G))^j E[(1-p)^j; 1-p < qR] / (κ+G).
    Every series has ratio <= 0.1 and ``_TAIL_J`` = 16 terms.
    """
    sig = a + bp
    lb = lbeta(a, bp)
    lgmu = math.lgamma(mu)
    ref = 1.0 / (kappa + mu * a / sig)  # Jensen lower bound of I
    thresh = _NEG_TOL * ref * kappa  # integrand factor 1/(κ+Gp) <= 1/κ

    # ---- G < G_L, all p
    GL = 0.1 * kappa
    lk = math.log(kappa)
    tail_g = 0.0
    lm = 0.0  # ln E[p^j] = ln (a)_j/(sig)_j
    for j in range(_TAIL_J):
        lpj = _log_gammainc_lower(mu + j, GL)
        tj = math.exp(lm + _lnpoch(mu, float(j)) + lpj - (j + 1.0) * lk)
        tail_g += -tj if (j & 1) else tj
        lm += math.log((a + j) / (sig + j))

    # ---- G nodes
    Wv = min(3.0, 4.0 / math.sqrt(mu))
    vL = math.log(GL)
    v0, v1 = _panel_extent(math.log(mu), vL, math.inf, Wv, 0, mu, 0.0, lgmu, thresh)
    if not (v1 > v0):
        return tail_g
    npv = min(int(math.ceil((v1 - v0) / Wv)), _MAX_PANELS)
    hv = 0.5 * (v1 - v0) / npv
    ng = npv * _NGL
    G = np.empty(ng)
    wG = np.empty(ng)
    for i in range(npv):
        cm = v0 + (2 * i + 1) * hv
        for k in range(_NGL):
            v = cm + hv * _GL_X[k]
            ev = math.exp(v)
            G[i * _NGL + k] = ev
            wG[i * _NGL + k] = hv * _GL_W[k] * math.exp(mu * v - ev - lgmu)
    gmax = G[ng - 1]

    # ---- p tails (moments) and p nodes
    pL = min(0.1, 0.1 * (a + 1.0) / sig, 0.1 * kappa / gmax)
    qR = min(0.1, 0.1 * (bp + 1.0) / sig)
    ml = np.empty(_TAIL_J)
    mr = np.empty(_TAIL_J)
    _beta_lower_moments(a, bp, pL, lb, ml)
    _beta_lower_moments(bp, a, qR, lb, mr)
    yL = math.log(pL) - math.log1p(-pL)
    yH = math.log1p(-qR) - math.log(qR)
    Wy = min(3.0, 3.0 * math.sqrt(1.0 / a + 1.0 / bp))
    y0, y1 = _panel_extent(math.log(a) - math.log(bp), yL, yH, Wy, 1, a, bp, lb, thresh)
    npy = 0
    if y1 > y0:
        npy = min(int(math.ceil((y1 - y0) / Wy)), _MAX_PANELS)
    nq = npy * _NGL
    P = np.empty(nq)
    wP = np.empty(nq)
    if npy > 0:
        hy = 0.5 * (y1 - y0) / npy
        for i in range(npy):
            cm = y0 + (2 * i + 1) * hy
            for k in range(_NGL):
                y = cm + hy * _GL_X[k]
                lnp = -log1pexp(-y)
                ln1mp = -log1pexp(y)
                P[i * _NGL + k] = math.exp(lnp)
                wP[i * _NGL + k] = hy * _GL_W[k] * math.exp(a * lnp + bp * ln1mp - lb)

    # ---- combine
    total = 0.0
    ik = 1.0 / kappa
    for i in range(ng):
        g = G[i]
        u = -g * ik
        pl = ml[_TAIL_J - 1]
        for j in range(_TAIL_J - 2, -1, -1):
            pl = pl * u + ml[j]
        pl *= ik
        kg = 1.0 / (kappa + g)
        w = g * kg
        pr = mr[_TAIL_J - 1]
        for j in range(_TAIL_J - 2, -1, -1):
            pr = pr * w + mr[j]
        pr *= kg
        # four accumulators: independent adds pipeline better (fixed order: deterministic)
        m0 = 0.0
        m1 = 0.0
        m2 = 0.0
        m3 = 0.0
        q = 0
        while q + 3 < nq:
            m0 += wP[q] / (kappa + g * P[q])
            m1 += wP[q + 1] / (kappa + g * P[q + 1])
            m2 += wP[q + 2] / (kappa + g * P[q + 2])
            m3 += wP[q + 3] / (kappa + g * P[q + 3])
            q += 4
        while q < nq:
            m0 += wP[q] / (kappa + g * P[q])
            q += 1
        total += wG[i] * (pl + ((m0 + m1) + (m2 + m3)) + pr)
    return tail_g + total


@njit(cache=True, fastmath=False)
def dert_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, delta: float
) -> float:
    """Discounted expected residual transactions of one customer under BG/NBD.

    ``DERT = E[∫_T^∞ e^{-δ(s-T)} dY(s) | x, t_x, T] = P_alive · E[λ / (δ + λ p)]`` with
    λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x) (the posterior given alive at T), evaluated as
    ``P_alive (r+x) E[1/(δ(α+T) + G p)]``, G ~ Gamma(r+x+1, 1). The analogue for BG/NBD of
    the Pareto/NBD DERT of Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves
    for customer base analysis", JMR 42(4), eq. (2); derivation in the docs page.

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.
    delta : float
        Continuous discount rate per time unit (> 0). At delta == 0 the undiscounted
        expected number of future purchases is returned (+inf for a <= 1).

    Returns
    -------
    float
    """
    pa = p_alive_one(r, alpha, a, b, x, t_x, T)
    if delta == 0.0:
        if a > 1.0:
            return pa * (a + b + x - 1.0) / (a - 1.0)
        return math.inf
    if not (delta > 0.0):
        return math.nan
    rp = r + x
    return pa * rp * _dert_core(rp + 1.0, a, b + x, delta * (alpha + T))


# --------------------------------------------------------------------------------------
# Array wrappers
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, parallel=True)
def bgnbd_p_alive(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(alive at T) per customer (FHL 2005 eq. 11); see :func:`p_alive_one`."""
    n = x.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = p_alive_one(r, alpha, a, b, x[i], t_x[i], T[i])
    return out


@njit(cache=True, fastmath=False, parallel=True)
def bgnbd_expected_purchases(r: float, alpha: float, a: float, b: float, t: np.ndarray) -> np.ndarray:
    """Unconditional E[X(t)] for each t (FHL 2005 eq. 9); see :func:`expected_purchases_one`."""
    n = t.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = expected_purchases_one(r, alpha, a, b, t[i])
    return out


@njit(cache=True, fastmath=False, parallel=True)
def bgnbd_conditional_expected_purchases(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    t: float,
) -> np.ndarray:
    """E[Y(t) | x, t_x, T] per customer (FHL 2005 eq. 10); see
    :func:`conditional_expected_purchases_one`."""
    n = x.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = conditional_expected_purchases_one(r, alpha, a, b, x[i], t_x[i], T[i], t)
    return out


@njit(cache=True, fastmath=False, parallel=True)
def bgnbd_pmf(r: float, alpha: float, a: float, b: float, t: float, n: np.ndarray) -> np.ndarray:
    """Unconditional P(X(t) = n) for each n (FHL 2005 eq. 8); see :func:`pmf_one`."""
    m = n.shape[0]
    out = np.empty(m)
    for i in prange(m):
        out[i] = pmf_one(r, alpha, a, b, t, n[i])
    return out


@njit(cache=True, fastmath=False, parallel=True)
def bgnbd_conditional_pmf(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    t: float,
    n: int,
) -> np.ndarray:
    """P(Y(t) = n | x, t_x, T) per customer; see :func:`conditional_pmf_one`."""
    m = x.shape[0]
    out = np.empty(m)
    for i in prange(m):
        out[i] = conditional_pmf_one(r, alpha, a, b, x[i], t_x[i], T[i], t, n)
    return out


@njit(cache=True, fastmath=False, parallel=True)
def bgnbd_dert(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    delta: np.ndarray,
) -> np.ndarray:
    """DERT per customer at per-customer continuous discount rates; see :func:`dert_one`."""
    m = x.shape[0]
    out = np.empty(m)
    for i in prange(m):
        out[i] = dert_one(r, alpha, a, b, x[i], t_x[i], T[i], delta[i])
    return out
