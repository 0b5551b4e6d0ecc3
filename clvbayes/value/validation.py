"""Holdout validation and cohort tracking of a fitted BG/NBD (and Gamma-Gamma) model.

Two checks of a model against data it was not fitted on, in the style of Fader, Hardie &
Lee (2005), "Counting your customers the easy way", Marketing Science 24(2) (FHL below):

- :func:`holdout_validation`: for every customer, the distribution of the number of repeat
  purchases (and, with a Gamma-Gamma model, the spend) in the holdout period given the
  calibration history, against what the customer did; summarised per customer, in total,
  by calibration frequency (FHL Figure 4) and as error metrics next to the rules of thumb
  of :mod:`clvbayes.value.heuristics`.
- :func:`purchase_tracking`: expected cumulative and period-by-period repeat transactions of the
  cohort acquired by the end of calibration, over calibration and holdout, against the
  transaction log (FHL Figure 3).

**Point forecasts.** A customer's forecast is the exact conditional expectation of the
holdout purchases (FHL eq. (10)) and, with a Gamma-Gamma model, of the holdout spend
(E[purchases | θ] · E[spend per purchase | θ], FHL 2005 JMR eq. (5)), averaged over the
parameter draws by :func:`clvbayes.customer_metrics`: the same numbers as
:func:`clvbayes.value.expected_purchases`, with no Monte Carlo noise. Totals and frequency-group
forecasts are their sums and means.

**Replicates and intervals.** The holdout distribution is simulated: one replicate per
(parameter draw, customer) with :func:`clvbayes.kernels.predictive.bgnbd_holdout_replicates`
(alive with probability P(alive), then the updated rate and dropout), so a posterior gives
parameter and process uncertainty together. A model with point estimates only (MLE, MAP,
``from_params``) is repeated to 1,000 replicates (``n_draws`` sets the number): its
intervals then hold process uncertainty only. Intervals are equal-tailed with mass
``hdi_prob``; the bounds are the replicates' ``(1 - hdi_prob) / 2`` and ``(1 + hdi_prob) / 2``
quantiles by numpy's ``"inverted_cdf"`` (actual replicate values, so a count interval has
integer bounds and holds at least ``hdi_prob`` of the replicates). The tracking intervals
are over the parameter draws only (an expectation has no process noise), with numpy's
default linear quantiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from clvbayes.data.rfm import occasions_until, time_unit_length
from clvbayes.data.validate import DataValidationError, _require_columns, validate_monetary, validate_rfm
from clvbayes.families.compiled import drivers_for
from clvbayes.kernels.tracking import cohort_cumulative_purchases
from clvbayes.value.arguments import check_probability
from clvbayes.value.draws import _check_n_draws, block_draws, joint_cell_draws, joint_draws, parameter_draws
from clvbayes.value.heuristics import holdout_forecasts
from clvbayes.value.quantities import customer_metrics

__all__ = ["HoldoutValidation", "holdout_validation", "purchase_tracking"]

#: Replicates of a point estimate (process uncertainty only) unless ``n_draws`` says otherwise.
POINT_REPLICATES = 1000
#: Calibration frequency groups of :attr:`HoldoutValidation.by_frequency` (FHL Figure 4).
FREQUENCY_GROUPS = ("0", "1", "2", "3", "4", "5", "6", "7+")
# (draw x customer) elements simulated at a time: a few float64 arrays of 32 MB each
_CHUNK_ELEMENTS = 1 << 22
_METRICS = ("MAE", "RMSE", "bias", "coverage")

SeedLike = int | np.random.Generator | None


# -- argument checks ----------------------------------------------------------------------
#: Most cells of a model with covariates that purchase_tracking evaluates (cell by cell).
MAX_TRACKING_CELLS = 1000


def _has_cells(model) -> bool:
    """Whether a model (or draws) gives customers their own parameters (covariates)."""
    from clvbayes.value.draws import CellDraws

    return isinstance(model, CellDraws) or callable(getattr(model, "cell_draws", None))


def _tail_probs(hdi_prob: float) -> tuple[float, float]:
    """``((1 - h) / 2, (1 + h) / 2)`` rounded to 12 decimals: 0.94 gives exactly 0.03 and 0.97,
    so an ``"inverted_cdf"`` bound does not jump one replicate on a rounding error."""
    return round((1.0 - hdi_prob) / 2.0, 12), round((1.0 + hdi_prob) / 2.0, 12)


def _holdout_columns(data: pd.DataFrame, spend: bool) -> tuple[np.ndarray, float, np.ndarray | None]:
    """Validated holdout counts, holdout length and (with ``spend``) actual holdout spend."""
    roles = {"holdout frequency": "frequency_holdout", "holdout duration": "duration_holdout"}
    if spend:
        roles["holdout mean spend"] = "monetary_value_holdout"
    _require_columns(data, roles, "The calibration/holdout summary")
    ids = data.index.to_numpy()

    def numeric(col: str) -> np.ndarray:
        values = pd.to_numeric(data[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            shown = ", ".join(map(str, ids[bad][:5]))
            raise DataValidationError(
                f"Column {col!r} has {bad.sum()} missing or non-numeric values (customers {shown}). "
                "Build the frame with clvbayes.calibration_holdout_split."
            )
        return values

    y = numeric("frequency_holdout")
    bad = (y < 0) | (y != np.round(y))
    if bad.any():
        shown = ", ".join(map(str, ids[bad][:5]))
        raise DataValidationError(
            f"Column 'frequency_holdout' has {bad.sum()} negative or non-integer values (customers {shown}): "
            "it counts purchase occasions in the holdout period."
        )
    dur = numeric("duration_holdout")
    if not (dur > 0).all():
        raise DataValidationError("Column 'duration_holdout' must be > 0 (the holdout length in the data's time unit).")
    if dur.max() - dur.min() > 1e-9 * dur.max():
        raise DataValidationError(
            f"Column 'duration_holdout' has {np.unique(dur).size} different values ({dur.min():g} to "
            f"{dur.max():g}): holdout validation needs one holdout period common to all customers, as "
            "calibration_holdout_split makes."
        )
    actual_spend = None
    if spend:
        actual_spend = y * numeric("monetary_value_holdout")
    return y, float(dur[0]), actual_spend


def _check_time_unit(model, time_unit: str | None, what: str) -> None:
    """Refuse a time unit other than the one of the model's training data (when both are known)."""
    model_unit = getattr(getattr(model, "data", None), "attrs", {}).get("time_unit")
    if model_unit is None or time_unit is None:
        return
    if time_unit_length(model_unit) != time_unit_length(time_unit):
        raise ValueError(
            f"The model was fitted on data in time_unit={model_unit!r} but {what} {time_unit!r}; its "
            f"parameters are per {model_unit!r}. Use data in the model's time unit."
        )


# -- result --------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False, eq=False)
class HoldoutValidation:
    """Result of :func:`holdout_validation`.

    Attributes
    ----------
    customers : pandas.DataFrame
        Per customer: ``actual`` holdout repeat purchases, the forecast ``mean`` (the exact
        expectation over the draws) and the interval ``lower``/``upper`` (of the
        replicates); with a Gamma-Gamma model also ``actual_spend``
        (``frequency_holdout x monetary_value_holdout``), ``mean_spend``, ``lower_spend``,
        ``upper_spend``.
    total : pandas.Series
        Total holdout repeat purchases over all customers: ``actual``, ``mean``, ``lower``,
        ``upper`` (the interval of the per-replicate totals).
    by_frequency : pandas.DataFrame
        By calibration frequency 0..6 and "7+": ``customers``, ``actual`` (mean holdout
        purchases of the group), predicted ``mean``, ``lower``, ``upper`` of the group mean.
    metrics : pandas.DataFrame
        Rows ``"model"`` and the heuristics of
        :func:`clvbayes.value.heuristics.holdout_forecasts`; columns ``(quantity, metric)``
        with quantity ``"purchases"`` (and ``"spend"``) and metric ``MAE``, ``RMSE``,
        ``bias`` (mean predicted minus actual) and ``coverage`` (share of customers whose
        actual value lies in the model's interval; NaN for heuristics). The model's point
        forecast is the exact conditional expectation averaged over the draws (module
        docstring).
    hdi_prob : float
        Mass of the equal-tailed intervals.
    source : str
        ``"posterior"`` (parameter and process uncertainty) or ``"point"`` (process only).
    n_replicates : int
        Replicates per customer.
    duration : float
        Holdout length in the data's time unit.
    total_replicates : numpy.ndarray
        Total holdout purchases of each replicate (length ``n_replicates``).
    total_spend : pandas.Series or None
        As ``total`` for the holdout spend (with a Gamma-Gamma model).
    window : float
        Silence window of the ``silence_window`` heuristic.
    time_unit : str or None
        Time unit of the data (``data.attrs["time_unit"]``), when known.
    """

    customers: pd.DataFrame
    total: pd.Series
    by_frequency: pd.DataFrame
    metrics: pd.DataFrame
    hdi_prob: float
    source: str
    n_replicates: int
    duration: float
    total_replicates: np.ndarray
    total_spend: pd.Series | None = None
    window: float = float("nan")
    time_unit: str | None = None

    def customer_table(self) -> pd.DataFrame:
        """Per customer, for a file (the report's ``holdout.csv``): ``actual_purchases``,
        ``forecast_purchases`` and the interval ``lower_purchases``/``upper_purchases``
        (mass :attr:`hdi_prob`), and the same four columns for ``spend`` with a
        Gamma-Gamma model."""
        c = self.customers
        table = pd.DataFrame(
            {"actual_purchases": c["actual"], "forecast_purchases": c["mean"],
             "lower_purchases": c["lower"], "upper_purchases": c["upper"]},
            index=c.index,
        )
        if "actual_spend" in c.columns:
            for new, old in (("actual", "actual_spend"), ("forecast", "mean_spend"), ("lower", "lower_spend"),
                             ("upper", "upper_spend")):
                table[f"{new}_spend"] = c[old]
        return table

    def __repr__(self) -> str:
        pct = f"{100 * self.hdi_prob:g}%"
        what = "posterior draws" if self.source == "posterior" else "point estimate (process uncertainty only)"
        t = self.total
        unit = self.time_unit if self.time_unit else "time units"
        lines = [
            f"HoldoutValidation: {len(self.customers):,} customers, holdout {self.duration:g} {unit}, "
            f"{self.n_replicates:,} replicates from the {what}, {pct} intervals",
            f"  total repeat purchases: actual {t['actual']:,.0f}, predicted {t['mean']:,.1f} "
            f"[{t['lower']:,.0f}, {t['upper']:,.0f}]",
        ]
        if self.total_spend is not None:
            s = self.total_spend
            lines.append(
                f"  total spend: actual {s['actual']:,.2f}, predicted {s['mean']:,.2f} "
                f"[{s['lower']:,.2f}, {s['upper']:,.2f}]"
            )
        with pd.option_context("display.width", 120, "display.precision", 3):
            lines.append("  metrics:")
            lines.extend("    " + line for line in self.metrics.to_string().splitlines())
        return "\n".join(lines)


# -- holdout validation --------------------------------------------------------------------
def _errors(pred: np.ndarray, actual: np.ndarray) -> tuple[float, float, float]:
    e = pred - actual
    return float(np.mean(np.abs(e))), float(np.sqrt(np.mean(e * e))), float(np.mean(e))


def _summary(values: np.ndarray, probs: tuple[float, float], actual: float, mean: float) -> pd.Series:
    """Actual, forecast ``mean`` (exact) and the replicates' interval."""
    lo, hi = np.quantile(values, probs, method="inverted_cdf")
    return pd.Series({"actual": actual, "mean": float(mean), "lower": float(lo), "upper": float(hi)})


def holdout_validation(
    bgnbd,
    data: pd.DataFrame,
    *,
    gamma_gamma=None,
    hdi_prob: float = 0.94,
    n_draws: int | None = None,
    random_seed: SeedLike = None,
    heuristic_window: float | None = None,
) -> HoldoutValidation:
    """Compare a fitted model's holdout predictions with what each customer did.

    For every (parameter draw, customer) one replicate of the repeat purchases in the
    holdout ``(T, T + duration_holdout]`` given the calibration history (FHL 2005; its mean
    is eq. (10)). With a Gamma-Gamma model (Fader, Hardie & Lee 2005, "RFM and CLV",
    Journal of Marketing Research 42(4), 415-430) each replicate also gets a spend: the
    customer's spend rate ``ν ~ Gamma(p x + q, rate γ + m x)`` (its posterior given the
    ``x`` repeat spends with mean ``m``; the prior ``Gamma(q, γ)`` for ``x = 0``) and the
    total of ``n`` replicated purchases ``~ Gamma(n p, rate ν)``, each purchase being
    ``Gamma(p, rate ν)``. Its mean given the draw is ``E[n] x`` FHL (2005, JMR) eq. (5).
    BG/NBD and Gamma-Gamma draws are paired as in :func:`clvbayes.value.draws.joint_draws`.

    Parameters
    ----------
    bgnbd
        A fitted :class:`~clvbayes.BetaGeoModel` (posterior or point estimate).
    data
        Calibration/holdout summary, e.g. from :func:`clvbayes.calibration_holdout_split`:
        ``frequency``, ``recency``, ``T``, ``frequency_holdout``, ``duration_holdout`` (one
        value for all customers) and, with ``gamma_gamma``, ``monetary_value`` and
        ``monetary_value_holdout``. Its time unit must be the model's.
    gamma_gamma
        Optional fitted :class:`~clvbayes.GammaGammaModel` for spend.
    hdi_prob
        Mass of the equal-tailed intervals (default 0.94).
    n_draws
        Posterior: keep this many evenly spaced draws (default all). Point estimate: the
        number of replicates (default 1,000).
    random_seed
        Seed (int or ``numpy.random.Generator``); the same seed gives the same result for
        any number of Numba threads.
    heuristic_window
        Silence window of the ``silence_window`` heuristic (default: the 90th percentile of
        the repeat buyers' inter-purchase times, see
        :func:`clvbayes.value.heuristics.default_silence_window`).

    Returns
    -------
    HoldoutValidation

    Raises
    ------
    clvbayes.DataValidationError
        When a column is missing or invalid, or the holdout length differs between customers.
    ValueError
        With ``gamma_gamma``, when some of its draws have q <= 1 (no finite mean spend, so no
        spend forecast).
    """
    hdi_prob = check_probability(hdi_prob, "hdi_prob")
    n_draws = _check_n_draws(n_draws)
    spend = gamma_gamma is not None
    x, t_x, T = validate_rfm(data)
    y, duration, actual_spend = _holdout_columns(data, spend)
    _check_time_unit(bgnbd, data.attrs.get("time_unit"), "the validation data are in")
    if spend:
        _, m, _ = validate_monetary(data, require_repeat_buyers=False)
    heur = holdout_forecasts(data, duration, window=heuristic_window)

    cells = _has_cells(bgnbd) or _has_cells(gamma_gamma)
    if cells:  # per-customer parameters: each customer at its cell's draws (axis 0: cells)
        draws = joint_cell_draws(bgnbd, gamma_gamma, n_draws, data.index)
        sides = {"purchase": draws.purchase, "spend": draws.spend}
        values = draws.values  # read block by block (cell_rows): never every cell's draws at once
    else:
        draws = joint_draws(bgnbd, gamma_gamma, n_draws)
        values = {k: v[None, :] for k, v in draws.values.items()}  # one cell
    # a point estimate is replicated (process uncertainty only)
    n_rep = (POINT_REPLICATES if n_draws is None else n_draws) if draws.n == 1 else 1
    drv = drivers_for(bgnbd.family)
    R, N = draws.n * n_rep, x.shape[0]

    def block_values(names, cells):
        """The draws of ``cells`` (repeated for a point estimate) and each row's place among them."""
        rows, local = block_draws(values, names, cells)
        if n_rep > 1:
            rows = tuple(np.repeat(v, n_rep, axis=1) for v in rows)
        return rows, local

    purchase_cell = draws.purchase.cell if cells else np.zeros(N, dtype=np.int64)
    spend_cell = draws.spend.cell if cells and spend else np.zeros(N, dtype=np.int64)
    rng = np.random.default_rng(random_seed)
    probs = _tail_probs(hdi_prob)

    # calibration-frequency groups as a one-hot matrix: per-replicate group sums by matmul
    group = np.minimum(x, len(FREQUENCY_GROUPS) - 1).astype(np.int64)
    onehot = np.zeros((N, len(FREQUENCY_GROUPS)))
    onehot[np.arange(N), group] = 1.0

    cols = {k: np.empty(N) for k in ("lower", "upper")}
    if spend:
        cols.update({k: np.empty(N) for k in ("lower_spend", "upper_spend")})
    # point forecasts: exact expectations over the same draws (module docstring)
    exact = customer_metrics(
        bgnbd, gamma_gamma, data, quantities=("expected_purchases", "clv") if spend else ("expected_purchases",),
        horizon=duration, discount_rate=0.0, margin=1.0, segment=None, quantiles=(), n_draws=n_draws,
        keep_draws=False,
    )
    cols["mean"] = exact["expected_purchases"].summary["mean"].to_numpy()
    if spend:
        cols["mean_spend"] = exact["clv"].summary["mean"].to_numpy()
    total_rep = np.zeros(R)
    spend_rep = np.zeros(R)
    group_rep = np.zeros((R, len(FREQUENCY_GROUPS)))
    chunk = max(1024, (_CHUNK_ELEMENTS // R) // 1024 * 1024)
    for lo in range(0, N, chunk):
        hi = min(N, lo + chunk)
        sl = slice(lo, hi)
        seed = int(rng.integers(0, 2**63 - 1, dtype=np.int64))
        data_sl = (np.ascontiguousarray(x[sl]), np.ascontiguousarray(t_x[sl]), np.ascontiguousarray(T[sl]))
        theta, local = block_values(bgnbd.family.param_names, purchase_cell[sl])
        reps = drv.holdout_replicates_cells(*theta, local, *data_sl, duration, seed)
        cols["lower"][sl], cols["upper"][sl] = np.quantile(reps, probs, axis=0, method="inverted_cdf")
        counts = reps.astype(np.float64)
        total_rep += counts.sum(axis=1)
        group_rep += counts @ onehot[sl]
        if spend:
            xs, ms = x[sl], m[sl]
            spend_draws, spend_local = block_values(("p", "q", "gamma"), spend_cell[sl])
            p, q, gamma = (v[spend_local].T for v in spend_draws)  # (R, customers)
            nu = rng.gamma(p * xs + q, 1.0 / (gamma + ms * xs))
            s = rng.gamma(counts * p, 1.0 / nu)  # shape 0 (no purchase) gives 0
            cols["lower_spend"][sl], cols["upper_spend"][sl] = np.quantile(s, probs, axis=0, method="inverted_cdf")
            spend_rep += s.sum(axis=1)

    customers = pd.DataFrame({"actual": y.astype(np.int64), "mean": cols["mean"],
                              "lower": cols["lower"], "upper": cols["upper"]}, index=data.index)
    if spend:
        customers["actual_spend"] = actual_spend
        for k in ("mean_spend", "lower_spend", "upper_spend"):
            customers[k] = cols[k]

    total = _summary(total_rep, probs, float(y.sum()), cols["mean"].sum()).rename("holdout_purchases")
    total_spend = (
        _summary(spend_rep, probs, float(actual_spend.sum()), cols["mean_spend"].sum()).rename("holdout_spend")
        if spend else None
    )

    sizes = onehot.sum(axis=0)
    rows = []
    for g, label in enumerate(FREQUENCY_GROUPS):
        if sizes[g] == 0:
            rows.append({"customers": 0, "actual": np.nan, "mean": np.nan, "lower": np.nan, "upper": np.nan})
            continue
        means = group_rep[:, g] / sizes[g]
        lo_g, hi_g = np.quantile(means, probs, method="inverted_cdf")
        rows.append({"customers": int(sizes[g]), "actual": float(y[group == g].mean()),
                     "mean": float(cols["mean"][group == g].mean()), "lower": float(lo_g), "upper": float(hi_g)})
    by_frequency = pd.DataFrame(rows, index=pd.Index(FREQUENCY_GROUPS, name="frequency"))

    names = ["model", "run_rate", "silence_window", "population_mean"]
    quantities = ["purchases", "spend"] if spend else ["purchases"]
    table = pd.DataFrame(
        np.nan, index=pd.Index(names, name="forecast"),
        columns=pd.MultiIndex.from_product([quantities, list(_METRICS)], names=["quantity", "metric"]),
    )
    for quantity in quantities:
        actual = y if quantity == "purchases" else actual_spend
        suffix = "" if quantity == "purchases" else "_spend"
        for name in names:
            pred = customers["mean" + suffix].to_numpy() if name == "model" else heur[name + suffix].to_numpy()
            table.loc[name, [(quantity, k) for k in ("MAE", "RMSE", "bias")]] = _errors(pred, actual)
        inside = (customers["lower" + suffix].to_numpy() <= actual) & (actual <= customers["upper" + suffix].to_numpy())
        table.loc["model", (quantity, "coverage")] = float(inside.mean())

    return HoldoutValidation(
        customers=customers,
        total=total,
        by_frequency=by_frequency,
        metrics=table,
        hdi_prob=hdi_prob,
        source=draws.source,
        n_replicates=R,
        duration=duration,
        total_replicates=total_rep,
        total_spend=total_spend,
        window=float(heur.attrs["window"]),
        time_unit=data.attrs.get("time_unit"),
    )


# -- tracking ------------------------------------------------------------------------------
def purchase_tracking(
    bgnbd,
    transactions: pd.DataFrame,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp | None,
    time_unit: str = "W",
    customer_id: str = "customer_id",
    date: str = "date",
    n_draws: int | None = 500,
    hdi_prob: float = 0.94,
) -> pd.DataFrame:
    """Actual and expected repeat transactions of the calibration cohort, period by period.

    The cohort is every customer whose first purchase is on or before ``calibration_end``
    (those :func:`clvbayes.calibration_holdout_split` keeps). Periods of length
    ``time_unit`` run from the first day of the log: period ``k`` holds the days
    ``[start + (k-1) u, start + k u)``, the last one is cut at ``observation_end``.

    - Actual: the cohort's repeat purchase occasions (purchases of one customer on one day
      merged, the first occasion not a repeat, exactly as :func:`clvbayes.rfm_summary`
      counts ``frequency``) in each period, and their running total.
    - Expected (FHL 2005 Figure 3): at the last day ``τ_k`` of period ``k`` the cumulative
      expected repeat purchases are ``Σ_i E[X(τ_k - s_i)]``, eq. (9) at each customer's
      age (``s_i`` the first purchase; ages are measured between days, as ``T`` is in the
      summaries, so at the period ending on ``calibration_end`` this is ``Σ_i E[X(T_i)]``).
      Per-period values are the differences. Mean and equal-tailed ``hdi_prob`` interval over
      the model's parameter draws (a point estimate gives a zero-width interval).

    Parameters
    ----------
    bgnbd
        A fitted :class:`~clvbayes.BetaGeoModel`, fitted on data in ``time_unit``.
    transactions
        The purchase log (one row per purchase); not modified. Purchases after
        ``observation_end`` are ignored.
    calibration_end, observation_end
        Dates (times of day are ignored). ``observation_end`` None: the last purchase day.
    time_unit
        Period length and the model's time unit: a whole number of days (``"W"``, ``"D"``,
        ``"14D"``).
    customer_id, date
        Column names in ``transactions``.
    n_draws
        Evenly spaced posterior draws to use (default 500; None for all).
    hdi_prob
        Interval mass (default 0.94).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``period`` (1, 2, ...), with ``period_end`` (last day), ``holdout``
        (True for periods starting after ``calibration_end``), ``actual``, ``expected``,
        ``expected_lower``, ``expected_upper``, ``actual_cumulative``,
        ``expected_cumulative``, ``expected_cumulative_lower``,
        ``expected_cumulative_upper``; ``.attrs`` holds ``customers`` (cohort size),
        ``start``, ``calibration_end``, ``observation_end``, ``time_unit``, ``n_draws``,
        ``hdi_prob``.
    """
    hdi_prob = check_probability(hdi_prob, "hdi_prob")
    n_draws = _check_n_draws(n_draws)
    unit = time_unit_length(time_unit)
    day = pd.Timedelta(days=1)
    if unit % day != pd.Timedelta(0):
        raise ValueError(
            f"time_unit={time_unit!r} is not a whole number of days: purchases are merged by day, so "
            "tracking periods must be whole days ('D', 'W', '14D')."
        )
    _check_time_unit(bgnbd, time_unit, "tracking was asked in")
    cal_end = pd.Timestamp(calibration_end).normalize()
    occ, last_day = occasions_until(
        transactions, customer_id=customer_id, date=date, amount=None, observation_end=None, refunds="raise"
    )
    obs_end = last_day if observation_end is None else pd.Timestamp(observation_end).normalize()
    if obs_end <= cal_end:
        raise ValueError(f"observation_end ({obs_end.date()}) must come after calibration_end ({cal_end.date()}).")
    occ = occ.loc[(occ["day"] <= obs_end).to_numpy()]
    start = occ["day"].min()
    first = occ.groupby("customer_id", sort=True, observed=True)["day"].transform("min")
    in_cohort = (first <= cal_end).to_numpy()
    if not in_cohort.any():
        raise DataValidationError(
            f"No customer made a first purchase on or before calibration_end={cal_end.date()}: the cohort is empty."
        )
    n_periods = int(-(-((obs_end - start) + day) // unit))  # ceil: the last period may be partial
    period_end = pd.DatetimeIndex([min(start + k * unit - day, obs_end) for k in range(1, n_periods + 1)])
    period_start = pd.DatetimeIndex([start + k * unit for k in range(n_periods)])

    # actual: the cohort's repeat occasions (one per customer and day, first day excluded)
    repeat_days = occ["day"].to_numpy()[in_cohort & (occ["day"] > first).to_numpy()]
    k_of = ((repeat_days - start.to_datetime64()) // unit.to_timedelta64()).astype(np.int64)
    actual = np.bincount(k_of, minlength=n_periods).astype(np.int64)

    # expected: weights per distinct first-purchase day, ages in whole days between days
    first_by_customer = occ.groupby("customer_id", sort=True, observed=True)["day"].min()
    cohort = first_by_customer.loc[first_by_customer <= cal_end]
    grid = drivers_for(bgnbd.family).expected_purchases_grid
    names = bgnbd.family.param_names
    if _has_cells(bgnbd):  # each customer's expectation at its cell's parameters, cell by cell
        cd = joint_cell_draws(bgnbd, None, n_draws, pd.Index(cohort.index)).purchase
        if cd.n_cells > MAX_TRACKING_CELLS:
            raise ValueError(
                f"purchase_tracking evaluates the expected purchases cell by cell, and this model's customers fall "
                f"in {cd.n_cells:,} cells (continuous covariates); at most {MAX_TRACKING_CELLS:,} are supported. "
                "Bin the continuous covariates (e.g. pd.cut) for tracking, or track a subset of customers."
            )
        groups = [(cd.for_cell(c), cohort.to_numpy()[cd.cell == c]) for c in np.unique(cd.cell)]
        n_used = cd.n
    else:
        draws = parameter_draws(bgnbd, n_draws)
        groups, n_used = [(draws, cohort.to_numpy())], draws.n
    cum = 0.0
    for draws, days in groups:
        f_days, weights = np.unique(days, return_counts=True)
        age_days = (period_end.to_numpy()[None, :] - f_days[:, None]) // day.to_timedelta64()
        age_days = np.maximum(age_days.astype(np.int64), 0)
        ages, index = np.unique(age_days, return_inverse=True)
        ages_units = np.ascontiguousarray(ages * (day / unit), dtype=np.float64)
        e = grid(*(draws[k] for k in names), ages_units)
        cum = cum + cohort_cumulative_purchases(
            e, np.ascontiguousarray(index.reshape(age_days.shape), dtype=np.int64), weights.astype(np.float64)
        )
    inc = np.diff(cum, axis=1, prepend=0.0)
    probs = _tail_probs(hdi_prob)
    inc_lo, inc_hi = np.quantile(inc, probs, axis=0)
    cum_lo, cum_hi = np.quantile(cum, probs, axis=0)

    out = pd.DataFrame(
        {
            "period_end": period_end,
            "holdout": (period_start > cal_end),
            "actual": actual,
            "expected": inc.mean(axis=0),
            "expected_lower": inc_lo,
            "expected_upper": inc_hi,
            "actual_cumulative": np.cumsum(actual),
            "expected_cumulative": cum.mean(axis=0),
            "expected_cumulative_lower": cum_lo,
            "expected_cumulative_upper": cum_hi,
        },
        index=pd.RangeIndex(1, n_periods + 1, name="period"),
    )
    out.attrs.update(
        customers=int(cohort.size),
        start=start,
        calibration_end=cal_end,
        observation_end=obs_end,
        time_unit=time_unit,
        n_draws=n_used,
        hdi_prob=hdi_prob,
        source=draws.source,
    )
    return out
