"""Scoring on Dask (clvbayes.distributed.scoring) equals scoring in memory.

The reference is the in-memory engine on the whole pandas summary with the same models
(hence the same paired draws): clvbayes.customer_metrics, CustomerValue.total_summary,
clvbayes.customer_equity and clvbayes.lifecycle_stages(churn_analysis(...)). Per-customer
summaries may differ in the last bits only (the factor tables are built over a partition's
unique (x, T) keys), totals only by the order of the additions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import clvbayes  # noqa: E402
from clvbayes.distributed.scoring import DaskScores, score_customers  # noqa: E402

QUANTITIES = ("clv", "p_alive", "expected_purchases")
SETTINGS = dict(horizon=52.0, discount_rate=0.1, margin=0.3)
STAGE = dict(period=13.0, contact_cost=1.0, new_window=4.0)


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    return clvbayes.rfm_summary(clvbayes.datasets.load_cdnow_sample(), observation_end="1998-06-30")


@pytest.fixture(scope="module")
def dask_summary(summary):
    return dd.from_pandas(summary, npartitions=4)


@pytest.fixture(scope="module")
def mle_models(summary):
    return clvbayes.BetaGeoModel(summary).fit_mle(), clvbayes.GammaGammaModel(summary).fit_mle()


@pytest.fixture(scope="module")
def posterior_models(summary):
    """Cheap stand-in for a posterior (the default run): the MLE models with 2 x 100 seeded
    log-normal draws around the estimates as ``idata_``; the value code reads only
    ``idata_.posterior`` (clvbayes.value.draws.parameter_draws). The real NUTS fit is in the slow tests."""
    import arviz as az

    rng = np.random.default_rng(6)
    models = (clvbayes.BetaGeoModel(summary).fit_mle(), clvbayes.GammaGammaModel(summary).fit_mle())
    for m in models:
        point = m._params_array()
        post = {p: v * np.exp(0.05 * rng.standard_normal((2, 100))) for p, v in zip(m.param_names, point, strict=True)}
        m.idata_ = az.from_dict(posterior=post)
    assert models[1].idata_.posterior["q"].min() > 1
    return models


@pytest.fixture(scope="module")
def nuts_models(summary):
    kw = dict(chains=2, draws=100, tune=100, random_seed=1, progressbar=False)
    return clvbayes.BetaGeoModel(summary).fit(**kw), clvbayes.GammaGammaModel(summary).fit(**kw)


@pytest.fixture(scope="module")
def client():
    """Two worker processes; not the default client, so that the other tests run on the local scheduler."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


def _in_memory(models, summary, segment):
    return clvbayes.customer_metrics(
        *models, summary, quantities=QUANTITIES, segment=segment, quantiles=(), **SETTINGS
    )


def _check_equal(res: DaskScores, mem: dict, customers: pd.DataFrame) -> None:
    customers = customers.loc[mem["clv"].summary.index]
    for q, cv in mem.items():
        for col in cv.summary.columns:
            np.testing.assert_allclose(
                customers[f"{q}_{col}"].to_numpy(), cv.summary[col].to_numpy(), rtol=1e-10, atol=0,
                err_msg=f"{q} {col}",
            )
        # per-draw totals per segment: same segments, same grid, sums up to their order
        assert list(res.totals[q]["segment"].to_numpy()) == list(cv.totals["segment"].to_numpy())
        np.testing.assert_array_equal(res.totals[q]["draw"], cv.totals["draw"])
        np.testing.assert_allclose(res.totals[q].to_numpy(), cv.totals.to_numpy(), rtol=1e-9, atol=0)
        pd.testing.assert_series_equal(res.total_summary(q), cv.total_summary(), rtol=1e-9)
    pd.testing.assert_frame_equal(res.equity(), clvbayes.customer_equity(mem["clv"]).summary, rtol=1e-9)


@pytest.mark.parametrize("fit", ["mle", "posterior", pytest.param("nuts", marks=pytest.mark.slow)])
def test_distributed_equals_in_memory(fit, client, summary, dask_summary, request):
    models = request.getfixturevalue(f"{fit}_models")
    with client.as_current():
        res = score_customers(*models, dask_summary, quantities=QUANTITIES, segment="cohort", **SETTINGS)
        assert res.settings["scheduler"] == "distributed"
        customers = res.customers.compute()
    mem = _in_memory(models, summary, "cohort")
    assert res.settings["n_draws"] == (1 if fit == "mle" else 200)
    assert len(customers) == len(summary) and not customers.index.has_duplicates
    assert list(res.counts) == list(np.bincount(mem["clv"].customers.segments))
    _check_equal(res, mem, customers)


def test_repeated_calls_on_one_client(client, posterior_models, dask_summary, tmp_path):
    """Scoring twice with the same draws on one client: each call scatters its own copy (a
    content-hashed key shared with the first call's released futures lost its data)."""
    with client.as_current():
        results = [
            score_customers(*posterior_models, dask_summary, output=str(tmp_path / f"s{i}"), **STAGE, **SETTINGS)
            for i in range(3)
        ]
    for res in results[1:]:
        pd.testing.assert_frame_equal(res.equity(), results[0].equity())
        pd.testing.assert_frame_equal(res.churn_summary(), results[0].churn_summary())


@pytest.mark.parametrize("fit", ["posterior", pytest.param("nuts", marks=pytest.mark.slow)])
def test_local_scheduler_equals_in_memory(fit, summary, dask_summary, request):
    nuts_models = request.getfixturevalue(f"{fit}_models")
    res = score_customers(*nuts_models, dask_summary, quantities=QUANTITIES, n_draws=50, **SETTINGS)
    assert res.settings["scheduler"] == "local"
    mem = clvbayes.customer_metrics(
        *nuts_models, summary, quantities=QUANTITIES, segment=None, quantiles=(), n_draws=50, **SETTINGS
    )
    assert res.totals["clv"].sizes["draw"] == 25 and list(res.counts.index) == ["all"]
    _check_equal(res, mem, res.customers.compute())


def test_stages_and_parquet_round_trip(client, mle_models, summary, dask_summary, tmp_path):
    out = tmp_path / "scores"
    with client.as_current():
        res = score_customers(*mle_models, dask_summary, quantities=QUANTITIES, output=str(out),
                              quantiles=(0.5,), **STAGE, **SETTINGS)
        written = res.customers.compute()
    assert res.output == str(out) and any(out.glob("*.parquet"))
    mem = clvbayes.customer_metrics(*mle_models, summary, quantities=QUANTITIES, segment=None,
                                    quantiles=(0.5,), **SETTINGS)
    _check_equal(res, mem, written)
    assert "clv_q50%" in written.columns and "clv_hdi_97%" in written.columns
    report = clvbayes.churn_analysis(*mle_models, summary, period=STAGE["period"], contact_cost=STAGE["contact_cost"],
                                     segment=None, **SETTINGS)
    stages = clvbayes.lifecycle_stages(report, new_window=STAGE["new_window"])
    got = written["stage"].astype(str).reindex(stages.index)
    pd.testing.assert_series_equal(got, stages.astype(str), check_names=False)
    assert stages.nunique() >= 3  # the comparison covers several stages
    # the same scores computed lazily (no output) equal the written ones
    lazy = score_customers(*mle_models, dask_summary, quantities=QUANTITIES, quantiles=(0.5,), **STAGE, **SETTINGS)
    again = lazy.customers.compute()
    pd.testing.assert_frame_equal(written.drop(columns="stage"), again.drop(columns="stage"), check_freq=False)
    assert (written["stage"].astype(str) == again["stage"].astype(str)).all()


@pytest.mark.parametrize("segment", [None, "cohort"])
def test_churn_and_stage_summaries_equal_in_memory(segment, posterior_models, summary, dask_summary):
    res = score_customers(*posterior_models, dask_summary, quantities=("clv",), segment=segment, **STAGE, **SETTINGS)
    # the in-memory reference in the partitions' order: at-risk ties are broken by position
    in_order = dask_summary.compute()
    report = clvbayes.churn_analysis(*posterior_models, in_order, period=STAGE["period"],
                                     contact_cost=STAGE["contact_cost"], segment=segment, **SETTINGS)
    got = res.churn_summary()
    pd.testing.assert_frame_equal(got, report.summary, rtol=1e-9)
    assert got.loc["total", "lost"] > 0 and got.loc["total", "at_risk"] > 0
    assert len(got) == (2 if segment is None else 4)  # 3 cohorts + total
    assert list(res.churn.data_vars) == list(report.draws.data_vars)
    for v in res.churn.data_vars:
        np.testing.assert_allclose(res.churn[v].to_numpy(), report.draws[v].to_numpy(), rtol=1e-9, err_msg=v)
    expected_ids = report.customers.index[report.customers["at_risk"]]
    assert res.at_risk.sort_values().equals(expected_ids.sort_values())
    stages = clvbayes.lifecycle_stages(report, new_window=STAGE["new_window"])
    pd.testing.assert_frame_equal(res.stage_summary(), clvbayes.stage_summary(report, stages), rtol=1e-9)
    assert (res.stage_summary()["customers"] > 0).sum() >= 3


def test_at_risk_ties_follow_partition_order():
    """Equal values at the top-share boundary go to the earlier position, as pandas' rank(method="first")."""
    from clvbayes.distributed.scoring import _top_share

    v = np.array([1.0, 3.0, 2.0, 3.0, 2.0, 2.0, np.nan])
    ranks = pd.Series(v).rank(ascending=False, method="first")
    for share in (0.1, 0.3, 0.5, 0.7, 1.0):
        k = int(np.ceil(share * v.size))
        np.testing.assert_array_equal(_top_share(v, share), (ranks <= k).to_numpy(), err_msg=str(share))


def test_stages_with_dropout_over_another_horizon(mle_models, summary, dask_summary):
    """Scores asking for dropout over the CLV horizon and stages over the churn period: two passes."""
    res = score_customers(*mle_models, dask_summary, quantities=("clv", "dropout"), **STAGE, **SETTINGS)
    customers = res.customers.compute().loc[summary.index]
    mem = clvbayes.customer_metrics(*mle_models, summary, quantities=("clv", "dropout"), segment=None, **SETTINGS)
    np.testing.assert_allclose(customers["dropout_mean"], mem["dropout"].summary["mean"], rtol=1e-10)
    report = clvbayes.churn_analysis(*mle_models, summary, period=STAGE["period"], contact_cost=STAGE["contact_cost"],
                                     segment=None, **SETTINGS)
    assert not np.allclose(customers["dropout_mean"], report.customers["p_dropout"])  # other horizon
    stages = clvbayes.lifecycle_stages(report, new_window=STAGE["new_window"])
    assert (customers["stage"].astype(str) == stages.astype(str)).all()
    pd.testing.assert_frame_equal(res.stage_summary(), clvbayes.stage_summary(report, stages), rtol=1e-9)


def test_argument_errors(mle_models, summary, dask_summary):
    with pytest.raises(TypeError, match="Dask DataFrame"):
        score_customers(*mle_models, summary, horizon=52.0)
    with pytest.raises(ValueError, match="GammaGammaModel"):
        score_customers(mle_models[0], None, dask_summary, horizon=52.0)
    with pytest.raises(ValueError, match="contact_cost and new_window"):
        score_customers(*mle_models, dask_summary, horizon=52.0, period=13.0)
    with pytest.raises(ValueError, match="Unknown quantities"):
        score_customers(*mle_models, dask_summary, horizon=52.0, quantities=("nope",))
    with pytest.raises(ValueError, match="segment"):
        score_customers(*mle_models, dask_summary, horizon=52.0, segment="no_such_column")
    # p_alive alone needs no spend model
    res = score_customers(mle_models[0], None, dask_summary, horizon=52.0, quantities=("p_alive",))
    assert set(res.totals) == {"p_alive"}
    with pytest.raises(ValueError, match="period=...*contact_cost"):
        res.churn_summary()
    with pytest.raises(ValueError, match="No stages"):
        res.stage_summary()
