"""Column names and table markers shared by the data layer, the models and Dask.

Kept apart from the models so that the data and distributed layers need not import PyMC.
"""

from __future__ import annotations

__all__ = ["WEIGHT_COLUMN", "WEIGHTS_ATTR"]

#: Column of a compressed customer table: number of identical customers the row stands for.
WEIGHT_COLUMN = "customers"
#: Key in ``DataFrame.attrs`` naming the weight column; set by
#: :func:`clvbayes.distributed.compress_summary`. Only a table carrying it is weighted, so
#: a column that happens to be called ``customers`` is never taken for counts.
WEIGHTS_ATTR = "clvbayes_weights"
