"""Bayesian fitting shared by the models: PyMC model, NUTS/MAP, diagnostics, save/load.

The PyMC model of each class has its priors as free random variables and the Numba
kernel's log-likelihood as a ``pm.Potential`` (see :mod:`clvbayes.models.ops`); the data
enter as ``pm.Data`` shared variables of compressed rows. Results are an
``arviz.InferenceData`` (``idata_``) holding the posterior, the sample stats, the customer
summary (``constant_data``) and, as attributes, the model class, its priors and the sampler
settings, so :meth:`load` can rebuild the model from the file alone.
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
    model: pm.Model, chains: int, draws: int, tune: int, seed: int, progressbar: bool, kwargs: dict
) -> az.InferenceData:
    """NUTS by nutpie on the cached compiled model.

    Defaults differ from nutpie's in two ways, both measured (docs/guide/bayesian.md):
    ``low_rank_modified_mass_matrix=True`` (the BG/NBD posterior is strongly correlated in
    log r, log alpha; a diagonal mass matrix needed ~3x the gradient evaluations and gave
    ~1/4 of the ESS), and ``save_warmup=False`` (as ``pymc.sample``).
    """
    import nutpie

    options = {"low_rank_modified_mass_matrix": True, "save_warmup": False, **kwargs}
    idata = nutpie.sample(
        _compiled_nutpie(model),
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progress_bar=progressbar,
        **options,
    )
    # nutpie also stores the unconstrained values (e.g. ``r_log__``); keep what pm.sample keeps.
    keep = [v.name for v in (*model.free_RVs, *model.deterministics)]
    for group in ("posterior", "warmup_posterior"):
        if group in idata.groups():
            setattr(idata, group, getattr(idata, group)[keep])
    return idata

__all__ = ["BayesianMixin", "ConvergenceDiagnosticWarning", "SAMPLERS"]

#: NUTS implementations accepted by ``fit(sampler=...)``. nutpie runs the whole gradient in
#: compiled code (the Ops have Numba implementations); "pymc" is PyMC's own NUTS.
SAMPLERS = ("nutpie", "pymc")
DEFAULT_SAMPLER = "nutpie"


class ConvergenceDiagnosticWarning(UserWarning):
    """A posterior fails one of the convergence checks (r_hat, ESS, divergences, BFMI)."""


class BayesianMixin:
    """Bayesian methods of :class:`~clvbayes.models.base.BTYDModel` subclasses.

    Subclasses provide ``_build_model() -> pm.Model`` and ``_constant_data() -> DataFrame``.
    """

    param_names: tuple[str, ...]

    # -- the PyMC model -------------------------------------------------------------------
    @property
    def model(self) -> pm.Model:
        """The PyMC model (built on first access from the data and priors)."""
        if getattr(self, "_pm_model", None) is None:
            self._pm_model = self._build_model()
        return self._pm_model

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
        **sampler_kwargs
            Passed to ``nutpie.sample`` (e.g. ``cores``, ``target_accept``,
            ``low_rank_modified_mass_matrix``, default True here; ``save_warmup``,
            default False) or ``pymc.sample`` (e.g. ``target_accept``, ``cores``,
            ``init``, default ``"jitter+adapt_full"`` here).

        Returns
        -------
        self
            With ``idata_`` (``arviz.InferenceData``) and ``params_`` (posterior means, or
            the MAP estimate) set.
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
        if method == "map":
            if sampler_kwargs:
                raise TypeError(f"method='map' takes no sampler arguments, got {sorted(sampler_kwargs)}.")
            return self._fit_map()
        if random_seed is None:
            # Record the seed actually used, so that any fit can be repeated from its file.
            random_seed = int(np.random.SeedSequence().entropy % (2**31))
        if sampler == "nutpie":
            idata = _sample_nutpie(self.model, int(chains), int(draws), int(tune), int(random_seed), progressbar, sampler_kwargs)
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
        constant = self._constant_data()
        ds = constant.to_xarray() if constant is not None else None
        if ds is not None:
            if "constant_data" in idata.groups():
                del idata.constant_data
            idata.add_groups({"constant_data": ds})
        idata.posterior.attrs.update(
            {
                "clvbayes_version": __version__,
                "clvbayes_model": type(self).__name__,
                "clvbayes_priors": json.dumps({k: p.to_dict() for k, p in self.priors_.items()}),
                "clvbayes_fit": json.dumps(fit_settings),
            }
        )
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
        idata = self._require_posterior()
        summary = az.summary(idata, var_names=list(self.param_names), kind="diagnostics")
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
        if warn:
            for message in problems:
                warnings.warn(message, ConvergenceDiagnosticWarning, stacklevel=2)
        return problems

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``idata_`` (posterior, stats, data, priors, settings) to a netCDF file."""
        idata = self._require_posterior()
        path = Path(path)
        idata.to_netcdf(str(path))
        return path

    @classmethod
    def load(cls, path: str | Path):
        """Rebuild a fitted model from a file written by :meth:`save`."""
        idata = az.from_netcdf(str(path))
        attrs = idata.posterior.attrs
        stored = attrs.get("clvbayes_model")
        if stored != cls.__name__:
            raise ValueError(f"{path} holds a {stored or 'non-clvbayes'} fit, not a {cls.__name__}.")
        priors = {k: Prior.from_dict(v) for k, v in json.loads(attrs["clvbayes_priors"]).items()}
        data = idata.constant_data.to_dataframe()
        from clvbayes.models.base import WEIGHT_COLUMN, WEIGHTS_ATTR

        if WEIGHT_COLUMN in data.columns:  # written only by a weighted (compressed-table) fit
            data.attrs[WEIGHTS_ATTR] = WEIGHT_COLUMN
        model = cls(data, priors=priors)
        model.idata_ = idata
        model.params_ = model._posterior_means(idata)
        return model
