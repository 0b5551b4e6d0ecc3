"""Benchmark: cost of one NUTS gradient, clvbayes vs PyMC-Marketing, under nutpie.

Where PyMC-Marketing cannot finish a full NUTS run within ``fit_scaling.py``'s time cap
(it timed out at 10^5 customers), this script measures what such a run is made of, on the
same cached data: the wall time of one evaluation of the log-density and its gradient as
nutpie calls it (the Numba-compiled function of ``nutpie.compile_pymc_model``), for
clvbayes' ``BetaGeoModel`` (compressed rows, Numba kernel) and PyMC-Marketing's
``BetaGeoModel`` (one row per customer), interleaved in one process. With the number of
gradient evaluations each sampler needed in ``results/fit_scaling.json`` (PyMC-Marketing: its
largest completed size), it estimates PyMC-Marketing's full fit time:

    estimate = compile + gradient evaluations x seconds per evaluation / min(chains, cores)

and compares it with clvbayes' measured fit at the same size. The estimate is labelled as
such in the output; it assumes PyMC-Marketing's gradient count does not grow with n (it
fell slightly from 10^3 to 10^4 in the smoke and main runs).

Run from the repository root after ``fit_scaling.py``::

    python benchmarks/gradient_cost.py --sizes 1e5 1e6 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import _common
import fit_scaling
import numpy as np


def _clvbayes_logp(df):
    import clvbayes
    from clvbayes.models import bayesian

    model = clvbayes.BetaGeoModel(df.set_index("customer_id"))
    # Compile afresh: ``logp_func`` (the Python-callable twin of nutpie's compiled function)
    # holds the data of the model it was compiled from, while a cache hit only swaps the
    # data of nutpie's own compiled function.
    bayesian._NUTPIE_CACHE.clear()
    compiled = bayesian._compiled_nutpie(model.model)
    point = np.log(np.array([0.24, 4.4, 0.8, 2.4]))
    return compiled, point


def _pmm_logp(df):
    import nutpie
    from pymc_marketing.clv import BetaGeoModel

    pmm = BetaGeoModel()
    pmm.build_model(df)
    compiled = nutpie.compile_pymc_model(pmm.model)
    # unconstrained point: 0 on every coordinate (every parameter at its transform's 1)
    point = np.zeros(compiled.n_dim)
    return compiled, point


def measure(n: int, seed: int, repeats: int) -> dict[str, Any]:
    path, meta = fit_scaling.ensure_data(n, seed)
    df = fit_scaling.load_frame(path)
    out: dict[str, Any] = {"n": n, "unique_rows": meta["n_unique_rows"]}
    fns = {}
    for name, build in (("clvbayes", _clvbayes_logp), ("pmm", _pmm_logp)):
        t0 = time.perf_counter()
        compiled, point = build(df)
        out[f"{name}_compile_s"] = time.perf_counter() - t0
        fn = compiled.logp_func
        value, grad = fn(point)
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            raise RuntimeError(f"{name}: non-finite log-density at the test point")
        fns[name] = (lambda f=fn, p=point: f(p))
    timing = _common.time_interleaved(fns, repeats, progress=False)
    for name, t in timing.items():
        out[f"{name}_grad_s"] = t["best_s"]
        out[f"{name}_grad_median_s"] = t["median_s"]
    out["grad_cost_ratio"] = out["pmm_grad_s"] / out["clvbayes_grad_s"]
    return out


def estimate(rows: list[dict[str, Any]], scaling: dict[str, Any], chains: int) -> None:
    """Add the full-fit estimate for PyMC-Marketing (nutpie) next to clvbayes' measured fit."""
    records = scaling["records"]
    pmm_ok = [r for r in records if r["key"] == "pmm_nutpie" and r["status"] == "ok" and r.get("n_grad_evals")]
    pmm_ref = max(pmm_ok, key=lambda r: r["n"]) if pmm_ok else None
    cores = os.cpu_count() or 1
    for row in rows:
        ours = next((r for r in records if r["key"] == "clvbayes_nutpie" and r["n"] == row["n"]), None)
        row["clvbayes_fit_s"] = ours["fit_s"] if ours and ours["status"] == "ok" else None
        row["clvbayes_grad_evals"] = ours.get("n_grad_evals") if ours else None
        measured = next((r for r in pmm_ok if r["n"] == row["n"]), None)
        row["pmm_fit_measured_s"] = measured["fit_s"] if measured else None
        if pmm_ref is None:
            continue
        row["pmm_grad_evals_from_n"] = pmm_ref["n"]
        row["pmm_grad_evals"] = pmm_ref["n_grad_evals"]
        row["pmm_fit_estimate_s"] = row["pmm_compile_s"] + pmm_ref["n_grad_evals"] * row["pmm_grad_s"] / min(chains, cores)
        if row["clvbayes_fit_s"]:
            row["estimated_speedup"] = row["pmm_fit_estimate_s"] / row["clvbayes_fit_s"]


def render(payload: dict[str, Any]) -> str:
    header = [
        "customers", "clvbayes rows", "clvbayes s/gradient", "PMM s/gradient", "× per gradient",
        "clvbayes gradients (measured)", "PMM gradients (from n)", "clvbayes fit s (measured)",
        "PMM fit s (estimate)", "PMM fit s (measured)", "× fit (estimate)",
    ]
    body = []
    for r in payload["rows"]:
        body.append([
            f"{r['n']:,}", f"{r['unique_rows']:,}", f"{r['clvbayes_grad_s']:.4g}", f"{r['pmm_grad_s']:.4g}",
            f"{r['grad_cost_ratio']:.1f}", f"{r.get('clvbayes_grad_evals') or '—'}",
            f"{r.get('pmm_grad_evals', '—')} (n={r.get('pmm_grad_evals_from_n', '—'):,})" if r.get("pmm_grad_evals") else "—",
            f"{r['clvbayes_fit_s']:.0f}" if r.get("clvbayes_fit_s") else "—",
            f"{r['pmm_fit_estimate_s']:.0f}" if r.get("pmm_fit_estimate_s") else "—",
            f"{r['pmm_fit_measured_s']:.0f}" if r.get("pmm_fit_measured_s") else "— (not finished)",
            f"{r['estimated_speedup']:.0f}" if r.get("estimated_speedup") else "—",
        ])
    info = payload["system"]
    return "\n".join([
        "# One NUTS gradient under nutpie: clvbayes vs PyMC-Marketing",
        "",
        f"Generated by `python benchmarks/gradient_cost.py {' '.join(payload['argv'])}` on {info['date_utc']}.",
        "",
        "Seconds per evaluation of log-density + gradient as nutpie calls it (best of "
        f"{payload['repeats']} interleaved rounds), on `fit_scaling.py`'s cached data. PyMC-Marketing's fit "
        "time is an **estimate**: its compile time + its gradient count at the largest size it finished in "
        "`fit_scaling.json` x its measured seconds per gradient / min(chains, cores). clvbayes' fit time is "
        "measured (fit_scaling.json). Where PyMC-Marketing did finish, its measured time is shown "
        "beside the estimate as a check of the method (the estimate is low: it leaves out the sampler's own "
        "work and two chains sharing a core).",
        "",
        _common.markdown_table(header, body),
        "",
        f"Machine: {info['cpu_model']}, {info['logical_cpus']} logical CPUs, load average "
        f"{', '.join(f'{v:.2f}' for v in info.get('load_average_1_5_15', []))} at the end of the run.",
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sizes", type=_common.parse_size, nargs="+", default=[10**5, 10**6])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--scaling", default=str(_common.RESULTS_DIR / "fit_scaling.json"))
    args = p.parse_args(argv)
    rows = [measure(n, args.seed, args.repeats) for n in args.sizes]
    with open(args.scaling) as f:
        estimate(rows, json.load(f), args.chains)
    payload = {
        "argv": argv if argv is not None else __import__("sys").argv[1:],
        "repeats": args.repeats,
        "rows": rows,
        "system": _common.system_info(),
        "versions": _common.package_versions(["clvbayes", "numba", "pymc", "pytensor", "nutpie", "pymc-marketing"]),
    }
    _common.write_json(_common.RESULTS_DIR / "gradient_cost.json", payload)
    md = render(payload)
    (_common.RESULTS_DIR / "gradient_cost.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
