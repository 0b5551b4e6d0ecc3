"""Bayesian model comparison by PSIS-LOO that scales to millions of customers.

- :mod:`~clvbayes.comparison.psis`: Pareto-smoothed importance sampling per row (Numba);
- :mod:`~clvbayes.comparison.pointwise`: a model's draws, distinct histories and their
  pointwise log-likelihood; ArviZ's per-customer ``log_likelihood`` group for small fits;
- :mod:`~clvbayes.comparison.loo`: :func:`weighted_loo`, exact PSIS-LOO over all customers
  from their distinct histories weighted by counts;
- :mod:`~clvbayes.comparison.compare`: :func:`compare_models`, the ranking table.
"""

from clvbayes.comparison.compare import compare_models
from clvbayes.comparison.loo import ParetoKWarning, WeightedLoo, weighted_loo
from clvbayes.comparison.pointwise import log_likelihood_dataset
from clvbayes.comparison.psis import psislw

__all__ = ["compare_models", "weighted_loo", "WeightedLoo", "ParetoKWarning", "log_likelihood_dataset", "psislw"]
