"""Minimum spanning trees: the exact Euclidean tree against SciPy on dense distance matrices,
DataEval 1.1.4's k-NN-graph tree against its recorded edges, and the core's input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import minimum_spanning_tree as scipy_mst

from _comparison_reference import REFERENCE, make_ref
from datagauge import _core
from datagauge.graph import neighbor_graph
from datagauge.mst import minimum_spanning_tree
from datagauge.neighbors import Exact, self_knn_distances

# --------------------------------------------------------------------------- the oracle


def core_sqdist(x):
    """All squared distances in the core's float32 arithmetic (feature order, no FMA)."""
    x = np.asarray(x, dtype=np.float32)
    s = np.zeros((len(x), len(x)), dtype=np.float32)
    for j in range(x.shape[1]):
        t = x[:, None, j] - x[None, :, j]
        s = s + t * t
    return s


def oracle_tree(x):
    """SciPy's minimum spanning tree of the dense matrix: (sorted squared lengths, edge set).

    SciPy takes a zero entry for a missing edge, so the weights are the ranks of the squared
    distances plus one (the same order, hence the same trees)."""
    s = core_sqdist(x)
    ranks = np.unique(s, return_inverse=True)[1].reshape(s.shape) + 1.0
    np.fill_diagonal(ranks, 0.0)
    tree = scipy_mst(ranks).tocoo()
    edges = set(
        zip(
            np.minimum(tree.row, tree.col).tolist(),
            np.maximum(tree.row, tree.col).tolist(),
            strict=True,
        )
    )
    return np.sort(s[tree.row, tree.col]), edges, s


def distinct_distances(s):
    upper = s[np.triu_indices(len(s), 1)]
    return np.unique(upper).size == upper.size


def check_against_oracle(x, **kwargs):
    tree = minimum_spanning_tree(x, **kwargs)
    lengths, edges, s = oracle_tree(x)
    n = len(x)
    assert tree.source.shape == tree.target.shape == tree.distances.shape == (n - 1,)
    assert (tree.source < tree.target).all()
    sq = s[tree.source, tree.target]
    np.testing.assert_array_equal(np.sort(sq), lengths)
    np.testing.assert_array_equal(tree.distances, np.sqrt(sq))
    # a spanning tree: n - 1 edges joining everything
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in zip(tree.source, tree.target, strict=True):
        ra, rb = find(a), find(b)
        assert ra != rb
        parent[ra] = rb
    if distinct_distances(s):
        assert set(zip(tree.source.tolist(), tree.target.tolist(), strict=True)) == edges
    order = np.lexsort((tree.target, tree.source, sq))
    np.testing.assert_array_equal(order, np.arange(n - 1))
    return tree


# --------------------------------------------------------------------------- exact tree


@pytest.mark.parametrize(
    ("name", "x", "k"),
    [
        ("gaussian_2d", np.random.default_rng(0).normal(size=(400, 2)), 5),
        ("gaussian_2d_k1", np.random.default_rng(0).normal(size=(400, 2)), 1),
        ("gaussian_8d", np.random.default_rng(1).normal(size=(300, 8)), 10),
        (
            "separated_clusters",
            np.concatenate([np.random.default_rng(2).normal(c, 0.2, (100, 3)) for c in (0, 4, 9)]),
            5,
        ),
        ("rounded_duplicates", np.round(np.random.default_rng(3).normal(size=(500, 2)), 1), 3),
        ("all_equal", np.zeros((60, 3)), 4),
        ("repeated_rows", np.repeat(np.random.default_rng(4).normal(size=(8, 2)), 25, axis=0), 4),
        ("integer_grid", np.random.default_rng(5).integers(0, 3, size=(300, 4)).astype(float), 2),
    ],
)
def test_exact_tree_equals_scipy(name, x, k):
    check_against_oracle(x, k=k)


@pytest.mark.parametrize("index", ["exact", "brute"])
@pytest.mark.parametrize("k", [1, 5])
def test_exact_tree_with_large_components(k, index):
    """Components of 256 points or more get trees of their own in the late rounds (brute-force
    lists: Boruvka builds its trees; kd-tree lists: it searches in the lists' tree)."""
    rng = np.random.default_rng(21)
    parts = [rng.normal(c, 0.4, (450, 4)) for c in (0.0, 3.0, 9.0)]
    parts.append(np.repeat(rng.normal(5.0, 2.0, (30, 4)), 10, axis=0))  # copies: closed groups
    parts.append(rng.uniform(-4.0, 12.0, (100, 4)))
    x = np.concatenate(parts)
    tree = check_against_oracle(x[rng.permutation(len(x))], k=k, index=index)
    assert tree.n_searched is not None
    assert tree.n_searched > 0


@pytest.mark.parametrize("index", ["exact", "brute"])
@pytest.mark.parametrize("k", [1, 3])
def test_exact_tree_when_large_components_merge_over_rounds(k, index):
    """Clusters in pairs, the pairs in pairs: large components of one searching round merge
    in the next, whose searches reuse the first round's trees (relabelled)."""
    rng = np.random.default_rng(5)
    centres = [a + b for a in (0.0, 40.0) for b in (0.0, 8.0, 8.0 * 1j)]
    parts = [rng.normal(0.0, 0.5, (300, 4)) + np.array([c.real, c.imag, 0.0, 0.0]) for c in centres]
    x = np.concatenate(parts)
    tree = check_against_oracle(x[rng.permutation(len(x))], k=k, index=index)
    assert tree.n_searched is not None
    assert tree.n_searched > len(x) // 2


def check_core_trees(x, k, leaf_size=32):
    """The core's exact tree from k-NN lists of a kd-tree over `x` (rotated in its principal
    axes above 12 features), searched in that tree and in Boruvka's own trees: both give the
    same edges (ties included) and the oracle's tree."""
    from datagauge.neighbors import build_tree, frame_for

    x = np.ascontiguousarray(x, dtype=np.float32)
    kd = build_tree(x, leaf_size, 0, frame_for(x))
    sq, idx = kd.self_query(k, 1)
    in_tree = _core.euclidean_mst(x, idx, 16, 1, sq, kd)
    own = _core.euclidean_mst(x, idx, 16, 1, sq)
    for a, b in zip(in_tree[:3], own[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    assert in_tree[3] == own[3]
    lengths, edges, s = oracle_tree(x)
    src, dst, sq = in_tree[:3]
    np.testing.assert_array_equal(np.sort(s[src, dst]), lengths)
    np.testing.assert_array_equal(sq, s[src, dst])
    if distinct_distances(s):
        assert set(zip(src.tolist(), dst.tolist(), strict=True)) == edges
    return kd, in_tree


@pytest.mark.parametrize("d", [3, 24])
def test_searches_in_the_lists_tree_match_the_oracle(d):
    """Plain (3-d) and rotated (24-d) kd-trees: separated clusters, so whole components close
    and many points are searched, with rounded coordinates for exact ties."""
    rng = np.random.default_rng(31 + d)
    centres = rng.normal(0.0, 6.0, (5, d))
    x = np.round(np.concatenate([rng.normal(c, 0.5, (120, d)) for c in centres]), 1)
    kd, in_tree = check_core_trees(x[rng.permutation(len(x))], k=3, leaf_size=16)
    assert kd.rotated == (d > 12)
    assert in_tree[3]["searched"] > 0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 120),
    d=st.sampled_from([1, 2, 4, 14, 20]),
    k=st.integers(1, 8),
    levels=st.sampled_from([None, 2, 3, 5]),
    leaf=st.sampled_from([1, 4, 32]),
)
def test_searches_in_the_lists_tree_property(seed, n, d, k, levels, leaf):
    rng = np.random.default_rng(seed)
    if levels is None:
        x = rng.normal(size=(n, d))
    else:
        x = rng.integers(0, levels, size=(n, d)).astype(np.float64)
    check_core_trees(x, min(k, n - 1), leaf)


def test_core_refuses_a_tree_of_other_points():
    from datagauge.neighbors import build_tree

    rng = np.random.default_rng(33)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    kd = build_tree(x, 8)
    sq, idx = kd.self_query(4, 1)
    moved = x.copy()
    moved[17, 1] += 1.0
    for tree in (
        build_tree(moved, 8),  # other values
        build_tree(x[:-1].copy(), 8),  # fewer points
        build_tree(x, 8, 5),  # numbered from 5
        build_tree(np.ascontiguousarray(x[:, :2]), 8),  # fewer features
    ):
        with pytest.raises(ValueError, match="kd-tree was built from other points"):
            _core.euclidean_mst(x, idx, 16, 1, sq, tree)
    with pytest.raises(TypeError):
        _core.euclidean_mst(x, idx, 16, 1, sq, "not a tree")


def test_default_lists_follow_the_engine():
    """Short lists where a kd-tree searched them (Boruvka searches in it), 20 otherwise."""
    from datagauge.mst import EXACT_K, EXACT_K_TREE

    x = np.random.default_rng(34).normal(size=(500, 3))
    by_tree = minimum_spanning_tree(x)
    by_brute = minimum_spanning_tree(x, index="brute")
    assert (by_tree.k, by_brute.k) == (EXACT_K_TREE, EXACT_K)
    for a, b in zip(
        (by_tree.source, by_tree.target, by_tree.distances),
        (by_brute.source, by_brute.target, by_brute.distances),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert minimum_spanning_tree(x[:5]).k == 4  # capped at n - 1
    # one kd-tree per database block: no single tree to search in, so the longer lists
    blocked = minimum_spanning_tree(x, index=Exact(engine="kdtree", block_size=200))
    assert blocked.k == EXACT_K
    np.testing.assert_array_equal(blocked.distances, by_tree.distances)
    np.testing.assert_array_equal(blocked.source, by_tree.source)


def test_digits_exact_tree_equals_scipy():
    x, _ = make_ref.digits()
    tree = check_against_oracle(x[:700])
    assert tree.n_searched is not None


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 70),
    d=st.integers(1, 5),
    k=st.integers(1, 12),
    levels=st.sampled_from([None, 2, 3, 5]),
)
def test_exact_tree_property(seed, n, d, k, levels):
    """Random data, and duplicate-heavy data (few distinct values per feature)."""
    rng = np.random.default_rng(seed)
    if levels is None:
        x = rng.normal(size=(n, d))
    else:
        x = rng.integers(0, levels, size=(n, d)).astype(np.float64)
    check_against_oracle(x, k=min(k, n - 1))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(3, 60))
def test_any_k_gives_the_same_tree(seed, n):
    x = np.random.default_rng(seed).normal(size=(n, 3))
    trees = [minimum_spanning_tree(x, k=k) for k in sorted({1, 2, n // 2 or 1, n - 1})]
    for tree in trees[1:]:
        np.testing.assert_array_equal(tree.source, trees[0].source)
        np.testing.assert_array_equal(tree.target, trees[0].target)
        np.testing.assert_array_equal(tree.distances, trees[0].distances)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 60))
def test_permutation_invariance(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    perm = rng.permutation(n)
    a = minimum_spanning_tree(x)
    b = minimum_spanning_tree(x[perm])
    mapped = {
        tuple(sorted((int(perm[s]), int(perm[t])))) for s, t in zip(b.source, b.target, strict=True)
    }
    assert mapped == set(zip(a.source.tolist(), a.target.tolist(), strict=True))
    np.testing.assert_array_equal(np.sort(a.distances), np.sort(b.distances))


@pytest.mark.parametrize("scale", [2.0**-60, 2.0**-5, 8.0, 2.0**50])
def test_scaling_by_a_power_of_two_keeps_the_tree(scale):
    x = np.random.default_rng(6).normal(size=(300, 4)).astype(np.float32)
    a = minimum_spanning_tree(x)
    b = minimum_spanning_tree(x * np.float32(scale))
    np.testing.assert_array_equal(a.source, b.source)
    np.testing.assert_array_equal(a.target, b.target)
    np.testing.assert_allclose(b.distances, a.distances * scale, rtol=1e-6)


def test_threads_and_graph_give_the_same_tree():
    x = np.random.default_rng(7).normal(size=(2000, 5))
    one = minimum_spanning_tree(x, n_jobs=1)
    two = minimum_spanning_tree(x, n_jobs=2)
    graph = neighbor_graph(x, 30)
    from_graph = minimum_spanning_tree(x, graph=graph)
    for tree in (two, from_graph):
        np.testing.assert_array_equal(tree.source, one.source)
        np.testing.assert_array_equal(tree.target, one.target)
        np.testing.assert_array_equal(tree.distances, one.distances)
    assert from_graph.k == 20
    assert minimum_spanning_tree(x, graph=graph, k=30).k == 30


def test_large_separated_clusters():
    """Both clusters are closed (no list leaves them) in the last round: every point is
    searched once, each search cut short by the bridge length found so far."""
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.normal(c, 0.3, (20_000, 3)) for c in (0.0, 6.0)])
    tree = minimum_spanning_tree(x, k=20)  # 20-NN lists leave few points to earlier rounds
    assert tree.n_searched is not None
    assert tree.n_searched <= 1.01 * len(x)
    short = minimum_spanning_tree(x)  # 6-NN lists: more searches, the same tree
    assert short.k == 6
    np.testing.assert_array_equal(short.source, tree.source)
    np.testing.assert_array_equal(short.target, tree.target)
    np.testing.assert_array_equal(short.distances, tree.distances)
    x32 = x.astype(np.float32).astype(np.float64)
    near = np.argsort(np.linalg.norm(x32[:20_000] - 6.0, axis=1))[:200]
    far = np.argsort(np.linalg.norm(x32[20_000:], axis=1))[:200] + 20_000
    gap = np.min(np.linalg.norm(x32[near, None, :] - x32[None, far, :], axis=2))
    assert np.sort(tree.distances)[-1] == pytest.approx(gap, rel=1e-6)


# --------------------------------------------------------------------------- DataEval


MST_CASES = {c["name"]: c for c in make_ref.mst_cases()}


@pytest.mark.parametrize("record", REFERENCE["mst"], ids=lambda r: r["name"])
def test_knn_tree_is_dataevals(record):
    x = MST_CASES[record["name"]]["x"]
    assert make_ref.checksum(x) == record["checksum"]
    tree = minimum_spanning_tree(x, method="knn")
    assert tree.k == 15
    assert tree.n_searched is None
    edges = [list(e) for e in zip(tree.source.tolist(), tree.target.tolist(), strict=True)]
    assert sorted(edges) == record["edges"]


@pytest.mark.parametrize("record", REFERENCE["mst"], ids=lambda r: r["name"])
def test_exact_tree_against_dataevals(record):
    """The exact tree is DataEval's except where DataEval's tree is not minimal: edges whose
    float32 lengths DataEval rounds to ties (gaussian_8d: two edges 1 ulp apart in the squared
    distance), and the three clusters its second pass joins the long way."""
    x = MST_CASES[record["name"]]["x"]
    tree = minimum_spanning_tree(x)
    ours = set(zip(tree.source.tolist(), tree.target.tolist(), strict=True))
    theirs = {tuple(e) for e in record["edges"]}
    s = core_sqdist(x) if len(x) <= 2000 else None
    if record["name"] == "three_clusters":
        assert tree.total_length < record["total_length"] - 0.3
        return
    if ours != theirs:
        assert s is not None
        only_ours = sorted(s[a, b] for a, b in ours - theirs)
        only_theirs = sorted(s[a, b] for a, b in theirs - ours)
        assert len(only_ours) == len(only_theirs) <= 2
        # DataEval's edges are no shorter, and equal once rounded as DataEval rounds them
        assert all(a <= b for a, b in zip(only_ours, only_theirs, strict=True))
        x64 = x.astype(np.float64)
        for (a, b), (c, e) in zip(sorted(ours - theirs), sorted(theirs - ours), strict=True):
            assert np.float32(np.linalg.norm(x64[a] - x64[b])) == np.float32(
                np.linalg.norm(x64[c] - x64[e])
            )
    assert tree.total_length == pytest.approx(record["total_length"], rel=1e-6)


def test_exact_and_knn_differ_on_three_clusters():
    x = make_ref.three_clusters()
    exact = minimum_spanning_tree(x)
    knn = minimum_spanning_tree(x, method="knn")
    check_against_oracle(x)
    assert exact.total_length < knn.total_length
    # DataEval joins A-B and B-C; the minimum tree joins A-B and A-C
    assert np.sort(knn.distances)[-1] > np.sort(exact.distances)[-1]


def test_knn_tree_on_a_disconnected_knn_graph_spans_everything():
    rng = np.random.default_rng(9)
    x = np.concatenate([rng.normal(c, 0.05, (30, 2)) for c in ((0, 0), (5, 0), (0, 7), (9, 9))])
    tree = minimum_spanning_tree(x, method="knn", k=3)
    assert tree.source.size == len(x) - 1
    assert len({*tree.source.tolist(), *tree.target.tolist()}) == len(x)


def _replay_first_pass(idx, dist):
    """DataEval's first Kruskal pass (its Numba quicksort order): the edges as unordered
    pairs, and the edge count."""
    from datagauge._kernels.kruskal import kruskal_pass

    n = idx.shape[0]
    src = np.full(n - 1, -1, dtype=np.int64)
    dst = np.full(n - 1, -1, dtype=np.int64)
    count = kruskal_pass(
        np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int64), idx, dist, src, dst, 0
    )
    return {(min(a, b), max(a, b)) for a, b in zip(src[:count], dst[:count], strict=True)}, count


def _fast_first_pass(idx, dist):
    from datagauge._kernels.kruskal import kruskal_sorted
    from datagauge.mst import _sort_keys

    n = idx.shape[0]
    src = np.full(n - 1, -1, dtype=np.int64)
    dst = np.full(n - 1, -1, dtype=np.int64)
    entry = np.full(n - 1, -1, dtype=np.int64)
    count = kruskal_sorted(idx, _sort_keys(dist), src, dst, entry)
    if count > 0:  # each edge's entry is its own list entry
        rows, cols = np.divmod(entry[:count], idx.shape[1])
        np.testing.assert_array_equal(rows, src[:count])
        np.testing.assert_array_equal(idx[rows, cols], dst[:count])
    return {(min(a, b), max(a, b)) for a, b in zip(src[:count], dst[:count], strict=True)}, count


def _lists(x, k):
    x = np.ascontiguousarray(x, dtype=np.float32)
    return self_knn_distances(x, k, Exact(), 1, "cpu")[::-1]


def test_fast_kruskal_gives_dataevals_edges_on_distinct_lengths():
    x = np.random.default_rng(14).normal(size=(3000, 6))
    idx, dist = _lists(x, 15)
    fast, count = _fast_first_pass(idx, dist)
    assert count == len(x) - 1
    assert fast == _replay_first_pass(idx, dist)[0]


def test_fast_kruskal_refuses_an_order_dependent_tie():
    # the unit square: its four sides tie, and any three of them span it
    x = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
    idx, dist = _lists(x, 2)
    assert _fast_first_pass(idx, dist)[1] == -1
    # a forest that does not span: DataEval's second pass depends on its roots
    x = np.array([[0, 0], [0.1, 0], [5, 5], [5.2, 5]], dtype=np.float32)
    idx, dist = _lists(x, 1)
    assert _fast_first_pass(idx, dist)[1] == -1


def test_fast_kruskal_resolves_ties_that_do_not_matter():
    # coordinates to three decimals: one edge in ten shares its float32 length with another
    x = np.round(np.random.default_rng(18).normal(size=(2000, 2)), 3)
    idx, dist = _lists(x, 10)
    pairs = {
        (min(i, j), max(i, j)): d
        for i, row in enumerate(idx)
        for j, d in zip(row, dist[i], strict=True)
    }
    lengths = np.array(list(pairs.values()))
    assert np.unique(lengths).size < 0.95 * lengths.size
    fast, count = _fast_first_pass(idx, dist)
    assert count == len(x) - 1
    assert fast == _replay_first_pass(idx, dist)[0]


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(3, 150),
    decimals=st.integers(1, 2),
    k=st.integers(1, 9),
)
def test_fast_kruskal_agrees_or_refuses(seed, n, decimals, k):
    """With ties (coordinates rounded; the fast pass proves about 15% of these at one
    decimal, 90% at two) it either gives DataEval's edges or says it cannot."""
    x = np.round(np.random.default_rng(seed).normal(size=(n, 2)), decimals)
    idx, dist = _lists(x, min(k, n - 1))
    fast, count = _fast_first_pass(idx, dist)
    if count == -1:
        return
    replay, replay_count = _replay_first_pass(idx, dist)
    assert count == replay_count == n - 1
    assert fast == replay


def test_knn_tree_takes_the_fast_pass_or_the_replay_alike():
    """The whole tree is the same whichever pass built it (ties and disconnected graphs
    included)."""
    from datagauge import mst

    cases = [
        np.random.default_rng(15).normal(size=(500, 4)),
        np.random.default_rng(16).integers(0, 3, size=(300, 4)).astype(float),
        np.concatenate([np.random.default_rng(17).normal(c, 0.05, (40, 2)) for c in (0, 5, 11)]),
    ]
    for x in cases:
        fast = minimum_spanning_tree(x, method="knn", k=4)
        original = mst._fast_order_fits
        try:
            mst._fast_order_fits = lambda idx: False
            replay = minimum_spanning_tree(x, method="knn", k=4)
        finally:
            mst._fast_order_fits = original
        np.testing.assert_array_equal(fast.source, replay.source)
        np.testing.assert_array_equal(fast.target, replay.target)
        np.testing.assert_array_equal(fast.distances, replay.distances)


# --------------------------------------------------------------------------- results


def test_result_is_frozen_and_serialisable():
    tree = minimum_spanning_tree(np.random.default_rng(10).normal(size=(30, 2)))
    with pytest.raises(ValueError, match="read-only"):
        tree.source[0] = 3
    with pytest.raises(AttributeError):
        tree.k = 3  # type: ignore[misc]
    d = tree.to_dict()
    assert set(d) == {"source", "target", "distances", "total_length", "method", "k", "n_searched"}
    json.dumps(d)
    frame = tree.to_dataframe()
    assert list(frame.columns) == ["source", "target", "distance"]
    assert len(frame) == 29
    assert "int64 array (29,)" in repr(tree)


# --------------------------------------------------------------------------- bad input


def test_bad_input():
    x = np.random.default_rng(11).normal(size=(20, 3))
    with pytest.raises(ValueError, match="NaN"):
        minimum_spanning_tree(np.where(x > 1.5, np.nan, x))
    with pytest.raises(ValueError, match="there is 1 sample"):
        minimum_spanning_tree(x[:1])
    with pytest.raises(ValueError, match="method must be one of 'exact', 'knn'"):
        minimum_spanning_tree(x, method="prim")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k=20 must be less than the number of samples"):
        minimum_spanning_tree(x, k=20)
    with pytest.raises(ValueError, match="needs exact k-NN lists"):
        minimum_spanning_tree(x, index="hnsw")
    with pytest.raises(ValueError, match="2-D"):
        minimum_spanning_tree(x[:, 0])


def test_bad_graphs():
    x = np.random.default_rng(12).normal(size=(200, 3))
    with pytest.raises(TypeError, match="graph must be a NeighborGraph"):
        minimum_spanning_tree(x, graph=np.zeros((200, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ from the data this graph was built from"):
        minimum_spanning_tree(x, graph=neighbor_graph(x + 1.0, 20))
    with pytest.raises(ValueError, match="holds 5 neighbours per point but k=20"):
        minimum_spanning_tree(x, graph=neighbor_graph(x, 5))
    with pytest.raises(ValueError, match="approximate index 'hnsw'"):
        minimum_spanning_tree(x, graph=neighbor_graph(x, 20, index="hnsw"))


def test_core_refuses_what_it_cannot_use():
    x = np.ascontiguousarray(np.random.default_rng(13).normal(size=(50, 3)), dtype=np.float32)
    _, idx = self_knn_distances(x, 4, Exact(), 1, "cpu")
    with pytest.raises(TypeError):
        _core.euclidean_mst(x.astype(np.float64), idx)
    with pytest.raises(TypeError):
        _core.euclidean_mst(x, idx.astype(np.int32))
    with pytest.raises(TypeError):
        _core.euclidean_mst(np.asfortranarray(x), idx)
    with pytest.raises(ValueError, match="2-D"):
        _core.euclidean_mst(x[:, 0].copy(), idx)
    with pytest.raises(ValueError, match="rows"):
        _core.euclidean_mst(x, idx[:-1].copy())
    with pytest.raises(ValueError, match="at least 2 points"):
        _core.euclidean_mst(x[:1].copy(), idx[:1, :0].copy())
    with pytest.raises(ValueError, match="1 to n - 1 columns"):
        _core.euclidean_mst(x, np.zeros((50, 0), dtype=np.int64))
    with pytest.raises(ValueError, match="leaf_size"):
        _core.euclidean_mst(x, idx, 0)
    for bad_value in (np.nan, np.inf):
        bad_x = x.copy()
        bad_x[9, 1] = bad_value
        with pytest.raises(ValueError, match="row 9 holds NaN or infinity"):
            _core.euclidean_mst(bad_x, idx)
    for bad_value in (-1, 50, 10**12):
        bad = idx.copy()
        bad[7, 2] = bad_value
        with pytest.raises(ValueError, match="point 7 is not a sorted list"):
            _core.euclidean_mst(x, bad)
    own = idx.copy()
    own[3, 0] = 3
    with pytest.raises(ValueError, match="point 3"):
        _core.euclidean_mst(x, own)
    swapped = idx.copy()
    swapped[5, [0, 3]] = swapped[5, [3, 0]]
    with pytest.raises(ValueError, match="point 5"):
        _core.euclidean_mst(x, swapped)
    repeated = idx.copy()
    repeated[6, 1] = repeated[6, 0]
    with pytest.raises(ValueError, match="point 6"):
        _core.euclidean_mst(x, repeated)


def test_core_takes_the_lists_squared_distances():
    """The search's squared distances, passed along, give the tree measured lists give; bad
    ones are refused."""
    from datagauge.neighbors import _self_knn

    x = np.ascontiguousarray(np.random.default_rng(14).normal(size=(300, 5)), dtype=np.float32)
    sq, idx = _self_knn(x, 6, Exact(), 1, "cpu")
    measured = _core.euclidean_mst(x, idx, 16, 1)
    given = _core.euclidean_mst(x, idx, 16, 1, sq)
    for a, b in zip(measured[:3], given[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    assert measured[3] == given[3]
    with pytest.raises(TypeError):
        _core.euclidean_mst(x, idx, 16, 1, sq.astype(np.float64))
    with pytest.raises(ValueError, match="rows"):
        _core.euclidean_mst(x, idx, 16, 1, sq[:-1].copy())
    with pytest.raises(ValueError, match="as many columns as neighbors"):
        _core.euclidean_mst(x, idx, 16, 1, sq[:, :-1].copy())
    for value in (-1.0, np.nan, np.inf):
        bad = sq.copy()
        bad[8, 2] = value
        with pytest.raises(ValueError, match="point 8"):
            _core.euclidean_mst(x, idx, 16, 1, bad)
    unsorted = sq.copy()
    unsorted[9, 0] = unsorted[9, -1] * 2.0
    with pytest.raises(ValueError, match="point 9"):
        _core.euclidean_mst(x, idx, 16, 1, unsorted)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 200), levels=st.sampled_from([2, 3, 50]))
def test_sorted_edges_order_by_length_then_endpoints(seed, n, levels):
    """The edges come out sorted by (length, source, target), ties (many with few levels)
    included, as a full lexicographic sort orders them."""
    from datagauge.mst import _sorted_edges

    rng = np.random.default_rng(seed)
    x = np.ascontiguousarray(rng.integers(0, levels, size=(n, 2)), dtype=np.float32)
    src = rng.integers(0, n, size=max(n - 1, 1))
    dst = rng.integers(0, n, size=max(n - 1, 1))
    a, b, sq = _sorted_edges(x, src, dst)
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    want = np.sum((x[lo].astype(np.float64) - x[hi]) ** 2, axis=1).astype(np.float32)
    order = np.lexsort((hi, lo, want))
    np.testing.assert_array_equal(a, lo[order])
    np.testing.assert_array_equal(b, hi[order])
    np.testing.assert_array_equal(sq, want[order])
