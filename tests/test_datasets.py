import numpy as np
import pandas as pd

from clvbayes.datasets import load_cdnow, load_cdnow_sample


def test_cdnow_sample_shape_and_types():
    df = load_cdnow_sample()
    # shared/data/README: 2,357 customers, 6,696 rows, 1997-01-01..1998-06-30
    assert df.shape == (6696, 4)
    assert list(df.columns) == ["customer_id", "date", "amount", "quantity"]
    assert df["customer_id"].nunique() == 2357
    assert pd.api.types.is_datetime64_any_dtype(df["date"])
    assert df["amount"].dtype == np.float64
    assert df["date"].min() == pd.Timestamp("1997-01-01")
    assert df["date"].max() == pd.Timestamp("1998-06-30")
    # first rows of the distributed file
    first = df.iloc[0]
    assert (first["customer_id"], first["date"], first["amount"], first["quantity"]) == (
        1, pd.Timestamp("1997-01-01"), 29.33, 2)


def test_cdnow_full_shape():
    df = load_cdnow()
    # 69,659 purchase rows of 23,570 customers (Fader & Hardie's CDNOW_master)
    assert df.shape == (69659, 4)
    assert df["customer_id"].nunique() == 23570
    assert df["date"].min() == pd.Timestamp("1997-01-01")
    assert df["date"].max() == pd.Timestamp("1998-06-30")
    assert (df["amount"] >= 0).all()
    assert df["customer_id"].is_monotonic_increasing


def test_loaders_return_fresh_frames():
    a = load_cdnow_sample()
    a.loc[0, "amount"] = -1.0
    assert load_cdnow_sample().loc[0, "amount"] == 29.33
