"""PSIS-LOO of a model whose parameters depend on customer covariates.

A model with covariates (:class:`~clvbayes.CovariatePurchaseModel`, or any model with
``cell_draws``) gives the customers of one *cell* (the same covariate row) the same
parameters. Two customers with the same cell and the same history ``(x, t_x, T)`` have the
same pointwise log-likelihood under every draw, so PSIS-LOO over the distinct
``(cell, x, t_x, T)`` rows weighted by their customer counts is exact (as in
:mod:`clvbayes.comparison.loo`, Vehtari, Gelman & Gabry 2017):

- few cells (categorical covariates): the rows of each cell are run through the family's own
  log-likelihood kernel with that cell's draws (:func:`clvbayes.comparison.loo._loo_terms`,
  tabulated where the family has it);
- many cells (continuous covariates, up to one per customer): one threaded Numba pass over
  the rows, each evaluating the family's scalar ``loglik_one`` at its cell's draws and running
  PSIS on them at once (:func:`_loo_cells_fused`), in memory O(threads x draws).

``r_eff`` is ArviZ's rule on the whole posterior (every variable: base parameters and
coefficients; :func:`clvbayes.comparison.loo.relative_efficiency` with ``param_names=None``),
as :func:`arviz.loo` on the model's InferenceData computes it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.comparison.psis import loo_row, tail_length
from clvbayes.families import get_family
from clvbayes.kernels import bgnbd as _bg
from clvbayes.kernels import build

__all__ = ["covariate_loo", "MAX_LOOP_CELLS"]

#: Most cells evaluated cell by cell with the family's vectorised kernel; more take the
#: per-row pass.
MAX_LOOP_CELLS = 256
# Rows per task of the per-row pass (each task holds S log-likelihoods per row of it).
_ROWS_PER_TASK = 16

_loglik_one = _bg.bgnbd_loglik_one  # rebound per family (clvbayes.kernels.build.rebuild)


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _loo_cells_fused(theta: np.ndarray, cell: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                     m_tail: int, elpd: np.ndarray, lppd: np.ndarray, k: np.ndarray, finite: np.ndarray) -> None:
    """PSIS-LOO terms of every row ``i`` with the draws ``theta[cell[i]]`` (shape (C, S, 4)).

    Rows are independent and each is computed by one thread in a fixed order: the results do
    not depend on the thread count."""
    n = x.size
    S = theta.shape[1]
    for task in prange((n + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK):
        ll = np.empty(S)
        work = np.empty(2 * S)
        smooth = np.empty(m_tail + 1)
        for i in range(task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)):
            c = cell[i]
            lo, hi, bad = math.inf, -math.inf, 0.0
            for s in range(S):
                v = _loglik_one(theta[c, s, 0], theta[c, s, 1], theta[c, s, 2], theta[c, s, 3], x[i], t_x[i], T[i])
                ll[s] = v
                lo = min(lo, v)
                hi = max(hi, v)
                bad += 0.0 * v  # NaN once any v is NaN or infinite
            finite[i] = bad == 0.0
            if finite[i]:
                elpd[i], lppd[i], k[i] = loo_row(ll, m_tail, work, smooth, (lo, hi))


_FUSED: dict = {}


def _fused_for(family) -> object:
    fam = get_family(family)
    if fam.name not in _FUSED:
        core = fam.cores["loglik_one"]
        tag = f"cells_{fam.name}_{build.source_tag([core], '1')}"
        _FUSED[fam.name] = build.rebuild(_loo_cells_fused, replace={"_loglik_one": core}, tag=tag)
    return _FUSED[fam.name]


def covariate_loo(model, *, r_eff: float | None = None, max_loop_cells: int = MAX_LOOP_CELLS,
                  block_bytes: int | None = None, warn: bool = True):
    """PSIS-LOO of a fitted model with covariates over all its customers (module docstring).

    Parameters
    ----------
    model
        A :class:`~clvbayes.CovariatePurchaseModel` fitted with ``fit()`` (NUTS).
    r_eff
        Relative efficiency (default: ArviZ's rule on the model's whole posterior).
    max_loop_cells
        Up to this many cells, cell by cell with the family's vectorised kernel; beyond, the
        per-row pass. Both give the same terms (tested).
    block_bytes, warn
        As :func:`clvbayes.weighted_loo`.

    Returns
    -------
    clvbayes.comparison.loo.WeightedLoo
        Over the distinct ``(cell, x, t_x, T)`` rows; ``rows`` holds their ``(x, t_x, T)``,
        ``inverse`` each customer's distinct row.
    """
    from clvbayes.comparison.loo import BLOCK_BYTES, _loo_terms, finish_loo, relative_efficiency
    from clvbayes.comparison.pointwise import resolve_loglik_rows

    idata = getattr(model, "idata_", None)
    if idata is None or "posterior" not in idata.groups():
        raise ValueError(
            f"This {type(model).__name__} has no posterior: PSIS-LOO needs posterior draws (fit() with "
            "method='nuts'); a MAP fit has none."
        )
    fam = model.family
    cd = model.cell_draws(None)
    S = cd.n
    if S < 2:
        raise ValueError(f"PSIS-LOO needs at least 2 posterior draws, got {S}.")
    r_eff = relative_efficiency(idata.posterior) if r_eff is None else float(r_eff)
    if not (np.isfinite(r_eff) and r_eff > 0):
        raise ValueError(f"r_eff must be positive and finite, got {r_eff!r}.")
    stacked = np.column_stack([cd.cell.astype(np.float64), model.x, model.t_x, model.T])
    rows, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    cell = rows[:, 0].astype(np.int64)
    x, t_x, T = (np.ascontiguousarray(rows[:, j]) for j in (1, 2, 3))
    theta = np.ascontiguousarray(np.stack([cd.values[p] for p in fam.param_names], axis=-1))  # (C, S, 4)
    m_tail = tail_length(S, r_eff)
    n = x.size
    elpd, lppd, k = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    finite = np.zeros(n, dtype=np.bool_)
    if cd.n_cells <= max_loop_cells:
        kernel = resolve_loglik_rows(fam)
        for c in np.unique(cell):
            sel = np.flatnonzero(cell == c)
            terms = _loo_terms(kernel, np.ascontiguousarray(theta[c]), x[sel], t_x[sel], T[sel], m_tail,
                               BLOCK_BYTES if block_bytes is None else int(block_bytes))
            for out, v in zip((elpd, lppd, k, finite), terms, strict=True):
                out[sel] = v
    else:
        _fused_for(fam)(theta, cell, x, t_x, T, m_tail, elpd, lppd, k, finite)
    return finish_loo(elpd, lppd, k, finite, counts.astype(np.float64), (x, t_x, T), S, r_eff, warn,
                      {"inverse": inverse, "customer_index": model.data.index, "row_weights": None})
