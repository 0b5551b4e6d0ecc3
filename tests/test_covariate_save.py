"""Saving and loading models with covariates: the same design, draws and predictions."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

import clvbayes as cb

BG = dict(r=0.6, alpha=8.0, a=0.8, b=2.5)


@pytest.fixture(scope="module")
def data():
    parts = []
    for k, (ch, mult) in enumerate({"web": 1.0, "store": 0.5}.items()):
        df = cb.simulate_customers(**dict(BG, alpha=BG["alpha"] * mult), p=6.0, q=4.0, gamma=15.0, T=30.0,
                                   n_customers=150, seed=80 + k)
        df["channel"] = ch
        parts.append(df)
    out = pd.concat(parts, ignore_index=True)
    out["score"] = np.random.default_rng(3).normal(size=len(out)).round(2)
    out.index = pd.Index([f"{i:05d}" for i in range(len(out))], name="customer_id")  # leading zeros
    out.attrs["time_unit"] = "W"
    return out


@pytest.mark.parametrize("fit", ["map", "posterior"])
def test_purchase_model_round_trip(data, tmp_path, fit):
    m = cb.CovariatePurchaseModel(data, family="pnbd", purchase_covariates=["channel", "score"],
                                  dropout_covariates=["channel"], priors={"r": cb.Prior("HalfNormal", sigma=2.0)})
    if fit == "map":
        m.fit(method="map")
    else:
        rng = np.random.default_rng(1)
        post = {p: v * np.exp(rng.normal(0, 0.05, (2, 20))) for p, v in dict(r=0.6, alpha=8.0, s=0.7, beta=10.0).items()}
        post["gamma_purchase"] = rng.normal(0.2, 0.05, (2, 20, 2))
        post["gamma_dropout"] = rng.normal(0.1, 0.05, (2, 20, 1))
        m.idata_ = az.from_dict(posterior=post)
    path = m.save(tmp_path / "m.nc")
    back = cb.CovariatePurchaseModel.load(path)
    assert back.path == m.path and back.family.name == "pnbd" and back.priors["r"].params == m.priors["r"].params
    assert list(back.data.index) == list(data.index) and back.data.attrs["time_unit"] == "W"
    for side in ("purchase", "dropout"):
        np.testing.assert_array_equal(back.designs[side].matrix, m.designs[side].matrix)
    pd.testing.assert_series_equal(back.probability_alive(draws=None), m.probability_alive(draws=None))
    cd, cd2 = m.cell_draws(), back.cell_draws()
    for k in cd.values:
        np.testing.assert_array_equal(cd.values[k], cd2.values[k])
    pd.testing.assert_frame_equal(back.coefficient_summary(), m.coefficient_summary())


def test_spend_model_round_trip_and_wrong_class(data, tmp_path):
    s = cb.CovariateSpendModel(data, covariates=["channel"]).fit(method="map")
    path = s.save(tmp_path / "s.nc")
    back = cb.CovariateSpendModel.load(path)
    pd.testing.assert_series_equal(back.expected_spend(), s.expected_spend())
    with pytest.raises(ValueError, match="holds a CovariateSpendModel"):
        cb.CovariatePurchaseModel.load(path)
    with pytest.raises(FileNotFoundError):
        cb.CovariateSpendModel.load(tmp_path / "none.nc")
    with pytest.raises(RuntimeError, match="not fitted"):
        cb.CovariateSpendModel(data, covariates=["channel"]).save(tmp_path / "x.nc")


def test_hierarchical_model_round_trip(data, tmp_path):
    import pymc as pm

    df = data.assign(region=np.where(np.arange(len(data)) % 3 == 0, "north", "south"))
    m = cb.HierarchicalPurchaseModel(df, segment="region", purchase_covariates=["channel"])
    import warnings

    with warnings.catch_warnings():  # prior draws stand in for a posterior here: the likelihood is not needed
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        prior = pm.sample_prior_predictive(draws=20, model=m.model, random_seed=1).prior
    m.idata_ = az.InferenceData(posterior=prior)
    back = cb.HierarchicalPurchaseModel.load(m.save(tmp_path / "h.nc"))
    assert back.segment == "region" and list(back.segments) == ["north", "south"]
    pd.testing.assert_series_equal(back.probability_alive(draws=None), m.probability_alive(draws=None))
