"""Bayesian fitting shared by the models: PyMC model, NUTS/MAP, diagnostics, save/load.

The PyMC model of each class has its priors as free random variables and the Numba
kernel's log-likelihood as a ``pm.Potential`` (see :mod:`clvbayes.models.ops`); the data
enter as ``pm.Data`` shared variables of compressed rows. Results are an
``arviz.InferenceData`` (``idata_``) holding the posterior, the sample stats, the customer
summary (``constant_data``) and, as attributes, the model class, its priors and the sampler
settings, so :meth:`load` can rebuild the model from the file alone. Point fits (MLE, MAP,
``from_params``) are saved the same way, with a ``point_estimate`` group instead of the
posterior.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr

from clvbayes._version import __version__
from clvbayes.models.mle import maximize_loglik
from clvbayes.models.priors import Prior
from clvbayes.value.arguments import check_seed

def _prior_logp_grad_function(priors: dict[str, Prior], names: tuple[str, ...]):
    """Compiled ``(Σ log prior, d/dθ ...)`` at natural-scale parameter values."""
    values = [pt.dscalar(name) for name in names]
    total = pt.add(
        *(pm.logp(getattr(pm, priors[n].distribution).dist(**dict(priors[n].params)), v) for n, v in zip(names, values, strict=True))
    )
    return pytensor.function(values, [total, *pt.grad(total, values)])



# nutpie: compiled models by graph fingerprint (see _compiled_nutpie), most recent last.
_NUTPIE_CACHE: OrderedDict[str, Any] = OrderedDict()
_NUTPIE_CACHE_SIZE = 8


def _graph_fingerprint(model: pm.Model) -> str:
    """Hash of what a compiled sampler depends on: the log-density graph (priors, their
    parameters, the likelihood Op and transforms), the deterministics, and the names, dtypes
    and ranks of the data variables, but not the data values."""
    parts = [
        pytensor.dprint([model.logp(), *model.deterministics], file="str", print_type=True),
        repr([(v.name, v.dtype, v.ndim) for v in model.data_vars]),
        repr([v.name for v in model.free_RVs]),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _compiled_nutpie(model: pm.Model):
    """nutpie's compiled form of ``model`` with the model's current data.

    Compiling costs ~15-20 s (Numba compiles the whole log-density graph) and does not
    depend on the data, which nutpie passes by pointer. So the compiled model is cached
    by :func:`_graph_fingerprint` and later fits of a model with the same structure (same
    class and priors, other data of any size) only swap the data in
    (``CompiledPyMCModel.with_data``). The cache keeps a one-row copy of the data, not
    the data set itself.
    """
    import nutpie

    data = {v.name: np.asarray(v.get_value()) for v in model.data_vars}
    key = _graph_fingerprint(model)
    template = _NUTPIE_CACHE.get(key)
    if template is None:
        compiled = nutpie.compile_pymc_model(model)
        _NUTPIE_CACHE[key] = compiled.with_data(**{k: v[:1] if v.ndim else v for k, v in data.items()})
        while len(_NUTPIE_CACHE) > _NUTPIE_CACHE_SIZE:
            _NUTPIE_CACHE.popitem(last=False)
        return compiled
    _NUTPIE_CACHE.move_to_end(key)
    return template.with_data(**data)


def _sample_nutpie(
    model: pm.Model, chains: int, draws: int, tune: int, seed: int, progressbar: bool, kwargs: dict,
    allow_partial: bool = False,
) -> az.InferenceData:
    """NUTS by nutpie on the cached compiled model.

    Defaults differ from nutpie's in two ways, both measured (docs/guide/bayesian.md):
    ``low_rank_modified_mass_matrix=True`` (the BG/NBD posterior is strongly correlated in
    log r, log alpha; a diagonal mass matrix needed ~3x the gradient evaluations and gave
    ~1/4 of the ESS), and ``save_warmup=False`` (as ``pymc.sample``).

    ``nutpie.sample`` (blocking) catches Ctrl-C and returns the NaN-padded trace drawn so
    far, so the sampler runs in the background here and an interrupt of the wait cancels
    it and propagates, unless ``allow_partial`` asks for the partial trace (checked and
    trimmed by :func:`_check_complete`).
    """
    import nutpie

    if "blocking" in kwargs:
        raise TypeError("fit() runs nutpie itself; 'blocking' is not a sampler argument here.")
    options = {"low_rank_modified_mass_matrix": True, "save_warmup": False, **kwargs}
    sampler = nutpie.sample(
        _compiled_nutpie(model),
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progress_bar=progressbar,
        blocking=False,
        **options,
    )
    try:
        idata = sampler.wait()
    except KeyboardInterrupt:
        if not allow_partial:
            sampler.cancel()
            raise
        idata = sampler.abort()
    except BaseException:
        sampler.cancel()
        raise
    # nutpie also stores the unconstrained values (e.g. ``r_log__``); keep what pm.sample keeps.
    keep = [v.name for v in (*model.free_RVs, *model.deterministics)]
    for group in ("posterior", "warmup_posterior"):
        if group in idata.groups():
            setattr(idata, group, getattr(idata, group)[keep])
    return idata


def _completed_draws(idata: az.InferenceData, names: tuple[str, ...]) -> tuple[int, int]:
    """(chains, draws finished by every chain) of a trace: nutpie pads an aborted trace
    with NaN, PyMC returns fewer chains or draws."""
    if "posterior" not in idata.groups():
        return 0, 0
    post = idata.posterior
    finite = np.ones((post.sizes.get("chain", 0), post.sizes.get("draw", 0)), dtype=bool)
    for name in names:
        finite &= np.isfinite(post[name].transpose("chain", "draw").to_numpy())
    # draws are filled in order: a chain's finished draws are its leading finite ones
    leading = np.cumprod(finite, axis=1).sum(axis=1)
    return finite.shape[0], int(leading.min()) if leading.size else 0


def _check_complete(
    idata: az.InferenceData, names: tuple[str, ...], chains: int, draws: int, allow_partial: bool
) -> tuple[az.InferenceData, int | None]:
    """The trace if it is complete; else raise KeyboardInterrupt (the sampling was cut
    short), or with ``allow_partial`` warn and return it trimmed to the draws every chain
    finished, with that number (None for a complete trace)."""
    n_chain, n_done = _completed_draws(idata, names)
    if n_chain == chains and n_done == draws:
        return idata, None
    message = f"Sampling was interrupted after {n_done} of {draws} draws in {n_chain} of {chains} chains"
    if not allow_partial or n_done < 1:
        raise KeyboardInterrupt(f"{message}; no posterior was kept (fit(allow_partial=True) keeps a partial one).")
    warnings.warn(
        f"{message}. The model keeps this partial posterior (allow_partial=True): its draws are "
        f"fewer than asked and may not have converged; idata_.posterior.attrs['clvbayes_fit'] "
        "records 'partial': true. Refit for a complete posterior.",
        PartialPosteriorWarning,
        stacklevel=3,
    )
    for group in ("posterior", "sample_stats"):
        if group in idata.groups():
            setattr(idata, group, getattr(idata, group).isel(draw=slice(0, n_done)))
    return idata, n_done


__all__ = ["BayesianMixin", "ConvergenceDiagnosticWarning", "PartialPosteriorWarning", "SAMPLERS"]

#: NUTS implementations accepted by ``fit(sampler=...)``. nutpie runs the whole gradient in
#: compiled code (the Ops have Numba implementations); "pymc" is PyMC's own NUTS.
SAMPLERS = ("nutpie", "pymc")
DEFAULT_SAMPLER = "nutpie"


class ConvergenceDiagnosticWarning(UserWarning):
    """A posterior fails one of the convergence checks (r_hat, ESS, divergences, BFMI)."""


class PartialPosteriorWarning(UserWarning):
    """An interrupted fit kept the draws made so far (``fit(allow_partial=True)``)."""


#: Attributes a fit sets; a new fit of any kind drops them all, so that no mix of an old
#: posterior and new point estimates (or the reverse) answers a question.
_FIT_ATTRIBUTES = (
    "idata_", "params_", "standard_errors_", "covariance_", "log_likelihood_", "mle_result_", "map_", "log_posterior_",
)


class BayesianMixin:
    """Bayesian methods of :class:`~clvbayes.models.base.BTYDModel` subclasses.

    Subclasses provide ``_build_model() -> pm.Model`` and ``_constant_data() -> DataFrame``.
    """

    param_names: tuple[str, ...]

    # -- the PyMC model -------------------------------------------------------------------
    @property
    def model(self) -> pm.Model:
        """The PyMC model, built from the current data and priors.

        Built on first access and kept while the data and priors stay the same: a new
        ``data`` or ``priors`` (assigned, or a data frame edited in place) builds it anew
        at the next access, so :meth:`fit` always samples the data the model holds. The
        check is a hash of the customer columns the likelihood uses and of the priors.
        """
        key = self._model_key()
        if getattr(self, "_pm_model", None) is None or getattr(self, "_pm_model_key", None) != key:
            self._pm_model = self._build_model()
            self._pm_model_key = key
        return self._pm_model

    def _model_key(self) -> str:
        """Fingerprint of what the PyMC model is built from: data values and priors."""
        digest = hashlib.sha256(json.dumps({k: p.to_dict() for k, p in self.priors_.items()}, sort_keys=True).encode())
        constant = self._constant_data()
        for column in constant.columns:
            values = constant[column].to_numpy()
            if values.dtype.kind in "biuf":
                digest.update(column.encode())
                digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        return digest.hexdigest()

    def _forget_fit(self) -> None:
        """Drop every result of an earlier fit (see ``_FIT_ATTRIBUTES``)."""
        for name in _FIT_ATTRIBUTES:
            self.__dict__.pop(name, None)

    def _has_posterior(self) -> bool:
        """Whether predictions average over posterior draws (a NUTS fit with more than one draw)."""
        idata = getattr(self, "idata_", None)
        if idata is None or "posterior" not in idata.groups():
            return False
        post = idata.posterior
        return all(p in post for p in self.param_names) and post.sizes.get("chain", 0) * post.sizes.get("draw", 0) > 1

    def _use_posterior(self, plugin: bool) -> bool:
        """The model methods' rule: the posterior expectation over the draws after a NUTS
        fit, the plug-in value at ``params_`` for point fits or when ``plugin`` is true."""
        if not isinstance(plugin, bool):
            raise TypeError(f"plugin must be True or False, got {plugin!r}.")
        return not plugin and self._has_posterior()

    @property
    def priors_(self) -> dict[str, Prior]:
        """The priors in use: the defaults overridden by the ``priors`` argument."""
        return self._resolved_priors()

    # -- fitting --------------------------------------------------------------------------
    def fit(
        self,
        method: str = "nuts",
        *,
        sampler: str | None = None,
        chains: int = 4,
        draws: int = 1000,
        tune: int = 1000,
        random_seed: int | None = None,
        progressbar: bool = True,
        allow_partial: bool = False,
        **sampler_kwargs: Any,
    ):
        """Fit the Bayesian model.

        Parameters
        ----------
        method
            ``"nuts"`` (full posterior by the No-U-Turn sampler) or ``"map"`` (maximum a
            posteriori point estimate). Maximum likelihood stays :meth:`fit_mle`.
        sampler
            ``"nutpie"`` (default: the gradient runs in Numba with no Python callback per
            step; see ``docs/guide/bayesian.md`` for the measurement) or ``"pymc"``.
        chains, draws, tune
            Number of chains, of kept draws per chain and of tuning steps per chain.
        random_seed
            Seed, an integer in [0, 2**32). The same seed gives bit-identical draws with the same sampler, data,
            priors, machine and package versions, whatever the number of cores (each chain
            has its own random stream). Without a seed one is drawn and recorded in
            ``idata_.posterior.attrs["clvbayes_fit"]``, so every fit can be repeated.
        progressbar
            Show the sampler's progress bar.
        allow_partial
            What an interrupted sampling (Ctrl-C) leaves. By default ``KeyboardInterrupt``
            propagates and the model keeps no fit at all (an earlier fit is dropped when a
            new one starts). With True, the draws every chain finished are kept, with a
            :class:`PartialPosteriorWarning` and ``"partial": true`` and
            ``"draws_completed"`` in ``idata_.posterior.attrs["clvbayes_fit"]``; an interrupt
            before the first draw still raises.
        **sampler_kwargs
            Passed to ``nutpie.sample`` (e.g. ``cores``, ``target_accept`` — a purchase model
            family may set its own default, :attr:`clvbayes.families.Family.nuts_defaults` —,
            ``low_rank_modified_mass_matrix``, default True here; ``save_warmup``,
            default False) or ``pymc.sample`` (e.g. ``target_accept``, ``cores``,
            ``init``, default ``"jitter+adapt_full"`` here).

        Returns
        -------
        self
            With ``idata_`` (``arviz.InferenceData``) and ``params_`` (posterior means, or
            the MAP estimate) set.

        Raises
        ------
        KeyboardInterrupt
            When the sampling is interrupted (unless ``allow_partial``).
        """
        if method not in ("nuts", "map"):
            raise ValueError(f"method must be 'nuts' or 'map' (MLE is fit_mle()), got {method!r}.")
        sampler = DEFAULT_SAMPLER if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}.")
        for name, value in (("chains", chains), ("draws", draws)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if int(tune) != tune or tune < 0:
            raise ValueError(f"tune must be a non-negative integer, got {tune!r}.")
        if random_seed is not None:
            random_seed = check_seed(random_seed)
        if not isinstance(allow_partial, bool):
            raise TypeError(f"allow_partial must be True or False, got {allow_partial!r}.")
        self._forget_fit()
        if method == "map":
            if sampler_kwargs:
                raise TypeError(f"method='map' takes no sampler arguments, got {sorted(sampler_kwargs)}.")
            return self._fit_map()
        # The model's own sampler defaults (Pareto/NBD: target_accept by data size), the user's win.
        family = getattr(self, "family", None)
        defaults = {} if family is None else family.nuts_settings(self._n_fit_customers())
        sampler_kwargs = {**defaults, **sampler_kwargs}
        if random_seed is None:
            # Record the seed actually used, so that any fit can be repeated from its file.
            random_seed = int(np.random.SeedSequence().entropy % (2**31))
        if sampler == "nutpie":
            idata = _sample_nutpie(
                self.model, int(chains), int(draws), int(tune), int(random_seed), progressbar, sampler_kwargs,
                allow_partial,
            )
        else:
            # Dense mass-matrix adaptation, as for nutpie: on 10^4 simulated customers 3.4x
            # fewer gradient evaluations and 3.5x the ESS of PyMC's default diagonal one.
            options = {"init": "jitter+adapt_full", **sampler_kwargs}
            with self.model, warnings.catch_warnings():
                # early-warmup trajectories can overflow the kinetic energy of the
                # not-yet-adapted dense metric; NUTS records them as divergences.
                warnings.filterwarnings("ignore", "overflow encountered in dot", RuntimeWarning)
                # PyMC still labels its (long-standing) dense adaptation "experimental".
                warnings.filterwarnings("ignore", "QuadPotentialFullAdapt is an experimental", UserWarning)
                idata = pm.sample(
                    draws=int(draws),
                    tune=int(tune),
                    chains=int(chains),
                    random_seed=random_seed,
                    progressbar=progressbar,
                    nuts_sampler="pymc",
                    compute_convergence_checks=False,
                    **options,
                )
        # PyMC, like nutpie, returns the draws made so far when interrupted
        idata, n_done = _check_complete(idata, tuple(self.param_names), int(chains), int(draws), allow_partial)
        partial = {} if n_done is None else {"partial": True, "draws_completed": n_done}
        idata = self._attach_metadata(
            idata,
            {
                "method": method,
                "sampler": sampler,
                "chains": int(chains),
                "draws": int(draws),
                "tune": int(tune),
                "random_seed": int(random_seed),
                **{k: v for k, v in sampler_kwargs.items() if isinstance(v, bool | int | float | str)},
                **partial,
            },
        )
        self.idata_ = idata
        self.params_ = self._posterior_means(idata)
        self._check_identified()
        return self

    def _fit_map(self):
        """Mode of the posterior density on the parameters' natural scale (no Jacobian).

        Same optimiser as :meth:`fit_mle`, on log-likelihood + log-prior with exact
        gradients, so with flat priors the MAP equals the MLE.
        """
        loglik_grad, start = self._loglik_and_grad()
        prior_fn = _prior_logp_grad_function(self.priors_, self.param_names)

        def posterior_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = loglik_grad(params)
            lp, *glp = prior_fn(*params)
            return value + float(lp), grad + np.asarray(glp, dtype=float)

        result = maximize_loglik(posterior_grad, start)
        self.params_ = pd.Series(result.params, index=list(self.param_names), name="value")
        self.map_ = self.params_.copy()
        self.log_posterior_ = result.log_likelihood
        return self

    def _posterior_means(self, idata: az.InferenceData) -> pd.Series:
        post = idata.posterior
        return pd.Series(
            [float(post[name].mean()) for name in self.param_names], index=list(self.param_names), name="value"
        )

    def _attach_metadata(self, idata: az.InferenceData, fit_settings: dict) -> az.InferenceData:
        if "constant_data" in idata.groups():
            del idata.constant_data
        idata.add_groups({"constant_data": _summary_dataset(self._file_summary())})
        idata.posterior.attrs.update(self._file_attrs({**fit_settings, **self._counts()}))
        return idata

    # -- diagnostics ----------------------------------------------------------------------
    def _require_posterior(self) -> az.InferenceData:
        if getattr(self, "idata_", None) is None:
            raise RuntimeError(f"This {type(self).__name__} has no posterior: call fit() (method='nuts') first.")
        return self.idata_

    def posterior_summary(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """ArviZ summary of the parameters: mean, sd, HDI, MCSE, ess_bulk, ess_tail, r_hat."""
        idata = self._require_posterior()
        return az.summary(idata, var_names=list(self.param_names), hdi_prob=hdi_prob)

    def check_convergence(
        self,
        *,
        r_hat_max: float = 1.01,
        ess_min: float = 400.0,
        bfmi_min: float = 0.3,
        warn: bool = True,
    ) -> list[str]:
        """Check the posterior and warn about each failure.

        Checks every parameter's ``r_hat <= r_hat_max`` and ``ess_bulk >= ess_min`` (Vehtari
        et al. 2021), that there are no divergent transitions, and that the energy BFMI of
        each chain is at least ``bfmi_min`` (Betancourt 2016).

        Returns
        -------
        list of str
            One message per failure (empty when everything passes). Each is also emitted as
            a :class:`ConvergenceDiagnosticWarning` when ``warn`` is true.
        """
        problems = convergence_problems(self._require_posterior(), list(self.param_names), r_hat_max=r_hat_max,
                                        ess_min=ess_min, bfmi_min=bfmi_min)
        if warn:
            for message in problems:
                warnings.warn(message, ConvergenceDiagnosticWarning, stacklevel=2)
        return problems

    # -- persistence ----------------------------------------------------------------------
    def _point_method(self) -> str:
        """How the point estimates were made: ``"mle"``, ``"map"`` or ``"from_params"``."""
        if hasattr(self, "standard_errors_"):
            return "mle"
        return "map" if hasattr(self, "map_") else "from_params"

    def _saved_priors(self) -> str:
        """The priors as JSON: the resolved ones when there are data, else the overrides."""
        try:
            priors = self.priors_
        except ValueError:  # no data: the data-dependent defaults cannot be resolved
            priors = dict(self.priors or {})
        return json.dumps({k: p.to_dict() for k, p in priors.items()})

    def _counts(self) -> dict:
        return {name: int(getattr(self, name)) for name in _COUNT_ATTRIBUTES if hasattr(self, name)}

    def _point_dataset(self) -> xr.Dataset:
        """Point estimates and their uncertainty for :meth:`save` (no posterior)."""
        names = list(self.param_names)
        ds = xr.Dataset({"estimate": ("parameter", self._params_array())}, coords={"parameter": names})
        method = self._point_method()
        fit = {"method": method, **self._counts()}
        if method == "mle":
            ds["std_err"] = ("parameter", self.standard_errors_.reindex(names).to_numpy(dtype=float))
            ds["covariance"] = (("parameter", "parameter_"), self.covariance_.loc[names, names].to_numpy(dtype=float))
            ds = ds.assign_coords(parameter_=names)
            fit["log_likelihood"] = float(self.log_likelihood_)
        elif method == "map":
            fit["log_posterior"] = float(self.log_posterior_)
        ds.attrs.update(self._file_attrs(fit))
        return ds

    def _file_attrs(self, fit_settings: dict) -> dict:
        attrs = {
            "clvbayes_version": __version__,
            "clvbayes_model": type(self).__name__,
            "clvbayes_priors": self._saved_priors(),
            "clvbayes_fit": json.dumps(fit_settings),
        }
        family = getattr(type(self), "family", None)
        if family is not None:  # a purchase model: which family (clvbayes.load_model uses it)
            attrs["clvbayes_family"] = family.name
        return attrs

    def save(self, path: str | Path) -> Path:
        """Write the fit to a netCDF file that :meth:`load` reads back.

        After :meth:`fit` (NUTS): ``idata_`` (posterior, sample stats, priors, settings).
        After :meth:`fit_mle`, ``fit(method="map")`` or :meth:`from_params`: the estimates
        (with standard errors, covariance and log-likelihood for MLE, the log-posterior for
        MAP) in a ``point_estimate`` group. Both hold the customer summary in
        ``constant_data`` (``frequency``, ``recency``, ``T``, ``monetary_value``,
        ``first_purchase``, ``customers``: those the model's data have) and its time unit,
        so the value functions work on a loaded model without ``data=``.
        """
        path = Path(path)
        if getattr(self, "idata_", None) is not None:
            self.idata_.to_netcdf(str(path))
            return path
        self._params_array()  # raises NotFittedError with the fix when there is nothing to save
        groups = {"point_estimate": self._point_dataset()}
        if self.data is not None:
            groups["constant_data"] = _summary_dataset(self._file_summary())
        az.InferenceData(**groups).to_netcdf(str(path))
        return path

    @classmethod
    def load(cls, path: str | Path):
        """Rebuild a fitted model from a file written by :meth:`save`.

        The model has the saved data (as :attr:`data`, with ``attrs["time_unit"]``), priors
        and estimates, and predicts exactly as the saved one.

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        ValueError
            If the file cannot be read (truncated or corrupted), is not a clvbayes model
            file, or holds another model class.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No clvbayes model file at {path}.")
        try:
            idata = az.from_netcdf(str(path))
        except Exception as error:  # netCDF4/h5netcdf/xarray raise OSError, ValueError, KeyError, ...
            raise ValueError(
                f"{path} cannot be read as a netCDF file ({type(error).__name__}: {error}). It may be "
                "truncated or corrupted; write it again with model.save()."
            ) from error
        group = next((g for g in ("posterior", "point_estimate") if g in idata.groups()), None)
        attrs = getattr(idata, group).attrs if group is not None else {}
        stored = attrs.get("clvbayes_model")
        if stored is None or "clvbayes_priors" not in attrs:
            raise ValueError(
                f"{path} is not a clvbayes model file (no clvbayes attributes in its posterior or "
                f"point_estimate group; groups: {idata.groups()}). Load files written by model.save()."
            )
        family = attrs.get("clvbayes_family")
        if stored != cls.__name__:
            from clvbayes.models.purchase import PurchaseModel, model_class

            if cls is PurchaseModel and family is not None:  # the generic class loads any family
                cls = model_class(family)
            else:
                raise ValueError(f"{path} holds a {stored} fit, not a {cls.__name__}.")
        priors = {k: Prior.from_dict(v) for k, v in json.loads(attrs["clvbayes_priors"]).items()}
        fit = json.loads(attrs.get("clvbayes_fit", "{}"))
        data = _summary_frame(idata.constant_data) if "constant_data" in idata.groups() else None
        from clvbayes.data.schema import WEIGHT_COLUMN, WEIGHTS_ATTR

        if data is not None and WEIGHT_COLUMN in data.columns:  # written only by a weighted (compressed-table) fit
            data.attrs[WEIGHTS_ATTR] = WEIGHT_COLUMN
        model = cls(data, priors=priors)
        for name in _COUNT_ATTRIBUTES:
            if name in fit:
                setattr(model, name, int(fit[name]))
        if group == "posterior":
            model.idata_ = idata
            model.params_ = model._posterior_means(idata)
            return model
        ds = idata.point_estimate
        names = list(cls.param_names)
        model.params_ = pd.Series(ds["estimate"].sel(parameter=names).to_numpy(), index=names, name="value")
        if fit.get("method") == "mle":
            model.standard_errors_ = pd.Series(ds["std_err"].sel(parameter=names).to_numpy(), index=names, name="std_err")
            cov = ds["covariance"].sel(parameter=names, parameter_=names).to_numpy()
            model.covariance_ = pd.DataFrame(cov, index=names, columns=names)
            model.log_likelihood_ = float(fit["log_likelihood"])
        elif fit.get("method") == "map":
            model.map_ = model.params_.copy()
            model.log_posterior_ = float(fit["log_posterior"])
        return model

    def _file_summary(self) -> pd.DataFrame:
        """The customer summary a saved model keeps: the columns the model validates
        (``_constant_data``) and the other summary columns the value functions use."""
        frame = self._constant_data()
        data = self._data_or_default(None)
        for column in SAVED_COLUMNS:
            if column not in frame.columns and column in data.columns:
                frame[column] = data[column].array  # positional; keeps a time zone for _summary_dataset
        frame.attrs["time_unit"] = data.attrs.get("time_unit")
        return frame


#: Columns of the customer summary a saved model keeps when its data have them.
# (not the weight column: _constant_data writes it for a weighted fit only, and load marks it)
SAVED_COLUMNS = ("frequency", "recency", "T", "monetary_value", "first_purchase")
#: Fit attributes of some models (Gamma-Gamma customer counts) kept in a saved file.
_COUNT_ATTRIBUTES = ("n_customers_", "n_excluded_")


def _summary_dataset(frame: pd.DataFrame) -> xr.Dataset:
    """A customer summary as the ``constant_data`` group (time unit in its attrs).

    Time-zone-aware dates are stored as their wall-clock time (netCDF has no time zones);
    the calendar day, which the summaries use, is unchanged.
    """
    frame = frame.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_localize(None)
    ds = frame.to_xarray()
    ds.attrs = {"time_unit": frame.attrs["time_unit"]} if frame.attrs.get("time_unit") else {}
    return ds


def _summary_frame(ds: xr.Dataset) -> pd.DataFrame:
    """The customer summary of a ``constant_data`` group, with its time unit in ``attrs``."""
    frame = ds.to_dataframe()
    if ds.attrs.get("time_unit"):
        frame.attrs["time_unit"] = str(ds.attrs["time_unit"])
    return frame


def convergence_problems(idata: az.InferenceData, var_names: list[str], *, r_hat_max: float = 1.01,
                         ess_min: float = 400.0, bfmi_min: float = 0.3) -> list[str]:
    """The failures of :meth:`BayesianMixin.check_convergence`'s checks on ``var_names`` (every
    component of a vector variable is checked), one message each."""
    summary = az.summary(idata, var_names=var_names, kind="diagnostics")
    problems: list[str] = []
    for name, row in summary.iterrows():
        if not row["r_hat"] <= r_hat_max:
            problems.append(f"r_hat of {name} is {row['r_hat']:.3f} > {r_hat_max}: chains disagree; run longer.")
        if not row["ess_bulk"] >= ess_min:
            problems.append(
                f"ess_bulk of {name} is {row['ess_bulk']:.0f} < {ess_min:.0f}: too few effective draws; "
                "draw more or reparameterise."
            )
    stats = idata.sample_stats
    n_div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    if n_div:
        problems.append(
            f"{n_div} divergent transitions: the posterior has regions NUTS cannot explore; "
            "raise target_accept or revisit the priors."
        )
    if "energy" in stats:
        bfmi = np.atleast_1d(az.bfmi(idata))
        low = np.flatnonzero(bfmi < bfmi_min)
        if low.size:
            problems.append(
                f"low energy BFMI ({', '.join(f'{bfmi[i]:.2f}' for i in low)}) in chain(s) "
                f"{', '.join(map(str, low))} (< {bfmi_min}): the momentum resampling explores poorly."
            )
    return problems
