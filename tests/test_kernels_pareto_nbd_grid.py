"""Pareto/NBD likelihood on the data's distinct times (clvbayes.kernels.pareto_nbd_grid)
against the per-row kernel (itself checked against mpmath in test_kernels_pareto_nbd.py),
mpmath directly, and the published CDNOW estimates through the public API."""

from __future__ import annotations

import json
import math
from importlib import resources

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from scipy.special import digamma

import clvbayes
from clvbayes.kernels import pareto_nbd as k
from clvbayes.kernels import pareto_nbd_grid as g
from clvbayes.kernels.build import rebuild
from clvbayes.kernels.special import CHUNK, PARALLEL_MIN_ROWS
from tests.reference import pareto_nbd_mpmath as ref

CDNOW = (0.553, 10.578, 0.606, 11.669)


@njit(cache=True)
def _nan_fallback(r, alpha, s, beta, x, t_x, T, nacc):
    return math.nan, math.nan, math.nan, math.nan, math.nan


# the rows kernel with the per-row fallback replaced by NaN: which rows the tables answer
_TABLE_ONLY_ROWS = rebuild(g.loglik_rows, replace={"_fallback": _nan_fallback}, tag="test_table_only")


def grad_scale(r, alpha, s, beta, x, t_x, T):
    """Size of the terms each gradient component is a difference of (test_kernels_pareto_nbd):
    the error floor ε · scale of any double-precision evaluation of a cancelling component."""
    return np.array([
        abs(digamma(r + x) - digamma(r)) + math.log1p(T / alpha),
        (r + x) / alpha,
        1.0 / s + math.log1p(T / beta),
        (s + 1.0) / beta,
    ])


def daily(rng, n, weeks=78.0, mean_x=2.0):
    """Rows on a daily grid in weeks (t_x = 0 for x = 0), like rfm summaries of real data."""
    T = np.floor(rng.uniform(0.0, weeks * 7.0, n)) / 7.0
    x = rng.poisson(mean_x, n).astype(float)
    t_x = np.floor(rng.uniform(0.0, 1.0, n) * T * 7.0) / 7.0
    t_x[x == 0] = 0.0
    return x, t_x, T


@st.composite
def datasets(draw):
    """Small data sets: daily or continuous times, T up to 1e4, x up to 1e4, and rows with
    t_x = T, t_x = 0, x = 0."""
    n = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tmax = draw(st.sampled_from([0.5, 52.0, 1e4]))
    xmax = draw(st.sampled_from([0, 3, 60, 10_000]))
    continuous = draw(st.booleans())
    T = rng.uniform(0.0, tmax, n)
    t_x = rng.uniform(0.0, 1.0, n) * T
    if not continuous:
        T = np.floor(T * 7.0) / 7.0
        t_x = np.floor(t_x * 7.0) / 7.0
    x = rng.integers(0, xmax + 1, n).astype(float)
    case = rng.integers(0, 5, n)
    t_x[case == 1] = T[case == 1]
    t_x[case == 2] = 0.0
    x[case == 3] = 0.0
    t_x[x == 0] = 0.0
    return x, t_x, T


params = st.floats(1e-3, 1e3)


def reference_rows(th, x, t_x, T):
    return np.array([k.loglik_one(*th, *h) for h in zip(x, t_x, T, strict=True)])


def reference_grads(th, x, t_x, T):
    return np.array([k.loglik_grad_one(*th, *h) for h in zip(x, t_x, T, strict=True)])


def check_against_rows(th, x, t_x, T, w):
    prep = g.prepare(x, t_x, T)
    rows = g.loglik_rows(*th, x, t_x, T, *prep)
    want = reference_rows(th, x, t_x, T)
    assert np.all(np.abs(rows - want) <= 1e-12 * np.abs(want)), np.max(np.abs(rows - want) / np.abs(want))
    v, grad = g.loglik_sum_grad(*th, x, t_x, T, w, *prep)
    gref = reference_grads(th, x, t_x, T)
    scale = np.array([grad_scale(*th, *h) for h in zip(x, t_x, T, strict=True)])
    tol = 1e-12 * (w @ np.abs(gref[:, 1:])) + 1e-14 * (w @ scale)
    assert np.all(np.abs(grad - w @ gref[:, 1:]) <= tol), (grad, w @ gref[:, 1:])
    assert v == pytest.approx(w @ want, rel=1e-12)
    assert g.loglik_sum(*th, x, t_x, T, w, *prep) == v


@settings(max_examples=120, deadline=None)
@given(params, params, params, params, datasets(), st.integers(0, 2**32 - 1))
def test_rows_and_summed_gradient_equal_the_per_row_kernel(r, alpha, s, beta, data, seed):
    x, t_x, T = data
    w = np.random.default_rng(seed).integers(1, 9, x.size).astype(float)
    check_against_rows((r, alpha, s, beta), x, t_x, T, w)


@pytest.mark.parametrize(
    "th",
    [CDNOW, (0.553, 11.669, 0.606, 10.578), (0.5, 10.0, 2.0, 10.0), (2.0, 1e-3, 0.5, 1e3), (1e3, 1e3, 1e-3, 1e-3)],
)
def test_daily_data_alpha_below_equal_above_beta(th):
    rng = np.random.default_rng(7)
    x, t_x, T = daily(rng, 3000)
    check_against_rows(th, x, t_x, T, rng.integers(1, 50, x.size).astype(float))


def test_single_row_and_edge_rows():
    for h in [(0.0, 0.0, 0.0), (0.0, 0.0, 30.0), (3.0, 30.0, 30.0), (3.0, 0.0, 30.0), (1e4, 9999.0, 1e4),
              (1e4, 0.5, 1e4), (2.0, 0.123456789, 7.77)]:
        x, t_x, T = (np.array([v]) for v in h)
        check_against_rows(CDNOW, x, t_x, T, np.array([1.0]))


def test_daily_rows_are_answered_by_the_tables():
    # the speed claim: on daily data nearly every row avoids the per-row quadrature
    rng = np.random.default_rng(11)
    x, t_x, T = daily(rng, 20_000)
    rows = clvbayes.compress_rows(x, t_x, T)
    cols = rows.columns
    out = _TABLE_ONLY_ROWS(*CDNOW, *cols, *g.prepare(*cols))
    assert np.mean(np.isnan(out)) < 0.01
    np.testing.assert_allclose(out[~np.isnan(out)], reference_rows(CDNOW, *(c[~np.isnan(out)] for c in cols)),
                               rtol=1e-12, atol=0)


def test_three_rows_match_mpmath():
    rng = np.random.default_rng(5)
    x, t_x, T = daily(rng, 2000)
    hist = [(2.0, 30.0, 38.0), (0.0, 0.0, 38.0), (4.0, 5.0, 60.0)]
    x = np.append(x, [h[0] for h in hist])
    t_x = np.append(t_x, [h[1] for h in hist])
    T = np.append(T, [h[2] for h in hist])
    prep = g.prepare(x, t_x, T)
    assert not np.isnan(_TABLE_ONLY_ROWS(*CDNOW, x, t_x, T, *prep)[-3:]).any()  # the tables answer them
    rows = g.loglik_rows(*CDNOW, x, t_x, T, *prep)
    for j, h in enumerate(hist):
        i = x.size - 3 + j
        assert rows[i] == pytest.approx(ref.loglik(*CDNOW, *h), rel=1e-12)
        w = np.zeros(x.size)
        w[i] = 1.0
        _, grad = g.loglik_sum_grad(*CDNOW, x, t_x, T, w, *prep)
        want = ref.loglik_grad(*CDNOW, *h)[1:]
        scale = grad_scale(*CDNOW, *h)
        for q in range(4):
            assert abs(grad[q] - float(want[q])) <= 2e-12 * abs(float(want[q])) + 1e-14 * scale[q], (h, q)


def test_weighted_sum_is_the_chunked_sum_of_rows():
    rng = np.random.default_rng(3)
    x, t_x, T = daily(rng, 3 * CHUNK + 17)
    w = rng.integers(1, 9, x.size).astype(float)
    prep = g.prepare(x, t_x, T)
    rows = g.loglik_rows(*CDNOW, x, t_x, T, *prep)
    total = 0.0
    for lo in range(0, x.size, CHUNK):
        acc = 0.0
        for i in range(lo, min(lo + CHUNK, x.size)):
            acc += w[i] * rows[i]
        total += acc
    assert g.loglik_sum(*CDNOW, x, t_x, T, w, *prep) == total


def test_serial_build_and_thread_count_give_the_same_bits():
    rng = np.random.default_rng(4)
    x, t_x, T = daily(rng, PARALLEL_MIN_ROWS + 5000)
    w = rng.integers(1, 9, x.size).astype(float)
    prep = g.prepare(x, t_x, T)
    serial = rebuild(g.loglik_sum_grad, serial=True, tag="test_serial")
    serial_rows = rebuild(g.loglik_rows, serial=True, tag="test_serial")
    v, grad = g.loglik_sum_grad(*CDNOW, x, t_x, T, w, *prep)
    vs, gs = serial(*CDNOW, x, t_x, T, w, *prep)
    assert v == vs and np.array_equal(grad, gs)
    np.testing.assert_array_equal(serial_rows(*CDNOW, x, t_x, T, *prep), g.loglik_rows(*CDNOW, x, t_x, T, *prep))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        v1, g1 = g.loglik_sum_grad(*CDNOW, x, t_x, T, w, *prep)
    finally:
        numba.set_num_threads(before)
    assert v1 == v and np.array_equal(g1, grad)


def test_outside_the_support_and_no_rows():
    x, t_x, T = (np.array([2.0]), np.array([1.0]), np.array([3.0]))
    prep = g.prepare(x, t_x, T)
    for bad in [(-1.0, 1.0, 1.0, 1.0), (1.0, math.nan, 1.0, 1.0), (1.0, 1.0, math.inf, 1.0)]:
        assert g.loglik_sum(*bad, x, t_x, T, np.ones(1), *prep) == -math.inf
        v, grad = g.loglik_sum_grad(*bad, x, t_x, T, np.ones(1), *prep)
        assert v == -math.inf and np.isnan(grad).all()
        assert g.loglik_rows(*bad, x, t_x, T, *prep)[0] == -math.inf
    e = np.empty(0)
    pe = g.prepare(e, e, e)
    assert g.loglik_sum(*CDNOW, e, e, e, e, *pe) == 0.0
    v, grad = g.loglik_sum_grad(*CDNOW, e, e, e, e, *pe)
    assert v == 0.0 and np.array_equal(grad, np.zeros(4))
    assert g.loglik_rows(*CDNOW, e, e, e, *pe).size == 0


def test_cdnow_mle_through_the_public_api():
    raw = json.loads(resources.files("clvbayes.datasets").joinpath("data", "published.json").read_text("utf-8"))
    pub = raw["pareto_nbd_cdnow_sample_39w_mle"]["rounded"]
    d = clvbayes.calibration_holdout_split(clvbayes.datasets.load_cdnow_sample(), calibration_end="1997-09-30")
    m = clvbayes.ParetoNBDModel(d).fit_mle()
    for name in ("r", "alpha", "s", "beta"):
        assert round(float(m.params_[name]), 3) == pytest.approx(pub[name], abs=1e-9), name
    assert round(m.log_likelihood_, 1) == pub["log_likelihood"]


def test_pymc_model_logp_and_dlogp_equal_the_kernel():
    pm = pytest.importorskip("pymc")
    import pandas as pd

    rng = np.random.default_rng(9)
    x, t_x, T = daily(rng, 500)
    frame = pd.DataFrame({"frequency": x, "recency": t_x, "T": T})
    fitted = clvbayes.ParetoNBDModel(frame)
    model = fitted.model
    logp = model.compile_logp(jacobian=False)
    dlogp = model.compile_dlogp(jacobian=False)
    rows = clvbayes.compress_rows(x, t_x, T)
    prep = g.prepare(*rows.columns)
    names = ("r", "alpha", "s", "beta")
    sigma = np.array([fitted._resolved_priors()[n].params["sigma"] for n in names])
    for th in [CDNOW, (1.0, 5.0, 2.0, 30.0)]:
        v, grad = g.loglik_sum_grad(*th, *rows.columns, rows.weights, *prep)
        prior = sum(float(pm.logp(pm.HalfNormal.dist(sigma=sg), val).eval()) for sg, val in zip(sigma, th, strict=True))
        point = {f"{n}_log__": math.log(val) for n, val in zip(names, th, strict=True)}
        assert logp(point) == pytest.approx(v + prior, rel=1e-13)
        # d/d(log θ) of loglik + log prior (HalfNormal: -θ²/(2σ²)) = θ (∂loglik - θ/σ²)
        thv = np.array(th)
        np.testing.assert_allclose(dlogp(point), thv * (grad - thv / sigma**2), rtol=1e-12)


def test_pointwise_block_and_loo_use_the_prepared_kernel():
    from clvbayes.comparison.loo import _loo_terms
    from clvbayes.comparison.pointwise import loglik_block, resolve_loglik_rows
    from clvbayes.comparison.psis import loo_rows, tail_length

    rng = np.random.default_rng(12)
    x, t_x, T = daily(rng, 300)
    draws = np.array([CDNOW, (1.0, 5.0, 2.0, 30.0), (0.3, 20.0, 0.2, 3.0)])
    kernel = resolve_loglik_rows("pnbd")
    out = loglik_block(kernel, draws, x, t_x, T)
    want = np.column_stack([reference_rows(th, x, t_x, T) for th in draws])
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=0)
    # LOO terms through the prepared-block path equal PSIS-LOO of the reference matrix
    draws = np.array(CDNOW) * np.exp(np.random.default_rng(13).normal(0, 0.05, (40, 4)))
    m = tail_length(40, 1.0)
    elpd, lppd, k, finite = _loo_terms(kernel, draws, x, t_x, T, m, 2**20)
    ref = np.column_stack([reference_rows(th, x, t_x, T) for th in draws])
    e2, l2, k2 = np.empty(x.size), np.empty(x.size), np.empty(x.size)
    loo_rows(np.ascontiguousarray(ref), m, e2, l2, k2)
    assert finite.all()
    np.testing.assert_allclose(elpd, e2, rtol=1e-11)
    np.testing.assert_allclose(k, k2, rtol=1e-9, atol=1e-9)


def test_stale_prepared_arrays_give_the_per_row_values():
    # data swapped without a new prepare(): every row the arrays do not describe is left to
    # the per-row kernel (no wrong value, no out-of-range read)
    rng = np.random.default_rng(13)
    x, t_x, T = daily(rng, 400)
    x2, t2, T2 = daily(np.random.default_rng(14), 900)
    for prep in [g.prepare(x, t_x, T), g.prepare(x[:3], t_x[:3], T[:3])]:
        rows = g.loglik_rows(*CDNOW, x2, t2, T2, *prep)
        np.testing.assert_allclose(rows, reference_rows(CDNOW, x2, t2, T2), rtol=1e-12, atol=0)


@njit(cache=True)
def _both_paths(r, alpha, s, beta, x, t_x, T, times, blk, ia, ib, bx, bg0, bn, off, nacc):
    """Per row ``(_table_rows' answer, _row's answer, accepted by _table_rows)``."""
    ttab, tab, bsc, bok = g._tables(r, alpha, s, beta, times, bx, bg0, bn, off, nacc, False)
    lsb = math.log(s / beta)
    fast = np.zeros((x.size, 5))
    slow = np.empty(x.size, dtype=np.int64)
    ns = g._table_rows(r, alpha, s, beta, 0, x.size, x, t_x, T, times, blk, ia, ib, bx, bg0, off, ttab, tab, bsc,
                       bok, nacc, lsb, fast, slow)
    accepted = np.ones(x.size, dtype=np.bool_)
    accepted[slow[:ns]] = False
    full = np.zeros((x.size, 5))
    for i in range(x.size):
        v = g._row(r, alpha, s, beta, i, x, t_x, T, times, blk, ia, ib, bx, bg0, off, ttab, tab, bsc, bok, nacc, lsb)
        for q in range(5):
            full[i, q] = v[q]
    return fast, full, accepted


@settings(max_examples=80, deadline=None)
@given(params, params, params, params, datasets(), st.sampled_from([1, g._NACC]))
def test_table_rows_give_the_row_function_bits(r, alpha, s, beta, data, nacc):
    """The loop over common rows (_table_rows) answers exactly the rows _row answers from the
    tables (never one that _row sends to the per-row kernel) and with the same bits."""
    x, t_x, T = data
    prep = g.prepare(x, t_x, T)
    fast, full, accepted = _both_paths(r, alpha, s, beta, x, t_x, T, *prep, nacc)
    ncol = 5 if nacc > 1 else 1
    np.testing.assert_array_equal(fast[accepted, :ncol], full[accepted, :ncol])
    # a row _table_rows accepts is one _row answers from the tables, not from the per-row kernel
    table_only = _TABLE_ONLY_ROWS(r, alpha, s, beta, x, t_x, T, *prep)
    assert not np.any(np.isnan(table_only[accepted]))


def test_daily_rows_mostly_take_the_table_loop():
    """The common daily row (t_x < T) is answered by _table_rows at CDNOW's estimates (the
    speed of the 10^6 fit rests on it)."""
    rng = np.random.default_rng(3)
    x, t_x, T = daily(rng, 4000)
    cols = clvbayes.compress_rows(x, t_x, T).columns
    fast, full, accepted = _both_paths(*CDNOW, *cols, *g.prepare(*cols), g._NACC)
    common = cols[1] < cols[2]
    assert accepted[common].mean() > 0.99
    np.testing.assert_array_equal(fast[accepted], full[accepted])
