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
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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


# -- shared by the subprocess-per-cell scripts (clv_scaling.py, fit_scaling.py, dask_scaling.py)

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


# -- one cell in its own process: the worker's side ------------------------------------------
#
# The parent runs ``python <script> --worker KEY ... --result R`` with run_subprocess_cell;
# the worker wraps its work in run_worker, which keeps its phases in R's phase file (Phases)
# and writes its measurements to R.


def add_run_arguments(parser: argparse.ArgumentParser, *, sizes: Sequence[int], tools: Sequence[str] | None,
                      seed: int, time_cap: float, mem_cap_gb: float | None, poll: float, out_name: str | None,
                      tools_default: Sequence[str] | None = None, tools_help: str | None = None) -> None:
    """The options every scaling benchmark takes: ``--sizes`` (1e6 style), ``--tools`` (choices
    ``tools``, or free with ``tools=None``), NUTS ``--chains/--draws/--tune`` (4 x (1000 +
    1000)), ``--seed``, the per-cell caps ``--time-cap`` / ``--mem-cap-gb``, ``--poll`` and
    ``--out-name``, with each script's defaults."""
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=list(sizes),
                        help="population sizes (1e6 style accepted)")
    parser.add_argument("--tools", nargs="+", choices=None if tools is None else list(tools),
                        default=list(tools_default if tools_default is not None else tools), help=tools_help)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=seed, help="data and sampler seed")
    parser.add_argument("--time-cap", type=float, default=time_cap, help="seconds per cell")
    parser.add_argument("--mem-cap-gb", type=float, default=mem_cap_gb,
                        help="kill a cell whose process tree RSS exceeds this (GB = 10^9 bytes)")
    parser.add_argument("--poll", type=float, default=poll, help="memory polling interval, s")
    parser.add_argument("--out-name", default=out_name, help="output name in benchmarks/results/ (no extension)")


def add_worker_arguments(parser: argparse.ArgumentParser, cells: Iterable[str]) -> None:
    """The hidden options by which the parent runs one cell as a worker: ``--worker KEY``
    (one of ``cells``), ``--data PATH``, ``--result PATH``."""
    parser.add_argument("--worker", choices=list(cells), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or ``None`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def phase_file(result_path: Path) -> Path:
    """The side file in which the worker writing ``result_path`` keeps its phases."""
    return result_path.with_suffix(".phase")


class Phases:
    """Records the worker's phases in a side file (current phase, its start, the completed
    ones), replaced atomically at every change, so that the parent knows where a killed
    worker was and for how long, and attributes its memory samples to phases."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, float] = {}
        self.current: str | None = None
        self.t0 = time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        if self.current is not None:
            self.done[self.current] = now - self.t0
        self.current, self.t0 = phase, now
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"phase": phase, "time": time.time(), "done": self.done}))
        tmp.replace(self.path)


def warning_lines(caught: Iterable[Any]) -> list[str]:
    """Distinct ``Category: first line`` of warnings caught with ``catch_warnings(record=True)``."""
    return sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:200]}"
                   for w in caught})


def run_worker(result_path: Path, body: Callable[[Phases, dict[str, Any]], None], *,
               out: dict[str, Any] | None = None, oom_if_mentioned: bool = False,
               phase_fields: bool = True) -> int:
    """Run ``body(phase, out)`` in a cell's worker and write ``out`` to ``result_path``.

    ``out["status"]`` is ``ok`` when ``body`` returns, ``oom`` after a ``MemoryError`` (or,
    with ``oom_if_mentioned``, any exception whose text starts with a line naming
    ``MemoryError``), else ``error``; a failure adds ``message`` and its traceback goes to
    the log. With ``phase_fields``, ``out`` also gets ``phase_at_end``,
    ``phase_elapsed_at_end_s`` and ``phases_s`` (completed phases, seconds). Always:
    ``maxrss_self_bytes``, the phase ``done``, the JSON written atomically. Returns 0.
    """
    phase = Phases(phase_file(result_path))
    out = {"status": "error", "warnings": []} if out is None else out
    try:
        body(phase, out)
        out["status"] = "ok"
    except MemoryError as exc:
        out |= {"status": "oom", "message": f"{type(exc).__name__}: {exc}".strip()[:500]}
        traceback.print_exc()
    except BaseException as exc:  # noqa: BLE001 - every failure is a result
        lines = [ln for ln in f"{type(exc).__name__}: {exc}".splitlines() if ln.strip()]
        oom = oom_if_mentioned and "MemoryError" in (lines[0] if lines else "")
        out |= {"status": "oom" if oom else "error",
                "message": lines[-1][:500] if lines else type(exc).__name__}
        traceback.print_exc()
    if phase_fields:
        out["phase_at_end"] = phase.current
        out["phase_elapsed_at_end_s"] = time.perf_counter() - phase.t0
    phase("done")
    if phase_fields:
        out["phases_s"] = {k: v for k, v in phase.done.items() if k != "done"}
    out["maxrss_self_bytes"] = maxrss_bytes()
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, default=float))
    tmp.replace(result_path)
    return 0


# -- one cell in its own process: the parent's side ------------------------------------------


@dataclass
class CellFiles:
    """What a cell's worker writes: its log (stdout and stderr), its result (JSON), its
    phase file and, if it starts worker processes of its own, their pids (a JSON list)."""

    log: Path
    result: Path
    phase: Path
    pids: Path


def cell_files(log_dir: Path, stem: str) -> CellFiles:
    """The files of cell ``stem`` in ``log_dir`` (created if missing); result, phase and
    pids files of an earlier run are removed."""
    log_dir.mkdir(parents=True, exist_ok=True)
    base = log_dir / stem
    result = base.with_suffix(".result.json")
    files = CellFiles(base.with_suffix(".log"), result, phase_file(result),
                      result.with_suffix(".pids"))
    for p in (files.result, files.phase, files.pids):
        p.unlink(missing_ok=True)
    return files


def limit_address_space(limit_bytes: int):
    """A ``preexec_fn`` setting ``RLIMIT_AS`` in the child (between fork and exec)."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    return apply


@dataclass
class CellOutcome:
    """What the parent saw of one cell's process (:func:`run_subprocess_cell`)."""

    returncode: int | None
    killed: str | None  # "timeout" / "mem-cap" (we killed it), else None
    kill_time: float | None  # time.time() when we killed it
    wall_s: float  # from the start of the process to its end (or our kill)
    peak_rss_bytes: int  # polled RSS of the process tree, summed at one instant
    max_processes: int  # the most processes seen in the tree at one poll
    # per phase (``start`` before the first): peak RSS of the worker's own process
    # ("client"), of the largest process listed in the pids file ("worker_max") and of the
    # tree ("total")
    peaks_by_phase: dict[str, dict[str, int]]
    worker_peaks: dict[int, int]  # per process listed in the pids file: peak RSS
    phase: dict[str, Any] | None  # the phase file at the end: phase, time, done
    result: dict[str, Any] | None  # the worker's result JSON (None when killed or missing)
    load_avg_start: list[float]  # os.getloadavg() before the start and after the end
    load_avg_end: list[float]
    log: Path

    @property
    def phase_at_end(self) -> str | None:
        return self.phase["phase"] if self.phase else None

    @property
    def phases_done(self) -> dict[str, float]:
        """Completed phases and their seconds, from the phase file (``{}`` without one)."""
        return self.phase.get("done", {}) if self.phase else {}

    @property
    def phase_elapsed_at_kill_s(self) -> float | None:
        """Seconds the killed worker had spent in its last phase."""
        if self.kill_time is None or not self.phase:
            return None
        return self.kill_time - self.phase["time"]

    @property
    def log_name(self) -> str:
        """The log's path relative to the repository."""
        return str(self.log.relative_to(REPO_DIR))

    def exit_cause(self) -> tuple[str, str]:
        """``("killed", "signal N")`` for a process ended by a signal we did not send, else
        ``("error", "exit code N")``."""
        rc = self.returncode
        if rc is not None and rc < 0:
            return "killed", f"signal {-rc}"
        return "error", f"exit code {rc}"

    def last_log_line(self) -> str:
        return last_line(self.log) or ""


def run_subprocess_cell(cmd: Sequence[str], files: CellFiles, *, time_cap: float, poll: float,
                        rss_cap: float | None = None, address_space_cap: int | None = None,
                        env: dict[str, str] | None = None, cwd: Path = REPO_DIR) -> CellOutcome:
    """Run a cell's worker ``cmd`` in its own session, output to ``files.log``.

    Every ``poll`` s: the RSS of each process of its tree, attributed to the phase in
    ``files.phase`` (and, once ``files.pids`` exists, to the processes it lists); the tree is
    killed after ``time_cap`` s (``timeout``) or when its summed RSS exceeds ``rss_cap``
    (``mem-cap``). ``address_space_cap`` sets the worker's ``RLIMIT_AS``. Stray descendants
    are killed when the worker ends.
    """
    import psutil

    killed: str | None = None
    kill_time = None
    peaks: dict[str, dict[str, int]] = {}
    worker_peaks: dict[int, int] = {}
    workers: set[int] = set()
    max_procs = 0
    load_start = list(os.getloadavg())
    with open(files.log, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True,
            preexec_fn=limit_address_space(address_space_cap) if address_space_cap else None)
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            if not workers and files.pids.exists():
                workers = set(read_json(files.pids) or [])
            state = read_json(files.phase)
            name = state["phase"] if state else "start"
            procs = process_tree(ps)
            client = wmax = total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                total += rss
                if p.pid == proc.pid:
                    client = rss
                elif p.pid in workers:
                    wmax = max(wmax, rss)
                    worker_peaks[p.pid] = max(worker_peaks.get(p.pid, 0), rss)
            max_procs = max(max_procs, len(procs))
            pk = peaks.setdefault(name, {"client": 0, "worker_max": 0, "total": 0})
            pk["client"], pk["worker_max"] = max(pk["client"], client), max(pk["worker_max"], wmax)
            pk["total"] = max(pk["total"], total)
            if time.perf_counter() - t0 > time_cap:
                killed = "timeout"
            elif rss_cap and total > rss_cap:
                killed = "mem-cap"
            if killed:
                kill_time = time.time()
                kill_tree(proc.pid)
                proc.wait()
                break
            time.sleep(poll)
        else:
            kill_tree(proc.pid)  # stray children, if any
        wall_s = time.perf_counter() - t0
    return CellOutcome(
        returncode=proc.returncode, killed=killed, kill_time=kill_time, wall_s=wall_s,
        peak_rss_bytes=max((v["total"] for v in peaks.values()), default=0),
        max_processes=max_procs, peaks_by_phase=peaks, worker_peaks=worker_peaks,
        phase=read_json(files.phase), result=None if killed else read_json(files.result),
        load_avg_start=load_start, load_avg_end=list(os.getloadavg()), log=files.log,
    )


def update_fields(record: Any, values: dict[str, Any]) -> None:
    """Set the attributes of ``record`` (a dataclass) named by the keys of ``values``; other
    keys are ignored."""
    for k, v in values.items():
        if hasattr(record, k):
            setattr(record, k, v)


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
