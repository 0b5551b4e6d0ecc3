"""Customers first seen on the last day of a period (x = t_x = T = 0) are valid (issue 13, point 1).

Such a customer adds ln L = 0 to the BG/NBD likelihood (FHL 2005 eq. 6 with x = 0, T = 0:
(α/(α+0))^r = 1), has P(alive) = 1, and its conditional forecasts are the unconditional
ones: E[Y(t) | 0, 0, 0] = E[X(t)] (FHL 2005 eq. 9), P(Y(t) = n | 0, 0, 0) = P(X(t) = n)
(eq. 8), DERT = δ ∫ e^{-δt} E[X(t)] dt. The references are the mpmath forms of those
equations in tests/test_kernels_bgnbd_predict.py. A log where new customers arrive on the
calibration end and on the last day goes through the summaries, the split, the fits, the
value functions, the Dask paths and ``clvbayes fit``.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from scipy import integrate

import clvbayes
from clvbayes.data.validate import DataValidationError, validate_rfm
from clvbayes.kernels import clv as C
from clvbayes.kernels.bgnbd import bgnbd_loglik_grad_one, bgnbd_loglik_one, bgnbd_loglik_sum_grad
from clvbayes.kernels.bgnbd_predict import (
    bgnbd_conditional_expected_purchases,
    bgnbd_conditional_pmf,
    bgnbd_dert,
    bgnbd_p_alive,
)
from tests.test_kernels_bgnbd_predict import MLE, ref_ex_hyp, ref_pmf

CAL_END = pd.Timestamp("2024-09-30")
LAST_DAY = pd.Timestamp("2024-12-31")
NEW_ON_CAL_END = ["newcal1", "newcal2"]
NEW_ON_LAST_DAY = ["newlast1", "newlast2"]
PARAMS = [MLE, (2.5, 40.0, 0.3, 6.0), (0.05, 0.7, 3.0, 0.9)]


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    """200 BG/NBD customers acquired over 2024 (purchase rate ~ Gamma, dropout after each
    purchase ~ Beta) plus new ones on the calibration end (one buys again in the holdout)
    and on the last day."""
    rng = np.random.default_rng(13)
    rows = []
    for c in range(200):
        day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 250)))
        lam, p, nu = rng.gamma(1.5, 1 / 30), rng.beta(1.0, 4.0), rng.gamma(4.0, 1 / 100)
        while day <= LAST_DAY:
            rows.append((f"c{c:03d}", day, float(rng.gamma(5.0, 1 / nu))))
            if rng.random() < p:
                break
            day += pd.Timedelta(days=1 + int(rng.exponential(1 / lam)))
    rows += [(c, CAL_END, 20.0) for c in NEW_ON_CAL_END]
    rows += [("newcal3", CAL_END, 15.0), ("newcal3", pd.Timestamp("2024-11-02"), 30.0)]
    rows += [(c, LAST_DAY, 10.0) for c in NEW_ON_LAST_DAY]
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


@pytest.fixture(scope="module")
def summary(log) -> pd.DataFrame:
    return clvbayes.rfm_summary(log)


@pytest.fixture(scope="module")
def split(log) -> pd.DataFrame:
    return clvbayes.calibration_holdout_split(log, calibration_end=CAL_END)


@pytest.fixture(scope="module")
def models(summary):
    return clvbayes.BetaGeoModel(summary).fit_mle(), clvbayes.GammaGammaModel(summary).fit_mle()


# -- validation ------------------------------------------------------------------------


def test_validate_rfm_accepts_age_zero_and_still_refuses_the_impossible():
    ok = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 3.0], "T": [0.0, 5.0]}, index=["new", "old"])
    x, t_x, T = validate_rfm(ok)
    assert T[0] == 0.0 and x[0] == 0.0 and t_x[0] == 0.0
    with pytest.raises(DataValidationError, match=r"'T' has 1 negative ages T \('new'\)"):
        validate_rfm(ok.assign(T=[-1.0, 5.0]))
    with pytest.raises(DataValidationError, match=r"'recency' has 1 customers with recency > T \('new'\)"):
        validate_rfm(pd.DataFrame({"frequency": [1], "recency": [0.5], "T": [0.0]}, index=["new"]))


def test_all_customers_at_age_zero_is_a_clear_error():
    only_new = pd.DataFrame({"frequency": [0, 0], "recency": [0.0, 0.0], "T": [0.0, 0.0]}, index=["a", "b"])
    with pytest.raises(DataValidationError, match=r"'T' is 0 for all 2 customers.*first seen on the last day"):
        clvbayes.BetaGeoModel(only_new).fit_mle()
    with pytest.raises(DataValidationError, match=r"'T' is 0 for all 2 customers"):
        clvbayes.BetaGeoModel(only_new).fit(method="map")
    # predictions for such customers are fine: P(alive) = 1
    model = clvbayes.BetaGeoModel.from_params(dict(zip("r alpha a b".split(), MLE, strict=True)), only_new)
    np.testing.assert_array_equal(model.probability_alive().to_numpy(), [1.0, 1.0])


# -- kernels ---------------------------------------------------------------------------


@pytest.mark.parametrize("params", PARAMS)
def test_loglik_is_exactly_zero_with_zero_gradient(params):
    assert bgnbd_loglik_one(*params, 0.0, 0.0, 0.0) == 0.0
    value, *grad = bgnbd_loglik_grad_one(*params, 0.0, 0.0, 0.0)
    assert value == 0.0 and grad == [0.0, 0.0, 0.0, 0.0]
    # in a sum: adding T = 0 customers (any weight) changes neither value nor gradient
    x, t_x, T = np.array([2.0, 0.0]), np.array([30.43, 0.0]), np.array([38.86, 20.0])
    w = np.array([3.0, 2.0])
    base = bgnbd_loglik_sum_grad(*params, x, t_x, T, w)
    more = bgnbd_loglik_sum_grad(*params, np.append(x, 0.0), np.append(t_x, 0.0), np.append(T, 0.0), np.append(w, 7.0))
    assert more[0] == base[0] and math.isfinite(more[0])
    np.testing.assert_array_equal(more[1], base[1])


@pytest.mark.parametrize("params", PARAMS)
def test_predictions_at_age_zero_are_the_unconditional_ones(params):
    zero = np.zeros(1)
    assert bgnbd_p_alive(*params, zero, zero, zero)[0] == 1.0
    for t in (0.5, 13.0, 52.0):
        cond = bgnbd_conditional_expected_purchases(*params, zero, zero, zero, t)[0]
        assert cond == pytest.approx(float(ref_ex_hyp(*params, t)), rel=1e-10)  # FHL eq. (9)
        for n in (0, 1, 4):
            pmf = bgnbd_conditional_pmf(*params, zero, zero, zero, t, n)[0]
            assert pmf == pytest.approx(float(ref_pmf(*params, t, n)), rel=1e-9, abs=1e-300)  # eq. (8)


def test_dert_at_age_zero_is_the_laplace_transform_of_eq9():
    for params, delta in ((MLE, 0.02), ((2.5, 40.0, 0.3, 6.0), 0.1)):
        with mp.workdps(20), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = integrate.quad(lambda u: delta * math.exp(-delta * u) * float(ref_ex_hyp(*params, u, dps=20)),
                                 0.0, math.inf, epsabs=0.0, epsrel=1e-10, limit=200)[0]
        zero = np.zeros(1)
        assert bgnbd_dert(*params, zero, zero, zero, np.array([delta]))[0] == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize(("quantity", "horizon"), [(C.PURCHASES, 39.0), (C.CLV, 52.0), (C.CLV, math.inf),
                                                   (C.DROPOUT, 13.0), (C.PMF + 1, 26.0)])
def test_clv_tables_cover_age_zero(quantity, horizon):
    # x = 0 and T on a daily grid from 0: one group of 365 keys, interpolated in ln(α+T)
    # over [ln α, ln(α + 52)]; the T = 0 end of the range equals the direct evaluation.
    T = np.arange(365) / 7.0
    x = np.zeros_like(T)
    rng = np.random.default_rng(3)
    r, alpha, a, b = (np.array([v]) * np.exp(0.05 * rng.standard_normal(3)) for v in MLE)
    p, q, g = (np.full(3, v) for v in (6.25, 3.74, 15.44))
    codes, ux, uT, ud = C.unique_keys(x, T, 0.002)
    table = C.clv_factor_table(quantity, r, alpha, a, b, ux, uT, ud, horizon)
    out = np.empty((3, T.size))
    zeros, ones = np.zeros_like(T), np.ones_like(T)
    C.clv_block(quantity, r, alpha, a, b, p, q, g, table, ux, uT, codes, zeros, 20.0 * ones, ones, out)
    for d in range(3):
        ref = C.clv_one(quantity, r[d], alpha[d], a[d], b[d], p[d], q[d], g[d], 0.0, 0.0, 0.0, 20.0, 1.0, 0.002, horizon)
        assert np.isfinite(out[d, 0]) and out[d, 0] == pytest.approx(ref, rel=1e-10)
    if quantity == C.PURCHASES:  # at T = 0: the unconditional E[X(t)] of eq. (9)
        assert out[0, 0] == pytest.approx(float(ref_ex_hyp(r[0], alpha[0], a[0], b[0], horizon)), rel=1e-10)


# -- summaries and split ---------------------------------------------------------------


def test_summaries_give_the_new_customers_age_zero(summary, split):
    new = summary.loc[NEW_ON_LAST_DAY]
    assert (new[["frequency", "recency", "T"]] == 0).all().all()
    cal = split.loc[NEW_ON_CAL_END + ["newcal3"]]
    assert (cal[["frequency", "recency", "T"]] == 0).all().all()
    assert list(cal["frequency_holdout"]) == [0, 0, 1]
    assert not split.index.isin(NEW_ON_LAST_DAY).any()  # acquired in the holdout: counted, not summarised
    assert split.attrs["customers_acquired_in_holdout"] == 2


def test_dask_summaries_equal_pandas(log, summary, split):
    dd = pytest.importorskip("dask.dataframe")
    dlog = dd.from_pandas(log, npartitions=3)
    pd.testing.assert_frame_equal(clvbayes.rfm_summary(dlog).compute().loc[summary.index], summary, check_like=True)
    got = clvbayes.calibration_holdout_split(dlog, calibration_end=CAL_END).compute().loc[split.index]
    pd.testing.assert_frame_equal(got, split, check_like=True)


# -- fits ------------------------------------------------------------------------------


def test_mle_fit_is_unchanged_by_age_zero_customers(summary, models):
    bg, gg = models
    old = summary.loc[summary["T"] > 0]
    ref = clvbayes.BetaGeoModel(old).fit_mle()
    assert bg.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-12)
    pd.testing.assert_series_equal(bg.params_, ref.params_, rtol=1e-6)
    assert gg.n_excluded_ == int((summary["frequency"] == 0).sum())  # x = 0: out of the spend fit
    # a compressed (weighted) table gives the same fit
    from clvbayes.distributed import compress_summary

    table = compress_summary(summary)
    assert (table["T"] == 0).any()
    weighted = clvbayes.BetaGeoModel(table).fit_mle()
    assert weighted.log_likelihood_ == pytest.approx(bg.log_likelihood_, rel=1e-12)


def test_map_is_unchanged_by_age_zero_customers(split):
    # explicit priors: the defaults scale alpha's prior by the mean age, which new customers change
    priors = {n: clvbayes.Prior("HalfNormal", sigma=s) for n, s in (("r", 5.0), ("alpha", 100.0), ("a", 5.0), ("b", 20.0))}
    with_new = clvbayes.BetaGeoModel(split, priors=priors).fit(method="map")
    without = clvbayes.BetaGeoModel(split.loc[split["T"] > 0], priors=priors).fit(method="map")
    pd.testing.assert_series_equal(with_new.params_, without.params_, rtol=1e-6)


def test_nuts_fit_accepts_age_zero_customers(split):
    with warnings.catch_warnings():
        # 200 customers leave b's posterior wide (tests/test_degenerate.py tests that warning)
        warnings.simplefilter("ignore", clvbayes.WeakIdentificationWarning)
        bg = clvbayes.BetaGeoModel(split).fit(chains=2, draws=100, tune=100, random_seed=4, progressbar=False)
    assert np.isfinite(bg.params_).all()
    assert (bg.idata_.constant_data["T"].to_numpy() == 0).sum() == 3


# -- value -----------------------------------------------------------------------------


def test_value_functions_include_new_customers(summary, models):
    bg, gg = models
    r, alpha, a, b = bg.params_
    p, q, g = gg.params_
    horizon = 52.0
    metrics = clvbayes.customer_metrics(bg, gg, summary, quantities=("clv", "p_alive", "expected_purchases"),
                                        horizon=horizon, discount_rate=0.0, quantiles=())
    for c in NEW_ON_LAST_DAY:
        assert metrics["p_alive"].summary.loc[c, "mean"] == 1.0
        ex = float(ref_ex_hyp(r, alpha, a, b, horizon))  # FHL eq. (9): unconditional
        assert metrics["expected_purchases"].summary.loc[c, "mean"] == pytest.approx(ex, rel=1e-10)
        # undiscounted CLV = E[X(h)] x population mean spend p γ / (q - 1)
        assert metrics["clv"].summary.loc[c, "mean"] == pytest.approx(ex * p * g / (q - 1), rel=1e-9)
    churn = clvbayes.churn_analysis(bg, gg, period=13.0, contact_cost=1.0, horizon=horizon)
    assert set(NEW_ON_LAST_DAY) <= set(churn.customers.index)
    assert (churn.customers.loc[NEW_ON_LAST_DAY, "p_alive"] == 1.0).all()
    equity = clvbayes.customer_equity(churn.metrics["clv"])
    assert equity.summary.loc["total", "customers"] == len(summary)
    stages = clvbayes.lifecycle_stages(churn, new_window=0.0)  # T <= 0: only the age-zero customers
    assert set(stages.index[stages == "new"]) == set(NEW_ON_LAST_DAY)
    table = clvbayes.stage_summary(churn, stages)
    assert table.loc["new", "customers"] == 2


def test_holdout_validation_and_tracking_with_age_zero_in_calibration(log, split):
    bg = clvbayes.BetaGeoModel(split).fit_mle()
    gg = clvbayes.GammaGammaModel(split).fit_mle()
    # the heuristic baselines' run rate x / T was 0/0 (RuntimeWarning, NaN) at T = 0
    v = clvbayes.holdout_validation(bg, split, gamma_gamma=gg, n_draws=20, random_seed=1)
    assert np.isfinite(v.total[["actual", "mean"]].to_numpy(dtype=float)).all()
    from clvbayes.value.heuristics import holdout_forecasts

    h = holdout_forecasts(split, horizon=13.0)
    assert (h.loc[NEW_ON_CAL_END, "run_rate"] == 0.0).all()
    tracking = clvbayes.purchase_tracking(bg, log, calibration_end=CAL_END, observation_end=LAST_DAY, n_draws=20)
    assert np.isfinite(tracking.select_dtypes("number").to_numpy()).all()


def test_probability_alive_history_starts_at_one(log, models):
    from clvbayes.value.plotdata import customer_purchase_times, probability_alive_history

    times, T = customer_purchase_times(log, "c001")
    hist = probability_alive_history(models[0], times, T, n_points=5)
    assert hist["time"].iloc[0] == 0.0 and hist["mean"].iloc[0] == 1.0


def test_dask_scoring_equals_in_memory(summary, models):
    dd = pytest.importorskip("dask.dataframe")
    from clvbayes.distributed.scoring import score_customers

    res = score_customers(*models, dd.from_pandas(summary, npartitions=3), quantities=("clv", "p_alive"),
                          horizon=52.0, discount_rate=0.1, period=13.0, contact_cost=1.0, new_window=0.0)
    mem = clvbayes.customer_metrics(*models, summary, quantities=("clv", "p_alive"), horizon=52.0,
                                    discount_rate=0.1, segment=None, quantiles=())
    got = res.customers.compute().loc[summary.index]
    np.testing.assert_allclose(got["clv_mean"], mem["clv"].summary["mean"], rtol=1e-10)
    assert (got.loc[NEW_ON_LAST_DAY, "p_alive_mean"] == 1.0).all()
    assert (got.loc[NEW_ON_LAST_DAY, "stage"] == "new").all()


# -- the command line --------------------------------------------------------------------


def test_cli_fit_end_to_end_keeps_new_customers(log, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from clvbayes.cli import main

    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    out = tmp_path / "report"
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        code = main(["fit", str(path), "--out", str(out), "--calibration-end", str(CAL_END.date()), "--quiet",
                     "--draws", "100", "--tune", "100", "--chains", "2", "--value-draws", "50", "--seed", "2"])
    assert code == 0, stderr.getvalue()
    customers = pd.read_csv(out / "customers.csv", index_col=0)
    assert set(NEW_ON_CAL_END + NEW_ON_LAST_DAY + ["newcal3"]) <= set(customers.index.astype(str))
    new = customers.loc[NEW_ON_LAST_DAY]
    assert (new["T"] == 0).all() and (new["p_alive"] == 1.0).all() and (new["stage"] == "new").all()
    assert np.isfinite(new[["expected_purchases", "clv"]].to_numpy()).all()
