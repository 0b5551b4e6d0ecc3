"""Simulate customer bases from any purchase family (BG/NBD, Pareto/NBD, MBG/NBD) and
Gamma-Gamma spend.

A pandas front end to the event-by-event simulator of :mod:`clvbayes.kernels.simulate`,
compiled per family (:func:`clvbayes.families.compiled.drivers_for`): draws a population of
customers with known latent parameters, in the format of :func:`clvbayes.rfm_summary`, for
checking estimators, calibration/holdout predictions and CLV pipelines against ground
truth.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from clvbayes.families import Family, get_family
from clvbayes.families.compiled import drivers_for

__all__ = ["simulate_customers", "simulate_customers_by_row", "simulate_spend"]


def _positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive real number, got {value!r}.")
    v = float(value)
    if not (np.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return v


def _parameters(family: Family, theta: tuple, T: object, params: dict) -> tuple[list[float], object]:
    """The four parameters (positional or named by the family) and T (keyword or 5th positional)."""
    names = family.param_names
    if len(theta) == 5 and T is None:
        theta, T = theta[:4], theta[4]
    unknown = [k for k in params if k not in names]
    if unknown:
        raise TypeError(f"Unexpected argument(s) {', '.join(unknown)}: the {family.label} parameters are "
                        f"{', '.join(names)}.")
    if theta:
        if len(theta) != 4:
            raise TypeError(f"simulate_customers takes the four {family.label} parameters {', '.join(names)} "
                            f"(and T) positionally, got {len(theta)} positional arguments.")
        if params:
            raise TypeError(f"Give the {family.label} parameters positionally or by name, not both "
                            f"(got {', '.join(params)} by name as well).")
        params = dict(zip(names, theta, strict=True))
    missing = [k for k in names if k not in params]
    if missing:
        raise TypeError(f"simulate_customers(model={family.name!r}) needs the parameters {', '.join(names)}; "
                        f"missing {', '.join(missing)}.")
    if T is None:
        raise TypeError("simulate_customers needs T (the customers' ages).")
    return [_positive_float(k, params[k]) for k in names], T


def simulate_customers(
    *theta: float,
    T: float | Sequence[float] | np.ndarray | pd.Series | None = None,
    model: str | Family = "bgnbd",
    n_customers: int | None = None,
    p: float | None = None,
    q: float | None = None,
    gamma: float | None = None,
    holdout: float | None = None,
    seed: int,
    return_transactions: bool = False,
    **params: float,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate a customer base from a purchase family, optionally with Gamma-Gamma spend.

    Call it with the family's four parameters, by position or by the names of its
    ``param_names``::

        simulate_customers(0.243, 4.414, 0.793, 2.426, T=39.0, n_customers=1000, seed=1)
        simulate_customers(r=0.55, alpha=10.58, s=0.61, beta=11.67, model="pnbd", T=39.0,
                           n_customers=1000, seed=1)
        simulate_customers(**fitted.params_, model=fitted.family, T=..., seed=1)

    ``model`` defaults to BG/NBD, so ``simulate_customers(r, alpha, a, b, T, ...)`` works
    as it always has (the same output for the same seed). Models and their processes (the
    first purchase at time 0 is not a repeat purchase; ``λ ~ Gamma(r, rate alpha)`` and
    purchases form a Poisson process of rate ``λ`` while the customer is alive):

    - ``"bgnbd"`` (Fader, Hardie & Lee 2005, "Counting your customers the easy way",
      Marketing Science 24(2)): ``p_drop ~ Beta(a, b)``; the customer drops out with
      probability ``p_drop`` right after each repeat purchase;
    - ``"mbgnbd"`` (Batislam, Denizel & Filiztekin 2007, IJRM 24(3)): as BG/NBD, and also
      right after the first purchase (at time 0);
    - ``"pnbd"`` (Schmittlein, Morrison & Colombo 1987, Management Science 33(1)):
      ``μ ~ Gamma(s, rate beta)`` and an exponential lifetime of rate ``μ``.

    With ``p, q, gamma`` every transaction (the first included) has value
    ``Gamma(p, rate ν)`` with ``ν ~ Gamma(q, rate gamma)`` (Fader, Hardie & Lee 2005,
    "RFM and CLV", JMR 42(4)).

    Parameters
    ----------
    *theta : float
        The family's four parameters in the order of its ``param_names`` (BG/NBD and
        MBG/NBD ``r, alpha, a, b``; Pareto/NBD ``r, alpha, s, beta``), all > 0, optionally
        followed by ``T``. Or give them by name (``**params``), not both.
    T : float or array-like
        Time from each customer's first purchase to the end of the calibration period
        (> 0), in the time unit of ``alpha``. A scalar needs ``n_customers``.
    model : str or Family, default "bgnbd"
        The family: ``"bgnbd"``, ``"pnbd"``, ``"mbgnbd"`` (the CLI's ``--model`` values) or
        a :class:`~clvbayes.families.Family`.
    n_customers : int, optional
        Number of customers when ``T`` is a scalar (if ``T`` is an array it must match).
    p, q, gamma : float, optional
        Gamma-Gamma parameters (all three or none), all > 0.
    holdout : float, optional
        Length ``h > 0`` of a holdout period ``(T, T + h]`` to simulate as well.
    seed : int
        Non-negative integer seed. The same seed gives the same result whatever the
        number of Numba threads; customers are seeded in fixed blocks of
        :data:`clvbayes.kernels.simulate.SIM_BLOCK`, so the first ``k`` customers of a
        population do not change when more customers are added (for equal ``T``).
    return_transactions : bool, default False
        Also return the individual transactions.
    **params : float
        The family's parameters by name (``r=..., alpha=..., s=..., beta=...``).

    Returns
    -------
    summary : pandas.DataFrame
        Index ``customer_id`` (0..n-1); columns ``frequency`` (repeat purchases in
        ``(0, T]``, int64), ``recency`` (time of the last of them, 0 if none), ``T``,
        ``monetary_value`` (mean value of those repeat purchases, 0 if none; with spend),
        ``frequency_holdout`` (repeat purchases in ``(T, T + h]``; with ``holdout``),
        ``monetary_value_holdout`` (their mean value, 0 if none; with spend and holdout),
        then the ground truth: the latent draws ``true_lambda`` and ``true_p_drop``
        (BG/NBD, MBG/NBD) or ``true_mu`` and ``true_lifetime`` (Pareto/NBD), ``true_nu``
        (with spend), ``true_alive`` (not yet dropped out at ``T``) and
        ``true_alive_holdout`` (not yet dropped out at ``T + h``; with ``holdout``).
    transactions : pandas.DataFrame
        Only with ``return_transactions=True``: columns ``customer_id``, ``time`` (since
        the customer's first purchase, 0 for the first purchase) and ``amount`` (with
        spend); every transaction up to ``T + h`` (``T`` without holdout), sorted by
        customer and time. Rows with ``time > T`` of their customer are holdout purchases.

    Raises
    ------
    ValueError
        For non-positive or non-finite parameters, ``T <= 0``, a partial set of spend
        parameters, a mismatched ``n_customers``, a seed that is not a non-negative
        integer or an unknown ``model``.
    TypeError
        For missing or unknown parameter names, or parameters given both ways.
    """
    family = get_family(model)
    theta_f, T = _parameters(family, theta, T, params)

    spend_given = [v is not None for v in (p, q, gamma)]
    if any(spend_given) and not all(spend_given):
        raise ValueError("Give all three Gamma-Gamma parameters p, q, gamma, or none of them.")
    spend = all(spend_given)
    if spend:
        p_f = _positive_float("p", p)
        q_f = _positive_float("q", q)
        g_f = _positive_float("gamma", gamma)
    else:
        p_f = q_f = g_f = float("nan")

    horizon = 0.0 if holdout is None else _positive_float("holdout", holdout)

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    seed_i = int(seed)
    if not 0 <= seed_i < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}.")

    if n_customers is not None and (
        isinstance(n_customers, bool)
        or not isinstance(n_customers, numbers.Integral)
        or n_customers < 0
    ):
        raise ValueError(f"n_customers must be a non-negative integer, got {n_customers!r}.")
    try:
        T_arr = np.asarray(T, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"T must be a positive number or an array of them: {exc}") from None
    if T_arr.ndim == 0:
        if n_customers is None:
            raise ValueError("T is a scalar: give n_customers as well.")
        T_arr = np.full(int(n_customers), float(T_arr))
    elif T_arr.ndim != 1:
        raise ValueError(f"T must be a scalar or one-dimensional, got shape {T_arr.shape}.")
    elif n_customers is not None and int(n_customers) != T_arr.shape[0]:
        raise ValueError(
            f"n_customers = {n_customers} does not match the length of T ({T_arr.shape[0]})."
        )
    if T_arr.size and not (np.all(np.isfinite(T_arr)) and np.all(T_arr > 0.0)):
        raise ValueError("T must be positive and finite for every customer.")
    T_arr = np.ascontiguousarray(T_arr)

    drivers = drivers_for(family)
    x, t_x, mon, lat0, lat1, lat2, nu, alive, alive_end, x_h, mon_h, n_tx = drivers.simulate_population(
        *theta_f, T_arr, p_f, q_f, g_f, spend, horizon, seed_i
    )

    index = pd.RangeIndex(T_arr.shape[0], name="customer_id")
    cols: dict[str, np.ndarray] = {"frequency": x, "recency": t_x, "T": T_arr.copy()}
    if spend:
        cols["monetary_value"] = mon
    if holdout is not None:
        cols["frequency_holdout"] = x_h
        if spend:
            cols["monetary_value_holdout"] = mon_h
    for name, values in zip(family.latent_names, (lat0, lat1, lat2), strict=False):
        cols[f"true_{name}"] = values
    if spend:
        cols["true_nu"] = nu
    cols["true_alive"] = alive
    if holdout is not None:
        cols["true_alive_holdout"] = alive_end
    summary = pd.DataFrame(cols, index=index)
    if not return_transactions:
        return summary

    cust, time, amount = drivers.simulate_transactions(
        *theta_f, T_arr, p_f, q_f, g_f, spend, horizon, seed_i, n_tx
    )
    tcols: dict[str, np.ndarray] = {"customer_id": cust, "time": time}
    if spend:
        tcols["amount"] = amount
    transactions = pd.DataFrame(tcols)
    return summary, transactions


def simulate_customers_by_row(
    parameters: pd.DataFrame,
    *,
    T: float | Sequence[float] | np.ndarray | pd.Series,
    model: str | Family = "bgnbd",
    seed: int,
) -> pd.DataFrame:
    """Simulate customers that each have their own parameters (e.g. through covariates).

    The event-by-event process of :func:`simulate_customers` (FHL 2005, SMC 1987, BDF 2007
    as documented there), per customer at its own parameters: customer ``i`` is exactly
    ``simulate_customers(**parameters.iloc[i], T=[T_i], model=model, seed=s_i)`` with
    ``s_i`` the ``i``-th of ``numpy.random.default_rng(seed).integers(0, 2**62, n)``
    (:func:`clvbayes.kernels.simulate.population_rows`, compiled per family).

    Parameters
    ----------
    parameters : pandas.DataFrame
        One row per customer: the family's four ``param_names`` columns and optionally the
        Gamma-Gamma ``p, q, gamma`` (all three), every value > 0 and finite.
    T : float or array-like
        Each customer's age (> 0; a scalar is every customer's).
    model : str or Family, default "bgnbd"
    seed : int
        Non-negative integer.

    Returns
    -------
    pandas.DataFrame
        Index ``customer_id`` 0..n-1 in the order of ``parameters``; ``frequency``,
        ``recency``, ``T``, ``monetary_value`` (with spend), the family's latent draws
        ``true_*``, ``true_nu`` (with spend) and ``true_alive``, as :func:`simulate_customers`.
    """
    family = get_family(model)
    names = list(family.param_names)
    spend_cols = [c for c in ("p", "q", "gamma") if c in parameters.columns]
    if spend_cols and len(spend_cols) != 3:
        raise ValueError("Give all three Gamma-Gamma parameters p, q, gamma, or none of them.")
    missing = [c for c in names if c not in parameters.columns]
    if missing:
        raise ValueError(f"parameters needs the {family.label} columns {names}; missing {missing}.")
    values = np.ascontiguousarray(parameters[names + spend_cols].to_numpy(dtype=float))
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise ValueError("Every parameter must be positive and finite.")
    n = values.shape[0]
    T_arr = np.full(n, float(T)) if np.ndim(T) == 0 else np.asarray(T, dtype=float)
    if T_arr.shape != (n,) or not (np.all(np.isfinite(T_arr)) and np.all(T_arr > 0)):
        raise ValueError(f"T must be a positive scalar or {n} positive ages.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    seeds = np.random.default_rng(int(seed)).integers(0, 2**62, size=n)
    spend = bool(spend_cols)
    spend_theta = np.ascontiguousarray(values[:, 4:] if spend else np.full((n, 3), np.nan))
    x, t_x, mon, lat0, lat1, lat2, nu, alive = drivers_for(family).simulate_rows(
        np.ascontiguousarray(values[:, :4]), np.ascontiguousarray(T_arr), spend_theta, spend, seeds)
    cols: dict[str, np.ndarray] = {"frequency": x, "recency": t_x, "T": T_arr.copy()}
    if spend:
        cols["monetary_value"] = mon
    for name, v in zip(family.latent_names, (lat0, lat1, lat2), strict=False):
        cols[f"true_{name}"] = v
    if spend:
        cols["true_nu"] = nu
    cols["true_alive"] = alive
    return pd.DataFrame(cols, index=pd.RangeIndex(n, name="customer_id"))


def simulate_spend(
    frequency: np.ndarray | pd.Series,
    p: float | np.ndarray,
    q: float | np.ndarray,
    gamma: float | np.ndarray,
    *,
    seed: int,
) -> np.ndarray:
    """Mean value of each customer's repeat transactions given their number, Gamma-Gamma.

    Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base
    analysis", JMR 42(4), eq. (1)-(2) (Colombo & Jiang 1999): ``ν_i ~ Gamma(shape q, rate
    γ_i)`` and every transaction value ``Gamma(shape p, rate ν_i)``; the mean of ``x_i``
    of them is ``Gamma(shape p x_i, rate x_i ν_i)``. For a spend model that conditions on the
    purchase history (its covariates' scaling may depend on which customers are repeat
    buyers), given the frequencies of any purchase simulation.

    Parameters
    ----------
    frequency : array-like of int
        Repeat purchases per customer (>= 0).
    p, q, gamma : float or array-like
        Gamma-Gamma parameters, scalars or one per customer (> 0).
    seed : int

    Returns
    -------
    numpy.ndarray
        ``monetary_value`` per customer (0 for a customer without repeat purchases).
    """
    x = np.asarray(frequency, dtype=float)
    p_, q_, g_ = (np.broadcast_to(np.asarray(v, dtype=float), x.shape) for v in (p, q, gamma))
    if not all(np.all(np.isfinite(v) & (v > 0)) for v in (p_, q_, g_)):
        raise ValueError("p, q and gamma must be positive and finite.")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be non-negative integers.")
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q_, 1.0 / g_)
    repeat = x > 0
    out = np.zeros(x.shape)
    out[repeat] = rng.gamma(p_[repeat] * x[repeat], 1.0 / (x[repeat] * nu[repeat]))
    return out
