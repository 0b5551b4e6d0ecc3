"""Customer summaries of transaction logs that live in Dask (or Parquet) and their compression.

:func:`clvbayes.rfm_summary` and :func:`clvbayes.calibration_holdout_split` route a Dask
DataFrame, or a path to a Parquet file or folder, here. The result equals the pandas
summary exactly, because each partition runs the *same* pandas code on complete customer
histories:

1. if ``observation_end`` is not given, its default (the day of the last valid
   transaction) is found first by a max reduction over the validated partitions;
2. the log is hash-partitioned by customer (``DataFrame.shuffle(on=customer_id)``), so
   every customer's transactions sit in one partition. The shuffle is skipped when the
   frame is already partitioned by customer: the customer id is the index and the
   divisions are known (e.g. ``dd.read_parquet(..., index="customer_id",
   calculate_divisions=True)`` on a log written sorted by customer, or after
   ``set_index("customer_id")``);
3. ``map_partitions`` applies the pandas summary to each partition.

Floating-point sums depend on the order of their terms (amounts of one customer on one
day are summed), so when amounts are used and a shuffle is needed, each row carries its
position in the input (partition number, row number) through the shuffle and each
partition is put back in input order before summarising: same terms, same order, same
bits as pandas on the concatenated log (``pd.concat`` of the partitions in order, which is
what ``pandas.read_parquet`` of the same files gives).

The summary of 10^8 customers is itself large; the models only need the much smaller
table of distinct rows with their counts, :func:`compress_summary`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data.rfm import occasions_until, rfm_summary
from clvbayes.data.split import calibration_holdout_split
from clvbayes.data.validate import DataValidationError, parse_end_date, validate_transactions
from clvbayes.distributed._dask import is_dask_collection, is_distributed_input, require_dask
from clvbayes.data.schema import WEIGHT_COLUMN, WEIGHTS_ATTR  # the count column the models read

__all__ = [
    "BGNBD_COLUMNS",
    "GAMMA_GAMMA_COLUMNS",
    "WEIGHT_COLUMN",
    "calibration_holdout_split_dask",
    "compress_summary",
    "is_distributed_input",
    "rfm_summary_dask",
]

#: Columns the BG/NBD likelihood of a customer depends on.
BGNBD_COLUMNS = ("frequency", "recency", "T")
#: Columns the Gamma-Gamma likelihood of a customer depends on.
GAMMA_GAMMA_COLUMNS = ("frequency", "monetary_value")

_ORDER = "__clvbayes_row__"  # input position carried through the shuffle
_ROWS_PER_PARTITION = 2**40  # partition number * 2**40 + row number fits int64 for 2**23 partitions




def _as_dask_frame(transactions: Any, what: str):
    dd = require_dask(what)
    if isinstance(transactions, str | os.PathLike):
        return dd.read_parquet(os.fspath(transactions))
    if not isinstance(transactions, dd.DataFrame):
        raise TypeError(f"{what} needs a Dask DataFrame or a Parquet path, got {type(transactions).__name__}.")
    return transactions


def _date_range(part: pd.DataFrame, validate_kwargs: dict) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last valid transaction date of one partition (None when empty)."""
    if len(part) == 0:
        return None
    clean = validate_transactions(part, **validate_kwargs)
    if len(clean) == 0:  # pragma: no cover - validate raises instead
        return None
    return clean["date"].min(), clean["date"].max()


def _global_date_range(ddf, customer_id: str, date: str, amount: str | None, refunds: str):
    """(first, last) valid transaction date of the whole log: one pass, a min/max reduction."""
    import dask

    kwargs = {"customer_id": customer_id, "date": date, "amount": amount, "refunds": refunds}
    frame = ddf.reset_index() if ddf.index.name == customer_id and customer_id not in ddf.columns else ddf
    ranges = [r for r in dask.compute(*[dask.delayed(_date_range)(p, kwargs) for p in frame.to_delayed()]) if r]
    if not ranges:
        raise DataValidationError("The transaction table is empty (0 rows): there is nothing to summarise or fit.")
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def _with_input_order(part: pd.DataFrame, partition_info: dict | None = None) -> pd.DataFrame:
    number = 0 if partition_info is None else int(partition_info["number"])
    order = np.arange(len(part), dtype=np.int64) + np.int64(number) * _ROWS_PER_PARTITION
    return part.assign(**{_ORDER: order})


def _synthetic_log(meta_nonempty: pd.DataFrame, customer_id: str, date: str, amount: str | None, day: pd.Timestamp):
    """A one-transaction log with the input's dtypes, to derive the output meta from pandas."""
    ids = meta_nonempty[customer_id] if customer_id in meta_nonempty.columns else meta_nonempty.index.to_series()
    dtype = meta_nonempty[date].dtype
    when = pd.Series([day - pd.Timedelta(days=2)])
    if isinstance(dtype, pd.DatetimeTZDtype):
        dates = when.dt.tz_localize(dtype.tz).astype(dtype)
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        dates = when.astype(dtype)
    else:
        dates = when.dt.strftime("%Y-%m-%d")
    cols = {"customer_id_": ids.iloc[:1].to_numpy(), "date_": dates.to_numpy()}
    log = pd.DataFrame({customer_id: cols["customer_id_"], date: cols["date_"]})
    if amount is not None:
        log[amount] = 1.0
    return log


def _summarise_partition(
    part: pd.DataFrame,
    *,
    summarise,
    kwargs: dict,
    reset_index: bool,
    empty: pd.DataFrame,
    calibration_end: pd.Timestamp | None,
) -> pd.DataFrame:
    """The pandas summary of one partition holding complete customer histories."""
    if reset_index:
        part = part.reset_index()
    if _ORDER in part.columns:
        part = part.sort_values(_ORDER, kind="stable").drop(columns=_ORDER)
    if len(part) == 0:
        return empty.copy()
    try:
        out = summarise(part, **kwargs)
    except DataValidationError:
        # A partition may hold only customers acquired in the holdout; that is an error
        # for the whole log, not for one partition (checked globally when the log is scanned).
        if calibration_end is None:
            raise
        occ, _ = occasions_until(
            part, customer_id=kwargs["customer_id"], date=kwargs["date"], amount=kwargs["amount"],
            observation_end=kwargs["observation_end"], refunds=kwargs["refunds"],
        )
        if (occ["day"] <= calibration_end).any():
            raise
        return empty.copy()
    # differs between partitions; pandas.concat keeps attrs only when all partitions agree
    out.attrs.pop("customers_acquired_in_holdout", None)
    if out["first_purchase"].dtype != empty["first_purchase"].dtype:  # string dates: one unit for all partitions
        out["first_purchase"] = out["first_purchase"].astype(empty["first_purchase"].dtype)
    return out


def _summarise_dask(ddf, func, kwargs: dict, calibration_end: pd.Timestamp | None, meta_day: pd.Timestamp):
    customer_id, amount = kwargs["customer_id"], kwargs["amount"]
    by_index = ddf.index.name == customer_id and customer_id not in ddf.columns
    if by_index and ddf.known_divisions:
        # already partitioned by customer: each index value lies in one partition
        frame, reset_index = ddf, True
    else:
        frame = ddf.reset_index() if by_index else ddf
        reset_index = False
        if amount is not None:
            frame = frame.map_partitions(_with_input_order, meta=frame._meta.assign(**{_ORDER: np.int64(0)}))
        frame = frame.shuffle(on=customer_id)
    sample = ddf._meta_nonempty.reset_index() if by_index else ddf._meta_nonempty
    synthetic = _synthetic_log(sample, customer_id, kwargs["date"], amount, meta_day)
    meta = func(synthetic, **kwargs).iloc[:0]
    meta.attrs.pop("customers_acquired_in_holdout", None)
    return frame.map_partitions(
        _summarise_partition,
        summarise=func,
        kwargs=kwargs,
        reset_index=reset_index,
        empty=meta,
        calibration_end=calibration_end,
        meta=meta,
        align_dataframes=False,
    )


def rfm_summary_dask(
    transactions: Any,
    *,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
    observation_end: str | pd.Timestamp | None = None,
    time_unit: str = "W",
    refunds: str = "raise",
):
    """:func:`clvbayes.rfm_summary` of a Dask DataFrame or a Parquet file/folder.

    Parameters
    ----------
    transactions
        A ``dask.dataframe.DataFrame`` with the customer id as a column (or as the index;
        with known divisions no shuffle is needed), or a path read by
        ``dask.dataframe.read_parquet``.
    customer_id, date, amount, observation_end, time_unit, refunds
        As in :func:`clvbayes.rfm_summary`.

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy; indexed by customer id, with the columns and ``attrs["time_unit"]`` of the
        pandas summary, and the same values bit for bit. Rows are grouped by partition, not
        sorted by customer. When ``observation_end`` is None the log is scanned once now to
        find it. Validation errors of the log are raised when the result is computed.
    """
    from clvbayes.data.rfm import time_unit_length

    time_unit_length(time_unit)  # fail fast on a bad unit
    ddf = _as_dask_frame(transactions, "rfm_summary on a Dask DataFrame or Parquet path")
    if observation_end is None:
        _, last = _global_date_range(ddf, customer_id, date, amount, refunds)
        end = last.normalize()
    else:
        end = parse_end_date(observation_end, "observation_end")
    kwargs = {
        "customer_id": customer_id, "date": date, "amount": amount,
        "observation_end": end, "time_unit": time_unit, "refunds": refunds,
    }
    return _summarise_dask(ddf, rfm_summary, kwargs, None, end)


def calibration_holdout_split_dask(
    transactions: Any,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp | None = None,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
    time_unit: str = "W",
    refunds: str = "raise",
):
    """:func:`clvbayes.calibration_holdout_split` of a Dask DataFrame or Parquet path.

    Same arguments and, per customer, the same values as the pandas function (see
    :func:`rfm_summary_dask` for the inputs accepted). Differences: the result is a lazy
    Dask DataFrame; ``attrs["customers_acquired_in_holdout"]`` is not provided (it would
    need one more pass over the log); and when ``observation_end`` is given the log is not
    scanned up front, so a log without any calibration-period purchase gives an empty
    result instead of an error.
    """
    from clvbayes.data.rfm import time_unit_length

    time_unit_length(time_unit)
    cal_end = parse_end_date(calibration_end, "calibration_end")
    obs = None if observation_end is None else parse_end_date(observation_end, "observation_end")
    if obs is not None and obs <= cal_end:
        raise ValueError(f"observation_end ({obs.date()}) must come after calibration_end ({cal_end.date()}).")
    ddf = _as_dask_frame(transactions, "calibration_holdout_split on a Dask DataFrame or Parquet path")
    if observation_end is None:
        first, last = _global_date_range(ddf, customer_id, date, amount, refunds)
        obs_end = last.normalize()
        # the pandas function's global checks, on the whole log
        if obs_end <= cal_end:
            raise DataValidationError(
                f"No transaction falls after calibration_end={cal_end.date()}: there is no holdout period."
            )
        if first.normalize() > cal_end:
            raise DataValidationError(
                f"No transaction falls on or before calibration_end={cal_end.date()}: move calibration_end later."
            )
    else:
        obs_end = parse_end_date(observation_end, "observation_end")
    kwargs = {
        "calibration_end": cal_end, "observation_end": obs_end, "customer_id": customer_id,
        "date": date, "amount": amount, "time_unit": time_unit, "refunds": refunds,
    }
    return _summarise_dask(ddf, calibration_holdout_split, kwargs, cal_end, cal_end)


def compress_summary(
    summary: Any, columns: Sequence[str] = BGNBD_COLUMNS
) -> pd.DataFrame:
    """The small weighted table of distinct customer rows, for fitting.

    The BG/NBD likelihood of a customer depends only on (frequency, recency, T), so
    customers with equal rows contribute equal terms and the fit needs only the distinct
    rows and how many customers share each. Their number is bounded by the time grid:
    with daily dates, ``T`` and ``recency`` take at most a few hundred values per year
    of history each, so even 10^8 customers compress to ~10^5-10^6 rows.

    For Gamma-Gamma pass ``columns=GAMMA_GAMMA_COLUMNS`` (``("frequency",
    "monetary_value")``): its likelihood depends on the customer's mean spend, a
    continuous amount, so that table is about as long as the number of repeat buyers
    (customers with frequency 0 collapse into one row, which the fit skips). It is still
    far smaller than the log, and fits on one machine for 10^8 customers.

    Parameters
    ----------
    summary
        A pandas or Dask customer summary (from :func:`clvbayes.rfm_summary` or
        :func:`clvbayes.calibration_holdout_split`). If it is already a compressed table
        (it carries ``attrs["clvbayes_weights"]``; for Dask: it has a ``customers``
        column), the counts are added up.
    columns
        The columns whose distinct combinations are kept.

    Returns
    -------
    pandas.DataFrame
        ``columns`` plus ``customers`` (int64, number of customers per row), sorted by
        ``columns``, with a fresh RangeIndex and ``attrs["clvbayes_weights"] =
        "customers"``, the mark that makes the models weight each row by the column (a
        table read back from a file has lost it: set it again). ``customers`` sums to the
        number of customers; :class:`~clvbayes.BetaGeoModel` and :class:`~clvbayes.GammaGammaModel`
        accept it directly. Dask summaries are reduced with a tree reduction
        (``groupby(...).size(split_out=1)``); only the small result comes back.
    """
    columns = list(columns)
    if not columns:
        raise ValueError("compress_summary needs at least one column.")
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise ValueError(
            f"The summary has no column(s) {missing}; columns present: {list(summary.columns)}."
        )
    weighted = WEIGHT_COLUMN in summary.columns and WEIGHT_COLUMN not in columns and (
        is_dask_collection(summary) or getattr(summary, "attrs", {}).get(WEIGHTS_ATTR) == WEIGHT_COLUMN
    )
    # dropna=False: a NaN row stays a row, so the fit's validation names it
    if is_dask_collection(summary):
        grouped = summary[[*columns, WEIGHT_COLUMN] if weighted else columns].groupby(columns, dropna=False)
        counts = grouped[WEIGHT_COLUMN].sum(split_out=1) if weighted else grouped.size(split_out=1)
        counts = counts.compute()
    else:
        if not isinstance(summary, pd.DataFrame):
            raise TypeError(f"summary must be a pandas or Dask DataFrame, got {type(summary).__name__}.")
        grouped = summary.groupby(columns, dropna=False, sort=False, observed=True)
        counts = grouped[WEIGHT_COLUMN].sum() if weighted else grouped.size()
    attrs = {k: v for k, v in getattr(summary, "attrs", {}).items() if k == "time_unit"} if not is_dask_collection(summary) else {}
    table = counts.rename(WEIGHT_COLUMN).reset_index()
    table = table.sort_values(columns, kind="stable").reset_index(drop=True)
    table[WEIGHT_COLUMN] = table[WEIGHT_COLUMN].astype(np.int64)
    table.attrs.update(attrs)
    table.attrs[WEIGHTS_ATTR] = WEIGHT_COLUMN
    return table
