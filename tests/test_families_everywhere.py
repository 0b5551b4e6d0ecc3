"""Every layer above the models works for every registered family, from the public API.

For each family (BG/NBD, MBG/NBD, Pareto/NBD, and any family registered later): MLE and
save/load, predictions, customer value, equity, churn, stages, holdout validation, cohort
tracking, every plot, posterior/prior predictive checks, compressed-table fits, Dask scoring,
and (slow) NUTS with default priors on CDNOW plus SBC. The numbers themselves are checked in
each family's kernel tests (mpmath, published CDNOW estimates) and in the contract test; here
the checks are that every path runs, gives finite values in range, and agrees across paths
(per-customer method = value engine, compressed = full, Dask = in memory, saved = loaded).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import clvbayes  # noqa: E402
from clvbayes import plotting  # noqa: E402
from clvbayes.families import family_names  # noqa: E402

FAMILIES = family_names()


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return clvbayes.datasets.load_cdnow_sample()


@pytest.fixture(scope="module")
def split(log) -> pd.DataFrame:
    return clvbayes.calibration_holdout_split(log, calibration_end="1997-09-30")


@pytest.fixture(scope="module")
def spend(split):
    return clvbayes.GammaGammaModel(split).fit_mle()


@pytest.fixture(scope="module", params=FAMILIES)
def fitted(request, split):
    return clvbayes.model_class(request.param)(split).fit_mle()


def test_model_class_of_every_family(split):
    assert clvbayes.model_class("bgnbd") is clvbayes.BetaGeoModel
    assert clvbayes.model_class("mbgnbd") is clvbayes.ModifiedBetaGeoModel
    for name in FAMILIES:
        cls = clvbayes.model_class(name)
        assert issubclass(cls, clvbayes.PurchaseModel) and cls.family.name == name
        assert cls.param_names == cls.family.param_names


def test_predictions_are_finite_and_in_range(fitted, split):
    pa = fitted.probability_alive()
    assert pa.between(0, 1).all() and pa.index.equals(split.index)
    e = fitted.expected_purchases(39.0)
    assert np.isfinite(e).all() and (e >= 0).all()
    p0 = fitted.probability_of_n_purchases(39.0, 0)
    assert p0.between(0, 1).all()
    assert np.isfinite(fitted.dert()).all()
    assert fitted.expected_purchases_unconditional(np.array([1.0, 52.0])).shape == (2,)
    assert 0 < fitted.probability_of_n_purchases_unconditional(52.0, 0) < 1


def test_value_engine_equals_the_model_methods(fitted, split):
    """One answer per question: the value engine at the point estimate = the methods."""
    pa = clvbayes.probability_alive(fitted, split).summary["mean"]
    np.testing.assert_allclose(pa.to_numpy(), fitted.probability_alive().to_numpy(), rtol=1e-12)
    e = clvbayes.value.expected_purchases(fitted, split, horizon=39.0).summary["mean"]
    np.testing.assert_allclose(e.to_numpy(), fitted.expected_purchases(39.0).to_numpy(), rtol=2e-11)


def test_value_churn_equity_stages(fitted, spend, split):
    clv = clvbayes.customer_lifetime_value(fitted, spend, split, horizon=52, discount_rate=0.1, margin=0.3)
    assert np.isfinite(clv.summary["mean"]).all() and (clv.summary["mean"] >= 0).all()
    eq = clvbayes.customer_equity(clv)
    assert eq.summary.loc["total", "mean"] == pytest.approx(clv.summary["mean"].sum(), rel=1e-9)
    churn = clvbayes.churn_analysis(fitted, spend, split, period=13.0, horizon=52.0, contact_cost=1.0)
    assert churn.summary.loc["total", "customers"] == len(split)
    stages = clvbayes.lifecycle_stages(churn, new_window=4.0)
    assert len(stages) == len(split)
    counts = clvbayes.churn_analysis(fitted, None, split, period=13.0, horizon=52.0, contact_cost=1.0)
    assert "p_alive" in counts.customers


def test_holdout_validation_and_tracking(fitted, spend, split, log):
    v = clvbayes.holdout_validation(fitted, split, gamma_gamma=spend, random_seed=1)
    assert v.total["actual"] == 1882
    assert v.total["lower"] <= v.total["mean"] <= v.total["upper"]
    tr = clvbayes.purchase_tracking(fitted, log, calibration_end="1997-09-30", observation_end="1998-06-30")
    assert np.isfinite(tr["expected"]).all() if "expected" in tr else len(tr) > 0


def test_every_plot_draws(fitted, spend, split, log):
    clv = clvbayes.customer_lifetime_value(fitted, spend, split, horizon=52)
    v = clvbayes.holdout_validation(fitted, split, random_seed=1)
    tr = clvbayes.purchase_tracking(fitted, log, calibration_end="1997-09-30", observation_end="1998-06-30")
    calls = [
        lambda ax: plotting.plot_frequency_recency_matrix(fitted, ax=ax),
        lambda ax: plotting.plot_probability_alive_matrix(fitted, ax=ax),
        lambda ax: plotting.plot_period_transactions(fitted, random_seed=1, ax=ax),
        lambda ax: plotting.plot_calibration_holdout(v, ax=ax),
        lambda ax: plotting.plot_purchase_tracking(tr, ax=ax),
        lambda ax: plotting.plot_probability_alive_history(fitted, [0.0, 3.0, 10.0, 30.0], 38.0, ax=ax),
        lambda ax: plotting.plot_equity_posterior(clvbayes.customer_equity(clv), ax=ax),
        lambda ax: plotting.plot_pareto(clv, ax=ax),
    ]
    for call in calls:
        fig, ax = plt.subplots()
        assert call(ax) is not None
        plt.close(fig)


def test_save_load_and_compressed_table(fitted, split, tmp_path):
    path = fitted.save(tmp_path / "m.nc")
    loaded = clvbayes.load_model(path)
    assert type(loaded) is type(fitted)
    pd.testing.assert_series_equal(loaded.params_, fitted.params_)
    np.testing.assert_array_equal(loaded.probability_alive().to_numpy(), fitted.probability_alive().to_numpy())
    from clvbayes.distributed import compress_summary

    small = compress_summary(split[["frequency", "recency", "T"]])
    again = type(fitted)(small).fit_mle()
    np.testing.assert_allclose(again.params_.to_numpy(), fitted.params_.to_numpy(), rtol=1e-6)
    assert again.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-10)


def test_prior_predictive_and_dask_scoring(fitted, spend, split):
    prior = type(fitted)(split).sample_prior_predictive(20, random_seed=1)
    assert prior.prior_predictive["frequency"].shape == (1, 20, len(split))
    dd = pytest.importorskip("dask.dataframe")
    from clvbayes.distributed.scoring import score_customers

    res = score_customers(fitted, spend, dd.from_pandas(split, npartitions=3), horizon=52.0, segment=None)
    customers = res.customers.compute().loc[split.index]
    mem = clvbayes.customer_lifetime_value(fitted, spend, split, horizon=52.0, segment=None)
    np.testing.assert_allclose(customers["clv_mean"].to_numpy(), mem.summary["mean"].to_numpy(), rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_nuts_with_default_priors_converges_on_cdnow(name, split, spend):
    model = clvbayes.model_class(name)(split).fit(chains=4, draws=1000, tune=1000, random_seed=1, progressbar=False)
    problems = model.check_convergence()  # a list of what failed (r_hat, ESS, divergences, BFMI)
    assert problems == [], problems
    # the MLE lies inside the 94% HDI of every parameter (the posterior mean need not be near
    # it: Pareto/NBD's likelihood is a long ridge in (s, beta), skewed towards large values)
    table = model.posterior_summary()
    mle = clvbayes.model_class(name)(split).fit_mle().params_
    assert ((table["hdi_3%"] <= mle) & (mle <= table["hdi_97%"])).all(), (table, mle)
    pp = model.sample_posterior_predictive(horizon=39.0, n_draws=50, random_seed=1)
    assert "frequency_holdout" in pp.posterior_predictive
    clv = clvbayes.customer_lifetime_value(model, spend, split, horizon=52, n_draws=200)
    assert (clv.summary["hdi_3%"] <= clv.summary["mean"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_sbc_runs_for_every_family(name):
    res = clvbayes.simulation_based_calibration(
        clvbayes.model_class(name), n_customers=300, T=39.0, replicates=8, draws=200, thin=5, chains=2, tune=200,
        seed=3,
    )
    assert set(res.param_names) == set(clvbayes.model_class(name).param_names)
    assert (res.diagnostics["status"] != "failed").all()
