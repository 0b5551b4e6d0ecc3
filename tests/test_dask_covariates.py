"""Dask scoring with covariate models (CovariatePurchaseModel, HierarchicalPurchaseModel,
CovariateSpendModel) equals the in-memory value functions on the same draws.

The reference is clvbayes.customer_metrics / customer_equity on the models themselves (their
cell_draws over the fitted customers, aligned by id); the Dask side encodes each partition's
customers from their attribute columns (CellEncoder) with no access to the fit's customers.
Posteriors are seeded log-normal draws around fixed parameters (the value code reads only
idata_.posterior), as in tests/test_value_covariates.py.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")

import clvbayes  # noqa: E402
from clvbayes import CovariatePurchaseModel, CovariateSpendModel, HierarchicalPurchaseModel  # noqa: E402
from clvbayes.data.validate import DataValidationError  # noqa: E402
from clvbayes.distributed.scoring import score_customers  # noqa: E402

QUANTITIES = ("clv", "p_alive", "expected_purchases")
SETTINGS = dict(horizon=52.0, discount_rate=0.1, margin=0.3)
BASE = dict(r=0.6, alpha=8.0, a=0.8, b=2.5)
GG = dict(p=6.0, q=4.0, gamma=15.0)
COUNTRIES = ("de", "fr", "it", "nl")
REL = 1e-12


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    """Customers with a channel (web buys twice as often), a tier, a country and an age."""
    parts = []
    for k, (channel, mult) in enumerate((("web", 0.5), ("store", 1.0))):
        df = clvbayes.simulate_customers(r=0.6, alpha=8.0 * mult, a=0.8, b=2.5, T=40.0, n_customers=200,
                                         seed=11 + k, **GG)
        parts.append(df.assign(channel=channel))
    out = pd.concat(parts, ignore_index=True)
    rng = np.random.default_rng(3)
    out["tier"] = np.where(np.arange(len(out)) % 3 == 0, "gold", "basic")
    out["country"] = np.asarray(COUNTRIES)[rng.integers(0, 4, len(out))]
    out["age"] = np.round(rng.uniform(18, 80, len(out)), 3)
    out.index = pd.Index([f"c{i:03d}" for i in range(len(out))], name="customer_id")
    out.attrs["time_unit"] = "W"
    return out[["frequency", "recency", "T", "monetary_value", "channel", "tier", "country", "age"]]


def _lognormal(rng, value, shape):
    return value * np.exp(rng.normal(0, 0.05, shape))


def _purchase(df, seed=0, **kw) -> CovariatePurchaseModel:
    m = CovariatePurchaseModel(df, customer_id="customer_id", **kw)
    rng = np.random.default_rng(seed)
    post = {k: _lognormal(rng, v, (2, 50)) for k, v in BASE.items()}
    for name, (_, d) in m.coefficient_names.items():
        post[name] = rng.normal(0.3, 0.05, (2, 50, d.n_terms))
    m.idata_ = az.from_dict(posterior=post)
    return m


def _spend(df, seed=1, **kw) -> CovariateSpendModel:
    m = CovariateSpendModel(df, customer_id="customer_id", **kw)
    rng = np.random.default_rng(seed)
    post = {k: _lognormal(rng, v, (2, 50)) for k, v in GG.items()}
    for name, (_, d) in m.coefficient_names.items():
        post[name] = rng.normal(-0.2, 0.05, (2, 50, d.n_terms))
    m.idata_ = az.from_dict(posterior=post)
    return m


def _hierarchical(df, seed=2) -> HierarchicalPurchaseModel:
    m = HierarchicalPurchaseModel(df, segment="country", purchase_covariates=["channel"], customer_id="customer_id")
    rng = np.random.default_rng(seed)
    # segments differ (spread 0.3 on the log scale), each with its own posterior uncertainty
    post = {f"{k}_segment": _lognormal(rng, v * np.exp(rng.normal(0, 0.3, m.n_segments)), (2, 50, m.n_segments))
            for k, v in BASE.items()}
    post["gamma_purchase"] = rng.normal(0.7, 0.05, (2, 50, 1))
    m.idata_ = az.from_dict(posterior=post, dims={f"{k}_segment": ["segment"] for k in BASE},
                            coords={"segment": list(m.segments)})
    return m


def _close(a, b, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=REL, atol=0,
                               err_msg=what)


def _check_equal(res, mem: dict, customers: pd.DataFrame) -> None:
    customers = customers.loc[mem["clv"].summary.index]
    for q, cv in mem.items():
        for col in cv.summary.columns:
            _close(customers[f"{q}_{col}"], cv.summary[col], f"{q} {col}")
        assert list(res.totals[q]["segment"].to_numpy()) == list(cv.totals["segment"].to_numpy())
        _close(res.totals[q].to_numpy(), cv.totals.to_numpy(), f"{q} totals")
    eq_mem = clvbayes.customer_equity(mem["clv"]).summary
    eq = res.equity()
    assert list(eq.index) == list(eq_mem.index) and list(eq.columns) == list(eq_mem.columns)
    assert (eq["customers"] == eq_mem["customers"]).all()
    for col in eq.columns:
        _close(eq[col], eq_mem[col], f"equity {col}")


def _score_and_compare(bg, gg, df, segment, npartitions=4, **kw):
    res = score_customers(bg, gg, dd.from_pandas(df, npartitions=npartitions), quantities=QUANTITIES,
                          segment=segment, **SETTINGS, **kw)
    mem = clvbayes.customer_metrics(bg, gg, df, quantities=QUANTITIES, segment=segment, quantiles=(), **SETTINGS)
    _check_equal(res, mem, res.customers.compute())
    return res, mem


def test_categorical_covariates_equal_in_memory(base):
    bg = _purchase(base, purchase_covariates=["channel", "tier"], dropout_covariates=["tier"])
    gg = _spend(base, covariates=["channel"])
    res, mem = _score_and_compare(bg, gg, base, "channel")
    assert res.settings["cell_path"] == "tables" and res.settings["n_draws"] == 100
    # the covariates matter: web customers' mean CLV differs from the store's
    eq = res.equity()
    assert abs(eq.loc["web", "per_customer"] / eq.loc["store", "per_customer"] - 1) > 0.1
    # a plain Gamma-Gamma model beside the covariate purchase model, thinned draws
    plain_gg = clvbayes.GammaGammaModel.from_params(GG)
    _score_and_compare(bg, plain_gg, base, None, npartitions=3)


def test_thinned_draws_equal_in_memory(base):
    bg = _purchase(base, purchase_covariates=["channel"])
    gg = _spend(base, covariates=["tier"])
    res = score_customers(bg, gg, dd.from_pandas(base, npartitions=2), quantities=("clv",), n_draws=30,
                          segment="tier", **SETTINGS)
    mem = clvbayes.customer_metrics(bg, gg, base, quantities=("clv",), segment="tier", n_draws=30, **SETTINGS)
    assert res.settings["n_draws"] == 30 and res.totals["clv"].sizes["draw"] == 15
    _close(res.totals["clv"].to_numpy(), mem["clv"].totals.to_numpy(), "thinned totals")


def test_hierarchical_model_equity_by_segment(base):
    bg = _hierarchical(base)
    gg = _spend(base, covariates=["channel"])
    res, mem = _score_and_compare(bg, gg, base, "country")
    eq = res.equity()
    assert list(eq.index) == [*COUNTRIES, "total"]
    # each segment's equity carries its own posterior: its interval is not a fixed share of the total's
    width = (eq["hdi_97%"] - eq["hdi_3%"]) / eq["mean"]
    assert width.drop("total").std() > 0.01 * width.mean()


@pytest.mark.parametrize("sides", ["purchase", "both"])
def test_continuous_covariate_many_cells(base, sides):
    """A numeric covariate: one cell per distinct age, the rows path in memory and on every partition."""
    kw = {"purchase_covariates": ["age"], **({"dropout_covariates": ["age", "tier"]} if sides == "both" else {})}
    bg = _purchase(base, **kw)
    gg = _spend(base, covariates=["age"])
    assert bg.n_cells > 256
    res, _ = _score_and_compare(bg, gg, base, "tier", npartitions=5)
    assert res.settings["cell_path"] == "rows"


@pytest.mark.slow  # a two-process cluster: ~100 s to start and import on a busy machine
def test_distributed_workers_encode_their_partitions(base):
    distributed = pytest.importorskip("distributed")
    bg = _hierarchical(base)
    gg = _spend(base, covariates=["channel"])
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with cluster, distributed.Client(cluster, set_as_default=False) as client, client.as_current():
        res = score_customers(bg, gg, dd.from_pandas(base, npartitions=4), quantities=QUANTITIES,
                              segment="country", period=13.0, contact_cost=1.0, new_window=4.0, **SETTINGS)
        assert res.settings["scheduler"] == "distributed"
        customers = res.customers.compute()
    mem = clvbayes.customer_metrics(bg, gg, base, quantities=QUANTITIES, segment="country", quantiles=(), **SETTINGS)
    _check_equal(res, mem, customers)
    report = clvbayes.churn_analysis(bg, gg, dd.from_pandas(base, npartitions=4).compute(), period=13.0,
                                     contact_cost=1.0, segment="country", **SETTINGS)
    pd.testing.assert_frame_equal(res.churn_summary(), report.summary, rtol=1e-10)


def test_new_customers_scored_from_their_attributes(base):
    """Customers the model was not fitted on: valued at the cells of their attributes, as in
    memory with the encoder's cell draws of the same table."""
    bg = _purchase(base.iloc[:300], purchase_covariates=["channel"], dropout_covariates=["tier"])
    gg = _spend(base.iloc[:300], covariates=["channel"])
    new = base.iloc[300:]
    res = score_customers(bg, gg, dd.from_pandas(new, npartitions=3), quantities=QUANTITIES, segment="channel",
                          **SETTINGS)
    mem = clvbayes.customer_metrics(bg.cell_encoder().cell_draws(new), gg.cell_encoder().cell_draws(new), new,
                                    quantities=QUANTITIES, segment="channel", quantiles=(), **SETTINGS)
    _check_equal(res, mem, res.customers.compute())
    with pytest.raises(ValueError, match="not customers of the CovariatePurchaseModel"):
        clvbayes.customer_metrics(bg, gg, new, quantities=("clv",), **SETTINGS)  # in memory: own customers only


def test_unseen_levels_missing_values_and_columns_are_refused(base):
    bg = _hierarchical(base)
    gg = _spend(base, covariates=["channel"])

    def score(frame):
        return score_customers(bg, gg, dd.from_pandas(frame, npartitions=2), quantities=("clv",), **SETTINGS)

    other = base.copy()
    other["channel"] = other["channel"].astype(object)
    other.loc["c390", "channel"] = "phone"
    with pytest.raises(DataValidationError, match=r"'channel'.*phone.*c390"):
        score(other)
    other = base.copy()
    other.loc[["c005", "c007"], "country"] = "es"  # one partition: its customers named (partitions fail alone)
    with pytest.raises(DataValidationError, match=r"'country'.*'es'.*'c005', 'c007'.*Known segments"):
        score(other)
    other = base.copy()
    other["channel"] = other["channel"].astype(object)
    other.loc["c210", "channel"] = None
    with pytest.raises(DataValidationError, match=r"'channel' is missing for 1 customers.*c210"):
        score(other)
    with pytest.raises(ValueError, match=r"no column\(s\) \['country'\]"):
        score(base.drop(columns="country"))
    with pytest.raises(TypeError, match="not CellDraws"):
        score_customers(bg.cell_draws(), gg, dd.from_pandas(base, npartitions=2), quantities=("clv",), **SETTINGS)
    with pytest.raises(ValueError, match="cell_path"):
        score_customers(bg, gg, dd.from_pandas(base, npartitions=2), cell_path="cells", **SETTINGS)
