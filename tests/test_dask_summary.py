"""RFM summaries on Dask equal the pandas summaries exactly (issue 6, items 1 and 4).

A 2-worker ``LocalCluster`` (separate processes, so data really crosses process borders
through the P2P shuffle) summarises the bundled CDNOW log and simulated logs written as
Parquet; the results are compared with ``pd.testing.assert_frame_equal`` (exact, dtypes
included) to :func:`clvbayes.rfm_summary` / :func:`clvbayes.calibration_holdout_split` on
the same log in memory.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.distributed import GAMMA_GAMMA_COLUMNS, compress_summary
from clvbayes.distributed._dask import DASK_EXTRA_HINT

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

CAL_END, OBS_END = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _same(dask_result, expected: pd.DataFrame) -> pd.DataFrame:
    got = dask_result.compute().sort_index()
    pd.testing.assert_frame_equal(got, expected)
    return got


def simulate_log(n_customers: int, mean_repeat: float, seed: int) -> pd.DataFrame:
    """A purchase log over two years: first purchase in the first year, then a Poisson
    number of purchases at uniform times up to the end; several purchases of one customer
    on one day happen (their amounts are summed), rows are shuffled so each customer's
    purchases are spread over all Parquet parts."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2020-01-01T00:00:00", "s")
    horizon = 730 * 86400
    first = rng.integers(0, horizon // 2, n_customers)
    n_repeat = rng.poisson(mean_repeat, n_customers)
    cust = np.repeat(np.arange(n_customers, dtype=np.int64), 1 + n_repeat)
    offset = np.repeat(first, 1 + n_repeat)
    is_first = np.zeros(cust.size, dtype=bool)
    is_first[np.concatenate([[0], np.cumsum(1 + n_repeat)[:-1]])] = True
    later = offset + (rng.random(cust.size) * (horizon - offset)).astype(np.int64)
    when = np.where(is_first, offset, later)
    amount = np.round(rng.lognormal(3.0, 0.8, cust.size), 2)
    order = rng.permutation(cust.size)
    return pd.DataFrame(
        {
            "customer_id": cust[order],
            "date": (start + when[order].astype("timedelta64[s]")).astype("datetime64[us]"),
            "amount": amount[order],
        }
    )


# -- CDNOW --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return clvbayes.datasets.load_cdnow_sample()


def test_cdnow_rfm_summary_exact(client, cdnow):
    expected = clvbayes.rfm_summary(cdnow)
    result = clvbayes.rfm_summary(dd.from_pandas(cdnow, npartitions=4))
    assert isinstance(result, dd.DataFrame)
    got = _same(result, expected)
    assert got.attrs["time_unit"] == "W"
    _same(clvbayes.rfm_summary(dd.from_pandas(cdnow, npartitions=3), observation_end=OBS_END, time_unit="D"),
          clvbayes.rfm_summary(cdnow, observation_end=OBS_END, time_unit="D"))


def test_cdnow_calibration_holdout_split_exact(client, cdnow):
    ddf = dd.from_pandas(cdnow, npartitions=4)
    expected = clvbayes.calibration_holdout_split(cdnow, calibration_end=CAL_END, observation_end=OBS_END)
    got = _same(clvbayes.calibration_holdout_split(ddf, calibration_end=CAL_END, observation_end=OBS_END), expected)
    assert got.attrs["time_unit"] == "W"
    # observation_end found by the max reduction
    _same(
        clvbayes.calibration_holdout_split(ddf, calibration_end=CAL_END),
        clvbayes.calibration_holdout_split(cdnow, calibration_end=CAL_END),
    )


def test_cdnow_split_global_checks(client, cdnow):
    ddf = dd.from_pandas(cdnow, npartitions=2)
    with pytest.raises(clvbayes.data.validate.DataValidationError, match="no holdout"):
        clvbayes.calibration_holdout_split(ddf, calibration_end="1999-01-01")
    with pytest.raises(ValueError, match="must come after"):
        clvbayes.calibration_holdout_split(ddf, calibration_end=CAL_END, observation_end="1997-01-01")


def test_no_shuffle_when_partitioned_by_customer(client, cdnow):
    by_customer = cdnow.sort_values("customer_id", kind="stable").reset_index(drop=True)
    ddf = dd.from_pandas(by_customer.set_index("customer_id"), npartitions=4)
    assert ddf.known_divisions
    result = clvbayes.rfm_summary(ddf)
    assert not any("shuffle" in str(key) for key in result.__dask_graph__())
    _same(result, clvbayes.rfm_summary(by_customer))


def test_validation_errors_surface_on_compute(client, cdnow):
    bad = cdnow.assign(amount=cdnow["amount"].where(cdnow.index != 10, -5.0))
    with pytest.raises(clvbayes.data.validate.DataValidationError, match="negative amounts"):
        clvbayes.rfm_summary(dd.from_pandas(bad, npartitions=2), observation_end=OBS_END).compute()
    # refunds="net" nets within a customer's history, which lies in one partition
    _same(
        clvbayes.rfm_summary(dd.from_pandas(bad, npartitions=3), refunds="net"),
        clvbayes.rfm_summary(bad, refunds="net"),
    )


# -- simulated logs as Parquet ------------------------------------------------------------
def _check_parquet_log(tmp_path, log: pd.DataFrame, npartitions: int) -> None:
    path = tmp_path / "log"
    path.mkdir()
    # written by pandas (parts in name order = row order) so the data never enter a graph
    for i, part in enumerate(np.array_split(np.arange(len(log)), npartitions)):
        log.iloc[part].to_parquet(path / f"part.{i:03d}.parquet", index=False)
    assert len(list(path.glob("*.parquet"))) == npartitions

    expected = clvbayes.rfm_summary(log)
    summary = clvbayes.rfm_summary(path).persist()  # observation_end by the max reduction
    got = _same(summary, expected)
    # str paths too, and a given observation_end
    split_expected = clvbayes.calibration_holdout_split(
        log, calibration_end="2021-06-30", observation_end="2021-12-31"
    )
    split = clvbayes.calibration_holdout_split(
        str(path), calibration_end="2021-06-30", observation_end="2021-12-31"
    ).persist()
    _same(split, split_expected)

    # compression: a tree reduction on the Dask summary equals compressing in memory
    table = compress_summary(summary)
    assert table["customers"].sum() == log["customer_id"].nunique() == len(got)
    pd.testing.assert_frame_equal(table, compress_summary(expected))
    assert len(table) < len(expected)
    gg = compress_summary(split, columns=GAMMA_GAMMA_COLUMNS)
    pd.testing.assert_frame_equal(gg, compress_summary(split_expected, columns=GAMMA_GAMMA_COLUMNS))
    # and the model fitted on the compressed table equals the fit on the full summary
    # The simulated customers never drop out, so the MLE of a, b runs to the boundary (p -> 0)
    # and both fits say so (WeakIdentificationWarning); they must still agree to the digit.
    with pytest.warns(clvbayes.WeakIdentificationWarning, match="cannot pin down a and b"):
        full = clvbayes.BetaGeoModel(split_expected).fit_mle()
    with pytest.warns(clvbayes.WeakIdentificationWarning, match="cannot pin down a and b"):
        small = clvbayes.BetaGeoModel(compress_summary(split)).fit_mle()  # from the Dask split
    np.testing.assert_allclose(small.params_.to_numpy(), full.params_.to_numpy(), rtol=1e-8)


@pytest.mark.slow  # ~45 s; the CDNOW equalities above run by default
def test_simulated_million_transactions_parquet(client, tmp_path):
    log = simulate_log(200_000, 4.0, seed=6)
    assert 0.9e6 < len(log) < 1.1e6
    _check_parquet_log(tmp_path, log, npartitions=6)


@pytest.mark.slow
def test_simulated_few_million_transactions_parquet(client, tmp_path):
    log = simulate_log(500_000, 5.0, seed=7)
    assert len(log) > 2.5e6
    _check_parquet_log(tmp_path, log, npartitions=12)


def test_compress_summary_input_checks(cdnow):
    summary = clvbayes.rfm_summary(cdnow)
    with pytest.raises(ValueError, match="no column"):
        compress_summary(summary, columns=("frequency", "nope"))
    table = compress_summary(summary)
    # re-compressing a compressed table adds the counts
    pd.testing.assert_frame_equal(compress_summary(pd.concat([table, table]).reset_index(drop=True)),
                                  table.assign(customers=2 * table["customers"]))


# -- without Dask (item 4) ----------------------------------------------------------------
def test_without_dask_pandas_unchanged_and_dask_inputs_name_the_extra(monkeypatch, cdnow, tmp_path):
    expected = clvbayes.rfm_summary(cdnow)
    for name in [m for m in sys.modules if m == "dask" or m.startswith("dask.")]:
        monkeypatch.setitem(sys.modules, name, None)  # "import dask..." now raises ImportError
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)
    pd.testing.assert_frame_equal(clvbayes.rfm_summary(cdnow), expected)
    with pytest.raises(ImportError, match=r"clvbayes\[dask\]") as err:
        clvbayes.rfm_summary(tmp_path / "log.parquet")
    assert DASK_EXTRA_HINT in str(err.value)
    with pytest.raises(ImportError, match="calibration_holdout_split"):
        clvbayes.calibration_holdout_split(str(tmp_path), calibration_end=CAL_END)


def test_pandas_use_does_not_import_dask():
    code = (
        "import sys, clvbayes\n"
        "log = clvbayes.datasets.load_cdnow_sample()\n"
        "clvbayes.rfm_summary(log)\n"
        "clvbayes.calibration_holdout_split(log, calibration_end='1997-09-30')\n"
        "assert not [m for m in sys.modules if m.startswith('dask')], 'dask imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
