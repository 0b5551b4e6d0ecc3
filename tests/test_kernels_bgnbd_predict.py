"""Tests of the BG/NBD prediction kernels (clvbayes.kernels.bgnbd_predict).

Independent references:
- Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
  Pareto/NBD model", Marketing Science 24(2): eq. (8) P(X(t) = n), eq. (9) E[X(t)] (with
  mpmath.hyp2f1), eq. (10) E[Y(t) | x, t_x, T], and P(alive) as the share of the "alive"
  term in the likelihood eq. (6), all in their original form with mpmath at 40+ digits;
- mpmath.quad of the integral representation E[X(t)] = E_p[(1 - (1 + p t/α)^-r) / p];
- the conditional pmf from Bayes' rule on the individual-level model (joint probability of
  the calibration history and of n future purchases, integrated over λ and p in closed form),
  which does not use the memorylessness identity the kernels rely on;
- DERT = P_alive (r+x) E_G[2F1(1, a; a+b+x; -G/κ)/κ], G ~ Gamma(r+x+1): inner p-integral from
  mpmath.hyp2f1, outer integral by QUADPACK (scipy) — a different reduction of the double
  integral than the kernel's;
- Monte Carlo simulations of the individual-level process (numpy, seeded), weighted by the
  likelihood of the calibration history, for E[Y(t) | history] and DERT;
- published values: lifetimes' test suite (reproducing Hardie's Excel sheet for the CDNOW
  sample) and the R BTYD documentation (values copied in lifetimes' tests).
"""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from clvbayes.kernels.bgnbd_predict import (
    bgnbd_conditional_expected_purchases,
    bgnbd_conditional_pmf,
    bgnbd_dert,
    bgnbd_expected_purchases,
    bgnbd_p_alive,
    bgnbd_pmf,
    conditional_expected_purchases_one,
    conditional_pmf_one,
    dert_one,
    expected_purchases_one,
    p_alive_one,
    pmf_one,
)

# BG/NBD maximum-likelihood estimates for the CDNOW sample (Hardie's Excel sheet, FHL 2005).
MLE = (0.2425945, 4.4136019, 0.7929199, 2.4258881)
# The rounded estimates used by the R BTYD documentation examples (and lifetimes' tests).
ROUNDED = (0.243, 4.414, 0.793, 2.426)

SETTINGS = dict(deadline=None, derandomize=True)


def logu(lo: float, hi: float):
    """Log-uniform floats on [10^lo, 10^hi]."""
    return st.floats(min_value=lo, max_value=hi).map(lambda u: float(10.0**u))


# --------------------------------------------------------------------------------------
# mpmath references (original FHL formulas)
# --------------------------------------------------------------------------------------


def _mpf(*vals):
    return [mp.mpf(float(v)) for v in vals]


def ref_p_alive(r, alpha, a, b, x, t_x, T, dps=40):
    """P(alive) = L_alive / (L_alive + L_dead), the two terms of FHL (2005) eq. (6)."""
    with mp.workdps(dps):
        r, alpha, a, b, x, t_x, T = _mpf(r, alpha, a, b, x, t_x, T)
        if x == 0:
            return mp.mpf(1)
        common = mp.gamma(r + x) * alpha**r / mp.gamma(r)
        alive = mp.beta(a, b + x) / mp.beta(a, b) * common / (alpha + T) ** (r + x)
        dead = mp.beta(a + 1, b + x - 1) / mp.beta(a, b) * common / (alpha + t_x) ** (r + x)
        return alive / (alive + dead)


def _ex_fhl(r, alpha, a, b, t):
    C = a + b - 1
    return C / (a - 1) * (1 - (alpha / (alpha + t)) ** r * mp.hyp2f1(r, b, C, t / (alpha + t)))


def ref_ex_hyp(r, alpha, a, b, t, dps=40):
    """FHL (2005) eq. (9) with mpmath.hyp2f1; at a = 1 (0/0) the mean of a = 1 ± 1e-30."""
    with mp.workdps(dps + (70 if a == 1 else 0)):
        r, alpha, a, b, t = _mpf(r, alpha, a, b, t)
        if a == 1:
            eps = mp.mpf("1e-30")
            return (_ex_fhl(r, alpha, a + eps, b, t) + _ex_fhl(r, alpha, a - eps, b, t)) / 2
        return _ex_fhl(r, alpha, a, b, t)


def ref_ex_quad(r, alpha, a, b, t, dps=30):
    """E[X(t)] = ∫ Beta(p; a, b) g(p) dp, g(p) = (1 - (1 + p t/α)^-r) / p, by mpmath.quad.

    The Beta endpoint singularities are removed by substitution: u = p^a on p < 1/2 and
    v = (1-p)^b on p > 1/2, so that ∫ = (1/a) ∫ (1-p)^(b-1) g(p) du + (1/b) ∫ p^(a-1) g(p) dv.
    """
    with mp.workdps(dps):
        r, alpha, a, b, t = _mpf(r, alpha, a, b, t)
        s = t / alpha
        B = mp.beta(a, b)
        half = mp.mpf(1) / 2

        def g(p):
            return -mp.expm1(-r * mp.log1p(p * s)) / p if p > 0 else r * s

        def left(u):
            p = u ** (1 / a)
            return (1 - p) ** (b - 1) * g(p)

        def right(v):
            p = 1 - v ** (1 / b)
            return p ** (a - 1) * g(p)

        knots = sorted(
            {k**a for k in (1 / s, 1 / (s * (r + 1)), a / (a + b), 1 / (10 * s)) if k < half}
        )
        lo = mp.quad(left, [0, *knots, half**a]) / a
        hi = mp.quad(right, [0, half**b]) / b
        return (lo + hi) / B


def ref_cond_ex(r, alpha, a, b, x, t_x, T, t, dps=40):
    """FHL (2005) eq. (10) with mpmath.hyp2f1 (a = 1: mean of a = 1 ± 1e-30)."""
    with mp.workdps(dps + (70 if a == 1 else 0)):
        r, alpha, a, b, x, t_x, T, t = _mpf(r, alpha, a, b, x, t_x, T, t)

        def eq10(a):
            C = a + b + x - 1
            num = (
                C
                / (a - 1)
                * (
                    1
                    - ((alpha + T) / (alpha + T + t)) ** (r + x)
                    * mp.hyp2f1(r + x, b + x, C, t / (alpha + T + t))
                )
            )
            den = 1 + (a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x) if x > 0 else 0)
            return num / den

        if a == 1:
            eps = mp.mpf("1e-30")
            return (eq10(a + eps) + eq10(a - eps)) / 2
        return eq10(a)


def _nb_terms(r, q, z, n):
    """Γ(r+j)/(Γ(r) j!) q^r z^j for j < n (NB(r, q) pmf)."""
    out = []
    term = q**r
    for j in range(n):
        out.append(term)
        term = term * (r + j) / (j + 1) * z
    return out


def _extra_digits(r, q, n):
    """Digits lost in 1 - Σ_{j<n} NB(j; r, q): -log10 P(NB >= n) (+ margin), capped."""
    if n == 0:
        return 10
    lsf = float(stats.nbinom.logsf(n - 1, r, q))
    return int(min(400.0, max(0.0, -lsf / math.log(10.0)))) + 15


def ref_pmf(r, alpha, a, b, t, n, dps=40):
    """FHL (2005) eq. (8), with the finite sum 1 - Σ_{j<n} NB(j) at enough digits."""
    with mp.workdps(dps + _extra_digits(r, alpha / (alpha + t), n)):
        r, alpha, a, b, t = _mpf(r, alpha, a, b, t)
        q = alpha / (alpha + t)
        z = t / (alpha + t)
        lb = mp.beta(a, b)
        t1 = (
            mp.beta(a, b + n) / lb * mp.gamma(r + n) / (mp.gamma(r) * mp.factorial(n)) * q**r * z**n
        )
        if n == 0:
            return t1
        return t1 + mp.beta(a + 1, b + n - 1) / lb * (1 - mp.fsum(_nb_terms(r, q, z, n)))


def ref_cond_pmf(r, alpha, a, b, x, t_x, T, t, n, dps=40):
    """P(Y(t) = n | x, t_x, T) = P(history, Y(t) = n) / P(history), both in closed form.

    Given (λ, p): dead at the x-th purchase: λ^x e^{-λ t_x} (1-p)^{x-1} p [n = 0]; alive at T:
    λ^x e^{-λT} (1-p)^x times [(1-p)^n (λt)^n e^{-λt}/n! + [n>0] p (1-p)^{n-1}
    (1 - e^{-λt} Σ_{j<n} (λt)^j/j!)]. Integrated over λ ~ Gamma(r, α), p ~ Beta(a, b).
    """
    with mp.workdps(dps + _extra_digits(r + x, (alpha + T) / (alpha + T + t), n)):
        r, alpha, a, b, x, t_x, T, t = _mpf(r, alpha, a, b, x, t_x, T, t)
        B = mp.beta(a, b)

        def lam_moment(k, horizon):  # E[λ^k e^{-λ horizon}] for λ ~ Gamma(r, α)
            return mp.gamma(r + k) * alpha**r / (mp.gamma(r) * (alpha + horizon) ** (r + k))

        dead = mp.beta(a + 1, b + x - 1) / B * lam_moment(x, t_x) if x > 0 else mp.mpf(0)
        alive = mp.beta(a, b + x) / B * lam_moment(x, T)
        joint = mp.beta(a, b + x + n) / B * t**n / mp.factorial(n) * lam_moment(x + n, T + t)
        if n > 0:
            lower = mp.fsum(t**j / mp.factorial(j) * lam_moment(x + j, T + t) for j in range(n))
            joint += mp.beta(a + 1, b + x + n - 1) / B * (lam_moment(x, T) - lower)
        if n == 0:
            joint += dead
        return joint / (alive + dead)


def ref_dert(r, alpha, a, b, x, t_x, T, delta):
    """P_alive (r+x) ∫ Gamma(G; r+x+1) 2F1(1, a; a+b+x; -G/κ)/κ dG, κ = δ(α+T).

    E_p[1/(κ + G p)] = 2F1(1, a; a+b'; -G/κ)/κ in mpmath; the outer integral over v = ln G
    by scipy's adaptive QUADPACK (relative tolerance 1e-13).
    """
    mu = r + x + 1.0
    kappa = delta * (alpha + T)
    bp = b + x
    lg = math.lgamma(mu)

    def f(v):
        g = math.exp(v)
        with mp.workdps(20):
            inner = float(mp.hyp2f1(1, a, a + bp, -g / kappa))
        return math.exp(mu * v - g - lg) * inner / kappa

    sd = 1.0 / math.sqrt(mu)
    m = math.log(mu)
    lo = m - 80.0 / mu - 10.0 * sd - 5.0
    hi = m + math.log1p(60.0 / mu) + 6.0 * sd + 1.0
    pts = sorted(p for p in (m - 5 * sd, m, m + 5 * sd, math.log(kappa)) if lo < p < hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        val, _ = integrate.quad(f, lo, hi, points=pts, epsabs=0.0, epsrel=1e-13, limit=200)
    return float(ref_p_alive(r, alpha, a, b, x, t_x, T)) * (r + x) * val


def rel(a, b):
    return abs(float(a) / float(b) - 1.0)


# --------------------------------------------------------------------------------------
# Monte Carlo of the individual-level process
# --------------------------------------------------------------------------------------


def mc_future(r, alpha, a, b, x, t_x, T, *, t=None, delta=None, m=1_000_000, seed=0):
    """Weighted simulation of what a customer with history (x, t_x, T) does after T.

    λ, p are drawn from the prior; each draw is weighted by the likelihood of the history
    (FHL eq. 6 before integration: alive branch λ^x e^{-λT} (1-p)^x, dead branch
    λ^x e^{-λ t_x} (1-p)^{x-1} p), is alive at T with probability alive-branch / total,
    and if alive its purchases after T are simulated in continuous time (exponential gaps of
    rate λ, dropout with probability p after each purchase). Returns (estimate, standard
    error) of E[Y(t)] (``t`` given) or of E[Σ_i e^{-δ s_i}] (``delta`` given).
    """
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
        wd = np.exp(ld - top)
        w = np.nan_to_num(wa + wd)
        alive = rng.random(m) * w < wa
        clock = np.zeros(m)
        y = np.zeros(m)
        active = alive & (lam > 0)
        while active.any():
            idx = np.flatnonzero(active)
            clock[idx] += rng.exponential(1.0, idx.size) / lam[idx]
            if t is not None:
                inside = clock[idx] <= t
                y[idx[inside]] += 1.0
                active[idx[~inside]] = False
            else:
                disc = np.exp(-delta * clock[idx])
                y[idx] += disc
                active[idx[disc < 1e-13]] = False
            drop = rng.random(idx.size) < p[idx]
            active[idx[drop]] = False
    sw = w.sum()
    est = float((w * y).sum() / sw)
    se = float(math.sqrt((w**2 * (y - est) ** 2).sum()) / sw)
    return est, se


# --------------------------------------------------------------------------------------
# Published values
# --------------------------------------------------------------------------------------


def test_conditional_expectation_hardie_excel():
    # lifetimes tests/test_estimation.py,
    # test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet:
    # E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226 at the CDNOW MLE (checked there to 1e-3).
    val = conditional_expected_purchases_one(*MLE, 2.0, 30.43, 38.86, 39.0)
    assert abs(val - 1.226) < 1e-3
    assert rel(val, ref_cond_ex(*MLE, 2, 30.43, 38.86, 39)) < 1e-12


def test_expectation_hardie_excel():
    # lifetimes test_estimation.py, test_expectation_returns_same_value_Hardie_excel_sheet
    # (Hardie's Excel sheet, compared there at decimal=3). The formula (and lifetimes itself)
    # reproduce the first five to 4e-5; the sheet's t = 78 value 1.8576 differs from eq. (9)
    # at the MLE (1.857956, also lifetimes' value) by 3.6e-4.
    times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
    expected = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    got = bgnbd_expected_purchases(*MLE, times)
    np.testing.assert_allclose(got[:5], expected[:5], atol=5e-5)
    np.testing.assert_allclose(got[5], expected[5], atol=4e-4)
    for ti, gi in zip(times, got):
        assert rel(gi, ref_ex_hyp(*MLE, ti)) < 1e-13


def test_pmf_r_btyd_documentation():
    # R BTYD documentation (bgnbd.pmf examples) at (r, α, a, b) = (0.243, 4.414, 0.793, 2.426),
    # as copied in lifetimes' tests (test_probability_of_n_purchases_up_to_time_same_as_R_BTYD).
    assert abs(pmf_one(*ROUNDED, 39.0, 0) - 0.5737864) < 5e-8
    assert abs(pmf_one(*ROUNDED, 2.0, 10) - 1.07869e-07) < 5e-13
    expected = np.array(
        [0.0019995214, 0.0015170236, 0.0011633150, 0.0009003148, 0.0007023638,
         0.0005517902, 0.0004361913, 0.0003467171, 0.0002769613, 0.0002222260]
    )  # fmt: skip
    got = bgnbd_pmf(*ROUNDED, 30.0, np.arange(11, 21, dtype=np.int64))
    np.testing.assert_allclose(got, expected, atol=5e-11)


# --------------------------------------------------------------------------------------
# P(alive)
# --------------------------------------------------------------------------------------


@settings(max_examples=60, **SETTINGS)
@given(
    r=logu(-3, 3), alpha=logu(-2, 3), a=logu(-2, 2), b=logu(-2, 2),
    x=st.sampled_from([0, 1, 2, 7, 100, 10_000]), T=logu(-1, 4), frac=st.floats(0.0, 1.0),
)  # fmt: skip
def test_p_alive_matches_mpmath(r, alpha, a, b, x, T, frac):
    t_x = 0.0 if x == 0 else frac * T
    ref = ref_p_alive(r, alpha, a, b, x, t_x, T)
    got = p_alive_one(r, alpha, a, b, float(x), t_x, T)
    assert 0.0 <= got <= 1.0
    if ref > 1e-300:
        assert rel(got, ref) < 1e-12
    else:
        assert got < 1e-290


# --------------------------------------------------------------------------------------
# E[X(t)]
# --------------------------------------------------------------------------------------

A_VALUES = st.one_of(
    logu(-2, 2), st.floats(0.5, 1.5), st.just(1.0), st.floats(1.0 - 1e-9, 1.0 + 1e-9)
)


@settings(max_examples=60, **SETTINGS)
@given(r=logu(-3, 3), alpha=logu(-2, 2), a=A_VALUES, b=logu(-2, 2), t=logu(-3, 4))
def test_expected_purchases_vs_hyp2f1(r, alpha, a, b, t):
    got = expected_purchases_one(r, alpha, a, b, t)
    assert rel(got, ref_ex_hyp(r, alpha, a, b, t)) < 5e-11


@settings(max_examples=25, **SETTINGS)
@given(r=logu(-2, 2), a=A_VALUES, b=logu(-2, 2), s=logu(-2, 6))
def test_expected_purchases_vs_integral(r, a, b, s):
    got = expected_purchases_one(r, 1.0, a, b, s)
    assert rel(got, ref_ex_quad(r, 1.0, a, b, s)) < 5e-11


@settings(max_examples=30, **SETTINGS)
@given(r=logu(-3, 2), a=st.floats(0.01, 0.99), frac=st.floats(0.01, 0.99), t=logu(-2, 5))
def test_expected_purchases_a_plus_b_below_one(r, a, frac, t):
    # a + b < 1 makes a + b - 1 negative (the third argument of eq. (9)'s 2F1).
    b = frac * (1.0 - a)
    got = expected_purchases_one(r, 1.0, a, b, t)
    assert math.isfinite(got) and got > 0.0
    assert rel(got, ref_ex_hyp(r, 1.0, a, b, t)) < 5e-11


def test_expected_purchases_at_a_equal_one():
    for r, b, t in [
        (0.24, 2.43, 1.0),
        (0.24, 2.43, 1e4),
        (1.0, 1.0, 10.0),
        (5.0, 0.3, 1e6),
        (0.01, 100.0, 0.5),
    ]:
        got = expected_purchases_one(r, 1.0, 1.0, b, t)
        assert math.isfinite(got)
        assert rel(got, ref_ex_hyp(r, 1.0, 1.0, b, t)) < 5e-11
        # continuity across the removable singularity
        near = [expected_purchases_one(r, 1.0, 1.0 + d, b, t) for d in (-1e-7, 1e-7)]
        assert abs(0.5 * (near[0] + near[1]) / got - 1.0) < 1e-9


def test_expected_purchases_large_r_times_s():
    """r t/α beyond ~1e20 (large r or tiny α): the left-tail Taylor coefficients of the
    quadrature (r s)^(j+1) overflowed against underflowing moments (NaN before); references
    by mpmath.quad at 30 digits of E_p[(1 - (1 + p s)^-r) / p]."""
    a, b = 0.79, 2.43
    for r, alpha, t, ref in [
        (1e20, 4.4, 10.0, 175015.239655818962783879621303),
        (0.24, 1e-20, 10.0, 124200.011063933419941778472755),
    ]:
        assert rel(expected_purchases_one(r, alpha, a, b, t), ref) < 1e-10
    for r, alpha in [(1e12, 1e-12), (1e8, 1e-12), (1e12, 1e-12)]:
        for a_, b_ in [(0.79, 2.43), (1e-12, 1e12), (1e12, 1e-12)]:
            assert math.isfinite(expected_purchases_one(r, alpha, a_, b_, 52.0))


def test_expected_purchases_small_t_and_zero():
    # E[X(t)] = r t/α + O(t²) and E[X(0)] = 0.
    r, alpha, a, b = MLE
    assert expected_purchases_one(r, alpha, a, b, 0.0) == 0.0
    t = 1e-9
    assert rel(expected_purchases_one(r, alpha, a, b, t), r * t / alpha) < 1e-8


# --------------------------------------------------------------------------------------
# Conditional E[Y(t)]
# --------------------------------------------------------------------------------------


@settings(max_examples=40, **SETTINGS)
@given(
    r=logu(-2, 1), alpha=logu(-1, 2), a=A_VALUES, b=logu(-1, 1.5),
    x=st.sampled_from([0, 1, 3, 20, 500, 10_000]), T=logu(0, 3), frac=st.floats(0.0, 1.0),
    t=logu(-1, 3),
)  # fmt: skip
def test_conditional_expected_purchases_vs_eq10(r, alpha, a, b, x, T, frac, t):
    t_x = 0.0 if x == 0 else frac * T
    ref = ref_cond_ex(r, alpha, a, b, x, t_x, T, t)
    got = conditional_expected_purchases_one(r, alpha, a, b, float(x), t_x, T, t)
    if ref < 1e-290:
        assert got < 1e-280
    else:
        assert rel(got, ref) < 5e-11


def test_conditional_expected_purchases_large_frequency():
    # x = 2000 purchases in 1000 time units: PyMC-Marketing returns NaN here.
    got = conditional_expected_purchases_one(*MLE, 2000.0, 990.0, 1000.0, 1000.0)
    assert rel(got, ref_cond_ex(*MLE, 2000, 990, 1000, 1000)) < 1e-12
    # x = 0 with a + b < 1, and a = 1 exactly
    for a, b in [(0.5, 0.3), (1.0, 2.4258881)]:
        for x, t_x in [(0, 0.0), (4, 20.0)]:
            got = conditional_expected_purchases_one(0.24, 4.41, a, b, float(x), t_x, 38.0, 52.0)
            assert rel(got, ref_cond_ex(0.24, 4.41, a, b, x, t_x, 38.0, 52.0)) < 1e-12


@pytest.mark.parametrize(
    ("params", "x", "t_x", "T", "t", "seed"),
    [
        (MLE, 2, 30.43, 38.86, 39.0, 1),
        (MLE, 0, 0.0, 20.0, 52.0, 2),
        ((1.2, 6.0, 1.0, 2.0), 5, 18.0, 25.0, 30.0, 3),
    ],
)
def test_conditional_expected_purchases_vs_monte_carlo(params, x, t_x, T, t, seed):
    est, se = mc_future(*params, x, t_x, T, t=t, seed=seed)
    got = conditional_expected_purchases_one(*params, float(x), t_x, T, t)
    assert abs(got - est) < 4.0 * se, (got, est, se)


# --------------------------------------------------------------------------------------
# P(X(t) = n) and the conditional pmf
# --------------------------------------------------------------------------------------


@settings(max_examples=60, **SETTINGS)
@given(
    r=logu(-3, 4), a=A_VALUES, b=logu(-2, 2), s=logu(-3, 4),
    n=st.one_of(st.integers(0, 30), st.integers(31, 3000)),
)  # fmt: skip
def test_pmf_vs_eq8(r, a, b, s, n):
    ref = ref_pmf(r, 1.0, a, b, s, n)
    got = pmf_one(r, 1.0, a, b, s, n)
    if ref < 1e-280:
        assert got < 1e-270
    else:
        assert rel(got, ref) < 1e-10


@settings(max_examples=40, **SETTINGS)
@given(
    r=logu(-2, 1), alpha=logu(-1, 2), a=A_VALUES, b=logu(-1, 1.5),
    x=st.sampled_from([0, 1, 4, 60, 2000]), T=logu(0, 3), frac=st.floats(0.0, 1.0), t=logu(-1, 3),
    n=st.one_of(st.just(0), st.integers(1, 40)),
)  # fmt: skip
def test_conditional_pmf_vs_bayes(r, alpha, a, b, x, T, frac, t, n):
    t_x = 0.0 if x == 0 else frac * T
    ref = ref_cond_pmf(r, alpha, a, b, x, t_x, T, t, n)
    got = conditional_pmf_one(r, alpha, a, b, float(x), t_x, T, t, n)
    if ref < 1e-280:
        assert got < 1e-270
    else:
        assert rel(got, ref) < 1e-10


@pytest.mark.parametrize(
    ("params", "t"),
    [(MLE, 39.0), (MLE, 2.0), ((0.5, 1.0, 1.0, 0.3), 5.0), ((2.0, 0.5, 3.0, 0.4), 1.0)],
)
def test_pmf_sums_to_one_and_mean(params, t):
    n = np.arange(0, 4000, dtype=np.int64)
    pmf = bgnbd_pmf(*params, t, n)
    assert np.all(pmf >= 0.0)
    assert abs(pmf.sum() - 1.0) < 1e-12
    assert rel((n * pmf).sum(), expected_purchases_one(*params, t)) < 1e-11


@pytest.mark.parametrize(
    ("params", "x", "t_x", "T", "t"),
    [(MLE, 2, 30.43, 38.86, 39.0), (MLE, 0, 0.0, 10.0, 20.0),
     ((0.5, 1.0, 1.0, 0.3), 7, 3.0, 9.0, 5.0),
     (MLE, 2000, 990.0, 1000.0, 1000.0)],
)  # fmt: skip
def test_conditional_pmf_sums_to_one_and_mean(params, x, t_x, T, t):
    total = 0.0
    mean = 0.0
    for n in range(0, 6000):
        v = conditional_pmf_one(*params, float(x), t_x, T, t, n)
        total += v
        mean += n * v
    assert abs(total - 1.0) < 1e-12
    assert rel(mean, conditional_expected_purchases_one(*params, float(x), t_x, T, t)) < 1e-11


def test_conditional_pmf_large_frequency():
    for n in (0, 1, 900, 1000, 1100):
        got = conditional_pmf_one(*MLE, 2000.0, 990.0, 1000.0, 1000.0, n)
        assert rel(got, ref_cond_pmf(*MLE, 2000, 990.0, 1000.0, 1000.0, n)) < 1e-10


# --------------------------------------------------------------------------------------
# DERT
# --------------------------------------------------------------------------------------


@settings(max_examples=20, **SETTINGS)
@given(
    r=logu(-2, 1), alpha=logu(-1, 2), a=A_VALUES, b=logu(-1, 1.5),
    x=st.sampled_from([0, 1, 3, 30, 1000]), T=logu(0, 2.5), frac=st.floats(0.0, 1.0),
    delta=logu(-4, 0),
)  # fmt: skip
def test_dert_vs_quadrature(r, alpha, a, b, x, T, frac, delta):
    t_x = 0.0 if x == 0 else frac * T
    got = dert_one(r, alpha, a, b, float(x), t_x, T, delta)
    ref = ref_dert(r, alpha, a, b, x, t_x, T, delta)
    if ref < 1e-280:
        assert got < 1e-270
    else:
        assert rel(got, ref) < 1e-8


def test_dert_anchor_cases():
    cases = [
        (MLE, 2000.0, 990.0, 1000.0, 0.01),  # large frequency
        ((0.24, 4.41, 0.5, 0.3), 0.0, 0.0, 38.0, 0.002),  # x = 0, a + b < 1
        ((0.24, 4.41, 1.0, 2.43), 3.0, 20.0, 38.0, 0.002),  # a = 1: E[1/p] infinite, DERT finite
        ((0.24, 4.41, 0.3, 2.43), 0.0, 0.0, 38.0, 1e-6),  # a < 1 and tiny discount rate
    ]
    for params, x, t_x, T, delta in cases:
        got = dert_one(*params, x, t_x, T, delta)
        assert math.isfinite(got)
        assert rel(got, ref_dert(*params, x, t_x, T, delta)) < 1e-8


@pytest.mark.parametrize(
    ("params", "x", "t_x", "T", "delta", "seed"),
    [
        (MLE, 2, 30.43, 38.86, 0.05, 11),
        (MLE, 0, 0.0, 30.0, 0.1, 12),
        ((1.2, 6.0, 1.0, 2.0), 5, 18.0, 25.0, 0.03, 13),
    ],
)
def test_dert_vs_monte_carlo(params, x, t_x, T, delta, seed):
    est, se = mc_future(*params, x, t_x, T, delta=delta, seed=seed)
    got = dert_one(*params, float(x), t_x, T, delta)
    assert abs(got - est) < 4.0 * se, (got, est, se)


def test_dert_is_laplace_transform_of_conditional_expectation():
    # DERT = ∫_0^∞ e^{-δu} dE[Y(u)] = δ ∫_0^∞ e^{-δu} E[Y(u) | history] du, with the
    # conditional expectation kernel inside a QUADPACK integral.
    for params, x, t_x, T, delta in [
        (MLE, 2.0, 30.43, 38.86, 0.02),
        ((0.24, 4.41, 1.0, 2.43), 0.0, 0.0, 30.0, 0.05),
    ]:

        def f(u):
            return (
                delta
                * math.exp(-delta * u)
                * conditional_expected_purchases_one(*params, x, t_x, T, u)
            )

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            val = integrate.quad(f, 0.0, math.inf, epsabs=0.0, epsrel=1e-12, limit=400)[0]
        assert rel(dert_one(*params, x, t_x, T, delta), val) < 1e-8


def test_dert_small_discount_limit():
    # For a > 1, DERT -> P_alive (a+b+x-1)/(a-1) = E[total future purchases] as δ -> 0
    # (E[1/p] under the posterior Beta(a, b+x)); the gap is O(δ).
    r, alpha, a, b = 0.5, 3.0, 2.5, 4.0
    x, t_x, T = 3.0, 10.0, 20.0
    limit = p_alive_one(r, alpha, a, b, x, t_x, T) * (a + b + x - 1.0) / (a - 1.0)
    assert dert_one(r, alpha, a, b, x, t_x, T, 0.0) == limit
    gaps = [limit - dert_one(r, alpha, a, b, x, t_x, T, d) for d in (1e-4, 1e-5, 1e-6)]
    assert all(g > 0 for g in gaps)
    assert 5.0 < gaps[0] / gaps[1] < 20.0 and 5.0 < gaps[1] / gaps[2] < 20.0
    # a <= 1: no finite limit; DERT grows without bound as δ decreases
    vals = [dert_one(0.24, 4.41, 0.8, 2.4, 0.0, 0.0, 30.0, d) for d in (1e-2, 1e-4, 1e-6)]
    assert vals[0] < vals[1] < vals[2]


# --------------------------------------------------------------------------------------
# Array wrappers
# --------------------------------------------------------------------------------------


def test_array_wrappers_match_scalar_cores():
    rng = np.random.default_rng(7)
    n = 300
    x = rng.integers(0, 40, n).astype(np.float64)
    x[:3] = [0.0, 2000.0, 10_000.0]
    T = rng.uniform(1.0, 100.0, n)
    T[1:3] = [1000.0, 5000.0]
    t_x = np.where(x > 0, rng.uniform(0.0, 1.0, n) * T, 0.0)
    delta = rng.uniform(1e-3, 0.1, n)
    r, alpha, a, b = MLE
    pa = bgnbd_p_alive(r, alpha, a, b, x, t_x, T)
    ce = bgnbd_conditional_expected_purchases(r, alpha, a, b, x, t_x, T, 52.0)
    cp = bgnbd_conditional_pmf(r, alpha, a, b, x, t_x, T, 52.0, 2)
    de = bgnbd_dert(r, alpha, a, b, x, t_x, T, delta)
    for i in range(n):
        assert pa[i] == p_alive_one(r, alpha, a, b, x[i], t_x[i], T[i])
        assert ce[i] == conditional_expected_purchases_one(r, alpha, a, b, x[i], t_x[i], T[i], 52.0)
        assert cp[i] == conditional_pmf_one(r, alpha, a, b, x[i], t_x[i], T[i], 52.0, 2)
        assert de[i] == dert_one(r, alpha, a, b, x[i], t_x[i], T[i], delta[i])
    ts = np.array([0.0, 0.5, 10.0, 1e3, 1e6])
    ex = bgnbd_expected_purchases(r, alpha, a, b, ts)
    assert all(ex[i] == expected_purchases_one(r, alpha, a, b, ts[i]) for i in range(ts.size))
    assert np.all(np.isfinite(de)) and np.all(np.isfinite(ce))


def test_array_forms_are_the_generic_drivers():
    """The documented ``bgnbd_*`` array functions are the generic drivers at BG/NBD's cores
    (one loop for every family), not loops of their own."""
    from clvbayes.families.compiled import drivers_for
    from clvbayes.kernels import bgnbd_predict

    d = drivers_for("bgnbd")
    for name, driver in (("bgnbd_p_alive", d.p_alive), ("bgnbd_expected_purchases", d.expected_purchases),
                         ("bgnbd_conditional_expected_purchases", d.conditional_expected_purchases),
                         ("bgnbd_pmf", d.pmf), ("bgnbd_conditional_pmf", d.conditional_pmf), ("bgnbd_dert", d.dert)):
        assert getattr(bgnbd_predict, name) is driver
    with pytest.raises(AttributeError, match="no attribute 'bgnbd_nope'"):
        bgnbd_predict.bgnbd_nope  # noqa: B018
