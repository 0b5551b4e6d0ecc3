"""Compare fitted purchase models by PSIS-LOO (and, optionally, by holdout forecasts).

The table follows :func:`arviz.compare` (Vehtari, Gelman & Gabry 2017, Statistics and
Computing 27, sec. 5.2): models ranked by ``elpd_loo``, each with the difference to the
best and the standard error of that *paired* difference, computed over the same customers:
``dse = sqrt(N · var(elpd_i^A - elpd_i^best))`` (weighted by the customers per distinct
history). Differences of a few ``dse`` are noise; several ``dse`` is a real difference.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from clvbayes.comparison.loo import ParetoKWarning, WeightedLoo, weighted_loo
from clvbayes.comparison.pointwise import model_data

__all__ = ["compare_models"]

_HOLDOUT_METRICS = {"MAE": "holdout_mae", "RMSE": "holdout_rmse", "bias": "holdout_bias",
                    "coverage": "holdout_coverage"}


def _same_data(names: list[str], data: dict) -> None:
    """Refuse models fitted on different customers (LOO values are then not comparable)."""
    ref = names[0]
    cols, w = data[ref].columns, data[ref].weights
    for name in names[1:]:
        other = data[name]
        same = (other.weights.shape == w.shape and np.array_equal(other.weights, w)
                and all(np.array_equal(a, b) for a, b in zip(other.columns, cols, strict=True)))
        if not same:
            raise ValueError(
                f"Models {ref!r} and {name!r} were fitted on different data ({data[ref].n_customers:,} customers in "
                f"{w.size:,} distinct histories vs {other.n_customers:,} in {other.weights.size:,}): LOO compares "
                "models on the same customers only. Fit every model on the same summary."
            )


def _paired_se(a: WeightedLoo, b: WeightedLoo) -> float:
    """``sqrt(N var(elpd_i^a - elpd_i^b))`` over the customers: on the distinct histories when
    both models use the same ones, else per data row (a model with covariates splits
    histories by cell)."""
    if a.weights.shape == b.weights.shape and all(np.array_equal(u, v) for u, v in zip(a.rows, b.rows, strict=True)):
        d = a.elpd_i - b.elpd_i
        w = a.weights
    else:
        if a.row_weights is not None or b.row_weights is not None or a.inverse.size != b.inverse.size:
            raise ValueError(
                "A model with covariates is compared per customer: fit every model on the same per-customer summary "
                "(not on a compressed table with a 'customers' column)."
            )
        ib = b.inverse
        if not a.customer_index.equals(b.customer_index):  # the same customers in another order
            pos = b.customer_index.get_indexer(a.customer_index)
            if (pos < 0).any():
                raise ValueError("The models were fitted on different customers (their ids differ): compare models "
                                 "fitted on the same customer summary.")
            ib = b.inverse[pos]
        d = a.elpd_i[a.inverse] - b.elpd_i[ib]
        w = np.ones(d.size)
    mean = float(w @ d) / float(w.sum())
    return math.sqrt(float(w @ (d - mean) ** 2))


def compare_models(
    fits: Mapping[str, object],
    *,
    holdout: pd.DataFrame | None = None,
    hdi_prob: float = 0.94,
    n_draws: int | None = None,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Rank fitted purchase models by PSIS-LOO over all their customers.

    Parameters
    ----------
    fits
        ``{name: fitted model}``, e.g. ``{"BG/NBD": BetaGeoModel(rfm).fit()}``, all fitted on
        the same customer summary. A model fitted by ``fit_mle()`` / ``fit(method="map")``
        (no posterior) gets NaN LOO columns and a note.
    holdout
        Optional calibration/holdout summary (:func:`clvbayes.calibration_holdout_split`,
        with ``frequency_holdout`` and ``duration_holdout``): adds each model's holdout
        purchase forecast errors from :func:`clvbayes.holdout_validation`.
    hdi_prob, n_draws, random_seed
        Passed to :func:`clvbayes.holdout_validation` (interval mass, draws used, seed).

    Returns
    -------
    pandas.DataFrame
        One row per model (index ``model``), sorted by ``elpd_loo`` (best first; models
        without LOO last): ``rank`` (0 = best), ``elpd_loo``, ``se``, ``elpd_diff`` (best
        minus this model, >= 0), ``dse`` (SE of that paired difference), ``p_loo``,
        ``n_customers``, ``k_gt_0.7`` and ``k_gt_1`` (customers whose Pareto k exceeds 0.7,
        1), ``warning`` (some k above ``min(1 - 1/log10(S), 0.7)``: the model's LOO is
        unreliable for those customers), ``note``; with ``holdout`` also ``holdout_mae``,
        ``holdout_rmse``, ``holdout_bias`` (mean forecast minus actual purchases) and
        ``holdout_coverage`` (share of customers inside the ``hdi_prob`` interval).

    Raises
    ------
    ValueError
        For no models, or models fitted on different data.
    """
    if not isinstance(fits, Mapping) or not fits:
        raise ValueError("fits must be a non-empty dict {name: fitted model}.")
    names = [str(n) for n in fits]
    models = dict(zip(names, fits.values(), strict=True))
    data = {name: model_data(m) for name, m in models.items()}
    _same_data(names, data)

    loos: dict[str, WeightedLoo] = {}
    rows: dict[str, dict] = {}
    for name, model in models.items():
        row: dict = {"n_customers": data[name].n_customers, "note": ""}
        if data[name].posterior is None:
            row["note"] = "no posterior (MLE/MAP/from_params fit): no LOO; fit() with NUTS to compare"
        else:
            with warnings.catch_warnings():  # the table's warning column says it
                warnings.simplefilter("ignore", ParetoKWarning)
                res = weighted_loo(model)
            loos[name] = res
            k, w = res.pareto_k, res.weights
            row |= {"elpd_loo": res.elpd_loo, "se": res.se, "p_loo": res.p_loo,
                    "k_gt_0.7": int(w[k > 0.7].sum()), "k_gt_1": int(w[k > 1].sum()), "warning": res.warning}
            if res.warning:
                row["note"] = (f"Pareto k > {res.good_k:.2f} for {int(w[k > res.good_k].sum()):,} customers: "
                               "their LOO terms are unreliable")
        if holdout is not None:
            from clvbayes.value.validation import holdout_validation

            hv = holdout_validation(model, holdout, hdi_prob=hdi_prob, n_draws=n_draws, random_seed=random_seed)
            for metric, col in _HOLDOUT_METRICS.items():
                row[col] = float(hv.metrics.loc["model", ("purchases", metric)])
        rows[name] = row

    order = sorted(loos, key=lambda n: -loos[n].elpd_loo) + [n for n in names if n not in loos]
    best = order[0] if loos else None
    for rank, name in enumerate(order):
        row = rows[name]
        if name in loos:
            row["rank"] = rank
            row["elpd_diff"] = loos[best].elpd_loo - loos[name].elpd_loo
            row["dse"] = 0.0 if name == best else _paired_se(loos[name], loos[best])
    columns = ["rank", "elpd_loo", "se", "elpd_diff", "dse", "p_loo", "n_customers", "k_gt_0.7", "k_gt_1",
               "warning", "note"]
    if holdout is not None:
        columns += list(_HOLDOUT_METRICS.values())
    table = pd.DataFrame([rows[n] for n in order], index=pd.Index(order, name="model")).reindex(columns=columns)
    table["rank"] = table["rank"].astype("Int64")
    for col in ("k_gt_0.7", "k_gt_1"):
        table[col] = table[col].astype("Int64")
    table["warning"] = table["warning"].astype("boolean")
    return table
