"""Familiarity: a density model of embeddings, and how familiar each sample is under it.

Follows DeepView's Familiarity (a Gaussian mixture fitted to a layer's embeddings; every
sample scored by its log-likelihood): rare data, label errors and edge cases score low, and a
second dataset scored against the first shows a distribution gap (train vs test, real vs
synthetic, old vs new batch). The mixture is :class:`Familiarity`, fitted in the compiled
core; any density model with ``fit`` and ``score_samples`` (e.g. scikit-learn's
``KernelDensity``) can take its place through the :class:`DensityStrategy` protocol.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ._gmm import COVARIANCE_TYPES, ConvergenceWarning, Familiarity
from ._results import ResultBase, _frame
from ._validation import (
    check_choice,
    check_int,
    check_labels,
    check_random_state,
    check_samples,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ClassComparison",
    "ClassFamiliarity",
    "ConvergenceWarning",
    "DatasetComparison",
    "DensityStrategy",
    "Familiarity",
    "FamiliarityResult",
    "compare_datasets",
    "familiarity",
    "likelihood_ratio_band",
]


@runtime_checkable
class DensityStrategy(Protocol):
    """A density model the analyses can fit and score with.

    ``fit(X)`` learns from an (n, d) array; ``score_samples(X)`` returns the log-density of
    each row, shape (n,). :class:`Familiarity` and scikit-learn's ``GaussianMixture`` and
    ``KernelDensity`` qualify. The analyses fit deep copies of the object given, never the
    object itself.
    """

    def fit(self, X: Any) -> Any: ...

    def score_samples(self, X: Any) -> Any: ...


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ClassFamiliarity(ResultBase):
    """Per-class density models and every sample scored under each of them.

    Attributes
    ----------
    labels : ndarray, shape (n_classes,)
        The distinct labels, sorted.
    count : ndarray of int64, shape (n_classes,)
        Samples per class.
    modelled : ndarray of bool, shape (n_classes,)
        False for classes with fewer than ``min_class_size`` samples: no model was fitted and
        their column of ``class_scores`` is NaN.
    class_scores : ndarray of float64, shape (n_samples, n_classes)
        Log-likelihood of every sample under every class's model.
    own_scores : ndarray of float64, shape (n_samples,)
        Each sample under its own class's model (NaN when that class was not modelled).
    sample_labels : ndarray, shape (n_samples,)
        The label of every sample, as given.
    min_class_size : int
        Fewest samples a class needed for a model.
    """

    labels: NDArray[Any]
    count: NDArray[np.int64]
    modelled: NDArray[np.bool_]
    class_scores: NDArray[np.float64]
    own_scores: NDArray[np.float64]
    sample_labels: NDArray[Any]
    min_class_size: int

    def _column(self, label: Any) -> int:
        hits = np.flatnonzero(self.labels == label)
        if hits.size == 0:
            raise ValueError(f"label {label!r} is not one of {self.labels.tolist()}.")
        return int(hits[0])

    def most_like(self, of_label: Any, like_label: Any, n: int = 5) -> NDArray[np.int64]:
        """Samples of class `of_label` that look most like class `like_label`.

        E.g. ``most_like(3, 5)``: the most five-like threes, ordered by their log-likelihood
        under the model of class 5, highest first.

        Returns
        -------
        ndarray of int64, shape (min(n, count of of_label),)
            Sample indices.
        """
        n = check_int(n, "n", minimum=1)
        col = self._column(like_label)
        self._column(of_label)
        if not self.modelled[col]:
            raise ValueError(
                f"class {like_label!r} has {int(self.count[col])} samples, fewer than "
                f"min_class_size={self.min_class_size}, so it has no model."
            )
        members = np.flatnonzero(self.sample_labels == of_label)
        scores = self.class_scores[members, col]
        order = np.argsort(-scores, kind="stable")[:n]
        return members[order].astype(np.int64)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per class: label, count, modelled, mean_own_score."""
        means = np.full(self.labels.shape[0], np.nan)
        for c in range(self.labels.shape[0]):
            own = self.own_scores[self.sample_labels == self.labels[c]]
            if self.modelled[c] and own.size:
                means[c] = own.mean()
        return _frame(
            {
                "label": self.labels,
                "count": self.count,
                "modelled": self.modelled,
                "mean_own_score": means,
            }
        )


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class FamiliarityResult(ResultBase):
    """Result of :func:`familiarity`.

    Attributes
    ----------
    scores : ndarray of float64, shape (n_samples,)
        Log-likelihood of every sample under the model of the whole dataset; low is
        unfamiliar.
    least_familiar : ndarray of int64, shape (n_extremes,)
        Indices of the lowest scores, lowest first (ties: lower index first).
    most_familiar : ndarray of int64, shape (n_extremes,)
        Indices of the highest scores (the most representative samples), highest first.
    strategy : str
        The density model used.
    per_class : ClassFamiliarity or None
        Per-class models when labels were given.
    """

    scores: NDArray[np.float64]
    least_familiar: NDArray[np.int64]
    most_familiar: NDArray[np.int64]
    strategy: str
    per_class: ClassFamiliarity | None = None

    def to_dataframe(self) -> pd.DataFrame:
        """One row per sample: index, score, rank (1 = least familiar) and, with labels,
        label and own_class_score."""
        n = self.scores.shape[0]
        rank = np.empty(n, dtype=np.int64)
        rank[np.argsort(self.scores, kind="stable")] = np.arange(1, n + 1)
        cols: dict[str, Any] = {"index": np.arange(n), "score": self.scores, "rank": rank}
        if self.per_class is not None:
            cols["label"] = self.per_class.sample_labels
            cols["own_class_score"] = self.per_class.own_scores
        return _frame(cols)


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ClassComparison(ResultBase):
    """:func:`compare_datasets` per class.

    Attributes
    ----------
    labels : ndarray, shape (n_classes,)
        Labels seen in either dataset, sorted.
    n_fit, n_predict : ndarray of int64, shape (n_classes,)
        Samples of the class in each dataset.
    compared : ndarray of bool, shape (n_classes,)
        False where the fit set has fewer than ``min_class_size`` samples of the class or the
        predict set has none; the other columns are NaN (band "not compared") there.
    likelihood_ratio, loglik_ratio, loglik_difference_per_dim, fraction_below_p1, \
fraction_below_p5 : ndarray of float64, shape (n_classes,)
        As in :class:`DatasetComparison`, within the class.
    band : ndarray of str, shape (n_classes,)
    ratio_meaningful : ndarray of bool, shape (n_classes,)
    """

    labels: NDArray[Any]
    n_fit: NDArray[np.int64]
    n_predict: NDArray[np.int64]
    compared: NDArray[np.bool_]
    likelihood_ratio: NDArray[np.float64]
    band: NDArray[np.str_]
    ratio_meaningful: NDArray[np.bool_]
    loglik_ratio: NDArray[np.float64]
    loglik_difference_per_dim: NDArray[np.float64]
    fraction_below_p1: NDArray[np.float64]
    fraction_below_p5: NDArray[np.float64]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per class with every column above."""
        return _frame({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class DatasetComparison(ResultBase):
    """Result of :func:`compare_datasets`: how familiar a dataset Dp is to a model of Df.

    Attributes
    ----------
    fit_mean_loglik : float
        F(Df, Df): mean log-likelihood of Df out of sample (each sample under the model of the
        folds without it).
    predict_mean_loglik : float
        F(Df, Dp): mean log-likelihood of Dp under the models of Df (averaged over the folds).
    likelihood_ratio : float
        L(f->p) = exp((med F(Df, Dp) - med F(Df, Df)) / d), d the model's dimension, medians of
        the out-of-sample log-likelihoods: how likely Dp is under the model of Df relative to
        Df itself, as a ratio of likelihoods per dimension (the geometric mean over
        dimensions). About 1 without a gap, falling towards 0 as Dp moves away, above 1 only
        when Dp sits where Df is denser (Dp more concentrated than Df). The same in any
        units: scaling the embeddings by a shifts every log-likelihood by ``-d log(a)``, which
        cancels. See Notes of :func:`compare_datasets` for why it replaces DeepView's literal
        formula, and why medians.
    band : str
        DeepView's bands read on L: "huge gap" (< 0.6), "small gap" (0.6 to 0.8), "no
        significant gap" (0.8 to 1.2), "gap" (> 1.2: Dp more concentrated than Df); "not
        meaningful" when a median log-likelihood is infinite.
    ratio_meaningful : bool
        False only when a median log-likelihood is infinite (many samples of zero density).
    note : str
        What the ratio means, in words.
    loglik_ratio : float
        DeepView's literal F(Df, Dp) / F(Df, Df), a ratio of mean log-likelihoods; it depends
        on the units of the embeddings and reads backwards when they are negative (a less
        familiar Dp gives a ratio above 1). Kept for comparison with DeepView's numbers.
    loglik_difference_per_dim : float
        ``(med F(Df, Dp) - med F(Df, Df)) / d`` = ``log(likelihood_ratio)``: about 0 without a
        gap, negative when Dp is less familiar.
    fraction_below_p1, fraction_below_p5 : float
        Fraction of Dp scoring below Df's own 1st / 5th percentile score; about 0.01 / 0.05
        without a gap, larger with one.
    n_fit, n_predict, n_features_model : int
        Rows of Df and Dp; the dimension the log-likelihoods are densities in.
    fit_scores : ndarray of float64, shape (n_fit,)
        Out-of-sample log-likelihoods of Df.
    predict_scores : ndarray of float64, shape (n_predict,)
        Log-likelihoods of Dp, the mean over the fold models.
    per_class : ClassComparison or None
        Per class when both datasets have labels.
    """

    fit_mean_loglik: float
    predict_mean_loglik: float
    likelihood_ratio: float
    band: str
    ratio_meaningful: bool
    note: str
    loglik_ratio: float
    loglik_difference_per_dim: float
    fraction_below_p1: float
    fraction_below_p5: float
    n_fit: int
    n_predict: int
    n_features_model: int
    fit_scores: NDArray[np.float64]
    predict_scores: NDArray[np.float64]
    per_class: ClassComparison | None = None

    def to_dataframe(self) -> pd.DataFrame:
        """One row of the summary numbers (no score arrays)."""
        skip = {"fit_scores", "predict_scores", "per_class"}
        return _frame(
            {
                f.name: [getattr(self, f.name)]
                for f in dataclasses.fields(self)
                if f.name not in skip
            }
        )


# --------------------------------------------------------------------------- helpers


def likelihood_ratio_band(ratio: float) -> str:
    """DeepView's reading of L(f->p): "huge gap", "small gap", "no significant gap", "gap"."""
    if not np.isfinite(ratio):
        return "not meaningful"
    if ratio < 0.6:
        return "huge gap"
    if ratio < 0.8:
        return "small gap"
    if ratio <= 1.2:
        return "no significant gap"
    return "gap"


def _strategy(
    strategy: Any,
    n_components: int,
    covariance_type: str,
    reduce_dim: int | None,
    random_state: Any,
    n_jobs: int | None,
) -> Any:
    if strategy is None:
        check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
        return Familiarity(
            n_components=n_components,
            covariance_type=covariance_type,
            reduce_dim=reduce_dim,
            random_state=random_state,
            n_jobs=n_jobs,
        )
    if not isinstance(strategy, DensityStrategy):
        raise TypeError(
            "strategy must be a density model with fit(X) and score_samples(X) methods, e.g. "
            f"sklearn.neighbors.KernelDensity(); got {type(strategy).__name__}."
        )
    return strategy


def _fit_score(proto: Any, fit_x: NDArray[Any], *score_on: NDArray[Any]) -> list[Any]:
    model = copy.deepcopy(proto)
    model.fit(fit_x)
    out = []
    for x in score_on:
        s = np.asarray(model.score_samples(x), dtype=np.float64)
        if s.shape != (x.shape[0],):
            raise ValueError(
                f"strategy.score_samples returned shape {s.shape}, expected ({x.shape[0]},): "
                "one log-density per row."
            )
        out.append(s)
    return out


def _model_dim(proto: Any, d: int) -> int:
    rd = getattr(proto, "reduce_dim", None)
    if isinstance(proto, Familiarity) and rd is not None and d > int(rd):
        return int(rd)
    return d


def _fold_minimum(proto: Any, n_folds: int | None) -> int:
    """The fewest samples a fit set may have: the mixture's components, in the other folds
    of every fold when the fit is cross-fitted over `n_folds`."""
    k = int(getattr(proto, "n_components", 1)) if isinstance(proto, Familiarity) else 1
    if n_folds is None:
        return k
    return max(n_folds, math.ceil(k * n_folds / (n_folds - 1)))


def _min_class_size(value: Any, proto: Any, n_folds: int | None = None) -> int:
    need = _fold_minimum(proto, n_folds)
    if value is None:
        return max(10, need)
    out = check_int(value, "min_class_size", minimum=1)
    if out < need:
        k = getattr(proto, "n_components", 1)
        where = "" if n_folds is None else f" in the other folds of each of the {n_folds} folds"
        raise ValueError(
            f"min_class_size={out} is too small: a mixture of {k} components needs at least "
            f"{k} samples{where}. Use min_class_size >= {need}."
        )
    return out


def _cross_fit_score(
    proto: Any, fit_x: NDArray[Any], pred_x: NDArray[Any], n_folds: int, seed: Any
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Held-out scores of the fit set (each row scored by the model of the folds without it)
    and the predict set's scores averaged over the same fold models."""
    n = fit_x.shape[0]
    folds = np.random.default_rng(seed).permutation(n) % n_folds
    fit_scores = np.empty(n, dtype=np.float64)
    pred_scores = np.zeros(pred_x.shape[0], dtype=np.float64)
    for j in range(n_folds):
        out = folds == j
        held, pred = _fit_score(proto, np.ascontiguousarray(fit_x[~out]), fit_x[out], pred_x)
        fit_scores[out] = held
        pred_scores += pred
    return fit_scores, pred_scores / n_folds


def _name(proto: Any) -> str:
    return repr(proto)


# --------------------------------------------------------------------------- analyses


def familiarity(
    embeddings: Any,
    labels: Any = None,
    *,
    strategy: Any = None,
    n_components: int = 5,
    covariance_type: str = "diag",
    reduce_dim: int | None = None,
    min_class_size: int | None = None,
    n_extremes: int = 10,
    random_state: Any = 0,
    n_jobs: int | None = None,
) -> FamiliarityResult:
    """Score every sample by how familiar it is under a density model of the dataset.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        Finite real numbers; float64 stays float64, other dtypes become float32.
    labels : array-like of shape (n_samples,), optional
        Classes; adds one model per class and every sample scored under each.
    strategy : DensityStrategy, optional
        Density model with ``fit`` and ``score_samples``; default a :class:`Familiarity`
        built from the next four parameters (which are ignored when a strategy is given).
    n_components, covariance_type, reduce_dim, random_state, n_jobs
        Parameters of the default :class:`Familiarity`; `random_state` defaults to 0 here (the
        same answer on every call, as everywhere in datagauge's analyses; None draws fresh
        entropy).
    min_class_size : int, optional
        Classes with fewer samples get no model (reported in ``per_class.modelled``);
        default ``max(10, n_components)``.
    n_extremes : int, default 10
        Length of the least / most familiar lists (at most n_samples).

    Returns
    -------
    FamiliarityResult

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> x = np.random.default_rng(0).normal(size=(300, 3))
    >>> res = datagauge.familiarity(x, n_components=2, random_state=0, n_extremes=3)
    >>> res.least_familiar.shape
    (3,)
    """
    x = check_samples(embeddings, name="embeddings")
    n = x.shape[0]
    y = None if labels is None else check_labels(labels, n)
    proto = _strategy(strategy, n_components, covariance_type, reduce_dim, random_state, n_jobs)
    m = min(check_int(n_extremes, "n_extremes", minimum=1), n)
    min_size = _min_class_size(min_class_size, proto) if y is not None else 0

    (scores,) = _fit_score(proto, x, x)
    order = np.argsort(scores, kind="stable")
    least = order[:m].astype(np.int64)
    most = np.argsort(-scores, kind="stable")[:m].astype(np.int64)

    per_class = None
    if y is not None:
        classes, inverse = np.unique(y, return_inverse=True)
        count = np.bincount(inverse, minlength=classes.size).astype(np.int64)
        modelled = count >= min_size
        class_scores = np.full((n, classes.size), np.nan)
        for c in np.flatnonzero(modelled):
            members = np.flatnonzero(inverse == c)
            (class_scores[:, c],) = _fit_score(proto, np.ascontiguousarray(x[members]), x)
        own = class_scores[np.arange(n), inverse]
        per_class = ClassFamiliarity(
            labels=classes,
            count=count,
            modelled=modelled,
            class_scores=class_scores,
            own_scores=own,
            sample_labels=y,
            min_class_size=min_size,
        )
    return FamiliarityResult(
        scores=scores,
        least_familiar=least,
        most_familiar=most,
        strategy=_name(proto),
        per_class=per_class,
    )


def _gap(
    fit_scores: NDArray[np.float64], pred_scores: NDArray[np.float64], dim: int
) -> dict[str, Any]:
    """The gap measures of :func:`compare_datasets` from the two sets' scores under the model
    of the fit set (dimension `dim`)."""
    f_ff = float(np.mean(fit_scores))
    f_fp = float(np.mean(pred_scores))
    med_f, med_p = float(np.median(fit_scores)), float(np.median(pred_scores))
    finite = bool(np.isfinite(med_f) and np.isfinite(med_p))
    per_dim = (med_p - med_f) / dim if finite else float("nan")
    if finite:
        ratio = math.exp(min(per_dim, 700.0))  # exp(700) is still a float; beyond, a huge gap
        note = (
            "L(f->p) = exp((med F(Df, Dp) - med F(Df, Df)) / d), log-likelihoods out of sample: "
            "the likelihood ratio of the two sets per dimension (a geometric mean), the same in "
            "any units of the embeddings; below 1 the predict set is less familiar than the fit "
            "set itself, above 1 it sits where the fit set is denser"
        )
    else:
        ratio = float("nan")
        note = "a median log-likelihood is infinite (many samples have zero density)"
    with np.errstate(divide="ignore", invalid="ignore"):
        literal = f_fp / f_ff if f_ff != 0 else float("nan")
    p1, p5 = np.percentile(fit_scores, [1, 5])
    return {
        "f_ff": f_ff,
        "f_fp": f_fp,
        "ratio": float(ratio),
        "loglik_ratio": float(literal),
        "meaningful": finite,
        "band": likelihood_ratio_band(ratio) if finite else "not meaningful",
        "note": note,
        "diff": per_dim,
        "below_p1": float(np.mean(pred_scores < p1)),
        "below_p5": float(np.mean(pred_scores < p5)),
    }


def compare_datasets(
    fit_embeddings: Any,
    predict_embeddings: Any,
    *,
    fit_labels: Any = None,
    predict_labels: Any = None,
    strategy: Any = None,
    n_components: int = 5,
    covariance_type: str = "diag",
    reduce_dim: int | None = None,
    min_class_size: int | None = None,
    n_folds: int = 5,
    random_state: Any = 0,
    n_jobs: int | None = None,
) -> DatasetComparison:
    """How familiar dataset Dp is to a density model of dataset Df (a distribution gap).

    Fits the model on Df (cross-fitted: one model per fold of Df, fitted on the other folds),
    scores both sets out of sample, and reports the likelihood ratio
    L(f->p) = exp((med F(Df, Dp) - med F(Df, Df)) / d) with DeepView's bands, the median
    log-likelihood difference per dimension and the fraction of Dp below Df's 1st / 5th
    percentile score; F(Df, D) are the log-likelihoods of the samples of D under the models
    of Df, d the model's dimension.

    Parameters
    ----------
    fit_embeddings : array-like of shape (n_fit, n_features)
        Df, e.g. the training set.
    predict_embeddings : array-like of shape (n_predict, n_features)
        Dp, e.g. the test set, synthetic data or a new batch; same features.
    fit_labels, predict_labels : array-like, optional
        Classes of each dataset; both given, adds a per-class comparison (class c of Dp
        against a model of class c of Df).
    strategy : DensityStrategy, optional
        Density model; default a :class:`Familiarity` from the next parameters.
    n_components, covariance_type, reduce_dim, random_state, n_jobs
        Parameters of the default :class:`Familiarity`; `random_state` defaults to 0 here, and
        also draws the folds (the same answer on every call; None draws fresh entropy).
    min_class_size : int, optional
        Classes of Df with fewer samples are not compared; default ``max(10, ceil(n_components
        * n_folds / (n_folds - 1)))``, so that every fold's model has its components.
    n_folds : int, default 5
        Folds of Df (at least 2, at most n_fit). Each sample of Df is scored by the model fitted
        without it, and each sample of Dp by every fold's model (the mean of the
        log-likelihoods), so the two sets are judged alike; folds drawn with `random_state`.

    Returns
    -------
    DatasetComparison

    Notes
    -----
    DeepView divides the two mean log-likelihoods, L = F(Df, Dp) / F(Df, Df), and reads it
    with bands that suppose a value that shrinks as the model of Df explains Dp worse. A ratio
    of log-likelihoods does not behave so: when both are negative (the usual case) a less
    familiar Dp makes the numerator more negative and the ratio larger (a 30-sigma shift of
    10-d Gaussians gave 322, read "gap"; a denser Dp 0.68, "small gap"), and the value changes
    with the units of the embeddings, since scaling them by a adds ``-d log(a)`` to every
    log-likelihood. Here L is a ratio of likelihoods instead: the exponential of the
    log-likelihood difference, divided by d so that a band means the same at d = 8 and
    d = 512 (for Gaussians, a shift of s standard deviations in one direction gives about
    L = exp(-s^2 / (2 d))). It is about 1 for two samples of one distribution, falls
    monotonically as Dp moves away, does not change with the units, and exceeds 1 only where
    Dp is more concentrated than Df. DeepView's literal number stays available as
    ``loglik_ratio`` (of the out-of-sample means).

    Two choices keep L about 1 for one distribution on real embeddings:

    - Df is scored out of sample (cross-fitting). In-sample log-likelihoods are higher than
      out-of-sample ones by the model's overfit, which made two random halves of the 8x8
      digits read L = 0.6 to 0.8, a "huge" or "small gap".
    - L compares medians, not means. Embeddings with nearly constant features (pixels that
      are always 0 in Df) give the rare sample off such a feature a log-likelihood of -1e5
      or less, and one such sample moves a mean by orders of magnitude: on the digits the
      ratio of means swung from 1e-44 to 1e4 between random halves of one class. The fraction
      of Dp below Df's 1st / 5th percentile reports the tail the median ignores (a gap in a
      small part of Dp).
    """
    xf = check_samples(fit_embeddings, name="fit_embeddings")
    xp = check_samples(predict_embeddings, name="predict_embeddings")
    if xp.shape[1] != xf.shape[1]:
        raise ValueError(
            f"predict_embeddings has {xp.shape[1]} features but fit_embeddings has "
            f"{xf.shape[1]}; compare embeddings from the same model and layer."
        )
    if (fit_labels is None) != (predict_labels is None):
        raise ValueError(
            "pass both fit_labels and predict_labels for a per-class comparison, or neither."
        )
    yf = None if fit_labels is None else check_labels(fit_labels, xf.shape[0], name="fit_labels")
    yp = (
        None
        if predict_labels is None
        else check_labels(predict_labels, xp.shape[0], name="predict_labels")
    )
    proto = _strategy(strategy, n_components, covariance_type, reduce_dim, random_state, n_jobs)
    dim = _model_dim(proto, xf.shape[1])
    n_folds = check_int(n_folds, "n_folds", minimum=2)
    min_size = _min_class_size(min_class_size, proto, n_folds)
    need = _fold_minimum(proto, n_folds)
    if xf.shape[0] < need:
        k = getattr(proto, "n_components", 1)
        raise ValueError(
            f"n_components={k} needs at least {k} samples in the other folds of each of the "
            f"{n_folds} folds (each fold's model is fitted on them), so {need} in "
            f"fit_embeddings, which has {xf.shape[0]}; add samples, or lower n_folds or "
            "n_components."
        )
    seed = check_random_state(random_state)

    fit_scores, pred_scores = _cross_fit_score(proto, xf, xp, n_folds, seed)
    g = _gap(fit_scores, pred_scores, dim)

    per_class = None
    if yf is not None and yp is not None:
        if yf.dtype.kind != yp.dtype.kind and {yf.dtype.kind, yp.dtype.kind} & {"U", "S"}:
            raise TypeError(
                "fit_labels and predict_labels must be of the same kind (both strings or both "
                f"numbers), got {yf.dtype} and {yp.dtype}."
            )
        classes = np.unique(np.concatenate([yf, yp]))
        c = classes.size
        n_fit = np.array([(yf == lab).sum() for lab in classes], dtype=np.int64)
        n_pred = np.array([(yp == lab).sum() for lab in classes], dtype=np.int64)
        compared = (n_fit >= min_size) & (n_pred > 0)
        names = ("ratio", "loglik_ratio", "diff", "below_p1", "below_p5")
        cols = {k: np.full(c, np.nan) for k in names}
        band = np.full(c, "not compared", dtype=object)
        meaningful = np.zeros(c, dtype=bool)
        for i in np.flatnonzero(compared):
            f_x = np.ascontiguousarray(xf[yf == classes[i]])
            p_x = np.ascontiguousarray(xp[yp == classes[i]])
            fs, ps = _cross_fit_score(proto, f_x, p_x, n_folds, seed)
            gi = _gap(fs, ps, dim)
            for name in names:
                cols[name][i] = gi[name]
            band[i] = gi["band"]
            meaningful[i] = gi["meaningful"]
        per_class = ClassComparison(
            labels=classes,
            n_fit=n_fit,
            n_predict=n_pred,
            compared=compared,
            likelihood_ratio=cols["ratio"],
            band=band.astype(str),
            ratio_meaningful=meaningful,
            loglik_ratio=cols["loglik_ratio"],
            loglik_difference_per_dim=cols["diff"],
            fraction_below_p1=cols["below_p1"],
            fraction_below_p5=cols["below_p5"],
        )
    return DatasetComparison(
        fit_mean_loglik=g["f_ff"],
        predict_mean_loglik=g["f_fp"],
        likelihood_ratio=g["ratio"],
        band=g["band"],
        ratio_meaningful=g["meaningful"],
        note=g["note"],
        loglik_ratio=g["loglik_ratio"],
        loglik_difference_per_dim=g["diff"],
        fraction_below_p1=g["below_p1"],
        fraction_below_p5=g["below_p5"],
        n_fit=int(xf.shape[0]),
        n_predict=int(xp.shape[0]),
        n_features_model=dim,
        fit_scores=fit_scores,
        predict_scores=pred_scores,
        per_class=per_class,
    )
