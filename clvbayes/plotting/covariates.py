"""Covariate effects: a forest plot of the coefficients with their HDIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from clvbayes.plotting._common import error_bars, get_axes, interval_label

__all__ = ["plot_coefficients"]

_COLUMNS = ("coefficient", "parameter", "term", "mean", "hdi_low", "hdi_high")


def plot_coefficients(result, *, hdi_prob: float = 0.94, ax: Axes | None = None) -> Axes:
    """Forest plot: one row per coefficient term, posterior mean and HDI, a line at 0.

    The coefficients are on the model's scale: standardised numeric covariates and
    treatment-coded levels (a level's coefficient is the log ratio of the linked parameter to
    the reference level's; ``docs/guide/covariates.md`` has each family's link and sign).
    Terms are grouped by coefficient vector (one colour each), in the summary's order. A
    MAP fit has no interval: points only.

    Parameters
    ----------
    result
        A fitted model with covariates (its ``coefficient_summary(hdi_prob)``) or such a
        summary (columns ``coefficient``, ``parameter``, ``term``, ``mean``, ``hdi_low``,
        ``hdi_high``).
    hdi_prob
        Interval mass, when ``result`` is a model.
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if isinstance(result, pd.DataFrame):
        table, mass = result, None
    elif hasattr(result, "coefficient_summary"):
        table, mass = result.coefficient_summary(hdi_prob=hdi_prob), hdi_prob
    else:
        raise TypeError(f"result must be a model with covariates or its coefficient_summary(), got "
                        f"{type(result).__name__}.")
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"The coefficient summary lacks the columns {missing} (has {list(table.columns)}).")
    if len(table) == 0:
        raise ValueError("The model has no coefficients to plot (no covariates).")
    ax = get_axes(ax)
    pos = np.arange(len(table))
    mean = table["mean"].to_numpy(dtype=np.float64)
    lo, hi = table["hdi_low"].to_numpy(dtype=np.float64), table["hdi_high"].to_numpy(dtype=np.float64)
    has_interval = np.isfinite(lo) & np.isfinite(hi)
    for k, name in enumerate(dict.fromkeys(table["coefficient"])):
        sel = (table["coefficient"] == name).to_numpy()
        param = table.loc[sel, "parameter"].iloc[0]
        both = sel & has_interval
        if both.any():
            ax.errorbar(mean[both], pos[both], xerr=error_bars(mean[both], lo[both], hi[both]), fmt="none",
                        ecolor=f"C{k}", elinewidth=1.5, capsize=3)
        ax.plot(mean[sel], pos[sel], "o", color=f"C{k}", label=f"{name} (on {param})")
    ax.axvline(0.0, color="0.4", linewidth=1, linestyle="--")
    ax.set_yticks(pos, [str(t) for t in table["term"]])
    ax.invert_yaxis()
    if not has_interval.any():
        what = "point estimate"
    else:
        what = f"point: posterior mean; line: {interval_label(mass) if mass else 'HDI'}"
    ax.set_xlabel(f"Coefficient, standardised / log ratio to the reference level ({what})")
    ax.set_ylabel("Coefficient term")
    ax.set_title("Covariate effects")
    ax.legend(loc="best")
    return ax
