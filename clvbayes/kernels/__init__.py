"""Numba kernels: pure functions on float64 arrays, no pandas or PyMC imports.

Each formula of the BG/NBD and Gamma-Gamma models is written once here; the model
layer, the predictions and the simulator checks call these functions.
"""
