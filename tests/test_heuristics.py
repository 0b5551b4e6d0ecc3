"""Rules of thumb of :mod:`clvbayes.value.heuristics`.

References: hand-computed small examples; the truncated series ``Σ_t m r^t / (1+d)^t`` summed
term by term for the closed forms of Fader & Hardie (2012), "Reconciling and clarifying CLV
formulas" (note 024), including Gupta & Lehmann's (2003, "Customers as assets", J.
Interactive Marketing 17(1)) margin multiple ``r / (1 + i - r)``; the algebraic identities
between the three conventions; the equal-age closed form of the silence-window churn rate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvbayes.data.validate import DataValidationError
from clvbayes.value.heuristics import (
    churn_rate_from_silence,
    default_silence_window,
    equity_mean_clv,
    holdout_forecasts,
    ltv_margin_over_churn,
    ltv_retention_time,
    ltv_revenue_per_customer,
    silence_window_lost,
)


def _frame(frequency, recency, T, monetary=None) -> pd.DataFrame:
    df = pd.DataFrame(
        {"frequency": frequency, "recency": recency, "T": T},
        index=pd.Index([f"c{i}" for i in range(len(T))], name="customer_id"),
    )
    if monetary is not None:
        df["monetary_value"] = monetary
    return df


# -- silence window ------------------------------------------------------------------------
def test_silence_window_lost_hand_example():
    data = _frame([0, 2, 3, 1, 0], [0.0, 5.0, 9.0, 2.0, 0.0], [10.0, 8.0, 10.0, 4.0, 3.0])
    lost = silence_window_lost(data, 3.0)
    # T - recency = 10, 3, 1, 2, 3: lost only when strictly longer than the window
    assert lost.tolist() == [True, False, False, False, False]
    assert lost.name == "lost" and lost.index.equals(data.index) and lost.dtype == bool


def test_churn_rate_equal_ages_closed_form():
    # 8 customers of age 20, silence window 5: lost when T - recency > 5, i.e. recency < 15
    rec = np.array([0, 2, 10, 14.9, 15, 16, 19, 20.0])
    x = np.where(rec > 0, 1, 0)
    data = _frame(x, rec, np.full(8, 20.0))
    L = 4 / 8
    for period in (1.0, 4.0, 52.0):
        expected = 1.0 - (1.0 - L) ** (period / 20.0)
        assert churn_rate_from_silence(data, 5.0, period) == pytest.approx(expected, rel=1e-12)


def test_churn_rate_two_ages_quadratic():
    # ages 1 and 2 periods (T = 10, 20; period 10), one of four lost: s + s^2 = 2 (1 - L)
    data = _frame([1, 1, 1, 0, 0], [9.0, 8.0, 19.0, 0.0, 0.0], [10.0, 10.0, 20.0, 20.0, 2.0])
    # the last customer (T = 2 <= window) cannot be classified and is left out
    assert silence_window_lost(data, 3.0).tolist() == [False, False, False, True, False]
    s = (-1.0 + math.sqrt(1.0 + 8.0 * 0.75)) / 2.0
    assert churn_rate_from_silence(data, 3.0, 10.0) == pytest.approx(1.0 - s, rel=1e-12)


def test_churn_rate_edge_cases():
    none_lost = _frame([1, 2], [9.0, 19.0], [10.0, 20.0])
    assert churn_rate_from_silence(none_lost, 3.0, 1.0) == 0.0
    all_lost = _frame([0, 1], [0.0, 1.0], [10.0, 20.0])
    assert churn_rate_from_silence(all_lost, 3.0, 1.0) == 1.0
    with pytest.raises(DataValidationError, match="older than window"):
        churn_rate_from_silence(none_lost, 25.0, 1.0)
    with pytest.raises(ValueError, match="period"):
        churn_rate_from_silence(none_lost, 3.0, 0.0)
    with pytest.raises(ValueError, match="window"):
        silence_window_lost(none_lost, -1.0)
    with pytest.raises(DataValidationError, match="recency"):
        silence_window_lost(pd.DataFrame({"frequency": [1], "T": [3.0]}), 1.0)


# -- lifetime value ------------------------------------------------------------------------
def test_margin_over_churn_hand_values():
    # m = 100, churn 0.2 (retention 0.8), discount 0.1
    assert ltv_margin_over_churn(100.0, 0.2, 0.1) == pytest.approx(100 * 1.1 / 0.3, rel=1e-14)
    assert ltv_margin_over_churn(100.0, 0.2, 0.1, convention="residual") == pytest.approx(100 * 0.8 / 0.3, rel=1e-14)
    assert ltv_margin_over_churn(100.0, 0.2, 0.1, convention="end") == pytest.approx(100 / 0.3, rel=1e-14)
    # Gupta & Lehmann's margin multiple at r = 80%, i = 10%: 0.8 / 0.3 = 2.67
    assert ltv_margin_over_churn(1.0, 0.2, 0.1, convention="residual") == pytest.approx(2.6667, abs=1e-4)
    # d = 0: margin over churn
    assert ltv_margin_over_churn(30.0, 0.25) == pytest.approx(120.0, rel=1e-14)
    assert ltv_margin_over_churn(30.0, 0.25, convention="residual") == pytest.approx(30.0 * 0.75 / 0.25, rel=1e-14)


@settings(max_examples=60, deadline=None)
@given(
    m=st.floats(-500, 500),
    c=st.floats(0.02, 1.0),
    d=st.floats(0.0, 0.5),
)
def test_margin_over_churn_equals_series(m, c, d):
    """Closed forms against the truncated sums (tail below 1e-13 relative)."""
    r = 1.0 - c
    q = r / (1.0 + d)
    n = int(math.log(1e-16) / math.log(q)) + 2 if q > 0 else 1
    terms = m * q ** np.arange(n)
    start = math.fsum(terms)  # t = 0, 1, ...: margins at the start, current one included
    residual = math.fsum(terms[1:])  # t = 1, 2, ...
    end = start / (1.0 + d)  # each margin one period later
    tol = 1e-11 * max(1.0, abs(start))
    assert ltv_margin_over_churn(m, c, d) == pytest.approx(start, abs=tol)
    assert ltv_margin_over_churn(m, c, d, convention="residual") == pytest.approx(residual, abs=tol)
    assert ltv_margin_over_churn(m, c, d, convention="end") == pytest.approx(end, abs=tol)
    # identities between the conventions
    assert ltv_margin_over_churn(m, c, d) - ltv_margin_over_churn(m, c, d, convention="residual") == pytest.approx(
        m, abs=tol
    )


def test_margin_over_churn_arrays_and_errors():
    out = ltv_margin_over_churn(np.array([10.0, 20.0]), np.array([0.5, 0.25]))
    np.testing.assert_allclose(out, [20.0, 80.0], rtol=1e-14)
    assert isinstance(ltv_margin_over_churn(1.0, 0.5), float)
    # no churn converges with discounting: m (1 + d) / d
    assert ltv_margin_over_churn(10.0, 0.0, 0.05) == pytest.approx(10 * 1.05 / 0.05)
    with pytest.raises(ValueError, match="infinite"):
        ltv_margin_over_churn(10.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ltv_margin_over_churn(10.0, 1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ltv_margin_over_churn(10.0, -0.1)
    with pytest.raises(ValueError, match="> -1"):
        ltv_margin_over_churn(10.0, 0.5, -1.0)
    with pytest.raises(ValueError, match="convention"):
        ltv_margin_over_churn(10.0, 0.5, convention="middle")
    with pytest.raises(ValueError, match="finite"):
        ltv_margin_over_churn(float("nan"), 0.5)
    with pytest.raises(TypeError):
        ltv_margin_over_churn("ten", 0.5)


def test_retention_time_matches_margin_over_churn():
    # geometric lifetime counted from the current period: E[periods] = 1 / c
    for m, c in [(10.0, 0.2), (3.5, 0.9), (-2.0, 0.05)]:
        assert ltv_retention_time(m, 1.0 / c) == pytest.approx(ltv_margin_over_churn(m, c), rel=1e-14)
        # mean of the geometric number of periods, summed directly
        periods = math.fsum((1 - c) ** np.arange(5000))
        assert ltv_retention_time(m, periods) == pytest.approx(m / c, rel=1e-9)
    np.testing.assert_allclose(ltv_retention_time(np.array([1.0, 2.0]), 3.0), [3.0, 6.0])
    with pytest.raises(ValueError, match="mean_retention_time"):
        ltv_retention_time(1.0, -1.0)


def test_revenue_per_customer_and_equity():
    assert ltv_revenue_per_customer(1000.0, 50, 0.3) == pytest.approx(6.0)
    assert ltv_revenue_per_customer(1000.0, 50) == pytest.approx(20.0)
    assert equity_mean_clv(12.5, 80) == pytest.approx(1000.0)
    # equity of the margin-over-churn value: n m / c
    assert equity_mean_clv(ltv_margin_over_churn(30.0, 0.25), 1000) == pytest.approx(120_000.0)
    with pytest.raises(ValueError, match="n_customers"):
        ltv_revenue_per_customer(1000.0, 0)
    with pytest.raises(ValueError, match="n_customers"):
        equity_mean_clv(10.0, -1)


# -- holdout forecasts ---------------------------------------------------------------------
def test_holdout_forecasts_hand_example():
    data = _frame(
        frequency=[0, 2, 4, 1],
        recency=[0.0, 6.0, 38.0, 5.0],
        T=[10.0, 40.0, 40.0, 20.0],
        monetary=[0.0, 10.0, 30.0, 20.0],
    )
    out = holdout_forecasts(data, 20.0, window=12.0)
    np.testing.assert_allclose(out["run_rate"], [0.0, 1.0, 2.0, 1.0], rtol=1e-14)
    # T - recency = 10, 34, 2, 15: customers 2 and 4 lost (customer 1 has run rate 0 anyway)
    np.testing.assert_allclose(out["silence_window"], [0.0, 0.0, 2.0, 0.0], rtol=1e-14)
    pooled = 7 / 110 * 20
    np.testing.assert_allclose(out["population_mean"], np.full(4, pooled), rtol=1e-14)
    mean_spend = (10 + 30 + 20) / 3  # repeat buyers only, unweighted
    np.testing.assert_allclose(out["run_rate_spend"], [0.0, 10.0, 60.0, 20.0], rtol=1e-14)
    np.testing.assert_allclose(out["silence_window_spend"], [0.0, 0.0, 60.0, 0.0], rtol=1e-14)
    np.testing.assert_allclose(
        out["population_mean_spend"], pooled * np.array([mean_spend, 10.0, 30.0, 20.0]), rtol=1e-14
    )
    assert out.attrs["window"] == 12.0
    assert out.index.equals(data.index)


def test_default_window_and_no_spend_columns():
    data = _frame([1, 2, 4, 0, 3], [2.0, 6.0, 20.0, 0.0, 30.0], [30.0] * 5)
    ipt = np.array([2.0, 3.0, 5.0, 10.0])  # recency / frequency of the repeat buyers
    assert default_silence_window(data) == pytest.approx(np.quantile(ipt, 0.9))
    out = holdout_forecasts(data, 10.0)
    assert out.attrs["window"] == pytest.approx(np.quantile(ipt, 0.9))
    assert list(out.columns) == ["run_rate", "silence_window", "population_mean"]


def test_holdout_forecasts_cdnow(cdnow_split):
    out = holdout_forecasts(cdnow_split, 39.0)
    assert out.attrs["window"] == pytest.approx(21.5)
    x, T = cdnow_split["frequency"].to_numpy(), cdnow_split["T"].to_numpy()
    np.testing.assert_allclose(out["run_rate"].sum(), np.sum(x / T) * 39, rtol=1e-12)
    assert out["population_mean"].sum() == pytest.approx(x.sum() / T.sum() * 39 * len(x), rel=1e-12)


def test_holdout_forecasts_errors():
    one_timers = _frame([0, 0], [0.0, 0.0], [5.0, 6.0])
    with pytest.raises(DataValidationError, match="window="):
        holdout_forecasts(one_timers, 10.0)
    out = holdout_forecasts(one_timers, 10.0, window=4.0)
    assert (out.to_numpy() == 0).all()
    with pytest.raises(ValueError, match="horizon"):
        holdout_forecasts(one_timers, 0.0, window=4.0)
    with pytest.raises(DataValidationError, match="'T'"):
        holdout_forecasts(pd.DataFrame({"frequency": [1], "recency": [1.0]}), 10.0, window=1.0)
    bad_spend = _frame([1], [1.0], [2.0], monetary=[-5.0])
    with pytest.raises(DataValidationError, match="monetary_value"):
        holdout_forecasts(bad_spend, 10.0, window=1.0)
