"""Pareto/NBD scalar cores (Numba): likelihood with exact gradient, P(alive), predictions,
DERT, the value-engine factors and simulation.

Model: Schmittlein, Morrison & Colombo (1987), "Counting your customers: who are they and
what will they do next?", Management Science 33(1), 1-24 (SMC below). While alive a customer
buys as a Poisson process of rate λ ~ Gamma(r, rate α); the lifetime is τ ~ Exp(μ),
μ ~ Gamma(s, rate β), independently. A customer has x repeat purchases, the last at t_x,
and has been observed for T time units.

One representation carries the likelihood and the pmf. Integrating
``L(λ, μ) = λ^x e^{-(λ+μ)T} + λ^x μ ∫_{t_x}^T e^{-(λ+μ)τ} dτ`` (Fader & Hardie 2005, "A note
on deriving the Pareto/NBD model and related expressions", section 2) over the gamma mixing
distributions gives::

    L = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^-(r+x) (β+T)^-s
                                  + s ∫_{t_x}^T (α+τ)^-(r+x) (β+τ)^-(s+1) dτ ]

the integral form of the closed expression with 2F1 (Fader & Hardie 2005 note, section 3).
With ``ℓ_a(τ) = ln(1 + τ/α)``, ``ℓ_b(τ) = ln(1 + τ/β)``, A = r + x and c = min(α, β)::

    ln L = lnΓ(r+x) - lnΓ(r) - x ln α + ln(E1 + E2),
    E1 = exp(-A ℓ_a(T) - s ℓ_b(T)),
    E2 = s (c+t_x)/(β+t_x) exp(-A ℓ_a(t_x) - s ℓ_b(t_x)) · J,
    J  = ∫_0^U exp(y - A ln(1 + q_a expm1 y) - (s+1) ln(1 + q_b expm1 y)) dy

in the variable ``y = ln((c+τ)/(c+t_x))``, ``U = ln((c+T)/(c+t_x))``, ``q_a = (c+t_x)/(α+t_x)``,
``q_b = (c+t_x)/(β+t_x)`` (one of them is 1). P(alive at T | history) = E1/(E1 + E2)
(SMC; Fader & Hardie 2005 note, section 5). ``ln(E2/E1)`` is formed from
``ℓ(T) - ℓ(t_x) = ln(1 + (T-t_x)/(c+t_x))`` and ``ln(E1 + E2)`` from the larger term, so no
two large logs (``A ℓ_a ~ 1e5`` at x = 1e4) are subtracted. For x = 0 and L > 1/2, where
``ln L`` is small but ``ln E1`` is not (large s, small β), ``ln L = ln(1 - Q)`` with
``Q = ∫_0^T (r/α)(1+u/α)^-(r+1) (1+u/β)^-s du``, the probability of a repeat purchase.

**Quadrature.** Every integral here is ``∫ exp ψ(y) dy`` with

    ψ(y) = k y - m1 ln(1 + q1 expm1 y) - m2 ln(1 + q2 expm1 y) - κ expm1 y,

q_i in [0, 1], m_i, κ >= 0. Each term is concave, so ψ' is decreasing; ψ is analytic within
π of the real axis (zeros of ``1 + q expm1 y`` lie at Im y = ±π) and the tail beyond a point
where the integrand decreases is at most ``exp ψ / |ψ'|`` (concavity). :func:`_integrate`
finds the mode of ψ (bisection on ψ') and :func:`_walk` lays Gauss-Legendre panels (12
nodes) from it towards both ends, each at most ``_WMAX`` wide and at most ``_KW / max|ψ'|``
(the exponential rate on the panel), stopping where the tail bound is below 1e-17 of the sum
so far: 1-33 panels for parameters in 1e-4..1e4, x and T up to 1e4 (typically 1-3). The
gradient differentiates under the integral sign (the nodes are a rule in τ; the limits do
not depend on the parameters), with every factor a weighted mean of positive quantities.

Predictions (memorylessness: given alive at T, λ ~ Gamma(r+x, α+T) and μ ~ Gamma(s, β+T)
independently and the future is a fresh Pareto/NBD process with these parameters):

- E[X(t)] for a new customer (Fader & Hardie 2005 note, section 4; SMC):
  ``(r/α) β/(s-1) [1 - (β/(β+t))^(s-1)] = (r/α) β L exprel(-(s-1) L)``, L = ln(1 + t/β)
  (no singularity at s = 1);
- P(X(t) = n) for a new customer: ``NB(n; t) (β/(β+t))^s + s β^s ∫_0^t NB(n; u)
  (β+u)^-(s+1) du`` (the lifetime mixed over its density), NB the gamma-Poisson pmf over
  a period u; the integral in ln u by the same quadrature;
- discounted purchases in (T, T+h] given alive: ``E[λ'] ∫_0^h e^{-δv} (β'/(β'+v))^s dv``
  (E[e^{-μ'v}] = P(alive at T+v | alive at T)); at h = inf this is the DERT factor
  ``E[λ'] E[1/(μ'+δ)] = E[λ'] (β'δ)^s U(s, s; β'δ)/δ`` of Fader, Hardie & Lee (2005),
  "RFM and CLV: using iso-value curves for customer base analysis", JMR 42(4).

The array likelihood of a fit (:mod:`clvbayes.kernels.pareto_nbd_grid`) evaluates the same
integral once per distinct x over the data's distinct times and falls back to
:func:`loglik_one` / :func:`loglik_grad_one` where it cannot guarantee their accuracy.

Preconditions (not checked): parameters > 0, integer-valued x >= 0, 0 <= t_x <= T, t >= 0,
δ >= 0.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from clvbayes.kernels.bgnbd_predict import _GL_W, _GL_X, _NGL
from clvbayes.kernels.clv import DROPOUT, P_ALIVE, PMF, PURCHASES, SPEND
from clvbayes.kernels.special import digamma_diff, exprel, lnpoch, log1pexp, logaddexp

__all__ = [
    "loglik_one",
    "loglik_grad_one",
    "p_alive_one",
    "expected_purchases_one",
    "pmf_one",
    "conditional_expected_purchases_one",
    "conditional_pmf_one",
    "dert_one",
    "alive_factor_one",
    "discounted_alive_one",
    "replicate_one",
    "holdout_replicate_one",
]

# Panels: at most _WMAX wide in y (strip of analyticity π: ρ^-24 < 1e-18 at 12 nodes) and
# at most _KW / max|ψ'| (an exponential e^{-ky} on a panel with kW <= 5 is integrated to
# ~1e-17 by 12 Gauss-Legendre nodes).
_WMAX = 2.0
_KW = 5.0
# Stop when the remaining tail is below this fraction of the sum so far.
_LTAIL = math.log(1.0e-17)
# Panels per walk (a guard; typical integrals need 1-15).
_MAXP = 64
_NODES = 2 * _MAXP * _NGL  # two walks
# Above this Poisson mean the count is taken equal to the mean (relative sd < 3.2e-8).
_POISSON_MAX = 1.0e15


# --------------------------------------------------------------------------------------
# Quadrature of exp ψ(y), ψ concave (module docstring)
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _log1p_q(q: float, qc: float, em1: float, ey: float) -> float:
    """``ln(1 + q (e^y - 1))`` given ``qc = 1 - q``, ``em1 = expm1 y``, ``ey = e^y``; the
    form ``ln(qc + q e^y)`` where ``1 + q em1`` nears 0 (y -> -inf, q -> 1)."""
    u = q * em1
    if u > -0.5:
        return math.log1p(u)
    return math.log(qc + q * ey)


@njit(cache=True, fastmath=False, error_model="numpy")
def _dpsi(
    y: float, k: float, m1: float, q1: float, c1: float, m2: float, q2: float, c2: float, kappa: float
) -> float:
    """ψ'(y) = k - m1 q1 e^y/(1 + q1 expm1 y) - m2 q2 e^y/(1 + q2 expm1 y) - κ e^y."""
    ey = math.exp(y)
    return k - m1 * q1 * ey / (c1 + q1 * ey) - m2 * q2 * ey / (c2 + q2 * ey) - kappa * ey


@njit(cache=True, fastmath=False, error_model="numpy")
def _psi(
    y: float, k: float, m1: float, q1: float, c1: float, m2: float, q2: float, c2: float, kappa: float
) -> tuple[float, float, float, float]:
    """(ψ(y), expm1 y, ln(1 + q1 expm1 y), ln(1 + q2 expm1 y))."""
    # one exp: e^y from expm1 where e^y >= 0.6, else expm1 from e^y (no cancellation either way)
    if y > -0.5:
        em1 = math.expm1(y)
        ey = em1 + 1.0
    else:
        ey = math.exp(y)
        em1 = ey - 1.0
    l1 = _log1p_q(q1, c1, em1, ey) if m1 != 0.0 else 0.0
    l2 = _log1p_q(q2, c2, em1, ey) if m2 != 0.0 else 0.0
    return k * y - m1 * l1 - m2 * l2 - kappa * em1, em1, l1, l2


@njit(cache=True, fastmath=False, error_model="numpy")
def _walk(
    k: float,
    m1: float,
    q1: float,
    c1: float,
    m2: float,
    q2: float,
    c2: float,
    kappa: float,
    y0: float,
    y1: float,
    out: np.ndarray,
    lmax: float,
    ssum: float,
    n: int,
) -> tuple[float, float, int]:
    """Add ``∫ exp ψ`` over [y0, y1] (or [y1, y0]; y1 may be ±inf), walking from y0, to the
    running sum ``e^{lmax} ssum`` of n nodes; returns the updated ``(lmax, ssum, n)``.

    ``c_i = 1 - q_i`` (passed separately: exact for q_i near 1). If ``out`` has rows, node
    i's ``(expm1 y, ln(1 + q1 expm1 y), ln(1 + q2 expm1 y), ln weight)`` go to ``out[i]``
    (the weight includes ``exp ψ``), for the caller's moments.
    """
    store = out.shape[0] > 0
    dirn = 1.0 if y1 > y0 else -1.0
    y = y0
    if y1 == y0:
        return lmax, ssum, n
    d0 = abs(_dpsi(y, k, m1, q1, c1, m2, q2, c2, kappa))
    for _ in range(_MAXP):
        # widest w <= _WMAX with w max(|ψ'(y)|, |ψ'(y ± w)|) <= _KW (|ψ'| is largest at an
        # end since ψ' is monotone): a shrinking guess, then bisection in ln w
        w = min(_WMAX, dirn * (y1 - y))
        d1 = abs(_dpsi(y + dirn * w, k, m1, q1, c1, m2, q2, c2, kappa))
        if w * max(d0, d1) > _KW:
            hi = w
            lo = _KW / max(d0, d1)
            for _ in range(200):
                d1 = abs(_dpsi(y + dirn * lo, k, m1, q1, c1, m2, q2, c2, kappa))
                if lo * max(d0, d1) <= _KW:
                    break
                hi = lo
                lo *= 0.25
            for _ in range(5):
                mid = math.sqrt(lo * hi)
                d1 = abs(_dpsi(y + dirn * mid, k, m1, q1, c1, m2, q2, c2, kappa))
                if mid * max(d0, d1) <= _KW:
                    lo = mid
                else:
                    hi = mid
            w = lo
        yb = y + dirn * w if w < dirn * (y1 - y) else y1
        half = 0.5 * (yb - y)
        mid = 0.5 * (yb + y)
        ah = abs(half)
        for i in range(_NGL):
            yi = mid + half * _GL_X[i]
            ps, em1, l1, l2 = _psi(yi, k, m1, q1, c1, m2, q2, c2, kappa)
            lw = ps + math.log(ah * _GL_W[i])
            if lw > lmax:
                ssum = ssum * math.exp(lmax - lw) + 1.0
                lmax = lw
            else:
                ssum += math.exp(lw - lmax)
            if store:
                out[n, 0] = em1
                out[n, 1] = l1
                out[n, 2] = l2
                out[n, 3] = lw
            n += 1
        y = yb
        if y == y1:
            break
        g = dirn * _dpsi(y, k, m1, q1, c1, m2, q2, c2, kappa)
        d0 = abs(g)
        if g < 0.0:
            ps, _, _, _ = _psi(y, k, m1, q1, c1, m2, q2, c2, kappa)
            if ps - math.log(-g) < lmax + math.log(ssum) + _LTAIL:
                break
    return lmax, ssum, n


@njit(cache=True, fastmath=False, error_model="numpy")
def _mode(
    k: float, m1: float, q1: float, c1: float, m2: float, q2: float, c2: float, kappa: float, ya: float, yb: float
) -> float:
    """A point near the maximum of ψ on [ya, yb] (ends may be infinite; ψ' decreasing):
    an end if ψ' has one sign there, else bisection on ψ' to 1e-3."""
    if ya > -math.inf and _dpsi(ya, k, m1, q1, c1, m2, q2, c2, kappa) <= 0.0:
        return ya
    if yb < math.inf and _dpsi(yb, k, m1, q1, c1, m2, q2, c2, kappa) >= 0.0:
        return yb
    lo = ya
    hi = yb
    step = 1.0
    if lo == -math.inf:
        lo = min(hi, 0.0) - step
        while _dpsi(lo, k, m1, q1, c1, m2, q2, c2, kappa) <= 0.0 and lo > -1.0e6:
            step *= 2.0
            lo -= step
    step = 1.0
    if hi == math.inf:
        hi = max(lo, 0.0) + step
        while _dpsi(hi, k, m1, q1, c1, m2, q2, c2, kappa) >= 0.0 and hi < 1.0e6:
            step *= 2.0
            hi += step
    for _ in range(80):
        if hi - lo < 1.0e-3:
            break
        mid = 0.5 * (lo + hi)
        if _dpsi(mid, k, m1, q1, c1, m2, q2, c2, kappa) > 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@njit(cache=True, fastmath=False, error_model="numpy")
def _integrate(
    k: float,
    m1: float,
    q1: float,
    c1: float,
    m2: float,
    q2: float,
    c2: float,
    kappa: float,
    ya: float,
    yb: float,
    out: np.ndarray,
) -> tuple[float, float, int]:
    """``∫_ya^yb exp ψ = e^{lmax} ssum``: ``(lmax, ssum, nodes)``, walking from the mode of
    ψ towards both ends (each walk then meets a decreasing integrand and stops at its
    negligible tail; starting at an end would cross up to hundreds of panels of a steep,
    negligible rise). Node table as in :func:`_walk`."""
    ym = _mode(k, m1, q1, c1, m2, q2, c2, kappa, ya, yb)
    lmax, ssum, n = _walk(k, m1, q1, c1, m2, q2, c2, kappa, ym, yb, out, -math.inf, 0.0, 0)
    return _walk(k, m1, q1, c1, m2, q2, c2, kappa, ym, ya, out, lmax, ssum, n)


@njit(cache=True, fastmath=False, error_model="numpy")
def _no_nodes() -> np.ndarray:
    """An empty node table (values only; a global array would be read-only in Numba)."""
    return np.empty((0, 4))


# --------------------------------------------------------------------------------------
# Likelihood and P(alive)
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _setup(alpha: float, beta: float, t_x: float, T: float) -> tuple[float, float, float, float, float, float]:
    """(c + t_x, q_a, 1 - q_a, q_b, 1 - q_b, U) of the likelihood integral J."""
    c = min(alpha, beta)
    ct = c + t_x
    at = alpha + t_x
    bt = beta + t_x
    U = math.log1p((T - t_x) / ct)
    return ct, ct / at, (alpha - c) / at, ct / bt, (beta - c) / bt, U


@njit(cache=True, fastmath=False, error_model="numpy")
def _log_terms(
    r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float, out: np.ndarray
) -> tuple[float, float, int, float]:
    """(ln E1, ln(E2/E1), number of nodes, ln E2) of the module docstring; nodes to ``out``
    if it has rows.

    ``ln(E2/E1)`` is formed from ``ℓ_a(T) - ℓ_a(t_x) = ln(1 + (T-t_x)/(α+t_x))`` (and the
    same for β), not as a difference of two large logs (A ℓ_a ~ 1e5 at x = 1e4).
    """
    A = r + x
    lnE1 = -A * math.log1p(T / alpha) - s * math.log1p(T / beta)
    if not (T > t_x):
        return lnE1, -math.inf, 0, -math.inf
    ct, qa, qca, qb, qcb, U = _setup(alpha, beta, t_x, T)
    gap = T - t_x
    if U < 1e-150:
        # A vanishing gap (down to T = 5e-324, where the panels of the walk would be 0 wide):
        # E2/E1 = s gap/(β + t_x) (1 + O(U (A + s))), exact in double precision here.
        d = math.log(s) + math.log(gap) - math.log(beta + t_x)
        return lnE1, d, 0, lnE1 + d
    lmax, ssum, n = _integrate(1.0, A, qa, qca, s + 1.0, qb, qcb, 0.0, 0.0, U, out)
    lj = math.log(s * qb) + lmax + math.log(ssum)
    d = lj + A * math.log1p(gap / (alpha + t_x)) + s * math.log1p(gap / (beta + t_x))
    lnE2 = lj - A * math.log1p(t_x / alpha) - s * math.log1p(t_x / beta)
    return lnE1, d, n, lnE2


@njit(cache=True, fastmath=False, error_model="numpy")
def _log_bracket(lnE1: float, lnE2: float, d: float) -> float:
    """``ln(E1 + E2)`` from the larger term, ``ln E1 + ln(1 + e^d)`` or
    ``ln E2 + ln(1 + e^-d)`` (d = ln(E2/E1)): adding d to a large ln E1 where E2 dominates
    would lose ε |ln E1| (ln E2 is formed on its own, exactly the integral's log at t_x = 0)."""
    if d <= 0.0:
        return lnE1 + log1pexp(d)
    return lnE2 + log1pexp(-d)


@njit(cache=True, fastmath=False, error_model="numpy")
def _needs_complement(x: float, lnB: float, lnE1: float) -> bool:
    """Whether ln L of a customer without repeat purchases is better formed from
    Q = 1 - L: when L > 1/2 and ``ln L = ln E1 + ln(1 + E2/E1)`` cancels by more than 8x
    (e.g. large s, small β: E1 tiny, E2 ~ 1; the sum loses ε |ln E1| absolutely)."""
    if x != 0.0:
        return False
    return lnB > -math.log(2.0) and -lnE1 > -8.0 * lnB


@njit(cache=True, fastmath=False, error_model="numpy")
def _complement(r: float, alpha: float, s: float, beta: float, T: float, out: np.ndarray) -> tuple[float, float, int]:
    """``(ln Q, c, nodes)``: Q = 1 - L = P(a repeat purchase in (0, T]) for x = 0,
    ``∫_0^T E[λ e^{-(λ+μ)u}] du = ∫_0^T (r/α)(1 + u/α)^-(r+1) (1 + u/β)^-s du`` (the first
    purchase at u while alive; Fader & Hardie 2005 note, section 2, at x = 0), in
    ``y = ln(1 + u/c)``, c = min(α, β): ``(r c/α) ∫_0^{ln(1+T/c)} exp(y - (r+1) ln(1 +
    (c/α) expm1 y) - s ln(1 + (c/β) expm1 y)) dy``."""
    c = min(alpha, beta)
    lmax, ssum, n = _integrate(
        1.0, r + 1.0, c / alpha, (alpha - c) / alpha, s, c / beta, (beta - c) / beta, 0.0, 0.0,
        math.log1p(T / c), out,
    )
    return math.log(r * c / alpha) + lmax + math.log(ssum), c, n


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_one(r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float) -> float:
    """Log-likelihood of one customer history under the Pareto/NBD model.

    Fader & Hardie (2005) note, sections 2-3 (SMC give no likelihood), in the
    integral form of the module docstring (no 2F1, no case split on α >= β).

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer (0 <= t_x <= T).

    Returns
    -------
    float
    """
    lnE1, d, _, lnE2 = _log_terms(r, alpha, s, beta, x, t_x, T, _no_nodes())
    lnB = _log_bracket(lnE1, lnE2, d)
    if _needs_complement(x, lnB, lnE1):
        lq, _, _ = _complement(r, alpha, s, beta, T, _no_nodes())
        return math.log1p(-math.exp(lq))
    return lnpoch(r, x) - x * math.log(alpha) + lnB


@njit(cache=True, fastmath=False, error_model="numpy")
def _difference(p1: float, m1: float, p2: float, m2: float) -> float:
    """``p1 - m1``, equal to ``p2 - m2`` in exact arithmetic, from the pair with the smaller
    terms (the smaller absolute rounding error)."""
    if max(p1, m1) <= max(p2, m2):
        return p1 - m1
    return p2 - m2


@njit(cache=True, fastmath=False, error_model="numpy")
def _complement_grad(
    r: float, alpha: float, s: float, beta: float, T: float, nodes: np.ndarray
) -> tuple[float, float, float, float, float]:
    """``(ln L, gradient)`` for x = 0 from Q = 1 - L (:func:`_complement`):
    ``∇ ln L = -∇Q / (1 - Q)``, ``∇Q = Q ⟨∇ ln integrand⟩`` with the factors
    ``1/r - ℓ_a(u)``, ``((r+1) u/(α+u) - 1)/α``, ``-ℓ_b(u)``, ``s u/(β(β+u))``."""
    lq, c, n = _complement(r, alpha, s, beta, T, nodes)
    qa = c / alpha
    qb = c / beta
    lref = nodes[0, 3]
    for i in range(n):
        lref = max(lref, nodes[i, 3])
    wsum = 0.0
    m_la = 0.0
    m_lb = 0.0
    m_fa = 0.0
    m_ga = 0.0
    m_fb = 0.0
    for i in range(n):
        wi = math.exp(nodes[i, 3] - lref)
        ua = qa * nodes[i, 0]  # u/α
        ub = qb * nodes[i, 0]
        wsum += wi
        m_la += wi * nodes[i, 1]
        m_lb += wi * nodes[i, 2]
        m_fa += wi * (ua / (1.0 + ua))
        m_ga += wi * (1.0 / (1.0 + ua))
        m_fb += wi * (ub / (1.0 + ub))
    Q = math.exp(lq)
    f = -Q / (1.0 - Q) / wsum  # ∂ ln L = f Σ w (factor)
    d_r = f * (wsum / r - m_la)
    d_a = f * _difference((r + 1.0) * m_fa, wsum, r * wsum, (r + 1.0) * m_ga) / alpha
    d_s = -f * m_lb
    d_b = f * s * m_fb / beta
    return math.log1p(-Q), d_r, d_a, d_s, d_b


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_grad_one(
    r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float
) -> tuple[float, float, float, float, float]:
    """``(ln L, ∂/∂r, ∂/∂α, ∂/∂s, ∂/∂β)`` of :func:`loglik_one`.

    Differentiation under the integral sign of the likelihood's integral form (module
    docstring). With w1 = E1/(E1+E2), w2 = 1 - w1, ⟨·⟩ the mean over J's normalised
    integrand, ``F_a = w1 T/(α+T) + w2 ⟨τ/(α+τ)⟩`` and ``F_b`` likewise::

        ∂r = ψ(r+x) - ψ(r) - w1 ℓ_a(T) - w2 ⟨ℓ_a(τ)⟩
        ∂α = ((r+x) F_a - x) / α
        ∂s = w2/s - w1 ℓ_b(T) - w2 ⟨ℓ_b(τ)⟩
        ∂β = (s w1 T/(β+T) + w2 ((s+1) ⟨τ/(β+τ)⟩ - 1)) / β

    The rate derivatives are formed from the means of ``τ/(c+τ)`` or of ``c/(c+τ)``
    (``∂α = (r - (r+x) G_a)/α`` with ``G_a = 1 - F_a``, and the like for β), whichever
    has the smaller terms (less cancellation).

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.

    Returns
    -------
    tuple of float
    """
    la_T = math.log1p(T / alpha)
    lb_T = math.log1p(T / beta)
    if T > t_x:
        nodes = np.empty((_NODES, 4))
    else:
        nodes = _no_nodes()
    lnE1, d, n, lnE2 = _log_terms(r, alpha, s, beta, x, t_x, T, nodes)
    lnB = _log_bracket(lnE1, lnE2, d)
    if _needs_complement(x, lnB, lnE1):
        return _complement_grad(r, alpha, s, beta, T, nodes)
    ll = lnpoch(r, x) - x * math.log(alpha) + lnB
    w1 = math.exp(-log1pexp(d))
    w2 = math.exp(-log1pexp(-d))
    # means over J of ℓ(τ) - ℓ(t_x), τ/(c+τ) and c/(c+τ), for c = α (a) and β (b)
    m_a = 0.0  # ⟨ℓ(τ) - ℓ(t_x)⟩
    m_b = 0.0
    la0 = math.log1p(t_x / alpha)
    lb0 = math.log1p(t_x / beta)
    m_fa = 0.0
    m_ga = 0.0
    m_fb = 0.0
    m_gb = 0.0
    if n > 0:
        ct, qa, _, qb, _, _ = _setup(alpha, beta, t_x, T)
        lref = nodes[0, 3]
        for i in range(n):
            lref = max(lref, nodes[i, 3])
        wsum = 0.0
        for i in range(n):
            em1 = nodes[i, 0]
            wi = math.exp(nodes[i, 3] - lref)
            tau = t_x + ct * em1
            wsum += wi
            m_a += wi * nodes[i, 1]
            m_b += wi * nodes[i, 2]
            m_fa += wi * (tau / (alpha + tau))
            m_ga += wi * (alpha / (alpha + tau))
            m_fb += wi * (tau / (beta + tau))
            m_gb += wi * (beta / (beta + tau))
        m_a /= wsum
        m_b /= wsum
        m_fa /= wsum
        m_ga /= wsum
        m_fb /= wsum
        m_gb /= wsum
    d_r = digamma_diff(r, x) - (w1 * la_T + w2 * (la0 + m_a))
    # α ∂α = (r+x) F_a - x = r - (r+x) G_a, F = w1 T/(c+T) + w2 ⟨τ/(c+τ)⟩, G = 1 - F
    A = r + x
    F_a = w1 * (T / (alpha + T)) + w2 * m_fa
    G_a = w1 * (alpha / (alpha + T)) + w2 * m_ga
    d_a = _difference(A * F_a, x, r, A * G_a) / alpha
    d_s = w2 / s - (w1 * lb_T + w2 * (lb0 + m_b))
    # β ∂β = s w1 T/(β+T) + w2 ((s+1) ⟨τ/(β+τ)⟩ - 1) = s - s w1 β/(β+T) - w2 (s+1) ⟨β/(β+τ)⟩
    p1 = s * w1 * (T / (beta + T)) + w2 * (s + 1.0) * m_fb
    m2 = s * w1 * (beta / (beta + T)) + w2 * (s + 1.0) * m_gb
    d_b = _difference(p1, w2, s, m2) / beta
    return ll, d_r, d_a, d_s, d_b


@njit(cache=True, fastmath=False, error_model="numpy")
def _alive_dead(
    r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float
) -> tuple[float, float]:
    """(P_alive, 1 - P_alive), the second formed directly (no cancellation near 1)."""
    _, d, _, _ = _log_terms(r, alpha, s, beta, x, t_x, T, _no_nodes())
    return math.exp(-log1pexp(d)), math.exp(-log1pexp(-d))


@njit(cache=True, fastmath=False, error_model="numpy")
def p_alive_one(r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float) -> float:
    """P(alive at T | x, t_x, T) = E1 / (E1 + E2) (SMC 1987; Fader & Hardie
    2005 note, section 5). In [0, 1]; 1 when t_x = T.

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.

    Returns
    -------
    float
    """
    pa, _ = _alive_dead(r, alpha, s, beta, x, t_x, T)
    return pa


# --------------------------------------------------------------------------------------
# Predictions for a new customer
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def discounted_alive_one(s: float, beta: float, delta: float, horizon: float) -> float:
    """``D = ∫_0^h e^{-δv} (β/(β+v))^s dv``: the expected discounted time alive in (0, h] of
    a customer alive at 0 with μ ~ Gamma(s, β) (the factor of every purchase quantity after
    the purchase rate ``E[λ]``).

    δ = 0: ``β/(s-1) (1 - (β/(β+h))^(s-1)) = β L exprel(-(s-1) L)``, L = ln(1 + h/β)
    (Fader & Hardie 2005 note, section 4; finite at s = 1), ``β/(s-1)`` at h = inf (inf for
    s <= 1). δ > 0: in ``y = ln(1 + v/β)``, ``D = β ∫_0^L exp((1-s) y - δβ expm1 y) dy``
    by :func:`_walk`; at h = inf ``D = E[1/(μ+δ)] = (βδ)^s U(s, s; βδ)/δ`` (Fader, Hardie &
    Lee 2005, JMR 42(4), the Pareto/NBD DERT).

    Parameters
    ----------
    s, beta : float
        Dropout-rate shape and rate (updated: ``β + T`` for a customer of age T).
    delta : float
        Continuous discount rate (>= 0).
    horizon : float
        Length h of the period (>= 0, may be inf).

    Returns
    -------
    float
        NaN for negative or NaN ``delta`` or ``horizon``.
    """
    if not (delta >= 0.0 and horizon >= 0.0):
        return math.nan
    if horizon == 0.0:
        return 0.0
    if delta == 0.0:
        if horizon == math.inf:
            return beta / (s - 1.0) if s > 1.0 else math.inf
        L = math.log1p(horizon / beta)
        return beta * L * exprel(-(s - 1.0) * L)
    L = math.log1p(horizon / beta)
    lmax, ssum, _ = _integrate(1.0 - s, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, delta * beta, 0.0, L, _no_nodes())
    return beta * math.exp(lmax) * ssum


@njit(cache=True, fastmath=False, error_model="numpy")
def expected_purchases_one(r: float, alpha: float, s: float, beta: float, t: float) -> float:
    """E[X(t)] for a new customer: ``(r/α) β/(s-1) [1 - (β/(β+t))^(s-1)]`` (SMC;
    Fader & Hardie 2005 note, section 4), stable at s = 1 (see :func:`discounted_alive_one`).

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
    t : float
        Length of the period (>= 0).

    Returns
    -------
    float
    """
    return r / alpha * discounted_alive_one(s, beta, 0.0, t)


@njit(cache=True, fastmath=False, error_model="numpy")
def _log_nb_coef(r: float, n: float) -> float:
    """``ln[Γ(r+n)/(Γ(r) n!)]`` without subtracting two large lnΓ values (the larger of r
    and n is the base of the rising factorial)."""
    if n == 0.0:
        return 0.0
    if r >= n:
        return lnpoch(r, n) - math.lgamma(n + 1.0)
    if r >= 1.0:
        return lnpoch(n + 1.0, r - 1.0) - math.lgamma(r)
    return -lnpoch(n + r, 1.0 - r) - math.lgamma(r)


@njit(cache=True, fastmath=False, error_model="numpy")
def pmf_one(r: float, alpha: float, s: float, beta: float, t: float, n: int) -> float:
    """P(X(t) = n) for a new customer (first purchase at 0).

    The lifetime mixed over its Lomax law (Fader & Hardie 2006, "Deriving an expression for P(X(t) = x) under the Pareto/NBD model",
    sections 3-4; SMC):
    ``NB(n; t) (β/(β+t))^s + s β^s ∫_0^t NB(n; u) (β+u)^-(s+1) du``,
    ``NB(n; u) = Γ(r+n)/(Γ(r) n!) (α/(α+u))^r (u/(α+u))^n``. Written
    ``NB(n; t) (β/(β+t))^s [1 + s t/(β+t) J]`` with J the integral in ``y = ln(u/t)`` of
    ``exp((n+1) y - (r+n) ln(1 + q_a expm1 y) - (s+1) ln(1 + q_b expm1 y))`` over (-inf, 0],
    ``q_a = t/(α+t)``, ``q_b = t/(β+t)``, in log space.

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
    t : float
        Length of the period (>= 0).
    n : int
        Number of repeat purchases.

    Returns
    -------
    float
    """
    if n < 0:
        return 0.0
    if not (t > 0.0):
        return 1.0 if n == 0 else 0.0
    nf = float(n)
    at = alpha + t
    bt = beta + t
    qa = t / at
    qb = t / bt
    lnb = -s * math.log1p(t / beta)
    lnnb = _log_nb_coef(r, nf) - r * math.log1p(t / alpha) + (nf * math.log(qa) if n > 0 else 0.0)
    lmax, ssum, _ = _integrate(
        nf + 1.0, r + nf, qa, alpha / at, s + 1.0, qb, beta / bt, 0.0, -math.inf, 0.0, _no_nodes()
    )
    lj = math.log(s * qb) + lmax + math.log(ssum)
    return math.exp(lnnb + lnb + logaddexp(0.0, lj))


# --------------------------------------------------------------------------------------
# Conditional predictions, DERT and the value-engine factor
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def conditional_expected_purchases_one(
    r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float, t: float
) -> float:
    """E[X(T, T+t] | x, t_x, T] = P_alive · E[X(t)] at (r+x, α+T, s, β+T) (SMC;
    Fader & Hardie 2005 note, section 6).

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.
    t : float
        Length of the prediction period (>= 0).

    Returns
    -------
    float
    """
    pa = p_alive_one(r, alpha, s, beta, x, t_x, T)
    return pa * expected_purchases_one(r + x, alpha + T, s, beta + T, t)


@njit(cache=True, fastmath=False, error_model="numpy")
def conditional_pmf_one(
    r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float, t: float, n: int
) -> float:
    """P(X(T, T+t] = n | x, t_x, T) = P_alive · P(X(t) = n; r+x, α+T, s, β+T)
    + (1 - P_alive) [n = 0] (the dead buy nothing; memorylessness, as in Fader & Hardie
    2005 note section 5).

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
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
    pa, pd = _alive_dead(r, alpha, s, beta, x, t_x, T)
    val = pa * pmf_one(r + x, alpha + T, s, beta + T, t, n)
    if n == 0:
        val += pd
    return val


@njit(cache=True, fastmath=False, error_model="numpy")
def dert_one(
    r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float, delta: float
) -> float:
    """Discounted expected residual transactions, Fader, Hardie & Lee (2005), JMR 42(4),
    ``P_alive · (r+x)/(α+T) · E[1/(μ'+δ)]``, μ' ~ Gamma(s, β+T), the last factor
    ``(β'δ)^s U(s, s; β'δ)/δ`` by quadrature (:func:`discounted_alive_one`, h = inf).

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.
    delta : float
        Continuous discount rate per time unit (>= 0; δ = 0 gives the expected number of
        future purchases, inf for s <= 1).

    Returns
    -------
    float
    """
    pa = p_alive_one(r, alpha, s, beta, x, t_x, T)
    return pa * (r + x) / (alpha + T) * discounted_alive_one(s, beta + T, delta, math.inf)


@njit(cache=True, fastmath=False, error_model="numpy")
def alive_factor_one(
    quantity: int,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    x: float,
    T: float,
    delta: float,
    horizon: float,
) -> float:
    """The factor after P(alive) of a value-engine quantity, given alive at T (codes of
    :mod:`clvbayes.kernels.clv`), at the posterior given alive (r+x, α+T, s, β+T).

    ``PURCHASES``: ``(r+x)/(α+T) · D(s, β+T, 0, h)``; ``DISCOUNTED``, ``CLV``, ``LOST``:
    ``(r+x)/(α+T) · D(s, β+T, δ, h)`` (:func:`discounted_alive_one`; the DERT factor at
    h = inf); ``DROPOUT``: ``1 - ((β+T)/(β+T+h))^s``; ``PMF + n``: :func:`pmf_one` at the
    updated parameters over h; ``P_ALIVE``, ``SPEND``: 1.

    Parameters
    ----------
    quantity : int
        Quantity code.
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
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
    if quantity == P_ALIVE or quantity == SPEND:
        return 1.0
    bp = beta + T
    if quantity == DROPOUT:
        return -math.expm1(-s * math.log1p(horizon / bp))
    if quantity >= PMF:
        return pmf_one(r + x, alpha + T, s, bp, horizon, quantity - PMF)
    rate = (r + x) / (alpha + T)
    if quantity == PURCHASES:
        return rate * discounted_alive_one(s, bp, 0.0, horizon)
    # DISCOUNTED, CLV, LOST
    return rate * discounted_alive_one(s, bp, delta, horizon)


# --------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _count_and_last(lam: float, mu: float, t: float) -> tuple[float, float]:
    """Purchases in (0, t] of a customer alive at 0 with rates λ, μ, and the last purchase
    time (0 if none): window ``w = min(Exp(μ), t)``, count ``K ~ Poisson(λ w)``, last
    arrival the largest of K uniforms on (0, w]."""
    e = -math.log(1.0 - np.random.random())
    w = min(e / mu, t) if mu > 0.0 else t
    mean = lam * w
    if not mean > 0.0:
        return 0.0, 0.0
    if mean > _POISSON_MAX:
        k = mean
    else:
        k = float(np.random.poisson(mean))
    if k == 0.0:
        return 0.0, 0.0
    return k, w * math.exp(math.log(1.0 - np.random.random()) / k)


@njit(cache=True, error_model="numpy")
def replicate_one(r: float, alpha: float, s: float, beta: float, T: float) -> tuple[float, float]:
    """One new Pareto/NBD customer over (0, T]: (repeat count, time of the last repeat).

    SMC (1987) section 2: ``λ ~ Gamma(r, rate α)``, ``μ ~ Gamma(s, rate β)``, lifetime
    ``Exp(μ)``, Poisson(λ) purchases while alive. Draw order ``λ, μ, lifetime, count,
    last time``, from Numba's global generator (seed it first).

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
    T : float
        Length of the observation period (>= 0).

    Returns
    -------
    tuple of float
    """
    lam = np.random.gamma(r, 1.0 / alpha)
    mu = np.random.gamma(s, 1.0 / beta)
    return _count_and_last(lam, mu, T)


@njit(cache=True, error_model="numpy")
def holdout_replicate_one(
    r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float, t: float
) -> float:
    """Purchases in (T, T+t] of a customer with history (x, t_x, T), simulated.

    Alive at T with probability :func:`p_alive_one`; if alive, ``λ ~ Gamma(r+x, α+T)``,
    ``μ ~ Gamma(s, β+T)`` (the posterior given alive) and a fresh Pareto/NBD process over t.
    Its mean is :func:`conditional_expected_purchases_one`. Draw order: alive uniform, then
    as :func:`replicate_one` without the last time.

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).
    x, t_x, T : float
        Repeat frequency, recency and age of the customer.
    t : float
        Length of the holdout period (>= 0).

    Returns
    -------
    float
    """
    if np.random.random() >= p_alive_one(r, alpha, s, beta, x, t_x, T):
        return 0.0
    lam = np.random.gamma(r + x, 1.0 / (alpha + T))
    mu = np.random.gamma(s, 1.0 / (beta + T))
    k, _ = _count_and_last(lam, mu, t)
    return k


# --------------------------------------------------------------------------------------
# Event-by-event simulation (the cores of clvbayes.kernels.simulate)
# --------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def latent_one(r: float, alpha: float, s: float, beta: float) -> tuple[float, float, float]:
    """A new Pareto/NBD customer's latent draws ``(λ, μ, τ)``.

    SMC (1987) section 2: ``λ ~ Gamma(r, rate α)``, ``μ ~ Gamma(s, rate β)``, lifetime
    ``τ ~ Exp(μ)`` (by inversion, ``-ln(1 - U)/μ``; ``inf`` where μ underflows to 0 for
    tiny s). Draw order ``λ, μ, U``, from Numba's global generator.

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters (> 0).

    Returns
    -------
    tuple of float
    """
    lam = np.random.gamma(r, 1.0 / alpha)
    mu = np.random.gamma(s, 1.0 / beta)
    e = -math.log(1.0 - np.random.random())
    return lam, mu, (e / mu if mu > 0.0 else math.inf)


@njit(cache=True, error_model="numpy")
def drops_out_one(r: float, alpha: float, s: float, beta: float, lam: float, mu: float, k: int) -> bool:
    """Never: a Pareto/NBD customer's dropout is the lifetime of :func:`latent_one`, not an
    event at purchases (SMC 1987). No draws.

    Returns
    -------
    bool
    """
    return False


__all__ += ["latent_one", "drops_out_one"]
