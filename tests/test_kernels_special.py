"""Special functions and shared chunking helpers of the Numba core.

References: SciPy (digamma, betaln, logaddexp, exprel) and mpmath at 50 digits
(lnΓ and ψ differences, log1p), evaluated directly from their definitions.
"""

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from clvbayes.kernels.special import (
    CHUNK,
    digamma,
    digamma_diff,
    exprel,
    int_table_rows,
    lbeta,
    lnpoch,
    lnpoch_h,
    lnpoch_hoist,
    log1p_fast,
    log1pexp,
    logaddexp,
    sum_chunks,
)

EPS = np.finfo(float).eps
DPS = 50
positive = st.floats(1e-6, 1e6, allow_nan=False, allow_infinity=False)


def log_uniform(lo_exp, hi_exp):
    return st.floats(lo_exp, hi_exp).map(lambda e: 10.0**e)


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


@settings(max_examples=200, deadline=None, derandomize=True)
@given(log_uniform(-4, 9), log_uniform(-4, 9))
def test_lbeta_matches_mpmath_relative_to_small_argument(a, b):
    """ln B(a, b) = lnΓ(lo) - [lnΓ(hi + lo) - lnΓ(hi)]: accurate relative to |lnΓ(lo)| + |ln B|,
    not to lnΓ(hi) (e.g. B(1e8, 3), where the three-lgamma form loses ~8 digits)."""
    with mp.workdps(DPS):
        ref = mp.log(mp.beta(mp.mpf(a), mp.mpf(b)))
        scale = abs(ref) + abs(mp.loggamma(min(mp.mpf(a), mp.mpf(b)))) + 1
    assert abs(lbeta(a, b) - ref) <= 16 * EPS * scale, (a, b)


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


# --------------------------------------------------------------------------------------
# log1p_fast, lnpoch = lnΓ(z+x) - lnΓ(z), digamma_diff = ψ(z+x) - ψ(z) vs mpmath
# --------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.one_of(log_uniform(-300, 300), log_uniform(-20, -1e-4).map(lambda v: -v)))
def test_log1p_fast_matches_mpmath(y):
    with mp.workdps(DPS):
        ref = float(mp.log1p(mp.mpf(y)))
    assert abs(log1p_fast(y) - ref) <= 2 * 2.2e-16 * abs(ref), y


def test_log1p_fast_exact_cases():
    assert log1p_fast(0.0) == 0.0
    for y in (1e-300, -1e-300, 1e-17, 5e-324):  # 1 + y rounds to 1: returns y itself
        assert log1p_fast(y) == y


@settings(max_examples=300, deadline=None, derandomize=True)
@given(log_uniform(-4, 4), st.one_of(st.integers(0, 10_000).map(float), log_uniform(-6, 4)))
def test_lnpoch_matches_mpmath(z, x):
    with mp.workdps(DPS):
        ref = float(mp.loggamma(mp.mpf(z) + mp.mpf(x)) - mp.loggamma(mp.mpf(z)))
    got = lnpoch(z, x)
    # Relative where lnΓ(z + x) - lnΓ(z) is not itself near 0, else ~ulps of lnΓ(z) ≤ 10.
    assert abs(got - ref) <= 1e-14 * abs(ref) + 1e-14, (got, ref)
    assert lnpoch_h(z, lnpoch_hoist(z), x) == got


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.one_of(st.floats(10.0, 20.0), log_uniform(1, 4)),
    st.one_of(st.integers(1, 20), st.integers(1, 10_000)).map(float),
)
def test_lnpoch_stirling_branch_is_ulp_accurate(z, x):
    # z >= 10, integer x: the branch used for large r, b, a + b; a few ulps, relative.
    with mp.workdps(DPS):
        ref = float(mp.loggamma(mp.mpf(z) + mp.mpf(x)) - mp.loggamma(mp.mpf(z)))
    assert abs(lnpoch(z, x) - ref) <= 4 * 2.2e-16 * abs(ref), (z, x)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(log_uniform(-4, 4), st.one_of(st.integers(0, 20), st.integers(0, 10_000)).map(float))
def test_digamma_diff_matches_mpmath_integer_x(z, x):
    with mp.workdps(DPS):
        ref = float(mp.digamma(mp.mpf(z) + mp.mpf(x)) - mp.digamma(mp.mpf(z)))
    # Relative, a few ulps, for every z (sums of positive terms, no cancellation).
    assert abs(digamma_diff(z, x) - ref) <= 8 * 2.2e-16 * abs(ref), (z, x)


@settings(max_examples=300, deadline=None)
@given(st.floats(-4.0, 9.0), st.floats(-4.0, 9.0))
def test_lnpoch_digamma_diff_match_mpmath_any_x(la, ld):
    """Non-integer x from 1e-4 to 1e9, also x << z (Gamma-Gamma: z, x = p·x, q or q, p·x)."""
    a, d = 10.0**la, 10.0**ld
    with mp.workdps(DPS):
        A, D = mp.mpf(a), mp.mpf(d)
        ref_lg = mp.loggamma(A + D) - mp.loggamma(A)
        ref_dg = mp.digamma(A + D) - mp.digamma(A)
        # Below a = 10 lnpoch is a difference of lgammas, that can be ~0 (Γ(a+d) ≈ Γ(a),
        # e.g. a = d = 1): accurate relative to the log-gammas themselves. Above 10 it must
        # be accurate relative to the result.
        tol_lg = 64 * EPS * abs(ref_lg)
        if a < 10:
            tol_lg += 64 * EPS * (1 + abs(mp.loggamma(A)) + abs(mp.loggamma(A + D)))
        tol_dg = 64 * EPS * abs(ref_dg)
        assert abs(lnpoch(a, d) - ref_lg) <= tol_lg
        assert abs(digamma_diff(a, d) - ref_dg) <= tol_dg


@pytest.mark.parametrize("z", [9.999999999999998, 10.0, 10.000000000000002])
@pytest.mark.parametrize("x", [1e-12, 1e-6, 0.5, 1.0, 7.0, 1e6])
def test_branch_boundary_at_ten(z, x):
    """Both branches (lgamma / shift below 10, series at and above) meet accurately."""
    with mp.workdps(DPS):
        ref_lg = float(mp.loggamma(mp.mpf(z) + x) - mp.loggamma(mp.mpf(z)))
        ref_dg = float(mp.digamma(mp.mpf(z) + x) - mp.digamma(mp.mpf(z)))
    # below 10: a difference of two lgammas, relative to their size; from 10 on: relative
    scale = abs(ref_lg) + (abs(math.lgamma(z)) + abs(math.lgamma(z + x)) if z < 10 else 0.0)
    assert abs(lnpoch(z, x) - ref_lg) <= 8 * EPS * scale
    assert abs(digamma_diff(z, x) - ref_dg) <= 8 * EPS * abs(ref_dg)


def test_differences_zero_and_invalid():
    assert lnpoch(3.0, 0.0) == 0.0 and digamma_diff(3.0, 0.0) == 0.0
    # z <= 0, -inf or NaN: NaN (and no endless shift loop)
    for z in (0.0, -1.0, -math.inf, math.nan):
        assert math.isnan(lnpoch(z, 2.0)) and math.isnan(digamma_diff(z, 2.0))


# --------------------------------------------------------------------------------------
# Chunking helpers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, size",
    [
        ([], 0),
        ([0.0], 1),
        ([0.0, 3.0, 1.0, 2.0], 4),  # max + 1 == rows: table
        ([0.0, 4.0, 1.0, 2.0], 0),  # max + 1 > rows: no table
        ([0.0, 1.5, 1.0], 0),  # non-integer
        ([0.0, -1.0, 1.0], 0),  # negative
        ([0.0, math.nan, 1.0], 0),
        ([0.0, math.inf, 1.0], 0),
    ],
)
def test_int_table_rows_small(x, size):
    need = int_table_rows(np.array(x, dtype=float))
    # small tables are filled completely
    assert need.dtype == np.bool_ and need.size == size and need.all()


@pytest.mark.parametrize("n", [30_000, 3 * CHUNK + 5])
def test_int_table_rows_any_chunk(n):
    # Large enough for the parallel scan (first case); a bad value in the last, partial chunk.
    x = np.arange(n, dtype=float) % 50
    assert int_table_rows(x).size == 50
    x[-1] = 7.25
    assert int_table_rows(x).size == 0
    x[-1] = n + 0.0
    assert int_table_rows(x).size == 0
    x[-1] = n - 1.0
    need = int_table_rows(x)
    # a large table: only the x values that occur
    assert need.size == n
    np.testing.assert_array_equal(np.flatnonzero(need), np.r_[np.arange(50), n - 1])


def test_sum_chunks_adds_in_chunk_order():
    part = np.array([[1e16, 1.0], [1.0, 2.0], [-1e16, 3.0]])
    # ((1e16 + 1) - 1e16) = 0 in this order; another order would give 1.
    np.testing.assert_array_equal(sum_chunks(part), [0.0, 6.0])
    assert sum_chunks(np.empty((0, 3))).tolist() == [0.0, 0.0, 0.0]
