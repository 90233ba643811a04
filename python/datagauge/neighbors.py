"""k-nearest-neighbour search: the one module that imports FAISS (lazily).

Every search here is a *self-query*: the k nearest other points of every point of a dataset.
Engines:

- ``Exact(engine="kdtree")``: the compiled kd-tree (``datagauge._core.KDTree``); fastest for
  low dimension (up to about 12 features on uniform data, more on real embeddings).
- ``Exact(engine="brute")``: compiled brute force (``datagauge._core.brute_self_knn``) for
  higher dimension: every pair once (the distance matrix is symmetric), GEMM-style FMA tiles
  (AVX-512 12 x 32, AVX2 6 x 16 or portable, chosen at run time) that keep only entries
  beating a list's bound, candidates (as many as :func:`brute_plan` finds the rounding bound
  needs) re-ranked and verified exactly.
- ``Exact(engine="screen")``: the brute-force engine screened in int8 (AVX-512 VNNI,
  ``datagauge._core.screen_self_knn``): candidates from exact integer distances of quantised
  points (lossless for integer data spanning at most 255, such as pixels), re-ranked and
  proven complete from a rigorous quantisation-error bound; where the CPU lacks VNNI (or
  ``DATAGAUGE_SIMD=avx2``) or the data defeat 8 bits it is ``"brute"``. Same answers.
- ``Exact(engine="flat")``: FAISS brute force (BLAS) over database blocks; on a GPU, or to
  compare.
- ``IVF``: an inverted file (k-means cells, a few probed), approximate, with its recall/speed
  knob ``nprobe``. On the CPU with ``codes="flat"`` it runs in the core
  (``IVF(engine="core")``, ``datagauge._core.ivf_search``): queries grouped by home cell and
  searched against the cells their group probes in dense float32 tile products, the
  candidates re-ranked exactly; otherwise FAISS's ``IndexIVFFlat``/``SQ8``/``PQ``.
- ``HNSW``: a FAISS graph index, approximate (knob ``ef_search``).

FAISS's distances come from ``|x|^2 + |y|^2 - 2 x.y`` and lose precision to cancellation, so
the candidates any FAISS index returns are re-ranked with exact distances in the core.

Results are partial top-k lists that merge (:func:`merge_neighbors`): the database can be split
into blocks (``block_size``), searched block by block (or on several workers) and merged, with
the same answer as one search over everything.

The search layer (used inside the package, by :mod:`datagauge.graph`, :mod:`datagauge.coverage`
and :mod:`datagauge.dask`; not part of the public API, whose names are in ``__all__``):

- engines: :func:`resolve_index` (the ``index`` argument to a spec), :func:`self_knn_distances`
  (the whole in-memory search of validated data: power-of-two rescaling, engine choice,
  exact re-ranking), :func:`resolve_leaf_size`, :func:`tree_share` (the kd-tree probe that the
  engine choice reads), :func:`gpu_available`;
- data sources: :func:`scale_exponent` / :func:`scale_down` / :func:`distances` (the exact
  rescaling of data spanning more than 2^40 or less than 2^-40), :func:`column_means` (the
  shift FAISS needs), :func:`import_faiss`, :func:`flat_index`;
- chunk partials: :class:`Searcher` (candidates of any FAISS index over a block of rows,
  re-ranked exactly: a partial top-k list), :func:`merge_neighbors` and ``_core.merge_topk``
  (merging partial lists), :func:`exact_kth` (exact k-th distances of sample rows, for recall);
- the core IVF: :class:`InvertedFile` (k-means cells, home cells, member lists, probe
  orders), ``_core.ivf_search`` (approximate lists) and ``_core.ivf_exact_rows`` (exact rows
  through cells pruned by the triangle inequality).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from . import _core
from ._memory import (
    BLAS_BYTES,
    FAISS_LOAD_BYTES,
    FAISS_WORK_BYTES,
    THREAD_BYTES,
    address_space_left,
    check_memory,
)
from ._threads import resolve_n_jobs, thread_limits
from ._validation import (
    check_choice,
    check_embeddings,
    check_int,
    check_k,
    check_unit_fraction,
    seed_from,
)

__all__ = [
    "HNSW",
    "IVF",
    "Exact",
    "IndexSpec",
    "kneighbors",
    "merge_neighbors",
    "recall_at_k",
]

#: Dimension up to which ``Exact(engine="auto")`` always uses the kd-tree.
KDTREE_MAX_DIM = 12
#: Most points per leaf of a rotated kd-tree (measured fastest on 2 cores at 64 and 512
#: features, 100k points of low intrinsic dimension: 512 vs 128 is 1.2-1.7x faster); smaller
#: data get n / 128, at least 64.
ROTATED_LEAF_SIZE = 512
#: Above that dimension "auto" probes a kd-tree with sample queries and keeps it when a query
#: scans at most this share of the data (brute force computes every distance, but in FMA
#: tiles, several times faster per distance than the tree's scan). Measured on 2 CPUs with the
#: AVX-512 float32 tiles (kd-tree self-query / float32 tiles, CPU s; benchmarks/README.md):
#: at 30k points Fashion-MNIST PCA-64 share 0.23 (1.5 / 0.9), PCA-128 0.28 (3.3 / 1.4),
#: clustered 512-d of latent dimension 6: 0.13 (6.7 / 7.3); at 100k x 64 (latent 8)
#: k = 1: 0.083 (7.8 / 6.2), k = 20: 0.16 (13.9 / 7.9). Break-even shares 0.07-0.14.
KDTREE_MAX_SHARE = 0.1
#: The same break-even against the int8 screening engine (not re-measured since the AVX-512
#: float32 tiles: 2 CPUs, 30k clustered 512-d points, share 0.142, tree self-query 6.6 s, int8
#: screening with 131 candidates 5.45 s; break-even near 0.12).
KDTREE_MAX_SHARE_SCREEN = 0.1
#: A rotated tree's scans stop early, so a point it screens costs a few features where a
#: brute-force distance costs all d: its break-even share is higher, and grows with d. Measured
#: on 2 CPUs (bench_rotated_tree.py against the AVX-512 float32 tiles, k = 20): at 100k x 64
#: (latent 8) 4.1 ns per screened point against 1.6 ns per pair, break-even share 0.2; at
#: 50k x 512 (latent 32) 10.8 ns against about 12.8, break-even near 0.6. Hence the plain
#: limit against the float32 tiles (and query_knn's) times ROTATED_SHARE_GAIN * sqrt(d / 64),
#: at most ROTATED_MAX_SHARE. The same gain holds against the int8 screening (2 CPUs, the
#: seeded tree of commit 5cc7f88, whole calls): at 100k x 64 (latent 8, k = 15) share 0.104,
#: tree 1.54 s wall against 6.3 s screening (152 candidates): break-even far above 0.2; at
#: 30k clustered 512-d (bench_ivf_wide's, k = 20) share 0.53, tree 1.96 s against 1.46 s: the
#: limit there (0.5) keeps the screening.
ROTATED_SHARE_GAIN = 2.0
ROTATED_MAX_SHARE = 0.5
#: query_knn (queries against a base, FAISS flat as the alternative): the tree up to this share.
QUERY_KDTREE_MAX_SHARE = 0.2
#: "auto" screens in int8 only when the plan needs at most max(2k + 8, d / this) candidates:
#: the int8 tiles' cost grows with the lists (sorted insertion), the float32 tiles' saving
#: with d. Measured on 30k clustered 512-d points, one thread: int8 tiles 1.7 / 2.7 / 4.8 /
#: 12 s with 48 / 96 / 160 / 327 candidates, float32 tiles (80 candidates) 4.5-5.8 s.
SCREEN_DIM_PER_CANDIDATE = 4
#: The probe builds the tree (a rotated tree holds three copies of the data, and its rotated
#: rows are made beside them); above this size "auto" goes straight to brute force.
_PROBE_MAX_BYTES = 2 << 30
_TREE_COPIES = 4
_PROBE_QUERIES = 200
#: Above 4x this many points, "auto" first probes a tree over this many evenly spaced rows
#: and gives up on the tree when it scans over SMALL_PROBE_FACTOR times the limit: pruning
#: only improves with n, by 1.6-2.3x from 4,096 to 70k-100k points (measured: clustered 512-d
#: 0.125 -> 0.058, 64-d 0.131 -> 0.056, Fashion-MNIST pixels 0.517 -> 0.332, uniform 64-d 1.0
#: throughout). It costs 0.02-0.2 s where the full tree would cost 0.2-3 s to build.
_SMALL_PROBE_ROWS = 4096
#: "auto" probes a kd-tree above ``KDTREE_MAX_DIM`` features only where the points number at
#: least this many times the features. The rotated tree's frame is the eigenvectors of a d x d
#: covariance, whose cost grows as d^3 (LAPACK on one thread: about 10 brute-force tile FMAs per
#: d^3, measured 1.6 s at 2,048 features and 11.7 s at 4,096, where brute force over 200 points
#: took 0.01-0.02 s), against n^2 d / 2 FMAs for brute force over all pairs: from n = 8 d on,
#: the frame costs at most about a third of brute force. Fewer points (wide data: tens of
#: points of 100,000 features) go straight to brute force, with no d x d matrix.
_FRAME_ROWS_PER_FEATURE = 8
#: Products (rows x d x d) a frame rotates on one BLAS thread (see Frame.apply).
_FRAME_ONE_THREAD_FLOPS = 1 << 31
_SMALL_PROBE_FACTOR = 4.0
_INT32_MAX = 2**31 - 1
_QUERY_CHUNK = 1 << 14


@dataclass(frozen=True, slots=True)
class Exact:
    """Exact search.

    Parameters
    ----------
    engine : {"auto", "kdtree", "brute", "screen", "flat"}
        ``"auto"`` picks the kd-tree for ``n_features <= 12``. Above, on the CPU, with at least 8
        points per feature (fewer: straight to brute force, cheaper than the tree's d x d frame), it
        builds the tree and self-queries 200 sample points: when a query scans at most 10% of the
        data (data of low intrinsic dimension, as real embeddings often are) the tree is used,
        otherwise ``"screen"`` where the int8 screening runs and :func:`screen_plan` finds that at
        most ``max(2k + 8, n_features / 4)`` candidates per point prove the lists (pixel data:
        ``2k + 8``), else ``"brute"`` (float32 tiles, AVX-512 where the CPU has it, keeping the
        candidates :func:`brute_plan` finds its rounding bound needs). On a GPU it uses ``"flat"``.
        All are exact: bit-identical distances, and the same indices unless several points tie
        exactly at the k-th distance (each engine then picks deterministically among them).
    block_size : int or None
        kd-tree and FAISS flat: rows of the database searched at a time, partial results
        merged; ``None`` is one block for the kd-tree and, for FAISS flat, 65,536 rows on the
        CPU and up to 2 GiB of vectors on a GPU (:func:`flat_block_rows`). Brute
        force: points per tile block (rounded up to a multiple of 96 with the AVX-512 tiles,
        of 48 otherwise); ``None`` is about 1 MiB of data per block (96 to 1,536 points).
    leaf_size : int or None
        Points per kd-tree leaf; ``None`` is 128 up to 6 features, 256 for 7 to 12 and
        n / 128 between 64 and 512 above, where the tree is built in the data's principal
        axes (measured fastest on 2 cores).

    Notes
    -----
    Above 12 features the kd-tree is built in the data's principal axes (from the covariance
    of up to 20,000 rows) where the points are at least as many as the features (else in the
    original coordinates: no d x d matrix is made): real embeddings vary along a few
    directions that are not coordinate axes, and boxes along those directions prune far more
    (2-4x less CPU at 64 features, over 10x at 512 on data of low intrinsic dimension). The
    rotated coordinates only screen, with a proven bound on their rounding; every point that
    can enter a list is measured in the original coordinates, so the answers do not change.
    """

    engine: Literal["auto", "kdtree", "brute", "screen", "flat"] = "auto"
    block_size: int | None = None
    leaf_size: int | None = None


@dataclass(frozen=True, slots=True)
class HNSW:
    """FAISS HNSW graph (approximate); it runs on the CPU only (FAISS has no GPU HNSW index,
    so ``device="gpu"`` with it raises a ValueError).

    Parameters
    ----------
    m : int
        Graph degree; more is slower to build and more accurate.
    ef_search : int or None
        Search beam, the recall/speed knob. ``None`` tunes it on the data: the smallest beam
        (from ``k + 1`` plus a margin, doubling, then bisected) whose recall@k on a sample of
        512 points, checked against exact search, reaches `target_recall`. Measured:
        recall@20 0.9999 at d=10 with 64; random 64-d data needs several hundred.
    ef_construction : int
        Build beam.
    target_recall : float
        Recall@k the tuning aims for, in (0, 1]; ignored when `ef_search` is given.
    """

    m: int = 32
    ef_search: int | None = None
    ef_construction: int = 64
    target_recall: float = 0.95


@dataclass(frozen=True, slots=True)
class IVF:
    """Inverted file (approximate): k-means cells, a few probed per query.

    Two engines run it. ``"core"`` (the compiled core, CPU, ``codes="flat"``) groups the
    queries by their home cell (the nearest centre) and searches each group against the
    cells its probe list names: the home cell, then the cells nearest to any point of the
    group. The distances are dense float32 tile products (AVX-512 or AVX2 chosen at run
    time), the candidates re-ranked exactly; the data are used in place. ``"faiss"`` is a
    FAISS ``IndexIVFFlat`` / ``IVF-SQ8`` / ``IVF-PQ`` (each query probes its own nearest
    cells, scanned a vector at a time), on the CPU or a GPU.

    Parameters
    ----------
    nlist : int or None
        Number of cells; ``None`` is about ``sqrt(n)`` (at most n / 32) for the core engine
        and about ``4 * sqrt(n)`` (at most n / 39) for FAISS.
    nprobe : int or None
        Cells searched per query (core: per group of queries), the recall/speed knob.
        ``None`` tunes it on the data: the smallest count (doubling from 1, then bisected)
        whose recall@k on a sample of 512 points, checked against exact search, reaches
        `target_recall`. Clustered data (real embeddings) need few cells; uniform
        high-dimensional data need many. With ``nprobe = nlist`` every point is compared
        with every other.
    random_state : int or numpy Generator
        Seed of the k-means training sample, its initialisation and the tuning sample (a
        Generator gives one draw). The core engine's answer depends on it and the data
        only, not on the thread count.
    target_recall : float
        Recall@k the tuning aims for, in (0, 1]; ignored when `nprobe` is given.
    codes : str
        How the index stores each vector. ``"flat"``: as it is (4 bytes a feature, IVF-Flat).
        ``"sq8"``: one byte a feature (8-bit scalar quantisation, IVF-SQ8): a quarter of the
        memory, for wide embeddings at scale. ``"pq<m>"``, e.g. ``"pq64"``: m bytes a vector
        (product quantisation with 8-bit codes, IVF-PQ; m must divide the number of
        features): the least memory, but its training is slow and its distances coarse. The
        index only proposes candidates (``k + 1`` and a margin; ``4 k + 8`` with PQ); they are
        re-ranked with exact distances from the embeddings, so compression costs recall,
        which the tuning of `nprobe` measures. The core engine stores nothing: ``"flat"``
        only.
    engine : {"auto", "core", "faiss"}
        ``"auto"``: the core engine for ``codes="flat"`` on the CPU, FAISS for compressed
        codes and on a GPU.
    """

    nlist: int | None = None
    nprobe: int | None = None
    random_state: int | np.random.Generator = 0
    target_recall: float = 0.95
    codes: str = "flat"
    engine: Literal["auto", "core", "faiss"] = "auto"


IndexSpec = Exact | HNSW | IVF


def import_faiss() -> Any:
    if "faiss" not in sys.modules:
        check_memory(
            FAISS_LOAD_BYTES,
            "loading FAISS",
            "use index='exact' (the compiled kd-tree and brute force, which do not load FAISS)",
        )
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise ImportError(
            "FAISS is needed for this index; install it with `pip install faiss-cpu` "
            "(or faiss-gpu for CUDA)."
        ) from exc
    return faiss


def gpu_available() -> bool:
    """Whether the installed FAISS has GPU support and sees at least one GPU.

    FAISS is imported only where a GPU may be present: on Linux without NVIDIA device files
    (``/dev/nvidia0``, ...) no CUDA GPU is visible, and the exact CPU engines never import
    FAISS (the import costs time and address space, and crashes under a tight memory limit).
    """
    if "faiss" not in sys.modules and sys.platform.startswith("linux"):
        if not glob.glob("/dev/nvidia[0-9]*"):
            return False
    faiss = import_faiss()
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def resolve_index(index: Any) -> IndexSpec | Any:
    """Turn the ``index`` argument into a spec object, or pass a FAISS index through."""
    if isinstance(index, (Exact, HNSW, IVF)):
        return index
    if isinstance(index, str):
        name = check_choice(
            index, "index", ("exact", "kdtree", "brute", "screen", "flat", "hnsw", "ivf")
        )
        return {
            "exact": Exact(),
            "kdtree": Exact(engine="kdtree"),
            "brute": Exact(engine="brute"),
            "screen": Exact(engine="screen"),
            "flat": Exact(engine="flat"),
            "hnsw": HNSW(),
            "ivf": IVF(),
        }[name]
    if hasattr(index, "ntotal") and hasattr(index, "search") and hasattr(index, "d"):
        return index
    raise TypeError(
        "index must be 'exact', 'kdtree', 'brute', 'screen', 'flat', 'hnsw', 'ivf', a "
        "datagauge.neighbors "
        f"spec (Exact, HNSW, IVF) or a FAISS index; got {type(index).__name__}."
    )


def kneighbors(
    embeddings: Any,
    k: int,
    *,
    index: Any = "exact",
    n_jobs: int | None = None,
    device: Literal["auto", "cpu", "gpu"] = "auto",
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The k nearest other points of every point (Euclidean), the point itself excluded.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        Finite real numbers; converted once to float32.
    k : int
        Neighbours per point, ``1 <= k < n_samples``.
    index : {"exact", "kdtree", "brute", "flat", "hnsw", "ivf"}, Exact, HNSW, IVF or faiss.Index
        Search engine (see the module docstring). A FAISS index given empty is trained (if
        needed) and filled with the embeddings as they are; one already holding ``n_samples``
        vectors is assumed to hold these embeddings in this order. (The built-in FAISS engines
        search the embeddings minus their mean, which FAISS's arithmetic needs when the data sit
        far from the origin; center your own index's data likewise in that case.)
    n_jobs : int or None
        Threads; ``None`` or -1 for all CPUs.
    device : {"auto", "cpu", "gpu"}
        Where FAISS indexes run; ``"auto"`` uses a GPU when FAISS has GPU support and sees one.
        ``"gpu"`` raises a RuntimeError where FAISS has no GPU support or sees no GPU. The
        kd-tree and the brute-force engine always run on the CPU. HNSW runs on the CPU only
        (FAISS has no GPU HNSW index): ``"auto"`` runs it there, and ``"gpu"`` with HNSW
        raises a ValueError (on any machine); use ``index="flat"`` or ``"ivf"`` on a GPU.

    Returns
    -------
    distances : ndarray of float32, shape (n_samples, k)
        Euclidean distances, ascending along each row.
    indices : ndarray of int64, shape (n_samples, k)
        Neighbour indices; among neighbours at exactly equal distances the order is by index.

    Notes
    -----
    Distances are always exact (FAISS's candidates are re-ranked in the core). Approximate
    indexes may miss true neighbours (see :func:`recall_at_k`); rows for which one returns
    fewer than k candidates are completed by an exact search, so no row has missing entries.
    """
    x = check_embeddings(embeddings)
    k = check_k(k, x.shape[0])
    spec = resolve_index(index)
    device = check_choice(device, "device", ("auto", "cpu", "gpu"))  # type: ignore[assignment]
    return self_knn_distances(x, k, spec, resolve_n_jobs(n_jobs), device)


#: Feature spans outside [2^-40, 2^40] are rescaled by a power of two before the search.
_SPAN_LIMIT_LOG2 = 40


def scale_exponent(lo: NDArray[Any], hi: NDArray[Any], limit: float = _SPAN_LIMIT_LOG2) -> int:
    """The power of two e by which data with per-feature minima `lo` and maxima `hi` are
    divided before a search (0: searched as they are); see :func:`self_knn_distances`. Spans
    within ``2**±limit`` are left as they are; ``limit=0`` always gives the power of two
    nearest the largest span (0 when every point is the same)."""
    span = float(np.max(np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64)))
    if span > 0 and abs(math.log2(span)) > limit:
        return round(math.log2(span))
    return 0


def self_knn_distances(
    x: NDArray[np.float32], k: int, spec: Any, n_threads: int, device: str
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Distances (float32 (n, k)) and indices of the k nearest other rows of validated `x`.

    Squared distances of float32 data overflow above about 1.8e19 and lose precision to
    underflow below about 1e-19. Data spanning more than 2^40 or less than 2^-40 in some
    feature are searched multiplied by a power of two that brings their span near 1, and the
    distances multiplied back: scaling by a power of two is exact in floating point, so the
    answer is the one exact arithmetic gives. (A FAISS index passed in is searched as given.)
    """
    exponent = 0
    if isinstance(spec, (Exact, HNSW, IVF)) and x.size:
        exponent = scale_exponent(x.min(axis=0), x.max(axis=0))
        x = scale_down(x, exponent)
    sqdist, idx = _self_knn(x, k, spec, n_threads, device)
    return distances(sqdist, exponent), idx


def scale_down(x: NDArray[np.float32], exponent: int) -> NDArray[np.float32]:
    """x / 2**exponent (exact), C-contiguous float32; x itself when exponent is 0."""
    if exponent == 0:
        return x
    return np.ascontiguousarray(np.ldexp(x, -exponent), dtype=np.float32)


def distances(sqdist: NDArray[np.float32], exponent: int) -> NDArray[np.float32]:
    """Distances (float32) from squared distances of data scaled down by 2**exponent."""
    dist = np.sqrt(sqdist)
    if exponent == 0:
        return dist
    return np.ldexp(dist, exponent).astype(np.float32)


def _self_knn(
    x: NDArray[np.float32], k: int, spec: Any, n_threads: int, device: str
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Squared distances and indices of the k nearest other points (x already validated)."""
    sqdist, idx, _ = _self_knn_tree(x, k, spec, n_threads, device)
    return sqdist, idx


def _self_knn_tree(
    x: NDArray[np.float32],
    k: int,
    spec: Any,
    n_threads: int,
    device: str,
    k_other: int | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.int64], Any]:
    """`_self_knn`, and the kd-tree over all of `x` that answered (None when another engine
    did, or one tree per database block). `k_other`: the list length when anything but one
    kd-tree over all of `x` answers (default `k`), for callers whose best k depends on it."""
    if isinstance(spec, Exact):
        k_brute = k if k_other is None else k_other
        engine = check_choice(
            spec.engine, "Exact.engine", ("auto", "kdtree", "brute", "screen", "flat")
        )
        if engine == "auto":
            chosen = _auto_engine(x, k, spec, n_threads, device)
            if isinstance(chosen, _Screen):
                return _no_tree(_brute_knn(x, k_brute, spec, n_threads, screen=chosen.n_candidates))
            if not isinstance(chosen, str):  # the probe's tree paid: its answer
                return chosen
            engine = chosen
        if engine == "kdtree":
            return _kdtree_knn(x, k, spec, n_threads, k_brute)
        if engine == "screen":
            plan = screen_plan(x, k_brute)
            n_cand = _screen_candidates(x.shape[0], k_brute) if plan is None else plan
            return _no_tree(_brute_knn(x, k_brute, spec, n_threads, screen=n_cand))
        if engine == "brute":
            return _no_tree(_brute_knn(x, k_brute, spec, n_threads))
        return _no_tree(_flat_knn(x, k_brute, spec, n_threads, device))
    if isinstance(spec, IVF) and ivf_engine(spec, device) == "core":
        result = _complete_rows(x, k, _core_ivf_knn(x, k, spec, n_threads), n_threads, "cpu")
        return _no_tree(result)
    result = _complete_rows(
        x, k, _faiss_index_knn(x, k, spec, n_threads, device), n_threads, device
    )
    if not isinstance(spec, (HNSW, IVF)):
        _check_finite_lists(*result)
    return _no_tree(result)


def _no_tree(
    lists: tuple[NDArray[np.float32], NDArray[np.int64]],
) -> tuple[NDArray[np.float32], NDArray[np.int64], None]:
    return lists[0], lists[1], None


#: Rows of the sample whose covariance gives a rotated tree's principal axes.
_FRAME_SAMPLE = 20_000
_FRAME_BLOCK = 8192
_frame_keys = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Frame:
    """The principal axes of a dataset: the frame a rotated kd-tree is built in.

    Real embeddings vary along a few directions that are not coordinate axes; kd-tree boxes
    along those directions prune far more. Any orthonormal frame gives the same neighbours
    (the tree only screens in it, see ``cpp/include/datagauge/kdtree.hpp``); the principal
    axes make the screening tight.
    """

    mean: NDArray[np.float64]  # (d,)
    basis: NDArray[np.float64]  # (d, d): columns are the axes, largest variance first
    slack: float  # per unit of ||x - mean||: the basis's departure from orthonormal + rounding
    key: int  # names the frame: trees query each other only within one frame

    def apply(self, rows: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """`rows` (m, d) in this frame as float32, and per row a bound on the distance of that
        float32 row from the exact rotation of the row (rounded up)."""
        m, d = rows.shape
        out = np.empty((m, d), dtype=np.float32)
        err = np.empty(m, dtype=np.float32)
        # A small product runs on one BLAS thread: BLAS's other threads would otherwise spin
        # for a while after it, against the search that follows (on 2 cores, 5% of its time).
        small = m * d * d <= _FRAME_ONE_THREAD_FLOPS
        with threadpool_limits(1, user_api="blas") if small else contextlib.nullcontext():
            self._apply_blocks(rows, out, err)
        return out, err

    def _apply_blocks(
        self, rows: NDArray[np.float32], out: NDArray[np.float32], err: NDArray[np.float32]
    ) -> None:
        m = rows.shape[0]
        for start in range(0, m, _FRAME_BLOCK):
            stop = min(m, start + _FRAME_BLOCK)
            centred = rows[start:stop].astype(np.float64)
            centred -= self.mean
            exact = centred @ self.basis
            out[start:stop] = exact
            exact -= out[start:stop]  # now the rounding of each rotated coordinate
            e = np.sqrt(np.einsum("ij,ij->i", exact, exact))
            e += self.slack * np.sqrt(np.einsum("ij,ij->i", centred, centred))
            err[start:stop] = np.nextafter(e.astype(np.float32), np.float32(np.inf))


def principal_frame(x: NDArray[np.float32]) -> Frame:
    """The principal axes of `x` (validated float32 (n, d)), from the covariance of at most
    20,000 evenly spaced rows (deterministic; no random draw)."""
    n, d = x.shape
    mean = x.mean(axis=0, dtype=np.float64)
    rows = np.linspace(0, n - 1, min(n, _FRAME_SAMPLE)).astype(np.int64)
    centred = x[rows].astype(np.float64) - mean
    # LAPACK's eigensolver makes many small BLAS calls: on one thread it is fastest (BLAS
    # threads spinning on a busy machine cost it 30x more CPU time).
    with threadpool_limits(1, user_api="blas"):
        _, vectors = np.linalg.eigh(centred.T @ centred)
        basis = np.ascontiguousarray(vectors[:, ::-1])
        # The Frobenius norm bounds the spectral one.
        departure = float(np.linalg.norm(basis.T @ basis - np.eye(d)))
    # float64 rounding of (x - mean) @ basis and of the centring, with a wide margin.
    rounding = 8.0 * d**1.5 * 2.0**-52
    return Frame(mean, basis, departure + rounding, next(_frame_keys))


def build_tree(
    x: NDArray[np.float32],
    leaf_size: int,
    index_offset: int = 0,
    frame: Frame | None = None,
    framed: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None,
    n_threads: int = 1,
) -> Any:
    """A kd-tree over `x`, rotated into `frame` when one is given (`framed`: ``frame.apply(x)``
    when already computed), built on `n_threads` threads (the same tree whatever it is)."""
    if frame is None:
        return _core.KDTree(x, leaf_size, index_offset, n_threads=n_threads)
    rotated, errors = frame.apply(x) if framed is None else framed
    return _core.KDTree(x, leaf_size, index_offset, rotated, errors, frame.key, n_threads)


def rotated_share_limit(limit: float, d: int) -> float:
    """The probe-share limit of a rotated kd-tree over d features, from a plain tree's."""
    return min(ROTATED_MAX_SHARE, limit * ROTATED_SHARE_GAIN * math.sqrt(d / 64))


def tree_frame(d: int) -> bool:
    """Whether exact kd-trees over d features are built in the data's principal axes."""
    return d > KDTREE_MAX_DIM


def frame_pays(n: int, d: int) -> bool:
    """Whether a rotated kd-tree's frame (the d x d principal axes) can pay on n points of d
    features: not where the features outnumber the points. The covariance of fewer points
    than features is singular (most axes are then arbitrary), and its d x d eigenvectors cost
    d^3 against the n^2 d of brute force over all pairs (and d^2 memory: 75 GiB at 100,000
    features). Exact trees over such data are built in the original coordinates."""
    return d <= n


def frame_for(x: NDArray[np.float32]) -> Frame | None:
    """The frame exact kd-trees over `x` are built in: its principal axes above
    ``KDTREE_MAX_DIM`` features; None at or below that, where the frame cannot pay
    (:func:`frame_pays`), or under a memory limit too tight for the rotated rows, the d x d
    axes and BLAS (which exits the process when its buffers cannot be mapped)."""
    n, d = x.shape
    if not tree_frame(d) or not frame_pays(n, d):
        return None
    left = address_space_left()
    if left is not None and left < BLAS_BYTES + 12 * n * d + 32 * d * d + (_FRAME_BLOCK * d * 32):
        return None
    return principal_frame(x)


def resolve_leaf_size(spec: Exact, d: int, rotated: bool | None = None, n: int = 0) -> int:
    """Points per kd-tree leaf of n points; `rotated` defaults to whether exact trees over d
    features are (:func:`tree_frame`)."""
    if spec.leaf_size is None:
        if tree_frame(d) if rotated is None else rotated:
            # A rotated tree's scans stop early (principal axes first), so a point costs a few
            # features, and fewer, larger leaves save more walking than they cost in scans;
            # a leaf stays under 1/128 of the points (a probe then still sees the pruning).
            return max(64, min(ROTATED_LEAF_SIZE, n // 128))
        return 256 if 6 < d <= KDTREE_MAX_DIM else 128
    # Larger than any dataset the core indexes (an int32): one leaf holds everything anyway.
    return min(check_int(spec.leaf_size, "leaf_size", minimum=1), _INT32_MAX)


@dataclass(frozen=True, slots=True)
class _Screen:
    """The int8 screening engine with this many candidates per point (an "auto" choice)."""

    n_candidates: int


def _auto_engine(
    x: NDArray[np.float32], k: int, spec: Exact, n_threads: int, device: str
) -> str | _Screen | tuple[NDArray[np.float32], NDArray[np.int64], Any]:
    """The exact engine for this data, or the answer itself (with the tree) when the probed
    tree is kept."""
    n, d = x.shape
    if d <= KDTREE_MAX_DIM:
        return "kdtree"
    # A GPU runs brute force fast; the tree is for the CPU, and must fit in memory twice.
    if not (device == "cpu" or (device == "auto" and not gpu_available())):
        return "flat"
    if spec.block_size is not None or _TREE_COPIES * 4 * n * d > _PROBE_MAX_BYTES:
        return _brute_engine(x, k)
    # Few points for their features (wide data): brute force over all pairs costs less than
    # the tree's frame (d x d) would, so the tree is not probed.
    if n < _FRAME_ROWS_PER_FEATURE * d:
        return _brute_engine(x, k)
    # Higher dimension: the tree wins only on data of low intrinsic dimension (real
    # embeddings often are). Measure what a query would touch, not guess from d. The limit
    # depends on the brute-force engine the tree competes with, whose plan (a pass over the
    # data) is made only when the tree's share lies between the two engines' limits.
    if n > 4 * _SMALL_PROBE_ROWS and not _small_probe_passes(x, k, spec):
        return _brute_engine(x, k)
    frame = frame_for(x)
    rotated = frame is not None
    tree = build_tree(x, resolve_leaf_size(spec, d, rotated, n), 0, frame, n_threads=n_threads)
    limits = [_probe_limit(screened, rotated, d) for screened in (False, True)]
    share = tree_share(tree, k, n, max(limits))
    brute = None if share <= min(limits) else _brute_engine(x, k)
    if brute is None or share <= _probe_limit(isinstance(brute, _Screen), rotated, d):
        sqdist, idx = tree.self_query(k, n_threads)
        return sqdist, idx, tree
    return brute


def _brute_engine(x: NDArray[np.float32], k: int) -> str | _Screen:
    """The int8 screening where its plan pays, else the float32 tiles ("brute")."""
    n, d = x.shape
    # The int8 screening pays where its lists stay short against d: longer candidate lists
    # cost more than the 4x cheaper distances save (measured, benchmarks/README.md).
    plan = screen_plan(x, k, max(_screen_candidates(n, k), d // SCREEN_DIM_PER_CANDIDATE))
    return "brute" if plan is None else _Screen(plan)


def _probe_limit(screened: bool, rotated: bool, d: int) -> float:
    """The largest probe share at which "auto" keeps a kd-tree: against the int8 screening
    (`screened`) or the float32 tiles, for a rotated tree or a plain one."""
    limit = KDTREE_MAX_SHARE_SCREEN if screened else KDTREE_MAX_SHARE
    return rotated_share_limit(limit, d) if rotated else limit


def _small_probe_passes(x: NDArray[np.float32], k: int, spec: Exact) -> bool:
    """Whether a kd-tree over ``_SMALL_PROBE_ROWS`` evenly spaced rows of `x` scans at most
    ``_SMALL_PROBE_FACTOR`` times the larger probe limit (else no tree over all of `x` can
    reach either)."""
    n, d = x.shape
    rows = np.linspace(0, n - 1, _SMALL_PROBE_ROWS).astype(np.int64)
    sub = np.ascontiguousarray(x[rows])
    frame = frame_for(sub)
    tree = build_tree(sub, resolve_leaf_size(spec, d, frame is not None, sub.shape[0]), 0, frame)
    limit = max(_probe_limit(screened, frame is not None, d) for screened in (False, True))
    bar = min(1.0, _SMALL_PROBE_FACTOR * limit)
    return tree_share(tree, k, sub.shape[0], bar / 2) <= bar


def _screen_candidates(n: int, k: int) -> int:
    """Candidates kept per point by the int8 screening at least: twice k plus a margin."""
    return min(n - 1, 2 * k + 8)


def _on_grid(x: NDArray[np.float32], grid: float, amax: float) -> bool:
    """Whether every x * grid lies within 1e-3 of an integer (the core's pixel grids); `amax`
    is max |x|. In float32 where amax * grid <= 4096: the product's rounding (at most
    4096 * 2^-24 = 2.4e-4) is then well inside the tolerance; in float64 above. (Only the
    plan depends on this: the core decides the grid again, in double.)"""
    dtype = np.float64 if amax * grid > 4096 else np.float32
    tol, g = dtype(1e-3), dtype(grid)
    for start, stop in [(0, 64)] + [(s, s + 8192) for s in range(0, x.shape[0], 8192)]:
        v = x[start:stop].astype(dtype, copy=False) * g  # the first 64 rows alone: a fast no
        v -= np.round(v)
        if np.max(np.abs(v), initial=dtype(0)) > tol:
            return False
    return True


#: Most candidates per point the int8 screening may keep (its lists are sorted by insertion).
SCREEN_MAX_CANDIDATES = 384


def _sample_rows(n: int) -> NDArray[np.int64]:
    """The (up to) 64 sample rows of the candidate plans, spread over the data."""
    return np.linspace(0, n - 1, min(n, 64)).astype(np.int64)


#: Above this many bytes of sample distances (64 rows x n float64: n > 131,072), the plans
#: make two passes over the data (k smallest, then counts) instead of holding them all.
_PLAN_MATRIX_BYTES = 64 << 20
_PLAN_CHUNK = 8192


def _sample_counts(
    x: NDArray[np.float32],
    rows: NDArray[np.int64],
    mean: NDArray[np.float64],
    k: int,
    each: Callable[[NDArray[np.float64], slice], None] | None,
    threshold: Callable[[NDArray[np.float64]], NDArray[np.float64]],
) -> NDArray[np.int64]:
    """For each sample row `rows` (m of them), how many points lie within `threshold(kth)` in
    squared distance, where kth (m,) is the row's k-th smallest squared distance to the other
    points. Distances are float64 BLAS on data centred at `mean`, in chunks (no
    cancellation); `each(centred, part)` sees every centred chunk (float64) and its rows of x
    once, before `threshold` is called. Memory: the (m, n) distances up to
    ``_PLAN_MATRIX_BYTES``, beyond that a second pass and O(m (k + chunk)).
    """
    n = x.shape[0]
    m = rows.size
    q = x[rows] - mean
    qq = np.einsum("ij,ij->i", q, q)[:, None]
    one_pass = m * n * 8 <= _PLAN_MATRIX_BYTES

    def chunk_sq(c: NDArray[np.float64], part: slice) -> NDArray[np.float64]:
        sq: NDArray[np.float64] = qq - 2.0 * (q @ c.T) + np.einsum("ij,ij->i", c, c)
        own = (rows >= part.start) & (rows < part.stop)
        sq[np.flatnonzero(own), rows[own] - part.start] = np.inf  # a row's own distance
        return sq

    parts = [slice(s, min(n, s + _PLAN_CHUNK)) for s in range(0, n, _PLAN_CHUNK)]
    held = np.empty((m, n)) if one_pass else None
    best = np.full((m, 0), np.inf)  # the k smallest so far (two passes)
    for part in parts:
        c = x[part] - mean
        if each is not None:
            each(c, part)
        sq = chunk_sq(c, part)
        if held is not None:
            held[:, part] = sq
        else:
            both = np.concatenate([best, sq], axis=1)
            keep = min(k, both.shape[1])
            best = np.partition(both, keep - 1, axis=1)[:, :keep]
    if held is not None:
        kth = np.partition(held, k - 1, axis=1)[:, k - 1]
        held_counts: NDArray[np.int64] = np.count_nonzero(held <= threshold(kth)[:, None], axis=1)
        return held_counts
    kth = np.max(best, axis=1)
    thr = threshold(kth)[:, None]
    counts = np.zeros(m, dtype=np.int64)
    for part in parts:
        counts += np.count_nonzero(chunk_sq(x[part] - mean, part) <= thr, axis=1)
    return counts


def _blas_fits() -> bool:
    """Whether the sample distances' BLAS may run: BLAS exits the process (no exception) when
    its buffers cannot be allocated, so under a tight memory limit the plans use no samples."""
    left = address_space_left()
    return left is None or left >= BLAS_BYTES


def screen_plan(x: NDArray[np.float32], k: int, limit: int | None = None) -> int | None:
    """Candidates per point for the int8 screening of validated `x`, or None where it does
    not pay (no AVX-512 VNNI, or data whose 8-bit error bound would leave too many points
    unproven: the float32 tiles are then cheaper, or more than `limit` candidates).

    Pixel data (integers, or integers / 255, each feature spanning at most 255 steps) are
    quantised on their grid, losslessly or nearly: ``2k + 8``. For other data the plan is
    measured on 64 sample points: their exact distances to all points (float64 BLAS on
    centred data) give each one's k-th distance r_k and the number of points within
    ``r_k + err``, where err is the quantisation error bound the core uses (a residual of
    computed per point as the core does: the sample point's and the largest); a list must hold all
    of those to be proven. The plan is the largest count with a 20% margin, at least
    ``2k + 8``; None above ``SCREEN_MAX_CANDIDATES`` (or `limit`: every eighth sample row is
    measured first, and a plan that already exceeds it there is given up without the rest).
    """
    n = x.shape[0]
    if _core.simd_level() != "avx512" or n < 2:
        return None
    if not _blas_fits():  # under a tight memory limit, the float32 tiles
        return None
    base = _screen_candidates(n, k)
    lo, hi = x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64)
    amax_x = float(max(np.abs(lo).max(), np.abs(hi).max()))
    if any(np.all((hi - lo) * g <= 255) and _on_grid(x, g, amax_x) for g in (1.0, 255.0)):
        return base
    mean = x.mean(axis=0, dtype=np.float64)
    amax = float(np.max(np.maximum(hi - mean, mean - lo)))
    if amax <= 0:
        return base
    # The core's quantisation residual norms E (the core's own function).
    resid = _core.quantisation_residuals(x, mean, 127.0 / amax, 0)
    cap = SCREEN_MAX_CANDIDATES if limit is None else min(limit, SCREEN_MAX_CANDIDATES)
    rows = _sample_rows(n)
    kc = base
    # the plan is a maximum over the rows: a subset that exceeds the cap settles it (asked
    # with a limit only: otherwise the one pass over the data is all it costs)
    for subset in (rows[::8], rows) if limit is not None else (rows,):
        needed = _sample_counts(x, subset, mean, k, None, _reach(resid, subset)) + 1
        kc = max(base, math.ceil(1.2 * float(needed.max())))
        if kc > cap:
            return None
    return int(min(n - 1, kc))


def _reach(
    resid: NDArray[np.float64], rows: NDArray[np.int64]
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """The squared distance each sample row's list must reach: its k-th plus the slack
    E_a + E_max of the int8 bound (the residual norms `resid`)."""

    def within(kth_sq: NDArray[np.float64]) -> NDArray[np.float64]:
        err = resid[rows] + resid.max()
        reach: NDArray[np.float64] = np.sqrt(np.maximum(kth_sq, 0.0)) * (1.0 + 1e-4) + 1.1 * err
        return reach * reach

    return within


def screen_pays(x: NDArray[np.float32], k: int) -> bool:
    """Whether ``Exact(engine="auto")`` screens in int8 (see :func:`screen_plan`)."""
    return screen_plan(x, k) is not None


#: Most candidates per point the float32 tiles keep by plan (rows whose lists a longer one
#: would have proven are searched again exactly instead).
BRUTE_MAX_CANDIDATES = 1024
_FP32_ERR = 2.0 * 2.0**-24  # the core's bound: 2 (d + 6) u (|a| + max |b|)^2, centred data


def brute_plan(x: NDArray[np.float32], k: int) -> int:
    """Candidates per point for the float32 tiles of validated `x` (``engine="brute"``).

    The tiles' distances ``|a|^2 + |b|^2 - 2 a.b`` of centred points carry a rounding error of
    at most err = 2 (d + 6) 2^-24 (|a| + max |b|)^2 (the bound the core proves lists with), so
    a list is proven when it holds every point within the k-th squared distance plus twice
    that. Measured on 64 sample points as :func:`screen_plan` does: the largest such count
    with a 20% margin, at least ``k + max(4, k // 4)`` and at most ``BRUTE_MAX_CANDIDATES``.
    On data far from their mean relative to the neighbour distances (clusters) the bound is
    loose and lists must be long; short lists would leave many rows to the exact re-search.
    """
    n, d = int(x.shape[0]), int(x.shape[1])
    base = min(n - 1, k + _margin(k))
    if n <= base + 1 or not _blas_fits():
        return base
    mean = x.mean(axis=0, dtype=np.float64)
    norms = np.empty(n)

    def centred_norms(c: NDArray[np.float64], part: slice) -> None:
        norms[part] = np.sqrt(np.einsum("ij,ij->i", c, c))

    rows = _sample_rows(n)

    def within(kth_sq: NDArray[np.float64]) -> NDArray[np.float64]:
        err = _FP32_ERR * (d + 6) * (norms[rows] + norms.max()) ** 2
        bar: NDArray[np.float64] = kth_sq * (1.0 + 1e-4) + 2.2 * err
        return bar

    needed = _sample_counts(x, rows, mean, k, centred_norms, within) + 1
    kc = max(base, min(BRUTE_MAX_CANDIDATES, math.ceil(1.2 * float(needed.max()))))
    return int(min(n - 1, kc))


def query_knn(
    base: NDArray[np.float32], queries: NDArray[np.float32], k: int, n_threads: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Exact squared distances and indices (rows of `base`) of the k nearest rows of `base`
    to every query row (validated float32, same scale; queries are not excluded from `base`,
    which should not hold them). k is capped at len(base); missing entries are (+inf, -1).

    The kd-tree when it prunes (up to 12 features, or when a probe of sample self-queries of
    `base` scans at most ``QUERY_KDTREE_MAX_SHARE`` of it), else FAISS brute force over centred data
    with the candidates re-ranked exactly.
    """
    n, d = base.shape
    k = min(k, n)
    frame = frame_for(base)
    tree = build_tree(
        base, resolve_leaf_size(Exact(), d, frame is not None, n), 0, frame, n_threads=n_threads
    )
    limit = QUERY_KDTREE_MAX_SHARE
    if frame is not None:
        limit = rotated_share_limit(limit, d)
    if d <= KDTREE_MAX_DIM or n <= k or tree_share(tree, k, n, limit) <= limit:
        queries = np.ascontiguousarray(queries)
        rotated, errors = frame.apply(queries) if frame is not None else (None, None)
        result: tuple[NDArray[np.float32], NDArray[np.int64]] = tree.query(
            queries, k, None, n_threads, None, rotated, errors
        )
        return result
    with thread_limits(n_threads):
        rows = np.concatenate([base, queries])
        searcher = Searcher(rows, column_means(base), n_threads)
        index = flat_index(d, None)
        index.add(searcher.shifted(base))
        ids = np.arange(n, n + queries.shape[0], dtype=np.int64)
        return searcher.search(index, 0, n, ids, k)


def _brute_knn(
    x: NDArray[np.float32], k: int, spec: Exact, n_threads: int, screen: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The brute-force engine: float32 tiles, or (screen > 0) the int8 screening keeping
    `screen` candidates per point."""
    n, d = x.shape
    if spec.block_size is None:
        # A block pair loads 2 blocks and does block^2 * d FMAs: large blocks amortise the
        # loads; about 1 MiB of data per block stays in cache (measured fastest, d = 16-1280),
        # and at least 4 blocks per thread keep the threads busy.
        block = min(max(96, min(1536, (1 << 18) // d)), max(48, n // (4 * n_threads)))
    else:
        block = min(check_int(spec.block_size, "block_size", minimum=1), n)
    if screen:
        n_cand = max(k, min(n - 1, screen))
        sqdist, idx, _, _ = _core.screen_self_knn(x, k, n_cand, block, n_threads)
        return sqdist, idx
    sqdist, idx, _ = _core.brute_self_knn(x, k, brute_plan(x, k), block, n_threads)
    return sqdist, idx


class Searcher:
    """Candidates from a FAISS index, re-ranked with exact distances in the core.

    FAISS computes |x|^2 + |y|^2 - 2x.y, which cancellation ruins when the data sit far from
    the origin (embeddings with a large common offset): it returns wrong candidates that no
    re-ranking can repair. Distances do not change under translation, so the index is given
    the data minus `shift` (the column means) while re-ranking uses the original values: every
    engine then reports the same, exactly computed distances.
    """

    def __init__(self, x: NDArray[np.float32], shift: NDArray[np.float32] | None, n_threads: int):
        self.x = x
        self.shift = shift
        self.n_threads = n_threads

    def shifted(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        if self.shift is None:
            return rows
        return np.ascontiguousarray(rows - self.shift)

    def search(
        self,
        index: Any,
        start: int,
        stop: int,
        query_ids: NDArray[np.int64],
        k: int,
        n_cand: int | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Partial k-NN lists of rows `query_ids` against rows [start, stop) held by `index`,
        from `n_cand` candidates per query (default ``k + 1`` and a margin).

        Each query's own row is excluded; returned indices are rows of x.
        """
        block = self.x[start:stop]
        n_cand = min(k + 1 + _margin(k) if n_cand is None else n_cand, stop - start)
        m = query_ids.shape[0]
        dist = np.empty((m, k), dtype=np.float32)
        idx = np.empty((m, k), dtype=np.int64)
        for s in range(0, m, _QUERY_CHUNK):
            e = min(m, s + _QUERY_CHUNK)
            ids = query_ids[s:e]
            q = self.x[ids]  # a C-contiguous copy of one chunk of queries
            _, cand = index.search(self.shifted(q), n_cand)
            cand = np.ascontiguousarray(cand, dtype=np.int64)
            own = ids - start  # the query's row inside the block, or -1
            own[(own < 0) | (own >= block.shape[0])] = -1
            dist[s:e], local = _core.refine_candidates(block, q, cand, own, k, self.n_threads)
            idx[s:e] = np.where(local >= 0, local + start, -1)
        return dist, idx


def column_means(x: NDArray[np.float32]) -> NDArray[np.float32]:
    mean: NDArray[np.float32] = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    return mean


def flat_index(d: int, gpu: Any) -> Any:
    faiss = import_faiss()
    index = faiss.IndexFlatL2(d)
    return faiss.index_cpu_to_gpu(gpu, 0, index) if gpu is not None else index


def _complete_rows(
    x: NDArray[np.float32],
    k: int,
    result: tuple[NDArray[np.float32], NDArray[np.int64]],
    n_threads: int,
    device: str,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Redo, exactly, the rows where an approximate index returned fewer than k neighbours."""
    dist, idx = result
    short = np.flatnonzero(idx[:, k - 1] < 0)
    if short.size == 0:
        return result
    with thread_limits(n_threads):
        searcher = Searcher(x, column_means(x), n_threads)
        index = flat_index(x.shape[1], _use_gpu(device))
        index.add(searcher.shifted(x))
        dist[short], idx[short] = searcher.search(index, 0, x.shape[0], short, k)
    return dist, idx


def _db_blocks(n: int, block_size: int | None, default: int) -> list[tuple[int, int]]:
    size = default if block_size is None else check_int(block_size, "block_size", minimum=1)
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def tree_share(tree: Any, k: int, n: int, limit: float | None = None) -> float:
    """Mean share of the n points a kd-tree self-query scans, from a fixed sample of queries.

    With a `limit`, 16 of the queries run first, and when they scan over twice the limit
    (the tree cannot win) that share is returned without the rest: on wide data that no tree
    prunes (raw pixels) the full probe would cost a large part of the brute-force search.
    """
    m = min(n, _PROBE_QUERIES)
    positions = np.linspace(0, n - 1, m).astype(np.int64)  # spread over the tree's leaves
    if limit is not None and m > 32:
        first = np.ascontiguousarray(positions[:: m // 16])
        share = float(tree.probe(first, k)) / (first.size * n)
        if share > 2 * limit:
            return share
    return float(tree.probe(positions, k)) / (m * n)


def _kdtree_knn(
    x: NDArray[np.float32], k: int, spec: Exact, n_threads: int, k_blocks: int | None = None
) -> tuple[NDArray[np.float32], NDArray[np.int64], Any]:
    """The kd-tree's lists, and the tree when one tree holds all of `x`; `k_blocks` (default
    `k`): the list length when one tree per database block answers instead."""
    n, d = x.shape
    frame = frame_for(x)
    leaf = resolve_leaf_size(spec, d, frame is not None, n)
    blocks = _db_blocks(n, spec.block_size, n)
    if len(blocks) == 1:
        tree = build_tree(x, leaf, 0, frame, n_threads=n_threads)
        sqdist, idx = tree.self_query(k, n_threads)
        return sqdist, idx, tree
    k = k if k_blocks is None else k_blocks
    self_ids = np.arange(n, dtype=np.int64)
    rotated, errors = frame.apply(x) if frame is not None else (None, None)

    def block_tree(start: int, stop: int) -> Any:
        framed = (
            None if rotated is None or errors is None else (rotated[start:stop], errors[start:stop])
        )
        return build_tree(x[start:stop], leaf, start, frame, framed, n_threads)

    # One tree per database block; each partial list is padded with (+inf, -1) if block < k.
    # The rows are rotated once, for the queries and the blocks' trees alike.
    parts = (
        block_tree(start, stop).query(x, k, self_ids, n_threads, None, rotated, errors)
        for start, stop in blocks
    )
    return _no_tree(_merge_all(parts, k))


def _merge_all(
    parts: Iterator[tuple[NDArray[np.float32], NDArray[np.int64]]], k: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Fold partial k-NN lists over database blocks into one (at least one part)."""
    result = next(parts)
    for part in parts:
        result = _core.merge_topk(*result, *part, k)
    return result


def _margin(k: int) -> int:
    """Extra candidates fetched from FAISS so that re-ranking can fix its rounding."""
    return max(4, k // 4)


def faiss_bytes(n: int, d: int, k: int, spec: Any, n_threads: int) -> int:
    """Bytes a FAISS search of n x d rows for k neighbours will allocate (an estimate from
    above: the shifted copy of the data, the index, the candidate lists and the neighbour
    lists, and the OpenMP threads' stacks and arenas)."""
    n_cand = min(n, 4 * k + 8)  # at most candidates(k, n, spec)
    lists = 12 * n * k + 12 * min(n, _QUERY_CHUNK) * n_cand * 2
    threads = FAISS_WORK_BYTES + THREAD_BYTES * (max(1, n_threads) - 1)
    if isinstance(spec, HNSW):
        m = min(max(int(spec.m), 2), _HNSW_MAX_M)
        index = n * (4 * d + 8 * m + 64)  # vectors, level-0 links (2m), upper levels, locks
        return 4 * min(n, _ADD_BLOCK) * d + index + lists + threads
    if isinstance(spec, IVF):
        nlist = (
            spec.nlist if spec.nlist is not None else max(1, min(int(4 * math.sqrt(n)), n // 39))
        )
        nlist = min(max(int(nlist), 1), n)
        train = 4 * min(n, max(64 * nlist, 39 * 256)) * d
        index = n * (ivf_code_bytes(spec, d) + 8) + 4 * nlist * d
        blocks = 4 * min(n, _ADD_BLOCK) * d  # rows shifted a block at a time
        return blocks + train + index + lists + threads
    if isinstance(spec, Exact):  # FAISS flat over database blocks
        block = min(n, spec.block_size if spec.block_size is not None else 1 << 16)  # CPU
        return 4 * n * d + 8 * block * d + lists + threads
    return lists + threads  # a user's index: already built


def _check_faiss_memory(n: int, d: int, k: int, spec: Any, n_threads: int) -> None:
    name = type(spec).__name__ if isinstance(spec, (HNSW, IVF)) else "FAISS flat"
    if isinstance(spec, Exact):
        instead = "use a smaller block_size, or index='brute' (no FAISS)"
    elif isinstance(spec, (HNSW, IVF)):
        instead = (
            "use index='exact' (the compiled engines keep no index), or fewer threads (n_jobs=1)"
        )
    else:
        instead = "use fewer threads (n_jobs=1), or index='exact'"
    needed = faiss_bytes(n, d, k, spec, n_threads)
    if "faiss" not in sys.modules:
        needed += FAISS_LOAD_BYTES
    check_memory(needed, f"the {name} search", instead)


def _flat_knn(
    x: NDArray[np.float32],
    k: int,
    spec: Exact,
    n_threads: int,
    device: str,
    query_ids: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Exact squared distances and indices of the k nearest other rows of `x` to the rows
    `query_ids` (default all), FAISS brute force over database blocks, re-ranked exactly."""
    n, d = x.shape
    all_rows = np.arange(n, dtype=np.int64) if query_ids is None else query_ids
    with thread_limits(n_threads):
        gpu = _use_gpu(device)
        if spec.block_size is None:
            spec = replace(spec, block_size=flat_block_rows(d, gpu is not None))
        _check_faiss_memory(n, d, k, spec, n_threads)
        searcher = Searcher(x, column_means(x), n_threads)

        def search(start: int, stop: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
            index = flat_index(d, gpu)
            index.add(searcher.shifted(x[start:stop]))
            return searcher.search(index, start, stop, all_rows, k)

        blocks = _db_blocks(n, spec.block_size, 1 << 16)
        return _merge_all((search(start, stop) for start, stop in blocks), k)


#: exact_top_radii searches its rows through pruned cells (rather than FAISS brute force)
#: from this many times sqrt(n) rows at once: about the cost of building the cells.
_PRUNED_MIN_ROWS = 4


def exact_top_radii(
    x: NDArray[np.float32],
    radii: NDArray[np.float32],
    k: int,
    m: int,
    n_threads: int,
    above: float | None = None,
) -> tuple[NDArray[np.float32], int]:
    """Make the `m` largest of approximate k-th distances exact (or, with `above`, every one
    larger than it: those that may exceed it).

    `radii` (float32 (n,)) are k-th distances of lists an approximate index found and that
    were re-ranked exactly: each is at least the true k-th distance. Rows are searched exactly
    (FAISS brute force, re-ranked; from 4 sqrt(n) rows at once, the core IVF's cells pruned by
    the triangle inequality with each row's radius as the bound, ``_core.ivf_exact_rows``),
    largest radius first, a batch at a time, until the next
    unsearched radius is below the m-th largest exact one found: no row not searched can then
    be among the m largest. Returns the radii with the searched rows' exact values, and how
    many rows were searched. The m largest radii, and the rows holding them, are then those of
    an exact search (up to equal radii).
    """
    n = radii.shape[0]
    m = min(max(m, 1), n)
    exponent = scale_exponent(x.min(axis=0), x.max(axis=0))
    scaled = scale_down(x, exponent)
    out = radii.copy()
    order = np.argsort(-radii, kind="stable")
    if above is not None:
        m = int(np.count_nonzero(radii > above))
        order = order[:m]
    done = 0
    batch = max(2 * m, 256)
    cells: InvertedFile | None = None
    while done < order.size:
        ids = np.sort(order[done : done + batch]).astype(np.int64)
        if cells is None and ids.size >= _PRUNED_MIN_ROWS * math.sqrt(n):
            # Many rows: cells pruned by the triangle inequality (one k-means, one pass of
            # assignment) beat FAISS brute force over every row, where memory allows.
            nlist = _core_nlist(IVF(), n)
            try:
                check_memory(core_ivf_bytes(n, x.shape[1], k, nlist, n_threads), "", "")
            except MemoryError:
                nlist = 0
            if nlist:
                cells = InvertedFile(scaled, nlist, 0, n_threads)
        if cells is None:
            sq, _ = _flat_knn(scaled, k, Exact(engine="flat"), n_threads, "cpu", ids)
        else:
            # radii[ids] are distances of real points, at least the k-th: padded bounds.
            bound = np.ldexp(radii[ids].astype(np.float64), -exponent) ** 2 * (1 + 1e-5)
            _, labels, start, members = cells.lists()
            sq, _ = _core.ivf_exact_rows(
                scaled, cells.centres, labels, start, members, ids, bound.astype(np.float32),
                k, n_threads,
            )  # fmt: skip
        out[ids] = distances(np.ascontiguousarray(sq[:, k - 1]), exponent)
        done += ids.size
        if above is not None:
            continue
        searched = out[order[:done]]
        threshold = np.partition(searched, searched.size - m)[searched.size - m]
        if done >= n or radii[order[done]] < threshold:
            break
    return out, done


#: Bytes of database vectors a FAISS flat index holds at once on a GPU. Every block costs a
#: pass of all the queries to the GPU and a merge of partial lists: one block of 1M x 128
#: took 11.7 s on an H200 where 16 blocks of 65,536 rows took 21.8 s (2026-12-01, faiss-gpu
#: 1.8.0). 2 GiB fits with FAISS's scratch memory on any GPU of 4 GiB or more.
_GPU_BLOCK_BYTES = 1 << 31


def flat_block_rows(d: int, gpu: bool) -> int:
    """Database rows a FAISS flat index holds at once when ``block_size`` is None: 65,536 on
    the CPU, and up to 2 GiB of float32 vectors (at least 65,536 rows) on a GPU."""
    return max(1 << 16, _GPU_BLOCK_BYTES // (4 * d)) if gpu else 1 << 16


def _use_gpu(device: str) -> Any:
    """StandardGpuResources when FAISS should run on a GPU, else None."""
    if device == "cpu":
        return None
    available = gpu_available()
    if device == "gpu" and not available:
        raise RuntimeError(
            "device='gpu' but FAISS has no GPU support here or sees no GPU; install faiss-gpu "
            "on a CUDA machine, or use device='cpu'."
        )
    return import_faiss().StandardGpuResources() if available else None


def candidates(k: int, n: int, spec: Any) -> int:
    """Candidates asked of an index per query: ``k + 1`` and a rounding margin, more (``4 k +
    8``) for compressed (PQ) codes, whose distances are coarser."""
    if isinstance(spec, IVF) and str(spec.codes).startswith("pq"):
        return min(n - 1, 4 * k + 8)
    return min(n - 1, k + 1 + _margin(k))


def _add_rows(index: Any, searcher: Searcher) -> None:
    """Add every row, shifted, a block at a time (no shifted copy of the whole data)."""
    n = searcher.x.shape[0]
    for start in range(0, n, _ADD_BLOCK):
        index.add(searcher.shifted(searcher.x[start : start + _ADD_BLOCK]))


def ivf_code_bytes(spec: IVF, d: int) -> int:
    """Bytes a vector takes in the IVF index (``codes`` validated): 4 d, d or m."""
    codes = spec.codes
    if codes == "flat":
        return 4 * d
    if codes == "sq8":
        return d
    m = None
    if isinstance(codes, str) and codes.startswith("pq") and codes[2:].isdigit():
        m = int(codes[2:])
    if m is None or m < 1:
        raise ValueError(
            f"IVF.codes must be 'flat', 'sq8' or 'pq<m>' with m bytes a vector (e.g. 'pq64'), "
            f"got {codes!r}."
        )
    if d % m != 0:
        divisors = [q for q in (8, 16, 32, 48, 64, 96, 128) if d % q == 0 and q <= d]
        hint = f" (e.g. {', '.join(f'pq{q}' for q in divisors)})" if divisors else ""
        raise ValueError(
            f"IVF.codes={codes!r}: m={m} must divide the number of features ({d}), each byte "
            f"coding d / m features. Use a divisor of {d}{hint}, or codes='sq8'."
        )
    return m


def _build_approximate(searcher: Searcher, k: int, spec: HNSW | IVF, gpu: Any) -> Any:
    """An approximate index over the searcher's rows (shifted), trained, filled and tuned."""
    faiss = import_faiss()
    x = searcher.x
    n, d = x.shape
    # Validated even when the knob is given: a wrong value should not pass unnoticed.
    target = check_unit_fraction(
        spec.target_recall, f"{type(spec).__name__}.target_recall", allow_one=True
    )
    floor = candidates(k, n, spec)  # candidates asked of the index per query
    if isinstance(spec, HNSW):
        m = check_int(spec.m, "HNSW.m", minimum=2)
        if m > _HNSW_MAX_M:
            raise ValueError(
                f"HNSW.m={m} links per point would need {m * 8} bytes per point for the graph "
                f"alone; use at most {_HNSW_MAX_M} (16 to 64 is usual: more is slower to build "
                "and barely more accurate)."
            )
        index = faiss.IndexHNSWFlat(d, m)
        index.hnsw.efConstruction = check_int(
            spec.ef_construction, "HNSW.ef_construction", minimum=1
        )
        if spec.ef_search is not None:
            ef = min(check_int(spec.ef_search, "HNSW.ef_search", minimum=1), n)
        _add_rows(index, searcher)

        def set_ef(value: int) -> None:
            index.hnsw.efSearch = max(value, floor)

        if spec.ef_search is None:
            _faiss_tune(
                searcher, k, index, set_ef, (floor, max(floor, _HNSW_MAX_EF)), target, 0, floor
            )
        else:
            set_ef(ef)
        return index
    nlist = spec.nlist
    if nlist is None:
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
    nlist = min(check_int(nlist, "IVF.nlist", minimum=1), n)
    if spec.nprobe is not None:
        nprobe = min(check_int(spec.nprobe, "IVF.nprobe", minimum=1), nlist)
    quantizer = faiss.IndexFlatL2(d)
    n_train = min(n, 64 * nlist)
    code = ivf_code_bytes(spec, d)
    if spec.codes == "flat":
        index = faiss.IndexIVFFlat(quantizer, d, nlist)
    elif spec.codes == "sq8":
        index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit)
    else:
        index = faiss.IndexIVFPQ(quantizer, d, nlist, code, 8)
        # 256 centroids per code book: FAISS wants about 39 training points per centroid
        n_train = min(n, max(n_train, 39 * 256))
    seed = seed_from(spec.random_state, "IVF.random_state")
    index.cp.seed = seed
    rng = np.random.default_rng(seed)
    rows = slice(None) if n_train == n else np.sort(rng.choice(n, n_train, replace=False))
    train = searcher.shifted(x[rows])
    if gpu is not None:
        index = faiss.index_cpu_to_gpu(gpu, 0, index)
    index.train(train)
    del train
    _add_rows(index, searcher)

    def set_nprobe(value: int) -> None:
        index.nprobe = value

    if spec.nprobe is None:
        _faiss_tune(searcher, k, index, set_nprobe, (1, nlist), target, seed, floor)
    else:
        set_nprobe(nprobe)
    return index


_HNSW_MAX_EF = 4096
_HNSW_MAX_M = 512
_TUNE_SAMPLE = 512
_ADD_BLOCK = 1 << 16  # rows shifted and added to an index at a time


def sample_rows(n: int, seed: int) -> NDArray[np.int64]:
    """A fixed sample of at most 512 of n row indices (ascending) for recall checks."""
    rng = np.random.default_rng([seed, 0x7E57])
    return np.sort(rng.choice(n, min(n, _TUNE_SAMPLE), replace=False)).astype(np.int64)


def exact_kth(
    x: NDArray[np.float32],
    ids: NDArray[np.int64],
    k: int,
    shift: NDArray[np.float32] | None = None,
) -> NDArray[np.float64]:
    """Exact squared distance (float64, shape (len(ids),)) of rows `ids` of `x` to their k-th
    nearest other row. Candidates come from ``|b|^2 - 2 q.b`` of `x - shift` (centred data:
    no cancellation) in float32 BLAS products, a block of rows at a time (no centred copy of
    the whole data); they are re-ranked in float64. (NumPy's BLAS runs several times faster
    than ``faiss.knn`` here, whose OpenMP threads lose much time on a loaded machine.)"""
    n = x.shape[0]
    n_cand = min(n, k + 1 + _margin(k))
    rows = max(256, min(_ADD_BLOCK, (32 << 20) // (12 * max(1, ids.size))))  # ~32 MiB
    # BLAS exits the process (no exception) when it cannot map its buffers.
    check_memory(
        BLAS_BYTES + 12 * ids.size * rows + 8 * rows * x.shape[1],
        "the exact recall check of sample rows",
        "give the process more memory, or use index='exact'",
    )

    def centre(rows: NDArray[np.float32]) -> NDArray[np.float32]:
        return rows if shift is None else rows - shift

    q = np.ascontiguousarray(centre(x[ids]), dtype=np.float32)
    best_d = np.full((ids.size, 0), np.inf, dtype=np.float32)
    best_i = np.empty((ids.size, 0), dtype=np.int64)
    for start in range(0, n, rows):
        block = np.ascontiguousarray(centre(x[start : start + rows]), dtype=np.float32)
        score = np.einsum("ij,ij->i", block, block)[None, :] - 2.0 * (q @ block.T)
        c = min(n_cand, block.shape[0])
        part = np.argpartition(score, c - 1, axis=1)[:, :c]
        best_d = np.concatenate([best_d, np.take_along_axis(score, part, axis=1)], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        keep = np.argsort(best_d, axis=1, kind="stable")[:, :n_cand]
        best_d = np.take_along_axis(best_d, keep, axis=1)
        best_i = np.take_along_axis(best_i, keep, axis=1)
    kth = np.empty(ids.size)
    for row, (i, cand) in enumerate(zip(ids, best_i, strict=True)):
        cand = cand[(cand >= 0) & (cand != i)]
        dist = ((x[cand].astype(np.float64) - x[i].astype(np.float64)) ** 2).sum(axis=1)
        kth[row] = np.sort(dist)[k - 1]
    return kth


def _tune(
    x: NDArray[np.float32],
    k: int,
    found: Any,
    low: int,
    high: int,
    target: float,
    seed: int,
    shift: NDArray[np.float32] | None,
    kth_of: Any = None,
) -> int:
    """The smallest knob value in [low, high] whose sample recall@k reaches `target`.

    ``found(value, ids)`` returns the candidate indices (an (m, c) array, -1 for none) that
    the index proposes for rows `ids` of `x` with the knob (nprobe, efSearch) at `value`. The
    knob is doubled from `low` until the recall of a fixed sample of queries reaches the
    target, then bisected between the last two values; recall grows with the knob, so this
    needs O(log(high)) searches of the sample. Recall counts, for each sampled point, the
    candidates (self excluded) no farther than its exact k-th neighbour: ties and duplicate
    points cannot make a correct answer look wrong. The exact squared k-th distances of the
    sample come from ``kth_of(ids)`` (float64), by default :func:`exact_kth`.
    """
    n = x.shape[0]
    ids = sample_rows(n, seed)
    kth = exact_kth(x, ids, k, shift) if kth_of is None else kth_of(ids)

    def recall(value: int) -> float:
        hits = 0
        for row, (i, cand) in enumerate(zip(ids, found(value, ids), strict=True)):
            cand = cand[(cand >= 0) & (cand != i)]
            dist = ((x[cand].astype(np.float64) - x[i].astype(np.float64)) ** 2).sum(axis=1)
            hits += min(k, int((dist <= kth[row] * (1 + 1e-6) + 1e-30).sum()))
        return hits / (k * ids.size)

    value, below = low, low - 1  # below: largest value known to miss the target
    while recall(value) < target:
        if value >= high:
            return high
        below, value = value, min(high, 2 * value)
    while value - below > max(1, value // 16):  # bisect to within ~6% of the smallest
        mid = (below + value) // 2
        if recall(mid) >= target:
            value = mid
        else:
            below = mid
    return value


def _faiss_tune(
    searcher: Searcher,
    k: int,
    index: Any,
    setter: Any,
    bounds: tuple[int, int],
    target: float,
    seed: int,
    n_cand: int,
) -> None:
    """Set a FAISS index's knob (through `setter`) by :func:`_tune` on its candidates."""
    x = searcher.x

    def found(value: int, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        setter(value)
        _, cand = index.search(searcher.shifted(np.ascontiguousarray(x[ids])), n_cand)
        result: NDArray[np.int64] = cand
        return result

    setter(_tune(x, k, found, bounds[0], bounds[1], target, seed, searcher.shift))


def _faiss_index_knn(
    x: NDArray[np.float32], k: int, spec: Any, n_threads: int, device: str
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    n, d = x.shape
    if isinstance(spec, HNSW) and device == "gpu":
        raise ValueError(
            "HNSW runs on the CPU only (FAISS has no GPU HNSW index), but device='gpu' was "
            "asked for; use device='cpu' or 'auto' with index='hnsw', or index='flat' (exact) "
            "or 'ivf' to search on a GPU."
        )
    _check_faiss_memory(n, d, k, spec, n_threads)
    with thread_limits(n_threads):
        if isinstance(spec, (HNSW, IVF)):
            searcher = Searcher(x, column_means(x), n_threads)
            gpu = _use_gpu(device) if isinstance(spec, IVF) else None
            index = _build_approximate(searcher, k, spec, gpu)
        else:
            index = spec
            metric = getattr(index, "metric_type", None)
            if metric is not None and metric != import_faiss().METRIC_L2:
                raise ValueError(
                    f"the FAISS index uses metric {_metric_name(metric)}, but datagauge's "
                    "neighbours are Euclidean (L2); build the index with faiss.METRIC_L2 (e.g. "
                    "faiss.IndexFlatL2, or IndexHNSWFlat(d, m) / IndexIVFFlat(q, d, nlist) with "
                    "their default metric). For cosine similarity, L2-normalise the embeddings "
                    "first: on unit vectors the L2 order is the cosine order."
                )
            if index.d != d:
                raise ValueError(
                    f"the FAISS index has dimension {index.d} but the embeddings have {d} "
                    "features; build the index with the embeddings' dimension."
                )
            # The user's index holds the embeddings as they are (no shift): it stays usable.
            searcher = Searcher(x, None, n_threads)
            if index.ntotal == 0:
                if not index.is_trained:
                    index.train(x)
                index.add(x)
            elif index.ntotal != n:
                raise ValueError(
                    f"the FAISS index already holds {index.ntotal} vectors but there are {n} "
                    "embeddings; pass an empty index (it is filled here) or one holding exactly "
                    "these embeddings in this order."
                )
        n_cand = candidates(k, n, spec)
        return searcher.search(index, 0, n, np.arange(n, dtype=np.int64), k, n_cand)


def ivf_engine(spec: IVF, device: str) -> str:
    """Which engine runs an IVF spec: "core" or "faiss" (validated against codes and device)."""
    engine = check_choice(spec.engine, "IVF.engine", ("auto", "core", "faiss"))
    flat = spec.codes == "flat"
    if engine == "core":
        if not flat:
            raise ValueError(
                f"IVF(engine='core') keeps the vectors as they are (codes='flat'), got "
                f"codes={spec.codes!r}; use engine='faiss' (or 'auto') for compressed codes."
            )
        if device == "gpu":
            raise ValueError(
                "IVF(engine='core') runs on the CPU; use engine='faiss' for device='gpu'."
            )
        return "core"
    if engine == "faiss" or not flat or device == "gpu":
        return "faiss"
    return "core" if device == "cpu" or not gpu_available() else "faiss"


#: Lloyd iterations of the core IVF's coarse quantiser, and sample rows per cell it trains on.
_IVF_TRAIN_ITER = 10
_IVF_TRAIN_PER_CELL = 32
#: Queries a core IVF task packs at most, points packed at a time (ivf.hpp).
_IVF_QUERY_BLOCK = 768
_IVF_COL_BLOCK = 128
#: Stack of a std::thread (glibc default), the core IVF's workers.
_STACK_BYTES = 8 << 20


def _core_nlist(spec: IVF, n: int) -> int:
    nlist = spec.nlist if spec.nlist is not None else max(1, min(round(math.sqrt(n)), n // 32))
    return min(check_int(nlist, "IVF.nlist", minimum=1), n)


def core_ivf_bytes(n: int, d: int, k: int, nlist: int, n_threads: int) -> int:
    """Bytes the core IVF search of n x d rows for k neighbours will allocate besides the
    data (an estimate from above): the training sample, the cell lists, the probe scores
    (one matrix per thread while assigning, then sorted), the neighbour lists and each
    thread's packed blocks and candidate lists."""
    threads = max(1, n_threads)
    n_cand = min(n, k + 1 + _margin(k))
    sample = 4 * min(n, _IVF_TRAIN_PER_CELL * nlist) * d + 8 * nlist * d
    cells = 8 * n * 4  # labels, members and the argsort's scratch
    scores = 4 * nlist * nlist * (threads + 1) + 12 * nlist * nlist
    lists = 16 * n * k  # squared distances, indices, distances
    per_thread = (
        _STACK_BYTES + 4 * (_IVF_QUERY_BLOCK + _IVF_COL_BLOCK) * d + 16 * _IVF_QUERY_BLOCK * n_cand
    )
    return sample + cells + scores + lists + threads * per_thread


class InvertedFile:
    """The core IVF's cells over validated `x` (used in place): k-means centres trained (Lloyd,
    float32 tiles) on a seeded sample of 32 rows per cell, every row's home cell (nearest
    centre), the cells' member lists and each cell's probe order (nearest cells to any of
    its points first)."""

    def __init__(self, x: NDArray[np.float32], nlist: int, seed: int, n_threads: int):
        n = x.shape[0]
        self.mean = column_means(x)
        rng = np.random.default_rng(seed)
        n_train = min(n, _IVF_TRAIN_PER_CELL * nlist)
        rows = np.arange(n) if n_train == n else np.sort(rng.choice(n, n_train, replace=False))
        sample = np.ascontiguousarray(x[rows])
        init = np.ascontiguousarray(sample[np.sort(rng.choice(n_train, nlist, replace=False))])
        self.centres, _ = _core.ivf_train(sample, init, self.mean, _IVF_TRAIN_ITER, n_threads)
        del sample, init
        self.labels, scores = _core.ivf_assign(x, self.centres, self.mean, n_threads)
        self.probe: NDArray[np.int32] = np.argsort(scores, axis=1, kind="stable").astype(np.int32)
        del scores
        self.start = np.zeros(nlist + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.labels, minlength=nlist), out=self.start[1:])
        self.members = np.argsort(self.labels, kind="stable").astype(np.int64)

    def lists(self) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.int64], Any]:
        """(mean, labels, cell_start, members), as the core's IVF functions take them."""
        return self.mean, self.labels, self.start, self.members


def _core_ivf_knn(
    x: NDArray[np.float32], k: int, spec: IVF, n_threads: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The core IVF engine (see ivf.hpp): squared distances and indices of validated x."""
    n, d = x.shape
    target = check_unit_fraction(spec.target_recall, "IVF.target_recall", allow_one=True)
    nlist = _core_nlist(spec, n)
    nprobe = None
    if spec.nprobe is not None:
        nprobe = min(check_int(spec.nprobe, "IVF.nprobe", minimum=1), nlist)
    seed = seed_from(spec.random_state, "IVF.random_state")
    check_memory(
        core_ivf_bytes(n, d, k, nlist, n_threads),
        "the IVF search (engine='core')",
        "use fewer cells (IVF.nlist), fewer threads (n_jobs=1), or index='exact'",
    )
    cells = InvertedFile(x, nlist, seed, n_threads)
    n_cand = min(n - 1, k + _margin(k))

    def search(value: int, ids: NDArray[np.int64]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        result: tuple[NDArray[np.float32], NDArray[np.int64]] = _core.ivf_search(
            x, *cells.lists(), cells.probe, value, ids, k, n_cand, n_threads
        )
        return result

    def kth_of(ids: NDArray[np.int64]) -> NDArray[np.float64]:
        # Exact, through the cells pruned by the triangle inequality (no BLAS, no FAISS).
        unbounded = np.full(ids.size, np.inf, dtype=np.float32)
        sq, _ = _core.ivf_exact_rows(
            x, cells.centres, *cells.lists()[1:], ids, unbounded, k, n_threads
        )
        return np.asarray(sq[:, k - 1], dtype=np.float64)

    if nprobe is None:
        nprobe = _tune(
            x, k, lambda v, ids: search(v, ids)[1], 1, nlist, target, seed, cells.mean, kth_of
        )
    return search(nprobe, np.arange(n, dtype=np.int64))


def _check_finite_lists(dist: NDArray[np.float32], idx: NDArray[np.int64]) -> None:
    """A FAISS index of the user's, searched as it is: overflowing distances are an error."""
    if (idx < 0).any() or np.isinf(dist).any():
        raise ValueError(
            "squared distances between these embeddings overflow float32 (values or spans "
            "above about 1e19), and a FAISS index of your own is searched as it is; rescale "
            "the embeddings (e.g. divide by their largest absolute value), or use a built-in "
            "index ('exact', 'hnsw', 'ivf'), which rescales such data exactly."
        )


def _metric_name(metric: int) -> str:
    faiss = import_faiss()
    names = {getattr(faiss, n): n for n in dir(faiss) if n.startswith("METRIC_")}
    return f"faiss.{names.get(metric, metric)}"


def _merge_indices(idx: Any, name: str) -> NDArray[np.int64]:
    """A partial result's indices as C-contiguous int64: integers, or floats that are whole
    numbers (ValueError otherwise, never a silent truncation)."""
    arr = np.asarray(idx)
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=np.int64)
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and int(arr.max()) > np.iinfo(np.int64).max:
            raise ValueError(
                f"partial result {name} has indices beyond the int64 range; indices are row "
                "numbers: pass them as int64, as datagauge.kneighbors returns them."
            )
        return np.ascontiguousarray(arr, dtype=np.int64)
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) < 2.0**63)
        if whole.all():
            return np.ascontiguousarray(arr, dtype=np.int64)
        pos = tuple(int(v[0]) for v in np.nonzero(~whole))
        raise ValueError(
            f"partial result {name} has index {float(arr[pos])} at position {pos}, which is not a "
            "whole number; indices are integer row numbers (int64, as datagauge.kneighbors "
            "returns them), and a float index would be truncated. Pass the indices as "
            "integers."
        )
    raise ValueError(
        f"partial result {name} has indices of dtype {arr.dtype}; pass integer row numbers "
        "(int64, as datagauge.kneighbors returns them)."
    )


def merge_neighbors(
    a: tuple[NDArray[np.float32], NDArray[np.int64]],
    b: tuple[NDArray[np.float32], NDArray[np.int64]],
    k: int,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Merge two partial k-NN results over disjoint blocks of a database.

    Parameters
    ----------
    a, b : (distances, indices)
        float32 arrays of shape (m, ka) / (m, kb), sorted ascending per row, and integer
        indices of the same shapes (non-negative; a float array is accepted only when every
        value is a whole number); missing entries are (+inf, -1), and -1 marks nothing else.
    k : int
        Width of the merged lists.

    Returns
    -------
    (distances float32 (m, k), indices int64 (m, k))
        The k best of the union, sorted by (distance, index).

    Raises
    ------
    ValueError
        When a part's arrays differ in shape or row count, a distance is NaN or negative, a
        row is not ascending, an index is not a whole number or is negative other than a
        missing entry's -1, or a -1 carries a finite distance.
    """
    k = check_int(k, "k", minimum=1)
    parts = []
    for name, (dist, raw_idx) in (("a", a), ("b", b)):
        dist = np.ascontiguousarray(dist, dtype=np.float32)
        idx = _merge_indices(raw_idx, name)
        if dist.ndim != 2 or dist.shape != idx.shape:
            raise ValueError(
                f"partial result {name} must be two 2-D arrays of the same shape (m, k); got "
                f"{dist.shape} and {idx.shape}."
            )
        if np.isnan(dist).any() or (dist < 0).any():
            raise ValueError(
                f"partial result {name} has NaN or negative distances; pass distances as "
                "returned by datagauge.kneighbors (missing entries as +inf with index -1)."
            )
        bad = (idx < -1) | ((idx == -1) & np.isfinite(dist))
        if bad.any():
            row, col = (int(v[0]) for v in np.nonzero(bad))
            raise ValueError(
                f"partial result {name} has index {int(idx[row, col])} with distance "
                f"{float(dist[row, col])} at row {row}, column {col}; indices are row numbers "
                "(>= 0), and the only other entry is a missing one: index -1 with distance "
                "+inf. Mark missing entries as (+inf, -1), as datagauge.kneighbors does."
            )
        falls = (dist[:, 1:] < dist[:, :-1]).any(axis=1)
        if falls.any():
            row = int(np.flatnonzero(falls)[0])
            raise ValueError(
                f"partial result {name} is not sorted: row {row}'s distances decrease. Each "
                "row must be ascending, as datagauge.kneighbors returns them; sort each row "
                "first, e.g. order = np.argsort(dist, axis=1, kind='stable'); "
                "dist = np.take_along_axis(dist, order, 1); idx = np.take_along_axis(idx, "
                "order, 1)."
            )
        parts.append((dist, idx))
    if parts[0][0].shape[0] != parts[1][0].shape[0]:
        raise ValueError("both partial results must have one row per query (same m).")
    return _core.merge_topk(*parts[0], *parts[1], k)


def recall_at_k(approx: NDArray[np.int64], exact: NDArray[np.int64]) -> float:
    """Mean fraction of the exact k neighbours that an approximate search found.

    Parameters
    ----------
    approx, exact : ndarray of int64, shape (n, k)
        Neighbour indices of the same queries.

    Returns
    -------
    float in [0, 1]
    """
    approx = np.asarray(approx)
    exact = np.asarray(exact)
    if approx.shape != exact.shape or approx.ndim != 2 or exact.size == 0:
        raise ValueError(
            "approx and exact must be non-empty (n, k) arrays of one shape; got "
            f"{approx.shape} and {exact.shape}."
        )
    found = 0
    for j in range(exact.shape[1]):  # O(n k) memory, never (n, k, k)
        found += int((approx == exact[:, j : j + 1]).any(axis=1).sum())
    return found / exact.size
