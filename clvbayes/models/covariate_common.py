"""What the covariate models share: design cells, MAP by L-BFGS, NUTS by nutpie, the thinned
draw grid and the coefficient summary.

:class:`CovariateFitMixin` is a base of :class:`clvbayes.models.covariate.CovariatePurchaseModel`
and :class:`clvbayes.models.covariate_spend.CovariateSpendModel`. A class using it provides
``param_names`` (the base parameters, in order), ``coefficient_names`` (coefficient vector name
-> (linked parameter, its :class:`~clvbayes.covariates.design.Design`)), ``_build_model()``
(the PyMC model, base parameters and coefficients as free variables under those names),
``cell_factors(base, coefficients, z=None)`` (name -> :class:`~clvbayes.value.draws.CellFactor`;
``cell_parameters`` makes them one array), ``cell`` and ``cell_rows``, ``_encode(profiles)``, and
``_map_start()`` (natural-scale starting values of the base parameters for the MAP; the
coefficients start at 0).
"""

from __future__ import annotations

import warnings

from collections.abc import Mapping, Sequence
from pathlib import Path

import arviz as az
import xarray as xr
import numpy as np
import pandas as pd
import pymc as pm

from clvbayes.covariates.cells import CellEncoder
from clvbayes.covariates.design import Design
from clvbayes.value.draws import CellDraws, CellValues, block_draws, grid_index

__all__ = ["CovariateFitMixin", "MAX_CELLS", "PATHS", "check_path", "check_sigma", "choose_path", "design_cells",
           "refuse_numeric_on_cells", "with_ids"]

PATHS = ("auto", "cells", "rows")

MAX_CELLS = 256


def with_ids(frame: pd.DataFrame, customer_id: str) -> pd.DataFrame:
    """``frame`` with a ``customer_id`` column (its index when it has none), for joining attributes."""
    if customer_id in frame.columns:
        return frame
    out = frame.copy()
    out[customer_id] = frame.index.to_numpy()
    return out


def design_cells(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of the customers' covariate matrix ``z`` (n, k) and each customer's row
    among them (int64); one cell of zero terms when ``k == 0``."""
    if z.shape[1]:
        rows, cell = np.unique(z, axis=0, return_inverse=True)
        return rows, cell.reshape(-1).astype(np.int64)
    return np.zeros((1, 0)), np.zeros(z.shape[0], dtype=np.int64)


def check_path(path: str) -> None:
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}.")


def check_sigma(sigma: float) -> float:
    """The coefficients' prior sd, checked."""
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"coefficient_prior_sigma must be finite and > 0, got {sigma!r}.")
    return float(sigma)


def refuse_numeric_on_cells(design: Design, side: str, path: str) -> None:
    """``path="cells"`` takes categorical designs only."""
    if not design.categorical_only and path == "cells":
        numeric = [c for c in design.columns if c not in design.levels]
        raise ValueError(
            f"Numeric covariate columns {numeric} ({side}): the design-cells path (path='cells') takes "
            "categorical covariates only; continuous covariates need the per-customer path (path='rows' or "
            "'auto'). Or bin them (e.g. pd.cut) and pass them as categorical."
        )


def choose_path(path: str, designs: Sequence[Design], n_cells: int, max_cells: int) -> str:
    """The likelihood path: ``"auto"`` is cells for categorical-only designs of at most
    ``max_cells`` cells, rows otherwise; ``"cells"`` refuses more cells."""
    if path == "cells" and n_cells > max_cells:
        cols = [c for d in designs for c in d.columns]
        raise ValueError(
            f"The covariates {cols} make {n_cells} design cells, more than max_cells={max_cells}. The cells path "
            "fits one kernel call per cell; use the per-customer path (path='rows' or 'auto'), merge or "
            "bin levels, or raise max_cells."
        )
    categorical_only = all(d.categorical_only for d in designs)
    return path if path != "auto" else ("cells" if categorical_only and n_cells <= max_cells else "rows")


class CovariateFitMixin:
    """Fitting and reports of a model whose parameters are ``base exp(±z'coefficients)``
    (the contract is in the module docstring)."""

    idata_: az.InferenceData | None
    map_: dict[str, np.ndarray] | None
    _model: pm.Model | None

    @property
    def n_cells(self) -> int:
        """Distinct design rows (customers sharing parameters), on either path."""
        return self.cell_rows.shape[0]

    @property
    def model(self) -> pm.Model:
        if self._model is None:
            self._model = self._build_model()
        return self._model

    def _map_start(self) -> Mapping[str, float]:
        raise NotImplementedError

    @property
    def _draws_family(self) -> str | None:
        """``CellDraws.family`` of :meth:`cell_draws` (None: not a purchase family)."""
        return None

    # -- fitting --------------------------------------------------------------------------
    def fit(self, method: str = "nuts", *, draws: int = 1000, tune: int = 1000, chains: int = 4,
            random_seed: int | None = None, progressbar: bool = False, **sampler_kwargs):
        """Fit by MAP (``method="map"``: L-BFGS on the log posterior in the unconstrained
        space, no Jacobian, i.e. the mode on the natural scale) or NUTS by nutpie.

        As :meth:`clvbayes.BetaGeoModel.fit`: ``random_seed`` in [0, 2**32) gives the same
        draws again (None: one is drawn), recorded with the other settings in
        ``idata_.posterior.attrs["clvbayes_fit"]``; the purchase family's sampler defaults
        (Pareto/NBD: ``target_accept`` by the number of customers) apply unless ``sampler_kwargs`` overrides them.
        """
        import json

        if method == "map":
            if sampler_kwargs:
                raise TypeError(f"method='map' takes no sampler arguments, got {sorted(sampler_kwargs)}.")
            return self._fit_map()
        if method != "nuts":
            raise ValueError(f"method must be 'map' or 'nuts', got {method!r}.")
        from clvbayes.models.bayesian import _sample_nutpie
        from clvbayes.value.arguments import check_seed

        family = getattr(self, "family", None)
        defaults = {} if family is None else family.nuts_settings(int(np.asarray(self.x).shape[0]))
        sampler_kwargs = {**defaults, **sampler_kwargs}
        if random_seed is None:  # recorded, so that the fit can be repeated
            random_seed = int(np.random.SeedSequence().entropy % (2**31))
        random_seed = check_seed(random_seed)
        idata = _sample_nutpie(self.model, int(chains), int(draws), int(tune), random_seed, progressbar,
                               sampler_kwargs)
        settings = {"method": "nuts", "sampler": "nutpie", "chains": int(chains), "draws": int(draws),
                    "tune": int(tune), "random_seed": random_seed,
                    **{k: v for k, v in sampler_kwargs.items() if isinstance(v, bool | int | float | str)}}
        idata.posterior.attrs["clvbayes_fit"] = json.dumps(settings)
        self.idata_ = idata
        return self

    def _fit_map(self):
        import scipy.optimize as so
        from pymc.blocking import DictToArrayBijection, RaveledVars

        model = self.model
        start = model.initial_point()
        rvs = {rv.name: rv for rv in model.free_RVs}
        for name, v in self._map_start().items():
            rv = rvs[name]
            tr = model.rvs_to_transforms.get(rv)
            # base parameters start at the model's own start, coefficients at 0
            start[model.rvs_to_values[rv].name] = np.asarray(
                v if tr is None else tr.forward(np.float64(v), *rv.owner.inputs).eval(), dtype=float)
        x0 = DictToArrayBijection.map(start)
        logp = model.compile_logp(jacobian=False)
        dlogp = model.compile_dlogp(jacobian=False)

        def f(q):
            point = DictToArrayBijection.rmap(RaveledVars(q, x0.point_map_info), start)
            v = logp(point)
            if not np.isfinite(v):
                return 1e300, np.zeros_like(q)
            return -float(v), -np.asarray(dlogp(point), dtype=float)

        res = so.minimize(f, x0.data, jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-8})
        point = DictToArrayBijection.rmap(RaveledVars(res.x, x0.point_map_info), start)
        out = {}
        for name, rv in rvs.items():
            tr = model.rvs_to_transforms.get(rv)
            v = point[model.rvs_to_values[rv].name]
            out[name] = np.asarray(v if tr is None else tr.backward(v, *rv.owner.inputs).eval(), dtype=float)
        self.map_ = out
        self.log_posterior_ = -float(res.fun)
        self.map_result_ = res
        return self

    # -- reports --------------------------------------------------------------------------
    def _draws_on_grid(self, n_draws: int | None) -> tuple[dict, dict, np.ndarray, np.ndarray, str]:
        """Base parameter draws (D,), coefficient draws (D, n), the (chain, draw) grid and the
        source: the posterior thinned to about ``n_draws`` as :meth:`ParameterDraws.thin`,
        else the MAP as one draw."""
        if self.idata_ is not None:
            post = self.idata_.posterior
            nc, nd = int(post.sizes["chain"]), int(post.sizes["draw"])
            flat, keep = grid_index(nc, nd, n_draws)
            base = {p: post[p].transpose("chain", "draw").to_numpy().reshape(-1)[flat] for p in self.param_names}
            coef = {c: post[c].transpose("chain", "draw", ...).to_numpy().reshape(nc * nd, -1)[flat]
                    for c in self.coefficient_names}
            return base, coef, post["chain"].to_numpy(), post["draw"].to_numpy()[keep], "posterior"
        if self.map_ is None:
            raise RuntimeError("The model is not fitted: call fit() first.")
        zero = np.zeros(1, dtype=np.int64)
        return ({p: np.atleast_1d(self.map_[p]) for p in self.param_names},
                {c: self.map_[c][None, :] for c in self.coefficient_names}, zero, zero, "point")

    def _draws(self, draws: int | None) -> tuple[dict, dict]:
        """Base parameter draws (D,) and coefficient draws (D, n): posterior, else the MAP."""
        return self._draws_on_grid(draws)[:2]

    def coefficient_summary(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """One row per coefficient: the linked parameter, the term, mean, sd, HDI and r_hat on
        the standardised scale, and the mean per unit of the data (``Design.unstandardise``;
        the same for treatment-coded dummies)."""
        base, coef = self._draws(None)
        rows = []
        for name, (param, design) in self.coefficient_names.items():
            draws = coef[name]
            per_unit, _ = design.unstandardise(draws)
            if self.idata_ is not None:
                s = az.summary(self.idata_, var_names=[name], hdi_prob=hdi_prob, kind="all")
            for j, term in enumerate(design.names):
                row = {"coefficient": name, "parameter": param, "term": term, "mean": float(draws[:, j].mean()),
                       "sd": float(draws[:, j].std(ddof=1)) if draws.shape[0] > 1 else np.nan,
                       "hdi_low": np.nan, "hdi_high": np.nan, "r_hat": np.nan,
                       "mean_per_unit": float(per_unit[:, j].mean())}
                if self.idata_ is not None:
                    r = s.iloc[j]
                    row.update(hdi_low=float(r.iloc[2]), hdi_high=float(r.iloc[3]), r_hat=float(r["r_hat"]))
                rows.append(row)
        return pd.DataFrame(rows)

    def _summary_names(self) -> list[str]:
        return [*self.param_names, *self.coefficient_names]

    def _term_labels(self) -> dict[str, str]:
        """ArviZ's ``name[j]`` of each coefficient component -> ``name[term]``."""
        return {f"{name}[{j}]": f"{name}[{term}]" for name, (_, d) in self.coefficient_names.items()
                for j, term in enumerate(d.names)}

    def summary(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """Parameter table: after NUTS the ArviZ summary of the base parameters and every
        coefficient (rows ``gamma_purchase[channel[web]]``...: the coefficient and its term);
        after MAP the estimates."""
        if self.idata_ is not None:
            table = az.summary(self.idata_, var_names=self._summary_names(), hdi_prob=hdi_prob)
            return table.rename(index=self._term_labels())
        if self.map_ is None:
            raise RuntimeError("The model is not fitted: call fit() first.")
        rows = {p: float(np.squeeze(self.map_[p])) for p in self.param_names}
        for name, (_, d) in self.coefficient_names.items():
            rows.update({f"{name}[{t}]": float(v) for t, v in zip(d.names, np.atleast_1d(self.map_[name]), strict=True)})
        return pd.Series(rows, name="estimate").to_frame()

    def check_convergence(self, *, r_hat_max: float = 1.01, ess_min: float = 400.0, bfmi_min: float = 0.3,
                          warn: bool = True) -> list[str]:
        """:meth:`clvbayes.BetaGeoModel.check_convergence`'s checks on the base parameters and
        every coefficient; one message per failure (warned when ``warn``)."""
        from clvbayes.models.bayesian import ConvergenceDiagnosticWarning, convergence_problems

        if self.idata_ is None:
            raise RuntimeError("No posterior: fit() with method='nuts' first.")
        labels = self._term_labels()
        problems = [
            next((m.replace(k, v, 1) for k, v in labels.items() if m.startswith(f"r_hat of {k} ")
                  or m.startswith(f"ess_bulk of {k} ")), m)
            for m in convergence_problems(self.idata_, self._summary_names(), r_hat_max=r_hat_max,
                                          ess_min=ess_min, bfmi_min=bfmi_min)
        ]
        if warn:
            for message in problems:
                warnings.warn(message, ConvergenceDiagnosticWarning, stacklevel=2)
        return problems

    # -- persistence ----------------------------------------------------------------------
    def _saved_columns(self) -> list[str]:
        """The data columns a saved model keeps: the history, spend and every covariate."""
        keep = ["frequency", "recency", "T", "monetary_value", "first_purchase"]
        cols = [c for c in keep if c in self.data.columns]
        for d in ([self.design] if hasattr(self, "design") else list(self.designs.values())):
            if d is not None:
                cols += [c for c in d.columns if c not in cols]
        segment = getattr(self, "segment", None)  # HierarchicalPurchaseModel's segment column
        if segment is not None and segment not in cols:
            cols.append(segment)
        return cols

    def save(self, path: str | Path) -> Path:
        """Write the fit to a netCDF file that :meth:`load` reads back.

        Holds the posterior (after NUTS) or the MAP (``point_estimate`` group), the model's
        settings and priors, and the customer table it was fitted on (history, spend and the
        covariate columns, with the customer ids), so that :meth:`load` rebuilds the same
        design and predicts exactly as this model.
        """
        import json

        if self.idata_ is None and self.map_ is None:
            raise RuntimeError("The model is not fitted: nothing to save (call fit() first).")
        path = Path(path)
        frame = self.data[self._saved_columns()].copy()
        for col in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_datetime64_any_dtype(frame[col]):
                frame[col] = frame[col].astype(str).astype(object)
        ids = frame.index
        if not pd.api.types.is_numeric_dtype(ids):  # text ids as plain strings ("007" stays "007")
            ids = ids.astype(str).astype(object)
        frame.index = pd.Index(ids, name="customer")
        data = xr.Dataset.from_dataframe(frame)
        attrs = {
            "clvbayes_model": type(self).__name__,
            "clvbayes_settings": json.dumps({**self._init_kwargs,
                                             "coefficient_prior_sigma": self.coefficient_prior_sigma}),
            "clvbayes_priors": json.dumps(None if self.priors is None
                                          else {k: v.to_dict() for k, v in self.priors.items()}),
            "clvbayes_index_name": str(self.data.index.name or ""),
            "time_unit": str(self.data.attrs.get("time_unit") or ""),
        }
        data.attrs = attrs
        if self.idata_ is not None:
            idata = self.idata_.copy()
            if "constant_data" in idata.groups():
                del idata.constant_data
            idata.add_groups(constant_data=data)
        else:
            point = xr.Dataset({k: (tuple(f"{k}_dim_{i}" for i in range(np.ndim(v))), np.asarray(v, dtype=float))
                                for k, v in self.map_.items()})
            idata = az.InferenceData(point_estimate=point, constant_data=data)
        idata.to_netcdf(str(path), engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path: str | Path):
        """Rebuild a model written by :meth:`save`: the same data, settings, priors and
        design, with its posterior (or MAP).

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        ValueError
            If the file is not a saved model of this class, or its design cannot be rebuilt
            the same.
        """
        import json

        from clvbayes.models.priors import Prior

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No clvbayes model file at {path}.")
        try:
            idata = az.from_netcdf(str(path), engine="h5netcdf")
        except Exception as error:  # netCDF/HDF5 readers raise OSError, ValueError, KeyError, ...
            raise ValueError(f"{path} cannot be read as a netCDF file ({type(error).__name__}: {error}).") from error
        if "constant_data" not in idata.groups() or "clvbayes_model" not in idata.constant_data.attrs:
            raise ValueError(f"{path} is not a file written by a covariate model's save() (groups: {idata.groups()}).")
        attrs = idata.constant_data.attrs
        if attrs["clvbayes_model"] != cls.__name__:
            raise ValueError(f"{path} holds a {attrs['clvbayes_model']}, not a {cls.__name__}: load it with that class.")
        frame = idata.constant_data.to_dataframe()
        frame.index.name = attrs.get("clvbayes_index_name") or None
        if attrs.get("time_unit"):
            frame.attrs["time_unit"] = str(attrs["time_unit"])
        settings = json.loads(attrs["clvbayes_settings"])
        stored = json.loads(attrs["clvbayes_priors"])
        if stored is not None:
            settings["priors"] = {k: Prior.from_dict(v) for k, v in stored.items()}
        model = cls(frame, **settings)
        if "posterior" in idata.groups():
            del idata.constant_data
            model.idata_ = idata
        else:
            model.map_ = {k: np.asarray(v.to_numpy(), dtype=float) for k, v in idata.point_estimate.items()}
        return model

    def cell_parameters(self, base: Mapping[str, np.ndarray], coefficients: Mapping[str, np.ndarray],
                        z=None, cells: np.ndarray | None = None) -> np.ndarray:
        """Each cell's parameters for draws of the base parameters and coefficients (NumPy):
        :meth:`cell_factors` made into one array (n_cells, D, n_params) in ``param_names``
        order (``cells``: those cells only, in that order)."""
        factors = self.cell_factors(base, coefficients, z)
        if cells is None:
            cells = np.arange(next(iter(factors.values())).n_cells)
        return np.stack([factors[p].rows(cells) for p in self.param_names], axis=-1)

    def cell_draws(self, n_draws: int | None = None) -> CellDraws:
        """Every cell's parameter draws and each customer's cell, for the value layer
        (:class:`clvbayes.value.draws.CellDraws`): the posterior thinned to about ``n_draws``
        (default all), or the MAP as one draw. The draws are held as the link's factors
        (:class:`~clvbayes.value.draws.CellValues`): a cell per customer costs no
        customers x draws memory until a parameter is read whole."""
        base, coef, chain, draw, source = self._draws_on_grid(n_draws)
        values = CellValues(self.cell_factors(base, coef))
        return CellDraws(values, self.cell.copy(), chain, draw, source, self._draws_family)

    def cell_encoder(self, n_draws: int | None = None) -> CellEncoder:
        """What gives any customers their cell parameter draws from their attribute columns
        (:class:`clvbayes.covariates.cells.CellEncoder`: the fitted designs and segments, the
        draws thinned to about ``n_draws`` as :meth:`cell_draws`; none of the fitted customers).
        For customers of the fit it gives the parameters of :meth:`cell_draws`."""
        base, coef, chain, draw, source = self._draws_on_grid(n_draws)
        return CellEncoder.build(self.param_names, base, coef, self._links, self._sides, chain, draw, source,
                                 self._draws_family, segment=getattr(self, "segment", None),
                                 segments=getattr(self, "segments", ()))

    def parameters_for(self, profiles: pd.DataFrame, n_draws: int | None = None) -> CellDraws:
        """Parameter draws of customers described by ``profiles`` (e.g. planned new customers
        of a channel): one cell per row, its covariates encoded as the fitted design did
        (:meth:`clvbayes.covariates.design.Design.transform`: levels must be known, numeric
        values are standardised with the data's mean and sd). Used by
        :func:`clvbayes.new_customer_forecast`."""
        if not isinstance(profiles, pd.DataFrame) or len(profiles) == 0:
            raise ValueError("profiles must be a non-empty DataFrame with the model's covariate columns.")
        base, coef, chain, draw, source = self._draws_on_grid(n_draws)
        values = CellValues(self.cell_factors(base, coef, self._encode(profiles)))
        return CellDraws(values, np.arange(len(profiles), dtype=np.int64), chain, draw, source, self._draws_family)

    def _customer_blocks(self, draws: int | None, block: int = 2**14):
        """(customer slice, its cells' parameters (u, D, n_params), each customer's row among
        them) block by block: the per-customer predictions never hold every cell's draws."""
        values = CellValues(self.cell_factors(*self._draws(draws)))
        n = self.cell.shape[0]
        for lo in range(0, n, block):
            sl = slice(lo, min(n, lo + block))
            rows, local = block_draws(values, self.param_names, self.cell[sl])
            yield sl, np.ascontiguousarray(np.stack(rows, axis=-1)), local

    # -- predictions -----------------------------------------------------------------------
    def customer_parameters(self, draws: int | None = 200) -> dict[str, np.ndarray]:
        """Each customer's parameter draws via its cell (its distinct design row, on either
        path): name -> array (n_customers, D)."""
        factors = self.cell_factors(*self._draws(draws))
        return {p: factors[p].rows(self.cell) for p in self.param_names}
