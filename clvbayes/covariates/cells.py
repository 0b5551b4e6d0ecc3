"""Cell parameters of customers of a fitted covariate model, from their attributes alone.

A covariate model (:class:`~clvbayes.CovariatePurchaseModel`, :class:`~clvbayes.HierarchicalPurchaseModel`,
:class:`~clvbayes.CovariateSpendModel`) gives a customer the parameters
``θ_{i,p} = base_{s(i),p} · exp(sign_p · z_i' γ_p)`` (the links of :mod:`clvbayes.models.covariate`
and :mod:`clvbayes.models.covariate_spend`; ``s(i)`` the customer's segment for the
hierarchical model, else one segment). :func:`link_factors` holds that formula on draws;
the models compute their cells' parameters with it.

:class:`CellEncoder` holds what the formula needs and nothing about the fitted customers:
the base and coefficient draws on the value grid, the fitted designs' encodings (levels,
centres and scales, without their matrices) and the segment labels. It encodes any table
of customers with their attribute columns the way the fit did
(:meth:`~clvbayes.covariates.design.Design.transform`: unseen levels and missing values are
errors naming the column and the customers) and returns their
:class:`~clvbayes.value.draws.CellDraws`. The Dask scorer ships it to the workers, which
encode each partition on its own (:mod:`clvbayes.distributed.scoring`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clvbayes.covariates.design import Design, _check_missing
from clvbayes.data.validate import DataValidationError, _examples
from clvbayes.value.draws import CellDraws, CellFactor, CellValues, _Grid, pairing_index

__all__ = ["CellEncoder", "link_factors", "max_cells"]

#: parameter -> (coefficient vector name, design side, sign in the exponent)
Links = Mapping[str, tuple[str, str, float]]


def link_factors(param_names: tuple[str, ...], base: Mapping[str, np.ndarray],
                 coefficients: Mapping[str, np.ndarray], z: Mapping[str, np.ndarray], links: Links,
                 n_rows: int, row: np.ndarray | None = None) -> dict[str, CellFactor]:
    """``base_{s(c),p} · exp(sign · z[side]_c γ)`` for every row ``c`` of the design and every
    draw, as factors (:class:`~clvbayes.value.draws.CellFactor`: made into arrays block by
    block, or whole by :class:`~clvbayes.value.draws.CellValues` when read).

    Parameters
    ----------
    param_names
        The parameters.
    base
        Per parameter: draws of shape (n_segments, D) (one row: shared by every row).
    coefficients
        Coefficient vector name -> draws, shape (D, n_terms).
    z
        Design side -> its rows, shape (n_rows, n_terms of that side).
    links
        Parameter -> (coefficient name, side, sign); parameters without an entry (or whose
        coefficient is absent) are the base.
    n_rows
        Rows of the design.
    row
        Each row's segment (index into ``base``'s first axis); None with one base row.
    """
    out = {}
    for p in param_names:
        b = np.ascontiguousarray(np.atleast_2d(np.asarray(base[p], dtype=float)))
        if p in links and links[p][0] in coefficients:
            name, side, sign = links[p]
            coef = np.ascontiguousarray(np.asarray(coefficients[name], dtype=float).reshape(b.shape[1], -1))
            out[p] = CellFactor(b, n_rows, row, np.ascontiguousarray(z[side], dtype=float), coef, float(sign))
        else:
            out[p] = CellFactor(b, n_rows, row)
    return out


def _slim(design: Design | None) -> Design | None:
    """The design without its per-customer matrix and ids (transform does not read them)."""
    if design is None:
        return None
    return dataclasses.replace(design, matrix=np.zeros((0, design.n_terms)), customer_ids=None)


@dataclass(frozen=True)
class CellEncoder(_Grid):
    """A fitted covariate model's cell parameters for any customers, from their attributes.

    Attributes
    ----------
    param_names : tuple of str
        The model's parameters (the family's, or ``p, q, gamma``).
    base : dict[str, numpy.ndarray]
        Per parameter: draws of shape (n_segments, D) (one segment without pooling).
    coefficients : dict[str, numpy.ndarray]
        Coefficient vector name -> draws (D, n_terms).
    links : dict
        Parameter -> (coefficient name, side, sign) (:func:`link_factors`).
    designs : dict[str, Design or None]
        Side -> the fitted design without its matrix.
    segment : str or None
        The segment column (hierarchical model), else None.
    segments : tuple of str
        The fitted segment labels, in the order of ``base``'s first axis.
    chain, draw, source, family
        As :class:`~clvbayes.value.draws.CellDraws`.
    """

    param_names: tuple[str, ...]
    base: dict[str, np.ndarray]
    coefficients: dict[str, np.ndarray]
    links: dict[str, tuple[str, str, float]]
    designs: dict[str, Design | None]
    segment: str | None
    segments: tuple[str, ...]
    chain: np.ndarray
    draw: np.ndarray
    source: str
    family: str | None

    @classmethod
    def build(cls, param_names, base, coefficients, links, designs, chain, draw, source, family, *,
              segment: str | None = None, segments=()) -> CellEncoder:
        """From a model's draws (``base[p]`` shape (D,) or (D, n_segments))."""
        base = {p: np.ascontiguousarray(np.asarray(base[p], dtype=float).reshape(len(draw) * len(chain), -1).T)
                for p in param_names}
        links = {p: link for p, link in links.items() if link[0] in coefficients}
        return cls(tuple(param_names), base, {k: np.asarray(v, dtype=float) for k, v in coefficients.items()},
                   links, {side: _slim(d) for side, d in designs.items()}, segment, tuple(str(s) for s in segments),
                   np.asarray(chain), np.asarray(draw), source, family)

    @property
    def columns(self) -> tuple[str, ...]:
        """The attribute columns a customer table must hold (covariates, then the segment)."""
        cols = [c for d in self.designs.values() if d is not None for c in d.columns]
        return tuple(dict.fromkeys(cols + ([self.segment] if self.segment else [])))

    @property
    def categorical_only(self) -> bool:
        return all(d is None or d.categorical_only for d in self.designs.values())

    def on_grid(self, n: int, chain: np.ndarray, draw: np.ndarray) -> CellEncoder:
        """The draws thinned or repeated evenly to ``n`` (the pairing of
        :func:`clvbayes.value.draws.joint_draws`) on the grid ``chain``, ``draw``."""
        index = pairing_index(int(next(iter(self.base.values())).shape[1]), n)
        return dataclasses.replace(
            self, base={p: np.ascontiguousarray(v[:, index]) for p, v in self.base.items()},
            coefficients={k: np.ascontiguousarray(v[index]) for k, v in self.coefficients.items()},
            chain=np.asarray(chain), draw=np.asarray(draw))

    def _segment_codes(self, frame: pd.DataFrame) -> np.ndarray:
        if self.segment is None:
            return np.zeros(len(frame), dtype=np.int64)
        ids = np.asarray(frame.index)
        values = frame[self.segment]
        _check_missing(values, self.segment, ids)
        text = values.astype(str).to_numpy()
        pos = pd.Index(self.segments).get_indexer(text)
        unknown = pos < 0
        if unknown.any():
            raise DataValidationError(
                f"Segment column {self.segment!r} has segments the model was not fitted with: "
                f"{_examples(text[unknown])} (customers {_examples(ids[unknown])}). Known segments: "
                f"{list(self.segments)}. A pooled model has parameters for its fitted segments only: refit with "
                "these customers, or map them to a fitted segment."
            )
        return pos.astype(np.int64)

    def cell_draws(self, frame: pd.DataFrame) -> CellDraws:
        """The customers of ``frame`` (rows: customers, with the attribute columns) as
        :class:`~clvbayes.value.draws.CellDraws`: a cell per distinct (segment, design row).

        Raises
        ------
        DataValidationError
            For a missing column, a missing value, a level or a segment the fit did not see
            (naming the column and the customers).
        """
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"The customers have no attribute column {', '.join(map(repr, missing))} of the fitted model "
                f"(columns present: {list(frame.columns)}): join the attributes first."
            )
        z = {side: (np.zeros((len(frame), 0)) if d is None else d.transform(frame)) for side, d in self.designs.items()}
        sides = list(z)
        stacked = np.column_stack([self._segment_codes(frame).astype(float), *(z[s] for s in sides)])
        rows, cell = np.unique(stacked, axis=0, return_inverse=True)
        bounds = np.cumsum([1] + [z[s].shape[1] for s in sides])
        z_rows = {s: np.ascontiguousarray(rows[:, bounds[j]:bounds[j + 1]]) for j, s in enumerate(sides)}
        seg = rows[:, 0].astype(np.int64)
        values = CellValues(link_factors(self.param_names, self.base, self.coefficients, z_rows, self.links,
                                         rows.shape[0], seg))
        return CellDraws(values, np.ascontiguousarray(cell.reshape(-1), dtype=np.int64), self.chain, self.draw,
                         self.source, self.family)


def max_cells(*encoders: CellEncoder) -> float:
    """Most distinct combined cells customers valued with these encoders can fall in: the
    segments times the levels of every categorical covariate column (a column shared by
    several sides or models counted once); ``inf`` with a numeric covariate."""
    if not all(e.categorical_only for e in encoders):
        return math.inf
    levels = {c: len(v) for e in encoders for d in e.designs.values() if d is not None for c, v in d.levels.items()}
    segments = max([len(e.segments) for e in encoders] + [1])
    return float(segments * math.prod(levels.values()))
