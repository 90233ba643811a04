"""Outliers: points far from their neighbours, from the k-nearest-neighbour graph.

Two scores, both read off one :class:`~datagauge.graph.NeighborGraph` in O(n k) vectorised
NumPy (no new search when a graph is given):

- ``"lof"``: the local outlier factor of Breunig et al. (SIGMOD 2000), exactly as
  scikit-learn's ``LocalOutlierFactor`` computes it on the same neighbours;
- ``"knn_distance"``: the distance to the k-th nearest neighbour (Ramaswamy et al., SIGMOD 2000).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._results import OutlierResult
from ._validation import check_choice, check_contamination, check_not_both, check_real
from .graph import as_graph

__all__ = ["local_outlier_factor", "outliers", "worst_first"]

#: scikit-learn's guard against a zero mean reachability distance (more than k duplicates).
LRD_EPSILON = 1e-10
#: Default LOF threshold: scikit-learn's ``contamination="auto"`` offset (-1.5), negated.
LOF_THRESHOLD = 1.5
#: Default knn_distance threshold: Tukey's upper fence Q3 + IQR_FACTOR * (Q3 - Q1).
IQR_FACTOR = 1.5


def local_outlier_factor(
    distances: NDArray[np.floating[Any]], indices: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Local outlier factor of every point from its k-NN lists.

    Parameters
    ----------
    distances : ndarray of float, shape (n_samples, k)
        Distances to the k nearest other points, ascending along each row.
    indices : ndarray of int64, shape (n_samples, k)
        Their indices (every entry in ``[0, n_samples)``).

    Returns
    -------
    ndarray of float64, shape (n_samples,)
        ``LOF(a) = mean over neighbours b of lrd(b) / lrd(a)`` with
        ``lrd(a) = 1 / (mean_b reach(a, b) + 1e-10)``,
        ``reach(a, b) = max(k_distance(b), d(a, b))`` and ``k_distance(b)`` the distance of b
        to its k-th neighbour: scikit-learn's ``-LocalOutlierFactor(n_neighbors=k)
        .fit(x).negative_outlier_factor_`` given the same neighbours.
    """
    d = np.asarray(distances, dtype=np.float64)
    k_distance = d[:, -1]
    reach = np.maximum(d, k_distance[indices])
    lrd = 1.0 / (reach.mean(axis=1) + LRD_EPSILON)
    lof: NDArray[np.float64] = (lrd[indices] / lrd[:, None]).mean(axis=1)
    return lof


def worst_first(scores: NDArray[np.float64]) -> NDArray[np.int64]:
    """Indices of `scores` (float64 (n,), no NaN) by score descending; equal scores by index
    ascending. Shared by the graph analyses."""
    order: NDArray[np.int64] = np.lexsort((np.arange(scores.size), -scores)).astype(np.int64)
    return order


def outliers(
    embeddings_or_graph: Any,
    *,
    method: Literal["lof", "knn_distance"] = "lof",
    k: int = 20,
    contamination: float | None = None,
    threshold: float | None = None,
    index: Any = None,
    n_jobs: int | None = None,
) -> OutlierResult:
    """Score every point by how far it lies from its neighbours and flag the outliers.

    Parameters
    ----------
    embeddings_or_graph : array-like of shape (n_samples, n_features), or NeighborGraph
        Finite real numbers (converted once to float32 and searched), or a graph from
        :func:`datagauge.neighbor_graph` with at least `k` neighbours per point (its first `k`
        are used; no new search).
    method : {"lof", "knn_distance"}, default "lof"
        ``"lof"``: the local outlier factor, about 1 inside a cluster and larger for points
        less dense than their neighbours; it equals scikit-learn's
        ``-LocalOutlierFactor(n_neighbors=k).fit(x).negative_outlier_factor_`` (the opposite
        sign: larger = more outlying here; exactly, up to float32 neighbour distances).
        ``"knn_distance"``: the Euclidean distance to the k-th nearest neighbour.
    k : int, default 20
        Neighbours per point, ``1 <= k < n_samples``.
    contamination : float, optional
        Share of points to flag, in (0, 0.5], as scikit-learn's ``contamination``: the
        threshold is the ``100 * (1 - contamination)``-th percentile of the scores (scikit-
        learn's ``offset_``, negated) and points strictly above it are flagged.
    threshold : float, optional
        Flag the points whose score is strictly above this value.
    index : {"exact", "kdtree", "brute", "flat", "hnsw", "ivf"}, neighbors spec or faiss.Index
        k-NN engine when embeddings are given (see :func:`datagauge.neighbor_graph`);
        default None (``"exact"``); an error with a NeighborGraph, whose lists are used as
        they are.
    n_jobs : int or None
        Threads for the search; ``None`` or -1 for all CPUs.

    Returns
    -------
    OutlierResult
        ``scores`` (float64 (n,)), ``indices`` (int64, every point, most outlying first),
        ``flagged`` (int64, most outlying first), ``method``, ``k``, ``threshold``.

    Raises
    ------
    TypeError, ValueError
        On invalid input (an unknown method, `contamination` outside (0, 0.5], both
        `contamination` and `threshold`, a graph with fewer than `k` neighbours), with a
        message that says how to fix it.

    Notes
    -----
    With neither `contamination` nor `threshold`, the default threshold is 1.5 for LOF
    (scikit-learn's ``contamination="auto"``), and for the k-th neighbour distance Tukey's
    upper fence ``Q3 + 1.5 (Q3 - Q1)`` of the scores (quartiles by linear interpolation,
    ``np.percentile``). LOF ignores the scale of the data (multiplying every embedding by a
    constant leaves it unchanged, apart from scikit-learn's 1e-10 guard); the k-th neighbour
    distance scales with it. More than k exact copies of a point make its LOF meaningless
    (a zero reachability distance, as in scikit-learn): remove duplicates first
    (:func:`datagauge.duplicates`).

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> x = np.random.default_rng(0).normal(size=(500, 4))
    >>> x[0] = 8.0
    >>> res = datagauge.outliers(x, k=20)
    >>> int(res.indices[0])
    0
    """
    method = check_choice(method, "method", ("lof", "knn_distance"))  # type: ignore[assignment]
    check_not_both(threshold, "threshold", contamination, "contamination")
    share = None if contamination is None else check_contamination(contamination)
    fixed = None if threshold is None else check_real(threshold, "threshold")
    graph = as_graph(embeddings_or_graph, k, index=index, n_jobs=n_jobs)

    if method == "lof":
        scores = local_outlier_factor(graph.distances, graph.indices)
    else:
        scores = graph.distances[:, -1].astype(np.float64)

    if fixed is not None:
        cut = fixed
    elif share is not None:
        # scikit-learn: offset_ = percentile(-LOF, 100 c); flagged where -LOF < offset_.
        cut = -float(np.percentile(-scores, 100.0 * share))
    elif method == "lof":
        cut = LOF_THRESHOLD
    else:
        q1, q3 = np.percentile(scores, [25.0, 75.0])
        cut = float(q3 + IQR_FACTOR * (q3 - q1))

    order = worst_first(scores)
    flagged = order[scores[order] > cut]
    return OutlierResult(
        scores=scores,
        indices=order,
        flagged=np.ascontiguousarray(flagged),
        method=method,
        k=graph.k,
        threshold=float(cut),
    )
