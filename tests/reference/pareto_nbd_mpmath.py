"""High-precision Pareto/NBD references (mpmath), written from the published formulas.

Independent of :mod:`clvbayes.kernels.pareto_nbd`: the likelihood is the closed form with
Gauss's hypergeometric function of Fader & Hardie (2005), "A note on deriving the Pareto/NBD
model and related expressions", section 3 (case split on α >= β), P(alive) its section 5,
E[X(t)] its section 4, the pmf the lifetime-mixture of section 4 integrated by mpmath's
tanh-sinh quadrature (in ln u, split around the integrand's peak), DERT the confluent hypergeometric form of
Fader, Hardie & Lee (2005), JMR 42(4), and the finite-horizon discounted factor the
integral of the discounted Laplace transform of μ over the horizon. All at ``DPS`` digits.
"""

from __future__ import annotations

import mpmath as mp

DPS = 40


def _mpf(*v):
    return [mp.mpf(float(u)) for u in v]


def _bracket(r, alpha, s, beta, x, t_x, T):
    """The braces of the 2F1 likelihood without the prefactor: (first term, second term)."""
    first = 1 / ((alpha + T) ** (r + x) * (beta + T) ** s)
    if T == t_x:
        return first, mp.mpf(0)
    a1 = r + s + x
    c = a1 + 1
    if alpha >= beta:
        b = s + 1
        d, base_x, base_T = alpha - beta, alpha + t_x, alpha + T
    else:
        b = r + x
        d, base_x, base_T = beta - alpha, beta + t_x, beta + T
    for extra in (0, 40, 120):
        # the two terms cancel when t_x is near T: add digits until 20 of the difference remain
        with mp.workdps(mp.mp.dps + extra):
            u = mp.hyp2f1(a1, b, c, d / base_x) / base_x**a1
            v = mp.hyp2f1(a1, b, c, d / base_T) / base_T**a1
            A0 = u - v
            if abs(A0) > abs(u) * mp.mpf(10) ** (-(mp.mp.dps - 20)):
                break
    return first, s / a1 * A0


def loglik(r, alpha, s, beta, x, t_x, T, dps=DPS):
    """ln L, Fader & Hardie (2005) note, section 3 (2F1 closed form)."""
    with mp.workdps(dps):
        r, alpha, s, beta, x, t_x, T = _mpf(r, alpha, s, beta, x, t_x, T)
        return _loglik_mp(r, alpha, s, beta, x, t_x, T)


def _loglik_mp(r, alpha, s, beta, x, t_x, T):
    f, g = _bracket(r, alpha, s, beta, x, t_x, T)
    return mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha) + s * mp.log(beta) + mp.log(f + g)


def loglik_grad(r, alpha, s, beta, x, t_x, T, dps=DPS):
    """(ln L, ∂/∂r, ∂/∂α, ∂/∂s, ∂/∂β) by mpmath.diff of the closed form at ``dps`` digits."""
    with mp.workdps(dps):
        p = _mpf(r, alpha, s, beta)
        d = _mpf(x, t_x, T)
        out = [_loglik_mp(*p, *d)]
        for i in range(4):
            def f(v, i=i):
                q = list(p)
                q[i] = v
                return _loglik_mp(*q, *d)
            out.append(mp.diff(f, p[i]))
        return [float(v) for v in out]


def p_alive(r, alpha, s, beta, x, t_x, T, dps=DPS):
    """P(alive), Fader & Hardie (2005) note, section 5: first term / braces."""
    with mp.workdps(dps):
        f, g = _bracket(*_mpf(r, alpha, s, beta, x, t_x, T))
        return float(f / (f + g))


def expected_purchases(r, alpha, s, beta, t, dps=DPS):
    """E[X(t)], Fader & Hardie (2005) note, section 4: (r β)/(α (s-1)) [1 - (β/(β+t))^(s-1)] (s = 1: (r β/α) ln(1 + t/β))."""
    with mp.workdps(dps):
        r, alpha, s, beta, t = _mpf(r, alpha, s, beta, t)
        if s == 1:
            return float(r * beta / alpha * mp.log(1 + t / beta))
        return float(r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1)))


def _nb(r, alpha, n, u):
    return mp.exp(mp.loggamma(r + n) - mp.loggamma(r) - mp.loggamma(n + 1)) * (alpha / (alpha + u)) ** r * (
        u / (alpha + u)
    ) ** n


def pmf(r, alpha, s, beta, t, n, dps=DPS):
    """P(X(t) = n): P(τ > t) NB(n; t) + ∫_0^t f_τ(u) NB(n; u) du, τ ~ Lomax(s, β).

    The integral in w = ln u, split at the mode of the integrand ± multiples of its local
    scale (the integrand can be a narrow peak far from every parameter's scale).
    """
    with mp.workdps(dps):
        r, alpha, s, beta, t = _mpf(r, alpha, s, beta, t)
        first = _nb(r, alpha, n, t) * (beta / (beta + t)) ** s

        def g(w):
            u = mp.exp(w)
            return s * beta**s * (beta + u) ** (-(s + 1)) * _nb(r, alpha, n, u) * u

        def dlog(w):  # derivative of ln g, decreasing in w
            u = mp.exp(w)
            return (n + 1) - (r + n) * u / (alpha + u) - (s + 1) * u / (beta + u)

        hi = mp.log(t)
        lo = hi - 200
        if dlog(hi) >= 0:
            mode = hi
        else:
            a, b = lo, hi
            for _ in range(200):
                m = (a + b) / 2
                a, b = (m, b) if dlog(m) > 0 else (a, m)
            mode = (a + b) / 2
        u = mp.exp(mode)
        curv = (r + n) * alpha * u / (alpha + u) ** 2 + (s + 1) * beta * u / (beta + u) ** 2
        sig = 1 / mp.sqrt(curv) if curv > 0 else mp.mpf(1)
        slope = abs(dlog(mode))  # at an end: the exponential decay scale
        sig = min(sig, mp.mpf(1), 1 / slope if slope > 0 else mp.mpf(1))
        pts = {lo, hi} | {mode + j * sig for j in range(-40, 41)}
        pts = sorted(p for p in pts if lo <= p <= hi)
        return float(first + mp.quad(g, pts))


def dert_factor(s, beta, delta, dps=DPS):
    """E[1/(μ+δ)], μ ~ Gamma(s, β): (βδ)^s U(s, s, βδ)/δ (FHL 2005 JMR, DERT)."""
    with mp.workdps(dps):
        s, beta, delta = _mpf(s, beta, delta)
        z = beta * delta
        return float(z**s * mp.hyperu(s, s, z) / delta)


def discounted_factor(s, beta, delta, h, dps=DPS):
    """∫_0^h e^{-δv} E[e^{-μv}] dv = ∫_0^h e^{-δv} (β/(β+v))^s dv (μ ~ Gamma(s, β): the
    Laplace transform), by tanh-sinh quadrature with breakpoints at the scales β, 1/δ."""
    with mp.workdps(dps):
        s, beta, delta, h = _mpf(s, beta, delta, h)
        f = lambda v: mp.exp(-delta * v) * (beta / (beta + v)) ** s  # noqa: E731
        pts = sorted({mp.mpf(0), h} | {p for p in (beta / 10, beta, 1 / delta, 10 / delta) if p < h})
        return float(mp.quad(f, pts))
