"""Tests of the Gamma-Gamma kernels against independent references.

References: the density of Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves
for customer base analysis", JMR 42(4) (appendix), evaluated naively in mpmath at 50
digits; its derivation as a Gamma mixture (mpmath quadrature) and as a scaled beta-prime
density (scipy.stats); the conditional mean E[Z | x, m] (FHL 2005 eq. (5)) against the
posterior mean of p/ν by quadrature and by importance sampling; and the published MLE on
the CDNOW sample (FHL 2005 RFM & CLV: p = 6.25, q = 3.74, γ = 15.44). The lnΓ / ψ
differences the kernels use are tested in test_kernels_special.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import mpmath as mp
import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from clvbayes.kernels.gamma_gamma import (
    gg_expected_spend,
    gg_expected_spend_one,
    gg_loglik,
    gg_loglik_grad_one,
    gg_loglik_one,
    gg_loglik_sum,
    gg_loglik_sum_grad,
)
from clvbayes.kernels.special import CHUNK, PARALLEL_MIN_ROWS

DATA = Path(__file__).resolve().parents[1] / "clvbayes" / "datasets" / "data"
EPS = np.finfo(float).eps

# log10 ranges: parameters 1e-4..1e4, mean values 1e-3..1e5, counts 1..10,000
log_param = st.floats(-4.0, 4.0)
log_m = st.floats(-3.0, 5.0)
counts = st.one_of(st.integers(1, 5), st.integers(1, 10_000))


def mp_loglik(p, q, g, x, m):
    """FHL 2005 RFM & CLV density, naive form, in mpmath at the current precision."""
    px = p * x
    return (
        mp.loggamma(px + q) - mp.loggamma(px) - mp.loggamma(q) + q * mp.log(g)
        + px * mp.log(x) + (px - 1) * mp.log(m) - (px + q) * mp.log(g + x * m)
    )  # fmt: skip


def mp_loglik_terms(p, q, g, x, m):
    """:func:`mp_loglik` at 50 digits, and the magnitude of the terms the kernel adds up
    (its floating-point error is relative to that, not to the result)."""
    with mp.workdps(50):
        p, q, g, x, m = (mp.mpf(v) for v in (p, q, g, x, m))
        px, u = p * x, x * m
        ll = mp_loglik(p, q, g, x, m)
        big, small = max(px, q), min(px, q)
        scale = (
            abs(mp.loggamma(big + small) - mp.loggamma(big)) + abs(mp.loggamma(small))
            + abs(px * mp.log1p(g / u)) + abs(q * mp.log1p(u / g)) + abs(mp.log(m))
        )  # fmt: skip
        return ll, scale


# ----------------------------------------------------------------------------- density


@settings(max_examples=400, deadline=None)
@given(log_param, log_param, log_param, counts, log_m)
def test_loglik_matches_mpmath(lp, lq, lg, x, lm):
    p, q, g, m = 10.0**lp, 10.0**lq, 10.0**lg, 10.0**lm
    ref, scale = mp_loglik_terms(p, q, g, float(x), m)
    got = gg_loglik_one(p, q, g, float(x), m)
    assert math.isfinite(got)
    assert abs(got - ref) <= 32 * EPS * scale + 1e-300


@settings(max_examples=150, deadline=None)
@given(st.floats(-1.0, 1.5), st.floats(-1.0, 1.5), st.floats(-1.0, 2.0), st.integers(1, 60), st.floats(-1.0, 2.5))
def test_loglik_is_scaled_beta_prime(lp, lq, lg, x, lm):
    """x m / γ ~ BetaPrime(p x, q): the mean of x Gamma(p, ν) values is Gamma(px, x ν), and
    a Gamma(px, xν) mixed over ν ~ Gamma(q, γ) is a scaled beta-prime (scipy reference)."""
    p, q, g, m = 10.0**lp, 10.0**lq, 10.0**lg, 10.0**lm
    ref = math.log(x / g) + stats.betaprime.logpdf(x * m / g, p * x, q)
    assert gg_loglik_one(p, q, g, float(x), m) == pytest.approx(ref, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    "p, q, g, x, m",
    [(6.25, 3.74, 15.44, 1.0, 20.0), (0.7, 1.3, 2.0, 4.0, 0.5), (3.0, 12.0, 300.0, 17.0, 40.0)],
)
def test_density_is_gamma_mixture_and_normalised(p, q, g, x, m):
    """The density equals ∫ Gamma(m; px, rate xν) Gamma(ν; q, rate γ) dν and integrates to 1."""
    with mp.workdps(30):
        P, Q, G, X, M = (mp.mpf(v) for v in (p, q, g, x, m))

        def integrand(nu):
            return mp.exp(
                P * X * mp.log(X * nu) + (P * X - 1) * mp.log(M) - X * nu * M - mp.loggamma(P * X)
                + Q * mp.log(G) + (Q - 1) * mp.log(nu) - G * nu - mp.loggamma(Q)
            )  # fmt: skip

        mix = mp.quad(integrand, [0, Q / G, mp.inf])
        assert math.exp(gg_loglik_one(p, q, g, x, m)) == pytest.approx(float(mix), rel=1e-10)
    total = sum(
        mp.quad(lambda t: mp.exp(gg_loglik_one(p, q, g, x, float(t))), iv)
        for iv in ([0, m], [m, 10 * m], [10 * m, mp.inf])
    )
    assert float(total) == pytest.approx(1.0, abs=1e-8)


# ----------------------------------------------------------------------------- gradient


@settings(max_examples=60, deadline=None)
@given(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0), st.floats(-3.0, 3.0), counts, log_m)
def test_gradient_matches_mpmath_diff(lp, lq, lg, x, lm):
    p, q, g, m = 10.0**lp, 10.0**lq, 10.0**lg, 10.0**lm
    x = float(x)
    ll, dp, dq, dg = gg_loglik_grad_one(p, q, g, x, m)
    assert ll == gg_loglik_one(p, q, g, x, m)
    with mp.workdps(50):

        P, Q, G, X, M = (mp.mpf(v) for v in (p, q, g, x, m))

        def f(pp, qq, gg):
            return mp_loglik(pp, qq, gg, X, M)

        refs = [mp.diff(f, (P, Q, G), n) for n in ((1, 0, 0), (0, 1, 0), (0, 0, 1))]
        # Floating-point error scale of each derivative: the magnitude of the terms the
        # kernel combines (a difference of two ψ, a log1p, two fractions).
        u = X * M
        s_p = X * (abs(mp.digamma(P * X + Q)) + abs(mp.digamma(P * X)) + abs(mp.log1p(G / u)))
        s_q = abs(mp.digamma(P * X + Q)) + abs(mp.digamma(Q)) + abs(mp.log1p(u / G))
        s_g = Q / G + (P * X + Q) / (G + u)
    for got, ref, s in zip((dp, dq, dg), refs, (s_p, s_q, s_g)):
        assert abs(got - ref) <= 1e-13 * s + 1e-13 * abs(ref)


def test_gradient_extreme_values_finite():
    # frequency 10,000, parameters at the ends of the supported range
    for p, q, g, x, m in [
        (1e4, 1e-4, 1e4, 1e4, 1e-3),
        (1e-4, 1e4, 1e-4, 1e4, 1e5),
        (1e4, 1e4, 1e4, 1.0, 1e5),
        (1e-4, 1e-4, 1e-4, 1.0, 1e-3),
    ]:
        out = gg_loglik_grad_one(p, q, g, x, m)
        assert all(math.isfinite(v) for v in out)


# ----------------------------------------------------------------------------- array wrappers


def _random_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 30, n).astype(float)
    m = np.where(x > 0, rng.gamma(2.0, 20.0, n), 0.0)
    w = rng.integers(0, 4, n).astype(float)
    return x, m, w


def test_array_wrappers_match_scalar_cores():
    x, m, w = _random_data(5000, 1)
    p, q, g = 2.5, 4.0, 30.0
    ll = gg_loglik(p, q, g, x, m)
    np.testing.assert_array_equal(ll, [gg_loglik_one(p, q, g, xi, mi) for xi, mi in zip(x, m)])
    assert np.all(ll[x == 0] == 0.0)
    es = gg_expected_spend(p, q, g, x, m)
    np.testing.assert_array_equal(es, [gg_expected_spend_one(p, q, g, xi, mi) for xi, mi in zip(x, m)])


def test_weighted_sum_identities():
    x, m, w = _random_data(7000, 2)
    p, q, g = 1.7, 2.9, 12.0
    ll = gg_loglik(p, q, g, x, m)
    grads = np.array([gg_loglik_grad_one(p, q, g, xi, mi)[1:] for xi, mi in zip(x, m)])
    s = gg_loglik_sum(p, q, g, x, m, w)
    s2, grad = gg_loglik_sum_grad(p, q, g, x, m, w)
    assert s == s2
    assert s == pytest.approx(math.fsum(w * ll), rel=1e-13)
    for k in range(3):
        assert grad[k] == pytest.approx(math.fsum(w * grads[:, k]), rel=1e-12, abs=1e-9)
    # integer weights == repeating rows
    rep = w.astype(int)
    s_rep, g_rep = gg_loglik_sum_grad(p, q, g, np.repeat(x, rep), np.repeat(m, rep), np.ones(rep.sum()))
    assert s_rep == pytest.approx(s, rel=1e-12)
    np.testing.assert_allclose(g_rep, grad, rtol=1e-11, atol=1e-9)
    # zero-weight rows are skipped even if their data are invalid
    x2, m2, w2 = x.copy(), m.copy(), w.copy()
    x2[w2 == 0] = -1.0
    m2[w2 == 0] = np.nan
    assert gg_loglik_sum(p, q, g, x2, m2, w2) == s


def test_sums_independent_of_thread_count():
    x, m, w = _random_data(50_000, 3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        r1 = gg_loglik_sum_grad(1.3, 2.2, 8.0, x, m, w), gg_loglik_sum(1.3, 2.2, 8.0, x, m, w)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        r2 = gg_loglik_sum_grad(1.3, 2.2, 8.0, x, m, w), gg_loglik_sum(1.3, 2.2, 8.0, x, m, w)
    finally:
        numba.set_num_threads(before)
    assert r1[0][0] == r2[0][0] and r1[1] == r2[1]
    np.testing.assert_array_equal(r1[0][1], r2[0][1])


def test_table_and_direct_paths_identical():
    """Integer x (x-only terms from the per-call table) and a non-integer x anywhere (terms
    computed per row) give the same bits on the rows they share, equal to the scalar cores."""
    x, m, w = _random_data(3000, 5)
    p, q, g = 2.0, 3.0, 10.0
    one = np.array([gg_loglik_one(p, q, g, xi, mi) for xi, mi in zip(x, m)])
    np.testing.assert_array_equal(gg_loglik(p, q, g, x, m), one)
    x2, m2 = x.copy(), m.copy()
    x2[0], m2[0] = 2.5, 3.0
    got = gg_loglik(p, q, g, x2, m2)
    np.testing.assert_array_equal(got[1:], one[1:])
    assert got[0] == gg_loglik_one(p, q, g, 2.5, 3.0)
    # a zero-weight row with a non-integer x switches the sums to the direct path
    w2 = w.copy()
    w2[0] = 0.0
    v_tab, g_tab = gg_loglik_sum_grad(p, q, g, x, m, w2)
    v_dir, g_dir = gg_loglik_sum_grad(p, q, g, x2, m2, w2)
    assert v_tab == v_dir
    np.testing.assert_array_equal(g_tab, g_dir)
    grads = np.array([gg_loglik_grad_one(p, q, g, xi, mi) for xi, mi in zip(x, m)])
    np.testing.assert_array_equal(grads[:, 0], one)


def test_parallel_path_equals_serial_chunks():
    """From PARALLEL_MIN_ROWS rows the chunks run in prange; below, serially. The fixed
    chunks make both give the same bits: the sum over all rows equals the in-order sum of
    the sums over each chunk's rows (each of which takes the serial path)."""
    n = PARALLEL_MIN_ROWS + 3 * CHUNK + 17
    x, m, w = _random_data(n, 6)
    p, q, g = 3.1, 2.4, 9.0
    v, grad = gg_loglik_sum_grad(p, q, g, x, m, w)
    s = gg_loglik_sum(p, q, g, x, m, w)
    v_c, g_c, s_c = 0.0, np.zeros(3), 0.0
    for lo in range(0, n, CHUNK):
        sl = slice(lo, lo + CHUNK)
        vc, gc = gg_loglik_sum_grad(p, q, g, x[sl], m[sl], w[sl])
        v_c += vc
        g_c += gc
        s_c += gg_loglik_sum(p, q, g, x[sl], m[sl], w[sl])
    assert v == v_c and s == s_c == v
    np.testing.assert_array_equal(grad, g_c)
    # per-row wrappers: same values on either path
    ll = gg_loglik(p, q, g, x, m)
    es = gg_expected_spend(p, q, g, x, m)
    for lo in range(0, n, 5 * CHUNK):
        sl = slice(lo, lo + 5 * CHUNK - 1)
        np.testing.assert_array_equal(ll[sl], gg_loglik(p, q, g, x[sl], m[sl]))
        np.testing.assert_array_equal(es[sl], gg_expected_spend(p, q, g, x[sl], m[sl]))


def test_invalid_inputs_give_nan():
    assert math.isnan(gg_loglik_one(-1.0, 2.0, 3.0, 2.0, 5.0))
    assert math.isnan(gg_loglik_one(1.0, 0.0, 3.0, 2.0, 5.0))
    assert math.isnan(gg_loglik_one(1.0, 2.0, 3.0, 2.0, 0.0))
    assert math.isnan(gg_loglik_one(1.0, 2.0, 3.0, -1.0, 5.0))
    assert gg_loglik_one(1.0, 2.0, 3.0, 0.0, 123.0) == 0.0
    assert gg_loglik_grad_one(1.0, 2.0, 3.0, 0.0, 0.0) == (0.0, 0.0, 0.0, 0.0)
    assert all(math.isnan(v) for v in gg_loglik_grad_one(1.0, 2.0, -3.0, 2.0, 5.0))
    # array wrappers: invalid parameters make every counted row NaN; nothing counted: 0
    x, m, w = np.array([0.0, 2.0]), np.array([0.0, 5.0]), np.array([1.0, 0.0])
    for bad in [(-1.0, 2.0, 3.0), (1.0, math.nan, 3.0), (1.0, 2.0, 0.0)]:
        assert np.all(np.isnan(gg_loglik(*bad, x, m)))
        assert math.isnan(gg_loglik_sum(*bad, x, m, w))
        v, grad = gg_loglik_sum_grad(*bad, x, m, w)
        assert math.isnan(v) and np.all(np.isnan(grad))
        assert gg_loglik_sum(*bad, x, m, np.zeros(2)) == 0.0
    e = np.empty(0)
    v, grad = gg_loglik_sum_grad(1.0, 2.0, 3.0, e, e, e)
    assert v == 0.0 and grad.tolist() == [0.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- expected spend


def test_expected_spend_conventions():
    p, q, g = 6.25, 3.74, 15.44
    assert gg_expected_spend_one(p, q, g, 0.0, 99.0) == pytest.approx(p * g / (q - 1))
    # FHL 2005 eq. (5) as a weighted average of the population mean and m
    x, m = 3.0, 40.0
    w = p * x / (p * x + q - 1)
    assert gg_expected_spend_one(p, q, g, x, m) == pytest.approx((1 - w) * p * g / (q - 1) + w * m, rel=1e-14)
    # mean does not exist: nan, not inf
    assert math.isnan(gg_expected_spend_one(2.0, 1.0, 3.0, 0.0, 0.0))
    assert math.isnan(gg_expected_spend_one(2.0, 0.5, 3.0, 0.0, 0.0))
    assert math.isnan(gg_expected_spend_one(0.2, 0.5, 3.0, 1.0, 4.0))  # p x + q < 1
    assert gg_expected_spend_one(0.2, 0.5, 3.0, 5.0, 4.0) == pytest.approx(0.2 * 23.0 / 0.5)
    # m = 0 for a repeat buyer (all repeat purchases free): the limit m -> 0+, p γ / (p x + q - 1)
    assert gg_expected_spend_one(1.0, 2.0, 3.0, 2.0, 0.0) == pytest.approx(3.0 / 3.0, rel=1e-15)
    assert math.isnan(gg_expected_spend_one(1.0, 2.0, 3.0, 2.0, -1.0))


@settings(max_examples=40, deadline=None)
@given(st.floats(-1.0, 1.5), st.floats(0.05, 1.5), st.floats(-1.0, 2.0), st.integers(1, 50), st.floats(-1.0, 2.5))
def test_expected_spend_is_posterior_mean(lp, lq, lg, x, lm):
    """E[Z | x, m] = E[p / ν | data] with the posterior ∝ ν^{px} e^{-ν x m} Gamma(ν; q, γ)."""
    p, q, g, m = 10.0**lp, 1.0 + 10.0**lq, 10.0**lg, 10.0**lm
    with mp.workdps(30):
        P, Q, G, X, M = (mp.mpf(v) for v in (p, q, g, x, m))
        mode = (P * X + Q - 1) / (G + X * M)

        def logpost(nu):
            return (P * X + Q - 1) * mp.log(nu) - nu * (G + X * M)

        c = logpost(mode)
        pts = [0, mode / 4, mode, 4 * mode, mp.inf]
        num = mp.quad(lambda nu: (P / nu) * mp.exp(logpost(nu) - c), pts)
        den = mp.quad(lambda nu: mp.exp(logpost(nu) - c), pts)
    assert gg_expected_spend_one(p, q, g, float(x), m) == pytest.approx(float(num / den), rel=1e-10)


def test_expected_spend_importance_sampling():
    """Monte Carlo of the hierarchical model: draw ν from its prior, weight each draw by the
    likelihood of the observed mean spend, average the next transaction's value."""
    p, q, g = 6.25, 3.74, 15.44
    rng = np.random.default_rng(20240601)
    nu = rng.gamma(q, 1.0 / g, 400_000)
    for x, m in [(1, 20.0), (3, 60.0), (10, 12.0)]:
        logw = p * x * np.log(nu) - nu * x * m
        w = np.exp(logw - logw.max())
        z_next = rng.gamma(p, 1.0 / nu)  # simulate the next transaction itself
        est = np.sum(w * z_next) / np.sum(w)
        # delta-method standard error of a self-normalised importance estimate
        se = math.sqrt(np.sum(w**2 * (z_next - est) ** 2)) / np.sum(w)
        got = gg_expected_spend_one(p, q, g, float(x), m)
        assert abs(est - got) < 4.5 * se, (x, m, est, got, se)


# ----------------------------------------------------------------------------- published MLE


def _cdnow_repeat_spend():
    df = pd.read_csv(DATA / "cdnow_sample_transactions.csv", parse_dates=["Date"])
    cal = df[df["Date"] <= "1997-09-30"].sort_values(["Id", "Date"], kind="stable")
    rank = cal.groupby("Id").cumcount()
    rep = cal[rank > 0]  # the first purchase of each customer is not a repeat purchase
    agg = rep.groupby("Id")["Price"].agg(["count", "mean"])
    return agg["count"].to_numpy(float), agg["mean"].to_numpy(float)


def test_cdnow_published_mle():
    """FHL 2005 "RFM and CLV" (JMR 42(4)): p = 6.25, q = 3.74, γ = 15.44 on the 946 repeat
    buyers of the CDNOW sample (lifetimes 0.11.3 gets 6.2496, 3.7442, 15.4435)."""
    x, m = _cdnow_repeat_spend()
    assert x.size == 946
    w = np.ones_like(x)

    def neg(theta):
        p, q, g = np.exp(theta)
        ll, grad = gg_loglik_sum_grad(p, q, g, x, m, w)
        # per-customer scale; chain rule for the log parameterisation
        return -ll / x.size, -grad * np.exp(theta) / x.size

    # ftol well above the rounding noise of the sum (~1e-15 relative): at 1e-15 the final
    # line search can fail on that noise ("ABNORMAL") at the optimum, by chance.
    res = optimize.minimize(
        neg, np.zeros(3), jac=True, method="L-BFGS-B", bounds=[(-8.0, 8.0)] * 3,
        options={"ftol": 1e-12, "gtol": 1e-10, "maxiter": 2000},
    )  # fmt: skip
    assert res.success, res.message
    p, q, g = np.exp(res.x)
    assert (round(p, 2), round(q, 2), round(g, 2)) == (6.25, 3.74, 15.44)
    assert p == pytest.approx(6.2496, abs=2e-3)
    assert q == pytest.approx(3.7442, abs=2e-3)
    assert g == pytest.approx(15.4435, abs=5e-3)
    # at the optimum the analytic gradient vanishes
    _, grad = gg_loglik_sum_grad(p, q, g, x, m, w)
    assert np.all(np.abs(grad * np.array([p, q, g])) < 1e-4)
