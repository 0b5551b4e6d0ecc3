"""Ctrl-C: fit() raises KeyboardInterrupt and keeps nothing; `clvbayes fit` exits 130 and writes nothing."""

import json
import os
import signal
import threading
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.cli import main
from clvbayes.models.bayesian import PartialPosteriorWarning

FIT_ATTRIBUTES = ("idata_", "params_")


def _sigint() -> None:
    os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def interrupt_once_sampling(monkeypatch):
    """Send SIGINT to this process ``delay`` seconds after nutpie has started its sampler
    (so the signal arrives while the chains run, whatever the compile time)."""
    from nutpie.compile_pymc import CompiledPyMCModel

    real = CompiledPyMCModel._make_sampler
    timers = []

    def arm(delay: float) -> None:
        def make(self, *args, **kwargs):
            sampler = real(self, *args, **kwargs)
            timer = threading.Timer(delay, _sigint)
            timers.append(timer)
            timer.start()
            return sampler

        monkeypatch.setattr(CompiledPyMCModel, "_make_sampler", make)

    yield arm
    for timer in timers:
        timer.cancel()


@pytest.fixture(scope="module")
def small_rfm(cdnow_split):
    return cdnow_split.iloc[:300]


@pytest.mark.slow  # compiles the nutpie model (~20-40 s)
def test_nutpie_interrupt_raises_and_keeps_no_fit(small_rfm, interrupt_once_sampling):
    # nutpie.sample catches Ctrl-C and returns the NaN-padded trace so far; before, fit()
    # then set params_ from that partial posterior without a word
    interrupt_once_sampling(0.5)
    model = clvbayes.BetaGeoModel(small_rfm)
    with pytest.raises(KeyboardInterrupt):
        model.fit(chains=2, draws=10**6, tune=100, random_seed=1, progressbar=False)
    for name in FIT_ATTRIBUTES:
        assert not hasattr(model, name), name


@pytest.mark.slow  # compiles the nutpie model (~20-40 s)
def test_nutpie_interrupt_drops_an_earlier_fit(small_rfm, interrupt_once_sampling):
    model = clvbayes.BetaGeoModel(small_rfm).fit_mle()
    interrupt_once_sampling(0.5)
    with pytest.raises(KeyboardInterrupt):
        model.fit(chains=2, draws=10**6, tune=100, random_seed=1, progressbar=False)
    for name in (*FIT_ATTRIBUTES, "standard_errors_", "covariance_"):
        assert not hasattr(model, name), name


@pytest.mark.slow  # compiles the nutpie model (~20-40 s)
def test_nutpie_interrupt_with_allow_partial_keeps_flagged_draws(small_rfm, interrupt_once_sampling):
    interrupt_once_sampling(1.0)
    model = clvbayes.BetaGeoModel(small_rfm)
    with pytest.warns(PartialPosteriorWarning, match="interrupted after"):
        model.fit(chains=2, draws=10**6, tune=20, random_seed=1, progressbar=False, allow_partial=True)
    post = model.idata_.posterior
    assert 0 < post.sizes["draw"] < 10**6
    assert all(np.isfinite(post[p]).all() for p in model.param_names)
    settings = json.loads(post.attrs["clvbayes_fit"])
    assert settings["partial"] is True and settings["draws_completed"] == post.sizes["draw"]
    assert model.idata_.sample_stats.sizes["draw"] == post.sizes["draw"]
    np.testing.assert_allclose(model.params_["r"], float(post["r"].mean()))


def test_pymc_interrupt_raises_and_keeps_no_fit(small_rfm):
    # PyMC too swallows KeyboardInterrupt and returns the shorter trace drawn so far
    def callback(trace, draw):
        if len(trace) == 30:
            _sigint()

    model = clvbayes.BetaGeoModel(small_rfm)
    with pytest.raises(KeyboardInterrupt, match="interrupted"):
        model.fit(sampler="pymc", chains=1, cores=1, draws=500, tune=20, random_seed=1, progressbar=False,
                  callback=callback)
    for name in FIT_ATTRIBUTES:
        assert not hasattr(model, name), name


def test_incomplete_trace_is_detected():
    from clvbayes.models.bayesian import _check_complete

    r = np.ones((2, 10))
    r[1, 6:] = np.nan  # chain 1 stopped after 6 draws
    idata = az.from_dict(posterior={"r": r}, sample_stats={"diverging": np.zeros((2, 10), bool)})
    with pytest.raises(KeyboardInterrupt, match="after 6 of 10 draws"):
        _check_complete(idata, ("r",), 2, 10, False)
    with pytest.warns(PartialPosteriorWarning):
        kept, n = _check_complete(idata, ("r",), 2, 10, True)
    assert n == 6 and kept.posterior.sizes["draw"] == 6 and kept.sample_stats.sizes["draw"] == 6
    full = az.from_dict(posterior={"r": np.ones((2, 10))})
    assert _check_complete(full, ("r",), 2, 10, False)[1] is None
    with pytest.raises(KeyboardInterrupt):  # a chain missing (PyMC drops unfinished chains)
        _check_complete(full, ("r",), 3, 10, False)


# -- the command line ----------------------------------------------------------------------
def fake_nuts_fit(model, settings, progressbar):
    """Stands in for the workflow's NUTS fit: a small posterior around the MLE, with the
    metadata of a real fit (fast, so that every later step can be reached)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit_mle()
    rng = np.random.default_rng(0)
    shape = (2, 50)
    posterior = {n: v * np.exp(0.02 * rng.standard_normal(shape)) for n, v in model.params_.items()}
    stats = {"diverging": np.zeros(shape, dtype=bool), "energy": rng.standard_normal(shape)}
    idata = az.from_dict(posterior=posterior, sample_stats=stats)
    model.idata_ = model._attach_metadata(idata, {"method": "nuts", "sampler": "fake"})
    model.params_ = model._posterior_means(model.idata_)
    return model


def small_log(transactions: pd.DataFrame, n: int = 300) -> pd.DataFrame:
    """The purchases of the first ``n`` CDNOW customers."""
    ids = np.sort(transactions["customer_id"].unique())[:n]
    return transactions.loc[transactions["customer_id"].isin(ids)]


@pytest.fixture
def log_csv(tmp_path, cdnow_transactions):
    log = small_log(cdnow_transactions)
    path = tmp_path / "log.csv"
    pd.DataFrame({"customer_id": log["customer_id"], "date": log["date"].dt.strftime("%Y-%m-%d"),
                  "amount": log["amount"]}).to_csv(path, index=False)
    return path


def run_fit_cli(log_csv, out):
    """`clvbayes fit` with a holdout on ``log_csv`` (patch ``clvbayes.workflow._fit`` first)."""
    import matplotlib

    matplotlib.use("Agg")
    return main(["fit", str(log_csv), "--calibration-end", "1997-09-30", "--observation-end", "1998-06-30",
                 "--value-draws", "50", "--seed", "3", "--quiet", "--out", str(out)])


def _raise(*args, **kwargs):
    raise KeyboardInterrupt


# Each step of `clvbayes fit`, in order: reading, summaries, fits, holdout check, tracking,
# value, figures and files.
STEPS = [
    "clvbayes.data.read.read_transactions",
    "clvbayes.rfm_summary",
    "clvbayes.calibration_holdout_split",
    "clvbayes.workflow._fit",
    pytest.param("clvbayes.holdout_validation", marks=pytest.mark.slow),
    pytest.param("clvbayes.purchase_tracking", marks=pytest.mark.slow),
    pytest.param("clvbayes.workflow._diagnostics", marks=pytest.mark.slow),
    pytest.param("clvbayes.churn_analysis", marks=pytest.mark.slow),
    pytest.param("clvbayes.customer_equity", marks=pytest.mark.slow),
    pytest.param("clvbayes.value.quantities.expected_purchases", marks=pytest.mark.slow),
    pytest.param("clvbayes.lifecycle_stages", marks=pytest.mark.slow),
    pytest.param("clvbayes.report.figures.report_figures", marks=pytest.mark.slow),
    pytest.param("clvbayes.value.validation.HoldoutValidation.customer_table", marks=pytest.mark.slow),
    pytest.param("clvbayes.GammaGammaModel.save", marks=pytest.mark.slow),
    pytest.param("clvbayes.report.html.render_html", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("step", STEPS)
def test_cli_interrupted_at_any_step_exits_130_and_writes_nothing(step, tmp_path, log_csv, monkeypatch, capsys):
    out = tmp_path / "report"
    monkeypatch.setattr(step if step == "clvbayes.workflow._fit" else "clvbayes.workflow._fit",
                        _raise if step == "clvbayes.workflow._fit" else fake_nuts_fit)
    monkeypatch.setattr(step, _raise)
    code = run_fit_cli(log_csv, out)
    assert code == 130
    assert "interrupted; nothing was written" in capsys.readouterr().err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]  # no temporary folder left
