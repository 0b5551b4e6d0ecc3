"""Purchase/dropout models of any family, one class written once (:mod:`clvbayes.families`).

:class:`PurchaseModel` binds a :class:`~clvbayes.families.Family` (its parameters, priors and
Numba cores) to customer data, priors and the fitting machinery of
:class:`~clvbayes.models.base.BTYDModel` (MLE, MAP, NUTS, save/load). A named model is a
subclass that sets ``family``: :class:`~clvbayes.BetaGeoModel`,
:class:`~clvbayes.ParetoNBDModel`, :class:`~clvbayes.ModifiedBetaGeoModel`.
"""

from __future__ import annotations

import numbers
from typing import ClassVar

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from clvbayes.data.validate import require_history, validate_rfm
from clvbayes.families import Family
from clvbayes.families.compiled import drivers_for
from clvbayes.models import identification
from clvbayes.models.base import WEIGHT_COLUMN, BTYDModel, compress_weighted
from clvbayes.models.ops import FamilyLogLik, family_data
from clvbayes.models.predictive import extend_idata as extend_idata_groups
from clvbayes.models.predictive import purchase_posterior_predictive, purchase_prior_predictive
from clvbayes.models.priors import Prior, resolve_priors
from clvbayes.value.arguments import check_number

__all__ = ["PurchaseModel", "model_class", "load_model", "rate_coordinates"]

# family name -> the model class made for it (named classes register themselves).
_CLASSES: dict[str, type] = {}


def model_class(family: str | Family) -> type[PurchaseModel]:
    """The model class of a registered family: its named class (``"bgnbd"`` ->
    :class:`~clvbayes.BetaGeoModel`), or one made on the spot for a family without one, so a
    registered family needs no class of its own to be fitted, compared or used in the CLI."""
    from clvbayes.families import get_family

    fam = get_family(family)
    if fam.name not in _CLASSES:
        import clvbayes.models.bgnbd  # noqa: F401  (the named classes register on import)
        import clvbayes.models.named  # noqa: F401
    if fam.name not in _CLASSES:
        name = "".join(ch for ch in fam.label.title() if ch.isalnum()) + "Model"
        type(name, (PurchaseModel,), {"family": fam, "__doc__": f"{fam.label} model ({fam.reference})."})
    return _CLASSES[fam.name]


def _check_count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a non-negative integer number of purchases, got {n!r}.")
    return int(n)


def load_model(path):
    """Any model file written by ``save()``: the purchase model of its family
    (``BetaGeoModel``, ``ParetoNBDModel``, ...) or a ``GammaGammaModel``, by what the file
    says it holds (e.g. a report's ``idata.nc`` whatever ``--model`` chose).

    Raises
    ------
    FileNotFoundError, ValueError
        As the classes' ``load``.
    """
    from clvbayes.models.gamma_gamma import GammaGammaModel

    try:
        return PurchaseModel.load(path)
    except ValueError as error:
        if "holds a GammaGammaModel fit" in str(error):
            return GammaGammaModel.load(path)
        raise


def rate_coordinates(priors: dict[str, Prior], names: tuple[str, ...], pairs: tuple[tuple[int, int], ...]) -> list:
    """The parameters as deterministics of the sampling coordinates ``ln k`` and ``ln(k/θ)``
    (the log mean rate) for each gamma (shape k, rate θ) pair of ``pairs``, with each
    parameter's prior unchanged.

    The prior density of the pair enters as a potential at ``(k, θ) = (e^u, e^(u-v))`` plus
    ``ln |∂(k, θ)/∂(u, v)| = ln(k θ) = 2u - v``, so the posterior on the natural parameters
    is the model's. Parameters outside ``pairs`` keep their own random variables.

    Returns
    -------
    list
        The four parameters in ``names`` order (PyTensor variables; those of a pair are
        ``pm.Deterministic`` under their own names).
    """
    theta: list = [None] * len(names)
    for i, j in pairs:
        k, rate = names[i], names[j]
        u = pm.Flat(f"log_{k}")
        v = pm.Flat(f"log_{k}_per_{rate}")
        theta[i] = pm.Deterministic(k, pt.exp(u))
        theta[j] = pm.Deterministic(rate, pt.exp(u - v))
        pm.Potential(f"prior_{k}_{rate}", priors[k].logp(k, theta[i]) + priors[rate].logp(rate, theta[j]) + 2.0 * u - v)
    return [priors[n].create(n) if t is None else t for n, t in zip(names, theta, strict=True)]


class PurchaseModel(BTYDModel):
    """A purchase/dropout model of a registered family (base of the named models).

    Subclasses set the class attribute ``family``; the parameters, default priors, the
    likelihood and every prediction come from it. Parameters and attributes as in
    :class:`~clvbayes.BetaGeoModel`.
    """

    family: ClassVar[Family]
    param_names: ClassVar[tuple[str, ...]] = ()
    #: (shape, rate) index pairs that NUTS samples as ``ln shape, ln(shape/rate)``
    #: (:func:`rate_coordinates`); empty: the priors' own log-transformed variables.
    rate_pairs: ClassVar[tuple[tuple[int, int], ...]] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "family" in cls.__dict__:
            cls.param_names = tuple(cls.family.param_names)
            _CLASSES.setdefault(cls.family.name, cls)  # the first (named) class of a family

    @property
    def _drivers(self):
        return drivers_for(self.family)

    # -- Bayesian model -----------------------------------------------------------------
    def _resolved_priors(self, T: np.ndarray | None = None) -> dict[str, Prior]:
        if T is None:
            _, _, _, T = self._arrays(None)
        require_history(T)
        w = self._weights()
        mean_T = float(np.mean(T)) if w is None else float(np.average(T, weights=w))
        return resolve_priors(self.priors, self.family.default_priors(mean_T), type(self).__name__)

    def _build_model(self) -> pm.Model:
        _, x, t_x, T = self._arrays(None)
        priors = self._resolved_priors(T)
        with pm.Model() as model:
            if self.rate_pairs:
                theta = rate_coordinates(priors, self.param_names, self.rate_pairs)
            else:
                theta = [priors[name].create(name) for name in self.param_names]
            w = self._weights()
            if w is None:
                data = family_data(self.family.name, x, t_x, T)
            else:  # a compressed table: same distinct rows and counts as the full summary
                (xu, txu, Tu), wu = compress_weighted(x, t_x, T, weights=w)
                data = family_data(self.family.name, xu, txu, Tu, weights=wu, compress=False)
            pm.Potential("loglik", FamilyLogLik(self.family.name)(*theta, *data))
        return model

    def _constant_data(self) -> pd.DataFrame:
        index, x, t_x, T = self._arrays(None)
        frame = pd.DataFrame({"frequency": x, "recency": t_x, "T": T}, index=pd.Index(index, name="customer_id"))
        w = self._weights()
        if w is not None:
            frame[WEIGHT_COLUMN] = w.astype(np.int64)
        return frame

    def _arrays(self, data: pd.DataFrame | None) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
        frame = self._data_or_default(data)
        x, t_x, T = validate_rfm(frame)
        return frame.index, x, t_x, T

    def _loglik_and_grad(self):
        _, x, t_x, T = self._arrays(None)
        require_history(T)
        w_rows = self._weights()
        (xu, txu, Tu), w = compress_weighted(x, t_x, T, weights=w_rows)

        kernel = self._drivers.loglik_sum_grad
        data = self._drivers.loglik_data(xu, txu, Tu, w)  # once: θ-free

        def loglik_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
            return kernel(*params, *data)

        mean_x = max(float(np.average(x, weights=w_rows)), 1e-2)
        start = np.asarray(self.family.mle_start(mean_x, float(np.average(T, weights=w_rows))), dtype=float)
        return loglik_grad, start

    def _warn_uninformative_data(self, stacklevel: int = 4) -> bool:
        _, x, _, _ = self._arrays(None)
        w = self._weights()
        repeat = int((x > 0).sum()) if w is None else int(w[x > 0].sum())
        return identification.check_repeat_buyers(
            type(self).__name__, self._n_fit_customers(), repeat, stacklevel=stacklevel
        )

    # -- predictions --------------------------------------------------------------------
    # After fit() (NUTS) each method returns the posterior expectation of its quantity: the
    # mean over the draws of the value at each draw, by the engine of clvbayes.value (the
    # same numbers as clvbayes.probability_alive & co.). After fit_mle(), fit(method="map")
    # or from_params, or with plugin=True, the value at params_ (for a posterior, the
    # posterior means of the parameters: a different and usually biased number).
    def _posterior_mean(self, function, data: pd.DataFrame | None, name: str, **kwargs) -> pd.Series:
        """Per-customer posterior mean of a :mod:`clvbayes.value` quantity, as a Series
        indexed like the customer summary."""
        frame = self._data_or_default(data)
        value = function(self, frame, segment=None, quantiles=(), keep_draws=False, **kwargs)
        return pd.Series(value.summary["mean"].to_numpy(), index=frame.index, name=name)

    def probability_alive(self, data: pd.DataFrame | None = None, *, plugin: bool = False) -> pd.Series:
        """P(alive at T | x, t_x, T) per customer (the family's ``p_alive_one``).

        After :meth:`fit` (NUTS) the posterior expectation over the draws, as
        :func:`clvbayes.probability_alive`; the value at ``params_`` after a point fit or
        with ``plugin=True``.
        """
        if self._use_posterior(plugin):
            from clvbayes.value.quantities import probability_alive

            return self._posterior_mean(probability_alive, data, "probability_alive")
        theta = self._params_array()
        index, x, t_x, T = self._arrays(data)
        values = self._drivers.p_alive(*theta, x, t_x, T)
        return pd.Series(values, index=index, name="probability_alive")

    def expected_purchases(self, t: float, data: pd.DataFrame | None = None, *, plugin: bool = False) -> pd.Series:
        """Expected number of purchases in ``(T, T + t]`` per customer (P(alive) included).

        After :meth:`fit` (NUTS) the posterior expectation over the draws, as
        :func:`clvbayes.value.expected_purchases`; the value at ``params_`` after a point fit or
        with ``plugin=True``.
        """
        t = check_number(t, "t", unit=True)
        if self._use_posterior(plugin):
            from clvbayes.value.quantities import expected_purchases

            return self._posterior_mean(expected_purchases, data, "expected_purchases", horizon=t)
        theta = self._params_array()
        index, x, t_x, T = self._arrays(data)
        values = self._drivers.conditional_expected_purchases(*theta, x, t_x, T, t)
        return pd.Series(values, index=index, name="expected_purchases")

    def probability_of_n_purchases(
        self, t: float, n: int, data: pd.DataFrame | None = None, *, plugin: bool = False
    ) -> pd.Series:
        """P(exactly ``n`` purchases in ``(T, T + t]`` | history) per customer.

        The dead make no purchase; the future of a customer alive at T follows the model with
        the posterior of the individual rates given alive (for BG/NBD: r + x, α + T, a, b + x;
        ``docs/theory/bgnbd_predictions.md``).
        After :meth:`fit` (NUTS) the posterior expectation over the draws, as
        :func:`clvbayes.value.probability_of_purchases`; the value at ``params_`` after a point
        fit or with ``plugin=True``.
        """
        t = check_number(t, "t", unit=True)
        n = _check_count(n)
        name = f"probability_of_{n}_purchases"
        if self._use_posterior(plugin):
            from clvbayes.value.quantities import probability_of_purchases

            return self._posterior_mean(probability_of_purchases, data, name, horizon=t, n=n)
        theta = self._params_array()
        index, x, t_x, T = self._arrays(data)
        values = self._drivers.conditional_pmf(*theta, x, t_x, T, t, n)
        return pd.Series(values, index=index, name=name)

    def expected_purchases_unconditional(self, t: float | np.ndarray, *, plugin: bool = False) -> float | np.ndarray:
        """E[X(t)] for a new customer over ``(0, t]`` (BG/NBD: FHL 2005 eq. (9)).

        After :meth:`fit` (NUTS) the posterior expectation over the draws; the value at
        ``params_`` after a point fit or with ``plugin=True``.
        """
        t_arr = np.atleast_1d(np.asarray(t, dtype=float))
        if not (np.isfinite(t_arr).all() and (t_arr >= 0).all()):
            raise ValueError("t must be finite and >= 0.")
        if self._use_posterior(plugin):
            from clvbayes.kernels import clv as K
            from clvbayes.value.engine import QuantitySpec

            specs = [QuantitySpec(f"t{k}", K.PURCHASES, float(tk)) for k, tk in enumerate(t_arr.reshape(-1))]
            values = np.array(list(self._new_customer(specs).values()))
        else:
            theta = self._params_array()
            values = self._drivers.expected_purchases(*theta, np.ascontiguousarray(t_arr.reshape(-1)))
        return float(values[0]) if np.ndim(t) == 0 else values.reshape(np.shape(t))

    def probability_of_n_purchases_unconditional(
        self, t: float, n: int | np.ndarray, *, plugin: bool = False
    ) -> float | np.ndarray:
        """P(X(t) = n) for a new customer (BG/NBD: FHL 2005 eq. (8)); ``n`` an integer or array.

        After :meth:`fit` (NUTS) the posterior expectation over the draws; the value at
        ``params_`` after a point fit or with ``plugin=True``.
        """
        t = check_number(t, "t", unit=True)
        n_arr = np.atleast_1d(np.asarray(n))
        if n_arr.dtype.kind not in "iu" or (n_arr < 0).any():
            raise ValueError("n must be non-negative integers.")
        if self._use_posterior(plugin):
            from clvbayes.kernels import clv as K
            from clvbayes.value.engine import QuantitySpec

            specs = [QuantitySpec(f"n{k}", K.PMF + int(nk), t) for k, nk in enumerate(n_arr.reshape(-1))]
            values = np.array(list(self._new_customer(specs).values()))
        else:
            theta = self._params_array()
            values = self._drivers.pmf(*theta, t, n_arr.reshape(-1).astype(np.int64))
        return float(values[0]) if np.ndim(n) == 0 else values.reshape(np.shape(n))

    def _new_customer(self, specs) -> dict[str, float]:
        from clvbayes.value.quantities import new_customer_expectations

        return new_customer_expectations(self, specs)

    def dert(
        self, discount_rate: float | np.ndarray | None = None, data: pd.DataFrame | None = None, *, plugin: bool = False
    ) -> pd.Series:
        """Discounted expected residual transactions per customer.

        ``DERT = E[∫_T^∞ e^{-δ(s-T)} dY(s) | x, t_x, T]`` with a continuous discount rate δ
        per time unit of the data (for weeks and an annual rate d compounded yearly,
        δ = ln(1 + d) · 7 / 365.25). Multiplying by the margin per transaction gives the
        residual lifetime value. Derivation in ``docs/theory/bgnbd_predictions.md``.

        After :meth:`fit` (NUTS) the posterior expectation over the draws, as
        :func:`clvbayes.value.dert` with the same rate as an annual one; the value at ``params_``
        after a point fit or with ``plugin=True``.

        Parameters
        ----------
        discount_rate
            δ > 0, a scalar or one value per customer. Default: the package's default
            annual rate :data:`clvbayes.value.customers.DEFAULT_ANNUAL_DISCOUNT_RATE`
            (10% a year) in the data's time unit (``data.attrs["time_unit"]``, else weeks).
        """
        from clvbayes.value.customers import (
            DEFAULT_ANNUAL_DISCOUNT_RATE,
            annual_rate,
            continuous_rate,
            resolve_time_unit,
        )

        index, x, t_x, T = self._arrays(data)
        frame = self._data_or_default(data)
        unit = resolve_time_unit(frame, None)
        if discount_rate is None:
            discount_rate = continuous_rate(np.float64(DEFAULT_ANNUAL_DISCOUNT_RATE), unit)
        delta = np.broadcast_to(np.asarray(discount_rate, dtype=float), x.shape)
        if not (np.isfinite(delta).all() and (delta > 0).all()):
            raise ValueError("discount_rate must be finite and > 0 (a continuous rate per time unit).")
        if self._use_posterior(plugin):
            from clvbayes.value.quantities import dert

            return self._posterior_mean(dert, frame, "dert", discount_rate=annual_rate(delta, unit))
        theta = self._params_array()
        values = self._drivers.dert(*theta, x, t_x, T, np.ascontiguousarray(delta))
        return pd.Series(values, index=index, name="dert")

    # -- predictive simulation ----------------------------------------------------------
    def sample_posterior_predictive(
        self,
        horizon: float | None = None,
        *,
        n_draws: int | None = None,
        random_seed: int | np.random.Generator | None = None,
        extend_idata: bool = True,
    ) -> az.InferenceData:
        """Replicate each customer's purchases once per posterior draw (parameter + process
        uncertainty), for posterior predictive checks.

        Calibration replicates are new customers of the model of each customer's age ``T``;
        holdout replicates (with ``horizon``) continue each customer's own history. See
        :mod:`clvbayes.models.predictive`.

        Parameters
        ----------
        horizon
            If given, also simulate ``frequency_holdout``, the repeat purchases in
            ``(T, T + horizon]`` (for a :func:`clvbayes.calibration_holdout_split` summary,
            ``horizon=data["duration_holdout"].iloc[0]`` compares with its holdout counts).
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
            ``posterior_predictive`` (``frequency``, ``recency`` and, with a horizon,
            ``frequency_holdout``; dims ``chain, draw, customer_id``) and
            ``observed_data``. Plot with ``arviz.plot_ppc(idata, var_names=["frequency"])``.

        Raises
        ------
        RuntimeError
            If the model has no posterior (call :meth:`fit` first).
        """
        groups = purchase_posterior_predictive(self, horizon, n_draws=n_draws, random_seed=random_seed)
        return extend_idata_groups(self.idata_, groups) if extend_idata else groups

    def sample_prior_predictive(
        self, samples: int = 500, *, random_seed: int | np.random.Generator | None = None
    ) -> az.InferenceData:
        """Repeat-purchase counts implied by the priors alone (prior predictive check).

        Draws ``samples`` parameter sets from the priors (:attr:`priors_`) and simulates a
        fresh customer of each observed age ``T`` per draw. No fit is needed.

        Returns
        -------
        arviz.InferenceData
            ``prior`` (``r, alpha, a, b``), ``prior_predictive`` (``frequency``,
            ``recency``; dims ``chain, draw, customer_id``) and ``observed_data``.
        """
        return purchase_prior_predictive(self, samples, random_seed=random_seed)
