"""Benchmark: cost per row of the BG/NBD covariate rows kernel, a reference revision vs the working tree.

What it measures
----------------
``bgnbd_covariate_rows_loglik_grad`` (the kernel ``FusedRowLogLik`` calls for BG/NBD, its
serial build as samplers use it) on the customers of ``covariate_scaling.py`` (3 standard
normal covariates on both sides, the simulating parameters), rows ordered by ``x`` as
``CovariatePurchaseModel._rows_loglik`` passes them. The reference kernel is the module
``clvbayes/kernels/covariate_rows.py`` at ``--ref`` (``git show``, imported under another
name; its imports resolve to the working tree, whose other kernels it shares). Both are
called alternately ``--reps`` times in one process (so load from other processes hits both
alike); per kernel the minimum and median of the thread CPU time and of the wall time per
row and per call, for all rows, the ``x = 0`` rows alone and the ``x > 0`` rows alone;
whether both return the same bits (value and every gradient entry); ``os.getloadavg()``
before and after.

Usage
-----
::

    python benchmarks/covariate_row_cost.py --n 1e6 --reps 15 --ref e4fea97

Writes ``benchmarks/results/covariate_row_cost.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import _common
import covariate_scaling
from _common import fmt_number as _f, parse_size as _size


def _ref_module(rev: str):
    """``clvbayes.kernels.covariate_rows`` as of git revision ``rev``, imported as a new module."""
    src = subprocess.run(["git", "show", f"{rev}:clvbayes/kernels/covariate_rows.py"], cwd=_common.REPO_DIR,
                         check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"covariate_rows_{rev}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _serial(mod):
    from clvbayes.kernels import build

    return build.rebuild(mod.bgnbd_covariate_rows_loglik_grad, serial=True, tag="serialbench", _memo={})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=_size, default=1_000_000)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ref", default="e4fea97", help="git revision of the reference kernel")
    ap.add_argument("--out-name", default="covariate_row_cost")
    args = ap.parse_args(argv)
    from clvbayes.kernels import covariate_rows

    arrays, meta = covariate_scaling.simulate(args.n, args.seed)
    order = np.argsort(arrays["x"], kind="stable")
    Z = np.ascontiguousarray(np.column_stack([arrays["Z"], arrays["Z"]])[order])  # purchase | dropout columns
    x, t_x, T = (np.ascontiguousarray(arrays[k][order]) for k in ("x", "t_x", "T"))
    w = np.ones(args.n)
    base = np.array(list(covariate_scaling.BASE.values()))
    gam = np.concatenate([covariate_scaling.COEFS[k] for k in ("gamma_purchase", "gamma_a", "gamma_b")])
    lo, hi = np.array([0, 0, 3, 3]), np.array([0, 3, 6, 6])
    sign = np.array([1.0, -1.0, 1.0, 1.0])
    n0 = int((x == 0).sum())
    subsets = {"all": slice(None), "x=0": slice(0, n0), "x>0": slice(n0, None)}
    kernels = {f"ref {args.ref}": _serial(_ref_module(args.ref)), "new": _serial(covariate_rows)}
    same = {}
    for name, sl in subsets.items():
        outs = [k(base, gam, Z[sl], lo, hi, sign, x[sl], t_x[sl], T[sl], w[sl]) for k in kernels.values()]  # compile
        same[name] = bool(outs[0][0] == outs[1][0] and np.array_equal(outs[0][1], outs[1][1])
                          and np.array_equal(outs[0][2], outs[1][2]))
    load_before = os.getloadavg()
    times: dict[str, dict[str, list[tuple[float, float]]]] = {s: {k: [] for k in kernels} for s in subsets}
    for _ in range(args.reps):
        for name, sl in subsets.items():
            data = (Z[sl], lo, hi, sign, x[sl], t_x[sl], T[sl], w[sl])
            for label, k in kernels.items():
                c0, t0 = time.thread_time(), time.perf_counter()
                k(base, gam, *data)
                times[name][label].append((time.thread_time() - c0, time.perf_counter() - t0))
    load_after = os.getloadavg()
    records = []
    for name, sl in subsets.items():
        rows = x[sl].size
        for label in kernels:
            cpu = [c for c, _ in times[name][label]]
            wall = [t for _, t in times[name][label]]
            records.append({"rows": name, "n_rows": rows, "kernel": label,
                            "cpu_ns_row_min": min(cpu) / rows * 1e9, "cpu_ns_row_median": statistics.median(cpu) / rows * 1e9,
                            "wall_ns_row_min": min(wall) / rows * 1e9,
                            "wall_ns_row_median": statistics.median(wall) / rows * 1e9,
                            "cpu_ms_call_min": min(cpu) * 1e3})
    payload: dict[str, Any] = {"args": vars(args), "data": meta, "same_bits": same, "loadavg_before": load_before,
                               "loadavg_after": load_after, "records": records, "system": _common.system_info()}
    results = _common.REPO_DIR / "benchmarks" / "results"
    _common.write_json(results / f"{args.out_name}.json", payload)
    head = ["rows", "n rows", "kernel", "CPU ns/row min", "CPU ns/row median", "wall ns/row min",
            "wall ns/row median", "CPU ms/call min", "ratio ref/new (CPU min)"]
    by = {(r["rows"], r["kernel"]): r for r in records}
    ref = f"ref {args.ref}"
    table = [[r["rows"], r["n_rows"], r["kernel"], _f(r["cpu_ns_row_min"]), _f(r["cpu_ns_row_median"]),
              _f(r["wall_ns_row_min"]), _f(r["wall_ns_row_median"]), _f(r["cpu_ms_call_min"]),
              _f(by[(r["rows"], ref)]["cpu_ns_row_min"] / r["cpu_ns_row_min"])] for r in records]
    md = (f"# BG/NBD covariate rows kernel: ns per row (serial, {args.n} customers, share x=0 "
          f"{meta['share_x0']:.3f}, {args.reps} interleaved reps)\n\n" + _common.markdown_table(head, table)
          + f"\n\nSame bits (value and gradients) as {ref}: {same}. Load average before {load_before}, "
            f"after {load_after} (2 cores, shared).\n")
    (results / f"{args.out_name}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
