"""Tests of the BG/NBD log-likelihood kernel (clvbayes.kernels.bgnbd).

References:
- Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
  Pareto/NBD model", Marketing Science 24(2), eq. (6): the likelihood, evaluated here in its
  original (non-log) form with mpmath at 50 digits;
- the same paper for the CDNOW-sample maximum-likelihood estimates and log-likelihood
  (six-digit values from an independent implementation, /work/shared/reference/published.json).

The lnΓ / ψ differences and log1p used by the kernel are tested in test_kernels_special.py.
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

from clvbayes.kernels.bgnbd import (
    bgnbd_loglik,
    bgnbd_loglik_grad_one,
    bgnbd_loglik_one,
    bgnbd_loglik_prepared,
    bgnbd_loglik_sum,
    bgnbd_loglik_sum_grad,
    bgnbd_loglik_sum_grad_prepared,
    bgnbd_loglik_sum_prepared,
    prepare,
)
from clvbayes.kernels.special import CHUNK, PARALLEL_MIN_ROWS, int_table_rows

CDNOW_CSV = (
    Path(__file__).resolve().parents[1]
    / "clvbayes"
    / "datasets"
    / "data"
    / "cdnow_sample_transactions.csv"
)

# --------------------------------------------------------------------------------------
# Independent reference: eq. (6) of Fader, Hardie & Lee (2005), not in log form.
# --------------------------------------------------------------------------------------

DPS = 50


def ref_lik(r, alpha, a, b, x, t_x, T):
    """L of eq. (6) in mpmath (arguments mpf or float, converted exactly)."""
    r, alpha, a, b, x, t_x, T = (mp.mpf(v) for v in (r, alpha, a, b, x, t_x, T))
    common = mp.gamma(r + x) * alpha**r / mp.gamma(r)
    lik = mp.beta(a, b + x) / mp.beta(a, b) * common / (alpha + T) ** (r + x)
    if x > 0:
        lik += mp.beta(a + 1, b + x - 1) / mp.beta(a, b) * common / (alpha + t_x) ** (r + x)
    return lik


def ref_loglik(r, alpha, a, b, x, t_x, T):
    with mp.workdps(DPS):
        return mp.log(ref_lik(r, alpha, a, b, x, t_x, T))


def ref_term_scale(r, alpha, a, b, x, t_x, T):
    """Σ |terms| of ln L = lnΓ(r+x) - lnΓ(r) + r ln α - (r+x) ln(α+T) + ln[B(a,b+x)/B(a,b)]
    + ln(1 + second/first): the size a float64 evaluation rounds at."""
    with mp.workdps(DPS):
        r, alpha, a, b, x, t_x, T = (mp.mpf(v) for v in (r, alpha, a, b, x, t_x, T))
        terms = [
            mp.loggamma(r + x) - mp.loggamma(r),
            r * mp.log(alpha),
            (r + x) * mp.log(alpha + T),
            mp.log(mp.beta(a, b + x) / mp.beta(a, b)),
        ]
        if x > 0:
            ratio = mp.beta(a + 1, b + x - 1) / mp.beta(a, b + x)
            terms.append(mp.log1p(ratio * ((alpha + T) / (alpha + t_x)) ** (r + x)))
        return float(sum(abs(t) for t in terms))


def ref_grad(r, alpha, a, b, x, t_x, T):
    """Partial derivatives of ln L by mpmath numerical differentiation at 50 digits."""
    with mp.workdps(DPS):
        p = [mp.mpf(v) for v in (r, alpha, a, b)]

        def f_k(k):
            def f(v):
                q = list(p)
                q[k] = v
                return mp.log(ref_lik(*q, x, t_x, T))

            return f

        return [mp.diff(f_k(k), p[k]) for k in range(4)]


# --------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------


def log_uniform(lo_exp, hi_exp):
    return st.floats(lo_exp, hi_exp).map(lambda e: 10.0**e)


params_st = st.tuples(*(log_uniform(-3, 3) for _ in range(4)))  # r, alpha, a, b


@st.composite
def customer_st(draw):
    x = draw(st.integers(0, 500))
    T = draw(log_uniform(-3, 4))
    if x == 0:
        t_x = 0.0
    else:
        t_x = min(T, draw(st.floats(0.0, 1.0)) * T)
    return float(x), t_x, T


def simulate_rows(n, seed, max_x=60):
    """Plausible (x, t_x, T) rows (not a BG/NBD simulation; shapes only matter here)."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(1.0, 52.0, n)
    x = np.minimum(rng.negative_binomial(0.3, 0.1, n), max_x).astype(float)
    t_x = np.where(x > 0, rng.uniform(0.0, 1.0, n) * T, 0.0)
    return x, t_x, T


# --------------------------------------------------------------------------------------
# Per-customer value and gradient vs the mpmath reference
# --------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, derandomize=True)
@given(params_st, customer_st())
def test_loglik_one_matches_mpmath(params, cust):
    got = bgnbd_loglik_one(*params, *cust)
    ref = ref_loglik(*params, *cust)
    assert math.isfinite(got)
    assert abs(got - float(ref)) <= 1e-9 * abs(float(ref)) + 1e-300, (got, ref)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(params_st, st.lists(customer_st(), min_size=1, max_size=8))
def test_loglik_array_matches_mpmath(params, custs):
    x, t_x, T = (np.array(c, dtype=float) for c in zip(*custs))
    got = bgnbd_loglik(*params, x, t_x, T)
    for i in range(x.size):
        ref = float(ref_loglik(*params, x[i], t_x[i], T[i]))
        assert abs(got[i] - ref) <= 1e-9 * abs(ref), (i, got[i], ref)


def ref_grad_scale(r, alpha, a, b, x, t_x, T):
    """Σ |∂ piece / ∂θ_k| over the pieces ln L = P1 + P2 + P3 of eq. (6).

    P1 = ln[Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))], P2 = ln[B(a,b+x)/B(a,b)],
    P3 = ln(1 + second term / first term). A float64 gradient can only be accurate to a few
    ulps of this scale: where the pieces cancel (a true derivative of ~0) a relative
    tolerance alone would demand more than double precision can give.
    """
    with mp.workdps(DPS):
        p = [mp.mpf(v) for v in (r, alpha, a, b)]
        xm, tm, Tm = (mp.mpf(v) for v in (x, t_x, T))

        def p1(q):
            return mp.loggamma(q[0] + xm) - mp.loggamma(q[0]) + q[0] * mp.log(q[1]) - (
                q[0] + xm
            ) * mp.log(q[1] + Tm)

        def p2(q):
            return mp.log(mp.beta(q[2], q[3] + xm) / mp.beta(q[2], q[3]))

        def p3(q):
            if x == 0:
                return mp.mpf(0)
            ratio = mp.beta(q[2] + 1, q[3] + xm - 1) / mp.beta(q[2], q[3] + xm)
            return mp.log1p(ratio * ((q[1] + Tm) / (q[1] + tm)) ** (q[0] + xm))

        def partial(f, k):
            def g(v):
                q = list(p)
                q[k] = v
                return f(q)

            return abs(mp.diff(g, p[k]))

        return [sum(partial(f, k) for f in (p1, p2, p3)) for k in range(4)]


def _check_grad(params, cust, rtol=1e-7, ulp_floor=1e-13):
    ll, *g = bgnbd_loglik_grad_one(*params, *cust)
    ref = ref_grad(*params, *cust)
    assert math.isfinite(ll) and all(math.isfinite(v) for v in g)
    for k in range(4):
        gk = float(ref[k])
        if abs(g[k] - gk) <= rtol * abs(gk):
            continue
        # Only where the pieces cancel: allow a few hundred ulps of the pieces' scale.
        scale = float(ref_grad_scale(*params, *cust)[k])
        assert abs(g[k] - gk) <= rtol * abs(gk) + ulp_floor * scale, (k, g[k], gk, scale)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(params_st, customer_st())
def test_grad_one_matches_mpmath_diff(params, cust):
    _check_grad(params, cust)


@pytest.mark.parametrize(
    "params,cust",
    [
        ((0.2425945, 4.4136019, 0.7929199, 2.4258881), (2.0, 30.43, 38.86)),
        ((0.2425945, 4.4136019, 0.7929199, 2.4258881), (0.0, 0.0, 38.86)),
        ((1.0, 1.0, 1.0, 1.0), (1.0, 5.0, 5.0)),  # t_x == T: Δ = 0
        ((1.0, 1.0, 0.3, 1e-4), (1.0, 0.0, 10.0)),  # b + x - 1 small
        ((0.5, 2.0, 0.2, 0.3), (3.0, 1.0, 2.0)),  # a + b < 1
        ((1e3, 1e-3, 1e3, 1e-3), (500.0, 1e-3, 1e3)),
    ],
)
def test_grad_one_matches_mpmath_diff_fixed(params, cust):
    _check_grad(params, cust)


# --------------------------------------------------------------------------------------
# Sums, weights, compression, table vs direct path, threads
# --------------------------------------------------------------------------------------


def test_weighted_sum_equals_sum_of_rows():
    x, t_x, T = simulate_rows(20_000, seed=1)
    w = np.random.default_rng(2).integers(1, 5, x.size).astype(float)
    p = (0.7, 3.0, 0.9, 2.5)
    rows = bgnbd_loglik(*p, x, t_x, T)
    total = bgnbd_loglik_sum(*p, x, t_x, T, w)
    assert total == pytest.approx(math.fsum(w * rows), rel=1e-13)
    ll, g = bgnbd_loglik_sum_grad(*p, x, t_x, T, w)
    # Same arithmetic on both paths: bit-identical value.
    assert ll == total
    gr = np.array([bgnbd_loglik_grad_one(*p, x[i], t_x[i], T[i]) for i in range(x.size)])
    np.testing.assert_array_equal(gr[:, 0], rows)
    for k in range(4):
        assert g[k] == pytest.approx(math.fsum(w * gr[:, k + 1]), rel=1e-11, abs=1e-9)


def test_compressed_equals_expanded():
    rng = np.random.default_rng(3)
    n = 50_000
    # Integer-day times so that many customers share (x, t_x, T).
    T = rng.integers(1, 40, n).astype(float)
    x = np.minimum(rng.negative_binomial(0.3, 0.15, n), 30).astype(float)
    t_x = np.where(x > 0, np.floor(rng.uniform(0.0, 1.0, n) * T), 0.0)
    data = np.column_stack([x, t_x, T])
    uniq, counts = np.unique(data, axis=0, return_counts=True)
    assert uniq.shape[0] < n // 5
    xc, txc, Tc = (np.ascontiguousarray(uniq[:, j]) for j in range(3))
    w = counts.astype(float)
    for p in [(0.2425945, 4.4136019, 0.7929199, 2.4258881), (5.0, 0.01, 0.05, 30.0)]:
        full = bgnbd_loglik_sum(*p, x, t_x, T, np.ones(n))
        comp = bgnbd_loglik_sum(*p, xc, txc, Tc, w)
        assert comp == pytest.approx(full, rel=1e-12)
        vf, gf = bgnbd_loglik_sum_grad(*p, x, t_x, T, np.ones(n))
        vc, gc = bgnbd_loglik_sum_grad(*p, xc, txc, Tc, w)
        assert vc == pytest.approx(vf, rel=1e-12)
        np.testing.assert_allclose(gc, gf, rtol=1e-10, atol=1e-9 * np.abs(gf).max())


def test_table_and_direct_paths_identical():
    p = (0.8, 2.0, 0.6, 1.7)
    x, t_x, T = simulate_rows(3_000, seed=4)
    one = np.array([bgnbd_loglik_one(*p, x[i], t_x[i], T[i]) for i in range(x.size)])
    # Table path (max x << rows).
    np.testing.assert_array_equal(bgnbd_loglik(*p, x, t_x, T), one)
    # Direct path: a non-integer frequency disables the table for the whole call.
    x2 = x.copy()
    x2[0] = 0.5
    t2 = t_x.copy()
    t2[0] = 0.1 * T[0]
    got2 = bgnbd_loglik(*p, x2, t2, T)
    np.testing.assert_array_equal(got2[1:], one[1:])
    assert got2[0] == bgnbd_loglik_one(*p, 0.5, t2[0], T[0])
    # Direct path: max x large compared to the rows.
    xs = np.array([0.0, 3.0, 400.0])
    ts = np.array([0.0, 2.0, 9.0])
    Ts = np.array([10.0, 10.0, 10.0])
    got3 = bgnbd_loglik(*p, xs, ts, Ts)
    np.testing.assert_array_equal(
        got3, [bgnbd_loglik_one(*p, xs[i], ts[i], Ts[i]) for i in range(3)]
    )
    # Sums and gradients agree between the paths up to summation order.
    w = np.ones(x.size)
    v_tab, g_tab = bgnbd_loglik_sum_grad(*p, x, t_x, T, w)
    x3 = x.copy()
    x3[-1] = 10.0 * x.size  # forces the direct path
    t3 = t_x.copy()
    t3[-1] = T[-1]
    v_dir, g_dir = bgnbd_loglik_sum_grad(*p, x3, t3, T, w)
    last = bgnbd_loglik_grad_one(*p, x[-1], t_x[-1], T[-1])
    lastd = bgnbd_loglik_grad_one(*p, x3[-1], t3[-1], T[-1])
    assert v_dir - lastd[0] == pytest.approx(v_tab - last[0], rel=1e-12)
    np.testing.assert_allclose(
        g_dir - np.array(lastd[1:]), g_tab - np.array(last[1:]), rtol=1e-9, atol=1e-6
    )


def test_parallel_path_equals_serial_chunks():
    """From PARALLEL_MIN_ROWS rows the chunks run in prange; below, serially. The fixed
    chunks make both give the same bits: the sum over all rows equals the in-order sum of
    the sums over each chunk's rows (each of which takes the serial path)."""
    n = PARALLEL_MIN_ROWS + 2 * CHUNK + 33
    x, t_x, T = simulate_rows(n, seed=8)
    w = np.random.default_rng(9).integers(1, 4, n).astype(float)
    p = (0.6, 4.0, 0.9, 2.2)
    v, g = bgnbd_loglik_sum_grad(*p, x, t_x, T, w)
    s = bgnbd_loglik_sum(*p, x, t_x, T, w)
    v_c, g_c, s_c = 0.0, np.zeros(4), 0.0
    for lo in range(0, n, CHUNK):
        sl = slice(lo, lo + CHUNK)
        vc, gc = bgnbd_loglik_sum_grad(*p, x[sl], t_x[sl], T[sl], w[sl])
        v_c += vc
        g_c += gc
        s_c += bgnbd_loglik_sum(*p, x[sl], t_x[sl], T[sl], w[sl])
    assert v == v_c and s == s_c == v
    np.testing.assert_array_equal(g, g_c)
    rows = bgnbd_loglik(*p, x, t_x, T)
    for lo in range(0, n, 5 * CHUNK):
        sl = slice(lo, lo + 5 * CHUNK - 1)
        np.testing.assert_array_equal(rows[sl], bgnbd_loglik(*p, x[sl], t_x[sl], T[sl]))


def daily_rows(n, seed, days=364):
    """Rows summarised by day, in weeks (as real transaction logs are): few distinct times."""
    rng = np.random.default_rng(seed)
    T_days = rng.integers(0, days + 1, n)
    x = np.minimum(rng.negative_binomial(0.3, 0.1, n), 60).astype(float)
    t_days = np.where(x > 0, np.floor(rng.uniform(0.0, 1.0, n) * (T_days + 1)), 0.0)
    x[T_days == 0] = 0.0  # a customer acquired on the last day has no repeat purchase
    t_days[x == 0] = 0.0
    return x, t_days / 7.0, T_days / 7.0


@pytest.mark.parametrize("n", [1, 50, 3_000, PARALLEL_MIN_ROWS + CHUNK + 7])
def test_prepared_kernels_same_bits(n):
    """The table of ln(1 + t/α) over the distinct times gives the per-row kernels' bits: the
    same function of the same numbers (serial and threaded paths)."""
    x, t_x, T = daily_rows(n, seed=n)
    w = np.random.default_rng(1).integers(1, 5, n).astype(float)
    prep = prepare(x, t_x, T)
    times = prep[0]
    assert times.size > 0 or np.unique(np.r_[t_x, T]).size > n
    for p in [(0.24, 4.4, 0.79, 2.4), (1e-3, 1e3, 30.0, 1e-3), (50.0, 0.01, 0.05, 80.0)]:
        v, g = bgnbd_loglik_sum_grad(*p, x, t_x, T, w)
        vp, gp = bgnbd_loglik_sum_grad_prepared(*p, x, t_x, T, w, *prep)
        assert v == vp
        np.testing.assert_array_equal(g, gp)
        assert bgnbd_loglik_sum(*p, x, t_x, T, w) == bgnbd_loglik_sum_prepared(*p, x, t_x, T, w, *prep) == v
        np.testing.assert_array_equal(bgnbd_loglik(*p, x, t_x, T), bgnbd_loglik_prepared(*p, x, t_x, T, *prep))
        # per row too (weight 1 on row i, 0 elsewhere: the sum is row i's terms exactly):
        # the one-customer core divides where the tables hold logs and reciprocals
        for i in range(0, n, max(1, n // 25)):
            e_i = np.zeros(n)
            e_i[i] = 1.0
            v1, g1 = bgnbd_loglik_sum_grad_prepared(*p, x, t_x, T, e_i, *prep)
            assert (v1, *g1) == bgnbd_loglik_grad_one(*p, x[i], t_x[i], T[i])


def test_prepare_indexes_the_distinct_times():
    x, t_x, T = daily_rows(5_000, seed=3)
    times, ia, ib, need = prepare(x, t_x, T)
    assert np.all(np.diff(times) > 0) and times.size <= 365
    np.testing.assert_array_equal(times[ia.astype(int)], t_x)
    np.testing.assert_array_equal(times[ib.astype(int)], T)
    assert ia.dtype == ib.dtype == need.dtype == np.float64
    np.testing.assert_array_equal(need, int_table_rows(x))


def test_prepare_marks_the_x_table_rows_once():
    """The x-table's rows come from prepare (no scan of x per call): every integer x up to
    max(x) for a small table, only the x that occur for a heavy tail, none for non-integer x;
    the prepared sums equal the plain ones in each case."""
    x, t_x, T = daily_rows(3_000, seed=8)
    x_tail = x.copy()
    x_tail[:3] = [900.0, 1500.0, 2999.0]
    x_frac = x + 0.5 * (x > 0)
    p = (0.24, 4.4, 0.79, 2.4)
    w = np.ones(x.size)
    for xs, kind in [(x, "full"), (x_tail, "marked"), (x_frac, "none")]:
        need = prepare(xs, t_x, T)[3]
        if kind == "full":
            assert need.size == xs.max() + 1 and need.min() == 1.0
        elif kind == "marked":
            assert need.size == 3000 and need.sum() == np.unique(xs).size
            assert all(need[int(v)] == 1.0 for v in np.unique(xs))
        else:
            assert need.size == 0
        v, g = bgnbd_loglik_sum_grad(*p, xs, t_x, T, w)
        vp, gp = bgnbd_loglik_sum_grad_prepared(*p, xs, t_x, T, w, *prepare(xs, t_x, T))
        assert v == vp
        np.testing.assert_array_equal(g, gp)


def test_prepare_skips_the_table_for_continuous_times():
    """Continuous ages: more distinct times than rows, so no table (it would cost more logs
    than it saves); the prepared kernels then take the logs per row, with the same bits."""
    x, t_x, T = simulate_rows(2_000, seed=6)
    prepared = prepare(x, t_x, T)
    assert all(a.size == 0 for a in prepared[:3])
    w = np.ones(x.size)
    p = (0.8, 2.0, 0.6, 1.7)
    v, g = bgnbd_loglik_sum_grad(*p, x, t_x, T, w)
    vp, gp = bgnbd_loglik_sum_grad_prepared(*p, x, t_x, T, w, *prepared)
    assert v == vp
    np.testing.assert_array_equal(g, gp)
    assert all(a.size == 0 for a in prepare(np.empty(0), np.empty(0), np.empty(0)))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(params_st, st.integers(1, 400), st.integers(0, 2**31))
def test_prepared_sum_matches_mpmath(params, n, seed):
    """Property: on day-grid data the prepared sum equals Σ w ln L of the mpmath reference."""
    x, t_x, T = daily_rows(n, seed=seed, days=30)
    w = np.ones(n)
    got = bgnbd_loglik_sum_prepared(*params, x, t_x, T, w, *prepare(x, t_x, T))
    with mp.workdps(DPS):
        want = float(sum(ref_loglik(*params, x[i], t_x[i], T[i]) for i in range(n)))
    assert got == pytest.approx(want, rel=1e-10, abs=1e-9)


def test_deterministic_across_thread_counts():
    x, t_x, T = simulate_rows(100_000, seed=5)
    w = np.ones(x.size)
    p = (0.3, 5.0, 0.8, 2.4)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        v1 = bgnbd_loglik_sum(*p, x, t_x, T, w)
        s1, g1 = bgnbd_loglik_sum_grad(*p, x, t_x, T, w)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        v2 = bgnbd_loglik_sum(*p, x, t_x, T, w)
        s2, g2 = bgnbd_loglik_sum_grad(*p, x, t_x, T, w)
    finally:
        numba.set_num_threads(before)
    assert v1 == v2 and s1 == s2
    np.testing.assert_array_equal(g1, g2)


def test_empty_and_invalid_parameters():
    e = np.empty(0)
    assert bgnbd_loglik_sum(1.0, 1.0, 1.0, 1.0, e, e, e, e) == 0.0
    v, g = bgnbd_loglik_sum_grad(1.0, 1.0, 1.0, 1.0, e, e, e, e)
    assert v == 0.0 and np.all(g == 0.0)
    x = np.array([1.0])
    t = np.array([1.0])
    for bad in [(0.0, 1.0, 1.0, 1.0), (1.0, -1.0, 1.0, 1.0), (1.0, 1.0, math.nan, 1.0)]:
        assert bgnbd_loglik_one(*bad, 1.0, 1.0, 2.0) == -math.inf
        assert bgnbd_loglik_sum(*bad, x, t, t, x) == -math.inf
        v, g = bgnbd_loglik_sum_grad(*bad, x, t, t, x)
        assert v == -math.inf and np.all(np.isnan(g))
        assert np.all(bgnbd_loglik(*bad, x, t, t) == -math.inf)


# --------------------------------------------------------------------------------------
# Extremes: finite, and still accurate where mpmath can tell
# --------------------------------------------------------------------------------------

EXTREME_P = [1e-4, 1.0, 1e4]


@pytest.mark.parametrize("r", EXTREME_P)
@pytest.mark.parametrize("alpha", EXTREME_P)
@pytest.mark.parametrize("a", EXTREME_P)
@pytest.mark.parametrize("b", EXTREME_P)
def test_finite_at_extremes(r, alpha, a, b):
    T = 1e4
    xs = np.array([0.0, 1.0, 1.0, 10_000.0, 10_000.0, 10_000.0])
    ts = np.array([0.0, 0.0, T, 0.0, 0.5 * T, T])
    Ts = np.full(xs.size, T)
    v = bgnbd_loglik(r, alpha, a, b, xs, ts, Ts)
    assert np.all(np.isfinite(v))
    s, g = bgnbd_loglik_sum_grad(r, alpha, a, b, xs, ts, Ts, np.ones(xs.size))
    assert math.isfinite(s) and np.all(np.isfinite(g))
    # Value accuracy at the corners too (the mpmath reference has no range limits). Some
    # corners have |ln L| ~ 1e-8 from terms of size ~10: allow ~50 ulps of those terms.
    for i in (1, 4):
        ref = float(ref_loglik(r, alpha, a, b, xs[i], ts[i], Ts[i]))
        scale = ref_term_scale(r, alpha, a, b, xs[i], ts[i], Ts[i])
        assert abs(v[i] - ref) <= 1e-9 * abs(ref) + 1e-14 * scale, (i, v[i], ref, scale)


@pytest.mark.parametrize("b", [1e-7, 1e-9, 1e-12, 1e-300])
@pytest.mark.parametrize("t_x", [0.0, 3.0, 10.0])
def test_b_plus_x_minus_one_near_zero(b, t_x):
    # x = 1 and b -> 0: ln(b + x - 1) = ln b -> -inf, the softplus argument -> +inf.
    p = (0.5, 2.0, 0.7, b)
    ll, *g = bgnbd_loglik_grad_one(*p, 1.0, t_x, 10.0)
    assert math.isfinite(ll) and all(math.isfinite(v) for v in g)
    ref = float(ref_loglik(*p, 1.0, t_x, 10.0))
    assert abs(ll - ref) <= 1e-9 * abs(ref)
    if b >= 1e-12:
        _check_grad(p, (1.0, t_x, 10.0))


@pytest.mark.parametrize("a,b", [(0.1, 0.2), (0.5, 0.4999), (1e-4, 1e-4), (0.9, 1e-3)])
def test_a_plus_b_below_one(a, b):
    for cust in [(0.0, 0.0, 5.0), (1.0, 2.0, 5.0), (7.0, 4.9, 5.0), (50.0, 0.1, 5.0)]:
        p = (0.4, 3.0, a, b)
        ll = bgnbd_loglik_one(*p, *cust)
        ref = float(ref_loglik(*p, *cust))
        assert abs(ll - ref) <= 1e-9 * abs(ref)
        _check_grad(p, cust)


# --------------------------------------------------------------------------------------
# Published value: CDNOW sample, Fader, Hardie & Lee (2005)
# --------------------------------------------------------------------------------------


def cdnow_rfm(extra_day: int):
    """(x, t_x, T) in weeks for the 39-week calibration period ending 1997-09-30.

    ``extra_day = 0``: T counts to the START of 1997-09-30 (days between dates / 7);
    ``extra_day = 1``: to its END (one more day).
    """
    df = pd.read_csv(CDNOW_CSV, parse_dates=["Date"])
    end = pd.Timestamp("1997-09-30")
    first = df.groupby("Id")["Date"].min()
    cal = df[df["Date"] <= end].groupby("Id")["Date"]
    x = (cal.count() - 1).astype(float).reindex(first.index)
    t_x = (cal.max().reindex(first.index) - first).dt.days / 7.0
    T = ((end - first).dt.days + extra_day) / 7.0
    return (np.ascontiguousarray(v.to_numpy(dtype=float)) for v in (x, t_x, T))


MLE = (0.2425945, 4.4136019, 0.7929199, 2.4258881)  # FHL (2005); six digits per published.json
PUBLISHED_LL = -9582.429


def test_cdnow_published_loglik():
    x, t_x, T = cdnow_rfm(extra_day=0)
    assert x.size == 2357 and int((x > 0).sum()) == 946
    w = np.ones(x.size)
    ll = bgnbd_loglik_sum(*MLE, x, t_x, T, w)
    assert abs(ll - PUBLISHED_LL) < 5e-4  # published to three decimals
    # MLE: the gradient vanishes up to the 7-digit rounding of the estimates.
    _, g = bgnbd_loglik_sum_grad(*MLE, x, t_x, T, w)
    assert np.all(np.abs(g) < 1e-2)
    # The other convention (T to the end of 1997-09-30) does not reproduce the paper.
    x1, t1, T1 = cdnow_rfm(extra_day=1)
    assert abs(bgnbd_loglik_sum(*MLE, x1, t1, T1, w) - PUBLISHED_LL) > 1.0
