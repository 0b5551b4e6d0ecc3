"""The contract every purchase/dropout model ("family") fulfils, and the registry.

A family states its parameters, its default priors and its math *once*, as scalar Numba
cores with fixed signatures. Everything above (the PyTensor Op, MLE/MAP/NUTS, pointwise
log-likelihood and LOO, the value engine, predictive checks, SBC, plots, Dask scoring,
workflow, report, CLI) is written once and takes a :class:`Family`; vectorised drivers are
compiled per family from one generic source (:mod:`clvbayes.families.drivers`).

Scalar cores
------------
Every core is an ``@njit(cache=True)`` function whose first four arguments are the four
model parameters, in the order of :attr:`Family.param_names` (written ``θ`` below).
Customer histories are ``x`` (repeat purchases), ``t_x`` (time of the last repeat purchase,
0 if none) and ``T`` (age: time from the first purchase to the end of observation), all
float64, with ``0 <= t_x <= T`` and ``T >= 0`` (a customer first seen on the last day has
``T = 0``). Cores need not check their arguments (the model layer validates) but must stay
finite and accurate at extreme parameters and data (log-space, stable special functions).

==================================== ==========================================================
``loglik_one(θ, x, t_x, T)``         ln L of one customer history
``loglik_grad_one(θ, x, t_x, T)``    ``(ln L, ∂/∂θ0, ∂/∂θ1, ∂/∂θ2, ∂/∂θ3)`` (natural scale)
``p_alive_one(θ, x, t_x, T)``        P(alive at T | history)
``expected_purchases_one(θ, t)``     E[X(t)] for a new customer (age 0, first purchase at 0)
``pmf_one(θ, t, n)``                 P(X(t) = n) for a new customer (``n`` int)
``conditional_expected_purchases_one(θ, x, t_x, T, t)``
                                     E[X(T, T+t] | history] (P(alive) included)
``conditional_pmf_one(θ, x, t_x, T, t, n)``
                                     P(X(T, T+t] = n | history) (the dead buy nothing)
``dert_one(θ, x, t_x, T, delta)``    discounted expected residual transactions
                                     E[∫_T^∞ e^{-δ(s-T)} dX(s) | history], P(alive) included
``alive_factor_one(quantity, θ, x, T, delta, horizon)``
                                     the factor F after P(alive) of a value-engine quantity
                                     (codes of :mod:`clvbayes.kernels.clv`), *given alive at T*:
                                     ``PURCHASES`` E[X(T, T+h] | alive]; ``DISCOUNTED`` /
                                     ``CLV`` / ``LOST`` E[∫_T^{T+h} e^{-δ(s-T)} dX(s) | alive]
                                     (h may be inf: the DERT factor); ``DROPOUT`` P(drop out
                                     in (T, T+h] | alive at T); ``PMF + n`` P(X(T, T+h] = n |
                                     alive); ``P_ALIVE`` and ``SPEND``: 1. Depends on the
                                     history only through (x, T) for every family here (the
                                     posterior given alive does not depend on t_x).
``replicate_one(θ, T)``              one new customer simulated over (0, T]: ``(x, t_x)``
                                     (floats; ``t_x = 0`` when ``x = 0``), from Numba's
                                     global generator (the caller seeds it)
``holdout_replicate_one(θ, x, t_x, T, t)``
                                     purchases in (T, T+t] of a customer with this history,
                                     simulated (alive w.p. P(alive); then the posterior given
                                     alive; then the future process)
``latent_one(θ)``                    a new customer's latent draws ``(λ, d, τ)`` for the event-by-
                                     event simulator (:mod:`clvbayes.kernels.simulate`): the
                                     purchase rate, the dropout parameter (BG/NBD: p; Pareto/NBD:
                                     μ) and a lifetime drawn up front (``inf`` where dropout is
                                     decided at purchases); named by :attr:`Family.latent_names`
``drops_out_one(θ, λ, d, k)``        whether the customer drops out right after purchase ``k``
                                     (``k = 0``: the first purchase, at time 0; ``k >= 1``: the
                                     k-th repeat purchase), drawing what it needs
==================================== ==========================================================

The event-by-event simulator takes the purchases of an alive customer to be a Poisson
process of rate λ (true of every family here); ``replicate_one`` and
``holdout_replicate_one`` are its fast, event-free counterparts for predictive checks and
need not share its random numbers.

Registration: a family module ends with ``register(Family(...))``; :func:`get_family` looks
families up by name (``"bgnbd"``, ``"pnbd"``, ``"mbgnbd"``), which is also the CLI's
``--model`` value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

__all__ = ["Family", "CORES", "register", "get_family", "family_names"]

#: The scalar cores a family must provide (module docstring), in a fixed order.
CORES = (
    "loglik_one",
    "loglik_grad_one",
    "p_alive_one",
    "expected_purchases_one",
    "pmf_one",
    "conditional_expected_purchases_one",
    "conditional_pmf_one",
    "dert_one",
    "alive_factor_one",
    "replicate_one",
    "holdout_replicate_one",
    "latent_one",
    "drops_out_one",
)


@dataclass(frozen=True, eq=False)  # identity: one object per registered family
class Family:
    """A purchase/dropout model: names, priors, sources and its scalar Numba cores.

    Parameters
    ----------
    name : str
        Registry key and ``--model`` value (``"bgnbd"``).
    label : str
        Name for people (``"BG/NBD"``).
    param_names : tuple of str
        The four parameters, in the order the cores take them.
    reference : str
        The paper the model and its formulas come from.
    default_priors : callable
        ``default_priors(mean_T) -> {name: Prior}`` (``mean_T``: mean customer age of the
        data, so scale priors follow the data's time unit).
    cores : mapping
        Every name of :data:`CORES` to its ``@njit`` function.
    fast : mapping, optional
        Vectorised kernels that replace the generic drivers for this family (same
        signatures as :mod:`clvbayes.families.drivers` exposes), e.g. BG/NBD's tabulated
        log-likelihood sum. The generic driver is the reference they are tested against.
        ``fast["prepare"]`` (a Python function) maps ``(x, t_x, T)`` to θ-free float64 arrays
        computed once per data set, which the family's fast likelihood kernels take after the
        data (``loglik_rows(θ, x, t_x, T, *extra)``, ``loglik_sum(θ, x, t_x, T, w, *extra)``);
        callers get the argument tuple from
        :meth:`clvbayes.families.compiled.Drivers.loglik_data`. ``fast["prepare_sums"]`` is
        the same for ``loglik_sum`` and ``loglik_sum_grad`` only (BG/NBD: its distinct times).
    mle_start : callable, optional
        ``mle_start(mean_x, mean_T) -> 4 numbers``: where MLE starts (default ``(1, mean_T /
        mean_x, 1, 1)``: the purchase rate r/α near the data's mean rate).
    nuts_defaults : mapping or callable, optional
        Sampler settings this model's NUTS fits use unless the caller gives them, or
        ``nuts_defaults(n_customers) -> mapping`` when they depend on the data's size (e.g.
        Pareto/NBD's ``target_accept``: 0.95 on small data, 0.8 from 10^5 customers); read
        them by :meth:`nuts_settings`.
    finite_total_param : str, default "a"
        The shape parameter whose draws must exceed 1 for the expected number of *all* future
        purchases (no discounting, infinite horizon) to be finite; ``finite_total_why`` says why,
        for the error message (:func:`clvbayes.value.arguments.check_convergent`).
    interpolate_in_log_age : bool, default False
        The value engine may interpolate ``ln F`` in ``ln(shift(θ) + T)`` by Chebyshev
        polynomials within groups of equal (x, δ) (accepted only where the expansion has
        converged to 1e-12, else evaluated key by key).
    latent_names : tuple of str
        Names of the first two or all three latent draws of ``latent_one`` (``("lambda",
        "p_drop")``; Pareto/NBD ``("lambda", "mu", "lifetime")``): the ground-truth columns
        ``true_<name>`` of :func:`clvbayes.simulate_customers`. Required.
    """

    name: str
    label: str
    param_names: tuple[str, str, str, str]
    reference: str
    default_priors: Callable[[float], dict]
    cores: Mapping[str, Callable]
    fast: Mapping[str, Callable] = field(default_factory=dict)
    mle_start: Callable[[float, float], tuple] = field(default=None)  # type: ignore[assignment]
    nuts_defaults: Mapping[str, object] | Callable[[int], Mapping[str, object]] = field(default_factory=dict)
    finite_total_param: str = "a"
    finite_total_why: str = ""
    interpolate_in_log_age: bool = False
    latent_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        missing = [c for c in CORES if c not in self.cores]
        if missing:
            raise TypeError(f"Family {self.name!r} lacks the cores {missing}.")
        if len(self.param_names) != 4:
            raise TypeError(f"Family {self.name!r}: the cores take four parameters, got {self.param_names}.")
        if len(self.latent_names) not in (2, 3):
            raise TypeError(f"Family {self.name!r}: latent_names must name 2 or 3 latent draws, got {self.latent_names}.")
        if self.mle_start is None:
            object.__setattr__(self, "mle_start", _default_start)
        object.__setattr__(self, "cores", MappingProxyType(dict(self.cores)))
        object.__setattr__(self, "fast", MappingProxyType(dict(self.fast)))
        if not callable(self.nuts_defaults):
            object.__setattr__(self, "nuts_defaults", MappingProxyType(dict(self.nuts_defaults)))

    def nuts_settings(self, n_customers: int) -> dict:
        """The NUTS defaults (``nuts_defaults``) for a fit to ``n_customers`` customers."""
        d = self.nuts_defaults
        return dict(d(int(n_customers)) if callable(d) else d)

    def __getattr__(self, name: str):
        # family.p_alive_one etc.: the cores as attributes
        cores = object.__getattribute__(self, "cores")
        if name in cores:
            return cores[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"Family({self.name!r}, {self.label}, params={self.param_names})"


def _default_start(mean_x: float, mean_T: float) -> tuple[float, float, float, float]:
    return (1.0, mean_T / mean_x, 1.0, 1.0)


_REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family to the registry (by its name) and return it."""
    if family.name in _REGISTRY and _REGISTRY[family.name] is not family:
        raise ValueError(f"A family named {family.name!r} is already registered.")
    _REGISTRY[family.name] = family
    return family


def family_names() -> tuple[str, ...]:
    """Names of the registered families, in registration order."""
    _load()
    return tuple(_REGISTRY)


def get_family(name: str | Family) -> Family:
    """The registered family called ``name`` (a :class:`Family` is returned as is).

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    if isinstance(name, Family):
        return name
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown model family {name!r}; known: {', '.join(_REGISTRY)}.") from None


def _load() -> None:
    # Importing the package registers the built-in families (one line each there).
    import clvbayes.families  # noqa: F401


def as_params(theta: Mapping[str, float] | np.ndarray, family: Family) -> np.ndarray:
    """Parameters as a float64 vector in the family's order."""
    if isinstance(theta, Mapping):
        return np.array([float(theta[p]) for p in family.param_names])
    return np.asarray(theta, dtype=np.float64)
