"""Prior and posterior predictive simulation of the Bayesian models, as ArviZ groups.

Replicates are drawn by the Numba kernels of :mod:`clvbayes.kernels.predictive`, one per
(parameter draw, customer), so they carry both parameter uncertainty (one replicate per
posterior or prior draw) and process uncertainty (a fresh purchase/spend process per
replicate):

- BG/NBD ``frequency`` and ``recency``: a fresh customer of the customer's age ``T`` (the
  calibration period), compared with the observed summary;
- BG/NBD ``frequency_holdout``: purchases in ``(T, T + horizon]`` given the customer's own
  history (alive with probability P(alive), then the posterior rate and dropout), compared
  with the holdout counts of :func:`clvbayes.calibration_holdout_split`;
- Gamma-Gamma ``monetary_value``: the mean of the customer's ``x`` repeat transaction values
  for a fresh spend rate ``ν``, for the repeat buyers (the customers a fit uses).

Every variable has dims ``(chain, draw, customer_id)``, and ``observed_data`` holds the
matching observations, so ``arviz.plot_ppc(idata, var_names=["frequency"])`` works as is.
Counts are int32: memory is ``chains x draws x customers x 12`` bytes for the calibration
replicates (+4 with a horizon); ``n_draws`` simulates from a random subset of draws.

The functions here are what the models' ``sample_posterior_predictive`` and
``sample_prior_predictive`` methods call.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from clvbayes._version import __version__
from clvbayes.models.priors import draw_priors
from clvbayes.kernels.predictive import gg_mean_spend_replicates

__all__ = [
    "purchase_posterior_predictive",
    "purchase_prior_predictive",
    "gamma_gamma_posterior_predictive",
    "gamma_gamma_prior_predictive",
    "extend_idata",
]

SeedLike = int | np.random.Generator | None


# -- argument checks ----------------------------------------------------------------------
def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_horizon(horizon: Any) -> float | None:
    if horizon is None:
        return None
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Real) or not np.isfinite(horizon) or horizon < 0:
        raise ValueError(f"horizon must be None or a finite number >= 0 (in the data's time unit), got {horizon!r}.")
    return float(horizon)


def _kernel_seeds(rng: np.random.Generator, k: int) -> list[int]:
    """``k`` independent 63-bit kernel seeds (one per kind of replicate, so the streams of
    the calibration and holdout replicates are not the same numbers)."""
    return [int(s) for s in rng.integers(0, 2**63 - 1, size=k, dtype=np.int64)]


# -- parameter draws ----------------------------------------------------------------------
def _posterior_draws(
    model, n_draws: int | None, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Flattened posterior draws ``{name: (C*D',)}`` and the chain and draw coordinates.

    With ``n_draws`` a random subset of draw indices (without replacement, sorted) is taken
    in every chain; the original draw coordinates are kept so each replicate lines up with
    the posterior draw it was simulated from.
    """
    name = type(model).__name__
    idata = getattr(model, "idata_", None)
    if idata is None or "posterior" not in idata.groups():
        raise RuntimeError(
            f"This {name} has no posterior draws: call fit() (method='nuts') first, or {name}.load() a "
            "saved fit. For simulation from the priors use sample_prior_predictive()."
        )
    post = idata.posterior
    missing = [p for p in model.param_names if p not in post]
    if missing:
        raise ValueError(f"The posterior of this {name} lacks parameters {missing}; refit the model.")
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    chains = post["chain"].to_numpy()
    draws = post["draw"].to_numpy()
    index = np.arange(n_draw)
    if n_draws is not None:
        n_draws = _check_positive_int(n_draws, "n_draws")
        if n_draws < n_draw:
            index = np.sort(rng.choice(n_draw, size=n_draws, replace=False))
    values = {}
    for p in model.param_names:
        arr = post[p].transpose("chain", "draw").to_numpy()[:, index].astype(np.float64)
        if not (np.isfinite(arr).all() and (arr > 0).all()):
            raise ValueError(f"The posterior draws of {p} must be positive and finite.")
        values[p] = np.ascontiguousarray(arr.reshape(-1))
    return values, chains, draws[index]


def _prior_draws(model, samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``samples`` joint draws of the parameters from the model's priors (``priors_``).

    The model's likelihood is a ``pm.Potential``, which ``pm.sample_prior_predictive``
    warns it cannot honour; the parameters are drawn from the priors directly instead
    (same thing: a Potential does not change the prior).
    """
    seed = int(rng.integers(0, 2**31 - 1))
    drawn = draw_priors(model.priors_, model.param_names, samples, seed)
    return {p: np.ascontiguousarray(drawn[:, k]) for k, p in enumerate(model.param_names)}


# -- InferenceData assembly ---------------------------------------------------------------
def _attrs(kind: str) -> dict[str, str]:
    return {
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "arviz_version": az.__version__,
        "inference_library": "clvbayes",
        "inference_library_version": __version__,
        "clvbayes_replicates": kind,
    }


def _grid(values: dict[str, np.ndarray], chains: np.ndarray, draws: np.ndarray, ids: pd.Index) -> xr.Dataset:
    """Dataset of ``(chain, draw, customer_id)`` arrays from ``(C*D, N)`` arrays."""
    shape = (len(chains), len(draws), len(ids))
    coords = {"chain": chains, "draw": draws, "customer_id": ids.to_numpy()}
    return xr.Dataset(
        {k: (("chain", "draw", "customer_id"), v.reshape(shape)) for k, v in values.items()}, coords=coords
    )


def _params_dataset(values: dict[str, np.ndarray], samples: int) -> xr.Dataset:
    coords = {"chain": np.array([0]), "draw": np.arange(samples)}
    return xr.Dataset({k: (("chain", "draw"), v.reshape(1, samples)) for k, v in values.items()}, coords=coords)


def _observed(values: dict[str, np.ndarray], ids: pd.Index) -> xr.Dataset:
    return xr.Dataset(
        {k: (("customer_id",), v) for k, v in values.items()}, coords={"customer_id": ids.to_numpy()}
    )


def extend_idata(idata: az.InferenceData, groups: az.InferenceData) -> az.InferenceData:
    """Add ``groups`` to ``idata`` in place, replacing groups of the same name."""
    idata.extend(groups, join="right")
    return idata


# -- purchase models (any family) ---------------------------------------------------------
def _purchase_customers(model) -> pd.DataFrame:
    return model._constant_data()


def _replicators(model):
    from clvbayes.families.compiled import drivers_for

    d = drivers_for(model.family)
    return d.calibration_replicates, d.holdout_replicates


def _observed_holdout(model, horizon: float, ids: pd.Index) -> np.ndarray | None:
    """The data's ``frequency_holdout`` when it covers ``horizon``; else None."""
    data = getattr(model, "data", None)
    if not isinstance(data, pd.DataFrame) or "frequency_holdout" not in data.columns:
        return None
    if "duration_holdout" in data.columns:
        duration = data["duration_holdout"].to_numpy(dtype=float)
        if not np.allclose(duration, horizon, rtol=1e-9, atol=1e-9):
            warnings.warn(
                f"The data's frequency_holdout covers duration_holdout={np.unique(duration)[:3]}, not "
                f"horizon={horizon}: it is left out of observed_data. Pass "
                "horizon=data['duration_holdout'].iloc[0] to compare with it.",
                UserWarning,
                stacklevel=3,
            )
            return None
    return data["frequency_holdout"].reindex(ids).to_numpy().astype(np.int64)


def purchase_posterior_predictive(
    model,
    horizon: float | None = None,
    *,
    n_draws: int | None = None,
    random_seed: SeedLike = None,
) -> az.InferenceData:
    """Posterior predictive replicates of a fitted purchase model (any family).

    Parameters
    ----------
    model
        A :class:`~clvbayes.models.purchase.PurchaseModel` (e.g. BetaGeoModel) with
        ``idata_.posterior`` (after ``fit()`` or ``load()``).
    horizon
        If given, also simulate ``frequency_holdout``: repeat purchases in ``(T, T +
        horizon]`` given each customer's history, per posterior draw.
    n_draws
        Simulate from this many randomly chosen draws per chain (the same draw indices in
        every chain; the original ``draw`` coordinates are kept). Default: all draws.
    random_seed
        Seed (int or ``numpy.random.Generator``); the same seed gives identical arrays for
        any Numba thread count.

    Returns
    -------
    arviz.InferenceData
        ``posterior_predictive`` with ``frequency`` (int32) and ``recency`` (float64)
        calibration replicates and, with a horizon, ``frequency_holdout`` (int32), all with
        dims ``(chain, draw, customer_id)``; ``observed_data`` with ``frequency``,
        ``recency`` and, with a horizon and a ``frequency_holdout`` column in the model's
        data covering it, ``frequency_holdout``.
    """
    horizon = _check_horizon(horizon)
    rng = np.random.default_rng(random_seed)
    params, chains, draws = _posterior_draws(model, n_draws, rng)
    seed_cal, seed_hold = _kernel_seeds(rng, 2)
    frame = _purchase_customers(model)
    ids = frame.index
    x = np.ascontiguousarray(frame["frequency"].to_numpy(dtype=np.float64))
    t_x = np.ascontiguousarray(frame["recency"].to_numpy(dtype=np.float64))
    T = np.ascontiguousarray(frame["T"].to_numpy(dtype=np.float64))
    theta = [params[p] for p in model.param_names]
    calibration, holdout = _replicators(model)
    x_rep, tx_rep = calibration(*theta, T, seed_cal)
    pp = {"frequency": x_rep, "recency": tx_rep}
    obs = {"frequency": x.astype(np.int64), "recency": t_x}
    if horizon is not None:
        pp["frequency_holdout"] = holdout(*theta, x, t_x, T, horizon, seed_hold)
        held = _observed_holdout(model, horizon, ids)
        if held is not None:
            obs["frequency_holdout"] = held
    ds = _grid(pp, chains, draws, ids)
    ds.attrs = _attrs("posterior_predictive")
    if horizon is not None:
        ds.attrs["horizon"] = horizon
    observed = _observed(obs, ids)
    observed.attrs = _attrs("observed_data")
    return az.InferenceData(posterior_predictive=ds, observed_data=observed)


def purchase_prior_predictive(model, samples: int = 500, *, random_seed: SeedLike = None) -> az.InferenceData:
    """Prior predictive replicates of a purchase model's calibration data (any family).

    Parameters are drawn from the model's priors (``model.priors_``, the defaults scaled by
    the data's mean age unless overridden), then one fresh customer per (draw, customer) is
    simulated over the customer's observed age ``T``.

    Parameters
    ----------
    model
        A purchase model with data (no fit needed).
    samples
        Number of prior draws.
    random_seed
        Seed (int or ``numpy.random.Generator``).

    Returns
    -------
    arviz.InferenceData
        ``prior`` (the model parameters with dims ``(chain, draw)``, one chain),
        ``prior_predictive`` (``frequency`` int32 and ``recency``, dims ``(chain, draw,
        customer_id)``) and ``observed_data``.
    """
    samples = _check_positive_int(samples, "samples")
    rng = np.random.default_rng(random_seed)
    frame = _purchase_customers(model)
    params = _prior_draws(model, samples, rng)
    (seed_cal,) = _kernel_seeds(rng, 1)
    ids = frame.index
    T = np.ascontiguousarray(frame["T"].to_numpy(dtype=np.float64))
    calibration, _ = _replicators(model)
    x_rep, tx_rep = calibration(*(params[p] for p in model.param_names), T, seed_cal)
    prior = _params_dataset(params, samples)
    prior.attrs = _attrs("prior")
    pp = _grid({"frequency": x_rep, "recency": tx_rep}, np.array([0]), np.arange(samples), ids)
    pp.attrs = _attrs("prior_predictive")
    observed = _observed(
        {"frequency": frame["frequency"].to_numpy().astype(np.int64), "recency": frame["recency"].to_numpy(float)},
        ids,
    )
    observed.attrs = _attrs("observed_data")
    return az.InferenceData(prior=prior, prior_predictive=pp, observed_data=observed)


# -- Gamma-Gamma --------------------------------------------------------------------------
def _repeat_buyers(model) -> pd.DataFrame:
    """Frequency and mean spend of the repeat buyers (the customers a fit uses)."""
    frame = model._constant_data()
    return frame.loc[frame["frequency"].to_numpy() > 0]


def gamma_gamma_posterior_predictive(
    model, *, n_draws: int | None = None, random_seed: SeedLike = None
) -> az.InferenceData:
    """Posterior predictive mean spend of a fitted :class:`~clvbayes.GammaGammaModel`.

    Parameters
    ----------
    model
        A GammaGammaModel with ``idata_.posterior``.
    n_draws
        Simulate from this many randomly chosen draws per chain (default: all).
    random_seed
        Seed (int or ``numpy.random.Generator``).

    Returns
    -------
    arviz.InferenceData
        ``posterior_predictive`` with ``monetary_value`` (dims ``(chain, draw,
        customer_id)``, repeat buyers only: one-time buyers have no spend data) and
        ``observed_data`` with their observed ``monetary_value``.
    """
    rng = np.random.default_rng(random_seed)
    params, chains, draws = _posterior_draws(model, n_draws, rng)
    (seed,) = _kernel_seeds(rng, 1)
    frame = _repeat_buyers(model)
    x = np.ascontiguousarray(frame["frequency"].to_numpy(dtype=np.float64))
    p, q, gamma = (params[k] for k in model.param_names)
    m_rep = gg_mean_spend_replicates(p, q, gamma, x, seed)
    ds = _grid({"monetary_value": m_rep}, chains, draws, frame.index)
    ds.attrs = _attrs("posterior_predictive")
    observed = _observed({"monetary_value": frame["monetary_value"].to_numpy(dtype=np.float64)}, frame.index)
    observed.attrs = _attrs("observed_data")
    return az.InferenceData(posterior_predictive=ds, observed_data=observed)


def gamma_gamma_prior_predictive(model, samples: int = 500, *, random_seed: SeedLike = None) -> az.InferenceData:
    """Prior predictive mean spend of a :class:`~clvbayes.GammaGammaModel`'s repeat buyers.

    Parameters
    ----------
    model
        A GammaGammaModel with data (no fit needed).
    samples
        Number of prior draws.
    random_seed
        Seed (int or ``numpy.random.Generator``).

    Returns
    -------
    arviz.InferenceData
        ``prior`` (``p, q, gamma``), ``prior_predictive`` (``monetary_value`` per repeat
        buyer; priors with ``q`` near 0 give extreme and possibly ``inf`` values) and
        ``observed_data``.
    """
    samples = _check_positive_int(samples, "samples")
    rng = np.random.default_rng(random_seed)
    frame = _repeat_buyers(model)
    params = _prior_draws(model, samples, rng)
    (seed,) = _kernel_seeds(rng, 1)
    x = np.ascontiguousarray(frame["frequency"].to_numpy(dtype=np.float64))
    p, q, gamma = (params[k] for k in model.param_names)
    m_rep = gg_mean_spend_replicates(p, q, gamma, x, seed)
    prior = _params_dataset(params, samples)
    prior.attrs = _attrs("prior")
    pp = _grid({"monetary_value": m_rep}, np.array([0]), np.arange(samples), frame.index)
    pp.attrs = _attrs("prior_predictive")
    observed = _observed({"monetary_value": frame["monetary_value"].to_numpy(dtype=np.float64)}, frame.index)
    observed.attrs = _attrs("observed_data")
    return az.InferenceData(prior=prior, prior_predictive=pp, observed_data=observed)
