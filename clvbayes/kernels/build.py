"""Compile a kernel again with some of the functions it calls replaced, or without threads.

Numba's first-class function arguments and closures are not cached on disk (measured: a
cache miss in every new process), so one generic kernel source cannot take a model's cores
as arguments. :func:`rebuild` instead compiles the *same Python source* again with other
global names bound (e.g. ``_p_alive_one`` -> the Pareto/NBD core), rebuilding every
dispatcher in the call tree that sees a replaced name, and gives each copy its own
``__qualname__`` so that Numba's on-disk cache (keyed by file, qualname and line) keeps the
copies apart and serves them from disk in later processes.

Numba's cache index checks the source file of the kernel, not of the functions it calls:
callers pass a ``tag`` that changes with their replacements' source (see
:func:`source_tag`).
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from numba import njit
from numba.core.registry import CPUDispatcher as Dispatcher

__all__ = ["rebuild", "source_tag"]


def source_tag(functions: Iterable[Callable], extra: str = "") -> str:
    """A short hash of the source files that define ``functions`` (njit dispatchers or
    Python functions), for :func:`rebuild`'s ``tag``."""
    h = hashlib.sha256(extra.encode())
    files = set()
    for f in functions:
        py = getattr(f, "py_func", f)
        files.add(Path(py.__code__.co_filename))
    for path in sorted(files):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def rebuild(
    kernel: Callable,
    *,
    replace: Mapping[str, Callable] | None = None,
    serial: bool = False,
    tag: str,
    _memo: dict | None = None,
) -> Callable:
    """A new Numba build of ``kernel`` with global names rebound and/or without ``parallel``.

    Parameters
    ----------
    kernel
        An ``@njit`` dispatcher.
    replace
        Global names to rebind in ``kernel`` and in every dispatcher it calls, directly or
        through others (e.g. ``{"_p_alive_one": pareto_nbd.p_alive_one}``).
    serial
        Compile every ``parallel=True`` dispatcher in the call tree without it: ``prange``
        runs as ``range`` over the same fixed chunks, so sums are bit-identical.
    tag
        Appended to each copy's ``__qualname__`` (keeps on-disk caches apart).

    Returns
    -------
    Callable
        ``kernel`` itself when nothing in its call tree changes.
    """
    replace = dict(replace or {})
    memo = {} if _memo is None else _memo
    if kernel in memo:
        return memo[kernel]
    py = kernel.py_func
    rebound = {}
    for name in py.__code__.co_names:
        val = py.__globals__.get(name)
        if name in replace:
            if replace[name] is not val:
                rebound[name] = replace[name]
            continue
        if isinstance(val, Dispatcher) and val is not kernel:
            new = rebuild(val, replace=replace, serial=serial, tag=tag, _memo=memo)
            if new is not val:
                rebound[name] = new
    drop_parallel = serial and bool(kernel.targetoptions.get("parallel"))
    if not drop_parallel and not rebound:
        memo[kernel] = kernel
        return kernel
    glb = dict(py.__globals__)
    glb.update(rebound)
    fn = types.FunctionType(py.__code__, glb, py.__name__, py.__defaults__, py.__closure__)
    fn.__qualname__ = f"{py.__qualname__}__{tag}"
    fn.__module__ = py.__module__
    fn.__doc__ = py.__doc__
    opts = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
    if serial:
        opts.pop("parallel", None)
    opts.setdefault("cache", True)
    out = njit(**opts)(fn)
    memo[kernel] = out
    return out
