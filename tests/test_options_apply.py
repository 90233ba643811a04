"""Options that set up something the call does not do are errors, never silently ignored:
a k-NN engine (`index`) given with a NeighborGraph, whose lists are used as they are, and
`k` / `index` of drift's k-NN test given to its MMD or KS test."""

from __future__ import annotations

import numpy as np
import pytest

import datagauge


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = np.repeat(np.arange(3), 40)
    return x, y, datagauge.neighbor_graph(x, 10)


CALLS = {
    "duplicates": lambda g, y, **kw: datagauge.duplicates(g, **kw),
    "outliers": lambda g, y, **kw: datagauge.outliers(g, k=5, **kw),
    "label_errors": lambda g, y, **kw: datagauge.label_errors(g, y, k=10, method="knn_vote", **kw),
    "bayes_error": lambda g, y, **kw: datagauge.bayes_error(g, y, method="knn", **kw),
    "drift": lambda g, y, **kw: (
        datagauge.drift(g, np.arange(120) >= 60, **kw)
        if isinstance(g, datagauge.NeighborGraph)
        else datagauge.drift(g[:60], g[60:], **kw)  # the same pooled points, searched
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_index_with_a_graph_is_refused(data, name):
    x, y, graph = data
    call = CALLS[name]
    with pytest.raises(ValueError, match="nothing is searched"):
        call(graph, y, index="exact")
    # the default is accepted with the graph, and equals the embeddings searched exactly
    from_graph, searched = call(graph, y), call(x, y)
    assert from_graph.to_dict() == searched.to_dict()
    assert call(x, y, index="exact").to_dict() == searched.to_dict()


@pytest.mark.parametrize("method", ["mmd", "ks"])
def test_drift_k_and_index_apply_to_the_knn_test_only(data, method):
    x, _, _ = data
    a, b = x[:60], x[60:] + 0.5
    with pytest.raises(ValueError, match="k applies only to method='knn'"):
        datagauge.drift(a, b, method=method, k=5)
    with pytest.raises(ValueError, match="index applies only to method='knn'"):
        datagauge.drift(a, b, method=method, index="brute")
    assert datagauge.drift(a, b, method="knn", k=5, index="brute").k == 5
    assert datagauge.drift(a, b, method="knn").k == datagauge.drift.__globals__["DEFAULT_K"]
