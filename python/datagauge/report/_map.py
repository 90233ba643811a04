"""The report's 2-D map of the embeddings: UMAP on the k-NN graph, else PCA.

UMAP (umap-learn, when installed) is given precomputed neighbours, so it does not search
again; it is seeded (``random_state``), which makes it deterministic and single-threaded.
Without umap-learn, or on fewer than ``UMAP_MIN_SAMPLES`` samples, the map is the first two
principal components (an eigendecomposition of the covariance, signs fixed), so the same data
always give the same picture.

On more than ``MAP_MAX_POINTS`` samples the map shows a seeded, stratified subsample of that
many (each class keeps its share), laid out from their own neighbours among the shown points;
the flagged samples among them are marked. In the report the layout runs in a worker process
(:mod:`._worker`) beside the other sections, from the start.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._common import Shared, neighbour_graph, stratified_rows
from ._html import Section
from ._inputs import ReportInputs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..graph import NeighborGraph

__all__ = [
    "MAP_MAX_POINTS",
    "UMAP_MIN_SAMPLES",
    "UMAP_NEIGHBORS",
    "MapSection",
    "layout_2d",
    "map_figure",
    "map_rows",
    "map_section",
    "pca_2d",
    "umap_layout",
    "umap_task",
]

#: Neighbours per point UMAP uses (umap-learn's default), the point itself included.
UMAP_NEIGHBORS = 15
#: Below this many samples the map is PCA: UMAP's layout needs a neighbourhood to work with.
UMAP_MIN_SAMPLES = 100
#: Optimisation epochs: umap-learn's defaults are 500 below 10,000 samples and 200 above;
#: fewer give the same picture for a report's glance at a fraction of the time.
_EPOCHS_SMALL, _EPOCHS_LARGE, _LARGE = 200, 100, 10_000
#: The most samples the map lays out. UMAP's time grows with the points (Fashion-MNIST's
#: 70,000 took 44-70 CPU-s, more than any other section; 15,000 take about 16, Numba's
#: compiling included) while a 2-D scatter of tens of thousands of dots mostly overplots:
#: above this the map shows a seeded, stratified subsample of this many (each class in its
#: share).
MAP_MAX_POINTS = 15_000
#: UMAP's initial layout: umap-learn's spectral embedding of the graph (its default).
_INIT = "spectral"

# (legend name, marker style) of the flagged samples drawn over the map.
_MARKS: dict[str, dict[str, Any]] = {
    "outliers": {"marker": "x", "color": "black", "s": 28, "linewidths": 1.0},
    "label_errors": {
        "marker": "o",
        "facecolors": "none",
        "edgecolors": "red",
        "s": 60,
        "linewidths": 1.2,
    },
    "duplicates": {
        "marker": "s",
        "facecolors": "none",
        "edgecolors": "#1f3fbf",
        "s": 40,
        "linewidths": 1.0,
    },
}
_MARK_NAMES = {
    "outliers": "outlier (LOF)",
    "label_errors": "suspected label error",
    "duplicates": "duplicate (exact or near)",
}


def pca_2d(x: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The first two principal components of `x` (n, d) and their shares of the variance.

    Deterministic: an eigendecomposition of the (d, d) covariance in float64, each
    component's sign fixed so that its largest loading is positive. A second column of zeros
    when d = 1.
    """
    xc = np.asarray(x, dtype=np.float64)
    xc = xc - xc.mean(axis=0)
    values, vectors = np.linalg.eigh(xc.T @ xc)
    order = np.argsort(values)[::-1][:2]
    v = vectors[:, order]
    signs = np.sign(v[np.abs(v).argmax(axis=0), np.arange(v.shape[1])])
    v = v * np.where(signs == 0, 1.0, signs)
    coords = np.zeros((xc.shape[0], 2))
    coords[:, : v.shape[1]] = xc @ v
    total = float(values.clip(min=0).sum())
    ratio = np.zeros(2)
    if total > 0:
        ratio[: order.size] = values[order].clip(min=0) / total
    return coords, ratio


def _umap_module() -> Any:
    """umap-learn, or None when it is not installed."""
    with warnings.catch_warnings():
        # umap-learn warns at import that TensorFlow (ParametricUMAP) is missing.
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module("umap")
        except ImportError:
            return None


def umap_epochs(n: int) -> int:
    """Optimisation epochs of a UMAP layout of `n` points."""
    return _EPOCHS_SMALL if n <= _LARGE else _EPOCHS_LARGE


def umap_layout(
    x: NDArray[Any], indices: NDArray[np.int64], distances: NDArray[np.float32], seed: int
) -> NDArray[np.float64] | None:
    """UMAP of `x` (n, d) from each point's nearest other points, or None without umap-learn.

    `indices` (n, m) and `distances` (n, m) are each point's m nearest other points, nearest
    first; UMAP uses ``m + 1`` neighbours (the point itself first, at distance 0).
    """
    umap = _umap_module()
    if umap is None:
        return None
    n, m = indices.shape
    # umap-learn wants every point as its own first neighbour, at distance 0.
    knn = np.empty((n, m + 1), dtype=np.int64)
    knn[:, 0] = np.arange(n)
    knn[:, 1:] = indices
    dist = np.zeros((n, m + 1), dtype=np.float32)
    dist[:, 1:] = distances
    reducer = umap.UMAP(
        n_neighbors=m + 1,
        n_components=2,
        precomputed_knn=(knn, dist),
        random_state=seed,
        n_epochs=umap_epochs(n),
        init=_INIT,
    )
    with warnings.catch_warnings():
        # "no search index: transform unavailable", "n_jobs overridden by random_state" and
        # the spectral initialisation's notes on disconnected graphs: none is actionable here.
        warnings.simplefilter("ignore")
        coords = reducer.fit_transform(x)
    out: NDArray[np.float64] = np.asarray(coords, dtype=np.float64)
    return out


def umap_task(arrays: dict[str, NDArray[Any]], options: dict[str, Any]) -> dict[str, NDArray[Any]]:
    """:func:`umap_layout` as a background task (:mod:`._worker`): no output without umap."""
    coords = umap_layout(arrays["x"], arrays["indices"], arrays["distances"], options["seed"])
    return {} if coords is None else {"coords": coords}


def map_rows(labels: NDArray[Any] | None, n: int, seed: int) -> NDArray[np.int64]:
    """The samples the map shows (ascending): all of them up to ``MAP_MAX_POINTS``, else a
    seeded ``MAP_MAX_POINTS`` of them, stratified by label."""
    if n <= MAP_MAX_POINTS:
        return np.arange(n, dtype=np.int64)
    return stratified_rows(labels, n, MAP_MAX_POINTS, seed)


def _neighbours(
    x: NDArray[Any], graph: NeighborGraph, rows: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The `UMAP_NEIGHBORS` - 1 nearest other shown points of every shown point: the graph's
    own when every sample is shown, else a search among the shown points."""
    m = min(UMAP_NEIGHBORS - 1, graph.k)
    if rows.size == x.shape[0]:
        return graph.indices[:, :m], graph.distances[:, :m]
    from ..graph import neighbor_graph

    sub = neighbor_graph(x[rows], k=min(m, rows.size - 1))
    return sub.indices, sub.distances


def layout_2d(
    x: NDArray[Any], graph: NeighborGraph, *, seed: int = 0
) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """2-D coordinates of every sample and how they were made.

    Returns
    -------
    coords : ndarray of float64, shape (n_samples, 2)
    info : dict
        ``method`` (``"umap"`` or ``"pca"``); for UMAP ``n_neighbors``, ``n_epochs``,
        ``init`` and ``random_state``; for PCA ``explained_variance_ratio`` and
        ``why_not_umap``.
    """
    rows = np.arange(x.shape[0], dtype=np.int64)
    plan = _plan(x, graph, rows, seed)
    if plan is None:
        return _pca(x, rows)
    coords = umap_layout(x, plan["indices"], plan["distances"], seed)
    if coords is None:
        return _pca(x, rows)
    return coords, _umap_info(plan, seed)


def _why_not_umap(n: int) -> str | None:
    if n < UMAP_MIN_SAMPLES:
        return f"UMAP needs at least {UMAP_MIN_SAMPLES} samples; there are {n}."
    if importlib.util.find_spec("umap") is None:
        return "umap-learn is not installed (pip install umap-learn, or datagauge[report])."
    return None


def _plan(
    x: NDArray[Any], graph: NeighborGraph, rows: NDArray[np.int64], seed: int
) -> dict[str, Any] | None:
    """The arrays of a UMAP layout of the shown `rows`, or None when the map is PCA."""
    if _why_not_umap(rows.size) is not None:
        return None
    indices, distances = _neighbours(x, graph, rows)
    return {"x": x[rows], "indices": indices, "distances": distances}


def _umap_info(plan: dict[str, Any], seed: int) -> dict[str, Any]:
    n, m = plan["indices"].shape
    return {
        "method": "umap",
        "n_neighbors": m + 1,
        "n_epochs": umap_epochs(n),
        "init": _INIT,
        "random_state": seed,
    }


def _pca(x: NDArray[Any], rows: NDArray[np.int64]) -> tuple[NDArray[np.float64], dict[str, Any]]:
    coords, ratio = pca_2d(x[rows] if rows.size < x.shape[0] else x)
    why = _why_not_umap(rows.size) or "the UMAP layout failed (see the note below)."
    return coords, {"method": "pca", "explained_variance_ratio": ratio, "why_not_umap": why}


def map_figure(
    coords: NDArray[np.float64],
    labels: NDArray[Any] | None,
    label_name: Callable[[Any], str],
    marks: Sequence[tuple[str, NDArray[np.int64]]],
    axis_name: str,
) -> Figure:
    """Scatter of the samples coloured by class, flagged samples marked, with a legend."""
    from matplotlib.figure import Figure

    n = coords.shape[0]
    fig = Figure(figsize=(8.5, 6.5))
    ax = fig.add_subplot()
    size = float(np.clip(12_000 / max(n, 1), 0.5, 10.0))
    if labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=size, color="#7a8fb3", linewidths=0)
    else:
        classes = np.unique(labels)
        if classes.size <= 20:
            import matplotlib

            cmap = matplotlib.colormaps["tab10" if classes.size <= 10 else "tab20"]
            for c, cls in enumerate(classes):
                rows = labels == cls
                ax.scatter(
                    coords[rows, 0],
                    coords[rows, 1],
                    s=size,
                    color=cmap(c),
                    linewidths=0,
                    alpha=0.8,
                    label=label_name(cls),
                )
        else:  # too many classes to name: a continuous colour scale, no class legend
            codes = np.unique(labels, return_inverse=True)[1]
            ax.scatter(coords[:, 0], coords[:, 1], s=size, c=codes, cmap="turbo", linewidths=0)
    for key, rows in marks:
        if rows.size:
            ax.scatter(
                coords[rows, 0],
                coords[rows, 1],
                label=f"{_MARK_NAMES[key]} ({rows.size})",
                **_MARKS[key],
            )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{axis_name} 1")
    ax.set_ylabel(f"{axis_name} 2")
    if ax.get_legend_handles_labels()[0]:
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        for handle in legend.legend_handles:
            if handle is not None and hasattr(handle, "set_sizes"):
                handle.set_sizes([30.0])
    fig.tight_layout()
    return fig


def _marks(shared: Shared) -> list[tuple[str, NDArray[np.int64]]]:
    """(kind, sample indices) of what the graph sections flagged, for the map's markers."""
    marks: list[tuple[str, NDArray[np.int64]]] = []
    if shared.outliers is not None:
        marks.append(("outliers", np.asarray(shared.outliers.flagged, dtype=np.int64)))
    if shared.label_errors is not None:
        marks.append(("label_errors", np.asarray(shared.label_errors.flagged, dtype=np.int64)))
    if shared.duplicates is not None:
        groups = [*shared.duplicates.exact, *shared.duplicates.near]
        members = np.unique(np.concatenate(groups)) if groups else np.zeros(0, dtype=np.int64)
        marks.append(("duplicates", members.astype(np.int64)))
    return marks


class MapSection:
    """The map section: ``start`` lays the map out in a worker process (before the other
    sections run); calling it (after them) draws the map with what they flagged.

    Without ``start`` (or when the worker fails) the layout is computed in this process.
    Either way the coordinates are the same: one function, one seed, the same arrays.
    """

    #: Sections to wait for before starting: none, the layout needs only the embeddings.
    after: frozenset[str] = frozenset()

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _rows(self, inputs: ReportInputs) -> NDArray[np.int64]:
        return map_rows(inputs.labels, inputs.embeddings.shape[0], self.seed)

    def start(self, inputs: ReportInputs, shared: Shared) -> None:
        """Start the layout in a worker process (nothing to start when the map is PCA)."""
        from ._worker import BackgroundTask

        x = inputs.embeddings
        rows = self._rows(inputs)
        plan = _plan(x, neighbour_graph(inputs, shared), rows, self.seed)
        if plan is not None:
            shared.background["map"] = BackgroundTask("umap", plan, {"seed": self.seed})

    def __call__(
        self, inputs: ReportInputs, sec: Section, out: Path, shared: Shared
    ) -> dict[str, Any]:
        x = inputs.embeddings
        rows = self._rows(inputs)
        task = shared.background.pop("map", None)
        coords: NDArray[np.float64] | None = None
        failed = None
        plan: dict[str, Any] | None
        if task is not None:
            plan = task.arrays
            try:
                coords = task.result().get("coords")
            except RuntimeError as exc:
                failed = f"{exc} The layout was computed in the report's own process instead."
        else:
            plan = _plan(x, neighbour_graph(inputs, shared), rows, self.seed)
        if plan is not None and coords is None:
            coords = umap_layout(plan["x"], plan["indices"], plan["distances"], self.seed)
        if plan is not None and coords is not None:
            info = _umap_info(plan, self.seed)
        else:
            coords, info = _pca(x, rows)
        return _draw(inputs, sec, shared, rows, coords, info, failed)


def _draw(
    inputs: ReportInputs,
    sec: Section,
    shared: Shared,
    rows: NDArray[np.int64],
    coords: NDArray[np.float64],
    info: dict[str, Any],
    failed: str | None,
) -> dict[str, Any]:
    n = inputs.embeddings.shape[0]
    # the flagged samples among the shown ones, as positions in `rows`
    marks, totals = [], {}
    for key, members in _marks(shared):
        pos = np.searchsorted(rows, members).clip(max=rows.size - 1)
        marks.append((key, pos[rows[pos] == members]))
        totals[key] = members.size
    if info["method"] == "umap":
        how = (
            "UMAP (umap-learn) from a k-NN graph (each sample's "
            f"{info['n_neighbors'] - 1} nearest neighbours): samples near each other in "
            "embedding space land near each other; the sizes of clusters and the distances "
            "between them are not to scale."
        )
        axis_name = "UMAP"
    else:
        ratio = info["explained_variance_ratio"]
        how = (
            "its first two principal components (PCA; "
            f"{100 * ratio[0]:.1f}% and {100 * ratio[1]:.1f}% of the variance): a linear "
            "projection, so clusters may overlap that are apart in embedding space."
        )
        axis_name = "PC"
    labels = None if inputs.labels is None else inputs.labels[rows]
    colour = "its class" if labels is not None else "one colour (no labels)"
    flagged = ", ".join(_MARK_NAMES[key] for key, m in marks if m.size)
    if rows.size < n:
        flagged = ", ".join(
            f"{_MARK_NAMES[key]} ({m.size:,} of {totals[key]:,} shown)"
            for key, m in marks
            if m.size
        )
    sec.paragraph(
        f"Every sample is a dot, placed by {how} Colour: {colour}."
        + (f" Marked: {flagged} (details in the sections below)." if flagged else "")
    )
    if rows.size < n:
        sec.paragraph(
            f"Shown: {rows.size:,} of the {n:,} samples, a seeded sample stratified by class "
            "(each class in its share); their neighbours are searched among the shown "
            "samples. Laying out every sample would take longer than all the other sections "
            "together and draw mostly overlapping dots. The sections below list every "
            "flagged sample.",
            css="note",
        )
    if failed is not None:
        sec.paragraph(failed, css="warn")
    if info["method"] == "pca":
        sec.paragraph(f"PCA rather than UMAP: {info['why_not_umap']}", css="note")
    fig = map_figure(coords, labels, inputs.label_name, marks, axis_name)
    shown = f"{rows.size:,} of {n:,} samples, " if rows.size < n else ""
    sec.figure(fig, alt=f"2-D map of the embeddings ({shown}{info['method']})")
    return {
        **info,
        "n_samples": n,
        "n_shown": int(rows.size),
        "max_points": MAP_MAX_POINTS,
        "indices": rows,
        "coordinates": np.round(coords, 4),
        "marked": {key: rows[m] for key, m in marks},  # those shown
        "n_flagged": totals,
    }


#: The default map section (seed 0).
map_section = MapSection()
