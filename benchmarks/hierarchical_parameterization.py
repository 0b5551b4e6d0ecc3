"""Benchmark: centred vs non-centred hierarchical BG/NBD (``HierarchicalPurchaseModel``).

Which parameterisation should be the default? Two data shapes, the two ends of what
segments look like in practice:

- ``many_small``: 30 segments of 50-200 customers each (little data per segment: the
  posterior of a segment's parameters is close to its hyper-prior, the shape where a centred
  hierarchy has a funnel in (log theta_s, sigma));
- ``few_huge``: 3 segments of 20,000 customers (each segment's likelihood dominates: the
  shape where the non-centred form can mix worse);
- ``ten_1k``, ``ten_5k``: 10 segments of 1,000 and of 5,000 customers, between the two (where
  the switch of ``parameterization="auto"`` is placed).

Per data set and parameterisation, in one process: NUTS under nutpie, ``--chains`` x
(``--tune`` + ``--draws``), the same seed; fit seconds, gradient evaluations over the kept
draws (``n_steps``), divergences, max r_hat and min bulk ESS over the hyper-parameters
(``mu_*``, ``sigma_*``) and the segment parameters (``*_segment``), and min ESS per 1,000
gradient evaluations (the machine-independent efficiency). Segment parameters are drawn as
``log theta_s = log theta + 0.3 z_s``, ``z_s ~ N(0, 1)``, around the CDNOW BG/NBD estimates.

Run from the repository root::

    python benchmarks/hierarchical_parameterization.py            # both data sets, 4 x (1000 + 1000)
    python benchmarks/hierarchical_parameterization.py --draws 300 --tune 300 --out-name hierarchical_parameterization_smoke

Writes ``results/<out-name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common
import numpy as np
import pandas as pd

BASE = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)  # FHL 2005 CDNOW BG/NBD estimates (weeks)
SPREAD = 0.3  # sd of the segments' log parameters around the base
SHAPES = {"many_small": None, "few_huge": (3, 20_000), "ten_1k": (10, 1_000), "ten_5k": (10, 5_000)}


def make_data(shape: str, seed: int) -> pd.DataFrame:
    """Simulated customers of the named data shape, a ``segment`` column, T on 1..52 weeks."""
    import clvbayes as cb

    rng = np.random.default_rng(seed)
    sizes = rng.integers(50, 201, 30) if shape == "many_small" else np.full(*SHAPES[shape])
    parts = []
    for k, n in enumerate(sizes):
        theta = {p: v * float(np.exp(SPREAD * rng.normal())) for p, v in BASE.items()}
        T = rng.integers(7, 365, int(n)) / 7.0
        df = cb.simulate_customers(**theta, T=T, n_customers=int(n), seed=seed * 1000 + k)
        parts.append(df.assign(segment=f"s{k:02d}"))
    out = pd.concat(parts, ignore_index=True)
    out["customer_id"] = np.arange(len(out))
    return out


def run_one(data: pd.DataFrame, parameterization: str, args) -> dict:
    import clvbayes as cb

    model = cb.HierarchicalPurchaseModel(data, segment="segment", parameterization=parameterization)
    t0 = time.perf_counter()
    model.fit(draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed)
    fit_s = time.perf_counter() - t0
    return {"parameterization": parameterization, "customers": int(len(data)),
            "segments": int(data["segment"].nunique()), "fit_s": fit_s, **diagnostics(model.idata_)}


def diagnostics(idata) -> dict:
    """Gradient evaluations over the kept draws, divergences, max r_hat and min bulk ESS over
    the hyper-parameters and segment parameters, min ESS per 1,000 gradients, the worst one."""
    import arviz as az

    names = [v for v in idata.posterior.data_vars if v.startswith(("mu_", "sigma_")) or v.endswith("_segment")]
    summ = az.summary(idata, var_names=names, kind="diagnostics")
    stats = idata.sample_stats
    grads = int(stats["n_steps"].sum()) if "n_steps" in stats else None
    min_ess = float(summ["ess_bulk"].min())
    return {
        "grad_evals_draws": grads,
        "divergences": int(stats["diverging"].sum()) if "diverging" in stats else 0,
        "max_r_hat": float(summ["r_hat"].max()), "min_ess_bulk": min_ess,
        "min_ess_per_1000_grads": None if not grads else 1000.0 * min_ess / grads,
        "worst": str(summ["ess_bulk"].idxmin()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["many_small", "few_huge"], choices=list(SHAPES))
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-name", default="hierarchical_parameterization")
    args = parser.parse_args()
    rows = []
    for shape in args.shapes:
        data = make_data(shape, args.seed)
        for par in ("non_centred", "centred"):
            print(f"{shape}: {par} ...", flush=True)
            rows.append({"data": shape, **run_one(data, par, args)})
            print(f"  {rows[-1]}", flush=True)
    payload = {"settings": vars(args), "system": _common.system_info(), "results": rows}
    out = _common.RESULTS_DIR / f"{args.out_name}.json"
    _common.write_json(out, payload)
    header = ["data", "parameterization", "customers", "segments", "fit s", "grad evals (draws)", "divergences",
              "max r_hat", "min ESS bulk", "min ESS / 1000 grads", "worst"]
    table = _common.markdown_table(header, [[r["data"], r["parameterization"], r["customers"], r["segments"],
                                             f"{r['fit_s']:.1f}", r["grad_evals_draws"], r["divergences"],
                                             f"{r['max_r_hat']:.3f}", f"{r['min_ess_bulk']:.0f}",
                                             _common.fmt_number(r["min_ess_per_1000_grads"]), r["worst"]]
                                            for r in rows])
    md = (f"# Hierarchical BG/NBD: centred vs non-centred\n\nGenerated by `python benchmarks/"
          f"hierarchical_parameterization.py --draws {args.draws} --tune {args.tune} --chains {args.chains} "
          f"--out-name {args.out_name}`; NUTS (nutpie), seed {args.seed}. Data shapes and columns: the script's "
          f"docstring. Machine: {payload['system'].get('cpu_model', '')}, load shared (compare gradient counts and ESS per "
          f"gradient, not seconds).\n\n{table}\n")
    Path(out.with_suffix(".md")).write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
