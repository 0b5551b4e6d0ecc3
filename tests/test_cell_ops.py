"""CellsLogLik: one node for the log-likelihood of all design cells (clvbayes.models.cell_ops)."""

from __future__ import annotations

import ctypes

import numba
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pytensor.graph.traversal import io_toposort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvbayes import CovariatePurchaseModel, HierarchicalPurchaseModel, simulate_customers
from clvbayes.models.bayesian import _graph_fingerprint
from clvbayes.models.cell_ops import CellsLogLik, cells_data, cells_loglik
from clvbayes.models.ops import (BGNBDLogLik, FamilyLogLik, GammaGammaLogLik, LogLikSumOp, family_data,
                                 gamma_gamma_data)

FAMILIES = ["bgnbd", "mbgnbd", "pnbd", "gg"]
# the plain (x, t_x, T, weights) BG/NBD kernels (serial builds), for an Op of our own arity
_BG_GRAD = BGNBDLogLik().kernel
_BG = BGNBDLogLik(with_grad=False).kernel
SIZES = (40, 1, 300, 7)  # unequal cells, one of a single row


def _op(family: str) -> LogLikSumOp:
    return GammaGammaLogLik() if family == "gg" else FamilyLogLik(family)


def _cell_arrays(family: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """One cell's data inputs as a separate Op node takes them (compressed, prepared arrays)."""
    T = np.round(rng.uniform(5.0, 50.0, n))
    x = rng.poisson(3.0, n).astype(float)
    t_x = np.where(x > 0, np.round(T * rng.uniform(0.0, 1.0, n), 1), 0.0)
    if family == "gg":
        x = np.maximum(x, 1.0)
        return tuple(gamma_gamma_data(x, np.round(rng.gamma(4.0, 10.0, n), 1), shared=False))
    return family_data(family, x, t_x, T, shared=False)


def _problem(family: str, sizes=SIZES, seed: int = 0):
    rng = np.random.default_rng(seed)
    op = _op(family)
    cells = [_cell_arrays(family, n, rng) for n in sizes]
    theta = rng.uniform(0.3, 3.0, (len(sizes), op.n_params))
    if family != "gg":
        theta[:, 1] *= 10.0  # alpha on the scale of T
    return op, cells, theta


def _per_cell(op: LogLikSumOp, cells, theta) -> tuple[list[float], np.ndarray]:
    """Each cell by its own LogLikSumOp node (the models' former graph)."""
    ps = [pt.dscalar() for _ in range(op.n_params)]
    data = [pt.dvector() for _ in op.data_names]
    val = op(*ps, *data)
    f = pytensor.function([*ps, *data], [val, *pt.grad(val, ps)], mode="FAST_RUN")
    out = [f(*th, *c) for th, c in zip(theta, cells, strict=True)]
    return [float(o[0]) for o in out], np.array([o[1:] for o in out])


def _cells_fn(op: LogLikSumOp, mode: str, grad: bool = True):
    ps = [pt.dvector(f"p{j}") for j in range(op.n_params)]
    data = [pt.dvector() for _ in op.data_names] + [pt.dmatrix("offsets")]
    val = cells_loglik(op, ps, data)
    outs = [val, *pt.grad(val, ps)] if grad else val
    return pytensor.function([*ps, *data], outs, mode=mode)


def _call(f, theta, arrays):
    return f(*np.ascontiguousarray(theta.T), *arrays)


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_RUN"])
@pytest.mark.parametrize("family", FAMILIES)
def test_total_and_gradient_are_the_per_cell_nodes(family, mode):
    op, cells, theta = _problem(family)
    ref_vals, ref_grads = _per_cell(op, cells, theta)
    res = _call(_cells_fn(op, mode), theta, cells_data(op, cells, name="t", shared=False))
    assert float(res[0]) == pytest.approx(sum(ref_vals), rel=1e-13)
    # each cell's gradient is its own node's, bit for bit (same kernel, same rows)
    np.testing.assert_array_equal(np.array(res[1:]).T, ref_grads)
    # and each cell's value too: the total of the cells one at a time
    one = _cells_fn(op, mode, grad=False)
    for c in range(len(cells)):
        assert float(_call(one, theta[c : c + 1], cells_data(op, [cells[c]], name="t", shared=False))) == ref_vals[c]


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_matches_central_differences(family):
    op, cells, theta = _problem(family, sizes=(25, 1, 60))
    arrays = cells_data(op, cells, name="t", shared=False)
    f = _cells_fn(op, "NUMBA")
    val = _cells_fn(op, "NUMBA", grad=False)
    grads = np.array(_call(f, theta, arrays)[1:]).T
    for c in range(len(cells)):
        for j in range(op.n_params):
            h = 1e-6 * theta[c, j]
            up, dn = theta.copy(), theta.copy()
            up[c, j] += h
            dn[c, j] -= h
            fd = (float(_call(val, up, arrays)) - float(_call(val, dn, arrays))) / (2.0 * h)
            assert grads[c, j] == pytest.approx(fd, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
@pytest.mark.parametrize("mode", ["NUMBA", "FAST_RUN"])
@pytest.mark.parametrize("family", ["bgnbd", "pnbd", "gg"])
def test_a_cell_outside_the_support_gives_minus_inf_and_nan_gradient(family, mode, bad):
    op, cells, theta = _problem(family, sizes=(10, 1, 20))
    arrays = cells_data(op, cells, name="t", shared=False)
    theta[1, op.n_params - 1] = bad
    res = _call(_cells_fn(op, mode), theta, arrays)
    assert float(res[0]) == -np.inf
    assert all(np.isnan(g).all() for g in res[1:])
    assert float(_call(_cells_fn(op, mode, grad=False), theta, arrays)) == -np.inf


@numba.njit  # not cached: it calls the serial rebuilds of the BG/NBD kernels
def _toy_grad(r, alpha, a, b, x, t_x, T, w, e0, e1, e2):
    v, g = _BG_GRAD(r, alpha, a, b, x, t_x, T, w)
    return v + e0.sum() + 2.0 * e1.sum() + 3.0 * e2.size, g


@numba.njit  # not cached: it calls the serial rebuilds of the BG/NBD kernels
def _toy(r, alpha, a, b, x, t_x, T, w, e0, e1, e2):
    return _BG(r, alpha, a, b, x, t_x, T, w) + e0.sum() + 2.0 * e1.sum() + 3.0 * e2.size


class _SevenColumns(LogLikSumOp):
    """BG/NBD with three extra data columns of their own lengths per cell (as BG/NBD's
    prepared times, but of lengths and values of its own): the cells Op must not assume
    the family's columns."""

    param_names = ("r", "alpha", "a", "b")
    data_names = ("x", "t_x", "T", "weights", "e0", "e1", "e2")
    _kernels = {(True, False): _toy_grad, (False, False): _toy}


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_RUN"])
def test_any_number_of_data_columns_of_any_length(mode):
    op, cells, theta = _problem("bgnbd", sizes=(12, 1, 30))
    rng = np.random.default_rng(5)
    cells = [(*c[:4], rng.normal(size=3 + k), rng.normal(size=k), np.zeros(2 * k + 1)) for k, c in enumerate(cells)]
    op = _SevenColumns()
    ref = [op.kernel(*th, *c) for th, c in zip(theta, cells, strict=True)]
    res = _call(_cells_fn(op, mode), theta, cells_data(op, cells, name="t", shared=False))
    assert float(res[0]) == pytest.approx(sum(r[0] for r in ref), rel=1e-13)
    np.testing.assert_array_equal(np.array(res[1:]).T, np.array([r[1] for r in ref]))


def _cells_nodes(fn) -> list:
    return [n for n in fn.maker.fgraph.apply_nodes if isinstance(n.op, CellsLogLik)]


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_RUN"])
def test_value_only_kernel_when_the_gradient_is_not_read(mode):
    op = FamilyLogLik("bgnbd")
    value_fn = _cells_fn(op, mode, grad=False)
    nodes = _cells_nodes(value_fn)
    assert len(nodes) == 1 and not nodes[0].op.with_grad
    # with the gradient: one node gives value and gradient (one kernel call per cell)
    nodes = _cells_nodes(_cells_fn(op, mode))
    assert len(nodes) == 1 and nodes[0].op.with_grad
    assert not any(isinstance(n.op, LogLikSumOp) for n in value_fn.maker.fgraph.apply_nodes)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=6), st.integers(0, 2**16))
def test_any_split_into_cells_sums_to_the_per_cell_nodes(sizes, seed):
    op, cells, theta = _problem("pnbd", sizes=tuple(sizes), seed=seed)
    ref_vals, ref_grads = _per_cell(op, cells, theta)
    res = _call(_cells_fn(op, "NUMBA"), theta, cells_data(op, cells, name="t", shared=False))
    assert float(res[0]) == pytest.approx(sum(ref_vals), rel=1e-13)
    np.testing.assert_array_equal(np.array(res[1:]).T, ref_grads)


def test_cells_data_layout_and_fixed_names():
    op, cells, _ = _problem("pnbd", sizes=(5, 1, 8))
    arrays = cells_data(op, cells, name="t", shared=False)
    offsets = arrays[-1]
    assert offsets.shape == (len(op.data_names), 4)
    for j in range(len(op.data_names)):
        for c, cell in enumerate(cells):
            np.testing.assert_array_equal(arrays[j][int(offsets[j, c]) : int(offsets[j, c + 1])], cell[j])
    names = [v.name for v in cells_data(op, cells, name="pnbd_cells")]
    assert names == [*(f"pnbd_cells_{d}" for d in op.data_names), "pnbd_cells_offsets"]
    with pytest.raises(ValueError, match="data columns"):
        cells_data(op, [cells[0][:-1]], name="t")


def _frame(n_segments: int, n: int, seed: int):
    import pandas as pd

    parts = []
    for s in range(n_segments):
        df = simulate_customers(r=0.6, alpha=8.0 * (1.0 + s), a=0.8, b=2.5, model="bgnbd", T=40.0,
                                n_customers=n + 13 * s, seed=seed + s)
        df["country"] = f"c{s}"
        parts.append(df)
    out = pd.concat(parts, ignore_index=True)
    out["customer_id"] = np.arange(len(out))
    return out


def _nutpie_logp(compiled, x: np.ndarray) -> tuple[float, np.ndarray]:
    fn = compiled.compiled_logp_func.ctypes
    x = np.ascontiguousarray(x, dtype=np.float64)
    grad, lp = np.zeros_like(x), np.zeros(())
    dp = ctypes.POINTER(ctypes.c_double)
    assert fn(x.size, x.ctypes.data_as(dp), grad.ctypes.data_as(dp), lp.ctypes.data_as(dp),
              compiled.user_data.ctypes.data) == 0
    return float(lp), grad


def _flat_point(model: pm.Model, seed: int) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    point = {k: v + rng.normal(0.0, 0.2, np.shape(v)) for k, v in model.initial_point().items()}
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    return point, np.concatenate([np.ravel(point[n]) for n in names])


def test_hierarchical_model_in_nutpie_is_pymcs_logp():
    nutpie = pytest.importorskip("nutpie")
    m = HierarchicalPurchaseModel(_frame(3, 60, 1), segment="country", parameterization="non_centred")
    model = m.model
    assert sum(isinstance(n.op, CellsLogLik) for n in io_toposort([], [model["loglik"]])) == 1
    compiled = nutpie.compile_pymc_model(model)
    point, x = _flat_point(model, 3)
    lp, grad = _nutpie_logp(compiled, x)
    assert lp == pytest.approx(float(model.compile_logp()(point)), rel=1e-12)
    np.testing.assert_allclose(grad, model.compile_dlogp()(point), rtol=1e-10, atol=1e-10)
    # another cell count is another graph: the nutpie cache (bayesian._compiled_nutpie) keeps them apart
    four = HierarchicalPurchaseModel(_frame(4, 60, 1), segment="country", parameterization="non_centred")
    assert _graph_fingerprint(four.model) != _graph_fingerprint(model)


def test_covariate_model_refit_swaps_the_cells_data_in_nutpie():
    """The refit path of sbc_covariates: same design, other customers (other cell sizes, other
    Pareto/NBD prepared arrays), the compiled sampler reused through with_data."""
    nutpie = pytest.importorskip("nutpie")

    def model(n: int, seed: int):
        df = simulate_customers(r=0.6, alpha=8.0, s=0.7, beta=10.0, model="pnbd", T=40.0, n_customers=n, seed=seed)
        df["channel"] = np.where(np.arange(n) % 3 == 0, "web", "store")
        return CovariatePurchaseModel(df, family="pnbd", purchase_covariates=["channel"],
                                      dropout_covariates=["channel"]).model

    first, second = model(80, 1), model(150, 2)
    assert _graph_fingerprint(first) == _graph_fingerprint(second)
    compiled = nutpie.compile_pymc_model(first)
    swapped = compiled.with_data(**{v.name: np.asarray(v.get_value()) for v in second.data_vars})
    point, x = _flat_point(second, 4)
    lp, grad = _nutpie_logp(swapped, x)
    assert lp == pytest.approx(float(second.compile_logp()(point)), rel=1e-12)
    np.testing.assert_allclose(grad, second.compile_dlogp()(point), rtol=1e-10, atol=1e-10)
    assert _nutpie_logp(compiled, x)[0] == pytest.approx(float(first.compile_logp()(point)), rel=1e-12)


def test_pymc_set_data_swaps_the_cells():
    op, cells, theta = _problem("bgnbd", sizes=(30, 1, 12))
    _, other, _ = _problem("bgnbd", sizes=(5, 40, 2), seed=9)
    with pm.Model() as model:
        ps = [pm.HalfNormal(n, 5.0, shape=3) for n in op.param_names]
        data = cells_data(op, cells, name="bg_cells")
        pm.Potential("loglik", cells_loglik(op, ps, data))
    fn = pytensor.function(model.value_vars, model.replace_rvs_by_values([model["loglik"]])[0], mode="FAST_RUN")
    logs = [np.log(theta[:, j]) for j in range(op.n_params)]
    assert float(fn(*logs)) == pytest.approx(sum(_per_cell(op, cells, theta)[0]), rel=1e-13)
    with model:
        pm.set_data(dict(zip([v.name for v in data], cells_data(op, other, name="x", shared=False), strict=True)))
    assert float(fn(*logs)) == pytest.approx(sum(_per_cell(op, other, theta)[0]), rel=1e-13)
