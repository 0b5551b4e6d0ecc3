"""Tests of the PyTensor Op layer (clvbayes.models.ops).

The Ops must return exactly what the Numba kernels return (they call them; the serial builds
sum in the same fixed chunks, so values and gradients are bit-identical), and agree with an
independent pure-PyTensor transcription of the likelihoods (Fader, Hardie & Lee 2005,
"Counting your customers the easy way", Marketing Science 24(2), eq. (6); Fader, Hardie &
Lee 2005, "RFM and CLV", JMR 42(4), appendix), whose gradient comes from ``pytensor.grad``.
Also checked: one kernel call per logp+gradient evaluation, finite-difference gradients
(``verify_grad``), the Numba backend, the Ops inside a PyMC model, and nutpie.
"""

from __future__ import annotations

import ctypes
import pickle
import subprocess
import sys

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvbayes.kernels.bgnbd import bgnbd_loglik_sum, bgnbd_loglik_sum_grad
from clvbayes.kernels.gamma_gamma import gg_loglik_sum, gg_loglik_sum_grad
from clvbayes.models import ops
from clvbayes.models.ops import (
    BGNBDData,
    BGNBDLogLik,
    GammaGammaData,
    GammaGammaLogLik,
    LogLikSumOp,
    bgnbd_data,
    bgnbd_loglik_pytensor,
    bgnbd_loglik_tensor,
    gamma_gamma_data,
    gamma_gamma_loglik_pytensor,
    gamma_gamma_loglik_tensor,
)

# Parameter points: FHL 2005 published CDNOW estimates (BG/NBD: r=0.243, α=4.414,
# a=0.793, b=2.426; Gamma-Gamma: p=6.25, q=3.74, γ=15.44) and points far from them.
BG_POINTS = [
    (0.243, 4.414, 0.793, 2.426),
    (1.7, 0.6, 3.0, 0.4),
    (0.05, 40.0, 0.15, 9.0),
]
GG_POINTS = [
    (6.25, 3.74, 15.44),
    (0.8, 1.5, 2.0),
    (20.0, 0.7, 150.0),
]
BG_NAMES = ("r", "alpha", "a", "b")
GG_NAMES = ("p", "q", "gamma")


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_bg(cdnow_split) -> BGNBDData:
    return bgnbd_data(
        cdnow_split["frequency"], cdnow_split["recency"], cdnow_split["T"], shared=False
    )


@pytest.fixture(scope="module")
def cdnow_gg(cdnow_split) -> GammaGammaData:
    rep = cdnow_split[cdnow_split["frequency"] > 0]
    return gamma_gamma_data(rep["frequency"], rep["monetary_value"], shared=False)


def random_bg(seed: int, n: int = 300) -> BGNBDData:
    """Uncompressed random rows with non-integer weights (shapes only matter here)."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(1.0, 52.0, n)
    x = np.minimum(rng.negative_binomial(0.4, 0.1, n), 80).astype(float)
    t_x = np.where(x > 0, rng.uniform(0.0, 1.0, n) * T, 0.0)
    w = rng.uniform(0.5, 3.0, n)
    return BGNBDData(x, t_x, T, w)


def random_gg(seed: int, n: int = 300) -> GammaGammaData:
    """Random (x, m) rows including x = 0 rows (which must contribute 0)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 25, n).astype(float)
    m = np.where(x > 0, rng.lognormal(3.0, 1.0, n), 0.0)
    w = rng.uniform(0.5, 3.0, n)
    return GammaGammaData(x, m, w)


BG_KERNEL = {"grad": bgnbd_loglik_sum_grad, "value": bgnbd_loglik_sum}
GG_KERNEL = {"grad": gg_loglik_sum_grad, "value": gg_loglik_sum}


def compile_op_and_ref(kind: str, data, mode=None, parallel: bool = False, ref: bool = True):
    """f(params) -> [op value, op grads..., ref value, ref grads...] (no ref if not ``ref``)."""
    if kind == "bg":
        ps = [pt.dscalar(n) for n in BG_NAMES]
        val = bgnbd_loglik_tensor(*ps, data, parallel=parallel)
        ref_val = bgnbd_loglik_pytensor(*ps, data)
    else:
        ps = [pt.dscalar(n) for n in GG_NAMES]
        val = gamma_gamma_loglik_tensor(*ps, data, parallel=parallel)
        ref_val = gamma_gamma_loglik_pytensor(*ps, data)
    outs = [val, *pytensor.grad(val, ps)]
    if ref:
        outs += [ref_val, *pytensor.grad(ref_val, ps)]
    return pytensor.function(ps, outs, mode=mode)


def split(out, k):
    out = [float(v) for v in out]
    if len(out) == k + 1:
        return out[0], np.array(out[1:])
    return out[0], np.array(out[1 : k + 1]), out[k + 1], np.array(out[k + 2 :])


def grad_scale(data) -> float:
    """Total weight: the pure-PyTensor form's rounding error grows with the number of rows."""
    return float(np.sum(np.asarray(data[-1])))


# --------------------------------------------------------------------------------------
# Op == kernel == pure PyTensor
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["cdnow", "random"])
@pytest.mark.parametrize("point", BG_POINTS)
def test_bgnbd_op_matches_kernel_and_pytensor(source, point, cdnow_bg):
    data = cdnow_bg if source == "cdnow" else random_bg(7)
    f = compile_op_and_ref("bg", data)
    val, grad, ref_val, ref_grad = split(f(*point), 4)
    k_val, k_grad = bgnbd_loglik_sum_grad(*point, *data)
    # Same kernel source and summation order: bit-identical.
    assert val == k_val
    np.testing.assert_array_equal(grad, k_grad)
    assert val == bgnbd_loglik_sum(*point, *data)
    # Independent transcription of FHL (2005) eq. (6), gradient by pytensor.grad.
    n = grad_scale(data)
    np.testing.assert_allclose(val, ref_val, rtol=1e-12, atol=1e-12 * n)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-10 * n)


@pytest.mark.parametrize("source", ["cdnow", "random"])
@pytest.mark.parametrize("point", GG_POINTS)
def test_gamma_gamma_op_matches_kernel_and_pytensor(source, point, cdnow_gg):
    data = cdnow_gg if source == "cdnow" else random_gg(8)
    f = compile_op_and_ref("gg", data)
    val, grad, ref_val, ref_grad = split(f(*point), 3)
    k_val, k_grad = gg_loglik_sum_grad(*point, *data)
    assert val == k_val
    np.testing.assert_array_equal(grad, k_grad)
    assert val == gg_loglik_sum(*point, *data)
    n = grad_scale(data)
    np.testing.assert_allclose(val, ref_val, rtol=1e-12, atol=1e-12 * n)
    # ψ(px+q) - ψ(px) naively differenced in the reference: looser absolute tolerance.
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-9 * n)


@pytest.fixture(scope="module")
def bg_random_fns():
    data = random_bg(11, n=200)
    return data, compile_op_and_ref("bg", data)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.tuples(*(st.floats(-1.5, 1.5) for _ in range(4))))
def test_bgnbd_op_matches_pytensor_hypothesis(bg_random_fns, log_point):
    data, f = bg_random_fns
    point = tuple(10.0**e for e in log_point)
    val, grad, ref_val, ref_grad = split(f(*point), 4)
    n = grad_scale(data)
    np.testing.assert_allclose(val, ref_val, rtol=1e-11, atol=1e-11 * n)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-9 * n)


@pytest.fixture(scope="module")
def gg_random_fns():
    data = random_gg(12, n=200)
    return data, compile_op_and_ref("gg", data)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.tuples(*(st.floats(-1.0, 2.0) for _ in range(3))))
def test_gamma_gamma_op_matches_pytensor_hypothesis(gg_random_fns, log_point):
    data, f = gg_random_fns
    point = tuple(10.0**e for e in log_point)
    val, grad, ref_val, ref_grad = split(f(*point), 3)
    n = grad_scale(data)
    np.testing.assert_allclose(val, ref_val, rtol=1e-11, atol=1e-11 * n)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-8 * n)


def test_parallel_op_is_bit_identical():
    data = random_bg(3, n=40_000)  # several chunks; above the kernels' threaded-loop threshold
    point = BG_POINTS[0]
    serial = split(compile_op_and_ref("bg", data, ref=False)(*point), 4)
    par = split(compile_op_and_ref("bg", data, parallel=True, ref=False)(*point), 4)
    assert serial[0] == par[0]
    np.testing.assert_array_equal(serial[1], par[1])


def reachable_dispatchers(kernel) -> list:
    """The njit dispatchers a kernel calls by global name, transitively (itself included)."""
    seen, todo = [], [kernel]
    while todo:
        k = todo.pop()
        if any(k is s for s in seen):
            continue
        seen.append(k)
        for name in k.py_func.__code__.co_names:
            v = k.py_func.__globals__.get(name)
            if hasattr(v, "py_func") and hasattr(v, "targetoptions"):
                todo.append(v)
    return seen


def test_serial_builds_have_no_parallel_dispatchers():
    for table in (ops._BGNBD_KERNELS, ops._GG_KERNELS):
        for (_, parallel), kern in table.items():
            has_par = [
                d.targetoptions.get("parallel", False) for d in reachable_dispatchers(kern)
            ]
            assert any(has_par) == parallel


# --------------------------------------------------------------------------------------
# Gradients by finite differences
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", BG_POINTS)
def test_bgnbd_verify_grad(point):
    data = random_bg(5, n=50)
    pytensor.gradient.verify_grad(
        lambda *ps: BGNBDLogLik()(*ps, *data),
        [np.array(v) for v in point],
        rng=np.random.default_rng(1),
    )


@pytest.mark.parametrize("point", GG_POINTS)
def test_gamma_gamma_verify_grad(point):
    data = random_gg(6, n=50)
    pytensor.gradient.verify_grad(
        lambda *ps: GammaGammaLogLik()(*ps, *data),
        [np.array(v) for v in point],
        rng=np.random.default_rng(2),
    )


def test_verify_grad_value_only_op():
    """The value-only Op differentiates through a value-and-gradient node."""
    data = random_bg(9, n=50)
    pytensor.gradient.verify_grad(
        lambda *ps: BGNBDLogLik(with_grad=False)(*ps, *data),
        [np.array(v) for v in BG_POINTS[1]],
        rng=np.random.default_rng(3),
    )


def test_no_second_derivative():
    data = random_bg(9, n=10)
    ps = [pt.dscalar(n) for n in BG_NAMES]
    g = pytensor.grad(BGNBDLogLik()(*ps, *data), ps)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        pytensor.grad(g[0], ps)


# --------------------------------------------------------------------------------------
# One kernel call for value + gradient
# --------------------------------------------------------------------------------------


def loglik_nodes(fn) -> list:
    return [n for n in fn.maker.fgraph.apply_nodes if isinstance(n.op, LogLikSumOp)]


@pytest.fixture
def counted(monkeypatch):
    """Replace the Ops' kernels by wrappers that count their calls."""
    calls = {"grad": 0, "value": 0}

    def wrap(kern, kind):
        def f(*args):
            calls[kind] += 1
            return kern(*args)

        return f

    for cls, table in ((BGNBDLogLik, ops._BGNBD_KERNELS), (GammaGammaLogLik, ops._GG_KERNELS)):
        new = {k: wrap(v, "grad" if k[0] else "value") for k, v in table.items()}
        monkeypatch.setattr(cls, "_kernels", new)
    return calls


@pytest.mark.parametrize("kind", ["bg", "gg"])
def test_value_and_grad_use_one_kernel_call(kind, counted):
    if kind == "bg":
        data, names, op, point = random_bg(4, n=40), BG_NAMES, BGNBDLogLik(), BG_POINTS[0]
    else:
        data, names, op, point = random_gg(4, n=40), GG_NAMES, GammaGammaLogLik(), GG_POINTS[0]
    ps = [pt.dscalar(n) for n in names]
    # A prior-like extra term: the graph of a model's logp, not the Op alone.
    logp = op(*ps, *data) - sum(p**2 for p in ps)
    f = pytensor.function(ps, [logp, *pytensor.grad(logp, ps)])
    nodes = loglik_nodes(f)
    assert len(nodes) == 1 and nodes[0].op.with_grad
    f(*point)
    assert counted == {"grad": 1, "value": 0}
    # Value only: the rewrite swaps in the value kernel.
    fv = pytensor.function(ps, logp)
    nodes = loglik_nodes(fv)
    assert len(nodes) == 1 and not nodes[0].op.with_grad
    fv(*point)
    assert counted == {"grad": 1, "value": 1}


def test_one_node_in_numba_graph():
    data = random_bg(4, n=40)
    ps = [pt.dscalar(n) for n in BG_NAMES]
    val = BGNBDLogLik()(*ps, *data)
    f = pytensor.function(ps, [val, *pytensor.grad(val, ps)], mode="NUMBA")
    nodes = loglik_nodes(f)
    assert len(nodes) == 1 and nodes[0].op.with_grad


# --------------------------------------------------------------------------------------
# Numba backend
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("kind", ["bg", "gg"])
def test_numba_mode_matches_c_mode(kind, parallel, cdnow_bg, cdnow_gg):
    data = cdnow_bg if kind == "bg" else cdnow_gg
    points = BG_POINTS if kind == "bg" else GG_POINTS
    k = 4 if kind == "bg" else 3
    f_c = compile_op_and_ref(kind, data, mode="FAST_RUN", parallel=parallel, ref=False)
    f_nb = compile_op_and_ref(kind, data, mode="NUMBA", parallel=parallel, ref=False)
    for point in points:
        c = split(f_c(*point), k)
        nb = split(f_nb(*point), k)
        assert c[0] == nb[0]
        np.testing.assert_array_equal(c[1], nb[1])


@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
@pytest.mark.parametrize("kind", ["bg", "gg"])
def test_invalid_parameters_give_minus_inf(kind, mode):
    if kind == "bg":
        data, names, op, good = random_bg(2, n=20), BG_NAMES, BGNBDLogLik(), BG_POINTS[0]
    else:
        data, names, op, good = random_gg(2, n=20), GG_NAMES, GammaGammaLogLik(), GG_POINTS[0]
    ps = [pt.dscalar(n) for n in names]
    val = op(*ps, *data)
    f = pytensor.function(ps, [val, val.owner.outputs[1]], mode=mode)
    fv = pytensor.function(ps, type(op)(with_grad=False)(*ps, *data), mode=mode)
    for i in range(len(names)):
        for bad in (0.0, -1.0, np.nan):
            point = list(good)
            point[i] = bad
            v, g = f(*point)
            assert v == -np.inf and np.isnan(g).all()
            assert fv(*point) == -np.inf
    v, g = f(*good)
    assert np.isfinite(v) and np.isfinite(g).all()


def test_op_input_checks():
    with pytest.raises(TypeError, match="takes 8 inputs"):
        BGNBDLogLik()(1.0, 1.0, 1.0, 1.0, np.ones(3))
    with pytest.raises(TypeError, match="r must have 0 dimension"):
        BGNBDLogLik()(np.ones(2), 1.0, 1.0, 1.0, *[np.ones(3)] * 4)
    with pytest.raises(TypeError, match="m must have 1 dimension"):
        GammaGammaLogLik()(1.0, 1.0, 1.0, np.ones(3), np.ones((3, 1)), np.ones(3))
    # Integer inputs are cast to float64.
    node = BGNBDLogLik()(1, 2, 3, 4, *[np.ones(3, dtype=int)] * 4).owner
    assert all(i.dtype == "float64" for i in node.inputs)


# --------------------------------------------------------------------------------------
# Data helpers
# --------------------------------------------------------------------------------------


def test_bgnbd_data_compression_keeps_loglik(cdnow_split):
    cols = (cdnow_split["frequency"], cdnow_split["recency"], cdnow_split["T"])
    full = bgnbd_data(*cols, compress=False, shared=False)
    comp = bgnbd_data(*cols, shared=False)
    assert comp.x.size < full.x.size and comp.weights.sum() == full.x.size
    for point in BG_POINTS:
        a = bgnbd_loglik_sum_grad(*point, *full)
        b = bgnbd_loglik_sum_grad(*point, *comp)
        np.testing.assert_allclose(b[0], a[0], rtol=1e-12)
        np.testing.assert_allclose(b[1], a[1], rtol=1e-9, atol=1e-9)


def test_gamma_gamma_data_drops_zero_frequency(cdnow_split):
    d = gamma_gamma_data(cdnow_split["frequency"], cdnow_split["monetary_value"], shared=False)
    assert (d.x > 0).all() and d.weights.sum() == (cdnow_split["frequency"] > 0).sum()
    full = gamma_gamma_data(
        cdnow_split["frequency"], cdnow_split["monetary_value"], compress=False, shared=False
    )
    np.testing.assert_allclose(
        gg_loglik_sum(*GG_POINTS[0], *d),
        gg_loglik_sum(*GG_POINTS[0], cdnow_split["frequency"].to_numpy(float),
                      cdnow_split["monetary_value"].to_numpy(float),
                      np.ones(len(cdnow_split))),
        rtol=1e-12,
    )  # fmt: skip
    assert full.x.size == d.weights.sum()


def test_data_helpers_shared_variables_and_errors():
    d = bgnbd_data([1, 0], [0.5, 0.0], [2.0, 3.0], name="aa")
    assert [v.name for v in d] == ["aa_x", "aa_t_x", "aa_T", "aa_weights"]
    assert isinstance(d.x, pytensor.compile.SharedVariable)
    with pm.Model() as model:
        d2 = bgnbd_data([1, 0], [0.5, 0.0], [2.0, 3.0])
        g2 = gamma_gamma_data([1, 0], [5.0, 0.0])
    assert {"bgnbd_x", "bgnbd_weights", "gg_m"} <= set(model.named_vars)
    assert d2.weights.get_value().tolist() == [1.0, 1.0] and g2.x.get_value().tolist() == [1.0]
    with pytest.raises(ValueError, match="equal length"):
        bgnbd_data([1, 0], [0.5], [2.0, 3.0])
    with pytest.raises(ValueError, match="compress=False"):
        bgnbd_data([1], [0.5], [2.0], weights=[2.0])
    with pytest.raises(ValueError, match="compress=False"):
        gamma_gamma_data([1], [5.0], weights=[2.0])
    w = bgnbd_data([1], [0.5], [2.0], weights=[2.5], compress=False, shared=False).weights
    assert w.tolist() == [2.5]


# --------------------------------------------------------------------------------------
# Inside PyMC and nutpie
# --------------------------------------------------------------------------------------

PRIOR_SCALES = {"r": 2.0, "alpha": 10.0, "a": 2.0, "b": 5.0}


def prior_logp(point) -> float:
    """PyMC's own HalfNormal log-densities (they differ from scipy's by ~2e-9: PyMC rounds a
    constant), summed over the parameters."""
    return float(
        sum(pm.logp(pm.HalfNormal.dist(PRIOR_SCALES[n]), v).eval() for n, v in zip(BG_NAMES, point))
    )


def bg_model(data: BGNBDData) -> pm.Model:
    with pm.Model() as model:
        params = [pm.HalfNormal(n, s) for n, s in PRIOR_SCALES.items()]
        pm.Potential("loglik", bgnbd_loglik_tensor(*params, data))
    return model


def test_pymc_logp_and_dlogp(cdnow_split):
    model = bg_model(
        bgnbd_data(cdnow_split["frequency"], cdnow_split["recency"], cdnow_split["T"])
    )
    data = bgnbd_data(
        cdnow_split["frequency"], cdnow_split["recency"], cdnow_split["T"], shared=False
    )
    logp = model.compile_logp(jacobian=False)
    dlogp = model.compile_dlogp(jacobian=True)
    for point in BG_POINTS:
        ip = {f"{n}_log__": np.log(v) for n, v in zip(BG_NAMES, point)}
        k_val, k_grad = bgnbd_loglik_sum_grad(*point, *data)
        prior = prior_logp(point)
        np.testing.assert_allclose(logp(ip), k_val + prior, rtol=1e-13)
        # d/d(log θ) of [loglik + log prior(θ) + log θ] = θ (∂loglik + ∂log prior) + 1.
        theta = np.array(point)
        scales = np.array([PRIOR_SCALES[n] for n in BG_NAMES])
        expected = theta * (k_grad - theta / scales**2) + 1.0
        np.testing.assert_allclose(dlogp(ip), expected, rtol=1e-12)
    # The value-only compile uses the value kernel.
    nodes = loglik_nodes(logp.f)
    assert len(nodes) == 1 and not nodes[0].op.with_grad


def call_nutpie_logp(compiled, point: np.ndarray) -> tuple[float, np.ndarray]:
    """Evaluate nutpie's compiled C logp function (the one the sampler calls) at a point."""
    fn = compiled.compiled_logp_func.ctypes
    x = np.ascontiguousarray(point, dtype=np.float64)
    grad = np.zeros_like(x)
    lp = np.zeros(())
    dp = ctypes.POINTER(ctypes.c_double)
    rc = fn(x.size, x.ctypes.data_as(dp), grad.ctypes.data_as(dp), lp.ctypes.data_as(dp),
            compiled.user_data.ctypes.data)  # fmt: skip
    assert rc == 0
    return float(lp), grad


def test_nutpie_smoke_and_data_swap(cdnow_split):
    nutpie = pytest.importorskip("nutpie")
    with pm.Model() as model:
        params = [pm.HalfNormal(n, s) for n, s in PRIOR_SCALES.items()]
        data = bgnbd_data(cdnow_split["frequency"], cdnow_split["recency"], cdnow_split["T"])
        pm.Potential("loglik", bgnbd_loglik_tensor(*params, data))
    # No object-mode fallback: it would warn, and the test config turns warnings into errors.
    compiled = nutpie.compile_pymc_model(model)
    nodes = loglik_nodes(compiled.logp_func)
    assert len(nodes) == 1 and nodes[0].op.with_grad
    # Compiled logp (priors + Jacobian on the log scale) vs the kernel.
    point = np.array(BG_POINTS[0])
    scales = np.array([PRIOR_SCALES[n] for n in BG_NAMES])
    prior = prior_logp(point) + np.log(point).sum()

    def expected(d):
        v, g = bgnbd_loglik_sum_grad(*point, *d)
        return v + prior, point * (g - point / scales**2) + 1.0

    arrays = [v.get_value() for v in data]
    lp, grad = call_nutpie_logp(compiled, np.log(point))
    np.testing.assert_allclose(lp, expected(arrays)[0], rtol=1e-13)
    np.testing.assert_allclose(grad, expected(arrays)[1], rtol=1e-12)
    # Second data set, different length, swapped in without recompiling.
    new = random_bg(21, n=5000)
    swapped = compiled.with_data(
        **{v.name: np.asarray(a) for v, a in zip(data, new)}
    )
    lp2, grad2 = call_nutpie_logp(swapped, np.log(point))
    np.testing.assert_allclose(lp2, expected(new)[0], rtol=1e-13)
    np.testing.assert_allclose(grad2, expected(new)[1], rtol=1e-12)
    # The original compiled model still sees the original data.
    assert call_nutpie_logp(compiled, np.log(point))[0] == lp
    # Smoke sample: one chain, 50 draws.
    idata = nutpie.sample(compiled, chains=1, draws=50, tune=50, seed=1, progress_bar=False)
    post = idata.posterior
    assert post["r"].shape == (1, 50)
    for n in BG_NAMES:
        assert np.isfinite(post[n].values).all() and (post[n].values > 0).all()


@pytest.mark.slow
def test_nutpie_recovers_simulated_parameters():
    import clvbayes

    nutpie = pytest.importorskip("nutpie")
    truth = (0.2425945, 4.4136019, 0.7929199, 2.4258881)
    rng = np.random.default_rng(1)
    T = np.round(rng.uniform(7.0, 364.0, 20_000)) / 7.0
    df = clvbayes.simulate_customers(*truth, T=T, seed=1)
    with pm.Model() as model:
        params = [pm.HalfNormal(n, s) for n, s in PRIOR_SCALES.items()]
        data = bgnbd_data(df["frequency"], np.round(df["recency"] * 7.0) / 7.0, df["T"])
        pm.Potential("loglik", bgnbd_loglik_tensor(*params, data))
    idata = nutpie.sample(
        nutpie.compile_pymc_model(model), chains=2, draws=500, tune=500, seed=3,
        progress_bar=False,
    )  # fmt: skip
    assert int(idata.sample_stats["diverging"].sum()) == 0
    for n, v in zip(BG_NAMES, truth):
        draws = idata.posterior[n].values.ravel()
        lo, hi = np.quantile(draws, [0.0005, 0.9995])
        assert lo < v < hi, (n, v, lo, hi)


def test_op_pickles():
    data = random_bg(4, n=10)
    ps = [pt.dscalar(n) for n in BG_NAMES]
    val = BGNBDLogLik()(*ps, *data)
    f = pytensor.function(ps, [val, *pytensor.grad(val, ps)])
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(
        np.array(g(*BG_POINTS[0]), dtype=float), np.array(f(*BG_POINTS[0]), dtype=float)
    )


@pytest.mark.slow
@pytest.mark.parametrize("nuts_sampler", ["pymc", "nutpie"])
def test_pm_sample_smoke(nuts_sampler):
    """pm.sample with PyMC's NUTS (two worker processes: the Op is pickled) and nutpie."""
    data = random_bg(30, n=500)
    with bg_model(data):
        idata = pm.sample(draws=100, tune=100, chains=2, cores=2, random_seed=1,
                          nuts_sampler=nuts_sampler, progressbar=False,
                          compute_convergence_checks=False)  # fmt: skip
    assert idata.posterior["r"].shape == (2, 100)
    assert np.isfinite(idata.posterior["r"].values).all()


@pytest.mark.slow
def test_parallel_numba_op_in_fresh_processes():
    """A fresh process loading the cached compiled graph of a ``parallel=True`` Op must start
    Numba's thread pool first (otherwise LLVM cannot resolve its scheduler symbols and the
    process aborts or segfaults). Two runs: the second loads PyTensor's on-disk cache."""
    code = (
        "import numpy as np, pytensor, pytensor.tensor as pt\n"
        "from clvbayes.models.ops import BGNBDLogLik\n"
        "rng = np.random.default_rng(0); T = rng.uniform(1, 50, 9000)\n"
        "x = rng.integers(0, 5, 9000).astype(float); tx = np.where(x > 0, T / 2, 0.0)\n"
        "ps = [pt.dscalar() for _ in range(4)]\n"
        "v = BGNBDLogLik(parallel=True)(*ps, x, tx, T, np.ones(9000))\n"
        "f = pytensor.function(ps, [v, *pytensor.grad(v, ps)], mode='NUMBA')\n"
        "print(float(f(0.3, 4.0, 0.8, 2.4)[0]))\n"
    )
    outs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        for _ in range(2)
    ]
    for out in outs:
        assert out.returncode == 0, out.stderr[-2000:]
    assert outs[0].stdout == outs[1].stdout
