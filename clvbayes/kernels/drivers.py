"""Array drivers over a model family's scalar cores, written once for every family.

Each function here loops (in parallel, in a fixed order) over customers or rows and calls
the scalar cores of :mod:`clvbayes.families._protocol` through the module-level names
``_loglik_one``, ``_loglik_grad_one``, ``_p_alive_one``, ... . Those names are bound to the
BG/NBD cores in this source; :func:`clvbayes.families.compiled.drivers_for` compiles the same
source again for another family with the names rebound to its cores
(:func:`clvbayes.kernels.build.rebuild`), so a new model gets every array kernel without a
line of its own.

Sums over rows are reduced in fixed chunks of :data:`~clvbayes.kernels.special.CHUNK` rows
added in chunk order, so they are bit-identical for any number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels import bgnbd as _bg
from clvbayes.kernels import bgnbd_predict as _bgp
from clvbayes.kernels import predictive as _sim
from clvbayes.kernels.simulate import SIM_BLOCK, block_seed
from clvbayes.kernels.special import CHUNK, PARALLEL_MIN_ROWS, sum_chunks

__all__ = [
    "CORE_NAMES",
    "loglik_rows",
    "loglik_sum",
    "loglik_sum_grad",
    "p_alive",
    "expected_purchases",
    "conditional_expected_purchases",
    "pmf",
    "conditional_pmf",
    "dert",
    "calibration_replicates",
    "calibration_replicates_cells",
    "holdout_replicates",
    "holdout_replicates_cells",
]

# The rebindable names, core name -> global name in this module.
CORE_NAMES = {
    "loglik_one": "_loglik_one",
    "loglik_grad_one": "_loglik_grad_one",
    "p_alive_one": "_p_alive_one",
    "expected_purchases_one": "_expected_purchases_one",
    "pmf_one": "_pmf_one",
    "conditional_expected_purchases_one": "_conditional_expected_purchases_one",
    "conditional_pmf_one": "_conditional_pmf_one",
    "dert_one": "_dert_one",
    "alive_factor_one": "_alive_factor_one",
    "replicate_one": "_replicate_one",
    "holdout_replicate_one": "_holdout_replicate_one",
    # bound in clvbayes.kernels.simulate (the event-by-event simulator)
    "latent_one": "_latent_one",
    "drops_out_one": "_drops_out_one",
}

_loglik_one = _bg.bgnbd_loglik_one
_loglik_grad_one = _bg.bgnbd_loglik_grad_one
_p_alive_one = _bgp.p_alive_one
_expected_purchases_one = _bgp.expected_purchases_one
_pmf_one = _bgp.pmf_one
_conditional_expected_purchases_one = _bgp.conditional_expected_purchases_one
_conditional_pmf_one = _bgp.conditional_pmf_one
_dert_one = _bgp.dert_one
_replicate_one = _sim.bgnbd_replicate_one
_holdout_replicate_one = _sim.bgnbd_holdout_replicate_one
_to_count = _sim._to_count


@njit(cache=True, fastmath=False, error_model="numpy")
def _ok(p0: float, p1: float, p2: float, p3: float) -> bool:
    # False for NaN too
    return p0 > 0.0 and p1 > 0.0 and p2 > 0.0 and p3 > 0.0 and p0 < math.inf and p1 < math.inf and p2 < math.inf and p3 < math.inf


@njit(cache=True, fastmath=False, error_model="numpy")
def _rows_range(p0, p1, p2, p3, x, t_x, T, lo, hi, out):
    for i in range(lo, hi):
        out[i] = _loglik_one(p0, p1, p2, p3, x[i], t_x[i], T[i])


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _rows_par(p0, p1, p2, p3, x, t_x, T, out):
    n = x.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        _rows_range(p0, p1, p2, p3, x, t_x, T, c * CHUNK, min(n, (c + 1) * CHUNK), out)


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_rows(p0: float, p1: float, p2: float, p3: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``ln L_i`` per row (``-inf`` everywhere for parameters outside (0, inf))."""
    n = x.shape[0]
    out = np.empty(n)
    if not _ok(p0, p1, p2, p3):
        out[:] = -math.inf
        return out
    if n >= PARALLEL_MIN_ROWS:
        _rows_par(p0, p1, p2, p3, x, t_x, T, out)
    else:
        _rows_range(p0, p1, p2, p3, x, t_x, T, 0, n, out)
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def _chunk(p0, p1, p2, p3, x, t_x, T, w, c, part):
    lo = c * CHUNK
    hi = min(lo + CHUNK, x.shape[0])
    if part.shape[1] == 1:
        acc = 0.0
        for i in range(lo, hi):
            acc += w[i] * _loglik_one(p0, p1, p2, p3, x[i], t_x[i], T[i])
        part[c, 0] = acc
        return
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for i in range(lo, hi):
        ll, g0, g1, g2, g3 = _loglik_grad_one(p0, p1, p2, p3, x[i], t_x[i], T[i])
        wi = w[i]
        s0 += wi * ll
        s1 += wi * g0
        s2 += wi * g1
        s3 += wi * g2
        s4 += wi * g3
    part[c, 0] = s0
    part[c, 1] = s1
    part[c, 2] = s2
    part[c, 3] = s3
    part[c, 4] = s4


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _chunks_par(p0, p1, p2, p3, x, t_x, T, w, part):
    for c in prange(part.shape[0]):
        _chunk(p0, p1, p2, p3, x, t_x, T, w, c, part)


@njit(cache=True, fastmath=False, error_model="numpy")
def _chunk_sums(p0, p1, p2, p3, x, t_x, T, w, ncol):
    n = x.shape[0]
    part = np.empty(((n + CHUNK - 1) // CHUNK, ncol))
    if n >= PARALLEL_MIN_ROWS:
        _chunks_par(p0, p1, p2, p3, x, t_x, T, w, part)
    else:
        for c in range(part.shape[0]):
            _chunk(p0, p1, p2, p3, x, t_x, T, w, c, part)
    return sum_chunks(part)


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_sum(p0: float, p1: float, p2: float, p3: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
               weights: np.ndarray) -> float:
    """Weighted ``Σ_i w_i ln L_i`` (``-inf`` outside the support; 0 for no rows)."""
    if not _ok(p0, p1, p2, p3):
        return -math.inf
    return _chunk_sums(p0, p1, p2, p3, x, t_x, T, weights, 1)[0]


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_sum_grad(p0: float, p1: float, p2: float, p3: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                    weights: np.ndarray) -> tuple[float, np.ndarray]:
    """Weighted ``Σ_i w_i ln L_i`` and its gradient in the four parameters (natural scale);
    ``(-inf, NaN)`` outside the support."""
    if not _ok(p0, p1, p2, p3):
        return -math.inf, np.full(4, math.nan)
    tot = _chunk_sums(p0, p1, p2, p3, x, t_x, T, weights, 5)
    return tot[0], tot[1:].copy()


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def p_alive(p0: float, p1: float, p2: float, p3: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(alive at T) per customer."""
    n = x.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = _p_alive_one(p0, p1, p2, p3, x[i], t_x[i], T[i])
    return out


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def expected_purchases(p0: float, p1: float, p2: float, p3: float, t: np.ndarray) -> np.ndarray:
    """E[X(t)] of a new customer for each t."""
    n = t.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = _expected_purchases_one(p0, p1, p2, p3, t[i])
    return out


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def conditional_expected_purchases(p0: float, p1: float, p2: float, p3: float, x: np.ndarray, t_x: np.ndarray,
                                   T: np.ndarray, t: float) -> np.ndarray:
    """E[X(T, T+t] | history] per customer."""
    n = x.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = _conditional_expected_purchases_one(p0, p1, p2, p3, x[i], t_x[i], T[i], t)
    return out


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def pmf(p0: float, p1: float, p2: float, p3: float, t: float, n: np.ndarray) -> np.ndarray:
    """P(X(t) = n) of a new customer for each n."""
    m = n.shape[0]
    out = np.empty(m)
    for i in prange(m):
        out[i] = _pmf_one(p0, p1, p2, p3, t, n[i])
    return out


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def conditional_pmf(p0: float, p1: float, p2: float, p3: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                    t: float, n: int) -> np.ndarray:
    """P(X(T, T+t] = n | history) per customer."""
    m = x.shape[0]
    out = np.empty(m)
    for i in prange(m):
        out[i] = _conditional_pmf_one(p0, p1, p2, p3, x[i], t_x[i], T[i], t, n)
    return out


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def dert(p0: float, p1: float, p2: float, p3: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
         delta: np.ndarray) -> np.ndarray:
    """Discounted expected residual transactions per customer at per-customer rates δ."""
    m = x.shape[0]
    out = np.empty(m)
    for i in prange(m):
        out[i] = _dert_one(p0, p1, p2, p3, x[i], t_x[i], T[i], delta[i])
    return out


@njit(cache=True, error_model="numpy", parallel=True)
def calibration_replicates_cells(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, cell: np.ndarray,
                                 T: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, t_x)`` of a new customer over (0, T_i] for every (draw, customer) with
    per-customer parameters: ``p0..p3`` of shape (cells, D), customer i at the draws of its
    cell ``cell[i]``; int32 counts (capped at 2^31 - 1) and float recencies, shape (D, N).
    Blocks of ``SIM_BLOCK`` customers per draw are seeded by ``block_seed(seed, k)``: the
    same output for any thread count."""
    nd = p0.shape[1]
    n = T.shape[0]
    nbc = (n + SIM_BLOCK - 1) // SIM_BLOCK
    x = np.empty((nd, n), dtype=np.int32)
    t_x = np.empty((nd, n))
    for k in prange(nd * nbc):
        d = k // nbc
        lo = (k % nbc) * SIM_BLOCK
        hi = min(n, lo + SIM_BLOCK)
        np.random.seed(block_seed(seed, k))
        for i in range(lo, hi):
            c = cell[i]
            j, last = _replicate_one(p0[c, d], p1[c, d], p2[c, d], p3[c, d], T[i])
            x[d, i] = _to_count(j)
            t_x[d, i] = last
    return x, t_x


@njit(cache=True, error_model="numpy")
def calibration_replicates(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, T: np.ndarray,
                           seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, t_x)`` of a new customer over (0, T_i] for every (draw, customer), shape (D, N);
    :func:`calibration_replicates_cells` with one cell (the same seeds, the same draws)."""
    nd = p0.shape[0]
    one = np.zeros(T.shape[0], dtype=np.int64)
    return calibration_replicates_cells(np.ascontiguousarray(p0).reshape((1, nd)),
                                        np.ascontiguousarray(p1).reshape((1, nd)),
                                        np.ascontiguousarray(p2).reshape((1, nd)),
                                        np.ascontiguousarray(p3).reshape((1, nd)), one, T, seed)


@njit(cache=True, error_model="numpy", parallel=True)
def holdout_replicates_cells(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, cell: np.ndarray,
                             x: np.ndarray, t_x: np.ndarray, T: np.ndarray, t: float, seed: int) -> np.ndarray:
    """Purchases in (T_i, T_i + t] given each history, per (draw, customer) (int32, capped),
    with per-customer parameters: ``p0..p3`` of shape (cells, D), customer i at the draws of
    its cell ``cell[i]``. Blocks of ``SIM_BLOCK`` customers per draw are seeded by
    ``block_seed(seed, k)`` (as :func:`calibration_replicates`): the same output for any
    thread count."""
    nd = p0.shape[1]
    n = T.shape[0]
    nbc = (n + SIM_BLOCK - 1) // SIM_BLOCK
    out = np.empty((nd, n), dtype=np.int32)
    for k in prange(nd * nbc):
        d = k // nbc
        lo = (k % nbc) * SIM_BLOCK
        hi = min(n, lo + SIM_BLOCK)
        np.random.seed(block_seed(seed, k))
        for i in range(lo, hi):
            c = cell[i]
            out[d, i] = _to_count(_holdout_replicate_one(p0[c, d], p1[c, d], p2[c, d], p3[c, d], x[i], t_x[i], T[i],
                                                         t))
    return out


@njit(cache=True, error_model="numpy")
def holdout_replicates(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, x: np.ndarray,
                       t_x: np.ndarray, T: np.ndarray, t: float, seed: int) -> np.ndarray:
    """Purchases in (T_i, T_i + t] given each history, per (draw, customer) (int32, capped);
    seeded per block as :func:`calibration_replicates`: :func:`holdout_replicates_cells` with
    one cell."""
    nd = p0.shape[0]
    one = np.zeros(T.shape[0], dtype=np.int64)
    return holdout_replicates_cells(np.ascontiguousarray(p0).reshape((1, nd)), np.ascontiguousarray(p1).reshape((1, nd)),
                                    np.ascontiguousarray(p2).reshape((1, nd)), np.ascontiguousarray(p3).reshape((1, nd)),
                                    one, x, t_x, T, t, seed)
