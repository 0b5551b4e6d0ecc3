"""CovariatePurchaseModel: categorical covariates through design cells, every family (the rows
path: tests/test_covariate_rows.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvbayes import CovariatePurchaseModel, model_class, simulate_customers
from clvbayes.families.compiled import drivers_for

BASE = {"bgnbd": dict(r=0.6, alpha=8.0, a=0.8, b=2.5), "mbgnbd": dict(r=0.6, alpha=8.0, a=0.8, b=2.5),
        "pnbd": dict(r=0.6, alpha=8.0, s=0.7, beta=10.0)}


def _segments(family: str, mult: dict, n: int, seed: int) -> pd.DataFrame:
    parts = []
    for k, (seg, m) in enumerate(mult.items()):
        th = dict(BASE[family], alpha=BASE[family]["alpha"] * m)
        df = simulate_customers(**th, model=family, T=40.0, n_customers=n, seed=seed + k)
        df["channel"] = seg
        parts.append(df)
    out = pd.concat(parts, ignore_index=True)
    out["customer_id"] = np.arange(len(out))
    return out


def _loglik_fn(pm_model):
    """The model's summed likelihood Potential as a function of natural-scale values."""
    import pytensor

    m = pm_model
    fn = pytensor.function(m.value_vars, m.replace_rvs_by_values([m["loglik"]])[0], on_unused_input="ignore")

    def at(values: dict) -> float:
        args = []
        for rv in m.free_RVs:
            v = np.asarray(values[rv.name], dtype=float)
            tr = m.rvs_to_transforms.get(rv)
            args.append(v if tr is None else np.asarray(tr.forward(v, *rv.owner.inputs).eval()))
        return float(fn(*args))

    return at


@pytest.mark.parametrize("family", ["bgnbd", "pnbd", "mbgnbd"])
def test_zero_coefficients_are_the_model_without_covariates(family):
    df = _segments(family, {"web": 1.0, "store": 0.5}, 400, 3)
    theta = BASE[family]
    plain = model_class(family)(df)
    ref = _loglik_fn(plain._build_model())(theta)
    one = CovariatePurchaseModel(df, family=family)  # no covariates: one cell
    assert one.n_cells == 1
    assert _loglik_fn(one.model)(theta) == ref  # bit for bit
    cov = CovariatePurchaseModel(df, family=family, purchase_covariates=["channel"], dropout_covariates=["channel"])
    zeros = {n: np.zeros(d.n_terms) for n, (_, d) in cov.coefficient_names.items()}
    assert cov.n_cells == 2
    assert _loglik_fn(cov.model)({**theta, **zeros}) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("family", ["bgnbd", "pnbd"])
def test_compressed_cells_equal_expanded_customers(family):
    df = _segments(family, {"web": 1.0, "store": 0.5, "ads": 2.0}, 300, 5)
    df["tier"] = np.where(np.arange(len(df)) % 3 == 0, "gold", "basic")
    cov = CovariatePurchaseModel(df, family=family, purchase_covariates=["channel", "tier"],
                                 dropout_covariates=["tier"])
    assert cov.n_cells == 6
    rng = np.random.default_rng(0)
    coef = {n: rng.normal(0, 0.4, d.n_terms) for n, (_, d) in cov.coefficient_names.items()}
    value = _loglik_fn(cov.model)({**BASE[family], **coef})
    theta = cov.cell_parameters({k: np.array([v]) for k, v in BASE[family].items()},
                                {k: v[None] for k, v in coef.items()})[:, 0]
    d = drivers_for(family)
    expanded = sum(float(d.loglik_rows(*theta[cov.cell[i]], *d.loglik_data(cov.x[i:i + 1], cov.t_x[i:i + 1],
                                                                              cov.T[i:i + 1]))[0])
                   for i in range(len(df)))
    assert value == pytest.approx(expanded, rel=1e-11)


@pytest.mark.parametrize("family", ["bgnbd", "pnbd"])
def test_map_recovers_purchase_effects(family):
    # reference level "ads" (ties -> first sorted); alpha_i = alpha exp(-gamma): gamma = -log(mult / 2)
    mult = {"web": 1.0, "store": 0.5, "ads": 2.0}
    df = _segments(family, mult, 3000, 11)
    m = CovariatePurchaseModel(df, family=family, purchase_covariates=["channel"]).fit("map")
    design = m.designs["purchase"]
    truth = np.array([-np.log(mult[name[len("channel["):-1]] / mult["ads"]) for name in design.names])
    got = m.map_["gamma_purchase"]
    # ~3 SE: with 3000 customers per segment the SE of each coefficient is 0.044-0.049
    # (finite-difference Hessian of the log posterior at the MAP, both families, this seed)
    np.testing.assert_allclose(got, truth, atol=0.15)
    assert m.map_["alpha"] == pytest.approx(BASE[family]["alpha"] * 2.0, rel=0.25)
    s = m.coefficient_summary()
    assert list(s["term"]) == list(design.names) and np.allclose(s["mean"], got)


def test_probability_alive_is_the_family_value_at_the_cell_parameters():
    df = _segments("bgnbd", {"web": 1.0, "store": 0.5}, 300, 21)
    m = CovariatePurchaseModel(df, family="bgnbd", purchase_covariates=["channel"], dropout_covariates=["channel"])
    m.map_ = {"r": 0.6, "alpha": 8.0, "a": 0.8, "b": 2.5, "gamma_purchase": np.array([0.4]),
              "gamma_a": np.array([-0.3]), "gamma_b": np.array([0.2])}
    pa = m.probability_alive()
    ep = m.expected_purchases(10.0)
    d = drivers_for("bgnbd")
    params = m.customer_parameters()
    for i in (0, 1, 350, 599):
        th = [params[p][i, 0] for p in ("r", "alpha", "a", "b")]
        z = 1.0 if df["channel"].iloc[i] == "web" else 0.0  # reference: "store" (ties -> first sorted)
        np.testing.assert_allclose(th, [0.6, 8.0 * np.exp(-0.4 * z), 0.8 * np.exp(-0.3 * z), 2.5 * np.exp(0.2 * z)],
                                   rtol=1e-15)
        one = [np.array([v]) for v in (m.x[i], m.t_x[i], m.T[i])]
        assert pa.iloc[i] == d.p_alive(*th, *one)[0]
        assert ep.iloc[i] == d.conditional_expected_purchases(*th, *one, 10.0)[0]


def test_bad_input_names_the_column():
    from clvbayes.data.validate import DataValidationError

    df = _segments("bgnbd", {"web": 1.0, "store": 0.5}, 50, 31)
    bad = df.copy()
    bad.loc[3, "channel"] = np.nan
    with pytest.raises(DataValidationError, match="channel"):
        CovariatePurchaseModel(bad, purchase_covariates=["channel"])
    bad = df.assign(country="NL")
    with pytest.raises(DataValidationError, match="'country'.*one level"):
        CovariatePurchaseModel(bad, purchase_covariates=["country"])
    bad = df.copy()
    bad.loc[0, "channel"] = "tv"
    with pytest.raises(DataValidationError, match="'channel'.*fewer than 2"):
        CovariatePurchaseModel(bad, purchase_covariates=["channel"])
    attrs = df[["customer_id", "channel"]].iloc[1:]
    with pytest.raises(DataValidationError, match="no attributes"):
        CovariatePurchaseModel(df.drop(columns="channel"), attrs, purchase_covariates=["channel"])
    joined = CovariatePurchaseModel(df.drop(columns="channel"), df[["customer_id", "channel"]],
                                    purchase_covariates=["channel"])
    assert joined.n_cells == 2
    many = df.assign(shop=[f"s{i // 2}" for i in range(len(df))])
    with pytest.raises(ValueError, match=r"\['shop'\] make 50 design cells.*per-customer path"):
        CovariatePurchaseModel(many, purchase_covariates=["shop"], max_cells=10, path="cells")
    with pytest.raises(ValueError, match="'age'.*bin them"):
        CovariatePurchaseModel(df.assign(age=np.arange(len(df), dtype=float)), purchase_covariates=["age"],
                               path="cells")


@pytest.mark.slow
def test_nuts_posterior_covers_the_effect():
    mult = {"web": 1.0, "store": 0.5}
    df = _segments("bgnbd", mult, 1000, 41)
    m = CovariatePurchaseModel(df, family="bgnbd", purchase_covariates=["channel"]).fit(
        draws=300, tune=300, chains=2, random_seed=1)
    s = m.coefficient_summary()
    truth = -np.log(mult["web"] / mult["store"])  # reference "store"
    assert s["hdi_low"].iloc[0] < truth < s["hdi_high"].iloc[0] and s["r_hat"].iloc[0] < 1.05


def test_the_guide_example_prints_the_figures_it_quotes(capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "covariates.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/guide/covariates.md", "exec"), {})
    out = capsys.readouterr().out
    for figure in ("0.660", "0.071", "0.064", "0.681", "0.575"):
        assert figure in out and figure in text


def test_posterior_predictions_average_the_draws_of_each_cell():
    import arviz as az

    df = _segments("pnbd", {"web": 1.0, "store": 0.5}, 100, 51)
    m = CovariatePurchaseModel(df, family="pnbd", purchase_covariates=["channel"], dropout_covariates=["channel"])
    rng = np.random.default_rng(2)
    post = {p: v * np.exp(rng.normal(0, 0.1, (2, 3))) for p, v in BASE["pnbd"].items()}
    post["gamma_purchase"] = rng.normal(0, 0.3, (2, 3, 1))
    post["gamma_dropout"] = rng.normal(0, 0.3, (2, 3, 1))
    m.idata_ = az.from_dict(posterior=post)
    pa = m.probability_alive(draws=None)
    d = drivers_for("pnbd")
    for i in (0, 150):
        z = float(df["channel"].iloc[i] == "web")  # reference "store"
        vals = []
        for c in range(2):
            for k in range(3):
                th = (post["r"][c, k], post["alpha"][c, k] * np.exp(-z * post["gamma_purchase"][c, k, 0]),
                      post["s"][c, k], post["beta"][c, k] * np.exp(-z * post["gamma_dropout"][c, k, 0]))
                vals.append(d.p_alive(*th, *(np.array([v]) for v in (m.x[i], m.t_x[i], m.T[i])))[0])
        assert pa.iloc[i] == pytest.approx(np.mean(vals), rel=1e-14)


def test_cell_draws_are_each_cells_parameters_on_the_thinned_grid():
    import arviz as az

    from clvbayes.value.draws import parameter_draws

    df = _segments("bgnbd", {"web": 1.0, "store": 0.5}, 60, 61)
    m = CovariatePurchaseModel(df, family="bgnbd", purchase_covariates=["channel"])
    rng = np.random.default_rng(5)
    post = {p: v * np.exp(rng.normal(0, 0.1, (2, 10))) for p, v in BASE["bgnbd"].items()}
    post["gamma_purchase"] = rng.normal(0, 0.3, (2, 10, 1))
    m.idata_ = az.from_dict(posterior=post)
    cd = m.cell_draws(n_draws=6)
    plain = parameter_draws(_Posterior(post), 6)
    assert cd.shape == plain.shape == (2, 3) and np.array_equal(cd.draw, plain.draw)
    assert cd.n_cells == 2 and np.array_equal(cd.cell, m.cell) and cd.family == "bgnbd"
    web = int(m.cell[df.index[df["channel"] == "web"][0]])
    store = 1 - web
    np.testing.assert_array_equal(cd.values["r"][web], plain["r"])
    np.testing.assert_array_equal(cd.values["alpha"][store], plain["alpha"])
    g = post["gamma_purchase"][:, :, 0].reshape(-1)[np.isin(np.arange(20), _flat(plain))]
    np.testing.assert_allclose(cd.values["alpha"][web], plain["alpha"] * np.exp(-g), rtol=1e-15)
    one = cd.for_cell(web)
    assert one.n == 6 and np.array_equal(one["alpha"], cd.values["alpha"][web])
    m.idata_, m.map_ = None, {**{p: np.float64(v) for p, v in BASE["bgnbd"].items()}, "gamma_purchase": np.array([0.4])}
    point = m.cell_draws()
    assert point.source == "point" and point.n == 1
    np.testing.assert_allclose(point.values["alpha"][web], [BASE["bgnbd"]["alpha"] * np.exp(-0.4)], rtol=1e-15)


class _Posterior:
    """A stand-in model whose posterior is ``post``'s base parameters (for parameter_draws)."""

    param_names = tuple(BASE["bgnbd"])

    def __init__(self, post):
        import arviz as az

        self.idata_ = az.from_dict(posterior={p: post[p] for p in self.param_names})


def _flat(draws) -> np.ndarray:
    """Flat (chain-major) positions of a thinned 2 x 10 grid."""
    return (np.arange(2)[:, None] * 10 + draws.draw[None, :]).reshape(-1)


def test_summary_and_convergence_checks_name_the_terms():
    import arviz as az

    df = _segments("bgnbd", {"web": 1.0, "store": 0.5}, 60, 71)
    m = CovariatePurchaseModel(df, family="bgnbd", purchase_covariates=["channel"])
    rng = np.random.default_rng(6)
    post = {p: v * np.exp(rng.normal(0, 0.1, (2, 50))) for p, v in BASE["bgnbd"].items()}
    post["gamma_purchase"] = rng.normal(0, 0.3, (2, 50, 1))
    post["gamma_purchase"][1] += 3.0  # the chains disagree on the coefficient
    m.idata_ = az.from_dict(posterior=post, sample_stats={"diverging": np.zeros((2, 50), dtype=bool)})
    table = m.summary()
    assert list(table.index) == ["r", "alpha", "a", "b", "gamma_purchase[channel[web]]"]
    problems = m.check_convergence(warn=False)
    assert any(p.startswith("r_hat of gamma_purchase[channel[web]] ") for p in problems)
    assert not any(p.startswith("r_hat of alpha") for p in problems)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.check_convergence()
    assert [str(w.message) for w in caught] == problems
    m.idata_, m.map_ = None, {**{p: np.float64(v) for p, v in BASE["bgnbd"].items()}, "gamma_purchase": np.array([0.2])}
    assert m.summary().loc["gamma_purchase[channel[web]]", "estimate"] == 0.2
