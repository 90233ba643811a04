"""Rotated kd-trees (boxes and scans in the data's principal axes): same lists as the plain
tree, bit for bit, on every kind of data; the frame's error bounds hold; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datagauge
from datagauge import _core
from datagauge import neighbors as nb
from test_neighbors import assert_valid_with_ties, clustered, oracle_knn, tied_data, uniform


def low_rank(seed: int, n: int, d: int, latent: int, noise: float = 0.01) -> np.ndarray:
    """Points near a random `latent`-dimensional subspace (not aligned with the axes)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, latent)) * rng.uniform(0.5, 3.0, latent)
    return (z @ rng.normal(size=(latent, d)) + noise * rng.normal(size=(n, d))).astype(np.float32)


def both_trees(x: np.ndarray, leaf: int, frame: nb.Frame | None = None):
    frame = nb.principal_frame(x) if frame is None else frame
    return _core.KDTree(x, leaf, 0), nb.build_tree(x, leaf, 0, frame)


def assert_same_lists(a, b, *, ties: bool = False):
    """Bit-identical distances; the same indices (or, with exact ties possible, the same set
    of indices strictly inside each row's k-th distance)."""
    np.testing.assert_array_equal(a[0], b[0])
    if not ties:
        np.testing.assert_array_equal(a[1], b[1])
        return
    for da, ia, ib in zip(a[0], a[1], b[1], strict=True):
        inside = da < da[-1]
        assert set(ia[inside].tolist()) == set(ib[inside].tolist())


DATA = [
    pytest.param(lambda: low_rank(0, 1500, 40, 4), False, id="low-rank-40d"),
    pytest.param(lambda: low_rank(1, 1200, 130, 6, noise=0.0), False, id="subspace-130d"),
    pytest.param(lambda: clustered(2, 2000, 24, 12), False, id="clustered-24d"),
    pytest.param(lambda: uniform(3, 800, 17), False, id="uniform-17d"),
    pytest.param(lambda: tied_data(4, 700, 16, 2), True, id="ties-16d"),
    pytest.param(lambda: np.repeat(uniform(5, 40, 20), 12, axis=0), True, id="duplicates"),
    pytest.param(
        lambda: (low_rank(6, 900, 32, 3) * 1e4 + 1e5).astype(np.float32),
        False,
        id="offset-scale-1e4",
    ),
    pytest.param(
        lambda: (low_rank(7, 900, 32, 3) * 1e-6).astype(np.float32), False, id="scale-1e-6"
    ),
]


@pytest.mark.parametrize(("make", "ties"), DATA)
@pytest.mark.parametrize("leaf", [1, 16, 100, 512])  # 100: blocks of 32 and a partial one
@pytest.mark.parametrize("k", [1, 7, 25])  # 25: more than a leaf of 16 holds
def test_rotated_self_query_equals_plain_tree(make, ties, leaf, k):
    x = make()
    plain, rotated = both_trees(x, leaf)
    assert rotated.rotated
    assert not plain.rotated
    a, b = plain.self_query(k, 2), rotated.self_query(k, 2)
    assert_same_lists(a, b, ties=ties)
    if not ties:
        np.testing.assert_array_equal(b[1], oracle_knn(x, k)[1])
    else:
        assert_valid_with_ties(x, np.sqrt(b[0]), b[1], k)


@pytest.mark.parametrize(("make", "ties"), DATA[:4])
def test_rotated_queries_with_bounds_and_exclusions(make, ties):
    x = make()
    base, queries = x[: len(x) // 2], np.ascontiguousarray(x[len(x) // 2 :])
    frame = nb.principal_frame(base)
    plain, rotated = both_trees(base, 8, frame)
    ry, re = frame.apply(queries)
    m = len(queries)
    exclude = np.where(np.arange(m) % 3 == 0, np.arange(m) % len(base), -1).astype(np.int64)
    first = plain.query(queries, 5, exclude, 1)
    bounds = np.ascontiguousarray(first[0][:, 2] * np.float32(1.0001))
    bounds[::4] = np.inf
    for kw in ({}, {"bounds": bounds}):
        a = plain.query(queries, 5, exclude, 2, kw.get("bounds"))
        b = rotated.query(queries, 5, exclude, 2, kw.get("bounds"), ry, re)
        assert_same_lists(a, b, ties=ties)
    cost_plain = plain.query_cost(queries, 5, exclude)
    cost_rot = rotated.query_cost(queries, 5, exclude, None, ry, re)
    assert 0 < cost_rot <= m * len(base)
    assert cost_plain > 0


def test_query_tree_within_one_frame_and_refused_across():
    x = low_rank(8, 2000, 48, 5)
    frame = nb.principal_frame(x)
    plain_b, rot_b = both_trees(x[:1200], 32, frame)
    rot_q = nb.build_tree(np.ascontiguousarray(x[1200:]), 32, 1200, frame)
    plain_q = _core.KDTree(np.ascontiguousarray(x[1200:]), 32, 1200)
    assert_same_lists(plain_b.query_tree(plain_q, 6), rot_b.query_tree(rot_q, 6))
    other = nb.build_tree(np.ascontiguousarray(x[1200:]), 32, 1200, nb.principal_frame(x))
    with pytest.raises(ValueError, match="another frame"):
        rot_b.query_tree(other, 6)
    with pytest.raises(ValueError, match="another frame"):
        rot_b.query_tree(plain_q, 6)


def test_any_orthonormal_frame_gives_the_same_lists():
    """The frame only screens: a random rotation (a poor frame) still gives exact lists."""
    x = low_rank(9, 1500, 30, 3)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(30, 30)))
    frame = nb.principal_frame(x)
    random_frame = nb.Frame(frame.mean, np.ascontiguousarray(q), frame.slack, frame.key + 10**6)
    plain, rotated = both_trees(x, 16, random_frame)
    assert_same_lists(plain.self_query(4, 1), rotated.self_query(4, 1))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(2, 300),
    d=st.integers(13, 70),
    latent=st.integers(1, 8),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    k=st.integers(1, 9),
    leaf=st.sampled_from([1, 3, 64, 100, 512]),
)
def test_property_rotated_equals_plain(seed, n, d, latent, scale, k, leaf):
    k = min(k, n - 1) if n > 1 else 1
    x = (low_rank(seed, n, d, latent, noise=0.05) * scale).astype(np.float32)
    if n > 4:
        x[n // 2] = x[0]  # a duplicate
    plain, rotated = both_trees(x, leaf)
    assert_same_lists(plain.self_query(k, 1), rotated.self_query(k, 1), ties=True)


def test_frame_errors_bound_the_rounding():
    """Each float32 rotated row lies within its error of the exact rotation (long double)."""
    x = (low_rank(10, 500, 64, 6) * 100 + 7).astype(np.float32)
    frame = nb.principal_frame(x)
    y, err = frame.apply(x)
    exact = (x.astype(np.longdouble) - frame.mean.astype(np.longdouble)) @ frame.basis.astype(
        np.longdouble
    )
    off = np.sqrt(((y.astype(np.longdouble) - exact) ** 2).sum(axis=1))
    assert np.all(off <= err.astype(np.longdouble))
    assert np.all(err > 0)
    assert float(err.max()) < 1e-3
    assert frame.basis.shape == (64, 64)
    # The axes come by decreasing variance.
    var = y.astype(np.float64).var(axis=0)
    assert np.all(np.diff(var[:6]) <= 1e-9 * var[0])


def test_exact_engines_use_rotated_trees_and_agree():
    x = low_rank(11, 3000, 96, 5)
    dist, idx = datagauge.kneighbors(x, 10, index=datagauge.Exact(engine="kdtree"))
    bd, bi = datagauge.kneighbors(x, 10, index=datagauge.Exact(engine="brute"))
    np.testing.assert_array_equal(dist, bd)
    np.testing.assert_array_equal(idx, bi)
    blocked = datagauge.kneighbors(x, 10, index=datagauge.Exact(engine="kdtree", block_size=700))
    np.testing.assert_array_equal(blocked[0], bd)


def test_bad_frames_are_refused():
    x = uniform(12, 50, 16)
    frame = nb.principal_frame(x)
    y, err = frame.apply(x)
    with pytest.raises(ValueError, match="both"):
        _core.KDTree(x, 8, 0, y, None)
    with pytest.raises(ValueError, match="shape"):
        _core.KDTree(x, 8, 0, np.ascontiguousarray(y[:, :10]), err)
    with pytest.raises(ValueError, match="rows"):
        _core.KDTree(x, 8, 0, y, np.ascontiguousarray(err[:10]))
    for bad in (-1.0, np.nan, np.inf):
        e = err.copy()
        e[3] = bad
        with pytest.raises(ValueError, match="finite and >= 0"):
            _core.KDTree(x, 8, 0, y, e)
    rotated = _core.KDTree(x, 8, 0, y, err, frame.key)
    with pytest.raises(ValueError, match="rotated"):
        rotated.query(x, 3)
    plain = _core.KDTree(x, 8, 0)
    with pytest.raises(ValueError, match="not rotated"):
        plain.query(x, 3, None, 1, None, y, err)


@pytest.mark.parametrize("rotated", [False, True])
def test_tree_built_on_several_threads_is_the_same(rotated):
    x = np.ascontiguousarray(np.random.default_rng(31).normal(size=(5000, 24)), dtype=np.float32)
    frame = nb.principal_frame(x) if rotated else None
    lists = [nb.build_tree(x, 64, 0, frame, n_threads=t).self_query(9, 1) for t in (1, 2, 0)]
    for d, i in lists[1:]:
        np.testing.assert_array_equal(d, lists[0][0])
        np.testing.assert_array_equal(i, lists[0][1])
