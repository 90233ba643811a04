"""Henze-Penrose divergence against DataEval 1.1.4 (recorded outputs) and brute force."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import minimum_spanning_tree as scipy_mst
from scipy.spatial.distance import pdist, squareform

from _comparison_reference import REFERENCE, make_ref
from datagauge.divergence import divergence

CASES = {c["name"]: c for c in make_ref.divergence_cases()}


def oracle(a, b, method):
    """(divergence, errors) by brute force: dense distances, argmin / SciPy's tree."""
    x = np.concatenate([a, b]).astype(np.float32).astype(np.float64)
    origin = np.repeat([0, 1], [len(a), len(b)])
    dist = squareform(pdist(x))
    if method == "fnn":
        np.fill_diagonal(dist, np.inf)
        errors = int(np.count_nonzero(origin[dist.argmin(axis=1)] != origin))
    else:
        tree = scipy_mst(dist + 1.0 - np.eye(len(x))).tocoo()
        errors = int(np.count_nonzero(origin[tree.row] != origin[tree.col])) - 1
    n_a, n_b = len(a), len(b)
    return max(0.0, 1 - ((n_a + n_b) / (2 * n_a * n_b)) * errors), errors


# --------------------------------------------------------------------------- DataEval


@pytest.mark.parametrize("method", ["fnn", "mst"])
@pytest.mark.parametrize("record", REFERENCE["divergence"], ids=lambda r: r["name"])
def test_matches_dataeval_exactly(record, method):
    case = CASES[record["name"]]
    assert make_ref.checksum(case["a"], case["b"]) == record["checksum"]
    expected = record[method]
    trees = ["exact", "knn"] if method == "mst" else ["exact"]
    for tree in trees:
        res = divergence(case["a"], case["b"], method=method, tree=tree)
        if method == "mst" and tree == "exact" and record["name"] == "three_clusters":
            # DataEval's tree joins A-B-C; the minimum tree joins B-A-C: one more edge
            # between the samples (A versus B and C).
            assert res.errors == expected["errors"] + 1
            continue
        assert res.divergence == expected["divergence"]
        assert res.errors == expected["errors"]


def test_dataeval_docstring_values():
    """The values DataEval's own docstring shows, reproduced."""
    a, b, c = (
        CASES["dataeval_docstring_ab"]["a"],
        CASES["dataeval_docstring_ab"]["b"],
        CASES["dataeval_docstring_ac"]["b"],
    )
    assert divergence(a, b, method="mst").to_dict() == {
        "divergence": 0.040000000000000036,
        "errors": 48,
        "method": "mst",
        "tree": "exact",
        "n_a": 50,
        "n_b": 50,
    }
    assert (divergence(a, c, method="mst").divergence, divergence(a, c).divergence) == (0.96, 1.0)
    assert divergence(a, b).errors == 54


# --------------------------------------------------------------------------- oracles


@pytest.mark.parametrize("method", ["fnn", "mst"])
@pytest.mark.parametrize(("n_a", "n_b", "shift"), [(60, 60, 0.0), (80, 40, 0.5), (30, 90, 2.0)])
def test_matches_bruteforce(method, n_a, n_b, shift):
    rng = np.random.default_rng(n_a + n_b)
    a = rng.normal(size=(n_a, 3))
    b = rng.normal(shift, 1.0, (n_b, 3))
    res = divergence(a, b, method=method)
    assert (res.divergence, res.errors) == oracle(a, b, method)
    assert (res.n_a, res.n_b) == (n_a, n_b)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_a=st.integers(1, 40),
    n_b=st.integers(1, 40),
    method=st.sampled_from(["fnn", "mst"]),
)
def test_symmetric(seed, n_a, n_b, method):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n_a, 2)), rng.normal(0.3, 1.0, (n_b, 2))
    ab, ba = divergence(a, b, method=method), divergence(b, a, method=method)
    assert (ab.divergence, ab.errors) == (ba.divergence, ba.errors)
    assert 0.0 <= ab.divergence <= 1.0


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([2.0**-30, 0.5, 4.0, 2.0**40]),
    method=st.sampled_from(["fnn", "mst"]),
)
def test_scale_and_translation_invariance(seed, scale, method):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(50, 3)).astype(np.float32)
    b = rng.normal(0.5, 1.0, (40, 3)).astype(np.float32)
    res = divergence(a, b, method=method)
    s = np.float32(scale)
    assert divergence(a * s, b * s, method=method).errors == res.errors
    shift = np.float32(8.0)  # exact in float32 at this magnitude
    assert divergence(a + shift, b + shift, method=method).errors == res.errors


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), method=st.sampled_from(["fnn", "mst"]))
def test_permuting_within_a_sample_changes_nothing(seed, method):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(30, 2)), rng.normal(size=(25, 2))
    res = divergence(a, b, method=method)
    assert divergence(a[rng.permutation(30)], b[rng.permutation(25)], method=method) == res


def test_same_and_separated_samples():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(100, 4))
    assert divergence(a, a.copy()).divergence == 0.0  # every point's copy is its neighbour
    assert divergence(a, a + 100.0).divergence == 1.0
    assert divergence(a, a + 100.0, method="mst").divergence == 1.0


def test_result_is_frozen_and_serialisable():
    rng = np.random.default_rng(2)
    res = divergence(rng.normal(size=(20, 2)), rng.normal(size=(30, 2)), method="mst")
    with pytest.raises(AttributeError):
        res.errors = 0  # type: ignore[misc]
    json.dumps(res.to_dict())
    assert res.to_dataframe().shape == (1, 6)


# --------------------------------------------------------------------------- bad input


A = np.random.default_rng(3).normal(size=(20, 3))


def test_mismatched_features():
    with pytest.raises(ValueError, match="a has 3 features but b has 4"):
        divergence(A, np.zeros((5, 4)))


def test_nan_and_empty():
    with pytest.raises(ValueError, match="b contains 1 NaN"):
        divergence(A, np.where(np.arange(15).reshape(5, 3) == 7, np.nan, 0.0))
    with pytest.raises(ValueError, match="a is empty"):
        divergence(np.zeros((0, 3)), A)
    with pytest.raises(ValueError, match="b must be 2-D"):
        divergence(A, A[:, 0])


def test_unknown_options():
    with pytest.raises(ValueError, match="method must be one of 'fnn', 'mst'"):
        divergence(A, A, method="knn")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tree must be one of 'exact', 'knn'"):
        divergence(A, A, method="mst", tree="approx")  # type: ignore[arg-type]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 40), st.integers(2, 40))
def test_graph_of_the_pooled_samples_gives_the_same_answer(seed, n_a, n_b):
    """divergence(graph, in_b) equals divergence(a, b) whatever the order of the pooled rows."""
    from datagauge import neighbor_graph

    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, (n_a, 3)), rng.normal(0.5, 1, (n_b, 3))
    order = rng.permutation(n_a + n_b)
    pooled = np.concatenate([a, b])[order]
    in_b = order >= n_a
    graph = neighbor_graph(pooled, 2)
    got = divergence(graph, in_b)
    want = divergence(a, b)
    assert (got.errors, got.divergence, got.n_a, got.n_b) == (
        want.errors,
        want.divergence,
        want.n_a,
        want.n_b,
    )
    assert divergence(graph, in_b.astype(np.int64)) == got


def test_graph_input_errors():
    from datagauge import neighbor_graph

    x = np.random.default_rng(0).normal(size=(20, 3))
    graph = neighbor_graph(x, 3)
    in_b = np.arange(20) >= 10
    with pytest.raises(ValueError, match="method='mst' needs the embeddings"):
        divergence(graph, in_b, method="mst")
    with pytest.raises(ValueError, match="one entry per row of the graph"):
        divergence(graph, in_b[:-1])
    with pytest.raises(ValueError, match="boolean"):
        divergence(graph, np.where(in_b, 2, 0))
    with pytest.raises(ValueError, match="b is empty"):
        divergence(graph, np.zeros(20, dtype=bool))
    with pytest.raises(ValueError, match="a is empty"):
        divergence(graph, np.ones(20, dtype=bool))
