"""What each plot of clvbayes.plotting draws: artists and their data (compared with the
stats frames they come from), bands, labels, legends, colorbars; the Axes contract (the
given Axes is drawn on and returned, no new figure, rcParams untouched)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection, QuadMesh  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402

import clvbayes  # noqa: E402
from clvbayes import plotting  # noqa: E402
from clvbayes.value.plotdata import (  # noqa: E402
    customer_purchase_times,
    frequency_recency_grid,
    pareto_curve,
    period_transactions,
    probability_alive_history,
)
from tests.test_plotdata import CAL_END, CUSTOMER, OBS_END, mle_models, nuts_model  # noqa: E402


# -- fixtures --------------------------------------------------------------------------------------
# The data and fitted models are shared with test_plotdata (one NUTS fit per session).
from tests.test_plotdata import bg_mle, bg_nuts, gg_mle, split, tx  # noqa: E402, F401


@pytest.fixture(scope="module")
def clv_nuts(bg_nuts, gg_mle, split):
    return clvbayes.customer_lifetime_value(bg_nuts, gg_mle, split, horizon=52, n_draws=200)


@pytest.fixture(scope="module")
def clv_mle(bg_mle, gg_mle, split):
    return clvbayes.customer_lifetime_value(bg_mle, gg_mle, split, horizon=52)


@pytest.fixture(scope="module")
def equity(clv_nuts):
    return clvbayes.customer_equity(clv_nuts)


@pytest.fixture(autouse=True)
def untouched():
    """Every test: rcParams are the same afterwards; all figures are closed."""
    before = dict(matplotlib.rcParams)
    yield
    after = dict(matplotlib.rcParams)
    plt.close("all")
    assert after == before


@pytest.fixture
def given_ax():
    """An Axes made by the test; after the plot call, checks no figure was added."""
    fig, ax = plt.subplots()
    n_figs = len(plt.get_fignums())
    yield ax
    assert len(plt.get_fignums()) == n_figs


# -- helpers ---------------------------------------------------------------------------------------
def band_of(ax, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, lower, upper) of the one fill_between band of ``ax`` over ``n`` points.

    fill_between(x, y1, y2) makes one polygon: (x0, y2_0), (x_i, y1_i) for i = 0..n-1,
    (x_{n-1}, y2_{n-1}), then (x_i, y2_i) backwards, and the closing point.
    """
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1
    v = bands[0].get_paths()[0].vertices
    assert v.shape[0] == 2 * n + 3
    lower = v[1:n + 1]
    upper = v[n + 2:2 * n + 2][::-1]
    np.testing.assert_array_equal(lower[:, 0], upper[:, 0])
    return lower[:, 0], lower[:, 1], upper[:, 1]


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def error_segments(container: ErrorbarContainer) -> np.ndarray:
    """The error bars' segments, shape (bars, 2 ends, 2 coordinates)."""
    (lines,) = container.lines[2]
    assert isinstance(lines, LineCollection)
    return np.array(lines.get_segments())


# -- frequency / recency matrices --------------------------------------------------------------------
def test_frequency_recency_matrix(bg_nuts, given_ax):
    ax = plotting.plot_frequency_recency_matrix(bg_nuts, horizon=13, max_frequency=8, n_draws=100, ax=given_ax)
    assert ax is given_ax
    grid = frequency_recency_grid(bg_nuts, "expected_purchases", horizon=13, max_frequency=8, n_draws=100)
    (mesh,) = ax.collections
    assert isinstance(mesh, QuadMesh)
    z = np.asarray(mesh.get_array()).reshape(9, 40)
    np.testing.assert_array_equal(z, grid["mean"].to_numpy().reshape(9, 40))
    assert mesh.colorbar is not None and len(ax.figure.axes) == 2
    assert mesh.colorbar.ax.get_ylabel() == "Expected purchases: posterior mean"
    assert ax.get_xlabel() == "Recency: age at the last repeat purchase (weeks)"
    assert ax.get_ylabel() == "Frequency: repeat purchases"
    assert "next 13 weeks" in ax.get_title() and "aged 38.86 weeks" in ax.get_title()
    # frequency increases upwards, recency to the right
    assert ax.get_ylim()[0] < ax.get_ylim()[1] and ax.get_xlim()[0] < ax.get_xlim()[1]


@pytest.mark.parametrize("statistic", ["sd", "lower", "upper", "hdi_width"])
def test_matrix_statistics(bg_nuts, statistic):
    ax = plotting.plot_probability_alive_matrix(bg_nuts, max_frequency=5, statistic=statistic, n_draws=100)
    grid = frequency_recency_grid(bg_nuts, "p_alive", max_frequency=5, n_draws=100)
    want = grid["upper"] - grid["lower"] if statistic == "hdi_width" else grid[statistic]
    (mesh,) = ax.collections
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(-1), want.to_numpy())
    label = mesh.colorbar.ax.get_ylabel()
    assert label.startswith("P(alive): ")
    if statistic in ("lower", "upper", "hdi_width"):
        assert "94% interval" in label


def test_probability_alive_matrix_point_estimate(bg_mle, given_ax):
    ax = plotting.plot_probability_alive_matrix(bg_mle, max_frequency=4, ax=given_ax)
    grid = frequency_recency_grid(bg_mle, "p_alive", max_frequency=4)
    (mesh,) = ax.collections
    z = np.asarray(mesh.get_array()).reshape(5, 40)
    np.testing.assert_array_equal(z, grid["mean"].to_numpy().reshape(5, 40))
    np.testing.assert_array_equal(z[0], 1.0)  # no repeat purchase: alive
    assert mesh.colorbar.ax.get_ylabel() == "P(alive): point estimate"
    assert ax.get_title().startswith("Probability of being alive")
    with pytest.raises(ValueError, match="posterior draws"):
        plotting.plot_probability_alive_matrix(bg_mle, statistic="sd")
    with pytest.raises(ValueError, match="statistic"):
        plotting.plot_frequency_recency_matrix(bg_mle, statistic="median")


# -- period transactions -----------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["mle", "nuts"])
def test_period_transactions(which, given_ax):
    model = mle_models()[0] if which == "mle" else nuts_model()
    ax = plotting.plot_period_transactions(model, n_draws=100, random_seed=2, ax=given_ax)
    assert ax is given_ax
    table = period_transactions(model, n_draws=100, random_seed=2)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    errors = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2 and all(len(b) == 8 for b in bars) and len(errors) == 1
    observed, predicted = bars
    np.testing.assert_array_equal([p.get_height() for p in observed], table["observed"])
    np.testing.assert_allclose([p.get_height() for p in predicted], table["mean"], rtol=1e-15)
    seg = error_segments(errors[0])
    centres = [p.get_x() + p.get_width() / 2 for p in predicted]
    np.testing.assert_allclose(seg[:, 0, 0], centres)
    np.testing.assert_allclose(seg[:, 0, 1], table["lower"], rtol=1e-12)
    np.testing.assert_allclose(seg[:, 1, 1], table["upper"], rtol=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert ax.get_xlabel() == "Repeat purchases in the calibration period" and ax.get_ylabel() == "Customers"
    assert "observed vs predicted" in ax.get_title()
    model_label = "Model" if which == "nuts" else "Model (point estimate, process noise only)"
    assert legend_texts(ax) == ["Observed", f"{model_label}: mean and 94% interval"]


# -- validation ---------------------------------------------------------------------------------------
def test_calibration_holdout(bg_mle, split, given_ax):
    validation = clvbayes.holdout_validation(bg_mle, split, random_seed=1, n_draws=300)
    ax = plotting.plot_calibration_holdout(validation, ax=given_ax)
    assert ax is given_ax
    table = validation.by_frequency
    actual, predicted = ax.get_lines()
    np.testing.assert_array_equal(actual.get_ydata(), table["actual"])
    np.testing.assert_array_equal(predicted.get_ydata(), table["mean"])
    x, lower, upper = band_of(ax, 8)
    np.testing.assert_array_equal(x, np.arange(8))
    np.testing.assert_array_equal(lower, table["lower"])
    np.testing.assert_array_equal(upper, table["upper"])
    assert legend_texts(ax) == ["Actual", "Predicted mean", "94% interval"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(table.index)
    assert ax.get_ylabel() == "Mean purchases in the holdout (39 weeks)"
    assert ax.get_xlabel() == "Repeat purchases in the calibration period"
    assert "actual vs predicted" in ax.get_title()
    with pytest.raises(TypeError):
        plotting.plot_calibration_holdout(table)


@pytest.mark.parametrize("cumulative", [True, False])
def test_purchase_tracking(bg_nuts, tx, cumulative, given_ax):
    tracking = clvbayes.purchase_tracking(bg_nuts, tx, calibration_end=CAL_END, observation_end=OBS_END, n_draws=100)
    ax = plotting.plot_purchase_tracking(tracking, cumulative=cumulative, ax=given_ax)
    assert ax is given_ax
    suffix = "_cumulative" if cumulative else ""
    actual, expected, end = ax.get_lines()
    np.testing.assert_array_equal(actual.get_ydata(), tracking["actual" + suffix])
    np.testing.assert_array_equal(expected.get_ydata(), tracking["expected" + suffix])
    x, lower, upper = band_of(ax, len(tracking))
    np.testing.assert_allclose(x, mdates.date2num(tracking["period_end"]))
    np.testing.assert_array_equal(lower, tracking[f"expected{suffix}_lower"])
    np.testing.assert_array_equal(upper, tracking[f"expected{suffix}_upper"])
    assert mdates.date2num(end.get_xdata()[0]) == mdates.date2num(pd.Timestamp(CAL_END))
    assert legend_texts(ax) == ["Actual", "Expected (mean)", "94% interval", "End of calibration"]
    if cumulative:
        assert ax.get_ylabel() == "Cumulative repeat transactions"
    else:
        assert ax.get_ylabel() == "Repeat transactions per week"
    assert ax.get_xlabel() == "End of week" and "2,357 customers" in ax.get_title()


def test_purchase_tracking_point_estimate_has_no_band(bg_mle, tx):
    tracking = clvbayes.purchase_tracking(bg_mle, tx, calibration_end=CAL_END, observation_end=OBS_END)
    ax = plotting.plot_purchase_tracking(tracking, calibration_end="1997-06-30", hdi_prob=0.8)
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert legend_texts(ax) == ["Actual", "Expected (mean)", "End of calibration"]
    assert mdates.date2num(ax.get_lines()[2].get_xdata()[0]) == mdates.date2num(pd.Timestamp("1997-06-30"))
    with pytest.raises(ValueError, match="lacks columns"):
        plotting.plot_purchase_tracking(tracking.drop(columns="expected_cumulative"))


# -- customer -----------------------------------------------------------------------------------------
def test_probability_alive_history(bg_nuts, tx, given_ax):
    times, T = customer_purchase_times(tx, CUSTOMER, observation_end=CAL_END)
    ax = plotting.plot_probability_alive_history(bg_nuts, times, T, n_points=60, n_draws=100, ax=given_ax)
    assert ax is given_ax
    hist = probability_alive_history(bg_nuts, times, T, n_points=60, n_draws=100)
    line, marks = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), hist["time"])
    np.testing.assert_array_equal(line.get_ydata(), hist["mean"])
    np.testing.assert_array_equal(marks.get_xdata(), times)
    x, lower, upper = band_of(ax, len(hist))
    np.testing.assert_array_equal(x, hist["time"])
    np.testing.assert_array_equal(lower, hist["lower"])
    np.testing.assert_array_equal(upper, hist["upper"])
    assert legend_texts(ax) == ["P(alive), posterior mean", "94% interval", "Purchase"]
    assert ax.get_xlabel() == "Time since the first purchase (weeks)" and ax.get_ylabel() == "P(alive)"
    assert ax.get_title() == "Probability of being alive over time (7 repeat purchases)"
    assert ax.get_xlim() == (0.0, T)


def test_probability_alive_history_point_estimate(bg_mle):
    ax = plotting.plot_probability_alive_history(bg_mle, [0.0, 2.0, 5.0], 20.0)
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert legend_texts(ax) == ["P(alive)", "Purchase"]


# -- value ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("segment", [None, "1997-02"])
def test_equity_posterior(equity, segment, given_ax):
    ax = plotting.plot_equity_posterior(equity, segment=segment, bins=30, ax=given_ax)
    assert ax is given_ax
    draws = (equity.total if segment is None else equity.by_segment.sel(segment=segment)).to_numpy().reshape(-1)
    row = equity.summary.loc["total" if segment is None else segment]
    (hist,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(hist) == 30
    assert sum(p.get_height() for p in hist) == draws.size
    assert hist[0].get_x() == draws.min()
    (mean_line,) = ax.get_lines()
    assert mean_line.get_xdata()[0] == row["mean"]
    x, lower, upper = band_of(ax, 2)
    np.testing.assert_array_equal(x, [row["hdi_3%"], row["hdi_97%"]])
    np.testing.assert_array_equal(lower, 0.0)
    np.testing.assert_array_equal(upper, 1.0)  # the full height (axes coordinates)
    texts = legend_texts(ax)
    assert texts[0] == f"Posterior draws ({draws.size:,})" and texts[1] == f"Mean {row['mean']:,.0f}"
    assert texts[2].startswith("94% interval [")
    assert ax.get_ylabel() == "Posterior draws" and ax.get_xlabel().startswith("Customer equity: sum of CLV")
    assert ax.get_title().endswith("all customers" if segment is None else "cohort 1997-02")


def test_equity_posterior_unknown_segment(equity):
    with pytest.raises(KeyError, match="1999-01"):
        plotting.plot_equity_posterior(equity, segment="1999-01")


@pytest.mark.parametrize("highlight", [0.2, None])
def test_pareto(clv_nuts, highlight, given_ax):
    ax = plotting.plot_pareto(clv_nuts, n_points=25, highlight=highlight, ax=given_ax)
    assert ax is given_ax
    curve = pareto_curve(clv_nuts, n_points=25, include=() if highlight is None else (highlight,))
    lines = ax.get_lines()
    assert len(lines) == (3 if highlight else 2)
    diagonal, mean = lines[:2]
    np.testing.assert_array_equal(diagonal.get_xydata(), [[0, 0], [1, 1]])
    np.testing.assert_array_equal(mean.get_xdata(), curve["customer_share"])
    np.testing.assert_array_equal(mean.get_ydata(), curve["mean"])
    x, lower, upper = band_of(ax, len(curve))
    np.testing.assert_array_equal(lower, curve["lower"])
    np.testing.assert_array_equal(upper, curve["upper"])
    assert ax.get_xlabel() == "Share of customers, ranked by mean CLV" and ax.get_ylabel() == "Share of total CLV"
    assert ax.get_title() == "Concentration of CLV (2,357 customers)"
    if highlight:
        row = curve.loc[curve["customer_share"] == 0.2].iloc[0]
        assert lines[2].get_xydata().tolist() == [[0.2, row["mean"]]]
        (note,) = ax.texts
        assert note.get_text().startswith(f"top 20% of customers\nhold {100 * row['mean']:.0f}% (")
        assert legend_texts(ax) == ["Equal value per customer", "Share of CLV (mean)", "94% interval", "Top 20%"]
    else:
        assert not ax.texts
        assert legend_texts(ax) == ["Equal value per customer", "Share of CLV (mean)", "94% interval"]


def test_pareto_point_estimate_has_no_band(clv_mle):
    ax = plotting.plot_pareto(clv_mle, n_points=10)
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert "(" not in ax.texts[0].get_text()  # no interval in the annotation
    with pytest.raises(ValueError, match="highlight"):
        plotting.plot_pareto(clv_mle, highlight=1.5)


def _check_bars(ax, means: np.ndarray, lower: np.ndarray, upper: np.ndarray, labels: list[str]) -> None:
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    (errors,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose([p.get_width() for p in bars], means, rtol=1e-15)
    seg = error_segments(errors)
    np.testing.assert_allclose(seg[:, 0, 0], lower, rtol=1e-12)
    np.testing.assert_allclose(seg[:, 1, 0], upper, rtol=1e-12)
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert ax.yaxis_inverted()  # first row on top


def test_equity_by_segment(equity, given_ax):
    ax = plotting.plot_equity_by_segment(equity, ax=given_ax)
    assert ax is given_ax
    s = equity.summary.drop(index="total")
    _check_bars(ax, s["mean"], s["hdi_3%"], s["hdi_97%"], ["1997-01", "1997-02", "1997-03"])
    assert ax.get_xlabel() == "Customer equity, sum of CLV (bar: posterior mean; line: 94% interval)"
    assert ax.get_ylabel() == "Cohort" and ax.get_title() == "Customer equity by cohort"


def test_equity_by_stage(bg_mle, gg_mle, split):
    report = clvbayes.churn_analysis(bg_mle, gg_mle, split, period=13, contact_cost=1.0, horizon=52, segment=None)
    table = clvbayes.stage_summary(report, clvbayes.lifecycle_stages(report, new_window=4))
    ax = plotting.plot_equity_by_segment(table)
    _check_bars(ax, table["equity_mean"], table["equity_hdi_3%"], table["equity_hdi_97%"], list(table.index))
    assert ax.get_ylabel() == "Stage" and ax.get_title() == "Customer equity by stage"
    # a frame with lower/upper and an unnamed index, another HDI mass
    frame = pd.DataFrame({"mean": [3.0, 1.0], "hdi_5%": [2.0, 0.5], "hdi_95%": [4.0, 2.0]}, index=["a", "b"])
    ax = plotting.plot_equity_by_segment(frame)
    _check_bars(ax, [3.0, 1.0], [2.0, 0.5], [4.0, 2.0], ["a", "b"])
    assert "90% interval" in ax.get_xlabel()
    with pytest.raises(ValueError, match="HDI"):
        plotting.plot_equity_by_segment(frame.drop(columns="hdi_5%"))
    with pytest.raises(TypeError):
        plotting.plot_equity_by_segment([1, 2])


# -- the Axes contract for every plot ---------------------------------------------------------------------
def _calls(tx, split, bg_mle, clv_mle):
    validation = clvbayes.holdout_validation(bg_mle, split, random_seed=1, n_draws=50)
    tracking = clvbayes.purchase_tracking(bg_mle, tx, calibration_end=CAL_END, observation_end=OBS_END)
    equity = clvbayes.customer_equity(clv_mle)
    p = plotting
    return {
        "plot_frequency_recency_matrix": lambda **kw: p.plot_frequency_recency_matrix(bg_mle, max_frequency=3, **kw),
        "plot_probability_alive_matrix": lambda **kw: p.plot_probability_alive_matrix(bg_mle, max_frequency=3, **kw),
        "plot_period_transactions": lambda **kw: p.plot_period_transactions(bg_mle, n_draws=20, **kw),
        "plot_calibration_holdout": lambda **kw: p.plot_calibration_holdout(validation, **kw),
        "plot_purchase_tracking": lambda **kw: p.plot_purchase_tracking(tracking, **kw),
        "plot_probability_alive_history": lambda **kw: p.plot_probability_alive_history(bg_mle, [0, 3], 10, **kw),
        "plot_equity_posterior": lambda **kw: p.plot_equity_posterior(equity, **kw),
        "plot_pareto": lambda **kw: p.plot_pareto(clv_mle, n_points=10, **kw),
        "plot_equity_by_segment": lambda **kw: p.plot_equity_by_segment(equity, **kw),
        "plot_coefficients": lambda **kw: p.plot_coefficients(_covariate_model(), **kw),
    }


def test_every_plot_new_figure_or_given_axes(tx, split, bg_mle, clv_mle):
    calls = _calls(tx, split, bg_mle, clv_mle)
    assert sorted(calls) == sorted(plotting.__all__)
    for name, call in calls.items():
        # without ax: exactly one new figure, whose Axes is returned
        before = set(plt.get_fignums())
        ax = call()
        new = set(plt.get_fignums()) - before
        assert len(new) == 1, name
        assert ax.figure is plt.figure(new.pop()), name
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), name
        # with ax: drawn on it, returned, and no figure made; other Axes of the figure untouched
        fig, (other, target) = plt.subplots(1, 2)
        n_figs = len(plt.get_fignums())
        assert call(ax=target) is target, name
        assert len(plt.get_fignums()) == n_figs, name
        assert target.has_data() and not other.has_data(), name
        assert other.get_title() == "" and other.get_xlabel() == "", name
        plt.close("all")


# -- covariate effects -------------------------------------------------------------------------------
def _covariate_model():
    import arviz as az

    parts = []
    for k, ch in enumerate(["web", "store", "app"]):
        df = clvbayes.simulate_customers(r=0.6, alpha=8.0 * (1 + k), a=0.8, b=2.5, T=30.0, n_customers=60, seed=k)
        df["channel"] = ch
        parts.append(df)
    data = pd.concat(parts, ignore_index=True)
    data["customer_id"] = np.arange(len(data))
    model = clvbayes.CovariatePurchaseModel(data, purchase_covariates=["channel"], dropout_covariates=["channel"])
    rng = np.random.default_rng(1)
    post = {p: v * np.exp(rng.normal(0, 0.05, (2, 50))) for p, v in dict(r=0.6, alpha=8.0, a=0.8, b=2.5).items()}
    for name, (_, d) in model.coefficient_names.items():
        post[name] = rng.normal(0.4, 0.2, (2, 50, d.n_terms))
    model.idata_ = az.from_dict(posterior=post)
    return model


def test_plot_coefficients_draws_each_term_at_its_mean_and_hdi():
    model = _covariate_model()
    table = model.coefficient_summary(hdi_prob=0.9)
    fig, ax = plt.subplots()
    assert plotting.plot_coefficients(model, hdi_prob=0.9, ax=ax) is ax
    assert len(fig.axes) == 1
    points = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(points) == 3  # gamma_purchase, gamma_a, gamma_b
    xs = np.concatenate([p.get_xdata() for p in points])
    np.testing.assert_allclose(np.sort(xs), np.sort(table["mean"].to_numpy()))
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    segments = np.concatenate([b.lines[2][0].get_segments() for b in bars])
    lows = np.sort([s[0][0] for s in segments])
    np.testing.assert_allclose(lows, np.sort(np.minimum(table["hdi_low"], table["mean"])), rtol=1e-12)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table["term"])
    assert "90% interval" in ax.get_xlabel()


def test_plot_coefficients_of_a_map_fit_has_points_only_and_bad_input_is_refused():
    model = _covariate_model()
    table = model.coefficient_summary().assign(hdi_low=np.nan, hdi_high=np.nan)
    ax = plotting.plot_coefficients(table)
    assert not [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert "point estimate" in ax.get_xlabel()
    with pytest.raises(ValueError, match="lacks the columns"):
        plotting.plot_coefficients(table.drop(columns="term"))
    with pytest.raises(TypeError, match="model with covariates"):
        plotting.plot_coefficients(3)
