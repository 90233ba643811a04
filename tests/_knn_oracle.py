"""The exact k-NN oracle of the tile-engine tests (test_screen.py, test_brute.py): every
float32 squared distance computed in the core's order, ranked by (distance, index); and
data of a wide dynamic range."""

from __future__ import annotations

import numpy as np


def float32_sqdist(x: np.ndarray) -> np.ndarray:
    """All pairwise squared distances as the core computes them: float32, feature by feature,
    each square rounded and added in order (no FMA). Self at +inf."""
    x = np.asarray(x, dtype=np.float32)
    n, d = x.shape
    s = np.zeros((n, n), dtype=np.float32)
    with np.errstate(over="ignore", under="ignore"):  # inf where the core's sum overflows too
        for j in range(d):
            t = x[:, None, j] - x[None, :, j]
            s = s + t * t
    np.fill_diagonal(s, np.inf)
    return s


def oracle(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-NN by (float32 distance, index): the answer every exact engine must give."""
    s = float32_sqdist(x)
    n = x.shape[0]
    idx = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        order = np.lexsort((np.arange(n), s[i]))
        idx[i] = order[:k]
    return np.take_along_axis(s, idx, axis=1), idx


def wide_range(seed: int, n: int, d: int, top: int = 15) -> np.ndarray:
    """Magnitudes from 10^-top to 10^top mixed in one matrix (rows and columns). The core
    is given top <= 15 (squared distances stay finite in float32); the public API rescales
    wider data by a power of two first (test_screen.py, test_wide_range_through_the_api)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * 10.0 ** rng.integers(-top, top - 2, (n, 1))
    x *= 10.0 ** rng.integers(-2, 3, (1, d))
    return np.clip(x, -(10.0**top), 10.0**top).astype(np.float32)
