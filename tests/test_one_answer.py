"""One answer per question: after a Bayesian fit the model methods give the posterior
expectation (the numbers of clvbayes.value), plug-in values only for point fits or on
request; the holdout forecast is exact; one default discount rate."""

import inspect
import math

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.kernels.bgnbd_predict import (
    bgnbd_conditional_expected_purchases,
    bgnbd_conditional_pmf,
    bgnbd_dert,
    bgnbd_expected_purchases,
    bgnbd_p_alive,
    bgnbd_pmf,
)
from clvbayes.kernels.gamma_gamma import gg_expected_spend
from clvbayes.value import DEFAULT_ANNUAL_DISCOUNT_RATE
from clvbayes.value.customers import continuous_rate
from clvbayes.value.draws import parameter_draws
from tests.test_interrupt import fake_nuts_fit, log_csv  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def rfm(cdnow_split):
    return cdnow_split


@pytest.fixture(scope="module")
def posterior(rfm):
    """BG/NBD and Gamma-Gamma with a (small, synthetic) posterior around the MLE."""
    return fake_nuts_fit(clvbayes.BetaGeoModel(rfm), None, False), fake_nuts_fit(clvbayes.GammaGammaModel(rfm), None, False)


def _cols(rfm):
    return tuple(rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))


def _mean_over_draws(model, f):
    """Independent reference: the kernel at every draw, averaged."""
    d = parameter_draws(model)
    return np.mean([f(*(d[p][k] for p in model.param_names)) for k in range(d.n)], axis=0)


def test_methods_give_the_posterior_expectation(rfm, posterior):
    bg, _ = posterior
    x, t_x, T = _cols(rfm)
    cases = [
        (bg.probability_alive(), clvbayes.value.probability_alive(bg, rfm),
         lambda r, al, a, b: bgnbd_p_alive(r, al, a, b, x, t_x, T)),
        (bg.expected_purchases(39.0), clvbayes.value.expected_purchases(bg, rfm, horizon=39.0),
         lambda r, al, a, b: bgnbd_conditional_expected_purchases(r, al, a, b, x, t_x, T, 39.0)),
        (bg.probability_of_n_purchases(39.0, 2), clvbayes.value.probability_of_purchases(bg, rfm, horizon=39.0, n=2),
         lambda r, al, a, b: bgnbd_conditional_pmf(r, al, a, b, x, t_x, T, 39.0, 2)),
    ]
    for method, value, kernel in cases:
        np.testing.assert_array_equal(method.to_numpy(), value.summary["mean"].to_numpy())
        np.testing.assert_allclose(method.to_numpy(), _mean_over_draws(bg, kernel), rtol=1e-9, atol=1e-13)
        assert method.index.equals(rfm.index)


def test_dert_is_the_posterior_expectation_at_the_same_rate(rfm, posterior):
    bg, _ = posterior
    x, t_x, T = _cols(rfm)
    delta = 0.002
    got = bg.dert(delta)
    ref = _mean_over_draws(bg, lambda r, al, a, b: bgnbd_dert(r, al, a, b, x, t_x, T, np.full(x.shape, delta)))
    np.testing.assert_allclose(got.to_numpy(), ref, rtol=1e-9)
    annual = math.expm1(delta * 365.25 / 7)
    np.testing.assert_allclose(got.to_numpy(), clvbayes.value.dert(bg, rfm, discount_rate=annual).summary["mean"],
                               rtol=1e-12)


def test_unconditional_quantities_are_posterior_expectations(posterior):
    bg, _ = posterior
    t = np.array([10.0, 52.0, 104.0])
    ref = _mean_over_draws(bg, lambda r, al, a, b: bgnbd_expected_purchases(r, al, a, b, t))
    np.testing.assert_allclose(bg.expected_purchases_unconditional(t), ref, rtol=1e-10)
    assert isinstance(bg.expected_purchases_unconditional(52.0), float)
    n = np.array([0, 1, 4])
    ref = _mean_over_draws(bg, lambda r, al, a, b: bgnbd_pmf(r, al, a, b, 52.0, n))
    np.testing.assert_allclose(bg.probability_of_n_purchases_unconditional(52.0, n), ref, rtol=1e-10)


def test_expected_spend_is_the_posterior_expectation(rfm, posterior):
    _, gg = posterior
    x, m = rfm["frequency"].to_numpy(float), rfm["monetary_value"].to_numpy(float)
    got = gg.expected_spend()
    np.testing.assert_allclose(got.to_numpy(), _mean_over_draws(gg, lambda p, q, g: gg_expected_spend(p, q, g, x, m)),
                               rtol=1e-10)
    np.testing.assert_array_equal(got.to_numpy(), clvbayes.value.expected_spend(gg, rfm).summary["mean"].to_numpy())


def test_plugin_on_request_and_for_point_fits(rfm, posterior):
    bg, gg = posterior
    x, t_x, T = _cols(rfm)
    r, al, a, b = bg.params_.to_numpy()
    plug = bg.probability_alive(plugin=True)
    np.testing.assert_array_equal(plug.to_numpy(), bgnbd_p_alive(r, al, a, b, x, t_x, T))
    assert np.abs(plug - bg.probability_alive()).max() > 1e-6  # the two answers differ
    assert bg.expected_purchases_unconditional(52.0, plugin=True) == float(
        bgnbd_expected_purchases(r, al, a, b, np.array([52.0]))[0])
    with pytest.raises(TypeError, match="plugin"):
        bg.probability_alive(plugin="yes")
    # point fits: the kernels at the estimate, which the value functions reproduce
    mle = clvbayes.BetaGeoModel(rfm).fit_mle()
    r, al, a, b = mle.params_.to_numpy()
    np.testing.assert_array_equal(mle.probability_alive().to_numpy(), bgnbd_p_alive(r, al, a, b, x, t_x, T))
    np.testing.assert_array_equal(mle.probability_alive(plugin=True).to_numpy(), mle.probability_alive().to_numpy())


# -- holdout forecast -------------------------------------------------------------------------
def test_holdout_forecast_is_the_exact_expectation(rfm, posterior):
    bg, gg = posterior
    v = clvbayes.holdout_validation(bg, rfm, gamma_gamma=gg, random_seed=1)
    exact = clvbayes.value.expected_purchases(bg, rfm, horizon=39.0).summary["mean"].to_numpy()
    np.testing.assert_allclose(v.customers["mean"].to_numpy(), exact, rtol=1e-12)
    np.testing.assert_allclose(v.total["mean"], exact.sum(), rtol=1e-12)
    np.testing.assert_allclose(v.by_frequency.loc["0", "mean"], exact[rfm["frequency"].to_numpy() == 0].mean())
    x, t_x, T = _cols(rfm)
    m = rfm["monetary_value"].to_numpy(float)
    d = parameter_draws(bg)
    dg = parameter_draws(gg)
    spend = np.mean([
        bgnbd_conditional_expected_purchases(d["r"][k], d["alpha"][k], d["a"][k], d["b"][k], x, t_x, T, 39.0)
        * gg_expected_spend(dg["p"][k], dg["q"][k], dg["gamma"][k], x, m) for k in range(d.n)
    ], axis=0)
    np.testing.assert_allclose(v.customers["mean_spend"].to_numpy(), spend, rtol=1e-9)
    # intervals still come from the replicates, and the seed no longer moves the forecast
    other = clvbayes.holdout_validation(bg, rfm, gamma_gamma=gg, random_seed=2)
    np.testing.assert_array_equal(other.customers["mean"], v.customers["mean"])
    assert (v.customers["lower"] <= v.customers["upper"]).all()
    table = v.customer_table()
    assert list(table.columns) == [
        "actual_purchases", "forecast_purchases", "lower_purchases", "upper_purchases",
        "actual_spend", "forecast_spend", "lower_spend", "upper_spend",
    ]


def test_holdout_forecast_of_a_point_fit_is_the_model_prediction(rfm):
    bg = clvbayes.BetaGeoModel(rfm).fit_mle()
    v = clvbayes.holdout_validation(bg, rfm, random_seed=1)
    np.testing.assert_allclose(v.customers["mean"].to_numpy(), bg.expected_purchases(39.0).to_numpy(), rtol=1e-9)


def test_report_holds_a_per_customer_holdout_csv(tmp_path, log_csv, cdnow_transactions, monkeypatch):
    from tests.test_interrupt import run_fit_cli, small_log

    monkeypatch.setattr("clvbayes.workflow._fit", fake_nuts_fit)
    out = tmp_path / "report"
    assert run_fit_cli(log_csv, out) == 0
    table = pd.read_csv(out / "holdout.csv", index_col="customer_id")
    assert len(table) == 300
    assert {"actual_purchases", "forecast_purchases", "lower_purchases", "upper_purchases",
            "actual_spend", "forecast_spend"} <= set(table.columns)
    assert (table["lower_purchases"] <= table["upper_purchases"]).all()
    split = clvbayes.calibration_holdout_split(small_log(cdnow_transactions), calibration_end="1997-09-30",
                                               observation_end="1998-06-30")
    # joined on the id (the CLI keeps ids as the strings written, so its rows sort as text)
    np.testing.assert_array_equal(table.loc[split.index, "actual_purchases"].to_numpy(),
                                  split["frequency_holdout"].to_numpy())


# -- one default discount rate ------------------------------------------------------------------
def _default(function, name="discount_rate"):
    return inspect.signature(function).parameters[name].default


def test_one_default_discount_rate():
    from clvbayes.cli import _settings, build_parser
    from clvbayes.distributed import score_customers
    from clvbayes.workflow import AnalysisSettings

    assert DEFAULT_ANNUAL_DISCOUNT_RATE == 0.1
    for function in (clvbayes.customer_metrics, clvbayes.customer_lifetime_value, clvbayes.value.dert,
                     clvbayes.churn_analysis, score_customers):
        assert _default(function) == DEFAULT_ANNUAL_DISCOUNT_RATE, function.__name__
    assert AnalysisSettings().discount_rate == DEFAULT_ANNUAL_DISCOUNT_RATE
    args = build_parser().parse_args(["fit", "log.csv", "--out", "r"])
    assert _settings(args).discount_rate == DEFAULT_ANNUAL_DISCOUNT_RATE


def test_model_dert_default_is_the_annual_default_per_time_unit(rfm):
    bg = clvbayes.BetaGeoModel(rfm).fit_mle()
    np.testing.assert_array_equal(bg.dert().to_numpy(), bg.dert(continuous_rate(0.1, "W")).to_numpy())
    daily = rfm.copy()
    daily[["recency", "T"]] *= 7.0
    daily.attrs = {"time_unit": "D"}
    bgd = clvbayes.BetaGeoModel(daily).fit_mle()
    np.testing.assert_array_equal(bgd.dert().to_numpy(), bgd.dert(continuous_rate(0.1, "D")).to_numpy())
