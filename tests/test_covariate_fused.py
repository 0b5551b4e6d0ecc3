"""The fused covariate likelihood of the rows path (clvbayes.kernels.covariate_rows, FusedRowLogLik)."""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.traversal import ancestors
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvbayes import CovariatePurchaseModel, simulate_customers
from clvbayes.families import get_family
from clvbayes.models.row_ops import FusedRowLogLik, RowLogLik, fused_kernels, row_kernels

FAMILIES = ["bgnbd", "mbgnbd", "pnbd"]
# parameter k's columns of Z (purchase 0:3, dropout 3:6) and signs, as COVARIATE_LINKS
LINKS = {"bgnbd": ((0, 0, 3, 3), (0, 3, 6, 6), (1.0, -1.0, 1.0, 1.0)),
         "mbgnbd": ((0, 0, 3, 3), (0, 3, 6, 6), (1.0, -1.0, 1.0, 1.0)),
         "pnbd": ((0, 0, 0, 3), (0, 3, 0, 6), (1.0, -1.0, 1.0, -1.0))}


def _data(n: int, seed: int, xmax: float, Tmax: float):
    rng = np.random.default_rng(seed)
    T = rng.uniform(0.01, Tmax, n)
    x = np.floor(rng.uniform(0, 1, n) ** 3 * (xmax + 1)).clip(0, xmax)
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    w = rng.integers(1, 5, n).astype(float)
    Z = rng.normal(0.0, 1.0, (n, 6))
    return Z, x, t_x, T, w


def _reference(family, base, gam, Z, x, t_x, T, w):
    """The old route: per-row θ in NumPy, row_loglik_sum_grad4, the chain rule in NumPy."""
    lo, hi, sign = LINKS[family]
    off = np.concatenate([[0], np.cumsum(np.subtract(hi, lo))])
    ex = np.column_stack([np.exp(sign[k] * (Z[:, lo[k]:hi[k]] @ gam[off[k]:off[k + 1]])) for k in range(4)])
    theta = base * ex
    val, g = row_kernels(family)["serial_sum_grad"](*np.ascontiguousarray(theta.T), x, t_x, T, w)
    gb = (g * ex).sum(axis=0)
    gg = np.concatenate([((g[:, k] * theta[:, k] * sign[k])[:, None] * Z[:, lo[k]:hi[k]]).sum(axis=0)
                         for k in range(4)])
    scale = (np.abs(g * ex).sum(axis=0), np.concatenate(
        [(np.abs(g[:, k] * theta[:, k])[:, None] * np.abs(Z[:, lo[k]:hi[k]])).sum(axis=0) for k in range(4)]))
    return val, gb, gg, scale


def _call(family, base, gam, Z, x, t_x, T, w, serial=True):
    """The kernel FusedRowLogLik calls (BG/NBD: the lean one)."""
    lo, hi, sign = (np.array(v) for v in LINKS[family])
    ks = fused_kernels(family)
    k = ks[("lean_" if family == "bgnbd" else "") + ("serial_sum_grad" if serial else "sum_grad")]
    return k(np.asarray(base, float), gam, Z, lo.astype(np.int64), hi.astype(np.int64), sign, x, t_x, T, w)


_LOG10 = st.floats(-4.0, 4.0)


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=20, deadline=None, derandomize=True)
@given(scales=st.tuples(_LOG10, _LOG10, _LOG10, _LOG10), seed=st.integers(0, 2**16),
       xmax=st.sampled_from([3.0, 100.0, 1e4]), Tmax=st.sampled_from([1.0, 52.0, 1e4]))
def test_fused_kernel_is_the_row_kernel_and_the_chain_rule(family, scales, seed, xmax, Tmax):
    Z, x, t_x, T, w = _data(60, seed, xmax, Tmax)
    base = 10.0 ** np.array(scales)
    gam = np.random.default_rng(seed + 1).normal(0.0, 0.2, 9 if family != "pnbd" else 6)
    val, gb, gg = _call(family, base, gam, Z, x, t_x, T, w)
    rv, rgb, rgg, (sb, sg) = _reference(family, base, gam, Z, x, t_x, T, w)
    if family == "bgnbd":  # the lean kernel is the generic fused one (the family core per row)
        lo, hi, sign = (np.array(v) for v in LINKS[family])
        gv, ggb, ggg = fused_kernels(family)["serial_sum_grad"](base, gam, Z, lo, hi, sign, x, t_x, T, w)
        assert val == pytest.approx(gv, rel=1e-12, abs=1e-300)
        assert np.all(np.abs(gb - ggb) <= 1e-12 * sb + 1e-300) and np.all(np.abs(gg - ggg) <= 1e-12 * sg + 1e-300)
    if not math.isfinite(rv):
        assert val == rv
        return
    assert val == pytest.approx(rv, rel=1e-12, abs=1e-300)
    # sums in another order: rounding relative to the sum of magnitudes
    assert np.all(np.abs(gb - rgb) <= 1e-12 * sb + 1e-300)
    assert np.all(np.abs(gg - rgg) <= 1e-12 * sg + 1e-300)
    assert np.all(np.isfinite(gb)) and np.all(np.isfinite(gg))


@pytest.mark.parametrize("family", FAMILIES)
def test_fused_gradient_is_finite_differences(family):
    Z, x, t_x, T, w = _data(200, 4, 30.0, 52.0)
    base = np.array([0.6, 8.0, 0.8, 2.5] if family != "pnbd" else [0.6, 8.0, 0.7, 10.0])
    gam = np.random.default_rng(7).normal(0.0, 0.3, 9 if family != "pnbd" else 6)
    _, gb, gg = _call(family, base, gam, Z, x, t_x, T, w)
    # unlinked parameters' coefficient blocks are empty; central differences in base and γ (step 1e-5: the Pareto/NBD core's rounding)
    for k in range(4):
        h = 1e-5 * base[k]
        up, dn = base.copy(), base.copy()
        up[k] += h
        dn[k] -= h
        fd = (_call(family, up, gam, Z, x, t_x, T, w)[0] - _call(family, dn, gam, Z, x, t_x, T, w)[0]) / (2 * h)
        assert gb[k] == pytest.approx(fd, rel=1e-6, abs=1e-6)
    for j in range(gam.size):
        up, dn = gam.copy(), gam.copy()
        up[j] += 1e-5
        dn[j] -= 1e-5
        fd = (_call(family, base, up, Z, x, t_x, T, w)[0] - _call(family, base, dn, Z, x, t_x, T, w)[0]) / 2e-5
        assert gg[j] == pytest.approx(fd, rel=1e-6, abs=1e-6)


def test_fused_kernel_outside_the_support_is_minus_inf():
    Z, x, t_x, T, w = _data(50, 1, 10.0, 40.0)
    gam = np.zeros(9)
    val, gb, gg = _call("bgnbd", np.array([0.6, -8.0, 0.8, 2.5]), gam, Z, x, t_x, T, w)
    assert val == -math.inf and np.all(np.isnan(gb)) and np.all(np.isnan(gg))
    gam[3] = 800.0  # a_i = a exp(800 z): overflows to inf on some rows
    val, gb, gg = _call("bgnbd", np.array([0.6, 8.0, 0.8, 2.5]), gam, Z, x, t_x, T, w)
    assert val == -math.inf and np.all(np.isnan(gg))


@pytest.mark.parametrize("family", ["bgnbd", "mbgnbd"])  # the lean and the generic kernel
def test_threaded_fused_kernel_is_the_serial_one(family):
    Z, x, t_x, T, w = _data(30_000, 9, 20.0, 52.0)  # above PARALLEL_MIN_ROWS: threaded chunks
    gam = np.random.default_rng(9).normal(0.0, 0.2, 9)
    base = np.array([0.6, 8.0, 0.8, 2.5])
    a = _call(family, base, gam, Z, x, t_x, T, w, serial=False)
    b = _call(family, base, gam, Z, x, t_x, T, w, serial=True)
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])


def _customers(family: str, n: int, seed: int):
    base = dict(r=0.6, alpha=8.0, a=0.8, b=2.5) if family != "pnbd" else dict(r=0.6, alpha=8.0, s=0.7, beta=10.0)
    df = simulate_customers(**base, model=family, T=40.0, n_customers=n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for c in ("z1", "z2", "z3"):
        df[c] = np.round(rng.normal(0.0, 1.0, n), 2)
    return df, base


@pytest.mark.parametrize("family", FAMILIES)
def test_model_logp_and_dlogp_equal_the_unfused_graph(family):
    df, base = _customers(family, 400, 3)
    m = CovariatePurchaseModel(df, family=family, purchase_covariates=["z1", "z2", "z3"],
                               dropout_covariates=["z1", "z2", "z3"], path="rows")
    model = m.model
    assert any(v.owner is not None and isinstance(v.owner.op, FusedRowLogLik) for v in ancestors([model["loglik"]]))
    # the unfused graph of the same model: per-row θ vectors in PyTensor and RowLogLik
    bvars = {p: model[p] for p in m.param_names}
    gvars = {n: model[n] for n in m.coefficient_names}
    n_z = m._z_customers.shape[1]
    rows, counts = np.unique(np.column_stack([m._z_customers, m.x, m.t_x, m.T]), axis=0, return_counts=True)
    z = {"purchase": rows[:, :m._n_purchase_terms], "dropout": rows[:, m._n_purchase_terms:n_z]}
    theta = [v if v.ndim == 1 else pt.alloc(v, rows.shape[0]) for v in m._linked(bvars, gvars, z)]
    old = RowLogLik(m.family.name)(*theta, *(np.ascontiguousarray(rows[:, n_z + j]) for j in range(3)),
                                   counts.astype(np.float64))
    new = model["loglik"]
    free = [model[n] for n in [*m.param_names, *m.coefficient_names]]
    f_new = pytensor.function(free, [new, *pytensor.grad(new, free)])
    f_old = pytensor.function(free, [old, *pytensor.grad(old, free)])
    f_numba = pytensor.function(free, [new, *pytensor.grad(new, free)], mode="NUMBA")
    rng = np.random.default_rng(11)
    for _ in range(3):
        point = [np.float64(v * np.exp(rng.normal(0, 0.3))) for v in base.values()]
        point += [rng.normal(0.0, 0.3, 3) for _ in m.coefficient_names]
        a, b, c = f_new(*point), f_old(*point), f_numba(*point)
        for u, v in zip(a, b, strict=True):
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-9)
        for u, v in zip(a, c, strict=True):  # the compiled (nutpie) implementation: the same bits
            np.testing.assert_array_equal(u, v)
    # and through PyMC's logp/dlogp (transformed values)
    logp = model.compile_logp()
    ip = model.initial_point()
    assert np.isfinite(logp(ip))


def test_op_validates_its_inputs():
    op = FusedRowLogLik("bgnbd", (0, 0, 3, 3), (0, 3, 6, 6), (1.0, -1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match="13 inputs"):
        op(1.0, 2.0)
    with pytest.raises(ValueError, match="hi >= lo"):
        FusedRowLogLik("bgnbd", (0, 3, 3, 3), (0, 0, 6, 6), (1.0, -1.0, 1.0, 1.0))
    assert get_family(op.family).name == "bgnbd"


@pytest.mark.parametrize("where", ["x=0", "x>0"])
@pytest.mark.parametrize("z, g", [(1.0, 800.0), (1.0, -800.0), (math.nan, 1.0)])
def test_lean_kernel_dropout_links_out_of_support_is_minus_inf(where, z, g):
    # the x = 0 rows' likelihood has no a_i, b_i, but a_i = a exp(z'γ_a) leaving (0, inf) (or
    # NaN) on one such row still puts the point outside the support, as on a row with x > 0
    Z, x, t_x, T, w = _data(50, 2, 10.0, 40.0)
    Z[:, 3:] = 0.0
    rows = np.flatnonzero(x == 0) if where == "x=0" else np.flatnonzero(x > 0)
    Z[rows[len(rows) // 2], 3] = z
    gam = np.zeros(9)
    gam[3] = g  # only that row's a_i is 0, inf or NaN
    base = np.array([0.6, 8.0, 0.8, 2.5])
    val, gb, gg = _call("bgnbd", base, gam, Z, x, t_x, T, w)
    assert val == -math.inf and np.all(np.isnan(gb)) and np.all(np.isnan(gg))
    Z[rows[len(rows) // 2], 3] = 1.0
    gam[3] = 1.0  # within the support: finite
    assert math.isfinite(_call("bgnbd", base, gam, Z, x, t_x, T, w)[0])
