"""Coverage against DataEval 1.1.4's definitions, reimplemented here with numpy/scipy."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform
from scipy.special import gammaln
from sklearn.datasets import load_digits

import datagauge
from datagauge import ClassCoverage, CoverageResult

RADIUS_ATOL = 1e-5


# --------------------------------------------------------------------------- the oracle


def oracle_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance to the k-th nearest neighbour, self excluded (DataEval: sorted row [:, k])."""
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    return np.sort(squareform(pdist(x64)), axis=1)[:, k]


def oracle_naive_radius(n: int, d: int, k: int) -> float:
    return (1 / math.sqrt(math.pi)) * ((2 * k * math.gamma(d / 2 + 1)) / n) ** (1 / d)


def oracle_coverage(x, k, radius_type="adaptive", percent=0.01):
    """(uncovered indices, radii, coverage radius) as DataEval 1.1.4 computes them."""
    n, d = np.shape(x)
    radii = oracle_radii(x, k)
    if radius_type == "naive":
        radius = oracle_naive_radius(n, d, k)
        uncovered = np.flatnonzero(radii > radius)
    else:
        selection = max(int(n * percent), 1)
        uncovered = np.argsort(radii, kind="stable")[::-1][:selection]
        radius = float(np.mean(np.sort(radii)[::-1][selection - 1 : selection + 1]))
    return uncovered, radii, radius


def assert_matches_oracle(result, x, k, radius_type="adaptive", percent=0.01):
    uncovered, radii, radius = oracle_coverage(x, k, radius_type, percent)
    assert isinstance(result, CoverageResult)
    assert result.radius_type == radius_type
    assert result.k == k
    assert result.critical_value_radii.dtype == np.float32
    assert result.uncovered_indices.dtype == np.int64
    np.testing.assert_allclose(result.critical_value_radii, radii, atol=RADIUS_ATOL, rtol=0)
    assert result.coverage_radius == pytest.approx(radius, abs=RADIUS_ATOL)
    if radius_type == "adaptive":
        np.testing.assert_array_equal(result.uncovered_indices, uncovered)
    else:
        assert set(result.uncovered_indices.tolist()) == set(uncovered.tolist())
        assert result.uncovered_indices.size == uncovered.size
    assert_most_isolated_first(result)


def assert_most_isolated_first(result):
    """Radius descending; among equal radii, higher index first."""
    idx = result.uncovered_indices
    r = result.critical_value_radii[idx]
    assert np.all(r[1:] <= r[:-1])
    assert np.all((r[1:] < r[:-1]) | (idx[1:] < idx[:-1]))


def uniform(seed: int, n: int, d: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


# --------------------------------------------------------------------------- oracle tests


@pytest.mark.parametrize("radius_type", ["adaptive", "naive"])
@pytest.mark.parametrize(
    ("n", "d", "k"), [(50, 1, 3), (200, 2, 5), (300, 3, 20), (500, 8, 20), (400, 24, 10)]
)
def test_matches_dataeval(radius_type, n, d, k):
    x = uniform(n + d + k, n, d)
    result = datagauge.coverage(x, k, radius_type=radius_type)
    assert_matches_oracle(result, x, k, radius_type)


@pytest.mark.parametrize("percent", [0.001, 0.01, 0.05, 0.1, 0.5, 0.99])
def test_adaptive_percent(percent):
    x = uniform(3, 300, 4)
    result = datagauge.coverage(x, 10, percent=percent)
    assert result.uncovered_indices.size == max(int(300 * percent), 1)
    assert_matches_oracle(result, x, 10, "adaptive", percent)


@pytest.mark.parametrize(
    "index",
    [
        "kdtree",
        "flat",
        pytest.param(datagauge.Exact(engine="kdtree", block_size=3), id="kdtree-block3"),
        pytest.param(datagauge.Exact(engine="flat", block_size=1), id="flat-block1"),
        pytest.param(datagauge.Exact(engine="flat", block_size=41), id="flat-block41"),
    ],
)
def test_engines_match_dataeval(index):
    x = uniform(4, 150, 5)
    for radius_type in ("adaptive", "naive"):
        result = datagauge.coverage(x, 6, radius_type=radius_type, index=index)
        assert_matches_oracle(result, x, 6, radius_type)


def test_adaptive_on_any_range():
    # Adaptive works on data far outside [0, 1].
    x = (uniform(5, 300, 6) - 0.5) * np.float32(200.0)
    result = datagauge.coverage(x, 15, percent=0.05)
    uncovered, radii, radius = oracle_coverage(x, 15, "adaptive", 0.05)
    np.testing.assert_array_equal(result.uncovered_indices, uncovered)
    np.testing.assert_allclose(result.critical_value_radii, radii, rtol=1e-5)
    assert result.coverage_radius == pytest.approx(radius, rel=1e-5)


def test_adaptive_large_offset_high_dim():
    # Embeddings with a large common offset (ReLU features, unnormalised outputs): the
    # critical radii must not depend on the translation.
    x = uniform(6, 2000, 64) + np.float32(1000.0)
    result = datagauge.coverage(x, 20)
    uncovered, radii, radius = oracle_coverage(x, 20, "adaptive", 0.01)
    np.testing.assert_allclose(result.critical_value_radii, radii, rtol=1e-5)
    np.testing.assert_array_equal(result.uncovered_indices, uncovered)
    assert result.coverage_radius == pytest.approx(radius, rel=1e-5)


def test_adaptive_with_tied_radii_orders_higher_index_first():
    # Integer grid: many equal radii, ties broken as np.argsort(kind="stable")[::-1] does.
    x = np.random.default_rng(7).integers(0, 4, (400, 2)).astype(np.float32)
    result = datagauge.coverage(x, 8, percent=0.2)
    assert_matches_oracle(result, x, 8, "adaptive", 0.2)


def test_naive_uncovered_are_radii_strictly_greater():
    x = uniform(8, 400, 3)
    result = datagauge.coverage(x, 10, radius_type="naive")
    radius = datagauge.naive_radius(400, 3, 10)
    assert result.coverage_radius == radius
    expected = np.flatnonzero(result.critical_value_radii > radius)
    assert set(result.uncovered_indices.tolist()) == set(expected.tolist())


def test_naive_outside_unit_cube_needs_normalize():
    x = uniform(9, 200, 4) * np.float32(3.0) - np.float32(1.0)
    with pytest.raises(ValueError, match=r"normalize=True"):
        datagauge.coverage(x, 5, radius_type="naive")
    with pytest.raises(ValueError, match=r"normalize=True"):
        datagauge.coverage(x + np.float32(1.0), 5, radius_type="naive")
    result = datagauge.coverage(x, 5, radius_type="naive", normalize=True)
    x64 = x.astype(np.float64)
    scaled = (x64 - x64.min(axis=0)) / (x64.max(axis=0) - x64.min(axis=0))
    assert_matches_oracle(result, scaled, 5, "naive")


def test_normalize_constant_feature():
    x = uniform(10, 100, 3)
    x[:, 1] = 7.0  # zero span: must not divide by zero
    result = datagauge.coverage(x, 5, radius_type="naive", normalize=True)
    assert np.all(np.isfinite(result.critical_value_radii))
    scaled = x.astype(np.float64)
    scaled[:, 1] = 0.0
    for j in (0, 2):
        col = scaled[:, j]
        scaled[:, j] = (col - col.min()) / (col.max() - col.min())
    assert_matches_oracle(result, scaled, 5, "naive")


@pytest.mark.parametrize(
    ("n", "d", "k"), [(100, 1, 1), (1797, 64, 20), (10, 300, 3), (50, 1000, 5)]
)
def test_naive_radius_formula(n, d, k):
    expected = math.exp(
        (math.log(2 * k) + float(gammaln(d / 2 + 1)) - math.log(n)) / d
    ) / math.sqrt(math.pi)
    assert datagauge.naive_radius(n, d, k) == pytest.approx(expected, rel=1e-12)
    if d <= 300:
        assert datagauge.naive_radius(n, d, k) == pytest.approx(
            oracle_naive_radius(n, d, k), rel=1e-12
        )


# --------------------------------------------------------------------------- per class


def brute_force_per_class(x, labels, k, percent, uncovered):
    classes = np.unique(labels)
    rows = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        n_unc = int(np.isin(uncovered, members).sum())
        if members.size > k:
            _, _, radius = oracle_coverage(x[members], k, "adaptive", percent)
        else:
            radius = np.nan
        rows.append((c, members.size, n_unc, n_unc / members.size, radius))
    return classes, rows


def assert_per_class(result, x, labels, k, percent):
    table = result.per_class
    assert isinstance(table, ClassCoverage)
    classes, rows = brute_force_per_class(x, labels, k, percent, result.uncovered_indices)
    np.testing.assert_array_equal(table.labels, classes)
    np.testing.assert_array_equal(table.count, [r[1] for r in rows])
    np.testing.assert_array_equal(table.n_uncovered, [r[2] for r in rows])
    np.testing.assert_allclose(table.fraction_uncovered, [r[3] for r in rows], rtol=1e-12)
    np.testing.assert_allclose(
        table.adaptive_radius, [r[4] for r in rows], atol=RADIUS_ATOL, rtol=0, equal_nan=True
    )
    assert table.count.sum() == x.shape[0]
    assert table.n_uncovered.sum() == result.uncovered_indices.size
    as_rows = table.rows()
    assert [r[0] for r in as_rows] == table.labels.tolist()
    for got, want in zip(as_rows, rows, strict=True):
        assert got[1:3] == tuple(want[1:3])
        assert all(type(v) is t for v, t in zip(got[1:], (int, int, float, float), strict=True))


@pytest.mark.parametrize("radius_type", ["adaptive", "naive"])
def test_per_class_table(radius_type):
    rng = np.random.default_rng(11)
    x = rng.random((300, 3)).astype(np.float32)
    labels = rng.choice([0, 1, 2, 5], size=300, p=[0.5, 0.3, 0.17, 0.03])
    labels[:4] = 7  # a class with count <= k: NaN radius
    result = datagauge.coverage(x, 8, radius_type=radius_type, labels=labels, percent=0.05)
    assert_per_class(result, x, labels, 8, 0.05)
    table = result.per_class
    assert np.isnan(table.adaptive_radius[table.labels == 7]).all()
    assert np.isfinite(table.adaptive_radius[table.labels == 0]).all()


def test_per_class_string_labels_and_exactly_k_plus_one():
    rng = np.random.default_rng(12)
    x = rng.random((120, 2)).astype(np.float32)
    labels = np.array(["cat"] * 60 + ["dog"] * 54 + ["eel"] * 6)
    result = datagauge.coverage(x, 5, labels=labels, percent=0.1)
    assert_per_class(result, x, labels, 5, 0.1)
    table = result.per_class
    # 6 samples, k=5: exactly k others, so the class has a radius.
    assert np.isfinite(table.adaptive_radius[table.labels == "eel"]).all()
    assert list(table.labels) == ["cat", "dog", "eel"]


def test_labels_do_not_change_the_global_answer():
    x = uniform(13, 200, 3)
    labels = np.random.default_rng(13).integers(0, 3, 200)
    a = datagauge.coverage(x, 7)
    b = datagauge.coverage(x, 7, labels=labels)
    assert a.per_class is None
    np.testing.assert_array_equal(a.uncovered_indices, b.uncovered_indices)
    np.testing.assert_array_equal(a.critical_value_radii, b.critical_value_radii)
    assert a.coverage_radius == b.coverage_radius


# --------------------------------------------------------------------------- result object


@pytest.fixture(scope="module")
def labelled_result():
    rng = np.random.default_rng(14)
    x = rng.random((200, 3)).astype(np.float32)
    labels = rng.integers(0, 4, 200)
    labels[:3] = 9
    return datagauge.coverage(x, 5, labels=labels, percent=0.05)


def test_result_is_frozen(labelled_result):
    with pytest.raises(dataclasses.FrozenInstanceError):
        labelled_result.k = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        labelled_result.uncovered_indices = np.arange(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        labelled_result.per_class.count = np.arange(3)
    with pytest.raises((AttributeError, TypeError)):
        labelled_result.extra = 1  # slots: no new attributes either


def test_result_arrays_are_read_only(labelled_result):
    arrays = [
        labelled_result.uncovered_indices,
        labelled_result.critical_value_radii,
        labelled_result.per_class.labels,
        labelled_result.per_class.count,
        labelled_result.per_class.n_uncovered,
        labelled_result.per_class.fraction_uncovered,
        labelled_result.per_class.adaptive_radius,
    ]
    for arr in arrays:
        assert not arr.flags.writeable
        with pytest.raises(ValueError, match=r"read-only"):
            arr[0] = 0


def test_result_to_dict_is_json(labelled_result):
    d = labelled_result.to_dict()
    assert set(d) == {
        "uncovered_indices",
        "critical_value_radii",
        "coverage_radius",
        "radius_type",
        "k",
        "per_class",
    }
    back = json.loads(json.dumps(d))
    assert back["uncovered_indices"] == labelled_result.uncovered_indices.tolist()
    assert back["k"] == 5
    assert back["radius_type"] == "adaptive"
    assert back["coverage_radius"] == labelled_result.coverage_radius
    np.testing.assert_array_equal(
        np.array(back["critical_value_radii"], dtype=np.float32),
        labelled_result.critical_value_radii,
    )
    assert back["per_class"]["labels"] == [0, 1, 2, 3, 9]
    assert back["per_class"]["count"] == labelled_result.per_class.count.tolist()
    assert back["per_class"]["adaptive_radius"][-1] is None  # NaN: JSON has no NaN
    assert json.dumps(d, allow_nan=False)
    # Plain Python types only.
    assert type(d["uncovered_indices"][0]) is int
    assert type(d["critical_value_radii"][0]) is float
    assert json.dumps(datagauge.coverage(uniform(15, 50, 2), 3).to_dict())


def test_result_to_dataframe(labelled_result):
    df = labelled_result.to_dataframe()
    assert list(df.columns) == ["rank", "index", "radius"]
    assert len(df) == labelled_result.uncovered_indices.size
    assert df["rank"].tolist() == list(range(1, len(df) + 1))
    assert df["index"].tolist() == labelled_result.uncovered_indices.tolist()
    np.testing.assert_array_equal(
        df["radius"].to_numpy(),
        labelled_result.critical_value_radii[labelled_result.uncovered_indices],
    )
    table = labelled_result.per_class.to_dataframe()
    assert list(table.columns) == [
        "labels",
        "count",
        "n_uncovered",
        "fraction_uncovered",
        "adaptive_radius",
    ]
    assert len(table) == 5


def test_result_repr_shows_shapes_not_values():
    x = uniform(16, 1000, 3)
    result = datagauge.coverage(x, 5, labels=np.arange(1000) % 3)
    text = repr(result)
    assert "critical_value_radii=<float32 array (1000,)>" in text
    assert "uncovered_indices=<int64 array (10,)>" in text
    assert "per_class=<ClassCoverage>" in text
    assert "radius_type='adaptive'" in text
    assert "k=5" in text
    assert len(text) < 400
    assert str(int(result.uncovered_indices[0])) + "," not in text
    table_text = repr(result.per_class)
    assert "count=<int64 array (3,)>" in table_text
    assert len(table_text) < 400


# --------------------------------------------------------------------------- properties


@st.composite
def datasets(draw, *, allow_ties=True):
    n = draw(st.integers(6, 60))
    d = draw(st.integers(1, 16))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).random((n, d)).astype(np.float32)
    if allow_ties and draw(st.booleans()):
        # A coarse grid of exactly representable values: duplicates and exactly equal
        # distances (in float32 as in the float64 oracle).
        x = np.round(x * 4) / np.float32(4)
    k = draw(st.integers(1, min(n - 1, 10)))
    return x, k


@settings(max_examples=100, deadline=None)
@given(
    data=datasets(),
    perm_seed=st.integers(0, 2**32 - 1),
    radius_type=st.sampled_from(["adaptive", "naive"]),
)
def test_permutation_equivariance(data, perm_seed, radius_type):
    x, k = data
    n = x.shape[0]
    perm = np.random.default_rng(perm_seed).permutation(n)
    a = datagauge.coverage(x, k, radius_type=radius_type, percent=0.1)
    b = datagauge.coverage(x[perm], k, radius_type=radius_type, percent=0.1)
    np.testing.assert_array_equal(b.critical_value_radii, a.critical_value_radii[perm])
    assert b.coverage_radius == a.coverage_radius
    # The radii of the uncovered points are the same multiset in any case ...
    np.testing.assert_array_equal(
        b.critical_value_radii[b.uncovered_indices], a.critical_value_radii[a.uncovered_indices]
    )
    # ... and without ties the points themselves map through the permutation.
    if np.unique(a.critical_value_radii).size == n:
        np.testing.assert_array_equal(perm[b.uncovered_indices], a.uncovered_indices)


@settings(max_examples=40, deadline=None)
@given(data=datasets())
def test_radii_non_decreasing_in_k(data):
    x, _ = data
    n = x.shape[0]
    previous = np.zeros(n, dtype=np.float32)
    for k in range(1, min(n - 1, 8) + 1):
        radii = datagauge.coverage(x, k).critical_value_radii
        assert np.all(radii >= previous)
        previous = radii


@settings(max_examples=100, deadline=None)
@given(
    data=datasets(),
    percent=st.floats(0, 1, exclude_min=True, exclude_max=True),
)
def test_adaptive_count_and_split(data, percent):
    x, k = data
    n = x.shape[0]
    result = datagauge.coverage(x, k, percent=percent)
    selection = max(int(n * percent), 1)
    assert result.uncovered_indices.size == selection
    assert np.unique(result.uncovered_indices).size == selection
    radii = result.critical_value_radii
    covered = np.setdiff1d(np.arange(n), result.uncovered_indices)
    if covered.size:
        assert radii[result.uncovered_indices].min() >= radii[covered].max()
        assert radii[covered].max() <= result.coverage_radius
    assert radii[result.uncovered_indices].min() >= result.coverage_radius
    assert_matches_oracle(result, x, k, "adaptive", percent)


@settings(max_examples=100, deadline=None)
@given(
    data=datasets(),
    engine=st.sampled_from(["kdtree", "flat"]),
    block_size=st.integers(1, 70),
    radius_type=st.sampled_from(["adaptive", "naive"]),
)
def test_block_size_does_not_change_the_answer(data, engine, block_size, radius_type):
    x, k = data
    one = datagauge.coverage(x, k, radius_type=radius_type, index=engine)
    blocked = datagauge.coverage(
        x,
        k,
        radius_type=radius_type,
        index=datagauge.Exact(engine=engine, block_size=block_size),
    )
    np.testing.assert_array_equal(blocked.critical_value_radii, one.critical_value_radii)
    np.testing.assert_array_equal(blocked.uncovered_indices, one.uncovered_indices)
    assert blocked.coverage_radius == one.coverage_radius


@settings(max_examples=60, deadline=None)
@given(data=datasets(), engine=st.sampled_from(["kdtree", "flat"]))
def test_threads_do_not_change_the_answer(data, engine):
    x, k = data
    labels = np.arange(x.shape[0]) % 2
    one = datagauge.coverage(x, k, index=engine, n_jobs=1, labels=labels)
    two = datagauge.coverage(x, k, index=engine, n_jobs=2, labels=labels)
    np.testing.assert_array_equal(one.critical_value_radii, two.critical_value_radii)
    np.testing.assert_array_equal(one.uncovered_indices, two.uncovered_indices)
    assert one.coverage_radius == two.coverage_radius
    np.testing.assert_array_equal(one.per_class.adaptive_radius, two.per_class.adaptive_radius)


@settings(max_examples=60, deadline=None)
@given(data=datasets())
def test_engines_agree(data):
    x, k = data
    a = datagauge.coverage(x, k, index="kdtree")
    b = datagauge.coverage(x, k, index="flat")
    np.testing.assert_allclose(a.critical_value_radii, b.critical_value_radii, rtol=1e-6)
    np.testing.assert_allclose(a.critical_value_radii, oracle_radii(x, k), atol=RADIUS_ATOL)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target


@pytest.mark.parametrize("radius_type", ["adaptive", "naive"])
def test_digits_match_dataeval(digits, radius_type):
    x, _ = digits
    result = datagauge.coverage(x, 20, radius_type=radius_type)
    assert_matches_oracle(result, x, 20, radius_type)


def test_digits_sanity(digits):
    x, y = digits
    assert x.shape == (1797, 64)
    assert x.min() >= 0
    assert x.max() <= 1
    result = datagauge.coverage(x, 20, labels=y)
    assert result.uncovered_indices.size == 17  # int(1797 * 0.01)
    assert result.per_class.count.sum() == 1797
    assert result.per_class.labels.tolist() == list(range(10))
    assert np.all(np.isfinite(result.per_class.adaptive_radius))
    naive = datagauge.coverage(x, 20, radius_type="naive")
    assert naive.coverage_radius == pytest.approx(oracle_naive_radius(1797, 64, 20), rel=1e-12)
    # The adaptive 1% are among the naive-uncovered points here (the naive radius is smaller).
    assert naive.coverage_radius < result.coverage_radius
    assert set(result.uncovered_indices.tolist()) <= set(naive.uncovered_indices.tolist())


def test_digits_datagauge_loader_agrees(digits):
    from datagauge.datasets import load_digits as load_packaged_digits

    x, y = digits
    data = load_packaged_digits()
    np.testing.assert_array_equal(data.flat(), x)
    np.testing.assert_array_equal(data.labels, y)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((10, 0, 3), "n_features must be >= 1"),
        ((0, 3, 3), "n_samples must be >= 1"),
        ((10, 3, 0), "k must be >= 1"),
        ((10.5, 3, 3), "n_samples must be an integer"),
    ],
)
def test_naive_radius_rejects_bad_arguments(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        datagauge.naive_radius(*args)


def test_order_index_gives_dataeval_naive_order():
    x = np.random.default_rng(3).random((2000, 3)).astype(np.float32)
    by_radius = datagauge.coverage(x, k=5, radius_type="naive")
    by_index = datagauge.coverage(x, k=5, radius_type="naive", order="index")
    radii = by_radius.critical_value_radii
    # DataEval's coverage_naive: np.where(radii > radius)[0], ascending.
    np.testing.assert_array_equal(
        by_index.uncovered_indices, np.flatnonzero(radii > by_radius.coverage_radius)
    )
    assert set(by_radius.uncovered_indices) == set(by_index.uncovered_indices)
    assert (np.diff(radii[by_radius.uncovered_indices]) <= 0).all()
    with pytest.raises(ValueError, match="order must be one of"):
        datagauge.coverage(x, k=5, order="size")


@pytest.mark.parametrize("radius_type", ["adaptive", "naive"])
@pytest.mark.parametrize("nprobe", [1, 3])
def test_approximate_index_gives_the_exact_uncovered_set(radius_type, nprobe):
    """A coarse IVF (one or three cells probed) overestimates many k-th distances; the radii
    that decide the uncovered set are searched again exactly, so the set is exact."""
    from datagauge.neighbors import IVF

    rng = np.random.default_rng(11)
    centres = rng.normal(0, 2, (30, 8))
    x = centres[rng.integers(0, 30, 4000)] + rng.normal(size=(4000, 8))
    x = np.concatenate([x, rng.uniform(-8, 8, (40, 8))]).astype(np.float32)  # isolated points
    if radius_type == "naive":
        x = (x - x.min(0)) / (x.max(0) - x.min(0))
    spec = IVF(nlist=64, nprobe=nprobe)
    exact = datagauge.coverage(x, 10, radius_type=radius_type, percent=0.02)
    approx_radii = datagauge.neighbor_graph(x, 10, index=spec).distances[:, 9]
    assert (approx_radii >= exact.critical_value_radii).all()
    assert (approx_radii > exact.critical_value_radii).mean() > 0.05  # really approximate
    got = datagauge.coverage(x, 10, radius_type=radius_type, percent=0.02, index=spec)
    np.testing.assert_array_equal(np.sort(got.uncovered_indices), np.sort(exact.uncovered_indices))
    assert got.coverage_radius == exact.coverage_radius
    # from a graph of the approximate index, with the embeddings: the same
    graph = datagauge.neighbor_graph(x, 10, index=spec)
    via = datagauge.coverage(x, 10, radius_type=radius_type, percent=0.02, graph=graph)
    np.testing.assert_array_equal(np.sort(via.uncovered_indices), np.sort(exact.uncovered_indices))
