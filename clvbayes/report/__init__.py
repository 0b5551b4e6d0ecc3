"""The report folder of ``clvbayes demo`` / ``clvbayes fit``: figures, ``summary.json``,
``customers.csv``, the fits as netCDF and a self-contained ``report.html``."""

from clvbayes.report.figures import ReportFigure, report_figures
from clvbayes.report.html import render_html
from clvbayes.report.write import REPORT_FILES, write_report

__all__ = ["ReportFigure", "report_figures", "render_html", "write_report", "REPORT_FILES"]
