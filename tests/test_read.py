"""Reading real logs (issue 13, points 2, 4 and 11): ids as written, dates and time zones,
CSV quirks. ``read_transactions`` and the Python API (``validate_transactions``/``rfm_summary``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes import BetaGeoModel, calibration_holdout_split, read_transactions, rfm_summary
from clvbayes.data.rfm import rows_until
from clvbayes.data.validate import AmbiguousDateWarning, DataValidationError, validate_transactions
from clvbayes.distributed import compress_summary

HEADER = "customer_id,date,amount\n"


def write(tmp_path, text: str | bytes, name: str = "log.csv"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def validate(df: pd.DataFrame, **kw) -> pd.DataFrame:
    return validate_transactions(df, customer_id="customer_id", date="date", amount="amount", **kw)


# -- point 2: ids exactly as written --------------------------------------------------------
def test_csv_ids_stay_text_leading_zeros_and_long_ids(tmp_path):
    long20, long21 = "12345678901234567891", "123456789012345678901"  # > int64, > uint64
    path = write(tmp_path, HEADER + f"007,2024-01-01,1\n7,2024-01-02,2\n{long20},2024-01-03,3\n{long21},2024-01-04,4\n"
                 "007,2024-01-09,5\n")
    tx = read_transactions(path)
    assert tx["customer_id"].tolist() == ["007", "7", long20, long21, "007"]
    summary = rfm_summary(tx)
    assert sorted(summary.index) == sorted(["007", "7", long20, long21])  # 007 and 7: two customers
    assert summary.loc["007", "frequency"] == 1 and summary.loc["7", "frequency"] == 0


def test_customer_table_joins_back_to_the_source_file(tmp_path):
    """customers.csv is written with to_csv(index_label="customer_id") (clvbayes.report.write)."""
    path = write(tmp_path, HEADER + "007,2024-01-01,1\n7,2024-01-02,2\n0042,2024-01-03,3\n007,2024-01-20,4\n")
    summary = rfm_summary(read_transactions(path))
    summary.to_csv(tmp_path / "customers.csv", index_label="customer_id")
    source = pd.read_csv(path, dtype={"customer_id": str})
    table = pd.read_csv(tmp_path / "customers.csv", dtype={"customer_id": str})
    joined = source.merge(table, on="customer_id", how="left", validate="many_to_one")
    assert joined["frequency"].notna().all()
    assert set(table["customer_id"]) == {"007", "7", "0042"}


def test_parquet_ids_keep_their_dtype(tmp_path):
    ints = pd.DataFrame({"customer_id": np.array([2**62 + 1, 5], dtype=np.int64),
                         "date": pd.to_datetime(["2024-01-01", "2024-01-02"]), "amount": [1.0, 2.0]})
    ints.to_parquet(tmp_path / "ints.parquet")
    got = read_transactions(tmp_path / "ints.parquet")
    assert got["customer_id"].dtype == np.int64 and got["customer_id"].iloc[0] == 2**62 + 1
    ints.assign(customer_id=["007", "7"]).to_parquet(tmp_path / "text.parquet")
    assert read_transactions(tmp_path / "text.parquet")["customer_id"].tolist() == ["007", "7"]


def test_mixed_int_and_text_ids_are_an_error_naming_examples():
    df = pd.DataFrame({"customer_id": pd.Series([7, "7", "A1", 12], dtype=object),
                       "date": ["2024-01-01"] * 4, "amount": [1.0] * 4})
    with pytest.raises(DataValidationError, match=r"'customer_id' mixes.*'7', 'A1'.*7, 12.*astype\(str\)"):
        rfm_summary(df)
    with pytest.raises(DataValidationError, match="mixes"):
        calibration_holdout_split(df, calibration_end="2024-01-01", observation_end="2024-02-01")
    rfm_summary(df.assign(customer_id=df["customer_id"].astype(str)))  # one type: fine


# -- point 4: dates and time zones ---------------------------------------------------------
@pytest.mark.parametrize("value", ["1700000000", "20240131"])
def test_numeric_dates_in_csv_need_a_unit_or_format(tmp_path, value):
    path = write(tmp_path, HEADER + f"a,{value},1\n")
    with pytest.raises(DataValidationError, match=r"'date'.*numbers, not dates at line 2.*--date-unit"):
        read_transactions(path)


def test_date_unit_reads_epoch_numbers(tmp_path):
    path = write(tmp_path, HEADER + "a,1704067200,1\nb,1704153600.5,2\n")
    tx = read_transactions(path, date_unit="s")
    assert tx["date"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02 00:00:00.5")]
    days = pd.DataFrame({"customer_id": ["a", "a"], "date": [19723, 19730], "amount": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match="numbers, not dates.*date_unit"):
        rfm_summary(days)
    summary = rfm_summary(days, date_unit="D", time_unit="D")
    assert summary.loc["a", "first_purchase"] == pd.Timestamp("2024-01-01") and summary.loc["a", "recency"] == 7
    with pytest.raises(ValueError, match="date_unit must be one of"):
        rfm_summary(days, date_unit="weeks")


def test_yyyymmdd_numbers_with_a_format(tmp_path):
    pq = pd.DataFrame({"customer_id": ["a"], "date": [20240131], "amount": [1.0]})
    pq.to_parquet(tmp_path / "log.parquet")
    with pytest.raises(DataValidationError, match="row 1"):
        read_transactions(tmp_path / "log.parquet")
    assert read_transactions(tmp_path / "log.parquet", date_format="%Y%m%d")["date"].iloc[0] == pd.Timestamp("2024-01-31")


def test_tz_aware_dates_keep_the_calendar_day_as_written(tmp_path):
    """23:30 at +02:00 is 21:30 UTC: still the 5th, as written (not the 6th or the 4th)."""
    path = write(tmp_path, HEADER + "a,2024-03-05T23:30:00+02:00,1\na,2024-03-12T00:30:00+02:00,2\n")
    tx = read_transactions(path)
    assert tx["date"].dt.date.astype(str).tolist() == ["2024-03-05", "2024-03-12"]
    aware = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [1.0, 2.0, 3.0],
                          "date": pd.DatetimeIndex(["2024-03-05 23:30", "2024-03-12 22:00", "2024-03-12 09:00"])
                          .tz_localize("America/New_York")})
    summary = rfm_summary(aware, time_unit="D")  # in UTC the 23:30 and 22:00 purchases move a day on
    assert summary.loc["a", "first_purchase"] == pd.Timestamp("2024-03-05")
    assert summary.loc["a", "recency"] == 7 and summary.loc["a", "T"] == 7


def test_tz_aware_observation_and_calibration_end():
    aware = pd.DataFrame({"customer_id": ["a", "a", "b", "a"], "amount": [1.0, 2.0, 3.0, 4.0],
                          "date": pd.DatetimeIndex(["2024-03-01 10:00", "2024-03-05 23:30", "2024-03-08 09:00",
                                                    "2024-03-20 12:00"]).tz_localize("Europe/Berlin")})
    end = pd.Timestamp("2024-03-31", tz="Europe/Berlin")
    summary = rfm_summary(aware, observation_end=end, time_unit="D")
    assert summary.loc["a", "T"] == 30
    split = calibration_holdout_split(aware, calibration_end=pd.Timestamp("2024-03-10", tz="Asia/Tokyo"),
                                      observation_end="2024-03-31T00:00:00+09:00", time_unit="D")
    assert split.loc["a", "frequency"] == 1 and split.loc["a", "frequency_holdout"] == 1
    assert split.loc["a", "T"] == 9 and split.loc["b", "T"] == 2


def test_mixed_offsets_name_the_line_and_the_customers(tmp_path):
    path = write(tmp_path, HEADER + "a,2024-01-05T10:00+02:00,1\nb,2024-01-06T10:00+01:00,1\nc,2024-01-07T10:00+02:00,1\n")
    with pytest.raises(DataValidationError, match=r"another UTC offset.*line 3 \('2024-01-06T10:00\+01:00'\)"):
        read_transactions(path)
    df = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "amount": 1.0,
                       "date": ["2024-01-05T10:00+02:00", "2024-01-06T10:00+01:00", "2024-01-07T10:00",
                                "2024-01-08T10:00+02:00"]})
    with pytest.raises(DataValidationError, match=r"2 dates with another UTC offset.*customers 'b', 'c'"):
        rfm_summary(df)


def test_dates_out_of_range_name_the_line(tmp_path):
    path = write(tmp_path, HEADER + "a,2024-01-05,1\nb,9999-12-31,1\n")
    with pytest.raises(DataValidationError, match=r"outside the range.*line 3 \('9999-12-31'\)"):
        read_transactions(path)
    with pytest.raises(DataValidationError, match="outside the range.*line 2"):
        read_transactions(write(tmp_path, HEADER + "a,1e15,1\n", "epoch.csv"), date_unit="s")
    df = pd.DataFrame({"customer_id": ["a", "b"], "date": ["2024-01-05", "2400-01-01"], "amount": 1.0})
    with pytest.raises(DataValidationError, match="outside the range.*customers 'b'"):
        rfm_summary(df)


def test_iso_dates_and_datetimes_mixed(tmp_path):
    path = write(tmp_path, HEADER + "a,2024-01-05,1\na,2024-01-06 14:30:00,1\nb,2024-01-07T08:00:00,2\n")
    assert read_transactions(path)["date"].tolist() == [
        pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-06 14:30"), pd.Timestamp("2024-01-07 08:00")]


def test_ambiguous_day_month_warns_and_says_which_reading(tmp_path):
    path = write(tmp_path, HEADER + "a,03/04/2024,1\nb,05/06/2024,1\n")
    with pytest.warns(AmbiguousDateWarning, match="month first.*2024-03-04.*%d/%m/%Y"):
        tx = read_transactions(path)
    assert tx["date"].iloc[0] == pd.Timestamp("2024-03-04")
    assert read_transactions(path, date_format="%d/%m/%Y")["date"].iloc[0] == pd.Timestamp("2024-04-03")
    # a day above 12 settles it: no warning, day first
    tx = read_transactions(write(tmp_path, HEADER + "a,03/04/2024,1\nb,25/06/2024,1\n", "dmy.csv"))
    assert tx["date"].tolist() == [pd.Timestamp("2024-04-03"), pd.Timestamp("2024-06-25")]
    assert clvbayes.AmbiguousDateWarning is AmbiguousDateWarning and issubclass(AmbiguousDateWarning, UserWarning)


def test_unparseable_end_dates_name_the_argument():
    df = pd.DataFrame({"customer_id": ["a"], "date": ["2024-01-05"], "amount": [1.0]})
    with pytest.raises(ValueError, match="observation_end='2024-13-45' is not a date"):
        rfm_summary(df, observation_end="2024-13-45")
    with pytest.raises(ValueError, match="calibration_end='soon' is not a date"):
        calibration_holdout_split(df, calibration_end="soon")


def test_rows_until_leaves_later_rows_out_and_counts_them():
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": 1.0,
                       "date": pd.to_datetime(["2024-01-05", "2024-01-31 18:00", "2024-02-01"], format="ISO8601")})
    kept, dropped = rows_until(tx, "2024-01-31")
    assert dropped == 1 and kept["date"].max() == pd.Timestamp("2024-01-31 18:00")
    with pytest.raises(DataValidationError, match="after observation_end"):  # the Python API stays explicit
        rfm_summary(tx, observation_end="2024-01-31")
    with pytest.raises(DataValidationError, match="All 3 purchases are dated after"):
        rows_until(tx, "2023-12-31")


def test_analysis_leaves_later_rows_out_and_passes_refunds(monkeypatch):
    """run_analysis (what clvbayes fit runs): rows after observation_end are dropped and
    counted, and the refunds setting reaches the summaries."""
    from clvbayes.workflow import AnalysisSettings, run_analysis

    seen = {}

    def spy(transactions, **kwargs):
        seen.update(rows=len(transactions), **kwargs)
        raise KeyboardInterrupt  # stop before any fit

    monkeypatch.setattr(clvbayes, "rfm_summary", spy)
    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b"], "amount": [5.0, -2.0, 3.0, 4.0],
                       "date": pd.to_datetime(["2024-01-05", "2024-01-06", "2024-01-20", "2024-02-03"])})
    with pytest.raises(KeyboardInterrupt):
        run_analysis(tx, AnalysisSettings(observation_end="2024-01-31", refunds="net"))
    assert seen["rows"] == 3 and seen["refunds"] == "net" and seen["observation_end"] == "2024-01-31"
    for bad in ({"observation_end": "2024-02-30"}, {"calibration_end": "soon"}, {"refunds": "keep"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            AnalysisSettings(**bad).check()


# -- point 11: CSV quirks -------------------------------------------------------------------
def test_duplicate_header_names_are_refused(tmp_path):
    path = write(tmp_path, "customer_id,date,amount,amount\na,2024-01-01,1,2\n")
    with pytest.raises(DataValidationError, match="'amount' more than once"):
        read_transactions(path)


@pytest.mark.parametrize("header", ["customer_id,date,amount\n", "customer_id,date,amount,\n"])
def test_trailing_commas_just_work(tmp_path, header):
    tx = read_transactions(write(tmp_path, header + "a,2024-01-01,1.5,\nb,2024-01-02,2,\n"))
    assert tx["customer_id"].tolist() == ["a", "b"] and tx["amount"].tolist() == [1.5, 2.0]
    assert tx["date"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02")]


def test_format_is_recognised_by_content_not_suffix(tmp_path):
    frame = pd.DataFrame({"customer_id": ["007"], "date": pd.to_datetime(["2024-01-01"]), "amount": [1.0]})
    frame.to_parquet(tmp_path / "really_parquet.csv")
    assert read_transactions(tmp_path / "really_parquet.csv")["customer_id"].tolist() == ["007"]
    assert read_transactions(write(tmp_path, HEADER + "a,2024-01-01,1\n", "really_csv.parquet"))["amount"].tolist() == [1.0]
    with pytest.raises(DataValidationError, match=r"not a Parquet file.*PAR1"):
        read_transactions(write(tmp_path, b"\x00\xff\xfe\x01" * 40, "broken.parquet"))


def test_boolean_amounts_are_refused(tmp_path):
    with pytest.raises(DataValidationError, match=r"'amount'.*true/false.*line 2"):
        read_transactions(write(tmp_path, HEADER + "a,2024-01-01,True\nb,2024-01-02,False\n"))
    pd.DataFrame({"customer_id": ["a"], "date": pd.to_datetime(["2024-01-01"]), "amount": [True]}).to_parquet(
        tmp_path / "log.parquet")
    with pytest.raises(DataValidationError, match=r"'amount'.*true/false.*row 1"):
        read_transactions(tmp_path / "log.parquet")
    df = pd.DataFrame({"customer_id": ["a", "b"], "date": ["2024-01-01", "2024-01-02"], "amount": [True, False]})
    with pytest.raises(DataValidationError, match="'amount' holds true/false"):
        rfm_summary(df)


def test_negative_amounts_read_when_refunds_are_handled(tmp_path):
    path = write(tmp_path, HEADER + "a,2024-01-01,10\na,2024-01-08,5\na,2024-01-08,-8\n")
    with pytest.raises(DataValidationError, match="negative.*--refunds"):
        read_transactions(path)
    tx = read_transactions(path, refunds="net")
    assert tx["amount"].tolist() == [10.0, 5.0, -8.0]


def test_net_refunds_never_give_a_negative_spend():
    """A refund larger than the occasion it nets against clamps that occasion at 0."""
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b", "b"],
                       "date": ["2024-01-01", "2024-01-08", "2024-01-09", "2024-01-15", "2024-01-01", "2024-01-08"],
                       "amount": [10.0, 5.0, -20.0, 7.0, 4.0, -1.0]})
    summary = rfm_summary(tx, refunds="net")
    assert (summary["monetary_value"] >= 0).all()
    assert summary.loc["a", "frequency"] == 2  # the fully refunded occasion still happened
    assert summary.loc["a", "monetary_value"] == pytest.approx((0.0 + 7.0) / 2)


def test_a_column_named_customers_is_not_used_as_weights(cdnow_split):
    plain = cdnow_split.assign(customers=3)  # e.g. a count of household members
    with pytest.warns(UserWarning, match="'customers' is not used as row weights.*clvbayes_weights"):
        ll = BetaGeoModel(plain).fit_mle().log_likelihood_
    assert ll == pytest.approx(BetaGeoModel(cdnow_split).fit_mle().log_likelihood_, rel=1e-12)
    # a compressed table read back from a file has lost the mark; marking it restores the weights
    table = compress_summary(cdnow_split)
    assert table.attrs["clvbayes_weights"] == "customers"
    again = pd.DataFrame(table.to_dict("list"))
    again.attrs["clvbayes_weights"] = "customers"
    assert BetaGeoModel(again).fit_mle().log_likelihood_ == pytest.approx(ll, rel=1e-12)
    with pytest.raises(DataValidationError, match="marked as weighted by column 'n'"):
        BetaGeoModel(again.rename(columns={"customers": "m"}).pipe(
            lambda f: f.attrs.update(clvbayes_weights="n") or f)).fit_mle()


@pytest.mark.slow  # a (tiny) NUTS fit: ~25-50 s on a shared machine
def test_a_saved_weighted_fit_stays_weighted_when_loaded(cdnow_split, tmp_path):
    import warnings

    table = compress_summary(cdnow_split)
    fitted = BetaGeoModel(table).fit(chains=1, draws=30, tune=30, random_seed=2, progressbar=False)
    loaded = BetaGeoModel.load(fitted.save(tmp_path / "fit.nc"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not used as row weights" warning
        np.testing.assert_array_equal(loaded._weights(), table["customers"].to_numpy(dtype=float))
