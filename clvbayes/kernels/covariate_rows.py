"""Fused covariate likelihood of the rows path: the link and the chain rule inside the kernel.

Continuous covariates give row ``i`` the parameters ``θ_{i,k} = base_k · exp(s_k z_i'γ_k)``
(the links of :data:`clvbayes.models.covariate.COVARIATE_LINKS`; ``s_k = ±1``, ``γ_k`` the
coefficients of parameter ``k`` on columns ``lo_k..hi_k`` of one design matrix ``Z``).
:func:`covariate_rows_loglik_grad` returns ``Σ_i w_i ln L(θ_i | x_i, t_x_i, T_i)`` and its
gradient in the four base parameters and in every coefficient, by the chain rule

    ∂/∂base_k = Σ_i w_i g_{i,k} exp(s_k η_{i,k}),    ∂/∂γ_{k,j} = Σ_i w_i g_{i,k} θ_{i,k} s_k Z_{i,lo_k+j},

(``g_{i,k} = ∂ ln L_i / ∂θ_{i,k}`` from the family's scalar core), so no per-row vector
leaves the kernel (the graph of :meth:`CovariatePurchaseModel._rows_loglik` before built
``θ_i`` and the chain rule as PyTensor vector ops over the rows).

``_loglik_grad_one`` is bound to BG/NBD (Fader, Hardie & Lee 2005, eq. 6) here and rebound
per family by :func:`clvbayes.kernels.build.rebuild`, as in :mod:`clvbayes.kernels.cells`.
Sums are taken per fixed row chunk (:data:`~clvbayes.kernels.special.CHUNK`) and the chunks
added in order (:func:`~clvbayes.kernels.special.sum_chunks`): the same bits for any thread
count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clvbayes.kernels import bgnbd as _bg
from clvbayes.kernels.special import CHUNK, PARALLEL_MIN_ROWS, digamma_diff, lnpoch_h, lnpoch_hoist, log1p_fast, sum_chunks

__all__ = ["covariate_rows_loglik_grad", "bgnbd_covariate_rows_loglik_grad", "SHORT_X"]

# BG/NBD rows with integer x <= SHORT_X take the lean path (Beta-function terms as x-term sums);
# larger x the scalar core (lnΓ / ψ differences by their asymptotic series).
SHORT_X = 12

_loglik_grad_one = _bg.bgnbd_loglik_grad_one


@njit(cache=True, fastmath=False, error_model="numpy")
def _offsets(lo: np.ndarray, hi: np.ndarray, G: int) -> np.ndarray:
    """Start of each parameter's coefficients in the stacked ``gam`` (length ``G``)."""
    off = np.empty(4, dtype=np.int64)
    acc = 0
    for k in range(4):
        off[k] = acc
        acc += hi[k] - lo[k]
    if acc != G:
        raise ValueError("covariate rows kernel: len(gam) != sum(hi - lo).")
    return off


@njit(cache=True, fastmath=False, error_model="numpy")
def _fused_chunk(base, gam, Z, lo, hi, off, sign, x, t_x, T, w, r0, r1, out):
    """Rows ``r0..r1``: ``out[0]`` the weighted log-likelihood, ``out[1+k]`` the base
    gradients, ``out[5+j]`` the coefficient gradients, ``out[5+G]`` 1.0 when a row's
    parameters leave ``(0, inf)``."""
    G = gam.shape[0]
    for j in range(out.shape[0]):
        out[j] = 0.0
    th = np.empty(4)
    ex = np.empty(4)
    for i in range(r0, r1):
        for k in range(4):
            eta = 0.0
            for j in range(hi[k] - lo[k]):
                eta += Z[i, lo[k] + j] * gam[off[k] + j]
            e = math.exp(sign[k] * eta)
            ex[k] = e
            v = base[k] * e
            th[k] = v
            if not (v > 0.0 and v < math.inf):
                out[5 + G] = 1.0
        ll, g0, g1, g2, g3 = _loglik_grad_one(th[0], th[1], th[2], th[3], x[i], t_x[i], T[i])
        wi = w[i]
        out[0] += wi * ll
        for k in range(4):
            gk = wi * (g0 if k == 0 else g1 if k == 1 else g2 if k == 2 else g3)
            out[1 + k] += gk * ex[k]
            if hi[k] > lo[k]:
                c = gk * th[k] * sign[k]
                for j in range(hi[k] - lo[k]):
                    out[5 + off[k] + j] += c * Z[i, lo[k] + j]


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _fused_par(base, gam, Z, lo, hi, off, sign, x, t_x, T, w, part):
    n = x.shape[0]
    for c in prange(part.shape[0]):
        _fused_chunk(base, gam, Z, lo, hi, off, sign, x, t_x, T, w, c * CHUNK, min(n, (c + 1) * CHUNK), part[c])


@njit(cache=True, fastmath=False, error_model="numpy")
def covariate_rows_loglik_grad(base: np.ndarray, gam: np.ndarray, Z: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                               sign: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                               weights: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``Σ_i w_i ln L(base · exp(s Z_i γ) | row i)`` and its gradient in ``base`` and ``γ``.

    Parameters
    ----------
    base : np.ndarray
        Shape (4,): the base parameters in the family's order.
    gam : np.ndarray
        The coefficients of the four parameters concatenated in order: parameter ``k`` owns
        ``hi[k] - lo[k]`` entries (none when unlinked).
    Z : np.ndarray
        Shape (n, K), C-contiguous float64: the design rows (both sides' columns).
    lo, hi : np.ndarray
        int64 shape (4,): parameter ``k``'s columns of ``Z`` are ``lo[k]:hi[k]``.
    sign : np.ndarray
        Shape (4,): ``±1``, the sign of the exponent of each link.
    x, t_x, T, weights : np.ndarray
        float64 rows (weights: multiplicities of compressed rows).

    Returns
    -------
    value : float
        The total (``-inf`` when a row's parameters leave ``(0, inf)``; the gradients are NaN then).
    grad_base : np.ndarray
        Shape (4,).
    grad_gam : np.ndarray
        Shape like ``gam``.
    """
    n = x.shape[0]
    G = gam.shape[0]
    off = _offsets(lo, hi, G)
    part = np.empty(((n + CHUNK - 1) // CHUNK, 6 + G))
    if n >= PARALLEL_MIN_ROWS:
        _fused_par(base, gam, Z, lo, hi, off, sign, x, t_x, T, weights, part)
    else:
        for c in range(part.shape[0]):
            _fused_chunk(base, gam, Z, lo, hi, off, sign, x, t_x, T, weights, c * CHUNK, min(n, (c + 1) * CHUNK),
                         part[c])
    tot = sum_chunks(part)
    bad = False
    for k in range(4):
        bad = bad or not (base[k] > 0.0 and base[k] < math.inf)
    if bad or tot[5 + G] > 0.0:
        return -math.inf, np.full(4, math.nan), np.full(G, math.nan)
    return tot[0], tot[1:5].copy(), tot[5:5 + G].copy()


@njit(cache=True, fastmath=False, error_model="numpy")
def _dot(Z, i, c0, gam, g0, m):
    """``Σ_{j<m} Z[i, c0+j] γ[g0+j]``: one row's linear predictor of one link."""
    eta = 0.0
    for j in range(m):
        eta += Z[i, c0 + j] * gam[g0 + j]
    return eta


@njit(cache=True, fastmath=False, error_model="numpy")
def _coef_grad(c, rows, nr, Z, c0, m, out, o0):
    """``out[o0+j] = Σ_{q<nr} c[q] Z[rows[q], c0+j]`` in row order (the coefficient gradient of
    one link from its per-row factors ``w g θ s``; a sum started at 0 as the row-by-row ``+=``)."""
    for j in range(m):
        acc = 0.0
        for q in range(nr):
            acc += c[q] * Z[rows[q], c0 + j]
        out[o0 + j] = acc


@njit(cache=True, fastmath=False, error_model="numpy")
def _bg_lean_chunk(base, gam, Z, lo, hi, off, sign, x, t_x, T, w, tab, r0, r1, out):
    """BG/NBD rows ``r0..r1`` (``r`` unlinked), output layout of :func:`_fused_chunk`.

    Fader, Hardie & Lee (2005), eq. (6) in the log form of :mod:`clvbayes.kernels.bgnbd`:
    ``ln L = lnΓ(r+x) - lnΓ(r) + ln B(a, b+x) - ln B(a, b) - x ln α + ln(e^u1 + [x>0] e^u2)``.
    For ``x = 0`` it is ``-r ln(1 + T/α)`` (``u1`` alone): no ``a_i, b_i`` term, so those
    rows evaluate only the ``α`` link (of ``a_i, b_i`` only ``s η``, whose extremes over the
    chunk decide, ``base · exp`` being monotone, whether any ``a_i, b_i`` left ``(0, inf)``).
    ``tab[j] = (lnΓ(r+j) - lnΓ(r), ψ(r+j) - ψ(r))`` for ``j <= SHORT_X``; for integer
    ``x <= SHORT_X`` the Beta terms are the finite sums
    ``ln B(a, b+x) - ln B(a, b) = ln Π_{j<x} (b+j)/(a+b+j)``, ``∂a = -Σ_{j<x} 1/(a+b+j)``,
    ``ψ(b+x-1) - ψ(b) = Σ_{j<x-1} 1/(b+j)`` (``Γ(z+1) = zΓ(z)``; the sums as a derivative
    of the product over the product: one division each); ``u2 - u1 = ln a - ln(b+x-1)
    + (r+x) log1p((T-t_x)/(α+t_x))``, so the mixture needs one exp and one log1p, and
    ``ln α_i, ln a_i, ln b_i`` come from the link (``ln base + s η``) without a log.
    Other rows call the scalar core :func:`clvbayes.kernels.bgnbd.bgnbd_loglik_grad_one`.
    The sums are scalars in row order and the coefficient gradients a second pass over the
    per-row factors (:func:`_coef_grad`): the additions of a row-by-row accumulation, in
    registers instead of memory.
    """
    G = gam.shape[0]
    for j in range(out.shape[0]):
        out[j] = 0.0
    nrow = r1 - r0
    r = base[0]
    b1, b2, b3 = base[1], base[2], base[3]
    s1, s2, s3 = sign[1], sign[2], sign[3]
    l1, l2, l3 = lo[1], lo[2], lo[3]
    m1, m2, m3 = hi[1] - lo[1], hi[2] - lo[2], hi[3] - lo[3]
    o1, o2, o3 = off[1], off[2], off[3]
    lnb1, lnb2, lnb3 = math.log(b1), math.log(b2), math.log(b3)
    c1 = np.empty(nrow)  # w g_α α_i s_α per row; c2, c3 for the rows with x > 0 (rows: pos)
    c2 = np.empty(nrow)
    c3 = np.empty(nrow)
    allr = np.empty(nrow, dtype=np.int64)
    pos = np.empty(nrow, dtype=np.int64)
    npos = 0
    ll_s = 0.0
    g0_s = 0.0
    g1_s = 0.0
    g2_s = 0.0
    g3_s = 0.0
    bad = False
    se_lo2, se_hi2, se_lo3, se_hi3 = math.inf, -math.inf, math.inf, -math.inf  # s η of x = 0 rows
    se_nan = 0.0
    for i in range(r0, r1):
        q = i - r0
        allr[q] = i
        se1 = s1 * _dot(Z, i, l1, gam, o1, m1)
        e1 = math.exp(se1)
        alpha = b1 * e1
        xi, Ti = x[i], T[i]
        se2 = s2 * _dot(Z, i, l2, gam, o2, m2)
        se3 = s3 * _dot(Z, i, l3, gam, o3, m3)
        if xi == 0.0:
            bad = bad or not (alpha > 0.0 and alpha < math.inf)
            se_nan += se2 + se3  # NaN when any is (NaN compares false below)
            if se2 < se_lo2:
                se_lo2 = se2
            if se2 > se_hi2:
                se_hi2 = se2
            if se3 < se_lo3:
                se_lo3 = se3
            if se3 > se_hi3:
                se_hi3 = se3
            lT = log1p_fast(Ti / alpha)
            wi = w[i]
            ll_s += wi * (-r * lT)
            g0_s += wi * -lT
            gk = wi * (r * Ti / alpha / (alpha + Ti))
            g1_s += gk * e1
            c1[q] = gk * alpha * s1
            continue
        e2 = math.exp(se2)
        e3 = math.exp(se3)
        a = b2 * e2
        b = b3 * e3
        bad = bad or not (alpha > 0.0 and alpha < math.inf and a > 0.0 and a < math.inf and b > 0.0 and b < math.inf)
        if bad:  # the result is -inf: the row's terms are not needed
            c1[q] = 0.0
            continue
        txi = t_x[i]
        if xi <= SHORT_X and xi == math.floor(xi):
            nx = int(xi)
            rx = r + xi
            lT = log1p_fast(Ti / alpha)
            dlt = log1p_fast((Ti - txi) / (alpha + txi))  # ln((α+T)/(α+t_x)) = lT - lt
            ab = a + b
            bx1 = b + (xi - 1.0)
            # P_c = Π_{j<m}(c+j) and its derivative D_c (D' = D (c+j) + P): Σ 1/(c+j) = D/P
            # and ln B(a, b+x) - ln B(a, b) = ln(P_b / P_ab), multiplications only
            pb, db = 1.0, 0.0
            for j in range(nx - 1):
                db = db * (b + j) + pb
                pb *= b + j
            pab, dab = 1.0, 0.0
            for j in range(nx):
                dab = dab * (ab + j) + pab
                pab *= ab + j
            s_b = db / pb
            s_ab = dab / pab
            ratio = pb * bx1 / pab
            if ratio > 1e-280 and ratio < 1e280:
                lnbeta = math.log(ratio)
            else:  # products out of range at extreme a, b: the sum of logs
                lnbeta = 0.0
                for j in range(nx):
                    lnbeta -= log1p_fast(a / (b + j))
            lnw = (lnb2 + se2) - ((lnb3 + se3) if nx == 1 else math.log(bx1))
            u1 = -rx * lT
            d = lnw + rx * dlt  # u2 - u1
            # log-sum-exp weights (kernels.bgnbd._lse_weights): s of the second component, sc = 1 - s
            e = math.exp(-abs(d))
            qq = 1.0 / (1.0 + e)
            eq = e * qq
            big2 = d > 0.0
            sw = qq if big2 else eq
            sc = eq if big2 else qq
            lse = u1 + (d if big2 else 0.0) + log1p_fast(e)
            ll = (tab[nx, 0] + lnbeta - xi * (lnb1 + se1)) + lse
            g0 = tab[nx, 1] - lT + sw * dlt
            g1 = (r * Ti / alpha - xi - sw * rx * (Ti - txi) / (alpha + txi)) / (alpha + Ti)
            g2 = -s_ab + sw / a
            g3 = s_b + sc / bx1 - s_ab
        else:
            ll, g0, g1, g2, g3 = _bg.bgnbd_loglik_grad_one(r, alpha, a, b, xi, txi, Ti)
        wi = w[i]
        ll_s += wi * ll
        g0_s += wi * g0
        gk = wi * g1
        g1_s += gk * e1
        c1[q] = gk * alpha * s1
        gk = wi * g2
        g2_s += gk * e2
        c2[npos] = gk * a * s2
        gk = wi * g3
        g3_s += gk * e3
        c3[npos] = gk * b * s3
        pos[npos] = i
        npos += 1
    bad = bad or se_nan != se_nan
    if se_lo2 <= se_hi2:  # some x = 0 rows: their a_i, b_i at the extremes of s η
        for v in (b2 * math.exp(se_lo2), b2 * math.exp(se_hi2), b3 * math.exp(se_lo3), b3 * math.exp(se_hi3)):
            bad = bad or not (v > 0.0 and v < math.inf)
    if bad:
        out[5 + G] = 1.0
        return
    out[0] = ll_s
    out[1] = g0_s
    out[2] = g1_s
    out[3] = g2_s
    out[4] = g3_s
    _coef_grad(c1, allr, nrow, Z, l1, m1, out, 5 + o1)
    _coef_grad(c2, pos, npos, Z, l2, m2, out, 5 + o2)
    _coef_grad(c3, pos, npos, Z, l3, m3, out, 5 + o3)


@njit(cache=True, fastmath=False, error_model="numpy", parallel=True)
def _bg_lean_par(base, gam, Z, lo, hi, off, sign, x, t_x, T, w, tab, part):
    n = x.shape[0]
    for c in prange(part.shape[0]):
        _bg_lean_chunk(base, gam, Z, lo, hi, off, sign, x, t_x, T, w, tab, c * CHUNK, min(n, (c + 1) * CHUNK),
                       part[c])


@njit(cache=True, fastmath=False, error_model="numpy")
def bgnbd_covariate_rows_loglik_grad(base: np.ndarray, gam: np.ndarray, Z: np.ndarray, lo: np.ndarray,
                                     hi: np.ndarray, sign: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                                     T: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """:func:`covariate_rows_loglik_grad` of BG/NBD with a lean per-row path (:func:`_bg_lean_chunk`).

    Same arguments and results; ``r`` must be unlinked (``hi[0] == lo[0]``, as in
    ``COVARIATE_LINKS``). Per call, ``lnΓ(r+j) - lnΓ(r)`` and ``ψ(r+j) - ψ(r)`` are
    tabulated for ``j = 0..SHORT_X`` (:func:`~clvbayes.kernels.special.lnpoch_h`,
    :func:`~clvbayes.kernels.special.digamma_diff`).
    """
    if hi[0] != lo[0]:
        raise ValueError("bgnbd_covariate_rows_loglik_grad: r must be unlinked.")
    n = x.shape[0]
    G = gam.shape[0]
    off = _offsets(lo, hi, G)
    bad = False
    for k in range(4):
        bad = bad or not (base[k] > 0.0 and base[k] < math.inf)
    if bad:
        return -math.inf, np.full(4, math.nan), np.full(G, math.nan)
    r = base[0]
    hr = lnpoch_hoist(r)
    tab = np.zeros((SHORT_X + 1, 2))
    for j in range(1, SHORT_X + 1):
        tab[j, 0] = lnpoch_h(r, hr, float(j))
        tab[j, 1] = digamma_diff(r, float(j))
    part = np.empty(((n + CHUNK - 1) // CHUNK, 6 + G))
    if n >= PARALLEL_MIN_ROWS:
        _bg_lean_par(base, gam, Z, lo, hi, off, sign, x, t_x, T, weights, tab, part)
    else:
        for c in range(part.shape[0]):
            _bg_lean_chunk(base, gam, Z, lo, hi, off, sign, x, t_x, T, weights, tab, c * CHUNK,
                           min(n, (c + 1) * CHUNK), part[c])
    tot = sum_chunks(part)
    if tot[5 + G] > 0.0:
        return -math.inf, np.full(4, math.nan), np.full(G, math.nan)
    return tot[0], tot[1:5].copy(), tot[5:5 + G].copy()
