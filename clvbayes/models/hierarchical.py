"""Hierarchical pooling by segment: every segment's population parameters drawn from a shared
hyper-distribution, any family, optional categorical covariates on top.

Per segment ``s`` and base parameter ``p`` (``r, alpha, a, b`` or ``r, alpha, s, beta``)::

    log θ_{s,p} = μ_p + σ_p ε_{s,p},  ε_{s,p} ~ N(0, 1)        (parameterization="non_centred")
    log θ_{s,p} ~ N(μ_p, σ_p)                                   (parameterization="centred")

and, by default (``parameterization="auto"``), each segment in the form that samples best
at its size: centred when it has at least ``AUTO_CENTRED_MIN_CUSTOMERS`` customers, else
non-centred (a "mixed" model when both occur). Which form samples better depends on how
informative a group's data are (Betancourt & Girolami 2015, "Hamiltonian Monte Carlo for
hierarchical models", in Current Trends in Bayesian Methodology with Applications); the
threshold is measured, not derived (``AUTO_CENTRED_MIN_CUSTOMERS``).

    μ_p ~ N(log m_p, 2),   σ_p ~ HalfNormal(sigma_prior)  (default 0.5)

with ``m_p`` the median of the family's default prior of ``p`` (e.g. BG/NBD ``alpha ~
HalfNormal(5 mean_T)``: ``m = 0.674 · 5 mean_T``), so ``μ_p`` is centred where the
non-hierarchical model's prior is, with a log-scale sd of 2 (a factor e^2 ≈ 7 either way).
``σ_p`` is the spread of the segments on the log scale: HalfNormal(0.5) puts 95 % of its
mass below ≈ 1, i.e. segments differing by up to a factor e ≈ 2.7 at one sd, wide enough for
countries or channels and tight enough that a small segment is pulled toward the population
(partial pooling: Gelman & Hill 2007, "Data analysis using regression and multilevel
models", ch. 12; the non-centred form: Papaspiliopoulos, Roberts & Sköld 2007, Statistical
Science 22(1)).

Covariates enter on top with the links of :mod:`clvbayes.models.covariate`
(``θ_{i,p} = θ_{s(i),p} exp(±z_i'γ)``). A cell is a (segment, design row) pair: its customers
share their parameters, so the cells path of :class:`CovariatePurchaseModel` serves unchanged
(one call of the family's fast kernel per cell, all cells in one
:class:`~clvbayes.models.cell_ops.CellsLogLik` node). Continuous covariates (the rows path) are
refused: bin them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from clvbayes.covariates.cells import link_factors
from clvbayes.models.covariate import COVARIATE_LINKS, CovariatePurchaseModel
from clvbayes.value.draws import CellFactor, grid_index

__all__ = ["AUTO_CENTRED_MIN_CUSTOMERS", "HierarchicalPurchaseModel", "PARAMETERIZATIONS"]

PARAMETERIZATIONS = ("non_centred", "centred", "auto")

#: ``parameterization="auto"``: a segment of at least this many customers is centred, a smaller
#: one non-centred. Measured (docs/guide/covariates.md, benchmarks/results/
#: hierarchical_parameterization*.md): non-centred better at 10 segments of 1,000 (ESS per
#: 1,000 gradients 6.6 vs 2.5), centred at 10 of 5,000 (95 vs 4.6) and 3 of 20,000; the
#: switch sits between the two measured sizes (their geometric mean, 2,236, rounded down).
AUTO_CENTRED_MIN_CUSTOMERS = 2000

_MU_SD = 2.0


def _prior_median(prior) -> float:
    """Median of a default prior (HalfNormal(σ): σ·Φ^{-1}(0.75) = 0.674σ; else scipy's)."""
    import scipy.stats as st

    if prior.distribution == "HalfNormal":
        return float(prior.params["sigma"]) * float(st.norm.ppf(0.75))
    raise ValueError(f"No hyperprior centre for a {prior.distribution} default prior.")


class HierarchicalPurchaseModel(CovariatePurchaseModel):
    """A purchase/dropout model whose population parameters vary by segment, partially pooled.

    Parameters
    ----------
    data, attributes, family, purchase_covariates, dropout_covariates, coefficient_prior_sigma,
    customer_id, categorical, max_cells, min_level_count
        As :class:`~clvbayes.models.covariate.CovariatePurchaseModel` (categorical covariates
        only: the cells path).
    segment : str, default "country"
        Column of the segment labels (country, channel, cohort ...).
    parameterization : {"auto", "non_centred", "centred"}, default "auto"
        Module docstring. ``"auto"`` chooses per segment: centred for a segment of at least
        ``AUTO_CENTRED_MIN_CUSTOMERS`` customers (its likelihood pins its parameters, where the
        non-centred form couples ``ε`` and ``σ`` into a narrow ridge), non-centred for a smaller
        one (little data: the centred form has Neal's funnel in ``(log θ_s, σ)``); the
        threshold and the measurements behind it in ``docs/guide/covariates.md``. The form
        used is ``parameterization_used`` (``"centred"``, ``"non_centred"`` or ``"mixed"``).
    sigma_prior : float, default 0.5
        Scale of ``σ_p ~ HalfNormal(sigma_prior)`` (log scale).
    min_segment_size : int, default 2
        Segments with fewer customers are refused (merge rare segments into "other").
    """

    def __init__(self, data: pd.DataFrame, attributes: pd.DataFrame | None = None, *, family: str = "bgnbd",
                 segment: str = "country", purchase_covariates: Sequence[str] = (),
                 dropout_covariates: Sequence[str] = (), parameterization: str = "auto",
                 sigma_prior: float = 0.5, min_segment_size: int = 2, coefficient_prior_sigma: float = 1.0,
                 customer_id: str = "customer_id", categorical: Sequence[str] = (), max_cells: int = 256,
                 min_level_count: int = 2) -> None:
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}.")
        if not (np.isfinite(sigma_prior) and sigma_prior > 0):
            raise ValueError(f"sigma_prior must be finite and > 0, got {sigma_prior!r}.")
        if segment in tuple(purchase_covariates) + tuple(dropout_covariates):
            raise ValueError(f"The segment column {segment!r} is also a covariate: the segment parameters already "
                             "carry it; drop it from the covariates.")
        super().__init__(data, attributes, family=family, purchase_covariates=purchase_covariates,
                         dropout_covariates=dropout_covariates, coefficient_prior_sigma=coefficient_prior_sigma,
                         customer_id=customer_id, categorical=categorical, max_cells=max_cells,
                         min_level_count=min_level_count, path="cells")
        self.parameterization = parameterization
        self.sigma_prior = float(sigma_prior)
        self.segment = segment
        self._init_kwargs = {**{k: v for k, v in self._init_kwargs.items() if k != "path"}, "segment": segment,
                             "parameterization": parameterization, "sigma_prior": float(sigma_prior),
                             "min_segment_size": int(min_segment_size)}
        frame = self.data
        if segment not in frame.columns:
            raise ValueError(f"No segment column {segment!r} in the data (columns: {list(frame.columns)}).")
        labels = frame[segment]
        missing = labels.isna().to_numpy()
        if missing.any():
            ids = (frame[customer_id] if customer_id in frame.columns else frame.index)[missing]
            raise ValueError(f"Segment column {segment!r} has {int(missing.sum())} missing labels (customers "
                             f"{list(ids[:10])}{' ...' if missing.sum() > 10 else ''}): fill them (e.g. 'unknown').")
        codes, names = pd.factorize(labels, sort=True)
        counts = np.bincount(codes, minlength=len(names))
        if len(names) < 2:
            raise ValueError(f"Segment column {segment!r} has one segment ({names[0]!r}): no pooling possible; use "
                             "CovariatePurchaseModel (or a plain family model).")
        small = [(str(n), int(c)) for n, c in zip(names, counts, strict=True) if c < min_segment_size]
        if small:
            raise ValueError(f"Segments of {segment!r} with fewer than min_segment_size={min_segment_size} "
                             f"customers: {small[:20]}{' ...' if len(small) > 20 else ''}. Merge rare segments "
                             "into 'other' (or lower min_segment_size).")
        self.segments = np.asarray([str(n) for n in names])
        self.customer_segment = codes.astype(np.int64)
        self.segment_sizes = counts.astype(np.int64)
        # which segments' log parameters are centred variables (else ε of the non-centred form)
        centred = {"centred": np.ones(len(names), dtype=bool), "non_centred": np.zeros(len(names), dtype=bool),
                   "auto": counts >= AUTO_CENTRED_MIN_CUSTOMERS}[parameterization]
        self.segment_centred = centred
        self.parameterization_used = ("centred" if centred.all() else "non_centred" if not centred.any()
                                      else "mixed")
        # cells = (segment, covariate row): re-index the parent's covariate cells
        pairs, cell = np.unique(np.column_stack([codes, self.cell]), axis=0, return_inverse=True)
        self.cell = cell.reshape(-1).astype(np.int64)
        self.cell_segment = pairs[:, 0].astype(np.int64)
        self.cell_rows = self.cell_rows[pairs[:, 1]]
        n_p = self._n_purchase_terms
        self._z = {"purchase": self.cell_rows[:, :n_p], "dropout": self.cell_rows[:, n_p:]}

    @property
    def n_segments(self) -> int:
        return len(self.segments)

    def cell_factors(self, base: Mapping[str, np.ndarray], coefficients: Mapping[str, np.ndarray],
                     z: Mapping[str, np.ndarray] | None = None) -> dict[str, CellFactor]:
        """Each cell's parameters: its segment's base parameters times the covariate link, as
        factors (:class:`~clvbayes.value.draws.CellFactor`, one base row per segment).

        ``base[name]`` shape (D, n_segments), ``coefficients[name]`` shape (D, n_terms); ``z``
        (default: the model's cells) the design rows of each side and ``z["segment"]`` each
        row's segment code (:meth:`_encode`).
        """
        rows = self.cell_segment if z is None else np.asarray(z["segment"], dtype=np.int64)
        z = self._z if z is None else z
        # one base row per segment, (segments, D); each cell reads its segment's
        per_segment = {p: np.asarray(base[p], dtype=float).reshape(-1, self.n_segments).T for p in self.param_names}
        return link_factors(self.param_names, per_segment, coefficients, z, self._links, rows.shape[0], rows)

    def _encode(self, profiles: pd.DataFrame) -> dict[str, np.ndarray]:
        """Design rows of each side and the segment codes of ``profiles`` (which name a
        segment of the data in the segment column)."""
        z = super()._encode(profiles)
        if self.segment not in profiles.columns:
            raise ValueError(f"The profiles have no segment column {self.segment!r}: name one of the segments "
                             f"{list(self.segments)}.")
        labels = profiles[self.segment].astype(str).to_numpy()
        codes = pd.Index(self.segments).get_indexer(labels)
        if (codes < 0).any():
            raise ValueError(f"Unknown segments {sorted(set(labels[codes < 0]))} in column {self.segment!r}; "
                             f"the model knows {list(self.segments)}.")
        z["segment"] = codes.astype(np.int64)
        return z

    def _hyper_centres(self) -> dict[str, float]:
        return {p: float(np.log(_prior_median(pr))) for p, pr in self._resolved_priors().items()}

    def _build_model(self) -> pm.Model:
        centres = self._hyper_centres()
        coords = {"segment": list(self.segments)}
        used = self.parameterization_used
        if used == "mixed":  # segments by form; the concatenation is put back in segment order
            nc, c = np.flatnonzero(~self.segment_centred), np.flatnonzero(self.segment_centred)
            back = np.argsort(np.concatenate([nc, c]))
            coords |= {"segment_non_centred": list(self.segments[nc]), "segment_centred": list(self.segments[c])}
        with pm.Model(coords=coords) as model:
            seg = {}
            for p in self.param_names:
                mu = pm.Normal(f"mu_{p}", centres[p], _MU_SD)
                sigma = pm.HalfNormal(f"sigma_{p}", self.sigma_prior)
                if used == "non_centred":
                    eps = pm.Normal(f"eps_{p}", 0.0, 1.0, dims="segment")
                    log_theta = mu + sigma * eps
                elif used == "centred":
                    log_theta = pm.Normal(f"log_{p}_segment", mu, sigma, dims="segment")
                else:
                    eps = pm.Normal(f"eps_{p}", 0.0, 1.0, dims="segment_non_centred")
                    log_c = pm.Normal(f"log_{p}_segment", mu, sigma, dims="segment_centred")
                    log_theta = pt.concatenate([mu + sigma * eps, log_c])[back]
                seg[p] = pm.Deterministic(f"{p}_segment", pt.exp(log_theta), dims="segment")
            gam = {name: pm.Normal(name, 0.0, self.coefficient_prior_sigma, shape=d.n_terms)
                   for name, (_, d) in self.coefficient_names.items()}
            base = {p: seg[p][self.cell_segment] for p in self.param_names}  # vectors over cells
            linked = self._linked(base, gam, self._z)
            pm.Potential("loglik", self._cells_loglik(linked))
        return model

    def fit(self, method: str = "nuts", **kwargs) -> HierarchicalPurchaseModel:
        """NUTS by nutpie (as :meth:`CovariatePurchaseModel.fit`). MAP is refused: the joint
        mode of a hierarchical model sits at ``σ_p → 0`` (the density grows without bound
        there in the centred form), so it would fit no pooling at all."""
        if method != "nuts":
            raise ValueError("HierarchicalPurchaseModel fits by NUTS only (method='nuts'): the MAP of a hierarchical "
                             "model collapses the segment spread sigma to 0.")
        return super().fit("nuts", **kwargs)

    def _summary_names(self) -> list[str]:
        """The posterior's variables of :meth:`summary` and :meth:`check_convergence`: each
        segment's base parameters, the hyperparameters and the coefficients (there is no
        single ``r``, ``alpha``, ...)."""
        return [*(f"{p}_segment" for p in self.param_names), *(f"mu_{p}" for p in self.param_names),
                *(f"sigma_{p}" for p in self.param_names), *self.coefficient_names]

    def _draws_on_grid(self, n_draws: int | None) -> tuple[dict, dict, np.ndarray, np.ndarray, str]:
        """Per-segment base draws (D, n_segments), coefficient draws (D, n), the grid, source."""
        if self.idata_ is None:
            raise RuntimeError("The model is not fitted: call fit() first.")
        post = self.idata_.posterior
        nc, nd = int(post.sizes["chain"]), int(post.sizes["draw"])
        flat, keep = grid_index(nc, nd, n_draws)
        base = {p: post[f"{p}_segment"].transpose("chain", "draw", "segment").to_numpy()
                .reshape(nc * nd, -1)[flat] for p in self.param_names}
        coef = {c: post[c].transpose("chain", "draw", ...).to_numpy().reshape(nc * nd, -1)[flat]
                for c in self.coefficient_names}
        return base, coef, post["chain"].to_numpy(), post["draw"].to_numpy()[keep], "posterior"

    @property
    def trace_names(self) -> list[str]:
        """The variables of the report's trace plot: every segment's base parameters."""
        return [f"{p}_segment" for p in self.param_names]

    def _summary_names(self) -> list[str]:
        """The parameter table's variables: the hyperparameters, every segment's base
        parameters (rows ``r_segment[de]``...) and the coefficients."""
        return [*(f"{k}_{p}" for k in ("mu", "sigma") for p in self.param_names),
                *(f"{p}_segment" for p in self.param_names), *self.coefficient_names]

    def shrinkage(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """How far pooling moved each segment's mean purchase rate ``r/alpha`` toward the population.

        One row per segment: ``n_customers``; the pooled rate (posterior mean and HDI, as
        :meth:`segment_summary`); ``unpooled`` the rate of the segment's customers fitted
        alone (the family's maximum likelihood, no covariates; NaN when it does not
        converge); ``population`` the posterior mean of ``exp(mu_r - mu_alpha)``, the rate
        of a typical segment; and ``shrinkage = ln(unpooled/pooled) / ln(unpooled/population)``:
        0 for no pooling, 1 for a segment pulled all the way to the population (small
        segments shrink more: Gelman & Hill 2007, ch. 12). With covariates the pooled rate
        is at the reference levels, the unpooled one over the segment's mix of levels.
        """
        from clvbayes.models.purchase import model_class

        rates = self.segment_summary(hdi_prob=hdi_prob)
        post = self.idata_.posterior
        population = float(np.exp(post["mu_r"] - post["mu_alpha"]).mean())
        rows = {}
        for s, name in enumerate(self.segments):
            own = self.data.iloc[np.flatnonzero(self.customer_segment == s)]
            try:
                mle = model_class(self.family)(own[["frequency", "recency", "T"]]).fit_mle()
                unpooled = float(mle.params_["r"] / mle.params_["alpha"])
            except (ValueError, RuntimeError, FloatingPointError):  # e.g. no repeat buyer in the segment
                unpooled = np.nan
            pooled = float(rates.loc[name, "purchase_rate_mean"])
            gap = np.log(unpooled / population)
            rows[name] = {"n_customers": int(rates.loc[name, "n_customers"]), "pooled": pooled,
                          "pooled_hdi_low": float(rates.loc[name, "purchase_rate_hdi_low"]),
                          "pooled_hdi_high": float(rates.loc[name, "purchase_rate_hdi_high"]),
                          "unpooled": unpooled, "population": population,
                          "shrinkage": float(np.log(unpooled / pooled) / gap) if abs(gap) > 1e-9 else np.nan}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "segment"
        return out

    def segment_summary(self, hdi_prob: float = 0.94, draws: int | None = 200) -> pd.DataFrame:
        """One row per segment: each base parameter's posterior mean and HDI, the mean purchase
        rate ``r/alpha`` (mean and HDI), the number of customers and their mean P(alive)."""
        base, _ = self._draws(None)
        pa = self.probability_alive(draws=draws).to_numpy()
        rows = []
        for s, name in enumerate(self.segments):
            row = {"segment": name, "n_customers": int(np.sum(self.customer_segment == s))}
            for p in self.param_names + ("purchase_rate",):
                v = base["r"][:, s] / base["alpha"][:, s] if p == "purchase_rate" else base[p][:, s]
                lo, hi = az.hdi(v, hdi_prob=hdi_prob)
                row.update({f"{p}_mean": float(v.mean()), f"{p}_hdi_low": float(lo), f"{p}_hdi_high": float(hi)})
            row["p_alive_mean"] = float(pa[self.customer_segment == s].mean())
            rows.append(row)
        return pd.DataFrame(rows).set_index("segment")
