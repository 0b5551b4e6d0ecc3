"""Bayesian BG/NBD and Gamma-Gamma: posterior quality, diagnostics, persistence, priors."""

import json

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.models.bayesian import ConvergenceDiagnosticWarning
from clvbayes.models.priors import Prior


@pytest.fixture(scope="module")
def bgnbd_posterior(cdnow_split):
    return clvbayes.BetaGeoModel(cdnow_split).fit(random_seed=11, progressbar=False)


def test_default_priors_converge_on_cdnow(bgnbd_posterior):
    # issue 3: r_hat <= 1.01, ess_bulk >= 400 for every parameter, zero divergences
    summary = bgnbd_posterior.summary()
    assert list(summary.index) == ["r", "alpha", "a", "b"]
    assert (summary["r_hat"] <= 1.01).all()
    assert (summary["ess_bulk"] >= 400).all()
    assert int(bgnbd_posterior.idata_.sample_stats["diverging"].sum()) == 0
    assert bgnbd_posterior.check_convergence() == []
    post = bgnbd_posterior.idata_.posterior
    assert post.sizes["chain"] == 4 and post.sizes["draw"] == 1000


def test_gamma_gamma_default_priors_converge_on_cdnow(cdnow_split):
    # issue 3: "Gamma-Gamma likewise on the 946 repeat buyers"
    fit = clvbayes.GammaGammaModel(cdnow_split).fit(random_seed=4, progressbar=False)
    assert fit.n_customers_ == 946
    summary = fit.summary()
    assert list(summary.index) == ["p", "q", "gamma"]
    assert (summary["r_hat"] <= 1.01).all()
    assert (summary["ess_bulk"] >= 400).all()
    assert int(fit.idata_.sample_stats["diverging"].sum()) == 0
    assert fit.check_convergence() == []
    # the posterior sits around the MLE (p 6.25, q 3.74, gamma 15.44); its sd is wide, so
    # compare on the scale of the posterior sd rather than Monte Carlo error
    mle = clvbayes.GammaGammaModel(cdnow_split).fit_mle().params_
    for name in ("p", "q", "gamma"):
        assert abs(summary.loc[name, "mean"] - mle[name]) < 1.0 * summary.loc[name, "sd"], name


def importance_sampling_posterior_means(rfm, prior_sigmas, n_draws=20_000, seed=5):
    """Posterior means by importance sampling: an independent route to the same posterior.

    Proposal: multivariate Student-t (4 dof) on log-parameters around the MLE with the
    inverse observed information; target: exact log-likelihood + half-normal log-priors +
    log-Jacobian of the log transform.
    """
    from scipy import stats

    from clvbayes.kernels.bgnbd import bgnbd_loglik_sum

    mle = clvbayes.BetaGeoModel(rfm).fit_mle()
    theta_hat = np.log(mle.params_.to_numpy())
    cov_log = mle.covariance_.to_numpy() / np.outer(np.exp(theta_hat), np.exp(theta_hat))
    proposal = stats.multivariate_t(loc=theta_hat, shape=2.0 * cov_log, df=4, seed=seed)
    theta = proposal.rvs(size=n_draws)
    rows = clvbayes.compress_rows(*(rfm[c].to_numpy(float) for c in ("frequency", "recency", "T")))
    x, t_x, T = rows.columns
    log_target = np.empty(n_draws)
    for i, th in enumerate(theta):
        params = np.exp(th)
        log_target[i] = (
            bgnbd_loglik_sum(*params, x, t_x, T, rows.weights)
            + stats.halfnorm.logpdf(params, scale=prior_sigmas).sum()
            + th.sum()
        )
    log_w = log_target - proposal.logpdf(theta)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    params = np.exp(theta)
    means = w @ params
    # delta-method standard error of a self-normalised IS mean
    se = np.sqrt(((w[:, None] * (params - means)) ** 2).sum(axis=0))
    ess = 1.0 / np.sum(w**2)
    return means, se, ess


def test_posterior_means_match_importance_sampling(bgnbd_posterior, cdnow_split):
    sigmas = np.array([5.0, 5.0 * cdnow_split["T"].mean(), 5.0, 20.0])  # the default priors
    means, se, ess = importance_sampling_posterior_means(cdnow_split, sigmas)
    assert ess > 2_500
    summary = bgnbd_posterior.summary()
    post = bgnbd_posterior.idata_.posterior
    for k, name in enumerate(("r", "alpha", "a", "b")):
        nuts_mean = float(post[name].mean())
        tol = 4.0 * np.hypot(summary.loc[name, "mcse_mean"], se[k]) + 1e-3 * abs(means[k])
        assert abs(nuts_mean - means[k]) < tol, (name, nuts_mean, means[k], tol)


def test_idata_holds_data_priors_and_settings(bgnbd_posterior, cdnow_split):
    idata = bgnbd_posterior.idata_
    assert {"posterior", "sample_stats", "constant_data"} <= set(idata.groups())
    np.testing.assert_array_equal(idata.constant_data["frequency"].values, cdnow_split["frequency"].to_numpy())
    attrs = idata.posterior.attrs
    assert attrs["clvbayes_model"] == "BetaGeoModel"
    priors = json.loads(attrs["clvbayes_priors"])
    assert priors["r"] == {"distribution": "HalfNormal", "sigma": 5.0}
    assert json.loads(attrs["clvbayes_fit"])["random_seed"] == 11


def test_save_load_roundtrip(bgnbd_posterior, tmp_path):
    path = bgnbd_posterior.save(tmp_path / "bgnbd.nc")
    loaded = clvbayes.BetaGeoModel.load(path)
    pd.testing.assert_series_equal(loaded.params_, bgnbd_posterior.params_)
    pd.testing.assert_series_equal(loaded.expected_purchases(39), bgnbd_posterior.expected_purchases(39))
    pd.testing.assert_frame_equal(loaded.summary(), bgnbd_posterior.summary())
    with pytest.raises(ValueError, match="not a GammaGammaModel"):
        clvbayes.GammaGammaModel.load(path)


def test_check_convergence_names_failures(cdnow_split):
    short = clvbayes.BetaGeoModel(cdnow_split).fit(chains=2, draws=30, tune=30, random_seed=3, progressbar=False)
    with pytest.warns(ConvergenceDiagnosticWarning) as caught:
        problems = short.check_convergence()
    assert any(p.startswith("ess_bulk of ") and "< 400" in p for p in problems)
    assert [str(w.message) for w in caught] == problems


def test_map_with_flat_priors_equals_mle(cdnow_split):
    flat = {name: Prior("Uniform", lower=0.0, upper=1e3) for name in ("r", "alpha", "a", "b")}
    map_fit = clvbayes.BetaGeoModel(cdnow_split, priors=flat).fit(method="map")
    mle = clvbayes.BetaGeoModel(cdnow_split).fit_mle()
    # the MAP is the mode on the natural scale (no Jacobian): with flat priors, the MLE
    pd.testing.assert_series_equal(map_fit.params_, mle.params_, rtol=1e-6)


def test_map_with_default_priors_matches_scipy(cdnow_split):
    """Independent route: scipy's Nelder-Mead on the naive likelihood plus scipy half-normal priors."""
    from scipy import optimize, stats

    from tests.test_models_mle import naive_bgnbd_loglik

    x, t_x, T = (cdnow_split[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    sigmas = np.array([5.0, 5.0 * T.mean(), 5.0, 20.0])

    def neg_log_post(theta):
        p = np.exp(theta)
        return -(naive_bgnbd_loglik(p, x, t_x, T) + stats.halfnorm.logpdf(p, scale=sigmas).sum())

    ref = optimize.minimize(neg_log_post, np.log([0.3, 4.0, 0.8, 2.0]), method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 20_000, "maxfev": 40_000})
    map_fit = clvbayes.BetaGeoModel(cdnow_split).fit(method="map")
    np.testing.assert_allclose(map_fit.params_.to_numpy(), np.exp(ref.x), rtol=1e-4)


def test_prior_validation_and_no_mutation(cdnow_split):
    with pytest.raises(ValueError, match="no parameter"):
        clvbayes.BetaGeoModel(cdnow_split, priors={"lam": Prior("HalfNormal", sigma=1.0)}).model
    with pytest.raises(ValueError, match="Unsupported prior distribution 'Normal'"):
        Prior("Normal", mu=0, sigma=1)
    with pytest.raises(ValueError, match="takes parameters"):
        Prior("HalfNormal", mu=1.0)
    with pytest.raises(TypeError, match="must be a clvbayes Prior"):
        clvbayes.BetaGeoModel(cdnow_split, priors={"r": 3.0}).model
    user = {"r": Prior("Gamma", alpha=2.0, beta=1.0)}
    model = clvbayes.BetaGeoModel(cdnow_split, priors=user)
    assert model.priors_["r"] == Prior("Gamma", alpha=2.0, beta=1.0)
    assert model.priors_["alpha"].distribution == "HalfNormal"
    assert list(user) == ["r"]  # the user's dict is not filled with defaults
    assert set(model.model.named_vars) >= {"r", "alpha", "a", "b"}


def test_fit_argument_errors(cdnow_split):
    model = clvbayes.BetaGeoModel(cdnow_split)
    with pytest.raises(ValueError, match="method"):
        model.fit(method="advi")
    with pytest.raises(ValueError, match="sampler"):
        model.fit(sampler="stan")
    with pytest.raises(ValueError, match="draws"):
        model.fit(draws=0)
    with pytest.raises(RuntimeError, match="no posterior"):
        model.check_convergence()


def test_same_seed_same_draws(cdnow_split):
    def short(seed):
        fit = clvbayes.BetaGeoModel(cdnow_split).fit(chains=2, draws=40, tune=40, random_seed=seed, progressbar=False)
        return fit.idata_.posterior

    first, again, other = short(7), short(7), short(8)
    for name in ("r", "alpha", "a", "b"):
        np.testing.assert_array_equal(first[name].values, again[name].values)
        assert not np.array_equal(first[name].values, other[name].values)


def test_compiled_sampler_is_reused_across_data_and_prior_values(cdnow_split, monkeypatch):
    import nutpie

    from clvbayes.models import bayesian

    calls = []
    real = nutpie.compile_pymc_model
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda m, **kw: calls.append(1) or real(m, **kw))
    monkeypatch.setattr(bayesian, "_NUTPIE_CACHE", bayesian.OrderedDict())

    def short(data, priors=None):
        fit = clvbayes.BetaGeoModel(data, priors=priors).fit(chains=2, draws=30, tune=30, random_seed=5, progressbar=False)
        return fit.idata_.posterior

    fresh = short(cdnow_split.iloc[:800])  # compiles
    other = short(cdnow_split, priors={"b": Prior("HalfNormal", sigma=7.0)})  # other size, mean T, prior value
    assert len(calls) == 1
    cached = short(cdnow_split.iloc[:800])
    assert len(calls) == 1
    # swapping data into the cached compiled model gives the draws of a fresh compilation
    for name in ("r", "alpha", "a", "b"):
        np.testing.assert_array_equal(fresh[name].values, cached[name].values)
    assert not np.array_equal(fresh["r"].values, other["r"].values)
    # only the model's variables are kept (no unconstrained r_log__ etc.)
    assert set(fresh.data_vars) == {"r", "alpha", "a", "b"}


def test_extended_model_is_compiled_anew(cdnow_split):
    import pymc as pm

    from clvbayes.models.bayesian import _graph_fingerprint

    model = clvbayes.BetaGeoModel(cdnow_split)
    before = _graph_fingerprint(model.model)
    assert _graph_fingerprint(clvbayes.BetaGeoModel(cdnow_split.iloc[:100]).model) == before
    assert _graph_fingerprint(clvbayes.BetaGeoModel(cdnow_split, priors={"r": Prior("Gamma", alpha=2.0, beta=1.0)}).model) != before
    with model.model:
        pm.Deterministic("mean_rate", model.model["r"] / model.model["alpha"])
    assert _graph_fingerprint(model.model) != before
    fit = model.fit(chains=1, draws=20, tune=20, random_seed=1, progressbar=False)
    assert "mean_rate" in fit.idata_.posterior


@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_draws_do_not_depend_on_the_number_of_cores(cdnow_split, sampler):
    def short(cores):
        fit = clvbayes.BetaGeoModel(cdnow_split.iloc[:500]).fit(
            sampler=sampler, chains=2, draws=25, tune=25, random_seed=9, progressbar=False, cores=cores
        )
        return fit.idata_

    one, two = short(1), short(2)
    for name in ("r", "alpha", "a", "b"):
        np.testing.assert_array_equal(one.posterior[name].values, two.posterior[name].values)
    assert json.loads(one.posterior.attrs["clvbayes_fit"])["random_seed"] == 9
