"""What the report's sections share: the section signature, the one k-NN graph, small helpers.

A section is ``run(inputs, section, out_dir, shared) -> dict``: it adds text, tables, images
and plots to `section` and returns every number it showed (the JSON report). `shared` carries
what one section computes and a later one reuses: the k-NN graph (searched once, where
coverage is computed) and the graph analyses the 2-D map marks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ._html import Section
from ._inputs import ReportInputs

if TYPE_CHECKING:
    from .._results import DuplicateResult, LabelErrorResult, OutlierResult
    from ..graph import NeighborGraph
    from ._worker import BackgroundTask

__all__ = [
    "COVERAGE_K",
    "DUPLICATES_K",
    "GRAPH_K",
    "LABEL_ERRORS_K",
    "OUTLIERS_K",
    "SHOW",
    "SectionFn",
    "Shared",
    "StartsEarly",
    "grid",
    "neighbour_graph",
    "ordinal",
    "skipped",
    "split_names",
    "stratified_rows",
    "warnings_on_page",
]

#: Neighbours of the coverage radius, the outlier scores, duplicates and the label vote.
COVERAGE_K = 20
OUTLIERS_K = 20
DUPLICATES_K = 10
LABEL_ERRORS_K = 50
#: The one graph holds enough neighbours for every analysis.
GRAPH_K = max(COVERAGE_K, OUTLIERS_K, DUPLICATES_K, LABEL_ERRORS_K)
#: Rows of the tables and images of the grids.
SHOW = 12


@dataclass(slots=True)
class Shared:
    """Results computed by one section and reused by others (None until computed).

    Attributes
    ----------
    graph : NeighborGraph or None
        The k-NN graph of the embeddings, ``GRAPH_K`` neighbours (fewer on tiny data).
    duplicates, outliers, label_errors : result or None
        The graph analyses, for the map's markers.
    progress : callable or None
        ``progress(done, total)`` moves the report's progress bar within the running section
        (set by the pipeline before each section; long sections call it as they go).
    background : dict
        Work a section started early in a worker process (the map's layout), by anchor;
        the pipeline stops what nobody collected.
    """

    graph: NeighborGraph | None = None
    duplicates: DuplicateResult | None = None
    outliers: OutlierResult | None = None
    label_errors: LabelErrorResult | None = None
    progress: Callable[[int, int], None] | None = None
    background: dict[str, BackgroundTask] = field(default_factory=dict)

    def close(self) -> None:
        """Stop the background work nobody collected (a section raised)."""
        for task in self.background.values():
            task.close()
        self.background.clear()


SectionFn = Callable[[ReportInputs, Section, Path, Shared], dict[str, Any]]


@runtime_checkable
class StartsEarly(Protocol):
    """A deferred section that starts background work once its ``after`` sections ran."""

    after: frozenset[str]

    def start(self, inputs: ReportInputs, shared: Shared) -> None: ...


def neighbour_graph(inputs: ReportInputs, shared: Shared) -> NeighborGraph:
    """The report's one k-NN graph, searched on first use (by coverage) and kept in `shared`."""
    if shared.graph is None:
        from ..graph import neighbor_graph

        n = inputs.embeddings.shape[0]
        shared.graph = neighbor_graph(inputs.embeddings, k=max(1, min(GRAPH_K, n - 1)))
    return shared.graph


def stratified_rows(labels: Any, n: int, limit: int, seed: int) -> NDArray[np.int64]:
    """`limit` of n rows (ascending), seeded; with labels, each class keeps its share (largest
    remainders, at least one row per class while there is room), so a file sorted by class
    still gives every class."""
    rng = np.random.default_rng([seed, 1])
    if labels is None:
        return np.sort(rng.permutation(n)[:limit]).astype(np.int64)
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    counts = np.bincount(codes)
    quota = counts * (limit / n)
    take = np.floor(quota).astype(np.int64)
    if counts.size <= limit:
        take = np.maximum(take, 1)
    short = limit - int(take.sum())
    if short > 0:  # largest remainders first (ties: smaller class code)
        order = np.lexsort((np.arange(counts.size), -(quota - np.floor(quota))))
        room = order[take[order] < counts[order]]
        take[room[:short]] += 1
    elif short < 0:  # the one-per-class floor overshot: trim the largest take, one at a time
        for _ in range(-short):  # (a take of 1 is never the largest: the floor fits in limit)
            take[int(np.argmax(take))] -= 1
    rows = [rng.permutation(np.flatnonzero(codes == c))[: take[c]] for c in range(counts.size)]
    return np.sort(np.concatenate(rows)).astype(np.int64)


def split_names(inputs: ReportInputs) -> NDArray[np.str_] | None:
    """``"train"`` / ``"test"`` per sample from the report's split, or None without one."""
    tr = inputs.is_train
    if tr is None or not 0 < int(tr.sum()) < tr.shape[0]:
        return None
    names: NDArray[np.str_] = np.where(tr, "train", "test")
    return names


def ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def skipped(sec: Section, why: str) -> dict[str, Any]:
    sec.paragraph(f"Skipped: {why}", css="note")
    return {"skipped": why}


def grid(
    inputs: ReportInputs,
    sec: Section,
    indices: Sequence[int] | NDArray[Any],
    captions: Sequence[str],
    title: str,
) -> None:
    """Thumbnails of these samples when images are known, else nothing."""
    if inputs.images is None or len(indices) == 0:
        return
    sec.image_grid([inputs.images[int(i)] for i in indices], list(captions), title=title)


@contextmanager
def warnings_on_page(sec: Section) -> Iterator[None]:
    """Show the warnings raised inside the block on the page (as notes) instead of stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        sec.paragraph(f"Note: {w.message}", css="warn")
