"""HierarchicalPurchaseModel: per-segment parameters partially pooled, cells = (segment, design row)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvbayes import HierarchicalPurchaseModel, model_class, simulate_customers

BASE = {"bgnbd": dict(r=0.6, alpha=8.0, a=0.8, b=2.5), "mbgnbd": dict(r=0.6, alpha=8.0, a=0.8, b=2.5),
        "pnbd": dict(r=0.6, alpha=8.0, s=0.7, beta=10.0)}


def _segments(family: str, mult: dict, n: int | dict, seed: int) -> pd.DataFrame:
    parts = []
    for k, (seg, m) in enumerate(mult.items()):
        th = dict(BASE[family], alpha=BASE[family]["alpha"] * m)
        size = n[seg] if isinstance(n, dict) else n
        df = simulate_customers(**th, model=family, T=40.0, n_customers=size, seed=seed + k)
        df["country"] = seg
        df["channel"] = np.where(np.arange(size) % 2 == 0, "web", "store")
        parts.append(df)
    out = pd.concat(parts, ignore_index=True)
    out["customer_id"] = np.arange(len(out))
    return out


def _loglik(pm_model, values: dict) -> float:
    import pytensor

    m = pm_model
    fn = pytensor.function(m.value_vars, m.replace_rvs_by_values([m["loglik"]])[0], on_unused_input="ignore")
    args = []
    for rv in m.free_RVs:
        v = np.asarray(values[rv.name], dtype=float)
        tr = m.rvs_to_transforms.get(rv)
        args.append(v if tr is None else np.asarray(tr.forward(v, *rv.owner.inputs).eval()))
    return float(fn(*args))


@pytest.mark.parametrize("family", ["bgnbd", "pnbd", "mbgnbd"])
@pytest.mark.parametrize("parameterization", ["non_centred", "centred"])
def test_each_segment_likelihood_is_the_plain_model_at_its_parameters(family, parameterization):
    mult = {"de": 1.0, "fr": 0.5, "it": 2.0}
    df = _segments(family, mult, 150, 7)
    m = HierarchicalPurchaseModel(df, family=family, segment="country", parameterization=parameterization)
    assert m.n_cells == 3 and list(m.segments) == ["de", "fr", "it"]
    names = m.param_names
    seg_theta = {s: dict(BASE[family], alpha=BASE[family]["alpha"] * k) for s, k in mult.items()}
    values = {}
    for p in names:
        logs = np.log([seg_theta[s][p] for s in m.segments])
        values[f"mu_{p}"], values[f"sigma_{p}"] = 0.1, 0.3
        if parameterization == "non_centred":
            values[f"eps_{p}"] = (logs - 0.1) / 0.3
        else:
            values[f"log_{p}_segment"] = logs
    ref = sum(_loglik(model_class(family)(df[df["country"] == s])._build_model(), seg_theta[s]) for s in mult)
    assert _loglik(m.model, values) == pytest.approx(ref, rel=1e-12)


def test_auto_centres_exactly_the_segments_at_or_above_the_threshold(monkeypatch):
    import clvbayes.models.hierarchical as hier

    monkeypatch.setattr(hier, "AUTO_CENTRED_MIN_CUSTOMERS", 200)
    mult = {"de": 1.0, "fr": 0.5, "it": 2.0}
    sizes = {"de": 200, "fr": 199, "it": 60}
    df = _segments("bgnbd", mult, sizes, 5)
    m = HierarchicalPurchaseModel(df, segment="country", parameterization="auto")
    assert m.parameterization_used == "mixed"
    assert m.segment_centred.tolist() == [True, False, False]  # de fr it
    free = {rv.name for rv in m.model.free_RVs}
    assert {"eps_r", "log_r_segment"} <= free
    # the mixed form puts every segment's parameters back in its place: each segment's
    # likelihood is the plain model's at its own parameters
    seg_theta = {s: dict(BASE["bgnbd"], alpha=BASE["bgnbd"]["alpha"] * k) for s, k in mult.items()}
    centred, small = m.segments[m.segment_centred], m.segments[~m.segment_centred]
    values = {}
    for p in m.param_names:
        values[f"mu_{p}"], values[f"sigma_{p}"] = 0.2, 0.4
        values[f"log_{p}_segment"] = np.log([seg_theta[s][p] for s in centred])
        values[f"eps_{p}"] = (np.log([seg_theta[s][p] for s in small]) - 0.2) / 0.4
    ref = sum(_loglik(model_class("bgnbd")(df[df["country"] == s])._build_model(), seg_theta[s]) for s in mult)
    assert _loglik(m.model, values) == pytest.approx(ref, rel=1e-12)
    # all segments large: "auto" is the centred model (same variables, same log density)
    big = _segments("bgnbd", {"de": 1.0, "fr": 0.5}, 200, 6)
    auto = HierarchicalPurchaseModel(big, segment="country", parameterization="auto")
    cen = HierarchicalPurchaseModel(big, segment="country", parameterization="centred")
    assert auto.parameterization_used == "centred" and auto.segment_centred.all()
    point = {k: v + 0.1 for k, v in cen.model.initial_point().items()}
    assert sorted(point) == sorted(auto.model.initial_point())
    assert auto.model.compile_logp()(point) == pytest.approx(cen.model.compile_logp()(point), rel=1e-14)
    small_only = HierarchicalPurchaseModel(_segments("bgnbd", {"de": 1.0, "fr": 0.5}, 150, 6), segment="country",
                                           parameterization="auto")
    assert small_only.parameterization_used == "non_centred" and not small_only.segment_centred.any()


def test_cells_are_segment_by_covariate_and_equal_expanded_rows():
    df = _segments("bgnbd", {"de": 1.0, "fr": 0.5}, 120, 3)
    m = HierarchicalPurchaseModel(df, family="bgnbd", segment="country", purchase_covariates=["channel"],
                                  dropout_covariates=["channel"])
    assert m.n_cells == 4
    # every customer's cell holds its own segment and its own channel
    assert np.array_equal(m.cell_segment[m.cell], m.customer_segment)
    z_cust = m._z_customers[:, 0]
    assert np.array_equal(m.cell_rows[m.cell, 0], z_cust)
    rng = np.random.default_rng(0)
    vals = {f"mu_{p}": 0.0 for p in m.param_names} | {f"sigma_{p}": 0.5 for p in m.param_names}
    vals |= {f"eps_{p}": rng.normal(size=2) for p in m.param_names}
    vals |= {"gamma_purchase": np.array([0.3]), "gamma_a": np.array([-0.2]), "gamma_b": np.array([0.1])}
    got = _loglik(m.model, vals)
    # expanded: each customer's own parameters from cell_parameters, summed row by row
    base = {p: np.exp(vals[f"mu_{p}"] + vals[f"sigma_{p}"] * vals[f"eps_{p}"])[None, :] for p in m.param_names}
    coef = {c: vals[c][None, :] for c in m.coefficient_names}
    theta = m.cell_parameters(base, coef)[:, 0, :]
    ref = 0.0  # each cell's customers by the plain family model at the cell's parameters
    for c in range(m.n_cells):
        rows = df[m.cell == c]
        ref += _loglik(model_class("bgnbd")(rows)._build_model(), dict(zip(m.param_names, theta[c], strict=True)))
    assert got == pytest.approx(ref, rel=1e-12)


def test_bad_input_is_refused_with_the_column_and_the_culprits():
    df = _segments("bgnbd", {"de": 1.0, "fr": 0.5}, 50, 1)
    bad = df.copy()
    bad.loc[[3, 7], "country"] = None
    with pytest.raises(ValueError, match=r"'country' has 2 missing labels \(customers \[3, 7\]"):
        HierarchicalPurchaseModel(bad, segment="country")
    lone = df.copy()
    lone.loc[5, "country"] = "lu"
    with pytest.raises(ValueError, match=r"\('lu', 1\).*'other'"):
        HierarchicalPurchaseModel(lone, segment="country")
    with pytest.raises(ValueError, match="one segment.*CovariatePurchaseModel"):
        HierarchicalPurchaseModel(df[df["country"] == "de"], segment="country")
    with pytest.raises(ValueError, match="No segment column 'region'"):
        HierarchicalPurchaseModel(df, segment="region")
    with pytest.raises(ValueError, match="also a covariate"):
        HierarchicalPurchaseModel(df, segment="country", purchase_covariates=["country"])
    with pytest.raises(ValueError, match="parameterization"):
        HierarchicalPurchaseModel(df, segment="country", parameterization="cent")
    with pytest.raises(ValueError, match="NUTS only"):
        HierarchicalPurchaseModel(df, segment="country").fit("map")
    num = df.assign(age=np.linspace(20, 70, len(df)))
    with pytest.raises(ValueError, match="Numeric covariate columns \\['age'\\]"):
        HierarchicalPurchaseModel(num, segment="country", purchase_covariates=["age"])


@pytest.mark.slow
def test_nuts_recovers_segments_and_shrinks_a_tiny_one():
    mult = {"a": 0.5, "b": 1.0, "c": 2.0, "d": 1.0, "tiny": 4.0}
    sizes = {"a": 800, "b": 800, "c": 800, "d": 800, "tiny": 8}
    df = _segments("bgnbd", mult, sizes, 11)
    m = HierarchicalPurchaseModel(df, family="bgnbd", segment="country").fit(draws=500, tune=500, chains=2, random_seed=1)
    s = m.segment_summary()
    for seg in "abcd":
        truth = BASE["bgnbd"]["alpha"] * mult[seg]
        assert s.loc[seg, "alpha_hdi_low"] < truth < s.loc[seg, "alpha_hdi_high"]
    # the tiny segment's own MLE-free estimate is pulled toward the population: its alpha
    # posterior mean lies well below its true (extreme) 4x value and between the others
    pooled = np.exp(m.idata_.posterior["mu_alpha"].to_numpy().mean())
    assert s.loc["tiny", "alpha_mean"] < BASE["bgnbd"]["alpha"] * 4.0
    assert abs(np.log(s.loc["tiny", "alpha_mean"] / pooled)) < abs(np.log(BASE["bgnbd"]["alpha"] * 4.0 / pooled))
    cd = m.cell_draws(100)
    assert cd.values["alpha"].shape[0] == m.n_cells and np.array_equal(cd.cell, m.cell)
    pa = m.probability_alive()
    assert pa.shape == (len(df),) and np.all((pa > 0) & (pa <= 1))


def test_shrinkage_table_and_parameter_table_names():
    """shrinkage(): the pooled rate is the posterior mean of r/alpha per segment, the unpooled
    one the family's MLE on the segment's customers alone, the population exp(mu_r - mu_alpha);
    shrinkage = ln(unpooled/pooled) / ln(unpooled/population). Posterior: seeded draws (the
    report code reads only idata_.posterior)."""
    import arviz as az

    df = _segments("bgnbd", {"a": 0.5, "b": 1.0, "c": 2.0}, {"a": 300, "b": 300, "c": 40}, seed=4)
    m = HierarchicalPurchaseModel(df, segment="country")
    rng = np.random.default_rng(0)
    post = {f"{p}_segment": v * np.exp(rng.normal(0, 0.05, (2, 30, 3))) for p, v in BASE["bgnbd"].items()}
    post["alpha_segment"] *= np.array([0.6, 1.0, 1.3])  # pooled: pulled toward the middle
    for p, v in BASE["bgnbd"].items():
        post[f"mu_{p}"] = np.log(v) + rng.normal(0, 0.05, (2, 30))
        post[f"sigma_{p}"] = np.abs(rng.normal(0.4, 0.05, (2, 30)))
    m.idata_ = az.from_dict(posterior=post, dims={f"{p}_segment": ["segment"] for p in BASE["bgnbd"]},
                            coords={"segment": ["a", "b", "c"]})
    table = m.shrinkage(hdi_prob=0.9)
    assert list(table.index) == ["a", "b", "c"] and list(table["n_customers"]) == [300, 300, 40]
    population = float(np.exp(post["mu_r"] - post["mu_alpha"]).mean())
    for k, seg in enumerate("abc"):
        pooled = float((post["r_segment"][..., k] / post["alpha_segment"][..., k]).mean())
        mle = model_class("bgnbd")(df.loc[df["country"] == seg, ["frequency", "recency", "T"]]).fit_mle()
        unpooled = mle.params_["r"] / mle.params_["alpha"]
        row = table.loc[seg]
        np.testing.assert_allclose([row["pooled"], row["unpooled"], row["population"]], [pooled, unpooled, population],
                                   rtol=1e-12)
        np.testing.assert_allclose(row["shrinkage"], np.log(unpooled / pooled) / np.log(unpooled / population),
                                   rtol=1e-12)
        assert row["pooled_hdi_low"] < pooled < row["pooled_hdi_high"]
    names = m._summary_names()
    assert names[:8] == ["mu_r", "mu_alpha", "mu_a", "mu_b", "sigma_r", "sigma_alpha", "sigma_a", "sigma_b"]
    assert m.trace_names == ["r_segment", "alpha_segment", "a_segment", "b_segment"]
    assert "alpha_segment[c]" in m.summary().index
