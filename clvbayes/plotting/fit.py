"""Model fit: observed vs predicted repeat purchases per customer in the calibration
period (Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing
Science 24(2), Figure 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clvbayes.plotting._common import error_bars, get_axes, interval_label
from clvbayes.value.plotdata import period_transactions

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_period_transactions"]


def plot_period_transactions(
    bgnbd,
    *,
    max_frequency: int = 7,
    hdi_prob: float = 0.94,
    n_draws: int | None = 500,
    random_seed: int = 0,
    ax: Axes | None = None,
) -> Axes:
    """Grouped bars: customers with 0, 1, ..., ``max_frequency`` or more repeat purchases in the
    calibration period, observed and predicted, with the predictive interval as error bars.

    The predicted counts replicate every customer of the data as a fresh BG/NBD customer
    of the same age, once per posterior draw
    (:func:`clvbayes.value.plotdata.period_transactions`); the error bars are the HDI of
    the replicated counts (parameter and process uncertainty). With a point estimate
    (``fit_mle``, ``from_params``) the estimate is replicated ``n_draws`` times and the
    error bars hold the process uncertainty only. Observed bars outside their error bar
    show where the model misses the data's shape. A model with covariates
    (:class:`~clvbayes.CovariatePurchaseModel`, :class:`~clvbayes.HierarchicalPurchaseModel`)
    replicates each customer with its own cell's parameters and its own age.

    Parameters
    ----------
    bgnbd
        A fitted purchase model with its data (any family, or a model with covariates).
    max_frequency, hdi_prob, n_draws, random_seed
        As in :func:`~clvbayes.value.plotdata.period_transactions`.
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from clvbayes import plotting
    >>> ax = plotting.plot_period_transactions(model)  # doctest: +SKIP
    """
    table = period_transactions(
        bgnbd, max_frequency=max_frequency, hdi_prob=hdi_prob, n_draws=n_draws, random_seed=random_seed
    )
    ax = get_axes(ax)
    pos = np.arange(len(table))
    width = 0.4
    mean = table["mean"].to_numpy()
    yerr = error_bars(mean, table["lower"].to_numpy(), table["upper"].to_numpy())
    ax.bar(pos - width / 2, table["observed"].to_numpy(), width, color="C0", label="Observed")
    what = "Model" if table.attrs["source"] == "posterior" else "Model (point estimate, process noise only)"
    ax.bar(pos + width / 2, mean, width, yerr=yerr, capsize=3, color="C1",
           error_kw={"ecolor": "0.2", "elinewidth": 1},
           label=f"{what}: mean and {interval_label(table.attrs['hdi_prob'])}")
    ax.set_xticks(pos, list(table.index))
    ax.set_xlabel("Repeat purchases in the calibration period")
    ax.set_ylabel("Customers")
    ax.set_title(f"Repeat purchases per customer: observed vs predicted ({table.attrs['customers']:,} customers)")
    ax.legend()
    return ax
