"""Frozen result dataclasses shared by the analyses.

Every result is a ``@dataclass(frozen=True, slots=True, eq=False)`` (equality comes from
:class:`ResultBase`) whose arrays are made read-only,
with ``to_dict()`` (plain Python types, JSON-ready) and ``to_dataframe()`` (pandas, an
optional dependency imported only when called).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ClassCoverage", "CoverageResult", "EmbeddingResult", "ResultBase"]


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """A pandas DataFrame of these columns; pandas is imported only here."""
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "to_dataframe() needs pandas; install it with `pip install pandas` "
            "(or `pip install 'datagauge[report]'`)."
        ) from exc
    frame: pd.DataFrame = pandas.DataFrame(columns)
    return frame


def _plain(value: Any) -> Any:
    """Plain Python objects for JSON; NaN and infinity become None (JSON has neither)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return [_plain(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, ResultBase):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _equal(a: Any, b: Any) -> bool:
    """Whether two field values are equal: arrays by shape, dtype and values (NaN equal to
    NaN), containers element by element, results by their own equality."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        if a.dtype.kind == "O":
            pairs = zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)
            return all(_equal(x, y) for x, y in pairs)
        return bool(np.array_equal(a, b))
    if isinstance(a, ResultBase) or isinstance(b, ResultBase):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or a.keys() != b.keys():
            return False
        return all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return False
        return all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (float, np.floating)) and isinstance(b, (float, np.floating)):
        return bool(a == b or (math.isnan(a) and math.isnan(b)))
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # values whose == gives no single truth value
        return False


class ResultBase:
    """Behaviour shared by result dataclasses: read-only arrays, dicts, a short repr, and
    equality.

    Two results are equal when they are of the same type and every compared field is equal:
    arrays by shape, dtype and values (NaN equals NaN), dicts, lists and tuples element by
    element, nested results by their own equality. Fields declared with ``compare=False``
    (caches) are ignored. Results are unhashable (``__hash__ = None``), as equality is by
    value over arrays; the dataclasses are declared ``eq=False`` so that they inherit this.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _equal(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.compare
        )

    __hash__ = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and value.flags.writeable:
                # A read-only view: the caller's array (if it is one) stays writable.
                value = value.view()
                value.flags.writeable = False
                object.__setattr__(self, f.name, value)

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python objects (lists, floats, ints, str; NaN as None)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                parts.append(f"{f.name}=<{value.dtype} array {value.shape}>")
            elif isinstance(value, ResultBase):
                parts.append(f"{f.name}=<{type(value).__name__}>")
            elif isinstance(value, float):
                parts.append(f"{f.name}={value:.6g}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ClassCoverage(ResultBase):
    """Coverage per class.

    Attributes
    ----------
    labels : ndarray, shape (n_classes,)
        The distinct labels, sorted.
    count : ndarray of int64, shape (n_classes,)
        Samples per class.
    n_uncovered : ndarray of int64, shape (n_classes,)
        Samples of the class among the dataset's uncovered points.
    fraction_uncovered : ndarray of float64, shape (n_classes,)
        ``n_uncovered / count``.
    adaptive_radius : ndarray of float64, shape (n_classes,)
        The class's own adaptive coverage radius, from k-NN among the class's samples only;
        NaN where the class has ``count <= k`` samples (too few for k neighbours).
    """

    labels: NDArray[Any]
    count: NDArray[np.int64]
    n_uncovered: NDArray[np.int64]
    fraction_uncovered: NDArray[np.float64]
    adaptive_radius: NDArray[np.float64]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per class: label, count, n_uncovered, fraction_uncovered, adaptive_radius."""
        return _frame({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    def rows(self) -> list[tuple[Any, int, int, float, float]]:
        """One tuple per class, as Python scalars: (label, count, n_uncovered,
        fraction_uncovered, adaptive_radius); the label keeps its own type."""
        return [
            (lab, int(c), int(u), float(f), float(r))
            for lab, c, u, f, r in zip(
                self.labels,
                self.count,
                self.n_uncovered,
                self.fraction_uncovered,
                self.adaptive_radius,
                strict=True,
            )
        ]


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class CoverageResult(ResultBase):
    """Result of :func:`datagauge.coverage`.

    Attributes
    ----------
    uncovered_indices : ndarray of int64, shape (n_uncovered,)
        Under-sampled points, most isolated first (largest radius first; ties, higher index
        first).
    critical_value_radii : ndarray of float32, shape (n_samples,)
        Euclidean distance of every point to its k-th nearest neighbour, itself excluded.
    coverage_radius : float
        Points with a larger critical radius are uncovered.
    radius_type : str
        ``"adaptive"`` or ``"naive"``.
    k : int
        Neighbours a point needs within the radius to be covered.
    per_class : ClassCoverage or None
        Per-class table when labels were given.
    """

    uncovered_indices: NDArray[np.int64]
    critical_value_radii: NDArray[np.float32]
    coverage_radius: float
    radius_type: str
    k: int
    per_class: ClassCoverage | None = None

    def to_dataframe(self) -> pd.DataFrame:
        """The uncovered points, most isolated first: rank, index, radius."""
        idx = self.uncovered_indices
        return _frame(
            {
                "rank": np.arange(1, idx.size + 1),
                "index": idx,
                "radius": self.critical_value_radii[idx],
            }
        )


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class EmbeddingResult(ResultBase):
    """Result of :func:`datagauge.embed` with ``return_labels=True``.

    Attributes
    ----------
    embeddings : ndarray of float32, shape (n_samples, n_features)
        One flattened layer output per image (a read-only view of ``out`` when one was given).
    labels : ndarray, shape (n_samples,), or None
        The second element of each ``(image, label, ...)`` item: int64 when every label is an
        integer (a one-hot or score vector counts as its argmax), str when every label is a
        string, otherwise object. None when the data yields bare images.
    metadata : tuple, length n_samples, or None
        What each item yields after the label: the object itself when there is one, a tuple
        when there are several, None for an item without. None when no item has any.
    """

    embeddings: NDArray[np.float32]
    labels: NDArray[Any] | None = None
    metadata: tuple[Any, ...] | None = None

    def to_dataframe(self) -> pd.DataFrame:
        """One row per image: ``label`` (when known), then ``dim_0 ... dim_{d-1}``."""
        columns: dict[str, Any] = {}
        if self.labels is not None:
            columns["label"] = self.labels
        for j in range(self.embeddings.shape[1]):
            columns[f"dim_{j}"] = self.embeddings[:, j]
        return _frame(columns)


# --------------------------------------------------------------------------- graph analyses

__all__ += ["DuplicateResult", "LabelErrorResult", "OutlierResult"]


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class OutlierResult(ResultBase):
    """Result of :func:`datagauge.outliers`.

    Attributes
    ----------
    scores : ndarray of float64, shape (n_samples,)
        Outlier score of every point, larger = more outlying: the local outlier factor
        (``method="lof"``) or the distance to the k-th nearest neighbour
        (``method="knn_distance"``).
    indices : ndarray of int64, shape (n_samples,)
        Every point, most outlying first (score descending; equal scores by index).
    flagged : ndarray of int64, shape (n_flagged,)
        The points whose score exceeds `threshold`, most outlying first.
    method : str
        ``"lof"`` or ``"knn_distance"``.
    k : int
        Neighbours per point.
    threshold : float
        The score threshold used: points with ``score > threshold`` are flagged.
    """

    scores: NDArray[np.float64]
    indices: NDArray[np.int64]
    flagged: NDArray[np.int64]
    method: str
    k: int
    threshold: float

    def to_dataframe(self) -> pd.DataFrame:
        """One row per point, most outlying first: rank, index, score, flagged."""
        is_flagged = np.zeros(self.scores.shape[0], dtype=bool)
        is_flagged[self.flagged] = True
        return _frame(
            {
                "rank": np.arange(1, self.indices.size + 1),
                "index": self.indices,
                "score": self.scores[self.indices],
                "flagged": is_flagged[self.indices],
            }
        )


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class LabelErrorResult(ResultBase):
    """Result of :func:`datagauge.label_errors`.

    Attributes
    ----------
    scores : ndarray of float64, shape (n_samples,)
        How suspect every label is, larger = more suspect: the intra/extra-class distance ratio
        (``method="distance_ratio"``) or the share of neighbours with another label
        (``method="knn_vote"``).
    indices : ndarray of int64, shape (n_samples,)
        Every point, most suspect first (score descending; equal scores by index).
    flagged : ndarray of int64, shape (n_flagged,)
        The points called mislabelled, most suspect first.
    labels : ndarray, shape (n_samples,)
        The labels as given (``np.asarray(labels)``).
    suggested : ndarray, shape (n_samples,)
        The label the neighbours suggest, with the dtype of `labels`; equal to the point's own
        label where no other label is suggested.
    alternative : ndarray, shape (n_samples,)
        A second suggestion where two labels are about equally supported (distance ratio
        only); the point's own label elsewhere.
    method : str
        ``"distance_ratio"`` or ``"knn_vote"``.
    k : int
        Neighbours used per point (for the distance ratio, ``min(k, smallest class - 1)``).
    """

    scores: NDArray[np.float64]
    indices: NDArray[np.int64]
    flagged: NDArray[np.int64]
    labels: NDArray[Any]
    suggested: NDArray[Any]
    alternative: NDArray[Any]
    method: str
    k: int

    def to_dataframe(self) -> pd.DataFrame:
        """One row per point, most suspect first: rank, index, label, suggested, alternative,
        score, flagged."""
        idx = self.indices
        is_flagged = np.zeros(self.scores.shape[0], dtype=bool)
        is_flagged[self.flagged] = True
        return _frame(
            {
                "rank": np.arange(1, idx.size + 1),
                "index": idx,
                "label": self.labels[idx],
                "suggested": self.suggested[idx],
                "alternative": self.alternative[idx],
                "score": self.scores[idx],
                "flagged": is_flagged[idx],
            }
        )


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class DuplicateResult(ResultBase):
    """Result of :func:`datagauge.duplicates`.

    Attributes
    ----------
    exact : tuple of ndarray of int64
        Groups of bitwise-identical rows (as float32), found by hashing; members ascending;
        largest groups first.
    near : tuple of ndarray of int64
        Groups of points linked by distances ``<= threshold`` (connected components), at least
        two points, excluding groups that are a single exact group; largest first, then
        tightest (smallest largest linking distance).
    threshold : float
        Distance at or below which two points are near duplicates.
    leaks : tuple of ndarray of int64
        The exact and near groups whose members lie in more than one split, in the order
        above (exact groups first); empty without splits.
    leak_counts : dict
        ``{(split_a, split_b): count}`` for every pair of splits (sorted, ``split_a <
        split_b``): how many leaking groups hold members of both. Empty without splits.
    splits : ndarray, shape (n_samples,), or None
        The splits as given.
    k : int
        Neighbours per point searched.
    """

    exact: tuple[NDArray[np.int64], ...]
    near: tuple[NDArray[np.int64], ...]
    threshold: float
    leaks: tuple[NDArray[np.int64], ...]
    leak_counts: dict[tuple[Any, Any], int]
    splits: NDArray[Any] | None
    k: int

    def __post_init__(self) -> None:
        ResultBase.__post_init__(self)
        for groups in (self.exact, self.near, self.leaks):
            for group in groups:
                group.flags.writeable = False

    def __repr__(self) -> str:
        return (
            f"DuplicateResult(exact=<{len(self.exact)} groups>, near=<{len(self.near)} groups>, "
            f"threshold={self.threshold:.6g}, leaks=<{len(self.leaks)} groups>, "
            f"leak_counts={self.leak_counts!r}, k={self.k})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain Python objects; ``leak_counts`` as a list of
        ``{"splits": [a, b], "groups": count}`` (JSON has no tuple keys)."""
        out = ResultBase.to_dict(self)
        out["leak_counts"] = [
            {"splits": _plain(list(pair)), "groups": int(count)}
            for pair, count in self.leak_counts.items()
        ]
        return out

    def to_dataframe(self) -> pd.DataFrame:
        """One row per (group, member): group (exact groups numbered first, then near ones),
        kind (``"exact"`` / ``"near"``), size, index, and with splits: split, leak."""
        groups = [*self.exact, *self.near]
        kinds = ["exact"] * len(self.exact) + ["near"] * len(self.near)
        sizes = np.asarray([g.size for g in groups], dtype=np.int64)
        index = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
        columns: dict[str, Any] = {
            "group": np.repeat(np.arange(len(groups), dtype=np.int64), sizes),
            "kind": np.repeat(np.asarray(kinds, dtype=object), sizes),
            "size": np.repeat(sizes, sizes),
            "index": index,
        }
        if self.splits is not None:
            leak = [np.unique(self.splits[g]).size > 1 for g in groups]
            columns["split"] = self.splits[index]
            columns["leak"] = np.repeat(np.asarray(leak, dtype=bool), sizes)
        return _frame(columns)


# --------------------------------------------------------------- comparisons of distributions

__all__ += ["BayesErrorResult", "DivergenceResult", "DriftResult", "SpanningTree"]


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class SpanningTree(ResultBase):
    """Result of :func:`datagauge.mst.minimum_spanning_tree`.

    Attributes
    ----------
    source, target : ndarray of int64, shape (n_samples - 1,)
        Edge endpoints, ``source < target``.
    distances : ndarray of float32, shape (n_samples - 1,)
        Euclidean edge lengths. Edges are sorted by (length, source, target).
    total_length : float
        Sum of the edge lengths (float64).
    method : str
        ``"exact"`` (the Euclidean minimum spanning tree) or ``"knn"`` (DataEval 1.1.4's
        spanning tree of a k-NN graph).
    k : int
        Neighbours per point in the k-NN lists the tree was built from.
    n_searched : int or None
        ``"exact"``: searches run for the nearest point outside a component, summed over the
        Boruvka rounds, when the k-NN lists did not settle a point (0: the lists proved the
        whole tree). None for ``"knn"``.
    """

    source: NDArray[np.int64]
    target: NDArray[np.int64]
    distances: NDArray[np.float32]
    total_length: float
    method: str
    k: int
    n_searched: int | None

    def to_dataframe(self) -> pd.DataFrame:
        """One row per edge, shortest first: source, target, distance."""
        return _frame({"source": self.source, "target": self.target, "distance": self.distances})


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class BayesErrorResult(ResultBase):
    """Result of :func:`datagauge.bayes_error`.

    Attributes
    ----------
    upper, lower : float
        Upper and lower bound of the Bayes error rate, in [0, 1].
    method : str
        ``"knn"`` or ``"mst"``.
    k : int or None
        Neighbours of the k-NN classifier (``"knn"``); None for ``"mst"``.
    tree : str or None
        The spanning tree (``"exact"`` or ``"knn"``) for ``"mst"``; None for ``"knn"``.
    errors : int
        ``"knn"``: samples whose neighbours' most common label differs from their own;
        ``"mst"``: tree edges between different labels beyond the ``n_classes - 1`` any
        spanning tree needs.
    n_samples, n_classes : int
        Samples and distinct labels.
    """

    upper: float
    lower: float
    method: str
    k: int | None
    tree: str | None
    errors: int
    n_samples: int
    n_classes: int

    def to_dataframe(self) -> pd.DataFrame:
        """One row with every field."""
        return _frame({k: [v] for k, v in self.to_dict().items()})


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class DivergenceResult(ResultBase):
    """Result of :func:`datagauge.divergence`.

    Attributes
    ----------
    divergence : float
        Henze-Penrose divergence estimate in [0, 1]: 0 for samples of one distribution, 1 for
        samples that do not overlap.
    errors : int
        ``"fnn"``: points whose nearest neighbour lies in the other sample; ``"mst"``: tree
        edges between the samples, minus the one any spanning tree needs.
    method : str
        ``"fnn"`` or ``"mst"``.
    tree : str or None
        The spanning tree (``"exact"`` or ``"knn"``) for ``"mst"``; None for ``"fnn"``.
    n_a, n_b : int
        Sizes of the two samples.
    """

    divergence: float
    errors: int
    method: str
    tree: str | None
    n_a: int
    n_b: int

    def to_dataframe(self) -> pd.DataFrame:
        """One row with every field."""
        return _frame({k: [v] for k, v in self.to_dict().items()})


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class DriftResult(ResultBase):
    """Result of :func:`datagauge.drift`.

    Attributes
    ----------
    method : str
        ``"knn"``, ``"mmd"`` or ``"ks"``.
    drifted : bool
        Whether the test sample differs from the reference at level `alpha`.
    p_value : float
        ``"knn"``, ``"mmd"``: the permutation p-value; ``"ks"``: the smallest per-feature
        p-value after the correction across features.
    statistic : float
        ``"knn"``: the share of neighbour pairs within one sample; ``"mmd"``: the unbiased
        squared maximum mean discrepancy; ``"ks"``: the mean Kolmogorov-Smirnov statistic
        over features (DataEval's ``distance``).
    alpha : float
        Significance level.
    threshold : float
        ``"knn"``, ``"mmd"``: the statistic's ``1 - alpha`` quantile over the permutations
        (DataEval's ``distance_threshold``); ``"ks"``: the per-feature p-value below which a
        feature drifts after the correction (DataEval's ``threshold``).
    n_permutations : int or None
        Permutations of the test (None for ``"ks"``).
    k : int or None
        Neighbours per point (``"knn"``).
    sigma : float or None
        Gaussian kernel bandwidth (``"mmd"``).
    correction : str or None
        ``"bonferroni"`` or ``"fdr"`` (``"ks"``).
    sample_scores : ndarray of float64, shape (n_test,), or None
        How strongly every test sample sits where the reference is thin, larger = more
        drifted (``"knn"``: share of its neighbours from the test sample minus the share
        expected without drift; ``"mmd"``: the witness function, mean kernel value to the
        other test samples minus mean kernel value to the reference samples).
    reference_scores : ndarray of float64, shape (n_reference,), or None
        The same for every reference sample, towards the reference: large where the test
        sample is thin (regions the test data no longer cover).
    samples : ndarray of int64, shape (n_test,), or None
        Test samples, most drifted first (score descending; equal scores by index).
    feature_statistics, feature_p_values : ndarray of float64, shape (n_features,), or None
        Per-feature Kolmogorov-Smirnov statistic and (uncorrected) p-value (``"ks"``).
    features : ndarray of int64, shape (n_drifted_features,), or None
        The features that drift after the correction, smallest p-value first (``"ks"``).
    """

    method: str
    drifted: bool
    p_value: float
    statistic: float
    alpha: float
    threshold: float
    n_permutations: int | None
    k: int | None
    sigma: float | None
    correction: str | None
    sample_scores: NDArray[np.float64] | None
    reference_scores: NDArray[np.float64] | None
    samples: NDArray[np.int64] | None
    feature_statistics: NDArray[np.float64] | None
    feature_p_values: NDArray[np.float64] | None
    features: NDArray[np.int64] | None

    def to_dataframe(self) -> pd.DataFrame:
        """``"ks"``: one row per feature, smallest p-value first: feature, statistic, p_value,
        drifted. ``"knn"``, ``"mmd"``: one row per test sample, most drifted first: rank,
        index, score."""
        if self.feature_p_values is not None and self.feature_statistics is not None:
            size = self.feature_p_values.size
            order = np.lexsort((np.arange(size), -self.feature_statistics, self.feature_p_values))
            drifted = np.zeros(size, dtype=bool)
            if self.features is not None:
                drifted[self.features] = True
            return _frame(
                {
                    "feature": order.astype(np.int64),
                    "statistic": self.feature_statistics[order],
                    "p_value": self.feature_p_values[order],
                    "drifted": drifted[order],
                }
            )
        samples = self.samples if self.samples is not None else np.zeros(0, dtype=np.int64)
        scores = self.sample_scores if self.sample_scores is not None else np.zeros(0)
        return _frame(
            {"rank": np.arange(1, samples.size + 1), "index": samples, "score": scores[samples]}
        )
