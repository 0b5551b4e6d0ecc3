"""MBG/NBD (Batislam, Denizel & Filiztekin 2007, "Empirical validation and comparison of
models for customer base analysis", International Journal of Research in Marketing 24(3),
201-209; conditional expectation corrected by Wagner & Hoppe 2008, IJRM 25(3), 225-226).

As BG/NBD, but the customer may also drop out right after the first purchase (at time 0):
every purchase, the first included, is followed by a dropout chance p. The math lives in
:mod:`clvbayes.kernels.mbgnbd`, on BG/NBD's kernels at shifted parameters; this module
registers it.
"""

from __future__ import annotations

import numpy as np

from clvbayes.families._protocol import CORES, Family, register
from clvbayes.kernels import clv as _clv
from clvbayes.kernels import mbgnbd as _k
from clvbayes.kernels.bgnbd import prepare as prepare_times


def default_priors(mean_T: float) -> dict:
    """BG/NBD's default priors (:func:`clvbayes.models.priors.default_bgnbd_priors`):
    ``r ~ HalfNormal(5)``, ``alpha ~ HalfNormal(5 mean_T)``, ``a ~ HalfNormal(5)``,
    ``b ~ HalfNormal(20)``.

    The four parameters mean the same in both models (λ ~ Gamma(r, rate α) per time unit,
    p ~ Beta(a, b) per purchase), so the same weakly informative scales apply; the one extra
    dropout chance at time 0 changes neither their units nor their plausible ranges (the
    CDNOW estimates of the two models, 0.24/4.4/0.79/2.4 and 0.53/6.2/0.89/1.6, lie well
    inside the same priors).
    """
    from clvbayes.models.priors import default_bgnbd_priors

    return default_bgnbd_priors(mean_T)


def factor_table(quantity: int, r: np.ndarray, alpha: np.ndarray, a: np.ndarray, b: np.ndarray, ux: np.ndarray,
                 uT: np.ndarray, udelta: np.ndarray, horizon: float) -> np.ndarray:
    """The value engine's factor tables: BG/NBD's Chebyshev tables
    (:func:`clvbayes.kernels.clv.clv_factor_table`) at b + 1, since given alive at T an
    MBG/NBD customer is a BG/NBD customer at (r+x, α+T, a, (b+1)+x)."""
    return _clv.clv_factor_table(quantity, r, alpha, a, b + 1.0, ux, uT, udelta, horizon)


MBGNBD = register(
    Family(
        name="mbgnbd",
        label="MBG/NBD",
        param_names=("r", "alpha", "a", "b"),
        reference=(
            "Batislam, Denizel & Filiztekin (2007), 'Empirical validation and comparison of "
            "models for customer base analysis', International Journal of Research in "
            "Marketing 24(3), 201-209"
        ),
        default_priors=default_priors,
        cores={name: getattr(_k, name) for name in CORES},
        # BG/NBD's tabulated likelihood at b + 1 (plus a pass over the few x = 0 rows) and,
        # since the value factor is BG/NBD's at (r+x, α+T, a, b+x+1), its tables at b + 1.
        fast={
            "prepare_sums": prepare_times,
            "loglik_sum": _k.loglik_sum_prepared,
            "loglik_sum_grad": _k.loglik_sum_grad_prepared,
            "loglik_rows": _k.loglik_rows,
            "factor_table": factor_table,
        },
        interpolate_in_log_age=True,
        latent_names=("lambda", "p_drop"),
    )
)
