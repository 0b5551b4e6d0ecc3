"""One streamed pass over blocks of customers for several quantities at once.

For every requested quantity the factor table is built once per (draw, unique key)
(:func:`clvbayes.kernels.clv.clv_factor_table`); then each block of customers is filled
(:func:`~clvbayes.kernels.clv.clv_block`, a (draws x block) matrix) and reduced
(:func:`~clvbayes.kernels.clv.clv_summarise`: per-customer mean, sd, quantiles, HDI and
per-draw segment totals) before the next block overwrites the matrix. Memory is
O(draws x (block + keys + segments)) plus the per-customer summaries, whatever the number
of customers; the full (draws x customers) matrix is kept only when asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clvbayes.families import get_family
from clvbayes.families.compiled import drivers_for
from clvbayes.kernels import clv as K
from clvbayes.value.customers import CustomerArrays
from clvbayes.value.draws import ParameterDraws

__all__ = ["QuantitySpec", "StreamOutput", "stream", "default_block_size"]

# Bytes of the per-block matrix the default block size aims at: large enough to amortise
# the parallel loops, small enough to stay in the last-level caches' neighbourhood.
_BLOCK_BYTES = 32 * 2**20
#: Quantities with discounting (their factor tables depend on each customer's δ).
DISCOUNTED_CODES = (K.DISCOUNTED, K.CLV, K.LOST)
# Quantities of the form P_alive x (...): their block fill can also return P_alive.
_TIMES_ALIVE = (K.CLV, K.PURCHASES, K.DISCOUNTED, K.DROPOUT)


@dataclass(frozen=True)
class QuantitySpec:
    """One quantity of a pass: kernel code (:mod:`clvbayes.kernels.clv`) and horizon."""

    name: str
    code: int
    horizon: float


@dataclass
class StreamOutput:
    """Raw results of one quantity: per-customer summaries, per-draw segment totals and,
    when kept, the (draws x customers) matrix."""

    mean: np.ndarray
    sd: np.ndarray
    quantiles: np.ndarray
    hdi: np.ndarray
    segment_totals: np.ndarray
    full: np.ndarray | None


def _summarise(o: StreamOutput, sub: np.ndarray, probs: np.ndarray, hdi_prob: float, cust: CustomerArrays,
               sl: slice) -> None:
    K.clv_summarise(
        sub, probs, hdi_prob, cust.segments[sl], o.mean[sl], o.sd[sl], o.quantiles[sl], o.hdi[sl], o.segment_totals
    )


def default_block_size(n_draws: int) -> int:
    """Customers per block: a (draws x block) float64 matrix of about 32 MiB."""
    return max(256, _BLOCK_BYTES // (8 * max(n_draws, 1)))


def stream(
    draws: ParameterDraws,
    cust: CustomerArrays,
    specs: Sequence[QuantitySpec],
    *,
    probs: np.ndarray,
    hdi_prob: float,
    block_size: int | None = None,
    keep_draws: bool = False,
    table_cache: dict | None = None,
) -> dict[str, StreamOutput]:
    """Summaries of every quantity in ``specs`` in one pass over the customers.

    Parameters
    ----------
    draws
        Parameter draws (BG/NBD, plus Gamma-Gamma for quantities with spend).
    cust
        Customer arrays (:func:`clvbayes.value.customers.customer_arrays`).
    specs
        Quantities to compute.
    probs
        Quantile levels.
    hdi_prob
        HDI mass.
    block_size
        Customers per block (default :func:`default_block_size`).
    keep_draws
        Also return each full (draws x customers) matrix.
    table_cache
        A dict that keeps the factor tables by (factor, horizon) for later passes over the
        same draws and customers (e.g. re-grouped totals); filled when empty. The tables
        depend on the draws and on the customers' (x, T, δ), not on segments.

    Returns
    -------
    dict[str, StreamOutput]
    """
    nd, n = draws.n, cust.n
    # The purchase family's kernels (BG/NBD's tabulated ones for BG/NBD); spend-only passes
    # never read the purchase parameters.
    family = get_family(draws.family or "bgnbd")
    drv = drivers_for(family)
    have = all(k in draws.values for k in family.param_names)
    theta = tuple(draws[k] for k in family.param_names) if have else (np.ones(nd),) * 4
    needs_spend = any(s.code in (K.CLV, K.LOST, K.SPEND) for s in specs)
    if needs_spend:
        p, q, g = (draws[k] for k in ("p", "q", "gamma"))
    else:
        p = q = g = np.ones(nd)
    keys = {}
    tables = {}
    cache = {} if table_cache is None else table_cache
    for s in specs:
        with_delta = s.code in DISCOUNTED_CODES
        if with_delta not in keys:
            keys[with_delta] = K.unique_keys(cust.x, cust.T, cust.delta if with_delta else 0.0)
        _, ux, uT, ud = keys[with_delta]
        # CLV, lost value and discounted purchases share one factor: build each table once.
        kind = K.DISCOUNTED if with_delta else s.code
        key = (kind, float(s.horizon))
        if key not in cache:
            cache[key] = drv.factor_table(kind, *theta, ux, uT, ud, float(s.horizon))
        tables[s.name] = cache[key]
    probs = np.ascontiguousarray(probs, dtype=np.float64)
    n_seg = len(cust.segment_labels)
    out = {
        s.name: StreamOutput(
            mean=np.empty(n), sd=np.empty(n), quantiles=np.empty((n, probs.size)), hdi=np.empty((n, 2)),
            segment_totals=np.zeros((n_seg, nd)), full=np.empty((nd, n)) if keep_draws else None,
        )
        for s in specs
    }
    bs = block_size or default_block_size(nd)
    bs = min(bs, max(n, 1))
    # P(alive) comes free with a quantity that multiplies it: fill both in one pass.
    alive = next((s for s in specs if s.code == K.P_ALIVE), None)
    partner = next((s for s in specs if s.code in _TIMES_ALIVE), None) if alive is not None else None
    mats = {s.name: np.empty((nd, bs)) for s in (alive, partner) if s is not None and not keep_draws}
    mat = np.empty((nd, bs)) if not keep_draws else None
    for s0 in range(0, n, bs):
        s1 = min(n, s0 + bs)
        sl = slice(s0, s1)
        subs = {
            s.name: out[s.name].full[:, sl] if keep_draws else mats.get(s.name, mat)[:, : s1 - s0] for s in specs
        }
        for s in specs:
            codes, ux, uT, _ = keys[s.code in DISCOUNTED_CODES]
            args = (*theta, p, q, g, tables[s.name], ux, uT, codes[sl], cust.t_x[sl], cust.m[sl], cust.margin[sl])
            if s is partner:
                drv.fill(s.code, *args, subs[s.name], subs[alive.name], True)
            elif s is not alive or partner is None:
                out_ = subs[s.name]
                drv.fill(s.code, *args, out_, out_, False)
            if s is alive and partner is not None:
                continue  # summarised after its partner filled it
            _summarise(out[s.name], subs[s.name], probs, hdi_prob, cust, sl)
            if s is partner:
                _summarise(out[alive.name], subs[alive.name], probs, hdi_prob, cust, sl)
    if nd == 1:  # a point estimate: no spread
        for o in out.values():
            o.sd[:] = math.nan
    return out
