"""Subgroup bias search: counts and tests against brute-force numpy/scipy oracles."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import datagauge
from datagauge import BiasReport, _core, adjust_pvalues, find_biases
from datagauge._synthetic import planted_slices
from datagauge.bias import MAX_TAG_COLUMNS, pack_bits

# --------------------------------------------------------------------------- oracles


def oracle_counts(tags, y, v, max_tags, min_support):
    """Every combination with support >= min_support, by size then lexicographic."""
    out = []
    t = tags.shape[1]
    for size in range(1, max_tags + 1):
        for combo in itertools.combinations(range(t), size):
            m = tags[:, list(combo)].all(axis=1)
            if m.sum() >= min_support:
                out.append((combo, int(m.sum()), int((m & y).sum()), v[m].sum(), (v[m] ** 2).sum()))
    out.sort(key=lambda r: (len(r[0]), r[0]))
    return out


def z_by_hand(x1, n1, x2, n2):
    p1, p2, pp = x1 / n1, x2 / n2, (x1 + x2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pp * (1 - pp) * (1 / n1 + 1 / n2))
    return z, math.erfc(abs(z) / math.sqrt(2))


def bonferroni_oracle(p):
    return [min(1.0, x * len(p)) for x in p]


def holm_oracle(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        out[i] = min(1.0, running)
    return out


def combo_rows(report):
    return [tuple(int(j) for j in r if j >= 0) for r in report.tag_ids]


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(1)
    n, t = 700, 7
    tags = rng.random((n, t)) < rng.uniform(0.2, 0.6, t)
    y = rng.random(n) < 0.75
    v = rng.random(n)
    return tags, y, v


# --------------------------------------------------------------------------- core counts


@pytest.mark.parametrize(("max_tags", "min_support"), [(1, 1), (2, 5), (3, 20), (4, 1), (4, 60)])
def test_search_counts_match_bruteforce(small, max_tags, min_support):
    tags, y, v = small
    n = tags.shape[0]
    combos, sup, pos, s1, s2 = _core.subgroup_search(
        pack_bits(tags), n, pack_bits(y)[0], v, max_tags, min_support, 10**7, 2
    )
    expected = oracle_counts(tags, y, v, max_tags, min_support)
    assert combos.shape == (len(expected), max_tags)
    assert combos.dtype == np.int32
    for i, (combo, e_sup, e_pos, e_s1, e_s2) in enumerate(expected):
        row = combos[i]
        assert tuple(row[row >= 0]) == combo
        assert (row[len(combo) :] == -1).all()
        assert sup[i] == e_sup
        assert pos[i] == e_pos
        assert s1[i] == pytest.approx(e_s1, rel=1e-12)
        assert s2[i] == pytest.approx(e_s2, rel=1e-12)


def test_search_counts_over_several_word_blocks():
    # 40,000 samples = 625 words: more than one block of the core's blocked counting
    rng = np.random.default_rng(21)
    n, t = 40_000, 6
    tags = rng.random((n, t)) < rng.uniform(0.2, 0.6, t)
    y = rng.random(n) < 0.6
    v = rng.random(n)
    combos, sup, pos, s1, s2 = _core.subgroup_search(
        pack_bits(tags), n, pack_bits(y)[0], v, 3, 2000, 10**7, 2
    )
    expected = oracle_counts(tags, y, v, 3, 2000)
    assert len(expected) == len(combos)
    assert 6 < len(expected) < 41  # some triples pruned
    for i, (combo, e_sup, e_pos, e_s1, e_s2) in enumerate(expected):
        assert tuple(combos[i][combos[i] >= 0]) == combo
        assert (sup[i], pos[i]) == (e_sup, e_pos)
        assert s1[i] == pytest.approx(e_s1, rel=1e-12)
        assert s2[i] == pytest.approx(e_s2, rel=1e-12)


def test_search_serial_equals_threaded(small):
    tags, y, v = small
    a = _core.subgroup_search(pack_bits(tags), len(y), pack_bits(y)[0], v, 3, 3, 10**7, 1)
    b = _core.subgroup_search(pack_bits(tags), len(y), pack_bits(y)[0], v, 3, 3, 10**7, 2)
    for x, z in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, z)


def test_counts_are_mergeable_over_word_blocks(small):
    tags, y, v = small
    n = len(y)
    packed, posw = pack_bits(tags), pack_bits(y)[0]
    combos, sup, pos, s1, s2 = _core.subgroup_search(packed, n, posw, v, 3, 1, 10**7, 2)
    combos = np.vstack([combos, np.full((1, 3), -1, np.int32)])  # plus the whole data set
    n_words = packed.shape[1]
    cuts = [0, 3, 4, 9, n_words]
    parts = [
        _core.subgroup_counts(packed, n, posw, v, combos, a, b, 2)
        for a, b in itertools.pairwise(cuts)
    ]
    total = [sum(p[k] for p in parts) for k in range(4)]
    np.testing.assert_array_equal(total[0][:-1], sup)
    np.testing.assert_array_equal(total[1][:-1], pos)
    np.testing.assert_allclose(total[2][:-1], s1, rtol=1e-12)
    np.testing.assert_allclose(total[3][:-1], s2, rtol=1e-12)
    assert total[0][-1] == n
    assert total[1][-1] == y.sum()


def test_pack_bits_layout():
    rng = np.random.default_rng(3)
    x = rng.random((130, 3)) < 0.5
    packed = pack_bits(x)
    assert packed.shape == (3, 3)
    assert packed.dtype == np.uint64
    for j in range(3):
        for i in range(130):
            assert bool((int(packed[j, i // 64]) >> (i % 64)) & 1) == x[i, j]


def test_core_rejects_bits_past_n():
    packed = np.full((2, 1), np.uint64(2**63), dtype=np.uint64)
    with pytest.raises(ValueError, match="bits set past"):
        _core.subgroup_search(packed, 10, None, None, 2, 1, 100, 1)


def test_core_checks_its_inputs():
    packed = np.zeros((3, 2), dtype=np.uint64)
    with pytest.raises(ValueError, match="words per row"):
        _core.subgroup_search(packed, 200, None, None, 2, 1, 100, 1)
    with pytest.raises(ValueError, match="max_tags"):
        _core.subgroup_search(packed, 100, None, None, 5, 1, 100, 1)
    with pytest.raises(ValueError, match="values must have n entries"):
        _core.subgroup_search(packed, 100, None, np.zeros(5), 2, 1, 100, 1)
    combos = np.array([[0, 7]], dtype=np.int32)
    with pytest.raises(ValueError, match="outside"):
        _core.subgroup_counts(packed, 100, None, None, combos, 0, 2, 1)
    with pytest.raises(ValueError, match="word range"):
        _core.subgroup_counts(packed, 100, None, None, combos[:, :1], 1, 3, 1)
    one = np.array([1], dtype=np.int64)
    with pytest.raises(ValueError, match="non-negative"):
        _core.fisher_exact_2x2(one, -one, one, one, 1)
    with pytest.raises(ValueError, match="same length"):
        _core.two_proportion_ztest(one, one, one, np.array([1, 2], dtype=np.int64), 1)
    with pytest.raises(TypeError):
        _core.subgroup_search(packed.astype(np.int64), 100, None, None, 2, 1, 100, 1)


# --------------------------------------------------------------------------- tests vs scipy


def test_fisher_matches_scipy():
    rng = np.random.default_rng(5)
    tables = [
        rng.multinomial(int(rng.integers(2, 2500)), rng.dirichlet(np.ones(4))) for _ in range(800)
    ]
    tables += [
        [5, 5, 5, 5],
        [10, 0, 0, 10],
        [0, 0, 3, 4],
        [500, 500, 500, 500],
        [419, 130, 2, 291],  # symmetric distribution: mirror tables tie exactly
        [3, 1, 1, 3],
        [1, 2, 3, 4],
        [100, 0, 50, 50],
        [0, 7, 9, 0],
        [2000, 3, 1, 2500],
    ]
    tab = np.asarray(tables, dtype=np.int64)
    p = _core.fisher_exact_2x2(*(np.ascontiguousarray(tab[:, k]) for k in range(4)), 2)
    expected = np.array([stats.fisher_exact(r.reshape(2, 2)).pvalue for r in tab])
    np.testing.assert_allclose(p, expected, rtol=1e-9, atol=1e-300)


def test_welch_matches_scipy():
    rng = np.random.default_rng(6)
    rows, expected = [], []
    for n1, n2 in [(2, 2), (3, 50), (40, 41), (500, 20), (3000, 7000)]:
        a = rng.normal(0, rng.uniform(0.1, 2), n1)
        b = rng.normal(rng.uniform(-0.5, 0.5), rng.uniform(0.1, 2), n2)
        rows.append((a.mean(), a.var(ddof=1), n1, b.mean(), b.var(ddof=1), n2))
        r = stats.ttest_ind(a, b, equal_var=False)
        expected.append((r.statistic, r.pvalue))
    cols = list(zip(*rows, strict=True))
    t, _, p = _core.welch_ttest(
        np.array(cols[0]),
        np.array(cols[1]),
        np.array(cols[2], dtype=np.int64),
        np.array(cols[3]),
        np.array(cols[4]),
        np.array(cols[5], dtype=np.int64),
        1,
    )
    np.testing.assert_allclose(t, [e[0] for e in expected], rtol=1e-10)
    np.testing.assert_allclose(p, [e[1] for e in expected], rtol=1e-9)


def test_ztest_by_hand():
    x1 = np.array([5, 30, 0, 77], dtype=np.int64)
    n1 = np.array([20, 100, 10, 80], dtype=np.int64)
    x2 = np.array([50, 300, 5, 10], dtype=np.int64)
    n2 = np.array([80, 900, 90, 30], dtype=np.int64)
    z, p = _core.two_proportion_ztest(x1, n1, x2, n2, 1)
    for i in range(4):
        ez, ep = z_by_hand(x1[i], n1[i], x2[i], n2[i])
        assert z[i] == pytest.approx(ez, rel=1e-12)
        assert p[i] == pytest.approx(ep, rel=1e-12)


@pytest.mark.parametrize("test", ["z", "fisher", "welch"])
def test_report_pvalues_match_scipy(test):
    data = planted_slices(3000, 8, seed=2)
    rep = find_biases(
        data.tags, data.correct, test=test, correction="none", min_effect=0.0, alpha=0.5
    )
    assert len(rep) > 3
    y = data.correct
    for i, combo in enumerate(combo_rows(rep)):
        m = data.tags[:, list(combo)].all(axis=1)
        a, b = y[m], y[~m]
        if test == "z":
            _, p = z_by_hand(a.sum(), a.size, b.sum(), b.size)
        elif test == "fisher":
            table = [[a.sum(), a.size - a.sum()], [b.sum(), b.size - b.sum()]]
            p = stats.fisher_exact(table).pvalue
        else:
            p = stats.ttest_ind(a.astype(float), b.astype(float), equal_var=False).pvalue
        assert rep.p_value[i] == pytest.approx(p, rel=1e-9)


def test_confidence_metric_matches_recount_and_scipy():
    rng = np.random.default_rng(8)
    n = 4000
    tags = rng.random((n, 6)) < 0.35
    conf = np.clip(rng.normal(0.8, 0.1, n) - 0.3 * (tags[:, 1] & tags[:, 4]), 0, 1)
    rep = find_biases(tags, conf, metric="confidence", correction="none", min_effect=0.05)
    assert combo_rows(rep)[0] == (1, 4)
    for i, combo in enumerate(combo_rows(rep)):
        m = tags[:, list(combo)].all(axis=1)
        assert rep.support[i] == m.sum()
        assert rep.metric_inside[i] == pytest.approx(conf[m].mean(), rel=1e-10)
        assert rep.metric_outside[i] == pytest.approx(conf[~m].mean(), rel=1e-10)
        p = stats.ttest_ind(conf[m], conf[~m], equal_var=False).pvalue
        assert rep.p_value[i] == pytest.approx(p, rel=1e-8, abs=1e-300)


# --------------------------------------------------------------------------- corrections


def test_corrections_match_oracles():
    rng = np.random.default_rng(9)
    p = np.concatenate([rng.random(60), rng.random(20) * 1e-3, [1.0, 0.0, 0.5, 0.5]])
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), stats.false_discovery_control(p))
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), bonferroni_oracle(list(p)))
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), holm_oracle(list(p)))
    np.testing.assert_array_equal(adjust_pvalues(p, "none"), p)


@pytest.mark.parametrize("correction", ["bh", "bonferroni", "holm"])
def test_report_adjusted_over_all_tested(correction):
    data = planted_slices(2000, 6, seed=4)
    tags, y = data.tags, data.correct
    n, min_support = len(y), 10
    combos, raw = [], []
    for size in (1, 2, 3):
        for combo in itertools.combinations(range(6), size):
            m = tags[:, list(combo)].all(axis=1)
            if min_support <= m.sum() <= n - min_support:
                combos.append(combo)
                raw.append(z_by_hand(y[m].sum(), m.sum(), y[~m].sum(), (~m).sum())[1])
    oracle = {"bh": stats.false_discovery_control, "bonferroni": bonferroni_oracle,
              "holm": holm_oracle}[correction](raw)  # fmt: skip
    adjusted = dict(zip(combos, oracle, strict=True))
    rep = find_biases(tags, y, correction=correction, min_effect=0, minimality=[0, 0, 0])
    assert rep.n_tested == len(combos)
    assert len(rep) > 3
    for i, combo in enumerate(combo_rows(rep)):
        assert rep.p_adjusted[i] == pytest.approx(adjusted[combo], rel=1e-9)
        assert rep.p_adjusted[i] <= 0.05


# --------------------------------------------------------------------------- recovery


def test_planted_slices_recovered_and_ranked_first():
    data = planted_slices(20_000, 30, seed=11)
    rep = find_biases(data.tags, data.correct, tag_names=data.tag_names, max_tags=3)
    assert set(rep.combinations[:2]) == set(data.slice_names())
    # no superset of a planted slice is reported (the redundancy filter)
    planted = [set(s) for s in data.slices]
    for combo in combo_rows(rep):
        assert not any(s < set(combo) for s in planted)


def test_no_false_positives_on_null_data_with_correction():
    rng = np.random.default_rng(12)
    n, t = 100_000, 20
    tags = rng.random((n, t)) < rng.uniform(0.1, 0.5, t)
    correct = rng.random(n) >= 0.1
    rep = find_biases(tags, correct, max_tags=3, min_effect=0.0, correction="bonferroni")
    assert len(rep) == 0
    assert rep.n_tested == t + t * (t - 1) // 2 + t * (t - 1) * (t - 2) // 6
    rep = find_biases(tags, correct, max_tags=3)
    assert len(rep) == 0


def test_no_false_positives_beside_planted_slices():
    data = planted_slices(100_000, 30, seed=17)
    rep = find_biases(data.tags, data.correct, tag_names=data.tag_names, max_tags=3)
    planted_tags = {j for s in data.slices for j in s}
    assert set(rep.combinations[:2]) == set(data.slice_names())
    for combo in combo_rows(rep):
        assert set(combo) <= planted_tags, combo  # no tag without an effect is reported


def test_reported_counts_match_recount():
    data = planted_slices(5000, 10, seed=13)
    rep = find_biases(data.tags, data.correct, min_effect=0.05)
    assert len(rep) >= 2
    y = data.correct
    for i, combo in enumerate(combo_rows(rep)):
        m = data.tags[:, list(combo)].all(axis=1)
        assert rep.support[i] == m.sum()
        assert rep.metric_inside[i] == pytest.approx(y[m].mean())
        assert rep.metric_outside[i] == pytest.approx(y[~m].mean())
        assert rep.effect[i] == pytest.approx(y[m].mean() - y[~m].mean())
        np.testing.assert_array_equal(rep.members(i), np.flatnonzero(m))
    mags = np.abs(rep.effect)
    assert (np.diff(mags) <= 1e-15).all()


def test_ties_in_tag_order_and_identical_tags_not_combined():
    rng = np.random.default_rng(15)
    n = 4000
    a = rng.random(n) < 0.3
    c = rng.random(n) < 0.5
    tags = np.column_stack([c, a, a])  # columns 1 and 2 are the same tag
    correct = rng.random(n) >= np.where(a, 0.5, 0.1)
    rep = find_biases(tags, correct, tag_names=["c", "a1", "a2"])
    assert rep.combinations[:2] == (("a1",), ("a2",))
    assert rep.effect[0] == rep.effect[1]
    # "a1 & a2" has exactly the samples of "a1": nothing added, so it is not reported
    assert ("a1", "a2") not in rep.combinations


def test_examples_show_the_bias():
    data = planted_slices(5000, 10, seed=13)
    rep = find_biases(data.tags, data.correct)
    ex = rep.examples(0, 10)
    members = set(rep.members(0).tolist())
    assert ex.dtype == np.int64
    assert len(ex) == 10
    assert set(ex.tolist()) <= members
    assert rep.effect[0] < 0
    assert not data.correct[ex].any()  # wrong samples first
    assert len(rep.examples(0, 10**6)) == rep.support[0]


def test_minimality_matches_relai_definition(small):
    tags, y, _ = small
    thr = [0.02, 0.03, 0.04]
    rep = find_biases(tags, y, max_tags=3, minimality=thr, min_effect=0.0, alpha=0.5,
                      correction="none", min_support=15)  # fmt: skip
    full = find_biases(tags, y, max_tags=3, minimality=[0, 0, 0], min_effect=0.0, alpha=0.5,
                       correction="none", min_support=15)  # fmt: skip
    overall = y.mean()

    def acc(combo):
        return y[tags[:, list(combo)].all(axis=1)].mean() if combo else overall

    memo: dict[tuple[int, ...], bool] = {}

    def minimal(combo):
        if not combo:
            return True
        if combo not in memo:
            subs = list(itertools.combinations(combo, len(combo) - 1))
            delta = thr[len(combo) - 1]
            memo[combo] = all(minimal(sub) for sub in subs) and (
                all(acc(combo) <= acc(sub) - delta for sub in subs)
                or all(acc(combo) >= acc(sub) + delta for sub in subs)
            )
        return memo[combo]

    expected = {c for c in combo_rows(full) if minimal(c)}
    assert set(combo_rows(rep)) == expected
    assert 0 < len(expected) < len(full)


def test_dataframe_input_is_one_hot_encoded():
    rng = np.random.default_rng(14)
    n = 3000
    weather = rng.choice(["rain", "sun", "snow"], n)
    time = rng.choice(["day", "night"], n)
    correct = rng.random(n) >= np.where((weather == "rain") & (time == "night"), 0.5, 0.05)
    meta = pd.DataFrame({"weather": weather, "time": time})
    rep = find_biases(meta, correct)
    assert rep.tag_names == (
        "weather=rain",
        "weather=snow",
        "weather=sun",
        "time=day",
        "time=night",
    )
    assert rep.combinations[0] == ("weather=rain", "time=night")


def test_dataframe_missing_values_get_no_tag():
    rng = np.random.default_rng(16)
    n = 2000
    weather = rng.choice(np.array(["rain", "sun", None], dtype=object), n)
    size = rng.choice([2, 10], n)
    correct = rng.random(n) >= np.where(weather == "rain", 0.4, 0.05)
    rep = find_biases(pd.DataFrame({"weather": weather, "size": size}), correct, max_tags=1)
    assert rep.tag_names == ("weather=rain", "weather=sun", "size=2", "size=10")
    i = rep.combinations.index(("weather=rain",))
    np.testing.assert_array_equal(rep.members(i), np.flatnonzero(weather == "rain"))


def test_report_to_dict_and_dataframe():
    data = planted_slices(3000, 8, seed=2)
    rep = find_biases(data.tags, data.correct)
    assert isinstance(rep, BiasReport)
    d = rep.to_dict()
    json.dumps(d)
    assert "_packed" not in d
    assert d["combinations"][0] == list(rep.combinations[0])
    df = rep.to_dataframe()
    assert list(df.columns[:4]) == ["rank", "combination", "size", "support"]
    assert len(df) == len(rep)
    assert "uint64" in repr(rep)
    with pytest.raises(AttributeError):
        rep.alpha = 0.1  # type: ignore[misc]
    assert not rep.support.flags.writeable
    assert len(find_biases(data.tags, data.correct, top=1)) == 1


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), test=st.sampled_from(["z", "fisher", "welch"]))
def test_permuting_samples_changes_nothing(seed, test):
    data = planted_slices(1500, 6, seed=seed % 1000)
    perm = np.random.default_rng(seed).permutation(1500)
    a = find_biases(data.tags, data.correct, test=test, min_effect=0.05)
    b = find_biases(data.tags[perm], data.correct[perm], test=test, min_effect=0.05)
    assert a.combinations == b.combinations
    np.testing.assert_array_equal(a.support, b.support)
    np.testing.assert_allclose(a.effect, b.effect, rtol=1e-12)
    np.testing.assert_allclose(a.p_value, b.p_value, rtol=1e-9)
    for i in range(len(a)):
        np.testing.assert_array_equal(np.sort(perm[b.members(i)]), a.members(i))


def test_exported():
    assert datagauge.find_biases is find_biases
    assert "find_biases" in datagauge.__all__


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def ok():
    rng = np.random.default_rng(0)
    return rng.random((50, 4)) < 0.5, rng.random(50) < 0.7


def test_length_mismatch(ok):
    tags, y = ok
    with pytest.raises(ValueError, match="49 entries but tags has 50 rows"):
        find_biases(tags, y[:-1])


def test_non_binary_tags(ok):
    tags, y = ok
    bad = tags.astype(float)
    bad[3, 2] = 0.7
    with pytest.raises(ValueError, match=r"binary .* tags\[3, 2\] = 0.7"):
        find_biases(bad, y)


def test_non_binary_outcome(ok):
    tags, y = ok
    with pytest.raises(ValueError, match='metric="confidence"'):
        find_biases(tags, y * 0.5)


@pytest.mark.parametrize(("value", "word"), [(True, "all correct"), (False, "all wrong")])
def test_constant_outcome(ok, value, word):
    tags, _ = ok
    with pytest.raises(ValueError, match=word):
        find_biases(tags, np.full(50, value))


@pytest.mark.parametrize("max_tags", [0, 5, -1])
def test_max_tags_out_of_range(ok, max_tags):
    tags, y = ok
    with pytest.raises(ValueError, match=r"max_tags must be in 1\.\.4"):
        find_biases(tags, y, max_tags=max_tags)


def test_too_many_tag_columns():
    rng = np.random.default_rng(0)
    tags = np.zeros((5, MAX_TAG_COLUMNS + 1), dtype=bool)
    with pytest.raises(ValueError, match="more than the 4096 the subgroup search supports"):
        find_biases(tags, rng.random(5) < 0.5)


@pytest.mark.parametrize("shape", [(0, 3), (5, 0)])
def test_empty_tags(shape):
    with pytest.raises(ValueError, match="empty"):
        find_biases(np.zeros(shape, dtype=bool), np.zeros(shape[0], dtype=bool))


def test_empty_dataframe():
    with pytest.raises(ValueError, match="empty"):
        find_biases(pd.DataFrame({"a": []}), np.zeros(0, dtype=bool))


def test_one_dimensional_tags(ok):
    _, y = ok
    with pytest.raises(ValueError, match="2-D"):
        find_biases(np.ones(50, dtype=bool), y)


def test_tag_names_mismatch(ok):
    tags, y = ok
    with pytest.raises(ValueError, match="tag_names has 3 names"):
        find_biases(tags, y, tag_names=["a", "b", "c"])


def test_confidence_needs_welch(ok):
    tags, _ = ok
    with pytest.raises(ValueError, match='needs test="welch"'):
        find_biases(tags, np.linspace(0, 1, 50), metric="confidence", test="fisher")


def test_too_many_combinations():
    rng = np.random.default_rng(0)
    tags = rng.random((200, 30)) < 0.5
    with pytest.raises(ValueError, match="raise min_support"):
        find_biases(tags, rng.random(200) < 0.5, max_combinations=100, min_support=1)


def test_minimality_too_short(ok):
    tags, y = ok
    with pytest.raises(ValueError, match="one threshold per combination size"):
        find_biases(tags, y, max_tags=3, minimality=[0.1])


def test_bad_options(ok):
    tags, y = ok
    with pytest.raises(ValueError, match="correction must be one of"):
        find_biases(tags, y, correction="fdr")
    with pytest.raises(ValueError, match="alpha must be strictly between 0 and 1"):
        find_biases(tags, y, alpha=1.5)
    with pytest.raises(ValueError, match="min_support must be >= 1"):
        find_biases(tags, y, min_support=0)
    with pytest.raises(TypeError, match="tags must hold booleans"):
        find_biases(np.array([["a"] * 4] * 50), y)


def test_examples_index_out_of_range():
    data = planted_slices(3000, 8, seed=2)
    rep = find_biases(data.tags, data.correct)
    with pytest.raises(IndexError, match="out of range"):
        rep.examples(len(rep))


# --------------------------------------------------------------------------- issue 16


@pytest.mark.parametrize("method", ["bh", "bonferroni", "holm", "none"])
@pytest.mark.parametrize("bad", [1.5, -0.1, np.inf])
def test_adjust_pvalues_rejects_values_outside_unit_interval(method, bad):
    with pytest.raises(ValueError, match=rf"p-values must be in \[0, 1\].*p\[1\] = {bad}"):
        adjust_pvalues([0.01, bad, 0.03], method)


@pytest.mark.parametrize("method", ["bh", "bonferroni", "holm", "none"])
def test_adjust_pvalues_rejects_nan_like_scipy(method):
    p = [0.01, np.nan, 0.03, np.nan]
    with pytest.raises(ValueError, match=r"2 NaN p-values \(first at index 1\).*drop them"):
        adjust_pvalues(p, method)
    with pytest.raises(ValueError, match="between 0 and 1"):  # scipy's choice, which we follow
        stats.false_discovery_control(p)
    # the documented workaround: adjust the others and keep NaN where it was
    arr = np.array(p)
    out = np.full_like(arr, np.nan)
    keep = ~np.isnan(arr)
    out[keep] = adjust_pvalues(arr[keep], method)
    assert np.isnan(out[[1, 3]]).all()
    assert np.isfinite(out[[0, 2]]).all()


def test_adjust_pvalues_accepts_the_bounds():
    np.testing.assert_allclose(adjust_pvalues([0.0, 1.0], "bh"), [0.0, 1.0])


def interpolating_pair(ab_correct):
    """Tags A and B with accuracies A 0.85, B 0.50 and A & B ``ab_correct / 40`` (1360 samples:
    40 in A & B, 160 in A only, 160 in B only, 1000 in neither at 0.73)."""
    sizes = [40, 160, 160, 1000]
    correct = [ab_correct, 170 - ab_correct, 100 - ab_correct, 730]
    a = np.repeat([True, True, False, False], sizes)
    b = np.repeat([True, False, True, False], sizes)
    y = np.concatenate([np.arange(s) < c for s, c in zip(sizes, correct, strict=True)])
    return np.stack([a, b], axis=1), y


def test_minimality_is_one_directional():
    # The docstring's worked example: A 0.85, B 0.50, whole data about 0.72, thresholds 0.1.
    kw = {"tag_names": ["A", "B"], "max_tags": 2, "minimality": [0.1, 0.1], "min_effect": 0.0,
          "alpha": 0.999, "correction": "none"}  # fmt: skip
    tags, y = interpolating_pair(28)  # A & B = 0.70: 0.15 below A but 0.20 above B
    assert find_biases(tags, y, **{**kw, "minimality": None}).combinations[-1] == ("A", "B")
    rep = find_biases(tags, y, **kw)
    assert set(rep.combinations) == {("A",), ("B",)}
    tags, y = interpolating_pair(12)  # A & B = 0.30: below both A and B by at least 0.1
    rep = find_biases(tags, y, **kw)
    assert set(rep.combinations) == {("A",), ("B",), ("A", "B")}


@pytest.mark.parametrize("n_threads", [2**31, -1])
def test_pack_bits_thread_count(n_threads):
    with pytest.raises(ValueError, match=rf"n_threads must be 0 \(every CPU\).*got {n_threads}"):
        pack_bits(np.ones((5, 2), dtype=bool), n_threads)


def test_find_biases_n_jobs_too_large(ok):
    tags, y = ok
    with pytest.raises(ValueError, match=r"n_jobs=2147483648 .* use None or -1"):
        find_biases(tags, y, n_jobs=2**31)


@pytest.mark.parametrize("p", [[[0.1, 0.2]], np.full((2, 3), 0.5), 0.03, np.float64(0.5)])
def test_adjust_pvalues_requires_one_dimensional_input(p):
    """A 2-D table was once flattened (shape (1, 2) in, (2,) out) and a scalar made (1,):
    anything but a vector is an error that says how to adjust a table."""
    with pytest.raises(ValueError, match=r"p must be 1-D.*got shape .*reshape\(np.shape\(p\)\)"):
        adjust_pvalues(p)
    # the documented workaround keeps the shape and adjusts the table as one family
    flat = np.ravel(p)
    out = adjust_pvalues(flat).reshape(np.shape(p))
    assert out.shape == np.shape(p)
    np.testing.assert_allclose(np.ravel(out), stats.false_discovery_control(flat))
