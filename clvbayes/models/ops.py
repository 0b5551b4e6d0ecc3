"""PyTensor Ops for the BG/NBD and Gamma-Gamma log-likelihoods, backed by the Numba kernels.

The Ops compute the weighted log-likelihood sum *and* its gradient in one kernel call
(:func:`clvbayes.kernels.bgnbd.bgnbd_loglik_sum_grad`,
:func:`clvbayes.kernels.gamma_gamma.gg_loglik_sum_grad`): the node has two outputs,
``(value, grad)``, and the gradient of ``value`` with respect to the parameters is read from
the second output of the *same* node (:meth:`LogLikSumOp.L_op`). A compiled
``logp + dlogp`` graph (PyMC, nutpie) therefore evaluates the kernel once per point. When
only the value is needed (``model.compile_logp()``), the rewrite
:func:`local_loglik_value_only` swaps in the value-only kernel.

Numba: ``numba_funcify`` is registered for the Ops, so ``mode="NUMBA"`` graphs and
``nutpie.compile_pymc_model`` call the kernels from compiled code, without Python callbacks.

Data are Op *inputs*, best given as shared variables (``pm.Data``, :func:`bgnbd_data`):
nutpie then passes the arrays to its compiled function by pointer at run time, so
``compiled.with_data(...)`` fits new data (of any length) without recompiling, and the
compiled graph does not depend on the data (one PyTensor cache entry for all data sets).
Compile time does not grow with the number of rows in any case (measured up to 10^6 rows):
Numba freezes constant arrays of at most 1 MB into the LLVM module and refers to larger
ones by address, which only prevents on-disk caching.

In a model the log-likelihood enters as ``pm.Potential("loglik", bgnbd_loglik_tensor(...))``.
Not ``pm.CustomDist``: the Ops return one weighted sum over compressed rows, not per-customer
terms of an observed array, and PyMC could not draw predictive samples of (x, t_x) from it
anyway; prior/posterior predictive draws and per-customer log-likelihoods (LOO) come from
the clvbayes kernels and simulator applied to the posterior draws.

By default the Ops call *serial* builds of the kernels (same source with every
``parallel=True`` dispatcher in the call tree recompiled without it: ``prange`` runs as
``range`` over the same fixed chunks, hence bit-identical sums). Samplers already run one
chain per core, and OpenMP teams inside each chain oversubscribe the CPU (measured on a busy
2-core machine: 24 ms instead of 5 ms per gradient on 31k rows). ``parallel=True`` calls
the kernels as they are (threaded loops; for one chain on large data with idle cores).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.link.numba.cache import compile_numba_function_src
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key
from pytensor.tensor.rewriting.basic import register_specialize
from pytensor.tensor.special import betaln
from pytensor.tensor.variable import TensorVariable

from clvbayes.data.compress import compress_rows
from clvbayes.families import get_family
from clvbayes.families.compiled import drivers_for
from clvbayes.kernels.build import rebuild
from clvbayes.kernels.bgnbd import bgnbd_loglik_sum, bgnbd_loglik_sum_grad
from clvbayes.kernels.gamma_gamma import gg_loglik_sum, gg_loglik_sum_grad

__all__ = [
    "LogLikSumOp",
    "FamilyLogLik",
    "BGNBDLogLik",
    "GammaGammaLogLik",
    "BGNBDData",
    "GammaGammaData",
    "bgnbd_data",
    "family_data",
    "gamma_gamma_data",
    "bgnbd_loglik_tensor",
    "gamma_gamma_loglik_tensor",
    "bgnbd_loglik_pytensor",
    "gamma_gamma_loglik_pytensor",
    "local_loglik_value_only",
]

TensorLike = TensorVariable | np.ndarray | float


# Part of the serial copies' qualname: bump it when the serial rebuild changes what it
# compiles, since Numba's cache index does not see the replaced globals.
_SERIAL_BUILD_VERSION = 1


def _serial_build(kernel: Callable, _memo: dict | None = None) -> Callable:
    """A serial (``parallel=False``) Numba build of a kernel and of everything it calls
    (:func:`clvbayes.kernels.build.rebuild`): ``prange`` runs as ``range`` over the same fixed
    chunks, so the sums are bit-identical to the threaded kernel's."""
    return rebuild(kernel, serial=True, tag=f"serial{_SERIAL_BUILD_VERSION}", _memo=_memo)


# (with_grad, parallel) -> kernel. Dispatchers compile lazily, on first call.
_SERIAL_MEMO: dict = {}
@functools.cache
def family_kernels(family: str) -> dict:
    """(with_grad, parallel) -> likelihood kernel of a family (threaded or serial builds)."""
    d = drivers_for(family)
    return {
        (True, True): d.loglik_sum_grad,
        (True, False): d.serial_loglik_sum_grad,
        (False, True): d.loglik_sum,
        (False, False): d.serial_loglik_sum,
    }


# BGNBDLogLik's: the plain (x, t_x, T, weights) kernels, without the family's prepared times.
_BGNBD_KERNELS = {
    (True, True): bgnbd_loglik_sum_grad,
    (True, False): _serial_build(bgnbd_loglik_sum_grad, _SERIAL_MEMO),
    (False, True): bgnbd_loglik_sum,
    (False, False): _serial_build(bgnbd_loglik_sum, _SERIAL_MEMO),
}
_GG_KERNELS = {
    (True, True): gg_loglik_sum_grad,
    (True, False): _serial_build(gg_loglik_sum_grad, _SERIAL_MEMO),
    (False, True): gg_loglik_sum,
    (False, False): _serial_build(gg_loglik_sum, _SERIAL_MEMO),
}


class LogLikSumOp(Op):
    """Weighted log-likelihood sum of a model, and optionally its gradient, from a kernel.

    Inputs: ``n_params`` float64 scalars (the model parameters), then ``len(data_names)``
    float64 vectors of equal length (the data columns, the last being the row weights).
    Outputs: the scalar ``Σ_i w_i ln L_i`` and, if ``with_grad``, the vector of its
    derivatives with respect to the parameters (natural scale), both from one kernel call.
    Calling the Op returns the value (``default_output = 0``); the gradient is
    ``value.owner.outputs[1]``.

    Parameters outside ``(0, inf)`` (or NaN) give ``-inf`` and a NaN gradient, whatever
    the kernel's own convention.

    Parameters
    ----------
    with_grad : bool, default True
        Two outputs (value, gradient) from the value-and-gradient kernel; False: the value
        only, from the cheaper value kernel (its gradient then needs a second node).
    parallel : bool, default False
        Call the kernels as they are (threaded ``prange`` loops) instead of their serial
        builds.
    """

    __props__ = ("with_grad", "parallel")
    default_output = 0
    param_names: tuple[str, ...] = ()
    data_names: tuple[str, ...] = ()
    _kernels: dict = {}

    def __init__(self, with_grad: bool = True, parallel: bool = False) -> None:
        self.with_grad = bool(with_grad)
        self.parallel = bool(parallel)

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @property
    def kernel(self) -> Callable:
        """The Numba kernel this Op calls (njit dispatcher)."""
        return self._kernels[(self.with_grad, self.parallel)]

    def make_node(self, *inputs) -> Apply:
        n_in = self.n_params + len(self.data_names)
        if len(inputs) != n_in:
            raise TypeError(
                f"{type(self).__name__} takes {n_in} inputs "
                f"({', '.join(self.param_names + self.data_names)}), got {len(inputs)}."
            )
        ins = []
        for i, v in enumerate(inputs):
            name = (self.param_names + self.data_names)[i]
            v = pt.as_tensor_variable(v)
            want = 0 if i < self.n_params else 1
            if v.ndim != want:
                raise TypeError(f"{name} must have {want} dimension(s), got {v.ndim}.")
            if v.dtype != "float64":
                v = pt.cast(v, "float64")
            ins.append(v)
        outs = [pt.tensor(dtype="float64", shape=())]
        if self.with_grad:
            outs.append(pt.tensor(dtype="float64", shape=(self.n_params,)))
        return Apply(self, ins, outs)

    def perform(self, node, inputs, output_storage) -> None:
        params = [float(v) for v in inputs[: self.n_params]]
        data = inputs[self.n_params :]
        ok = all(p > 0.0 for p in params)  # False for NaN too
        if self.with_grad:
            if ok:
                val, g = self.kernel(*params, *data)
            else:
                val, g = -math.inf, np.full(self.n_params, math.nan)
            output_storage[0][0] = np.asarray(val, dtype=np.float64)
            output_storage[1][0] = np.asarray(g, dtype=np.float64)
        else:
            val = self.kernel(*params, *data) if ok else -math.inf
            output_storage[0][0] = np.asarray(val, dtype=np.float64)

    def clone_with(self, with_grad: bool) -> LogLikSumOp:
        """The same Op with or without the gradient output."""
        return type(self)(with_grad=with_grad, parallel=self.parallel)

    def infer_shape(self, fgraph, node, input_shapes):
        if self.with_grad:
            return [(), (self.n_params,)]
        return [()]

    def L_op(self, inputs, outputs, output_grads):
        g_val = output_grads[0]
        if self.with_grad:
            if not isinstance(output_grads[1].type, DisconnectedType):
                raise NotImplementedError(
                    f"{type(self).__name__}: the gradient output has no gradient "
                    "(no second derivatives)."
                )
            grad_vec = outputs[1]
        else:
            grad_vec = self.clone_with(True)(*inputs).owner.outputs[1]
        out = [g_val * grad_vec[i] for i in range(self.n_params)]
        out += [
            grad_not_implemented(self, self.n_params + j, inputs[self.n_params + j],
                                 "gradients with respect to the data are not implemented")
            for j in range(len(self.data_names))
        ]  # fmt: skip
        return out

    def connection_pattern(self, node):
        n_out = 2 if self.with_grad else 1
        return [[True] * n_out for _ in node.inputs]


class FamilyLogLik(LogLikSumOp):
    """Weighted log-likelihood ``Σ w_i ln L(θ | x_i, t_x_i, T_i)`` of a purchase model family.

    Inputs: the family's four parameters (:attr:`Family.param_names`), then ``(x, t_x, T,
    weights)`` and, for a family with ``fast["prepare"]``, its prepared arrays
    (:func:`family_data` gives them all). The kernels are the family's compiled drivers
    (:func:`clvbayes.families.compiled.drivers_for`): one Op class serves every family.

    Parameters
    ----------
    family : str, default "bgnbd"
        Registered family name.
    with_grad, parallel
        As in :class:`LogLikSumOp`.
    """

    __props__ = ("family", "with_grad", "parallel")

    def __init__(self, family: str = "bgnbd", with_grad: bool = True, parallel: bool = False) -> None:
        super().__init__(with_grad=with_grad, parallel=parallel)
        self.family = get_family(family).name

    @property
    def param_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return get_family(self.family).param_names

    @property
    def data_names(self) -> tuple[str, ...]:  # type: ignore[override]
        """``(x, t_x, T, weights)`` then the family's prepared arrays (``prepared0``, ...;
        :meth:`clvbayes.families.compiled.Drivers.loglik_data`)."""
        return ("x", "t_x", "T", "weights", *(f"prepared{k}" for k in range(_n_extra(self.family))))

    @property
    def _kernels(self) -> dict:  # type: ignore[override]
        return family_kernels(self.family)

    def clone_with(self, with_grad: bool) -> FamilyLogLik:
        return type(self)(family=self.family, with_grad=with_grad, parallel=self.parallel)

    def __str__(self) -> str:
        return f"{type(self).__name__}{{{self.family}, with_grad={self.with_grad}, parallel={self.parallel}}}"


@functools.cache
def _n_extra(family: str) -> int:
    return drivers_for(family).n_extra


class BGNBDLogLik(FamilyLogLik):
    """BG/NBD weighted log-likelihood ``Σ w_i ln L(r, α, a, b | x_i, t_x_i, T_i)``.

    Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science
    24(2), eq. (6), via :func:`clvbayes.kernels.bgnbd.bgnbd_loglik_sum_grad`. Inputs
    ``(r, alpha, a, b, x, t_x, T, weights)``.
    """

    __props__ = ("with_grad", "parallel")
    _kernels = _BGNBD_KERNELS
    data_names = ("x", "t_x", "T", "weights")

    def __init__(self, with_grad: bool = True, parallel: bool = False) -> None:
        super().__init__("bgnbd", with_grad=with_grad, parallel=parallel)

    def clone_with(self, with_grad: bool) -> BGNBDLogLik:
        return type(self)(with_grad=with_grad, parallel=self.parallel)


class GammaGammaLogLik(LogLikSumOp):
    """Gamma-Gamma weighted log-likelihood ``Σ w_i ln f(m_i | p, q, γ, x_i)``.

    Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base
    analysis", JMR 42(4), appendix, via
    :func:`clvbayes.kernels.gamma_gamma.gg_loglik_sum_grad`. Inputs
    ``(p, q, gamma, x, m, weights)``; rows with ``x == 0`` contribute 0.
    """

    param_names = ("p", "q", "gamma")
    data_names = ("x", "m", "weights")
    _kernels = _GG_KERNELS


@register_specialize
@node_rewriter([LogLikSumOp])
def local_loglik_value_only(fgraph, node):
    """Use the value-only kernel when nothing reads the gradient output of a node."""
    op = node.op
    if not op.with_grad or fgraph.clients.get(node.outputs[1]):
        return None
    new = op.clone_with(False)(*node.inputs)
    return {node.outputs[0]: new}


# --------------------------------------------------------------------------------------
# Numba dispatch
# --------------------------------------------------------------------------------------


def _source_fingerprint() -> str:
    """Hash of the kernel sources and of this module, for PyTensor's Numba cache key.

    PyTensor's on-disk cache trusts the key alone (it does not check the source), so a key
    built from the Op's props only would keep serving a stale kernel after an edit.
    """
    h = hashlib.sha256()
    kernel_dir = Path(bgnbd_loglik_sum_grad.py_func.__code__.co_filename).parent
    family_dir = Path(get_family.__code__.co_filename).parent
    for path in [*sorted(kernel_dir.glob("*.py")), *sorted(family_dir.glob("*.py")), Path(__file__)]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


_SOURCE_FINGERPRINT = _source_fingerprint()


@register_funcify_and_cache_key(LogLikSumOp)
def _numba_funcify_loglik_sum(op: LogLikSumOp, node=None, **kwargs):
    """Compiled implementation: unpack the 0-d parameter arrays and call the kernel.

    Returns the njit function and its PyTensor cache key (Op type, props, source hash).
    """
    key = hashlib.sha256(
        f"{type(op).__module__}.{type(op).__qualname__}|{getattr(op, 'family', '')}|{op.with_grad}|{op.parallel}|"
        f"{_SOURCE_FINGERPRINT}".encode()
    ).hexdigest()
    if op.parallel:
        # Start Numba's thread pool now: a cached caller of a prange kernel needs its
        # scheduler symbols at link time (LLVM "Symbol not found: allocate_sched" otherwise).
        numba.get_num_threads()
    return _kernel_call(op.kernel, op.n_params, len(op.data_names), op.with_grad, key), key


def _kernel_call(kernel: Callable, n_params: int, n_data: int, with_grad: bool, key: str) -> Callable:
    """The Numba function a node runs: unpack the 0-d parameter arrays, map parameters
    outside ``(0, inf)`` (or NaN) to ``-inf`` / a NaN gradient, else call ``kernel(params...,
    data...)``. Written out for the Op's arity (parameters, data columns) from one template."""
    ps = [f"p{i}" for i in range(n_params)]
    vs = [f"v{i}" for i in range(n_params)]
    ds = [f"d{j}" for j in range(n_data)]
    call = f"kernel({', '.join(vs + ds)})"
    ok = " and ".join(f"{v} > 0.0" for v in vs)
    lines = [f"def loglik_sum_op({', '.join(ps + ds)}):",
             *(f"    {v} = {p}[()]" for v, p in zip(vs, ps, strict=True)),
             f"    if {ok}:"]
    if with_grad:
        lines += [f"        val, g = {call}", "        return np.asarray(val), g",
                  f"    return np.asarray(-np.inf), np.full({n_params}, np.nan)"]
    else:
        lines += [f"        return np.asarray({call})", "    return np.asarray(-np.inf)"]
    fn = compile_numba_function_src("\n".join(lines) + "\n", "loglik_sum_op", {"kernel": kernel, "np": np},
                                    cache_key=key)
    return numba_njit(fn)


# --------------------------------------------------------------------------------------
# Data containers and model-building helpers
# --------------------------------------------------------------------------------------


class BGNBDData(NamedTuple):
    """BG/NBD data columns for the Ops: arrays or PyTensor variables (shared or symbolic)."""

    x: Any
    t_x: Any
    T: Any
    weights: Any


class GammaGammaData(NamedTuple):
    """Gamma-Gamma data columns for the Ops: arrays or PyTensor variables."""

    x: Any
    m: Any
    weights: Any


def _columns(*cols: Any) -> list[np.ndarray]:
    out = [np.ascontiguousarray(c, dtype=np.float64) for c in cols]
    n = out[0].shape[0] if out[0].ndim == 1 else -1
    if any(c.ndim != 1 or c.shape[0] != n for c in out):
        raise ValueError("The data columns must be one-dimensional and of equal length.")
    return out


def _as_shared(name: str, columns: dict[str, np.ndarray]) -> list[Variable]:
    """``pm.Data`` inside a PyMC model context (so ``pm.set_data`` works), else shared."""
    try:
        import pymc as pm

        pm.modelcontext(None)
    except (ImportError, TypeError):
        return [pytensor.shared(v, name=f"{name}_{k}") for k, v in columns.items()]
    return [pm.Data(f"{name}_{k}", v) for k, v in columns.items()]


def bgnbd_data(
    frequency: Any,
    recency: Any,
    T: Any,
    *,
    weights: Any = None,
    compress: bool = True,
    shared: bool = True,
    name: str = "bgnbd",
) -> BGNBDData:
    """Prepare BG/NBD customer data for :func:`bgnbd_loglik_tensor`.

    Parameters
    ----------
    frequency, recency, T : array-like
        Per-customer repeat frequency ``x``, recency ``t_x`` and age ``T`` (not validated
        here: the model layer does that).
    weights : array-like, optional
        Row weights (default: one per row). Only allowed with ``compress=False``.
    compress : bool, default True
        Collapse identical ``(x, t_x, T)`` rows into weighted unique rows
        (:func:`clvbayes.compress_rows`); the log-likelihood is unchanged.
    shared : bool, default True
        Return shared variables (``pm.Data`` named ``{name}_x``, ``{name}_t_x``,
        ``{name}_T``, ``{name}_weights`` when called inside a ``pm.Model``, otherwise
        ``pytensor.shared``) so that nutpie passes the data by pointer and
        ``compiled.with_data(...)`` / ``pm.set_data`` can swap it without recompiling.
        False: plain arrays (they become graph constants).
    name : str, default "bgnbd"
        Prefix of the shared variables' names (must be unique within a model).

    Returns
    -------
    BGNBDData
    """
    x, t_x, T_ = _columns(frequency, recency, T)
    if compress:
        if weights is not None:
            raise ValueError("weights can only be given with compress=False.")
        c = compress_rows(x, t_x, T_)
        (x, t_x, T_), w = c.columns, c.weights
    else:
        w = np.ones_like(x) if weights is None else _columns(x, weights)[1]
    cols = {"x": x, "t_x": t_x, "T": T_, "weights": w}
    if not shared:
        return BGNBDData(*cols.values())
    return BGNBDData(*_as_shared(name, cols))


def family_data(
    family: str,
    frequency: Any,
    recency: Any,
    T: Any,
    *,
    weights: Any = None,
    compress: bool = True,
    shared: bool = True,
    name: str | None = None,
) -> tuple:
    """All data inputs of :class:`FamilyLogLik` for ``family``: ``(x, t_x, T, weights)`` as
    :func:`bgnbd_data` makes them, then the family's prepared arrays
    (:meth:`clvbayes.families.compiled.Drivers.loglik_data`; none for most families),
    computed once here. Shared variables are named ``{name}_{data name}`` (name defaults to
    the family's); swapping the data (``pm.set_data``, ``compiled.with_data``) must swap
    the prepared arrays with it.
    """
    family = get_family(family).name
    cols = bgnbd_data(frequency, recency, T, weights=weights, compress=compress, shared=False)
    arrays = drivers_for(family).loglik_data(cols.x, cols.t_x, cols.T, cols.weights)
    if not shared:
        return tuple(arrays)
    names = FamilyLogLik(family).data_names
    return tuple(_as_shared(family if name is None else name, dict(zip(names, arrays, strict=True))))


def gamma_gamma_data(
    frequency: Any,
    monetary_value: Any,
    *,
    weights: Any = None,
    compress: bool = True,
    shared: bool = True,
    name: str = "gg",
) -> GammaGammaData:
    """Prepare Gamma-Gamma customer data for :func:`gamma_gamma_loglik_tensor`.

    Rows with ``frequency == 0`` are dropped (they contribute exactly 0). Other
    arguments as in :func:`bgnbd_data`; the shared variables are ``{name}_x``,
    ``{name}_m`` and ``{name}_weights``.
    """
    x, m = _columns(frequency, monetary_value)
    if compress and weights is not None:
        raise ValueError("weights can only be given with compress=False.")
    w = np.ones_like(x) if weights is None else _columns(x, weights)[1]
    keep = x != 0.0
    x, m, w = x[keep], m[keep], w[keep]
    if compress:
        c = compress_rows(x, m)
        (x, m), w = c.columns, c.weights
    cols = {"x": x, "m": m, "weights": w}
    if not shared:
        return GammaGammaData(*cols.values())
    return GammaGammaData(*_as_shared(name, cols))


def bgnbd_loglik_tensor(
    r: TensorLike,
    alpha: TensorLike,
    a: TensorLike,
    b: TensorLike,
    data: BGNBDData | Sequence[Any],
    *,
    parallel: bool = False,
) -> TensorVariable:
    """Symbolic BG/NBD log-likelihood ``Σ_i w_i ln L_i`` (one kernel call for value+gradient).

    Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science
    24(2), eq. (6). For a PyMC model: ``pm.Potential("loglik", bgnbd_loglik_tensor(...))``.

    Parameters
    ----------
    r, alpha, a, b : scalar tensor or float
        BG/NBD parameters (e.g. PyMC random variables).
    data : BGNBDData or sequence
        ``(x, t_x, T, weights)``, e.g. from :func:`bgnbd_data`.
    parallel : bool, default False
        Threaded kernels (see :class:`LogLikSumOp`).

    Returns
    -------
    TensorVariable
        Scalar log-likelihood; ``-inf`` for parameters outside ``(0, inf)``.
    """
    return BGNBDLogLik(parallel=parallel)(r, alpha, a, b, *data)


def gamma_gamma_loglik_tensor(
    p: TensorLike,
    q: TensorLike,
    gamma: TensorLike,
    data: GammaGammaData | Sequence[Any],
    *,
    parallel: bool = False,
) -> TensorVariable:
    """Symbolic Gamma-Gamma log-likelihood ``Σ_i w_i ln f(m_i | p, q, γ, x_i)``.

    Fader, Hardie & Lee (2005), "RFM and CLV", JMR 42(4), appendix. ``data`` is
    ``(x, m, weights)``, e.g. from :func:`gamma_gamma_data`; other arguments as in
    :func:`bgnbd_loglik_tensor`.
    """
    return GammaGammaLogLik(parallel=parallel)(p, q, gamma, *data)


# --------------------------------------------------------------------------------------
# Pure-PyTensor reference expressions (for tests)
# --------------------------------------------------------------------------------------


def bgnbd_loglik_pytensor(
    r: TensorLike,
    alpha: TensorLike,
    a: TensorLike,
    b: TensorLike,
    data: BGNBDData | Sequence[Any],
) -> TensorVariable:
    """BG/NBD ``Σ_i w_i ln L_i`` written directly in PyTensor, from the paper.

    Fader, Hardie & Lee (2005), Marketing Science 24(2), eq. (6)::

        L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
            + δ(x>0) B(a+1, b+x-1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))

    in logs with ``lnΓ``/``ln B`` and a log-sum-exp, differentiable by ``pytensor.grad``.
    A test reference (independent of the Numba kernel): it is the textbook form, without
    the kernel's cancellation-free rewrites, and does not map invalid parameters to -inf.
    """
    x, t_x, T, w = (pt.as_tensor_variable(v) for v in data)
    r, alpha, a, b = (pt.as_tensor_variable(v) for v in (r, alpha, a, b))
    # For x = 0 the second term is absent; x1 keeps its (unused) branch finite.
    x1 = pt.maximum(x, 1.0)
    head = pt.gammaln(r + x) - pt.gammaln(r) + r * pt.log(alpha) - betaln(a, b)
    l1 = betaln(a, b + x) - (r + x) * pt.log(alpha + T)
    l2 = betaln(a + 1.0, b + x1 - 1.0) - (r + x1) * pt.log(alpha + t_x)
    ll = head + pt.switch(x > 0, pt.logaddexp(l1, l2), l1)
    return pt.sum(w * ll)


def gamma_gamma_loglik_pytensor(
    p: TensorLike,
    q: TensorLike,
    gamma: TensorLike,
    data: GammaGammaData | Sequence[Any],
) -> TensorVariable:
    """Gamma-Gamma ``Σ_i w_i ln f(m_i)`` written directly in PyTensor, from the paper.

    Fader, Hardie & Lee (2005), "RFM and CLV", JMR 42(4), appendix::

        f(m | p, q, γ, x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q x^{px} m^{px-1} / (γ + x m)^{px+q}

    Rows with ``x == 0`` contribute 0 (as in the kernels). Test reference only.
    """
    x, m, w = (pt.as_tensor_variable(v) for v in data)
    p, q, gamma = (pt.as_tensor_variable(v) for v in (p, q, gamma))
    pos = x > 0
    xs = pt.switch(pos, x, 1.0)
    ms = pt.switch(pos, m, 1.0)
    px = p * xs
    ll = (
        pt.gammaln(px + q) - pt.gammaln(px) - pt.gammaln(q) + q * pt.log(gamma)
        + px * pt.log(xs) + (px - 1.0) * pt.log(ms) - (px + q) * pt.log(gamma + xs * ms)
    )  # fmt: skip
    return pt.sum(w * pt.switch(pos, ll, 0.0))
