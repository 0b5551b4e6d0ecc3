"""Pointwise log-likelihood of posterior draws: what LOO needs from a fitted model.

Gathers, from a fitted purchase model, its family, its posterior draws and its data as
distinct ``(x, t_x, T)`` rows with customer counts (the rows the fit itself used,
:func:`clvbayes.models.base.compress_weighted`); evaluates the family's per-row
log-likelihood kernel ``loglik_rows(θ0, θ1, θ2, θ3, x, t_x, T)`` (one call per draw,
:func:`draws_block`) on blocks of rows; and builds ArviZ's per-customer ``log_likelihood`` group for small fits.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from numba import njit
from numba.core.registry import CPUDispatcher as Dispatcher

from clvbayes.families import Family, get_family
from clvbayes.families.compiled import drivers_for, prepared_data_for
from clvbayes.kernels import build

__all__ = [
    "MAX_LOG_LIKELIHOOD_VALUES",
    "ModelData",
    "model_data",
    "resolve_loglik_rows",
    "posterior_draws",
    "loglik_block",
    "draws_block",
    "bind_kernel",
    "log_likelihood_dataset",
]

#: Largest chains x draws x customers of :func:`log_likelihood_dataset` (400 MB of float64).
MAX_LOG_LIKELIHOOD_VALUES = 50_000_000

LoglikRows = Callable[[float, float, float, float, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def resolve_loglik_rows(family: Family | str) -> LoglikRows:
    """The family's per-row log-likelihood kernel (:func:`clvbayes.families.compiled.drivers_for`)."""
    return drivers_for(get_family(family)).loglik_rows


def _as_dataset(posterior) -> xr.Dataset:
    if hasattr(posterior, "posterior") and not isinstance(posterior, xr.Dataset):  # InferenceData
        posterior = posterior.posterior
    if isinstance(posterior, xr.Dataset):
        return posterior
    if isinstance(posterior, Mapping):
        import arviz as az

        return az.convert_to_dataset({k: np.asarray(v, dtype=float) for k, v in posterior.items()})
    raise TypeError(
        "posterior must be an xarray Dataset (idata.posterior), an arviz.InferenceData or a dict "
        f"name -> (chain, draw) array; got {type(posterior).__name__}."
    )


def posterior_draws(posterior, param_names: tuple[str, ...]) -> tuple[xr.Dataset, np.ndarray]:
    """The parameters' draws as a Dataset (chain, draw) and as an (S, 4) array, the draws
    stacked chain by chain (ArviZ's ``stack(__sample__=("chain", "draw"))`` order)."""
    ds = _as_dataset(posterior)
    missing = [p for p in param_names if p not in ds]
    if missing:
        raise ValueError(f"The posterior lacks the parameters {missing} (has {list(ds.data_vars)}).")
    ds = ds[list(param_names)]
    for p in param_names:
        if ds[p].dims != ("chain", "draw"):
            raise ValueError(f"Posterior variable {p!r} must have dims ('chain', 'draw'), has {ds[p].dims}.")
    draws = np.column_stack([ds[p].to_numpy().astype(np.float64).reshape(-1) for p in param_names])
    if not np.isfinite(draws).all():
        raise ValueError("The posterior draws contain NaN or infinite values.")
    return ds, np.ascontiguousarray(draws)


#: The family kernel that :func:`draws_block` calls: a placeholder, rebound per kernel by
#: :func:`bind_kernel` (a Numba build of the same source, :func:`clvbayes.kernels.build.rebuild`).
_loglik_rows: LoglikRows | None = None


@njit(cache=True, fastmath=False, error_model="numpy")
def draws_block(draws: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, out: np.ndarray) -> None:
    """``out[s, i] = ln L(θ_s; x_i, t_x_i, T_i)`` (draws x rows): the one place where the
    family kernel ``_loglik_rows`` is called, once per draw. Use through :func:`bind_kernel`."""
    for s in range(draws.shape[0]):
        out[s] = _loglik_rows(draws[s, 0], draws[s, 1], draws[s, 2], draws[s, 3], x, t_x, T)


#: Part of every :func:`bind_kernel` tag: bump when the way kernels are bound changes.
_BIND_VERSION = 1
_BOUND: dict = {}


def bind_kernel(kernel: Callable, loglik_rows: LoglikRows) -> Callable:
    """``kernel`` (an ``@njit`` dispatcher that calls :func:`draws_block`, directly or not)
    compiled with ``_loglik_rows`` bound to a thread-free build of ``loglik_rows``; for a
    plain Python ``loglik_rows``, the pure Python ``kernel`` (slow, for tests and prototypes).

    Numba does not cache functions passed as arguments on disk, so the kernel is bound as a
    global (:func:`clvbayes.kernels.build.rebuild`); the thread-free build lets ``kernel``
    call it from its own threads. Memoised per pair; cached on disk by Numba.
    """
    key = (kernel, loglik_rows)
    if key in _BOUND:
        return _BOUND[key]
    if isinstance(loglik_rows, Dispatcher):
        py = loglik_rows.py_func
        tag = f"{py.__qualname__.replace('.', '_')}_{build.source_tag([py], str(_BIND_VERSION))}"
        serial = build.rebuild(loglik_rows, serial=True, tag=f"serial_{tag}")
        bound = build.rebuild(kernel, replace={"_loglik_rows": serial}, tag=tag)
    else:
        bound = _python_copy(kernel, {"_loglik_rows": loglik_rows})
    _BOUND[key] = bound
    return bound


def _python_copy(kernel: Callable, replace: dict) -> Callable:
    """The Python function of an ``@njit`` ``kernel`` with global names rebound, also in the
    dispatchers it calls (their Python functions, recursively)."""
    py = getattr(kernel, "py_func", kernel)
    glb = dict(py.__globals__)
    glb.update(replace)
    for name in py.__code__.co_names:
        val = glb.get(name)
        if isinstance(val, Dispatcher) and name not in replace:
            glb[name] = _python_copy(val, replace)
    return types.FunctionType(py.__code__, glb, py.__name__, py.__defaults__, py.__closure__)


def loglik_block(loglik_rows: LoglikRows, draws: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                 T: np.ndarray) -> np.ndarray:
    """``ln L(θ_s; x_i, t_x_i, T_i)`` as an array (rows, draws), a row's draws contiguous.

    A kernel that takes prepared arrays (:func:`clvbayes.families.compiled.prepared_data_for`:
    Pareto/NBD's likelihood on the distinct times) gets them once for the block and is called
    per draw from Python; any other through :func:`draws_block`."""
    prepared = prepared_data_for(loglik_rows)
    if prepared is not None:
        data = prepared(x, t_x, T)
        out = np.empty((x.size, draws.shape[0]))
        for s in range(draws.shape[0]):
            out[:, s] = loglik_rows(draws[s, 0], draws[s, 1], draws[s, 2], draws[s, 3], *data)
        return out
    out = np.empty((draws.shape[0], x.size))
    bind_kernel(draws_block, loglik_rows)(draws, x, t_x, T, out)
    return np.ascontiguousarray(out.T)


@dataclass(frozen=True)
class ModelData:
    """What a purchase model's LOO uses: family, posterior (None without a NUTS fit), the
    distinct rows of its data, their customer counts, and each data row's distinct row.

    ``customer_index`` labels the data rows; for a compressed table (``customers`` column)
    each data row stands for ``row_weights`` customers.
    """

    family: Family
    posterior: xr.Dataset | None
    columns: tuple[np.ndarray, np.ndarray, np.ndarray]
    weights: np.ndarray
    inverse: np.ndarray
    customer_index: pd.Index
    row_weights: np.ndarray | None

    @property
    def n_customers(self) -> int:
        return int(round(float(self.weights.sum())))


def model_family(model) -> Family:
    """A model's :class:`~clvbayes.families.Family` (its ``family`` attribute)."""
    family = getattr(model, "family", None)
    if family is not None:
        return get_family(family)
    raise TypeError(
        f"{type(model).__name__} is not a purchase model (no model family): LOO compares models of "
        "repeat purchases and dropout such as clvbayes.BetaGeoModel."
    )


def model_data(model) -> ModelData:
    """Family, posterior and distinct weighted rows of a purchase model's training data."""
    from clvbayes.models.base import compress_weighted_rows

    family = model_family(model)
    if getattr(model, "data", None) is None:
        raise ValueError(f"This {type(model).__name__} has no data: LOO needs the data it was fitted on.")
    if hasattr(model, "cell_draws"):  # a model with covariates: one row per customer
        index, x, t_x, T, row_weights = model.data.index, model.x, model.t_x, model.T, None
    else:
        index, x, t_x, T = model._arrays(None)
        row_weights = model._weights()
    rows = compress_weighted_rows(x, t_x, T, weights=row_weights)
    idata = getattr(model, "idata_", None)
    posterior = None if idata is None else idata.posterior
    return ModelData(family, posterior, rows.columns, rows.weights, rows.inverse, index, row_weights)


def log_likelihood_dataset(model, *, var_name: str = "purchases",
                           max_values: int = MAX_LOG_LIKELIHOOD_VALUES) -> xr.Dataset:
    """Per-customer pointwise log-likelihood of a NUTS fit, as ArviZ's ``log_likelihood`` group.

    ``ln L(θ_s; x_i, t_x_i, T_i)`` of every posterior draw and customer (for BG/NBD Fader,
    Hardie & Lee 2005, Marketing Science 24(2), eq. 6), so that ``arviz.loo`` /
    ``arviz.compare`` can be called directly: ``idata.add_groups(log_likelihood=ds)``.
    Evaluated on the distinct rows and copied to customers.

    Parameters
    ----------
    model
        A purchase model fitted with ``fit()`` (NUTS).
    var_name
        Name of the variable in the Dataset.
    max_values
        Refuse when chains x draws x customers exceeds it (default 5e7, 400 MB).

    Returns
    -------
    xarray.Dataset
        One variable, dims ``(chain, draw, customer_id)``. For a compressed table each row
        is repeated by its ``customers`` count and ``customer_id`` numbers the copies
        ``0..N-1``.

    Raises
    ------
    ValueError
        Without a posterior, or when the array would exceed ``max_values``: use
        :func:`clvbayes.compare_models` or :func:`clvbayes.weighted_loo`, which never build it.
    """
    md = model_data(model)
    if md.posterior is None:
        raise ValueError(
            f"This {type(model).__name__} has no posterior (fit() with method='nuts'): a pointwise "
            "log-likelihood needs posterior draws."
        )
    ds, draws = posterior_draws(md.posterior, md.family.param_names)
    n_chain, n_draw = ds.sizes["chain"], ds.sizes["draw"]
    n_values = n_chain * n_draw * md.n_customers
    if n_values > max_values:
        raise ValueError(
            f"A per-customer log-likelihood would hold {n_chain} chains x {n_draw} draws x "
            f"{md.n_customers:,} customers = {n_values:.3g} values (limit {max_values:.3g}). Use "
            "clvbayes.compare_models or clvbayes.weighted_loo instead: they give the same PSIS-LOO from "
            "the distinct customer histories without building this array."
        )
    rows = loglik_block(resolve_loglik_rows(md.family), draws, *md.columns)  # (distinct, S)
    if md.row_weights is None:
        per_customer, coord = md.inverse, np.asarray(md.customer_index)
    else:
        per_customer = np.repeat(md.inverse, md.row_weights.astype(np.int64))
        coord = np.arange(per_customer.size)
    values = rows[per_customer].T.reshape(n_chain, n_draw, -1)
    return xr.Dataset(
        {var_name: (("chain", "draw", "customer_id"), values)},
        coords={"chain": ds["chain"].to_numpy(), "draw": ds["draw"].to_numpy(), "customer_id": coord},
    )
