"""Frequency/recency matrices: expected purchases and P(alive) for every (frequency,
recency) of customers of one age (Fader, Hardie & Lee 2005, "Counting your customers the
easy way", Marketing Science 24(2); the matrices of the lifetimes package, here with the
posterior's mean, sd or interval)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from clvbayes.plotting._common import duration, get_axes, interval_label, with_unit
from clvbayes.value.plotdata import frequency_recency_grid, profile_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_frequency_recency_matrix", "plot_probability_alive_matrix", "STATISTICS"]

#: Statistics of the posterior a matrix can show.
STATISTICS = ("mean", "sd", "lower", "upper", "hdi_width")


def _statistic(grid: pd.DataFrame, statistic: str) -> tuple[pd.Series, str]:
    """The values to show and their description."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {list(STATISTICS)}, got {statistic!r}.")
    point = grid.attrs["source"] == "point"
    if point and statistic in ("sd", "hdi_width"):
        raise ValueError(
            f"statistic={statistic!r} needs posterior draws; this model has a point estimate (fit_mle or "
            "from_params), whose values have no spread. Fit it with fit() or show statistic='mean'."
        )
    interval = interval_label(grid.attrs["hdi_prob"])
    if statistic == "hdi_width":
        return grid["upper"] - grid["lower"], f"width of the {interval}"
    described = {
        "mean": "point estimate" if point else "posterior mean",
        "sd": "posterior sd",
        "lower": f"lower end of the {interval}",
        "upper": f"upper end of the {interval}",
    }
    return grid[statistic], described[statistic]


def _draw_matrix(grid: pd.DataFrame, statistic: str, *, ax: Axes | None, cmap: str, what: str, title: str) -> Axes:
    values, described = _statistic(grid, statistic)
    table = grid.assign(value=values.to_numpy()).pivot(index="frequency", columns="recency", values="value")
    ax = get_axes(ax)
    mesh = ax.pcolormesh(
        table.columns.to_numpy(), table.index.to_numpy(), table.to_numpy(), cmap=cmap, shading="nearest"
    )
    colorbar = ax.figure.colorbar(mesh, ax=ax)
    colorbar.set_label(f"{what}: {described}")
    unit = grid.attrs.get("time_unit")
    ax.set_xlabel(with_unit("Recency: age at the last repeat purchase", unit))
    ax.set_ylabel("Frequency: repeat purchases")
    ax.yaxis.get_major_locator().set_params(integer=True)
    who = f"customers aged {duration(grid.attrs['T'], unit)}"
    if grid.attrs.get("profile") is not None:
        who += f", {profile_label(grid.attrs['profile'])}"
    ax.set_title(f"{title}\n{who}")
    return ax


def plot_frequency_recency_matrix(
    bgnbd,
    *,
    T: float | None = None,
    horizon: float = 1.0,
    max_frequency: int | None = None,
    max_recency: float | None = None,
    statistic: str = "mean",
    hdi_prob: float = 0.94,
    n_draws: int | None = 500,
    profile: Mapping[str, object] | None = None,
    ax: Axes | None = None,
    cmap: str = "viridis",
) -> Axes:
    """Heatmap of expected purchases in the next ``horizon`` by frequency and recency.

    Each cell is a customer of age ``T`` with that many repeat purchases, the last at that
    recency (:func:`clvbayes.value.plotdata.frequency_recency_grid`, FHL 2005 eq. (10)),
    coloured by a statistic of the posterior: its ``"mean"``, ``"sd"``, the ``"lower"`` or
    ``"upper"`` end of the ``hdi_prob`` HDI, or its width (``"hdi_width"``). Customers who
    bought often and recently (top right) are expected to buy most; frequent buyers who
    have been silent long (top left) have probably dropped out. With a point estimate
    (``fit_mle``, ``from_params``) only ``"mean"``, ``"lower"`` and ``"upper"`` (all equal)
    are available.

    Parameters
    ----------
    bgnbd
        A fitted purchase model with its data (any family, or a model with covariates).
    T, horizon, max_frequency, max_recency, hdi_prob, n_draws
        As in :func:`~clvbayes.value.plotdata.frequency_recency_grid` (T: default the
        largest age in the data; horizon in the data's time unit).
    statistic
        ``"mean"``, ``"sd"``, ``"lower"``, ``"upper"`` or ``"hdi_width"``.
    ax
        Axes to draw on (default: a new figure); a colorbar is added beside it.
    cmap
        Matplotlib colormap name.
    profile
        For a model with covariates (required there): the covariate values of the customers
        shown, e.g. ``{"channel": "web"}`` (:func:`~clvbayes.value.plotdata.frequency_recency_grid`;
        :func:`~clvbayes.value.plotdata.reference_profile` gives the reference one); named in
        the title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from clvbayes import plotting
    >>> ax = plotting.plot_frequency_recency_matrix(model, horizon=52)  # doctest: +SKIP
    >>> ax = plotting.plot_frequency_recency_matrix(model, statistic="hdi_width")  # doctest: +SKIP
    """
    grid = frequency_recency_grid(
        bgnbd, "expected_purchases", T=T, horizon=horizon, max_frequency=max_frequency, max_recency=max_recency,
        hdi_prob=hdi_prob, n_draws=n_draws, profile=profile,
    )
    unit = grid.attrs.get("time_unit")
    title = f"Expected purchases in the next {duration(grid.attrs['horizon'], unit)} by frequency and recency"
    return _draw_matrix(grid, statistic, ax=ax, cmap=cmap, what="Expected purchases", title=title)


def plot_probability_alive_matrix(
    bgnbd,
    *,
    T: float | None = None,
    max_frequency: int | None = None,
    max_recency: float | None = None,
    statistic: str = "mean",
    hdi_prob: float = 0.94,
    n_draws: int | None = 500,
    profile: Mapping[str, object] | None = None,
    ax: Axes | None = None,
    cmap: str = "viridis",
) -> Axes:
    """Heatmap of the probability of being alive by frequency and recency.

    As :func:`plot_frequency_recency_matrix` for P(alive at T) (FHL 2005; Fader, Hardie &
    Lee 2008, note 021). Customers without repeat purchases (bottom row) are alive with
    probability 1 in BG/NBD (no dropout before a repeat purchase); for the others P(alive)
    falls with the time since the last purchase, faster the more often they bought.

    Parameters
    ----------
    bgnbd
        A fitted :class:`~clvbayes.BetaGeoModel` with its data.
    T, max_frequency, max_recency, hdi_prob, n_draws
        As in :func:`~clvbayes.value.plotdata.frequency_recency_grid`.
    statistic
        ``"mean"``, ``"sd"``, ``"lower"``, ``"upper"`` or ``"hdi_width"`` (posterior only for
        ``"sd"`` and ``"hdi_width"``).
    ax
        Axes to draw on (default: a new figure); a colorbar is added beside it.
    cmap
        Matplotlib colormap name.
    profile
        For a model with covariates (required there): the covariate values of the customers
        shown, e.g. ``{"channel": "web"}`` (:func:`~clvbayes.value.plotdata.frequency_recency_grid`;
        :func:`~clvbayes.value.plotdata.reference_profile` gives the reference one); named in
        the title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from clvbayes import plotting
    >>> ax = plotting.plot_probability_alive_matrix(model, max_frequency=15)  # doctest: +SKIP
    """
    grid = frequency_recency_grid(
        bgnbd, "p_alive", T=T, max_frequency=max_frequency, max_recency=max_recency, hdi_prob=hdi_prob,
        n_draws=n_draws, profile=profile,
    )
    return _draw_matrix(grid, statistic, ax=ax, cmap=cmap, what="P(alive)",
                        title="Probability of being alive by frequency and recency")
