"""Per-row parameter likelihood sums and per-cell predictions (clvbayes.kernels.cells), every family."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvbayes.families import family_names, get_family
from clvbayes.families.compiled import drivers_for
from clvbayes.kernels import build
from clvbayes.kernels import cells as K
from clvbayes.kernels import drivers as _drv


def _bound(name: str):
    fam = get_family(name)
    d = drivers_for(fam)
    generic_sum_grad = build.rebuild(_drv.loglik_sum_grad, replace={_drv.CORE_NAMES[c]: f for c, f in fam.cores.items()},
                                     tag=f"test_cells_{name}")
    row = build.rebuild(K.row_loglik_sum_grad, replace={"_loglik_grad_one": fam.cores["loglik_grad_one"]},
                        tag=f"test_cells_{name}")
    return fam, d, generic_sum_grad, row


def _rows(n: int, seed: int):
    rng = np.random.default_rng(seed)
    T = np.round(rng.uniform(0.0, 52.0, n), 2)
    x = np.where(rng.uniform(size=n) < 0.5, 0.0, rng.poisson(2.5, n)).astype(float)
    t_x = np.where(x > 0, np.round(rng.uniform(0, 1, n) * T, 2), 0.0)
    w = rng.integers(1, 20, n).astype(float)
    return x, t_x, T, w


TH = (0.6, 8.0, 0.9, 3.0)


@pytest.mark.parametrize("name", family_names())
@pytest.mark.parametrize("n", [300, 30_000])  # serial and threaded chunk loops
def test_rows_with_equal_parameters_are_the_fit_without_covariates(name, n):
    fam, d, generic, row = _bound(name)
    x, t_x, T, w = _rows(n, 2)
    theta = np.tile(TH, (n, 1))
    tot, grad = row(theta, x, t_x, T, w)
    v, g = generic(*TH, x, t_x, T, w)
    assert tot == v  # same per-row terms summed in the same chunks: bit for bit
    np.testing.assert_allclose(grad.sum(axis=0), g, rtol=1e-12)
    assert tot == pytest.approx(d.loglik_sum_grad(*TH, *d.loglik_data(x, t_x, T, w))[0], rel=1e-13)
    core = fam.cores["loglik_grad_one"]
    for i in (0, 7, n - 1):
        np.testing.assert_array_equal(grad[i], w[i] * np.array(core(*TH, x[i], t_x[i], T[i])[1:]))


@pytest.mark.parametrize("name", family_names())
def test_row_gradient_is_the_derivative_of_the_total(name):
    _, _, _, row = _bound(name)
    x, t_x, T, w = _rows(40, 3)
    rng = np.random.default_rng(4)
    theta = np.array(TH) * np.exp(rng.normal(0, 0.3, (40, 4)))
    _, grad = row(theta, x, t_x, T, w)
    for i, k in [(0, 0), (5, 1), (17, 2), (39, 3)]:
        h = 1e-6 * theta[i, k]
        up, dn = theta.copy(), theta.copy()
        up[i, k] += h
        dn[i, k] -= h
        fd = (row(up, x, t_x, T, w)[0] - row(dn, x, t_x, T, w)[0]) / (2 * h)
        assert grad[i, k] == pytest.approx(fd, rel=1e-5, abs=1e-7)
    theta[3, 2] = math.nan
    v, g = row(theta, x, t_x, T, w)
    assert v == -math.inf and np.isnan(g).all()


_LOG10 = st.floats(-3.0, 3.0)


@pytest.mark.parametrize("name", family_names())
@settings(max_examples=25, deadline=None, derandomize=True)
@given(scales=st.tuples(_LOG10, _LOG10, _LOG10, _LOG10), seed=st.integers(0, 2**16))
def test_row_kernels_of_four_vectors_and_cell_means_are_the_cores(name, scales, seed):
    from clvbayes.models.row_ops import row_kernels

    fam = get_family(name)
    k = row_kernels(name)
    x, t_x, T, w = _rows(40, seed)
    rng = np.random.default_rng(seed)
    # per-row parameters spread around 10^scale (1e-3.5 .. 1e3.5)
    theta = 10.0 ** (np.array(scales) + rng.uniform(-0.5, 0.5, (40, 4)))
    tot, grad = k["serial_sum_grad"](*np.asfortranarray(theta).T, x, t_x, T, w)
    ref = sum(w[i] * fam.cores["loglik_one"](*theta[i], x[i], t_x[i], T[i]) for i in range(40))
    assert tot == pytest.approx(ref, rel=1e-10, abs=1e-10)
    one = _bound(name)[3](theta, x, t_x, T, w)
    assert tot == one[0] and np.array_equal(grad, one[1])
    # cell means: customers point at cells; every draw's core averaged
    cells = theta[:6].reshape(3, 2, 4)
    cell = np.arange(40, dtype=np.int64) % 3
    pa = k["p_alive"](cells, cell, x, t_x, T)
    ce = k["conditional_expected_purchases"](cells, cell, x, t_x, T, 5.0)
    for i in (0, 1, 2, 39):
        c = cell[i]
        want = [fam.cores["p_alive_one"](*cells[c, d], x[i], t_x[i], T[i]) for d in range(2)]
        assert pa[i] == pytest.approx(np.mean(want), rel=1e-15)
        want = [fam.cores["conditional_expected_purchases_one"](*cells[c, d], x[i], t_x[i], T[i], 5.0) for d in range(2)]
        assert ce[i] == pytest.approx(np.mean(want), rel=1e-15)


def test_threaded_row_kernel_is_the_serial_one():
    from clvbayes.models.row_ops import row_kernels

    x, t_x, T, w = _rows(30_000, 9)  # above PARALLEL_MIN_ROWS: threaded chunks
    theta = np.array(TH) * np.exp(np.random.default_rng(9).normal(0.0, 0.3, (x.size, 4)))
    k = row_kernels("bgnbd")
    a = k["sum_grad"](*theta.T, x, t_x, T, w)
    b = k["serial_sum_grad"](*theta.T, x, t_x, T, w)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
