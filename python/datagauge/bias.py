"""Bias discovery: the groups of images on which a model does significantly worse (or better).

:func:`find_biases` searches every combination of up to four tags (metadata values, tagger
outputs, thresholded concept scores) exhaustively in the compiled core: tags are bit-packed,
subgroup counts come from AND + popcount, and combinations whose support falls below
``min_support`` are pruned with all their supersets. Each subgroup's metric is compared with
the rest of the data by a two-sample test, corrected for the number of subgroups tested.

:class:`ConceptBias` (in :mod:`datagauge.concept_bias`) looks for concepts that drive errors
within one class.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from . import _core
from ._results import ResultBase, _frame, _plain
from ._threads import MAX_THREADS, resolve_n_jobs
from ._validation import (
    check_choice,
    check_int,
    check_n_threads,
    check_outcome,
    check_pvalues,
    check_real,
    check_tags,
    check_unit_fraction,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_COMBINATION_SIZE",
    "MAX_TAG_COLUMNS",
    "BiasReport",
    "adjust_pvalues",
    "find_biases",
    "pack_bits",
]

#: Longest tag combination the search enumerates (``max_tags`` is 1..this).
MAX_COMBINATION_SIZE: int = int(_core.MAX_SUBGROUP_TAGS)
#: Most tag columns :func:`find_biases` accepts (after one-hot encoding a DataFrame).
MAX_TAG_COLUMNS: int = int(_core.MAX_TAG_COLUMNS)

_TESTS = ("z", "fisher", "welch")
_CORRECTIONS = ("bh", "bonferroni", "holm", "none")
_METRICS = ("accuracy", "confidence")


# --------------------------------------------------------------------------- helpers


def pack_bits(columns: NDArray[np.bool_], n_threads: int = 0) -> NDArray[np.uint64]:
    """Bit-pack the columns of a boolean (n, t) matrix into uint64 words.

    Parameters
    ----------
    columns : array-like of bool, shape (n, t) or (n,)
    n_threads : int, default 0
        Threads; 0 for every CPU.

    Returns
    -------
    ndarray of uint64, shape (t, ceil(n / 64))
        Bit ``b`` of word ``w`` of row ``j`` is ``columns[64 * w + b, j]``; bits past n are 0.
    """
    n_threads = check_n_threads(n_threads, MAX_THREADS)
    cols = np.asarray(columns, dtype=bool)
    if cols.ndim == 1:
        cols = cols[:, None]
    cols = np.ascontiguousarray(cols)
    packed: NDArray[np.uint64] = _core.pack_columns(cols.view(np.uint8), n_threads)
    return packed


def adjust_pvalues(p: Any, method: str = "bh") -> NDArray[np.float64]:
    """Multiple-testing correction of a vector of p-values.

    Parameters
    ----------
    p : array-like of float, shape (m,)
        Raw p-values in [0, 1]. NaN is refused (ValueError), as
        ``scipy.stats.false_discovery_control`` refuses it (statsmodels' ``multipletests``
        instead returns NaN everywhere): for tests that were not run, adjust the others and
        put NaN back, ``out = np.full_like(p, np.nan); ok = ~np.isnan(p);
        out[ok] = adjust_pvalues(p[ok])``, which counts only the tests run.
    method : {"bh", "bonferroni", "holm", "none"}
        Benjamini-Hochberg (false discovery rate), Bonferroni or Holm (family-wise error rate),
        or no correction.

    Returns
    -------
    ndarray of float64, shape (m,)
        Adjusted p-values, clipped to 1, in the input order.

    Raises
    ------
    ValueError
        When `p` is not 1-D, or a p-value is NaN or outside [0, 1].
    """
    method = check_choice(method, "correction", _CORRECTIONS)
    try:
        shape = np.shape(p)
    except ValueError:  # ragged nesting: check_pvalues says what is wrong
        shape = (-1,)
    if len(shape) != 1:
        raise ValueError(
            f"p must be 1-D, one p-value per test, got shape {shape}; for a table of tests "
            "that form one family, adjust them together and restore the shape: "
            "adjust_pvalues(np.ravel(p)).reshape(np.shape(p)); for one p-value, pass [p]."
        )
    pv = check_pvalues(p)
    m = pv.size
    if m == 0 or method == "none":
        same: NDArray[np.float64] = pv.copy()
        return same
    if method == "bonferroni":
        return np.asarray(np.minimum(pv * m, 1.0), dtype=np.float64)
    order = np.argsort(pv, kind="stable")
    ranked = pv[order]
    if method == "holm":
        adj = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:  # bh
        adj = ranked * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(adj[::-1])[::-1]
    out = np.empty(m, dtype=np.float64)
    out[order] = np.minimum(adj, 1.0)
    return out


def _combo_keys(ids: NDArray[np.int64], base: int) -> NDArray[np.int64]:
    """Integer key of each row of sorted tag ids padded with -1: sum (id + 1) * base**pos."""
    keys = np.zeros(ids.shape[0], dtype=np.int64)
    mult = 1
    for k in range(ids.shape[1]):
        keys += (ids[:, k] + 1) * mult
        mult *= base
    return keys


@dataclass(frozen=True)
class _Stats:
    """Per-group sufficient statistics: size, sum and sum of squares of the outcome."""

    n: NDArray[np.int64]
    s1: NDArray[np.float64]
    s2: NDArray[np.float64]


def _compare(
    a: _Stats, b: _Stats, test: str, binary: bool, n_threads: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-sample test of group a against group b: (statistic, two-sided p)."""
    if test in ("z", "fisher"):
        x1 = np.rint(a.s1).astype(np.int64)
        x2 = np.rint(b.s1).astype(np.int64)
        if test == "z":
            z, p = _core.two_proportion_ztest(x1, a.n, x2, b.n, n_threads)
            return z, p
        p = _core.fisher_exact_2x2(x1, a.n - x1, x2, b.n - x2, n_threads)
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = (x1 * (b.n - x2)) / ((a.n - x1) * x2)
        return np.asarray(odds, dtype=np.float64), p
    with np.errstate(divide="ignore", invalid="ignore"):
        m1 = a.s1 / a.n
        m2 = b.s1 / b.n
        v1 = np.maximum(a.s2 - a.s1 * m1, 0.0) / (a.n - 1)
        v2 = np.maximum(b.s2 - b.s1 * m2, 0.0) / (b.n - 1)
    m1, m2, v1, v2 = (np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) for x in (m1, m2, v1, v2))
    t, _, p = _core.welch_ttest(m1, v1, a.n, m2, v2, b.n, n_threads)
    return t, p


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class BiasReport(ResultBase):
    """Result of :func:`find_biases`: the biased subgroups, largest effect first.

    Attributes
    ----------
    combinations : tuple of tuple of str
        Tag names of each reported subgroup (a sample belongs when it has every tag).
    tag_ids : ndarray of int32, shape (m, max_tags)
        Column indices of those tags, ascending, padded with -1.
    support : ndarray of int64, shape (m,)
        Samples in each subgroup.
    metric_inside, metric_outside : ndarray of float64, shape (m,)
        Accuracy (or mean confidence) inside the subgroup and over all other samples.
    effect : ndarray of float64, shape (m,)
        ``metric_inside - metric_outside``: negative where the model does worse.
    statistic : ndarray of float64, shape (m,)
        The test statistic: z, the sample odds ratio (Fisher), or Welch's t.
    p_value, p_adjusted : ndarray of float64, shape (m,)
        Two-sided p-value, and after the correction over all ``n_tested`` subgroups.
    n_samples, n_tested : int
        Samples, and subgroups tested (both sides with at least ``min_support`` samples).
    metric, test, correction : str
    alpha : float
    tag_names : tuple of str
        Every tag column's name.
    """

    combinations: tuple[tuple[str, ...], ...]
    tag_ids: NDArray[np.int32]
    support: NDArray[np.int64]
    metric_inside: NDArray[np.float64]
    metric_outside: NDArray[np.float64]
    effect: NDArray[np.float64]
    statistic: NDArray[np.float64]
    p_value: NDArray[np.float64]
    p_adjusted: NDArray[np.float64]
    n_samples: int
    n_tested: int
    metric: str
    test: str
    correction: str
    alpha: float
    tag_names: tuple[str, ...]
    _packed: NDArray[np.uint64] = dataclasses.field(compare=False)
    _outcome: NDArray[np.float64] = dataclasses.field(compare=False)

    def __len__(self) -> int:
        return len(self.combinations)

    def members(self, i: int) -> NDArray[np.int64]:
        """Indices (int64, ascending) of every sample in subgroup ``i``."""
        i = self._row(i)
        ids = self.tag_ids[i][self.tag_ids[i] >= 0]
        words = np.bitwise_and.reduce(self._packed[ids], axis=0)
        bits = np.unpackbits(words.astype("<u8").view(np.uint8), bitorder="little")
        return np.flatnonzero(bits[: self.n_samples]).astype(np.int64)

    def examples(self, i: int, n: int = 8) -> NDArray[np.int64]:
        """Up to ``n`` sample indices of subgroup ``i`` to show.

        Samples that show the bias come first: where the subgroup does worse than the rest
        (negative effect), wrong (or least confident) samples first; where it does better,
        correct (most confident) ones first; ties in index order.

        Returns
        -------
        ndarray of int64, shape (min(n, support[i]),)
        """
        i = self._row(i)
        n = check_int(n, "n", minimum=1)
        idx = self.members(i)
        value = self._outcome[idx]
        key = value if self.effect[i] < 0 else -value
        return idx[np.argsort(key, kind="stable")[:n]]

    def _row(self, i: int) -> int:
        i = check_int(i, "i")
        m = len(self.combinations)
        if not -m <= i < m:
            raise IndexError(f"subgroup {i} out of range: the report has {m} rows.")
        return i % m

    def to_dict(self) -> dict[str, Any]:
        """The table and settings as plain Python objects (JSON-ready)."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if not f.name.startswith("_")
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per subgroup, largest effect first."""
        return _frame(
            {
                "rank": np.arange(1, len(self) + 1),
                "combination": [" & ".join(c) for c in self.combinations],
                "size": [len(c) for c in self.combinations],
                "support": self.support,
                "metric_inside": self.metric_inside,
                "metric_outside": self.metric_outside,
                "effect": self.effect,
                "statistic": self.statistic,
                "p_value": self.p_value,
                "p_adjusted": self.p_adjusted,
            }
        )


# --------------------------------------------------------------------------- the search


def find_biases(
    tags: Any,
    correct: Any,
    *,
    tag_names: Sequence[str] | None = None,
    max_tags: int = 3,
    min_support: int = 10,
    min_effect: float = 0.1,
    alpha: float = 0.05,
    test: Literal["z", "fisher", "welch"] | None = None,
    correction: Literal["bh", "bonferroni", "holm", "none"] = "bh",
    minimality: Sequence[float] | None = None,
    metric: Literal["accuracy", "confidence"] = "accuracy",
    top: int | None = None,
    max_combinations: int = 10_000_000,
    n_jobs: int | None = None,
) -> BiasReport:
    """Find the tag combinations on which a model does significantly worse (or better).

    A subgroup is the set of samples having every tag of a combination T of 1..``max_tags``
    tags. Every combination with at least ``min_support`` samples inside and outside is tested:
    its metric inside is compared with the metric over all other samples. T is significant
    when ``|effect| >= min_effect`` and its corrected p-value is ``<= alpha`` (the correction
    runs over every subgroup tested).

    Significant subgroups then pass one of two filters:

    * Redundancy filter (default, ``minimality=None``), level by level from 2 tags up: T is
      dropped when, for some proper non-empty subset S of T's tags that is itself reported,
      T's samples do not differ from the rest of S (the samples of S lacking some tag of T)
      by a significant effect: the same test on (T, S \\ T), corrected with ``correction``
      over all such comparisons of that level, gives adjusted p > ``alpha``, or
      ``|metric(T) - metric(S \\ T)| < min_effect``, or S \\ T is empty. So "A & B & C" is
      reported only when adding its extra tags to every reported subset ("A", "A & B", ...)
      changes the metric significantly and by at least ``min_effect``.
    * Minimality (RELAI's definition), when ``minimality`` is given: the empty combination
      (the whole data set) is minimal; with ``delta = minimality[len(T) - 1]``, T is minimal
      when every T minus one tag is minimal and T's metric is lower than all of theirs by at
      least ``delta``, or greater than all of theirs by at least ``delta`` (one direction for
      all; a single tag is compared with the whole data set). Only minimal significant
      combinations are reported; the redundancy filter is off. For example, with accuracies
      A 0.85, B 0.50, whole data set about 0.72 and ``minimality=[0.1, 0.1]``, A and B are
      minimal; A & B at 0.70 is not (0.15 below A but 0.20 above B: it only lies between its
      parts, though ``|difference| >= 0.1`` holds for both), while A & B at 0.30 is (below
      both by at least 0.1). Zero thresholds still drop such in-between combinations.

    Parameters
    ----------
    tags : array-like of shape (n_samples, n_tags), or pandas.DataFrame
        Booleans or 0/1; or a DataFrame of categorical metadata, one-hot encoded with the
        names ``"column=value"`` (missing values get no tag). At most
        :data:`MAX_TAG_COLUMNS` (4096) columns after encoding.
    correct : array-like of shape (n_samples,)
        Whether the model was right on each sample (bool or 0/1) for ``metric="accuracy"``;
        a real score per sample (e.g. the confidence in the true class) for
        ``metric="confidence"``. Must vary.
    tag_names : sequence of str, optional
        One name per column (default ``"tag0"``, ``"tag1"``, ...); not with a DataFrame.
    max_tags : int, default 3
        Longest combination, 1..4.
    min_support : int, default 10
        Fewest samples inside and outside a subgroup for it to be tested. Combinations with
        fewer samples inside are not enumerated further (support pruning).
    min_effect : float, default 0.1
        Smallest ``|metric_inside - metric_outside|`` reported.
    alpha : float, default 0.05
        Significance level of the corrected p-values.
    test : {"z", "fisher", "welch"}, optional
        Pooled two-proportion z-test, Fisher's exact test (both for accuracy), or Welch's
        t-test (either metric). Default: "z" for accuracy, "welch" for confidence.
    correction : {"bh", "bonferroni", "holm", "none"}, default "bh"
        Multiple-testing correction over all subgroups tested (see :func:`adjust_pvalues`).
    minimality : sequence of float, optional
        Thresholds per combination size (at least ``max_tags`` entries, >= 0); see above.
    metric : {"accuracy", "confidence"}, default "accuracy"
        Mean of ``correct`` inside against outside.
    top : int, optional
        Keep only the ``top`` rows of the sorted table.
    max_combinations : int, default 10_000_000
        ValueError when more combinations than this reach ``min_support`` (raise
        ``min_support`` or lower ``max_tags``); bounds memory.
    n_jobs : int or None
        Threads; ``None`` or -1 for all CPUs.

    Returns
    -------
    BiasReport
        Reported subgroups sorted by ``|effect|`` (largest first), ties by p-value then tag
        order; ``examples(i, k)`` gives sample indices to display.

    Raises
    ------
    TypeError, ValueError
        On invalid input, with a message that says how to fix it.

    Notes
    -----
    The counts are exact and use no n x combinations matrix: tags are bit-packed (n / 8 bytes
    per tag) and each combination costs one AND + popcount pass over the words of its prefix.
    With ``metric="confidence"`` the kernel also visits every member of every subgroup to sum
    the values, which is several times slower than counting correct answers.

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> rng = np.random.default_rng(0)
    >>> tags = rng.random((5000, 6)) < 0.3
    >>> correct = rng.random(5000) > np.where(tags[:, 0] & tags[:, 1], 0.6, 0.1)
    >>> report = datagauge.find_biases(tags, correct, tag_names=list("ABCDEF"))
    >>> report.combinations[0]
    ('A', 'B')
    """
    tag_matrix, names = check_tags(tags, tag_names, max_columns=MAX_TAG_COLUMNS)
    n = tag_matrix.shape[0]
    metric = check_choice(metric, "metric", _METRICS)  # type: ignore[assignment]
    outcome = check_outcome(correct, n, metric=metric)
    opts = _check_options(
        metric,
        max_tags=max_tags,
        min_support=min_support,
        min_effect=min_effect,
        alpha=alpha,
        test=test,
        correction=correction,
        minimality=minimality,
        top=top,
        max_combinations=max_combinations,
        n_jobs=n_jobs,
    )

    # ---- counts in the core (centred values keep the variances accurate)
    packed = pack_bits(tag_matrix, opts.n_threads)
    positives, values = _count_inputs(outcome, opts)
    try:
        combos, support, pos, s1c, s2c = _core.subgroup_search(
            packed,
            n,
            positives,
            values,
            opts.max_tags,
            opts.min_support,
            opts.max_combinations,
            opts.n_threads,
        )
    except ValueError as exc:
        if "combinations reach min_support" in str(exc):
            raise _too_many_combinations(opts) from exc
        raise
    return _report(combos, support, pos, s1c, s2c, packed, outcome, names, opts)


@dataclass(frozen=True)
class _Options:
    """The validated settings of :func:`find_biases`."""

    metric: str
    max_tags: int
    min_support: int
    min_effect: float
    alpha: float
    test: str
    correction: str
    thresholds: list[float] | None
    top: int | None
    max_combinations: int
    n_threads: int


def _check_options(
    metric: str,
    *,
    max_tags: Any,
    min_support: Any,
    min_effect: Any,
    alpha: Any,
    test: Any,
    correction: Any,
    minimality: Any,
    top: Any,
    max_combinations: Any,
    n_jobs: Any,
) -> _Options:
    """Validate find_biases's settings (`metric` already checked)."""
    if isinstance(max_tags, bool) or not isinstance(max_tags, (int, np.integer)):
        raise TypeError(f"max_tags must be an integer in 1..{MAX_COMBINATION_SIZE}.")
    max_tags = int(max_tags)
    if not 1 <= max_tags <= MAX_COMBINATION_SIZE:
        raise ValueError(
            f"max_tags must be in 1..{MAX_COMBINATION_SIZE} (tags per combination), got {max_tags}."
        )
    min_support = check_int(min_support, "min_support", minimum=1)
    min_effect = check_real(min_effect, "min_effect", minimum=0.0)
    alpha = check_unit_fraction(alpha, "alpha")
    if test is None:
        test = "z" if metric == "accuracy" else "welch"
    test = check_choice(test, "test", _TESTS)
    if metric == "confidence" and test != "welch":
        raise ValueError(
            f'test="{test}" compares proportions; metric="confidence" needs test="welch".'
        )
    correction = check_choice(correction, "correction", _CORRECTIONS)
    thresholds: list[float] | None = None
    if minimality is not None:
        if isinstance(minimality, (str, bytes)) or not isinstance(minimality, Sequence):
            raise TypeError("minimality must be a list of thresholds, one per combination size.")
        thresholds = [check_real(v, "minimality[i]", minimum=0.0) for v in minimality]
        if len(thresholds) < max_tags:
            raise ValueError(
                f"minimality has {len(thresholds)} thresholds but max_tags={max_tags}; give one "
                "threshold per combination size 1..max_tags."
            )
    top = None if top is None else check_int(top, "top", minimum=1)
    max_combinations = check_int(max_combinations, "max_combinations", minimum=1)
    return _Options(
        metric=metric,
        max_tags=max_tags,
        min_support=min_support,
        min_effect=min_effect,
        alpha=alpha,
        test=test,
        correction=correction,
        thresholds=thresholds,
        top=top,
        max_combinations=max_combinations,
        n_threads=resolve_n_jobs(n_jobs),
    )


def _too_many_combinations(opts: _Options) -> ValueError:
    return ValueError(
        f"more than max_combinations={opts.max_combinations} tag combinations have at least "
        f"min_support={opts.min_support} samples; raise min_support, lower max_tags "
        f"(now {opts.max_tags}) or drop tags."
    )


def _count_inputs(
    outcome: NDArray[np.float64], opts: _Options
) -> tuple[NDArray[np.uint64] | None, NDArray[np.float64] | None]:
    """The outcome as the core counts it: (bit-packed positives, None) for accuracy,
    (None, values minus their mean) for confidence."""
    if opts.metric == "accuracy":
        return pack_bits(outcome == 1, opts.n_threads)[0], None
    return None, np.ascontiguousarray(outcome - float(outcome.mean()))


def _report(
    combos: NDArray[np.int32],
    support: NDArray[np.int64],
    pos: NDArray[np.int64],
    s1c: NDArray[np.float64],
    s2c: NDArray[np.float64],
    packed: NDArray[np.uint64],
    outcome: NDArray[np.float64],
    names: list[str],
    opts: _Options,
) -> BiasReport:
    """Tests, filters and the table from the counts of every combination with enough support
    (combos padded with -1, by size then lexicographic; see ``_core.subgroup_search``)."""
    n, t = outcome.shape[0], len(names)
    metric, test, correction = opts.metric, opts.test, opts.correction
    max_tags, min_support, min_effect = opts.max_tags, opts.min_support, opts.min_effect
    alpha, thresholds, top, n_threads = opts.alpha, opts.thresholds, opts.top, opts.n_threads
    binary = metric == "accuracy"
    center = float(outcome.mean())
    if binary:
        s1 = pos.astype(np.float64)
        s2 = s1
        tot1 = float(outcome.sum())
        tot2 = tot1
    else:
        # back from centred sums: sum x = sum (x - c) + n c; the test uses centred moments.
        s1 = s1c
        s2 = s2c
        centred = outcome - center
        tot1 = float(centred.sum())
        tot2 = float((centred * centred).sum())
    inside = _Stats(support, s1, s2)
    outside = _Stats(n - support, tot1 - s1, tot2 - s2)
    shift = 0.0 if binary else center
    with np.errstate(divide="ignore", invalid="ignore"):
        m_in = s1 / support + shift
        m_out = (tot1 - s1) / (n - support) + shift
    effect = m_in - m_out

    tested = (n - support) >= min_support
    t_idx = np.flatnonzero(tested)
    stat = np.full(support.shape, np.nan)
    p_raw = np.ones(support.shape)
    if t_idx.size:
        st, pv = _compare(_take(inside, t_idx), _take(outside, t_idx), test, binary, n_threads)
        stat[t_idx] = st
        p_raw[t_idx] = pv
    p_adj = np.ones(support.shape)
    p_adj[t_idx] = adjust_pvalues(p_raw[t_idx], correction)
    significant = tested & (np.abs(effect) >= min_effect) & (p_adj <= alpha)

    # ---- filters, level by level
    sizes = (combos >= 0).sum(axis=1)
    base = t + 1
    ids64 = combos.astype(np.int64)
    keys = _combo_keys(ids64, base)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]

    def lookup(sub: NDArray[np.int64]) -> NDArray[np.int64]:
        pad = np.full((sub.shape[0], max_tags - sub.shape[1]), -1, dtype=np.int64)
        k = _combo_keys(np.concatenate([sub, pad], axis=1), base)
        found = order[np.searchsorted(sorted_keys, k)]
        return found.astype(np.int64)

    if thresholds is not None:
        overall = float(outcome.mean())
        minimal = np.zeros(support.shape, dtype=bool)
        lvl1 = sizes == 1
        minimal[lvl1] = np.abs(m_in[lvl1] - overall) >= thresholds[0]
        for size in range(2, max_tags + 1):
            rows = np.flatnonzero(sizes == size)
            if rows.size == 0:
                continue
            # every subset minimal, and T below all of them or above all of them by >= delta
            ok = np.ones(rows.size, dtype=bool)
            below = np.ones(rows.size, dtype=bool)
            above = np.ones(rows.size, dtype=bool)
            delta = thresholds[size - 1]
            for j in range(size):
                sub = np.delete(ids64[rows, :size], j, axis=1)
                s_rows = lookup(sub)
                ok &= minimal[s_rows]
                below &= m_in[rows] <= m_in[s_rows] - delta
                above &= m_in[rows] >= m_in[s_rows] + delta
            minimal[rows] = ok & (below | above)
        reported = significant & minimal
    else:
        reported = significant.copy()
        for size in range(2, max_tags + 1):
            rows = np.flatnonzero(reported & (sizes == size))
            if rows.size == 0:
                continue
            pairs_t: list[NDArray[np.int64]] = []
            pairs_s: list[NDArray[np.int64]] = []
            for r in range(1, size):
                for subset in itertools.combinations(range(size), r):
                    s_rows = lookup(ids64[rows][:, list(subset)])
                    keep = reported[s_rows]
                    pairs_t.append(rows[keep])
                    pairs_s.append(s_rows[keep])
            tr = np.concatenate(pairs_t)
            sr = np.concatenate(pairs_s)
            if tr.size == 0:
                continue
            rest = _Stats(support[sr] - support[tr], s1[sr] - s1[tr], s2[sr] - s2[tr])
            _, p_red = _compare(_take(inside, tr), rest, test, binary, n_threads)
            p_red = np.where(rest.n > 0, p_red, 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                gain = np.abs((s1[tr] / support[tr]) - (rest.s1 / rest.n))
            gain = np.where(rest.n > 0, gain, 0.0)
            redundant = (adjust_pvalues(p_red, correction) > alpha) | (gain < min_effect)
            reported[tr[redundant]] = False

    # ---- the table
    rows = np.flatnonzero(reported)
    # largest |effect| first, then smallest p, then tag ids in lexicographic order
    tie_keys = [combos[rows, k] for k in reversed(range(max_tags))]
    rank = np.lexsort((*tie_keys, p_raw[rows], -np.abs(effect[rows])))
    rows = rows[rank]
    if top is not None:
        rows = rows[:top]
    sel = combos[rows]
    combinations = tuple(tuple(names[j] for j in r if j >= 0) for r in sel)
    return BiasReport(
        combinations=combinations,
        tag_ids=np.ascontiguousarray(sel),
        support=support[rows],
        metric_inside=m_in[rows],
        metric_outside=m_out[rows],
        effect=effect[rows],
        statistic=stat[rows],
        p_value=p_raw[rows],
        p_adjusted=p_adj[rows],
        n_samples=n,
        n_tested=int(t_idx.size),
        metric=metric,
        test=test,
        correction=correction,
        alpha=alpha,
        tag_names=tuple(names),
        _packed=packed,
        _outcome=outcome,
    )


def _take(s: _Stats, idx: NDArray[np.int64]) -> _Stats:
    return _Stats(s.n[idx], s.s1[idx], s.s2[idx])
