"""Per-customer quantities over the parameter draws: CLV, P(alive), expected purchases,
DERT, probability of n purchases, expected spend, dropout and lost value.

Every function takes fitted models and a customer summary and returns a
:class:`CustomerValue` per quantity: per-customer posterior mean, sd, quantiles and HDI;
per-draw totals by segment (the posterior of the segment sums); and, for small problems,
the full ``xarray.DataArray`` of draws with dims ``(chain, draw, customer_id)``.
:func:`customer_metrics` computes several quantities in one streamed pass.

Each value for a draw θ is the expectation given θ (e.g. the expected discounted future
value of the customer's transactions), so the spread over the draws is parameter
uncertainty; the posterior mean is the posterior-predictive expectation. With models fitted
by maximum likelihood there is one "draw" (the estimate): sd is NaN and the intervals
collapse to the point. Definitions and derivations: ``docs/theory/clv.md``; discounting and
time units: :mod:`clvbayes.value.customers`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.kernels import clv as K
from clvbayes.families import get_family
from clvbayes.value.arguments import check_convergent, check_horizon, check_probability
from clvbayes.value.customers import (
    DEFAULT_ANNUAL_DISCOUNT_RATE,
    CustomerArrays,
    customer_arrays,
    new_customer,
    quantile_names,
)
from clvbayes.value.draws import CellDraws, JointCellDraws, ParameterDraws, has_cells, joint_cell_draws, joint_draws
from clvbayes.value.engine import DISCOUNTED_CODES, QuantitySpec, StreamOutput, stream

__all__ = [
    "CustomerValue",
    "customer_metrics",
    "customer_lifetime_value",
    "probability_alive",
    "expected_purchases",
    "probability_of_purchases",
    "dert",
    "expected_spend",
    "QUANTITIES",
]

# name -> (kernel code, needs spend, needs a finite horizon, description)
QUANTITIES: dict[str, tuple[int, bool, bool, str]] = {
    "clv": (K.CLV, True, False, "margin x expected spend x discounted expected purchases over the horizon"),
    "p_alive": (K.P_ALIVE, False, False, "probability of being alive at the end of the observation period"),
    "expected_purchases": (K.PURCHASES, False, True, "expected purchases in the horizon"),
    "discounted_purchases": (K.DISCOUNTED, False, False, "discounted expected purchases in the horizon (DERT for an infinite horizon)"),
    "dropout": (K.DROPOUT, False, True, "probability of being alive now and dropping out within the horizon"),
    "lost_value": (K.LOST, True, False, "P(already dead) x the value the customer would have had if alive"),
    "spend": (K.SPEND, True, False, "margin x expected spend per transaction"),
}

_KEEP_BYTES = 256 * 2**20  # keep_draws="auto": keep full matrices up to this size each


@dataclass
class CustomerValue:
    """A per-customer quantity over the parameter draws.

    Attributes
    ----------
    name : str
        Quantity name (``"clv"``, ``"p_alive"``, ...).
    summary : pandas.DataFrame
        Indexed by customer id: ``mean``, ``sd``, the quantiles (``q5%`` ...) and the HDI
        (``hdi_3%``, ``hdi_97%`` for 94%; ArviZ's definition).
    totals : xarray.DataArray
        Per-draw sums over the customers of each segment, dims ``(segment, chain, draw)``.
    draws : xarray.DataArray or None
        The full values, dims ``(chain, draw, customer_id)``, when kept.
    settings : dict
        Horizon, discount rate, time unit, draws' source and count, HDI mass.
    """

    name: str
    summary: pd.DataFrame
    totals: xr.DataArray
    draws: xr.DataArray | None
    settings: dict = field(default_factory=dict)
    # What produced it, so equity and concentration can re-stream with other segments.
    parameter_draws: ParameterDraws | JointCellDraws | None = field(default=None, repr=False)
    customers: CustomerArrays | None = field(default=None, repr=False)
    spec: QuantitySpec | None = field(default=None, repr=False)
    table_cache: dict | None = field(default=None, repr=False)

    @property
    def total(self) -> xr.DataArray:
        """Per-draw sum over all customers, dims ``(chain, draw)``."""
        return self.totals.sum("segment")

    def totals_by(self, groups: pd.Series | np.ndarray) -> xr.DataArray:
        """Per-draw sums over other groups of customers, dims ``(group, chain, draw)``.

        ``groups`` gives each customer's group (a Series indexed by customer id, or an array
        in the summary's order). Uses the kept draws when there are any, else streams the
        quantity again with the groups as segments (same draws, same settings).
        """
        cust, draws = self.customers, self.parameter_draws
        if isinstance(groups, pd.Series):
            if not cust.index.isin(groups.index).all():
                raise ValueError("groups must have a value for every customer of the result.")
            groups = groups.reindex(cust.index).to_numpy()
        groups = np.asarray(groups)
        if groups.shape != (cust.n,):
            raise ValueError(f"groups must have one entry per customer ({cust.n}), got shape {groups.shape}.")
        codes, labels = pd.factorize(groups, sort=True)
        if (codes < 0).any():
            raise ValueError("groups must not contain missing values.")
        n_chain, n_draw = draws.shape
        if self.draws is not None:
            mat = self.draws.to_numpy().reshape(draws.n, cust.n)
            tot = np.zeros((len(labels), draws.n))
            for k in range(len(labels)):
                tot[k] = mat[:, codes == k].sum(axis=1)
        else:
            regrouped = replace(
                cust, segments=np.ascontiguousarray(codes.astype(np.int64)), segment_labels=pd.Index(labels),
            )
            raw = stream(draws, regrouped, [self.spec], probs=np.array([0.5]), hdi_prob=self.settings["hdi_prob"],
                         table_cache=self.table_cache)
            tot = raw[self.spec.name].segment_totals
        return xr.DataArray(
            tot.reshape(len(labels), n_chain, n_draw), dims=("group", "chain", "draw"),
            coords={"group": np.asarray(labels), "chain": draws.chain, "draw": draws.draw},
            name=f"{self.name}_total",
        )

    def total_summary(self, hdi_prob: float | None = None) -> pd.Series:
        """Mean, sd and HDI of the sum over all customers."""
        return summarise_draws(self.total.to_numpy().reshape(-1), hdi_prob or self.settings["hdi_prob"])

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"CustomerValue({self.name!r}: {len(self.summary)} customers x {s['n_draws']} {s['source']} draws, "
            f"horizon={s['horizon']}, total mean {float(self.total.mean()):.6g})"
        )


def summarise_draws(values: np.ndarray, hdi_prob: float) -> pd.Series:
    """Mean, sd (ddof 1) and HDI of a 1-D array of draws, by the kernel that summarises the
    per-customer draws (:func:`clvbayes.kernels.clv.clv_summarise`: ArviZ's HDI rule)."""
    v = np.ascontiguousarray(values, dtype=np.float64).reshape(-1, 1)
    mean, sd, hdi = np.empty(1), np.empty(1), np.empty((1, 2))
    K.clv_summarise(
        v, np.empty(0), float(hdi_prob), np.zeros(1, dtype=np.int64), mean, sd, np.empty((1, 0)), hdi,
        np.zeros((1, v.shape[0])),
    )
    lo_name, hi_name = hdi_names(hdi_prob)
    return pd.Series({"mean": float(mean[0]), "sd": float(sd[0]), lo_name: float(hdi[0, 0]), hi_name: float(hdi[0, 1])})


def hdi_names(hdi_prob: float) -> tuple[str, str]:
    """ArviZ-style names of the HDI bounds, e.g. ``hdi_3%``, ``hdi_97%`` for 0.94."""
    return f"hdi_{100 * (1 - hdi_prob) / 2:g}%", f"hdi_{100 * (1 + hdi_prob) / 2:g}%"


def _check_probs(quantiles: Sequence[float], hdi_prob: float) -> np.ndarray:
    probs = np.asarray(quantiles, dtype=np.float64).reshape(-1)
    if not (np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()):
        raise ValueError(f"quantiles must be in [0, 1], got {list(quantiles)}.")
    check_probability(hdi_prob, "hdi_prob")
    return probs


def _keep(keep_draws: object, nd: int, n: int, n_quantities: int) -> bool:
    if keep_draws == "auto":
        return nd * n * 8 * n_quantities <= _KEEP_BYTES
    if isinstance(keep_draws, bool):
        return keep_draws
    raise ValueError(f"keep_draws must be True, False or 'auto', got {keep_draws!r}.")


def _package(
    spec: QuantitySpec, raw: StreamOutput, draws: ParameterDraws, cust: CustomerArrays, probs: np.ndarray,
    hdi_prob: float, settings: dict, table_cache: dict | None = None,
) -> CustomerValue:
    name = spec.name
    lo_name, hi_name = hdi_names(hdi_prob)
    summary = pd.DataFrame({"mean": raw.mean, "sd": raw.sd}, index=cust.index)
    for j, col in enumerate(quantile_names(probs)):
        summary[col] = raw.quantiles[:, j]
    summary[lo_name] = raw.hdi[:, 0]
    summary[hi_name] = raw.hdi[:, 1]
    summary.index.name = cust.index.name or "customer_id"
    n_chain, n_draw = draws.shape
    coords = {"chain": draws.chain, "draw": draws.draw}
    totals = xr.DataArray(
        raw.segment_totals.reshape(len(cust.segment_labels), n_chain, n_draw),
        dims=("segment", "chain", "draw"),
        coords={"segment": np.asarray(cust.segment_labels), **coords},
        name=f"{name}_total",
    )
    full = None
    if raw.full is not None:
        full = xr.DataArray(
            raw.full.reshape(n_chain, n_draw, cust.n),
            dims=("chain", "draw", "customer_id"),
            coords={**coords, "customer_id": np.asarray(cust.index)},
            name=name,
        )
    return CustomerValue(name, summary, totals, full, {"quantity": name, **settings}, draws, cust, spec, table_cache)


def customer_metrics(
    bgnbd,
    gamma_gamma=None,
    data: pd.DataFrame | None = None,
    *,
    quantities: Sequence[str] = ("clv", "p_alive"),
    horizon: float = math.inf,
    discount_rate: float | np.ndarray | pd.Series = DEFAULT_ANNUAL_DISCOUNT_RATE,
    margin: float | np.ndarray | pd.Series = 1.0,
    time_unit: str | None = None,
    segment: object = "auto",
    hdi_prob: float = 0.94,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    n_draws: int | None = None,
    keep_draws: bool | str = "auto",
    block_size: int | None = None,
    horizons: Mapping[str, float] | None = None,
    cell_path: str = "auto",
) -> dict[str, CustomerValue]:
    """Several per-customer quantities in one streamed pass over the joint draws.

    Parameters
    ----------
    bgnbd
        Fitted purchase model (:class:`~clvbayes.BetaGeoModel` or another family; posterior
        draws, or point estimates), or its :class:`~clvbayes.value.draws.ParameterDraws`
        (then ``data`` is needed); None when the only quantity is ``spend``. A model with
        covariates (:class:`~clvbayes.CovariatePurchaseModel`, anything with ``cell_draws``;
        its customers matched by id) or its :class:`~clvbayes.value.draws.CellDraws` (customers
        in ``data``'s order) values each customer at its cell's parameters
        (:func:`clvbayes.value.draws.joint_cell_draws`, :func:`clvbayes.value.engine.stream_cells`).
    gamma_gamma
        Fitted :class:`~clvbayes.GammaGammaModel` or its
        :class:`~clvbayes.value.draws.ParameterDraws`, or a spend model with ``cell_draws``
        (or its :class:`~clvbayes.value.draws.CellDraws` of ``p, q, gamma``); needed for
        ``clv``, ``lost_value``, ``spend``. Its draws are paired with the BG/NBD draws
        (:func:`clvbayes.value.draws.joint_draws`).
    data
        Customer summary (default: the BG/NBD model's data); ``monetary_value`` is needed
        for the spend quantities (customers with frequency 0 get the population mean spend).
    quantities
        Names from :data:`QUANTITIES`: ``clv``, ``p_alive``, ``expected_purchases``,
        ``discounted_purchases``, ``dropout``, ``lost_value``, ``spend``.
    horizon
        Length of the future period in the data's time unit (``inf``: the whole future;
        ``expected_purchases`` and ``dropout`` need a finite one). ``horizons`` overrides it
        per quantity.
    discount_rate
        Effective annual discount rate (>= 0), scalar or per customer; converted to a
        continuous rate per time unit (:mod:`clvbayes.value.customers`). Default
        :data:`~clvbayes.value.customers.DEFAULT_ANNUAL_DISCOUNT_RATE` (0.1).
    margin
        Multiplies the spend (profit margin; 1 for revenue), scalar or per customer.
    time_unit
        The data's time unit (default ``data.attrs["time_unit"]``, else weeks).
    segment
        Segments for the per-draw totals: ``"auto"`` (acquisition month when the summary has
        ``first_purchase``), ``"cohort"``, a column name, a Series by customer id, or None.
    hdi_prob, quantiles
        Summary settings.
    n_draws
        Use about this many evenly thinned draws (default: all).
    keep_draws
        Return the full (chain, draw, customer_id) arrays: True, False, or ``"auto"`` (when
        all of them take at most 256 MiB).
    block_size
        Customers per streamed block (default: a 32 MiB block).
    cell_path
        Models with covariates: ``"auto"``, ``"tables"`` or ``"rows"``
        (:func:`clvbayes.value.engine.stream_cells`; the same numbers to 1e-10).

    Returns
    -------
    dict[str, CustomerValue]
    """
    unknown = [q for q in quantities if q not in QUANTITIES]
    if unknown or not quantities:
        raise ValueError(f"Unknown quantities {unknown}; choose from {list(QUANTITIES)}.")
    needs_spend = any(QUANTITIES[q][1] for q in quantities)
    if needs_spend and gamma_gamma is None:
        raise ValueError(f"{[q for q in quantities if QUANTITIES[q][1]]} need a fitted GammaGammaModel (gamma_gamma=...).")
    if bgnbd is None and any(q != "spend" for q in quantities):
        raise ValueError(f"{[q for q in quantities if q != 'spend']} need a fitted purchase model (bgnbd=...); "
                         "only 'spend' is computed from the Gamma-Gamma model alone.")
    probs = _check_probs(quantiles, hdi_prob)
    horizons = dict(horizons or {})
    specs = []
    for q in quantities:
        code, _, finite, _ = QUANTITIES[q]
        specs.append(QuantitySpec(q, code, check_horizon(horizons.get(q, horizon), finite=finite, what=q)))
    return _evaluate(
        bgnbd, gamma_gamma if needs_spend else None, data, specs, {q: QUANTITIES[q][3] for q in quantities},
        discount_rate=discount_rate, margin=margin, time_unit=time_unit, segment=segment, probs=probs,
        hdi_prob=float(hdi_prob), n_draws=n_draws, keep_draws=keep_draws, block_size=block_size,
        cell_path=cell_path,
    )


def _evaluate(
    bgnbd, gamma_gamma, data: pd.DataFrame | None, specs: Sequence[QuantitySpec], descriptions: Mapping[str, str], *,
    discount_rate, margin, time_unit, segment, probs: np.ndarray, hdi_prob: float, n_draws, keep_draws, block_size,
    extra: Mapping[str, object] | None = None, cell_path: str = "auto",
) -> dict[str, CustomerValue]:
    """Validate the customers, pair the draws, stream ``specs`` and package the results
    (``gamma_gamma`` given exactly when a quantity needs spend)."""
    needs_spend = gamma_gamma is not None
    if data is None:
        data = _default_data(bgnbd, gamma_gamma)
    cust = customer_arrays(
        data, spend=needs_spend, margin=margin, discount_rate=discount_rate, time_unit=time_unit, segment=segment,
        purchases=bgnbd is not None,
    )
    if has_cells(bgnbd) or has_cells(gamma_gamma):  # covariates: parameters per cell of customers
        draws = joint_cell_draws(bgnbd, gamma_gamma, n_draws, cust.index)
    else:
        draws = joint_draws(bgnbd, gamma_gamma, n_draws)
    if needs_spend:
        _check_finite_mean_spend(draws)
    for s in specs:
        if s.code in DISCOUNTED_CODES:
            fam = get_family(draws.family or "bgnbd")
            check_convergent(draws[fam.finite_total_param], math.isinf(s.horizon) and bool((cust.delta == 0).any()),
                             s.name, name=fam.finite_total_param, model=fam.label, why=fam.finite_total_why)
    keep = _keep(keep_draws, draws.n, cust.n, len(specs))
    tables: dict = {}
    raw = stream(draws, cust, specs, probs=probs, hdi_prob=hdi_prob, block_size=block_size, keep_draws=keep,
                 table_cache=tables, cell_path=cell_path)
    base = {
        "discount_rate": discount_rate if np.ndim(discount_rate) == 0 else "per customer",
        "margin": margin if np.ndim(margin) == 0 else "per customer",
        "time_unit": cust.time_unit,
        "source": draws.source,
        "n_draws": draws.n,
        "hdi_prob": hdi_prob,
        "segment": cust.segment_name,
        **(extra or {}),
    }
    return {
        s.name: _package(
            s, raw[s.name], draws, cust, probs, hdi_prob,
            {"description": descriptions[s.name], **base, "horizon": s.horizon}, tables,
        )
        for s in specs
    }


def _default_data(bgnbd, gamma_gamma) -> pd.DataFrame:
    """The BG/NBD model's customer summary, with the Gamma-Gamma model's ``monetary_value``
    when spend is needed and only that model has it (e.g. two models loaded from files)."""
    if isinstance(bgnbd, (ParameterDraws, CellDraws, JointCellDraws)):
        raise ValueError("Parameter draws carry no customers: pass the customer summary (data=...).")
    data = model_data(bgnbd)
    if gamma_gamma is None or "monetary_value" in data.columns or getattr(gamma_gamma, "data", None) is None:
        return data
    spend = gamma_gamma.data
    if "monetary_value" not in spend.columns or not data.index.isin(spend.index).all():
        return data  # customer_arrays names the missing column
    joined = data.join(spend["monetary_value"])
    joined.attrs = dict(data.attrs)
    return joined


def model_data(model) -> pd.DataFrame:
    """A fitted model's customer summary: ``_data_or_default`` (the package's models, which
    explain a missing one), else its ``data`` (models with covariates)."""
    if hasattr(model, "_data_or_default"):
        return model._data_or_default(None)
    data = getattr(model, "data", None)
    if data is None:
        raise ValueError(f"This {type(model).__name__} carries no customer summary: pass data=...")
    return data


def new_customer_expectations(
    bgnbd, specs: Sequence[QuantitySpec], time_unit: str = "W"
) -> dict[str, float]:
    """Expectation over the draws of each quantity for a customer acquired now (x = t_x =
    T = 0: P(alive) = 1, so the conditional quantities are the unconditional ones, FHL
    2005 eqs. 8-9): the posterior expectation after a NUTS fit, the value at the estimate
    for a point fit."""
    draws = joint_draws(bgnbd, None)
    one = new_customer(time_unit)
    out = stream(draws, one, specs, probs=np.empty(0), hdi_prob=0.5)
    return {s.name: float(out[s.name].mean[0]) for s in specs}


def _check_finite_mean_spend(draws: ParameterDraws) -> None:
    """The Gamma-Gamma mean spend p·γ/(q - 1) exists only for q > 1 (FHL 2005, JMR eq. 5)."""
    bad = draws["q"] <= 1.0
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} of {draws.n} Gamma-Gamma draws have q <= 1, where the mean spend per "
            "transaction does not exist (infinite), so CLV is undefined for them. Refit the "
            "GammaGammaModel with a prior on q that keeps it above 1 (e.g. priors={'q': "
            "clvbayes.Prior('Gamma', alpha=..., beta=...)} with little mass below 1), or use more data."
        )


def _one(name: str, bgnbd, gamma_gamma, data, **kw) -> CustomerValue:
    return customer_metrics(bgnbd, gamma_gamma, data, quantities=(name,), **kw)[name]


def customer_lifetime_value(
    bgnbd,
    gamma_gamma,
    data: pd.DataFrame | None = None,
    *,
    horizon: float = math.inf,
    discount_rate: float | np.ndarray | pd.Series = DEFAULT_ANNUAL_DISCOUNT_RATE,
    margin: float | np.ndarray | pd.Series = 1.0,
    **kwargs,
) -> CustomerValue:
    """Customer lifetime value over the joint BG/NBD x Gamma-Gamma posterior.

    For draw θ and customer i (``docs/theory/clv.md``, section 2)::

        CLV_i(θ) = margin_i · E[Z | x_i, m_i; θ] · P(alive | x_i, t_x,i, T_i; θ)
                   · E[∫_0^H e^{-δ_i s} dY_i(T_i + s) | alive; θ]

    the Gamma-Gamma expected spend (Fader, Hardie & Lee 2005, JMR 42(4), eq. 5) times the
    discounted expected purchases of the BG/NBD (Fader, Hardie & Lee 2005, Marketing
    Science 24(2)); ``horizon=inf`` gives the DERT (discounted expected residual
    transactions) form, a finite horizon the discounted purchases in (T, T + horizon].
    Both models' draws are used together, draw by draw.

    Parameters
    ----------
    bgnbd, gamma_gamma
        Fitted models (posteriors, or point estimates for MLE values).
    data
        Customer summary (default: the BG/NBD model's data) with ``monetary_value``.
    horizon
        Future period in the data's time unit (default: infinite).
    discount_rate
        Effective annual rate (default :data:`~clvbayes.value.customers.DEFAULT_ANNUAL_DISCOUNT_RATE`,
        0.1), scalar or per customer.
    margin
        Profit margin on spend (default 1: revenue), scalar or per customer.
    **kwargs
        ``time_unit``, ``segment``, ``hdi_prob``, ``quantiles``, ``n_draws``, ``keep_draws``,
        ``block_size`` as in :func:`customer_metrics`.

    Returns
    -------
    CustomerValue

    Examples
    --------
    >>> clv = customer_lifetime_value(bgnbd, gg, rfm, horizon=52, discount_rate=0.1, margin=0.3)  # doctest: +SKIP
    >>> clv.summary.sort_values("mean").tail()  # doctest: +SKIP
    """
    return _one("clv", bgnbd, gamma_gamma, data, horizon=horizon, discount_rate=discount_rate, margin=margin, **kwargs)


def probability_alive(bgnbd, data: pd.DataFrame | None = None, **kwargs) -> CustomerValue:
    """P(alive at T | x, t_x, T) over the BG/NBD draws (Fader, Hardie & Lee 2005; note 021).

    ``**kwargs`` as in :func:`customer_metrics` (``segment``, ``hdi_prob``, ``n_draws``, ...);
    the per-draw totals are the expected numbers of alive customers per segment.
    """
    return _one("p_alive", bgnbd, None, data, **kwargs)


def expected_purchases(bgnbd, data: pd.DataFrame | None = None, *, horizon: float, **kwargs) -> CustomerValue:
    """Expected purchases in (T, T + horizon] given each history (FHL 2005 eq. 10), over the
    BG/NBD draws; ``**kwargs`` as in :func:`customer_metrics`."""
    return _one("expected_purchases", bgnbd, None, data, horizon=horizon, **kwargs)


def dert(
    bgnbd, data: pd.DataFrame | None = None, *,
    discount_rate: float | np.ndarray | pd.Series = DEFAULT_ANNUAL_DISCOUNT_RATE, horizon: float = math.inf,
    **kwargs,
) -> CustomerValue:
    """Discounted expected residual transactions (horizon inf) or discounted expected purchases
    in (T, T + horizon], over the BG/NBD draws (``docs/theory/clv.md``, sections 1-3).

    ``discount_rate`` is the effective annual rate (:mod:`clvbayes.value.customers`; default
    0.1, :data:`~clvbayes.value.customers.DEFAULT_ANNUAL_DISCOUNT_RATE`).
    """
    return _one("discounted_purchases", bgnbd, None, data, horizon=horizon, discount_rate=discount_rate, **kwargs)


def expected_spend(
    gamma_gamma, data: pd.DataFrame | None = None, *, margin: float | np.ndarray | pd.Series = 1.0, **kwargs
) -> CustomerValue:
    """Gamma-Gamma expected spend per transaction, E[Z | x, m] (FHL 2005, JMR 42(4), eq. 5),
    times ``margin``, over the Gamma-Gamma draws. Customers with frequency 0 get the
    population mean p·γ/(q - 1). NaN for draws with q <= 1 (no finite mean).

    ``**kwargs`` as in :func:`customer_metrics`.
    """
    if data is None:
        if isinstance(gamma_gamma, (ParameterDraws, CellDraws)):
            raise ValueError("Parameter draws carry no customers: pass the customer summary (data=...).")
        data = model_data(gamma_gamma)
    return _one("spend", None, gamma_gamma, data, margin=margin, **kwargs)


def probability_of_purchases(
    bgnbd,
    data: pd.DataFrame | None = None,
    *,
    horizon: float,
    n: int,
    time_unit: str | None = None,
    segment: object = "auto",
    hdi_prob: float = 0.94,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    n_draws: int | None = None,
    keep_draws: bool | str = "auto",
    block_size: int | None = None,
) -> CustomerValue:
    """P(exactly n purchases in (T, T + horizon] | history) over the BG/NBD draws:
    ``P_alive · P_BGNBD(X(t) = n; r+x, α+T, a, b+x) + (1 - P_alive) [n = 0]`` (FHL 2005
    eq. 8 at the updated parameters). Other arguments as in :func:`customer_metrics`."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}.")
    horizon = check_horizon(horizon, finite=True, what="probability_of_purchases")
    probs = _check_probs(quantiles, hdi_prob)
    name = f"p_{int(n)}_purchases"
    spec = QuantitySpec(name, K.PMF + int(n), horizon)
    return _evaluate(
        bgnbd, None, data, [spec], {name: f"probability of exactly {int(n)} purchases in the horizon"},
        discount_rate=0.0, margin=1.0, time_unit=time_unit, segment=segment, probs=probs, hdi_prob=float(hdi_prob),
        n_draws=n_draws, keep_draws=keep_draws, block_size=block_size, extra={"n": int(n)},
    )[name]
