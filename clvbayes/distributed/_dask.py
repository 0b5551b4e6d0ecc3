"""Optional Dask support: detection of Dask inputs and a clear error when Dask is missing."""

from __future__ import annotations

import importlib.util
import os

__all__ = ["DASK_EXTRA_HINT", "has_dask", "is_dask_collection", "require_dask"]

DASK_EXTRA_HINT = 'pip install "clvbayes[dask]"'


def has_dask() -> bool:
    """True when ``dask.dataframe`` can be imported."""
    return importlib.util.find_spec("dask") is not None and importlib.util.find_spec("dask.dataframe") is not None


def is_dask_collection(obj: object) -> bool:
    """True for a Dask DataFrame or Series, without importing Dask when it is not loaded.

    A Dask object can only exist if its module was imported, so the check looks at the
    object's type module rather than importing Dask (which costs ~1 s).
    """
    module = type(obj).__module__ or ""
    return module.startswith("dask.") or module.startswith("dask_expr")


def require_dask(what: str):
    """Import and return ``dask.dataframe``, or raise ``ImportError`` naming the extra.

    Parameters
    ----------
    what
        What needed Dask, for the message (e.g. ``"rfm_summary on a Parquet path"``).
    """
    try:
        import dask.dataframe as dd
    except ImportError as err:  # pragma: no cover - exercised by monkeypatching in tests
        raise ImportError(
            f"{what} needs Dask, which is not installed. Install the optional extra: {DASK_EXTRA_HINT}"
        ) from err
    return dd


def is_distributed_input(obj: object) -> bool:
    """True for a Dask DataFrame or a str/path (read as Parquet); never imports Dask."""
    return isinstance(obj, str | os.PathLike) or is_dask_collection(obj)
