"""PyTensor Ops for the log-likelihood with per-row parameters (continuous covariates).

:class:`SpendRowLogLik` is the Gamma-Gamma sibling of :class:`RowLogLik` (same base
:class:`_RowSumOp`: one kernel call for value and gradient, nutpie Numba registration), for
spend covariates (:mod:`clvbayes.models.covariate_spend`).


:class:`RowLogLik` computes ``Σ_i w_i ln L(θ_i | x_i, t_x_i, T_i)`` where every row has its
own four parameters (the family's order), given as four float64 vectors, and its gradient in
every ``θ_i`` (natural scale), from one call of
:func:`clvbayes.kernels.cells.row_loglik_sum_grad4` rebound to the family's scalar
``loglik_grad_one`` core (:func:`row_kernels`). As :class:`clvbayes.models.ops.LogLikSumOp`,
the node has the gradient as extra outputs and :meth:`RowLogLik.L_op` reads them from the
*same* node, so a compiled ``logp + dlogp`` graph (PyMC, nutpie) calls the kernel once per
point; the chain rule to the coefficients (``θ_i = base · exp(±z_i'γ)``) is left to
PyTensor. ``numba_funcify`` is registered, so nutpie calls the kernel from compiled code.

The Op calls a serial build of the kernel by default (samplers run one chain per core; see
:mod:`clvbayes.models.ops`); ``parallel=True`` calls the threaded one (fixed chunks: the same
bits).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key

from clvbayes.families import get_family
from clvbayes.kernels import build
from clvbayes.kernels import cells as _cells
from clvbayes.kernels import covariate_rows as _covrows
from clvbayes.kernels import gamma_gamma as _gg
from clvbayes.models.ops import _SOURCE_FINGERPRINT

__all__ = ["FusedRowLogLik", "RowLogLik", "SpendRowLogLik", "fused_kernels", "row_kernels"]

# Part of every tag: bump when the way the row kernels are rebuilt changes.
_BUILD_VERSION = 1
# PyTensor's Numba cache trusts its key: the kernel sources (ops.py's fingerprint) and this module.
_KEY_SOURCE = hashlib.sha256((_SOURCE_FINGERPRINT + hashlib.sha256(Path(__file__).read_bytes()).hexdigest()).encode()
                             ).hexdigest()


@functools.cache
def row_kernels(family: str) -> dict[str, Callable]:
    """The per-row kernels of :mod:`clvbayes.kernels.cells` rebound to a family's cores.

    Keys: ``"sum_grad"`` (:func:`~clvbayes.kernels.cells.row_loglik_sum_grad4`, threaded
    above ``PARALLEL_MIN_ROWS``), ``"serial_sum_grad"`` (its thread-free build),
    ``"p_alive"`` and ``"conditional_expected_purchases"``
    (:func:`~clvbayes.kernels.cells.cell_mean_p_alive`, ...).
    """
    fam = get_family(family)
    replace = {name: fam.cores[core] for core, name in (
        ("loglik_grad_one", "_loglik_grad_one"), ("p_alive_one", "_p_alive_one"),
        ("conditional_expected_purchases_one", "_conditional_expected_purchases_one"))}
    tag = f"rows_{fam.name}_{build.source_tag(fam.cores.values(), str(_BUILD_VERSION))}"
    memo: dict = {}
    out = {
        "sum_grad": build.rebuild(_cells.row_loglik_sum_grad4, replace=replace, tag=tag, _memo=memo),
        "p_alive": build.rebuild(_cells.cell_mean_p_alive, replace=replace, tag=tag, _memo=memo),
        "conditional_expected_purchases": build.rebuild(_cells.cell_mean_conditional_expected_purchases,
                                                        replace=replace, tag=tag, _memo=memo),
    }
    out["serial_sum_grad"] = build.rebuild(out["sum_grad"], serial=True, tag="serial1", _memo={})
    return out


class _RowSumOp(Op):
    """Base of the per-row likelihood Ops: ``n`` parameter vectors, then the data vectors
    (``data_names``, the last the weights); outputs the scalar sum (default output) and one
    gradient vector per parameter, all from one call of ``self.kernel`` (which returns the sum
    and a gradient array of shape (rows, n)). The gradient of the sum is read from the same
    node's outputs (:meth:`L_op`)."""

    default_output = 0
    param_names: tuple[str, ...] = ()
    data_names: tuple[str, ...] = ()

    @property
    def kernel(self) -> Callable:
        raise NotImplementedError

    def make_node(self, *inputs) -> Apply:
        names = self.param_names + self.data_names
        if len(inputs) != len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} inputs ({', '.join(names)}), "
                            f"got {len(inputs)}.")
        ins = []
        for name, v in zip(names, inputs, strict=True):
            v = pt.as_tensor_variable(v)
            if v.ndim != 1:
                raise TypeError(f"{name} must be a vector, got {v.ndim} dimension(s).")
            ins.append(v if v.dtype == "float64" else pt.cast(v, "float64"))
        outs = [pt.tensor(dtype="float64", shape=())] + [pt.tensor(dtype="float64", shape=(None,))
                                                         for _ in self.param_names]
        return Apply(self, ins, outs)

    def perform(self, node, inputs, output_storage) -> None:
        if len({v.shape[0] for v in inputs}) != 1:
            raise ValueError(f"{type(self).__name__}: inputs of unequal lengths {[v.shape[0] for v in inputs]}.")
        val, g = self.kernel(*(np.ascontiguousarray(v, dtype=np.float64) for v in inputs))
        output_storage[0][0] = np.asarray(val, dtype=np.float64)
        for k in range(len(self.param_names)):
            output_storage[1 + k][0] = np.ascontiguousarray(g[:, k])

    def infer_shape(self, fgraph, node, input_shapes):
        return [()] + [input_shapes[len(self.param_names)]] * len(self.param_names)

    def L_op(self, inputs, outputs, output_grads):
        name = type(self).__name__
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            raise NotImplementedError(f"{name}: the gradient outputs have no gradient (no second derivatives).")
        g_val = output_grads[0]
        n = len(self.param_names)
        return [g_val * outputs[1 + k] for k in range(n)] + [
            grad_not_implemented(self, n + j, inputs[n + j], "gradients with respect to the data are not implemented")
            for j in range(len(self.data_names))
        ]

    def connection_pattern(self, node):
        return [[True] * (1 + len(self.param_names)) for _ in node.inputs]


class RowLogLik(_RowSumOp):
    """``Σ_i w_i ln L(θ_i | x_i, t_x_i, T_i)`` of a family with per-row parameters.

    Inputs: four float64 vectors (the parameter columns ``θ_{·,0..3}``, length n), then the
    data vectors ``x, t_x, T, weights`` (length n). Outputs: the scalar sum (the default
    output) and the four gradient vectors ``w_i ∂ ln L_i / ∂θ_{i,k}``, all from one kernel
    call. ``-inf`` (NaN gradients) when any row's parameters leave ``(0, inf)``.

    Parameters
    ----------
    family : str
        Registered family name (its cores: :func:`row_kernels`).
    parallel : bool, default False
        Threaded kernel instead of the serial build.
    """

    __props__ = ("family", "parallel")
    data_names = ("x", "t_x", "T", "weights")

    def __init__(self, family: str = "bgnbd", parallel: bool = False) -> None:
        self.family = get_family(family).name
        self.parallel = bool(parallel)

    @property
    def param_names(self) -> tuple[str, ...]:
        return get_family(self.family).param_names

    @property
    def kernel(self) -> Callable:
        """The Numba kernel this Op calls (``row_loglik_sum_grad4`` of the family)."""
        return row_kernels(self.family)["sum_grad" if self.parallel else "serial_sum_grad"]

    def __str__(self) -> str:
        return f"RowLogLik{{{self.family}, parallel={self.parallel}}}"


@functools.cache
def _spend_row_kernels() -> dict[bool, Callable]:
    """parallel -> :func:`clvbayes.kernels.gamma_gamma.gg_row_loglik_sum_grad` (threaded, or
    its serial build: the same chunks, the same bits)."""
    return {True: _gg.gg_row_loglik_sum_grad,
            False: build.rebuild(_gg.gg_row_loglik_sum_grad, serial=True, tag=f"serial{_BUILD_VERSION}", _memo={})}


class SpendRowLogLik(_RowSumOp):
    """Gamma-Gamma ``Σ_i w_i ln f(m_i | p_i, q_i, γ_i, x_i)`` with per-row parameters.

    Fader, Hardie & Lee (2005), "RFM and CLV", JMR 42(4), appendix density, by
    :func:`clvbayes.kernels.gamma_gamma.gg_row_loglik_sum_grad`. Inputs: the vectors
    ``p, q, gamma`` (length n), then ``x, m, weights``; outputs the sum and the three gradient
    vectors, from one kernel call. ``-inf`` when a row's parameters leave ``(0, inf)``.

    Parameters
    ----------
    parallel : bool, default False
        Threaded kernel instead of the serial build.
    """

    __props__ = ("parallel",)
    param_names = ("p", "q", "gamma")
    data_names = ("x", "m", "weights")

    def __init__(self, parallel: bool = False) -> None:
        self.parallel = bool(parallel)

    @property
    def kernel(self) -> Callable:
        return _spend_row_kernels()[self.parallel]

    def __str__(self) -> str:
        return f"SpendRowLogLik{{parallel={self.parallel}}}"


@register_funcify_and_cache_key(RowLogLik)
def _numba_funcify_row_loglik(op: RowLogLik, node=None, **kwargs):
    """Compiled implementation: one kernel call, the gradient columns as contiguous vectors.

    Returns the njit function and its PyTensor cache key (Op, family, parallel, source hash).
    """
    key = hashlib.sha256(
        f"{type(op).__module__}.{type(op).__qualname__}|{op.family}|{op.parallel}|{_KEY_SOURCE}".encode()
    ).hexdigest()
    kernel = op.kernel
    if op.parallel:
        numba.get_num_threads()  # thread pool up before linking a prange caller (see ops.py)

    @numba_njit
    def row_loglik_op(p0, p1, p2, p3, x, t_x, T, w):
        n = x.shape[0]
        if (p0.shape[0] != n or p1.shape[0] != n or p2.shape[0] != n or p3.shape[0] != n or t_x.shape[0] != n
                or T.shape[0] != n or w.shape[0] != n):
            raise ValueError("RowLogLik: inputs of unequal lengths.")
        val, g = kernel(p0, p1, p2, p3, x, t_x, T, w)
        return (np.asarray(val), np.ascontiguousarray(g[:, 0]), np.ascontiguousarray(g[:, 1]),
                np.ascontiguousarray(g[:, 2]), np.ascontiguousarray(g[:, 3]))

    return row_loglik_op, key


@register_funcify_and_cache_key(SpendRowLogLik)
def _numba_funcify_spend_row_loglik(op: SpendRowLogLik, node=None, **kwargs):
    """Compiled implementation of :class:`SpendRowLogLik` (as the family row Op's)."""
    key = hashlib.sha256(
        f"{type(op).__module__}.{type(op).__qualname__}|{op.parallel}|{_KEY_SOURCE}".encode()
    ).hexdigest()
    kernel = op.kernel
    if op.parallel:
        numba.get_num_threads()  # thread pool up before linking a prange caller (see ops.py)

    @numba_njit
    def spend_row_loglik_op(p, q, gamma, x, m, w):
        n = x.shape[0]
        if p.shape[0] != n or q.shape[0] != n or gamma.shape[0] != n or m.shape[0] != n or w.shape[0] != n:
            raise ValueError("SpendRowLogLik: inputs of unequal lengths.")
        val, g = kernel(p, q, gamma, x, m, w)
        return (np.asarray(val), np.ascontiguousarray(g[:, 0]), np.ascontiguousarray(g[:, 1]),
                np.ascontiguousarray(g[:, 2]))

    return spend_row_loglik_op, key


@functools.cache
def fused_kernels(family: str) -> dict[str, Callable]:
    """:func:`clvbayes.kernels.covariate_rows.covariate_rows_loglik_grad` rebound to a
    family's ``loglik_grad_one`` core: ``"sum_grad"`` (threaded above ``PARALLEL_MIN_ROWS``)
    and ``"serial_sum_grad"`` (its thread-free build, the same bits); for BG/NBD also
    ``"lean_sum_grad"`` / ``"lean_serial_sum_grad"``
    (:func:`~clvbayes.kernels.covariate_rows.bgnbd_covariate_rows_loglik_grad`, ``r`` unlinked)."""
    fam = get_family(family)
    tag = f"fused_{fam.name}_{build.source_tag([fam.cores['loglik_grad_one']], str(_BUILD_VERSION))}"
    threaded = build.rebuild(_covrows.covariate_rows_loglik_grad,
                             replace={"_loglik_grad_one": fam.cores["loglik_grad_one"]}, tag=tag, _memo={})
    out = {"sum_grad": threaded, "serial_sum_grad": build.rebuild(threaded, serial=True, tag="serial1", _memo={})}
    if fam.name == "bgnbd":  # the lean BG/NBD rows (r unlinked)
        out["lean_sum_grad"] = _covrows.bgnbd_covariate_rows_loglik_grad
        out["lean_serial_sum_grad"] = build.rebuild(_covrows.bgnbd_covariate_rows_loglik_grad, serial=True,
                                                    tag="serial1", _memo={})
    return out


class FusedRowLogLik(Op):
    """The rows path's likelihood with the covariate link inside the kernel.

    ``Σ_i w_i ln L(θ_i | x_i, t_x_i, T_i)`` with ``θ_{i,k} = base_k exp(s_k Z_i[lo_k:hi_k]'γ_k)``.
    Inputs: the four base scalars (the family's order), the four coefficient vectors
    ``γ_k`` (length ``hi_k - lo_k``, empty when parameter ``k`` is unlinked), then the
    constant data ``Z`` (n, K), ``x, t_x, T, weights``. Outputs: the scalar sum (default
    output), the four base gradients (scalars) and the four coefficient gradients (vectors),
    all from one call of :func:`fused_kernels`; :meth:`L_op` reads them from the same node.

    Parameters
    ----------
    family : str
        Registered family name.
    lo, hi : tuple of int
        Columns of ``Z`` of each parameter's link.
    sign : tuple of float
        ``±1`` per parameter (the sign in the exponent; any value for unlinked ones).
    parallel : bool, default False
        Threaded kernel instead of the serial build.
    """

    __props__ = ("family", "lo", "hi", "sign", "parallel")
    default_output = 0

    def __init__(self, family: str, lo: tuple[int, ...], hi: tuple[int, ...], sign: tuple[float, ...],
                 parallel: bool = False) -> None:
        self.family = get_family(family).name
        self.lo, self.hi = tuple(int(v) for v in lo), tuple(int(v) for v in hi)
        self.sign = tuple(float(v) for v in sign)
        if not (len(self.lo) == len(self.hi) == len(self.sign) == 4) or any(h < l for l, h in zip(self.lo, self.hi)):
            raise ValueError(f"FusedRowLogLik: lo, hi, sign need 4 entries with hi >= lo, got {lo}, {hi}, {sign}.")
        self.parallel = bool(parallel)

    @property
    def kernel(self) -> Callable:
        """The Numba kernel this Op calls (BG/NBD with ``r`` unlinked: the lean one)."""
        ks = fused_kernels(self.family)
        lean = "lean_" if "lean_sum_grad" in ks and self.lo[0] == self.hi[0] else ""
        return ks[lean + ("sum_grad" if self.parallel else "serial_sum_grad")]

    def make_node(self, *inputs) -> Apply:
        if len(inputs) != 13:
            raise TypeError(f"FusedRowLogLik takes 13 inputs (4 base, 4 coefficients, Z, x, t_x, T, weights), "
                            f"got {len(inputs)}.")
        ins = [pt.as_tensor_variable(v) for v in inputs]
        ins = [v if v.dtype == "float64" else pt.cast(v, "float64") for v in ins]
        for k, v in enumerate(ins):
            want = 0 if k < 4 else 2 if k == 8 else 1
            if v.ndim != want:
                raise TypeError(f"FusedRowLogLik: input {k} must have {want} dimension(s), got {v.ndim}.")
        outs = ([pt.tensor(dtype="float64", shape=()) for _ in range(5)]
                + [pt.tensor(dtype="float64", shape=(h - l,)) for l, h in zip(self.lo, self.hi)])
        return Apply(self, ins, outs)

    def _call(self, inputs):
        base = np.array([float(v) for v in inputs[:4]])
        gam = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in inputs[4:8]])
        for k, v in enumerate(inputs[4:8]):
            if v.shape[0] != self.hi[k] - self.lo[k]:
                raise ValueError(f"FusedRowLogLik: coefficient {k} has length {v.shape[0]}, "
                                 f"expected {self.hi[k] - self.lo[k]}.")
        Z = np.ascontiguousarray(inputs[8], dtype=np.float64)
        data = [np.ascontiguousarray(v, dtype=np.float64) for v in inputs[9:]]
        if len({Z.shape[0]} | {v.shape[0] for v in data}) != 1 or Z.shape[1] < max(self.hi):
            raise ValueError("FusedRowLogLik: data of unequal lengths or Z with too few columns.")
        return self.kernel(base, gam, Z, np.array(self.lo, dtype=np.int64), np.array(self.hi, dtype=np.int64),
                           np.array(self.sign), *data)

    def perform(self, node, inputs, output_storage) -> None:
        val, gb, gg = self._call(inputs)
        output_storage[0][0] = np.asarray(val, dtype=np.float64)
        for k in range(4):
            output_storage[1 + k][0] = np.asarray(gb[k], dtype=np.float64)
        o = 0
        for k in range(4):
            m = self.hi[k] - self.lo[k]
            output_storage[5 + k][0] = gg[o:o + m].copy()
            o += m

    def infer_shape(self, fgraph, node, input_shapes):
        return [()] * 5 + [(h - l,) for l, h in zip(self.lo, self.hi)]

    def L_op(self, inputs, outputs, output_grads):
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            raise NotImplementedError("FusedRowLogLik: the gradient outputs have no gradient (no second derivatives).")
        g_val = output_grads[0]
        return [g_val * outputs[1 + k] for k in range(8)] + [
            grad_not_implemented(self, 8 + j, inputs[8 + j], "gradients with respect to the data are not implemented")
            for j in range(5)
        ]

    def connection_pattern(self, node):
        return [[True] * 9 for _ in node.inputs]

    def __str__(self) -> str:
        return f"FusedRowLogLik{{{self.family}, lo={self.lo}, hi={self.hi}, sign={self.sign}, parallel={self.parallel}}}"


@register_funcify_and_cache_key(FusedRowLogLik)
def _numba_funcify_fused_row_loglik(op: FusedRowLogLik, node=None, **kwargs):
    """Compiled implementation: one kernel call, the gradient split per parameter.

    Returns the njit function and its PyTensor cache key (Op, props, source hash).
    """
    key = hashlib.sha256(
        f"{type(op).__module__}.{type(op).__qualname__}|{op.family}|{op.lo}|{op.hi}|{op.sign}|{op.parallel}|"
        f"{_KEY_SOURCE}".encode()
    ).hexdigest()
    kernel = op.kernel
    if op.parallel:
        numba.get_num_threads()  # thread pool up before linking a prange caller (see ops.py)
    lo0, lo1, lo2, lo3 = op.lo
    hi0, hi1, hi2, hi3 = op.hi
    s0, s1, s2, s3 = op.sign
    m0, m1, m2, m3 = hi0 - lo0, hi1 - lo1, hi2 - lo2, hi3 - lo3
    kmax = max(op.hi)

    @numba_njit
    def fused_row_loglik_op(b0, b1, b2, b3, c0, c1, c2, c3, Z, x, t_x, T, w):
        n = x.shape[0]
        if Z.shape[0] != n or t_x.shape[0] != n or T.shape[0] != n or w.shape[0] != n or Z.shape[1] < kmax:
            raise ValueError("FusedRowLogLik: data of unequal lengths or Z with too few columns.")
        if c0.shape[0] != m0 or c1.shape[0] != m1 or c2.shape[0] != m2 or c3.shape[0] != m3:
            raise ValueError("FusedRowLogLik: coefficient vectors of the wrong lengths.")
        base = np.array([b0.item(), b1.item(), b2.item(), b3.item()])
        gam = np.concatenate((c0, c1, c2, c3))
        lo = np.array([lo0, lo1, lo2, lo3], dtype=np.int64)
        hi = np.array([hi0, hi1, hi2, hi3], dtype=np.int64)
        sign = np.array([s0, s1, s2, s3])
        val, gb, gg = kernel(base, gam, np.ascontiguousarray(Z), lo, hi, sign, x, t_x, T, w)
        return (np.asarray(val), np.asarray(gb[0]), np.asarray(gb[1]), np.asarray(gb[2]), np.asarray(gb[3]),
                gg[:m0].copy(), gg[m0:m0 + m1].copy(), gg[m0 + m1:m0 + m1 + m2].copy(), gg[m0 + m1 + m2:].copy())

    return fused_row_loglik_op, key
