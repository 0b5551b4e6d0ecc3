"""clvbayes on Dask: summaries of logs too large for one machine, compressed for fitting,
and customers scored partition by partition.

Dask is an optional extra (``pip install "clvbayes[dask]"``). Importing this package does
not import Dask; the functions do, and raise an ``ImportError`` naming the extra when it
is missing. :func:`clvbayes.rfm_summary` and :func:`clvbayes.calibration_holdout_split`
route Dask DataFrames and Parquet paths here by themselves.
"""

from clvbayes.distributed.summary import (
    BGNBD_COLUMNS,
    GAMMA_GAMMA_COLUMNS,
    WEIGHT_COLUMN,
    calibration_holdout_split_dask,
    compress_summary,
    is_distributed_input,
    rfm_summary_dask,
)
from clvbayes.distributed.scoring import DaskScores, score_customers

__all__ = [
    "BGNBD_COLUMNS",
    "GAMMA_GAMMA_COLUMNS",
    "WEIGHT_COLUMN",
    "calibration_holdout_split_dask",
    "compress_summary",
    "is_distributed_input",
    "rfm_summary_dask",
    "score_customers",
    "DaskScores",
]
