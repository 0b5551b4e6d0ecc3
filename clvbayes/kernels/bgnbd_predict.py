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

    E[Y(t) | x, t_x, T]     = P_alive · E_BGNBD[X(t); r+x, α+T, a, b+x]      (= FHL eq. 10)
    P(Y(t) = n | x, t_x, T) = (1 - P_alive) [n = 0]
                              + P_alive · P_BGNBD(X(t) = n; r+x, α+T, a, b+x)
    DERT                    = P_alive · (r+x) E[1 / (δ(α+T) + G p)],
                              G ~ Gamma(r+x+1, 1), p ~ Beta(a, b+x)

so one accurate unconditional E[X(t)] and one unconditional pmf serve the conditional
quantities, and DERT needs one two-dimensional integral.

Numerics, all in terms of s = t/α (t/(α+T) for the conditional quantities), L = ln(1+s) and
z = s/(1+s):

- E[X(t)] (FHL eq. 9). For s <= 20 a Pfaff-transformed series without the removable
  singularities of eq. 9 at a = 1 and at a + b = 1, with a run-time check of its
  cancellation; otherwise (or when that check fails) a Gauss-Legendre quadrature of
  ``E_p[(1 - (1+ps)^-r) / p]`` over logit(p) with the two Beta tails integrated analytically.
  Accurate to ~2e-11 relative (tested against mpmath) for parameters 1e-4..1e4, x up to 1e4
  and s up to 1e8.
- P(X(t) = n) (FHL eq. 8). The tail ``1 - Σ_{j<n} NB(j)`` is the regularized incomplete beta
  ``I_z(n, r)``, taken from its continued fraction where that converges fast and from the
  finite lower sum with ``1 - NB(0) = -expm1(-rL)`` otherwise (no cancellation); ~1e-12.
- DERT. A tensor Gauss-Legendre rule in (ln G, logit p) with the small-G, small-p and
  p-near-1 tails summed analytically; accurate to ~1e-9 relative (typically 1e-12), finite for
  every δ > 0 (also for a <= 1, where E[1/p] and hence the undiscounted total are infinite).

Given-alive factors for CLV (``docs/theory/clv.md``): :func:`dert_alive_one` (the factor of
DERT after P_alive) and :func:`discounted_purchases_alive_one`, discounted expected purchases
over a finite horizon H, ``E[λ(1 - e^{-(δ+pλ)H})/(δ+pλ)]`` at the updated parameters — the
DERT quadrature with the integrand ``(1 - e^{-(κ+Gp)h})/(κ+Gp)`` (~3e-11 relative).

Divisions use ``error_model="numpy"`` (no Python ZeroDivisionError check), which lets LLVM
vectorize the DERT inner loop.

Every quantity has a scalar core (``*_one``) for use inside (customer × posterior draw)
loops, and an array form (``bgnbd_*``: the generic drivers of :mod:`clvbayes.kernels.drivers`
at these cores) that loops over customers with ``prange``; each output element depends only
on its own inputs, so results do not depend on the thread count.

Preconditions (not checked in the hot loops): parameters > 0, x >= 0 integer-valued,
0 <= t_x <= T, t >= 0, δ > 0.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from clvbayes.kernels.special import exprel, lnpoch, log1pexp

__all__ = [
    "p_alive_one",
    "expected_purchases_one",
    "conditional_expected_purchases_one",
    "pmf_one",
    "conditional_pmf_one",
    "dert_one",
    "dert_alive_one",
    "discounted_purchases_alive_one",
    "bgnbd_p_alive",
    "bgnbd_expected_purchases",
    "bgnbd_conditional_expected_purchases",
    "bgnbd_pmf",
    "bgnbd_conditional_pmf",
    "bgnbd_dert",
]

# Gauss-Legendre panels. On a panel of width W inside a strip of analyticity of half-width d
# the error is ~ρ^(-2n) with ρ = 2d/W + sqrt((2d/W)^2 + 1). In the variables used (ln G,
# logit p) the integrands are analytic within π of the real axis and the densities behave
# like Gaussians of the local scale 1/sqrt(-(ln f)''), so panels are at most WMAX wide and at
# most SCALE local scales wide (wider in the tails, see _allowed_width), with n = 12 nodes.
_NGL = 12
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_NGL)
# Panel limits (at most WMAX wide, at most SCALE local scales): E[X(t)] (~1e-11) and DERT
# (~1e-10, fewer nodes).
_WMAX_E = 3.0
_SCALE_E = 2.0
_WMAX_D = 4.0
_SCALE_D = 2.5

# E[X(t)] series: used for s <= _SERIES_S_MAX (z <= 0.952, up to ~800 terms, cheaper than the
# quadrature); at most _SERIES_MAXK terms; accepted when (sum of absolute values of the
# combined terms) / result <= _SERIES_COND_MAX.
_SERIES_S_MAX = 20.0
_SERIES_MAXK = 3000
_SERIES_COND_MAX = 1.0e3

# Number of Taylor terms of the analytic tails (each tail's expansion ratio is <= 0.1).
_TAIL_J = 16
# Relative size below which a quadrature panel's (bounded) contribution is dropped.
_NEG_TOL = 1.0e-15
# Maximal number of quadrature panels per variable (a guard; never reached for valid input).
_MAX_PANELS = 400

# Incomplete-beta continued fraction: used when z < (n+1)/(n+r+2); lower sum up to this n.
_NB_DIRECT_MAX = 2000
_CF_MAXIT = 100000
_FPMIN = 1.0e-300


# --------------------------------------------------------------------------------------
# Special-function helpers
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
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
                + iz2
                * (-1.0 / 1680.0 + iz2 * (1.0 / 1188.0 + iz2 * (-691.0 / 360360.0 + iz2 / 156.0)))
            )
        )
    )


@njit(cache=True, fastmath=False, error_model="numpy")
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


@njit(cache=True, fastmath=False, error_model="numpy")
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


@njit(cache=True, fastmath=False, error_model="numpy")
def _beta_lower_moments(a: float, b: float, x: float, lb: float, out: np.ndarray, scaled: bool = False) -> None:
    """``out[j] = E[p^j; p < x]`` for p ~ Beta(a, b), j = 0..len(out)-1; ``lb = ln B(a, b)``.

    ``B_x(A, b) = x^A (1-x)^b / A · Σ_k (A+b)_k / (A+1)_k x^k`` (DLMF 8.17.8): positive terms,
    ratio <= 0.1 when x <= 0.1 (a+1)/(a+b), which the callers ensure. With ``scaled``,
    ``out[j] = E[(p/x)^j; p < x]``: no underflow for a tiny x (the caller scales its
    coefficients by x^j, which keeps them from overflowing).
    """
    lx = math.log(x)
    l1x = math.log1p(-x)
    # The callers' expansions give term j a weight <= (0.1/x)^j and out[j] <= x^j out[0], so
    # term j needs out[j] only to relative accuracy 1e-17 * 10^j: fewer series terms.
    tol = 1.0e-17
    pre = math.exp(a * lx + b * l1x - math.log(a) - lb)  # x^A (1-x)^b / (A B(a, b)), A = a + j
    for j in range(out.shape[0]):
        A = a + j
        term = 1.0
        tot = 1.0
        for k in range(10000):
            term *= (A + b + k) / (A + 1.0 + k) * x
            tot += term
            if term < tot * tol:
                break
        out[j] = pre * tot
        pre *= (1.0 if scaled else x) * A / (A + 1.0)
        tol = min(tol * 10.0, 1.0e-3)


@njit(cache=True, fastmath=False, error_model="numpy")
def _logit_point(y: float) -> tuple[float, float, float]:
    """``(p, ln p, ln(1-p))`` for ``p = 1/(1+e^-y)``, from one exp and one log1p."""
    e = math.exp(-abs(y))
    lg = math.log1p(e)
    if y >= 0.0:
        return 1.0 / (1.0 + e), -lg, -y - lg
    return e / (1.0 + e), y - lg, -lg


# --------------------------------------------------------------------------------------
# P(alive)
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _dead_log_odds(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float
) -> float:
    """``ln[(1 - P_alive) / P_alive] = ln(a/(b+x-1)) + (r+x) ln((α+T)/(α+t_x))`` for x > 0."""
    return math.log(a) - math.log(b + x - 1.0) + (r + x) * math.log1p((T - t_x) / (alpha + t_x))


@njit(cache=True, fastmath=False, error_model="numpy")
def p_alive_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float
) -> float:
    """P(customer alive at T | x, t_x, T) for one customer.

    FHL 2005 and Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD model" (note 021):
    ``1 / (1 + [x > 0] a/(b+x-1) ((α+T)/(α+t_x))^(r+x))``, evaluated as
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


@njit(cache=True, fastmath=False, error_model="numpy")
def _alive_dead(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float
) -> tuple[float, float]:
    """(P_alive, 1 - P_alive), the second formed directly (no cancellation near P_alive = 1)."""
    if x <= 0.0:
        return 1.0, 0.0
    u = _dead_log_odds(r, alpha, a, b, x, t_x, T)
    return math.exp(-log1pexp(u)), math.exp(-log1pexp(-u))


# --------------------------------------------------------------------------------------
# Quadrature over the log of a Gamma or the logit of a Beta variable
# --------------------------------------------------------------------------------------
# kind 0: y = ln G, G ~ Gamma(c1, 1); c2 = ln c1; lnorm = lnΓ(c1) - c1 ln c1 + c1, so that
#         ln f(y) = c1 (w - expm1(w)) - lnorm with w = y - ln c1 (no large cancelling terms).
# kind 1: y = logit p, p ~ Beta(c1, c2); lnorm = ln B(c1, c2);
#         ln f(y) = c1 ln p + c2 ln(1-p) - lnorm.
# Both densities are log-concave in y.


@njit(cache=True, fastmath=False, error_model="numpy")
def _gamma_lognorm(mu: float) -> float:
    """``lnΓ(μ) - μ ln μ + μ`` (Stirling form for μ >= 10: no eps·lnΓ(μ) loss)."""
    if mu >= 10.0:
        return 0.5 * math.log(2.0 * math.pi) - 0.5 * math.log(mu) + _stirling_phi(mu)
    return math.lgamma(mu) - mu * math.log(mu) + mu


@njit(cache=True, fastmath=False, error_model="numpy")
def _lbeta_acc(a: float, b: float) -> float:
    """ln B(a, b) without the ``eps·lnΓ`` loss of ``lgamma`` differences at large arguments."""
    lo = min(a, b)
    if lo >= 10.0:
        # Stirling forms of the three lnΓ combined: every term O(result).
        ab = a + b
        return (
            (a - 0.5) * -math.log1p(b / a)
            + (b - 0.5) * -math.log1p(a / b)
            - 0.5 * math.log(ab)
            + 0.5 * math.log(2.0 * math.pi)
            + (_stirling_phi(a) + _stirling_phi(b) - _stirling_phi(ab))
        )
    return math.lgamma(lo) - lnpoch(max(a, b), lo)


@njit(cache=True, fastmath=False, error_model="numpy")
def _ldens(
    y: float, kind: int, c1: float, c2: float, lnorm: float
) -> tuple[float, float, float, float]:
    """(ln f(y), d ln f/dy, local scale 1/sqrt(-(ln f)''), variable value G or p)."""
    if kind == 0:
        w = y - c2
        ew = math.expm1(w)
        g = c1 * (1.0 + ew)
        return c1 * (w - ew) - lnorm, -c1 * ew, 1.0 / math.sqrt(g), g
    p, lnp, ln1mp = _logit_point(y)
    return (
        c1 * lnp + c2 * ln1mp - lnorm,
        c1 - (c1 + c2) * p,
        1.0 / math.sqrt((c1 + c2) * p * (1.0 - p)),
        p,
    )


@njit(cache=True, fastmath=False, error_model="numpy")
def _dens_mode(kind: int, c1: float, c2: float, lnorm: float) -> tuple[float, float]:
    """(mode of y, ln f at the mode)."""
    if kind == 0:
        return c2, -lnorm
    sig = c1 + c2
    return math.log(c1) - math.log(c2), c1 * math.log(c1 / sig) + c2 * math.log(c2 / sig) - lnorm


@njit(cache=True, fastmath=False, error_model="numpy")
def _tail_ok(
    y: float, side: float, kind: int, c1: float, c2: float, lnorm: float, lthresh: float
) -> bool:
    """Whether the density's mass beyond y (side +1: right, -1: left) is below e^lthresh.

    Past the mode the mass beyond y is at most ``f(y) / |d ln f/dy|`` (log-concavity).
    """
    lf, sl, _, _ = _ldens(y, kind, c1, c2, lnorm)
    sl *= side
    return sl < 0.0 and lf - math.log(-sl) < lthresh


@njit(cache=True, fastmath=False, error_model="numpy")
def _dens_extent(
    lo: float, hi: float, kind: int, c1: float, c2: float, lnorm: float, thresh: float
) -> tuple[float, float]:
    """[start, end] within [lo, hi] outside which the density's mass is below ``thresh`` on
    each side: steps doubling from one local scale away from the mode, then bisection
    (to within a quarter of the last step)."""
    mode, _ = _dens_mode(kind, c1, c2, lnorm)
    anchor = min(max(mode, lo), hi)
    _, _, ls, _ = _ldens(anchor, kind, c1, c2, lnorm)
    lthresh = math.log(thresh)
    start = lo
    end = hi
    for side_i in range(2):
        side = 1.0 if side_i == 0 else -1.0
        bound = hi if side_i == 0 else lo
        inner = anchor
        step = ls
        outer = bound
        for _ in range(200):
            y = anchor + side * step
            if side * (y - bound) >= 0.0:
                break
            if _tail_ok(y, side, kind, c1, c2, lnorm, lthresh):
                outer = y
                break
            inner = y
            step *= 2.0
        if outer != bound:
            for _ in range(3):
                mid = 0.5 * (inner + outer)
                if _tail_ok(mid, side, kind, c1, c2, lnorm, lthresh):
                    outer = mid
                else:
                    inner = mid
        if side_i == 0:
            end = outer
        else:
            start = outer
    return start, end


@njit(cache=True, fastmath=False, error_model="numpy")
def _allowed_width(
    y: float, kind: int, c1: float, c2: float, lnorm: float, lfmax: float, scale: float
) -> float:
    """Panel width the density tolerates at y: ``scale · ℓ(y) · max(1, D(y))``.

    ℓ = 1/sqrt(-(ln f)'') is the local scale and D = sqrt(2 (ln f_max - ln f(y))) the distance
    from the mode in local scales. Near the mode the density behaves like a Gaussian of width
    ℓ; a Gaussian e^{-D²/2} grows by e^{θ²/(2ℓ²)} at imaginary offset θ, which stays below
    its peak value for θ <= Dℓ, so panels may widen in proportion to D in the tails.
    """
    lf, _, ls, _ = _ldens(y, kind, c1, c2, lnorm)
    d2 = 2.0 * (lfmax - lf)
    return scale * ls * (math.sqrt(d2) if d2 > 1.0 else 1.0)


@njit(cache=True, fastmath=False, error_model="numpy")
def _panel_width(
    y: float,
    end: float,
    kind: int,
    c1: float,
    c2: float,
    lnorm: float,
    mode: float,
    lfmax: float,
    wmax: float,
    scale: float,
) -> float:
    """Width of the panel starting at y: at most ``wmax`` (the integrands' own strip
    of analyticity) and at most the density's allowed width anywhere on the panel.

    The allowed width grows away from the mode (and, for the logit of a Beta, the local
    scale is smallest at y = 0), so it is checked at both ends and at the mode and 0 when
    they lie inside the panel.
    """
    w = min(wmax, end - y)
    aw = _allowed_width(y, kind, c1, c2, lnorm, lfmax, scale)
    for _ in range(4):
        cap = min(aw, _allowed_width(y + w, kind, c1, c2, lnorm, lfmax, scale))
        if y < mode < y + w:
            cap = min(cap, _allowed_width(mode, kind, c1, c2, lnorm, lfmax, scale))
        if kind == 1 and y < 0.0 < y + w:
            cap = min(cap, _allowed_width(0.0, kind, c1, c2, lnorm, lfmax, scale))
        if w <= cap:
            return w
        w = cap
    return w


@njit(cache=True, fastmath=False, error_model="numpy")
def _density_nodes(
    start: float,
    end: float,
    kind: int,
    c1: float,
    c2: float,
    lnorm: float,
    wmax: float,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on [start, end] for one of the two densities.

    Returns ``(values, weights)``: values are G (kind 0) or p (kind 1); the weights include
    the density, so ``Σ w h(value) ≈ ∫_start^end f(y) h(.) dy``.
    """
    mode, lfmax = _dens_mode(kind, c1, c2, lnorm)
    edges = np.empty(_MAX_PANELS + 1)
    edges[0] = start
    npan = 0
    y = start
    while y < end and npan < _MAX_PANELS:
        y = min(y + _panel_width(y, end, kind, c1, c2, lnorm, mode, lfmax, wmax, scale), end)
        npan += 1
        edges[npan] = y
    edges[npan] = end
    vals = np.empty(npan * _NGL)
    wts = np.empty(npan * _NGL)
    for i in range(npan):
        h = 0.5 * (edges[i + 1] - edges[i])
        cm = 0.5 * (edges[i + 1] + edges[i])
        for k in range(_NGL):
            y = cm + h * _GL_X[k]
            if kind == 0:
                # same expressions as _ldens, without the local scale
                w = y - c2
                ew = math.expm1(w)
                vals[i * _NGL + k] = c1 * (1.0 + ew)
                wts[i * _NGL + k] = h * _GL_W[k] * math.exp(c1 * (w - ew) - lnorm)
            else:
                p, lnp, ln1mp = _logit_point(y)
                vals[i * _NGL + k] = p
                wts[i * _NGL + k] = h * _GL_W[k] * math.exp(c1 * lnp + c2 * ln1mp - lnorm)
    return vals, wts


# --------------------------------------------------------------------------------------
# E[X(t)]
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
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


@njit(cache=True, fastmath=False, error_model="numpy")
def _g_knee(r: float, s: float, p: float) -> float:
    """g(p) = (1 - (1+ps)^-r) / p = E[X(t) | p] (λ integrated out); convex, decreasing, <= rs."""
    if p <= 0.0:
        return r * s
    return -math.expm1(-r * math.log1p(p * s)) / p


@njit(cache=True, fastmath=False, error_model="numpy")
def _ex_quad(r: float, a: float, b: float, s: float) -> float:
    """E[X(t)] = E_p[g(p)], p ~ Beta(a, b), by quadrature (any s > 0, any parameters).

    Over y = logit(p): Gauss-Legendre panels (``_density_nodes``) on the part of
    [logit(pL), logit(1-qR)] where the density's mass is not negligible (log-concavity bound);
    p < pL from the Taylor series of g (radius 1/s) against the restricted Beta moments,
    p > 1-qR from the series ``g(1-q) = Σ_j P(NB(r, 1-z) > j) q^j``; both with ratio <= 0.1.
    """
    sig = a + b
    lb = _lbeta_acc(a, b)
    L = math.log1p(s)
    pL = min(0.1, 0.1 * (a + 1.0) / sig, 0.1 / (s * (r + 1.0)))
    qR = min(0.1, 0.1 * (b + 1.0) / sig)

    mom = np.empty(_TAIL_J)
    # p < pL: g(p) = Σ_j g_j p^j, g_j = (-1)^j (r)_{j+1} s^{j+1} / (j+1)!, summed as
    # (g_j pL^j) E[(p/pL)^j; p < pL]: g_j alone overflows for r s > ~1e20 (large r, tiny α).
    _beta_lower_moments(a, b, pL, lb, mom, True)
    gj = r * s
    left = 0.0
    for j in range(_TAIL_J):
        left += gj * mom[j]
        gj *= -(r + j + 1.0) / (j + 2.0) * s * pL
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
    # g <= rs, and E >= g(E[p]) (Jensen, g convex): mass of the density below
    # thresh = tol * g(a/(a+b)) / (rs) outside [y0, y1] is negligible.
    thresh = _NEG_TOL * max(_g_knee(r, s, a / sig), left + right) / (r * s)
    y0, y1 = _dens_extent(yL, yH, 1, a, b, lb, thresh)
    mid = 0.0
    if y1 > y0:
        P, wP = _density_nodes(y0, y1, 1, a, b, lb, _WMAX_E, _SCALE_E)
        for q in range(P.shape[0]):
            mid += wP[q] * _g_knee(r, s, P[q])
    return left + mid + right


@njit(cache=True, fastmath=False, error_model="numpy")
def _expected_purchases_s(r: float, a: float, b: float, s: float) -> float:
    """E[X(t)] of a BG/NBD process as a function of s = t/α (series or quadrature)."""
    if not (s > 0.0):
        return 0.0
    if s <= _SERIES_S_MAX and a * math.log1p(s) < 50.0:
        val, ok = _ex_series(r, a, b, s)
        if ok:
            return val
    return _ex_quad(r, a, b, s)


@njit(cache=True, fastmath=False, error_model="numpy")
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


@njit(cache=True, fastmath=False, error_model="numpy")
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


@njit(cache=True, fastmath=False, error_model="numpy")
def _nb_log_upper_tail(r: float, n: int, L: float, lnz: float) -> float:
    """ln P(N >= n), N ~ NB with P(N = j) = (r)_j / j! e^{-rL} z^j (z = 1 - e^{-L}), n >= 1.

    This is ln I_z(n, r). Continued fraction for z < (n+1)/(n+r+2); otherwise the lower sum
    ``-expm1(-rL) - Σ_{1<=j<n} P(N = j)`` (n <= ``_NB_DIRECT_MAX``; in this region the tail
    is not small, so the subtraction loses at most a few bits) or ``1 - I_{1-z}(r, n)``.
    """
    z = math.exp(lnz)
    nf = float(n)
    if z < (nf + 1.0) / (nf + r + 2.0):
        lfront = nf * lnz - r * L - math.log(nf) - (math.lgamma(r) - lnpoch(nf, r))
        return lfront + math.log(_betacf(nf, r, z))
    # The lower sum needs P(N = 0) = e^{-rL} representable (no underflow of its terms); it is
    # only needed when 1 - P(N = 0) is small relative to 1 (small rL), where the complement
    # 1 - I_{1-z}(r, n) would cancel.
    if n <= _NB_DIRECT_MAX and r * L < 30.0:
        pj = math.exp(-r * L)
        acc = 0.0
        for j in range(1, n):
            pj *= (r + j - 1.0) / j * z
            acc += pj
        u = -math.expm1(-r * L) - acc
        if u > 0.0:
            return math.log(u)
    x1 = math.exp(-L)
    lfront = -r * L + nf * lnz - math.log(r) - (math.lgamma(r) - lnpoch(nf, r))
    li = lfront + math.log(_betacf(r, nf, x1))
    return math.log(-math.expm1(li))


@njit(cache=True, fastmath=False, error_model="numpy")
def _pmf_s(r: float, a: float, b: float, s: float, n: int) -> float:
    """P(X(t) = n) of a BG/NBD process as a function of s = t/α, FHL eq. (8)."""
    if n < 0:
        return 0.0
    if not (s > 0.0):
        return 1.0 if n == 0 else 0.0
    L = math.log1p(s)
    lnz = math.log(s) - L
    nf = float(n)
    # B(a, b+n)/B(a, b) Γ(r+n)/(Γ(r) n!) (α/(α+t))^r (t/(α+t))^n. The Γ ratios are taken
    # as lnpoch's with the large argument first (Γ(b+n)/Γ(a+b+n) = exp(-lnpoch(b+n, a)) etc.),
    # so no two large lnΓ values are subtracted.
    if r >= 1.0:
        lnb = lnpoch(nf + 1.0, r - 1.0)  # ln Γ(r+n) - ln Γ(n+1)
    else:
        lnb = -lnpoch(nf + r, 1.0 - r)
    lt1 = lnpoch(b, a) - lnpoch(b + nf, a) + lnb - math.lgamma(r) - r * L + nf * lnz
    val = math.exp(lt1)
    if n == 0:
        return val
    # B(a+1, b+n-1)/B(a, b) = Γ(a+1)Γ(b+n-1)Γ(a+b) / (Γ(a)Γ(b)Γ(a+b+n))
    lt2 = math.log(a) + lnpoch(b, a) - lnpoch(b + nf - 1.0, a + 1.0)
    return val + math.exp(lt2 + _nb_log_upper_tail(r, n, L, lnz))


@njit(cache=True, fastmath=False, error_model="numpy")
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


@njit(cache=True, fastmath=False, error_model="numpy")
def conditional_pmf_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, t: float, n: int
) -> float:
    """P(Y(t) = n | x, t_x, T): n repeat purchases in (T, T+t] given the history.

    ``(1 - P_alive) [n = 0] + P_alive · P_BGNBD(X(t) = n; r+x, α+T, a, b+x)`` (memorylessness,
    see the docs page; FHL eq. (8) at the updated parameters). For n = 0 this is the probability
    of no purchase of Fader & Hardie (2019), "A step-by-step derivation of the BG/NBD model",
    eq. (34).

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


@njit(cache=True, fastmath=False, error_model="numpy")
def _dert_small_g(mu: float, a: float, sig: float, kappa: float, x: float) -> float:
    """``Σ_j (-1)^j E[p^j] E[G^j; G < x] / κ^{j+1}`` = E[1/(κ + Gp); G < x] for x = κ/10.

    ``E[G^j; G < x] = x^{μ+j} e^{-x}/Γ(μ) Σ_k x^k/(μ+j)_{k+1}`` (DLMF 8.7.1), so term j is
    ``x^μ e^{-x}/(Γ(μ) κ) (-x/κ)^j (a)_j/(a+b')_j S_j`` with ``x/κ = 1/10``. The positive
    series S_j is used while x < μ/2 + 10 (short); beyond that (huge κ) the regularized
    incomplete gamma function is evaluated for each j.
    """
    if x < 0.5 * mu + 10.0:
        tot = 0.0
        c = 1.0
        tol = 1.0e-17
        for j in range(_TAIL_J):
            term = 1.0 / (mu + j)
            sj = term
            for k in range(1, 100000):
                term *= x / (mu + j + k)
                sj += term
                if term < sj * tol:
                    break
            tot += c * sj
            c *= -(x / kappa) * (a + j) / (sig + j)
            tol = min(tol * 10.0, 1.0e-3)
        return math.exp(mu * math.log(x) - x - math.lgamma(mu)) / kappa * tot
    lk = math.log(kappa)
    tot = 0.0
    lm = 0.0  # ln E[p^j] = ln (a)_j / (a+b')_j
    for j in range(_TAIL_J):
        tj = math.exp(lm + lnpoch(mu, float(j)) + _log_gammainc_lower(mu + j, x) - (j + 1.0) * lk)
        tot += -tj if (j & 1) else tj
        lm += math.log((a + j) / (sig + j))
    return tot


@njit(cache=True, fastmath=False, error_model="numpy")
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
    lb = _lbeta_acc(a, bp)
    ref = 1.0 / (kappa + mu * a / sig)  # Jensen lower bound of I
    thresh = _NEG_TOL * ref * kappa  # integrand factor 1/(κ+Gp) <= 1/κ

    # ---- G < G_L, all p
    GL = 0.1 * kappa
    tail_g = _dert_small_g(mu, a, sig, kappa, GL)

    # ---- G nodes
    lmu = math.log(mu)
    gnorm = _gamma_lognorm(mu)
    v0, v1 = _dens_extent(math.log(GL), math.inf, 0, mu, lmu, gnorm, thresh)
    if not (v1 > v0):
        return tail_g
    G, wG = _density_nodes(v0, v1, 0, mu, lmu, gnorm, _WMAX_D, _SCALE_D)
    ng = G.shape[0]
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
    y0, y1 = _dens_extent(yL, yH, 1, a, bp, lb, thresh)
    if y1 > y0:
        P, wP = _density_nodes(y0, y1, 1, a, bp, lb, _WMAX_D, _SCALE_D)
    else:
        P = np.empty(0)
        wP = np.empty(0)
    nq = P.shape[0]

    # ---- combine
    buf = np.empty(nq)
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
        # The divisions go to a buffer first (a loop without reduction, which LLVM vectorizes),
        # then a sum with four accumulators (fixed order: deterministic).
        for q in range(nq):
            buf[q] = wP[q] / (kappa + g * P[q])
        m0 = 0.0
        m1 = 0.0
        m2 = 0.0
        m3 = 0.0
        q = 0
        while q + 3 < nq:
            m0 += buf[q]
            m1 += buf[q + 1]
            m2 += buf[q + 2]
            m3 += buf[q + 3]
            q += 4
        while q < nq:
            m0 += buf[q]
            q += 1
        total += wG[i] * (pl + ((m0 + m1) + (m2 + m3)) + pr)
    return tail_g + total


@njit(cache=True, fastmath=False, error_model="numpy")
def dert_one(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, delta: float
) -> float:
    """Discounted expected residual transactions of one customer under BG/NBD.

    ``DERT = E[∫_T^∞ e^{-δ(s-T)} dY(s) | x, t_x, T] = P_alive · E[λ / (δ + λ p)]`` with
    λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x) (the posterior given alive at T), evaluated as
    ``P_alive (r+x) E[1/(δ(α+T) + G p)]``, G ~ Gamma(r+x+1, 1). The analogue for BG/NBD of
    the Pareto/NBD DERT of Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves
    for customer base analysis", JMR 42(4); derivation in the docs page.

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
# Given-alive factors (CLV): DERT and discounted purchases over a finite horizon
# --------------------------------------------------------------------------------------
# Both are expectations over the posterior given alive at T, λ ~ Gamma(r', α'), p ~ Beta(a, b')
# with (r', α', a, b') = (r+x, α+T, a, b+x); the functions take these updated parameters.

# Panel width (in ln G and logit p) for the finite-horizon integrand: it is analytic and
# bounded by min(h, 2/|κ+w|) only within π/2 of the real axis (e^{-wh} grows beyond), half
# the strip of the DERT integrand, so panels are at most half as wide (same ρ as DERT).
_WMAX_F = 2.0
# For δH above this, e^{-δH} < 1e-16: the finite-horizon factor equals the DERT factor.
_DH_INF = 37.0
# Orders 1..16 of the regularized lower incomplete gamma function P(j+1, y): the finite sum
# 1 - e^{-y} Σ_{i<=j} y^i/i! is used from y = _PG_SPLIT on (its cancellation is then at most
# a factor 2.3 for j < 16), the positive series below.
_PG_SPLIT = 16.0
# 1/n for n < 256 (index n), for the series of _pgamma_int.
_INV_INT = np.concatenate((np.zeros(1), 1.0 / np.arange(1.0, 256.0)))


@njit(cache=True, fastmath=False, error_model="numpy")
def _pgamma_int(y: float, scaled: bool, out: np.ndarray) -> None:
    """``out[j] = P(j+1, y)`` (``scaled``: ``P(j+1, y) / y^(j+1)``), j = 0..len(out)-1.

    P is the regularized lower incomplete gamma function; for integer order,
    ``P(j+1, y) = 1 - e^{-y} Σ_{i<=j} y^i/i!`` (used for y >= ``_PG_SPLIT``, no loss) and
    ``P(j+1, y) = e^{-y} y^{j+1}/(j+1)! S_j``, ``S_j = Σ_k y^k/(j+2)_k`` (DLMF 8.7.1, positive
    terms; S_j by the downward recurrence ``S_j = 1 + y S_{j+1}/(j+2)``, also positive) below.
    ``scaled`` needs y < ``_PG_SPLIT``.
    """
    J = out.shape[0]
    if y == math.inf:
        for j in range(J):
            out[j] = 1.0
        return
    if not scaled and y >= _PG_SPLIT:
        e = math.exp(-y)
        q = 0.0
        for j in range(J):
            q += e
            out[j] = 1.0 - q
            e *= y * _INV_INT[j + 1]
        return
    # S_{J-1} = Σ_k y^k / (J+1)_k: ratio y/(J+1+k) < 1. Multiplications by tabulated
    # reciprocals rather than divisions (this runs once per G node of _disc_core).
    term = 1.0
    s = 1.0
    for k in range(100000):
        n = J + 1 + k
        term *= y * _INV_INT[n] if n < _INV_INT.shape[0] else y / n
        s += term
        if term < 1.0e-17 * s:
            break
    out[J - 1] = s
    for j in range(J - 2, -1, -1):
        out[j] = 1.0 + y * out[j + 1] * _INV_INT[j + 2]
    pre = math.exp(-y) if scaled else y * math.exp(-y)  # e^{-y} y^{j+1}/(j+1)! at j = 0
    f = 1.0 if scaled else y
    for j in range(J):
        out[j] *= pre
        pre *= f * _INV_INT[j + 2]


@njit(cache=True, fastmath=False, error_model="numpy")
def _small_g_coef(mu: float, a: float, sig: float, c: float, x: float, K: np.ndarray) -> float:
    """``Σ_j (-1)^j K_j/c^{j+1} E[p^j] E[G^j; G < x]``, G ~ Gamma(mu, 1), p ~ Beta(a, sig-a),
    for x = c/10 and 0 <= K_j <= 1: the small-G region of :func:`_disc_core`.

    The same two evaluations of ``E[G^j; G < x]`` as :func:`_dert_small_g` (which is the case
    K_j = 1, c = κ): the positive series of DLMF 8.7.1 for x < μ/2 + 10, the regularized
    incomplete gamma function per j otherwise.
    """
    if x < 0.5 * mu + 10.0:
        tot = 0.0
        cj = 1.0
        tol = 1.0e-17
        for j in range(_TAIL_J):
            term = 1.0 / (mu + j)
            sj = term
            for k in range(1, 100000):
                term *= x / (mu + j + k)
                sj += term
                if term < sj * tol:
                    break
            tot += cj * K[j] * sj
            cj *= -(x / c) * (a + j) / (sig + j)
            tol = min(tol * 10.0, 1.0e-3)
        return math.exp(mu * math.log(x) - x - math.lgamma(mu)) / c * tot
    lc = math.log(c)
    tot = 0.0
    lm = 0.0  # ln E[p^j] = ln (a)_j / (a+b')_j
    for j in range(_TAIL_J):
        if K[j] > 0.0:
            tj = K[j] * math.exp(
                lm + lnpoch(mu, float(j)) + _log_gammainc_lower(mu + j, x) - (j + 1.0) * lc
            )
            tot += -tj if (j & 1) else tj
        lm += math.log((a + j) / (sig + j))
    return tot


@njit(cache=True, fastmath=False, error_model="numpy")
def _one_minus_exp_neg(y: float) -> float:
    """``1 - e^{-y}`` for y >= 0 (NaN-free, within ~1e-15 relative), without branches or libm
    calls so that loops over it vectorize (``math.expm1`` is a scalar call, ~5x slower here).

    ``expm1(-t)`` for ``t = min(y, 38)/128 <= 0.297`` from its Taylor polynomial to t^12
    (Estrin's scheme; truncation < 1e-16 relative), then seven doublings
    ``expm1(2t) = expm1(t) (expm1(t) + 2)``, which keep the relative accuracy (no cancellation
    for t < 0). For y > 38, ``e^{-y} < 3.2e-17`` and the clamped value is exact to rounding.
    """
    z = min(y, 38.0) * (-1.0 / 128.0)
    z2 = z * z
    z4 = z2 * z2
    z8 = z4 * z4
    # P(z) = Σ_k z^k/(k+2)!, k = 0..10; expm1(z) = z + z^2 P(z)
    a0 = 0.5 + 0.16666666666666666 * z
    a1 = 0.041666666666666664 + 0.008333333333333333 * z
    a2 = 0.001388888888888889 + 0.0001984126984126984 * z
    a3 = 2.48015873015873e-05 + 2.7557319223985893e-06 * z
    a4 = 2.755731922398589e-07 + 2.505210838544172e-08 * z
    b0 = a0 + a1 * z2
    b1 = a2 + a3 * z2
    b2 = a4 + 2.08767569878681e-09 * z2
    e = z + z2 * ((b0 + b1 * z4) + b2 * z8)
    # seven doublings, written out (a loop here keeps LLVM from vectorizing the callers)
    e = e * (e + 2.0)
    e = e * (e + 2.0)
    e = e * (e + 2.0)
    e = e * (e + 2.0)
    e = e * (e + 2.0)
    e = e * (e + 2.0)
    e = e * (e + 2.0)
    return -e


@njit(cache=True, fastmath=False, error_model="numpy")
def _k_row(
    g: float, P: np.ndarray, wP: np.ndarray, kappa: float, h: float, buf: np.ndarray
) -> float:
    """``Σ_q wP_q k(g P_q)``, k(w) = (1 - e^{-(κ+w)h})/(κ+w): the terms go to a buffer first
    (a branch-free loop without reduction, which LLVM vectorizes), then a sum with four
    accumulators (fixed order: deterministic)."""
    nq = P.shape[0]
    for q in range(nq):
        u = kappa + g * P[q]
        buf[q] = wP[q] * _one_minus_exp_neg(u * h) / u
    m0 = 0.0
    m1 = 0.0
    m2 = 0.0
    m3 = 0.0
    q = 0
    while q + 3 < nq:
        m0 += buf[q]
        m1 += buf[q + 1]
        m2 += buf[q + 2]
        m3 += buf[q + 3]
        q += 4
    while q < nq:
        m0 += buf[q]
        q += 1
    return (m0 + m1) + (m2 + m3)


@njit(cache=True, fastmath=False, error_model="numpy")
def _k_horizon(w: float, kappa: float, h: float) -> float:
    """``k(w) = (1 - e^{-(κ+w)h}) / (κ+w) = ∫_0^h e^{-(κ+w)v} dv`` (limit h at κ + w = 0)."""
    u = kappa + w
    y = u * h
    if y > _DH_INF:
        return 1.0 / u
    if y < 1.0e-300:
        return h
    return -math.expm1(-y) / u


@njit(cache=True, fastmath=False, error_model="numpy")
def _disc_core(mu: float, a: float, bp: float, kappa: float, h: float) -> float:
    """J = E[(1 - e^{-(κ+Gp)h}) / (κ+Gp)], G ~ Gamma(mu, 1), p ~ Beta(a, bp); κ >= 0, h > 0.

    The integrand ``k(w) = ∫_0^h e^{-(κ+w)v} dv`` (w = Gp) is positive, decreasing, convex
    and entire; ``k(w) = Σ_j (-w)^j γ_j(κ, h)/j!``, ``γ_j(κ, h) = ∫_0^h v^j e^{-κv} dv``.
    With ``c = max(κ, 1/h)``, ``K_j = c^{j+1} γ_j(κ, h)/j! ∈ [0, 1]`` (``P(j+1, κh)`` if
    κh >= 1, else ``P(j+1, κh)/(κh)^{j+1}``). The regions are those of :func:`_dert_core`
    (its case h = ∞, c = κ, K_j = 1), with κ replaced by c in the series ratios:

    - G < c/10, all p: ``Σ_j (-1)^j K_j/c^{j+1} E[p^j] E[G^j; G < c/10]``;
    - G >= c/10: Gauss-Legendre panels in ln G; for each G node,
      p < pL (pL <= c/(10 G_max)): ``Σ_j (-G/c)^j K_j E[p^j; p < pL] / c``,
      Gauss-Legendre panels in logit p (at most ``_WMAX_F`` wide),
      1 - p < qR: ``k(G(1-q)) = Σ_j (G q)^j γ_j(κ+G, h)/j!
      = Σ_j (G/C)^j P(j+1, Ch) q^j / C`` with C = κ + G.

    All series have ratio <= 0.1 and ``_TAIL_J`` terms; tails whose probability mass is below
    the negligibility threshold are skipped.
    """
    sig = a + bp
    lb = _lbeta_acc(a, bp)
    c = max(kappa, 1.0 / h)
    kmax = _k_horizon(0.0, kappa, h)
    ref = _k_horizon(mu * a / sig, kappa, h)  # Jensen lower bound of J (k convex)
    thresh = _NEG_TOL * ref / kmax

    # ---- series coefficients of k around w = 0
    K = np.empty(_TAIL_J)
    if h == math.inf:
        for j in range(_TAIL_J):
            K[j] = 1.0
    elif kappa * h >= 1.0:
        _pgamma_int(kappa * h, False, K)
    else:
        _pgamma_int(kappa * h, True, K)

    # ---- G < G_L, all p
    GL = 0.1 * c
    tail_g = _small_g_coef(mu, a, sig, c, GL, K)

    # ---- G nodes
    lmu = math.log(mu)
    gnorm = _gamma_lognorm(mu)
    v0, v1 = _dens_extent(math.log(GL), math.inf, 0, mu, lmu, gnorm, thresh)
    if not (v1 > v0):
        return tail_g
    G, wG = _density_nodes(v0, v1, 0, mu, lmu, gnorm, _WMAX_F, _SCALE_D)
    ng = G.shape[0]
    gmax = G[ng - 1]

    # ---- p tails (moments) and p nodes
    pL = min(0.1, 0.1 * (a + 1.0) / sig, 0.1 * c / gmax)
    qR = min(0.1, 0.1 * (bp + 1.0) / sig)
    ml = np.empty(_TAIL_J)
    mr = np.empty(_TAIL_J)
    _beta_lower_moments(a, bp, pL, lb, ml)
    _beta_lower_moments(bp, a, qR, lb, mr)
    for j in range(_TAIL_J):
        ml[j] *= K[j]  # left-tail coefficients K_j E[p^j; p < pL]
    use_left = ml[0] >= thresh
    use_right = mr[0] >= thresh
    yL = math.log(pL) - math.log1p(-pL)
    yH = math.log1p(-qR) - math.log(qR)
    y0, y1 = _dens_extent(yL, yH, 1, a, bp, lb, thresh)
    if y1 > y0:
        P, wP = _density_nodes(y0, y1, 1, a, bp, lb, _WMAX_F, _SCALE_D)
    else:
        P = np.empty(0)
        wP = np.empty(0)
    nq = P.shape[0]

    # ---- combine
    Pj = np.empty(_TAIL_J)
    buf = np.empty(nq)
    total = 0.0
    ic = 1.0 / c
    for i in range(ng):
        g = G[i]
        pl = 0.0
        if use_left:
            u = -g * ic
            pl = ml[_TAIL_J - 1]
            for j in range(_TAIL_J - 2, -1, -1):
                pl = pl * u + ml[j]
            pl *= ic
        pr = 0.0
        if use_right:
            C = kappa + g
            iC = 1.0 / C
            w = g * iC
            if h == math.inf:
                pr = mr[_TAIL_J - 1]
                for j in range(_TAIL_J - 2, -1, -1):
                    pr = pr * w + mr[j]
            else:
                _pgamma_int(C * h, False, Pj)
                pr = Pj[_TAIL_J - 1] * mr[_TAIL_J - 1]
                for j in range(_TAIL_J - 2, -1, -1):
                    pr = pr * w + Pj[j] * mr[j]
            pr *= iC
        total += wG[i] * (pl + _k_row(g, P, wP, kappa, h, buf) + pr)
    return tail_g + total


@njit(cache=True, fastmath=False, error_model="numpy")
def dert_alive_one(r: float, alpha: float, a: float, b: float, delta: float) -> float:
    """DERT of a customer known to be alive, as a function of the updated parameters.

    ``E[∫_0^∞ e^{-δs} λ e^{-pλs} ds] = E[λ/(δ + pλ)]``, λ ~ Gamma(r, α), p ~ Beta(a, b):
    the factor of :func:`dert_one` after P(alive), ``dert_one(r, α, a, b, x, t_x, T, δ) =
    p_alive_one(...) · dert_alive_one(r+x, α+T, a, b+x, δ)`` (same quadrature, see the docs
    page ``docs/theory/clv.md``). Given alive, the transaction rate at time s after T is
    λe^{-pλs} (Fader, Hardie & Lee 2005, Marketing Science 24(2): Poisson purchases, dropout
    with probability p after each).

    Parameters
    ----------
    r, alpha, a, b : float
        Posterior-given-alive parameters ``(r+x, α+T, a, b+x)`` (> 0).
    delta : float
        Continuous discount rate per time unit (>= 0).

    Returns
    -------
    float
        ``r E[1/(δα + G p)]``, G ~ Gamma(r+1, 1); at δ = 0 the expected number of future
        purchases ``(a+b-1)/(a-1)`` (+inf for a <= 1); NaN for δ < 0 or NaN.
    """
    if delta == 0.0:
        if a > 1.0:
            return (a + b - 1.0) / (a - 1.0)
        return math.inf
    if not (delta > 0.0):
        return math.nan
    return r * _dert_core(r + 1.0, a, b, delta * alpha)


@njit(cache=True, fastmath=False, error_model="numpy")
def discounted_purchases_alive_one(
    r: float, alpha: float, a: float, b: float, delta: float, horizon: float
) -> float:
    """Discounted expected purchases in (T, T+H] of a customer known to be alive at T.

    ``E[∫_0^H e^{-δs} λ e^{-pλs} ds] = E[λ (1 - e^{-(δ+pλ)H}) / (δ + pλ)]`` over
    λ ~ Gamma(r, α), p ~ Beta(a, b) (the updated parameters ``(r+x, α+T, a, b+x)``; model of
    Fader, Hardie & Lee 2005, Marketing Science 24(2)). Written ``r E[k(Gp)]`` with
    ``k(w) = (1 - e^{-(κ+w)h})/(κ+w)``, G ~ Gamma(r+1, 1), κ = δα, h = H/α and evaluated by
    the quadrature of :func:`_disc_core` (derivation in ``docs/theory/clv.md``).

    Special cases: ``H = inf`` is :func:`dert_alive_one`; ``δ = 0`` is the expected number
    of purchases ``expected_purchases_one(r, α, a, b, H)`` (FHL eq. 9 at the updated
    parameters); for ``δH > 37`` the result equals the DERT to 1e-16 relative and that is
    returned.

    Parameters
    ----------
    r, alpha, a, b : float
        Posterior-given-alive parameters ``(r+x, α+T, a, b+x)`` (> 0).
    delta : float
        Continuous discount rate per time unit (>= 0).
    horizon : float
        Length H of the period (>= 0, may be inf).

    Returns
    -------
    float
        NaN for negative or NaN ``delta``/``horizon``.
    """
    if not (delta >= 0.0 and horizon >= 0.0):
        return math.nan
    if horizon == 0.0:
        return 0.0
    if horizon == math.inf or delta * horizon > _DH_INF:
        return dert_alive_one(r, alpha, a, b, delta)
    if delta == 0.0:
        return expected_purchases_one(r, alpha, a, b, horizon)
    return r * _disc_core(r + 1.0, a, b, delta * alpha, horizon / alpha)


# --------------------------------------------------------------------------------------
# Array wrappers: the generic drivers at BG/NBD's cores
# --------------------------------------------------------------------------------------

# Public names of the parallel array loops over the cores above. They are the generic drivers
# of clvbayes.kernels.drivers (bound to these cores there; every family's through
# clvbayes.families.compiled.drivers_for), so the loops are written once. Looked up lazily:
# drivers imports this module.
_DRIVER_ALIASES = {
    "bgnbd_p_alive": "p_alive",  # P(alive at T) per customer (note 021), p_alive_one
    "bgnbd_expected_purchases": "expected_purchases",  # E[X(t)] for each t (eq. 9)
    "bgnbd_conditional_expected_purchases": "conditional_expected_purchases",  # E[Y(t) | x, t_x, T] (eq. 10)
    "bgnbd_pmf": "pmf",  # P(X(t) = n) for each n (eq. 8)
    "bgnbd_conditional_pmf": "conditional_pmf",  # P(Y(t) = n | x, t_x, T) per customer
    "bgnbd_dert": "dert",  # DERT per customer at per-customer rates δ
}


def __getattr__(name: str):
    if name in _DRIVER_ALIASES:
        from clvbayes.kernels import drivers

        return getattr(drivers, _DRIVER_ALIASES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
