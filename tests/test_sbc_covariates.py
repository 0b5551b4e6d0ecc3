"""Simulation-based calibration of the covariate and hierarchical models (Talts et al. 2018).

Quick tests: the per-customer simulator against the plain one (exactly, customer by
customer, and in distribution), the spend-given-frequency simulator against the plain one
in distribution, and the SBC loop on fake "fits" whose posterior is the fit's own prior
(calibrated by construction: must pass; with a wrong simulation prior: must fail). The slow
tests run real NUTS fits of the three models on data sets drawn from their priors.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import arviz as az
import clvbayes.sbc_covariates as sbcc
from clvbayes.models.covariate import CovariatePurchaseModel
from clvbayes.models.covariate_spend import CovariateSpendModel
from clvbayes.models.hierarchical import HierarchicalPurchaseModel
from clvbayes.sbc_covariates import covariate_sbc, sbc_attributes
from clvbayes.simulation import simulate_customers, simulate_customers_by_row, simulate_spend

T_GRID = np.tile(np.arange(1.0, 53.0), 6)  # 312 customers aged 1..52 weeks, as tests/test_sbc.py


# -- the simulators -------------------------------------------------------------------------


@pytest.mark.parametrize("model,names", [("bgnbd", ["r", "alpha", "a", "b"]), ("pnbd", ["r", "alpha", "s", "beta"])])
@pytest.mark.parametrize("spend", [False, True])
def test_by_row_is_the_plain_simulator_customer_by_customer(model, names, spend):
    rng = np.random.default_rng(5)
    n = 40
    params = pd.DataFrame({k: rng.uniform(0.3, 3.0, n) * (10.0 if k in ("alpha", "beta") else 1.0) for k in names})
    if spend:
        params = params.assign(p=rng.uniform(1, 5, n), q=rng.uniform(2, 6, n), gamma=rng.uniform(5, 20, n))
    T = rng.uniform(1.0, 60.0, n)
    out = simulate_customers_by_row(params, T=T, model=model, seed=17)
    seeds = np.random.default_rng(17).integers(0, 2**62, size=n)
    for i in range(n):
        one = simulate_customers(**params.iloc[i].to_dict(), T=T[i : i + 1], model=model, seed=int(seeds[i]))
        for col in out.columns:
            assert out[col].iloc[i] == one[col].iloc[0] or (np.isnan(out[col].iloc[i]) and np.isnan(one[col].iloc[0]))
    assert list(out.columns) == [c for c in one.columns]


def test_by_row_with_equal_parameters_has_the_plain_distribution():
    n = 20000
    theta = {"r": 0.8, "alpha": 6.0, "a": 0.9, "b": 2.5}
    by_row = simulate_customers_by_row(pd.DataFrame(theta, index=range(n)), T=30.0, seed=3)
    plain = simulate_customers(**theta, T=30.0, n_customers=n, seed=4)
    capped = [np.bincount(np.minimum(f["frequency"], 12), minlength=13) for f in (by_row, plain)]
    assert stats.chi2_contingency(np.array(capped)).pvalue > 0.01
    assert stats.ks_2samp(by_row["true_lambda"], plain["true_lambda"]).pvalue > 0.01
    # and a parameter change is visible: the test can fail
    other = simulate_customers_by_row(pd.DataFrame({**theta, "alpha": 5.0}, index=range(n)), T=30.0, seed=3)
    capped[0] = np.bincount(np.minimum(other["frequency"], 12), minlength=13)
    assert stats.chi2_contingency(np.array(capped)).pvalue < 1e-6


def test_by_row_rejects_bad_parameters():
    with pytest.raises(ValueError, match="missing"):
        simulate_customers_by_row(pd.DataFrame({"r": [1.0]}), T=1.0, seed=0)
    with pytest.raises(ValueError, match="positive"):
        simulate_customers_by_row(pd.DataFrame({"r": [1.0], "alpha": [-1.0], "a": [1.0], "b": [1.0]}), T=1.0, seed=0)
    with pytest.raises(ValueError, match="ages"):
        simulate_customers_by_row(pd.DataFrame({"r": [1.0], "alpha": [1.0], "a": [1.0], "b": [1.0]}), T=[1.0, 2.0],
                                  seed=0)


def test_spend_given_frequency_has_the_plain_distribution():
    spend = {"p": 3.0, "q": 4.0, "gamma": 15.0}
    plain = simulate_customers(0.8, 3.0, 0.5, 3.0, T=40.0, n_customers=30000, seed=8, **spend)
    mine = simulate_spend(plain["frequency"], **spend, seed=9)
    assert np.all(mine[plain["frequency"].to_numpy() == 0] == 0.0)
    for x in (1, 2, 4):
        sel = plain["frequency"].to_numpy() == x
        assert sel.sum() > 500
        assert stats.ks_2samp(mine[sel], plain["monetary_value"].to_numpy()[sel]).pvalue > 0.01
    wrong = simulate_spend(plain["frequency"], **{**spend, "gamma": 13.5}, seed=9)
    sel = plain["frequency"].to_numpy() == 1
    assert stats.ks_2samp(wrong[sel], plain["monetary_value"].to_numpy()[sel]).pvalue < 1e-4


def test_sbc_attributes_are_seeded():
    a = sbc_attributes(300, seed=1, n_segments=4)
    pd.testing.assert_frame_equal(a, sbc_attributes(300, seed=1, n_segments=4))
    assert set(a["channel"]) == {"app", "store", "web"} and a["tenure"].gt(0).all()
    assert a["segment"].value_counts().tolist() == [75] * 4


# -- the loop on fake fits --------------------------------------------------------------------


class PriorCovariate(CovariatePurchaseModel):
    """Replaces NUTS: the 'posterior' is drawn from the fit's own prior (calibrated whatever
    the data, Talts et al. 2018 section 3); records the data it was given."""

    calls: list = []

    def fit(self, method="nuts", *, chains, draws, tune, random_seed, progressbar, **kwargs):
        assert method == "nuts" and progressbar is False
        type(self).calls.append(self.data.copy())
        rng = np.random.default_rng(random_seed)
        priors = self._resolved_priors()
        post = {p: np.abs(rng.normal(0.0, priors[p].params["sigma"], size=(chains, draws))) for p in self.param_names}
        for name, (_, design) in self.coefficient_names.items():
            post[name] = rng.normal(0.0, self.coefficient_prior_sigma, size=(chains, draws, design.n_terms))
        self.idata_ = az.from_dict(posterior=post, sample_stats={"diverging": np.zeros((chains, draws), bool)})
        return self


COV_KW = {"purchase_covariates": ["channel", "tenure"], "dropout_covariates": ["channel"]}


def _fake(**kw):
    args = dict(T=T_GRID[:60], model_kwargs=COV_KW, replicates=40, draws=50, thin=1, chains=2, tune=0, seed=4)
    args.update(kw)
    return covariate_sbc(PriorCovariate, sbc_attributes(60, seed=2), **args)


def test_fake_calibrated_fit_passes_and_covers_at_the_nominal_rate():
    PriorCovariate.calls = []
    res = _fake()
    assert res.n_failed == 0 and res.n_draws == 100 and res.n_bins == 4
    assert set(res.param_names) >= {"r", "gamma_purchase[tenure]", "gamma_a[channel[store]]"}
    assert len(res.param_names) == 4 + 3 + 2 + 2
    assert res.all_uniform(0.001), res.summary()
    cov = res.coverage()
    lo, hi = (stats.binom.ppf(q, 40, [0.5, 0.9]) / 40 for q in (0.0005, 0.9995))
    assert ((cov.to_numpy() >= lo) & (cov.to_numpy() <= hi)).all(), cov
    # the coefficients' truths follow their prior N(0, 1)
    assert stats.kstest(res.true_values["gamma_purchase[tenure]"], stats.norm().cdf).pvalue > 0.01


def test_fake_fit_with_a_wrong_simulation_prior_fails():
    # truths from N(0, 5), fits assume N(0, 1): ~74 % of truths outside the 90 % interval
    res = _fake(simulation_model_kwargs={"coefficient_prior_sigma": 5.0})
    coefs = [n for n in res.param_names if n.startswith("gamma_")]
    assert all(res.p_values[n] < 0.01 for n in coefs), res.summary()
    assert (res.coverage().loc[coefs, "90%"] < 0.6).all()
    assert all(res.p_values[n] > 0.001 for n in ("r", "alpha", "a", "b"))  # base priors match
    assert not res.all_uniform()


def test_fake_fit_sees_customers_simulated_from_the_truth(monkeypatch):
    """Each replicate's customers are simulated at base exp(±z'γ) of that replicate's truth."""
    seen = []
    real = sbcc.simulate_customers_by_row

    def recording(parameters, **kw):
        seen.append(parameters.copy())
        return real(parameters, **kw)

    monkeypatch.setattr(sbcc, "simulate_customers_by_row", recording)
    PriorCovariate.calls = []
    res = _fake(replicates=3)
    design = PriorCovariate(PriorCovariate.calls[0], **COV_KW, priors=res.priors)
    zp, zd = design.designs["purchase"].matrix, design.designs["dropout"].matrix
    for i, (params, data) in enumerate(zip(seen, PriorCovariate.calls, strict=True)):
        t = {n: v[i] for n, v in res.true_values.items()}
        gp = np.array([t[f"gamma_purchase[{k}]"] for k in design.designs["purchase"].names])
        ga = np.array([t[f"gamma_a[{k}]"] for k in design.designs["dropout"].names])
        gb = np.array([t[f"gamma_b[{k}]"] for k in design.designs["dropout"].names])
        np.testing.assert_allclose(params["r"], t["r"])
        np.testing.assert_allclose(params["alpha"], t["alpha"] * np.exp(-zp @ gp), rtol=1e-12)
        np.testing.assert_allclose(params["a"], t["a"] * np.exp(zd @ ga), rtol=1e-12)
        np.testing.assert_allclose(params["b"], t["b"] * np.exp(zd @ gb), rtol=1e-12)
        assert (data["channel"].to_numpy() == sbc_attributes(60, seed=2)["channel"].to_numpy()).all()


class PriorHierarchical(HierarchicalPurchaseModel):
    """Fake fit of the hierarchical model: the 'posterior' is its own prior (module
    docstring of clvbayes.models.hierarchical), drawn with NumPy."""

    calls: list = []

    def fit(self, method="nuts", *, chains, draws, tune, random_seed, progressbar, **kwargs):
        type(self).calls.append(self.data.copy())
        rng = np.random.default_rng(random_seed)
        post = {}
        for p, centre in self._hyper_centres().items():
            mu = rng.normal(centre, 2.0, size=(chains, draws))
            sigma = np.abs(rng.normal(0.0, self.sigma_prior, size=(chains, draws)))
            eps = rng.normal(size=(chains, draws, self.n_segments))
            post.update({f"mu_{p}": mu, f"sigma_{p}": sigma,
                         f"{p}_segment": np.exp(mu[..., None] + sigma[..., None] * eps)})
        self.idata_ = az.from_dict(posterior=post, dims={f"{p}_segment": ["segment"] for p in self.param_names},
                                   coords={"segment": list(self.segments)})
        return self


def _fake_hier(monkeypatch=None, **kw):
    args = dict(T=T_GRID[:60], model_kwargs={"segment": "segment"}, replicates=40, draws=50, thin=1, chains=2,
                tune=0, seed=6)
    args.update(kw)
    return covariate_sbc(PriorHierarchical, sbc_attributes(60, seed=2, n_segments=3), **args)


def test_fake_hierarchical_is_calibrated_couples_segments_and_detects_a_wrong_hyperprior(monkeypatch):
    seen = []
    real = sbcc.simulate_customers_by_row

    def recording(parameters, **kw):
        seen.append(parameters.copy())
        return real(parameters, **kw)

    monkeypatch.setattr(sbcc, "simulate_customers_by_row", recording)
    res = _fake_hier()
    assert len(res.param_names) == 4 * (2 + 3) and "alpha_segment[s2]" in res.param_names
    assert res.all_uniform(0.001), res.summary()
    segment = sbc_attributes(60, seed=2, n_segments=3)["segment"].to_numpy()
    for i, params in enumerate(seen):  # each customer at its segment's true parameters
        for p in ("r", "alpha", "a", "b"):
            truth = np.array([res.true_values[f"{p}_segment[{s}]"][i] for s in segment])
            np.testing.assert_allclose(params[p], truth, rtol=1e-12)
        mu, sigma = res.true_values["mu_r"][i], res.true_values["sigma_r"][i]
        assert np.all(np.abs(np.log([res.true_values[f"r_segment[s{k}]"][i] for k in range(3)]) - mu) < 6 * sigma)
    wrong = _fake_hier(simulation_model_kwargs={"sigma_prior": 3.0})
    sigmas = [f"sigma_{p}" for p in ("r", "alpha", "a", "b")]
    assert all(wrong.p_values[n] < 1e-3 for n in sigmas), wrong.summary()


def test_argument_checks():
    with pytest.raises(TypeError, match="model_class"):
        covariate_sbc(dict, sbc_attributes(10, seed=0), T=1.0, model_kwargs={}, seed=0)
    with pytest.raises(TypeError, match="random_seed"):
        _fake(random_seed=1)
    with pytest.raises(ValueError, match="T must"):
        _fake(T=np.ones(3))
    with pytest.raises(ValueError, match="bgnbd_params"):
        _fake(bgnbd_params={"r": 1.0})


# -- real NUTS fits ---------------------------------------------------------------------------


def _report(res):
    d = res.diagnostics
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 100):
        print(
            f"\n{res!r}\nwall {res.seconds:.0f} s; status {d['status'].value_counts().to_dict()}; "
            f"median replicate {d['seconds'].median():.2f} s; with divergences {(d['divergences'] > 0).sum()} "
            f"(total {d['divergences'].sum()}); max r_hat > 1.01: {(d['max_r_hat'] > 1.01).sum()} "
            f"(max {d['max_r_hat'].max():.3f}); min ess_bulk {d['min_ess_bulk'].min():.0f} (L = {res.n_draws})"
            f"\n{pd.concat([res.summary(), res.coverage()], axis=1)}"
        )


# sized for <= ~8 min for the three on 2 busy cores (measured in docs/guide/sbc.md)
SLOW = dict(replicates=100, draws=300, tune=300, thin=6, chains=2)


def _check(res):
    _report(res)
    assert res.n_failed == 0
    # many parameters: family-wise ~2.5 % false alarm at 0.001 each
    assert min(res.p_values.values()) > 0.001, res.summary()
    lo, hi = (stats.binom.ppf(q, res.replicates, [0.5, 0.9]) / res.replicates for q in (0.0005, 0.9995))
    cov = res.coverage().to_numpy()
    assert ((cov >= lo) & (cov <= hi)).all(), res.coverage()


@pytest.mark.slow
def test_sbc_covariate_purchase_nuts():
    res = covariate_sbc(CovariatePurchaseModel, sbc_attributes(T_GRID.size, seed=1), T=T_GRID, model_kwargs=COV_KW,
                        seed=2018, **SLOW)
    _check(res)


@pytest.mark.slow
def test_sbc_covariate_spend_nuts():
    res = covariate_sbc(CovariateSpendModel, sbc_attributes(T_GRID.size, seed=1), T=T_GRID,
                        model_kwargs={"covariates": ["channel", "tenure"]}, seed=2018, **SLOW)
    _check(res)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CLVBAYES_LONG_SBC") != "1",
                    reason="fits with divergences in every replicate (docs/guide/sbc.md): set CLVBAYES_LONG_SBC=1 to run it")
def test_sbc_hierarchical_nuts():
    """Out of CI: under the default hyperprior (mu_p ~ N(log m_p, 2)) many data sets have
    segments with r and alpha in the hundreds, where BG/NBD identifies only r / alpha and NUTS
    needs long trees. Run to completion on 2 cores: 339 s, passed (smallest p 0.024), but every
    replicate had divergences (248 in all) and max r_hat reached 1.22 (docs/guide/sbc.md), so a
    pass is weak evidence. 20 replicates, 3 segments, no covariates: the smallest run whose
    4-bin test can still fail."""
    res = covariate_sbc(HierarchicalPurchaseModel, sbc_attributes(T_GRID.size, seed=1, n_segments=3), T=T_GRID,
                        model_kwargs={"segment": "segment"}, seed=2018, bins=4, **{**SLOW, "replicates": 20})
    _check(res)


@pytest.mark.slow
def test_sbc_covariate_spend_nuts_detects_a_wrong_prior():
    """The real-NUTS test can fail: truths of delta from N(0, 1), fits assume N(0, 0.1).

    (A prior wider than the fit's, N(0, 5) against N(0, 1), was measured to be too weak at
    40 replicates: the data dominate and the smallest p-value was 0.034.)"""
    res = covariate_sbc(CovariateSpendModel, sbc_attributes(T_GRID.size, seed=1), T=T_GRID,
                        model_kwargs={"covariates": ["channel", "tenure"], "coefficient_prior_sigma": 0.1},
                        simulation_model_kwargs={"coefficient_prior_sigma": 1.0}, seed=2018,
                        **{**SLOW, "replicates": 40})
    _report(res)
    deltas = [n for n in res.param_names if n.startswith("delta")]
    assert min(res.p_values[n] for n in deltas) < 0.001, res.summary()
    assert not res.all_uniform()
