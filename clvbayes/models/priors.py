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

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pymc as pm
from pymc.distributions.shape_utils import change_dist_size

__all__ = ["Prior", "check_priors", "default_bgnbd_priors", "default_gamma_gamma_priors", "draw_priors", "resolve_priors"]

# Distributions with support on (0, inf) (or a subset) and their parametrisations: each entry
# is (required, optional) parameter names of one way of writing the distribution, as PyMC
# names them. A Prior must match one of them exactly: PyMC would silently fill a missing
# parameter with a default (HalfNormal(sigma=1)) or refuse only when the model is built.
_PARAMETRISATIONS: dict[str, tuple[tuple[frozenset[str], frozenset[str]], ...]] = {
    "HalfNormal": ((frozenset({"sigma"}), frozenset()),),
    "HalfStudentT": ((frozenset({"nu", "sigma"}), frozenset()),),
    "HalfCauchy": ((frozenset({"beta"}), frozenset()),),
    "Gamma": ((frozenset({"alpha", "beta"}), frozenset()), (frozenset({"mu", "sigma"}), frozenset())),
    "InverseGamma": ((frozenset({"alpha", "beta"}), frozenset()),),
    "LogNormal": ((frozenset({"mu", "sigma"}), frozenset()),),
    "Exponential": ((frozenset({"lam"}), frozenset()),),
    "Weibull": ((frozenset({"alpha", "beta"}), frozenset()),),
    "Uniform": ((frozenset({"lower", "upper"}), frozenset()),),
    "TruncatedNormal": ((frozenset({"mu", "sigma", "lower"}), frozenset({"upper"})),),
}
# One valid example of each, for the error messages.
_EXAMPLES = {
    "HalfNormal": "Prior('HalfNormal', sigma=5)",
    "HalfStudentT": "Prior('HalfStudentT', nu=3, sigma=5)",
    "HalfCauchy": "Prior('HalfCauchy', beta=2)",
    "Gamma": "Prior('Gamma', alpha=2, beta=1)",
    "InverseGamma": "Prior('InverseGamma', alpha=3, beta=2)",
    "LogNormal": "Prior('LogNormal', mu=0, sigma=1)",
    "Exponential": "Prior('Exponential', lam=1)",
    "Weibull": "Prior('Weibull', alpha=1.5, beta=2)",
    "Uniform": "Prior('Uniform', lower=0, upper=100)",
    "TruncatedNormal": "Prior('TruncatedNormal', mu=1, sigma=2, lower=0)",
}
# Parameters that are locations (any real number); every other one is a positive scale,
# shape or rate, except the bounds (lower >= 0 for a positive parameter, upper > lower).
_REAL_PARAMETERS = {("LogNormal", "mu"), ("TruncatedNormal", "mu")}
_BOUNDS = ("lower", "upper")


def _describe(distribution: str) -> str:
    """'alpha and beta, or mu and sigma' for the error messages."""
    forms = []
    for required, optional in _PARAMETRISATIONS[distribution]:
        text = " and ".join(sorted(required))
        if optional:
            text += " (optionally " + ", ".join(sorted(optional)) + ")"
        forms.append(text)
    return ", or ".join(forms)


def _check_parametrisation(distribution: str, names: set[str]) -> None:
    forms = _PARAMETRISATIONS[distribution]
    allowed = frozenset().union(*(req | opt for req, opt in forms))
    unknown = names - allowed
    if unknown:
        raise ValueError(
            f"{distribution} takes parameters {sorted(allowed)}, not {sorted(unknown)}; "
            f"give {_describe(distribution)}."
        )
    if not any(req <= names <= req | opt for req, opt in forms):
        raise ValueError(
            f"{distribution} needs {_describe(distribution)}; got {sorted(names) or 'no parameters'}, "
            f"e.g. {_EXAMPLES[distribution]}."
        )


def _number(distribution: str, key: str, value: object) -> float:
    """A parameter value as a finite float, or an error naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Prior parameter {key} of {distribution} must be a number, got {value!r} ({type(value).__name__})."
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Prior parameter {key} of {distribution} must be finite, got {value}.")
    return value


@dataclass(frozen=True)
class Prior:
    """A prior distribution for one positive model parameter.

    Parameters
    ----------
    distribution
        Name of a PyMC distribution with positive support and the parameters it needs:
        ``HalfNormal`` (sigma), ``HalfStudentT`` (nu, sigma), ``HalfCauchy`` (beta),
        ``Gamma`` (alpha, beta or mu, sigma), ``InverseGamma`` (alpha, beta),
        ``LogNormal`` (mu, sigma), ``Exponential`` (lam), ``Weibull`` (alpha, beta),
        ``Uniform`` (0 <= lower < upper) or ``TruncatedNormal`` (mu, sigma, lower >= 0,
        optionally upper > lower).
    **params
        The distribution's parameters, as PyMC names them (e.g. ``sigma=5``): finite
        numbers, positive except the locations ``mu`` of LogNormal and TruncatedNormal.
        Every parameter of one parametrisation must be given (PyMC would otherwise fill
        in its own defaults, e.g. sigma=1), and no other.

    Raises
    ------
    ValueError
        For an unknown distribution, a missing, extra or mixed-up parameter set, or a
        value out of range (the message names the parameter).
    TypeError
        For a parameter value that is not a number.

    Examples
    --------
    >>> Prior("Gamma", alpha=2.0, beta=1.0)
    Prior('Gamma', alpha=2.0, beta=1.0)
    """

    distribution: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __init__(self, distribution: str, **params: float) -> None:
        if distribution not in _PARAMETRISATIONS:
            raise ValueError(
                f"Unsupported prior distribution {distribution!r}; model parameters are positive, "
                f"so use one of {sorted(_PARAMETRISATIONS)}."
            )
        _check_parametrisation(distribution, set(params))
        clean = {key: _number(distribution, key, value) for key, value in params.items()}
        for key, value in clean.items():
            if key not in _BOUNDS and (distribution, key) not in _REAL_PARAMETERS and value <= 0:
                raise ValueError(f"Prior parameter {key} of {distribution} must be > 0, got {value:g}.")
        if "lower" in clean and clean["lower"] < 0:
            raise ValueError(
                f"{distribution} priors need lower >= 0 for a positive parameter, got lower={clean['lower']:g}."
            )
        if "upper" in clean and not clean["upper"] > clean["lower"]:
            raise ValueError(
                f"{distribution} priors need lower < upper, got lower={clean['lower']:g}, upper={clean['upper']:g}."
            )
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "params", MappingProxyType(clean))

    def create(self, name: str) -> pm.Distribution:
        """Add the random variable ``name`` to the PyMC model in context.

        The prior's parameters enter as data (``pm.Data`` named ``{name}_prior_{param}``),
        not as constants: the compiled log-density is then the same for every choice of
        the values (e.g. the default alpha scale, which follows the data's mean T), so a
        compiled sampler is reused across data sets and prior settings.
        """
        return getattr(pm, self.distribution)(name, **self._data_params(name))

    def _data_params(self, name: str) -> dict:
        return {key: pm.Data(f"{name}_prior_{key}", value) for key, value in self.params.items()}

    def logp(self, name: str, value):
        """The prior's log density at the PyTensor ``value`` (a deterministic of other
        coordinates, :func:`clvbayes.models.purchase.rate_coordinates`), its parameters as
        data exactly as :meth:`create` makes them."""
        return pm.logp(getattr(pm, self.distribution).dist(**self._data_params(name)), value)

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


def check_priors(user: Mapping[str, Prior] | None, names: tuple[str, ...], model_name: str) -> dict[str, Prior]:
    """The user's priors as ``{name: Prior}`` after checking the names and types.

    Called by the model constructors, so that a misspelt name (``priors={"rr": ...}``) is
    refused where it is written, not at the first fit.
    """
    if user is None:
        return {}
    if not isinstance(user, Mapping):
        raise TypeError(f"priors must be a dict of parameter name -> Prior, got {type(user).__name__}.")
    unknown = [k for k in user if k not in names]
    if unknown:
        raise ValueError(
            f"{model_name} has no parameter(s) {sorted(map(str, unknown))}; its parameters are {list(names)}."
        )
    checked = {}
    for name, prior in user.items():
        if isinstance(prior, Mapping):
            prior = Prior.from_dict(prior)
        if not isinstance(prior, Prior):
            raise TypeError(
                f"The prior for {name!r} must be a clvbayes Prior, e.g. Prior('HalfNormal', sigma=5), "
                f"got {type(prior).__name__}."
            )
        checked[name] = prior
    return checked


def resolve_priors(
    user: Mapping[str, Prior] | None, defaults: Mapping[str, Prior], model_name: str
) -> dict[str, Prior]:
    """Defaults overridden by the user's priors, after checking names and types."""
    return {**defaults, **check_priors(user, tuple(defaults), model_name)}


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
