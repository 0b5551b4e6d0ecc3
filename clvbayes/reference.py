"""Published estimates the package reproduces, read from the bundled ``published.json``.

The file is a copy of the project's reference sheet: values with their sources
(Fader, Hardie & Lee 2005, Marketing Science 24(2) and JMR 42(4)).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

__all__ = ["published_estimates"]


@cache
def published_estimates() -> dict:
    """The published CDNOW-sample estimates: ``{"bgnbd": {...}, "gamma_gamma": {...}}``.

    Each entry holds ``source``, ``params`` (the most precise published values) and, for
    BG/NBD, ``log_likelihood``.
    """
    raw = json.loads(
        resources.files("clvbayes.datasets").joinpath("data", "published.json").read_text("utf-8")
    )
    bg = raw["bgnbd_cdnow_sample_39w_mle"]
    precise = dict(bg["six_digits_from_an_independent_implementation"])
    gg = raw["gamma_gamma_cdnow_sample_39w_mle"]
    return {
        "bgnbd": {
            "source": bg["source"],
            "params": {k: precise[k] for k in ("r", "alpha", "a", "b")},
            "log_likelihood": precise["log_likelihood"],
        },
        "gamma_gamma": {"source": gg["source"], "params": dict(gg["rounded"])},
    }
