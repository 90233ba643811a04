"""datagauge.dask on a dask.distributed cluster of worker processes: answers equal to the
in-memory ones, also when a worker dies in the middle of a search."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

import datagauge

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
cloudpickle = pytest.importorskip("cloudpickle")
dg_dask = pytest.importorskip("datagauge.dask")

# Worker processes cannot import this test module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit="2GiB",
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(8, d)) * 4
    x = centers[rng.integers(0, 8, n)] + rng.normal(size=(n, d))
    x[n // 2] = x[3]  # an exact duplicate
    return x


def test_graph_on_a_process_cluster_equals_in_memory(client):
    x = _clustered(4000, 10, 0)
    xd = da.from_array(x, chunks=(900, -1))
    graph = dg_dask.neighbor_graph(xd, k=15).compute()
    expected = datagauge.neighbor_graph(x, k=15)
    np.testing.assert_array_equal(graph.distances, expected.distances)
    np.testing.assert_array_equal(graph.indices, expected.indices)
    np.testing.assert_array_equal(graph.duplicate_of, expected.duplicate_of)
    assert graph.checksum == expected.checksum
    a = datagauge.coverage(graph, k=10)
    b = datagauge.coverage(x, k=10)
    np.testing.assert_array_equal(a.uncovered_indices, b.uncovered_indices)
    cov = dg_dask.coverage(xd, k=10)
    np.testing.assert_array_equal(cov.uncovered_indices, b.uncovered_indices)


def test_analyses_on_a_cluster_graph_equal_in_memory(client):
    x = _clustered(3000, 8, 2)
    y = np.random.default_rng(2).integers(0, 4, 3000)
    splits = np.where(np.arange(3000) % 5 == 0, "test", "train")
    graph = dg_dask.neighbor_graph(da.from_array(x, chunks=(700, -1)), k=20)
    dup_a = datagauge.duplicates(graph, splits=splits)
    dup_b = datagauge.duplicates(x, splits=splits)
    assert [g.tolist() for g in dup_a.exact] == [g.tolist() for g in dup_b.exact]
    assert [g.tolist() for g in dup_a.near] == [g.tolist() for g in dup_b.near]
    assert dup_a.leak_counts == dup_b.leak_counts
    out_a, out_b = datagauge.outliers(graph), datagauge.outliers(x)
    np.testing.assert_array_equal(out_a.scores, out_b.scores)
    np.testing.assert_array_equal(out_a.flagged, out_b.flagged)
    lab_a = datagauge.label_errors(graph, y, k=20, method="knn_vote")
    lab_b = datagauge.label_errors(x, y, k=20, method="knn_vote")
    np.testing.assert_array_equal(lab_a.scores, lab_b.scores)
    np.testing.assert_array_equal(lab_a.suggested, lab_b.suggested)


def _slow_block(block: np.ndarray) -> np.ndarray:
    time.sleep(0.4)  # long enough for a worker to be killed while tasks are running
    return block


def test_a_worker_killed_mid_run_does_not_change_the_answer(client):
    x = _clustered(3000, 12, 1)
    xd = da.from_array(x, chunks=(500, -1)).map_blocks(_slow_block, dtype=x.dtype)
    dist, idx = dg_dask.kneighbors(xd, 10)
    future = client.compute([dist, idx])
    deadline = time.monotonic() + 30
    while not any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert not all(f.done() for f in future), "the search ended before a worker was killed"
    victim = next(w for w, tasks in client.processing().items() if tasks)
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, 9)  # the nanny starts a new worker; the scheduler reruns lost tasks
    got_dist, got_idx = client.gather(future)
    want_dist, want_idx = datagauge.kneighbors(x, 10)
    np.testing.assert_array_equal(got_dist, want_dist)
    np.testing.assert_array_equal(got_idx, want_idx)
