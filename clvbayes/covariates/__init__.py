"""Static customer covariates: joining attribute tables and building design matrices."""

from clvbayes.covariates.attributes import join_attributes
from clvbayes.covariates.design import Design, build_design

__all__ = ["Design", "build_design", "join_attributes"]
