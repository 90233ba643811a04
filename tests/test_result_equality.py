"""Result objects compare with ``==`` by value (arrays included) and are unhashable."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import numpy as np
import pytest

import datagauge
from datagauge._results import ClassCoverage, CoverageResult, OutlierResult, ResultBase
from datagauge.sufficiency import SufficiencyResult


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).random((120, 4)).astype(np.float32)


def _result_classes() -> list[type]:
    """Every ResultBase subclass the package defines (imports every module first)."""
    for info in pkgutil.walk_packages(datagauge.__path__, "datagauge."):
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional dependency (torch, dask) that is not installed
            continue
    found: dict[str, type] = {}
    todo = list(ResultBase.__subclasses__())
    while todo:
        cls = todo.pop()
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
        todo.extend(cls.__subclasses__())
    return [found[k] for k in sorted(found)]


RESULT_CLASSES = _result_classes()


def test_every_result_class_is_found():
    names = {cls.__name__ for cls in RESULT_CLASSES}
    assert {"CoverageResult", "OutlierResult", "SpanningTree", "DriftResult"} <= names
    assert {"LearningCurve", "SufficiencyResult", "NeighborGraph", "BiasReport"} <= names


@pytest.mark.parametrize("cls", RESULT_CLASSES, ids=lambda c: c.__name__)
def test_every_result_uses_the_shared_equality(cls):
    # Declared eq=False, so the dataclass does not write its own __eq__ (which compares
    # fields as tuples and raises on arrays) nor a __hash__ over the fields.
    assert dataclasses.is_dataclass(cls)
    assert cls.__eq__ is ResultBase.__eq__
    assert cls.__hash__ is None
    assert "__eq__" not in vars(cls)


def test_coverage_equal_and_unhashable(x):
    a, b = datagauge.coverage(x, 5), datagauge.coverage(x, 5)
    assert a is not b
    assert a == b
    assert a.__ne__(b) is False  # != is the negation of the shared ==
    with pytest.raises(TypeError, match="unhashable"):
        hash(a)
    with pytest.raises(TypeError, match="unhashable"):
        {a}  # noqa: B018


def test_coverage_with_nested_per_class_equal(x):
    y = np.arange(len(x)) % 3
    a = datagauge.coverage(x, 5, labels=y)
    b = datagauge.coverage(x, 5, labels=y)
    assert isinstance(a.per_class, ClassCoverage)
    assert a == b
    # the nested table differs in one label: the results differ
    c = dataclasses.replace(
        a, per_class=dataclasses.replace(a.per_class, labels=np.array([0, 1, 5]))
    )
    assert a != c


def test_scalar_field_differs(x):
    a = datagauge.coverage(x, 5)
    assert a != dataclasses.replace(a, coverage_radius=a.coverage_radius + 1e-9)
    assert a != dataclasses.replace(a, radius_type="naive")
    assert a != datagauge.coverage(x, 6)


def test_one_array_element_differs(x):
    a = datagauge.coverage(x, 5)
    radii = a.critical_value_radii.copy()
    radii[7] += 1.0
    assert a != dataclasses.replace(a, critical_value_radii=radii)


def test_array_shape_and_dtype_matter(x):
    a = datagauge.coverage(x, 5)
    assert a != dataclasses.replace(
        a, critical_value_radii=a.critical_value_radii.astype(np.float64)
    )
    assert a != dataclasses.replace(a, uncovered_indices=a.uncovered_indices[:-1])


def test_nan_equals_nan():
    scores = np.array([1.0, np.nan, 2.0])
    kw = {
        "indices": np.array([2, 0, 1]),
        "flagged": np.array([2]),
        "method": "lof",
        "k": 5,
        "threshold": float("nan"),
    }
    a = OutlierResult(scores=scores, **kw)
    b = OutlierResult(scores=scores.copy(), **kw)
    assert a == b
    other = scores.copy()
    other[1] = 0.0
    assert a != OutlierResult(scores=other, **kw)


def test_different_types_are_unequal(x):
    a = datagauge.coverage(x, 5)
    assert a != a.to_dict()
    assert a != 1
    assert a.__eq__(a.to_dict()) is NotImplemented
    fields = {f.name: getattr(a, f.name) for f in dataclasses.fields(a)}

    @dataclasses.dataclass(frozen=True, slots=True, repr=False, eq=False)
    class Look(ResultBase):  # the same fields, another type
        uncovered_indices: np.ndarray
        critical_value_radii: np.ndarray
        coverage_radius: float
        radius_type: str
        k: int
        per_class: object = None

    assert Look(**fields) != a
    assert isinstance(a, CoverageResult)


def test_outliers_equal(x):
    a, b = datagauge.outliers(x, k=5), datagauge.outliers(x, k=5)
    assert a == b
    assert a != datagauge.outliers(x, k=6)


def test_spanning_tree_equal(x):
    a, b = datagauge.minimum_spanning_tree(x), datagauge.minimum_spanning_tree(x)
    assert a == b
    assert a != datagauge.minimum_spanning_tree(x[:-1])


def test_drift_equal(x):
    a = datagauge.drift(x[:60], x[60:], random_state=0)
    b = datagauge.drift(x[:60], x[60:], random_state=0)
    assert a == b
    assert a != datagauge.drift(x[:60], x[60:], method="ks")


def test_neighbor_graph_equal_after_save_and_load(x, tmp_path):
    g = datagauge.neighbor_graph(x, 5)
    g.save(tmp_path / "g")
    loaded = datagauge.NeighborGraph.load(tmp_path / "g")
    assert loaded == g
    assert g != datagauge.neighbor_graph(x, 6)


def _curve(**kw):
    values = [[0.5, 0.4, 0.3, 0.25], [0.52, 0.41, 0.31, 0.24]]
    return datagauge.fit_learning_curve(
        [50, 100, 200, 400], values, higher_is_better=False, bounded=True, **kw
    )


def test_learning_curve_equal():
    a, b = _curve(), _curve()
    assert a.bootstrap is not None
    assert a == b
    assert a != _curve(random_state=1)  # another bootstrap
    assert a != _curve(n_bootstrap=8)


def _sufficiency_result() -> SufficiencyResult:
    return SufficiencyResult(
        steps=np.array([10, 20, 40, 80]),
        measures={
            "accuracy": np.array([[0.5, 0.6, 0.7, 0.75], [0.52, 0.61, 0.69, 0.76]]),
            "loss": np.array([[1.0, 0.8, np.nan, 0.5], [1.1, 0.7, 0.6, 0.5]]),
        },
        lower_is_better=("loss",),
        unit_interval=False,
        n_train=80,
        random_state=3,
    )


def test_sufficiency_result_round_trip():
    r = _sufficiency_result()
    assert SufficiencyResult.from_dict(r.to_dict()) == r
    assert r == _sufficiency_result()


def test_sufficiency_result_equality_ignores_kept_fits():
    # The docstring: the kept curves are not data; to_dict and equality ignore them.
    r, fresh = _sufficiency_result(), _sufficiency_result()
    r.fit("accuracy")
    assert r._fits  # a curve was kept
    assert r == fresh


def test_sufficiency_result_differs_in_one_value():
    r = _sufficiency_result()
    d = r.to_dict()
    d["measures"]["accuracy"][1][2] = 0.7
    assert SufficiencyResult.from_dict(d) != r
    d = r.to_dict()
    d["lower_is_better"] = []
    assert SufficiencyResult.from_dict(d) != r
    d = r.to_dict()
    d["measures"] = {"accuracy": d["measures"]["accuracy"]}
    d["lower_is_better"] = []
    assert SufficiencyResult.from_dict(d) != dataclasses.replace(r, lower_is_better=())
