"""Population-level plots and their data for models with covariates: period transactions with
every customer at its own cell and age, the frequency/recency matrices of one covariate profile,
a customer's P(alive) history at its own cell; against independent references (FHL 2005 closed
forms written here, Monte Carlo for the expected counts) and the plain model bit for bit."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from scipy.special import betaln, gammaln  # noqa: E402

import clvbayes  # noqa: E402
from clvbayes import plotting  # noqa: E402
from clvbayes.data.validate import DataValidationError  # noqa: E402
from clvbayes.value.plotdata import (  # noqa: E402
    frequency_recency_grid,
    period_transactions,
    probability_alive_history,
    reference_profile,
)

BASE = {"r": 0.6, "alpha": 5.0, "a": 0.8, "b": 2.5}
# web: alpha / e^0.9 (buys 2.5x as often), a x e^0.6, b x e^-0.3 (drops out more)
COEF = {"gamma_purchase": np.array([0.9]), "gamma_a": np.array([0.6]), "gamma_b": np.array([-0.3])}


def _web() -> dict[str, float]:
    return {"r": BASE["r"], "alpha": BASE["alpha"] * np.exp(-0.9), "a": BASE["a"] * np.exp(0.6),
            "b": BASE["b"] * np.exp(-0.3)}


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    """600 customers, two channels (store the more frequent: the reference), ages 10 to 60."""
    rng = np.random.default_rng(5)
    T = rng.uniform(10.0, 60.0, 600).round(2)
    df = clvbayes.simulate_customers(**BASE, T=T, seed=3)
    df["channel"] = np.where(np.arange(len(df)) % 5 < 2, "web", "store")
    df.attrs["time_unit"] = "W"
    return df


def _cov(base: pd.DataFrame, coef: dict | None = None) -> clvbayes.CovariatePurchaseModel:
    m = clvbayes.CovariatePurchaseModel(base, purchase_covariates=["channel"], dropout_covariates=["channel"])
    m.map_ = {**{k: np.array(v) for k, v in BASE.items()}, **(COEF if coef is None else coef)}
    return m


def _posterior(values: dict[str, np.ndarray], dims: dict | None = None, coords: dict | None = None):
    return az.from_dict(posterior=values, dims=dims, coords=coords)


def _draws(seed: int, shape=(2, 60)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: v * np.exp(rng.normal(0.0, 0.05, shape)) for k, v in BASE.items()}


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


# -- closed forms (Fader, Hardie & Lee 2005, Marketing Science 24(2)) -------------------------------
def p_alive_fhl(r, alpha, a, b, x, t_x, T):
    """P(alive | x, t_x, T), FHL 2005 eq. (15) (note 021): 1 for x = 0."""
    x = np.asarray(x, dtype=float)
    odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
    return 1.0 / (1.0 + odds)


def pmf_fhl(r, alpha, a, b, t, x):
    """P(X(t) = x) of a new customer, FHL 2005 eq. (8)."""
    r, alpha, a, b, t = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r, alpha, a, b, t)))
    lg = gammaln(r + x) - gammaln(r) - gammaln(x + 1)
    first = np.exp(betaln(a, b + x) - betaln(a, b) + lg + r * np.log(alpha / (alpha + t)) + x * np.log(t / (alpha + t)))
    if x == 0:
        return first
    j = np.arange(x)[None, :]
    tail = np.exp(gammaln(r[:, None] + j) - gammaln(r[:, None]) - gammaln(j + 1)) * (t / (alpha + t))[:, None] ** j
    second = np.exp(betaln(a + 1, b + x - 1) - betaln(a, b)) * (1 - (alpha / (alpha + t)) ** r * tail.sum(axis=1))
    return first + second


# -- period transactions ------------------------------------------------------------------------------
def test_one_cell_is_the_plain_model_bit_for_bit(base):
    """A covariate model without covariates (one cell) and the plain BG/NBD at the same
    posterior give the same replicated counts, bit for bit; and at the same point estimate."""
    one = clvbayes.CovariatePurchaseModel(base)
    assert one.n_cells == 1
    plain = clvbayes.BetaGeoModel(base)
    one.idata_ = _posterior(_draws(1))
    plain.idata_ = _posterior(_draws(1))
    a = period_transactions(one, n_draws=None, random_seed=4)
    b = period_transactions(plain, n_draws=None, random_seed=4)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a.attrs == b.attrs and a.attrs["n_draws"] == 120
    one.idata_ = None
    one.map_ = {k: np.array(v) for k, v in BASE.items()}
    point = clvbayes.BetaGeoModel.from_params(BASE, data=base)
    pd.testing.assert_frame_equal(period_transactions(one, n_draws=300, random_seed=2),
                                  period_transactions(point, n_draws=300, random_seed=2), check_exact=True)


def test_zero_coefficients_on_two_cells_are_the_plain_model_bit_for_bit(base):
    """Seeds go by blocks of customers, not by cell: two cells at the same parameters replicate
    exactly as the plain model."""
    zero = _cov(base, {k: np.zeros(1) for k in COEF})
    assert zero.n_cells == 2
    point = clvbayes.BetaGeoModel.from_params(BASE, data=base)
    pd.testing.assert_frame_equal(period_transactions(zero, n_draws=200, random_seed=8),
                                  period_transactions(point, n_draws=200, random_seed=8), check_exact=True)


def test_expected_counts_use_each_customers_cell_and_age(base):
    """Monte Carlo: the mean replicated count of customers with k repeat purchases is
    sum_i P(X(T_i) = k | own cell's parameters) (FHL eq. 8) within 4 standard errors; the
    counts of one population (the reference cell for everyone) are far outside."""
    m = _cov(base)
    R = 3000
    table = period_transactions(m, max_frequency=4, n_draws=R, random_seed=11)
    web = (base["channel"] == "web").to_numpy()
    T = base["T"].to_numpy()
    own = {k: np.where(web, _web()[k], BASE[k]) for k in BASE}
    probs = np.column_stack([pmf_fhl(own["r"], own["alpha"], own["a"], own["b"], T, k) for k in range(4)])
    probs = np.column_stack([probs, 1.0 - probs.sum(axis=1)])
    expected = probs.sum(axis=0)
    se = np.sqrt((probs * (1 - probs)).sum(axis=0) / R)
    got = table["mean"].to_numpy()
    assert np.all(np.abs(got - expected) < 4 * se), (got, expected, se)
    assert table.attrs["source"] == "point" and table.attrs["n_draws"] == R
    # the reference cell for every customer is a different prediction: the test can tell
    ref = np.column_stack([pmf_fhl(BASE["r"], BASE["alpha"], BASE["a"], BASE["b"], T, k) for k in range(4)])
    assert np.max(np.abs(got[:4] - ref.sum(axis=0)) / se[:4]) > 20


def test_period_transactions_of_a_posterior_are_seeded_and_cover_the_draws(base):
    m = _cov(base)
    m.map_ = None
    post = _draws(2)
    rng = np.random.default_rng(0)
    post.update({k: v[None, None, :] + rng.normal(0.0, 0.05, (2, 60, 1)) for k, v in COEF.items()})
    m.idata_ = _posterior(post)
    a = period_transactions(m, n_draws=40, random_seed=3)
    pd.testing.assert_frame_equal(a, period_transactions(m, n_draws=40, random_seed=3), check_exact=True)
    assert a.attrs["source"] == "posterior" and a.attrs["n_draws"] == 40
    assert a["mean"].sum() == pytest.approx(len(base)) and (a["sd"] > 0).all()


def test_plot_period_transactions_draws_the_table(base):
    m = _cov(base)
    table = period_transactions(m, n_draws=100, random_seed=0)
    ax = plotting.plot_period_transactions(m, n_draws=100, random_seed=0)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    np.testing.assert_array_equal([p.get_height() for p in bars[0]], table["observed"].to_numpy())
    np.testing.assert_array_equal([p.get_height() for p in bars[1]], table["mean"].to_numpy())


# -- matrices of one profile -----------------------------------------------------------------------------
def test_grid_of_a_profile_is_the_closed_form_at_its_parameters(base):
    m = _cov(base)
    grid = frequency_recency_grid(m, "p_alive", T=40.0, max_frequency=6, profile={"channel": "web"})
    w = _web()
    ref = p_alive_fhl(w["r"], w["alpha"], w["a"], w["b"], grid["frequency"].to_numpy(),
                      np.where(grid["frequency"] > 0, grid["recency"], 0.0), 40.0)
    np.testing.assert_allclose(grid["mean"].to_numpy(), ref, rtol=1e-10)
    assert grid.attrs["profile"] == {"channel": "web"}
    store = frequency_recency_grid(m, "p_alive", T=40.0, max_frequency=6, profile={"channel": "store"})
    ref = p_alive_fhl(*(BASE[k] for k in ("r", "alpha", "a", "b")), store["frequency"].to_numpy(),
                      np.where(store["frequency"] > 0, store["recency"], 0.0), 40.0)
    np.testing.assert_allclose(store["mean"].to_numpy(), ref, rtol=1e-10)
    assert np.max(np.abs(store["mean"] - grid["mean"])) > 0.1


def test_grid_of_a_profile_is_the_plain_model_at_its_draws(base):
    """Posterior: expected purchases of the web profile are the plain model's with the web
    cell's draws (the same thinned grid)."""
    m = _cov(base)
    m.map_ = None
    post = _draws(3)
    post.update({k: np.broadcast_to(v, (2, 60, 1)).copy() for k, v in COEF.items()})
    m.idata_ = _posterior(post)
    grid = frequency_recency_grid(m, horizon=10.0, max_frequency=5, n_draws=50, profile={"channel": "web"})
    plain = clvbayes.BetaGeoModel(base)
    web = {"r": post["r"], "alpha": post["alpha"] * np.exp(-0.9), "a": post["a"] * np.exp(0.6),
           "b": post["b"] * np.exp(-0.3)}
    plain.idata_ = _posterior(web)
    ref = frequency_recency_grid(plain, horizon=10.0, max_frequency=5, n_draws=50)
    for col in ("mean", "sd", "lower", "upper"):
        np.testing.assert_allclose(grid[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12)


def test_a_covariate_model_needs_a_profile_and_a_plain_model_refuses_one(base):
    m = _cov(base)
    with pytest.raises(ValueError, match=r"profile=.*\['channel'\].*'channel': 'store'"):
        frequency_recency_grid(m)
    with pytest.raises(ValueError, match="profile has no value for"):
        frequency_recency_grid(m, profile={"country": "DE"})
    with pytest.raises(DataValidationError, match="levels the model was not fitted with"):
        frequency_recency_grid(m, profile={"channel": "phone"})
    plain = clvbayes.BetaGeoModel.from_params(BASE, data=base)
    with pytest.raises(ValueError, match="one population"):
        frequency_recency_grid(plain, profile={"channel": "web"})
    with pytest.raises(ValueError, match="profile="):
        probability_alive_history(m, [0.0, 2.0], 10.0)


def test_reference_profile(base):
    m = _cov(base)
    assert reference_profile(m) == {"channel": "store"}
    df = base.assign(score=np.linspace(-1.0, 3.0, len(base)))
    num = clvbayes.CovariatePurchaseModel(df, purchase_covariates=["channel", "score"])
    assert reference_profile(num) == {"channel": "store", "score": pytest.approx(1.0)}
    with pytest.raises(ValueError, match="needs a model with covariates"):
        reference_profile(clvbayes.BetaGeoModel(base))


def test_matrix_plots_of_a_profile(base):
    m = _cov(base)
    grid = frequency_recency_grid(m, "p_alive", max_frequency=6, profile={"channel": "web"})
    ax = plotting.plot_probability_alive_matrix(m, max_frequency=6, profile={"channel": "web"})
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)][0]
    values = grid.pivot(index="frequency", columns="recency", values="mean").to_numpy()
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(values.shape), values, rtol=0, atol=0)
    assert "channel = web" in ax.get_title()
    ax = plotting.plot_frequency_recency_matrix(m, max_frequency=6, profile={"channel": "store"})
    assert "channel = store" in ax.get_title()


# -- a customer's P(alive) history ---------------------------------------------------------------------
def test_history_of_a_customer_uses_its_own_cell(base):
    m = _cov(base)
    web_id = base.index[(base["channel"] == "web").to_numpy()][0]
    store_id = base.index[(base["channel"] == "store").to_numpy()][0]
    times = [0.0, 1.5, 4.0, 9.0]
    h = probability_alive_history(m, times, 20.0, customer=web_id)
    w = _web()
    ref = p_alive_fhl(w["r"], w["alpha"], w["a"], w["b"], h["frequency"].to_numpy(), h["recency"].to_numpy(),
                      h["time"].to_numpy())
    np.testing.assert_allclose(h["mean"].to_numpy(), ref, rtol=1e-10)
    pd.testing.assert_frame_equal(h, probability_alive_history(m, times, 20.0, customer=web_id), check_exact=True)
    by_profile = probability_alive_history(m, times, 20.0, profile={"channel": "web"})
    np.testing.assert_array_equal(h["mean"].to_numpy(), by_profile["mean"].to_numpy())
    other = probability_alive_history(m, times, 20.0, customer=store_id)
    assert np.max(np.abs(other["mean"].to_numpy() - h["mean"].to_numpy())) > 0.05
    with pytest.raises(ValueError, match="not a customer"):
        probability_alive_history(m, times, 20.0, customer=-1)
    with pytest.raises(ValueError, match="not both"):
        probability_alive_history(m, times, 20.0, customer=web_id, profile={"channel": "web"})
    ax = plotting.plot_probability_alive_history(m, times, 20.0, customer=web_id)
    assert f"customer {web_id} (channel = web)" in ax.get_title()
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), h["mean"].to_numpy())


# -- hierarchical model: the segment is part of the profile ------------------------------------------
def test_hierarchical_profile_and_customer_are_their_cells(base):
    df = base.assign(country=np.where(np.arange(len(base)) % 3 == 0, "LU", "DE"))
    h = clvbayes.HierarchicalPurchaseModel(df, segment="country", purchase_covariates=["channel"])
    rng = np.random.default_rng(9)
    post = {f"{k}_segment": v * np.exp(rng.normal(0.0, 0.1, (2, 30, 2))) for k, v in BASE.items()}
    post["gamma_purchase"] = np.full((2, 30, 1), 0.9)
    h.idata_ = _posterior(post, dims={f"{k}_segment": ["segment"] for k in BASE}, coords={"segment": ["DE", "LU"]})
    assert reference_profile(h) == {"channel": "store", "country": "DE"}
    cd = h.cell_draws()
    pos = np.flatnonzero((df["country"] == "LU").to_numpy() & (df["channel"] == "web").to_numpy())[0]
    mine = cd.for_cell(int(cd.cell[pos]))
    prof = h.parameters_for(pd.DataFrame({"channel": ["web"], "country": ["LU"]})).for_cell(0)
    for k in BASE:
        np.testing.assert_array_equal(prof.values[k], mine.values[k])
    np.testing.assert_allclose(prof.values["alpha"], post["alpha_segment"][..., 1].reshape(-1) * np.exp(-0.9),
                               rtol=1e-14)
    times = [0.0, 3.0, 7.0]
    a = probability_alive_history(h, times, 15.0, customer=df.index[pos])
    b = probability_alive_history(h, times, 15.0, profile={"channel": "web", "country": "LU"})
    np.testing.assert_array_equal(a["mean"].to_numpy(), b["mean"].to_numpy())
    with pytest.raises(ValueError, match=r"profile has no value for \['country'\]"):
        frequency_recency_grid(h, profile={"channel": "web"})
    with pytest.raises(ValueError, match="Unknown segments"):
        frequency_recency_grid(h, profile={"channel": "web", "country": "FR"})
    # period transactions: each customer at its (segment, channel) cell, seeded
    t = period_transactions(h, n_draws=20, random_seed=1)
    assert t["mean"].sum() == pytest.approx(len(df)) and t.attrs["source"] == "posterior"


def test_hierarchical_summary_and_convergence_cover_its_own_variables(base):
    """The hierarchical posterior has no plain ``r``, ``alpha``, ...: summary() and
    check_convergence() read the segment parameters, hyperparameters and coefficients."""
    df = base.assign(country=np.where(np.arange(len(base)) % 3 == 0, "LU", "DE"))
    h = clvbayes.HierarchicalPurchaseModel(df, segment="country", purchase_covariates=["channel"])
    rng = np.random.default_rng(4)
    post = {f"{k}_segment": v * np.exp(rng.normal(0.0, 0.1, (2, 50, 2))) for k, v in BASE.items()}
    post.update({f"{w}_{k}": rng.normal(0.0, 1.0, (2, 50)) for k in BASE for w in ("mu", "sigma")})
    post["gamma_purchase"] = rng.normal(0.9, 0.1, (2, 50, 1))
    post["r_segment"][1] += 1.0  # the chains disagree on r
    h.idata_ = az.from_dict(posterior=post, sample_stats={"diverging": np.zeros((2, 50), dtype=bool)},
                            dims={f"{k}_segment": ["segment"] for k in BASE}, coords={"segment": ["DE", "LU"]})
    table = h.summary()
    assert {"r_segment[DE]", "mu_alpha", "sigma_b", "gamma_purchase[channel[web]]"} <= set(table.index)
    problems = h.check_convergence(warn=False, ess_min=1.0, r_hat_max=1.2)
    assert problems and all(p.startswith("r_hat of r_segment[") for p in problems)
