"""Benchmark: RFM summary, compression, fitting and scoring of large purchase logs on Dask.

What it measures
----------------
For every log size ``n`` (purchases; 10^7 and 10^8 by default) a simulated purchase log
is written as a folder of Parquet files (cached), and two *cells* run, each in a fresh
subprocess whose process tree is polled for its resident memory (RSS):

===========  ==========================================================================
cell         what is run
===========  ==========================================================================
``pandas``   pandas alone, under an address-space limit (``RLIMIT_AS = --pandas-cap``,
             the same cap on the polled RSS): ``pandas.read_parquet(folder)``, then
             ``clvbayes.rfm_summary(log, observation_end=...)`` and
             ``compress_summary`` of the result. An allocation beyond the cap raises
             ``MemoryError`` (status ``oom``); a process killed by the poller above the
             cap is ``mem-cap``, one killed by a signal we did not send is ``killed``.
``dask``     a ``distributed.LocalCluster(n_workers=2, threads_per_worker=1)`` in the
             cell's process, then the phases: **summary** ``clvbayes.rfm_summary(folder,
             observation_end=...).persist()`` (the log is hash-partitioned by customer
             with the P2P shuffle, then summarised by pandas partition by partition);
             **compress** ``compress_summary(summary)`` (distinct (frequency, recency, T)
             rows with counts); **compress_gg** the same on ``GAMMA_GAMMA_COLUMNS``;
             **fit_mle** ``BetaGeoModel(table).fit_mle()``; **fit_nuts**
             ``BetaGeoModel(table).fit(chains=2, draws=500, tune=500)`` (nutpie);
             **fit_gg_mle** ``GammaGammaModel(gg_table).fit_mle()``; **score**
             ``score_customers(bg_nuts, gg_mle, summary, horizon=52, n_draws=200,
             quantities=("clv", "p_alive", "expected_purchases"), output=...)`` (per
             customer scores written as Parquet; per-draw totals reduced) and the equity,
             expected-alive and expected-purchases totals with their 94 % HDIs.
===========  ==========================================================================

Memory: the parent polls every ``--poll`` s the RSS of the cell's process (client,
scheduler and nannies run there) and of each of its descendants (the two worker processes,
identified by ``client.run(os.getpid)``; any other descendant counts as "other"), and
attributes each sample to the phase the cell was in (a side file), so every phase has a
peak for the client, for the larger worker and for the whole tree (sum over processes at
one instant). At the end the workers report their own lifetime ``ru_maxrss``
(``client.run``), which catches peaks between two polls; the client reports its own. MB =
10^6 bytes.

Data
----
Customers follow the BG/NBD model (Fader, Hardie & Lee 2005, Marketing Science 24(2)) in
weeks, with ``(r, alpha, a, b) = (0.5, 4.5, 0.8, 4.0)``, chosen to give about 5 purchases
per customer (first + repeats) over the window: first purchases uniform over the first
year (2020), the log ends two years after its start (2021-12-31, the ``observation_end``
given to both cells); a customer's purchase rate ``lambda ~ Gamma(r, alpha)``, dropout
probability ``p ~ Beta(a, b)``, ``M ~ Geometric(p)`` repeat purchases until dropout; the
repeat purchases are the first ``min(N, M)`` of ``N ~ Poisson(lambda * T)`` uniform times
in the customer's window (a Poisson process cut at dropout), at one-second resolution.
Amounts are lognormal, ``exp(N(mu_i, 0.6))`` with ``mu_i ~ N(3, 0.3)`` per customer,
rounded to cents. Each file holds the complete histories of a block of customers (about
``--rows-per-file`` purchases), rows shuffled within the file; customer ids are
consecutive int64. Generation is seeded per file (``numpy.random.default_rng([seed,
file])``), runs file by file (never the whole log in memory) and is cached in
``benchmarks/.cache/dask_scaling/`` (a folder is complete when its ``meta.json`` exists).
Columns: ``customer_id`` int64, ``date`` timestamp[us], ``amount`` float64; Parquet with
pyarrow's default (snappy) compression.

Usage
-----
``python benchmarks/dask_scaling.py [--sizes 1e7 1e8] [--cells pandas dask]
[--pandas-cap 8GB] [--worker-memory auto] [--time-cap 10800]``

Writes ``benchmarks/results/<out-name>.{json,md}`` (default ``dask_scaling``), rewritten
after every cell; worker logs in ``benchmarks/.cache/logs/<out-name>/``. Smoke test::

    python benchmarks/dask_scaling.py --sizes 1e6 --out-name dask_scaling_smoke
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import _common
from _common import fmt_number as _f, parse_size as _size  # noqa: E402

#: BG/NBD parameters of the simulation (weeks); about 5 purchases per customer.
BG_PARAMS = {"r": 0.5, "alpha": 4.5, "a": 0.8, "b": 4.0}
SPEND_MU, SPEND_MU_SD, SPEND_SIGMA = 3.0, 0.3, 0.6  # lognormal amounts
PURCHASES_PER_CUSTOMER = 5.0  # target, to size the number of customers
START = np.datetime64("2020-01-01T00:00:00", "s")
ACQUISITION_DAYS, LOG_DAYS = 365, 730
OBSERVATION_END = "2021-12-31"  # START + 730 days: every purchase is before it
DAY_S = 86_400
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
DATA_DIR = CACHE_DIR / "dask_scaling"
PACKAGES = ["clvbayes", "numpy", "numba", "pandas", "pyarrow", "dask", "distributed", "pymc",
            "nutpie", "arviz", "psutil"]
QUANTITIES = ("clv", "p_alive", "expected_purchases")
HORIZON = 52.0
MB = 1e6
FAILED = ("oom", "mem-cap", "timeout", "killed", "error")


def parse_bytes(text: str) -> int:
    """argparse type: a memory size such as ``8GB``, ``512MB``, ``8e9`` (GB = 10^9 bytes)."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([kKmMgGtT]?)(i?)[bB]?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a memory size: {text}")
    base = 1024 if m.group(3) else 1000
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[m.group(2).lower()]
    return int(float(m.group(1)) * base**power)


# --------------------------------------------------------------------------------------
# Data: a simulated purchase log as a Parquet folder, generated file by file
# --------------------------------------------------------------------------------------


def simulate_block(rng: np.random.Generator, first_id: int, n: int):
    """Purchase log of customers ``first_id .. first_id + n - 1`` (module docstring):
    ``(customer_id, seconds since START, amount)``, rows in random order."""
    acq = rng.integers(0, ACQUISITION_DAYS * DAY_S, n)
    window_s = LOG_DAYS * DAY_S - acq  # the customer's window after the first purchase
    lam = rng.gamma(BG_PARAMS["r"], 1.0 / BG_PARAMS["alpha"], n)  # per week
    p = rng.beta(BG_PARAMS["a"], BG_PARAMS["b"], n)
    dropout_after = rng.geometric(p)  # the M-th repeat purchase is the last
    events = rng.poisson(lam * window_s / (7 * DAY_S))
    who = np.repeat(np.arange(n), events)
    u = rng.random(who.size) * window_s[who]
    order = np.lexsort((u, who))  # by customer, then time
    u, who = u[order], who[order]
    start = np.concatenate([[0], np.cumsum(events)[:-1]])
    rank = np.arange(who.size) - start[who]
    keep = rank < dropout_after[who]
    who, u = who[keep], u[keep]
    cust = np.concatenate([np.arange(n), who])
    secs = np.concatenate([acq, acq[who] + u.astype(np.int64)])
    mu = rng.normal(SPEND_MU, SPEND_MU_SD, n)
    amount = np.maximum(np.round(np.exp(mu[cust] + SPEND_SIGMA * rng.standard_normal(cust.size)), 2), 0.01)
    perm = rng.permutation(cust.size)
    return cust[perm] + np.int64(first_id), secs[perm], amount[perm]


def ensure_log(n_purchases: int, seed: int, rows_per_file: int) -> tuple[Path, dict[str, Any]]:
    """The cached Parquet folder of about ``n_purchases`` purchases, written first if missing."""
    import pandas as pd

    path = DATA_DIR / f"log_n{n_purchases}_seed{seed}_rpf{rows_per_file}"
    meta_path = path / "meta.json"
    if meta_path.exists():
        return path, json.loads(meta_path.read_text())
    shutil.rmtree(path, ignore_errors=True)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n_customers = max(1, round(n_purchases / PURCHASES_PER_CUSTOMER))
    per_file = max(1, round(rows_per_file / PURCHASES_PER_CUSTOMER))
    n_files = math.ceil(n_customers / per_file)
    width = len(str(n_files - 1))
    print(f"generating {n_customers:,} customers (~{n_purchases:,} purchases) in {n_files} files "
          f"-> {path}", flush=True)
    t0 = time.perf_counter()
    rows = 0
    for k in range(n_files):
        first = k * per_file
        n = min(per_file, n_customers - first)
        cust, secs, amount = simulate_block(np.random.default_rng([seed, k]), first, n)
        frame = pd.DataFrame({
            "customer_id": cust,
            "date": (START + secs.astype("timedelta64[s]")).astype("datetime64[us]"),
            "amount": amount,
        })
        frame.to_parquet(tmp / f"part.{k:0{width}d}.parquet", index=False)
        rows += len(frame)
        if (k + 1) % 10 == 0 or k + 1 == n_files:
            print(f"  {k + 1}/{n_files} files, {rows:,} rows, {time.perf_counter() - t0:.0f} s", flush=True)
    size = sum(f.stat().st_size for f in tmp.glob("*.parquet"))
    meta = {
        "n_purchases_target": n_purchases, "n_purchases": rows, "n_customers": n_customers,
        "purchases_per_customer": rows / n_customers, "files": n_files, "bytes": size,
        "bytes_per_purchase": size / rows, "seed": seed, "rows_per_file": rows_per_file,
        "generation_s": time.perf_counter() - t0, "observation_end": OBSERVATION_END,
        "bgnbd_params": BG_PARAMS,
        "spend": {"mu": SPEND_MU, "mu_sd": SPEND_MU_SD, "sigma": SPEND_SIGMA},
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    tmp.rename(path)
    print(f"  done: {rows:,} rows, {size / MB:,.0f} MB, {meta['generation_s']:.0f} s", flush=True)
    return path, meta


def parquet_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("*.parquet"))


# --------------------------------------------------------------------------------------
# Worker (one cell, in its own process)
# --------------------------------------------------------------------------------------


def _pandas_cell(args, phase, out: dict[str, Any]) -> None:
    import pandas as pd

    import clvbayes
    from clvbayes.distributed import GAMMA_GAMMA_COLUMNS, compress_summary

    phase("read")
    log = pd.read_parquet(parquet_files(Path(args.data)))
    out["rows_read"] = len(log)
    out["log_memory_bytes"] = int(log.memory_usage(deep=True).sum())
    phase("summary")
    summary = clvbayes.rfm_summary(log, observation_end=OBSERVATION_END)
    out["n_customers"] = len(summary)
    del log
    phase("compress")
    table = compress_summary(summary)
    out["compressed_rows"] = len(table)
    gg = compress_summary(summary, columns=GAMMA_GAMMA_COLUMNS)
    out["compressed_gg_rows"] = len(gg)
    table.to_parquet(Path(args.result).with_suffix(".table.parquet"), index=False)


def _dask_cell(args, phase, out: dict[str, Any]) -> None:
    import logging

    import arviz as az
    import distributed

    import clvbayes
    from clvbayes.distributed import GAMMA_GAMMA_COLUMNS, compress_summary, score_customers

    result = Path(args.result)
    phase("cluster")
    scratch = CACHE_DIR / "dask_scratch"
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=logging.ERROR, memory_limit=args.worker_memory, local_directory=str(scratch),
    )
    client = distributed.Client(cluster)
    try:
        pids = client.run(os.getpid)
        out["worker_pids"] = pids
        out["worker_memory_limit_bytes"] = {w: int(i["memory_limit"]) for w, i in
                                            client.scheduler_info()["workers"].items()}
        result.with_suffix(".pids").write_text(json.dumps(list(pids.values())))

        phase("summary")
        summary = clvbayes.rfm_summary(args.data, observation_end=OBSERVATION_END).persist()
        distributed.wait(summary)
        out["summary_partitions"] = summary.npartitions

        phase("compress")
        table = compress_summary(summary)
        out["compressed_rows"] = len(table)
        out["n_customers"] = int(table["customers"].sum())
        phase("compress_gg")
        gg_table = compress_summary(summary, columns=GAMMA_GAMMA_COLUMNS)
        out["compressed_gg_rows"] = len(gg_table)
        out["repeat_buyers"] = int(gg_table.loc[gg_table["frequency"] > 0, "customers"].sum())
        table.to_parquet(result.with_suffix(".table.parquet"), index=False)

        phase("fit_mle")
        mle = clvbayes.BetaGeoModel(table).fit_mle()
        out["mle"] = {k: float(v) for k, v in mle.params_.items()}
        phase("fit_nuts")
        bg = clvbayes.BetaGeoModel(table).fit(chains=args.chains, draws=args.draws, tune=args.tune,
                                              random_seed=args.seed, progressbar=False)
        phase("diagnostics")
        s = az.summary(bg.idata_, kind="all")
        out["nuts"] = {k: {"mean": float(s.loc[k, "mean"]), "sd": float(s.loc[k, "sd"]),
                           "r_hat": float(s.loc[k, "r_hat"]), "ess_bulk": float(s.loc[k, "ess_bulk"])}
                       for k in bg.params_.index}
        div = bg.idata_.sample_stats.get("diverging")
        out["nuts_divergences"] = int(div.sum()) if div is not None else None
        phase("fit_gg_mle")
        gg = clvbayes.GammaGammaModel(gg_table).fit_mle()
        out["gg_mle"] = {k: float(v) for k, v in gg.params_.items()}

        phase("score")
        scores_dir = CACHE_DIR / "dask_scaling_scores" / result.stem
        shutil.rmtree(scores_dir, ignore_errors=True)
        with client.as_current():
            scores = score_customers(bg, gg, summary, horizon=HORIZON, n_draws=args.score_draws,
                                     quantities=QUANTITIES, output=str(scores_dir))
        eq = scores.equity().loc["total"]
        out["scores_bytes"] = sum(p.stat().st_size for p in scores_dir.glob("*.parquet"))
        out["scores_files"] = len(list(scores_dir.glob("*.parquet")))
        out["score_draws"] = int(scores.settings["n_draws"])
        out["equity"] = {k: float(eq[k]) for k in eq.index}
        out["expected_alive"] = {k: float(v) for k, v in scores.total_summary("p_alive").items()}
        out["expected_purchases"] = {k: float(v) for k, v in scores.total_summary("expected_purchases").items()}
        out["scored_customers"] = int(scores.counts.sum())
        phase("read_back")
        out["scores_rows"] = int(scores.customers.shape[0].compute())
        if not args.keep_scores:
            shutil.rmtree(scores_dir, ignore_errors=True)

        phase("teardown")
        import resource as _res

        out["worker_maxrss_bytes"] = {w: v * 1024 for w, v in client.run(
            lambda: _res.getrusage(_res.RUSAGE_SELF).ru_maxrss).items()}
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)


CELL_FNS = {"pandas": _pandas_cell, "dask": _dask_cell}


def worker(args: argparse.Namespace) -> int:
    """Run one cell and write its measurements to ``args.result`` (JSON)."""

    def body(phase: _common.Phases, out: dict[str, Any]) -> None:
        phase("import")
        t0 = time.perf_counter()
        import pandas  # noqa: F401

        import clvbayes  # noqa: F401

        if args.worker == "dask":
            import distributed  # noqa: F401
        out["import_s"] = time.perf_counter() - t0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            CELL_FNS[args.worker](args, phase, out)
        out["warnings"] += _common.warning_lines(caught)

    return _common.run_worker(Path(args.result), body, oom_if_mentioned=True)


# --------------------------------------------------------------------------------------
# Parent: run a cell in a subprocess, poll the memory of its processes per phase
# --------------------------------------------------------------------------------------


def run_cell(key: str, n: int, data_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run cell ``key`` in a subprocess: caps, RSS polling per process and per phase."""
    rec: dict[str, Any] = {"key": key, "n": n, "status": None, "message": None}
    files = _common.cell_files(CACHE_DIR / "logs" / Path(args.out_name).name, f"{key}_n{n}")
    table = files.result.with_suffix(".table.parquet")
    table.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", key, "--data", str(data_path),
           "--result", str(files.result), "--seed", str(args.seed), "--chains", str(args.chains),
           "--draws", str(args.draws), "--tune", str(args.tune), "--score-draws", str(args.score_draws),
           "--worker-memory", str(args.worker_memory)] + (["--keep-scores"] if args.keep_scores else [])
    mem_cap = args.pandas_cap if key == "pandas" else args.dask_mem_cap
    rlimit = args.pandas_cap if key == "pandas" else None
    cell = _common.run_subprocess_cell(cmd, files, time_cap=args.time_cap, rss_cap=mem_cap,
                                       address_space_cap=rlimit, poll=args.poll)
    # per phase: peak of client RSS, of the larger worker, of the tree (sum at one instant)
    peaks = cell.peaks_by_phase
    rec["load_avg_start"] = cell.load_avg_start
    rec["process_s"] = cell.wall_s
    rec["load_avg_end"] = cell.load_avg_end
    rec["log"] = cell.log_name
    rec["peaks_polled_bytes"] = peaks
    rec["worker_peak_polled_bytes"] = {str(k): v for k, v in cell.worker_peaks.items()}
    rec["peak_total_polled_bytes"] = cell.peak_rss_bytes
    rec["mem_cap_bytes"] = mem_cap
    rec["table"] = str(table) if table.exists() else None
    rec["rlimit_as_bytes"] = rlimit
    out = cell.result
    if out:
        rec.update(out)
        rec["peak_client_bytes"] = max(peaks.get(p, {}).get("client", 0) for p in peaks) if peaks else None
        rec["peak_client_bytes"] = max(rec["peak_client_bytes"] or 0, out.get("maxrss_self_bytes") or 0)
        if rec["status"] != "ok" and rec.get("phase_at_end"):
            rec["message"] = (rec.get("message") or "") + (
                f" (in phase '{rec['phase_at_end']}' after {rec['phase_elapsed_at_end_s']:.1f} s)")
    else:
        if cell.phase:
            rec["phase_at_end"] = cell.phase_at_end
            rec["phases_s"] = cell.phases_done
        if cell.killed:
            rec["status"] = cell.killed
            rec["phase_elapsed_at_end_s"] = cell.phase_elapsed_at_kill_s
            cap = f"{mem_cap / 1e9:g} GB" if mem_cap else "?"
            rec["message"] = (f"time cap {args.time_cap:g} s reached" if cell.killed == "timeout"
                              else f"RSS of the process tree above the {cap} cap")
            rec["message"] += f" in phase '{rec.get('phase_at_end')}'"
        else:
            rec["status"], what = cell.exit_cause()
            rec["message"] = f"{what} in phase '{rec.get('phase_at_end')}': " + cell.last_log_line()
    return rec


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _mb(v: float | None) -> str:
    return "—" if v is None else f"{v / MB:,.0f}"


def _find(records: list[dict[str, Any]], key: str, n: int) -> dict[str, Any] | None:
    return next((r for r in records if r["key"] == key and r["n"] == n), None)


def compare(records: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Ratios Dask / pandas at size ``n`` and whether both compressed tables are equal."""
    import pandas as pd

    pdr, dkr = _find(records, "pandas", n), _find(records, "dask", n)
    out: dict[str, Any] = {"n": n}
    if not (pdr and dkr and dkr["status"] == "ok"):
        return out
    dk_sum = dkr["phases_s"].get("summary")
    dk_peak = dkr["peaks_polled_bytes"].get("summary", {}).get("total")
    if pdr["status"] == "ok":
        pd_sum = pdr["phases_s"]["read"] + pdr["phases_s"]["summary"]
        out["summary_time_dask_over_pandas"] = dk_sum / pd_sum if dk_sum else None
        pd_peak = max(v["total"] for v in pdr["peaks_polled_bytes"].values())
        pd_peak = max(pd_peak, pdr.get("maxrss_self_bytes") or 0)
        out["peak_tree_dask_summary_over_pandas"] = dk_peak / pd_peak if dk_peak else None
        wmax = max(dkr["peaks_polled_bytes"].get("summary", {}).get("worker_max", 0),
                   max((dkr.get("worker_maxrss_bytes") or {}).values(), default=0))
        out["peak_worker_over_pandas"] = wmax / pd_peak if wmax else None
        a, b = Path(pdr.get("table") or "-"), Path(dkr.get("table") or "-")
        if a.exists() and b.exists():
            try:
                pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))
                out["compressed_tables_equal"] = True
            except AssertionError as exc:
                out["compressed_tables_equal"] = False
                out["compressed_tables_difference"] = str(exc)[:300]
    return out


def _status(r: dict[str, Any]) -> str:
    if r["status"] == "ok":
        return "ok"
    return f"**{r['status']}** ({r.get('phase_at_end') or '?'})"


DASK_PHASES = ("cluster", "summary", "compress", "compress_gg", "fit_mle", "fit_nuts", "diagnostics",
               "fit_gg_mle", "score", "read_back", "teardown")


def render_markdown(payload: dict[str, Any]) -> str:
    cfg, records, data = payload["config"], payload["records"], payload["data"]
    sysinfo = payload["system"]
    load = sysinfo.get("load_average_1_5_15_at_start") or []
    lines = [
        "# Dask: summary, compression, fitting and scoring of large purchase logs",
        "",
        f"Generated by `python benchmarks/dask_scaling.py {cfg['argv']}` on {sysinfo['date_utc']}.",
        "",
        f"Simulated BG/NBD purchase logs (`{BG_PARAMS}` per week, about "
        f"{PURCHASES_PER_CUSTOMER:g} purchases per customer, customers acquired over 2020, log over "
        "2020-2021, lognormal amounts) as Parquet folders. **pandas**: `pandas.read_parquet` + "
        f"`clvbayes.rfm_summary` + `compress_summary` in one process limited to "
        f"{cfg['pandas_cap'] / 1e9:g} GB of address space (RLIMIT_AS). **Dask**: a LocalCluster of 2 "
        "worker processes x 1 thread (memory limit per worker: "
        f"{cfg['worker_memory']}); `clvbayes.rfm_summary(folder).persist()`, `compress_summary`, "
        f"BG/NBD MLE and NUTS (nutpie, {cfg['chains']} chains x {cfg['draws']} draws + {cfg['tune']} "
        "tuning) on the compressed table, Gamma-Gamma MLE on its compressed table, "
        f"`score_customers(..., horizon={HORIZON:g}, n_draws={cfg['score_draws']})` (CLV, P(alive), "
        "expected purchases, written as Parquet) with equity totals. Peak memory is RSS (MB = 10^6 "
        "bytes) polled every "
        f"{cfg['poll']:g} s: **client** = the cell's process (client, scheduler, nannies; for pandas "
        "the only process), **worker** = the larger of the two worker processes, **tree** = all "
        "processes of the cell summed at one instant.",
        "",
        "## Summary of the log: pandas vs Dask",
        "",
    ]
    header = ["purchases", "customers", "Parquet MB (files)", "pandas", "pandas read s",
              "pandas summary s", "pandas peak MB", "Dask summary s", "Dask peak MB client / worker / tree",
              "× time (Dask / pandas)", "× peak (Dask tree / pandas)", "compressed rows BG/NBD",
              "compressed rows Gamma-Gamma", "tables equal"]
    rows = []
    for n in cfg["sizes"]:
        d = data.get(str(n), {})
        pdr, dkr = _find(records, "pandas", n), _find(records, "dask", n)
        cmp_ = next((c for c in payload["comparisons"] if c["n"] == n), {})
        pd_ok = pdr is not None and pdr["status"] == "ok"
        dk_ok = dkr is not None and dkr["status"] == "ok"
        pd_peak = (max([v["total"] for v in pdr["peaks_polled_bytes"].values()] + [pdr.get("maxrss_self_bytes") or 0])
                   if pdr and pdr.get("peaks_polled_bytes") else None)
        dk_pk = dkr["peaks_polled_bytes"].get("summary", {}) if dkr else {}
        rows.append([
            f"{d.get('n_purchases', n):,}", f"{d.get('n_customers', 0):,}",
            f"{d.get('bytes', 0) / MB:,.0f} ({d.get('files', '?')})",
            _status(pdr) if pdr else "not run",
            _f(pdr["phases_s"].get("read")) if pdr and pdr.get("phases_s") else "—",
            _f(pdr["phases_s"].get("summary")) if pdr and pdr.get("phases_s") else "—",
            _mb(pd_peak) + ("" if pd_ok else " (at failure)") if pdr else "—",
            _f(dkr["phases_s"].get("summary")) if dkr and dkr.get("phases_s") else "—",
            f"{_mb(dk_pk.get('client'))} / {_mb(dk_pk.get('worker_max'))} / {_mb(dk_pk.get('total'))}" if dk_pk else "—",
            _f(cmp_.get("summary_time_dask_over_pandas")),
            _f(cmp_.get("peak_tree_dask_summary_over_pandas")),
            f"{dkr['compressed_rows']:,}" if dk_ok else (f"{pdr['compressed_rows']:,}" if pd_ok else "—"),
            f"{dkr['compressed_gg_rows']:,}" if dk_ok else "—",
            {True: "yes", False: "**no**"}.get(cmp_.get("compressed_tables_equal"), "—"),
        ])
    lines += [_common.markdown_table(header, rows), "",
              "pandas read s + summary s is what the Dask summary s is compared with (× time); the Dask "
              "summary includes reading the Parquet files, the shuffle by customer and the "
              "per-partition summaries. Tables equal: the compressed BG/NBD tables of both cells "
              "(`pandas.testing.assert_frame_equal`).", ""]

    lines += ["## Dask phases", ""]
    header = ["purchases", "phase", "wall s", "peak MB client", "peak MB worker", "peak MB tree", "what"]
    what = {
        "cluster": "start LocalCluster(2 workers x 1 thread)",
        "summary": "rfm_summary(folder).persist() (read + shuffle + per-partition summary)",
        "compress": "compress_summary -> (frequency, recency, T, customers)",
        "compress_gg": "compress_summary(GAMMA_GAMMA_COLUMNS)",
        "fit_mle": "BetaGeoModel(table).fit_mle()",
        "fit_nuts": "BetaGeoModel(table).fit() NUTS (nutpie)",
        "diagnostics": "arviz summary (r_hat, ESS)",
        "fit_gg_mle": "GammaGammaModel(gg_table).fit_mle()",
        "score": "score_customers(...) -> Parquet + totals, equity",
        "read_back": "count the written scores",
        "teardown": "workers' ru_maxrss",
    }
    rows = []
    for r in records:
        if r["key"] != "dask":
            continue
        for ph in DASK_PHASES:
            if ph not in (r.get("phases_s") or {}) and ph != r.get("phase_at_end"):
                continue
            pk = r["peaks_polled_bytes"].get(ph, {})
            t = r["phases_s"].get(ph)
            rows.append([f"{r['n']:,}", ph, _f(t) if t is not None else f"failed ({r['status']})",
                         _mb(pk.get("client")), _mb(pk.get("worker_max")), _mb(pk.get("total")), what[ph]])
        wm = r.get("worker_maxrss_bytes") or {}
        if wm:
            rows.append([f"{r['n']:,}", "whole cell", _f(r.get("process_s")), _mb(r.get("peak_client_bytes")),
                         _mb(max(wm.values())), _mb(r.get("peak_total_polled_bytes")),
                         "process wall time; client and workers' own ru_maxrss (lifetime peak)"])
    lines += [_common.markdown_table(header, rows), ""]

    lines += ["## Fits and scores (Dask cell)", ""]
    header = ["purchases", "customers", "compressed rows", "MLE (r, alpha, a, b)", "NUTS means",
              "max r_hat", "min ESS bulk", "divergences", "Gamma-Gamma MLE (p, q, gamma)",
              "equity mean [94% HDI]", "expected alive [HDI]", "expected purchases, 52 w [HDI]",
              "scores Parquet MB"]
    rows = []
    for r in records:
        if r["key"] != "dask" or r["status"] != "ok":
            continue
        nuts = r["nuts"]
        eq, al, ep = r["equity"], r["expected_alive"], r["expected_purchases"]
        lo, hi = [k for k in eq if k.startswith("hdi_")][:2]
        alo, ahi = [k for k in al if k.startswith("hdi_")][:2]
        rows.append([
            f"{r['n']:,}", f"{r['n_customers']:,}", f"{r['compressed_rows']:,}",
            ", ".join(f"{v:.4g}" for v in r["mle"].values()),
            ", ".join(f"{v['mean']:.4g}" for v in nuts.values()),
            f"{max(v['r_hat'] for v in nuts.values()):.3f}",
            f"{min(v['ess_bulk'] for v in nuts.values()):.0f}", r.get("nuts_divergences"),
            ", ".join(f"{v:.4g}" for v in r["gg_mle"].values()),
            f"{eq['mean']:,.0f} [{eq[lo]:,.0f}, {eq[hi]:,.0f}]",
            f"{al['mean']:,.0f} [{al[alo]:,.0f}, {al[ahi]:,.0f}]",
            f"{ep['mean']:,.0f} [{ep[alo]:,.0f}, {ep[ahi]:,.0f}]",
            f"{r['scores_bytes'] / MB:,.0f}",
        ])
    lines += [_common.markdown_table(header, rows), "",
              f"Simulating values: BG/NBD {tuple(BG_PARAMS.values())}. Equity: sum over customers of "
              f"the {HORIZON:g}-week CLV (margin 1, 10 % a year discounting), per posterior draw.", ""]

    fails = [r for r in records if r["status"] != "ok"]
    if fails:
        lines += ["## Failures", ""]
        for r in fails:
            done = ", ".join(f"{k} {v:.1f} s" for k, v in (r.get("phases_s") or {}).items())
            lines.append(f"- {r['key']} at {r['n']:,} purchases: {r['status']} — {(r.get('message') or '').strip()}; "
                         f"peak tree RSS {_mb(r.get('peak_total_polled_bytes'))} MB; completed phases: "
                         f"{done or 'none'}.")
        lines.append("")

    versions = ", ".join(f"{k} {v}" for k, v in payload["versions"].items())
    lines += [
        "## Notes",
        "",
        f"- Machine: {sysinfo['cpu_model']}, {sysinfo['logical_cpus']} logical CPUs, "
        f"{sysinfo.get('memory_total_bytes', 0) / 1e9:.1f} GB RAM; load average (1, 5, 15 min) "
        f"{', '.join(f'{v:.2f}' for v in load)} at the start of the run and "
        f"{', '.join(f'{v:.2f}' for v in sysinfo.get('load_average_1_5_15', []))} at the end; each "
        "cell records its own (`load_avg_start`/`load_avg_end` in the JSON). The machine is shared: "
        "seconds are noisy, and above 2 the cells competed for the CPUs.",
        f"- Code: clvbayes commit {payload.get('git_at_start', {}).get('commit') or '?'} "
        f"(uncommitted changes: {payload.get('git_at_start', {}).get('dirty')}).",
        f"- Versions: {versions}.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sizes", type=_size, nargs="+", default=[10**7, 10**8], help="purchases per log")
    p.add_argument("--cells", nargs="+", default=["pandas", "dask"], choices=list(CELL_FNS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rows-per-file", type=_size, default=10**6, help="purchases per Parquet file (about)")
    p.add_argument("--pandas-cap", type=parse_bytes, default=parse_bytes("8GB"),
                   help="address-space limit (RLIMIT_AS) and RSS cap of the pandas cell")
    p.add_argument("--dask-mem-cap", type=parse_bytes, default=parse_bytes("21GB"),
                   help="the Dask cell's process tree is killed above this RSS (protects the machine)")
    p.add_argument("--worker-memory", default="auto", help="LocalCluster memory_limit per worker")
    p.add_argument("--time-cap", type=float, default=4 * 3600.0, help="s per cell")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--tune", type=int, default=500)
    p.add_argument("--score-draws", type=int, default=200)
    p.add_argument("--keep-scores", action="store_true", help="keep the scores' Parquet in .cache")
    p.add_argument("--poll", type=float, default=0.2, help="memory polling interval, s")
    p.add_argument("--out-name", default="dask_scaling")
    _common.add_worker_arguments(p, CELL_FNS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any] | int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    import psutil

    out = _common.RESULTS_DIR / args.out_name
    sizes = sorted(set(args.sizes))
    start_info = {"load_average_1_5_15_at_start": list(os.getloadavg())}
    payload: dict[str, Any] = {
        "benchmark": "dask_scaling",
        "config": {
            "argv": " ".join(sys.argv[1:] if argv is None else argv), "sizes": sizes, "cells": args.cells,
            "seed": args.seed, "rows_per_file": args.rows_per_file, "pandas_cap": args.pandas_cap,
            "dask_mem_cap": args.dask_mem_cap, "worker_memory": args.worker_memory,
            "time_cap": args.time_cap, "chains": args.chains, "draws": args.draws, "tune": args.tune,
            "score_draws": args.score_draws, "horizon": HORIZON, "quantities": QUANTITIES,
            "poll": args.poll, "observation_end": OBSERVATION_END, "n_workers": 2, "threads_per_worker": 1,
        },
        "params": {"bgnbd": BG_PARAMS, "spend": {"mu": SPEND_MU, "mu_sd": SPEND_MU_SD, "sigma": SPEND_SIGMA}},
        "data": {}, "records": [], "comparisons": [],
        "versions": _common.package_versions(PACKAGES), "system": {},
        "git_at_start": _common.git_revision(),
    }

    def write() -> None:
        payload["system"] = {**_common.system_info(), **start_info,
                             "memory_total_bytes": psutil.virtual_memory().total,
                             "disk_free_bytes_work": shutil.disk_usage(DATA_DIR.parent).free}
        payload["comparisons"] = [compare(payload["records"], n) for n in sizes]
        _common.write_json(out.with_suffix(".json"), payload)
        out.with_suffix(".md").write_text(render_markdown(payload))

    for n in sizes:
        data_path, meta = ensure_log(n, args.seed, args.rows_per_file)
        payload["data"][str(n)] = meta
        for key in args.cells:
            print(f"[n={n:,}] {key} ...", flush=True)
            rec = run_cell(key, n, data_path, args)
            print(f"  {rec['status']}" + (f": {rec['message']}" if rec.get("message") else "")
                  + f"; {rec.get('process_s', 0):.1f} s; phases "
                  + ", ".join(f"{k} {v:.1f}" for k, v in (rec.get("phases_s") or {}).items())
                  + f"; peak tree {_mb(rec.get('peak_total_polled_bytes'))} MB", flush=True)
            payload["records"].append(rec)
            write()
    print(out.with_suffix(".md").read_text())
    return payload


if __name__ == "__main__":
    result = main()
    if isinstance(result, int):
        sys.exit(result)
