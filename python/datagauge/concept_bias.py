"""Concept bias per class: concepts whose presence changes how well a model does on a class.

For every class and concept, the class's images are ranked by the concept's score; the
spurious gap is the metric (accuracy or mean confidence) on the top-k images minus the metric
on the bottom-k (Spuriosity Rankings, Moayeri et al. 2023; RELAI's AnalyzeBias). A large gap
means the model's success on the class depends on the concept. Whether that is a bias or the
class itself (wheels for "car") is the user's call: :meth:`ConceptBias.potential_biases`
writes a JSON query file, the user marks each concept, and :meth:`ConceptBias.final_results`
keeps the confirmed ones.
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
    check_concept_feedback,
    check_embeddings,
    check_int,
    check_labels,
    check_outcome,
    check_real,
)
from .bias import adjust_pvalues

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ConceptBias", "ConceptBiasResult"]


@dataclass(frozen=True, slots=True, repr=False)
class ConceptBiasResult(ResultBase):
    """Confirmed (or not yet reviewed) concept biases, from :meth:`ConceptBias.final_results`.

    Attributes
    ----------
    classes : tuple
        Class of each row.
    concepts : tuple of str
        Concept of each row.
    gap : ndarray of float64, shape (m,)
        Metric on the class's top-k images by concept score minus the metric on its bottom-k.
    metric_top, metric_bottom : ndarray of float64, shape (m,)
    p_value, p_adjusted : ndarray of float64, shape (m,)
        Two-sided test of top-k against bottom-k, and after the correction over every
        (class, concept) pair.
    relevant : tuple of (bool or None)
        The user's mark: False (confirmed spurious) or None (not reviewed). Concepts marked
        True (relevant to the class) are removed.
    top_examples, bottom_examples : ndarray of int64, shape (m, top_k)
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
    k : int or float, default 0.2
        Images at each end of a class's ranking: a fraction of the class (float in (0, 0.5])
        or a count (int >= 1); at most half the class, so the ends never overlap.
    metric : {"accuracy", "confidence"}, default "accuracy"
    test : {"z", "fisher", "welch"}, optional
        Test of top-k against bottom-k; default "z" for accuracy, "welch" for confidence.
    correction : {"bh", "bonferroni", "holm", "none"}, default "bh"
        Over every (class, concept) pair.
    n_jobs : int or None
        Threads for the tests.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Sorted distinct labels.
    concept_names_ : list of str
    gap_, metric_top_, metric_bottom_, p_value_, p_adjusted_ : ndarray of float64
        Shape (n_classes, n_concepts); NaN gap (and p = 1) for classes with fewer than 2
        images.
    k_ : ndarray of int64, shape (n_classes,)
        Images at each end, per class.

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
    of the file count as not reviewed. A malformed file raises ValueError naming the file and
    the JSON path of the problem.

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, 900)
    >>> scores = rng.random((900, 4))
    >>> correct = ~((labels == 1) & (scores[:, 2] > 0.6) & (rng.random(900) < 0.8))
    >>> cb = datagauge.ConceptBias().fit(labels, correct, scores=scores)
    >>> res = cb.final_results(output_file=None)
    >>> res.classes[0], res.concepts[0]
    (1, 'concept2')
    """

    def __init__(
        self,
        *,
        k: int | float = 0.2,
        metric: Literal["accuracy", "confidence"] = "accuracy",
        test: Literal["z", "fisher", "welch"] | None = None,
        correction: Literal["bh", "bonferroni", "holm", "none"] = "bh",
        n_jobs: int | None = None,
    ) -> None:
        self.k = k
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
            kc = self._k_for(members.size)
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
        self.k_ = ks
        self.metric_ = metric
        self._order = order
        return self

    def _k_for(self, size: int) -> int:
        k = self.k
        if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
            raise TypeError(f"k must be an int (images) or a float fraction, got {k!r}.")
        if isinstance(k, (float, np.floating)):
            if not 0 < k <= 0.5:
                raise ValueError(f"k as a fraction must be in (0, 0.5], got {k}.")
            want = max(1, int(k * size))
        else:
            want = check_int(int(k), "k", minimum=1)
        return min(want, size // 2)

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

    def _check_fitted(self) -> None:
        if not hasattr(self, "gap_"):
            raise RuntimeError("this ConceptBias is not fitted yet; call fit(...) first.")

    def _examples(self, ci: int, j: int, top_k: int) -> tuple[list[int], list[int]]:
        ranking = self._order[ci][j]
        kk = min(top_k, ranking.size)
        return ranking[:kk].tolist(), ranking[::-1][:kk].tolist()

    def _ranked_pairs(self, ci: int) -> list[int]:
        g = self.gap_[ci]
        ok = np.flatnonzero(np.isfinite(g))
        return sorted(ok.tolist(), key=lambda j: (-abs(g[j]), self.p_value_[ci, j], j))

    # ------------------------------------------------------------------ review

    def potential_biases(
        self,
        top_concepts: int = 4,
        top_k: int = 5,
        query_file: str | os.PathLike[str] | None = "concept_bias_query.json",
    ) -> dict[str, Any]:
        """The top concepts of each class by |gap|, with example images, as a query for review.

        Parameters
        ----------
        top_concepts : int, default 4
            Concepts listed per class.
        top_k : int, default 5
            Example images at each end of each ranking.
        query_file : path or None, default "concept_bias_query.json"
            Where to write the query (see the class Notes for the format); None writes nothing.

        Returns
        -------
        dict
            The query document (the file's content).
        """
        self._check_fitted()
        top_concepts = check_int(top_concepts, "top_concepts", minimum=1)
        top_k = check_int(top_k, "top_k", minimum=1)
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
                top, bottom = self._examples(ci, j, top_k)
                concepts.append(self._entry(ci, j, top, bottom) | {"relevant": None})
            if concepts:
                doc["classes"].append({"class": _plain(label), "concepts": concepts})
        if query_file is not None:
            write_text(query_file, json.dumps(doc, indent=2))
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
        sig_thresh: float = 0.2,
        acc_thresh: float = 0.0,
        top_k: int = 5,
        display_top_k: int = 4,
        output_file: str | os.PathLike[str] | None = "concept_bias_results.json",
    ) -> ConceptBiasResult:
        """The biases that pass the thresholds and the user's review.

        Parameters
        ----------
        feedback_file : path, optional
            The query file with the user's ``"relevant"`` marks; concepts marked true are
            removed. Without it nothing is removed.
        sig_thresh : float, default 0.2
            Keep pairs with adjusted p-value <= sig_thresh.
        acc_thresh : float, default 0.0
            Keep pairs with ``|gap| > acc_thresh``.
        top_k : int, default 5
            Example images at each end.
        display_top_k : int, default 4
            Most concepts kept per class (largest |gap| first).
        output_file : path or None, default "concept_bias_results.json"
            Where to save the results as JSON; None saves nothing.

        Returns
        -------
        ConceptBiasResult
            Rows grouped by class (sorted), largest |gap| first within a class.
        """
        self._check_fitted()
        sig_thresh = check_real(sig_thresh, "sig_thresh", minimum=0.0)
        acc_thresh = check_real(acc_thresh, "acc_thresh", minimum=0.0)
        top_k = check_int(top_k, "top_k", minimum=1)
        display_top_k = check_int(display_top_k, "display_top_k", minimum=1)
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
        top = np.full((len(rows), top_k), -1, dtype=np.int64)
        bottom = np.full((len(rows), top_k), -1, dtype=np.int64)
        for r, (ci, j, _) in enumerate(rows):
            t_ex, b_ex = self._examples(ci, j, top_k)
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
            write_text(output_file, json.dumps(result.to_dict(), indent=2))
        return result

    def _read_feedback(self, path: str | os.PathLike[str]) -> dict[tuple[str, str], bool | None]:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(
                f"feedback file {p} does not exist; write one with potential_biases() and mark it."
            )
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"feedback file {p} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg})."
            ) from exc
        return check_concept_feedback(
            data, [str(v) for v in self.classes_], self.concept_names_, str(p)
        )


def _gap_test(
    top: NDArray[np.float64], bottom: NDArray[np.float64], test: str, n_threads: int
) -> NDArray[np.float64]:
    """Two-sided p of top-k against bottom-k for every concept: rows of top / bottom."""
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
