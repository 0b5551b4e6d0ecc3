"""Calibration/holdout split of a transaction log."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clvbayes.data.rfm import _summarise_occasions, occasions_until, time_unit_length
from clvbayes.data.validate import DataValidationError, parse_end_date

if TYPE_CHECKING:  # the optional dask extra
    import dask.dataframe as dd

__all__ = ["calibration_holdout_split"]


def calibration_holdout_split(
    transactions: pd.DataFrame | dd.DataFrame | str | os.PathLike,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp | None = None,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
    time_unit: str = "W",
    refunds: str = "raise",
    date_unit: str | None = None,
) -> pd.DataFrame | dd.DataFrame:
    """Summarise a calibration period and count what each customer did in the holdout.

    The calibration period runs up to and including the day ``calibration_end``; the
    holdout from the next day up to and including ``observation_end``. Only customers whose
    first purchase falls in the calibration period are returned (customers acquired in
    the holdout have no calibration history; their number is in ``.attrs``).

    Parameters
    ----------
    transactions
        Purchase log; not modified.
    calibration_end, observation_end
        Dates ending the two periods. ``observation_end`` defaults to the last
        transaction date. Time-zone-aware values keep their wall time, like the dates of
        the log (the calendar day as written, not UTC).
    customer_id, date, amount, time_unit, refunds, date_unit
        As in :func:`clvbayes.rfm_summary`.

    Returns
    -------
    pandas.DataFrame
        The calibration summary of :func:`clvbayes.rfm_summary` (``T`` measured to
        ``calibration_end``) plus

        - ``frequency_holdout``: purchase occasions in the holdout (all are repeats);
        - ``monetary_value_holdout``: their mean value (0 if none), when amounts are given;
        - ``duration_holdout``: holdout length in ``time_unit``.

    Examples
    --------
    >>> from clvbayes.datasets import load_cdnow_sample
    >>> split = calibration_holdout_split(  # doctest: +SKIP
    ...     load_cdnow_sample(), calibration_end="1997-09-30", observation_end="1998-06-30")

    A Dask DataFrame or a Parquet path is split on Dask (see
    :func:`clvbayes.distributed.calibration_holdout_split_dask`; needs the ``dask`` extra).
    """
    unit = time_unit_length(time_unit)
    cal_end = parse_end_date(calibration_end, "calibration_end")
    obs = None if observation_end is None else parse_end_date(observation_end, "observation_end")
    if obs is not None and obs <= cal_end:
        raise ValueError(f"observation_end ({obs.date()}) must come after calibration_end ({cal_end.date()}).")
    occ, obs_end = occasions_until(
        transactions, customer_id=customer_id, date=date, amount=amount,
        observation_end=observation_end, refunds=refunds, date_unit=date_unit,
    )
    if obs_end <= cal_end:
        raise DataValidationError(
            f"No transaction falls after calibration_end={cal_end.date()}: there is no holdout period."
        )
    in_cal = (occ["day"] <= cal_end).to_numpy()
    if not in_cal.any():
        raise DataValidationError(
            f"No transaction falls on or before calibration_end={cal_end.date()}: move calibration_end later."
        )
    has_amount = amount is not None
    summary = _summarise_occasions(occ.loc[in_cal], cal_end, unit, has_amount)

    hold = occ.loc[~in_cal & occ["customer_id"].isin(summary.index).to_numpy()]
    g = hold.groupby("customer_id", sort=True, observed=True)
    summary["frequency_holdout"] = g.size().reindex(summary.index, fill_value=0).astype(np.int64)
    if has_amount:
        summary["monetary_value_holdout"] = g["amount"].mean().reindex(summary.index, fill_value=0.0)
    summary["duration_holdout"] = (obs_end - cal_end) / unit
    summary.attrs["time_unit"] = time_unit
    summary.attrs["customers_acquired_in_holdout"] = int(
        occ.loc[~in_cal, "customer_id"].nunique() - hold["customer_id"].nunique()
    )
    return summary
