"""Tests of the customer-value layer (clvbayes.value): CLV, equity, concentration, churn,
lifecycle.

Independent references: the models' own point predictions (P(alive), FHL 2005 eq. 10, the
DERT kernel, Gamma-Gamma eq. 5), the scalar kernel ``clv_one`` on the paired draws, numpy
and arviz on the full (draw x customer) matrix, and identities that must hold exactly
(totals = sums, streamed = full, CLV + lost = value if alive).
"""

from __future__ import annotations

import math

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvbayes as cb
from clvbayes.data.validate import DataValidationError
from clvbayes.kernels import clv as K
from clvbayes.value import (
    churn_analysis,
    customer_equity,
    customer_lifetime_value,
    customer_metrics,
    dert,
    expected_purchases,
    expected_spend,
    lifecycle_stages,
    new_customer_value,
    probability_alive,
    probability_of_purchases,
    stage_summary,
    value_concentration,
)
from clvbayes.value.customers import continuous_rate
from clvbayes.value.draws import GG_PARAMS, ParameterDraws, joint_draws, parameter_draws

WEEK_RATE = math.log(1.1) * 7 / 365.25  # δ per week for 10% a year


@pytest.fixture(scope="module")
def rfm():
    tx = cb.datasets.load_cdnow_sample()
    return cb.calibration_holdout_split(tx, calibration_end="1997-09-30", observation_end="1998-06-30")


@pytest.fixture(scope="module")
def mle(rfm):
    return cb.BetaGeoModel(rfm).fit_mle(), cb.GammaGammaModel(rfm).fit_mle()


def _posterior(params: dict[str, float], chains: int, draws: int, seed: int) -> az.InferenceData:
    """Posterior-like draws: a few % of lognormal jitter around the estimates."""
    rng = np.random.default_rng(seed)
    return az.InferenceData(posterior=xr.Dataset({
        k: (("chain", "draw"), v * np.exp(0.04 * rng.standard_normal((chains, draws)))) for k, v in params.items()
    }))


@pytest.fixture(scope="module")
def bayes(rfm, mle):
    bg = cb.BetaGeoModel(rfm)
    bg.idata_ = _posterior(dict(mle[0].params_), 2, 60, 1)
    gg = cb.GammaGammaModel(rfm)
    gg.idata_ = _posterior(dict(mle[1].params_), 3, 50, 2)  # other grid: paired by thinning
    return bg, gg


# -- point estimates reproduce the models' own predictions ------------------------------------
def test_mle_matches_model_predictions(rfm, mle):
    bg, gg = mle
    res = customer_metrics(bg, gg, rfm, quantities=("p_alive", "expected_purchases", "clv", "spend"),
                           horizons={"expected_purchases": 39.0}, discount_rate=0.1, margin=0.3)
    np.testing.assert_allclose(res["p_alive"].summary["mean"], bg.probability_alive(rfm), rtol=1e-13)
    np.testing.assert_allclose(res["expected_purchases"].summary["mean"], bg.expected_purchases(39.0, rfm), rtol=1e-9)
    np.testing.assert_allclose(res["spend"].summary["mean"], 0.3 * gg.expected_spend(rfm), rtol=1e-13)
    ref = 0.3 * bg.dert(WEEK_RATE, rfm) * gg.expected_spend(rfm)
    np.testing.assert_allclose(res["clv"].summary["mean"], ref, rtol=1e-8)
    assert res["clv"].settings["source"] == "point" and res["clv"].summary["sd"].isna().all()
    assert (res["clv"].summary["hdi_3%"] == res["clv"].summary["mean"]).all()


def test_discount_convention():
    assert continuous_rate(np.array([0.1]), "W")[0] == pytest.approx(WEEK_RATE, rel=1e-15)
    assert continuous_rate(np.array([0.1]), "D")[0] == pytest.approx(math.log(1.1) / 365.25, rel=1e-15)
    # one year of weeks discounts by exactly 1/(1+d)
    assert math.exp(-continuous_rate(np.array([0.1]), "W")[0] * 365.25 / 7) == pytest.approx(1 / 1.1)


def test_zero_discount_finite_horizon_is_purchases_times_spend(rfm, mle):
    bg, gg = mle
    clv = customer_lifetime_value(bg, gg, rfm, horizon=52.0, discount_rate=0.0, margin=0.25)
    ref = 0.25 * bg.expected_purchases(52.0, rfm) * gg.expected_spend(rfm)
    np.testing.assert_allclose(clv.summary["mean"], ref, rtol=1e-9)


def test_dert_function(rfm, mle):
    d = dert(mle[0], rfm, discount_rate=0.1)
    np.testing.assert_allclose(d.summary["mean"], mle[0].dert(WEEK_RATE, rfm), rtol=1e-8)


# -- posterior draws ---------------------------------------------------------------------------
def test_joint_draws_pairing(bayes):
    bg, gg = bayes
    j = joint_draws(bg, gg)
    assert j.shape == (2, 60) and j.source == "posterior"
    np.testing.assert_array_equal(j["r"], bg.idata_.posterior["r"].to_numpy().reshape(-1))
    gflat = gg.idata_.posterior["p"].to_numpy().reshape(-1)  # 150 draws thinned evenly to 120
    np.testing.assert_array_equal(j["p"], gflat[np.floor(np.arange(120) * 150 / 120).astype(int)])
    t = joint_draws(bg, gg, n_draws=30)
    assert t.shape == (2, 15)
    np.testing.assert_array_equal(t.draw, bg.idata_.posterior["draw"].to_numpy()[::4])


def test_draws_in_place_of_models_give_the_same_values(rfm, bayes):
    """The value functions take a model's ParameterDraws where they take the model (the Dask
    workers' path): the purchase and spend parts of the joint draws pair back identically."""
    bg, gg = bayes
    j = joint_draws(bg, gg, n_draws=40)
    purchase, spend = j.select(bg.family.param_names, bg.family.name), j.select(GG_PARAMS)
    assert set(purchase.values) == {"r", "alpha", "a", "b"} and purchase.family == "bgnbd"
    assert set(spend.values) == {"p", "q", "gamma"} and spend.family is None
    back = joint_draws(purchase, spend)
    assert back.values.keys() == j.values.keys() and back.source == j.source and back.family == j.family
    for k in j.values:
        np.testing.assert_array_equal(back[k], j[k])
    np.testing.assert_array_equal(back.draw, j.draw)
    assert parameter_draws(purchase) is purchase
    kw = dict(quantities=("clv", "p_alive", "expected_purchases"), horizon=26.0, segment=None)
    by_model = customer_metrics(bg, gg, rfm, n_draws=40, **kw)
    by_draws = customer_metrics(purchase, spend, rfm, **kw)
    for q in by_model:
        pd.testing.assert_frame_equal(by_model[q].summary, by_draws[q].summary)
        np.testing.assert_array_equal(by_model[q].totals, by_draws[q].totals)
    # spend alone: the Gamma-Gamma draws, no purchase parameters, no stand-in model
    sp = expected_spend(gg, rfm)
    assert isinstance(sp.parameter_draws, ParameterDraws) and set(sp.parameter_draws.values) == set(GG_PARAMS)
    pd.testing.assert_frame_equal(sp.summary, expected_spend(parameter_draws(gg), rfm).summary)
    with pytest.raises(ValueError, match="carry no customers"):
        customer_metrics(purchase, None, quantities=("p_alive",))
    with pytest.raises(ValueError, match="need a fitted purchase model"):
        customer_metrics(None, gg, rfm, quantities=("spend", "p_alive"))
    with pytest.raises(ValueError, match="needs a purchase model"):
        joint_draws(None, None)


def test_clv_draws_equal_scalar_kernel_on_paired_draws(rfm, bayes):
    bg, gg = bayes
    clv = customer_lifetime_value(bg, gg, rfm, horizon=52.0, discount_rate=0.1, margin=0.3, keep_draws=True)
    j = joint_draws(bg, gg)
    full = clv.draws.to_numpy().reshape(j.n, -1)
    x, tx, T, m = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value"))
    for d in (0, 37, 119):
        th = [j[k][d] for k in ("r", "alpha", "a", "b", "p", "q", "gamma")]
        for i in (0, 5, 100, 2000):
            ref = K.clv_one(K.CLV, *th, x[i], tx[i], T[i], m[i], 0.3, WEEK_RATE, 52.0)
            assert full[d, i] == pytest.approx(ref, rel=1e-10)


def test_streamed_equals_full_matrix(rfm, bayes):
    bg, gg = bayes
    kw = dict(horizon=52.0, discount_rate=0.1, margin=0.3, quantiles=(0.1, 0.5, 0.9))
    full = customer_lifetime_value(bg, gg, rfm, keep_draws=True, **kw)
    small = customer_lifetime_value(bg, gg, rfm, keep_draws=False, block_size=97, **kw)
    pd.testing.assert_frame_equal(full.summary, small.summary, rtol=0, atol=0)
    np.testing.assert_array_equal(full.totals.to_numpy(), small.totals.to_numpy())
    mat = full.draws.stack(sample=("chain", "draw")).transpose("sample", "customer_id").to_numpy()
    np.testing.assert_allclose(full.summary["mean"], mat.mean(0), rtol=1e-13)
    np.testing.assert_allclose(full.summary["sd"], mat.std(0, ddof=1), rtol=1e-10)
    np.testing.assert_allclose(full.summary["q90%"], np.quantile(mat, 0.9, axis=0), rtol=1e-13)
    hdi = az.hdi(full.draws, hdi_prob=0.94)["clv"].to_numpy()
    np.testing.assert_allclose(full.summary[["hdi_3%", "hdi_97%"]].to_numpy(), hdi, rtol=1e-13)


def test_equity_is_sum_of_customer_values_per_draw(rfm, bayes):
    bg, gg = bayes
    clv = customer_lifetime_value(bg, gg, rfm, horizon=52.0, keep_draws=True)
    assert clv.settings["segment"] == "cohort" and list(clv.totals["segment"].values) == ["1997-01", "1997-02", "1997-03"]
    np.testing.assert_allclose(clv.total, clv.draws.sum("customer_id"), rtol=1e-12)
    eq = customer_equity(clv)
    np.testing.assert_allclose(eq.total, clv.draws.sum("customer_id"), rtol=1e-12)
    cohort = pd.to_datetime(rfm["first_purchase"]).dt.to_period("M").astype(str)
    for label in ("1997-01", "1997-03"):
        ids = cohort.index[cohort == label]
        np.testing.assert_allclose(
            eq.by_segment.sel(segment=label), clv.draws.sel(customer_id=ids).sum("customer_id"), rtol=1e-12
        )
    assert eq.summary.loc["total", "customers"] == len(rfm)
    assert eq.summary["share"].iloc[:-1].sum() == pytest.approx(1.0)


def test_equity_grows_with_horizon_and_margin(rfm, bayes):
    bg, gg = bayes
    tot = {}
    for h in (13.0, 52.0, 260.0, math.inf):
        for mg in (0.2, 0.4):
            c = customer_lifetime_value(bg, gg, rfm, horizon=h, margin=mg, discount_rate=0.1, segment=None)
            tot[h, mg] = c.total.to_numpy().reshape(-1)
    for mg in (0.2, 0.4):
        for h0, h1 in ((13.0, 52.0), (52.0, 260.0), (260.0, math.inf)):
            assert (tot[h1, mg] > tot[h0, mg]).all()
    np.testing.assert_allclose(tot[52.0, 0.4], 2 * tot[52.0, 0.2], rtol=1e-13)


def test_per_customer_margin_and_discount(rfm, mle):
    bg, gg = mle
    rng = np.random.default_rng(3)
    margin = pd.Series(rng.uniform(0.1, 0.5, len(rfm)), index=rfm.index)
    rate = pd.Series(rng.choice([0.05, 0.2], len(rfm)), index=rfm.index)
    shuffled = customer_lifetime_value(bg, gg, rfm, margin=margin.sample(frac=1, random_state=1),
                                       discount_rate=rate.sample(frac=1, random_state=2))
    arrays = customer_lifetime_value(bg, gg, rfm, margin=margin.to_numpy(), discount_rate=rate.to_numpy())
    pd.testing.assert_frame_equal(shuffled.summary, arrays.summary)
    delta = math.log(1.2) * 7 / 365.25
    i = int(np.flatnonzero(rate.to_numpy() == 0.2)[0])
    ref = margin.iloc[i] * bg.dert(delta, rfm.iloc[[i]]).iloc[0] * gg.expected_spend(rfm.iloc[[i]]).iloc[0]
    assert arrays.summary["mean"].iloc[i] == pytest.approx(ref, rel=1e-8)


def test_other_quantities(rfm, mle, bayes):
    bg, gg = mle
    pa = probability_alive(bg, rfm, segment=None)
    assert pa.total_summary()["mean"] == pytest.approx(bg.probability_alive(rfm).sum())
    ep = expected_purchases(bayes[0], rfm, horizon=39.0)
    assert ep.settings["n_draws"] == 120 and (ep.summary["sd"] > 0).all()
    p0 = probability_of_purchases(bg, rfm, horizon=39.0, n=0)
    p1 = probability_of_purchases(bg, rfm, horizon=39.0, n=1)
    ref0 = bg.probability_of_n_purchases(39.0, 0, rfm)
    np.testing.assert_allclose(p0.summary["mean"], ref0, rtol=1e-10)
    assert ((p0.summary["mean"] + p1.summary["mean"]) <= 1 + 1e-12).all()
    sp = expected_spend(bayes[1], rfm)
    assert sp.parameter_draws.shape == (3, 50)


# -- equity comparisons ----------------------------------------------------------------------
def test_new_customer_value_and_cac(rfm, bayes):
    bg, gg = bayes
    clv = customer_lifetime_value(bg, gg, rfm, horizon=52.0, discount_rate=0.1, margin=0.3)
    v = new_customer_value(clv)
    j = joint_draws(bg, gg)
    for d in (0, 50, 119):
        th = [j[k][d] for k in ("r", "alpha", "a", "b", "p", "q", "gamma")]
        spend = 0.3 * th[4] * th[6] / (th[5] - 1)
        f = K.alive_factor_one(K.DISCOUNTED, *th[:4], 0.0, 0.0, WEEK_RATE, 52.0)
        assert v[d] == pytest.approx(spend * (1 + f), rel=1e-10)
    eq = customer_equity(clv, acquisition_cost=20.0, retention_cost=5.0, payback_probability=0.8)
    acq = eq.acquisition.iloc[0]
    assert acq["p_payback"] == pytest.approx(np.mean(v > 20.0))
    assert acq["max_cac_at_0.8"] == pytest.approx(np.quantile(v, 0.2))
    assert acq["ratio_mean"] == pytest.approx(np.mean(v) / 20.0)
    tot = eq.total.to_numpy().reshape(-1)
    ret = eq.retention.loc["total"]
    assert ret["net_equity_mean"] == pytest.approx(tot.mean() - 5.0 * len(rfm))
    assert ret["p_net_positive"] == pytest.approx(np.mean(tot > 5.0 * len(rfm)))
    assert ret["max_retention_cost_at_0.8"] == pytest.approx(np.quantile(tot / len(rfm), 0.2))
    # from models directly: same numbers
    eq2 = customer_equity(bg, gg, rfm, horizon=52.0, discount_rate=0.1, margin=0.3, acquisition_cost=20.0,
                          payback_probability=0.8)
    pd.testing.assert_frame_equal(eq2.acquisition, eq.acquisition)


def test_value_concentration(rfm, bayes):
    bg, gg = bayes
    kept = customer_lifetime_value(bg, gg, rfm, horizon=52.0, keep_draws=True)
    streamed = customer_lifetime_value(bg, gg, rfm, horizon=52.0, keep_draws=False)
    a = value_concentration(kept, shares=(0.2, 0.05, 1.0))
    b = value_concentration(streamed, shares=(0.2, 0.05, 1.0))
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)
    assert list(a.index) == [0.05, 0.2, 1.0] and a.loc[1.0, "mean"] == pytest.approx(1.0)
    # reference: rank by posterior mean, per-draw share of the top 20%
    mat = kept.draws.to_numpy().reshape(-1, len(rfm))
    top = np.argsort(-mat.mean(0), kind="stable")[: math.ceil(0.2 * len(rfm))]
    share = mat[:, top].sum(1) / mat.sum(1)
    assert a.loc[0.2, "mean"] == pytest.approx(share.mean(), rel=1e-12)
    assert a.loc[0.05, "mean"] < a.loc[0.2, "mean"] < 1.0


# -- churn and lifecycle ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def churn(rfm, bayes):
    bg, gg = bayes
    return churn_analysis(bg, gg, rfm, period=13.0, contact_cost=2.0, horizon=52.0, margin=0.3)


def test_churn_definitions(rfm, bayes, churn):
    bg, gg = bayes
    c = churn.customers
    m = customer_metrics(bg, gg, rfm, quantities=("clv", "lost_value", "p_alive"), horizon=52.0, margin=0.3,
                         discount_rate=0.1, keep_draws=True)
    # value if alive = CLV + lost value; P(alive)-based write-off with threshold c/(c+V)
    np.testing.assert_allclose(c["value_if_alive"], m["clv"].summary["mean"] + m["lost_value"].summary["mean"], rtol=1e-12)
    np.testing.assert_allclose(c["lost_threshold"], 2.0 / (2.0 + c["value_if_alive"]), rtol=1e-14)
    assert (c["lost"] == (c["p_alive"] < c["lost_threshold"])).all()
    # churn damage per draw = Σ P(dead) x value if alive; churn rate = dropouts / alive per draw
    dmg = churn.draws["churn_damage"].sum("segment")
    np.testing.assert_allclose(dmg, m["lost_value"].draws.sum("customer_id"), rtol=1e-12)
    rate = churn.draws["churn_rate"]
    np.testing.assert_allclose(rate, churn.draws["dropouts"] / churn.draws["alive"], rtol=1e-14)
    # value at risk = CLV of the at-risk customers, per draw
    ids = c.index[c["at_risk"]]
    var = churn.draws["value_at_risk"].sum("segment")
    np.testing.assert_allclose(var, m["clv"].draws.sel(customer_id=ids).sum("customer_id"), rtol=1e-12)
    top = c["value_if_alive"].rank(ascending=False, method="first") <= math.ceil(0.2 * len(c))
    slipping = ~c["lost"] & ((c["p_alive"] < 0.7) | (c["p_dropout_given_alive"] >= 0.1))
    assert (c["slipping"] == slipping).all() and (c["at_risk"] == (slipping & top)).all()
    assert c["at_risk"].any() and (c["slipping"] & ~c["at_risk"]).any()
    assert churn.summary.loc["total", "customers"] == len(rfm)
    assert 0 < churn.summary.loc["total", "churn_rate_mean"] < 1


def test_expected_dropouts_match_simulation(mle):
    # Alive-at-T customers simulated forward with the point estimates: the share that drops
    # out within 13 weeks matches the DROPOUT quantity for a customer with no repeat purchase.
    bg, _ = mle
    r, alpha, a, b = bg.params_.to_numpy()
    one = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [10.0]}, index=pd.Index([1], name="customer_id"))
    got = customer_metrics(bg, None, one, quantities=("dropout",), horizon=13.0, segment=None).popitem()[1]
    rng = np.random.default_rng(11)
    n = 400_000
    lam = rng.gamma(r, 1 / (alpha + 10.0), n)
    p = rng.beta(a, b, n)
    t_drop = rng.gamma(rng.geometric(p), 1 / lam)
    mc = np.mean(t_drop <= 13.0)
    assert abs(got.summary["mean"].iloc[0] - mc) < 4 * math.sqrt(mc * (1 - mc) / n)


def test_lifecycle_stages(rfm, churn):
    st = lifecycle_stages(churn, new_window=30.0)
    c = churn.customers
    T = rfm["T"]
    assert (st[c["lost"]] == "lapsed").all()
    assert (st[(T <= 30.0) & ~c["lost"]] == "new").all()
    rest = ~c["lost"] & (T > 30.0)
    risky = (c["p_alive"] < 0.7) | (c["p_dropout_given_alive"] >= 0.1)
    assert (st[rest & risky] == "at risk").all() and (st[rest & ~risky] == "active").all()
    summ = stage_summary(churn, st)
    assert summ["customers"].sum() == len(rfm)
    np.testing.assert_allclose(summ["equity_mean"].sum(), churn.metrics["clv"].total.mean(), rtol=1e-12)


def test_churn_and_stages_without_a_spend_model(rfm, bayes, churn):
    """Purchases only (a log without amounts): count-based churn and stages, no money figures."""
    bg, _ = bayes
    counts = rfm.drop(columns=[c for c in rfm.columns if c.startswith("monetary_value")])
    report = churn_analysis(bg, None, counts, period=13.0, contact_cost=2.0, horizon=52.0)
    assert not report.has_value and churn.has_value
    c = report.customers
    assert "clv" not in c and "value_if_alive" not in c
    for col in ("clv_mean", "churn_damage_mean", "value_at_risk_mean"):
        assert col not in report.summary
    assert set(report.draws.data_vars) == {"alive", "dropouts", "churn_rate"}
    # same BG/NBD draws: the purchase-based figures equal those of the report with spend
    for col in ("alive_mean", "dropouts_mean", "churn_rate_mean"):
        np.testing.assert_allclose(report.summary[col], churn.summary[col], rtol=1e-12)
    np.testing.assert_allclose(c["p_dropout_given_alive"], churn.customers["p_dropout_given_alive"], rtol=1e-12)
    # written off when more likely dead than alive; value if alive = E[P_alive F] / E[P_alive]
    assert (c["lost"] == (c["p_alive"] < 0.5)).all() and c["lost"].any()
    dp = dert(bg, counts, discount_rate=0.1, horizon=52.0).summary["mean"]
    np.testing.assert_allclose(c["purchases_if_alive"], dp / c["p_alive"], rtol=1e-12)
    top = c["purchases_if_alive"].rank(ascending=False, method="first") <= math.ceil(0.2 * len(c))
    assert (c["at_risk"] == (c["slipping"] & top)).all() and c["at_risk"].any()
    st = lifecycle_stages(report, new_window=30.0)
    assert (st[c["lost"]] == "lapsed").all()
    summ = stage_summary(report, st)
    assert list(summ.columns) == ["customers", "expected_alive"]
    assert summ["customers"].sum() == len(rfm)
    np.testing.assert_allclose(summ["expected_alive"].sum(), c["p_alive"].sum(), rtol=1e-12)


# -- errors ----------------------------------------------------------------------------------
def test_errors(rfm, mle):
    bg, gg = mle
    with pytest.raises(ValueError, match="GammaGammaModel"):
        customer_metrics(bg, None, rfm, quantities=("clv",))
    with pytest.raises(ValueError, match="Unknown quantities"):
        customer_metrics(bg, gg, rfm, quantities=("cvl",))
    with pytest.raises(ValueError, match="finite horizon"):
        expected_purchases(bg, rfm, horizon=math.inf)
    with pytest.raises(DataValidationError, match="margin"):
        customer_lifetime_value(bg, gg, rfm, margin=-0.1)
    with pytest.raises(DataValidationError, match="discount_rate has no value for 1 customers"):
        customer_lifetime_value(bg, gg, rfm, discount_rate=pd.Series(0.1, index=rfm.index[1:]))
    with pytest.raises(DataValidationError, match="not a column"):
        customer_lifetime_value(bg, gg, rfm, segment="region")
    bad = rfm.assign(region=np.where(np.arange(len(rfm)) == 3, None, "north"))
    with pytest.raises(DataValidationError, match="missing for 1 customers"):
        customer_lifetime_value(bg, gg, bad, segment="region")
    with pytest.raises(ValueError, match="time_unit='D' but"):
        customer_lifetime_value(bg, gg, rfm, time_unit="D")
    with pytest.raises(DataValidationError, match="empty"):
        customer_lifetime_value(bg, gg, rfm.iloc[:0])
    with pytest.raises(DataValidationError):
        customer_lifetime_value(bg, gg, rfm.drop(columns="monetary_value"))
    with pytest.raises(cb.NotFittedError):
        customer_lifetime_value(cb.BetaGeoModel(rfm), gg, rfm)
    with pytest.raises(ValueError, match="acquisition_cost"):
        customer_equity(bg, gg, rfm, acquisition_cost=-1.0)
    low_q = cb.GammaGammaModel.from_params({"p": 6.0, "q": 0.9, "gamma": 15.0})
    with pytest.raises(ValueError, match="1 of 1 Gamma-Gamma draws have q <= 1"):
        customer_lifetime_value(bg, low_q, rfm)
    with pytest.raises(ValueError, match="shares"):
        value_concentration(customer_lifetime_value(bg, gg, rfm), shares=(0.0,))


def test_p_alive_fused_with_clv_is_identical(rfm, bayes):
    # P(alive) filled in the CLV pass (clv_block_with_alive) equals its own pass bit for bit.
    bg, gg = bayes
    both = customer_metrics(bg, gg, rfm, quantities=("p_alive", "clv"), horizon=52.0, keep_draws=False, block_size=300)
    alone = customer_metrics(bg, gg, rfm, quantities=("p_alive",), keep_draws=True)
    clv = customer_metrics(bg, gg, rfm, quantities=("clv",), horizon=52.0, keep_draws=False)
    pd.testing.assert_frame_equal(both["p_alive"].summary, alone["p_alive"].summary, rtol=0, atol=0)
    pd.testing.assert_frame_equal(both["clv"].summary, clv["clv"].summary, rtol=0, atol=0)
    np.testing.assert_array_equal(both["p_alive"].totals, alone["p_alive"].totals)
    kept = customer_metrics(bg, gg, rfm, quantities=("clv", "p_alive"), horizon=52.0, keep_draws=True)
    np.testing.assert_array_equal(kept["p_alive"].draws, alone["p_alive"].draws)
