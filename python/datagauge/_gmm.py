"""The Gaussian-mixture estimator behind :mod:`datagauge.familiarity`.

EM runs in the compiled core (``_core.gmm_*``) as mergeable sufficient statistics over blocks
of rows: every pass over the data adds the blocks' statistics, then one M-step turns them into
parameters. The same statistics can be accumulated out of core (memory-mapped arrays, lists of
batches, a callable returning batches) or on several machines and merged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from . import _core
from ._threads import resolve_n_jobs
from ._validation import (
    check_choice,
    check_features,
    check_int,
    check_is_fitted,
    check_nonnegative,
    check_positive_diagonal,
    check_precisions,
    check_samples,
    check_statistics_finite,
)

__all__ = ["COVARIANCE_TYPES", "INITS", "ConvergenceWarning", "Familiarity"]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INITS = ("k-means++", "kmeans", "random")
_INIT_ROWS = 100_000  # rows init="k-means++" seeds from, at most
_KMEANS_ROWS = 20_000  # rows init="kmeans" seeds and iterates on, at most (or 100 per component)
_LLOYD_ITER = 100
#: A fit with ``reduce_dim`` projects an in-memory or memory-mapped dataset once and keeps the
#: projected blocks for its EM passes when they take at most this many bytes (they are
#: reduce_dim / n_features of the data); otherwise every pass projects its blocks again
#: (the projection took about half of a 10k x 128 fit to 40 dimensions).
_PROJECTED_BYTES = 512 << 20
_F32_LIMIT = 1e36  # float32 terms the core may form, at most (float32 overflows at 3.4e38)
_T = TypeVar("_T")


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the lower bound changed by less than ``tol``."""


# --------------------------------------------------------------------------- data sources


class _Source:
    """Blocks of validated rows from an array, a memory-mapped array, batches or a callable."""

    def __init__(self, data: Any, block_size: int, name: str, *, allow_batches: bool) -> None:
        self.name = name
        self.block_size = block_size
        self._array: NDArray[Any] | None = None
        self._memmap: np.memmap[Any, Any] | None = None
        self._batches: list[Any] | None = None
        self._factory: Callable[[], Iterable[Any]] | None = None
        if isinstance(data, np.memmap):
            if data.ndim != 2:
                check_samples(np.asarray(data[:2]), name=name)  # raises the 2-D message
            self._memmap = data
        elif isinstance(data, np.ndarray) or hasattr(data, "__array__"):
            self._array = check_samples(data, name=name)
        elif isinstance(data, (list, tuple)) and _is_batch_list(data):
            if not allow_batches:
                raise TypeError(
                    f"{name} must be one array of shape (n_samples, n_features), got a list of "
                    "arrays; concatenate them, e.g. np.concatenate(batches)."
                )
            self._batches = list(data)
        elif isinstance(data, (list, tuple)):
            self._array = check_samples(data, name=name)
        elif callable(data) and allow_batches:
            self._factory = data
        elif isinstance(data, (Iterator, Iterable)) and allow_batches and data is not None:
            raise TypeError(
                f"{name} is a one-pass iterator, but EM reads the data once per iteration; pass "
                "a list of batches, a memory-mapped array (np.load(path, mmap_mode='r')), a "
                "callable that returns a fresh iterator of batches, or call partial_fit(batch) "
                "once per batch."
            )
        else:
            self._array = check_samples(data, name=name)

    @property
    def n_rows(self) -> int | None:
        if self._array is not None:
            return int(self._array.shape[0])
        if self._memmap is not None:
            return int(self._memmap.shape[0])
        return None

    def blocks(self) -> Iterator[NDArray[Any]]:
        """Validated C-contiguous float32/float64 blocks, each (rows, n_features)."""
        n_features: int | None = None
        count = 0
        for i, blk in enumerate(self._raw_blocks()):
            if n_features is None:
                n_features = blk.shape[1]
            elif blk.shape[1] != n_features:
                raise ValueError(
                    f"{self.name} batch {i} has {blk.shape[1]} features but the first batch has "
                    f"{n_features}; every batch must have the same number of features."
                )
            count += blk.shape[0]
            yield blk
        if count == 0:
            raise ValueError(f"{self.name} is empty; it needs at least one sample.")

    def _raw_blocks(self) -> Iterator[NDArray[Any]]:
        bs = self.block_size
        if self._array is not None:
            x = self._array
            for a in range(0, x.shape[0], bs):
                yield x[a : a + bs]
        elif self._memmap is not None:
            mm = self._memmap
            for a in range(0, mm.shape[0], bs):
                yield check_samples(np.asarray(mm[a : a + bs]), name=f"{self.name} rows {a}+")
        else:
            source: Iterable[Any]
            if self._batches is not None:
                source = self._batches
            else:
                if self._factory is None:  # pragma: no cover - internal invariant
                    raise RuntimeError("internal error: self._factory is unset")
                source = self._factory()
                if not isinstance(source, Iterable):
                    raise TypeError(
                        f"{self.name}() must return an iterable of arrays of shape "
                        f"(n_rows, n_features), got {type(source).__name__}."
                    )
            for i, batch in enumerate(source):
                blk = check_samples(batch, name=f"{self.name} batch {i}")
                for a in range(0, blk.shape[0], bs):
                    yield blk[a : a + bs]

    def map_reduce(self, fn: Callable[[_Source], _T], merge: Callable[[_T, _T], _T]) -> _T:
        """`fn` over parts of the data, results combined with `merge`.

        Here the data are one part: ``fn(self)``. A source whose rows live elsewhere (the
        chunks of a Dask array, say) applies `fn` to a source per part, in parallel, and
        merges the partial results.
        """
        return fn(self)

    def sample(self, rows: int, rng: np.random.Generator) -> NDArray[Any]:
        """At most `rows` rows for the initialisation: a random subset of an array, or the
        first rows of the batches."""
        n = self.n_rows
        if n is not None:
            if n <= rows:
                if self._array is not None:  # validated already: no copy
                    return self._array
                return np.concatenate(list(self.blocks()))
            return self._take(np.sort(rng.choice(n, size=rows, replace=False)))
        out, have = [], 0
        for blk in self.blocks():
            out.append(blk[: rows - have])
            have += out[-1].shape[0]
            if have >= rows:
                break
        return np.concatenate(out)

    def _take(self, idx: NDArray[np.int64]) -> NDArray[Any]:
        """Validated rows `idx` (ascending) of an array source."""
        if self._array is not None:
            return self._array[idx]
        if self._memmap is None:  # pragma: no cover - internal invariant
            raise RuntimeError("internal error: self._memmap is unset")
        return check_samples(np.asarray(self._memmap[idx]), name=self.name)


def _is_batch_list(data: list[Any] | tuple[Any, ...]) -> bool:
    return len(data) > 0 and all(
        hasattr(b, "shape") and len(getattr(b, "shape", ())) == 2 for b in data
    )


# --------------------------------------------------------------------------- parameters


@dataclass
class _Params:
    weights: NDArray[np.float64]
    means: NDArray[np.float64]
    covariances: NDArray[np.float64] | None
    prec_chol: NDArray[np.float64]


def _shift(means: NDArray[np.float64], cov: str) -> NDArray[np.float64]:
    """Points the statistics are taken about: the current means (tied: their average)."""
    if cov == "tied":
        return np.ascontiguousarray(np.repeat(means.mean(axis=0, keepdims=True), len(means), 0))
    return np.ascontiguousarray(means, dtype=np.float64)


def _flipudlr(a: NDArray[Any]) -> NDArray[np.float64]:
    return np.ascontiguousarray(a[::-1, ::-1])


def _prec_chol_from_precisions(prec: NDArray[np.float64], cov: str) -> NDArray[np.float64]:
    """scikit-learn's _compute_precision_cholesky_from_precisions (upper triangular factor)."""
    if cov == "full":
        return np.ascontiguousarray(
            np.stack([_flipudlr(np.linalg.cholesky(_flipudlr(p))) for p in prec])
        )
    if cov == "tied":
        return _flipudlr(np.linalg.cholesky(_flipudlr(prec)))
    return np.ascontiguousarray(np.sqrt(prec))


def _precisions(prec_chol: NDArray[np.float64], cov: str) -> NDArray[np.float64]:
    if cov == "full":
        full: NDArray[np.float64] = np.einsum("kij,klj->kil", prec_chol, prec_chol)
        return full
    if cov == "tied":
        out: NDArray[np.float64] = prec_chol @ prec_chol.T
        return out
    return prec_chol**2


def _n_parameters(cov: str, k: int, d: int) -> int:
    cov_params = {
        "full": k * d * (d + 1) // 2,
        "diag": k * d,
        "tied": d * (d + 1) // 2,
        "spherical": k,
    }[cov]
    return int(cov_params + k * d + k - 1)


def _f32_gain(prec_chol: NDArray[np.float64], cov: str) -> float:
    """Largest factor by which the core's float32 arithmetic scales ``|x - mean|``: the
    largest column sum of ``|prec_chol|`` (full, tied) or its largest entry, at least 1."""
    a = np.abs(prec_chol)
    g = a.sum(axis=-2).max() if cov in ("full", "tied") else a.max()
    return max(1.0, float(g))


def _for_kmeans(x: NDArray[Any]) -> NDArray[Any]:
    """Rows for the core's k-means: float32/float64 as they are (C-contiguous), other
    dtypes as float64."""
    if x.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(x)
    return np.ascontiguousarray(x, dtype=np.float64)


def _for_core(
    blk: NDArray[Any], centre: float, gain: float, x_max: float | None = None
) -> NDArray[Any]:
    """`blk`, or a float64 copy of it when float32 arithmetic on it could overflow.

    The core's float32 terms (squared Mahalanobis terms summed over the features, squares
    summed over 32-row tiles) stay below ``64 (d + 32) (gain (max|x| + centre))^2``, `centre`
    bounding ``|mean|`` terms; a block whose bound passes ``_F32_LIMIT`` (values near 1e16 and
    beyond for a unit-scale model) is computed in float64, which gives the same numbers.
    `x_max` bounds ``|x|`` over all the data when known (saves a pass over the block).
    """
    if blk.dtype != np.float32:
        return blk
    if x_max is None:
        x_max = max(float(blk.max()), -float(blk.min()))
    reach = gain * (x_max + centre)
    if 64.0 * (blk.shape[1] + 32) * reach * reach <= _F32_LIMIT:
        return blk
    return np.ascontiguousarray(blk, dtype=np.float64)


# --------------------------------------------------------------------------- k-means init


def _kmeans_plusplus(
    x: NDArray[Any], k: int, rng: np.random.Generator, threads: int
) -> NDArray[np.float64]:
    """Greedy k-means++ seeds (scikit-learn's ``kmeans_plusplus``: 2 + int(log k) candidates
    per centre) in the core; the random draws come from `rng`, so the seeds depend only on
    them and the data (not on the thread count)."""
    trials = 2 + int(math.log(k))
    first = int(rng.integers(x.shape[0]))
    draws = rng.random((k - 1, trials))
    centers, _ = _core.kmeans_plusplus(x, first, draws, threads)
    out: NDArray[np.float64] = centers
    return out


def _lloyd(
    x: NDArray[Any], centers: NDArray[np.float64], max_iter: int, threads: int
) -> NDArray[np.float64]:
    """Lloyd iterations in the core, as scikit-learn's KMeans: until the centres move less than
    1e-4 of the mean feature variance; an empty cluster takes the row farthest from its
    centre."""
    out, _ = _core.kmeans_lloyd(x, centers, max_iter, 1e-4, threads)
    result: NDArray[np.float64] = out
    return result


# --------------------------------------------------------------------------- estimator


class Familiarity:
    """Gaussian mixture density of embeddings, fitted by EM in the compiled core.

    Follows scikit-learn's estimator contract and ``GaussianMixture``'s parameters, EM and
    attributes (the same log-likelihood after each EM step from the same initial parameters).
    ``score_samples`` gives every sample's log-likelihood: rare data, label errors and edge
    cases score low.

    Parameters
    ----------
    n_components : int, default 5
        Mixture components, >= 1; at most the number of samples.
    covariance_type : {"diag", "full", "spherical", "tied"}, default "diag"
        Per-component diagonal, full, single-variance, or one shared full covariance.
    tol : float, default 1e-3
        EM stops when the mean log-likelihood changes by less than this.
    max_iter : int, default 200
        EM iterations per initialisation, >= 1.
    reg_covar : float, default 1e-6
        Added to the covariances' diagonals; keeps collapsed components positive definite.
    n_init : int, default 1
        Initialisations; the one with the highest final lower bound is kept.
    init : {"kmeans", "k-means++", "random"}, default "kmeans"
        Starting assignment, from which one M-step gives the starting weights, means and
        covariances: k-means++ seeds followed by Lloyd iterations, then every row to its
        nearest centre (scikit-learn's default, "kmeans"); k-means++ seeds and one
        nearest-seed assignment of every row ("k-means++"; scikit-learn's "k-means++"
        differs: it assigns only the k seed points, one to each component); or random
        responsibilities (as scikit-learn's "random"). "kmeans" seeds and iterates on at most
        ``max(20_000, 100 K)`` rows, "k-means++" seeds from at most 100,000 (a seeded random
        subset of an array; the first rows of batches); every row then takes part in the first
        assignment. "kmeans" is the default because it ends fastest: its start is close to a
        mixture optimum, so EM needs fewer iterations (2-4 against ~10 from k-means++ seeds
        alone on 100k x 40, K = 20), and its k-means costs about one EM iteration. Seeding
        (greedy, ``2 + int(log K)`` candidates per centre, as scikit-learn's
        ``kmeans_plusplus``), Lloyd's iterations (scikit-learn's tolerance and empty-cluster
        relocation; Hamerly's distance bounds skip rows whose centre cannot change) and the
        assignment run in the compiled core with float64 distances; the random draws come
        from `random_state`, so the result does not depend on ``n_jobs``. Like scikit-learn's,
        a start is one random draw: on data with many components different seeds can end in
        different local optima (``n_init`` keeps the best of several).
    reduce_dim : int or None, default None
        When the data have more features than this, project onto this many principal
        components first (PCA fitted on the training data, deterministic signs). DeepView
        uses 40.
    random_state : int, numpy Generator or None
        Seed of ``np.random.default_rng``; no global random state is used.
    n_jobs : int or None
        Threads; ``None`` or -1 for all CPUs.
    weights_init, means_init, precisions_init : array-like, optional
        Initial parameters as in scikit-learn's GaussianMixture (shapes (K,), (K, d') and the
        covariance type's shape); d' is the dimension after ``reduce_dim``. As there, each
        one given replaces its part of the parameters estimated from the ``init`` assignment
        and the rest stay: with ``means_init`` alone, the starting weights and covariances
        are those of the ``init`` assignment (the covariances taken about that assignment's
        own means). ``precisions_init`` must be > 0 (diag, spherical) or symmetric positive
        definite (full: each matrix; tied), as scikit-learn checks.
    block_size : int, default 65536
        Rows per block handed to the core (and read at a time from a memory-mapped array).

    Attributes
    ----------
    weights_ : ndarray of float64, shape (n_components,)
    means_ : ndarray of float64, shape (n_components, n_features_model)
    covariances_ : ndarray of float64
        full (K, d', d'), tied (d', d'), diag (K, d'), spherical (K,).
    precisions_, precisions_cholesky_ : ndarray of float64
        Same shapes; the Cholesky factors are upper triangular, as scikit-learn's.
    converged_ : bool
    n_iter_ : int
        EM iterations of the best initialisation.
    lower_bound_ : float
        Mean log-likelihood of the training data at the last EM step.
    lower_bounds_ : list of float
        The same after every EM step of the best initialisation.
    n_features_in_ : int
        Features of the input.
    components_ : ndarray of float64, shape (d', n_features_in_), or None
        PCA axes applied before the mixture (None without reduction).
    mean_ : ndarray of float64, shape (n_features_in_,), or None
        PCA centre.

    Notes
    -----
    float64 input is computed in float64 (matches scikit-learn to about 1e-12); every other
    dtype is converted to float32 per block and computed in float32 with float64 statistics
    (about 1e-6 relative), which is about twice as fast. A float32 block whose values are
    large enough for float32 squares to overflow (about 1e16 and beyond for a model of unit
    scale) is computed in float64 instead, so huge rows get their float64 log-likelihood
    (e.g. -4e39), not NaN. Log-likelihoods below float64's range (rows near 1e154) are -inf.

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> x = np.random.default_rng(0).normal(size=(500, 4))
    >>> model = datagauge.Familiarity(n_components=2, random_state=0).fit(x)
    >>> model.score_samples(x).shape
    (500,)
    """

    def __init__(
        self,
        *,
        n_components: int = 5,
        covariance_type: str = "diag",
        tol: float = 1e-3,
        max_iter: int = 200,
        reg_covar: float = 1e-6,
        n_init: int = 1,
        init: str = "kmeans",
        reduce_dim: int | None = None,
        random_state: Any = None,
        n_jobs: int | None = None,
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        block_size: int = 65536,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.max_iter = max_iter
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.init = init
        self.reduce_dim = reduce_dim
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.block_size = block_size

    lower_bounds_: list[float]
    n_features_in_: int | None

    _PARAM_NAMES = (
        "n_components",
        "covariance_type",
        "tol",
        "max_iter",
        "reg_covar",
        "n_init",
        "init",
        "reduce_dim",
        "random_state",
        "n_jobs",
        "weights_init",
        "means_init",
        "precisions_init",
        "block_size",
    )

    # ------------------------------------------------------------------ sklearn contract

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (scikit-learn's ``get_params``)."""
        return {name: getattr(self, name) for name in self._PARAM_NAMES}

    def set_params(self, **params: Any) -> Familiarity:
        """Set constructor parameters (scikit-learn's ``set_params``); returns self."""
        for name, value in params.items():
            if name not in self._PARAM_NAMES:
                raise ValueError(
                    f"Invalid parameter {name!r} for Familiarity; valid parameters are "
                    f"{', '.join(self._PARAM_NAMES)}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = Familiarity()
        changed = [
            f"{n}={getattr(self, n)!r}"
            for n in self._PARAM_NAMES
            if not _same(getattr(self, n), getattr(defaults, n))
        ]
        return f"Familiarity({', '.join(changed)})"

    # ------------------------------------------------------------------ validation

    def _checked(self) -> dict[str, Any]:
        return {
            "k": check_int(self.n_components, "n_components", minimum=1),
            "cov": check_choice(self.covariance_type, "covariance_type", COVARIANCE_TYPES),
            "tol": check_nonnegative(self.tol, "tol"),
            "max_iter": check_int(self.max_iter, "max_iter", minimum=1),
            "reg": check_nonnegative(self.reg_covar, "reg_covar"),
            "n_init": check_int(self.n_init, "n_init", minimum=1),
            "init": check_choice(self.init, "init", INITS),
            "reduce_dim": None
            if self.reduce_dim is None
            else check_int(self.reduce_dim, "reduce_dim", minimum=1),
            "threads": resolve_n_jobs(self.n_jobs),
            "block": check_int(self.block_size, "block_size", minimum=1),
        }

    def _rng(self) -> np.random.Generator:
        rs = self.random_state
        if isinstance(rs, np.random.Generator):
            return rs
        if rs is None:
            return np.random.default_rng()
        try:
            return np.random.default_rng(check_int(rs, "random_state", minimum=0))
        except TypeError:
            raise TypeError(
                f"random_state must be None, an int or a numpy Generator, got {rs!r} "
                f"({type(rs).__name__})."
            ) from None

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any = None) -> Familiarity:
        """Fit the mixture by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), memory-mapped array, list of arrays
            or callable
            The training embeddings: one array (a ``np.memmap`` is read block by block), a
            list of batches each of shape (n_rows, n_features), or a callable returning a
            fresh iterable of batches (EM reads the data once per iteration).
        y : ignored

        Returns
        -------
        Familiarity
            self, fitted.
        """
        p = self._checked()
        return self._fit_source(_Source(X, p["block"], "X", allow_batches=True), p)

    def _fit_source(self, source: _Source, p: dict[str, Any]) -> Familiarity:
        """:meth:`fit` on a data source, with the checked parameters `p`."""
        rng = self._rng()
        self._reset()
        self._fit_pca(source, p["reduce_dim"])
        self._projected = self._project_once(source)
        try:
            return self._fit_em(source, p, rng)
        finally:
            self._projected = None

    def _project_once(self, source: _Source) -> tuple[_Source, list[NDArray[Any]]] | None:
        """The projected blocks of `source` (the same blocks, projected the same way as each
        EM pass would), kept for the fit's passes where ``_PROJECTED_BYTES`` allows; None
        without a projection, for batches, callables and Dask arrays, or above the budget."""
        comps = getattr(self, "components_", None)
        n = source.n_rows
        # Only rows this process holds or maps: a Dask source's parts stay where they are.
        if comps is None or n is None or (source._array is None and source._memmap is None):
            return None
        if n * comps.shape[0] * 8 > _PROJECTED_BYTES:
            return None
        return source, list(self._blocks(source))

    def _fit_em(self, source: _Source, p: dict[str, Any], rng: np.random.Generator) -> Familiarity:
        """The EM restarts of :meth:`_fit_source` (PCA already fitted)."""
        x_max = self._max_abs(source)  # one pass; EM then needs no overflow check per block
        cov = p["cov"]

        best: tuple[float, _Params, int, bool, list[float]] | None = None
        for _ in range(p["n_init"]):
            params = self._initial_params(source, p, rng, x_max)
            lbs: list[float] = []
            lb, converged, n_iter = -np.inf, False, 0
            for n_iter in range(1, p["max_iter"] + 1):  # noqa: B007
                prev = lb
                stats = self._stats(source, params, cov, p["threads"], x_max)
                lb = stats.loglik / stats.n_samples
                params = _m_step(stats, p["reg"])
                lbs.append(lb)
                if abs(lb - prev) < p["tol"]:
                    converged = True
                    break
            if best is None or lb > best[0]:
                best = (lb, params, n_iter, converged, lbs)
        if best is None:  # pragma: no cover - internal invariant
            raise RuntimeError("internal error: best is unset")
        lb, params, n_iter, converged, lbs = best
        if not converged:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._set(params, cov)
        self.converged_ = converged
        self.n_iter_ = n_iter
        self.lower_bound_ = float(lb)
        self.lower_bounds_ = [float(v) for v in lbs]
        return self

    def partial_fit(self, X: Any, y: Any = None) -> Familiarity:
        """One EM iteration on this batch, from the current parameters.

        The first call initialises the model from this batch (and fits the PCA of
        ``reduce_dim`` on it). For exact EM over data too large for memory pass a
        memory-mapped array, a list of batches or a callable to :meth:`fit` instead; to merge
        statistics computed elsewhere use :meth:`sufficient_statistics` and
        :meth:`apply_statistics`.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        y : ignored

        Returns
        -------
        Familiarity
            self.
        """
        p = self._checked()
        source = _Source(X, p["block"], "X", allow_batches=False)
        if getattr(self, "means_", None) is None:
            self._reset()
            self._fit_pca(source, p["reduce_dim"])
            params = self._initial_params(source, p, self._rng())
            self._set(params, p["cov"])
            self.n_iter_ = 0
            self.lower_bounds_ = []
            self.converged_ = False
        stats = self.sufficient_statistics(X)
        self.apply_statistics(stats)
        return self

    def sufficient_statistics(self, X: Any) -> _core.GmmStats:
        """E-step statistics of X under the current parameters (mergeable).

        Statistics of different blocks (on different workers, say) computed with the same
        fitted parameters add with ``a.merge(b)``; :meth:`apply_statistics` then performs the
        M-step. The objects pickle.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features), memory-mapped array, list of arrays
            or callable

        Returns
        -------
        GmmStats
            With ``n_samples``, ``loglik`` (sum of log-likelihoods), ``nk``, ``s``, ``q``.
        """
        check_is_fitted(self, "means_")
        p = self._checked()
        source = _Source(X, p["block"], "X", allow_batches=True)
        stats: _core.GmmStats = self._stats(
            source, self._params(), self.covariance_type, p["threads"]
        )
        return stats

    def apply_statistics(self, stats: _core.GmmStats) -> Familiarity:
        """M-step from (merged) statistics of :meth:`sufficient_statistics`; returns self.

        Sets the parameters and appends ``stats.loglik / stats.n_samples`` (the mean
        log-likelihood under the previous parameters) to ``lower_bounds_``. ValueError when
        the statistics belong to another model: another covariance type, number of
        components or number of features.
        """
        check_is_fitted(self, "means_")
        if not isinstance(stats, _core.GmmStats):
            raise TypeError(
                f"stats must come from Familiarity.sufficient_statistics, got {type(stats)}."
            )
        p = self._checked()
        if stats.covariance_type != p["cov"] or stats.n_components != len(self.weights_):
            raise ValueError(
                "stats were accumulated for a different model (covariance type or number of "
                "components); compute them with this estimator's sufficient_statistics."
            )
        d = int(self.means_.shape[1])
        if stats.n_features != d:
            raise ValueError(
                f"stats have {stats.n_features} features but this model has {d} (after "
                "reduce_dim, if any); compute them with this estimator's sufficient_statistics "
                f"on data with its {self.n_features_in_} features."
            )
        lb = stats.loglik / stats.n_samples
        params = _m_step(stats, p["reg"])
        self._set(params, p["cov"])
        self.n_iter_ = int(getattr(self, "n_iter_", 0) or 0) + 1
        prev = self.lower_bounds_[-1] if self.lower_bounds_ else -np.inf
        self.lower_bounds_ = [*self.lower_bounds_, float(lb)]
        self.lower_bound_ = float(lb)
        self.converged_ = bool(abs(lb - prev) < p["tol"])
        return self

    # ------------------------------------------------------------------ internals

    def _reset(self) -> None:
        for name in (
            "weights_",
            "means_",
            "covariances_",
            "precisions_",
            "precisions_cholesky_",
            "components_",
            "mean_",
        ):
            setattr(self, name, None)
        self.lower_bounds_ = []
        self.n_features_in_ = None

    def _fit_pca(self, source: _Source, reduce_dim: int | None) -> None:
        """Streaming mean and covariance over the blocks, eigh, deterministic signs."""
        first = next(iter(source.blocks()))
        d = int(first.shape[1])
        self.n_features_in_ = d
        if reduce_dim is None or d <= reduce_dim:
            return
        # Moments about the mean of the first block (keeps the scatter accurate), mergeable.
        shift = first.astype(np.float64).mean(axis=0)
        del first

        def moments(src: _Source) -> tuple[int, NDArray[np.float64], NDArray[np.float64]]:
            n = 0
            total = np.zeros(d)
            scatter = np.zeros((d, d))
            for blk in src.blocks():
                check_features(blk.shape[1], d, src.name, "Familiarity")
                c = blk.astype(np.float64) - shift
                total += c.sum(axis=0)
                scatter += c.T @ c
                n += blk.shape[0]
            return n, total, scatter

        def add(
            a: tuple[int, NDArray[np.float64], NDArray[np.float64]],
            b: tuple[int, NDArray[np.float64], NDArray[np.float64]],
        ) -> tuple[int, NDArray[np.float64], NDArray[np.float64]]:
            return a[0] + b[0], a[1] + b[1], a[2] + b[2]

        n, total, scatter = source.map_reduce(moments, add)
        delta = total / n
        cov = (scatter - n * np.outer(delta, delta)) / max(n - 1, 1)
        vals, vecs = np.linalg.eigh(cov)
        order = np.argsort(vals, kind="stable")[::-1][:reduce_dim]
        comps = vecs[:, order].T
        signs = np.sign(comps[np.arange(comps.shape[0]), np.argmax(np.abs(comps), axis=1)])
        signs[signs == 0] = 1.0
        self.components_ = np.ascontiguousarray(comps * signs[:, None])
        self.mean_ = shift + delta

    def _max_abs(self, source: _Source) -> float | None:
        """A bound on ``|value|`` of the (projected) rows of an in-memory float32 array, for
        the float32 overflow check of every block at once; None for other sources, whose
        blocks are then checked one by one (no extra pass over data read from disk)."""
        x = source._array
        if x is None or x.dtype != np.float32:
            return None
        top = max(float(x.max()), -float(x.min()))
        mean = getattr(self, "mean_", None)
        if getattr(self, "components_", None) is not None and mean is not None:
            # |(x - mean) . c| <= ||x - mean||_2 for the unit rows c of components_
            top = math.sqrt(x.shape[1]) * (top + float(np.abs(mean).max()))
        return top

    def _transform(self, blk: NDArray[Any]) -> NDArray[Any]:
        comps = getattr(self, "components_", None)
        if comps is None:
            return blk
        out = (blk.astype(np.float64) - self.mean_) @ comps.T
        return np.ascontiguousarray(out, dtype=blk.dtype)

    def _blocks(self, source: _Source) -> Iterator[NDArray[Any]]:
        projected = getattr(self, "_projected", None)
        if projected is not None and projected[0] is source:
            yield from projected[1]
            return
        for blk in source.blocks():
            if self.n_features_in_ is not None:
                check_features(blk.shape[1], self.n_features_in_, source.name, "Familiarity")
            yield self._transform(blk)

    def _stats(
        self,
        source: _Source,
        params: _Params,
        cov: str,
        threads: int,
        x_max: float | None = None,
    ) -> Any:
        shift = _shift(params.means, cov)
        centre = 3.0 * float(np.abs(params.means).max())
        gain = _f32_gain(params.prec_chol, cov)

        def accumulate(blk: NDArray[Any]) -> _core.GmmStats:
            return _core.gmm_accumulate(
                _for_core(blk, centre, gain, x_max),
                params.weights,
                params.means,
                params.prec_chol,
                cov,
                shift,
                threads,
            )

        return self._merged(source, accumulate)

    def _merged(
        self, source: _Source, block_stats: Callable[[NDArray[Any]], _core.GmmStats]
    ) -> _core.GmmStats:
        """`block_stats` of every (transformed) block of the source, merged."""

        def over(src: _Source) -> _core.GmmStats:
            total = None
            for blk in self._blocks(src):
                st = block_stats(blk)
                if total is None:
                    total = st
                else:
                    total.merge(st)
            if total is None:  # pragma: no cover - a source has at least one block
                raise RuntimeError("internal error: a source without blocks")
            return total

        return source.map_reduce(over, _merge_stats)

    def _initial_params(
        self,
        source: _Source,
        p: dict[str, Any],
        rng: np.random.Generator,
        x_max: float | None = None,
    ) -> _Params:
        k, cov, threads = p["k"], p["cov"], p["threads"]
        init = p["init"]
        rows = max(_KMEANS_ROWS, 100 * k) if init == "kmeans" else _INIT_ROWS
        sample = self._transform(source.sample(rows, rng))
        n = source.n_rows
        if (n is not None and n < k) or sample.shape[0] < k:
            raise ValueError(
                f"n_components={k} needs at least {k} samples, got "
                f"{n if n is not None else sample.shape[0]}; lower n_components or add data."
            )
        d = sample.shape[1]
        weights_init = _opt_array(self.weights_init, "weights_init", (k,))
        means_init = _opt_array(self.means_init, "means_init", (k, d))
        prec_shape = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[cov]
        prec_init = _opt_array(self.precisions_init, "precisions_init", prec_shape)
        if weights_init is not None and (
            np.any(weights_init <= 0) or not np.isclose(weights_init.sum(), 1.0, atol=1e-8)
        ):
            raise ValueError(
                "weights_init must be positive and sum to 1, got sum "
                f"{float(weights_init.sum()):.6g}; divide it by its sum."
            )
        if weights_init is not None and means_init is not None and prec_init is not None:
            return _Params(weights_init, means_init, None, _checked_prec_chol(prec_init, cov))

        centers: NDArray[np.float64] | None = None
        # As scikit-learn: the assignment comes from `init` even when means_init is given;
        # the given parameters replace the estimated ones after the M-step below.
        if init in ("k-means++", "kmeans"):
            xs = _for_kmeans(sample)
            centers = _kmeans_plusplus(xs, k, rng, threads)
            if init == "kmeans":
                centers = _lloyd(xs, centers, _LLOYD_ITER, threads)
        total = None
        if centers is None:  # random responsibilities, drawn in the order of the rows
            offset = sample.astype(np.float64).mean(axis=0)
            shift = _shift(np.ascontiguousarray(np.repeat(offset[None, :], k, axis=0)), cov)
            reach = float(np.abs(shift).max())
            for blk in self._blocks(source):
                resp = rng.uniform(size=(blk.shape[0], k))
                resp /= resp.sum(axis=1, keepdims=True)
                st = _core.gmm_accumulate_resp(
                    _for_core(blk, reach, 1.0, x_max), resp, cov, shift, threads
                )
                if total is None:
                    total = st
                else:
                    total.merge(st)
            if total is None:  # pragma: no cover - internal invariant
                raise RuntimeError("internal error: total is unset")
        else:  # every row to its nearest centre, in the core
            seeds = centers
            shift = _shift(seeds, cov)
            reach = float(np.abs(shift).max())

            def assign(blk: NDArray[Any]) -> _core.GmmStats:
                return _core.gmm_accumulate_nearest(
                    _for_core(blk, reach, 1.0, x_max), seeds, cov, shift, threads
                )

            total = self._merged(source, assign)
        params = _m_step(total, p["reg"])
        if weights_init is not None:
            params.weights = weights_init
        if means_init is not None:
            params.means = means_init
        if prec_init is not None:
            params.prec_chol = _checked_prec_chol(prec_init, cov)
            params.covariances = None
        return params

    def _set(self, params: _Params, cov: str) -> None:
        self.weights_ = params.weights
        self.means_ = params.means
        self.precisions_cholesky_ = params.prec_chol
        self.precisions_ = _precisions(params.prec_chol, cov)
        if params.covariances is None:
            prec = self.precisions_
            inv = np.asarray(
                np.linalg.inv(prec) if cov in ("full", "tied") else 1.0 / prec, dtype=np.float64
            )
            params.covariances = inv
        self.covariances_ = params.covariances

    def _params(self) -> _Params:
        prec_chol = np.ascontiguousarray(self.precisions_cholesky_, dtype=np.float64)
        check_positive_diagonal(prec_chol, self.covariance_type, "precisions_cholesky_")
        return _Params(
            np.ascontiguousarray(self.weights_, dtype=np.float64),
            np.ascontiguousarray(self.means_, dtype=np.float64),
            None,
            prec_chol,
        )

    # ------------------------------------------------------------------ scoring

    def _score(self, X: Any, return_resp: bool) -> tuple[NDArray[np.float64], Any]:
        check_is_fitted(self, "means_")
        p = self._checked()
        source = _Source(X, p["block"], "X", allow_batches=False)
        params = self._params()
        centre = 3.0 * float(np.abs(params.means).max())
        gain = _f32_gain(params.prec_chol, self.covariance_type)
        lls, resps = [], []
        for blk in self._blocks(source):
            ll, resp = _core.gmm_score(
                _for_core(blk, centre, gain),
                params.weights,
                params.means,
                params.prec_chol,
                self.covariance_type,
                return_resp,
                p["threads"],
            )
            lls.append(ll)
            resps.append(resp)
        resp_all = np.concatenate(resps) if return_resp else None
        ll_all = np.concatenate(lls)
        # finite input: NaN only where every component's term overflowed float64
        ll_all[np.isnan(ll_all)] = -np.inf
        return ll_all, resp_all

    def score_samples(self, X: Any) -> NDArray[np.float64]:
        """Log-likelihood of every sample under the mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Same features as at fit time; a ``np.memmap`` is read block by block.

        Returns
        -------
        ndarray of float64, shape (n_samples,)
            ``log p(x)``; higher is more familiar. -inf where it is below float64's range.
        """
        return self._score(X, False)[0]

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood of the samples (a float)."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Posterior probability of each component, float64 of shape (n_samples, K)."""
        resp = self._score(X, True)[1]
        out: NDArray[np.float64] = resp
        return out

    def predict(self, X: Any) -> NDArray[np.int64]:
        """Most probable component of each sample, int64 of shape (n_samples,)."""
        labels: NDArray[np.int64] = np.argmax(self.predict_proba(X), axis=1).astype(np.int64)
        return labels

    def _n_parameters(self) -> int:
        return _n_parameters(self.covariance_type, len(self.weights_), self.means_.shape[1])

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on X (lower is better), as scikit-learn's."""
        ll = self.score_samples(X)
        return float(-2 * ll.sum() + self._n_parameters() * math.log(ll.shape[0]))

    def aic(self, X: Any) -> float:
        """Akaike information criterion on X (lower is better), as scikit-learn's."""
        ll = self.score_samples(X)
        return float(-2 * ll.sum() + 2 * self._n_parameters())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is b
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _merge_stats(a: _core.GmmStats, b: _core.GmmStats) -> _core.GmmStats:
    """a + b as a new object (the inputs stay as they are)."""
    out = a.copy()
    out.merge(b)
    return out


def _m_step(stats: Any, reg: float) -> _Params:
    check_statistics_finite(np.asarray(stats.loglik), stats.s, stats.q)
    w, mu, cov, pc = _core.gmm_m_step(stats, reg)
    check_statistics_finite(mu, cov, pc)
    return _Params(w, mu, cov, pc)


def _opt_array(value: Any, name: str, shape: tuple[int, ...]) -> NDArray[np.float64] | None:
    if value is None:
        return None
    arr = np.array(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(
            f"{name} must have shape {shape} (after reduce_dim, if any), got {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return np.ascontiguousarray(arr)


def _checked_prec_chol(prec: NDArray[np.float64], cov: str) -> NDArray[np.float64]:
    check_precisions(prec, cov, "precisions_init")
    try:
        return _prec_chol_from_precisions(prec, cov)
    except np.linalg.LinAlgError as exc:
        raise ValueError(
            "precisions_init is too close to singular to factorise (its eigenvalues are "
            "positive but tiny next to the largest); pass better conditioned precisions, e.g. "
            "add a small multiple of the identity."
        ) from exc
