"""Validation at the boundary: transaction logs and customer summaries.

Everything the models and kernels receive passes through here once. Each check raises
:class:`DataValidationError` with a message that names the column, how many rows or
customers are affected, a few of them, and what to do about it. Inputs are never
modified: the functions read from the caller's frame and return new arrays or frames.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "AmbiguousDateWarning",
    "DATE_UNITS",
    "DataValidationError",
    "parse_end_date",
    "validate_transactions",
    "validate_rfm",
    "validate_monetary",
    "require_history",
    "zero_spend_repeat_buyers",
]

_N_SHOWN = 5  # offending ids listed in an error message


class DataValidationError(ValueError):
    """Raised when input data cannot be used as given; the message says how to fix it."""


class AmbiguousDateWarning(UserWarning):
    """Every date of a column reads both as month/day and as day/month (e.g. ``03/04/2024``).

    The message says which reading was used (month first, pandas' default) and how to ask
    for the other one (``date_format="%d/%m/%Y"``, ``--date-format`` in the CLI).
    """


#: Units a numeric date column may be given in (``date_unit=``): time since 1970-01-01.
DATE_UNITS = ("D", "h", "m", "s", "ms", "us", "ns")

# -- dates ---------------------------------------------------------------------------------
# One convention for every timestamp, in the data and in observation_end/calibration_end:
# the calendar day (and time) as written, in the timestamp's own offset. A purchase at
# 23:30+02:00 on 5 March belongs to 5 March, although it is 21:30 UTC.
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_ISO = re.compile(
    r"\s*\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}([.,]\d+)?)?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?\s*"
)
_DAY_MONTH = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}\b")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})\s*$")
_NS_RANGE = (pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D"))
_NUMBERS_FIX = (
    "If they count time since 1970-01-01, name the unit with date_unit= (--date-unit in the CLI): one of "
    f"{', '.join(DATE_UNITS)} (e.g. 's' for epoch seconds, 'D' for days); if they are dates written "
    "yyyymmdd, pass date_format='%Y%m%d' (--date-format)."
)
_FORMAT_FIX = (
    "Fix those values, or pass the format with date_format= (--date-format in the CLI), e.g. "
    "'%Y-%m-%d', '%d/%m/%Y' or '%Y%m%d'."
)


class BadDates(Exception):
    """Raised by :func:`parse_dates`; the caller names the rows (CSV lines or customers)."""

    def __init__(self, mask: np.ndarray, what: str, fix: str) -> None:
        super().__init__(what)
        self.mask, self.what, self.fix = np.asarray(mask, dtype=bool), what, fix


def _naive(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Drop the offset keeping the wall time as written (the package's convention)."""
    return index.tz_localize(None) if index.tz is not None else index


def _mixed_offsets(text: pd.Series) -> BadDates:
    offsets = text.str.extract(_OFFSET, expand=False).fillna("no offset").str.replace(":", "", regex=False)
    usual = offsets.mode().iloc[0]
    return BadDates(
        (offsets != usual).to_numpy(),
        f"dates with another UTC offset than the rest (most have {usual!r})",
        "One column must use one offset (or none): clvbayes counts the calendar day as written, so convert "
        "the timestamps to the local time of the shop and drop the offset, or write them all in one offset.",
    )


def _from_numbers(numbers: pd.Series, date_unit: str) -> pd.DatetimeIndex:
    values = pd.to_numeric(numbers, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    limit = (_NS_RANGE[1] - pd.Timestamp(0)) / pd.Timedelta(1, unit=date_unit)
    out = np.abs(values) > limit
    if out.any():
        raise BadDates(out, f"numbers outside the range pandas can hold as dates (|value| > {limit:.4g} {date_unit})",
                       f"Check date_unit={date_unit!r}: it is the unit of time since 1970-01-01.")
    return pd.DatetimeIndex(pd.to_datetime(values, unit=date_unit, errors="coerce"))


def parse_dates(
    values: pd.Series, *, date_format: str | None = None, date_unit: str | None = None
) -> pd.DatetimeIndex:
    """Dates of a log as a naive ``datetime64[ns]`` index (missing values stay NaT).

    - ``datetime64`` columns are kept; time-zone-aware ones keep the wall time as written
      (the calendar day in the data's own offset, *not* converted to UTC).
    - Numbers (a numeric column or strings that are all numbers) are refused unless
      ``date_unit`` names their unit (time since 1970-01-01, e.g. ``"s"``, ``"ms"``,
      ``"D"``) or, for strings, ``date_format`` reads them (e.g. ``"%Y%m%d"``).
    - Strings: with ``date_format`` that format; ISO 8601 dates and date-times (mixed
      freely, with one UTC offset or none); otherwise one format, inferred by pandas from
      the first value, reading day first when some first part exceeds 12. When every value
      reads both ways (``03/04/2024``) an :class:`AmbiguousDateWarning` says month first
      was used.

    Raises
    ------
    BadDates
        With the rows at fault: not dates, numbers without a unit, booleans, mixed UTC
        offsets, or dates outside pandas' nanosecond range (1677-09-22 to 2262-04-11).
    """
    present = ~pd.isna(values.to_numpy())
    if date_unit is not None and date_unit not in DATE_UNITS:
        raise ValueError(f"date_unit must be one of {', '.join(DATE_UNITS)}, got {date_unit!r}.")
    kind = pd.api.types.infer_dtype(values, skipna=True)
    numeric = pd.api.types.is_numeric_dtype(values.dtype) or kind in ("integer", "floating", "mixed-integer-float")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = pd.DatetimeIndex(values)
    elif kind == "boolean":
        raise BadDates(present, "true/false values, not dates", "Pass the column with the purchase dates.")
    elif numeric and (date_unit is not None or date_format is None):
        if date_unit is None:
            raise BadDates(present, "numbers, not dates", _NUMBERS_FIX)
        parsed = _from_numbers(values, date_unit)
    elif kind in ("datetime", "datetime64", "date"):
        try:
            parsed = pd.DatetimeIndex(pd.to_datetime(values, errors="coerce"))
        except ValueError as err:  # timestamps with different time zones
            if "zone" not in str(err):
                raise
            raise _mixed_offsets(values.astype(str)) from None
    else:
        if numeric:  # with date_format, e.g. %Y%m%d
            values = pd.Series(pd.array(values, dtype="Int64"), index=values.index)  # 20240131.0 -> '20240131'
        text = values.astype(object).where(present, "").astype(str)
        numeric_text = text[present].str.fullmatch(_NUMBER).all()
        if date_unit is not None:
            if not numeric_text:
                raise BadDates(present & ~text.str.fullmatch(_NUMBER).to_numpy(),
                               f"values that are not numbers although date_unit={date_unit!r} was given",
                               "date_unit is for numeric dates (time since 1970-01-01); leave it out for written dates.")
            parsed = _from_numbers(text.where(present, None), date_unit)
        elif numeric_text and date_format is None:
            raise BadDates(present, "numbers, not dates", _NUMBERS_FIX)
        else:
            parsed = _parse_text(text.where(present, None), present, date_format)
    parsed = _naive(parsed)
    out = present & ~np.asarray(parsed.isna()) & np.asarray((parsed < _NS_RANGE[0]) | (parsed > _NS_RANGE[1]))
    if out.any():
        raise BadDates(out, f"dates outside the range pandas can hold ({_NS_RANGE[0].date()} to {_NS_RANGE[1].date()})",
                       "A placeholder such as 9999-12-31 or 0001-01-01? Remove or fix those rows.")
    parsed = parsed.as_unit("ns")
    not_dates = present & np.asarray(parsed.isna())
    if not_dates.any():
        raise BadDates(not_dates, "values that are not dates", _FORMAT_FIX)
    return parsed


def _parse_text(text: pd.Series, present: np.ndarray, date_format: str | None) -> pd.DatetimeIndex:
    given = text[present]
    kwargs: dict = {}
    if date_format is not None:
        kwargs["format"] = date_format
    elif given.str.fullmatch(_ISO).all():
        kwargs["format"] = "ISO8601"  # dates and date-times mixed, as ISO allows
    else:
        parts = given.str.extract(_DAY_MONTH)
        if parts.notna().all().all():
            first, second = parts[0].astype(int), parts[1].astype(int)
            if (first > 12).any():
                kwargs["dayfirst"] = True
            elif not (second > 12).any():
                example = given.iloc[0].strip()
                warnings.warn(
                    f"Every date reads both as month/day and as day/month (e.g. {example!r}); they were read "
                    f"month first ({example!r} = {pd.to_datetime(example).date()}). If the day comes first, "
                    "pass date_format='%d/%m/%Y' (--date-format in the CLI).",
                    AmbiguousDateWarning, stacklevel=4,
                )
    try:
        with warnings.catch_warnings():
            # pandas warns when it falls back to parsing element by element; that is intended here
            warnings.filterwarnings("ignore", message="Could not infer format", category=UserWarning)
            warnings.filterwarnings("ignore", message="Parsing dates in", category=UserWarning)
            parsed = pd.DatetimeIndex(pd.to_datetime(text, errors="coerce", **kwargs))
    except ValueError as err:  # one column with several UTC offsets, or some with and some without
        if "zone" not in str(err) and "offset" not in str(err):
            raise
        raise _mixed_offsets(text.where(present, "")) from None
    return parsed


def parse_end_date(value: str | pd.Timestamp, name: str) -> pd.Timestamp:
    """``observation_end``/``calibration_end`` as a naive Timestamp, by the convention of the data.

    A time-zone-aware value keeps its wall time as written (``"2024-03-31T00:00+09:00"`` is
    31 March), the same convention as the dates of the log, so both compare directly.

    Raises
    ------
    ValueError
        Naming ``name`` if the value is not a date or outside pandas' range.
    """
    try:
        end = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(f"{name}={value!r} is not a date; write it as YYYY-MM-DD, e.g. '2024-03-31'.") from err
    if pd.isna(end):
        raise ValueError(f"{name} is missing (NaT); give a date such as '2024-03-31' or None.")
    if end.tzinfo is not None:
        end = end.tz_localize(None)
    if not _NS_RANGE[0] <= end <= _NS_RANGE[1]:
        raise ValueError(f"{name}={value!r} is outside the range pandas can hold ({_NS_RANGE[0].date()} to "
                         f"{_NS_RANGE[1].date()}).")
    return end.as_unit("ns")


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


def _check_id_types(ids: pd.Series, col: str) -> None:
    """Refuse an object column that mixes strings and numbers: 7 and "7" would be two customers."""
    if ids.dtype != object or pd.api.types.infer_dtype(ids, skipna=True) not in ("mixed", "mixed-integer"):
        return
    values = ids.to_numpy()
    is_str = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    if is_str.all() or not is_str.any():
        return
    raise DataValidationError(
        f"Column {col!r} mixes customer ids of different types: text such as {_examples(values[is_str])} and "
        f"{'/'.join(sorted({type(v).__name__ for v in values[~is_str]}))} values such as "
        f"{_examples(values[~is_str])}. 7 and '7' would count as two customers. Convert the column to one type "
        f"first, e.g. df[{col!r}] = df[{col!r}].astype(str)."
    )


def _date_error(col: str, values: np.ndarray, ids: np.ndarray, bad: BadDates) -> DataValidationError:
    return DataValidationError(
        f"Column {col!r} has {int(bad.mask.sum())} {bad.what} (e.g. {_examples(values[bad.mask])} for customers "
        f"{_ids_where(ids, bad.mask)}). {bad.fix}"
    )


def _is_boolean(values: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.infer_dtype(values, skipna=True) == "boolean"


def validate_transactions(
    transactions: pd.DataFrame,
    *,
    customer_id: str,
    date: str,
    amount: str | None,
    observation_end: str | pd.Timestamp | None = None,
    refunds: str = "raise",
    date_unit: str | None = None,
) -> pd.DataFrame:
    """Check a transaction log and return a clean copy with standard columns.

    Parameters
    ----------
    transactions
        One row per purchase (several rows per customer and day are allowed).
    customer_id, date, amount
        Column names. ``amount=None`` means the log has no monetary column. Customer ids
        are kept as they are; an object column mixing text and numbers (``7`` and
        ``"7"``) is an error.
    observation_end
        Transactions dated after it are an error (they would give negative ages).
    refunds
        What to do with negative amounts: ``"raise"`` (default), ``"drop"`` (ignore those
        rows) or ``"net"`` (subtract them from the customer's purchases; see
        :func:`clvbayes.rfm_summary`).
    date_unit
        Unit of a numeric date column, as time since 1970-01-01: one of
        :data:`DATE_UNITS` (``"s"`` epoch seconds, ``"ms"``, ``"D"`` days, ...). Numeric
        dates without it are an error.

    Returns
    -------
    pandas.DataFrame
        New frame with columns ``customer_id``, ``date`` (naive datetime64[ns]) and, if
        given, ``amount`` (float64). The caller's frame is not modified.

    Notes
    -----
    Time zones: a purchase belongs to the calendar day written in the data's own offset
    (``2024-03-05T23:30+02:00`` is 5 March, not 4 March UTC); the offset is dropped, not
    converted. A tz-aware ``observation_end`` is read the same way. One column must use
    one offset (several are an error naming the customers); a column with one named time
    zone (changing offset with daylight saving time) is fine. Strings: ISO dates and
    date-times may be mixed; other formats are inferred from the first value, with an
    :class:`AmbiguousDateWarning` when every date reads both as day/month and month/day.
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
    _check_id_types(df[customer_id], customer_id)

    raw_dates = df[date]
    try:
        dates = parse_dates(raw_dates, date_unit=date_unit)
    except BadDates as bad:
        raise _date_error(date, raw_dates.to_numpy(), ids, bad) from None
    missing = np.asarray(dates.isna())
    if missing.any():
        raise DataValidationError(
            f"Column {date!r} has {missing.sum()} missing dates (NaT) for customers "
            f"{_ids_where(ids, missing)}. Drop or fill those rows."
        )
    out["date"] = dates

    if observation_end is not None:
        end = parse_end_date(observation_end, "observation_end")
        # purchases are merged by calendar day, so compare days (a purchase at 14:00 on
        # the end date belongs to the period)
        late = np.asarray(dates.normalize() > end)
        if late.any():
            raise DataValidationError(
                f"Column {date!r} has {late.sum()} transactions after observation_end="
                f"{end.date()} (customers {_ids_where(ids, late)}). Filter them out, "
                "move observation_end, or use calibration_holdout_split to keep them as a holdout."
            )

    if amount is not None:
        raw = df[amount]
        if _is_boolean(raw):
            raise DataValidationError(
                f"Column {amount!r} holds true/false values, not amounts. Pass the column with the amount spent "
                "per purchase (amount=...), or amount=None if the log has none."
            )
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
    ``0 <= recency <= T``, recency 0 when frequency is 0, ``T >= 0``, unique customer ids.

    ``T = 0`` (a customer first seen on the last day of observation, so ``x = t_x = 0``) is
    valid: ln L = 0, P(alive) = 1 and the predictions are the unconditional ones.
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
        # T = 0 (first purchase on the last day of observation) is valid: such a customer
        # adds nothing to the likelihood but belongs to the base (P(alive) = 1)
        (t < 0, T, "negative ages T", "T is the time from the first purchase to the end of observation: "
         "a negative T means a purchase after observation_end; recompute the summary with rfm_summary."),
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


def require_history(T: np.ndarray, what: str = "BG/NBD") -> None:
    """Refuse to fit when every customer has age ``T = 0``.

    Customers first seen on the last day of observation are valid (they add 0 to the
    log-likelihood), but a summary made only of them holds no time at all: nothing about
    purchase rates or dropout can be learnt, and the default prior scale (the mean T) is 0.
    """
    if T.shape[0] and not (T > 0).any():
        raise DataValidationError(
            f"Column 'T' is 0 for all {T.shape[0]:,} customers: everyone was first seen on the last day of "
            f"observation, so the log holds no purchase history to fit {what} to. Use a log that spans more "
            "than one day (or a later observation_end / calibration_end)."
        )


def validate_monetary(
    rfm: pd.DataFrame,
    *,
    frequency: str = "frequency",
    monetary_value: str = "monetary_value",
    require_repeat_buyers: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check a summary for Gamma-Gamma and return ``(x, m, repeat)`` for all customers.

    Customers with frequency 0 carry no spend information: ``repeat`` is the boolean mask
    of repeat buyers (the ones a fit uses) and ``m`` is 0 for the others. A negative mean
    spend is an error. With ``require_repeat_buyers`` (for fitting) a summary without any
    repeat buyer is an error, and so is a repeat buyer with a mean spend of 0 (all repeat
    purchases of amount 0: outside the support of the Gamma distribution; the message names
    them and says how to leave them out). For predictions (``require_repeat_buyers=False``)
    a mean spend of 0 is allowed: the Gamma-Gamma conditional mean
    ``(p γ + p x m̄) / (p x + q - 1)`` (FHL 2005 eq. (5)) is continuous at ``m̄ -> 0+``.
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
            f"Column {frequency!r} is 0 for all {x.shape[0]:,} customers: no one made a repeat purchase, and "
            "Gamma-Gamma learns spend per purchase from the repeat purchases only. Use a longer history, or "
            "value customers without money figures (purchases and P(alive) need only BG/NBD)."
        )
    neg = keep & (m < 0)
    if neg.any():
        raise DataValidationError(
            f"Column {monetary_value!r} has {neg.sum()} negative mean spends among repeat buyers "
            f"({_ids_where(ids, neg)}). Gamma-Gamma models positive spend: drop or net the refunds when "
            "building the summary (rfm_summary(..., refunds='drop' or 'net'))."
        )
    zero = keep & (m == 0)
    if zero.any() and require_repeat_buyers:
        raise DataValidationError(
            f"Column {monetary_value!r} is 0 for {zero.sum()} repeat buyers ({_ids_where(ids, zero)}): all "
            "their repeat purchases have amount 0 (free orders, vouchers, samples?). Gamma-Gamma models "
            "positive spend per purchase, so these customers cannot inform the spend model: fit it without "
            "them (e.g. GammaGammaModel(summary[~((summary.frequency > 0) & (summary.monetary_value == 0))])) "
            "and keep them for BG/NBD, as clvbayes fit does, or fix the amounts."
        )
    return x, np.where(keep, m, 0.0), keep


def zero_spend_repeat_buyers(rfm: pd.DataFrame, *, frequency: str = "frequency",
                             monetary_value: str = "monetary_value") -> np.ndarray:
    """Boolean mask of the repeat buyers whose repeat purchases all have amount 0 (a mean spend
    of exactly 0): valid purchasers for BG/NBD, but outside the support of Gamma-Gamma."""
    return ((rfm[frequency].to_numpy() > 0) & (rfm[monetary_value].to_numpy() == 0)).astype(bool)
