"""The int8 screening engine (``_core.screen_self_knn``, ``Exact(engine="screen")``) and the
run-time SIMD dispatch (``DATAGAUGE_SIMD``, ``_core.simd_level``).

The screening only chooses candidates; the answer must be bit-identical to the float32 engines:
checked against a numpy oracle that computes every float32 squared distance in the core's
order (sequential sum of rounded squares), and against ``brute_self_knn`` and the kd-tree.
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
from datagauge import _core, neighbors

VNNI = _core.simd_level() == "avx512"
needs_vnni = pytest.mark.skipif(not VNNI, reason="the CPU lacks AVX-512 VNNI")


def screen(x: np.ndarray, k: int, n_cand: int | None = None, block: int = 64, threads: int = 2):
    n = x.shape[0]
    n_cand = min(n - 1, 2 * k + 8) if n_cand is None else n_cand
    x = np.ascontiguousarray(x, dtype=np.float32)
    return _core.screen_self_knn(x, k, n_cand, block, threads)


def assert_same_as_float32_engines(x: np.ndarray, k: int, **kw) -> str:
    x = np.ascontiguousarray(x, dtype=np.float32)
    dist, idx, _, kernel = screen(x, k, **kw)
    od, oi = oracle(x, k)
    np.testing.assert_array_equal(idx, oi)
    np.testing.assert_array_equal(dist, od)
    bd, bi, _ = _core.brute_self_knn(x, k, min(x.shape[0] - 1, k + 4), 48, 2)
    np.testing.assert_array_equal(dist, bd)
    np.testing.assert_array_equal(idx, bi)
    return str(kernel)


# --------------------------------------------------------------------------- adversarial data


def pixels(seed: int, n: int, d: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, d)).astype(np.float32)


@needs_vnni
@pytest.mark.parametrize("d", [1, 3, 4, 5, 31, 64, 67, 784])
def test_pixels_are_screened_losslessly_and_proven(d):
    x = pixels(1, 300, d)
    kernel = assert_same_as_float32_engines(x, 10)
    assert kernel == "int8-vnni"
    if d >= 31:  # no ties at the bound on wide random pixels: every list proven
        assert screen(x, 10)[2] == 0


@needs_vnni
def test_continuous_data_are_screened_in_int8():
    x = np.random.default_rng(2).random((500, 40), dtype=np.float32)
    kernel = assert_same_as_float32_engines(x, 8)
    assert kernel == "int8-vnni"
    assert screen(x, 8)[2] == 0


@needs_vnni
def test_wide_dynamic_range_falls_back_to_float32_tiles():
    # Small-scale points all quantise to 0: their lists cannot be proven, and the float32
    # tiles redo the search. Same answer as the oracle either way.
    x = wide_range(3, 400, 12)
    kernel = assert_same_as_float32_engines(x, 6)
    assert kernel.startswith("int8-vnni>fp32")


def test_wide_range_through_the_api():
    # 1e-20..1e20 mixed: the search runs on data rescaled by a power of two (exact), where
    # the small points' distances underflow to exact ties at 0. The screening engine gives
    # the oracle's answer on the rescaled data; the brute-force engine's distances are the
    # same (it redoes its many unproven rows through the kd-tree, which may pick other
    # points tied at the k-th distance, as documented on Exact).
    x = wide_range(13, 300, 9, top=20)
    exponent = neighbors.scale_exponent(x.min(axis=0), x.max(axis=0))
    assert exponent != 0
    od, oi = oracle(neighbors.scale_down(x, exponent), 5)
    got = datagauge.kneighbors(x, 5, index="screen")
    if VNNI:  # without VNNI "screen" is "brute", whose tie choices may differ (see above)
        np.testing.assert_array_equal(got[1], oi)
    np.testing.assert_array_equal(got[0], neighbors.distances(od, exponent))
    np.testing.assert_array_equal(got[0], datagauge.kneighbors(x, 5, index="brute")[0])


@needs_vnni
def test_int8_integer_range_above_255_is_not_lossless_but_exact():
    x = np.random.default_rng(4).integers(-1000, 1000, (300, 20)).astype(np.float32)
    assert assert_same_as_float32_engines(x, 7) == "int8-vnni"


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_exact_ties_and_duplicates(levels):
    x = np.random.default_rng(5).integers(0, levels, (250, 9)).astype(np.float32)
    assert_same_as_float32_engines(x, 12)


def test_constant_columns_and_tiny_n():
    x = np.random.default_rng(6).random((7, 10), dtype=np.float32)
    x[:, 3] = 5.0
    x[:, 7] = -2.5
    for k in (1, 3, 6):
        assert_same_as_float32_engines(x, k)
    assert_same_as_float32_engines(np.array([[0.0], [1.0]], dtype=np.float32), 1)


def test_all_points_identical():
    x = np.full((100, 5), 3.25, dtype=np.float32)
    assert_same_as_float32_engines(x, 4)


def test_huge_values_stay_exact():
    # |x| near 1e18: squared distances overflow float32; every engine reports the same inf.
    x = np.random.default_rng(7).random((120, 6)).astype(np.float32) * np.float32(1e18)
    assert_same_as_float32_engines(x, 5)


@st.composite
def adversarial(draw):
    n = draw(st.integers(2, 90))
    d = draw(st.integers(1, 37))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["uniform", "pixels", "ties", "duplicates", "wide", "constant"]))
    if kind == "uniform":
        x = rng.random((n, d))
    elif kind == "pixels":
        x = rng.integers(0, 256, (n, d))
    elif kind == "ties":
        x = rng.integers(0, 3, (n, d))
    elif kind == "duplicates":
        base = rng.random((max(1, n // 5), d))
        x = base[rng.integers(0, base.shape[0], n)]
    elif kind == "wide":
        x = wide_range(seed, n, d)
    else:
        x = rng.random((n, d))
        x[:, rng.random(d) < 0.5] = rng.random()
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = draw(st.integers(1, n - 1))
    n_cand = draw(st.integers(k, n - 1))
    block = draw(st.integers(1, 130))
    threads = draw(st.integers(1, 3))
    return x, k, n_cand, block, threads


@settings(max_examples=120, deadline=None)
@given(case=adversarial())
def test_screen_equals_oracle_property(case):
    x, k, n_cand, block, threads = case
    dist, idx, _, _ = _core.screen_self_knn(x, k, n_cand, block, threads)
    od, oi = oracle(x, k)
    np.testing.assert_array_equal(idx, oi)
    np.testing.assert_array_equal(dist, od)
    bd, bi, _ = _core.brute_self_knn(x, k, n_cand, block, threads)
    np.testing.assert_array_equal(dist, bd)
    np.testing.assert_array_equal(idx, bi)
    # (Not compared with the raw core kd-tree: it may return another point tied at the k-th
    # distance (documented on Exact), and on unscaled data spanning ~1e13 it can miss a
    # neighbour by one rounding of its box bound; the public API rescales such data first.)


def test_screen_rejects_bad_arguments():
    x = np.random.default_rng(8).random((30, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"k must be < the number of points"):
        _core.screen_self_knn(x, 30, 29, 48)
    with pytest.raises(ValueError, match=r"n_candidates must lie in \[k, n - 1\]"):
        _core.screen_self_knn(x, 5, 4, 48)
    with pytest.raises(ValueError, match=r"block must be >= 1"):
        _core.screen_self_knn(x, 5, 9, 0)
    with pytest.raises(TypeError):
        _core.screen_self_knn(x.astype(np.float64), 5, 9, 48)
    with pytest.raises(ValueError, match=r"at least one feature"):
        _core.screen_self_knn(np.zeros((10, 0), dtype=np.float32), 1, 1, 48)


# --------------------------------------------------------------------------- Python engines


@pytest.mark.parametrize("n_threads", [1, 2])
def test_quantisation_residuals_bound_the_residuals(n_threads):
    # The planner's residual norms are the screening's own: at least the exact residual norm
    # of q = round((x - mean) s) clamped to [-127, 127], and within its rounding pad of it.
    rng = np.random.default_rng(7)
    x = wide_range(7, 3000, 37, top=6)
    mean = x.mean(axis=0, dtype=np.float64)
    amax = float(np.max(np.maximum(x.max(0) - mean, mean - x.min(0))))
    scale = 127.0 / amax
    got = _core.quantisation_residuals(x, mean, scale, n_threads)
    c = x.astype(np.float64) - mean
    r = c - np.clip(np.rint(c * scale), -127, 127) / scale
    want = np.sqrt((r * r).sum(axis=1))
    assert np.all(got >= want)
    pad = 1e-11 * np.sqrt((c * c).sum(axis=1)).max()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=pad)
    # Integer rows on the quantisation grid have no residual at all.
    grid = rng.integers(-127, 128, (50, 8)).astype(np.float32)
    assert np.all(_core.quantisation_residuals(grid, np.zeros(8), 1.0) == 0.0)


def test_quantisation_residuals_reject_bad_arguments():
    x = np.ones((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="mean must be"):
        _core.quantisation_residuals(x, np.zeros(2), 1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale must be positive"):
            _core.quantisation_residuals(x, np.zeros(3), bad)
    with pytest.raises(TypeError):
        _core.quantisation_residuals(x.astype(np.float64), np.zeros(3), 1.0)


@pytest.mark.parametrize("make", [pixels, lambda s, n, d: np.random.default_rng(s).random((n, d))])
def test_screen_engine_equals_brute_engine(make):
    x = make(9, 700, 70).astype(np.float32)
    a = datagauge.kneighbors(x, 10, index="screen")
    b = datagauge.kneighbors(x, 10, index="brute")
    c = datagauge.kneighbors(x, 10, index=datagauge.Exact(engine="screen", block_size=100))
    for got in (a, c):
        np.testing.assert_array_equal(got[0], b[0])
        np.testing.assert_array_equal(got[1], b[1])


@needs_vnni
def test_auto_screens_pixels_and_predicts_continuous_data(monkeypatch):
    calls = []
    real = neighbors._brute_knn

    def spy(*args, **kwargs):
        calls.append(kwargs.get("screen", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(neighbors, "_brute_knn", spy)
    x = pixels(10, 1500, 200)
    dist, idx = datagauge.kneighbors(x, 10, device="cpu")
    ref = datagauge.kneighbors(x, 10, index="brute")
    np.testing.assert_array_equal(dist, ref[0])
    np.testing.assert_array_equal(idx, ref[1])
    assert calls[0] == 28  # screened, with 2k + 8 candidates (pixels: no error to cover)
    assert neighbors.screen_plan(x, 10) == 28
    # Concentrated clusters in 512-d: distances within a cluster differ by about the 8-bit
    # error bound, so 2k + 8 candidates do not prove the lists; the plan asks for more, and
    # the plan is right both ways: with it the int8 screening proves (almost) every list,
    # without it the float32 tiles had to redo the search.
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(30, 512))
    c = (centres[rng.integers(0, 30, 1500)] + 0.3 * rng.normal(size=(1500, 512))).astype(np.float32)
    plan = neighbors.screen_plan(c, 20)
    assert plan is not None
    assert plan > 48
    assert screen(c, 20)[3].startswith("int8-vnni>fp32")
    dist, idx, redone, kernel = screen(c, 20, plan)
    assert kernel == "int8-vnni"
    assert redone < 0.05 * c.shape[0]
    np.testing.assert_array_equal(idx, _core.brute_self_knn(c, 20, 25, 48, 2)[1])
    # Uniform data spread over 8 bits with a wide range: no plan covers the error.
    w = np.random.default_rng(12).random((1500, 64)).astype(np.float32)
    w[0] = 1e4
    assert neighbors.screen_plan(w, 20) is None


@pytest.mark.skipif(_core.simd_level() != "avx512", reason="the int8 screening needs AVX-512")
def test_screen_plan_with_a_limit_gives_up_early_and_only_above_it(monkeypatch):
    from datagauge import neighbors

    rng = np.random.default_rng(11)
    centres = rng.normal(size=(30, 512))
    c = (centres[rng.integers(0, 30, 1500)] + 0.3 * rng.normal(size=(1500, 512))).astype(np.float32)
    plan = neighbors.screen_plan(c, 20)
    assert plan is not None
    assert neighbors.screen_plan(c, 20, plan) == plan
    assert neighbors.screen_plan(c, 20, 10_000) == plan
    passes: list[int] = []
    real = neighbors._sample_counts

    def spy(x, rows, *args, **kwargs):
        passes.append(rows.size)
        return real(x, rows, *args, **kwargs)

    monkeypatch.setattr(neighbors, "_sample_counts", spy)
    assert neighbors.screen_plan(c, 20, plan - 1) is None
    # every eighth sample row already needs more than the limit: no pass over the rest
    small = neighbors.screen_plan(c, 20, 1)
    assert small is None
    assert passes[-1] == 8


# --------------------------------------------------------------------------- dispatch


def _run_with_simd(value: str, code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATAGAUGE_SIMD=value)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )


_CHILD = """
import json, numpy as np
from datagauge import _core
x = np.random.default_rng(12).integers(0, 256, (400, 50)).astype(np.float32)
d, i, redone, kernel = _core.screen_self_knn(x, 9, 26, 64, 2)
print(json.dumps({"level": _core.simd_level(), "kernel": kernel,
                  "dist": d.tolist(), "idx": i.tolist()}))
"""


@pytest.mark.parametrize(
    ("value", "level", "kernel"),
    [("avx2", "avx2", "fp32-avx2"), ("scalar", "scalar", "fp32-scalar")],
)
def test_simd_switch_selects_the_float32_kernels(value, level, kernel):
    if _core.simd_level() == "scalar" and level != "scalar":
        pytest.skip("the CPU lacks AVX2")
    out = _run_with_simd(value, _CHILD)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["level"] == level
    assert got["kernel"] == kernel
    x = np.random.default_rng(12).integers(0, 256, (400, 50)).astype(np.float32)
    d, i = oracle(x, 9)
    np.testing.assert_array_equal(np.array(got["dist"], dtype=np.float32), d)
    np.testing.assert_array_equal(np.array(got["idx"]), i)


@needs_vnni
@pytest.mark.parametrize("value", ["auto", "avx512", ""])
def test_simd_switch_auto_uses_vnni(value):
    out = _run_with_simd(value, _CHILD)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["level"] == "avx512"
    assert got["kernel"] == "int8-vnni"


def test_invalid_simd_switch_is_a_clear_error():
    out = _run_with_simd("avx1024", "from datagauge import _core; _core.simd_level()")
    assert out.returncode != 0
    assert "DATAGAUGE_SIMD must be 'auto', 'avx512', 'avx2' or 'scalar'" in out.stderr
