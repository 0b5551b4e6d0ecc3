"""read_attributes: a second file of customer attributes, read so that it joins the log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvbayes as cb
from clvbayes.covariates import join_attributes


def _write(tmp_path, text: str, name: str = "attrs.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_ids_stay_text_and_columns_get_their_kind(tmp_path):
    path = _write(tmp_path, "cust,channel,age,store\n007,web,31,0012\n7,store,45.5,0450\n\n12,web,,0012\n")
    out = cb.read_attributes(path, customer_col="cust")
    assert list(out.columns) == ["customer_id", "channel", "age", "store"]
    assert list(out["customer_id"]) == ["007", "7", "12"]  # two customers, blank line skipped
    assert out["age"].dtype == np.float64 and np.isnan(out["age"].iloc[2])
    assert not pd.api.types.is_numeric_dtype(out["store"]) and list(out["store"]) == ["0012", "0450", "0012"]  # codes stay text
    assert not pd.api.types.is_numeric_dtype(out["channel"])


def test_it_joins_a_summary_read_from_a_log(tmp_path):
    log = _write(tmp_path, "customer_id,date,amount\n007,2024-01-01,10\n007,2024-02-01,12\n7,2024-01-15,8\n", "log.csv")
    tx = cb.read_transactions(log)
    rfm = cb.rfm_summary(tx, observation_end="2024-03-31")
    attrs = cb.read_attributes(_write(tmp_path, "customer_id,channel\n7,store\n007,web\n"))
    joined = join_attributes(rfm.reset_index(), attrs)
    assert dict(zip(joined["customer_id"], joined["channel"], strict=True)) == {"007": "web", "7": "store"}


def test_bad_files_are_named(tmp_path):
    with pytest.raises(cb.DataValidationError, match="does not exist"):
        cb.read_attributes(tmp_path / "nope.csv")
    with pytest.raises(cb.DataValidationError, match="no column 'customer_id'.*Columns present"):
        cb.read_attributes(_write(tmp_path, "id,channel\n1,web\n"))
    with pytest.raises(cb.DataValidationError, match="empty on 1 line.*line 3"):
        cb.read_attributes(_write(tmp_path, "customer_id,channel\n1,web\n,store\n"))
    with pytest.raises(cb.DataValidationError, match="no attribute column"):
        cb.read_attributes(_write(tmp_path, "customer_id\n1\n2\n"))
    with pytest.raises(cb.DataValidationError, match="no customer rows"):
        cb.read_attributes(_write(tmp_path, "customer_id,channel\n"))


def test_parquet_keeps_its_dtypes(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "a.parquet"
    pd.DataFrame({"customer_id": ["01", "1"], "tier": [1, 2]}).to_parquet(path)
    out = cb.read_attributes(path)
    assert list(out["customer_id"]) == ["01", "1"] and out["tier"].dtype == np.int64
