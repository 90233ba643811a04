"""The analyses on Dask arrays: the same mergeable statistics, computed chunk by chunk.

Every statistic in datagauge is a partial result over a block of rows plus a merge: k-NN
top-k lists merge (:func:`datagauge.merge_neighbors`), Gaussian-mixture EM sufficient
statistics add (``GmmStats.merge``), subgroup counts add. Here the blocks are the row chunks
of a Dask array, the partial results are Dask tasks, and merges run as a tree reduction
(k-NN lists: a chain per query chunk, each search bounded by what the chain found so far),
so the answers are those of the in-memory functions:

- :func:`kneighbors`: exact k-NN, lazily (Dask arrays out); equal to
  :func:`datagauge.kneighbors` on the computed array.
- :func:`neighbor_graph`: a :class:`datagauge.NeighborGraph` whose k-NN arrays stay lazy;
  every analysis that takes a graph takes it.
- :func:`coverage`: equal to :func:`datagauge.coverage`.
- :func:`bayes_error` (k-NN bounds) and :func:`divergence` (nearest-neighbour count): equal
  to the in-memory functions, from :func:`neighbor_graph`.
- :func:`fit_familiarity` (and :func:`score_samples`): EM with one Dask pass over the data
  per iteration; the parameters match :meth:`datagauge.Familiarity.fit` with the same seed
  (the initialisation samples the same rows) up to floating-point summation order.
- :func:`find_biases`: subgroup counts per chunk, merged level by level; equal to
  :func:`datagauge.find_biases`.

Tasks run on whatever Dask scheduler is active (threads by default; ``dask.config.set(
scheduler="synchronous")`` or a ``distributed`` client work the same). ``n_jobs`` is the
number of threads *inside each task*: 1 by default, since Dask already runs tasks in parallel.
Import this module explicitly (``import datagauge.dask``); ``import datagauge`` does not load
Dask. Install Dask with ``pip install 'datagauge[dask]'``.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

try:  # typed as Any: Dask's own annotations are partial (as FAISS, which has none)
    dask: Any = importlib.import_module("dask")
    da: Any = importlib.import_module("dask.array")
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "datagauge.dask needs Dask; install it with `pip install 'datagauge[dask]'` "
        "(or `pip install 'dask[array]'`)."
    ) from exc

from . import _core
from ._gmm import Familiarity, _Source
from ._results import BayesErrorResult, CoverageResult, DivergenceResult, DriftResult
from ._threads import resolve_n_jobs, thread_limits
from ._validation import (
    check_choice,
    check_dask_matrix,
    check_embeddings,
    check_features,
    check_int,
    check_is_fitted,
    check_k,
    check_labels,
    check_outcome,
    check_samples,
    check_tag_count,
    check_tag_names,
    check_tags,
    check_unit_fraction,
)
from .bayes_error import bayes_error as _bayes_error
from .bias import (
    _METRICS,
    MAX_TAG_COLUMNS,
    BiasReport,
    _check_options,
    _count_inputs,
    _report,
    _too_many_combinations,
    pack_bits,
)
from .coverage import coverage_from_radii, unit_cube_scale
from .divergence import fnn_divergence
from .graph import NeighborGraph, fingerprint_from_hashes, hash_groups, row_hashes
from .neighbors import (
    KDTREE_MAX_DIM,
    Exact,
    Searcher,
    column_means,
    distances,
    flat_index,
    import_faiss,
    resolve_index,
    resolve_leaf_size,
    scale_down,
    scale_exponent,
    tree_share,
)

__all__ = [
    "bayes_error",
    "coverage",
    "divergence",
    "drift",
    "find_biases",
    "fit_familiarity",
    "kneighbors",
    "neighbor_graph",
    "score_samples",
]

_T = TypeVar("_T")
#: Candidate combinations counted per pass over the chunks in :func:`find_biases`.
_CANDIDATE_BATCH = 1 << 18


def _chunk_tree_max_share(n_features: int) -> float:
    """Largest probe share (points a sample self-query scans / chunk rows) at which
    ``index="exact"`` keeps a chunk's kd-tree above 12 features; FAISS brute force above it.

    Higher than the in-memory ``KDTREE_MAX_SHARE`` (0.1): the alternative here is FAISS
    flat (not the faster symmetric brute force of a self-join), and the searches of the other
    chunks, bounded by the k-th distances already found, skip most of a leaf's work. A
    distance costs the tree about d and FAISS a + b d (its heap of candidates), so the
    break-even share falls with d. Measured on 2 cores (20k rows, 4 and 16 chunks, k = 20,
    clustered and low-rank data): the tree is faster up to share ~1 at d = 32, ~0.65 at
    d = 64, ~0.5 at d = 128, ~0.34 at d = 256, at any share at d = 16 (and at smaller
    chunks FAISS's cost per task favours the tree further). Capped at 0.9: data of high
    intrinsic dimension goes to FAISS.
    """
    return min(0.9, 0.25 + 24.0 / n_features)


# --------------------------------------------------------------------------- chunks


def _row_chunks(x: Any) -> list[tuple[int, int, Any]]:
    """(start, stop, delayed block) of every non-empty row chunk of a 2-D Dask array whose
    columns are one chunk."""
    blocks = x.to_delayed().ravel()
    starts = np.concatenate([[0], np.cumsum(x.chunks[0])]).astype(np.int64)
    return [
        (int(starts[i]), int(starts[i + 1]), blocks[i])
        for i in range(len(x.chunks[0]))
        if x.chunks[0][i] > 0
    ]


def _tree_reduce(parts: list[Any], merge: Callable[..., Any], *args: Any) -> Any:
    """Pairwise Dask merges ``merge(a, b, *args)`` of a non-empty list of delayed values."""
    while len(parts) > 1:
        merged = [
            dask.delayed(merge)(a, b, *args) for a, b in zip(parts[::2], parts[1::2], strict=False)
        ]
        if len(parts) % 2:
            merged.append(parts[-1])
        parts = merged
    return parts[0]


def _local(values: Any) -> Any:
    """A Dask collection computed into memory; anything else as it is."""
    if dask.is_dask_collection(values):
        return np.asarray(values.compute())
    return values


def _embeddings_block(block: Any, block_info: Any = None) -> NDArray[np.float32]:
    """One chunk validated and converted as :func:`datagauge.kneighbors` converts all rows."""
    start = 0 if block_info is None else int(block_info[0]["array-location"][0][0])
    return check_embeddings(block, name=f"x rows {start}+")


def _float32(x: Any) -> Any:
    """`x` (checked Dask array) with every chunk validated and C-contiguous float32."""
    return x.map_blocks(
        _embeddings_block, dtype=np.float32, meta=np.empty((0, 0), dtype=np.float32)
    )


# --------------------------------------------------------------------------- k-NN


class _BlockIndex:
    """One database chunk, ready to be searched: a kd-tree over it, or a FAISS flat index
    (brute force, candidates re-ranked exactly) for higher dimension.

    ``engine="auto"`` (more than 12 features) chooses per chunk, as the in-memory
    ``Exact()`` does: the kd-tree when a probe of sample self-queries scans at most
    ``_chunk_tree_max_share(d)`` of the chunk (data of low intrinsic dimension), else
    FAISS. Pickles as its arguments (the index is rebuilt on arrival), so it can move
    between Dask workers.
    """

    def __init__(
        self, block: NDArray[np.float32], offset: int, engine: str, leaf_size: int, k: int
    ) -> None:
        self.args = (block, offset, engine, leaf_size, k)
        self.block = np.ascontiguousarray(block)
        self.offset = offset
        self.tree: Any = None
        self.flat: Any = None
        if engine != "flat":
            tree = _core.KDTree(self.block, leaf_size, offset)
            limit = _chunk_tree_max_share(block.shape[1])
            if engine == "kdtree" or tree_share(tree, k, len(block)) <= limit:
                self.tree = tree
                return
        # Imported before thread_limits looks for it (another task may be importing it).
        import_faiss()
        self.shift = column_means(self.block)
        self.flat = flat_index(self.block.shape[1], None)
        self.flat.add(Searcher(self.block, self.shift, 1).shifted(self.block))

    def __reduce__(self) -> tuple[type[_BlockIndex], tuple[Any, ...]]:
        return (_BlockIndex, self.args)

    def search(
        self,
        queries: NDArray[np.float32],
        q_start: int,
        k: int,
        n_threads: int,
        bounds: NDArray[np.float32] | None = None,
        query_tree: Any = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Partial k-NN lists (squared distances, global indices) of a query chunk starting
        at row `q_start`; each query's own row is excluded, missing entries are (+inf, -1).

        With `bounds` (float32 (m,), squared distances, +inf for none) only the neighbours at
        squared distance <= bounds[q] are returned: the kd-tree prunes its search with them;
        FAISS brute force computes every distance anyway and drops the farther ones. With
        `query_tree` (a kd-tree over another chunk's queries, in their order) the kd-tree
        walks once per batch of nearby queries (``KDTree.query_tree``)."""
        queries = np.ascontiguousarray(queries)
        if self.tree is not None and query_tree is not None and q_start != self.offset:
            batched: tuple[NDArray[np.float32], NDArray[np.int64]] = self.tree.query_tree(
                query_tree, k, None, bounds, n_threads
            )
            return batched
        if self.tree is not None:
            own = np.arange(q_start, q_start + queries.shape[0], dtype=np.int64)
            result: tuple[NDArray[np.float32], NDArray[np.int64]] = self.tree.query(
                queries, k, own, n_threads, bounds
            )
            return result
        # The in-memory flat engine's searcher over this block's rows then the queries (none
        # when they are the block's own rows: its own row is then excluded).
        nb, nq = self.block.shape[0], queries.shape[0]
        same = q_start == self.offset
        rows = self.block if same else np.concatenate([self.block, queries])
        ids = np.arange(nq, dtype=np.int64) + (0 if same else nb)
        with thread_limits(n_threads):
            searcher = Searcher(rows, self.shift, n_threads)
            sqdist, local = searcher.search(self.flat, 0, nb, ids, k)
        keep = local >= 0
        if bounds is not None:  # rows are sorted: what lies beyond the bound is a suffix
            keep &= sqdist <= bounds[:, None]
            sqdist = np.where(keep, sqdist, np.float32(np.inf))
        return sqdist, np.where(keep, local + self.offset, -1)

    def self_search(self, k: int, n_threads: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Partial k-NN lists of the chunk's own rows (each excluding itself): the kd-tree's
        leaf-batched self-query, or the FAISS search of the rows against themselves."""
        if self.tree is not None:
            result: tuple[NDArray[np.float32], NDArray[np.int64]] = self.tree.self_query(
                k, n_threads
            )
            return result
        return self.search(self.block, self.offset, k, n_threads)


def _own_lists(
    index: _BlockIndex, k: int, n_threads: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    return index.self_search(k, n_threads)


def _kth_bounds(lists: tuple[NDArray[np.float32], NDArray[np.int64]], k: int) -> Any:
    """The k-th squared distance of every row of partial lists (+inf while a row has fewer)."""
    return np.ascontiguousarray(lists[0][:, k - 1])


def _seeded_step(
    lists: tuple[NDArray[np.float32], NDArray[np.int64]],
    index: _BlockIndex,
    queries: NDArray[np.float32],
    q_start: int,
    k: int,
    n_threads: int,
    own: _BlockIndex,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """`lists` merged with the neighbours in `index`'s chunk that can still enter them: those
    at most as far as each row's current k-th distance (a point exactly there may still enter
    by its smaller index). `own` is the queries' chunk index (its kd-tree batches them)."""
    part = index.search(queries, q_start, k, n_threads, _kth_bounds(lists, k), own.tree)
    return _core.merge_topk(lists[0], lists[1], part[0], part[1], k)


def _exact_engine(index: Any, n_features: int) -> tuple[str, int]:
    """("kdtree", "flat" or "auto" (chosen per chunk), leaf size) from ``index``."""
    spec = resolve_index(index)
    if not isinstance(spec, Exact):
        raise ValueError(
            "datagauge.dask searches exactly: index must be 'exact', 'kdtree', 'brute', 'flat' "
            "or a datagauge.Exact spec. Approximate indexes (HNSW, IVF, a FAISS index) hold all "
            "the data in one index: compute the array and use datagauge.kneighbors."
        )
    engine = check_choice(spec.engine, "Exact.engine", ("auto", "kdtree", "brute", "flat"))
    leaf = resolve_leaf_size(spec, n_features, rotated=False)
    if engine == "brute":  # chunk-against-chunk search is not a self-join: FAISS flat blocks
        engine = "flat"
    if engine == "auto" and n_features <= KDTREE_MAX_DIM:
        engine = "kdtree"
    return engine, leaf


def _knn_chunks(x: Any, k: int, engine: str, leaf: int, n_threads: int) -> list[tuple[int, Any]]:
    """(rows, delayed (squared distances, indices)) per query chunk of validated float32 x.

    A chain of tasks per query chunk i: its rows against its own index first (a self-query),
    then against chunks i+1, i+2, ... (wrapping round), each search seeded with the k-th
    distance of every row found so far, so it only looks for points that can still enter the
    list (and the kd-tree skips every node beyond). The chains of different query chunks run
    in parallel, and start on different chunks.
    """
    chunks = _row_chunks(x)
    indexes = [dask.delayed(_BlockIndex)(blk, start, engine, leaf, k) for start, _, blk in chunks]
    out = []
    for i, (q_start, q_stop, queries) in enumerate(chunks):
        lists = dask.delayed(_own_lists)(indexes[i], k, n_threads)
        for j in range(1, len(chunks)):
            index = indexes[(i + j) % len(chunks)]
            lists = dask.delayed(_seeded_step)(
                lists, index, queries, q_start, k, n_threads, indexes[i]
            )
        out.append((q_stop - q_start, lists))
    return out


def _sqrt_lists(
    lists: tuple[NDArray[np.float32], NDArray[np.int64]], exponent: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    return distances(lists[0], exponent), lists[1]


def _scaled(x: Any) -> tuple[Any, Any]:
    """Float32 Dask array x divided by the power of two that the in-memory search uses (see
    :func:`datagauge.neighbors.self_knn_distances`; exact), and that exponent (a Delayed
    int, from one extra pass over x for the feature ranges). Lazy."""
    exponent = dask.delayed(scale_exponent)(x.min(axis=0), x.max(axis=0))
    return x.map_blocks(scale_down, exponent, dtype=np.float32), exponent


def kneighbors(
    x: Any,
    k: int,
    *,
    index: Any = "exact",
    n_jobs: int | None = 1,
) -> tuple[Any, Any]:
    """The k nearest other points of every point (Euclidean) of a Dask array, lazily.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_features)
        Finite real numbers with known chunk sizes; every chunk is converted to float32.
        Chunks along the features are merged into one (rechunked).
    k : int
        Neighbours per point, ``1 <= k < n_samples``. A chunk may hold fewer than k rows.
    index : {"exact", "kdtree", "flat"} or datagauge.Exact
        One index per chunk. ``"exact"`` uses a kd-tree for up to 12 features; above, as
        the in-memory ``Exact()``, it probes the chunk's kd-tree with sample self-queries
        and keeps it when they scan a small enough share of the chunk (90% at 32 features,
        62% at 64, 44% at 128, 34% at 256), else uses FAISS brute force
        (candidates re-ranked exactly). Every choice gives the same answer. ``Exact``'s
        ``leaf_size`` is used, its ``block_size`` is not (the chunks are the blocks).
        Approximate indexes need all data in one index: use :func:`datagauge.kneighbors`.
    n_jobs : int or None, default 1
        Threads inside each Dask task (Dask runs tasks in parallel); ``None`` or -1 for all
        CPUs, e.g. with the synchronous scheduler.

    Returns
    -------
    distances : dask.array.Array of float32, shape (n_samples, k)
        Euclidean distances, ascending along each row.
    indices : dask.array.Array of int64, shape (n_samples, k)
        Neighbour indices (rows of x); at exactly equal distances ordered by index.

    Notes
    -----
    Equal to ``datagauge.kneighbors(x.compute(), k)``: the same distances, and the same
    indices except where several neighbours tie exactly at the k-th distance (then either
    tied index may be returned). Each chunk's queries are searched against every chunk
    (``n_chunks ** 2`` search tasks) in a chain: first against their own chunk, then the
    next chunks in turn, each search bounded by the k-th distance found so far, so that it
    only looks for (and the kd-tree only visits the nodes that may hold) neighbours that can
    still enter the lists. The chains of the query chunks run in parallel. Compute both
    outputs together (``dask.compute(distances, indices)``): computing them one at a time
    runs the search twice.

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np, datagauge.dask
    >>> x = da.from_array(np.random.default_rng(0).random((1000, 5)), chunks=(250, -1))
    >>> dist, idx = dask.compute(*datagauge.dask.kneighbors(x, k=10))
    >>> dist.shape, idx.dtype
    ((1000, 10), dtype('int64'))
    """
    x = check_dask_matrix(x, name="x", in_memory="datagauge.kneighbors")
    n, d = x.shape
    k = check_k(k, n)
    engine, leaf = _exact_engine(index, d)
    n_threads = resolve_n_jobs(n_jobs)
    xf, exponent = _scaled(_float32(x))
    dists, idxs = [], []
    for rows, lists in _knn_chunks(xf, k, engine, leaf, n_threads):
        dist, idx = dask.delayed(_sqrt_lists, nout=2)(lists, exponent)
        dists.append(da.from_delayed(dist, shape=(rows, k), dtype=np.float32))
        idxs.append(da.from_delayed(idx, shape=(rows, k), dtype=np.int64))
    return da.concatenate(dists, axis=0), da.concatenate(idxs, axis=0)


# --------------------------------------------------------------------------- graph


def _chunk_summary(block: NDArray[np.float32]) -> tuple[Any, ...]:
    """Per-chunk partials of a graph's data summary: both row hashes, minima, maxima."""
    return row_hashes(block, 0), row_hashes(block, 1), block.min(axis=0), block.max(axis=0)


def neighbor_graph(x: Any, k: int = 20, *, index: Any = "exact", n_jobs: int | None = 1) -> Any:
    """:func:`datagauge.neighbor_graph` of a Dask array: its k-NN arrays stay lazy.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_features)
        Finite real numbers with known chunk sizes; converted to float32 chunk by chunk.
    k : int, default 20
        Neighbours per point, ``1 <= k < n_samples``.
    index : {"exact", "kdtree", "flat"} or datagauge.Exact
        See :func:`kneighbors` (exact search only).
    n_jobs : int or None, default 1
        Threads inside each Dask task.

    Returns
    -------
    NeighborGraph
        ``indices`` and ``distances`` are lazy Dask arrays (the chained search of
        :func:`kneighbors`), computed together by ``graph.compute()``, ``graph.save()`` or
        any analysis given the graph. ``duplicate_of``, ``feature_range`` and the fingerprint
        are computed here, in one pass over the chunks (row hashes, minima and maxima).

    Notes
    -----
    Equal to ``datagauge.neighbor_graph(x.compute(), k)`` once computed (the same distances;
    the same indices except at exact ties at the k-th distance). Identical rows are grouped
    by two independent 64-bit hashes of every row, without reading rows a second time to
    compare them as the in-memory graph does: two different rows are grouped only if both
    hashes collide (about n^2 / 2^128).
    """
    x = check_dask_matrix(x, name="x", in_memory="datagauge.neighbor_graph")
    n, d = x.shape
    k = check_k(k, n)
    xf = _float32(x)
    dist, idx = kneighbors(xf, k, index=index, n_jobs=n_jobs)
    parts = [dask.delayed(_chunk_summary)(blk) for _, _, blk in _row_chunks(xf)]
    summaries = dask.compute(*parts)
    h0 = np.concatenate([s[0] for s in summaries])
    h1 = np.concatenate([s[1] for s in summaries])
    lo = np.min(np.stack([s[2] for s in summaries]), axis=0)
    hi = np.max(np.stack([s[3] for s in summaries]), axis=0)
    return NeighborGraph(
        indices=idx,
        distances=dist,
        duplicate_of=hash_groups(h0, h1),
        feature_range=np.stack([lo, hi]).astype(np.float32),
        engine=index if isinstance(index, str) else "exact",
        recall=None,
        dtype=str(x.dtype),
        checksum=fingerprint_from_hashes((n, d), h1),
    )


# --------------------------------------------------------------------------- comparisons


def bayes_error(
    x: Any, labels: Any, *, k: int = 1, index: Any = "exact", n_jobs: int | None = 1
) -> BayesErrorResult:
    """:func:`datagauge.bayes_error` with ``method="knn"`` on a Dask array.

    The k-NN graph comes from :func:`neighbor_graph` (chunk against chunk), the count from
    the in-memory function; the answer equals ``datagauge.bayes_error(x.compute(), labels,
    k=k)``. ``method="mst"`` needs the points where the k-NN lists prove no edge: compute the
    array and use the in-memory function.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_features)
    labels : array-like or dask array of shape (n_samples,)
        Computed into memory.
    k : int, default 1
    index : {"exact", "kdtree", "flat"} or datagauge.Exact
    n_jobs : int or None, default 1
        Threads inside each Dask task.

    Returns
    -------
    BayesErrorResult
    """
    graph = neighbor_graph(x, k, index=index, n_jobs=n_jobs)
    return _bayes_error(graph, _local(labels), method="knn", k=k)


def divergence(a: Any, b: Any, *, index: Any = "exact", n_jobs: int | None = 1) -> DivergenceResult:
    """:func:`datagauge.divergence` with ``method="fnn"`` on two Dask arrays.

    The nearest neighbour of every pooled point comes from :func:`neighbor_graph` of the
    pooled array (`a`'s rows first); the answer equals ``datagauge.divergence(a.compute(),
    b.compute())``. ``method="mst"``: compute the arrays and use the in-memory function.

    Parameters
    ----------
    a, b : dask.array.Array of shape (n_a, n_features) and (n_b, n_features)
    index : {"exact", "kdtree", "flat"} or datagauge.Exact
    n_jobs : int or None, default 1
        Threads inside each Dask task.

    Returns
    -------
    DivergenceResult
    """
    graph, in_b = _pooled_graph(a, b, ("a", "b"), "divergence", 1, index, n_jobs)
    return fnn_divergence(graph.indices[:, 0], in_b)


def _pooled_graph(
    a: Any, b: Any, names: tuple[str, str], what: str, k: int, index: Any, n_jobs: int | None
) -> tuple[NeighborGraph, NDArray[np.bool_]]:
    """The graph of two Dask samples pooled (computed), and which rows are the second's."""
    first, second = names
    a = check_dask_matrix(a, name=first, in_memory=f"datagauge.{what}")
    b = check_dask_matrix(b, name=second, in_memory=f"datagauge.{what}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{first} has {a.shape[1]} features but {second} has {b.shape[1]}; compare "
            "embeddings from the same model and layer."
        )
    graph = neighbor_graph(da.concatenate([a, b]), k, index=index, n_jobs=n_jobs).compute()
    return graph, np.arange(graph.n_samples) >= int(a.shape[0])


# --------------------------------------------------------------------------- coverage


def drift(
    reference: Any,
    test: Any,
    *,
    k: int = 10,
    alpha: float = 0.05,
    n_permutations: int | None = None,
    random_state: int | np.random.Generator | None = 0,
    index: Any = "exact",
    n_jobs: int | None = 1,
) -> DriftResult:
    """:func:`datagauge.drift` with ``method="knn"`` on two Dask arrays.

    The k-NN lists of the pooled points come from :func:`neighbor_graph` of the pooled array
    (`reference`'s rows first, merged partial lists); the permutation test then runs on the
    lists in memory (O(n k) per permutation). The answer equals ``datagauge.drift(
    reference.compute(), test.compute(), k=k, ...)``. ``"mmd"`` and ``"ks"``: compute the
    arrays and use the in-memory function.

    Parameters
    ----------
    reference, test : dask.array.Array of shape (n_reference, n_features), (n_test, n_features)
    k, alpha, n_permutations, random_state
        As :func:`datagauge.drift`.
    index : {"exact", "kdtree", "flat"} or datagauge.Exact
    n_jobs : int or None, default 1
        Threads inside each Dask task.

    Returns
    -------
    DriftResult
    """
    from .drift import drift as _drift

    check_int(k, "k", minimum=1)
    names = ("reference", "test")
    graph, is_test = _pooled_graph(reference, test, names, "drift", k, index, n_jobs)
    return _drift(
        graph,
        is_test,
        method="knn",
        k=k,
        alpha=alpha,
        n_permutations=n_permutations,
        random_state=random_state,
    )


def _kth_radius(lists: tuple[NDArray[np.float32], NDArray[np.int64]], k: int, exponent: int) -> Any:
    return distances(lists[0][:, k - 1], exponent)


def _radii(x: Any, k: int, engine: str, leaf: int, n_threads: int) -> NDArray[np.float32]:
    """Critical radii (float32, shape (n,)) of validated float32 x: distance to the k-th
    nearest other row."""
    xs, exponent = _scaled(x)
    parts = [
        dask.delayed(_kth_radius)(lists, k, exponent)
        for _, lists in _knn_chunks(xs, k, engine, leaf, n_threads)
    ]
    radii: NDArray[np.float32] = np.concatenate(dask.compute(*parts)).astype(np.float32)
    return radii


def coverage(
    x: Any,
    k: int = 20,
    *,
    radius_type: Literal["adaptive", "naive"] = "adaptive",
    percent: float = 0.01,
    labels: Any = None,
    normalize: bool = False,
    index: Any = "exact",
    n_jobs: int | None = 1,
    order: Literal["radius", "index"] = "radius",
) -> CoverageResult:
    """Find the under-sampled (uncovered) points of a Dask array of embeddings.

    The same analysis and result as :func:`datagauge.coverage` (see it for the method), with
    the k-NN search of :func:`kneighbors` run chunk by chunk.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_features)
        Finite real numbers with known chunk sizes; converted to float32 chunk by chunk.
    k : int, default 20
        Neighbours a point needs within the radius to be covered; ``1 <= k < n_samples``.
    radius_type : {"adaptive", "naive"}, default "adaptive"
    percent : float, default 0.01
        Fraction of points called uncovered by the adaptive method, in (0, 1).
    labels : array-like or dask array of shape (n_samples,), optional
        Class of every point (computed into memory); adds ``result.per_class``, each class
        searched among its own rows (a Dask search per class).
    normalize : bool, default False
        Min-max scale every feature to [0, 1] first (one extra pass for the minima and
        maxima).
    index : {"exact", "kdtree", "flat"} or datagauge.Exact
        See :func:`kneighbors`.
    n_jobs : int or None, default 1
        Threads inside each Dask task.
    order : {"radius", "index"}, default "radius"
        Order of ``uncovered_indices``, as in :func:`datagauge.coverage`.

    Returns
    -------
    CoverageResult
        In memory: ``uncovered_indices`` (int64, most isolated first),
        ``critical_value_radii`` (float32, shape (n_samples,)), ``coverage_radius``,
        ``radius_type``, ``k``, ``per_class``.

    Notes
    -----
    Equal to ``datagauge.coverage(x.compute(), ...)``; the radii (n float32) come back to
    the caller. With ``labels`` or ``normalize`` the chunks are read more than once:
    ``x = x.persist()`` first avoids recomputing them when they fit in memory.
    """
    x = check_dask_matrix(x, name="x", in_memory="datagauge.coverage")
    n, d = x.shape
    k = check_k(k, n)
    radius_type = check_choice(radius_type, "radius_type", ("adaptive", "naive"))  # type: ignore[assignment]
    percent = check_unit_fraction(percent, "percent")
    order = check_choice(order, "order", ("radius", "index"))  # type: ignore[assignment]
    y = None if labels is None else check_labels(_local(labels), n)
    engine, leaf = _exact_engine(index, d)
    n_threads = resolve_n_jobs(n_jobs)
    xf = _float32(x)
    if radius_type == "naive" or normalize:
        lo, hi = dask.compute(xf.min(axis=0), xf.max(axis=0))
        scale = unit_cube_scale(lo, hi, normalize)
        if scale is not None:
            xf = (xf - scale[0]) / scale[1]

    def class_radii(members: NDArray[np.int64]) -> NDArray[np.float32]:
        return _radii(xf[members], k, engine, leaf, n_threads)

    radii = _radii(xf, k, engine, leaf, n_threads)
    return coverage_from_radii(radii, d, k, radius_type, percent, y, class_radii, order)


# --------------------------------------------------------------------------- familiarity


def _chunk_result(
    chunk: Any, start: int, fn: Callable[[_Source], _T], block_size: int, name: str
) -> _T:
    """`fn` over one chunk as an in-memory source (validated, split into blocks)."""
    return fn(_Source(np.asarray(chunk), block_size, f"{name} rows {start}+", allow_batches=False))


class _DaskSource(_Source):
    """The rows of a Dask array for :class:`Familiarity`: statistics per chunk in parallel
    (:meth:`map_reduce`), sequential reads chunk by chunk where the order matters."""

    def __init__(self, x: Any, block_size: int, name: str) -> None:
        # Not _Source.__init__: there is no in-memory array, list or callable to hold.
        self.name = name
        self.block_size = block_size
        self._array = None
        self._memmap = None
        self._batches = None
        self._factory = None
        self._x = x
        self._chunks = _row_chunks(x)

    @property
    def n_rows(self) -> int | None:
        return int(self._x.shape[0])

    def _raw_blocks(self) -> Iterator[NDArray[Any]]:
        bs = self.block_size
        for start, _, chunk in self._chunks:
            rows = check_samples(np.asarray(chunk.compute()), name=f"{self.name} rows {start}+")
            for a in range(0, rows.shape[0], bs):
                yield rows[a : a + bs]

    def _take(self, idx: NDArray[np.int64]) -> NDArray[Any]:
        return check_samples(np.asarray(self._x[idx].compute()), name=self.name)

    def map_reduce(self, fn: Callable[[_Source], _T], merge: Callable[[_T, _T], _T]) -> _T:
        parts = [
            dask.delayed(_chunk_result)(chunk, start, fn, self.block_size, self.name)
            for start, _, chunk in self._chunks
        ]
        result: _T = dask.compute(_tree_reduce(parts, merge))[0]
        return result


def fit_familiarity(
    x: Any, model: Familiarity | None = None, *, n_jobs: int | None = 1, **params: Any
) -> Familiarity:
    """Fit a :class:`datagauge.Familiarity` (Gaussian mixture, EM) on a Dask array.

    Every EM iteration is one Dask pass: each chunk's sufficient statistics (``GmmStats``)
    are computed in parallel and merged, then the M-step runs here. The optional PCA
    (``reduce_dim``) and the nearest-seed first assignment are chunked the same way.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_features)
        Finite real numbers with known chunk sizes. float64 chunks are computed in float64,
        others in float32 (as :meth:`Familiarity.fit`).
    model : Familiarity, optional
        The estimator to fit (in place); by default ``Familiarity(**params)``.
    n_jobs : int or None, default 1
        Threads inside each Dask task (the model's own ``n_jobs`` is left as it is, for
        later in-memory scoring).
    **params
        Parameters of :class:`Familiarity` (``n_components``, ``covariance_type``,
        ``random_state``, ...), set on `model` when it is given.

    Returns
    -------
    Familiarity
        The fitted model (in memory: its parameters are small).

    Notes
    -----
    With the same ``random_state`` the fit matches ``Familiarity(...).fit(x.compute())``:
    the initialisation samples the same rows (k-means on a seeded subset of at most
    ``max(20_000, 100 n_components)`` rows, k-means++ seeds on one of at most 100,000,
    fetched from the chunks; random responsibilities are drawn chunk by chunk in row
    order), and the statistics only differ in the order they are summed (about 1e-12
    relative). Each iteration reads the chunks again: ``x = x.persist()`` first when it
    fits in memory.

    Examples
    --------
    >>> import dask.array as da, numpy as np, datagauge.dask
    >>> x = da.from_array(np.random.default_rng(0).normal(size=(2000, 4)), chunks=(500, -1))
    >>> model = datagauge.dask.fit_familiarity(x, n_components=2, random_state=0)
    >>> model.means_.shape
    (2, 4)
    """
    x = check_dask_matrix(x, name="X", in_memory="Familiarity.fit")
    if model is None:
        model = Familiarity(**params)
    elif not isinstance(model, Familiarity):
        raise TypeError(
            f"model must be a datagauge.Familiarity, got {type(model).__name__}; pass its "
            "parameters as keywords instead, e.g. fit_familiarity(x, n_components=5)."
        )
    elif params:
        model.set_params(**params)
    p = model._checked()
    p["threads"] = resolve_n_jobs(n_jobs)
    return model._fit_source(_DaskSource(x, p["block"], "X"), p)


def _score_block(block: Any, model: Familiarity) -> NDArray[np.float64]:
    return model.score_samples(block)


def score_samples(model: Familiarity, x: Any) -> Any:
    """Log-likelihood of every row of a Dask array under a fitted :class:`Familiarity`.

    Parameters
    ----------
    model : Familiarity
        Fitted (in memory or with :func:`fit_familiarity`); its ``n_jobs`` threads run in
        each task.
    x : dask.array.Array of shape (n_samples, n_features)

    Returns
    -------
    dask.array.Array of float64, shape (n_samples,)
        Lazily, ``model.score_samples`` of each chunk.
    """
    if not isinstance(model, Familiarity):
        raise TypeError(
            f"model must be a fitted datagauge.Familiarity, got {type(model).__name__}."
        )
    x = check_dask_matrix(x, name="X", in_memory="Familiarity.score_samples")
    check_is_fitted(model, "means_")
    if model.n_features_in_ is not None:
        check_features(x.shape[1], model.n_features_in_, "X", "Familiarity")
    return x.map_blocks(
        _score_block, model, drop_axis=1, dtype=np.float64, meta=np.empty(0, np.float64)
    )


# --------------------------------------------------------------------------- bias


def _aligned_chunks(chunks: Sequence[int]) -> tuple[int, ...]:
    """Row chunks whose boundaries are multiples of 64 (except the end): the chunks' packed
    words are then consecutive words of the whole matrix's packing."""
    n = int(sum(chunks))
    cuts = {0, n}
    for end in np.cumsum(chunks)[:-1]:
        cuts.add(int(end) // 64 * 64)
    bounds = sorted(cuts)
    return tuple(b - a for a, b in itertools.pairwise(bounds) if b > a)


def _pack_chunk(chunk: Any, start: int, n_threads: int) -> NDArray[np.uint64]:
    tags, _ = check_tags(chunk, None, max_columns=MAX_TAG_COLUMNS, row_offset=start)
    return pack_bits(tags, n_threads)


def _chunk_counts(
    packed: NDArray[np.uint64],
    n: int,
    positives: NDArray[np.uint64] | None,
    values: NDArray[np.float64] | None,
    combos: NDArray[np.int32],
    n_threads: int,
) -> tuple[NDArray[Any], ...]:
    return _core.subgroup_counts(
        packed, n, positives, values, combos, 0, packed.shape[1], n_threads
    )


def _add_counts(
    a: tuple[NDArray[Any], ...], b: tuple[NDArray[Any], ...]
) -> tuple[NDArray[Any], ...]:
    return tuple(u + v for u, v in zip(a, b, strict=True))


def _extensions(
    prefixes: NDArray[np.int32], alive: NDArray[np.int32]
) -> Iterator[NDArray[np.int32]]:
    """Candidates of the next size in lexicographic order, in batches: every prefix (rows,
    lexicographic) extended by each single tag with support that comes after its last tag."""
    first = np.searchsorted(alive, prefixes[:, -1], side="right")
    per = alive.size - first
    ends = np.cumsum(per)
    a = 0
    while a < len(prefixes):
        base = ends[a - 1] if a else 0
        b = max(a + 1, int(np.searchsorted(ends, base + _CANDIDATE_BATCH, side="right")))
        rep = np.repeat(np.arange(a, b), per[a:b])
        if rep.size:
            within = np.arange(rep.size) - np.repeat(ends[a:b] - per[a:b] - base, per[a:b])
            tail = alive[first[rep] + within]
            yield np.ascontiguousarray(
                np.concatenate([prefixes[rep], tail[:, None]], axis=1), dtype=np.int32
            )
        a = b


def find_biases(
    tags: Any,
    correct: Any,
    *,
    tag_names: Sequence[str] | None = None,
    max_tags: int = 3,
    min_support: int = 10,
    min_effect: float = 0.1,
    alpha: float = 0.05,
    test: Literal["z", "fisher", "welch"] | None = None,
    correction: Literal["bh", "bonferroni", "holm", "none"] = "bh",
    minimality: Sequence[float] | None = None,
    metric: Literal["accuracy", "confidence"] = "accuracy",
    top: int | None = None,
    max_combinations: int = 10_000_000,
    n_jobs: int | None = 1,
) -> BiasReport:
    """Find the tag combinations on which a model does significantly worse, with the tag
    matrix in a Dask array.

    The same search, tests, filters and report as :func:`datagauge.find_biases` (see it
    for every parameter). The tags are bit-packed chunk by chunk (rows rechunked to
    multiples of 64), and the subgroup counts are computed per chunk and added, level by
    level: single tags, then every combination of a size extended from the combinations
    of the size before that reach ``min_support``.

    Parameters
    ----------
    tags : dask.array.Array of shape (n_samples, n_tags)
        Booleans or 0/1, known chunk sizes. (A Dask DataFrame of categorical metadata is
        not accepted: one-hot encode it first.)
    correct : array-like or dask array of shape (n_samples,)
        Outcome per sample, computed into memory (8 bytes per sample).
    n_jobs : int or None, default 1
        Threads inside each Dask task.

    Returns
    -------
    BiasReport
        Equal to ``datagauge.find_biases(tags.compute(), correct, ...)``: the same
        subgroups and counts; with ``metric="confidence"`` the sums differ by floating-point
        summation order only. The report keeps the packed tags (n / 8 bytes per tag) for
        ``members`` and ``examples``.

    Notes
    -----
    Each size of combination is one Dask pass over the packed chunks (more than one when
    over 262,144 candidates), so the packed chunks are persisted once.
    """
    tags = check_dask_matrix(
        tags,
        name="tags",
        in_memory="datagauge.find_biases",
        columns="n_tags",
        allow_bool=True,
    )
    n, t = tags.shape
    names = check_tag_names(tag_names, t)
    check_tag_count(t, MAX_TAG_COLUMNS)
    metric = check_choice(metric, "metric", _METRICS)  # type: ignore[assignment]
    outcome = check_outcome(_local(correct), n, metric=metric)
    opts = _check_options(
        metric,
        max_tags=max_tags,
        min_support=min_support,
        min_effect=min_effect,
        alpha=alpha,
        test=test,
        correction=correction,
        minimality=minimality,
        top=top,
        max_combinations=max_combinations,
        n_jobs=n_jobs,
    )
    positives, values = _count_inputs(outcome, opts)
    tags = tags.rechunk({0: _aligned_chunks(tags.chunks[0]), 1: -1})
    chunks = _row_chunks(tags)
    packed_parts = dask.persist(
        *[dask.delayed(_pack_chunk)(blk, start, opts.n_threads) for start, _, blk in chunks]
    )
    packed = np.ascontiguousarray(np.concatenate(dask.compute(*packed_parts), axis=1))

    def count(combos: NDArray[np.int32]) -> tuple[NDArray[Any], ...]:
        shared = dask.delayed(combos)
        parts = []
        for (start, stop, _), part in zip(chunks, packed_parts, strict=True):
            w0, w1 = start // 64, (stop + 63) // 64
            parts.append(
                dask.delayed(_chunk_counts)(
                    part,
                    stop - start,
                    None if positives is None else positives[w0:w1],
                    None if values is None else values[start:stop],
                    shared,
                    opts.n_threads,
                )
            )
        result: tuple[NDArray[Any], ...] = dask.compute(_tree_reduce(parts, _add_counts))[0]
        return result

    found: list[tuple[NDArray[Any], ...]] = []  # (combos, support, positives, sum, sumsq)
    total = 0

    def keep(combos: NDArray[np.int32]) -> NDArray[np.int32]:
        nonlocal total
        counts = count(combos)
        ok = counts[0] >= opts.min_support
        total += int(ok.sum())
        if total > opts.max_combinations:
            raise _too_many_combinations(opts)
        found.append((combos[ok], *(c[ok] for c in counts)))
        return combos[ok]

    prefixes = keep(np.arange(t, dtype=np.int32)[:, None])
    alive = np.ascontiguousarray(prefixes[:, 0])
    for _ in range(2, opts.max_tags + 1):
        if prefixes.shape[0] == 0:
            break
        prefixes = np.concatenate(
            [keep(c) for c in _extensions(prefixes, alive)] or [np.empty((0, 0), np.int32)]
        )
    combos = np.full((total, opts.max_tags), -1, dtype=np.int32)
    row = 0
    for part in found:
        combos[row : row + part[0].shape[0], : part[0].shape[1]] = part[0]
        row += part[0].shape[0]
    support, pos, s1c, s2c = (np.concatenate([part[i] for part in found]) for i in range(1, 5))
    return _report(combos, support, pos, s1c, s2c, packed, outcome, names, opts)
