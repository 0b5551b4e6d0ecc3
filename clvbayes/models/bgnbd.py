"""BG/NBD model of purchase frequency and dropout (Fader, Hardie & Lee 2005)."""

from __future__ import annotations

from clvbayes.families.bgnbd import BGNBD
from clvbayes.models.purchase import PurchaseModel

__all__ = ["BetaGeoModel"]


class BetaGeoModel(PurchaseModel):
    """Beta-geometric/negative binomial (BG/NBD) model of repeat purchasing.

    While alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after
    each repeat purchase the customer drops out with probability p ~ Beta(a, b)
    (Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing Science
    24(2), 275-284).

    Parameters
    ----------
    data
        Customer summary with columns ``frequency``, ``recency`` and ``T`` (one row per
        customer, e.g. from :func:`clvbayes.rfm_summary`). Used for fitting and as the
        default for predictions. Not modified. A compressed table with a ``customers``
        column (identical customers per row, e.g. from
        :func:`clvbayes.distributed.compress_summary`) fits exactly like the full summary;
        per-customer predictions on it are per row.
    priors
        Optional ``{name: Prior}`` replacing some default priors of the Bayesian model
        (see :mod:`clvbayes.models.priors`).

    Attributes
    ----------
    params_ : pandas.Series
        ``r, alpha, a, b`` after :meth:`fit_mle` or :meth:`from_params`.
    log_likelihood_, standard_errors_, covariance_
        Set by :meth:`fit_mle`. The log-likelihood is that of the data on its own time
        scale (it changes with the time unit).

    Examples
    --------
    >>> import clvbayes
    >>> rfm = clvbayes.calibration_holdout_split(  # doctest: +SKIP
    ...     clvbayes.datasets.load_cdnow_sample(), calibration_end="1997-09-30")
    >>> model = clvbayes.BetaGeoModel(rfm).fit_mle()  # doctest: +SKIP
    >>> model.params_.round(4)  # doctest: +SKIP
    r        0.2426
    alpha    4.4136
    a        0.7929
    b        2.4259
    """

    family = BGNBD
