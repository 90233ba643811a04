"""Coverage: which points of a dataset are under-sampled (too far from their neighbours).

Follows DataEval's ``coverage_naive`` / ``coverage_adaptive`` (Schwartz et al., "Towards
characterizing coverage of datasets", SIGMOD 2021) and gives the same answers on the same
input, with an exact compiled k-NN, input checks and a per-class table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from . import _core
from ._results import ClassCoverage, CoverageResult
from ._threads import resolve_n_jobs
from ._validation import (
    check_bool,
    check_choice,
    check_embeddings,
    check_int,
    check_k,
    check_labels,
    check_unit_fraction,
)
from .graph import NeighborGraph, as_graph
from .neighbors import HNSW, IVF, Exact, exact_top_radii, resolve_index, self_knn_distances

__all__ = ["coverage", "critical_radii", "naive_radius"]


def naive_radius(n_samples: int, n_features: int, k: int) -> float:
    """Data-agnostic coverage radius for n uniform points in the unit cube [0, 1]^d.

    ``r = (1 / sqrt(pi)) * ((2 * k * Gamma(d / 2 + 1)) / n) ** (1 / d)``: the radius of a
    d-ball expected to hold k of n uniform points. Computed in log space, so large d does not
    overflow.
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    n_features = check_int(n_features, "n_features", minimum=1)
    k = check_int(k, "k", minimum=1)
    log_r = (math.log(2 * k) + math.lgamma(n_features / 2 + 1) - math.log(n_samples)) / n_features
    return math.exp(log_r) / math.sqrt(math.pi)


def critical_radii(
    x: NDArray[np.float32], k: int, index: Any, n_threads: int, device: str = "auto"
) -> NDArray[np.float32]:
    """Distance of every row of validated `x` to its k-th nearest other row, float32 (n,)."""
    dist, _ = self_knn_distances(x, k, resolve_index(index), n_threads, device)
    return np.ascontiguousarray(dist[:, k - 1])


def _selection(n: int, percent: float) -> int:
    return min(max(int(n * percent), 1), n)


def _adaptive(radii: NDArray[np.float32], percent: float) -> tuple[NDArray[np.int64], float]:
    n = radii.shape[0]
    selection = _selection(n, percent)
    uncovered, radius = _core.coverage_adaptive(radii, selection)
    return uncovered, float(radius)


def _unit_cube(x: NDArray[np.float32], normalize: bool) -> NDArray[np.float32]:
    scale = unit_cube_scale(x.min(axis=0), x.max(axis=0), normalize)
    if scale is None:
        return x
    lo, span = scale
    return np.ascontiguousarray((x - lo) / span, dtype=np.float32)


def unit_cube_scale(
    lo: NDArray[np.float32], hi: NDArray[np.float32], normalize: bool
) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """From per-feature minima and maxima (float32, shape (n_features,)): ``(lo, span)`` such
    that ``(x - lo) / span`` (float32) is min-max scaled, or None when `x` is used as it is.

    Raises the naive radius's error when `x` is not in the unit cube and not normalised.
    """
    if normalize:
        return lo, np.where(hi > lo, hi - lo, 1).astype(np.float32)
    if lo.min() < 0 or hi.max() > 1:
        raise ValueError(
            "radius_type='naive' assumes embeddings in the unit cube [0, 1]^d, but they range "
            f"over [{float(lo.min()):.4g}, {float(hi.max()):.4g}]; pass normalize=True to min-max "
            "scale each feature, or use radius_type='adaptive', which works on any data."
        )
    return None


def coverage(
    embeddings: Any,
    k: int = 20,
    *,
    radius_type: Literal["adaptive", "naive"] = "adaptive",
    percent: float = 0.01,
    labels: Any = None,
    normalize: bool = False,
    index: Any = "exact",
    n_jobs: int | None = None,
    device: Literal["auto", "cpu", "gpu"] = "auto",
    graph: NeighborGraph | None = None,
    order: Literal["radius", "index"] = "radius",
) -> CoverageResult:
    """Find the under-sampled (uncovered) points of a dataset.

    A point's critical radius is the Euclidean distance to its k-th nearest neighbour (itself
    excluded). Points whose radius exceeds the coverage radius are uncovered: fewer than k
    other points lie within the radius around them.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features), or NeighborGraph
        Finite real numbers, e.g. a model's embeddings of images; converted once to float32.
        Or a :class:`datagauge.NeighborGraph` of at least k neighbours (from
        :func:`datagauge.neighbor_graph`): the radii are read from it, without a search
        (per-class coverage then needs the embeddings: pass them with ``graph=``).
    k : int, default 20
        Neighbours a point needs within the radius to be covered; ``1 <= k < n_samples``.
        The paper behind this method suggests 20 to 50.
    radius_type : {"adaptive", "naive"}, default "adaptive"
        ``"adaptive"``: the ``max(int(n * percent), 1)`` points with the largest radii are
        uncovered; the coverage radius is the mean of that count's radius and the next.
        Works on any data. ``"naive"``: the radius a ball needs to hold k of n uniform points
        in the unit cube; needs data in [0, 1] (or ``normalize=True``).
    percent : float, default 0.01
        Fraction of points called uncovered by the adaptive method, in (0, 1).
    labels : array-like of shape (n_samples,), optional
        Class of every point; adds a per-class table (``result.per_class``).
    normalize : bool, default False
        Min-max scale every feature to [0, 1] first (for the naive radius).
    index : {"exact", "kdtree", "brute", "flat", "hnsw", "ivf"}, neighbors spec or faiss.Index
        k-NN engine; see :mod:`datagauge.neighbors`. Exact by default. With an approximate
        index (or a graph from one) the radii that decide the uncovered set are then searched
        exactly (an approximate k-th distance is never smaller than the true one, so the
        largest are searched until no other can enter): the uncovered set and the coverage
        radius are the exact ones; the other radii stay approximate.
    n_jobs : int or None
        Threads; ``None`` or -1 for all CPUs.
    device : {"auto", "cpu", "gpu"}
        Where FAISS indexes run (the kd-tree always runs on the CPU).
    graph : NeighborGraph, optional
        A graph of these embeddings (checked against its fingerprint), used for the radii of
        the whole dataset instead of a new search; per-class radii still search each class.
    order : {"radius", "index"}, default "radius"
        Order of ``uncovered_indices``: most isolated first (largest radius; ties, higher
        index first), or ascending index. DataEval's ``coverage_naive`` returns ascending
        index order and its ``coverage_adaptive`` radius order: ``order="index"`` with
        ``radius_type="naive"`` gives DataEval's naive answer exactly, element for element.

    Returns
    -------
    CoverageResult
        ``uncovered_indices`` (int64, most isolated first unless ``order="index"``),
        ``critical_value_radii``
        (float32, shape (n_samples,)), ``coverage_radius``, ``radius_type``, ``k``,
        ``per_class``.

    Raises
    ------
    TypeError, ValueError
        On invalid input, with a message that says how to fix it.

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> x = np.random.default_rng(0).random((500, 8))
    >>> res = datagauge.coverage(x, k=10)
    >>> res.uncovered_indices.shape
    (5,)
    """
    radius_type = check_choice(radius_type, "radius_type", ("adaptive", "naive"))  # type: ignore[assignment]
    percent = check_unit_fraction(percent, "percent")
    device = check_choice(device, "device", ("auto", "cpu", "gpu"))  # type: ignore[assignment]
    order = check_choice(order, "order", ("radius", "index"))  # type: ignore[assignment]
    normalize = check_bool(normalize, "normalize")
    if isinstance(embeddings, NeighborGraph):
        if graph is not None:
            raise ValueError(
                "pass the graph either as the first argument or as graph=, not both; with "
                "graph=, the first argument is the embeddings."
            )
        return _coverage_of_graph(embeddings, k, radius_type, percent, labels, normalize, order)
    x = check_embeddings(embeddings)
    n, d = x.shape
    k = check_k(k, n)
    y = None if labels is None else check_labels(labels, n)
    spec = resolve_index(index)
    n_threads = resolve_n_jobs(n_jobs)
    if graph is not None:
        if not isinstance(graph, NeighborGraph):
            raise TypeError(
                f"graph must be a datagauge.NeighborGraph, got {type(graph).__name__}; build "
                "one with datagauge.neighbor_graph(embeddings, k)."
            )
        if normalize:
            raise ValueError(_NORMALIZED_GRAPH)
        graph.check(x)
    if radius_type == "naive" or normalize:
        x = _unit_cube(x, normalize)

    if graph is not None:
        radii = np.ascontiguousarray(as_graph(graph, k).distances[:, k - 1])
        approximate = graph.recall is not None
    else:
        radii = critical_radii(x, k, spec, n_threads, device)
        approximate = isinstance(spec, (HNSW, IVF)) or not isinstance(spec, Exact)
    if approximate:
        # An approximate index's k-th distances are upper bounds (its lists are re-ranked
        # exactly): make exact every one that decides the uncovered set.
        if radius_type == "adaptive":
            radii, _ = exact_top_radii(x, radii, k, _selection(n, percent) + 1, n_threads)
        else:
            above = naive_radius(n, d, k)
            radii, _ = exact_top_radii(x, radii, k, 1, n_threads, above=above)
    # A user's FAISS index holds the whole dataset; classes get their own exact search.
    class_spec = spec if isinstance(spec, (Exact, HNSW, IVF)) else Exact()

    def class_radii(members: NDArray[np.int64]) -> NDArray[np.float32]:
        xc = np.ascontiguousarray(x[members])
        return critical_radii(xc, k, class_spec, n_threads, device)

    return coverage_from_radii(radii, d, k, radius_type, percent, y, class_radii, order)


_NORMALIZED_GRAPH = (
    "normalize=True rescales the embeddings, so a graph of the raw embeddings does not hold "
    "their radii; build the graph on min-max scaled embeddings, or pass the embeddings alone."
)


def _coverage_of_graph(
    graph: NeighborGraph,
    k: int,
    radius_type: str,
    percent: float,
    labels: Any,
    normalize: bool,
    order: str,
) -> CoverageResult:
    """Coverage read from a graph's k-th distances (no search)."""
    if normalize:
        raise ValueError(_NORMALIZED_GRAPH)
    if labels is not None:
        raise ValueError(
            "per-class coverage searches each class's own neighbours, which a graph of the "
            "whole dataset does not hold; call coverage(embeddings, labels=labels, graph=graph)."
        )
    graph = as_graph(graph, k)
    radii = np.ascontiguousarray(graph.distances[:, k - 1])
    if radius_type == "naive":
        unit_cube_scale(graph.feature_range[0], graph.feature_range[1], False)

    def no_classes(members: NDArray[np.int64]) -> NDArray[np.float32]:  # pragma: no cover
        raise RuntimeError("no per-class radii without labels")

    return coverage_from_radii(
        radii, graph.n_features, k, radius_type, percent, None, no_classes, order
    )


def coverage_from_radii(
    radii: NDArray[np.float32],
    n_features: int,
    k: int,
    radius_type: str,
    percent: float,
    labels: NDArray[Any] | None,
    class_radii: Callable[[NDArray[np.int64]], NDArray[np.float32]],
    order: str = "radius",
) -> CoverageResult:
    """The coverage result from validated critical radii (float32, shape (n_samples,)).

    `class_radii(members)` gives the critical radii of the rows `members` (int64, ascending)
    searched among themselves; it is called once per class with more than k members.
    `order` is "radius" (most isolated first) or "index" (ascending).
    """
    n = radii.shape[0]
    if radius_type == "naive":
        radius = naive_radius(n, n_features, k)
        uncovered = _core.coverage_threshold(radii, radius)
    else:
        uncovered, radius = _adaptive(radii, percent)

    per_class = None
    if labels is not None:
        per_class = _per_class(labels, uncovered, k, percent, class_radii)
    if order == "index":
        uncovered = np.sort(uncovered)
    return CoverageResult(
        uncovered_indices=uncovered,
        critical_value_radii=radii,
        coverage_radius=float(radius),
        radius_type=radius_type,
        k=k,
        per_class=per_class,
    )


def _per_class(
    y: NDArray[Any],
    uncovered: NDArray[np.int64],
    k: int,
    percent: float,
    class_radii: Callable[[NDArray[np.int64]], NDArray[np.float32]],
) -> ClassCoverage:
    classes, inverse = np.unique(y, return_inverse=True)
    count = np.bincount(inverse, minlength=classes.size).astype(np.int64)
    n_uncovered = np.bincount(inverse[uncovered], minlength=classes.size).astype(np.int64)
    own_radius = np.full(classes.size, np.nan)
    for c in range(classes.size):
        members = np.flatnonzero(inverse == c)
        if members.size > k:
            _, own_radius[c] = _adaptive(class_radii(members), percent)
    return ClassCoverage(
        labels=classes,
        count=count,
        n_uncovered=n_uncovered,
        fraction_uncovered=n_uncovered / count,
        adaptive_radius=own_radius,
    )
