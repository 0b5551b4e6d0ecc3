"""Model state and persistence: the PyMC model follows data and priors; MLE/MAP fits save and
load; a loaded model carries its customer summary; unreadable files get a clear error."""

import arviz as az
import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.models.priors import Prior


@pytest.fixture(scope="module")
def rfm(cdnow_split):
    return cdnow_split


def _data_values(model):
    return {v.name: np.asarray(v.get_value()).copy() for v in model.model.data_vars}


def _same_data(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and np.array_equal(a[k], b[k]) for k in a)


# -- the cached PyMC model -------------------------------------------------------------------
def test_pymc_model_is_rebuilt_when_data_change(rfm):
    model = clvbayes.BetaGeoModel(rfm)
    first = _data_values(model)
    model.data = rfm.iloc[:300]
    assert _same_data(_data_values(model), _data_values(clvbayes.BetaGeoModel(rfm.iloc[:300])))
    assert not _same_data(_data_values(model), first)


def test_pymc_model_is_rebuilt_when_data_are_edited_in_place(rfm):
    data = rfm.copy()
    model = clvbayes.GammaGammaModel(data)
    before = _data_values(model)
    data.loc[data["frequency"] > 0, "monetary_value"] *= 2.0
    after = _data_values(model)
    assert not _same_data(after, before)
    assert _same_data(after, _data_values(clvbayes.GammaGammaModel(data.copy())))


def test_pymc_model_is_rebuilt_when_priors_change(rfm):
    model = clvbayes.BetaGeoModel(rfm)
    pm_model = model.model
    assert model.model is pm_model  # kept while nothing changes
    model.priors = {"r": Prior("Gamma", alpha=2.0, beta=1.0)}
    rebuilt = model.model
    assert rebuilt is not pm_model
    assert "gamma" in str(rebuilt["r"].owner.op).lower()


def test_a_new_fit_drops_the_old_posterior(rfm):
    model = clvbayes.BetaGeoModel(rfm)
    rng = np.random.default_rng(1)
    model.idata_ = az.from_dict(posterior={p: rng.uniform(0.5, 2.0, (2, 20)) for p in model.param_names})
    model.fit_mle()
    assert not hasattr(model, "idata_")
    mle = clvbayes.BetaGeoModel(rfm).fit_mle()
    # the MLE answers, not the leftover posterior
    np.testing.assert_array_equal(model.probability_alive(), mle.probability_alive())
    np.testing.assert_array_equal(
        clvbayes.probability_alive(model, rfm).summary["mean"], clvbayes.probability_alive(mle, rfm).summary["mean"]
    )


# -- save and load point fits ------------------------------------------------------------------
def test_mle_fit_saves_and_loads(rfm, tmp_path):
    bg = clvbayes.BetaGeoModel(rfm).fit_mle()
    loaded = clvbayes.BetaGeoModel.load(bg.save(tmp_path / "bg.nc"))
    pd.testing.assert_series_equal(loaded.params_, bg.params_)
    pd.testing.assert_series_equal(loaded.standard_errors_, bg.standard_errors_)
    pd.testing.assert_frame_equal(loaded.covariance_, bg.covariance_)
    assert loaded.log_likelihood_ == bg.log_likelihood_
    pd.testing.assert_frame_equal(loaded.summary(), bg.summary())
    assert not hasattr(loaded, "idata_")
    # predictions on the loaded summary (no data= given) equal the original's
    np.testing.assert_array_equal(loaded.probability_alive().to_numpy(), bg.probability_alive().to_numpy())
    np.testing.assert_array_equal(loaded.expected_purchases(39.0).to_numpy(), bg.expected_purchases(39.0).to_numpy())
    assert list(loaded.data.index[:3]) == list(rfm.index[:3])
    assert loaded.data.attrs["time_unit"] == rfm.attrs["time_unit"]


def test_map_and_from_params_fits_save_and_load(rfm, tmp_path):
    gg = clvbayes.GammaGammaModel(rfm).fit(method="map")
    loaded = clvbayes.GammaGammaModel.load(gg.save(tmp_path / "gg.nc"))
    pd.testing.assert_series_equal(loaded.params_, gg.params_)
    assert loaded.log_posterior_ == gg.log_posterior_ and hasattr(loaded, "map_")
    assert (loaded.n_customers_, loaded.n_excluded_) == (946, 1411)
    np.testing.assert_array_equal(loaded.expected_spend().to_numpy(), gg.expected_spend().to_numpy())

    published = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
    bare = clvbayes.BetaGeoModel.load(clvbayes.BetaGeoModel.from_params(published).save(tmp_path / "p.nc"))
    assert bare.data is None and bare.params_.to_dict() == published
    assert bare.expected_purchases_unconditional(52.0) == clvbayes.BetaGeoModel.from_params(
        published
    ).expected_purchases_unconditional(52.0)


def test_unfitted_model_cannot_be_saved(rfm, tmp_path):
    with pytest.raises(clvbayes.NotFittedError):
        clvbayes.BetaGeoModel(rfm).save(tmp_path / "x.nc")


def test_clv_of_loaded_models_needs_no_data(rfm, tmp_path):
    data = rfm.drop(columns=["frequency_holdout", "monetary_value_holdout", "duration_holdout"], errors="ignore")
    data = data.assign(first_purchase=pd.Timestamp("1997-01-01") + pd.to_timedelta(
        np.round((data["T"].max() - data["T"]) * 7), unit="D"))
    data.attrs = dict(rfm.attrs)
    bg = clvbayes.BetaGeoModel(data).fit_mle()
    gg = clvbayes.GammaGammaModel(data[["frequency", "monetary_value"]]).fit_mle()
    lbg = clvbayes.BetaGeoModel.load(bg.save(tmp_path / "bg.nc"))
    lgg = clvbayes.GammaGammaModel.load(gg.save(tmp_path / "gg.nc"))
    want = clvbayes.customer_lifetime_value(bg, gg, data, horizon=52.0, margin=0.3)
    got = clvbayes.customer_lifetime_value(lbg, lgg, horizon=52.0, margin=0.3)
    np.testing.assert_array_equal(got.summary["mean"].to_numpy(), want.summary["mean"].to_numpy())
    # acquisition cohorts come from the saved first purchases
    assert got.settings["segment"] == "cohort"
    xr_equal = got.totals.to_numpy() == want.totals.to_numpy()
    assert xr_equal.all()


def test_saved_posterior_keeps_the_value_columns(rfm, tmp_path):
    from tests.test_interrupt import fake_nuts_fit

    gg = fake_nuts_fit(clvbayes.GammaGammaModel(rfm), None, False)
    bg = fake_nuts_fit(clvbayes.BetaGeoModel(rfm), None, False)
    lbg = clvbayes.BetaGeoModel.load(bg.save(tmp_path / "bg.nc"))
    lgg = clvbayes.GammaGammaModel.load(gg.save(tmp_path / "gg.nc"))
    assert {"frequency", "recency", "T", "monetary_value"} <= set(lbg.data.columns)
    got = clvbayes.customer_lifetime_value(lbg, lgg, horizon=52.0, segment=None)
    want = clvbayes.customer_lifetime_value(bg, gg, rfm, horizon=52.0, segment=None)
    np.testing.assert_allclose(got.summary["mean"].to_numpy(), want.summary["mean"].to_numpy(), rtol=1e-14)


# -- unreadable files --------------------------------------------------------------------------
def test_truncated_file_names_the_file(rfm, tmp_path):
    path = clvbayes.BetaGeoModel(rfm).fit_mle().save(tmp_path / "bg.nc")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"bg\.nc cannot be read.*truncated or corrupted"):
        clvbayes.BetaGeoModel.load(path)
    path.write_bytes(b"not a netCDF file at all")
    with pytest.raises(ValueError, match=r"bg\.nc cannot be read"):
        clvbayes.BetaGeoModel.load(path)


def test_foreign_netcdf_and_missing_file(tmp_path):
    path = tmp_path / "other.nc"
    az.from_dict(posterior={"mu": np.zeros((1, 5))}).to_netcdf(str(path))
    with pytest.raises(ValueError, match=r"other\.nc is not a clvbayes model file"):
        clvbayes.BetaGeoModel.load(path)
    with pytest.raises(FileNotFoundError, match="nope.nc"):
        clvbayes.BetaGeoModel.load(tmp_path / "nope.nc")


def test_file_of_the_other_model_class(rfm, tmp_path):
    path = clvbayes.GammaGammaModel(rfm).fit_mle().save(tmp_path / "gg.nc")
    with pytest.raises(ValueError, match="holds a GammaGammaModel fit, not a BetaGeoModel"):
        clvbayes.BetaGeoModel.load(path)
