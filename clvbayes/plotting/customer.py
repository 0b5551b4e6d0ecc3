"""One customer's probability of being alive over time (Fader, Hardie & Lee 2008,
"Computing P(alive) using the BG/NBD model", note 021)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from clvbayes.plotting._common import band, get_axes, interval_label, with_unit
from clvbayes.value.plotdata import probability_alive_history, profile_columns, profile_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_probability_alive_history"]


def plot_probability_alive_history(
    bgnbd,
    purchase_times: Sequence[float] | np.ndarray,
    T: float,
    *,
    n_points: int = 200,
    hdi_prob: float = 0.94,
    n_draws: int | None = 500,
    profile: Mapping[str, object] | None = None,
    customer: object = None,
    ax: Axes | None = None,
) -> Axes:
    """P(alive) of one customer from the first purchase to ``T``: line, band, purchases.

    At each time the customer is judged on the purchases made so far
    (:func:`clvbayes.value.plotdata.probability_alive_history`). The curve stays at 1
    until the first repeat purchase in BG/NBD (no dropout before one), jumps at each
    repeat purchase to the chance of not having dropped out right after it, and decays in
    between, faster for a customer who used to buy often; other families follow their own
    dropout process (Pareto/NBD: no jumps, a decay with the silence; MBG/NBD: below 1 from
    the start). The band is the HDI over the
    posterior draws; a point estimate (``fit_mle``, ``from_params``) has no band. Purchases
    are marked on the time axis.

    Parameters
    ----------
    bgnbd
        A fitted purchase model of any family (:class:`~clvbayes.BetaGeoModel`,
        :class:`~clvbayes.ParetoNBDModel`, :class:`~clvbayes.ModifiedBetaGeoModel`).
    purchase_times, T
        The customer's purchase times since the first purchase and age, in the model's time
        unit (:func:`clvbayes.value.plotdata.customer_purchase_times` makes them from a log).
    n_points, hdi_prob, n_draws
        As in :func:`~clvbayes.value.plotdata.probability_alive_history`.
    profile, customer
        For a model with covariates (:class:`~clvbayes.CovariatePurchaseModel`,
        :class:`~clvbayes.HierarchicalPurchaseModel`), exactly one: ``customer`` (an id of the
        model's data) draws the history at that customer's own cell, ``profile`` (e.g.
        ``{"channel": "web"}``) at that profile's parameters; named in the title.
    ax
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from clvbayes import plotting
    >>> from clvbayes.value.plotdata import customer_purchase_times
    >>> times, T = customer_purchase_times(transactions, 1234, observation_end="1997-09-30")  # doctest: +SKIP
    >>> ax = plotting.plot_probability_alive_history(model, times, T)  # doctest: +SKIP
    """
    history = probability_alive_history(bgnbd, purchase_times, T, n_points=n_points, hdi_prob=hdi_prob,
                                        n_draws=n_draws, profile=profile, customer=customer)
    ax = get_axes(ax)
    t = history["time"].to_numpy()
    point = history.attrs["source"] == "point"
    ax.plot(t, history["mean"].to_numpy(), "-", color="C0", label="P(alive)" if point else "P(alive), posterior mean")
    band(ax, t, history["lower"].to_numpy(), history["upper"].to_numpy(), color="C0",
         label=interval_label(history.attrs["hdi_prob"]))
    purchases = np.concatenate([[0.0], history.attrs["purchase_times"]])
    ax.plot(purchases, np.zeros_like(purchases), "^", color="C3", markersize=8, linestyle="none", clip_on=False,
            label="Purchase")
    ax.set_xlim(0.0, history.attrs["T"])
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel(with_unit("Time since the first purchase", history.attrs.get("time_unit")))
    ax.set_ylabel("P(alive)")
    title = f"Probability of being alive over time ({purchases.size - 1} repeat purchases)"
    if customer is not None:
        own = {c: bgnbd.data.at[customer, c] for c in profile_columns(bgnbd) if c in bgnbd.data.columns}
        title += f"\ncustomer {customer}" + (f" ({profile_label(own)})" if own else "")
    if profile is not None:
        title += f"\n{profile_label(profile)}"
    ax.set_title(title)
    ax.legend(loc="best")
    return ax
