"""The report's 2-D map of the embeddings: UMAP on the report's k-NN graph, else PCA.

UMAP (umap-learn, when installed) is given the graph as precomputed neighbours, so it does
not search again; it is seeded (``random_state=0``), which makes it deterministic and
single-threaded. Without umap-learn, or on fewer than ``UMAP_MIN_SAMPLES`` samples, the map is
the first two principal components (an eigendecomposition of the covariance, signs fixed), so
the same data always give the same picture.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._common import Shared, neighbour_graph
from ._html import Section
from ._inputs import ReportInputs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..graph import NeighborGraph

__all__ = ["UMAP_MIN_SAMPLES", "UMAP_NEIGHBORS", "layout_2d", "map_figure", "map_section", "pca_2d"]

#: Neighbours per point UMAP uses (umap-learn's default), the point itself included.
UMAP_NEIGHBORS = 15
#: Below this many samples the map is PCA: UMAP's layout needs a neighbourhood to work with.
UMAP_MIN_SAMPLES = 100
#: Optimisation epochs: umap-learn's defaults are 500 below 10,000 samples and 200 above;
#: fewer give the same picture for a report's glance at a fraction of the time.
_EPOCHS_SMALL, _EPOCHS_LARGE, _LARGE = 200, 100, 10_000

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


def _umap(x: NDArray[Any], graph: NeighborGraph, seed: int) -> NDArray[np.float64] | None:
    """UMAP of `x` from the graph's neighbours, or None when umap-learn is not installed."""
    with warnings.catch_warnings():
        # umap-learn warns at import that TensorFlow (ParametricUMAP) is missing.
        warnings.simplefilter("ignore")
        try:
            umap = importlib.import_module("umap")
        except ImportError:
            return None
    n = x.shape[0]
    nn = min(UMAP_NEIGHBORS, graph.k + 1)
    # umap-learn wants every point as its own first neighbour, at distance 0.
    indices = np.empty((n, nn), dtype=np.int64)
    indices[:, 0] = np.arange(n)
    indices[:, 1:] = graph.indices[:, : nn - 1]
    distances = np.zeros((n, nn), dtype=np.float32)
    distances[:, 1:] = graph.distances[:, : nn - 1]
    reducer = umap.UMAP(
        n_neighbors=nn,
        n_components=2,
        precomputed_knn=(indices, distances),
        random_state=seed,
        n_epochs=_EPOCHS_SMALL if n <= _LARGE else _EPOCHS_LARGE,
    )
    with warnings.catch_warnings():
        # "no search index: transform unavailable", "n_jobs overridden by random_state" and
        # the spectral initialisation's notes on disconnected graphs: none is actionable here.
        warnings.simplefilter("ignore")
        coords = reducer.fit_transform(x)
    out: NDArray[np.float64] = np.asarray(coords, dtype=np.float64)
    return out


def layout_2d(
    x: NDArray[Any], graph: NeighborGraph, *, seed: int = 0
) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """2-D coordinates of every sample and how they were made.

    Returns
    -------
    coords : ndarray of float64, shape (n_samples, 2)
    info : dict
        ``method`` (``"umap"`` or ``"pca"``); for UMAP ``n_neighbors``, ``n_epochs`` and
        ``random_state``; for PCA ``explained_variance_ratio`` and ``why_not_umap``.
    """
    n = x.shape[0]
    why = None
    if n < UMAP_MIN_SAMPLES:
        why = f"UMAP needs at least {UMAP_MIN_SAMPLES} samples; there are {n}."
    else:
        coords = _umap(x, graph, seed)
        if coords is not None:
            return coords, {
                "method": "umap",
                "n_neighbors": min(UMAP_NEIGHBORS, graph.k + 1),
                "n_epochs": _EPOCHS_SMALL if n <= _LARGE else _EPOCHS_LARGE,
                "random_state": seed,
            }
        why = "umap-learn is not installed (pip install umap-learn, or datagauge[report])."
    coords, ratio = pca_2d(x)
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


def map_section(inputs: ReportInputs, sec: Section, out: Path, shared: Shared) -> dict[str, Any]:
    graph = neighbour_graph(inputs, shared)
    coords, info = layout_2d(inputs.embeddings, graph)
    marks: list[tuple[str, NDArray[np.int64]]] = []
    if shared.outliers is not None:
        marks.append(("outliers", np.asarray(shared.outliers.flagged, dtype=np.int64)))
    if shared.label_errors is not None:
        marks.append(("label_errors", np.asarray(shared.label_errors.flagged, dtype=np.int64)))
    if shared.duplicates is not None:
        groups = [*shared.duplicates.exact, *shared.duplicates.near]
        members = np.unique(np.concatenate(groups)) if groups else np.zeros(0, dtype=np.int64)
        marks.append(("duplicates", members.astype(np.int64)))
    if info["method"] == "umap":
        how = (
            "UMAP (umap-learn) from the report's k-NN graph (each sample's "
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
    colour = "its class" if inputs.labels is not None else "one colour (no labels)"
    flagged = ", ".join(_MARK_NAMES[key] for key, rows in marks if rows.size)
    sec.paragraph(
        f"Every sample is a dot, placed by {how} Colour: {colour}."
        + (f" Marked: {flagged} (details in the sections below)." if flagged else "")
    )
    if info["method"] == "pca":
        sec.paragraph(f"PCA rather than UMAP: {info['why_not_umap']}", css="note")
    fig = map_figure(coords, inputs.labels, inputs.label_name, marks, axis_name)
    sec.figure(fig, alt=f"2-D map of the embeddings ({info['method']})")
    return {
        **info,
        "coordinates": np.round(coords, 4),
        "marked": {key: rows for key, rows in marks},
    }
