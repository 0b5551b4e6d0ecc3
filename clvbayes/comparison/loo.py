"""PSIS-LOO over distinct customer histories weighted by their counts.

Customers with the same history ``(x, t_x, T)`` have the same pointwise log-likelihood for
every posterior draw, hence the same importance ratios, PSIS weights, ``elpd_loo,i`` and
Pareto ``k``. PSIS-LOO (Vehtari, Gelman & Gabry 2017, Statistics and Computing 27,
1413-1432, eqs. 3-10) over all N customers is therefore exactly, with ``w_j`` customers
sharing distinct history ``j``::

    elpd_loo = Σ_j w_j elpd_j
    se       = sqrt(N · Σ_j w_j (elpd_j - elpd_loo/N)^2 / N)     (ArviZ: sqrt(N var(elpd_i)))
    lppd     = Σ_j w_j lppd_j,   p_loo = lppd - elpd_loo          (eqs. 5 and 11)

computed here block by block of distinct rows in one threaded Numba loop
(:func:`_loo_fused`): a thread evaluates the log-likelihood of its block of rows under every
draw and runs PSIS on each row at once, so only one (draws x rows) block of about
``block_bytes`` per thread is ever held, never chains x draws x customers. The cost is
that of ``rows x draws`` log-likelihood evaluations plus, per row, a selection of the
``M + 1`` largest ratios (not a sort of all S), a Pareto fit to M values and one ``exp``
per draw.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

import numba
from numba import njit, prange
from numba.core.registry import CPUDispatcher as Dispatcher

from clvbayes.comparison.pointwise import (
    LoglikRows,
    _as_dataset,
    bind_kernel,
    draws_block,
    loglik_block,
    model_data,
    posterior_draws,
    resolve_loglik_rows,
)
from clvbayes.comparison.psis import loo_row, loo_rows, tail_length
from clvbayes.families import Family, get_family
from clvbayes.families.compiled import prepared_data_for

__all__ = ["WeightedLoo", "weighted_loo", "relative_efficiency", "good_k", "ParetoKWarning"]

#: Default memory of one thread's (draws x rows) block of pointwise log-likelihoods.
BLOCK_BYTES = 16 * 2**20
#: Most rows in one block: beyond, a row's S values are gathered from too far apart.
MAX_BLOCK_ROWS = 512
#: Rows per block for kernels with prepared arrays (evaluated per draw from Python: 4096 rows x
#: 4000 draws is 131 MB).
PREPARED_BLOCK_ROWS = 4096
#: Rows gathered together from a block (8 doubles: one cache line per draw).
_TILE = 8
#: Largest number of customers :meth:`WeightedLoo.to_arviz` expands to.
MAX_POINTWISE = 10_000_000


class ParetoKWarning(UserWarning):
    """Some customers have a Pareto k above the threshold: their PSIS-LOO term is unreliable."""


def good_k(n_samples: int) -> float:
    """Threshold ``min(1 - 1/log10(S), 0.7)`` on the Pareto k (Vehtari et al. 2024, sec. 3.3)."""
    return min(1.0 - 1.0 / math.log10(n_samples), 0.7)


def relative_efficiency(posterior, param_names: tuple[str, ...] | None = None) -> float:
    """``r_eff``: the mean over parameters of the ``"mean"`` ESS, divided by chains x draws;
    1 for a single chain (the rule of :func:`arviz.loo`). ``param_names`` None: every
    variable of the posterior, every component of a vector one (a model with covariates)."""
    import arviz as az

    ds = _as_dataset(posterior) if param_names is None else posterior_draws(posterior, param_names)[0]
    if ds.sizes["chain"] == 1:
        return 1.0
    ess = az.ess(ds, method="mean")
    n = ds.sizes["chain"] * ds.sizes["draw"]
    return float(np.hstack([ess[v].to_numpy().ravel() for v in ess.data_vars]).mean() / n)


@dataclass(frozen=True, repr=False, eq=False)
class WeightedLoo:
    """PSIS-LOO of a model, per distinct customer history and in total.

    Attributes
    ----------
    elpd_loo, se, p_loo, lppd : float
        Totals over all customers (module docstring).
    elpd_i, lppd_i, pareto_k : numpy.ndarray
        Per distinct history: ``elpd_loo,i``, ``lppd_i`` and the Pareto shape ``k``
        (``-inf`` for a history whose log-likelihood is the same for every draw, e.g.
        ``T = 0``: its LOO term is exact).
    weights : numpy.ndarray
        Customers per distinct history.
    rows : tuple of numpy.ndarray
        The distinct histories ``(x, t_x, T)``.
    n_customers, n_samples : int
        Customers (``Σ weights``) and posterior draws (chains x draws).
    r_eff : float
        Relative efficiency used for the PSIS tail length.
    good_k : float
        ``min(1 - 1/log10(S), 0.7)``.
    warning : bool
        Some customer has ``k > good_k``.
    inverse : numpy.ndarray or None
        Distinct history of each data row (from a model), for per-customer output.
    customer_index : pandas.Index or None
        Labels of the data rows (from a model).
    row_weights : numpy.ndarray or None
        Customers per data row of a compressed table.
    """

    elpd_loo: float
    se: float
    p_loo: float
    lppd: float
    elpd_i: np.ndarray
    lppd_i: np.ndarray
    pareto_k: np.ndarray
    weights: np.ndarray
    rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    n_customers: int
    n_samples: int
    r_eff: float
    good_k: float
    warning: bool
    inverse: np.ndarray | None = None
    customer_index: pd.Index | None = None
    row_weights: np.ndarray | None = None

    def pareto_k_counts(self) -> pd.Series:
        """Customers by Pareto k: ``k <= good_k`` (reliable), ``good_k < k <= 1`` (bad),
        ``k > 1`` (very bad)."""
        k, w = self.pareto_k, self.weights
        bins = {
            f"k <= {self.good_k:.2f}": w[k <= self.good_k].sum(),
            f"{self.good_k:.2f} < k <= 1": w[(k > self.good_k) & (k <= 1)].sum(),
            "k > 1": w[k > 1].sum(),
        }
        return pd.Series(bins, name="customers").astype(np.int64)

    def pointwise(self) -> pd.DataFrame:
        """One row per distinct history: ``frequency``, ``recency``, ``T``, ``customers``,
        ``elpd_loo``, ``lppd``, ``p_loo`` (``lppd - elpd_loo``) and ``pareto_k``."""
        x, t_x, T = self.rows
        return pd.DataFrame({
            "frequency": x, "recency": t_x, "T": T, "customers": self.weights.astype(np.int64),
            "elpd_loo": self.elpd_i, "lppd": self.lppd_i, "p_loo": self.lppd_i - self.elpd_i,
            "pareto_k": self.pareto_k,
        })

    def _per_customer(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per customer values and their ``customer_id`` labels."""
        if self.inverse is not None and self.row_weights is None:
            return values[self.inverse], np.asarray(self.customer_index)
        if self.inverse is not None:
            per = np.repeat(self.inverse, self.row_weights.astype(np.int64))
        else:
            per = np.repeat(np.arange(values.size), self.weights.astype(np.int64))
        return values[per], np.arange(per.size)

    def to_arviz(self, pointwise: bool = False, *, max_points: int = MAX_POINTWISE):
        """This result as an :class:`arviz.ELPDData` (what ``arviz.loo`` returns).

        Parameters
        ----------
        pointwise
            Include ``loo_i`` and ``pareto_k`` per customer (customers of a compressed table
            numbered ``0..N-1``), as ``arviz.loo(..., pointwise=True)``.
        max_points
            Refuse ``pointwise`` above this many customers.
        """
        from arviz.stats.stats_utils import ELPDData
        import xarray as xr

        data = [self.elpd_loo, self.se, self.p_loo, self.n_samples, self.n_customers, self.warning]
        index = ["elpd_loo", "se", "p_loo", "n_samples", "n_data_points", "warning"]
        if pointwise:
            if self.n_customers > max_points:
                raise ValueError(
                    f"{self.n_customers:,} customers is more than max_points={max_points:,} for a pointwise "
                    "ELPDData; the per-history values are in .pointwise()."
                )
            loo_i, ids = self._per_customer(self.elpd_i)
            k_i, _ = self._per_customer(self.pareto_k)
            data += [xr.DataArray(loo_i, dims=["customer_id"], coords={"customer_id": ids}, name="loo_i"),
                     xr.DataArray(k_i, dims=["customer_id"], coords={"customer_id": ids}, name="pareto_shape")]
            index += ["loo_i", "pareto_k"]
        return ELPDData(data=[*data, "log", self.good_k], index=[*index, "scale", "good_k"])

    def __repr__(self) -> str:
        counts = self.pareto_k_counts()
        lines = [
            f"WeightedLoo: {self.n_customers:,} customers in {self.weights.size:,} distinct histories, "
            f"{self.n_samples:,} draws (r_eff {self.r_eff:.2f})",
            f"  elpd_loo {self.elpd_loo:,.2f}  (se {self.se:,.2f})",
            f"  p_loo    {self.p_loo:,.2f}",
            "  Pareto k: " + ", ".join(f"{k}: {v:,}" for k, v in counts.items()),
        ]
        return "\n".join(lines)


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _loo_fused(draws: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, m_tail: int, block: int,
               buf: np.ndarray, elpd: np.ndarray, lppd: np.ndarray, k: np.ndarray, finite: np.ndarray) -> None:
    """:func:`~clvbayes.comparison.psis.loo_row` of every row, block by block of ``block``
    rows in parallel: each thread evaluates its block's log-likelihoods for all draws into
    its own ``buf[thread]`` (:func:`~clvbayes.comparison.pointwise.draws_block`, draws x
    rows), gathers each row's S values and runs PSIS-LOO on them, so no more than one
    block per thread ever exists. Rows are independent: the results do not depend on the
    threads or the blocks. ``finite[i]`` is False (and nothing computed) for a row with a
    non-finite log-likelihood."""
    n = x.size
    S = draws.shape[0]
    for b in prange((n + block - 1) // block):
        lo = b * block
        hi = min(lo + block, n)
        nb = hi - lo
        ll = buf[numba.get_thread_id(), :S * nb].reshape((S, nb))
        draws_block(draws, x[lo:hi], t_x[lo:hi], T[lo:hi], ll)
        rows = np.empty((_TILE, S))
        low = np.empty(_TILE)
        high = np.empty(_TILE)
        nonfinite = np.empty(_TILE)
        work = np.empty(2 * S)
        smooth = np.empty(m_tail + 1)
        for i0 in range(0, nb, _TILE):
            nt = min(_TILE, nb - i0)
            low[:] = math.inf
            high[:] = -math.inf
            nonfinite[:] = 0.0
            for s in range(S):  # gather _TILE rows at a time: one cache line of ll per draw
                for j in range(nt):
                    v = ll[s, i0 + j]
                    rows[j, s] = v
                    low[j] = min(low[j], v)
                    high[j] = max(high[j], v)
                    nonfinite[j] += 0.0 * v  # NaN once any v is NaN or infinite
            for j in range(nt):
                i = lo + i0 + j
                finite[i] = nonfinite[j] == 0.0
                if finite[i]:
                    elpd[i], lppd[i], k[i] = loo_row(rows[j], m_tail, work, smooth, (low[j], high[j]))


def _loo_terms(kernel: LoglikRows, draws: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
               m_tail: int, block_bytes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(elpd_i, lppd_i, k_i, finite_i)`` of every row: fused in one threaded Numba loop for
    a Numba kernel (:func:`_loo_fused`), else by blocks evaluated in Python."""
    n, S = x.size, draws.shape[0]
    elpd, lppd, k = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    finite = np.zeros(n, dtype=np.bool_)
    block = int(max(1, min(n, MAX_BLOCK_ROWS, block_bytes // (8 * S))))
    if prepared_data_for(kernel) is not None:
        # Prepared arrays are built per block in Python (loglik_block): blocks of up to
        # PREPARED_BLOCK_ROWS rows share the cost of the per-call tables.
        block = int(max(1, min(n, max(block, PREPARED_BLOCK_ROWS))))
    elif isinstance(kernel, Dispatcher):
        buf = np.empty((numba.config.NUMBA_NUM_THREADS, S * block))
        with numba.parallel_chunksize(1):  # blocks handed out one by one: rows differ in cost
            bind_kernel(_loo_fused, kernel)(draws, x, t_x, T, m_tail, block, buf, elpd, lppd, k, finite)
        return elpd, lppd, k, finite
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        ll = loglik_block(kernel, draws, x[lo:hi], t_x[lo:hi], T[lo:hi])
        finite[lo:hi] = np.isfinite(ll).all(axis=1)
        loo_rows(ll, m_tail, elpd[lo:hi], lppd[lo:hi], k[lo:hi])
    return elpd, lppd, k, finite


def weighted_loo(
    source,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    weights: np.ndarray | None = None,
    *,
    family: Family | str | None = None,
    loglik_rows: LoglikRows | None = None,
    r_eff: float | None = None,
    block_bytes: int = BLOCK_BYTES,
    warn: bool = True,
) -> WeightedLoo:
    """PSIS-LOO of a purchase model over all customers, from their distinct histories.

    Exact: the same numbers as :func:`arviz.loo` on the per-customer log-likelihood
    (module docstring), but in memory of one block of ``block_bytes`` per thread.

    Parameters
    ----------
    source
        A purchase model fitted with ``fit()`` (NUTS): its posterior, family and data are
        used and ``rows``/``weights`` must be None (a model with covariates, e.g.
        :class:`~clvbayes.CovariatePurchaseModel`, goes to
        :func:`clvbayes.comparison.covariate_loo.covariate_loo`). Or the posterior: ``idata.posterior``,
        an InferenceData or a dict ``name -> (chain, draw) array`` of the family's
        parameters.
    rows
        With a posterior: the distinct histories ``(x, t_x, T)`` (float arrays).
    weights
        Customers per row (default 1 each).
    family
        With a posterior: the model family (default ``"bgnbd"``); gives the parameter order
        and the log-likelihood kernel.
    loglik_rows
        Override of the family's kernel ``loglik_rows(θ0, θ1, θ2, θ3, x, t_x, T)``.
    r_eff
        Relative efficiency of the draws; by default as :func:`arviz.loo` computes it
        (:func:`relative_efficiency`).
    block_bytes
        Memory of one thread's block of pointwise log-likelihoods (default 16 MiB; blocks
        hold at most 512 rows). The results do not depend on it, nor on the threads.
    warn
        Emit a :class:`ParetoKWarning` when some customer has ``k > good_k``.

    Returns
    -------
    WeightedLoo
    """
    extra: dict = {}
    if hasattr(source, "cell_draws"):  # a model with covariates: per-cell parameters
        if rows is not None or weights is not None or loglik_rows is not None or family is not None:
            raise ValueError("With a model with covariates, pass the model alone (and r_eff, block_bytes, warn).")
        from clvbayes.comparison.covariate_loo import covariate_loo

        return covariate_loo(source, r_eff=r_eff, block_bytes=block_bytes, warn=warn)
    if hasattr(source, "idata_") or hasattr(source, "_arrays"):
        if rows is not None or weights is not None:
            raise ValueError("With a model, the rows and weights are the model's data: do not pass them.")
        md = model_data(source)
        if md.posterior is None:
            raise ValueError(
                f"This {type(source).__name__} has no posterior: PSIS-LOO needs posterior draws (fit() with "
                "method='nuts'); a maximum likelihood or MAP fit has none."
            )
        fam, posterior, rows, weights = md.family, md.posterior, md.columns, md.weights
        extra = {"inverse": md.inverse, "customer_index": md.customer_index, "row_weights": md.row_weights}
    else:
        if rows is None:
            raise ValueError("With a posterior, pass rows=(x, t_x, T).")
        fam, posterior = get_family("bgnbd" if family is None else family), source
    x, t_x, T = (np.ascontiguousarray(c, dtype=np.float64) for c in rows)
    if not (x.ndim == t_x.ndim == T.ndim == 1 and x.size == t_x.size == T.size and x.size > 0):
        raise ValueError("rows must be three 1-D arrays (x, t_x, T) of equal, non-zero length.")
    w = np.ones(x.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != x.shape or not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be positive finite numbers, one per row.")
    ds, draws = posterior_draws(posterior, fam.param_names)
    S = draws.shape[0]
    if S < 2:
        raise ValueError(f"PSIS-LOO needs at least 2 posterior draws, got {S}.")
    if r_eff is None:
        r_eff = relative_efficiency(ds, fam.param_names)
    if not (np.isfinite(r_eff) and r_eff > 0):
        raise ValueError(f"r_eff must be positive and finite, got {r_eff!r}.")
    kernel = resolve_loglik_rows(fam) if loglik_rows is None else loglik_rows

    m_tail = tail_length(S, float(r_eff))
    elpd_i, lppd_i, k, finite = _loo_terms(kernel, draws, x, t_x, T, m_tail, block_bytes)
    return finish_loo(elpd_i, lppd_i, k, finite, w, (x, t_x, T), S, float(r_eff), warn, extra)


def finish_loo(elpd_i: np.ndarray, lppd_i: np.ndarray, k: np.ndarray, finite: np.ndarray, w: np.ndarray,
               rows: tuple[np.ndarray, np.ndarray, np.ndarray], S: int, r_eff: float, warn: bool,
               extra: Mapping) -> WeightedLoo:
    """The totals (module docstring), the Pareto-k warning and the :class:`WeightedLoo` of
    per-row terms; a row whose log-likelihood is not finite is an error."""
    x, t_x, T = rows
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise FloatingPointError(
            f"The log-likelihood of history (x={x[bad]:g}, t_x={t_x[bad]:g}, T={T[bad]:g}) is not finite "
            "for some posterior draw."
        )

    N = float(w.sum())
    elpd = float(w @ elpd_i)
    se = math.sqrt(float(w @ (elpd_i - elpd / N) ** 2))
    lppd = float(w @ lppd_i)
    gk = good_k(S)
    high = k > gk
    if high.any() and warn:
        warnings.warn(
            f"{int(w[high].sum()):,} of {N:,.0f} customers ({int(high.sum()):,} distinct histories) have a Pareto k "
            f"above {gk:.2f}: their PSIS-LOO terms are unreliable (the posterior without them differs much from "
            "the full one), and so are elpd_loo and its comparisons. Inspect .pointwise() for which histories.",
            ParetoKWarning, stacklevel=3,
        )
    return WeightedLoo(
        elpd_loo=elpd, se=se, p_loo=lppd - elpd, lppd=lppd, elpd_i=elpd_i, lppd_i=lppd_i, pareto_k=k,
        weights=w, rows=(x, t_x, T), n_customers=int(round(N)), n_samples=S, r_eff=float(r_eff), good_k=gk,
        warning=bool(high.any()), **extra,
    )
