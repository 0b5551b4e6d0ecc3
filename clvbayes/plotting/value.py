"""Customer value: the posterior of customer equity, equity by segment, and value
concentration (the Pareto curve)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clvbayes.plotting._common import band, error_bars, get_axes, interval_label
from clvbayes.value.equity import CustomerEquity
from clvbayes.value.plotdata import pareto_curve
from clvbayes.value.quantities import CustomerValue, hdi_names

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_equity_posterior", "plot_pareto", "plot_equity_by_segment"]

_NAMES = {"clv": "CLV", "p_alive": "expected alive customers", "lost_value": "lost value"}


def _quantity_name(name: str) -> str:
    return _NAMES.get(name, name.replace("_", " "))


def plot_equity_posterior(
    equity: CustomerEquity, *, segment: str | None = None, bins: int = 40, ax: Axes | None = None
) -> Axes:
    """Histogram of the per-draw customer equity, with its mean and HDI.

    Equity for a draw is the sum of the customers' CLVs for that draw
    (:func:`clvbayes.customer_equity`), so the histogram is its posterior; the mean is a
    solid line and the HDI (``equity.summary``) a shaded span. With a point estimate there
    is one draw: one bar and the mean, no span.

    Parameters
    ----------
    equity
        From :func:`clvbayes.customer_equity`.
    segment
        A segment of ``equity.summary`` (default: the total of all customers).
    bins
        Histogram bins.
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import clvbayes
    >>> from clvbayes import plotting
    >>> equity = clvbayes.customer_equity(clv)  # doctest: +SKIP
    >>> ax = plotting.plot_equity_posterior(equity)  # doctest: +SKIP
    >>> ax = plotting.plot_equity_posterior(equity, segment="1997-01")  # doctest: +SKIP
    """
    if not isinstance(equity, CustomerEquity):
        raise TypeError(f"equity must be a CustomerEquity (clvbayes.customer_equity), got {type(equity).__name__}.")
    if segment is None:
        values, row, who = equity.total, equity.summary.loc["total"], "all customers"
    else:
        labels = [str(s) for s in equity.by_segment["segment"].to_numpy()]
        if str(segment) not in labels:
            raise KeyError(f"segment {segment!r} is not one of the equity's segments {labels}.")
        k = labels.index(str(segment))
        values, row = equity.by_segment.isel(segment=k), equity.summary.loc[str(segment)]
        who = f"{equity.summary.index.name or 'segment'} {segment}"
    draws = values.to_numpy().reshape(-1)
    hdi_prob = equity.settings["hdi_prob"]
    lo, hi = (row[c] for c in hdi_names(hdi_prob))
    from matplotlib.ticker import StrMethodFormatter

    ax = get_axes(ax)
    ax.hist(draws, bins=bins, color="C0", alpha=0.8, label=f"Posterior draws ({draws.size:,})")
    ax.axvline(row["mean"], color="C1", linewidth=2, label=f"Mean {row['mean']:,.0f}")
    # the HDI as a span over the full height, behind the bars
    band(ax, [lo, hi], [0.0, 0.0], [1.0, 1.0], color="C1", alpha=0.2, zorder=0,
         label=f"{interval_label(hdi_prob)} [{lo:,.0f}, {hi:,.0f}]", transform=ax.get_xaxis_transform())
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel(f"Customer equity: sum of {_quantity_name(equity.clv.name)} over {row['customers']:,.0f} customers")
    ax.set_ylabel("Posterior draws")
    ax.set_title(f"Posterior of customer equity, {who}")
    ax.legend()
    return ax


def plot_pareto(
    clv: CustomerValue, *, n_points: int = 50, highlight: float | None = 0.2, ax: Axes | None = None
) -> Axes:
    """Share of value vs share of customers (the Pareto curve), with its band.

    Customers are ranked by posterior mean value and the share of total value held by the
    top ``x`` of them is drawn with its HDI (:func:`clvbayes.value.plotdata.pareto_curve`,
    :func:`clvbayes.value_concentration`). The diagonal is equal value per customer; the
    further the curve bows above it, the more the value is concentrated. The point at
    ``highlight`` ("the top 20% hold ...") is marked and annotated. A point estimate gives
    no band.

    Parameters
    ----------
    clv
        A per-customer result, e.g. :func:`clvbayes.customer_lifetime_value`.
    n_points
        Customer shares evaluated (evenly spaced).
    highlight
        Customer share to annotate, in (0, 1]; None for no annotation.
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from clvbayes import plotting
    >>> ax = plotting.plot_pareto(clv, highlight=0.1)  # doctest: +SKIP
    """
    from matplotlib.ticker import PercentFormatter

    if highlight is not None and not (isinstance(highlight, (int, float)) and 0 < highlight <= 1):
        raise ValueError(f"highlight must be a customer share in (0, 1] or None, got {highlight!r}.")
    curve = pareto_curve(clv, n_points=n_points, include=() if highlight is None else (float(highlight),))
    name = _quantity_name(clv.name)
    ax = get_axes(ax)
    share = curve["customer_share"].to_numpy()
    ax.plot([0.0, 1.0], [0.0, 1.0], ":", color="0.5", label="Equal value per customer")
    ax.plot(share, curve["mean"].to_numpy(), "-", color="C0", label=f"Share of {name} (mean)")
    band(ax, share, curve["lower"].to_numpy(), curve["upper"].to_numpy(), color="C0",
         label=interval_label(curve.attrs["hdi_prob"]))
    if highlight is not None:
        row = curve.loc[np.isclose(share, highlight, rtol=0, atol=1e-9)].iloc[0]
        ax.plot([row["customer_share"]], [row["mean"]], "o", color="C3", label=f"Top {100 * highlight:g}%")
        spread = "" if row["upper"] == row["lower"] else f" ({100 * row['lower']:.0f}-{100 * row['upper']:.0f}%)"
        ax.annotate(
            f"top {100 * highlight:g}% of customers\nhold {100 * row['mean']:.0f}%{spread}",
            xy=(row["customer_share"], row["mean"]), xytext=(20, -30), textcoords="offset points",
            arrowprops={"arrowstyle": "->", "color": "0.3"}, va="top",
        )
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"Share of customers, ranked by mean {name}")
    ax.set_ylabel(f"Share of total {name}")
    ax.set_title(f"Concentration of {name} ({len(clv.summary):,} customers)")
    ax.legend(loc="lower right")
    return ax


def _equity_columns(frame: pd.DataFrame) -> tuple[str, str, str, float | None]:
    """(mean, lower, upper) column names and the interval mass, for a summary with
    ``mean``/``equity_mean`` and ArviZ-named HDI columns (or ``lower``/``upper``)."""
    for prefix in ("", "equity_"):
        mean = f"{prefix}mean"
        if mean not in frame.columns:
            continue
        found = []
        for col in frame.columns:
            m = re.fullmatch(re.escape(prefix) + r"hdi_([0-9.eE+-]+)%", str(col))
            if m:
                found.append((float(m.group(1)), col))
        if len(found) == 2:
            (p_lo, lo), (p_hi, hi) = sorted(found)
            return mean, lo, hi, round((p_hi - p_lo) / 100, 10)
        if f"{prefix}lower" in frame.columns and f"{prefix}upper" in frame.columns:
            return mean, f"{prefix}lower", f"{prefix}upper", frame.attrs.get("hdi_prob")
    raise ValueError(
        "result must be a CustomerEquity or a DataFrame with a 'mean' (or 'equity_mean') column and two HDI "
        f"columns such as 'hdi_3%', 'hdi_97%' (or 'lower', 'upper'); got columns {list(frame.columns)}."
    )


def plot_equity_by_segment(result: CustomerEquity | pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Horizontal bars of equity per segment with HDI error bars.

    The bar is the posterior mean of the segment's equity (the per-draw sum of its
    customers' CLVs), the error bar its HDI; the x label gives the interval's mass. With a
    point estimate the error bars have no length.

    Parameters
    ----------
    result
        A :class:`~clvbayes.value.equity.CustomerEquity` (its segments, without the total
        row), or a DataFrame with one row per group, a ``mean`` column and HDI columns
        (``hdi_3%``/``hdi_97%``, ``lower``/``upper``, or with an ``equity_`` prefix as in
        :func:`clvbayes.stage_summary`). Bars are in the frame's row order, top to bottom.
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import clvbayes
    >>> from clvbayes import plotting
    >>> ax = plotting.plot_equity_by_segment(clvbayes.customer_equity(clv))  # doctest: +SKIP
    >>> ax = plotting.plot_equity_by_segment(clvbayes.stage_summary(report, stages))  # doctest: +SKIP
    """
    from matplotlib.ticker import StrMethodFormatter

    if isinstance(result, CustomerEquity):
        frame = result.summary.drop(index="total")
        name = _quantity_name(result.clv.name)
    elif isinstance(result, pd.DataFrame):
        frame, name = result, "CLV"
    else:
        raise TypeError(f"result must be a CustomerEquity or a DataFrame, got {type(result).__name__}.")
    mean, lo, hi, mass = _equity_columns(frame)
    m = frame[mean].to_numpy(dtype=np.float64)
    xerr = error_bars(m, frame[lo].to_numpy(dtype=np.float64), frame[hi].to_numpy(dtype=np.float64))
    ax = get_axes(ax)
    pos = np.arange(len(frame))
    interval = interval_label(mass) if mass is not None else "interval"
    # one series: no legend (it would cover the bars); the axis label says what bar and line are
    ax.barh(pos, m, xerr=xerr, capsize=3, color="C0", error_kw={"ecolor": "0.2", "elinewidth": 1})
    ax.set_yticks(pos, [str(v) for v in frame.index])
    ax.invert_yaxis()
    group = frame.index.name or "segment"
    ax.set_ylabel(group.capitalize() if group.islower() else group)
    ax.set_xlabel(f"Customer equity, sum of {name} (bar: posterior mean; line: {interval})")
    ax.set_title(f"Customer equity by {group}")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    return ax
