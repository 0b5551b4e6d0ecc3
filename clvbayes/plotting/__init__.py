"""Plots with credible bands (matplotlib).

Each ``plot_*`` function draws one figure type on a matplotlib Axes and returns it: a new
figure from ``plt.subplots()`` when ``ax`` is None, else the given Axes (nothing else is
touched: no ``plt.gca()``, no rcParams). The numbers drawn come from public functions
that return DataFrames (:mod:`clvbayes.value.plotdata`, :func:`clvbayes.holdout_validation`,
:func:`clvbayes.purchase_tracking`, :func:`clvbayes.customer_equity`), so every plot can be
reproduced or restyled from its data. Bands are the ``hdi_prob`` HDI (94% by default) over
the posterior draws; with a point estimate (``fit_mle``, ``from_params``) there is no band,
or, for the predictive plots, a band of the purchase process's noise only.

- :func:`plot_frequency_recency_matrix`, :func:`plot_probability_alive_matrix`:
  heatmaps over frequency x recency (module :mod:`~clvbayes.plotting.grids`);
- :func:`plot_period_transactions`: observed vs predicted repeat purchases per customer
  (:mod:`~clvbayes.plotting.fit`);
- :func:`plot_calibration_holdout`, :func:`plot_purchase_tracking`: validation
  (:mod:`~clvbayes.plotting.validation`);
- :func:`plot_probability_alive_history`: one customer over time
  (:mod:`~clvbayes.plotting.customer`);
- :func:`plot_equity_posterior`, :func:`plot_pareto`, :func:`plot_equity_by_segment`:
  customer value (:mod:`~clvbayes.plotting.value`);
- :func:`plot_coefficients`: covariate effects with their HDIs
  (:mod:`~clvbayes.plotting.covariates`).
"""

from clvbayes.plotting.covariates import plot_coefficients
from clvbayes.plotting.customer import plot_probability_alive_history
from clvbayes.plotting.fit import plot_period_transactions
from clvbayes.plotting.grids import plot_frequency_recency_matrix, plot_probability_alive_matrix
from clvbayes.plotting.validation import plot_calibration_holdout, plot_purchase_tracking
from clvbayes.plotting.value import plot_equity_by_segment, plot_equity_posterior, plot_pareto

__all__ = [
    "plot_frequency_recency_matrix",
    "plot_probability_alive_matrix",
    "plot_period_transactions",
    "plot_calibration_holdout",
    "plot_purchase_tracking",
    "plot_probability_alive_history",
    "plot_equity_posterior",
    "plot_pareto",
    "plot_equity_by_segment",
    "plot_coefficients",
]
