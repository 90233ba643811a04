"""Minimum spanning trees of embeddings, for the Bayes error and divergence estimates.

Two trees:

- ``"exact"``: the Euclidean minimum spanning tree, from the compiled core
  (``_core.euclidean_mst``, ``cpp/include/datagauge/mst.hpp``), never from an n x n matrix.
  Boruvka's rounds take each component's cheapest outgoing edge from the exact k-NN lists
  where a list reaches outside the component, rule a point out where its k-th neighbour
  distance exceeds the component's best candidate, and search exactly (a kd-tree walk that
  skips subtrees inside the component: in the kd-tree the lists came from, else in trees
  built for it) for the few points neither settles.
- ``"knn"``: DataEval 1.1.4's tree (``dataeval.core.minimum_spanning_tree``,
  ``dataeval/core/_mst.py``): Kruskal's algorithm over the k nearest neighbours of every point
  (k = 15), and, when that graph is disconnected, one more pass over the nearest point of
  every later cluster. It is a spanning tree but not always the minimum one: an edge the k-NN
  graph lacks can be shorter than one it uses, and the second pass offers each cluster only
  its points' nearest point among all later clusters (three clusters A, B, C with A nearest B
  never get A's edge to C, even when the minimum tree needs it).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from . import _core
from ._results import SpanningTree
from ._threads import resolve_n_jobs
from ._validation import check_choice, check_embeddings, check_k
from .graph import NeighborGraph
from .neighbors import (
    Exact,
    _self_knn_tree,
    distances,
    query_knn,
    resolve_index,
    scale_down,
    scale_exponent,
)

__all__ = ["DATAEVAL_K", "EXACT_K", "EXACT_K_TREE", "minimum_spanning_tree"]

#: Neighbours per point of DataEval's k-NN graph (``minimum_spanning_tree(embeddings, k=15)``).
DATAEVAL_K = 15
#: Neighbours per point whose lists settle the exact tree's edges when another engine than a
#: kd-tree searched them, so that Boruvka builds its own search trees (any k gives the same
#: tree; a larger k searches fewer points). Measured at k = 20 on 2 cores: 50,000 Gaussian points in
#: 3-d, no point searched (0.75 s with the k-NN search); 10,000 Fashion-MNIST images as raw
#: 784-d pixels, 571 points searched (6.7 s; 11.7 s at k = 10); 20 well-separated clusters of
#: 2,500 points in 32-d, every point of the clusters still closed in the last rounds (14.5 s,
#: DataEval's k-NN tree 7.5 s). Again with the seeded kd-tree lists (commit 1dafe87): the
#: pixels 3.05 s at k = 20 (571 searched), 3.2-3.7 s at k = 15 (762); 100k x 64 points of 8
#: latent dimensions plus noise (bench_compare's) 2.9-3.2 s at k = 20 (6,627 searched),
#: 2.3-2.4 s at k = 15 (9,531), 2.0-2.2 s at k = 10 (14,339): no k is best for both. Again
#: with Boruvka's search trees kept across rounds (commit 59fb655): the 100k points 1.94 s at
#: k = 20, 1.86 s at 15, 1.99 s at 10, 2.98 s at 8 (17,506 searched); the pixels 2.85 s at
#: k = 20, 3.26 s at 15, 5.98 s at 10 (1,053 searched).
EXACT_K = 20
#: Neighbours per point of the exact tree's lists when a kd-tree searched them: Boruvka then
#: searches in that tree (``KDTree.nearest_outside`` in the core), whose searches cost about
#: what a list entry saves, so short lists pay. Measured (commit 8840468; 2 threads while
#: another process held a CPU), the lists' search plus Boruvka in their tree, k = 20 against
#: k = 6: 100k x 64 (bench_compare's
#: Bayes-error data) 2.16 -> 1.42 s (22,333 points searched), its divergence data 2.01 ->
#: 1.38 s (64,481), 50k x 3 Gaussian 0.27 -> 0.16 s, 20k x 16 Gaussian 0.60 -> 0.47 s,
#: 20 separated clusters of 2,500 points in 32-d 1.90 -> 1.83 s, 20k x 64 uniform 1.48 ->
#: 1.29 s; 4 or 5 neighbours did no better on the divergence data, 8 or 10 worse on both.
EXACT_K_TREE = 6
_LEAF_SIZE = 16


def minimum_spanning_tree(
    embeddings: Any,
    *,
    method: Literal["exact", "knn"] = "exact",
    k: int | None = None,
    graph: NeighborGraph | None = None,
    index: Any = "exact",
    n_jobs: int | None = None,
) -> SpanningTree:
    """The minimum spanning tree of the points under Euclidean distance.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        Finite real numbers, at least 2 rows; converted once to float32.
    method : {"exact", "knn"}, default "exact"
        ``"exact"``: the Euclidean minimum spanning tree (see Notes). ``"knn"``: DataEval
        1.1.4's spanning tree of the k-NN graph, which is not always minimal (module
        docstring).
    k : int, optional
        Neighbours per point of the k-NN lists, ``1 <= k < n_samples``. Default for
        ``"exact"`` (the lists only save searches; any k gives the same tree): 6 when a
        kd-tree searches the lists (Boruvka then searches in the same tree), 20 otherwise
        (``EXACT_K_TREE``, ``EXACT_K``); DataEval's 15 for ``"knn"``; each is capped at
        ``n_samples - 1``. With a `graph` the default is 20 (``"exact"``) or 15.
    graph : NeighborGraph, optional
        A graph from :func:`datagauge.neighbor_graph` of these embeddings, searched exactly,
        with at least `k` neighbours per point: its lists are used instead of a new search.
    index : {"exact", "kdtree", "brute", "flat"} or Exact
        Exact k-NN engine for the lists when no graph is given (an approximate engine
        cannot prove the tree and is refused).
    n_jobs : int or None
        Threads; ``None`` or -1 for all CPUs.

    Returns
    -------
    SpanningTree
        ``source``, ``target`` (int64 (n - 1,), source < target), ``distances`` (float32),
        sorted by (length, source, target); ``total_length``, ``method``, ``k``,
        ``n_searched``.

    Raises
    ------
    TypeError, ValueError
        On invalid input (fewer than 2 samples, an unknown method, k out of range, an
        approximate index or graph, a graph of other data), with a message that says how to
        fix it.

    Notes
    -----
    *Exact.* Edges are ordered by (squared distance in the core's float32 arithmetic, smaller
    endpoint, larger endpoint), a strict order, so the tree is unique. Every Boruvka round
    gives each component C its cheapest outgoing edge. A point whose k-NN list reaches
    outside C has its cheapest outside edge at the first such neighbour (the list holds the k
    nearest, so nothing closer lies outside); a point whose list stays inside C has no outside
    point closer than its k-th neighbour, which rules it out when that distance exceeds the
    best edge the lists gave C; the remaining points are searched exactly, for the nearest
    point outside C, in a kd-tree whose subtrees inside C are skipped. The answer is
    therefore the minimum spanning tree whatever k is: its total length and its multiset of
    edge lengths equal those of every minimum spanning tree of the pairwise distances (e.g.
    ``scipy.sparse.csgraph.minimum_spanning_tree`` of the dense distance matrix), and its
    edges equal them when no two distances are equal.

    *DataEval.* ``"knn"`` repeats DataEval 1.1.4's construction step for step (the same
    Numba sort of the float32 edge lengths, the same union-by-rank disjoint set, the same
    second pass over the clusters in the order of their roots), so the edges are DataEval's
    whenever the float32 neighbour distances are; they may differ where DataEval's
    scikit-learn search rounds a distance differently or orders neighbours at exactly equal
    distances otherwise. Where the k-NN graph is connected and no group of equal lengths
    closes a cycle (checked), the order DataEval's sort gives equal lengths cannot change the
    tree, and the lengths are sorted by a plain (length, position) sort instead, about 4x
    faster than replaying Numba's quicksort. On data whose 15-NN graph is connected and holds
    the minimum tree (as on every dataset in this package's tests but one built to show the
    difference), the two methods give the same tree.

    Examples
    --------
    >>> import numpy as np
    >>> from datagauge.mst import minimum_spanning_tree
    >>> x = np.random.default_rng(0).normal(size=(200, 3))
    >>> tree = minimum_spanning_tree(x)
    >>> tree.source.shape, bool(np.all(tree.source < tree.target))
    ((199,), True)
    """
    method = check_choice(method, "method", ("exact", "knn"))  # type: ignore[assignment]
    x = check_embeddings(embeddings)
    n = x.shape[0]
    if k is None:  # the lists' best length depends on the engine that searches (EXACT_K_TREE)
        k_other = check_k(min(EXACT_K if method == "exact" else DATAEVAL_K, max(n - 1, 1)), n)
        k = min(EXACT_K_TREE, k_other) if method == "exact" else k_other
    else:
        k = k_other = check_k(k, n)
    n_threads = resolve_n_jobs(n_jobs)
    exponent = scale_exponent(x.min(axis=0), x.max(axis=0))
    scaled = scale_down(x, exponent)
    list_sq: NDArray[np.float32] | None = None  # the lists' squared distances of `scaled`
    tree = None  # the kd-tree over `scaled` that gave the lists, where one did
    if graph is not None:
        k = k_other
        list_dist, idx = _graph_lists(graph, x, k)
    else:
        spec = resolve_index(index)
        if not isinstance(spec, Exact):
            raise ValueError(
                "the spanning tree needs exact k-NN lists (an approximate search can miss the "
                "neighbour that proves an edge); use index='exact', 'kdtree', 'brute' or "
                "'flat'."
            )
        # what self_knn_distances does, keeping the squared distances and the tree for the
        # exact tree's searches
        list_sq, idx, tree = _self_knn_tree(scaled, k, spec, n_threads, "auto", k_other)
        k = idx.shape[1]
        list_dist = distances(list_sq, exponent)
    if method == "exact":
        src, dst, sq, stats = _core.euclidean_mst(scaled, idx, _LEAF_SIZE, n_threads, list_sq, tree)
        searched: int | None = int(stats["searched"])
    else:
        src, dst, sq = _dataeval_tree(scaled, idx, list_dist, exponent, n_threads, list_sq)
        searched = None
    dist = distances(sq, exponent)
    return SpanningTree(
        source=src,
        target=dst,
        distances=dist,
        total_length=float(dist.astype(np.float64).sum()),
        method=method,
        k=k,
        n_searched=searched,
    )


def _graph_lists(
    graph: NeighborGraph, x: NDArray[np.float32], k: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Distances and indices of the first k columns of an exact graph of `x` (raises when it
    is not one)."""
    if not isinstance(graph, NeighborGraph):
        raise TypeError(
            f"graph must be a NeighborGraph from datagauge.neighbor_graph, got "
            f"{type(graph).__name__}."
        )
    if graph.recall is not None:
        raise ValueError(
            f"the graph was searched with the approximate index {graph.engine!r}, whose lists "
            "cannot prove the tree's edges; build it with datagauge.neighbor_graph(embeddings, "
            "k, index='exact'), or pass no graph."
        )
    graph = graph.compute()
    graph.check(x)
    graph = graph.restrict(k)
    return (
        np.ascontiguousarray(graph.distances, dtype=np.float32),
        np.ascontiguousarray(graph.indices, dtype=np.int64),
    )


def _edge_sqdist(
    x: NDArray[np.float32], a: NDArray[np.int64], b: NDArray[np.int64]
) -> NDArray[np.float32]:
    """Squared lengths (float32) of the edges (a[i], b[i]) in the core's exact arithmetic."""
    sq, _ = _core.refine_candidates(
        x, np.ascontiguousarray(x[a]), np.ascontiguousarray(b[:, None]), None, 1
    )
    out: NDArray[np.float32] = np.ascontiguousarray(sq[:, 0])
    return out


def _dataeval_tree(
    x: NDArray[np.float32],
    idx: NDArray[np.int64],
    dist: NDArray[np.float32],
    exponent: int,
    n_threads: int,
    list_sq: NDArray[np.float32] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """DataEval's ``minimum_spanning_tree_edges`` on the (scaled) points `x` with their k-NN
    lists (`dist`: float32 lengths in the data's units, as DataEval sorts them): (source,
    target, squared lengths of `x`), sorted by (length, source, target)."""
    from ._kernels.kruskal import kruskal_pass, kruskal_sorted, roots

    n = x.shape[0]
    source = np.full(n - 1, -1, dtype=np.int64)
    target = np.full(n - 1, -1, dtype=np.int64)
    # A plain sort of (length, position) and a proof that DataEval's order of the ties
    # changes nothing (kruskal_sorted), instead of replaying Numba's quicksort.
    entry = np.full(n - 1, -1, dtype=np.int64)
    if (
        _fast_order_fits(idx)
        and kruskal_sorted(idx, _sort_keys(dist), source, target, entry) == n - 1
    ):
        # each edge's squared length is its list entry's (the same arithmetic, bit for bit)
        sq = None if list_sq is None else np.ascontiguousarray(list_sq.ravel()[entry])
        return _sorted_edges(x, source, target, sq)
    parent = np.arange(n, dtype=np.int64)
    rank = np.zeros(n, dtype=np.int64)
    n_edges = kruskal_pass(parent, rank, idx, dist, source, target, 0)
    labels = roots(parent)
    clusters = np.unique(labels)
    while clusters.size > 1:
        # DataEval's _compute_cluster_neighbors: each point's nearest point among all the
        # clusters after its own (clusters ordered by their roots).
        nbr = np.full((n, clusters.size), -1, dtype=np.int64)
        nd = np.full((n, clusters.size), np.inf, dtype=np.float32)
        members = [np.flatnonzero(labels == c) for c in clusters]
        for i in range(clusters.size - 1):
            later = np.concatenate(members[i + 1 :])
            sq, found = query_knn(np.ascontiguousarray(x[later]), x[members[i]], 1, n_threads)
            nbr[members[i], i] = later[found[:, 0]]
            nd[members[i], i] = distances(sq[:, 0], exponent)
        n_edges = kruskal_pass(parent, rank, nbr, nd, source, target, n_edges)
        labels = roots(parent)
        clusters = np.unique(labels)
    return _sorted_edges(x, source, target)


def _fast_order_fits(idx: NDArray[np.int64]) -> bool:
    """Whether every flat position of the (n, c) lists fits the 32 low bits of a sort key."""
    return idx.size < 2**32


def _sort_keys(dist: NDArray[np.float32]) -> NDArray[np.uint64]:
    """Sorted uint64 keys: the bits of each (non-negative) float32 length, which order as the
    lengths do, above its flat position in the lists."""
    from ._kernels.kruskal import length_keys

    bits = (dist.ravel() + np.float32(0.0)).view(np.uint32)  # -0 -> +0
    keys: NDArray[np.uint64] = length_keys(bits)
    keys.sort()
    return keys


def _sorted_edges(
    x: NDArray[np.float32],
    source: NDArray[np.int64],
    target: NDArray[np.int64],
    sq: NDArray[np.float32] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """The edges as (smaller, larger) endpoint with their squared lengths in `x` (`sq` when
    already known, else measured), sorted by (length, source, target)."""
    a = np.minimum(source, target)
    b = np.maximum(source, target)
    if sq is None:
        sq = _edge_sqdist(x, a, b)
    # Kruskal's order is nearly this one, which a stable sort by length finds fast; then the
    # runs of equal lengths (few) are ordered by (source, target).
    order = np.argsort(sq, kind="stable")
    ranked = sq[order]
    tied = np.flatnonzero(ranked[1:] == ranked[:-1])
    if tied.size:
        pos = np.unique(np.concatenate([tied, tied + 1]))
        sub = order[pos]
        order[pos] = sub[np.lexsort((b[sub], a[sub], sq[sub]))]
    return a[order], b[order], np.ascontiguousarray(sq[order])
