"""Lifecycle stage of each customer (new, active, at risk, lapsed) from documented rules,
with counts and equity per stage.

Rules, applied in this order to the posterior means of a :class:`~clvbayes.value.churn.ChurnReport`:

1. **lapsed**: written off by the expected-value rule (P(alive) below c / (c + V), see
   :mod:`clvbayes.value.churn`);
2. **new**: tenure T (time since the first purchase) at most ``new_window`` (the model has
   seen too little of them to say more); a customer first seen on the last day (T = 0) is
   always new (P(alive) = 1, so never written off);
3. **at risk**: "slipping" in the report: P(alive) below its ``risk_p_alive`` (default
   0.7) or P(drop out within the period | alive) at least its ``risk_threshold`` (default
   0.1), whatever their value (the report's ``at_risk`` flag is the valuable subset);
4. **active**: everyone else.

Equity per stage is the posterior of the summed CLV of the stage's customers (per draw).
A purchases-only report (no spend model, :func:`clvbayes.churn_analysis` with
``gamma_gamma=None``) has the same stages (written off by its P(alive) rule) and no equity.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from clvbayes.value.arguments import check_number
from clvbayes.value.churn import ChurnReport
from clvbayes.value.quantities import summarise_draws

__all__ = ["STAGES", "lifecycle_stages", "stage_summary", "stage_table"]

STAGES = ("new", "active", "at risk", "lapsed")


def lifecycle_stages(report: ChurnReport, *, new_window: float) -> pd.Series:
    """Stage per customer (module docstring), an ordered categorical Series.

    Parameters
    ----------
    report
        From :func:`clvbayes.churn_analysis`.
    new_window
        Customers with tenure T <= new_window (data's time unit) are "new".
    """
    new_window = check_number(new_window, "new_window", allow_inf=True, unit=True)
    c = report.customers
    T = pd.Series(report.metrics["p_alive"].customers.T, index=c.index)
    stage = np.full(len(c), "active", dtype=object)
    stage[c["slipping"].to_numpy()] = "at risk"
    stage[(T <= new_window).to_numpy()] = "new"
    stage[c["lost"].to_numpy()] = "lapsed"
    return pd.Series(pd.Categorical(stage, categories=list(STAGES), ordered=True), index=c.index, name="stage")


def stage_summary(report: ChurnReport, stages: pd.Series) -> pd.DataFrame:
    """Customers, expected alive and equity (mean and HDI) per lifecycle stage.

    Parameters
    ----------
    report
        From :func:`clvbayes.churn_analysis`; purchases only (no spend model): no equity
        columns.
    stages
        From :func:`lifecycle_stages`.
    """
    ref = report.metrics["p_alive"]
    hdi_prob = ref.settings["hdi_prob"]
    codes = pd.Categorical(stages.reindex(ref.customers.index), categories=list(STAGES)).codes
    if (codes < 0).any():
        raise ValueError("stages must give every customer of the report one of " + ", ".join(STAGES) + ".")
    equity = None
    if report.has_value:
        clv = report.metrics["clv"]
        totals = clv.totals_by(codes)
        by_code = {int(g): tot.to_numpy().reshape(-1) for g, tot in zip(totals["group"].to_numpy(), totals, strict=True)}
        equity = {name: by_code.get(k, np.zeros(clv.parameter_draws.n)) for k, name in enumerate(STAGES)}
    pa = report.customers["p_alive"].to_numpy()
    counts = {name: int((codes == k).sum()) for k, name in enumerate(STAGES)}
    alive = {name: float(pa[codes == k].sum()) for k, name in enumerate(STAGES)}
    return stage_table(counts, alive, equity, hdi_prob)


def stage_table(counts: dict, alive: dict, equity: dict | None, hdi_prob: float) -> pd.DataFrame:
    """The rows of :func:`stage_summary` from per-stage counts, expected alive (sum of the
    customers' posterior mean P(alive)) and per-draw equity (summed CLV) arrays, keyed by
    stage name (None: purchases only, no equity columns). Shared with the Dask scoring
    (:meth:`clvbayes.distributed.DaskScores.stage_summary`)."""
    rows = {}
    for name in STAGES:
        n = int(counts.get(name, 0))
        rows[name] = {"customers": n, "expected_alive": float(alive.get(name, 0.0))}
        if equity is not None:
            s = summarise_draws(np.asarray(equity[name], dtype=np.float64).reshape(-1), hdi_prob)
            rows[name].update({f"equity_{key}": val for key, val in s.items()},
                              equity_per_customer=s["mean"] / n if n else math.nan)
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "stage"
    return out
