"""The ``clvbayes`` command line: demo report, fit on CSV/Parquet, bad input, exit codes."""

import json
import re

import arviz as az
import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.cli import EXIT_DATA, EXIT_OUTPUT, EXIT_USAGE, build_parser, main
from clvbayes.report import REPORT_FILES
from tests.conftest import FAST_CLI

PLOTS = {
    "trace_bgnbd", "trace_gamma_gamma", "period_transactions", "calibration_holdout", "tracking_cumulative",
    "tracking_incremental", "equity_posterior", "equity_by_segment", "equity_by_stage", "pareto",
    "frequency_recency_matrix", "probability_alive_matrix", "probability_alive_history",
}


# -- demo ----------------------------------------------------------------------------------
def test_demo_prints_estimates_next_to_published(demo_report):
    _, out, _, code = demo_report
    assert code == 0
    assert "customers: 2,357   repeat buyers: 946" in out
    for name, published in (("r", "0.242594"), ("alpha", "4.4136"), ("a", "0.79292"), ("b", "2.42589")):
        line = next(line for line in out.splitlines() if line.startswith(f"{name} "))
        assert published in line
    assert re.search(r"BG/NBD LL\s+-9582\.4", out)
    assert "actual 1,882" in out
    assert re.search(r"customer equity over 52\.18 weeks: [\d,]+ \(94% HDI", out)


def test_demo_reports_progress_steps(demo_report):
    _, _, err, _ = demo_report
    steps = re.findall(r"^\[(\d)/(\d)\] ", err, flags=re.M)
    assert [int(k) for k, _ in steps] == list(range(1, 9))
    assert {n for _, n in steps} == {"8"}


def test_demo_writes_every_report_file(demo_report):
    folder, _, _, _ = demo_report
    for name in REPORT_FILES:
        assert (folder / name).is_file(), name
    assert {p.stem for p in (folder / "plots").glob("*.png")} == PLOTS
    for p in (folder / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing left over from the atomic write
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_summary_json_holds_the_headline_figures(demo_report):
    folder, _, _, _ = demo_report
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["clvbayes_version"] == clvbayes.__version__
    assert summary["data"]["customers"] == 2357 and summary["data"]["transactions"] == 6696
    assert set(summary["parameters"]) == {"bgnbd", "gamma_gamma", "bgnbd_calibration", "gamma_gamma_calibration"}
    r = summary["parameters"]["bgnbd_calibration"]["r"]
    assert r["hdi_3%"] < 0.2426 < r["hdi_97%"]  # the published MLE lies in the posterior's HDI
    assert summary["holdout"]["total_purchases"]["actual"] == 1882
    eq = summary["equity"]["total"]
    assert eq["hdi_3%"] < eq["mean"] < eq["hdi_97%"]
    by_cohort = sum(v["mean"] for v in summary["equity"]["by_segment"].values())
    assert by_cohort == pytest.approx(eq["mean"], rel=1e-9)
    assert 0.5 < summary["concentration"]["0.2"]["mean"] < 1
    assert 0 < summary["churn"]["total"]["churn_rate_mean"] < 1
    assert summary["settings"]["horizon"] == pytest.approx(365.25 / 7)
    assert set(summary["diagnostics"]["bgnbd"]) >= {"converged", "max_r_hat", "min_ess_bulk", "divergences", "problems"}


def test_customers_csv_one_row_per_customer(demo_report, cdnow_transactions):
    folder, _, _, _ = demo_report
    table = pd.read_csv(folder / "customers.csv", index_col="customer_id")
    assert len(table) == cdnow_transactions["customer_id"].nunique()
    for col in ("frequency", "recency", "T", "p_alive", "expected_purchases", "clv", "clv_hdi_3%", "clv_hdi_97%",
                "stage", "segment"):
        assert col in table.columns, col
    assert ((table["clv_hdi_3%"] <= table["clv"]) & (table["clv"] <= table["clv_hdi_97%"])).all()
    assert table["p_alive"].between(0, 1).all()
    assert set(table["stage"]) <= {"new", "active", "at risk", "lapsed"}
    summary = json.loads((folder / "summary.json").read_text())
    assert table["clv"].sum() == pytest.approx(summary["equity"]["total"]["mean"], rel=1e-9)
    # frequency recomputed from the log: repeat purchase days to 1998-06-30
    days = cdnow_transactions.groupby("customer_id")["date"].nunique() - 1
    assert (table["frequency"] == days.reindex(table.index)).all()


def test_idata_files_reload_as_models(demo_report):
    folder, _, _, _ = demo_report
    bg = clvbayes.BetaGeoModel.load(folder / "idata.nc")
    gg = clvbayes.GammaGammaModel.load(folder / "idata_gamma_gamma.nc")
    assert bg.idata_.posterior.sizes["draw"] == 200 and bg.idata_.posterior.sizes["chain"] == 2
    assert set(gg.idata_.posterior.data_vars) >= {"p", "q", "gamma"}
    assert isinstance(az.summary(bg.idata_), pd.DataFrame)


def test_report_html_is_self_contained(demo_report):
    folder, _, _, _ = demo_report
    page = (folder / "report.html").read_text()
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(images) == len(PLOTS)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network
    assert "<script" not in page


def test_demo_replaces_its_own_report_but_nothing_else(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["demo", "--out", str(foreign), *FAST_CLI]) == EXIT_OUTPUT
    assert "not empty" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"


# -- fit -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_log(cdnow_transactions):
    """400 CDNOW customers with renamed columns and string ids."""
    ids = np.sort(cdnow_transactions["customer_id"].unique())[:400]
    log = cdnow_transactions.loc[cdnow_transactions["customer_id"].isin(ids)]
    return pd.DataFrame({
        "Customer": "c" + log["customer_id"].astype(str),
        "Day": log["date"].dt.strftime("%Y%m%d"),
        "Revenue": log["amount"],
    })


def test_fit_on_parquet_without_holdout(tmp_path, small_log, capsys):
    path = tmp_path / "log.parquet"
    small_log.assign(Day=pd.to_datetime(small_log["Day"], format="%Y%m%d")).to_parquet(path)
    out = tmp_path / "report"
    code = main(["fit", str(path), "--customer-col", "Customer", "--date-col", "Day", "--amount-col", "Revenue",
                 "--observation-end", "1998-06-30", "--time-unit", "D", "--horizon", "365", "--margin", "0.3",
                 "--acquisition-cost", "10", "--out", str(out), *FAST_CLI])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "customer equity over 365 days" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert "holdout" not in summary
    assert summary["settings"]["margin"] == 0.3 and summary["settings"]["time_unit"] == "D"
    assert summary["equity"]["acquisition"] is not None
    table = pd.read_csv(out / "customers.csv", index_col="customer_id")
    assert len(table) == 400 and table.index.str.startswith("c").all()
    assert not (out / "plots" / "calibration_holdout.png").exists()
    page = (out / "report.html").read_text()
    assert "clvbayes fit" in page and "--margin 0.3" in page


def test_fit_csv_with_date_format(tmp_path, small_log, monkeypatch):
    """A CSV with YYYYMMDD dates and a holdout; the analysis itself is replaced by a stub
    that records what it was given (the full path is covered by the demo and Parquet tests)."""
    import clvbayes.cli as cli

    path = tmp_path / "log.csv"
    small_log.to_csv(path, index=False)
    seen = {}

    def fake_run(transactions, settings, args, source, command):
        seen.update(transactions=transactions, settings=settings, source=source)
        return 0

    monkeypatch.setattr(cli, "_run", fake_run)
    code = main(["fit", str(path), "--customer-col", "Customer", "--date-col", "Day", "--amount-col", "Revenue",
                 "--date-format", "%Y%m%d", "--calibration-end", "1997-09-30", "--out", str(tmp_path / "r")])
    assert code == 0
    tx = seen["transactions"]
    assert list(tx.columns) == ["customer_id", "date", "amount"]
    assert tx["date"].min() == pd.Timestamp("1997-01-01") and len(tx) == len(small_log)
    assert seen["settings"].calibration_end == "1997-09-30" and seen["source"] == str(path)


CSV_HEADER = "Customer,Day,Revenue\n"
BAD_INPUTS = {
    "bad_date": (CSV_HEADER + "a,1997-01-03,10\na,1997-02-30,5\nb,1997-01-05,7\n",
                 ["'Day'", "not dates", "line 3", "1997-02-30"]),
    "missing_column": ("Customer,Date,Revenue\na,1997-01-03,10\n", ["no column 'Day'", "Columns present", "--date-col"]),
    "negative_amount": (CSV_HEADER + "a,1997-01-03,10\nb,1997-01-05,7\nb,1997-01-09,-7\n",
                        ["'Revenue'", "negative", "line 4", "'-7'"]),
    "non_numeric_amount": (CSV_HEADER + "a,1997-01-03,$10\n", ["'Revenue'", "not numbers", "line 2", "'$10'"]),
    "missing_customer": (CSV_HEADER + "a,1997-01-03,10\n,1997-01-04,3\n", ["'Customer'", "missing", "line 3"]),
    "empty_file": ("", ["empty"]),
    "header_only": (CSV_HEADER, ["no purchases"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_fit_bad_input_exits_nonzero_and_writes_nothing(tmp_path, capsys, case):
    content, expected = BAD_INPUTS[case]
    path = tmp_path / "log.csv"
    path.write_text(content)
    out = tmp_path / "report"
    code = main(["fit", str(path), "--customer-col", "Customer", "--date-col", "Day", "--amount-col", "Revenue",
                 "--out", str(out), *FAST_CLI])
    err = capsys.readouterr().err
    assert code == EXIT_DATA
    assert err.startswith("clvbayes fit: error: ")
    for text in expected:
        assert text in err, (text, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


def test_fit_data_problem_found_after_reading_writes_nothing(tmp_path, capsys):
    """Purchases after --observation-end are a data error raised by the summary, not the reader."""
    path = tmp_path / "log.csv"
    path.write_text(CSV_HEADER + "a,1997-01-03,10\na,1997-03-03,10\nb,1997-02-05,7\n")
    code = main(["fit", str(path), "--customer-col", "Customer", "--date-col", "Day", "--amount-col", "Revenue",
                 "--observation-end", "1997-02-01", "--out", str(tmp_path / "report"), *FAST_CLI])
    assert code == EXIT_DATA
    assert "observation_end" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


def test_fit_missing_file(tmp_path, capsys):
    code = main(["fit", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r")])
    assert code == EXIT_DATA
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--margin", "-0.3", "margin"), ("--discount-rate", "-1", "discount_rate"), ("--horizon", "0", "horizon"),
    ("--time-unit", "fortnight", ""), ("--hdi-prob", "1.5", "hdi_prob"),
    # checked at parse time, the message naming the option (before: margin 1.5, a rate of 10 and
    # --seed -1 went on to fitting; --value-draws -5 was named value_draws, not the option)
    ("--margin", "1.5", "argument --margin: margin must be a fraction of revenue in (0, 1]"),
    ("--margin", "0", "argument --margin"), ("--margin", "abc", "argument --margin: expected a number"),
    ("--discount-rate", "10", "argument --discount-rate: discount_rate must be an effective annual rate in [0, 1]"),
    ("--discount-rate", "nan", "argument --discount-rate"), ("--horizon", "-5", "argument --horizon"),
    ("--horizon", "nan", "argument --horizon"), ("--horizon", "inf", "argument --horizon"),
    ("--hdi-prob", "0", "argument --hdi-prob"), ("--value-draws", "-5", "argument --value-draws"),
    ("--seed", "-1", "argument --seed: seed must be a whole number from 0 to 2**32 - 1"),
    ("--seed", str(2**32), "argument --seed"), ("--seed", "1.5", "argument --seed: expected a whole number"),
    ("--period", "nan", "argument --period"), ("--contact-cost", "-1", "argument --contact-cost"),
    ("--acquisition-cost", "0", "argument --acquisition-cost"), ("--new-window", "-1", "argument --new-window"),
])
def test_fit_bad_option_values_exit_2(tmp_path, capsys, option, value, message):
    path = tmp_path / "log.csv"
    path.write_text(CSV_HEADER + "a,1997-01-03,10\n")
    code = main(["fit", str(path), "--out", str(tmp_path / "r"), option, value])
    assert code == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_fit_calibration_after_observation_end_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "log.csv"
    path.write_text(CSV_HEADER + "a,1997-01-03,10\n")
    code = main(["fit", str(path), "--out", str(tmp_path / "r"), "--calibration-end", "1998-01-01",
                 "--observation-end", "1997-06-30"])
    assert code == EXIT_USAGE and "must come before" in capsys.readouterr().err


def test_fit_refuses_a_non_empty_output_folder(tmp_path, capsys):
    path = tmp_path / "log.csv"
    path.write_text(CSV_HEADER + "a,1997-01-03,10\n")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "old.txt").write_text("x")
    code = main(["fit", str(path), "--out", str(tmp_path / "r")])
    assert code == EXIT_OUTPUT and "--overwrite" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["old.txt"]


def test_failure_while_writing_leaves_no_partial_report(tmp_path, monkeypatch, demo_report):
    """A crash in the middle of writing (here: rendering the page) removes the temporary
    folder and leaves an existing report untouched."""
    import shutil

    import clvbayes.report.html as report_html
    from clvbayes.report import write_report

    existing = tmp_path / "report"
    shutil.copytree(demo_report[0], existing)
    before = sorted(p.name for p in existing.iterdir())

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_html, "render_html", boom)

    class Stub:  # only what write_report touches before the page
        customers = pd.DataFrame({"clv": [1.0]})
        bgnbd = clvbayes.BetaGeoModel.load(existing / "idata.nc")
        gamma_gamma = clvbayes.GammaGammaModel.load(existing / "idata_gamma_gamma.nc")

        @staticmethod
        def summary():
            return {"x": 1}

    monkeypatch.setattr("clvbayes.report.figures.report_figures", lambda a: [])
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(Stub(), existing, overwrite=True)
    assert sorted(p.name for p in existing.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


# -- help ----------------------------------------------------------------------------------
def test_no_command_prints_help(capsys):
    assert main([]) == EXIT_USAGE
    assert "demo" in capsys.readouterr().out


def test_every_option_is_explained_in_help(capsys):
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help and len(action.help) > 10, (name, action.dest)
        assert main([name, "--help"]) == 0
        text = capsys.readouterr().out
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in text, (name, flag)
    assert main(["--version"]) == 0
    assert clvbayes.__version__ in capsys.readouterr().out
