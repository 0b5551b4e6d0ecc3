"""Tests of the MBG/NBD scalar cores (clvbayes.kernels.mbgnbd) and their registration.

References (none written from the kernels):
- ``tests/reference/mbgnbd_mpmath.py``: the closed forms of Batislam, Denizel & Filiztekin
  (2007), IJRM 24(3) (likelihood, P(alive), E[X(t)], P(X(t) = n)) and of Wagner & Hoppe
  (2008), IJRM 25(3) (E[Y(t) | history]) in mpmath at 40 digits, and quadratures of the
  posterior-given-alive rate for the value factors and DERT;
- finite differences for the gradient (mpmath's at 40 digits, and float central
  differences of the kernel's own value);
- Monte Carlo (seeded) for the simulators;
- the CDNOW-sample MLE of BTYDplus (r = 0.525, alpha = 6.183, a = 0.891, b = 1.614), as
  asserted in lifetimes' tests (tests/test_estimation.py, ModifiedBetaGeoFitter,
  "test_params_out_is_close_to_BTYDplus"); copied in /work/shared/reference/published.json,
  key ``mbg_nbd_cdnow_sample_39w_mle``.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from scipy import optimize

from clvbayes.families import get_family
from clvbayes.kernels import bgnbd_predict as bgp
from clvbayes.kernels import clv
from clvbayes.kernels import mbgnbd as K
from clvbayes.models.priors import default_bgnbd_priors
from tests.reference import mbgnbd_mpmath as R
from tests.test_predictive import _chisq_pvalue

# CDNOW MLE of BTYDplus (module docstring), rounded to three decimals.
PUBLISHED = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
CDNOW = tuple(PUBLISHED.values())


# --------------------------------------------------------------------------------------
# Strategies and tolerances
# --------------------------------------------------------------------------------------


def log_uniform(lo_exp, hi_exp):
    return st.floats(lo_exp, hi_exp).map(lambda e: 10.0**e)


params_st = st.tuples(*(log_uniform(-3, 3) for _ in range(4)))  # r, alpha, a, b


@st.composite
def customer_st(draw, max_x=500):
    x = draw(st.integers(0, max_x))
    T = draw(st.one_of(st.just(0.0), log_uniform(-3, 4))) if x == 0 else draw(log_uniform(-3, 4))
    t_x = 0.0 if x == 0 else min(T, draw(st.floats(0.0, 1.0)) * T)
    return float(x), t_x, T


def term_scale(r, alpha, a, b, x, t_x, T):
    """Σ |terms| of ln L (lnΓ, r ln α, (r+x) ln(α+T), ln B ratios, ln a, ln b): the size a
    float64 evaluation rounds at, where the terms cancel to a small ln L."""
    lg = math.lgamma
    return (
        abs(lg(r + x) - lg(r)) + abs(r * math.log(alpha)) + abs((r + x) * math.log(alpha + T))
        + abs(lg(b + x + 1) - lg(b)) + abs(lg(a + b + x + 1) - lg(a + b)) + abs(math.log(a))
        + abs(math.log(b)) + 1.0
    )


def check_value(params, cust, rtol=1e-9):
    got = K.loglik_one(*params, *cust)
    ref = float(R.loglik(*params, *cust))
    assert math.isfinite(got)
    assert abs(got - ref) <= rtol * abs(ref) + 1e-15 * term_scale(*params, *cust), (got, ref)


def check_grad(params, cust, rtol=1e-7):
    ll, *g = K.loglik_grad_one(*params, *cust)
    assert ll == K.loglik_one(*params, *cust)  # one evaluation path for the value
    ref = [float(v) for v in R.grad(*params, *cust)]
    assert all(math.isfinite(v) for v in g)
    # Absolute floor: a few hundred ulps of the size of the derivative's pieces (digamma
    # differences, 1/a, 1/b, (r+x)/α ...), where they cancel to ~0.
    r, alpha, a, b = params
    x, _, T = cust
    floor = 1e-13 * (abs(math.log1p(T / alpha)) + (r + x) / alpha + 1.0 / a + 1.0 / b + x + 1.0)
    for k in range(4):
        assert abs(g[k] - ref[k]) <= rtol * abs(ref[k]) + floor, (k, g[k], ref[k])


# Regimes: x = 0 (T > 0 and T = 0), t_x = T, t_x = 0 < T, large x and T, extreme parameters.
REGIMES = [
    (CDNOW, (0.0, 0.0, 38.86)),  # x = 0, ln L by log1p (L > 1/2)
    ((2.0, 1.0, 0.1, 5.0), (0.0, 0.0, 10.0)),  # x = 0, ln L by log (L < 1/2)
    (CDNOW, (0.0, 0.0, 0.0)),
    (CDNOW, (0.0, 0.0, 1e-9)),
    (CDNOW, (2.0, 30.43, 38.86)),
    (CDNOW, (1.0, 5.0, 5.0)),  # t_x = T
    (CDNOW, (3.0, 0.0, 5.0)),  # t_x = 0 with repeats (purchases on the first day)
    (CDNOW, (1e4, 9e3, 1e4)),
    (CDNOW, (1e4, 1e4, 1e4)),
    ((1e-4, 1e-4, 1e-4, 1e-4), (0.0, 0.0, 1e4)),
    ((1e4, 1e4, 1e4, 1e4), (0.0, 0.0, 1e4)),
    ((1e4, 1e-4, 1e4, 1e-4), (1e4, 0.5, 1e4)),
    ((1e-4, 1e4, 1e-4, 1e4), (1.0, 1e4, 1e4)),
    ((1.0, 1.0, 0.3, 1e-10), (1.0, 0.0, 10.0)),  # b tiny: b + 1 rounds
    ((1.0, 1.0, 0.3, 1e-10), (0.0, 0.0, 10.0)),
    ((0.5, 2.0, 0.2, 0.3), (3.0, 1.0, 2.0)),  # a + b < 1
    ((1e3, 1e-3, 1e3, 1e-3), (500.0, 1e-3, 1e3)),
]


# --------------------------------------------------------------------------------------
# Likelihood and gradient
# --------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, derandomize=True)
@given(params_st, customer_st())
def test_loglik_matches_mpmath(params, cust):
    check_value(params, cust)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(params_st, customer_st())
def test_grad_matches_mpmath_differentiation(params, cust):
    check_grad(params, cust)


@pytest.mark.parametrize("params,cust", REGIMES)
def test_regimes_value_and_gradient_match_mpmath(params, cust):
    check_value(params, cust)
    check_grad(params, cust)


@pytest.mark.parametrize("params,cust", REGIMES[:7] + REGIMES[13:])
def test_grad_matches_central_differences(params, cust):
    """The gradient is that of the kernel's own value (float central differences in
    log-parameters, step 1e-5: truncation ~1e-10, rounding ~1e-11 relative)."""
    g = np.array(K.loglik_grad_one(*params, *cust)[1:]) * np.array(params)
    h = 1e-5
    for k in range(4):
        up = list(params)
        dn = list(params)
        up[k] *= math.exp(h)
        dn[k] *= math.exp(-h)
        fd = (K.loglik_one(*up, *cust) - K.loglik_one(*dn, *cust)) / (2 * h)
        scale = term_scale(*params, *cust)
        assert fd == pytest.approx(g[k], rel=1e-6, abs=1e-9 * scale), k


def test_no_repeat_customer_at_age_zero_is_certain():
    # L = b/(a+b) + a/(a+b) = 1 exactly: ln L = 0 and a zero gradient.
    for p in [CDNOW, (1e-4, 1e4, 1e-4, 1e4), (3.0, 0.1, 50.0, 0.01)]:
        ll, *g = K.loglik_grad_one(*p, 0.0, 0.0, 0.0)
        assert ll == 0.0 and all(v == 0.0 for v in g)


def test_invalid_parameters():
    for bad in [(0.0, 1.0, 1.0, 1.0), (1.0, -1.0, 1.0, 1.0), (1.0, 1.0, math.nan, 1.0), (1.0, 1.0, 1.0, -0.5)]:
        for cust in [(0.0, 0.0, 3.0), (2.0, 1.0, 3.0)]:
            assert K.loglik_one(*bad, *cust) == -math.inf
            ll, *g = K.loglik_grad_one(*bad, *cust)
            assert ll == -math.inf and all(math.isnan(v) for v in g)


EXTREME = [1e-4, 1.0, 1e4]


@pytest.mark.parametrize("r", EXTREME)
@pytest.mark.parametrize("alpha", EXTREME)
@pytest.mark.parametrize("a", EXTREME)
@pytest.mark.parametrize("b", EXTREME)
def test_all_cores_finite_at_extremes(r, alpha, a, b):
    T = 1e4
    for x, t_x in [(0.0, 0.0), (1.0, 0.0), (1.0, T), (1e4, 0.0), (1e4, 0.5 * T), (1e4, T)]:
        out = K.loglik_grad_one(r, alpha, a, b, x, t_x, T)
        assert all(math.isfinite(v) for v in out), (x, t_x, out)
        pa = K.p_alive_one(r, alpha, a, b, x, t_x, T)
        assert 0.0 <= pa <= 1.0
        assert math.isfinite(K.conditional_expected_purchases_one(r, alpha, a, b, x, t_x, T, 52.0))
        assert 0.0 <= K.conditional_pmf_one(r, alpha, a, b, x, t_x, T, 52.0, 0) <= 1.0 + 1e-15
    assert math.isfinite(K.expected_purchases_one(r, alpha, a, b, 52.0))
    assert 0.0 <= K.pmf_one(r, alpha, a, b, 52.0, 3) <= 1.0


@pytest.mark.parametrize("r,alpha,a,b", [(1e-4, 1.0, 1e4, 1e-4), (1e4, 1e-4, 1e-4, 1e4), (1.0, 1e4, 1.0, 1.0)])
def test_extreme_values_match_mpmath(r, alpha, a, b):
    for cust in [(0.0, 0.0, 1e4), (1.0, 0.0, 1e4), (1e4, 5e3, 1e4)]:
        check_value((r, alpha, a, b), cust)


# --------------------------------------------------------------------------------------
# P(alive) and predictions
# --------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, derandomize=True)
@given(params_st, customer_st())
def test_p_alive_in_unit_interval_and_matches_mpmath(params, cust):
    pa = K.p_alive_one(*params, *cust)
    assert 0.0 <= pa <= 1.0
    ref = float(R.p_alive(*params, *cust))
    assert pa == pytest.approx(ref, rel=1e-12, abs=1e-300)
    # the complement directly (no cancellation near 1)
    _, pd = K._alive_dead(*params, *cust)
    assert pd == pytest.approx(float(1 - R.p_alive(*params, *cust)), rel=1e-12, abs=1e-300)


def test_p_alive_of_a_new_customer_is_survival_of_the_first_purchase():
    r, alpha, a, b = CDNOW
    assert K.p_alive_one(r, alpha, a, b, 0.0, 0.0, 0.0) == pytest.approx(b / (a + b), rel=1e-15)


moderate_st = st.tuples(
    st.floats(0.1, 5.0), st.floats(1.0, 50.0), st.floats(0.2, 5.0), st.floats(0.5, 20.0)
)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(params_st, log_uniform(-3, 3))
def test_expected_purchases_equals_closed_form(params, t):
    """lifetimes' / BDF's b/(a-1) [1 - (α/(α+t))^r 2F1(r, b+1; a+b; t/(α+t))] (mpmath)."""
    r, alpha, a, b = params
    if abs(a - 1.0) < 1e-3:  # the closed form's removable singularity; mpmath is exact anyway
        a += 2e-3
    got = K.expected_purchases_one(r, alpha, a, b, t)
    ref = float(R.expected_purchases(r, alpha, a, b, t))
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-300)


def test_expected_purchases_at_a_equal_one_is_the_limit():
    r, alpha, b, t = 0.7, 3.0, 2.0, 20.0
    lo, hi = (float(R.expected_purchases(r, alpha, 1.0 + e, b, t)) for e in (-1e-12, 1e-12))
    assert K.expected_purchases_one(r, alpha, 1.0, b, t) == pytest.approx(0.5 * (lo + hi), rel=1e-9)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(params_st, log_uniform(-2, 2), st.integers(0, 20))
def test_pmf_matches_mpmath(params, t, n):
    got = K.pmf_one(*params, t, n)
    ref = float(R.pmf(*params, t, n))
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-280)


def _pmf_sums(f, nmax):
    n = np.arange(nmax)
    p = np.array([f(int(k)) for k in n])
    return p, math.fsum(p), math.fsum(n * p)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(moderate_st, st.floats(0.1, 20.0))
def test_pmf_sums_to_one_and_to_the_mean(params, t):
    p, total, mean = _pmf_sums(lambda n: K.pmf_one(*params, t, n), 3000)
    assert np.all(p >= 0.0)
    assert total == pytest.approx(1.0, abs=1e-10)
    # Σ n P(n) = E[X(t)] (the truncated tail is negligible for these parameters when a > 1.5)
    if params[2] > 1.5:
        assert mean == pytest.approx(K.expected_purchases_one(*params, t), rel=1e-8)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(moderate_st, customer_st(max_x=30), st.floats(0.1, 20.0))
def test_conditional_pmf_sums_to_one_and_to_conditional_expectation(params, cust, t):
    p, total, mean = _pmf_sums(lambda n: K.conditional_pmf_one(*params, *cust, t, n), 3000)
    assert np.all(p >= 0.0)
    assert total == pytest.approx(1.0, abs=1e-10)
    if params[2] > 1.5:
        ce = K.conditional_expected_purchases_one(*params, *cust, t)
        assert mean == pytest.approx(ce, rel=1e-8, abs=1e-300)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(params_st, customer_st(), log_uniform(-2, 3))
def test_conditional_expectation_matches_wagner_hoppe(params, cust, t):
    r, alpha, a, b = params
    if abs(a - 1.0) < 1e-3:
        a += 2e-3
    got = K.conditional_expected_purchases_one(r, alpha, a, b, *cust, t)
    ref = float(R.conditional_expected_purchases(r, alpha, a, b, *cust, t))
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-300)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(params_st, customer_st(), log_uniform(-4, 1))
def test_dert_is_discounted_factor_at_infinite_horizon_times_p_alive(params, cust, delta):
    x, t_x, T = cust
    d = K.dert_one(*params, *cust, delta)
    f = K.alive_factor_one(clv.DISCOUNTED, *params, x, T, delta, math.inf)
    assert math.isfinite(d) and d >= 0.0
    assert d == pytest.approx(K.p_alive_one(*params, *cust) * f, rel=1e-14, abs=1e-300)
    assert f == K.alive_factor_one(clv.CLV, *params, x, T, delta, math.inf)


@pytest.mark.parametrize(
    "params,cust,delta",
    [(CDNOW, (2.0, 30.43, 38.86), 0.01), (CDNOW, (0.0, 0.0, 38.86), 0.1), ((2.0, 1.0, 0.5, 3.0), (5.0, 2.0, 4.0), 0.02)],
)
def test_dert_matches_quadrature(params, cust, delta):
    got = K.dert_one(*params, *cust, delta)
    assert got == pytest.approx(float(R.dert(*params, *cust, delta)), rel=1e-9)


def test_dert_undiscounted_and_invalid_rate():
    r, alpha, a, b = 0.5, 4.0, 2.5, 3.0
    pa = K.p_alive_one(r, alpha, a, b, 2.0, 3.0, 8.0)
    # δ = 0: all future purchases, lim_{t→∞} of Wagner & Hoppe's E[Y(t)] = P_alive (a+b+x)/(a-1)
    assert K.dert_one(r, alpha, a, b, 2.0, 3.0, 8.0, 0.0) == pytest.approx(pa * (a + b + 2.0) / (a - 1.0), rel=1e-14)
    assert K.dert_one(*CDNOW, 2.0, 3.0, 8.0, 0.0) == math.inf  # a <= 1
    assert K.dert_one(*CDNOW, 1e4, 0.0, 1e4, 0.0) == math.inf  # P_alive underflows: no 0·inf
    assert math.isnan(K.dert_one(r, alpha, a, b, 2.0, 3.0, 8.0, -0.1))


@pytest.mark.parametrize("params", [CDNOW, (2.0, 1.0, 2.5, 3.0)])
@pytest.mark.parametrize("x,t_x,T", [(0.0, 0.0, 38.86), (0.0, 0.0, 0.0), (4.0, 20.0, 30.0)])
def test_alive_factors(params, x, t_x, T):
    h = 26.0
    pa, pd = K._alive_dead(*params, x, t_x, T)
    f = lambda q, delta=0.0, horizon=h: K.alive_factor_one(q, *params, x, T, delta, horizon)  # noqa: E731
    assert f(clv.P_ALIVE) == 1.0 and f(clv.SPEND) == 1.0
    # PURCHASES and PMF + n are the conditional predictions divided by P(alive)
    assert pa * f(clv.PURCHASES) == pytest.approx(K.conditional_expected_purchases_one(*params, x, t_x, T, h), rel=1e-14)
    for n in (0, 1, 5):
        cond = K.conditional_pmf_one(*params, x, t_x, T, h, n)
        assert pa * f(clv.PMF + n) + (pd if n == 0 else 0.0) == pytest.approx(cond, rel=1e-13)
    # against the quadratures of the posterior-given-alive purchase rate
    assert f(clv.PURCHASES) == pytest.approx(float(R.discounted_alive(*params, x, T, 0.0, h)), rel=1e-9)
    assert f(clv.DISCOUNTED, 0.02) == pytest.approx(float(R.discounted_alive(*params, x, T, 0.02, h)), rel=1e-9)
    assert f(clv.LOST, 0.02) == f(clv.DISCOUNTED, 0.02)
    assert f(clv.DROPOUT) == pytest.approx(float(R.dropout_alive(*params, x, T, h)), rel=1e-9)


# --------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------


# No cache=True for these loops: Numba's cache does not see edits of the kernels they call.
@njit
def _calibration(seed, n, r, alpha, a, b, T):
    np.random.seed(seed)
    x = np.empty(n, dtype=np.int64)
    t_x = np.empty(n)
    for i in range(n):
        xi, ti = K.replicate_one(r, alpha, a, b, T)
        x[i] = int(xi)
        t_x[i] = ti
    return x, t_x


@njit
def _holdout(seed, n, r, alpha, a, b, x, t_x, T, t):
    np.random.seed(seed)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = int(K.holdout_replicate_one(r, alpha, a, b, x, t_x, T, t))
    return out


P_MIN = 1e-3
SIM_PARAMS = [CDNOW, (2.0, 5.0, 0.3, 4.0), (0.8, 1.0, 3.0, 1.0)]


@pytest.mark.parametrize("params", SIM_PARAMS)
@pytest.mark.parametrize("T", [38.86, 5.0])
def test_replicate_frequencies_match_pmf(params, T):
    x, t_x = _calibration(11, 40_000, *params, T)
    assert np.all((t_x >= 0.0) & (t_x <= T)) and np.all((t_x == 0.0) == (x == 0))
    pmf = lambda n: np.array([K.pmf_one(*params, T, int(k)) for k in n])  # noqa: E731
    assert _chisq_pvalue(x, pmf) > P_MIN
    # the share of no-repeat customers includes the dropouts at time 0
    assert (x == 0).mean() == pytest.approx(K.pmf_one(*params, T, 0), abs=4 * math.sqrt(0.25 / x.size))


def test_replicate_at_age_zero():
    x, t_x = _calibration(3, 1000, *CDNOW, 0.0)
    assert np.all(x == 0) and np.all(t_x == 0.0)


@pytest.mark.parametrize("params", SIM_PARAMS)
@pytest.mark.parametrize("x,t_x,T", [(0.0, 0.0, 38.86), (0.0, 0.0, 0.0), (3.0, 30.0, 38.86), (3.0, 2.0, 38.86)])
def test_holdout_mean_and_law_match_conditional_predictions(params, x, t_x, T):
    t = 39.0
    y = _holdout(5, 60_000, *params, x, t_x, T, t)
    mean = K.conditional_expected_purchases_one(*params, x, t_x, T, t)
    se = y.std() / math.sqrt(y.size)
    assert abs(y.mean() - mean) < 4.5 * se + 1e-12, (y.mean(), mean, se)
    pmf = lambda n: np.array([K.conditional_pmf_one(*params, x, t_x, T, t, int(k)) for k in n])  # noqa: E731
    assert _chisq_pvalue(y, pmf) > P_MIN


# --------------------------------------------------------------------------------------
# CDNOW maximum likelihood (BTYDplus / lifetimes)
# --------------------------------------------------------------------------------------


@njit
def _loglik_sum_grad(r, alpha, a, b, x, t_x, T):
    tot = np.zeros(5)
    for i in range(x.size):
        v = K.loglik_grad_one(r, alpha, a, b, x[i], t_x[i], T[i])
        for k in range(5):
            tot[k] += v[k]
    return tot


def fit_mle(x, t_x, T):
    """Maximise Σ ln L over log-parameters (analytic gradient × θ) with BFGS."""

    def neg(u):
        th = np.exp(u)
        tot = _loglik_sum_grad(*th, x, t_x, T)
        return -tot[0], -tot[1:] * th

    res = optimize.minimize(neg, np.zeros(4), jac=True, method="BFGS", options={"gtol": 1e-6})
    return res, np.exp(res.x)


def test_cdnow_mle_reproduces_btydplus(cdnow_split):
    x, t_x, T = (np.ascontiguousarray(cdnow_split[c].to_numpy(float)) for c in ("frequency", "recency", "T"))
    assert x.size == 2357
    res, est = fit_mle(x, t_x, T)
    assert res.success
    # the gradient vanishes at the optimum (converged, not stopped)
    g = _loglik_sum_grad(*est, x, t_x, T)[1:] * est
    assert np.all(np.abs(g) < 1e-5)
    # BTYDplus publishes no log-likelihood; ours at the optimum, for the record (9582.1357)
    assert -res.fun == pytest.approx(-9582.1357, abs=1e-3)
    for name, value in zip(PUBLISHED, est):
        assert value == pytest.approx(PUBLISHED[name], abs=5e-4), (name, value)


# --------------------------------------------------------------------------------------
# Array kernels (the family's fast likelihood)
# --------------------------------------------------------------------------------------


def _fast_data(n: int, seed: int, integer_x: bool = True):
    """Compressed-like rows: many x = 0 rows (distinct ages), repeat buyers, x = T = 0."""
    rng = np.random.default_rng(seed)
    T = np.round(rng.uniform(0.0, 78.0, n), 3)
    x = np.where(rng.uniform(size=n) < 0.4, 0.0, rng.poisson(3.0, n)).astype(float)
    if not integer_x:
        x = np.where(x > 0, x + 0.5, 0.0)  # non-integer frequencies: the untabulated path
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    T[:3], x[:3], t_x[:3] = 0.0, 0.0, 0.0
    w = rng.integers(1, 50, n).astype(float)
    return x, t_x, T, w


@pytest.mark.parametrize("n", [7, 30_000])  # serial and threaded chunk loops
@pytest.mark.parametrize("integer_x", [True, False])
@pytest.mark.parametrize("th", [CDNOW, (2.0, 0.3, 5.0, 0.01), (0.05, 80.0, 0.02, 300.0)])
def test_fast_likelihood_equals_the_cores(n, integer_x, th):
    """The registered fast kernels (BG/NBD's tabulated kernel at b + 1 plus the x = 0
    correction) against a plain loop over the scalar cores, which are checked against
    mpmath above."""
    x, t_x, T, w = _fast_data(n, 3, integer_x)
    one = np.array([K.loglik_grad_one(*th, *h) for h in zip(x, t_x, T, strict=True)])
    np.testing.assert_array_equal(K.loglik_rows(*th, x, t_x, T), [K.loglik_one(*th, *h) for h in zip(x, t_x, T)])
    val, grad = K.loglik_sum_grad(*th, x, t_x, T, w)
    ref = w @ one
    assert val == pytest.approx(ref[0], rel=1e-13)
    # the x = 0 correction differences sums: compare with the sum of |terms| as scale
    scale = np.abs(w) @ np.abs(one)
    np.testing.assert_allclose(grad, ref[1:], rtol=0, atol=1e-13 * scale[1:].max())
    np.testing.assert_allclose(grad, ref[1:], rtol=1e-11)
    assert K.loglik_sum(*th, x, t_x, T, w) == val


def test_fast_likelihood_outside_the_support_and_without_rows():
    x, t_x, T, w = _fast_data(5, 4)
    assert K.loglik_sum(1.0, 1.0, 1.0, -1e-9, x, t_x, T, w) == -math.inf  # b + 1 > 0 but b < 0
    v, g = K.loglik_sum_grad(1.0, math.nan, 1.0, 1.0, x, t_x, T, w)
    assert v == -math.inf and np.isnan(g).all()
    assert np.all(K.loglik_rows(0.0, 1.0, 1.0, 1.0, x, t_x, T) == -math.inf)
    e = np.empty(0)
    assert K.loglik_sum(*CDNOW, e, e, e, e) == 0.0
    v, g = K.loglik_sum_grad(*CDNOW, e, e, e, e)
    assert v == 0.0 and np.all(g == 0.0)


def test_family_uses_the_fast_likelihood():
    from clvbayes.families.compiled import drivers_for

    d = drivers_for("mbgnbd")
    assert d.loglik_sum_grad is K.loglik_sum_grad_prepared
    assert d.loglik_sum is K.loglik_sum_prepared and d.loglik_rows is K.loglik_rows
    x, t_x, T, w = _fast_data(25_000, 5)
    data = d.loglik_data(x, t_x, T, w)
    assert len(data) == 8 and d.loglik_data(x, t_x, T) == (x, t_x, T)  # the rows kernel is not prepared
    assert d.serial_loglik_sum_grad(*CDNOW, *data)[0] == d.loglik_sum_grad(*CDNOW, *data)[0] == \
        K.loglik_sum_grad(*CDNOW, x, t_x, T, w)[0]


# --------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------


def test_family_registered_with_the_kernels():
    fam = get_family("mbgnbd")
    bg = get_family("bgnbd")
    assert fam.label == "MBG/NBD" and fam.param_names == ("r", "alpha", "a", "b")
    assert fam.interpolate_in_log_age
    assert "Batislam" in fam.reference
    for name, core in fam.cores.items():
        assert core is getattr(K, name)
        # the protocol's signatures: BG/NBD's, argument for argument
        assert list(inspect.signature(core.py_func).parameters) == list(
            inspect.signature(bg.cores[name].py_func).parameters
        ), name
    assert fam.default_priors(12.0) == default_bgnbd_priors(12.0)


def test_reduces_to_bgnbd_given_alive():
    """Given alive, MBG/NBD's factors are BG/NBD's at (r+x, α+T, a, b+x+1) and the new
    customer's E[X(t)] is b/(a+b) times BG/NBD's at b+1 (the brief's identities)."""
    r, alpha, a, b = 0.7, 3.0, 1.4, 2.2
    assert K.expected_purchases_one(r, alpha, a, b, 10.0) == pytest.approx(
        b / (a + b) * bgp.expected_purchases_one(r, alpha, a, b + 1, 10.0), rel=1e-15
    )
    assert K.alive_factor_one(clv.PURCHASES, r, alpha, a, b, 3.0, 9.0, 0.0, 5.0) == pytest.approx(
        bgp.expected_purchases_one(r + 3.0, alpha + 9.0, a, b + 4.0, 5.0), rel=1e-15
    )


# --------------------------------------------------------------------------------------
# Heavy sweeps
# --------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.tuples(*(log_uniform(-4, 4) for _ in range(4))), customer_st(max_x=10_000))
def test_slow_loglik_and_grad_sweep(params, cust):
    check_value(params, cust)
    check_grad(params, cust)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True)
@given(moderate_st, customer_st(max_x=50), log_uniform(-3, 0), st.one_of(st.just(math.inf), st.floats(1.0, 100.0)))
def test_slow_discounted_factor_matches_quadrature(params, cust, delta, h):
    x, _, T = cust
    got = K.alive_factor_one(clv.DISCOUNTED, *params, x, T, delta, h)
    assert got == pytest.approx(float(R.discounted_alive(*params, x, T, delta, h)), rel=1e-8)


@pytest.mark.parametrize("n", [400, 30_000])
def test_prepared_sums_same_bits(n):
    """On day-grid data the family's sums read ln(1 + t/α) from BG/NBD's table of distinct
    times (fast["prepare_sums"]): the same bits as the per-row logs."""
    from clvbayes.kernels.bgnbd import prepare

    rng = np.random.default_rng(n)
    T = rng.integers(0, 365, n) / 7.0
    x = np.where(rng.uniform(size=n) < 0.4, 0.0, rng.poisson(3.0, n)).astype(float)
    x[T == 0] = 0.0
    t_x = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * (T * 7 + 1)) / 7.0, 0.0)
    w = rng.integers(1, 50, n).astype(float)
    prep = prepare(x, t_x, T)
    assert prep[0].size > 0
    for th in (CDNOW, (2.0, 0.3, 5.0, 0.01)):
        v, g = K.loglik_sum_grad(*th, x, t_x, T, w)
        vp, gp = K.loglik_sum_grad_prepared(*th, x, t_x, T, w, *prep)
        assert v == vp and K.loglik_sum(*th, x, t_x, T, w) == K.loglik_sum_prepared(*th, x, t_x, T, w, *prep)
        np.testing.assert_array_equal(g, gp)
