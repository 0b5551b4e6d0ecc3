"""Shared machinery of the model classes: parameters, MLE fitting, fitted-state checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pandas as pd

from clvbayes.data.compress import compress_rows
from clvbayes.data.validate import DataValidationError
from clvbayes.models.bayesian import BayesianMixin
from clvbayes.models.mle import MLEResult, maximize_loglik
from clvbayes.models.priors import Prior

__all__ = ["BTYDModel", "NotFittedError", "WEIGHT_COLUMN"]

#: Optional column of a customer table: number of identical customers the row stands for.
WEIGHT_COLUMN = "customers"


def compress_weighted(*columns: np.ndarray, weights: np.ndarray | None = None) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct rows of ``columns`` and their total weight (count of rows when unweighted).

    Same rows, in the same order, as :func:`clvbayes.data.compress.compress_rows`; with
    integer weights the totals are exact, so a compressed table and the full summary give
    bit-identical kernel inputs.
    """
    rows = compress_rows(*columns)
    if weights is None:
        return rows.columns, rows.weights
    return rows.columns, np.bincount(rows.inverse, weights=weights, minlength=rows.n_unique)


class NotFittedError(RuntimeError):
    """A prediction was asked of a model that has no parameters yet."""


class BTYDModel(BayesianMixin):
    """Base of :class:`~clvbayes.BetaGeoModel` and :class:`~clvbayes.GammaGammaModel`.

    Follows scikit-learn's conventions: the constructor stores its arguments unchanged and
    does no work; fitting sets attributes with a trailing underscore (``params_``,
    ``log_likelihood_``, ``standard_errors_``); predictions need a fitted model or one made
    with :meth:`from_params`.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    _model_name: ClassVar[str] = ""

    def __init__(self, data: pd.DataFrame | None = None, *, priors: Mapping[str, Prior] | None = None) -> None:
        self.data = data
        self.priors = priors

    # -- parameters ---------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, float], data: pd.DataFrame | None = None):
        """Make a model from given parameter values, e.g. published estimates.

        Parameters
        ----------
        params
            Mapping (dict or Series) with exactly the keys of :attr:`param_names`, positive
            finite values.
        data
            Optional default customer summary for predictions.
        """
        model = cls(data)
        model.params_ = cls._check_params(params)
        return model

    @classmethod
    def _check_params(cls, params: Mapping[str, float]) -> pd.Series:
        if not isinstance(params, Mapping | pd.Series):
            raise TypeError(f"params must be a dict or a pandas Series, got {type(params).__name__}.")
        keys = set(params.keys())
        expected = set(cls.param_names)
        if keys != expected:
            raise ValueError(
                f"{cls.__name__} needs parameters {list(cls.param_names)}; got {sorted(keys)} "
                f"(missing {sorted(expected - keys)}, unexpected {sorted(keys - expected)})."
            )
        values = np.array([float(params[k]) for k in cls.param_names])
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            names = [k for k, b in zip(cls.param_names, bad, strict=True) if b]
            raise ValueError(f"{cls.__name__} parameters must be positive and finite; check {names}.")
        return pd.Series(values, index=list(cls.param_names), name="value", dtype=float)

    def _params_array(self) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"This {type(self).__name__} has no parameters yet: call fit_mle() or make it with "
                f"{type(self).__name__}.from_params({{...}})."
            )
        return self.params_.to_numpy(dtype=float)

    def _data_or_default(self, data: pd.DataFrame | None) -> pd.DataFrame:
        if data is not None:
            return data
        if self.data is None:
            raise ValueError(
                "No customer data: pass data=<summary frame> (e.g. from clvbayes.rfm_summary)."
            )
        return self.data

    def _weights(self, data: pd.DataFrame | None = None) -> np.ndarray | None:
        """Customers per row from a ``customers`` column (a compressed table), else None.

        A table from :func:`clvbayes.distributed.compress_summary` has one row per distinct
        customer history and a ``customers`` count; fits weight each row by it, which gives
        the same likelihood as the full summary.
        """
        frame = self._data_or_default(data)
        if not isinstance(frame, pd.DataFrame) or WEIGHT_COLUMN not in frame.columns:
            return None
        raw = frame[WEIGHT_COLUMN]
        if not pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype):
            raise DataValidationError(
                f"Column {WEIGHT_COLUMN!r} (customers per row) must be numeric, got dtype {raw.dtype}."
            )
        w = raw.to_numpy(dtype=float, na_value=np.nan)
        bad = ~(np.isfinite(w) & (w >= 1) & (w == np.round(w)))
        if bad.any():
            raise DataValidationError(
                f"Column {WEIGHT_COLUMN!r} (customers per row) has {bad.sum()} values that are not positive "
                f"integers (e.g. {raw.to_numpy()[bad][:5].tolist()}). It counts identical customers per row, "
                "as made by clvbayes.distributed.compress_summary."
            )
        return w

    # -- maximum likelihood ---------------------------------------------------------------
    def _loglik_and_grad(self) -> tuple[callable, np.ndarray]:  # pragma: no cover - abstract
        """Return ``(loglik_grad(params) -> (value, grad), initial_params)`` on the training data."""
        raise NotImplementedError

    def fit_mle(self, *, initial: Mapping[str, float] | None = None, gtol: float = 1e-8):
        """Maximum likelihood estimates with standard errors from the observed information.

        Parameters
        ----------
        initial
            Optional starting values (dict keyed by parameter name).
        gtol
            Convergence threshold on the log-scale gradient (relative to the log-likelihood).

        Returns
        -------
        self
            With ``params_`` (Series), ``standard_errors_`` (Series), ``covariance_``
            (DataFrame), ``log_likelihood_`` and ``mle_result_``.
        """
        self._forget_fit()  # an earlier posterior must not answer for these estimates
        loglik_grad, start = self._loglik_and_grad()
        if initial is not None:
            start = self._check_params(initial).to_numpy()
        result: MLEResult = maximize_loglik(loglik_grad, start, gtol=gtol)
        names = list(self.param_names)
        self.params_ = pd.Series(result.params, index=names, name="value")
        self.standard_errors_ = pd.Series(result.standard_errors, index=names, name="std_err")
        self.covariance_ = pd.DataFrame(result.covariance, index=names, columns=names)
        self.log_likelihood_ = result.log_likelihood
        self.mle_result_ = result
        return self

    def summary(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """Parameter table.

        After :meth:`fit` (NUTS): the ArviZ summary (mean, sd, HDI, MCSE, ess_bulk,
        ess_tail, r_hat). Otherwise the point estimates, with standard errors after
        :meth:`fit_mle`.
        """
        if getattr(self, "idata_", None) is not None:
            return self.posterior_summary(hdi_prob=hdi_prob)
        self._params_array()  # raises NotFittedError with the fix when there are no parameters
        table = self.params_.to_frame("estimate")
        if hasattr(self, "standard_errors_"):
            table["std_err"] = self.standard_errors_
        return table

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}({shown})"
        return f"{type(self).__name__}(unfitted)"
