"""The core IVF engine (``IVF(engine="core")``, cpp/include/datagauge/ivf.hpp) against exact
search: a numpy/scipy oracle on small data, the exact engines' distances, and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

import datagauge
from datagauge import _core, _memory
from datagauge.neighbors import (
    IVF,
    Exact,
    InvertedFile,
    core_ivf_bytes,
    exact_top_radii,
    ivf_engine,
    recall_at_k,
)


def clustered(n: int, d: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 4.0, (clusters, d))
    return (centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, d))).astype(np.float32)


def oracle_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances float64 (n, k), indices (n, k)) by scipy in float64, self excluded."""
    x64 = x.astype(np.float64)
    dist = cdist(x64, x64)
    np.fill_diagonal(dist, np.inf)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, idx, axis=1), idx


def core_ivf(x: np.ndarray, k: int, n_jobs: int = 2, **kw: object):
    return datagauge.kneighbors(x, k, index=IVF(engine="core", **kw), n_jobs=n_jobs)


def test_all_cells_probed_is_the_exact_answer():
    x = clustered(600, 12, 8, 0)
    od, oi = oracle_knn(x, 10)
    dist, idx = core_ivf(x, 10, nlist=20, nprobe=20)
    np.testing.assert_array_equal(idx, oi)
    np.testing.assert_allclose(dist, od, rtol=1e-5)
    # Distances bit-identical to the exact engines' (the same float32 arithmetic).
    ed, ei = datagauge.kneighbors(x, 10, index=Exact(engine="brute"))
    np.testing.assert_array_equal(idx, ei)
    np.testing.assert_array_equal(dist, ed)


def test_few_cells_give_exact_distances_of_the_listed_points():
    x = clustered(800, 24, 10, 1)
    k = 8
    dist, idx = core_ivf(x, k, nlist=40, nprobe=2)
    rows = np.arange(x.shape[0])[:, None]
    assert np.all(idx >= 0)
    assert np.all(idx != rows)
    assert all(np.unique(r).size == k for r in idx)
    assert np.all(dist[:, 1:] >= dist[:, :-1])
    true = np.sqrt(((x[idx].astype(np.float64) - x[:, None, :].astype(np.float64)) ** 2).sum(-1))
    np.testing.assert_allclose(dist, true, rtol=1e-5)
    # A listed distance is never below the exact one at its rank (real points, sorted).
    od, _ = oracle_knn(x, k)
    assert np.all(dist >= od * (1 - 1e-5))
    # Where a pair is also in the exact engine's lists, the distance is the same float32.
    ed, ei = datagauge.kneighbors(x, k, index=Exact(engine="brute"))
    same = idx == ei
    assert same.mean() > 0.5
    np.testing.assert_array_equal(dist[same], ed[same])


def test_tuned_nprobe_reaches_the_target_recall():
    x = clustered(3000, 32, 30, 2)
    _, oi = oracle_knn(x, 10)
    _, idx = core_ivf(x, 10, target_recall=0.95)
    assert recall_at_k(idx, oi) >= 0.93  # the target is met on a 512-point sample
    _, coarse = core_ivf(x, 10, nlist=60, nprobe=1)
    assert recall_at_k(coarse, oi) < 0.95  # one cell alone misses neighbours here


def test_deterministic_given_random_state_and_thread_count_independent():
    x = clustered(2500, 16, 12, 3)
    a = core_ivf(x, 5, n_jobs=1, nlist=50, nprobe=2, random_state=7)
    b = core_ivf(x, 5, n_jobs=2, nlist=50, nprobe=2, random_state=7)
    c = core_ivf(x, 5, n_jobs=3, nlist=50, nprobe=2, random_state=7)
    for other in (b, c):
        np.testing.assert_array_equal(a[0], other[0])
        np.testing.assert_array_equal(a[1], other[1])
    gen = core_ivf(x, 5, nlist=50, nprobe=2, random_state=np.random.default_rng(7))
    again = core_ivf(x, 5, nlist=50, nprobe=2, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(gen[1], again[1])


def test_short_rows_are_completed_exactly():
    # Cells of fewer than k + 1 points and one probed cell: rows short of k neighbours are
    # searched again exactly, so no row has missing entries.
    x = clustered(300, 4, 3, 4)
    od, _ = oracle_knn(x, 12)
    dist, idx = core_ivf(x, 12, nlist=60, nprobe=1)
    assert np.all(idx >= 0)
    assert np.all(np.isfinite(dist))
    assert np.all(dist >= od.astype(np.float32) * (1 - 1e-5))


def test_coverage_with_the_core_ivf_has_the_exact_uncovered_set():
    x = clustered(3000, 32, 20, 5)
    exact = datagauge.coverage(x, 10, index="exact")
    approx = datagauge.coverage(x, 10, index=IVF(engine="core", nlist=60, nprobe=1))
    np.testing.assert_array_equal(
        np.sort(approx.uncovered_indices), np.sort(exact.uncovered_indices)
    )


def test_engine_choice():
    assert ivf_engine(IVF(), "cpu") == "core"
    assert ivf_engine(IVF(codes="sq8"), "cpu") == "faiss"
    assert ivf_engine(IVF(engine="faiss"), "cpu") == "faiss"
    assert ivf_engine(IVF(), "gpu") == "faiss"
    with pytest.raises(ValueError, match=r"engine='core'.*codes='flat'.*got codes='sq8'"):
        ivf_engine(IVF(engine="core", codes="sq8"), "cpu")
    with pytest.raises(ValueError, match=r"runs on the CPU; use engine='faiss' for device='gpu'"):
        ivf_engine(IVF(engine="core"), "gpu")
    with pytest.raises(ValueError, match=r"IVF.engine must be one of 'auto', 'core', 'faiss'"):
        ivf_engine(IVF(engine="gpu"), "cpu")  # type: ignore[arg-type]


def test_bad_parameters_are_clear_errors():
    x = clustered(200, 4, 3, 6)
    with pytest.raises(ValueError, match=r"IVF.nlist must be"):
        core_ivf(x, 3, nlist=0)
    with pytest.raises(ValueError, match=r"IVF.nprobe must be"):
        core_ivf(x, 3, nprobe=0)
    with pytest.raises(ValueError, match=r"IVF.target_recall"):
        core_ivf(x, 3, target_recall=1.5)


def test_memory_is_checked_before_anything_is_allocated(monkeypatch):
    x = clustered(400, 8, 3, 7)
    needed = core_ivf_bytes(400, 8, 5, 12, 2)
    assert core_ivf_bytes(400, 8, 5, 24, 2) > needed  # more cells, more probe scores
    assert core_ivf_bytes(10**6, 512, 20, 1000, 2) < 1 << 30  # besides the 2 GB of data
    monkeypatch.setattr(_memory, "physical_memory", lambda: needed // 2)
    with pytest.raises(MemoryError, match=r"the IVF search \(engine='core'\) needs about"):
        core_ivf(x, 5, nlist=12)


def numpy_lloyd(x: np.ndarray, centres: np.ndarray, max_iter: int) -> tuple[np.ndarray, int]:
    """The core's Lloyd iterations in float64: nearest centre, then each centre to the mean
    of its rows (a centre without rows stays), until no label changes."""
    c = centres.astype(np.float64)
    labels = np.full(x.shape[0], -1)
    for it in range(1, max_iter + 1):
        new = cdist(x.astype(np.float64), c, "sqeuclidean").argmin(axis=1)
        if np.array_equal(new, labels):
            return c, it
        labels = new
        for j in range(c.shape[0]):
            if (labels == j).any():
                c[j] = x[labels == j].astype(np.float64).mean(axis=0)
    return c, max_iter


@pytest.mark.parametrize("max_iter", [1, 3, 50])
def test_quantiser_against_numpy(max_iter):
    x = clustered(500, 6, 5, 8)
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    init = np.ascontiguousarray(x[[3, 10, 11, 40, 41, 42, 100]])  # some start in one cluster
    centres, n_iter = _core.ivf_train(x, init, mean, max_iter, 2)
    expect, expect_iter = numpy_lloyd(x, init, max_iter)
    assert n_iter == expect_iter
    np.testing.assert_allclose(centres, expect, rtol=1e-5, atol=1e-5)
    labels, scores = _core.ivf_assign(x, centres, mean, 2)
    d2 = cdist(x.astype(np.float64), centres.astype(np.float64), "sqeuclidean")
    np.testing.assert_array_equal(labels, d2.argmin(axis=1))
    for c in range(centres.shape[0]):
        expect_row = d2[labels == c].min(axis=0) if (labels == c).any() else np.full(7, np.inf)
        expect_row[c] = -np.inf
        np.testing.assert_allclose(scores[c], expect_row, rtol=1e-4, atol=1e-3)


def test_core_functions_reject_bad_input():
    x = clustered(120, 4, 3, 9)
    cells = InvertedFile(x, 4, 0, 1)
    mean, labels, start, members = cells.lists()
    centres, probe = cells.centres, cells.probe
    q = np.arange(120, dtype=np.int64)

    def search(**kw):
        args = dict(
            data=x, mean=mean, labels=labels, cell_start=start, members=members, probe=probe,
            nprobe=2, queries=q, k=3, n_candidates=5, n_threads=1,
        )  # fmt: skip
        args.update(kw)
        return _core.ivf_search(**args)

    assert search()[1].shape == (120, 3)
    with pytest.raises(ValueError, match=r"nprobe must lie in \[1, 4\], got 5"):
        search(nprobe=5)
    with pytest.raises(ValueError, match=r"queries must be row indices"):
        search(queries=np.array([0, 120], dtype=np.int64))
    with pytest.raises(ValueError, match=r"members must list every point once"):
        search(members=np.zeros(120, dtype=np.int64))
    with pytest.raises(ValueError, match=r"probe cell ids must lie in"):
        search(probe=np.full_like(probe, 9))
    with pytest.raises(ValueError, match=r"n_candidates must lie in \[k, n - 1\]"):
        search(n_candidates=2)
    with pytest.raises(ValueError, match=r"mean has 3 entries but data has 4 features"):
        search(mean=mean[:3].copy())
    with pytest.raises(TypeError):
        search(data=x.astype(np.float64))  # no hidden conversion
    with pytest.raises(ValueError, match=r"at least as many sample rows as cells"):
        _core.ivf_train(x[:3].copy(), centres, mean, 2, 1)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 90),
    d=st.integers(1, 40),
    k=st.integers(1, 8),
    cells=st.integers(1, 12),
)
def test_property_all_cells_equal_exact_and_threads_agree(seed, n, d, k, cells):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    k = min(k, n - 1)
    nlist = min(cells, n)
    dist, idx = core_ivf(x, k, n_jobs=1, nlist=nlist, nprobe=nlist, random_state=seed % 1000)
    ed, ei = datagauge.kneighbors(x, k, index=Exact(engine="brute"))
    np.testing.assert_array_equal(dist, ed)  # ties may pick other indices, never distances
    untied = np.ones(n, dtype=bool)
    if k < n - 1:
        sq = cdist(x.astype(np.float64), x.astype(np.float64), "sqeuclidean")
        np.fill_diagonal(sq, np.inf)
        sq.sort(axis=1)
        untied = sq[:, k - 1] * (1 + 1e-5) < sq[:, k]
    np.testing.assert_array_equal(idx[untied], ei[untied])
    few = core_ivf(x, k, n_jobs=1, nlist=nlist, nprobe=1, random_state=3)
    many = core_ivf(x, k, n_jobs=4, nlist=nlist, nprobe=1, random_state=3)
    np.testing.assert_array_equal(few[0], many[0])
    np.testing.assert_array_equal(few[1], many[1])
    assert np.all(few[0] >= ed)  # lists of real points: never closer than the exact ones


def test_pruned_exact_rows_against_the_oracle():
    x = clustered(2000, 20, 15, 10)
    k = 7
    _, oi = oracle_knn(x, k)
    cells = InvertedFile(x, 40, 0, 2)
    _, labels, start, members = cells.lists()
    ids = np.arange(0, 2000, 3, dtype=np.int64)
    ed, _ = datagauge.kneighbors(x, k, index=Exact(engine="brute"))
    for bounds in (
        np.full(ids.size, np.inf, dtype=np.float32),  # no bound: nearest cells first
        (ed[ids, -1].astype(np.float64) ** 2 * (1 + 1e-5)).astype(np.float32),  # tight
    ):
        sq, idx = _core.ivf_exact_rows(x, cells.centres, labels, start, members, ids, bounds, k, 2)
        np.testing.assert_array_equal(idx, oi[ids])
        np.testing.assert_array_equal(np.sqrt(sq), ed[ids])  # the exact engines' float32
    with pytest.raises(ValueError, match=r"bounds must be >= 0"):
        _core.ivf_exact_rows(
            x, cells.centres, labels, start, members, ids[:1], np.array([np.nan], np.float32), k
        )


def test_exact_top_radii_through_pruned_cells_equals_brute_force():
    x = clustered(3000, 16, 10, 11)
    k = 10
    ed, _ = datagauge.kneighbors(x, k, index=Exact(engine="brute"))
    approx, _ = core_ivf(x, k, nlist=60, nprobe=1)
    m = 300  # >= 4 sqrt(n) rows: the pruned cells, not FAISS
    radii, searched = exact_top_radii(x, approx[:, -1].copy(), k, m, 2)
    top = np.argsort(-radii, kind="stable")[:m]
    np.testing.assert_array_equal(np.sort(radii[top]), np.sort(ed[:, -1])[-m:])
    assert searched >= m
