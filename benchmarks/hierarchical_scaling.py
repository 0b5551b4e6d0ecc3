"""Benchmark: hierarchical BG/NBD at scale (issue 15), clvbayes beside PyMC-Marketing and lifetimes.

Issue 15's target: 10^6 customers in 10 segments, hierarchical BG/NBD, NUTS 4 chains x
(1000 tuning + 1000 draws) in <= 5 minutes on 2 cores.

What it measures
----------------
For every population size and tool, in a fresh subprocess with a wall-time cap and a memory
cap (``_common.run_subprocess_cell``, as ``fit_scaling.py``): the wall time of the fit (model
object from a ready frame to the posterior), nutpie's compile and sampling seconds, gradient
evaluations over tuning and draws (``n_steps``, ``save_warmup=True``), divergences, max r_hat
and min bulk ESS, peak memory of the process tree, and the recovery of every segment's four
BG/NBD parameters (posterior mean, sd, z-score against the simulating value, whether the
truth is in the 94 % HDI).

==========================  ================================================================
cell                        what is run
==========================  ================================================================
``clvbayes_non_centred``    ``HierarchicalPurchaseModel(df, segment="segment",
``clvbayes_centred``        parameterization=...).fit(...)`` (NUTS under nutpie)
``clvbayes_auto``
``pmm``                     ``pymc_marketing.clv.BetaGeoModel(model_config={"purchase_covariate_cols":
                            D, "dropout_covariate_cols": D}).fit(data=df, method="mcmc",
                            nuts_sampler="nutpie")`` with ``D`` the segment one-hot (first
                            segment the baseline): its segments differ in ``alpha, a, b`` and
                            share ``r`` (its covariates do not reach ``r``), and it has no
                            pooling (independent ``Normal(0, 1)`` coefficients)
``lifetimes``               ``lifetimes.BetaGeoFitter(penalizer_coef=0).fit`` per segment
                            (maximum likelihood, no pooling: the only way lifetimes applies)
``profile``                 per parameterisation: the seconds of one log-density + gradient
                            evaluation as nutpie calls it (``compiled.logp_func``, best of
                            ``--profile-repeats``), the cells and the compressed rows
==========================  ================================================================

A cell over ``--time-cap`` is killed (``timeout``), one over ``--mem-cap-gb`` ``oom``, any
other failure ``error`` with its message. ``os.getloadavg()`` is recorded before and after
every cell: the machine is shared, so compare gradient counts and per-gradient costs, not
only seconds.

Data
----
``n`` customers in ``--segments`` equal segments. Segment ``s`` has parameters
``θ_{s,p} = θ_p exp(0.3 z_{s,p})``, ``z ~ N(0, 1)`` (seeded), around the CDNOW BG/NBD
estimates of Fader, Hardie & Lee (2005) (``fit_scaling.PARAMS``; the spread of
``hierarchical_parameterization.py``), i.e. exactly the hierarchical model's prior shape.
Customers are simulated and summarised by day as in ``fit_scaling.py``
(``fit_scaling._daily_summary``: ``T`` uniform on 1..364 days, same-day purchases merged,
weeks as the unit), cached as ``benchmarks/.cache/hierarchical_scaling_n{n}_s{S}_seed{seed}.npz``.

Usage
-----
Smoke run (minutes)::

    python benchmarks/hierarchical_scaling.py --sizes 1e4 --draws 100 --tune 100 --out-name hierarchical_scaling_smoke

Issue 15's target::

    python benchmarks/hierarchical_scaling.py --sizes 1e5 1e6 --time-cap 900

Writes ``benchmarks/results/<out-name>.json`` and ``.md`` after every cell; worker logs in
``benchmarks/.cache/logs/<out-name>/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import _common
import fit_scaling
import hierarchical_parameterization as hp
from _common import fmt_number as _f  # noqa: E402

PARAMS = fit_scaling.PARAMS
NAMES = tuple(PARAMS)
PARAMETERIZATIONS = ("non_centred", "centred", "auto")
TOOLS = (*(f"clvbayes_{p}" for p in PARAMETERIZATIONS), "pmm", "lifetimes", "profile")
CACHE = _common.REPO_DIR / "benchmarks" / ".cache"


def segment_truth(n_segments: int, seed: int) -> np.ndarray:
    """(n_segments, 4) simulating parameters (module docstring), in ``NAMES`` order."""
    z = np.random.default_rng([seed, n_segments]).standard_normal((n_segments, len(NAMES)))
    return fit_scaling.THETA * np.exp(hp.SPREAD * z)


def simulate(n: int, n_segments: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Daily-summarised BG/NBD customers of every segment: arrays and a summary."""
    theta = segment_truth(n_segments, seed)
    sizes = np.full(n_segments, n // n_segments)
    sizes[: n % n_segments] += 1
    x, rec, T, seg = [], [], [], []
    for s, size in enumerate(sizes):
        T_days = np.random.default_rng([seed, s, 1]).integers(1, fit_scaling.WINDOW_DAYS + 1, size=int(size))
        xs, rs, _ = fit_scaling._daily_summary(T_days, seed * 1000 + s, tuple(theta[s]))
        x.append(xs), rec.append(rs), T.append(T_days), seg.append(np.full(int(size), s, dtype=np.int16))
    arrays = {"x": np.concatenate(x), "recency_days": np.concatenate(rec), "T_days": np.concatenate(T),
              "segment": np.concatenate(seg), "theta": theta}
    unique = np.unique(np.column_stack([arrays["segment"], arrays["x"], arrays["recency_days"], arrays["T_days"]]),
                       axis=0).shape[0]
    meta = {"n": n, "n_segments": n_segments, "seed": seed, "mean_x": float(arrays["x"].mean()),
            "share_x0": float((arrays["x"] == 0).mean()), "n_unique_rows_by_segment": int(unique),
            "theta": {f"s{s:02d}": dict(zip(NAMES, map(float, theta[s]), strict=True)) for s in range(n_segments)}}
    return arrays, meta


def ensure_data(n: int, n_segments: int, seed: int) -> tuple[Path, dict[str, Any]]:
    path = CACHE / f"hierarchical_scaling_n{n}_s{n_segments}_seed{seed}.npz"
    return path, _common.cached_npz(path, lambda: simulate(n, n_segments, seed))


def load_frame(path: Path):
    """The customers as a frame (weeks): ``customer_id, frequency, recency, T, segment`` and the
    one-hot columns ``seg_sNN`` of every segment but the first (PyMC-Marketing's design)."""
    import pandas as pd

    with np.load(path) as f:
        seg = f["segment"]
        df = pd.DataFrame({"customer_id": np.arange(seg.size), "frequency": f["x"].astype(float),
                           "recency": f["recency_days"] / 7.0, "T": f["T_days"] / 7.0})
        n_segments = int(f["theta"].shape[0])
    labels = np.array([f"s{s:02d}" for s in range(n_segments)])
    df["segment"] = labels[seg]
    for s in range(1, n_segments):
        df[f"seg_{labels[s]}"] = (seg == s).astype(float)
    return df


def truth(path: Path) -> dict[str, float]:
    """``{"r_segment[s00]": θ, ...}``: the simulating value of every segment parameter."""
    with np.load(path) as f:
        theta = f["theta"]
    return {f"{p}_segment[s{s:02d}]": float(theta[s, k]) for s in range(theta.shape[0]) for k, p in enumerate(NAMES)}


def recovery(params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Worst |z|, worst |relative error| and the share of truths in their 94 % interval."""
    z = [abs(p["z"]) for p in params.values() if p.get("z") is not None]
    inside = [p["truth_in_hdi94"] for p in params.values() if "truth_in_hdi94" in p]
    return {"max_abs_z": max(z, default=None), "max_abs_rel_error": max(abs(p["rel_error"]) for p in params.values()),
            "share_truth_in_hdi94": float(np.mean(inside)) if inside else None}


def _fit_clvbayes(df, args, true: dict[str, float], timings: dict[str, float], out: dict[str, Any]) -> None:
    from clvbayes import HierarchicalPurchaseModel

    t0 = time.perf_counter()
    m = HierarchicalPurchaseModel(df[["customer_id", "frequency", "recency", "T", "segment"]], segment="segment",
                                  parameterization=args.worker.removeprefix("clvbayes_"))
    m.fit(draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed)
    fit_s = time.perf_counter() - t0
    out["fit_s"] = fit_s
    out["parameterization_used"] = m.parameterization_used
    out["n_cells"] = int(m.n_cells)
    out |= fit_scaling.nuts_diagnostics(m.idata_, fit_s, timings, true)
    out |= {f"all_{k}": v for k, v in hp.diagnostics(m.idata_).items()}


def _segment_draws_pmm(post, n_segments: int) -> dict[str, np.ndarray]:
    """PyMC-Marketing's segment parameters, draws (chain, draw): ``r`` shared, ``alpha_s =
    alpha_scale exp(-γ_s)``, ``a_s = a_scale exp(γ^a_s)``, ``b_s = b_scale exp(γ^b_s)``
    (its links; ``γ_0 = 0`` for the baseline segment)."""
    out = {}
    for s in range(n_segments):
        coef = {k: (post[k].isel({post[k].dims[-1]: s - 1}).to_numpy() if s else 0.0)
                for k in ("purchase_coefficient_alpha", "dropout_coefficient_a", "dropout_coefficient_b")}
        out[f"r_segment[s{s:02d}]"] = post["r"].to_numpy()
        out[f"alpha_segment[s{s:02d}]"] = post["alpha_scale"].to_numpy() * np.exp(-coef["purchase_coefficient_alpha"])
        out[f"a_segment[s{s:02d}]"] = post["a_scale"].to_numpy() * np.exp(coef["dropout_coefficient_a"])
        out[f"b_segment[s{s:02d}]"] = post["b_scale"].to_numpy() * np.exp(coef["dropout_coefficient_b"])
    return out


def _fit_pmm(df, args, true: dict[str, float], timings: dict[str, float], out: dict[str, Any]) -> None:
    import arviz as az
    from pymc_marketing.clv import BetaGeoModel

    cols = [c for c in df.columns if c.startswith("seg_")]
    t0 = time.perf_counter()
    pmm = BetaGeoModel(model_config={"purchase_covariate_cols": cols, "dropout_covariate_cols": cols})
    idata = pmm.fit(data=df[["customer_id", "frequency", "recency", "T", *cols]], method="mcmc",
                    nuts_sampler="nutpie", random_seed=args.seed, draws=args.draws, tune=args.tune,
                    chains=args.chains, progressbar=False)
    out["fit_s"] = time.perf_counter() - t0
    out |= timings
    post = idata.posterior
    steps = [fit_scaling._sum_stat(idata, g, ("n_steps",)) for g in ("warmup_sample_stats", "sample_stats")]
    out["n_grad_evals_draws"] = steps[1]
    out["n_grad_evals"] = sum(s for s in steps if s is not None)
    out["divergences"] = fit_scaling._sum_stat(idata, "sample_stats", ("diverging",))
    free = [v for v in ("r", "alpha_scale", "a_scale", "b_scale", "purchase_coefficient_alpha",
                        "dropout_coefficient_a", "dropout_coefficient_b") if v in post]
    summ = az.summary(idata, var_names=free, kind="diagnostics")
    out["all_max_r_hat"], out["all_min_ess_bulk"] = float(summ["r_hat"].max()), float(summ["ess_bulk"].min())
    params = {}
    for name, draws in _segment_draws_pmm(post, len(true) // len(NAMES)).items():
        mean, sd = float(draws.mean()), float(draws.std())
        lo, hi = az.hdi(draws.reshape(-1), hdi_prob=0.94)
        params[name] = {"true": true[name], "estimate": mean, "sd": sd, "rel_error": (mean - true[name]) / true[name],
                        "z": (mean - true[name]) / sd if sd > 0 else None,
                        "truth_in_hdi94": bool(lo <= true[name] <= hi)}
    out["params"] = params


def _fit_lifetimes(df, args, true: dict[str, float], timings: dict[str, float], out: dict[str, Any]) -> None:
    import lifetimes

    t0 = time.perf_counter()
    est, se, failed = {}, {}, {}
    for label, part in df.groupby("segment", sort=True):
        fitter = lifetimes.BetaGeoFitter(penalizer_coef=0.0)
        try:
            fitter.fit(part["frequency"], part["recency"], part["T"])
        except lifetimes.utils.ConvergenceError as exc:  # a failed segment is a result
            failed[label] = " ".join(str(exc).split())[:200]
            continue
        for p in NAMES:
            est[f"{p}_segment[{label}]"] = float(fitter.params_[p])
            try:  # lifetimes' own Hessian standard errors
                se[f"{p}_segment[{label}]"] = float(fitter.summary["se(coef)"][p])
            except Exception:  # noqa: BLE001 - optional, as in fit_scaling
                se[f"{p}_segment[{label}]"] = float("nan")
    out["fit_s"] = time.perf_counter() - t0
    out["failed_segments"] = failed
    if failed:
        out["message"] = f"{len(failed)} segment(s) did not converge: {', '.join(failed)}"
    out |= fit_scaling.point_diagnostics(est, se, {k: v for k, v in true.items() if k in est})


def _profile(df, args, true: dict[str, float], timings: dict[str, float], out: dict[str, Any]) -> None:
    """Seconds per log-density + gradient as nutpie calls it, both parameterisations."""
    import nutpie

    from clvbayes import HierarchicalPurchaseModel

    import clvbayes

    frame = df[["customer_id", "frequency", "recency", "T", "segment"]]
    for par in ("non_centred", "centred", "pooled"):
        # "pooled": the plain BetaGeoModel on all customers (one Op over the rows compressed
        # across segments), the per-row cost without cells
        m = (clvbayes.BetaGeoModel(frame.drop(columns="segment")) if par == "pooled" else
             HierarchicalPurchaseModel(frame, segment="segment", parameterization=par))
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(m.model)
        compile_s = time.perf_counter() - t0
        point = np.zeros(compiled.n_dim) + 0.1
        fn = compiled.logp_func
        timing = _common.time_interleaved({par: lambda f=fn, p=point: f(p)}, args.profile_repeats, progress=False)
        # CPU seconds of this (single-threaded) call: what a gradient costs on an idle core,
        # whatever the load of the shared machine does to wall time
        c0 = time.process_time()
        for _ in range(args.profile_repeats):
            fn(point)
        cpu_s = (time.process_time() - c0) / args.profile_repeats
        out[par] = {"compile_s": compile_s, "grad_s": timing[par]["best_s"], "grad_median_s": timing[par]["median_s"],
                    "grad_cpu_s": cpu_s, "n_cells": int(getattr(m, "n_cells", 1)), "n_dim": int(compiled.n_dim)}
    out["n_rows_compressed"] = int(df.groupby(["segment", "frequency", "recency", "T"]).ngroups)
    out["n_rows_compressed_pooled"] = int(df.groupby(["frequency", "recency", "T"]).ngroups)


FITTERS = {**{f"clvbayes_{p}": _fit_clvbayes for p in PARAMETERIZATIONS}, "pmm": _fit_pmm,
           "lifetimes": _fit_lifetimes, "profile": _profile}


def worker(args: argparse.Namespace) -> int:
    def body(phase, out):
        timings: dict[str, float] = {}
        fit_scaling._instrument_nutpie(timings)
        phase("load")
        path = Path(args.data)
        df, true = load_frame(path), truth(path)
        phase("fit")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            FITTERS[args.worker](df, args, true, timings, out)
        out["warnings"] = _common.warning_lines(caught)
        if "params" in out:
            out["recovery"] = recovery(out["params"])

    return _common.run_worker(Path(args.result), body)


def render(payload: dict[str, Any]) -> str:
    a = payload["args"]
    rows, prof = [], []
    for r in payload["records"]:
        if r["tool"] == "profile":
            for par in ("non_centred", "centred", "pooled"):
                p = r.get(par)
                if p is None and r["status"] == "ok":
                    continue  # a run from before the pooled model was profiled
                p = p or {}
                rows_c = r.get("n_rows_compressed_pooled" if par == "pooled" else "n_rows_compressed", "—")
                prof.append([r["n"], par, r["status"], p.get("n_cells", "—"), rows_c,
                             _f(p.get("compile_s")), _f(p["grad_s"] * 1e3) if p.get("grad_s") else "—",
                             _f(p["grad_cpu_s"] * 1e3) if p.get("grad_cpu_s") else "—",
                             ", ".join(_f(v, 2) for v in r.get("load_avg_start", []))])
            continue
        rec = r.get("recovery", {})
        grads = r.get("n_grad_evals")
        rows.append([r["n"], r["tool"] + (f" ({r['parameterization_used']})" if r.get("parameterization_used") and
                                            r["tool"].endswith("auto") else ""),
                     r["status"], _f(r.get("fit_s")), _f(r.get("compile_s")), _f(r.get("sampling_s")), grads or "—",
                     _f(r["sampling_s"] / grads * 1e3) if grads and r.get("sampling_s") else "—",
                     _f((r.get("peak_rss_bytes") or 0) / 2**30), r.get("divergences", "—"),
                     _f(r.get("all_max_r_hat")), _f(r.get("all_min_ess_bulk")), _f(rec.get("max_abs_z")),
                     _f(rec.get("max_abs_rel_error")), _f(rec.get("share_truth_in_hdi94")),
                     ", ".join(_f(v, 2) for v in r.get("load_avg_start", [])),
                     r.get("message", "")])
    head = ["customers", "tool", "status", "fit s", "compile s", "sampling s", "gradient evals (tune + draws)",
            "ms / gradient (chains in parallel)", "peak GB", "divergences", "max r_hat", "min ESS bulk",
            "max |z| (segment params)", "max |rel err|", "truth in 94% HDI", "load avg at start (1/5/15)", "message"]
    text = (f"# Hierarchical BG/NBD, {a['segments']} segments, NUTS {a['chains']} x ({a['tune']} + {a['draws']})\n\n"
            f"Generated by `python benchmarks/hierarchical_scaling.py {payload['argv']}`; seed {a['seed']}; "
            f"machine: {payload['system'].get('cpu_model', '')}, {payload['system'].get('logical_cpus')} logical "
            f"CPUs, shared (load averages per cell; compare gradient counts and ms per gradient). Recovery: the "
            f"segments' four parameters against the simulating values (lifetimes: MLE and its standard errors; "
            f"PyMC-Marketing: r is shared by its segments). Data and cells: the script's docstring.\n\n"
            + _common.markdown_table(head, rows) + "\n")
    if payload.get("notes"):
        text += "\n## Notes on this run\n\n" + "\n".join(f"- {n}" for n in payload["notes"]) + "\n"
    if prof:
        text += ("\n## One log-density + gradient evaluation (nutpie's compiled function, one thread)\n\n"
                 + _common.markdown_table(["customers", "parameterization", "status", "cells", "compressed rows",
                                           "compile s", "ms / gradient (wall, best)", "ms / gradient (CPU)",
                                           "load avg at start"], prof) + "\n")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _common.add_run_arguments(ap, sizes=[100_000], tools=TOOLS, seed=0, time_cap=900.0, mem_cap_gb=10.0, poll=0.5,
                              out_name="hierarchical_scaling")
    ap.add_argument("--segments", type=int, default=10)
    ap.add_argument("--profile-repeats", type=int, default=20)
    ap.add_argument("--note", action="append", default=[],
                    help="append a note to results/<out-name>.json and re-render its .md (no run)")
    _common.add_worker_arguments(ap, TOOLS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    results = _common.RESULTS_DIR
    if args.note:  # annotate a finished run (e.g. a cell stopped by hand), then re-render
        payload = _common.read_json(results / f"{args.out_name}.json")
        payload["notes"] = payload.get("notes", []) + args.note
        _common.write_json(results / f"{args.out_name}.json", payload)
        (results / f"{args.out_name}.md").write_text(render(payload))
        return 0
    results.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"args": vars(args), "argv": " ".join(sys.argv[1:] if argv is None else argv),
                               "records": [], "data": {}, "system": _common.system_info(),
                               "versions": _common.package_versions(["clvbayes", "pymc", "pymc-marketing", "nutpie",
                                                                     "lifetimes"])}
    python = {t: sys.executable for t in TOOLS} | {"pmm": os.environ.get("PMM_PYTHON", "/work/venv-bench/bin/python"),
                                                   "lifetimes": os.environ.get("PMM_PYTHON",
                                                                               "/work/venv-bench/bin/python")}
    for n in args.sizes:
        path, meta = ensure_data(n, args.segments, args.seed)
        payload["data"][str(n)] = meta
        for tool in args.tools:
            rec: dict[str, Any] = {"n": n, "tool": tool}
            files = _common.cell_files(CACHE / "logs" / args.out_name, f"{tool}_n{n}")
            cmd = [python[tool], str(Path(__file__).resolve()), "--worker", tool, "--data", str(path),
                   "--result", str(files.result), "--draws", str(args.draws), "--tune", str(args.tune),
                   "--chains", str(args.chains), "--seed", str(args.seed),
                   "--profile-repeats", str(args.profile_repeats)]
            oc = _common.run_subprocess_cell(cmd, files, time_cap=args.time_cap, poll=args.poll,
                                             rss_cap=args.mem_cap_gb * 2**30, env=dict(os.environ))
            rec |= {"peak_rss_bytes": oc.peak_rss_bytes, "log": oc.log_name, "load_avg_start": oc.load_avg_start,
                    "load_avg_end": oc.load_avg_end, "wall_s": oc.wall_s}
            if oc.killed:
                rec["status"] = "timeout" if oc.killed == "timeout" else "oom"
                rec["message"] = f"killed ({oc.killed}) in phase {oc.phase_at_end} after {oc.wall_s:.0f} s"
            elif oc.result is None:
                _, what = oc.exit_cause()
                rec["status"] = "oom" if what == "signal 9" else "error"
                rec["message"] = f"{what}: {oc.last_log_line()[:200]}"
            else:
                rec |= oc.result
            payload["records"].append(rec)
            _common.write_json(results / f"{args.out_name}.json", payload)
            (results / f"{args.out_name}.md").write_text(render(payload))
            print(n, tool, rec["status"], _f(rec.get("fit_s")), rec.get("message", ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
