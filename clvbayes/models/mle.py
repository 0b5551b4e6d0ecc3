"""Maximum likelihood on log-parameters with an analytic gradient (shared by all models)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = ["MLEResult", "ConvergenceWarning", "maximize_loglik", "numerical_hessian"]

LogLikGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


class ConvergenceWarning(UserWarning):
    """The optimiser stopped before the gradient vanished."""


@dataclass(frozen=True)
class MLEResult:
    """Outcome of :func:`maximize_loglik` (natural-scale parameters)."""

    params: np.ndarray
    log_likelihood: float
    gradient: np.ndarray
    hessian: np.ndarray
    covariance: np.ndarray
    standard_errors: np.ndarray
    converged: bool
    n_iterations: int
    message: str


def numerical_hessian(loglik_grad: LogLikGrad, params: np.ndarray, rel_step: float = 1e-5) -> np.ndarray:
    """Hessian of the log-likelihood by central differences of its analytic gradient.

    Differencing an exact gradient (rather than the value twice) keeps the error at
    O(h^2) with no cancellation of large log-likelihood totals.
    """
    k = params.shape[0]
    hess = np.empty((k, k))
    for j in range(k):
        h = rel_step * max(abs(params[j]), 1e-8)
        up = params.copy()
        down = params.copy()
        up[j] += h
        down[j] -= h
        hess[:, j] = (loglik_grad(up)[1] - loglik_grad(down)[1]) / (2.0 * h)
    return 0.5 * (hess + hess.T)


def maximize_loglik(
    loglik_grad: LogLikGrad,
    initial: np.ndarray,
    *,
    gtol: float = 1e-8,
    maxiter: int = 10_000,
) -> MLEResult:
    """Maximise a log-likelihood over positive parameters.

    The search runs on ``log(params)`` (so positivity needs no bounds) with L-BFGS-B and
    the analytic gradient, then polishes with Newton steps on the natural scale using the
    Hessian of the gradient; standard errors are the square roots of the diagonal of the
    inverse observed information ``-H^{-1}``.

    Parameters
    ----------
    loglik_grad
        Function of the natural-scale parameter vector returning ``(loglik, gradient)``.
    initial
        Positive starting values.
    gtol
        Convergence threshold on the largest absolute gradient on the log scale.
    """
    theta0 = np.log(np.asarray(initial, dtype=float))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(theta)
        value, grad = loglik_grad(params)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(theta)
        return -value, -grad * params  # chain rule: d/dlog(p) = p * d/dp

    res = optimize.minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": maxiter, "ftol": 1e-15, "gtol": gtol * 1e-2, "maxcor": 20},
    )
    params = np.exp(res.x)
    # Newton polish: L-BFGS-B stops on a relative decrease; a few Newton steps reach the
    # optimum to machine precision when the curvature is well defined.
    for _ in range(20):
        value, grad = loglik_grad(params)
        if np.max(np.abs(grad * params)) < gtol * 1e-3:
            break
        hess = numerical_hessian(loglik_grad, params)
        try:
            step = np.linalg.solve(hess, -grad)
        except np.linalg.LinAlgError:
            break
        candidate = params + step
        if np.any(candidate <= 0) or not loglik_grad(candidate)[0] >= value - 1e-12 * abs(value):
            break
        params = candidate
    value, grad = loglik_grad(params)
    hess = numerical_hessian(loglik_grad, params)
    try:
        cov = np.linalg.inv(-hess)
        se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    except np.linalg.LinAlgError:
        cov = np.full_like(hess, np.nan)
        se = np.full(params.shape, np.nan)
    log_grad = np.abs(grad * params)
    converged = bool(np.isfinite(value) and np.max(log_grad) < gtol * max(1.0, abs(value)))
    if not converged:
        warnings.warn(
            f"Maximum likelihood did not converge (largest log-scale gradient {np.max(log_grad):.3g}; "
            f"optimiser: {res.message}). Check the data or start from other values.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return MLEResult(
        params=params,
        log_likelihood=float(value),
        gradient=grad,
        hessian=hess,
        covariance=cov,
        standard_errors=se,
        converged=converged,
        n_iterations=int(res.nit),
        message=str(res.message),
    )
