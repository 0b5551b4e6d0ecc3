"""The report's figures: the standard plots of :mod:`clvbayes.plotting` drawn on an
:class:`~clvbayes.workflow.Analysis`, rendered to PNG bytes.

Each figure is made on its own :class:`matplotlib.figure.Figure` and closed after
rendering, so building a report leaves no open pyplot figures behind.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ReportFigure", "report_figures"]


@dataclass(frozen=True)
class ReportFigure:
    """One rendered figure: file stem, section of the report, caption, PNG bytes."""

    name: str
    section: str
    caption: str
    png: bytes


def _png(fig, dpi: int) -> bytes:
    """``fig`` as PNG bytes; the figure is closed (no pyplot figure outlives a report)."""
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()
    finally:
        plt.close(fig)


def _render(draw: Callable, *, figsize=(7.0, 4.5), dpi: int = 110) -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    try:
        draw(ax)
    except BaseException:
        plt.close(fig)
        raise
    return _png(fig, dpi)


def _render_trace(model, title: str, dpi: int = 90) -> bytes:
    import arviz as az

    with warnings.catch_warnings():
        # arviz 0.23 calls a matplotlib >= 3.11 API in a deprecated way (its bug, harmless)
        warnings.simplefilter("ignore", DeprecationWarning)
        # a pooled model's parameters are per segment (one line per segment in each panel)
        names = getattr(model, "trace_names", None) or list(model.param_names)
        axes = az.plot_trace(model.idata_, var_names=list(names), compact=True, show=False)
    fig = np.asarray(axes).ravel()[0].figure
    fig.suptitle(title)
    return _png(fig, dpi)


def _top_customer(analysis) -> tuple[object, np.ndarray, float]:
    """The repeat buyer with the highest CLV (without amounts: the most expected purchases),
    and their purchase times for the P(alive) history."""
    from clvbayes.value.plotdata import customer_purchase_times

    table = analysis.customers
    repeat = table.loc[table["frequency"] > 0]
    who = (repeat if len(repeat) else table)[_ranking(analysis)].idxmax()
    s = analysis.settings
    times, T = customer_purchase_times(
        analysis.transactions, who, time_unit=s["time_unit"], observation_end=s["observation_end"],
    )
    return who, times, T


def _ranking(analysis) -> str:
    """The ``customers`` column the report ranks customers by."""
    return "clv" if analysis.has_amounts else "expected_purchases"


def report_figures(analysis) -> list[ReportFigure]:
    """Draw every figure of the report for ``analysis`` (a :class:`clvbayes.workflow.Analysis`).

    Returns
    -------
    list of ReportFigure
        In report order: model checks (traces, period transactions), holdout (calibration vs
        holdout, cumulative and incremental tracking) when there is a holdout period, value
        (equity posterior, equity by segment and by lifecycle stage, Pareto curve) and
        customers (expected purchases and P(alive) over frequency x recency, one customer's
        P(alive) history). Without amounts, no Gamma-Gamma trace and no value figures. With
        covariates, the coefficients too; the period transactions replicate each customer at
        its own cell, the matrices are drawn for the reference profile (named in the
        caption) and the history at the customer's own cell.
    """
    from clvbayes import plotting
    from clvbayes.plotting._common import unit_name
    from clvbayes.value.plotdata import profile_label, reference_profile

    a = analysis
    s = a.settings
    unit = s["time_unit"]
    hdi = s["hdi_prob"]
    pct = f"{100 * hdi:g}%"
    n = s["value_draws"]
    seed = s["seed"]
    out: list[ReportFigure] = []

    def add(name: str, section: str, caption: str, draw: Callable, **kw) -> None:
        out.append(ReportFigure(name, section, caption, _render(draw, **kw)))

    fam = a.purchase_model.family
    out.append(ReportFigure(f"trace_{fam.name}", "models", f"{fam.label} posterior: densities per chain and traces.",
                            _render_trace(a.purchase_model, fam.label)))
    if a.has_amounts:
        out.append(ReportFigure("trace_gamma_gamma", "models", "Gamma-Gamma posterior: densities per chain and traces.",
                                _render_trace(a.gamma_gamma, "Gamma-Gamma")))
    # A model with covariates: its coefficients; the predictive check replicates every customer
    # at its own cell, the matrices are drawn for the reference profile, the history at the
    # customer's own cell.
    covariates = callable(getattr(a.purchase_model, "cell_draws", None))
    for name, model in (("purchase", a.purchase_model), ("spend", a.gamma_gamma)):
        if callable(getattr(model, "coefficient_summary", None)) and model.coefficient_names:
            add(f"coefficients_{name}", "models", f"Covariate effects on {name} ({pct} HDI; 0: no effect).",
                lambda ax, m=model: plotting.plot_coefficients(m, hdi_prob=hdi, ax=ax))
    own = " (each customer at its own covariates)" if covariates else ""
    add("period_transactions", "models",
        f"Customers by number of repeat purchases: observed vs posterior predictive{own} ({pct} interval).",
        lambda ax: plotting.plot_period_transactions(a.purchase_model, hdi_prob=hdi, n_draws=n, random_seed=seed,
                                                     ax=ax))
    if a.validation is not None:
        add("calibration_holdout", "holdout",
            "Mean holdout purchases by calibration frequency: actual vs predicted with interval.",
            lambda ax: plotting.plot_calibration_holdout(a.validation, ax=ax))
    if a.tracking is not None:
        add("tracking_cumulative", "holdout", "Cumulative repeat purchases: actual vs expected.",
            lambda ax: plotting.plot_purchase_tracking(a.tracking, cumulative=True, ax=ax))
        add("tracking_incremental", "holdout", f"Repeat purchases per {unit_name(unit, plural=False) or 'period'}: actual vs expected.",
            lambda ax: plotting.plot_purchase_tracking(a.tracking, cumulative=False, ax=ax))
    if a.has_amounts:
        add("equity_posterior", "value", f"Posterior of customer equity ({pct} HDI marked).",
            lambda ax: plotting.plot_equity_posterior(a.equity, ax=ax))
        add("equity_by_segment", "value", f"Equity by {a.equity.summary.index.name or 'segment'} ({pct} HDI).",
            lambda ax: plotting.plot_equity_by_segment(a.equity, ax=ax))
        add("equity_by_stage", "value", f"Equity by lifecycle stage ({pct} HDI).",
            lambda ax: plotting.plot_equity_by_segment(a.stage_table, ax=ax))
        add("pareto", "value", "Share of equity held by the most valuable customers (customers ranked by posterior mean).",
            lambda ax: plotting.plot_pareto(a.churn.metrics["clv"], ax=ax))
    profile = reference_profile(a.purchase_model) if covariates else None
    of = f" for the reference profile ({profile_label(profile)})" if covariates else ""
    add("frequency_recency_matrix", "customers",
        f"Expected purchases in the next {unit_name(unit, plural=False) or 'time unit'} by frequency and recency"
        f"{of} (posterior mean).",
        lambda ax: plotting.plot_frequency_recency_matrix(a.purchase_model, hdi_prob=hdi, n_draws=n, profile=profile,
                                                          ax=ax),
        figsize=(6.5, 5.0))
    add("probability_alive_matrix", "customers", f"P(alive) by frequency and recency{of} (posterior mean).",
        lambda ax: plotting.plot_probability_alive_matrix(a.purchase_model, hdi_prob=hdi, n_draws=n, profile=profile,
                                                          ax=ax),
        figsize=(6.5, 5.0))
    who, times, T = _top_customer(a)
    add("probability_alive_history", "customers",
        f"P(alive) history of customer {who}, the repeat buyer with the highest "
        f"{'CLV' if a.has_amounts else 'expected purchases'}{' (at its own covariates)' if covariates else ''} "
        f"({pct} interval).",
        lambda ax: plotting.plot_probability_alive_history(a.purchase_model, times, T, hdi_prob=hdi, n_draws=n,
                                                           customer=who if covariates else None, ax=ax))
    return out
