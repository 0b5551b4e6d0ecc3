"""Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV")."""

from __future__ import annotations

import logging

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm

from clvbayes.data.validate import validate_monetary
from clvbayes.kernels.gamma_gamma import gg_expected_spend, gg_loglik_sum_grad
from clvbayes.models.base import WEIGHT_COLUMN, BTYDModel, compress_weighted
from clvbayes.models.ops import gamma_gamma_data, gamma_gamma_loglik_tensor
from clvbayes.models.predictive import gamma_gamma_posterior_predictive, gamma_gamma_prior_predictive
from clvbayes.models.predictive import extend_idata as extend_idata_groups
from clvbayes.models.priors import Prior, default_gamma_gamma_priors, resolve_priors

__all__ = ["GammaGammaModel"]

logger = logging.getLogger("clvbayes")


class GammaGammaModel(BTYDModel):
    """Gamma-Gamma model of the average transaction value.

    Each transaction value is Gamma(p, ν) with the customer's ν ~ Gamma(q, γ) (Colombo &
    Jiang 1999; Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves for customer
    base analysis", Journal of Marketing Research 42(4), 415-430). Only repeat buyers
    (frequency > 0) inform the fit: customers with frequency 0 are excluded
    automatically and counted in ``n_excluded_``.

    Parameters
    ----------
    data
        Customer summary with ``frequency`` and ``monetary_value`` (mean value of the
        repeat purchases), e.g. from :func:`clvbayes.rfm_summary`. Not modified. A table
        with a ``customers`` column (identical customers per row, e.g.
        ``compress_summary(summary, columns=GAMMA_GAMMA_COLUMNS)``) fits exactly like the
        full summary; ``n_customers_``/``n_excluded_`` count customers, and per-customer
        predictions on it are per row.

    Attributes
    ----------
    params_ : pandas.Series
        ``p, q, gamma``.
    n_customers_, n_excluded_ : int
        Repeat buyers used in the fit, and customers left out for having frequency 0.
    """

    param_names = ("p", "q", "gamma")

    # -- Bayesian model -----------------------------------------------------------------
    def _repeat_buyers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return validate_monetary(self._data_or_default(None))

    def _resolved_priors(self) -> dict[str, Prior]:
        _, m, keep = self._repeat_buyers()
        w = self._weights()
        mean_m = float(np.average(m[keep], weights=None if w is None else w[keep]))
        return resolve_priors(self.priors, default_gamma_gamma_priors(mean_m), type(self).__name__)

    def _fit_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Frequency, mean spend and (for a compressed table) customers per row of the
        repeat buyers a fit uses; records who is left out."""
        x, m, keep = self._repeat_buyers()
        w = self._weights()
        self.n_customers_ = int(keep.sum()) if w is None else int(w[keep].sum())
        self.n_excluded_ = int((~keep).sum()) if w is None else int(w[~keep].sum())
        if self.n_excluded_:
            logger.info(
                "Gamma-Gamma: %d customers with frequency 0 excluded (no repeat spend); fitting %d.",
                self.n_excluded_,
                self.n_customers_,
            )
        return x[keep], m[keep], (None if w is None else w[keep])

    def _build_model(self) -> pm.Model:
        x, m, w = self._fit_rows()
        priors = self._resolved_priors()
        with pm.Model() as model:
            p, q, gamma = (priors[name].create(name) for name in self.param_names)
            if w is None:
                data = gamma_gamma_data(x, m)
            else:  # a compressed table: same distinct rows and counts as the full summary
                (xu, mu), wu = compress_weighted(x, m, weights=w)
                data = gamma_gamma_data(xu, mu, weights=wu, compress=False)
            pm.Potential("loglik", gamma_gamma_loglik_tensor(p, q, gamma, data))
        return model

    def _constant_data(self) -> pd.DataFrame:
        frame = self._data_or_default(None)
        x, m, _ = self._repeat_buyers()
        out = pd.DataFrame({"frequency": x, "monetary_value": m}, index=pd.Index(frame.index, name="customer_id"))
        w = self._weights()
        if w is not None:
            out[WEIGHT_COLUMN] = w.astype(np.int64)
        return out

    def _n_fit_customers(self) -> int:
        self._fit_rows()  # sets n_customers_: the repeat buyers the fit uses
        return self.n_customers_

    def _loglik_and_grad(self):
        x, m, w_rows = self._fit_rows()
        (xu, mu), w = compress_weighted(x, m, weights=w_rows)

        def loglik_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
            p, q, gamma = params
            return gg_loglik_sum_grad(p, q, gamma, xu, mu, w)

        # method-of-moments flavoured start: mean spend ≈ p γ / (q - 1)
        start = np.array([1.0, 2.0, float(np.average(m, weights=w_rows))])
        return loglik_grad, start

    def expected_spend(self, data: pd.DataFrame | None = None, *, plugin: bool = False) -> pd.Series:
        """Expected value of a customer's future transactions, E[Z | x, m̄] (FHL 2005 eq. (5)).

        A weighted mean of the population mean p γ / (q - 1) and the customer's own mean
        spend, with weight p x / (p x + q - 1) on the latter. Customers with frequency 0
        get the population mean. Needs q > 1 (otherwise the mean spend does not exist).

        After :meth:`fit` (NUTS) the posterior expectation over the draws, as
        :func:`clvbayes.value.expected_spend`; the value at ``params_`` (for a posterior, its
        means) after a point fit or with ``plugin=True``.
        """
        frame = self._data_or_default(data)
        if self._use_posterior(plugin):
            from clvbayes.value.quantities import expected_spend

            value = expected_spend(self, frame, segment=None, quantiles=(), keep_draws=False)
            return pd.Series(value.summary["mean"].to_numpy(), index=frame.index, name="expected_spend")
        p, q, gamma = self._params_array()
        if q <= 1:
            raise ValueError(
                f"q = {q:.4g} <= 1: the Gamma-Gamma mean spend p*gamma/(q-1) does not exist for these parameters."
            )
        x, m, _ = validate_monetary(frame, require_repeat_buyers=False)
        values = gg_expected_spend(p, q, gamma, x, m)
        return pd.Series(values, index=frame.index, name="expected_spend")

    # -- predictive simulation ----------------------------------------------------------
    def sample_posterior_predictive(
        self,
        *,
        n_draws: int | None = None,
        random_seed: int | np.random.Generator | None = None,
        extend_idata: bool = True,
    ) -> az.InferenceData:
        """Replicate each repeat buyer's mean spend once per posterior draw.

        Per draw and repeat buyer with ``x`` repeat transactions: ``ν ~ Gamma(q, rate γ)``
        and the mean of ``x`` values ``~ Gamma(p x, rate ν x)``. See
        :mod:`clvbayes.models.predictive`.

        Parameters
        ----------
        n_draws
            Use this many randomly chosen posterior draws per chain (default: all).
        random_seed
            Seed; the same seed gives identical replicates for any thread count.
        extend_idata
            Add the groups to ``idata_`` (replacing earlier ones) and return it; otherwise
            return only the new groups.

        Returns
        -------
        arviz.InferenceData
            ``posterior_predictive`` with ``monetary_value`` (dims ``chain, draw,
            customer_id``; repeat buyers only) and ``observed_data``.

        Raises
        ------
        RuntimeError
            If the model has no posterior (call :meth:`fit` first).
        """
        groups = gamma_gamma_posterior_predictive(self, n_draws=n_draws, random_seed=random_seed)
        return extend_idata_groups(self.idata_, groups) if extend_idata else groups

    def sample_prior_predictive(
        self, samples: int = 500, *, random_seed: int | np.random.Generator | None = None
    ) -> az.InferenceData:
        """Mean spends of the repeat buyers implied by the priors alone.

        Returns
        -------
        arviz.InferenceData
            ``prior`` (``p, q, gamma``), ``prior_predictive`` (``monetary_value``) and
            ``observed_data``.
        """
        return gamma_gamma_prior_predictive(self, samples, random_seed=random_seed)
