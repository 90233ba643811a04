"""Outliers against scikit-learn's LocalOutlierFactor and a brute-force k-th neighbour distance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform
from sklearn.neighbors import LocalOutlierFactor

from datagauge._results import OutlierResult
from datagauge.graph import neighbor_graph
from datagauge.outliers import local_outlier_factor, outliers

LOF_RTOL = 1e-5  # float32 neighbour distances against scikit-learn's float64


def clusters(seed: int, n: int = 300, d: int = 4) -> np.ndarray:
    """Two clusters of different density plus a few scattered points (float32)."""
    rng = np.random.default_rng(seed)
    dense = rng.normal(0.0, 0.3, (n // 2, d))
    sparse = rng.normal(5.0, 1.5, (n - n // 2 - 6, d))
    scattered = rng.uniform(-6.0, 12.0, (6, d))
    return np.concatenate([dense, sparse, scattered]).astype(np.float32)


def sklearn_lof(x: np.ndarray, k: int, contamination="auto") -> LocalOutlierFactor:
    """scikit-learn on the float32 values datagauge searches, in float64."""
    return LocalOutlierFactor(n_neighbors=k, contamination=contamination).fit(
        np.asarray(x, dtype=np.float32).astype(np.float64)
    )


def oracle_kth_distance(x: np.ndarray, k: int) -> np.ndarray:
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    return np.sort(squareform(pdist(x64)), axis=1)[:, k]


def assert_worst_first(res: OutlierResult) -> None:
    s = res.scores[res.indices]
    assert np.all(s[1:] <= s[:-1])
    assert np.all((s[1:] < s[:-1]) | (res.indices[1:] > res.indices[:-1]))
    assert sorted(res.indices.tolist()) == list(range(res.scores.size))
    np.testing.assert_array_equal(res.flagged, res.indices[: res.flagged.size])


# --------------------------------------------------------------------------- scikit-learn


@pytest.mark.parametrize(("n", "d", "k"), [(60, 1, 5), (200, 2, 10), (300, 4, 20), (250, 16, 35)])
def test_lof_matches_sklearn(n, d, k):
    x = clusters(n + d, n, d)
    res = outliers(x, k=k)
    lof = sklearn_lof(x, k)
    np.testing.assert_allclose(res.scores, -lof.negative_outlier_factor_, rtol=LOF_RTOL)
    # the default flags exactly scikit-learn's contamination="auto" outliers (LOF > 1.5)
    assert res.threshold == 1.5
    expected = np.flatnonzero(lof.fit_predict(x.astype(np.float64)) == -1)
    assert set(res.flagged.tolist()) == set(expected.tolist())
    assert res.method == "lof"
    assert res.k == k
    assert_worst_first(res)


@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.1, 0.25, 0.5])
def test_contamination_matches_sklearn(contamination):
    x = clusters(3, 400, 3)
    res = outliers(x, k=15, contamination=contamination)
    lof = sklearn_lof(x, 15, contamination)
    assert res.threshold == pytest.approx(-lof.offset_, rel=LOF_RTOL)
    expected = np.flatnonzero(lof.negative_outlier_factor_ < lof.offset_)
    assert set(res.flagged.tolist()) == set(expected.tolist())
    assert_worst_first(res)


def test_lof_with_duplicates_matches_sklearn():
    # fewer than k copies of a point: finite LOF, still scikit-learn's value
    x = clusters(4, 200, 3)
    x[10:14] = x[9]
    res = outliers(x, k=10)
    np.testing.assert_allclose(
        res.scores, -sklearn_lof(x, 10).negative_outlier_factor_, rtol=LOF_RTOL
    )


def test_local_outlier_factor_by_hand():
    # 1-D points 0, 1, 2, 10 with k = 1: every quantity by hand
    dist = np.array([[1.0], [1.0], [1.0], [8.0]])
    idx = np.array([[1], [0], [1], [2]])
    # k-distances 1, 1, 1, 8; reach(a, b) = max(kdist(b), d(a, b)): 1, 1, 1, 8
    lrd = 1 / (np.array([1.0, 1.0, 1.0, 8.0]) + 1e-10)
    expected = lrd[idx[:, 0]] / lrd
    np.testing.assert_allclose(local_outlier_factor(dist, idx), expected, rtol=1e-12)


# --------------------------------------------------------------------------- knn_distance


@pytest.mark.parametrize("k", [1, 5, 20])
def test_knn_distance_matches_bruteforce(k):
    x = clusters(5, 250, 5)
    res = outliers(x, method="knn_distance", k=k)
    expected = oracle_kth_distance(x, k)
    np.testing.assert_allclose(res.scores, expected, rtol=1e-6)
    q1, q3 = np.percentile(expected, [25, 75])
    assert res.threshold == pytest.approx(q3 + 1.5 * (q3 - q1), rel=1e-6)
    assert set(res.flagged.tolist()) == set(np.flatnonzero(expected > res.threshold).tolist())
    assert_worst_first(res)


def test_threshold_flags_scores_above_it():
    x = clusters(6, 200, 3)
    for method, cut in (("lof", 1.2), ("knn_distance", 2.0)):
        res = outliers(x, method=method, k=8, threshold=cut)
        assert res.threshold == cut
        assert set(res.flagged.tolist()) == set(np.flatnonzero(res.scores > cut).tolist())
        knn_share = outliers(x, method=method, k=8, contamination=0.1)
        assert knn_share.flagged.size == pytest.approx(20, abs=1)


def test_planted_outliers_rank_first():
    x = clusters(7, 300, 6)
    for method in ("lof", "knn_distance"):
        res = outliers(x, method=method, k=20)
        # the 6 scattered points (the last rows) are the most outlying
        assert set(res.indices[:6].tolist()) == set(range(294, 300)), method
        assert set(range(294, 300)) <= set(res.flagged.tolist())


# --------------------------------------------------------------------------- properties


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(10, 80), k=st.integers(1, 8))
def test_permutation_invariance(seed, n, k):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    perm = rng.permutation(n)
    for method in ("lof", "knn_distance"):
        a = outliers(x, method=method, k=k)
        b = outliers(x[perm], method=method, k=k)
        np.testing.assert_allclose(b.scores, a.scores[perm], rtol=1e-9)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([2.0**-20, 0.01, 3.0, 1000.0, 2.0**40]),
    shift=st.floats(-100, 100),
)
def test_lof_ignores_scale_and_translation(seed, scale, shift):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3))
    a = outliers(x, k=6)
    b = outliers(x * scale, k=6)
    np.testing.assert_allclose(b.scores, a.scores, rtol=1e-4)
    c = outliers(x + shift, k=6)
    np.testing.assert_allclose(c.scores, a.scores, rtol=1e-4)
    d = outliers(x * scale, method="knn_distance", k=6)
    np.testing.assert_allclose(
        d.scores, outliers(x, method="knn_distance", k=6).scores * scale, rtol=1e-5
    )


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 12))
def test_graph_input_equals_embeddings(seed, k):
    x = clusters(seed % 1000, 80, 3)
    graph = neighbor_graph(x, k=12)
    for method in ("lof", "knn_distance"):
        a = outliers(x, method=method, k=k)
        b = outliers(graph, method=method, k=k)
        for field in ("scores", "indices", "flagged"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        assert a.threshold == b.threshold


def test_result_is_frozen_and_serialisable():
    pytest.importorskip("pandas")
    res = outliers(clusters(8, 100, 2), k=5)
    assert "scores=<float64 array (100,)>" in repr(res)
    with pytest.raises(ValueError, match="read-only"):
        res.scores[0] = 0.0
    with pytest.raises(AttributeError):
        res.k = 2  # type: ignore[misc]
    assert json.loads(json.dumps(res.to_dict()))["k"] == 5
    frame = res.to_dataframe()
    assert frame["index"].tolist() == res.indices.tolist()
    assert frame["flagged"].sum() == res.flagged.size


# --------------------------------------------------------------------------- bad input

X_BAD = clusters(9, 40, 2)


def test_unknown_method():
    with pytest.raises(ValueError, match="method must be one of 'lof', 'knn_distance'"):
        outliers(X_BAD, method="isolation_forest")


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 0.51, 1.0, float("nan")])
def test_contamination_out_of_range(bad):
    with pytest.raises(ValueError, match=r"contamination must be in \(0, 0.5\]"):
        outliers(X_BAD, contamination=bad)


def test_contamination_not_a_number():
    with pytest.raises(TypeError, match="contamination must be a number"):
        outliers(X_BAD, contamination="auto")


def test_threshold_and_contamination_together():
    with pytest.raises(ValueError, match="either threshold or contamination, not both"):
        outliers(X_BAD, threshold=1.5, contamination=0.1)


def test_threshold_not_finite():
    with pytest.raises(ValueError, match="threshold must be finite"):
        outliers(X_BAD, threshold=float("inf"))


def test_k_larger_than_the_graph_holds():
    graph = neighbor_graph(X_BAD, k=5)
    with pytest.raises(ValueError, match="the graph holds 5 neighbours per point but k=20"):
        outliers(graph, k=20)


def test_k_out_of_range():
    with pytest.raises(ValueError, match="k=40 must be less than the number of samples"):
        outliers(X_BAD, k=40)
    with pytest.raises(ValueError, match="k must be >= 1"):
        outliers(X_BAD, k=0)


def test_bad_embeddings():
    with pytest.raises(ValueError, match="NaN"):
        outliers(np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]), k=1)
