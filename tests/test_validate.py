"""Bad input gets a clear error that names the column, the count, customers and the fix."""

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes import DataValidationError


def tx(**overrides):
    base = {
        "customer_id": [1, 1, 2, 3],
        "date": pd.to_datetime(["2020-01-01", "2020-01-15", "2020-01-03", "2020-02-01"]),
        "amount": [10.0, 12.0, 5.0, 7.5],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_empty_frame():
    with pytest.raises(DataValidationError, match="empty"):
        clvbayes.rfm_summary(tx().iloc[:0])


def test_not_a_frame():
    with pytest.raises(TypeError, match="DataFrame"):
        clvbayes.rfm_summary([1, 2, 3])


def test_missing_column_names_it_and_lists_present():
    df = tx().rename(columns={"date": "when"})
    with pytest.raises(DataValidationError, match=r"'date' \(the date column\).*Columns present.*'when'.*date="):
        clvbayes.rfm_summary(df)
    # passing the right name fixes it
    assert len(clvbayes.rfm_summary(df, date="when")) == 3


def test_duplicate_column_names():
    df = pd.concat([tx(), tx()[["amount"]]], axis=1)
    with pytest.raises(DataValidationError, match="duplicate column names 'amount'"):
        clvbayes.rfm_summary(df)


def test_missing_ids_dates_amounts():
    with pytest.raises(DataValidationError, match=r"'customer_id' has 1 missing"):
        clvbayes.rfm_summary(tx(customer_id=[1, None, 2, 3]))
    with pytest.raises(DataValidationError, match=r"'date' has 1 missing dates \(NaT\) for customers 2"):
        clvbayes.rfm_summary(tx(date=pd.to_datetime(["2020-01-01", "2020-01-15", None, "2020-02-01"])))
    with pytest.raises(DataValidationError, match=r"'amount' has 1 missing values for customers 3"):
        clvbayes.rfm_summary(tx(amount=[1.0, 2.0, 3.0, np.nan]))


def test_bad_dates_and_amounts_name_values_and_customers():
    with pytest.raises(DataValidationError, match=r"'date' has 1 values that are not dates.*'2020-13-45'.*customers 2"):
        clvbayes.rfm_summary(tx(date=["2020-01-01", "2020-01-15", "2020-13-45", "2020-02-01"]))
    with pytest.raises(DataValidationError, match=r"'amount' has 2 non-numeric values.*'\$5'.*customers 2, 3"):
        clvbayes.rfm_summary(tx(amount=["10", "12", "$5", "n/a"]))
    # strings that are numbers are fine
    assert clvbayes.rfm_summary(tx(amount=["10", "12", "5", "7.5"])).loc[1, "monetary_value"] == 12.0


def test_dates_after_observation_end():
    with pytest.raises(DataValidationError, match=r"1 transactions after observation_end=2020-01-31 \(customers 3\).*calibration_holdout_split"):
        clvbayes.rfm_summary(tx(), observation_end="2020-01-31")


def test_negative_amounts_listed():
    with pytest.raises(DataValidationError, match=r"2 negative amounts.*customers 1, 3.*refunds='drop'.*refunds='net'"):
        clvbayes.rfm_summary(tx(amount=[10.0, -1.0, 5.0, -2.0]))


def test_many_offenders_are_summarised():
    n = 20
    df = pd.DataFrame({"customer_id": range(n), "date": pd.Timestamp("2020-01-01"), "amount": -1.0})
    with pytest.raises(DataValidationError, match=r"20 negative amounts.*0, 1, 2, 3, 4, \.\.\. \(15 more\)"):
        clvbayes.rfm_summary(df)


def rfm(**overrides):
    base = {"frequency": [0, 2, 5], "recency": [0.0, 10.0, 30.0], "T": [20.0, 30.0, 40.0]}
    base.update(overrides)
    return pd.DataFrame(base, index=pd.Index(["a", "b", "c"], name="customer_id"))


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({"frequency": [0, -1, 5]}, r"'frequency' has 1 negative frequencies \('b'\)"),
        ({"frequency": [0, 2.5, 5]}, r"'frequency' has 1 non-integer frequencies \('b'\)"),
        ({"recency": [0.0, 31.0, 30.0]}, r"'recency' has 1 customers with recency > T \('b'\).*time units"),
        ({"recency": [1.0, 10.0, 30.0]}, r"'recency' has 1 customers with frequency 0 but recency > 0 \('a'\)"),
        ({"T": [-1.0, 30.0, 40.0]}, r"'T' has 1 negative ages T \('a'\)"),
        ({"T": [20.0, np.nan, 40.0]}, r"'T' has 1 missing, infinite or non-numeric values for customers 'b'"),
    ],
)
def test_model_rejects_bad_summaries(overrides, pattern):
    with pytest.raises(DataValidationError, match=pattern):
        clvbayes.BetaGeoModel(rfm(**overrides)).fit_mle()


def test_model_rejects_wrong_columns_and_duplicates():
    with pytest.raises(DataValidationError, match=r"no column 'recency'"):
        clvbayes.BetaGeoModel(rfm().drop(columns="recency")).fit_mle()
    dup = rfm()
    dup.index = ["a", "a", "c"]
    with pytest.raises(DataValidationError, match=r"duplicate customer ids \('a'\)"):
        clvbayes.BetaGeoModel(dup).fit_mle()


def test_gamma_gamma_rejects_nonpositive_spend_of_repeat_buyers():
    df = rfm().assign(monetary_value=[0.0, 0.0, 12.0])
    with pytest.raises(DataValidationError, match=r"is 0 for 1 repeat buyers \('b'\): all their repeat purchases "
                       r"have amount 0.*fit it without them"):
        clvbayes.GammaGammaModel(df).fit_mle()
    with pytest.raises(DataValidationError, match=r"1 negative mean spends among repeat buyers \('b'\)"):
        clvbayes.GammaGammaModel(df.assign(monetary_value=[0.0, -3.0, 12.0])).fit_mle()
    with pytest.raises(DataValidationError, match="'frequency' is 0 for all 3 customers: no one made a repeat purchase"):
        clvbayes.GammaGammaModel(df.assign(frequency=0, recency=0.0)).fit_mle()


def test_validation_does_not_mutate():
    df = rfm()
    before = df.copy()
    clvbayes.BetaGeoModel.from_params({"r": 0.2, "alpha": 4.0, "a": 0.8, "b": 2.4}).probability_alive(df)
    pd.testing.assert_frame_equal(df, before)
