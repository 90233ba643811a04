"""Neighbour-graph benchmark: one k-NN graph, three analyses, side by side with the peers.

Measures, on the same seeded 64-d clustered data with planted problems (exact duplicates,
near duplicates, label flips, outliers) at n = 10k, 100k and 1M:

1. datagauge: (a) ``neighbor_graph(x, k=50)`` alone and (b) the graph plus ``duplicates``,
   ``outliers`` and ``label_errors`` all read off that one graph, each a whole call as a user
   would time it; the ratio (b) / (a) says what the analyses cost over the search.
2. cleanlab 2.9 ``Datalab.find_issues(features=x, issue_types={"near_duplicate": {},
   "outlier": {}, "label": {}})`` with the labels as its data (label issues from features
   alone: Datalab fits a ``KNeighborsClassifier(n_neighbors=11)`` and takes its
   self-vote-corrected class probabilities as ``pred_probs``; no cross-validated model).
3. DataEval 1.1.4, in three separate measurements: ``dataeval.core.label_errors(x, labels,
   k=50)``; ``Duplicates(flags=ImageStats.HASH_XXHASH).evaluate`` on the embeddings reshaped as
   8 x 8 one-channel images (exact duplicates by hashing); and ``cluster(x)`` (HDBSCAN, its
   default) followed by ``Duplicates().from_clusters`` and ``Outliers(flags=ImageStats.NONE)
   .from_clusters`` (near duplicates and outliers from embeddings).

Agreement: how many of the planted items each tool finds (duplicate pairs put in one group;
outliers and label flips in the flagged set and in the top N of the ranking, N = the number
planted), and whether DataEval's ``label_errors`` scores and flagged set equal datagauge's
``method="distance_ratio"``.

Every measurement runs in its own subprocess (its own peak RSS); the peers run with the Python
of their own virtualenvs, with a timeout and an address-space cap, and a peer that times out
or runs out of memory is recorded as such. Data travel as temporary ``.npy`` files. Each
worker first runs its calls once on the first 1,000 rows (imports, Numba compilation), untimed.

Set-up (peers in their own virtualenvs)::

    python3 -m venv benchmarks/.venv-dataeval
    benchmarks/.venv-dataeval/bin/pip install torch==2.13.0
    benchmarks/.venv-dataeval/bin/pip install dataeval==1.1.4 psutil
    python3 -m venv benchmarks/.venv-cleanlab
    benchmarks/.venv-cleanlab/bin/pip install "cleanlab[datalab]==2.9.0" scikit-learn psutil

Run (from the repository root, with datagauge importable)::

    python benchmarks/bench_graph.py --quick          # 10k only, under a minute
    python benchmarks/bench_graph.py                  # 10k, 100k, 1M (hours: the peers)
    python benchmarks/bench_graph.py --sizes 100000 --peers cleanlab

Results go to ``benchmarks/results/graph-<timestamp>.json`` (and ``.md``); the markdown
tables are also printed. This file is also its own worker (``--worker``); a worker imports
only the library it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _harness import (
    MIB,
    cpu_s,
    machine_info,
    peak_rss,
    reset_peak,
    rss_now,
    run_job,
    system_cpu,
    temp_dir,
    write_text,
)

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
PEER_PYTHON = {
    "cleanlab": HERE / ".venv-cleanlab" / "bin" / "python",
    "dataeval": HERE / ".venv-dataeval" / "bin" / "python",
}
SETUP = {
    "cleanlab": "python3 -m venv benchmarks/.venv-cleanlab\n"
    'benchmarks/.venv-cleanlab/bin/pip install "cleanlab[datalab]==2.9.0" scikit-learn psutil',
    "dataeval": "python3 -m venv benchmarks/.venv-dataeval\n"
    "benchmarks/.venv-dataeval/bin/pip install torch==2.13.0\n"
    "benchmarks/.venv-dataeval/bin/pip install dataeval==1.1.4 psutil",
}

D = 64
K_GRAPH = 50  # the largest k any analysis asks for (label errors)
CLASSES = 16  # mixture components = labels
LATENT = 6
# Planted problems, as shares of n (each at least 5 items).
SHARE_EXACT = 0.001  # exact copies of clean rows
SHARE_NEAR = 0.001  # copies plus Gaussian noise of NEAR_SIGMA per feature
SHARE_FLIP = 0.005  # labels changed to another class
SHARE_OUTLIER = 0.001  # clean rows moved off the data by noise of OUTLIER_SIGMA per feature
NEAR_SIGMA = 5e-4  # |noise| ~ 0.004, against a median 1-NN distance of ~0.1
OUTLIER_SIGMA = 0.15  # |noise| ~ 1.2, against a largest 1-NN distance of ~0.6
WARMUP_ROWS = 1000
# Repeated calls: at least 3 (fewer once MAX_TOTAL_S is spent), up to 5 while under MIN_TOTAL_S.
MIN_TOTAL_S = 2.0
MAX_TOTAL_S = 60.0
MAX_REPEAT = 5
PEER_KINDS = ("cleanlab", "dataeval_labels", "dataeval_hash", "dataeval_cluster")

# ----------------------------------------------------------------------------- data


def clustered_labelled(
    n: int, seed: int, *, d: int = D, latent: int = LATENT, components: int = CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """``bench_coverage.clustered`` with its component labels: a Gaussian mixture in `latent`
    dims (random means of spread 4, scales 0.3 to 1.2, Dirichlet weights) mapped linearly to
    `d`, plus isotropic noise of 0.03 times the signal's standard deviation, min-max scaled to
    [0, 1]. Returns (float32 (n, d), int64 labels (n,))."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 4.0, size=(components, latent))
    scales = rng.uniform(0.3, 1.2, size=components)
    weights = rng.dirichlet(np.full(components, 2.0))
    comp = rng.choice(components, size=n, p=weights)
    z = means[comp] + rng.standard_normal((n, latent)) * scales[comp, None]
    x = z @ (rng.standard_normal((latent, d)) / math.sqrt(latent))
    x += 0.03 * float(x.std()) * rng.standard_normal((n, d))
    lo, hi = x.min(axis=0), x.max(axis=0)
    x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.ascontiguousarray(x, dtype=np.float32), comp.astype(np.int64)


def make_data(n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Seeded data of size n with planted problems on disjoint rows.

    Returns (x float32 (n, 64), labels int64 (n,), planted) where planted holds
    ``exact_pairs`` and ``near_pairs`` (int64 (m, 2): source row, copy), ``flips`` (rows whose
    label was changed), ``outliers`` (rows moved off the data).
    """
    seed = int(np.random.SeedSequence([0x6A9, n]).generate_state(1)[0])
    x, labels = clustered_labelled(n, seed)
    rng = np.random.default_rng([seed, 1])
    counts = [max(5, round(s * n)) for s in (SHARE_EXACT, SHARE_NEAR, SHARE_FLIP, SHARE_OUTLIER)]
    n_exact, n_near, n_flip, n_out = counts
    rows = rng.permutation(n)
    cut = np.cumsum([n_exact, n_exact, n_near, n_near, n_flip, n_out])
    ex_src, ex_dst, nr_src, nr_dst, flips, outl = np.split(rows[: cut[-1]], cut[:-1])
    # Outliers first (sources of copies stay on the data): off the data in all 64 directions.
    x[outl] += rng.normal(0.0, OUTLIER_SIGMA, size=(n_out, D)).astype(np.float32)
    x[ex_dst], labels[ex_dst] = x[ex_src], labels[ex_src]
    x[nr_dst] = x[nr_src] + rng.normal(0.0, NEAR_SIGMA, size=(n_near, D)).astype(np.float32)
    labels[nr_dst] = labels[nr_src]
    labels[flips] = (labels[flips] + rng.integers(1, CLASSES, size=n_flip)) % CLASSES
    planted = {
        "exact_pairs": np.stack([ex_src, ex_dst], axis=1).astype(np.int64),
        "near_pairs": np.stack([nr_src, nr_dst], axis=1).astype(np.int64),
        "flips": np.sort(flips).astype(np.int64),
        "outliers": np.sort(outl).astype(np.int64),
    }
    return np.ascontiguousarray(x), labels, planted


# ----------------------------------------------------------------------------- workers


def _sample(t0: float, c0: float, busy0: float, steal0: float) -> dict[str, Any]:
    """Wall and CPU seconds since (t0, c0), and CPU time others used meanwhile."""
    wall, own = time.perf_counter() - t0, cpu_s() - c0
    busy1, steal1 = system_cpu()
    return {
        "time_s": wall,
        "cpu_s": own,
        "other_cpu_s": max(0.0, (busy1 - busy0) - own),
        "steal_s": steal1 - steal0,
    }


def _begin() -> tuple[float, float, float, float]:
    busy, steal = system_cpu()
    return time.perf_counter(), cpu_s(), busy, steal


def _timed(fn: Callable[[], Any], repeat: bool) -> tuple[Any, dict[str, Any]]:
    """Call fn (3 to 5 times when `repeat`, see MIN_TOTAL_S / MAX_TOTAL_S); the fastest call's
    times, its result, the peak RSS over all calls (``peak_rss_mib``) and the RSS before."""
    peak_reset = reset_peak()
    rss_before = rss_now()
    calls, result = [], None
    while True:
        start = _begin()
        result = fn()
        calls.append(_sample(*start))
        total = sum(c["time_s"] for c in calls)
        if (
            not repeat
            or len(calls) >= MAX_REPEAT
            or total >= MAX_TOTAL_S
            or (len(calls) >= 3 and total >= MIN_TOTAL_S)
        ):
            break
    best = min(calls, key=lambda c: c["time_s"])
    return result, {
        **best,
        "times_s": [c["time_s"] for c in calls],
        "rss_before_mib": rss_before / MIB,
        "peak_rss_mib": peak_rss() / MIB,
        "peak_reset": peak_reset,
    }


def _groups_to_edges(groups: Any) -> np.ndarray:
    """Edges (first member, other member) of every group, int64 (m, 2)."""
    edges = [
        (int(g[0]), int(v)) for g in groups for v in list(g)[1:] if len(g) > 1
    ]  # a group of size s gives s - 1 edges: enough for connectivity
    return np.asarray(edges, dtype=np.int64).reshape(-1, 2)


def _save(out: Path, **arrays: Any) -> None:
    for name, value in arrays.items():
        np.save(out / f"{name}.npy", np.asarray(value))


def _with_memory_cap(job: dict[str, Any]) -> None:
    limit = job.get("mem_limit_bytes")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _memory_error() -> dict[str, Any]:
    return {"error": "MemoryError", "peak_rss_mib": peak_rss() / MIB}


def worker_datagauge(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """(a) neighbor_graph alone and (b) graph + duplicates + outliers + label_errors (knn_vote)
    from it, alternated; then (c) label_errors(x, labels) with the distance ratio (DataEval's
    method, which needs the embeddings), timed on its own. Files: the pipeline's results in
    `out`, the distance ratio's in ``out / "ratio"``."""
    import datagauge

    duplicates, outliers, label_errors = _datagauge_analyses()
    x, labels = np.load(job["data"]), np.load(job["labels"])
    k = job["k"]

    def graph_only() -> Any:
        return datagauge.neighbor_graph(x, k)

    def pipeline(xs: np.ndarray = x, ls: np.ndarray = labels) -> dict[str, Any]:
        res: dict[str, Any] = {}
        t0 = time.perf_counter()
        res["graph"] = g = datagauge.neighbor_graph(xs, k)
        t1 = time.perf_counter()
        res["duplicates"] = duplicates(g)
        t2 = time.perf_counter()
        res["outliers"] = outliers(g)
        t3 = time.perf_counter()
        res["labels"] = label_errors(g, ls, k=k, method="knn_vote")
        t4 = time.perf_counter()
        steps = {"graph": t1 - t0, "duplicates": t2 - t1, "outliers": t3 - t2, "labels": t4 - t3}
        return {"steps": steps, **res}

    def ratio(xs: np.ndarray = x, ls: np.ndarray = labels) -> Any:
        return label_errors(xs, ls, k=k, method="distance_ratio")

    start = _begin()
    pipeline(x[:WARMUP_ROWS], labels[:WARMUP_ROWS])
    ratio(x[:WARMUP_ROWS], labels[:WARMUP_ROWS])
    warmup = _sample(*start)
    # (a) and (b) alternate, so that a slow spell of the shared machine hits both alike.
    a_calls: list[dict[str, Any]] = []
    b_calls: list[dict[str, Any]] = []
    a_peak = b_peak = 0.0
    rss_before = rss_now()
    res: dict[str, Any] = {}
    while True:
        reset_peak()
        start = _begin()
        graph_only()
        a_calls.append(_sample(*start))
        a_peak = max(a_peak, peak_rss() / MIB)
        reset_peak()
        start = _begin()
        res = pipeline()
        b_calls.append({**_sample(*start), "steps": res["steps"]})
        b_peak = max(b_peak, peak_rss() / MIB)
        total = sum(c["time_s"] for c in a_calls + b_calls)
        if len(a_calls) < job.get("min_rounds", 1):
            continue  # at least this many (a), (b) pairs, whatever they cost
        if (
            not job.get("repeat", True)
            or len(a_calls) >= MAX_REPEAT
            or total >= MAX_TOTAL_S
            or (len(a_calls) >= 3 and total >= MIN_TOTAL_S)
        ):
            break
    dup, outl, lab, graph = res["duplicates"], res["outliers"], res["labels"], res["graph"]
    _save(
        out,
        exact_edges=_groups_to_edges(dup.exact),
        near_edges=_groups_to_edges(dup.near),
        outlier_flagged=outl.flagged,
        outlier_rank=outl.indices,
        label_flagged=lab.flagged,
        label_rank=lab.indices,
    )
    summary = {
        "graph_engine": graph.engine,
        "label_method": lab.method,
        "outlier_method": outl.method,
        "duplicate_threshold": float(dup.threshold),
        "n_exact_groups": len(dup.exact),
        "n_near_groups": len(dup.near),
    }
    del res, dup, outl, lab, graph
    rat, ratio_stats = _timed(ratio, job.get("repeat", True))
    (out / "ratio").mkdir()
    _save(
        out / "ratio",
        label_flagged=rat.flagged,
        label_rank=rat.indices,
        ratio_scores=rat.scores,
    )
    best_a = min(a_calls, key=lambda c: c["time_s"])
    best_b = min(b_calls, key=lambda c: c["time_s"])
    return {
        "warmup": warmup,
        "graph": {**best_a, "times_s": [c["time_s"] for c in a_calls], "peak_rss_mib": a_peak},
        "pipeline": {
            **best_b,
            "times_s": [c["time_s"] for c in b_calls],
            "peak_rss_mib": b_peak,
            # each step at its fastest over the calls
            "steps_min_s": {s: min(c["steps"][s] for c in b_calls) for s in best_b["steps"]},
        },
        "distance_ratio": {**ratio_stats, "k_used": int(rat.k)},
        "rss_before_mib": rss_before / MIB,
        **summary,
    }


def _datagauge_analyses() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """duplicates, outliers, label_errors: from the top level, else from their modules."""
    import datagauge

    try:
        return datagauge.duplicates, datagauge.outliers, datagauge.label_errors
    except AttributeError:
        from datagauge.duplicates import duplicates
        from datagauge.label_errors import label_errors
        from datagauge.outliers import outliers

        return duplicates, outliers, label_errors


def worker_cleanlab(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """Datalab near_duplicate + outlier + label issues from the features."""
    _with_memory_cap(job)
    from cleanlab import Datalab

    x, labels = np.load(job["data"]), np.load(job["labels"])

    def run(xs: np.ndarray = x, ls: np.ndarray = labels) -> Any:
        lab = Datalab(data={"label": ls}, label_name="label", verbosity=0)
        lab.find_issues(features=xs, issue_types={"near_duplicate": {}, "outlier": {}, "label": {}})
        return lab

    try:
        start = _begin()
        run(x[:WARMUP_ROWS], labels[:WARMUP_ROWS])
        warmup = _sample(*start)
        lab, stats = _timed(run, job.get("repeat", True))
    except MemoryError:
        return _memory_error()
    near = lab.get_issues("near_duplicate")
    flagged = np.flatnonzero(near["is_near_duplicate_issue"].to_numpy())
    sets = near["near_duplicate_sets"].to_numpy()
    edges = [(int(i), int(j)) for i in flagged for j in sets[i]]
    outl = lab.get_issues("outlier")
    lbl = lab.get_issues("label")
    o_score = outl["outlier_score"].to_numpy()
    l_score = lbl["label_score"].to_numpy()
    _save(
        out,
        near_edges=np.asarray(edges, dtype=np.int64).reshape(-1, 2),
        outlier_flagged=np.flatnonzero(outl["is_outlier_issue"].to_numpy()),
        outlier_rank=np.argsort(o_score, kind="stable"),  # low score = more outlying
        label_flagged=np.flatnonzero(lbl["is_label_issue"].to_numpy()),
        label_rank=np.argsort(l_score, kind="stable"),  # low quality first
    )
    stats["warmup"] = warmup
    stats["knn_metric"] = str(lab.get_info("statistics").get("knn_metric"))
    stats["issue_summary"] = lab.get_issue_summary().to_dict(orient="records")
    return stats


def worker_dataeval_labels(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """dataeval.core.label_errors(x, labels, k)."""
    _with_memory_cap(job)
    from dataeval.core import label_errors

    x, labels = np.load(job["data"]), np.load(job["labels"])
    try:
        start = _begin()
        label_errors(x[:WARMUP_ROWS], labels[:WARMUP_ROWS], k=job["k"])
        warmup = _sample(*start)
        res, stats = _timed(lambda: label_errors(x, labels, k=job["k"]), job.get("repeat", True))
    except MemoryError:
        return _memory_error()
    _save(
        out,
        label_flagged=np.asarray(sorted(res["errors"]), dtype=np.int64),
        label_rank=np.asarray(res["error_rank"], dtype=np.int64),
        ratio_scores=np.asarray(res["scores"]),
    )
    stats["warmup"] = warmup
    return stats


def _dataeval_groups(result: Any, dup_type: str) -> list[list[int]]:
    df = result.data()
    return [list(g) for g in df.filter(df["dup_type"] == dup_type)["item_indices"].to_list()]


def worker_dataeval_hash(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """Duplicates(flags=HASH_XXHASH).evaluate on the embeddings as 8 x 8 images."""
    _with_memory_cap(job)
    from dataeval.flags import ImageStats
    from dataeval.quality import Duplicates

    x = np.load(job["data"])
    images = x.reshape(x.shape[0], 1, 8, 8)

    def run(imgs: np.ndarray = images) -> Any:
        return Duplicates(flags=ImageStats.HASH_XXHASH).evaluate(imgs)

    try:
        start = _begin()
        run(images[:WARMUP_ROWS])
        warmup = _sample(*start)
        res, stats = _timed(run, job.get("repeat", True))
    except MemoryError:
        return _memory_error()
    _save(out, exact_edges=_groups_to_edges(_dataeval_groups(res, "exact")))
    stats["warmup"] = warmup
    return stats


def worker_dataeval_cluster(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """cluster(x) (HDBSCAN), then Duplicates().from_clusters and Outliers().from_clusters."""
    _with_memory_cap(job)
    from dataeval.core import cluster
    from dataeval.flags import ImageStats
    from dataeval.quality import Duplicates, Outliers

    x = np.load(job["data"])
    steps: dict[str, float] = {}

    def run(xs: np.ndarray = x) -> tuple[Any, Any]:
        t0 = time.perf_counter()
        cr = cluster(xs)
        t1 = time.perf_counter()
        dup = Duplicates().from_clusters(cr)
        t2 = time.perf_counter()
        outl = Outliers(flags=ImageStats.NONE).from_clusters(xs, cr)
        t3 = time.perf_counter()
        steps.update(cluster=t1 - t0, duplicates=t2 - t1, outliers=t3 - t2)
        return dup, outl

    try:
        start = _begin()
        run(x[:WARMUP_ROWS])
        warmup = _sample(*start)
        (dup, outl), stats = _timed(run, job.get("repeat", True))
    except MemoryError:
        return _memory_error()
    flagged = outl.data()["item_index"].unique().sort().to_numpy()
    _save(
        out,
        near_edges=_groups_to_edges(_dataeval_groups(dup, "near")),
        outlier_flagged=np.asarray(flagged, dtype=np.int64),
    )
    stats["warmup"] = warmup
    stats["steps_last_s"] = dict(steps)
    return stats


def worker_versions(job: dict[str, Any], out: Path) -> dict[str, Any]:
    from importlib import metadata

    found = {}
    for name in job["packages"]:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return {"python": platform.python_version(), "packages": found}


WORKERS = {
    "datagauge": worker_datagauge,
    "cleanlab": worker_cleanlab,
    "dataeval_labels": worker_dataeval_labels,
    "dataeval_hash": worker_dataeval_hash,
    "dataeval_cluster": worker_dataeval_cluster,
    "versions": worker_versions,
}


# ----------------------------------------------------------------------------- parent side


def run_worker(
    kind: str, job: dict[str, Any], tmp: Path, timeout: float, python: str = sys.executable
) -> tuple[dict[str, Any], Path]:
    """Run one measurement in a fresh process; returns (stats or {"error": ...}, job dir)."""
    job_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=tmp))
    write_text(job_dir / "job.json", json.dumps(job))
    cmd = [python, str(Path(__file__).resolve()), "--worker", kind, "--job-dir", str(job_dir)]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"    {kind}: timed out after {timeout:.0f} s", flush=True)
        error = f"timed out after {timeout:.0f} s"
        return {"error": error, "timed_out": True, "timeout_s": timeout}, job_dir
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        if proc.returncode < 0:
            tail.append(f"killed by signal {-proc.returncode} (out of memory?)")
        print(f"    {kind} FAILED (exit {proc.returncode}):\n      " + "\n      ".join(tail))
        return {"error": "\n".join(tail), "returncode": proc.returncode}, job_dir
    stats = dict(json.loads((job_dir / "stats.json").read_text()))
    stats["loadavg_1min_before"] = load_before
    stats["process_wall_s"] = time.perf_counter() - t0
    return stats, job_dir


def source_state() -> dict[str, Any]:
    """Git commit and locally modified files of datagauge's sources (the editable install)."""

    def git(*cmd: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(HERE.parent), *cmd], capture_output=True, text=True, check=False
        )
        return proc.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "commit_short": git("rev-parse", "--short", "HEAD"),
        "modified": git("status", "--porcelain", "--", "python", "cpp").splitlines(),
    }


def library_versions(tmp: Path, peers: list[str]) -> dict[str, Any]:
    packages = {
        "datagauge": ["datagauge", "numpy", "scipy", "faiss-cpu", "numba"],
        "cleanlab": ["cleanlab", "numpy", "scikit-learn", "scipy", "pandas"],
        "dataeval": ["dataeval", "torch", "numpy", "scikit-learn", "numba", "polars"],
    }
    out = {}
    for env in ["datagauge", *sorted({p.split("_")[0] for p in peers})]:
        python = sys.executable if env == "datagauge" else str(PEER_PYTHON[env])
        out[env], _ = run_worker("versions", {"packages": packages[env]}, tmp, 300, python)
    return out


def _components(edges: np.ndarray, n: int) -> np.ndarray:
    """Connected-component label of every row under `edges` (singletons get their own)."""
    import scipy.sparse
    from scipy.sparse.csgraph import connected_components

    if edges.size == 0:
        return np.arange(n)
    graph = scipy.sparse.coo_matrix(
        (np.ones(edges.shape[0]), (edges[:, 0], edges[:, 1])), shape=(n, n)
    )
    return connected_components(graph, directed=False)[1]


def _load(job_dir: Path, name: str) -> np.ndarray | None:
    path = job_dir / f"{name}.npy"
    return np.load(path) if path.exists() else None


def agreement(job_dir: Path, n: int, planted: dict[str, np.ndarray]) -> dict[str, Any]:
    """What one tool found of the planted problems (keys only for what it reports)."""
    out: dict[str, Any] = {}
    exact, near = _load(job_dir, "exact_edges"), _load(job_dir, "near_edges")
    if exact is not None or near is not None:
        edges = [e for e in (exact, near) if e is not None]
        every = np.concatenate(edges) if edges else np.zeros((0, 2), np.int64)
        comp = _components(every, n)
        for kind in ("exact_pairs", "near_pairs"):
            p = planted[kind]
            out[kind] = [int((comp[p[:, 0]] == comp[p[:, 1]]).sum()), len(p)]
        sizes = np.bincount(comp, minlength=n)
        out["dup_items"] = int((sizes[comp] > 1).sum())  # rows in some duplicate group
        out["planted_dup_items"] = 2 * (len(planted["exact_pairs"]) + len(planted["near_pairs"]))
        if exact is not None:
            ce = _components(exact, n)
            p = planted["exact_pairs"]
            out["exact_pairs_in_exact_groups"] = int((ce[p[:, 0]] == ce[p[:, 1]]).sum())
    for what, truth in (("outlier", planted["outliers"]), ("label", planted["flips"])):
        flagged, rank = _load(job_dir, f"{what}_flagged"), _load(job_dir, f"{what}_rank")
        if flagged is not None:
            out[f"{what}_flagged"] = [int(np.isin(truth, flagged).sum()), len(truth)]
            out[f"{what}_n_flagged"] = len(flagged)
        if rank is not None:
            out[f"{what}_top_n"] = [int(np.isin(truth, rank[: len(truth)]).sum()), len(truth)]
    return out


def compare_ratio(dg_dir: Path, de_dir: Path) -> dict[str, Any]:
    """DataEval label_errors against datagauge's distance ratio: scores, flagged set, order."""
    dg, de = np.load(dg_dir / "ratio_scores.npy"), np.load(de_dir / "ratio_scores.npy")
    dg_f, de_f = np.load(dg_dir / "label_flagged.npy"), np.load(de_dir / "label_flagged.npy")
    dg_r, de_r = np.load(dg_dir / "label_rank.npy"), np.load(de_dir / "label_rank.npy")
    diff = np.abs(dg.astype(np.float64) - de.astype(np.float64))
    only_dg, only_de = np.setdiff1d(dg_f, de_f), np.setdiff1d(de_f, dg_f)
    out = {
        "scores_max_abs_diff": float(diff.max()),
        "scores_max_rel_diff": float((diff / np.maximum(np.abs(de), 1e-30)).max()),
        "scores_bitwise_equal_f32": bool(np.array_equal(dg.astype(np.float32), de)),
        "n_flagged": [len(dg_f), len(de_f)],
        "same_flagged": bool(only_dg.size == 0 and only_de.size == 0),
        "same_rank": bool(np.array_equal(dg_r, de_r)),
        "rank_positions_differing": int((dg_r != de_r).sum()),
        # DataEval's scores in datagauge's order: a rise is an inversion (0: a valid order).
        "rank_max_inversion": float(max(0.0, np.diff(de[dg_r].astype(np.float64)).max())),
        "same_top_1pct": bool(
            np.array_equal(np.sort(dg_r[: len(dg_r) // 100]), np.sort(de_r[: len(de_r) // 100]))
        ),
    }
    if not out["same_flagged"]:
        mism = np.concatenate([only_dg, only_de])[:20]
        out["mismatch"] = {
            "only_datagauge": only_dg[:20].tolist(),
            "only_dataeval": only_de[:20].tolist(),
            "score_datagauge": dg[mism].tolist(),
            "score_dataeval": de[mism].tolist(),
        }
    return out


def one_size(n: int, args: argparse.Namespace, tmp: Path, peers: list[str]) -> dict[str, Any]:
    print(f"[n={n:,}] generating", flush=True)
    x, labels, planted = make_data(n)
    data, lab = tmp / f"x-{n}.npy", tmp / f"labels-{n}.npy"
    np.save(data, x)
    np.save(lab, labels)
    del x
    job: dict[str, Any] = {
        "data": str(data),
        "labels": str(lab),
        "k": K_GRAPH,
        "repeat": n < args.no_repeat_from,
        "mem_limit_bytes": int(args.peer_mem_gib * 2**30),
    }
    timeout = args.timeout if n < 1_000_000 else args.timeout_1m
    row: dict[str, Any] = {"n": n, "d": D, "planted": {k: len(v) for k, v in planted.items()}}
    dirs: dict[str, Path] = {}
    print(f"[n={n:,}] datagauge", flush=True)
    dg_job = {**job, "min_rounds": args.dg_min_rounds}
    row["datagauge"], dirs["datagauge"] = run_worker("datagauge", dg_job, tmp, args.dg_timeout)
    print("    " + _dg_line(row["datagauge"]), flush=True)
    for kind in peers:
        env = kind.split("_")[0]
        print(f"[n={n:,}] {kind}", flush=True)
        row[kind], dirs[kind] = run_worker(kind, job, tmp, timeout, str(PEER_PYTHON[env]))
        if "error" not in row[kind]:
            print(f"    {row[kind]['time_s']:.2f} s", flush=True)
    ok = {kind: d for kind, d in dirs.items() if "error" not in row[kind]}
    if "datagauge" in ok:
        ok["datagauge_ratio"] = ok["datagauge"] / "ratio"
    row["agreement"] = {kind: agreement(d, n, planted) for kind, d in ok.items()}
    if "datagauge" in ok and "dataeval_labels" in ok:
        row["ratio_check"] = compare_ratio(ok["datagauge_ratio"], ok["dataeval_labels"])
    for p in (data, lab):
        p.unlink()
    return row


# ----------------------------------------------------------------------------- reporting


def _s(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _t(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "not run"
    if "error" in stats:
        if stats.get("timed_out"):
            return "timed out"
        return "MemoryError" if "MemoryError" in stats["error"] else "error"
    return _s(stats["time_s"])


def _ratio(peer: dict[str, Any] | None, ours: dict[str, Any] | None) -> str:
    """peer time / our time, wall (CPU); a lower bound for a peer that timed out."""
    if not peer or not ours or "error" in ours:
        return "-"
    if peer.get("timed_out"):
        return f"> {peer['timeout_s'] / ours['time_s']:.0f}x"
    if "error" in peer:
        return "-"
    return f"{peer['time_s'] / ours['time_s']:.1f}x ({peer['cpu_s'] / ours['cpu_s']:.1f}x)"


def _dg_line(dg: dict[str, Any]) -> str:
    if "error" in dg:
        return f"error: {dg['error'][:200]}"
    a, b = dg["graph"]["time_s"], dg["pipeline"]["time_s"]
    steps = ", ".join(f"{k} {v:.3f}" for k, v in dg["pipeline"]["steps_min_s"].items())
    c = dg["distance_ratio"]["time_s"]
    return (
        f"graph {a:.3f} s; graph + analyses {b:.3f} s ({b / a:.3f}); steps: {steps}; "
        f"distance ratio from x {c:.3f} s"
    )


def _frac(pair: list[int] | None) -> str:
    return "-" if pair is None else f"{pair[0]}/{pair[1]}"


def _mem(stats: dict[str, Any] | None) -> str:
    if not stats or "peak_rss_mib" not in stats:
        return "-"
    return f"{stats['peak_rss_mib']:.0f}"


TOOL_NAMES = {
    "datagauge": "datagauge (graph k=50; label_errors knn_vote)",
    "datagauge_ratio": "datagauge label_errors distance_ratio (from x)",
    "cleanlab": "cleanlab Datalab",
    "dataeval_labels": "DataEval label_errors",
    "dataeval_hash": "DataEval Duplicates (xxhash)",
    "dataeval_cluster": "DataEval cluster + Duplicates/Outliers.from_clusters",
}


def markdown(result: dict[str, Any]) -> str:
    m, src = result["machine"], result["source"]
    lines = [
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs ({m['logical_cpus']} logical), "
        f"{m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}; load average at start "
        f"{m['load_1min_at_start']}. Commit {src['commit_short']}"
        + (" (with local changes)" if src["modified"] else "")
        + f"; run {result['started']}.",
    ]
    for env, v in result["versions"].items():
        if "packages" in v:
            pk = ", ".join(f"{k} {x}" for k, x in v["packages"].items())
            lines.append(f"{env} env: {pk}.")
    lines += [
        "",
        f"Data: {D}-d clustered ({CLASSES} Gaussian components in {LATENT} latent dims, "
        "labels = component), with planted exact duplicates (0.1%), near duplicates (0.1%, "
        f"noise {NEAR_SIGMA} per feature), label flips (0.5%), outliers (0.1%, noise "
        f"{OUTLIER_SIGMA} per feature). Times in seconds: fastest of up to 5 calls below 1M, "
        f"one call at 1M (datagauge: the fastest of {result['args'].get('dg_min_rounds', 1)} "
        "alternated (a), (b) calls), after an untimed warm-up on 1,000 rows. datagauge (a): "
        f"`neighbor_graph(x, {K_GRAPH})`; (b): the graph, then `duplicates(g)`, `outliers(g)`, "
        "`label_errors(g, labels, method='knn_vote')`; (c): `label_errors(x, labels)` "
        "(distance ratio, DataEval's method; it needs the embeddings). Datalab is compared "
        "with (b), DataEval's label_errors with (c), DataEval's three measurements together "
        "with (b) + (c). Peak RSS in MiB of the measuring process (includes the data).",
        "",
        "| n | (a) graph | (b) graph + 3 analyses | (b)/(a) | (b) / its own graph step "
        "| (b) steps: duplicates / outliers / label_errors | (c) distance ratio | peak RSS "
        "(a) / (b) / (c) |",
        "|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    peer_lines = [
        "",
        "Peers on the same data. Ratio: the peer's wall time over datagauge's (b), or (c) for "
        "DataEval's label_errors, and in parentheses the same ratio of CPU seconds (less "
        "sensitive to other work on the machine); '> Nx': the peer timed out, N = timeout / "
        "datagauge's time.",
        "",
        "| n | Datalab | Datalab / (b) | DataEval label_errors | DataEval label_errors / (c) "
        "| DataEval xxhash dups | DataEval cluster + dups + outliers | DataEval all three / "
        "((b) + (c)) | peak RSS Datalab / DataEval labels / hash / cluster |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        dg = r["datagauge"]
        b_stats = c_stats = None
        if "error" in dg:
            a = b = ab = own = steps = c = peaks = _t(dg)
        else:
            b_stats, c_stats = dg["pipeline"], dg["distance_ratio"]
            a, b, c = _s(dg["graph"]["time_s"]), _s(b_stats["time_s"]), _s(c_stats["time_s"])
            ab = f"{b_stats['time_s'] / dg['graph']['time_s']:.3f}"
            st = b_stats["steps_min_s"]
            # the analyses against the search of the same call: immune to a slow spell between
            # the (a) and (b) calls
            own = f"{b_stats['time_s'] / b_stats['steps']['graph']:.3f}"
            steps = " / ".join(f"{st[k]:.3f}" for k in ("duplicates", "outliers", "labels"))
            peaks = " / ".join(_mem(x) for x in (dg["graph"], b_stats, c_stats))
        lines.append(f"| {r['n']:,} | {a} | {b} | {ab} | {own} | {steps} | {c} | {peaks} |")
        de = [r.get(k) for k in ("dataeval_labels", "dataeval_hash", "dataeval_cluster")]
        de_all = "-"
        if b_stats and c_stats and all(x and "error" not in x for x in de):
            total = sum(x["time_s"] for x in de if x)
            de_all = f"{total / (b_stats['time_s'] + c_stats['time_s']):.1f}x"
        elif b_stats and c_stats and any(x and x.get("timed_out") for x in de):
            longest = max(x.get("timeout_s", 0) for x in de if x)
            de_all = f"> {longest / (b_stats['time_s'] + c_stats['time_s']):.0f}x"
        mems = " / ".join(
            _mem(r.get(k))
            for k in ("cleanlab", "dataeval_labels", "dataeval_hash", "dataeval_cluster")
        )
        peer_lines.append(
            f"| {r['n']:,} | {_t(r.get('cleanlab'))} | {_ratio(r.get('cleanlab'), b_stats)} "
            f"| {_t(r.get('dataeval_labels'))} | {_ratio(r.get('dataeval_labels'), c_stats)} "
            f"| {_t(r.get('dataeval_hash'))} | {_t(r.get('dataeval_cluster'))} | {de_all} "
            f"| {mems} |"
        )
    lines += peer_lines
    lines += [
        "",
        "Planted items found: duplicate pairs whose two rows the tool puts in one group "
        "(exact / near copies); outliers and label flips in the tool's flagged set (and how "
        "many it flags) and in the top N of its ranking (N = the number planted). '-': the "
        "tool does not report it.",
        "",
        "| n | tool | exact pairs | near pairs | rows in dup groups (planted) | outliers "
        "flagged (n flagged) | outliers top N | flips flagged (n flagged) | flips top N |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        for kind, ag in r["agreement"].items():
            dup_rows = (
                f"{ag['dup_items']} ({ag['planted_dup_items']})" if "dup_items" in ag else "-"
            )
            o_fl = (
                f"{_frac(ag['outlier_flagged'])} ({ag['outlier_n_flagged']})"
                if "outlier_flagged" in ag
                else "-"
            )
            l_fl = (
                f"{_frac(ag['label_flagged'])} ({ag['label_n_flagged']})"
                if "label_flagged" in ag
                else "-"
            )
            lines.append(
                f"| {r['n']:,} | {TOOL_NAMES[kind]} | {_frac(ag.get('exact_pairs'))} "
                f"| {_frac(ag.get('near_pairs'))} | {dup_rows} | {o_fl} "
                f"| {_frac(ag.get('outlier_top_n'))} | {l_fl} | {_frac(ag.get('label_top_n'))} |"
            )
    checks = [(r["n"], r["ratio_check"]) for r in result["rows"] if "ratio_check" in r]
    if checks:
        lines += [
            "",
            "DataEval `label_errors` against datagauge `label_errors(method='distance_ratio')`:",
            "",
            "| n | max abs score diff | max rel score diff | flagged (datagauge / DataEval) "
            "| same flagged set | same ranking (positions differing) | largest inversion of "
            "DataEval's scores in datagauge's order | same top 1% |",
            "|---:|---:|---:|---|---|---|---:|---|",
        ]
        for n, c in checks:
            lines.append(
                f"| {n:,} | {c['scores_max_abs_diff']:.1e} | {c['scores_max_rel_diff']:.1e} "
                f"| {c['n_flagged'][0]} / {c['n_flagged'][1]} "
                f"| {'yes' if c['same_flagged'] else 'NO'} "
                f"| {'yes' if c['same_rank'] else 'no'} ({c.get('rank_positions_differing', '?')}) "
                f"| {c.get('rank_max_inversion', float('nan')):.1e} "
                f"| {'yes' if c.get('same_top_1pct') else 'no'} |"
            )
    lines += ["", noise_note(result)]
    return "\n".join(lines)


def noise_note(result: dict[str, Any]) -> str:
    """A sentence on CPU time other processes (and the hypervisor) took during measurements."""
    worst, noisy = 0.0, []
    for r in result["rows"]:
        dg = r["datagauge"]
        cases = [(f"{r['n']} {k}", r.get(k)) for k in ("cleanlab", *PEER_KINDS[1:])]
        if "error" not in dg:
            cases += [
                (f"{r['n']} datagauge {k}", dg[k]) for k in ("graph", "pipeline", "distance_ratio")
            ]
        for name, s in cases:
            if not s or "error" in s:
                continue
            share = (s["other_cpu_s"] + s["steal_s"]) / max(s["time_s"], 1e-9)
            worst = max(worst, share)
            if share > 0.1 and s["time_s"] > 0.5:
                noisy.append(f"{name} ({share:.2f})")
    text = (
        "Noise check: CPU time other processes used (plus hypervisor steal) during the fastest "
        f"call, as a share of one CPU: at most {worst:.2f}."
    )
    if noisy:
        text += " Above 0.1 (numbers may be inflated): " + ", ".join(noisy) + "."
    return text


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10k only (smoke test)")
    p.add_argument("--sizes", type=int, nargs="+", help="n (default 10k, 100k, 1M)")
    p.add_argument(
        "--peers",
        nargs="*",
        choices=PEER_KINDS,
        default=list(PEER_KINDS),
        help="peer measurements to run (none: datagauge only)",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="per peer worker below 1M, s")
    p.add_argument("--timeout-1m", type=float, default=1800.0, help="per peer worker at 1M, s")
    p.add_argument("--dg-timeout", type=float, default=3600.0, help="datagauge worker, s")
    p.add_argument(
        "--dg-min-rounds",
        type=int,
        default=2,
        help="datagauge: at least this many alternated (a), (b) calls, even at 1M",
    )
    p.add_argument("--peer-mem-gib", type=float, default=16.0, help="peer address-space cap")
    p.add_argument(
        "--no-repeat-from", type=int, default=1_000_000, help="one call per tool from this n"
    )
    p.add_argument("--out", type=Path, help="JSON result path")
    p.add_argument("--render", type=Path, help="print the tables of a saved JSON result and exit")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--job-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = [10_000] if args.quick else [10_000, 100_000, 1_000_000]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_job(WORKERS, args.worker, args.job_dir)
        return 0
    if args.render:
        print(markdown(json.loads(args.render.read_text())))
        return 0
    peers = []
    for kind in args.peers:
        env = kind.split("_")[0]
        if PEER_PYTHON[env].exists():
            peers.append(kind)
        else:
            print(f"{PEER_PYTHON[env]} not found; skipping {kind}. Create it with:\n{SETUP[env]}")
    started = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"graph-{'quick-' if args.quick else ''}{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with temp_dir("bench-graph-") as tmp:
        result: dict[str, Any] = {
            "benchmark": "graph",
            "started": started,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": machine_info(),
            "source": source_state(),
            "versions": library_versions(tmp, peers),
            "rows": [],
        }
        print(json.dumps(result["machine"]), flush=True)
        for n in args.sizes:
            result["rows"].append(one_size(n, args, tmp, peers))
            write_text(out, json.dumps(result, indent=1))  # after every size
        result["finished"] = time.strftime("%Y%m%d-%H%M%S")
        result["loadavg_end"] = os.getloadavg()
        write_text(out, json.dumps(result, indent=1))
    table = markdown(result)
    write_text(out.with_suffix(".md"), table + "\n")
    print("\n" + table + f"\n\nWrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
