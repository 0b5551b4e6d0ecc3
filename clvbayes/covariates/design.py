"""Design matrices of static customer covariates, with the checks a model needs.

A covariate enters a BTYD model through ``exp(Z_i · β)`` scaling one population parameter
(e.g. ``α_i = α0 exp(-Z_i γ)``; each family states its link). This module only builds
``Z`` from named columns of a customer table and records how, so that coefficients can be
reported on the scale of the data and new customers can be encoded the same way.

Encoding (decided here, documented in ``docs/guide/covariates.md``):

- **numeric** columns (integer, float, boolean) are *standardised*: ``z = (v - mean) / sd``
  (population sd). Centring makes the baseline parameter that of an average customer and
  puts every coefficient on "per standard deviation"; :meth:`Design.unstandardise` turns a
  coefficient back into "per unit of the column" (``β / sd``) and the baseline's log shift
  (``-Σ β mean / sd``).
- **categorical** columns (text, pandas ``category``, or any column named in
  ``categorical=``) use *treatment coding*: one 0/1 column ``"col[level]"`` per level except
  the reference level, which is the most frequent level (ties: the first in sorted order)
  unless ``reference={col: level}`` names another. A coefficient is then the log ratio of
  the parameter between that level and the reference level. Dummies are not standardised.

Checks (each raises :class:`~clvbayes.data.validate.DataValidationError` naming the column,
the customers and the fix; nothing is dropped or imputed silently): a missing column, missing
(NaN/None) or infinite values, text in a numeric column, a constant column, a level seen in
fewer than ``min_level_count`` customers, and perfectly collinear columns (the design with an
intercept must have full column rank: a dummy trap across two categorical columns, a column
that is a linear combination of others).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clvbayes.data.validate import DataValidationError, _examples

__all__ = ["Design", "build_design"]

# Relative singular value below which the (intercept + standardised) design is rank deficient.
_RANK_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class Design:
    """A covariate design: the matrix and everything needed to read or reuse it.

    Attributes
    ----------
    matrix : np.ndarray
        Shape (n_customers, n_terms), float64: standardised numeric columns and 0/1 dummies.
    names : tuple of str
        One name per term: the column name for a numeric column, ``"col[level]"`` for a dummy.
    columns : tuple of str
        The source columns, in the order given.
    center, scale : np.ndarray
        Per term: mean and sd used to standardise (0 and 1 for dummies).
    levels : dict
        Categorical column -> its levels, the reference level first.
    customer_ids : np.ndarray
        The customers the rows belong to (the table's id column, or its index).
    """

    matrix: np.ndarray
    names: tuple[str, ...]
    columns: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    levels: dict[str, tuple] = field(default_factory=dict)
    customer_ids: np.ndarray | None = None

    @property
    def n_terms(self) -> int:
        return len(self.names)

    @property
    def categorical_only(self) -> bool:
        """True when every term is a dummy: customers then fall in few design cells, and
        identical (x, t_x, T, cell) rows can be compressed as without covariates."""
        return all(c in self.levels for c in self.columns)

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct design rows and each customer's index among them.

        Returns
        -------
        unique_rows : np.ndarray
            Shape (n_cells, n_terms).
        cell : np.ndarray
            int64, length n_customers: the row of ``unique_rows`` of each customer.
        """
        if self.n_terms == 0:
            return np.zeros((1, 0)), np.zeros(self.matrix.shape[0], dtype=np.int64)
        unique_rows, cell = np.unique(self.matrix, axis=0, return_inverse=True)
        return unique_rows, cell.reshape(-1).astype(np.int64)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode other customers (e.g. planned new ones) exactly as this design did.

        Parameters
        ----------
        frame : pandas.DataFrame
            Holds every source column; categorical values must be levels seen in the data.

        Returns
        -------
        np.ndarray
            Shape (len(frame), n_terms).
        """
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"The frame has no column {', '.join(map(repr, missing))} of the covariate design "
                f"(columns present: {list(frame.columns)})."
            )
        ids = np.asarray(frame.index)
        parts = []
        for col in self.columns:
            values = frame[col]
            _check_missing(values, col, ids)
            if col in self.levels:
                levels = self.levels[col]
                text = values.astype(object).to_numpy()
                unknown = ~pd.Series(text).isin(list(levels)).to_numpy()
                if unknown.any():
                    raise DataValidationError(
                        f"Column {col!r} has levels the model was not fitted with: "
                        f"{_examples(text[unknown])} (rows {_examples(ids[unknown])}). Known levels: "
                        f"{list(levels)}."
                    )
                parts.append(np.column_stack([(text == lv).astype(np.float64) for lv in levels[1:]]))
            else:
                v = _numeric(values, col, ids)
                j = self.names.index(col)
                parts.append(((v - self.center[j]) / self.scale[j])[:, None])
        return np.hstack(parts) if parts else np.zeros((len(frame), 0))

    def unstandardise(self, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients per unit of the data and the log shift of the baseline parameter.

        With ``z = (v - c)/s``, ``Σ β z = Σ (β/s) v - Σ β c/s``: the per-unit coefficient
        is ``β/s`` and the baseline parameter of a customer with all numeric covariates at 0
        (and reference levels) is the fitted one times ``exp(-Σ β c / s)``.

        Parameters
        ----------
        coefficients : np.ndarray
            Shape (..., n_terms) on the standardised scale (draws may lead).

        Returns
        -------
        per_unit : np.ndarray
            Same shape: ``β / scale`` (dummies unchanged).
        log_baseline_shift : np.ndarray
            Shape (...): ``-Σ β center / scale``.
        """
        beta = np.asarray(coefficients, dtype=np.float64)
        per_unit = beta / self.scale
        return per_unit, -(per_unit * self.center).sum(axis=-1)


def _check_missing(values: pd.Series, col: str, ids: np.ndarray) -> None:
    bad = values.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            f"Covariate column {col!r} is missing for {int(bad.sum())} customers ({_examples(ids[bad])}). "
            "A model cannot guess them: fill them (e.g. with an explicit 'unknown' level for a category, "
            "or a value and an indicator column for a number) or drop those customers first."
        )


def _numeric(values: pd.Series, col: str, ids: np.ndarray) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64)
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    text = np.isnan(v) & values.notna().to_numpy()
    if text.any():
        raise DataValidationError(
            f"Covariate column {col!r} holds numbers and text (e.g. {_examples(values.to_numpy()[text])} for "
            f"customers {_examples(ids[text])}). Treat it as categorical (categorical=[{col!r}]) or fix "
            "those values."
        )
    inf = np.isinf(v)
    if inf.any():
        raise DataValidationError(
            f"Covariate column {col!r} is infinite for customers {_examples(ids[inf])}: replace those values."
        )
    return v


def _is_categorical(values: pd.Series) -> bool:
    """Text and ``category`` columns are categorical; numbers and booleans are not. A text
    column in which some values read as numbers is treated as numeric, so that
    :func:`_numeric` names the values that do not (a stray "n/a" in an age column)."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return False
    if isinstance(values.dtype, pd.CategoricalDtype):
        return True
    parsed = pd.to_numeric(values, errors="coerce")
    return not parsed.notna().any()


def _levels(values: pd.Series, col: str, reference: object | None) -> tuple:
    counts = values.astype(object).value_counts(sort=False)
    # Most frequent first, ties in sorted order (str() so mixed level types still sort).
    order = sorted(counts.index, key=lambda lv: (-int(counts[lv]), str(lv)))
    if reference is not None:
        if reference not in counts.index:
            raise DataValidationError(
                f"reference={{{col!r}: {reference!r}}} is not a level of column {col!r} "
                f"(levels: {sorted(map(str, counts.index))})."
            )
        order.remove(reference)
        order.insert(0, reference)
    return tuple(order)


def _check_rank(matrix: np.ndarray, names: Sequence[str]) -> None:
    """The design with an intercept must have full column rank (else coefficients are not
    identified: infinitely many give the same likelihood)."""
    n, k = matrix.shape
    if k == 0:
        return
    if n <= k:
        raise DataValidationError(
            f"{n} customers cannot identify {k} covariate terms and a baseline: use fewer covariates."
        )
    full = np.column_stack([np.ones(n), matrix])
    # Columns scaled to unit norm, so the smallest singular value measures dependence.
    _, sv, vt = np.linalg.svd(full / np.sqrt((full**2).sum(axis=0)), full_matrices=False)
    if sv[-1] > _RANK_TOL * sv[0]:
        return
    null = np.abs(vt[-1])
    terms = ["(intercept)", *names]
    involved = [terms[j] for j in np.flatnonzero(null > 1e-6 * null.max()) if j > 0]
    raise DataValidationError(
        "The covariates are perfectly collinear: "
        + ", ".join(map(repr, involved))
        + " (with the intercept) are linearly dependent, so their effects cannot be told apart. "
        "Drop one of them, or merge categorical columns that encode the same grouping (e.g. a "
        "region column that is determined by the country column)."
    )


def build_design(
    customers: pd.DataFrame,
    columns: Sequence[str],
    *,
    categorical: Sequence[str] = (),
    reference: Mapping[str, object] | None = None,
    customer_id: str | None = "customer_id",
    min_level_count: int = 2,
) -> Design:
    """Build the covariate design of ``columns`` of a customer table (one row per customer).

    Parameters
    ----------
    customers : pandas.DataFrame
        One row per customer, e.g. an RFM summary joined with customer attributes
        (:func:`clvbayes.covariates.join_attributes`).
    columns : sequence of str
        Covariate columns, in the order their terms should appear.
    categorical : sequence of str, optional
        Numeric columns to treat as categorical (e.g. a store number). Text and pandas
        ``category`` columns are categorical anyway.
    reference : mapping, optional
        Categorical column -> its reference level (default: the most frequent level).
    customer_id : str or None, default "customer_id"
        Column naming the customers in error messages and :attr:`Design.customer_ids`; the
        index is used when None or absent.
    min_level_count : int, default 2
        Fewest customers a level must have. A level of one customer has a coefficient that
        only that customer (and the prior) informs; merge rare levels, or pass 1 to allow it.

    Returns
    -------
    Design

    Raises
    ------
    DataValidationError
        For the problems listed in the module docstring.
    """
    if not isinstance(customers, pd.DataFrame):
        raise TypeError(f"customers must be a pandas DataFrame, got {type(customers).__name__}.")
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    columns = list(columns)
    reference = dict(reference or {})
    if len(set(columns)) != len(columns):
        raise DataValidationError(f"Covariate columns are listed twice: {_examples([c for c in columns if columns.count(c) > 1])}.")
    missing = [c for c in columns + list(categorical) + list(reference) if c not in customers.columns]
    if missing:
        raise DataValidationError(
            f"The customer table has no column {', '.join(map(repr, dict.fromkeys(missing)))}. Columns present: "
            f"{list(customers.columns)}."
        )
    stray = [c for c in list(categorical) + list(reference) if c not in columns]
    if stray:
        raise DataValidationError(f"{_examples(stray)} named in categorical=/reference= but not in the covariate columns {columns}.")
    if customers.shape[0] == 0:
        raise DataValidationError("The customer table is empty: no customers to build a design for.")
    ids = (customers[customer_id] if customer_id is not None and customer_id in customers.columns
           else customers.index).to_numpy()
    blocks, names, center, scale, levels = [], [], [], [], {}
    for col in columns:
        values = customers[col]
        _check_missing(values, col, ids)
        if col in categorical or _is_categorical(values):
            lv = _levels(values, col, reference.get(col))
            if len(lv) < 2:
                raise DataValidationError(
                    f"Covariate column {col!r} has one level ({lv[0]!r}) for every customer: it cannot explain "
                    "differences between them. Drop it."
                )
            text = values.astype(object).to_numpy()
            counts = pd.Series(text).value_counts()
            rare = [v for v in lv if counts[v] < min_level_count]
            if rare:
                who = np.isin(text, np.array(rare, dtype=object))
                raise DataValidationError(
                    f"Covariate column {col!r} has levels seen in fewer than {min_level_count} customers: "
                    f"{_examples(rare)} (customers {_examples(ids[who])}). Their effect would rest on those "
                    "customers alone: merge rare levels (e.g. into 'other'), or pass min_level_count=1 "
                    "(--min-level-count 1) to keep them."
                )
            levels[col] = lv
            for level in lv[1:]:
                blocks.append((text == level).astype(np.float64))
                names.append(f"{col}[{level}]")
                center.append(0.0)
                scale.append(1.0)
        else:
            v = _numeric(values, col, ids)
            sd = float(v.std())
            if not sd > 0.0 or sd < 1e-12 * max(1.0, float(np.abs(v).max())):
                raise DataValidationError(
                    f"Covariate column {col!r} is constant ({v[0]:g} for every customer): it cannot explain "
                    "differences between them. Drop it."
                )
            blocks.append((v - v.mean()) / sd)
            names.append(col)
            center.append(float(v.mean()))
            scale.append(sd)
    matrix = np.column_stack(blocks) if blocks else np.zeros((customers.shape[0], 0))
    _check_rank(matrix, names)
    return Design(
        matrix=np.ascontiguousarray(matrix, dtype=np.float64),
        names=tuple(names),
        columns=tuple(columns),
        center=np.array(center),
        scale=np.array(scale),
        levels=levels,
        customer_ids=ids,
    )
