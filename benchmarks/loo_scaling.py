"""Benchmark: PSIS-LOO of BG/NBD over every customer, by weighted distinct histories.

What it measures
----------------
For each population size ``n`` (10^5 and 10^6 by default), in a fresh subprocess per size
with a wall-time cap: the wall time and the peak memory of
``clvbayes.weighted_loo(posterior, rows, weights)`` — the pointwise log-likelihood of every
distinct ``(x, t_x, T)`` history under every posterior draw, Pareto-smoothed importance
sampling per history, and the weighted totals (elpd_loo, se, p_loo, Pareto k) — with
``r_eff`` computed from the draws as ``arviz.loo`` does. It is called twice in the same
process: the *first call* includes Numba compilation or loading from Numba's on-disk cache,
the *second call* is warm. The timing is of LOO, not of NUTS.

Per size: ``simulate_s`` and ``compress_s`` (data), ``first_s`` and ``second_s`` (LOO),
the peak resident memory of the process (polled every ``--poll`` s, or its own
``ru_maxrss`` if larger) and ``baseline_rss_bytes`` (``ru_maxrss`` just before the first
LOO call: imports, data, draws), so that ``peak - baseline`` is the memory of LOO itself;
the peak RSS polled while the LOO calls run; the number of distinct histories, elpd_loo, se, p_loo and the Pareto k counts.

Data and posterior
------------------
Customers simulated by :func:`clvbayes.simulate_customers` at the CDNOW estimates and put
on a daily grid as a transaction log would (``kernels.simulate_data``: first purchases
spread over 52 weeks, purchases rounded down to whole days, one per customer and day), so
that customers share histories as real ones do. Posterior: 4 chains x 1000 draws
(``--chains``, ``--draws``) of each parameter, ``truth x exp(0.03 z)`` with independent
standard normal ``z`` (seeded), a synthetic posterior around the simulating values.

Running
-------
``python benchmarks/loo_scaling.py`` (both sizes, a few minutes);
``python benchmarks/loo_scaling.py --sizes 1e5 --out-name loo_scaling_1e5``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import _common

JITTER = 0.03
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
PACKAGES = ["clvbayes", "numpy", "numba", "arviz", "xarray"]


def posterior(chains: int, draws: int, seed: int) -> dict[str, np.ndarray]:
    """Synthetic draws ``truth x exp(JITTER z)`` (chain, draw) of every parameter."""
    from kernels import PARAMS

    rng = np.random.default_rng(seed)
    return {k: v * np.exp(JITTER * rng.standard_normal((chains, draws))) for k, v in PARAMS.items()}


def worker(args: argparse.Namespace) -> int:
    def body(phase: _common.Phases, out: dict[str, Any]) -> None:
        import clvbayes
        from kernels import simulate_data

        phase("simulate")
        data, out["simulate_s"] = _common.time_once(lambda: simulate_data(args.n, args.seed))
        phase("compress")
        rows, out["compress_s"] = _common.time_once(lambda: clvbayes.compress_rows(data["x"], data["t_x"], data["T"]))
        del data
        post = posterior(args.chains, args.draws, args.seed)
        out["n_distinct"] = rows.n_unique
        out["baseline_rss_bytes"] = _common.maxrss_bytes()
        for name in ("first", "second"):
            phase(name)
            res, out[f"{name}_s"] = _common.time_once(
                lambda: clvbayes.weighted_loo(post, rows.columns, rows.weights, warn=False))
            print(f"  {name} call: {out[f'{name}_s']:.1f} s", flush=True)
        out |= {"elpd_loo": res.elpd_loo, "se": res.se, "p_loo": res.p_loo, "r_eff": res.r_eff,
                "n_customers": res.n_customers, "pareto_k_counts": res.pareto_k_counts().to_dict()}

    return _common.run_worker(Path(args.result), body)


def run_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    files = _common.cell_files(CACHE_DIR / "logs", f"{args.out_name}_n{n}")
    cmd = [sys.executable, __file__, "--worker", "loo", "--n", str(n), "--result", str(files.result),
           "--chains", str(args.chains), "--draws", str(args.draws), "--seed", str(args.seed)]
    outcome = _common.run_subprocess_cell(cmd, files, time_cap=args.time_cap, poll=args.poll)
    result = outcome.result or {}
    peak = max(outcome.peak_rss_bytes, int(result.get("maxrss_self_bytes", 0)))
    status = outcome.killed or result.get("status", "error")
    loo_peak = max((outcome.peaks_by_phase.get(p, {}).get("total", 0) for p in ("first", "second")), default=0)
    return {"n": n, "status": status, "wall_s": outcome.wall_s, "peak_rss_bytes": peak,
            "peak_rss_during_loo_bytes": loo_peak, **result, "log": outcome.log_name}


def render_markdown(payload: dict[str, Any]) -> str:
    f = _common.fmt_number
    rows = []
    for r in payload["results"]:
        peak, base = r.get("peak_rss_bytes"), r.get("baseline_rss_bytes")
        during = r.get("peak_rss_during_loo_bytes")
        rows.append([f"{r['n']:,}", r["status"], f"{r.get('n_distinct', 0):,}", f(r.get("first_s")),
                     f(r.get("second_s")), f(peak / 2**20 if peak else None),
                     f(during / 2**20 if during else None),
                     f((peak - base) / 2**20 if peak and base else None), f(r.get("elpd_loo"), 8),
                     f(r.get("se")), f(r.get("p_loo"))])
    s = payload["system"]
    return "\n".join([
        "# PSIS-LOO over every customer (weighted distinct histories)", "",
        f"{payload['chains']} chains x {payload['draws']} draws (synthetic, jitter {JITTER:g} around the CDNOW "
        f"estimates); customers simulated on a daily grid (seed {payload['seed']}). "
        f"{s['cpu_model']}, {s['logical_cpus']} logical CPUs, {s['numba_num_threads']} Numba threads, "
        f"load {s.get('load_average_1_5_15')}, {s['date_utc']}.", "",
        _common.markdown_table(
            ["customers", "status", "distinct histories", "first call (s)", "warm call (s)", "peak RSS (MiB)",
             "peak RSS during LOO (MiB)", "LOO memory (MiB)", "elpd_loo", "se", "p_loo"], rows),
        "",
        "First call: includes Numba compilation / cache loading. Peak RSS: of the whole process, data "
        "simulation included; during LOO: polled while the two LOO calls ran; LOO memory: peak RSS minus the "
        "RSS before the first call (imports, data, draws).",
    ]) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sizes", type=_common.parse_size, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-cap", type=float, default=900.0, help="seconds per size")
    p.add_argument("--poll", type=float, default=0.2, help="RSS polling interval (s)")
    p.add_argument("--out-name", default="loo_scaling")
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    _common.add_worker_arguments(p, ["loo"])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    results = []
    for n in args.sizes:
        print(f"{n:,} customers ...", flush=True)
        t0 = time.perf_counter()
        results.append(run_size(n, args))
        print(f"  {results[-1]['status']} in {time.perf_counter() - t0:.0f} s", flush=True)
    payload = {"benchmark": "loo_scaling", "chains": args.chains, "draws": args.draws, "seed": args.seed,
               "results": results, "versions": _common.package_versions(PACKAGES), "system": _common.system_info()}
    out = _common.RESULTS_DIR / args.out_name
    _common.write_json(out.with_suffix(".json"), payload)
    md = render_markdown(payload)
    out.with_suffix(".md").write_text(md)
    print(md)
    print(json.dumps([{k: r.get(k) for k in ("n", "status", "first_s", "second_s", "peak_rss_bytes")}
                      for r in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
