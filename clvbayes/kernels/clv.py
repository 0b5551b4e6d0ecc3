"""Customer-lifetime-value kernels over the joint posterior, streamed over blocks of customers.

Model: BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing
Science 24(2), FHL below) for the purchases, Gamma-Gamma (Colombo & Jiang 1999; Fader,
Hardie & Lee 2005, "RFM and CLV: using iso-value curves for customer base analysis", JMR
42(4)) for the spend per transaction. Derivations in ``docs/theory/clv.md``.

**Factorisation.** Given its history (x, t_x, T), a customer is alive at T with probability
P_alive(θ; x, t_x, T), and given alive its future is a BG/NBD process with the updated
parameters (r+x, α+T, a, b+x) (memorylessness; see ``docs/theory/bgnbd_predictions.md``).
Every per-(posterior draw, customer) quantity here is therefore::

    quantity = P_alive(θ; x, t_x, T) · F(θ; x, T, δ)            (× margin · spend for CLV)

where F, the expensive part, depends on the customer only through (x, T, δ):

- ``PURCHASES``  (1): E[X(t)] at (r+x, α+T, a, b+x), purchases in (T, T+t] given alive
  (FHL eq. 9 at the updated parameters; times P_alive this is FHL eq. 10);
- ``DISCOUNTED`` (2): ``E[∫_0^H e^{-δs} λ e^{-pλs} ds]`` given alive — the DERT factor for
  H = inf, discounted expected purchases over (T, T+H] otherwise;
- ``CLV``        (3): margin · E[Z | x, m] · P_alive · F_DISCOUNTED, with E[Z | x, m] the
  Gamma-Gamma expected spend (FHL RFM & CLV eq. 5);
- ``P_ALIVE``    (0): F = 1;
- ``DROPOUT``    (4): P(the customer drops out in (T, T+t] | alive at T), which by
  size-biasing p equals ``a/(a+b') · E[X(t); r', α', a+1, b']`` (``docs/theory/clv.md``,
  section 6); times P_alive it is the probability of being alive at T and dead at T+t;
- ``LOST``       (5): ``(1 - P_alive) · margin · E[Z | x, m] · F_DISCOUNTED``: the value a
  customer who is already dead at T would have had, had they been alive (the factor F is
  computed with the alive-at-T posterior), weighted by the probability of being dead;
- ``SPEND``      (6): ``margin · E[Z | x, m]`` alone (no P_alive, no F);
- ``PMF + n``   (16 + n): P(X(t) = n) at the updated parameters (FHL eq. 8); the customer's
  probability of n purchases in (T, T+t] is ``P_alive · F + (1 - P_alive) [n = 0]``
  (the dead buy nothing), which :func:`clv_block` returns.

**Tables.** On a time grid (e.g. days) a large customer base has few unique (x, T, δ)
keys: 10^6 simulated customers with T on a daily 52-week grid have 6,699 unique (x, T).
:func:`unique_keys` codes the customers; :func:`clv_factor_table` evaluates F once per
(draw, key); :func:`clv_block` then needs only P_alive (one log, one exp) and a few
multiplications per (draw, customer).

**Interpolation in T.** Within a group of keys with the same (x, δ), F depends on T only
through α' = α+T; it is analytic in ln α' (its singularities lie at α' <= 0, i.e. at
Im ln α' = ±π) and bounded within π/2 of the real axis, so ln F is interpolated by Chebyshev
polynomials of degree 16 (or 32) in ln α' over the group's range. The interpolant is
accepted only when the last quarter of its Chebyshev coefficients is below ``_CHEB_TOL`` =
1e-12 (absolute in ln F, i.e. relative in F); otherwise — and for groups with at most 17
(33) keys — F is evaluated at every key. Agreement with direct evaluation in the tests:
<= 2e-12 relative on the CDNOW-like grids of tests/test_kernels_clv.py (typically 1e-14); up to
1.6e-11 for the DERT factor at some parameters (tests/test_family_contract.py): the tail test
on the coefficients underestimates the interpolation error there. For the base above: 740
instead of 6,699 evaluations of F per draw.

**Streaming.** :func:`clv_block` fills a (draws × customers) matrix for a block of
customers; :func:`clv_summarise` reduces it to per-customer mean, sd, quantiles and HDI and
adds per-draw sums into per-segment totals; :func:`clv_stream` loops over blocks, so memory
is O(D · (block + keys + segments)) whatever the number of customers.

**Determinism.** Parallel loops run over draws (tables, blocks, segment totals) or over
customers (summaries); each output element is computed by one thread in a fixed order, so
results are bit-identical for any number of threads and any block size.

Preconditions (not checked in the hot loops; :func:`clv_stream` checks shapes and codes):
parameters > 0, integer-valued x >= 0, 0 <= t_x <= T, δ >= 0, horizon >= 0 (may be inf),
mean spend m >= 0 (m = 0 for a repeat buyer: the limit of :func:`gg_expected_spend_one`).
T = 0 (a customer first seen at the end of observation, x = t_x = 0) is valid: its keys
sit at the lower end ln α of a group's Chebyshev range and P_alive = 1.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels.bgnbd_predict import (
    dert_alive_one,
    discounted_purchases_alive_one,
    p_alive_one,
    pmf_one,
)
from clvbayes.kernels.gamma_gamma import gg_expected_spend_one
from clvbayes.kernels.chebyshev import COS64 as _COS64
from clvbayes.kernels.chebyshev import cheb_coefs as _cheb_coefs
from clvbayes.kernels.chebyshev import cheb_tail_ok
from clvbayes.kernels.special import log1p_fast
from clvbayes.kernels.summaries import clv_summarise

__all__ = [
    "P_ALIVE",
    "PURCHASES",
    "DISCOUNTED",
    "CLV",
    "DROPOUT",
    "LOST",
    "SPEND",
    "PMF",
    "p_alive_one",
    "dert_alive_one",
    "discounted_purchases_alive_one",
    "gg_expected_spend_one",
    "alive_factor_one",
    "clv_one",
    "unique_keys",
    "clv_factor_table",
    "clv_block",
    "clv_block_with_alive",
    "clv_summarise",
    "clv_stream",
    "family_factor_table",
    "family_fill",
    "family_fill_rows",
    "bgnbd_fill_rows_alpha",
]

# Quantity codes.
P_ALIVE = 0
PURCHASES = 1
DISCOUNTED = 2
CLV = 3
DROPOUT = 4
LOST = 5
SPEND = 6
PMF = 16  # PMF + n: probability of n purchases

# Chebyshev interpolation in ln(α+T): degrees tried (Lobatto points are nested), tolerance on
# the last quarter of the coefficients of ln F.
_CHEB_N0 = 16
_CHEB_NMAX = 32
_CHEB_TOL = 1.0e-12


# --------------------------------------------------------------------------------------
# Scalar cores
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _factor_ap(
    quantity: int, rp: float, ap: float, a: float, bp: float, delta: float, horizon: float
) -> float:
    """F at the updated parameters (r+x, α+T, a, b+x) = (rp, ap, a, bp)."""
    if quantity == P_ALIVE or quantity == SPEND:
        return 1.0
    if quantity == PURCHASES:
        return discounted_purchases_alive_one(rp, ap, a, bp, 0.0, horizon)
    if quantity == DROPOUT:
        # E[1 - exp(-pλt)] = E[p] E'[(1 - exp(-p'λt))/p'], p' ~ Beta(a+1, b'): a size-biased
        # expected-purchases factor.
        return a / (a + bp) * discounted_purchases_alive_one(rp, ap, a + 1.0, bp, 0.0, horizon)
    if quantity >= PMF:
        return pmf_one(rp, ap, a, bp, horizon, quantity - PMF)
    return discounted_purchases_alive_one(rp, ap, a, bp, delta, horizon)


@njit(cache=True, fastmath=False, error_model="numpy")
def alive_factor_one(
    quantity: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: float,
    T: float,
    delta: float,
    horizon: float,
) -> float:
    """The factor F(θ; x, T, δ) of a quantity that multiplies P(alive) (module docstring).

    Parameters
    ----------
    quantity : int
        ``P_ALIVE`` (F = 1), ``PURCHASES`` (expected purchases in (T, T+horizon] given alive,
        FHL 2005 eq. 9 at (r+x, α+T, a, b+x)), ``DISCOUNTED`` or ``CLV`` (discounted expected
        purchases in (T, T+horizon] given alive, :func:`discounted_purchases_alive_one`;
        the DERT factor :func:`dert_alive_one` for horizon = inf).
    r, alpha, a, b : float
        BG/NBD parameters of one posterior draw (> 0).
    x, T : float
        Repeat frequency and age of the customer.
    delta : float
        Continuous discount rate per time unit (>= 0; ignored for ``PURCHASES``).
    horizon : float
        Length of the prediction period (>= 0, may be inf).

    Returns
    -------
    float
    """
    return _factor_ap(quantity, r + x, alpha + T, a, b + x, delta, horizon)


@njit(cache=True, fastmath=False, error_model="numpy")
def clv_one(
    quantity: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    p: float,
    q: float,
    gamma: float,
    x: float,
    t_x: float,
    T: float,
    m: float,
    margin: float,
    delta: float,
    horizon: float,
) -> float:
    """One (posterior draw, customer) value of a quantity, straight from the scalar cores.

    ``P_alive · F`` (:func:`p_alive_one`, :func:`alive_factor_one`), times
    ``margin · E[Z | x, m]`` (:func:`gg_expected_spend_one`, FHL 2005 RFM & CLV eq. 5) for
    ``CLV``: the reference that :func:`clv_block` reproduces with tables.

    Parameters
    ----------
    quantity : int
        ``P_ALIVE``, ``PURCHASES``, ``DISCOUNTED`` or ``CLV``.
    r, alpha, a, b : float
        BG/NBD parameters of the draw.
    p, q, gamma : float
        Gamma-Gamma parameters of the draw (used for ``CLV`` only).
    x, t_x, T, m : float
        Frequency, recency, age and mean repeat spend of the customer.
    margin, delta, horizon : float
        Margin (multiplies the spend), discount rate and horizon.

    Returns
    -------
    float
        NaN where the Gamma-Gamma mean does not exist (``p x + q <= 1``).
    """
    if quantity == SPEND:
        return margin * gg_expected_spend_one(p, q, gamma, x, m)
    val = p_alive_one(r, alpha, a, b, x, t_x, T)
    if quantity == P_ALIVE:
        return val
    pdead = 1.0 - val
    if quantity == LOST:
        val = pdead
    val *= alive_factor_one(quantity, r, alpha, a, b, x, T, delta, horizon)
    if quantity == CLV or quantity == LOST:
        val *= margin * gg_expected_spend_one(p, q, gamma, x, m)
    if quantity == PMF:  # n = 0: the dead make no purchase
        val += pdead
    return val


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------


def unique_keys(
    x: np.ndarray, T: np.ndarray, delta: np.ndarray | float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Code customers by their unique (x, T, δ): the keys of :func:`clv_factor_table`.

    Parameters
    ----------
    x, T : numpy.ndarray
        Frequency and age per customer.
    delta : numpy.ndarray or float, default 0.0
        Discount rate per customer (or one for all).

    Returns
    -------
    codes : numpy.ndarray of int64
        Index of each customer's key.
    ux, uT, udelta : numpy.ndarray of float64
        The unique keys, sorted by (x, δ, T).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    T = np.ascontiguousarray(T, dtype=np.float64)
    d = np.broadcast_to(np.asarray(delta, dtype=np.float64), x.shape)
    order = np.lexsort((T, d, x))
    xs, ds, Ts = x[order], d[order], T[order]
    new = np.ones(x.shape[0], dtype=bool)
    new[1:] = (xs[1:] != xs[:-1]) | (ds[1:] != ds[:-1]) | (Ts[1:] != Ts[:-1])
    sorted_codes = np.cumsum(new) - 1
    codes = np.empty(x.shape[0], dtype=np.int64)
    codes[order] = sorted_codes
    first = np.flatnonzero(new)
    return codes, xs[first].copy(), Ts[first].copy(), np.ascontiguousarray(ds[first])


# --------------------------------------------------------------------------------------
# Factor table
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _cheb_values(
    quantity: int,
    rp: float,
    a: float,
    bp: float,
    delta: float,
    horizon: float,
    mid: float,
    half: float,
    n: int,
    first: int,
    step: int,
    v: np.ndarray,
) -> bool:
    """ln F at the Lobatto points k = first, first+step, ... <= n of degree n (ln α' =
    mid + half cos(πk/n)) into ``v[k * (_CHEB_NMAX // n)]``; False if some F is not in (0, inf)."""
    stride = _CHEB_NMAX // n
    for k in range(first, n + 1, step):
        f = _factor_ap(
            quantity, rp, math.exp(mid + half * _COS64[k * (64 // n)]), a, bp, delta, horizon
        )
        if not (f > 0.0 and f < math.inf):
            return False
        v[k * stride] = math.log(f)
    return True


@njit(cache=True, fastmath=False, error_model="numpy")
def _fill_group(
    quantity: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: float,
    delta: float,
    horizon: float,
    uT: np.ndarray,
    keys: np.ndarray,
    row: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    c: np.ndarray,
) -> None:
    """F at the keys ``keys`` (same x and δ, ascending T) into ``row``: Chebyshev
    interpolation of ln F in ln(α+T) when it converges (module docstring), else directly.
    ``v``, ``w``, ``c``: work arrays of length ``_CHEB_NMAX + 1``."""
    ng = keys.shape[0]
    rp = r + x
    bp = b + x
    if ng > _CHEB_N0 + 1:
        l0 = math.log(alpha + uT[keys[0]])
        l1 = math.log(alpha + uT[keys[ng - 1]])
        mid = 0.5 * (l0 + l1)
        half = 0.5 * (l1 - l0)
        n = _CHEB_N0
        ok = half > 0.0 and _cheb_values(quantity, rp, a, bp, delta, horizon, mid, half, n, 0, 1, v)
        while ok:
            stride = _CHEB_NMAX // n
            for k in range(n + 1):
                w[k] = v[k * stride]
            _cheb_coefs(w, n, c)
            if cheb_tail_ok(c, n, _CHEB_TOL):
                break
            if n >= _CHEB_NMAX or ng <= 2 * n + 1:
                ok = False
                break
            # The points of degree 2n are those of degree n plus the odd ones.
            n *= 2
            ok = _cheb_values(quantity, rp, a, bp, delta, horizon, mid, half, n, 1, 2, v)
        if ok:
            for i in range(ng):
                k = keys[i]
                xi = (math.log(alpha + uT[k]) - mid) / half
                xi = min(1.0, max(-1.0, xi))
                # Clenshaw recurrence for Σ_j c_j T_j(xi)
                b1 = 0.0
                b2 = 0.0
                for j in range(n, 0, -1):
                    b0 = 2.0 * xi * b1 - b2 + c[j]
                    b2 = b1
                    b1 = b0
                row[k] = math.exp(xi * b1 - b2 + c[0])
            return
    for i in range(ng):
        k = keys[i]
        row[k] = _factor_ap(quantity, rp, alpha + uT[k], a, bp, delta, horizon)


@njit(cache=True, fastmath=False)
def _key_groups(
    ux: np.ndarray, uT: np.ndarray, udelta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(order, starts): keys sorted by (x, δ, T) and the start of each run of equal (x, δ)
    (``starts`` ends with the number of keys)."""
    nk = ux.shape[0]
    # lexicographic sort by (x, δ, T): stable sorts from the last key on
    order = np.argsort(uT, kind="mergesort")
    order = order[np.argsort(udelta[order], kind="mergesort")]
    order = order[np.argsort(ux[order], kind="mergesort")]
    starts = np.empty(nk + 1, dtype=np.int64)
    ng = 0
    for i in range(nk):
        k = order[i]
        if i == 0 or ux[k] != ux[order[i - 1]] or udelta[k] != udelta[order[i - 1]]:
            starts[ng] = i
            ng += 1
    starts[ng] = nk
    return order, starts[: ng + 1].copy()


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def clv_factor_table(
    quantity: int,
    r: np.ndarray,
    alpha: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    ux: np.ndarray,
    uT: np.ndarray,
    udelta: np.ndarray,
    horizon: float,
) -> np.ndarray:
    """F(θ_d; x_k, T_k, δ_k) for every posterior draw d and key k.

    F is the factor after P(alive) of the quantity (:func:`alive_factor_one`): expected
    purchases in (T, T+horizon] given alive (``PURCHASES``) or discounted expected purchases
    given alive (``DISCOUNTED``, ``CLV``; the DERT factor for horizon = inf), at the updated
    parameters (r+x, α+T, a, b+x) of Fader, Hardie & Lee (2005), Marketing Science 24(2).
    Within each group of keys with equal (x, δ), ln F is interpolated in ln(α+T) when its
    Chebyshev expansion has converged (module docstring), else evaluated key by key.

    Parameters
    ----------
    quantity : int
        ``P_ALIVE`` (returns a (D, 0) array), ``PURCHASES``, ``DISCOUNTED`` or ``CLV``.
    r, alpha, a, b : numpy.ndarray
        BG/NBD parameters, one entry per posterior draw (length D).
    ux, uT, udelta : numpy.ndarray
        Keys (from :func:`unique_keys`; any order).
    horizon : float
        Length of the prediction period (>= 0, may be inf).

    Returns
    -------
    numpy.ndarray
        Shape (D, number of keys). Parallel over draws: identical for any thread count.
    """
    nd = r.shape[0]
    if quantity == P_ALIVE or quantity == SPEND:
        return np.empty((nd, 0))
    nk = ux.shape[0]
    out = np.empty((nd, nk))
    order, starts = _key_groups(ux, uT, udelta)
    ng = starts.shape[0] - 1
    for d in prange(nd):
        v = np.empty(_CHEB_NMAX + 1)
        w = np.empty(_CHEB_NMAX + 1)
        c = np.empty(_CHEB_NMAX + 1)
        row = out[d]
        for g in range(ng):
            keys = order[starts[g] : starts[g + 1]]
            k0 = keys[0]
            _fill_group(
                quantity, r[d], alpha[d], a[d], b[d], ux[k0], udelta[k0], horizon, uT, keys,
                row, v, w, c,
            )
    return out


# --------------------------------------------------------------------------------------
# Block of customers
# --------------------------------------------------------------------------------------


# inline="always": inlined in Numba IR, so the hot BG/NBD loop is the code it was before.
@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _from_alive(
    quantity: int, pa: float, pdead: float, table: np.ndarray, d: int, k: int, p: float, q: float, gamma: float,
    x: float, m: float, margin: float,
) -> float:
    """A quantity of one (draw d, customer of key k) from its P_alive ``pa`` and
    ``pdead = 1 - pa``: ``pa · F`` (F = ``table[d, k]``; not read for ``P_ALIVE``), times
    ``margin · E[Z | x, m]`` (FHL 2005, JMR 42(4), eq. 5) for ``CLV``; ``pdead · F · margin ·
    E[Z | x, m]`` for ``LOST``; plus ``pdead`` for ``PMF`` (n = 0: the dead make no purchase).
    The algebra shared by every family's block fill (:func:`_fill`, :func:`family_fill`)."""
    return _combine(quantity, pa, pdead, table[d, k] if quantity != P_ALIVE else 1.0, p, q, gamma, x, m, margin)


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _combine(
    quantity: int, pa: float, pdead: float, f: float, p: float, q: float, gamma: float, x: float, m: float,
    margin: float,
) -> float:
    """:func:`_from_alive` with the factor F given (``f``; not read for ``P_ALIVE``)."""
    val = pdead if quantity == LOST else pa
    if quantity != P_ALIVE:
        val *= f
        if quantity == CLV or quantity == LOST:
            val *= margin * gg_expected_spend_one(p, q, gamma, x, m)
        elif quantity == PMF:
            val += pdead
    return val


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _fill(
    quantity: int,
    r: np.ndarray,
    alpha: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    gamma: np.ndarray,
    table: np.ndarray,
    ux: np.ndarray,
    uT: np.ndarray,
    codes: np.ndarray,
    t_x: np.ndarray,
    m: np.ndarray,
    margin: np.ndarray,
    out: np.ndarray,
    alive_out: np.ndarray,
    with_alive: bool,
) -> None:
    """The loop of :func:`clv_block`; with ``with_alive`` it also writes P_alive into
    ``alive_out`` (computed anyway), sparing a second pass for P(alive)."""
    nd = r.shape[0]
    nk = ux.shape[0]
    nb = codes.shape[0]
    for d in prange(nd):
        rd = r[d]
        ad = alpha[d]
        lc = np.empty(nk)  # ln a - ln(b+x-1), the draw-and-key part of the log odds of death
        la = math.log(a[d])
        for k in range(nk):
            xk = ux[k]
            lc[k] = la - math.log(b[d] + xk - 1.0) if xk > 0.0 else 0.0
        for i in range(nb):
            k = codes[i]
            xk = ux[k]
            if quantity == SPEND:
                out[d, i] = margin[i] * gg_expected_spend_one(p[d], q[d], gamma[d], xk, m[i])
                continue
            pdead = 0.0
            if xk > 0.0:
                tx = t_x[i]
                u = lc[k] + (rd + xk) * log1p_fast((uT[k] - tx) / (ad + tx))
                val = 1.0 / (1.0 + math.exp(u))  # exp(u) = inf gives 0, the limit
                if quantity == PMF or quantity == LOST:
                    pdead = 1.0 / (1.0 + math.exp(-u))  # not 1 - val: no cancellation
            else:
                val = 1.0
            if with_alive:
                alive_out[d, i] = val
            out[d, i] = _from_alive(quantity, val, pdead, table, d, k, p[d], q[d], gamma[d], xk, m[i], margin[i])


@njit(cache=True, fastmath=False, error_model="numpy")
def clv_block(
    quantity: int,
    r: np.ndarray,
    alpha: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    gamma: np.ndarray,
    table: np.ndarray,
    ux: np.ndarray,
    uT: np.ndarray,
    codes: np.ndarray,
    t_x: np.ndarray,
    m: np.ndarray,
    margin: np.ndarray,
    out: np.ndarray,
) -> None:
    """Fill ``out[d, i]`` with the quantity for posterior draw d and customer i of a block.

    ``P_alive · table[d, code_i]`` (times ``margin_i · E[Z | x_i, m_i]`` for ``CLV``), with
    P_alive = 1/(1 + [x>0] a/(b+x-1) ((α+T)/(α+t_x))^(r+x)) (Fader, Hardie & Lee 2005,
    Marketing Science 24(2); note 021) and the Gamma-Gamma expected spend
    ``p (γ + x m)/(p x + q - 1)`` (Fader, Hardie & Lee 2005, JMR 42(4), eq. 5). The terms
    of P_alive that depend on the draw and the key only, ``ln a - ln(b+x-1)`` and ``r+x``,
    are computed once per (draw, key).

    Parameters
    ----------
    quantity : int
        ``P_ALIVE``, ``PURCHASES``, ``DISCOUNTED`` or ``CLV``.
    r, alpha, a, b, p, q, gamma : numpy.ndarray
        Parameters per posterior draw (length D; p, q, gamma are read for ``CLV`` only).
    table : numpy.ndarray
        ``clv_factor_table(quantity, r, alpha, a, b, ux, uT, udelta, horizon)`` (not read for
        ``P_ALIVE``).
    ux, uT : numpy.ndarray
        Keys' frequency and age.
    codes : numpy.ndarray of int64
        Key of each customer of the block.
    t_x, m, margin : numpy.ndarray
        Recency, mean repeat spend and margin per customer of the block (m, margin are read
        for ``CLV`` only).
    out : numpy.ndarray
        (D, block) output. Parallel over draws: identical for any thread count.
    """
    _fill(quantity, r, alpha, a, b, p, q, gamma, table, ux, uT, codes, t_x, m, margin, out, out, False)


@njit(cache=True, fastmath=False, error_model="numpy")
def clv_block_with_alive(
    quantity: int,
    r: np.ndarray,
    alpha: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    gamma: np.ndarray,
    table: np.ndarray,
    ux: np.ndarray,
    uT: np.ndarray,
    codes: np.ndarray,
    t_x: np.ndarray,
    m: np.ndarray,
    margin: np.ndarray,
    out: np.ndarray,
    alive_out: np.ndarray,
) -> None:
    """:func:`clv_block` that also fills ``alive_out[d, i]`` with P(alive) (bit-identical to
    ``clv_block(P_ALIVE, ...)``) in the same pass: one log and one exp per element fewer
    when both a quantity and P(alive) are wanted. Not for ``SPEND`` (no P(alive) computed)."""
    if quantity == SPEND:
        raise ValueError("SPEND does not compute P(alive)")
    _fill(quantity, r, alpha, a, b, p, q, gamma, table, ux, uT, codes, t_x, m, margin, out, alive_out, True)


# --------------------------------------------------------------------------------------
# Any family: direct tables and a fill through the family's P(alive) core
# --------------------------------------------------------------------------------------

# Rebound per family by clvbayes.families.compiled (clvbayes.kernels.build.rebuild).
_alive_factor_one = alive_factor_one
_p_alive_one = p_alive_one


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def family_factor_table(
    quantity: int,
    p0: np.ndarray,
    p1: np.ndarray,
    p2: np.ndarray,
    p3: np.ndarray,
    ux: np.ndarray,
    uT: np.ndarray,
    udelta: np.ndarray,
    horizon: float,
) -> np.ndarray:
    """F(θ_d; x_k, T_k, δ_k) = ``alive_factor_one(quantity, θ_d, x_k, T_k, δ_k, horizon)`` for
    every draw d and key k, evaluated key by key (the family-generic form of
    :func:`clv_factor_table`). Shape (D, keys); (D, 0) for ``P_ALIVE`` and ``SPEND``.
    Parallel over draws: identical for any thread count."""
    nd = p0.shape[0]
    if quantity == P_ALIVE or quantity == SPEND:
        return np.empty((nd, 0))
    nk = ux.shape[0]
    out = np.empty((nd, nk))
    for d in prange(nd):
        for k in range(nk):
            out[d, k] = _alive_factor_one(quantity, p0[d], p1[d], p2[d], p3[d], ux[k], uT[k], udelta[k], horizon)
    return out


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def family_fill(
    quantity: int,
    p0: np.ndarray,
    p1: np.ndarray,
    p2: np.ndarray,
    p3: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    gamma: np.ndarray,
    table: np.ndarray,
    ux: np.ndarray,
    uT: np.ndarray,
    codes: np.ndarray,
    t_x: np.ndarray,
    m: np.ndarray,
    margin: np.ndarray,
    out: np.ndarray,
    alive_out: np.ndarray,
    with_alive: bool,
) -> None:
    """:func:`clv_block` (``with_alive`` False) or :func:`clv_block_with_alive` for any
    family: ``P_alive`` from the family's ``p_alive_one`` core, then the same algebra."""
    nd = p0.shape[0]
    nb = codes.shape[0]
    for d in prange(nd):
        for i in range(nb):
            k = codes[i]
            xk = ux[k]
            if quantity == SPEND:
                out[d, i] = margin[i] * gg_expected_spend_one(p[d], q[d], gamma[d], xk, m[i])
                continue
            val = _p_alive_one(p0[d], p1[d], p2[d], p3[d], xk, t_x[i], uT[k])
            pdead = 1.0 - val
            if with_alive:
                alive_out[d, i] = val
            out[d, i] = _from_alive(quantity, val, pdead, table, d, k, p[d], q[d], gamma[d], xk, m[i], margin[i])


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def family_fill_rows(
    quantity: int,
    p0: np.ndarray,
    p1: np.ndarray,
    p2: np.ndarray,
    p3: np.ndarray,
    pcell: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    gamma: np.ndarray,
    scell: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    m: np.ndarray,
    margin: np.ndarray,
    delta: np.ndarray,
    horizon: float,
    out: np.ndarray,
    alive_out: np.ndarray,
    with_alive: bool,
) -> None:
    """:func:`family_fill` when every customer has parameters of its own (covariates): no
    tables, the family's scalar cores at each customer's cell parameters.

    ``out[d, i] = P_alive(θ_{c_i, d}; x_i, t_x,i, T_i) · F(θ_{c_i, d}; x_i, T_i, δ_i)``
    (:func:`alive_factor_one` for BG/NBD, the family's core otherwise), times
    ``margin_i · E[Z | x_i, m_i]`` at the spend cell's (p, q, γ) for ``CLV`` (FHL 2005, JMR
    42(4), eq. 5); the algebra of :func:`_from_alive`.

    Parameters
    ----------
    quantity : int
        A quantity code (module docstring).
    p0, p1, p2, p3 : numpy.ndarray
        The family's parameters per purchase cell and draw, shape (cells, D).
    pcell : numpy.ndarray of int64
        Purchase cell of each customer of the block.
    p, q, gamma : numpy.ndarray
        Gamma-Gamma parameters per spend cell and draw, shape (spend cells, D).
    scell : numpy.ndarray of int64
        Spend cell of each customer of the block.
    x, t_x, T, m, margin, delta : numpy.ndarray
        Per customer of the block.
    horizon : float
        Prediction horizon (>= 0, may be inf).
    out, alive_out : numpy.ndarray
        (D, block) outputs; ``alive_out`` gets P_alive when ``with_alive``.

    Parallel over customers, each element written by one thread: identical for any thread
    count.
    """
    nd = out.shape[0]
    nb = out.shape[1]
    for i in prange(nb):
        c = pcell[i]
        s = scell[i]
        xi = x[i]
        for d in range(nd):
            if quantity == SPEND:
                out[d, i] = margin[i] * gg_expected_spend_one(p[s, d], q[s, d], gamma[s, d], xi, m[i])
                continue
            th0 = p0[c, d]
            th1 = p1[c, d]
            th2 = p2[c, d]
            th3 = p3[c, d]
            val = _p_alive_one(th0, th1, th2, th3, xi, t_x[i], T[i])
            if with_alive:
                alive_out[d, i] = val
            f = 1.0
            if quantity != P_ALIVE:
                f = _alive_factor_one(quantity, th0, th1, th2, th3, xi, T[i], delta[i], horizon)
            out[d, i] = _combine(quantity, val, 1.0 - val, f, p[s, d], q[s, d], gamma[s, d], xi, m[i], margin[i])


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def bgnbd_fill_rows_alpha(
    quantity: int,
    r: np.ndarray,
    alpha: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    pcell: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    gamma: np.ndarray,
    scell: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    m: np.ndarray,
    margin: np.ndarray,
    delta: np.ndarray,
    horizon: float,
    order: np.ndarray,
    starts: np.ndarray,
    out: np.ndarray,
    alive_out: np.ndarray,
    with_alive: bool,
) -> None:
    """:func:`family_fill_rows` for BG/NBD when only α differs between cells (covariates on
    the purchase side): F depends on the customer through (x, δ) and α_i + T_i only, so per
    draw and group of equal (x, δ) it is the Chebyshev interpolant in ln(α_i + T_i) of
    :func:`clv_factor_table` (the same acceptance test, else direct evaluation).

    Parameters
    ----------
    r, a, b : numpy.ndarray
        Per draw (length D), shared by every cell.
    alpha : numpy.ndarray
        Per purchase cell and draw, shape (cells, D).
    order, starts : numpy.ndarray of int64
        The block's customers grouped by equal (x, δ) (:func:`_key_groups` on x, T, δ).
    Others
        As :func:`family_fill_rows`.

    Parallel over draws, each element written by one thread: identical for any thread count.
    """
    nd = out.shape[0]
    nb = out.shape[1]
    ng = starts.shape[0] - 1
    for d in prange(nd):
        v = np.empty(_CHEB_NMAX + 1)
        w = np.empty(_CHEB_NMAX + 1)
        c = np.empty(_CHEB_NMAX + 1)
        ua = np.empty(nb)  # α_i + T_i: the "age" the factor depends on
        f = np.empty(nb)
        keys = np.empty(nb, dtype=np.int64)
        for i in range(nb):
            ua[i] = alpha[pcell[i], d] + T[i]
        if quantity != P_ALIVE and quantity != SPEND:
            for g in range(ng):
                n_g = starts[g + 1] - starts[g]
                lo = 0
                hi = 0
                for j in range(n_g):
                    keys[j] = order[starts[g] + j]
                    if ua[keys[j]] < ua[keys[lo]]:
                        lo = j
                    if ua[keys[j]] > ua[keys[hi]]:
                        hi = j
                # _fill_group reads the range from the first and last keys: put min and max there
                k_lo, k_hi = keys[lo], keys[hi]
                keys[lo] = keys[0]
                keys[0] = k_lo
                if hi == 0:
                    hi = lo
                keys[hi] = keys[n_g - 1]
                keys[n_g - 1] = k_hi
                k0 = keys[0]
                _fill_group(quantity, r[d], 0.0, a[d], b[d], x[k0], delta[k0], horizon, ua, keys[:n_g], f,
                            v, w, c)
        for i in range(nb):
            s = scell[i]
            if quantity == SPEND:
                out[d, i] = margin[i] * gg_expected_spend_one(p[s, d], q[s, d], gamma[s, d], x[i], m[i])
                continue
            val = p_alive_one(r[d], alpha[pcell[i], d], a[d], b[d], x[i], t_x[i], T[i])
            if with_alive:
                alive_out[d, i] = val
            fi = f[i] if quantity != P_ALIVE else 1.0
            out[d, i] = _combine(quantity, val, 1.0 - val, fi, p[s, d], q[s, d], gamma[s, d], x[i], m[i], margin[i])


# --------------------------------------------------------------------------------------
# Streaming driver
# --------------------------------------------------------------------------------------


@njit(cache=True)
def _uses_spend(quantity: int) -> bool:
    """Whether a quantity reads the Gamma-Gamma parameters, m and margin."""
    return quantity == CLV or quantity == LOST or quantity == SPEND


@njit(cache=True, fastmath=False, error_model="numpy")
def clv_stream(
    quantity: int,
    r: np.ndarray,
    alpha: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    gamma: np.ndarray,
    codes: np.ndarray,
    ux: np.ndarray,
    uT: np.ndarray,
    udelta: np.ndarray,
    t_x: np.ndarray,
    m: np.ndarray,
    margin: np.ndarray,
    segments: np.ndarray,
    n_segments: int,
    horizon: float,
    probs: np.ndarray,
    hdi_prob: float,
    block_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-customer posterior summaries and per-draw segment totals of a quantity, in blocks.

    Builds the factor table once (:func:`clv_factor_table`), then for each block of
    ``block_size`` customers fills the (D, block) matrix (:func:`clv_block`) and reduces it
    (:func:`clv_summarise`). Memory: O(D · (block_size + keys + n_segments)).

    Parameters
    ----------
    quantity : int
        ``P_ALIVE``, ``PURCHASES``, ``DISCOUNTED`` or ``CLV``.
    r, alpha, a, b, p, q, gamma : numpy.ndarray
        Parameters per posterior draw (length D).
    codes : numpy.ndarray of int64
        Key of each customer (:func:`unique_keys`).
    ux, uT, udelta : numpy.ndarray
        The keys.
    t_x, m, margin : numpy.ndarray
        Recency, mean repeat spend and margin per customer.
    segments : numpy.ndarray of int64
        Segment of each customer, in [0, n_segments).
    n_segments : int
        Number of segments.
    horizon : float
        Prediction horizon (>= 0, may be inf: then ``PURCHASES`` is the expected number of
        all future purchases, finite for a > 1 only, and ``DISCOUNTED``/``CLV`` use the DERT).
    probs : numpy.ndarray
        Quantile levels.
    hdi_prob : float
        HDI mass in (0, 1).
    block_size : int
        Customers per block (> 0).

    Returns
    -------
    mean, sd : numpy.ndarray
        Per customer, shape (n,).
    quant : numpy.ndarray
        Shape (n, len(probs)).
    hdi : numpy.ndarray
        Shape (n, 2).
    seg_tot : numpy.ndarray
        Shape (n_segments, D): per draw, the sum of the quantity over each segment.

    Raises
    ------
    ValueError
        For inconsistent lengths, codes or segments out of range, a non-positive block size
        or an HDI mass outside (0, 1).
    """
    nd = r.shape[0]
    n = codes.shape[0]
    nk = ux.shape[0]
    if (
        alpha.shape[0] != nd
        or a.shape[0] != nd
        or b.shape[0] != nd
        or (_uses_spend(quantity) and (p.shape[0] != nd or q.shape[0] != nd or gamma.shape[0] != nd))
    ):
        raise ValueError("parameter arrays must all have one entry per draw")
    if uT.shape[0] != nk or udelta.shape[0] != nk:
        raise ValueError("ux, uT and udelta must have the same length")
    if t_x.shape[0] != n or segments.shape[0] != n:
        raise ValueError("t_x and segments must have one entry per customer")
    if _uses_spend(quantity) and (m.shape[0] != n or margin.shape[0] != n):
        raise ValueError("m and margin must have one entry per customer")
    if not (block_size > 0) or not (0.0 < hdi_prob < 1.0) or nd < 1:
        raise ValueError("block_size must be > 0, hdi_prob in (0, 1) and draws non-empty")
    for i in range(n):
        if codes[i] < 0 or codes[i] >= nk:
            raise ValueError("codes out of range")
        if segments[i] < 0 or segments[i] >= n_segments:
            raise ValueError("segments out of range")

    table = clv_factor_table(quantity, r, alpha, a, b, ux, uT, udelta, horizon)
    nq = probs.shape[0]
    mean = np.empty(n)
    sd = np.empty(n)
    quant = np.empty((n, nq))
    hdi = np.empty((n, 2))
    seg_tot = np.zeros((n_segments, nd))
    bs = min(block_size, max(n, 1))
    mat = np.empty((nd, bs))
    for s0 in range(0, n, bs):
        s1 = min(n, s0 + bs)
        sub = mat[:, : s1 - s0]
        clv_block(
            quantity, r, alpha, a, b, p, q, gamma, table, ux, uT, codes[s0:s1], t_x[s0:s1],
            m[s0:s1] if _uses_spend(quantity) else m, margin[s0:s1] if _uses_spend(quantity) else margin,
            sub,
        )
        clv_summarise(
            sub, probs, hdi_prob, segments[s0:s1], mean[s0:s1], sd[s0:s1], quant[s0:s1],
            hdi[s0:s1], seg_tot,
        )
    return mean, sd, quant, hdi, seg_tot
