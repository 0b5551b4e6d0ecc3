"""Benchmark: CLV + customer equity + P(alive) over a posterior, clvbayes vs PyMC-Marketing.

What it measures
----------------
For every population size ``n`` (10^4, 10^5, 10^6 by default) and 1000 joint posterior
draws, in a fresh subprocess per *cell* with a wall-time cap and an address-space limit:
the wall time and the peak memory of computing, for every customer, the posterior of the
customer lifetime value (CLV) and of P(alive), and the posterior of customer equity (the
per-draw sum of the CLVs):

===============  ========================================================================
cell             what is run
===============  ========================================================================
``clvbayes``     ``clvbayes.value.quantities.customer_metrics(bgnbd, gamma_gamma, df,
                 quantities=("clv", "p_alive"), horizon=H, discount_rate=0.10,
                 time_unit="W", segment=None, keep_draws=False)`` (per-customer mean, sd,
                 5/50/95 % quantiles and 94 % HDI of each; per-draw totals), then
                 ``clvbayes.value.equity.customer_equity(res["clv"])`` (the equity
                 posterior from those per-draw totals; when that module is missing, the
                 totals ``res["clv"].total`` themselves, which are the same thing). Called
                 twice in the same process: the *first call* includes Numba compilation or
                 loading from Numba's on-disk cache, the *second call* is warm.
``pmm``          PyMC-Marketing 0.19: ``GammaGammaModel.expected_customer_lifetime_value(
                 bg, df, future_t=12, discount_rate=d_m, time_unit="W")`` (its public CLV;
                 it calls ``pymc_marketing.clv.utils.customer_lifetime_value`` after
                 collapsing the Gamma-Gamma expected spend to its posterior mean per
                 customer), ``BetaGeoModel.expected_probability_alive(df)``, the equity
                 ``clv.sum("customer_id")``, and the same per-customer summaries with
                 xarray and ArviZ (mean, sd, ``quantile([.05, .5, .95])``, ``az.hdi(.94)``).
large draws     10^6 customers x 2000 draws, clvbayes only (``--clvbayes-only``): the
                 issue's memory target for a larger posterior.
``agreement``    10^4 customers (``--check-n``): both libraries' per-customer CLV and
                 P(alive) posterior means compared, with the difference decomposed into
                 its causes (below).
===============  ========================================================================

Per cell (``Record`` below): the time of every phase (``setup_s``: building the model
objects and attaching the draws; clvbayes ``first_s``/``second_s``, each metrics + equity;
PyMC-Marketing ``clv_s``, ``p_alive_s``, ``equity_s``, ``summaries_s`` and ``total_s``,
their sum); the peak resident memory (RSS) of the cell's process, polled every ``--poll``
s, or its own ``ru_maxrss`` if larger, and ``baseline_rss_bytes``, the process's
``ru_maxrss`` just before the timed work (imports, data, models), so that
``peak - baseline`` is the memory of the computation itself; posterior means of equity,
of the mean CLV and of the mean P(alive) (both tools must agree).

Settings made like for like
---------------------------
- **Posterior.** A synthetic posterior instead of a NUTS fit (a 10^6-customer fit is what
  ``fit_scaling.py`` measures): 4 chains x 250 draws (``--draws 1000``) of every parameter,
  ``truth x exp(0.03 z)`` with independent standard normal ``z`` (seeded), around the values
  the data are simulated from. Both tools get the same arrays (PyMC-Marketing's
  Gamma-Gamma calls gamma ``v``): clvbayes through ``model.idata_.posterior``,
  PyMC-Marketing through ``model.idata.posterior``.
- **Horizon.** PyMC-Marketing's CLV steps through ``future_t`` *months*, a month being
  4.345 time units for ``time_unit="W"``; 12 months are H = 12 x 4.345 = 52.14 weeks, and
  clvbayes is given that horizon.
- **Discounting.** clvbayes takes an effective annual rate d = 10 % and discounts
  continuously at δ = ln(1 + d) · 7 / 365.25 per week. PyMC-Marketing takes a rate per
  month and discounts all the purchases of month k at (1 + d_m)^-k. It is given
  d_m = (1 + d)^(4.345 · 7 / 365.25) - 1 = 0.79 %, so that both discount factors are equal
  at every month end; PyMC-Marketing still discounts a month's purchases as if they all
  happened at its end (about half a month too much, ~0.4 % lower CLV).
- **Spend.** PyMC-Marketing multiplies every draw of the expected purchases by one number
  per customer, the posterior *mean* of the Gamma-Gamma expected spend; clvbayes pairs
  every BG/NBD draw with a Gamma-Gamma draw (the joint posterior). Means agree up to the
  sample covariance of independent draws; PyMC-Marketing's CLV intervals omit the spend
  uncertainty.

The ``agreement`` cell separates the causes at 10^4 customers: (A) clvbayes CLV; (B)
PyMC-Marketing CLV; (C) clvbayes' discounted expected purchases (quantity
``discounted_purchases``, continuous discounting) per draw x PyMC-Marketing's per-customer
spend, i.e. PyMC-Marketing's spend convention with clvbayes' discounting; (D) PyMC-
Marketing's own monthly sum rebuilt from clvbayes' ``expected_purchases`` at the 12 month
ends x the same spend. D vs B checks the implementations (expected purchases, P(alive)),
C vs B is the discounting convention, A vs C the spend convention. It does this for d = 0
(no discounting: PyMC-Marketing then takes one step to the horizon, and A, B, C should
agree to the sampling covariance only) and for the benchmark's d.

Data
----
Customers simulated with :func:`clvbayes.simulate_customers` at the CDNOW estimates, BG/NBD
``(r, alpha, a, b) = (0.2425945, 4.4136019, 0.7929199, 2.4258881)`` per week (Fader, Hardie
& Lee 2005, Marketing Science 24(2)) and Gamma-Gamma ``(p, q, gamma) = (6.25, 3.74, 15.44)``
(Fader, Hardie & Lee 2005, JMR 42(4)); ``T`` on the day grid of a 52-week window (``T_days``
uniform on 1..364 from ``numpy.random.default_rng(seed)``, ``T = T_days / 7``, as in
``fit_scaling.py``), frequency, recency (continuous) and mean repeat spend from the
simulation (``monetary_value`` 0 for customers without repeat purchases: both libraries
use the population mean spend for them). Cached as
``benchmarks/.cache/clv_scaling_n{n}_seed{seed}.npz``.

Failures
--------
Each cell runs with ``RLIMIT_AS = --mem-cap-gb`` (an allocation beyond it raises
``MemoryError``: status ``oom``), its RSS is polled and the process group killed above the
same cap (``mem-cap``) or after the time cap (``timeout``; ``--time-cap`` for clvbayes,
``--pmm-time-cap`` for PyMC-Marketing); a process killed by a signal we did not send is
``killed``. The phase it was in and the seconds it had spent there are recorded. After a
``timeout`` a tool is not run at larger sizes (``skipped``); after ``oom`` it is, because
that failure is quick and its size is part of the result.

Numba cache: the clvbayes cells use their own ``NUMBA_CACHE_DIR``
(``benchmarks/.cache/numba_<out-name>``), emptied at the start of a run, so the first
clvbayes cell's first call compiles and later cells' first calls load from that on-disk
cache, as a new process of a user would. Each first call records which it was: ``compiled
(k files)`` when Numba wrote k cache files during it (it compiled), else ``cached``.

Usage
-----
``python benchmarks/clv_scaling.py [--sizes 1e4 1e5 1e6] [--draws 1000]
[--clvbayes-only 1000000x2000] [--check-n 10000] [--mem-cap-gb 10] [--pmm-time-cap 1800]``

Writes ``benchmarks/results/<out-name>.{json,md}`` (default ``clv_scaling``), rewritten
after every cell; worker logs in ``benchmarks/.cache/logs/<out-name>/``. Smoke test::

    python benchmarks/clv_scaling.py --sizes 1e4 --clvbayes-only --check-n 0 \\
        --out-name clv_scaling_smoke
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import _common
from _common import fmt_number as _f, maxrss_bytes as _maxrss_bytes, parse_size as _size  # noqa: E402

#: CDNOW MLE in weeks: Fader, Hardie & Lee (2005), Marketing Science 24(2), section 4.
BG_PARAMS = {"r": 0.2425945, "alpha": 4.4136019, "a": 0.7929199, "b": 2.4258881}
#: CDNOW Gamma-Gamma estimates: Fader, Hardie & Lee (2005), JMR 42(4), section 4.
GG_PARAMS = {"p": 6.25, "q": 3.74, "gamma": 15.44}
JITTER = 0.03  # lognormal sd of the synthetic posterior draws
CHAINS = 4
WINDOW_DAYS = 364  # 52 weeks
ANNUAL_RATE = 0.10  # clvbayes: effective annual discount rate
DAYS_PER_YEAR = 365.25
PMM_MONTH = 4.345  # PyMC-Marketing's weeks per month (its `factor` for time_unit="W")
MONTHS = 12  # PyMC-Marketing future_t
HORIZON_WEEKS = MONTHS * PMM_MONTH  # 52.14 weeks, what 12 PMM months are
PROBS = (0.05, 0.5, 0.95)
HDI_PROB = 0.94
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
PACKAGES = ["clvbayes", "numpy", "numba", "scipy", "pandas", "xarray", "arviz", "pymc",
            "pytensor", "pymc-marketing", "psutil"]
GB = 1e9


def pmm_monthly_rate(annual: float) -> float:
    """PyMC-Marketing's per-month rate whose factor (1 + d_m)^-k equals clvbayes'
    e^{-δ · 4.345 k} at every month end k (module docstring)."""
    return (1.0 + annual) ** (PMM_MONTH * 7.0 / DAYS_PER_YEAR) - 1.0


@dataclass
class Record:
    """Everything measured for one cell (``None``: not measured / not applicable)."""

    key: str  # clvbayes / pmm / agreement
    n: int
    draws: int
    status: str = "pending"  # ok / oom / mem-cap / timeout / killed / error / skipped
    message: str | None = None
    phase_at_end: str | None = None
    phase_elapsed_at_end_s: float | None = None  # seconds spent in that phase when it ended
    phases_s: dict[str, float] = field(default_factory=dict)  # completed phases
    # times (s)
    import_s: float | None = None
    load_s: float | None = None
    setup_s: float | None = None
    first_s: float | None = None  # clvbayes: metrics + equity, first call
    second_s: float | None = None  # clvbayes: the same, second call
    first_cpu_s: float | None = None  # CPU seconds of the process (all threads) in that call
    second_cpu_s: float | None = None
    metrics_first_s: float | None = None
    metrics_second_s: float | None = None
    equity_second_s: float | None = None
    clv_s: float | None = None  # pmm
    p_alive_s: float | None = None
    equity_s: float | None = None
    summaries_s: float | None = None
    total_s: float | None = None  # pmm: clv + p_alive + equity + summaries
    clv_cpu_s: float | None = None  # pmm: CPU seconds of the clv phase
    total_cpu_s: float | None = None  # pmm: CPU seconds of clv .. summaries
    load_avg_start: float | None = None  # 1-minute load average when the cell started
    load_avg_end: float | None = None
    process_s: float | None = None
    numba_cache: str | None = None  # first call: "compiled (k files)" or "cached"
    equity_via: str | None = None
    kernels_second_s: dict[str, float] = field(default_factory=dict)  # clvbayes, second call
    n_unique_xT: int | None = None  # unique (frequency, T) keys of the factor table
    code_hash: str | None = None  # sha256 of clvbayes' value engine + CLV kernels (12 hex)
    # memory (bytes)
    peak_rss_bytes: int | None = None
    peak_rss_polled_bytes: int | None = None
    maxrss_self_bytes: int | None = None
    baseline_rss_bytes: int | None = None
    # results (sanity: both tools must agree)
    equity_mean: float | None = None
    equity_sd: float | None = None
    mean_clv: float | None = None
    mean_p_alive: float | None = None
    nonfinite: int | None = None
    agreement: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    threads: dict[str, Any] = field(default_factory=dict)
    log: str | None = None


# --------------------------------------------------------------------------------------
# Data and posterior
# --------------------------------------------------------------------------------------


def ensure_data(n: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Cached simulated customers of size ``n`` (generated on first use) and a summary."""
    path = CACHE_DIR / f"clv_scaling_n{n}_seed{seed}.npz"

    def make() -> tuple[dict[str, Any], dict[str, Any]]:
        import clvbayes

        print(f"simulating {n:,} customers (seed {seed}) ...", flush=True)
        t0 = time.perf_counter()
        T_days = np.random.default_rng(seed).integers(1, WINDOW_DAYS + 1, size=n)
        sim = clvbayes.simulate_customers(*BG_PARAMS.values(), T_days / 7.0, **GG_PARAMS, seed=seed)
        x = sim["frequency"].to_numpy()
        meta = {
            "n_customers": n, "seed": seed, "mean_frequency": float(x.mean()),
            "share_zero_repeat": float(np.mean(x == 0)), "max_frequency": int(x.max()),
            "mean_T_weeks": float(T_days.mean() / 7.0),
            "mean_monetary_value_repeaters": float(sim["monetary_value"].to_numpy()[x > 0].mean()),
            "simulation_s": time.perf_counter() - t0,
        }
        arrays = {"frequency": x.astype(np.int32), "recency": sim["recency"].to_numpy(),
                  "T_days": T_days.astype(np.int32), "monetary_value": sim["monetary_value"].to_numpy()}
        print(f"  {meta['simulation_s']:.1f} s", flush=True)
        return arrays, meta

    return path, _common.cached_npz(path, make)


def load_frame(path: Path):
    """The customer summary: index ``customer_id``; frequency, recency, T (weeks), monetary_value."""
    import pandas as pd

    with np.load(path) as f:
        df = pd.DataFrame({
            "frequency": f["frequency"].astype(np.float64),
            "recency": f["recency"],
            "T": f["T_days"] / 7.0,
            "monetary_value": f["monetary_value"],
        })
    df.index.name = "customer_id"
    return df


def synthetic_posterior(draws: int, seed: int):
    """``(bgnbd, gamma_gamma)`` xarray Datasets of ``CHAINS x draws/CHAINS`` draws each
    (module docstring); the same arrays for every tool."""
    import xarray as xr

    if draws % CHAINS:
        raise SystemExit(f"--draws must be a multiple of {CHAINS}")
    per_chain = draws // CHAINS
    rng = np.random.default_rng([seed, 2024])
    coords = {"chain": np.arange(CHAINS), "draw": np.arange(per_chain)}

    def ds(params: dict[str, float]) -> xr.Dataset:
        return xr.Dataset(
            {k: (("chain", "draw"), v * np.exp(JITTER * rng.standard_normal((CHAINS, per_chain))))
             for k, v in params.items()},
            coords=coords,
        )

    return ds(BG_PARAMS), ds(GG_PARAMS)


# --------------------------------------------------------------------------------------
# Worker (one cell, in its own process)
# --------------------------------------------------------------------------------------


def _clvbayes_models(df, bgp, ggp):
    import arviz as az

    import clvbayes

    bg = clvbayes.BetaGeoModel(df)
    bg.idata_ = az.InferenceData(posterior=bgp)
    gg = clvbayes.GammaGammaModel(df)
    gg.idata_ = az.InferenceData(posterior=ggp)
    return bg, gg


def _clvbayes_equity():
    try:
        from clvbayes.value.equity import customer_equity
    except ImportError:
        return None
    return customer_equity


def _time_kernels() -> dict[str, float]:
    """Accumulate the wall time of the engine's kernel calls (it looks them up on the
    module ``clvbayes.kernels.clv`` at call time): the factor table per (draw, unique
    (x, T) key), the per-block fill and the per-block summaries."""
    from clvbayes.kernels import clv as K

    acc: dict[str, float] = {}

    def timed(name: str, fn):
        def call(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                acc[name] = acc.get(name, 0.0) + time.perf_counter() - t0
        return call

    for name in ("unique_keys", "clv_factor_table", "clv_block", "clv_block_with_alive",
                 "clv_summarise"):
        if hasattr(K, name):
            setattr(K, name, timed(name, getattr(K, name)))
    return acc


def _numba_cache_files() -> int:
    """Number of files in this process's NUMBA_CACHE_DIR (new ones = compiled here)."""
    d = os.environ.get("NUMBA_CACHE_DIR")
    return sum(1 for p in Path(d).rglob("*") if p.is_file()) if d and Path(d).exists() else 0


def _clvbayes_cell(df, args, phase, out) -> None:
    from clvbayes.value.quantities import customer_metrics

    bgp, ggp = synthetic_posterior(args.draws, args.seed)
    phase("setup")
    (bg, gg), out["setup_s"] = _common.time_once(lambda: _clvbayes_models(df, bgp, ggp))
    equity_fn = _clvbayes_equity()
    out["baseline_rss_bytes"] = _maxrss_bytes()

    def metrics():
        return customer_metrics(bg, gg, df, quantities=("clv", "p_alive"), horizon=HORIZON_WEEKS,
                                discount_rate=ANNUAL_RATE, margin=1.0, time_unit="W",
                                segment=None, hdi_prob=HDI_PROB, quantiles=PROBS,
                                keep_draws=False)

    def equity(res):
        if equity_fn is not None:
            try:
                eq = equity_fn(res["clv"])
                return eq.total, "clvbayes.value.equity.customer_equity(res['clv'])"
            except Exception as exc:  # noqa: BLE001 - fall back, and say so
                out["warnings"].append(f"customer_equity failed ({type(exc).__name__}: {exc}); "
                                       "used res['clv'].total")
        return res["clv"].total, "res['clv'].total (per-draw CLV sums)"

    kernel_s = _time_kernels()
    for k, name in enumerate(("first", "second")):
        phase(f"call{k + 1}")
        kernel_s.clear()
        files0 = _numba_cache_files()
        c0 = time.process_time()
        t0 = time.perf_counter()
        res = metrics()
        t1 = time.perf_counter()
        total, out["equity_via"] = equity(res)
        t2 = time.perf_counter()
        out[f"{name}_s"] = t2 - t0
        out[f"{name}_cpu_s"] = time.process_time() - c0
        if name == "first":
            # Numba writes an index/data file for every function it compiles.
            written = _numba_cache_files() - files0
            out["numba_cache"] = f"compiled: {written} files" if written else "cached"
        out[f"metrics_{name}_s"] = t1 - t0
        if name == "second":
            out["equity_second_s"] = t2 - t1
            out["kernels_second_s"] = dict(kernel_s)
        if name == "first":
            del res, total
    phase("report")
    tot = total.to_numpy().reshape(-1)
    out["equity_mean"] = float(tot.mean())
    out["equity_sd"] = float(tot.std(ddof=1))
    out["mean_clv"] = float(res["clv"].summary["mean"].mean())
    out["mean_p_alive"] = float(res["p_alive"].summary["mean"].mean())
    out["nonfinite"] = int(sum((~np.isfinite(res[q].summary.to_numpy())).sum()
                               for q in ("clv", "p_alive")))
    from clvbayes.kernels import clv as K

    out["n_unique_xT"] = int(K.unique_keys(df["frequency"].to_numpy(), df["T"].to_numpy(), 0.0)[1].size)


def _pmm_models(df, bgp, ggp):
    import arviz as az
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    pdf = df.reset_index()
    bg = BetaGeoModel()
    bg.build_model(pdf)  # its predictions read model coords; a fitted model has it
    bg.idata = az.InferenceData(posterior=bgp)
    gg = GammaGammaModel()
    gg.idata = az.InferenceData(posterior=ggp.rename({"gamma": "v"}))
    return pdf, bg, gg


def _pmm_clv(bg, gg, pdf, rate: float):
    """PyMC-Marketing's CLV; returns (clv draws, per-customer spend it used)."""
    data = pdf.copy()  # expected_customer_lifetime_value adds a future_spend column to it
    clv = gg.expected_customer_lifetime_value(bg, data, future_t=MONTHS, discount_rate=rate,
                                              time_unit="W")
    return clv, data["future_spend"].to_numpy()


def _pmm_summaries(da):
    import arviz as az

    dims = ("chain", "draw")
    out = {
        "mean": da.mean(dims), "sd": da.std(dims, ddof=1),
        "quantiles": da.quantile(list(PROBS), dim=dims),
        "hdi": az.hdi(da, hdi_prob=HDI_PROB),
    }
    for v in out.values():
        v.load()
    return out


def _pmm_cell(df, args, phase, out) -> None:
    bgp, ggp = synthetic_posterior(args.draws, args.seed)
    phase("setup")
    (pdf, bg, gg), out["setup_s"] = _common.time_once(lambda: _pmm_models(df, bgp, ggp))
    out["baseline_rss_bytes"] = _maxrss_bytes()
    rate = pmm_monthly_rate(ANNUAL_RATE)
    phase("clv")
    c0 = time.process_time()
    (clv, _), out["clv_s"] = _common.time_once(lambda: _pmm_clv(bg, gg, pdf, rate))
    out["clv_cpu_s"] = time.process_time() - c0
    phase("p_alive")
    pa, out["p_alive_s"] = _common.time_once(lambda: bg.expected_probability_alive(pdf))
    phase("equity")
    eq, out["equity_s"] = _common.time_once(lambda: clv.sum("customer_id").values)
    phase("summaries")
    (s_clv, s_pa), out["summaries_s"] = _common.time_once(
        lambda: (_pmm_summaries(clv), _pmm_summaries(pa)))
    out["total_s"] = out["clv_s"] + out["p_alive_s"] + out["equity_s"] + out["summaries_s"]
    out["total_cpu_s"] = time.process_time() - c0
    phase("report")
    tot = np.asarray(eq).reshape(-1)
    out["equity_mean"] = float(tot.mean())
    out["equity_sd"] = float(tot.std(ddof=1))
    out["mean_clv"] = float(s_clv["mean"].mean())
    out["mean_p_alive"] = float(s_pa["mean"].mean())
    out["nonfinite"] = int(sum(int((~np.isfinite(s[k].to_array() if k == "hdi" else s[k])).sum())
                               for s in (s_clv, s_pa) for k in s))


def _rel(x: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    d = np.abs(np.asarray(x) / np.asarray(ref) - 1.0)
    s = np.asarray(x) / np.asarray(ref) - 1.0
    return {"max_abs": float(d.max()), "median": float(np.median(s)), "mean": float(s.mean()),
            "min": float(s.min()), "max": float(s.max())}


def _agreement_cell(df, args, phase, out) -> None:
    """Per-customer posterior means of both libraries and the decomposition of their
    difference (module docstring: A, B, C, D) at d = 0 and at the benchmark's rate."""
    from clvbayes.value.quantities import customer_metrics

    bgp, ggp = synthetic_posterior(args.draws, args.seed)
    phase("setup")
    bg, gg = _clvbayes_models(df, bgp, ggp)
    pdf, pbg, pgg = _pmm_models(df, bgp, ggp)
    common = {"time_unit": "W", "segment": None, "hdi_prob": HDI_PROB, "quantiles": PROBS}
    result: dict[str, Any] = {}
    for annual in (0.0, ANNUAL_RATE):
        label = f"d={annual:g}"
        rate = pmm_monthly_rate(annual)
        phase(f"clvbayes {label}")
        res = customer_metrics(bg, gg, df, quantities=("clv", "p_alive", "spend"),
                               horizon=HORIZON_WEEKS, discount_rate=annual, **common,
                               keep_draws=False)
        A = res["clv"].summary["mean"].to_numpy()
        disc = customer_metrics(bg, None, df, quantities=("discounted_purchases",),
                                horizon=HORIZON_WEEKS, discount_rate=annual, **common,
                                keep_draws=True)["discounted_purchases"].draws
        phase(f"pmm {label}")
        clv, spend = _pmm_clv(pbg, pgg, pdf, rate)
        B = clv.mean(("chain", "draw")).to_numpy()
        C = (disc.to_numpy() * spend).mean(axis=(0, 1))
        phase(f"rebuild {label}")
        # PyMC-Marketing's sum over months, from clvbayes' cumulative expected purchases.
        if annual == 0.0:
            steps = [MONTHS]
        else:
            steps = list(range(1, MONTHS + 1))
        D_draws = np.zeros_like(disc.to_numpy())
        prev = 0.0
        for k in steps:
            ep = customer_metrics(bg, None, df, quantities=("expected_purchases",),
                                  horizon=k * PMM_MONTH, **common,
                                  keep_draws=True)["expected_purchases"].draws.to_numpy()
            D_draws += (ep - prev) / (1.0 + rate) ** k
            prev = ep
        D = (D_draws * spend).mean(axis=(0, 1))
        pa_pmm = pbg.expected_probability_alive(pdf).mean(("chain", "draw")).to_numpy()
        result[label] = {
            "annual_rate": annual, "pmm_monthly_rate": rate,
            "A_clvbayes_vs_B_pmm": _rel(A, B),
            "D_rebuilt_vs_B_pmm": _rel(D, B),
            "C_continuous_vs_B_pmm": _rel(C, B),
            "A_clvbayes_vs_C_pmm_spend": _rel(A, C),
            "p_alive_clvbayes_vs_pmm": _rel(res["p_alive"].summary["mean"].to_numpy(), pa_pmm),
            "spend_clvbayes_vs_pmm": _rel(res["spend"].summary["mean"].to_numpy(), spend),
            "equity_mean_clvbayes": float(res["clv"].total.mean()),
            "equity_mean_pmm": float(clv.sum("customer_id").mean()),
        }
        result[label]["equity_rel_diff"] = (result[label]["equity_mean_clvbayes"]
                                            / result[label]["equity_mean_pmm"] - 1.0)
    out["agreement"] = result


CELL_FNS = {"clvbayes": _clvbayes_cell, "pmm": _pmm_cell, "agreement": _agreement_cell}


def _code_hash() -> str:
    """Fingerprint of the clvbayes code timed (value engine, quantities, equity, CLV
    kernels), so that cells run against different versions of it are visible."""
    import hashlib

    h = hashlib.sha256()
    for rel in ("clvbayes/kernels/clv.py", "clvbayes/value/engine.py",
                "clvbayes/value/quantities.py", "clvbayes/value/equity.py"):
        path = _common.REPO_DIR / rel
        h.update(path.read_bytes() if path.exists() else b"")
    return h.hexdigest()[:12]


def worker(args: argparse.Namespace) -> int:
    """Run one cell and write its measurements to ``args.result`` (JSON)."""

    def body(phase: _common.Phases, out: dict[str, Any]) -> None:
        phase("import")
        t0 = time.perf_counter()
        import numba
        import pandas  # noqa: F401
        import xarray  # noqa: F401

        if args.worker in ("clvbayes", "agreement"):
            import clvbayes.value.quantities  # noqa: F401
        if args.worker in ("pmm", "agreement"):
            import pymc_marketing.clv  # noqa: F401
        out["import_s"] = time.perf_counter() - t0
        out["code_hash"] = _code_hash()
        phase("load")
        df, out["load_s"] = _common.time_once(lambda: load_frame(Path(args.data)))
        out["threads"] = {
            "numba_num_threads": numba.get_num_threads(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
        }
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            CELL_FNS[args.worker](df, args, phase, out)
        out["warnings"] += _common.warning_lines(caught)

    return _common.run_worker(Path(args.result), body)


# --------------------------------------------------------------------------------------
# Parent: run a cell in a subprocess with caps
# --------------------------------------------------------------------------------------


def run_cell(key: str, n: int, draws: int, data_path: Path, args: argparse.Namespace) -> Record:
    """Run cell ``key`` in a subprocess: address-space limit, RSS polling, time cap."""
    rec = Record(key, n, draws)
    files = _common.cell_files(CACHE_DIR / "logs" / Path(args.out_name).name,
                               f"{key}_n{n}_d{draws}")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", key, "--data",
           str(data_path), "--result", str(files.result), "--draws", str(draws),
           "--seed", str(args.seed)]
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = str(_numba_cache_dir(args))
    time_cap = args.pmm_time_cap if key == "pmm" else args.time_cap
    mem_cap = int(args.mem_cap_gb * GB)
    cell = _common.run_subprocess_cell(cmd, files, env=env, time_cap=time_cap, rss_cap=mem_cap,
                                       address_space_cap=mem_cap, poll=args.poll)
    rec.load_avg_start = cell.load_avg_start[0]
    rec.process_s = cell.wall_s
    rec.load_avg_end = cell.load_avg_end[0]
    rec.log = cell.log_name
    rec.peak_rss_polled_bytes = peak = cell.peak_rss_bytes
    if cell.killed:
        rec.status = cell.killed
        rec.peak_rss_bytes = peak
        if cell.phase:
            rec.phase_at_end = cell.phase_at_end
            rec.phase_elapsed_at_end_s = cell.phase_elapsed_at_kill_s
            rec.phases_s = cell.phases_done
        rec.message = (f"time cap {time_cap:g} s reached" if cell.killed == "timeout"
                       else f"RSS above the {args.mem_cap_gb:g} GB cap")
        rec.message += f" in phase '{rec.phase_at_end}' after {rec.phase_elapsed_at_end_s or 0:.0f} s"
        return rec
    out = cell.result or {}
    if out:
        _common.update_fields(rec, out)
        rec.peak_rss_bytes = max(peak, out.get("maxrss_self_bytes") or 0)
        if rec.status != "ok" and rec.phase_at_end:
            rec.message = (rec.message or "") + (f" (in phase '{rec.phase_at_end}' after "
                                                 f"{rec.phase_elapsed_at_end_s:.1f} s)")
    else:
        rec.peak_rss_bytes = peak
        if cell.phase:
            rec.phase_at_end = cell.phase_at_end
            rec.phases_s = cell.phases_done
        rec.status, what = cell.exit_cause()
        rec.message = f"{what} in phase '{rec.phase_at_end}': " + cell.last_log_line()
    return rec


def _numba_cache_dir(args: argparse.Namespace) -> Path:
    return CACHE_DIR / f"numba_{Path(args.out_name).name}"


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------

FAILED = ("oom", "mem-cap", "timeout", "killed")


def _find(records: list[dict[str, Any]], key: str, n: int, draws: int) -> dict[str, Any] | None:
    return next((r for r in records if r["key"] == key and r["n"] == n and r["draws"] == draws),
                None)


def _mb(v: int | None) -> str:
    return "—" if not v else f"{v / 1e6:,.0f}"


def ratios(records: list[dict[str, Any]], n: int, draws: int) -> dict[str, Any] | None:
    """PyMC-Marketing / clvbayes at one size (time: PMM total and CLV alone vs clvbayes'
    first and second call; memory: peak and peak - baseline). Lower bounds (``>``) when
    PMM failed after spending time or memory."""
    cb, pm = _find(records, "clvbayes", n, draws), _find(records, "pmm", n, draws)
    if not cb or not pm or cb["status"] != "ok" or pm["status"] == "skipped":
        return None
    out: dict[str, Any] = {"pmm_status": pm["status"]}
    if pm["status"] == "ok":
        out["total_vs_second"] = pm["total_s"] / cb["second_s"]
        out["total_vs_first"] = pm["total_s"] / cb["first_s"]
        out["clv_vs_second"] = pm["clv_s"] / cb["second_s"]
        out["peak"] = pm["peak_rss_bytes"] / cb["peak_rss_bytes"]
        out["work_mem"] = ((pm["peak_rss_bytes"] - pm["baseline_rss_bytes"])
                           / max(cb["peak_rss_bytes"] - cb["baseline_rss_bytes"], 1))
        out["lower_bound"] = False
    elif pm["status"] in ("timeout", "mem-cap"):
        # It had run this long / used this much when it was stopped: lower bounds.
        spent = sum(v for k, v in pm.get("phases_s", {}).items()
                    if k in ("clv", "p_alive", "equity", "summaries"))
        if pm.get("phase_at_end") in ("clv", "p_alive", "equity", "summaries"):
            spent += pm.get("phase_elapsed_at_end_s") or 0.0
        out["total_vs_second"] = spent / cb["second_s"] if spent else None
        out["peak"] = pm["peak_rss_bytes"] / cb["peak_rss_bytes"] if pm["peak_rss_bytes"] else None
        out["lower_bound"] = True
    else:
        return None  # a MemoryError at the first large allocation bounds nothing useful
    return out


def extrapolate_pmm(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """PyMC-Marketing's time and working memory per (draw x customer) in its largest
    successful cell: both grow linearly in draws x customers (full arrays)."""
    ok = [r for r in records if r["key"] == "pmm" and r["status"] == "ok"]
    if not ok:
        return None
    r = max(ok, key=lambda r: r["n"] * r["draws"])
    cells = r["n"] * r["draws"]
    return {"n": r["n"], "draws": r["draws"], "s_per_cell": r["total_s"] / cells,
            "bytes_per_cell": (r["peak_rss_bytes"] - r["baseline_rss_bytes"]) / cells}


def _ratio_cell(v: float | None, lower: bool) -> str:
    if v is None:
        return "—"
    return ("> " if lower else "") + _f(v) + "×"


def evaluate_targets(records: list[dict[str, Any]], draws: int, extra: list[tuple[int, int]]
                     ) -> list[dict[str, Any]]:
    out = []
    big = 1_000_000
    rec = _find(records, "clvbayes", big, draws)
    t = {"target": f"10^6 customers x {draws} draws, CLV + customer equity + P(alive) "
                   "<= 60 s (clvbayes)", "met": None}
    if rec is None:
        t["measured"] = "not run"
    elif rec["status"] != "ok":
        t |= {"measured": f"{rec['status']}: {rec['message']}", "met": False}
    else:
        t |= {"measured": f"first call in a new process {rec['first_s']:.1f} s (Numba cache: "
                          f"{rec['numba_cache']}), second call {rec['second_s']:.1f} s",
              "first_s": rec["first_s"], "second_s": rec["second_s"],
              "met": max(rec["first_s"], rec["second_s"]) <= 60.0}
    out.append(t)
    t = {"target": f"10^6 customers x {draws} draws: peak memory <= 2 GB (clvbayes)", "met": None}
    if rec is None:
        t["measured"] = "not run"
    elif rec["status"] != "ok":
        t |= {"measured": f"{rec['status']}: {rec['message']}", "met": False}
    else:
        t |= {"measured": f"process peak RSS {rec['peak_rss_bytes'] / GB:.2f} GB "
                          f"(computation {(rec['peak_rss_bytes'] - rec['baseline_rss_bytes']) / GB:.2f}"
                          " GB above imports + data + models)",
              "peak_gb": rec["peak_rss_bytes"] / GB, "met": rec["peak_rss_bytes"] <= 2 * GB}
    out.append(t)
    for n, d in extra:
        rec = _find(records, "clvbayes", n, d)
        t = {"target": f"{n:,} customers x {d} draws: peak memory <= 2 GB (clvbayes)",
             "met": None}
        if rec is None:
            t["measured"] = "not run"
        elif rec["status"] != "ok":
            t |= {"measured": f"{rec['status']}: {rec['message']}", "met": False}
        else:
            t |= {"measured": f"process peak RSS {rec['peak_rss_bytes'] / GB:.2f} GB; first call "
                              f"{rec['first_s']:.1f} s, second {rec['second_s']:.1f} s",
                  "peak_gb": rec["peak_rss_bytes"] / GB, "met": rec["peak_rss_bytes"] <= 2 * GB}
        out.append(t)
    return out


def _status(r: dict[str, Any]) -> str:
    if r["status"] == "ok":
        return "ok"
    return f"**{r['status']}**: " + (r.get("message") or "").replace("|", "/")


def _agreement_lines(agr: dict[str, Any], n: int) -> list[str]:
    lines = [f"## Agreement of the posterior means ({n:,} customers)", "",
             "Relative difference x / reference - 1 of the per-customer posterior means "
             "(max |.| over customers; median; range). A = clvbayes CLV, B = PyMC-Marketing "
             "CLV, C = clvbayes discounted expected purchases x PyMC-Marketing's per-customer "
             "spend (PMM's spend convention, continuous discounting), D = PyMC-Marketing's "
             "monthly sum rebuilt from clvbayes' expected purchases at the month ends x the "
             "same spend.", ""]
    header = ["setting", "comparison", "what differs", "max abs rel. diff", "median", "range"]
    what = {
        "A_clvbayes_vs_B_pmm": ("A vs B", "everything below"),
        "D_rebuilt_vs_B_pmm": ("D vs B", "nothing (implementations of expected purchases)"),
        "C_continuous_vs_B_pmm": ("C vs B", "discounting: continuous vs end of month"),
        "A_clvbayes_vs_C_pmm_spend": ("A vs C", "spend: joint draws vs posterior-mean spend"),
        "p_alive_clvbayes_vs_pmm": ("P(alive)", "nothing"),
        "spend_clvbayes_vs_pmm": ("expected spend (mean)", "nothing"),
    }
    rows = []
    for label, res in agr.items():
        setting = (f"d = {res['annual_rate']:g} annual (PMM monthly "
                   f"{res['pmm_monthly_rate']:.6g})")
        for key, (name, diff) in what.items():
            s = res[key]
            rows.append([setting, name, diff, f"{s['max_abs']:.2e}", f"{s['median']:+.2e}",
                         f"[{s['min']:+.2e}, {s['max']:+.2e}]"])
        rows.append([setting, "equity (posterior mean)", "all of the above",
                     f"{abs(res['equity_rel_diff']):.2e}", "—",
                     f"{res['equity_mean_clvbayes']:,.6g} vs {res['equity_mean_pmm']:,.6g}"])
    lines += [_common.markdown_table(header, rows), ""]
    return lines


def render_markdown(payload: dict[str, Any]) -> str:
    cfg = payload["config"]
    records = payload["records"]
    sysinfo = payload["system"]
    lines = [
        "# CLV + customer equity + P(alive) over a posterior: clvbayes vs PyMC-Marketing",
        "",
        f"Generated by `python benchmarks/clv_scaling.py {cfg['argv']}` on "
        f"{sysinfo['date_utc']}.",
        "",
        f"Every cell is a fresh process with an address-space limit of {cfg['mem_cap_gb']:g} GB "
        f"(RLIMIT_AS; the same cap on its polled RSS) and a wall-time cap ({cfg['time_cap']:g} s "
        f"clvbayes, {cfg['pmm_time_cap']:g} s PyMC-Marketing). Synthetic posterior: {CHAINS} "
        f"chains, lognormal jitter {JITTER:g} around the simulating values, the same draws for "
        f"both tools. Horizon {MONTHS} PyMC-Marketing months = {HORIZON_WEEKS:g} weeks; "
        f"discount rate {ANNUAL_RATE:g} a year (clvbayes, continuous) = "
        f"{pmm_monthly_rate(ANNUAL_RATE):.6g} a month (PyMC-Marketing, end of month).",
        "",
        "**clvbayes**: `customer_metrics(..., quantities=('clv', 'p_alive'))` + "
        "`customer_equity(res['clv'])`; **first** = first call in the process (Numba: "
        "`compiled` = it compiled, `cached` = loaded from the on-disk cache), **second** = "
        "second call. "
        "**PyMC-Marketing**: `GammaGammaModel.expected_customer_lifetime_value` "
        "(**CLV s**), `expected_probability_alive`, equity = sum over customers, and mean/sd/"
        "quantiles/HDI with xarray/ArviZ (**total s** = all of these). PyMC-Marketing "
        "collapses the spend to one number per customer (the posterior mean of the "
        "Gamma-Gamma expected spend) before multiplying by each draw of the expected "
        "purchases; clvbayes uses the joint draws. **setup s**: model objects + draws "
        "(PyMC-Marketing: `build_model`). **peak MB**: peak RSS of the process (MB = 10^6 "
        "bytes); **work MB**: peak minus the RSS reached before the timed work (imports, "
        "data, models). **× time**: PyMC-Marketing total s / clvbayes second-call s "
        "(first call in brackets); **× CLV**: PyMC-Marketing CLV s alone / clvbayes second "
        "call (which also does P(alive), equity and the summaries); **× mem**: peak / peak "
        "(work / work in brackets). \"> X\": PyMC-Marketing failed; X from the time it had "
        "spent. **CPU s**: CPU seconds of the process, all threads (clvbayes: second call; "
        "PyMC-Marketing: total), less sensitive than wall seconds to the other load on the "
        "machine; **load**: 1-minute load average at the start and end of the cell (above the "
        "number of logical CPUs, other processes compete for them).",
        "",
    ]
    header = ["n", "draws", "tool", "status", "setup s", "first s (numba)", "second s",
              "CLV s", "total s", "CPU s", "load", "process s", "peak MB", "work MB", "equity mean (sd)",
              "mean CLV", "mean P(alive)", "× time", "× CLV", "× mem"]
    rows = []
    combos = sorted({(r["n"], r["draws"]) for r in records if r["key"] != "agreement"},
                    key=lambda c: (c[1], c[0]))
    for n, d in combos:
        rt = ratios(records, n, d)
        for key in ("clvbayes", "pmm"):
            r = _find(records, key, n, d)
            if r is None:
                continue
            ok = r["status"] == "ok"
            cb = key == "clvbayes"
            work = (r["peak_rss_bytes"] - r["baseline_rss_bytes"]
                    if r.get("peak_rss_bytes") and r.get("baseline_rss_bytes") else None)
            rows.append([
                f"{n:,}", d, "clvbayes" if cb else "PyMC-Marketing", _status(r),
                _f(r["setup_s"]),
                f"{_f(r['first_s'])} ({r['numba_cache']})" if cb and ok else "—",
                _f(r["second_s"]) if cb else "—",
                "—" if cb else _f(r["clv_s"]),
                "—" if cb else _f(r["total_s"]),
                _f(r["second_cpu_s"] if cb else r["total_cpu_s"]),
                f"{r['load_avg_start']:.1f}–{r['load_avg_end']:.1f}" if r.get("load_avg_end") is not None else "—",
                _f(r["process_s"]), _mb(r.get("peak_rss_bytes")), _mb(work),
                f"{r['equity_mean']:,.0f} ({r['equity_sd']:,.0f})" if ok else "—",
                _f(r["mean_clv"], 5), _f(r["mean_p_alive"], 5),
                (f"{_ratio_cell(rt['total_vs_second'], rt['lower_bound'])}"
                 + (f" ({_f(rt['total_vs_first'])}×)" if not rt["lower_bound"] else ""))
                if rt and not cb else "—",
                _ratio_cell(rt.get("clv_vs_second"), rt["lower_bound"]) if rt and not cb else "—",
                (f"{_ratio_cell(rt['peak'], rt['lower_bound'])}"
                 + (f" ({_f(rt['work_mem'])}×)" if not rt["lower_bound"] else ""))
                if rt and not cb else "—",
            ])
    lines += [_common.markdown_table(header, rows), ""]
    cbs = [r for r in records if r["key"] == "clvbayes" and r["status"] == "ok"
           and r.get("kernels_second_s")]
    if cbs:
        lines += ["## Where clvbayes' time goes (second call)", "",
                  "Seconds in the engine's kernels: **table** = `clv_factor_table` (per draw and "
                  "unique (frequency, T) key: the discounted expected purchases over the finite "
                  "horizon, by quadrature), **fill** = `clv_block` / `clv_block_with_alive` (per draw and "
                  "customer; the latter fills CLV and P(alive) in one pass), "
                  "**summaries** = `clv_summarise` (mean, sd, quantiles, HDI per customer; "
                  "per-draw totals), **other** = the rest (validation, pandas/xarray packaging, "
                  "equity).", ""]
        rows = []
        for r in sorted(cbs, key=lambda r: (r["draws"], r["n"])):
            k = r["kernels_second_s"]
            known = sum(k.values())
            rows.append([f"{r['n']:,}", r["draws"], f"{r['n_unique_xT']:,}" if r.get("n_unique_xT") else "—",
                         _f(k.get("clv_factor_table")),
                         _f(k.get("clv_block", 0.0) + k.get("clv_block_with_alive", 0.0)),
                         _f(k.get("clv_summarise")), _f(r["second_s"] - known), _f(r["second_s"])])
        lines += [_common.markdown_table(["n", "draws", "unique (x, T)", "table s", "fill s",
                                          "summaries s", "other s", "second call s"], rows), ""]
    lines += ["## Targets (from the issue)", ""]
    mark = {True: "**met**", False: "**not met**", None: "not determined"}
    lines += [f"- {t['target']}: {t['measured']} — {mark[t['met']]}." for t in payload["targets"]]
    lines.append("")
    fails = [r for r in records if r["key"] == "pmm" and r["status"] != "ok"]
    if fails:
        lines += ["## PyMC-Marketing failures", ""]
        for r in fails:
            done = ", ".join(f"{k} {v:.1f} s" for k, v in r.get("phases_s", {}).items()
                             if k != r.get("phase_at_end"))
            lines.append(f"- {r['n']:,} customers x {r['draws']} draws: {r['status']} — "
                         f"{(r.get('message') or '').strip()}; peak RSS {_mb(r.get('peak_rss_bytes'))}"
                         f" MB; completed phases: {done or 'none'}.")
            ex = extrapolate_pmm(records)
            if ex is not None:
                cells = r["n"] * r["draws"]
                lines.append(
                    f"  Extrapolated linearly from the {ex['n']:,} x {ex['draws']} cell "
                    f"({ex['bytes_per_cell']:.0f} bytes and {1e6 * ex['s_per_cell']:.2f} µs per "
                    f"draw x customer): about {ex['bytes_per_cell'] * cells / GB:,.0f} GB of "
                    f"working memory and {ex['s_per_cell'] * cells:,.0f} s.")
        lines.append("")
    agr = next((r for r in records if r["key"] == "agreement"), None)
    if agr is not None:
        if agr["status"] == "ok":
            lines += _agreement_lines(agr["agreement"], agr["n"])
        else:
            lines += ["## Agreement", "", f"Failed: {_status(agr)}", ""]
    versions = ", ".join(f"{k} {v}" for k, v in payload["versions"].items())
    hashes = sorted({r["code_hash"] for r in records if r.get("code_hash")})
    lines += [
        "## Notes",
        "",
        f"- Code: clvbayes commit {payload.get('git_at_start', {}).get('commit') or '?'} at the "
        f"start of the run; fingerprint of the timed clvbayes code (engine, quantities, equity, "
        f"CLV kernels): {', '.join(hashes) or '?'}"
        + (" — **differs between cells** (the code changed during the run)" if len(hashes) > 1
           else " in every cell") + ".",
        f"- Data: BG/NBD {tuple(BG_PARAMS.values())} per week and Gamma-Gamma "
        f"{tuple(GG_PARAMS.values())} (CDNOW estimates), T uniform on 1..{WINDOW_DAYS} days "
        "/ 7, simulated with `clvbayes.simulate_customers`; the same cached data for every "
        "cell of a size.",
        "- clvbayes streams blocks of customers through its Numba kernels (a factor table per "
        "draw and unique (x, T) key, a draws x block matrix summarised before the next block), "
        "so its memory does not grow with draws x customers; PyMC-Marketing evaluates "
        "xarray expressions on full (chain, draw, customer) arrays (scipy's hyp2f1 for every "
        "element, 12 monthly steps for a discounted CLV), each temporary 8 bytes x draws x "
        "customers.",
        f"- Machine: {sysinfo['cpu_model']}, {sysinfo['logical_cpus']} logical CPUs, Numba "
        f"threads {sysinfo['numba_num_threads']}, load average "
        f"{', '.join(f'{v:.2f}' for v in sysinfo.get('load_average_1_5_15', []))} at the "
        "end of the run; the machine is shared, so seconds are noisy.",
        f"- Versions: {versions}.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def _size_draws(text: str) -> tuple[int, int]:
    try:
        n, d = text.lower().split("x")
        return _size(n), _size(d)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NxDRAWS, e.g. 1000000x2000: {text}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sizes", type=_size, nargs="+", default=[10**4, 10**5, 10**6])
    p.add_argument("--draws", type=int, default=1000, help="posterior draws (4 chains)")
    p.add_argument("--tools", nargs="+", default=["clvbayes", "pmm"], choices=["clvbayes", "pmm"])
    p.add_argument("--clvbayes-only", type=_size_draws, nargs="*", default=[(10**6, 2000)],
                   help="extra clvbayes cells NxDRAWS (none: empty list)")
    p.add_argument("--check-n", type=int, default=10**4,
                   help="customers of the agreement cell (0: skip)")
    p.add_argument("--seed", type=int, default=1, help="data and posterior seed")
    p.add_argument("--time-cap", type=float, default=1500.0, help="s per clvbayes cell")
    p.add_argument("--pmm-time-cap", type=float, default=1800.0, help="s per PyMC-Marketing cell")
    p.add_argument("--mem-cap-gb", type=float, default=10.0,
                   help="address-space limit and RSS cap per cell (GB = 10^9 bytes)")
    p.add_argument("--poll", type=float, default=0.1, help="memory polling interval, s")
    p.add_argument("--out-name", default="clv_scaling")
    _common.add_worker_arguments(p, CELL_FNS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any] | int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    out = _common.RESULTS_DIR / args.out_name
    sizes = sorted(set(args.sizes))
    payload: dict[str, Any] = {
        "benchmark": "clv_scaling",
        "config": {
            "argv": " ".join(sys.argv[1:] if argv is None else argv),
            "sizes": sizes, "draws": args.draws, "tools": args.tools,
            "clvbayes_only": args.clvbayes_only, "check_n": args.check_n, "seed": args.seed,
            "time_cap": args.time_cap, "pmm_time_cap": args.pmm_time_cap,
            "mem_cap_gb": args.mem_cap_gb, "poll": args.poll, "chains": CHAINS,
            "jitter": JITTER, "horizon_weeks": HORIZON_WEEKS, "pmm_future_t_months": MONTHS,
            "annual_discount_rate": ANNUAL_RATE,
            "pmm_monthly_discount_rate": pmm_monthly_rate(ANNUAL_RATE),
            "quantiles": PROBS, "hdi_prob": HDI_PROB,
        },
        "params": {"bgnbd": BG_PARAMS, "gamma_gamma": GG_PARAMS},
        "data": {}, "records": [], "targets": [],
        "versions": _common.package_versions(PACKAGES), "system": {},
        "git_at_start": _common.git_revision(),
    }

    def write() -> None:
        payload["system"] = _common.system_info()
        payload["targets"] = evaluate_targets(payload["records"], args.draws, args.clvbayes_only)
        _common.write_json(out.with_suffix(".json"), payload)
        out.with_suffix(".md").write_text(render_markdown(payload))

    shutil.rmtree(_numba_cache_dir(args), ignore_errors=True)

    def run(key: str, n: int, draws: int, blocked: dict[str, str]) -> None:
        data_path, meta = ensure_data(n, args.seed)
        payload["data"][str(n)] = meta
        if key in blocked:
            rec = Record(key, n, draws, status="skipped", message=blocked[key])
        else:
            print(f"[n={n:,}, draws={draws}] {key} ...", flush=True)
            rec = run_cell(key, n, draws, data_path, args)
            if rec.status == "timeout":
                blocked[key] = f"timed out at a smaller size (n={n:,})"
        print(f"  {rec.status}" + (f": {rec.message}" if rec.message else "")
              + (f"; first {rec.first_s:.2f} s, second {rec.second_s:.2f} s"
                 if rec.second_s is not None else "")
              + (f"; total {rec.total_s:.2f} s" if rec.total_s is not None else "")
              + (f"; peak {rec.peak_rss_bytes / 1e6:.0f} MB" if rec.peak_rss_bytes else ""),
              flush=True)
        payload["records"].append(asdict(rec))
        write()

    blocked: dict[str, str] = {}
    for n in sizes:
        for key in args.tools:
            run(key, n, args.draws, blocked)
    for n, d in args.clvbayes_only:
        run("clvbayes", n, d, {})
    if args.check_n:
        run("agreement", args.check_n, args.draws, {})
    print(out.with_suffix(".md").read_text())
    return payload


if __name__ == "__main__":
    result = main()
    if isinstance(result, int):
        sys.exit(result)
