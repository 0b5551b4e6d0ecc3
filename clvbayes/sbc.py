"""Simulation-based calibration (SBC) of the Bayesian models.

Talts, Betancourt, Simpson, Vehtari & Gelman (2018), "Validating Bayesian inference
algorithms with simulation-based calibration", arXiv:1804.06788: if ``θ ~ prior``,
``y ~ p(y | θ)`` and ``θ_1..θ_L`` are independent draws from the posterior ``p(θ | y)``,
then the rank of ``θ`` among ``θ_1..θ_L`` (the number of draws below it) is uniform on
``{0, ..., L}``, for every parameter (Talts et al. 2018, Theorem 1). A sampler, a
likelihood or a prior that does not match the simulator shows up as non-uniform ranks:
a U shape for an overconfident posterior, a hump for an underdispersed one, a slope for a
biased one (Talts et al. 2018, section 4).

:func:`simulation_based_calibration` runs the whole loop for
:class:`~clvbayes.BetaGeoModel` and :class:`~clvbayes.GammaGammaModel` through the public
API (``model_class(data, priors=...).fit(method="nuts", ...)``), thins each posterior to
``L`` nearly independent draws, ranks the true values, and tests the ranks for uniformity
with a chi-square test over rank bins. See ``docs/guide/sbc.md``.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import arviz as az
import numpy as np
import pandas as pd
from scipy import stats

from clvbayes.families.bgnbd import BGNBD
from clvbayes.families.compiled import drivers_for
from clvbayes.models.purchase import PurchaseModel
from clvbayes.models.gamma_gamma import GammaGammaModel
from clvbayes.models.identification import WeakIdentificationWarning
from clvbayes.models.priors import (
    Prior,
    default_gamma_gamma_priors,
    draw_priors,
    resolve_priors,
)
from clvbayes.simulation import simulate_customers

__all__ = [
    "SBCResult",
    "SBCWarning",
    "UniformityTest",
    "rank_bin_sizes",
    "rank_uniformity",
    "sbc_rank",
    "simulation_based_calibration",
    "CDNOW_BGNBD_PARAMS",
    "COVERAGE_LEVELS",
    "nuts_draws",
    "run_replicates",
]

#: BG/NBD parameters of the CDNOW sample in weeks (Fader, Hardie & Lee 2005, "Counting your
#: customers the easy way", Marketing Science 24(2), section 5): the default purchase
#: process behind the Gamma-Gamma calibration, which conditions on the frequencies.
CDNOW_BGNBD_PARAMS: Mapping[str, float] = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


class SBCWarning(UserWarning):
    """Some SBC replicates could not be fitted; the calibration check is incomplete."""


class _SetupError(RuntimeError):
    """A fault of the SBC set-up itself (not of one replicate's fit): never swallowed."""


class UniformityTest(NamedTuple):
    """Chi-square test of rank uniformity (see :func:`rank_uniformity`)."""

    statistic: float
    p_value: float
    dof: int
    counts: np.ndarray
    expected: np.ndarray


# -- the statistics ------------------------------------------------------------------------


def sbc_rank(true_value: float, draws: np.ndarray, rng: np.random.Generator | None = None) -> int:
    """Rank of a true value among posterior draws (Talts et al. 2018, Algorithm 1).

    Parameters
    ----------
    true_value
        The parameter value the data were simulated from.
    draws
        ``L`` posterior draws (one-dimensional).
    rng
        Breaks ties: a draw equal to the true value counts as below it with probability
        1/2 each, so that the rank stays uniform for discrete posteriors. Ties have
        probability zero for continuous parameters; without ``rng`` they count as below
        with a fixed seed.

    Returns
    -------
    int
        ``#{l : draws[l] < true_value}`` (plus the tie share), in ``{0, ..., L}``.
    """
    draws = np.asarray(draws, dtype=float).ravel()
    if draws.size == 0 or not np.all(np.isfinite(draws)) or not math.isfinite(float(true_value)):
        raise ValueError("sbc_rank needs a finite true value and at least one finite draw.")
    below = int(np.count_nonzero(draws < true_value))
    ties = int(np.count_nonzero(draws == true_value))
    if ties:
        # uniform position of the true value among the tied draws
        rng = np.random.default_rng(0) if rng is None else rng
        below += int(rng.integers(0, ties + 1))
    return below


def rank_bin_sizes(n_draws: int, bins: int) -> np.ndarray:
    """Number of rank values ``0..n_draws`` falling in each of ``bins`` equal-width bins.

    Rank ``k`` goes to bin ``floor(k * bins / (n_draws + 1))``; when ``bins`` does not
    divide ``n_draws + 1`` the bins differ by one rank value and the test below uses the
    exact expected counts.
    """
    k = np.arange(n_draws + 1)
    return np.bincount((k * bins) // (n_draws + 1), minlength=bins)


def rank_uniformity(ranks: np.ndarray, n_draws: int, bins: int) -> UniformityTest:
    """Pearson chi-square test that SBC ranks are uniform on ``{0, ..., n_draws}``.

    Parameters
    ----------
    ranks
        Ranks of the true values, integers in ``[0, n_draws]`` (NaN entries, failed
        replicates, are ignored).
    n_draws
        ``L``, the number of posterior draws each rank was computed among.
    bins
        Number of rank bins ``B`` (``2 <= B <= L + 1``). Talts et al. (2018, section 4.1)
        bin the ``L + 1`` rank values into equal groups; here ``B`` need not divide
        ``L + 1``: the expected count of bin ``j`` is ``n × (ranks in bin j) / (L + 1)``.

    Returns
    -------
    UniformityTest
        Statistic, p-value (chi-square with ``B - 1`` degrees of freedom), observed and
        expected counts per bin.
    """
    r = np.asarray(ranks, dtype=float).ravel()
    r = r[~np.isnan(r)]
    if n_draws < 1 or int(n_draws) != n_draws:
        raise ValueError(f"n_draws must be a positive integer, got {n_draws!r}.")
    if not 2 <= bins <= n_draws + 1:
        raise ValueError(f"bins must be in [2, n_draws + 1 = {n_draws + 1}], got {bins!r}.")
    if r.size == 0:
        raise ValueError("No ranks to test.")
    if np.any(r != np.round(r)) or np.any(r < 0) or np.any(r > n_draws):
        raise ValueError(f"Ranks must be integers in [0, {n_draws}].")
    ri = r.astype(np.int64)
    counts = np.bincount((ri * bins) // (n_draws + 1), minlength=bins)
    expected = r.size * rank_bin_sizes(n_draws, bins) / (n_draws + 1)
    statistic = float(np.sum((counts - expected) ** 2 / expected))
    p_value = float(stats.chi2.sf(statistic, bins - 1))
    return UniformityTest(statistic, p_value, bins - 1, counts, expected)


def default_bins(n_ranked: int, n_draws: int) -> int:
    """About 10 expected ranks per bin, between 2 and 20 bins (and at most ``L + 1``)."""
    return int(max(2, min(20, n_ranked // 10, n_draws + 1)))


# -- the result ----------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class SBCResult:
    """Outcome of :func:`simulation_based_calibration`.

    Attributes
    ----------
    model : str
        Name of the model class.
    param_names : tuple of str
    priors : dict of str -> Prior
        The priors the parameters were drawn from and every fit used.
    n_draws : int
        ``L``: posterior draws per replicate after thinning; ranks lie in ``0..L``.
    n_bins : int
        Rank bins of the chi-square test.
    true_values : dict of str -> ndarray, shape (replicates,)
        The parameter values each data set was simulated from.
    ranks : dict of str -> ndarray, shape (replicates,)
        Rank of each true value among its ``L`` thinned posterior draws (float: NaN for a
        replicate whose fit failed).
    chi2, p_values : dict of str -> float
        Chi-square statistic and p-value of rank uniformity per parameter.
    counts : dict of str -> ndarray, shape (n_bins,)
        Observed ranks per bin; ``expected`` holds the counts under uniformity.
    diagnostics : pandas.DataFrame
        One row per replicate: ``status`` (``"nuts"``, ``"prior"`` when the data carry no
        information so the posterior is the prior, ``"failed"``), ``n_fit`` (customers
        in the fit), ``n_repeat`` (customers with a repeat purchase), ``max_r_hat``,
        ``min_ess_bulk``, ``divergences``, ``seconds`` (simulate + fit + rank) and
        ``error``.
    settings : dict
        The arguments of the run.
    seconds : float
        Wall time of the run.
    """

    model: str
    param_names: tuple[str, ...]
    priors: dict[str, Prior]
    n_draws: int
    n_bins: int
    true_values: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]
    chi2: dict[str, float]
    p_values: dict[str, float]
    counts: dict[str, np.ndarray]
    expected: np.ndarray
    diagnostics: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = float("nan")
    covered: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def replicates(self) -> int:
        return int(self.diagnostics.shape[0])

    @property
    def n_failed(self) -> int:
        return int((self.diagnostics["status"] == "failed").sum())

    def all_uniform(self, level: float = 0.01) -> bool:
        """True when no parameter's uniformity p-value is below ``level`` and no fit failed."""
        return self.n_failed == 0 and all(p > level for p in self.p_values.values())

    def summary(self) -> pd.DataFrame:
        """One row per parameter: chi-square, degrees of freedom, p-value, the number of
        ranked replicates and the mean of rank / L (0.5 expected; below 0.5 the posterior
        sits above the truth on average, above 0.5 below it)."""
        rows = {}
        for name in self.param_names:
            rk = self.ranks[name]
            ok = ~np.isnan(rk)
            rows[name] = {
                "chi2": self.chi2[name],
                "dof": self.n_bins - 1,
                "p_value": self.p_values[name],
                "n_ranked": int(ok.sum()),
                "mean_rank_fraction": float(np.mean(rk[ok]) / self.n_draws) if ok.any() else float("nan"),
            }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("parameter")

    def coverage(self) -> pd.DataFrame:
        """Share of replicates whose true value lies in the central posterior interval of
        each level of :data:`COVERAGE_LEVELS` (columns ``"50%"``, ``"90%"``; the interval
        between the thinned draws' ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles), one row
        per parameter, over the replicates that were fitted. A calibrated posterior covers
        at the nominal rate ``c`` (up to the binomial sd ``sqrt(c (1 - c) / n)``)."""
        rows = {}
        for name in self.param_names:
            cov = self.covered[name]
            ok = ~np.isnan(cov[:, 0])
            rows[name] = {f"{c:.0%}": float(np.mean(cov[ok, k])) if ok.any() else float("nan")
                          for k, c in enumerate(COVERAGE_LEVELS)}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("parameter")

    def bin_counts(self) -> pd.DataFrame:
        """Observed ranks per bin for each parameter, and the expected count per bin."""
        frame = pd.DataFrame({name: self.counts[name] for name in self.param_names})
        frame["expected"] = self.expected
        return frame.rename_axis("bin")

    def to_frame(self) -> pd.DataFrame:
        """One row per replicate: ``true_<name>``, ``rank_<name>`` and the diagnostics."""
        cols: dict[str, np.ndarray] = {}
        for name in self.param_names:
            cols[f"true_{name}"] = self.true_values[name]
        for name in self.param_names:
            cols[f"rank_{name}"] = self.ranks[name]
        frame = pd.DataFrame(cols, index=self.diagnostics.index)
        return pd.concat([frame, self.diagnostics], axis=1)

    def __repr__(self) -> str:
        ps = ", ".join(f"{k}: p={v:.3g}" for k, v in self.p_values.items())
        return (
            f"SBCResult({self.model}, {self.replicates} replicates, L={self.n_draws}, "
            f"{self.n_bins} bins, failed={self.n_failed}; {ps})"
        )


# -- the loop ------------------------------------------------------------------------------


def _fixed_priors(model_class: type, priors: Mapping[str, Prior] | None, T: np.ndarray) -> dict[str, Prior]:
    """The complete prior set, fixed before any data are simulated.

    SBC needs the prior that generates θ to be exactly the prior every fit uses. The
    models' default priors depend on the data (BG/NBD: alpha's scale is the mean customer
    age; Gamma-Gamma: gamma's scale is the repeat buyers' mean spend), so the defaults are
    resolved once here and passed explicitly to every fit. BG/NBD: T is fixed across
    replicates, so the mean age, and the default alpha scale, is the one the model would
    compute from any replicate. Gamma-Gamma: the mean spend is random, so the default is
    taken at spend scale 1 (gamma is a scale parameter of spend: rescaling the currency
    and gamma's prior together leaves the posterior of gamma / scale unchanged, so the
    calibration does not depend on the choice).
    """
    if issubclass(model_class, PurchaseModel):
        defaults = model_class.family.default_priors(float(np.mean(T)))
    else:
        defaults = default_gamma_gamma_priors(1.0)
    return resolve_priors(priors, defaults, model_class.__name__)


def _simulate_family(family, truth: Mapping[str, float], T: np.ndarray, seed: int) -> pd.DataFrame:
    """Customers of a purchase family at parameters ``truth``: the family's simulator
    (``replicate_one`` through :func:`~clvbayes.families.compiled.drivers_for`), one per age."""
    theta = [np.array([float(truth[p])]) for p in family.param_names]
    x, t_x = drivers_for(family).calibration_replicates(*theta, np.ascontiguousarray(T, dtype=float), seed)
    return pd.DataFrame({"frequency": x[0].astype(float), "recency": t_x[0], "T": T})


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


#: Central posterior intervals whose coverage of the true values is reported (the nominal rate).
COVERAGE_LEVELS: tuple[float, ...] = (0.5, 0.9)


def _thinned_components(posterior, name: str, thin: int) -> np.ndarray:
    """Every ``thin``-th draw of each chain of a scalar or vector variable, chains
    concatenated: shape (L,) for a scalar, (L, k) for a vector (one column per component)."""
    values = np.asarray(posterior[name].transpose("chain", "draw", ...).values, dtype=float)
    thinned = values[:, ::thin]
    return thinned.reshape(-1) if thinned.ndim == 2 else thinned.reshape(-1, *thinned.shape[2:])


def nuts_draws(model, var_names: tuple[str, ...], row: dict[str, Any], *, chains: int, draws: int, tune: int,
               thin: int, seed: int, fit_kwargs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Fit ``model`` by NUTS through its public ``fit`` and return its thinned draws.

    The convergence diagnostics of the fit (max r_hat and min bulk ESS over every component
    of ``var_names``, divergences) go into ``row``. Returns ``name -> (L,)`` or ``(L, k)``
    draws (:func:`_thinned_components`).
    """
    with warnings.catch_warnings():
        # small simulated data sets are expected to leave some posteriors near the
        # prior: that is part of what SBC measures, not a finding to warn about
        warnings.simplefilter("ignore", WeakIdentificationWarning)
        model.fit(method="nuts", chains=chains, draws=draws, tune=tune, random_seed=seed, progressbar=False,
                  **fit_kwargs)
    idata = model.idata_
    names = list(var_names)
    if chains > 1:
        rhat = az.rhat(idata, var_names=names)
        row["max_r_hat"] = max(float(np.max(rhat[n].values)) for n in names)
    ess = az.ess(idata, var_names=names, method="bulk")
    row["min_ess_bulk"] = min(float(np.min(ess[n].values)) for n in names)
    stats_ = idata.get("sample_stats")
    row["divergences"] = int(stats_["diverging"].sum()) if stats_ is not None and "diverging" in stats_ else 0
    return {name: _thinned_components(idata.posterior, name, thin) for name in names}


@dataclass
class _Run:
    """Ranks, interval coverage and diagnostics of the replicates of one SBC run."""

    names: tuple[str, ...]
    theta: np.ndarray
    ranks: np.ndarray
    covered: np.ndarray  # (replicates, P, len(COVERAGE_LEVELS)), NaN where the fit failed
    diagnostics: pd.DataFrame
    n_draws: int

    def result(self, label: str, priors: dict[str, Prior], bins: int | None, settings: dict[str, Any],
               seconds: float) -> SBCResult:
        """The :class:`SBCResult`: the failure warning, then the uniformity test per parameter."""
        replicates = self.ranks.shape[0]
        ok = ~np.isnan(self.ranks[:, 0])
        n_ok = int(ok.sum())
        failed = replicates - n_ok
        if failed:
            first = self.diagnostics.loc[self.diagnostics["status"] == "failed", "error"].iloc[0]
            warnings.warn(
                f"{failed} of {replicates} SBC replicates failed (first: {first}); the uniformity test uses "
                "the others and is conditional on success.",
                SBCWarning,
                stacklevel=3,
            )
        n_bins = default_bins(n_ok, self.n_draws) if bins is None else _check_int("bins", bins, 2)
        chi2: dict[str, float] = {}
        p_values: dict[str, float] = {}
        counts: dict[str, np.ndarray] = {}
        expected = n_ok * rank_bin_sizes(self.n_draws, n_bins) / (self.n_draws + 1)
        for j, name in enumerate(self.names):
            if n_ok:
                test = rank_uniformity(self.ranks[:, j], self.n_draws, n_bins)
                chi2[name], p_values[name], counts[name] = test.statistic, test.p_value, test.counts
            else:
                chi2[name], p_values[name], counts[name] = np.nan, np.nan, np.zeros(n_bins, dtype=np.int64)
        return SBCResult(
            model=label,
            param_names=self.names,
            priors=priors,
            n_draws=self.n_draws,
            n_bins=n_bins,
            true_values={name: self.theta[:, j].copy() for j, name in enumerate(self.names)},
            ranks={name: self.ranks[:, j].copy() for j, name in enumerate(self.names)},
            chi2=chi2,
            p_values=p_values,
            counts=counts,
            expected=expected,
            diagnostics=self.diagnostics,
            settings=settings,
            seconds=seconds,
            covered={name: self.covered[:, j, :].copy() for j, name in enumerate(self.names)},
        )


def run_replicates(label: str, names: tuple[str, ...], theta: np.ndarray, replicate, *, n_draws: int,
                   rep_seeds: np.ndarray, progress: bool) -> _Run:
    """The SBC loop shared by every model: per replicate, simulate and fit, then rank.

    Parameters
    ----------
    label
        Model name for the progress lines.
    names
        The ranked (scalar) parameters; ``theta[i, j]`` is parameter ``j``'s true value in
        replicate ``i``.
    replicate
        ``replicate(i, truth, sim_seed, fit_seed, row) -> {name: (L,) draws}``: simulates
        data set ``i`` from ``truth`` (name -> value), fits it and returns the thinned
        posterior draws of every name; fills the diagnostics ``row`` (``status``,
        ``n_fit``, ``n_repeat``, ``max_r_hat``, ``min_ess_bulk``, ``divergences``). Any
        exception but a :class:`_SetupError` is recorded as a failed replicate.
    n_draws
        ``L``, the draws each rank is computed among (checked).
    rep_seeds
        Shape (replicates, 3): the simulation, NUTS and tie-breaking seed of each replicate.
    progress
        Print one line per replicate to stderr.
    """
    replicates = theta.shape[0]
    ranks = np.full((replicates, len(names)), np.nan)
    covered = np.full((replicates, len(names), len(COVERAGE_LEVELS)), np.nan)
    tails = np.array([[(1.0 - c) / 2.0, (1.0 + c) / 2.0] for c in COVERAGE_LEVELS]).ravel()
    diag_rows: list[dict[str, Any]] = []
    for i in range(replicates):
        t0 = time.perf_counter()
        sim_seed, fit_seed, aux_seed = (int(s) for s in rep_seeds[i])
        aux_rng = np.random.default_rng(aux_seed)
        truth = dict(zip(names, (float(v) for v in theta[i]), strict=True))
        row: dict[str, Any] = {
            "status": "nuts",
            "n_fit": 0,
            "n_repeat": 0,
            "max_r_hat": np.nan,
            "min_ess_bulk": np.nan,
            "divergences": -1,
            "seconds": np.nan,
            "error": "",
        }
        try:
            thinned = replicate(i, truth, sim_seed, fit_seed, row)
            for j, name in enumerate(names):
                if thinned[name].shape != (n_draws,):
                    raise _SetupError(f"expected {n_draws} thinned draws of {name}, got {thinned[name].shape}.")
                ranks[i, j] = sbc_rank(truth[name], thinned[name], aux_rng)
                bounds = np.quantile(thinned[name], tails).reshape(-1, 2)
                covered[i, j] = (bounds[:, 0] <= truth[name]) & (truth[name] <= bounds[:, 1])
        except _SetupError:
            raise
        except Exception as exc:  # recorded, reported: a failure is itself a finding
            row["status"] = "failed"
            row["error"] = f"{type(exc).__name__}: {exc}"
            ranks[i, :] = np.nan
            covered[i] = np.nan
        row["seconds"] = time.perf_counter() - t0
        diag_rows.append(row)
        if progress:
            shown = " ".join(
                f"{n}={truth[n]:.3g}(rank {'-' if np.isnan(ranks[i, j]) else int(ranks[i, j])})"
                for j, n in enumerate(names)
            )
            print(
                f"[sbc {label} {i + 1}/{replicates}] {row['status']} {row['seconds']:.1f}s "
                f"n_fit={row['n_fit']} r_hat={row['max_r_hat']:.3f} div={row['divergences']} {shown}",
                file=sys.stderr,
                flush=True,
            )
    diagnostics = pd.DataFrame(diag_rows, index=pd.RangeIndex(replicates, name="replicate"))
    return _Run(names, np.asarray(theta, dtype=float), ranks, covered, diagnostics, n_draws)


def simulation_based_calibration(
    model_class: type[PurchaseModel] | type[GammaGammaModel],
    *,
    priors: Mapping[str, Prior] | None = None,
    n_customers: int,
    T: float | np.ndarray,
    replicates: int = 100,
    draws: int = 500,
    thin: int = 10,
    chains: int = 2,
    tune: int = 500,
    bins: int | None = None,
    bgnbd_params: Mapping[str, float] | None = None,
    seed: int,
    progress: bool = False,
    **fit_kwargs: Any,
) -> SBCResult:
    """Simulation-based calibration of a clvbayes Bayesian model (Talts et al. 2018).

    For each replicate: draw θ from the prior, simulate ``n_customers`` customers with
    :func:`clvbayes.simulate_customers`, fit ``model_class(data, priors=...)`` with
    ``fit(method="nuts", ...)``, keep every ``thin``-th draw of each chain (``L`` draws in
    all) and record the rank of each true parameter among them. Finally test each
    parameter's ranks for uniformity (:func:`rank_uniformity`).

    Parameters
    ----------
    model_class
        :class:`~clvbayes.BetaGeoModel` or :class:`~clvbayes.GammaGammaModel` (or a
        subclass).
    priors
        Priors for any subset of the parameters; the rest are the model's defaults
        resolved once for this design (see Notes). Every fit gets the complete set.
    n_customers
        Customers simulated per replicate. For Gamma-Gamma only the repeat buyers
        (frequency > 0) enter the fit, as in the model.
    T
        Customer ages (time from first purchase to the end of the period), a scalar or
        an array of length ``n_customers``, the same in every replicate.
    replicates
        Number of simulated data sets (Talts et al. use 1000; >= 100 gives a useful test).
    draws, chains, tune
        NUTS draws kept per chain, chains and tuning steps per chain.
    thin
        Keep every ``thin``-th draw of each chain, so that the ``L = chains ×
        ceil(draws / thin)`` draws ranked are close to independent (autocorrelated
        draws make ranks pile up at the ends even for a correct sampler; Talts et al.
        2018, section 5.1). ``min_ess_bulk`` in the diagnostics should exceed ``L``.
    bins
        Rank bins of the chi-square test; default: about 10 expected ranks per bin, at
        most 20 bins.
    bgnbd_params
        Gamma-Gamma only: the BG/NBD parameters ``r, alpha, a, b`` that generate the
        purchase frequencies (fixed, not calibrated: the Gamma-Gamma likelihood
        conditions on them). Default :data:`CDNOW_BGNBD_PARAMS` (weeks).
    seed
        Non-negative integer; the whole run is reproducible from it (prior draws,
        simulations and NUTS seeds are derived from it).
    progress
        Print one line per replicate to stderr.
    **fit_kwargs
        Passed to ``fit`` (e.g. ``sampler="pymc"``, ``target_accept=0.9``).

    Returns
    -------
    SBCResult

    Notes
    -----
    *Priors.* The prior that generates θ must be the prior every fit uses. The models'
    default priors depend on the data (BG/NBD alpha on the mean age, Gamma-Gamma gamma on
    the mean spend), so they are resolved once, before any simulation, and passed
    explicitly: for BG/NBD from the mean of the fixed ``T`` (which is what the model
    computes from every replicate's data, so the defaults are calibrated as users get
    them); for Gamma-Gamma at spend scale 1 (gamma is a scale parameter: the calibration
    is the same at any currency unit). Each fit's ``priors_`` is checked against them.

    *Uninformative data sets.* Prior draws sometimes give data with no repeat purchase
    at all. They are kept, never redrawn (redrawing would condition θ on the data and
    invalidate the test). BG/NBD still has a likelihood (the purchase rate is informed,
    dropout is not) and is fitted as usual. A Gamma-Gamma data set without repeat buyers
    has a constant likelihood, so the posterior is exactly the prior: the ``L`` draws are
    taken from the prior (``status="prior"`` in the diagnostics).

    *Failures.* A fit that raises is recorded as ``status="failed"`` with its error,
    its ranks are NaN, and an :class:`SBCWarning` is issued: the uniformity test on the
    remaining replicates is then conditional on success and no longer a clean check.
    """
    if not (isinstance(model_class, type) and issubclass(model_class, PurchaseModel | GammaGammaModel)
            and (not issubclass(model_class, PurchaseModel) or "family" in dir(model_class))):
        raise TypeError(
            "model_class must be a purchase model (BetaGeoModel, ParetoNBDModel, ModifiedBetaGeoModel, ...) "
            f"or GammaGammaModel, got {model_class!r}."
        )
    if "method" in fit_kwargs:
        raise TypeError("SBC fits with method='nuts'; do not pass method.")
    for key in ("random_seed", "progressbar"):
        if key in fit_kwargs:
            raise TypeError(f"SBC sets {key} itself (from seed / progress); do not pass it.")
    n_customers = _check_int("n_customers", n_customers, 1)
    replicates = _check_int("replicates", replicates, 1)
    draws = _check_int("draws", draws, 1)
    thin = _check_int("thin", thin, 1)
    chains = _check_int("chains", chains, 1)
    tune = _check_int("tune", tune, 0)
    seed = _check_int("seed", seed, 0)
    T_arr = np.asarray(T, dtype=float)
    if T_arr.ndim == 0:
        T_arr = np.full(n_customers, float(T_arr))
    if T_arr.shape != (n_customers,) or not (np.all(np.isfinite(T_arr)) and np.all(T_arr > 0)):
        raise ValueError(f"T must be a positive scalar or {n_customers} positive ages.")
    gamma_gamma = issubclass(model_class, GammaGammaModel)
    if gamma_gamma:
        freq_params = dict(CDNOW_BGNBD_PARAMS if bgnbd_params is None else bgnbd_params)
        if set(freq_params) != {"r", "alpha", "a", "b"}:
            raise ValueError(f"bgnbd_params needs exactly r, alpha, a, b; got {sorted(freq_params)}.")
    elif bgnbd_params is not None:
        raise ValueError("bgnbd_params is for GammaGammaModel only (BG/NBD draws them from the prior).")

    names = tuple(model_class.param_names)
    fixed = _fixed_priors(model_class, priors, T_arr)
    n_draws = chains * len(range(0, draws, thin))

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    prior_seed, prior_only_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=2))
    # per replicate: simulation seed, NUTS seed, seed for ties
    rep_seeds = rng.integers(0, 2**31 - 1, size=(replicates, 3))
    theta = draw_priors(fixed, names, replicates, prior_seed)
    prior_only_draws: list[np.ndarray] = []

    def replicate(i: int, truth: dict[str, float], sim_seed: int, fit_seed: int, row: dict) -> dict[str, np.ndarray]:
        if gamma_gamma:
            sim = simulate_customers(**freq_params, T=T_arr, n_customers=n_customers, seed=sim_seed, **truth)
            data = sim.loc[sim["frequency"] > 0, ["frequency", "monetary_value"]]
        elif model_class.family is BGNBD:
            sim = simulate_customers(**truth, T=T_arr, n_customers=n_customers, seed=sim_seed)
            data = sim[["frequency", "recency", "T"]]
        else:
            sim = _simulate_family(model_class.family, truth, T_arr, sim_seed)
            data = sim
        row["n_repeat"] = int((sim["frequency"] > 0).sum())
        row["n_fit"] = int(data.shape[0])
        if data.shape[0] == 0:
            # no repeat buyer: constant Gamma-Gamma likelihood, posterior = prior
            row["status"] = "prior"
            if not prior_only_draws:  # drawn once, for every replicate that needs it
                prior_only_draws.append(draw_priors(fixed, names, replicates * n_draws, prior_only_seed))
            block = prior_only_draws[0][i * n_draws : (i + 1) * n_draws]
            row["divergences"] = 0
            return {name: block[:, j] for j, name in enumerate(names)}
        model = model_class(data, priors=fixed)
        if model.priors_ != fixed:
            raise _SetupError(
                f"{model_class.__name__} resolved priors {model.priors_} instead of the SBC priors {fixed}."
            )
        return nuts_draws(model, names, row, chains=chains, draws=draws, tune=tune, thin=thin, seed=fit_seed,
                          fit_kwargs=fit_kwargs)

    run = run_replicates(model_class.__name__, names, theta, replicate, n_draws=n_draws, rep_seeds=rep_seeds,
                         progress=progress)
    settings = {
        "n_customers": n_customers,
        "T_mean": float(np.mean(T_arr)),
        "replicates": replicates,
        "draws": draws,
        "thin": thin,
        "chains": chains,
        "tune": tune,
        "seed": seed,
        "bgnbd_params": freq_params if gamma_gamma else None,
        "fit_kwargs": dict(fit_kwargs),
    }
    return run.result(model_class.__name__, fixed, bins, settings, time.perf_counter() - start)
