"""Chebyshev interpolation at Lobatto points of degree n | 64 (Numba): coefficients by a
DCT-I and a convergence test on the tail of the coefficients.

Used by the value engine's factor tables (:mod:`clvbayes.kernels.clv`), which interpolate
ln F in the log of the age variable within groups of customers; model-free.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["COS64", "cheb_coefs", "cheb_tail_ok"]

#: cos(π m / 64), m = 0..127: every cos(π j k / n) for n | 64.
COS64 = np.cos(np.pi * np.arange(128) / 64.0)


@njit(cache=True, fastmath=False, error_model="numpy")
def cheb_coefs(v: np.ndarray, n: int, c: np.ndarray) -> None:
    """Chebyshev coefficients c_0..c_n of the interpolant through values v_k at the Lobatto
    points cos(πk/n) (DCT-I): ``c_j = (2/n) Σ''_k v_k cos(πjk/n)``, end terms halved."""
    step = 64 // n
    for j in range(n + 1):
        s = 0.5 * (v[0] + (v[n] if (j & 1) == 0 else -v[n]))
        for k in range(1, n):
            s += v[k] * COS64[(j * k * step) % 128]
        c[j] = s * (2.0 / n)
    c[0] *= 0.5
    c[n] *= 0.5


@njit(cache=True, fastmath=False, error_model="numpy")
def cheb_tail_ok(c: np.ndarray, n: int, tol: float) -> bool:
    """Whether the last quarter of the coefficients c_0..c_n is below ``tol`` in size."""
    for j in range(n - n // 4, n + 1):
        if not (abs(c[j]) <= tol):
            return False
    return True
