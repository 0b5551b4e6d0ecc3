"""Shared pieces of the plots: the Axes to draw on, interval bands and labels."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import PolyCollection

__all__ = ["get_axes", "interval_label", "unit_name", "duration", "with_unit", "band", "has_spread", "error_bars"]

# singular and plural names of the usual time units (others are shown as given)
_UNITS = {"W": ("week", "weeks"), "D": ("day", "days"), "h": ("hour", "hours")}


def get_axes(ax: Axes | None) -> Axes:
    """``ax`` itself, or the Axes of a new figure from ``plt.subplots()`` when None.

    pyplot is imported only here, when a figure is made: importing :mod:`clvbayes.plotting`
    does not select a backend.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
        return ax
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}.")
    return ax


def interval_label(hdi_prob: float) -> str:
    """Legend text of an interval of mass ``hdi_prob``: ``"94% interval"``."""
    return f"{100 * hdi_prob:g}% interval"


def unit_name(unit: str | None, *, plural: bool = True) -> str | None:
    """``"weeks"`` for ``"W"``, ``"days"`` for ``"D"``; other units as ``"x 14D"``; None
    when the unit is not known."""
    if unit is None:
        return None
    if unit in _UNITS:
        return _UNITS[unit][1 if plural else 0]
    return f"x {unit}"


def duration(value: float, unit: str | None) -> str:
    """A length of time in words: ``"1 week"``, ``"39 weeks"``, ``"2 x 14D"``."""
    if math.isinf(value):
        return "the whole future"
    text = f"{value:.4g}"
    if unit is None:
        return f"{text} time units"
    if unit in _UNITS:
        return f"{text} {_UNITS[unit][0 if value == 1 else 1]}"
    return f"{text} x {unit}"


def with_unit(label: str, unit: str | None) -> str:
    """``"label (weeks)"``, or the label alone when the unit is not known."""
    name = unit_name(unit)
    return label if name is None else f"{label} ({name})"


def has_spread(lower, upper) -> bool:
    """Whether an interval has any width (a point estimate's intervals have none)."""
    width = np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)
    return bool(np.isfinite(width).any() and np.nanmax(width) > 0)


def band(ax: Axes, x, lower, upper, *, label: str, color: str, alpha: float = 0.25, **kwargs) -> PolyCollection | None:
    """An interval band by ``ax.fill_between`` (one PolyCollection), or nothing when the
    interval has no width (a point estimate)."""
    if not has_spread(lower, upper):
        return None
    return ax.fill_between(x, lower, upper, color=color, alpha=alpha, linewidth=0, label=label, **kwargs)


def error_bars(mean: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Matplotlib's ``yerr``/``xerr`` (2, n) for an interval around a mean, clipped at 0.

    An HDI need not contain the mean: for a skewed count on few customers (most draws 0, a
    few large) the HDI is [0, 0] while the mean is above it. The bar then shows no error bar
    on that side instead of failing ("'yerr' must not contain negative values").
    """
    mean = np.asarray(mean, dtype=np.float64)
    return np.maximum(np.vstack([mean - np.asarray(lower, dtype=np.float64),
                                 np.asarray(upper, dtype=np.float64) - mean]), 0.0)
