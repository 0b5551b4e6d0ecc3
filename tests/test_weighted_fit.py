"""Fitting on a compressed table (distinct rows + ``customers`` counts) equals fitting on the
full customer summary: the likelihood is a sum of per-customer terms that depend only on
the row, so weighting each distinct row by its count is the same sum (Fader, Hardie & Lee
2005; the same idea as lifetimes' ``weights``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvbayes import BetaGeoModel, GammaGammaModel
from clvbayes.data.validate import DataValidationError
from clvbayes.distributed import GAMMA_GAMMA_COLUMNS, compress_summary


@pytest.fixture(scope="module")
def split(cdnow_split) -> pd.DataFrame:
    return cdnow_split


@pytest.fixture(scope="module")
def compressed(split) -> pd.DataFrame:
    return compress_summary(split)


def test_compressed_table_is_much_smaller_and_counts_every_customer(split, compressed):
    assert compressed["customers"].sum() == len(split)
    assert len(compressed) < len(split) / 2
    # every distinct (x, t_x, T) once, with its multiplicity
    counts = split.groupby(["frequency", "recency", "T"]).size()
    again = compressed.set_index(["frequency", "recency", "T"])["customers"]
    pd.testing.assert_series_equal(again.sort_index(), counts.rename("customers").sort_index())


def test_bgnbd_loglik_and_gradient_identical(split, compressed):
    full, _ = BetaGeoModel(split)._loglik_and_grad()
    weighted, _ = BetaGeoModel(compressed)._loglik_and_grad()
    for params in ([0.24, 4.4, 0.79, 2.4], [1.3, 0.2, 5.0, 0.01], [0.01, 50.0, 0.3, 30.0]):
        v1, g1 = full(np.array(params))
        v2, g2 = weighted(np.array(params))
        assert v1 == v2  # the kernel sees bit-identical rows and weights
        np.testing.assert_array_equal(g1, g2)


def test_bgnbd_mle_equal(split, compressed):
    a = BetaGeoModel(split).fit_mle()
    b = BetaGeoModel(compressed).fit_mle()
    np.testing.assert_allclose(b.params_.to_numpy(), a.params_.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(b.standard_errors_.to_numpy(), a.standard_errors_.to_numpy(), rtol=1e-6)
    assert b.log_likelihood_ == pytest.approx(a.log_likelihood_, rel=1e-12)
    # FHL 2005 published CDNOW estimates (r, alpha, a, b) = (0.243, 4.414, 0.793, 2.426)
    np.testing.assert_allclose(b.params_.to_numpy(), [0.243, 4.414, 0.793, 2.426], atol=6e-3)


def test_bgnbd_duplicate_rows_in_weighted_table_are_added(split, compressed):
    halves = pd.concat([compressed.assign(customers=1), compressed.assign(customers=compressed["customers"] - 1)])
    halves = halves.loc[halves["customers"] > 0].reset_index(drop=True)
    full, _ = BetaGeoModel(split)._loglik_and_grad()
    weighted, _ = BetaGeoModel(halves)._loglik_and_grad()
    p = np.array([0.3, 3.0, 0.9, 2.0])
    assert full(p)[0] == weighted(p)[0]


def test_bgnbd_pymc_logdensity_and_gradient_equal(split, compressed):
    m1, m2 = BetaGeoModel(split), BetaGeoModel(compressed)
    # the default alpha prior scales with the mean T: weighted mean = full mean (to rounding)
    for k in m1.param_names:
        d1, d2 = m1.priors_[k].to_dict(), m2.priors_[k].to_dict()
        assert d1["distribution"] == d2["distribution"]
        assert d2["sigma"] == pytest.approx(d1["sigma"], rel=1e-14)
    point = {"r_log__": -1.4, "alpha_log__": 1.5, "a_log__": -0.2, "b_log__": 0.9}
    lp1, lp2 = m1.model.compile_logp()(point), m2.model.compile_logp()(point)
    g1, g2 = m1.model.compile_dlogp()(point), m2.model.compile_dlogp()(point)
    assert float(lp2) == pytest.approx(float(lp1), rel=1e-13)
    np.testing.assert_allclose(g2, g1, rtol=1e-12)
    # the data the sampler sees: the same distinct rows and counts
    d1 = {v.name: v.get_value() for v in m1.model.data_vars}
    d2 = {v.name: v.get_value() for v in m2.model.data_vars}
    assert d1.keys() == d2.keys()
    for k in d1:
        np.testing.assert_array_equal(d1[k], d2[k])


def test_bgnbd_map_equal(split, compressed):
    a = BetaGeoModel(split).fit(method="map")
    b = BetaGeoModel(compressed).fit(method="map")
    np.testing.assert_allclose(b.params_.to_numpy(), a.params_.to_numpy(), rtol=1e-8)


def test_bgnbd_nuts_same_seed_same_draws(split, compressed):
    kw = {"chains": 1, "draws": 60, "tune": 60, "random_seed": 11, "progressbar": False}
    a = BetaGeoModel(split).fit(**kw)
    b = BetaGeoModel(compressed).fit(**kw)
    for name in a.param_names:
        np.testing.assert_allclose(b.idata_.posterior[name].values, a.idata_.posterior[name].values, rtol=1e-9)
    assert "customers" in b.idata_.constant_data


def test_gamma_gamma_weighted_equal(split):
    table = compress_summary(split, columns=GAMMA_GAMMA_COLUMNS)
    assert table["customers"].sum() == len(split)
    a = GammaGammaModel(split).fit_mle()
    b = GammaGammaModel(table).fit_mle()
    np.testing.assert_allclose(b.params_.to_numpy(), a.params_.to_numpy(), rtol=1e-8)
    assert (b.n_customers_, b.n_excluded_) == (a.n_customers_, a.n_excluded_)
    full, _ = a._loglik_and_grad()
    weighted, _ = b._loglik_and_grad()
    v1, g1 = full(np.array([6.0, 3.9, 15.0]))
    v2, g2 = weighted(np.array([6.0, 3.9, 15.0]))
    assert v1 == v2
    np.testing.assert_array_equal(g1, g2)
    point = {"p_log__": 1.8, "q_log__": 1.3, "gamma_log__": 2.7}
    assert float(b.model.compile_logp()(point)) == pytest.approx(float(a.model.compile_logp()(point)), rel=1e-13)


def test_predictions_on_compressed_table_are_per_row(split, compressed):
    model = BetaGeoModel(split).fit_mle()
    per_row = model.probability_alive(compressed)
    assert len(per_row) == len(compressed)
    per_customer = model.probability_alive(split)
    merged = split.reset_index().merge(
        compressed.assign(row_value=per_row.to_numpy()), on=["frequency", "recency", "T"], how="left"
    )
    np.testing.assert_array_equal(merged["row_value"].to_numpy(), per_customer.to_numpy())


@pytest.mark.parametrize(
    "bad",
    [[0], [-2], [1.5], [np.nan], [np.inf]],
)
def test_weight_column_validated(compressed, bad):
    table = compressed.copy()
    table["customers"] = table["customers"].astype(float)
    table.loc[3, "customers"] = bad[0]
    with pytest.raises(DataValidationError, match="'customers'"):
        BetaGeoModel(table).fit_mle()


def test_weight_column_must_be_numeric(compressed):
    table = compressed.assign(customers=compressed["customers"].astype(str))
    with pytest.raises(DataValidationError, match="'customers'.*numeric"):
        BetaGeoModel(table).fit_mle()
