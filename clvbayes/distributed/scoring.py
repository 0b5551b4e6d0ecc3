"""Scoring a customer base on Dask: per-customer CLV, P(alive), expected purchases (and
lifecycle stage) partition by partition, and the posterior of the totals reduced across
partitions.

Each partition of the customer summary is scored by the in-memory engine,
:func:`clvbayes.customer_metrics` (and, for stages, :func:`clvbayes.value.churn.churn_report` +
:func:`clvbayes.lifecycle_stages`), with the same paired parameter draws as in memory
(:func:`clvbayes.value.draws.joint_draws`, thinned once on the client). The draws, a few
arrays of length ``n_draws``, are the only model state sent to the workers: with a
``dask.distributed`` client they are scattered once to every worker
(``client.scatter(..., broadcast=True)``); otherwise they are one node of the task graph.
The fitted models themselves (PyMC models, InferenceData) never leave the client.

**Why the results equal the in-memory ones.** A customer's summary (mean, sd, quantiles,
HDI over the draws) depends only on that customer's row and on the draws, so it does not
depend on how customers are split into partitions. A total, e.g. equity = Σ_i CLV_i(θ), is
a sum over customers *per draw θ*: each partition returns its per-draw sums per segment (an
array of length ``n_draws`` per segment), and those are added across partitions draw by
draw. The posterior of the total (mean, HDI) is then summarised from the reduced draws
exactly as in memory (:meth:`clvbayes.CustomerValue.total_summary`,
:func:`clvbayes.customer_equity`); only the order of the floating-point additions differs.

**Models with covariates.** A covariate model's customers have parameters by their cell
(:class:`clvbayes.value.draws.CellDraws`). What goes to the workers in place of its draws is
its :class:`clvbayes.covariates.cells.CellEncoder` (``model.cell_encoder(n_draws)``): the base
and coefficient draws on the value grid, the fitted designs' encodings (levels, centres and
scales) and, for :class:`~clvbayes.HierarchicalPurchaseModel`, the segment labels; not the
fitted customers. Each partition carries its customers' attribute columns and encodes them
itself, exactly as the fit did (:meth:`clvbayes.covariates.design.Design.transform`): a
level or a segment the fit did not see, or a missing value, fails the computation with the
column and the customers named. Its customers are put in cells (distinct segment and
design rows), given their cells' parameter draws and valued by the same engine as in memory
(:func:`clvbayes.value.engine.stream_cells`), on the same path for every partition
(``cell_path``), so a customer's values do not depend on the other customers of its
partition. Customers need not be customers of the fit (e.g. the whole base, when the model
was fitted on a sample of it); for the fitted customers the results equal
:func:`clvbayes.customer_metrics` on the models.

**Stages and churn.** A lifecycle stage (:mod:`clvbayes.value.lifecycle`) uses
per-customer rules only (written off by the expected-value rule, tenure, "slipping"):
none depends on other customers, so stages per partition equal the in-memory stages.
The churn totals (expected alive, dropouts, churn damage, customers written off) and the
equity per stage are sums over customers per draw, reduced like the other totals
(:meth:`DaskScores.churn_summary`, :meth:`DaskScores.stage_summary`). The one global
rule of the churn report, "at risk = slipping among the top ``value_share`` of all
customers by value if alive", needs a ranking of the whole base: each partition returns
its customers' value if alive and slipping flags, the client ranks them (ties by position,
as pandas' ``rank(method="first")`` on the concatenated partitions), and a second pass
sums the CLV per draw of the at-risk customers of each partition (the value at risk).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.covariates.cells import CellEncoder, max_cells
from clvbayes.distributed._dask import is_dask_collection, require_dask
from clvbayes.value.arguments import check_discount_rate, check_margin, check_number
from clvbayes.value.churn import CHURN_QUANTITIES, CHURN_TOTALS, churn_report, churn_summary_table
from clvbayes.value.customers import DEFAULT_ANNUAL_DISCOUNT_RATE, quantile_names, resolve_time_unit
from clvbayes.value.draws import GG_PARAMS, ParameterDraws, has_cells, joint_draws, pairing_index, parameter_draws
from clvbayes.value.engine import MAX_CELL_PASSES
from clvbayes.value.lifecycle import STAGES, lifecycle_stages, stage_table
from clvbayes.value.quantities import (
    QUANTITIES,
    _check_finite_mean_spend,
    customer_metrics,
    hdi_names,
    summarise_draws,
)

__all__ = ["DaskScores", "score_customers"]

# Partitions' per-draw totals are added in groups of this many (a tree reduction).
_FAN_IN = 16
# Churn totals that add across partitions (the churn rate is their ratio, per draw).
_CHURN_SUMS = ("alive", "dropouts", "churn_damage")


@dataclass(frozen=True)
class _Config:
    quantities: tuple[str, ...]
    horizon: float
    discount_rate: float | str
    margin: float | str
    time_unit: str
    segment: str | None
    hdi_prob: float
    quantiles: tuple[float, ...]
    period: float | None
    contact_cost: float | None
    new_window: float | None
    risk_p_alive: float
    risk_threshold: float
    cell_path: str = "auto"

    def columns(self) -> list[str]:
        lo, hi = hdi_names(self.hdi_prob)
        stats = ["mean", "sd", *quantile_names(self.quantiles), lo, hi]
        cols = [f"{q}_{s}" for q in self.quantities for s in stats]
        return cols + (["stage"] if self.period is not None else [])


def _per_customer_arg(pdf: pd.DataFrame, value: float | str) -> float | pd.Series:
    return pdf[value] if isinstance(value, str) else value


def _empty_frame(cfg: _Config, index: pd.Index) -> pd.DataFrame:
    cols = {c: pd.Series(np.empty(len(index)), index=index) for c in cfg.columns() if c != "stage"}
    out = pd.DataFrame(cols, index=index)
    if cfg.period is not None:
        out["stage"] = pd.Categorical([], categories=list(STAGES), ordered=True)
    return out


def _partition_models(models: tuple, pdf: pd.DataFrame) -> tuple:
    """The workers' models for the customers of ``pdf``: parameter draws as they are, and a
    covariate model's :class:`~clvbayes.covariates.cells.CellEncoder` turned into the cell
    draws of these customers (encoded from their own attribute columns: no other partition
    is read)."""
    return tuple(m.cell_draws(pdf) if isinstance(m, CellEncoder) else m for m in models)


def _score_partition(pdf: pd.DataFrame, models: tuple, cfg: _Config) -> tuple[pd.DataFrame, dict, dict | None]:
    """Score one partition: (per-customer frame, {"counts": {segment: n}, quantity: {segment:
    per-draw sums}}, and with stages the inputs of the global at-risk ranking: each
    customer's value if alive and whether they are slipping, in the partition's order)."""
    index = pdf.index.copy()
    index.name = index.name or "customer_id"
    if len(pdf) == 0:
        empty_risk = {"value_if_alive": np.empty(0), "slipping": np.empty(0, dtype=bool)}
        return (_empty_frame(cfg, index), {"counts": {}, **{q: {} for q in cfg.quantities}},
                empty_risk if cfg.period is not None else None)
    bg, gg = _partition_models(models, pdf)
    margin = _per_customer_arg(pdf, cfg.margin)
    discount_rate = _per_customer_arg(pdf, cfg.discount_rate)

    def evaluate(quantities: tuple[str, ...], horizons: dict | None) -> dict:
        needs_spend = any(QUANTITIES[q][1] for q in quantities)
        return customer_metrics(
            bg, gg if needs_spend else None, pdf, quantities=quantities, horizon=cfg.horizon, horizons=horizons,
            discount_rate=discount_rate, margin=margin, time_unit=cfg.time_unit, segment=cfg.segment,
            hdi_prob=cfg.hdi_prob, quantiles=cfg.quantiles, keep_draws=False, cell_path=cfg.cell_path,
        )

    churn_horizons = None if cfg.period is None else {"dropout": cfg.period}
    # One pass for the scores and the churn report (their factor tables are shared), unless
    # the scores ask for dropout over another horizon than the churn period.
    shared = cfg.period is not None and ("dropout" not in cfg.quantities or cfg.horizon == cfg.period)
    extra = tuple(q for q in CHURN_QUANTITIES if q not in cfg.quantities) if shared else ()
    metrics = evaluate(cfg.quantities + extra, churn_horizons if shared else None)
    parts = {}
    for q in cfg.quantities:
        s = metrics[q].summary
        parts.update({f"{q}_{c}": s[c].to_numpy() for c in s.columns})
    frame = pd.DataFrame(parts, index=index)
    totals: dict = {"counts": _per_segment(metrics[cfg.quantities[0]])[1]}
    for q in cfg.quantities:
        totals[q] = _per_segment(metrics[q])[0]
    if cfg.period is not None:
        churn_metrics = metrics if shared else evaluate(CHURN_QUANTITIES, churn_horizons)
        report = churn_report(
            churn_metrics, period=cfg.period, contact_cost=cfg.contact_cost, risk_p_alive=cfg.risk_p_alive,
            risk_threshold=cfg.risk_threshold,
        )
        stage = lifecycle_stages(report, new_window=cfg.new_window)
        frame["stage"] = pd.Categorical(stage.to_numpy(), categories=list(STAGES), ordered=True)
        totals.update(_churn_parts(report, stage))
        risk = {"value_if_alive": report.customers["value_if_alive"].to_numpy(),
                "slipping": report.customers["slipping"].to_numpy(dtype=bool)}
        return frame, totals, risk
    return frame, totals, None


def _per_segment(cv) -> tuple[dict, dict]:
    """Per segment label of a :class:`~clvbayes.CustomerValue`: the per-draw sums over its
    customers (flat arrays) and their number."""
    labels = list(cv.totals["segment"].to_numpy())
    tot = cv.totals.to_numpy().reshape(len(labels), -1)
    counts = np.bincount(cv.customers.segments, minlength=len(labels))
    return ({lab: tot[k].copy() for k, lab in enumerate(labels)},
            {lab: int(n) for lab, n in zip(labels, counts, strict=True)})


def _top_share(values: np.ndarray, share: float) -> np.ndarray:
    """True for the top ``ceil(share * n)`` values; ties go to the earlier position, as
    ``pandas.Series.rank(ascending=False, method="first") <= k`` in :func:`clvbayes.churn_analysis`."""
    top = np.zeros(values.size, dtype=bool)
    k = math.ceil(share * values.size)
    top[np.argsort(-values, kind="stable")[:k]] = True
    return top & ~np.isnan(values)


def _risk_partition(pdf: pd.DataFrame, models: tuple, cfg: _Config, at_risk: np.ndarray) -> tuple[dict, pd.Index]:
    """Per-draw CLV of a partition's at-risk customers per segment (the value at risk) and
    their number per segment; their ids."""
    if len(pdf) != at_risk.size:
        raise RuntimeError(
            f"A partition of the summary has {len(pdf)} customers on the second pass and {at_risk.size} on the "
            "first: the summary is not deterministic; persist it (summary.persist()) before scoring."
        )
    if not at_risk.any():
        return {}, pdf.index[:0]
    sub = pdf[at_risk]
    clv = customer_metrics(
        *_partition_models(models, sub), sub, quantities=("clv",), horizon=cfg.horizon,
        discount_rate=_per_customer_arg(sub, cfg.discount_rate), margin=_per_customer_arg(sub, cfg.margin),
        time_unit=cfg.time_unit, segment=cfg.segment, hdi_prob=cfg.hdi_prob, quantiles=(), keep_draws=False,
        cell_path=cfg.cell_path,
    )["clv"]
    sums, counts = _per_segment(clv)
    return {"value_at_risk": sums, "at_risk": counts}, sub.index


def _churn_parts(report, stage: pd.Series) -> dict:
    """A partition's additive churn and stage totals: per segment, the per-draw expected
    alive, dropouts and churn damage and the number written off; per stage, customers,
    expected alive and per-draw equity (what :func:`clvbayes.churn_analysis` and
    :func:`clvbayes.stage_summary` sum over customers)."""
    labels = list(report.draws["segment"].to_numpy())
    parts: dict = {
        f"churn:{v}": {lab: report.draws[v].isel(segment=k).to_numpy().copy() for k, lab in enumerate(labels)}
        for v in _CHURN_SUMS
    }
    lost = report.summary["lost"]
    parts["churn:lost"] = {lab: int(lost.iloc[k]) for k, lab in enumerate(labels)}
    codes = stage.cat.codes.to_numpy()
    clv = report.metrics["clv"]
    equity = clv.totals_by(codes)
    pa = report.customers["p_alive"].to_numpy()
    parts["stage:equity"] = {STAGES[int(g)]: t.to_numpy().reshape(-1).copy()
                             for g, t in zip(equity["group"].to_numpy(), equity, strict=True)}
    parts["stage:customers"] = {STAGES[k]: int((codes == k).sum()) for k in np.unique(codes)}
    parts["stage:alive"] = {STAGES[k]: float(pa[codes == k].sum()) for k in np.unique(codes)}
    return parts


def _write_partition(frame: pd.DataFrame, path: str) -> None:
    # The customer id as a plain column: Dask's reader then needs no index metadata
    # (whose handling warns under pandas 3.1); the index is set again after reading.
    frame.reset_index().to_parquet(path, index=False)


def _add_totals(*parts: dict) -> dict:
    """Per-draw sums of several partitions' totals, segment by segment."""
    out: dict = {}
    for part in parts:
        for name, by_seg in part.items():
            acc = out.setdefault(name, {})
            for label, v in by_seg.items():
                acc[label] = acc[label] + v if label in acc else (v.copy() if isinstance(v, np.ndarray) else v)
    return out


@dataclass
class DaskScores:
    """Scores of a customer base computed on Dask (:func:`score_customers`).

    Attributes
    ----------
    customers : dask.dataframe.DataFrame
        Per customer: ``{quantity}_mean``, ``_sd``, the quantiles and the HDI bounds
        (``clv_hdi_3%``, ``clv_hdi_97%`` for 94%: the columns of
        :attr:`clvbayes.CustomerValue.summary`, prefixed) and, with ``period``, ``stage``.
        Read back from ``output`` when given; otherwise lazy (computing it scores again).
    totals : dict[str, xarray.DataArray]
        Per quantity, the per-draw sums over the customers of each segment, dims
        ``(segment, chain, draw)`` (as :attr:`clvbayes.CustomerValue.totals`).
    counts : pandas.Series
        Customers per segment.
    settings : dict
        What was computed (horizon, discounting, draws' source and count, HDI mass, ...).
    output : str or None
        Where the per-customer scores were written (Parquet).
    churn : xarray.Dataset or None
        With ``period``: per-draw expected alive, dropouts, churn rate, churn damage and
        value at risk per segment (as :attr:`clvbayes.ChurnReport.draws`);
        ``attrs["lost"]`` and ``attrs["at_risk"]``: customers written off and at risk per
        segment. Summarised by :meth:`churn_summary`.
    stages : dict or None
        With ``period``: per lifecycle stage, customers, expected alive and per-draw
        equity (summarised by :meth:`stage_summary`).
    at_risk : pandas.Index or None
        With ``period``: the ids of the at-risk customers (slipping, among the top
        ``value_share`` by value if alive), the report's ``at_risk`` flag.
    """

    customers: object
    totals: dict[str, xr.DataArray]
    counts: pd.Series
    settings: dict = field(default_factory=dict)
    output: str | None = None
    churn: xr.Dataset | None = None
    stages: dict | None = field(default=None, repr=False)
    at_risk: pd.Index | None = field(default=None, repr=False)
    # Keeps the scattered draws alive while ``customers`` is lazy.
    _payload: object = field(default=None, repr=False)

    def total(self, quantity: str) -> xr.DataArray:
        """Per-draw sum over all customers, dims ``(chain, draw)`` (:attr:`CustomerValue.total`)."""
        return self._totals(quantity).sum("segment")

    def total_summary(self, quantity: str, hdi_prob: float | None = None) -> pd.Series:
        """Mean, sd and HDI of the sum over all customers (e.g. ``"p_alive"``: expected alive)."""
        return summarise_draws(self.total(quantity).to_numpy().reshape(-1), hdi_prob or self.settings["hdi_prob"])

    def equity(self) -> pd.DataFrame:
        """Customer equity per segment and in total, as :attr:`clvbayes.value.equity.CustomerEquity.summary`:
        ``customers``, ``mean``, ``sd``, HDI, ``per_customer`` and ``share``."""
        seg = self._totals("clv")
        total = seg.sum("segment")
        total_mean = float(total.mean())
        hdi_prob = self.settings["hdi_prob"]
        labels = [str(s) for s in seg["segment"].to_numpy()]
        rows = {}
        for k, label in enumerate(labels + ["total"]):
            v = (total if label == "total" else seg.isel(segment=k)).to_numpy().reshape(-1)
            n = int(self.counts.sum() if label == "total" else self.counts.iloc[k])
            s = summarise_draws(v, hdi_prob)
            rows[label] = {"customers": n, **s.to_dict(), "per_customer": s["mean"] / n if n else math.nan,
                           "share": s["mean"] / total_mean if total_mean else math.nan}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = self.settings.get("segment") or "segment"
        return out

    def churn_summary(self) -> pd.DataFrame:
        """Churn per segment and in total, as :attr:`clvbayes.ChurnReport.summary`:
        ``customers``, ``lost`` (written off), ``at_risk``, and mean and HDI of expected
        alive, dropouts in the period, churn rate, churn damage and value at risk.

        Needs ``period`` (with ``contact_cost`` and ``new_window``) in :func:`score_customers`.
        """
        churn = self._need("churn")
        counts = pd.DataFrame({"customers": self.counts.to_numpy(), "lost": churn.attrs["lost"],
                               "at_risk": churn.attrs["at_risk"]},
                              index=[str(label) for label in self.counts.index])
        return churn_summary_table(churn, counts, self.settings["hdi_prob"], self.settings.get("segment") or "segment")

    def stage_summary(self) -> pd.DataFrame:
        """Customers, expected alive and equity (mean and HDI) per lifecycle stage, as
        :func:`clvbayes.stage_summary` of the in-memory report. Needs ``period``."""
        st = self._need("stages")
        return stage_table(st["customers"], st["alive"], st["equity"], self.settings["hdi_prob"])

    def _need(self, name: str):
        value = getattr(self, name)
        if value is None:
            raise ValueError(
                f"No {name} were computed: call score_customers with period=..., contact_cost=... and new_window=...."
            )
        return value

    def _totals(self, quantity: str) -> xr.DataArray:
        if quantity not in self.totals:
            raise KeyError(f"{quantity!r} was not scored; scored: {list(self.totals)}.")
        return self.totals[quantity]


def _number(value: object, name: str, *, allow_inf: bool = False) -> float:
    return check_number(value, name, allow_inf=allow_inf)


def _rate_or_column(value: object, name: str, columns: Sequence[str]) -> float | str:
    if isinstance(value, str):
        if value not in columns:
            raise ValueError(f"{name}={value!r} is not a column of the summary (columns: {list(columns)}).")
        return value
    # the in-memory rule ([0, 1]), on the client before any partition is read
    return check_margin(value) if name == "margin" else check_discount_rate(value)


def _active_client():
    """The current ``dask.distributed`` client, or None (also when distributed is not installed)."""
    try:
        from distributed import get_client
    except ImportError:  # pragma: no cover - distributed is optional
        return None
    try:
        return get_client()
    except ValueError:
        return None


def _covariate(model) -> bool:
    return callable(getattr(model, "cell_encoder", None))


def _worker_models(bgnbd, gamma_gamma, n_draws: int | None) -> tuple[tuple, ParameterDraws]:
    """The purchase and spend parts of the paired draws for the workers, and their grid.

    Plain models: the parts of :func:`clvbayes.value.draws.joint_draws`. With a covariate
    model: its :class:`~clvbayes.covariates.cells.CellEncoder` (or a plain model's draws),
    each side thinned to about ``n_draws`` and paired on the grid of
    :func:`clvbayes.value.draws.joint_cell_draws`, so that the draws equal the in-memory ones.
    """
    if has_cells(bgnbd) and not _covariate(bgnbd) or has_cells(gamma_gamma) and not _covariate(gamma_gamma):
        raise TypeError("score_customers takes fitted models, not CellDraws: cell draws are tied to one table of "
                        "customers, while each partition's customers are encoded from their attribute columns.")
    if not (_covariate(bgnbd) or _covariate(gamma_gamma)):
        draws = joint_draws(bgnbd, gamma_gamma, n_draws)
        if gamma_gamma is not None:
            _check_finite_mean_spend(draws)
        return (draws.select(bgnbd.family.param_names, bgnbd.family.name),
                draws.select(GG_PARAMS) if gamma_gamma is not None else None), draws
    sides = [m.cell_encoder(n_draws) if _covariate(m) else parameter_draws(m, n_draws) for m in (bgnbd, gamma_gamma)
             if m is not None]
    if gamma_gamma is not None and isinstance(sides[1], ParameterDraws):
        sides[1] = sides[1].select(GG_PARAMS)
    bg, gg = sides[0], (sides[1] if gamma_gamma is not None else None)
    grid = gg if gg is not None and bg.source == "point" and gg.source == "posterior" else bg
    paired = []
    for side in (bg, gg):
        if isinstance(side, CellEncoder):
            side = side.on_grid(grid.n, grid.chain, grid.draw)
        elif side is not None:
            index = pairing_index(side.n, grid.n)
            side = ParameterDraws({k: np.ascontiguousarray(v[index]) for k, v in side.values.items()}, grid.chain,
                                  grid.draw, side.source, side.family)
        paired.append(side)
    source = "posterior" if "posterior" in (bg.source, getattr(gg, "source", None)) else "point"
    if gg is not None:  # q is never linked to covariates: its draws are the base ones
        q = paired[1].base["q"] if isinstance(paired[1], CellEncoder) else paired[1]["q"]
        _check_finite_mean_spend(ParameterDraws({"q": np.ravel(q)}, grid.chain, grid.draw, source))
    return tuple(paired), ParameterDraws({}, grid.chain, grid.draw, source, None)


def score_customers(
    bgnbd,
    gamma_gamma,
    summary,
    *,
    horizon: float,
    discount_rate: float | str = DEFAULT_ANNUAL_DISCOUNT_RATE,
    margin: float | str = 1.0,
    quantities: Sequence[str] = ("clv", "p_alive", "expected_purchases"),
    period: float | None = None,
    contact_cost: float | None = None,
    new_window: float | None = None,
    risk_p_alive: float = 0.7,
    risk_threshold: float = 0.1,
    value_share: float = 0.2,
    segment: str | None = None,
    hdi_prob: float = 0.94,
    quantiles: Sequence[float] = (),
    n_draws: int | None = None,
    time_unit: str | None = None,
    output: str | None = None,
    cell_path: str = "auto",
) -> DaskScores:
    """Score every customer of a Dask customer summary with the posterior draws, partition
    by partition, and reduce the per-draw totals across partitions (module docstring).

    Parameters
    ----------
    bgnbd, gamma_gamma
        Fitted :class:`~clvbayes.BetaGeoModel` (any family) and :class:`~clvbayes.GammaGammaModel`
        (posteriors, or MLE point estimates), or models with covariates:
        :class:`~clvbayes.CovariatePurchaseModel`, :class:`~clvbayes.HierarchicalPurchaseModel`,
        :class:`~clvbayes.CovariateSpendModel` (module docstring, "Models with covariates").
        ``gamma_gamma`` may be None when no quantity needs spend.
    summary
        Dask DataFrame of per-customer summaries indexed by customer id (as
        :func:`clvbayes.rfm_summary` returns in pandas: ``frequency``, ``recency``, ``T``,
        ``monetary_value``, ...). Each customer must be in one partition only. With a
        covariate model, every partition also holds the model's covariate columns (and the
        segment column of a hierarchical model).
    horizon
        Future period in the data's time unit (``inf`` for CLV's DERT form; expected
        purchases need a finite one).
    discount_rate, margin
        As in :func:`clvbayes.customer_metrics`: a number, or the name of a column of
        ``summary`` holding per-customer values.
    quantities
        Names from :data:`clvbayes.value.QUANTITIES`.
    period, contact_cost, new_window
        With ``period`` (the churn period of :func:`clvbayes.churn_analysis`), also a
        ``stage`` column (:func:`clvbayes.lifecycle_stages`); ``contact_cost`` and
        ``new_window`` are then required. ``risk_p_alive``, ``risk_threshold`` and
        ``value_share`` as in :func:`clvbayes.churn_analysis`; the at-risk customers (the
        slipping ones among the top ``value_share`` of *all* customers by value if alive)
        need a global ranking: every customer's value if alive comes back to the client
        (9 bytes per customer), and the CLV of the at-risk ones is computed again in a
        second pass over the summary's partitions (persist the summary first).
    segment
        Segments of the totals: None (one ``all`` segment), ``"cohort"`` (acquisition
        month from ``first_purchase``) or a column name; ``"auto"`` as in memory.
    hdi_prob, quantiles
        Per-customer summary settings (quantiles: none by default).
    n_draws
        Use about this many evenly thinned joint draws (default: all).
    time_unit
        The summary's time unit (default: its ``attrs["time_unit"]``, else weeks).
    output
        A Parquet directory: the per-customer scores are written there in the same pass
        that reduces the totals, and :attr:`DaskScores.customers` reads them back.
    cell_path
        Covariate models: the engine's path (:func:`clvbayes.value.engine.stream_cells`),
        the same for every partition. ``"auto"``: ``"tables"`` when the covariates are all
        categorical and their levels (times the segments) make at most
        :data:`~clvbayes.value.engine.MAX_CELL_PASSES` cells, else ``"rows"``. In memory,
        ``"auto"`` decides by the cells the whole table holds; the two paths agree to 1e-10.

    Returns
    -------
    DaskScores
    """
    dd = require_dask("score_customers")
    import dask

    if not is_dask_collection(summary):
        raise TypeError(
            f"summary must be a Dask DataFrame, got {type(summary).__name__}; for a pandas summary use "
            "clvbayes.customer_metrics."
        )
    quantities = tuple(quantities)
    unknown = [q for q in quantities if q not in QUANTITIES]
    if unknown or not quantities:
        raise ValueError(f"Unknown quantities {unknown}; choose from {list(QUANTITIES)}.")
    if len(set(quantities)) != len(quantities):
        raise ValueError(f"quantities has duplicates: {list(quantities)}.")
    columns = list(summary.columns)
    needs_spend = any(QUANTITIES[q][1] for q in quantities) or period is not None
    if needs_spend and gamma_gamma is None:
        raise ValueError("CLV and stages need a fitted GammaGammaModel (gamma_gamma=...).")
    if period is not None:
        period = _number(period, "period")
        if period == 0:
            raise ValueError("period must be > 0.")
        if contact_cost is None or new_window is None:
            raise ValueError("Stages (period=...) also need contact_cost and new_window (see clvbayes.churn_analysis).")
        contact_cost = _number(contact_cost, "contact_cost")
        new_window = _number(new_window, "new_window")
        if not (isinstance(value_share, numbers.Real) and 0 < value_share <= 1):
            raise ValueError(f"value_share must be in (0, 1], got {value_share!r}.")
    if isinstance(segment, str) and segment == "auto":
        segment = "cohort" if "first_purchase" in columns else None
    if segment is not None and (not isinstance(segment, str) or (segment != "cohort" and segment not in columns)):
        raise ValueError(f"segment must be None, 'auto', 'cohort' or a column of the summary, got {segment!r}.")
    unit = resolve_time_unit(summary._meta, time_unit)
    if cell_path not in ("auto", "tables", "rows"):
        raise ValueError(f"cell_path must be 'auto', 'tables' or 'rows', got {cell_path!r}.")
    # The workers' "models": the two parts of the paired draws, which the engine takes in
    # place of fitted models and pairs back identically; a covariate model's part encodes
    # each partition's customers itself (CellEncoder).
    models, draws = _worker_models(bgnbd, gamma_gamma if needs_spend else None, n_draws)
    encoders = [m for m in models if isinstance(m, CellEncoder)]
    if encoders:
        needed = [c for e in encoders for c in e.columns if c not in columns]
        if needed:
            raise ValueError(
                f"The covariate model values customers by their attributes, and the summary has no column(s) "
                f"{list(dict.fromkeys(needed))}: add the attribute columns to every partition (e.g. "
                "summary.merge(attributes, left_index=True, right_on='customer_id') before scoring)."
            )
        if cell_path == "auto":  # one path for every partition, whatever cells it happens to hold
            cell_path = "tables" if max_cells(*encoders) <= MAX_CELL_PASSES else "rows"
    cfg = _Config(
        quantities=quantities, horizon=_number(horizon, "horizon", allow_inf=True),
        discount_rate=_rate_or_column(discount_rate, "discount_rate", columns),
        margin=_rate_or_column(margin, "margin", columns), time_unit=unit, segment=segment,
        hdi_prob=float(hdi_prob), quantiles=tuple(float(p) for p in quantiles), period=period,
        contact_cost=contact_cost, new_window=new_window, risk_p_alive=float(risk_p_alive),
        risk_threshold=float(risk_threshold), cell_path=cell_path,
    )
    client = _active_client()
    # hash=False: a key of its own per call. With content-hashed keys, a second call with the
    # same draws re-scatters the key that the first call's futures are releasing, and the
    # scheduler can drop the data under the new futures ("Could not find data").
    payload = (client.scatter(models, broadcast=True, hash=False) if client is not None
               else dask.delayed(models, pure=True))

    score = dask.delayed(_score_partition, nout=3, pure=True)
    frames, parts, risks = [], [], []
    partitions = summary.to_delayed()
    for part in partitions:
        frame, tot, risk = score(part, payload, cfg)
        frames.append(frame)
        parts.append(tot)
        risks.append(risk)
    if period is None:
        risks = []
    meta = _empty_frame(cfg, summary._meta.index[:0].rename(summary._meta.index.name or "customer_id"))
    divisions = summary.divisions if summary.known_divisions else None
    customers = dd.from_delayed(frames, meta=meta, divisions=divisions, verify_meta=False)
    add = dask.delayed(_add_totals, pure=True)
    while len(parts) > 1:
        parts = [add(*parts[i:i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)]
    if output is not None:
        # Written by delayed tasks (not DataFrame.to_parquet) so that the writes and the
        # totals are one graph of one kind: each partition is scored once.
        os.makedirs(output, exist_ok=True)
        write = dask.delayed(_write_partition, pure=True)
        width = len(str(max(len(frames) - 1, 0)))
        paths = [os.path.join(output, f"part.{i:0{width}d}.parquet") for i in range(len(frames))]
        _, reduced, risks = dask.compute([write(f, p) for f, p in zip(frames, paths, strict=True)], parts[0], risks)
        # Dask's own index handling in read_parquet warns under pandas 3.1: set it per partition.
        customers = dd.read_parquet(paths, index=False).map_partitions(
            pd.DataFrame.set_index, meta.index.name, meta=meta, clear_divisions=True,
        )
    else:
        reduced, risks = dask.compute(parts[0], risks)
    at_risk_ids = None
    if period is not None:
        # The global pass of "at risk": rank all customers by value if alive, then the CLV
        # per draw of the slipping ones among the top value_share, partition by partition.
        value = np.concatenate([r["value_if_alive"] for r in risks])
        flags = np.concatenate([r["slipping"] for r in risks]) & _top_share(value, value_share)
        bounds = np.cumsum([0] + [len(r["value_if_alive"]) for r in risks])
        risk_task = dask.delayed(_risk_partition, pure=True)
        found = dask.compute(*[
            risk_task(part, payload, cfg, flags[bounds[i]:bounds[i + 1]]) for i, part in enumerate(partitions)
        ])
        reduced.update(_add_totals(*[f[0] for f in found]))
        ids = [f[1] for f in found if len(f[1])]
        at_risk_ids = ids[0].append(ids[1:]) if ids else summary._meta.index[:0]

    labels = sorted(reduced["counts"])
    n_chain, n_draw = draws.shape
    dims = ("segment", "chain", "draw")
    coords = {"segment": np.asarray(labels), "chain": draws.chain, "draw": draws.draw}
    zero = np.zeros(draws.n)

    def by_segment(by_label: dict) -> np.ndarray:
        """Per-draw sums keyed by segment label -> array (segment, chain, draw); 0 where absent."""
        return np.stack([by_label.get(lab, zero) for lab in labels]).reshape(len(labels), n_chain, n_draw)

    totals = {q: xr.DataArray(by_segment(reduced[q]), dims=dims, coords=coords, name=f"{q}_total")
              for q in quantities}
    counts = pd.Series([reduced["counts"][lab] for lab in labels], index=pd.Index(labels, name=segment),
                       name="customers")
    churn = stages = None
    if period is not None:
        churn = xr.Dataset({v: (dims, by_segment(reduced[f"churn:{v}"])) for v in _CHURN_SUMS}, coords=coords)
        churn["value_at_risk"] = (dims, by_segment(reduced.get("value_at_risk", {})))
        churn["churn_rate"] = churn["dropouts"] / churn["alive"]
        churn = churn[list(CHURN_TOTALS)]
        churn.attrs["lost"] = [reduced["churn:lost"][lab] for lab in labels]
        churn.attrs["at_risk"] = [reduced.get("at_risk", {}).get(lab, 0) for lab in labels]
        stages = {
            "customers": {s: reduced["stage:customers"].get(s, 0) for s in STAGES},
            "alive": {s: reduced["stage:alive"].get(s, 0.0) for s in STAGES},
            "equity": {s: reduced["stage:equity"].get(s, zero) for s in STAGES},
        }
    settings = {
        "quantities": quantities, "horizon": cfg.horizon, "discount_rate": cfg.discount_rate, "margin": cfg.margin,
        "time_unit": unit, "source": draws.source, "n_draws": draws.n, "hdi_prob": cfg.hdi_prob,
        "segment": segment, "period": period, "contact_cost": contact_cost, "new_window": new_window,
        "value_share": float(value_share) if period is not None else None,
        "cell_path": cfg.cell_path if encoders else None,
        "npartitions": summary.npartitions, "scheduler": "distributed" if client is not None else "local",
    }
    return DaskScores(customers, totals, counts, settings, None if output is None else str(output),
                      churn=churn, stages=stages, at_risk=at_risk_ids, _payload=payload if output is None else None)
