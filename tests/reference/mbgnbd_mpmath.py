"""MBG/NBD reference formulas in mpmath (high precision), written from the papers.

Independent of :mod:`clvbayes.kernels.mbgnbd` (which evaluates the same quantities through
BG/NBD's kernels at shifted parameters): every function here is the published closed form,
in its original (non-log, non-shifted) shape, at ``DPS`` significant digits.

Sources
-------
- Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of models for
  customer base analysis", IJRM 24(3), 201-209: the likelihood, P(alive) (appendix A), and
  the unconditional E[X(t)] and P(X(t) = n);
- Wagner & Hoppe (2008), "Erratum on the MBG/NBD model", IJRM 25(3), 225-226: the
  conditional expectation E[Y(t) | x, t_x, T];
- the same formulas as lifetimes' ``ModifiedBetaGeoFitter`` and BTYDplus' ``mbgnbd.*``
  state them.

Model: λ ~ Gamma(r, rate α), p ~ Beta(a, b); Poisson(λ) purchases; the customer drops out
with probability p right after the first purchase (time 0) and after every repeat purchase.
"""

from __future__ import annotations

import mpmath as mp

DPS = 40


def _mpf(*v):
    # mpf values pass through unchanged (mp.diff perturbs them below float resolution)
    return [u if isinstance(u, mp.mpf) else mp.mpf(float(u)) for u in v]


def lik(r, alpha, a, b, x, t_x, T):
    """L(r, α, a, b | x, t_x, T) (Batislam et al. 2007): alive at T, or dropped out right
    after the x-th repeat purchase (after the first purchase, at t_x = 0, when x = 0)."""
    r, alpha, a, b, x, t_x, T = _mpf(r, alpha, a, b, x, t_x, T)
    g = mp.gamma(r + x) * alpha**r / mp.gamma(r)
    alive = mp.beta(a, b + x + 1) / mp.beta(a, b) * g / (alpha + T) ** (r + x)
    dead = mp.beta(a + 1, b + x) / mp.beta(a, b) * g / (alpha + t_x) ** (r + x)
    return alive + dead


def loglik(r, alpha, a, b, x, t_x, T):
    with mp.workdps(DPS):
        return mp.log(lik(r, alpha, a, b, x, t_x, T))


def grad(r, alpha, a, b, x, t_x, T):
    """∂ ln L / ∂(r, α, a, b) by mpmath's numerical differentiation at ``DPS`` digits."""
    with mp.workdps(DPS):
        p = _mpf(r, alpha, a, b)
        out = []
        for k in range(4):

            def f(v, k=k):
                q = list(p)
                q[k] = v
                return mp.log(lik(*q, x, t_x, T))

            out.append(mp.diff(f, p[k]))
        return out


def p_alive(r, alpha, a, b, x, t_x, T):
    """P(alive at T) = 1 / (1 + a/(b+x) ((α+T)/(α+t_x))^(r+x)) (Batislam et al. 2007,
    appendix A; every x, x = 0 included)."""
    with mp.workdps(DPS):
        r, alpha, a, b, x, t_x, T = _mpf(r, alpha, a, b, x, t_x, T)
        return 1 / (1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def expected_purchases(r, alpha, a, b, t):
    """E[X(t)] = b/(a-1) [1 - (α/(α+t))^r 2F1(r, b+1; a+b; t/(α+t))] (Batislam et al. 2007;
    lifetimes' ``expected_number_of_purchases_up_to_time``); a != 1."""
    with mp.workdps(DPS):
        r, alpha, a, b, t = _mpf(r, alpha, a, b, t)
        z = t / (alpha + t)
        return b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * mp.hyp2f1(r, b + 1, a + b, z))


def pmf(r, alpha, a, b, t, n):
    """P(X(t) = n) = B(a, b+n+1)/B(a,b) NB(n) + B(a+1, b+n)/B(a,b) [1 - Σ_{j<n} NB(j)],
    NB(j) = Γ(r+j)/(Γ(r) j!) (α/(α+t))^r (t/(α+t))^j (Batislam et al. 2007).

    The bracket is at least NB(n) and cancels when it is small: it is evaluated with
    ``-log10 NB(n)`` more digits than ``DPS``."""
    with mp.workdps(DPS):
        extra = max(0, int(-mp.log10(_nb(r, alpha, t, n)))) + 10
    with mp.workdps(DPS + extra):
        r, alpha, a, b, t = _mpf(r, alpha, a, b, t)
        first = mp.beta(a, b + n + 1) / mp.beta(a, b) * _nb(r, alpha, t, n)
        tail = 1 - mp.fsum(_nb(r, alpha, t, j) for j in range(n))
        return first + mp.beta(a + 1, b + n) / mp.beta(a, b) * tail


def _nb(r, alpha, t, j):
    r, alpha, t = _mpf(r, alpha, t)
    return mp.gamma(r + j) / (mp.gamma(r) * mp.factorial(j)) * (alpha / (alpha + t)) ** r * (t / (alpha + t)) ** j


def conditional_expected_purchases(r, alpha, a, b, x, t_x, T, t):
    """E[Y(t) | x, t_x, T] = (a+b+x)/(a-1) [1 - ((α+T)/(α+T+t))^(r+x)
    2F1(r+x, b+x+1; a+b+x; t/(α+T+t))] / (1 + a/(b+x) ((α+T)/(α+t_x))^(r+x))
    (Wagner & Hoppe 2008); a != 1."""
    with mp.workdps(DPS):
        r, alpha, a, b, x, t_x, T, t = _mpf(r, alpha, a, b, x, t_x, T, t)
        h = mp.hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))
        num = (a + b + x) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * h)
        return num / (1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def discounted_alive(r, alpha, a, b, x, T, delta, horizon, dps=20):
    """Discounted expected purchases in (T, T+H] given alive at T,
    ``∫_0^H e^{-δs} E[λ e^{-pλs}] ds`` over the posterior given alive, λ ~ Gamma(r', α'),
    p ~ Beta(a, b') with (r', α', b') = (r+x, α+T, b+x+1) (the likelihood of an alive
    customer is (1-p)^(x+1) λ^x e^{-λT}). The purchase rate at s is
    ``E[λ e^{-pλs}] = (r'/α') 2F1(r'+1, a; a+b'; -s/α')`` (Gamma Laplace transform, then
    Euler's integral over p); the s-integral by mpmath quadrature (H may be inf: the DERT
    factor; δ = 0: expected purchases given alive)."""
    with mp.workdps(dps):
        r, alpha, a, b, x, T, delta = _mpf(r, alpha, a, b, x, T, delta)
        rp, ap, bp = r + x, alpha + T, b + x + 1
        H = mp.inf if horizon == float("inf") else mp.mpf(float(horizon))

        def rate(s):
            return mp.exp(-delta * s) * rp / ap * mp.hyp2f1(rp + 1, a, a + bp, -s / ap)

        pts = [mp.mpf(0)] + [ap * 10**k for k in range(-3, 7) if ap * 10**k < H] + [H]
        return mp.quad(rate, pts)


def dropout_alive(r, alpha, a, b, x, T, horizon):
    """P(drop out in (T, T+H] | alive at T) = 1 - E[e^{-pλH}] = 1 - 2F1(r', a; a+b'; -H/α')
    over the same posterior ((1-p)^K is the chance of surviving K ~ Poisson(λH) purchases)."""
    with mp.workdps(DPS):
        r, alpha, a, b, x, T, H = _mpf(r, alpha, a, b, x, T, horizon)
        rp, ap, bp = r + x, alpha + T, b + x + 1
        return 1 - mp.hyp2f1(rp, a, a + bp, -H / ap)


def dert(r, alpha, a, b, x, t_x, T, delta, dps=20):
    """DERT = P(alive) · :func:`discounted_alive` at H = inf."""
    return p_alive(r, alpha, a, b, x, t_x, T) * discounted_alive(r, alpha, a, b, x, T, delta, float("inf"), dps)
