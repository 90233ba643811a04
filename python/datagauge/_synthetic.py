"""Synthetic data with known answers, for tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["PlantedSlices", "planted_slices"]


@dataclass(frozen=True)
class PlantedSlices:
    """Tags, outcomes and the planted answer.

    Attributes
    ----------
    tags : ndarray of bool, shape (n, t)
    correct : ndarray of bool, shape (n,)
    tag_names : list of str
        ``"tag0"``, ``"tag1"``, ...
    slices : tuple of tuple of int
        Tag ids of each planted slice, ascending.
    """

    tags: NDArray[np.bool_]
    correct: NDArray[np.bool_]
    tag_names: list[str]
    slices: tuple[tuple[int, ...], ...]

    def slice_names(self) -> list[tuple[str, ...]]:
        """Each planted slice as a tuple of tag names."""
        return [tuple(self.tag_names[j] for j in s) for s in self.slices]


def planted_slices(
    n: int,
    t: int,
    *,
    sizes: tuple[int, ...] = (2, 3),
    base_error: float = 0.1,
    slice_error: float = 0.6,
    p_range: tuple[float, float] = (0.1, 0.5),
    slice_p_range: tuple[float, float] = (0.3, 0.5),
    seed: int = 0,
) -> PlantedSlices:
    """n samples with t independent tags; samples in a planted slice err far more often.

    Tag j is present with probability p_j drawn uniformly from ``p_range`` (``slice_p_range``
    for the tags of planted slices, so that slices keep some support at small n). The planted
    slices use disjoint random tags, one slice per entry of ``sizes``. A sample is wrong with
    probability ``slice_error`` when it belongs to any planted slice, else ``base_error``.
    """
    rng = np.random.default_rng(seed)
    if sum(sizes) > t:
        raise ValueError(f"the planted slices need {sum(sizes)} distinct tags, but t={t}.")
    p = rng.uniform(p_range[0], p_range[1], t)
    chosen = rng.permutation(t)[: sum(sizes)]
    slices: list[tuple[int, ...]] = []
    start = 0
    for size in sizes:
        ids = tuple(sorted(int(j) for j in chosen[start : start + size]))
        slices.append(ids)
        start += size
    p[chosen] = rng.uniform(slice_p_range[0], slice_p_range[1], chosen.size)
    tags = rng.random((n, t), dtype=np.float32) < p.astype(np.float32)
    in_slice = np.zeros(n, dtype=bool)
    for ids in slices:
        in_slice |= tags[:, list(ids)].all(axis=1)
    error = np.where(in_slice, slice_error, base_error)
    correct = rng.random(n) >= error
    return PlantedSlices(
        tags=tags,
        correct=correct,
        tag_names=[f"tag{j}" for j in range(t)],
        slices=tuple(slices),
    )
