"""Validation against data the model was not fitted on: holdout purchases by calibration
frequency and the cohort's purchases over time (Fader, Hardie & Lee 2005, "Counting your
customers the easy way", Marketing Science 24(2), Figures 3 and 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clvbayes.plotting._common import band, duration, get_axes, interval_label, unit_name
from clvbayes.value.validation import HoldoutValidation

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_calibration_holdout", "plot_purchase_tracking"]

_TRACKING_COLUMNS = {
    True: ("actual_cumulative", "expected_cumulative", "expected_cumulative_lower", "expected_cumulative_upper"),
    False: ("actual", "expected", "expected_lower", "expected_upper"),
}


def plot_calibration_holdout(validation: HoldoutValidation, *, ax: Axes | None = None) -> Axes:
    """Mean holdout purchases by calibration frequency: actual, and predicted with its band.

    Customers are grouped by their repeat purchases in the calibration period (0, ..., 6,
    7+; FHL 2005 Figure 4); per group the actual mean number of holdout purchases is
    compared with the model's predicted mean and the interval of the group mean over the
    replicates of :func:`clvbayes.holdout_validation` (parameter and process uncertainty;
    process only for a point estimate). Groups without customers are left out.

    Parameters
    ----------
    validation
        From :func:`clvbayes.holdout_validation`.
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import clvbayes
    >>> from clvbayes import plotting
    >>> validation = clvbayes.holdout_validation(model, split, random_seed=0)  # doctest: +SKIP
    >>> ax = plotting.plot_calibration_holdout(validation)  # doctest: +SKIP
    """
    if not isinstance(validation, HoldoutValidation):
        raise TypeError(
            f"validation must be a HoldoutValidation (clvbayes.holdout_validation), got {type(validation).__name__}."
        )
    table = validation.by_frequency
    table = table.loc[table["customers"] > 0]
    ax = get_axes(ax)
    pos = np.arange(len(table))
    ax.plot(pos, table["actual"].to_numpy(), "o-", color="C0", label="Actual")
    ax.plot(pos, table["mean"].to_numpy(), "s--", color="C1", label="Predicted mean")
    band(ax, pos, table["lower"].to_numpy(), table["upper"].to_numpy(), color="C1",
         label=interval_label(validation.hdi_prob))
    ax.set_xticks(pos, list(table.index))
    ax.set_xlabel("Repeat purchases in the calibration period")
    ax.set_ylabel(f"Mean purchases in the holdout ({duration(validation.duration, validation.time_unit)})")
    ax.set_title("Holdout purchases by calibration frequency: actual vs predicted")
    ax.legend()
    return ax


def plot_purchase_tracking(
    tracking: pd.DataFrame,
    *,
    cumulative: bool = True,
    calibration_end: str | pd.Timestamp | None = None,
    hdi_prob: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Repeat transactions of the calibration cohort over time: actual, expected and band.

    From :func:`clvbayes.purchase_tracking` (FHL 2005 Figure 3): the cohort's actual
    repeat transactions per period (or their running total) against the model's
    expectation and its interval over the parameter draws (an expectation: no process
    noise, so actual values may stray outside the band week by week; a point estimate has
    no band). A dotted vertical line marks the end of the calibration period: to its left
    the model has seen the data, to its right it forecasts.

    Parameters
    ----------
    tracking
        From :func:`clvbayes.purchase_tracking`.
    cumulative
        Running totals (default) or per-period transactions.
    calibration_end
        Where to draw the vertical line (default: ``tracking.attrs["calibration_end"]``;
        none when neither is known).
    hdi_prob
        Mass of the tracking's interval, for the legend: the ``hdi_prob`` given to
        :func:`~clvbayes.purchase_tracking` (default: ``tracking.attrs["hdi_prob"]`` when
        recorded, else 0.94, that function's default).
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import clvbayes
    >>> from clvbayes import plotting
    >>> tracking = clvbayes.purchase_tracking(model, transactions, calibration_end="1997-09-30",
    ...                                       observation_end="1998-06-30")  # doctest: +SKIP
    >>> ax = plotting.plot_purchase_tracking(tracking, cumulative=False)  # doctest: +SKIP
    """
    import matplotlib.dates as mdates

    if not isinstance(tracking, pd.DataFrame):
        raise TypeError(f"tracking must be the DataFrame of clvbayes.purchase_tracking, got {type(tracking).__name__}.")
    cols = _TRACKING_COLUMNS[bool(cumulative)]
    missing = [c for c in ("period_end", *cols) if c not in tracking.columns]
    if missing:
        raise ValueError(f"tracking lacks columns {missing}: pass the frame returned by clvbayes.purchase_tracking.")
    actual, expected, lower, upper = cols
    x = pd.DatetimeIndex(tracking["period_end"]).to_numpy()
    ax = get_axes(ax)
    ax.plot(x, tracking[actual].to_numpy(), "-", color="C0", label="Actual")
    ax.plot(x, tracking[expected].to_numpy(), "--", color="C1", label="Expected (mean)")
    if hdi_prob is None:
        hdi_prob = tracking.attrs.get("hdi_prob", 0.94)
    band(ax, x, tracking[lower].to_numpy(), tracking[upper].to_numpy(), color="C1", label=interval_label(hdi_prob))
    end = calibration_end if calibration_end is not None else tracking.attrs.get("calibration_end")
    if end is not None:
        ax.axvline(pd.Timestamp(end).to_datetime64(), color="0.3", linestyle=":", label="End of calibration")
    unit = tracking.attrs.get("time_unit")
    period = unit_name(unit, plural=False) or "period"
    customers = tracking.attrs.get("customers")
    cohort = f" of {customers:,} customers" if customers is not None else ""
    if cumulative:
        ax.set_ylabel("Cumulative repeat transactions")
        ax.set_title(f"Cumulative repeat transactions{cohort}")
    else:
        ax.set_ylabel(f"Repeat transactions per {period}")
        ax.set_title(f"Repeat transactions per {period}{cohort}")
    ax.set_xlabel(f"End of {period}")
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.legend()
    return ax
