"""The report's sections read from the one k-NN graph: duplicates, outliers, label errors.

Each takes the graph coverage searched (:func:`._common.neighbour_graph`), restricted to the
neighbours it needs, and keeps its result in `shared` for the 2-D map's markers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._common import (
    DUPLICATES_K,
    LABEL_ERRORS_K,
    OUTLIERS_K,
    SHOW,
    Shared,
    grid,
    neighbour_graph,
    skipped,
    split_names,
    warnings_on_page,
)
from ._html import Section
from ._inputs import ReportInputs

__all__ = ["duplicates_section", "label_errors_section", "outliers_section"]

#: Members listed per group in the table, and groups drawn as image pairs.
_MEMBERS = 8
_PAIRS = 8


def _label(inputs: ReportInputs, i: int) -> str:
    return "-" if inputs.labels is None else inputs.label_name(inputs.labels[i])


def _count(m: int) -> str:
    return f"{m} sample" + ("" if m == 1 else "s")


def _members(group: NDArray[np.int64]) -> str:
    shown = " ".join(str(int(i)) for i in group[:_MEMBERS])
    return shown + (f" … (+{group.size - _MEMBERS})" if group.size > _MEMBERS else "")


def duplicates_section(
    inputs: ReportInputs, sec: Section, out: Path, shared: Shared
) -> dict[str, Any]:
    from ..duplicates import duplicates

    graph = neighbour_graph(inputs, shared)
    splits = split_names(inputs)
    k = min(DUPLICATES_K, graph.k)
    with warnings_on_page(sec):
        res = duplicates(graph, splits=splits, k=k)
    shared.duplicates = res
    groups = [*(("exact", g) for g in res.exact), *(("near", g) for g in res.near)]
    n_exact = sum(g.size for g in res.exact)
    n_near = sum(g.size for g in res.near)
    sec.paragraph(
        "Exact duplicates are samples with identical embeddings (as float32, found by hashing "
        "the rows). Near duplicates are groups of samples linked by neighbour distances of at "
        f"most {res.threshold:.4g} (0.05 of the median distance from a sample to its nearest "
        f"distinct neighbour; {k} neighbours per sample searched); a near group may contain "
        "exact copies. Duplicates make the data look larger than they are and, across the "
        "train/test split, let the test score reward memorising."
    )
    sec.table(
        ["kind", "groups", "samples in them", "largest group"],
        [
            ["exact", len(res.exact), n_exact, max((g.size for g in res.exact), default=0)],
            ["near", len(res.near), n_near, max((g.size for g in res.near), default=0)],
        ],
        caption=f"Duplicate groups (threshold {res.threshold:.4g})",
    )
    if not groups:
        sec.paragraph("No exact or near duplicates at this threshold.", css="note")
    else:
        columns = ["group", "kind", "size", "members", "labels"]
        if splits is not None:
            columns.append("splits")
        rows = []
        for j, (kind, g) in enumerate(groups[:SHOW], 1):
            labels = sorted({_label(inputs, int(i)) for i in g})
            row: list[Any] = [j, kind, int(g.size), _members(g), ", ".join(labels)]
            if splits is not None:
                row.append(", ".join(sorted(set(splits[g].tolist()))))
            rows.append(row)
        sec.table(
            columns,
            rows,
            caption="Exact groups, then near ones, largest first (two labels in a group: a "
            "label problem too)",
        )
        pairs = [(j, g) for j, (_, g) in enumerate(groups[:_PAIRS], 1)]
        grid(
            inputs,
            sec,
            [int(i) for _, g in pairs for i in g[:2]],
            [f"g{j} #{int(i)} ({_label(inputs, int(i))})" for j, g in pairs for i in g[:2]],
            "Duplicate pairs: the first two samples of each group, side by side",
        )
    part: dict[str, Any] = {
        "k": k,
        "threshold": res.threshold,
        "summary": {
            "n_exact_groups": len(res.exact),
            "n_exact_samples": n_exact,
            "n_near_groups": len(res.near),
            "n_near_samples": n_near,
            "n_leak_groups": len(res.leaks),
        },
        "group_sizes": {
            "exact": [int(g.size) for g in res.exact],
            "near": [int(g.size) for g in res.near],
        },
        "split": None if splits is None else "train/test",
        "result": res.to_dict(),
    }
    sec.heading("Leaks: training split vs the rest")
    if splits is None:
        sec.paragraph("Skipped: needs a train/test split (the report has none).", css="note")
        part["leaks_skipped"] = "needs a train/test split."
        return part
    n_leaks = len(res.leaks)
    sec.paragraph(
        f"{n_leaks} of the {len(groups)} groups {'holds' if n_leaks == 1 else 'hold'} samples "
        "of both the training split and the rest: the model is tested on copies of what it "
        "was trained on."
        if n_leaks
        else "No group holds samples of both the training split and the rest."
    )
    sec.table(
        ["split", "other split", "groups holding both"],
        [[a, b, int(c)] for (a, b), c in res.leak_counts.items()],
        caption="Groups crossing splits",
    )
    pairs_across = []
    for g in res.leaks[:_PAIRS]:
        first_train = g[splits[g] == "train"][0]
        first_test = g[splits[g] != "train"][0]
        pairs_across += [int(first_train), int(first_test)]
    grid(
        inputs,
        sec,
        pairs_across,
        [
            f"#{i} {'train' if splits[i] == 'train' else 'test'} ({_label(inputs, i)})"
            for i in pairs_across
        ],
        "Leaking pairs: a training sample beside its copy in the rest",
    )
    return part


def outliers_section(
    inputs: ReportInputs, sec: Section, out: Path, shared: Shared
) -> dict[str, Any]:
    from ..outliers import outliers

    graph = neighbour_graph(inputs, shared)
    k = min(OUTLIERS_K, graph.k)
    with warnings_on_page(sec):
        res = outliers(graph, method="lof", k=k)
    shared.outliers = res
    n = res.scores.shape[0]
    m = res.flagged.size
    sec.paragraph(
        f"Each sample's local outlier factor (LOF, {k} neighbours) compares the density of "
        "the data around it with the density around its neighbours: about 1 inside a "
        f"cluster, larger where a sample sits apart from its neighbours. {_count(m)} "
        f"({100 * m / n:.1f}%) score above {res.threshold:.4g} and are flagged: check them for "
        "corrupt or unusual images, or data from another source."
    )
    top = res.indices[:SHOW]
    is_flagged = np.zeros(n, dtype=bool)
    is_flagged[res.flagged] = True
    sec.table(
        ["rank", "index", "label", "LOF", "flagged"],
        [
            [r, str(int(i)), _label(inputs, int(i)), float(res.scores[i]), bool(is_flagged[i])]
            for r, i in enumerate(top, 1)
        ],
        caption="Most outlying samples",
    )
    grid(
        inputs,
        sec,
        top,
        [f"#{int(i)} LOF {res.scores[i]:.2f}" for i in top],
        "Most outlying images (highest LOF first)",
    )
    return {
        "k": k,
        "method": res.method,
        "threshold": res.threshold,
        "n_flagged": int(m),
        "result": res.to_dict(),
    }


def label_errors_section(
    inputs: ReportInputs, sec: Section, out: Path, shared: Shared
) -> dict[str, Any]:
    if inputs.labels is None:
        return skipped(sec, "needs labels (pass --labels).")
    from ..label_errors import label_errors

    graph = neighbour_graph(inputs, shared)
    k = min(LABEL_ERRORS_K, graph.k)
    with warnings_on_page(sec):
        res = label_errors(graph, inputs.labels, k=k, method="knn_vote")
    shared.label_errors = res
    n = res.scores.shape[0]
    m = res.flagged.size
    sec.paragraph(
        f"A sample most of whose {k} nearest neighbours carry another label is probably "
        "mislabelled, or ambiguous; the suggested label is the most common one among its "
        f"neighbours. {_count(m)} ({100 * m / n:.1f}%) have more than half their neighbours "
        "disagreeing and are flagged: review them before training on them."
    )
    top = res.indices[:SHOW]
    is_flagged = np.zeros(n, dtype=bool)
    is_flagged[res.flagged] = True
    pred = inputs.predictions
    columns = ["rank", "index", "given label", "suggested", "neighbours disagreeing", "flagged"]
    if pred is not None:
        columns.append("model's prediction")
    rows = []
    for r, i in enumerate(top, 1):
        row: list[Any] = [
            r,
            str(int(i)),
            inputs.label_name(res.labels[i]),
            "-" if res.suggested[i] == res.labels[i] else inputs.label_name(res.suggested[i]),
            float(res.scores[i]),
            bool(is_flagged[i]),
        ]
        if pred is not None:
            row.append(inputs.label_name(pred[i]))
        rows.append(row)
    sec.table(columns, rows, caption="Most suspect labels")
    grid(
        inputs,
        sec,
        top,
        [
            f"#{int(i)} {inputs.label_name(res.labels[i])}→{inputs.label_name(res.suggested[i])}"
            for i in top
        ],
        "Suspected label errors: given → suggested label",
    )
    part: dict[str, Any] = {
        "k": k,
        "method": res.method,
        "n_flagged": int(m),
        "result": res.to_dict(),
    }
    if pred is not None and m:
        agree = int(np.sum(np.asarray(pred)[res.flagged] == res.suggested[res.flagged]))
        sec.paragraph(
            f"The model predicts the suggested label for {agree} of the {m} flagged samples.",
            css="note",
        )
        part["flagged_where_model_predicts_suggested"] = agree
    return part
