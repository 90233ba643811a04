"""The float32 tile engine (``_core.brute_self_knn``, ``Exact(engine="brute")``) and its
run-time micro-kernels: AVX-512F (12 x 32 tiles), AVX2 + FMA (6 x 16) and portable loops.

The tiles only screen; the answer must be bit-identical to a numpy oracle that computes every
float32 squared distance in the core's order, whatever the kernel (this module runs in CI with
``DATAGAUGE_SIMD=avx2`` and ``scalar`` too). Ragged sizes (n and d not multiples of the tile
or the block), exact ties, duplicates and a wide dynamic range exercise the tile edges and the
proof of completeness.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datagauge
from _knn_oracle import oracle, wide_range
from datagauge import _core

KERNELS = {"avx512": "fp32-avx512", "avx2": "fp32-avx2", "scalar": "fp32-scalar"}


def brute(x: np.ndarray, k: int, extra: int = 4, block: int = 96, threads: int = 2):
    x = np.ascontiguousarray(x, dtype=np.float32)
    return _core.brute_self_knn(x, k, min(x.shape[0] - 1, k + extra), block, threads)


def assert_oracle(x: np.ndarray, k: int, **kw) -> int:
    """brute_self_knn equals the oracle bit for bit; returns the rows it redid."""
    dist, idx, redone = brute(x, k, **kw)
    od, oi = oracle(x, k)
    np.testing.assert_array_equal(idx, oi)
    np.testing.assert_array_equal(dist, od)
    return int(redone)


def test_kernel_follows_the_simd_level():
    assert _core.fp32_tile_kernel() == KERNELS[_core.simd_level()]


@pytest.mark.parametrize("n", [2, 13, 97, 191, 385])
@pytest.mark.parametrize("d", [1, 5, 17, 33, 100])
def test_ragged_tiles_match_the_oracle(n, d):
    # n, d not multiples of the tile (12 x 32 or 6 x 16) nor of the block (96 or 48): padding
    # rows and columns of the panels must never enter a list.
    x = np.random.default_rng(n * 1000 + d).standard_normal((n, d)).astype(np.float32)
    k = min(n - 1, 7)
    assert assert_oracle(x, k, block=96) == 0 or n <= 13


@pytest.mark.parametrize("block", [1, 12, 48, 95, 96, 97, 200, 1000])
def test_any_block_size_gives_the_same_answer(block):
    x = np.random.default_rng(5).random((610, 29)).astype(np.float32)
    assert_oracle(x, 10, block=block, threads=3)


def test_continuous_data_are_proven_without_redoing():
    x = np.random.default_rng(6).random((1000, 37)).astype(np.float32)
    assert assert_oracle(x, 20, extra=8) == 0


@pytest.mark.parametrize("levels", [2, 3])
def test_exact_ties_and_duplicates(levels):
    # Integer grid: many equal distances and duplicate points; unproven rows (ties at the
    # bound) are searched again exactly, with the lowest indices among ties.
    x = np.random.default_rng(levels).integers(0, levels, (240, 9)).astype(np.float32)
    redone = assert_oracle(x, 12)
    assert redone > 0


def test_all_points_identical():
    x = np.full((150, 40), 3.25, dtype=np.float32)
    assert_oracle(x, 5)


@pytest.mark.parametrize("d", [3, 32, 65])
def test_wide_dynamic_range(d):
    # Magnitudes 1e-15 .. 1e15 in one matrix: the screening distances are mostly rounding
    # noise for the small points, whose lists the proof must reject and redo exactly.
    assert_oracle(wide_range(d, 300, d), 6)


def test_large_offset_is_centred():
    rng = np.random.default_rng(8)
    x = (rng.random((500, 48)) * 1e-2 + 1e4).astype(np.float32)
    assert_oracle(x, 9)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 200),
    d=st.integers(1, 70),
    k_frac=st.floats(0.0, 1.0),
    extra=st.integers(0, 12),
    block=st.integers(1, 300),
    threads=st.integers(1, 3),
    kind=st.sampled_from(["normal", "grid", "wide"]),
    seed=st.integers(0, 2**16),
)
def test_equals_oracle_property(n, d, k_frac, extra, block, threads, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "normal":
        x = rng.standard_normal((n, d)).astype(np.float32)
    elif kind == "grid":
        x = rng.integers(0, 3, (n, d)).astype(np.float32)
    else:
        x = wide_range(seed, n, d, top=12)
    k = 1 + int(k_frac * (n - 2))
    assert_oracle(x, k, extra=extra, block=block, threads=threads)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(3, 150),
    d=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_permuting_the_points_permutes_the_distances(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    perm = rng.permutation(n)
    dist, _, _ = brute(x, 2)
    pdist, _, _ = brute(x[perm], 2)
    np.testing.assert_array_equal(pdist, dist[perm])


# --------------------------------------------------------------------------- kernels


_CHILD = """
import json, sys, numpy as np
import datagauge
from datagauge import _core
rng = np.random.default_rng(21)
x = (rng.standard_normal((517, 71)) * 10.0 ** rng.integers(-3, 4, (517, 1))).astype(np.float32)
d, i, redone = _core.brute_self_knn(x, 11, 17, 100, 2)
print(json.dumps({"level": _core.simd_level(), "kernel": _core.fp32_tile_kernel(),
                  "redone": redone, "dist": d.tolist(), "idx": i.tolist()}))
"""


def _child(value: str) -> dict[str, object]:
    env = dict(os.environ, DATAGAUGE_SIMD=value)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    got: dict[str, object] = json.loads(out.stdout)
    return got


def test_every_kernel_gives_the_same_answer():
    rng = np.random.default_rng(21)
    x = (rng.standard_normal((517, 71)) * 10.0 ** rng.integers(-3, 4, (517, 1))).astype(np.float32)
    od, oi = oracle(x, 11)
    results = {}
    for value in ("avx512", "avx2", "scalar"):
        got = _child(value)
        assert got["kernel"] == KERNELS[str(got["level"])]
        np.testing.assert_array_equal(np.array(got["dist"], dtype=np.float32), od)
        np.testing.assert_array_equal(np.array(got["idx"]), oi)
        results[got["kernel"]] = got["redone"]
    # The SIMD tiles compute every entry in the same order (one FMA per feature): the same
    # screening distances, hence the same candidates and the same rows left to redo.
    if "fp32-avx512" in results and "fp32-avx2" in results:
        assert results["fp32-avx512"] == results["fp32-avx2"]


def test_screen_fallback_names_the_float32_kernel():
    # Data whose range defeats 8 bits: the int8 screening gives way to the float32 tiles.
    x = wide_range(3, 700, 6)
    dist, idx, _, kernel = _core.screen_self_knn(x, 6, 14, 64, 2)
    fp32 = _core.fp32_tile_kernel()
    assert kernel in (fp32, "int8-vnni>" + fp32, "int8-vnni")
    od, oi = oracle(x, 6)
    np.testing.assert_array_equal(dist, od)
    np.testing.assert_array_equal(idx, oi)


# --------------------------------------------------------------------------- candidate plan


def clustered(seed: int, n: int, d: int) -> np.ndarray:
    """Tight clusters far from the mean: the float32 rounding bound is wide against the
    neighbour distances, so short lists cannot be proven."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=50.0, size=(8, d))
    return (centres[rng.integers(0, 8, n)] + rng.normal(scale=0.05, size=(n, d))).astype(np.float32)


def test_plan_proves_clustered_lists():
    from datagauge import neighbors

    x = clustered(30, 1200, 200)
    k = 10
    short = neighbors._margin(k) + k
    plan = neighbors.brute_plan(x, k)
    assert short < plan <= neighbors.BRUTE_MAX_CANDIDATES
    _, _, redone_short = _core.brute_self_knn(x, k, short, 96, 2)
    dist, idx, redone = _core.brute_self_knn(x, k, plan, 96, 2)
    assert redone < redone_short  # the plan's lists prove what short ones cannot
    assert redone <= x.shape[0] // 100
    od, oi = oracle(x, k)
    np.testing.assert_array_equal(dist, od)
    np.testing.assert_array_equal(idx, oi)


@pytest.mark.parametrize(("n", "k"), [(700, 10), (1500, 40), (301, 299)])
def test_plans_in_two_passes_equal_the_held_matrix(monkeypatch, n, k):
    # Past _PLAN_MATRIX_BYTES the plans keep only each sample row's k smallest distances and
    # count in a second pass (memory O(64 (k + chunk)), not O(64 n)): the same plans.
    from datagauge import neighbors

    x = clustered(31, n, 24)
    x[::7] += np.float32(0.5)  # some points between the clusters
    held = neighbors.brute_plan(x, k), neighbors.screen_plan(x, k)
    counts_held = _plan_counts(neighbors, x, k)
    monkeypatch.setattr(neighbors, "_PLAN_MATRIX_BYTES", 0)
    monkeypatch.setattr(neighbors, "_PLAN_CHUNK", 97)  # many chunks, the sample rows in several
    assert (neighbors.brute_plan(x, k), neighbors.screen_plan(x, k)) == held
    np.testing.assert_array_equal(_plan_counts(neighbors, x, k), counts_held)


def _plan_counts(neighbors, x, k):
    # The counts within the k-th squared distance times 1.5 of the sample rows (a threshold
    # that depends on kth, as the plans' do).
    mean = x.mean(axis=0, dtype=np.float64)
    rows = neighbors._sample_rows(x.shape[0])
    counts = neighbors._sample_counts(x, rows, mean, k, lambda c, part: None, lambda kth: 1.5 * kth)
    sq = ((x[rows, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(axis=2)
    sq[np.arange(rows.size), rows] = np.inf
    kth = np.sort(sq, axis=1)[:, k - 1]
    np.testing.assert_array_equal(counts, np.count_nonzero(sq <= 1.5 * kth[:, None], axis=1))
    return counts


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 300), d=st.integers(1, 40), k_frac=st.floats(0, 1), seed=st.integers(0, 99))
def test_plan_is_within_its_bounds(n, d, k_frac, seed):
    from datagauge import neighbors

    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    k = 1 + int(k_frac * (n - 2))
    plan = neighbors.brute_plan(x, k)
    assert min(n - 1, k + neighbors._margin(k)) <= plan <= n - 1
    assert plan <= max(neighbors.BRUTE_MAX_CANDIDATES, k + neighbors._margin(k))


def test_auto_screens_in_int8_only_with_short_lists(monkeypatch):
    # A long int8 plan: "auto" takes the float32 tiles (with their own plan) instead.
    from datagauge import neighbors

    x = clustered(31, 600, 64)
    calls: list[int] = []
    real = neighbors._brute_knn

    def spy(x, k, spec, n_threads, screen=0):
        calls.append(screen)
        return real(x, k, spec, n_threads, screen)

    monkeypatch.setattr(neighbors, "_brute_knn", spy)
    monkeypatch.setattr(neighbors, "tree_share", lambda *a, **kw: 1.0)
    expected = datagauge.kneighbors(x, 5, index="kdtree")
    for plan, screened in ((200, False), (18, True)):
        monkeypatch.setattr(
            neighbors,
            "screen_plan",
            lambda x, k, limit=None, plan=plan: plan if limit is None or plan <= limit else None,
        )
        dist, idx = datagauge.kneighbors(x, 5, device="cpu")
        np.testing.assert_array_equal(dist, expected[0])
        np.testing.assert_array_equal(idx, expected[1])
        assert (calls[-1] > 0) == screened
