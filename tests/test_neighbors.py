"""k-NN search against a brute-force oracle (scipy cdist in float64 on the float32 data)."""

from __future__ import annotations

import itertools

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

import datagauge
from datagauge import _core

# Absolute tolerance on distances for data in [0, 1]; relative tolerance otherwise.
ATOL = 1e-5
RTOL = 1e-5


def oracle_distances(x: np.ndarray) -> np.ndarray:
    """All pairwise Euclidean distances (float64) of the float32 data, self at +inf."""
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    dist = cdist(x64, x64)
    np.fill_diagonal(dist, np.inf)
    return dist


def oracle_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances float64 (n, k), indices (n, k)), self excluded, ties by index."""
    dist = oracle_distances(x)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, idx, axis=1), idx


def assert_matches_oracle(x, dist, idx, k, *, relative=False):
    od, oi = oracle_knn(x, k)
    assert dist.dtype == np.float32
    assert idx.dtype == np.int64
    assert dist.shape == idx.shape == (x.shape[0], k)
    np.testing.assert_array_equal(idx, oi)
    if relative:
        np.testing.assert_allclose(dist, od, rtol=RTOL, atol=0)
    else:
        np.testing.assert_allclose(dist, od, rtol=0, atol=ATOL)


def assert_sorted_by_distance_then_index(dist, idx):
    """Every row ascending by (distance, index)."""
    same = dist[:, 1:] == dist[:, :-1]
    assert np.all(dist[:, 1:] >= dist[:, :-1])
    assert np.all(~same | (idx[:, 1:] > idx[:, :-1]))


def assert_valid_with_ties(x, dist, idx, k):
    """A correct k-NN answer on data with exact ties (the tied ones chosen may vary)."""
    n = x.shape[0]
    full = oracle_distances(x)
    kth = np.sort(full, axis=1)[:, k - 1]
    rows = np.arange(n)[:, None]
    assert np.all(idx >= 0)
    assert np.all(idx < n)
    assert np.all(idx != rows)
    assert all(np.unique(row).size == k for row in idx)  # no point returned twice
    # The reported distances are the true distances of the returned points ...
    np.testing.assert_allclose(dist, full[rows, idx], rtol=1e-6, atol=0)
    # ... the radius is the oracle's k-th distance ...
    np.testing.assert_allclose(dist[:, -1], kth, rtol=1e-6, atol=0)
    # ... and every point strictly closer than the radius is among them.
    for i in range(n):
        closer = np.flatnonzero(full[i] < kth[i] * (1 - 1e-6))
        assert set(closer.tolist()) <= set(idx[i].tolist())
    assert_sorted_by_distance_then_index(dist, idx)


def uniform(seed: int, n: int, d: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


def clustered(seed: int, n: int = 3000, d: int = 16, n_clusters: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, d)) * 4
    labels = rng.integers(0, n_clusters, n)
    return (centers[labels] + rng.normal(size=(n, d))).astype(np.float32)


# --------------------------------------------------------------------------- exact engines

EXACT_INDEXES = [
    pytest.param("exact", id="exact"),
    pytest.param("kdtree", id="kdtree"),
    pytest.param("flat", id="flat"),
    pytest.param("brute", id="brute"),
    pytest.param(datagauge.Exact(engine="brute", block_size=1), id="brute-block48"),
    pytest.param(datagauge.Exact(engine="brute", block_size=100), id="brute-block144"),
    pytest.param(datagauge.Exact(engine="kdtree", leaf_size=1), id="kdtree-leaf1"),
    pytest.param(datagauge.Exact(engine="kdtree", leaf_size=7), id="kdtree-leaf7"),
    pytest.param(datagauge.Exact(engine="kdtree", block_size=64), id="kdtree-block64"),
    pytest.param(datagauge.Exact(engine="kdtree", block_size=499), id="kdtree-block499"),
    pytest.param(datagauge.Exact(engine="flat", block_size=64), id="flat-block64"),
    pytest.param(datagauge.Exact(engine="flat", block_size=250), id="flat-block250"),
]


@pytest.mark.parametrize("index", EXACT_INDEXES)
@pytest.mark.parametrize(("d", "k"), [(1, 5), (2, 10), (5, 1), (8, 20), (16, 10), (40, 7)])
def test_exact_matches_oracle(index, d, k):
    x = uniform(100 + d, 500, d)
    dist, idx = datagauge.kneighbors(x, k, index=index)
    assert_matches_oracle(x, dist, idx, k)


@pytest.mark.parametrize("engine", ["kdtree", "flat", "brute"])
@pytest.mark.parametrize("block_size", [1, 2, 3, 7, 50])
def test_block_sizes_smaller_than_k(engine, block_size):
    # Blocks smaller than k leave partial lists padded with (+inf, -1) before merging.
    x = uniform(7, 90, 3)
    k = 10
    dist, idx = datagauge.kneighbors(
        x, k, index=datagauge.Exact(engine=engine, block_size=block_size)
    )
    assert_matches_oracle(x, dist, idx, k)


@pytest.mark.parametrize("engine", ["kdtree", "flat", "brute"])
def test_k_equals_n_minus_one(engine):
    x = uniform(8, 40, 4)
    dist, idx = datagauge.kneighbors(x, 39, index=engine)
    assert_matches_oracle(x, dist, idx, 39)
    # Every other point exactly once.
    for i, row in enumerate(idx):
        assert sorted(row.tolist()) == [j for j in range(40) if j != i]


@pytest.mark.parametrize("d", [13, 20, 33, 40])
def test_auto_engine_above_kdtree_dims(d):
    # d > 12: Exact(engine="auto") takes the brute-force path (uniform data: the tree does not
    # pay); every exact engine gives the same indices and bit-identical distances.
    x = uniform(200 + d, 400, d)
    dist, idx = datagauge.kneighbors(x, 10)
    assert_matches_oracle(x, dist, idx, 10)
    for engine in ("flat", "brute", "kdtree"):
        dist_e, idx_e = datagauge.kneighbors(x, 10, index=engine)
        np.testing.assert_array_equal(idx, idx_e)
        np.testing.assert_array_equal(dist, dist_e)


@pytest.mark.parametrize(
    "index",
    [
        "kdtree",
        "flat",
        "brute",
        pytest.param(datagauge.Exact(engine="flat", block_size=97), id="flat-block97"),
    ],
)
@pytest.mark.parametrize("d", [2, 16, 40])
@pytest.mark.parametrize("offset", [1000.0, -5000.0])
def test_large_offset_distances_stay_exact(index, d, offset):
    # |x|^2 + |y|^2 - 2xy cancels badly here; the exact re-ranking must hide it.
    x = uniform(300 + d, 500, d) + np.float32(offset)
    dist, idx = datagauge.kneighbors(x, 10, index=index)
    assert_matches_oracle(x, dist, idx, 10, relative=True)


@pytest.mark.parametrize("index", ["exact", "flat", "brute"])
def test_large_offset_high_dim_many_queries(index):
    # At d=64 and 2000 rows FAISS's BLAS path returns candidates that are pure rounding noise
    # when every coordinate sits near 1000; margin re-ranking cannot repair a wrong candidate
    # set, so an "exact" search must not rely on it.
    x = uniform(11, 2000, 64) + np.float32(1000.0)
    dist, idx = datagauge.kneighbors(x, 10, index=index)
    assert_matches_oracle(x, dist, idx, 10, relative=True)


def test_scaled_data_relative_tolerance():
    x = uniform(12, 300, 6) * np.float32(1e4)
    for index in ("kdtree", "flat", "brute"):
        dist, idx = datagauge.kneighbors(x, 8, index=index)
        assert_matches_oracle(x, dist, idx, 8, relative=True)


def test_accepts_float64_and_int_input():
    x = np.random.default_rng(13).random((200, 3))
    dist, idx = datagauge.kneighbors(x, 5)
    assert_matches_oracle(x.astype(np.float32), dist, idx, 5)
    xi = np.random.default_rng(14).integers(0, 10**6, (200, 3))
    dist_i, idx_i = datagauge.kneighbors(xi, 5)
    assert dist_i.dtype == np.float32
    assert idx_i.dtype == np.int64


# --------------------------------------------------------------------------- ties, duplicates


def tied_data(seed: int, n: int, d: int, levels: int) -> np.ndarray:
    """Points on a small integer grid: many exact duplicates and equal distances."""
    return np.random.default_rng(seed).integers(0, levels, (n, d)).astype(np.float32)


@pytest.mark.parametrize(
    "index",
    [
        "kdtree",
        "flat",
        "brute",
        pytest.param(datagauge.Exact(engine="kdtree", block_size=17), id="kdtree-block17"),
        pytest.param(datagauge.Exact(engine="flat", block_size=17), id="flat-block17"),
        pytest.param(datagauge.Exact(engine="kdtree", leaf_size=4), id="kdtree-leaf4"),
    ],
)
@pytest.mark.parametrize(("d", "levels"), [(1, 20), (2, 4), (3, 3), (16, 2)])
def test_ties_and_duplicates(index, d, levels):
    x = tied_data(20 + d, 300, d, levels)
    k = 12
    first = datagauge.kneighbors(x, k, index=index, n_jobs=1)
    assert_valid_with_ties(x, *first, k)
    again = datagauge.kneighbors(x, k, index=index, n_jobs=1)
    two = datagauge.kneighbors(x, k, index=index, n_jobs=2)
    for other in (again, two):
        np.testing.assert_array_equal(first[0], other[0])
        np.testing.assert_array_equal(first[1], other[1])


@pytest.mark.parametrize("engine", ["kdtree", "flat", "brute"])
def test_all_points_identical(engine):
    x = np.full((50, 3), 0.25, dtype=np.float32)
    dist, idx = datagauge.kneighbors(x, 5, index=engine)
    assert np.all(dist == 0)
    assert_valid_with_ties(x, dist, idx, 5)


def test_radii_agree_across_engines_with_ties():
    x = tied_data(30, 400, 2, 5)
    radii = [
        datagauge.kneighbors(x, 15, index=index)[0][:, -1]
        for index in (
            "kdtree",
            "flat",
            "brute",
            datagauge.Exact(engine="kdtree", block_size=33),
            datagauge.Exact(engine="flat", block_size=33),
            datagauge.Exact(engine="brute", block_size=33),
        )
    ]
    for r in radii[1:]:
        np.testing.assert_array_equal(radii[0], r)


def test_n_jobs_does_not_change_result_on_continuous_data():
    x = uniform(31, 500, 5)
    for index in ("kdtree", "flat", "brute"):
        a = datagauge.kneighbors(x, 9, index=index, n_jobs=1)
        b = datagauge.kneighbors(x, 9, index=index, n_jobs=2)
        c = datagauge.kneighbors(x, 9, index=index, n_jobs=-1)
        for other in (b, c):
            np.testing.assert_array_equal(a[0], other[0])
            np.testing.assert_array_equal(a[1], other[1])


# --------------------------------------------------------------------------- merging


def test_kdtree_query_docstring_describes_partial_lists():
    doc = _core.KDTree.query.__doc__
    assert "Squared Euclidean distances" in doc
    assert "+inf" in doc
    assert "-1" in doc


@pytest.mark.parametrize("split", [1, 5, 150, 299])
@pytest.mark.parametrize("k", [1, 8])
def test_merge_two_halves_equals_full_search(split, k):
    x = uniform(40, 300, 4)
    ids = np.arange(x.shape[0], dtype=np.int64)
    a = _core.KDTree(np.ascontiguousarray(x[:split]), 16, 0).query(x, k, ids, 1)
    b = _core.KDTree(np.ascontiguousarray(x[split:]), 16, split).query(x, k, ids, 1)
    merged = datagauge.merge_neighbors(a, b, k)
    # Order of the parts does not matter.
    swapped = datagauge.merge_neighbors(b, a, k)
    full = _core.KDTree(x, 16, 0).self_query(k, 1)
    for result in (merged, swapped):
        np.testing.assert_array_equal(result[1], full[1])
        np.testing.assert_array_equal(result[0], full[0])
    od, oi = oracle_knn(x, k)
    np.testing.assert_array_equal(merged[1], oi)
    np.testing.assert_allclose(np.sqrt(merged[0]), od, atol=ATOL, rtol=0)


def test_partial_lists_are_padded_with_missing_entries():
    x = uniform(41, 30, 2)
    ids = np.arange(30, dtype=np.int64)
    dist, idx = _core.KDTree(np.ascontiguousarray(x[:3]), 4, 0).query(x, 5, ids, 1)
    assert dist.shape == idx.shape == (30, 5)
    # Rows 0..2 are in the block and exclude themselves: 2 real neighbours, 3 missing.
    assert np.all(idx[:3, 2:] == -1)
    assert np.all(np.isposinf(dist[:3, 2:]))
    assert np.all(idx[3:, 3:] == -1)
    assert np.all(np.isposinf(dist[3:, 3:]))
    assert np.all(idx[:, :2] >= 0)


def test_kdtree_query_with_offset_returns_global_indices():
    x = uniform(42, 100, 3)
    tree = _core.KDTree(np.ascontiguousarray(x[60:]), 8, 60)
    assert tree.size == 40
    assert tree.dim == 3
    assert tree.index_offset == 60
    sq, idx = tree.query(x[:5], 3)
    dist = cdist(x[:5].astype(np.float64), x[60:].astype(np.float64))
    np.testing.assert_array_equal(idx, np.argsort(dist, axis=1, kind="stable")[:, :3] + 60)
    np.testing.assert_allclose(sq, np.sort(dist, axis=1)[:, :3] ** 2, atol=1e-6)


def test_merge_missing_entries_sort_last():
    inf = np.inf
    a = (
        np.array([[0.5, inf, inf], [inf, inf, inf]], dtype=np.float32),
        np.array([[4, -1, -1], [-1, -1, -1]], dtype=np.int64),
    )
    b = (
        np.array([[0.1, 0.7, inf], [0.2, inf, inf]], dtype=np.float32),
        np.array([[9, 2, -1], [3, -1, -1]], dtype=np.int64),
    )
    dist, idx = datagauge.merge_neighbors(a, b, 4)
    np.testing.assert_array_equal(idx, [[9, 4, 2, -1], [3, -1, -1, -1]])
    np.testing.assert_array_equal(
        dist, np.array([[0.1, 0.5, 0.7, inf], [0.2, inf, inf, inf]], dtype=np.float32)
    )


def test_merge_ties_by_index_and_different_widths():
    a = (np.array([[1.0, 1.0, 2.0]], dtype=np.float32), np.array([[3, 8, 1]], dtype=np.int64))
    b = (np.array([[1.0]], dtype=np.float32), np.array([[5]], dtype=np.int64))
    dist, idx = datagauge.merge_neighbors(a, b, 3)
    np.testing.assert_array_equal(idx, [[3, 5, 8]])
    np.testing.assert_array_equal(dist, np.array([[1.0, 1.0, 1.0]], dtype=np.float32))
    dist, idx = datagauge.merge_neighbors(a, b, 6)
    np.testing.assert_array_equal(idx, [[3, 5, 8, 1, -1, -1]])
    assert np.isposinf(dist[0, 4:]).all()


def test_merge_with_itself_keeps_each_index_once():
    x = uniform(43, 60, 3)
    part = _core.KDTree(x, 8, 0).self_query(6, 1)
    dist, idx = datagauge.merge_neighbors(part, part, 6)
    np.testing.assert_array_equal(idx, part[1])
    np.testing.assert_array_equal(dist, part[0])


def test_merge_many_blocks_in_any_order():
    x = uniform(44, 200, 5)
    k = 7
    ids = np.arange(200, dtype=np.int64)
    bounds = [0, 3, 50, 51, 120, 200]
    parts = [
        _core.KDTree(np.ascontiguousarray(x[s:e]), 5, s).query(x, k, ids, 2)
        for s, e in itertools.pairwise(bounds)
    ]
    forward = parts[0]
    for p in parts[1:]:
        forward = datagauge.merge_neighbors(forward, p, k)
    backward = parts[-1]
    for p in parts[-2::-1]:
        backward = datagauge.merge_neighbors(p, backward, k)
    od, oi = oracle_knn(x, k)
    for result in (forward, backward):
        np.testing.assert_array_equal(result[1], oi)
        np.testing.assert_allclose(np.sqrt(result[0]), od, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- bounded queries


def float32_sqdist(queries: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Squared distances (m, n) with the tree's float32 arithmetic: sum over the features in
    order of (x_j - q_j)^2, separate multiply and add, so they are bit-identical to its own."""
    acc = np.zeros((queries.shape[0], data.shape[0]), dtype=np.float32)
    for j in range(data.shape[1]):
        t = data[None, :, j] - queries[:, None, j]
        acc += t * t
    return acc


def oracle_bounded(queries, data, k, bounds, offset=0, exclude=None):
    """The k first (distance, index) pairs with squared distance <= bound, padded with
    (+inf, -1): what a bounded query must return."""
    sq = float32_sqdist(queries, data)
    if exclude is not None:
        local = exclude - offset
        rows = np.flatnonzero((local >= 0) & (local < data.shape[0]))
        sq[rows, local[rows]] = np.inf
    out_d = np.full((queries.shape[0], k), np.inf, dtype=np.float32)
    out_i = np.full((queries.shape[0], k), -1, dtype=np.int64)
    for q in range(queries.shape[0]):
        inside = np.flatnonzero(sq[q] <= bounds[q])
        order = np.lexsort((inside, sq[q, inside]))[:k]  # by distance, then index
        out_d[q, : order.size] = sq[q, inside[order]]
        out_i[q, : order.size] = inside[order] + offset
    return out_d, out_i


@pytest.mark.parametrize(("d", "leaf"), [(1, 1), (3, 4), (8, 16), (20, 32)])
@pytest.mark.parametrize("k", [1, 6])
def test_bounded_query_matches_oracle(d, leaf, k):
    rng = np.random.default_rng(d * 10 + k)
    data = rng.random((400, d), dtype=np.float32)
    queries = np.concatenate([data[:30], rng.random((30, d), dtype=np.float32)])
    exclude = np.concatenate([np.arange(30) + 1000, np.full(30, -1)]).astype(np.int64)
    tree = _core.KDTree(data, leaf, 1000)
    sq = np.sort(float32_sqdist(queries, data), axis=1)
    # Bounds exactly at the k-th distance (itself excluded for the first 30), at the j-th
    # distance for j below and above k, between two distances, none, and below every point.
    kth = np.where(np.arange(60) < 30, sq[:, min(k, 399)], sq[:, k - 1])
    jth = sq[np.arange(60), rng.integers(0, 2 * k + 2, 60)]
    between = (sq[:, 2] + sq[:, 3]) / 2
    for bounds in (kth, jth, between, np.full(60, np.inf), np.full(60, -1.0), np.zeros(60)):
        bounds = np.ascontiguousarray(bounds, dtype=np.float32)
        dist, idx = tree.query(queries, k, exclude, 2, bounds)
        o_dist, o_idx = oracle_bounded(queries, data, k, bounds, 1000, exclude)
        np.testing.assert_array_equal(idx, o_idx)
        np.testing.assert_array_equal(dist, o_dist)  # bit-identical arithmetic


@pytest.mark.parametrize(
    "x",
    [
        uniform(50, 500, 4),
        clustered(51, 600, 12),
        np.random.default_rng(52).integers(0, 3, size=(300, 3)).astype(np.float32),  # ties
    ],
    ids=["uniform", "clustered", "duplicates"],
)
def test_infinite_bounds_change_nothing(x):
    tree = _core.KDTree(x, 8, 7)
    ids = np.arange(x.shape[0], dtype=np.int64) + 7
    plain = tree.query(x, 9, ids, 2)
    bounded = tree.query(x, 9, ids, 2, np.full(x.shape[0], np.inf, dtype=np.float32))
    np.testing.assert_array_equal(bounded[1], plain[1])
    np.testing.assert_array_equal(bounded[0], plain[0])
    inf = np.full(x.shape[0], np.inf, dtype=np.float32)
    assert tree.query_cost(x, 9, ids, inf) == tree.query_cost(x, 9, ids)


def test_point_exactly_at_the_bound_is_found():
    # One point per leaf: the leaf of the point at squared distance 4 has box distance 4,
    # exactly the bound, and must still be searched.
    data = np.array([[0.0], [1.0], [2.0], [3.0], [5.0]], dtype=np.float32)
    tree = _core.KDTree(data, 1, 0)
    queries = np.array([[0.0], [0.0]], dtype=np.float32)
    dist, idx = tree.query(queries, 4, None, 1, np.array([4.0, 3.99], dtype=np.float32))
    np.testing.assert_array_equal(idx, [[0, 1, 2, -1], [0, 1, -1, -1]])
    np.testing.assert_array_equal(dist, np.array([[0, 1, 4, np.inf], [0, 1] + [np.inf] * 2]))


def test_bounds_prune_the_search():
    x = clustered(53, 2000, 8)
    tree = _core.KDTree(np.ascontiguousarray(x[1000:]), 16, 1000)
    queries = np.ascontiguousarray(x[:1000])
    own = _core.KDTree(queries, 16, 0).self_query(10, 1)  # the queries' k-th distance so far
    bounds = np.ascontiguousarray(own[0][:, -1])
    full = tree.query_cost(queries, 10)
    seeded = tree.query_cost(queries, 10, None, bounds)
    assert seeded < 0.9 * full  # 0.81 on this data
    assert tree.query_cost(queries, 10, None, np.zeros(1000, dtype=np.float32)) < seeded


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 120),
    d=st.integers(1, 6),
    k=st.integers(1, 12),
    leaf=st.integers(1, 10),
    split=st.floats(0.0, 1.0),
)
def test_bounded_partial_list_merges_to_the_full_answer(seed, n, d, k, leaf, split):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d), dtype=np.float32)
    cut = min(n - 1, max(1, round(split * n)))
    ids = np.arange(n, dtype=np.int64)
    first = _core.KDTree(np.ascontiguousarray(x[:cut]), leaf, 0).query(x, k, ids, 1)
    rest = _core.KDTree(np.ascontiguousarray(x[cut:]), leaf, cut)
    bounds = np.ascontiguousarray(first[0][:, -1])  # +inf where fewer than k found
    part = rest.query(x, k, ids, 1, bounds)
    assert np.all((part[0] <= bounds[:, None]) | (part[1] == -1))
    assert rest.query_cost(x, k, ids, bounds) <= rest.query_cost(x, k, ids)
    merged = datagauge.merge_neighbors(first, part, k)
    unbounded = datagauge.merge_neighbors(first, rest.query(x, k, ids, 1), k)
    full = _core.KDTree(x, leaf, 0).query(x, k, ids, 1)  # one search over all the points
    # Among neighbours tied exactly at the k-th distance either may be returned (on a grid of
    # 2**-24 such ties are rare but possible): indices are compared on the other rows.
    sq = float32_sqdist(x, x)
    sq[ids, ids] = np.inf
    sq.sort(axis=1)
    untied = sq[:, k - 1] != sq[:, k] if k < n else np.ones(n, dtype=bool)
    for result in (unbounded, full):
        np.testing.assert_array_equal(merged[0], result[0])
        np.testing.assert_array_equal(merged[1][untied], result[1][untied])


def test_bad_bounds():
    x = uniform(54, 50, 3)
    tree = _core.KDTree(x, 8, 0)
    with pytest.raises(ValueError, match=r"bounds has 49 rows but queries has 50"):
        tree.query(x, 3, None, 1, np.zeros(49, dtype=np.float32))
    with pytest.raises(ValueError, match=r"bounds must be 1-D"):
        tree.query(x, 3, None, 1, np.zeros((50, 1), dtype=np.float32))
    nan = np.zeros(50, dtype=np.float32)
    nan[7] = np.nan
    with pytest.raises(ValueError, match=r"bounds must not be NaN \(row 7\); use \+inf"):
        tree.query(x, 3, None, 1, nan)
    with pytest.raises(ValueError, match=r"bounds must not be NaN"):
        tree.query_cost(x, 3, None, nan)
    with pytest.raises(TypeError):
        tree.query(x, 3, None, 1, np.zeros(50))  # float64: no hidden conversion
    with pytest.raises(TypeError):
        tree.query(x, 3, None, 1, np.zeros(100, dtype=np.float32)[::2])  # not contiguous
    with pytest.raises(ValueError, match=r"queries have 2 features but the tree has 3"):
        tree.query_cost(np.zeros((4, 2), dtype=np.float32), 3)


# --------------------------------------------------------------------------- refine_candidates


def numpy_refine(data, queries, candidates, exclude, k):
    m = queries.shape[0]
    out_d = np.full((m, k), np.inf, dtype=np.float64)
    out_i = np.full((m, k), -1, dtype=np.int64)
    for q in range(m):
        cand = [int(c) for c in candidates[q] if c >= 0 and (exclude is None or c != exclude[q])]
        sq = [float(np.sum((data[c].astype(np.float64) - queries[q]) ** 2)) for c in cand]
        order = sorted(zip(sq, cand, strict=True))[:k]
        for j, (s, c) in enumerate(order):
            out_d[q, j], out_i[q, j] = s, c
    return out_d, out_i


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize(("c", "k"), [(10, 4), (10, 10), (3, 6), (25, 1)])
def test_refine_candidates_against_numpy(c, k, n_threads):
    rng = np.random.default_rng(50 + c + k)
    data = rng.random((120, 7)).astype(np.float32)
    queries = data[:40].copy()
    candidates = np.stack([rng.permutation(120)[:c] for _ in range(40)]).astype(np.int64)
    candidates[rng.random(candidates.shape) < 0.2] = -1  # invalid entries are ignored
    candidates[:5, 0] = np.arange(5)  # the query itself, excluded below
    exclude = np.arange(40, dtype=np.int64)
    exclude[30:] = -1  # -1: nothing excluded
    sq, idx = _core.refine_candidates(data, queries, candidates, exclude, k, n_threads)
    ed, ei = numpy_refine(data, queries, candidates, exclude, k)
    np.testing.assert_array_equal(idx, ei)
    finite = np.isfinite(ed)
    np.testing.assert_array_equal(np.isfinite(sq), finite)
    np.testing.assert_allclose(sq[finite], ed[finite], rtol=1e-5, atol=1e-6)
    assert not np.any(idx[:30] == exclude[:30, None])


@pytest.mark.parametrize("d", [1, 7, 15, 16, 17, 33, 64, 100])
@pytest.mark.parametrize("c", [5, 8, 16, 23, 40])
def test_refine_candidates_bit_identical_to_the_float32_order(d, c):
    # The re-ranking's distances (16 or 8 candidates at a time in SIMD lanes, the rest one by
    # one) are the core's float32 sum in feature order, bit for bit, on wide-range data.
    rng = np.random.default_rng(d * 100 + c)
    data = (rng.standard_normal((60, d)) * 10.0 ** rng.integers(-3, 4, (60, 1))).astype(np.float32)
    queries = (rng.standard_normal((9, d)) * 10.0).astype(np.float32)
    candidates = np.stack([rng.permutation(60)[:c] for _ in range(9)]).astype(np.int64)
    sq, idx = _core.refine_candidates(data, queries, candidates, None, c, 1)
    expected = np.zeros((9, 60), dtype=np.float32)
    for j in range(d):
        t = queries[:, None, j] - data[None, :, j]
        expected = expected + t * t
    want = np.take_along_axis(expected, candidates, axis=1)
    order = np.lexsort((candidates, want), axis=1)
    np.testing.assert_array_equal(idx, np.take_along_axis(candidates, order, axis=1))
    ranked = np.take_along_axis(want, order, axis=1)
    assert np.array_equal(sq.view(np.uint32), ranked.view(np.uint32))


def test_refine_candidates_without_exclude():
    rng = np.random.default_rng(51)
    data = rng.random((50, 3)).astype(np.float32)
    queries = rng.random((10, 3)).astype(np.float32)
    candidates = np.tile(np.arange(50, dtype=np.int64), (10, 1))
    sq, idx = _core.refine_candidates(data, queries, candidates, k=5)
    dist = cdist(queries.astype(np.float64), data.astype(np.float64))
    np.testing.assert_array_equal(idx, np.argsort(dist, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(sq, np.sort(dist, axis=1)[:, :5] ** 2, rtol=1e-5, atol=1e-7)


def test_refine_candidates_fixes_cancellation():
    # Exact differences: a point's distance to itself is exactly 0 even far from the origin.
    data = (np.random.default_rng(52).random((20, 64)) + 1e4).astype(np.float32)
    candidates = np.tile(np.arange(20, dtype=np.int64), (20, 1))
    sq, idx = _core.refine_candidates(data, data, candidates, k=1)
    np.testing.assert_array_equal(idx[:, 0], np.arange(20))
    assert np.all(sq == 0)


# --------------------------------------------------------------------------- approximate


@pytest.fixture(scope="module")
def clustered_data():
    x = clustered(60)
    exact = datagauge.kneighbors(x, 10, index="flat")
    return x, exact


@pytest.mark.parametrize(
    "index",
    [
        "hnsw",
        "ivf",
        pytest.param(datagauge.HNSW(m=16, ef_search=32), id="hnsw-m16-ef32"),
        pytest.param(datagauge.IVF(nlist=50, nprobe=4, random_state=3), id="ivf-nlist50-nprobe4"),
    ],
)
def test_approximate_recall_and_radius(clustered_data, index):
    x, (exact_d, exact_i) = clustered_data
    dist, idx = datagauge.kneighbors(x, 10, index=index)
    assert dist.dtype == np.float32
    assert idx.dtype == np.int64
    assert datagauge.recall_at_k(idx, exact_i) >= 0.9
    # Found neighbours carry exact distances, so a radius is never below the true one.
    radius, true_radius = dist[:, -1], exact_d[:, -1]
    assert np.all(radius >= true_radius * (1 - 1e-6))
    rel = radius / true_radius - 1
    assert np.median(rel) <= 1e-3
    assert np.mean(rel) <= 0.02
    assert_sorted_by_distance_then_index(dist, idx)
    assert not np.any(idx == np.arange(x.shape[0])[:, None])


def test_approximate_is_deterministic(clustered_data):
    x, _ = clustered_data
    for index in ("ivf", "hnsw", datagauge.HNSW(ef_search=40)):
        a = datagauge.kneighbors(x, 10, index=index, n_jobs=1)
        b = datagauge.kneighbors(x, 10, index=index, n_jobs=1)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("target", [0.8, 0.95, 1.0])
@pytest.mark.parametrize("make", [datagauge.IVF, datagauge.HNSW], ids=["ivf", "hnsw"])
@pytest.mark.parametrize("kind", ["uniform", "clustered"])
def test_tuned_knob_reaches_target_recall(make, kind, target):
    # With the knob left to None it is tuned on a sample: the recall over *all* points must
    # land near the target (sampling noise aside), and a higher target never gives less.
    rng = np.random.default_rng(5)
    n, d = 4000, 24
    if kind == "uniform":
        x = rng.random((n, d), dtype=np.float32)
    else:
        centres = rng.normal(size=(20, 3))
        z = centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, 3))
        x = (z @ rng.normal(size=(3, d)) + 0.01 * rng.normal(size=(n, d))).astype(np.float32)
    _, exact_i = datagauge.kneighbors(x, 10)
    _, idx = datagauge.kneighbors(x, 10, index=make(target_recall=target))
    assert datagauge.recall_at_k(idx, exact_i) >= target - 0.03


def test_tuned_nprobe_is_smaller_on_clustered_data():
    # The point of tuning: easy (clustered) data get a small nprobe, hard data a large one.
    from datagauge.neighbors import Searcher, _build_approximate, column_means

    rng = np.random.default_rng(6)
    n, d = 4000, 24
    uniform = rng.random((n, d), dtype=np.float32)
    centres = rng.normal(size=(20, 3))
    z = centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, 3))
    clustered = (z @ rng.normal(size=(3, d))).astype(np.float32)
    probes = [
        _build_approximate(Searcher(x, column_means(x), 1), 10, datagauge.IVF(), None).nprobe
        for x in (uniform, clustered)
    ]
    assert probes[1] < probes[0]


def test_user_faiss_index_empty_is_filled(clustered_data):
    x, (exact_d, exact_i) = clustered_data
    index = faiss.IndexFlatL2(x.shape[1])
    dist, idx = datagauge.kneighbors(x, 10, index=index)
    assert index.ntotal == x.shape[0]
    np.testing.assert_array_equal(idx, exact_i)
    np.testing.assert_array_equal(dist, exact_d)
    # Already holding these embeddings: used as is.
    dist2, idx2 = datagauge.kneighbors(x, 10, index=index)
    assert index.ntotal == x.shape[0]
    np.testing.assert_array_equal(idx2, exact_i)
    np.testing.assert_array_equal(dist2, exact_d)


def test_user_faiss_index_untrained_is_trained():
    x = clustered(61, n=1000, d=8)
    quantizer = faiss.IndexFlatL2(8)
    index = faiss.IndexIVFFlat(quantizer, 8, 10)
    index.nprobe = 10  # every cell: exact
    dist, idx = datagauge.kneighbors(x, 5, index=index)
    assert index.is_trained
    assert index.ntotal == 1000
    od, oi = oracle_knn(x, 5)
    np.testing.assert_array_equal(idx, oi)
    np.testing.assert_allclose(dist, od, rtol=RTOL)


def test_user_faiss_index_wrong_dimension():
    x = uniform(62, 100, 8)
    with pytest.raises(ValueError, match=r"dimension 9 but the embeddings have 8"):
        datagauge.kneighbors(x, 5, index=faiss.IndexFlatL2(9))


def test_user_faiss_index_wrong_ntotal():
    x = uniform(63, 100, 8)
    index = faiss.IndexFlatL2(8)
    index.add(x[:50])
    with pytest.raises(ValueError, match=r"already holds 50 vectors but there are 100"):
        datagauge.kneighbors(x, 5, index=index)


def test_index_of_wrong_type():
    with pytest.raises(TypeError, match=r"index must be"):
        datagauge.kneighbors(uniform(64, 20, 2), 3, index=42)


# --------------------------------------------------------------------------- recall_at_k


def test_recall_at_k_hand_example():
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    approx = np.array([[3, 2, 9], [7, 8, 9]])
    # Row 0 finds 2 of 3 (order does not matter), row 1 none: 2 / 6.
    assert datagauge.recall_at_k(approx, exact) == pytest.approx(2 / 6)
    assert datagauge.recall_at_k(exact, exact) == 1.0
    assert datagauge.recall_at_k(exact[:, ::-1], exact) == 1.0
    assert datagauge.recall_at_k(np.full_like(exact, -1), exact) == 0.0


def test_recall_at_k_shape_mismatch():
    with pytest.raises(ValueError, match=r"same shape|one shape"):
        datagauge.recall_at_k(np.zeros((2, 3)), np.zeros((2, 4)))


def _low_dim_64(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, 2)) * 3
    z = centres[rng.integers(0, 10, n)] + 0.5 * rng.normal(size=(n, 2))
    return (z @ rng.normal(size=(2, 64)) + 0.01 * rng.normal(size=(n, 64))).astype(np.float32)


def test_tree_share_tells_low_from_high_intrinsic_dimension():
    from datagauge.neighbors import tree_share

    rng = np.random.default_rng(0)
    n = 4000
    uniform = rng.random((n, 64), dtype=np.float32)
    low = _low_dim_64(n, 1)
    share_uniform = tree_share(_core.KDTree(uniform, 128, 0), 10, n)
    share_low = tree_share(_core.KDTree(low, 128, 0), 10, n)
    assert share_uniform > 0.5  # a query touches most of uniform 64-d data
    assert share_low < 0.12  # and little of data near a plane


def test_auto_engine_uses_the_tree_only_where_it_pays(monkeypatch):
    # Same exact answer either way; the flat engine is only reached on the uniform data.
    from datagauge import neighbors

    n = 3000
    low = _low_dim_64(n, 2)
    uniform = np.random.default_rng(3).random((n, 64), dtype=np.float32)
    expected = {
        name: datagauge.kneighbors(x, 10, index="flat")
        for name, x in (("low", low), ("uniform", uniform))
    }
    calls = []
    real_brute = neighbors._brute_knn

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real_brute(*args, **kwargs)

    monkeypatch.setattr(neighbors, "_brute_knn", spy)
    for name, x in (("low", low), ("uniform", uniform)):
        dist, idx = datagauge.kneighbors(x, 10, device="cpu")
        np.testing.assert_array_equal(idx, expected[name][1])
        np.testing.assert_array_equal(dist, expected[name][0])
    assert len(calls) == 1  # only the uniform data went to brute force


def test_auto_engine_small_probe_skips_the_full_tree_only_where_none_prunes(monkeypatch):
    # Above 4 x 4,096 points a tree over 4,096 rows is probed first: on uniform 64-d data it
    # scans everything, so no tree over all the points is built; data near a plane pass on to
    # the full probe, whose tree answers. The answers are the same either way.
    from datagauge import neighbors

    n = 4 * neighbors._SMALL_PROBE_ROWS + 500
    low = _low_dim_64(n, 4)
    uniform = np.random.default_rng(5).random((n, 64), dtype=np.float32)
    built: list[int] = []
    real_build = neighbors.build_tree

    def spy(x, *args, **kwargs):
        built.append(x.shape[0])
        return real_build(x, *args, **kwargs)

    monkeypatch.setattr(neighbors, "build_tree", spy)
    spec = neighbors.Exact()
    assert not neighbors._small_probe_passes(uniform, 10, spec)
    assert neighbors._small_probe_passes(low, 10, spec)
    built.clear()
    chosen = neighbors._auto_engine(uniform, 10, spec, 2, "cpu")
    assert isinstance(chosen, (str, neighbors._Screen))  # brute force, not a tree's answer
    assert built == [neighbors._SMALL_PROBE_ROWS]
    built.clear()
    chosen = neighbors._auto_engine(low, 10, spec, 2, "cpu")
    assert isinstance(chosen, tuple)  # the full tree was kept: its answer
    assert built == [neighbors._SMALL_PROBE_ROWS, n]
    expected = datagauge.kneighbors(low, 10, index="flat")
    np.testing.assert_array_equal(chosen[1], expected[1])
    np.testing.assert_array_equal(np.sqrt(chosen[0]), expected[0])


def test_auto_engine_plans_brute_force_only_when_the_tree_is_in_doubt(monkeypatch):
    # The brute-force plan (a pass over the data) decides only between the two probe limits:
    # a tree scanning less than both is kept without it; uniform data, which no tree prunes,
    # gets the plan and the engine it picks.
    from datagauge import neighbors

    planned: list[int] = []
    real_plan = neighbors.screen_plan

    def spy(x, k, limit=None):
        planned.append(x.shape[0])
        return real_plan(x, k, limit)

    monkeypatch.setattr(neighbors, "screen_plan", spy)
    n = 4 * neighbors._SMALL_PROBE_ROWS + 500
    spec = neighbors.Exact()
    assert isinstance(neighbors._auto_engine(_low_dim_64(n, 4), 10, spec, 2, "cpu"), tuple)
    assert planned == []
    uniform = np.random.default_rng(6).random((n, 64), dtype=np.float32)
    chosen = neighbors._auto_engine(uniform, 10, spec, 2, "cpu")
    assert planned == [n]
    assert chosen == neighbors._brute_engine(uniform, 10)


def test_kdtree_probe_rejects_bad_positions():
    tree = _core.KDTree(np.random.default_rng(0).random((50, 3), dtype=np.float32), 8, 0)
    assert tree.probe(np.arange(50, dtype=np.int64), 5) >= 50 * 5
    with pytest.raises(ValueError, match=r"positions must lie in"):
        tree.probe(np.array([50], dtype=np.int64), 5)
    with pytest.raises(TypeError):
        tree.probe(np.array([1.0]), 5)


# --------------------------------------------------------------------------- brute force


def test_brute_verification_passes_on_continuous_data():
    # The fast path: every point's candidates are proven complete, nothing is searched again.
    x = uniform(40, 700, 24)
    dist, idx, redone = _core.brute_self_knn(x, 10, 14, 96, 2)
    assert redone == 0
    assert_matches_oracle(x, np.sqrt(dist), idx, 10)


def test_brute_fallback_repairs_unverifiable_rows():
    # No candidate margin and a large offset (|a|^2 + |b|^2 - 2ab is mostly rounding noise):
    # verification must fail for rows whose candidates may be wrong, and the exact search of
    # those rows must still give the oracle's answer.
    x = uniform(41, 600, 32) + np.float32(3000.0)
    x -= x.mean(axis=0)  # the core centres anyway; keep the noise: scale the spread down
    x = (x * np.float32(1e-3) + np.float32(3000.0)).astype(np.float32)
    dist, idx, redone = _core.brute_self_knn(x, 8, 8, 48, 2)
    assert redone > 0
    assert_matches_oracle(x, np.sqrt(dist), idx, 8, relative=True)


def test_brute_duplicates_are_searched_exactly():
    x = tied_data(42, 400, 16, 2)
    dist, idx, redone = _core.brute_self_knn(x, 12, 15, 48, 2)
    assert redone > 0  # many exact ties at the bound: unverifiable, redone exactly
    kd = datagauge.kneighbors(x, 12, index="kdtree")
    np.testing.assert_array_equal(np.sqrt(dist)[:, -1], kd[0][:, -1])
    assert_valid_with_ties(x, np.sqrt(dist), idx, 12)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 160),
    d=st.integers(1, 40),
    k_frac=st.floats(0.0, 1.0),
    block=st.integers(1, 200),
    threads=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_brute_equals_kdtree_property(n, d, k_frac, block, threads, seed):
    x = uniform(seed, n, d)
    k = 1 + int(k_frac * (n - 2))
    n_cand = min(n - 1, k + 4)
    dist, idx, _ = _core.brute_self_knn(x, k, n_cand, block, threads)
    tree_dist, tree_idx = _core.KDTree(x, 8, 0).self_query(k, 1)
    np.testing.assert_array_equal(dist, tree_dist)
    np.testing.assert_array_equal(idx, tree_idx)


def test_brute_core_rejects_bad_arguments():
    x = uniform(43, 30, 4)
    with pytest.raises(ValueError, match=r"k must be < the number of points"):
        _core.brute_self_knn(x, 30, 29, 48)
    with pytest.raises(ValueError, match=r"n_candidates must lie in \[k, n - 1\]"):
        _core.brute_self_knn(x, 5, 4, 48)
    with pytest.raises(ValueError, match=r"n_candidates must lie in \[k, n - 1\]"):
        _core.brute_self_knn(x, 5, 30, 48)
    with pytest.raises(ValueError, match=r"block must be >= 1"):
        _core.brute_self_knn(x, 5, 9, 0)
    with pytest.raises(TypeError):
        _core.brute_self_knn(x.astype(np.float64), 5, 9, 48)
    with pytest.raises(TypeError):
        _core.brute_self_knn(np.asfortranarray(uniform(44, 30, 4)), 5, 9, 48)
    with pytest.raises(ValueError, match=r"k must be < the number of points"):
        _core.brute_self_knn(uniform(45, 1, 4), 1, 1, 48)
    with pytest.raises(ValueError, match=r"at least one feature"):
        _core.brute_self_knn(np.zeros((10, 0), dtype=np.float32), 1, 1, 48)


def test_kdtree_prunes_many_identical_points():
    # A large group of identical points is split like any other (zero-size boxes), so a
    # query stops after k of them instead of scanning the whole group.
    x = np.zeros((4000, 3), dtype=np.float32)
    x[:100] = uniform(46, 100, 3)
    tree = _core.KDTree(x, 32, 0)
    positions = np.arange(100, 4000, 37, dtype=np.int64)
    scanned = tree.probe(positions, 10) / positions.size
    assert scanned < 0.05 * x.shape[0]
    dist, idx = datagauge.kneighbors(x, 10, index="kdtree")
    assert np.all(dist[100:] == 0)
    assert_valid_with_ties(x, dist, idx, 10)


def test_brute_many_unproven_rows_go_through_a_tree():
    # Over 256 unproven rows (a big group of duplicates): redone through a kd-tree.
    x = uniform(47, 1500, 16)
    x[200:1000] = x[200]
    dist, idx, redone = _core.brute_self_knn(x, 10, 14, 96, 2)
    assert redone > 256
    assert_valid_with_ties(x, np.sqrt(dist), idx, 10)
    kd = datagauge.kneighbors(x, 10, index="kdtree")
    np.testing.assert_array_equal(np.sqrt(dist)[:, -1], kd[0][:, -1])
    # Rows outside the group match the tree exactly.
    np.testing.assert_array_equal(idx[1000:], kd[1][1000:])


@pytest.mark.parametrize("index", ["kdtree", "brute", "flat", "exact"])
@pytest.mark.parametrize("exponent", [70, 120, -70, -100])
def test_huge_and_tiny_scales_are_exact(index, exponent):
    # Squared distances would overflow (or underflow) float32: the search runs on the data
    # times a power of two, which is exact, so the answer is the unit-scale answer scaled.
    x = uniform(48, 300, 20)
    ref_dist, ref_idx = datagauge.kneighbors(x, 6, index=index)
    scaled = np.ldexp(x, exponent).astype(np.float32)
    dist, idx = datagauge.kneighbors(scaled, 6, index=index)
    assert np.all(np.isfinite(dist))
    assert np.all(dist > 0)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, np.ldexp(ref_dist, exponent).astype(np.float32))
    radii = datagauge.coverage(scaled, 6, index=index).critical_value_radii
    np.testing.assert_array_equal(radii, dist[:, -1])


@pytest.mark.parametrize("d", [2, 9, 24])
def test_query_tree_equals_query(d):
    # The batched walk over another tree's batches gives query()'s answer, bounded or not.
    rng = np.random.default_rng(50 + d)
    db = clustered(51 + d, n=1500, d=d, n_clusters=12)
    q = clustered(52 + d, n=900, d=d, n_clusters=12)
    tree, qtree = _core.KDTree(db, 16, 5000), _core.KDTree(q, 8, 0)
    exclude = rng.integers(4990, 6600, q.shape[0]).astype(np.int64)
    plain = tree.query(q, 12, exclude, 1)
    batched = tree.query_tree(qtree, 12, exclude, None, 2)
    np.testing.assert_array_equal(plain[0], batched[0])
    np.testing.assert_array_equal(plain[1], batched[1])
    bounds = np.ascontiguousarray(plain[0][:, 5] * rng.uniform(0.5, 1.5, q.shape[0]), np.float32)
    bounds[::7] = np.inf
    a = tree.query(q, 12, exclude, 1, bounds)
    b = tree.query_tree(qtree, 12, exclude, bounds, 2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_query_tree_rejects_bad_arguments():
    tree = _core.KDTree(uniform(53, 50, 3), 8, 0)
    with pytest.raises(ValueError, match=r"query tree has 4 features but the tree has 3"):
        tree.query_tree(_core.KDTree(uniform(54, 20, 4), 8, 0), 3)
    qtree = _core.KDTree(uniform(55, 20, 3), 8, 0)
    with pytest.raises(ValueError, match=r"bounds has 19 rows"):
        tree.query_tree(qtree, 3, None, np.zeros(19, np.float32))
    with pytest.raises(ValueError, match=r"must not be NaN"):
        tree.query_tree(qtree, 3, None, np.full(20, np.nan, np.float32))
    with pytest.raises(ValueError, match=r"exclude has 21 rows"):
        tree.query_tree(qtree, 3, np.zeros(21, np.int64))
    with pytest.raises(TypeError):
        tree.query_tree(qtree, 3, None, np.zeros(20, np.float64))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 120),
    m=st.integers(1, 120),
    d=st.integers(1, 20),
    k=st.integers(1, 15),
    leaf=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    bounded=st.booleans(),
)
def test_query_tree_property(n, m, d, k, leaf, seed, bounded):
    rng = np.random.default_rng(seed)
    db = rng.integers(0, 4, (n, d)).astype(np.float32)  # ties and duplicates on purpose
    q = rng.integers(0, 4, (m, d)).astype(np.float32)
    tree, qtree = _core.KDTree(db, leaf, 0), _core.KDTree(q, leaf, 0)
    bounds = rng.uniform(0, 2 * d, m).astype(np.float32) if bounded else None
    dist, idx = tree.query_tree(qtree, k, None, bounds, 2)
    # Oracle: exact squared distances; the returned ones are the k smallest within the bound.
    full = ((q[:, None, :].astype(np.float64) - db[None, :, :]) ** 2).sum(axis=2)
    for r in range(m):
        allowed = np.sort(full[r][full[r] <= (np.inf if bounds is None else bounds[r])])
        want = allowed[:k]
        got = dist[r][idx[r] >= 0]
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert np.all(np.isinf(dist[r][idx[r] < 0]))
        np.testing.assert_allclose(full[r, idx[r][idx[r] >= 0]], got, rtol=1e-6)


def test_user_faiss_index_with_another_metric_is_rejected():
    faiss = pytest.importorskip("faiss")
    x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=r"metric faiss\.METRIC_INNER_PRODUCT.*L2-normalise"):
        datagauge.kneighbors(x, 5, index=faiss.IndexFlatIP(4))
    hnsw_ip = faiss.IndexHNSWFlat(4, 16, faiss.METRIC_INNER_PRODUCT)
    with pytest.raises(ValueError, match="Euclidean"):
        datagauge.kneighbors(x, 5, index=hnsw_ip)


def test_values_near_float32_max_give_finite_distances_or_a_clear_error():
    faiss = pytest.importorskip("faiss")
    x = (np.random.default_rng(1).uniform(-1, 1, size=(300, 4)) * 3e38).astype(np.float32)
    x64 = x.astype(np.float64)
    full = np.sqrt(((x64[:, None, :] - x64[None]) ** 2).sum(-1))
    np.fill_diagonal(full, np.inf)
    expected = np.sort(full, axis=1)[:, :5]
    for index in ("kdtree", "brute", "flat"):
        dist, _ = datagauge.kneighbors(x, 5, index=index)
        assert np.isfinite(dist).all()
        np.testing.assert_allclose(dist, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="overflow float32"):
        datagauge.kneighbors(x, 5, index=faiss.IndexFlatL2(4))


def test_merge_rejects_unsorted_or_invalid_lists():
    good = (np.array([[0.5, 2.0]], np.float32), np.array([[2, 3]]))
    unsorted = (np.array([[3.0, 1.0]], np.float32), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="not sorted: row 0"):
        datagauge.merge_neighbors(unsorted, good, 2)
    nan = (np.array([[np.nan, 1.0]], np.float32), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="NaN or negative"):
        datagauge.merge_neighbors(good, nan, 2)
    missing = (np.array([[1.0, np.inf]], np.float32), np.array([[0, -1]]))
    dist, idx = datagauge.merge_neighbors(good, missing, 2)
    np.testing.assert_array_equal(idx, [[2, 0]])
    np.testing.assert_array_equal(dist, [[0.5, 1.0]])


@pytest.mark.parametrize("codes", ["sq8", "pq4"])
def test_compressed_ivf_codes_give_exact_distances_at_the_target_recall(codes):
    """IVF-SQ8 / IVF-PQ propose candidates; the lists hold exact distances, and the tuned
    nprobe reaches the target recall on the tuning sample."""
    from datagauge.neighbors import IVF

    rng = np.random.default_rng(5)
    centres = rng.normal(0, 3, (20, 16))
    x = (centres[rng.integers(0, 20, 3000)] + rng.normal(size=(3000, 16))).astype(np.float32)
    dist, idx = datagauge.kneighbors(x, 10, index=IVF(codes=codes, target_recall=0.9))
    exact = np.sqrt(((x[idx].astype(np.float64) - x[:, None, :].astype(np.float64)) ** 2).sum(-1))
    np.testing.assert_allclose(dist, exact, rtol=1e-6, atol=1e-6)
    assert (idx != np.arange(3000)[:, None]).all()
    assert np.all(np.diff(dist, axis=1) >= 0)
    true_dist, _ = datagauge.kneighbors(x, 10)
    found = (dist <= true_dist[:, -1:] * (1 + 1e-6)).sum(axis=1)
    assert np.minimum(found, 10).mean() / 10 >= 0.85


def test_ivf_codes_errors():
    from datagauge.neighbors import IVF

    x = np.random.default_rng(0).normal(size=(500, 12)).astype(np.float32)
    with pytest.raises(ValueError, match="must be 'flat', 'sq8' or 'pq<m>'"):
        datagauge.kneighbors(x, 3, index=IVF(codes="pq"))
    with pytest.raises(ValueError, match=r"m=5 must divide the number of features \(12\)"):
        datagauge.kneighbors(x, 3, index=IVF(codes="pq5"))


def test_flat_block_rows_default():
    from datagauge.neighbors import flat_block_rows

    assert flat_block_rows(128, gpu=False) == 1 << 16
    assert flat_block_rows(128, gpu=True) == (1 << 31) // (4 * 128)  # 2 GiB of vectors
    assert flat_block_rows(1 << 16, gpu=True) == 1 << 16  # never fewer rows than on the CPU


@pytest.mark.skipif(
    not datagauge.neighbors.gpu_available(), reason="needs faiss-gpu and a CUDA GPU"
)
@pytest.mark.parametrize("block_size", [None, 700])
def test_gpu_flat_matches_the_cpu_engines(block_size):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3000, 48)) + 50).astype(np.float32)  # an offset FAISS must survive
    spec = datagauge.neighbors.Exact(engine="flat", block_size=block_size)
    dg, ig = datagauge.kneighbors(x, 7, index=spec, device="gpu")
    dc, ic = datagauge.kneighbors(x, 7, index="brute", device="cpu")
    np.testing.assert_array_equal(dg, dc)
    np.testing.assert_array_equal(ig, ic)
