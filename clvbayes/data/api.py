"""The public summaries: one entry point for pandas frames, Dask frames and Parquet paths.

:func:`rfm_summary` and :func:`calibration_holdout_split` hand a Dask DataFrame or a
Parquet path to :mod:`clvbayes.distributed.summary` and anything else to the pandas
implementations of :mod:`clvbayes.data.rfm` and :mod:`clvbayes.data.split`. Living above
both, this module keeps the import graph acyclic: the pandas layer knows nothing of Dask,
and the Dask layer builds on the pandas one.
"""

from __future__ import annotations

import functools

from clvbayes.data import rfm as _rfm
from clvbayes.data import split as _split
from clvbayes.distributed._dask import is_distributed_input

__all__ = ["rfm_summary", "calibration_holdout_split"]


@functools.wraps(_rfm.rfm_summary)
def rfm_summary(transactions, **kwargs):
    if is_distributed_input(transactions):
        from clvbayes.distributed.summary import rfm_summary_dask

        _rfm._no_date_unit_on_dask(kwargs.pop("date_unit", None))
        return rfm_summary_dask(transactions, **kwargs)
    return _rfm.rfm_summary(transactions, **kwargs)


@functools.wraps(_split.calibration_holdout_split)
def calibration_holdout_split(transactions, **kwargs):
    if is_distributed_input(transactions):
        from clvbayes.distributed.summary import calibration_holdout_split_dask

        _rfm._no_date_unit_on_dask(kwargs.pop("date_unit", None))
        return calibration_holdout_split_dask(transactions, **kwargs)
    return _split.calibration_holdout_split(transactions, **kwargs)
