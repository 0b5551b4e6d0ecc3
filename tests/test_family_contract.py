"""The contract every purchase-model family fulfils (clvbayes.families), checked for all.

Parametrised over every registered family, so a new model is held to the same checks the day
it is registered (the point of one protocol: PyMC-Marketing once needed an ``isinstance``
hotfix because one model's prediction API differed). The checks are identities that hold for
any BTYD model and need no per-family reference (each family's own test file compares its
cores with mpmath at high precision):

- the compiled array drivers equal a loop over the scalar cores (bit for bit);
- the gradient core equals central finite differences of the value core, and its value
  equals the value core;
- weighted compressed rows give the expanded rows' total and gradient;
- a new customer is a customer observed for no time (x = t_x = T = 0);
- the conditional quantities factorise as P(alive) x (the factor given alive): expected
  purchases, the pmf (plus the dead's zero) and DERT (the discounted factor at h = inf);
- the pmf sums to one and its mean is the expectation;
- simulation: new customers' counts against the pmf (chi-square), holdout replicates
  against the conditional expectation (Monte Carlo);
- the event-by-event simulator (``latent_one``, ``drops_out_one``, through
  :func:`clvbayes.simulate_customers`): the mean frequency against the closed-form expected
  purchases, the frequency distribution against the pmf (chi-square), the fraction truly
  alive at T and at T + h against P(alive) (tower property), the holdout counts against
  E[X(T+h)] - E[X(T)];
- the Op (Python and Numba backends) returns the drivers' value and gradient;
- the value engine's tables and block fill equal the cores.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

from clvbayes import simulate_customers
from clvbayes.families import family_names, get_family
from clvbayes.families.compiled import drivers_for
from clvbayes.kernels import clv as K
from clvbayes.models.ops import FamilyLogLik
from clvbayes.models.priors import Prior

FAMILIES = family_names()
# Parameter points in every family's order: near published CDNOW fits (weeks) and far away.
POINTS = [(0.4, 6.0, 0.8, 5.0), (1.7, 0.9, 2.6, 0.7), (0.08, 30.0, 0.3, 40.0)]
# Histories (x, t_x, T): no repeat, recent buyer, long-silent buyer, x = T = 0, t_x = T.
HISTORIES = [(0.0, 0.0, 30.0), (4.0, 35.0, 38.0), (9.0, 6.0, 70.0), (0.0, 0.0, 0.0), (2.0, 12.0, 12.0), (60.0, 50.0, 52.0)]


def _rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    T = rng.choice([0.0, 5.0, 20.0, 39.0, 52.0], n)
    x = np.where(T > 0, rng.poisson(2.0, n), 0).astype(float)
    t_x = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T * 7) / 7, 0.0)
    return x, t_x, T


@pytest.fixture(params=FAMILIES)
def family(request):
    return get_family(request.param)


def test_registry_lists_complete_families():
    assert "bgnbd" in FAMILIES
    for name in FAMILIES:
        fam = get_family(name)
        assert fam.name == name and len(fam.param_names) == 4
        priors = fam.default_priors(30.0)
        assert set(priors) == set(fam.param_names)
        assert all(isinstance(p, Prior) for p in priors.values())
    with pytest.raises(ValueError, match="Unknown model family 'nope'"):
        get_family("nope")


def test_drivers_equal_the_cores(family):
    d = drivers_for(family)
    rng = np.random.default_rng(1)
    x, t_x, T = _rows(rng, 300)
    t = np.array([0.0, 1.0, 13.0, 52.0])
    n = np.arange(6)
    delta = np.full(x.shape, 0.002)
    for th in POINTS:
        c = family.cores
        np.testing.assert_array_equal(
            d.p_alive(*th, x, t_x, T), [c["p_alive_one"](*th, *h) for h in zip(x, t_x, T, strict=True)])
        np.testing.assert_array_equal(d.expected_purchases(*th, t), [c["expected_purchases_one"](*th, v) for v in t])
        np.testing.assert_array_equal(d.pmf(*th, 13.0, n), [c["pmf_one"](*th, 13.0, int(k)) for k in n])
        np.testing.assert_array_equal(
            d.conditional_expected_purchases(*th, x, t_x, T, 13.0),
            [c["conditional_expected_purchases_one"](*th, *h, 13.0) for h in zip(x, t_x, T, strict=True)])
        np.testing.assert_array_equal(
            d.conditional_pmf(*th, x, t_x, T, 13.0, 2),
            [c["conditional_pmf_one"](*th, *h, 13.0, 2) for h in zip(x, t_x, T, strict=True)])
        np.testing.assert_array_equal(
            d.dert(*th, x, t_x, T, delta), [c["dert_one"](*th, *h, 0.002) for h in zip(x, t_x, T, strict=True)])
        rows = d.loglik_rows(*th, *d.loglik_data(x, t_x, T))
        ref = np.array([c["loglik_one"](*th, *h) for h in zip(x, t_x, T, strict=True)])
        np.testing.assert_allclose(rows, ref, rtol=1e-13, atol=0)


@pytest.mark.parametrize("th", POINTS)
def test_gradient_core_is_the_derivative_of_the_value_core(family, th):
    ll, grad = family.cores["loglik_one"], family.cores["loglik_grad_one"]
    for h in HISTORIES:
        out = grad(*th, *h)
        assert out[0] == pytest.approx(ll(*th, *h), rel=1e-13, abs=1e-13)
        for k in range(4):
            step = 1e-5 * th[k]
            up = list(th)
            dn = list(th)
            up[k] += step
            dn[k] -= step
            fd = (ll(*up, *h) - ll(*dn, *h)) / (2 * step)
            assert out[1 + k] == pytest.approx(fd, rel=1e-6, abs=1e-7), (family.name, k, h)


def test_weighted_rows_equal_expanded_rows(family):
    d = drivers_for(family)
    rng = np.random.default_rng(2)
    x, t_x, T = _rows(rng, 40)
    w = rng.integers(1, 9, x.size).astype(float)
    ex = [np.repeat(v, w.astype(int)) for v in (x, t_x, T)]
    for th in POINTS:
        v_w, g_w = d.loglik_sum_grad(*th, *d.loglik_data(x, t_x, T, w))
        v_e, g_e = d.loglik_sum_grad(*th, *d.loglik_data(*ex, np.ones(ex[0].size)))
        assert v_w == pytest.approx(v_e, rel=1e-12)
        np.testing.assert_allclose(g_w, g_e, rtol=1e-10, atol=1e-9)
        assert d.loglik_sum(*th, *d.loglik_data(x, t_x, T, w)) == v_w
        assert d.serial_loglik_sum_grad(*th, *d.loglik_data(x, t_x, T, w))[0] == v_w
    assert d.loglik_sum(-1.0, 1.0, 1.0, 1.0, *d.loglik_data(x, t_x, T, w)) == -math.inf


@pytest.mark.parametrize("th", POINTS)
def test_new_customer_is_a_customer_observed_for_no_time(family, th):
    c = family.cores
    for t in (0.5, 13.0, 104.0):
        assert c["expected_purchases_one"](*th, t) == pytest.approx(
            c["conditional_expected_purchases_one"](*th, 0.0, 0.0, 0.0, t), rel=1e-11)
        for n in (0, 1, 3):
            assert c["pmf_one"](*th, t, n) == pytest.approx(
                c["conditional_pmf_one"](*th, 0.0, 0.0, 0.0, t, n), rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("th", POINTS)
def test_conditional_quantities_are_p_alive_times_the_factor_given_alive(family, th):
    c = family.cores
    F = c["alive_factor_one"]
    for x, t_x, T in HISTORIES:
        pa = c["p_alive_one"](*th, x, t_x, T)
        assert 0.0 <= pa <= 1.0
        assert F(K.P_ALIVE, *th, x, T, 0.0, 10.0) == 1.0
        for t in (1.0, 26.0):
            assert c["conditional_expected_purchases_one"](*th, x, t_x, T, t) == pytest.approx(
                pa * F(K.PURCHASES, *th, x, T, 0.0, t), rel=1e-10)
            # no discounting over a finite horizon: the discounted factor is the purchases'
            assert F(K.DISCOUNTED, *th, x, T, 0.0, t) == pytest.approx(F(K.PURCHASES, *th, x, T, 0.0, t), rel=1e-10)
            for n in (0, 2):
                assert c["conditional_pmf_one"](*th, x, t_x, T, t, n) == pytest.approx(
                    pa * F(K.PMF + n, *th, x, T, 0.0, t) + (1.0 - pa) * (n == 0), rel=1e-10, abs=1e-300)
            drop = F(K.DROPOUT, *th, x, T, 0.0, t)
            assert 0.0 <= drop <= 1.0
        for delta in (0.001, 0.02):
            assert c["dert_one"](*th, x, t_x, T, delta) == pytest.approx(
                pa * F(K.DISCOUNTED, *th, x, T, delta, math.inf), rel=1e-9)
            # the discounted factor grows with the horizon towards the DERT factor
            assert F(K.DISCOUNTED, *th, x, T, delta, 52.0) <= F(K.DISCOUNTED, *th, x, T, delta, math.inf) * (1 + 1e-12)


@pytest.mark.parametrize("th", POINTS[:2])
def test_pmf_sums_to_one_and_has_the_expected_mean(family, th):
    c = family.cores
    for x, t_x, T in HISTORIES[:3]:
        t = 8.0
        p = np.array([c["conditional_pmf_one"](*th, x, t_x, T, t, n) for n in range(400)])
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        assert (p * np.arange(400)).sum() == pytest.approx(c["conditional_expected_purchases_one"](*th, x, t_x, T, t), rel=1e-8)


@pytest.mark.parametrize("th", POINTS[:2])
def test_simulated_new_customers_follow_the_pmf(family, th):
    d = drivers_for(family)
    T = np.full(20_000, 26.0)
    x, t_x = d.calibration_replicates(*(np.array([v]) for v in th), T, 11)
    x = x[0]
    assert (t_x[0] <= T).all() and ((x > 0) | (t_x[0] == 0)).all()
    probs = d.pmf(*th, 26.0, np.arange(8))
    observed = np.bincount(np.minimum(x, 8), minlength=9)
    expected = np.append(probs, max(1.0 - probs.sum(), 0.0)) * x.size
    keep = expected > 5
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4
    mean = float(d.expected_purchases(*th, np.array([26.0]))[0])
    assert abs(x.mean() - mean) < 5 * x.std() / math.sqrt(x.size)


@pytest.mark.parametrize("th", POINTS[:2])
def test_holdout_replicates_have_the_conditional_mean(family, th):
    d = drivers_for(family)
    for x, t_x, T in HISTORIES[:3]:
        n = 20_000
        reps = d.holdout_replicates(*(np.array([v]) for v in th), np.full(n, x), np.full(n, t_x), np.full(n, T), 20.0, 5)
        mean = family.cores["conditional_expected_purchases_one"](*th, x, t_x, T, 20.0)
        sd = max(reps.std(), 1e-3)
        assert abs(reps.mean() - mean) < 5 * sd / math.sqrt(n), (x, t_x, T)


def _z(sample: np.ndarray, expected: float) -> float:
    """Monte Carlo z-score of a sample mean against its expectation."""
    sample = np.asarray(sample, float)
    return abs(sample.mean() - expected) / (sample.std(ddof=1) / math.sqrt(sample.size))


@pytest.mark.parametrize("th", POINTS[:2])
def test_event_simulator_follows_the_closed_forms(family, th):
    c = family.cores
    T, h, n = 26.0, 13.0, 40_000
    df = simulate_customers(*th, model=family.name, T=T, n_customers=n, holdout=h, seed=17)
    x = df["frequency"].to_numpy()
    # E[X(T)] and the holdout's E[X(T+h)] - E[X(T)] (the holdout is unconditional here)
    assert _z(x, c["expected_purchases_one"](*th, T)) < 4.5
    assert _z(df["frequency_holdout"], c["expected_purchases_one"](*th, T + h) - c["expected_purchases_one"](*th, T)) < 4.5
    # P(X(T) = k), the sparse tail pooled
    probs = np.array([c["pmf_one"](*th, T, k) for k in range(200)])
    expected = n * probs
    kmax = int(np.nonzero(expected >= 20)[0].max())
    observed = np.bincount(np.minimum(x, kmax), minlength=kmax + 1)
    expected = np.append(expected[:kmax], n - expected[:kmax].sum())
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    # tower property: E[1{alive at T}] = E[P(alive | x, t_x, T)], and at T + h
    # E[1{alive at T+h}] = E[P(alive | history) (1 - P(drop out in (T, T+h] | alive at T))]
    hist = zip(x.astype(float), df["recency"], df["T"], strict=True)
    pa = np.array([c["p_alive_one"](*th, *hh) for hh in hist])
    stay = np.array([1.0 - c["alive_factor_one"](K.DROPOUT, *th, float(k), T, 0.0, h) for k in x])
    alive = df["true_alive"].to_numpy()
    assert _z(alive.astype(float) - pa, 0.0) < 4.5
    assert _z(df["true_alive_holdout"].to_numpy(float) - pa * stay, 0.0) < 4.5
    # the dead buy nothing and stay dead; recency is a purchase time in (0, T]
    assert (df["frequency_holdout"].to_numpy()[~alive] == 0).all()
    assert not (df["true_alive_holdout"].to_numpy() & ~alive).any()
    rec = df["recency"].to_numpy()
    assert ((rec > 0) == (x > 0)).all() and (rec <= T).all()
    # the latent draws have the prior means: λ ~ Gamma(r, rate α)
    assert _z(df["true_lambda"], th[0] / th[1]) < 4.5
    assert [col for col in df.columns if col.startswith("true_")] == [
        *(f"true_{name}" for name in family.latent_names), "true_alive", "true_alive_holdout"]


def test_event_simulator_takes_the_parameters_by_position_or_name(family):
    th = POINTS[0]
    by_pos = simulate_customers(*th, 13.0, model=family, n_customers=500, seed=3)
    by_name = simulate_customers(**dict(zip(family.param_names, th, strict=True)), T=13.0, model=family.name,
                                 n_customers=500, seed=3)
    pd.testing.assert_frame_equal(by_pos, by_name)
    with pytest.raises(TypeError, match="missing"):
        simulate_customers(**dict(zip(family.param_names[:3], th, strict=False)), T=13.0, model=family.name,
                           n_customers=5, seed=3)
    with pytest.raises(TypeError, match="Unexpected"):
        simulate_customers(*th, T=13.0, model=family.name, n_customers=5, seed=3, nope=1.0)


@pytest.mark.parametrize("mode", [None, "NUMBA"])
def test_op_returns_the_drivers_value_and_gradient(family, mode):
    d = drivers_for(family)
    rng = np.random.default_rng(3)
    x, t_x, T = _rows(rng, 50)
    w = np.ones_like(x)
    ps = [pt.dscalar(n) for n in family.param_names]
    data = d.loglik_data(x, t_x, T, w)
    val = FamilyLogLik(family.name)(*ps, *data)
    f = pytensor.function(ps, [val, *pytensor.grad(val, ps)], mode=mode)
    for th in POINTS:
        out = f(*th)
        v, g = d.loglik_sum_grad(*th, *data)
        assert float(out[0]) == v
        np.testing.assert_array_equal(np.array([float(o) for o in out[1:]]), g)


def test_value_engine_tables_and_fill_equal_the_cores(family):
    d = drivers_for(family)
    c = family.cores
    rng = np.random.default_rng(4)
    x, t_x, T = _rows(rng, 60)
    ux, inv = np.unique(np.stack([x, T], 1), axis=0, return_inverse=True)
    uxx, uT = np.ascontiguousarray(ux[:, 0]), np.ascontiguousarray(ux[:, 1])
    ud = np.full(uxx.size, 0.003)
    theta = [np.array([p[k] for p in POINTS]) for k in range(4)]
    ones = np.ones(len(POINTS))
    m = np.full(x.size, 30.0)
    margin = np.ones(x.size)
    for code, h in ((K.PURCHASES, 13.0), (K.DISCOUNTED, math.inf), (K.DROPOUT, 26.0), (K.PMF + 1, 13.0)):
        tab = d.factor_table(code, *theta, uxx, uT, ud, h)
        ref = np.array([[c["alive_factor_one"](code, *[tk[i] for tk in theta], uxx[k], uT[k], ud[k], h)
                         for k in range(uxx.size)] for i in range(len(POINTS))])
        np.testing.assert_allclose(tab, ref, rtol=5e-12, atol=1e-300)
        out = np.empty((len(POINTS), x.size))
        alive = np.empty_like(out)
        d.fill(code, *theta, ones, ones * 3.0, ones, tab, uxx, uT, inv.astype(np.int64).ravel(), t_x, m, margin,
               out, alive, True)
        pa = np.array([[c["p_alive_one"](*[tk[i] for tk in theta], x[j], t_x[j], T[j]) for j in range(x.size)]
                       for i in range(len(POINTS))])
        np.testing.assert_allclose(alive, pa, rtol=1e-13, atol=1e-300)
        expect = pa * tab[:, inv.ravel()] + ((1.0 - pa) if code == K.PMF else 0.0)
        np.testing.assert_allclose(out, expect, rtol=1e-12, atol=1e-300)


def test_generic_value_engine_reproduces_bgnbd_fast_tables():
    """BG/NBD's Chebyshev tables (its fast path) against the generic key-by-key build.

    Measured here: <= 1.3e-14 relative for expected purchases, <= 3.4e-12 for discounted
    purchases over a year, <= 1.6e-11 for the DERT factor (h = inf) at (1.7, 0.9, 2.6, 0.7):
    the coefficient-tail test (1e-12 on ln F) underestimates the interpolation error there.
    """
    from clvbayes.kernels import build

    fam = get_family("bgnbd")
    generic = build.rebuild(K.family_factor_table, replace={"_alive_factor_one": fam.cores["alive_factor_one"]},
                            tag="contract_test")
    rng = np.random.default_rng(5)
    x = rng.poisson(2.0, 3000).astype(float)
    T = rng.integers(0, 365, 3000) / 7.0
    ux, uT = (np.ascontiguousarray(v) for v in np.unique(np.stack([x, T], 1), axis=0).T)
    ud = np.full(ux.size, 0.002)
    theta = [np.array([p[k] for p in POINTS]) for k in range(4)]
    for code, h in ((K.PURCHASES, 52.0), (K.DISCOUNTED, math.inf)):
        np.testing.assert_allclose(K.clv_factor_table(code, *theta, ux, uT, ud, h),
                                   generic(code, *theta, ux, uT, ud, h), rtol=3e-11)
