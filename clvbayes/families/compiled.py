"""Every array kernel of a family, compiled once per family from one generic source.

:func:`drivers_for` returns a :class:`Drivers` namespace: the generic drivers of
:mod:`clvbayes.kernels.drivers` and the value-engine kernels of :mod:`clvbayes.kernels.clv`
rebuilt with the family's scalar cores (:func:`clvbayes.kernels.build.rebuild`), replaced
by the family's own ``fast`` kernels where it has them (BG/NBD's tabulated likelihood and
its Chebyshev value tables, Pareto/NBD's likelihood on the data's distinct times). Builds are
memoised per family and cached on disk by Numba.

A family's ``fast["prepare"]`` (optional) computes θ-free arrays from the data once; its
likelihood kernels then take them after the data: ``loglik_rows(θ, x, t_x, T, *extra)``,
``loglik_sum(θ, x, t_x, T, w, *extra)``. ``fast["prepare_sums"]`` does the same for the two
sums only (BG/NBD's distinct times: its per-row kernel stays unprepared, so LOO keeps its fused
loop). :meth:`Drivers.loglik_data` builds the argument tuple for any family, so callers never
look at the family.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from clvbayes.families._protocol import Family, get_family
from clvbayes.kernels import build
from clvbayes.kernels import clv as _clv
from clvbayes.kernels import drivers as _drv
from clvbayes.kernels import simulate as _evsim
from clvbayes.kernels import tracking as _tracking

__all__ = ["Drivers", "drivers_for", "prepared_data_for"]

# Part of every tag: bump when the way drivers are rebuilt changes.
_BUILD_VERSION = 1


@dataclass(frozen=True)
class Drivers:
    """Array kernels of one family (all take the four parameters first; see
    :mod:`clvbayes.kernels.drivers` for the signatures).

    ``factor_table(quantity, p0, p1, p2, p3, ux, uT, udelta, horizon)`` and
    ``fill(quantity, p0, p1, p2, p3, p, q, gamma, table, ux, uT, codes, t_x, m, margin, out,
    alive_out, with_alive)`` are the value engine's per-draw kernels (parameter arrays of
    length D); ``fill_rows`` (:func:`clvbayes.kernels.clv.family_fill_rows`) is its kernel for
    per-customer parameters (covariates), (cells, D) arrays and a cell per customer.
    ``simulate_population`` and ``simulate_transactions`` are the event-by-event simulator of :mod:`clvbayes.kernels.simulate` (``population``, ``transactions``) with the
    family's ``latent_one`` and ``drops_out_one``. ``serial`` holds thread-free builds of the
    likelihood sums for samplers that already run one chain per core. ``prepare`` is the
    family's ``fast["prepare"]`` or None, ``prepare_sums`` its ``fast["prepare_sums"]`` (θ-free
    arrays for the two sums only, e.g. BG/NBD's distinct times) or None.
    """

    family: Family
    loglik_rows: Callable
    loglik_sum: Callable
    loglik_sum_grad: Callable
    p_alive: Callable
    expected_purchases: Callable
    conditional_expected_purchases: Callable
    pmf: Callable
    conditional_pmf: Callable
    dert: Callable
    calibration_replicates: Callable
    calibration_replicates_cells: Callable
    holdout_replicates: Callable
    holdout_replicates_cells: Callable
    simulate_population: Callable
    simulate_transactions: Callable
    simulate_rows: Callable
    factor_table: Callable
    fill: Callable
    fill_rows: Callable
    expected_purchases_grid: Callable
    serial_loglik_sum: Callable
    serial_loglik_sum_grad: Callable
    prepare: Callable | None = None
    prepare_sums: Callable | None = None

    def _sums_prepare(self) -> Callable | None:
        return self.prepare_sums if self.prepare_sums is not None else self.prepare

    def loglik_data(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                    weights: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """The data arguments of the likelihood kernels: ``(x, t_x, T, *extra)`` for
        ``loglik_rows``, ``(x, t_x, T, weights, *extra)`` for ``loglik_sum(_grad)`` (extra:
        ``prepare(x, t_x, T)`` for the rows, ``prepare_sums`` or else ``prepare`` for the
        sums; empty for a family without them). Compute it once per data set: it is
        θ-free."""
        cols = (x, t_x, T) if weights is None else (x, t_x, T, weights)
        prep = self.prepare if weights is None else self._sums_prepare()
        if prep is None:
            return cols
        return (*cols, *prep(x, t_x, T))

    @property
    def n_extra(self) -> int:
        """Number of arrays :meth:`loglik_data` adds after the data columns of the sums
        (``loglik_sum``, ``loglik_sum_grad``: the inputs of the PyTensor Op)."""
        prep = self._sums_prepare()
        if prep is None:
            return 0
        e = np.empty(0)
        return len(prep(e, e, e))


_GENERIC = {
    "loglik_rows": _drv.loglik_rows,
    "loglik_sum": _drv.loglik_sum,
    "loglik_sum_grad": _drv.loglik_sum_grad,
    "p_alive": _drv.p_alive,
    "expected_purchases": _drv.expected_purchases,
    "conditional_expected_purchases": _drv.conditional_expected_purchases,
    "pmf": _drv.pmf,
    "conditional_pmf": _drv.conditional_pmf,
    "dert": _drv.dert,
    "calibration_replicates": _drv.calibration_replicates,
    "calibration_replicates_cells": _drv.calibration_replicates_cells,
    "holdout_replicates": _drv.holdout_replicates,
    "holdout_replicates_cells": _drv.holdout_replicates_cells,
    "simulate_population": _evsim.population,
    "simulate_transactions": _evsim.transactions,
    "simulate_rows": _evsim.population_rows,
    "factor_table": _clv.family_factor_table,
    "fill": _clv.family_fill,
    "fill_rows": _clv.family_fill_rows,
    "expected_purchases_grid": _tracking.expected_purchases_grid,
}


@functools.cache
def drivers_for(family: Family | str) -> Drivers:
    """The array kernels of ``family`` (a :class:`Family` or its registered name)."""
    family = get_family(family)
    # The generic sources call the cores as ``_name`` (drivers, clv) or ``name`` (tracking).
    replace = {_drv.CORE_NAMES[c]: f for c, f in family.cores.items()}
    replace.update({"expected_purchases_one": family.cores["expected_purchases_one"]})
    tag = f"{family.name}_{build.source_tag(family.cores.values(), str(_BUILD_VERSION))}"
    memo: dict = {}
    kernels = {}
    for name, generic in _GENERIC.items():
        if name in family.fast:
            kernels[name] = family.fast[name]
        else:
            kernels[name] = build.rebuild(generic, replace=replace, tag=tag, _memo=memo)
    serial_memo: dict = {}
    for name in ("loglik_sum", "loglik_sum_grad"):
        kernels[f"serial_{name}"] = build.rebuild(kernels[name], serial=True, tag="serial1", _memo=serial_memo)
    d = Drivers(family=family, prepare=family.fast.get("prepare"), prepare_sums=family.fast.get("prepare_sums"),
                **kernels)
    if d.prepare is not None:
        _PREPARED_ROWS[d.loglik_rows] = d.loglik_data
    return d


# loglik_rows kernel of a family with fast["prepare"] -> its Drivers.loglik_data
_PREPARED_ROWS: dict = {}


def prepared_data_for(loglik_rows: Callable) -> Callable | None:
    """``loglik_data(x, t_x, T)`` if ``loglik_rows`` is the per-row kernel of a family whose
    kernels take prepared arrays (``fast["prepare"]``), else None (a kernel of the plain
    ``(θ, x, t_x, T)`` signature)."""
    return _PREPARED_ROWS.get(loglik_rows)
