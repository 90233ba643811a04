"""Wide data (few points, many features), HNSW's device, and merge_neighbors' input checks."""

from __future__ import annotations

import numpy as np
import pytest

import datagauge
from datagauge import neighbors
from test_neighbors import assert_valid_with_ties, oracle_distances, oracle_knn


def _no_eigh(*args, **kwargs):
    raise AssertionError("a d x d eigendecomposition was computed (np.linalg.eigh)")


@pytest.fixture
def no_frame(monkeypatch):
    """Fails a test that builds a d x d frame (its eigenvectors come from np.linalg.eigh)."""
    monkeypatch.setattr(np.linalg, "eigh", _no_eigh)
    monkeypatch.setattr(neighbors.np.linalg, "eigh", _no_eigh)


def _wide(n: int, d: int, seed: int = 0, kind: str = "normal") -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "integers":  # squared distances below 2^24: exact in float32, ties exact
        return rng.integers(0, 4, size=(n, d)).astype(np.float32)
    return rng.normal(size=(n, d)).astype(np.float32)


def assert_wide_oracle(x, dist, idx, k, kind):
    """The oracle's answer. Integer data: exactly (ties checked as ties). Normal data (three
    points, no near ties): its neighbours, and its distances up to the engines' float32 sums
    over d features (a relative error of a few sqrt(d) 2^-24; 1.2e-5 seen at d = 100,000)."""
    assert dist.dtype == np.float32
    assert idx.dtype == np.int64
    assert dist.shape == idx.shape == (x.shape[0], k)
    if kind == "integers":
        assert_valid_with_ties(x, dist, idx, k)
        return
    od, oi = oracle_knn(x, k)
    np.testing.assert_array_equal(idx, oi)
    np.testing.assert_allclose(dist, od, rtol=1e-4, atol=0)


WIDE = [(3, 100_000, 2, "normal"), (3, 100_000, 2, "integers"), (50, 5000, 7, "integers")]


@pytest.mark.parametrize(("n", "d", "k", "kind"), WIDE)
def test_wide_data_go_to_brute_force_without_a_frame(no_frame, n, d, k, kind):
    # Fewer points than features: no d x d frame (at 100,000 features, 75 GiB), and the
    # exact answer. The frame must not be built.
    x = _wide(n, d, 0, kind)
    dist, idx = datagauge.kneighbors(x, k, device="cpu")
    assert_wide_oracle(x, dist, idx, k, kind)
    brute = datagauge.kneighbors(x, k, index="brute")
    np.testing.assert_array_equal(dist, brute[0])  # the same engine's arithmetic, bit for bit
    np.testing.assert_array_equal(idx, brute[1])
    chosen = neighbors._auto_engine(x, k, neighbors.Exact(), 1, "cpu")
    assert chosen == neighbors._brute_engine(x, k)  # an engine name, not a probed tree


@pytest.mark.parametrize(("n", "d", "k", "kind"), WIDE)
def test_wide_data_kdtree_asked_for_is_built_unrotated(no_frame, n, d, k, kind):
    # A kd-tree asked for explicitly over wide data is built in the original coordinates
    # (any frame gives the same answer; this one needs no d x d matrix).
    x = _wide(n, d, 1, kind)
    assert neighbors.frame_for(x) is None
    dist, idx = datagauge.kneighbors(x, k, index="kdtree")
    assert_wide_oracle(x, dist, idx, k, kind)


def test_wide_data_coverage_and_spanning_tree(no_frame):
    x = _wide(3, 100_000, 2)
    od, _ = oracle_knn(x, 2)
    res = datagauge.coverage(x, 2, percent=0.5)
    np.testing.assert_allclose(res.critical_value_radii, od[:, 1], rtol=1e-4)
    tree = datagauge.minimum_spanning_tree(x)
    # Three points: the spanning tree is the two shortest of the three pairs.
    pairs = oracle_distances(x)[np.triu_indices(3, 1)]
    np.testing.assert_allclose(np.sort(tree.distances), np.sort(pairs)[:2], rtol=1e-4)


def test_frame_pays_only_where_points_outnumber_features():
    assert neighbors.frame_pays(100, 100)
    assert not neighbors.frame_pays(99, 100)
    # Data with as many points as features still get their rotated tree.
    x = _wide(40, 20, 3)
    frame = neighbors.frame_for(x)
    assert frame is not None
    assert frame.basis.shape == (20, 20)
    assert neighbors.frame_for(x[:19]) is None


def test_auto_engine_keeps_probing_where_the_points_are_many(monkeypatch):
    # At 8 points per feature and more the probe still runs (a tree may be kept); below it
    # the frame is never made.
    x = _wide(8 * 16, 16, 4)
    built = []
    real = neighbors.build_tree

    def spy(rows, *args, **kwargs):
        built.append(rows.shape[0])
        return real(rows, *args, **kwargs)

    monkeypatch.setattr(neighbors, "build_tree", spy)
    neighbors._auto_engine(x, 5, neighbors.Exact(), 1, "cpu")
    assert built == [x.shape[0]]
    built.clear()
    neighbors._auto_engine(x[:-1], 5, neighbors.Exact(), 1, "cpu")
    assert built == []


# --------------------------------------------------------------------------- HNSW device


@pytest.mark.parametrize("index", ["hnsw", datagauge.HNSW(ef_search=16)])
def test_hnsw_on_gpu_is_refused_on_any_machine(index):
    # FAISS has no GPU HNSW: device="gpu" is refused whether or not a GPU is present (never
    # a silent CPU run), and the message names what works.
    x = _wide(60, 8, 5)
    with pytest.raises(ValueError, match=r"HNSW runs on the CPU only.*device='cpu'.*'flat'"):
        datagauge.kneighbors(x, 3, index=index, device="gpu")
    dist, idx = datagauge.kneighbors(x, 3, index=index, device="cpu")
    assert dist.shape == idx.shape == (60, 3)


# --------------------------------------------------------------------------- merge_neighbors


def _good():
    return (np.array([[0.5, 2.0]], np.float32), np.array([[2, 3]]))


@pytest.mark.parametrize("bad_index", [-5, -2])
def test_merge_rejects_negative_indices_other_than_missing(bad_index):
    bad = (np.array([[1.0, 3.0]], np.float32), np.array([[0, bad_index]]))
    with pytest.raises(
        ValueError, match=rf"partial result b has index {bad_index} .*\(\+inf, -1\)"
    ):
        datagauge.merge_neighbors(_good(), bad, 2)
    # Even with the missing entry's infinite distance, only -1 marks one.
    bad = (np.array([[1.0, np.inf]], np.float32), np.array([[0, bad_index]]))
    with pytest.raises(ValueError, match=rf"index {bad_index}"):
        datagauge.merge_neighbors(bad, _good(), 2)


def test_merge_rejects_a_missing_marker_with_a_finite_distance():
    bad = (np.array([[1.0, 3.0]], np.float32), np.array([[0, -1]]))
    with pytest.raises(ValueError, match=r"index -1 with distance 3\.0 at row 0, column 1"):
        datagauge.merge_neighbors(_good(), bad, 2)


@pytest.mark.parametrize("value", [4.5, np.nan, np.inf, 1e30])
def test_merge_rejects_float_indices_that_are_not_whole_numbers(value):
    bad = (np.array([[1.0, 3.0]], np.float32), np.array([[0.0, value]]))
    with pytest.raises(ValueError, match=r"not a whole number.*Pass the indices as integers"):
        datagauge.merge_neighbors(_good(), bad, 2)


def test_merge_accepts_whole_float_indices_as_integers():
    part = (np.array([[1.0, 3.0]], np.float32), np.array([[0.0, 4.0]]))
    dist, idx = datagauge.merge_neighbors(_good(), part, 3)
    np.testing.assert_array_equal(idx, [[2, 0, 3]])
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(dist, np.array([[0.5, 1.0, 2.0]], np.float32))


@pytest.mark.parametrize("idx", [np.array([[True, False]]), np.array([[1 + 0j, 2 + 0j]])])
def test_merge_rejects_indices_that_are_not_numbers_of_rows(idx):
    with pytest.raises(ValueError, match=r"indices of dtype"):
        datagauge.merge_neighbors(_good(), (np.array([[1.0, 3.0]], np.float32), idx), 2)


def test_merge_rejects_unsigned_indices_beyond_int64():
    idx = np.array([[1, 2**63]], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"beyond the int64 range"):
        datagauge.merge_neighbors(_good(), (np.array([[1.0, 3.0]], np.float32), idx), 2)
