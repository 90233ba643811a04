"""The k-nearest-neighbour graph: one search, many answers.

:func:`neighbor_graph` searches once and keeps everything the analyses need: the k nearest
other points of every point with their exact distances, which rows are bitwise identical
(found by hashing, not by distance), and a fingerprint of the data. Coverage, duplicates,
outliers and label errors all accept a :class:`NeighborGraph` in place of the embeddings, so
one search serves every question; :meth:`NeighborGraph.restrict` gives fewer neighbours
without searching again, and :meth:`NeighborGraph.save` / :meth:`NeighborGraph.load` keep a
graph on disk (memory-mapped on load) next to the embeddings it came from.

On-disk format (a folder, written atomically: a temporary folder renamed into place):

- ``indices.npy``: int64 (n, k); ``distances.npy``: float32 (n, k);
  ``duplicate_of.npy``: int64 (n,); ``feature_range.npy``: float32 (2, n_features);
- ``graph.json``: ``format`` ("datagauge.NeighborGraph"), ``version`` (1), ``k``, ``engine``,
  ``recall``, ``n_samples``, ``n_features``, ``dtype``, ``checksum`` and, for each array file,
  its shape and byte size (a truncated file is caught on load). ``graph.json`` is written last.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._atomic import atomic_dir, save_npy, write_text
from ._results import ResultBase, _frame
from ._threads import resolve_n_jobs
from ._validation import check_choice, check_embeddings, check_int, check_k
from .neighbors import (
    HNSW,
    IVF,
    Exact,
    column_means,
    exact_kth,
    resolve_index,
    sample_rows,
    scale_down,
    scale_exponent,
    self_knn_distances,
)

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse

__all__ = [
    "NeighborGraph",
    "as_graph",
    "fingerprint",
    "fingerprint_from_hashes",
    "hash_groups",
    "neighbor_graph",
    "row_duplicates",
    "row_hashes",
]

_FORMAT = "datagauge.NeighborGraph"
_VERSION = 1
_ARRAYS = ("indices", "distances", "duplicate_of", "feature_range")
_HASH_BLOCK = 1 << 15


def check_save_target(target: Path, overwrite: bool) -> None:
    """Raise FileExistsError unless a graph may be saved at `target`: nothing there, or (with
    `overwrite`) a graph saved before (a folder with ``graph.json``); never anything else."""
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        raise FileExistsError(
            f"{target} already exists; pass overwrite=True (--overwrite) to replace a saved "
            "graph, or choose another folder."
        )
    if not (target.is_dir() and (target / "graph.json").is_file()):
        raise FileExistsError(
            f"{target} exists and is not a saved graph (no graph.json inside); overwrite "
            "replaces only a saved graph: choose another folder."
        )


def _row_hashes(x: NDArray[np.float32], seed: int) -> NDArray[np.uint64]:
    """A 64-bit multilinear hash of every row's float32 bit patterns (-0.0 counted as 0.0)."""
    n, d = x.shape
    rng = np.random.default_rng([0xD06A, seed])
    mult = rng.integers(1, 2**63, size=d, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    add = rng.integers(0, 2**63, size=d, dtype=np.uint64)
    out = np.empty(n, dtype=np.uint64)
    for s in range(0, n, _HASH_BLOCK):
        bits = (x[s : s + _HASH_BLOCK] + np.float32(0)).view(np.uint32).astype(np.uint64)
        # Products of 64-bit integers wrap modulo 2^64 (NumPy integer arithmetic).
        h = ((bits + add) * mult).sum(axis=1, dtype=np.uint64)
        out[s : s + _HASH_BLOCK] = h ^ (h >> np.uint64(29))
    return out


def row_duplicates(x: NDArray[np.float32]) -> NDArray[np.int64]:
    """For every row of validated float32 `x`, the smallest index of a bitwise-identical row
    (-0.0 and 0.0 count as equal); the row's own index when no earlier row equals it.

    Rows are grouped by a 64-bit hash, then every grouped row is compared with its group's
    first row; a hash collision (never seen; about n^2 / 2^64) falls back to exact grouping.
    """
    n = x.shape[0]
    rep = hash_groups(_row_hashes(x, 0))
    grouped = np.flatnonzero(rep != np.arange(n))
    for s in range(0, grouped.size, _HASH_BLOCK):
        rows = grouped[s : s + _HASH_BLOCK]
        if not (x[rows] + np.float32(0) == x[rep[rows]] + np.float32(0)).all():
            return _exact_duplicates(x)
    return rep


def hash_groups(*hashes: NDArray[np.uint64]) -> NDArray[np.int64]:
    """For every row, the smallest index of a row with the same hash values (int64 (n,))."""
    n = hashes[0].shape[0]
    order = np.lexsort(hashes[::-1])  # stable: equal keys keep the index order
    new_key = np.ones(n, dtype=bool)
    for h in hashes:
        hs = h[order]
        new_key[1:] &= hs[1:] == hs[:-1]
    new_key = ~new_key
    new_key[0] = True
    starts = np.flatnonzero(new_key)
    sizes = np.diff(np.concatenate([starts, [n]]))
    rep = np.empty(n, dtype=np.int64)
    rep[order] = np.repeat(order[starts], sizes)
    return rep


def row_hashes(x: NDArray[np.float32], seed: int) -> NDArray[np.uint64]:
    """The 64-bit row hashes (seed 0: duplicates; seed 1: the fingerprint), for Dask chunks."""
    return _row_hashes(x, seed)


def fingerprint_from_hashes(shape: tuple[int, int], hashes: NDArray[np.uint64]) -> str:
    """:func:`fingerprint` from the seed-1 row hashes of all rows, in order."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.asarray(shape, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(hashes, dtype=np.uint64).tobytes())
    return digest.hexdigest()


def _exact_duplicates(x: NDArray[np.float32]) -> NDArray[np.int64]:
    """:func:`row_duplicates` by sorting the rows' bytes (slower; exact without hashing)."""
    rows = np.ascontiguousarray(x + np.float32(0)).view(np.dtype((np.void, 4 * x.shape[1])))
    _, first, inverse = np.unique(rows.ravel(), return_index=True, return_inverse=True)
    rep: NDArray[np.int64] = first[inverse.ravel()].astype(np.int64)
    return rep


def fingerprint(x: NDArray[np.float32]) -> str:
    """Checksum (hex) of validated float32 data: its shape and every value, in order."""
    return fingerprint_from_hashes(x.shape, _row_hashes(x, 1))


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class NeighborGraph(ResultBase):
    """The k nearest other points of every point, with exact Euclidean distances.

    Build it with :func:`neighbor_graph`; pass it to :func:`datagauge.coverage`,
    :func:`datagauge.duplicates`, :func:`datagauge.outliers` or :func:`datagauge.label_errors`
    in place of the embeddings.

    Attributes
    ----------
    indices : ndarray of int64, shape (n_samples, k)
        Neighbours of every point, nearest first; the point itself is excluded. Among
        neighbours at exactly the same distance the order is by index.
    distances : ndarray of float32, shape (n_samples, k)
        Euclidean distances to them, ascending along each row (exact, whatever the engine).
    duplicate_of : ndarray of int64, shape (n_samples,)
        The smallest index of a row bitwise identical to this one (as float32; -0.0 equals
        0.0); the row's own index when no earlier row is identical.
    feature_range : ndarray of float32, shape (2, n_features)
        Per-feature minimum (row 0) and maximum (row 1) of the data.
    engine : str
        The ``index`` the graph was searched with: ``"exact"``, ``"kdtree"``, ``"brute"``,
        ``"flat"``, ``"hnsw"``, ``"ivf"`` or ``"faiss"`` (an index of your own).
    recall : float or None
        For an approximate engine, the recall@k (k as built, before any :meth:`restrict`)
        measured on a fixed sample of 512 points
        against exact search; None when the search was exact.
    dtype : str
        dtype of the embeddings as given (searched as float32).
    checksum : str
        Fingerprint of the float32 data (shape and every value); :meth:`check` compares it.
    """

    indices: NDArray[np.int64]
    distances: NDArray[np.float32]
    duplicate_of: NDArray[np.int64]
    feature_range: NDArray[np.float32]
    engine: str
    recall: float | None
    dtype: str
    checksum: str

    @property
    def k(self) -> int:
        """Neighbours per point (columns of ``indices``)."""
        return int(self.indices.shape[1])

    @property
    def n_samples(self) -> int:
        """Points in the graph."""
        return int(self.indices.shape[0])

    @property
    def n_features(self) -> int:
        """Features of the embeddings the graph was built from."""
        return int(self.feature_range.shape[1])

    def compute(self) -> NeighborGraph:
        """This graph with NumPy arrays: a graph from :func:`datagauge.dask.neighbor_graph`
        holds lazy Dask arrays, computed here together (one search); others are returned as
        they are."""
        if not hasattr(self.indices, "dask") and not hasattr(self.distances, "dask"):
            return self
        dask: Any = importlib.import_module("dask")  # Dask's own annotations are partial
        indices, distances = dask.compute(self.indices, self.distances)
        return replace(self, indices=np.asarray(indices), distances=np.asarray(distances))

    def restrict(self, k: int) -> NeighborGraph:
        """The graph of the first `k` neighbours of every point, without a new search.

        Raises
        ------
        ValueError
            If the graph holds fewer than `k` neighbours per point.
        """
        k = check_int(k, "k", minimum=1)
        if k > self.k:
            raise ValueError(
                f"the graph holds {self.k} neighbours per point but k={k} were asked for; "
                f"build it with datagauge.neighbor_graph(embeddings, k={k}) (or more), or ask "
                f"for k <= {self.k}."
            )
        if k == self.k:
            return self
        return replace(self, indices=self.indices[:, :k], distances=self.distances[:, :k])

    def check(self, embeddings: Any, *, name: str = "embeddings") -> None:
        """Raise ValueError unless `embeddings` are the data this graph was built from."""
        x = check_embeddings(embeddings, name=name)
        if x.shape != (self.n_samples, self.n_features):
            raise ValueError(
                f"{name} have shape {x.shape} but the graph was built from data of shape "
                f"({self.n_samples}, {self.n_features}); pass the embeddings the graph was "
                "built from, or build a new graph with datagauge.neighbor_graph."
            )
        if fingerprint(x) != self.checksum:
            raise ValueError(
                f"{name} differ from the data this graph was built from (same shape, other "
                "values or order); pass the embeddings the graph was built from, or build a new "
                "graph with datagauge.neighbor_graph."
            )

    def to_csr(self) -> scipy.sparse.csr_matrix:
        """The graph as a SciPy sparse (n_samples, n_samples) matrix of distances (row i holds
        i's neighbours; a zero distance is stored explicitly)."""
        import scipy.sparse

        graph = self.compute()
        n, k = graph.indices.shape
        indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
        return scipy.sparse.csr_matrix(
            (graph.distances.ravel().astype(np.float64), graph.indices.ravel(), indptr),
            shape=(n, n),
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain Python objects, plus ``k``, ``n_samples`` and ``n_features``."""
        out = ResultBase.to_dict(self.compute())
        out.update(k=self.k, n_samples=self.n_samples, n_features=self.n_features)
        return out

    def to_dataframe(self) -> pd.DataFrame:
        """One row per edge: ``sample``, ``rank`` (1 = nearest), ``neighbor``, ``distance``."""
        graph = self.compute()
        n, k = graph.indices.shape
        return _frame(
            {
                "sample": np.repeat(np.arange(n, dtype=np.int64), k),
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n),
                "neighbor": graph.indices.ravel(),
                "distance": graph.distances.ravel(),
            }
        )

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the graph to the folder `path` (format in the module docstring), atomically.

        Parameters
        ----------
        path : str or path-like
            Folder to create, e.g. ``"train.graph"``.
        overwrite : bool, default False
            Replace an existing saved graph (a folder with ``graph.json``); otherwise an
            existing `path` raises FileExistsError. Anything else at `path` (a file, a folder
            no graph was saved in) is never replaced.

        Returns
        -------
        pathlib.Path
            `path`.
        """
        target = Path(path)
        check_save_target(target, overwrite)
        graph = self.compute()
        meta: dict[str, Any] = {
            "format": _FORMAT,
            "version": _VERSION,
            "k": self.k,
            "engine": self.engine,
            "recall": self.recall,
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "dtype": self.dtype,
            "checksum": self.checksum,
            "arrays": {},
        }
        with atomic_dir(target, overwrite=overwrite) as tmp:
            for name in _ARRAYS:
                array = np.ascontiguousarray(getattr(graph, name))
                file = tmp / f"{name}.npy"
                save_npy(file, array)
                meta["arrays"][name] = {
                    "shape": list(array.shape),
                    "dtype": str(array.dtype),
                    "bytes": file.stat().st_size,
                }
            write_text(tmp / "graph.json", json.dumps(meta, indent=1))
        return target

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        mmap: bool = True,
        embeddings: Any = None,
    ) -> NeighborGraph:
        """Read a graph written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            The folder.
        mmap : bool, default True
            Memory-map the arrays (read-only) instead of reading them into memory.
        embeddings : array-like of shape (n_samples, n_features), optional
            The data the graph is meant for: checked against the stored fingerprint, so a
            graph built from other data raises ValueError instead of answering wrongly.

        Raises
        ------
        FileNotFoundError, ValueError
            A missing folder, a folder that is not a saved graph, a truncated or damaged file,
            or `embeddings` that are not the graph's data.
        """
        folder = Path(path)
        meta_file = folder / "graph.json"
        if not meta_file.is_file():
            if not folder.exists():
                raise FileNotFoundError(f"no saved graph at {folder}: the folder does not exist.")
            raise ValueError(
                f"{folder} is not a saved NeighborGraph (no graph.json inside); save one with "
                "graph.save(path)."
            )
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"format is {meta.get('format')!r}")
            if meta.get("version") != _VERSION:
                raise ValueError(f"version {meta.get('version')!r} is not {_VERSION}")
            arrays = {}
            for name in _ARRAYS:
                info = meta["arrays"][name]
                file = folder / f"{name}.npy"
                size = file.stat().st_size
                if size != info["bytes"]:
                    raise ValueError(
                        f"{file.name} has {size} bytes where {info['bytes']} were written "
                        "(truncated or replaced)"
                    )
                array = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
                if list(array.shape) != info["shape"] or str(array.dtype) != info["dtype"]:
                    raise ValueError(f"{file.name} does not hold the array graph.json describes")
                arrays[name] = array
            n, k, d = int(meta["n_samples"]), int(meta["k"]), int(meta["n_features"])
            if arrays["indices"].shape != (n, k) or arrays["feature_range"].shape != (2, d):
                raise ValueError("array shapes disagree with graph.json")
            graph = cls(
                indices=arrays["indices"],
                distances=arrays["distances"],
                duplicate_of=arrays["duplicate_of"],
                feature_range=arrays["feature_range"],
                engine=str(meta["engine"]),
                recall=None if meta["recall"] is None else float(meta["recall"]),
                dtype=str(meta["dtype"]),
                checksum=str(meta["checksum"]),
            )
        except (OSError, KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(
                f"{folder} is not a readable saved NeighborGraph ({exc}); it may be truncated "
                "or damaged: build the graph again with datagauge.neighbor_graph and save it."
            ) from exc
        if embeddings is not None:
            graph.check(embeddings)
        return graph


def neighbor_graph(
    embeddings: Any,
    k: int = 20,
    *,
    index: Any = "exact",
    n_jobs: int | None = None,
    device: Literal["auto", "cpu", "gpu"] = "auto",
) -> NeighborGraph:
    """Search the k nearest other points of every point once, for every analysis.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        Finite real numbers; converted once to float32.
    k : int, default 20
        Neighbours per point, ``1 <= k < n_samples``: the most any analysis on the graph will
        ask for (label errors use 50 by default; coverage, outliers 20; duplicates 10).
    index : {"exact", "kdtree", "brute", "flat", "hnsw", "ivf"}, Exact, HNSW, IVF or faiss.Index
        Search engine, as in :func:`datagauge.kneighbors` (exact by default).
    n_jobs : int or None
        Threads; ``None`` or -1 for all CPUs.
    device : {"auto", "cpu", "gpu"}
        Where FAISS indexes run.

    Returns
    -------
    NeighborGraph
        ``indices`` (int64 (n, k)), ``distances`` (float32 (n, k), exact, ascending),
        ``duplicate_of``, ``engine``, ``recall`` (approximate engines), fingerprint.

    Examples
    --------
    >>> import numpy as np, datagauge
    >>> x = np.random.default_rng(0).normal(size=(1000, 16))
    >>> g = datagauge.neighbor_graph(x, k=20)
    >>> g.indices.shape, g.restrict(5).distances.shape
    ((1000, 20), (1000, 5))
    """
    x = check_embeddings(embeddings)
    dtype = str(np.asarray(embeddings).dtype)
    k = check_k(k, x.shape[0])
    spec = resolve_index(index)
    device = check_choice(device, "device", ("auto", "cpu", "gpu"))  # type: ignore[assignment]
    dist, idx = self_knn_distances(x, k, spec, resolve_n_jobs(n_jobs), device)
    recall = None if isinstance(spec, Exact) else sample_recall(x, dist, k)
    return NeighborGraph(
        indices=idx,
        distances=dist,
        duplicate_of=row_duplicates(x),
        feature_range=np.stack([x.min(axis=0), x.max(axis=0)]),
        engine=_engine_name(index, spec),
        recall=recall,
        dtype=dtype,
        checksum=fingerprint(x),
    )


def _engine_name(index: Any, spec: Any) -> str:
    if isinstance(index, str):
        return index
    if isinstance(spec, Exact):
        return "exact" if spec.engine == "auto" else spec.engine
    if isinstance(spec, HNSW):
        return "hnsw"
    if isinstance(spec, IVF):
        return "ivf"
    return "faiss"


def sample_recall(x: NDArray[np.float32], dist: NDArray[np.float32], k: int) -> float:
    """Recall@k of k-NN lists with exact distances `dist` (float32 (n, k)), measured on a
    fixed sample of at most 512 rows against exact search. A listed neighbour counts as
    found when it is no farther than the exact k-th neighbour (ties cannot look wrong)."""
    ids = sample_rows(x.shape[0], 0)
    exponent = scale_exponent(x.min(axis=0), x.max(axis=0))
    scaled = scale_down(x, exponent)
    kth = exact_kth(scaled, ids, k, column_means(scaled))
    found = np.ldexp(dist[ids].astype(np.float64), -exponent) ** 2
    hits = (found <= (kth * (1 + 1e-6) + 1e-30)[:, None]).sum(axis=1)
    return float(np.minimum(hits, k).sum() / (k * ids.size))


def _check_lists(graph: NeighborGraph) -> None:
    """A graph's lists must be what a search returns (a file may have been edited)."""
    n = graph.n_samples
    dist, idx = graph.distances, graph.indices
    if idx.shape != dist.shape or graph.duplicate_of.shape != (n,):
        raise ValueError("the graph's arrays disagree in shape; build the graph again.")
    bad = None
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = f"neighbour indices outside [0, {n})"
    elif not np.isfinite(dist).all() or (dist < 0).any():
        bad = "non-finite or negative distances"
    elif (dist[:, 1:] < dist[:, :-1]).any():
        bad = "rows whose distances are not ascending"
    elif (graph.duplicate_of < 0).any() or (graph.duplicate_of >= n).any():
        bad = f"duplicate ids outside [0, {n})"
    if bad is not None:
        raise ValueError(
            f"the graph holds {bad}, which no search returns; it was changed or damaged: "
            "build it again with datagauge.neighbor_graph."
        )


def as_graph(
    embeddings_or_graph: Any,
    k: int,
    *,
    index: Any = None,
    n_jobs: int | None = None,
    name: str = "embeddings",
) -> NeighborGraph:
    """A graph of `k` neighbours per point: a NeighborGraph restricted to k columns (its own
    error when it holds fewer), or the embeddings validated and searched with `index` (None:
    ``"exact"``). An `index` given with a graph is an error: nothing is searched."""
    if isinstance(embeddings_or_graph, NeighborGraph):
        if index is not None:
            raise ValueError(
                f"index={index!r} sets up a k-NN search, but a NeighborGraph was given: its "
                "lists are used as they are and nothing is searched; drop index, or pass the "
                "embeddings to search them with it."
            )
        graph = embeddings_or_graph.compute()
        k = check_int(k, "k", minimum=1)
        if k >= graph.n_samples:
            check_k(k, graph.n_samples)
        graph = graph.restrict(k)
        _check_lists(graph)
        return graph
    x = check_embeddings(embeddings_or_graph, name=name)
    engine = "exact" if index is None else index
    return neighbor_graph(x, check_k(k, x.shape[0]), index=engine, n_jobs=n_jobs)
