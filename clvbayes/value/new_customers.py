"""Customers not yet acquired: their purchases, spend and value over the posterior, the
equity of a planned cohort, and the most one may pay to acquire one — by profile.

A *profile* is a kind of new customer: the whole population (a model without covariates),
or a row of covariate values (a channel, a country, a campaign) of a model with covariates
(:class:`~clvbayes.CovariatePurchaseModel` and, for spend,
:class:`~clvbayes.CovariateSpendModel`: their ``parameters_for``). A new customer is acquired
at time 0 with no history (x = t_x = T = 0, alive), so every quantity is the model's
unconditional one at the profile's parameters θ:

- **purchases** in ``(0, t]``: the predictive distribution ``P(X(t) = n) = E_θ[P(X(t) = n | θ)]``
  (BG/NBD: Fader, Hardie & Lee 2005, Marketing Science 24(2), eq. 8; Pareto/NBD and
  MBG/NBD: their families' pmf), with the posterior HDI of each probability, and the
  posterior of ``E[X(t) | θ]`` (FHL eq. 9);
- **spend** per transaction: the posterior of the population mean ``E[Z | θ] = p γ / (q - 1)``
  (Gamma-Gamma; FHL 2005, "RFM and CLV", JMR 42(4)) and predictive quantiles of a new
  customer's mean spend ``p / ν``, ``ν ~ Gamma(q, rate γ)`` (20,000 ν in all, spread evenly
  over the draws, seeded);
- **value** ``V_new(θ) = margin · E[Z | θ] · (1 + F_{δ,H}(θ))``: the acquisition purchase plus
  the discounted expected purchases over the value horizon (as
  :func:`clvbayes.value.equity.new_customer_value`, ``docs/theory/clv.md``);
- **maximum acquisition cost** with payback probability π: the (1 - π)-quantile of V_new's
  posterior (a CAC below it pays back with posterior probability >= π);
- **planned cohort**: ``N · V_new(θ)`` per draw, its posterior mean and HDI
  (:meth:`NewCustomerForecast.cohort_equity`).

The intervals of value and cohort equity are *parameter* uncertainty: the expected value of
a customer (or of N) given θ. For a cohort of N the spread of individual outcomes around that
expectation shrinks as 1/sqrt(N) relative to the total and is not included; the purchase
distribution, by contrast, is predictive (individual heterogeneity and parameter uncertainty).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.families import get_family
from clvbayes.kernels import clv as K
from clvbayes.value.arguments import (
    check_convergent,
    check_discount_rate,
    check_horizon,
    check_margin,
    check_probability,
    check_seed,
)
from clvbayes.value.customers import continuous_rate, new_customer, resolve_time_unit
from clvbayes.value.draws import CellDraws, ParameterDraws, joint_draws, parameter_draws
from clvbayes.value.engine import QuantitySpec, stream
from clvbayes.value.quantities import _check_finite_mean_spend, hdi_names, summarise_draws

__all__ = ["NewCustomerForecast", "new_customer_forecast"]

#: ν draws behind the predictive spend quantiles (at least one per parameter draw).
_SPEND_SAMPLES = 20_000


@dataclass
class NewCustomerForecast:
    """What a customer not yet acquired is expected to do and be worth (module docstring).

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per profile: ``expected_purchases`` in the horizon, ``expected_spend`` per
        transaction, ``value`` (V_new) — each mean and HDI — and ``max_acquisition_cost``
        at the payback probability.
    purchases : pandas.DataFrame
        Rows (profile, n) for n = 0..``max_purchases`` and ``">max"``: the predictive
        probability of n purchases in the horizon and its posterior HDI.
    spend_quantiles : pandas.DataFrame
        Per profile, predictive quantiles of a new customer's mean spend per transaction.
    value : xarray.DataArray
        Per-draw V_new, dims ``(profile, chain, draw)``.
    """

    summary: pd.DataFrame
    purchases: pd.DataFrame
    spend_quantiles: pd.DataFrame
    value: xr.DataArray
    settings: dict = field(default_factory=dict)

    def cohort_equity(self, n_customers: int | Mapping[object, int]) -> pd.DataFrame:
        """Equity of a planned cohort: ``N`` new customers of each profile.

        Parameters
        ----------
        n_customers
            One number for every profile, or a mapping profile -> number (profiles left out
            plan none).

        Returns
        -------
        pandas.DataFrame
            Per profile with customers and a ``total`` row: ``customers``, equity ``mean``,
            ``sd`` and HDI of ``N · V_new(θ)`` summed over the profiles, draw by draw.
        """
        profiles = list(self.value["profile"].to_numpy())
        if isinstance(n_customers, Mapping):
            unknown = [k for k in n_customers if k not in profiles]
            if unknown:
                raise ValueError(f"Unknown profiles {unknown}; the forecast has {profiles}.")
            counts = {k: n_customers.get(k, 0) for k in profiles}
        else:
            counts = dict.fromkeys(profiles, n_customers)
        for k, v in counts.items():
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"The number of planned customers must be an integer >= 0, got {v!r} for {k!r}.")
        hdi_prob = self.settings["hdi_prob"]
        per_draw = self.value.stack(sample=("chain", "draw")).transpose("profile", "sample").to_numpy()
        rows, total = {}, np.zeros(per_draw.shape[1])
        for j, k in enumerate(profiles):
            if counts[k] == 0:
                continue
            eq = counts[k] * per_draw[j]
            total += eq
            rows[k] = {"customers": counts[k], **summarise_draws(eq, hdi_prob)}
        rows["total"] = {"customers": sum(counts.values()), **summarise_draws(total, hdi_prob)}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "profile"
        if self.value.sizes["chain"] * self.value.sizes["draw"] == 1:
            out["sd"] = math.nan
        return out


def _profile_draws(model, profiles: pd.DataFrame | None, n_draws: int | None, role: str) -> list:
    """Per profile, the draws of ``model`` (ParameterDraws), or None for no model."""
    if model is None:
        return [None] * (1 if profiles is None else len(profiles))
    if profiles is None:
        if hasattr(model, "parameters_for"):
            raise ValueError(
                f"The {role} model has covariates: say which new customers to forecast with profiles= (a DataFrame "
                "with one row per profile and the model's covariate columns)."
            )
        return [parameter_draws(model, n_draws)]
    if hasattr(model, "parameters_for"):
        cd: CellDraws = model.parameters_for(profiles, n_draws)
        return [cd.for_cell(k) for k in range(len(profiles))]
    return [parameter_draws(model, n_draws)] * len(profiles)


def _model_data(*models) -> pd.DataFrame | None:
    for m in models:
        data = getattr(m, "data", None)
        if isinstance(data, pd.DataFrame):
            return data
    return None


def new_customer_forecast(
    purchase_model,
    gamma_gamma=None,
    *,
    horizon: float,
    profiles: pd.DataFrame | None = None,
    value_horizon: float = math.inf,
    max_purchases: int = 10,
    discount_rate: float = 0.1,
    margin: float = 1.0,
    payback_probability: float = 0.9,
    time_unit: str | None = None,
    hdi_prob: float = 0.94,
    spend_quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95),
    n_draws: int | None = None,
    random_seed: int = 0,
) -> NewCustomerForecast:
    """Purchases, spend and value of a customer not yet acquired, per profile.

    Parameters
    ----------
    purchase_model
        A fitted purchase model (any family; :class:`~clvbayes.BetaGeoModel` and friends, or
        :class:`~clvbayes.CovariatePurchaseModel`), or its :class:`ParameterDraws`.
    gamma_gamma
        A fitted :class:`~clvbayes.GammaGammaModel` or a spend model with covariates; None
        gives purchases only (no spend, value or acquisition cost).
    horizon
        Purchases are counted in ``(0, horizon]`` (the data's time unit; finite).
    profiles
        Required for a model with covariates: one row per kind of new customer, with the
        model's covariate columns (the index names the profiles). Default: one profile,
        ``"population"``.
    value_horizon
        Horizon of the value V_new (default infinite, discounted).
    max_purchases
        The purchase distribution lists n = 0..max_purchases and the rest.
    discount_rate, margin
        Effective annual discount rate and margin on spend, as in
        :func:`~clvbayes.customer_lifetime_value`.
    payback_probability
        π of the maximum acquisition cost.
    time_unit
        The data's time unit (default: the model's data ``attrs["time_unit"]``, else weeks).
    hdi_prob
        Mass of the HDIs.
    spend_quantiles
        Levels of the predictive quantiles of a new customer's mean spend.
    n_draws
        Keep about this many posterior draws (default all).
    random_seed
        Seed of the ν draws behind the spend quantiles.

    Returns
    -------
    NewCustomerForecast
    """
    horizon = check_horizon(horizon, finite=True, what="new_customer_forecast")
    value_horizon = check_horizon(value_horizon)
    if isinstance(max_purchases, bool) or not isinstance(max_purchases, numbers.Integral) or max_purchases < 0:
        raise ValueError(f"max_purchases must be an integer >= 0, got {max_purchases!r}.")
    margin = check_margin(margin)
    d = check_discount_rate(discount_rate)
    check_probability(payback_probability, "payback_probability")
    check_probability(hdi_prob, "hdi_prob")
    seed = check_seed(random_seed)
    levels = np.asarray(spend_quantiles, dtype=np.float64).reshape(-1)
    if not (np.isfinite(levels).all() and ((levels >= 0) & (levels <= 1)).all()):
        raise ValueError(f"spend_quantiles must be in [0, 1], got {list(spend_quantiles)}.")
    if profiles is not None and (not isinstance(profiles, pd.DataFrame) or len(profiles) == 0):
        raise ValueError("profiles must be a non-empty DataFrame (one row per kind of new customer).")
    data = _model_data(purchase_model, gamma_gamma)
    unit = resolve_time_unit(data if data is not None else pd.DataFrame(), time_unit)
    delta = float(continuous_rate(np.array([d]), unit)[0])
    names = ["population"] if profiles is None else list(profiles.index)
    purchase = _profile_draws(purchase_model, profiles, n_draws, "purchase")
    spend = _profile_draws(gamma_gamma, profiles, n_draws, "spend")
    one = new_customer(unit, margin=margin, delta=delta)
    pmf_specs = [QuantitySpec(f"p{n}", K.PMF + n, horizon) for n in range(int(max_purchases) + 1)]
    specs = [QuantitySpec("expected_purchases", K.PURCHASES, horizon), *pmf_specs]
    if gamma_gamma is not None:
        specs += [QuantitySpec("clv", K.CLV, value_horizon), QuantitySpec("spend", K.SPEND, 0.0)]
    lo, hi = hdi_names(hdi_prob)
    rng = np.random.default_rng(seed)
    summary, pmf_rows, spend_rows, values = {}, [], {}, []
    grid = None
    for k, name in enumerate(names):
        draws = joint_draws(purchase[k], spend[k]) if spend[k] is not None else purchase[k]
        grid = draws if grid is None else grid
        fam = get_family(draws.family or "bgnbd")
        if gamma_gamma is not None:
            _check_finite_mean_spend(draws)
            check_convergent(draws[fam.finite_total_param], math.isinf(value_horizon) and delta == 0, "value",
                             name=fam.finite_total_param, model=fam.label, why=fam.finite_total_why)
        out = stream(draws, one, specs, probs=np.array([0.5]), hdi_prob=0.5, keep_draws=True)
        col = {s.name: out[s.name].full[:, 0] for s in specs}
        row = {f"expected_purchases_{key}": v for key, v in _stats(col["expected_purchases"], hdi_prob).items()}
        pmf = np.stack([col[s.name] for s in pmf_specs])  # (n, D)
        rest = np.clip(1.0 - pmf.sum(axis=0), 0.0, 1.0)
        for n, p in [*enumerate(pmf), (f">{int(max_purchases)}", rest)]:
            s = summarise_draws(p, hdi_prob)
            pmf_rows.append({"profile": name, "n": n, "probability": s["mean"], lo: s[lo], hi: s[hi]})
        if gamma_gamma is not None:
            v_new = col["clv"] + col["spend"]  # the acquisition purchase plus the discounted future
            values.append(v_new)
            row.update({f"expected_spend_{key}": v for key, v in _stats(_mean_spend(draws), hdi_prob).items()})
            row.update({f"value_{key}": v for key, v in _stats(v_new, hdi_prob).items()})
            row["max_acquisition_cost"] = float(np.quantile(v_new, 1.0 - payback_probability))
            per = -(-_SPEND_SAMPLES // draws.n)  # ν draws per parameter draw
            nu = rng.gamma(np.repeat(draws["q"], per), 1.0 / np.repeat(draws["gamma"], per))
            spend_rows[name] = np.quantile(np.repeat(draws["p"], per) / nu, levels)
        summary[name] = row
    out_summary = pd.DataFrame.from_dict(summary, orient="index")
    out_summary.index.name = "profile"
    purchases = pd.DataFrame(pmf_rows).set_index(["profile", "n"])
    spend_q = pd.DataFrame.from_dict(spend_rows, orient="index", columns=[f"q{100 * q:g}%" for q in levels])
    spend_q.index.name = "profile"
    chain, draw = grid.chain, grid.draw
    value = xr.DataArray(
        np.stack(values).reshape(len(names), chain.size, draw.size) if values else np.zeros((len(names), chain.size, 0)),
        dims=("profile", "chain", "draw"),
        coords={"profile": names, "chain": chain, "draw": draw if values else draw[:0]}, name="value",
    )
    settings = {"horizon": horizon, "value_horizon": value_horizon, "discount_rate": d, "margin": margin,
                "payback_probability": float(payback_probability), "hdi_prob": float(hdi_prob), "time_unit": unit,
                "n_draws": grid.n, "source": grid.source}
    return NewCustomerForecast(out_summary, purchases, spend_q, value, settings)


def _stats(values: np.ndarray, hdi_prob: float) -> dict:
    s = summarise_draws(values, hdi_prob)
    lo, hi = hdi_names(hdi_prob)
    return {"mean": s["mean"], lo: s[lo], hi: s[hi]}


def _mean_spend(draws: ParameterDraws) -> np.ndarray:
    """Population mean spend per transaction ``p γ / (q - 1)`` per draw (FHL 2005, JMR, eq. 5 at x = 0)."""
    return draws["p"] * draws["gamma"] / (draws["q"] - 1.0)
