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
    _link(parent, rank, x, y)
    return True


@njit(cache=True)
def _link(parent, rank, x, y):  # type: ignore[no-untyped-def]
    """Joins the distinct roots x and y by rank (DataEval's rule)."""
    if rank[x] < rank[y]:
        x, y = y, x
    parent[y] = x
    if rank[x] == rank[y]:
        rank[x] += 1


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


@njit(cache=True)
def length_keys(bits):  # type: ignore[no-untyped-def]
    """uint64 keys ``bits[i] << 32 | i`` of uint32 ``bits`` (float32 lengths' bits), one pass."""
    keys = np.empty(bits.size, dtype=np.uint64)
    for i in range(bits.size):
        keys[i] = (np.uint64(bits[i]) << np.uint64(32)) | np.uint64(i)
    return keys


#: Largest tie group (entries at one float32 length) the fast pass resolves; a larger one
#: sends the caller back to DataEval's order.
_MAX_TIE_GROUP = 64


@njit(cache=True)
def kruskal_sorted(neighbors, keys, source, target, entry):  # type: ignore[no-untyped-def]
    """Kruskal's first pass in any order that sorts the lengths, with proof that DataEval's
    order gives the same tree; returns the edge count, or -1 where it might not.

    ``keys`` (uint64, sorted): float32 length bits << 32 | flat position in the (n, c)
    ``neighbors``. Entries of one length (a tie group) may come in another order than Numba's
    quicksort gives DataEval, and that order decides the tree only where the group closes a
    cycle among the components it starts from: an entry joining two points that were apart
    at the start of the group but are joined by the group's earlier entries. Such a group, one
    of more than ``_MAX_TIE_GROUP`` entries, or a forest that does not span every point (the
    second pass then depends on DataEval's union-by-rank roots) returns -1. Otherwise the
    edges (as unordered pairs) are the ones DataEval adds. ``entry`` (int64, like ``source``)
    receives each edge's flat position in ``neighbors``.
    """
    n = source.size + 1
    c = neighbors.shape[1]
    flat = neighbors.ravel()
    parent = np.arange(n, dtype=np.int64)
    rank = np.zeros(n, dtype=np.int64)
    start_p = np.empty(_MAX_TIE_GROUP, dtype=np.int64)
    start_q = np.empty(_MAX_TIE_GROUP, dtype=np.int64)
    n_edges = 0
    m = keys.size
    t = 0
    while t < m and n_edges < n - 1:
        length = keys[t] >> np.uint64(32)
        u = t + 1
        while u < m and (keys[u] >> np.uint64(32)) == length:
            u += 1
        if u - t > _MAX_TIE_GROUP:
            return -1
        pos = np.int64(keys[t] & np.uint64(0xFFFFFFFF))
        p = pos // c
        q = flat[pos]
        if u - t <= 2 and q >= 0:
            # One entry, or an edge seen from both ends (p's list holds q and q's holds p at
            # the same length: the group's order cannot matter): a plain union of the roots.
            other = np.int64(-1)
            if u - t == 2:
                pos2 = np.int64(keys[t + 1] & np.uint64(0xFFFFFFFF))
                other = pos2 // c if flat[pos2] == p else np.int64(-1)
            if u - t == 1 or other == q:
                x = _find(parent, p)
                y = _find(parent, q)
                if x != y:
                    _link(parent, rank, x, y)
                    source[n_edges] = p
                    target[n_edges] = q
                    entry[n_edges] = pos
                    n_edges += 1
                t = u
                continue
        for e in range(t, u):
            pos = np.int64(keys[e] & np.uint64(0xFFFFFFFF))
            q = flat[pos]
            start_p[e - t] = _find(parent, pos // c)
            start_q[e - t] = _find(parent, q) if q >= 0 else -1
        first = n_edges
        for e in range(t, u):
            pos = np.int64(keys[e] & np.uint64(0xFFFFFFFF))
            p = pos // c
            q = flat[pos]
            if q < 0 or start_p[e - t] == start_q[e - t]:
                continue  # no edge, or inside a component already: never added
            if _union_by_rank(parent, rank, p, q):
                source[n_edges] = p
                target[n_edges] = q
                entry[n_edges] = pos
                n_edges += 1
                continue
            # p and q were joined by this group's own edges: fine only when this is one of
            # them seen from its other end
            same = False
            for f in range(first, n_edges):
                if (source[f] == q and target[f] == p) or (source[f] == p and target[f] == q):
                    same = True
                    break
            if not same:
                return -1
        t = u
    if n_edges != n - 1:
        return -1
    return n_edges
