"""Writing the report folder all at once: everything is written to a temporary folder next
to the destination and renamed into place only when complete, so a failure never leaves a
partial report behind."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

__all__ = ["write_report", "REPORT_FILES", "HOLDOUT_FILE"]

#: Files every report folder holds (plus one PNG per figure under ``plots/``).
REPORT_FILES = ("summary.json", "customers.csv", "idata.nc", "idata_gamma_gamma.nc", "report.html")
#: Written as well when the analysis has a holdout check (``--calibration-end``).
HOLDOUT_FILE = "holdout.csv"


def _check_destination(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; choose another --out.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; choose another --out or pass --overwrite.")


def write_report(analysis, out: str | Path, *, overwrite: bool = False, command: str | None = None,
                 progress=None) -> Path:
    """Write the report folder for ``analysis``.

    Files: ``summary.json`` (parameters with HDIs, diagnostics, holdout check, equity, churn,
    concentration, lifecycle stages, settings), ``customers.csv`` (one row per customer),
    ``idata.nc`` (the BG/NBD fit; :meth:`clvbayes.BetaGeoModel.load` reads it),
    ``idata_gamma_gamma.nc`` (:meth:`clvbayes.GammaGammaModel.load`), ``plots/*.png``,
    ``report.html`` (self-contained) and, with a holdout check, ``holdout.csv`` (per
    customer: actual holdout purchases, forecast, interval, and the same for spend).

    Parameters
    ----------
    analysis
        A :class:`clvbayes.workflow.Analysis`.
    out
        Destination folder; created. If it exists and is not empty, ``overwrite`` must be
        true and its content is replaced, only after the new report is complete.
    overwrite
        Replace an existing, non-empty folder.
    command
        The command line, recorded in the report.
    progress
        A :class:`clvbayes.workflow.StepPrinter` for the two steps (figures, files).

    Returns
    -------
    pathlib.Path
        The folder.
    """
    from clvbayes.report.figures import report_figures
    from clvbayes.report.html import render_html
    from clvbayes.workflow import StepPrinter

    out = Path(out)
    _check_destination(out, overwrite)
    steps = progress or StepPrinter(2, quiet=True)
    with steps("drawing the figures"):
        figures = report_figures(analysis)
    with steps(f"writing the report to {out}"):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            (tmp / "plots").mkdir()
            for fig in figures:
                (tmp / "plots" / f"{fig.name}.png").write_bytes(fig.png)
            (tmp / "summary.json").write_text(json.dumps(analysis.summary(), indent=2, allow_nan=False) + "\n")
            analysis.customers.to_csv(tmp / "customers.csv", index_label="customer_id")
            if getattr(analysis, "validation", None) is not None:  # a holdout check was run
                analysis.validation.customer_table().to_csv(tmp / HOLDOUT_FILE, index_label="customer_id")
            analysis.bgnbd.save(tmp / "idata.nc")
            analysis.gamma_gamma.save(tmp / "idata_gamma_gamma.nc")
            (tmp / "report.html").write_text(render_html(analysis, figures, command=command), encoding="utf-8")
            if out.exists():
                _check_destination(out, overwrite)
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
                out.rename(old / out.name)
                tmp.rename(out)
                shutil.rmtree(old)
            else:
                tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out
