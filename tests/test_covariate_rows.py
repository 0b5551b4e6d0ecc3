"""CovariatePurchaseModel's per-customer (rows) path: RowLogLik, continuous covariates."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest

from clvbayes import CovariatePurchaseModel, model_class, simulate_customers
from clvbayes.families import get_family
from clvbayes.kernels import build
from clvbayes.kernels import cells as K
from clvbayes.models.row_ops import RowLogLik

BASE = {"bgnbd": dict(r=0.6, alpha=8.0, a=0.8, b=2.5), "mbgnbd": dict(r=0.6, alpha=8.0, a=0.8, b=2.5),
        "pnbd": dict(r=0.6, alpha=8.0, s=0.7, beta=10.0)}
FAMILIES = ["bgnbd", "pnbd", "mbgnbd"]


def _customers(family: str, n: int, seed: int) -> pd.DataFrame:
    """Customers of the base parameters with a channel and a numeric ``age`` column."""
    df = simulate_customers(**BASE[family], model=family, T=40.0, n_customers=n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    df["channel"] = np.where(rng.uniform(size=n) < 0.4, "web", "store")
    df["age"] = np.round(rng.normal(40.0, 10.0, n), 1)
    return df


def _row_kernel(family: str):
    """``row_loglik_sum_grad`` bound to the family's core here (as tests/test_kernels_cells.py)."""
    fam = get_family(family)
    return build.rebuild(K.row_loglik_sum_grad, replace={"_loglik_grad_one": fam.cores["loglik_grad_one"]},
                         tag=f"test_rows_{family}")


def _values(model, values: dict) -> dict:
    """A point of the model's value variables from natural-scale values."""
    point = {}
    for rv in model.free_RVs:
        v = np.asarray(values[rv.name], dtype=float)
        tr = model.rvs_to_transforms.get(rv)
        point[model.rvs_to_values[rv].name] = v if tr is None else np.asarray(tr.forward(v, *rv.owner.inputs).eval())
    return point


def _loglik(model, values: dict) -> float:
    m = model
    fn = pytensor.function(m.value_vars, m.replace_rvs_by_values([m["loglik"]])[0], on_unused_input="ignore")
    point = _values(m, values)
    return float(fn(*(point[v.name] for v in m.value_vars)))


@pytest.mark.parametrize("family", FAMILIES)
def test_op_value_and_gradient_are_the_row_kernel(family):
    rng = np.random.default_rng(5)
    df = _customers(family, 300, 1)
    x, t_x, T = (df[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    w = rng.integers(1, 5, x.size).astype(float)
    theta = np.array(list(BASE[family].values())) * np.exp(rng.normal(0.0, 0.3, (x.size, 4)))
    v = [pt.dvector(f"p{k}") for k in range(4)]
    out = RowLogLik(family)(*v, x, t_x, T, w)
    fn = pytensor.function(v, [out, *pytensor.grad(out, v)])
    val, *grads = fn(*theta.T)
    ref, g = _row_kernel(family)(theta, x, t_x, T, w)
    assert val == ref
    np.testing.assert_array_equal(np.column_stack(grads), g)
    bad = theta.copy()
    bad[7, 2] = -1.0
    assert fn(*bad.T)[0] == -math.inf
    if family == "bgnbd":  # the compiled (nutpie) implementation: same bits
        fn_numba = pytensor.function(v, [out, *pytensor.grad(out, v)], mode="NUMBA")
        val_n, *grads_n = fn_numba(*theta.T)
        assert val_n == ref
        np.testing.assert_array_equal(np.column_stack(grads_n), g)
        assert fn_numba(*bad.T)[0] == -math.inf


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_in_the_coefficients_is_finite_differences_of_the_logp(family):
    df = _customers(family, 400, 2)
    m = CovariatePurchaseModel(df, family=family, purchase_covariates=["age", "channel"], dropout_covariates=["age"])
    assert m.path == "rows"
    model = m.model
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    rng = np.random.default_rng(3)
    values = dict(BASE[family], **{n: rng.normal(0, 0.3, d.n_terms) for n, (_, d) in m.coefficient_names.items()})
    point = _values(model, values)
    g = dlogp(point)
    names = [v.name for v in model.value_vars]
    sizes = [np.size(point[n]) for n in names]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    checked = 0
    for name, off in zip(names, offsets[:-1], strict=True):
        if not name.startswith("gamma"):
            continue
        for j in range(np.size(point[name])):
            h = 1e-5
            up, dn = dict(point), dict(point)
            up[name] = point[name].copy()
            dn[name] = point[name].copy()
            up[name][j] += h
            dn[name][j] -= h
            fd = (logp(up) - logp(dn)) / (2 * h)
            assert g[off + j] == pytest.approx(fd, rel=1e-6, abs=1e-6)
            checked += 1
    assert checked == sum(d.n_terms for _, d in m.coefficient_names.values())


@pytest.mark.parametrize("family", FAMILIES)
def test_rows_path_equals_cells_path_on_a_categorical_design(family):
    df = _customers(family, 500, 4)
    kw = dict(family=family, purchase_covariates=["channel"], dropout_covariates=["channel"])
    cells = CovariatePurchaseModel(df, **kw)
    rows = CovariatePurchaseModel(df, path="rows", **kw)
    assert cells.path == "cells" and rows.path == "rows"
    values = dict(BASE[family], **{n: np.array([0.3 * (k + 1)]) for k, n in enumerate(cells.coefficient_names)})
    assert _loglik(rows.model, values) == pytest.approx(_loglik(cells.model, values), rel=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_coefficients_on_a_numeric_covariate_are_the_model_without_covariates(family):
    df = _customers(family, 400, 6)
    theta = BASE[family]
    ref = _loglik(model_class(family)(df)._build_model(), theta)
    m = CovariatePurchaseModel(df, family=family, purchase_covariates=["age"], dropout_covariates=["age"])
    assert m.path == "rows"
    zeros = {n: np.zeros(d.n_terms) for n, (_, d) in m.coefficient_names.items()}
    assert _loglik(m.model, {**theta, **zeros}) == pytest.approx(ref, rel=1e-12)


def test_auto_path_and_cells_path_refusals():
    df = _customers("bgnbd", 60, 7)
    assert CovariatePurchaseModel(df, purchase_covariates=["channel"]).path == "cells"
    assert CovariatePurchaseModel(df, purchase_covariates=["age"]).path == "rows"
    many = df.assign(shop=[f"s{i // 2}" for i in range(len(df))])
    assert CovariatePurchaseModel(many, purchase_covariates=["shop"], max_cells=10).path == "rows"
    with pytest.raises(ValueError, match=r"\['shop'\] make 30 design cells.*path='rows'"):
        CovariatePurchaseModel(many, purchase_covariates=["shop"], max_cells=10, path="cells")
    with pytest.raises(ValueError, match=r"\['age'\].*path='rows'"):
        CovariatePurchaseModel(df, purchase_covariates=["age"], path="cells")
    with pytest.raises(ValueError, match="path must be one of"):
        CovariatePurchaseModel(df, path="customers")


def _continuous_groups(gamma: float, n_groups: int, size: int, seed: int) -> pd.DataFrame:
    """BG/NBD customers in groups with their own covariate value v_g ~ N(0, 1) and
    ``alpha_g = alpha exp(-gamma v_g)`` (the model's link), simulated group by group."""
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, 1.0, n_groups)
    parts = []
    for g in range(n_groups):
        th = dict(BASE["bgnbd"], alpha=BASE["bgnbd"]["alpha"] * math.exp(-gamma * v[g]))
        parts.append(simulate_customers(**th, T=40.0, n_customers=size, seed=seed + 1 + g).assign(score=v[g]))
    return pd.concat(parts, ignore_index=True)


def test_map_recovers_a_continuous_coefficient():
    truth = 0.5
    df = _continuous_groups(truth, 500, 10, 11)  # 5,000 customers
    m = CovariatePurchaseModel(df, family="bgnbd", purchase_covariates=["score"], path="rows")
    t0 = time.perf_counter()
    m.fit(method="map")
    elapsed = time.perf_counter() - t0
    assert m.map_result_.success
    s = m.coefficient_summary()
    est = float(s["mean_per_unit"].iloc[0])
    # SE from the curvature of the log posterior in the (unconstrained) coefficient, by
    # central differences of the model's gradient, profiling over the other parameters
    model = m.model
    dlogp = model.compile_dlogp(jacobian=False)
    point = _values(model, m.map_)
    names = [v.name for v in model.value_vars]
    flat = np.concatenate([np.atleast_1d(point[n]) for n in names])
    sizes = [np.size(point[n]) for n in names]

    def grad_at(q):
        p, o = {}, 0
        for n, k in zip(names, sizes, strict=True):
            p[n] = q[o:o + k].reshape(np.shape(point[n]))
            o += k
        return np.asarray(dlogp(p))

    H = np.empty((flat.size, flat.size))
    for j in range(flat.size):
        e = np.zeros(flat.size)
        e[j] = 1e-4
        H[:, j] = (grad_at(flat + e) - grad_at(flat - e)) / 2e-4
    cov = np.linalg.inv(-0.5 * (H + H.T))
    j = names.index("gamma_purchase")
    j = int(np.cumsum([0] + sizes)[j])
    se = math.sqrt(cov[j, j]) / m.designs["purchase"].scale[0]
    print(f"gamma per unit {est:.3f} (truth {truth}), SE {se:.3f}, MAP {elapsed:.1f} s")
    assert abs(est - truth) < 3 * se
    assert se < 0.1  # informative: the test can fail


@pytest.mark.slow
def test_nutpie_samples_the_rows_path():
    df = _customers("bgnbd", 300, 12)
    m = CovariatePurchaseModel(df, family="bgnbd", purchase_covariates=["age"], dropout_covariates=["age"])
    m.fit(draws=50, tune=50, chains=1, random_seed=1)
    post = m.idata_.posterior
    for name in ("r", "alpha", "a", "b", "gamma_purchase", "gamma_a", "gamma_b"):
        assert np.all(np.isfinite(post[name].to_numpy()))
    assert post.sizes["draw"] == 50


@pytest.mark.parametrize("family", FAMILIES)
def test_rows_path_predictions_are_the_family_values_at_each_customers_parameters(family):
    from clvbayes.families.compiled import drivers_for

    df = _customers(family, 200, 13)
    m = CovariatePurchaseModel(df, family=family, purchase_covariates=["age"], dropout_covariates=["age", "channel"])
    assert m.path == "rows"
    m.map_ = {**{p: np.array(v) for p, v in BASE[family].items()},
              **{n: np.linspace(-0.4, 0.4, d.n_terms) for n, (_, d) in m.coefficient_names.items()}}
    pa, ep = m.probability_alive(), m.expected_purchases(10.0)
    params = m.customer_parameters()
    links = {"bgnbd": ("alpha", "a", "b"), "mbgnbd": ("alpha", "a", "b"), "pnbd": ("alpha", "beta")}[family]
    d = drivers_for(family)
    zp_all = m.designs["purchase"].matrix @ m.map_["gamma_purchase"]
    for i in (0, 3, 99, 199):
        th = [params[p][i, 0] for p in m.param_names]
        # the links by hand: purchase side on alpha (sign -), dropout side (BG: +, Pareto/NBD: -)
        want = dict(BASE[family], alpha=BASE[family]["alpha"] * math.exp(-zp_all[i]))
        for p in links[1:]:
            zd = m.designs["dropout"].matrix[i] @ m.map_[{"a": "gamma_a", "b": "gamma_b", "beta": "gamma_dropout"}[p]]
            want[p] = BASE[family][p] * math.exp((1.0 if family != "pnbd" else -1.0) * zd)
        np.testing.assert_allclose(th, [want[p] for p in m.param_names], rtol=1e-12)
        one = [np.array([v]) for v in (m.x[i], m.t_x[i], m.T[i])]
        assert pa.iloc[i] == d.p_alive(*th, *one)[0]
        assert ep.iloc[i] == d.conditional_expected_purchases(*th, *one, 10.0)[0]


def test_the_guide_example_of_a_continuous_covariate_prints_the_figures_it_quotes(capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "covariates.md").read_text(encoding="utf-8")
    code = text.split("## Example: a continuous covariate", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/guide/covariates.md", "exec"), {"np": np, "pd": pd, "clvbayes": __import__("clvbayes")})
    out = capsys.readouterr().out
    assert out.startswith("rows\n")
    for figure in ("0.495", "0.739", "0.618"):
        assert figure in out and figure in text
