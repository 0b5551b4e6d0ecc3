"""Gamma-Gamma spend model with static customer covariates.

Model (Colombo & Jiang 1999; Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves
for customer base analysis", JMR 42(4), 415-430, eq. (1)-(5) and appendix), with the
covariate link chosen here::

    z_ij | ν_i ~ Gamma(shape p, rate ν_i)                 transaction j of customer i
    ν_i ~ Gamma(shape q, rate γ_i),  γ_i = γ exp(z_i'δ)   (the link)
    f(m_i | p, q, γ_i, x_i) = Γ(px+q) / (Γ(px) Γ(q)) · γ_i^q x^{px} m^{px-1} / (γ_i + x m)^{px+q}
    E[Z_i] = p γ_i / (q - 1)   (population mean spend at z_i)
    E[Z_i | x_i, m_i] = p (γ_i + x_i m_i) / (p x_i + q - 1)   (FHL 2005 eq. (5))

``z_i`` is the customer's covariate row (:func:`clvbayes.covariates.build_design`: treatment
coded / standardised). A customer's expected mean spend scales by ``exp(z_i'δ)``: a positive
``δ`` means higher spend. The link is a choice: neither PyMC-Marketing nor CLVTools has
covariates on spend. It is on ``γ`` because the population mean spend ``p γ / (q - 1)`` is
proportional to ``γ``, so ``δ`` reads as a log ratio of mean spend, while ``p`` (the shape of
a customer's transaction values: their coefficient of variation ``1/√p``) and ``q`` (the
spread of mean spend between customers) keep the shape of the within- and between-customer
variation common to every group.

Only repeat buyers (frequency > 0) inform the fit, as :class:`~clvbayes.GammaGammaModel`;
per-customer outputs cover every customer of the table (a one-time buyer's expected spend is
the population mean at its covariates). The design is built on the repeat buyers (its checks,
centring and scaling are those of the data that inform ``δ``) and encodes the one-time
buyers the same way (:meth:`~clvbayes.covariates.design.Design.transform`).

Likelihood paths (``path=``, as :class:`~clvbayes.CovariatePurchaseModel`):

- **cells**: each distinct design row is a cell; its repeat buyers' ``(x, m)`` are compressed
  and the cell's term is one call of the Gamma-Gamma kernel
  (:class:`~clvbayes.models.ops.GammaGammaLogLik`'s fast kernel) at ``γ_c``, all cells in one
  :class:`~clvbayes.models.cell_ops.CellsLogLik` node. A cell without repeat buyers (a
  combination of levels seen only in one-time buyers) adds no term.
- **rows**: ``γ_i`` a vector in the graph; rows identical in ``(z, x, m)`` are compressed and
  the sum is one :class:`~clvbayes.models.row_ops.SpendRowLogLik` (value and gradient per row
  from :func:`clvbayes.kernels.gamma_gamma.gg_row_loglik_sum_grad`, nutpie Numba registration).
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
from clvbayes.data.schema import WEIGHT_COLUMN
from clvbayes.data.validate import DataValidationError, _examples, validate_monetary
from clvbayes.kernels.gamma_gamma import gg_cell_mean_expected_spend
from clvbayes.models.cell_ops import cells_data, cells_loglik
from clvbayes.models.covariate_common import (MAX_CELLS, CovariateFitMixin, check_path, check_sigma, choose_path,
                                              design_cells, refuse_numeric_on_cells, with_ids)
from clvbayes.models.ops import GammaGammaLogLik, _as_shared, gamma_gamma_data
from clvbayes.models.priors import Prior, default_gamma_gamma_priors, resolve_priors
from clvbayes.models.row_ops import SpendRowLogLik
from clvbayes.value.draws import CellFactor

__all__ = ["CovariateSpendModel"]


class CovariateSpendModel(CovariateFitMixin):
    """Gamma-Gamma spend per transaction whose scale depends on static customer covariates.

    ``γ_i = γ exp(z_i'δ)`` (module docstring): a customer's expected mean spend is
    ``exp(z_i'δ)`` times the baseline's.

    Parameters
    ----------
    data : pandas.DataFrame
        Customer summary with ``frequency`` and ``monetary_value`` (as
        :class:`~clvbayes.GammaGammaModel`), possibly with the covariate columns.
    attributes : pandas.DataFrame, optional
        Customer attributes joined by ``customer_id`` (:func:`clvbayes.covariates.join_attributes`).
    covariates : sequence of str
        Covariate columns (none: the plain Gamma-Gamma model, one cell).
    priors : mapping, optional
        Priors of ``p, q, gamma`` (default: :class:`~clvbayes.GammaGammaModel`'s).
    coefficient_prior_sigma : float, default 1.0
        ``Normal(0, sigma)`` on every coefficient ``δ``.
    customer_id : str, default "customer_id"
    categorical : sequence of str
        Numeric columns to treat as categorical.
    max_cells, min_level_count, path
        As :class:`~clvbayes.CovariatePurchaseModel` (the level counts are of repeat buyers).

    Attributes
    ----------
    n_customers_, n_excluded_ : int
        Repeat buyers the fit uses, and customers left out for having frequency 0.
    cell : numpy.ndarray
        Each customer's design cell (every customer of ``data``).

    Raises
    ------
    clvbayes.data.validate.DataValidationError
        No repeat buyers, a repeat buyer with mean spend 0 or a negative one (named), missing
        or constant covariates, a level with fewer than ``min_level_count`` repeat buyers, or a
        level seen only in one-time buyers (its spend effect has no data).
    """

    param_names = ("p", "q", "gamma")

    def __init__(self, data: pd.DataFrame, attributes: pd.DataFrame | None = None, *,
                 covariates: Sequence[str] = (), priors: Mapping[str, Prior] | None = None,
                 coefficient_prior_sigma: float = 1.0, customer_id: str = "customer_id",
                 categorical: Sequence[str] = (), max_cells: int = MAX_CELLS, min_level_count: int = 2,
                 path: str = "auto") -> None:
        check_path(path)
        self._init_kwargs = {"covariates": list(covariates), "customer_id": customer_id, "categorical": list(categorical),
                             "max_cells": int(max_cells), "min_level_count": int(min_level_count), "path": path}
        self.coefficient_prior_sigma = check_sigma(coefficient_prior_sigma)
        self.priors = priors
        frame = data if attributes is None else join_attributes(with_ids(data, customer_id), attributes,
                                                                customer_id=customer_id)
        if WEIGHT_COLUMN in frame.columns:  # rows must be customers: cells and expected_spend count them
            raise ValueError(f"The table has a {WEIGHT_COLUMN!r} column (a compressed summary): "
                             "CovariateSpendModel takes one row per customer.")
        self.data = frame
        self.x, self.m, self.repeat = validate_monetary(frame)
        self.n_customers_ = int(self.repeat.sum())
        self.n_excluded_ = int((~self.repeat).sum())
        cols = list(covariates)
        self.design = None
        z = np.zeros((len(frame), 0))
        if cols:
            fitted = frame[self.repeat]
            self.design = build_design(fitted, cols, categorical=[c for c in categorical if c in cols],
                                       customer_id=customer_id, min_level_count=min_level_count)
            refuse_numeric_on_cells(self.design, "spend", path)
            self._refuse_levels_without_repeat_buyers(frame)
            z = self.design.transform(frame)
        self._z_customers = z
        self.cell_rows, self.cell = design_cells(z)
        self.path = choose_path(path, [] if self.design is None else [self.design], self.n_cells, max_cells)
        self.idata_: az.InferenceData | None = None
        self.map_: dict[str, np.ndarray] | None = None
        self._model: pm.Model | None = None

    def _refuse_levels_without_repeat_buyers(self, frame: pd.DataFrame) -> None:
        for col, levels in self.design.levels.items():
            text = frame[col].astype(object).to_numpy()
            only = ~pd.Series(text).isin(list(levels)).to_numpy()
            if only.any():
                raise DataValidationError(
                    f"Column {col!r} has levels seen only in one-time buyers (frequency 0): {_examples(text[only])} "
                    f"({only.sum()} customers, e.g. {_examples(frame.index.to_numpy()[only])}). Gamma-Gamma learns "
                    "spend from repeat purchases, so these levels' spend effects have no data: merge them into "
                    "another level or leave those customers out of the spend model."
                )

    # -- structure ----------------------------------------------------------------------
    @property
    def coefficient_names(self) -> dict:
        """``{"delta": ("gamma", design)}`` with covariates, else empty."""
        return {} if self.design is None else {"delta": ("gamma", self.design)}

    def _resolved_priors(self) -> dict[str, Prior]:
        mean_m = float(np.mean(self.m[self.repeat]))
        return resolve_priors(self.priors, default_gamma_gamma_priors(mean_m), type(self).__name__)

    def cell_factors(self, base: Mapping[str, np.ndarray], coefficients: Mapping[str, np.ndarray],
                     z: np.ndarray | None = None) -> dict[str, CellFactor]:
        """Each cell's ``(p, q, γ_c)`` as the link's factors (:class:`~clvbayes.value.draws.CellFactor`):
        ``base[name]`` shape (D,), ``coefficients["delta"]`` shape (D, n_terms), ``z`` the
        design rows (default: the model's cells); ``γ_c = γ exp(z_c'δ)``, p and q shared."""
        z = self.cell_rows if z is None else z
        return link_factors(self.param_names, {p: np.asarray(base[p], dtype=float).reshape(1, -1)
                                               for p in self.param_names},
                            coefficients, {"spend": z}, self._links, z.shape[0])

    @property
    def _links(self) -> dict[str, tuple[str, str, float]]:
        """``γ_c = γ exp(z_c δ)``."""
        return {"gamma": ("delta", "spend", 1.0)}

    @property
    def _sides(self) -> dict[str, Design | None]:
        return {"spend": self.design}

    def _encode(self, profiles: pd.DataFrame) -> np.ndarray:
        """Design rows for ``profiles`` (:meth:`cell_parameters`' ``z``)."""
        return np.zeros((len(profiles), 0)) if self.design is None else self.design.transform(profiles)

    def _gamma_at(self, gamma, delta, z: np.ndarray):
        """``γ exp(z δ)`` over the rows of ``z`` (the scalar ``γ`` without covariates)."""
        if delta is None:
            return gamma
        # elementwise product and row sum, not dot: no BLAS node (PyTensor warns without BLAS)
        return gamma * pt.exp(pt.sum(pt.as_tensor_variable(z) * delta, axis=1))

    def _build_model(self) -> pm.Model:
        priors = self._resolved_priors()
        with pm.Model() as model:
            p, q, gamma = (priors[name].create(name) for name in self.param_names)
            delta = None if self.design is None else pm.Normal(
                "delta", 0.0, self.coefficient_prior_sigma, shape=self.design.n_terms)
            if self.path == "rows":
                pm.Potential("loglik", self._rows_loglik(p, q, gamma, delta))
                return model
            pm.Potential("loglik", self._cells_loglik(p, q, self._gamma_at(gamma, delta, self.cell_rows)))
        return model

    def _cells_loglik(self, p, q, gam) -> pt.TensorVariable:
        """The cells path's term: one :class:`~clvbayes.models.cell_ops.CellsLogLik` node over
        the cells with repeat buyers (``gam``: γ per cell, or a scalar)."""
        op = GammaGammaLogLik()
        keep, cells = [], []
        for c in range(self.n_cells):
            rows = (self.cell == c) & self.repeat
            if not rows.any():
                continue  # no repeat buyer: the cell has no spend data
            keep.append(c)
            # the same compression as GammaGammaModel: one cell is its likelihood bit for bit
            cells.append(gamma_gamma_data(self.x[rows], self.m[rows], shared=False))
        gam = gam if gam.ndim == 0 else gam[np.array(keep)]
        return cells_loglik(op, (p, q, gam), cells_data(op, cells, name="gg_cells"))

    def _rows_loglik(self, p, q, gamma, delta) -> pt.TensorVariable:
        """The rows path's term: rows identical in (z, x, m) merged, one :class:`SpendRowLogLik`."""
        k = self._z_customers.shape[1]
        keep = self.repeat
        stacked = np.column_stack([self._z_customers[keep], self.x[keep], self.m[keep]])
        rows, counts = np.unique(stacked, axis=0, return_counts=True)
        # data as pm.Data, not constants: a later fit of the same design structure (other data,
        # another row count) reuses the compiled nutpie sampler (bayesian._compiled_nutpie)
        z, x, m, w = _as_shared("gg_rows", {"z": np.ascontiguousarray(rows[:, :k]),
                                            "x": np.ascontiguousarray(rows[:, k]),
                                            "m": np.ascontiguousarray(rows[:, k + 1]),
                                            "weights": counts.astype(np.float64)})
        n = x.shape[0]
        gam = self._gamma_at(gamma, delta, z)
        gam = gam if gam.ndim == 1 else pt.alloc(gam, n)
        return SpendRowLogLik()(pt.alloc(p, n), pt.alloc(q, n), gam, x, m, w)

    def _map_start(self) -> dict[str, float]:
        """GammaGammaModel's start: mean spend ≈ p γ / (q - 1) at p = 1, q = 2."""
        return {"p": 1.0, "q": 2.0, "gamma": float(np.mean(self.m[self.repeat]))}

    # -- predictions -----------------------------------------------------------------------
    def expected_spend(self, draws: int | None = 200) -> pd.Series:
        """E[Z | x, m̄] per customer of the table (FHL 2005 eq. (5) at the customer's
        ``γ_i``), the mean over (up to ``draws``) posterior draws, or at the MAP. One-time
        buyers get the population mean ``p γ_i / (q - 1)`` at their covariates.

        Raises
        ------
        ValueError
            If some draw has ``q <= 1`` (the mean spend does not exist).
        """
        q = np.asarray(self._draws(draws)[0]["q"], dtype=float).reshape(-1)
        if np.any(q <= 1.0):
            raise ValueError(f"q <= 1 in {int(np.sum(q <= 1.0))} of {q.shape[0]} draws: the "
                             "Gamma-Gamma mean spend p*gamma/(q-1) does not exist for these parameters.")
        values = np.empty(self.cell.shape[0])
        for sl, theta, local in self._customer_blocks(draws):
            values[sl] = gg_cell_mean_expected_spend(theta, local, self.x[sl], self.m[sl])
        return pd.Series(values, index=self.data.index, name="expected_spend")
