"""The report's "train split vs the rest" block, read from the one k-NN graph.

How separable the classes are (Bayes error bounds from the k-NN vote), and whether the rest
(the held-out split) comes from the training split's distribution: the Henze-Penrose
divergence and the k-NN two-sample drift test, each from the graph coverage searched, so the
block adds no search. The familiarity gap of the same split is in the familiarity section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._common import SHOW, Shared, grid, neighbour_graph, skipped, split_names, warnings_on_page
from ._html import Section
from ._inputs import ReportInputs

__all__ = ["DRIFT_K", "compare_section"]

#: Neighbours of the drift test (the test's default).
DRIFT_K = 10
#: Permutations of the drift test: its smallest p-value is 1 / 1001.
DRIFT_PERMUTATIONS = 1000


def compare_section(
    inputs: ReportInputs, sec: Section, out: Path, shared: Shared
) -> dict[str, Any]:
    from ..bayes_error import bayes_error
    from ..divergence import divergence
    from ..drift import drift

    graph = neighbour_graph(inputs, shared)
    part: dict[str, Any] = {}
    rows: list[list[Any]] = []
    if inputs.labels is not None and np.unique(inputs.labels).size >= 2:
        ber = bayes_error(graph, inputs.labels, method="knn", k=1)
        part["bayes_error"] = ber.to_dict()
        sec.paragraph(
            "How separable are the classes in this embedding? The nearest-neighbour "
            f"classifier misclassifies {100 * ber.upper:.1f}% of the samples, so the best any "
            f"classifier of these embeddings can do (the Bayes error) lies between "
            f"{100 * ber.lower:.1f}% and {100 * ber.upper:.1f}% (Cover-Hart bounds, as "
            "DataEval's ber_knn). A high floor means the embedding mixes the classes: a "
            "better model or cleaner labels, not more data, would help."
        )
        rows.append(["Bayes error, lower bound", ber.lower])
        rows.append(["Bayes error, upper bound (1-NN error)", ber.upper])
    splits = split_names(inputs)
    if splits is None:
        if not rows:
            return skipped(sec, "no labels and no train/test split to compare.")
        sec.table(["measure", "value"], rows)
        sec.paragraph("No train/test split: the split comparison is skipped.", css="note")
        return part
    is_test = splits == "test"
    k = min(DRIFT_K, graph.k)
    with warnings_on_page(sec):
        div = divergence(graph, is_test)
        test = drift(graph, is_test, k=k, n_permutations=DRIFT_PERMUTATIONS, random_state=0)
    part["divergence"] = div.to_dict()
    part["drift"] = test.to_dict()
    verdict = "differs from" if test.drifted else "is consistent with"
    sec.paragraph(
        f"Is the rest ({div.n_b:,} samples) drawn like the training split ({div.n_a:,})? The "
        f"Henze-Penrose divergence is {div.divergence:.3f} (0: one distribution, 1: "
        f"separate), from {div.errors:,} samples whose nearest neighbour lies in the other "
        f"split. The {k}-nearest-neighbour two-sample test (Schilling, Henze) says the rest "
        f"{verdict} the training split's distribution (p = {test.p_value:.3g} at "
        f"alpha {test.alpha:g}, {test.n_permutations:,} permutations)."
    )
    rows += [
        ["divergence, training split vs the rest", div.divergence],
        ["samples with a nearest neighbour in the other split", div.errors],
        ["k-NN drift test: share of neighbours from the same split", test.statistic],
        ["k-NN drift test: p-value", test.p_value],
        ["drift at alpha 0.05", "yes" if test.drifted else "no"],
    ]
    sec.table(["measure", "value"], rows)
    if test.drifted and test.samples is not None and test.sample_scores is not None:
        rest = np.flatnonzero(is_test)
        worst = rest[test.samples[:SHOW]]
        scores = test.sample_scores[test.samples[:SHOW]]
        grid(
            inputs,
            sec,
            worst,
            [f"#{int(i)} {s:+.2f}" for i, s in zip(worst, scores, strict=True)],
            "Samples of the rest most unlike the training split (share of neighbours from the "
            "rest, above what no drift gives)",
        )
        part["most_drifted"] = worst.tolist()
    return part
