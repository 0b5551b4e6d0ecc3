"""PSIS-LOO of models with covariates: equal to ArviZ's on the per-customer log-likelihood
(evaluated here with the family's scalar core, customer by customer), on both paths, and
side by side with the plain model in compare_models."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import clvbayes as cb
from clvbayes.comparison.covariate_loo import covariate_loo
from clvbayes.families import get_family

BASE = {"bgnbd": dict(r=0.6, alpha=8.0, a=0.8, b=2.5), "pnbd": dict(r=0.6, alpha=8.0, s=0.7, beta=10.0)}


def _data(family: str, n: int = 120) -> pd.DataFrame:
    parts = []
    for k, (ch, mult) in enumerate({"web": 1.0, "store": 0.5}.items()):
        df = cb.simulate_customers(**dict(BASE[family], alpha=BASE[family]["alpha"] * mult), model=family, T=30.0,
                                   n_customers=n, seed=20 + k)
        df["channel"] = ch
        parts.append(df)
    out = pd.concat(parts, ignore_index=True)
    out["customer_id"] = np.arange(len(out))
    out["spend_index"] = np.random.default_rng(4).normal(size=len(out)).round(1)
    return out


def _fake_posterior(model, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    post = {p: v * np.exp(rng.normal(0, 0.08, (2, 60))) for p, v in BASE[model.family.name].items()}
    for name, (_, d) in model.coefficient_names.items():
        post[name] = rng.normal(0.3, 0.1, (2, 60, d.n_terms))
    model.idata_ = az.from_dict(posterior=post)


def _arviz_loo(model):
    """az.loo on the per-customer log-likelihood, each term from the family's scalar core."""
    core = get_family(model.family.name).cores["loglik_one"]
    cd = model.cell_draws(None)
    names = model.family.param_names
    ll = np.empty((cd.n, model.x.size))
    for i in range(model.x.size):
        c = cd.cell[i]
        for s in range(cd.n):
            ll[s, i] = core(*(cd.values[p][c, s] for p in names), model.x[i], model.t_x[i], model.T[i])
    idata = model.idata_.copy()
    idata.add_groups(log_likelihood={"purchases": ll.reshape(2, 60, -1)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.loo(idata, pointwise=True)


@pytest.mark.parametrize("family", ["bgnbd", "pnbd"])
@pytest.mark.parametrize("max_loop_cells", [256, 0], ids=["by-cell", "per-row"])
def test_covariate_loo_equals_arviz_on_expanded_customers(family, max_loop_cells):
    df = _data(family)
    model = cb.CovariatePurchaseModel(df, family=family, purchase_covariates=["channel"],
                                      dropout_covariates=["channel"])
    _fake_posterior(model)
    ref = _arviz_loo(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cb.comparison.ParetoKWarning)
        res = covariate_loo(model, max_loop_cells=max_loop_cells)
    assert res.n_customers == len(df) and res.weights.size < len(df)  # compressed within cells
    assert res.elpd_loo == pytest.approx(ref.elpd_loo, rel=1e-10)
    assert res.se == pytest.approx(ref.se, rel=1e-8)
    assert res.p_loo == pytest.approx(ref.p_loo, rel=1e-8)
    np.testing.assert_allclose(res.elpd_i[res.inverse], ref.loo_i.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(res.pareto_k[res.inverse], ref.pareto_k.to_numpy(), rtol=1e-8, atol=1e-10)


def test_continuous_covariates_take_the_per_row_pass_and_equal_arviz():
    df = _data("bgnbd", 80)
    model = cb.CovariatePurchaseModel(df, purchase_covariates=["spend_index"])
    assert model.path == "rows"
    _fake_posterior(model, seed=8)
    ref = _arviz_loo(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cb.comparison.ParetoKWarning)
        res = cb.weighted_loo(model)  # routed to covariate_loo
    assert res.elpd_loo == pytest.approx(ref.elpd_loo, rel=1e-10)
    np.testing.assert_allclose(res.elpd_i[res.inverse], ref.loo_i.to_numpy(), rtol=1e-10)


def test_compare_models_puts_the_covariate_model_beside_the_plain_one():
    df = _data("bgnbd")
    cov = cb.CovariatePurchaseModel(df, purchase_covariates=["channel"])
    _fake_posterior(cov)
    plain = cb.BetaGeoModel(df)
    rng = np.random.default_rng(9)
    plain.idata_ = az.from_dict(posterior={p: v * np.exp(rng.normal(0, 0.08, (2, 60)))
                                           for p, v in BASE["bgnbd"].items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = cb.compare_models({"plain": plain, "channel": cov})
        ref = az.compare({"plain": _plain_loo(plain), "channel": _arviz_loo(cov)}, ic="loo")
    for name in ("plain", "channel"):
        assert table.loc[name, "elpd_loo"] == pytest.approx(ref.loc[name, "elpd_loo"], rel=1e-10)
    worse = table.index[1]
    assert table.loc[worse, "elpd_diff"] == pytest.approx(ref.loc[worse, "elpd_diff"], rel=1e-9)
    assert table.loc[worse, "dse"] == pytest.approx(ref.loc[worse, "dse"], rel=1e-8)


def _plain_loo(model):
    idata = model.idata_.copy()
    idata.add_groups(log_likelihood=cb.comparison.pointwise.log_likelihood_dataset(model))
    return az.loo(idata, pointwise=True)


def test_loo_needs_a_posterior():
    model = cb.CovariatePurchaseModel(_data("bgnbd", 30), purchase_covariates=["channel"]).fit(method="map")
    with pytest.raises(ValueError, match="no posterior"):
        covariate_loo(model)
