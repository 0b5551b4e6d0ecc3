"""Prior and posterior predictive simulation (kernels and the models' ArviZ groups).

The replicate kernels are compared, within Monte Carlo error, with closed forms:
Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2),
eq. (8) (P(X(t) = n)), eq. (9) (E[X(t)]), eq. (10) (conditional expectation) and the
conditional pmf P(Y(t) = n | x, t_x, T) of :mod:`clvbayes.kernels.bgnbd_predict`; with the
event-by-event simulator of :mod:`clvbayes.kernels.simulate` (a different algorithm for the
same process, used for the recency distribution); and for Gamma-Gamma (FHL 2005, "RFM and
CLV", JMR 42(4)) with the population mean p γ / (q - 1) and the exact law of the mean spend
of x transactions, x m / (γ + x m) ~ Beta(p x, q) (from f(m | p, q, γ, x) of the paper's
appendix). Every simulation is seeded, so the tests are deterministic.
"""

from __future__ import annotations

import math

import arviz as az
import matplotlib
import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import clvbayes
from clvbayes.kernels.bgnbd_predict import (
    bgnbd_conditional_pmf,
    bgnbd_expected_purchases,
    bgnbd_pmf,
    conditional_expected_purchases_one,
    expected_purchases_one,
)
# The generic drivers' own binding is BG/NBD's cores (every family is a rebuild of them).
from clvbayes.kernels.drivers import calibration_replicates as bgnbd_calibration_replicates
from clvbayes.kernels.drivers import holdout_replicates as bgnbd_holdout_replicates
from clvbayes.kernels.predictive import INT32_MAX, gg_mean_spend_replicates
from clvbayes.kernels.simulate import SIM_BLOCK, simulate_population
from clvbayes.models.priors import Prior

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BG_CDNOW = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)  # FHL 2005, Table 1 (CDNOW MLE)
GG_CDNOW = dict(p=6.25, q=3.74, gamma=15.44)  # FHL 2005 "RFM and CLV", CDNOW estimates
Z = 5.0  # z-score bound of the Monte Carlo mean checks
P_MIN = 1e-4  # smallest accepted p-value of the distribution tests
N_MC = 20_000


def _bg(params: dict) -> tuple[float, float, float, float]:
    """(r, alpha, a, b) in the kernels' order (hypothesis dictionaries are unordered)."""
    return tuple(params[k] for k in ("r", "alpha", "a", "b"))


def _rep(value: float, n: int) -> np.ndarray:
    return np.full(n, float(value))


def _chisq_pvalue(samples: np.ndarray, probs_fn, min_expected: float = 5.0) -> float:
    """Chi-square goodness of fit of integer samples to a pmf; bins 0..K-1 and a tail bin ≥ K.

    ``probs_fn(n)`` returns P(N = n) for an int64 array n. K is the largest count such that
    every bin, the tail included, expects at least ``min_expected`` samples.
    """
    n = samples.size
    kmax = int(samples.max()) + 2
    probs = probs_fn(np.arange(kmax, dtype=np.int64))
    k = 1
    while k < kmax and probs[k] * n >= min_expected and (1.0 - probs[: k + 1].sum()) * n >= min_expected:
        k += 1
    obs = np.bincount(np.minimum(samples, k), minlength=k + 1)[: k + 1].astype(float)
    exp = np.append(probs[:k], max(1.0 - probs[:k].sum(), 0.0)) * n
    if exp[-1] < min_expected:  # no tail to speak of: fold it into the last bin
        obs[-2] += obs[-1]
        exp[-2] += exp[-1]
        obs, exp = obs[:-1], exp[:-1]
    if obs.size < 2:  # (almost) all mass at 0: test the number of non-zero samples instead
        return float(stats.binomtest(int((samples > 0).sum()), n, max(1.0 - probs[0], 0.0)).pvalue)
    exp *= n / exp.sum()
    return float(stats.chisquare(obs, exp).pvalue)


bg_params = st.fixed_dictionaries(
    {
        "r": st.floats(0.1, 5.0),
        "alpha": st.floats(0.5, 50.0),
        "a": st.floats(0.2, 5.0),
        "b": st.floats(0.5, 20.0),
    }
)


# ------------------------------------------------------------------ calibration replicates


def _calibration(params: dict, T: float, n: int = N_MC, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """n replicates of one customer of age T: one draw, n identical customers (many blocks)."""
    args = [_rep(v, 1) for v in _bg(params)]
    x, t_x = bgnbd_calibration_replicates(*args, _rep(T, n), seed)
    return x[0], t_x[0]


@settings(max_examples=8, deadline=None)
@given(params=bg_params, T=st.floats(1.0, 100.0))
def test_calibration_mean_matches_eq9(params, T):
    x, _ = _calibration(params, T)
    expected = expected_purchases_one(*_bg(params), T)
    assert abs(x.mean() - expected) <= Z * x.std() / math.sqrt(x.size) + 1e-12, (x.mean(), expected)


@settings(max_examples=6, deadline=None)
@given(params=bg_params, T=st.floats(1.0, 100.0))
def test_calibration_pmf_chi_square_eq8(params, T):
    x, _ = _calibration(params, T, seed=7)
    r, alpha, a, b = _bg(params)
    assert _chisq_pvalue(x, lambda n: bgnbd_pmf(r, alpha, a, b, T, n)) > P_MIN


def test_calibration_pmf_cdnow_parameters():
    x, t_x = _calibration(BG_CDNOW, 38.86, n=50_000, seed=3)  # T = 38.86 weeks, FHL's sample
    assert _chisq_pvalue(x, lambda n: bgnbd_pmf(*_bg(BG_CDNOW), 38.86, n)) > P_MIN
    assert x.dtype == np.int32 and t_x.dtype == np.float64
    assert ((t_x == 0) == (x == 0)).all() and (t_x <= 38.86).all()


@pytest.mark.parametrize(
    "params, T",
    [
        (dict(r=2.0, alpha=1.0, a=0.05, b=1.0), 50.0),  # P(N > 32) ≈ 0.84: the continuation
        (dict(r=1.0, alpha=0.05, a=0.5, b=0.5), 10.0),  # ~200 arrivals, search and continuation
        (dict(r=3.0, alpha=1.0, a=40.0, b=2.0), 5.0),  # drops at once: search ends at n = 1
    ],
)
def test_calibration_long_searches_match_eq8_eq9(params, T):
    """Parameters where the dropout search hits its 32-step limit (or never gets going)."""
    x, _ = _calibration(params, T, seed=21)
    expected = expected_purchases_one(*_bg(params), T)
    assert abs(x.mean() - expected) <= Z * x.std() / math.sqrt(x.size), (x.mean(), expected)
    assert _chisq_pvalue(x, lambda n: bgnbd_pmf(*_bg(params), T, n)) > P_MIN


@pytest.mark.parametrize(
    "params", [BG_CDNOW, dict(r=2.5, alpha=3.0, a=2.2, b=6.0), dict(r=2.0, alpha=1.0, a=0.1, b=1.0)]
)
def test_calibration_matches_event_simulator(params):
    """Same process, two algorithms: O(1) min(Poisson, Geometric) + order statistic here,
    the event-by-event loop of kernels.simulate there. Two-sample tests on x and on t_x."""
    T = 30.0
    x, t_x = _calibration(params, T, n=N_MC, seed=11)
    nan = math.nan
    ref = simulate_population(*_bg(params), _rep(T, N_MC), nan, nan, nan, False, 0.0, 12)
    x_ref, tx_ref = ref[0], ref[1]
    top = int(np.quantile(np.concatenate([x, x_ref]), 0.99))
    table = np.array([np.bincount(np.minimum(v, top), minlength=top + 1) for v in (x, x_ref)])
    table = table[:, table.sum(axis=0) > 0]
    assert stats.chi2_contingency(table).pvalue > P_MIN
    assert stats.ks_2samp(t_x[x > 0], tx_ref[x_ref > 0]).pvalue > P_MIN
    # recency given exactly one repeat purchase: its law depends on λ, p and T jointly
    assert stats.ks_2samp(t_x[x == 1], tx_ref[x_ref == 1]).pvalue > P_MIN


# ---------------------------------------------------------------------- holdout replicates


def _holdout(params: dict, x: float, t_x: float, T: float, t: float, n: int = N_MC, seed: int = 2):
    args = [_rep(v, 1) for v in _bg(params)]
    out = bgnbd_holdout_replicates(*args, _rep(x, n), _rep(t_x, n), _rep(T, n), t, seed)
    return out[0]


histories = st.tuples(st.integers(0, 30), st.floats(0.0, 1.0), st.floats(1.0, 100.0)).map(
    lambda h: (float(h[0]), h[1] * h[2] if h[0] > 0 else 0.0, h[2])
)


@settings(max_examples=8, deadline=None)
@given(params=bg_params, history=histories, t=st.floats(1.0, 80.0))
def test_holdout_mean_matches_eq10(params, history, t):
    x, t_x, T = history
    y = _holdout(params, x, t_x, T, t)
    expected = conditional_expected_purchases_one(*_bg(params), x, t_x, T, t)
    # For a count y >= 0, Var y = E[y^2] - E[y]^2 >= E[y] (1 - E[y]): the floor that keeps a
    # rare-event mean (one purchase in 20,000 replicates against 7.3 expected) from an sd the
    # sample underestimates.
    sd = max(y.std(), math.sqrt(max(expected * (1.0 - expected), 0.0)), 1.0 / math.sqrt(y.size))
    assert abs(y.mean() - expected) <= Z * sd / math.sqrt(y.size), (y.mean(), expected)


@settings(max_examples=6, deadline=None)
@given(params=bg_params, history=histories, t=st.floats(1.0, 80.0))
def test_holdout_pmf_chi_square(params, history, t):
    x, t_x, T = history
    y = _holdout(params, x, t_x, T, t, seed=5)

    def pmf(n):
        one = np.array([x]), np.array([t_x]), np.array([T])
        return np.array([bgnbd_conditional_pmf(*_bg(params), *one, t, int(k))[0] for k in n])

    assert _chisq_pvalue(y, pmf) > P_MIN


def test_holdout_zero_horizon_and_dead_customers():
    assert (_holdout(BG_CDNOW, 3.0, 10.0, 38.0, 0.0) == 0).all()
    # P(alive) is tiny for a frequent buyer who stopped long ago: almost all replicates are 0
    y = _holdout(BG_CDNOW, 20.0, 1.0, 38.0, 39.0)
    assert (y == 0).mean() > 0.99


# ---------------------------------------------------------------------- Gamma-Gamma


@settings(max_examples=8, deadline=None)
@given(
    p=st.floats(0.5, 10.0), q=st.floats(2.5, 10.0), gamma=st.floats(0.1, 100.0), x=st.integers(1, 20)
)
def test_gamma_gamma_mean_and_law(p, q, gamma, x):
    m = gg_mean_spend_replicates(_rep(p, 1), _rep(q, 1), _rep(gamma, 1), _rep(x, N_MC), 9)[0]
    assert abs(m.mean() - p * gamma / (q - 1)) <= Z * m.std() / math.sqrt(m.size)
    u = x * m / (gamma + x * m)
    assert stats.kstest(u, stats.beta(p * x, q).cdf).pvalue > P_MIN


def test_gamma_gamma_cdnow_mean_and_zero_frequency():
    x = np.array([0.0, 1.0, 5.0])
    m = gg_mean_spend_replicates(*(_rep(v, 4000) for v in GG_CDNOW.values()), x, 4)
    assert np.isnan(m[:, 0]).all()
    mean = GG_CDNOW["p"] * GG_CDNOW["gamma"] / (GG_CDNOW["q"] - 1)  # 35.22 (FHL 2005)
    for col in (1, 2):
        assert abs(m[:, col].mean() - mean) <= Z * m[:, col].std() / math.sqrt(4000)


# ---------------------------------------------------------------------- range, determinism


def test_extreme_parameters_stay_in_range():
    grid = np.array([1e-4, 1e-2, 1.0, 1e2, 1e4])
    mesh = np.stack(np.meshgrid(grid, grid, grid, grid, indexing="ij"), -1).reshape(-1, 4)
    r, alpha, a, b = (np.ascontiguousarray(mesh[:, k]) for k in range(4))
    T = np.array([1e-3, 1.0, 1e4])
    x, t_x = bgnbd_calibration_replicates(r, alpha, a, b, T, 1)
    assert (x >= 0).all() and (x <= INT32_MAX).all()
    assert np.isfinite(t_x).all() and (t_x >= 0).all() and (t_x <= T).all()
    assert ((t_x > 0) == (x > 0)).all()
    # λT up to 1e12 with p ~ 0 never dropping: the count is capped, not wrapped around
    assert x.max() == INT32_MAX
    hist = np.array([0.0, 5.0, 1e4]), np.array([0.0, 0.5, 9e3]), np.array([1.0, 1.0, 1e4])
    y = bgnbd_holdout_replicates(r, alpha, a, b, *hist, 1e4, 2)
    assert (y >= 0).all() and y.dtype == np.int32
    g3 = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    m = gg_mean_spend_replicates(*(np.ascontiguousarray(g3[:, k]) for k in range(3)), np.array([1.0, 1e4]), 3)
    assert not np.isnan(m).any() and (m >= 0).all()


def _all_kernels(seed: int, n: int = 2 * SIM_BLOCK + 17, d: int = 5):
    rng = np.random.default_rng(0)
    par = [np.ascontiguousarray(v * np.exp(0.3 * rng.standard_normal(d))) for v in _bg(BG_CDNOW)]
    T = rng.uniform(1.0, 50.0, n)
    x = rng.integers(0, 10, n).astype(float)
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    gg = [np.ascontiguousarray(v * np.exp(0.1 * rng.standard_normal(d))) for v in GG_CDNOW.values()]
    return (
        *bgnbd_calibration_replicates(*par, T, seed),
        bgnbd_holdout_replicates(*par, x, t_x, T, 20.0, seed),
        gg_mean_spend_replicates(*gg, x, seed),
    )


def test_same_seed_same_arrays_other_seed_other_arrays():
    first, again, other = _all_kernels(42), _all_kernels(42), _all_kernels(43)
    for u, v, w in zip(first, again, other, strict=True):
        np.testing.assert_array_equal(u, v)
        assert not np.array_equal(u, w)


def test_identical_for_any_thread_count():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 Numba threads")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = _all_kernels(7)
        numba.set_num_threads(2)
        parallel = _all_kernels(7)
    finally:
        numba.set_num_threads(before)
    for u, v in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(u, v)


def test_blocks_draw_different_numbers():
    """Identical parameters in every draw and one T for all: no two blocks may repeat a stream."""
    par = [_rep(v, 3) for v in _bg(dict(r=3.0, alpha=1.0, a=1.0, b=20.0))]
    x, _ = bgnbd_calibration_replicates(*par, _rep(20.0, 3 * SIM_BLOCK), 5)
    blocks = x.reshape(3 * 3, SIM_BLOCK)
    for i in range(len(blocks)):
        for j in range(i):
            assert not np.array_equal(blocks[i], blocks[j]), (i, j)


def test_replicates_of_a_draw_do_not_depend_on_the_number_of_draws():
    """Block seeds depend on (draw, customer block) only: a prefix of the draws reproduces."""
    par = [_rep(v, 6) for v in _bg(BG_CDNOW)]
    T = np.linspace(1.0, 40.0, SIM_BLOCK + 5)
    full, _ = bgnbd_calibration_replicates(*par, T, 3)
    head, _ = bgnbd_calibration_replicates(*(p[:2] for p in par), T, 3)
    np.testing.assert_array_equal(full[:2], head)


# ---------------------------------------------------------------------- model layer


@pytest.fixture(scope="module")
def split() -> pd.DataFrame:
    transactions = clvbayes.datasets.load_cdnow_sample()
    return clvbayes.calibration_holdout_split(
        transactions, calibration_end="1997-09-30", observation_end="1998-06-30"
    )


def _fake_posterior(values: dict, chains: int = 2, draws: int = 40, spread: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    post = {k: v * np.exp(spread * rng.standard_normal((chains, draws))) for k, v in values.items()}
    return az.from_dict(posterior=post)


@pytest.fixture
def bg_model(split):
    model = clvbayes.BetaGeoModel(split)
    model.idata_ = _fake_posterior(BG_CDNOW)
    return model


def test_posterior_predictive_groups_dims_and_observed(bg_model, split):
    horizon = float(split["duration_holdout"].iloc[0])  # 39 weeks
    idata = bg_model.sample_posterior_predictive(horizon, random_seed=1)
    assert idata is bg_model.idata_
    assert {"posterior", "posterior_predictive", "observed_data"} <= set(idata.groups())
    pp, obs = idata.posterior_predictive, idata.observed_data
    assert set(pp.data_vars) == {"frequency", "recency", "frequency_holdout"}
    assert set(obs.data_vars) == {"frequency", "recency", "frequency_holdout"}
    for name in pp.data_vars:
        assert pp[name].dims == ("chain", "draw", "customer_id")
    assert pp.sizes == {"chain": 2, "draw": 40, "customer_id": len(split)}
    assert pp["frequency"].dtype == np.int32 and pp["frequency_holdout"].dtype == np.int32
    np.testing.assert_array_equal(pp["customer_id"], split.index.to_numpy())
    np.testing.assert_array_equal(obs["frequency"], split["frequency"].to_numpy())
    np.testing.assert_array_equal(obs["frequency_holdout"], split["frequency_holdout"].to_numpy())
    assert (pp["recency"] <= split["T"].to_numpy()).all()
    # around the CDNOW MLE the replicated totals straddle the observed calibration total and
    # the expected holdout total (FHL 2005 eq. 10 summed over customers)
    total = pp["frequency"].sum("customer_id").to_numpy()
    assert np.quantile(total, 0.01) < split["frequency"].sum() < np.quantile(total, 0.99)
    model = clvbayes.BetaGeoModel.from_params(BG_CDNOW, data=split)
    expected = model.expected_purchases(horizon).sum()
    hold = pp["frequency_holdout"].sum("customer_id").to_numpy()
    assert abs(hold.mean() - expected) < 0.1 * expected


def test_posterior_predictive_seed_subset_and_extend(bg_model):
    before = set(bg_model.idata_.groups())
    a = bg_model.sample_posterior_predictive(n_draws=7, random_seed=5, extend_idata=False)
    assert set(bg_model.idata_.groups()) == before  # not extended
    assert set(a.groups()) == {"posterior_predictive", "observed_data"}
    b = bg_model.sample_posterior_predictive(n_draws=7, random_seed=5, extend_idata=False)
    np.testing.assert_array_equal(a.posterior_predictive["frequency"], b.posterior_predictive["frequency"])
    draws = a.posterior_predictive["draw"].to_numpy()
    assert draws.size == 7 and (np.diff(draws) > 0).all() and set(draws) <= set(range(40))
    assert a.posterior_predictive.sizes["chain"] == 2
    # extending twice replaces the group (no holdout variable left from a previous call)
    bg_model.sample_posterior_predictive(39.0, random_seed=1)
    idata = bg_model.sample_posterior_predictive(random_seed=1)
    assert "frequency_holdout" not in idata.posterior_predictive
    assert idata.posterior_predictive.sizes["draw"] == 40


def test_subset_replicates_line_up_with_their_draws(split):
    """Half the draws buy nothing (tiny r/alpha): their replicates must be all zero."""
    n_chain, n_draw = 2, 30
    quiet = np.arange(n_draw) % 2 == 0
    post = {k: np.full((n_chain, n_draw), v) for k, v in BG_CDNOW.items()}
    post["r"][:, quiet] = 1e-6
    model = clvbayes.BetaGeoModel(split)
    model.idata_ = az.from_dict(posterior=post)
    pp = model.sample_posterior_predictive(39.0, n_draws=11, random_seed=2).posterior_predictive
    per_draw = pp["frequency"].sum(("chain", "customer_id")).to_numpy()
    per_draw_hold = pp["frequency_holdout"].sum(("chain", "customer_id")).to_numpy()
    is_quiet = quiet[pp["draw"].to_numpy()]
    assert is_quiet.any() and (~is_quiet).any()
    assert (per_draw[is_quiet] == 0).all() and (per_draw[~is_quiet] > 100).all()
    # holdout replicates continue the history: the quiet draws' rates are updated by it
    assert (per_draw_hold[~is_quiet] > 100).all()


def test_plot_ppc_draws_lines(bg_model, split):
    horizon = float(split["duration_holdout"].iloc[0])
    idata = bg_model.sample_posterior_predictive(horizon, n_draws=10, random_seed=3)
    try:
        for var in ("frequency", "frequency_holdout"):
            ax = np.atleast_1d(az.plot_ppc(idata, var_names=[var], num_pp_samples=15, random_seed=0))[0]
            assert len(ax.get_lines()) >= 15  # one per replicate + observed + mean
        prior = bg_model.sample_prior_predictive(30, random_seed=1)
        ax = np.atleast_1d(az.plot_ppc(prior, group="prior", var_names=["frequency"], num_pp_samples=10))[0]
        assert len(ax.get_lines()) >= 10
    finally:
        plt.close("all")


def test_observed_holdout_left_out_when_horizon_differs(bg_model):
    with pytest.warns(UserWarning, match="duration_holdout"):
        idata = bg_model.sample_posterior_predictive(10.0, random_seed=1, extend_idata=False)
    assert "frequency_holdout" in idata.posterior_predictive
    assert "frequency_holdout" not in idata.observed_data


def test_prior_predictive_groups_and_prior_draws(split):
    model = clvbayes.BetaGeoModel(split)
    idata = model.sample_prior_predictive(400, random_seed=4)
    assert set(idata.groups()) == {"prior", "prior_predictive", "observed_data"}
    assert idata.prior_predictive["frequency"].dims == ("chain", "draw", "customer_id")
    assert idata.prior_predictive.sizes == {"chain": 1, "draw": 400, "customer_id": len(split)}
    again = model.sample_prior_predictive(400, random_seed=4)
    np.testing.assert_array_equal(idata.prior_predictive["frequency"], again.prior_predictive["frequency"])
    # the default priors are half-normal: E = σ sqrt(2/π), σ_alpha = 5 · mean(T) (priors.py)
    sigmas = {"r": 5.0, "alpha": 5.0 * split["T"].mean(), "a": 5.0, "b": 20.0}
    for name, sigma in sigmas.items():
        draws = idata.prior[name].to_numpy().ravel()
        sd = sigma * math.sqrt(1 - 2 / math.pi)
        assert abs(draws.mean() - sigma * math.sqrt(2 / math.pi)) < Z * sd / math.sqrt(draws.size), name


def test_prior_predictive_follows_the_prior_draws(split):
    """Concentrated priors: replicate totals per draw match Σ_i E[X(T_i) | θ_draw] (eq. 9)."""
    priors = {k: Prior("LogNormal", mu=math.log(v), sigma=0.2) for k, v in BG_CDNOW.items()}
    model = clvbayes.BetaGeoModel(split, priors=priors)
    idata = model.sample_prior_predictive(60, random_seed=8)
    T = np.ascontiguousarray(split["T"].to_numpy(dtype=float))
    totals = idata.prior_predictive["frequency"].sum("customer_id").to_numpy().ravel()
    theta = np.stack([idata.prior[k].to_numpy().ravel() for k in ("r", "alpha", "a", "b")], axis=1)
    expected = np.array([bgnbd_expected_purchases(*th, T).sum() for th in theta])
    # per draw the total is a sum of 2357 independent counts: sd ≈ sqrt(Σ var) ≲ 4 sqrt(expected)
    z = (totals - expected) / (4.0 * np.sqrt(expected))
    assert np.abs(z).max() < Z and abs(z.mean()) < Z / math.sqrt(60)


# ArviZ 0.23's KDE plot calls a matplotlib helper deprecated in matplotlib 3.11 (not ours)
@pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")
def test_gamma_gamma_posterior_and_prior_predictive(split):
    model = clvbayes.GammaGammaModel(split)
    model.idata_ = _fake_posterior(GG_CDNOW, draws=30)
    idata = model.sample_posterior_predictive(random_seed=2)
    pp, obs = idata.posterior_predictive, idata.observed_data
    repeat = split.loc[split["frequency"] > 0]
    assert pp["monetary_value"].dims == ("chain", "draw", "customer_id")
    assert pp.sizes == {"chain": 2, "draw": 30, "customer_id": len(repeat)}
    np.testing.assert_array_equal(obs["customer_id"], repeat.index.to_numpy())
    np.testing.assert_allclose(obs["monetary_value"], repeat["monetary_value"].to_numpy())
    assert np.isfinite(pp["monetary_value"]).all() and (pp["monetary_value"] > 0).all()
    mean = GG_CDNOW["p"] * GG_CDNOW["gamma"] / (GG_CDNOW["q"] - 1)
    assert abs(float(pp["monetary_value"].mean()) - mean) < 0.05 * mean
    again = model.sample_posterior_predictive(random_seed=2, extend_idata=False)
    np.testing.assert_array_equal(pp["monetary_value"], again.posterior_predictive["monetary_value"])
    prior = model.sample_prior_predictive(50, random_seed=2)
    assert set(prior.groups()) == {"prior", "prior_predictive", "observed_data"}
    assert set(prior.prior.data_vars) == {"p", "q", "gamma"}
    assert prior.prior_predictive.sizes == {"chain": 1, "draw": 50, "customer_id": len(repeat)}
    try:
        ax = np.atleast_1d(az.plot_ppc(idata, var_names=["monetary_value"], num_pp_samples=10))[0]
        assert len(ax.get_lines()) >= 10
    finally:
        plt.close("all")


def test_input_errors(split):
    for cls, params in ((clvbayes.BetaGeoModel, BG_CDNOW), (clvbayes.GammaGammaModel, GG_CDNOW)):
        unfitted = cls(split)
        with pytest.raises(RuntimeError, match=r"no posterior draws: call fit\(\)"):
            unfitted.sample_posterior_predictive()
        point = cls.from_params(params, data=split)  # parameters but no posterior
        with pytest.raises(RuntimeError, match=r"call fit\(\)"):
            point.sample_posterior_predictive()
        with pytest.raises(ValueError, match="No customer data"):
            cls().sample_prior_predictive(10)
        for bad in (0, -3, 2.5, True):
            with pytest.raises(ValueError, match="samples"):
                unfitted.sample_prior_predictive(bad)
    model = clvbayes.BetaGeoModel(split)
    model.idata_ = _fake_posterior(BG_CDNOW)
    for bad in (-1.0, math.inf, "39"):
        with pytest.raises(ValueError, match="horizon"):
            model.sample_posterior_predictive(bad)
    with pytest.raises(ValueError, match="n_draws"):
        model.sample_posterior_predictive(n_draws=0)
    model.idata_ = az.from_dict(posterior={"r": np.ones((1, 5))})
    with pytest.raises(ValueError, match="lacks parameters"):
        model.sample_posterior_predictive()


def test_real_fit_posterior_predictive(split):
    """One short NUTS fit end to end: replicates per draw and the PPC plot."""
    model = clvbayes.BetaGeoModel(split).fit(
        chains=2, draws=40, tune=40, sampler="pymc", random_seed=3, progressbar=False
    )  # PyMC NUTS: ~5 s here, nutpie ~30 s with its compilation
    horizon = float(split["duration_holdout"].iloc[0])
    idata = model.sample_posterior_predictive(horizon, random_seed=0)
    pp = idata.posterior_predictive
    assert pp.sizes == {"chain": 2, "draw": 40, "customer_id": len(split)}
    total = pp["frequency"].sum("customer_id").to_numpy()
    assert np.quantile(total, 0.005) < split["frequency"].sum() < np.quantile(total, 0.995)
    try:
        ax = np.atleast_1d(az.plot_ppc(idata, var_names=["frequency"], num_pp_samples=20))[0]
        assert len(ax.get_lines()) >= 20
    finally:
        plt.close("all")
