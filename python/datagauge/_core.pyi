"""Stubs of the compiled core (cpp/bindings). Arrays must already have the exact dtype and
be C-contiguous: the core converts nothing and raises TypeError otherwise."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

class KDTree:
    """Exact Euclidean k-NN index over a block of points (kd-tree with bounding boxes)."""

    def __init__(
        self,
        data: NDArray[np.float32],
        leaf_size: int = 32,
        index_offset: int = 0,
        rotated: NDArray[np.float32] | None = None,
        errors: NDArray[np.float32] | None = None,
        frame: int = 0,
        n_threads: int = 1,
    ) -> None: ...
    @property
    def rotated(self) -> bool: ...
    @property
    def frame(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def index_offset(self) -> int: ...
    def query(
        self,
        queries: NDArray[np.float32],
        k: int,
        exclude: NDArray[np.int64] | None = None,
        n_threads: int = 0,
        bounds: NDArray[np.float32] | None = None,
        rotated_queries: NDArray[np.float32] | None = None,
        query_errors: NDArray[np.float32] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """k nearest tree points of each query: (squared distances, global indices), (m, k).

        With ``bounds`` (float32 (m,), not NaN, +inf for none) only points at squared distance
        <= bounds[q] are returned and farther nodes are not searched."""
    def query_cost(
        self,
        queries: NDArray[np.float32],
        k: int,
        exclude: NDArray[np.int64] | None = None,
        bounds: NDArray[np.float32] | None = None,
        rotated_queries: NDArray[np.float32] | None = None,
        query_errors: NDArray[np.float32] | None = None,
    ) -> int:
        """Points scanned by query(queries, k, exclude, bounds=bounds), summed over queries."""

    def query_tree(
        self,
        qtree: KDTree,
        k: int,
        exclude: NDArray[np.int64] | None = None,
        bounds: NDArray[np.float32] | None = None,
        n_threads: int = 0,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """k nearest tree points of every point of qtree's data, batch by batch (rows of qtree)."""
    def self_query(
        self, k: int, n_threads: int = 0
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """k nearest other tree points of every tree point, rows in the data's order."""
    def probe(self, positions: NDArray[np.int64], k: int) -> int:
        """Points scanned by self-queries of these tree positions (the search's cost)."""

def brute_self_knn(
    data: NDArray[np.float32], k: int, n_candidates: int, block: int, n_threads: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.int64], int]:
    """Exact k-NN of every point by symmetric brute force: (sqdist, indices, rows redone)."""

def screen_self_knn(
    data: NDArray[np.float32], k: int, n_candidates: int, block: int, n_threads: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.int64], int, str]:
    """Exact k-NN screened in int8 (AVX-512 VNNI) where it runs: (sqdist, indices, rows
    redone, kernel name)."""

def quantisation_residuals(
    data: NDArray[np.float32], mean: NDArray[np.float64], scale: float, n_threads: int = 0
) -> NDArray[np.float64]:
    """Per row, the int8 screening's quantisation residual norm (padded for rounding)."""

def simd_level() -> str:
    """The instruction set the k-NN kernels use: "avx512", "avx2" or "scalar"."""

def ivf_train(
    sample: NDArray[np.float32],
    centres: NDArray[np.float32],
    mean: NDArray[np.float32],
    max_iter: int,
    n_threads: int = 0,
) -> tuple[NDArray[np.float32], int]:
    """Lloyd iterations of the inverted file's coarse quantiser (float32 tile distances) from
    `centres` (n_cells, d) on `sample` (m, d): (centres, iterations run)."""

def ivf_assign(
    data: NDArray[np.float32],
    centres: NDArray[np.float32],
    mean: NDArray[np.float32],
    n_threads: int = 0,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Home cell (nearest centre) of each row (n,), and the probe scores (n_cells, n_cells):
    the smallest squared distance from a row of cell c to centre j (-inf on the diagonal)."""

def ivf_search(
    data: NDArray[np.float32],
    mean: NDArray[np.float32],
    labels: NDArray[np.int64],
    cell_start: NDArray[np.int64],
    members: NDArray[np.int64],
    probe: NDArray[np.int32],
    nprobe: int,
    queries: NDArray[np.int64],
    k: int,
    n_candidates: int,
    n_threads: int = 0,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Approximate k nearest other rows of rows `queries` (m,): each compared with the points
    of the first `nprobe` cells of its home cell's probe list, the `n_candidates` nearest
    re-ranked exactly: (squared distances, indices), (m, k), (+inf, -1) where fewer met."""

def ivf_exact_rows(
    data: NDArray[np.float32],
    centres: NDArray[np.float32],
    labels: NDArray[np.int64],
    cell_start: NDArray[np.int64],
    members: NDArray[np.int64],
    queries: NDArray[np.int64],
    bounds: NDArray[np.float32],
    k: int,
    n_threads: int = 0,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Exact k nearest other rows of rows `queries` (m,), cells pruned by the triangle
    inequality given `bounds` (m,) on the squared k-th distances (+inf: none): (squared
    distances, indices), (m, k)."""

def ivf_kernel() -> str:
    """The inverted file's tile kernel: "fp32-avx512", "fp32-avx2" or "fp32-scalar"."""

def fp32_tile_kernel() -> str:
    """The float32 tiles' micro-kernel: "fp32-avx512", "fp32-avx2" or "fp32-scalar"."""

def merge_topk(
    dist_a: NDArray[np.float32],
    idx_a: NDArray[np.int64],
    dist_b: NDArray[np.float32],
    idx_b: NDArray[np.int64],
    k: int,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Merge two sorted partial k-NN lists into the k best of their union."""

def refine_candidates(
    data: NDArray[np.float32],
    queries: NDArray[np.float32],
    candidates: NDArray[np.int64],
    exclude: NDArray[np.int64] | None = None,
    k: int = ...,
    n_threads: int = 0,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Exact squared distances of candidate neighbours, re-ranked, excluded index dropped."""

def coverage_adaptive(
    radii: NDArray[np.float32], selection: int
) -> tuple[NDArray[np.int64], float]:
    """The `selection` most isolated points and the adaptive coverage radius."""

def coverage_threshold(radii: NDArray[np.float32], radius: float) -> NDArray[np.int64]:
    """Points with radius strictly greater than `radius`, most isolated first."""

class GmmStats:
    """Mergeable sufficient statistics of one Gaussian-mixture EM step over some rows."""

    def __init__(
        self,
        covariance_type: str,
        n_samples: float,
        loglik: float,
        shift: NDArray[np.float64],
        nk: NDArray[np.float64],
        s: NDArray[np.float64],
        q: NDArray[np.float64],
    ) -> None: ...
    def merge(self, other: GmmStats) -> None:
        """Add another block's statistics (same model) in place."""

    def copy(self) -> GmmStats: ...
    @property
    def covariance_type(self) -> str: ...
    @property
    def n_components(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def n_samples(self) -> float: ...
    @property
    def loglik(self) -> float: ...
    @property
    def shift(self) -> NDArray[np.float64]: ...
    @property
    def nk(self) -> NDArray[np.float64]: ...
    @property
    def s(self) -> NDArray[np.float64]: ...
    @property
    def q(self) -> NDArray[np.float64]: ...

def gmm_accumulate(
    X: NDArray[np.float32] | NDArray[np.float64],
    weights: NDArray[np.float64],
    means: NDArray[np.float64],
    prec_chol: NDArray[np.float64],
    covariance_type: str,
    shift: NDArray[np.float64],
    n_threads: int = 0,
) -> GmmStats:
    """E-step over the rows of X and the M-step's sufficient statistics."""

def gmm_accumulate_resp(
    X: NDArray[np.float32] | NDArray[np.float64],
    resp: NDArray[np.float64],
    covariance_type: str,
    shift: NDArray[np.float64],
    n_threads: int = 0,
) -> GmmStats:
    """Sufficient statistics for given responsibilities."""

def gmm_accumulate_nearest(
    X: NDArray[np.float32] | NDArray[np.float64],
    centres: NDArray[np.float64],
    covariance_type: str,
    shift: NDArray[np.float64],
    n_threads: int = 0,
) -> GmmStats:
    """Sufficient statistics of the hard assignment of every row to its nearest centre."""

def kmeans_plusplus(
    X: NDArray[np.float32] | NDArray[np.float64],
    first: int,
    draws: NDArray[np.float64],
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Greedy k-means++ seeding (scikit-learn's kmeans_plusplus) from given random draws."""

def kmeans_lloyd(
    X: NDArray[np.float32] | NDArray[np.float64],
    centres: NDArray[np.float64],
    max_iter: int,
    tol: float = 1e-4,
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], int]:
    """Lloyd (k-means) iterations from the given centres, as scikit-learn's KMeans runs them."""

def gmm_score(
    X: NDArray[np.float32] | NDArray[np.float64],
    weights: NDArray[np.float64],
    means: NDArray[np.float64],
    prec_chol: NDArray[np.float64],
    covariance_type: str,
    return_resp: bool = False,
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], Any]:
    """Per-sample log-likelihood and optionally the responsibilities (n, K)."""

def gmm_kernel_level() -> str:
    """Instruction set of the mixture and k-means kernels: "avx512", "avx2" or "scalar"."""

def gmm_m_step(
    stats: GmmStats, reg_covar: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """M-step: (weights, means, covariances, precisions_cholesky), as scikit-learn."""

MAX_SUBGROUP_TAGS: int
MAX_TAG_COLUMNS: int

def subgroup_search(
    tags: NDArray[np.uint64],
    n: int,
    positives: NDArray[np.uint64] | None = None,
    values: NDArray[np.float64] | None = None,
    max_tags: int = 3,
    min_support: int = 1,
    max_results: int = 10000000,
    n_threads: int = 0,
) -> tuple[
    NDArray[np.int32],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
]:
    """Every combination of 1..max_tags packed tags with support >= min_support (by size, then
    lexicographic): (combos padded with -1, support, positives, sum, sumsq)."""

def pack_columns(x: NDArray[np.uint8], n_threads: int = 0) -> NDArray[np.uint64]:
    """Bit-pack the columns of a C-contiguous uint8 (n, t) 0/1 matrix: uint64 (t, ceil(n/64))."""

def subgroup_counts(
    tags: NDArray[np.uint64],
    n: int,
    positives: NDArray[np.uint64] | None,
    values: NDArray[np.float64] | None,
    combos: NDArray[np.int32],
    word_begin: int,
    word_end: int,
    n_threads: int = 0,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Counts of given combinations over words [word_begin, word_end): a mergeable partial."""

def fisher_exact_2x2(
    c00: NDArray[np.int64],
    c01: NDArray[np.int64],
    c10: NDArray[np.int64],
    c11: NDArray[np.int64],
    n_threads: int = 0,
) -> NDArray[np.float64]:
    """Two-sided Fisher exact p-values of 2x2 tables, as scipy.stats.fisher_exact."""

def two_proportion_ztest(
    x1: NDArray[np.int64],
    n1: NDArray[np.int64],
    x2: NDArray[np.int64],
    n2: NDArray[np.int64],
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Pooled two-proportion z-test: (z, two-sided p)."""

def welch_ttest(
    mean1: NDArray[np.float64],
    var1: NDArray[np.float64],
    n1: NDArray[np.int64],
    mean2: NDArray[np.float64],
    var2: NDArray[np.float64],
    n2: NDArray[np.int64],
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Welch's t-test from summary statistics: (t, df, two-sided p)."""

def euclidean_mst(
    data: NDArray[np.float32],
    neighbors: NDArray[np.int64],
    leaf_size: int = 16,
    n_threads: int = 0,
    sqdist: NDArray[np.float32] | None = None,
    tree: KDTree | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], dict[str, int]]:
    """Exact Euclidean minimum spanning tree (Boruvka) from exact k-NN lists: (source, target,
    squared lengths, stats), edges sorted by (squared length, source, target), source < target.
    `tree`: a kd-tree over exactly `data` (index offset 0) to search in instead of building
    Boruvka's own trees."""
