"""Simulate customer bases from the BG/NBD and Gamma-Gamma models.

A pandas front end to :mod:`clvbayes.kernels.simulate`: draws a population of customers
with known latent parameters, in the format of :func:`clvbayes.rfm_summary`, for
checking estimators, calibration/holdout predictions and CLV pipelines against ground
truth.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from clvbayes.kernels.simulate import simulate_population, simulate_transactions

__all__ = ["simulate_customers"]


def _positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive real number, got {value!r}.")
    v = float(value)
    if not (np.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return v


def simulate_customers(
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | Sequence[float] | np.ndarray | pd.Series,
    *,
    n_customers: int | None = None,
    p: float | None = None,
    q: float | None = None,
    gamma: float | None = None,
    holdout: float | None = None,
    seed: int,
    return_transactions: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate a customer base from the BG/NBD model, optionally with Gamma-Gamma spend.

    Each customer has ``λ ~ Gamma(r, rate alpha)`` and ``p_drop ~ Beta(a, b)``, makes a
    first purchase at time 0, then repeat purchases as a Poisson process of rate ``λ``,
    dropping out with probability ``p_drop`` immediately after each repeat purchase
    (Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing Science
    24(2)). With ``p, q, gamma`` every transaction (the first included) has value
    ``Gamma(p, rate ν)`` with ``ν ~ Gamma(q, rate gamma)`` (Fader, Hardie & Lee 2005,
    "RFM and CLV", JMR 42(4)).

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters, all > 0.
    T : float or array-like
        Time from each customer's first purchase to the end of the calibration period
        (> 0), in the time unit of ``alpha``. A scalar needs ``n_customers``.
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

    Returns
    -------
    summary : pandas.DataFrame
        Index ``customer_id`` (0..n-1); columns ``frequency`` (repeat purchases in
        ``(0, T]``, int64), ``recency`` (time of the last of them, 0 if none), ``T``,
        ``monetary_value`` (mean value of those repeat purchases, 0 if none; with spend),
        ``frequency_holdout`` (repeat purchases in ``(T, T + h]``; with ``holdout``),
        ``monetary_value_holdout`` (their mean value, 0 if none; with spend and holdout),
        and the ground truth ``true_lambda``, ``true_p_drop``, ``true_nu`` (with spend)
        and ``true_alive`` (not yet dropped out at ``T``).
    transactions : pandas.DataFrame
        Only with ``return_transactions=True``: columns ``customer_id``, ``time`` (since
        the customer's first purchase, 0 for the first purchase) and ``amount`` (with
        spend); every transaction up to ``T + h`` (``T`` without holdout), sorted by
        customer and time. Rows with ``time > T`` of their customer are holdout purchases.

    Raises
    ------
    ValueError
        For non-positive or non-finite parameters, ``T <= 0``, a partial set of spend
        parameters, a mismatched ``n_customers`` or a seed that is not a non-negative
        integer.
    """
    r = _positive_float("r", r)
    alpha = _positive_float("alpha", alpha)
    a = _positive_float("a", a)
    b = _positive_float("b", b)

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

    x, t_x, mon, lam, pdrop, nu, alive, x_h, mon_h, n_tx = simulate_population(
        r, alpha, a, b, T_arr, p_f, q_f, g_f, spend, horizon, seed_i
    )

    index = pd.RangeIndex(T_arr.shape[0], name="customer_id")
    cols: dict[str, np.ndarray] = {"frequency": x, "recency": t_x, "T": T_arr.copy()}
    if spend:
        cols["monetary_value"] = mon
    if holdout is not None:
        cols["frequency_holdout"] = x_h
        if spend:
            cols["monetary_value_holdout"] = mon_h
    cols["true_lambda"] = lam
    cols["true_p_drop"] = pdrop
    if spend:
        cols["true_nu"] = nu
    cols["true_alive"] = alive
    summary = pd.DataFrame(cols, index=index)
    if not return_transactions:
        return summary

    cust, time, amount = simulate_transactions(
        r, alpha, a, b, T_arr, p_f, q_f, g_f, spend, horizon, seed_i, n_tx
    )
    tcols: dict[str, np.ndarray] = {"customer_id": cust, "time": time}
    if spend:
        tcols["amount"] = amount
    transactions = pd.DataFrame(tcols)
    return summary, transactions
