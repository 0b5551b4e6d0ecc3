"""Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788).

Quick tests check the machinery on inputs whose answer is known: ranks and the chi-square
test against hand counts and scipy, a conjugate normal model whose exact posterior must
pass and deliberately wrong posteriors that must fail, and the clvbayes loop wired to fake
"fits" (no NUTS) that are calibrated or miscalibrated by construction. The slow tests run
real NUTS fits of both models on >= 100 data sets drawn from the prior.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import arviz as az
import clvbayes
import clvbayes.sbc as sbc_module
from clvbayes.models.priors import Prior
from clvbayes.sbc import (
    SBCWarning,
    rank_bin_sizes,
    rank_uniformity,
    sbc_rank,
    simulation_based_calibration,
)

T_GRID = np.tile(np.arange(1.0, 53.0), 6)  # 312 customers, ages 1..52 weeks, the same in every replicate


# -- ranks and the chi-square test ----------------------------------------------------------


def test_sbc_rank_counts_draws_below_the_truth():
    draws = np.array([3.0, 1.0, 4.0, 1.5, 9.0])
    assert sbc_rank(0.0, draws) == 0
    assert sbc_rank(1.2, draws) == 1
    assert sbc_rank(3.5, draws) == 3
    assert sbc_rank(100.0, draws) == 5


def test_sbc_rank_breaks_ties_uniformly():
    rng = np.random.default_rng(1)
    draws = np.array([0.0, 1.0, 1.0, 1.0, 2.0])  # true value tied with three draws: rank 1..4
    ranks = np.array([sbc_rank(1.0, draws, rng) for _ in range(4000)])
    counts = np.bincount(ranks, minlength=6)
    assert counts[0] == 0 and counts[5] == 0
    assert stats.chisquare(counts[1:5]).pvalue > 0.01


def test_sbc_rank_rejects_non_finite():
    with pytest.raises(ValueError):
        sbc_rank(1.0, np.array([1.0, np.nan]))
    with pytest.raises(ValueError):
        sbc_rank(np.inf, np.array([1.0]))


def test_rank_bin_sizes():
    assert rank_bin_sizes(99, 10).tolist() == [10] * 10
    sizes = rank_bin_sizes(100, 10)  # 101 rank values in 10 bins
    assert sizes.sum() == 101 and set(sizes.tolist()) == {10, 11}
    # direct count of floor(k B / (L + 1)) for every k
    direct = [sum(1 for k in range(8) if (k * 3) // 8 == j) for j in range(3)]
    assert rank_bin_sizes(7, 3).tolist() == direct == [3, 3, 2]


def test_rank_uniformity_on_known_inputs():
    L = 99
    exact = np.repeat(np.arange(L + 1), 2)  # every rank twice: perfectly uniform
    test = rank_uniformity(exact, L, 10)
    assert test.statistic == 0.0 and test.p_value == pytest.approx(1.0)
    assert test.counts.tolist() == [20] * 10 and test.dof == 9

    piled = np.zeros(200)  # every true value below all its draws: a posterior biased upward
    assert rank_uniformity(piled, L, 10).p_value < 1e-30

    # unequal bins (101 rank values in 10 bins): same as scipy's chisquare with the exact expectation
    rng = np.random.default_rng(7)
    ranks = rng.integers(0, 101, size=150)
    test = rank_uniformity(ranks, 100, 10)
    expected = 150 * rank_bin_sizes(100, 10) / 101
    ref = stats.chisquare(test.counts, expected)
    assert test.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert test.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert test.counts.sum() == 150

    nan_ignored = rank_uniformity(np.append(exact, np.nan), L, 10)
    assert nan_ignored.statistic == 0.0


@pytest.mark.parametrize("bad", [np.array([-1.0]), np.array([100.0]), np.array([2.5])])
def test_rank_uniformity_rejects_impossible_ranks(bad):
    with pytest.raises(ValueError):
        rank_uniformity(bad, 99, 10)


# -- a conjugate toy model: exact posterior passes, wrong posteriors fail --------------------


def _normal_toy_ranks(kind: str, replicates: int = 200, L: int = 99, n_obs: int = 10, seed: int = 3):
    """θ ~ N(0, 1), y_i ~ N(θ, 1): posterior N(Σy / (n + 1), 1 / (n + 1)) exactly."""
    rng = np.random.default_rng(seed)
    ranks = np.empty(replicates)
    for i in range(replicates):
        theta = rng.normal()
        y = rng.normal(theta, 1.0, size=n_obs)
        mean, sd = y.sum() / (n_obs + 1), np.sqrt(1.0 / (n_obs + 1))
        if kind == "exact":
            draws = rng.normal(mean, sd, size=L)
        elif kind == "shifted":  # biased by one posterior sd
            draws = rng.normal(mean + sd, sd, size=L)
        elif kind == "overconfident":  # half the posterior width
            draws = rng.normal(mean, 0.5 * sd, size=L)
        elif kind == "underconfident":  # twice the posterior width
            draws = rng.normal(mean, 2.0 * sd, size=L)
        elif kind == "prior":  # ignores the data: calibrated but useless (SBC's blind spot)
            draws = rng.normal(0.0, 1.0, size=L)
        ranks[i] = sbc_rank(theta, draws)
    return rank_uniformity(ranks, L, 20)


@pytest.mark.parametrize("kind", ["exact", "prior"])
def test_conjugate_toy_exact_posterior_is_uniform(kind):
    assert _normal_toy_ranks(kind).p_value > 0.01


@pytest.mark.parametrize("kind", ["shifted", "overconfident", "underconfident"])
def test_conjugate_toy_wrong_posterior_fails(kind):
    assert _normal_toy_ranks(kind).p_value < 0.01


# -- the clvbayes loop, with fake fits (no NUTS) ---------------------------------------------


def _halfnormal_draws(priors, names, shape, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        prior = priors[name]
        assert prior.distribution == "HalfNormal"
        out[name] = np.abs(rng.normal(0.0, prior.params["sigma"], size=shape))
    return out


class _FakeFitMixin:
    """Replaces NUTS: the 'posterior' is drawn from the prior, times ``scale``."""

    scale = 1.0
    calls: list = []

    def fit(self, method="nuts", *, chains, draws, tune, random_seed, progressbar, **kwargs):
        assert method == "nuts" and progressbar is False
        type(self).calls.append(
            {"data": self.data.copy(), "priors": self.priors_, "seed": random_seed, "tune": tune, "kwargs": kwargs}
        )
        post = _halfnormal_draws(self.priors_, self.param_names, (chains, draws), random_seed)
        post = {k: v * self.scale for k, v in post.items()}
        self.idata_ = az.from_dict(posterior=post, sample_stats={"diverging": np.zeros((chains, draws), bool)})
        return self


class PriorBG(_FakeFitMixin, clvbayes.BetaGeoModel):
    calls = []


class InflatedBG(_FakeFitMixin, clvbayes.BetaGeoModel):
    scale = 2.0
    calls = []


class PriorGG(_FakeFitMixin, clvbayes.GammaGammaModel):
    calls = []


def _run(model_class, **kw):
    args = dict(n_customers=52, T=T_GRID[:52], replicates=100, draws=50, thin=1, chains=2, tune=0, seed=11)
    args.update(kw)
    return simulation_based_calibration(model_class, **args)


def test_loop_calibrated_fake_passes_and_draws_theta_from_the_prior():
    PriorBG.calls = []
    res = _run(PriorBG, replicates=200)
    assert res.n_draws == 100 and res.n_failed == 0
    assert res.all_uniform(0.01), res.summary()
    # the true values follow the (default) priors: KS test against HalfNormal(sigma)
    for name in res.param_names:
        sigma = res.priors[name].params["sigma"]
        assert stats.kstest(res.true_values[name], stats.halfnorm(scale=sigma).cdf).pvalue > 0.01
    assert res.priors["alpha"] == Prior("HalfNormal", sigma=5.0 * T_GRID[:52].mean())
    frame = res.to_frame()
    assert frame.shape[0] == 200 and {"true_r", "rank_b", "max_r_hat", "status"} <= set(frame.columns)
    assert res.summary().shape == (4, 5)
    assert res.bin_counts()["expected"].sum() == pytest.approx(200)
    # central 50 % / 90 % intervals cover at the nominal rate (binomial 99.9 % band, 200 replicates)
    lo, hi = (stats.binom.ppf(q, 200, [0.5, 0.9]) / 200 for q in (0.0005, 0.9995))
    cov = res.coverage()
    assert list(cov.columns) == ["50%", "90%"] and ((cov.to_numpy() >= lo) & (cov.to_numpy() <= hi)).all(), cov


def test_loop_miscalibrated_fake_fails():
    res = _run(InflatedBG)
    assert all(p < 0.01 for p in res.p_values.values()), res.summary()
    assert (res.summary()["mean_rank_fraction"] < 0.4).all()  # draws sit above the truth
    assert not res.all_uniform()


def test_loop_couples_truth_data_and_fit(monkeypatch):
    """Replicate i's ranks use the θ its data were simulated from, and the fit sees those data."""
    simulated = []
    real = sbc_module.simulate_customers

    def recording(**kw):
        out = real(**kw)
        simulated.append((kw, out))
        return out

    monkeypatch.setattr(sbc_module, "simulate_customers", recording)
    PriorBG.calls = []
    user = {"b": Prior("HalfNormal", sigma=3.0)}
    res = _run(PriorBG, replicates=5, priors=user, target_accept=0.9)
    assert len(simulated) == len(PriorBG.calls) == 5
    for i, ((kw, sim), call) in enumerate(zip(simulated, PriorBG.calls, strict=True)):
        for name in res.param_names:
            assert kw[name] == res.true_values[name][i]
        pd.testing.assert_frame_equal(call["data"], sim[["frequency", "recency", "T"]])
        assert call["priors"] == res.priors and call["kwargs"] == {"target_accept": 0.9}
        np.testing.assert_array_equal(kw["T"], T_GRID[:52])
        post = _halfnormal_draws(res.priors, res.param_names, (2, 50), call["seed"])
        for name in res.param_names:  # rank recomputed from the fit's own draws
            assert res.ranks[name][i] == np.sum(post[name].ravel() < res.true_values[name][i])
    assert res.priors["b"] == user["b"]
    assert len({c["seed"] for c in PriorBG.calls}) == 5


def test_loop_is_reproducible_and_thins():
    a = _run(PriorBG, replicates=10, draws=40, thin=4)
    b = _run(PriorBG, replicates=10, draws=40, thin=4)
    assert a.n_draws == 20
    for name in a.param_names:
        np.testing.assert_array_equal(a.ranks[name], b.ranks[name])
        np.testing.assert_array_equal(a.true_values[name], b.true_values[name])
    c = _run(PriorBG, replicates=10, draws=40, thin=4, seed=12)
    assert not np.array_equal(a.true_values["r"], c.true_values["r"])


def test_gamma_gamma_fits_repeat_buyers_with_fixed_priors():
    PriorGG.calls = []
    res = _run(PriorGG, n_customers=300, T=52.0, replicates=100)
    assert res.all_uniform(0.01), res.summary()
    assert res.priors["gamma"] == Prior("HalfNormal", sigma=10.0)
    for call, n_repeat in zip(PriorGG.calls, res.diagnostics["n_repeat"], strict=True):
        assert list(call["data"].columns) == ["frequency", "monetary_value"]
        assert (call["data"]["frequency"] > 0).all() and len(call["data"]) == n_repeat
    assert (res.diagnostics["status"] == "nuts").all()


def test_gamma_gamma_without_repeat_buyers_uses_the_prior_as_posterior():
    """No repeat buyer: constant likelihood, the posterior is the prior; kept, not redrawn."""
    PriorGG.calls = []
    res = _run(PriorGG, replicates=100, bgnbd_params={"r": 0.1, "alpha": 1e6, "a": 1.0, "b": 1.0})
    assert PriorGG.calls == []
    assert (res.diagnostics["status"] == "prior").all() and res.n_failed == 0
    assert res.all_uniform(0.01), res.summary()


class FlakyBG(_FakeFitMixin, clvbayes.BetaGeoModel):
    calls = []

    def fit(self, *args, **kwargs):
        if len(type(self).calls) % 3 == 0:
            type(self).calls.append(None)
            raise FloatingPointError("sampler blew up")
        return super().fit(*args, **kwargs)


def test_failed_fits_are_recorded_and_warned():
    FlakyBG.calls = []
    with pytest.warns(SBCWarning, match="4 of 10"):
        res = _run(FlakyBG, replicates=10)
    failed = res.diagnostics["status"] == "failed"
    assert failed.sum() == 4 and res.n_failed == 4
    assert np.isnan(res.ranks["r"][failed.to_numpy()]).all()
    assert res.diagnostics.loc[failed, "error"].str.contains("sampler blew up").all()
    assert not res.all_uniform(level=0.0)


def test_argument_checks():
    with pytest.raises(TypeError):
        simulation_based_calibration(dict, n_customers=5, T=1.0, seed=0)
    with pytest.raises(TypeError, match="method"):
        _run(PriorBG, method="map")
    with pytest.raises(TypeError, match="random_seed"):
        _run(PriorBG, random_seed=3)
    with pytest.raises(ValueError, match="T must"):
        _run(PriorBG, T=np.ones(3))
    with pytest.raises(ValueError, match="bgnbd_params"):
        _run(PriorBG, bgnbd_params={"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0})
    with pytest.raises(ValueError, match="no parameter"):
        _run(PriorBG, priors={"p": Prior("HalfNormal", sigma=1.0)})


# -- real NUTS fits ---------------------------------------------------------------------------


def _report(res):
    d = res.diagnostics
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(
            f"\n{res!r}\nwall {res.seconds:.0f} s; status {d['status'].value_counts().to_dict()}; "
            f"replicates without repeat buyers {(d['n_repeat'] == 0).sum()}; "
            f"with divergences {(d['divergences'] > 0).sum()} (total {d['divergences'].sum()}); "
            f"max r_hat > 1.01: {(d['max_r_hat'] > 1.01).sum()}; min ess_bulk < L: {(d['min_ess_bulk'] < res.n_draws).sum()}"
            f"\n{pd.concat([res.summary(), res.coverage()], axis=1)}\n{res.bin_counts().T}\n{d.describe()}"
        )


@pytest.mark.slow
def test_sbc_betageo_nuts():
    res = simulation_based_calibration(
        clvbayes.BetaGeoModel, n_customers=T_GRID.size, T=T_GRID, replicates=100, seed=2018
    )
    _report(res)
    assert res.n_failed == 0
    assert all(p > 0.01 for p in res.p_values.values()), res.summary()


@pytest.mark.slow
def test_sbc_gamma_gamma_nuts():
    res = simulation_based_calibration(
        clvbayes.GammaGammaModel, n_customers=T_GRID.size, T=T_GRID, replicates=100, seed=2018
    )
    _report(res)
    assert res.n_failed == 0
    assert all(p > 0.01 for p in res.p_values.values()), res.summary()
