"""Reading a transaction log from a CSV or Parquet file, with errors that name the line.

:func:`clvbayes.data.validate.validate_transactions` checks a frame and names the customers
at fault; a file on disk is better described by where the problem is: the line of the CSV
(the header is line 1) or the row of the Parquet file, and the column. This module reads the
file, checks the three columns the models need, and returns a frame with the canonical
names ``customer_id``, ``date`` and ``amount``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clvbayes.data.validate import DataValidationError

__all__ = ["read_transactions"]

_N_SHOWN = 5


def _where(labels: np.ndarray, values: np.ndarray, kind: str) -> str:
    """``line 7 ('1997-13-01'), line 9 ('')``: the first offending lines/rows and their values."""
    shown = [
        f"{kind} {int(label)} ({'' if pd.isna(value) else str(value)!r})"
        for label, value in zip(labels[:_N_SHOWN], values[:_N_SHOWN], strict=True)
    ]
    more = f", ... ({len(labels) - _N_SHOWN} more)" if len(labels) > _N_SHOWN else ""
    return ", ".join(shown) + more


def _read_raw(path: Path) -> tuple[pd.DataFrame, str]:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path), "row"
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise DataValidationError(f"{path} could not be read as Parquet: {err}") from err
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path} is empty (0 bytes): expected a header line and one line per purchase.")
    try:
        # strings throughout, so that a bad value can be quoted exactly as it is in the file;
        # blank lines kept (as all-missing rows) so that row i is line i + 2
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], skip_blank_lines=False)
    except pd.errors.EmptyDataError as err:
        raise DataValidationError(f"{path} is empty: expected a header line and one line per purchase.") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataValidationError(f"{path} is not a readable CSV file: {err}") from err
    return raw, "line"


def read_transactions(
    path: str | Path,
    *,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str | None = "amount",
    date_format: str | None = None,
) -> pd.DataFrame:
    """Read a purchase log (one row per purchase) from a CSV or Parquet file.

    Parameters
    ----------
    path
        A ``.csv`` file (any other suffix is read as CSV) or a ``.parquet``/``.pq`` file.
    customer_col, date_col, amount_col
        Column names in the file. ``amount_col=None``: the log has no spend column.
    date_format
        A :func:`pandas.to_datetime` format such as ``"%Y%m%d"``; default: inferred from the
        values (ISO dates ``1997-01-01`` always work).

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (as read: integer if every id is an integer, otherwise
        string), ``date`` (datetime64) and, with ``amount_col``, ``amount`` (float64), in file
        order. Blank lines are skipped.

    Raises
    ------
    DataValidationError
        If the file is missing, empty or unreadable, a column is missing (the message lists
        the columns present), or a value is missing, not a date, not a number, infinite or
        negative; the message names the column and the first lines (CSV, header = line 1)
        or rows (Parquet, first row = 1) at fault, with their values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path} does not exist or is not a file.")
    raw, kind = _read_raw(path)
    wanted = {"customer": customer_col, "date": date_col}
    if amount_col is not None:
        wanted["amount"] = amount_col
    missing = [f"{col!r} (the {role} column)" for role, col in wanted.items() if col not in raw.columns]
    if missing:
        raise DataValidationError(
            f"{path} has no column {', '.join(missing)}. Columns present: {list(raw.columns)}. "
            "Pass the right names with --customer-col, --date-col and --amount-col"
            + (" (--amount-col none for a log without amounts)." if "amount" in wanted and amount_col not in raw.columns
               else ".")
        )
    if kind == "line":
        blank = raw.isna().all(axis=1).to_numpy()
        offset = 2
    else:
        blank = np.zeros(len(raw), dtype=bool)
        offset = 1
    positions = np.arange(len(raw)) + offset
    raw = raw.loc[~blank]
    positions = positions[~blank]
    if raw.empty:
        raise DataValidationError(f"{path} has a header but no purchases: there is nothing to fit.")

    def fail(col: str, bad: np.ndarray, what: str, fix: str) -> None:
        if bad.any():
            shown = _where(positions[bad], raw[col].to_numpy()[bad], kind)
            raise DataValidationError(f"Column {col!r} has {int(bad.sum())} {what} at {shown}. {fix}")

    ids = raw[customer_col]
    fail(customer_col, ids.isna().to_numpy(), "missing customer ids", "Every purchase needs the customer who made it.")

    dates_raw = raw[date_col]
    fail(date_col, dates_raw.isna().to_numpy(), "missing dates", "Every purchase needs a date.")
    if pd.api.types.is_datetime64_any_dtype(dates_raw):
        dates = dates_raw
    else:
        kwargs = {"format": date_format} if date_format else {}
        dates = pd.to_datetime(dates_raw.astype(str), errors="coerce", **kwargs)
        hint = (
            f"Fix those values, or pass --date-format (now {date_format!r})."
            if date_format
            else "Fix those values, or pass --date-format (e.g. '%Y-%m-%d' or '%Y%m%d') if the dates are "
            "valid but in another format than the first rows."
        )
        fail(date_col, dates.isna().to_numpy(), "values that are not dates", hint)

    out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    id_values = ids.to_numpy()
    as_int = pd.to_numeric(ids, errors="coerce")
    if as_int.notna().all() and (as_int % 1 == 0).all():
        out["customer_id"] = as_int.to_numpy().astype(np.int64)
    else:
        out["customer_id"] = id_values.astype(str)
    out["date"] = pd.DatetimeIndex(dates.to_numpy()).as_unit("ns")

    if amount_col is not None:
        amount_raw = raw[amount_col]
        fail(amount_col, amount_raw.isna().to_numpy(), "missing amounts", "Every purchase needs its amount.")
        amounts = pd.to_numeric(amount_raw, errors="coerce").to_numpy(dtype=np.float64)
        fail(amount_col, np.isnan(amounts), "values that are not numbers",
             "Amounts must be plain numbers (no currency signs or thousands separators).")
        fail(amount_col, np.isinf(amounts), "infinite amounts", "Amounts must be finite.")
        fail(amount_col, amounts < 0, "negative amounts (refunds?)",
             "Remove refunds from the log or net them against the purchase they refund before fitting.")
        out["amount"] = amounts
    return out
