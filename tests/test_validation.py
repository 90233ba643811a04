"""Invalid input: the right exception type, and a message that says how to fix it."""

from __future__ import annotations

import faiss
import numba
import numpy as np
import pytest

import datagauge
from datagauge import _core
from datagauge._threads import thread_limits


@pytest.fixture
def x():
    return np.random.default_rng(0).random((30, 3)).astype(np.float32)


# --------------------------------------------------------------------------- embeddings


def test_nan(x):
    x[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN .* row 4.*remove or impute"):
        datagauge.coverage(x, 5)


def test_positive_inf(x):
    x[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"1 infinite .* row 7.*np\.isfinite"):
        datagauge.coverage(x, 5)


def test_negative_inf_in_float64(x):
    x64 = x.astype(np.float64)
    x64[2, 2] = -np.inf
    with pytest.raises(ValueError, match=r"infinite values.*remove or impute"):
        datagauge.kneighbors(x64, 5)


def test_one_dimensional(x):
    with pytest.raises(ValueError, match=r"must be 2-D.*reshape\(-1, 1\)"):
        datagauge.coverage(x[:, 0], 5)


def test_three_dimensional():
    images = np.zeros((10, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"got 3-D.*reshape\(len\(embeddings\), -1\)"):
        datagauge.coverage(images, 3)


def test_zero_rows():
    with pytest.raises(ValueError, match=r"is empty.*at least one sample"):
        datagauge.coverage(np.zeros((0, 3), dtype=np.float32), 1)


def test_zero_features():
    with pytest.raises(ValueError, match=r"is empty.*one feature"):
        datagauge.coverage(np.zeros((10, 0), dtype=np.float32), 1)


def test_k_not_less_than_n(x):
    with pytest.raises(ValueError, match=r"less than the number of samples \(30\).*k <= 29"):
        datagauge.coverage(x, 30)
    with pytest.raises(ValueError, match=r"k <= 29 or add data"):
        datagauge.kneighbors(x, 31)


@pytest.mark.parametrize("k", [0, -3])
def test_k_below_one(x, k):
    with pytest.raises(ValueError, match=r"k must be >= 1"):
        datagauge.coverage(x, k)


@pytest.mark.parametrize("k", [2.5, True, "5", 5.0, None])
def test_k_not_an_int(x, k):
    with pytest.raises(TypeError, match=r"k must be an integer"):
        datagauge.coverage(x, k)


def test_k_numpy_integer_accepted(x):
    assert datagauge.coverage(x, np.int64(5)).k == 5


@pytest.mark.parametrize("percent", [0, 0.0, -0.1])
def test_percent_not_positive(x, percent):
    with pytest.raises(ValueError, match=r"strictly between 0 and 1 \(a fraction, e\.g\. 0\.01"):
        datagauge.coverage(x, 5, percent=percent)


@pytest.mark.parametrize("percent", [1, 1.0, 5.0])
def test_percent_not_below_one(x, percent):
    with pytest.raises(ValueError, match=r"strictly between 0 and 1 \(a fraction, e\.g\. 0\.01"):
        datagauge.coverage(x, 5, percent=percent)


def test_percent_nan(x):
    with pytest.raises(ValueError, match=r"strictly between 0 and 1"):
        datagauge.coverage(x, 5, percent=float("nan"))


@pytest.mark.parametrize("percent", ["0.1", None, True, [0.1]])
def test_percent_not_a_number(x, percent):
    with pytest.raises(TypeError, match=r"percent must be a number in \(0, 1\)"):
        datagauge.coverage(x, 5, percent=percent)


def test_labels_wrong_length(x):
    with pytest.raises(ValueError, match=r"29 entries but the embeddings have 30 rows.*one label"):
        datagauge.coverage(x, 5, labels=np.zeros(29))


def test_labels_two_dimensional(x):
    one_hot = np.eye(3)[np.arange(30) % 3]
    with pytest.raises(ValueError, match=r"must be 1-D.*labels\.argmax\(axis=1\)"):
        datagauge.coverage(x, 5, labels=one_hot)


def test_labels_with_nan(x):
    labels = np.arange(30, dtype=np.float64) % 3
    labels[5] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite.*every sample needs a label"):
        datagauge.coverage(x, 5, labels=labels)


def test_labels_object_dtype(x):
    labels = np.array([object()] * 30, dtype=object)
    with pytest.raises(TypeError, match=r"integers, strings or floats.*np\.asarray"):
        datagauge.coverage(x, 5, labels=labels)


@pytest.mark.parametrize(
    "bad",
    [
        np.array([["a", "b"], ["c", "d"], ["e", "f"]]),
        np.array([[1, 2], [3, 4], [5, 6]], dtype=object),
        np.ones((3, 2), dtype=bool),
        np.array([[b"a", b"b"], [b"c", b"d"], [b"e", b"f"]]),
        np.zeros((3, 2), dtype="datetime64[s]"),
    ],
    ids=["str", "object", "bool", "bytes", "datetime"],
)
def test_non_numeric_dtype(bad):
    with pytest.raises(TypeError, match=r"must hold real numbers.*dtype=np\.float32"):
        datagauge.coverage(bad, 1)


def test_complex_dtype():
    with pytest.raises(TypeError, match=r"real numbers, got dtype complex128.*np\.asarray"):
        datagauge.coverage(np.ones((5, 2), dtype=complex), 1)


def test_unknown_radius_type(x):
    with pytest.raises(ValueError, match=r"radius_type must be one of 'adaptive', 'naive'"):
        datagauge.coverage(x, 5, radius_type="Adaptive")


def test_unknown_index_name(x):
    match = r"index must be one of 'exact', 'kdtree', 'brute', 'screen', 'flat'"
    with pytest.raises(ValueError, match=match):
        datagauge.coverage(x, 5, index="annoy")


def test_unknown_exact_engine(x):
    match = r"Exact.engine must be one of 'auto', 'kdtree', 'brute', 'screen', 'flat'"
    with pytest.raises(ValueError, match=match):
        datagauge.kneighbors(x, 5, index=datagauge.Exact(engine="ball_tree"))


@pytest.mark.parametrize("block_size", [0, -1])
def test_bad_block_size(x, block_size):
    with pytest.raises(ValueError, match=r"block_size must be >= 1"):
        datagauge.kneighbors(x, 5, index=datagauge.Exact(block_size=block_size))


def test_unknown_device(x):
    with pytest.raises(ValueError, match=r"device must be one of 'auto', 'cpu', 'gpu'"):
        datagauge.coverage(x, 5, device="cuda")


def test_device_gpu_without_gpu(x):
    from datagauge.neighbors import gpu_available

    if gpu_available():
        pytest.skip("FAISS sees a GPU here")
    with pytest.raises(RuntimeError, match=r"install faiss-gpu .* or use device='cpu'"):
        datagauge.coverage(x, 5, index="flat", device="gpu")


def test_n_jobs_zero(x):
    with pytest.raises(ValueError, match=r"use None or -1 for all CPUs"):
        datagauge.coverage(x, 5, n_jobs=0)


def test_n_jobs_not_an_int(x):
    with pytest.raises(TypeError, match=r"n_jobs must be an integer"):
        datagauge.coverage(x, 5, n_jobs=1.5)


def test_beyond_float32_range(x):
    x64 = x.astype(np.float64)
    x64[3, 0] = 1e39
    with pytest.raises(ValueError, match=r"too large for float32.*row 3.*rescale"):
        datagauge.coverage(x64, 5)


def test_ragged_nested_list():
    with pytest.raises(TypeError, match=r"could not be read as an array.*rectangular"):
        datagauge.coverage([[0.1, 0.2], [0.3]], 1)


def test_none():
    with pytest.raises(TypeError, match=r"embeddings is None; pass an array of shape"):
        datagauge.coverage(None, 1)


def test_nested_list_accepted():
    result = datagauge.coverage([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], 1)
    assert result.critical_value_radii.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_input_not_modified(x):
    before = x.copy()
    datagauge.coverage(x, 5, radius_type="naive", normalize=True)
    np.testing.assert_array_equal(x, before)
    assert x.flags.writeable


def test_merge_neighbors_shapes():
    a = (np.zeros((3, 2), np.float32), np.zeros((3, 2), np.int64))
    with pytest.raises(ValueError, match=r"same shape"):
        datagauge.merge_neighbors(a, (np.zeros((3, 2), np.float32), np.zeros((3, 3))), 2)
    with pytest.raises(ValueError, match=r"one row per query"):
        datagauge.merge_neighbors(a, (np.zeros((4, 2), np.float32), np.zeros((4, 2))), 2)
    with pytest.raises(ValueError, match=r"k must be >= 1"):
        datagauge.merge_neighbors(a, a, 0)


def test_approximate_index_short_rows_are_completed_exactly():
    # An IVF probing one cell finds fewer than k candidates for some points. Those rows must not
    # reach the coverage selection as +inf radii: they are redone by an exact search.
    from datagauge.neighbors import _faiss_index_knn

    rng = np.random.default_rng(1)
    x = rng.random((600, 16)).astype(np.float32)
    spec = datagauge.IVF(nlist=40, nprobe=1, engine="faiss")
    _, raw_idx = _faiss_index_knn(x, 10, spec, 1, "cpu")
    short = np.flatnonzero(raw_idx[:, -1] < 0)
    assert short.size > 0  # the situation really arises, so the test can fail

    dist, idx = datagauge.kneighbors(x, 10, index=spec)
    assert (idx >= 0).all()
    assert np.isfinite(dist).all()
    exact_d, exact_i = datagauge.kneighbors(x, 10)
    np.testing.assert_array_equal(idx[short], exact_i[short])
    np.testing.assert_array_equal(dist[short], exact_d[short])
    assert np.isfinite(datagauge.coverage(x, 10, index=spec).critical_value_radii).all()


def test_user_faiss_index_with_labels():
    # The global search uses the user's index; classes get their own search.
    rng = np.random.default_rng(2)
    x = rng.random((300, 16)).astype(np.float32)
    labels = rng.integers(0, 3, 300)
    result = datagauge.coverage(x, 10, labels=labels, index=faiss.IndexFlatL2(16))
    expected = datagauge.coverage(x, 10, labels=labels)
    np.testing.assert_array_equal(result.uncovered_indices, expected.uncovered_indices)
    np.testing.assert_array_equal(
        result.per_class.adaptive_radius, expected.per_class.adaptive_radius
    )


# --------------------------------------------------------------------------- the compiled core

INCOMPATIBLE = "incompatible (function|constructor) arguments"


def f32(*shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def bad_layouts(arr):
    """The same values as a wrong dtype, Fortran order and a non-contiguous view."""
    wider = np.concatenate([arr, arr], axis=-1)
    return {
        "float64": arr.astype(np.float64),
        "fortran": np.asfortranarray(arr) if arr.ndim == 2 and arr.shape[0] > 1 else None,
        "strided": wider[..., ::2],
    }


LAYOUTS = ["float64", "fortran", "strided"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_core_kdtree_rejects_layout(layout):
    data = bad_layouts(f32(20, 3))[layout]
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        _core.KDTree(data, 8, 0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_core_kdtree_query_rejects_layout(layout):
    tree = _core.KDTree(f32(20, 3), 8, 0)
    queries = bad_layouts(f32(5, 3))[layout]
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        tree.query(queries, 2)
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        tree.query(f32(5, 3), 2, np.arange(5, dtype=np.int32))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("which", ["data", "queries"])
def test_core_refine_rejects_layout(layout, which):
    args = {
        "data": f32(20, 3),
        "queries": f32(5, 3),
        "candidates": np.zeros((5, 4), dtype=np.int64),
    }
    args[which] = bad_layouts(args[which])[layout]
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        _core.refine_candidates(args["data"], args["queries"], args["candidates"], None, 2, 1)


@pytest.mark.parametrize(
    "candidates",
    [
        np.zeros((5, 4), dtype=np.int32),
        np.zeros((5, 4), dtype=np.float32),
        np.asfortranarray(np.zeros((5, 4), dtype=np.int64)),
        np.zeros((5, 8), dtype=np.int64)[:, ::2],
    ],
    ids=["int32", "float32", "fortran", "strided"],
)
def test_core_refine_rejects_candidates(candidates):
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        _core.refine_candidates(f32(20, 3), f32(5, 3), candidates, None, 2, 1)


@pytest.mark.parametrize("position", [0, 1, 2, 3])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_core_merge_rejects_layout(position, layout):
    args = [
        f32(4, 3),
        np.zeros((4, 3), dtype=np.int64),
        f32(4, 3, seed=1),
        np.ones((4, 3), dtype=np.int64),
    ]
    bad = bad_layouts(args[position])[layout]
    if position in (1, 3) and layout == "float64":
        bad = args[position].astype(np.int32)
    args[position] = bad
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        _core.merge_topk(*args, 3)


@pytest.mark.parametrize(
    "radii",
    [
        np.ones(10, dtype=np.float64),
        np.ones(10, dtype=np.float16),
        np.ones(20, dtype=np.float32)[::2],
        [1.0, 2.0, 3.0],
    ],
    ids=["float64", "float16", "strided", "list"],
)
def test_core_coverage_rejects_layout(radii):
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        _core.coverage_adaptive(radii, 1)
    with pytest.raises(TypeError, match=INCOMPATIBLE):
        _core.coverage_threshold(radii, 0.5)


def test_core_kdtree_value_errors():
    with pytest.raises(ValueError, match=r"data must be 2-D"):
        _core.KDTree(f32(10), 8, 0)
    with pytest.raises(ValueError, match=r"data must be 2-D"):
        _core.KDTree(f32(2, 3, 4), 8, 0)
    with pytest.raises(ValueError, match=r"non-empty"):
        _core.KDTree(np.zeros((0, 3), dtype=np.float32), 8, 0)
    with pytest.raises(ValueError, match=r"non-empty"):
        _core.KDTree(np.zeros((3, 0), dtype=np.float32), 8, 0)
    with pytest.raises(ValueError, match=r"leaf_size must be >= 1"):
        _core.KDTree(f32(10, 2), 0, 0)
    with pytest.raises(ValueError, match=r"index_offset must be >= 0"):
        _core.KDTree(f32(10, 2), 8, -1)


def test_core_kdtree_query_value_errors():
    tree = _core.KDTree(f32(10, 2), 4, 0)
    with pytest.raises(ValueError, match=r"queries have 3 features but the tree has 2"):
        tree.query(f32(5, 3), 2)
    with pytest.raises(ValueError, match=r"queries must be 2-D"):
        tree.query(f32(5), 2)
    for k in (0, -1):
        with pytest.raises(ValueError, match=r"k must be >= 1"):
            tree.query(f32(5, 2), k)
        with pytest.raises(ValueError, match=r"k must be >= 1"):
            tree.self_query(k)
    with pytest.raises(ValueError, match=r"exclude has 4 rows but queries has 5"):
        tree.query(f32(5, 2), 2, np.arange(4, dtype=np.int64))
    with pytest.raises(ValueError, match=r"exclude must be 1-D"):
        tree.query(f32(5, 2), 2, np.zeros((5, 1), dtype=np.int64))


def test_core_kdtree_empty_queries_and_large_k():
    tree = _core.KDTree(f32(10, 2), 4, 0)
    dist, idx = tree.query(np.zeros((0, 2), dtype=np.float32), 3)
    assert dist.shape == idx.shape == (0, 3)
    dist, idx = tree.self_query(15)  # more than the 9 others: padded
    assert np.all(idx[:, 9:] == -1)
    assert np.all(np.isposinf(dist[:, 9:]))


def test_core_refine_value_errors():
    data, queries = f32(20, 3), f32(5, 3)
    cand = np.zeros((5, 4), dtype=np.int64)
    with pytest.raises(ValueError, match=r"same number of features"):
        _core.refine_candidates(data, f32(5, 2), cand, None, 2, 1)
    with pytest.raises(ValueError, match=r"candidates has 4 rows but queries has 5"):
        _core.refine_candidates(data, queries, cand[:4], None, 2, 1)
    with pytest.raises(ValueError, match=r"candidates must be 2-D"):
        _core.refine_candidates(data, queries, cand[:, 0].copy(), None, 2, 1)
    with pytest.raises(ValueError, match=r"k must be >= 1"):
        _core.refine_candidates(data, queries, cand, None, 0, 1)
    with pytest.raises(ValueError, match=r"exclude has 3 rows but queries has 5"):
        _core.refine_candidates(data, queries, cand, np.arange(3, dtype=np.int64), 2, 1)
    with pytest.raises(ValueError, match=r"data must be 2-D"):
        _core.refine_candidates(f32(20), queries, cand, None, 2, 1)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_core_refine_candidate_out_of_range(n_threads):
    # A candidate beyond the data is an error raised to Python (from any worker thread).
    cand = np.full((600, 4), 3, dtype=np.int64)
    cand[550, 2] = 20
    with pytest.raises(IndexError, match=r"candidate index out of range"):
        _core.refine_candidates(f32(20, 3), f32(600, 3), cand, None, 2, n_threads)


def test_core_merge_value_errors():
    d, i = f32(4, 3), np.zeros((4, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=r"k must be >= 1"):
        _core.merge_topk(d, i, d, i, 0)
    with pytest.raises(ValueError, match=r"same shape"):
        _core.merge_topk(d, np.zeros((4, 2), dtype=np.int64), d, i, 2)
    with pytest.raises(ValueError, match=r"second partial list has 5 rows but the first has 4"):
        _core.merge_topk(d, i, f32(5, 3), np.zeros((5, 3), dtype=np.int64), 2)
    with pytest.raises(ValueError, match=r"partial lists must be 2-D"):
        _core.merge_topk(f32(4), np.zeros(4, dtype=np.int64), d, i, 2)


def test_core_coverage_value_errors():
    radii = f32(10)
    for selection in (0, -1, 11):
        with pytest.raises(ValueError, match=r"selection must be in \[1, n\]"):
            _core.coverage_adaptive(radii, selection)
    with pytest.raises(ValueError, match=r"at least one radius"):
        _core.coverage_adaptive(np.zeros(0, dtype=np.float32), 1)
    with pytest.raises(ValueError, match=r"radii must be 1-D"):
        _core.coverage_adaptive(f32(2, 5), 1)
    with pytest.raises(ValueError, match=r"radii must be 1-D"):
        _core.coverage_threshold(f32(2, 5), 0.5)
    bad = radii.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"radii must be finite"):
        _core.coverage_adaptive(bad, 2)


def test_core_coverage_adaptive_selection_n():
    radii = np.array([0.5, 2.0, 1.0], dtype=np.float32)
    uncovered, radius = _core.coverage_adaptive(radii, 3)
    assert uncovered.tolist() == [1, 2, 0]
    assert radius == 0.5
    uncovered, radius = _core.coverage_adaptive(radii, 1)
    assert uncovered.tolist() == [1]
    assert radius == 1.5
    assert _core.coverage_threshold(radii, 0.5).tolist() == [1, 2]


# --------------------------------------------------------------------------- thread limits


def test_thread_limits_restores():
    faiss.omp_set_num_threads(2)
    numba.set_num_threads(2)
    with thread_limits(1) as n:
        assert n == 1
        assert faiss.omp_get_max_threads() == 1
        assert numba.get_num_threads() == 1
    assert faiss.omp_get_max_threads() == 2
    assert numba.get_num_threads() == 2


def test_thread_limits_restores_when_the_block_raises():
    faiss.omp_set_num_threads(2)
    numba.set_num_threads(2)
    inside = []

    def work():
        with thread_limits(1):
            inside.append((faiss.omp_get_max_threads(), numba.get_num_threads()))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match=r"boom"):
        work()
    assert inside == [(1, 1)]
    assert faiss.omp_get_max_threads() == 2
    assert numba.get_num_threads() == 2


def test_search_restores_threads_after_an_error():
    faiss.omp_set_num_threads(2)
    x = np.random.default_rng(3).random((50, 16)).astype(np.float32)
    index = faiss.IndexFlatL2(16)
    index.add(x[:10])
    with pytest.raises(ValueError, match=r"already holds"):
        datagauge.kneighbors(x, 3, index=index, n_jobs=1)
    assert faiss.omp_get_max_threads() == 2
    datagauge.kneighbors(x, 3, index="flat", n_jobs=1)
    assert faiss.omp_get_max_threads() == 2


@pytest.mark.parametrize("make", [datagauge.IVF, datagauge.HNSW])
@pytest.mark.parametrize(
    ("target", "error", "match"),
    [
        (0.0, ValueError, r"target_recall must be in \(0, 1\]"),
        (1.5, ValueError, r"target_recall must be in \(0, 1\]"),
        ("high", TypeError, r"target_recall must be a number"),
    ],
)
def test_bad_target_recall(make, target, error, match):
    x = np.random.default_rng(0).random((100, 4), dtype=np.float32)
    with pytest.raises(error, match=match):
        datagauge.kneighbors(x, 5, index=make(target_recall=target))


def test_thread_limits_sets_and_restores_torch_only_when_asked():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    # (Without torch=True torch is not set, but FAISS and torch may share one OpenMP runtime,
    # so setting FAISS's count can show in torch's: only the restore is checked then.)
    with thread_limits(target):
        pass
    assert torch.get_num_threads() == before
    inside = []

    def work():
        with thread_limits(target, torch=True):
            inside.append(torch.get_num_threads())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match=r"boom"):
        work()
    assert inside == [target]
    assert torch.get_num_threads() == before


def test_thread_limits_skips_a_module_still_being_imported(monkeypatch):
    # Another thread importing FAISS leaves a half-initialised module in sys.modules.
    import sys
    import types

    half = types.ModuleType("faiss")
    monkeypatch.setitem(sys.modules, "faiss", half)
    with thread_limits(1) as n:
        assert n == 1


def test_one_sample_says_to_add_data():
    with pytest.raises(ValueError, match="there is 1 sample, and neighbours need at least 2"):
        datagauge.kneighbors(np.zeros((1, 3)), 1)


def test_huge_n_jobs_is_a_clear_error():
    x = np.random.default_rng(0).random((50, 3))
    with pytest.raises(ValueError, match="more than datagauge runs"):
        datagauge.kneighbors(x, 3, n_jobs=2**31)


@pytest.mark.parametrize("kind", ["category", "object-series", "object-array", "int-category"])
def test_pandas_and_object_labels_are_accepted_with_their_names(kind):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    names = rng.choice(["cat", "dog"], 300)
    labels = {
        "category": pd.Series(names).astype("category"),
        "object-series": pd.Series(names.astype(object)),
        "object-array": names.astype(object),
        "int-category": pd.Categorical(rng.integers(0, 3, 300)),
    }[kind]
    plain = np.asarray(labels).astype(str if kind != "int-category" else np.int64)
    got = datagauge.coverage(x, k=5, labels=labels).per_class
    want = datagauge.coverage(x, k=5, labels=plain).per_class
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_array_equal(got.count, want.count)
    fam = datagauge.familiarity(x, labels, n_components=1, random_state=0)
    np.testing.assert_array_equal(fam.per_class.labels, want.labels)


def test_missing_pandas_labels_are_a_clear_error():
    pd = pytest.importorskip("pandas")
    x = np.random.default_rng(0).normal(size=(300, 4))
    with pytest.raises(ValueError, match="150 missing values"):
        datagauge.coverage(x, k=5, labels=pd.Series(["a", None] * 150))


def test_random_state_accepts_a_generator_everywhere():
    x = np.random.default_rng(0).normal(size=(2000, 8)).astype(np.float32)
    a = datagauge.neighbor_graph(x, k=5, index=datagauge.IVF(random_state=np.random.default_rng(3)))
    assert a.recall is not None
    with pytest.raises(TypeError, match="random_state must be None, an int >= 0 or a numpy"):
        datagauge.neighbor_graph(x, k=5, index=datagauge.IVF(random_state=1.5))
    from datagauge._validation import seed_from

    assert seed_from(7) == 7
    assert seed_from(np.random.default_rng(1)) == seed_from(np.random.default_rng(1))
    assert 0 <= seed_from(None) < 2**31


@pytest.mark.parametrize(
    "spec",
    [
        lambda v: datagauge.Exact(engine="kdtree", leaf_size=v),
        lambda v: datagauge.Exact(engine="brute", block_size=v),
        lambda v: datagauge.Exact(engine="kdtree", block_size=v),
        lambda v: datagauge.HNSW(ef_search=v),
    ],
)
@pytest.mark.parametrize("value", [2**31, 2**63])
def test_huge_engine_knobs_mean_everything_at_once(spec, value):
    x = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    got = datagauge.neighbor_graph(x, 3, index=spec(value))
    np.testing.assert_array_equal(got.distances, datagauge.neighbor_graph(x, 3).distances)


def test_huge_hnsw_degree_is_a_clear_error():
    x = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    with pytest.raises(ValueError, match=r"HNSW\.m=2147483648 links per point"):
        datagauge.neighbor_graph(x, 3, index=datagauge.HNSW(m=2**31))
