"""Arguments checked at the door (issue 13, point 10): priors, model parameters, value
settings, seeds; and finite predictions over the whole accepted parameter range."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import clvbayes as cb
from clvbayes import BetaGeoModel, GammaGammaModel, Prior
from clvbayes.data.validate import DataValidationError
from clvbayes.models.base import PARAM_RANGE
from clvbayes.value.arguments import check_discount_rate, check_margin, check_seed
from clvbayes.workflow import AnalysisSettings

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005, CDNOW
GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}  # FHL 2005 (JMR), CDNOW


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    """A few histories: no repeat, recent and old repeaters, a heavy buyer, a very young one."""
    frame = pd.DataFrame(
        {
            "frequency": [0.0, 1, 2, 10, 0, 3, 50],
            "recency": [0.0, 5, 20, 30, 0, 39, 38.5],
            "T": [39.0, 39, 39, 39, 1e-4, 39, 39],
            "monetary_value": [0.0, 10, 20, 5, 0, 7.5, 3],
        },
        index=pd.Index([f"c{i}" for i in range(7)], name="customer_id"),
    )
    frame.attrs["time_unit"] = "W"
    return frame


# -- priors -----------------------------------------------------------------------------------
def test_unknown_prior_name_is_refused_by_the_constructor():
    # before: accepted here and refused only when the PyMC model was built at fit time
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['rr'\]; its parameters are \['r', 'alpha', 'a', 'b'\]"):
        BetaGeoModel(None, priors={"rr": Prior("HalfNormal", sigma=1.0)})
    with pytest.raises(ValueError, match=r"\['alpha'\].*\['p', 'q', 'gamma'\]"):
        GammaGammaModel(priors={"alpha": Prior("HalfNormal", sigma=1.0)})
    with pytest.raises(TypeError, match="must be a clvbayes Prior"):
        BetaGeoModel(priors={"r": 3.0})
    with pytest.raises(TypeError, match="dict of parameter name"):
        BetaGeoModel(priors=[("r", Prior("HalfNormal", sigma=1.0))])
    user = {"r": Prior("Gamma", alpha=2.0, beta=1.0)}
    assert BetaGeoModel(priors=user).priors is user  # stored unchanged


@pytest.mark.parametrize(
    ("distribution", "params", "message"),
    [
        ("Gamma", {}, "Gamma needs alpha and beta, or mu and sigma; got no parameters"),
        ("Gamma", {"alpha": 2.0}, r"Gamma needs alpha and beta, or mu and sigma; got \['alpha'\]"),
        ("Gamma", {"alpha": 2.0, "sigma": 1.0}, r"got \['alpha', 'sigma'\]"),
        ("HalfNormal", {}, "HalfNormal needs sigma"),
        ("HalfStudentT", {"sigma": 1.0}, "HalfStudentT needs nu and sigma"),
        ("HalfCauchy", {}, "HalfCauchy needs beta"),
        ("InverseGamma", {"alpha": 3.0}, "InverseGamma needs alpha and beta"),
        ("LogNormal", {"mu": 0.0}, "LogNormal needs mu and sigma"),
        ("Exponential", {}, "Exponential needs lam"),
        ("Weibull", {"beta": 2.0}, "Weibull needs alpha and beta"),
        ("Uniform", {"upper": 3.0}, "Uniform needs lower and upper"),
        ("TruncatedNormal", {"mu": 1.0, "sigma": 1.0}, r"needs lower and mu and sigma \(optionally upper\)"),
        ("Uniform", {"lower": 5.0, "upper": 1.0}, "lower < upper, got lower=5, upper=1"),
        ("Uniform", {"lower": 1.0, "upper": 1.0}, "lower < upper"),
        ("TruncatedNormal", {"mu": 1.0, "sigma": 1.0, "lower": 5.0, "upper": 1.0}, "lower < upper"),
        ("Uniform", {"lower": -1.0, "upper": 1.0}, "lower >= 0"),
        ("Gamma", {"mu": -1.0, "sigma": 1.0}, "mu of Gamma must be > 0"),
        ("HalfNormal", {"sigma": math.nan}, "sigma of HalfNormal must be finite"),
    ],
)
def test_incomplete_or_inconsistent_priors_are_refused(distribution, params, message):
    with pytest.raises(ValueError, match=message):
        Prior(distribution, **params)


@pytest.mark.parametrize("value", [None, "5", [5.0], True])
def test_non_numeric_prior_parameter_is_named(value):
    with pytest.raises(TypeError, match=r"Prior parameter sigma of HalfNormal must be a number"):
        Prior("HalfNormal", sigma=value)


def test_valid_parametrisations_are_accepted():
    assert Prior("Gamma", mu=2.0, sigma=1.0).params == {"mu": 2.0, "sigma": 1.0}
    assert Prior("LogNormal", mu=-3.0, sigma=0.5).params["mu"] == -3.0  # a location may be negative
    assert Prior("TruncatedNormal", mu=-1.0, sigma=2.0, lower=0.0).params["lower"] == 0.0
    assert Prior("TruncatedNormal", mu=1.0, sigma=2.0, lower=0.0, upper=10.0).params["upper"] == 10.0
    assert Prior("HalfNormal", sigma=np.float32(2.0)).params["sigma"] == 2.0


# -- model parameters -----------------------------------------------------------------------
def test_from_params_names_a_missing_value():
    # before: float(None) raised a bare TypeError naming no parameter
    with pytest.raises(TypeError, match=r"BetaGeoModel parameters must be numbers; got alpha=None"):
        BetaGeoModel.from_params({**BG, "alpha": None})
    with pytest.raises(TypeError, match=r"got p='6'"):
        GammaGammaModel.from_params({**GG, "p": "6"})
    with pytest.raises(ValueError, match=r"positive and finite; got b=nan"):
        BetaGeoModel.from_params(pd.Series({**BG, "b": None}, dtype=float))


@pytest.mark.parametrize("value", [1e-300, 1e-13, 1e13, 1e300])
@pytest.mark.parametrize("name", ["r", "alpha", "a", "b"])
def test_from_params_outside_the_finite_range_is_a_clear_error(name, value):
    # before: r = 1e300 gave NaN expected purchases, DERT and CLV; alpha = 1e-20 a NaN E[X(t)]
    with pytest.raises(ValueError, match=rf"must lie in \[1e-12, 1e\+12\].*got {name}="):
        BetaGeoModel.from_params({**BG, name: value})


@pytest.mark.parametrize("name", ["p", "q", "gamma"])
def test_gamma_gamma_from_params_outside_the_range(name):
    with pytest.raises(ValueError, match=rf"got {name}=1e\+300"):
        GammaGammaModel.from_params({**GG, name: 1e300})


_LOG10 = st.floats(math.log10(PARAM_RANGE[0]), math.log10(PARAM_RANGE[1]), allow_nan=False)


def _in_range(log10: tuple[float, ...]) -> np.ndarray:
    return np.clip(10.0 ** np.array(log10), *PARAM_RANGE)  # 10**-12 may round below 1e-12


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.tuples(_LOG10, _LOG10, _LOG10, _LOG10), st.tuples(_LOG10, st.floats(0.0, 12.0), _LOG10))
@example(bg_log=(12.0, -12.0, -0.1, 0.4), gg_log=(0.8, 0.4, 1.2))  # r t/α = 5e25: NaN E[X(t)] on main
@example(bg_log=(8.0, -12.0, -12.0, 12.0), gg_log=(12.0, 12.0, 12.0))
@example(bg_log=(-12.0, 12.0, 12.0, -12.0), gg_log=(-12.0, 0.0, -12.0))
def test_predictions_are_finite_over_the_whole_parameter_range(customers, bg_log, gg_log):
    """Property: for parameters anywhere in PARAM_RANGE (log-uniform, with the corners that
    hypothesis favours), every prediction and value is finite (on main E[X(t)] was NaN
    once r t/α exceeded ~1e20, e.g. r = 1e12, α = 1e-12)."""
    bg = BetaGeoModel.from_params(dict(zip(("r", "alpha", "a", "b"), _in_range(bg_log), strict=True)))
    # q > 1: the mean spend exists (q <= 1 is refused with its own message)
    p, q_excess, gamma = _in_range(gg_log)
    gg = GammaGammaModel.from_params({"p": p, "q": min(1.0 + q_excess, PARAM_RANGE[1]), "gamma": gamma})
    values = {
        "p_alive": bg.probability_alive(customers),
        "expected_purchases": bg.expected_purchases(10.0, customers),
        "pmf": bg.probability_of_n_purchases(10.0, 2, customers),
        "dert": bg.dert(0.002, customers),
        "unconditional": bg.expected_purchases_unconditional(np.array([1.0, 52.0])),
        "pmf_unconditional": bg.probability_of_n_purchases_unconditional(10.0, np.array([0, 3])),
        "spend": gg.expected_spend(customers),
    }
    metrics = cb.customer_metrics(
        bg, gg, customers, quantities=("clv", "discounted_purchases", "dropout", "lost_value"), horizon=52.0,
        horizons={"dropout": 13.0}, discount_rate=0.1,
    )
    values.update({k: v.summary["mean"] for k, v in metrics.items()})
    values["clv_infinite"] = cb.customer_lifetime_value(bg, gg, customers, discount_rate=0.1).summary["mean"]
    for name, v in values.items():
        assert np.isfinite(np.asarray(v, dtype=float)).all(), (name, bg.params_.to_dict(), np.asarray(v))


# -- value settings ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models():
    return BetaGeoModel.from_params(BG), GammaGammaModel.from_params(GG)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 1.5}, r"margin must be a fraction of revenue in \[0, 1\].*got 1.5 \(for 1.5% write 0.015\)"),
        ({"margin": 30}, r"got 30 \(for 30% write 0.3\)"),
        ({"margin": -0.1}, "margin must be a fraction"),
        ({"margin": math.nan}, "margin must be a fraction"),
        ({"discount_rate": 10}, r"discount_rate must be an effective annual rate in \[0, 1\].*\(for 10% write 0.1\)"),
        ({"discount_rate": 1.01}, "discount_rate must be an effective annual rate"),
        ({"discount_rate": -0.05}, "discount_rate must be"),
        ({"discount_rate": math.nan}, "discount_rate must be"),
        ({"discount_rate": "0.1"}, "discount_rate must be"),
    ],
)
def test_margin_and_discount_rate_out_of_range(customers, models, kwargs, message):
    # before: margin 1.5 and a discount rate of 10 (1,000% a year) were silently used
    with pytest.raises(DataValidationError, match=message):
        cb.customer_lifetime_value(*models, customers, **kwargs)


def test_per_customer_margin_out_of_range_names_customers(customers, models):
    margin = pd.Series(0.3, index=customers.index)
    margin["c2"] = 3.0
    with pytest.raises(DataValidationError, match=r"margin must be a fraction.*1 customers are not \('c2'.*3.0"):
        cb.customer_lifetime_value(*models, customers, margin=margin)
    with pytest.raises(DataValidationError, match="discount_rate must be"):
        cb.customer_lifetime_value(*models, customers, discount_rate=np.full(len(customers), 2.0))


def test_margin_zero_and_full_discount_are_allowed(customers, models):
    zero = cb.customer_lifetime_value(*models, customers, margin=0.0, horizon=52.0)
    assert (zero.summary["mean"] == 0).all()
    assert np.isfinite(cb.customer_lifetime_value(*models, customers, discount_rate=1.0).summary["mean"]).all()
    assert check_margin(1) == 1.0 and check_discount_rate(0) == 0.0


@pytest.mark.parametrize("horizon", [-1.0, math.nan, "52", None])
def test_negative_or_nan_horizon(customers, models, horizon):
    with pytest.raises(ValueError, match="horizon must be a number >= 0"):
        cb.customer_lifetime_value(*models, customers, horizon=horizon)
    with pytest.raises(ValueError, match="horizon must be"):
        cb.value.expected_purchases(models[0], customers, horizon=horizon)


@pytest.mark.parametrize("quantity", ["clv", "discounted_purchases", "lost_value"])
def test_undiscounted_infinite_horizon_diverges_for_a_at_most_1(customers, models, quantity):
    """E[Y(inf) | alive] = (a + b + x - 1)/(a - 1) is infinite for a <= 1 (CDNOW: a = 0.79):
    before, inf (and NaN for lost value) came back without a word."""
    with pytest.raises(ValueError, match=r"infinite for 1 of 1 BG/NBD draws: they have a <= 1 \(smallest a = 0.793\)"):
        cb.customer_metrics(*models, customers, quantities=(quantity,), discount_rate=0.0)
    # a finite horizon or any discounting keeps it finite
    finite = cb.customer_metrics(*models, customers, quantities=(quantity,), discount_rate=0.0, horizon=520.0)
    assert np.isfinite(finite[quantity].summary["mean"]).all()


def test_undiscounted_infinite_horizon_for_a_above_1_is_the_closed_form(customers):
    bg = BetaGeoModel.from_params({**BG, "a": 1.5})
    total = cb.customer_metrics(bg, None, customers, quantities=("discounted_purchases",), discount_rate=0.0)
    x = customers["frequency"].to_numpy()
    expected = bg.probability_alive(customers).to_numpy() * (1.5 + BG["b"] + x - 1) / 0.5
    np.testing.assert_allclose(total["discounted_purchases"].summary["mean"].to_numpy(), expected, rtol=1e-9)


def test_divergence_check_only_for_undiscounted_customers(customers, models):
    rate = pd.Series(0.1, index=customers.index)
    rate["c3"] = 0.0  # one customer undiscounted is enough to diverge
    with pytest.raises(ValueError, match="a <= 1"):
        cb.customer_lifetime_value(*models, customers, discount_rate=rate)


# -- seeds ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "1", True])
def test_fit_refuses_a_seed_out_of_range(customers, seed):
    # before: a negative seed reached nutpie (OverflowError) after building the model
    with pytest.raises(ValueError, match=r"random_seed must be a whole number from 0 to 2\*\*32 - 1"):
        BetaGeoModel(customers).fit(chains=1, draws=1, tune=0, random_seed=seed, progressbar=False)


def test_check_seed_accepts_numpy_integers():
    assert check_seed(np.int64(7)) == 7 and check_seed(2**32 - 1) == 2**32 - 1


# -- workflow settings ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("margin", 1.5, r"margin must be a fraction of revenue in \(0, 1\]"),
        ("margin", 0.0, r"margin must be a fraction of revenue in \(0, 1\]"),
        ("discount_rate", 5.0, r"discount_rate must be .* \[0, 1\]"),
        ("discount_rate", math.nan, "discount_rate"),
        ("horizon", math.nan, "horizon must be a finite number > 0"),
        ("horizon", math.inf, "horizon must be a finite number > 0"),
        ("seed", -1, "seed must be a whole number"),
        ("seed", 2**32, "seed must be a whole number"),
        ("hdi_prob", 1.0, r"hdi_prob must be a number in \(0, 1\)"),
        ("contact_cost", math.nan, "contact_cost"),
    ],
)
def test_analysis_settings_check(field, value, message):
    with pytest.raises(ValueError, match=message):
        AnalysisSettings(**{field: value}).check()
