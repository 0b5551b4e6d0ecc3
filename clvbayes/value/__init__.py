"""Customer value over the posterior: CLV, P(alive), expected purchases, equity, churn.

Each function evaluates its quantity per (parameter draw, customer) with the Numba kernels
of :mod:`clvbayes.kernels.clv` and summarises over the draws, streaming over blocks of
customers so that a million customers and thousands of draws fit in memory.

- :mod:`~clvbayes.value.draws`: posterior (or point) draws, BG/NBD and Gamma-Gamma paired;
  per-cell draws of models with covariates (each customer valued at its cell's parameters);
- :mod:`~clvbayes.value.customers`: validated inputs, margins, discounting convention, segments;
- :mod:`~clvbayes.value.engine`: the streamed pass (per cell, or per customer, with covariates);
- :mod:`~clvbayes.value.quantities`: per-customer results (:class:`CustomerValue`);
- :mod:`~clvbayes.value.equity`: customer equity, acquisition/retention, value concentration;
- :mod:`~clvbayes.value.new_customers`: customers not yet acquired, planned cohorts, by profile;
- :mod:`~clvbayes.value.churn`, :mod:`~clvbayes.value.lifecycle`: churn analytics, stages;
- :mod:`~clvbayes.value.heuristics`: the rules of thumb, for comparison;
- :mod:`~clvbayes.value.validation`: holdout validation and tracking;
- :mod:`~clvbayes.value.plotdata`: what the plots of :mod:`clvbayes.plotting` draw.
"""

from clvbayes.value import heuristics
from clvbayes.value.customers import DEFAULT_ANNUAL_DISCOUNT_RATE
from clvbayes.value.churn import ChurnReport, churn_analysis, churn_report, lost_threshold
from clvbayes.value.equity import CustomerEquity, customer_equity, new_customer_value, value_concentration
from clvbayes.value.lifecycle import STAGES, lifecycle_stages, stage_summary
from clvbayes.value.new_customers import NewCustomerForecast, new_customer_forecast
from clvbayes.value.validation import HoldoutValidation, holdout_validation, purchase_tracking
from clvbayes.value.plotdata import (
    customer_purchase_times,
    frequency_recency_grid,
    pareto_curve,
    period_transactions,
    probability_alive_history,
)
from clvbayes.value.quantities import (
    QUANTITIES,
    CustomerValue,
    customer_lifetime_value,
    customer_metrics,
    dert,
    expected_purchases,
    expected_spend,
    probability_alive,
    probability_of_purchases,
)

__all__ = [
    "DEFAULT_ANNUAL_DISCOUNT_RATE",
    "frequency_recency_grid",
    "period_transactions",
    "probability_alive_history",
    "customer_purchase_times",
    "pareto_curve",
    "QUANTITIES",
    "CustomerValue",
    "customer_metrics",
    "customer_lifetime_value",
    "probability_alive",
    "expected_purchases",
    "probability_of_purchases",
    "dert",
    "expected_spend",
    "CustomerEquity",
    "customer_equity",
    "new_customer_value",
    "NewCustomerForecast",
    "new_customer_forecast",
    "value_concentration",
    "ChurnReport",
    "churn_analysis",
    "churn_report",
    "lost_threshold",
    "STAGES",
    "lifecycle_stages",
    "stage_summary",
    "heuristics",
    "HoldoutValidation",
    "holdout_validation",
    "purchase_tracking",
]
