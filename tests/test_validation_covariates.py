"""Holdout validation of models with covariates: one cell is the plain model bit for bit;
with two channels, each customer's replicates come from its own cell (their mean against
FHL 2005 eq. 10 at the cell's parameters, Monte Carlo), spend cells too; compare_models
puts the holdout errors of models with and without covariates side by side."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import clvbayes as cb
from clvbayes.value.validation import holdout_validation

BG = dict(r=0.6, alpha=6.0, a=0.8, b=2.5)
GG = dict(p=6.0, q=4.0, gamma=15.0)


@pytest.fixture(scope="module")
def split():
    """A calibration/holdout summary of two channels (web buys twice as often), with spend."""
    rows = []
    for k, (ch, mult) in enumerate({"web": 0.5, "store": 1.0}.items()):
        df = cb.simulate_customers(**dict(BG, alpha=BG["alpha"] * mult), **GG, T=40.0, holdout=20.0,
                                   n_customers=700, seed=40 + k)
        df["duration_holdout"] = 20.0
        df["channel"] = ch
        rows.append(df[[c for c in df.columns if not c.startswith("true_")]])
    out = pd.concat(rows, ignore_index=True)
    out.index = pd.Index([f"c{i:04d}" for i in range(len(out))], name="customer_id")
    out.attrs["time_unit"] = "W"
    return out


def _posterior(names, extra=None, seed=1):
    rng = np.random.default_rng(seed)
    post = {p: v * np.exp(rng.normal(0, 0.05, (2, 40))) for p, v in names.items()}
    post.update(extra or {})
    return az.from_dict(posterior=post)


def test_zero_coefficients_are_the_plain_model_bit_for_bit(split):
    plain = cb.BetaGeoModel(split)
    plain.idata_ = _posterior(BG)
    cov = cb.CovariatePurchaseModel(split, purchase_covariates=["channel"])
    cov.idata_ = _posterior(BG, {"gamma_purchase": np.zeros((2, 40, 1))})
    gg = cb.GammaGammaModel.from_params(GG, split)
    a = holdout_validation(plain, split, gamma_gamma=gg, random_seed=3)
    b = holdout_validation(cov, split, gamma_gamma=gg, random_seed=3)
    pd.testing.assert_frame_equal(a.customers[["actual", "lower", "upper", "lower_spend", "upper_spend"]],
                                  b.customers[["actual", "lower", "upper", "lower_spend", "upper_spend"]])
    np.testing.assert_allclose(b.customers["mean"], a.customers["mean"], rtol=1e-10)
    np.testing.assert_array_equal(a.total_replicates, b.total_replicates)


def test_each_customer_is_replicated_at_its_cells_parameters(split):
    cov = cb.CovariatePurchaseModel(split, purchase_covariates=["channel"])
    g = np.log(2.0)  # web: alpha / 2
    cov.map_ = {**{k: np.float64(v) for k, v in BG.items()}, "gamma_purchase": np.array([g])}
    v = holdout_validation(cov, split, n_draws=4000, random_seed=2)
    web = (split["channel"] == "web").to_numpy()
    for sel, alpha in ((web, BG["alpha"] / 2), (~web, BG["alpha"])):
        ref = cb.BetaGeoModel.from_params(dict(BG, alpha=alpha), split).expected_purchases(20.0, split[sel])
        np.testing.assert_allclose(v.customers["mean"][sel], ref, rtol=1e-10)
    # the replicate total's mean is the sum of the exact means (Monte Carlo, 4000 replicates)
    se = v.total_replicates.std() / np.sqrt(v.total_replicates.size)
    assert abs(v.total_replicates.mean() - v.customers["mean"].sum()) < 5 * se
    assert v.customers.loc[web, "upper"].mean() > v.customers.loc[~web, "upper"].mean()  # web buys more


def test_spend_cells_and_compare_models_with_holdout(split):
    cov = cb.CovariatePurchaseModel(split, purchase_covariates=["channel"])
    cov.idata_ = _posterior(BG, {"gamma_purchase": np.full((2, 40, 1), np.log(2.0))})
    plain = cb.BetaGeoModel(split)
    plain.idata_ = _posterior(BG)
    spend = cb.CovariateSpendModel(split, covariates=["channel"])
    spend.map_ = {**{k: np.float64(v) for k, v in GG.items()}, "delta": np.array([0.0])}
    a = holdout_validation(plain, split, gamma_gamma=cb.GammaGammaModel.from_params(GG, split), random_seed=4)
    b = holdout_validation(plain, split, gamma_gamma=spend, random_seed=4)
    np.testing.assert_allclose(b.customers["mean_spend"], a.customers["mean_spend"], rtol=1e-10)
    pd.testing.assert_frame_equal(a.customers[["lower_spend", "upper_spend"]], b.customers[["lower_spend", "upper_spend"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = cb.compare_models({"plain": plain, "channel": cov}, holdout=split, random_seed=1)
    assert {"holdout_mae", "holdout_coverage"} <= set(table.columns)
    # the data were simulated with web buying twice as often: the covariate model forecasts better
    assert table.loc["channel", "holdout_mae"] < table.loc["plain", "holdout_mae"]
    assert table.index[0] == "channel"


def test_tracking_sums_the_cells():
    """The cohort's expected purchases with covariates are the sums of each channel's, each
    tracked with the plain model at that channel's parameters."""
    logs, summaries = [], []
    start = pd.Timestamp("2024-01-01")
    for k, (ch, mult) in enumerate({"web": 0.5, "store": 1.0}.items()):
        T = np.where(np.arange(300) % 2 == 0, 30.0, 26.0)  # two acquisition days
        summ, tx = cb.simulate_customers(**dict(BG, alpha=BG["alpha"] * mult), T=T, n_customers=300, seed=60 + k,
                                         return_transactions=True)
        ids = {c: f"{ch}{c}" for c in summ.index}
        acq = {c: start + pd.Timedelta(days=7 * (30.0 - t)) for c, t in zip(summ.index, T, strict=True)}
        tx = tx.assign(customer_id=tx["customer_id"].map(ids),
                       date=[acq[c] + pd.Timedelta(days=int(7 * t)) for c, t in zip(tx["customer_id"], tx["time"],
                                                                                    strict=True)])
        logs.append(tx[["customer_id", "date"]])
    log = pd.concat(logs, ignore_index=True)
    obs_end = start + pd.Timedelta(weeks=40)
    split = cb.calibration_holdout_split(log, calibration_end=start + pd.Timedelta(weeks=30), observation_end=obs_end,
                                         amount=None)
    split["channel"] = np.where(split.index.str.startswith("web"), "web", "store")
    cov = cb.CovariatePurchaseModel(split, purchase_covariates=["channel"])
    cov.map_ = {**{k: np.float64(v) for k, v in BG.items()}, "gamma_purchase": np.array([np.log(2.0)])}
    kw = dict(calibration_end=start + pd.Timedelta(weeks=30), observation_end=obs_end, n_draws=None)
    both = cb.purchase_tracking(cov, log, **kw)
    parts = []
    for ch, alpha in (("web", BG["alpha"] / 2), ("store", BG["alpha"])):
        sel = split["channel"] == ch
        plain = cb.BetaGeoModel.from_params(dict(BG, alpha=alpha), split[sel])
        parts.append(cb.purchase_tracking(plain, log[log["customer_id"].str.startswith(ch)], **kw))
    assert both.attrs["customers"] == 600
    assert both.index.equals(parts[0].index) and both.index.equals(parts[1].index)
    np.testing.assert_allclose(both["expected_cumulative"],
                               parts[0]["expected_cumulative"] + parts[1]["expected_cumulative"], rtol=1e-12)
    np.testing.assert_array_equal(both["actual"], parts[0]["actual"] + parts[1]["actual"])
    assert parts[0]["expected_cumulative"].iloc[-1] > 1.5 * parts[1]["expected_cumulative"].iloc[-1]  # web buys more
