"""The data behind the plots (clvbayes.value.plotdata) against independent references:
the models' own point predictions per draw (BetaGeoModel.from_params), ArviZ's HDI, the
closed-form BG/NBD pmf (FHL 2005 eq. 8), the event-by-event simulator, rfm_summary, and the
full (draw x customer) CLV matrix."""

from __future__ import annotations

import functools
import math

import arviz as az
import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.data.validate import DataValidationError
from clvbayes.datasets import load_cdnow_sample
from clvbayes.kernels.bgnbd_predict import pmf_one
from clvbayes.kernels.simulate import simulate_population
from clvbayes.value.draws import parameter_draws
from clvbayes.value.plotdata import (
    customer_purchase_times,
    frequency_recency_grid,
    pareto_curve,
    period_transactions,
    probability_alive_history,
)

CAL_END, OBS_END = "1997-09-30", "1998-06-30"
#: CDNOW sample customer with 7 repeat purchases in calibration, the last 18 weeks before its end
CUSTOMER = 593


# -- models, shared with tests/test_plotting.py (one NUTS fit per session) -------------------
@functools.cache
def cdnow() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transactions, calibration/holdout split) of the CDNOW sample, weeks."""
    tx = load_cdnow_sample()
    return tx, clvbayes.calibration_holdout_split(tx, calibration_end=CAL_END, observation_end=OBS_END)


@functools.cache
def mle_models() -> tuple[clvbayes.BetaGeoModel, clvbayes.GammaGammaModel]:
    split = cdnow()[1]
    return clvbayes.BetaGeoModel(split).fit_mle(), clvbayes.GammaGammaModel(split).fit_mle()


@functools.cache
def nuts_model() -> clvbayes.BetaGeoModel:
    """A short NUTS fit (2 x 200 draws): enough draws for intervals, little time."""
    return clvbayes.BetaGeoModel(cdnow()[1]).fit(chains=2, draws=200, tune=200, random_seed=1, progressbar=False)


@pytest.fixture(scope="module")
def split() -> pd.DataFrame:
    return cdnow()[1]


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    return cdnow()[0]


@pytest.fixture(scope="module")
def bg_mle() -> clvbayes.BetaGeoModel:
    return mle_models()[0]


@pytest.fixture(scope="module")
def gg_mle() -> clvbayes.GammaGammaModel:
    return mle_models()[1]


@pytest.fixture(scope="module")
def bg_nuts() -> clvbayes.BetaGeoModel:
    return nuts_model()


@pytest.fixture(params=["mle", "nuts"])
def bg_any(request):
    return mle_models()[0] if request.param == "mle" else nuts_model()


def per_draw(model, n_draws: int | None, fn) -> np.ndarray:
    """``fn(point_model)`` for every draw of ``parameter_draws(model, n_draws)``, stacked:
    the reference evaluates each draw by the model class's own point prediction."""
    draws = parameter_draws(model, n_draws)
    rows = []
    for k in range(draws.n):
        point = clvbayes.BetaGeoModel.from_params({p: float(draws[p][k]) for p in ("r", "alpha", "a", "b")})
        rows.append(np.asarray(fn(point), dtype=np.float64))
    return np.vstack(rows)


def hdi(values: np.ndarray, prob: float = 0.94) -> np.ndarray:
    return np.asarray(az.hdi(np.asarray(values, dtype=np.float64), hdi_prob=prob))


# -- frequency / recency grid ------------------------------------------------------------------
@pytest.mark.parametrize("quantity", ["expected_purchases", "p_alive"])
def test_grid_equals_model_predictions_per_draw(bg_any, split, quantity):
    grid = frequency_recency_grid(bg_any, quantity, horizon=13.0, max_frequency=6, n_recency=9, n_draws=100)
    T = float(split["T"].max())
    assert list(grid.columns) == ["frequency", "recency", "mean", "sd", "lower", "upper"]
    assert len(grid) == 7 * 9
    np.testing.assert_array_equal(grid["frequency"].unique(), np.arange(7))
    np.testing.assert_allclose(grid["recency"].unique(), np.linspace(0, T, 9), rtol=0, atol=0)
    assert grid.attrs["T"] == T and grid.attrs["quantity"] == quantity and grid.attrs["time_unit"] == "W"

    # cells: frequency 0 at recency 0 and at a later recency (same customer: the value does
    # not depend on recency without repeat purchases), and repeat buyers across the grid
    cells = grid.iloc[[0, 5, 9, 9 + 4, 3 * 9 + 2, 6 * 9 + 8]]
    frame = pd.DataFrame({"frequency": cells["frequency"].to_numpy(),
                          "recency": np.where(cells["frequency"] > 0, cells["recency"], 0.0), "T": T})
    if quantity == "expected_purchases":
        ref = per_draw(bg_any, 100, lambda m: m.expected_purchases(13.0, data=frame))
    else:
        ref = per_draw(bg_any, 100, lambda m: m.probability_alive(data=frame))
    np.testing.assert_allclose(cells["mean"], ref.mean(axis=0), rtol=1e-10)
    if ref.shape[0] == 1:  # point estimate: no spread
        assert cells["sd"].isna().all()
        np.testing.assert_array_equal(cells["lower"], cells["mean"])
        np.testing.assert_array_equal(cells["upper"], cells["mean"])
    else:
        assert ref.shape[0] == 100  # 2 chains x 50 evenly spaced draws
        np.testing.assert_allclose(cells["sd"], ref.std(axis=0, ddof=1), rtol=1e-8)
        bounds = np.array([hdi(ref[:, j]) for j in range(ref.shape[1])])
        np.testing.assert_allclose(cells[["lower", "upper"]].to_numpy(), bounds, rtol=1e-10)
    if quantity == "p_alive":
        np.testing.assert_array_equal(grid.loc[grid["frequency"] == 0, "mean"], 1.0)


def test_grid_defaults_and_arguments(bg_mle, split):
    grid = frequency_recency_grid(bg_mle)
    assert grid["frequency"].max() == math.ceil(np.percentile(split["frequency"], 99))
    assert grid["recency"].max() == grid.attrs["T"] == split["T"].max()
    assert grid.groupby("frequency").size().eq(40).all()
    young = frequency_recency_grid(bg_mle, "p_alive", T=10.0, max_recency=5.0, n_recency=6, max_frequency=2)
    np.testing.assert_allclose(young["recency"].unique(), np.linspace(0, 5, 6))
    with pytest.raises(ValueError, match="quantity"):
        frequency_recency_grid(bg_mle, "clv")
    with pytest.raises(ValueError, match="max_recency"):
        frequency_recency_grid(bg_mle, T=10.0, max_recency=11.0)
    with pytest.raises(ValueError, match="n_recency"):
        frequency_recency_grid(bg_mle, n_recency=1)
    with pytest.raises(ValueError, match="hdi_prob"):
        frequency_recency_grid(bg_mle, hdi_prob=1.5)


# -- period transactions -------------------------------------------------------------------------
def _expected_counts(params, T: np.ndarray, k: int) -> np.ndarray:
    """Σ_i P(X(T_i) = j) for j < k, and the rest for "k+", by the closed-form pmf (FHL 2005
    eq. 8, the scalar kernel ``pmf_one``; not the simulation ``period_transactions`` uses)."""
    r, alpha, a, b = (float(v) for v in params)
    uniq, counts = np.unique(T, return_counts=True)
    out = np.zeros(k + 1)
    for Ti, c in zip(uniq, counts, strict=True):
        p = np.array([pmf_one(r, alpha, a, b, float(Ti), j) for j in range(k)])
        out[:k] += c * p
        out[k] += c * (1.0 - p.sum())
    return out


def test_period_transactions_point_estimate(bg_mle, split):
    table = period_transactions(bg_mle, max_frequency=7, n_draws=500, random_seed=3)
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"] and table.index.name == "frequency"
    observed = split["frequency"].clip(upper=7).value_counts().reindex(range(8), fill_value=0)
    np.testing.assert_array_equal(table["observed"], observed.to_numpy())
    assert table.attrs["source"] == "point" and table.attrs["n_draws"] == 500
    # every replicate counts every customer once
    assert table["mean"].sum() == pytest.approx(len(split), rel=1e-12)
    assert ((table["lower"] <= table["mean"]) & (table["mean"] <= table["upper"])).all()
    assert (table["upper"] > table["lower"]).all()  # process noise

    se = table["sd"].to_numpy() / math.sqrt(500)
    T = split["T"].to_numpy(dtype=np.float64)
    exact = _expected_counts(bg_mle.params_.to_numpy(), T, 7)
    np.testing.assert_array_less(np.abs(table["mean"].to_numpy() - exact), 5 * se)

    # the event-by-event simulator of clvbayes.kernels.simulate, 200 populations
    r, alpha, a, b = bg_mle.params_.to_numpy()
    sims = np.array([
        np.bincount(np.minimum(simulate_population(r, alpha, a, b, T, math.nan, math.nan, math.nan, False, 0.0,
                                                   seed)[0], 7), minlength=8)
        for seed in range(200)
    ])
    se_sim = np.sqrt(table["sd"].to_numpy() ** 2 / 500 + sims.std(axis=0, ddof=1) ** 2 / 200)
    np.testing.assert_array_less(np.abs(table["mean"].to_numpy() - sims.mean(axis=0)), 5 * se_sim)


def test_period_transactions_posterior(bg_nuts, split):
    table = period_transactions(bg_nuts, max_frequency=4, random_seed=0)
    assert list(table.index) == ["0", "1", "2", "3", "4+"]
    assert table.attrs["source"] == "posterior" and table.attrs["n_draws"] == 400
    draws = parameter_draws(bg_nuts, 500)
    T = split["T"].to_numpy(dtype=np.float64)
    exact = np.mean([_expected_counts([draws[p][k] for p in ("r", "alpha", "a", "b")], T, 4)
                     for k in range(draws.n)], axis=0)
    tol = 5 * table["sd"].to_numpy() / math.sqrt(draws.n)
    np.testing.assert_array_less(np.abs(table["mean"].to_numpy() - exact), tol)
    again = period_transactions(bg_nuts, max_frequency=4, random_seed=0)
    pd.testing.assert_frame_equal(table, again)
    other = period_transactions(bg_nuts, max_frequency=4, random_seed=1)
    assert not np.array_equal(other["mean"], table["mean"])


# -- purchase times and P(alive) history ------------------------------------------------------------
def test_customer_purchase_times_follow_rfm_conventions(tx, split):
    ids = [split.index[split["frequency"] == 0][0], split.index[split["frequency"] == 1][0], CUSTOMER,
           split["frequency"].idxmax()]
    for cid in ids:
        times, T = customer_purchase_times(tx, cid, observation_end=CAL_END)
        row = split.loc[cid]
        assert times[0] == 0.0 and np.all(np.diff(times) > 0)
        assert len(times) - 1 == row["frequency"]
        assert times.max() == pytest.approx(row["recency"], abs=1e-12)
        assert T == pytest.approx(row["T"], abs=1e-12)
    full = clvbayes.rfm_summary(tx, time_unit="D")
    times, T = customer_purchase_times(tx, CUSTOMER, time_unit="D")
    assert (len(times) - 1, times.max(), T) == (full.loc[CUSTOMER, "frequency"], full.loc[CUSTOMER, "recency"],
                                                full.loc[CUSTOMER, "T"])
    with pytest.raises(DataValidationError, match="no purchase"):
        customer_purchase_times(tx, -1)


def test_history_at_T_and_at_purchases_equals_model(bg_any, tx, split):
    times, T = customer_purchase_times(tx, CUSTOMER, observation_end=CAL_END)
    hist = probability_alive_history(bg_any, times, T, n_points=50, n_draws=60)
    assert list(hist.columns) == ["time", "frequency", "recency", "mean", "sd", "lower", "upper"]
    assert hist["time"].is_monotonic_increasing and hist["time"].iloc[0] == 0 and hist["time"].iloc[-1] == T
    last = hist.iloc[-1]
    assert (last["frequency"], last["recency"]) == (split.loc[CUSTOMER, "frequency"], split.loc[CUSTOMER, "recency"])
    ref_T = per_draw(bg_any, 60, lambda m: m.probability_alive(data=split.loc[[CUSTOMER]]))
    assert last["mean"] == pytest.approx(ref_T.mean(), rel=1e-12)
    if ref_T.shape[0] > 1:
        np.testing.assert_allclose([last["lower"], last["upper"]], hdi(ref_T[:, 0]), rtol=1e-10)

    # at each repeat purchase: one row just before (j - 1 purchases) and one at it (j)
    repeats = times[1:]
    before_after = []
    for j, t in enumerate(repeats, start=1):
        rows = hist.loc[hist["time"] == t]
        assert list(rows["frequency"]) == [j - 1, j]
        before_after += [(j - 1, times[j - 1] if j > 1 else 0.0, t), (j, t, t)]
    frame = pd.DataFrame(before_after, columns=["frequency", "recency", "T"])
    ref = per_draw(bg_any, 60, lambda m: m.probability_alive(data=frame)).mean(axis=0)
    got = hist.loc[hist["time"].isin(repeats), "mean"].to_numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # 1 until the first repeat purchase; decreasing between purchases
    assert (hist.loc[hist["time"] < repeats[0], "mean"] == 1.0).all()
    for x, seg in hist.groupby("frequency"):
        if x > 0:
            assert np.all(np.diff(seg["mean"].to_numpy()) <= 1e-15)


def test_history_arguments(bg_mle):
    with pytest.raises(ValueError, match="<= T"):
        probability_alive_history(bg_mle, [0, 2, 5], 4.0)
    with pytest.raises(ValueError, match=">= 0"):
        probability_alive_history(bg_mle, [0, -1], 4.0)
    with pytest.raises(ValueError, match="repeated"):
        probability_alive_history(bg_mle, [0, 1, 1], 4.0)
    with pytest.raises(ValueError, match="T must"):
        probability_alive_history(bg_mle, [0], 0.0)
    # the first purchase at 0 may be left out
    a = probability_alive_history(bg_mle, [1.5, 3.0], 4.0, n_points=5)
    b = probability_alive_history(bg_mle, [0.0, 1.5, 3.0], 4.0, n_points=5)
    pd.testing.assert_frame_equal(a, b)


# -- Pareto curve ------------------------------------------------------------------------------------
def test_pareto_curve(bg_nuts, gg_mle, split):
    clv = clvbayes.customer_lifetime_value(bg_nuts, gg_mle, split, horizon=52, n_draws=200, keep_draws=True)
    curve = pareto_curve(clv, n_points=20, include=(0.2, 0.33))
    assert list(curve.columns) == ["customer_share", "customers", "mean", "sd", "lower", "upper"]
    assert len(curve) == 22  # 0, 20 shares, 0.33 (0.2 is one of the 20)
    first, last = curve.iloc[0], curve.iloc[-1]
    assert (first["customer_share"], first["mean"], first["lower"], first["upper"]) == (0, 0, 0, 0)
    assert last["customer_share"] == 1 and last["customers"] == len(split)
    np.testing.assert_allclose(last[["mean", "lower", "upper"]].to_numpy(dtype=float), 1.0, rtol=1e-12)
    assert np.all(np.diff(curve["mean"].to_numpy()) >= 0)
    assert np.all(np.diff(curve["customer_share"].to_numpy()) > 0)

    row = curve.loc[curve["customer_share"] == 0.2].iloc[0]
    conc = clvbayes.value_concentration(clv, (0.2,)).loc[0.2]
    assert row["customers"] == conc["customers"]
    np.testing.assert_allclose(row[["mean", "sd", "lower", "upper"]].to_numpy(dtype=float),
                               conc[["mean", "sd", "hdi_3%", "hdi_97%"]].to_numpy(dtype=float), rtol=1e-12)

    # from the full (draw x customer) matrix: rank by posterior mean, top-k share per draw
    mat = clv.draws.to_numpy().reshape(-1, len(split))
    order = np.argsort(-mat.mean(axis=0), kind="stable")
    k = int(math.ceil(0.33 * len(split)))
    shares = mat[:, order[:k]].sum(axis=1) / mat.sum(axis=1)
    row = curve.loc[np.isclose(curve["customer_share"], 0.33)].iloc[0]
    assert row["mean"] == pytest.approx(shares.mean(), rel=1e-9)
    np.testing.assert_allclose(row[["lower", "upper"]].to_numpy(dtype=float), hdi(shares), rtol=1e-9)
    with pytest.raises(TypeError):
        pareto_curve(clv.summary)
