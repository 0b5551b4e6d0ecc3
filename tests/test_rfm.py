"""rfm_summary and calibration_holdout_split against independent references."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clvbayes
from clvbayes.datasets import load_cdnow

REFERENCE = Path(__file__).parent / "reference" / "cdnow_summary_btyd.csv"


def test_cdnow_split_counts(cdnow_split):
    # FHL 2005 / shared/design/MEASURED.md: 2,357 customers, 946 repeat buyers,
    # 1,882 holdout repeat transactions with same-day purchases merged
    assert len(cdnow_split) == 2357
    assert (cdnow_split["frequency"] > 0).sum() == 946
    assert cdnow_split["frequency_holdout"].sum() == 1882
    assert np.allclose(cdnow_split["duration_holdout"], 39.0)


def test_cdnow_split_matches_btyd_summary(cdnow_split):
    """Hardie's per-customer summary (BTYD's cdnowSummary), rounded to 2 decimals."""
    ref = pd.read_csv(REFERENCE).set_index("ID")
    ours = cdnow_split.loc[ref.index]
    np.testing.assert_array_equal(ours["frequency"].to_numpy(), ref["x"].to_numpy())
    np.testing.assert_allclose(ours["recency"], ref["t_x"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(ours["T"], ref["T"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(ours["monetary_value"], ref["zbar"], atol=0.005 + 1e-9)


def test_published_example_customer(cdnow_split):
    # the customer of FHL's worked example: x = 2, t_x = 30.43, T = 38.86 (customer 1)
    row = cdnow_split.loc[1]
    assert row["frequency"] == 2
    assert row["recency"] == pytest.approx(213 / 7)
    assert row["T"] == pytest.approx(272 / 7)


def naive_summary(tx: pd.DataFrame, end: pd.Timestamp, unit_days: float) -> pd.DataFrame:
    """Straightforward per-customer loop, the definition written out."""
    rows = {}
    for cid, g in tx.groupby("customer_id"):
        by_day: dict = {}
        for d, amt in zip(g["date"], g["amount"]):
            day = pd.Timestamp(d).normalize()
            by_day[day] = by_day.get(day, 0.0) + amt
        days = sorted(by_day)
        first = days[0]
        repeat = [by_day[d] for d in days[1:]]
        rows[cid] = {
            "frequency": len(days) - 1,
            "recency": (days[-1] - first).days / unit_days,
            "T": (end - first).total_seconds() / 86400 / unit_days,
            "monetary_value": float(np.mean(repeat)) if repeat else 0.0,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def test_full_cdnow_matches_naive_loop_and_merges_same_day():
    tx = load_cdnow()
    sub = tx[tx["customer_id"] <= 1500]
    ours = clvbayes.rfm_summary(sub, observation_end="1998-06-30")
    ref = naive_summary(sub, pd.Timestamp("1998-06-30"), 7.0)
    pd.testing.assert_frame_equal(
        ours[["frequency", "recency", "T", "monetary_value"]], ref.loc[ours.index], check_dtype=False,
        check_names=False, rtol=1e-12,
    )
    # several rows on one day are one purchase occasion: the full log has more rows than occasions
    assert len(sub) > (ours["frequency"] + 1).sum()


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.integers(0, 6),
            st.integers(0, 400),  # day offset
            st.integers(0, 23),  # hour: same-day purchases at different times merge
            st.floats(0.0, 500.0, allow_nan=False),
        ),
        min_size=1,
        max_size=60,
    ),
    unit=st.sampled_from(["W", "D", "14D"]),
)
def test_rfm_summary_matches_naive_on_random_logs(data, unit):
    base = pd.Timestamp("2020-01-01")
    tx = pd.DataFrame(
        {
            "customer_id": [c for c, _, _, _ in data],
            "date": [base + pd.Timedelta(days=d, hours=h) for _, d, h, _ in data],
            "amount": [a for _, _, _, a in data],
        }
    )
    end = pd.Timestamp("2021-03-01")
    unit_days = {"W": 7.0, "D": 1.0, "14D": 14.0}[unit]
    ours = clvbayes.rfm_summary(tx.sample(frac=1.0, random_state=1), observation_end=end, time_unit=unit)
    ref = naive_summary(tx, end, unit_days)
    pd.testing.assert_frame_equal(
        ours[["frequency", "recency", "T", "monetary_value"]], ref.loc[ours.index], check_dtype=False,
        check_names=False, rtol=1e-12, atol=1e-12,
    )


def test_time_is_continuous_not_floored():
    tx = pd.DataFrame(
        {"customer_id": [1, 1], "date": pd.to_datetime(["2020-01-01", "2020-01-11"]), "amount": [1.0, 2.0]}
    )
    s = clvbayes.rfm_summary(tx, observation_end="2020-01-20")
    assert s.loc[1, "recency"] == pytest.approx(10 / 7)
    assert s.loc[1, "T"] == pytest.approx(19 / 7)


def test_inputs_not_mutated(cdnow_transactions):
    before = cdnow_transactions.copy(deep=True)
    clvbayes.rfm_summary(cdnow_transactions, observation_end="1998-06-30")
    clvbayes.calibration_holdout_split(cdnow_transactions, calibration_end="1997-09-30")
    pd.testing.assert_frame_equal(before, cdnow_transactions)


def test_holdout_counts_and_new_customers():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "c"],
            "date": pd.to_datetime(
                ["2020-01-01", "2020-01-05", "2020-02-10", "2020-02-10", "2020-01-03", "2020-02-15"]
            ),
            "amount": [10.0, 20.0, 5.0, 7.0, 3.0, 9.0],
        }
    )
    s = clvbayes.calibration_holdout_split(
        tx, calibration_end="2020-01-31", observation_end="2020-02-29", time_unit="D"
    )
    assert list(s.index) == ["a", "b"]  # c was acquired in the holdout
    assert s.attrs["customers_acquired_in_holdout"] == 1
    assert s.loc["a", "frequency"] == 1 and s.loc["a", "monetary_value"] == 20.0
    assert s.loc["a", "frequency_holdout"] == 1  # two rows on 2020-02-10 are one occasion
    assert s.loc["a", "monetary_value_holdout"] == 12.0
    assert s.loc["b", "frequency_holdout"] == 0 and s.loc["b", "monetary_value_holdout"] == 0.0
    assert s.loc["a", "T"] == 30.0 and s["duration_holdout"].iloc[0] == 29.0


def test_refund_options():
    tx = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1],
            "date": pd.to_datetime(["2020-01-01", "2020-01-08", "2020-01-08", "2020-01-20"]),
            "amount": [10.0, 30.0, -5.0, -10.0],
        }
    )
    with pytest.raises(clvbayes.DataValidationError, match="negative amounts"):
        clvbayes.rfm_summary(tx, observation_end="2020-02-01")
    dropped = clvbayes.rfm_summary(tx, observation_end="2020-02-01", refunds="drop")
    assert dropped.loc[1, "frequency"] == 1 and dropped.loc[1, "monetary_value"] == 30.0
    netted = clvbayes.rfm_summary(tx, observation_end="2020-02-01", refunds="net")
    # -5 on the purchase day and -10 later both net against the 2020-01-08 occasion
    assert netted.loc[1, "frequency"] == 1 and netted.loc[1, "monetary_value"] == 15.0
    assert netted.loc[1, "recency"] == 1.0  # a refund is not a purchase occasion


def test_time_unit_errors():
    tx = pd.DataFrame({"customer_id": [1], "date": pd.to_datetime(["2020-01-01"]), "amount": [1.0]})
    for bad in ("M", "Y", "", "bogus"):
        with pytest.raises(ValueError, match="time_unit"):
            clvbayes.rfm_summary(tx, time_unit=bad)
