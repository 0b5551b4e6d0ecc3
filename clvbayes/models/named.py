"""Named model classes of the families beyond BG/NBD (one class line each).

Each is :class:`~clvbayes.models.purchase.PurchaseModel` bound to its family; every method,
fit, prediction, save/load and value function works the same for all of them.
"""

from __future__ import annotations

__all__: list[str] = []
