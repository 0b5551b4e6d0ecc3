"""clvbayes: Bayesian customer lifetime value with BG/NBD and Gamma-Gamma models."""

from clvbayes._version import __version__

__all__ = ["__version__"]
