"""Customer equity: the posterior of the summed CLV of a customer base, by segment or
cohort, compared with acquisition and retention costs; and value concentration (Pareto).

Equity for a draw θ is the sum of the customers' CLVs for that draw, so its posterior is
the distribution of those per-draw sums (streamed per segment by the CLV pass). This is
not "mean CLV x number of customers" with a standard error: the customers' values share the
parameter uncertainty, so the uncertainty of the total does not average out.

**Acquisition.** A customer acquired today is alive at time 0 with no history (x = 0,
t_x = T = 0); their value is the margin on the acquisition purchase plus the discounted
future purchases of a BG/NBD customer with the population parameters, times the population
mean spend::

    V_new(θ) = margin · E[Z; θ] · (1 + F_{δ,H}(r, α, a, b))

(``docs/theory/clv.md``). The CLV/CAC ratio, the probability that V_new exceeds the
acquisition cost (CAC), and the largest CAC that pays back with probability π (the
(1 - π)-quantile of V_new) are computed per draw from it. Residual value of already
acquired customers is the wrong basis for acquisition spending (it omits their first
purchase and everything they bought before today).

**Retention.** A retention programme costing c per current customer pays back for a segment
when its per-customer equity exceeds c; the largest such c with probability π is the
(1 - π)-quantile of the segment's per-customer equity, and the net equity is equity - c · n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.kernels import clv as K
from clvbayes.value.arguments import check_number, check_probability
from clvbayes.value.customers import new_customer
from clvbayes.value.draws import JointCellDraws
from clvbayes.value.engine import stream
from clvbayes.value.quantities import CustomerValue, customer_lifetime_value, hdi_names, summarise_draws

__all__ = ["CustomerEquity", "customer_equity", "value_concentration", "new_customer_value"]


@dataclass
class CustomerEquity:
    """Customer equity over the posterior (module docstring).

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per segment and a ``total`` row: ``customers``, equity ``mean``, ``sd``,
        HDI, ``per_customer`` mean equity and ``share`` of the total (posterior mean).
    total : xarray.DataArray
        Per-draw equity of the whole base, dims ``(chain, draw)``.
    by_segment : xarray.DataArray
        Per-draw equity per segment, dims ``(segment, chain, draw)``.
    acquisition : pandas.DataFrame or None
        With an ``acquisition_cost``: value of a newly acquired customer (mean, HDI), the
        CLV/CAC ratio (mean, HDI), P(value > CAC) and the largest CAC that pays back with
        probability ``payback_probability``.
    retention : pandas.DataFrame or None
        With a ``retention_cost`` per current customer: per segment and total, net equity
        (mean, HDI), P(net equity > 0) and the largest retention cost per customer covered
        with probability ``payback_probability``.
    clv : CustomerValue
        The per-customer CLV it was built from.
    """

    summary: pd.DataFrame
    total: xr.DataArray
    by_segment: xr.DataArray
    acquisition: pd.DataFrame | None
    retention: pd.DataFrame | None
    clv: CustomerValue = field(repr=False)
    settings: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        row = self.summary.loc["total"]
        lo, hi = hdi_names(self.settings["hdi_prob"])
        return (
            f"CustomerEquity(total {row['mean']:.6g}, {100 * self.settings['hdi_prob']:g}% HDI "
            f"[{row[lo]:.6g}, {row[hi]:.6g}], {int(row['customers'])} customers, "
            f"{len(self.summary) - 1} segments)"
        )


def new_customer_value(clv: CustomerValue) -> np.ndarray:
    """Per-draw value of a newly acquired customer (module docstring), same settings as
    ``clv`` (horizon, discount rate and margin: their means when they vary by customer).

    With covariates (per-cell parameters) it is the value of a new customer of the current
    base's mix: each combined cell's new-customer value weighted by the cell's share of the
    customers."""
    draws, cust = clv.parameter_draws, clv.customers
    margin, delta = float(np.mean(cust.margin)), float(np.mean(cust.delta))
    spend = replace(clv.spec, name="spend", code=K.SPEND)
    specs = [clv.spec, spend]
    if isinstance(draws, JointCellDraws):
        # Covariates: a new customer of the base's mix of cells, i.e. each cell's new customer
        # weighted by the cell's share of the customers. Both quantities are linear in the
        # margin, so the weights go into the margins and the (one) segment total is the mix.
        share = np.bincount(draws.cell, minlength=draws.n_cells) / draws.cell.shape[0]
        ones = np.ones(draws.n_cells)
        new = replace(new_customer(cust.time_unit), index=pd.RangeIndex(draws.n_cells), x=0 * ones, t_x=0 * ones,
                      T=0 * ones, m=0 * ones, margin=margin * share, delta=delta * ones,
                      segments=np.zeros(draws.n_cells, dtype=np.int64))
        cells = replace(draws, cell=np.arange(draws.n_cells, dtype=np.int64))
        out = stream(cells, new, specs, probs=np.array([0.5]), hdi_prob=0.5)
        return out[clv.spec.name].segment_totals[0] + out["spend"].segment_totals[0]
    one = new_customer(cust.time_unit, margin=margin, delta=delta)
    out = stream(draws, one, specs, probs=np.array([0.5]), hdi_prob=0.5, keep_draws=True)
    return out[clv.spec.name].full[:, 0] + out["spend"].full[:, 0]


def _row(values: np.ndarray, hdi_prob: float, prefix: str = "") -> dict:
    s = summarise_draws(values, hdi_prob)
    return {f"{prefix}{k}": v for k, v in s.items() if k != "sd"}


def customer_equity(
    clv_or_bgnbd,
    gamma_gamma=None,
    data: pd.DataFrame | None = None,
    *,
    acquisition_cost: float | None = None,
    retention_cost: float | None = None,
    payback_probability: float = 0.9,
    **clv_kwargs,
) -> CustomerEquity:
    """Posterior of customer equity, by segment, with acquisition and retention comparisons.

    Parameters
    ----------
    clv_or_bgnbd
        A :class:`~clvbayes.value.quantities.CustomerValue` from
        :func:`~clvbayes.customer_lifetime_value` (its horizon, discounting, margin and
        segments are used), or a fitted BG/NBD model, in which case ``gamma_gamma``,
        ``data`` and ``**clv_kwargs`` are passed to :func:`~clvbayes.customer_lifetime_value`
        (segments default to acquisition month when the summary has ``first_purchase``).
    acquisition_cost
        Cost of acquiring one customer (CAC), in the units of the spend x margin.
    retention_cost
        Cost per current customer of a retention programme.
    payback_probability
        π for "the largest cost that pays back with probability π" (default 0.9).

    Returns
    -------
    CustomerEquity
    """
    acquisition_cost = None if acquisition_cost is None else check_number(acquisition_cost, "acquisition_cost")
    retention_cost = None if retention_cost is None else check_number(retention_cost, "retention_cost")
    pi = check_probability(payback_probability, "payback_probability")
    if isinstance(clv_or_bgnbd, CustomerValue):
        if gamma_gamma is not None or data is not None or clv_kwargs:
            raise TypeError("With a CustomerValue, pass no models, data or CLV settings: they are fixed by it.")
        clv = clv_or_bgnbd
    else:
        clv = customer_lifetime_value(clv_or_bgnbd, gamma_gamma, data, **clv_kwargs)
    if clv.name != "clv":
        raise ValueError(f"customer_equity needs a CLV result, got {clv.name!r}.")
    hdi_prob = clv.settings["hdi_prob"]
    lo, hi = hdi_names(hdi_prob)
    seg = clv.totals
    total = seg.sum("segment")
    counts = np.bincount(clv.customers.segments, minlength=seg.sizes["segment"])
    labels = [str(s) for s in seg["segment"].to_numpy()]
    rows, n_by = {}, {}
    total_mean = float(total.mean())
    for k, label in enumerate(labels + ["total"]):
        v = (total if label == "total" else seg.isel(segment=k)).to_numpy().reshape(-1)
        n = int(counts.sum() if label == "total" else counts[k])
        s = summarise_draws(v, hdi_prob)
        rows[label] = {"customers": n, **s.to_dict(), "per_customer": s["mean"] / n if n else math.nan,
                       "share": s["mean"] / total_mean if total_mean else math.nan}
        n_by[label] = (v, n)
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = clv.settings.get("segment") or "segment"

    acquisition = None
    if acquisition_cost is not None:
        v_new = new_customer_value(clv)
        row = {**_row(v_new, hdi_prob, "value_")}
        if acquisition_cost > 0:
            row.update(_row(v_new / acquisition_cost, hdi_prob, "ratio_"))
        row["p_payback"] = float(np.mean(v_new > acquisition_cost))
        row[f"max_cac_at_{pi:g}"] = float(np.quantile(v_new, 1 - pi))
        acquisition = pd.DataFrame([row], index=pd.Index(["new customer"], name="basis"))

    retention = None
    if retention_cost is not None:
        rrows = {}
        for label, (v, n) in n_by.items():
            net = v - retention_cost * n
            rrows[label] = {
                **_row(net, hdi_prob, "net_equity_"),
                "p_net_positive": float(np.mean(net > 0)),
                f"max_retention_cost_at_{pi:g}": float(np.quantile(v / n, 1 - pi)) if n else math.nan,
            }
        retention = pd.DataFrame.from_dict(rrows, orient="index")
        retention.index.name = summary.index.name
    settings = {**clv.settings, "acquisition_cost": acquisition_cost, "retention_cost": retention_cost,
                "payback_probability": pi}
    return CustomerEquity(summary, total, seg, acquisition, retention, clv, settings)


def value_concentration(
    clv: CustomerValue, shares: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.5)
) -> pd.DataFrame:
    """Share of total value held by the top k% of customers, with uncertainty.

    Customers are ranked once by their posterior mean value (the customers one would
    target); for every draw the share of that draw's total held by the top ``k`` of them is
    computed, giving a posterior for each share (the Pareto curve: "the top 20% hold
    63-71%"). Computed by a second streamed pass with the rank groups as segments.

    Parameters
    ----------
    clv
        A per-customer result (CLV or any other additive quantity).
    shares
        Fractions k of customers in (0, 1].

    Returns
    -------
    pandas.DataFrame
        Index ``top_share``; columns ``customers``, ``mean``, ``sd`` and the HDI of the
        share of value.
    """
    shares_arr = np.asarray(shares, dtype=np.float64)
    if shares_arr.size == 0 or not ((shares_arr > 0) & (shares_arr <= 1)).all():
        raise ValueError(f"shares must be fractions in (0, 1], got {list(shares)}.")
    n = clv.customers.n
    order = np.argsort(-clv.summary["mean"].to_numpy(), kind="stable")
    wanted = np.unique(shares_arr)
    counts = np.clip(np.ceil(wanted * n - 1e-9).astype(np.int64), 1, n)
    cut = np.unique(counts)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    group = np.searchsorted(cut, rank, side="right")  # 0: the top cut[0] customers, 1: the next, ...
    grouped = clv.totals_by(group)
    totals = np.zeros((len(cut) + 1, clv.parameter_draws.n))
    for g, tot in zip(grouped["group"].to_numpy(), grouped.to_numpy().reshape(grouped.sizes["group"], -1), strict=True):
        totals[int(g)] = tot
    cum = np.cumsum(totals, axis=0)
    grand = cum[-1]
    rows = {}
    for share, c in zip(wanted, counts, strict=True):
        j = int(np.searchsorted(cut, c))
        rows[float(share)] = {"customers": int(c), **summarise_draws(cum[j] / grand, clv.settings["hdi_prob"]).to_dict()}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "top_share"
    return out
