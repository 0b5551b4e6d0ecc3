"""BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way: an alternative
to the Pareto/NBD model", Marketing Science 24(2), 275-284).

While alive a customer buys as a Poisson process of rate λ ~ Gamma(r, rate α); right after
each repeat purchase they drop out with probability p ~ Beta(a, b). The math lives in
:mod:`clvbayes.kernels.bgnbd` (likelihood, eq. 6), :mod:`clvbayes.kernels.bgnbd_predict`
(P(alive), eqs. 8-10, DERT), :mod:`clvbayes.kernels.clv` (the value factors given alive) and
:mod:`clvbayes.kernels.predictive` (predictive replicates) and
:mod:`clvbayes.kernels.simulate` (event-by-event simulation); this module registers it.
"""

from __future__ import annotations

from clvbayes.families._protocol import Family, register
from clvbayes.kernels import bgnbd as _ll
from clvbayes.kernels import bgnbd_predict as _pred
from clvbayes.kernels import clv as _clv
from clvbayes.kernels import predictive as _sim
from clvbayes.kernels import simulate as _evsim


def default_priors(mean_T: float) -> dict:
    """``r ~ HalfNormal(5)``, ``alpha ~ HalfNormal(5 mean_T)``, ``a ~ HalfNormal(5)``,
    ``b ~ HalfNormal(20)`` (reasons in :mod:`clvbayes.models.priors`)."""
    from clvbayes.models.priors import default_bgnbd_priors

    return default_bgnbd_priors(mean_T)


BGNBD = register(
    Family(
        name="bgnbd",
        label="BG/NBD",
        param_names=("r", "alpha", "a", "b"),
        reference=(
            "Fader, Hardie & Lee (2005), 'Counting your customers the easy way: an alternative "
            "to the Pareto/NBD model', Marketing Science 24(2), 275-284"
        ),
        default_priors=default_priors,
        cores={
            "loglik_one": _ll.bgnbd_loglik_one,
            "loglik_grad_one": _ll.bgnbd_loglik_grad_one,
            "p_alive_one": _pred.p_alive_one,
            "expected_purchases_one": _pred.expected_purchases_one,
            "pmf_one": _pred.pmf_one,
            "conditional_expected_purchases_one": _pred.conditional_expected_purchases_one,
            "conditional_pmf_one": _pred.conditional_pmf_one,
            "dert_one": _pred.dert_one,
            "alive_factor_one": _clv.alive_factor_one,
            "replicate_one": _sim.bgnbd_replicate_one,
            "holdout_replicate_one": _sim.bgnbd_holdout_replicate_one,
            "latent_one": _evsim.latent_one,
            "drops_out_one": _evsim.drops_out_one,
        },
        # The tabulated likelihood (one table of x-terms per call) and the Chebyshev value
        # tables are faster than the generic drivers; those remain their test reference.
        # The sums read ln(1 + t/α) from a table over the data's distinct times (prepare_sums).
        fast={
            "prepare_sums": _ll.prepare,
            "loglik_sum": _ll.bgnbd_loglik_sum_prepared,
            "loglik_sum_grad": _ll.bgnbd_loglik_sum_grad_prepared,
            "loglik_rows": _ll.bgnbd_loglik,
            "factor_table": _clv.clv_factor_table,
            "fill": _clv._fill,
        },
        interpolate_in_log_age=True,
        latent_names=("lambda", "p_drop"),
    )
)
