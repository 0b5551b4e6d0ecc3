"""Pareto/NBD log-likelihood and gradient on data with few distinct times (Numba kernels).

The likelihood of :mod:`clvbayes.kernels.pareto_nbd` (Fader & Hardie 2005, "A note on
deriving the Pareto/NBD model and related expressions", sections 2-3, integral form)::

    ln L = lnΓ(r+x) - lnΓ(r) - x ln α + ln(E1 + E2),
    E1 = exp(-A ℓ_a(T) - s ℓ_b(T)),   E2 = (s/β) ∫_{t_x}^T h_x(τ) dτ,
    h_x(τ) = exp(-A ℓ_a(τ) - (s+1) ℓ_b(τ)),

with ``A = r + x``, ``ℓ_a(τ) = ln(1 + τ/α)``, ``ℓ_b(τ) = ln(1 + τ/β)``. For a fixed θ the
integral depends on x and its two end points only, and real data share few distinct times
(daily data: a few hundred), so the rows of one x share one quadrature.

**Prepare** (once per data set, θ-free; :func:`prepare`): the sorted distinct times
``t_0 < t_1 < ...`` of all t_x and T; per distinct x (a *block*) the contiguous range of those
times its rows use; per row its block and the indices of its t_x and T. A block whose range
has more than ``16 n_rows + 16`` times (e.g. continuous times, or a rare large x) is left to
the per-row kernel.

**Per call.** In ``u = ln(1 + τ/c)``, c = min(α, β) (so ``τ = c expm1 u``, as in the per-row
kernel), each segment between consecutive times is integrated by 12-node Gauss-Legendre
panels at most ``min(2, 5/(A+s+1))`` wide in u: the integrand ``exp φ(u)`` with
``|φ'| <= A + s + 1`` is analytic in a strip of half-width π, and that panel rule is the one
the per-row kernel uses (error ~1e-17 relative per panel); a segment at most 0.4 wide with
``(A+s+1) w <= 0.6`` (most segments of daily data) takes one 6-node panel (error < 1e-17,
see ``_KW6``). Panels that cover a whole segment have x-independent nodes, computed once per
call; a block then costs one exp and seven multiply-adds per node. Scaled by ``h_x`` at the block's first time (``h_x`` decreases,
so every scaled value is <= 1; a block whose h_x falls by more than e^600 over its range, or
that needs more than ``n_points + 8 n_rows`` panels, goes to the per-row kernel), the block
stores prefix sums P and suffix sums S (compensated summation) of seven integrals:
``∫ h``, ``∫ h ℓ_a``, ``∫ h ℓ_b``, ``∫ h τ/(α+τ)``, ``∫ h α/(α+τ)``, ``∫ h τ/(β+τ)``,
``∫ h β/(β+τ)``: the integrand of J and of its derivatives under the integral sign (the
per-row kernel's gradient, :func:`clvbayes.kernels.pareto_nbd.loglik_grad_one`).

**Per row** ``I = P(T) - P(t_x)`` or ``S(t_x) - S(T)``: the one with the smaller terms. Both
P and S carry a relative error ~ε, so the difference has relative error
``ε (2 + (X(t_x) + X(T)) / I)`` (X the chosen sums); a row is accepted only if that bound,
times E2's share w2 = I/(E1+E2) of the bracket, plus ε times the terms added into ln L (they
cancel when |ln L| is small), is below 1e-13 |ln L| (a gradient moment whose ratio
exceeds 1e3 takes the row's gradient, not its value, from the per-row kernel); other rows, and the x = 0 rows whose ln L is formed from the
complement Q = 1 - L (``_needs_complement``), are evaluated by the per-row kernel. E1 is tabulated
in the same scaling at every time of the block, so a row costs one log (of E1 + E2) and one
division; ``ℓ_a, ℓ_b, τ/(c+τ), c/(c+τ)`` at the rows' T come
from per-call tables over the distinct times.

Per chunk of rows, one loop (:func:`_table_rows`) answers the common rows (t_x < T, accepted)
and lists the others, which :func:`_row` (the same arithmetic, plus the per-row kernel)
then evaluates; the chunk's values are added in row order, so the split changes no bit.

Array wrappers split rows into fixed chunks of ``special.CHUNK`` rows and add the chunk sums
in order (``prange`` from ``special.PARALLEL_MIN_ROWS`` rows on): sums do not depend on the
thread count, and :func:`clvbayes.kernels.build.rebuild` with ``serial=True`` gives the
same bits.

The extra arrays should be ``prepare(x, t_x, T)`` of the same rows: a row they do not
describe (its x, t_x or T is not the one indexed, e.g. data swapped without a new
``prepare``) is evaluated by the per-row kernel, so foreign arrays cost speed, never
accuracy. Preconditions (not checked): ``0 <= t_x <= T``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels.bgnbd_predict import _GL_W, _GL_X, _NGL
from clvbayes.kernels.pareto_nbd import _difference, _needs_complement, loglik_grad_one, loglik_one
from clvbayes.kernels.special import CHUNK, PARALLEL_MIN_ROWS, digamma_diff, distinct_times, lnpoch, sum_chunks

__all__ = ["prepare", "loglik_rows", "loglik_sum", "loglik_sum_grad"]

# Segments at most _W6 wide in u with (A+s+1) w <= _KW6 take 6 Gauss-Legendre nodes: the
# rule's error for e^{ku} is (kw)^12 (6!)^4 / (13 (12!)^3) < 1e-18 relative at kw = 0.6, and
# the strip of analyticity (half-width π) gives ρ^-12 < 1e-17 at w = 0.4.
_GL6_X, _GL6_W = np.polynomial.legendre.leggauss(6)
_W6 = 0.4
_KW6 = 0.6
# Accumulators per time point: prefix sums in columns 0..NACC-1, suffix sums after.
_NACC = 7
# A block's integrand may fall by at most e^_MAXDROP over its range (scaled values stay
# normal doubles, >= e^-708).
_MAXDROP = 600.0
# Acceptance of a row: ε (2 + ratio) w2 <= _TOL |ln L| (module docstring), gradient moments'
# ratio <= _MRATIO.
_EPS = 2.220446049250313e-16
_TOL = 1.0e-13
_MRATIO = 1.0e3
# Per-row panel budget of a block (the per-row kernel uses 1-3 panels per row, plus its mode
# search).
_PANELS_PER_ROW = 8
# prepare: a block is tabulated if its range has at most this many times per row (+ the same).
_POINTS_PER_ROW = 16


def prepare(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, ...]:
    """θ-free structure of the data for the kernels of this module (module docstring).

    Parameters
    ----------
    x, t_x, T : np.ndarray
        Frequency, recency and age per row (float64, equal length).

    Returns
    -------
    tuple of np.ndarray
        Eight float64 arrays: ``times`` (sorted distinct t_x and T values), per row its block
        and the indices of its t_x and T in ``times``, per block its x, first time index and
        number of rows, and the blocks' point offsets (length n_blocks + 1; a block with no
        points is evaluated row by row).
    """
    x = np.asarray(x, dtype=np.float64)
    times, ia, ib = distinct_times(t_x, T)
    bx, blk = np.unique(x, return_inverse=True)
    nb = bx.size
    g0 = np.full(nb, times.size, dtype=np.int64)
    g1 = np.zeros(nb, dtype=np.int64)
    np.minimum.at(g0, blk, ia)
    np.maximum.at(g1, blk, ib)
    nrows = np.bincount(blk, minlength=nb)
    npts = np.where(nrows > 0, g1 - g0 + 1, 0)
    npts = np.where(npts <= _POINTS_PER_ROW * nrows + _POINTS_PER_ROW, npts, 0)
    off = np.concatenate([[0], np.cumsum(npts)])
    f = np.float64
    return (times, blk.astype(f), ia.astype(f), ib.astype(f), bx.astype(f), g0.astype(f), nrows.astype(f),
            off.astype(f))


# --------------------------------------------------------------------------------------
# Per-call tables
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _ok(r: float, alpha: float, s: float, beta: float) -> bool:
    # False for NaN and inf too
    return 0.0 < r < math.inf and 0.0 < alpha < math.inf and 0.0 < s < math.inf and 0.0 < beta < math.inf


@njit(cache=True, fastmath=False, error_model="numpy")
def _time_table(alpha: float, beta: float, times: np.ndarray) -> np.ndarray:
    """Columns ``ℓ_a, ℓ_b, t/(α+t), α/(α+t), t/(β+t), β/(β+t)`` at each distinct time."""
    tab = np.empty((times.size, 6))
    for g in range(times.size):
        t = times[g]
        tab[g, 0] = math.log1p(t / alpha)
        tab[g, 1] = math.log1p(t / beta)
        tab[g, 2] = t / (alpha + t)
        tab[g, 3] = alpha / (alpha + t)
        tab[g, 4] = t / (beta + t)
        tab[g, 5] = beta / (beta + t)
    return tab


@njit(cache=True, fastmath=False, error_model="numpy")
def _panel_nodes(
    alpha: float, beta: float, u0: float, u1: float, gx: np.ndarray, gw: np.ndarray, out: np.ndarray, k0: int
) -> None:
    """Rows k0.. of ``out``: the Gauss-Legendre nodes ``gx`` (weights ``gw``) on [u0, u1] in
    u = ln(1 + τ/c) as ``(weight dτ, ℓ_a, ℓ_b, τ/(α+τ), α/(α+τ), τ/(β+τ), β/(β+τ))``."""
    c = min(alpha, beta)
    half = 0.5 * (u1 - u0)
    mid = 0.5 * (u1 + u0)
    for i in range(gx.size):
        u = mid + half * gx[i]
        em = math.expm1(u)
        tau = c * em
        k = k0 + i
        out[k, 0] = half * gw[i] * c * (1.0 + em)  # dτ = c e^u du
        # ℓ = u exactly for the smaller rate
        out[k, 1] = u if c == alpha else math.log1p(tau / alpha)
        out[k, 2] = u if c == beta else math.log1p(tau / beta)
        ia = 1.0 / (alpha + tau)
        ib = 1.0 / (beta + tau)
        out[k, 3] = tau * ia
        out[k, 4] = alpha * ia
        out[k, 5] = tau * ib
        out[k, 6] = beta * ib


@njit(cache=True, fastmath=False, error_model="numpy")
def _base_nodes(alpha: float, beta: float, U: np.ndarray, used: np.ndarray, j: int, nodes: np.ndarray,
                nodes6: np.ndarray) -> None:
    """Segment j's one-panel nodes, 12 and 6 of them (x-independent)."""
    if used[j]:
        _panel_nodes(alpha, beta, U[j], U[j + 1], _GL_X, _GL_W, nodes, j * _NGL)
        _panel_nodes(alpha, beta, U[j], U[j + 1], _GL6_X, _GL6_W, nodes6, j * 6)


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _base_nodes_par(alpha: float, beta: float, U: np.ndarray, used: np.ndarray, nodes: np.ndarray,
                    nodes6: np.ndarray) -> None:
    for j in prange(used.size):
        _base_nodes(alpha, beta, U, used, j, nodes, nodes6)


@njit(cache=True, fastmath=False, error_model="numpy")
def _accumulate(
    nodes: np.ndarray, k0: int, nn: int, A: float, s1: float, lh0: float, nacc: int, acc: np.ndarray
) -> None:
    """Add the nn nodes from row k0 of ``nodes`` to ``acc``: ``Σ w h/h0 · (1, ℓ_a, ...)``."""
    for k in range(k0, k0 + nn):
        v = nodes[k, 0] * math.exp(-A * nodes[k, 1] - s1 * nodes[k, 2] - lh0)
        acc[0] += v
        if nacc > 1:
            for q in range(1, _NACC):
                acc[q] += v * nodes[k, q]


@njit(cache=True, fastmath=False, error_model="numpy")
def _add(total: np.ndarray, comp: np.ndarray, v: np.ndarray, nacc: int) -> None:
    """Neumaier-compensated ``total += v`` (v >= 0, so |total| >= |v| decides the branch)."""
    for q in range(nacc):
        t = total[q] + v[q]
        if total[q] >= v[q]:
            comp[q] += (total[q] - t) + v[q]
        else:
            comp[q] += (v[q] - t) + total[q]
        total[q] = t


@njit(cache=True, fastmath=False, error_model="numpy")
def _block(
    r: float, alpha: float, s: float, beta: float, b: int, bx: np.ndarray, bg0: np.ndarray, bn: np.ndarray,
    off: np.ndarray, U: np.ndarray, ttab: np.ndarray, nodes: np.ndarray, nodes6: np.ndarray, nacc: int,
    tab: np.ndarray, bsc: np.ndarray, bok: np.ndarray,
) -> None:
    """Prefix and suffix sums of block b into ``tab`` (rows off[b]..), its ``(ln h_x(t_g0),
    x terms of ln L and ∂r)`` into ``bsc[b]``; ``bok[b]`` False if the block is left to the
    per-row kernel."""
    o = int(off[b])
    npt = int(off[b + 1]) - o
    bok[b] = False
    if npt == 0:
        return
    x = bx[b]
    A = r + x
    s1 = s + 1.0
    g0 = int(bg0[b])
    g1 = g0 + npt - 1
    if g0 < 0 or g1 >= ttab.shape[0]:
        return
    lh0 = -A * ttab[g0, 0] - s1 * ttab[g0, 1]
    if lh0 - (-A * ttab[g1, 0] - s1 * ttab[g1, 1]) > _MAXDROP:
        return
    wmax = min(2.0, 5.0 / (A + s1))
    panels = 0
    for j in range(g0, g1):
        panels += max(1, int(math.ceil((U[j + 1] - U[j]) / wmax)))
    if panels > npt + _PANELS_PER_ROW * bn[b]:
        return
    total = np.zeros(nacc)
    comp = np.zeros(nacc)
    seg = np.empty(nacc)
    tmp = np.empty((_NGL, _NACC))
    for q in range(nacc):
        tab[o, q] = 0.0
    for k in range(npt - 1):
        j = g0 + k
        seg[:] = 0.0
        wj = U[j + 1] - U[j]
        m = max(1, int(math.ceil(wj / wmax)))
        if wj <= _W6 and wj * (A + s1) <= _KW6:
            _accumulate(nodes6, j * 6, 6, A, s1, lh0, nacc, seg)
        elif m == 1:
            _accumulate(nodes, j * _NGL, _NGL, A, s1, lh0, nacc, seg)
        else:
            h = wj / m
            for p in range(m):
                u1 = U[j + 1] if p == m - 1 else U[j] + (p + 1) * h
                _panel_nodes(alpha, beta, U[j] + p * h, u1, _GL_X, _GL_W, tmp, 0)
                _accumulate(tmp, 0, _NGL, A, s1, lh0, nacc, seg)
        _add(total, comp, seg, nacc)
        for q in range(nacc):
            tab[o + k + 1, q] = total[q] + comp[q]
            tab[o + k, nacc + q] = seg[q]  # the segment, read back by the suffix pass
    total[:] = 0.0
    comp[:] = 0.0
    for k in range(npt - 1, -1, -1):
        for q in range(nacc):
            seg[q] = tab[o + k, nacc + q] if k < npt - 1 else 0.0
        _add(total, comp, seg, nacc)
        for q in range(nacc):
            tab[o + k, nacc + q] = total[q] + comp[q]
    # E1 in the same scaling, (β/s) E1 / h_x(t_g0), so a row needs one log for ln(E1 + E2)
    le = lh0 + math.log(s / beta)
    for k in range(npt):
        tab[o + k, 2 * nacc] = math.exp(-A * ttab[g0 + k, 0] - s * ttab[g0 + k, 1] - le)
    bsc[b, 0] = lh0
    bsc[b, 1] = lnpoch(r, x) - x * math.log(alpha)
    bsc[b, 2] = digamma_diff(r, x) if nacc > 1 else 0.0
    bok[b] = True


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _blocks_par(
    r: float, alpha: float, s: float, beta: float, nb: int, bx: np.ndarray, bg0: np.ndarray, bn: np.ndarray,
    off: np.ndarray, U: np.ndarray, ttab: np.ndarray, nodes: np.ndarray, nodes6: np.ndarray, nacc: int,
    tab: np.ndarray, bsc: np.ndarray, bok: np.ndarray,
) -> None:
    for b in prange(nb):
        _block(r, alpha, s, beta, b, bx, bg0, bn, off, U, ttab, nodes, nodes6, nacc, tab, bsc, bok)


@njit(cache=True, fastmath=False, error_model="numpy")
def _tables(
    r: float, alpha: float, s: float, beta: float, times: np.ndarray, bx: np.ndarray, bg0: np.ndarray,
    bn: np.ndarray, off: np.ndarray, nacc: int, threaded: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-call ``(time table, point table, block scalars, block ok)``."""
    ttab = _time_table(alpha, beta, times)
    c = min(alpha, beta)
    U = ttab[:, 0].copy() if c == alpha else ttab[:, 1].copy()
    nseg = max(times.size - 1, 0)
    used = np.zeros(nseg, dtype=np.bool_)
    # arrays of one prepare() call are consistent; others leave every row to the per-row kernel
    nb = bx.size if off.size == bx.size + 1 and bg0.size == bx.size and bn.size == bx.size else 0
    for b in range(nb):
        npt = int(off[b + 1]) - int(off[b])
        g0 = int(bg0[b])
        if npt > 0 and 0 <= g0 and g0 + npt <= times.size:
            for j in range(g0, g0 + npt - 1):
                used[j] = True
    nodes = np.empty((nseg * _NGL, _NACC))
    nodes6 = np.empty((nseg * 6, _NACC))
    tab = np.empty((max(int(off[nb]) if nb > 0 else 0, 1), 2 * nacc + 1))
    bsc = np.zeros((bx.size, 3))
    bok = np.zeros(bx.size, dtype=np.bool_)
    if threaded:
        _base_nodes_par(alpha, beta, U, used, nodes, nodes6)
        _blocks_par(r, alpha, s, beta, nb, bx, bg0, bn, off, U, ttab, nodes, nodes6, nacc, tab, bsc, bok)
    else:
        for j in range(nseg):
            _base_nodes(alpha, beta, U, used, j, nodes, nodes6)
        for b in range(nb):
            _block(r, alpha, s, beta, b, bx, bg0, bn, off, U, ttab, nodes, nodes6, nacc, tab, bsc, bok)
    return ttab, tab, bsc, bok


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def _indexed(
    i: int, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, times: np.ndarray, blk: np.ndarray, ia: np.ndarray,
    ib: np.ndarray, bx: np.ndarray, bg0: np.ndarray, off: np.ndarray, bok: np.ndarray,
) -> bool:
    """Whether row i is in a tabulated block and the prepared arrays describe it (its x, t_x
    and T are the ones indexed): stale or foreign arrays (data swapped without a new
    ``prepare``) then give the per-row kernel's values, never a wrong or out-of-range read."""
    if i >= blk.size:
        return False
    b = int(blk[i])
    ga = int(ia[i])
    gb = int(ib[i])
    if not (0 <= b < bx.size and 0 <= ga <= gb < times.size):
        return False
    if not (bok[b] and bx[b] == x[i] and times[ga] == t_x[i] and times[gb] == T[i]):
        return False
    g0 = int(bg0[b])
    return g0 <= ga and gb < g0 + int(off[b + 1]) - int(off[b])


@njit(cache=True, fastmath=False, error_model="numpy")
def _row(
    r: float, alpha: float, s: float, beta: float, i: int, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    times: np.ndarray, blk: np.ndarray, ia: np.ndarray, ib: np.ndarray, bx: np.ndarray, bg0: np.ndarray,
    off: np.ndarray, ttab: np.ndarray, tab: np.ndarray, bsc: np.ndarray, bok: np.ndarray, nacc: int, lsb: float,
) -> tuple[float, float, float, float, float]:
    """``(ln L, ∂r, ∂α, ∂s, ∂β)`` of row i (gradient zeros when nacc == 1), from the tables
    or, where they cannot guarantee the accuracy, from the per-row kernel."""
    if not _indexed(i, x, t_x, T, times, blk, ia, ib, bx, bg0, off, bok):
        return _fallback(r, alpha, s, beta, x[i], t_x[i], T[i], nacc)
    ll, d_r, d_a, d_s, d_b, ok_value, ok_grad = _from_tables(
        r, alpha, s, beta, x[i], int(blk[i]), int(ia[i]), int(ib[i]), off, bg0, ttab, tab, bsc, nacc, lsb)
    if not ok_value:
        return _fallback(r, alpha, s, beta, x[i], t_x[i], T[i], nacc)
    if nacc == 1:
        return ll, 0.0, 0.0, 0.0, 0.0
    if not ok_grad:
        # the gradient from the per-row kernel, the value from the tables (as the value
        # kernels give it: loglik_sum equals loglik_sum_grad's value bit for bit)
        _, d_r, d_a, d_s, d_b = loglik_grad_one(r, alpha, s, beta, x[i], t_x[i], T[i])
    return ll, d_r, d_a, d_s, d_b


# inlined (Numba IR) into both callers: a call per row with its array arguments would cost
# about a quarter of the time of _table_rows' loop
@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _from_tables(
    r: float, alpha: float, s: float, beta: float, xi: float, b: int, ga: int, gb: int, off: np.ndarray,
    bg0: np.ndarray, ttab: np.ndarray, tab: np.ndarray, bsc: np.ndarray, nacc: int, lsb: float,
) -> tuple[float, float, float, float, float, bool, bool]:
    """``(ln L, ∂r, ∂α, ∂s, ∂β, value ok, gradient ok)`` of an indexed row (x, t_x = times[ga],
    T = times[gb]) from the tables; the value is usable if ``value ok`` (module docstring:
    the error bound, not a complement row), the gradient if ``gradient ok`` too (the moments'
    ratios). Selects, not branches, choose between prefix and suffix sums and the t_x = T case
    (E2 = 0), so the loop of :func:`_table_rows` has no data-dependent branch."""
    same = gb == ga
    A = r + xi
    lnE1 = -A * ttab[gb, 0] - s * ttab[gb, 1]
    o = int(off[b]) - int(bg0[b])
    pa = o + ga
    pb = o + gb
    use_prefix = tab[pa, 0] + tab[pb, 0] <= tab[pa, nacc] + tab[pb, nacc]
    q0 = 0 if use_prefix else nacc
    sg = 1.0 if use_prefix else -1.0  # prefix: P(T) - P(t_x); suffix: S(t_x) - S(T)
    i0 = sg * (tab[pb, q0] - tab[pa, q0])  # 0 when t_x = T
    xs = tab[pb, q0] + tab[pa, q0]
    e1 = tab[pb, 2 * nacc]
    bs = e1 + i0
    inv_bs = 0.0 if same else 1.0 / bs  # 1 / (E1 + E2) in the block's scaling
    lbs = math.log(bs)
    lnB = lnE1 if same else lsb + bsc[b, 0] + lbs
    w1 = 1.0 if same else e1 * inv_bs
    w2 = i0 * inv_bs
    ll = bsc[b, 1] + lnB
    # ε (X(t_x) + X(T) + 2 I) w2 / I (module docstring), plus the rounding of the sums that
    # form ln L, which cancel when |ln L| is small (e.g. x = 0 and T of a day: ~1e-12 relative)
    err = _EPS * ((xs + 2.0 * i0) * inv_bs + (0.0 if same else abs(lsb) + abs(bsc[b, 0]) + abs(lbs) + abs(bsc[b, 1])))
    ok_value = (same | (i0 > 0.0)) & (err <= _TOL * abs(ll)) & ~_needs_complement(xi, lnB, lnE1)
    if nacc == 1:
        return ll, 0.0, 0.0, 0.0, 0.0, ok_value, True
    # w2 ⟨f⟩ = ∫ h f / (E1 + E2) over [t_x, T] for the six factors (0 where E2 = 0)
    ok = True
    y1, ok = _moment_at(tab, pa, pb, q0 + 1, sg, inv_bs, ok)
    y2, ok = _moment_at(tab, pa, pb, q0 + 2, sg, inv_bs, ok)
    y3, ok = _moment_at(tab, pa, pb, q0 + 3, sg, inv_bs, ok)
    y4, ok = _moment_at(tab, pa, pb, q0 + 4, sg, inv_bs, ok)
    y5, ok = _moment_at(tab, pa, pb, q0 + 5, sg, inv_bs, ok)
    y6, ok = _moment_at(tab, pa, pb, q0 + 6, sg, inv_bs, ok)
    # the gradient of pareto_nbd.loglik_grad_one, with the same cancellation-avoiding forms
    d_r = bsc[b, 2] - (w1 * ttab[gb, 0] + y1)
    F_a = w1 * ttab[gb, 2] + y3
    G_a = w1 * ttab[gb, 3] + y4
    d_a = _difference(A * F_a, xi, r, A * G_a) / alpha
    d_s = w2 / s - (w1 * ttab[gb, 1] + y2)
    p1 = s * w1 * ttab[gb, 4] + (s + 1.0) * y5
    m2 = s * w1 * ttab[gb, 5] + (s + 1.0) * y6
    d_b = _difference(p1, w2, s, m2) / beta
    return ll, d_r, d_a, d_s, d_b, ok_value, same | ok


@njit(cache=True, fastmath=False, error_model="numpy")
def _table_rows(
    r: float, alpha: float, s: float, beta: float, lo: int, hi: int, x: np.ndarray, t_x: np.ndarray,
    T: np.ndarray, times: np.ndarray, blk: np.ndarray, ia: np.ndarray, ib: np.ndarray, bx: np.ndarray,
    bg0: np.ndarray, off: np.ndarray, ttab: np.ndarray, tab: np.ndarray, bsc: np.ndarray, bok: np.ndarray,
    nacc: int, lsb: float, out: np.ndarray, slow: np.ndarray,
) -> int:
    """:func:`_row`'s answer of rows lo..hi-1 into ``out[i - lo]`` for the rows the tables
    answer (the same bits); the other rows' indices go to ``slow`` (their count is returned)
    for :func:`_row`.

    The loop is here, not around a per-row function: a call per row with ~20 array
    arguments (and the per-row kernel's code in its body) cost about a third of the time
    (benchmarks/results/pnbd_grid_cost.md)."""
    ns = 0
    for i in range(lo, hi):
        ok = _indexed(i, x, t_x, T, times, blk, ia, ib, bx, bg0, off, bok)
        if ok:
            ll, d_r, d_a, d_s, d_b, ok_value, ok_grad = _from_tables(
                r, alpha, s, beta, x[i], int(blk[i]), int(ia[i]), int(ib[i]), off, bg0, ttab, tab, bsc, nacc, lsb)
            k = i - lo
            out[k, 0] = ll
            out[k, 1] = d_r
            out[k, 2] = d_a
            out[k, 3] = d_s
            out[k, 4] = d_b
            ok = ok_value & ok_grad
        if not ok:
            slow[ns] = i
            ns += 1
    return ns


@njit(cache=True, fastmath=False, error_model="numpy")
def _moment_at(
    tab: np.ndarray, pa: int, pb: int, col: int, sg: float, scale: float, ok: bool
) -> tuple[float, bool]:
    """``(scale ∫ h f_q over [t_a, t_b], ok and the difference's ratio <= _MRATIO)``: the
    moment of column ``col`` (a prefix column, or a suffix column with ``sg = -1``)."""
    iq = sg * (tab[pb, col] - tab[pa, col])
    return iq * scale, ok & (tab[pb, col] + tab[pa, col] <= _MRATIO * iq)


@njit(cache=True, fastmath=False, error_model="numpy")
def _fallback(
    r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float, nacc: int
) -> tuple[float, float, float, float, float]:
    """The per-row kernel (value only when nacc == 1)."""
    if nacc == 1:
        return loglik_one(r, alpha, s, beta, x, t_x, T), 0.0, 0.0, 0.0, 0.0
    return loglik_grad_one(r, alpha, s, beta, x, t_x, T)


@njit(cache=True, fastmath=False, error_model="numpy")
def _chunk(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    w: np.ndarray, times: np.ndarray, blk: np.ndarray, ia: np.ndarray, ib: np.ndarray, bx: np.ndarray,
    bg0: np.ndarray, off: np.ndarray,
    ttab: np.ndarray, tab: np.ndarray, bsc: np.ndarray, bok: np.ndarray, nacc: int, c: int,
    part: np.ndarray, rows_out: np.ndarray,
) -> None:
    """Chunk c: weighted sums into ``part[c]`` (1 or 5 columns), or, if ``rows_out`` has
    rows, ln L per row into it."""
    lo = c * CHUNK
    hi = min(lo + CHUNK, x.size)
    lsb = math.log(s / beta)
    # the common rows first (_table_rows), then the others, then the sum in row order
    vals = np.zeros((hi - lo, 5))
    slow = np.empty(hi - lo, dtype=np.int64)
    ns = _table_rows(r, alpha, s, beta, lo, hi, x, t_x, T, times, blk, ia, ib, bx, bg0, off, ttab, tab, bsc, bok, nacc,
                     lsb, vals, slow)
    for k in range(ns):
        i = slow[k]
        v = _row(r, alpha, s, beta, i, x, t_x, T, times, blk, ia, ib, bx, bg0, off, ttab, tab, bsc, bok, nacc, lsb)
        for q in range(5):
            vals[i - lo, q] = v[q]
    if rows_out.size > 0:
        for i in range(lo, hi):
            rows_out[i] = vals[i - lo, 0]
        return
    acc = np.zeros(5)
    for i in range(lo, hi):
        wi = w[i]
        for q in range(5):
            acc[q] += wi * vals[i - lo, q]
    for q in range(part.shape[1]):
        part[c, q] = acc[q]


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _chunks_par(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    w: np.ndarray, times: np.ndarray, blk: np.ndarray, ia: np.ndarray, ib: np.ndarray, bx: np.ndarray,
    bg0: np.ndarray, off: np.ndarray,
    ttab: np.ndarray, tab: np.ndarray, bsc: np.ndarray, bok: np.ndarray, nacc: int, part: np.ndarray,
    rows_out: np.ndarray,
) -> None:
    for c in prange(part.shape[0]):
        _chunk(r, alpha, s, beta, x, t_x, T, w, times, blk, ia, ib, bx, bg0, off, ttab, tab, bsc, bok, nacc, c, part,
               rows_out)


@njit(cache=True, fastmath=False, error_model="numpy")
def _run(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    w: np.ndarray, times: np.ndarray, blk: np.ndarray, ia: np.ndarray, ib: np.ndarray, bx: np.ndarray,
    bg0: np.ndarray, bn: np.ndarray, off: np.ndarray, nacc: int, ncol: int, rows_out: np.ndarray,
) -> np.ndarray:
    """Tables, then the chunks; returns the chunk sums added in order (ncol columns)."""
    n = x.size
    threaded = n >= PARALLEL_MIN_ROWS
    ttab, tab, bsc, bok = _tables(r, alpha, s, beta, times, bx, bg0, bn, off, nacc, threaded)
    part = np.zeros(((n + CHUNK - 1) // CHUNK, ncol))
    if threaded:
        _chunks_par(r, alpha, s, beta, x, t_x, T, w, times, blk, ia, ib, bx, bg0, off, ttab, tab, bsc, bok, nacc, part,
                    rows_out)
    else:
        for c in range(part.shape[0]):
            _chunk(r, alpha, s, beta, x, t_x, T, w, times, blk, ia, ib, bx, bg0, off, ttab, tab, bsc, bok, nacc, c, part,
                   rows_out)
    return sum_chunks(part)


# --------------------------------------------------------------------------------------
# Array wrappers
# --------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_rows(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    times: np.ndarray, blk: np.ndarray, ia: np.ndarray, ib: np.ndarray, bx: np.ndarray, bg0: np.ndarray,
    bn: np.ndarray, off: np.ndarray,
) -> np.ndarray:
    """ln L per row (Fader & Hardie 2005 note, sections 2-3; module docstring), ``-inf``
    everywhere for parameters outside (0, inf).

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters.
    x, t_x, T : np.ndarray
        Frequency, recency and age per row.
    times, blk, ia, ib, bx, bg0, bn, off : np.ndarray
        ``prepare(x, t_x, T)``.

    Returns
    -------
    np.ndarray
    """
    out = np.empty(x.size)
    if not _ok(r, alpha, s, beta):
        out[:] = -math.inf
        return out
    _run(r, alpha, s, beta, x, t_x, T, out, times, blk, ia, ib, bx, bg0, bn, off, 1, 1, out)
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_sum(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    weights: np.ndarray, times: np.ndarray, blk: np.ndarray, ia: np.ndarray, ib: np.ndarray, bx: np.ndarray,
    bg0: np.ndarray, bn: np.ndarray, off: np.ndarray,
) -> float:
    """Weighted ``Σ_i w_i ln L_i`` (Fader & Hardie 2005 note, sections 2-3; module
    docstring); ``-inf`` outside the support, 0 for no rows. Independent of the thread
    count.

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters.
    x, t_x, T, weights : np.ndarray
        Frequency, recency, age and weight (customers) per row.
    times, blk, ia, ib, bx, bg0, bn, off : np.ndarray
        ``prepare(x, t_x, T)``.

    Returns
    -------
    float
    """
    if not _ok(r, alpha, s, beta):
        return -math.inf
    return _run(r, alpha, s, beta, x, t_x, T, weights, times, blk, ia, ib, bx, bg0, bn, off, 1, 1,
                np.empty(0))[0]


@njit(cache=True, fastmath=False, error_model="numpy")
def loglik_sum_grad(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
    weights: np.ndarray, times: np.ndarray, blk: np.ndarray, ia: np.ndarray, ib: np.ndarray, bx: np.ndarray,
    bg0: np.ndarray, bn: np.ndarray, off: np.ndarray,
) -> tuple[float, np.ndarray]:
    """Weighted ``Σ_i w_i ln L_i`` and its gradient in ``(r, α, s, β)`` (natural scale);
    ``(-inf, NaN)`` outside the support. The derivatives are those of
    :func:`clvbayes.kernels.pareto_nbd.loglik_grad_one` (differentiation under the integral
    sign, Fader & Hardie 2005 note, section 3 integral form). Independent of the thread
    count.

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters.
    x, t_x, T, weights : np.ndarray
        Frequency, recency, age and weight (customers) per row.
    times, blk, ia, ib, bx, bg0, bn, off : np.ndarray
        ``prepare(x, t_x, T)``.

    Returns
    -------
    value : float
    grad : np.ndarray
        Shape (4,).
    """
    if not _ok(r, alpha, s, beta):
        return -math.inf, np.full(4, math.nan)
    tot = _run(r, alpha, s, beta, x, t_x, T, weights, times, blk, ia, ib, bx, bg0, bn, off, _NACC, 5,
               np.empty(0))
    return tot[0], tot[1:].copy()
