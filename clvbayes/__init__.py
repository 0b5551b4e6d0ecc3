"""clvbayes: Bayesian customer lifetime value with BG/NBD and Gamma-Gamma models.

The public API:

- data: :func:`read_transactions` (CSV/Parquet), :func:`rfm_summary`,
  :func:`calibration_holdout_split`, :mod:`clvbayes.datasets`;
- models: :class:`BetaGeoModel` (purchase frequency and dropout) and
  :class:`GammaGammaModel` (spend per transaction);
- priors and checks: :class:`Prior`, :class:`ConvergenceDiagnosticWarning`,
  :class:`WeakIdentificationWarning`,
  :func:`simulation_based_calibration`;
- simulation: :func:`simulate_customers`;
- customer value over the posterior (:mod:`clvbayes.value`): :func:`customer_lifetime_value`,
  :func:`customer_metrics`, :func:`customer_equity`, :func:`value_concentration`,
  :func:`churn_analysis`, :func:`lifecycle_stages`; heuristics and holdout validation in
  :mod:`clvbayes.value.heuristics` and :mod:`clvbayes.value.validation`;
- model comparison by exact PSIS-LOO over all customers: :func:`compare_models`,
  :func:`weighted_loo` (:mod:`clvbayes.comparison`);
- plots with credible bands: :mod:`clvbayes.plotting`;
- the whole job (what ``clvbayes demo`` / ``clvbayes fit`` run): :mod:`clvbayes.workflow`
  and the report folder :mod:`clvbayes.report`.
"""

from clvbayes import datasets, plotting
from clvbayes._version import __version__
from clvbayes.comparison import compare_models, weighted_loo
from clvbayes.data.compress import compress_rows
from clvbayes.data.read import read_attributes, read_transactions
from clvbayes.data.api import calibration_holdout_split, rfm_summary
from clvbayes.data.validate import AmbiguousDateWarning, DataValidationError
from clvbayes.models.base import NotFittedError
from clvbayes.models.bayesian import ConvergenceDiagnosticWarning
from clvbayes.models.bgnbd import BetaGeoModel
from clvbayes.models.gamma_gamma import GammaGammaModel
from clvbayes.models.identification import WeakIdentificationWarning
from clvbayes.models.mle import ConvergenceWarning
from clvbayes.models.named import ModifiedBetaGeoModel, ParetoNBDModel
from clvbayes.models.purchase import PurchaseModel, load_model, model_class
from clvbayes.models.covariate import CovariatePurchaseModel
from clvbayes.models.covariate_spend import CovariateSpendModel
from clvbayes.models.hierarchical import HierarchicalPurchaseModel
from clvbayes.models.priors import Prior
from clvbayes.sbc import simulation_based_calibration
from clvbayes.simulation import simulate_customers
from clvbayes.value import (
    CustomerValue,
    churn_analysis,
    customer_equity,
    customer_lifetime_value,
    customer_metrics,
    heuristics,
    holdout_validation,
    lifecycle_stages,
    new_customer_forecast,
    probability_alive,
    purchase_tracking,
    stage_summary,
    value_concentration,
)

__all__ = [
    "__version__",
    "datasets",
    "plotting",
    "read_transactions",
    "read_attributes",
    "rfm_summary",
    "calibration_holdout_split",
    "compress_rows",
    "AmbiguousDateWarning",
    "DataValidationError",
    "NotFittedError",
    "ConvergenceWarning",
    "ConvergenceDiagnosticWarning",
    "WeakIdentificationWarning",
    "Prior",
    "simulation_based_calibration",
    "BetaGeoModel",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "PurchaseModel",
    "CovariatePurchaseModel",
    "CovariateSpendModel",
    "HierarchicalPurchaseModel",
    "model_class",
    "load_model",
    "simulate_customers",
    "CustomerValue",
    "customer_metrics",
    "customer_lifetime_value",
    "probability_alive",
    "customer_equity",
    "value_concentration",
    "new_customer_forecast",
    "churn_analysis",
    "lifecycle_stages",
    "stage_summary",
    "heuristics",
    "holdout_validation",
    "purchase_tracking",
    "compare_models",
    "weighted_loo",
]
