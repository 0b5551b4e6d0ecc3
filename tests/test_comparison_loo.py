"""Weighted PSIS-LOO and compare_models against arviz.loo / arviz.compare per customer.

The reference is ArviZ on the full per-customer log-likelihood (chain x draw x customer),
built from the same draws; clvbayes computes on distinct histories weighted by counts and
must give the same elpd, se, p_loo, every pointwise value and k to 1e-10.
"""

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.comparison import ParetoKWarning, compare_models, log_likelihood_dataset, weighted_loo
from clvbayes.families import get_family
from clvbayes.kernels.bgnbd import bgnbd_loglik_one

TOL = 1e-10
N_CUSTOMERS = 300


def arviz_loo(idata, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ's own k warning
        return az.loo(idata, pointwise=True, **kwargs)


def assert_loo_equal(res, ref):
    mine = res.to_arviz(pointwise=True)
    for key in ("elpd_loo", "se", "p_loo"):
        assert mine[key] == pytest.approx(ref[key], abs=TOL, rel=0), key
    assert mine["n_samples"] == ref["n_samples"] and mine["n_data_points"] == ref["n_data_points"]
    assert mine["warning"] == ref["warning"] and mine["good_k"] == ref["good_k"]
    np.testing.assert_allclose(mine["loo_i"].to_numpy(), ref["loo_i"].to_numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(mine["pareto_k"].to_numpy(), ref["pareto_k"].to_numpy(), rtol=0, atol=TOL)


@pytest.fixture(scope="module")
def small(cdnow_split):
    return cdnow_split.iloc[:N_CUSTOMERS]


@pytest.fixture(scope="module")
def nuts_fit(small):
    # a real posterior, small and fast (nutpie)
    return clvbayes.BetaGeoModel(small).fit(draws=300, tune=300, chains=2, random_seed=14, progressbar=False)


def with_log_likelihood(model):
    idata = az.InferenceData(posterior=model.idata_.posterior)
    idata.add_groups(log_likelihood=log_likelihood_dataset(model))
    return idata


def test_weighted_loo_equals_arviz_on_a_nuts_posterior(nuts_fit, small):
    res = weighted_loo(nuts_fit)
    assert res.n_customers == N_CUSTOMERS and res.weights.size < N_CUSTOMERS  # repeated histories
    assert_loo_equal(res, arviz_loo(with_log_likelihood(nuts_fit)))
    assert res.lppd == pytest.approx(res.p_loo + res.elpd_loo, abs=1e-9)
    # the customers come back in the data's order with their ids
    per = res.to_arviz(pointwise=True)["loo_i"]
    np.testing.assert_array_equal(per["customer_id"].to_numpy(), small.index.to_numpy())


def test_log_likelihood_dataset_is_the_scalar_core(nuts_fit, small):
    ds = log_likelihood_dataset(nuts_fit)
    assert ds["purchases"].dims == ("chain", "draw", "customer_id")
    post = nuts_fit.idata_.posterior
    for c, d, i in ((0, 0, 0), (1, 299, 17), (0, 150, 299)):
        theta = [float(post[p][c, d]) for p in ("r", "alpha", "a", "b")]
        row = small.iloc[i]
        ref = bgnbd_loglik_one(*theta, float(row["frequency"]), float(row["recency"]), float(row["T"]))
        assert float(ds["purchases"][c, d, i]) == ref


def test_log_likelihood_dataset_refuses_large(nuts_fit):
    with pytest.raises(ValueError, match="compare_models or clvbayes.weighted_loo"):
        log_likelihood_dataset(nuts_fit, max_values=1000)


def wide_posterior(params, seed, jitter=0.3, chains=4, draws=250):
    rng = np.random.default_rng(seed)
    return {k: v * np.exp(jitter * rng.standard_normal((chains, draws))) for k, v in params.items()}


def expanded_idata(posterior, x, t_x, T):
    from clvbayes.kernels.bgnbd import bgnbd_loglik

    S = next(iter(posterior.values())).shape
    draws = np.stack([posterior[p].ravel() for p in ("r", "alpha", "a", "b")], axis=1)
    ll = np.stack([bgnbd_loglik(*d, x, t_x, T) for d in draws]).reshape(*S, -1)
    return az.from_dict(posterior=posterior, log_likelihood={"y": ll})


def test_weights_and_blocks_with_heavy_tails(small):
    # synthetic wide draws make some customers' k > 0.7: warnings on both sides, same k
    params = clvbayes.BetaGeoModel(small).fit_mle().params_.to_dict()
    post = wide_posterior(params, seed=2, jitter=0.6)
    rows = clvbayes.compress_rows(*(small[c].to_numpy(float) for c in ("frequency", "recency", "T")))
    x, t_x, T = (c[rows.inverse] for c in rows.columns)
    ref = arviz_loo(expanded_idata(post, x, t_x, T))
    order = np.argsort(rows.inverse, kind="stable")  # the expansion of to_arviz: rows repeated in turn
    with pytest.warns(ParetoKWarning, match="customers"):
        res = weighted_loo(post, rows.columns, rows.weights, r_eff=None, block_bytes=8 * 1000 * 7)
    assert res.warning and ref["warning"]
    assert (res.pareto_k > 0.7).any()
    mine = res.to_arviz(pointwise=True)
    for key in ("elpd_loo", "se", "p_loo"):
        assert mine[key] == pytest.approx(ref[key], abs=TOL, rel=0)
    np.testing.assert_allclose(mine["loo_i"].to_numpy(), ref["loo_i"].to_numpy()[order], rtol=0, atol=TOL)
    np.testing.assert_allclose(mine["pareto_k"].to_numpy(), ref["pareto_k"].to_numpy()[order], rtol=0, atol=TOL)
    # one block or many: the same bits
    one = weighted_loo(post, rows.columns, rows.weights, warn=False)
    np.testing.assert_array_equal(one.elpd_i, res.elpd_i)
    np.testing.assert_array_equal(one.pareto_k, res.pareto_k)


def test_compressed_table_model_equals_full(small):
    from clvbayes.distributed import compress_summary

    full = clvbayes.BetaGeoModel(small).fit_mle()
    packed = clvbayes.BetaGeoModel(compress_summary(small[["frequency", "recency", "T"]]))
    post = wide_posterior(full.params_.to_dict(), seed=4, jitter=0.05)
    for m in (full, packed):
        m.idata_ = az.from_dict(posterior=post)
    a, b = weighted_loo(full), weighted_loo(packed)
    assert (a.elpd_loo, a.se, a.p_loo, a.n_customers) == (b.elpd_loo, b.se, b.p_loo, b.n_customers)
    per = b.to_arviz(pointwise=True)
    assert per["n_data_points"] == N_CUSTOMERS and per["loo_i"].size == N_CUSTOMERS
    assert log_likelihood_dataset(packed)["purchases"].shape == (4, 250, N_CUSTOMERS)


def test_constant_loglik_customer_is_exact():
    # T = 0: ln L = 0 for every draw, the LOO term is exactly 0 and not flagged
    post = wide_posterior({"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}, seed=1, jitter=0.05)
    rows = (np.array([0.0, 0.0, 2.0]), np.array([0.0, 0.0, 20.0]), np.array([0.0, 30.0, 30.0]))
    res = weighted_loo(post, rows, np.array([5.0, 10.0, 3.0]), r_eff=1.0)
    assert res.elpd_i[0] == 0.0 and res.lppd_i[0] == 0.0 and res.pareto_k[0] == -np.inf
    assert not res.warning and res.n_customers == 18
    assert res.pareto_k_counts().sum() == 18


def test_r_eff_is_arviz_rule(nuts_fit):
    # r_eff given explicitly equal to ArviZ's: same result; a different r_eff changes k
    res = weighted_loo(nuts_fit)
    post = nuts_fit.idata_.posterior
    ess = az.ess(post, method="mean")
    assert res.r_eff == pytest.approx(np.mean([float(ess[v]) for v in ess.data_vars]) / 600, rel=1e-12)
    other = weighted_loo(nuts_fit, r_eff=0.2)
    assert not np.allclose(other.pareto_k, res.pareto_k)
    ref = arviz_loo(with_log_likelihood(nuts_fit), reff=0.2)
    np.testing.assert_allclose(other.to_arviz(pointwise=True)["pareto_k"].to_numpy(), ref["pareto_k"].to_numpy(),
                               rtol=0, atol=TOL)


def test_weighted_loo_refusals(small):
    mle = clvbayes.BetaGeoModel(small).fit_mle()
    with pytest.raises(ValueError, match="no posterior"):
        weighted_loo(mle)
    with pytest.raises(ValueError, match="rows=\\(x, t_x, T\\)"):
        weighted_loo({"r": np.ones((2, 5))})
    with pytest.raises(ValueError, match="lacks the parameters"):
        weighted_loo({"r": np.ones((2, 5))}, rows=(np.ones(2), np.ones(2), np.ones(2)))


# -- compare_models -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def second_fit(small):
    # the same data under other priors: a second model to rank (different posterior)
    # (tight on purpose: the posterior of b stays near its prior, which the fit says)
    priors = {"b": clvbayes.Prior("HalfNormal", sigma=0.5), "a": clvbayes.Prior("HalfNormal", sigma=0.5)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clvbayes.WeakIdentificationWarning)
        return clvbayes.BetaGeoModel(small, priors=priors).fit(draws=300, tune=300, chains=2, random_seed=3,
                                                                progressbar=False)


def test_compare_models_equals_arviz_compare(nuts_fit, second_fit, small):
    mle = clvbayes.BetaGeoModel(small).fit_mle()
    table = compare_models({"default": nuts_fit, "tight": second_fit, "mle": mle})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = az.compare({"default": with_log_likelihood(nuts_fit), "tight": with_log_likelihood(second_fit)},
                         ic="loo", method="stacking")
    assert list(table.index[:2]) == list(ref.index)
    for name in ref.index:
        for col in ("elpd_loo", "se", "elpd_diff", "dse", "p_loo"):
            assert table.loc[name, col] == pytest.approx(ref.loc[name, col], abs=1e-9, rel=0), (name, col)
        assert table.loc[name, "rank"] == ref.loc[name, "rank"]
        assert bool(table.loc[name, "warning"]) == bool(ref.loc[name, "warning"])
    # the MLE fit: listed last, no LOO, said so
    assert table.index[-1] == "mle" and np.isnan(table.loc["mle", "elpd_loo"])
    assert "no posterior" in table.loc["mle", "note"] and pd.isna(table.loc["mle", "rank"])
    assert (table["n_customers"] == N_CUSTOMERS).all()


def test_compare_models_holdout_metrics_are_holdout_validation(nuts_fit, second_fit, small):
    table = compare_models({"default": nuts_fit, "tight": second_fit}, holdout=small, n_draws=200, random_seed=5)
    for name, model in (("default", nuts_fit), ("tight", second_fit)):
        hv = clvbayes.holdout_validation(model, small, n_draws=200, random_seed=5)
        for metric, col in (("MAE", "holdout_mae"), ("RMSE", "holdout_rmse"), ("bias", "holdout_bias"),
                            ("coverage", "holdout_coverage")):
            assert table.loc[name, col] == hv.metrics.loc["model", ("purchases", metric)]


def test_compare_models_refuses_different_data(nuts_fit, cdnow_split):
    other = clvbayes.BetaGeoModel(cdnow_split.iloc[:200]).fit_mle()
    with pytest.raises(ValueError, match="different data"):
        compare_models({"a": nuts_fit, "b": other})
    with pytest.raises(ValueError, match="non-empty"):
        compare_models({})


def test_family_of_a_model(nuts_fit):
    from clvbayes.comparison.pointwise import model_family

    assert model_family(nuts_fit) is get_family("bgnbd")
    with pytest.raises(TypeError, match="not a purchase model"):
        model_family(clvbayes.GammaGammaModel())


def test_fused_path_equals_block_path_and_arviz(small):
    # the fused Numba loop (log-likelihood, PSIS and elpd per block of rows in one threaded
    # kernel) against the block-by-block path a plain Python kernel takes, against ArviZ, and
    # for any block size or thread count: the same bits (rows are independent)
    import numba

    from clvbayes.kernels.bgnbd import bgnbd_loglik

    params = clvbayes.BetaGeoModel(small).fit_mle().params_.to_dict()
    post = wide_posterior(params, seed=5, jitter=0.5)
    rows = clvbayes.compress_rows(*(small[c].to_numpy(float) for c in ("frequency", "recency", "T")))
    fused = weighted_loo(post, rows.columns, rows.weights, warn=False)
    python = weighted_loo(post, rows.columns, rows.weights, warn=False,
                          loglik_rows=lambda *args: bgnbd_loglik(*args))
    for name in ("elpd_i", "lppd_i", "pareto_k"):
        np.testing.assert_allclose(getattr(fused, name), getattr(python, name), rtol=0, atol=1e-12)
    assert (fused.pareto_k > 0.7).any()  # smoothed, heavy tails
    x, t_x, T = (c[rows.inverse] for c in rows.columns)
    ref = arviz_loo(expanded_idata(post, x, t_x, T))
    order = np.argsort(rows.inverse, kind="stable")
    mine = fused.to_arviz(pointwise=True)
    np.testing.assert_allclose(mine["loo_i"].to_numpy(), ref["loo_i"].to_numpy()[order], rtol=0, atol=TOL)
    np.testing.assert_allclose(mine["pareto_k"].to_numpy(), ref["pareto_k"].to_numpy()[order], rtol=0, atol=TOL)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = weighted_loo(post, rows.columns, rows.weights, warn=False, block_bytes=8 * 1000 * 3)
    finally:
        numba.set_num_threads(threads)
    for name in ("elpd_i", "lppd_i", "pareto_k"):
        np.testing.assert_array_equal(getattr(one_thread, name), getattr(fused, name))


def test_non_finite_loglik_is_refused():
    post = wide_posterior({"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}, seed=1, jitter=0.05)
    rows = (np.array([1.0, 2.0, 3.0]), np.array([5.0, 20.0, 25.0]), np.array([30.0, 30.0, 30.0]))
    from clvbayes.kernels.bgnbd import bgnbd_loglik

    def broken(r, alpha, a, b, x, t_x, T):
        out = bgnbd_loglik(r, alpha, a, b, x, t_x, T)
        out[x == 2.0] = -np.inf
        return out

    from numba import njit

    @njit
    def broken_numba(r, alpha, a, b, x, t_x, T):  # the fused path: NaN for some draws only
        out = bgnbd_loglik(r, alpha, a, b, x, t_x, T)
        for i in range(x.size):
            if x[i] == 2.0 and r > 0.24:
                out[i] = np.nan
        return out

    for kernel in (broken, broken_numba):
        with pytest.raises(FloatingPointError, match="x=2, t_x=20, T=30"):
            weighted_loo(post, rows, r_eff=1.0, loglik_rows=kernel)
