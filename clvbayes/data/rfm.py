"""From a transaction log to the customer-level (frequency, recency, T, monetary) summary."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clvbayes.data.validate import DataValidationError, _naive, parse_end_date, validate_transactions

if TYPE_CHECKING:  # the optional dask extra
    import dask.dataframe as dd

__all__ = ["rfm_summary", "time_unit_length", "purchase_occasions", "occasions_until", "rows_until"]

# Calendar months and years have no fixed length; a model on a time scale that changes
# length from period to period is not what BG/NBD assumes, so they are refused.
_VARIABLE_UNITS = {"M", "ME", "MS", "Y", "YE", "YS", "A", "Q", "QE", "QS"}


def time_unit_length(time_unit: str) -> pd.Timedelta:
    """Length of one time unit: ``"W"`` is exactly 7 days, ``"D"`` 1 day, ``"h"`` an hour.

    Any fixed duration pandas understands (``"14D"``, ``"30D"``) is accepted; calendar
    months and years are not, because their length varies.
    """
    if not isinstance(time_unit, str) or not time_unit:
        raise ValueError(f"time_unit must be a string such as 'W' or 'D', got {time_unit!r}.")
    if time_unit.lstrip("0123456789") in _VARIABLE_UNITS:
        raise ValueError(
            f"time_unit={time_unit!r} has no fixed length. Use a fixed duration such as 'W' "
            "(7 days), 'D' or '30D'."
        )
    try:
        length = pd.Timedelta(1, unit=time_unit) if time_unit.isalpha() else pd.Timedelta(time_unit)
    except (ValueError, KeyError):
        try:
            length = pd.to_timedelta(time_unit)
        except ValueError as err:
            raise ValueError(
                f"time_unit={time_unit!r} is not a duration pandas understands; use 'W', 'D', 'h' or e.g. '14D'."
            ) from err
    if length <= pd.Timedelta(0):
        raise ValueError(f"time_unit={time_unit!r} must be a positive duration.")
    return length


def purchase_occasions(clean: pd.DataFrame, *, refunds: str = "raise") -> pd.DataFrame:
    """Merge a validated log into purchase occasions: one row per customer and calendar day.

    Amounts of one customer on one day are summed. With ``refunds="net"``, a negative
    amount is subtracted from the purchase occasion of the same day or, when there is none,
    from the customer's latest earlier occasion; refunds never create an occasion. An
    occasion whose refunds exceed its purchases is clamped at 0 (the surplus refunds
    nothing else), so netted spend is never negative; the occasion still counts as a
    purchase occasion.

    Returns a frame with ``customer_id``, ``day`` and, if present, ``amount``, sorted by
    customer and day.
    """
    df = clean.assign(day=clean["date"].dt.normalize())
    has_amount = "amount" in df.columns
    if has_amount and refunds == "net" and (df["amount"] < 0).any():
        purchases = df.loc[df["amount"] >= 0]
        refunds_rows = df.loc[df["amount"] < 0]
        occ = purchases.groupby(["customer_id", "day"], sort=True, observed=True)["amount"].sum().reset_index()
        # assign each refund to the latest occasion on or before its day
        target = pd.merge_asof(
            refunds_rows.sort_values("day")[["customer_id", "day", "amount"]],
            occ[["customer_id", "day"]].rename(columns={"day": "occasion_day"}).sort_values("occasion_day"),
            left_on="day",
            right_on="occasion_day",
            by="customer_id",
            direction="backward",
        )
        orphan = target["occasion_day"].isna().to_numpy()
        if orphan.any():
            ids = target.loc[orphan, "customer_id"].unique()[:5]
            raise DataValidationError(
                f"Column 'amount' has {orphan.sum()} refunds dated before the customer's first purchase "
                f"(customers {', '.join(map(str, ids))}); they cannot be netted. Use refunds='drop' or fix the dates."
            )
        netted = target.groupby(["customer_id", "occasion_day"], observed=True)["amount"].sum()
        occ = occ.set_index(["customer_id", "day"])
        netted.index = netted.index.set_names(["customer_id", "day"])
        # a refund larger than the occasion it nets against would give a negative spend
        occ["amount"] = occ["amount"].add(netted, fill_value=0.0).clip(lower=0.0)
        return occ.reset_index()
    cols = ["amount"] if has_amount else []
    grouped = df.groupby(["customer_id", "day"], sort=True, observed=True)
    occ = grouped[cols].sum().reset_index() if cols else grouped.size().reset_index()[["customer_id", "day"]]
    return occ


def occasions_until(
    transactions: pd.DataFrame,
    *,
    customer_id: str,
    date: str,
    amount: str | None,
    observation_end: str | pd.Timestamp | None,
    refunds: str,
    date_unit: str | None = None,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Validate a log and merge it into purchase occasions; also return the end date used.

    ``observation_end`` defaults to the day of the last transaction; a tz-aware one keeps
    its wall time (see :func:`clvbayes.data.validate.validate_transactions`).
    """
    end = None if observation_end is None else parse_end_date(observation_end, "observation_end")
    clean = validate_transactions(
        transactions,
        customer_id=customer_id,
        date=date,
        amount=amount,
        observation_end=end,
        refunds=refunds,
        date_unit=date_unit,
    )
    if end is None:
        end = clean["date"].max().normalize()
    return purchase_occasions(clean, refunds=refunds), end


def _summarise_occasions(
    occ: pd.DataFrame, observation_end: pd.Timestamp, unit: pd.Timedelta, has_amount: bool
) -> pd.DataFrame:
    """Per-customer frequency, recency, T (and monetary value) from sorted occasions."""
    g = occ.groupby("customer_id", sort=True, observed=True)
    first = g["day"].min()
    last = g["day"].max()
    n_occ = g.size()
    out = pd.DataFrame(index=first.index)
    out["frequency"] = (n_occ - 1).astype(np.int64)
    out["recency"] = (last - first) / unit
    out["T"] = (observation_end - first) / unit
    if has_amount:
        total = g["amount"].sum()
        first_amount = g["amount"].first()
        repeat = out["frequency"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            mv = np.where(repeat > 0, (total - first_amount).to_numpy() / np.maximum(repeat, 1), 0.0)
        out["monetary_value"] = mv
    out["first_purchase"] = first
    out.index.name = "customer_id"
    return out


def rfm_summary(
    transactions: pd.DataFrame | dd.DataFrame | str | os.PathLike,
    *,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
    observation_end: str | pd.Timestamp | None = None,
    time_unit: str = "W",
    refunds: str = "raise",
    date_unit: str | None = None,
) -> pd.DataFrame | dd.DataFrame:
    """Summarise a transaction log into one row per customer.

    Parameters
    ----------
    transactions
        Purchase log, one row per purchase. Not modified.
    customer_id, date, amount
        Column names. ``amount=None`` when there is no monetary column.
    observation_end
        End of the observation period (a date; time is measured to its start, i.e.
        midnight). Defaults to the last transaction date. Transactions after it are an
        error (deliberately: an end date before the last purchase is more often a typo
        than a wish to ignore data); filter the log first (``clvbayes fit
        --observation-end`` does, and reports how many rows it left out), or use
        :func:`calibration_holdout_split` to keep them as a holdout. A tz-aware value
        keeps its wall time, like the dates of the log (see Notes).
    time_unit
        Unit of ``recency`` and ``T``: ``"W"`` (exactly 7 days, the default), ``"D"``,
        ``"h"`` or a fixed duration such as ``"14D"``. Times are continuous (fractional
        weeks), as in Fader, Hardie & Lee (2005); they are not floored to whole periods.
    refunds
        Negative amounts: ``"raise"`` (default), ``"drop"`` (ignore those rows) or
        ``"net"`` (subtract each refund from the same day's purchase or, when there is
        none, from the customer's latest earlier purchase occasion; an occasion is never
        netted below 0, see :func:`purchase_occasions`).
    date_unit
        Unit of a numeric date column (time since 1970-01-01): ``"s"`` (epoch seconds),
        ``"ms"``, ``"D"`` (days), ...; numeric dates without it are an error.

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id, with columns

        - ``frequency``: number of repeat purchase occasions. Purchases of one customer on
          one calendar day count as one occasion (their amounts are summed); the first
          occasion is not a repeat.
        - ``recency``: time from the first to the last occasion (0 if frequency is 0).
        - ``T``: time from the first occasion to ``observation_end``.
        - ``monetary_value``: mean value of the repeat occasions (0 if frequency is 0),
          present when ``amount`` is given.
        - ``first_purchase``: date of the first occasion (for cohorts).

    Notes
    -----
    Customer ids are kept as they are (``"007"`` and ``"7"`` are two customers); an
    object column mixing text and numbers is an error. Dates: a purchase belongs to the
    calendar day written in the data's own UTC offset, never converted to UTC; several
    offsets in one column are an error; see
    :func:`clvbayes.data.validate.validate_transactions`.

    Examples
    --------
    >>> from clvbayes.datasets import load_cdnow_sample
    >>> rfm = rfm_summary(load_cdnow_sample(), observation_end="1997-09-30")  # doctest: +SKIP

    A Dask DataFrame or a path to a Parquet file or folder is summarised on Dask and gives
    a lazy Dask DataFrame with the same values (:mod:`clvbayes.distributed`; needs the
    ``dask`` extra).
    """
    unit = time_unit_length(time_unit)
    occ, end = occasions_until(
        transactions, customer_id=customer_id, date=date, amount=amount,
        observation_end=observation_end, refunds=refunds, date_unit=date_unit,
    )
    out = _summarise_occasions(occ, end, unit, amount is not None)
    out.attrs["time_unit"] = time_unit
    return out


def _no_date_unit_on_dask(date_unit: str | None) -> None:
    if date_unit is not None:
        raise NotImplementedError(
            "date_unit is not supported for Dask or Parquet-path inputs: convert the column first, e.g. "
            "ddf['date'] = dd.to_datetime(ddf['date'], unit='s')."
        )


def rows_until(
    transactions: pd.DataFrame, observation_end: str | pd.Timestamp, *, date: str = "date"
) -> tuple[pd.DataFrame, int]:
    """The rows of a log dated on or before the day ``observation_end``, and how many were left out.

    "As of that date": what :func:`clvbayes.rfm_summary` needs when ``observation_end``
    comes before the last purchase (``clvbayes fit --observation-end`` uses it and reports
    the count). The dates must already be datetimes (as from
    :func:`clvbayes.data.read.read_transactions`).
    """
    end = parse_end_date(observation_end, "observation_end")
    late = np.asarray(_naive(pd.DatetimeIndex(transactions[date])).normalize() > end)
    if late.all() and len(late):
        raise DataValidationError(
            f"All {len(late):,} purchases are dated after observation_end={end.date()}: nothing is left to "
            "summarise. Move observation_end later."
        )
    return transactions.loc[~late].reset_index(drop=True), int(late.sum())
