"""clvbayes fit with customer attributes: --attributes, --covariates, --segment, end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clvbayes.cli import EXIT_DATA, EXIT_USAGE, main
from tests.conftest import FAST_CLI


@pytest.fixture(scope="module")
def files(tmp_path_factory, cdnow_transactions):
    """400 CDNOW customers (ids with leading zeros) and an attributes file: a channel and a
    region for each, one numeric score."""
    root = tmp_path_factory.mktemp("cov")
    ids = np.sort(cdnow_transactions["customer_id"].unique())[:400]
    log = cdnow_transactions.loc[cdnow_transactions["customer_id"].isin(ids)]
    log = pd.DataFrame({"customer_id": log["customer_id"].map(lambda i: f"{i:05d}"),
                        "date": log["date"].dt.strftime("%Y-%m-%d"), "amount": log["amount"]})
    log.to_csv(root / "log.csv", index=False)
    rng = np.random.default_rng(1)
    attrs = pd.DataFrame({"customer_id": [f"{i:05d}" for i in ids],
                          "channel": rng.choice(["web", "store"], len(ids)),
                          "region": rng.choice(["north", "south", "east"], len(ids))})
    attrs.to_csv(root / "attributes.csv", index=False)
    return root


def test_fit_with_covariates_and_a_segment(files, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["fit", str(files / "log.csv"), "--attributes", str(files / "attributes.csv"), "--covariates",
                 "channel", "--segment", "region", "--calibration-end", "1997-09-30", "--observation-end", "1998-06-30",
                 "--out", str(out), *FAST_CLI])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["covariates"] == ["channel"] and summary["settings"]["segment"] == "region"
    assert summary["equity"]["segment_kind"] == "region"
    assert set(summary["equity"]["by_segment"]) == {"east", "north", "south"}
    table = pd.read_csv(out / "customers.csv", index_col="customer_id", dtype={"customer_id": str})
    assert len(table) == 400 and (table.index.str.len() == 5).all()  # ids kept as text
    assert set(table["channel"]) == {"web", "store"} and set(table["segment"]) == {"east", "north", "south"}
    plots = {p.stem for p in (out / "plots").glob("*.png")}
    assert {"coefficients_purchase", "coefficients_spend", "calibration_holdout", "tracking_cumulative"} <= plots
    # the population-level plots too: each customer at its own cell, the matrices for the reference profile
    assert {"period_transactions", "frequency_recency_matrix", "probability_alive_matrix",
            "probability_alive_history"} <= plots
    page = (out / "report.html").read_text()
    assert 'id="covariates"' in page and "channel[web]" in page
    from clvbayes import CovariatePurchaseModel

    back = CovariatePurchaseModel.load(out / "idata.nc")
    assert back.coefficient_names and back.data.index[0] == table.index[0]


def test_attribute_problems_are_clear(files, tmp_path, capsys):
    log, attrs = str(files / "log.csv"), files / "attributes.csv"
    assert main(["fit", log, "--covariates", "channel", "--out", str(tmp_path / "a"), *FAST_CLI]) == EXIT_USAGE
    assert "--attributes FILE" in capsys.readouterr().err
    short = tmp_path / "short.csv"
    pd.read_csv(attrs, dtype=str).iloc[:-3].to_csv(short, index=False)
    assert main(["fit", log, "--attributes", str(short), "--covariates", "channel", "--out", str(tmp_path / "b"),
                 *FAST_CLI]) == EXIT_DATA
    err = capsys.readouterr().err
    assert "3 of 400 customers of the summary have no attributes" in err and "00400" in err
    assert main(["fit", log, "--attributes", str(attrs), "--covariates", "tier", "--out", str(tmp_path / "c"),
                 *FAST_CLI]) == EXIT_DATA
    assert "no column 'tier'" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in "bc")


@pytest.mark.slow  # two NUTS fits of the hierarchical model (and its nutpie compilation): minutes
def test_fit_pooling_the_segments(files, tmp_path, capsys):
    """--pool-segments: the hierarchical model by region, recorded in the settings, its segments'
    table in summary.json and the report, shrinkage between the unpooled and population rates."""
    out = tmp_path / "pooled"
    code = main(["fit", str(files / "log.csv"), "--attributes", str(files / "attributes.csv"), "--covariates",
                 "channel", "--segment", "region", "--pool-segments", "--out", str(out), *FAST_CLI])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["pool_segments"] is True and summary["settings"]["segment"] == "region"
    pooling = summary["pooling"]
    assert pooling["segment"] == "region" and set(pooling["by_segment"]) == {"east", "north", "south"}
    for row in pooling["by_segment"].values():
        assert row["pooled_hdi_low"] < row["pooled"] < row["pooled_hdi_high"]
        assert row["n_customers"] > 100 and row["unpooled"] > 0 and row["population"] > 0
        # pooling pulls toward the population: the pooled rate is not beyond the unpooled one
        assert row["shrinkage"] > -0.5
    assert sum(r["n_customers"] for r in pooling["by_segment"].values()) == 400
    # the parameter table holds the hyperparameters and every segment's parameters
    params = summary["parameters"]["bgnbd"]
    assert {"mu_r", "sigma_alpha", "alpha_segment[east]", "gamma_purchase[channel[web]]"} <= set(params)
    assert set(summary["equity"]["by_segment"]) == {"east", "north", "south"}
    page = (out / "report.html").read_text()
    assert 'id="pooling"' in page and "shrinkage" in page and "unpooled" in page
    from clvbayes import HierarchicalPurchaseModel

    back = HierarchicalPurchaseModel.load(out / "idata.nc")
    assert list(back.segments) == ["east", "north", "south"]


def test_pool_segments_refusals(files, tmp_path, capsys):
    log, attrs = str(files / "log.csv"), str(files / "attributes.csv")
    assert main(["fit", log, "--attributes", attrs, "--pool-segments", "--out", str(tmp_path / "a"),
                 *FAST_CLI]) == EXIT_USAGE
    assert "--segment COL" in capsys.readouterr().err
    assert main(["fit", log, "--attributes", attrs, "--segment", "region", "--covariates", "region",
                 "--pool-segments", "--out", str(tmp_path / "b"), *FAST_CLI]) == EXIT_USAGE
    assert "also a covariate" in capsys.readouterr().err
    assert main(["fit", log, "--attributes", attrs, "--segment", "region", "--pool-segments", "--model", "auto",
                 "--out", str(tmp_path / "c"), *FAST_CLI]) == EXIT_USAGE
    assert "choose it" in capsys.readouterr().err
    scored = tmp_path / "scored.csv"
    frame = pd.read_csv(attrs, dtype={"customer_id": str})
    frame["score"] = np.linspace(0, 1, len(frame))
    frame.to_csv(scored, index=False)
    assert main(["fit", log, "--attributes", str(scored), "--segment", "region", "--covariates", "score",
                 "--pool-segments", "--out", str(tmp_path / "d"), *FAST_CLI]) == EXIT_DATA
    err = capsys.readouterr().err
    assert "categorical covariates only" in err and "['score'] is numeric" in err
    assert not any((tmp_path / d).exists() for d in "abcd")


def test_hierarchical_model_refuses_map():
    """The API's refusal that --pool-segments relies on (the CLI fits by NUTS only)."""
    from clvbayes import HierarchicalPurchaseModel

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"frequency": rng.integers(0, 4, 20), "T": 30.0, "region": ["a", "b"] * 10},
                      index=pd.Index([f"c{i}" for i in range(20)], name="customer_id"))
    df["recency"] = np.where(df["frequency"] > 0, 20.0, 0.0)
    with pytest.raises(ValueError, match="NUTS only"):
        HierarchicalPurchaseModel(df, segment="region").fit(method="map")
