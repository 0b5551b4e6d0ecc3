"""Reading a transaction log from a CSV or Parquet file, with errors that name the line.

:func:`clvbayes.data.validate.validate_transactions` checks a frame and names the customers
at fault; a file on disk is better described by where the problem is: the line of the CSV
(the header is line 1) or the row of the Parquet file, and the column. This module reads the
file, checks the three columns the models need, and returns a frame with the canonical
names ``customer_id``, ``date`` and ``amount``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from clvbayes.data.validate import BadDates, DataValidationError, parse_dates

__all__ = ["read_transactions", "read_attributes"]

_N_SHOWN = 5


def _where(labels: np.ndarray, values: np.ndarray, kind: str) -> str:
    """``line 7 ('1997-13-01'), line 9 ('')``: the first offending lines/rows and their values."""
    shown = [
        f"{kind} {int(label)} ({'' if pd.isna(value) else str(value)!r})"
        for label, value in zip(labels[:_N_SHOWN], values[:_N_SHOWN], strict=True)
    ]
    more = f", ... ({len(labels) - _N_SHOWN} more)" if len(labels) > _N_SHOWN else ""
    return ", ".join(shown) + more


_PARQUET_MAGIC = b"PAR1"
_PARQUET_SUFFIXES = (".parquet", ".pq")


def _header_duplicates(path: Path) -> list[str]:
    """Names that occur more than once in the CSV header line (pandas would rename them ``x.1``)."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        header = next(csv.reader(f), [])
    names = [name for name in header if name != ""]  # empty names: trailing commas, ignored
    return sorted({name for name in names if names.count(name) > 1})


def _read_raw(path: Path) -> tuple[pd.DataFrame, str]:
    """The file as a frame, and what its rows are called in messages ("line" or "row")."""
    with path.open("rb") as f:
        is_parquet = f.read(4) == _PARQUET_MAGIC  # the format by content, whatever the suffix
    if is_parquet:
        try:
            return pd.read_parquet(path), "row"
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise DataValidationError(f"{path} could not be read as Parquet: {err}") from err
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path} is empty (0 bytes): expected a header line and one line per purchase.")
    not_parquet = (
        f" (its name ends in {path.suffix} but it is not a Parquet file: those start with 'PAR1')"
        if path.suffix.lower() in _PARQUET_SUFFIXES else ""
    )
    try:
        dup = _header_duplicates(path)
        # strings throughout, so that a bad value can be quoted exactly as it is in the file
        # (and ids stay as written: '007' is not 7); blank lines kept (as all-missing rows)
        # so that row i is line i + 2; index_col=False: a comma at the end of every line is
        # an empty last field, not a shift of the columns
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], skip_blank_lines=False,
                          index_col=False)
    except pd.errors.EmptyDataError as err:
        raise DataValidationError(f"{path} is empty: expected a header line and one line per purchase.") from err
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as err:
        raise DataValidationError(f"{path} is not a readable CSV file{not_parquet}: {err}") from err
    if dup:
        raise DataValidationError(
            f"{path} has the column name{'s' if len(dup) > 1 else ''} {', '.join(map(repr, dup))} more than once "
            "in its header line: rename the duplicates so that each column is unambiguous."
        )
    return raw, "line"


def read_transactions(
    path: str | Path,
    *,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str | None = "amount",
    date_format: str | None = None,
    date_unit: str | None = None,
    refunds: str = "raise",
) -> pd.DataFrame:
    """Read a purchase log (one row per purchase) from a CSV or Parquet file.

    Parameters
    ----------
    path
        A CSV file (header line required) or a Parquet file. The format is recognised by
        content (Parquet files start with ``PAR1``), not by the suffix.
    customer_col, date_col, amount_col
        Column names in the file. ``amount_col=None``: the log has no spend column.
    date_format
        A :func:`pandas.to_datetime` format such as ``"%Y%m%d"`` or ``"%d/%m/%Y"``;
        default: ISO 8601 dates and date-times (mixed freely), otherwise one format
        inferred from the first value.
    date_unit
        Unit of numeric dates as time since 1970-01-01 (``"s"`` epoch seconds, ``"ms"``,
        ``"D"`` days, ...: :data:`clvbayes.data.validate.DATE_UNITS`). Numeric dates are
        refused without it (or, for text such as ``20240131``, without ``date_format``).
    refunds
        ``"raise"`` (default): negative amounts are an error; ``"drop"`` or ``"net"``: they
        are kept for :func:`clvbayes.rfm_summary` to drop or net.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (exactly as written: text for CSV, so ``007`` and ``7``
        are two customers and 20-digit ids stay intact; the column's own dtype for
        Parquet), ``date`` (naive datetime64[ns]: time-zone-aware values keep the wall
        time and calendar day as written, not converted to UTC) and, with
        ``amount_col``, ``amount`` (float64), in file order. Blank lines are skipped; an
        empty column from commas at the end of the lines is ignored.

    Warns
    -----
    AmbiguousDateWarning
        When every date reads both as month/day and day/month (``03/04/2024``); month
        first is used.

    Raises
    ------
    DataValidationError
        If the file is missing, empty or unreadable, a column name is repeated in the
        header, a column is missing (the message lists the columns present), or a value
        is missing, not a date (numbers without ``date_unit``, several UTC offsets in the
        column, outside 1677-09-22..2262-04-11), not a number (or true/false), infinite or
        negative; the message names the column and the first lines (CSV, header = line 1)
        or rows (Parquet, first row = 1) at fault, with their values.
    """
    if refunds not in ("raise", "drop", "net"):
        raise ValueError(f"refunds must be 'raise', 'drop' or 'net', got {refunds!r}.")
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
    try:
        dates = parse_dates(dates_raw, date_format=date_format, date_unit=date_unit)
    except BadDates as bad:
        fail(date_col, bad.mask, bad.what, bad.fix)

    out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    out["customer_id"] = ids.to_numpy()  # as written: never turned into numbers
    out["date"] = dates

    if amount_col is not None:
        amount_raw = raw[amount_col]
        fail(amount_col, amount_raw.isna().to_numpy(), "missing amounts", "Every purchase needs its amount.")
        if pd.api.types.is_bool_dtype(amount_raw.dtype):
            is_bool = np.ones(len(raw), dtype=bool)
        else:
            is_bool = amount_raw.astype(str).str.strip().str.lower().isin(["true", "false"]).to_numpy()
        fail(amount_col, is_bool, "true/false values, not amounts",
             "Pass the column with the amount spent per purchase (--amount-col).")
        amounts = pd.to_numeric(amount_raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        fail(amount_col, np.isnan(amounts), "values that are not numbers",
             "Amounts must be plain numbers (no currency signs or thousands separators).")
        fail(amount_col, np.isinf(amounts), "infinite amounts", "Amounts must be finite.")
        if refunds == "raise":
            fail(amount_col, amounts < 0, "negative amounts (refunds?)",
                 "Remove refunds from the log, net them against the purchase they refund, or pass "
                 "--refunds drop (ignore them) or --refunds net (subtract them from the customer's purchases).")
        out["amount"] = amounts
    return out


def read_attributes(path: str | Path, *, customer_col: str = "customer_id") -> pd.DataFrame:
    """Read a table of customer attributes (one row per customer) from CSV or Parquet.

    The ids are read as in :func:`read_transactions` (text exactly as written for CSV, so
    they match the log's ``"007"``); every other column is numeric when all its values are
    numbers, else text (a categorical covariate). Join it to a summary with
    :func:`clvbayes.covariates.join_attributes`, which refuses ids missing on either side.

    Parameters
    ----------
    path
        CSV (header line) or Parquet file.
    customer_col
        The id column; renamed ``customer_id``.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` and the attribute columns, in file order (blank lines skipped).

    Raises
    ------
    DataValidationError
        If the file is missing, empty or unreadable, has no id column, a repeated column
        name, missing ids, or no attribute column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path} does not exist or is not a file.")
    raw, kind = _read_raw(path)
    if customer_col not in raw.columns:
        raise DataValidationError(
            f"{path} has no column {customer_col!r} (the customer id column). Columns present: {list(raw.columns)}. "
            "Pass the right name with --customer-col."
        )
    raw = raw.loc[~raw.isna().all(axis=1)]
    if len(raw) == 0:
        raise DataValidationError(f"{path} has a header but no customer rows.")
    ids = raw[customer_col]
    if ids.isna().any():
        where = np.flatnonzero(ids.isna().to_numpy())
        raise DataValidationError(
            f"{path}: column {customer_col!r} is empty on {where.size} {kind}s (e.g. {kind} "
            f"{int(raw.index[where[0]]) + (2 if kind == 'line' else 1)}): every row needs a customer id."
        )
    out = raw.rename(columns={customer_col: "customer_id"}).reset_index(drop=True)
    if out.shape[1] < 2:
        raise DataValidationError(f"{path} has no attribute column besides {customer_col!r}.")
    for col in out.columns:
        if col == "customer_id" or kind != "line":
            continue
        values = out[col]
        numbers = pd.to_numeric(values, errors="coerce")
        # every given value a number, and none written like a code ("007", "01234": a zip or a
        # store number keeps its text and is a category)
        coded = values.dropna().str.strip().str.match(r"^[+-]?0\d").any()
        if numbers.notna().sum() == values.notna().sum() and not coded:
            out[col] = numbers.astype(np.float64)
    return out
