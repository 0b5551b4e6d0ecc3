"""Prior distributions of the Bayesian models: a small, validated specification.

A :class:`Prior` names a PyMC distribution with positive support and its parameters. Models
take ``priors={"r": Prior("Gamma", alpha=2.0, beta=1.0), ...}`` for any subset of their
parameters; the rest keep the defaults below. Priors are immutable values: nothing the
user passes is modified.

Default priors (weakly informative, on the natural scale of each parameter)
---------------------------------------------------------------------------
BG/NBD (time in the data's unit; ``s`` = mean customer age ``T`` of the data):

- ``r ~ HalfNormal(5)``: the shape of the purchase-rate heterogeneity; the coefficient of
  variation of λ is 1/sqrt(r), so r in (0.05, 10) spans from extreme heterogeneity to near
  homogeneity; published fits lie in 0.1-5.
- ``alpha ~ HalfNormal(5 s)``: a scale with the data's time unit. Scaling by ``s`` makes the
  prior mean the same thing in days and weeks (changing the unit multiplies alpha by the
  same factor as ``s``), and ``r / alpha`` then covers mean purchase rates from a handful per
  customer lifetime to several per time unit.
- ``a ~ HalfNormal(5)``, ``b ~ HalfNormal(20)``: the dropout probability p ~ Beta(a, b) has
  prior-mean a/(a+b); b is often larger than a (p small) and can reach tens when customers
  rarely leave.

Gamma-Gamma (``m`` = mean spend of the repeat buyers):

- ``p ~ HalfNormal(10)``, ``q ~ HalfNormal(10)``: shapes of the transaction-value and
  customer-mean distributions; published fits lie in 1-10.
- ``gamma ~ HalfNormal(10 m)``: a scale in currency units; the mean spend is
  p γ / (q - 1), so scaling by ``m`` keeps the prior currency-free.

These are checked by prior predictive simulation (``BetaGeoModel.sample_prior_predictive``)
and simulation-based calibration in the test suite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pymc as pm
from pymc.distributions.shape_utils import change_dist_size

__all__ = ["Prior", "default_bgnbd_priors", "default_gamma_gamma_priors", "draw_priors", "resolve_priors"]

# distributions with support on (0, inf) (or a subset) and the parameters each accepts
_POSITIVE_DISTRIBUTIONS: dict[str, frozenset[str]] = {
    "HalfNormal": frozenset({"sigma"}),
    "HalfStudentT": frozenset({"nu", "sigma"}),
    "HalfCauchy": frozenset({"beta"}),
    "Gamma": frozenset({"alpha", "beta", "mu", "sigma"}),
    "InverseGamma": frozenset({"alpha", "beta"}),
    "LogNormal": frozenset({"mu", "sigma"}),
    "Exponential": frozenset({"lam"}),
    "Weibull": frozenset({"alpha", "beta"}),
    "Uniform": frozenset({"lower", "upper"}),
    "TruncatedNormal": frozenset({"mu", "sigma", "lower", "upper"}),
}


@dataclass(frozen=True)
class Prior:
    """A prior distribution for one positive model parameter.

    Parameters
    ----------
    distribution
        Name of a PyMC distribution with positive support: ``HalfNormal``,
        ``HalfStudentT``, ``HalfCauchy``, ``Gamma``, ``InverseGamma``, ``LogNormal``,
        ``Exponential``, ``Weibull``, ``Uniform`` (lower >= 0) or ``TruncatedNormal``
        (lower >= 0).
    **params
        The distribution's parameters, as PyMC names them (e.g. ``sigma=5``).

    Examples
    --------
    >>> Prior("Gamma", alpha=2.0, beta=1.0)
    Prior('Gamma', alpha=2.0, beta=1.0)
    """

    distribution: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __init__(self, distribution: str, **params: float) -> None:
        if distribution not in _POSITIVE_DISTRIBUTIONS:
            raise ValueError(
                f"Unsupported prior distribution {distribution!r}; model parameters are positive, "
                f"so use one of {sorted(_POSITIVE_DISTRIBUTIONS)}."
            )
        allowed = _POSITIVE_DISTRIBUTIONS[distribution]
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(
                f"{distribution} takes parameters {sorted(allowed)}, not {sorted(unknown)}."
            )
        clean: dict[str, float] = {}
        for key, value in params.items():
            value = float(value)
            if not np.isfinite(value):
                raise ValueError(f"Prior parameter {key}={value} must be finite.")
            clean[key] = value
        if distribution in ("Uniform", "TruncatedNormal") and clean.get("lower", -1.0) < 0:
            raise ValueError(f"{distribution} priors need lower >= 0 for a positive parameter.")
        for key in ("sigma", "beta", "lam", "nu", "alpha"):
            if key in clean and clean[key] <= 0:
                raise ValueError(f"Prior parameter {key} must be > 0, got {clean[key]}.")
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "params", MappingProxyType(clean))

    def create(self, name: str) -> pm.Distribution:
        """Add the random variable ``name`` to the PyMC model in context.

        The prior's parameters enter as data (``pm.Data`` named ``{name}_prior_{param}``),
        not as constants: the compiled log-density is then the same for every choice of
        the values (e.g. the default alpha scale, which follows the data's mean T), so a
        compiled sampler is reused across data sets and prior settings.
        """
        dist = getattr(pm, self.distribution)
        params = {key: pm.Data(f"{name}_prior_{key}", value) for key, value in self.params.items()}
        return dist(name, **params)

    def to_dict(self) -> dict:
        """JSON-serialisable form, stored in the InferenceData attributes."""
        return {"distribution": self.distribution, **dict(self.params)}

    @classmethod
    def from_dict(cls, spec: Mapping) -> Prior:
        spec = dict(spec)
        return cls(spec.pop("distribution"), **spec)

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"Prior({self.distribution!r}{args})"


def default_bgnbd_priors(mean_T: float) -> dict[str, Prior]:
    """Default BG/NBD priors; ``mean_T`` is the mean customer age in the data's time unit."""
    return {
        "r": Prior("HalfNormal", sigma=5.0),
        "alpha": Prior("HalfNormal", sigma=5.0 * float(mean_T)),
        "a": Prior("HalfNormal", sigma=5.0),
        "b": Prior("HalfNormal", sigma=20.0),
    }


def default_gamma_gamma_priors(mean_spend: float) -> dict[str, Prior]:
    """Default Gamma-Gamma priors; ``mean_spend`` is the repeat buyers' mean spend."""
    return {
        "p": Prior("HalfNormal", sigma=10.0),
        "q": Prior("HalfNormal", sigma=10.0),
        "gamma": Prior("HalfNormal", sigma=10.0 * float(mean_spend)),
    }


def resolve_priors(
    user: Mapping[str, Prior] | None, defaults: Mapping[str, Prior], model_name: str
) -> dict[str, Prior]:
    """Defaults overridden by the user's priors, after checking names and types."""
    merged = dict(defaults)
    if user is None:
        return merged
    if not isinstance(user, Mapping):
        raise TypeError(f"priors must be a dict of parameter name -> Prior, got {type(user).__name__}.")
    unknown = set(user) - set(defaults)
    if unknown:
        raise ValueError(
            f"{model_name} has no parameter(s) {sorted(unknown)}; its parameters are {list(defaults)}."
        )
    for name, prior in user.items():
        if isinstance(prior, Mapping):
            prior = Prior.from_dict(prior)
        if not isinstance(prior, Prior):
            raise TypeError(
                f"The prior for {name!r} must be a clvbayes Prior, e.g. Prior('HalfNormal', sigma=5), "
                f"got {type(prior).__name__}."
            )
        merged[name] = prior
    return merged


def draw_priors(priors: Mapping[str, Prior], names: tuple[str, ...], n: int, seed: int) -> np.ndarray:
    """``n`` independent joint draws of the parameters ``names`` from their priors, shape (n, P).

    The random variables are made by :meth:`Prior.create`, as in the models' PyMC models,
    and drawn in one vectorised call (``pm.draw(draws=n)`` would call the compiled sampler
    n times). Used by the prior predictive check and by simulation-based calibration.
    """
    with pm.Model() as model:
        for name in names:
            priors[name].create(name)
    rvs = [change_dist_size(rv, (n,)) for rv in model.free_RVs]
    values = pm.draw(rvs, random_seed=seed)
    return np.column_stack([np.asarray(v, dtype=float).reshape(n) for v in values])
