"""Simulation-based calibration of the covariate and hierarchical models.

The SBC of :mod:`clvbayes.sbc` (Talts, Betancourt, Simpson, Vehtari & Gelman 2018,
arXiv:1804.06788, Theorem 1 and Algorithm 1), for
:class:`~clvbayes.models.covariate.CovariatePurchaseModel`,
:class:`~clvbayes.models.covariate_spend.CovariateSpendModel` and
:class:`~clvbayes.models.hierarchical.HierarchicalPurchaseModel`. Per replicate every
parameter is drawn from the model's own prior (the free random variables of its PyMC model:
base parameters, coefficients and, for the hierarchical model, ``mu_p``, ``sigma_p`` and the
segment effects, with the segments' parameters ``p_segment`` as their deterministic
function), each customer gets its parameters through the model's own link
(``cell_parameters`` at its covariates / segment), the customers are simulated
(:func:`clvbayes.simulation.simulate_customers_by_row`; spend given the frequencies by
:func:`clvbayes.simulation.simulate_spend`), the model is fitted by NUTS through its public
``fit``, and the truth is ranked among the thinned posterior draws by the shared loop
:func:`clvbayes.sbc.run_replicates`. See ``docs/guide/sbc.md``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm

from clvbayes.models.covariate import CovariatePurchaseModel
from clvbayes.models.covariate_spend import CovariateSpendModel
from clvbayes.models.hierarchical import HierarchicalPurchaseModel
from clvbayes.families import get_family
from clvbayes.models.priors import default_gamma_gamma_priors, resolve_priors
from clvbayes.sbc import CDNOW_BGNBD_PARAMS, SBCResult, _check_int, _SetupError, nuts_draws, run_replicates
from clvbayes.simulation import simulate_customers, simulate_customers_by_row, simulate_spend

__all__ = ["covariate_sbc", "sbc_attributes"]

#: Levels of the categorical covariate of :func:`sbc_attributes` and their shares.
CHANNELS: tuple[tuple[str, float], ...] = (("app", 0.3), ("store", 0.3), ("web", 0.4))


def sbc_attributes(n_customers: int, *, seed: int, n_segments: int = 0) -> pd.DataFrame:
    """A seeded customer attribute table: ``channel`` (categorical, :data:`CHANNELS`),
    ``tenure`` (numeric, Gamma(2, scale 1.5), a skewed positive covariate) and, with
    ``n_segments``, ``segment`` (``"s0"``, ``"s1"``, ... in turn, so every segment has
    ``n_customers / n_segments`` customers). Index ``customer_id`` 0..n-1."""
    n = _check_int("n_customers", n_customers, 1)
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    levels, shares = zip(*CHANNELS, strict=True)
    frame = pd.DataFrame({"channel": rng.choice(np.array(levels, dtype=object), size=n, p=np.array(shares)),
                          "tenure": rng.gamma(2.0, 1.5, size=n)},
                         index=pd.RangeIndex(n, name="customer_id"))
    if n_segments:
        frame["segment"] = [f"s{k % n_segments}" for k in range(n)]
    return frame


def _variables(model) -> dict[str, list[str]]:
    """The model's ranked variables: name in the posterior -> the labels of its components."""
    out: dict[str, list[str]] = {}
    if isinstance(model, HierarchicalPurchaseModel):
        for p in model.param_names:
            out[f"mu_{p}"] = [f"mu_{p}"]
            out[f"sigma_{p}"] = [f"sigma_{p}"]
            out[f"{p}_segment"] = [f"{p}_segment[{s}]" for s in model.segments]
    else:
        out.update({p: [p] for p in model.param_names})
    for name, (_, design) in model.coefficient_names.items():
        out[name] = [f"{name}[{term}]" for term in design.names]
    return out


def _template(model_class: type, attributes: pd.DataFrame, T: np.ndarray, kwargs: Mapping[str, Any]):
    """An instance on the attribute table with a placeholder history, for its prior, its
    variables and (purchase models) its design: every customer one repeat purchase at time
    T/2 (spend 1), so that every level counts as seen by repeat buyers."""
    frame = attributes.copy()
    frame["frequency"] = 1.0
    if issubclass(model_class, CovariateSpendModel):
        frame["monetary_value"] = 1.0
    else:
        frame["recency"] = T / 2.0
        frame["T"] = T
    return model_class(frame, **kwargs)


def _prior_draws(template, variables: Mapping[str, list[str]], replicates: int, seed: int) -> dict[str, np.ndarray]:
    """``replicates`` joint draws of the variables from the template's own PyMC model (its
    priors; the likelihood Potential is not part of the draw): name -> (replicates, k)."""
    model = template.model
    values = pm.draw([model[name] for name in variables], draws=replicates, random_seed=seed)
    return {name: np.asarray(v, dtype=float).reshape(replicates, -1) for name, v in zip(variables, values, strict=True)}


def _customer_parameters(template, draws: Mapping[str, np.ndarray], i: int) -> np.ndarray:
    """Each customer's parameters (n, n_params) in replicate ``i``, by the model's own link."""
    if isinstance(template, HierarchicalPurchaseModel):
        base = {p: draws[f"{p}_segment"][i][None, :] for p in template.param_names}
    else:
        base = {p: draws[p][i] for p in template.param_names}
    coefficients = {c: draws[c][i][None, :] for c in template.coefficient_names}
    return template.cell_parameters(base, coefficients)[template.cell, 0, :]


def _same_design(model, template) -> None:
    """The fitted instance must encode the customers as the simulating one did."""
    if not (np.array_equal(model._z_customers, template._z_customers) and np.array_equal(model.cell, template.cell)
            and model._resolved_priors() == template._resolved_priors()):
        raise _SetupError(f"The fitted {type(model).__name__} encodes the customers or resolves the priors "
                          "differently from the one the data were simulated with.")


def covariate_sbc(
    model_class: type[CovariatePurchaseModel] | type[CovariateSpendModel],
    attributes: pd.DataFrame,
    *,
    T: float | np.ndarray,
    model_kwargs: Mapping[str, Any],
    simulation_model_kwargs: Mapping[str, Any] | None = None,
    replicates: int = 100,
    draws: int = 500,
    thin: int = 10,
    chains: int = 2,
    tune: int = 500,
    bins: int | None = None,
    bgnbd_params: Mapping[str, float] | None = None,
    seed: int,
    progress: bool = False,
    **fit_kwargs: Any,
) -> SBCResult:
    """Simulation-based calibration of a covariate or hierarchical model (Talts et al. 2018).

    Parameters
    ----------
    model_class
        :class:`~clvbayes.models.covariate.CovariatePurchaseModel`,
        :class:`~clvbayes.models.covariate_spend.CovariateSpendModel` or
        :class:`~clvbayes.models.hierarchical.HierarchicalPurchaseModel` (or a subclass).
    attributes
        The customers' covariate (and segment) columns, one row per customer, the same in
        every replicate (e.g. :func:`sbc_attributes`).
    T
        Customer ages, a scalar or one per customer, the same in every replicate.
    model_kwargs
        Keyword arguments of ``model_class`` (covariates, segment, ...). For the spend model
        ``priors`` defaults to Gamma-Gamma's defaults at spend scale 1 (see
        :func:`clvbayes.sbc.simulation_based_calibration`); the purchase models' default
        priors depend only on the mean of the fixed ``T``.
    simulation_model_kwargs
        Settings that differ for the instance the truth is drawn from and simulated with
        (default: none). Only for negative controls: a prior that differs from the fit's
        (e.g. ``{"coefficient_prior_sigma": 3.0}``) must make the ranks non-uniform.
    replicates, draws, thin, chains, tune, bins, seed, progress, **fit_kwargs
        As :func:`clvbayes.sbc.simulation_based_calibration`.
    bgnbd_params
        Spend model only: the BG/NBD parameters of the (fixed) purchase process, default
        :data:`clvbayes.sbc.CDNOW_BGNBD_PARAMS`.

    Returns
    -------
    SBCResult
        Parameters named as :func:`_variables` labels them (``gamma_purchase[tenure]``,
        ``alpha_segment[s2]``, ...); :meth:`~clvbayes.sbc.SBCResult.coverage` gives the
        50 % and 90 % interval coverage.

    Notes
    -----
    *Spend.* The spend model builds its design (level checks, the numeric covariates'
    centring and scaling) on the repeat buyers, so its link depends on the purchase
    history. The frequencies come first (:func:`clvbayes.simulate_customers` at
    ``bgnbd_params``: they do not depend on the spend parameters), then the design on
    their repeat buyers gives every customer's ``γ_i`` and the spend is drawn given the
    frequencies (:func:`clvbayes.simulation.simulate_spend`).
    """
    if not (isinstance(model_class, type) and issubclass(model_class, CovariatePurchaseModel | CovariateSpendModel)):
        raise TypeError(f"model_class must be a covariate or hierarchical model class, got {model_class!r}.")
    for key in ("method", "random_seed", "progressbar"):
        if key in fit_kwargs:
            raise TypeError(f"SBC sets {key} itself; do not pass it.")
    replicates, draws, thin = (_check_int(k, v, 1) for k, v in (("replicates", replicates), ("draws", draws),
                                                                  ("thin", thin)))
    chains = _check_int("chains", chains, 1)
    tune = _check_int("tune", tune, 0)
    seed = _check_int("seed", seed, 0)
    n = len(attributes)
    T_arr = np.asarray(T, dtype=float)
    T_arr = np.full(n, float(T_arr)) if T_arr.ndim == 0 else T_arr
    if T_arr.shape != (n,) or not (np.all(np.isfinite(T_arr)) and np.all(T_arr > 0)):
        raise ValueError(f"T must be a positive scalar or {n} positive ages.")
    attributes = attributes.reset_index(drop=True).rename_axis("customer_id")
    spend = issubclass(model_class, CovariateSpendModel)
    kwargs = dict(model_kwargs)
    if spend:
        kwargs.setdefault("priors", default_gamma_gamma_priors(1.0))
        freq_params = dict(CDNOW_BGNBD_PARAMS if bgnbd_params is None else bgnbd_params)
    elif bgnbd_params is not None:
        raise ValueError("bgnbd_params is for CovariateSpendModel only.")
    elif issubclass(model_class, CovariatePurchaseModel) and not issubclass(model_class, HierarchicalPurchaseModel):
        family = kwargs.get("family", "bgnbd")
        kwargs["priors"] = resolve_priors(kwargs.get("priors"), get_family(family).default_priors(float(T_arr.mean())),
                                          model_class.__name__)
    fit_template = _template(model_class, attributes, T_arr, kwargs)
    sim_template = (fit_template if not simulation_model_kwargs
                    else _template(model_class, attributes, T_arr, {**kwargs, **simulation_model_kwargs}))
    variables = _variables(fit_template)
    names = tuple(label for labels in variables.values() for label in labels)
    n_draws = chains * len(range(0, draws, thin))

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    prior_seed = int(rng.integers(0, 2**31 - 1))
    rep_seeds = rng.integers(0, 2**31 - 1, size=(replicates, 3))
    truth = _prior_draws(sim_template, variables, replicates, prior_seed)
    theta = np.column_stack([truth[name] for name in variables])

    def replicate(i: int, _truth: dict, sim_seed: int, fit_seed: int, row: dict) -> dict[str, np.ndarray]:
        purchase_seed, spend_seed = (int(s) for s in np.random.default_rng(sim_seed).integers(0, 2**62, size=2))
        if spend:
            history = simulate_customers(**freq_params, T=T_arr, seed=purchase_seed)
            frame = attributes.assign(frequency=history["frequency"].to_numpy(dtype=float), monetary_value=1.0)
            frame.loc[frame["frequency"] == 0, "monetary_value"] = 0.0
            designed = model_class(frame, **{**kwargs, **(simulation_model_kwargs or {})})  # the design on repeat buyers
            theta_i = _customer_parameters(designed, truth, i)
            frame["monetary_value"] = simulate_spend(frame["frequency"], *theta_i.T, seed=spend_seed)
            model = model_class(frame, **kwargs)
            _same_design(model, designed)
            row["n_repeat"] = row["n_fit"] = model.n_customers_
        else:
            theta_i = _customer_parameters(sim_template, truth, i)
            family = sim_template.family
            history = simulate_customers_by_row(pd.DataFrame(theta_i, columns=list(family.param_names)), T=T_arr,
                                                model=family, seed=purchase_seed)
            frame = pd.concat([history[["frequency", "recency", "T"]], attributes], axis=1)
            model = model_class(frame, **kwargs)
            _same_design(model, fit_template)
            row["n_repeat"] = int((history["frequency"] > 0).sum())
            row["n_fit"] = len(frame)
        posterior = nuts_draws(model, tuple(variables), row, chains=chains, draws=draws, tune=tune, thin=thin,
                               seed=fit_seed, fit_kwargs=fit_kwargs)
        out = {}
        for name, labels in variables.items():
            values = posterior[name].reshape(n_draws, -1)
            out.update({label: values[:, j] for j, label in enumerate(labels)})
        return out

    run = run_replicates(model_class.__name__, names, theta, replicate, n_draws=n_draws, rep_seeds=rep_seeds,
                         progress=progress)
    settings = {"n_customers": n, "T_mean": float(T_arr.mean()), "replicates": replicates, "draws": draws,
                "thin": thin, "chains": chains, "tune": tune, "seed": seed, "model_kwargs": dict(model_kwargs),
                "simulation_model_kwargs": dict(simulation_model_kwargs or {}),
                "bgnbd_params": freq_params if spend else None, "fit_kwargs": dict(fit_kwargs)}
    priors = dict(fit_template._resolved_priors())
    return run.result(model_class.__name__, priors, bins, settings, time.perf_counter() - start)
