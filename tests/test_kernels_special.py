"""Special functions of the Numba core against SciPy."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from clvbayes.kernels.special import digamma, exprel, lbeta, log1pexp, logaddexp

positive = st.floats(1e-6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(positive)
def test_digamma_matches_scipy(x):
    ref = special.digamma(x)
    assert math.isclose(digamma(x), ref, rel_tol=1e-13, abs_tol=1e-13)


@settings(max_examples=200, deadline=None)
@given(positive, positive)
def test_lbeta_matches_scipy(a, b):
    ref = special.betaln(a, b)
    # lgamma differences lose digits relative to the size of the individual terms
    scale = abs(math.lgamma(a)) + abs(math.lgamma(b)) + abs(math.lgamma(a + b))
    assert abs(lbeta(a, b) - ref) <= 1e-14 * scale + 1e-13


@settings(max_examples=200, deadline=None)
@given(st.floats(-800, 800))
def test_log1pexp_and_logaddexp(x):
    assert math.isclose(log1pexp(x), np.logaddexp(0.0, x), rel_tol=1e-14, abs_tol=1e-300)
    assert math.isclose(logaddexp(x, 0.5 * x), np.logaddexp(x, 0.5 * x), rel_tol=1e-14, abs_tol=1e-14)


def test_logaddexp_of_minus_infinities():
    assert logaddexp(-math.inf, -math.inf) == -math.inf
    assert logaddexp(-math.inf, 1.0) == 1.0


@settings(max_examples=200, deadline=None)
@given(st.floats(-700, 700))
def test_exprel_matches_scipy(x):
    assert math.isclose(exprel(x), special.exprel(x), rel_tol=1e-12)


def test_digamma_nonpositive_is_nan():
    assert math.isnan(digamma(0.0)) and math.isnan(digamma(-1.5))
