"""Bayes error rate: bounds on the error any classifier must make on these embeddings.

Two estimators, DataEval 1.1.4's ``ber_knn`` and ``ber_mst`` (``dataeval/core/_ber.py``; Sekeh,
Oselio and Hero, "Learning to Bound the Multi-class Bayes Error", IEEE TSP 2020, Th. 3 and 4):

- ``"knn"``: the leave-one-out error of the k-nearest-neighbour classifier, read off a
  :class:`~datagauge.graph.NeighborGraph`, and the Cover-Hart / Devroye lower bound from it;
- ``"mst"``: the Friedman-Rafsky count of minimum-spanning-tree edges between classes
  (:mod:`datagauge.mst`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from ._results import BayesErrorResult
from ._validation import (
    check_choice,
    check_class_labels,
    check_embeddings,
    check_int,
    check_n_classes,
    check_not_graph,
    check_option_applies,
)
from .graph import NeighborGraph, as_graph
from .label_errors import top_two_votes
from .mst import minimum_spanning_tree

__all__ = ["bayes_error", "knn_lower_bound"]

#: DataEval's ``EPSILON``: an upper bound at or below it gives a lower bound of 0.
EPSILON = 1e-12


def knn_lower_bound(upper: float, n_classes: int, k: int) -> float:
    """DataEval's ``_knn_lowerbound``: the Bayes error's lower bound from the leave-one-out
    error `upper` of the k-NN classifier, in the same float64 arithmetic.

    Two classes and k > 1: Devroye's bound (k > 5: ``upper / (1 + a_k)``, ``a_k = 0.3399
    sqrt(k) / (k - 3.25) (1 + 0.9749 / sqrt(k - 3))``; 2 < k <= 5: ``upper / (1 +
    1/sqrt(k))``; k = 2: ``upper / 2``). Otherwise Cover and Hart's ``(M - 1)/M (1 - sqrt(1 -
    M/(M - 1) upper))`` for M classes.
    """
    if upper <= EPSILON:
        return 0.0
    if n_classes == 2 and k != 1:
        if k > 5:
            alpha, beta = 0.3399, 0.9749
            a_k = alpha * math.sqrt(k) / (k - 3.25) * (1 + beta / (math.sqrt(k - 3)))
            return upper / (1 + a_k)
        if k > 2:
            return upper / (1 + (1 / math.sqrt(k)))
        return upper / 2
    m = n_classes
    return ((m - 1) / m) * (1 - math.sqrt(max(0, 1 - ((m / (m - 1)) * upper))))


def bayes_error(
    embeddings_or_graph: Any,
    labels: Any,
    *,
    method: Literal["knn", "mst"] = "knn",
    k: int | None = None,
    tree: Literal["exact", "knn"] | None = None,
    index: Any = None,
    n_jobs: int | None = None,
) -> BayesErrorResult:
    """Upper and lower bounds of the Bayes error rate of classifying these embeddings.

    Parameters
    ----------
    embeddings_or_graph : array-like of shape (n_samples, n_features), or NeighborGraph
        Finite real numbers (converted once to float32), or, for ``method="knn"``, a graph
        from :func:`datagauge.neighbor_graph` with at least `k` neighbours per point.
    labels : array-like of shape (n_samples,)
        One label per sample (integers, strings, ...; no missing values), at least two
        distinct labels.
    method : {"knn", "mst"}, default "knn"
        ``"knn"``: DataEval's ``ber_knn``; ``"mst"``: DataEval's ``ber_mst`` (see Notes).
    k : int, optional
        ``"knn"`` only (an error with ``"mst"``): neighbours of the k-NN classifier, ``1 <= k
        < n_samples``; default 1.
    tree : {"exact", "knn"}, optional
        ``"mst"`` only (an error with ``"knn"``): the Euclidean minimum spanning tree (the
        default), or DataEval's spanning tree of the 15-NN graph
        (:func:`datagauge.mst.minimum_spanning_tree`).
    index : {"exact", "kdtree", "brute", "flat", "hnsw", "ivf"}, neighbors spec or faiss.Index
        k-NN engine when embeddings are given (``"mst"``: exact engines only); default None
        (``"exact"``); an error with a NeighborGraph, whose lists are used as they are.
    n_jobs : int or None
        Threads; ``None`` or -1 for all CPUs.

    Returns
    -------
    BayesErrorResult
        ``upper``, ``lower`` (floats in [0, 1]), ``method``, ``k``, ``tree``, ``errors``,
        ``n_samples``, ``n_classes``.

    Raises
    ------
    TypeError, ValueError
        On invalid input (labels of the wrong length or with missing values, a single class,
        NaN embeddings, k out of range, an unknown method, a graph for ``"mst"``, `k` with
        ``"mst"`` or `tree` with ``"knn"``), with a message that says how to fix it.

    Notes
    -----
    ``"knn"`` (DataEval 1.1.4 ``ber_knn``): every sample is classified by the most common
    label among its k nearest other samples (equal counts: the smallest label, as
    ``scipy.stats.mode``); ``upper`` is the share misclassified and ``lower`` is
    :func:`knn_lower_bound` of it. The same values as DataEval on the same neighbours;
    neighbours at exactly equal distances are ordered by index here, arbitrarily by
    scikit-learn in DataEval, so data with tied distances can differ in a vote.

    ``"mst"`` (DataEval 1.1.4 ``ber_mst``): with ``E`` the tree edges joining different
    labels, M classes and n samples, ``delta = (E - (M - 1)) / (2 n)``, ``upper = 2 delta``
    and ``lower = (M - 1)/M (1 - sqrt(max(1 - 2 M/(M - 1) delta, 0)))``. DataEval builds its
    tree from the 15-NN graph (``tree="knn"`` repeats it); the default ``tree="exact"`` uses
    the Euclidean minimum spanning tree, which the estimator's theory assumes. The two trees
    are the same on typical data (every dataset of this package's DataEval comparison), and
    then so are the bounds; where DataEval's heuristic misses a shorter edge (separated
    clusters), ``tree="knn"`` gives DataEval's number and ``"exact"`` the minimum tree's.

    Both bounds are invariant to permuting the samples (up to ties in distance) and to
    scaling or translating all embeddings together.

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(3, 1, (200, 2))])
    >>> y = np.repeat([0, 1], 200)
    >>> res = datagauge.bayes_error(x, y, k=1)
    >>> 0.0 < res.lower <= res.upper < 0.2
    True
    """
    method = check_choice(method, "method", ("knn", "mst"))  # type: ignore[assignment]
    check_option_applies(k, "k", method, ("knn",), "the k-NN classifier's neighbours")
    check_option_applies(tree, "tree", method, ("mst",), "which spanning tree")
    spanning_tree: Literal["exact", "knn"] = check_choice(  # type: ignore[assignment]
        "exact" if tree is None else tree, "tree", ("exact", "knn")
    )
    is_graph = isinstance(embeddings_or_graph, NeighborGraph)
    if method == "mst":
        check_not_graph(
            is_graph,
            "method='mst'",
            "the minimum spanning tree needs the points where the k-NN lists do not prove an "
            "edge; pass the embeddings, or use method='knn' with the graph.",
        )
    x = None if is_graph else check_embeddings(embeddings_or_graph)
    n = embeddings_or_graph.n_samples if x is None else x.shape[0]
    classes, codes = check_class_labels(labels, n)
    check_n_classes(classes, f"bayes_error(method={method!r})")
    m = int(classes.size)

    if method == "knn":
        k = check_int(1 if k is None else k, "k", minimum=1)
        graph = as_graph(embeddings_or_graph if x is None else x, k, index=index, n_jobs=n_jobs)
        neighbor_codes = codes[graph.indices]
        modal, _, _, _ = top_two_votes(neighbor_codes, np.ones(graph.k))
        errors = int(np.count_nonzero(modal != codes))
        upper = float(errors / n)
        lower = float(knn_lower_bound(upper, m, k))
        return BayesErrorResult(
            upper=upper,
            lower=lower,
            method=method,
            k=k,
            tree=None,
            errors=errors,
            n_samples=n,
            n_classes=m,
        )

    spanning = minimum_spanning_tree(
        embeddings_or_graph if x is None else x,
        method=spanning_tree,
        index="exact" if index is None else index,
        n_jobs=n_jobs,
    )
    errors = int(np.count_nonzero(codes[spanning.source] != codes[spanning.target])) - (m - 1)
    deltas = errors / (2 * n)
    upper = float(2 * deltas)
    lower = float(((m - 1) / (m)) * (1 - max(1 - 2 * ((m) / (m - 1)) * deltas, 0) ** 0.5))
    return BayesErrorResult(
        upper=upper,
        lower=lower,
        method=method,
        k=None,
        tree=spanning_tree,
        errors=errors,
        n_samples=n,
        n_classes=m,
    )
