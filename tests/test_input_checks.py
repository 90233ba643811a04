"""On/off options, missing labels in lists, and embeddings in containers NumPy reads badly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import datagauge
from datagauge._validation import check_bool, check_class_labels, check_labels
from datagauge.sufficiency import MAX_BOOTSTRAP, LearningCurve, Sufficiency, SufficiencyResult

STEPS = [50, 100, 200, 400]
VALUES = [0.5, 0.4, 0.3, 0.25]


@pytest.fixture
def x():
    return np.random.default_rng(0).random((20, 4)).astype(np.float32)


# ------------------------------------------------------------------------ on/off options

NOT_BOOLS = ["False", "True", "no", "", 0, 1, 1.0, None, [True], np.array([True])]


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_])
def test_check_bool_accepts_bools(value):
    out = check_bool(value, "flag")
    assert out is bool(value)
    assert type(out) is bool


@pytest.mark.parametrize("value", NOT_BOOLS, ids=repr)
def test_check_bool_refuses_everything_else(value):
    with pytest.raises(TypeError, match=r"flag must be True or False.*flag=True or flag=False"):
        check_bool(value, "flag")


def test_check_bool_names_a_string():
    with pytest.raises(TypeError, match="the string 'False' is not a boolean"):
        check_bool("False", "flag")


@pytest.mark.parametrize("option", ["higher_is_better", "bounded"])
@pytest.mark.parametrize("value", ["False", "True", 0, 1, None], ids=repr)
def test_fit_learning_curve_refuses_non_bool(option, value):
    with pytest.raises(TypeError, match=f"{option} must be True or False"):
        datagauge.fit_learning_curve(STEPS, VALUES, **{option: value})


def test_higher_is_better_string_false_no_longer_means_true():
    # The bug: "False" was truthy, so the curve was fitted as higher-is-better and
    # inv_project([0.2]) gave [1].
    lower = datagauge.fit_learning_curve(STEPS, VALUES, higher_is_better=False)
    assert lower.higher_is_better is False
    assert lower.inv_project([0.2])[0] > 400
    with pytest.raises(TypeError):
        datagauge.fit_learning_curve(STEPS, VALUES, higher_is_better="False")


def test_numpy_bools_are_accepted_and_stored_as_python_bools():
    curve = datagauge.fit_learning_curve(
        STEPS, VALUES, higher_is_better=np.False_, bounded=np.True_
    )
    assert curve.higher_is_better is False
    assert curve.bounded is True
    assert curve == datagauge.fit_learning_curve(
        STEPS, VALUES, higher_is_better=False, bounded=True
    )


@pytest.mark.parametrize("option", ["higher_is_better", "bounded"])
def test_learning_curve_constructor_refuses_non_bool(option):
    curve = datagauge.fit_learning_curve(STEPS, VALUES, higher_is_better=False)
    fields = {
        "c": curve.c,
        "m": curve.m,
        "c0": curve.c0,
        "steps": curve.steps,
        "values": curve.values,
        "higher_is_better": False,
        "bounded": True,
        "loss": curve.loss,
        "r2": curve.r2,
    }
    assert LearningCurve(**fields).higher_is_better is False
    with pytest.raises(TypeError, match=f"{option} must be True or False"):
        LearningCurve(**{**fields, option: "False"})


@pytest.mark.parametrize("value", ["False", 0, None], ids=repr)
def test_coverage_normalize_refuses_non_bool(x, value):
    with pytest.raises(TypeError, match="normalize must be True or False"):
        datagauge.coverage(x, 3, normalize=value)


def test_coverage_normalize_refused_also_with_a_graph(x):
    graph = datagauge.neighbor_graph(x, 3)
    with pytest.raises(TypeError, match="normalize must be True or False"):
        datagauge.coverage(graph, 3, normalize="True")


class _Train:
    def train(self, model, dataset, indices):
        pass


class _Eval:
    def evaluate(self, model, dataset):
        return {"accuracy": 0.5}


@pytest.mark.parametrize("option", ["unit_interval", "reset_each_step", "replace"])
def test_sufficiency_config_refuses_non_bool(option):
    with pytest.raises(TypeError, match=f"{option} must be True or False"):
        Sufficiency.Config(_Train(), _Eval(), **{option: "False"})
    cfg = Sufficiency.Config(_Train(), _Eval(), **{option: np.False_})
    assert getattr(cfg, option) is False


def test_sufficiency_evaluate_refuses_non_bool_progress():
    suff = Sufficiency(object(), Sufficiency.Config(_Train(), _Eval(), runs=1, steps=[2, 4]))
    with pytest.raises(TypeError, match="progress must be True or False"):
        suff.evaluate(np.zeros(10), np.zeros(5), progress="False")
    seen = []
    res = suff.evaluate(np.zeros(10), np.zeros(5), progress=lambda d, t: seen.append(d), n_jobs=1)
    assert seen
    assert res.steps.tolist() == [2, 4]


def test_sufficiency_result_refuses_non_bool_unit_interval():
    steps, measures = np.array([1, 2, 3]), {"a": np.array([[0.1, 0.2, 0.3]])}
    with pytest.raises(TypeError, match="unit_interval must be True or False"):
        SufficiencyResult(steps=steps, measures=measures, unit_interval="False")
    with pytest.raises(TypeError, match="unit_interval must be True or False"):
        SufficiencyResult.from_dict(
            {"steps": [1, 2, 3], "measures": {"a": [[0.1, 0.2, 0.3]]}, "unit_interval": "no"}
        )


# ------------------------------------------------------------------------ n_bootstrap


def test_n_bootstrap_is_capped():
    runs = [VALUES, [v + 0.01 for v in VALUES]]
    with pytest.raises(ValueError, match=r"n_bootstrap=1,000,000,000 is more than the 100,000"):
        datagauge.fit_learning_curve(STEPS, runs, n_bootstrap=10**9)
    with pytest.raises(ValueError, match="n_bootstrap <= 100000"):
        datagauge.fit_learning_curve(STEPS, VALUES, n_bootstrap=MAX_BOOTSTRAP + 1)
    curve = datagauge.fit_learning_curve(STEPS, runs, n_bootstrap=64)
    assert curve.bootstrap is not None
    assert curve.bootstrap.shape[0] == 64


# ------------------------------------------------------------------------ missing labels

MIXED = [np.nan] + ["a", "b"] * 9 + ["b"]


@pytest.mark.parametrize(
    "labels",
    [
        MIXED,
        tuple(MIXED),
        ["a", None] + ["b"] * 18,
        ["a", pd.NA] + ["b"] * 18,
        ["a", float("nan")] + ["b"] * 18,
        np.array(MIXED, dtype=object),
        pd.Series(MIXED),
    ],
    ids=["list", "tuple", "None", "pd.NA", "float nan", "object array", "Series"],
)
def test_missing_labels_are_an_error(x, labels):
    message = r"labels contains 1 missing values \(None, NaN or pandas.NA; first at index"
    with pytest.raises(ValueError, match=message):
        check_labels(labels, 20)
    with pytest.raises(ValueError, match=message):
        check_class_labels(labels, 20)
    with pytest.raises(ValueError, match=message):
        datagauge.coverage(x, 3, labels=labels)
    with pytest.raises(ValueError, match=message):
        datagauge.bayes_error(x, labels)


def test_missing_split_in_a_list_is_an_error(x):
    with pytest.raises(ValueError, match="splits contains 1 missing values"):
        datagauge.duplicates(x, splits=[np.nan] + ["a"] * 19)


def test_list_with_the_string_nan_is_a_class(x):
    # A string written by the user is a class name, even "nan"; no warning for a list.
    labels = ["nan"] + ["a", "b"] * 9 + ["b"]
    assert datagauge.bayes_error(x, labels).n_classes == 3
    assert datagauge.coverage(x, 3, labels=labels).per_class.labels.tolist() == ["a", "b", "nan"]


def test_string_array_with_nan_warns_and_keeps_the_class(x):
    # np.array([np.nan, "a"]) holds "nan": it very likely was a missing value, but a class may
    # be called "nan", so it is kept, with a warning that says how to fix the former.
    labels = np.array(MIXED)
    assert labels.dtype.kind == "U"
    assert labels[0] == "nan"
    with pytest.warns(datagauge.DatagaugeWarning, match="holds the string 'nan'"):
        res = datagauge.coverage(x, 3, labels=labels)
    assert res.per_class.labels.tolist() == ["a", "b", "nan"]
    with pytest.warns(datagauge.DatagaugeWarning, match="splits holds the string 'nan'"):
        datagauge.duplicates(x, splits=np.array([np.nan] + ["a"] * 19))


def test_plain_labels_do_not_warn(x):
    labels = np.array(["a", "b"] * 10)
    datagauge.coverage(x, 3, labels=labels)  # warnings are errors in the test suite
    datagauge.coverage(x, 3, labels=["a", "b"] * 10)


# ------------------------------------------------------------------------ containers


def test_sparse_matrix_says_to_densify(x):
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match=r"scipy sparse matrix.*embeddings\.toarray\(\)"):
        datagauge.coverage(sparse.csr_matrix(x), 3)
    with pytest.raises(TypeError, match=r"\.toarray\(\)"):
        datagauge.outliers(sparse.coo_array(x), k=3)


def test_nullable_float_dataframe_is_read(x):
    frame = pd.DataFrame(x.astype(np.float64)).astype("Float64")
    assert datagauge.coverage(frame, 3) == datagauge.coverage(x, 3)
    ints = pd.DataFrame((x * 100).astype(np.int64)).astype("Int64")
    assert datagauge.coverage(ints, 3) == datagauge.coverage((x * 100).astype(np.int64), 3)


def test_nullable_dataframe_with_missing_values_reports_nan(x):
    frame = pd.DataFrame(x.astype(np.float64)).astype("Float64")
    frame.iloc[4, 2] = pd.NA
    with pytest.raises(ValueError, match=r"1 NaN and 0 infinite values \(first in row 4\)"):
        datagauge.coverage(frame, 3)


def test_dataframe_of_text_is_still_refused(x):
    frame = pd.DataFrame({"a": ["x"] * 20, "b": pd.array([1.0] * 20, dtype="Float64")})
    with pytest.raises(TypeError, match="must hold real numbers"):
        datagauge.coverage(frame, 3)


def test_torch_tensor_with_grad_is_detached(x):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    assert datagauge.coverage(t, 3) == datagauge.coverage(x, 3)
    assert datagauge.outliers(t * 2, k=3) == datagauge.outliers(x * 2, k=3)


def test_overwrite_option_uses_the_same_check(tmp_path):
    from datagauge._validation import check_new_file

    target = tmp_path / "out.json"
    check_new_file(target, overwrite=np.False_, name="output_file")  # a numpy bool is fine
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        check_new_file(target, overwrite="False", name="output_file")
