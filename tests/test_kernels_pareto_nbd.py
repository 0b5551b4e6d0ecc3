"""Pareto/NBD kernels against mpmath references, finite differences, Monte Carlo and the
published CDNOW maximum-likelihood estimates."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from scipy import optimize, stats
from scipy.special import digamma

import clvbayes
from clvbayes.families import get_family
from clvbayes.kernels import clv as codes
from clvbayes.kernels import pareto_nbd as k
from tests.reference import pareto_nbd_mpmath as ref

# Regimes of the likelihood: α < β, α > β, α == β, large x and T, t_x = T, t_x = 0, T = 0,
# parameters 1e-4..1e4.
GRID = [
    (0.55, 10.6, 0.6, 11.7, 2, 30.0, 38.0),
    (0.55, 11.7, 0.6, 10.6, 2, 30.0, 38.0),
    (0.55, 10.0, 0.6, 10.0, 2, 30.0, 38.0),
    (0.55, 10.6, 0.6, 11.7, 0, 0.0, 38.0),
    (2.0, 1.0, 3.0, 100.0, 10, 5.0, 40.0),
    (2.0, 100.0, 3.0, 1.0, 10, 5.0, 40.0),
    (0.5, 3.0, 2.0, 5.0, 5, 0.0, 10.0),
    (0.5, 3.0, 2.0, 5.0, 5, 10.0, 10.0),
    (1e-4, 1e-4, 1e-4, 1e-4, 1, 0.5, 1.0),
    (1e4, 1e4, 1e4, 1e4, 1e4, 1e3, 1e4),
    (0.5, 1e-4, 2.0, 1e4, 1e4, 9999.0, 1e4),
    (0.5, 1e4, 2.0, 1e-4, 1e4, 0.1, 1e4),
    (3.0, 1e-4, 1e-4, 1e4, 100, 50.0, 1e4),
    (40.0, 2.9e-4, 1890.0, 8.6, 1, 0.0, 0.145),
    (0.09, 47.5, 658.0, 1.6e-3, 1, 0.0, 0.16),
    (813.0, 7.4e-3, 10.75, 72.2, 0, 0.0, 77.0),
    # x = 0 with L near 1 (ln L from 1 - L)
    (0.0243, 85.9, 59.9, 5.62e-3, 0, 0.0, 88.3),
    (0.5, 3.0, 2.0, 5.0, 0, 0.0, 1e-3),
]


def grad_scale(r, alpha, s, beta, x, t_x, T):
    """Size of the terms each gradient component is a difference of: the error floor of any
    double-precision evaluation (ε · scale) where the component itself cancels."""
    return (
        1.0,
        abs(digamma(r + x) - digamma(r)) + math.log1p(T / alpha),
        (r + x) / alpha,
        1.0 / s + math.log1p(T / beta),
        (s + 1.0) / beta,
    )


def check_grad_vs_mpmath(case):
    got = k.loglik_grad_one(*map(float, case))
    want = ref.loglik_grad(*case)
    scale = grad_scale(*case)
    for j, (g, w) in enumerate(zip(got, want)):
        assert math.isfinite(g)
        assert abs(g - w) <= 2e-12 * abs(w) + 1e-14 * scale[j], (j, g, w)


# the mpmath hypergeometric functions take ~10 s at x = 1e4, t_x near T: that point runs with -m slow
@pytest.mark.parametrize("case", GRID[:10] + [pytest.param(GRID[10], marks=pytest.mark.slow)] + GRID[11:])
def test_loglik_and_gradient_match_mpmath(case):
    check_grad_vs_mpmath(case)
    assert k.loglik_one(*map(float, case)) == pytest.approx(ref.loglik(*case), rel=1e-12, abs=1e-13)


@pytest.mark.slow
def test_loglik_and_gradient_match_mpmath_random_sweep():
    rng = np.random.default_rng(3)
    for _ in range(200):
        r, alpha, s, beta = 10 ** rng.uniform(-4, 4, 4)
        if rng.uniform() < 0.2:
            beta = alpha
        T = float(10 ** rng.uniform(-2, 4))
        x = float(rng.choice([0, 1, 3, int(10 ** rng.uniform(0, 4))]))
        t_x = float(rng.choice([0.0, T, T * rng.uniform()])) if x > 0 else 0.0
        check_grad_vs_mpmath((r, alpha, s, beta, x, t_x, T))


def test_gradient_matches_central_differences():
    # a check independent of mpmath: central differences of loglik_one
    for case in GRID[:8]:
        c = list(map(float, case))
        got = k.loglik_grad_one(*c)
        for j in range(4):
            h = 1e-6 * c[j]
            up, dn = list(c), list(c)
            up[j] += h
            dn[j] -= h
            fd = (k.loglik_one(*up) - k.loglik_one(*dn)) / (2 * h)
            assert got[j + 1] == pytest.approx(fd, rel=1e-6, abs=1e-7 * grad_scale(*c)[j + 1]), (case, j)


def test_zero_age_and_last_purchase_at_the_end():
    assert k.loglik_grad_one(0.5, 3.0, 2.0, 5.0, 0.0, 0.0, 0.0) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert k.p_alive_one(0.5, 3.0, 2.0, 5.0, 0.0, 0.0, 0.0) == 1.0
    assert k.p_alive_one(0.5, 3.0, 2.0, 5.0, 4.0, 7.0, 7.0) == 1.0
    # t_x = T: only the first term, ln L = lnΓ(r+x)/Γ(r) + r ln α + s ln β - (r+x) ln(α+T) - s ln(β+T)
    r, a, s, b, x, T = 0.5, 3.0, 2.0, 5.0, 4.0, 7.0
    want = math.lgamma(r + x) - math.lgamma(r) + r * math.log(a) + s * math.log(b)
    want -= (r + x) * math.log(a + T) + s * math.log(b + T)
    assert k.loglik_one(r, a, s, b, x, T, T) == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("case", GRID)
def test_p_alive_matches_mpmath(case):
    got = k.p_alive_one(*map(float, case))
    want = ref.p_alive(*case)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


positive = st.floats(1e-4, 1e4)


@settings(max_examples=150, deadline=None)
@given(positive, positive, positive, positive, st.integers(0, 10_000), st.floats(0, 1), st.floats(0, 1e4))
def test_finite_everywhere(r, alpha, s, beta, x, frac, T):
    t_x = frac * T if x > 0 else 0.0
    out = k.loglik_grad_one(r, alpha, s, beta, float(x), t_x, T)
    assert all(math.isfinite(v) for v in out)
    assert out[0] <= 1e-12 or x > 0  # x = 0: L is a probability
    pa = k.p_alive_one(r, alpha, s, beta, float(x), t_x, T)
    assert 0.0 <= pa <= 1.0
    ce = k.conditional_expected_purchases_one(r, alpha, s, beta, float(x), t_x, T, 10.0)
    assert math.isfinite(ce) and ce >= 0.0
    assert math.isfinite(k.dert_one(r, alpha, s, beta, float(x), t_x, T, 0.01))


# --------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------

PRED = [
    (0.55, 10.6, 0.6, 11.7, 39.0),
    (2.0, 1.0, 3.0, 100.0, 5.0),
    (2.0, 100.0, 1.0, 1.0, 50.0),
    (1.3, 3.6, 148.8, 0.43, 289.0),
    (598.0, 1.2e-3, 54.4, 23.3, 347.0),
    (1e-3, 1e3, 1e-3, 1e-3, 1e3),
    (50.0, 0.5, 0.2, 1e3, 0.01),
]


@pytest.mark.parametrize("case", PRED[:1] + [pytest.param(c, marks=pytest.mark.slow) for c in PRED[1:]])
def test_expected_purchases_and_pmf_match_mpmath(case):
    r, a, s, b, t = case
    assert k.expected_purchases_one(r, a, s, b, t) == pytest.approx(ref.expected_purchases(r, a, s, b, t), rel=1e-13)
    for n in (0, 1, 2, 7, 30):
        want = ref.pmf(r, a, s, b, t, n)
        assert k.pmf_one(r, a, s, b, t, n) == pytest.approx(want, rel=2e-12, abs=1e-300), n


def test_expected_purchases_stable_at_s_one():
    for s in (1.0, 1.0 + 1e-9, 1.0 - 1e-9, 1.0 + 1e-6):
        got = k.expected_purchases_one(0.7, 3.0, s, 5.0, 20.0)
        assert got == pytest.approx(ref.expected_purchases(0.7, 3.0, s, 5.0, 20.0), rel=1e-14)
    assert k.pmf_one(0.7, 3.0, 2.0, 5.0, 0.0, 0) == 1.0
    assert k.pmf_one(0.7, 3.0, 2.0, 5.0, 0.0, 3) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.floats(0.05, 20), st.floats(0.1, 100), st.floats(0.05, 20), st.floats(0.1, 100), st.floats(0.1, 100))
def test_pmf_sums_to_one_and_its_mean_is_the_expectation(r, alpha, s, beta, t):
    # beyond N the pmf decays at least like the NB(r, t/(α+t)) tail: ratio t/(α+t) per step
    N = int(min(50 / math.log1p(alpha / t) + 20 * (1 + r * t / alpha), 60_000))
    p = np.array([k.pmf_one(r, alpha, s, beta, t, n) for n in range(N)])
    mean = k.expected_purchases_one(r, alpha, s, beta, t)
    assert np.all(p >= 0)
    tail = 1.0 - p.sum()
    assert -1e-12 <= tail <= 1e-9 + mean / N
    assert (np.arange(N) * p).sum() == pytest.approx(mean, rel=1e-6, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.05, 10), st.floats(0.5, 50), st.floats(0.05, 10), st.floats(0.5, 50), st.integers(0, 30),
       st.floats(0, 1), st.floats(0.5, 60), st.floats(0.5, 60))
def test_conditional_pmf_sums_to_one_and_mean_matches(r, alpha, s, beta, x, frac, T, t):
    t_x = frac * T if x > 0 else 0.0
    args = (r, alpha, s, beta, float(x), t_x, T, t)
    mean = k.conditional_expected_purchases_one(*args)
    N = int(min(50 / math.log1p((alpha + T) / t) + 20 * (1 + (r + x) * t / (alpha + T)), 60_000))
    p = np.array([k.conditional_pmf_one(*args, n) for n in range(N)])
    assert 1.0 - p.sum() <= 1e-9 + mean / N and p.sum() <= 1.0 + 1e-12
    assert (np.arange(N) * p).sum() == pytest.approx(mean, rel=1e-6, abs=1e-9)
    pa = k.p_alive_one(*args[:7])
    assert p[0] == pytest.approx((1 - pa) + pa * k.pmf_one(r + x, alpha + T, s, beta + T, t, 0), rel=1e-14)


# --------------------------------------------------------------------------------------
# DERT and the value-engine factors
# --------------------------------------------------------------------------------------

DISC = [(0.6, 11.7 + 38.0, 0.002), (0.0029, 29.6, 0.063), (845.0, 0.03, 0.0055), (3.0, 1e3, 1e-4),
        (1.0, 5.0, 0.1), (0.2, 1e-3, 10.0)]


@pytest.mark.parametrize("case", DISC)
def test_discounted_factor_matches_mpmath(case):
    s, b, d = case
    assert k.discounted_alive_one(s, b, d, math.inf) == pytest.approx(ref.dert_factor(s, b, d), rel=1e-13)
    for h in (0.5, 10.0, 52.0, 1e3):
        assert k.discounted_alive_one(s, b, d, h) == pytest.approx(ref.discounted_factor(s, b, d, h), rel=1e-13)


def test_alive_factor_codes():
    r, a, s, b, x, t_x, T = 0.55, 10.6, 0.6, 11.7, 3.0, 20.0, 38.0
    pa = k.p_alive_one(r, a, s, b, x, t_x, T)
    rate = (r + x) / (a + T)
    f = lambda q, d, h: k.alive_factor_one(q, r, a, s, b, x, T, d, h)  # noqa: E731
    assert f(codes.P_ALIVE, 0.1, 5.0) == 1.0 and f(codes.SPEND, 0.1, 5.0) == 1.0
    # small horizon: E[λ'] h
    assert f(codes.PURCHASES, 0.0, 1e-7) == pytest.approx(rate * 1e-7, rel=1e-6)
    for h in (0.5, 39.0, 200.0):
        # δ = 0 discounted purchases are the purchases; times P(alive), the conditional expectation
        assert f(codes.DISCOUNTED, 0.0, h) == pytest.approx(f(codes.PURCHASES, 0.0, h), rel=1e-14)
        assert pa * f(codes.PURCHASES, 0.0, h) == pytest.approx(
            k.conditional_expected_purchases_one(r, a, s, b, x, t_x, T, h), rel=1e-14)
        assert f(codes.CLV, 0.01, h) == f(codes.DISCOUNTED, 0.01, h) == f(codes.LOST, 0.01, h)
        assert f(codes.DROPOUT, 0.0, h) == pytest.approx(1 - ((b + T) / (b + T + h)) ** s, rel=1e-13)
        for n in (0, 2):
            assert pa * f(codes.PMF + n, 0.0, h) + (1 - pa) * (n == 0) == pytest.approx(
                k.conditional_pmf_one(r, a, s, b, x, t_x, T, h, n), rel=1e-14)
    for d in (1e-3, 0.01, 0.2):
        assert k.dert_one(r, a, s, b, x, t_x, T, d) == pytest.approx(pa * f(codes.DISCOUNTED, d, math.inf), rel=1e-15)
        # e^{-δh} < 1e-26: the finite horizon is the infinite one
        assert f(codes.DISCOUNTED, d, 60.0 / d) == pytest.approx(f(codes.DISCOUNTED, d, math.inf), rel=1e-13)
        want = rate * ref.dert_factor(s, b + T, d)
        assert f(codes.DISCOUNTED, d, math.inf) == pytest.approx(want, rel=1e-13)
    # undiscounted and unbounded: infinite for s <= 1, (r+x)/(α+T) (β+T)/(s-1) otherwise
    assert k.dert_one(r, a, s, b, x, t_x, T, 0.0) == math.inf
    assert k.dert_one(r, a, 2.5, b, x, t_x, T, 0.0) == pytest.approx(
        k.p_alive_one(r, a, 2.5, b, x, t_x, T) * rate * (b + T) / 1.5, rel=1e-14)


@pytest.mark.parametrize("T", [5e-324, 1e-310, 1e-200, 1e-151, 1e-149, 1e-12])
def test_vanishing_age_is_finite(T):
    """A customer observed for a vanishing time (CI found NaN at T = 5e-324, where the
    integral's panels are 0 wide): alive, ln L = -r T/α to first order, E2/E1 = s T/β."""
    r, a, s, b = 0.7, 2.0, 1.3, 3.0
    assert k.p_alive_one(r, a, s, b, 0.0, 0.0, T) == pytest.approx(1.0 - s * T / b, rel=0, abs=1e-20)
    assert k.loglik_one(r, a, s, b, 0.0, 0.0, T) == pytest.approx(-r * T / a, rel=1e-9)
    g = k.loglik_grad_one(r, a, s, b, 0.0, 0.0, T)
    assert all(math.isfinite(v) for v in g)
    assert g[1] == pytest.approx(-T / a, rel=1e-9)
    lnE1, dd, n, lnE2 = k._log_terms(r, a, s, b, 2.0, T / 2, T, k._no_nodes())
    assert math.exp(dd) == pytest.approx(s * (T / 2) / (b + T / 2), rel=1e-9)
    assert math.isfinite(k.conditional_expected_purchases_one(r, a, s, b, 2.0, T / 2, T, 10.0))


@settings(max_examples=80, deadline=None)
@given(st.floats(1e-3, 1e3), st.floats(1e-3, 1e3), st.floats(1e-3, 1e3), st.floats(1e-3, 1e3),
       st.integers(0, 1000), st.floats(0, 1), st.floats(0, 1e3), st.floats(1e-2, 1e3), st.floats(1e-4, 1.0))
def test_alive_factor_identities(r, a, s, b, x, frac, T, h, d):
    x = float(x)
    t_x = frac * T if x > 0 else 0.0
    f = lambda q, dd, hh: k.alive_factor_one(q, r, a, s, b, x, T, dd, hh)  # noqa: E731
    pa = k.p_alive_one(r, a, s, b, x, t_x, T)
    rate = (r + x) / (a + T)
    purchases = f(codes.PURCHASES, 0.0, h)
    assert f(codes.DISCOUNTED, 0.0, h) == pytest.approx(purchases, rel=1e-14)
    assert pa * purchases == pytest.approx(k.conditional_expected_purchases_one(r, a, s, b, x, t_x, T, h), rel=1e-14)
    tiny = 1e-9 * (b + T)
    assert f(codes.PURCHASES, 0.0, tiny) == pytest.approx(rate * tiny, rel=1e-6)
    dert = f(codes.DISCOUNTED, d, math.inf)
    assert k.dert_one(r, a, s, b, x, t_x, T, d) == pytest.approx(pa * dert, rel=1e-15)
    disc = f(codes.DISCOUNTED, d, h)
    # discounting and a finite horizon both lower the value; the limits are consistent
    assert 0.0 < disc <= purchases * (1 + 1e-13) and disc <= dert * (1 + 1e-13)
    assert dert <= rate / d * (1 + 1e-13)  # E[1/(μ+δ)] <= 1/δ
    assert 0.0 <= f(codes.DROPOUT, 0.0, h) <= 1.0


# --------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------


@njit(cache=True)
def _replicates(r, alpha, s, beta, T, n, seed):
    np.random.seed(seed)
    x = np.empty(n)
    tx = np.empty(n)
    for i in range(n):
        x[i], tx[i] = k.replicate_one(r, alpha, s, beta, T)
    return x, tx


@njit(cache=True)
def _holdout(r, alpha, s, beta, x, t_x, T, t, n, seed):
    np.random.seed(seed)
    out = np.empty(n)
    for i in range(n):
        out[i] = k.holdout_replicate_one(r, alpha, s, beta, x, t_x, T, t)
    return out


@pytest.mark.parametrize("params", [(0.55, 10.6, 0.6, 11.7), (3.0, 2.0, 0.5, 40.0)])
def test_replicate_frequencies_match_the_pmf(params):
    T = 39.0
    n = 200_000
    x, tx = _replicates(*params, T, n, 17)
    assert np.all((tx >= 0) & (tx <= T)) and np.all((x == 0) == (tx == 0))
    p = np.array([k.pmf_one(*params, T, j) for j in range(200)])
    counts = np.bincount(np.minimum(x.astype(int), 199), minlength=200)
    expected = n * p
    expected[-1] += n * (1 - p.sum())
    # pool the cells with fewer than 5 expected counts into the last of the others
    keep = expected >= 5
    obs = counts[keep].astype(float)
    exp = expected[keep]
    obs[-1] += counts[~keep].sum()
    exp[-1] += expected[~keep].sum()
    chi2 = ((obs - exp) ** 2 / exp).sum()
    assert stats.chi2.sf(chi2, len(obs) - 1) > 1e-3


@pytest.mark.parametrize("hist", [(2.0, 30.0, 38.0), (0.0, 0.0, 38.0), (10.0, 5.0, 40.0), (1.0, 1.0, 1.0)])
def test_holdout_replicate_mean_matches_conditional_expectation(hist):
    params = (0.55, 10.6, 0.6, 11.7)
    t = 39.0
    y = _holdout(*params, *hist, t, 200_000, 5)
    want = k.conditional_expected_purchases_one(*params, *hist, t)
    se = y.std() / math.sqrt(y.size)
    assert abs(y.mean() - want) < 5 * se + 1e-12
    p0 = k.conditional_pmf_one(*params, *hist, t, 0)
    assert abs((y == 0).mean() - p0) < 5 * math.sqrt(p0 * (1 - p0) / y.size) + 1e-12


# --------------------------------------------------------------------------------------
# Family registration and the published CDNOW fit
# --------------------------------------------------------------------------------------


def test_family_registration():
    fam = get_family("pnbd")
    assert fam.param_names == ("r", "alpha", "s", "beta") and fam.label == "Pareto/NBD"
    assert fam.loglik_grad_one is k.loglik_grad_one and fam.alive_factor_one is k.alive_factor_one
    pri = fam.default_priors(30.0)
    assert tuple(pri) == fam.param_names
    assert pri["beta"].params["sigma"] == pri["alpha"].params["sigma"] == 150.0


@njit(cache=True)
def _loglik_sum_grad(p, x, tx, T):
    g = np.zeros(5)
    for i in range(x.shape[0]):
        v = k.loglik_grad_one(p[0], p[1], p[2], p[3], x[i], tx[i], T[i])
        for j in range(5):
            g[j] += v[j]
    return g


def test_mle_reproduces_published_cdnow_estimates():
    raw = json.loads(resources.files("clvbayes.datasets").joinpath("data", "published.json").read_text("utf-8"))
    pub = raw["pareto_nbd_cdnow_sample_39w_mle"]["rounded"]
    d = clvbayes.calibration_holdout_split(clvbayes.datasets.load_cdnow_sample(), calibration_end="1997-09-30")
    x, tx, T = (d[c].to_numpy(float) for c in ("frequency", "recency", "T"))

    def objective(logp):
        p = np.exp(logp)
        g = _loglik_sum_grad(p, x, tx, T)
        return -g[0], -g[1:] * p  # chain rule to log parameters

    res = optimize.minimize(objective, np.zeros(4), jac=True, method="L-BFGS-B",
                            options={"gtol": 1e-9, "ftol": 1e-15, "maxiter": 500})
    est = dict(zip(("r", "alpha", "s", "beta"), np.exp(res.x)))
    for name in ("r", "alpha", "s", "beta"):
        # to the digits published (three decimals)
        assert round(est[name], 3) == pytest.approx(pub[name], abs=1e-9), (name, est[name])
    assert round(-res.fun, 1) == pub["log_likelihood"]
    # at the optimum the analytic gradient vanishes (in log parameters)
    assert np.max(np.abs(objective(res.x)[1])) < 1e-3
