"""Parameter draws for the value computations: a posterior, or a point estimate as one draw.

Every value function of :mod:`clvbayes.value` evaluates its quantity once per parameter
draw and summarises over the draws. A fitted Bayesian model supplies its posterior draws;
a model with only point estimates (``fit_mle()``, ``from_params``) supplies one draw, so
the same code gives point predictions (sd NaN, intervals collapsed to the point).

**Joint BG/NBD x Gamma-Gamma draws.** The two models have separate likelihoods and
independent priors, so their joint posterior is the product of the two posteriors, and
pairing the k-th BG/NBD draw with the k-th Gamma-Gamma draw of two independent chains of
samples is a sample from it. CLV uses each such pair as it is (draw by draw), never a
posterior mean of either model.

**Draws in place of models.** Every value function takes a fitted model *or* its
:class:`ParameterDraws` (:func:`parameter_draws`, or a part of :func:`joint_draws` taken by
:meth:`ParameterDraws.select`): the draws are all the value engine reads from a model. This
is how the Dask scorer ships a few arrays to its workers instead of fitted models
(:mod:`clvbayes.distributed.scoring`), and how spend alone is computed without a purchase
model (``bgnbd=None``).

**Models with covariates.** A model whose parameters depend on each customer's covariates
gives :class:`CellDraws` (one parameter vector per cell of customers); :func:`joint_cell_draws`
pairs a purchase and a spend side, either of which may have cells, into
:class:`JointCellDraws` (combined cells: the customers' distinct (purchase cell, spend cell)
pairs), which the value engine reads in place of :class:`ParameterDraws`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ParameterDraws", "CellDraws", "CellFactor", "CellValues", "JointCellDraws", "parameter_draws", "joint_draws",
           "joint_cell_draws", "has_cells"]

GG_PARAMS = ("p", "q", "gamma")


class _Grid:
    """The (chain, draw) grid of a set of draws (``chain``, ``draw`` coordinates)."""

    chain: np.ndarray
    draw: np.ndarray

    @property
    def n(self) -> int:
        """Number of draws (chains x draws per chain)."""
        return int(self.chain.shape[0] * self.draw.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(chains, draws per chain)."""
        return int(self.chain.shape[0]), int(self.draw.shape[0])


@dataclass(frozen=True)
class ParameterDraws(_Grid):
    """Parameter draws on a (chain, draw) grid, flattened chain by chain.

    Attributes
    ----------
    values : dict[str, numpy.ndarray]
        One contiguous float64 array of length ``n = len(chain) * len(draw)`` per parameter,
        in chain-major order (draw varies fastest).
    chain, draw : numpy.ndarray
        Coordinates of the grid (for a point estimate: one chain 0 and one draw 0).
    source : str
        ``"posterior"`` or ``"point"``.
    family : str or None
        The purchase model family the draws' purchase parameters belong to
        (:mod:`clvbayes.families`; None: no purchase model, e.g. spend only).
    """

    values: dict[str, np.ndarray]
    chain: np.ndarray
    draw: np.ndarray
    source: str
    family: str | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def select(self, names: Sequence[str], family: str | None = None) -> ParameterDraws:
        """The draws of the parameters ``names`` only, on the same grid and with the same
        source: e.g. the purchase part (``family`` its name) or the spend part (``family``
        None) of :func:`joint_draws`, which :func:`joint_draws` pairs back identically.

        Raises
        ------
        KeyError
            For a name these draws do not have.
        """
        return ParameterDraws({k: self.values[k] for k in names}, self.chain, self.draw, self.source, family)

    def thin(self, n_draws: int | None) -> ParameterDraws:
        """Keep about ``n_draws`` draws in all: evenly spaced draws, the same positions in
        every chain (``ceil(n_draws / chains)`` per chain), so the grid stays a grid."""
        n_chain, n_draw = self.shape
        if n_draws is None or n_draws >= self.n:
            return self
        flat, keep = grid_index(n_chain, n_draw, n_draws)
        values = {k: np.ascontiguousarray(v[flat]) for k, v in self.values.items()}
        return ParameterDraws(values, self.chain, self.draw[keep].copy(), self.source, self.family)


@dataclass(frozen=True)
class CellFactor:
    """One parameter's draws in every cell, held as the factors of the covariate link.

    ``value[c, d] = base[row[c], d] * exp(sign * z[c] . coef[d])``: ``base`` the population
    draws (one row; a hierarchical model: one row per segment, ``row`` each cell's segment),
    ``z`` each cell's design row and ``coef`` the coefficient draws (None: not linked).
    Held this way a model with one cell per customer costs O(customers x terms + draws x
    terms) memory instead of O(customers x draws); :meth:`rows` makes the values of the cells
    a block of customers needs.
    """

    base: np.ndarray
    n_cells: int
    row: np.ndarray | None = None
    z: np.ndarray | None = None
    coef: np.ndarray | None = None
    sign: float = 1.0

    @property
    def shared(self) -> np.ndarray | None:
        """The (n,) draws when every cell has the same ones (one base row, no link), else None."""
        linked = self.z is not None and self.z.shape[1] > 0
        return None if linked or self.base.shape[0] != 1 else self.base[0]

    def rows(self, cells: np.ndarray) -> np.ndarray:
        """The values of ``cells`` (int array), shape (len(cells), n), C-contiguous."""
        cells = np.asarray(cells, dtype=np.int64)
        out = self.base[self.row[cells]] if self.row is not None else np.repeat(self.base, cells.shape[0], axis=0)
        if self.z is not None and self.z.shape[1] > 0:
            z = self.z[cells]
            # term by term (not BLAS): the same bits for any subset of cells
            eta = z[:, 0, None] * self.coef[None, :, 0]
            for j in range(1, z.shape[1]):
                eta += z[:, j, None] * self.coef[None, :, j]
            out = out * np.exp(self.sign * eta)
        return np.ascontiguousarray(out, dtype=np.float64)

    def take(self, index: np.ndarray) -> CellFactor:
        """The factors of the draws at positions ``index``."""
        coef = None if self.coef is None else np.ascontiguousarray(self.coef[index])
        return CellFactor(np.ascontiguousarray(self.base[:, index]), self.n_cells, self.row, self.z, coef, self.sign)

    def check(self, what: str, name: str) -> None:
        """Refuse non-finite or non-positive base draws and non-finite coefficients."""
        ok = np.isfinite(self.base).all() and (self.base > 0).all()
        if self.coef is not None:
            ok = ok and np.isfinite(self.coef).all()
        if not ok:
            raise ValueError(f"The cell draws of {name} of this {what} must be positive and finite.")


class CellValues(Mapping):
    """``name -> (n_cells, n)`` draws computed from :class:`CellFactor` on first use.

    Reads as a dict of arrays (a full array is made, and kept, when a parameter is indexed);
    the value engine reads the blocks it needs through :func:`cell_rows` instead, so a model
    with a cell per customer never holds all customers' draws at once.
    """

    def __init__(self, factors: Mapping[str, CellFactor]) -> None:
        self.factors = dict(factors)
        self._full: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._full:
            f = self.factors[name]
            self._full[name] = f.rows(np.arange(f.n_cells))
        return self._full[name]

    def __iter__(self):
        return iter(self.factors)

    def __len__(self) -> int:
        return len(self.factors)

    @property
    def n_cells(self) -> int:
        return next(iter(self.factors.values())).n_cells

    def take(self, index: np.ndarray) -> CellValues:
        return CellValues({k: f.take(index) for k, f in self.factors.items()})

    def select(self, names: Sequence[str]) -> CellValues:
        return CellValues({k: self.factors[k] for k in names})


def cell_rows(values: Mapping[str, np.ndarray], name: str, cells: np.ndarray) -> np.ndarray:
    """``values[name][cells]`` as a C-contiguous (len(cells), n) array, without making every
    cell's draws when ``values`` is :class:`CellValues`."""
    if isinstance(values, _Sides):
        values = values.side(name)
    if isinstance(values, CellValues):
        return values.factors[name].rows(cells)
    return np.ascontiguousarray(values[name][cells], dtype=np.float64)


def block_draws(values: Mapping[str, np.ndarray], names: Sequence[str],
                cells: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The draws of ``names`` for the distinct cells among ``cells`` (a block of customers),
    ``(len(used), n)`` each by :func:`cell_rows`, and each customer's row among them (int64)."""
    used, local = np.unique(cells, return_inverse=True)
    return (tuple(cell_rows(values, k, used) for k in names),
            np.ascontiguousarray(local.reshape(-1), dtype=np.int64))


def shared_draws(values: Mapping[str, np.ndarray], name: str) -> np.ndarray | None:
    """The (n,) draws of ``name`` when every cell has the same ones, else None."""
    if isinstance(values, _Sides):
        values = values.side(name)
    if isinstance(values, CellValues):
        return values.factors[name].shared
    v = values[name]
    return np.ascontiguousarray(v[0]) if (v == v[:1]).all() else None


def _take_draws(values: Mapping[str, np.ndarray], index: np.ndarray) -> Mapping[str, np.ndarray]:
    """Every cell's draws at positions ``index`` (last axis)."""
    if isinstance(values, CellValues):
        return values.take(index)
    return {k: np.ascontiguousarray(v[..., index]) for k, v in values.items()}


@dataclass(frozen=True)
class CellDraws(_Grid):
    """Parameter draws of a model with covariates: one parameter vector per *cell*.

    Customers with the same covariate row (a design cell; with segments, the same segment
    and covariate row) share their parameters. ``values[name][c]`` are the draws of the
    parameter ``name`` in cell ``c``; ``cell[i]`` is customer i's cell (the customers in the
    order of the model's data). A model without covariates is one cell.

    Attributes
    ----------
    values : dict[str, numpy.ndarray] or CellValues
        One float64 array of shape ``(n_cells, n)`` per parameter, draws on a (chain, draw)
        grid flattened chain by chain as in :class:`ParameterDraws`; from a model,
        :class:`CellValues` (the link's factors, each array made when it is read).
    cell : numpy.ndarray
        int64 cell index per customer, in ``range(n_cells)``.
    chain, draw : numpy.ndarray
        Coordinates of the grid (a point estimate: one chain 0 and one draw 0).
    source : str
        ``"posterior"`` or ``"point"``.
    family : str or None
        As :class:`ParameterDraws`.
    """

    values: Mapping[str, np.ndarray]
    cell: np.ndarray
    chain: np.ndarray
    draw: np.ndarray
    source: str
    family: str | None = None

    @property
    def n_cells(self) -> int:
        if isinstance(self.values, CellValues):
            return self.values.n_cells
        return int(next(iter(self.values.values())).shape[0])

    def for_cell(self, c: int) -> ParameterDraws:
        """The draws of cell ``c`` as plain :class:`ParameterDraws` (the same grid)."""
        one = np.array([c], dtype=np.int64)
        return ParameterDraws({k: cell_rows(self.values, k, one)[0] for k in self.values}, self.chain,
                              self.draw, self.source, self.family)

    def select(self, names: Sequence[str]) -> CellDraws:
        """The draws of the parameters ``names`` only."""
        values = self.values.select(names) if isinstance(self.values, CellValues) else {
            k: self.values[k] for k in names}
        return CellDraws(values, self.cell, self.chain, self.draw, self.source, self.family)

    def thin(self, n_draws: int | None) -> CellDraws:
        """Keep about ``n_draws`` draws, as :meth:`ParameterDraws.thin` (the same positions)."""
        n_chain, n_draw = self.shape
        if n_draws is None or n_draws >= self.n:
            return self
        flat, keep = grid_index(n_chain, n_draw, n_draws)
        return CellDraws(_take_draws(self.values, flat), self.cell, self.chain, self.draw[keep].copy(), self.source, self.family)


@dataclass(frozen=True)
class JointCellDraws(_Grid):
    """Purchase and spend draws of models with per-customer parameters, paired.

    Combined cells are the distinct (purchase cell, spend cell) pairs of the customers; a
    model without covariates is one cell on its side. Draws are paired position by position
    as :func:`joint_draws` pairs them. The value engine (:func:`clvbayes.value.engine.stream`)
    reads it in place of :class:`ParameterDraws`.

    Attributes
    ----------
    purchase, spend : CellDraws or None
        Each side's draws per its own cells (values ``(cells of that side, n)``) on the common
        grid; None for a side that is not used. Their ``cell`` follows the customers of the
        value computation (not a model's data order).
    cell : numpy.ndarray
        int64 combined cell of each customer.
    pairs : numpy.ndarray
        int64 ``(n_cells, 2)``: the purchase and the spend cell of each combined cell.
    chain, draw, source, family
        As :class:`ParameterDraws`.
    """

    purchase: CellDraws | None
    spend: CellDraws | None
    cell: np.ndarray
    pairs: np.ndarray
    chain: np.ndarray
    draw: np.ndarray
    source: str
    family: str | None = None

    @property
    def n_cells(self) -> int:
        return int(self.pairs.shape[0])

    @property
    def values(self) -> Mapping[str, np.ndarray]:
        """Every parameter's draws over its side's cells, shape (cells of that side, n), each
        made when it is read."""
        return _Sides([side.values for side in (self.purchase, self.spend) if side is not None])

    def __getitem__(self, name: str) -> np.ndarray:
        """All draws of a parameter over its side's cells, flattened (for range checks); the
        (n,) draws when every cell has the same ones."""
        shared = shared_draws(self.values, name)
        return shared if shared is not None else self.values[name].reshape(-1)

    def for_cell(self, c: int) -> ParameterDraws:
        """The paired draws of combined cell ``c`` as plain :class:`ParameterDraws`."""
        values = {}
        for side, k in ((self.purchase, 0), (self.spend, 1)):
            if side is not None:
                values.update(side.for_cell(int(self.pairs[c, k])).values)
        return ParameterDraws(values, self.chain, self.draw, self.source, self.family)


class _Sides(Mapping):
    """The parameters of a purchase and a spend side as one mapping (nothing copied)."""

    def __init__(self, sides: Sequence[Mapping[str, np.ndarray]]) -> None:
        self._sides = list(sides)

    def side(self, name: str) -> Mapping[str, np.ndarray]:
        for side in self._sides:
            if name in side:
                return side
        raise KeyError(name)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.side(name)[name]

    def __iter__(self):
        return (k for side in self._sides for k in side)

    def __len__(self) -> int:
        return sum(len(side) for side in self._sides)


def grid_index(n_chain: int, n_draw: int, n_draws: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions (chain-major) and kept draw positions when thinning a (chain, draw)
    grid to about ``n_draws`` draws (the same positions in every chain, as
    :meth:`ParameterDraws.thin`)."""
    if n_draws is None or n_draws >= n_chain * n_draw:
        keep = np.arange(n_draw)
    else:
        keep = _thin_index(n_draw, -(-n_draws // n_chain))
    return (np.arange(n_chain)[:, None] * n_draw + keep[None, :]).reshape(-1), keep


def _check_n_draws(n_draws: object) -> int | None:
    if n_draws is None:
        return None
    if isinstance(n_draws, bool) or not isinstance(n_draws, numbers.Integral) or n_draws < 1:
        raise ValueError(f"n_draws must be None or a positive integer, got {n_draws!r}.")
    return int(n_draws)


def _thin_index(n: int, k: int | None) -> np.ndarray:
    """``k`` evenly spaced positions of ``range(n)`` (all when None or k >= n)."""
    if k is None or k >= n:
        return np.arange(n)
    return np.unique(np.floor(np.arange(k) * (n / k)).astype(np.int64))


def parameter_draws(model, n_draws: int | None = None) -> ParameterDraws:
    """The draws of one model: its posterior if it has one, else its point estimate.

    Parameters
    ----------
    model
        A purchase model (:class:`~clvbayes.BetaGeoModel`, any family) or a
        :class:`~clvbayes.GammaGammaModel` after ``fit()`` (posterior),
        ``fit_mle()``/``fit(method="map")``/``from_params`` (point); or a
        :class:`ParameterDraws`, returned as it is (thinned to ``n_draws``).
    n_draws
        Keep about this many draws, evenly spaced within each chain (:meth:`ParameterDraws.thin`;
        default: all). Thinning, not random: the same call gives the same draws.

    Returns
    -------
    ParameterDraws

    Raises
    ------
    clvbayes.NotFittedError
        When the model has neither a posterior nor parameters.
    ValueError
        For non-positive or non-finite draws.
    """
    n_draws = _check_n_draws(n_draws)
    if isinstance(model, ParameterDraws):
        return model.thin(n_draws)
    names = tuple(model.param_names)
    family = getattr(getattr(model, "family", None), "name", None)
    idata = getattr(model, "idata_", None)
    posterior = None
    if idata is not None and "posterior" in idata.groups():
        post = idata.posterior
        if all(p in post for p in names) and post.sizes.get("draw", 0) * post.sizes.get("chain", 0) > 1:
            posterior = post
    if posterior is None:
        point = model._params_array()  # raises NotFittedError with the fix
        values = {p: np.array([v]) for p, v in zip(names, point, strict=True)}
        return ParameterDraws(values, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), "point", family)
    values = {}
    for p in names:
        arr = np.ascontiguousarray(posterior[p].transpose("chain", "draw").to_numpy().reshape(-1), dtype=np.float64)
        if not (np.isfinite(arr).all() and (arr > 0).all()):
            raise ValueError(f"The posterior draws of {p} of this {type(model).__name__} must be positive and finite.")
        values[p] = arr
    draws = ParameterDraws(values, posterior["chain"].to_numpy(), posterior["draw"].to_numpy(), "posterior", family)
    return draws.thin(n_draws)


def joint_draws(bgnbd, gamma_gamma=None, n_draws: int | None = None) -> ParameterDraws:
    """Paired BG/NBD and Gamma-Gamma draws (module docstring), parameters r..b, p, q, gamma.

    The grid (chain, draw coordinates) is the BG/NBD posterior's, thinned to about
    ``n_draws``. The Gamma-Gamma draws are paired position by position in flattened
    (chain, draw) order; when their number differs they are thinned evenly (or, when there
    are fewer, repeated evenly) to the BG/NBD's. A point estimate of either model is
    repeated; when only the Gamma-Gamma model has a posterior, its grid is used.

    Parameters
    ----------
    bgnbd
        A fitted purchase model (:class:`~clvbayes.BetaGeoModel`, any family) or its
        :class:`ParameterDraws`; None for spend alone (then the Gamma-Gamma draws, with no
        purchase parameters and ``family`` None).
    gamma_gamma
        A fitted :class:`~clvbayes.GammaGammaModel` or its :class:`ParameterDraws`, or None
        (no spend parameters).
    n_draws
        Keep about this many joint draws (default: all).

    Returns
    -------
    ParameterDraws

    Raises
    ------
    ValueError
        When both are None.
    """
    n_draws = _check_n_draws(n_draws)
    if bgnbd is None:
        if gamma_gamma is None:
            raise ValueError("joint_draws needs a purchase model, a Gamma-Gamma model or both.")
        return parameter_draws(gamma_gamma, n_draws).select(GG_PARAMS)
    bg = parameter_draws(bgnbd, n_draws)
    if gamma_gamma is None:
        return bg
    gg = parameter_draws(gamma_gamma, n_draws)
    grid = gg if (bg.source == "point" and gg.source == "posterior") else bg
    n = grid.n
    source = "posterior" if "posterior" in (bg.source, gg.source) else "point"
    return ParameterDraws({**_on_grid(bg.values, bg.n, n), **_on_grid(gg.values, gg.n, n)}, grid.chain, grid.draw,
                          source, bg.family)


def has_cells(model) -> bool:
    """Whether ``model`` gives per-cell parameters (:class:`CellDraws` or a ``cell_draws`` method)."""
    return isinstance(model, (CellDraws, JointCellDraws)) or callable(getattr(model, "cell_draws", None))


def _side_cells(model, n_draws: int | None, index, names: Sequence[str] | None) -> CellDraws:
    """One side's draws as :class:`CellDraws` whose ``cell`` follows the customers ``index``."""
    if isinstance(model, CellDraws):
        cd = model.thin(n_draws)
        if cd.cell.shape[0] != len(index):
            raise ValueError(
                f"The CellDraws have {cd.cell.shape[0]} customers and the customer summary {len(index)}: pass the "
                "summary of the customers of the draws, in their order (or pass the model, which aligns by id)."
            )
        cell = cd.cell
    elif callable(getattr(model, "cell_draws", None)):
        cd = model.cell_draws(n_draws)
        own = getattr(model, "data", None)
        if own is None or len(own) == len(index) and own.index.equals(index):
            cell = cd.cell
        else:
            pos = own.index.get_indexer(index)
            if (pos < 0).any():
                raise ValueError(
                    f"{int((pos < 0).sum())} customers of the summary are not customers of the "
                    f"{type(model).__name__} (e.g. {list(index[pos < 0][:3])}): its parameters depend on its "
                    "customers' covariates, so it values its own customers only."
                )
            cell = cd.cell[pos]
        if names is not None:
            cd = cd.select(names)
    else:
        d = parameter_draws(model, n_draws)
        if names is not None:
            d = d.select(names, d.family)
        return CellDraws({k: v[None, :] for k, v in d.values.items()}, np.zeros(len(index), dtype=np.int64),
                         d.chain, d.draw, d.source, d.family)
    what = type(model).__name__
    if isinstance(cd.values, CellValues):
        for k, f in cd.values.factors.items():
            f.check(what, k)
    elif not all(np.isfinite(v).all() and (v > 0).all() for v in cd.values.values()):
        raise ValueError(f"The cell draws of this {what} must be positive and finite.")
    return CellDraws(cd.values, np.ascontiguousarray(cell, dtype=np.int64), cd.chain, cd.draw, cd.source, cd.family)


def _on_grid(values: Mapping[str, np.ndarray], n_from: int, n: int) -> Mapping[str, np.ndarray]:
    """Draws (last axis) thinned evenly, or repeated evenly, from ``n_from`` to ``n`` (the
    pairing of :func:`joint_draws`)."""
    if n_from == n:
        return values
    return _take_draws(values, pairing_index(n_from, n))


def pairing_index(n_from: int, n: int) -> np.ndarray:
    """Positions of ``n`` draws taken evenly from ``n_from`` (thinned, or repeated when
    ``n > n_from``): the pairing of :func:`joint_draws`."""
    if n_from == n:
        return np.arange(n)
    return np.floor(np.arange(n) * (n_from / n)).astype(np.int64)


def joint_cell_draws(bgnbd, gamma_gamma, n_draws: int | None, index) -> JointCellDraws:
    """Paired draws when a purchase or a spend model has per-customer (cell) parameters.

    Either side may be a model with ``cell_draws`` (aligned to the customers ``index`` by its
    ``data``'s index), a :class:`CellDraws` (its customers are the summary's rows, in order),
    a plain model or :class:`ParameterDraws` (one cell), or None. The grid and the pairing of
    draws are those of :func:`joint_draws`.
    """
    n_draws = _check_n_draws(n_draws)
    bg = None if bgnbd is None else _side_cells(bgnbd, n_draws, index, None)
    gg = None if gamma_gamma is None else _side_cells(gamma_gamma, n_draws, index, GG_PARAMS)
    if bg is None and gg is None:
        raise ValueError("joint_cell_draws needs a purchase model, a spend model or both.")
    grid = gg if bg is None or (gg is not None and bg.source == "point" and gg.source == "posterior") else bg
    sides = [s if s is None else CellDraws(_on_grid(s.values, s.n, grid.n), s.cell, grid.chain, grid.draw,
                                           s.source, s.family) for s in (bg, gg)]
    n_cust = len(index)
    cells = np.column_stack([np.zeros(n_cust, dtype=np.int64) if s is None else s.cell for s in sides])
    pairs, cell = np.unique(cells, axis=0, return_inverse=True)
    source = "posterior" if any(s is not None and s.source == "posterior" for s in sides) else "point"
    return JointCellDraws(sides[0], sides[1], np.ascontiguousarray(cell.reshape(-1), dtype=np.int64),
                          np.ascontiguousarray(pairs, dtype=np.int64), grid.chain, grid.draw, source,
                          None if bg is None else bg.family)
