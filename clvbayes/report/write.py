"""Writing the report folder all at once: everything is written to a temporary folder next
to the destination and renamed into place only when complete, so a failure never leaves a
partial report behind.

**What ``overwrite`` may replace.** Only an earlier clvbayes report, never anything else:
every report holds a marker file :data:`MARKER` (JSON: clvbayes version, creation time, the
files the report wrote). A folder is recognised as a report by its marker, or, for reports
written before the marker existed, by the old layout (``summary.json``, ``report.html`` and
``idata.nc``, nothing but other report files and ``plots/*.png``). Any other non-empty
folder is refused, with or without ``overwrite``, naming what is in it. A report folder
holding files the report did not write (a user's notes added later) is refused too: the
user moves them away or chooses another folder; nothing of theirs is ever deleted. When a
report is replaced, only the files it wrote are removed (file by file, no recursive delete).

**Permissions.** The folder and its files get the usual permissions under the process
umask (``0o777 & ~umask`` and ``0o666 & ~umask``), not the private 0700 of a temporary
folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

__all__ = ["write_report", "REPORT_FILES", "HOLDOUT_FILE", "MARKER", "report_files", "check_destination",
           "check_writable"]

#: Files every report folder holds (plus one PNG per figure under ``plots/``; a report of
#: a log without amounts has no ``idata_gamma_gamma.nc``).
REPORT_FILES = ("summary.json", "customers.csv", "idata.nc", "idata_gamma_gamma.nc", "report.html")
#: Written as well when the analysis has a holdout check (``--calibration-end``).
HOLDOUT_FILE = "holdout.csv"
#: The marker file written with every report (JSON: version, created, files).
MARKER = ".clvbayes-report"
#: Files that identify a report written before the marker (the old layout).
_OLD_LAYOUT_REQUIRED = ("summary.json", "report.html", "idata.nc")
_PLOTS = "plots"


def _listing(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, as sorted relative POSIX paths (folders with a
    trailing ``/``; a link to a folder is listed as a file, so it is never a report folder
    to clean)."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        out += [(rel / d).as_posix() + ("" if (Path(root) / d).is_symlink() else "/") for d in dirs]
        out += [(rel / f).as_posix() for f in files]
    return sorted(out)


def _top_level(folder: Path) -> list[str]:
    """The entries of ``folder`` itself (not recursive: it may be a home folder), sorted,
    folders with a trailing ``/``."""
    return sorted(p.name + "/" if p.is_dir() else p.name for p in folder.iterdir())


def _describe(names: list[str], k: int = 5) -> str:
    shown = ", ".join(names[:k]) + (", ..." if len(names) > k else "")
    return f"{len(names)} entr{'y' if len(names) == 1 else 'ies'}: {shown}"


def report_files(folder: str | Path) -> tuple[list[str], list[str]] | None:
    """The files of an earlier clvbayes report in ``folder`` (module docstring).

    Returns
    -------
    tuple of (list of str, list of str) or None
        None when ``folder`` is not a report; else (the report's files, the entries it did
        not write), as relative POSIX paths (folders end with ``/``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    marker = folder / MARKER
    if not marker.is_file():
        top = set(_top_level(folder))
        if not top <= {*REPORT_FILES, f"{_PLOTS}/"} or not all(f in top for f in _OLD_LAYOUT_REQUIRED):
            return None  # decided without walking the folder
    entries = _listing(folder)
    if marker.is_file():
        try:
            written = json.loads(marker.read_text(encoding="utf-8"))["files"]
            ours = {str(f) for f in written} | {MARKER}
        except (ValueError, KeyError, TypeError, OSError):
            return None  # a damaged marker proves nothing: not recognised
        dirs = {p.as_posix() + "/" for f in ours for p in Path(f).parents if p != Path(".")} | {f"{_PLOTS}/"}
    else:
        ours = {f for f in REPORT_FILES if (folder / f).is_file()}
        ours |= {e for e in entries if e.startswith(f"{_PLOTS}/") and e.count("/") == 1 and e.endswith(".png")}
        dirs = {f"{_PLOTS}/"}
    files = [e for e in entries if e in ours]
    foreign = [e for e in entries if e not in ours and e not in dirs]
    if not foreign:
        return files, []
    if not marker.is_file():
        return None  # the old layout with anything else in it: not provably a report
    return files, foreign


def check_destination(out: str | Path, overwrite: bool) -> None:
    """Raise ``FileExistsError`` if the report cannot go to ``out`` (module docstring):
    ``out`` is a file, a non-empty folder that is not an earlier report, a report with
    files of the user's in it, or an earlier report without ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; choose another --out.")
    if not out.is_dir() or not any(out.iterdir()):
        return
    found = report_files(out)
    if found is None:
        raise FileExistsError(
            f"{out} is not empty and is not a clvbayes report ({_describe(_top_level(out))}); "
            "--overwrite only replaces an earlier clvbayes report: choose another --out."
        )
    _, foreign = found
    if foreign:
        raise FileExistsError(
            f"{out} holds a clvbayes report and files it did not write ({_describe(foreign)}); "
            "move them out of the folder or choose another --out (clvbayes never deletes them)."
        )
    if not overwrite:
        raise FileExistsError(
            f"{out} exists and is not empty (an earlier clvbayes report); choose another --out or "
            "pass --overwrite to replace it."
        )


def check_writable(out: str | Path) -> None:
    """Raise ``PermissionError`` (or the ``OSError`` met) unless a report can be written to
    ``out``: a file can be created in its nearest existing parent (where the temporary
    folder goes) and, when ``out`` exists, in ``out`` itself (its old files are removed).
    Meant to run before any fitting."""
    out = Path(out).absolute()
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    for folder in ([parent, out] if out.is_dir() else [parent]):
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is not a folder, so {out} cannot be created; choose another --out.")
        try:
            fd, probe = tempfile.mkstemp(prefix=".clvbayes-probe.", dir=folder)
        except OSError as err:
            raise PermissionError(
                f"cannot write to {folder} ({err.strerror or err}); choose another --out or fix its permissions."
            ) from err
        os.close(fd)
        os.unlink(probe)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _set_permissions(folder: Path) -> None:
    """Usual permissions under the umask for ``folder`` and everything in it."""
    mask = _umask()
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o777 & ~mask)
        for d in dirs:
            os.chmod(Path(root) / d, 0o777 & ~mask)
        for f in files:
            os.chmod(Path(root) / f, 0o666 & ~mask)


def _remove_report(folder: Path, files: list[str]) -> None:
    """Remove the report's own ``files`` from ``folder`` and the then empty folders; leave
    anything else (and warn), never a recursive delete."""
    for f in files:
        (folder / f).unlink(missing_ok=True)
    for d in sorted({p for f in files for p in Path(f).parents if p != Path(".")}, key=lambda p: -len(p.parts)):
        try:
            (folder / d).rmdir()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        warnings.warn(f"the replaced report left files clvbayes did not write in {folder}; they were kept.",
                      stacklevel=3)


def write_report(analysis, out: str | Path, *, overwrite: bool = False, command: str | None = None,
                 progress=None) -> Path:
    """Write the report folder for ``analysis``.

    Files: ``summary.json`` (parameters with HDIs, diagnostics, holdout check, equity, churn,
    concentration, lifecycle stages, settings), ``customers.csv`` (one row per customer),
    ``idata.nc`` (the purchase model's fit, BG/NBD by default; its class's ``load`` reads it),
    ``idata_gamma_gamma.nc`` (:meth:`clvbayes.GammaGammaModel.load`; not for a log without
    amounts), ``plots/*.png``, ``report.html`` (self-contained), with a holdout check
    ``holdout.csv`` (per customer: actual holdout purchases, forecast, interval, and the same
    for spend), and the marker :data:`MARKER` listing them.

    Parameters
    ----------
    analysis
        A :class:`clvbayes.workflow.Analysis`.
    out
        Destination folder; created. If it exists and is not empty, it must be an earlier
        clvbayes report (module docstring) and ``overwrite`` true; it is replaced only
        after the new report is complete.
    overwrite
        Replace an earlier report.
    command
        The command line, recorded in the report.
    progress
        A :class:`clvbayes.workflow.StepPrinter` for the two steps (figures, files).

    Returns
    -------
    pathlib.Path
        The folder.
    """
    from clvbayes._version import __version__
    from clvbayes.report.figures import report_figures
    from clvbayes.report.html import render_html
    from clvbayes.workflow import StepPrinter

    out = Path(out)
    check_destination(out, overwrite)
    steps = progress or StepPrinter(2, quiet=True)
    with steps("drawing the figures"):
        figures = report_figures(analysis)
    with steps(f"writing the report to {out}"):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            (tmp / _PLOTS).mkdir()
            for fig in figures:
                (tmp / _PLOTS / f"{fig.name}.png").write_bytes(fig.png)
            (tmp / "summary.json").write_text(json.dumps(analysis.summary(), indent=2, allow_nan=False) + "\n")
            analysis.customers.to_csv(tmp / "customers.csv", index_label="customer_id")
            if getattr(analysis, "validation", None) is not None:  # a holdout check was run
                analysis.validation.customer_table().to_csv(tmp / HOLDOUT_FILE, index_label="customer_id")
            analysis.purchase_model.save(tmp / "idata.nc")
            if analysis.gamma_gamma is not None:
                analysis.gamma_gamma.save(tmp / "idata_gamma_gamma.nc")
            (tmp / "report.html").write_text(render_html(analysis, figures, command=command), encoding="utf-8")
            marker = {"clvbayes_version": __version__,
                      "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                      "command": command, "files": [e for e in _listing(tmp) if not e.endswith("/")]}
            (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            _set_permissions(tmp)
            if out.exists():
                check_destination(out, overwrite)
                old_files = (report_files(out) or ([], []))[0]
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
                out.rename(old / out.name)
                tmp.rename(out)
                _remove_report(old / out.name, old_files)
                if not any(old.iterdir()):
                    old.rmdir()
            else:
                tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out
