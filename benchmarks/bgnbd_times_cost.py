"""Benchmark: BG/NBD likelihood + gradient per row, logs per row vs the table of distinct times.

What it measures
----------------
``bgnbd_loglik_sum_grad`` (``ln(1 + T/α)``, ``ln(1 + t_x/α)``, ``1/(α+T)`` and ``1/(α+t_x)``
computed per row, x scanned for the x-table in every call) against
``bgnbd_loglik_sum_grad_prepared`` (the time terms read from a table over the data's distinct
times and the x-table rows found once, ``clvbayes.kernels.bgnbd.prepare``; what
``FamilyLogLik("bgnbd")`` calls), both as the
serial builds NUTS runs (one chain per core), on the customers of ``hierarchical_scaling.py``
(``--n`` customers in 10 segments, summarised by day, weeks as the unit):

- ``per segment``: each segment's compressed rows, one call per segment (the hierarchical
  model's likelihood; summed over the 10 calls);
- ``pooled``: all customers compressed together (the plain BG/NBD model);
- ``continuous T``: the same customers with ages jittered off the day grid (more distinct
  times than rows: ``prepare`` returns no table and the prepared kernel takes the logs per
  row, so it should cost the same).

Both kernels are called alternately ``--reps`` times in one process (load from other
processes hits both alike); per kernel the minimum and median thread CPU time per row;
whether both return the same bits (value and gradient); ``os.getloadavg()`` before and after.

Usage
-----
::

    python benchmarks/bgnbd_times_cost.py --n 1e6 --reps 15

Writes ``benchmarks/results/bgnbd_times_cost.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np

import _common
import hierarchical_scaling
from _common import fmt_number as _f, parse_size as _size

THETA = (0.243, 4.414, 0.793, 2.426)  # FHL (2005) CDNOW estimates


def _groups(n: int, seed: int) -> dict[str, list[tuple[np.ndarray, ...]]]:
    from clvbayes.models.base import compress_weighted

    path, _ = hierarchical_scaling.ensure_data(n, 10, seed)
    with np.load(path) as f:
        seg, x, t_x, T = f["segment"], f["x"].astype(float), f["recency_days"] / 7.0, f["T_days"] / 7.0
    jitter = np.random.default_rng(seed).uniform(0.0, 1.0 / 7.0, x.size)  # off the day grid
    T_cont = T + jitter
    out: dict[str, list[tuple[np.ndarray, ...]]] = {"per segment": [], "pooled": [], "continuous T": []}
    for s in np.unique(seg):
        m = seg == s
        (xu, tu, Tu), w = compress_weighted(x[m], t_x[m], T[m])
        out["per segment"].append((xu, tu, Tu, w))
    (xu, tu, Tu), w = compress_weighted(x, t_x, T)
    out["pooled"].append((xu, tu, Tu, w))
    (xu, tu, Tu), w = compress_weighted(x, t_x, T_cont)
    out["continuous T"].append((xu, tu, Tu, w))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=_size, default=1_000_000)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-name", default="bgnbd_times_cost")
    args = ap.parse_args(argv)
    from clvbayes.kernels import bgnbd, build

    memo: dict = {}
    kernels = {"logs per row": build.rebuild(bgnbd.bgnbd_loglik_sum_grad, serial=True, tag="serialbench", _memo=memo),
               "times table": build.rebuild(bgnbd.bgnbd_loglik_sum_grad_prepared, serial=True, tag="serialbench",
                                            _memo=memo)}
    groups = _groups(args.n, args.seed)
    calls = {name: {"logs per row": [d for d in data],
                    "times table": [(*d, *bgnbd.prepare(*d[:3])) for d in data]} for name, data in groups.items()}
    same, n_rows, n_times = {}, {}, {}
    for name, by_kernel in calls.items():
        outs = {k: [kernels[k](*THETA, *d) for d in ds] for k, ds in by_kernel.items()}
        same[name] = all(a[0] == b[0] and np.array_equal(a[1], b[1])
                         for a, b in zip(outs["logs per row"], outs["times table"], strict=True))
        n_rows[name] = int(sum(d[0].size for d in groups[name]))
        n_times[name] = int(sum(d[4].size for d in by_kernel["times table"]))
    load_before = os.getloadavg()
    cpu: dict[str, dict[str, list[float]]] = {name: {k: [] for k in kernels} for name in calls}
    for _ in range(args.reps):
        for name, by_kernel in calls.items():
            for k, ds in by_kernel.items():
                c0 = time.thread_time()
                for d in ds:
                    kernels[k](*THETA, *d)
                cpu[name][k].append(time.thread_time() - c0)
    load_after = os.getloadavg()
    records = []
    for name in calls:
        for k in kernels:
            c = cpu[name][k]
            records.append({"data": name, "rows": n_rows[name], "distinct_times": n_times[name], "kernel": k,
                            "cpu_ns_row_min": min(c) / n_rows[name] * 1e9,
                            "cpu_ns_row_median": statistics.median(c) / n_rows[name] * 1e9,
                            "cpu_ms_min": min(c) * 1e3})
    payload: dict[str, Any] = {"args": vars(args), "same_bits": same, "loadavg_before": load_before,
                               "loadavg_after": load_after, "records": records, "system": _common.system_info()}
    results = _common.REPO_DIR / "benchmarks" / "results"
    _common.write_json(results / f"{args.out_name}.json", payload)
    by = {(r["data"], r["kernel"]): r for r in records}
    head = ["data", "rows", "distinct times (table)", "kernel", "CPU ns/row min", "CPU ns/row median", "CPU ms min",
            "ratio logs per row / this (min)"]
    table = [[r["data"], r["rows"], r["distinct_times"], r["kernel"], _f(r["cpu_ns_row_min"]),
              _f(r["cpu_ns_row_median"]), _f(r["cpu_ms_min"]),
              _f(by[(r["data"], "logs per row")]["cpu_ns_row_min"] / r["cpu_ns_row_min"])] for r in records]
    md = (f"# BG/NBD likelihood + gradient (serial): logs per row vs a table over the distinct times\n\n"
          f"{args.n} customers of hierarchical_scaling.py (10 segments, daily summary, weeks), parameters {THETA}, "
          f"{args.reps} interleaved repetitions, thread CPU time.\n\n" + _common.markdown_table(head, table)
          + f"\n\nSame bits (value and gradient) in every data set: {same}. Load average before {load_before}, "
            f"after {load_after} (2 cores, shared).\n")
    (results / f"{args.out_name}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
