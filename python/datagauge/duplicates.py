"""Duplicates: exact copies (by hashing) and near copies (by distance), and split leaks.

Exact duplicates are rows that are bitwise identical as float32, found by hashing the rows
(:attr:`NeighborGraph.duplicate_of`), never by a distance. Near duplicates are the connected
components of the graph whose edges are the k-NN pairs at distance ``<= threshold``
(``scipy.sparse.csgraph.connected_components`` on a sparse matrix of those edges).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._results import DuplicateResult
from ._validation import check_class_labels, check_embeddings, check_nonnegative
from ._warnings import DatagaugeWarning
from .graph import NeighborGraph, as_graph

__all__ = ["default_threshold", "duplicates"]

#: Default threshold: this share of the median distance from a point to its nearest
#: neighbour that is not an exact copy of it. Measured (nearest distinct distance / its
#: median, smallest over all points): sklearn digits 0.33 (64-d) and 0.18 (PCA to 4-d), wine
#: 0.28, breast cancer 0.24, Gaussian 8-d 0.28 at n = 20,000 (2-d: 0.01, where close pairs
#: occur by chance); a copy plus noise of 1% of the median is at 0.01. 0.05 is near the
#: geometric mean of 0.01 and 0.24: a factor of about 5 from both.
THRESHOLD_FRACTION = 0.05
#: With the embeddings, the pairwise distances among at most this many distinct "saturated"
#: points (all k neighbours within the threshold) are computed to complete the groups.
MAX_SATURATED = 20_000
_BLOCK = 1024


def default_threshold(graph: NeighborGraph) -> float:
    """``THRESHOLD_FRACTION`` times the median over points of the distance to the nearest
    neighbour at a non-zero distance (points whose k neighbours are all exact copies are left
    out; 0.0 when every point is)."""
    d = graph.distances
    nonzero = d > 0
    has = nonzero.any(axis=1)
    if not has.any():
        return 0.0
    first = d[np.arange(d.shape[0]), nonzero.argmax(axis=1)][has]
    return THRESHOLD_FRACTION * float(np.median(first.astype(np.float64)))


def _exact_groups(duplicate_of: NDArray[np.int64]) -> list[NDArray[np.int64]]:
    """Groups of rows sharing a representative, members ascending, at least two rows."""
    n = duplicate_of.shape[0]
    copies = np.flatnonzero(duplicate_of != np.arange(n))
    if copies.size == 0:
        return []
    reps = duplicate_of[copies]
    members = np.concatenate([reps, copies])
    keys = np.concatenate([reps, reps])
    order = np.lexsort((members, keys))
    members, keys = members[order], keys[order]
    # every representative appears once per copy: keep it once
    keep = np.concatenate([[True], (members[1:] != members[:-1])])
    members, keys = members[keep], keys[keep]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return [g.astype(np.int64) for g in np.split(members, starts[1:])]


def _pairs_within(
    x: NDArray[np.float32], rows: NDArray[np.int64], threshold: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All pairs (i < j) of `rows` at Euclidean distance <= threshold (float64 arithmetic)."""
    pts = x[rows].astype(np.float64)
    pts -= pts.mean(axis=0)
    sq = np.einsum("ij,ij->i", pts, pts)
    src: list[NDArray[np.int64]] = []
    dst: list[NDArray[np.int64]] = []
    limit = threshold * threshold
    for s in range(0, rows.size, _BLOCK):
        block = pts[s : s + _BLOCK]
        d2 = sq[s : s + _BLOCK, None] + sq[None, :] - 2.0 * (block @ pts.T)
        i, j = np.nonzero(d2 <= limit)
        i += s
        upper = i < j
        src.append(rows[i[upper]])
        dst.append(rows[j[upper]])
    return np.concatenate(src), np.concatenate(dst)


def duplicates(
    embeddings_or_graph: Any,
    *,
    threshold: float | None = None,
    splits: Any = None,
    k: int = 10,
    index: Any = None,
    n_jobs: int | None = None,
) -> DuplicateResult:
    """Find exact and near-duplicate groups, and the groups that leak across splits.

    Parameters
    ----------
    embeddings_or_graph : array-like of shape (n_samples, n_features), or NeighborGraph
        Finite real numbers (converted once to float32 and searched), or a graph from
        :func:`datagauge.neighbor_graph` with at least `k` neighbours per point.
    threshold : float, optional
        Two points at Euclidean distance ``<= threshold`` are near duplicates. Default:
        0.05 times the median distance from a point to its nearest neighbour that is not an
        exact copy of it (see Notes).
    splits : array-like of shape (n_samples,), optional
        The split of every sample (``"train"``, ``"test"``, ... or any labels): groups whose
        members lie in more than one split are reported as leaks.
    k : int, default 10
        Neighbours searched per point. Only close pairs matter, so a small k suffices: a group
        larger than k + 1 is still found whole, as a connected component (see Notes).
    index : {"exact", "kdtree", "brute", "flat", "hnsw", "ivf"}, neighbors spec or faiss.Index
        k-NN engine when embeddings are given (see :func:`datagauge.neighbor_graph`);
        default None (``"exact"``); an error with a NeighborGraph, whose lists are used as
        they are.
    n_jobs : int or None
        Threads for the search; ``None`` or -1 for all CPUs.

    Returns
    -------
    DuplicateResult
        ``exact`` and ``near`` (tuples of int64 arrays, one per group, members ascending),
        ``threshold``, ``leaks``, ``leak_counts``, ``splits``, ``k``.

    Raises
    ------
    TypeError, ValueError
        On invalid input (a negative threshold, splits of the wrong length or with missing
        values, a graph with fewer than `k` neighbours), with a message that says how to fix it.

    Warns
    -----
    DatagaugeWarning
        Given a graph, when groups may be incomplete (below); pass the embeddings or a larger k.

    Notes
    -----
    *Groups.* Exact groups come from hashing. Near groups are the connected components of
    the pairs within `threshold` (every exact copy linked to its group), with at least two
    points, that are not a single exact group; a near group may contain exact groups. Groups
    are ordered largest first, then by the largest linking k-NN distance inside the group
    (smallest first), then by their smallest index.

    *Completeness.* A pair within the threshold is missing from the k-NN lists only when both
    points are *saturated*: all k of their neighbours lie within the threshold. The groups
    therefore equal the components of all pairs within the threshold (the brute-force answer)
    whenever the saturated points all lie in one group, e.g. any number of copies of one
    point. Otherwise, given the embeddings, the distances among the distinct saturated points
    are computed (at most 20,000 of them) and the missing pairs added, so the answer is exact
    for an exact search; given only a graph, a DatagaugeWarning says groups may be split.

    *Default threshold.* 0.05 of the median nearest-distinct-neighbour distance, measured so
    that distinct samples of real data are not near duplicates (the smallest nearest-distinct
    distance is 0.24 to 0.33 of the median on scikit-learn's digits, wine and breast-cancer
    data and 8-d Gaussians) while a copy plus noise of 1% of the median is. When most points
    have near copies the median itself is a near-copy distance: then pass `threshold`.

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> x = np.random.default_rng(0).normal(size=(300, 8))
    >>> x[1] = x[0]
    >>> x[2] = x[0] + 1e-4
    >>> res = datagauge.duplicates(x, splits=["train"] * 2 + ["test"] * 298)
    >>> [g.tolist() for g in res.exact], [g.tolist() for g in res.near]
    ([[0, 1]], [[0, 1, 2]])
    >>> res.leak_counts
    {('test', 'train'): 1}
    """
    x = None
    if not isinstance(embeddings_or_graph, NeighborGraph):
        x = check_embeddings(embeddings_or_graph)
    graph = as_graph(embeddings_or_graph if x is None else x, k, index=index, n_jobs=n_jobs)
    n, k = graph.n_samples, graph.k
    split_codes = None
    split_names = None
    if splits is not None:
        split_names, split_codes = check_class_labels(splits, n, name="splits", what="split")
    thr = (
        default_threshold(graph) if threshold is None else check_nonnegative(threshold, "threshold")
    )

    # Edges: k-NN pairs within the threshold, and every copy to its representative.
    dist = graph.distances
    within = dist <= np.float64(thr)
    rows = np.repeat(np.arange(n, dtype=np.int64), k).reshape(n, k)[within]
    cols = graph.indices[within]
    weight = dist[within].astype(np.float64)
    rep = np.asarray(graph.duplicate_of, dtype=np.int64)
    copies = np.flatnonzero(rep != np.arange(n))
    src = [rows, copies]
    dst = [cols, rep[copies]]
    wts = [weight, np.zeros(copies.size)]

    # Saturated points: all k neighbours within the threshold. (At threshold 0 a pair within
    # it is a pair of copies, already linked.)
    saturated = np.flatnonzero(within[:, -1]) if thr > 0 else np.zeros(0, dtype=np.int64)
    if saturated.size:
        component = _components(n, np.concatenate(src), np.concatenate(dst))
        if np.unique(component[saturated]).size > 1:
            distinct = np.unique(rep[saturated])
            if x is not None and distinct.size <= MAX_SATURATED:
                extra_src, extra_dst = _pairs_within(x, distinct, thr)
                src.append(extra_src)
                dst.append(extra_dst)
                gap = x[extra_src].astype(np.float64) - x[extra_dst].astype(np.float64)
                wts.append(np.sqrt(np.einsum("ij,ij->i", gap, gap)))
            else:
                fix = "pass the embeddings instead of a graph, " if x is None else "pass "
                warnings.warn(
                    f"{saturated.size} points have all k={k} neighbours within the threshold "
                    f"({thr:.4g}) and lie in different groups, so groups closer than the "
                    f"threshold to each other may be reported split; {fix}a larger k (e.g. "
                    f"k={2 * k}) or a smaller threshold.",
                    DatagaugeWarning,
                    stacklevel=2,
                )
    all_src, all_dst = np.concatenate(src), np.concatenate(dst)
    all_w = np.concatenate(wts)
    component = _components(n, all_src, all_dst)

    exact = _exact_groups(rep)
    n_comp = int(component.max()) + 1
    size = np.bincount(component, minlength=n_comp)
    spread = np.zeros(n_comp)
    np.maximum.at(spread, component[all_src], all_w)
    # a component is "exact only" when every member shares one representative
    rep_lo = np.full(n_comp, n, dtype=np.int64)
    rep_hi = np.full(n_comp, -1, dtype=np.int64)
    np.minimum.at(rep_lo, component, rep)
    np.maximum.at(rep_hi, component, rep)
    near_ids = np.flatnonzero((size >= 2) & (rep_lo != rep_hi))
    order = np.argsort(component, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(size)])
    near = [order[bounds[c] : bounds[c + 1]].astype(np.int64) for c in near_ids]
    near_spread = spread[near_ids]

    exact = _ordered(exact, np.zeros(len(exact)))
    near = _ordered(near, near_spread)
    leaks: list[NDArray[np.int64]] = []
    leak_counts: dict[tuple[Any, Any], int] = {}
    if split_codes is not None and split_names is not None:
        leaks, leak_counts = _leaks([*exact, *near], split_codes, split_names)
    return DuplicateResult(
        exact=tuple(exact),
        near=tuple(near),
        threshold=float(thr),
        leaks=tuple(leaks),
        leak_counts=leak_counts,
        splits=None if splits is None else np.asarray(splits),
        k=k,
    )


def _components(n: int, src: NDArray[np.int64], dst: NDArray[np.int64]) -> NDArray[np.int64]:
    """Connected-component label of every point of the undirected graph of these edges."""
    import scipy.sparse
    from scipy.sparse.csgraph import connected_components

    adjacency = scipy.sparse.csr_matrix(
        (np.ones(src.size, dtype=np.int8), (src, dst)), shape=(n, n)
    )
    _, labels = connected_components(adjacency, directed=False)
    out: NDArray[np.int64] = labels.astype(np.int64)
    return out


def _ordered(
    groups: list[NDArray[np.int64]], spread: NDArray[np.float64]
) -> list[NDArray[np.int64]]:
    """Largest first, then smallest spread, then smallest first member."""
    if not groups:
        return []
    sizes = np.asarray([g.size for g in groups])
    firsts = np.asarray([g[0] for g in groups])
    order = np.lexsort((firsts, spread, -sizes))
    return [groups[i] for i in order]


def _leaks(
    groups: list[NDArray[np.int64]], codes: NDArray[np.int64], names: NDArray[Any]
) -> tuple[list[NDArray[np.int64]], dict[tuple[Any, Any], int]]:
    """Groups spanning several splits, and per pair of splits the number of such groups."""
    n_splits = names.size
    pair_counts = np.zeros((n_splits, n_splits), dtype=np.int64)
    leaks = []
    for group in groups:
        present = np.unique(codes[group])
        if present.size > 1:
            leaks.append(group)
            pair_counts[np.ix_(present, present)] += 1
    plain = names.tolist()  # Python scalars: str, int, ...
    counts = {
        (plain[a], plain[b]): int(pair_counts[a, b])
        for a in range(n_splits)
        for b in range(a + 1, n_splits)
    }
    return leaks, counts
