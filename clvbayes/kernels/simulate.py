"""Simulation of BG/NBD customer populations with Gamma-Gamma spend (Numba).

Generative model (Fader, Hardie & Lee 2005, "Counting your customers the easy way: an
alternative to the Pareto/NBD model", Marketing Science 24(2), section 2; spend: Fader,
Hardie & Lee 2005, "RFM and CLV", JMR 42(4); Colombo & Jiang 1999), in continuous time,
for a customer observed for ``T_i`` time units after the first purchase:

- ``λ ~ Gamma(shape r, rate α)``, ``p_drop ~ Beta(a, b)``;
- the first purchase is at time 0 and is not a repeat purchase;
- repeat purchases arrive as a Poisson process of rate ``λ``; immediately after each
  repeat purchase the customer drops out with probability ``p_drop`` (no dropout before
  the first repeat purchase);
- optional spend: ``ν ~ Gamma(shape q, rate γ)`` and every transaction value, the first
  purchase included, is ``Gamma(shape p, rate ν)``.

The process is continued to ``T_i + horizon`` so that a holdout period ``(T_i, T_i + h]``
can be simulated together with the calibration period ``(0, T_i]``.

Reproducibility: customers are split into fixed blocks of ``SIM_BLOCK`` consecutive
customers; block ``k`` reseeds Numba's (thread-local, MT19937) generator with
``(h(seed) + k) mod 2^32`` — ``h`` a 64-bit mixing hash — at its start and draws its
customers in order. Blocks run in parallel (``prange``) but each block's draws depend only
on ``(seed, k)``, so the output is identical for any thread count and schedule, and block
seeds are distinct within a run. Per customer the draw order is ``λ, p_drop, [ν, first
value]``, then per event ``waiting time, [value], dropout uniform``.

The cost is proportional to the number of simulated events (about ``1 + min(λ (T+h),
1/p_drop)`` per customer): parameter values implying billions of purchases will run long.
With a Gamma prior so concentrated near 0 that a draw of ``ν`` underflows to 0 (``q``
around 1e-4), the values are ``inf``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["SIM_BLOCK", "block_seed", "simulate_population", "simulate_transactions"]

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


@njit(cache=True)
def _run_block(
    blk, seed, r, alpha, a, b, p, q, gamma, spend, T, horizon,
    x, t_x, mon, lam_out, pd_out, nu_out, alive, x_h, mon_h, n_tx,
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
    inv_alpha = 1.0 / alpha
    inv_gamma = 1.0 / gamma
    for i in range(lo, hi):
        lam = np.random.gamma(r, inv_alpha)
        pdrop = np.random.beta(a, b)
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
        alive_T = True
        # λ can underflow to 0 for tiny r: then no repeat purchase ever happens.
        if lam > 0.0:
            while True:
                # Exponential waiting time by inversion; 1 - U in (0, 1] avoids log(0).
                t += -math.log(1.0 - np.random.random()) / lam
                if t > end:
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
                if np.random.random() < pdrop:
                    if t <= Ti:
                        alive_T = False
                    break
        x[i] = xi
        t_x[i] = txi
        if spend:
            mon[i] = s / xi if xi > 0 else 0.0
            mon_h[i] = sh / xh if xh > 0 else 0.0
        else:
            mon[i] = math.nan
            mon_h[i] = math.nan
        lam_out[i] = lam
        pd_out[i] = pdrop
        nu_out[i] = nu
        alive[i] = alive_T
        x_h[i] = xh
        n_tx[i] = 1 + xi + xh


@njit(cache=True, parallel=True)
def _simulate(r, alpha, a, b, T, p, q, gamma, spend, horizon, seed, write, offsets):
    n = T.shape[0]
    nb = (n + SIM_BLOCK - 1) // SIM_BLOCK
    x = np.empty(n, dtype=np.int64)
    t_x = np.empty(n)
    mon = np.empty(n)
    lam = np.empty(n)
    pdrop = np.empty(n)
    nu = np.empty(n)
    alive = np.empty(n, dtype=np.bool_)
    x_h = np.empty(n, dtype=np.int64)
    mon_h = np.empty(n)
    n_tx = np.empty(n, dtype=np.int64)
    n_out = offsets[n] if write else 0
    tx_c = np.empty(n_out, dtype=np.int64)
    tx_t = np.empty(n_out)
    tx_a = np.empty(n_out)
    for blk in prange(nb):
        _run_block(
            blk, seed, r, alpha, a, b, p, q, gamma, spend, T, horizon,
            x, t_x, mon, lam, pdrop, nu, alive, x_h, mon_h, n_tx,
            write, offsets, tx_c, tx_t, tx_a,
        )  # fmt: skip
    return x, t_x, mon, lam, pdrop, nu, alive, x_h, mon_h, n_tx, tx_c, tx_t, tx_a


@njit(cache=True)
def simulate_population(
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: np.ndarray,
    p: float,
    q: float,
    gamma: float,
    spend: bool,
    horizon: float,
    seed: int,
):
    """Simulate BG/NBD customers with optional Gamma-Gamma spend (summaries only).

    FHL 2005 "Counting your customers the easy way", section 2 (purchase/dropout process)
    and FHL 2005 "RFM and CLV" (spend); see the module docstring for the exact process,
    the seeding and the draw order. Parameters are not validated here
    (:func:`clvbayes.simulation.simulate_customers` does).

    Parameters
    ----------
    r, alpha, a, b : float
        BG/NBD parameters (all > 0).
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
        ``(x, t_x, monetary, lam, p_drop, nu, alive, x_holdout, monetary_holdout, n_tx)``:
        repeat purchases in ``(0, T]`` (int64), time of the last of them (0 if none), their
        mean value (0 if none; nan without spend), the latent ``λ``, ``p_drop``, ``ν`` (nan
        without spend), whether the customer is still alive at ``T`` (bool), repeat
        purchases in ``(T, T + h]`` (int64) and their mean value (0 if none), and the
        number of transactions up to ``T + h`` including the first purchase (int64).
    """
    offsets = np.zeros(1, dtype=np.int64)
    out = _simulate(r, alpha, a, b, T, p, q, gamma, spend, horizon, seed, False, offsets)
    return out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8], out[9]


@njit(cache=True)
def simulate_transactions(
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: np.ndarray,
    p: float,
    q: float,
    gamma: float,
    spend: bool,
    horizon: float,
    seed: int,
    n_tx: np.ndarray,
):
    """Transactions of the population simulated by :func:`simulate_population`.

    Second pass of a count-then-fill scheme: ``n_tx`` is the per-customer transaction count
    returned by :func:`simulate_population` with the same arguments; every block is
    re-simulated from the same seed and writes its transactions at offsets
    ``cumsum(n_tx)``.

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
    out = _simulate(r, alpha, a, b, T, p, q, gamma, spend, horizon, seed, True, offsets)
    return out[10], out[11], out[12]
