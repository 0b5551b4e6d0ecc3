"""Small and degenerate data (issue 13, point 6).

Logs of 1-5 customers either finish (figures included) or stop with a DataValidationError
that says what is missing; maximum likelihood that runs away, fits without repeat buyers
and posteriors that stay at the prior warn with a WeakIdentificationWarning in plain
words; repeat buyers whose repeat purchases are all of amount 0 are named before the
Gamma-Gamma fit, and the workflow keeps them for BG/NBD while leaving them out of the
spend fit with a note.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes import DataValidationError, WeakIdentificationWarning
from clvbayes.models import identification

CDNOW_BGNBD = dict(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881)
GG = dict(p=6.25, q=3.74, gamma=15.44)

THREE = [("a", "2024-01-01", 10.0), ("a", "2024-02-01", 12.0), ("b", "2024-01-15", 5.0),
         ("b", "2024-03-01", 7.0), ("c", "2024-02-20", 9.0)]
FIVE = THREE + [("b", "2024-04-01", 7.0), ("d", "2024-03-03", 4.0), ("e", "2024-01-09", 20.0),
                ("e", "2024-05-09", 25.0)]


def _log(rows) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    out["date"] = pd.to_datetime(out["date"])
    return out


@pytest.fixture(scope="module")
def three() -> pd.DataFrame:
    return clvbayes.rfm_summary(_log(THREE), time_unit="D")


def _cli(tmp_path, rows, *extra):
    import matplotlib

    matplotlib.use("Agg")
    from clvbayes.cli import main

    path = tmp_path / "log.csv"
    _log(rows).to_csv(path, index=False)
    out = tmp_path / "report"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["fit", str(path), "--out", str(out), "--quiet", "--draws", "100", "--tune", "100",
                     "--chains", "2", "--value-draws", "50", "--seed", "1", *extra])
    return code, out, stderr.getvalue()


# -- maximum likelihood ----------------------------------------------------------------


def test_runaway_mle_warns_in_plain_words(three):
    with pytest.warns(WeakIdentificationWarning, match=r"BetaGeoModel: the data cannot pin down .*r = .*"
                      r"with only 3 customers.*not estimates"):
        clvbayes.BetaGeoModel(three).fit_mle()
    with pytest.warns(WeakIdentificationWarning, match=r"GammaGammaModel: the data cannot pin down .*only 2 customers"):
        clvbayes.GammaGammaModel(three).fit_mle()


def test_bgnbd_without_repeat_buyers_warns(three):
    once = three.assign(frequency=0, recency=0.0)
    with pytest.warns(WeakIdentificationWarning, match="none of the 3 customers made a repeat purchase, so the "
                      "purchase rate and the dropout cannot be separated"):
        clvbayes.BetaGeoModel(once).fit_mle()


def test_check_mle_flags_extreme_values_and_bad_covariance():
    names = ("r", "alpha")
    good = np.diag([0.01, 0.04])
    assert identification.check_mle("M", names, np.array([1.0, 2.0]), good, 500) == []
    with pytest.warns(WeakIdentificationWarning, match=r"cannot pin down r and alpha \(r = 1e\+12, alpha = 3e\+12"):
        identification.check_mle("M", names, np.array([1e12, 3e12]), good, 3)
    with pytest.warns(WeakIdentificationWarning, match="no finite, positive definite covariance"):
        assert identification.check_mle("M", names, np.array([1.0, 2.0]), np.array([[1.0, 2.0], [2.0, 1.0]]), 3)
    with pytest.warns(WeakIdentificationWarning, match="cannot pin down alpha "):
        identification.check_mle("M", names, np.array([1.0, 2.0]), np.diag([0.01, 1e6]), 3)


def test_published_fit_does_not_warn(cdnow_split):
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeakIdentificationWarning)
        clvbayes.BetaGeoModel(cdnow_split).fit_mle()
        clvbayes.GammaGammaModel(cdnow_split).fit_mle()


# -- posteriors ------------------------------------------------------------------------


def test_check_posterior_compares_posterior_and_prior_sd():
    priors = {"r": clvbayes.Prior("HalfNormal", sigma=5.0), "b": clvbayes.Prior("HalfNormal", sigma=20.0)}
    rng = np.random.default_rng(2)
    narrow = {"r": 0.24 + 0.01 * rng.standard_normal(400), "b": 2.4 + 0.2 * rng.standard_normal(400)}
    assert identification.check_posterior("M", narrow, priors, 2357) == []
    prior_like = {"r": np.abs(5.0 * rng.standard_normal(400)), "b": 2.4 + 0.2 * rng.standard_normal(400)}
    with pytest.warns(WeakIdentificationWarning, match=r"posterior of r stayed close to the prior .*r \d+%.*"
                      r"only 7 customers"):
        assert identification.check_posterior("M", prior_like, priors, 7) == ["r"]


def test_fit_checks_the_posterior_against_the_prior(three):
    # the check fit() runs after NUTS, on a posterior that is the prior itself
    import arviz as az

    model = clvbayes.BetaGeoModel(three)
    from clvbayes.models.priors import draw_priors

    draws = draw_priors(model.priors_, model.param_names, 400, 5)
    model.idata_ = az.from_dict(posterior={n: draws[None, :, j] for j, n in enumerate(model.param_names)})
    with pytest.warns(WeakIdentificationWarning, match=r"BetaGeoModel: the posterior of r, alpha, a, b stayed "
                      r"close to the prior.*only 3 customers"):
        model._check_identified()


@pytest.mark.slow
def test_nuts_on_three_customers_warns_that_the_posterior_is_the_prior(three):
    with pytest.warns(WeakIdentificationWarning, match="stayed close to the prior"):
        clvbayes.BetaGeoModel(three).fit(chains=2, draws=100, tune=100, random_seed=3, progressbar=False)


# -- spend of 0 ------------------------------------------------------------------------


def test_zero_spend_repeat_buyers_are_named_and_valued_at_the_limit():
    summary = pd.DataFrame({"frequency": [0, 2, 3], "recency": [0.0, 4.0, 9.0], "T": [10.0, 12.0, 14.0],
                            "monetary_value": [0.0, 0.0, 12.0]}, index=["a", "free", "c"])
    with pytest.raises(DataValidationError, match=r"'monetary_value' is 0 for 1 repeat buyers \('free'\): all their "
                       r"repeat purchases have amount 0.*keep them for BG/NBD"):
        clvbayes.GammaGammaModel(summary).fit_mle()
    # predictions: E[Z | x, m = 0] = p γ / (p x + q - 1), the limit m -> 0+ of FHL eq. (5)
    gg = clvbayes.GammaGammaModel.from_params(GG)
    spend = gg.expected_spend(summary)
    assert spend["free"] == pytest.approx(GG["p"] * GG["gamma"] / (2 * GG["p"] + GG["q"] - 1), rel=1e-14)
    bg = clvbayes.BetaGeoModel.from_params(CDNOW_BGNBD)
    clv = clvbayes.customer_lifetime_value(bg, gg, summary, horizon=52.0)
    assert np.isfinite(clv.summary["mean"]).all()


def test_workflow_leaves_zero_spend_buyers_out_of_the_spend_fit_only():
    from clvbayes.workflow import _spend_data

    summary = pd.DataFrame({"frequency": [0, 2, 3], "monetary_value": [0.0, 0.0, 12.0]}, index=["a", "free", "c"])
    notes: list[str] = []
    kept = _spend_data(summary, notes, "whole period")
    assert list(kept.index) == ["a", "c"]
    assert len(notes) == 1 and "1 repeat buyers whose repeat purchases all have amount 0 ('free')" in notes[0]
    assert _spend_data(kept, notes, "whole period") is kept and len(notes) == 1


def test_workflow_collects_fit_warnings_instead_of_silencing_them():
    from clvbayes.workflow import AnalysisSettings, _fit_recorded

    class Noisy:
        def fit(self, **kwargs):
            warnings.warn("the posterior of q stayed close to the prior", WeakIdentificationWarning)
            warnings.warn("the posterior of q stayed close to the prior", WeakIdentificationWarning)

    caught: list[str] = []
    _fit_recorded(Noisy(), AnalysisSettings(), False, caught)
    assert caught == ["WeakIdentificationWarning: the posterior of q stayed close to the prior"]


# -- figures ---------------------------------------------------------------------------


def test_period_transactions_plot_when_the_interval_excludes_the_mean(three):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clvbayes.value.plotdata import period_transactions

    bg = clvbayes.BetaGeoModel.from_params(CDNOW_BGNBD, three)
    table = period_transactions(bg, n_draws=200, random_seed=0)
    assert (table["mean"] > table["upper"]).any()  # a skewed count: the HDI [0, 0] lies below the mean
    ax = clvbayes.plotting.plot_period_transactions(bg, n_draws=200, random_seed=0)
    plt.close(ax.figure)


# -- the command line on 1-5 customers -----------------------------------------------------


def test_cli_one_purchase_stops_with_a_clear_message(tmp_path):
    code, out, err = _cli(tmp_path, [("a", "2024-01-01", 10.0)])
    assert code == 3 and "'T' is 0 for all 1 customers" in err and not out.exists()


def test_cli_no_repeat_buyer_stops_with_a_clear_message(tmp_path):
    code, out, err = _cli(tmp_path, [("a", "2024-01-01", 10.0), ("b", "2024-03-01", 12.0)])
    assert code == 3 and "no one made a repeat purchase" in err and not out.exists()


def test_cli_one_customer_stops_with_a_clear_message(tmp_path):
    rows = [("a", "2024-01-01", 10.0), ("a", "2024-02-01", 12.0), ("a", "2024-03-05", 8.0)]
    code, out, err = _cli(tmp_path, rows)
    assert code == 3 and "too small to value customers in money" in err and "only 1 repeat buyer " in err


def test_cli_five_customers_finish_with_figures_and_warnings(tmp_path):
    import json

    code, out, err = _cli(tmp_path, FIVE)
    assert code == 0, err
    assert len(list((out / "plots").glob("*.png"))) >= 5
    summary = json.loads((out / "summary.json").read_text())
    assert any("WeakIdentificationWarning" in w for w in summary["diagnostics"]["bgnbd"]["warnings"])
    assert "WeakIdentificationWarning" in (out / "report.html").read_text()
    assert "warning: bgnbd: WeakIdentificationWarning" in err
