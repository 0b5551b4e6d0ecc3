"""Purchase/dropout model families on one protocol (:mod:`clvbayes.families._protocol`).

Each family module writes its model once; the registry lines below are the only place that
lists them.
"""

from clvbayes.families._protocol import CORES, Family, family_names, get_family, register

from clvbayes.families import bgnbd  # noqa: E402,F401  (registers "bgnbd")
from clvbayes.families import pareto_nbd  # noqa: E402,F401  (registers "pnbd")
from clvbayes.families import mbgnbd  # noqa: E402,F401  (registers "mbgnbd")

__all__ = ["CORES", "Family", "family_names", "get_family", "register"]
