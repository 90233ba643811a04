"""Duplicates against brute force: all pairwise distances, components of the pairs within the
threshold, exact groups by comparing rows."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import pdist, squareform
from sklearn.datasets import load_digits

from datagauge._warnings import DatagaugeWarning
from datagauge.duplicates import THRESHOLD_FRACTION, duplicates
from datagauge.graph import neighbor_graph

# --------------------------------------------------------------------------- the oracle


def oracle(x, threshold):
    """(exact groups, near groups) as sets of frozensets, by brute force."""
    x32 = np.asarray(x, dtype=np.float32)
    n = len(x32)
    _, first, inverse = np.unique(x32, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    exact = set()
    for g in range(first.size):
        members = np.flatnonzero(inverse == g)
        if members.size > 1:
            exact.add(frozenset(members.tolist()))
    dist = squareform(pdist(x32.astype(np.float64)))
    _, comp = connected_components(dist <= threshold, directed=False)
    near = set()
    for c in range(comp.max() + 1):
        members = np.flatnonzero(comp == c)
        if members.size > 1 and np.unique(inverse[members]).size > 1:
            near.add(frozenset(members.tolist()))
    assert n == inverse.size
    return exact, near


def groups(res_groups):
    return {frozenset(g.tolist()) for g in res_groups}


def oracle_threshold(x):
    """0.05 times the median distance to the nearest neighbour at a non-zero distance."""
    dist = squareform(pdist(np.asarray(x, dtype=np.float32).astype(np.float64)))
    dist[dist == 0] = np.inf
    nearest = dist.min(axis=1)
    return THRESHOLD_FRACTION * np.median(nearest[np.isfinite(nearest)])


def planted(seed, n=300, d=8):
    """Distinct Gaussian points with planted exact copies, noisy copies and a big cluster of
    near copies (more than k + 1 points)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[1] = x[0]  # exact pair
    x[3] = x[2]  # exact triple
    x[4] = x[2]
    x[6] = x[5] + np.float32(1e-3)  # near pair
    x[8] = x[7]  # exact pair + a near copy of it
    x[9] = x[7] + np.float32(1e-3)
    x[20:45] = x[19] + rng.normal(0, 1e-3, (25, d)).astype(np.float32)  # 26 near copies
    return x


def assert_ordered(res_groups):
    sizes = [g.size for g in res_groups]
    assert sizes == sorted(sizes, reverse=True)
    for g in res_groups:
        assert g.dtype == np.int64
        assert np.all(np.diff(g) > 0)


# --------------------------------------------------------------------------- brute force


@pytest.mark.parametrize("k", [2, 5, 10])
def test_matches_bruteforce(k):
    x = planted(1)
    res = duplicates(x, k=k, threshold=0.05)
    exact, near = oracle(x, 0.05)
    assert (
        groups(res.exact) == exact == {frozenset({0, 1}), frozenset({2, 3, 4}), frozenset({7, 8})}
    )
    assert groups(res.near) == near
    assert frozenset(range(19, 45)) in near
    assert frozenset({7, 8, 9}) in near
    assert_ordered(res.exact)
    assert_ordered(res.near)
    assert res.near[0].tolist() == list(range(19, 45))  # the largest group first
    assert res.k == k


def test_default_threshold_matches_oracle():
    x = planted(2)
    res = duplicates(x)
    assert res.threshold == pytest.approx(oracle_threshold(x), rel=1e-6)
    exact, near = oracle(x, res.threshold)
    assert groups(res.exact) == exact
    assert groups(res.near) == near


def test_groups_larger_than_k_plus_one_are_found_whole():
    # 3 clumps of 15 exact copies and 2 clumps of 15 near copies, clumps within the threshold
    # of each other in pairs: a 2-NN graph cannot see across a clump, the answer must anyway
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4)).astype(np.float32) * 10
    base = np.float32(100.0)
    x[0:15] = base
    x[15:30] = base + np.float32(0.01)
    x[30:45] = -base
    x[45:60] = -base + rng.normal(0, 1e-4, (15, 4)).astype(np.float32)
    x[60:75] = base * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = duplicates(x, k=2, threshold=0.05)
    exact, near = oracle(x, 0.05)
    assert groups(res.exact) == exact
    assert groups(res.near) == near
    assert frozenset(range(30)) in near
    # the same search as a graph: the groups across clumps cannot be completed, and it says so
    graph = neighbor_graph(x, k=2)
    with pytest.warns(DatagaugeWarning, match="pass the embeddings instead of a graph"):
        partial = duplicates(graph, k=2, threshold=0.05)
    assert frozenset(range(30)) not in groups(partial.near)
    assert groups(partial.exact) == exact


def test_one_big_exact_group_needs_no_warning():
    x = np.random.default_rng(4).normal(size=(60, 3)).astype(np.float32)
    x[:30] = x[0]
    graph = neighbor_graph(x, k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = duplicates(graph, k=3, threshold=1e-6)
    assert groups(res.exact) == {frozenset(range(30))}
    assert res.near == ()


def test_default_threshold_on_real_digits():
    # distinct real samples are not near duplicates; copies plus noise of 1% of the median
    # nearest-neighbour distance are
    data = load_digits().data.astype(np.float32)
    res = duplicates(data)
    assert res.exact == ()
    assert res.near == ()
    dist = squareform(pdist(data.astype(np.float64)))
    np.fill_diagonal(dist, np.inf)
    median_nn = np.median(dist.min(axis=1))
    rng = np.random.default_rng(5)
    sources = rng.choice(len(data), 20, replace=False)
    noise = rng.normal(size=(20, data.shape[1]))
    noise *= 0.01 * median_nn / np.linalg.norm(noise, axis=1, keepdims=True)
    x = np.concatenate([data, data[sources] + noise.astype(np.float32)])
    res = duplicates(x)
    expected = {frozenset({int(s), len(data) + i}) for i, s in enumerate(sources)}
    assert groups(res.near) == expected
    assert res.threshold == pytest.approx(oracle_threshold(x), rel=1e-6)


# --------------------------------------------------------------------------- splits


def test_leaks_match_bruteforce():
    x = planted(6)
    rng = np.random.default_rng(6)
    splits = rng.choice(["train", "val", "test"], size=len(x), p=[0.6, 0.2, 0.2])
    splits[[0, 1]] = ["train", "test"]
    splits[[2, 3, 4]] = ["train", "train", "train"]
    res = duplicates(x, threshold=0.05, splits=splits)
    all_groups = [*res.exact, *res.near]
    expected = [g for g in all_groups if len(set(splits[g])) > 1]
    assert [g.tolist() for g in res.leaks] == [g.tolist() for g in expected]
    assert [0, 1] in [g.tolist() for g in res.leaks]
    assert [2, 3, 4] not in [g.tolist() for g in res.leaks]
    pairs = [("test", "train"), ("test", "val"), ("train", "val")]
    assert list(res.leak_counts) == pairs
    for a, b in pairs:
        count = sum(1 for g in expected if {a, b} <= set(splits[g]))
        assert res.leak_counts[(a, b)] == count
    np.testing.assert_array_equal(res.splits, splits)


def test_integer_and_categorical_splits():
    pd = pytest.importorskip("pandas")
    x = planted(7)
    codes = np.zeros(len(x), dtype=int)
    codes[1] = 1
    res = duplicates(x, threshold=0.05, splits=codes)
    assert res.leak_counts == {(0, 1): 1}
    res = duplicates(x, threshold=0.05, splits=pd.Categorical(np.where(codes, "b", "a")))
    assert res.leak_counts == {("a", "b"): 1}
    assert [g.tolist() for g in res.leaks] == [[0, 1]]


def test_no_splits_no_leaks():
    res = duplicates(planted(8), threshold=0.05)
    assert res.leaks == ()
    assert res.leak_counts == {}
    assert res.splits is None


# --------------------------------------------------------------------------- properties


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 6))
def test_permutation_invariance(seed, k):
    x = planted(seed % 1000, n=80, d=3)
    perm = np.random.default_rng(seed).permutation(len(x))
    a = duplicates(x, k=k, threshold=0.05)
    b = duplicates(x[perm], k=k, threshold=0.05)
    assert {frozenset(perm[g].tolist()) for g in b.exact} == groups(a.exact)
    assert {frozenset(perm[g].tolist()) for g in b.near} == groups(a.near)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(2, 6))
def test_graph_input_equals_embeddings(seed, k):
    # groups of 2 and k >= 2: no point has all k neighbours within the threshold, no warning
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(70, 3)).astype(np.float32)
    x[1] = x[0]
    x[3] = x[2] + np.float32(1e-4)
    graph = neighbor_graph(x, k=6)
    a = duplicates(x, k=k, threshold=0.01)
    b = duplicates(graph, k=k, threshold=0.01)
    assert [g.tolist() for g in a.exact] == [g.tolist() for g in b.exact]
    assert [g.tolist() for g in a.near] == [g.tolist() for g in b.near]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), t1=st.floats(0, 0.5), t2=st.floats(0, 0.5))
def test_larger_threshold_merges_groups(seed, t1, t2):
    lo, hi = sorted((t1, t2))
    x = np.random.default_rng(seed).normal(size=(60, 2)).astype(np.float32)
    small = duplicates(x, threshold=lo, k=4)
    large = duplicates(x, threshold=hi, k=4)
    coarse = [set(g.tolist()) for g in large.near]
    for g in small.near:
        assert any(set(g.tolist()) <= c for c in coarse)
    assert groups(small.near) == oracle(x, lo)[1]


def test_result_is_frozen_and_serialisable():
    pd = pytest.importorskip("pandas")
    x = planted(9)
    splits = np.where(np.arange(len(x)) % 2 == 0, "train", "test")
    res = duplicates(x, threshold=0.05, splits=splits)
    assert "exact=<3 groups>" in repr(res)
    with pytest.raises(ValueError, match="read-only"):
        res.exact[0][0] = 5
    with pytest.raises(AttributeError):
        res.threshold = 1.0  # type: ignore[misc]
    out = json.loads(json.dumps(res.to_dict()))
    assert out["leak_counts"] == [{"splits": ["test", "train"], "groups": len(res.leaks)}]
    assert out["exact"][0] == res.exact[0].tolist()
    frame = res.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == sum(g.size for g in (*res.exact, *res.near))
    assert frame.loc[frame["kind"] == "exact", "group"].max() == len(res.exact) - 1
    assert set(frame.columns) == {"group", "kind", "size", "index", "split", "leak"}
    first = frame[frame["group"] == 0]
    assert first["index"].tolist() == res.exact[0].tolist()
    assert first["leak"].all() == (len(set(splits[res.exact[0]])) > 1)


# --------------------------------------------------------------------------- bad input

X_BAD = planted(10, n=60, d=2)[:40]


def test_splits_of_wrong_length():
    with pytest.raises(ValueError, match="splits has 39 entries but there are 40 samples"):
        duplicates(X_BAD, splits=["train"] * 39)


def test_splits_with_missing_values():
    splits = np.asarray(["train"] * 40, dtype=object)
    splits[5] = None
    with pytest.raises(ValueError, match=r"splits contains 1 missing values .* index 5"):
        duplicates(X_BAD, splits=splits)


def test_negative_or_nan_threshold():
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0"):
        duplicates(X_BAD, threshold=-1.0)
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0"):
        duplicates(X_BAD, threshold=float("nan"))
    with pytest.raises(TypeError, match="threshold must be a number"):
        duplicates(X_BAD, threshold="small")


def test_k_larger_than_the_graph_holds():
    graph = neighbor_graph(X_BAD, k=3)
    with pytest.raises(ValueError, match="the graph holds 3 neighbours per point but k=10"):
        duplicates(graph)


def test_k_out_of_range():
    with pytest.raises(ValueError, match="k=40 must be less than the number of samples"):
        duplicates(X_BAD, k=40)
