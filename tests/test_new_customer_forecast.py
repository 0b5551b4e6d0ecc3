"""new_customer_forecast: customers not yet acquired, against independent references
(closed forms with scipy, Monte Carlo of the model, the equity module's acquisition value)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.special as sp
import scipy.stats as st

import clvbayes as cb
from clvbayes.value.new_customers import new_customer_forecast

BG = dict(r=0.25, alpha=5.4, a=0.61, b=2.65)
GG = dict(p=4.7, q=4.2, gamma=24.4)


def _models(family="bgnbd", params=BG):
    data = cb.simulate_customers(**params, model=family, T=40.0, n_customers=50, seed=1)
    data["monetary_value"] = np.where(data["frequency"] > 0, 30.0, 0.0)
    return cb.model_class(family).from_params(params, data), cb.GammaGammaModel.from_params(GG, data)


def _bgnbd_expected(t: float, r, alpha, a, b) -> float:
    """FHL 2005 (Marketing Science 24(2)) eq. 7, with scipy's hyp2f1."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * sp.hyp2f1(r, b, a + b - 1, z))


def _bgnbd_pmf(n: int, t: float, r, alpha, a, b) -> float:
    """FHL 2005 eq. 8, the finite sum written out with scipy (an independent slow form)."""
    lb = sp.betaln
    first = np.exp(lb(a, b + n) - lb(a, b) + sp.gammaln(r + n) - sp.gammaln(r) - sp.gammaln(n + 1)
                   + r * np.log(alpha / (alpha + t)) + n * np.log(t / (alpha + t)))
    if n == 0:
        return float(first)
    tail = 1.0 - sum(np.exp(sp.gammaln(r + j) - sp.gammaln(r) - sp.gammaln(j + 1)
                            + r * np.log(alpha / (alpha + t)) + j * np.log(t / (alpha + t))) for j in range(n))
    return float(first + np.exp(lb(a + 1, b + n - 1) - lb(a, b)) * tail)


def test_point_forecast_matches_the_closed_forms():
    bg, gg = _models()
    f = new_customer_forecast(bg, gg, horizon=52.0, max_purchases=4)
    row = f.summary.loc["population"]
    assert row["expected_purchases_mean"] == pytest.approx(_bgnbd_expected(52.0, **BG), rel=1e-10)
    for n in range(5):
        assert f.purchases.loc[("population", n), "probability"] == pytest.approx(_bgnbd_pmf(n, 52.0, **BG),
                                                                                 rel=1e-10)
    total = f.purchases["probability"].sum()
    assert total == pytest.approx(1.0, abs=1e-12)
    assert row["expected_spend_mean"] == pytest.approx(GG["p"] * GG["gamma"] / (GG["q"] - 1), rel=1e-12)
    # spend quantiles of p/ν, ν ~ Gamma(q, rate γ): p γ / G with G ~ Gamma(q, 1)
    exact = GG["p"] * GG["gamma"] / st.gamma.ppf(1 - np.array([0.05, 0.25, 0.5, 0.75, 0.95]), GG["q"])
    np.testing.assert_allclose(f.spend_quantiles.loc["population"].to_numpy(), exact, rtol=0.03)
    assert f.settings["source"] == "point" and f.summary.loc["population", "max_acquisition_cost"] == row["value_mean"]


def test_value_is_the_equity_modules_acquisition_value():
    bg, gg = _models()
    f = new_customer_forecast(bg, gg, horizon=52.0, discount_rate=0.15, margin=0.3)
    eq = cb.customer_equity(bg, gg, acquisition_cost=10.0, discount_rate=0.15, margin=0.3)
    assert f.summary.loc["population", "value_mean"] == pytest.approx(eq.acquisition.iloc[0]["value_mean"], rel=1e-12)
    # the value is margin x mean spend x (1 + discounted expected purchases): at 0% and a
    # finite horizon, 1 + E[X(t)]
    g = new_customer_forecast(bg, gg, horizon=26.0, value_horizon=26.0, discount_rate=0.0, margin=0.3)
    spend = GG["p"] * GG["gamma"] / (GG["q"] - 1)
    assert g.summary.loc["population", "value_mean"] == pytest.approx(
        0.3 * spend * (1 + _bgnbd_expected(26.0, **BG)), rel=1e-10)


@pytest.mark.parametrize("family,params", [("pnbd", dict(r=0.55, alpha=10.6, s=0.61, beta=11.7)),
                                           ("mbgnbd", dict(r=0.5, alpha=6.0, a=0.9, b=3.0))])
def test_purchase_distribution_matches_simulated_new_customers(family, params):
    model, _ = _models(family, params)
    f = new_customer_forecast(model, horizon=30.0, max_purchases=3)
    sim = cb.simulate_customers(**params, model=family, T=30.0, n_customers=40_000, seed=7)
    counts = np.bincount(np.minimum(sim["frequency"].to_numpy().astype(int), 4), minlength=5)
    p = f.purchases["probability"].to_numpy()
    se = np.sqrt(p * (1 - p) / counts.sum())
    assert np.all(np.abs(counts / counts.sum() - p) < 4.5 * se + 1e-4)
    assert f.summary.loc["population", "expected_purchases_mean"] == pytest.approx(
        sim["frequency"].mean(), abs=4.5 * sim["frequency"].std() / np.sqrt(len(sim)))
    assert "value_mean" not in f.summary and f.value.sizes["draw"] == 0


def _channel_model():
    parts = []
    for k, (ch, mult) in enumerate({"web": 1.0, "store": 0.5}.items()):
        df = cb.simulate_customers(**dict(BG, alpha=BG["alpha"] * mult), T=40.0, n_customers=300, seed=10 + k)
        df["channel"] = ch
        parts.append(df)
    data = pd.concat(parts, ignore_index=True)
    data["customer_id"] = np.arange(len(data))
    data["monetary_value"] = np.where(data["frequency"] > 0, 30.0, 0.0)
    return cb.CovariatePurchaseModel(data, purchase_covariates=["channel"]).fit(method="map"), data


def test_profiles_of_a_covariate_model_are_the_plain_model_at_their_parameters():
    model, data = _channel_model()
    gg = cb.GammaGammaModel.from_params(GG, data)
    profiles = pd.DataFrame({"channel": ["web", "store"]}, index=["web", "store"])
    f = new_customer_forecast(model, gg, horizon=52.0, profiles=profiles)
    g = float(model.map_["gamma_purchase"][0])  # the one dummy: the level that is not the reference
    ref_level = model.designs["purchase"].levels["channel"][0]
    for name in ("web", "store"):
        alpha = float(model.map_["alpha"]) * (np.exp(-g) if name != ref_level else 1.0)
        params = {"r": float(model.map_["r"]), "alpha": alpha, "a": float(model.map_["a"]), "b": float(model.map_["b"])}
        plain = new_customer_forecast(cb.BetaGeoModel.from_params(params, data), gg, horizon=52.0)
        pd.testing.assert_series_equal(f.summary.loc[name], plain.summary.loc["population"], check_names=False,
                                       rtol=1e-13)
    eq = f.cohort_equity({"web": 100, "store": 300})
    assert eq.loc["total", "mean"] == pytest.approx(100 * f.summary.loc["web", "value_mean"]
                                                    + 300 * f.summary.loc["store", "value_mean"], rel=1e-12)
    assert eq.loc["total", "customers"] == 400 and list(eq.index) == ["web", "store", "total"]
    with pytest.raises(ValueError, match="profiles="):
        new_customer_forecast(model, gg, horizon=52.0)
    with pytest.raises(cb.DataValidationError, match="levels the model was not fitted with"):
        new_customer_forecast(model, gg, horizon=52.0, profiles=pd.DataFrame({"channel": ["tv"]}))
    with pytest.raises(ValueError, match="Unknown profiles"):
        f.cohort_equity({"tv": 3})


def test_posterior_intervals_and_cohort_equity_per_draw():
    import arviz as az

    bg, gg = _models()
    rng = np.random.default_rng(3)
    bg.idata_ = az.from_dict(posterior={k: v * np.exp(rng.normal(0, 0.05, (2, 50))) for k, v in BG.items()})
    f = new_customer_forecast(bg, gg, horizon=52.0, hdi_prob=0.9, n_draws=40)
    v = f.value.sel(profile="population").to_numpy().reshape(-1)
    assert v.size == 40 and np.unique(v).size == 40
    row = f.summary.loc["population"]
    assert row["value_hdi_5%"] < row["value_mean"] < row["value_hdi_95%"]
    assert row["max_acquisition_cost"] == pytest.approx(np.quantile(v, 0.1), rel=1e-14)
    eq = f.cohort_equity(250)
    assert eq.loc["total", "mean"] == pytest.approx(250 * v.mean(), rel=1e-12)
    assert eq.loc["total", "sd"] == pytest.approx(250 * v.std(ddof=1), rel=1e-10)
    lo, hi = f.purchases.loc[("population", 0), ["hdi_5%", "hdi_95%"]]
    assert lo < f.purchases.loc[("population", 0), "probability"] < hi


def test_bad_arguments_are_refused():
    bg, gg = _models()
    with pytest.raises(ValueError, match="horizon"):
        new_customer_forecast(bg, gg, horizon=np.inf)
    with pytest.raises(ValueError, match="max_purchases"):
        new_customer_forecast(bg, gg, horizon=5.0, max_purchases=-1)
    with pytest.raises(ValueError, match="planned customers"):
        new_customer_forecast(bg, gg, horizon=5.0).cohort_equity(2.5)
    bad = cb.GammaGammaModel.from_params(dict(GG, q=0.9), gg.data if hasattr(gg, "data") else None)
    with pytest.raises(ValueError, match="q <= 1"):
        new_customer_forecast(bg, bad, horizon=5.0)


@pytest.mark.slow
def test_the_howto_figures_are_the_cdnow_posteriors():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "howto" / "new_customers.md").read_text(encoding="utf-8")
    rfm = cb.rfm_summary(cb.datasets.load_cdnow_sample(), observation_end="1998-06-30")
    bgnbd = cb.BetaGeoModel(rfm).fit(random_seed=2026)
    gamma_gamma = cb.GammaGammaModel(rfm).fit(random_seed=2026)
    f = new_customer_forecast(bgnbd, gamma_gamma, horizon=52, max_purchases=4, discount_rate=0.1, margin=0.3)
    row = f.summary.loc["population"]
    # quoted string -> the value it stands for; NUTS draws can differ in the last digits with
    # what ran before in the process, so the value is checked to 1% (the posterior means' Monte
    # Carlo error is smaller) and the string must be in the page
    figures = {"1.49": row["expected_purchases_mean"], "70.85": row["value_mean"], "59.11": row["value_hdi_3%"],
               "63.01": row["max_acquisition_cost"], "37.30": row["expected_spend_hdi_97%"],
               "70,847": f.cohort_equity(1000).loc["total", "mean"],
               **dict(zip(("0.550", "0.186", "0.088", "0.051", "0.033", "0.093"), f.purchases["probability"],
                          strict=True)),
               "29.5": f.spend_quantiles.loc["population", "q50%"]}
    for quoted, value in figures.items():
        assert quoted in text, quoted
        assert float(value) == pytest.approx(float(quoted.replace(",", "")), rel=0.01, abs=5e-4), quoted


def test_spend_profiles_of_a_spend_model_with_covariates():
    model, data = _channel_model()
    rng = np.random.default_rng(12)
    web = (data["channel"] == "web").to_numpy()
    nu = rng.gamma(GG["q"], 1.0 / (GG["gamma"] * np.where(web, 1.5, 1.0)))
    x = data["frequency"].to_numpy()
    data["monetary_value"] = [rng.gamma(GG["p"], 1.0 / nu[i], int(x[i])).mean() if x[i] > 0 else 0.0
                              for i in range(len(data))]
    spend = cb.CovariateSpendModel(data, covariates=["channel"]).fit(method="map")
    profiles = pd.DataFrame({"channel": ["web", "store"]}, index=["web", "store"])
    f = new_customer_forecast(model, spend, horizon=52.0, profiles=profiles)
    p, q, g = (float(np.squeeze(spend.map_[k])) for k in ("p", "q", "gamma"))
    delta = float(np.squeeze(spend.map_["delta"]))
    ref = spend.design.levels["channel"][0]
    for name in ("web", "store"):
        gamma = g * (np.exp(delta) if name != ref else 1.0)
        assert f.summary.loc[name, "expected_spend_mean"] == pytest.approx(p * gamma / (q - 1), rel=1e-12)
    with pytest.raises(ValueError, match="spend model has covariates"):
        new_customer_forecast(cb.BetaGeoModel.from_params(BG, data), spend, horizon=52.0)
