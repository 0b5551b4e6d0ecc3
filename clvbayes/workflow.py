"""The main job, end to end: from a transaction log to fitted models, a holdout check and
customer value, with every setting recorded.

This is what ``clvbayes demo`` and ``clvbayes fit`` run (:mod:`clvbayes.cli`) and what
:mod:`clvbayes.report` writes out. It only calls the public API, in the order an analyst
would:

1. summarise the log (:func:`clvbayes.rfm_summary`; with a ``calibration_end`` also
   :func:`clvbayes.calibration_holdout_split`);
2. with a calibration period: fit BG/NBD and Gamma-Gamma by NUTS on the calibration period
   and check the forecast of the holdout period (:func:`clvbayes.holdout_validation`,
   :func:`clvbayes.purchase_tracking`);
3. fit both models by NUTS on the whole observation period, check convergence;
4. value as of the end of observation: CLV over ``horizon`` with P(alive), churn analytics
   (:func:`clvbayes.churn_analysis`), customer equity by acquisition cohort
   (:func:`clvbayes.customer_equity`), value concentration and lifecycle stages.

Decisions (the issue is silent): values are as of the *end* of observation, from the fit
to the whole period, because "what is a customer worth now" is the question; the holdout
check uses the calibration fit, because a forecast can only be checked on data it did not
see. Horizon, churn period and "new customer" window default to one year, a quarter and a
quarter in the data's time unit; the margin defaults to 1 (values are revenue) rather than
to a guessed margin.

**Logs without amounts** (no ``amount`` column): only BG/NBD is fitted. Purchase forecasts,
P(alive), expected purchases, churn (expected dropouts, churn rate), lifecycle stages and
the holdout check of purchases are computed as usual (purchases-only churn, see
:mod:`clvbayes.value.churn`); the money figures (spend, CLV, customer equity, value
concentration, churn damage, value at risk) are left out, and :data:`NO_AMOUNTS` says why.

Small and unusual data: customers first seen on the last day (T = 0) are kept everywhere
(P(alive) = 1, unconditional forecasts). Repeat buyers whose repeat purchases all have
amount 0 stay in the BG/NBD fit and every table but are left out of the Gamma-Gamma fit
(a note says who). Warnings of the fits (e.g. :class:`~clvbayes.WeakIdentificationWarning`
when a posterior stays at its prior on a handful of customers) and of the other steps are
collected into ``diagnostics[...]["warnings"]`` and ``notes``, never silenced. A log that
cannot be valued stops with a :class:`~clvbayes.DataValidationError` that says why (every
customer at T = 0; no repeat buyer; a spend posterior reaching q <= 1).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from clvbayes._version import __version__
from clvbayes.data.rfm import rows_until, time_unit_length
from clvbayes.data.validate import DataValidationError, _examples, parse_end_date, zero_spend_repeat_buyers
from clvbayes.value.arguments import (
    check_discount_rate,
    check_margin,
    check_number,
    check_probability,
    check_seed,
)
from clvbayes.families import family_names, get_family
from clvbayes.models.purchase import model_class
from clvbayes.value.customers import DEFAULT_ANNUAL_DISCOUNT_RATE
from clvbayes.value.quantities import hdi_names

__all__ = ["AnalysisSettings", "Analysis", "run_analysis", "analysis_steps", "StepPrinter", "NO_AMOUNTS"]

_DAYS_PER_YEAR = 365.25

#: Why a log without amounts has no money figures (recorded in the report).
NO_AMOUNTS = ("the log has no amount column: spend, CLV, customer equity and value concentration need amounts "
              "(Gamma-Gamma model), so they are not computed; purchases, P(alive), churn and stages are.")
#: The figures left out without amounts.
MONEY_FIGURES = ("spend", "clv", "customer_equity", "value_concentration", "churn_damage", "value_at_risk")


@dataclass(frozen=True)
class AnalysisSettings:
    """Everything that changes the result of :func:`run_analysis` (all recorded in the report).

    Attributes
    ----------
    calibration_end : str or None
        Last day of the calibration period; None: no holdout check.
    observation_end : str or None
        Last day of observation; None: the day of the last purchase. Purchases after it are
        left out ("as of that date"); their number is recorded as
        ``rows_after_observation_end``.
    time_unit : str
        Time unit of the models (a pandas offset of whole days: ``"W"``, ``"D"``, ``"14D"``).
    horizon : float or None
        CLV horizon in time units; None: one year.
    discount_rate : float
        Effective annual discount rate, in [0, 1] (0 to 100% a year; default 0.1,
        :data:`clvbayes.value.DEFAULT_ANNUAL_DISCOUNT_RATE`).
    margin : float
        Profit margin applied to spend, in (0, 1] (1: values are revenue).
    period : float or None
        Churn period in time units; None: a quarter (91.31 days).
    contact_cost : float
        Cost of keeping a customer in a retention programme (write-off rule).
    acquisition_cost : float or None
        Cost of acquiring a customer, for the CLV/CAC comparison.
    new_window : float or None
        Customers whose first purchase is this recent are "new"; None: the churn period.
    chains, draws, tune : int
        NUTS settings for each model fit.
    value_draws : int or None
        Posterior draws used for per-customer values (evenly spaced; None: all).
    seed : int
        Random seed of every fit and simulation, in [0, 2**32).
    hdi_prob : float
        Mass of the credible intervals.
    refunds : str
        Negative amounts: ``"raise"``, ``"drop"`` or ``"net"`` (as in :func:`clvbayes.rfm_summary`).
    model : str
        Purchase model: a registered family (``"bgnbd"``, ``"pnbd"``, ``"mbgnbd"``;
        :func:`clvbayes.families.family_names`) or ``"auto"``: fit every family (to the
        calibration period when there is one, else to all the data), keep the one with the best
        PSIS-LOO (:func:`clvbayes.compare_models`, with the holdout check beside it) and record
        the comparison and the reason.
    covariates : tuple of str
        Columns of the customer attributes (``run_analysis(attributes=...)``) that shift the
        purchase, dropout and spend parameters (:class:`~clvbayes.CovariatePurchaseModel`,
        :class:`~clvbayes.CovariateSpendModel`; categorical or numeric).
    segment : str or None
        A column of the attributes to report value and churn by (equity, churn and stages
        per segment) instead of the acquisition cohort.
    pool_segments : bool
        Fit the purchase model with the segments partially pooled
        (:class:`~clvbayes.HierarchicalPurchaseModel`: every segment's parameters drawn from
        a shared population distribution, NUTS only; categorical covariates only) instead of
        one set of parameters for all; needs ``segment``. The report adds the segments'
        table (:meth:`~clvbayes.HierarchicalPurchaseModel.shrinkage`).
    """

    calibration_end: str | None = None
    observation_end: str | None = None
    time_unit: str = "W"
    horizon: float | None = None
    discount_rate: float = DEFAULT_ANNUAL_DISCOUNT_RATE
    margin: float = 1.0
    period: float | None = None
    contact_cost: float = 1.0
    acquisition_cost: float | None = None
    new_window: float | None = None
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    value_draws: int | None = 1000
    seed: int = 1
    hdi_prob: float = 0.94
    refunds: str = "raise"
    model: str = "bgnbd"
    covariates: tuple[str, ...] = ()
    segment: str | None = None
    pool_segments: bool = False

    def unit_days(self) -> float:
        """Length of one time unit in days."""
        return time_unit_length(self.time_unit) / pd.Timedelta(days=1)

    def resolved(self) -> dict:
        """The settings with the defaults filled in (in time units), as recorded."""
        days = self.unit_days()
        out = asdict(self)
        out["horizon"] = self.horizon if self.horizon is not None else _DAYS_PER_YEAR / days
        out["period"] = self.period if self.period is not None else _DAYS_PER_YEAR / 4 / days
        out["new_window"] = self.new_window if self.new_window is not None else out["period"]
        out["unit_days"] = days
        return out

    def check(self) -> None:
        """Raise ``ValueError`` naming the first setting out of range."""
        time_unit_length(self.time_unit)  # raises for an unknown unit
        for name in ("horizon", "period", "new_window"):
            if getattr(self, name) is not None:
                check_number(getattr(self, name), name, allow_zero=False, unit=True)
        if self.acquisition_cost is not None:
            check_number(self.acquisition_cost, "acquisition_cost", allow_zero=False)
        check_discount_rate(self.discount_rate)
        check_margin(self.margin, allow_zero=False)  # a report with margin 0 would hold only zeros
        check_number(self.contact_cost, "contact_cost")
        for name in ("chains", "draws", "tune"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}.")
        if self.value_draws is not None and self.value_draws < 1:
            raise ValueError(f"value_draws must be at least 1, got {self.value_draws!r}.")
        check_seed(self.seed, "seed")
        check_probability(self.hdi_prob, "hdi_prob")
        if self.model != "auto" and self.model not in family_names():
            raise ValueError(f"model must be 'auto' or one of {', '.join(family_names())}, got {self.model!r}.")
        if isinstance(self.covariates, str) or not all(isinstance(c, str) and c for c in self.covariates):
            raise ValueError(f"covariates must be a sequence of column names, got {self.covariates!r}.")
        if len(set(self.covariates)) != len(self.covariates):
            raise ValueError(f"covariates names a column twice: {list(self.covariates)}.")
        if self.segment is not None and not (isinstance(self.segment, str) and self.segment):
            raise ValueError(f"segment must be a column name or None, got {self.segment!r}.")
        if not isinstance(self.pool_segments, bool):
            raise ValueError(f"pool_segments must be True or False, got {self.pool_segments!r}.")
        if self.pool_segments:
            if self.segment is None:
                raise ValueError("pool_segments (--pool-segments) pools the segments of a segment column: name it "
                                 "with segment (--segment COL).")
            if self.segment in self.covariates:
                raise ValueError(f"The segment column {self.segment!r} is also a covariate: with pool_segments "
                                 "(--pool-segments) the segments' own parameters carry it; drop it from the "
                                 "covariates.")
            if self.model == "auto":
                raise ValueError("pool_segments (--pool-segments) fits one family: choose it (--model bgnbd, pnbd "
                                 "or mbgnbd; compare them first with --model auto without pooling).")
        if self.refunds not in ("raise", "drop", "net"):
            raise ValueError(f"refunds must be 'raise', 'drop' or 'net', got {self.refunds!r}.")
        ends = {name: parse_end_date(getattr(self, name), name)
                for name in ("calibration_end", "observation_end") if getattr(self, name) is not None}
        if len(ends) == 2:
            if ends["calibration_end"] >= ends["observation_end"]:
                raise ValueError(
                    f"calibration_end ({self.calibration_end}) must come before observation_end ({self.observation_end})."
                )


class StepPrinter:
    """Numbered steps with their wall time on a stream (stderr by default).

    ``with steps("fitting BG/NBD"):`` prints ``[2/7] fitting BG/NBD ...`` and, when the block
    ends, ``done in 12.3 s``. ``quiet=True`` prints nothing.
    """

    def __init__(self, total: int, *, stream=None, quiet: bool = False) -> None:
        self.total = total
        self.k = 0
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet

    @contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        self.k += 1
        start = time.perf_counter()
        if not self.quiet:
            print(f"[{self.k}/{self.total}] {what} ...", file=self.stream, flush=True)
        yield
        if not self.quiet:
            print(f"      done in {time.perf_counter() - start:.1f} s", file=self.stream, flush=True)


@dataclass
class Analysis:
    """Everything :func:`run_analysis` computed (read by :mod:`clvbayes.report`).

    Attributes
    ----------
    settings : dict
        :meth:`AnalysisSettings.resolved`, plus the data source.
    transactions : pandas.DataFrame
        The log as given (``customer_id``, ``date`` and, if the log has amounts, ``amount``).
    data : pandas.DataFrame
        Customer summary to the end of observation (the data of ``purchase_model``).
    purchase_model, gamma_gamma
        The purchase model (BG/NBD unless ``settings.model`` says otherwise) and the spend model
        fitted to the whole observation period (``gamma_gamma`` None without amounts).
    calibration : pandas.DataFrame or None
        Calibration/holdout summary (with a ``calibration_end``).
    purchase_model_calibration, gamma_gamma_calibration
        The models fitted to the calibration period (or None).
    validation : HoldoutValidation or None
    tracking : pandas.DataFrame or None
    churn : ChurnReport
    equity : CustomerEquity or None
        None without amounts.
    concentration : pandas.DataFrame or None
        None without amounts.
    stages : pandas.Series
    stage_table : pandas.DataFrame
    customers : pandas.DataFrame
        One row per customer: frequency, recency, T, monetary_value, p_alive, expected
        purchases over the horizon (mean and HDI), CLV (mean and HDI), stage, segment
        (without amounts: no monetary_value and CLV columns).
    model_selection : dict or None
        With ``model="auto"``: ``table`` (:func:`clvbayes.compare_models`), ``reason`` and
        ``fitted_to``.
    pooling : pandas.DataFrame or None
        With ``pool_segments``: the segments' purchase rates, pooled and unpooled, and their
        shrinkage (:meth:`clvbayes.HierarchicalPurchaseModel.shrinkage`).
    diagnostics : dict
        Per fitted model (keyed by family name, ``gamma_gamma`` and ``*_calibration``): the parameters' summary, the convergence problems found and the
        warnings of its fit (``"warnings"``, e.g. a :class:`~clvbayes.WeakIdentificationWarning`
        on small data).
    timings : dict
        Wall time of each step in seconds.
    notes : list of str
        What the run decided about the data (e.g. customers left out of the spend fit) and
        the warnings of the other steps, as plain messages.
    """

    settings: dict
    transactions: pd.DataFrame
    data: pd.DataFrame
    purchase_model: object
    gamma_gamma: object
    calibration: pd.DataFrame | None
    purchase_model_calibration: object | None
    gamma_gamma_calibration: object | None
    validation: object | None
    tracking: pd.DataFrame | None
    churn: object
    equity: object | None
    concentration: pd.DataFrame | None
    stages: pd.Series
    stage_table: pd.DataFrame
    customers: pd.DataFrame
    diagnostics: dict
    model_selection: dict | None = None
    pooling: pd.DataFrame | None = None
    timings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def has_amounts(self) -> bool:
        """Whether the log has amounts (and so spend, CLV and equity were computed)."""
        return self.gamma_gamma is not None

    def summary(self) -> dict:
        """The headline figures as plain JSON types (what ``summary.json`` holds)."""
        return _summary_dict(self)


@contextmanager
def _recording(into: list[str]) -> Iterator[None]:
    """Collect the warnings of a block as plain messages (deduplicated, in order) instead of
    printing them: the report and ``summary.json`` show them next to what they concern."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in into:
            into.append(text)


def _fit(model, s: AnalysisSettings, progressbar: bool):
    model.fit(chains=s.chains, draws=s.draws, tune=s.tune, random_seed=s.seed, progressbar=progressbar)
    return model


def _fit_recorded(model, s: AnalysisSettings, progressbar: bool, caught: list[str]):
    # convergence problems are reported in the summary (diagnostics); the other warnings of
    # the fit (e.g. WeakIdentificationWarning on small data) are collected into ``caught``
    with _recording(caught):
        return _fit(model, s, progressbar)


def _spend_data(data: pd.DataFrame, notes: list[str], what: str) -> pd.DataFrame:
    """The customers the Gamma-Gamma model is fitted to.

    Repeat buyers whose repeat purchases all have amount 0 (a mean spend of 0) are real
    purchasers and stay in the BG/NBD fit and in every table, but Gamma-Gamma models positive
    amounts: they are left out of its fit (a note says who). Their expected spend is the
    model's limit at a mean of 0, ``p γ / (p x + q - 1)`` (:func:`clvbayes.data.validate.validate_monetary`).
    """
    zero = zero_spend_repeat_buyers(data)
    if not zero.any():
        return data
    notes.append(
        f"{what}: {int(zero.sum())} repeat buyers whose repeat purchases all have amount 0 "
        f"({_examples(data.index[zero])}) are left out of the Gamma-Gamma (spend) fit, which models positive "
        "amounts; they stay in the BG/NBD fit and in every table, valued at the spend model's limit for a "
        "mean spend of 0."
    )
    return data.loc[~zero]


def _require_mean_spend(model, what: str) -> None:
    """Stop with a clear message when the Gamma-Gamma posterior reaches q <= 1 (no mean spend,
    so no money value), which happens on a handful of repeat buyers."""
    idata = getattr(model, "idata_", None)
    q = idata.posterior["q"].to_numpy() if idata is not None else np.array([model.params_["q"]])
    bad = int((q <= 1.0).sum())
    if bad:
        raise DataValidationError(
            f"The Gamma-Gamma fit to {what} has {bad} of {q.size} posterior draws with q <= 1, where the mean "
            f"spend per purchase does not exist: with only {model.n_customers_:,} repeat "
            f"buyer{'s' if model.n_customers_ != 1 else ''} with spend "
            "the log is too small to value customers in money. Use a log with more repeat buyers, or fit "
            "in Python with a prior on q that keeps it above 1 (docs/guide/data.md, "
            "\"New customers (T = 0) and degenerate data\")."
        )


def _diagnostics(model, hdi_prob: float) -> dict:
    table = model.summary(hdi_prob=hdi_prob)
    problems = model.check_convergence(warn=False)
    stats = model.idata_.sample_stats
    return {
        "parameters": table,
        "problems": problems,
        "divergences": int(stats["diverging"].sum()) if "diverging" in stats else 0,
        "max_r_hat": float(table["r_hat"].max()),
        "min_ess_bulk": float(table["ess_bulk"].min()),
        "converged": not problems,
    }


def analysis_steps(settings: AnalysisSettings) -> int:
    """Number of steps :func:`run_analysis` reports to its ``progress`` printer."""
    return (6 if settings.calibration_end is not None else 3) + (settings.model == "auto")


def run_analysis(
    transactions: pd.DataFrame,
    settings: AnalysisSettings,
    *,
    attributes: pd.DataFrame | None = None,
    source: str = "transactions",
    progress: Callable[[str], object] | None = None,
    progressbar: bool = False,
) -> Analysis:
    """Run the whole analysis on a purchase log (module docstring).

    Parameters
    ----------
    transactions
        One row per purchase with ``customer_id``, ``date`` and ``amount``
        (:func:`clvbayes.data.read.read_transactions` returns this); without an ``amount``
        column only the purchase side is analysed (module docstring).
    settings
        The analysis settings.
    attributes
        One row per customer: ``customer_id`` and the columns ``settings.covariates`` and
        ``settings.segment`` name (:func:`clvbayes.read_attributes`); joined by id, an id of the
        log without attributes is an error (:func:`clvbayes.covariates.join_attributes`).
    source
        What the data is, for the report (a file name, "CDNOW sample").
    progress
        A :class:`StepPrinter` (or any callable returning a context manager per step).
    progressbar
        Show the sampler's progress bars.

    Returns
    -------
    Analysis
    """
    from clvbayes import (
        calibration_holdout_split, churn_analysis, customer_equity,
        holdout_validation, lifecycle_stages, purchase_tracking, rfm_summary,
        stage_summary, value_concentration,
    )
    from clvbayes.value.quantities import expected_purchases

    settings.check()
    s = settings
    r = s.resolved()
    holdout = s.calibration_end is not None
    amounts = "amount" in transactions.columns
    amount = "amount" if amounts else None
    steps = progress or StepPrinter(analysis_steps(s), quiet=True)
    timings: dict[str, float] = {}

    @contextmanager
    def step(name: str, what: str):
        start = time.perf_counter()
        with steps(what):
            yield
        timings[name] = time.perf_counter() - start

    with step("summarise", "summarising the purchase log"):
        r["rows_after_observation_end"] = 0
        if s.observation_end is not None:  # "as of that date": later purchases are left out, and counted
            transactions, r["rows_after_observation_end"] = rows_until(transactions, s.observation_end)
        data = rfm_summary(transactions, observation_end=s.observation_end, time_unit=s.time_unit,
                           refunds=s.refunds, amount=amount)
        calibration = None
        if holdout:
            calibration = calibration_holdout_split(
                transactions, calibration_end=s.calibration_end, observation_end=s.observation_end,
                time_unit=s.time_unit, amount=amount, refunds=s.refunds,
            )
        data = _with_attributes(data, attributes, s, extra="error")
        if calibration is not None:  # customers first seen after the calibration end have attributes too
            calibration = _with_attributes(calibration, attributes, s, extra="ignore")
    bg_cal = gg_cal = validation = tracking = selection = None
    notes: list[str] = []
    caught: dict[str, list[str]] = {}
    chosen = s.model
    if s.model == "auto":
        with step("select", "comparing the purchase models (NUTS fits, PSIS-LOO)"):
            chosen, selection, candidates = _select_model(calibration if holdout else data, s, progressbar, caught,
                                                          holdout=calibration if holdout else None)
    family = get_family(chosen)
    models = f"{family.label} and Gamma-Gamma" if amounts else family.label
    if s.covariates:
        models += f" with covariates {', '.join(s.covariates)}"
    if s.pool_segments:
        models += f", segments of {s.segment} pooled"
    if holdout:
        with step("fit_calibration", f"fitting {models} (NUTS) to the calibration period"):
            if selection is not None:  # the candidate fitted to the calibration period
                bg_cal = candidates[chosen]
                caught[f"{chosen}_calibration"] = caught.pop(f"{chosen}_candidate")
            else:
                bg_cal = _fit_recorded(_purchase_model(chosen, calibration, s), s, progressbar,
                                       caught.setdefault(f"{chosen}_calibration", []))
            if amounts:
                gg_cal = _fit_recorded(_spend_model(_spend_data(calibration, notes, "calibration period"), s), s,
                                       progressbar, caught.setdefault("gamma_gamma_calibration", []))
                _require_mean_spend(gg_cal, "the calibration period")
        with step("holdout", "checking the forecast of the holdout period"), _recording(notes):
            validation = holdout_validation(
                bg_cal, calibration, gamma_gamma=gg_cal, hdi_prob=s.hdi_prob, n_draws=s.value_draws,
                random_seed=s.seed,
            )
        with step("tracking", "tracking repeat purchases period by period"), _recording(notes):
            # refunds never create a purchase occasion (tracking counts occasions only)
            purchases = transactions.loc[transactions["amount"] >= 0] if "amount" in transactions else transactions
            tracking = None if _too_many_cells_to_track(bg_cal, notes) else purchase_tracking(
                bg_cal, purchases, calibration_end=s.calibration_end, observation_end=s.observation_end,
                time_unit=s.time_unit, n_draws=s.value_draws, hdi_prob=s.hdi_prob,
            )
    with step("fit", f"fitting {models} (NUTS) to the whole observation period"):
        if selection is not None and not holdout:  # the candidate fitted to all the data
            bgnbd = candidates[chosen]
            caught[chosen] = caught.pop(f"{chosen}_candidate")
        else:
            bgnbd = _fit_recorded(_purchase_model(chosen, data, s), s, progressbar, caught.setdefault(chosen, []))
        gamma_gamma = None
        if amounts:
            gamma_gamma = _fit_recorded(_spend_model(_spend_data(data, notes, "whole period"), s), s, progressbar,
                                        caught.setdefault("gamma_gamma", []))
            _require_mean_spend(gamma_gamma, "the whole observation period")
        fitted = {chosen: bgnbd, "gamma_gamma": gamma_gamma, f"{chosen}_calibration": bg_cal,
                  "gamma_gamma_calibration": gg_cal}
        diagnostics = {name: {**_diagnostics(m, s.hdi_prob), "warnings": caught[name]}
                       for name, m in fitted.items() if m is not None}
    what = ("customer value, churn and equity over the posterior" if amounts
            else "purchases, P(alive) and churn over the posterior (no amounts: no CLV or equity)")
    with step("value", what), _recording(notes):
        churn = churn_analysis(
            bgnbd, gamma_gamma, data, period=r["period"], contact_cost=s.contact_cost, horizon=r["horizon"],
            discount_rate=s.discount_rate, margin=s.margin, hdi_prob=s.hdi_prob, n_draws=s.value_draws,
            segment="auto" if s.segment is None else s.segment,
        )
        clv = churn.metrics.get("clv")
        equity = customer_equity(clv, acquisition_cost=s.acquisition_cost) if amounts else None
        concentration = value_concentration(clv) if amounts else None
        purchases = expected_purchases(bgnbd, data, horizon=r["horizon"], hdi_prob=s.hdi_prob, n_draws=s.value_draws,
                                       segment="auto" if s.segment is None else s.segment)
        stages = lifecycle_stages(churn, new_window=r["new_window"])
        stage_table = stage_summary(churn, stages)
        pooling = bgnbd.shrinkage(hdi_prob=s.hdi_prob) if s.pool_segments else None
        customers = _customer_table(data, churn, clv, purchases, stages,
                                    list(dict.fromkeys([*s.covariates, *([s.segment] if s.segment else [])])))

    r["source"] = source
    r["clvbayes_version"] = __version__
    r["amounts"] = amounts
    r["purchase_model"] = {"family": family.name, "label": family.label, "reference": family.reference,
                           "chosen_by": "PSIS-LOO (model='auto')" if selection is not None else "given (model setting)"}
    return Analysis(
        settings=r, transactions=transactions, data=data, purchase_model=bgnbd, gamma_gamma=gamma_gamma,
        calibration=calibration, purchase_model_calibration=bg_cal, gamma_gamma_calibration=gg_cal,
        model_selection=selection, pooling=pooling,
        validation=validation, tracking=tracking, churn=churn, equity=equity, concentration=concentration,
        stages=stages, stage_table=stage_table, customers=customers, diagnostics=diagnostics, timings=timings,
        notes=notes,
    )


def _with_attributes(frame: pd.DataFrame, attributes: pd.DataFrame | None, s: AnalysisSettings, *,
                     extra: str) -> pd.DataFrame:
    """The summary with the attribute columns the settings name (covariates, segment) joined
    by customer id; unchanged without attributes. Missing or extra ids are errors that name
    the customers (:func:`clvbayes.covariates.join_attributes`; ``extra="ignore"`` for the
    calibration summary, which lacks the customers acquired later)."""
    from clvbayes.covariates import join_attributes

    wanted = [*s.covariates, *([s.segment] if s.segment is not None else [])]
    if attributes is None:
        if wanted:
            raise DataValidationError(
                f"The settings name the attribute columns {wanted} (covariates/segment) but no customer attributes "
                "were given: pass a table with customer_id and those columns (clvbayes fit --attributes FILE)."
            )
        return frame
    missing = [c for c in dict.fromkeys(wanted) if c not in attributes.columns]
    if missing:
        raise DataValidationError(
            f"The customer attributes have no column {', '.join(map(repr, missing))}; columns present: "
            f"{[c for c in attributes.columns if c != 'customer_id']}."
        )
    name = frame.index.name or "customer_id"
    joined = join_attributes(frame.rename_axis("customer_id").reset_index(), attributes,
                             columns=list(dict.fromkeys(wanted)), extra=extra)
    out = joined.set_index("customer_id").rename_axis(name)
    out.attrs.update(frame.attrs)
    return out


def _purchase_model(family: str, data: pd.DataFrame, s: AnalysisSettings):
    """The purchase model of the run: the family's, with the covariates on purchase and dropout
    (and the segments pooled with ``pool_segments``)."""
    if s.pool_segments:
        return _pooled_model(family, data, s)
    if s.covariates:
        from clvbayes.models.covariate import CovariatePurchaseModel

        return CovariatePurchaseModel(data, family=family, purchase_covariates=list(s.covariates),
                                      dropout_covariates=list(s.covariates))
    return model_class(family)(data)


def _pooled_model(family: str, data: pd.DataFrame, s: AnalysisSettings):
    """:class:`~clvbayes.HierarchicalPurchaseModel` by ``s.segment``; its refusals (numeric
    covariates, a missing label, a segment of one customer) as data errors naming the fix."""
    from clvbayes.covariates.design import _is_categorical
    from clvbayes.models.hierarchical import HierarchicalPurchaseModel

    numeric = [c for c in s.covariates if not _is_categorical(data[c])]
    if numeric:
        raise DataValidationError(
            f"Pooling by segment (--pool-segments) takes categorical covariates only, and {numeric} "
            f"{'is' if len(numeric) == 1 else 'are'} numeric: bin {'it' if len(numeric) == 1 else 'them'} in the "
            "attributes file (e.g. age bands such as '18-29'), or leave --pool-segments out."
        )
    try:
        return HierarchicalPurchaseModel(data, family=family, segment=s.segment,
                                         purchase_covariates=list(s.covariates),
                                         dropout_covariates=list(s.covariates))
    except DataValidationError:
        raise
    except ValueError as err:
        raise DataValidationError(f"Pooling by segment {s.segment!r} (--pool-segments): {err}") from err


def _spend_model(data: pd.DataFrame, s: AnalysisSettings):
    """The spend model of the run: Gamma-Gamma, with the covariates on spend."""
    if s.covariates:
        from clvbayes.models.covariate_spend import CovariateSpendModel

        return CovariateSpendModel(data, covariates=list(s.covariates))
    from clvbayes.models.gamma_gamma import GammaGammaModel

    return GammaGammaModel(data)


def _too_many_cells_to_track(model, notes: list[str]) -> bool:
    """Whether tracking must be left out (a model with more cells than purchase_tracking takes)."""
    from clvbayes.value.validation import MAX_TRACKING_CELLS

    if not callable(getattr(model, "cell_draws", None)) or model.n_cells <= MAX_TRACKING_CELLS:
        return False
    notes.append(f"purchase tracking left out: the covariates put the customers in {model.n_cells:,} cells "
                 f"(continuous covariates), more than the {MAX_TRACKING_CELLS:,} tracking evaluates one by one.")
    return True


def _select_model(data: pd.DataFrame, s: AnalysisSettings, progressbar: bool, caught: dict, *,
                  holdout: pd.DataFrame | None) -> tuple[str, dict, dict]:
    """Fit every registered family to ``data`` and pick the best by PSIS-LOO.

    Returns the chosen family's name, the selection record (the comparison table and the
    reason, for the report) and the fitted candidates (the chosen one is reused).
    """
    from clvbayes.comparison.compare import compare_models

    candidates = {name: _fit_recorded(_purchase_model(name, data, s), s, progressbar,
                                      caught.setdefault(f"{name}_candidate", []))
                  for name in family_names()}
    table = compare_models(candidates, holdout=holdout)
    chosen = str(table.index[0])
    best = table.iloc[0]
    runner = table.iloc[1] if len(table) > 1 else None
    reason = (f"{get_family(chosen).label} has the highest expected log predictive density "
              f"(elpd_loo {best['elpd_loo']:.1f}, SE {best['se']:.1f})")
    if runner is not None:
        reason += (f"; next: {get_family(str(table.index[1])).label} by {runner['elpd_diff']:.1f} "
                   f"(SE of the difference {runner['dse']:.1f})")
        if runner["elpd_diff"] < 2 * runner["dse"]:
            reason += ": less than two standard errors apart, so the data barely tell them apart"
    reason += "."
    for name in family_names():
        if name != chosen:
            caught.pop(f"{name}_candidate", None)
    return chosen, {"by": "PSIS-LOO", "table": table, "reason": reason, "fitted_to": "calibration period"
                    if holdout is not None else "all the data"}, candidates


def _customer_table(data, churn, clv, purchases, stages, attribute_columns=()) -> pd.DataFrame:
    plo, phi = hdi_names(purchases.settings["hdi_prob"])
    out = pd.DataFrame(index=data.index)
    for col in ("frequency", "recency", "T", "monetary_value", *attribute_columns):
        if col in data:
            out[col] = data[col]
    out["first_purchase"] = data["first_purchase"].dt.date.astype(str) if "first_purchase" in data else ""
    out["p_alive"] = churn.customers["p_alive"]
    out["expected_purchases"] = purchases.summary["mean"]
    out["expected_purchases_" + plo] = purchases.summary[plo]
    out["expected_purchases_" + phi] = purchases.summary[phi]
    if clv is not None:
        lo, hi = hdi_names(clv.settings["hdi_prob"])
        out["clv"] = clv.summary["mean"]
        out["clv_" + lo] = clv.summary[lo]
        out["clv_" + hi] = clv.summary[hi]
    out["stage"] = stages.reindex(data.index).astype(str)
    cust = purchases.customers
    labels = cust.segment_labels
    out["segment"] = np.asarray(labels, dtype=object)[cust.segments] if len(labels) else ""
    return out


def _plain(value):
    """JSON-safe plain Python values (NaN/inf -> None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    return value


def _frame_records(df: pd.DataFrame) -> dict:
    return {str(idx): _plain(row.to_dict()) for idx, row in df.iterrows()}


def _summary_dict(a: Analysis) -> dict:
    tx = a.transactions
    out: dict = {
        "clvbayes_version": a.settings["clvbayes_version"],
        "settings": _plain(a.settings),
        "data": {
            "source": a.settings["source"],
            "transactions": int(len(tx)),
            "customers": int(len(a.data)),
            "repeat_buyers": int((a.data["frequency"] > 0).sum()),
            # first seen on the last day (T = 0): in every table, with P(alive) = 1
            "customers_first_seen_on_last_day": int((a.data["T"] == 0).sum()),
            "first_date": str(pd.Timestamp(tx["date"].min()).date()),
            "last_date": str(pd.Timestamp(tx["date"].max()).date()),
            "total_spend": float(tx["amount"].sum()) if "amount" in tx else None,
            "amounts": a.has_amounts,
            "rows_after_observation_end": int(a.settings.get("rows_after_observation_end", 0)),
        },
        "purchase_model": _plain(a.settings.get("purchase_model", {})),
        "parameters": {},
        "diagnostics": {},
    }
    if a.model_selection is not None:
        out["model_selection"] = {
            "by": a.model_selection["by"], "reason": a.model_selection["reason"],
            "fitted_to": a.model_selection["fitted_to"], "table": _frame_records(a.model_selection["table"]),
        }
    for name, d in a.diagnostics.items():
        out["parameters"][name] = _frame_records(d["parameters"])
        out["diagnostics"][name] = _plain({k: v for k, v in d.items() if k != "parameters"})
    if a.pooling is not None:
        out["pooling"] = {"segment": a.settings["segment"], "interval_mass": a.settings["hdi_prob"],
                          "by_segment": _frame_records(a.pooling)}
    if a.validation is not None:
        v = a.validation
        metrics = v.metrics.copy()
        metrics.columns = [f"{q}_{m}" for q, m in metrics.columns]
        out["holdout"] = {
            "duration": v.duration,
            "total_purchases": _plain(v.total.to_dict()),
            "total_spend": _plain(v.total_spend.to_dict()) if v.total_spend is not None else None,
            "interval_mass": v.hdi_prob,
            "by_frequency": _frame_records(v.by_frequency),
            "errors": _frame_records(metrics),
        }
    if a.has_amounts:
        eq = a.equity
        out["equity"] = {
            "total": _plain(eq.summary.loc["total"].to_dict()),
            "by_segment": _frame_records(eq.summary.drop(index="total")),
            "segment_kind": eq.summary.index.name,
            "acquisition": _frame_records(eq.acquisition) if eq.acquisition is not None else None,
        }
        out["concentration"] = _frame_records(a.concentration)
    else:
        out["not_computed"] = {"reason": NO_AMOUNTS, "figures": list(MONEY_FIGURES)}
    ch = a.churn
    out["churn"] = {
        "period": a.settings["period"],
        "total": _plain(ch.summary.loc["total"].to_dict()),
        "by_segment": _frame_records(ch.summary.drop(index="total")),
    }
    out["stages"] = _frame_records(a.stage_table)
    out["notes"] = list(a.notes)
    out["timings_seconds"] = _plain(a.timings)
    return out
