"""Cell draws held as the covariate link's factors (CellFactor / CellValues): the same numbers
as the full arrays, memory per block of customers, not per customer x draw."""

from __future__ import annotations

import tracemalloc

import arviz as az
import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes import CovariatePurchaseModel, HierarchicalPurchaseModel, simulate_customers
from clvbayes.value import engine
from clvbayes.value.draws import CellDraws, CellFactor, CellValues, cell_rows, grid_index, shared_draws


def _continuous(n: int, seed: int = 3) -> pd.DataFrame:
    df = simulate_customers(r=0.6, alpha=8.0, a=0.8, b=2.5, T=40.0, n_customers=n, seed=seed, p=6.0, q=4.0,
                            gamma=15.0)
    rng = np.random.default_rng(seed)
    df["age"] = rng.normal(40, 10, n)
    df["income"] = rng.lognormal(3, 0.5, n)
    df.index = pd.Index([f"c{i}" for i in range(n)], name="customer_id")
    return df[["frequency", "recency", "T", "monetary_value", "age", "income"]]


def _fitted(df: pd.DataFrame, n_draw: int = 30, seed: int = 0) -> CovariatePurchaseModel:
    m = CovariatePurchaseModel(df, family="bgnbd", customer_id="customer_id", purchase_covariates=["age", "income"],
                               dropout_covariates=["age"])
    rng = np.random.default_rng(seed)
    post = {k: v * np.exp(rng.normal(0, 0.05, (2, n_draw))) for k, v in dict(r=0.6, alpha=8.0, a=0.8, b=2.5).items()}
    post["gamma_purchase"] = rng.normal(0.2, 0.05, (2, n_draw, 2))
    post["gamma_a"] = rng.normal(-0.3, 0.05, (2, n_draw, 1))
    post["gamma_b"] = rng.normal(0.2, 0.05, (2, n_draw, 1))
    m.idata_ = az.from_dict(posterior=post)
    return m


def test_factor_rows_are_the_link_at_any_subset_of_cells():
    rng = np.random.default_rng(1)
    base, z, coef = rng.gamma(2.0, 1.0, (1, 7)), rng.normal(size=(11, 3)), rng.normal(size=(7, 3))
    f = CellFactor(base, 11, None, z, coef, -1.0)
    full = f.rows(np.arange(11))
    # reference: the link written out per cell and draw, in math
    ref = np.array([[base[0, d] * np.exp(-sum(z[c, j] * coef[d, j] for j in range(3))) for d in range(7)]
                    for c in range(11)])
    np.testing.assert_allclose(full, ref, rtol=1e-14)
    cells = np.array([4, 0, 4, 10])
    np.testing.assert_array_equal(f.rows(cells), full[cells])  # term by term: the same bits for a subset
    assert f.shared is None and CellFactor(base, 11).shared is not None
    seg = CellFactor(rng.gamma(2.0, 1.0, (3, 7)), 5, np.array([2, 0, 1, 1, 2]))
    np.testing.assert_array_equal(seg.rows(np.arange(5)), seg.base[[2, 0, 1, 1, 2]])
    keep = np.array([0, 3, 6])
    np.testing.assert_array_equal(f.take(keep).rows(cells), full[cells][:, keep])


def test_cell_values_read_as_a_dict_and_make_a_parameter_only_when_read():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 1))
    v = CellValues({"r": CellFactor(np.full((1, 4), 0.5), 5),
                    "alpha": CellFactor(np.full((1, 4), 8.0), 5, None, z, np.full((4, 1), 0.3), -1.0)})
    assert set(v) == {"r", "alpha"} and len(v) == 2 and v.n_cells == 5 and not v._full
    np.testing.assert_array_equal(cell_rows(v, "alpha", np.array([1, 2])), v["alpha"][[1, 2]])
    assert list(v._full) == ["alpha"]
    np.testing.assert_array_equal(shared_draws(v, "r"), np.full(4, 0.5))
    assert shared_draws(v, "alpha") is None
    assert shared_draws({"r": np.full((5, 4), 0.5)}, "r") is not None


def test_model_cell_draws_are_factors_and_equal_the_full_arrays():
    m = _fitted(_continuous(400))
    cd = m.cell_draws(20)
    assert isinstance(cd.values, CellValues) and cd.n_cells == m.n_cells == 400
    theta = m.cell_parameters(*m._draws(20))
    for k, p in enumerate(m.param_names):
        np.testing.assert_array_equal(cd.values[p], theta[:, :, k])
    one = cd.for_cell(17)
    for k, p in enumerate(m.param_names):
        np.testing.assert_array_equal(one[p], theta[17, :, k])
    thin = cd.thin(10)
    flat, _ = grid_index(cd.shape[0], cd.shape[1], 10)
    assert isinstance(thin.values, CellValues) and thin.n == flat.size < cd.n
    for p in m.param_names:
        np.testing.assert_array_equal(thin.values[p], cd.values[p][:, flat])


def test_rows_path_from_factors_equals_rows_path_from_full_arrays(monkeypatch):
    df = _continuous(600)
    m = _fitted(df)
    gg = clvbayes.GammaGammaModel.from_params(dict(p=6.0, q=4.0, gamma=15.0))
    kw = dict(quantities=("clv", "p_alive", "expected_purchases"), horizon=52.0, n_draws=40)
    lazy = clvbayes.customer_metrics(m, gg, df, **kw)
    cd = m.cell_draws(40)
    full = CellDraws({p: np.array(cd.values[p]) for p in cd.values}, cd.cell, cd.chain, cd.draw, cd.source,
                     cd.family)
    eager = clvbayes.customer_metrics(full, gg, df, **kw)
    for q in kw["quantities"]:
        pd.testing.assert_frame_equal(lazy[q].summary, eager[q].summary, check_exact=True)
        np.testing.assert_array_equal(lazy[q].totals.to_numpy(), eager[q].totals.to_numpy())
    # blocks of any size give the same numbers (each block makes its own cells' parameters)
    monkeypatch.setattr(engine, "default_block_size", lambda nd: 53)
    blocked = clvbayes.customer_metrics(m, gg, df, **kw)
    for q in kw["quantities"]:
        pd.testing.assert_frame_equal(lazy[q].summary, blocked[q].summary, check_exact=True)


def test_per_customer_predictions_are_the_same_in_blocks(monkeypatch):
    df = _continuous(500)
    m = _fitted(df)
    pa = m.probability_alive(draws=20).to_numpy()
    ep = m.expected_purchases(10.0, draws=20).to_numpy()
    import clvbayes.models.covariate_common as cc

    monkeypatch.setattr(cc.CovariateFitMixin._customer_blocks, "__defaults__", (64,))
    np.testing.assert_array_equal(m.probability_alive(draws=20).to_numpy(), pa)
    np.testing.assert_array_equal(m.expected_purchases(10.0, draws=20).to_numpy(), ep)


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_value_of_many_cells_holds_blocks_not_customers_by_draws(monkeypatch):
    n, nd = 20_000, 200
    m = _fitted(_continuous(n), n_draw=nd // 2)
    monkeypatch.setattr(engine, "default_block_size", lambda n_draws: 2_000)
    full_bytes = n * nd * 8 * len(m.param_names)  # every cell's draws as arrays: 128 MB
    kw = dict(quantities=("p_alive", "expected_purchases"), horizon=10.0, n_draws=nd, keep_draws=False)
    clvbayes.customer_metrics(m, None, m.data, **kw)  # compile outside the measurement

    def eager():
        cd = m.cell_draws(nd)
        full = CellDraws({p: np.array(cd.values[p]) for p in cd.values}, cd.cell, cd.chain, cd.draw, cd.source,
                         cd.family)
        clvbayes.customer_metrics(full, None, m.data, **kw)

    lazy_peak = _peak(lambda: clvbayes.customer_metrics(m, None, m.data, **kw))
    eager_peak = _peak(eager)
    assert eager_peak > full_bytes  # the measurement sees the full arrays when they are made
    assert lazy_peak < 0.4 * full_bytes, (lazy_peak, eager_peak, full_bytes)  # measured: 37 vs 321 MB


def test_hierarchical_factors_and_profiles_by_segment():
    rng = np.random.default_rng(4)
    parts = []
    for k, (seg, mult) in enumerate((("fr", 0.5), ("de", 1.0), ("it", 2.0))):
        d = simulate_customers(r=0.6, alpha=8.0 * mult, a=0.8, b=2.5, T=30.0, n_customers=60, seed=10 + k)
        parts.append(d.assign(country=seg, channel=rng.choice(["web", "store"], 60)))
    df = pd.concat(parts, ignore_index=True)
    m = HierarchicalPurchaseModel(df, segment="country", purchase_covariates=["channel"])
    post = {f"{p}_segment": v * np.exp(rng.normal(0, 0.1, (2, 5, 3)))
            for p, v in dict(r=0.6, alpha=8.0, a=0.8, b=2.5).items()}
    post["gamma_purchase"] = rng.normal(0.4, 0.05, (2, 5, 1))
    m.idata_ = az.from_dict(posterior=post, coords={"segment": list(m.segments)},
                            dims={f"{p}_segment": ["segment"] for p in m.param_names})
    cd = m.cell_draws()
    base, coef = m._draws(None)
    for c in range(m.n_cells):
        s = m.cell_segment[c]
        z = m._z["purchase"][c, 0]
        np.testing.assert_allclose(cd.values["alpha"][c], base["alpha"][:, s] * np.exp(-z * coef["gamma_purchase"][:, 0]),
                                   rtol=1e-15)
        np.testing.assert_array_equal(cd.values["r"][c], base["r"][:, s])
    prof = m.parameters_for(pd.DataFrame({"country": ["it", "fr"], "channel": ["web", "web"]}))
    it, fr = int(np.flatnonzero(m.segments == "it")[0]), int(np.flatnonzero(m.segments == "fr")[0])
    np.testing.assert_array_equal(prof.values["r"][0], base["r"][:, it])
    np.testing.assert_array_equal(prof.values["r"][1], base["r"][:, fr])
    with pytest.raises(ValueError, match="segment column 'country'"):
        m.parameters_for(pd.DataFrame({"channel": ["web"]}))
    with pytest.raises(ValueError, match=r"Unknown segments \['es'\] in column 'country'"):
        m.parameters_for(pd.DataFrame({"country": ["es"], "channel": ["web"]}))
