"""Model classes: BG/NBD and Gamma-Gamma (maximum likelihood now, Bayesian fits in PyMC)."""
