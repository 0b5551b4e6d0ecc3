"""Customer value over the posterior: CLV, P(alive), expected purchases, equity, churn.

Each function evaluates its quantity per (parameter draw, customer) with the Numba kernels
of :mod:`clvbayes.kernels.clv` and summarises over the draws, streaming over blocks of
customers so that a million customers and thousands of draws fit in memory.
"""
