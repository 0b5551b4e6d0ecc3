"""Shared machinery of the model classes: parameters, MLE fitting, fitted-state checks."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import ClassVar

import warnings

import numpy as np
import pandas as pd

from clvbayes.data.compress import CompressedRows, compress_rows
from clvbayes.data.schema import WEIGHT_COLUMN, WEIGHTS_ATTR
from clvbayes.data.validate import DataValidationError
from clvbayes.models import identification
from clvbayes.models.bayesian import BayesianMixin
from clvbayes.models.mle import MLEResult, maximize_loglik
from clvbayes.models.priors import Prior, check_priors

__all__ = ["BTYDModel", "NotFittedError", "PARAM_RANGE", "WEIGHT_COLUMN", "WEIGHTS_ATTR"]

#: Parameter values accepted by ``from_params``: every prediction (P(alive), expected
#: purchases, pmf, DERT, spend, CLV) is finite for any parameters in this range (checked by a
#: property test over it, tests/test_arguments.py); far outside, some kernels overflow.
PARAM_RANGE = (1e-12, 1e12)


def compress_weighted(*columns: np.ndarray, weights: np.ndarray | None = None) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct rows of ``columns`` and their total weight (count of rows when unweighted).

    Same rows, in the same order, as :func:`clvbayes.data.compress.compress_rows`; with
    integer weights the totals are exact, so a compressed table and the full summary give
    bit-identical kernel inputs.
    """
    rows = compress_weighted_rows(*columns, weights=weights)
    return rows.columns, rows.weights


def compress_weighted_rows(*columns: np.ndarray, weights: np.ndarray | None = None) -> CompressedRows:
    """:func:`compress_weighted` with the map back to the input rows (``inverse``), for
    per-customer values from per-row ones (``values[inverse]``)."""
    rows = compress_rows(*columns)
    if weights is None:
        return rows
    return rows._replace(weights=np.bincount(rows.inverse, weights=weights, minlength=rows.n_unique))


class NotFittedError(RuntimeError):
    """A prediction was asked of a model that has no parameters yet."""


class BTYDModel(BayesianMixin):
    """Base of :class:`~clvbayes.BetaGeoModel` and :class:`~clvbayes.GammaGammaModel`.

    Follows scikit-learn's conventions: the constructor stores its arguments unchanged and
    does no work beyond checking the prior names and types (a misspelt name is refused
    here, not at the first fit); fitting sets attributes with a trailing underscore (``params_``,
    ``log_likelihood_``, ``standard_errors_``); predictions need a fitted model or one made
    with :meth:`from_params`.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    _model_name: ClassVar[str] = ""

    def __init__(self, data: pd.DataFrame | None = None, *, priors: Mapping[str, Prior] | None = None) -> None:
        check_priors(priors, self.param_names, type(self).__name__)
        self.data = data
        self.priors = priors

    # -- parameters ---------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, float], data: pd.DataFrame | None = None):
        """Make a model from given parameter values, e.g. published estimates.

        Parameters
        ----------
        params
            Mapping (dict or Series) with exactly the keys of :attr:`param_names`; numbers
            in [1e-12, 1e12] (:data:`PARAM_RANGE`, where every prediction is tested finite).
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
        not_numbers = {
            k: params[k] for k in cls.param_names
            if isinstance(params[k], bool) or not isinstance(params[k], numbers.Real)
        }
        if not_numbers:
            raise TypeError(
                f"{cls.__name__} parameters must be numbers; got "
                + ", ".join(f"{k}={v!r}" for k, v in not_numbers.items()) + "."
            )
        values = np.array([float(params[k]) for k in cls.param_names])
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            shown = ", ".join(f"{k}={v:g}" for k, v, b in zip(cls.param_names, values, bad, strict=True) if b)
            raise ValueError(f"{cls.__name__} parameters must be positive and finite; got {shown}.")
        lo, hi = PARAM_RANGE
        outside = (values < lo) | (values > hi)
        if outside.any():
            shown = ", ".join(f"{k}={v:g}" for k, v, b in zip(cls.param_names, values, outside, strict=True) if b)
            raise ValueError(
                f"{cls.__name__} parameters must lie in [{lo:g}, {hi:g}], the range where every prediction "
                f"is tested to be finite; got {shown}. A scale parameter (alpha, gamma) far outside it "
                "usually means another time unit or currency unit would suit the data better."
            )
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
        """Customers per row of a compressed table, else None.

        A table from :func:`clvbayes.distributed.compress_summary` has one row per distinct
        customer history, a ``customers`` count and ``attrs["clvbayes_weights"] =
        "customers"``; fits weight each row by that column, which gives the same likelihood
        as the full summary. Without the mark no column is read as weights: a
        ``customers`` column is then ignored, with a warning that says how to mark it.
        """
        frame = self._data_or_default(data)
        if not isinstance(frame, pd.DataFrame):
            return None
        col = frame.attrs.get(WEIGHTS_ATTR)
        if col is None:
            if WEIGHT_COLUMN in frame.columns:
                warnings.warn(
                    f"Column {WEIGHT_COLUMN!r} is not used as row weights: the table does not carry the mark of "
                    "clvbayes.distributed.compress_summary, so each row is one customer. If each row stands for "
                    f"that many identical customers (e.g. a compressed table read back from a file), mark it: "
                    f"table.attrs[{WEIGHTS_ATTR!r}] = {WEIGHT_COLUMN!r}.",
                    UserWarning, stacklevel=3,
                )
            return None
        if col not in frame.columns:
            raise DataValidationError(
                f"The table is marked as weighted by column {col!r} (attrs[{WEIGHTS_ATTR!r}]) but has no such "
                f"column. Columns present: {list(frame.columns)}."
            )
        raw = frame[col]
        if not pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype):
            raise DataValidationError(
                f"Column {col!r} (customers per row) must be numeric, got dtype {raw.dtype}."
            )
        w = raw.to_numpy(dtype=float, na_value=np.nan)
        bad = ~(np.isfinite(w) & (w >= 1) & (w == np.round(w)))
        if bad.any():
            raise DataValidationError(
                f"Column {col!r} (customers per row) has {bad.sum()} values that are not positive "
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
        if not self._warn_uninformative_data():
            identification.check_mle(
                type(self).__name__, names, result.params, result.covariance, self._n_fit_customers(), stacklevel=3
            )
        return self

    # -- identification (clvbayes.models.identification) ---------------------------------
    def _n_fit_customers(self) -> int:
        """Customers the fit uses (rows times their ``customers`` weights)."""
        w = self._weights()
        return len(self._data_or_default(None)) if w is None else int(w.sum())

    def _warn_uninformative_data(self, stacklevel: int = 4) -> bool:
        """Warn when the data cannot inform the model at all (models override); True if warned."""
        return False

    def _check_identified(self) -> None:
        """After a NUTS fit: warn when the data are uninformative or a posterior stayed at its prior."""
        if self._warn_uninformative_data(stacklevel=5):
            return
        post = self.idata_.posterior
        identification.check_posterior(
            type(self).__name__, {n: post[n].to_numpy() for n in self.param_names}, self.priors_,
            self._n_fit_customers(), stacklevel=4,
        )

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
