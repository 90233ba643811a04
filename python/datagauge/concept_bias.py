"""Concept bias per class: concepts whose presence changes how well a model does on a class.

For every class and concept, the class's images are ranked by the concept's score; the
spurious gap is the metric (accuracy or mean confidence) on the top images (a share of the
class, ``fraction``, or a count, ``n_images``) minus the metric on as many bottom images
(Spuriosity Rankings, Moayeri et al. 2023; RELAI's AnalyzeBias). A large gap means the model's
success on the class depends on the concept. Whether that is a bias or the class itself
(wheels for "car") is the user's call: :meth:`ConceptBias.potential_biases` writes a JSON
query file, the user marks each concept, and :meth:`ConceptBias.final_results` keeps the
confirmed ones.

Coming from RELAI: its ``top_k`` is the number of images each gap is measured on; here that
is ``ConceptBias(fraction=...)`` or ``ConceptBias(n_images=...)``, and the methods'
``n_examples`` only sets how many example images are listed. ``top_k=`` raises TypeError
rather than silently listing examples instead of changing the gap.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from . import _core
from ._atomic import write_text
from ._results import ResultBase, _frame, _plain
from ._threads import resolve_n_jobs
from ._validation import (
    FEEDBACK_FORMAT,
    check_choice,
    check_class_share,
    check_concept_feedback,
    check_distinct_files,
    check_embeddings,
    check_feedback_json,
    check_int,
    check_is_fitted,
    check_labels,
    check_new_file,
    check_outcome,
    check_real,
    check_renamed,
)
from .bias import adjust_pvalues

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ConceptBias", "ConceptBiasResult"]

#: Share of each class at each end of a ranking when neither fraction nor n_images is given.
DEFAULT_FRACTION = 0.2

_N_EXAMPLES_NOT_TOP_K = (
    "use n_examples=, the number of example images listed at each end of a ranking. It is "
    "not the gap's top_k as in RELAI: the gap is measured on ConceptBias(fraction=...) of "
    "each class (default 0.2) or ConceptBias(n_images=...) images at each end."
)
_RENAMED_INIT = {
    "k": (
        "use fraction= for a share of each class at each end of the ranking (e.g. 0.2), or "
        "n_images= for a number of images (k means neighbours elsewhere in datagauge)."
    ),
}


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ConceptBiasResult(ResultBase):
    """Confirmed (or not yet reviewed) concept biases, from :meth:`ConceptBias.final_results`.

    Attributes
    ----------
    classes : tuple
        Class of each row.
    concepts : tuple of str
        Concept of each row.
    gap : ndarray of float64, shape (m,)
        Metric on the class's top images by concept score minus the metric on as many bottom
        images (``ConceptBias.n_images_`` of them).
    metric_top, metric_bottom : ndarray of float64, shape (m,)
    p_value, p_adjusted : ndarray of float64, shape (m,)
        Two-sided test of the top images against the bottom ones, and after the correction
        over every (class, concept) pair.
    relevant : tuple of (bool or None)
        The user's mark: False (confirmed spurious) or None (not reviewed). Concepts marked
        True (relevant to the class) are removed.
    top_examples, bottom_examples : ndarray of int64, shape (m, n_examples)
        Indices of the class's images with the highest / lowest concept score, padded with -1
        when the class has fewer images.
    metric : str
    """

    classes: tuple[Any, ...]
    concepts: tuple[str, ...]
    gap: NDArray[np.float64]
    metric_top: NDArray[np.float64]
    metric_bottom: NDArray[np.float64]
    p_value: NDArray[np.float64]
    p_adjusted: NDArray[np.float64]
    relevant: tuple[bool | None, ...]
    top_examples: NDArray[np.int64]
    bottom_examples: NDArray[np.int64]
    metric: str

    def __len__(self) -> int:
        return len(self.concepts)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per (class, concept) bias."""
        return _frame(
            {
                "class": list(self.classes),
                "concept": list(self.concepts),
                "gap": self.gap,
                "metric_top": self.metric_top,
                "metric_bottom": self.metric_bottom,
                "p_value": self.p_value,
                "p_adjusted": self.p_adjusted,
                "relevant": list(self.relevant),
                "top_examples": [list(r[r >= 0]) for r in self.top_examples],
                "bottom_examples": [list(r[r >= 0]) for r in self.bottom_examples],
            }
        )


class ConceptBias:
    """Per-class concept (spurious feature) bias.

    Parameters
    ----------
    fraction : float in (0, 0.5], optional
        Images at each end of a class's ranking, as a share of the class (at least one
        image); default 0.2 (the top and bottom 20%) unless `n_images` is given. Each gap is
        measured on these images (RELAI's ``top_k``).
    n_images : int >= 1, optional
        Images at each end as a count instead of a share; give `fraction` or `n_images`, not
        both. Either way at most half the class, so the ends never overlap.
    metric : {"accuracy", "confidence"}, default "accuracy"
    test : {"z", "fisher", "welch"}, optional
        Test of the top images against the bottom ones; default "z" for accuracy, "welch"
        for confidence.
    correction : {"bh", "bonferroni", "holm", "none"}, default "bh"
        Over every (class, concept) pair.
    n_jobs : int or None
        Threads for the tests; None means every available CPU.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Sorted distinct labels.
    concept_names_ : list of str
    gap_, metric_top_, metric_bottom_, p_value_, p_adjusted_ : ndarray of float64
        Shape (n_classes, n_concepts); NaN gap (and p = 1) for classes with fewer than 2
        images.
    n_images_ : ndarray of int64, shape (n_classes,)
        Images at each end of the ranking, per class.

    Raises
    ------
    TypeError
        For ``k=``, the former name of `fraction` / `n_images`.

    Notes
    -----
    Feedback file format (JSON), as written by :meth:`potential_biases`::

        {
          "format": "datagauge-concept-bias-query",
          "version": 1,
          "metric": "accuracy",
          "classes": [
            {"class": 3,
             "concepts": [
               {"concept": "brightness", "gap": -0.42, "p_value": 1e-05, "p_adjusted": 1e-04,
                "metric_top": 0.5, "metric_bottom": 0.92,
                "top_examples": [12, 40], "bottom_examples": [7, 8],
                "relevant": null}]}]
        }

    The user sets each ``"relevant"`` to ``true`` (the concept is part of the class: not a
    bias; removed from the final results), ``false`` (spurious: a confirmed bias) or leaves
    ``null`` (not reviewed; kept). Only ``"format"``, ``"classes"``, ``"class"``,
    ``"concepts"``, ``"concept"`` and ``"relevant"`` are read; classes and concepts left out
    of the file count as not reviewed. The file must be UTF-8 JSON (as written; a UTF-8
    byte-order mark is accepted); a file in another encoding, nested absurdly deep or
    otherwise malformed raises ValueError naming the file and the problem (for a bad entry,
    its JSON path).

    Nothing is written unless a path is given, and an existing file is replaced only with
    ``overwrite=True``, so a query file you have marked is never lost to a rerun.

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, 900)
    >>> scores = rng.random((900, 4))
    >>> correct = ~((labels == 1) & (scores[:, 2] > 0.6) & (rng.random(900) < 0.8))
    >>> cb = datagauge.ConceptBias().fit(labels, correct, scores=scores)
    >>> res = cb.final_results()
    >>> res.classes[0], res.concepts[0]
    (1, 'concept2')
    """

    def __init__(
        self,
        *,
        fraction: float | None = None,
        n_images: int | None = None,
        metric: Literal["accuracy", "confidence"] = "accuracy",
        test: Literal["z", "fisher", "welch"] | None = None,
        correction: Literal["bh", "bonferroni", "holm", "none"] = "bh",
        n_jobs: int | None = None,
        **removed: Any,
    ) -> None:
        check_renamed(removed, _RENAMED_INIT, "ConceptBias")
        self.fraction = fraction
        self.n_images = n_images
        self.metric = metric
        self.test = test
        self.correction = correction
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        labels: Any,
        correct: Any,
        *,
        scores: Any = None,
        concept_names: list[str] | None = None,
        embeddings: Any = None,
        concept_embeddings: Any = None,
        images: Any = None,
    ) -> ConceptBias:
        """Rank each class's images by each concept and measure the gaps.

        Concept scores come from exactly one of: ``scores`` (n, c), a user's matrix; cosine
        similarity of ``embeddings`` (n, d) with ``concept_embeddings`` (c, d), e.g. CLIP
        image and text embeddings; or ``images`` (see
        :func:`datagauge.tagging.image_properties`), the built-in pixel-property tagger.

        Parameters
        ----------
        labels : array-like of shape (n,)
            Class of each image.
        correct : array-like of shape (n,)
            Bool/0-1 correctness (accuracy) or a real confidence per image (confidence).
        scores, embeddings, concept_embeddings, images : see above.
        concept_names : list of str, optional
            One per concept (default ``"concept0"``, ...; the tagger names its own).

        Returns
        -------
        self
        """
        metric = check_choice(self.metric, "metric", ("accuracy", "confidence"))
        default_test = "z" if metric == "accuracy" else "welch"
        test = check_choice(
            self.test if self.test is not None else default_test, "test", ("z", "fisher", "welch")
        )
        if metric == "confidence" and test != "welch":
            raise ValueError(
                f'test="{test}" compares proportions; metric="confidence" needs "welch".'
            )
        correction = check_choice(
            self.correction, "correction", ("bh", "bonferroni", "holm", "none")
        )
        fraction, count = check_class_share(self.fraction, self.n_images)
        share = DEFAULT_FRACTION if fraction is None else fraction
        s, names = self._scores(scores, embeddings, concept_embeddings, images, concept_names)
        n, c = s.shape
        y = check_labels(labels, n)
        outcome = check_outcome(correct, n, metric=metric)
        n_threads = resolve_n_jobs(self.n_jobs)

        classes, inverse = np.unique(y, return_inverse=True)
        n_cls = classes.size
        shape = (n_cls, c)
        gap = np.full(shape, np.nan)
        m_top = np.full(shape, np.nan)
        m_bot = np.full(shape, np.nan)
        p = np.ones(shape)
        ks = np.zeros(n_cls, dtype=np.int64)
        order: list[NDArray[np.int64]] = []  # per class: (c, n_c) member indices, score descending
        groups: list[tuple[int, NDArray[np.float64], NDArray[np.float64]]] = []
        for ci in range(n_cls):
            members = np.flatnonzero(inverse == ci)
            # descending by score, ties by index (stable sort of -score)
            ranks = np.argsort(-s[members], axis=0, kind="stable").T
            order.append(members[ranks])
            # at least one image, at most half the class
            want = count if count is not None else max(1, int(share * members.size))
            kc = min(want, members.size // 2)
            ks[ci] = kc
            if kc == 0:
                continue
            vals = outcome[members][ranks]  # (c, n_c)
            top = vals[:, :kc]
            bottom = vals[:, -kc:]
            m_top[ci] = top.mean(axis=1)
            m_bot[ci] = bottom.mean(axis=1)
            gap[ci] = m_top[ci] - m_bot[ci]
            groups.append((ci, top, bottom))
        for ci, top, bottom in groups:
            p[ci] = _gap_test(top, bottom, test, n_threads)
        valid = ks > 0
        p_adj = np.ones(shape)
        p_adj[valid] = adjust_pvalues(p[valid].ravel(), correction).reshape(-1, c)

        self.classes_ = classes
        self.concept_names_ = names
        self.gap_ = gap
        self.metric_top_ = m_top
        self.metric_bottom_ = m_bot
        self.p_value_ = p
        self.p_adjusted_ = p_adj
        self.n_images_ = ks
        self.metric_ = metric
        self._order = order
        return self

    def _scores(
        self,
        scores: Any,
        embeddings: Any,
        concept_embeddings: Any,
        images: Any,
        concept_names: list[str] | None,
    ) -> tuple[NDArray[np.float64], list[str]]:
        given = [scores is not None, embeddings is not None or concept_embeddings is not None,
                 images is not None]  # fmt: skip
        if sum(given) != 1:
            raise ValueError(
                "give the concept scores one way: scores=(n, c) matrix, or embeddings=(n, d) "
                "with concept_embeddings=(c, d), or images= for the built-in tagger."
            )
        if images is not None:
            from .tagging import image_properties

            s32, names = image_properties(images)
            if concept_names is not None:
                raise ValueError("concept_names is not used with images=: the tagger names them.")
            return s32.astype(np.float64), names
        if scores is not None:
            s = check_embeddings(scores, name="scores").astype(np.float64)
        else:
            if embeddings is None or concept_embeddings is None:
                raise ValueError("embeddings and concept_embeddings must be given together.")
            e = check_embeddings(embeddings).astype(np.float64)
            ce = check_embeddings(concept_embeddings, name="concept_embeddings").astype(np.float64)
            if e.shape[1] != ce.shape[1]:
                raise ValueError(
                    f"embeddings have {e.shape[1]} features but concept_embeddings have "
                    f"{ce.shape[1]}; both must come from the same model's joint space."
                )
            en = np.linalg.norm(e, axis=1, keepdims=True)
            cn = np.linalg.norm(ce, axis=1, keepdims=True)
            if (en == 0).any() or (cn == 0).any():
                raise ValueError("an embedding is all zeros; cosine similarity is undefined.")
            s = (e / en) @ (ce / cn).T
        c = s.shape[1]
        if concept_names is None:
            names = [f"concept{j}" for j in range(c)]
        else:
            names = [str(v) for v in concept_names]
            if len(names) != c or len(set(names)) != c:
                raise ValueError(
                    f"concept_names must be {c} distinct names (one per concept), got "
                    f"{len(names)} ({len(set(names))} distinct)."
                )
        return s, names

    def _examples(self, ci: int, j: int, n_examples: int) -> tuple[list[int], list[int]]:
        ranking = self._order[ci][j]
        kk = min(n_examples, ranking.size)
        return ranking[:kk].tolist(), ranking[::-1][:kk].tolist()

    def _ranked_pairs(self, ci: int) -> list[int]:
        g = self.gap_[ci]
        ok = np.flatnonzero(np.isfinite(g))
        return sorted(ok.tolist(), key=lambda j: (-abs(g[j]), self.p_value_[ci, j], j))

    # ------------------------------------------------------------------ review

    def potential_biases(
        self,
        *,
        top_concepts: int = 4,
        n_examples: int = 5,
        query_file: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        **removed: Any,
    ) -> dict[str, Any]:
        """The top concepts of each class by |gap|, with example images, as a query for review.

        Parameters
        ----------
        top_concepts : int, default 4
            Concepts listed per class.
        n_examples : int, default 5
            Example images listed at each end of each ranking (display only: the gaps are
            measured on the class's `fraction` / `n_images`).
        query_file : path, optional
            Where to write the query as JSON (see the class Notes for the format); by default
            nothing is written.
        overwrite : bool, default False
            Replace an existing `query_file`. Without it an existing file (perhaps already
            holding your review marks) is left as it is and FileExistsError is raised.

        Returns
        -------
        dict
            The query document (the file's content).

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        FileExistsError
            When `query_file` exists and `overwrite` is False.
        TypeError
            For ``top_k=``, the former name of `n_examples`.
        """
        check_renamed(removed, {"top_k": _N_EXAMPLES_NOT_TOP_K}, "ConceptBias.potential_biases")
        check_is_fitted(self, "gap_")
        top_concepts = check_int(top_concepts, "top_concepts", minimum=1)
        n_examples = check_int(n_examples, "n_examples", minimum=1)
        if query_file is not None:
            check_new_file(
                query_file,
                overwrite=overwrite,
                name="query_file",
                hint=" (it may hold your review marks)",
            )
        doc: dict[str, Any] = {
            "format": FEEDBACK_FORMAT,
            "version": 1,
            "metric": self.metric_,
            "instructions": (
                "For each concept set 'relevant' to true if it is part of what the class is "
                "(not a bias), false if it is spurious (a bias), or leave null (not reviewed)."
            ),
            "classes": [],
        }
        for ci, label in enumerate(self.classes_):
            concepts = []
            for j in self._ranked_pairs(ci)[:top_concepts]:
                top, bottom = self._examples(ci, j, n_examples)
                concepts.append(self._entry(ci, j, top, bottom) | {"relevant": None})
            if concepts:
                doc["classes"].append({"class": _plain(label), "concepts": concepts})
        if query_file is not None:
            write_text(query_file, json.dumps(doc, indent=2), overwrite=overwrite)
        return doc

    def _entry(self, ci: int, j: int, top: list[int], bottom: list[int]) -> dict[str, Any]:
        return {
            "concept": self.concept_names_[j],
            "gap": float(self.gap_[ci, j]),
            "p_value": float(self.p_value_[ci, j]),
            "p_adjusted": float(self.p_adjusted_[ci, j]),
            "metric_top": float(self.metric_top_[ci, j]),
            "metric_bottom": float(self.metric_bottom_[ci, j]),
            "top_examples": top,
            "bottom_examples": bottom,
        }

    def final_results(
        self,
        feedback_file: str | os.PathLike[str] | None = None,
        *,
        sig_thresh: float = 0.2,
        acc_thresh: float = 0.0,
        n_examples: int = 5,
        display_top_k: int = 4,
        output_file: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        **removed: Any,
    ) -> ConceptBiasResult:
        """The biases that pass the thresholds and the user's review.

        Parameters
        ----------
        feedback_file : path, optional
            The query file with the user's ``"relevant"`` marks, UTF-8 JSON; concepts marked
            true are removed. Without it nothing is removed.
        sig_thresh : float, default 0.2
            Keep pairs with adjusted p-value <= sig_thresh.
        acc_thresh : float, default 0.0
            Keep pairs with ``|gap| > acc_thresh``.
        n_examples : int, default 5
            Example images listed at each end (display only: unlike RELAI's ``top_k`` it does
            not change the gaps, which are measured on the class's `fraction` / `n_images`).
        display_top_k : int, default 4
            Most concepts kept per class (largest |gap| first).
        output_file : path, optional
            Where to save the results as JSON; by default nothing is written. Never the
            `feedback_file` itself.
        overwrite : bool, default False
            Replace an existing `output_file`; without it FileExistsError is raised.

        Returns
        -------
        ConceptBiasResult
            Rows grouped by class (sorted), largest |gap| first within a class.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        FileExistsError
            When `output_file` exists and `overwrite` is False.
        ValueError
            When the feedback file is not UTF-8 JSON, is malformed (the message names the
            JSON path of the problem), or is the `output_file`.
        TypeError
            For ``top_k=``, the former name of `n_examples`; positional arguments after
            `feedback_file`.
        """
        check_renamed(removed, {"top_k": _N_EXAMPLES_NOT_TOP_K}, "ConceptBias.final_results")
        check_is_fitted(self, "gap_")
        sig_thresh = check_real(sig_thresh, "sig_thresh", minimum=0.0)
        acc_thresh = check_real(acc_thresh, "acc_thresh", minimum=0.0)
        n_examples = check_int(n_examples, "n_examples", minimum=1)
        display_top_k = check_int(display_top_k, "display_top_k", minimum=1)
        if output_file is not None:
            check_distinct_files(output_file, feedback_file)
            check_new_file(output_file, overwrite=overwrite, name="output_file")
        marks: dict[tuple[str, str], bool | None] = {}
        if feedback_file is not None:
            marks = self._read_feedback(feedback_file)
        rows: list[tuple[int, int, bool | None]] = []
        for ci, label in enumerate(self.classes_):
            kept = 0
            for j in self._ranked_pairs(ci):
                if kept >= display_top_k:
                    break
                if self.p_adjusted_[ci, j] > sig_thresh or abs(self.gap_[ci, j]) <= acc_thresh:
                    continue
                mark = marks.get((str(label), self.concept_names_[j]))
                if mark is True:
                    continue
                rows.append((ci, j, mark))
                kept += 1
        top = np.full((len(rows), n_examples), -1, dtype=np.int64)
        bottom = np.full((len(rows), n_examples), -1, dtype=np.int64)
        for r, (ci, j, _) in enumerate(rows):
            t_ex, b_ex = self._examples(ci, j, n_examples)
            top[r, : len(t_ex)] = t_ex
            bottom[r, : len(b_ex)] = b_ex
        ci_idx = np.array([r[0] for r in rows], dtype=np.int64)
        j_idx = np.array([r[1] for r in rows], dtype=np.int64)
        result = ConceptBiasResult(
            classes=tuple(self.classes_[ci_idx].tolist()),
            concepts=tuple(self.concept_names_[j] for j in j_idx),
            gap=self.gap_[ci_idx, j_idx],
            metric_top=self.metric_top_[ci_idx, j_idx],
            metric_bottom=self.metric_bottom_[ci_idx, j_idx],
            p_value=self.p_value_[ci_idx, j_idx],
            p_adjusted=self.p_adjusted_[ci_idx, j_idx],
            relevant=tuple(r[2] for r in rows),
            top_examples=top,
            bottom_examples=bottom,
            metric=self.metric_,
        )
        if output_file is not None:
            write_text(output_file, json.dumps(result.to_dict(), indent=2), overwrite=overwrite)
        return result

    def _read_feedback(self, path: str | os.PathLike[str]) -> dict[tuple[str, str], bool | None]:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(
                f"feedback file {p} does not exist; write one with potential_biases() and mark it."
            )
        data = check_feedback_json(p.read_bytes(), str(p))
        return check_concept_feedback(
            data, [str(v) for v in self.classes_], self.concept_names_, str(p)
        )


def _gap_test(
    top: NDArray[np.float64], bottom: NDArray[np.float64], test: str, n_threads: int
) -> NDArray[np.float64]:
    """Two-sided p of the top against the bottom images for every concept: rows of top / bottom."""
    c, k = top.shape
    n = np.full(c, k, dtype=np.int64)
    if test in ("z", "fisher"):
        x1 = np.rint(top.sum(axis=1)).astype(np.int64)
        x2 = np.rint(bottom.sum(axis=1)).astype(np.int64)
        if test == "z":
            return np.asarray(_core.two_proportion_ztest(x1, n, x2, n, n_threads)[1])
        return np.asarray(_core.fisher_exact_2x2(x1, n - x1, x2, n - x2, n_threads))
    ddof = 1 if k > 1 else 0
    v1 = np.ascontiguousarray(top.var(axis=1, ddof=ddof))
    v2 = np.ascontiguousarray(bottom.var(axis=1, ddof=ddof))
    m1 = np.ascontiguousarray(top.mean(axis=1))
    m2 = np.ascontiguousarray(bottom.mean(axis=1))
    return np.asarray(_core.welch_ttest(m1, v1, n, m2, v2, n, n_threads)[2])
