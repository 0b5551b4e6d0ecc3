"""One PyTensor Op for the log-likelihood of all design cells of a model.

The covariate and hierarchical models (:class:`~clvbayes.models.covariate.CovariatePurchaseModel`,
:class:`~clvbayes.models.hierarchical.HierarchicalPurchaseModel`,
:class:`~clvbayes.models.covariate_spend.CovariateSpendModel`, cells path) have one set of
parameters per *design cell* (customers sharing covariates or segment), and the likelihood is
``Σ_c Σ_{i ∈ c} w_i ln L(θ_c | data_i)``. One :class:`~clvbayes.models.ops.LogLikSumOp` node
per cell made nutpie's compile time grow with the cell count, since Numba compiles every node:
measured on the hierarchical BG/NBD model on 10^5 customers, 9.6 s for one node (plain
BetaGeoModel), 18 s for 2 segments, 31 s for 5 and 41.5 s for 10, and the cells path allows up
to 256 cells. :class:`CellsLogLik` is one node for all cells: one Numba function loops over the
cells and calls the wrapped Op's kernel on each cell's slice of the data, so the kernel is
compiled once, whatever the number of cells. Measured (same model and data, 10 segments, a
busy 2-core machine; two runs each): nutpie compile 48.4 s / 34.5 s with one node per cell,
13.2 s / 9.6 s with this Op (plain BetaGeoModel: 8.4 s); one logp + gradient 1.26-1.32 ms
either way (the cells never cost anything per row).

Inputs of :class:`CellsLogLik` wrapping ``op`` (``n = op.n_params`` parameters, ``k =
len(op.data_names)`` data columns):

- ``n`` float64 vectors of length ``n_cells``: entry ``c`` of vector ``j`` is cell ``c``'s
  parameter ``op.param_names[j]``;
- ``k`` float64 vectors: data column ``j`` of every cell, concatenated in cell order (each
  column has its own length per cell: prepared arrays such as Pareto/NBD's ``times`` are not
  row-aligned, and hold *cell-local* indices, e.g. into the cell's own ``times``, so that a
  cell's slice is exactly what ``op`` would receive for that cell alone);
- one float64 matrix ``offsets`` of shape ``(k, n_cells + 1)``: cell ``c``'s slice of column
  ``j`` is ``offsets[j, c]:offsets[j, c + 1]`` (float64 like every data input, exact for
  lengths below 2^53).

Outputs: the scalar total and, with a gradient, ``n`` vectors of length ``n_cells``, the
derivatives of the total with respect to each cell's parameters. Each cell's value is the
wrapped kernel's on the same arrays as a separate ``op`` node would get, bit for bit; the total
differs from a sum of separate nodes only by summation order.

The data are shared variables (``pm.Data`` in a model) whose names do not depend on the cell
count (:func:`cells_data`), so ``pm.set_data`` and nutpie's ``compiled.with_data`` swap in other
data, of other cell sizes, without recompiling.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.link.numba.cache import compile_numba_function_src
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key
from pytensor.tensor.rewriting.basic import register_specialize
from pytensor.tensor.variable import TensorVariable

from clvbayes.models import ops as _ops
from clvbayes.models.ops import LogLikSumOp, _as_shared

__all__ = ["CellsLogLik", "cells_data", "cells_loglik"]


class CellsLogLik(Op):
    """``Σ_c Σ_{i ∈ c} w_i ln L(θ_c | data_i)`` over design cells, and its gradient, in one node.

    Exists for compile time: nutpie (Numba) compiles every Op node, ~3-4 s each for the
    purchase kernels, so one node per cell cost ~32 s more for 10 cells than for one
    (hierarchical BG/NBD, 10^5 customers, module docstring). This Op calls ``op``'s kernel once
    per cell from one Numba loop. Inputs and outputs: module docstring.

    A cell whose parameters are not all ``> 0`` (or NaN), like :class:`LogLikSumOp`, makes the
    total ``-inf`` and every gradient entry NaN (the point is outside the support).

    Parameters
    ----------
    op : LogLikSumOp
        The per-cell likelihood (e.g. ``FamilyLogLik("pnbd")``, ``GammaGammaLogLik()``); its
        ``with_grad`` decides whether this Op has gradient outputs, its ``parallel`` which
        kernel build is called (serial by default: nutpie runs one chain per core).
    """

    __props__ = ("op",)
    default_output = 0

    def __init__(self, op: LogLikSumOp) -> None:
        if not isinstance(op, LogLikSumOp):
            raise TypeError(f"CellsLogLik wraps a LogLikSumOp, got {type(op).__name__}.")
        self.op = op

    @property
    def with_grad(self) -> bool:
        return self.op.with_grad

    @property
    def n_params(self) -> int:
        return self.op.n_params

    @property
    def n_data(self) -> int:
        return len(self.op.data_names)

    def clone_with(self, with_grad: bool) -> CellsLogLik:
        """The same Op with or without the gradient outputs."""
        return CellsLogLik(self.op.clone_with(with_grad))

    def make_node(self, *inputs) -> Apply:
        n, k = self.n_params, self.n_data
        names = (*self.op.param_names, *self.op.data_names, "offsets")
        if len(inputs) != n + k + 1:
            raise TypeError(f"CellsLogLik({self.op}) takes {n + k + 1} inputs ({', '.join(names)}), got {len(inputs)}.")
        ins = []
        for i, v in enumerate(inputs):
            v = pt.as_tensor_variable(v)
            want = 2 if i == n + k else 1
            if v.ndim != want:
                raise TypeError(f"{names[i]} must have {want} dimension(s), got {v.ndim}.")
            ins.append(v if v.dtype == "float64" else pt.cast(v, "float64"))
        sizes = {v.type.shape[0] for v in ins[:n]} - {None}
        if len(sizes) > 1:
            raise ValueError(f"The parameter vectors must have one length (the cell count), got {sorted(sizes)}.")
        n_cells = sizes.pop() if sizes else None
        outs = [pt.tensor(dtype="float64", shape=())]
        if self.with_grad:
            outs += [pt.tensor(dtype="float64", shape=(n_cells,)) for _ in range(n)]
        return Apply(self, ins, outs)

    def perform(self, node, inputs, output_storage) -> None:
        n, k = self.n_params, self.n_data
        params, data, offsets = inputs[:n], inputs[n : n + k], inputs[n + k].astype(np.int64)
        n_cells = params[0].shape[0]
        kernel = self.op.kernel
        total = 0.0
        grads = np.empty((n, n_cells))
        for c in range(n_cells):
            theta = [float(p[c]) for p in params]
            if not all(t > 0.0 for t in theta):  # False for NaN too
                total = -math.inf
                grads[:] = math.nan
                break
            cols = [d[offsets[j, c] : offsets[j, c + 1]] for j, d in enumerate(data)]
            if self.with_grad:
                val, g = kernel(*theta, *cols)
                grads[:, c] = g
            else:
                val = kernel(*theta, *cols)
            total += val
        output_storage[0][0] = np.asarray(total, dtype=np.float64)
        if self.with_grad:
            for j in range(n):
                output_storage[1 + j][0] = grads[j].copy()

    def infer_shape(self, fgraph, node, input_shapes):
        if self.with_grad:
            return [(), *([input_shapes[0]] * self.n_params)]
        return [()]

    def L_op(self, inputs, outputs, output_grads):
        n = self.n_params
        if self.with_grad:
            if any(not isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
                raise NotImplementedError("CellsLogLik: the gradient outputs have no gradient (no second derivatives).")
            grads = outputs[1:]
        else:
            grads = self.clone_with(True)(*inputs, return_list=True)[1:]
        out = [output_grads[0] * g for g in grads]
        out += [grad_not_implemented(self, i, inputs[i], "gradients with respect to the data are not implemented")
                for i in range(n, len(inputs))]
        return out

    def connection_pattern(self, node):
        n_out = 1 + (self.n_params if self.with_grad else 0)
        return [[True] * n_out for _ in node.inputs]

    def __str__(self) -> str:
        return f"CellsLogLik{{{self.op}}}"


@register_specialize
@node_rewriter([CellsLogLik])
def local_cells_loglik_value_only(fgraph, node):
    """Use the value-only kernel when nothing reads the gradient outputs of a node (as
    :func:`clvbayes.models.ops.local_loglik_value_only`)."""
    op = node.op
    if not op.with_grad or any(fgraph.clients.get(out) for out in node.outputs[1:]):
        return None
    return {node.outputs[0]: op.clone_with(False)(*node.inputs)}


# --------------------------------------------------------------------------------------
# Numba dispatch
# --------------------------------------------------------------------------------------

# The cell loop for n parameters and k data columns, generated per arity (Numba has no
# varargs): {rest_p}, {d} complete the argument list, {theta} reads cell c's parameters,
# {bounds} its slice of each column, {call} the kernel; {alloc}, {nan} the gradient's storage.
_TEMPLATE = '''
def cells_loglik(p0, {rest_p}{d}, offsets):
    n_cells = p0.shape[0]
    total = 0.0
    ok = True
{alloc}
    for c in range(n_cells):
{theta}
        if not ({valid}):
            ok = False
            break
{bounds}
        {call}
    if not ok:
        total = -np.inf
{nan}
    return {ret}
'''


def _cells_source(n: int, k: int, with_grad: bool) -> str:
    """The njit source of the cell loop for ``n`` parameters, ``k`` data columns."""
    theta = "\n".join(f"        v{j} = p{j}[c]" for j in range(n))
    valid = " and ".join(f"v{j} > 0.0" for j in range(n))  # False for NaN too
    bounds = "\n".join(f"        a{j} = int(offsets[{j}, c])\n        b{j} = int(offsets[{j}, c + 1])"
                       for j in range(k))
    args = ", ".join([*(f"v{j}" for j in range(n)), *(f"d{j}[a{j}:b{j}]" for j in range(k))])
    alloc, nan = ((f"    grads = np.empty(({n}, n_cells))", "        grads[:] = np.nan") if with_grad
                  else ("", ""))
    if with_grad:
        call = (f"val, g = kernel({args})\n        total += val\n"
                + "\n".join(f"        grads[{j}, c] = g[{j}]" for j in range(n)))
        ret = "np.asarray(total), " + ", ".join(f"grads[{j}].copy()" for j in range(n))
    else:
        call = f"total += kernel({args})"
        ret = "np.asarray(total)"
    return _TEMPLATE.format(rest_p="".join(f"p{j}, " for j in range(1, n)), d=", ".join(f"d{j}" for j in range(k)),
                            alloc=alloc, nan=nan, theta=theta, valid=valid, bounds=bounds, call=call, ret=ret)


def _source_fingerprint() -> str:
    h = hashlib.sha256(_ops._SOURCE_FINGERPRINT.encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


_SOURCE_FINGERPRINT = _source_fingerprint()


@register_funcify_and_cache_key(CellsLogLik)
def _numba_funcify_cells_loglik(op: CellsLogLik, node=None, **kwargs):
    """Compiled implementation: the generated cell loop (:func:`_cells_source`) around the
    wrapped Op's kernel. Returns the njit function and its PyTensor cache key (the wrapped
    Op's identity, the arity, the kernel and module sources)."""
    inner = op.op
    n, k = op.n_params, op.n_data
    key = hashlib.sha256(
        f"CellsLogLik|{type(inner).__module__}.{type(inner).__qualname__}|{getattr(inner, 'family', '')}|"
        f"{inner.with_grad}|{inner.parallel}|{n}|{k}|{_SOURCE_FINGERPRINT}".encode()
    ).hexdigest()
    if inner.parallel:
        numba.get_num_threads()  # as in ops._numba_funcify_loglik_sum: the thread pool before linking
    src = _cells_source(n, k, inner.with_grad)
    fn = compile_numba_function_src(src, "cells_loglik", global_env={"np": np, "kernel": inner.kernel},
                                    cache_key=key)
    return numba_njit(fn), key


# --------------------------------------------------------------------------------------
# Model-building helpers
# --------------------------------------------------------------------------------------


def cells_data(op: LogLikSumOp, cells: Sequence[Sequence[np.ndarray]], *, name: str,
               shared: bool = True) -> list[Any]:
    """The data inputs of :class:`CellsLogLik`: each column concatenated over the cells, then
    the ``(k, n_cells + 1)`` offsets matrix.

    Parameters
    ----------
    op : LogLikSumOp
        The wrapped Op (its ``data_names`` give the columns and the variables' names).
    cells : sequence of sequences of np.ndarray
        Per cell, all ``len(op.data_names)`` data arrays ``op`` would take for that cell alone
        (e.g. :func:`clvbayes.models.ops.family_data` with ``shared=False``).
    name : str
        Prefix of the shared variables: ``{name}_{data name}`` and ``{name}_offsets``,
        independent of the cell count so that ``pm.set_data`` / ``compiled.with_data`` can swap
        in other data.
    shared : bool, default True
        Shared variables (``pm.Data`` inside a model); False: plain arrays.
    """
    k = len(op.data_names)
    if not cells:
        raise ValueError("cells_data needs at least one cell.")
    if any(len(c) != k for c in cells):
        raise ValueError(f"Every cell needs the {k} data columns {op.data_names}.")
    cols = {nm: np.ascontiguousarray(np.concatenate([np.asarray(c[j], dtype=np.float64) for c in cells]))
            for j, nm in enumerate(op.data_names)}
    lengths = np.array([[len(c[j]) for c in cells] for j in range(k)], dtype=np.float64)
    offsets = np.zeros((k, len(cells) + 1))
    np.cumsum(lengths, axis=1, out=offsets[:, 1:])
    arrays = {**cols, "offsets": offsets}
    if not shared:
        return list(arrays.values())
    return _as_shared(name, arrays)


def cells_loglik(op: LogLikSumOp, params: Sequence[Any], data: Sequence[Variable | np.ndarray]) -> TensorVariable:
    """Symbolic total log-likelihood over the cells (one :class:`CellsLogLik` node).

    Parameters
    ----------
    op : LogLikSumOp
        The per-cell likelihood Op.
    params : sequence of tensors
        ``op.n_params`` parameters: vectors over the cells, or scalars shared by every cell
        (broadcast here; their gradient is then the sum over the cells).
    data : sequence
        :func:`cells_data`'s output for the same cells.
    """
    n_cells = pt.as_tensor_variable(data[-1]).shape[1] - 1
    vecs = []
    for v in params:
        v = pt.as_tensor_variable(v)
        vecs.append(pt.alloc(v, n_cells) if v.ndim == 0 else v)
    return CellsLogLik(op)(*vecs, *data)
