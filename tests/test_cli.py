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

    def fake_run(transactions, settings, args, source, command, attributes=None):
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
    """A problem the summary finds (not the reader) stops before anything is written."""
    path = tmp_path / "log.csv"
    path.write_text(CSV_HEADER + "a,1997-01-03,10\na,1997-03-03,10\nb,1997-02-05,7\n")
    code = main(["fit", str(path), "--customer-col", "Customer", "--date-col", "Day", "--amount-col", "Revenue",
                 "--calibration-end", "1996-12-31", "--out", str(tmp_path / "report"), *FAST_CLI])
    assert code == EXIT_DATA
    assert "calibration_end" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


def test_fit_observation_end_before_the_last_purchase_leaves_later_rows_out(tmp_path, capsys):
    """"As of that date": the rows after --observation-end are left out and counted in the
    report; ids are kept as written ('007' and '7' are two customers) and customers.csv joins
    back to the source file."""
    rng = np.random.default_rng(5)
    rows = []
    for k in range(60):
        cid = f"{k:03d}" if k % 2 else str(k)  # '001', '2', '003', ... and '7' next to '007'
        first = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 60)))
        for j in range(1 + int(rng.poisson(2))):
            rows.append((cid, first + pd.Timedelta(days=int(7 * j + rng.integers(0, 5))), float(rng.gamma(4, 5))))
    rows += [("7", pd.Timestamp("2024-01-03"), 9.0), ("007", pd.Timestamp("2024-01-04"), 8.0)]
    log = pd.DataFrame(rows, columns=["Customer", "Day", "Revenue"])
    path = tmp_path / "log.csv"
    log.assign(Day=log["Day"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    end = "2024-03-15"
    late = int((log["Day"] > end).sum())
    assert late > 0
    out = tmp_path / "report"
    code = main(["fit", str(path), "--customer-col", "Customer", "--date-col", "Day", "--amount-col", "Revenue",
                 "--observation-end", end, "--time-unit", "D", "--out", str(out), "--draws", "100", "--tune", "100",
                 "--chains", "2", "--value-draws", "50", "--seed", "3", "--quiet"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["rows_after_observation_end"] == late
    assert summary["data"]["transactions"] == len(log) - late and summary["data"]["last_date"] <= end
    assert f"{late:,} purchases after the observation end" in (out / "report.html").read_text()
    table = pd.read_csv(out / "customers.csv", dtype={"customer_id": str})
    source = pd.read_csv(path, dtype={"Customer": str})
    assert {"7", "007"} <= set(table["customer_id"])
    kept = source.loc[source["Day"] <= end, "Customer"]
    assert set(table["customer_id"]) == set(kept)


@pytest.mark.parametrize("option", ["--observation-end", "--calibration-end"])
def test_fit_unparseable_end_date_is_a_usage_error(tmp_path, capsys, option):
    path = tmp_path / "log.csv"
    path.write_text(CSV_HEADER + "a,1997-01-03,10\n")
    code = main(["fit", str(path), "--out", str(tmp_path / "r"), option, "1997-13-45"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and option in err and "1997-13-45" in err
    assert not (tmp_path / "r").exists()


def test_fit_passes_date_unit_and_refunds_through(tmp_path, monkeypatch, capsys):
    import clvbayes.cli as cli

    path = tmp_path / "log.csv"
    path.write_text("customer_id,date,amount\na,1704067200,10\na,1704672000,-4\nb,1704153600,3\n")
    seen = {}
    monkeypatch.setattr(cli, "_run", lambda transactions, settings, *a: seen.update(tx=transactions, s=settings) or 0)
    assert main(["fit", str(path), "--out", str(tmp_path / "r")]) == EXIT_DATA  # numbers, not dates
    assert main(["fit", str(path), "--date-unit", "s", "--out", str(tmp_path / "r")]) == EXIT_DATA  # refund
    assert main(["fit", str(path), "--date-unit", "s", "--refunds", "net", "--out", str(tmp_path / "r")]) == 0
    assert seen["tx"]["date"].iloc[0] == pd.Timestamp("2024-01-01") and seen["s"].refunds == "net"
    path.write_text("customer_id,date,amount\na,03/04/2024,10\nb,05/06/2024,3\n")
    assert main(["fit", str(path), "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "clvbayes fit: warning: Every date reads both" in err and "month first" in err
    data = clvbayes.rfm_summary(seen["tx"], refunds=seen["s"].refunds)
    assert data.loc["a", "frequency"] == 0  # the refund is netted against the purchase, not a new occasion


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
        purchase_model = clvbayes.BetaGeoModel.load(existing / "idata.nc")
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


# -- logs without amounts --------------------------------------------------------------------
NO_AMOUNT_TEXT = "the log has no amount column: spend, CLV, customer equity and value concentration need amounts"


def test_workflow_without_amounts_fits_bgnbd_only(small_log, monkeypatch):
    """The analysis of a log without amounts (maximum likelihood instead of NUTS, for speed):
    purchases, P(alive), churn, stages and the holdout check, no money figures."""
    import clvbayes.workflow as workflow
    from clvbayes.report.html import render_html

    fitted = []
    monkeypatch.setattr(workflow, "_fit", lambda model, s, progressbar: fitted.append(type(model).__name__)
                        or model.fit_mle())
    monkeypatch.setattr(workflow, "_diagnostics", lambda model, hdi_prob: {
        "parameters": pd.DataFrame({"mean": model.params_}), "problems": [], "converged": True,
        "divergences": 0, "max_r_hat": 1.0, "min_ess_bulk": 1000.0})
    tx = pd.DataFrame({"customer_id": small_log["Customer"],
                       "date": pd.to_datetime(small_log["Day"], format="%Y%m%d")})
    settings = workflow.AnalysisSettings(calibration_end="1997-09-30", observation_end="1998-06-30")
    a = workflow.run_analysis(tx, settings)
    assert fitted == ["BetaGeoModel", "BetaGeoModel"]
    assert not a.has_amounts and a.gamma_gamma is None and a.equity is None and a.concentration is None
    assert {"p_alive", "expected_purchases", "stage", "segment"} <= set(a.customers.columns)
    assert not {"clv", "monetary_value"} & set(a.customers.columns)
    assert a.validation is not None and a.validation.total_spend is None
    summary = a.summary()
    assert "equity" not in summary and "concentration" not in summary
    assert summary["not_computed"]["reason"].startswith(NO_AMOUNT_TEXT)
    assert summary["data"]["amounts"] is False and summary["data"]["total_spend"] is None
    assert 0 < summary["churn"]["total"]["churn_rate_mean"] < 1 and "value_at_risk_mean" not in summary["churn"]["total"]
    assert sum(v["customers"] for v in summary["stages"].values()) == len(a.data)
    assert summary["holdout"]["total_purchases"]["actual"] > 0
    json.dumps(summary, allow_nan=False)
    page = render_html(a, [])
    assert NO_AMOUNT_TEXT in page and "Customer equity (" not in page


def test_missing_amount_column_suggests_amount_col_none(tmp_path, capsys):
    path = tmp_path / "log.csv"
    path.write_text("customer_id,date\na,1997-01-03\n")
    assert main(["fit", str(path), "--out", str(tmp_path / "r")]) == EXIT_DATA
    assert "--amount-col none" in capsys.readouterr().err


def test_money_options_without_amounts_are_a_usage_error(tmp_path, capsys):
    path = tmp_path / "log.csv"
    path.write_text("customer_id,date\na,1997-01-03\n")
    code = main(["fit", str(path), "--amount-col", "none", "--margin", "0.3", "--out", str(tmp_path / "r")])
    assert code == EXIT_USAGE and "--amount-col none" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_fit_without_amounts_end_to_end(tmp_path, small_log, capsys):
    path = tmp_path / "log.csv"
    small_log.iloc[:, :2].rename(columns={"Customer": "customer_id", "Day": "date"}).to_csv(path, index=False)
    out = tmp_path / "report"
    code = main(["fit", str(path), "--amount-col", "None", "--date-format", "%Y%m%d", "--calibration-end",
                 "1997-09-30", "--draws", "100", "--tune", "100", "--chains", "2", "--value-draws", "50",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "not computed: the log has no amount column" in captured.out and "customer equity over" not in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert "equity" not in summary and summary["not_computed"]["reason"].startswith(NO_AMOUNT_TEXT)
    assert set(summary["parameters"]) == {"bgnbd", "bgnbd_calibration"}
    table = pd.read_csv(out / "customers.csv", index_col="customer_id")
    assert len(table) == 400 and table["p_alive"].between(0, 1).all() and (table["expected_purchases"] >= 0).all()
    assert "clv" not in table
    assert not (out / "idata_gamma_gamma.nc").exists()
    plots = {p.stem for p in (out / "plots").glob("*.png")}
    assert plots == PLOTS - {"trace_gamma_gamma", "equity_posterior", "equity_by_segment", "equity_by_stage", "pareto"}
    assert NO_AMOUNT_TEXT in (out / "report.html").read_text()


def test_help_states_each_default_once(capsys):
    # The help strings name their defaults; a formatter that appends "(default: ...)" again
    # (ArgumentDefaultsHelpFormatter, once on the demo parser) printed every one twice.
    for name in ("demo", "fit"):
        assert main([name, "--help"]) == 0
        text = capsys.readouterr().out
        # One entry per option: its first line starts with "  -" (or a positional at two
        # spaces), continuation lines are indented further.
        entries = re.split(r"\n(?=  \S)", text.split("options:", 1)[1])
        twice = [" ".join(e.split()) for e in entries if e.lower().count("default") > 1]
        assert not twice, (name, twice)
        assert "--out DIR" in text
    assert main(["demo", "--help"]) == 0
    assert "(default clvbayes-demo)" in " ".join(capsys.readouterr().out.split())
