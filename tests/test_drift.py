"""Drift tests: DataEval 1.1.4's MMD statistic and KS decisions (recorded), brute-force
oracles of the k-NN and MMD permutation tests, calibration under the null and power."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist, pdist, squareform
from scipy.stats import ks_2samp

from _comparison_reference import REFERENCE, make_ref
from datagauge.drift import drift, median_bandwidth

CASES = {c["name"]: c for c in make_ref.drift_cases()}

#: DataEval's torch sums the kernel in float32: its MMD^2 is within this of the float64 value.
MMD_ATOL = 1e-6


# --------------------------------------------------------------------------- DataEval


@pytest.mark.parametrize("record", REFERENCE["mmd"], ids=lambda r: r["name"])
def test_mmd_statistic_and_bandwidth_match_dataeval(record):
    case = CASES[record["name"]]
    ref, tst = case["reference"], case["test"]
    assert make_ref.checksum(ref, tst) == record["checksum"]
    assert median_bandwidth(ref, tst) == pytest.approx(record["sigma"], rel=2e-7)
    res = drift(ref, tst, method="mmd")
    assert res.sigma == pytest.approx(record["sigma"], rel=2e-7)
    assert res.statistic == pytest.approx(record["mmd2"], abs=MMD_ATOL)
    same_sigma = drift(ref, tst, method="mmd", sigma=record["sigma"], n_permutations=10)
    assert same_sigma.statistic == pytest.approx(record["mmd2"], abs=MMD_ATOL)
    # p-values come from other random permutations: both small or both large
    if record["p_val"] <= 0.01:
        assert res.p_value <= 0.02
    if record["p_val"] >= 0.5:
        assert res.p_value >= 0.2


@pytest.mark.parametrize("record", REFERENCE["ks"], ids=lambda r: f"{r['name']}-{r['correction']}")
def test_ks_matches_dataeval(record):
    case = CASES[record["name"]]
    assert make_ref.checksum(case["reference"], case["test"]) == record["checksum"]
    res = drift(case["reference"], case["test"], method="ks", correction=record["correction"])
    np.testing.assert_allclose(res.feature_p_values, record["p_vals"], rtol=1e-6, atol=1e-45)
    np.testing.assert_allclose(res.feature_statistics, record["distances"], rtol=0, atol=1e-7)
    assert res.statistic == pytest.approx(record["distance"], abs=1e-7)
    assert res.drifted == record["drifted"]
    assert res.threshold == record["threshold"]
    p = np.asarray(record["p_vals"])
    assert set(res.features.tolist()) <= set(np.flatnonzero(p < 0.05).tolist())
    if record["correction"] == "bonferroni":
        assert set(res.features.tolist()) == set(np.flatnonzero(p < res.threshold).tolist())


def test_ks_finds_the_moved_features():
    case = CASES["two_features_moved"]
    res = drift(case["reference"], case["test"], method="ks")
    assert set(res.features.tolist()) == {3, 7}
    frame = res.to_dataframe()
    assert set(frame["feature"][:2]) == {3, 7}
    assert frame["drifted"].sum() == 2


# --------------------------------------------------------------------------- oracles


def test_knn_matches_bruteforce():
    rng = np.random.default_rng(1)
    ref, tst = rng.normal(size=(40, 3)), rng.normal(0.3, 1.0, (30, 3))
    k, n_perm, seed = 4, 300, 11
    res = drift(ref, tst, method="knn", k=k, n_permutations=n_perm, random_state=seed)
    x = np.concatenate([ref, tst]).astype(np.float32).astype(np.float64)
    dist = squareform(pdist(x))
    np.fill_diagonal(dist, np.inf)
    nbr = np.argsort(dist, axis=1, kind="stable")[:, :k]
    is_test = np.repeat([False, True], [40, 30])

    def same(z):
        return np.count_nonzero(z[nbr] == z[:, None])

    observed = same(is_test)
    perms = np.random.default_rng(seed).permuted(np.broadcast_to(is_test, (n_perm, 70)), axis=1)
    counts = np.array([same(z) for z in perms])
    assert res.statistic == observed / (70 * k)
    assert res.p_value == (1 + np.count_nonzero(counts >= observed)) / (n_perm + 1)
    assert res.threshold == np.sort(counts)[::-1][int(0.05 * n_perm)] / (70 * k)
    from_test = is_test[nbr].mean(axis=1)
    np.testing.assert_allclose(res.sample_scores, from_test[40:] - 29 / 69)
    np.testing.assert_allclose(res.reference_scores, 1 - from_test[:40] - 39 / 69)


def dataeval_mmd2(kernel, n):
    """DataEval's mmd2_from_kernel_matrix (zero diagonal, unbiased), in float64."""
    kernel = kernel - np.diag(np.diag(kernel))
    k_xx, k_yy, k_xy = kernel[:n, :n], kernel[n:, n:], kernel[n:, :n]
    m = len(kernel) - n
    return k_xx.sum() / (n * (n - 1)) + k_yy.sum() / (m * (m - 1)) - 2.0 * k_xy.mean()


def test_mmd_matches_bruteforce():
    rng = np.random.default_rng(2)
    ref, tst = rng.normal(size=(35, 4)), rng.normal(0.2, 1.2, (25, 4))
    n_perm, seed = 150, 5
    res = drift(ref, tst, method="mmd", n_permutations=n_perm, random_state=seed)
    r32, t32 = ref.astype(np.float32).astype(np.float64), tst.astype(np.float32).astype(np.float64)
    cross = np.sort(cdist(r32, t32, "sqeuclidean").ravel())
    # the median squared distance is kept in float32, as DataEval's
    assert res.sigma == pytest.approx(np.sqrt(0.5 * cross[35 * 25 // 2 - 1]), rel=1e-7)
    sigma = res.sigma
    x = np.concatenate([r32, t32])
    kernel = np.exp(-squareform(pdist(x, "sqeuclidean")) / (2 * sigma**2))
    observed = dataeval_mmd2(kernel, 35)
    assert res.statistic == pytest.approx(observed, rel=1e-10, abs=1e-13)
    is_ref = np.repeat([1.0, 0.0], [35, 25])
    perms = np.random.default_rng(seed).permuted(np.broadcast_to(is_ref, (n_perm, 60)), axis=1)
    permuted = []
    for a in perms:
        order = np.concatenate([np.flatnonzero(a == 1), np.flatnonzero(a == 0)])
        permuted.append(dataeval_mmd2(kernel[np.ix_(order, order)], 35))
    permuted = np.asarray(permuted)
    assert res.p_value == (1 + np.count_nonzero(permuted >= observed)) / (n_perm + 1)
    k0 = kernel - np.eye(60)
    witness = k0[35:, 35:].sum(axis=1) / 24 - k0[35:, :35].sum(axis=1) / 35
    np.testing.assert_allclose(res.sample_scores, witness, rtol=1e-10, atol=1e-13)
    ref_witness = k0[:35, :35].sum(axis=1) / 34 - k0[:35, 35:].sum(axis=1) / 25
    np.testing.assert_allclose(res.reference_scores, ref_witness, rtol=1e-10, atol=1e-13)


def test_ks_matches_scipy_per_feature():
    rng = np.random.default_rng(3)
    ref, tst = rng.normal(size=(50, 6)), rng.normal(size=(40, 6))
    tst[:, 2] += 2.0
    res = drift(ref, tst, method="ks", correction="fdr")
    for j in range(6):
        one = ks_2samp(ref[:, j].astype(np.float32), tst[:, j].astype(np.float32), method="exact")
        assert res.feature_statistics[j] == one.statistic
        assert res.feature_p_values[j] == one.pvalue
    p = np.sort(res.feature_p_values)
    assert res.p_value == min(1.0, (p * 6 / np.arange(1, 7)).min())
    bonf = drift(ref, tst, method="ks")
    assert bonf.p_value == min(1.0, 6 * p[0])
    assert bonf.features.tolist() == [2]


def test_median_bandwidth_skips_self_distances_of_one_array():
    """DataEval's sigma_median: the same array twice skips its n zero self-distances."""
    x = np.random.default_rng(4).normal(size=(30, 2)).astype(np.float32)
    d = np.sort(cdist(x.astype(np.float64), x.astype(np.float64), "sqeuclidean").ravel())
    expected = np.sqrt(0.5 * d[30 + (900 - 30) // 2 - 1])
    assert median_bandwidth(x, x.copy()) == pytest.approx(expected, rel=1e-6)


def test_median_bandwidth_of_huge_samples_uses_a_seeded_subset(monkeypatch):
    import sys

    module = sys.modules["datagauge.drift"]  # datagauge.drift is the function
    monkeypatch.setattr(module, "MEDIAN_MAX_PAIRS", 400)
    rng = np.random.default_rng(5)
    ref, tst = (
        rng.normal(size=(100, 2)).astype(np.float32),
        rng.normal(size=(80, 2)).astype(np.float32),
    )
    with pytest.raises(ValueError, match="needs an rng"):
        median_bandwidth(ref, tst)
    a = median_bandwidth(ref, tst, np.random.default_rng(0))
    b = median_bandwidth(ref, tst, np.random.default_rng(0))
    assert a == b
    assert a == pytest.approx(median_bandwidth(ref[:20], tst[:20]), rel=0.5)


# --------------------------------------------------------------------------- calibration


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("knn", {"k": 5, "n_permutations": 199}),
        ("mmd", {"n_permutations": 99}),
        ("ks", {}),
        ("ks", {"correction": "fdr"}),
    ],
)
def test_null_rejection_rate_is_about_alpha(method, kwargs):
    """Two samples of one distribution, 200 seeded trials: rejected at 0.05 in 1% to 10%."""
    rejected = 0
    for trial in range(200):
        rng = np.random.default_rng([17, trial])
        ref, tst = rng.normal(size=(30, 2)), rng.normal(size=(24, 2))
        rejected += drift(ref, tst, method=method, random_state=trial, **kwargs).drifted
    assert 0.01 <= rejected / 200 <= 0.10


@pytest.mark.parametrize("method", ["knn", "mmd", "ks"])
def test_power_under_a_shift(method):
    detected = 0
    for trial in range(20):
        rng = np.random.default_rng([23, trial])
        ref, tst = rng.normal(size=(60, 3)), rng.normal(0.9, 1.0, (50, 3))
        detected += drift(ref, tst, method=method, random_state=trial).drifted
    assert detected >= 19


@pytest.mark.parametrize("method", ["knn", "mmd"])
def test_drifted_samples_come_first(method):
    rng = np.random.default_rng(6)
    common = rng.normal(size=(200, 2))
    lost = rng.normal((-6.0, 6.0), 0.3, (25, 2))  # only in the reference
    new = rng.normal((6.0, 6.0), 0.3, (30, 2))  # only in the test
    ref = np.concatenate([common, lost])
    tst = np.concatenate([rng.normal(size=(150, 2)), new])
    res = drift(ref, tst, method=method, n_permutations=50)
    assert res.drifted
    assert set(res.samples[:30].tolist()) == set(range(150, 180))
    assert set(np.argsort(-res.reference_scores, kind="stable")[:25].tolist()) == set(
        range(200, 225)
    )
    frame = res.to_dataframe()
    assert frame["index"].tolist()[:30] == res.samples[:30].tolist()


# --------------------------------------------------------------------------- randomness


@pytest.mark.parametrize("method", ["knn", "mmd"])
def test_deterministic_given_random_state(method):
    rng = np.random.default_rng(7)
    ref, tst = rng.normal(size=(40, 2)), rng.normal(0.2, 1.0, (30, 2))
    a = drift(ref, tst, method=method, random_state=3).to_dict()
    assert drift(ref, tst, method=method, random_state=3).to_dict() == a
    gen = np.random.default_rng(3)
    assert drift(ref, tst, method=method, random_state=gen).to_dict() == a
    second = drift(ref, tst, method=method, random_state=gen)  # the generator advanced
    assert second.statistic == a["statistic"]
    assert drift(ref, tst, method=method, random_state=None).statistic == a["statistic"]
    state = np.random.get_state()  # noqa: NPY002 - checks the legacy global RNG is untouched
    drift(ref, tst, method=method, random_state=4)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # noqa: NPY002


def test_result_is_frozen_and_serialisable():
    rng = np.random.default_rng(8)
    ref, tst = rng.normal(size=(30, 3)), rng.normal(size=(20, 3))
    for method in ("knn", "mmd", "ks"):
        res = drift(ref, tst, method=method, n_permutations=None if method == "ks" else 20)
        with pytest.raises(AttributeError):
            res.drifted = True  # type: ignore[misc]
        json.dumps(res.to_dict())
        assert len(res.to_dataframe()) == (3 if method == "ks" else 20)
    res = drift(ref, tst, n_permutations=20)
    with pytest.raises(ValueError, match="read-only"):
        res.sample_scores[0] = 1.0  # type: ignore[index]


# --------------------------------------------------------------------------- bad input


REF = np.random.default_rng(9).normal(size=(20, 3))


def test_mismatched_features_and_nan():
    with pytest.raises(ValueError, match="reference has 3 features but test has 2"):
        drift(REF, REF[:, :2])
    with pytest.raises(ValueError, match="test contains 1 NaN"):
        drift(REF, np.where(np.arange(60).reshape(20, 3) == 5, np.nan, REF))
    with pytest.raises(ValueError, match="reference must be 2-D"):
        drift(REF[:, 0], REF)


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1])
def test_alpha_outside_the_unit_interval(alpha):
    with pytest.raises(ValueError, match="alpha must be strictly between 0 and 1"):
        drift(REF, REF, alpha=alpha)


def test_bad_options():
    with pytest.raises(TypeError, match="alpha must be a number"):
        drift(REF, REF, alpha="0.05")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method must be one of 'knn', 'mmd', 'ks'"):
        drift(REF, REF, method="cvm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="correction must be one of 'bonferroni', 'fdr'"):
        drift(REF, REF, method="ks", correction="holm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k=40 must be less than the number of samples"):
        drift(REF, REF, k=40)
    with pytest.raises(ValueError, match="n_permutations must be >= 1"):
        drift(REF, REF, n_permutations=0)
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        drift(REF, REF, method="mmd", sigma=0.0)
    with pytest.raises(TypeError, match="random_state must be None, an int >= 0"):
        drift(REF, REF, random_state="seed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="random_state must be >= 0"):
        drift(REF, REF, random_state=-1)


def test_options_of_another_method_are_errors():
    """sigma is the MMD's, correction the KS test's, n_permutations the permutation tests':
    given to another method they are errors, not silently ignored; None is the default."""
    with pytest.raises(ValueError, match=r"sigma applies only to method='mmd'.*drop sigma"):
        drift(REF, REF, method="knn", sigma=1)
    with pytest.raises(ValueError, match=r"sigma applies only to method='mmd'"):
        drift(REF, REF, method="ks", sigma=1.0)
    with pytest.raises(ValueError, match=r"n_permutations applies only.*drop n_permutations"):
        drift(REF, REF, method="ks", n_permutations=10)
    for method in ("knn", "mmd"):
        with pytest.raises(ValueError, match=r"correction applies only to method='ks'"):
            drift(REF, REF, method=method, correction="fdr")
        with pytest.raises(ValueError, match=r"correction applies only to method='ks'"):
            drift(REF, REF, method=method, correction="bonferroni")
    from datagauge import neighbor_graph

    graph, is_test = neighbor_graph(REF, 5), np.arange(20) >= 10
    with pytest.raises(ValueError, match=r"sigma applies only to method='mmd'"):
        drift(graph, is_test, k=5, sigma=1.0)
    # None is accepted everywhere and means the method's default
    none = {"sigma": None, "correction": None, "n_permutations": None}
    assert drift(REF, REF, method="knn", **none).to_dict() == drift(REF, REF).to_dict()
    mmd = drift(REF, REF, method="mmd", **none)
    assert mmd.to_dict() == drift(REF, REF, method="mmd").to_dict()
    ks = drift(REF, REF, method="ks", **none)
    assert ks.correction == "bonferroni"
    assert ks.to_dict() == drift(REF, REF, method="ks", correction="bonferroni").to_dict()


def test_too_few_samples():
    with pytest.raises(ValueError, match=r"test has 1 sample.*at least 2 are needed for method="):
        drift(REF, REF[:1], method="mmd")
    with pytest.raises(ValueError, match="test is empty"):
        drift(REF, REF[:0])
    assert drift(REF, REF[:1], method="ks").feature_p_values.shape == (3,)
    assert drift(REF[:1], REF[1:2], k=1, n_permutations=5).p_value == 1.0


def test_knn_from_a_graph_of_the_pooled_samples():
    """drift(graph, is_test) equals drift(reference, test) with the rows pooled in any order."""
    from datagauge import neighbor_graph

    rng = np.random.default_rng(3)
    ref, tst = rng.normal(0, 1, (60, 4)), rng.normal(0.4, 1, (40, 4))
    order = rng.permutation(100)
    pooled = np.concatenate([ref, tst])[order]
    is_test = order >= 60
    graph = neighbor_graph(pooled, 12)
    got = drift(graph, is_test, k=5, n_permutations=200, random_state=1)
    want = drift(ref, tst, k=5, n_permutations=200, random_state=1)
    assert got.statistic == want.statistic
    assert got.k == 5
    # the scores are the same per sample, listed in each one's own order
    test_rows = order[is_test] - 60
    ref_rows = order[~is_test]
    np.testing.assert_array_equal(got.sample_scores, want.sample_scores[test_rows])
    np.testing.assert_array_equal(got.reference_scores, want.reference_scores[ref_rows])
    assert 0 < got.p_value <= 1


def test_knn_graph_input_errors():
    from datagauge import neighbor_graph

    x = np.random.default_rng(0).normal(size=(30, 3))
    graph = neighbor_graph(x, 4)
    is_test = np.arange(30) >= 15
    with pytest.raises(ValueError, match="needs the embeddings"):
        drift(graph, is_test, method="mmd")
    with pytest.raises(ValueError, match="holds 4 neighbours"):
        drift(graph, is_test, k=10)
    with pytest.raises(ValueError, match="test is empty"):
        drift(graph, np.zeros(30, dtype=bool), k=3)


# --------------------------------------------------------------------------- scale


def _shifted_pair(seed, shift, n=(120, 100), d=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n[0], d)), rng.normal(size=(n[1], d)) + shift


@pytest.mark.parametrize("shift", [0.0, 0.6])
@pytest.mark.parametrize("scale", [1e-20, 1e-10, 1e10, 1e19])
def test_mmd_answer_does_not_depend_on_the_data_scale(scale, shift):
    """Once at 1e19 the squared distances overflowed float32 (p = 1, sigma = inf) and at 1e-20
    the bandwidth fell to the 1e-30 clip (statistic rounding noise). The kernel depends on
    |x - y| / sigma only: the same p-value, decision and statistic at every scale, sigma
    scaled along (the data differ from scale 1 by float32 rounding, about 6e-8)."""
    ref, tst = _shifted_pair(11, shift)
    n_perm = 200
    want = drift(ref, tst, method="mmd", n_permutations=n_perm, random_state=4)
    assert want.drifted == (shift > 0)  # the oracle: a null case and a drifted one
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or underflow warnings either
        got = drift(ref * scale, tst * scale, method="mmd", n_permutations=n_perm, random_state=4)
    assert got.drifted == want.drifted
    assert abs(got.p_value - want.p_value) <= 1 / (n_perm + 1)  # a near tie may flip
    assert got.statistic == pytest.approx(want.statistic, rel=1e-5, abs=1e-9)
    assert got.threshold == pytest.approx(want.threshold, rel=1e-5, abs=1e-9)
    assert got.sigma == pytest.approx(want.sigma * scale, rel=1e-6)
    np.testing.assert_allclose(got.sample_scores, want.sample_scores, rtol=1e-5, atol=1e-8)
    # a bandwidth given in the data's units scales along
    given = drift(ref * scale, tst * scale, method="mmd", sigma=1.5 * scale, n_permutations=n_perm)
    at_one = drift(ref, tst, method="mmd", sigma=1.5, n_permutations=n_perm)
    assert given.sigma == 1.5 * scale
    assert given.drifted == at_one.drifted
    assert abs(given.p_value - at_one.p_value) <= 1 / (n_perm + 1)
    assert given.statistic == pytest.approx(at_one.statistic, rel=1e-5, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    exponent=st.integers(-70, 100),
    shift=st.sampled_from([0.0, 0.3, 1.0]),
)
def test_mmd_scaling_by_a_power_of_two_changes_nothing(seed, exponent, shift):
    """Scaling by 2**e is exact in floating point, so every number is the same (sigma times
    2**e), from data near float32's smallest normal numbers to near its largest."""
    ref, tst = _shifted_pair(seed, shift, n=(30, 25), d=3)
    ref, tst = ref.astype(np.float32), tst.astype(np.float32)
    factor = np.float32(2.0**exponent)
    want = drift(ref, tst, method="mmd", n_permutations=50, random_state=seed)
    got = drift(ref * factor, tst * factor, method="mmd", n_permutations=50, random_state=seed)
    assert got.sigma == math.ldexp(want.sigma, exponent)
    assert (got.p_value, got.statistic, got.threshold) == (
        want.p_value,
        want.statistic,
        want.threshold,
    )
    np.testing.assert_array_equal(got.sample_scores, want.sample_scores)
    np.testing.assert_array_equal(got.reference_scores, want.reference_scores)
    assert median_bandwidth(ref * factor, tst * factor) == got.sigma


def test_mmd_extreme_bandwidths_are_the_kernel_limits():
    """A bandwidth far above every distance makes every kernel value 1, far below every one
    0: both give MMD 0 and p = 1, where sigma**2 once raised OverflowError or
    ZeroDivisionError."""
    ref, tst = _shifted_pair(3, 1.0, n=(30, 20), d=2)
    for sigma in (1e300, 1e-300):
        res = drift(ref, tst, method="mmd", sigma=sigma, n_permutations=20)
        assert (res.statistic, res.p_value, res.drifted, res.sigma) == (0.0, 1.0, False, sigma)
