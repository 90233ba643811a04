"""Frozen result dataclasses shared by the analyses.

Every result is a ``@dataclass(frozen=True, slots=True)`` whose arrays are made read-only,
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


class ResultBase:
    """Behaviour shared by result dataclasses: read-only arrays, dicts, a short repr."""

    __slots__ = ()

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


@dataclass(frozen=True, slots=True, repr=False)
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


@dataclass(frozen=True, slots=True, repr=False)
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


@dataclass(frozen=True, slots=True, repr=False)
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
