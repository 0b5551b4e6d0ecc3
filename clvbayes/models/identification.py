"""Can the data pin the parameters down? Plain-words checks after a fit.

A BG/NBD or Gamma-Gamma fit on a handful of customers, or on customers who never came back,
is not an error: the likelihood exists, but it is flat in some directions. Maximum
likelihood then runs away along the ridge (r and alpha to 1e12 with r/alpha fixed, b to
infinity when no one is seen to drop out) and NUTS returns the prior. The numbers that come
out look like estimates; these checks say in words when they are not.

- :func:`check_mle`: estimates at extreme values (above ``_HUGE`` or below ``_TINY``), or a
  covariance that is not finite and positive definite, or a relative standard error above
  ``_MAX_REL_SE``: a :class:`WeakIdentificationWarning` naming the parameters and the
  number of customers.
- :func:`check_posterior`: posterior sd at least ``_PRIOR_SD_SHARE`` of the prior sd (the
  data shrank the prior's spread by less than 30%, i.e. a posterior contraction
  ``1 - var_post/var_prior`` below about 0.5; Betancourt 2018, "Calibrating model-based
  inferences and decisions", arXiv:1803.08393, section 1.2): the parameter's posterior is
  mostly its prior.
- :func:`check_repeat_buyers`: a BG/NBD summary without any repeat buyer (the purchase
  rate and the dropout cannot be told apart: no one was seen buying twice).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["WeakIdentificationWarning", "check_mle", "check_posterior", "check_repeat_buyers"]

_HUGE = 1e6  # an estimate beyond this (or below _TINY) sits at the edge of the search
_TINY = 1e-6
_MAX_REL_SE = 100.0  # standard error more than 100 times the estimate
_PRIOR_SD_SHARE = 0.7  # posterior sd / prior sd at or above this: the posterior is mostly prior
_PRIOR_DRAWS = 4000
_PRIOR_SD: dict = {}


class WeakIdentificationWarning(UserWarning):
    """The data cannot pin down some parameters: the estimates (or the posterior) are not
    informed by the data and should not be read as findings."""


def _customers(n: int) -> str:
    return f"only {n:,} customer{'s' if n != 1 else ''}" if n < 50 else f"{n:,} customers"


def _warn(message: str, stacklevel: int) -> None:
    warnings.warn(message, WeakIdentificationWarning, stacklevel=stacklevel + 1)


def check_repeat_buyers(model: str, n_customers: int, n_repeat: int, *, stacklevel: int = 2) -> bool:
    """Warn when a BG/NBD summary has no repeat buyer; True when it warned."""
    if n_repeat > 0:
        return False
    _warn(
        f"{model}: none of the {n_customers:,} customers made a repeat purchase, so the purchase rate "
        "and the dropout cannot be separated (a customer who never came back may buy rarely or may "
        "have left). The estimates of r, alpha, a and b are not informed by the data; collect a longer "
        "history before reading them.",
        stacklevel + 1,
    )
    return True


def check_mle(model: str, names: Sequence[str], params: np.ndarray, covariance: np.ndarray, n_customers: int,
              *, stacklevel: int = 2) -> list[str]:
    """Warn when maximum likelihood ran away; returns the names of the parameters concerned.

    Parameters
    ----------
    model
        Model name for the message.
    names, params, covariance
        Natural-scale estimates and their covariance (inverse observed information).
    n_customers
        Customers the fit used (for the message).
    """
    params = np.asarray(params, dtype=float)
    cov = np.asarray(covariance, dtype=float)
    extreme = (params > _HUGE) | (params < _TINY)
    var = np.diag(cov) if cov.shape == (len(names), len(names)) else np.full(params.shape, np.nan)
    pos_def = bool(np.isfinite(cov).all())
    if pos_def:
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            pos_def = False
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_se = np.sqrt(np.where(var > 0, var, np.nan)) / params
    loose = extreme | (rel_se > _MAX_REL_SE)
    if not pos_def:
        loose |= ~np.isfinite(rel_se)
        if not loose.any():  # flat along a combination of parameters: all of them are concerned
            loose[:] = True
    if not loose.any():
        return []
    bad = [n for n, b in zip(names, loose, strict=True) if b]
    shown = ", ".join(f"{n} = {v:.3g}" for n, v, b in zip(names, params, loose, strict=True) if b)
    listed = " and ".join(bad) if len(bad) <= 2 else ", ".join(bad[:-1]) + " and " + bad[-1]
    why = ("no finite, positive definite covariance" if not pos_def
           else "estimates at extreme values or standard errors many times the estimates")
    # Two shape/scale parameters growing together (r and alpha, a and b) is the limit of no
    # heterogeneity: their ratio (the common rate or dropout probability) is still estimated.
    together = len(bad) >= 2 and int(np.sum(params[loose] > _HUGE)) >= 2
    pair = (" When a pair grows together, the data are consistent with customers who all share one "
            "rate (or one dropout probability): the pair's ratio is still estimated, its spread is not."
            if together else "")
    more = "more customers or a longer history" if n_customers < 50 else "a longer history"
    _warn(
        f"{model}: the data cannot pin down {listed} ({shown}; {why}) with {_customers(n_customers)}. "
        "The likelihood is flat in these directions, so the optimiser ran towards the edge: the values "
        f"are not estimates.{pair} Use {more}, or fit(method='nuts') so that the "
        "priors keep the parameters in a plausible range.",
        stacklevel + 1,
    )
    return bad


def check_posterior(model: str, posterior: Mapping[str, np.ndarray], priors: Mapping[str, object], n_customers: int,
                    *, seed: int = 0, stacklevel: int = 2) -> list[str]:
    """Warn for each parameter whose posterior sd is at least 70% of its prior sd.

    Parameters
    ----------
    model
        Model name for the message.
    posterior
        Draws per parameter name (any shape).
    priors
        :class:`~clvbayes.Prior` per parameter name (the sd is taken from ``_PRIOR_DRAWS``
        seeded prior draws, so any distribution works).
    n_customers
        Customers the fit used (for the message).

    Returns
    -------
    list of str
        The parameters that stayed at their prior.
    """
    from clvbayes.models.priors import draw_priors

    names = tuple(posterior)
    key = (tuple((n, repr(priors[n])) for n in names), seed)
    if key not in _PRIOR_SD:  # one compiled prior draw per distinct set of priors (SBC refits often)
        _PRIOR_SD[key] = draw_priors(dict(priors), names, _PRIOR_DRAWS, seed).std(axis=0)
    prior_sd = _PRIOR_SD[key]
    ratios = {n: float(np.std(np.asarray(posterior[n], dtype=float))) / s for n, s in zip(names, prior_sd, strict=True)
              if s > 0 and np.isfinite(s)}
    weak = [n for n, q in ratios.items() if not q < _PRIOR_SD_SHARE]
    if weak:
        shown = ", ".join(f"{n} {100 * ratios[n]:.0f}%" for n in weak)
        _warn(
            f"{model}: the posterior of {', '.join(weak)} stayed close to the prior (posterior sd as a share "
            f"of the prior sd: {shown}) with {_customers(n_customers)}: the data says little about "
            "these parameters, so what the model predicts with them comes mostly from the priors. "
            "Use more customers or a longer history, or set informative priors on purpose.",
            stacklevel + 1,
        )
    return weak
