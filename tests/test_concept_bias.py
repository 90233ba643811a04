"""ConceptBias (per-class concept gaps) and a real-data run of the bias tools on digits."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import datagauge
from datagauge import ConceptBias, ConceptBiasResult, NotFittedError, find_biases
from datagauge.tagging import image_properties, property_tags

# --------------------------------------------------------------------------- oracle


def oracle_gaps(labels, outcome, scores, k_frac):
    """{(class, concept): (gap, top idx, bottom idx)} by sorting each class directly."""
    out = {}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = min(max(1, int(k_frac * members.size)), members.size // 2)
        for j in range(scores.shape[1]):
            order = members[np.argsort(-scores[members, j], kind="stable")]
            top, bottom = order[:k], order[-k:]
            out[(c, j)] = (outcome[top].mean() - outcome[bottom].mean(), top, bottom)
    return out


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    n = 1500
    labels = rng.integers(0, 3, n)
    scores = rng.random((n, 5))
    # class 1's errors are driven by a high score on concept 2
    wrong = (labels == 1) & (scores[:, 2] > 0.6) & (rng.random(n) < 0.7)
    wrong |= rng.random(n) < 0.05
    return labels, ~wrong, scores


def test_planted_concept_found(planted, tmp_path):
    labels, correct, scores = planted
    names = ["sky", "grass", "snow", "water", "road"]
    cb = ConceptBias().fit(labels, correct, scores=scores, concept_names=names)
    res = cb.final_results(output_file=tmp_path / "out.json")
    assert isinstance(res, ConceptBiasResult)
    assert (res.classes[0], res.concepts[0]) == (1, "snow")
    i = int(np.argmax(np.abs(res.gap)))
    assert (res.classes[i], res.concepts[i]) == (1, "snow")
    assert res.gap[i] < -0.4
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["concepts"] == list(res.concepts)
    # the other classes have no comparable gap
    others = [abs(g) for c, g in zip(res.classes, res.gap, strict=True) if c != 1]
    assert all(g < 0.25 for g in others)


def test_gaps_examples_and_pvalues_match_oracle(planted):
    labels, correct, scores = planted
    cb = ConceptBias(fraction=0.1, correction="none").fit(labels, correct, scores=scores)
    oracle = oracle_gaps(labels, correct.astype(float), scores, 0.1)
    for ci, c in enumerate(cb.classes_):
        for j in range(5):
            gap, top, bottom = oracle[(c, j)]
            assert cb.gap_[ci, j] == pytest.approx(gap)
            k = top.size
            x1, x2 = correct[top].sum(), correct[bottom].sum()
            pp = (x1 + x2) / (2 * k)
            if 0 < pp < 1:
                z = (x1 / k - x2 / k) / math.sqrt(pp * (1 - pp) * 2 / k)
                assert cb.p_value_[ci, j] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
            else:
                assert cb.p_value_[ci, j] == 1.0
    res = cb.final_results(sig_thresh=1.0, n_examples=3, display_top_k=5)
    for r in range(len(res)):
        c = res.classes[r]
        j = cb.concept_names_.index(res.concepts[r])
        _, top, bottom = oracle[(c, j)]
        np.testing.assert_array_equal(res.top_examples[r], top[:3])
        np.testing.assert_array_equal(res.bottom_examples[r], bottom[::-1][:3])


def test_fisher_and_welch_pvalues_match_scipy(planted):
    labels, correct, scores = planted
    cb = ConceptBias(n_images=30, test="fisher", correction="none").fit(
        labels, correct, scores=scores
    )
    conf = np.where(correct, 0.9, 0.4) + np.random.default_rng(1).normal(0, 0.05, correct.size)
    cw = ConceptBias(n_images=30, metric="confidence").fit(labels, conf, scores=scores)
    for ci, c in enumerate(cb.classes_):
        members = np.flatnonzero(labels == c)
        for j in range(5):
            order = members[np.argsort(-scores[members, j], kind="stable")]
            top, bottom = order[:30], order[-30:]
            table = [
                [correct[top].sum(), 30 - correct[top].sum()],
                [correct[bottom].sum(), 30 - correct[bottom].sum()],
            ]
            assert cb.p_value_[ci, j] == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-9)
            p = stats.ttest_ind(conf[top], conf[bottom], equal_var=False).pvalue
            assert cw.p_value_[ci, j] == pytest.approx(p, rel=1e-8)


def test_cosine_similarity_scores_equal_explicit_scores(planted):
    labels, correct, _ = planted
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(labels.size, 8))
    concepts = rng.normal(size=(3, 8))
    cos = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ (
        concepts / np.linalg.norm(concepts, axis=1, keepdims=True)
    ).T
    a = ConceptBias().fit(labels, correct, embeddings=emb, concept_embeddings=concepts)
    b = ConceptBias().fit(labels, correct, scores=cos)
    np.testing.assert_allclose(a.gap_, b.gap_)
    np.testing.assert_allclose(a.p_value_, b.p_value_)


def test_feedback_rejecting_a_concept_removes_it(planted, tmp_path):
    labels, correct, scores = planted
    names = ["sky", "grass", "snow", "water", "road"]
    cb = ConceptBias().fit(labels, correct, scores=scores, concept_names=names)
    query = tmp_path / "query.json"
    doc = cb.potential_biases(top_concepts=3, n_examples=4, query_file=query)
    assert json.loads(query.read_text()) == doc
    assert doc["format"] == "datagauge-concept-bias-query"
    cls1 = next(e for e in doc["classes"] if e["class"] == 1)
    assert cls1["concepts"][0]["concept"] == "snow"
    assert len(cls1["concepts"][0]["top_examples"]) == 4
    assert all(c["relevant"] is None for e in doc["classes"] for c in e["concepts"])

    before = cb.final_results()
    assert (1, "snow") in set(zip(before.classes, before.concepts, strict=True))

    cls1["concepts"][0]["relevant"] = True  # "snow is what class 1 is": not a bias
    query.write_text(json.dumps(doc))
    after = cb.final_results(feedback_file=query)
    assert (1, "snow") not in set(zip(after.classes, after.concepts, strict=True))
    assert len(after) == len(before) - 1

    cls1["concepts"][0]["relevant"] = False  # confirmed spurious
    query.write_text(json.dumps(doc))
    confirmed = cb.final_results(feedback_file=query)
    i = list(zip(confirmed.classes, confirmed.concepts, strict=True)).index((1, "snow"))
    assert confirmed.relevant[i] is False
    df = confirmed.to_dataframe()
    assert list(df.columns[:3]) == ["class", "concept", "gap"]
    json.dumps(confirmed.to_dict())


# --------------------------------------------------------------------------- malformed feedback


@pytest.fixture(scope="module")
def fitted(planted):
    labels, correct, scores = planted
    return ConceptBias().fit(labels, correct, scores=scores, concept_names=list("abcde"))


def good_doc(fitted):
    return fitted.potential_biases()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(format="something"), "'format' must be"),
        (lambda d: d.update(classes={"a": 1}), "'classes' must be a list"),
        (lambda d: d["classes"].append(7), r"classes\[3\] must be an object"),
        (lambda d: d["classes"][0].pop("class"), r"classes\[0\] has no 'class'"),
        (lambda d: d["classes"][0].update({"class": 9}), r"classes\[0\]\.class = 9 is not a class"),
        (lambda d: d["classes"][1].update(concepts=None), r"classes\[1\]\.concepts must be a list"),
        (
            lambda d: d["classes"][0]["concepts"][1].update(concept="zzz"),
            r"classes\[0\]\.concepts\[1\]\.concept = 'zzz' is not a concept",
        ),
        (
            lambda d: d["classes"][0]["concepts"][0].update(relevant="yes"),
            r"classes\[0\]\.concepts\[0\]\.relevant must be true, false or null, got 'yes'",
        ),
        (
            lambda d: d["classes"][2]["concepts"][0].pop("relevant"),
            r"classes\[2\]\.concepts\[0\] has no 'relevant'",
        ),
        (
            lambda d: d["classes"][0]["concepts"].append(d["classes"][0]["concepts"][0]),
            "repeats concept",
        ),
    ],
)
def test_malformed_feedback_names_the_problem(fitted, tmp_path, mutate, match):
    doc = good_doc(fitted)
    mutate(doc)
    path = tmp_path / "fb.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=match):
        fitted.final_results(feedback_file=path)


def test_feedback_not_json(fitted, tmp_path):
    path = tmp_path / "fb.json"
    path.write_text('{"format": "datagauge-concept-bias-query",\n "classes": [}')
    with pytest.raises(ValueError, match=r"not valid JSON \(line 2"):
        fitted.final_results(feedback_file=path)


def test_feedback_missing_file(fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match="potential_biases"):
        fitted.final_results(feedback_file=tmp_path / "nope.json")


def test_feedback_utf16_says_save_as_utf8(fitted, tmp_path):
    path = tmp_path / "fb.json"
    path.write_text(json.dumps(good_doc(fitted)), encoding="utf-16")
    with pytest.raises(ValueError, match=r"UTF-16.*save it as UTF-8 JSON"):
        fitted.final_results(feedback_file=path)


def test_feedback_not_utf8_says_save_as_utf8(fitted, tmp_path):
    path = tmp_path / "fb.json"
    doc = good_doc(fitted)
    doc["note"] = "café"
    path.write_bytes(json.dumps(doc, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(ValueError, match=r"not UTF-8 text \(byte 0xe9 at position \d+\).*UTF-8"):
        fitted.final_results(feedback_file=path)


def test_feedback_utf8_with_bom_is_read(fitted, tmp_path):
    doc = good_doc(fitted)
    doc["classes"][0]["concepts"][0]["relevant"] = True
    path = tmp_path / "fb.json"
    path.write_text(json.dumps(doc), encoding="utf-8-sig")  # Windows Notepad's "UTF-8"
    first = doc["classes"][0]
    res = fitted.final_results(feedback_file=path, sig_thresh=1.0, display_top_k=5)
    pairs = set(zip(res.classes, res.concepts, strict=True))
    assert (first["class"], first["concepts"][0]["concept"]) not in pairs


def test_feedback_nested_too_deeply(fitted, tmp_path):
    path = tmp_path / "fb.json"
    depth = 100_000
    path.write_text('{"classes": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(ValueError, match=r"nested too deeply.*potential_biases"):
        fitted.final_results(feedback_file=path)


# --------------------------------------------------------------------------- files written


def test_nothing_written_without_a_path(fitted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fitted.potential_biases()
    fitted.final_results()
    assert list(tmp_path.iterdir()) == []


def test_query_file_edited_by_the_user_is_not_overwritten(fitted, tmp_path):
    query = tmp_path / "query.json"
    doc = fitted.potential_biases(query_file=query)
    doc["classes"][0]["concepts"][0]["relevant"] = False  # the user's review
    edited = json.dumps(doc)
    query.write_text(edited)
    with pytest.raises(FileExistsError, match=r"query\.json.*overwrite=True.*another"):
        fitted.potential_biases(query_file=query)
    assert query.read_text() == edited
    fitted.potential_biases(query_file=query, overwrite=True)
    assert json.loads(query.read_text())["classes"][0]["concepts"][0]["relevant"] is None


def test_output_file_is_not_overwritten(fitted, tmp_path):
    out = tmp_path / "results.json"
    out.write_text("earlier results")
    with pytest.raises(FileExistsError, match=r"results\.json.*overwrite=True.*another"):
        fitted.final_results(output_file=out)
    assert out.read_text() == "earlier results"
    res = fitted.final_results(output_file=out, overwrite=True)
    assert json.loads(out.read_text()) == json.loads(json.dumps(res.to_dict()))


def test_output_file_is_never_the_feedback_file(fitted, tmp_path):
    query = tmp_path / "query.json"
    fitted.potential_biases(query_file=query)
    marks = query.read_text()
    with pytest.raises(ValueError, match="would replace your review"):
        fitted.final_results(feedback_file=query, output_file=query, overwrite=True)
    assert query.read_text() == marks


# --------------------------------------------------------------------------- renamed parameters


def test_top_k_is_n_examples_and_says_why(fitted):
    with pytest.raises(TypeError, match=r"n_examples=.*not the gap.*fraction="):
        fitted.final_results(top_k=3)
    with pytest.raises(TypeError, match=r"n_examples="):
        fitted.potential_biases(top_k=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'topk'"):
        fitted.final_results(topk=3)
    # positional thresholds (RELAI's order) fail instead of landing on other parameters
    with pytest.raises(TypeError):
        fitted.final_results(None, 0.2, 0.0, 3)
    res = fitted.final_results(n_examples=3, sig_thresh=1.0)
    assert res.top_examples.shape == (len(res), 3)
    doc = fitted.potential_biases(n_examples=2)
    assert len(doc["classes"][0]["concepts"][0]["top_examples"]) == 2


def test_k_is_fraction_or_n_images(planted):
    labels, correct, scores = planted
    with pytest.raises(TypeError, match=r"fraction=.*n_images="):
        ConceptBias(k=0.2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'kk'"):
        ConceptBias(kk=0.2)
    frac = ConceptBias(fraction=0.1).fit(labels, correct, scores=scores)
    sizes = np.bincount(labels)
    np.testing.assert_array_equal(frac.n_images_, (0.1 * sizes).astype(int))
    count = ConceptBias(n_images=30).fit(labels, correct, scores=scores)
    np.testing.assert_array_equal(count.n_images_, 30)
    default = ConceptBias().fit(labels, correct, scores=scores)
    np.testing.assert_array_equal(default.n_images_, (0.2 * sizes).astype(int))
    with pytest.raises(ValueError, match="not both"):
        ConceptBias(fraction=0.1, n_images=30).fit(labels, correct, scores=scores)
    with pytest.raises(ValueError, match=r"fraction.*\(0, 0\.5\].*n_images=1"):
        ConceptBias(fraction=1).fit(labels, correct, scores=scores)
    with pytest.raises(TypeError, match="n_images must be an integer"):
        ConceptBias(n_images=2.5).fit(labels, correct, scores=scores)


# --------------------------------------------------------------------------- bad input


def test_not_fitted():
    cb = ConceptBias()
    with pytest.raises(NotFittedError, match="This ConceptBias instance is not fitted yet"):
        cb.final_results()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        cb.potential_biases()


def test_scores_given_two_ways(planted):
    labels, correct, scores = planted
    with pytest.raises(ValueError, match="one way"):
        ConceptBias().fit(labels, correct, scores=scores, embeddings=scores)
    with pytest.raises(ValueError, match="one way"):
        ConceptBias().fit(labels, correct)


def test_embedding_dimension_mismatch(planted):
    labels, correct, scores = planted
    with pytest.raises(ValueError, match="same model"):
        ConceptBias().fit(labels, correct, embeddings=scores, concept_embeddings=np.ones((2, 3)))


def test_labels_length_mismatch(planted):
    labels, correct, scores = planted
    with pytest.raises(ValueError, match="one label per embedding"):
        ConceptBias().fit(labels[:-1], correct, scores=scores)


def test_bad_k(planted):
    labels, correct, scores = planted
    with pytest.raises(ValueError, match=r"\(0, 0.5\]"):
        ConceptBias(fraction=0.9).fit(labels, correct, scores=scores)


def test_all_correct(planted):
    labels, _, scores = planted
    with pytest.raises(ValueError, match="all correct"):
        ConceptBias().fit(labels, np.ones(labels.size, bool), scores=scores)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def digits_mistakes():
    d = load_digits()
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(d.target))
    train, test = perm[:300], perm[300:]
    clf = LogisticRegression(max_iter=2000).fit(d.data[train], d.target[train])
    correct = clf.predict(d.data[test]) == d.target[test]
    return d.images[test] / 16.0, d.target[test], correct


def test_digits_subgroups_checked_by_recount(digits_mistakes):
    images, _, correct = digits_mistakes
    assert 0.8 < correct.mean() < 0.99
    scores, names = image_properties(images)
    tags, tag_names = property_tags(scores, names)
    rep = find_biases(tags, correct, tag_names=tag_names, min_effect=0.03, max_tags=2)
    assert len(rep) >= 1
    for i, combo in enumerate(rep.combinations):
        cols = [tag_names.index(c) for c in combo]
        m = tags[:, cols].all(axis=1)
        assert rep.support[i] == m.sum()
        assert rep.metric_inside[i] == pytest.approx(correct[m].mean())
        assert rep.metric_outside[i] == pytest.approx(correct[~m].mean())
        assert rep.p_adjusted[i] <= 0.05
        ex = rep.examples(i, 5)
        assert m[ex].all()


def test_digits_concept_bias_with_the_tagger(digits_mistakes):
    images, labels, correct = digits_mistakes
    cb = ConceptBias().fit(labels, correct, images=images)
    assert cb.concept_names_ == list(datagauge.tagging.GRAY_PROPERTIES)
    scores, _ = image_properties(images)
    oracle = oracle_gaps(labels, correct.astype(float), scores.astype(np.float64), 0.2)
    for ci, c in enumerate(cb.classes_):
        for j in range(scores.shape[1]):
            assert cb.gap_[ci, j] == pytest.approx(oracle[(c, j)][0])
    res = cb.final_results(sig_thresh=1.0)
    assert len(res) > 0
    assert (np.abs(res.gap) > 0).all()
