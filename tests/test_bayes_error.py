"""Bayes error bounds against DataEval 1.1.4 (recorded outputs) and brute-force oracles."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import minimum_spanning_tree as scipy_mst
from scipy.spatial.distance import pdist, squareform
from scipy.stats import mode

from _comparison_reference import REFERENCE, make_ref
from datagauge.bayes_error import bayes_error, knn_lower_bound
from datagauge.graph import neighbor_graph

CASES = {c["name"]: c for c in make_ref.ber_cases()}


# --------------------------------------------------------------------------- the oracles


def dataeval_lower(value, classes, k):
    """DataEval 1.1.4's _knn_lowerbound, copied (dataeval/core/_ber.py)."""
    if value <= 1e-12:
        return 0.0
    if classes == 2 and k != 1:
        if k > 5:
            alpha = 0.3399
            beta = 0.9749
            a_k = alpha * np.sqrt(k) / (k - 3.25) * (1 + beta / (np.sqrt(k - 3)))
            return value / (1 + a_k)
        if k > 2:
            return value / (1 + (1 / np.sqrt(k)))
        return value / 2
    return float(
        ((classes - 1) / classes) * (1 - np.sqrt(max(0, 1 - ((classes / (classes - 1)) * value))))
    )


def oracle_knn(x, y, k):
    """Leave-one-out k-NN error by brute force (ties in distance by index, in votes by the
    smallest label: scipy.stats.mode), and DataEval's bounds from it."""
    dist = squareform(pdist(np.asarray(x, dtype=np.float32).astype(np.float64)))
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    modal = mode(y[nearest], axis=1, keepdims=False).mode
    upper = float(np.count_nonzero(modal != y) / len(y))
    return upper, dataeval_lower(upper, np.unique(y).size, k)


def oracle_mst(x, y):
    """DataEval's ber_mst formula over SciPy's minimum spanning tree of the dense matrix."""
    dist = squareform(pdist(np.asarray(x, dtype=np.float32).astype(np.float64)))
    tree = scipy_mst(dist + 1.0 - np.eye(len(x))).tocoo()  # +1: zeros would be no edge
    m, n = np.unique(y).size, len(y)
    mismatches = np.count_nonzero(y[tree.row] != y[tree.col]) - (m - 1)
    deltas = mismatches / (2 * n)
    upper = float(2 * deltas)
    lower = float(((m - 1) / m) * (1 - max(1 - 2 * (m / (m - 1)) * deltas, 0) ** 0.5))
    return upper, lower


# --------------------------------------------------------------------------- DataEval


@pytest.mark.parametrize("record", REFERENCE["ber"], ids=lambda r: r["name"])
def test_knn_matches_dataeval_exactly(record):
    case = CASES[record["name"]]
    assert make_ref.checksum(case["x"], case["y"]) == record["checksum"]
    for k, expected in record["knn"].items():
        res = bayes_error(case["x"], case["y"], k=int(k))
        assert res.upper == expected["upper_bound"]
        assert res.lower == expected["lower_bound"]
        assert res.k == int(k)


@pytest.mark.parametrize("tree", ["exact", "knn"])
@pytest.mark.parametrize("record", REFERENCE["ber"], ids=lambda r: r["name"])
def test_mst_matches_dataeval_exactly(record, tree):
    case = CASES[record["name"]]
    res = bayes_error(case["x"], case["y"], method="mst", tree=tree)
    assert res.upper == record["mst"]["upper_bound"]
    assert res.lower == record["mst"]["lower_bound"]
    assert res.tree == tree


# --------------------------------------------------------------------------- oracles


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_knn_matches_bruteforce(k, n_classes):
    rng = np.random.default_rng(10 * k + n_classes)
    y = rng.integers(0, n_classes, 150)
    x = rng.normal(size=(150, 3)) + y[:, None] * 0.8
    res = bayes_error(x, y, k=k)
    upper, lower = oracle_knn(x, y, k)
    assert res.upper == upper
    assert res.lower == lower
    assert res.errors == round(upper * 150)
    assert 0.0 <= res.lower <= res.upper <= 1.0


@pytest.mark.parametrize("n_classes", [2, 3, 6])
def test_mst_matches_bruteforce(n_classes):
    rng = np.random.default_rng(n_classes)
    y = rng.integers(0, n_classes, 200)
    x = rng.normal(size=(200, 4)) + y[:, None] * 0.7
    res = bayes_error(x, y, method="mst")
    assert (res.upper, res.lower) == oracle_mst(x, y)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7, 20])
@pytest.mark.parametrize("classes", [2, 3, 10])
def test_lower_bound_formula_is_dataevals(k, classes):
    for value in (0.0, 1e-13, 1e-12, 0.013, 0.2, 0.45, 0.5, 0.9, 1.0):
        assert knn_lower_bound(value, classes, k) == dataeval_lower(value, classes, k)


def test_graph_gives_the_same_answer():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    x = rng.normal(size=(300, 5)) + y[:, None]
    graph = neighbor_graph(x, 10)
    for k in (1, 4, 10):
        assert bayes_error(graph, y, k=k) == bayes_error(x, y, k=k)


def test_separable_and_random_labels():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 0.1, (100, 2)), rng.normal(5, 0.1, (100, 2))])
    y = np.repeat([0, 1], 100)
    for method in ("knn", "mst"):
        res = bayes_error(x, y, method=method)
        assert res.upper == 0.0
        assert res.lower == 0.0
    noise = rng.integers(0, 2, 200)
    assert bayes_error(x, noise, k=1).upper > 0.3


def test_string_labels_equal_their_codes():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 120)
    x = rng.normal(size=(120, 2)) + y[:, None]
    names = np.array(["ant", "bee", "cat"])[y]
    for kwargs in ({"k": 1}, {"k": 4}, {"method": "mst"}):
        a = bayes_error(x, y, **kwargs)
        b = bayes_error(x, names, **kwargs)
        assert (a.upper, a.lower, a.errors) == (b.upper, b.lower, b.errors)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(6, 80), method=st.sampled_from(["knn", "mst"]))
def test_permutation_invariance(seed, n, method):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    perm = rng.permutation(n)
    kw = {"k": 1} if method == "knn" else {}
    a = bayes_error(x, y, method=method, **kw)
    b = bayes_error(x[perm], y[perm], method=method, **kw)
    assert (a.upper, a.lower) == (b.upper, b.lower)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([2.0**-30, 0.25, 8.0, 2.0**40]),
    method=st.sampled_from(["knn", "mst"]),
)
def test_scale_invariance(seed, scale, method):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    y[:3] = [0, 1, 2]
    kw = {"k": 3} if method == "knn" else {}
    a = bayes_error(x, y, method=method, **kw)
    b = bayes_error(x * np.float32(scale), y, method=method, **kw)
    assert (a.upper, a.lower) == (b.upper, b.lower)


def test_result_is_frozen_and_serialisable():
    rng = np.random.default_rng(4)
    res = bayes_error(rng.normal(size=(40, 2)), rng.integers(0, 2, 40))
    with pytest.raises(AttributeError):
        res.upper = 0.5  # type: ignore[misc]
    d = res.to_dict()
    json.dumps(d)
    assert d["method"] == "knn"
    assert list(res.to_dataframe().columns) == list(d)
    assert math.isfinite(res.lower)


# --------------------------------------------------------------------------- bad input


X = np.random.default_rng(5).normal(size=(20, 3))
Y = np.repeat([0, 1], 10)


def test_wrong_length_labels():
    with pytest.raises(ValueError, match="labels has 19 entries but there are 20 samples"):
        bayes_error(X, Y[:19])


def test_nan_embeddings_and_labels():
    with pytest.raises(ValueError, match="NaN"):
        bayes_error(np.where(X > 1.5, np.nan, X), Y)
    with pytest.raises(ValueError, match="NaN or infinite values"):
        bayes_error(X, np.where(np.arange(20) == 4, np.nan, 1.0))


def test_single_class():
    with pytest.raises(ValueError, match=r"single class .* at least two"):
        bayes_error(X, np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="single class"):
        bayes_error(X, np.zeros(20, dtype=int), method="mst")


def test_k_out_of_range():
    with pytest.raises(ValueError, match="k=20 must be less than the number of samples"):
        bayes_error(X, Y, k=20)
    with pytest.raises(ValueError, match="k must be >= 1"):
        bayes_error(X, Y, k=0)
    with pytest.raises(TypeError, match="k must be an integer"):
        bayes_error(X, Y, k=1.5)  # type: ignore[arg-type]


def test_unknown_options():
    with pytest.raises(ValueError, match="method must be one of 'knn', 'mst'"):
        bayes_error(X, Y, method="kde")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tree must be one of 'exact', 'knn'"):
        bayes_error(X, Y, method="mst", tree="prim")  # type: ignore[arg-type]


def test_options_of_the_other_method_are_errors():
    """k is the k-NN classifier's, tree the spanning tree's: given to the other method they
    are errors (once silently ignored, the result showing k=None), and the defaults work."""
    with pytest.raises(ValueError, match=r"k applies only to method='knn'.*drop k"):
        bayes_error(X, Y, method="mst", k=5)
    with pytest.raises(ValueError, match=r"k applies only to method='knn'"):
        bayes_error(X, Y, method="mst", k=1)  # even the k-NN default, given explicitly
    with pytest.raises(ValueError, match=r"tree applies only to method='mst'.*drop tree"):
        bayes_error(X, Y, method="knn", tree="knn")
    with pytest.raises(ValueError, match=r"tree applies only to method='mst'"):
        bayes_error(X, Y, tree="exact")
    knn = bayes_error(X, Y, k=None, tree=None)
    assert (knn.k, knn.tree) == (1, None)
    assert knn == bayes_error(X, Y, k=1)
    mst = bayes_error(X, Y, method="mst", k=None, tree=None)
    assert (mst.k, mst.tree) == (None, "exact")
    assert mst == bayes_error(X, Y, method="mst", tree="exact")


def test_graph_misuse():
    graph = neighbor_graph(X, 3)
    with pytest.raises(TypeError, match=r"needs the embeddings themselves.*method='knn'"):
        bayes_error(graph, Y, method="mst")
    with pytest.raises(ValueError, match="holds 3 neighbours per point but k=5"):
        bayes_error(graph, Y, k=5)
    with pytest.raises(ValueError, match="labels has 10 entries but there are 20 samples"):
        bayes_error(graph, Y[:10])
