"""Shared helpers for the scripts in ``benchmarks/``: timing, system information, output.

Not part of the package and not a test module. Scripts in this folder import it as
``import _common`` (Python puts the script's folder first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_DIR = Path(__file__).resolve().parent.parent


def time_interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int, progress: bool = True
) -> dict[str, dict[str, Any]]:
    """Wall-clock seconds of each ``fn()``: one untimed warm-up call each, then ``repeats``
    rounds calling every function once in turn.

    Interleaving spreads bursts of load from other processes over all functions alike, so
    their ratios stay meaningful on a shared machine. Returns, per key, the best time (the
    least disturbed; the usual statistic on a shared machine), the median and every time.
    """
    times: dict[str, list[float]] = {key: [] for key in fns}
    for fn in fns.values():
        fn()
    for k in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
        if progress:
            print(f"  round {k + 1}/{repeats} done", flush=True)
    return {
        key: {"best_s": min(ts), "median_s": statistics.median(ts), "times_s": ts}
        for key, ts in times.items()
    }


def time_once(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), seconds)`` for one call (compilation, compression and other one-off costs)."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed distribution versions (``None`` when a distribution is not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _run(cmd: Sequence[str], cwd: Path | None = None) -> str | None:
    """Stdout of a read-only command, or ``None`` if it is unavailable or fails."""
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def cpu_model() -> str:
    """CPU model name from ``lscpu`` (Linux), else :func:`platform.processor`."""
    out = _run(["lscpu"])
    if out:
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_revision() -> dict[str, Any]:
    """Commit of the working tree and whether it has uncommitted changes (read-only git)."""
    rev = _run(["git", "rev-parse", "HEAD"], cwd=REPO_DIR)
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_DIR)
    return {"commit": rev, "dirty": None if status is None else bool(status)}


def system_info() -> dict[str, Any]:
    """Date, machine, CPU, load and Numba threading of this run."""
    import numba

    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "numba_num_threads": numba.get_num_threads(),
        "numba_threading_layer": None,
        "git": git_revision(),
    }
    try:
        info["load_average_1_5_15"] = list(os.getloadavg())
    except OSError:
        pass
    try:
        # Only defined once a parallel Numba function has run.
        info["numba_threading_layer"] = numba.threading_layer()
    except ValueError:
        pass
    return info


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table; cells are converted with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# -- shared by the subprocess-per-cell scripts (fit_scaling.py, clv_scaling.py) --------------

def process_tree(proc) -> list:
    """A psutil process and its descendants (empty when it is gone)."""
    import psutil

    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_tree(pid: int) -> None:
    """SIGKILL the worker's process group and any descendant that left it."""
    import psutil

    try:
        procs = process_tree(psutil.Process(pid))
    except psutil.NoSuchProcess:
        procs = []
    try:
        os.killpg(pid, signal.SIGKILL)  # the worker leads its own session
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def maxrss_bytes() -> int:
    """Peak resident set size of this process, in bytes."""
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def last_line(path: Path) -> str | None:
    """The last non-empty line of a log (at most 500 characters), for failure messages."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    return lines[-1][:500] if lines else None


def parse_size(text: str) -> int:
    """argparse type: a positive whole number, also written as 1e6."""
    value = float(text)
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text}")
    return int(value)


def fmt_number(v: float | None, digits: int = 3) -> str:
    """A number for a markdown table ("—" when missing)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"


def cached_npz(path: Path, make: Callable[[], tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """The ``meta`` dict of a cached ``.npz`` data file, made first with ``make()`` (returning
    ``(arrays, meta)``) when it does not exist; written to a temporary name and renamed, so an
    interrupted run never leaves a half-written cache."""
    if path.exists():
        with np.load(path) as f:
            return json.loads(str(f["meta"]))
    arrays, meta = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays, meta=np.array(json.dumps(meta)))
    tmp.replace(path)
    return meta
