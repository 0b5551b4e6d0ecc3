"""Special functions for the Numba kernels.

Numba supports ``math.lgamma`` but none of ``scipy.special``; the few functions the
BTYD likelihoods need beyond it are written here once, as scalar ``@njit`` functions,
and tested against SciPy in ``tests/test_kernels_special.py``.
"""

from __future__ import annotations

import math

from numba import njit

__all__ = ["lbeta", "digamma", "log1pexp", "logaddexp", "exprel"]


@njit(cache=True, fastmath=False)
def lbeta(a: float, b: float) -> float:
    """Log of the Beta function, ``ln B(a, b) = lnΓ(a) + lnΓ(b) - lnΓ(a + b)``."""
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


@njit(cache=True, fastmath=False)
def digamma(x: float) -> float:
    """Digamma function ψ(x) for x > 0.

    Shifts x above 10 with ψ(x) = ψ(x + 1) - 1/x, then uses the asymptotic series
    (Abramowitz & Stegun 6.3.18), whose truncation error there is below 1e-16.
    """
    if x <= 0.0:
        # BTYD parameters and counts are positive; poles and the reflection formula
        # are not needed.
        return math.nan
    acc = 0.0
    while x < 10.0:
        acc -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (
        1.0 / 12.0
        - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0))))
    )
    return acc + math.log(x) - 0.5 * inv - series


@njit(cache=True, fastmath=False)
def log1pexp(x: float) -> float:
    """``ln(1 + e^x)`` without overflow for large x or loss for very negative x."""
    if x > 35.0:
        return x + math.exp(-x)
    if x > -35.0:
        return math.log1p(math.exp(x))
    return math.exp(x)


@njit(cache=True, fastmath=False)
def logaddexp(x: float, y: float) -> float:
    """``ln(e^x + e^y)`` computed stably."""
    if x == -math.inf and y == -math.inf:
        return -math.inf
    if x > y:
        return x + math.log1p(math.exp(y - x))
    return y + math.log1p(math.exp(x - y))


@njit(cache=True, fastmath=False)
def exprel(x: float) -> float:
    """``(e^x - 1) / x`` with its limit 1 at x = 0 (no cancellation for small x)."""
    if x == 0.0:
        return 1.0
    if abs(x) < 1e-5:
        return 1.0 + x * (0.5 + x / 6.0)
    return math.expm1(x) / x
