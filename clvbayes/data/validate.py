"""Validation at the boundary: transaction logs and customer summaries.

Everything the models and kernels receive passes through here once. Each check raises
:class:`DataValidationError` with a message that names the column, how many rows or
customers are affected, a few of them, and what to do about it. Inputs are never
modified: the functions read from the caller's frame and return new arrays or frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "DataValidationError",
    "validate_transactions",
    "validate_rfm",
    "validate_monetary",
]

_N_SHOWN = 5  # offending ids listed in an error message


class DataValidationError(ValueError):
    """Raised when input data cannot be used as given; the message says how to fix it."""


def _examples(values: Sequence | pd.Index | np.ndarray) -> str:
    values = list(pd.unique(np.asarray(values, dtype=object)))
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:_N_SHOWN])
    more = f", ... ({len(values) - _N_SHOWN} more)" if len(values) > _N_SHOWN else ""
    return shown + more


def _check_frame(df: object, what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}.")
    if df.shape[0] == 0:
        raise DataValidationError(f"{what} is empty (0 rows): there is nothing to summarise or fit.")
    dup = df.columns[df.columns.duplicated()]
    if len(dup):
        raise DataValidationError(
            f"{what} has duplicate column names {_examples(dup)}: rename or drop the duplicates "
            "so each column is unambiguous."
        )
    return df


def _require_columns(df: pd.DataFrame, columns: dict[str, str], what: str) -> None:
    missing = {role: col for role, col in columns.items() if col not in df.columns}
    if missing:
        listed = ", ".join(f"{col!r} (the {role} column)" for role, col in missing.items())
        raise DataValidationError(
            f"{what} has no column {listed}. Columns present: {list(df.columns)}. "
            "Rename your columns or pass their names, e.g. "
            + ", ".join(f"{role}='<your column>'" for role in missing)
            + "."
        )


def _ids_where(ids: np.ndarray, mask: np.ndarray) -> str:
    return _examples(ids[mask])


def validate_transactions(
    transactions: pd.DataFrame,
    *,
    customer_id: str,
    date: str,
    amount: str | None,
    observation_end: pd.Timestamp | None = None,
    refunds: str = "raise",
) -> pd.DataFrame:
    """Check a transaction log and return a clean copy with standard columns.

    Parameters
    ----------
    transactions
        One row per purchase (several rows per customer and day are allowed).
    customer_id, date, amount
        Column names. ``amount=None`` means the log has no monetary column.
    observation_end
        Transactions dated after it are an error (they would give negative ages).
    refunds
        What to do with negative amounts: ``"raise"`` (default), ``"drop"`` (ignore those
        rows) or ``"net"`` (subtract them from the customer's purchases; see
        :func:`clvbayes.rfm_summary`).

    Returns
    -------
    pandas.DataFrame
        New frame with columns ``customer_id``, ``date`` (datetime64) and, if given,
        ``amount`` (float64). The caller's frame is not modified.
    """
    df = _check_frame(transactions, "The transaction table")
    if refunds not in ("raise", "drop", "net"):
        raise ValueError(f"refunds must be 'raise', 'drop' or 'net', got {refunds!r}.")
    roles = {"customer_id": customer_id, "date": date}
    if amount is not None:
        roles["amount"] = amount
    _require_columns(df, roles, "The transaction table")

    out = pd.DataFrame({"customer_id": df[customer_id].to_numpy(copy=True)})
    ids = out["customer_id"].to_numpy()
    na_id = pd.isna(ids)
    if na_id.any():
        rows = np.flatnonzero(na_id)
        raise DataValidationError(
            f"Column {customer_id!r} has {na_id.sum()} missing customer ids (rows {_examples(rows)}). "
            "Drop or fill those rows: every purchase must belong to a customer."
        )

    raw_dates = df[date]
    if pd.api.types.is_datetime64_any_dtype(raw_dates.dtype):
        dates = pd.DatetimeIndex(raw_dates)
    else:
        dates = pd.DatetimeIndex(pd.to_datetime(raw_dates, errors="coerce", format="mixed"))
        bad = dates.isna() & ~pd.isna(raw_dates.to_numpy())
        if bad.any():
            raise DataValidationError(
                f"Column {date!r} has {bad.sum()} values that are not dates "
                f"(e.g. {_examples(raw_dates.to_numpy()[bad])} for customers {_ids_where(ids, bad)}). "
                "Fix them or parse the column with pandas.to_datetime before calling."
            )
    if dates.tz is not None:
        dates = dates.tz_convert("UTC").tz_localize(None)
    missing = np.asarray(dates.isna())
    if missing.any():
        raise DataValidationError(
            f"Column {date!r} has {missing.sum()} missing dates (NaT) for customers "
            f"{_ids_where(ids, missing)}. Drop or fill those rows."
        )
    out["date"] = dates

    if observation_end is not None:
        # purchases are merged by calendar day, so compare days (a purchase at 14:00 on
        # the end date belongs to the period)
        late = np.asarray(dates.normalize() > observation_end)
        if late.any():
            raise DataValidationError(
                f"Column {date!r} has {late.sum()} transactions after observation_end="
                f"{observation_end.date()} (customers {_ids_where(ids, late)}). Filter them out, "
                "move observation_end, or use calibration_holdout_split to keep them as a holdout."
            )

    if amount is not None:
        raw = df[amount]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        not_num = np.isnan(values) & ~pd.isna(raw.to_numpy())
        if not_num.any():
            raise DataValidationError(
                f"Column {amount!r} has {not_num.sum()} non-numeric values "
                f"(e.g. {_examples(raw.to_numpy()[not_num])} for customers {_ids_where(ids, not_num)}). "
                "Strip currency symbols/thousands separators or convert with pandas.to_numeric."
            )
        nan = np.isnan(values)
        if nan.any():
            raise DataValidationError(
                f"Column {amount!r} has {nan.sum()} missing values for customers {_ids_where(ids, nan)}. "
                "Drop or fill those rows."
            )
        if not np.isfinite(values).all():
            inf = ~np.isfinite(values)
            raise DataValidationError(
                f"Column {amount!r} has {inf.sum()} infinite values for customers {_ids_where(ids, inf)}."
            )
        neg = values < 0
        if neg.any() and refunds == "raise":
            raise DataValidationError(
                f"Column {amount!r} has {neg.sum()} negative amounts (refunds?) for customers "
                f"{_ids_where(ids, neg)}. Pass refunds='drop' to ignore them or refunds='net' "
                "to subtract them from the customer's purchases."
            )
        out["amount"] = values
        if neg.any() and refunds == "drop":
            out = out.loc[~neg].reset_index(drop=True)
            if out.shape[0] == 0:
                raise DataValidationError("After dropping refunds, the transaction table is empty.")
    return out


def _numeric_column(df: pd.DataFrame, col: str, ids: np.ndarray, what: str) -> np.ndarray:
    raw = df[col]
    if not (pd.api.types.is_numeric_dtype(raw.dtype) or raw.dtype == object):
        raise DataValidationError(f"Column {col!r} of {what} must be numeric, got dtype {raw.dtype}.")
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    nan = ~np.isfinite(values)
    if nan.any():
        raise DataValidationError(
            f"Column {col!r} has {nan.sum()} missing, infinite or non-numeric values for customers "
            f"{_ids_where(ids, nan)}. Drop or fix those customers before fitting."
        )
    return values


def validate_rfm(
    rfm: pd.DataFrame,
    *,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check a customer summary for BG/NBD and return ``(x, t_x, T)`` as float64 arrays.

    Checks: required columns present, no missing values, frequency a non-negative integer,
    ``0 <= recency <= T``, recency 0 when frequency is 0, ``T > 0``, unique customer ids.
    """
    df = _check_frame(rfm, "The customer summary")
    _require_columns(df, {"frequency": frequency, "recency": recency, "T": T}, "The customer summary")
    ids = df.index.to_numpy()
    if df.index.has_duplicates:
        dup = df.index.duplicated(keep=False)
        raise DataValidationError(
            f"The customer summary has {df.index.duplicated().sum()} duplicate customer ids "
            f"({_ids_where(ids, dup)}). Each customer must appear once: aggregate with rfm_summary."
        )
    x = _numeric_column(df, frequency, ids, "the customer summary")
    t_x = _numeric_column(df, recency, ids, "the customer summary")
    t = _numeric_column(df, T, ids, "the customer summary")

    checks = [
        (x < 0, frequency, "negative frequencies", "Frequency counts repeat purchases and cannot be negative."),
        (
            x != np.round(x),
            frequency,
            "non-integer frequencies",
            "Frequency is a count of repeat purchase occasions; round or recompute it with rfm_summary.",
        ),
        (t <= 0, T, "customers with T <= 0", "T is the time from the first purchase to the end of observation; "
         "customers first seen at the very end carry no information: drop them or extend observation_end."),
        (t_x < 0, recency, "negative recencies", "Recency is the time of the last repeat purchase after the first."),
        (
            t_x > t * (1 + 1e-12),
            recency,
            "customers with recency > T",
            "The last repeat purchase cannot come after the end of observation: check the time units "
            "of recency and T (they must match).",
        ),
        (
            (x == 0) & (t_x > 0),
            recency,
            "customers with frequency 0 but recency > 0",
            "Without repeat purchases recency must be 0 (the lifetimes/BTYD convention).",
        ),
    ]
    for mask, col, what, fix in checks:
        if mask.any():
            raise DataValidationError(
                f"Column {col!r} has {mask.sum()} {what} ({_ids_where(ids, mask)}). {fix}"
            )
    return x, np.minimum(t_x, t), t


def validate_monetary(
    rfm: pd.DataFrame,
    *,
    frequency: str = "frequency",
    monetary_value: str = "monetary_value",
    require_repeat_buyers: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check a summary for Gamma-Gamma and return ``(x, m, repeat)`` for all customers.

    Customers with frequency 0 carry no spend information: ``repeat`` is the boolean mask
    of repeat buyers (the ones a fit uses) and ``m`` is 0 for the others. Repeat buyers
    must have a positive mean spend. With ``require_repeat_buyers`` (for fitting) a
    summary without any repeat buyer is an error.
    """
    df = _check_frame(rfm, "The customer summary")
    _require_columns(
        df, {"frequency": frequency, "monetary_value": monetary_value}, "The customer summary"
    )
    ids = df.index.to_numpy()
    if df.index.has_duplicates:
        dup = df.index.duplicated(keep=False)
        raise DataValidationError(
            f"The customer summary has duplicate customer ids ({_ids_where(ids, dup)}). "
            "Each customer must appear once: aggregate with rfm_summary."
        )
    x = _numeric_column(df, frequency, ids, "the customer summary")
    m = _numeric_column(df, monetary_value, ids, "the customer summary")
    if (x < 0).any() or (x != np.round(x)).any():
        bad = (x < 0) | (x != np.round(x))
        raise DataValidationError(
            f"Column {frequency!r} has {bad.sum()} negative or non-integer values ({_ids_where(ids, bad)}). "
            "Frequency counts repeat purchase occasions; recompute it with rfm_summary."
        )
    keep = x > 0
    if require_repeat_buyers and not keep.any():
        raise DataValidationError(
            "No customer has a repeat purchase (frequency > 0): Gamma-Gamma needs repeat buyers' spend."
        )
    nonpos = keep & (m <= 0)
    if nonpos.any():
        raise DataValidationError(
            f"Column {monetary_value!r} has {nonpos.sum()} zero or negative mean spends among repeat "
            f"buyers ({_ids_where(ids, nonpos)}). Gamma-Gamma models positive spend: drop those "
            "customers, or drop/net refunds when building the summary."
        )
    return x, np.where(keep, m, 0.0), keep
