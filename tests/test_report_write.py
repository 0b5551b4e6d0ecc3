"""The report folder: --overwrite replaces only an earlier clvbayes report, never a user's
files; unwritable destinations are found before any fitting; permissions follow the umask."""

import json
import os
import stat

import pandas as pd
import pytest

import clvbayes.report.figures as report_figures
import clvbayes.report.html as report_html
import clvbayes.workflow as workflow
from clvbayes.cli import EXIT_OUTPUT, main
from clvbayes.report.figures import ReportFigure
from clvbayes.report.write import MARKER, check_destination, report_files, write_report

CSV = "customer_id,date,amount\na,1997-01-03,10\na,1997-02-03,12\nb,1997-01-05,7\n"


class _Model:
    def __init__(self, name):
        self.name = name

    def save(self, path):
        path.write_bytes(self.name.encode())


class _Analysis:
    """Only what write_report touches once figures and page are stubbed."""

    customers = pd.DataFrame({"p_alive": [0.5]}, index=pd.Index(["a"], name="customer_id"))
    purchase_model = _Model("bg")
    gamma_gamma = _Model("gg")

    @staticmethod
    def summary():
        return {"x": 1}


@pytest.fixture
def stub_report(monkeypatch):
    """write_report without fitting: one figure, a trivial page."""
    monkeypatch.setattr(report_figures, "report_figures",
                        lambda a: [ReportFigure("trace_bgnbd", "models", "c", b"\x89PNG")])
    monkeypatch.setattr(report_html, "render_html", lambda a, f, command=None: "<html></html>")
    return _Analysis()


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if the analysis starts: the output checks must come first."""
    def fail(*args, **kwargs):
        raise AssertionError("the analysis ran although the output folder cannot be written")

    monkeypatch.setattr(workflow, "run_analysis", fail)


def _old_report(folder):
    """A report folder as written before the marker file existed."""
    (folder / "plots").mkdir(parents=True)
    for name in ("summary.json", "report.html", "idata.nc", "idata_gamma_gamma.nc", "customers.csv"):
        (folder / name).write_text("old")
    (folder / "plots" / "pareto.png").write_text("old")
    return folder


def _tree(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_overwrite_refuses_a_folder_that_is_not_a_report(tmp_path, capsys, no_fit):
    log = tmp_path / "log.csv"
    log.write_text(CSV)
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    for k in range(7):
        (home / f"notes{k}.txt").write_text("keep me")
    before = _tree(home)
    code = main(["fit", str(log), "--out", str(home), "--overwrite"])
    err = capsys.readouterr().err
    assert code == EXIT_OUTPUT
    assert "not a clvbayes report" in err and "8 entries: notes0.txt, notes1.txt" in err and "..." in err
    assert _tree(home) == before
    # the Python API refuses it too
    with pytest.raises(FileExistsError, match="not a clvbayes report"):
        check_destination(home, overwrite=True)


def test_a_report_folder_with_a_users_file_is_refused_and_kept(tmp_path, stub_report):
    old = _old_report(tmp_path / "old")
    (old / "my notes.txt").write_text("keep me")
    assert report_files(old) is None  # the old layout plus anything else is not provably a report
    with pytest.raises(FileExistsError, match="not a clvbayes report"):
        write_report(stub_report, old, overwrite=True)
    assert (old / "my notes.txt").read_text() == "keep me"

    new = write_report(stub_report, tmp_path / "new")
    (new / "plots" / "mine.png").write_text("keep me")
    files, foreign = report_files(new)
    assert foreign == ["plots/mine.png"] and "summary.json" in files
    with pytest.raises(FileExistsError, match="files it did not write .*plots/mine.png"):
        write_report(stub_report, new, overwrite=True)
    assert (new / "plots" / "mine.png").read_text() == "keep me"


def test_a_linked_plots_folder_is_not_a_report(tmp_path):
    elsewhere = tmp_path / "pictures"
    elsewhere.mkdir()
    (elsewhere / "pareto.png").write_text("mine")
    out = _old_report(tmp_path / "report")
    (out / "plots" / "pareto.png").unlink()
    (out / "plots").rmdir()
    (out / "plots").symlink_to(elsewhere, target_is_directory=True)
    assert report_files(out) is None
    with pytest.raises(FileExistsError, match="not a clvbayes report"):
        check_destination(out, overwrite=True)


def test_overwrite_replaces_an_old_report_and_only_its_files(tmp_path, stub_report):
    out = _old_report(tmp_path / "report")
    assert report_files(out) is not None
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_report(stub_report, out)
    write_report(stub_report, out, overwrite=True, command="clvbayes fit x")
    assert _tree(out) == sorted([MARKER, "customers.csv", "idata.nc", "idata_gamma_gamma.nc", "plots",
                                 "plots/trace_bgnbd.png", "report.html", "summary.json"])
    assert (out / "idata.nc").read_bytes() == b"bg"
    marker = json.loads((out / MARKER).read_text())
    assert marker["command"] == "clvbayes fit x" and "created" in marker and "clvbayes_version" in marker
    assert sorted(marker["files"]) == sorted(set(_tree(out)) - {MARKER, "plots"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # nothing left over
    # a report with the marker is replaced again
    write_report(stub_report, out, overwrite=True)
    assert (out / "plots" / "trace_bgnbd.png").is_file()


def test_demo_replaces_only_a_recognised_report(tmp_path, capsys, no_fit):
    out = tmp_path / "demo"
    out.mkdir()
    for name in ("report.html", "summary.json", "budget.xlsx"):
        (out / name).write_text("mine")
    assert main(["demo", "--out", str(out)]) == EXIT_OUTPUT
    assert "not a clvbayes report" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["budget.xlsx", "report.html", "summary.json"]


def test_unwritable_destination_is_found_before_fitting(tmp_path, capsys, no_fit):
    log = tmp_path / "log.csv"
    log.write_text(CSV)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = main(["fit", str(log), "--out", str(blocker / "report")])
    assert code == EXIT_OUTPUT and "is not a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "log.csv"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_parent_is_found_before_fitting(tmp_path, capsys, no_fit):
    log = tmp_path / "log.csv"
    log.write_text(CSV)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = main(["fit", str(log), "--out", str(locked / "report")])
    finally:
        locked.chmod(0o755)
    assert code == EXIT_OUTPUT and "cannot write" in capsys.readouterr().err


def test_write_probe_failure_exits_4_before_fitting(tmp_path, capsys, monkeypatch, no_fit):
    """A folder the process may not write (here: the probe's file creation refused, as on a
    read-only file system or for another user's folder; root ignores chmod)."""
    import tempfile

    log = tmp_path / "log.csv"
    log.write_text(CSV)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    code = main(["fit", str(log), "--out", str(tmp_path / "report")])
    assert code == EXIT_OUTPUT and "cannot write to" in capsys.readouterr().err


@pytest.mark.parametrize(("umask", "folder_mode", "file_mode"), [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_permissions_follow_the_umask(tmp_path, stub_report, umask, folder_mode, file_mode):
    old = os.umask(umask)
    try:
        out = write_report(stub_report, tmp_path / "report")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == folder_mode
    assert stat.S_IMODE((out / "plots").stat().st_mode) == folder_mode
    for p in out.rglob("*"):
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == file_mode, p
