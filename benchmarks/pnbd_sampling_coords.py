"""Pareto/NBD NUTS: gradient evaluations per draw in the natural (log r, log alpha, log s,
log beta) coordinates vs the rate coordinates (log r, log r/alpha, log s, log s/beta) of
:func:`clvbayes.models.purchase.rate_coordinates`, and target_accept 0.95 vs 0.8.

Leapfrog counts (nutpie's ``n_steps``, draws and tuning) do not depend on machine noise; the
seconds do. Data: the first ``n`` customers of the fit_scaling Pareto/NBD cache (weeks).

    PYTHONPATH=. python benchmarks/pnbd_sampling_coords.py --n 100000 --out-name pnbd_sampling_coords_1e5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "fit_scaling_pnbd_n1000000_seed1.npz"


def _frame(n: int) -> pd.DataFrame:
    if n == 0:  # CDNOW (Fader, Hardie & Lee 2005 split, weeks)
        import clvbayes

        return clvbayes.calibration_holdout_split(clvbayes.datasets.load_cdnow_sample(), calibration_end="1997-09-30",
                                                  observation_end="1998-06-30")
    with np.load(CACHE) as f:
        x, rec, T_days = f["x"][:n], f["recency_days"][:n], f["T_days"][:n]
    return pd.DataFrame({"frequency": x.astype(float), "recency": rec / 7.0, "T": T_days / 7.0})


def run(n: int, coords: str, target_accept: float, seed: int) -> dict:
    import arviz as az

    from clvbayes import ParetoNBDModel

    cls = type("M", (ParetoNBDModel,), {"rate_pairs": ((0, 1), (2, 3)) if coords == "rate" else ()})
    model = cls(_frame(n))
    t0 = time.perf_counter()
    model.fit(chains=4, draws=1000, tune=1000, random_seed=seed, progressbar=False, target_accept=target_accept,
              save_warmup=True)
    seconds = time.perf_counter() - t0
    idata = model.idata_
    steps_d = int(idata.sample_stats["n_steps"].sum())
    steps_t = int(idata.warmup_sample_stats["n_steps"].sum())
    summ = az.summary(idata, var_names=["r", "alpha", "s", "beta"], kind="diagnostics")
    return {
        "n": n, "coords": coords, "target_accept": target_accept, "seed": seed, "seconds": round(seconds, 1),
        "grad_evals_draws": steps_d, "grad_evals_tune": steps_t,
        "per_draw": round(steps_d / 4000, 3), "per_iteration": round((steps_d + steps_t) / 8000, 3),
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "max_r_hat": float(summ["r_hat"].max()), "min_ess_bulk": float(summ["ess_bulk"].min()),
        "means": {p: float(idata.posterior[p].mean()) for p in ("r", "alpha", "s", "beta")},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000, help="customers; 0: CDNOW")
    ap.add_argument("--configs", default="natural:0.95,rate:0.95,natural:0.8,rate:0.8")
    ap.add_argument("--seeds", default="1", help="comma-separated seeds, each config run with each")
    ap.add_argument("--out-name", default=None)
    args = ap.parse_args()
    rows = []
    for cfg in args.configs.split(","):
        coords, ta = cfg.split(":")
        for seed in args.seeds.split(","):
            rows.append(run(args.n, coords, float(ta), int(seed)))
            print(json.dumps(rows[-1]), flush=True)
    if args.out_name:
        out = HERE / "results" / args.out_name
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
        lines = [f"# Pareto/NBD NUTS sampling coordinates, {f'{args.n:,} customers' if args.n else 'CDNOW'}", "",
                 f"`python benchmarks/pnbd_sampling_coords.py --n {args.n} --configs {args.configs} --seeds {args.seeds}`; 4 chains x "
                 "(1000 tune + 1000 draws), nutpie, low-rank mass matrix. Gradient evaluations = leapfrog steps "
                 "(machine-independent); seconds are noisy (shared 2-core machine).", "",
                 "| coords | target_accept | seed | grad evals / draw | / iteration (incl. tune) | div. | max r_hat | "
                 "min ESS bulk | s |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['coords']} | {r['target_accept']} | {r['seed']} | {r['per_draw']} | {r['per_iteration']} | "
                         f"{r['divergences']} | {r['max_r_hat']:.3f} | {r['min_ess_bulk']:.0f} | {r['seconds']} |")
        out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
