"""Pareto/NBD NUTS settings: the rate coordinates (ln k, ln k/θ) of
clvbayes.models.purchase.rate_coordinates keep the posterior (PyMC's own log-transformed
model as the reference, scipy quadrature for the prior's normalisation), and the
size-dependent target_accept default."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import integrate

import clvbayes
from clvbayes.families.pareto_nbd import LARGE_DATA, PARETO_NBD
from clvbayes.models import bayesian
from clvbayes.models.priors import Prior
from clvbayes.models.purchase import rate_coordinates

PAIRS = ((0, 1), (2, 3))


class RateParetoNBD(clvbayes.ParetoNBDModel):
    rate_pairs = PAIRS


def _data(n=300, seed=5):
    rng = np.random.default_rng(seed)
    T = np.floor(rng.uniform(7, 364, n)) / 7.0
    x = rng.poisson(1.0, n).astype(float)
    t_x = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T * 7.0) / 7.0, 0.0)
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": T})


def test_log_density_equals_the_log_transformed_model():
    """(ln r, ln α) -> (ln r, ln r - ln α) is linear with determinant -1, so the unconstrained
    log density at corresponding points must equal PyMC's for the original model (priors as
    random variables, log transform and its Jacobian by PyMC), likelihood included."""
    data = _data()
    plain, rate = clvbayes.ParetoNBDModel(data).model, RateParetoNBD(data).model
    lp_plain, lp_rate = plain.compile_logp(), rate.compile_logp()
    rng = np.random.default_rng(1)
    for _ in range(5):
        lr, la, ls, lb = rng.normal([-0.5, 2.0, -0.5, 2.5], 0.7)
        want = lp_plain({"r_log__": lr, "alpha_log__": la, "s_log__": ls, "beta_log__": lb})
        got = lp_rate({"log_r": lr, "log_r_per_alpha": lr - la, "log_s": ls, "log_s_per_beta": ls - lb})
        assert got == pytest.approx(want, rel=1e-12, abs=1e-9)


def test_prior_density_in_rate_coordinates_integrates_to_one():
    """The prior potential of one pair, exp(ln p(k) + ln p(θ) + 2u - v), integrated over
    (u, v) by scipy quadrature: 1, and the mean of k and θ as under the original priors."""
    priors = {"r": Prior("HalfNormal", sigma=5.0), "alpha": Prior("HalfNormal", sigma=40.0)}
    with pm.Model() as m:
        rate_coordinates({**priors, "s": priors["r"], "beta": priors["alpha"]}, ("r", "alpha", "s", "beta"),
                         ((0, 1),))
    pot = m.compile_fn(m.potentials[0], inputs=[m["log_r"], m["log_r_per_alpha"]])

    def dens(v, u, f=lambda u, v: 1.0):
        return math.exp(float(pot({"log_r": u, "log_r_per_alpha": v}))) * f(u, v)

    # u = ln r in [-30, 4], v = ln(r/α) in [u - 8, u + 30]: r, α in (e^-30, 54) x (e^-30, e^8),
    # the prior mass but ~1e-13
    lim = (-30.0, 4.0, lambda u: u - 8.0, lambda u: u + 30.0)
    total = integrate.dblquad(dens, *lim, epsabs=1e-11, epsrel=1e-9)[0]
    assert total == pytest.approx(1.0, abs=1e-7)
    mean_r = integrate.dblquad(lambda v, u: dens(v, u, lambda u, v: math.exp(u)), *lim, epsabs=1e-11)[0]
    assert mean_r == pytest.approx(5.0 * math.sqrt(2.0 / math.pi), rel=1e-7)
    mean_a = integrate.dblquad(lambda v, u: dens(v, u, lambda u, v: math.exp(u - v)), *lim, epsabs=1e-11)[0]
    assert mean_a == pytest.approx(40.0 * math.sqrt(2.0 / math.pi), rel=1e-7)


# CDNOW's beta is weakly identified (the model says so): not what this test is about
@pytest.mark.filterwarnings("ignore::clvbayes.models.identification.WeakIdentificationWarning")
def test_fit_in_rate_coordinates_reports_the_natural_parameters(cdnow_split):
    fit = RateParetoNBD(cdnow_split).fit(chains=2, draws=150, tune=150, random_seed=3, progressbar=False)
    post = fit.idata_.posterior
    for name in ("r", "alpha", "s", "beta"):
        assert name in post
    np.testing.assert_allclose(post["alpha"], post["r"] / np.exp(post["log_r_per_alpha"]), rtol=1e-12)
    assert set(fit.params_.index) == {"r", "alpha", "s", "beta"}


@pytest.mark.parametrize(("n", "target"), [(1, 0.95), (LARGE_DATA - 1, 0.95), (LARGE_DATA, 0.8), (10**6, 0.8)])
def test_target_accept_default_follows_the_number_of_customers(n, target):
    assert PARETO_NBD.nuts_settings(n) == {"target_accept": target}


def test_fit_passes_the_size_default_and_the_callers_value_wins(monkeypatch):
    seen = []

    def fake(model, chains, draws, tune, seed, progressbar, kwargs, allow_partial=False):
        seen.append(dict(kwargs))
        raise RuntimeError("stop")

    monkeypatch.setattr(bayesian, "_sample_nutpie", fake)
    small = _data(50)
    weighted = small.assign(customers=np.full(len(small), 2 * LARGE_DATA // len(small)))
    weighted.attrs["clvbayes_weights"] = "customers"  # rows stand for that many customers
    for frame, kwargs, want in ((small, {}, 0.95), (weighted, {}, 0.8), (weighted, {"target_accept": 0.9}, 0.9)):
        with pytest.raises(RuntimeError, match="stop"):
            clvbayes.ParetoNBDModel(frame).fit(progressbar=False, **kwargs)
        assert seen[-1]["target_accept"] == want
