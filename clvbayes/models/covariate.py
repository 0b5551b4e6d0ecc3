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
  log-likelihood is one call of the family's own kernel
  (:class:`~clvbayes.models.ops.FamilyLogLik`'s fast kernel). All cells are one node,
  :class:`~clvbayes.models.cell_ops.CellsLogLik` (one Numba loop over the cells: nutpie
  compiles it once, not once per cell), in one ``pm.Potential``.
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
from clvbayes.covariates.cells import link_factors
from clvbayes.covariates.design import Design
from clvbayes.data.validate import require_history, validate_rfm
from clvbayes.families import get_family
from clvbayes.models.base import compress_weighted
from clvbayes.models.cell_ops import cells_data, cells_loglik
from clvbayes.models.covariate_common import (MAX_CELLS, PATHS, CovariateFitMixin, check_path, check_sigma,
                                              choose_path, design_cells, refuse_numeric_on_cells)
from clvbayes.models.covariate_common import with_ids as _with_ids
from clvbayes.models.ops import FamilyLogLik, _as_shared, family_data
from clvbayes.models.priors import Prior, resolve_priors
from clvbayes.models.row_ops import FusedRowLogLik, row_kernels
from clvbayes.value.draws import CellFactor

__all__ = ["CovariatePurchaseModel", "COVARIATE_LINKS", "MAX_CELLS", "PATHS"]


# family -> linked parameter -> (coefficient name, covariate side, sign in the exponent)
COVARIATE_LINKS: dict[str, dict[str, tuple[str, str, float]]] = {
    "bgnbd": {"alpha": ("gamma_purchase", "purchase", -1.0), "a": ("gamma_a", "dropout", 1.0),
              "b": ("gamma_b", "dropout", 1.0)},
    "pnbd": {"alpha": ("gamma_purchase", "purchase", -1.0), "beta": ("gamma_dropout", "dropout", -1.0)},
}
COVARIATE_LINKS["mbgnbd"] = COVARIATE_LINKS["bgnbd"]


class CovariatePurchaseModel(CovariateFitMixin):
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
        Most design cells the ``"auto"`` path fits by cells (one kernel call each).
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
        check_path(path)
        self.family = get_family(family)
        self._init_kwargs = {"family": self.family.name, "purchase_covariates": list(purchase_covariates),
                             "dropout_covariates": list(dropout_covariates), "customer_id": customer_id,
                             "categorical": list(categorical), "max_cells": int(max_cells),
                             "min_level_count": int(min_level_count), "path": path}
        if self.family.name not in COVARIATE_LINKS:
            raise ValueError(f"No covariate link for family {self.family.name!r}; known: {sorted(COVARIATE_LINKS)}.")
        self.coefficient_prior_sigma = check_sigma(coefficient_prior_sigma)
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
            refuse_numeric_on_cells(d, side, path)
            self.designs[side] = d
        z = np.hstack([np.zeros((len(frame), 0))] + [d.matrix for d in self.designs.values() if d is not None])
        self._z_customers = z
        self.cell_rows, self.cell = design_cells(z)
        n_cells = self.cell_rows.shape[0]
        self.path = choose_path(path, [d for d in self.designs.values() if d is not None], n_cells, max_cells)
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

    def _resolved_priors(self) -> dict[str, Prior]:
        return resolve_priors(self.priors, self.family.default_priors(float(np.mean(self.T))), type(self).__name__)

    def cell_factors(self, base: Mapping[str, np.ndarray], coefficients: Mapping[str, np.ndarray],
                     z: Mapping[str, np.ndarray] | None = None) -> dict[str, CellFactor]:
        """Each cell's parameters as the link's factors (:class:`~clvbayes.value.draws.CellFactor`).

        ``base[name]`` shape (D,), ``coefficients[name]`` shape (D, n_terms); ``z`` the
        design rows of each side (default: the model's cells). A linked parameter is
        ``base_p exp(sign z'γ)`` (module docstring), the others ``base_p`` in every cell.
        """
        z = self._z if z is None else z
        return link_factors(self.param_names, {p: np.asarray(base[p], dtype=float).reshape(1, -1)
                                               for p in self.param_names},
                            coefficients, z, self._links, next(iter(z.values())).shape[0])

    @property
    def _links(self) -> dict[str, tuple[str, str, float]]:
        return COVARIATE_LINKS[self.family.name]

    @property
    def _sides(self) -> dict[str, Design | None]:
        return self.designs

    def _build_model(self) -> pm.Model:
        priors = self._resolved_priors()
        with pm.Model() as model:
            base = {name: priors[name].create(name) for name in self.param_names}
            gam = {name: pm.Normal(name, 0.0, self.coefficient_prior_sigma, shape=d.n_terms)
                   for name, (_, d) in self.coefficient_names.items()}
            if self.path == "rows":
                pm.Potential("loglik", self._rows_loglik(base, gam))
                return model
            linked = self._linked(base, gam, self._z)  # one vector over the cells per linked parameter
            pm.Potential("loglik", self._cells_loglik(linked))
        return model

    def _cells_loglik(self, theta: Sequence[pt.TensorVariable]) -> pt.TensorVariable:
        """The cells path's likelihood term: one :class:`~clvbayes.models.cell_ops.CellsLogLik`
        node over the cells (``theta``: per parameter a vector over the cells or a scalar), each
        cell's rows compressed as a separate :class:`FamilyLogLik` node would take them."""
        op = FamilyLogLik(self.family.name)
        cells = []
        for c in range(self.n_cells):
            rows = self.cell == c
            (xu, txu, Tu), wu = compress_weighted(self.x[rows], self.t_x[rows], self.T[rows])
            cells.append(family_data(self.family.name, xu, txu, Tu, weights=wu, compress=False, shared=False))
        return cells_loglik(op, theta, cells_data(op, cells, name=f"{self.family.name}_cells"))

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
        # data as pm.Data, not constants: a later fit of the same design structure (other data,
        # another row count) reuses the compiled nutpie sampler (bayesian._compiled_nutpie)
        cols = {"z": np.ascontiguousarray(rows[:, :n_z]),
                **{k: np.ascontiguousarray(rows[:, n_z + j]) for j, k in enumerate(("x", "t_x", "T"))},
                "weights": counts.astype(np.float64)}
        data = _as_shared(f"{self.family.name}_rows", cols)
        return FusedRowLogLik(self.family.name, lo, hi, sign)(*(base[p] for p in self.param_names), *coefs, *data)

    @property
    def _draws_family(self) -> str:
        return self.family.name

    # -- fitting (CovariateFitMixin.fit) -------------------------------------------------
    def _map_start(self) -> dict[str, float]:
        """The MAP starts the base parameters where the family's MLE starts."""
        mean_x = max(float(np.mean(self.x)), 1e-2)
        return dict(zip(self.param_names, self.family.mle_start(mean_x, float(np.mean(self.T))), strict=True))

    # -- reports --------------------------------------------------------------------------
    def _encode(self, profiles: pd.DataFrame) -> dict[str, np.ndarray]:
        """Design rows of each side for ``profiles`` (:meth:`cell_parameters`' ``z``)."""
        return {side: (np.zeros((len(profiles), 0)) if d is None else d.transform(profiles))
                for side, d in self.designs.items()}

    # -- predictions -----------------------------------------------------------------------
    def _per_cell_mean(self, quantity: str, draws: int | None, *extra) -> pd.Series:
        kernel = row_kernels(self.family.name)[quantity]
        out = np.empty(self.cell.shape[0])
        for sl, theta, local in self._customer_blocks(draws):
            out[sl] = kernel(theta, local, self.x[sl], self.t_x[sl], self.T[sl], *extra)
        return pd.Series(out, index=self.data.index)

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
