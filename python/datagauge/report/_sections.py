"""The report's sections: each runs one analysis and writes its part of the page.

A section is ``run(inputs, section, out_dir, shared) -> dict`` (see :mod:`._common`): it adds
text, tables, images and plots to `section` and returns every number it showed (the JSON
report). A section whose inputs are missing says what would switch it on instead of failing.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._atomic import atomic_dir, write_text
from ..coverage import coverage
from ._common import (
    COVERAGE_K,
    SHOW,
    SectionFn,
    Shared,
    grid,
    neighbour_graph,
    ordinal,
    skipped,
    stratified_rows,
)
from ._compare_section import compare_section
from ._graph_sections import duplicates_section, label_errors_section, outliers_section
from ._html import Section
from ._inputs import ArrayRows, ReportInputs
from ._map import map_section

__all__ = ["COMPARE_FIT_ROWS", "DEFERRED", "SECTIONS"]

#: Most training-split rows familiarity's "training split vs the rest" fits its mixtures on.
#: It fits 5 cross-fitted mixtures, plus 5 per class, on the training split; on
#: Fashion-MNIST's 60,000 rows that was 70% of the section's 47 CPU-s. Its measures are
#: means, medians and tail shares of log-likelihoods, which a seeded stratified 10,000
#: estimates closely (a mean's standard error shrinks as 1/sqrt(n)); the rest is scored
#: whole.
COMPARE_FIT_ROWS = 10_000


def _coverage(inputs: ReportInputs, sec: Section, out: Path, shared: Shared) -> dict[str, Any]:
    x = inputs.embeddings
    graph = neighbour_graph(inputs, shared)  # the report's one search, reused by later sections
    k = min(COVERAGE_K, graph.k)
    res = coverage(x, k, labels=inputs.labels, graph=graph)
    n = x.shape[0]
    m = res.uncovered_indices.size
    sec.paragraph(
        f"Each sample's critical radius is the distance to its {ordinal(k)} nearest neighbour in "
        f"embedding space. The {m} samples ({100 * m / n:.1f}%) with the largest radii are "
        f"uncovered (adaptive radius {res.coverage_radius:.4g}): the data are thin around "
        "them, so a model sees little like them. Collect more of these, or check them for "
        "errors."
    )
    top = res.uncovered_indices[:SHOW]
    rows = []
    for rank, i in enumerate(top, 1):
        label = "-" if inputs.labels is None else inputs.label_name(inputs.labels[i])
        rows.append([rank, str(int(i)), label, float(res.critical_value_radii[i])])
    sec.table(["rank", "index", "label", "radius"], rows, caption="Least covered samples")
    grid(
        inputs,
        sec,
        top,
        [f"#{int(i)} ({r[2]})" for i, r in zip(top, rows, strict=True)],
        "Least covered images (most isolated first)",
    )
    if res.per_class is not None:
        sec.table(
            ["class", "count", "uncovered", "fraction", "own adaptive radius"],
            [[inputs.label_name(lab), *rest] for lab, *rest in res.per_class.rows()],
            caption="Per class (uncovered under the global radius)",
        )
    return {"k": k, "result": res.to_dict()}


def _familiarity(inputs: ReportInputs, sec: Section, out: Path, shared: Shared) -> dict[str, Any]:
    from ..familiarity import compare_datasets, familiarity

    x, y = inputs.embeddings, inputs.labels
    reduce_dim = 40 if x.shape[1] > 40 else None
    opts: dict[str, Any] = {"covariance_type": "diag", "reduce_dim": reduce_dim}
    fam = familiarity(x, y, n_components=5, n_extremes=SHOW, random_state=0, **opts)
    pca = f", after PCA to {reduce_dim} dimensions" if reduce_dim else ""
    sec.paragraph(
        f"A Gaussian mixture (5 components, diagonal covariance{pca}) models the embeddings; "
        "each sample's log-likelihood under it says how familiar it is. The least familiar "
        "samples are rare, odd or mislabelled; the most familiar are the typical ones."
    )

    def lab(i: int) -> str:
        return "" if y is None else f" ({inputs.label_name(y[i])})"

    for title, idx in (
        ("Least familiar samples (lowest log-likelihood first)", fam.least_familiar),
        ("Most familiar (most representative) samples", fam.most_familiar),
    ):
        sec.table(
            ["rank", "index", "label", "log-likelihood"],
            [
                [r, str(int(i)), lab(int(i)).strip(" ()") or "-", float(fam.scores[i])]
                for r, i in enumerate(idx, 1)
            ],
            caption=title,
        )
        grid(inputs, sec, idx, [f"#{int(i)}{lab(int(i))}" for i in idx], title)
    part: dict[str, Any] = {"options": opts, "result": fam.to_dict()}
    if fam.per_class is not None:
        pc = fam.per_class
        rows = []
        for c, (label, count, modelled) in enumerate(
            zip(pc.labels, pc.count, pc.modelled, strict=True)
        ):
            members = np.flatnonzero(pc.sample_labels == label)
            if not modelled or members.size == 0:
                rows.append([inputs.label_name(label), int(count), False, "", ""])
                continue
            order = members[np.argsort(pc.own_scores[members], kind="stable")]
            least, most = order[:4], order[::-1][:4]
            rows.append(
                [
                    inputs.label_name(label),
                    int(count),
                    True,
                    " ".join(str(int(i)) for i in least),
                    " ".join(str(int(i)) for i in most),
                ]
            )
            if inputs.images is not None:
                grid(
                    inputs,
                    sec,
                    np.concatenate([least, most]),
                    [f"#{int(i)} least" for i in least] + [f"#{int(i)} most" for i in most],
                    f"Class {inputs.label_name(label)}: least and most representative "
                    "(under the class's own model)",
                )
            del c
        sec.table(
            ["class", "count", "modelled", "least representative", "most representative"],
            rows,
            caption="Per-class models (a class needs enough samples for its own model)",
        )
    if inputs.is_train is not None and 0 < inputs.is_train.sum() < x.shape[0]:
        train = np.flatnonzero(inputs.is_train)
        n_train = train.size
        if n_train > COMPARE_FIT_ROWS:  # a seeded stratified subsample: see COMPARE_FIT_ROWS
            train = train[
                stratified_rows(None if y is None else y[train], n_train, COMPARE_FIT_ROWS, 0)
            ]
        rest = ~inputs.is_train
        cmp = compare_datasets(
            x[train],
            x[rest],
            fit_labels=None if y is None else y[train],
            predict_labels=None if y is None else y[rest],
            n_components=5,
            random_state=0,
            **opts,
        )
        how = "seeded, stratified by class" if y is not None else "seeded"
        fitted = (
            f"{train.size:,} of the {n_train:,} training rows ({how})"
            if train.size < n_train
            else f"all {n_train:,} training rows"
        )
        sec.heading("Training split vs the rest")
        sec.paragraph(
            f"The mixtures are fitted on {fitted} in 5 folds (each fold scored by the model of "
            "the other four); the measures are means, medians and shares, which a sample of "
            "this size estimates closely."
            if train.size < n_train
            else f"The mixtures are fitted on {fitted} in 5 folds.",
            css="note",
        )
        sec.table(
            ["measure", "value"],
            [
                [
                    f"mean log-likelihood, training (out of sample, 5 folds, {train.size:,} rows)",
                    cmp.fit_mean_loglik,
                ],
                ["mean log-likelihood, rest", cmp.predict_mean_loglik],
                ["likelihood ratio L per dimension", cmp.likelihood_ratio],
                ["reading", cmp.band],
                ["median log-likelihood difference per dimension", cmp.loglik_difference_per_dim],
                ["share of the rest below training's 1st percentile", cmp.fraction_below_p1],
                ["share of the rest below training's 5th percentile", cmp.fraction_below_p5],
            ],
        )
        sec.paragraph(cmp.note, css="note")
        part["train_vs_rest"] = cmp.to_dict()
        part["train_vs_rest_budget"] = {
            "fit_rows": int(train.size),
            "training_rows": int(n_train),
            "max_fit_rows": COMPARE_FIT_ROWS,
        }
    return part


class _ProbeTrain:
    """Train a logistic-regression probe on the embeddings of the chosen rows."""

    def train(self, model: Any, dataset: ArrayRows, indices: NDArray[np.int64]) -> None:
        y = dataset.y[indices]
        if np.unique(y).size < 2:  # a tiny step can hold one class: predict it
            model.constant_ = y[0]
            return
        model.constant_ = None
        model.fit(dataset.x[indices], y)


class _ProbeEvaluate:
    def evaluate(self, model: Any, dataset: ArrayRows) -> dict[str, float]:
        if getattr(model, "constant_", None) is not None:
            return {"accuracy": float(np.mean(dataset.y == model.constant_))}
        return {"accuracy": float(np.mean(model.predict(dataset.x) == dataset.y))}


def _probe() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=300)


def probe_sufficiency(inputs: ReportInputs, cap: int = 5000) -> tuple[Any, Any, Any, str]:
    """A sufficiency experiment with a logistic-regression probe on the embeddings."""
    from ..sufficiency import Sufficiency

    if inputs.labels is None:
        raise ValueError("the probe needs labels and a train/test split.")
    if inputs.is_train is None:
        raise ValueError("the probe needs labels and a train/test split.")
    tr = np.flatnonzero(inputs.is_train)
    te = np.flatnonzero(~inputs.is_train)
    rng = np.random.default_rng(0)
    if tr.size > cap:
        tr = np.sort(rng.choice(tr, cap, replace=False))
    if te.size > cap:
        te = np.sort(rng.choice(te, cap, replace=False))
    x = inputs.embeddings
    mean, std = x[tr].mean(axis=0), x[tr].std(axis=0) + 1e-6
    z = (x - mean) / std
    train_ds = ArrayRows(z[tr], inputs.labels[tr])
    test_ds = ArrayRows(z[te], inputs.labels[te])
    config = Sufficiency.Config(
        training_strategy=_ProbeTrain(),
        evaluation_strategy=_ProbeEvaluate(),
        reset_strategy=lambda _m: _probe(),
        runs=3,
        substeps=8,
    )
    note = (
        f"Model: a logistic-regression probe on the standardised embeddings, trained on "
        f"growing subsets of {tr.size:,} training rows and scored on {te.size:,} held-out rows."
    )
    return Sufficiency(_probe(), config), train_ds, test_ds, note


def _default_targets(curve: Any) -> list[float]:
    """Targets worth sizing when the user gave none: half of the gain still to come, and the
    round accuracies between the last measured value and the limit of the forecast (which
    answers the sizes: a target beyond it would read "not reached")."""
    last = float(curve.mean[-1])
    best = curve.forecast_limit
    out = {round(last + 0.5 * (best - last), 3)} if best > last + 0.002 else set()
    out |= {t for t in (0.9, 0.95, 0.99) if last < t < best}
    return sorted(t for t in out if 0.0 <= t <= 1.0)


def _sufficiency(inputs: ReportInputs, sec: Section, out: Path, shared: Shared) -> dict[str, Any]:
    if inputs.sufficiency is None and (inputs.labels is None or inputs.is_train is None):
        return skipped(sec, "needs labels (pass --labels) to measure accuracy.")
    build = inputs.sufficiency if inputs.sufficiency is not None else probe_sufficiency
    suff, train_ds, test_ds, note = build(inputs)
    tick = shared.progress if shared.progress is not None else False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = suff.evaluate(train_ds, test_ds, progress=tick, random_state=0)
    for w in caught:  # e.g. a small training set gives fewer distinct sizes: say so on the page
        sec.paragraph(f"Note: {w.message}", css="warn")
    # the whole training split (the experiment may measure a subset of it)
    n_train = max(len(train_ds), int(np.sum(inputs.is_train)) if inputs.is_train is not None else 0)
    sec.paragraph(
        "Would more data help? The model is trained from scratch on growing random subsets "
        f"of the training set ({res.runs} runs), a learning curve is fitted to its error (the "
        "power law, which back-tests best on real curves), and the curve is projected to "
        "larger datasets. The training size each target needs comes from the trend: the "
        "power law through the last measured sizes, whose sizes back-test closest to the "
        "true ones on real learning curves, with an 80% range from refitting it to "
        "resampled runs."
    )
    sec.paragraph(note, css="note")
    sizes = np.array([n_train, 2 * n_train, 5 * n_train, 10 * n_train], dtype=np.int64)
    sizes = np.unique(np.maximum(sizes, int(res.steps[-1])))
    with warnings.catch_warnings():
        # Projections beyond the measured sizes are the point here; the table says so.
        warnings.simplefilter("ignore")
        curves = res.fit()
        projected = res.project(sizes)
        fig = res.plot(projection=sizes)
    sec.figure(fig, alt="learning curve with projection")
    mean = res.mean
    sec.table(
        ["training size", *(f"{m} (mean of runs)" for m in res.metrics)],
        [[int(s), *(float(mean[m][j]) for m in res.metrics)] for j, s in enumerate(res.steps)],
        caption="Measured",
    )
    proj_frame = projected.reset_index() if hasattr(projected, "reset_index") else projected
    sec.table(
        list(map(str, proj_frame.columns)),
        list(proj_frame.itertuples(index=False, name=None)),
        caption="Projected (extrapolation: read as a trend, not a promise)",
    )
    curve_rows = []
    need_rows = []
    targets: dict[str, Any] = {}
    for name, curve in curves.items():
        best = 1.0 - curve.c0 if curve.higher_is_better else curve.c0  # the family's asymptote
        asked = list(inputs.sufficiency_targets) or (
            _default_targets(curve) if curve.higher_is_better else []
        )
        targets[name] = {}
        if asked:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # far sizes are the question asked here
                if curve.trend_bootstrap is not None:
                    est = curve.size_needed(asked, level=0.8)  # centred on the trend
                    lower, upper = est.lower.tolist(), est.upper.tolist()
                    size = est.size.tolist()
                else:  # a single run: no spread to give a range from
                    size = curve.trend_size(asked).tolist()
                    lower = upper = [-1] * len(asked)
            for t, n, lo, hi in zip(asked, size, lower, upper, strict=True):
                targets[name][str(t)] = {"size": n, "lower": lo, "upper": hi}
                need_rows.append(
                    [
                        name,
                        f"{t:g}",
                        f"{n:,}" if n > 0 else "not reached",
                        _range_text(lo, hi),
                        _SIZE_FIT,
                    ]
                )
        params = ", ".join(f"{k} = {v:.4g}" for k, v in zip("cmbd", curve.params, strict=False))
        curve_rows.append(
            [
                name,
                curve.model,
                params.replace("b =", "c0 ="),
                curve.r2,
                float(best),
                float(curve.forecast_limit),
                ", ".join(f"{k}: {v:.2e}" for k, v in curve.candidates.items()) or "-",
            ]
        )
    if need_rows:
        sec.table(
            ["metric", "target", "training size needed", "80% range", "fit"],
            need_rows,
            caption=(
                "Size needed, from the trend (the power law through the last measured sizes; "
                "the range is calibrated on real learning curves: in the "
                "back-test it held the true size on about 80% of them held out; 'or more "
                "(maybe never)' means some plausible curves never reach the target)"
            ),
        )
    sec.table(
        [
            "metric",
            "family",
            "parameters",
            "R²",
            "asymptote (fit)",
            "asymptote (forecast)",
            "extrapolation score",
        ],
        curve_rows,
        caption=(
            "Fitted curves: error(n) = c0 + c·φ(n); pow3 φ = n^-m, pow4 φ = (n + d)^-m, "
            "mmf4 φ = 1 / (1 + (n/d)^m). The extrapolation score (model='auto' only) is each "
            "family's error predicting the later measured points from the earlier ones."
        ),
    )
    return {
        "result": res.to_dict(),
        "curves": {k: v.to_dict() for k, v in curves.items()},
        "projection_sizes": sizes,
        "projection": {str(c): list(proj_frame[c]) for c in proj_frame.columns},
        "sizes_needed": targets,
        "sizes_needed_fit": "trend",
    }


#: What the sizes of the sufficiency section come from (LearningCurve.size_needed's default).
_SIZE_FIT = "trend (power law through the last sizes)"


def _range_text(lower: int, upper: int) -> str:
    if lower < 1:
        return "-"
    return f"{lower:,} to {upper:,}" if upper > 0 else f"{lower:,} or more (maybe never)"


def write_review_file(path: Path, text: str) -> tuple[Path, str | None]:
    """Write a file the user is asked to edit, never replacing one that holds their edits.

    An existing `path` whose text differs from `text` (it may hold review marks) is kept as
    it is, and `text` goes next to it as ``<stem>.new<suffix>``. Returns the path written
    and, in that case, a sentence saying so.
    """
    if path.exists():
        try:
            before: str | None = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            before = None
        if before != text:
            fresh = path.with_name(f"{path.stem}.new{path.suffix}")
            write_text(fresh, text)
            return fresh, (
                f"{path.name} already exists and differs from this run's (it may hold your "
                f"review marks): it was kept as it is, and this run's is {fresh.name}."
            )
    write_text(path, text)
    return path, None


def _bias(inputs: ReportInputs, sec: Section, out: Path, shared: Shared) -> dict[str, Any]:
    from ..bias import find_biases

    correct = inputs.correct
    if correct is None:
        return skipped(sec, "needs labels and the model's predictions (--predictions).")
    if correct.all() or not correct.any():
        return skipped(sec, "the model is right on every sample (or on none): no contrast.")
    part: dict[str, Any] = {}
    if inputs.tags is not None:
        names = None if inputs.tag_names is None else list(inputs.tag_names)
        rep = find_biases(inputs.tags, correct, tag_names=names, max_tags=3, min_support=10)
        sec.paragraph(
            f"Subgroups defined by up to 3 tags where the model's accuracy differs "
            f"significantly from the rest: {rep.n_tested:,} subgroups tested, "
            f"{len(rep)} kept ({rep.test} test, {rep.correction} correction, "
            f"alpha {rep.alpha})."
        )
        top = min(len(rep), 10)
        sec.table(
            ["subgroup", "size", "accuracy inside", "outside", "effect", "adjusted p"],
            [
                [
                    " & ".join(rep.combinations[i]),
                    int(rep.support[i]),
                    float(rep.metric_inside[i]),
                    float(rep.metric_outside[i]),
                    float(rep.effect[i]),
                    float(rep.p_adjusted[i]),
                ]
                for i in range(top)
            ],
            caption="Subgroups where the model differs (largest effect first)",
        )
        for i in range(min(top, 3)):
            ex = rep.examples(i, 8)
            grid(
                inputs,
                sec,
                ex,
                [f"#{int(j)} {'ok' if correct[j] else 'wrong'}" for j in ex],
                f"Examples of {' & '.join(rep.combinations[i])}",
            )
        part["subgroups"] = rep.to_dict()
    else:
        sec.paragraph("No tags: the subgroup search needs --tags (or images to tag).", css="note")
    if inputs.concept_scores is not None and inputs.labels is not None:
        from ..concept_bias import ConceptBias

        scores, names = inputs.concept_scores
        cb = ConceptBias().fit(inputs.labels, correct, scores=scores, concept_names=list(names))
        query = cb.potential_biases()
        query_file, kept = write_review_file(
            out / "concept_bias_query.json", json.dumps(query, indent=2)
        )
        res = cb.final_results(output_file=out / "concept_bias_results.json", overwrite=True)
        sec.heading("Per-class concept bias")
        sec.paragraph(
            "Within each class, images are ranked by each concept (an image property); the gap "
            f"is the accuracy on the top 20% minus the bottom 20%. Review {query_file.name} "
            "(mark each concept relevant or not) and rerun ConceptBias.final_results with it "
            "to confirm."
        )
        if kept is not None:
            sec.paragraph(kept, css="warn")
            part["review_file_kept"] = kept
        m = min(len(res), 10)
        if m == 0:
            candidates = [
                (c["class"], row["concept"], row["gap"], row["p_adjusted"])
                for c in query.get("classes", [])
                for row in c.get("concepts", [])
            ]
            candidates.sort(key=lambda t: -abs(t[2]) if t[2] == t[2] else 0.0)
            sec.paragraph(
                "No concept passes the thresholds (|gap| >= 0.2 and significant). The largest "
                "gaps, for review:"
            )
            sec.table(
                ["class", "concept", "gap", "adjusted p"],
                [[inputs.label_name(c), name, g, p] for c, name, g, p in candidates[:8]],
                caption="Largest concept gaps (not significant)",
            )
        else:
            sec.table(
                ["class", "concept", "gap", "accuracy top", "bottom", "adjusted p"],
                [
                    [
                        inputs.label_name(res.classes[i]),
                        res.concepts[i],
                        float(res.gap[i]),
                        float(res.metric_top[i]),
                        float(res.metric_bottom[i]),
                        float(res.p_adjusted[i]),
                    ]
                    for i in range(m)
                ],
                caption="Concept biases passing the thresholds (largest gap first)",
            )
        for i in range(min(m, 2)):
            top_ex = [int(j) for j in res.top_examples[i] if j >= 0][:4]
            bottom_ex = [int(j) for j in res.bottom_examples[i] if j >= 0][:4]
            grid(
                inputs,
                sec,
                top_ex + bottom_ex,
                [f"#{j} high" for j in top_ex] + [f"#{j} low" for j in bottom_ex],
                f"Class {inputs.label_name(res.classes[i])}, {res.concepts[i]}: highest and lowest",
            )
        part["concepts"] = res.to_dict()
        part["concept_query"] = query
    return part


def _overlay(image: NDArray[Any], heat: NDArray[Any]) -> NDArray[np.float32]:
    """The image, dimmed, under its saliency map in a black-red-yellow scale, as (H, W, 3)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h = np.abs(np.asarray(heat, dtype=np.float32))
    top = float(h.max())
    h = h / top if top > 0 else h
    colour = np.stack([np.minimum(1.0, 2 * h), np.maximum(0.0, 2 * h - 1), np.zeros_like(h)], -1)
    out: NDArray[np.float32] = np.clip(0.35 * img + 0.85 * colour, 0.0, 1.0).astype(np.float32)
    return out


def _saliency(inputs: ReportInputs, sec: Section, out: Path, shared: Shared) -> dict[str, Any]:
    if inputs.model is None or inputs.model_inputs is None or inputs.images is None:
        return skipped(sec, "needs images and a torch model (not with --embeddings).")
    from ..embeddings import saliency, save_saliency

    correct = inputs.correct
    pool = np.arange(inputs.embeddings.shape[0])
    if inputs.is_train is not None:
        pool = pool[~inputs.is_train]
    wrong = pool if correct is None else pool[~correct[pool]]
    chosen = (wrong if wrong.size else pool)[:4]
    x = inputs.model_inputs[chosen]
    methods = ["integrated_gradients", "layer_grad_cam"]
    layer = getattr(inputs.model, "gradcam_layer", None)
    part: dict[str, Any] = {"indices": chosen, "maps": {}}
    sec.paragraph(
        "Where the model looked when it decided, on held-out images it got wrong: "
        "integrated gradients (pixel attributions) and Grad-CAM of the last convolution, "
        "in red over the image, for the predicted class."
    )
    for method in methods:
        kwargs: dict[str, Any] = {"method": method}
        if method == "layer_grad_cam":
            if layer is None:
                continue
            kwargs["layer"] = layer
        maps = saliency(inputs.model, x, n_steps=32, internal_batch_size=16, **kwargs)
        folder = out / "saliency" / method
        folder.parent.mkdir(parents=True, exist_ok=True)
        with atomic_dir(folder, overwrite=True) as tmp:  # whole folder or none
            save_saliency(inputs.images[chosen], maps, tmp)
        captions = []
        for i in chosen:
            truth = "" if inputs.labels is None else inputs.label_name(inputs.labels[i])
            guess = "" if inputs.predictions is None else inputs.label_name(inputs.predictions[i])
            captions.append(f"#{int(i)} {truth}→{guess}")
        pairs: list[NDArray[Any]] = []
        for i, m in zip(chosen, maps, strict=True):
            pairs += [inputs.images[i], _overlay(inputs.images[i], m)]
        sec.image_grid(
            pairs,
            [c for cap in captions for c in (cap, "saliency")],
            title=method.replace("_", " "),
            size=96,
        )
        part["maps"][method] = maps
    return part


SECTIONS: list[tuple[str, str, SectionFn]] = [
    ("map", "Map: the embeddings in two dimensions", map_section),
    ("coverage", "Coverage: where the data are thin", _coverage),
    ("duplicates", "Duplicates: copies, near copies and split leaks", duplicates_section),
    ("outliers", "Outliers: samples unlike their neighbours", outliers_section),
    ("label_errors", "Label errors: samples whose neighbours disagree", label_errors_section),
    ("familiarity", "Familiarity: what is typical and what is unusual", _familiarity),
    ("compare", "Separability, and the training split vs the rest", compare_section),
    ("sufficiency", "Sufficiency: would more data help?", _sufficiency),
    ("bias", "Bias: where the model fails", _bias),
    ("saliency", "Saliency: what the model looked at", _saliency),
]

#: Sections drawn where they stand but run after the others: the map marks what the graph
#: analyses flagged.
DEFERRED = frozenset({"map"})
