"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987, "Counting your customers: who are they
and what will they do next?", Management Science 33(1), 1-24).

While alive a customer buys as a Poisson process of rate λ ~ Gamma(r, rate α); the lifetime
is exponential with rate μ ~ Gamma(s, rate β), independent of λ. The math (likelihood and
its gradient, P(alive), predictions, DERT, value factors, simulation) lives in
:mod:`clvbayes.kernels.pareto_nbd`, the likelihood on data with few distinct times in
:mod:`clvbayes.kernels.pareto_nbd_grid`; this module registers them.
"""

from __future__ import annotations

from clvbayes.families._protocol import Family, register
from clvbayes.kernels import pareto_nbd as _k
from clvbayes.kernels import pareto_nbd_grid as _grid


def default_priors(mean_T: float) -> dict:
    """Default Pareto/NBD priors; ``mean_T`` is the mean customer age in the data's unit.

    - ``r ~ HalfNormal(5)``, ``alpha ~ HalfNormal(5 mean_T)``: the purchase-rate
      heterogeneity, exactly as for BG/NBD (:mod:`clvbayes.models.priors`): the same gamma
      mixing of λ, so the same reasons.
    - ``s ~ HalfNormal(5)``: the shape of the dropout-rate heterogeneity; the coefficient of
      variation of μ is 1/sqrt(s), and published fits lie in 0.1-5 (CDNOW: 0.61).
    - ``beta ~ HalfNormal(5 mean_T)``: like α, β is a *time scale* (μ ~ Gamma(s, rate β) has
      mean s/β per time unit, and the Lomax lifetime has scale β: P(τ > t) = (β/(β+t))^s),
      so it changes with the time unit in proportion to ``mean_T``. Scaling by ``mean_T``
      makes the prior the same in days and weeks and puts the prior median lifetime scale
      near a few observation periods (CDNOW: β = 11.7 weeks with mean T = 32.7 weeks).
    """
    from clvbayes.models.priors import Prior

    return {
        "r": Prior("HalfNormal", sigma=5.0),
        "alpha": Prior("HalfNormal", sigma=5.0 * float(mean_T)),
        "s": Prior("HalfNormal", sigma=5.0),
        "beta": Prior("HalfNormal", sigma=5.0 * float(mean_T)),
    }


#: From this many customers NUTS runs at nutpie's default target_accept 0.8 (see nuts_defaults).
LARGE_DATA = 100_000


def nuts_defaults(n_customers: int) -> dict:
    """NUTS settings of a Pareto/NBD fit to ``n_customers`` customers.

    On small data the likelihood is a long ridge in (s, β) (s and β growing together at a
    fixed mean dropout rate s/β: the limit of no dropout heterogeneity): on CDNOW with the
    default priors, 4 x (1000 + 1000) draws, 35-71 divergences at nutpie's default
    target_accept 0.8, none at 0.95. From :data:`LARGE_DATA` customers the posterior is
    concentrated and near Gaussian, and 0.95 only shortens the steps: at 10^5 simulated
    customers 0 divergences at both, 3.5 instead of 6.4 gradient evaluations per iteration
    and a larger ESS (benchmarks/results/pnbd_sampling_coords_*.md).
    """
    return {"target_accept": 0.8 if n_customers >= LARGE_DATA else 0.95}


PARETO_NBD = register(
    Family(
        name="pnbd",
        label="Pareto/NBD",
        param_names=("r", "alpha", "s", "beta"),
        reference=(
            "Schmittlein, Morrison & Colombo (1987), 'Counting your customers: who are they and "
            "what will they do next?', Management Science 33(1), 1-24; Fader & Hardie (2005), "
            "'A note on deriving the Pareto/NBD model and related expressions'"
        ),
        default_priors=default_priors,
        cores={
            "loglik_one": _k.loglik_one,
            "loglik_grad_one": _k.loglik_grad_one,
            "p_alive_one": _k.p_alive_one,
            "expected_purchases_one": _k.expected_purchases_one,
            "pmf_one": _k.pmf_one,
            "conditional_expected_purchases_one": _k.conditional_expected_purchases_one,
            "conditional_pmf_one": _k.conditional_pmf_one,
            "dert_one": _k.dert_one,
            "alive_factor_one": _k.alive_factor_one,
            "replicate_one": _k.replicate_one,
            "holdout_replicate_one": _k.holdout_replicate_one,
            "latent_one": _k.latent_one,
            "drops_out_one": _k.drops_out_one,
        },
        # The likelihood on the data's distinct times (one quadrature per x for all rows),
        # the per-row kernel where that cannot guarantee its accuracy.
        fast={
            "prepare": _grid.prepare,
            "loglik_rows": _grid.loglik_rows,
            "loglik_sum": _grid.loglik_sum,
            "loglik_sum_grad": _grid.loglik_sum_grad,
        },
        nuts_defaults=nuts_defaults,
        finite_total_param="s",
        finite_total_why=("a customer alive now stays for an exponential lifetime of mean 1/μ, μ ~ Gamma(s, β + T), "
                          "and E[1/μ] = (β + T)/(s - 1) is finite only for s > 1"),
        interpolate_in_log_age=False,
        latent_names=("lambda", "mu", "lifetime"),
    )
)
