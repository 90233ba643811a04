"""Label errors against DataEval 1.1.4 (recorded outputs) and brute-force re-implementations."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist, pdist, squareform

from datagauge._results import LabelErrorResult
from datagauge.graph import neighbor_graph
from datagauge.label_errors import label_errors

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "label_errors_dataeval.json"
_spec = importlib.util.spec_from_file_location(
    "make_label_errors_reference", DATA / "make_label_errors_reference.py"
)
assert _spec is not None
assert _spec.loader is not None
make_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_ref)

SCORE_RTOL = 1e-5


# --------------------------------------------------------------------------- the oracles


def oracle_distance_ratio(x, y, k):
    """DataEval 1.1.4's definition by brute force in float64: (scores, suggestions, k').

    A suggestion is a list of 0, 1 or 2 labels; equal vote shares rank the smaller label first.
    """
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    dist = squareform(pdist(x64))
    classes, codes = np.unique(y, return_inverse=True)
    kk = min(k, int(np.bincount(codes).min()) - 1)
    weights = np.ceil(np.linspace(kk, 1, kk) / 3)
    scores = np.empty(len(x64))
    suggestions = []
    for i in range(len(x64)):
        same = codes == codes[i]
        same[i] = False
        intra = np.sort(dist[i, same])[:kk]
        other = np.flatnonzero(codes != codes[i])
        nearest = other[np.argsort(dist[i, other], kind="stable")[:kk]]
        scores[i] = intra.mean() / dist[i, nearest].mean()
        share = np.zeros(classes.size)
        np.add.at(share, codes[nearest], weights)
        share /= weights.sum()
        ranked = sorted(range(classes.size), key=lambda c, s=share: (-s[c], c))
        top, second = ranked[0], ranked[1]
        if share[top] < 0.4:
            suggestions.append([])
        elif share[top] - share[second] < 0.2:
            suggestions.append([classes[top], classes[second]])
        else:
            suggestions.append([classes[top]])
    return scores, suggestions, kk


def oracle_knn_vote(x, y, k):
    """Share of the k nearest (ties by index) with another label; most common label (ties:
    smallest)."""
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    dist = squareform(pdist(x64))
    np.fill_diagonal(dist, np.inf)
    classes, codes = np.unique(y, return_inverse=True)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    scores = (codes[nearest] != codes[:, None]).mean(axis=1)
    counts = np.stack([np.bincount(row, minlength=classes.size) for row in codes[nearest]])
    return scores, classes[counts.argmax(axis=1)]


def as_suggestions(result: LabelErrorResult) -> list[list]:
    """The result's suggestions in DataEval's form: [], [label] or [label, label]."""
    out = []
    for own, first, second in zip(result.labels, result.suggested, result.alternative, strict=True):
        out.append([v for v in (first, second) if v != own])
    return out


def neighbor_tie_dependent(x, y, k, rows):
    """Rows whose suggestion depends on the order of other-class neighbours at equal distances
    (DataEval's scikit-learn search orders them arbitrarily): a run of equal distances that
    holds two labels and two vote weights (a neighbour beyond the k-th weighs 0)."""
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    weights = np.append(np.ceil(np.linspace(k, 1, k) / 3), 0.0)
    out = set()
    for i in rows:
        other = np.flatnonzero(y != y[i])
        d = cdist(x64[i : i + 1], x64[other])[0]
        order = np.argsort(d, kind="stable")
        ds, ls = d[order], y[other][order]
        for a in range(k):
            run = np.flatnonzero(ds == ds[a])
            w = weights[np.minimum(run, k)]
            if np.unique(ls[run]).size > 1 and np.unique(w).size > 1:
                out.add(int(i))
                break
    return out


def blobs(seed, n_per_class, d, spread=1.5, labels=None):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(spread * c, 1.0, (m, d)) for c, m in enumerate(n_per_class)]
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    if labels is not None:
        y = np.asarray(labels)[y]
    perm = rng.permutation(y.size)
    return np.concatenate(parts)[perm].astype(np.float32), y[perm]


# --------------------------------------------------------------------------- DataEval


REFERENCE_CASES = list(
    zip(make_ref.cases(), json.loads(REFERENCE.read_text())["cases"], strict=True)
)


@pytest.mark.parametrize(
    ("case", "record"), REFERENCE_CASES, ids=[c["name"] for c, _ in REFERENCE_CASES]
)
def test_matches_dataeval_reference(case, record):
    x, y, k = case["x"], case["y"], case["k"]
    assert make_ref.checksum(x, y) == record["checksum"], "the reference data changed"
    res = label_errors(x, y, k=k)
    assert res.k == record["k_used"]
    expected = np.asarray(record["scores"])
    if case["name"] == "digits_raw_flips":
        # integer pixels: every distance is exact, so the float32 scores are bit-identical
        np.testing.assert_array_equal(res.scores.astype(np.float32), expected.astype(np.float32))
    else:
        np.testing.assert_allclose(res.scores, expected, rtol=SCORE_RTOL)
    np.testing.assert_array_equal(res.indices, record["error_rank"])
    errors = {int(i): v for i, v in record["errors"].items()}
    assert sorted(res.flagged.tolist()) == sorted(errors)
    # flagged, most suspect first: DataEval's ranking restricted to its errors
    rank = np.asarray(record["error_rank"])
    np.testing.assert_array_equal(res.flagged, rank[np.isin(rank, list(errors))])
    ours = as_suggestions(res)
    skip = set(record["tie_order_dependent"])
    if case["name"] == "digits_raw_flips":
        skip |= neighbor_tie_dependent(x, y, res.k, list(errors))
    compared = [i for i in errors if i not in skip]
    assert len(compared) >= 0.85 * len(errors), (len(compared), len(errors))
    for i in compared:
        assert errors[i][0] == y[i]
        assert [int(v) for v in ours[i]] == errors[i][1], i


# --------------------------------------------------------------------------- brute force


@pytest.mark.parametrize(
    ("sizes", "d", "k"),
    [
        ([30, 25], 2, 5),
        ([40, 30, 20], 3, 10),
        ([50, 40, 6], 4, 50),
        ([20, 20, 20, 20], 8, 7),
        ([150, 120, 130], 40, 10),  # wide: the other-class search goes to FAISS brute force
    ],
)
def test_distance_ratio_matches_bruteforce(sizes, d, k):
    x, y = blobs(sum(sizes) + d, sizes, d)
    res = label_errors(x, y, k=k)
    scores, suggestions, kk = oracle_distance_ratio(x, y, k)
    assert res.k == kk
    np.testing.assert_allclose(res.scores, scores, rtol=SCORE_RTOL)
    assert as_suggestions(res) == suggestions
    assert set(res.flagged.tolist()) == set(np.flatnonzero(scores >= 1.0).tolist())
    np.testing.assert_array_equal(res.indices, np.lexsort((np.arange(y.size), -res.scores)))


def test_string_labels_give_the_same_answer_as_their_codes():
    x, y = blobs(3, [30, 30, 30], 3)
    names = np.asarray(["zebra", "ant", "moth"])
    res_int = label_errors(x, y, k=10)
    res_str = label_errors(x, names[y], k=10)
    # np.unique sorts the names: ant < moth < zebra, so the class order changes
    np.testing.assert_array_equal(res_int.scores, res_str.scores)
    assert res_str.suggested.dtype == names.dtype
    _, suggestions, _ = oracle_distance_ratio(x, names[y], 10)
    assert as_suggestions(res_str) == suggestions


def test_knn_vote_matches_bruteforce():
    x, y = blobs(5, [40, 35, 25], 3, spread=1.0)
    for k in (1, 4, 15):
        res = label_errors(x, y, k=k, method="knn_vote")
        scores, suggested = oracle_knn_vote(x, y, k)
        np.testing.assert_array_equal(res.scores, scores)
        np.testing.assert_array_equal(res.suggested, suggested)
        np.testing.assert_array_equal(res.alternative, y)
        assert set(res.flagged.tolist()) == set(np.flatnonzero(scores > 0.5).tolist())
        np.testing.assert_array_equal(res.indices, np.lexsort((np.arange(y.size), -scores)))
        assert res.k == k


def test_planted_flips_rank_near_the_top():
    x, y, y_true, flipped = make_ref.digits(raw=False)
    for method in ("distance_ratio", "knn_vote"):
        res = label_errors(x, y, k=20, method=method)
        found = np.isin(flipped, res.indices[:60]).sum()
        assert found >= 0.8 * flipped.size, (method, found)
        # most planted flips are flagged, and their suggestion is the true label
        flagged = np.isin(flipped, res.flagged)
        assert flagged.mean() >= 0.8, method
        assert (res.suggested[flipped] == y_true[flipped]).mean() >= 0.8, method


def test_boundaries_by_hand():
    # 1-D: sample 0 (class 0) has its 4 own-class neighbours at 1, 2, 3, 4 and its 4 nearest
    # other-class neighbours at 1 (class 1), 2 (class 2), 3 (class 3), 4 (class 4); the other
    # members of each class lie far away. k = 4: weights ceil([4, 3, 2, 1] / 3) = 2, 1, 1, 1.
    x = [0.0, -1.0, -2.0, -3.0, -4.0]
    y = [0] * 5
    for c in range(1, 5):
        x += [float(c)] + [100.0 * c + j for j in range(1, 5)]
        y += [c] * 5
    res = label_errors(np.asarray(x)[:, None], np.asarray(y), k=10)
    assert res.k == 4  # the smallest class has 5 samples
    assert res.scores[0] == 1.0  # 2.5 / 2.5: flagged, as DataEval flags score >= 1
    assert 0 in res.flagged
    # shares 0.4, 0.2, 0.2, 0.2: the best reaches 0.4 and leads by exactly 0.2 -> one label
    assert res.suggested[0] == 1
    assert res.alternative[0] == 0


def test_copies_across_classes_by_hand():
    # copies of one point in two classes: 0 / 0 is 1 (flagged); a copy only in the other
    # class: x / 0 is +inf (flagged first)
    x = np.zeros((12, 1))
    x[8:] = [[5.0], [6.0], [7.0], [9.0]]
    y = np.array([0] * 4 + [1] * 4 + [0, 0, 1, 1])
    res = label_errors(x, y, k=3)
    np.testing.assert_array_equal(res.scores[:8], 1.0)
    assert set(range(8)) <= set(res.flagged.tolist())
    x = np.array([[0.0], [0.0], [0.0], [0.0], [3.0], [4.0], [5.0], [6.0]])
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    res = label_errors(x, y, k=2)
    assert np.isinf(res.scores[0])  # its own class is at 3, 4; two class-0 copies at 0
    assert res.indices[0] == 0
    assert not np.isnan(res.scores).any()


# --------------------------------------------------------------------------- properties


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(12, 60), d=st.integers(1, 5))
def test_permutation_invariance(seed, n, d):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, 3, n)
    y[:6] = [0, 0, 1, 1, 2, 2]  # every class at least twice
    perm = rng.permutation(n)
    for method in ("distance_ratio", "knn_vote"):
        a = label_errors(x, y, k=4, method=method)
        b = label_errors(x[perm], y[perm], k=4, method=method)
        np.testing.assert_allclose(b.scores, a.scores[perm], rtol=1e-6)
        if method == "distance_ratio":  # no tied distances in continuous data
            np.testing.assert_array_equal(b.suggested, a.suggested[perm])
            np.testing.assert_array_equal(b.alternative, a.alternative[perm])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([2.0**-30, 1e-3, 7.0, 2.0**35]))
def test_distance_ratio_ignores_the_scale(seed, scale):
    x, y = blobs(seed % 1000, [15, 12, 10], 3)
    a = label_errors(x, y, k=5)
    b = label_errors(x * np.float32(scale), y, k=5)
    np.testing.assert_allclose(b.scores, a.scores, rtol=1e-5)
    np.testing.assert_array_equal(b.suggested, a.suggested)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 8))
def test_knn_vote_graph_equals_embeddings(seed, k):
    x, y = blobs(seed % 1000, [20, 15, 10], 2, spread=1.0)
    graph = neighbor_graph(x, k=8)
    a = label_errors(x, y, k=k, method="knn_vote")
    b = label_errors(graph, y, k=k, method="knn_vote")
    for field in ("scores", "indices", "flagged", "suggested", "alternative"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


# --------------------------------------------------------------------------- labels accepted


def test_categorical_and_object_labels_are_accepted():
    pd = pytest.importorskip("pandas")
    x, y = blobs(8, [20, 20], 2)
    names = np.asarray(["no", "yes"])[y]
    expected = label_errors(x, names, k=5)
    for given_labels in (
        pd.Categorical(names),
        pd.Series(names, dtype="category"),
        names.astype(object),
        pd.Series(names),
        names.tolist(),
    ):
        res = label_errors(x, given_labels, k=5)
        np.testing.assert_array_equal(res.scores, expected.scores)
        assert [str(v) for v in res.suggested] == [str(v) for v in expected.suggested]


def test_float_and_bool_labels_are_accepted():
    x, y = blobs(9, [15, 15], 2)
    expected = label_errors(x, y, k=5).scores
    np.testing.assert_array_equal(label_errors(x, y.astype(float), k=5).scores, expected)
    np.testing.assert_array_equal(label_errors(x, y.astype(bool), k=5).scores, expected)


def test_result_is_frozen_and_serialisable():
    pytest.importorskip("pandas")
    x, y = blobs(10, [15, 15], 2)
    res = label_errors(x, np.asarray(["a", "b"])[y], k=5)
    assert "float64 array (30,)" in repr(res)
    with pytest.raises(ValueError, match="read-only"):
        res.scores[0] = 1.0
    with pytest.raises(AttributeError):
        res.k = 3  # type: ignore[misc]
    json.dumps(res.to_dict())
    frame = res.to_dataframe()
    assert list(frame.columns) == [
        "rank",
        "index",
        "label",
        "suggested",
        "alternative",
        "score",
        "flagged",
    ]
    assert frame["index"].tolist() == res.indices.tolist()


# --------------------------------------------------------------------------- bad input


X_BAD, Y_BAD = blobs(11, [10, 10], 2)


def test_wrong_length_labels():
    with pytest.raises(ValueError, match="labels has 19 entries but there are 20 samples"):
        label_errors(X_BAD, Y_BAD[:-1], k=3)
    graph = neighbor_graph(X_BAD, k=5)
    with pytest.raises(ValueError, match="labels has 21 entries but there are 20 samples"):
        label_errors(graph, np.append(Y_BAD, 0), k=3, method="knn_vote")


def test_nan_and_missing_labels():
    y = Y_BAD.astype(float)
    y[4] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite values \(first at index 4\)"):
        label_errors(X_BAD, y, k=3)
    obj = np.asarray(["a", "b"] * 10, dtype=object)
    obj[7] = None
    with pytest.raises(ValueError, match=r"1 missing values .* first at index 7"):
        label_errors(X_BAD, obj, k=3)


def test_categorical_with_missing_labels():
    pd = pytest.importorskip("pandas")
    cat = pd.Categorical(["a", "b"] * 9 + [None, "a"])
    with pytest.raises(ValueError, match=r"missing values.*first at index 18"):
        label_errors(X_BAD, cat, k=3, method="knn_vote")


def test_mixed_type_labels():
    mixed = np.asarray(["a", 1] * 10, dtype=object)
    with pytest.raises(TypeError, match="cannot be sorted together"):
        label_errors(X_BAD, mixed, k=3)


def test_two_dimensional_labels():
    with pytest.raises(ValueError, match=r"argmax\(axis=1\)"):
        label_errors(X_BAD, np.eye(2)[Y_BAD], k=3)


def test_unknown_method():
    with pytest.raises(ValueError, match="method must be one of 'distance_ratio', 'knn_vote'"):
        label_errors(X_BAD, Y_BAD, method="cleanlab")


def test_distance_ratio_needs_embeddings():
    graph = neighbor_graph(X_BAD, k=5)
    with pytest.raises(TypeError, match=r"needs the embeddings themselves.*method='knn_vote'"):
        label_errors(graph, Y_BAD, k=3)


def test_graph_with_too_few_neighbours():
    graph = neighbor_graph(X_BAD, k=3)
    with pytest.raises(ValueError, match="the graph holds 3 neighbours per point but k=5"):
        label_errors(graph, Y_BAD, k=5, method="knn_vote")


def test_k_out_of_range():
    with pytest.raises(ValueError, match="k=20 must be less than the number of samples"):
        label_errors(X_BAD, Y_BAD, k=20, method="knn_vote")
    with pytest.raises(ValueError, match="k must be >= 1"):
        label_errors(X_BAD, Y_BAD, k=0)
    with pytest.raises(TypeError, match="k must be an integer"):
        label_errors(X_BAD, Y_BAD, k=2.5)


def test_single_class_and_singleton_class():
    with pytest.raises(ValueError, match=r"single class .* at least two classes"):
        label_errors(X_BAD, np.zeros(20, dtype=int), k=3)
    y = Y_BAD.copy()
    y[0] = 7
    with pytest.raises(ValueError, match=r"class\(es\) have a single sample \(first: 7\)"):
        label_errors(X_BAD, y, k=3)
    # knn_vote has no such limit
    assert label_errors(X_BAD, y, k=3, method="knn_vote").scores.shape == (20,)
