"""CovariateSpendModel: Gamma-Gamma with gamma_i = gamma exp(z_i' delta), cells and rows paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import gammaln

from clvbayes import CovariateSpendModel, DataValidationError, GammaGammaModel
from clvbayes.kernels.gamma_gamma import gg_row_loglik_sum_grad
from clvbayes.kernels.special import PARALLEL_MIN_ROWS
from tests.test_covariate_model import _loglik_fn

P, Q, G = 6.0, 4.0, 15.0  # mean spend p gamma / (q - 1) = 30


def _simulate(gamma_i: np.ndarray, seed: int, p: float = P, q: float = Q) -> pd.DataFrame:
    """Gamma-Gamma customers from the model: nu_i ~ Gamma(q, rate gamma_i), x_i repeat spends
    ~ Gamma(p, rate nu_i) (about a third of the customers buy once: x = 0, no spend)."""
    rng = np.random.default_rng(seed)
    n = gamma_i.shape[0]
    x = rng.poisson(2.0, n).astype(float)
    nu = rng.gamma(q, 1.0 / gamma_i)
    m = np.array([rng.gamma(p, 1.0 / nu[i], int(x[i])).mean() if x[i] > 0 else 0.0 for i in range(n)])
    return pd.DataFrame({"frequency": x, "monetary_value": m}, index=pd.RangeIndex(n, name="customer_id"))


def _channels(n: int, seed: int, ratio: float = 1.5) -> pd.DataFrame:
    ch = np.where(np.arange(n) % 3 == 0, "web", "store")  # 1/3 web: reference "store"
    df = _simulate(G * np.where(ch == "web", ratio, 1.0), seed)
    df["channel"] = ch
    return df


def _ref_loglik(p, q, gamma, x, m):
    """FHL (2005) RFM and CLV appendix density of the mean spend, textbook gammaln form (scipy)."""
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + px * np.log(x) + (px - 1) * np.log(m)
            - (px + q) * np.log(gamma + x * m))


def test_zero_coefficients_are_the_gamma_gamma_likelihood():
    df = _channels(600, 1)
    theta = {"p": P, "q": Q, "gamma": G}
    ref = _loglik_fn(GammaGammaModel(df)._build_model())(theta)
    one = CovariateSpendModel(df)  # no covariates: one cell
    assert one.n_cells == 1 and one.path == "cells"
    assert _loglik_fn(one.model)(theta) == ref  # bit for bit
    for path in ("cells", "rows"):
        cov = CovariateSpendModel(df, covariates=["channel"], path=path)
        assert cov.n_cells == 2
        assert _loglik_fn(cov.model)({**theta, "delta": np.zeros(1)}) == pytest.approx(ref, rel=1e-12)


def test_cells_equal_the_expanded_customers_by_scipy():
    """Compressed rows within each cell = the sum over every repeat buyer of the scipy density at its gamma_i."""
    df = _channels(900, 2)
    df["tier"] = np.where(np.arange(len(df)) % 4 == 0, "gold", "basic")
    model = CovariateSpendModel(df, covariates=["channel", "tier"])
    assert model.path == "cells" and model.n_cells == 4
    delta = np.array([0.3, -0.2])  # channel[web], tier[gold]
    z = model.design.transform(df)
    keep = df["frequency"].to_numpy() > 0
    x, m = df["frequency"].to_numpy()[keep], df["monetary_value"].to_numpy()[keep]
    ref = _ref_loglik(P, Q, G * np.exp(z[keep] @ delta), x, m).sum()
    assert _loglik_fn(model.model)({"p": P, "q": Q, "gamma": G, "delta": delta}) == pytest.approx(ref, rel=1e-12)


def test_rows_path_equals_cells_path_value_and_gradient():
    df = _channels(900, 3)
    point = {"p": 2.5, "q": 3.0, "gamma": 11.0, "delta": np.array([0.4])}
    fits = {}
    for path in ("cells", "rows"):
        model = CovariateSpendModel(df, covariates=["channel"], path=path)
        assert model.path == path
        ip = model.model.initial_point()
        for rv in model.model.free_RVs:
            tr = model.model.rvs_to_transforms.get(rv)
            v = np.asarray(point[rv.name], dtype=float)
            ip[model.model.rvs_to_values[rv].name] = v if tr is None else tr.forward(v, *rv.owner.inputs).eval()
        fits[path] = (_loglik_fn(model.model)(point), model.model.compile_dlogp(jacobian=False)(ip))
    assert fits["rows"][0] == pytest.approx(fits["cells"][0], rel=1e-12)
    np.testing.assert_allclose(fits["rows"][1], fits["cells"][1], rtol=1e-10)


_pos = st.floats(1e-3, 1e3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_pos, _pos, _pos, st.integers(1, 10_000), st.floats(1e-2, 1e4)), min_size=1, max_size=8))
def test_row_kernel_value_vs_scipy_and_gradient_vs_finite_differences(rows):
    p, q, g, x, m = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    w = np.arange(1.0, p.shape[0] + 1.0)
    val, grad = gg_row_loglik_sum_grad(p, q, g, x, m, w)
    ref = _ref_loglik(p, q, g, x, m)
    # scipy's form cancels at large p x: compare to its own rounding (~1e-16 |gammaln(px+q)|)
    tol = 1e-12 * np.sum(w * (np.abs(gammaln(p * x + q)) + np.abs(q * np.log(g)) + (p * x + q) * np.abs(np.log(g + x * m))
                              + np.abs(p * x * np.log(x)) + p * x * np.abs(np.log(m)) + 1.0))
    assert abs(val - np.sum(w * ref)) <= tol
    for k, arr in enumerate((p, q, g)):
        for i in range(p.shape[0]):
            h = 1e-6 * arr[i]
            up, dn = [a.copy() for a in (p, q, g)], [a.copy() for a in (p, q, g)]
            up[k][i] += h
            dn[k][i] -= h
            fd = (gg_row_loglik_sum_grad(*up, x, m, w)[0] - gg_row_loglik_sum_grad(*dn, x, m, w)[0]) / (2 * h)
            # FD error: rounding of the sum over h, plus curvature h^2
            scale = np.sum(w * (np.abs(ref) + p * x + q + 1.0)) * 1e-16 / h + 1e-6 * abs(grad[i, k])
            assert abs(grad[i, k] - fd) <= 10 * scale + 1e-7 * abs(fd)


def test_row_kernel_same_bits_for_any_thread_count_and_bad_parameters():
    import numba

    from clvbayes.models.row_ops import SpendRowLogLik

    rng = np.random.default_rng(4)
    n = PARALLEL_MIN_ROWS + 777
    p, q, g = rng.uniform(0.5, 5, n), rng.uniform(1.5, 5, n), rng.uniform(1, 50, n)
    x, m, w = rng.integers(0, 20, n).astype(float), rng.uniform(1, 100, n), rng.integers(1, 4, n).astype(float)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = gg_row_loglik_sum_grad(p, q, g, x, m, w)
        numba.set_num_threads(before)
        many = gg_row_loglik_sum_grad(p, q, g, x, m, w)
    finally:
        numba.set_num_threads(before)
    serial = SpendRowLogLik(parallel=False).kernel(p, q, g, x, m, w)
    assert one[0] == many[0] == serial[0]
    assert np.array_equal(one[1], many[1]) and np.array_equal(one[1], serial[1])
    assert np.all(one[1][x == 0] == 0.0)  # one-time buyers contribute nothing
    g_bad = g.copy()
    g_bad[5] = -1.0
    val, grad = gg_row_loglik_sum_grad(p, q, g_bad, x, m, w)
    assert val == -np.inf and np.isnan(grad).all()


def test_row_op_numba_mode_matches_python_mode():
    import pytensor
    import pytensor.tensor as pt

    from clvbayes.models.row_ops import SpendRowLogLik

    rng = np.random.default_rng(5)
    n = 50
    x, m, w = rng.integers(1, 9, n).astype(float), rng.uniform(1, 60, n), np.ones(n)
    pv, qv, gv = pt.dvectors("p", "q", "g")
    val = SpendRowLogLik()(pv, qv, gv, x, m, w)
    out = [val, *pytensor.grad(val, [pv, qv, gv])]
    args = (rng.uniform(1, 3, n), rng.uniform(2, 4, n), rng.uniform(5, 20, n))
    py = pytensor.function([pv, qv, gv], out, mode="FAST_COMPILE")(*args)
    nb = pytensor.function([pv, qv, gv], out, mode="NUMBA")(*args)
    ker = gg_row_loglik_sum_grad(*args, x, m, w)
    assert py[0] == nb[0] == ker[0]
    for k in range(3):
        np.testing.assert_array_equal(py[1 + k], ker[1][:, k])
        np.testing.assert_array_equal(nb[1 + k], ker[1][:, k])


def test_map_recovers_a_spend_effect_and_predicts_every_customer():
    ratio = 1.5
    df = _channels(4000, 6, ratio)
    model = CovariateSpendModel(df, covariates=["channel"]).fit(method="map")
    s = model.coefficient_summary()
    assert list(s["term"]) == ["channel[web]"] and list(s["parameter"]) == ["gamma"]
    assert s["mean"].iloc[0] == pytest.approx(np.log(ratio), abs=0.08)
    # expected spend: FHL eq. (5) at each customer's gamma_i, one-time buyers at p gamma_i / (q - 1)
    p, q, g, d = (float(np.squeeze(model.map_[k])) for k in ("p", "q", "gamma", "delta"))
    gi = g * np.exp(d * (df["channel"] == "web").to_numpy())
    x, mv = df["frequency"].to_numpy(), df["monetary_value"].to_numpy()
    want = np.where(x > 0, p * (gi + x * mv) / (p * x + q - 1), p * gi / (q - 1))
    got = model.expected_spend()
    assert len(got) == len(df) and (x == 0).sum() > 500
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-12)
    cd = model.cell_draws()
    assert cd.family is None and set(cd.values) == {"p", "q", "gamma"} and cd.values["gamma"].shape == (2, 1)
    np.testing.assert_allclose(cd.values["gamma"][cd.cell, 0], gi, rtol=1e-14)


def test_map_recovers_a_continuous_spend_effect_on_the_rows_path():
    rng = np.random.default_rng(7)
    score = rng.normal(2.0, 1.5, 3000)
    df = _simulate(G * np.exp(0.3 * score), 8)
    df["score"] = score
    model = CovariateSpendModel(df, covariates=["score"]).fit(method="map")
    assert model.path == "rows"
    s = model.coefficient_summary()
    assert s["mean_per_unit"].iloc[0] == pytest.approx(0.3, abs=0.05)


def test_bad_input_is_refused_with_a_clear_message():
    df = _channels(300, 9)
    bad = df.copy()
    bad.loc[bad.index[bad["frequency"] > 0][0], "channel"] = np.nan
    with pytest.raises(DataValidationError, match="channel"):
        CovariateSpendModel(bad, covariates=["channel"])
    const = df.assign(flat=1.0)
    with pytest.raises(DataValidationError, match="flat"):
        CovariateSpendModel(const, covariates=["flat"])
    # constant among the repeat buyers (who inform delta), whatever the one-time buyers say
    rep = df.assign(v=np.where(df["frequency"] > 0, 2.0, 5.0))
    with pytest.raises(DataValidationError, match="'v'"):
        CovariateSpendModel(rep, covariates=["v"])
    once = df.copy()
    once.loc[once.index[once["frequency"] == 0][:3], "channel"] = "phone"
    with pytest.raises(DataValidationError, match="only in one-time buyers.*'phone'"):
        CovariateSpendModel(once, covariates=["channel"])
    zero = df.copy()
    who = zero.index[zero["frequency"] > 0][4]
    zero.loc[who, "monetary_value"] = 0.0
    with pytest.raises(DataValidationError, match=rf"is 0 for 1 repeat buyers \({who}"):
        CovariateSpendModel(zero, covariates=["channel"])
    with pytest.raises(DataValidationError, match="no one made a repeat purchase"):
        CovariateSpendModel(df.assign(frequency=0.0), covariates=["channel"])
    with pytest.raises(ValueError, match="one row per customer"):
        CovariateSpendModel(df.assign(customers=2), covariates=["channel"])
    with pytest.raises(ValueError, match="categorical covariates only"):
        CovariateSpendModel(df.assign(v=np.arange(len(df), dtype=float)), covariates=["v"], path="cells")


def test_a_cell_without_repeat_buyers_adds_no_term_and_gets_its_spend_from_the_coefficients():
    df = _channels(600, 10)
    df["tier"] = np.where(np.arange(len(df)) % 2 == 0, "gold", "basic")
    # web & gold customers all buy once: their cell has no spend data
    wg = (df["channel"] == "web") & (df["tier"] == "gold")
    df.loc[wg, ["frequency", "monetary_value"]] = 0.0
    model = CovariateSpendModel(df, covariates=["channel", "tier"])
    assert model.n_cells == 4
    theta = {"p": P, "q": Q, "gamma": G, "delta": np.array([0.2, 0.1])}
    keep = df["frequency"].to_numpy() > 0
    z = model.design.transform(df)[keep]
    ref = _ref_loglik(P, Q, G * np.exp(z @ theta["delta"]), df["frequency"].to_numpy()[keep],
                      df["monetary_value"].to_numpy()[keep]).sum()
    assert _loglik_fn(model.model)(theta) == pytest.approx(ref, rel=1e-12)
    model.fit(method="map")
    got = model.expected_spend()[wg]
    p, q, g, d = (model.map_[k] for k in ("p", "q", "gamma", "delta"))
    np.testing.assert_allclose(got, p * g * np.exp(d.sum()) / (q - 1), rtol=1e-12)


@pytest.mark.slow
def test_nuts_posterior_covers_the_spend_effect():
    ratio = 1.5
    df = _channels(3000, 11, ratio)
    for path in ("cells", "rows"):
        model = CovariateSpendModel(df, covariates=["channel"], path=path).fit(draws=300, tune=300, chains=2, random_seed=1)
        s = model.coefficient_summary()
        assert s["hdi_low"].iloc[0] < np.log(ratio) < s["hdi_high"].iloc[0] and s["r_hat"].iloc[0] < 1.05
        assert model.cell_draws(100).n == 100
        assert model.expected_spend(draws=100).notna().all()


def test_the_guide_spend_example_prints_the_figures_it_quotes(capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "covariates.md").read_text(encoding="utf-8")
    section = text.split("## Spend covariates", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/guide/covariates.md", "exec"), {})
    out = capsys.readouterr().out
    for figure in FIGURES:
        assert figure in out and figure in section


FIGURES = ("6033", "1967", "0.409", "5.937", "4.177", "15.88", "29.58", "44.86", "29.67", "44.67")
