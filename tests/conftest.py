import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.datasets import load_cdnow_sample


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
