"""Purchase/dropout models with static categorical covariates (design cells), any family.

Links (``z_i`` the customer's covariate row, standardised / treatment coded by
:func:`clvbayes.covariates.build_design`; ``r`` and ``s`` carry no covariates):

- BG/NBD, MBG/NBD, PyMC-Marketing's ``BetaGeoModel`` / ``ModifiedBetaGeoModel``
  parameterisation (``purchase_covariates`` / ``dropout_covariates`` in their docs; dropout
  covariates enter both beta parameters)::

      alpha_i = alpha exp(-z_i' gamma_purchase),  a_i = a exp(z_i' gamma_a),  b_i = b exp(z_i' gamma_b)

- Pareto/NBD, CLVTools' static covariates (``SetStaticCovariates``; Bachmann, Meierer & Näf
  2021, "The role of time-varying contextual factors in latent attrition models for
  customer base analysis", Marketing Science 40(4), eq. for the static case)::

      alpha_i = alpha exp(-z_i' gamma_purchase),  beta_i = beta exp(-z_i' gamma_dropout)

  so a positive ``gamma_purchase`` means a higher purchase rate (``E[lambda] = r/alpha_i``),
  a positive ``gamma_dropout`` a higher dropout rate (``E[mu] = s/beta_i``).

Likelihood, two paths (``path=``; ``"auto"`` picks cells for categorical-only designs of at
most ``max_cells`` distinct rows, rows otherwise):

- **cells**: every distinct design row is a cell; the customers of a cell share their
  parameters, so their ``(x, t_x, T)`` rows are compressed within the cell and the cell's
  log-likelihood is one call of the family's own Op
  (:class:`~clvbayes.models.ops.FamilyLogLik`, with its fast kernel and nutpie Numba
  registration). The cells' terms are summed into one ``pm.Potential``.
- **rows** (continuous covariates, or more than ``max_cells`` cells): every customer has its
  own parameters ``θ_i = base · exp(±Z γ)`` (``Z`` a constant matrix); rows identical in
  ``(z, x, t_x, T)`` are compressed (their count is the weight) and the sum is one
  :class:`~clvbayes.models.row_ops.FusedRowLogLik` term (the link, the family's scalar
  gradient core per row and the chain rule to base parameters and coefficients in one kernel
  call, :mod:`clvbayes.kernels.covariate_rows`; nutpie Numba registration).
  A row costs one scalar core call, where the cells path's fast kernels share work between
  rows: prefer cells for categorical designs.

Predictions average the family's scalar cores over draws of each customer's parameters
(:func:`clvbayes.kernels.cells.cell_mean_p_alive`), on either path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from clvbayes.covariates import build_design, join_attributes
from clvbayes.covariates.design import Design
from clvbayes.data.validate import require_history, validate_rfm
from clvbayes.families import get_family
from clvbayes.models.base import compress_weighted
from clvbayes.models.ops import FamilyLogLik, family_data
from clvbayes.models.priors import Prior, resolve_priors
from clvbayes.models.row_ops import FusedRowLogLik, row_kernels
from clvbayes.value.draws import CellDraws, grid_index

__all__ = ["CovariatePurchaseModel", "COVARIATE_LINKS", "MAX_CELLS", "PATHS"]

PATHS = ("auto", "cells", "rows")

MAX_CELLS = 256

# family -> linked parameter -> (coefficient name, covariate side, sign in the exponent)
COVARIATE_LINKS: dict[str, dict[str, tuple[str, str, float]]] = {
    "bgnbd": {"alpha": ("gamma_purchase", "purchase", -1.0), "a": ("gamma_a", "dropout", 1.0),
              "b": ("gamma_b", "dropout", 1.0)},
    "pnbd": {"alpha": ("gamma_purchase", "purchase", -1.0), "beta": ("gamma_dropout", "dropout", -1.0)},
}
COVARIATE_LINKS["mbgnbd"] = COVARIATE_LINKS["bgnbd"]


def _with_ids(frame: pd.DataFrame, customer_id: str) -> pd.DataFrame:
    if customer_id in frame.columns:
        return frame
    out = frame.copy()
    out[customer_id] = frame.index.to_numpy()
    return out


class CovariatePurchaseModel:
    """A purchase/dropout model whose parameters depend on static customer covariates.

    Parameters
    ----------
    data : pandas.DataFrame
        The customer summary (``frequency``, ``recency``, ``T``; as
        :func:`clvbayes.rfm_summary`), possibly with the covariate columns.
    attributes : pandas.DataFrame, optional
        Customer attributes joined by ``customer_id`` (:func:`clvbayes.covariates.join_attributes`:
        ids missing on either side are an error).
    family : {"bgnbd", "pnbd", "mbgnbd"}
    purchase_covariates, dropout_covariates : sequence of str
        Covariate columns of each side (links in the module docstring).
    priors : mapping, optional
        Priors of the base parameters (default: the family's).
    coefficient_prior_sigma : float, default 1.0
        ``Normal(0, sigma)`` on every coefficient (standardised / treatment-coded scale).
    customer_id : str, default "customer_id"
    categorical : sequence of str
        Numeric columns to treat as categorical.
    max_cells : int, default :data:`MAX_CELLS`
        Most design cells the ``"auto"`` path fits by cells (one likelihood term each).
    min_level_count : int, default 2
        As :func:`~clvbayes.covariates.build_design`.
    path : {"auto", "cells", "rows"}, default "auto"
        Likelihood path (module docstring): ``"auto"`` is cells for categorical-only designs
        with at most ``max_cells`` cells, rows otherwise; ``"cells"`` refuses other designs.
    """

    def __init__(self, data: pd.DataFrame, attributes: pd.DataFrame | None = None, *, family: str = "bgnbd",
                 purchase_covariates: Sequence[str] = (), dropout_covariates: Sequence[str] = (),
                 priors: Mapping[str, Prior] | None = None, coefficient_prior_sigma: float = 1.0,
                 customer_id: str = "customer_id", categorical: Sequence[str] = (), max_cells: int = MAX_CELLS,
                 min_level_count: int = 2, path: str = "auto") -> None:
        if path not in PATHS:
            raise ValueError(f"path must be one of {PATHS}, got {path!r}.")
        self.family = get_family(family)
        if self.family.name not in COVARIATE_LINKS:
            raise ValueError(f"No covariate link for family {self.family.name!r}; known: {sorted(COVARIATE_LINKS)}.")
        if not (np.isfinite(coefficient_prior_sigma) and coefficient_prior_sigma > 0):
            raise ValueError(f"coefficient_prior_sigma must be finite and > 0, got {coefficient_prior_sigma!r}.")
        self.coefficient_prior_sigma = float(coefficient_prior_sigma)
        self.priors = priors
        frame = data if attributes is None else join_attributes(_with_ids(data, customer_id), attributes,
                                                                customer_id=customer_id)
        self.data = frame
        self.x, self.t_x, self.T = validate_rfm(frame)
        require_history(self.T)
        self.designs: dict[str, Design | None] = {}
        for side, cols in (("purchase", purchase_covariates), ("dropout", dropout_covariates)):
            cols = list(cols)
            if not cols:
                self.designs[side] = None
                continue
            d = build_design(frame, cols, categorical=[c for c in categorical if c in cols],
                             customer_id=customer_id, min_level_count=min_level_count)
            if not d.categorical_only and path == "cells":
                numeric = [c for c in d.columns if c not in d.levels]
                raise ValueError(
                    f"Numeric covariate columns {numeric} ({side}): the design-cells path (path='cells') takes "
                    "categorical covariates only; continuous covariates need the per-customer path (path='rows' or "
                    "'auto'). Or bin them (e.g. pd.cut) and pass them as categorical."
                )
            self.designs[side] = d
        z = np.hstack([np.zeros((len(frame), 0))] + [d.matrix for d in self.designs.values() if d is not None])
        self._z_customers = z
        if z.shape[1]:
            self.cell_rows, self.cell = np.unique(z, axis=0, return_inverse=True)
            self.cell = self.cell.reshape(-1).astype(np.int64)
        else:
            self.cell_rows, self.cell = np.zeros((1, 0)), np.zeros(len(frame), dtype=np.int64)
        n_cells = self.cell_rows.shape[0]
        categorical_only = all(d.categorical_only for d in self.designs.values() if d is not None)
        if path == "cells" and n_cells > max_cells:
            cols = [c for d in self.designs.values() if d is not None for c in d.columns]
            raise ValueError(
                f"The covariates {cols} make {n_cells} design cells, more than max_cells={max_cells}. The cells path "
                "fits one likelihood term per cell; use the per-customer path (path='rows' or 'auto'), merge or "
                "bin levels, or raise max_cells."
            )
        self.path = path if path != "auto" else ("cells" if categorical_only and n_cells <= max_cells else "rows")
        n_p = 0 if self.designs["purchase"] is None else self.designs["purchase"].n_terms
        self._n_purchase_terms = n_p
        self._z = {"purchase": self.cell_rows[:, :n_p], "dropout": self.cell_rows[:, n_p:]}
        self.idata_: az.InferenceData | None = None
        self.map_: dict[str, np.ndarray] | None = None
        self._model: pm.Model | None = None

    # -- structure ----------------------------------------------------------------------
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self.family.param_names)

    @property
    def coefficient_names(self) -> dict[str, tuple[str, Design]]:
        """Coefficient vector name -> (linked parameter, its design), sides with covariates only."""
        out = {}
        for param, (name, side, _) in COVARIATE_LINKS[self.family.name].items():
            if self.designs[side] is not None:
                out[name] = (param, self.designs[side])
        return out

    @property
    def n_cells(self) -> int:
        """Distinct design rows (customers sharing parameters), on either path."""
        return self.cell_rows.shape[0]

    def _resolved_priors(self) -> dict[str, Prior]:
        return resolve_priors(self.priors, self.family.default_priors(float(np.mean(self.T))), type(self).__name__)

    def cell_parameters(self, base: Mapping[str, np.ndarray], coefficients: Mapping[str, np.ndarray],
                        z: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Each cell's parameters for draws of the base parameters and coefficients (NumPy).

        ``base[name]`` shape (D,), ``coefficients[name]`` shape (D, n_terms); ``z`` the
        design rows of each side (default: the model's cells); returns shape
        (n_cells, D, 4) in the family's parameter order.
        """
        z = self._z if z is None else z
        D = np.asarray(base[self.param_names[0]], dtype=float).reshape(-1).shape[0]
        out = np.empty((next(iter(z.values())).shape[0], D, 4))
        links = COVARIATE_LINKS[self.family.name]
        for k, p in enumerate(self.param_names):
            v = np.broadcast_to(np.asarray(base[p], dtype=float).reshape(-1), (D,))
            out[:, :, k] = v
            if p in links and links[p][0] in coefficients:
                name, side, sign = links[p]
                eta = z[side] @ np.asarray(coefficients[name], dtype=float).reshape(D, -1).T  # (C, D)
                out[:, :, k] = v * np.exp(sign * eta)
        return out

    def _build_model(self) -> pm.Model:
        priors = self._resolved_priors()
        with pm.Model() as model:
            base = {name: priors[name].create(name) for name in self.param_names}
            gam = {name: pm.Normal(name, 0.0, self.coefficient_prior_sigma, shape=d.n_terms)
                   for name, (_, d) in self.coefficient_names.items()}
            if self.path == "rows":
                pm.Potential("loglik", self._rows_loglik(base, gam))
                return model
            op = FamilyLogLik(self.family.name)
            linked = self._linked(base, gam, self._z)  # one vector over the cells per linked parameter
            terms = []
            for c in range(self.n_cells):
                theta = [v if v.ndim == 0 else v[c] for v in linked]
                rows = self.cell == c
                (xu, txu, Tu), wu = compress_weighted(self.x[rows], self.t_x[rows], self.T[rows])
                data = family_data(self.family.name, xu, txu, Tu, weights=wu, compress=False,
                                   name=f"{self.family.name}_cell{c}")
                terms.append(op(*theta, *data))
            pm.Potential("loglik", pt.add(*terms) if len(terms) > 1 else terms[0])
        return model

    def _linked(self, base: dict, gam: dict, z: Mapping[str, np.ndarray]) -> list[pt.TensorVariable]:
        """The family's parameters in the model graph, in order: ``base_p exp(±z γ)`` as a
        vector over the rows of ``z[side]`` where ``p`` is linked to coefficients, else the
        scalar ``base_p`` (the links of the module docstring; :meth:`cell_parameters` is the
        same in NumPy)."""
        links = COVARIATE_LINKS[self.family.name]
        out = []
        for p in self.param_names:
            v = base[p]
            if p in links and links[p][0] in gam:
                name, side, sign = links[p]
                # elementwise product and row sum, not dot: no BLAS node (PyTensor warns without BLAS)
                v = v * pt.exp(sign * pt.sum(pt.as_tensor_variable(z[side]) * gam[name], axis=1))
            out.append(v)
        return out

    def _rows_loglik(self, base: dict, gam: dict) -> pt.TensorVariable:
        """The rows path's likelihood term: one :class:`FusedRowLogLik` over the distinct
        (covariates, history) rows (the link and its chain rule inside the kernel)."""
        n_z = self._z_customers.shape[1]
        stacked = np.column_stack([self._z_customers, self.x, self.t_x, self.T])
        rows, counts = np.unique(stacked, axis=0, return_counts=True)
        order = np.argsort(rows[:, n_z], kind="stable")  # rows by x: the kernel's x branches predictable
        rows, counts = rows[order], counts[order]
        cols = {"purchase": (0, self._n_purchase_terms), "dropout": (self._n_purchase_terms, n_z)}
        links = COVARIATE_LINKS[self.family.name]
        lo, hi, sign, coefs = [], [], [], []
        for p in self.param_names:
            linked = p in links and links[p][0] in gam
            name, side, s = links[p] if linked else (None, "purchase", 1.0)
            lo.append(cols[side][0] if linked else 0)
            hi.append(cols[side][1] if linked else 0)
            sign.append(s)
            coefs.append(gam[name] if linked else pt.as_tensor_variable(np.zeros(0)))
        data = [np.ascontiguousarray(rows[:, :n_z])] + [np.ascontiguousarray(rows[:, n_z + j]) for j in range(3)]
        return FusedRowLogLik(self.family.name, lo, hi, sign)(*(base[p] for p in self.param_names), *coefs, *data,
                                                              counts.astype(np.float64))

    @property
    def model(self) -> pm.Model:
        if self._model is None:
            self._model = self._build_model()
        return self._model

    # -- fitting --------------------------------------------------------------------------
    def fit(self, method: str = "nuts", *, draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int = 0,
            progressbar: bool = False, **sampler_kwargs) -> CovariatePurchaseModel:
        """Fit by MAP (``method="map"``: L-BFGS on the log posterior in the unconstrained
        space, no Jacobian, i.e. the mode on the natural scale) or NUTS by nutpie."""
        if method == "map":
            return self._fit_map()
        if method != "nuts":
            raise ValueError(f"method must be 'map' or 'nuts', got {method!r}.")
        from clvbayes.models.bayesian import _sample_nutpie

        self.idata_ = _sample_nutpie(self.model, chains, draws, tune, int(seed), progressbar, sampler_kwargs)
        return self

    def _fit_map(self) -> CovariatePurchaseModel:
        import scipy.optimize as so
        from pymc.blocking import DictToArrayBijection, RaveledVars

        model = self.model
        start = model.initial_point()
        mean_x = max(float(np.mean(self.x)), 1e-2)
        rvs = {rv.name: rv for rv in model.free_RVs}
        for name, v in zip(self.param_names, self.family.mle_start(mean_x, float(np.mean(self.T))), strict=True):
            rv = rvs[name]
            tr = model.rvs_to_transforms.get(rv)
            # start the base parameters where the family's MLE starts (coefficients at 0)
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

    def cell_draws(self, n_draws: int | None = None) -> CellDraws:
        """Every cell's parameter draws and each customer's cell, for the value layer
        (:class:`clvbayes.value.draws.CellDraws`): the posterior thinned to about ``n_draws``
        (default all), or the MAP as one draw."""
        base, coef, chain, draw, source = self._draws_on_grid(n_draws)
        theta = self.cell_parameters(base, coef)  # (C, D, 4)
        values = {p: np.ascontiguousarray(theta[:, :, k]) for k, p in enumerate(self.param_names)}
        return CellDraws(values, self.cell.copy(), chain, draw, source, self.family.name)

    def parameters_for(self, profiles: pd.DataFrame, n_draws: int | None = None) -> CellDraws:
        """Parameter draws of customers described by ``profiles`` (e.g. planned new customers
        of a channel): one cell per row, its covariates encoded as the fitted design did
        (:meth:`clvbayes.covariates.design.Design.transform`: levels must be known, numeric
        values are standardised with the data's mean and sd)."""
        if not isinstance(profiles, pd.DataFrame) or len(profiles) == 0:
            raise ValueError("profiles must be a non-empty DataFrame with the model's covariate columns.")
        z = {side: (np.zeros((len(profiles), 0)) if d is None else d.transform(profiles))
             for side, d in self.designs.items()}
        base, coef, chain, draw, source = self._draws_on_grid(n_draws)
        theta = self.cell_parameters(base, coef, z)
        values = {p: np.ascontiguousarray(theta[:, :, k]) for k, p in enumerate(self.param_names)}
        return CellDraws(values, np.arange(len(profiles), dtype=np.int64), chain, draw, source, self.family.name)

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

    # -- predictions -----------------------------------------------------------------------
    def customer_parameters(self, draws: int | None = 200) -> dict[str, np.ndarray]:
        """Each customer's parameter draws via its cell (its distinct design row, on either
        path): name -> array (n_customers, D)."""
        theta = self.cell_parameters(*self._draws(draws))  # (C, D, 4)
        return {p: theta[self.cell, :, k] for k, p in enumerate(self.param_names)}

    def _per_cell_mean(self, quantity: str, draws: int | None, *extra) -> pd.Series:
        theta = np.ascontiguousarray(self.cell_parameters(*self._draws(draws)))  # (C, D, 4)
        kernel = row_kernels(self.family.name)[quantity]
        return pd.Series(kernel(theta, self.cell, self.x, self.t_x, self.T, *extra), index=self.data.index)

    def probability_alive(self, draws: int | None = 200) -> pd.Series:
        """P(alive at T) per customer: posterior mean over (up to ``draws``) draws of the
        family's ``p_alive`` at the customer's cell parameters (the MAP value after a MAP fit)."""
        return self._per_cell_mean("p_alive", draws).rename("probability_alive")

    def expected_purchases(self, t: float, draws: int | None = 200) -> pd.Series:
        """Expected purchases in ``(T, T + t]`` per customer, as :meth:`probability_alive`."""
        t = float(t)
        if not (np.isfinite(t) and t >= 0):
            raise ValueError(f"t must be finite and >= 0, got {t!r}.")
        return self._per_cell_mean("conditional_expected_purchases", draws, t).rename("expected_purchases")
