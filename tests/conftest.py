import numpy as np
import pandas as pd
import pytest

import os

from hypothesis import settings

import clvbayes
from clvbayes.datasets import load_cdnow_sample

# CI runs the property tests on a fixed seed (a run is reproducible; a failure found there
# is found again); local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def cdnow_transactions() -> pd.DataFrame:
    return load_cdnow_sample()


@pytest.fixture(scope="session")
def cdnow_split(cdnow_transactions) -> pd.DataFrame:
    """The literature's split: calibration to 1997-09-30, holdout to 1998-06-30, weeks."""
    return clvbayes.calibration_holdout_split(
        cdnow_transactions, calibration_end="1997-09-30", observation_end="1998-06-30"
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20051)


#: The fast sampler settings the CLI tests use (the report is checked, not the posterior).
FAST_CLI = ["--draws", "200", "--tune", "200", "--chains", "2", "--value-draws", "200", "--seed", "3"]


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory):
    """``clvbayes demo`` run once per session into a temporary folder: (folder, stdout, stderr, exit code)."""
    import contextlib
    import io

    import matplotlib

    matplotlib.use("Agg")
    from clvbayes.cli import main

    out = tmp_path_factory.mktemp("demo") / "report"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["demo", "--out", str(out), *FAST_CLI])
    return out, stdout.getvalue(), stderr.getvalue(), code
