"""Rules of thumb for customer value and activity, to compare with the models.

These are the calculations analysts make without a model of purchasing: a customer is
"lost" after a silence of some length, churn is the share lost, lifetime value is margin
over churn, equity is the mean value times the number of customers, and next period's
purchases are this period's run rate. They are here, separate from the models, so that a
study can put them side by side with the BG/NBD/Gamma-Gamma predictions on the same data
(:func:`clvbayes.value.validation.holdout_validation` does so on a holdout period).

Every function says where its assumptions fail. The common thread, for non-contractual
settings (Fader & Hardie 2009, "Probability models for customer-base analysis", Journal of
Interactive Marketing 23(1), 61-69): the moment a customer leaves is never observed, the
customers differ in how often they buy and how long they stay, and the rules replace both
facts by one number.

Time quantities (``window``, ``period``, ``horizon``, ``T``, ``recency``) are in the time
unit of the data (weeks for :func:`clvbayes.rfm_summary`'s default).
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from scipy.optimize import brentq

from clvbayes.data.validate import DataValidationError, validate_monetary, validate_rfm
from clvbayes.value.arguments import check_number

__all__ = [
    "silence_window_lost",
    "churn_rate_from_silence",
    "ltv_margin_over_churn",
    "ltv_retention_time",
    "ltv_revenue_per_customer",
    "equity_mean_clv",
    "default_silence_window",
    "holdout_forecasts",
]

#: Quantile of the repeat buyers' mean inter-purchase times used as the default silence window.
DEFAULT_WINDOW_QUANTILE = 0.9

_CONVENTIONS = ("start", "residual", "end")


# -- argument checks ----------------------------------------------------------------------
def _positive(value: object, name: str) -> float:
    return check_number(value, name, allow_zero=False, unit=True)


def _array(value: object, name: str) -> np.ndarray:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}.")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}.") from err
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return arr


def _result(value: np.ndarray, *inputs: object) -> float | np.ndarray:
    """A float when every input was a scalar, else the array."""
    if all(np.ndim(v) == 0 for v in inputs):
        return float(value)
    return value


# -- silence window ("hiatus") ------------------------------------------------------------
def silence_window_lost(data: pd.DataFrame, window: float) -> pd.Series:
    """Customers classified as lost by a silence window: no purchase in the last ``window``.

    The "hiatus heuristic" (Wübben & von Wangenheim 2008, "Instant customer base analysis:
    managerial heuristics often 'get it right'", Journal of Marketing 72(3), 82-93): a
    customer whose last purchase lies more than ``window`` before the end of observation is
    lost, ``T - recency > window``. Customers without repeat purchases (recency 0) are lost
    once their age ``T`` exceeds the window.

    Where it fails: the silence that signals a loss depends on how often the customer buys.
    A light buyer is called lost after an ordinary gap and a heavy buyer who left recently is
    still called active; a customer younger than the window can never be lost. The model's
    P(alive) (FHL 2005) weighs the same silence against the customer's own rate.

    Parameters
    ----------
    data
        Customer summary with ``frequency``, ``recency`` and ``T`` (e.g. from
        :func:`clvbayes.rfm_summary`).
    window
        Length of the silence, in the data's time unit (> 0).

    Returns
    -------
    pandas.Series of bool
        ``True`` for lost customers, indexed like ``data``, named ``"lost"``.
    """
    window = _positive(window, "window")
    _, t_x, T = validate_rfm(data)
    return pd.Series(T - t_x > window, index=data.index, name="lost")


def churn_rate_from_silence(data: pd.DataFrame, window: float, period: float) -> float:
    """Per-period churn rate implied by the silence-window rule.

    Exactly: among the customers who can be classified (age ``T > window``), let ``L`` be the
    share lost by :func:`silence_window_lost`. Reading the rule as "a customer of age ``T_i``
    is alive at the end of observation iff not lost", and assuming every customer survives
    each period independently with the same probability ``s = 1 - c`` (a geometric lifetime
    from the first purchase), the expected share alive is ``mean_i s^(T_i / period)``. The
    churn rate ``c`` solves

    ``mean_i (1 - c)^(T_i / period) = 1 - L``

    (a unique root: the left side falls from 1 to 0 as ``c`` goes from 0 to 1); with equal
    ages it is ``c = 1 - (1 - L)^(period / T)``. ``L = 0`` gives 0 and ``L = 1`` gives 1.

    Where it fails: everything :func:`silence_window_lost` gets wrong enters ``L``; one
    churn rate for all customers ignores that the customers who remain are the more loyal
    ones, so the retention of a cohort rises with time and a constant rate overstates
    long-run losses (Fader & Hardie 2010, "Customer-base valuation in a contractual setting:
    the perils of ignoring heterogeneity", Marketing Science 29(1), 85-93).

    Parameters
    ----------
    data
        Customer summary with ``frequency``, ``recency`` and ``T``.
    window
        Silence window, in the data's time unit (> 0).
    period
        Length of the period the rate refers to, in the data's time unit (> 0): e.g. 52 for
        an annual rate on weekly data.

    Returns
    -------
    float
        Churn rate per period, in [0, 1].

    Raises
    ------
    clvbayes.DataValidationError
        When no customer is older than the window.
    """
    window = _positive(window, "window")
    period = _positive(period, "period")
    _, t_x, T = validate_rfm(data)
    eligible = T > window
    if not eligible.any():
        raise DataValidationError(
            f"No customer is older than window={window:g} (largest T is {T.max():g}): none can be "
            "classified as lost. Use a shorter window or a longer observation period."
        )
    lost = (T - t_x > window)[eligible]
    alive_share = 1.0 - float(lost.mean())
    if alive_share >= 1.0:
        return 0.0
    if alive_share <= 0.0:
        return 1.0
    ages = T[eligible] / period

    def excess(c: float) -> float:
        # exp(age * log1p(-c)) keeps precision for small c; log1p(-1) = -inf gives 0
        with np.errstate(divide="ignore"):
            return float(np.mean(np.exp(ages * np.log1p(-c)))) - alive_share

    return float(brentq(excess, 0.0, 1.0, xtol=1e-15, rtol=4 * np.finfo(float).eps))


# -- lifetime value and equity ------------------------------------------------------------
def ltv_margin_over_churn(
    margin_per_period: float | np.ndarray,
    churn_rate: float | np.ndarray,
    discount_rate: float | np.ndarray = 0.0,
    *,
    convention: str = "start",
) -> float | np.ndarray:
    """Lifetime value with a constant margin, retention and discount rate ("margin over churn").

    With margin ``m`` per period, retention ``r = 1 - c`` per period and discount rate ``d``
    per period, summed over an infinite horizon. The three formulas in use differ in
    whether the current period's margin is counted and when margins are booked (Fader &
    Hardie 2012, "Reconciling and clarifying CLV formulas", note 024 at brucehardie.com):

    - ``"start"`` (default): margins at the start of each period, the current one included,
      ``Σ_{t>=0} m r^t / (1+d)^t = m (1 + d) / (1 + d - r)``; ``m / c`` when ``d = 0``.
      (Blattberg, Kim & Neslin 2008, "Database Marketing", Springer.)
    - ``"residual"``: the value of the future margins of a customer who has just paid,
      ``Σ_{t>=1} m r^t / (1+d)^t = m r / (1 + d - r)``: Gupta & Lehmann (2003), "Customers
      as assets", Journal of Interactive Marketing 17(1), 9-24, whose "margin multiple" is
      ``r / (1 + i - r)``. Equals ``"start"`` minus ``m``.
    - ``"end"``: margins at the end of each period, the current one included,
      ``m / (1 + d - r)`` = ``"start"`` / (1 + d).

    Where it fails: retention is assumed constant over time and equal for all customers. In
    a cohort of heterogeneous customers the survivors are the loyal ones, so retention
    rises with tenure and the formula understates the value of a new customer's tail (Fader
    & Hardie 2010, Marketing Science 29(1)); in non-contractual settings (retail, CDNOW) no
    retention rate is observed at all and ``c`` must come from a rule such as
    :func:`churn_rate_from_silence`. Margins are assumed constant (no growth, no spend
    heterogeneity).

    Parameters
    ----------
    margin_per_period
        Margin per customer and period (any finite number; arrays broadcast).
    churn_rate
        ``c = 1 - r`` in [0, 1].
    discount_rate
        ``d`` per period, > -1, with ``c + d > 0`` so the sum converges (default 0).
    convention
        ``"start"``, ``"residual"`` or ``"end"`` (above).

    Returns
    -------
    float or numpy.ndarray
        A float when all inputs are scalars.
    """
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention must be one of {_CONVENTIONS}, got {convention!r}.")
    m = _array(margin_per_period, "margin_per_period")
    c = _array(churn_rate, "churn_rate")
    d = _array(discount_rate, "discount_rate")
    if ((c < 0) | (c > 1)).any():
        raise ValueError(f"churn_rate must be in [0, 1] (a share of customers lost per period), got {churn_rate!r}.")
    if (d <= -1).any():
        raise ValueError(f"discount_rate must be > -1, got {discount_rate!r}.")
    if (c + d <= 0).any():
        raise ValueError(
            "churn_rate + discount_rate must be > 0: with no churn and no discounting the "
            "lifetime value is infinite."
        )
    r = 1.0 - c
    denom = 1.0 + d - r  # = c + d
    if convention == "start":
        value = m * (1.0 + d) / denom
    elif convention == "residual":
        value = m * r / denom
    else:
        value = m / denom
    return _result(value, margin_per_period, churn_rate, discount_rate)


def ltv_retention_time(
    profit_per_period: float | np.ndarray, mean_retention_time: float | np.ndarray
) -> float | np.ndarray:
    """Lifetime value as profit per period times the average customer lifetime.

    The undiscounted practitioner's rule ``LTV = profit per period x expected number of
    periods retained``. With a constant churn rate ``c`` and a geometric lifetime counted
    from the current period the expected number of periods is ``1 / c``, and the rule
    equals :func:`ltv_margin_over_churn` with ``d = 0`` (``m / c``).

    Where it fails: no discounting (a margin in ten years counts as much as today's);
    the mean lifetime of a heterogeneous population is dominated by a few long-lived
    customers and is rarely observed (censored by the end of the data), and in
    non-contractual settings lifetimes are never observed at all; profit per period is
    taken as constant and the same for everyone.

    Parameters
    ----------
    profit_per_period
        Profit per customer and period (finite).
    mean_retention_time
        Expected number of periods a customer stays (>= 0).

    Returns
    -------
    float or numpy.ndarray
    """
    m = _array(profit_per_period, "profit_per_period")
    life = _array(mean_retention_time, "mean_retention_time")
    if (life < 0).any():
        raise ValueError(f"mean_retention_time must be >= 0 (a number of periods), got {mean_retention_time!r}.")
    return _result(m * life, profit_per_period, mean_retention_time)


def ltv_revenue_per_customer(
    revenue: float | np.ndarray, n_customers: int | np.ndarray, margin: float | np.ndarray = 1.0
) -> float | np.ndarray:
    """Historical value per customer: revenue over a period divided by the customers, times margin.

    ``revenue / n_customers x margin``: the average revenue per customer ("ARPU") of the
    period the revenue covers, turned into profit with a margin share. It is the "historic"
    or past-customer-value approach surveyed by Gupta, Hanssens, Hardie, Kahn, Kumar, Lin,
    Ravishanker & Sriram (2006), "Modeling customer lifetime value", Journal of Service
    Research 9(2), 139-155.

    Where it fails: it looks backwards. It values the past, not the future; lumps new,
    heavy, light and already-lost customers into one average; and depends on the length of
    the period the revenue covers. It is a lifetime value only if the past period is
    declared to be the whole lifetime.

    Parameters
    ----------
    revenue
        Total revenue over the period (finite).
    n_customers
        Number of customers who generated it (> 0).
    margin
        Profit share of revenue (default 1.0: revenue itself).

    Returns
    -------
    float or numpy.ndarray
    """
    rev = _array(revenue, "revenue")
    n = _array(n_customers, "n_customers")
    mg = _array(margin, "margin")
    if (n <= 0).any():
        raise ValueError(f"n_customers must be > 0, got {n_customers!r}.")
    return _result(rev / n * mg, revenue, n_customers, margin)


def equity_mean_clv(mean_clv: float | np.ndarray, n_customers: int | np.ndarray) -> float | np.ndarray:
    """Customer equity as the mean lifetime value times the number of customers.

    The customer equity of Blattberg & Deighton (1996), "Manage marketing by the customer
    equity test", Harvard Business Review 74(4), 136-144, for the current customer base:
    ``mean_clv x n_customers`` (Gupta, Lehmann & Stuart 2004, "Valuing customers", Journal
    of Marketing Research 41(1), 7-18, add the future cohorts).

    Where it fails: as a sum it is exact, so the error is all in ``mean_clv``. A mean
    computed by a rule (margin over churn) for an "average customer" is not the mean of the
    customers' values when rates differ between customers (the value is a convex function
    of retention, so plugging in the mean retention understates it); a mean measured on one
    segment applied to another carries over that segment's mix; and the product reports no
    uncertainty. :mod:`clvbayes.value` sums per-customer values over the posterior instead.

    Parameters
    ----------
    mean_clv
        Mean lifetime value per customer (finite).
    n_customers
        Number of customers (>= 0).

    Returns
    -------
    float or numpy.ndarray
    """
    v = _array(mean_clv, "mean_clv")
    n = _array(n_customers, "n_customers")
    if (n < 0).any():
        raise ValueError(f"n_customers must be >= 0, got {n_customers!r}.")
    return _result(v * n, mean_clv, n_customers)


# -- holdout forecasts ---------------------------------------------------------------------
def default_silence_window(data: pd.DataFrame) -> float:
    """Default silence window: the 90th percentile of the repeat buyers' inter-purchase times.

    A customer's mean inter-purchase time is ``recency / frequency`` (the time from the first
    to the last purchase over the number of gaps). The window is the 90% quantile (numpy's
    linear interpolation) of these over the customers with ``frequency > 0``: a silence
    longer than nine in ten customers' typical gap. CDNOW, weeks, calibration to 1997-09-30:
    21.5 weeks. Wübben & von Wangenheim (2008) used a fixed nine months for their data; a
    data-driven window keeps the rule meaningful in any time unit and purchase rhythm.

    Raises
    ------
    clvbayes.DataValidationError
        When no customer has a repeat purchase (no gap to measure; pass a window).
    """
    x, t_x, _ = validate_rfm(data)
    repeat = x > 0
    if not repeat.any():
        raise DataValidationError(
            "No customer has a repeat purchase, so there is no inter-purchase time to base a "
            "silence window on: pass window=<length in the data's time unit>."
        )
    window = float(np.quantile(t_x[repeat] / x[repeat], DEFAULT_WINDOW_QUANTILE))
    if not window > 0:
        raise DataValidationError(
            "The repeat buyers' inter-purchase times are all 0 (purchases on the first day "
            "only?): pass window=<length in the data's time unit>."
        )
    return window


def holdout_forecasts(data: pd.DataFrame, horizon: float, *, window: float | None = None) -> pd.DataFrame:
    """Heuristic forecasts of each customer's purchases (and spend) over the next ``horizon``.

    Columns (one row per customer of ``data``):

    - ``run_rate``: the customer's own past rate, ``frequency / T x horizon``. Assumes
      every customer is still alive and keeps buying at the rate observed so far. Fails
      for customers who have left (it keeps forecasting their old rate) and for new
      customers (a rate from one lucky or unlucky stretch; ``frequency = 0`` gives 0 for
      ever), and it never regresses extreme rates towards the mean.
    - ``silence_window``: the run rate, or 0 for customers lost by
      :func:`silence_window_lost` with ``window`` (default :func:`default_silence_window`,
      the 90th percentile of the repeat buyers' inter-purchase times). Adds the rule's
      misclassifications (light buyers cut off, recent leavers kept) to the run rate's.
    - ``population_mean``: the same pooled rate for everyone, ``Σ frequency / Σ T x
      horizon`` (the maximum likelihood rate of one Poisson process shared by all
      customers). Ignores all differences between customers.

    With a ``monetary_value`` column, spend forecasts ``<name>_spend``: the forecast
    purchases times the customer's mean repeat spend ``monetary_value``; customers with
    ``frequency = 0`` get the population mean spend, the unweighted mean of
    ``monetary_value`` over the repeat buyers. This assumes each customer's next
    purchases are worth their past average (no regression to the population mean, which
    the Gamma-Gamma model applies).

    Parameters
    ----------
    data
        Customer summary with ``frequency``, ``recency``, ``T`` (and optionally
        ``monetary_value``).
    horizon
        Forecast length in the data's time unit (> 0), e.g. ``duration_holdout``.
    window
        Silence window of the ``silence_window`` rule; default :func:`default_silence_window`.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``data``; the window used is in ``.attrs["window"]``.
    """
    horizon = _positive(horizon, "horizon")
    x, t_x, T = validate_rfm(data)
    window = default_silence_window(data) if window is None else _positive(window, "window")
    # a customer first seen at the end (T = 0, so x = 0) has no rate yet: 0, not 0/0
    run_rate = np.divide(x, T, out=np.zeros_like(x), where=T > 0) * horizon
    lost = T - t_x > window
    out = pd.DataFrame(
        {
            "run_rate": run_rate,
            "silence_window": np.where(lost, 0.0, run_rate),
            "population_mean": np.full(x.shape, x.sum() / T.sum() * horizon),
        },
        index=data.index,
    )
    if "monetary_value" in data.columns:
        _, m, repeat = validate_monetary(data, require_repeat_buyers=False)
        mean_spend = float(m[repeat].mean()) if repeat.any() else 0.0
        spend = np.where(repeat, m, mean_spend)
        for name in ("run_rate", "silence_window", "population_mean"):
            out[f"{name}_spend"] = out[name].to_numpy() * spend
    out.attrs["window"] = window
    out.attrs["horizon"] = horizon
    return out
