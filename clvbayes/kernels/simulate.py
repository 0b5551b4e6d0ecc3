"""Event-by-event simulation of customer populations of any purchase family, with
Gamma-Gamma spend (Numba).

One generic simulator, written for BG/NBD here and compiled again for every family by
:func:`clvbayes.families.compiled.drivers_for` (the names ``_latent_one`` and
``_drops_out_one`` rebound to the family's cores of the same name,
:mod:`clvbayes.families._protocol`). For a customer observed for ``T_i`` time units after the
first purchase:

- the latent draws ``(λ, d, τ) = latent_one(θ)``: purchase rate, dropout parameter and a
  lifetime drawn up front (``inf`` where dropout is decided at purchases);
- the first purchase is at time 0 and is not a repeat purchase; right after it the customer
  drops out if ``drops_out_one(θ, λ, d, 0)`` (MBG/NBD: with probability ``p``);
- while alive (before ``τ``) repeat purchases arrive as a Poisson process of rate ``λ``;
  right after repeat purchase ``k`` the customer drops out if ``drops_out_one(θ, λ, d, k)``;
- optional spend: ``ν ~ Gamma(shape q, rate γ)`` and every transaction value, the first
  purchase included, is ``Gamma(shape p, rate ν)`` (Fader, Hardie & Lee 2005, "RFM and
  CLV", JMR 42(4); Colombo & Jiang 1999).

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way: an alternative to
the Pareto/NBD model", Marketing Science 24(2), section 2), the binding in this source:
``λ ~ Gamma(shape r, rate α)``, ``d = p_drop ~ Beta(a, b)``, ``τ = inf``, no dropout at time 0
and dropout with probability ``p_drop`` after each repeat purchase (:func:`latent_one`,
:func:`drops_out_one`). Pareto/NBD and MBG/NBD: :mod:`clvbayes.kernels.pareto_nbd`,
:mod:`clvbayes.kernels.mbgnbd`.

The process is continued to ``T_i + horizon`` so that a holdout period ``(T_i, T_i + h]``
can be simulated together with the calibration period ``(0, T_i]``; the customer is alive at
``T_i`` (and at ``T_i + h``) if the dropout has not happened by then.

Reproducibility: customers are split into fixed blocks of ``SIM_BLOCK`` consecutive
customers; block ``k`` reseeds Numba's (thread-local, MT19937) generator with
``(h(seed) + k) mod 2^32`` — ``h`` a 64-bit mixing hash — at its start and draws its
customers in order. Blocks run in parallel (``prange``) but each block's draws depend only
on ``(seed, k)``, so the output is identical for any thread count and schedule, and block
seeds are distinct within a run. Per customer the draw order is ``latent_one`` (BG/NBD:
``λ, p_drop``), ``[ν, first value]``, the draws of ``drops_out_one(..., 0)`` (none for
BG/NBD and Pareto/NBD), then per event ``waiting time, [value], draws of drops_out_one``
(BG/NBD: one uniform).

The cost is proportional to the number of simulated events (BG/NBD: about ``1 + min(λ (T+h),
1/p_drop)`` per customer): parameter values implying billions of purchases will run long.
With a Gamma prior so concentrated near 0 that a draw of ``ν`` underflows to 0 (``q``
around 1e-4), the values are ``inf``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "SIM_BLOCK",
    "block_seed",
    "latent_one",
    "drops_out_one",
    "population",
    "transactions",
    "simulate_population",
    "simulate_transactions",
    "population_rows",
]

#: Customers per independently seeded block (part of the reproducibility contract:
#: changing it changes the simulated populations).
SIM_BLOCK = 1024

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK32 = np.uint64(0xFFFFFFFF)


@njit(cache=True)
def block_seed(seed: int, block: int) -> int:
    """32-bit MT19937 seed of a block: ``(splitmix64(seed) >> 32) + block`` modulo 2^32.

    The SplitMix64 finaliser (Steele, Lea & Flood 2014) decorrelates nearby user seeds;
    adding the block index keeps the block seeds of one run distinct.
    """
    z = np.uint64(seed) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return np.int64(((z >> np.uint64(32)) + np.uint64(block)) & _MASK32)


@njit(cache=True, error_model="numpy")
def latent_one(r: float, alpha: float, a: float, b: float) -> tuple[float, float, float]:
    """A new BG/NBD customer's latent draws ``(λ, p_drop, τ = inf)``.

    FHL 2005 section 2: ``λ ~ Gamma(r, rate α)``, then ``p_drop ~ Beta(a, b)``; no lifetime
    is drawn up front (dropout is decided at purchases, :func:`drops_out_one`). Draws from
    Numba's global generator.

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (> 0).

    Returns
    -------
    tuple of float
    """
    lam = np.random.gamma(r, 1.0 / alpha)
    return lam, np.random.beta(a, b), math.inf


@njit(cache=True, error_model="numpy")
def drops_out_one(r: float, alpha: float, a: float, b: float, lam: float, p_drop: float, k: int) -> bool:
    """Whether a BG/NBD customer drops out right after purchase ``k`` (0: the first).

    FHL 2005 section 2: never after the first purchase (no draw), with probability
    ``p_drop`` after each repeat purchase (one uniform).

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (unused: the latent draws carry the customer).
    lam, p_drop : float
        The customer's latent draws (:func:`latent_one`).
    k : int
        Repeat purchases so far (0 right after the first purchase).

    Returns
    -------
    bool
    """
    if k == 0:
        return False
    return np.random.random() < p_drop


# The family's cores, rebound per family by clvbayes.families.compiled.drivers_for.
_latent_one = latent_one
_drops_out_one = drops_out_one


@njit(cache=True)
def _run_block(
    blk, seed, p0, p1, p2, p3, p, q, gamma, spend, T, horizon,
    x, t_x, mon, lat0, lat1, lat2, nu_out, alive, alive_h, x_h, mon_h, n_tx,
    write, offsets, tx_c, tx_t, tx_a,
):  # fmt: skip
    """Simulate the customers of block ``blk``; optionally write their transactions.

    Both passes (summary, then transactions) call this with the same seed, so they see
    the same random numbers: every draw is made whether or not it is written.
    """
    np.random.seed(block_seed(seed, blk))
    n = T.shape[0]
    lo = blk * SIM_BLOCK
    hi = min(n, lo + SIM_BLOCK)
    inv_gamma = 1.0 / gamma
    for i in range(lo, hi):
        lam, d, tau = _latent_one(p0, p1, p2, p3)
        nu = math.nan
        z0 = math.nan
        if spend:
            nu = np.random.gamma(q, inv_gamma)
            # Value of the first purchase: drawn but never part of the repeat summaries.
            z0 = np.random.gamma(p, 1.0) / nu
        Ti = T[i]
        end = Ti + horizon
        k = 0
        if write:
            k = offsets[i]
            tx_c[k] = i
            tx_t[k] = 0.0
            tx_a[k] = z0
            k += 1
        t = 0.0
        xi = 0
        txi = 0.0
        s = 0.0
        xh = 0
        sh = 0.0
        death = tau  # time of dropout (inf: not by T + horizon)
        if _drops_out_one(p0, p1, p2, p3, lam, d, 0):
            death = 0.0
        elif lam > 0.0:  # λ can underflow to 0 for tiny r: then no repeat purchase ever happens
            while True:
                # Exponential waiting time by inversion; 1 - U in (0, 1] avoids log(0).
                t += -math.log(1.0 - np.random.random()) / lam
                if t > end or t > death:
                    break
                z = math.nan
                if spend:
                    z = np.random.gamma(p, 1.0) / nu
                if t <= Ti:
                    xi += 1
                    txi = t
                    s += z
                else:
                    xh += 1
                    sh += z
                if write:
                    tx_c[k] = i
                    tx_t[k] = t
                    tx_a[k] = z
                    k += 1
                if _drops_out_one(p0, p1, p2, p3, lam, d, xi + xh):
                    death = t
                    break
        x[i] = xi
        t_x[i] = txi
        if spend:
            mon[i] = s / xi if xi > 0 else 0.0
            mon_h[i] = sh / xh if xh > 0 else 0.0
        else:
            mon[i] = math.nan
            mon_h[i] = math.nan
        lat0[i] = lam
        lat1[i] = d
        lat2[i] = tau
        nu_out[i] = nu
        alive[i] = death > Ti
        alive_h[i] = death > end
        x_h[i] = xh
        n_tx[i] = 1 + xi + xh


@njit(cache=True, parallel=True)
def _simulate(p0, p1, p2, p3, T, p, q, gamma, spend, horizon, seed, write, offsets):
    n = T.shape[0]
    nb = (n + SIM_BLOCK - 1) // SIM_BLOCK
    x = np.empty(n, dtype=np.int64)
    t_x = np.empty(n)
    mon = np.empty(n)
    lat0 = np.empty(n)
    lat1 = np.empty(n)
    lat2 = np.empty(n)
    nu = np.empty(n)
    alive = np.empty(n, dtype=np.bool_)
    alive_h = np.empty(n, dtype=np.bool_)
    x_h = np.empty(n, dtype=np.int64)
    mon_h = np.empty(n)
    n_tx = np.empty(n, dtype=np.int64)
    n_out = offsets[n] if write else 0
    tx_c = np.empty(n_out, dtype=np.int64)
    tx_t = np.empty(n_out)
    tx_a = np.empty(n_out)
    for blk in prange(nb):
        _run_block(
            blk, seed, p0, p1, p2, p3, p, q, gamma, spend, T, horizon,
            x, t_x, mon, lat0, lat1, lat2, nu, alive, alive_h, x_h, mon_h, n_tx,
            write, offsets, tx_c, tx_t, tx_a,
        )  # fmt: skip
    return x, t_x, mon, lat0, lat1, lat2, nu, alive, alive_h, x_h, mon_h, n_tx, tx_c, tx_t, tx_a


@njit(cache=True)
def population(
    p0: float,
    p1: float,
    p2: float,
    p3: float,
    T: np.ndarray,
    p: float,
    q: float,
    gamma: float,
    spend: bool,
    horizon: float,
    seed: int,
):
    """Simulate a family's customers with optional Gamma-Gamma spend (summaries only).

    The generic simulator of the module docstring (this build: BG/NBD; every family's build:
    ``drivers_for(family).simulate_population``). Parameters are not validated here
    (:func:`clvbayes.simulation.simulate_customers` does).

    Parameters
    ----------
    p0, p1, p2, p3 : float
        The family's four parameters, in the order of its ``param_names`` (all > 0).
    T : ndarray of float64
        Observation length after the first purchase, per customer (> 0).
    p, q, gamma : float
        Gamma-Gamma parameters; ignored (pass nan) when ``spend`` is False.
    spend : bool
        Whether to simulate transaction values.
    horizon : float
        Holdout length ``h >= 0``; 0 means no holdout.
    seed : int
        Non-negative integer seed.

    Returns
    -------
    tuple of ndarray
        ``(x, t_x, monetary, latent0, latent1, latent2, nu, alive, alive_end, x_holdout,
        monetary_holdout, n_tx)``: repeat purchases in ``(0, T]`` (int64), time of the last
        of them (0 if none), their mean value (0 if none; nan without spend), the three
        latent draws of ``latent_one`` (BG/NBD: ``λ, p_drop, inf``), ``ν`` (nan without
        spend), whether the customer is alive at ``T`` and at ``T + h`` (bool), repeat
        purchases in ``(T, T + h]`` (int64) and their mean value (0 if none), and the number
        of transactions up to ``T + h`` including the first purchase (int64).
    """
    offsets = np.zeros(1, dtype=np.int64)
    out = _simulate(p0, p1, p2, p3, T, p, q, gamma, spend, horizon, seed, False, offsets)
    return out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8], out[9], out[10], out[11]


@njit(cache=True)
def transactions(
    p0: float,
    p1: float,
    p2: float,
    p3: float,
    T: np.ndarray,
    p: float,
    q: float,
    gamma: float,
    spend: bool,
    horizon: float,
    seed: int,
    n_tx: np.ndarray,
):
    """Transactions of the population simulated by :func:`population`.

    Second pass of a count-then-fill scheme: ``n_tx`` is the per-customer transaction count
    returned by :func:`population` with the same arguments; every block is re-simulated from
    the same seed and writes its transactions at offsets ``cumsum(n_tx)``.

    Returns
    -------
    tuple of ndarray
        ``(customer, time, amount)``: customer index (int64), time since the customer's
        first purchase (0 for the first purchase) and value (nan without spend), sorted by
        customer then time; all transactions up to ``T + horizon``.
    """
    n = T.shape[0]
    offsets = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        offsets[i + 1] = offsets[i] + n_tx[i]
    out = _simulate(p0, p1, p2, p3, T, p, q, gamma, spend, horizon, seed, True, offsets)
    return out[12], out[13], out[14]


@njit(cache=True)
def simulate_population(r, alpha, a, b, T, p, q, gamma, spend, horizon, seed):  # fmt: skip
    """BG/NBD customers (FHL 2005 section 2) with optional Gamma-Gamma spend, summaries only:
    :func:`population` at BG/NBD parameters ``(r, alpha, a, b)``, same arguments, in its
    original ten outputs.

    Returns
    -------
    tuple of ndarray
        ``(x, t_x, monetary, lam, p_drop, nu, alive, x_holdout, monetary_holdout, n_tx)``:
        :func:`population`'s outputs without the third latent draw (``inf`` for BG/NBD) and
        without ``alive_end``.
    """
    out = population(r, alpha, a, b, T, p, q, gamma, spend, horizon, seed)
    return out[0], out[1], out[2], out[3], out[4], out[6], out[7], out[9], out[10], out[11]


@njit(cache=True)
def population_rows(theta: np.ndarray, T: np.ndarray, spend_theta: np.ndarray, spend: bool, seeds: np.ndarray):
    """Simulate customers that each have their own parameters (summaries, no holdout).

    Customer ``i`` is exactly the one customer of :func:`population` at parameters
    ``theta[i]``, age ``T[i]``, spend ``spend_theta[i]`` and seed ``seeds[i]`` (the same
    block, :func:`_run_block`, with its own seed): a population whose parameters vary by
    customer (covariates, segments), simulated by the process of the module docstring.
    Serial: one call per customer set, no thread start per customer.

    Parameters
    ----------
    theta : ndarray, shape (n, 4)
        Each customer's four family parameters (> 0).
    T : ndarray, shape (n,)
        Ages (> 0).
    spend_theta : ndarray, shape (n, 3)
        Each customer's Gamma-Gamma ``p, q, gamma`` (ignored, e.g. nan, without ``spend``).
    spend : bool
    seeds : ndarray of int64, shape (n,)
        Non-negative seeds, one per customer.

    Returns
    -------
    tuple of ndarray
        ``(x, t_x, monetary, latent0, latent1, latent2, nu, alive)`` as :func:`population`.
    """
    n = T.shape[0]
    x = np.empty(n, dtype=np.int64)
    t_x = np.empty(n)
    mon = np.empty(n)
    lat0 = np.empty(n)
    lat1 = np.empty(n)
    lat2 = np.empty(n)
    nu = np.empty(n)
    alive = np.empty(n, dtype=np.bool_)
    alive_h = np.empty(1, dtype=np.bool_)
    x_h = np.empty(1, dtype=np.int64)
    mon_h = np.empty(1)
    n_tx = np.empty(1, dtype=np.int64)
    offsets = np.zeros(1, dtype=np.int64)
    no_tx = np.empty(0)
    no_c = np.empty(0, dtype=np.int64)
    for i in range(n):
        _run_block(
            0, seeds[i], theta[i, 0], theta[i, 1], theta[i, 2], theta[i, 3],
            spend_theta[i, 0], spend_theta[i, 1], spend_theta[i, 2], spend, T[i : i + 1], 0.0,
            x[i : i + 1], t_x[i : i + 1], mon[i : i + 1], lat0[i : i + 1], lat1[i : i + 1], lat2[i : i + 1],
            nu[i : i + 1], alive[i : i + 1], alive_h, x_h, mon_h, n_tx,
            False, offsets, no_c, no_tx, no_tx,
        )  # fmt: skip
    return x, t_x, mon, lat0, lat1, lat2, nu, alive


#: Transactions of the population of :func:`simulate_population` (the same arguments and its
#: ``n_tx``): :func:`transactions`, whose BG/NBD build this module's is.
simulate_transactions = transactions
