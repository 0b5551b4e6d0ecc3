"""Named model classes of the families beyond BG/NBD (one class line each).

Each is :class:`~clvbayes.models.purchase.PurchaseModel` bound to its family; every method,
fit, prediction, save/load and value function works the same for all of them.
"""

from __future__ import annotations

from clvbayes.families.mbgnbd import MBGNBD
from clvbayes.families.pareto_nbd import PARETO_NBD
from clvbayes.models.purchase import PurchaseModel

__all__ = ["ParetoNBDModel", "ModifiedBetaGeoModel"]


class ParetoNBDModel(PurchaseModel):
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987): Poisson purchases at rate
    λ ~ Gamma(r, α) during an exponential lifetime of rate μ ~ Gamma(s, β)
    (:mod:`clvbayes.families.pareto_nbd`). Parameters ``r, alpha, s, beta``."""

    family = PARETO_NBD


class ModifiedBetaGeoModel(PurchaseModel):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007): BG/NBD with a dropout chance after every
    purchase, the first included (:mod:`clvbayes.families.mbgnbd`). Parameters ``r, alpha, a, b``."""

    family = MBGNBD
