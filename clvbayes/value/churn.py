"""Churn analytics from the BG/NBD posterior: expected dropouts and churn rate, a
decision rule for writing customers off, churn damage, value at risk, at-risk customers.

Definitions (per parameter draw θ; summed over customers for the per-draw totals, then
summarised over draws; ``docs/guide/value.md``):

- **expected alive now**: Σ P(alive at T_i);
- **expected dropouts in the next period** of length t: Σ P(alive at T_i and dead at
  T_i + t) = Σ P_alive · a/(a+b+x) · E[X(t); r+x, α+T, a+1, b+x] (kernel ``DROPOUT``);
  the **churn rate** of the period is dropouts / alive now (a ratio per draw);
- **churn damage**: Σ P(dead at T_i) · V_i, the value the already-churned customers would
  have had had they stayed (V_i = margin · E[spend] · discounted purchases given alive);
- **lost (written off)**: the expected-value rule below, replacing a fixed silence window;
- **slipping**: customers not written off whose P(alive) has fallen below ``risk_p_alive``
  (their silence since the last purchase is long for their purchase rate) or whose
  probability of dropping out within the next period, given alive, is at least
  ``risk_threshold``;
- **at risk**: the slipping customers among the top ``value_share`` of customers by value
  if alive: the valuable ones slipping away, for proactive retention (ranking by CLV would
  hide them, since CLV already falls with P(alive));
- **value at risk**: per draw, the CLV summed over the at-risk customers.

**Expected-value rule for "lost".** Treating an alive customer as lost (no more retention
effort) forfeits their value if alive, V_i; treating a dead customer as active wastes the
cost of keeping them in the programme, c (``contact_cost``). Minimising the expected loss,
customer i is written off when

    P_alive,i · V_i < (1 - P_alive,i) · c     ⇔     P_alive,i < c / (c + V_i),

so the P(alive) threshold is per customer: low for valuable customers, high for customers
worth little. With the posterior means of P_alive and V_i (the decision uses expected
losses, so means are the right summaries).

**Without a spend model (purchases only).** ``churn_analysis(bgnbd, None, ...)`` is for logs
without amounts: there is no money value, so the money figures (CLV, churn damage, value at
risk) are absent, not zero. The rest is count-based:

- a customer is **written off** when more likely dead than alive, P_alive < ``lost_p_alive``
  (default 1/2: the expected-value rule above when keeping a customer costs as much as
  their value, c = V);
- the "value if alive" that ranks customers for **at risk** is the expected discounted
  purchases over the horizon given alive, E[P_alive · F] / E[P_alive] over the draws
  (``purchases_if_alive``; the posterior expectation of the discounted purchases given
  that the customer is alive).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.value.arguments import check_number, check_probability
from clvbayes.value.customers import DEFAULT_ANNUAL_DISCOUNT_RATE
from clvbayes.value.quantities import CustomerValue, customer_metrics, hdi_names, summarise_draws

__all__ = ["CHURN_QUANTITIES", "CHURN_COUNT_QUANTITIES", "CHURN_TOTALS", "ChurnReport", "churn_analysis", "churn_report", "churn_summary_table", "lost_threshold"]


def lost_threshold(value_if_alive: np.ndarray | float, contact_cost: float) -> np.ndarray:
    """P(alive) below which writing a customer off has the lower expected loss:
    ``c / (c + V)`` (module docstring)."""
    v = np.asarray(value_if_alive, dtype=np.float64)
    c = float(contact_cost)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c + v > 0, c / (c + v), 1.0)


#: The per-customer quantities a churn report is built from.
CHURN_QUANTITIES = ("p_alive", "dropout", "clv", "lost_value")
#: The per-customer quantities of a purchases-only churn report (no spend model).
CHURN_COUNT_QUANTITIES = ("p_alive", "dropout", "discounted_purchases")
#: Per-draw totals of a churn summary, in the order of its columns.
CHURN_TOTALS = ("alive", "dropouts", "churn_rate", "churn_damage", "value_at_risk")


def churn_summary_table(draws: xr.Dataset, counts: pd.DataFrame, hdi_prob: float, index_name: str) -> pd.DataFrame:
    """The rows of :attr:`ChurnReport.summary` from per-draw totals per segment.

    Shared by :func:`churn_analysis` and the Dask scoring
    (:meth:`clvbayes.distributed.DaskScores.churn_summary`), which reduces the same totals
    across partitions.

    Parameters
    ----------
    draws
        Per-draw sums per segment (dims ``segment, chain, draw``) of ``alive``,
        ``dropouts``, ``churn_damage`` and optionally ``value_at_risk``; the churn rate
        is computed here, per draw, as dropouts / alive (of the segment, then of the total).
    counts
        Integer counts per segment (``customers``, ``lost``, ...), one row per segment
        label in the order of ``draws``; the ``total`` row is their sum.
    hdi_prob, index_name
        HDI mass; name of the index.
    """
    lo, hi = hdi_names(hdi_prob)
    summed = [v for v in CHURN_TOTALS if v in draws and v != "churn_rate"]
    total = draws[summed].sum("segment")
    variables = [v for v in CHURN_TOTALS if v == "churn_rate" or v in draws]
    rows = {}
    for k, label in enumerate([*counts.index, "total"]):
        src = total if label == "total" else draws.isel(segment=k)
        n = counts.sum() if label == "total" else counts.iloc[k]
        row = {c: int(n[c]) for c in counts.columns}
        for name in variables:
            v = src["dropouts"] / src["alive"] if name == "churn_rate" else src[name]
            s = summarise_draws(v.to_numpy().reshape(-1), hdi_prob)
            row.update({f"{name}_mean": s["mean"], f"{name}_{lo}": s[lo], f"{name}_{hi}": s[hi]})
        rows[str(label)] = row
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = index_name
    return summary


@dataclass
class ChurnReport:
    """Churn analytics (module docstring).

    Attributes
    ----------
    customers : pandas.DataFrame
        Per customer (posterior means): ``p_alive``, ``p_dropout`` (alive now and dead by
        the end of the period), ``p_dropout_given_alive``, ``clv``, ``value_if_alive``,
        ``lost_threshold``, ``lost``, ``slipping`` and ``at_risk`` (bool). Purchases only
        (no spend model): ``purchases_if_alive`` instead of ``clv`` and ``value_if_alive``.
    summary : pandas.DataFrame
        Per segment and ``total``: customers, written off, at risk, and mean and HDI of
        expected alive, expected dropouts, churn rate, churn damage and value at risk
        (the last two only with a spend model).
    draws : xarray.Dataset
        The per-draw totals behind ``summary`` (dims ``segment, chain, draw``).
    metrics : dict[str, CustomerValue]
        The per-customer results used.
    """

    customers: pd.DataFrame
    summary: pd.DataFrame
    draws: xr.Dataset
    metrics: dict[str, CustomerValue] = field(repr=False)
    settings: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        t = self.summary.loc["total"]
        return (
            f"ChurnReport(period={self.settings['period']}, customers={int(t['customers'])}, expected alive "
            f"{t['alive_mean']:.6g}, dropouts {t['dropouts_mean']:.6g}, churn rate {t['churn_rate_mean']:.4g}, "
            f"written off {int(t['lost'])}, at risk {int(t['at_risk'])})"
        )

    @property
    def has_value(self) -> bool:
        """Whether the report has money figures (computed with a spend model)."""
        return "clv" in self.metrics


def churn_analysis(
    bgnbd,
    gamma_gamma,
    data: pd.DataFrame | None = None,
    *,
    period: float,
    contact_cost: float,
    horizon: float = math.inf,
    discount_rate: float | np.ndarray | pd.Series = DEFAULT_ANNUAL_DISCOUNT_RATE,
    margin: float | np.ndarray | pd.Series = 1.0,
    risk_p_alive: float = 0.7,
    risk_threshold: float = 0.1,
    value_share: float = 0.2,
    lost_p_alive: float = 0.5,
    segment: object = "auto",
    hdi_prob: float = 0.94,
    n_draws: int | None = None,
    time_unit: str | None = None,
) -> ChurnReport:
    """Model-based churn analytics for a customer base (module docstring).

    Parameters
    ----------
    bgnbd, gamma_gamma
        Fitted models (posteriors, or point estimates). ``gamma_gamma=None``: purchases
        only, for a log without amounts (module docstring): no CLV, churn damage or value
        at risk.
    data
        Customer summary (default: the BG/NBD model's data), with ``monetary_value`` when
        there is a Gamma-Gamma model.
    period
        Length of the next period for dropouts and the churn rate (data's time unit).
    contact_cost
        Cost of keeping one customer in the retention programme (for the write-off rule),
        in the units of spend x margin.
    horizon, discount_rate, margin
        CLV settings (:func:`clvbayes.customer_lifetime_value`).
    risk_p_alive
        P(alive) below which a customer not written off is "slipping" (default 0.7).
    risk_threshold
        P(drop out within the period | alive) from which a customer is "slipping" (default 0.1).
    value_share
        At-risk customers are the slipping ones among this top share of customers by value
        if alive (default 0.2).
    lost_p_alive
        Purchases only: P(alive) below which a customer is written off (default 0.5; with
        a spend model the expected-value rule with ``contact_cost`` is used instead).
    segment, hdi_prob, n_draws, time_unit
        As in :func:`clvbayes.customer_metrics`.

    Returns
    -------
    ChurnReport
    """
    rules = _churn_rules(period, contact_cost, risk_p_alive, risk_threshold, value_share, lost_p_alive)
    metrics = customer_metrics(
        bgnbd, gamma_gamma, data, quantities=CHURN_QUANTITIES if gamma_gamma is not None else CHURN_COUNT_QUANTITIES,
        horizon=horizon, horizons={"dropout": rules["period"]}, discount_rate=discount_rate, margin=margin,
        segment=segment, hdi_prob=hdi_prob, n_draws=n_draws, time_unit=time_unit,
    )
    return churn_report(metrics, **rules)


def _churn_rules(period, contact_cost, risk_p_alive, risk_threshold, value_share, lost_p_alive=0.5) -> dict:
    """The checked settings of :func:`churn_report`."""
    if not (isinstance(value_share, numbers.Real) and 0 < value_share <= 1):
        raise ValueError(f"value_share must be in (0, 1], got {value_share!r}.")
    return {"period": check_number(period, "period", allow_zero=False, unit=True),
            "contact_cost": check_number(contact_cost, "contact_cost"),
            "risk_p_alive": check_probability(risk_p_alive, "risk_p_alive", closed=True),
            "risk_threshold": check_probability(risk_threshold, "risk_threshold", closed=True),
            "lost_p_alive": check_probability(lost_p_alive, "lost_p_alive", closed=True),
            "value_share": float(value_share)}


def churn_report(
    metrics: dict[str, CustomerValue],
    *,
    period: float,
    contact_cost: float,
    risk_p_alive: float = 0.7,
    risk_threshold: float = 0.1,
    value_share: float = 0.2,
    lost_p_alive: float = 0.5,
) -> ChurnReport:
    """:func:`churn_analysis` from already computed per-customer results.

    For callers that compute the quantities in a pass of their own (the Dask scoring
    computes them together with the quantities it was asked for, sharing their tables).

    Parameters
    ----------
    metrics
        From :func:`clvbayes.customer_metrics` with at least the quantities
        :data:`CHURN_QUANTITIES` or, purchases only, :data:`CHURN_COUNT_QUANTITIES`;
        ``dropout`` over the horizon ``period``.
    period, contact_cost, risk_p_alive, risk_threshold, value_share, lost_p_alive
        As in :func:`churn_analysis`.
    """
    rules = _churn_rules(period, contact_cost, risk_p_alive, risk_threshold, value_share, lost_p_alive)
    period, contact_cost, value_share = rules["period"], rules["contact_cost"], rules["value_share"]
    money = "clv" in metrics or "lost_value" in metrics
    needed = CHURN_QUANTITIES if money else CHURN_COUNT_QUANTITIES
    missing = [q for q in needed if q not in metrics]
    if missing:
        raise ValueError(
            f"metrics lack {missing}: compute {list(CHURN_QUANTITIES)} (or, purchases only, "
            f"{list(CHURN_COUNT_QUANTITIES)}) with customer_metrics."
        )
    if metrics["dropout"].settings["horizon"] != period:
        raise ValueError(
            f"metrics['dropout'] was computed over {metrics['dropout'].settings['horizon']}, not period={period}."
        )
    # the result whose settings, segments and per-draw totals the report is built on
    ref = metrics["clv"] if money else metrics["discounted_purchases"]
    hdi_prob = ref.settings["hdi_prob"]
    pa = metrics["p_alive"].summary["mean"]
    drop = metrics["dropout"].summary["mean"]
    with np.errstate(invalid="ignore", divide="ignore"):
        drop_given_alive = (drop / pa).where(pa > 0, 0.0)
    if money:
        clv = metrics["clv"].summary["mean"]
        v_alive = clv + metrics["lost_value"].summary["mean"]
        threshold = pd.Series(lost_threshold(v_alive.to_numpy(), contact_cost), index=pa.index)
        values = {"clv": clv, "value_if_alive": v_alive}
    else:
        # E[P_alive F] / E[P_alive]: discounted purchases given alive (module docstring)
        with np.errstate(invalid="ignore", divide="ignore"):
            v_alive = (metrics["discounted_purchases"].summary["mean"] / pa).where(pa > 0, 0.0)
        threshold = pd.Series(rules["lost_p_alive"], index=pa.index)
        values = {"purchases_if_alive": v_alive}
    lost = pa < threshold
    top = v_alive.rank(ascending=False, method="first") <= math.ceil(value_share * len(pa))
    slipping = (~lost) & ((pa < risk_p_alive) | (drop_given_alive >= risk_threshold))
    at_risk = slipping & top
    customers = pd.DataFrame({
        "p_alive": pa, "p_dropout": drop, "p_dropout_given_alive": drop_given_alive, **values,
        "lost_threshold": threshold, "lost": lost, "slipping": slipping, "at_risk": at_risk,
    })

    labels = ref.totals["segment"].to_numpy()
    seg_codes = ref.customers.segments
    draws = xr.Dataset({"alive": metrics["p_alive"].totals, "dropouts": metrics["dropout"].totals})
    if money:
        # value at risk per segment: CLV totals over (segment, at risk) groups
        risk_groups = seg_codes * 2 + at_risk.to_numpy().astype(np.int64)
        by_risk = metrics["clv"].totals_by(risk_groups)
        var = np.zeros((len(labels),) + by_risk.shape[1:])
        for g, tot in zip(by_risk["group"].to_numpy(), by_risk.to_numpy(), strict=True):
            if g % 2 == 1:
                var[g // 2] = tot
        draws["churn_damage"] = metrics["lost_value"].totals
        draws["value_at_risk"] = (("segment", "chain", "draw"), var)
    flags = pd.DataFrame({"lost": lost.to_numpy(), "at_risk": at_risk.to_numpy()})
    counts = flags.groupby(seg_codes).sum().reindex(range(len(labels)), fill_value=0)
    counts.insert(0, "customers", np.bincount(seg_codes, minlength=len(labels)))
    counts.index = [str(label) for label in labels]
    summary = churn_summary_table(draws, counts, hdi_prob, ref.settings.get("segment") or "segment")
    draws["churn_rate"] = draws["dropouts"] / draws["alive"]
    draws = draws[[v for v in CHURN_TOTALS if v in draws]]
    settings = {**ref.settings, "period": period, "contact_cost": contact_cost,
                "risk_p_alive": float(risk_p_alive), "risk_threshold": float(risk_threshold),
                "value_share": float(value_share)}
    if not money:
        settings["lost_p_alive"] = rules["lost_p_alive"]
    return ChurnReport(customers, summary, draws, metrics, settings)
