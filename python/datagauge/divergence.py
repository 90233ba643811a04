"""Divergence between two sets of embeddings: how far apart their distributions are.

The Henze-Penrose divergence estimated by counting neighbours across the two samples, as
DataEval 1.1.4's ``divergence_fnn`` and ``divergence_mst`` (``dataeval/core/_divergence.py``;
Sekeh, Oselio and Hero, IEEE TSP 2020; Henze and Penrose, Annals of Statistics 1999):

- ``"fnn"``: points whose nearest neighbour (in the two samples pooled) lies in the other sample;
- ``"mst"``: minimum-spanning-tree edges between the samples (:mod:`datagauge.mst`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._results import DivergenceResult
from ._validation import check_choice, check_membership, check_two_samples
from .graph import NeighborGraph, as_graph, neighbor_graph
from .mst import minimum_spanning_tree

__all__ = ["divergence", "fnn_divergence"]


def divergence(
    a: Any,
    b: Any,
    *,
    method: Literal["fnn", "mst"] = "fnn",
    tree: Literal["exact", "knn"] = "exact",
    index: Any = "exact",
    n_jobs: int | None = None,
) -> DivergenceResult:
    """Henze-Penrose divergence between the distributions of two samples of embeddings.

    Parameters
    ----------
    a, b : array-like of shape (n_a, n_features) and (n_b, n_features)
        Finite real numbers, at least one row each, the same number of features; converted
        once to float32. Or, for ``method="fnn"``, `a` a :class:`~datagauge.graph.NeighborGraph`
        of the two samples pooled (in any order) and `b` a boolean array of shape
        (n_samples,) marking the graph's rows that belong to the second sample (no search).
    method : {"fnn", "mst"}, default "fnn"
        ``"fnn"``: nearest-neighbour count (DataEval's ``divergence_fnn``); ``"mst"``:
        spanning-tree count (DataEval's ``divergence_mst``).
    tree : {"exact", "knn"}, default "exact"
        ``"mst"`` only: the Euclidean minimum spanning tree, or DataEval's spanning tree of
        the 15-NN graph (:func:`datagauge.mst.minimum_spanning_tree`).
    index : {"exact", "kdtree", "brute", "flat", "hnsw", "ivf"}, neighbors spec or faiss.Index
        k-NN engine (``"mst"``: exact engines only).
    n_jobs : int or None
        Threads; ``None`` or -1 for all CPUs.

    Returns
    -------
    DivergenceResult
        ``divergence`` (float in [0, 1]), ``errors``, ``method``, ``tree``, ``n_a``, ``n_b``.

    Raises
    ------
    TypeError, ValueError
        On invalid input (NaN, different feature counts, an empty sample, an unknown method,
        a graph for ``"mst"``), with a message that says how to fix it.

    Notes
    -----
    The samples are pooled (``a`` first) and labelled by origin. ``"fnn"``: ``errors`` is the
    number of points whose nearest other point comes from the other sample. ``"mst"``:
    ``errors`` is the number of tree edges between the samples minus one (two samples that
    do not overlap still need one edge). In both, ``divergence = max(0, 1 - (n_a + n_b) /
    (2 n_a n_b) * errors)``, DataEval 1.1.4's formula, so the values equal DataEval's on the
    same neighbours or tree. Neighbours at exactly equal distances (duplicate points) are
    ordered by index here, arbitrarily by scikit-learn in DataEval. DataEval builds its tree
    from the 15-NN graph (``tree="knn"`` repeats it); the default ``tree="exact"`` is the
    Euclidean minimum spanning tree the estimator assumes, the same tree on typical data
    (see :func:`datagauge.bayes_error`).

    The estimate is symmetric (``divergence(a, b)`` equals ``divergence(b, a)`` up to ties in
    distance) and invariant to scaling or translating both samples together.

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(0, 1, (300, 4)), rng.normal(0, 1, (300, 4))
    >>> datagauge.divergence(a, b).divergence < 0.2
    True
    >>> datagauge.divergence(a, b + 10).divergence
    1.0

    From a graph of the pooled samples, the same number without a search:

    >>> g = datagauge.neighbor_graph(np.concatenate([a, b]), 5)
    >>> in_b = np.arange(600) >= 300
    >>> datagauge.divergence(g, in_b) == datagauge.divergence(a, b)
    True
    """
    method = check_choice(method, "method", ("fnn", "mst"))  # type: ignore[assignment]
    tree = check_choice(tree, "tree", ("exact", "knn"))  # type: ignore[assignment]
    if isinstance(a, NeighborGraph):
        if method != "fnn":
            raise ValueError(
                "method='mst' needs the embeddings (a spanning tree is not in a k-NN graph); "
                "pass the two samples, or use method='fnn' with the graph."
            )
        graph = as_graph(a, 1)
        in_b = check_membership(b, graph.n_samples, name="b", first="a", second="b")
        return fnn_divergence(graph.indices[:, 0], in_b)
    x_a, x_b = check_two_samples(a, b, names=("a", "b"))
    n_a, n_b = x_a.shape[0], x_b.shape[0]
    x = np.ascontiguousarray(np.concatenate([x_a, x_b]))
    origin = np.zeros(n_a + n_b, dtype=np.int64)
    origin[n_a:] = 1
    if method == "fnn":
        graph = neighbor_graph(x, 1, index=index, n_jobs=n_jobs)
        return fnn_divergence(graph.indices[:, 0], origin.astype(bool))
    spanning = minimum_spanning_tree(x, method=tree, index=index, n_jobs=n_jobs)
    errors = int(np.count_nonzero(origin[spanning.source] != origin[spanning.target])) - 1
    return _result(errors, "mst", tree, n_a, n_b)


def fnn_divergence(nearest: NDArray[np.int64], in_b: NDArray[np.bool_]) -> DivergenceResult:
    """The ``"fnn"`` divergence from the nearest other point (int64 (n,)) of every point of
    the pooled samples, `in_b` (bool (n,)) marking the second sample's points."""
    n_b = int(np.count_nonzero(in_b))
    errors = int(np.count_nonzero(in_b[nearest] != in_b))
    return _result(errors, "fnn", None, in_b.size - n_b, n_b)


def _result(errors: int, method: str, tree: str | None, n_a: int, n_b: int) -> DivergenceResult:
    value = max(0.0, 1 - ((n_a + n_b) / (2 * n_a * n_b)) * errors)
    return DivergenceResult(
        divergence=float(value), errors=errors, method=method, tree=tree, n_a=n_a, n_b=n_b
    )
