"""datagauge.dask: every function against a brute-force oracle and the in-memory function on
the computed array, over several chunkings (uneven, one chunk smaller than k)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import datagauge  # noqa: E402
import datagauge._gmm  # noqa: E402
import datagauge.dask as dgd  # noqa: E402
from datagauge import ConvergenceWarning, Exact, Familiarity  # noqa: E402

N = 240
K = 10
# One chunk; equal chunks; uneven chunks with two smaller than k; a chunk of one row.
CHUNKINGS = [(N,), (60, 60, 60, 60), (7, 100, 3, 130), (1, 119, 120)]


@pytest.fixture(params=["threads", "synchronous"])
def scheduler(request):
    with dask.config.set(scheduler=request.param):
        yield request.param


def chunked(x, rows):
    return da.from_array(x, chunks=(rows, -1) if x.ndim == 2 else (rows,))


def brute_force(x, k):
    """(distances, indices) of the k nearest other rows, float64 arithmetic, no ties."""
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    d2 = ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d2, np.inf)
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(d2, idx, axis=1)), idx


def assert_reports_equal(a, b, *, exact=True):
    for f in dataclasses.fields(a):
        u, v = getattr(a, f.name), getattr(b, f.name)
        if isinstance(u, np.ndarray) and u.dtype.kind == "f" and not exact:
            np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12, err_msg=f.name)
        elif isinstance(u, np.ndarray):
            np.testing.assert_array_equal(u, v, err_msg=f.name)
        else:
            assert u == v, f.name


# --------------------------------------------------------------------------- kneighbors


@pytest.mark.parametrize("rows", CHUNKINGS)
@pytest.mark.parametrize("d", [3, 20])  # kd-tree per chunk; FAISS brute force per chunk
def test_kneighbors_matches_oracle_and_in_memory(rows, d, scheduler):
    x = np.random.default_rng(d).normal(size=(N, d)).astype(np.float32)
    dist, idx = dgd.kneighbors(chunked(x, rows), K)
    assert isinstance(dist, da.Array)  # lazy
    assert isinstance(idx, da.Array)
    assert (dist.shape, dist.dtype, idx.dtype) == ((N, K), np.float32, np.int64)
    dist, idx = dask.compute(dist, idx)
    o_dist, o_idx = brute_force(x, K)
    np.testing.assert_array_equal(idx, o_idx)
    np.testing.assert_allclose(dist, o_dist, rtol=1e-5)
    m_dist, m_idx = datagauge.kneighbors(x, K)
    np.testing.assert_array_equal(idx, m_idx)
    np.testing.assert_array_equal(dist, m_dist)  # the same float32 arithmetic


@pytest.mark.parametrize(
    ("index", "d"),
    [("kdtree", 20), ("flat", 3), (Exact(leaf_size=2), 4), (Exact(engine="flat"), 5), ("brute", 6)],
)
def test_kneighbors_every_exact_engine(index, d):
    x = np.random.default_rng(7).random((150, d))  # float64: converted per chunk
    dist, idx = dask.compute(*dgd.kneighbors(chunked(x, (40, 2, 108)), 6, index=index))
    m_dist, m_idx = datagauge.kneighbors(x, 6)
    np.testing.assert_array_equal(idx, m_idx)
    np.testing.assert_array_equal(dist, m_dist)


def test_auto_engine_per_chunk_and_pickling():
    rng = np.random.default_rng(9)
    cloud = rng.normal(size=(400, 20)).astype(np.float32)  # intrinsic dimension 20: FAISS
    line = (rng.normal(size=(400, 1)) @ rng.normal(size=(1, 20))).astype(np.float32)  # 1: tree
    spec = Exact(leaf_size=4)
    for x, tree in ((cloud, False), (line, True)):
        index = dgd._BlockIndex(x[:200], 0, "auto", 4, 5)
        assert (index.tree is not None) == tree
        copy = pickle.loads(pickle.dumps(index))
        for rows, start in ((x[:200], 0), (x[200:], 200)):  # its own rows; other rows
            a, b = index.search(rows, start, 5, 1), copy.search(rows, start, 5, 1)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
        dist, idx = dask.compute(*dgd.kneighbors(chunked(x, (200, 150, 50)), 5, index=spec))
        m_dist, m_idx = datagauge.kneighbors(x, 5)
        np.testing.assert_array_equal(idx, m_idx)
        np.testing.assert_array_equal(dist, m_dist)


def test_seeded_chain_scans_fewer_points():
    # The chain of one query chunk: its own rows first, then every other chunk searched with
    # the k-th distance found so far as a bound. The same answer as the unseeded searches
    # merged, for fewer points scanned.
    rng = np.random.default_rng(11)
    centres = rng.normal(scale=4.0, size=(10, 6))
    x = (centres[rng.integers(0, 10, 4000)] + rng.normal(size=(4000, 6))).astype(np.float32)
    starts = [0, 1000, 2000, 3000, 4000]
    indexes = [dgd._BlockIndex(x[a:b], a, "kdtree", 16, K) for a, b in itertools.pairwise(starts)]
    queries, own = x[:1000], np.arange(1000, dtype=np.int64)
    seeded = dgd._own_lists(indexes[0], K, 1)
    plain = indexes[0].search(queries, 0, K, 1)
    np.testing.assert_array_equal(seeded[0], plain[0])
    seeded_cost = plain_cost = returned = 0
    for index in indexes[1:]:
        bounds = np.ascontiguousarray(seeded[0][:, -1])
        seeded_cost += index.tree.query_cost(queries, K, own, bounds)
        plain_cost += index.tree.query_cost(queries, K, own)
        found = index.search(queries, 0, K, 1, bounds)
        assert np.all((found[0] <= bounds[:, None]) | (found[1] == -1))
        returned += np.count_nonzero(found[1] >= 0)
        seeded = dgd._seeded_step(seeded, index, queries, 0, K, 1, indexes[0])
        plain = datagauge.merge_neighbors(plain, index.search(queries, 0, K, 1), K)
    np.testing.assert_array_equal(seeded[1], plain[1])
    np.testing.assert_array_equal(seeded[0], plain[0])
    assert seeded_cost < 0.9 * plain_cost  # 0.86 here: whole leaves are counted
    assert returned < 0.6 * 3 * 1000 * K  # 0.55 here; unseeded, every chunk gives K a query
    m_dist, m_idx = datagauge.kneighbors(x, K)
    np.testing.assert_array_equal(seeded[1], m_idx[:1000])
    np.testing.assert_array_equal(np.sqrt(seeded[0]), m_dist[:1000])


@pytest.mark.parametrize("d", [3, 20])
def test_bounded_search_is_the_same_on_both_engines(d):
    # FAISS computes every distance and drops those beyond the bounds; the kd-tree prunes.
    x = np.random.default_rng(12).normal(size=(300, d)).astype(np.float32)
    tree = dgd._BlockIndex(x[100:], 100, "kdtree", 8, K)
    flat = dgd._BlockIndex(x[100:], 100, "flat", 8, K)
    own = tree.self_search(K, 1)
    np.testing.assert_array_equal(own[0], flat.self_search(K, 1)[0])
    np.testing.assert_array_equal(own[1], flat.self_search(K, 1)[1])
    first = dgd._BlockIndex(x[:100], 0, "kdtree", 8, K).self_search(K, 1)
    bounds = np.ascontiguousarray(first[0][:, -1])
    bounds[:10] = np.inf  # no bound
    bounds[10:20] = 0.0  # nothing within
    a, b = tree.search(x[:100], 0, K, 1, bounds), flat.search(x[:100], 0, K, 1, bounds)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    assert np.all(a[1][10:20] == -1)
    assert np.all(np.isposinf(a[0][10:20]))
    assert np.all(a[1][:10] >= 100)
    assert np.all((a[0] <= bounds[:, None]) | (a[1] == -1))
    assert 0 < np.count_nonzero(a[1][20:] >= 0) < 80 * K


def test_auto_engine_keeps_the_tree_where_bounded_searches_pay():
    # Clustered data at d = 32: the probe scans more than the in-memory limit (12%) but less
    # than the chunk limit, where the bounded chain of tree searches beats FAISS brute force.
    from datagauge.neighbors import KDTREE_MAX_SHARE, tree_share

    rng = np.random.default_rng(13)
    centres = rng.normal(scale=4.0, size=(30, 32))
    x = (centres[rng.integers(0, 30, 2000)] + rng.normal(size=(2000, 32))).astype(np.float32)
    share = tree_share(datagauge._core.KDTree(x[:1000], 32, 0), 5, 1000)
    assert KDTREE_MAX_SHARE < share <= dgd._chunk_tree_max_share(32)
    assert dgd._BlockIndex(x[:1000], 0, "auto", 32, 5).tree is not None
    limits = [dgd._chunk_tree_max_share(d) for d in (13, 32, 64, 128, 256, 4096)]
    assert limits[:2] == [0.9, 0.9]  # capped: high intrinsic dimension goes to FAISS
    assert limits[1:] == sorted(limits[1:], reverse=True)  # the tree's cost grows with d
    assert 0.25 < limits[-1] < 0.3
    dist, idx = dask.compute(*dgd.kneighbors(chunked(x, (1000, 1000)), 5))
    m_dist, m_idx = datagauge.kneighbors(x, 5)
    np.testing.assert_array_equal(idx, m_idx)
    np.testing.assert_array_equal(dist, m_dist)


@pytest.mark.parametrize("d", [2, 16])
def test_kneighbors_duplicates_give_the_same_distances(d):
    # Points on a small integer grid: many exact duplicates and ties at the k-th distance.
    x = np.random.default_rng(1).integers(0, 3, size=(200, d)).astype(np.float32)
    dist, idx = dask.compute(*dgd.kneighbors(chunked(x, (50, 3, 147)), K))
    m_dist, _ = datagauge.kneighbors(x, K)
    np.testing.assert_array_equal(dist, m_dist)
    # Each returned neighbour is another row at exactly the stated distance.
    assert (idx != np.arange(200)[:, None]).all()
    again = np.sqrt(((x[idx] - x[:, None, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(again, dist, rtol=1e-6)
    assert len({tuple(r) for r in idx.tolist()}) > 1


def test_kneighbors_n_jobs_and_int_input():
    x = np.random.default_rng(2).integers(0, 1000, size=(120, 3))
    a = dask.compute(*dgd.kneighbors(chunked(x, 50), 4, n_jobs=None))
    b = datagauge.kneighbors(x, 4)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(1, 60), min_size=1, max_size=6),
    st.integers(1, 8),
    st.integers(2, 14),
)
def test_chunking_does_not_change_the_neighbours(sizes, k, d):
    n = sum(sizes)
    if n <= k:
        sizes = [*sizes, k + 1]
        n = sum(sizes)
    x = np.random.default_rng(n * 31 + d).normal(size=(n, d)).astype(np.float32)
    with dask.config.set(scheduler="synchronous"):
        dist, idx = dask.compute(*dgd.kneighbors(chunked(x, tuple(sizes)), k))
    one = dask.compute(*dgd.kneighbors(chunked(x, (n,)), k))
    np.testing.assert_array_equal(idx, one[1])
    np.testing.assert_array_equal(dist, one[0])
    np.testing.assert_array_equal(idx, datagauge.kneighbors(x, k)[1])


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("rows", CHUNKINGS)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"percent": 0.1},
        {"radius_type": "naive", "normalize": True},
        {"normalize": True, "labels": "labels"},
    ],
)
def test_coverage_matches_in_memory(rows, options, scheduler):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, 4)) * [1, 2, 3, 4]
    options = dict(options)
    if options.get("labels") == "labels":
        labels = rng.integers(0, 3, N)
        labels[:5] = 3  # a class with fewer than k members has no radius of its own
        options["labels"] = labels
    expected = datagauge.coverage(x, K, **options)
    if "labels" in options:
        options["labels"] = da.from_array(options["labels"], chunks=100)
    got = dgd.coverage(chunked(x, rows), K, **options)
    assert json.dumps(got.to_dict()) == json.dumps(expected.to_dict())
    np.testing.assert_array_equal(got.critical_value_radii, expected.critical_value_radii)


def test_coverage_naive_in_unit_cube_and_its_error():
    x = np.random.default_rng(4).random((200, 3))
    got = dgd.coverage(chunked(x, 64), 5, radius_type="naive")
    expected = datagauge.coverage(x, 5, radius_type="naive")
    np.testing.assert_array_equal(got.uncovered_indices, expected.uncovered_indices)
    assert got.coverage_radius == expected.coverage_radius
    with pytest.raises(ValueError, match="normalize=True"):
        dgd.coverage(chunked(x * 2, 64), 5, radius_type="naive")


# --------------------------------------------------------------------------- familiarity


def blobs(n=900, seed=5):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [6, 0, 2, 0], [0, 7, 0, 3]], dtype=float)
    return centres[rng.integers(0, 3, n)] + rng.normal(size=(n, 4)) * [1, 0.5, 2, 1]


def assert_same_fit(a, b, rtol=1e-10):
    assert a.n_iter_ == b.n_iter_
    assert a.converged_ == b.converged_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(
            getattr(b, name), getattr(a, name), rtol=rtol, atol=1e-12, err_msg=name
        )
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=rtol)


@pytest.mark.parametrize(
    "params",
    [
        {"covariance_type": "diag"},
        {"covariance_type": "full", "init": "kmeans"},
        {"covariance_type": "tied", "reduce_dim": 3},
        {"covariance_type": "spherical", "n_init": 2},
        {"init": "random", "block_size": 100},
    ],
)
@pytest.mark.parametrize("rows", [(900,), (301, 1, 598)])
def test_fit_familiarity_matches_in_memory(params, rows, scheduler):
    x = blobs()
    expected = Familiarity(n_components=3, random_state=0, **params).fit(x)
    got = dgd.fit_familiarity(chunked(x, rows), n_components=3, random_state=0, **params)
    assert isinstance(got, Familiarity)
    assert_same_fit(expected, got)


@pytest.mark.parametrize("init", ["kmeans", "k-means++"])
def test_fit_familiarity_samples_the_same_rows(monkeypatch, init):
    # Above _KMEANS_ROWS (init="kmeans") or _INIT_ROWS (init="k-means++") rows the seeds come
    # from a seeded random subset of the rows (here max(50, 100 * 3) = 300 or 50 of 600).
    monkeypatch.setattr(datagauge._gmm, "_KMEANS_ROWS", 50)
    monkeypatch.setattr(datagauge._gmm, "_INIT_ROWS", 50)
    x = blobs(600)
    kw = {"n_components": 3, "init": init, "max_iter": 1}  # one step: the start still shows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = Familiarity(random_state=3, **kw).fit(x)
        got = dgd.fit_familiarity(chunked(x, (250, 350)), Familiarity(random_state=3, **kw))
        other = Familiarity(random_state=4, **kw).fit(x)  # other rows, other seeds
    assert_same_fit(expected, got)
    if init == "k-means++":  # (Lloyd's iterations end in the same clusters from either start)
        assert not np.allclose(
            np.sort(other.means_, axis=0), np.sort(got.means_, axis=0), rtol=1e-6
        )


def test_familiarity_statistics_merge_over_chunks():
    # The merged statistics of the chunks equal one call on all rows.
    x = blobs()
    model = Familiarity(n_components=3, random_state=0).fit(x)
    source = dgd._DaskSource(chunked(x, (100, 500, 300)), 65536, "X")
    merged = model._stats(source, model._params(), "diag", 1)
    whole = model.sufficient_statistics(x)
    for name in ("n_samples", "loglik", "nk", "s", "q"):
        a, b = np.asarray(getattr(merged, name)), np.asarray(getattr(whole, name))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max(), err_msg=name)


def test_score_samples_is_lazy_and_matches():
    x = blobs()
    model = Familiarity(n_components=3, random_state=0).fit(x)
    scores = dgd.score_samples(model, chunked(x, 200))
    assert isinstance(scores, da.Array)
    assert scores.shape == (900,)
    np.testing.assert_allclose(scores.compute(), model.score_samples(x), rtol=1e-12)


# --------------------------------------------------------------------------- bias


def bias_data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    tags = rng.random((n, 7)) < 0.3
    correct = rng.random(n) > np.where(tags[:, 0] & tags[:, 1], 0.6, 0.1)
    confidence = rng.random(n) * np.where(tags[:, 2], 0.6, 1.0)
    return tags, correct, confidence


@pytest.mark.parametrize("rows", [(2000,), (700, 5, 1295), (64,) * 31 + (16,)])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_tags": 4, "min_support": 5, "min_effect": 0.0, "alpha": 0.5},
        {"minimality": [0.01, 0.01, 0.01], "test": "fisher"},
        {"metric": "confidence", "min_effect": 0.05},
    ],
)
def test_find_biases_matches_in_memory(rows, options, scheduler):
    tags, correct, confidence = bias_data()
    outcome = confidence if options.get("metric") == "confidence" else correct
    names = list("ABCDEFG")
    expected = datagauge.find_biases(tags, outcome, tag_names=names, **options)
    got = dgd.find_biases(
        chunked(tags, rows), da.from_array(outcome, chunks=500), tag_names=names, **options
    )
    assert len(expected) > 0
    assert_reports_equal(expected, got, exact=options.get("metric") != "confidence")
    for i in range(len(got)):
        np.testing.assert_array_equal(got.members(i), expected.members(i))
        np.testing.assert_array_equal(got.examples(i), expected.examples(i))


def test_find_biases_counts_many_candidates_in_batches(monkeypatch):
    monkeypatch.setattr(dgd, "_CANDIDATE_BATCH", 4)
    tags, correct, _ = bias_data(500, seed=2)
    tags = np.asarray(tags, dtype=np.int8)  # 0/1 numbers
    options = {"max_tags": 3, "min_support": 3, "min_effect": 0.0, "alpha": 1 - 1e-9}
    expected = datagauge.find_biases(tags, correct, **options)
    got = dgd.find_biases(chunked(tags, (100, 400)), correct, **options)
    assert expected.n_tested > 50
    assert_reports_equal(expected, got)


def test_find_biases_too_many_combinations():
    tags, correct, _ = bias_data(300)
    with pytest.raises(ValueError, match="max_combinations=20"):
        datagauge.find_biases(tags, correct, min_support=1, max_combinations=20)
    with pytest.raises(ValueError, match="max_combinations=20"):
        dgd.find_biases(chunked(tags, 100), correct, min_support=1, max_combinations=20)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 300), min_size=1, max_size=5), st.integers(0, 10**6))
def test_chunking_does_not_change_the_report(sizes, seed):
    sizes = [*sizes, 2]
    n = sum(sizes)
    rng = np.random.default_rng(seed)
    tags = rng.random((n, 5)) < 0.4
    correct = rng.random(n) < 0.7
    correct[:2] = [True, False]  # never constant
    options = {"min_support": 2, "min_effect": 0.0, "alpha": 0.9}
    expected = datagauge.find_biases(tags, correct, **options)
    with dask.config.set(scheduler="synchronous"):
        got = dgd.find_biases(chunked(tags, tuple(sizes)), correct, **options)
    assert_reports_equal(expected, got)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "in_memory"),
    [
        (lambda x: dgd.kneighbors(x, 3), "datagauge.kneighbors"),
        (lambda x: dgd.coverage(x, 3), "datagauge.coverage"),
        (lambda x: dgd.fit_familiarity(x), "Familiarity.fit"),
        (lambda x: dgd.find_biases(x > 0, np.arange(40) % 2), "datagauge.find_biases"),
    ],
)
def test_in_memory_input_says_what_to_use(call, in_memory):
    x = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(TypeError, match=rf"{in_memory}.*dask\.array\.from_array"):
        call(x)


def test_features_split_over_chunks_are_rechunked():
    x = np.random.default_rng(8).normal(size=(90, 6)).astype(np.float32)
    split = da.from_array(x, chunks=(30, 2))
    dist, idx = dask.compute(*dgd.kneighbors(split, 5))
    assert dist.shape == (90, 5)
    np.testing.assert_array_equal(idx, datagauge.kneighbors(x, 5)[1])
    tags = np.random.default_rng(8).random((90, 6)) < 0.5
    correct = np.arange(90) % 3 > 0
    got = dgd.find_biases(da.from_array(tags, chunks=(40, 4)), correct, min_support=3)
    assert_reports_equal(datagauge.find_biases(tags, correct, min_support=3), got)


def test_bad_shapes_and_dtypes():
    with pytest.raises(ValueError, match="must be 2-D"):
        dgd.kneighbors(da.zeros(10, chunks=5), 2)
    with pytest.raises(TypeError, match="real numbers, got dtype bool"):
        dgd.kneighbors(da.zeros((10, 2), dtype=bool, chunks=5), 2)
    with pytest.raises(TypeError, match="real numbers"):
        dgd.kneighbors(da.from_array(np.array([["a", "b"]] * 4)), 2)
    with pytest.raises(ValueError, match="empty"):
        dgd.kneighbors(da.zeros((0, 3), chunks=5), 2)
    with pytest.raises(ValueError, match="k=10 must be less than the number of samples"):
        dgd.kneighbors(da.zeros((10, 2), chunks=5), 10)


def test_unknown_chunk_sizes():
    x = da.from_array(np.random.default_rng(0).normal(size=(50, 2)), chunks=10)
    filtered = x[x[:, 0] > 0]
    with pytest.raises(ValueError, match=r"compute_chunk_sizes\(\)"):
        dgd.kneighbors(filtered, 2)


def test_non_finite_values_name_their_rows():
    x = np.random.default_rng(0).normal(size=(50, 2))
    x[33, 1] = np.nan
    dist, _ = dgd.kneighbors(chunked(x, 20), 2)  # lazy: the check runs with the chunk
    with pytest.raises(ValueError, match=r"x rows 20\+ contains 1 NaN"):
        dist.compute()
    with pytest.raises(ValueError, match=r"X rows 20\+ contains 1 NaN"):
        dgd.fit_familiarity(chunked(x, 20), n_components=2, random_state=0)


def test_approximate_index_is_rejected():
    x = da.zeros((20, 2), chunks=10)
    with pytest.raises(ValueError, match="searches exactly"):
        dgd.kneighbors(x, 2, index="hnsw")
    with pytest.raises(ValueError, match=r"Exact\.engine must be one of"):
        dgd.kneighbors(x, 2, index=Exact(engine="ball_tree"))  # type: ignore[arg-type]


def test_bad_bias_inputs():
    tags = np.zeros((130, 3))
    tags[::2, 0] = 1
    tags[101, 2] = 2
    correct = np.arange(130) % 2 == 0
    with pytest.raises(ValueError, match=r"tags\[101, 2\] = 2\.0"):
        dgd.find_biases(chunked(tags, 50), correct)
    with pytest.raises(ValueError, match="tag_names has 2 names"):
        dgd.find_biases(chunked(tags, 50), correct, tag_names=["a", "b"])
    with pytest.raises(ValueError, match="correct has 129 entries"):
        dgd.find_biases(chunked(tags, 50), correct[:-1])
    with pytest.raises(ValueError, match="must be 2-D of shape \\(n_samples, n_tags\\)"):
        dgd.find_biases(da.from_array(correct), correct)


def test_bad_familiarity_inputs():
    x = chunked(blobs(100), 50)
    with pytest.raises(TypeError, match=r"model must be a datagauge\.Familiarity"):
        dgd.fit_familiarity(x, model="diag")
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        dgd.fit_familiarity(x, n_components=0)
    model = Familiarity(n_components=2)
    with pytest.raises(ValueError, match="not fitted"):
        dgd.score_samples(model, x)
    model.fit(blobs(100))
    with pytest.raises(ValueError, match="has 3 features, but Familiarity was fitted with 4"):
        dgd.score_samples(model, x[:, :3])


def test_import_datagauge_does_not_import_dask():
    code = "import sys, datagauge; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_first_faiss_use_in_parallel_tasks():
    # FAISS imported for the first time by several Dask threads at once (a fresh process).
    code = (
        "import dask, dask.array as da, numpy as np, datagauge.dask as dgd\n"
        "x = da.from_array(np.random.default_rng(0).random((400, 16)), chunks=(50, -1))\n"
        "with dask.config.set(scheduler='threads', num_workers=8):\n"
        "    print(dask.compute(*dgd.kneighbors(x, 3, index='flat'))[1].shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(400, 3)"


@pytest.mark.parametrize("exponent", [70, -100])
def test_huge_and_tiny_scales_match_in_memory(exponent):
    # Squared distances would overflow / underflow float32; both paths rescale exactly.
    x = np.ldexp(np.random.default_rng(5).random((240, 16)), exponent).astype(np.float32)
    dist, idx = dask.compute(*dgd.kneighbors(da.from_array(x, chunks=(70, -1)), 5))
    ref_dist, ref_idx = datagauge.kneighbors(x, 5)
    assert np.all(np.isfinite(dist))
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)
    res = dgd.coverage(da.from_array(x, chunks=(70, -1)), 5)
    np.testing.assert_array_equal(res.critical_value_radii, ref_dist[:, -1])


def test_bayes_error_and_divergence_on_dask_equal_in_memory():
    rng = np.random.default_rng(40)
    x = np.concatenate([rng.normal(0, 1, (700, 6)), rng.normal(1.5, 1, (500, 6))])
    y = np.repeat([0, 1], [700, 500])
    xd = da.from_array(x, chunks=(300, -1))
    for k in (1, 3):
        got = datagauge.dask.bayes_error(xd, y, k=k)
        want = datagauge.bayes_error(x, y, k=k)
        assert (got.upper, got.lower, got.errors) == (want.upper, want.lower, want.errors)
    a, b = x[:700], x[700:]
    got_div = datagauge.dask.divergence(da.from_array(a, chunks=250), da.from_array(b, chunks=200))
    want_div = datagauge.divergence(a, b)
    assert (got_div.divergence, got_div.errors) == (want_div.divergence, want_div.errors)
    with pytest.raises(ValueError, match="features"):
        datagauge.dask.divergence(da.from_array(a, chunks=250), da.from_array(b[:, :3], chunks=200))


def test_knn_drift_on_dask_equals_in_memory():
    rng = np.random.default_rng(41)
    ref, tst = rng.normal(0, 1, (600, 5)), rng.normal(0.3, 1, (400, 5))
    got = datagauge.dask.drift(
        da.from_array(ref, chunks=(250, -1)), da.from_array(tst, chunks=(150, -1)), k=7
    )
    want = datagauge.drift(ref, tst, k=7)
    assert (got.statistic, got.p_value, got.drifted) == (want.statistic, want.p_value, want.drifted)
    np.testing.assert_array_equal(got.sample_scores, want.sample_scores)
    np.testing.assert_array_equal(got.samples, want.samples)
    with pytest.raises(ValueError, match="features"):
        datagauge.dask.drift(da.from_array(ref), da.from_array(tst[:, :2]))
