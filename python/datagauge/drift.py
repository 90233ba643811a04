"""Drift: does a test set of embeddings come from the distribution of a reference set?

Three two-sample tests, each with the samples or features that drift most:

- ``"knn"``: the nearest-neighbour test of Schilling (JASA 1986) and Henze (Annals of
  Statistics 1988), read off the k-NN graph of the pooled samples, with a permutation p-value;
- ``"mmd"``: the kernel maximum mean discrepancy (Gretton et al., JMLR 2012) with a Gaussian
  kernel, its bandwidth from the median heuristic, and a permutation p-value: DataEval 1.1.4's
  ``DriftMMD`` (``dataeval/shift/_drift/_mmd.py``, from alibi-detect 0.11.4);
- ``"ks"``: per-feature two-sample Kolmogorov-Smirnov tests with a correction across features:
  DataEval 1.1.4's ``DriftUnivariate(method="ks")`` (``dataeval/shift/_drift/_univariate.py``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._results import DriftResult
from ._validation import (
    check_choice,
    check_int,
    check_k,
    check_membership,
    check_option_applies,
    check_positive,
    check_random_state,
    check_two_samples,
    check_unit_fraction,
)
from .graph import NeighborGraph, as_graph, neighbor_graph
from .neighbors import scale_exponent
from .outliers import worst_first

__all__ = ["DEFAULT_K", "DEFAULT_PERMUTATIONS", "drift", "median_bandwidth"]

#: Neighbours per point of the k-NN test when ``k`` is None.
DEFAULT_K = 10

#: Permutations when ``n_permutations`` is None: one permutation of the k-NN test costs
#: O(n k), one of the MMD O(n^2) (DataEval's default for it is 100).
DEFAULT_PERMUTATIONS = {"knn": 1000, "mmd": 100}
#: The bandwidth's median is taken over at most this many reference-test pairs (float32
#: squared distances, 256 MiB); larger samples use a seeded subset of rows of each.
MEDIAN_MAX_PAIRS = 1 << 26
_KERNEL_BLOCK = 1 << 22  # kernel entries computed at a time (32 MiB of float64)
_LABEL_BLOCK = 1 << 24  # label comparisons of the permuted k-NN test at a time
_KS_INEXACT = "ks_2samp: Exact calculation unsuccessful"


def drift(
    reference: Any,
    test: Any,
    *,
    method: Literal["knn", "mmd", "ks"] = "knn",
    alpha: float = 0.05,
    k: int | None = None,
    n_permutations: int | None = None,
    random_state: int | np.random.Generator | None = 0,
    sigma: float | None = None,
    correction: Literal["bonferroni", "fdr"] | None = None,
    index: Any = None,
    n_jobs: int | None = None,
) -> DriftResult:
    """Test whether `test` comes from the distribution of `reference`.

    Parameters
    ----------
    reference, test : array-like of shape (n_reference, n_features) and (n_test, n_features)
        Finite real numbers, the same number of features; converted once to float32. At least
        one row each (``"mmd"``: two). Or, for ``method="knn"``, `reference` a
        :class:`~datagauge.graph.NeighborGraph` of the two samples pooled (in any order, at
        least `k` neighbours per point) and `test` a boolean array of shape (n_samples,)
        marking the graph's test rows (no search; ``samples`` then counts the test rows in
        graph order).
    method : {"knn", "mmd", "ks"}, default "knn"
        The test (see Notes).
    alpha : float, default 0.05
        Significance level, in (0, 1): ``drifted`` is True when the p-value is below it.
    k : int, optional
        ``"knn"`` only (an error for the other methods): neighbours per point, ``1 <= k <
        n_reference + n_test``; default 10.
    n_permutations : int, optional
        ``"knn"``, ``"mmd"`` only: permutations of the sample labels; default 1000 for
        ``"knn"`` and 100 for ``"mmd"`` (DataEval's). The smallest p-value is ``1 /
        (n_permutations + 1)``. ``"ks"`` has no permutations: passing it there is an error.
    random_state : int, numpy Generator or None, default 0
        Seed of the permutations (and of the rows the bandwidth is estimated from when the
        samples are very large): the same seed gives the same answer; a Generator is used
        and advanced; None draws fresh entropy. NumPy's global RNG is never used.
    sigma : float, optional
        ``"mmd"`` only (an error for the other methods): the Gaussian kernel's bandwidth, in
        the data's units, ``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))``; default: DataEval's
        median heuristic (:func:`median_bandwidth`).
    correction : {"bonferroni", "fdr"}, optional
        ``"ks"`` only (an error for the other methods): correction across features,
        Bonferroni (the default) or Benjamini-Hochberg.
    index : {"exact", "kdtree", "brute", "flat", "hnsw", "ivf"}, neighbors spec or faiss.Index
        ``"knn"`` only (an error for the other methods, and with a NeighborGraph, whose lists
        are used as they are): the k-NN engine of the pooled samples; default None
        (``"exact"``).
    n_jobs : int or None
        ``"knn"``: threads of the search; ``None`` or -1 for all CPUs.

    Returns
    -------
    DriftResult
        ``drifted``, ``p_value``, ``statistic``, ``threshold``; ``"knn"``, ``"mmd"``:
        ``sample_scores`` and ``samples`` (test samples, most drifted first) and
        ``reference_scores``; ``"ks"``: ``feature_statistics``, ``feature_p_values`` and
        ``features`` (the features that drift, most significant first).

    Raises
    ------
    TypeError, ValueError
        On invalid input (NaN, different feature counts, too few samples, an unknown method
        or correction, `alpha` outside (0, 1), k out of range, a non-positive sigma; `sigma`
        with a method other than ``"mmd"``, `correction` with one other than ``"ks"``,
        `n_permutations` with ``"ks"``), with a message that says how to fix it.

    Notes
    -----
    ``"knn"`` (Schilling 1986; Henze 1988). Pool the n reference and m test samples and find
    every point's k nearest other points. The statistic is the share of the ``(n + m) k``
    (point, neighbour) pairs whose two points come from the same sample: without drift the
    samples mix and the share is near ``(n(n - 1) + m(m - 1)) / (N(N - 1))``, with drift it
    is larger. The p-value is exact for the test as computed: the sample labels are permuted
    ``n_permutations`` times over the fixed graph, ``p = (1 + #{permuted share >= observed})
    / (1 + n_permutations)``. (The asymptotic normal law of Schilling and Henze is not used:
    it needs the counts of mutual and shared neighbours and is poor for small samples.)
    DataEval has no such test (its ``DriftKNeighbors`` compares distances to the reference
    with a Mann-Whitney test). A test sample's score is the share of its neighbours from the
    test sample minus ``(m - 1) / (N - 1)``, the share expected without drift: high where
    test samples cluster away from the reference. Neighbours at exactly equal distances
    (duplicates) are ordered by index, reference first.

    ``"mmd"`` (DataEval 1.1.4's ``DriftMMD``). The statistic is the unbiased squared MMD
    ``sum_{i != j in X} k / (n(n - 1)) + sum_{i != j in Y} k / (m(m - 1)) - 2 mean_{X x Y}
    k``, in float64 (DataEval's torch computes it in float32, so the two agree to about
    1e-6). The bandwidth is DataEval's median heuristic over the reference-test squared
    distances. The kernel matrix is computed in blocks and never held whole; all
    permutations are evaluated in one pass over it, as a matrix product. Both samples are
    first divided by the power of two nearest their largest per-feature span, which is exact
    in floating point: the kernel values, and so the statistic, the p-value and the decision,
    do not depend on the data's scale (no overflow of squared distances at 1e19, no
    underflow at 1e-20), and ``sigma`` scales with the data. The p-value
    counts the observed split as one of the permutations, ``(1 + #{permuted >= observed}) /
    (1 + n_permutations)``; DataEval's omits it (``#{permuted >= observed} /
    n_permutations``), which can be 0 and rejects slightly too often. The permutations are
    NumPy's, not torch's, so the p-values differ from DataEval's by permutation noise. A test
    sample's score is the witness function there: its mean kernel value to the other test
    samples minus that to the reference samples. Cost O((n + m)^2 (d + n_permutations)).

    ``"ks"`` (DataEval 1.1.4's ``DriftUnivariate(method="ks")``). Every feature is tested
    with ``scipy.stats.ks_2samp(method="exact")`` (SciPy falls back to the asymptotic
    distribution where the exact one cannot be computed, as in DataEval). ``"bonferroni"``:
    drift when some feature has ``p < alpha / n_features``; ``"fdr"``: when the
    Benjamini-Hochberg procedure rejects some feature (``p_(i) < alpha i / n_features``).
    ``p_value`` is the smallest adjusted p-value (``n_features * min p``, or the smallest BH
    adjusted one, capped at 1); ``statistic`` is the mean KS statistic over features
    (DataEval's ``distance``); the per-feature p-values are float64 (DataEval rounds them to
    float32).

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(0, 1, (300, 4))
    >>> datagauge.drift(ref, rng.normal(0, 1, (200, 4))).drifted
    False
    >>> res = datagauge.drift(ref, rng.normal(0.8, 1, (200, 4)))
    >>> res.drifted, res.p_value < 0.01
    (True, True)
    """
    method = check_choice(method, "method", ("knn", "mmd", "ks"))  # type: ignore[assignment]
    _check_options_apply(method, sigma, correction, n_permutations, k, index)
    alpha = check_unit_fraction(alpha, "alpha")
    seed = check_random_state(random_state)
    if correction is None:
        correction = "bonferroni"
    correction = check_choice(correction, "correction", ("bonferroni", "fdr"))  # type: ignore[assignment]
    if isinstance(reference, NeighborGraph):
        if method != "knn":
            raise ValueError(
                f"method={method!r} needs the embeddings (a k-NN graph holds only neighbours); "
                "pass the two samples, or use method='knn' with the graph."
            )
        k = DEFAULT_K if k is None else check_int(k, "k", minimum=1)
        graph = as_graph(reference, k, index=index, name="reference")
        is_test = check_membership(
            test, graph.n_samples, name="test", first="reference", second="test"
        )
        n_perm = _permutations(method, n_permutations)
        return _knn_test(graph.indices, is_test, n_perm, np.random.default_rng(seed), alpha)
    ref, tst = check_two_samples(
        reference,
        test,
        names=("reference", "test"),
        min_samples=2 if method == "mmd" else 1,
        why=" for method='mmd' (its unbiased estimate compares each sample's points in pairs)",
    )
    if method == "ks":
        return _ks_test(ref, tst, alpha, correction)
    n_perm = _permutations(method, n_permutations)
    if method == "knn":
        k = check_k(DEFAULT_K if k is None else k, ref.shape[0] + tst.shape[0])
        engine = "exact" if index is None else index
        pooled = neighbor_graph(np.concatenate([ref, tst]), k, index=engine, n_jobs=n_jobs)
        is_test = np.arange(pooled.n_samples) >= ref.shape[0]
        return _knn_test(pooled.indices, is_test, n_perm, np.random.default_rng(seed), alpha)
    bandwidth = None if sigma is None else check_positive(sigma, "sigma")
    rng = np.random.default_rng(seed)
    return _mmd_test(ref, tst, bandwidth, n_perm, rng, alpha)


def _check_options_apply(
    method: str, sigma: Any, correction: Any, n_permutations: Any, k: Any, index: Any
) -> None:
    """Options of one method given with another are errors, not silently ignored."""
    check_option_applies(k, "k", method, ("knn",), "neighbours per point")
    check_option_applies(index, "index", method, ("knn",), "the k-NN engine")
    check_option_applies(sigma, "sigma", method, ("mmd",), "the Gaussian kernel's bandwidth")
    check_option_applies(
        correction, "correction", method, ("ks",), "the correction across per-feature tests"
    )
    check_option_applies(
        n_permutations, "n_permutations", method, ("knn", "mmd"), "the permutation tests"
    )


def _scale_exponent(*samples: NDArray[Any]) -> int:
    """The power of two e nearest the largest per-feature span of the pooled `samples`
    (0 when every point is the same): ``x / 2**e`` spans about 1, and is exact."""
    lo = np.min([s.min(axis=0) for s in samples if s.size], axis=0)
    hi = np.max([s.max(axis=0) for s in samples if s.size], axis=0)
    return scale_exponent(lo, hi, limit=0.0)


def _scaled64(x: NDArray[Any], exponent: int) -> NDArray[np.float64]:
    """float64 copy of x / 2**exponent (exact: float64 has the range of any float32)."""
    return np.ldexp(x.astype(np.float64), -exponent)


def _permutations(method: str, n_permutations: int | None) -> int:
    if n_permutations is None:
        return DEFAULT_PERMUTATIONS[method]
    return check_int(n_permutations, "n_permutations", minimum=1)


def _threshold(permuted: NDArray[Any], alpha: float) -> float:
    """DataEval's ``distance_threshold``: the permuted statistics sorted in descending order,
    at position ``int(alpha * n_permutations)``."""
    return float(np.sort(permuted)[::-1][int(alpha * permuted.size)])


def _p_value(permuted: NDArray[Any], observed: Any) -> float:
    """Permutation p-value counting the observed split as one permutation."""
    return float((1 + np.count_nonzero(permuted >= observed)) / (1 + permuted.size))


def _knn_test(
    nbr: NDArray[np.int64],
    is_test: NDArray[np.bool_],
    n_perm: int,
    rng: np.random.Generator,
    alpha: float,
) -> DriftResult:
    """The k-NN test on the neighbour lists `nbr` (int64 (N, k)) of the pooled samples,
    `is_test` (bool (N,)) marking the test sample's points."""
    total, k = nbr.shape
    m = int(np.count_nonzero(is_test))
    n = total - m
    observed = int(np.count_nonzero(is_test[nbr] == is_test[:, None]))
    counts = np.empty(n_perm, dtype=np.int64)
    chunk = max(1, _LABEL_BLOCK // (total * k))
    for s in range(0, n_perm, chunk):
        c = min(chunk, n_perm - s)
        z = rng.permuted(np.broadcast_to(is_test, (c, total)), axis=1)
        counts[s : s + c] = np.count_nonzero(z[:, nbr] == z[:, :, None], axis=(1, 2))
    pairs = total * k
    from_test = is_test[nbr].mean(axis=1)
    sample_scores = from_test[is_test] - (m - 1) / (total - 1)
    reference_scores = (1.0 - from_test[~is_test]) - (n - 1) / (total - 1)
    p = _p_value(counts, observed)
    return DriftResult(
        method="knn",
        drifted=p < alpha,
        p_value=p,
        statistic=observed / pairs,
        alpha=alpha,
        threshold=_threshold(counts, alpha) / pairs,
        n_permutations=n_perm,
        k=k,
        sigma=None,
        correction=None,
        sample_scores=sample_scores,
        reference_scores=reference_scores,
        samples=worst_first(sample_scores),
        feature_statistics=None,
        feature_p_values=None,
        features=None,
    )


def median_bandwidth(
    reference: NDArray[np.float32],
    test: NDArray[np.float32],
    rng: np.random.Generator | None = None,
) -> float:
    """DataEval's median-heuristic bandwidth (alibi-detect's ``sigma_median``).

    Parameters
    ----------
    reference, test : ndarray of float32, shape (n, d) and (m, d)
        Validated samples.
    rng : numpy Generator, optional
        Draws the rows used when ``n * m > MEDIAN_MAX_PAIRS`` (required then).

    Returns
    -------
    float
        ``sqrt(0.5 * s)``, where s is the element at position ``c + (n m - c) // 2 - 1`` of
        the sorted reference-test squared distances and c is n when the two samples are the
        same array (its n zero self-distances skipped), else 0. Above ``MEDIAN_MAX_PAIRS``
        pairs, the same over a seeded subset of rows of each sample (the same share of each).

    Notes
    -----
    The distances are computed with both samples divided by ``2**e``, the power of two
    nearest their largest per-feature span (exact), and the bandwidth multiplied back: it
    scales exactly with the data, with no overflow of the squared distances of large values
    or underflow of small ones. DataEval's clip of the squared distances below at 1e-30 is
    applied in those scaled units (``1e-30 * 4**e`` in the data's), so it too scales.
    """
    exponent = _scale_exponent(reference, test)
    n, m = reference.shape[0], test.shape[0]
    if n * m > MEDIAN_MAX_PAIRS:
        if rng is None:
            raise ValueError("median_bandwidth needs an rng for samples this large.")
        share = (MEDIAN_MAX_PAIRS / (n * m)) ** 0.5
        n_keep, m_keep = max(1, int(n * share)), max(1, int(m * share))
        reference = reference[np.sort(rng.choice(n, n_keep, replace=False))]
        test = test[np.sort(rng.choice(m, m_keep, replace=False))]
        n, m = n_keep, m_keep
    same = n if (reference.shape == test.shape and np.array_equal(reference, test)) else 0
    a = _scaled64(reference, exponent)
    b = _scaled64(test, exponent)
    shift = np.concatenate([a, b]).mean(axis=0)
    a -= shift
    b -= shift
    bn = np.einsum("ij,ij->i", b, b)
    sq = np.empty((n, m), dtype=np.float32)
    rows = max(1, _KERNEL_BLOCK // m)
    for s in range(0, n, rows):
        blk = a[s : s + rows]
        d2 = np.einsum("ij,ij->i", blk, blk)[:, None] + bn[None, :] - 2.0 * (blk @ b.T)
        sq[s : s + rows] = np.maximum(d2, 1e-30)
    pos = same + (n * m - same) // 2 - 1
    median = float(np.partition(sq.ravel(), pos)[pos])
    return math.ldexp((0.5 * median) ** 0.5, exponent)


def _mmd_test(
    ref: NDArray[np.float32],
    tst: NDArray[np.float32],
    sigma: float | None,
    n_perm: int,
    rng: np.random.Generator,
    alpha: float,
) -> DriftResult:
    n, m = ref.shape[0], tst.shape[0]
    total = n + m
    if sigma is None:
        sigma = median_bandwidth(ref, tst, rng)
    # Kernel values depend on |x - y| / sigma only: compute them on the data and sigma
    # divided by the same power of two (exact), so the answer does not depend on the scale.
    exponent = _scale_exponent(ref, tst)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        unit_sigma = np.ldexp(np.float64(sigma), -exponent)
        gamma = np.float64(0.5) / (unit_sigma * unit_sigma)  # inf or 0 at extreme sigmas
    x = _scaled64(np.concatenate([ref, tst]), exponent)
    x -= x.mean(axis=0)
    sqn = np.einsum("ij,ij->i", x, x)
    # Column 0: all ones (row sums); 1: the observed reference indicator; then one column per
    # permutation. K0 @ a gives, for every point, its kernel sum to one side of a split.
    is_ref = np.zeros(total)
    is_ref[:n] = 1.0
    splits = np.empty((total, n_perm + 2))
    splits[:, 0] = 1.0
    splits[:, 1] = is_ref
    splits[:, 2:] = rng.permuted(np.broadcast_to(is_ref, (n_perm, total)), axis=1).T
    side_sums = np.zeros(n_perm + 2)  # a^T K0 a per column (column 0: the total)
    row_sums = np.zeros(n_perm + 2)  # a^T K0 1 per column
    to_all = np.empty(total)
    to_ref = np.empty(total)
    rows = max(1, _KERNEL_BLOCK // total)
    for s in range(0, total, rows):
        e = min(total, s + rows)
        d2 = sqn[s:e, None] + sqn[None, :] - 2.0 * (x[s:e] @ x.T)
        kern = np.exp(-gamma * np.maximum(d2, 1e-30))
        kern[np.arange(e - s), np.arange(s, e)] = 0.0
        prod = kern @ splits
        to_all[s:e] = prod[:, 0]
        to_ref[s:e] = prod[:, 1]
        side_sums += np.einsum("ij,ij->j", splits[s:e], prod)
        row_sums += splits[s:e].T @ prod[:, 0]
    whole = side_sums[0]
    s_xx = side_sums[1:]
    s_xy = row_sums[1:] - s_xx
    s_yy = whole - s_xx - 2.0 * s_xy
    mmd2 = s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)
    observed, permuted = mmd2[0], mmd2[1:]
    sample_scores = (to_all[n:] - to_ref[n:]) / (m - 1) - to_ref[n:] / n
    reference_scores = to_ref[:n] / (n - 1) - (to_all[:n] - to_ref[:n]) / m
    p = _p_value(permuted, observed)
    return DriftResult(
        method="mmd",
        drifted=p < alpha,
        p_value=p,
        statistic=float(observed),
        alpha=alpha,
        threshold=_threshold(permuted, alpha),
        n_permutations=n_perm,
        k=None,
        sigma=float(sigma),
        correction=None,
        sample_scores=sample_scores,
        reference_scores=reference_scores,
        samples=worst_first(sample_scores),
        feature_statistics=None,
        feature_p_values=None,
        features=None,
    )


def _ks_test(
    ref: NDArray[np.float32], tst: NDArray[np.float32], alpha: float, correction: str
) -> DriftResult:
    from scipy.stats import ks_2samp

    with warnings.catch_warnings():
        # SciPy's documented fallback to the asymptotic distribution, which DataEval also gets.
        warnings.filterwarnings("ignore", message=_KS_INEXACT, category=RuntimeWarning)
        res = ks_2samp(ref, tst, axis=0, method="exact")
    stat = np.atleast_1d(np.asarray(res.statistic, dtype=np.float64))
    pv = np.atleast_1d(np.asarray(res.pvalue, dtype=np.float64))
    d = pv.size
    order = np.lexsort((np.arange(d), -stat, pv)).astype(np.int64)
    if correction == "bonferroni":
        threshold = alpha / d
        features = order[pv[order] < threshold]
        p_value = min(1.0, d * float(pv.min()))
    else:
        ranked = pv[order]
        q = alpha * np.arange(1, d + 1) / d
        below = np.flatnonzero(ranked < q)
        threshold = float(q[below[-1]]) if below.size else float(q.min())
        features = order[: below[-1] + 1] if below.size else order[:0]
        p_value = min(1.0, float((ranked * d / np.arange(1, d + 1)).min()))
    return DriftResult(
        method="ks",
        drifted=bool(features.size > 0),
        p_value=p_value,
        statistic=float(stat.mean()),
        alpha=alpha,
        threshold=float(threshold),
        n_permutations=None,
        k=None,
        sigma=None,
        correction=correction,
        sample_scores=None,
        reference_scores=None,
        samples=None,
        feature_statistics=stat,
        feature_p_values=pv,
        features=np.ascontiguousarray(features),
    )
