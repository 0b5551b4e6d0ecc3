"""Bundled data sets: the CDNOW purchase logs (Fader & Hardie), with their provenance note.

See ``clvbayes/datasets/data/README.md`` for where the files come from.
"""

from clvbayes.datasets.cdnow import load_cdnow, load_cdnow_sample

__all__ = ["load_cdnow", "load_cdnow_sample"]
