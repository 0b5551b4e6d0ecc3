"""BG/NBD point predictions against published values and the anchors' failure cases.

Published values: lifetimes' test suite (reproducing Hardie's BG/NBD Excel sheet and the R
package BTYD's documentation), at the CDNOW MLE or at FHL's rounded estimates.
"""

import mpmath as mp
import numpy as np
import pandas as pd
import pytest

import clvbayes

MLE = {"r": 0.2425945, "alpha": 4.4136019, "a": 0.7929199, "b": 2.4258881}
ROUNDED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def one(x, t_x, T):
    return pd.DataFrame({"frequency": [x], "recency": [t_x], "T": [T]})


def test_conditional_expectation_hardie_excel():
    # lifetimes test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet: 1.226
    model = clvbayes.BetaGeoModel.from_params(MLE)
    assert model.expected_purchases(39, one(2, 30.43, 38.86)).iloc[0] == pytest.approx(1.226, abs=1e-3)


def test_unconditional_expectation_hardie_excel():
    # lifetimes test_expectation_returns_same_value_Hardie_excel_sheet, checked there to 3
    # decimals: Hardie's sheet (numerical, rounded inputs) gives 1.8576 at t = 78 where the
    # exact eq. (9) at the six-digit MLE gives 1.85796 (mpmath below)
    model = clvbayes.BetaGeoModel.from_params(MLE)
    times = np.array([0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0])
    got = model.expected_purchases_unconditional(times)
    np.testing.assert_allclose(got, [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576], atol=5e-4)
    r, alpha, a, b = MLE.values()
    with mp.workdps(50):
        exact = [
            float((a + b - 1) / (a - 1) * (1 - (mp.mpf(alpha) / (alpha + t)) ** r
                                           * mp.hyp2f1(r, b, a + b - 1, mp.mpf(t) / (alpha + t))))
            for t in times
        ]
    np.testing.assert_allclose(got, exact, rtol=1e-10)


def test_probability_of_n_purchases_r_btyd():
    # R BTYD documentation (bgnbd.pmf), as checked in lifetimes' test suite
    model = clvbayes.BetaGeoModel.from_params(ROUNDED)
    assert model.probability_of_n_purchases_unconditional(39.0, 0) == pytest.approx(0.5737864, abs=1e-7)
    assert model.probability_of_n_purchases_unconditional(2.0, 10) == pytest.approx(1.07869e-07, rel=1e-5)
    expected = [0.0019995214, 0.0015170236, 0.0011633150, 0.0009003148, 0.0007023638,
                0.0005517902, 0.0004361913, 0.0003467171, 0.0002769613, 0.0002222260]
    got = model.probability_of_n_purchases_unconditional(30.0, np.arange(11, 21))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def mp_conditional_expectation(r, alpha, a, b, x, t_x, T, t):
    """FHL (2005) eq. (10) with mpmath.hyp2f1 at 60 digits (defined for a != 1)."""
    with mp.workdps(60):
        r, alpha, a, b, x, t_x, T, t = map(mp.mpf, (r, alpha, a, b, x, t_x, T, t))
        hyp = mp.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        den = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        return float(num / den)


def test_finite_where_pymc_marketing_returns_nan():
    # x = 2000, t_x = 990, T = 1000, t = 1000 at the CDNOW MLE
    model = clvbayes.BetaGeoModel.from_params(MLE)
    got = model.expected_purchases(1000.0, one(2000, 990.0, 1000.0)).iloc[0]
    assert np.isfinite(got)
    assert got == pytest.approx(mp_conditional_expectation(*MLE.values(), 2000, 990.0, 1000.0, 1000.0), rel=1e-9)


def test_finite_where_lifetimes_returns_nan_a_plus_b_below_one():
    params = {"r": 0.5, "alpha": 3.0, "a": 0.3, "b": 0.4}  # a + b < 1
    model = clvbayes.BetaGeoModel.from_params(params)
    got = model.expected_purchases(20.0, one(0, 0.0, 10.0)).iloc[0]
    ref = mp_conditional_expectation(*params.values(), 0, 0.0, 10.0, 20.0)
    assert np.isfinite(got) and got == pytest.approx(ref, rel=1e-9)
    assert np.isfinite(model.expected_purchases_unconditional(20.0))


def test_a_equal_one_is_the_limit():
    base = {"r": 0.5, "alpha": 3.0, "b": 2.5}
    at_one = clvbayes.BetaGeoModel.from_params({**base, "a": 1.0})
    data = one(3, 7.0, 12.0)
    got = at_one.expected_purchases(15.0, data).iloc[0]
    assert np.isfinite(got)
    # the removable singularity: the value at a = 1 is the limit from both sides
    eps = 1e-6
    lo = mp_conditional_expectation(base["r"], base["alpha"], 1 - eps, base["b"], 3, 7.0, 12.0, 15.0)
    hi = mp_conditional_expectation(base["r"], base["alpha"], 1 + eps, base["b"], 3, 7.0, 12.0, 15.0)
    assert got == pytest.approx(0.5 * (lo + hi), rel=1e-8)
    assert np.isfinite(at_one.expected_purchases_unconditional(15.0))
