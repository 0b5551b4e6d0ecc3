"""The data behind the plots of :mod:`clvbayes.plotting`, as DataFrames.

Each function computes what one plot draws, with its uncertainty over the model's
parameter draws, and returns a pandas DataFrame that can be inspected, saved or plotted
with any library. Nothing here draws.

- :func:`frequency_recency_grid`: expected purchases or P(alive) over a grid of
  (frequency, recency) for customers of one age (the frequency/recency and P(alive)
  matrices of Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing
  Science 24(2), 275-284; FHL below);
- :func:`period_transactions`: observed and posterior predictive number of customers with
  0, 1, ..., 7+ repeat purchases in the calibration period (FHL Figure 2);
- :func:`probability_alive_history`: one customer's P(alive) over time, given the purchases
  made so far (Fader, Hardie & Lee 2008, "Computing P(alive) using the BG/NBD model", note
  021); :func:`customer_purchase_times` turns a transaction log into that customer's
  purchase times;
- :func:`pareto_curve`: the share of value held by the top customers, with uncertainty
  (:func:`clvbayes.value_concentration` on a grid of shares).

**Evaluation.** A grid of (frequency, recency, age) points is a set of pseudo-customers:
the grid and history functions evaluate them with :func:`clvbayes.customer_metrics`, so
each value is the same kernel, per parameter draw, as the per-customer results, and the
mean, sd and HDI are that function's summaries (ArviZ's HDI). ``n_draws`` keeps that many
evenly spaced posterior draws (default 500). A model with a point estimate only
(``fit_mle()``, ``from_params``) is one draw: ``sd`` is NaN and ``lower = upper = mean``;
:func:`period_transactions` then repeats the estimate ``n_draws`` times, so its interval is
the purchase process's noise only.

Every frame records its settings in ``.attrs``: ``time_unit`` (the model data's, when
known), ``hdi_prob``, ``n_draws`` and ``source`` (``"posterior"`` or ``"point"``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from clvbayes.data.rfm import occasions_until, time_unit_length
from clvbayes.data.validate import DataValidationError, validate_rfm
from clvbayes.families.compiled import drivers_for
from clvbayes.value.arguments import check_number, check_probability
from clvbayes.value.draws import CellDraws, _check_n_draws, has_cells, parameter_draws
from clvbayes.value.equity import value_concentration
from clvbayes.value.quantities import CustomerValue, customer_metrics, hdi_names, summarise_draws
from clvbayes.value.validation import POINT_REPLICATES

__all__ = [
    "GRID_QUANTITIES",
    "frequency_recency_grid",
    "period_transactions",
    "probability_alive_history",
    "customer_purchase_times",
    "pareto_curve",
    "profile_columns",
    "reference_profile",
]

#: Quantities :func:`frequency_recency_grid` evaluates (names of :data:`clvbayes.value.QUANTITIES`).
GRID_QUANTITIES = ("expected_purchases", "p_alive")

# (draw x customer) replicates simulated at a time by period_transactions
_CHUNK_ELEMENTS = 1 << 22


# -- helpers -----------------------------------------------------------------------------
def _model_data(bgnbd) -> pd.DataFrame:
    data = getattr(bgnbd, "data", None)
    if not isinstance(data, pd.DataFrame):
        raise ValueError(
            "The model has no customer data (model.data): build it with BetaGeoModel(rfm) or "
            "BetaGeoModel.from_params(params, data=rfm)."
        )
    return data


def _time_unit(bgnbd) -> str | None:
    data = getattr(bgnbd, "data", None)
    return data.attrs.get("time_unit") if isinstance(data, pd.DataFrame) else None


def _count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _pseudo_customers(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, unit: str | None) -> pd.DataFrame:
    """A customer summary whose rows are grid points (one pseudo-customer each)."""
    frame = pd.DataFrame(
        {"frequency": x.astype(np.float64), "recency": t_x.astype(np.float64), "T": T.astype(np.float64)},
        index=pd.RangeIndex(len(x), name="customer_id"),
    )
    if unit is not None:
        frame.attrs["time_unit"] = unit
    return frame


def _evaluate_points(bgnbd, quantity: str, frame: pd.DataFrame, *, horizon: float, hdi_prob: float,
              n_draws: int | None) -> tuple[pd.DataFrame, dict]:
    """Per-draw values of ``quantity`` at the pseudo-customers of ``frame``, summarised:
    a frame with mean, sd, lower, upper (HDI) in ``frame``'s row order, and the settings."""
    value = customer_metrics(
        bgnbd, None, frame, quantities=(quantity,), horizon=horizon, segment=None, hdi_prob=hdi_prob,
        quantiles=(0.5,), n_draws=n_draws, keep_draws=False,
    )[quantity]
    lo, hi = hdi_names(hdi_prob)
    s = value.summary
    out = pd.DataFrame({"mean": s["mean"].to_numpy(), "sd": s["sd"].to_numpy(), "lower": s[lo].to_numpy(),
                        "upper": s[hi].to_numpy()})
    return out, value.settings


def _attrs(frame: pd.DataFrame, settings: dict, **extra) -> pd.DataFrame:
    frame.attrs.update(
        time_unit=settings.get("time_unit"), hdi_prob=settings["hdi_prob"], n_draws=settings["n_draws"],
        source=settings["source"], **extra,
    )
    return frame


# -- covariate models: one profile, one customer ------------------------------------------------
def profile_columns(model) -> list[str]:
    """The columns a profile of a model with covariates names: every covariate column, and
    the segment column of a :class:`~clvbayes.HierarchicalPurchaseModel`."""
    designs = [model.design] if hasattr(model, "design") else list(getattr(model, "designs", {}).values())
    cols: list[str] = []
    for d in designs:
        if d is not None:
            cols += [c for c in d.columns if c not in cols]
    segment = getattr(model, "segment", None)
    if isinstance(segment, str) and segment not in cols:
        cols.append(segment)
    return cols


def reference_profile(model) -> dict[str, object]:
    """The reference customer of a model with covariates: the reference level (the most
    frequent) of each categorical covariate, the data's mean of each numeric one (every
    design term 0, so the parameters are the base parameters), and the largest segment of
    a :class:`~clvbayes.HierarchicalPurchaseModel`.

    Raises
    ------
    ValueError
        For a model without covariates.
    """
    if not has_cells(model) or isinstance(model, CellDraws):
        raise ValueError(f"reference_profile needs a model with covariates, got a {type(model).__name__}.")
    designs = [model.design] if hasattr(model, "design") else list(model.designs.values())
    out: dict[str, object] = {}
    for d in designs:
        if d is None:
            continue
        for col in d.columns:
            out[col] = d.levels[col][0] if col in d.levels else float(d.center[d.names.index(col)])
    segment = getattr(model, "segment", None)
    if isinstance(segment, str):
        counts = np.bincount(model.customer_segment, minlength=len(model.segments))
        out[segment] = str(model.segments[int(np.argmax(counts))])
    return out


def profile_label(profile: Mapping[str, object]) -> str:
    """``"channel = web, age = 41"``: a profile in words for titles."""
    return ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in profile.items())


def _population_draws(model, n_draws: int | None, *, profile: Mapping[str, object] | None = None,
                      customer: object = None, by_customer: bool = False):
    """What pseudo-customers are evaluated at: a plain model itself; for a model with
    covariates the draws of one covariate ``profile`` (:meth:`parameters_for`) or of one
    data ``customer``'s own cell (:meth:`cell_draws`), as :class:`ParameterDraws` on the same
    thinned grid (``by_customer``: the caller takes ``customer``, named in the error)."""
    if not has_cells(model) or isinstance(model, CellDraws):
        if profile is not None or customer is not None:
            raise ValueError(
                f"profile and customer choose the parameters of a model with covariates; this "
                f"{type(model).__name__} has one population: leave them out."
            )
        return model
    if (profile is None) == (customer is None):
        cols = profile_columns(model)
        raise ValueError(
            f"This {type(model).__name__} has parameters per covariate profile: pass profile= (a dict of "
            f"{cols}, e.g. profile={reference_profile(model)!r}, the reference profile)"
            + (" or customer= (a customer id of its data), not both" if by_customer else "") + "."
        )
    if customer is not None:
        pos = model.data.index.get_indexer([customer])[0]
        if pos < 0:
            raise ValueError(f"Customer {customer!r} is not a customer of this {type(model).__name__}'s data.")
        cd = model.cell_draws(n_draws)
        return cd.for_cell(int(cd.cell[pos]))
    if isinstance(profile, pd.Series):
        profile = profile.to_dict()
    if not isinstance(profile, Mapping):
        raise TypeError(f"profile must be a dict of covariate values, got {type(profile).__name__}.")
    missing = [c for c in profile_columns(model) if c not in profile]
    if missing:
        raise ValueError(f"profile has no value for {missing}: a profile names every covariate column "
                         f"{profile_columns(model)} (the reference profile: {reference_profile(model)!r}).")
    return model.parameters_for(pd.DataFrame([dict(profile)]), n_draws).for_cell(0)


# -- frequency / recency grid --------------------------------------------------------------
def frequency_recency_grid(
    bgnbd,
    quantity: str = "expected_purchases",
    *,
    T: float | None = None,
    horizon: float = 1.0,
    max_frequency: int | None = None,
    max_recency: float | None = None,
    n_recency: int = 40,
    hdi_prob: float = 0.94,
    n_draws: int | None = 500,
    profile: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Expected purchases or P(alive) over a grid of frequency x recency, with uncertainty.

    Every grid point is a customer of age ``T`` with ``frequency`` repeat purchases, the
    last at ``recency``; the quantity is evaluated per parameter draw by the kernels of
    :func:`clvbayes.customer_metrics`: ``"expected_purchases"``, the expected number of
    purchases in ``(T, T + horizon]`` (FHL 2005 eq. (10)), or ``"p_alive"``, P(alive at
    ``T``) (FHL 2005; note 021). For ``frequency = 0`` the BG/NBD quantities do not depend
    on recency (there is no repeat purchase to date), so that row holds the value at
    recency 0 in every column.

    Parameters
    ----------
    bgnbd
        A fitted :class:`~clvbayes.BetaGeoModel` with its data (posterior draws, or a point
        estimate: then ``sd`` is NaN and ``lower = upper = mean``).
    quantity
        ``"expected_purchases"`` or ``"p_alive"``.
    T
        Age of the customers (time since the first purchase, in the data's time unit).
        Default: the largest ``T`` of the model's data.
    horizon
        Length of the future period for ``"expected_purchases"`` (ignored for ``"p_alive"``).
    max_frequency
        Largest frequency of the grid (default: the 99th percentile of the data's
        frequency, at least 1).
    max_recency
        Largest recency (default and at most ``T``).
    n_recency
        Number of recency values, evenly spaced from 0 to ``max_recency``.
    hdi_prob
        Mass of the HDI.
    n_draws
        Evenly spaced posterior draws to use (default 500; None: all).
    profile
        For a model with covariates (:class:`~clvbayes.CovariatePurchaseModel`,
        :class:`~clvbayes.HierarchicalPurchaseModel`; required there, refused otherwise): the
        covariate values of the customers of the grid, e.g. ``{"channel": "web"}``, one
        value per covariate column (and the segment); the grid is evaluated at that
        profile's parameter draws (:meth:`~clvbayes.CovariatePurchaseModel.parameters_for`).
        :func:`reference_profile` gives the reference one.

    Returns
    -------
    pandas.DataFrame
        One row per grid point, frequency-major: ``frequency``, ``recency``, ``mean``,
        ``sd``, ``lower``, ``upper``; ``.attrs`` with ``quantity``, ``T``, ``horizon``,
        ``profile`` (None without covariates), ``time_unit``, ``hdi_prob``, ``n_draws``,
        ``source``.

    Examples
    --------
    >>> grid = frequency_recency_grid(model, "p_alive", max_frequency=10)  # doctest: +SKIP
    >>> grid.pivot(index="frequency", columns="recency", values="mean")  # doctest: +SKIP
    """
    if quantity not in GRID_QUANTITIES:
        raise ValueError(f"quantity must be one of {list(GRID_QUANTITIES)}, got {quantity!r}.")
    hdi_prob = check_probability(hdi_prob, "hdi_prob")
    n_draws = _check_n_draws(n_draws)
    n_recency = _count(n_recency, "n_recency", 2)
    data = _model_data(bgnbd)
    source = _population_draws(bgnbd, n_draws, profile=profile)
    x_data, _, T_data = validate_rfm(data)
    T = float(T_data.max()) if T is None else check_number(T, "T", allow_zero=False, unit=True)
    horizon = check_number(horizon, "horizon", unit=True)
    if max_frequency is None:
        max_frequency = max(1, int(math.ceil(np.percentile(x_data, 99))))
    max_frequency = _count(max_frequency, "max_frequency", 1)
    max_recency = T if max_recency is None else check_number(max_recency, "max_recency", unit=True)
    if max_recency > T:
        raise ValueError(f"max_recency ({max_recency:g}) cannot exceed the customers' age T ({T:g}).")

    recency = np.linspace(0.0, max_recency, n_recency)
    freq = np.arange(max_frequency + 1)
    x = np.repeat(freq, n_recency).astype(np.float64)
    t_x = np.tile(recency, freq.size)
    # frequency 0: recency is 0 by definition and the value does not depend on it; evaluate
    # once and repeat it over the row
    evaluate = x > 0
    evaluate[0] = True
    frame = _pseudo_customers(x[evaluate], np.where(x > 0, t_x, 0.0)[evaluate], np.full(evaluate.sum(), T),
                              _time_unit(bgnbd))
    stats, settings = _evaluate_points(source, quantity, frame, horizon=horizon, hdi_prob=hdi_prob, n_draws=n_draws)
    rows = np.where(evaluate, np.cumsum(evaluate) - 1, 0)
    out = pd.DataFrame({"frequency": x.astype(np.int64), "recency": t_x})
    for col in ("mean", "sd", "lower", "upper"):
        out[col] = stats[col].to_numpy()[rows]
    return _attrs(out, settings, quantity=quantity, T=T, horizon=horizon,
                  profile=None if profile is None else dict(profile))


# -- period transactions -------------------------------------------------------------------
def period_transactions(
    bgnbd,
    *,
    max_frequency: int = 7,
    hdi_prob: float = 0.94,
    n_draws: int | None = 500,
    random_seed: int = 0,
) -> pd.DataFrame:
    """Observed vs predicted number of customers with 0, 1, ..., ``max_frequency`` or more repeat
    purchases in the calibration period (FHL 2005 Figure 2), with a posterior predictive
    interval.

    For every parameter draw, each customer of the model's data is replaced by a fresh
    new customer of the same age ``T`` (the family's ``calibration_replicates_cells`` driver,
    the replicates of :meth:`~clvbayes.BetaGeoModel.sample_posterior_predictive`), and the
    customers are counted by number of repeat purchases. The interval (HDI over the
    replicates) holds parameter and process uncertainty; with a point estimate the estimate
    is repeated ``n_draws`` times (default 500; None: 1,000), so it holds process
    uncertainty only.

    A model with covariates (:class:`~clvbayes.CovariatePurchaseModel`,
    :class:`~clvbayes.HierarchicalPurchaseModel`) replicates each customer with its own
    cell's parameters (:meth:`~clvbayes.CovariatePurchaseModel.cell_draws`: its covariates,
    its segment) and its own ``T``; a plain model is the same computation with one cell, so
    a covariate model whose customers all share one cell gives the plain model's counts bit
    for bit (same draws, same seeds).

    Parameters
    ----------
    bgnbd
        A fitted purchase model of any family, or a model with covariates, with its data.
    max_frequency
        Counts of at least ``max_frequency`` repeat purchases are pooled in the last row.
    hdi_prob
        Mass of the HDI.
    n_draws
        Evenly spaced posterior draws (default 500; None: all); for a point estimate the
        number of replicates.
    random_seed
        Seed of the replicates.

    Returns
    -------
    pandas.DataFrame
        Index ``frequency`` with labels ``"0"``, ..., ``"7+"``; columns ``observed`` (number
        of customers in the data), ``mean``, ``sd``, ``lower``, ``upper`` (replicated number
        of customers); ``.attrs`` with ``customers``, ``time_unit``, ``hdi_prob``,
        ``n_draws``, ``source``.

    Examples
    --------
    >>> period_transactions(model, max_frequency=7)  # doctest: +SKIP
    """
    max_frequency = _count(max_frequency, "max_frequency", 1)
    hdi_prob = check_probability(hdi_prob, "hdi_prob")
    n_draws = _check_n_draws(n_draws)
    x, _, T = validate_rfm(_model_data(bgnbd))
    if has_cells(bgnbd):  # covariates: every customer at its own cell's draws
        draws = bgnbd.cell_draws(n_draws)
        values, cell = dict(draws.values), np.ascontiguousarray(draws.cell, dtype=np.int64)
    else:  # one cell
        draws = parameter_draws(bgnbd, n_draws)
        values, cell = {k: v[None, :] for k, v in draws.values.items()}, np.zeros(T.shape[0], dtype=np.int64)
    if draws.n == 1:  # point estimate: replicate it (process uncertainty only)
        n_rep = POINT_REPLICATES if n_draws is None else n_draws
        values = {k: np.repeat(v, n_rep, axis=1) for k, v in values.items()}
    theta = [np.ascontiguousarray(values[k]) for k in bgnbd.family.param_names]
    replicates = drivers_for(bgnbd.family).calibration_replicates_cells
    R, N = theta[0].shape[1], T.shape[0]
    k = max_frequency + 1
    counts = np.empty((R, k))
    rng = np.random.default_rng(random_seed)
    T = np.ascontiguousarray(T)
    step = max(1, _CHUNK_ELEMENTS // max(N, 1))
    for lo in range(0, R, step):
        hi = min(R, lo + step)
        seed = int(rng.integers(0, 2**63 - 1, dtype=np.int64))
        reps, _ = replicates(*(np.ascontiguousarray(v[:, lo:hi]) for v in theta), cell, T, seed)
        capped = np.minimum(reps, max_frequency).astype(np.int64)
        for d in range(hi - lo):
            counts[lo + d] = np.bincount(capped[d], minlength=k)
    observed = np.bincount(np.minimum(x, max_frequency).astype(np.int64), minlength=k)
    rows = []
    for j in range(k):
        s = summarise_draws(counts[:, j], hdi_prob)
        rows.append([int(observed[j]), s["mean"], s["sd"], *s.iloc[2:4]])
    labels = [str(j) for j in range(max_frequency)] + [f"{max_frequency}+"]
    out = pd.DataFrame(rows, columns=["observed", "mean", "sd", "lower", "upper"],
                       index=pd.Index(labels, name="frequency"))
    out.attrs.update(customers=N, time_unit=_time_unit(bgnbd), hdi_prob=hdi_prob, n_draws=R, source=draws.source)
    return out


# -- P(alive) history -----------------------------------------------------------------------
def _check_purchase_times(purchase_times, T: float) -> np.ndarray:
    """The sorted repeat purchase times (> 0) of ``purchase_times``, checked."""
    times = np.asarray(purchase_times, dtype=np.float64).reshape(-1)
    if not np.isfinite(times).all() or (times < 0).any():
        raise ValueError("purchase_times must be finite and >= 0 (time since the first purchase; 0 = first purchase).")
    if (times > T * (1 + 1e-12)).any():
        raise ValueError(f"purchase_times must be <= T ({T:g}): purchases after the end of observation.")
    repeats = np.sort(times[times > 0])
    if np.unique(repeats).size != repeats.size:
        raise ValueError(
            "purchase_times has repeated values: give one time per purchase occasion (merge purchases of one "
            "day, as rfm_summary does; customer_purchase_times does this)."
        )
    return np.minimum(repeats, T)


def probability_alive_history(
    bgnbd,
    purchase_times: Sequence[float] | np.ndarray,
    T: float,
    *,
    n_points: int = 200,
    hdi_prob: float = 0.94,
    n_draws: int | None = 500,
    profile: Mapping[str, object] | None = None,
    customer: object = None,
) -> pd.DataFrame:
    """One customer's probability of being alive over time, with uncertainty.

    At each time ``t`` in ``[0, T]`` the customer is summarised by the purchases up to ``t``
    (``x(t)`` repeat purchases, the last at ``t_x(t)``, age ``t``) and P(alive at t) is
    evaluated per parameter draw (FHL 2005; Fader, Hardie & Lee 2008, note 021, with the
    kernels of :func:`clvbayes.customer_metrics`). Between purchases it decays; at each
    repeat purchase it jumps: a BG/NBD customer can drop out only right after a purchase, so
    the value just after the purchase is ``(b + x - 1) / (a + b + x - 1)`` per draw, not 1.
    Each purchase time appears twice, just before (``x - 1`` purchases) and at the purchase
    (``x``), so a line through the rows draws the jumps as vertical steps. Before the first
    repeat purchase P(alive) is 1 (no dropout before a repeat purchase in BG/NBD).

    Parameters
    ----------
    bgnbd
        A fitted :class:`~clvbayes.BetaGeoModel` (posterior, or a point estimate: then
        ``lower = upper = mean``).
    purchase_times
        The customer's purchase times in the model's time unit measured from the first
        purchase (0 = the first purchase, repeat purchases > 0, all <= ``T``), one per
        purchase occasion; :func:`customer_purchase_times` makes them from a log.
    T
        The customer's age at the end of observation (> 0).
    n_points
        Evenly spaced times from 0 to ``T`` (the purchase times are added).
    hdi_prob
        Mass of the HDI.
    n_draws
        Evenly spaced posterior draws (default 500; None: all).
    profile, customer
        For a model with covariates, exactly one of them (refused for a model without):
        ``customer``, an id of the model's data, evaluates the history at that customer's
        own cell (its covariates and segment); ``profile``, a dict of covariate values as in
        :func:`frequency_recency_grid`, at that profile's parameters.

    Returns
    -------
    pandas.DataFrame
        Rows sorted by time: ``time``, ``frequency`` and ``recency`` (the purchases up to
        then), ``mean``, ``sd``, ``lower``, ``upper``; ``.attrs`` with ``T``,
        ``purchase_times`` (the repeat purchases), ``profile`` and ``customer`` (None
        unless given), ``time_unit``, ``hdi_prob``, ``n_draws``, ``source``.

    Examples
    --------
    >>> times, T = customer_purchase_times(transactions, 1234, observation_end="1997-09-30")  # doctest: +SKIP
    >>> probability_alive_history(model, times, T).tail()  # doctest: +SKIP
    """
    T = check_number(T, "T", allow_zero=False, unit=True)
    n_points = _count(n_points, "n_points", 2)
    hdi_prob = check_probability(hdi_prob, "hdi_prob")
    n_draws = _check_n_draws(n_draws)
    repeats = _check_purchase_times(purchase_times, T)
    source = _population_draws(bgnbd, n_draws, profile=profile, customer=customer, by_customer=True)

    grid = np.linspace(0.0, T, n_points)
    after = np.searchsorted(repeats, grid, side="right")  # repeat purchases up to and including t
    times = [grid, repeats, repeats]
    counts = [after, np.arange(1, repeats.size + 1), np.arange(repeats.size)]  # at, just before
    t = np.concatenate(times)
    x = np.concatenate(counts).astype(np.int64)
    last = np.concatenate([[0.0], repeats])
    t_x = last[x]
    frame = pd.DataFrame({"time": t, "frequency": x, "recency": t_x}).drop_duplicates()
    frame = frame.sort_values(["time", "frequency"], kind="stable").reset_index(drop=True)
    # Age 0 (the first purchase) is a valid summary (x = t_x = T = 0, P(alive) = 1)
    age = frame["time"].to_numpy()
    pseudo = _pseudo_customers(frame["frequency"].to_numpy(), frame["recency"].to_numpy(), age, _time_unit(bgnbd))
    stats, settings = _evaluate_points(source, "p_alive", pseudo, horizon=0.0, hdi_prob=hdi_prob, n_draws=n_draws)
    for col in ("mean", "sd", "lower", "upper"):
        frame[col] = stats[col].to_numpy()
    return _attrs(frame, settings, T=T, purchase_times=repeats, profile=None if profile is None else dict(profile),
                  customer=customer)


def customer_purchase_times(
    transactions: pd.DataFrame,
    customer: object,
    *,
    customer_id: str = "customer_id",
    date: str = "date",
    time_unit: str = "W",
    observation_end: str | pd.Timestamp | None = None,
) -> tuple[np.ndarray, float]:
    """One customer's purchase times and age from a transaction log, for
    :func:`probability_alive_history`.

    Uses the day conventions of :func:`clvbayes.rfm_summary` (the same code): purchases of
    one calendar day are one occasion, times are measured between days in ``time_unit``
    from the first occasion, and the age ``T`` runs to ``observation_end`` (default: the
    last transaction date of the whole log). Purchases after ``observation_end`` are left
    out, as :func:`clvbayes.calibration_holdout_split` leaves the holdout out of the
    calibration summary. So ``len(times) - 1``, ``times.max()`` and ``T`` equal the
    customer's ``frequency``, ``recency`` and ``T`` in ``rfm_summary`` (or the calibration
    part of ``calibration_holdout_split`` with ``calibration_end=observation_end``) of the
    same log.

    Parameters
    ----------
    transactions
        Purchase log, one row per purchase; not modified.
    customer
        The customer's id.
    customer_id, date
        Column names.
    time_unit
        Time unit (the model's): ``"W"``, ``"D"``, ...
    observation_end
        End of observation (a date, e.g. the calibration end of the model's data).

    Returns
    -------
    times : numpy.ndarray
        Occasion times, the first 0.
    T : float
        Time from the first occasion to ``observation_end``.

    Raises
    ------
    clvbayes.DataValidationError
        When the log is invalid, or the customer has no purchase up to ``observation_end``.

    Examples
    --------
    >>> times, T = customer_purchase_times(load_cdnow_sample(), 4, observation_end="1997-09-30")  # doctest: +SKIP
    """
    unit = time_unit_length(time_unit)
    occ, last_day = occasions_until(
        transactions, customer_id=customer_id, date=date, amount=None, observation_end=None, refunds="raise",
    )
    end = last_day if observation_end is None else pd.Timestamp(observation_end)
    mine = (occ["customer_id"] == customer).to_numpy()
    days = occ.loc[mine & (occ["day"] <= end).to_numpy(), "day"].sort_values()
    if days.empty:
        when = "" if observation_end is None else f" on or before {end.date()}"
        raise DataValidationError(f"Customer {customer!r} has no purchase{when} in the log (column {customer_id!r}).")
    first = days.iloc[0]
    times = ((days - first) / unit).to_numpy(dtype=np.float64)
    return times, float((end - first) / unit)


# -- Pareto curve -------------------------------------------------------------------------------
def pareto_curve(clv: CustomerValue, *, n_points: int = 50, include: Sequence[float] = ()) -> pd.DataFrame:
    """Share of total value held by the top customers, with uncertainty (the Pareto or
    Lorenz-type concentration curve).

    Customers are ranked once by their posterior mean value; for each share ``k`` of
    customers, the posterior of the share of each draw's total held by the top ``k`` is
    summarised (:func:`clvbayes.value_concentration`, whose rows these are).

    Parameters
    ----------
    clv
        A per-customer result (:func:`clvbayes.customer_lifetime_value` or another additive
        quantity). With a point estimate the interval collapses to the mean.
    n_points
        Number of evenly spaced customer shares in (0, 1]; a first row at share 0 (value
        share 0) is added.
    include
        Further customer shares in (0, 1] to include (e.g. the 0.2 of "the top 20%").

    Returns
    -------
    pandas.DataFrame
        Rows by increasing ``customer_share`` (0 to 1): ``customer_share``, ``customers``
        (the number in the top share), ``mean``, ``sd``, ``lower``, ``upper`` (HDI) of the
        share of value; ``.attrs`` with ``quantity``, ``hdi_prob``, ``n_draws``, ``source``.

    Examples
    --------
    >>> curve = pareto_curve(clv, include=(0.2,))  # doctest: +SKIP
    >>> curve.loc[curve["customer_share"] == 0.2]  # doctest: +SKIP
    """
    if not isinstance(clv, CustomerValue):
        raise TypeError(f"clv must be a CustomerValue (e.g. from customer_lifetime_value), got {type(clv).__name__}.")
    n_points = _count(n_points, "n_points", 1)
    shares = np.concatenate([np.arange(1, n_points + 1) / n_points, np.asarray(include, dtype=np.float64).reshape(-1)])
    # one row per share even when a computed share and an included one differ by rounding
    shares = np.unique(np.round(shares, 12))
    conc = value_concentration(clv, tuple(float(v) for v in shares))
    lo, hi = hdi_names(clv.settings["hdi_prob"])
    out = pd.DataFrame({
        "customer_share": np.concatenate([[0.0], conc.index.to_numpy(dtype=np.float64)]),
        "customers": np.concatenate([[0], conc["customers"].to_numpy()]).astype(np.int64),
        "mean": np.concatenate([[0.0], conc["mean"].to_numpy()]),
        # the empty top share holds nothing in every draw (sd NaN for a point estimate, as elsewhere)
        "sd": np.concatenate([[0.0 if clv.parameter_draws.n > 1 else math.nan], conc["sd"].to_numpy()]),
        "lower": np.concatenate([[0.0], conc[lo].to_numpy()]),
        "upper": np.concatenate([[0.0], conc[hi].to_numpy()]),
    })
    return _attrs(out, clv.settings, quantity=clv.name)

