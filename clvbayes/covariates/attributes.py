"""Join customer attributes (a second table, one row per customer) to an RFM summary.

Customer ids are matched byte for byte, as everywhere in clvbayes (``"007"`` and ``"7"`` are
two customers). Every mismatch is an error that lists the customers and says what to do:
an id of the summary without attributes (a model cannot fit a customer with unknown
covariates), an id given twice in the attributes, and, unless ``extra="ignore"``, attributes
of customers the summary does not have (often a sign of a wrong file or id format; customers
acquired after the calibration period are a legitimate reason, hence the option).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from clvbayes.data.validate import DataValidationError, _check_frame, _examples

__all__ = ["join_attributes"]


def _id_kind(ids: pd.Series) -> str:
    return "numbers" if pd.api.types.is_numeric_dtype(ids.dtype) else "text"


def join_attributes(
    summary: pd.DataFrame,
    attributes: pd.DataFrame,
    *,
    customer_id: str = "customer_id",
    columns: Sequence[str] | None = None,
    extra: str = "error",
) -> pd.DataFrame:
    """The summary with the attribute columns added, row for row (order kept).

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per customer with a ``customer_id`` column (e.g. :func:`clvbayes.rfm_summary`
        or :func:`clvbayes.calibration_holdout_split` output).
    attributes : pandas.DataFrame
        One row per customer: ``customer_id`` and attribute columns.
    customer_id : str, default "customer_id"
        The id column, in both tables.
    columns : sequence of str, optional
        Attribute columns to add (default: every column of ``attributes`` but the id).
    extra : {"error", "ignore"}, default "error"
        What to do with attribute rows whose customer is not in the summary.

    Returns
    -------
    pandas.DataFrame
        A new frame; the inputs are not modified.

    Raises
    ------
    DataValidationError
        For a missing id column, ids missing on either side, duplicate ids, or an attribute
        column whose name the summary already uses.
    """
    if extra not in ("error", "ignore"):
        raise ValueError(f"extra must be 'error' or 'ignore', got {extra!r}.")
    summary = _check_frame(summary, "The customer summary")
    attributes = _check_frame(attributes, "The customer attributes")
    for what, df in (("customer summary", summary), ("customer attributes", attributes)):
        if customer_id not in df.columns:
            raise DataValidationError(
                f"The {what} has no id column {customer_id!r} (columns: {list(df.columns)}). Name it with "
                "customer_id= (--customer-id in the CLI)."
            )
    cols = [c for c in attributes.columns if c != customer_id] if columns is None else list(columns)
    missing = [c for c in cols if c not in attributes.columns]
    if missing:
        raise DataValidationError(
            f"The customer attributes have no column {', '.join(map(repr, missing))} (columns: "
            f"{list(attributes.columns)})."
        )
    clash = [c for c in cols if c in summary.columns]
    if clash:
        raise DataValidationError(
            f"Attribute columns {_examples(clash)} already exist in the customer summary: rename them in the "
            "attributes file."
        )
    a_ids = attributes[customer_id]
    dup = a_ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataValidationError(
            f"The customer attributes list {int(a_ids[dup].nunique())} customers more than once "
            f"({_examples(a_ids[dup].to_numpy())}): keep one row per customer (static attributes)."
        )
    s_ids = summary[customer_id]
    found = s_ids.isin(a_ids).to_numpy()
    if not found.all():
        hint = ""
        if _id_kind(s_ids) != _id_kind(a_ids):
            hint = (f" The summary's ids are {_id_kind(s_ids)} and the attributes' ids {_id_kind(a_ids)}: read both "
                    "id columns as text (e.g. pd.read_csv(..., dtype={'customer_id': str})) so that leading zeros "
                    "survive.")
        raise DataValidationError(
            f"{int((~found).sum())} of {len(found)} customers of the summary have no attributes "
            f"({_examples(s_ids.to_numpy()[~found])}).{hint} Add their rows to the attributes file, or drop those "
            "customers from the summary first."
        )
    unused = ~a_ids.isin(s_ids).to_numpy()
    if unused.any() and extra == "error":
        raise DataValidationError(
            f"{int(unused.sum())} customers of the attributes are not in the summary "
            f"({_examples(a_ids.to_numpy()[unused])}). If they are expected (e.g. acquired after the calibration "
            "period), pass extra='ignore' (--extra-attributes ignore); otherwise check the file and the id format."
        )
    pos = pd.Index(a_ids).get_indexer(s_ids)
    out = summary.copy()
    for c in cols:
        out[c] = attributes[c].iloc[pos].set_axis(out.index)  # keeps the dtype (e.g. category)
    return out

