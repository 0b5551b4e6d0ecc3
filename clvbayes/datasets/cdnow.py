"""Loaders for the CDNOW transaction logs bundled with the package."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_cdnow", "load_cdnow_sample"]

_COLUMNS = ["customer_id", "date", "amount", "quantity"]


def _data_file(name: str):
    return resources.files("clvbayes.datasets").joinpath("data", name)


def load_cdnow_sample() -> pd.DataFrame:
    """The 1/10th systematic sample of CDNOW used by Fader, Hardie & Lee (2005).

    2,357 customers who made their first purchase at CDNOW in the first quarter of 1997,
    observed from 1997-01-01 to 1998-06-30; purchases of one customer on one day are
    already merged (6,696 rows). The literature calibrates on 1997-01-01..1997-09-30 (39
    weeks) and holds out 1997-10-01..1998-06-30 (39 weeks).

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (int64), ``date`` (datetime64), ``amount`` (float64, US
        dollars) and ``quantity`` (int64, number of CDs), sorted by customer and date.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy
    way: an alternative to the Pareto/NBD model. Marketing Science 24(2), 275-284.
    """
    with _data_file("cdnow_sample_transactions.csv").open("r") as fh:
        raw = pd.read_csv(fh, dtype={"Id": "int64", "CDs": "int64", "Price": "float64"})
    out = pd.DataFrame(
        {
            "customer_id": raw["Id"].to_numpy(),
            "date": pd.to_datetime(raw["Date"], format="%Y-%m-%d"),
            "amount": raw["Price"].to_numpy(),
            "quantity": raw["CDs"].to_numpy(),
        }
    )
    return out.sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)


def load_cdnow() -> pd.DataFrame:
    """The full CDNOW data set: every purchase of the 23,570 customers of the 1997 Q1 cohort.

    Observed 1997-01-01..1998-06-30, 69,659 rows; several rows may share a customer and a
    day (:func:`clvbayes.rfm_summary` merges them into one purchase occasion).

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id``, ``date``, ``amount`` (US dollars), ``quantity`` (CDs),
        sorted by customer and date.
    """
    with _data_file("CDNOW_master.txt").open("r") as fh:
        raw = pd.read_csv(
            fh,
            sep=r"\s+",
            header=None,
            names=["customer_id", "date", "quantity", "amount"],
            comment=None,
            dtype=str,
        )
    # the distributed file sometimes carries a header line; drop any non-numeric row
    raw = raw.loc[raw["customer_id"].str.isdigit()]
    out = pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype("int64").to_numpy(),
            "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["amount"].astype("float64").to_numpy(),
            "quantity": raw["quantity"].astype("int64").to_numpy(),
        }
    )
    return out.sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)[_COLUMNS]
