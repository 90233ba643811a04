"""DataEval 1.1.4's spanning tree of a k-NN graph, step for step (``dataeval/core/_mst.py``
and ``dataeval/core/_fast_hdbscan/_mst.py``, ``_disjoint_set.py``).

DataEval flattens the (n, c) neighbour and distance arrays row by row, orders the entries with
Numba's ``np.argsort`` (its quicksort: entries at equal float32 distances keep no particular
order, but always the same one for the same input) and adds them in that order with a
union-by-rank disjoint set. The same Numba sort is called here, so the edges are added in
DataEval's order, and the union-by-rank roots, which decide the order of the clusters in
DataEval's second pass, are DataEval's.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _find(parent, x):  # type: ignore[no-untyped-def]
    # DataEval's ds_find compresses nothing (its tuple assignment is a no-op); roots are the
    # same whatever the compression.
    while parent[x] != x:
        x = parent[x]
    return x


@njit(cache=True)
def _union_by_rank(parent, rank, p, q):  # type: ignore[no-untyped-def]
    x = _find(parent, p)
    y = _find(parent, q)
    if x == y:
        return False
    if rank[x] < rank[y]:
        x, y = y, x
    parent[y] = x
    if rank[x] == rank[y]:
        rank[x] += 1
    return True


@njit(cache=True)
def kruskal_pass(parent, rank, neighbors, distances, source, target, n_edges):  # type: ignore[no-untyped-def]
    """Add the entries of (n, c) ``neighbors`` / float32 ``distances`` (row i: point i's
    candidates; index -1 is none) in DataEval's order; returns the new edge count.

    ``parent``, ``rank`` (int64 (n,)) are the disjoint set, updated in place; edges
    (point, neighbour) are written to ``source``, ``target`` from position ``n_edges``.
    """
    c = neighbors.shape[1]
    flat_nbrs = neighbors.flatten()
    order = np.argsort(distances.flatten())
    for t in range(order.size):
        i = order[t]
        q = flat_nbrs[i]
        p = i // c
        if q >= 0 and _union_by_rank(parent, rank, p, q):
            source[n_edges] = p
            target[n_edges] = q
            n_edges += 1
    return n_edges


@njit(cache=True)
def roots(parent):  # type: ignore[no-untyped-def]
    """The disjoint-set root of every element (int64 (n,)): DataEval's cluster labels."""
    out = np.empty(parent.size, dtype=np.int64)
    for i in range(parent.size):
        out[i] = _find(parent, i)
    return out
