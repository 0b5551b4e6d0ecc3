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
from clvbayes.value.customers import CustomerArrays, subset
from clvbayes.value.draws import JointCellDraws, ParameterDraws, block_draws, shared_draws

__all__ = ["QuantitySpec", "StreamOutput", "stream", "stream_cells", "default_block_size", "MAX_CELL_PASSES"]

# Bytes of the per-block matrix the default block size aims at: large enough to amortise
# the parallel loops, small enough to stay in the last-level caches' neighbourhood.
_BLOCK_BYTES = 32 * 2**20
#: Quantities with discounting (their factor tables depend on each customer's δ).
DISCOUNTED_CODES = (K.DISCOUNTED, K.CLV, K.LOST)
#: Quantities with spend (they read the Gamma-Gamma parameters, m and margin).
SPEND_CODES = (K.CLV, K.LOST, K.SPEND)
#: Most combined cells valued by one tabulated pass per cell (:func:`stream_cells`).
MAX_CELL_PASSES = 256
#: Rows path, BG/NBD with covariates on α only: interpolate the factor in ln(α + T) per draw.
ROWS_INTERPOLATE = True
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
    draws: ParameterDraws | JointCellDraws,
    cust: CustomerArrays,
    specs: Sequence[QuantitySpec],
    *,
    probs: np.ndarray,
    hdi_prob: float,
    block_size: int | None = None,
    keep_draws: bool = False,
    table_cache: dict | None = None,
    cell_path: str = "auto",
) -> dict[str, StreamOutput]:
    """Summaries of every quantity in ``specs`` in one pass over the customers.

    Parameters
    ----------
    draws
        Parameter draws (BG/NBD, plus Gamma-Gamma for quantities with spend), or per-cell
        draws of models with covariates (:class:`~clvbayes.value.draws.JointCellDraws`; see
        :func:`stream_cells`).
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
    cell_path
        For per-cell draws: ``"auto"``, ``"tables"`` or ``"rows"`` (:func:`stream_cells`).

    Returns
    -------
    dict[str, StreamOutput]
    """
    if isinstance(draws, JointCellDraws):
        return stream_cells(draws, cust, specs, probs=probs, hdi_prob=hdi_prob, block_size=block_size,
                            keep_draws=keep_draws, table_cache=table_cache, path=cell_path)
    nd = draws.n
    # The purchase family's kernels (BG/NBD's tabulated ones for BG/NBD); spend-only passes
    # never read the purchase parameters.
    family = get_family(draws.family or "bgnbd")
    drv = drivers_for(family)
    have = all(k in draws.values for k in family.param_names)
    theta = tuple(draws[k] for k in family.param_names) if have else (np.ones(nd),) * 4
    needs_spend = any(s.code in SPEND_CODES for s in specs)
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

    def fill(s: QuantitySpec, sl: slice, out_: np.ndarray, alive_out: np.ndarray, with_alive: bool) -> None:
        codes, ux, uT, _ = keys[s.code in DISCOUNTED_CODES]
        drv.fill(s.code, *theta, p, q, g, tables[s.name], ux, uT, codes[sl], cust.t_x[sl], cust.m[sl],
                 cust.margin[sl], out_, alive_out, with_alive)

    return _blocks(fill, nd, cust, specs, probs, hdi_prob, block_size, keep_draws)


def _outputs(specs: Sequence[QuantitySpec], n: int, nd: int, n_prob: int, n_seg: int,
             keep_draws: bool) -> dict[str, StreamOutput]:
    return {
        s.name: StreamOutput(
            mean=np.empty(n), sd=np.empty(n), quantiles=np.empty((n, n_prob)), hdi=np.empty((n, 2)),
            segment_totals=np.zeros((n_seg, nd)), full=np.empty((nd, n)) if keep_draws else None,
        )
        for s in specs
    }


def _blocks(fill, nd: int, cust: CustomerArrays, specs: Sequence[QuantitySpec], probs: np.ndarray, hdi_prob: float,
            block_size: int | None, keep_draws: bool) -> dict[str, StreamOutput]:
    """The streamed block loop: ``fill(spec, slice, out, alive_out, with_alive)`` fills a
    (draws x block) matrix, which is summarised before the next block overwrites it."""
    n = cust.n
    probs = np.ascontiguousarray(probs, dtype=np.float64)
    out = _outputs(specs, n, nd, probs.size, len(cust.segment_labels), keep_draws)
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
            if s is partner:
                fill(s, sl, subs[s.name], subs[alive.name], True)
            elif s is not alive or partner is None:
                out_ = subs[s.name]
                fill(s, sl, out_, out_, False)
            if s is alive and partner is not None:
                continue  # summarised after its partner filled it
            _summarise(out[s.name], subs[s.name], probs, hdi_prob, cust, sl)
            if s is partner:
                _summarise(out[alive.name], subs[alive.name], probs, hdi_prob, cust, sl)
    if nd == 1:  # a point estimate: no spread
        for o in out.values():
            o.sd[:] = math.nan
    return out


def stream_cells(
    draws: JointCellDraws,
    cust: CustomerArrays,
    specs: Sequence[QuantitySpec],
    *,
    probs: np.ndarray,
    hdi_prob: float,
    block_size: int | None = None,
    keep_draws: bool = False,
    table_cache: dict | None = None,
    path: str = "auto",
) -> dict[str, StreamOutput]:
    """:func:`stream` for customers whose parameters depend on their cell (covariates).

    Two paths, the same numbers (to the tables' 1e-12 interpolation; tested to 1e-10):

    - ``"tables"`` (auto: at most :data:`MAX_CELL_PASSES` combined cells): the tabulated pass of
      :func:`stream` once per cell on that cell's customers (the family's fast kernels, its
      factor tables built on the cell's keys), the per-customer summaries scattered back to
      the customers' places and the per-draw segment totals added up. One cell is exactly
      :func:`stream` on the cell's draws.
    - ``"rows"`` (auto: more cells; continuous covariates give up to one per customer):
      :func:`clvbayes.kernels.clv.family_fill_rows`, the family's scalar cores at each
      customer's cell parameters, no tables, in blocks of customers (memory O(draws x
      block) beside the draws themselves).
    """
    if path not in ("auto", "tables", "rows"):
        raise ValueError(f"path must be 'auto', 'tables' or 'rows', got {path!r}.")
    if draws.cell.shape[0] != cust.n:
        raise ValueError(f"The cell draws have {draws.cell.shape[0]} customers, the customer arrays {cust.n}.")
    if path == "auto":
        path = "tables" if draws.n_cells <= MAX_CELL_PASSES else "rows"
    if draws.n_cells == 1:
        return stream(draws.for_cell(0), cust, specs, probs=probs, hdi_prob=hdi_prob, block_size=block_size,
                      keep_draws=keep_draws, table_cache=table_cache)
    if path == "rows":
        return _stream_rows(draws, cust, specs, probs, hdi_prob, block_size, keep_draws)
    nd = draws.n
    probs = np.ascontiguousarray(probs, dtype=np.float64)
    out = _outputs(specs, cust.n, nd, probs.size, len(cust.segment_labels), keep_draws)
    cache = {} if table_cache is None else table_cache
    order = np.argsort(draws.cell, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(draws.cell, minlength=draws.n_cells))])
    for c in range(draws.n_cells):
        idx = order[bounds[c]:bounds[c + 1]]
        if idx.size == 0:
            continue
        sub = stream(draws.for_cell(c), subset(cust, idx), specs, probs=probs, hdi_prob=hdi_prob,
                     block_size=block_size, keep_draws=keep_draws, table_cache=cache.setdefault(("cell", c), {}))
        for s in specs:
            o, r = out[s.name], sub[s.name]
            o.mean[idx], o.sd[idx], o.quantiles[idx], o.hdi[idx] = r.mean, r.sd, r.quantiles, r.hdi
            o.segment_totals += r.segment_totals
            if keep_draws:
                o.full[:, idx] = r.full
    return out


def _stream_rows(draws: JointCellDraws, cust: CustomerArrays, specs: Sequence[QuantitySpec], probs: np.ndarray,
                 hdi_prob: float, block_size: int | None, keep_draws: bool) -> dict[str, StreamOutput]:
    """The rows path of :func:`stream_cells`."""
    nd = draws.n
    family = get_family(draws.family or "bgnbd")
    drv = drivers_for(family)
    ones = np.ones((1, nd))
    zeros = np.zeros(cust.n, dtype=np.int64)
    bg, gg = draws.purchase, draws.spend
    pcell = draws.pairs[draws.cell, 0] if bg is not None else zeros
    scell = draws.pairs[draws.cell, 1] if gg is not None else zeros

    # BG/NBD with covariates on α only: F depends on α_i + T_i, so its tables' Chebyshev
    # interpolation in ln(α + T) serves per draw (bgnbd_fill_rows_alpha).
    shared = [k for k in family.param_names if k != "alpha"]
    common = {k: shared_draws(bg.values, k) for k in shared} if bg is not None else {}
    alpha_only = (ROWS_INTERPOLATE and bg is not None and family.name == "bgnbd"
                  and all(v is not None for v in common.values()))

    # Each block's cell parameters are made for its customers only (CellValues hold the link's
    # factors): memory O(draws x block), never O(draws x cells). The specs of a block share them.
    current: dict = {}

    def block(sl: slice) -> dict:
        if current.get("start") != sl.start:
            current.clear()
            current["start"] = sl.start
            for side, cells, names, key in ((bg, pcell, family.param_names, "theta"),
                                            (gg, scell, ("p", "q", "gamma"), "spend")):
                if side is None:
                    current[key], current[key + "_cell"] = (ones,) * len(names), zeros[sl]
                    continue
                current[key], current[key + "_cell"] = block_draws(side.values, names, cells[sl])
        return current

    def fill(s: QuantitySpec, sl: slice, out_: np.ndarray, alive_out: np.ndarray, with_alive: bool) -> None:
        data = (cust.x[sl], cust.t_x[sl], cust.T[sl], cust.m[sl], cust.margin[sl], cust.delta[sl], float(s.horizon))
        b = block(sl)
        if alpha_only:
            groups = K._key_groups(cust.x[sl], cust.T[sl], cust.delta[sl])  # customers of equal (x, δ)
            K.bgnbd_fill_rows_alpha(s.code, common["r"], b["theta"][1], common["a"], common["b"], b["theta_cell"],
                                    *b["spend"], b["spend_cell"], *data, *groups, out_, alive_out, with_alive)
        else:
            drv.fill_rows(s.code, *b["theta"], b["theta_cell"], *b["spend"], b["spend_cell"], *data, out_,
                          alive_out, with_alive)

    return _blocks(fill, nd, cust, specs, probs, hdi_prob, block_size, keep_draws)
