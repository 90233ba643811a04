"""Label errors: samples whose neighbours in embedding space say their label is wrong.

Two methods:

- ``"distance_ratio"``: DataEval 1.1.4's ``label_errors`` (``dataeval.core._label_errors``),
  the same scores, flagged samples, ranking and suggested labels on the same data;
- ``"knn_vote"``: the share of a sample's k nearest neighbours that carry another label,
  read off a :class:`~datagauge.graph.NeighborGraph`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._results import LabelErrorResult
from ._threads import resolve_n_jobs
from ._validation import (
    check_choice,
    check_class_counts,
    check_class_labels,
    check_embeddings,
    check_int,
    check_not_graph,
)
from .graph import NeighborGraph, as_graph
from .neighbors import (
    HNSW,
    IVF,
    Exact,
    query_knn,
    resolve_index,
    scale_down,
    scale_exponent,
    self_knn_distances,
)
from .outliers import worst_first

__all__ = ["label_errors", "top_two_votes"]

#: DataEval's suggestion rule: no suggestion below this weighted vote share ...
MIN_CONFIDENCE = 0.4
#: ... and two suggestions when the best two shares differ by less than this.
AMBIGUITY = 0.2
#: knn_vote flags a sample when more than this share of its neighbours disagree.
VOTE_THRESHOLD = 0.5


def top_two_votes(
    neighbor_codes: NDArray[np.int64], weights: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """The two classes with the most weighted votes in every row.

    Parameters
    ----------
    neighbor_codes : ndarray of int64, shape (n_samples, k)
        Class codes (>= 0) of every sample's neighbours, nearest first.
    weights : ndarray of float64, shape (k,)
        Vote of the neighbour in each column.

    Returns
    -------
    first, first_votes, second, second_votes
        int64 (n_samples,) codes and float64 (n_samples,) summed weights of the best and the
        second-best class; equal votes rank the smaller code first. ``second`` is -1 (with 0
        votes) where all neighbours share one class.
    """
    m, k = neighbor_codes.shape
    order = np.argsort(neighbor_codes, axis=1, kind="stable")
    codes = np.take_along_axis(neighbor_codes, order, axis=1).ravel()
    votes_each = weights[order].ravel()
    starts = np.ones(m * k, dtype=bool)
    starts[1:] = codes[1:] != codes[:-1]
    starts[::k] = True  # every row starts a run
    first_of_run = np.flatnonzero(starts)
    votes = np.add.reduceat(votes_each, first_of_run)
    run_codes = codes[first_of_run]
    run_rows = first_of_run // k
    ranked = np.lexsort((run_codes, -votes, run_rows))
    run_rows, run_codes, votes = run_rows[ranked], run_codes[ranked], votes[ranked]
    head = np.flatnonzero(np.concatenate([[True], run_rows[1:] != run_rows[:-1]]))
    nxt = head + 1
    has_second = nxt < run_rows.size
    has_second[has_second] = run_rows[nxt[has_second]] == run_rows[head[has_second]]
    second = np.full(m, -1, dtype=np.int64)
    second_votes = np.zeros(m)
    second[has_second] = run_codes[nxt[has_second]]
    second_votes[has_second] = votes[nxt[has_second]]
    return run_codes[head].astype(np.int64), votes[head], second, second_votes


def _ratio_distances(
    x: NDArray[np.float32],
    codes: NDArray[np.int64],
    n_classes: int,
    k: int,
    index: Any,
    n_threads: int,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64]]:
    """Per sample: distances (float32 (n, k)) to its k nearest of its own class and to its k
    nearest of the other classes, and the classes (int64 (n, k)) of the latter."""
    n = x.shape[0]
    x = scale_down(x, scale_exponent(x.min(axis=0), x.max(axis=0)))  # the ratio is unchanged
    spec = resolve_index(index)
    spec = spec if isinstance(spec, (Exact, HNSW, IVF)) else Exact()  # a user's index: all data
    intra = np.empty((n, k), dtype=np.float32)
    extra = np.empty((n, k), dtype=np.float32)
    extra_codes = np.empty((n, k), dtype=np.int64)
    for c in range(n_classes):
        own = np.flatnonzero(codes == c)
        rest = np.flatnonzero(codes != c)
        x_own = np.ascontiguousarray(x[own])
        intra[own], _ = self_knn_distances(x_own, k, spec, n_threads, "auto")
        sq, found = query_knn(np.ascontiguousarray(x[rest]), x_own, k, n_threads)
        extra[own] = np.sqrt(sq)
        extra_codes[own] = codes[rest[found]]
    return intra, extra, extra_codes


def _ratio(intra: NDArray[np.float32], extra: NDArray[np.float32]) -> NDArray[np.float64]:
    """DataEval's score in its float32 arithmetic: mean intra / mean extra distance; x / 0 is
    +inf and 0 / 0 (copies of the point in its own and in another class) is 1."""
    num = intra.mean(axis=1)
    den = extra.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = num / den
    ratio = np.where(den > 0, ratio, np.where(num > 0, np.float32(np.inf), np.float32(1.0)))
    out: NDArray[np.float64] = ratio.astype(np.float64)
    return out


def label_errors(
    embeddings_or_graph: Any,
    labels: Any,
    *,
    k: int = 50,
    method: Literal["distance_ratio", "knn_vote"] = "distance_ratio",
    index: Any = None,
    n_jobs: int | None = None,
) -> LabelErrorResult:
    """Find samples that are probably mislabelled, from their neighbours' labels and distances.

    Parameters
    ----------
    embeddings_or_graph : array-like of shape (n_samples, n_features), or NeighborGraph
        Finite real numbers (converted once to float32). A graph from
        :func:`datagauge.neighbor_graph` (at least `k` neighbours per point) serves
        ``method="knn_vote"``; ``"distance_ratio"`` needs the embeddings (see Notes).
    labels : array-like of shape (n_samples,)
        One label per sample: integers, strings, booleans, floats, or an object array /
        pandas Categorical of strings; no missing values.
    k : int, default 50
        Neighbours per sample. For ``"distance_ratio"`` at most ``smallest class size - 1``
        are used, as DataEval does.
    method : {"distance_ratio", "knn_vote"}, default "distance_ratio"
        See Notes.
    index : {"exact", "kdtree", "brute", "flat", "hnsw", "ivf"}, neighbors spec or faiss.Index
        k-NN engine (see :func:`datagauge.neighbor_graph`); for ``"distance_ratio"`` it runs
        the within-class searches, the searches among the other classes are always exact.
        Default None (``"exact"``); an error with a NeighborGraph, whose lists are used as
        they are.
    n_jobs : int or None
        Threads; ``None`` or -1 for all CPUs.

    Returns
    -------
    LabelErrorResult
        ``scores`` (float64 (n,), larger = more suspect), ``indices`` (int64, every sample,
        most suspect first; equal scores by index), ``flagged`` (int64, most suspect first),
        ``labels``, ``suggested`` and ``alternative`` (the dtype of ``np.asarray(labels)``),
        ``method``, ``k``.

    Raises
    ------
    TypeError, ValueError
        On invalid input (labels of the wrong length or with missing values, an unknown
        method, a class with one sample or a single class for ``"distance_ratio"``, a graph
        for ``"distance_ratio"`` or with fewer than `k` neighbours), with a message that says
        how to fix it.

    Notes
    -----
    ``"distance_ratio"`` (DataEval 1.1.4, ``dataeval/core/_label_errors.py``): with
    ``k' = min(k, smallest class size - 1)``, the score of a sample is the mean Euclidean
    distance to its k' nearest samples of its own class (itself excluded) divided by the mean
    distance to its k' nearest samples of all other classes, computed in float32 as DataEval
    does (then returned as float64); ``x / 0`` is +inf and ``0 / 0`` (exact copies in its own
    and in another class) is 1. Samples with score >= 1 are flagged. The suggestion is a
    weighted vote of the classes of those k' other-class neighbours, the i-th nearest
    (i = 0 .. k'-1) weighing ``ceil((k' - i) / 3)``, normalised to shares: no suggestion when
    the best share is below 0.4; two (``suggested``, ``alternative``) when the best two differ
    by less than 0.2; otherwise one. Where DataEval's order of two equal shares is arbitrary
    (NumPy's unstable argsort), here the smaller label comes first.

    The other-class neighbours are usually not among a sample's k nearest overall (a
    correctly labelled sample's nearest neighbours share its class), so no k-NN graph holds
    them: the cheapest exact computation is one search per class, the class's samples among
    themselves (k' nearest, with `index`) and against all other samples (an exact kd-tree
    query), about one all-pairs search in total, as DataEval's own per-class searches.

    ``"knn_vote"``: the score is the share of the k nearest neighbours whose label differs
    from the sample's; ``suggested`` is the most common label among the k neighbours (ties:
    the smallest label), which is the sample's own label when most neighbours agree with it;
    flagged when the score is above 0.5; ``alternative`` is the sample's own label.

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (100, 4)), rng.normal(6, 1, (100, 4))])
    >>> y = np.repeat(["cat", "dog"], 100)
    >>> y[3] = "dog"
    >>> res = datagauge.label_errors(x, y, k=20)
    >>> int(res.indices[0]), str(res.suggested[3])
    (3, 'cat')
    """
    method = check_choice(method, "method", ("distance_ratio", "knn_vote"))  # type: ignore[assignment]
    is_graph = isinstance(embeddings_or_graph, NeighborGraph)
    if method == "distance_ratio":
        check_not_graph(
            is_graph,
            "method='distance_ratio'",
            "its distances to each sample's nearest samples of the other classes are rarely in a "
            "k-NN graph (a sample's nearest neighbours mostly share its class); pass the "
            "embeddings, or use method='knn_vote' with the graph.",
        )
    x = None if is_graph else check_embeddings(embeddings_or_graph)
    n = embeddings_or_graph.n_samples if x is None else x.shape[0]
    given = np.asarray(labels)
    classes, codes = check_class_labels(labels, n)
    given = np.ascontiguousarray(given)

    if method == "distance_ratio" and x is not None:
        counts = np.bincount(codes, minlength=classes.size)
        check_class_counts(classes, counts, method=method)
        k_used = min(check_int(k, "k", minimum=1), int(counts.min()) - 1)
        intra, extra, extra_codes = _ratio_distances(
            x,
            codes,
            classes.size,
            k_used,
            "exact" if index is None else index,
            resolve_n_jobs(n_jobs),
        )
        scores = _ratio(intra, extra)
        weights = np.ceil(np.linspace(k_used, 1, k_used) / 3)
        top, top_votes, runner, runner_votes = top_two_votes(extra_codes, weights)
        share = top_votes / weights.sum()
        runner_share = runner_votes / weights.sum()
        one = share >= MIN_CONFIDENCE
        two = one & (share - runner_share < AMBIGUITY)
        flagged_mask = scores >= 1.0
    else:
        graph = as_graph(embeddings_or_graph if x is None else x, k, index=index, n_jobs=n_jobs)
        k_used = graph.k
        neighbor_codes = codes[graph.indices]
        scores = (neighbor_codes != codes[:, None]).mean(axis=1)
        top, _, runner, _ = top_two_votes(neighbor_codes, np.ones(k_used))
        one = top != codes
        two = np.zeros(n, dtype=bool)
        flagged_mask = scores > VOTE_THRESHOLD

    suggested = given.copy()
    suggested[one] = classes[top[one]]
    alternative = given.copy()
    alternative[two] = classes[runner[two]]
    order = worst_first(scores)
    return LabelErrorResult(
        scores=scores,
        indices=order,
        flagged=np.ascontiguousarray(order[flagged_mask[order]]),
        labels=given,
        suggested=suggested,
        alternative=alternative,
        method=method,
        k=k_used,
    )
