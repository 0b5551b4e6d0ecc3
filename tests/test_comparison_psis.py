"""PSIS (clvbayes.comparison.psis) against ArviZ's psislw, the reference implementation.

ArviZ 0.23 ``psislw`` / ``_gpdfit`` are called as the reference; our code is written
independently. Log weights and Pareto k must agree to 1e-10 on random matrices (hypothesis),
heavy tails (k > 0.7, k > 1), tiny samples (no tail fit: k = inf) and real BG/NBD
log-likelihood matrices.
"""

import warnings

import arviz as az
import numpy as np
import pytest
from arviz.stats.stats import _gpdfit
from hypothesis import given, settings
from hypothesis import strategies as st

import clvbayes
from clvbayes.comparison.psis import gpdfit, psislw, tail_length
from clvbayes.kernels.bgnbd import bgnbd_loglik

TOL = 1e-10


def arviz_psislw(lr, reff):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return az.psislw(lr, reff)


def assert_same_as_arviz(lr, reff):
    lw, k = psislw(lr, reff)
    lw_ref, k_ref = arviz_psislw(lr, reff)
    np.testing.assert_array_equal(np.isinf(k), np.isinf(k_ref))
    fin = np.isfinite(k_ref)
    np.testing.assert_allclose(k[fin], k_ref[fin], rtol=0, atol=TOL)
    np.testing.assert_array_equal(np.isnan(lw), np.isnan(lw_ref))
    ok = ~np.isnan(lw_ref)
    np.testing.assert_allclose(lw[ok], lw_ref[ok], rtol=0, atol=TOL)
    return k_ref


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    rows=st.integers(1, 4),
    S=st.integers(2, 3000),
    scale=st.floats(1e-3, 30.0),
    df=st.floats(0.5, 30.0),
    reff=st.floats(0.05, 1.5),
    seed=st.integers(0, 2**31),
)
def test_psislw_matches_arviz_random(rows, S, scale, df, reff, seed):
    rng = np.random.default_rng(seed)
    lr = scale * rng.standard_t(df, size=(rows, S))
    assert_same_as_arviz(lr, reff)


@pytest.mark.parametrize("shape", [0.3, 0.7, 1.0, 1.5, 3.0])
def test_heavy_tails(shape):
    # ratios w = Pareto(shape): the tail index is 1/shape, so k ~ 1/shape: up to k > 1
    rng = np.random.default_rng(7)
    lr = np.log(rng.pareto(shape, size=(6, 4000)) + 1.0)
    k = assert_same_as_arviz(lr, 0.9)
    if shape <= 1.0:
        assert (k > 0.7).all()
    if shape <= 0.7:
        assert (k > 1).all()


def test_tiny_samples_and_ties():
    rng = np.random.default_rng(3)
    for S in (2, 3, 10, 20):  # at most 4 tail draws: no fit, k = inf, weights only normalised
        lr = rng.standard_normal((3, S))
        lw, k = psislw(lr)
        assert np.isinf(k).all()
        assert_same_as_arviz(lr, 1.0)
    # constant and two-valued rows: ties at the cutoff stay in the body
    lr = np.vstack([np.zeros(1000), np.repeat([0.0, 1.0], 500)])
    assert_same_as_arviz(lr, 1.0)
    # ties inside the tail: tied draws share the smoothed values in an arbitrary order, so
    # compare the smoothed values sorted within each group of equal raw ratios
    lr = np.round(rng.standard_normal((3, 1000)), 1)
    lw, k = psislw(lr)
    lw_ref, k_ref = arviz_psislw(lr, 1.0)
    np.testing.assert_allclose(k, k_ref, rtol=0, atol=TOL)
    for i in range(lr.shape[0]):
        order, order_ref = np.lexsort((lw[i], lr[i])), np.lexsort((lw_ref[i], lr[i]))
        np.testing.assert_allclose(lw[i][order], lw_ref[i][order_ref], rtol=0, atol=TOL)


def test_bgnbd_loglik_matrices(cdnow_split):
    # real pointwise log-likelihoods: CDNOW customers under draws around the MLE, ratios 1/p
    mle = clvbayes.BetaGeoModel(cdnow_split).fit_mle().params_.to_numpy()
    x, t_x, T = (cdnow_split[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    rng = np.random.default_rng(11)
    for jitter, S in ((0.05, 2000), (0.4, 1000)):
        draws = mle * np.exp(jitter * rng.standard_normal((S, 4)))
        ll = np.column_stack([bgnbd_loglik(*d, x[:400], t_x[:400], T[:400]) for d in draws])
        k = assert_same_as_arviz(-ll, 0.8)
        assert np.isfinite(k).all()
    assert (k > 0.7).any()  # the wide posterior has unreliable customers


def test_tail_length_and_gpdfit_match_arviz():
    for S in (5, 100, 1000, 4000, 12345):
        for reff in (0.1, 0.5, 1.0, 2.0):
            assert tail_length(S, reff) == int(np.ceil(min(S / 5.0, 3 * (S / reff) ** 0.5)))
    rng = np.random.default_rng(5)
    for n, c in ((5, 0.5), (50, 1.0), (190, 0.2), (800, 2.0)):
        z = np.sort(rng.pareto(1 / c, n) + 1e-3)
        k, sigma = gpdfit(z)
        with np.errstate(all="ignore"):
            k_ref, sigma_ref = _gpdfit(z)
        assert k == pytest.approx(k_ref, abs=1e-12) and sigma == pytest.approx(sigma_ref, rel=1e-12)


def test_psislw_refuses_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        psislw(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="finite"):
        psislw(np.array([[0.0, np.inf, 1.0]]))
    with pytest.raises(ValueError, match="r_eff"):
        psislw(np.zeros((1, 10)), r_eff=0.0)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(S=st.integers(1, 6000), frac=st.floats(0.0, 1.0), levels=st.integers(0, 5),
       layout=st.sampled_from(["random", "ascending", "descending", "organ", "constant"]),
       seed=st.integers(0, 2**31))
def test_largest_values_selection(S, frac, levels, layout, seed):
    # the tail selection returns the m largest values: _select_largest puts them (as a
    # multiset) last, _top_sorted returns them in ascending order, as np.sort; also with many
    # ties (levels > 0: few distinct values) and orders that defeat a naive quickselect
    from clvbayes.comparison.psis import _select_largest, _top_sorted

    rng = np.random.default_rng(seed)
    v = rng.standard_normal(S)
    if levels:
        v = np.round(v * levels) / levels
    if layout == "ascending":
        v = np.sort(v)
    elif layout == "descending":
        v = np.sort(v)[::-1].copy()
    elif layout == "organ":  # ascending then descending
        v = np.concatenate([np.sort(v[: S // 2]), np.sort(v[S // 2:])[::-1]])
    elif layout == "constant":
        v = np.full(S, v[0])
    m = min(S, max(1, int(frac * S)))
    expected = np.sort(v)[S - m:]
    w = v.copy()
    _select_largest(w, m)
    np.testing.assert_array_equal(np.sort(w), np.sort(v))  # a permutation
    np.testing.assert_array_equal(np.sort(w[S - m:]), expected)
    before = v.copy()
    top = _top_sorted(v, m, np.empty(S))
    np.testing.assert_array_equal(v, before)
    np.testing.assert_array_equal(top, expected)
