"""Holdout validation and cohort tracking (:mod:`clvbayes.value.validation`).

Independent references: Fader, Hardie & Lee (2005), "Counting your customers the easy way",
Marketing Science 24(2), eq. (10) (``BetaGeoModel.expected_purchases``, closed form) for the
replicate means per customer, in total and by calibration frequency; eq. (9)
(``expected_purchases_unconditional``) summed customer by customer for the tracking curve;
FHL (2005), "RFM and CLV", JMR 42(4), eq. (5) (``GammaGammaModel.expected_spend``) for the
simulated holdout spend; pandas group-bys on the raw log for the actual counts; numpy for
the error metrics. The CDNOW figures (2,357 customers, 1,882 holdout repeat transactions)
are those of the lifetimes/BTYD CDNOW sample with the literature's split.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.data.validate import DataValidationError
from clvbayes.kernels.bgnbd_predict import bgnbd_expected_purchases
from clvbayes.kernels.tracking import cohort_cumulative_purchases, expected_purchases_grid
from clvbayes.value.draws import parameter_draws
from clvbayes.value.validation import holdout_validation, purchase_tracking

CAL_END, OBS_END = "1997-09-30", "1998-06-30"
Z = 5.0  # z-score bound of the Monte Carlo checks
GROUPS = ["0", "1", "2", "3", "4", "5", "6", "7+"]


@pytest.fixture(scope="module")
def bg_mle(cdnow_split):
    return clvbayes.BetaGeoModel(cdnow_split).fit_mle()


@pytest.fixture(scope="module")
def gg_mle(cdnow_split):
    return clvbayes.GammaGammaModel(cdnow_split).fit_mle()


@pytest.fixture(scope="module")
def val_mle(bg_mle, gg_mle, cdnow_split):
    return holdout_validation(bg_mle, cdnow_split, gamma_gamma=gg_mle, random_seed=1)


@pytest.fixture(scope="module")
def bg_bayes(cdnow_split):
    """The one Bayesian fit of this file (the first nutpie fit of a process compiles, ~30 s)."""
    return clvbayes.BetaGeoModel(cdnow_split).fit(chains=2, draws=300, tune=300, random_seed=1, progressbar=False)


# -- holdout validation: CDNOW, MLE --------------------------------------------------------
def test_total_matches_eq10(val_mle, bg_mle, cdnow_split):
    v = val_mle
    assert v.source == "point" and v.n_replicates == 1000 and v.duration == 39.0
    assert v.total["actual"] == 1882
    eq10 = bg_mle.expected_purchases(39.0, cdnow_split).sum()
    assert eq10 == pytest.approx(1653.4, abs=0.1)
    # issue 13: the forecast is the exact expectation; the replicates agree within MC error
    assert v.total["mean"] == pytest.approx(eq10, rel=1e-12)
    se = v.total_replicates.std(ddof=1) / np.sqrt(v.n_replicates)
    assert abs(v.total_replicates.mean() - eq10) < Z * se
    assert v.total["lower"] < v.total["mean"] < v.total["upper"]
    # the interval bounds are quantiles of the stored per-replicate totals
    lo, hi = np.quantile(v.total_replicates, [0.03, 0.97], method="inverted_cdf")
    assert (v.total["lower"], v.total["upper"]) == (lo, hi)
    assert v.total["mean"] == pytest.approx(v.customers["mean"].sum(), rel=1e-12)


def test_customer_means_match_eq10(val_mle, bg_mle, cdnow_split):
    c = val_mle.customers
    assert list(c.columns[:4]) == ["actual", "mean", "lower", "upper"]
    assert c.index.equals(cdnow_split.index)
    np.testing.assert_array_equal(c["actual"], cdnow_split["frequency_holdout"])
    eq10 = bg_mle.expected_purchases(39.0, cdnow_split).to_numpy()
    # per customer the exact eq. (10), not a replicate mean
    np.testing.assert_allclose(c["mean"].to_numpy(), eq10, rtol=1e-12)
    # (a skewed count can have its mean above the 97% quantile: no check of mean vs bounds)
    assert np.all(c["lower"] <= c["upper"]) and np.all(c["lower"] >= 0)
    assert np.all(c["lower"] == np.round(c["lower"])) and np.all(c["upper"] == np.round(c["upper"]))


def test_by_frequency_matches_eq10_group_means(val_mle, bg_mle, cdnow_split):
    bf = val_mle.by_frequency
    assert list(bf.index) == GROUPS
    group = np.minimum(cdnow_split["frequency"].to_numpy(), 7)
    counts = np.bincount(group, minlength=8)
    np.testing.assert_array_equal(bf["customers"], counts)
    actual = cdnow_split.groupby(group)["frequency_holdout"].mean().to_numpy()
    np.testing.assert_allclose(bf["actual"], actual, rtol=1e-12)
    eq10 = bg_mle.expected_purchases(39.0, cdnow_split).groupby(group).mean().to_numpy()
    np.testing.assert_allclose(bf["mean"].to_numpy(), eq10, rtol=1e-12)


def test_spend_matches_eq5(val_mle, bg_mle, gg_mle, cdnow_split):
    c = val_mle.customers
    actual = cdnow_split["frequency_holdout"] * cdnow_split["monetary_value_holdout"]
    np.testing.assert_allclose(c["actual_spend"], actual, rtol=1e-14)
    assert val_mle.total_spend["actual"] == pytest.approx(70976.39, abs=0.01)
    # given the parameters, count and spend rate are independent: E[spend] = E[Y] E[Z | x, m]
    expected = (bg_mle.expected_purchases(39.0, cdnow_split) * gg_mle.expected_spend(cdnow_split)).sum()
    s = val_mle.total_spend
    assert s["mean"] == pytest.approx(expected, rel=1e-12)
    assert (c["mean_spend"] >= 0).all() and (c.loc[c["upper"] == 0, "upper_spend"] == 0).all()


def test_metrics_direct_recomputation(val_mle, cdnow_split):
    m = val_mle.metrics
    assert list(m.index) == ["model", "run_rate", "silence_window", "population_mean"]
    x = cdnow_split["frequency"].to_numpy(float)
    rec = cdnow_split["recency"].to_numpy(float)
    T = cdnow_split["T"].to_numpy(float)
    mv = cdnow_split["monetary_value"].to_numpy(float)
    y = cdnow_split["frequency_holdout"].to_numpy(float)
    spend = y * cdnow_split["monetary_value_holdout"].to_numpy(float)
    window = np.quantile(rec[x > 0] / x[x > 0], 0.9)
    assert val_mle.window == pytest.approx(window)
    run = x / T * 39
    preds = {
        "model": val_mle.customers["mean"].to_numpy(),
        "run_rate": run,
        "silence_window": np.where(T - rec > window, 0.0, run),
        "population_mean": np.full(x.size, x.sum() / T.sum() * 39),
    }
    per_spend = np.where(x > 0, mv, mv[x > 0].mean())
    for name, pred in preds.items():
        e = pred - y
        assert m.loc[name, ("purchases", "MAE")] == pytest.approx(np.abs(e).mean(), rel=1e-12)
        assert m.loc[name, ("purchases", "RMSE")] == pytest.approx(np.sqrt((e**2).mean()), rel=1e-12)
        assert m.loc[name, ("purchases", "bias")] == pytest.approx(e.mean(), rel=1e-10, abs=1e-12)
        pred_s = val_mle.customers["mean_spend"].to_numpy() if name == "model" else pred * per_spend
        es = pred_s - spend
        assert m.loc[name, ("spend", "MAE")] == pytest.approx(np.abs(es).mean(), rel=1e-12)
        assert m.loc[name, ("spend", "RMSE")] == pytest.approx(np.sqrt((es**2).mean()), rel=1e-12)
        assert m.loc[name, ("spend", "bias")] == pytest.approx(es.mean(), rel=1e-10, abs=1e-12)
    c = val_mle.customers
    cover = ((c["lower"] <= y) & (y <= c["upper"])).mean()
    assert m.loc["model", ("purchases", "coverage")] == pytest.approx(cover)
    assert m.loc[["run_rate", "silence_window", "population_mean"], ("purchases", "coverage")].isna().all()
    # the bias of the model is its total error per customer
    assert m.loc["model", ("purchases", "bias")] == pytest.approx((val_mle.total["mean"] - 1882) / x.size)
    assert "HoldoutValidation" in repr(val_mle) and "1,882" in repr(val_mle)


def test_several_customer_chunks_consistent(bg_mle, gg_mle, cdnow_split):
    """3,000 replicates are simulated in three blocks of 1,024 customers: the pieces add up."""
    v = holdout_validation(bg_mle, cdnow_split, gamma_gamma=gg_mle, n_draws=3000, random_seed=2)
    assert v.n_replicates == 3000
    assert v.total["mean"] == pytest.approx(v.customers["mean"].sum(), rel=1e-12)
    bf = v.by_frequency
    assert (bf["mean"] * bf["customers"]).sum() == pytest.approx(v.total["mean"], rel=1e-12)
    assert v.total_spend["mean"] == pytest.approx(v.customers["mean_spend"].sum(), rel=1e-12)
    eq10 = bg_mle.expected_purchases(39.0, cdnow_split).sum()
    assert v.total["mean"] == pytest.approx(eq10, rel=1e-12)
    assert abs(v.total_replicates.mean() - eq10) < Z * v.total_replicates.std() / np.sqrt(3000)


def test_seed_reproducible_and_nested_intervals(bg_mle, cdnow_split):
    a = holdout_validation(bg_mle, cdnow_split, n_draws=200, random_seed=7)
    b = holdout_validation(bg_mle, cdnow_split, n_draws=200, random_seed=7, hdi_prob=0.5)
    c = holdout_validation(bg_mle, cdnow_split, n_draws=200, random_seed=8)
    assert a.n_replicates == 200 and "spend" not in a.metrics.columns.get_level_values(0)
    np.testing.assert_array_equal(a.total_replicates, b.total_replicates)
    pd.testing.assert_series_equal(a.customers["mean"], b.customers["mean"])
    assert not np.array_equal(a.total_replicates, c.total_replicates)
    # same replicates: the 50% intervals lie inside the 94% ones
    assert (b.customers["lower"] >= a.customers["lower"]).all() and (b.customers["upper"] <= a.customers["upper"]).all()
    assert b.metrics.loc["model", ("purchases", "coverage")] <= a.metrics.loc["model", ("purchases", "coverage")]


def test_bayesian_interval_wider_than_mle(bg_bayes, val_mle, cdnow_split):
    v = holdout_validation(bg_bayes, cdnow_split, random_seed=1)
    assert v.source == "posterior" and v.n_replicates == 600
    width_bayes = v.total["upper"] - v.total["lower"]
    width_mle = val_mle.total["upper"] - val_mle.total["lower"]
    # parameter uncertainty adds to the process variance
    assert width_bayes > 1.15 * width_mle
    assert v.total_replicates.std() > 1.15 * val_mle.total_replicates.std()


def test_input_validation(bg_mle, gg_mle, cdnow_split):
    with pytest.raises(DataValidationError, match="frequency_holdout"):
        holdout_validation(bg_mle, cdnow_split.drop(columns="frequency_holdout"))
    uneven = cdnow_split.assign(duration_holdout=np.linspace(38, 39, len(cdnow_split)))
    with pytest.raises(DataValidationError, match="duration_holdout"):
        holdout_validation(bg_mle, uneven)
    with pytest.raises(DataValidationError, match="monetary_value_holdout"):
        holdout_validation(bg_mle, cdnow_split.drop(columns="monetary_value_holdout"), gamma_gamma=gg_mle)
    negative = cdnow_split.assign(frequency_holdout=-cdnow_split["frequency_holdout"])
    with pytest.raises(DataValidationError, match="frequency_holdout"):
        holdout_validation(bg_mle, negative.loc[negative["frequency_holdout"] < 0])
    with pytest.raises(ValueError, match="hdi_prob"):
        holdout_validation(bg_mle, cdnow_split, hdi_prob=1.0)
    with pytest.raises(ValueError, match="n_draws"):
        holdout_validation(bg_mle, cdnow_split, n_draws=0)
    daily = cdnow_split.copy()
    daily.attrs["time_unit"] = "D"
    with pytest.raises(ValueError, match="time_unit"):
        holdout_validation(bg_mle, daily)
    with pytest.raises(clvbayes.NotFittedError):
        holdout_validation(clvbayes.BetaGeoModel(cdnow_split), cdnow_split)


# -- tracking --------------------------------------------------------------------------------
def test_tracking_kernels_match_references():
    rng = np.random.default_rng(3)
    D, A, F, K = 5, 7, 4, 6
    r, alpha, a, b = (rng.uniform(0.2, 3.0, D) for _ in range(4))
    t = np.concatenate([[0.0, -1.0], rng.uniform(0.1, 80, A - 2)])
    e = expected_purchases_grid(r, alpha, a, b, t)
    for d in range(D):
        ref = np.where(t > 0, bgnbd_expected_purchases(r[d], alpha[d], a[d], b[d], np.maximum(t, 0.0)), 0.0)
        np.testing.assert_allclose(e[d], ref, rtol=1e-15, atol=0)
    index = rng.integers(0, A, size=(F, K))
    w = rng.integers(1, 9, F).astype(float)
    cum = cohort_cumulative_purchases(e, index, w)
    np.testing.assert_allclose(cum, np.einsum("dfk,f->dk", e[:, index], w), rtol=1e-14)


def test_tracking_cdnow_mle(bg_mle, cdnow_split, cdnow_transactions):
    tr = purchase_tracking(bg_mle, cdnow_transactions, calibration_end=CAL_END, observation_end=OBS_END)
    assert len(tr) == 78 and tr.attrs["customers"] == 2357
    assert tr.loc[39, "period_end"] == pd.Timestamp(CAL_END) and not tr.loc[39, "holdout"] and tr.loc[40, "holdout"]
    T = cdnow_split["T"].to_numpy()
    # FHL Figure 3: the cohort's expected repeat purchases at the end of calibration and holdout
    brute_cal = math.fsum(bg_mle.expected_purchases_unconditional(T))  # customer by customer
    brute_end = math.fsum(bg_mle.expected_purchases_unconditional(T + 39.0))
    assert tr.loc[39, "expected_cumulative"] == pytest.approx(brute_cal, rel=1e-12)
    assert tr.loc[78, "expected_cumulative"] == pytest.approx(brute_end, rel=1e-12)
    np.testing.assert_allclose(tr["expected"].cumsum(), tr["expected_cumulative"], rtol=1e-12)
    # a point estimate: no parameter uncertainty
    np.testing.assert_array_equal(tr["expected_cumulative_lower"], tr["expected_cumulative"])
    # actual counts match the summaries
    assert tr.loc[39, "actual_cumulative"] == cdnow_split["frequency"].sum() == 2457
    assert tr.loc[78, "actual_cumulative"] == 2457 + 1882
    assert tr.loc[tr["holdout"], "actual"].sum() == 1882


def test_tracking_actual_counts_groupby(bg_mle, cdnow_transactions):
    tr = purchase_tracking(bg_mle, cdnow_transactions, calibration_end=CAL_END, observation_end=OBS_END)
    log = cdnow_transactions.assign(day=cdnow_transactions["date"].dt.normalize())
    log = log.drop_duplicates(["customer_id", "day"]).sort_values(["customer_id", "day"])
    first = log.groupby("customer_id")["day"].transform("min")
    rep = log[(log["day"] > first) & (first <= CAL_END) & (log["day"] <= OBS_END)]
    week = (rep["day"] - log["day"].min()).dt.days // 7 + 1
    counts = week.value_counts().reindex(tr.index, fill_value=0)
    np.testing.assert_array_equal(tr["actual"].to_numpy(), counts.to_numpy())


def test_tracking_small_log_partial_period():
    days = ["2020-01-01", "2020-01-03", "2020-01-03T15:00", "2020-01-20", "2020-01-05", "2020-02-01",
            "2020-01-25", "2020-01-28"]
    log = pd.DataFrame(
        {"customer_id": ["A", "A", "A", "A", "B", "B", "C", "C"], "date": pd.to_datetime(days, format="ISO8601")}
    )
    params = dict(r=0.5, alpha=3.0, a=0.8, b=2.5)
    model = clvbayes.BetaGeoModel.from_params(params)
    tr = purchase_tracking(model, log, calibration_end="2020-01-21", observation_end="2020-02-03")
    # weeks from Jan 1; the fifth is cut at Feb 3; C is acquired after calibration_end
    ends = pd.to_datetime(["2020-01-07", "2020-01-14", "2020-01-21", "2020-01-28", "2020-02-03"])
    assert list(tr["period_end"]) == list(ends)
    assert tr["actual"].tolist() == [1, 0, 1, 0, 1]
    assert tr["holdout"].tolist() == [False, False, False, True, True]
    firsts = pd.to_datetime(["2020-01-01", "2020-01-05"])
    ref = [
        sum(model.expected_purchases_unconditional(max((end - f).days, 0) / 7) for f in firsts) for end in ends
    ]
    np.testing.assert_allclose(tr["expected_cumulative"], ref, rtol=1e-12)
    assert tr.attrs["customers"] == 2


def test_tracking_bayesian_draw_means(bg_bayes, cdnow_split, cdnow_transactions):
    tr = purchase_tracking(bg_bayes, cdnow_transactions, calibration_end=CAL_END, observation_end=OBS_END, n_draws=60)
    draws = parameter_draws(bg_bayes, 60)
    assert tr.attrs["n_draws"] == draws.n
    T = cdnow_split["T"].to_numpy()
    sums = np.array(
        [bgnbd_expected_purchases(draws["r"][d], draws["alpha"][d], draws["a"][d], draws["b"][d], T).sum()
         for d in range(draws.n)]
    )
    assert tr.loc[39, "expected_cumulative"] == pytest.approx(sums.mean(), rel=1e-12)
    lo, hi = np.quantile(sums, [0.03, 0.97])
    assert tr.loc[39, "expected_cumulative_lower"] == pytest.approx(lo, rel=1e-12)
    assert tr.loc[39, "expected_cumulative_upper"] == pytest.approx(hi, rel=1e-12)
    assert lo < hi


def test_tracking_errors(bg_mle, cdnow_transactions):
    with pytest.raises(ValueError, match="whole number of days"):
        purchase_tracking(bg_mle, cdnow_transactions, calibration_end=CAL_END, observation_end=OBS_END, time_unit="h")
    with pytest.raises(ValueError, match="time_unit"):
        purchase_tracking(bg_mle, cdnow_transactions, calibration_end=CAL_END, observation_end=OBS_END, time_unit="D")
    with pytest.raises(ValueError, match="after calibration_end"):
        purchase_tracking(bg_mle, cdnow_transactions, calibration_end=CAL_END, observation_end="1997-09-01")
    with pytest.raises(DataValidationError, match="cohort is empty"):
        purchase_tracking(bg_mle, cdnow_transactions, calibration_end="1996-01-01", observation_end=OBS_END)
    with pytest.raises(ValueError, match="hdi_prob"):
        purchase_tracking(bg_mle, cdnow_transactions, calibration_end=CAL_END, observation_end=OBS_END, hdi_prob=0)
