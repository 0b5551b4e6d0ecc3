"""Benchmark: BG/NBD log-likelihood + gradient, clvbayes vs PyMC-Marketing vs lifetimes.

What it measures
----------------
Nanoseconds per customer for one evaluation of the BG/NBD log-likelihood summed over a
simulated customer base *and* its gradient with respect to ``(r, alpha, a, b)`` — the
unit of work of every MLE iteration and every gradient-based MCMC step — for:

1. ``clvbayes raw``: :func:`clvbayes.kernels.bgnbd.bgnbd_loglik_sum_grad` on one row per
   customer (weights = 1), on all Numba threads and on 1 thread.
2. ``clvbayes compressed``: the same kernel on the unique ``(x, t_x, T)`` rows from
   :func:`clvbayes.compress_rows` with their counts as weights. The one-off compression
   time is reported separately; the per-call time is still quoted per *original* customer.
3. ``PyMC-Marketing``: the log-density of its ``BetaGeoNBD`` distribution (the likelihood
   ``BetaGeoModel`` puts on the data) built with ``pm.logp`` and differentiated with
   ``pytensor.grad``, compiled with the default C backend and with the Numba backend; and
   the joint ``logp_dlogp_function`` of a full ``BetaGeoModel`` (flat priors on the log
   scale), which is what ``pm.sample`` evaluates at every leapfrog step.
4. ``lifetimes``: ``BetaGeoFitter._negative_log_likelihood`` with
   ``autograd.value_and_grad``, exactly what ``BetaGeoFitter.fit`` hands to
   ``scipy.optimize.minimize`` — on raw rows and, through its ``weights`` argument, on
   the same compressed rows.

The value-only clvbayes kernel :func:`clvbayes.kernels.bgnbd.bgnbd_loglik_sum` is timed as
well, to show what the gradient costs.

All implementations see the same data and the same parameters, and their log-likelihoods
and gradients are converted to one convention (``Σ_i ln L_i`` and its derivatives on the
natural scale) and compared with clvbayes raw, so the timings compare equal work.

Data
----
``--n`` customers simulated from BG/NBD at the CDNOW maximum-likelihood estimates of Fader,
Hardie & Lee (2005), Marketing Science 24(2), ``(r, alpha, a, b) = (0.2425945, 4.4136019,
0.7929199, 2.4258881)`` (weeks), with :func:`clvbayes.simulate_customers`. First purchases
are spread uniformly over a 52-week window at daily resolution (``T`` = whole days / 7).
Transaction times are rounded down to whole days and purchases of one customer on one day
count once, as a transaction log with dates would give; a repeat purchase on the day of the
first purchase is not a repeat purchase.

Timing
------
Every implementation is called once to compile (the "first call" column: JIT / C
compilation plus one evaluation; graph compilation for PyTensor is reported as set-up), once
more to warm up, then ``--repeats`` rounds in which every implementation is called once in
turn (interleaved, so that a burst of load from other processes hits all of them alike).
Best and median times are reported; ratios use the best times. On a shared machine the
ratios are the result, not the absolute seconds.

Usage
-----
``python benchmarks/kernels.py [--n 1000000] [--repeats 7] [--seed 1]``

Writes ``benchmarks/results/kernels.json`` (every number, versions, machine) and
``benchmarks/results/kernels.md`` (table and notes). ``--no-pymc`` / ``--no-lifetimes``
skip those anchors (e.g. for a quick check of clvbayes alone).
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np

import _common

#: CDNOW MLE in weeks: Fader, Hardie & Lee (2005), Marketing Science 24(2), section 4.
PARAMS = {"r": 0.2425945, "alpha": 4.4136019, "a": 0.7929199, "b": 2.4258881}
THETA = np.array([PARAMS["r"], PARAMS["alpha"], PARAMS["a"], PARAMS["b"]])
WINDOW_DAYS = 364  # 52 weeks
PACKAGES = [
    "clvbayes", "numpy", "numba", "scipy", "pandas",
    "pymc", "pymc-marketing", "pytensor", "lifetimes", "autograd",
]

#: An evaluation returns ``(Σ ln L, gradient on the natural scale or None)``.
Evaluation = tuple[float, np.ndarray | None]


@dataclass
class Anchor:
    """One implementation under test."""

    key: str
    label: str
    fn: Callable[[], Evaluation]
    n_rows: int
    gradient: bool = True
    setup_s: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def simulate_data(n: int, seed: int) -> dict[str, Any]:
    """``x, t_x, T`` (float64, weeks, daily resolution) for ``n`` simulated customers."""
    import clvbayes

    rng = np.random.default_rng(seed)
    T_days = rng.integers(1, WINDOW_DAYS + 1, size=n)
    summary, tx = clvbayes.simulate_customers(
        *THETA, T=T_days / 7.0, seed=seed, return_transactions=True
    )
    cust = tx["customer_id"].to_numpy()
    # Transactions are sorted by customer and time; round times down to whole days.
    day = np.minimum(np.floor(tx["time"].to_numpy() * 7.0), T_days[cust]).astype(np.int64)
    new_day = np.ones(cust.size, dtype=bool)
    new_day[1:] = (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])
    repeat = new_day & (day > 0)  # day 0 is the first purchase (and same-day add-ons)
    x = np.bincount(cust[repeat], minlength=n).astype(np.float64)
    last_day = np.zeros(n, dtype=np.int64)
    np.maximum.at(last_day, cust[repeat], day[repeat])
    return {
        "x": x,
        "t_x": last_day / 7.0,
        "T": T_days / 7.0,
        "n_transactions_continuous": int(cust.size),
        "n_repeat_in_continuous_time": int(summary["frequency"].sum()),
    }


def describe_data(data: dict[str, Any]) -> dict[str, Any]:
    x = data["x"]
    return {
        "n_customers": int(x.size),
        "mean_frequency": float(x.mean()),
        "share_zero_repeat": float(np.mean(x == 0)),
        "max_frequency": int(x.max()),
        "n_repeat_purchases_daily": int(x.sum()),
        "n_repeat_purchases_continuous": data["n_repeat_in_continuous_time"],
        "mean_T_weeks": float(data["T"].mean()),
    }


# --------------------------------------------------------------------------------------
# Implementations
# --------------------------------------------------------------------------------------


def _single_thread(fn: Callable[[], Evaluation]) -> Callable[[], Evaluation]:
    """``fn`` run with one Numba thread (the setting is restored afterwards)."""

    def call() -> Evaluation:
        n_threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return fn()
        finally:
            numba.set_num_threads(n_threads)

    return call


def clvbayes_anchors(data: dict[str, Any], compressed: Any) -> list[Anchor]:
    """clvbayes value+gradient (all threads, 1 thread) and value only, raw and compressed."""
    from clvbayes.kernels.bgnbd import bgnbd_loglik_sum, bgnbd_loglik_sum_grad

    r, alpha, a, b = THETA
    n = data["x"].size
    inputs = {
        "raw": ((data["x"], data["t_x"], data["T"]), np.ones(n)),
        "compressed": (compressed.columns, compressed.weights),
    }
    anchors = []
    for kind, (cols, w) in inputs.items():

        def value_grad(cols=cols, w=w) -> Evaluation:
            return bgnbd_loglik_sum_grad(r, alpha, a, b, *cols, w)

        def value(cols=cols, w=w) -> Evaluation:
            return bgnbd_loglik_sum(r, alpha, a, b, *cols, w), None

        rows = cols[0].size
        anchors += [
            Anchor(f"clvbayes_{kind}", f"clvbayes {kind}", value_grad, rows),
            Anchor(f"clvbayes_{kind}_1thread", f"clvbayes {kind}, 1 thread",
                   _single_thread(value_grad), rows),
            Anchor(f"clvbayes_{kind}_value", f"clvbayes {kind}, value only", value, rows,
                   gradient=False),
        ]
    return anchors


def pymc_dist_anchor(data: dict[str, Any], mode: str | None) -> Anchor:
    """``pm.logp`` of PyMC-Marketing's ``BetaGeoNBD`` + ``pytensor.grad``, compiled in ``mode``."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt
    from pymc_marketing.clv.distributions import BetaGeoNBD

    params = pt.dscalars("r", "alpha", "a", "b")
    r, alpha, a, b = params
    # As in BetaGeoModel.build_model: observed value = stack(recency, frequency).
    rv = BetaGeoNBD.dist(a=a, b=b, r=r, alpha=alpha, T=data["T"])
    logp = pm.logp(rv, np.stack((data["t_x"], data["x"]), axis=1)).sum()
    grads = pytensor.grad(logp, list(params))
    fn, setup_s = _common.time_once(
        lambda: pytensor.function(list(params), [logp, *grads], mode=mode)
    )

    def call() -> Evaluation:
        out = fn(*THETA)
        return float(out[0]), np.array([float(g) for g in out[1:]])

    backend = "C" if mode is None else mode.lower().capitalize()
    return Anchor(f"pymc_marketing_dist_{backend.lower()}",
                  f"PyMC-Marketing BetaGeoNBD logp ({backend})", call, data["x"].size,
                  setup_s=setup_s)


def pymc_model_anchor(data: dict[str, Any]) -> Anchor:
    """``BetaGeoModel(...).model.logp_dlogp_function()``: what ``pm.sample`` evaluates.

    Flat priors on ``(r, alpha, a, b)`` make ``a`` and ``b`` free variables (instead of the
    default ``phi``/``kappa`` parametrisation) and keep the model log-density equal to the
    log-likelihood plus the log-transform Jacobian ``Σ ln θ``, so the value and the gradient
    (taken on the log scale, ``θ ∂ℓ/∂θ + 1``) convert back exactly.
    """
    import pandas as pd
    from pymc_marketing.clv.models.beta_geo import BetaGeoModel
    from pymc_marketing.prior import Prior

    frame = pd.DataFrame({
        "customer_id": np.arange(data["x"].size),
        "frequency": data["x"], "recency": data["t_x"], "T": data["T"],
    })
    names = ["r", "alpha", "a", "b"]

    def build() -> Any:
        model = BetaGeoModel(frame, model_config={k: Prior("HalfFlat") for k in names})
        model.build_model()
        f = model.model.logp_dlogp_function(ravel_inputs=True)
        f.set_extra_values({})
        return model.model, f

    (pm_model, fn), setup_s = _common.time_once(build)
    order = [names.index(v.name.removesuffix("_log__")) for v in pm_model.value_vars]
    log_theta = np.log(THETA[order])
    theta = THETA[order]

    def call() -> Evaluation:
        logp, grad_log = fn(log_theta)
        grad = np.empty(4)
        grad[order] = (np.asarray(grad_log) - 1.0) / theta
        return float(logp) - float(log_theta.sum()), grad

    return Anchor("pymc_marketing_model_c", "PyMC-Marketing BetaGeoModel logp+dlogp (C)",
                  call, data["x"].size, setup_s=setup_s)


def lifetimes_anchor(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray,
                     key: str, label: str) -> Anchor:
    """``autograd.value_and_grad(BetaGeoFitter._negative_log_likelihood)`` as in ``fit``.

    lifetimes minimises ``-Σ w_i ln L_i / Σ w_i`` over ``log θ`` (no penalizer here, and the
    data are not rescaled, so ``alpha`` stays in weeks).
    """
    from autograd import value_and_grad
    from lifetimes import BetaGeoFitter

    vg = value_and_grad(BetaGeoFitter._negative_log_likelihood)
    freq = x.astype(int)  # as BetaGeoFitter.fit does
    w = weights.astype(int)
    total_w = float(w.sum())
    log_theta = np.log(THETA)

    def call() -> Evaluation:
        nll, grad_log = vg(log_theta, freq, t_x, T, w, 0.0)
        return -float(nll) * total_w, -np.asarray(grad_log) * total_w / THETA

    return Anchor(key, label, call, x.size)


def build_anchors(data: dict[str, Any], compressed: Any, args: argparse.Namespace,
                  errors: dict[str, str]) -> list[Anchor]:
    """All implementations; optional ones that fail to build are recorded in ``errors``."""
    anchors = clvbayes_anchors(data, compressed)
    optional: list[tuple[str, Callable[[], Anchor]]] = []
    if not args.no_pymc:
        optional += [
            ("pymc_marketing_dist_c", lambda: pymc_dist_anchor(data, None)),
            ("pymc_marketing_dist_numba", lambda: pymc_dist_anchor(data, "NUMBA")),
            ("pymc_marketing_model_c", lambda: pymc_model_anchor(data)),
        ]
    if not args.no_lifetimes:
        cx, ctx, cT = compressed.columns
        optional += [
            ("lifetimes_raw", lambda: lifetimes_anchor(
                data["x"], data["t_x"], data["T"], np.ones(data["x"].size),
                "lifetimes_raw", "lifetimes raw")),
            ("lifetimes_compressed", lambda: lifetimes_anchor(
                cx, ctx, cT, compressed.weights,
                "lifetimes_compressed", "lifetimes compressed (weights)")),
        ]
    for key, make in optional:
        print(f"  building {key} ...", flush=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                anchors.append(make())
        except Exception as exc:  # an optional anchor must not kill the benchmark
            errors[key] = f"{type(exc).__name__}: {exc}"
            print(f"  {key} failed: {errors[key]}", flush=True)
    return anchors


# --------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------


def first_calls(anchors: list[Anchor]) -> dict[str, Evaluation]:
    """Call every anchor once (compilation + evaluation), timing it; return the outputs."""
    outputs = {}
    for anc in anchors:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out, secs = _common.time_once(anc.fn)
        anc.result["first_call_s"] = secs
        outputs[anc.key] = out
        print(f"  first call {anc.key}: {secs:.3f} s", flush=True)
    return outputs


def time_anchors(anchors: list[Anchor], repeats: int) -> None:
    """Best / median / all times of every anchor from interleaved rounds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = _common.time_interleaved({anc.key: anc.fn for anc in anchors}, repeats)
    for anc in anchors:
        anc.result.update(stats[anc.key])


def agreement(outputs: dict[str, Evaluation], reference: str) -> dict[str, dict[str, Any]]:
    """Relative differences of value and gradient from ``reference``; finiteness flags.

    The gradient difference is ``max_i |g_i - g_ref_i| / max_i |g_ref_i|`` (norm-wise, so a
    component near zero does not blow it up).
    """
    ref_v, ref_g = outputs[reference]
    out = {}
    for key, (v, g) in outputs.items():
        entry: dict[str, Any] = {
            "loglik": v,
            "value_finite": bool(math.isfinite(v)),
            "loglik_rel_diff": abs(v - ref_v) / abs(ref_v),
        }
        if g is not None:
            g = np.asarray(g, dtype=float)
            entry["gradient"] = g.tolist()
            entry["gradient_finite"] = bool(np.all(np.isfinite(g)))
            entry["gradient_rel_diff"] = float(np.max(np.abs(g - ref_g)) / np.max(np.abs(ref_g)))
        out[key] = entry
    return out


def summarise(anchors: list[Anchor], n: int) -> None:
    """ns per original customer and ratios to clvbayes raw / compressed (best times)."""
    best = {anc.key: anc.result["best_s"] for anc in anchors}
    median = {anc.key: anc.result["median_s"] for anc in anchors}
    for anc in anchors:
        res = anc.result
        res["best_ns_per_customer"] = res["best_s"] * 1e9 / n
        res["median_ns_per_customer"] = res["median_s"] * 1e9 / n
        res["rows"] = anc.n_rows
        res["gradient"] = anc.gradient
        res["setup_s"] = anc.setup_s
        for ref in ("clvbayes_raw", "clvbayes_compressed"):
            res[f"ratio_best_vs_{ref}"] = res["best_s"] / best[ref]
            res[f"ratio_median_vs_{ref}"] = res["median_s"] / median[ref]


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _fmt(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"


def render_markdown(payload: dict[str, Any]) -> str:
    res = payload["results"]
    agr = payload["agreement"]
    sysinfo = payload["system"]
    data = payload["data"]
    comp = payload["compression"]
    n = data["n_customers"]
    rows = []
    for key, r in res.items():
        # Value-only rows do less work: no ratio against value+gradient rows.
        ratios = [_fmt(r[f"ratio_best_vs_{ref}"]) if r["gradient"] else "—"
                  for ref in ("clvbayes_raw", "clvbayes_compressed")]
        rows.append([
            r["label"], f"{r['rows']:,}", _fmt(r["best_ns_per_customer"]),
            _fmt(r["median_ns_per_customer"]), *ratios, _fmt(r["first_call_s"]) + (
                f" (+{_fmt(r['setup_s'])} build)" if r["setup_s"] else ""),
            f"{agr[key]['loglik_rel_diff']:.1e}",
            f"{agr[key]['gradient_rel_diff']:.1e}" if r["gradient"] else "—",
        ])
    table = _common.markdown_table(
        ["implementation", "rows", "best ns/customer", "median ns/customer",
         "× clvbayes raw", "× clvbayes compressed", "first call s", "rel. Δ logL",
         "rel. Δ grad"], rows)
    versions = ", ".join(f"{k} {v}" for k, v in payload["versions"].items())
    nonfinite = [k for k, a in agr.items()
                 if not a["value_finite"] or not a.get("gradient_finite", True)]
    skipped = "; ".join(f"{k}: {e}" for k, e in payload["errors"].items()) or "none"
    r_raw = res["clvbayes_raw"]
    grad_cost = r_raw["best_s"] / res["clvbayes_raw_value"]["best_s"]
    saving = r_raw["best_s"] - res["clvbayes_compressed"]["best_s"]
    breakeven = comp["seconds"] / saving if saving > 0 else float("inf")
    return "\n".join([
        "# BG/NBD log-likelihood + gradient: clvbayes vs PyMC-Marketing vs lifetimes",
        "",
        f"Generated by `python benchmarks/kernels.py --n {n} --repeats {payload['repeats']} "
        f"--seed {payload['seed']}` on {sysinfo['date_utc']}.",
        "",
        f"One call = Σ ln L over {n:,} simulated customers and its gradient w.r.t. "
        "(r, alpha, a, b); time per call divided by the number of *original* customers, "
        f"also for compressed rows. Best and median of {payload['repeats']} interleaved "
        "rounds; ratios are of best times (> 1: slower than clvbayes).",
        "",
        table,
        "",
        "## Notes",
        "",
        f"- Data: BG/NBD at the CDNOW MLE (r, alpha, a, b) = "
        f"({', '.join(str(v) for v in PARAMS.values())}), T uniform on 1..{WINDOW_DAYS} days "
        f"(/7, weeks), purchase times rounded down to days; mean frequency "
        f"{data['mean_frequency']:.3f}, {100 * data['share_zero_repeat']:.1f}% without repeat "
        f"purchase, max frequency {data['max_frequency']}.",
        f"- Compression: {comp['n_unique']:,} unique (x, t_x, T) rows "
        f"({n / comp['n_unique']:.1f} customers per row) in {comp['seconds']:.3f} s once "
        f"(`clvbayes.compress_rows`); it pays for itself after {breakeven:.1f} raw "
        "clvbayes calls, and an MLE fit makes dozens, a NUTS run thousands.",
        f"- The gradient costs clvbayes {grad_cost:.2f}× the value alone (raw rows).",
        f"- Threads: clvbayes runs on {sysinfo['numba_num_threads']} Numba threads "
        f"({sysinfo['numba_threading_layer']} layer) and on 1 thread in the \"1 thread\" rows; "
        "PyTensor's C and Numba backends and lifetimes' NumPy/autograd run single-threaded "
        "here. Compare the 1-thread rows for per-core speed.",
        "- Agreement: every implementation's log-likelihood and gradient (converted to "
        "Σ ln L on the natural scale) relative to clvbayes raw; the gradient column is "
        "max|Δg| / max|g|. Non-finite values: " + (", ".join(nonfinite) or "none") + ".",
        "- PyMC-Marketing has no row weights, so it has no compressed variant; its "
        "`BetaGeoModel` row is the joint log-density and gradient of a full model "
        "(`logp_dlogp_function`, flat priors), what `pm.sample` evaluates per leapfrog step. "
        "\"build\" is PyTensor graph compilation, paid once per model.",
        "- lifetimes: `autograd.value_and_grad(BetaGeoFitter._negative_log_likelihood)`, as "
        "`BetaGeoFitter.fit` passes to `scipy.optimize.minimize`; its compressed row uses "
        "lifetimes' own `weights` argument on the same unique rows.",
        f"- Skipped or failed implementations: {skipped}.",
        f"- Machine: {sysinfo['cpu_model']}, {sysinfo['logical_cpus']} logical CPUs, "
        f"load average {', '.join(f'{v:.2f}' for v in sysinfo.get('load_average_1_5_15', []))}"
        " at the end of the run; shared and noisy, so trust ratios over seconds.",
        f"- Versions: {versions}.",
        "",
    ])


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--n", type=int, default=1_000_000, help="simulated customers")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds")
    p.add_argument("--seed", type=int, default=1, help="simulation seed")
    p.add_argument("--no-pymc", action="store_true", help="skip PyMC-Marketing")
    p.add_argument("--no-lifetimes", action="store_true", help="skip lifetimes")
    p.add_argument("--out", default=str(_common.RESULTS_DIR / "kernels"),
                   help="output path without extension (.json and .md are written)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import clvbayes

    print(f"simulating {args.n:,} customers ...", flush=True)
    data, sim_s = _common.time_once(lambda: simulate_data(args.n, args.seed))
    compressed, comp_s = _common.time_once(
        lambda: clvbayes.compress_rows(data["x"], data["t_x"], data["T"])
    )
    print(f"  {sim_s:.1f} s; {compressed.n_unique:,} unique rows ({comp_s:.3f} s)", flush=True)

    errors: dict[str, str] = {}
    print("building implementations ...", flush=True)
    anchors = build_anchors(data, compressed, args, errors)
    print("first calls ...", flush=True)
    outputs = first_calls(anchors)
    print(f"timing {args.repeats} rounds ...", flush=True)
    time_anchors(anchors, args.repeats)
    summarise(anchors, args.n)

    payload = {
        "benchmark": "bgnbd_loglik_grad",
        "n": args.n,
        "repeats": args.repeats,
        "seed": args.seed,
        "params": PARAMS,
        "data": describe_data(data) | {"simulation_s": sim_s},
        "compression": {"n_unique": compressed.n_unique, "seconds": comp_s},
        "results": {anc.key: {"label": anc.label} | anc.result for anc in anchors},
        "agreement": agreement(outputs, "clvbayes_raw"),
        "errors": errors,
        "versions": _common.package_versions(PACKAGES),
        "system": _common.system_info(),
    }
    out = Path(args.out)
    _common.write_json(out.with_suffix(".json"), payload)
    md = render_markdown(payload)
    out.with_suffix(".md").write_text(md)
    print(md)
    return payload


if __name__ == "__main__":
    main()
