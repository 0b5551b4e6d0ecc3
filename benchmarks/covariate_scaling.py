"""Benchmark: BG/NBD with 3 continuous covariates (issue 15), clvbayes' rows path vs PyMC-Marketing.

What it measures
----------------
For every population size and tool, in a fresh subprocess with a wall-time cap and a memory
cap (``_common.run_subprocess_cell``): NUTS under nutpie, ``--chains`` chains of
``--tune`` + ``--draws`` steps, the same ``--seed``; the wall time of the fit (model object
from a ready frame to the posterior), nutpie's compile and sampling times, the gradient
evaluations (``n_steps`` over tuning and draws, ``save_warmup=True`` as in
``fit_scaling.py``), the peak memory of the process tree, divergences, and per parameter the
posterior mean, sd and z-score against the simulating value.

==================  ======================================================================
cell                what is run
==================  ======================================================================
``clvbayes``        ``CovariatePurchaseModel(df, purchase_covariates=Z, dropout_covariates=Z,
                    path="rows").fit(...)`` (one ``FusedRowLogLik`` term)
``pmm``             ``pymc_marketing.clv.BetaGeoModel(model_config={"purchase_covariate_cols":
                    Z, "dropout_covariate_cols": Z}).fit(data=df, method="mcmc",
                    nuts_sampler="nutpie", ...)`` (its default priors)
==================  ======================================================================

A cell over ``--time-cap`` is killed (``timeout``), one over ``--mem-cap-gb`` or killed by
the OOM killer is ``oom``, any other failure ``error`` with its message; after a
timeout/oom the tool is not run at larger sizes (``skipped``).

Data
----
``n`` customers, ``Z = (z1, z2, z3)`` i.i.d. standard normal, ``T`` uniform on 1..52 weeks
(whole days), and per customer ``α_i = α exp(-z'γ_purchase)``, ``a_i = a exp(z'γ_a)``,
``b_i = b exp(z'γ_b)`` (the links of ``clvbayes.models.covariate.COVARIATE_LINKS``) at the
CDNOW BG/NBD estimates of Fader, Hardie & Lee (2005) and the coefficients ``COEFS``; then
BG/NBD itself (FHL 2005, section 2): ``λ_i ~ Gamma(r, α_i)``, ``p_i ~ Beta(a_i, b_i)``,
exponential inter-purchase times, a dropout with probability ``p_i`` after each repeat
purchase. Seeded (``numpy.random.default_rng(seed)``), cached as
``benchmarks/.cache/covariate_scaling_n{n}_seed{seed}.npz``. PyMC-Marketing's model has
the same links (its ``a``/``b`` covariates as clvbayes' ``gamma_a``/``gamma_b``, both on
``dropout_covariate_cols``), so both fit the simulating model.

Usage
-----
Smoke run (minutes)::

    python benchmarks/covariate_scaling.py --sizes 1000 --draws 100 --tune 100 --out-name covariate_scaling_smoke

Issue 15's target (10^6 customers, 4 x (1000 + 1000), <= 10 minutes on 2 cores)::

    python benchmarks/covariate_scaling.py --sizes 1e4 1e5 1e6 --time-cap 3600 --mem-cap-gb 12

Writes ``benchmarks/results/<out-name>.json`` and ``.md`` after every cell; worker logs
``benchmarks/.cache/logs/<out-name>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import _common
import fit_scaling
from _common import fmt_number as _f  # noqa: E402

BASE = {"r": 0.2425945, "alpha": 4.4136019, "a": 0.7929199, "b": 2.4258881}
COEFS = {"gamma_purchase": [0.3, -0.2, 0.1], "gamma_a": [0.2, 0.0, -0.3], "gamma_b": [-0.1, 0.25, 0.0]}
COLS = ["z1", "z2", "z3"]
TOOLS = ("clvbayes", "pmm")
CACHE = _common.REPO_DIR / "benchmarks" / ".cache"


def simulate(n: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Customers of the covariate BG/NBD (module docstring): arrays and a summary."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 3))
    T = rng.integers(7, 365, n) / 7.0
    alpha = BASE["alpha"] * np.exp(-Z @ COEFS["gamma_purchase"])
    a = BASE["a"] * np.exp(Z @ COEFS["gamma_a"])
    b = BASE["b"] * np.exp(Z @ COEFS["gamma_b"])
    lam = rng.gamma(BASE["r"], 1.0 / alpha)
    p = rng.beta(a, b)
    x, t_x, t = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():  # one purchase per active customer per pass
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1.0, idx.size) / lam[idx]
        within = t[idx] <= T[idx]
        buy = idx[within]
        x[buy] += 1.0
        t_x[buy] = t[buy]
        alive[idx[~within]] = False
        alive[buy[rng.uniform(size=buy.size) < p[buy]]] = False
    arrays = {"Z": Z, "x": x, "t_x": t_x, "T": T}
    return arrays, {"n": n, "seed": seed, "mean_x": float(x.mean()), "share_x0": float((x == 0).mean())}


def ensure_data(n: int, seed: int) -> tuple[Path, dict[str, Any]]:
    path = CACHE / f"covariate_scaling_n{n}_seed{seed}.npz"
    meta = _common.cached_npz(path, lambda: simulate(n, seed))
    return path, meta


def load_frame(path: Path):
    import pandas as pd

    with np.load(path) as f:
        df = pd.DataFrame({"customer_id": np.arange(f["x"].size), "frequency": f["x"], "recency": f["t_x"],
                           "T": f["T"]})
        for j, c in enumerate(COLS):
            df[c] = f["Z"][:, j]
    return df


def _truth() -> dict[str, float]:
    out = dict(BASE)
    for name, v in COEFS.items():
        out |= {f"{name}[{j}]": float(c) for j, c in enumerate(v)}
    return out


def worker(args: argparse.Namespace) -> int:
    def body(phase, out):
        timings: dict[str, float] = {}
        fit_scaling._instrument_nutpie(timings)
        phase("load")
        df = load_frame(Path(args.data))
        kw = dict(draws=args.draws, tune=args.tune, chains=args.chains)
        phase("fit")
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if args.worker == "clvbayes":
                from clvbayes import CovariatePurchaseModel

                m = CovariatePurchaseModel(df, purchase_covariates=COLS, dropout_covariates=COLS, path="rows")
                m.fit(random_seed=args.seed, **kw)
                idata = m.idata_
                names = {n: n for n in BASE} | {f"{k}[{j}]": (k, j) for k in COEFS for j in range(3)}
            else:
                from pymc_marketing.clv import BetaGeoModel

                pmm = BetaGeoModel(model_config={"purchase_covariate_cols": COLS, "dropout_covariate_cols": COLS})
                idata = pmm.fit(data=df, method="mcmc", nuts_sampler="nutpie", random_seed=args.seed, **kw)
                pm_names = {"gamma_purchase": "purchase_coefficient_alpha", "gamma_a": "dropout_coefficient_a",
                            "gamma_b": "dropout_coefficient_b"}
                names = ({"r": "r", "alpha": "alpha_scale", "a": "a_scale", "b": "b_scale"}
                         | {f"{k}[{j}]": (pm_names[k], j) for k in COEFS for j in range(3)})
        out["fit_s"] = time.perf_counter() - t0
        out["warnings"] = _common.warning_lines(caught)
        phase("summary")
        out |= timings
        steps = [fit_scaling._sum_stat(idata, g, ("n_steps",)) for g in ("warmup_sample_stats", "sample_stats")]
        out["n_grad_evals"] = sum(s for s in steps if s is not None)
        out["divergences"] = fit_scaling._sum_stat(idata, "sample_stats", ("diverging",))
        post = idata.posterior
        params = {}
        for label, true in _truth().items():
            key = names[label]
            try:
                v = post[key] if isinstance(key, str) else post[key[0]].isel({post[key[0]].dims[-1]: key[1]})
            except KeyError:
                continue
            mean, sd = float(v.mean()), float(v.std())
            params[label] = {"mean": mean, "sd": sd, "true": true, "z": (mean - true) / sd if sd > 0 else None}
        out["params"] = params

    return _common.run_worker(Path(args.result), body)


def render(payload: dict[str, Any]) -> str:
    rows = []
    for r in payload["records"]:
        rows.append([r["n"], r["tool"], r["status"], _f(r.get("fit_s")), _f(r.get("compile_s")),
                     _f(r.get("sampling_s")), r.get("n_grad_evals") or "—",
                     _f(r["sampling_s"] / r["n_grad_evals"] * 1e3) if r.get("n_grad_evals") and r.get("sampling_s")
                     else "—", _f((r.get("peak_rss_bytes") or 0) / 2**30), r.get("divergences", "—"),
                     _f(max((abs(p["z"]) for p in r.get("params", {}).values() if p["z"] is not None), default=None)),
                     _f(r["loadavg_before"][0]) if r.get("loadavg_before") else "—",
                     _f(r["loadavg_after"][0]) if r.get("loadavg_after") else "—", r.get("message", "")])
    head = ["customers", "tool", "status", "fit s", "compile s", "sampling s", "gradient evals",
            "ms / gradient (chains in parallel)", "peak GB", "divergences", "max |z|", "load 1 min before",
            "load 1 min after", "message"]
    return (f"# BG/NBD with 3 continuous covariates, NUTS {payload['args']['chains']} x "
            f"({payload['args']['tune']} + {payload['args']['draws']})\n\n" + _common.markdown_table(head, rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _common.add_run_arguments(ap, sizes=[1000], tools=TOOLS, seed=0, time_cap=1800.0, mem_cap_gb=12.0, poll=0.5,
                              out_name="covariate_scaling")
    ap.add_argument("--merge", nargs="+", metavar="NAME",
                    help="write <out-name>.json/.md from the records of these result files (runs of single cells)")
    _common.add_worker_arguments(ap, TOOLS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    results = _common.REPO_DIR / "benchmarks" / "results"
    if args.merge:
        parts = [json.loads((results / f"{name}.json").read_text()) for name in args.merge]
        merged = dict(parts[0], merged_from=args.merge, records=[r for p in parts for r in p["records"]],
                      data={k: v for p in parts for k, v in p["data"].items()})
        _common.write_json(results / f"{args.out_name}.json", merged)
        (results / f"{args.out_name}.md").write_text(render(merged))
        return 0
    results.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"args": vars(args), "coefficients": COEFS, "base": BASE, "records": [], "data": {},
                               "system": _common.system_info(),
                               "versions": _common.package_versions(["clvbayes", "pymc", "pymc_marketing", "nutpie"])}
    failed: set[str] = set()
    python = {"clvbayes": sys.executable, "pmm": os.environ.get("PMM_PYTHON", "/work/venv-bench/bin/python")}
    for n in args.sizes:
        path, meta = ensure_data(n, args.seed)
        payload["data"][str(n)] = meta
        for tool in args.tools:
            rec: dict[str, Any] = {"n": n, "tool": tool}
            if tool in failed:
                rec["status"] = "skipped"
            else:
                files = _common.cell_files(CACHE / "logs" / args.out_name, f"{tool}_n{n}")
                cmd = [python[tool], str(Path(__file__).resolve()), "--worker", tool, "--data", str(path),
                       "--result", str(files.result), "--draws", str(args.draws), "--tune", str(args.tune),
                       "--chains", str(args.chains), "--seed", str(args.seed)]
                env = dict(os.environ)
                env.pop("PYTHONPATH", None) if tool == "pmm" else None
                rec["loadavg_before"] = os.getloadavg()  # the machine is shared: quote ratios
                oc = _common.run_subprocess_cell(cmd, files, time_cap=args.time_cap, poll=args.poll,
                                                 rss_cap=args.mem_cap_gb * 2**30, env=env)
                rec["loadavg_after"] = os.getloadavg()
                rec["peak_rss_bytes"] = oc.peak_rss_bytes
                rec["log"] = oc.log_name
                if oc.killed:
                    rec["status"] = "timeout" if oc.killed == "timeout" else "oom"
                    rec["message"] = f"killed ({oc.killed}) in phase {oc.phase_at_end} after {oc.wall_s:.0f} s"
                elif oc.result is None:
                    cause, what = oc.exit_cause()
                    rec["status"] = "oom" if what == "signal 9" else "error"
                    rec["message"] = f"{what}: {oc.last_log_line()[:200]}"
                else:
                    rec |= oc.result
                if rec["status"] in ("timeout", "oom"):
                    failed.add(tool)
            payload["records"].append(rec)
            _common.write_json(results / f"{args.out_name}.json", payload)
            (results / f"{args.out_name}.md").write_text(render(payload))
            print(n, tool, rec["status"], _f(rec.get("fit_s")), rec.get("message", ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
