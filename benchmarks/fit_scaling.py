"""Benchmark: BG/NBD (or Pareto/NBD, MBG/NBD) fitting at 10^4..10^7 customers, clvbayes vs
PyMC-Marketing vs lifetimes.

What it measures
----------------
For every population size and every *cell* (tool, method), in a fresh subprocess with a
wall-time cap: the wall time of the fit, the peak memory of the process tree, and the
quality of the result. The table names BG/NBD's classes (``--model bgnbd``, the default);
``--model pnbd`` / ``mbgnbd`` runs the same cells on that family's data with
``clvbayes.model_class(model)`` (``ParetoNBDModel``, ``ModifiedBetaGeoModel``),
PyMC-Marketing's ``ParetoNBDModel`` / ``ModifiedBetaGeoModel`` and lifetimes'
``ParetoNBDFitter`` / ``ModifiedBetaGeoFitter`` (same calls, same defaults):

==================  =====================================================================
cell                what is run
==================  =====================================================================
``clvbayes_mle``    ``clvbayes.BetaGeoModel(df).fit_mle()``
``clvbayes_map``    ``clvbayes.BetaGeoModel(df).fit(method="map")`` (default priors)
``clvbayes_nutpie`` ``clvbayes.BetaGeoModel(df).fit(sampler="nutpie", ...)`` (the default)
``clvbayes_pymc``   ``clvbayes.BetaGeoModel(df).fit(sampler="pymc", ...)`` (PyMC's NUTS)
``pmm_pymc``        ``pymc_marketing.clv.BetaGeoModel(data=df).fit(method="mcmc", ...)``
                    with PyMC's default NUTS (its default priors)
``pmm_nutpie``      the same with ``nuts_sampler="nutpie"``
``lifetimes_mle``   ``lifetimes.BetaGeoFitter().fit(frequency, recency, T)`` (raw rows)
==================  =====================================================================

NUTS cells draw ``--chains`` chains of ``--draws`` draws after ``--tune`` tuning steps (4 x
1000 + 1000 by default), all with the same ``--seed``, no progress bar, other settings at
each library's defaults (PyMC runs chains in ``min(4, cores)`` processes; nutpie in threads).

Per cell (see ``Record`` below for every field): ``fit_s``, the wall time from building the
model object from a ready pandas frame to the fitted result (model construction, graph
compilation, optimisation or sampling; not Python start-up, imports or data loading, which
are ``import_s``/``load_s``, and ``process_s`` is the whole subprocess); for nutpie cells
``compile_s`` and ``sampling_s``, the time spent in ``nutpie.compile_pymc_model`` and
``nutpie.sample`` (the worker wraps both; the wrapper also sets ``save_warmup=True``, which
only stores the tuning stats so that their gradient evaluations can be counted), for PyMC's
own NUTS ``sampling_s`` = its ``sampling_time``; ``setup_s = fit_s - sampling_s``; the peak
resident memory of the subprocess and all its children (RSS summed over the process tree,
polled every ``--poll`` s, and the worker's own ``ru_maxrss``; the larger is reported); the
gradient evaluations (sum of ``n_steps`` over draws and tuning; PyMC cells pass
``discard_tuned_samples=False`` for the same reason, storage only); per parameter the
estimate (posterior mean), posterior sd or MLE standard error, relative error and z-score
against the simulating value, and for NUTS ``r_hat``, ``ess_bulk``, ``ess_tail``
(ArviZ), ``ess_bulk / fit_s`` and whether the truth lies in the 94 % HDI; divergences.

A cell that exceeds ``--time-cap`` is killed (status ``timeout``); one killed by signal 9
that we did not send (the kernel's OOM killer), one raising ``MemoryError`` or one whose
tree exceeds ``--mem-cap-gb`` is ``oom``; any other exception is ``error`` with the last
line of its message. After a ``timeout``/``oom`` a cell is not run at larger sizes
(``skipped``). Failures are results: the report gives lower bounds (``> X``) for ratios
against a failed anchor, from the time the anchor had spent fitting when it was killed.

Data
----
Customers are simulated from BG/NBD in continuous time with
:func:`clvbayes.kernels.simulate.simulate_population` / ``simulate_transactions`` at the
CDNOW maximum-likelihood estimates of Fader, Hardie & Lee (2005), Marketing Science 24(2),
``(r, alpha, a, b) = (0.2425945, 4.4136019, 0.7929199, 2.4258881)`` (weeks), then recorded
at daily resolution, the convention of ``benchmarks/kernels.py``:

- each customer's first purchase is at the start of a day; the observation period ends at
  the start of a day ``T_days`` later, ``T_days`` uniform on 1..364 (a 52-week window), and
  ``T = T_days / 7`` weeks, so ``T`` is on the day grid;
- a purchase at continuous time ``t`` (weeks after the first) is recorded on day
  ``floor(7 t)`` (``T_days`` for ``t = T`` exactly);
- purchases of one customer on one day merge into one occasion, as
  :func:`clvbayes.rfm_summary` counts them; a purchase on day 0 merges with the first
  purchase and is not a repeat; ``frequency`` = repeat occasions, ``recency`` = day of
  the last one / 7 (0 if none).

So the fitted data are not exactly BG/NBD: the day grid and the merging shift the
estimates slightly from the simulating values, a bias that does not shrink with ``n``
(the z-scores make it visible at large ``n``). Customers are generated in chunks of
``2^20`` (memory stays about 150 MB whatever ``n``): chunk 0 draws ``T_days`` from
``numpy.random.default_rng(seed)`` and simulates with ``seed``, exactly as
``benchmarks/kernels.py`` does (identical data for ``n <= 2^20``); chunk ``k > 0`` uses
``default_rng([seed, k])`` and seed ``seed + k * 2^40``. Each ``(n, seed)`` is generated
once and cached as ``benchmarks/.cache/fit_scaling_n{n}_seed{seed}.npz`` (int32 columns
``x``, ``recency_days``, ``T_days`` and a JSON summary), which every subprocess loads.

Pareto/NBD and MBG/NBD (``--model pnbd|mbgnbd``) are simulated by one code path for any
registered family (:func:`simulate_family_daily`), from the family's own simulator
``clvbayes.families.compiled.drivers_for(model).calibration_replicates`` (one parameter
draw, seed ``seed``; blocks of 1024 customers seeded apart, so the first customers of a
larger ``n`` are those of a smaller one), at its published CDNOW estimates (weeks):

- Pareto/NBD ``(r, alpha, s, beta) = (0.553, 10.578, 0.606, 11.669)``, Fader, Hardie & Lee
  (2005), "Counting your customers the easy way", Marketing Science 24(2) (their Pareto/NBD
  fit to the same CDNOW sample);
- MBG/NBD ``(r, alpha, a, b) = (0.525, 6.183, 0.891, 1.614)``, BTYDplus' fit to the CDNOW
  sample as asserted in lifetimes' tests (``ModifiedBetaGeoFitter``).

``T_days`` are drawn exactly as for BG/NBD (same generators per chunk), so every family
sees the same ages ``T = T_days / 7``. The simulator returns the repeat count ``x`` and the
continuous time ``t_x`` of the last repeat purchase, not the purchases themselves, so the
day grid is applied to what it returns: ``recency_days = min(floor(7 t_x), T_days)``, as the
BG/NBD path records the last purchase, and a customer whose last repeat purchase falls on
day 0 (hence every one of them) gets ``x = 0``, as rfm_summary merges them with the first
purchase. Other same-day purchases are not merged (their days are not known), so
``frequency`` counts purchases, not purchase days (in the BG/NBD data all merging
together, day 0 included, removes 2.2 % of the repeat purchases). These data are cached as
``benchmarks/.cache/fit_scaling_<model>_n{n}_seed{seed}.npz``. BG/NBD keeps its own
generator above (a transaction stream, all same-day purchases merged), so the committed
BG/NBD results stay reproducible; the generic path would serve it too, but gives other
numbers.

Usage
-----
``python benchmarks/fit_scaling.py [--sizes 1e4 1e5 1e6 1e7] [--tools ...] [--time-cap 1800]``

Writes ``benchmarks/results/<out-name>.json`` (every record, data summaries, targets,
versions, machine) and ``<out-name>.md`` (a table per size and the targets of the issue),
rewritten after every cell so an interrupted run keeps what it has. Worker logs go to
``benchmarks/.cache/logs/<out-name>/``. A quick end-to-end check of every tool::

    python benchmarks/fit_scaling.py --sizes 1000 3000 --draws 100 --tune 100 \\
        --time-cap 300 --out-name fit_scaling_smoke
    python benchmarks/fit_scaling.py --model mbgnbd --sizes 1000 3000 --draws 100 \\
        --tune 100 --time-cap 300 --out-name fit_scaling_mbgnbd_smoke

The output name defaults to ``fit_scaling`` for BG/NBD and ``fit_scaling_<model>`` else.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import _common
from _common import fmt_number as _f  # noqa: E402

#: CDNOW MLE in weeks: Fader, Hardie & Lee (2005), Marketing Science 24(2), section 4.
PARAMS = {"r": 0.2425945, "alpha": 4.4136019, "a": 0.7929199, "b": 2.4258881}
THETA = np.array(list(PARAMS.values()))


@dataclass(frozen=True)
class ModelSpec:
    """One model family of the benchmark: its simulating values and each library's class."""

    name: str  # clvbayes family name (``--model``)
    label: str
    params: dict[str, float]  # simulating values, in the family's parameter order
    source: str  # where the simulating values come from
    pmm_class: str  # in pymc_marketing.clv
    lifetimes_class: str  # in lifetimes
    pmm_priors: str  # PyMC-Marketing's default priors, for the notes

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.params)


MODELS = {
    m.name: m
    for m in [
        ModelSpec("bgnbd", "BG/NBD", PARAMS,
                  "CDNOW MLE, Fader, Hardie & Lee (2005), Marketing Science 24(2)",
                  "BetaGeoModel", "BetaGeoFitter",
                  "Weibull on r and alpha, phi/kappa for a and b"),
        ModelSpec("pnbd", "Pareto/NBD", {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
                  "CDNOW MLE of the Pareto/NBD, Fader, Hardie & Lee (2005), Marketing Science "
                  "24(2)", "ParetoNBDModel", "ParetoNBDFitter",
                  "Weibull on r, alpha, s and beta"),
        ModelSpec("mbgnbd", "MBG/NBD", {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614},
                  "CDNOW MLE of BTYDplus' MBG/NBD, as in lifetimes' tests", "ModifiedBetaGeoModel",
                  "ModifiedBetaGeoFitter",
                  "BetaGeoModel's: Weibull on r and alpha, phi/kappa for a and b"),
    ]
}
WINDOW_DAYS = 364  # 52 weeks
CHUNK = 1 << 20  # customers simulated per chunk (a multiple of SIM_BLOCK = 1024)
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
PACKAGES = [
    "clvbayes", "numpy", "numba", "scipy", "pandas", "arviz", "pymc", "pytensor",
    "nutpie", "pymc-marketing", "lifetimes", "autograd", "psutil",
]
GB = 1e9


@dataclass(frozen=True)
class Cell:
    """One (tool, method) combination."""

    key: str
    tool: str
    method: str  # "mle", "map" or "nuts"
    sampler: str | None
    label: str


CELLS = {
    c.key: c
    for c in [
        Cell("clvbayes_mle", "clvbayes", "mle", None, "clvbayes fit_mle"),
        Cell("clvbayes_map", "clvbayes", "map", None, "clvbayes MAP"),
        Cell("clvbayes_nutpie", "clvbayes", "nuts", "nutpie", "clvbayes NUTS (nutpie)"),
        Cell("clvbayes_pymc", "clvbayes", "nuts", "pymc", "clvbayes NUTS (PyMC)"),
        Cell("pmm_pymc", "pymc-marketing", "nuts", "pymc", "PyMC-Marketing NUTS (PyMC default)"),
        Cell("pmm_nutpie", "pymc-marketing", "nuts", "nutpie", "PyMC-Marketing NUTS (nutpie)"),
        Cell("lifetimes_mle", "lifetimes", "mle", None, "lifetimes {lifetimes} MLE"),
    ]
}


def cell_label(cell: Cell, spec: ModelSpec) -> str:
    return cell.label.format(lifetimes=spec.lifetimes_class)


TOOL_GROUPS = {
    "clvbayes": [k for k, c in CELLS.items() if c.tool == "clvbayes"],
    "pymc-marketing": ["pmm_pymc", "pmm_nutpie"],
    "lifetimes": ["lifetimes_mle"],
    "all": list(CELLS),
}


@dataclass
class Record:
    """Everything measured for one cell at one size (``None``: not measured / not applicable)."""

    key: str
    label: str
    tool: str
    method: str
    sampler: str | None
    n: int
    status: str = "pending"  # ok / timeout / oom / error / skipped
    message: str | None = None
    # times (s)
    fit_s: float | None = None
    sampling_s: float | None = None
    setup_s: float | None = None
    compile_s: float | None = None  # nutpie.compile_pymc_model (nutpie cells)
    import_s: float | None = None
    load_s: float | None = None
    process_s: float | None = None
    phase_at_end: str | None = None  # worker phase when it ended or was killed
    fit_elapsed_at_kill_s: float | None = None  # lower bound of fit_s for killed cells
    # memory (bytes)
    peak_rss_bytes: int | None = None
    peak_rss_polled_bytes: int | None = None
    maxrss_self_bytes: int | None = None
    max_processes: int | None = None
    # sampler work and diagnostics
    n_grad_evals_draws: int | None = None
    n_grad_evals_tune: int | None = None
    n_grad_evals: int | None = None
    divergences: int | None = None
    max_r_hat: float | None = None
    min_ess_bulk: float | None = None
    min_ess_tail: float | None = None
    min_ess_bulk_per_s: float | None = None
    min_ess_bulk_per_sampling_s: float | None = None
    mle_converged: bool | None = None
    mle_iterations: int | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    threads: dict[str, Any] = field(default_factory=dict)
    log: str | None = None


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def _daily_summary(T_days: np.ndarray, seed: int,
                   theta: tuple[float, float, float, float] = THETA) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Simulate BG/NBD customers (parameters ``theta``, default ``THETA``) with observation
    lengths ``T_days`` and summarise them by day."""
    from clvbayes.kernels.simulate import simulate_population, simulate_transactions

    T_w = T_days / 7.0
    nan = float("nan")
    pop = simulate_population(*theta, T_w, nan, nan, nan, False, 0.0, seed)
    x_cont, n_tx = pop[0], pop[9]
    cust, t, _ = simulate_transactions(*theta, T_w, nan, nan, nan, False, 0.0, seed, n_tx)
    del pop
    # Sorted by customer then time. Day of each purchase; t == T exactly stays on day T.
    day = np.minimum(np.floor(t * 7.0).astype(np.int64), T_days[cust])
    new_day = np.ones(cust.size, dtype=bool)
    new_day[1:] = (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])
    idx = np.flatnonzero(new_day & (day > 0))  # repeat occasions
    c = cust[idx]
    x = np.bincount(c, minlength=T_days.size)
    last = np.ones(c.size, dtype=bool)
    last[:-1] = c[1:] != c[:-1]  # last repeat occasion of each customer
    rec = np.zeros(T_days.size, dtype=np.int64)
    rec[c[last]] = day[idx[last]]
    stats = {
        "n_transactions": int(cust.size),
        "n_repeat_continuous": int(x_cont.sum()),
        "n_repeat_daily": int(idx.size),
    }
    return x, rec, stats


def _chunk_T_days(seed: int, k: int, size: int) -> np.ndarray:
    """``T_days`` of chunk ``k`` (uniform on 1..WINDOW_DAYS; module docstring)."""
    rng = np.random.default_rng(seed if k == 0 else [seed, k])
    return rng.integers(1, WINDOW_DAYS + 1, size=size)


def simulate_daily(n: int, seed: int) -> dict[str, Any]:
    """BG/NBD: ``x``, ``recency_days``, ``T_days`` (int32) of ``n`` customers and a summary
    dict, from the transaction stream (same-day purchases merged).

    Chunked (see the module docstring) so that memory does not grow with the number of
    transactions of the whole population.
    """
    x = np.empty(n, dtype=np.int32)
    rec = np.empty(n, dtype=np.int32)
    T_days = np.empty(n, dtype=np.int32)
    totals = {"n_transactions": 0, "n_repeat_continuous": 0, "n_repeat_daily": 0}
    for k, lo in enumerate(range(0, n, CHUNK)):
        hi = min(n, lo + CHUNK)
        td = _chunk_T_days(seed, k, hi - lo)
        xk, rk, stats = _daily_summary(td, seed if k == 0 else seed + k * (1 << 40))
        x[lo:hi], rec[lo:hi], T_days[lo:hi] = xk, rk, td
        for key in totals:
            totals[key] += stats[key]
    return {"x": x, "recency_days": rec, "T_days": T_days, "stats": totals}


def simulate_family_daily(spec: ModelSpec, n: int, seed: int) -> dict[str, Any]:
    """Any family: ``x``, ``recency_days``, ``T_days`` (int32) of ``n`` customers and a summary
    dict, from the family's simulator ``calibration_replicates`` (module docstring)."""
    from clvbayes.families import get_family
    from clvbayes.families.compiled import drivers_for

    fam = get_family(spec.name)
    if fam.param_names != spec.names:
        raise ValueError(f"{spec.name}: parameters {spec.names} != the family's {fam.param_names}")
    T_days = np.concatenate([_chunk_T_days(seed, k, min(n, lo + CHUNK) - lo)
                             for k, lo in enumerate(range(0, n, CHUNK))])
    theta = [np.array([v], dtype=np.float64) for v in spec.params.values()]
    x, t_x = drivers_for(fam).calibration_replicates(*theta, T_days / 7.0, seed)
    x, t_x = x[0].astype(np.int64), t_x[0]
    rec = np.minimum(np.floor(t_x * 7.0).astype(np.int64), T_days)
    # A last repeat purchase on day 0 means every repeat purchase was on day 0: they all
    # merge with the first purchase (as rfm_summary counts them), so no repeat purchase.
    day0 = (x > 0) & (rec == 0)
    x_daily = np.where(day0, 0, x)
    stats = {"n_transactions": int(n + x.sum()), "n_repeat_continuous": int(x.sum()),
             "n_repeat_daily": int(x_daily.sum())}
    return {"x": x_daily.astype(np.int32), "recency_days": rec.astype(np.int32),
            "T_days": T_days.astype(np.int32), "stats": stats}


def describe(data: dict[str, Any], seed: int) -> dict[str, Any]:
    import clvbayes

    x = data["x"]
    rows = clvbayes.compress_rows(
        x.astype(np.float64), data["recency_days"] / 7.0, data["T_days"] / 7.0
    )
    return {
        "n_customers": int(x.size),
        "seed": seed,
        "mean_frequency": float(x.mean()),
        "share_zero_repeat": float(np.mean(x == 0)),
        "max_frequency": int(x.max()),
        "mean_T_weeks": float(data["T_days"].mean() / 7.0),
        "n_unique_rows": int(rows.n_unique),
        **data["stats"],
    }


def ensure_data(n: int, seed: int, model: str = "bgnbd") -> tuple[Path, dict[str, Any]]:
    """Path of the cached data of ``model`` for ``(n, seed)`` (generated on first use) and
    its summary."""
    spec = MODELS[model]
    stem = "fit_scaling" if model == "bgnbd" else f"fit_scaling_{model}"
    path = CACHE_DIR / f"{stem}_n{n}_seed{seed}.npz"

    def make() -> tuple[dict[str, Any], dict[str, Any]]:
        print(f"simulating {n:,} {spec.label} customers (seed {seed}) ...", flush=True)
        t0 = time.perf_counter()
        data = simulate_daily(n, seed) if model == "bgnbd" else simulate_family_daily(spec, n, seed)
        meta = describe(data, seed) | {"simulation_s": time.perf_counter() - t0}
        print(f"  {meta['simulation_s']:.1f} s, {meta['n_unique_rows']:,} unique rows", flush=True)
        return {k: data[k] for k in ("x", "recency_days", "T_days")}, meta

    return path, _common.cached_npz(path, make)


def load_frame(path: Path):
    """The cached data as the frame every tool gets: customer_id, frequency, recency, T."""
    import pandas as pd

    with np.load(path) as f:
        x, rec, T_days = f["x"], f["recency_days"], f["T_days"]
    return pd.DataFrame({
        "customer_id": np.arange(x.size),
        "frequency": x.astype(np.float64),
        "recency": rec / 7.0,
        "T": T_days / 7.0,
    })


# --------------------------------------------------------------------------------------
# Worker (one cell, in its own process)
# --------------------------------------------------------------------------------------


def _nuts_kwargs(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    kwargs = {"chains": args.chains, "draws": args.draws, "tune": args.tune,
              "random_seed": args.seed, "progressbar": False}
    if cell.sampler == "pymc":
        # Keep the tuning stats so the gradient evaluations of tuning can be counted; it
        # changes what is stored, not how the chains run.
        kwargs["discard_tuned_samples"] = False
    return kwargs


def _fit_clvbayes(cell: Cell, df, args) -> tuple[Any, dict[str, Any]]:
    import clvbayes

    model = clvbayes.model_class(args.model)(df)
    if cell.method == "mle":
        model.fit_mle()
        res = model.mle_result_
        return None, {"estimates": model.params_.to_dict(),
                      "se": model.standard_errors_.to_dict(),
                      "mle_converged": bool(res.converged),
                      "mle_iterations": int(res.n_iterations)}
    if cell.method == "map":
        model.fit(method="map")
        return None, {"estimates": model.params_.to_dict()}
    model.fit(sampler=cell.sampler, **_nuts_kwargs(cell, args))
    return model.idata_, {}


def _fit_pmm(cell: Cell, df, args) -> tuple[Any, dict[str, Any]]:
    import pymc_marketing.clv

    # data go to fit(): Model(data) is deprecated in 0.19
    model = getattr(pymc_marketing.clv, MODELS[args.model].pmm_class)()
    kwargs = _nuts_kwargs(cell, args)
    if cell.sampler == "nutpie":
        kwargs["nuts_sampler"] = "nutpie"
    idata = model.fit(data=df, method="mcmc", **kwargs)
    return idata, {}


def _fit_lifetimes(cell: Cell, df, args) -> tuple[Any, dict[str, Any]]:
    import lifetimes

    names = MODELS[args.model].names
    fitter = getattr(lifetimes, MODELS[args.model].lifetimes_class)(penalizer_coef=0.0)
    fitter.fit(df["frequency"], df["recency"], df["T"])
    est = {k: float(fitter.params_[k]) for k in names}
    out: dict[str, Any] = {"estimates": est}
    try:  # standard errors from lifetimes' own Hessian (its summary table)
        se = fitter.summary["se(coef)"]
        out["se"] = {k: float(se[k]) for k in names}
    except Exception as exc:  # noqa: BLE001 - optional
        out["warnings"] = [f"lifetimes standard errors unavailable: {type(exc).__name__}: {exc}"]
    return None, out


FITTERS: dict[str, Callable[[Cell, Any, argparse.Namespace], tuple[Any, dict[str, Any]]]] = {
    "clvbayes": _fit_clvbayes,
    "pymc-marketing": _fit_pmm,
    "lifetimes": _fit_lifetimes,
}


def _instrument_nutpie(timings: dict[str, float]) -> None:
    """Time ``nutpie.compile_pymc_model`` and ``nutpie.sample`` and keep nutpie's tuning
    stats, for whichever library calls them (clvbayes directly, PyMC-Marketing through
    ``pymc.sample``; both look the functions up on the module at call time). A sampler
    started with ``blocking=False`` (clvbayes) is timed from the call to the return of
    its ``wait()``.

    ``save_warmup=True`` (nutpie's own default, which clvbayes turns off) only stores the
    tuning draws and stats, so the tuning's gradient evaluations can be counted.
    """
    import nutpie

    sample, compile_model = nutpie.sample, nutpie.compile_pymc_model

    def timed_compile(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return compile_model(*args, **kwargs)
        finally:
            timings["compile_s"] = timings.get("compile_s", 0.0) + time.perf_counter() - t0

    def add_sampling(t0: float) -> None:
        timings["sampling_s"] = timings.get("sampling_s", 0.0) + time.perf_counter() - t0

    def timed_sample(*args: Any, **kwargs: Any) -> Any:
        kwargs["save_warmup"] = True
        t0 = time.perf_counter()
        if kwargs.get("blocking", True):
            try:
                return sample(*args, **kwargs)
            finally:
                add_sampling(t0)
        # In the background (clvbayes samples so): the sampling ends when wait() returns.
        sampler = sample(*args, **kwargs)
        wait = sampler.wait

        def timed_wait(*wargs: Any, **wkwargs: Any) -> Any:
            try:
                return wait(*wargs, **wkwargs)
            finally:
                add_sampling(t0)

        sampler.wait = timed_wait
        return sampler

    nutpie.compile_pymc_model, nutpie.sample = timed_compile, timed_sample


def _sampling_time(idata) -> float | None:
    """PyMC's ``sampling_time`` attribute (set by its own NUTS and by its nutpie path)."""
    for group in ("posterior", "sample_stats"):
        if group in idata.groups():
            value = getattr(idata, group).attrs.get("sampling_time")
            if value is not None:
                return float(value)
    return None


def _sum_stat(idata, group: str, names: tuple[str, ...]) -> int | None:
    if group not in idata.groups():
        return None
    ds = getattr(idata, group)
    for name in names:
        if name in ds:
            return int(ds[name].sum())
    return None


def nuts_diagnostics(idata, fit_s: float, timings: dict[str, float],
                     truth: dict[str, float]) -> dict[str, Any]:
    """Per-parameter summary (against the simulating values ``truth``), ESS per second,
    gradient evaluations, divergences."""
    import arviz as az

    # truth keys are summary rows: "r", or "r_segment[s00]" of the variable "r_segment"
    names = list(dict.fromkeys(name.split("[")[0] for name in truth))
    summ = az.summary(idata, var_names=names, kind="all", hdi_prob=0.94, round_to="none")
    sampling_s = timings.get("sampling_s", _sampling_time(idata))
    params = {}
    for name, true in truth.items():
        row = summ.loc[name]
        mean, sd = float(row["mean"]), float(row["sd"])
        params[name] = {
            "true": true, "estimate": mean, "sd": sd,
            "rel_error": (mean - true) / true,
            "z": (mean - true) / sd if sd > 0 else None,
            "hdi_3%": float(row["hdi_3%"]), "hdi_97%": float(row["hdi_97%"]),
            "truth_in_hdi94": bool(row["hdi_3%"] <= true <= row["hdi_97%"]),
            "r_hat": float(row["r_hat"]), "ess_bulk": float(row["ess_bulk"]),
            "ess_tail": float(row["ess_tail"]),
            "ess_bulk_per_s": float(row["ess_bulk"]) / fit_s,
        }
    draws = _sum_stat(idata, "sample_stats", ("n_steps", "tree_size"))
    tune = _sum_stat(idata, "warmup_sample_stats", ("n_steps", "tree_size"))
    div = _sum_stat(idata, "sample_stats", ("diverging",))
    ess_bulk = [p["ess_bulk"] for p in params.values()]
    return {
        "params": params,
        "sampling_s": sampling_s,
        "setup_s": None if sampling_s is None else fit_s - sampling_s,
        "compile_s": timings.get("compile_s"),
        "n_grad_evals_draws": draws,
        "n_grad_evals_tune": tune,
        "n_grad_evals": None if draws is None or tune is None else draws + tune,
        "divergences": div,
        "max_r_hat": max(p["r_hat"] for p in params.values()),
        "min_ess_bulk": min(ess_bulk),
        "min_ess_tail": min(p["ess_tail"] for p in params.values()),
        "min_ess_bulk_per_s": min(ess_bulk) / fit_s,
        "min_ess_bulk_per_sampling_s": None if not sampling_s else min(ess_bulk) / sampling_s,
    }


def point_diagnostics(est: dict[str, float], se: dict[str, float] | None,
                      truth: dict[str, float]) -> dict[str, Any]:
    params = {}
    for name, true in truth.items():
        value = float(est[name])
        s = None if se is None else float(se[name])
        params[name] = {
            "true": true, "estimate": value, "se": s,
            "rel_error": (value - true) / true,
            "z": (value - true) / s if s and math.isfinite(s) and s > 0 else None,
        }
    return {"params": params}


def worker(args: argparse.Namespace) -> int:
    """Run one cell and write its measurements to ``args.result`` (JSON)."""
    cell = CELLS[args.worker]

    def body(phase: _common.Phases, out: dict[str, Any]) -> None:
        phase("import")
        t0 = time.perf_counter()
        import numba

        if cell.tool == "clvbayes":
            import clvbayes  # noqa: F401
        elif cell.tool == "pymc-marketing":
            import pymc_marketing.clv  # noqa: F401
        else:
            import lifetimes  # noqa: F401
        import arviz  # noqa: F401
        import pandas  # noqa: F401

        timings: dict[str, float] = {}
        if cell.sampler == "nutpie":
            _instrument_nutpie(timings)

        out["import_s"] = time.perf_counter() - t0
        phase("load")
        df, out["load_s"] = _common.time_once(lambda: load_frame(Path(args.data)))
        out["threads"] = {
            "numba_num_threads": numba.get_num_threads(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
        }
        phase("fit")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            idata, extra = FITTERS[cell.tool](cell, df, args)
            fit_s = time.perf_counter() - t0
        out["fit_s"] = fit_s
        phase("diagnostics")
        out["warnings"] = _common.warning_lines(caught) + extra.pop("warnings", [])
        if idata is not None:
            out |= nuts_diagnostics(idata, fit_s, timings, MODELS[args.model].params)
        else:
            out |= point_diagnostics(extra.pop("estimates"), extra.pop("se", None),
                                     MODELS[args.model].params)
        out |= extra

    # The parent reads the phase at the end from the phase file ("done" when it finished).
    return _common.run_worker(Path(args.result), body, out={"status": "error"},
                              phase_fields=False)


# --------------------------------------------------------------------------------------
# Parent: run a cell in a subprocess with caps
# --------------------------------------------------------------------------------------


def run_cell(cell: Cell, n: int, data_path: Path, args: argparse.Namespace) -> Record:
    """Run ``cell`` at size ``n`` in a subprocess, polling its memory, enforcing the caps."""
    rec = Record(cell.key, cell_label(cell, MODELS[args.model]), cell.tool, cell.method,
                 cell.sampler, n)
    files = _common.cell_files(CACHE_DIR / "logs" / args.out_name, f"{cell.key}_n{n}")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", cell.key,
           "--data", str(data_path), "--result", str(files.result),
           "--chains", str(args.chains), "--draws", str(args.draws), "--tune", str(args.tune),
           "--seed", str(args.seed), "--model", args.model]
    mem_cap = None if args.mem_cap_gb is None else args.mem_cap_gb * GB
    run = _common.run_subprocess_cell(cmd, files, time_cap=args.time_cap, rss_cap=mem_cap,
                                      poll=args.poll)
    rec.process_s = run.wall_s
    rec.log = run.log_name
    rec.peak_rss_polled_bytes = peak = run.peak_rss_bytes
    rec.max_processes = run.max_processes
    rec.phase_at_end = run.phase_at_end

    if run.killed:
        rec.status = "timeout" if run.killed == "timeout" else "oom"
        rec.message = (f"time cap {args.time_cap:g} s reached" if run.killed == "timeout"
                       else f"memory cap {args.mem_cap_gb:g} GB exceeded")
        rec.message += f" (in phase '{rec.phase_at_end}')"
        if rec.phase_at_end == "fit":
            rec.fit_elapsed_at_kill_s = run.phase_elapsed_at_kill_s
        rec.peak_rss_bytes = peak
        return rec

    out = run.result or {}
    if out:
        _common.update_fields(rec, out)
        rec.peak_rss_bytes = max(peak, out.get("maxrss_self_bytes") or 0)
    else:
        rec.peak_rss_bytes = peak
        if run.returncode == -signal.SIGKILL:
            rec.status = "oom"
            rec.message = "killed by signal 9 (out of memory?): " + run.last_log_line()
        else:
            rec.status = "error"
            rec.message = f"exit code {run.returncode}: " + run.last_log_line()
    return rec


# --------------------------------------------------------------------------------------
# Ratios and targets
# --------------------------------------------------------------------------------------

FAILED = ("timeout", "oom")


def _find(records: list[dict[str, Any]], key: str, n: int) -> dict[str, Any] | None:
    return next((r for r in records if r["key"] == key and r["n"] == n), None)


def time_lower_bound(records: list[dict[str, Any]], key: str, n: int) -> float | None:
    """A lower bound of the fit time of a failed or skipped cell.

    Killed while fitting: the time it had fitted. Skipped: the bound of the smaller size
    that failed (a larger population does not fit faster). Else ``None``.
    """
    rec = _find(records, key, n)
    if rec is None:
        return None
    if rec["status"] in FAILED:
        return rec.get("fit_elapsed_at_kill_s")
    if rec["status"] == "skipped":
        smaller = [r for r in records if r["key"] == key and r["n"] < n and r["status"] in FAILED]
        bounds = [r.get("fit_elapsed_at_kill_s") for r in smaller]
        bounds = [b for b in bounds if b is not None]
        return max(bounds) if bounds else None
    return None


def speedup(records: list[dict[str, Any]], key: str, anchor: str, n: int) -> dict[str, Any] | None:
    """``anchor fit_s / key fit_s`` at size ``n``; a lower bound when the anchor failed."""
    rec, anc = _find(records, key, n), _find(records, anchor, n)
    if rec is None or anc is None or rec["status"] != "ok":
        return None
    if anc["status"] == "ok":
        return {"value": anc["fit_s"] / rec["fit_s"], "lower_bound": False}
    bound = time_lower_bound(records, anchor, n)
    if bound is None:
        return None
    return {"value": bound / rec["fit_s"], "lower_bound": True}


def evaluate_targets(records: list[dict[str, Any]], cores: int,
                     nuts: tuple[int, int, int] = (4, 1000, 1000),
                     model: str = "bgnbd") -> list[dict[str, Any]]:
    """The issue's targets, each with the measured values and ``met`` True/False/None.

    ``nuts`` is the run's ``(chains, draws, tune)``; the timing targets are for 4 x 1000 +
    1000, so with other settings they are reported but not decided. The speed-up and 10^7
    targets are BG/NBD's; another ``model`` has the 10^6 time target alone.
    """
    out = []
    big, huge = 1_000_000, 10_000_000

    rec = _find(records, "clvbayes_nutpie", big)
    t = {"target": ("" if model == "bgnbd" else f"{MODELS[model].label}: ")
         + "10^6 customers, full NUTS (4 x 1000 + 1000) <= 3 min on 2 cores "
           "(clvbayes, nutpie)", "n": big, "met": None}
    if rec is None:
        t["measured"] = "not run (size or tool not in this run)"
    elif rec["status"] != "ok":
        t |= {"measured": f"{rec['status']}: {rec['message']}", "met": False}
    else:
        t |= {"measured": f"fit {rec['fit_s']:.1f} s (process {rec['process_s']:.1f} s) on "
                          f"{cores} logical CPUs", "value_s": rec["fit_s"],
              "met": rec["fit_s"] <= 180.0}
    out.append(t)
    if model != "bgnbd":
        return _undecided_unless_target_run(out, nuts) + [_ess_reported(records)]

    t = {"target": ">= 30x faster than PyMC-Marketing with nutpie on the same data "
                   "(10^6 customers, NUTS fit time)", "n": big, "met": None}
    sp = speedup(records, "clvbayes_nutpie", "pmm_nutpie", big)
    if sp is None:
        t["measured"] = "not available (a cell is missing or clvbayes failed)"
    else:
        t |= {"measured": ("> " if sp["lower_bound"] else "") + f"{sp['value']:.1f}x",
              "value": sp["value"], "lower_bound": sp["lower_bound"]}
        if not sp["lower_bound"]:
            t["met"] = sp["value"] >= 30.0
        elif sp["value"] >= 30.0:
            t["met"] = True
        else:
            t["measured"] += " (PyMC-Marketing did not finish; bound too weak to decide)"
    out.append(t)

    rec = _find(records, "clvbayes_nutpie", huge)
    t = {"target": "10^7 customers, full NUTS <= 15 min with <= 4 GB peak memory (clvbayes, "
                   "nutpie)", "n": huge, "met": None}
    if rec is None:
        t["measured"] = "not run (size or tool not in this run)"
    elif rec["status"] != "ok":
        t |= {"measured": f"{rec['status']}: {rec['message']}", "met": False}
    else:
        t |= {"measured": f"fit {rec['fit_s']:.1f} s (process {rec['process_s']:.1f} s), peak "
                          f"{rec['peak_rss_bytes'] / GB:.2f} GB",
              "value_s": rec["fit_s"], "peak_gb": rec["peak_rss_bytes"] / GB,
              "met": rec["fit_s"] <= 900.0 and rec["peak_rss_bytes"] <= 4 * GB}
    out.append(t)
    return _undecided_unless_target_run(out, nuts) + [_ess_reported(records)]


def _undecided_unless_target_run(targets: list[dict[str, Any]],
                                 nuts: tuple[int, int, int]) -> list[dict[str, Any]]:
    """The timing targets are for 4 x 1000 + 1000: with other settings, not decided."""
    if nuts != (4, 1000, 1000):
        for t in targets:
            if t["met"] is not None:
                t["met"] = None
                t["measured"] += (f" (run with {nuts[0]} x {nuts[1]} + {nuts[2]}, not the "
                                  "target's 4 x 1000 + 1000)")
    return targets


def _ess_reported(records: list[dict[str, Any]]) -> dict[str, Any]:
    nuts_ok = [r for r in records if r["method"] == "nuts" and r["status"] == "ok"]
    t = {"target": "ESS per second reported", "met": None}
    if nuts_ok:
        have = all(r.get("min_ess_bulk_per_s") is not None for r in nuts_ok)
        t |= {"measured": f"min bulk ESS / fit s for {len(nuts_ok)} successful NUTS cells",
              "met": have}
    else:
        t["measured"] = "no successful NUTS cell"
    return t


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _ratio(sp: dict[str, Any] | None) -> str:
    if sp is None:
        return "—"
    return ("> " if sp["lower_bound"] else "") + _f(sp["value"]) + "×"


def _param_cell(p: dict[str, Any] | None) -> str:
    if not p:
        return "—"
    z = p.get("z")
    return f"{p['estimate']:.4g} ({100 * p['rel_error']:+.1f}%" + (
        f", z {z:+.1f})" if z is not None else ")")


def _status(r: dict[str, Any]) -> str:
    if r["status"] == "ok":
        return "ok"
    msg = (r.get("message") or "").replace("|", "/")
    return f"**{r['status']}**: {msg}"


def render_markdown(payload: dict[str, Any]) -> str:
    cfg = payload["config"]
    records = payload["records"]
    sysinfo = payload["system"]
    spec = MODELS[cfg.get("model", "bgnbd")]
    names = spec.names
    lines = [
        f"# {spec.label} fit scaling: clvbayes vs PyMC-Marketing vs lifetimes",
        "",
        f"Generated by `python benchmarks/fit_scaling.py {cfg['argv']}` on "
        f"{sysinfo['date_utc']}.",
        "",
        f"Every cell is a fresh process with a {cfg['time_cap']:g} s wall-time cap"
        + (f" and a {cfg['mem_cap_gb']:g} GB memory cap" if cfg["mem_cap_gb"] else "")
        + f". NUTS: {cfg['chains']} chains × {cfg['draws']} draws + {cfg['tune']} tuning "
        f"steps, seed {cfg['seed']}. **fit s**: model construction + compilation + "
        "optimisation/sampling, from a ready data frame (no imports, no data loading); "
        "**compile s**: `nutpie.compile_pymc_model` (nutpie cells); **sampling s**: "
        "`nutpie.sample`, or PyMC's own `sampling_time`; **process s**: the whole "
        "subprocess. **peak MB**: peak RSS of the process tree (MB = 10^6 bytes). "
        "**grad evals**: leapfrog steps, draws + tuning. **min ESS/s**: smallest bulk ESS "
        f"over ({', '.join(names)}) / fit s; "
        "**min ESS/sampling s**: the same / sampling s. "
        "Parameters: estimate (posterior mean for NUTS) with relative error vs the simulating "
        "value and z = error / (posterior sd or MLE standard error). **× vs PMM**: PyMC-"
        "Marketing's fit time / this fit time (\"> X\": PyMC-Marketing was killed, X from the "
        "time it had spent fitting); **× vs lifetimes**: likewise, lifetimes' MLE fit time / "
        "clvbayes' MLE fit time.",
        "",
    ]
    header = ["cell", "status", "fit s", "compile s", "sampling s", "process s", "peak MB",
              "grad evals", "max r_hat", "min ESS bulk", "min ESS/s", "min ESS/sampling s",
              "div.", *names, "× vs PMM nutpie", "× vs PMM NUTS", "× vs lifetimes"]
    for n in cfg["sizes"]:
        rows = []
        for r in (r for r in records if r["n"] == n):
            ok = r["status"] == "ok"
            nuts = r["method"] == "nuts"
            rows.append([
                r["label"], _status(r),
                _f(r["fit_s"]) if ok else (
                    "> " + _f(r["fit_elapsed_at_kill_s"]) if r.get("fit_elapsed_at_kill_s")
                    else "—"),
                _f(r["compile_s"]), _f(r["sampling_s"]), _f(r["process_s"]),
                _f(r["peak_rss_bytes"] / 1e6) if r.get("peak_rss_bytes") else "—",
                _f(r["n_grad_evals"] or r["n_grad_evals_draws"], 4),
                _f(r["max_r_hat"], 4), _f(r["min_ess_bulk"]), _f(r["min_ess_bulk_per_s"]),
                _f(r["min_ess_bulk_per_sampling_s"]),
                _f(r["divergences"]) if nuts and ok else "—",
                *(_param_cell(r["params"].get(k)) if ok else "—" for k in names),
                _ratio(speedup(records, r["key"], "pmm_nutpie", n))
                if nuts and r["tool"] == "clvbayes" else "—",
                _ratio(speedup(records, r["key"], "pmm_pymc", n))
                if nuts and r["tool"] == "clvbayes" else "—",
                _ratio(speedup(records, r["key"], "lifetimes_mle", n))
                if r["method"] == "mle" and r["tool"] == "clvbayes" else "—",
            ])
        if not rows:
            continue
        d = payload["data"].get(str(n), {})
        lines += [
            f"## {n:,} customers",
            "",
            f"Mean frequency {d.get('mean_frequency', float('nan')):.3f}, "
            f"{100 * d.get('share_zero_repeat', float('nan')):.1f}% without repeat purchase, "
            f"max frequency {d.get('max_frequency')}, {d.get('n_unique_rows', 0):,} unique "
            f"(x, t_x, T) rows; {d.get('n_repeat_continuous', 0) - d.get('n_repeat_daily', 0):,}"
            f" of {d.get('n_repeat_continuous', 0):,} repeat purchases merged by the day grid"
            + ("." if spec.name == "bgnbd" else " (day 0 only)."),
            "",
            _common.markdown_table(header, rows),
            "",
        ]
    lines += ["## Targets (from the issue)", ""]
    mark = {True: "**met**", False: "**not met**", None: "not determined"}
    lines += [f"- {t['target']}: {t['measured']} — {mark[t['met']]}." for t in payload["targets"]]
    versions = ", ".join(f"{k} {v}" for k, v in payload["versions"].items())
    lines += [
        "",
        "## Notes",
        "",
        *_data_notes(spec),
        "- clvbayes fits compressed unique (x, t_x, T) rows with the Numba kernel; PyMC-"
        "Marketing and lifetimes evaluate every customer row. PyMC-Marketing uses its default "
        f"priors ({spec.pmm_priors}), clvbayes its own defaults, so "
        "posteriors differ slightly; MLE and MAP with flat-ish priors agree.",
        "- Peak memory sums the RSS of the worker and its children (PyMC's default sampler runs "
        "chains in separate processes; shared pages then count once per process), polled every "
        f"{cfg['poll']:g} s, or the worker's own ru_maxrss if larger.",
        f"- Machine: {sysinfo['cpu_model']}, {sysinfo['logical_cpus']} logical CPUs, load "
        f"average {', '.join(f'{v:.2f}' for v in sysinfo.get('load_average_1_5_15', []))} at "
        "the end of the run; shared machines make seconds noisy.",
        f"- Versions: {versions}.",
        "",
    ]
    return "\n".join(lines)


def _data_notes(spec: ModelSpec) -> list[str]:
    values = ", ".join(str(v) for v in spec.params.values())
    if spec.name == "bgnbd":
        return [
            f"- Data: BG/NBD at the CDNOW MLE (r, alpha, a, b) = ({values}) per week, T uniform "
            f"on 1..{WINDOW_DAYS} days, purchases recorded by calendar day with same-day "
            "purchases merged (see the module docstring); identical data for every cell of a "
            "size (cached .npz).",
            "- The day grid makes the data slightly non-BG/NBD, so relative errors include a "
            "discretisation bias that does not shrink with n; large |z| at large n show it.",
        ]
    return [
        f"- Data: {spec.label} at the {spec.source}, ({', '.join(spec.names)}) = ({values}) per "
        f"week, simulated by the family's own simulator; T uniform on 1..{WINDOW_DAYS} days "
        "(the same T as the BG/NBD data of this size and seed), recency rounded down to the "
        "day, a customer whose repeat purchases all fall on day 0 counted without repeat "
        "purchase (see the module docstring); identical data for every cell of a size (cached "
        ".npz).",
        f"- Rounding the recency down to the day makes the data slightly non-{spec.label}, so "
        "relative errors include a discretisation bias that does not shrink with n; large |z| "
        "at large n show it.",
    ]


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    _common.add_run_arguments(p, sizes=[10**4, 10**5, 10**6, 10**7], tools=None, tools_default=["all"],
                              tools_help=f"cells or groups: {', '.join([*CELLS, *TOOL_GROUPS])}", seed=1,
                              time_cap=1800.0, mem_cap_gb=None, poll=0.2, out_name=None)
    p.add_argument("--model", choices=list(MODELS), default="bgnbd",
                   help="model family whose data are simulated and fitted (default out-name: fit_scaling for "
                        "bgnbd, else fit_scaling_<model>)")
    # internal: run one cell
    _common.add_worker_arguments(p, CELLS)
    return p.parse_args(argv)


def selected_cells(tools: list[str]) -> list[Cell]:
    keys: list[str] = []
    for t in tools:
        if t in TOOL_GROUPS:
            keys += TOOL_GROUPS[t]
        elif t in CELLS:
            keys.append(t)
        else:
            raise SystemExit(f"unknown tool {t!r}; choose from {[*CELLS, *TOOL_GROUPS]}")
    return [CELLS[k] for k in CELLS if k in keys]  # fixed order


def main(argv: list[str] | None = None) -> dict[str, Any] | int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    cells = selected_cells(args.tools)
    sizes = sorted(set(args.sizes))
    spec = MODELS[args.model]
    if args.out_name is None:
        args.out_name = "fit_scaling" if spec.name == "bgnbd" else f"fit_scaling_{spec.name}"
    out = _common.RESULTS_DIR / args.out_name
    payload: dict[str, Any] = {
        "benchmark": f"{spec.name}_fit_scaling",
        "config": {
            "argv": " ".join(sys.argv[1:] if argv is None else argv),
            "model": spec.name,
            "sizes": sizes, "cells": [c.key for c in cells], "chains": args.chains,
            "draws": args.draws, "tune": args.tune, "seed": args.seed,
            "time_cap": args.time_cap, "mem_cap_gb": args.mem_cap_gb, "poll": args.poll,
        },
        "params": spec.params,
        "data": {},
        "records": [],
        "targets": [],
        "versions": _common.package_versions(PACKAGES),
        "system": {},
    }
    blocked: dict[str, str] = {}

    def write() -> None:
        payload["system"] = _common.system_info()
        cores = payload["system"]["logical_cpus"]
        payload["targets"] = evaluate_targets(payload["records"], cores,
                                              (args.chains, args.draws, args.tune), spec.name)
        _common.write_json(out.with_suffix(".json"), payload)
        out.with_suffix(".md").write_text(render_markdown(payload))

    for n in sizes:
        data_path, meta = ensure_data(n, args.seed, spec.name)
        payload["data"][str(n)] = meta
        for cell in cells:
            if cell.key in blocked:
                rec = Record(cell.key, cell_label(cell, spec), cell.tool, cell.method,
                             cell.sampler, n, status="skipped", message=blocked[cell.key])
            else:
                print(f"[n={n:,}] {cell.key} ...", flush=True)
                rec = run_cell(cell, n, data_path, args)
                if rec.status in FAILED:
                    blocked[cell.key] = f"smaller size timed out or ran out of memory (n={n:,})"
            print(f"  {rec.status}" + (f": {rec.message}" if rec.message else "")
                  + (f"; fit {rec.fit_s:.2f} s" if rec.fit_s is not None else "")
                  + (f"; peak {rec.peak_rss_bytes / 1e6:.0f} MB" if rec.peak_rss_bytes else ""),
                  flush=True)
            payload["records"].append(asdict(rec))
            write()
    print(out.with_suffix(".md").read_text())
    return payload


if __name__ == "__main__":
    result = main()
    if isinstance(result, int):
        sys.exit(result)
