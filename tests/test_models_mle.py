"""Maximum likelihood fits reproduce the published CDNOW estimates."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special

import clvbayes
from clvbayes.reference import published_estimates

PUB = published_estimates()


@pytest.fixture(scope="module")
def bgnbd_fit(cdnow_split):
    return clvbayes.BetaGeoModel(cdnow_split).fit_mle()


@pytest.fixture(scope="module")
def gg_fit(cdnow_split):
    return clvbayes.GammaGammaModel(cdnow_split).fit_mle()


def test_bgnbd_mle_reproduces_fhl_2005(bgnbd_fit):
    # FHL (2005) Marketing Science 24(2): r=0.243, alpha=4.414, a=0.793, b=2.426, LL=-9582.4;
    # six digits from an independent implementation (shared/reference/published.json)
    for name, value in PUB["bgnbd"]["params"].items():
        assert bgnbd_fit.params_[name] == pytest.approx(value, rel=1e-4), name
    assert bgnbd_fit.log_likelihood_ == pytest.approx(PUB["bgnbd"]["log_likelihood"], abs=0.01)
    assert bgnbd_fit.mle_result_.converged


def naive_bgnbd_loglik(params, x, t_x, T):
    """FHL (2005) eq. (6), written directly with scipy (no log-sum-exp tricks)."""
    r, alpha, a, b = params
    lik = (
        special.beta(a, b + x) / special.beta(a, b) * special.gamma(r + x) * alpha**r
        / (special.gamma(r) * (alpha + T) ** (r + x))
    )
    with np.errstate(invalid="ignore"):
        second = (
            special.beta(a + 1, b + x - 1) / special.beta(a, b) * special.gamma(r + x) * alpha**r
            / (special.gamma(r) * (alpha + t_x) ** (r + x))
        )
    lik = lik + np.where(x > 0, second, 0.0)
    return np.log(lik).sum()


def test_bgnbd_standard_errors_match_second_differences(bgnbd_fit, cdnow_split):
    """Standard errors from the analytic-gradient Hessian equal those of a value-only Hessian."""
    x, t_x, T = (cdnow_split[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    p0 = bgnbd_fit.params_.to_numpy()
    assert naive_bgnbd_loglik(p0, x, t_x, T) == pytest.approx(bgnbd_fit.log_likelihood_, abs=1e-6)
    k = len(p0)
    h = 1e-4 * p0
    hess = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            def f(di, dj):
                p = p0.copy()
                p[i] += di * h[i]
                p[j] += dj * h[j]
                return naive_bgnbd_loglik(p, x, t_x, T)
            hess[i, j] = (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1)) / (4 * h[i] * h[j])
    se = np.sqrt(np.diag(np.linalg.inv(-hess)))
    np.testing.assert_allclose(bgnbd_fit.standard_errors_.to_numpy(), se, rtol=1e-3)


def test_gamma_gamma_mle_reproduces_fhl_2005(gg_fit):
    # FHL (2005) JMR 42(4): p = 6.25, q = 3.74, gamma = 15.44 on the 946 repeat buyers
    for name, value in PUB["gamma_gamma"]["params"].items():
        assert round(gg_fit.params_[name], 2) == pytest.approx(value, abs=1e-9), name
    assert gg_fit.n_customers_ == 946
    assert gg_fit.n_excluded_ == 2357 - 946


def test_time_unit_changes_alpha_and_loglik_only(cdnow_transactions, bgnbd_fit):
    days = clvbayes.calibration_holdout_split(
        cdnow_transactions, calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="D"
    )
    fit_d = clvbayes.BetaGeoModel(days).fit_mle()
    for name in ("r", "a", "b"):
        assert fit_d.params_[name] == pytest.approx(bgnbd_fit.params_[name], rel=1e-6)
    assert fit_d.params_["alpha"] == pytest.approx(7 * bgnbd_fit.params_["alpha"], rel=1e-6)
    # the likelihood is a density of purchase times: it changes by the Jacobian 7^-x per customer
    n_repeat = days["frequency"].sum()
    assert fit_d.log_likelihood_ == pytest.approx(bgnbd_fit.log_likelihood_ - n_repeat * math.log(7), abs=1e-6)
    np.testing.assert_allclose(fit_d.expected_purchases(273.0), bgnbd_fit.expected_purchases(39.0), rtol=1e-6)


def test_from_params_and_predictions_on_new_customers():
    model = clvbayes.BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    new = pd.DataFrame(
        {"frequency": [0, 2, 2000], "recency": [0.0, 30.43, 990.0], "T": [10.0, 38.86, 1000.0]},
        index=pd.Index(["x", "y", "z"], name="customer_id"),
    )
    ep = model.expected_purchases(39, data=new)
    assert list(ep.index) == ["x", "y", "z"] and ep.name == "expected_purchases"
    assert np.isfinite(ep).all()
    assert model.probability_alive(new).loc["x"] == 1.0  # no repeat purchase: cannot have dropped out
    pn = sum(model.probability_of_n_purchases(39, n, new) for n in range(400))
    np.testing.assert_allclose(pn.loc[["x", "y"]], 1.0, atol=1e-8)
    assert model.expected_purchases_unconditional(39.0) == pytest.approx(
        model.expected_purchases_unconditional(np.array([39.0]))[0])
    assert (model.dert(0.002, new) > ep).all()  # long horizon, slow discounting


def test_parameter_and_state_errors():
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        clvbayes.BetaGeoModel.from_params({"r": 1, "alpha": 1, "a": 1})
    with pytest.raises(ValueError, match="positive and finite"):
        clvbayes.GammaGammaModel.from_params({"p": 1, "q": -2, "gamma": 1})
    with pytest.raises(clvbayes.NotFittedError, match="fit_mle"):
        clvbayes.BetaGeoModel().probability_alive(pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [1.0]}))
    with pytest.raises(ValueError, match="No customer data"):
        clvbayes.BetaGeoModel.from_params({"r": 1, "alpha": 1, "a": 1, "b": 1}).probability_alive()
    model = clvbayes.BetaGeoModel.from_params({"r": 1, "alpha": 1, "a": 1, "b": 1})
    rfm = pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0]})
    with pytest.raises(ValueError, match="t must be"):
        model.expected_purchases(-1, rfm)
    with pytest.raises(ValueError, match="n must be"):
        model.probability_of_n_purchases(1.0, 1.5, rfm)
    with pytest.raises(ValueError, match="discount_rate"):
        model.dert(0.0, rfm)


def test_expected_spend(gg_fit, cdnow_split):
    spend = gg_fit.expected_spend()
    p, q, g = gg_fit.params_
    repeat = cdnow_split["frequency"] > 0
    assert np.allclose(spend[~repeat], p * g / (q - 1))
    x = cdnow_split.loc[repeat, "frequency"]
    m = cdnow_split.loc[repeat, "monetary_value"]
    w = p * x / (p * x + q - 1)
    np.testing.assert_allclose(spend[repeat], w * m + (1 - w) * p * g / (q - 1), rtol=1e-12)


def test_fit_does_not_mutate_data(cdnow_split):
    before = cdnow_split.copy(deep=True)
    clvbayes.BetaGeoModel(cdnow_split).fit_mle()
    clvbayes.GammaGammaModel(cdnow_split).fit_mle()
    pd.testing.assert_frame_equal(before, cdnow_split)
