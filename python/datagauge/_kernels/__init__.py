"""Numba kernels, called only by the public modules (importing this package compiles nothing)."""
