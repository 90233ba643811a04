"""NeighborGraph: the one k-NN search, its exact-duplicate ids, save/load and coverage on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import datagauge
from datagauge import _atomic
from datagauge import graph as graph_module
from datagauge.graph import as_graph, row_duplicates


def _data(n: int = 600, d: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _duplicates_oracle(x: np.ndarray) -> np.ndarray:
    """Smallest index of an identical row, by comparing every pair."""
    x = x.astype(np.float32) + np.float32(0)
    same = (x[:, None, :] == x[None, :, :]).all(axis=2)
    return same.argmax(axis=1).astype(np.int64)


def test_graph_is_the_kneighbors_answer():
    x = _data()
    g = datagauge.neighbor_graph(x, k=12)
    dist, idx = datagauge.kneighbors(x, 12)
    np.testing.assert_array_equal(g.indices, idx)
    np.testing.assert_array_equal(g.distances, dist)
    assert g.indices.dtype == np.int64
    assert g.distances.dtype == np.float32
    assert (g.k, g.n_samples, g.n_features) == (12, 600, 8)
    assert g.engine == "exact"
    assert g.recall is None
    assert not g.indices.flags.writeable
    # Brute-force oracle of the distances.
    full = np.sqrt(((x[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1))
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(g.distances, np.sort(full, axis=1)[:, :12], rtol=1e-5)


def test_restrict_is_a_smaller_search():
    x = _data()
    g = datagauge.neighbor_graph(x, k=20)
    small = g.restrict(5)
    direct = datagauge.neighbor_graph(x, k=5)
    np.testing.assert_array_equal(small.distances, direct.distances)
    np.testing.assert_array_equal(small.indices, direct.indices)
    assert small.checksum == g.checksum
    assert small.k == 5
    assert g.restrict(20) is g
    with pytest.raises(ValueError, match=r"holds 20 neighbours per point but k=21"):
        g.restrict(21)
    with pytest.raises(ValueError, match=">= 1"):
        g.restrict(0)
    with pytest.raises(ValueError, match="less than the number of samples"):
        as_graph(g, 600)


def test_duplicate_ids_against_pairwise_oracle():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, size=(300, 3)).astype(np.float32)  # many identical rows
    x[5] = -0.0 * np.ones(3)
    x[6] = 0.0
    expected = _duplicates_oracle(x)
    np.testing.assert_array_equal(row_duplicates(x), expected)
    assert row_duplicates(x)[6] == 5  # -0.0 and 0.0 are the same value
    g = datagauge.neighbor_graph(x, k=3)
    np.testing.assert_array_equal(g.duplicate_of, expected)


def test_hash_collisions_fall_back_to_exact_grouping(monkeypatch):
    x = _data(200, 4)
    x[50] = x[3]
    monkeypatch.setattr(
        graph_module, "_row_hashes", lambda a, seed: np.zeros(a.shape[0], np.uint64)
    )
    np.testing.assert_array_equal(row_duplicates(x), _duplicates_oracle(x))


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=40),
        elements=st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, 1e30, 1e-30]),
    )
)
def test_duplicate_ids_property(x):
    np.testing.assert_array_equal(row_duplicates(np.ascontiguousarray(x)), _duplicates_oracle(x))


@pytest.mark.parametrize("index", ["hnsw", "ivf"])
def test_approximate_graph_reports_its_recall(index):
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(10, 16)) * 5
    x = (centers[rng.integers(0, 10, 3000)] + rng.normal(size=(3000, 16))).astype(np.float32)
    g = datagauge.neighbor_graph(x, k=10, index=index)
    exact = datagauge.neighbor_graph(x, k=10)
    assert g.engine == index
    assert g.recall is not None
    assert 0.9 <= g.recall <= 1.0
    sample = datagauge.neighbors.sample_rows(3000, 0)
    measured = datagauge.recall_at_k(g.indices[sample], exact.indices[sample])
    assert abs(measured - g.recall) < 0.02


def test_save_load_roundtrip(tmp_path):
    x = _data()
    g = datagauge.neighbor_graph(x.astype(np.float64), k=7)
    assert g.dtype == "float64"
    path = g.save(tmp_path / "g.graph")
    for mmap in (True, False):
        h = datagauge.NeighborGraph.load(path, mmap=mmap, embeddings=x.astype(np.float64))
        for name in ("indices", "distances", "duplicate_of", "feature_range"):
            np.testing.assert_array_equal(getattr(h, name), getattr(g, name))
        assert (h.k, h.engine, h.recall, h.dtype, h.checksum) == (
            7,
            "exact",
            None,
            "float64",
            g.checksum,
        )
        assert isinstance(h.indices, np.memmap) == mmap
    meta = json.loads((path / "graph.json").read_text())
    assert meta["format"] == "datagauge.NeighborGraph"
    assert meta["n_samples"] == 600
    # Coverage from the loaded (memory-mapped) graph is today's answer.
    loaded = datagauge.NeighborGraph.load(path)
    a = datagauge.coverage(loaded, k=7)
    b = datagauge.coverage(x, k=7)
    np.testing.assert_array_equal(a.uncovered_indices, b.uncovered_indices)


def test_save_refuses_to_overwrite(tmp_path):
    g = datagauge.neighbor_graph(_data(), k=3)
    path = g.save(tmp_path / "g")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        g.save(path)
    g2 = datagauge.neighbor_graph(_data(seed=5), k=4)
    g2.save(path, overwrite=True)
    assert datagauge.NeighborGraph.load(path).k == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]  # no temporary left behind


def test_crash_while_saving_leaves_nothing_half_written(tmp_path, monkeypatch):
    g = datagauge.neighbor_graph(_data(), k=3)
    path = g.save(tmp_path / "g")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        datagauge.neighbor_graph(_data(seed=3), k=5).save(path, overwrite=True)
    monkeypatch.undo()
    assert datagauge.NeighborGraph.load(path).k == 3  # the old graph, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]


def test_load_rejects_other_data_and_damaged_files(tmp_path):
    x = _data()
    g = datagauge.neighbor_graph(x, k=5)
    path = g.save(tmp_path / "g")
    with pytest.raises(ValueError, match="differ from the data this graph was built from"):
        datagauge.NeighborGraph.load(path, embeddings=x[::-1])
    with pytest.raises(ValueError, match=r"shape \(599, 8\)"):
        datagauge.NeighborGraph.load(path, embeddings=x[:599])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datagauge.NeighborGraph.load(tmp_path / "nothing")
    with pytest.raises(ValueError, match=r"no graph\.json"):
        datagauge.NeighborGraph.load(tmp_path)
    # A truncated array file.
    file = path / "distances.npy"
    file.write_bytes(file.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated"):
        datagauge.NeighborGraph.load(path)
    # A damaged description.
    path2 = g.save(tmp_path / "g2")
    (path2 / "graph.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable saved NeighborGraph"):
        datagauge.NeighborGraph.load(path2)


def test_coverage_accepts_a_graph():
    rng = np.random.default_rng(4)
    x = rng.random((800, 6)).astype(np.float32)
    y = rng.integers(0, 3, 800)
    g = datagauge.neighbor_graph(x, k=25)
    for radius_type in ("adaptive", "naive"):
        a = datagauge.coverage(g, k=20, radius_type=radius_type)
        b = datagauge.coverage(x, k=20, radius_type=radius_type)
        np.testing.assert_array_equal(a.uncovered_indices, b.uncovered_indices)
        np.testing.assert_array_equal(a.critical_value_radii, b.critical_value_radii)
        assert a.coverage_radius == b.coverage_radius
    with_classes = datagauge.coverage(x, k=20, labels=y, graph=g)
    plain = datagauge.coverage(x, k=20, labels=y)
    np.testing.assert_array_equal(with_classes.uncovered_indices, plain.uncovered_indices)
    np.testing.assert_array_equal(
        with_classes.per_class.adaptive_radius, plain.per_class.adaptive_radius
    )


def test_coverage_graph_errors():
    rng = np.random.default_rng(5)
    x = rng.random((300, 4)).astype(np.float32)
    g = datagauge.neighbor_graph(x, k=10)
    with pytest.raises(ValueError, match="holds 10 neighbours per point but k=20"):
        datagauge.coverage(g, k=20)
    with pytest.raises(ValueError, match="per-class coverage"):
        datagauge.coverage(g, k=5, labels=np.zeros(300))
    with pytest.raises(ValueError, match="normalize=True"):
        datagauge.coverage(g, k=5, normalize=True)
    with pytest.raises(ValueError, match="differ from the data"):
        datagauge.coverage(x + 1, k=5, graph=g)
    with pytest.raises(TypeError, match="NeighborGraph"):
        datagauge.coverage(x, k=5, graph=np.zeros((300, 10)))
    with pytest.raises(ValueError, match="unit cube"):
        datagauge.coverage(datagauge.neighbor_graph(x * 5, k=10), k=5, radius_type="naive")


def test_graph_frames():
    x = _data(50, 3)
    g = datagauge.neighbor_graph(x, k=4)
    frame = g.to_dataframe()
    assert list(frame.columns) == ["sample", "rank", "neighbor", "distance"]
    assert len(frame) == 200
    assert frame["rank"].max() == 4
    csr = g.to_csr()
    assert csr.shape == (50, 50)
    assert csr.nnz == 200
    np.testing.assert_allclose(csr[0, g.indices[0, 2]], g.distances[0, 2])
    d = g.to_dict()
    assert d["k"] == 4
    assert d["n_samples"] == 50
    assert len(d["indices"]) == 50


def test_atomic_writes_keep_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    _atomic.save_json(target, {"a": 1})

    def crash() -> None:
        with _atomic.atomic_open(target) as f:
            f.write(b"half")
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        crash()
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        _atomic.write_text(target, "x", overwrite=False)
    with pytest.raises(ValueError, match="Out of range float"):
        _atomic.save_json(target, {"a": float("nan")})
    assert json.loads(Path(target).read_text()) == {"a": 1}
    _atomic.save_npy(tmp_path / "a.npy", np.arange(3))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(3))


def test_lazy_dask_graph_saves_and_serves_the_analyses(tmp_path):
    dask_array = pytest.importorskip("dask.array")
    import datagauge.dask

    x = _data(900, 5)
    x[800] = x[1]
    g = datagauge.dask.neighbor_graph(dask_array.from_array(x, chunks=(250, -1)), k=6)
    assert not isinstance(g.indices, np.ndarray)  # lazy until computed
    expected = datagauge.neighbor_graph(x, k=6)
    loaded = datagauge.NeighborGraph.load(g.save(tmp_path / "g"), embeddings=x)
    np.testing.assert_array_equal(loaded.indices, expected.indices)
    np.testing.assert_array_equal(loaded.distances, expected.distances)
    np.testing.assert_array_equal(loaded.duplicate_of, expected.duplicate_of)
    assert loaded.duplicate_of[800] == 1
    np.testing.assert_array_equal(
        datagauge.coverage(g, k=6).uncovered_indices, datagauge.coverage(x, k=6).uncovered_indices
    )


def test_a_damaged_graph_is_refused_before_any_analysis(tmp_path):
    x = _data(100, 3)
    path = datagauge.neighbor_graph(x, k=4).save(tmp_path / "g")
    indices = np.load(path / "indices.npy")
    indices[3, 1] = 1000  # no such point
    with open(path / "indices.npy", "r+b") as f:  # same size: passes the truncation check
        np.save(f, indices)
    with pytest.raises(ValueError, match=r"neighbour indices outside \[0, 100\)"):
        datagauge.coverage(datagauge.NeighborGraph.load(path), k=4)
    graph = datagauge.neighbor_graph(x, k=4)
    swapped = graph.distances[:, ::-1].copy()
    from dataclasses import replace

    with pytest.raises(ValueError, match="not ascending"):
        as_graph(replace(graph, distances=swapped), 4)


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        _atomic.write_text(tmp_path / "a.txt", "x")
        with _atomic.atomic_dir(tmp_path / "d") as folder:
            (folder / "f").write_text("y")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_save_overwrites_only_a_saved_graph(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    graph = datagauge.neighbor_graph(x, 3)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved graph"):
        graph.save(folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me"
    plain = tmp_path / "file.txt"
    plain.write_text("keep me too")
    with pytest.raises(FileExistsError, match="not a saved graph"):
        graph.save(plain, overwrite=True)
    assert plain.read_text() == "keep me too"
    saved = graph.save(tmp_path / "g")
    with pytest.raises(FileExistsError, match="already exists"):
        graph.save(saved)
    graph.save(saved, overwrite=True)  # a saved graph is replaced when asked
    assert (saved / "graph.json").is_file()
