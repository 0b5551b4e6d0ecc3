"""Tests of the CLV kernels (clvbayes.kernels.clv) and of the given-alive factors they use
(``dert_alive_one``, ``discounted_purchases_alive_one`` in clvbayes.kernels.bgnbd_predict).

Independent references:
- the factorisation ``dert_one = p_alive_one · dert_alive_one(r+x, α+T, a, b+x, δ)`` against
  the existing DERT kernel (Fader, Hardie & Lee 2005, Marketing Science 24(2), BG/NBD);
- mpmath, one dimension: the purchase intensity of an alive customer is
  ``E[λ e^{-pλs}] = (r/α) 2F1(r+1, a; a+b; -s/α)``, so the discounted purchases over (0, H]
  are ``r ∫_0^{H/α} e^{-δα v} 2F1(r+1, a; a+b; -v) dv`` (mpmath.hyp2f1 inside mpmath.quad) —
  a different reduction from the kernel's quadrature over (Gamma, Beta);
- mpmath, two dimensions: nested mpmath.quad over λ and p of the defining expectation
  ``E[λ (1 - e^{-(δ+pλ)H}) / (δ+pλ)]``;
- Monte Carlo: prior draws of (λ, p) weighted by the likelihood of the history, future
  purchases simulated in continuous time (P(alive) and the factor together);
- Gamma-Gamma expected spend (Fader, Hardie & Lee 2005, "RFM and CLV", JMR 42(4), eq. 5):
  Bayes' rule by importance weighting of prior draws of ν;
- the block kernel against a plain loop over the scalar cores (no tables, no interpolation);
- numpy.mean / numpy.std(ddof=1) / numpy.quantile and arviz.hdi for the summaries.
"""

from __future__ import annotations

import math

import mpmath as mp
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clvbayes
from clvbayes.kernels import clv as C
from clvbayes.kernels.bgnbd_predict import (
    dert_alive_one,
    dert_one,
    discounted_purchases_alive_one,
    expected_purchases_one,
    p_alive_one,
)
from clvbayes.kernels.gamma_gamma import gg_expected_spend_one

SETTINGS = dict(deadline=None, derandomize=True)
# BG/NBD and Gamma-Gamma estimates for the CDNOW sample (FHL 2005; Fader, Hardie & Lee's
# Gamma-Gamma note), weeks.
MLE = (0.2425945, 4.4136019, 0.7929199, 2.4258881)
GG = (6.25, 3.74, 15.44)


def logu(lo: float, hi: float):
    """Log-uniform floats on [10^lo, 10^hi]."""
    return st.floats(min_value=lo, max_value=hi).map(lambda u: float(10.0**u))


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# --------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------


def ref_disc_intensity(r, alpha, a, b, delta, H, dps=25):
    """``r ∫_0^{H/α} e^{-δα v} 2F1(r+1, a; a+b; -v) dv`` (H = inf allowed)."""
    with mp.workdps(dps):
        r, alpha, a, b, delta = (mp.mpf(float(v)) for v in (r, alpha, a, b, delta))
        h = mp.inf if H == math.inf else mp.mpf(float(H)) / alpha
        kap = delta * alpha

        def f(v):
            return mp.exp(-kap * v) * mp.hyp2f1(r + 1, a, a + b, -v)

        knots = [mp.mpf(10) ** k for k in range(-4, 9) if mp.mpf(10) ** k < h]
        if kap > 0:
            knots += [k for k in (1 / kap, 10 / kap) if k < h]
        return r * mp.quad(f, [0, *sorted(knots), h])


def ref_disc_2d(r, alpha, a, b, delta, H, dps=15):
    """``E[λ (1 - e^{-(δ+pλ)H}) / (δ+pλ)]``, λ ~ Gamma(r, α), p ~ Beta(a, b): nested
    mpmath.quad, the Beta endpoint singularities removed by u = p^a (p < 1/2) and
    v = (1-p)^b (p > 1/2)."""
    with mp.workdps(dps):
        r, alpha, a, b, delta, H = (mp.mpf(float(v)) for v in (r, alpha, a, b, delta, H))
        lg = mp.loggamma(r)

        def inner(p):
            def f(lam):
                u = delta + p * lam
                dens = mp.exp(r * mp.log(alpha) + (r - 1) * mp.log(lam) - alpha * lam - lg)
                return dens * lam * (-mp.expm1(-u * H)) / u

            knots = sorted(k for k in (r / alpha, 1 / (p * H), delta / p) if k > 0)
            return mp.quad(f, [0, *knots, mp.inf])

        half = mp.mpf(1) / 2

        def left(u):
            return (1 - u ** (1 / a)) ** (b - 1) * inner(u ** (1 / a))

        def right(v):
            return (1 - v ** (1 / b)) ** (a - 1) * inner(1 - v ** (1 / b))

        tot = mp.quad(left, [0, half**a]) / a + mp.quad(right, [0, half**b]) / b
        return tot / mp.beta(a, b)


def mc_discounted(r, alpha, a, b, x, t_x, T, delta, H, *, m=400_000, seed=0):
    """E[Σ_{purchases s_i in (T, T+H]} e^{-δ(s_i - T)} | history]: prior draws of (λ, p)
    weighted by the alive and dead branches of the history's likelihood (FHL eq. 6 before
    integration), the future of alive draws simulated in continuous time (exponential gaps
    of rate λ, dropout with probability p after each purchase). (estimate, standard error)."""
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        lam = rng.gamma(r, 1.0 / alpha, m)
        p = rng.beta(a, b, m)
        la = x * np.log(lam) - lam * T + x * np.log1p(-p)
        if x > 0:
            ld = x * np.log(lam) - lam * t_x + (x - 1) * np.log1p(-p) + np.log(p)
        else:
            ld = np.full(m, -np.inf)
        top = max(np.max(la[np.isfinite(la)]), np.max(ld[np.isfinite(ld)]) if x > 0 else -np.inf)
        wa = np.exp(la - top)
        w = np.nan_to_num(wa + np.exp(ld - top))
        alive = rng.random(m) * w < wa
        clock = np.zeros(m)
        y = np.zeros(m)
        active = alive & (lam > 0)
        while active.any():
            idx = np.flatnonzero(active)
            clock[idx] += rng.exponential(1.0, idx.size) / lam[idx]
            inside = clock[idx] <= H
            y[idx[inside]] += np.exp(-delta * clock[idx[inside]])
            active[idx[~inside]] = False
            active[idx[rng.random(idx.size) < p[idx]]] = False
    sw = w.sum()
    est = float((w * y).sum() / sw)
    se = float(math.sqrt((w**2 * (y - est) ** 2).sum()) / sw)
    return est, se


# --------------------------------------------------------------------------------------
# Scalar cores
# --------------------------------------------------------------------------------------


@settings(max_examples=60, **SETTINGS)
@given(
    r=logu(-3, 3),
    alpha=logu(-2, 3),
    a=logu(-2, 2),
    b=logu(-2, 2),
    x=st.integers(0, 2000),
    T=logu(-1, 3),
    frac=st.floats(0.0, 1.0),
    delta=st.one_of(st.just(0.0), logu(-5, 0)),
)
def test_dert_factorises(r, alpha, a, b, x, T, frac, delta):
    # dert_one = P(alive) · (DERT given alive at the updated parameters): the same quadrature,
    # so agreement to rounding.
    t_x = 0.0 if x == 0 else frac * T
    pa = p_alive_one(r, alpha, a, b, float(x), t_x, T)
    fac = dert_alive_one(r + x, alpha + T, a, b + x, delta)
    got = dert_one(r, alpha, a, b, float(x), t_x, T, delta)
    if math.isinf(fac):
        assert delta == 0.0 and a <= 1.0 and math.isinf(got)
    else:
        assert abs(got - pa * fac) <= 1e-15 * abs(got)


@settings(max_examples=25, **SETTINGS)
@given(
    r=logu(-2, 2),
    alpha=logu(-1, 3),
    a=logu(-1.5, 1.5),
    b=logu(-1, 2),
    delta=logu(-4, 0),
    H=logu(-1, 3),
)
def test_discounted_vs_mpmath_intensity(r, alpha, a, b, delta, H):
    H = min(H, 30.0 / delta)  # beyond δH = 37 the kernel returns the DERT (tested below)
    got = discounted_purchases_alive_one(r, alpha, a, b, delta, H)
    assert rel(got, float(ref_disc_intensity(r, alpha, a, b, delta, H))) < 1e-9


def test_discounted_vs_mpmath_2d():
    # A customer with x = 2, T = 25.6 at the CDNOW estimates (updated parameters), 1 year,
    # 10 % a year. More cases in the slow test below.
    case = (MLE[0] + 2, MLE[1] + 25.6, MLE[2], MLE[3] + 2, 0.1 / 52, 52.0)
    assert rel(discounted_purchases_alive_one(*case), float(ref_disc_2d(*case))) < 1e-10


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        (0.25, 4.4, 0.4, 0.6, 0.05, 10.0),  # a < 1, b < 1
        (40.2, 55.0, 3.0, 42.4, 0.01, 100.0),  # large frequency
        (1.5, 0.3, 1.0, 2.0, 0.5, 3.0),  # a = 1, strong discounting
    ],
)
def test_discounted_vs_mpmath_2d_more(case):
    assert rel(discounted_purchases_alive_one(*case), float(ref_disc_2d(*case, dps=20))) < 1e-9


def test_discounted_limits():
    rp, ap, a, bp = MLE[0] + 3, MLE[1] + 30.0, MLE[2], MLE[3] + 3
    # δ -> 0: the expected number of purchases in (T, T+H] given alive (FHL eq. 9)
    ex = expected_purchases_one(rp, ap, a, bp, 52.0)
    assert discounted_purchases_alive_one(rp, ap, a, bp, 0.0, 52.0) == ex
    assert rel(discounted_purchases_alive_one(rp, ap, a, bp, 1e-12, 52.0), ex) < 1e-9
    # H -> inf: the DERT given alive (quadrature at δH = 30, e^{-30} ~ 1e-13; exact beyond 37)
    dert = dert_alive_one(rp, ap, a, bp, 0.01)
    assert rel(discounted_purchases_alive_one(rp, ap, a, bp, 0.01, 3000.0), dert) < 1e-9
    assert discounted_purchases_alive_one(rp, ap, a, bp, 0.01, 4000.0) == dert
    assert discounted_purchases_alive_one(rp, ap, a, bp, 0.01, math.inf) == dert
    assert discounted_purchases_alive_one(rp, ap, a, bp, 0.01, 0.0) == 0.0
    # δ = 0 and H = inf: (a+b-1)/(a-1) for a > 1, inf otherwise
    assert discounted_purchases_alive_one(rp, ap, 2.5, bp, 0.0, math.inf) == (2.5 + bp - 1) / 1.5
    assert discounted_purchases_alive_one(rp, ap, a, bp, 0.0, math.inf) == math.inf
    assert math.isnan(discounted_purchases_alive_one(rp, ap, a, bp, -0.1, 1.0))
    assert math.isnan(discounted_purchases_alive_one(rp, ap, a, bp, 0.1, -1.0))
    assert math.isnan(dert_alive_one(rp, ap, a, bp, math.nan))
    # bounds: 0 <= F <= min(E[λ] H, DERT)
    for H in (0.01, 1.0, 52.0, 500.0):
        f = discounted_purchases_alive_one(rp, ap, a, bp, 0.01, H)
        assert 0.0 < f <= min(rp / ap * H, dert) * (1 + 1e-12)


def test_discounted_monotone():
    rp, ap, a, bp = MLE[0] + 1, MLE[1] + 20.0, MLE[2], MLE[3] + 1
    hs = [0.1, 1.0, 5.0, 26.0, 52.0, 104.0, 520.0, 1849.0, 1851.0, 5200.0, math.inf]
    vals = [discounted_purchases_alive_one(rp, ap, a, bp, 0.02, H) for H in hs]
    assert all(u < v for u, v in zip(vals[:7], vals[1:8], strict=True))
    # δH > 37: the DERT (to 1e-16), which the quadrature just below matches to ~1e-12
    assert vals[7] <= vals[8] * (1 + 1e-11) and vals[8] == vals[9] == vals[10]
    ds = [0.0, 1e-6, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0]
    for H in (10.0, 52.0, math.inf):
        vals = [discounted_purchases_alive_one(rp, ap, a, bp, d, H) for d in ds]
        assert all(u > v for u, v in zip(vals[:-1], vals[1:], strict=True)), (H, vals)


@pytest.mark.parametrize(
    ("params", "x", "t_x", "T", "delta", "H", "seed"),
    [
        (MLE, 2, 30.43, 38.86, 0.02, 39.0, 21),
        (MLE, 0, 0.0, 30.0, 0.05, 20.0, 22),
        ((1.2, 6.0, 1.0, 2.0), 5, 18.0, 25.0, 0.03, 15.0, 23),
    ],
)
def test_discounted_vs_monte_carlo(params, x, t_x, T, delta, H, seed):
    r, alpha, a, b = params
    est, se = mc_discounted(r, alpha, a, b, x, t_x, T, delta, H, seed=seed)
    got = p_alive_one(r, alpha, a, b, float(x), t_x, T) * discounted_purchases_alive_one(
        r + x, alpha + T, a, b + x, delta, H
    )
    assert abs(got - est) < 4.0 * se, (got, est, se)


def test_gamma_gamma_spend():
    p, q, g = GG
    # FHL 2005 (RFM and CLV) eq. 5 and the population mean p γ/(q-1) at x = 0
    assert C.gg_expected_spend_one is gg_expected_spend_one
    val = gg_expected_spend_one(p, q, g, 3.0, 40.0)
    assert rel(val, p * (g + 3 * 40.0) / (p * 3 + q - 1)) < 1e-15
    assert rel(gg_expected_spend_one(p, q, g, 0.0, 123.0), p * g / (q - 1)) < 1e-15
    # the mean exists iff p x + q > 1
    assert math.isnan(gg_expected_spend_one(p, 0.9, g, 0.0, 0.0))
    assert math.isnan(gg_expected_spend_one(0.05, 0.9, g, 1.0, 10.0))
    assert math.isfinite(gg_expected_spend_one(0.5, 0.9, g, 1.0, 10.0))
    # Bayes' rule by importance weighting: ν ~ Gamma(q, rate γ); the mean m of x values
    # Gamma(p, rate ν) is Gamma(px, rate xν); E[Z | x, m] = E[p/ν | m].
    rng = np.random.default_rng(31)
    for x, m in ((1.0, 20.0), (4.0, 35.0), (12.0, 8.0)):
        nu = rng.gamma(q, 1.0 / g, 2_000_000)
        lw = (p * x) * np.log(x * nu) + (p * x - 1) * np.log(m) - x * nu * m
        w = np.exp(lw - lw.max())
        z = p / nu
        est = float((w * z).sum() / w.sum())
        se = float(math.sqrt((w**2 * (z - est) ** 2).sum()) / w.sum())
        assert abs(gg_expected_spend_one(p, q, g, x, m) - est) < 4.0 * se


@pytest.mark.parametrize(
    "quantity", [C.P_ALIVE, C.PURCHASES, C.DISCOUNTED, C.CLV, C.DROPOUT, C.LOST, C.SPEND, C.PMF, C.PMF + 2]
)
def test_extreme_parameters_finite(quantity):
    vals = (1e-4, 1.0, 1e4)
    for r in vals:
        for alpha in vals:
            for a in vals:
                for b in vals:
                    for x, t_x, T in ((0.0, 0.0, 1e-2), (1e4, 9e3, 1e4), (3.0, 0.5, 1.0)):
                        for delta, H in ((1e-6, 1e4), (1.0, 1e-3), (0.05, math.inf)):
                            if quantity in (C.PURCHASES, C.PMF, C.PMF + 2) and H == math.inf:
                                continue
                            v = C.clv_one(
                                quantity, r, alpha, a, b, *GG, x, t_x, T, 30.0, 0.3, delta, H
                            )
                            assert math.isfinite(v) and v >= 0.0, (r, alpha, a, b, x, delta, H)
                            if quantity == C.DISCOUNTED:
                                # 0 <= F <= min(E[λ] H, DERT factor), λ ~ Gamma(r+x, α+T)
                                f = C.alive_factor_one(quantity, r, alpha, a, b, x, T, delta, H)
                                top = dert_alive_one(r + x, alpha + T, a, b + x, delta)
                                top = min(top, (r + x) / (alpha + T) * H)
                                assert 0.0 <= f <= top * (1.0 + 1e-9)


def ref_dropout(r, alpha, a, b, t, dps=30):
    """P(dropout in (0, t] | alive at 0) = 1 - E[(1 + p t/α)^(-r)] = 1 - 2F1(r, a; a+b; -t/α)
    (λ integrated out, then the Beta mean of the power as a Gauss hypergeometric function)."""
    with mp.workdps(dps):
        return float(1 - mp.hyp2f1(mp.mpf(r), mp.mpf(a), mp.mpf(a) + mp.mpf(b), -mp.mpf(t) / mp.mpf(alpha)))


@settings(max_examples=40, **SETTINGS)
@given(
    r=logu(-2, 1.5), alpha=logu(-1, 2.5), a=logu(-1.5, 1.5), b=logu(-1.5, 1.5),
    x=st.integers(0, 40), T=logu(-1, 2.5), t=logu(-1, 3),
)
def test_dropout_factor_vs_mpmath(r, alpha, a, b, x, T, t):
    got = C.alive_factor_one(C.DROPOUT, r, alpha, a, b, float(x), T, 0.0, t)
    ref = ref_dropout(r + x, alpha + T, a, b + x, t)
    assert abs(got - ref) <= 1e-9 * max(ref, 1e-300) + 1e-15
    assert C.alive_factor_one(C.DROPOUT, r, alpha, a, b, float(x), T, 0.0, math.inf) == pytest.approx(1.0, rel=1e-9)


def test_dropout_vs_monte_carlo():
    # Alive customers at T: draw (λ, p) from the given-alive posterior, dropout times of a
    # customer are the first purchase followed by a coin flip with probability p.
    rng = np.random.default_rng(7)
    r, alpha, a, b = MLE
    x, T, t = 3.0, 20.0, 13.0
    n = 400_000
    lam = rng.gamma(r + x, 1.0 / (alpha + T), n)
    p = rng.beta(a, b + x, n)
    # purchases until dropout: geometric number of purchases K ~ Geom(p) (the K-th purchase
    # is followed by dropout); dropout time = sum of K Exp(λ) waits = Gamma(K, λ).
    k = rng.geometric(p)
    t_drop = rng.gamma(k, 1.0 / lam)
    mc = np.mean(t_drop <= t)
    se = math.sqrt(mc * (1 - mc) / n)
    got = C.alive_factor_one(C.DROPOUT, r, alpha, a, b, x, T, 0.0, t)
    assert abs(got - mc) < 4 * se


@settings(max_examples=40, **SETTINGS)
@given(
    x=st.integers(0, 30), frac=st.floats(0, 1), T=logu(-1, 2.5), t=logu(-1, 2.5), n=st.integers(0, 6),
)
def test_pmf_quantity_equals_conditional_pmf(x, frac, T, t, n):
    from clvbayes.kernels.bgnbd_predict import conditional_pmf_one

    r, alpha, a, b = MLE
    t_x = frac * T if x > 0 else 0.0
    got = C.clv_one(C.PMF + n, r, alpha, a, b, *GG, float(x), t_x, T, 30.0, 1.0, 0.0, t)
    ref = conditional_pmf_one(r, alpha, a, b, float(x), t_x, T, t, n)
    assert got == pytest.approx(ref, rel=1e-12, abs=1e-300)


@settings(max_examples=40, **SETTINGS)
@given(x=st.integers(0, 30), frac=st.floats(0, 1), T=logu(-1, 2.5), H=logu(-1, 3), m=logu(0, 3))
def test_lost_plus_clv_is_value_if_alive(x, frac, T, H, m):
    # CLV + LOST = margin · E[Z] · F: P(alive) and P(dead) add to one.
    r, alpha, a, b = MLE
    t_x = frac * T if x > 0 else 0.0
    args = (r, alpha, a, b, *GG, float(x), t_x, T, m, 0.3, 0.002, H)
    clv = C.clv_one(C.CLV, *args)
    lost = C.clv_one(C.LOST, *args)
    spend = C.clv_one(C.SPEND, *args)
    assert spend == pytest.approx(0.3 * gg_expected_spend_one(*GG, float(x), m), rel=1e-14)
    f = C.alive_factor_one(C.DISCOUNTED, r, alpha, a, b, float(x), T, 0.002, H)
    assert clv + lost == pytest.approx(spend * f, rel=1e-12)


# --------------------------------------------------------------------------------------
# Tables and blocks
# --------------------------------------------------------------------------------------


def _draws(n_draws: int, seed: int) -> tuple[np.ndarray, ...]:
    """Posterior-like draws around the CDNOW estimates (a few % spread)."""
    rng = np.random.default_rng(seed)
    cen = (*MLE, *GG)
    return tuple(c * np.exp(0.05 * rng.standard_normal(n_draws)) for c in cen)


@pytest.fixture(scope="module")
def base():
    """3,000 simulated customers with T on a daily grid over 52 weeks, per-customer δ
    (two values) and margins."""
    rng = np.random.default_rng(41)
    T = rng.integers(1, 365, 3000) / 7.0
    df = clvbayes.simulate_customers(*MLE, T, p=GG[0], q=GG[1], gamma=GG[2], seed=41)
    x = df["frequency"].to_numpy(np.float64)
    delta = np.where(rng.random(x.size) < 0.5, 0.1 / 52, 0.15 / 52)
    return dict(
        x=x,
        t_x=df["recency"].to_numpy(np.float64),
        T=df["T"].to_numpy(np.float64),
        m=df["monetary_value"].to_numpy(np.float64),
        delta=delta,
        margin=rng.uniform(0.1, 0.5, x.size),
        segments=rng.integers(0, 5, x.size).astype(np.int64),
    )


def test_unique_keys(base):
    codes, ux, uT, ud = C.unique_keys(base["x"], base["T"], base["delta"])
    np.testing.assert_array_equal(ux[codes], base["x"])
    np.testing.assert_array_equal(uT[codes], base["T"])
    np.testing.assert_array_equal(ud[codes], base["delta"])
    keys = np.stack([ux, ud, uT], axis=1)
    assert len(np.unique(keys, axis=0)) == ux.size
    assert np.all(np.diff(np.lexsort((uT, ud, ux))) == 1)  # sorted by (x, δ, T)
    c2, ux2, uT2, ud2 = C.unique_keys(base["x"], base["T"], 0.01)
    assert np.all(ud2 == 0.01) and ux2.size < ux.size


@pytest.mark.parametrize(
    ("quantity", "horizon"),
    [
        (C.P_ALIVE, 52.0),
        (C.PURCHASES, 39.0),
        (C.DISCOUNTED, 52.0),
        (C.DISCOUNTED, math.inf),
        (C.CLV, 104.0),
        (C.CLV, math.inf),
        (C.DROPOUT, 13.0),
        (C.DROPOUT, math.inf),
        (C.LOST, 52.0),
        (C.SPEND, 52.0),
        (C.PMF, 26.0),
        (C.PMF + 3, 26.0),
    ],
)
def test_block_matches_scalar_cores(base, quantity, horizon):
    r, alpha, a, b, p, q, g = _draws(4, 5)
    codes, ux, uT, ud = C.unique_keys(base["x"], base["T"], base["delta"])
    # groups with more than 17 keys are interpolated: make sure there are some
    _, counts = np.unique(np.stack([ux, ud], 1), axis=0, return_counts=True)
    assert counts.max() > 2 * C._CHEB_NMAX + 1
    table = C.clv_factor_table(quantity, r, alpha, a, b, ux, uT, ud, horizon)
    out = np.empty((r.size, codes.size))
    t_x, m, margin = base["t_x"], base["m"], base["margin"]
    C.clv_block(quantity, r, alpha, a, b, p, q, g, table, ux, uT, codes, t_x, m, margin, out)
    sel = np.arange(0, codes.size, 3)
    for d in range(r.size):
        theta = (r[d], alpha[d], a[d], b[d], p[d], q[d], g[d])
        ref = np.array(
            [
                C.clv_one(
                    quantity,
                    *theta,
                    base["x"][i],
                    t_x[i],
                    base["T"][i],
                    m[i],
                    margin[i],
                    base["delta"][i],
                    horizon,
                )
                for i in sel
            ]
        )
        np.testing.assert_allclose(out[d, sel], ref, rtol=1e-10, atol=0.0)


def test_factor_table_fallbacks():
    # Direct evaluation where interpolation cannot be used: infinite values (δ = 0, H = inf,
    # a <= 1), zeros (H = 0), a tiny α (ln(α+T) spans 10 units); all against the scalar core.
    T = np.arange(1, 365) / 7.0
    ux = np.repeat([0.0, 2.0], T.size)
    uT = np.tile(T, 2)
    for quantity, alpha, a, delta, H in [
        (C.DISCOUNTED, 4.4, 0.8, 0.0, math.inf),
        (C.DISCOUNTED, 4.4, 0.8, 0.01, 0.0),
        (C.CLV, 1e-5, 0.8, 0.01, 52.0),
        (C.PURCHASES, 1e-5, 2.5, 0.0, 52.0),
    ]:
        ud = np.full(ux.size, delta)
        draw = (np.array([0.3]), np.array([alpha]), np.array([a]), np.array([2.4]))
        tab = C.clv_factor_table(quantity, *draw, ux, uT, ud, H)
        ref = [
            C.alive_factor_one(quantity, 0.3, alpha, a, 2.4, x, t, delta, H)
            for x, t in zip(ux, uT, strict=True)
        ]
        np.testing.assert_allclose(tab[0], ref, rtol=1e-10, atol=0.0)


# --------------------------------------------------------------------------------------
# Summaries and streaming
# --------------------------------------------------------------------------------------


def _summaries(mat, probs, hdi_prob, segments, n_seg):
    nb = mat.shape[1]
    out = (np.empty(nb), np.empty(nb), np.empty((nb, probs.size)), np.empty((nb, 2)))
    tot = np.zeros((n_seg, mat.shape[0]))
    C.clv_summarise(mat, probs, hdi_prob, segments, *out, tot)
    return (*out, tot)


def test_summaries_match_numpy_and_arviz():
    import arviz as az

    rng = np.random.default_rng(51)
    nd, nb = 1000, 300
    mat = rng.lognormal(0.0, 1.0, (nd, nb))
    mat[:, 0] = 1.0  # constant column (P(alive) of x = 0)
    mat[:500, 1] = 2.0  # half tied
    mat[:, 2] = np.round(mat[:, 2], 1)  # many ties
    mat[7, 3] = np.nan
    mat[:, 4] = -mat[:, 4]
    probs = np.array([0.03, 0.5, 0.97, 0.0, 1.0, 0.25, 0.999])
    seg = rng.integers(0, 4, nb).astype(np.int64)
    mean, sd, qs, hdi, tot = _summaries(mat, probs, 0.94, seg, 4)
    np.testing.assert_array_equal(mean, np.mean(mat, axis=0))
    np.testing.assert_array_equal(sd, np.std(mat, axis=0, ddof=1))
    np.testing.assert_array_equal(qs, np.quantile(mat, probs, axis=0).T)
    ok = ~np.isnan(mat).any(axis=0)
    ref = np.array([az.hdi(mat[:, i], hdi_prob=0.94) for i in np.flatnonzero(ok)])
    np.testing.assert_array_equal(hdi[ok], ref)
    assert np.isnan(hdi[~ok]).all() and np.isnan(qs[~ok]).all()
    ref_tot = np.zeros((4, nd))
    for i in range(nb):  # in customer order, as the kernel adds
        ref_tot[seg[i]] += mat[:, i]
    np.testing.assert_array_equal(tot, ref_tot)
    # other HDI masses, including overlapping ranges (mass < 1/2), and few draws
    for hp, n_small in ((0.5, 1000), (0.2, 1000), (0.9, 7), (0.5, 2)):
        sub = mat[:n_small, 5:40]
        h = _summaries(sub, probs, hp, seg[5:40], 4)[3]
        ref = np.array([az.hdi(sub[:, i], hdi_prob=hp) for i in range(sub.shape[1])])
        np.testing.assert_array_equal(h, ref)


@pytest.fixture(scope="module")
def streamed(base):
    r, alpha, a, b, p, q, g = _draws(50, 6)
    codes, ux, uT, ud = C.unique_keys(base["x"], base["T"], base["delta"])
    customers = (base["t_x"], base["m"], base["margin"], base["segments"], 5)
    probs = np.array([0.03, 0.5, 0.97])
    return (C.CLV, r, alpha, a, b, p, q, g, codes, ux, uT, ud, *customers, 52.0, probs, 0.94)


def test_stream_equals_full_matrix(streamed):
    args = streamed
    quantity, r, alpha, a, b, p, q, g, codes, ux, uT, ud = args[:12]
    t_x, m, margin, seg, nseg, H, probs, hp = args[12:]
    full = np.empty((r.size, codes.size))
    table = C.clv_factor_table(quantity, r, alpha, a, b, ux, uT, ud, H)
    C.clv_block(quantity, r, alpha, a, b, p, q, g, table, ux, uT, codes, t_x, m, margin, full)
    ref = _summaries(full, probs, hp, seg, nseg)
    ref_np = (
        np.mean(full, axis=0),
        np.std(full, axis=0, ddof=1),
        np.quantile(full, probs, axis=0).T,
    )
    for bs in (1, 97, 1000, codes.size, 10 * codes.size):
        got = C.clv_stream(*args, bs)
        for u, v in zip(got, ref, strict=True):
            np.testing.assert_array_equal(u, v)
        for u, v in zip(got[:3], ref_np, strict=True):
            np.testing.assert_array_equal(u, v)
    # per draw, the segment totals add up to the total over all customers
    np.testing.assert_allclose(got[4].sum(axis=0), full.sum(axis=1), rtol=1e-12)
    assert np.all(np.isfinite(got[0])) and np.all(got[0] > 0)


def test_stream_identical_for_any_thread_count(streamed):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 Numba threads")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = C.clv_stream(*streamed, 500)
        numba.set_num_threads(2)
        parallel = C.clv_stream(*streamed, 500)
    finally:
        numba.set_num_threads(before)
    for u, v in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(u, v)


def test_stream_validates(streamed):
    args = list(streamed)
    bad = args.copy()
    bad[8] = args[8].copy()
    bad[8][0] = args[9].size  # a code out of range
    with pytest.raises(ValueError, match="codes"):
        C.clv_stream(*bad, 100)
    bad = args.copy()
    bad[15] = args[15].copy()
    bad[15][3] = 5
    with pytest.raises(ValueError, match="segments"):
        C.clv_stream(*bad, 100)
    with pytest.raises(ValueError):
        C.clv_stream(*args, 0)
