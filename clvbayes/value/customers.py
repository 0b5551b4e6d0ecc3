"""Customer inputs of the value functions: validated arrays, per-customer margins and
discount rates, segments, and the discounting convention.

**Time unit and discounting.** Model time is in the unit of the customer summary
(``rfm_summary(..., time_unit="W")``: weeks by default; recorded in ``data.attrs``). A
``discount_rate`` d is an *effective annual* rate (money one year ahead is worth 1/(1+d)
today, a year being 365.25 days); the kernels discount continuously at

    δ = ln(1 + d) · (length of one time unit in days) / 365.25     per time unit,

so a purchase s time units after the end of the observation period is weighted e^{-δ s}
= (1 + d)^{-s · unit/365.25}: exactly the annual compounding at every whole year, smooth in
between. d = 0 gives undiscounted values.

**One default.** Every discount-rate default of the package (the value functions, the
workflow's ``AnalysisSettings``, ``clvbayes fit --discount-rate``, ``BetaGeoModel.dert``) is
:data:`DEFAULT_ANNUAL_DISCOUNT_RATE`, 10% a year, converted to the data's time unit by
:func:`continuous_rate` where a rate per time unit is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from clvbayes.data.rfm import time_unit_length
from clvbayes.data.validate import DataValidationError, _examples, validate_monetary, validate_rfm
from clvbayes.value.arguments import MAX_DISCOUNT_RATE, check_discount_rate, check_margin, fraction_rule

__all__ = [
    "CustomerArrays", "customer_arrays", "subset", "new_customer", "continuous_rate", "annual_rate",
    "resolve_time_unit", "DEFAULT_ANNUAL_DISCOUNT_RATE",
]

DAYS_PER_YEAR = 365.25
#: The default effective annual discount rate of every function that discounts (10% a year).
DEFAULT_ANNUAL_DISCOUNT_RATE = 0.1


def resolve_time_unit(data: pd.DataFrame, time_unit: str | None) -> str:
    """The data's time unit: ``data.attrs["time_unit"]`` (set by rfm_summary), else the
    argument, else weeks; a conflict between the two is an error."""
    recorded = data.attrs.get("time_unit") if hasattr(data, "attrs") else None
    if time_unit is not None and recorded is not None and time_unit_length(time_unit) != time_unit_length(recorded):
        raise ValueError(
            f"time_unit={time_unit!r} but the customer summary was made with time_unit={recorded!r} "
            "(data.attrs['time_unit']); pass the summary's unit or leave time_unit=None."
        )
    unit = time_unit if time_unit is not None else recorded if recorded is not None else "W"
    time_unit_length(unit)  # validates
    return unit


def continuous_rate(discount_rate: np.ndarray, time_unit: str) -> np.ndarray:
    """δ per time unit from an effective annual rate (module docstring)."""
    days = time_unit_length(time_unit) / pd.Timedelta(days=1)
    return np.log1p(discount_rate) * (days / DAYS_PER_YEAR)


def annual_rate(delta: np.ndarray, time_unit: str) -> np.ndarray:
    """The effective annual rate of a continuous rate δ per time unit (inverse of
    :func:`continuous_rate`)."""
    days = time_unit_length(time_unit) / pd.Timedelta(days=1)
    return np.expm1(np.asarray(delta, dtype=np.float64) * (DAYS_PER_YEAR / days))


def _per_customer(value: object, index: pd.Index, name: str) -> np.ndarray:
    """``margin`` or ``discount_rate`` (both in [0, 1], :mod:`clvbayes.value.arguments`) as a
    scalar, an array in the summary's row order, or a Series aligned on customer id."""
    if isinstance(value, pd.Series):
        missing = ~index.isin(value.index)
        if missing.any():
            raise DataValidationError(
                f"{name} has no value for {int(missing.sum())} customers ({_examples(index[missing])}); "
                f"give a {name} Series indexed by every customer id of the summary."
            )
        if value.index.has_duplicates:
            raise DataValidationError(f"{name} has duplicate customer ids ({_examples(value.index[value.index.duplicated()])}).")
        arr = value.reindex(index).to_numpy(dtype=np.float64)
    else:
        if np.ndim(value) == 0:  # one number for every customer: the scalar rule and message
            check = check_margin if name == "margin" else check_discount_rate
            try:
                scalar = check(value.item() if isinstance(value, np.ndarray) else value)
            except ValueError as err:
                raise DataValidationError(str(err)) from None
            return np.full(len(index), scalar)
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(len(index), float(arr))
        elif arr.shape != (len(index),):
            raise DataValidationError(
                f"{name} must be a number, a Series indexed by customer id or an array of length "
                f"{len(index)} (one per customer, in the summary's order); got shape {arr.shape}."
            )
    upper = MAX_DISCOUNT_RATE if name == "discount_rate" else 1.0
    bad = ~(np.isfinite(arr) & (arr >= 0.0) & (arr <= upper))
    if bad.any():
        raise DataValidationError(
            f"{name} must be {fraction_rule(name)}; {int(bad.sum())} customers are not "
            f"({_examples(index[bad])}; values {arr[bad][:5].tolist()})."
        )
    return np.ascontiguousarray(arr)


def _segment_labels(data: pd.DataFrame, segment: object) -> tuple[pd.Series | None, str | None]:
    """(labels per customer, segment name) for ``segment`` (see :func:`customer_arrays`)."""
    if isinstance(segment, str) and segment == "auto":
        segment = "cohort" if "first_purchase" in data.columns else None
    if segment is None:
        return None, None
    if isinstance(segment, str) and segment == "cohort":
        if "first_purchase" not in data.columns:
            raise DataValidationError(
                "segment='cohort' needs a 'first_purchase' column (dates; rfm_summary adds it)."
            )
        first = pd.to_datetime(data["first_purchase"])
        return first.dt.to_period("M").astype(str).rename("cohort"), "cohort"
    if isinstance(segment, str):
        if segment not in data.columns:
            raise DataValidationError(
                f"segment={segment!r} is not a column of the customer summary (columns: {list(data.columns)}); "
                "pass a column name, 'cohort', a Series indexed by customer id, or None."
            )
        return data[segment], segment
    if isinstance(segment, pd.Series):
        missing = ~data.index.isin(segment.index)
        if missing.any():
            raise DataValidationError(
                f"The segment Series has no value for {int(missing.sum())} customers ({_examples(data.index[missing])})."
            )
        return segment.reindex(data.index), segment.name or "segment"
    raise TypeError("segment must be 'auto', 'cohort', a column name, a pandas Series or None.")


@dataclass(frozen=True)
class CustomerArrays:
    """Validated per-customer arrays for the value kernels."""

    index: pd.Index
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray
    margin: np.ndarray
    delta: np.ndarray
    segments: np.ndarray
    segment_labels: pd.Index
    segment_name: str | None
    time_unit: str

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def customer_arrays(
    data: pd.DataFrame,
    *,
    spend: bool,
    margin: float | np.ndarray | pd.Series = 1.0,
    discount_rate: float | np.ndarray | pd.Series = DEFAULT_ANNUAL_DISCOUNT_RATE,
    time_unit: str | None = None,
    segment: object = "auto",
    purchases: bool = True,
) -> CustomerArrays:
    """Validate a customer summary and build the kernels' arrays.

    Parameters
    ----------
    data
        Summary with ``frequency``, ``recency``, ``T`` (and ``monetary_value`` when
        ``spend``), indexed by customer id (e.g. :func:`clvbayes.rfm_summary`).
    spend
        Whether monetary values are needed (CLV, lost value, spend).
    margin
        Profit margin applied to the spend (a share of revenue in [0, 1], or 1 for
        revenue): scalar, per-customer array or Series by customer id.
    discount_rate
        Effective annual discount rate d in [0, 1] (0 to 100% a year; module docstring),
        scalar or per customer.
    time_unit
        The summary's time unit (default: ``data.attrs["time_unit"]`` or weeks).
    segment
        ``"auto"`` (acquisition month when a ``first_purchase`` column exists, else none),
        ``"cohort"`` (acquisition month), a column name, a Series by customer id, or None.
    purchases
        Whether the purchase history (``recency``, ``T``) is needed; False for spend alone
        (the Gamma-Gamma model uses ``frequency`` and ``monetary_value`` only).
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame (a customer summary), got {type(data).__name__}.")
    if len(data) == 0:
        raise DataValidationError("The customer summary is empty: there is no customer to value.")
    if spend:
        x_m, m, _ = validate_monetary(data, require_repeat_buyers=False)
    if purchases:
        x, t_x, T = validate_rfm(data)
    else:  # spend alone: the purchase kernels are not evaluated
        x, t_x, T = x_m, np.zeros_like(x_m), np.zeros_like(x_m)
    if not spend:
        m = np.zeros_like(x)
    unit = resolve_time_unit(data, time_unit)
    margin_arr = _per_customer(margin, data.index, "margin")
    d = _per_customer(discount_rate, data.index, "discount_rate")
    labels, seg_name = _segment_labels(data, segment)
    if labels is None:
        codes = np.zeros(len(data), dtype=np.int64)
        uniques = pd.Index(["all"], name="segment")
    else:
        isna = labels.isna().to_numpy()
        if isna.any():
            raise DataValidationError(
                f"Segment {seg_name!r} is missing for {int(isna.sum())} customers ({_examples(data.index[isna])}); "
                "fill it (e.g. with 'unknown') before valuing."
            )
        codes, uniques = pd.factorize(labels, sort=True)
        codes = codes.astype(np.int64)
        uniques = pd.Index(uniques, name=seg_name)
    f64 = lambda v: np.ascontiguousarray(v, dtype=np.float64)  # noqa: E731
    return CustomerArrays(
        index=data.index, x=f64(x), t_x=f64(t_x), T=f64(T), m=f64(m), margin=margin_arr,
        delta=f64(continuous_rate(d, unit)), segments=np.ascontiguousarray(codes),
        segment_labels=uniques, segment_name=seg_name, time_unit=unit,
    )


def subset(cust: CustomerArrays, idx: np.ndarray) -> CustomerArrays:
    """The customers ``idx`` of ``cust`` (same segments' labels, so totals add up)."""
    take = lambda v: np.ascontiguousarray(v[idx])  # noqa: E731
    return replace(cust, index=cust.index[idx], x=take(cust.x), t_x=take(cust.t_x), T=take(cust.T), m=take(cust.m),
                   margin=take(cust.margin), delta=take(cust.delta), segments=take(cust.segments))


def new_customer(time_unit: str, margin: float = 1.0, delta: float = 0.0) -> CustomerArrays:
    """Customer arrays of one customer acquired at the end of the observation period."""
    return CustomerArrays(
        index=pd.Index(["new"]), x=np.zeros(1), t_x=np.zeros(1), T=np.zeros(1), m=np.zeros(1),
        margin=np.array([float(margin)]), delta=np.array([float(delta)]),
        segments=np.zeros(1, dtype=np.int64), segment_labels=pd.Index(["all"]), segment_name=None,
        time_unit=time_unit,
    )


def quantile_names(probs: Sequence[float]) -> list[str]:
    """Column names of quantiles: ``q5%``, ``q50%``, ..."""
    return [f"q{100 * p:g}%" for p in probs]
