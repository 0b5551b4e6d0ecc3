"""Cost per row of the Pareto/NBD grid gradient (``pareto_nbd_grid.loglik_sum_grad``, serial
build as the NUTS Op calls it), this tree's kernel vs the one of a git revision, interleaved
in one process on the compressed rows of the fit_scaling 10^6 cache (weeks), at the
posterior mean of that fit. Ratios from the same process are what to quote on a shared
machine; the seconds are noisy.

    PYTHONPATH=. python benchmarks/pnbd_grid_cost.py --rev f2d0928 --repeats 30 --out-name pnbd_grid_cost
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "fit_scaling_pnbd_n1000000_seed1.npz"
THETA = (0.5316, 10.35, 0.6493, 13.56)  # posterior mean at 10^6 (results/fit_scaling_pnbd_1e6_quiet.md)


def _old_module(rev: str):
    src = subprocess.run(["git", "show", f"{rev}:clvbayes/kernels/pareto_nbd_grid.py"], capture_output=True,
                         text=True, check=True, cwd=HERE.parent).stdout
    path = HERE / ".cache" / f"_pareto_nbd_grid_{rev}.py"
    if not path.exists() or path.read_text() != src:
        path.write_text(src)
    # imported by name (Numba's disk cache finds a module only so)
    sys.path.insert(0, str(path.parent))
    return importlib.import_module(path.stem)


def main() -> None:
    from clvbayes.kernels import pareto_nbd_grid as new
    from clvbayes.kernels.build import rebuild
    from clvbayes.models.base import compress_weighted

    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default="f2d0928")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out-name", default=None)
    args = ap.parse_args()
    with np.load(CACHE) as f:
        x, t_x, T = f["x"].astype(float), f["recency_days"] / 7.0, f["T_days"] / 7.0
    (xu, txu, Tu), w = compress_weighted(x, t_x, T, weights=None)
    w = np.asarray(w, dtype=float)
    old = _old_module(args.rev)
    kernels = {}
    for name, mod in (("old", old), ("new", new)):
        fn = rebuild(mod.loglik_sum_grad, serial=True, tag=f"cost_{name}")
        extra = mod.prepare(xu, txu, Tu)
        kernels[name] = (fn, extra)
        fn(*THETA, xu, txu, Tu, w, *extra)  # compile
    vals = {k: fn(*THETA, xu, txu, Tu, w, *extra) for k, (fn, extra) in kernels.items()}
    times = {k: [] for k in kernels}
    for _ in range(args.repeats):
        for k, (fn, extra) in kernels.items():
            t0 = time.perf_counter()
            fn(*THETA, xu, txu, Tu, w, *extra)
            times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    res = {
        "rows": int(xu.size), "theta": THETA, "rev": args.rev, "repeats": args.repeats,
        "median_ms": {k: 1e3 * v for k, v in med.items()},
        "ns_per_row": {k: 1e9 * v / xu.size for k, v in med.items()},
        "old_over_new": med["old"] / med["new"],
        "value_rel_diff": abs(vals["new"][0] - vals["old"][0]) / abs(vals["old"][0]),
        "grad_rel_diff": float(np.max(np.abs(vals["new"][1] - vals["old"][1]) / np.abs(vals["old"][1]))),
    }
    print(json.dumps(res, indent=1))
    if args.out_name:
        out = HERE / "results" / args.out_name
        out.with_suffix(".json").write_text(json.dumps(res, indent=1))
        out.with_suffix(".md").write_text(
            f"# Pareto/NBD grid gradient cost per row\n\n`python benchmarks/pnbd_grid_cost.py --rev {args.rev} "
            f"--repeats {args.repeats}`: serial `loglik_sum_grad` on the {res['rows']:,} compressed rows of the 10^6 "
            f"fit_scaling data at θ = {THETA}, old (git {args.rev}) and new interleaved in one process, median of "
            f"{args.repeats}.\n\n| kernel | ms per call | ns per row |\n|---|---|---|\n"
            + "".join(f"| {k} | {res['median_ms'][k]:.2f} | {res['ns_per_row'][k]:.1f} |\n" for k in kernels)
            + f"\nold / new: **{res['old_over_new']:.2f}x**; relative difference of the sums: value "
            f"{res['value_rel_diff']:.1e}, gradient {res['grad_rel_diff']:.1e}.\n"
        )


if __name__ == "__main__":
    main()
