"""Coverage benchmark: datagauge side by side with DataEval 1.1.4 and scikit-learn.

Measures, in one run:

1. ``datagauge.coverage`` (adaptive and naive radius, exact k-NN) against DataEval 1.1.4's
   ``dataeval.core.coverage_adaptive`` / ``coverage_naive`` on the same float32 data in
   [0, 1]: wall time, peak memory, and whether the answers agree (uncovered sets, radii).
   scikit-learn ``NearestNeighbors(algorithm="kd_tree", n_jobs=2)`` k-NN time is an extra
   peer where it is cheap.
2. datagauge alone at 1M points: exact at d=10, and the approximate FAISS indexes (IVF, HNSW)
   at d=64, with recall@20 and the critical-radius error against an exact brute-force
   reference on a random sample of query points.

Every measurement runs in its own subprocess, so its peak RSS is its own. DataEval runs with
the Python of its own virtualenv (it needs torch); data travel as temporary ``.npy`` files.

Set-up (DataEval in its own virtualenv; torch pinned to the local CPU wheel)::

    python3 -m venv benchmarks/.venv-dataeval
    benchmarks/.venv-dataeval/bin/pip install torch==2.13.0
    benchmarks/.venv-dataeval/bin/pip install dataeval==1.1.4 psutil

Run (from the repository root, with datagauge and scikit-learn importable)::

    python benchmarks/bench_coverage.py --quick      # smoke test, under a minute
    python benchmarks/bench_coverage.py              # full run (about an hour on 2 cores)
    python benchmarks/bench_coverage.py --sizes 2000 10000 --skip-large

Results go to ``benchmarks/results/coverage-<timestamp>.json`` (and ``.md``); the markdown
tables are also printed. Without the virtualenv, DataEval is skipped with a message.

This file is also its own worker (``--worker``); the worker imports only the library it
measures, so the DataEval virtualenv never needs datagauge.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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
VENV_PYTHON = HERE / ".venv-dataeval" / "bin" / "python"
RESULTS_DIR = HERE / "results"
SETUP_COMMANDS = (
    "python3 -m venv benchmarks/.venv-dataeval\n"
    "benchmarks/.venv-dataeval/bin/pip install torch==2.13.0\n"
    "benchmarks/.venv-dataeval/bin/pip install dataeval==1.1.4 psutil"
)

K = 20
PERCENT = 0.01
N_SAMPLE = 2000  # query points of the exact reference for the approximate indexes
RECALL_TARGET = 0.95
TIME_TARGET_S = 120.0
# Repeated calls: at least 3 (fewer once MAX_TOTAL_S is spent), up to 5 while under MIN_TOTAL_S.
MIN_TOTAL_S = 2.0
MAX_TOTAL_S = 60.0
MAX_REPEAT = 5

# ----------------------------------------------------------------------------- data


def uniform(n: int, d: int, seed: int) -> np.ndarray:
    """Uniform random points in [0, 1]^d, float32."""
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


def clustered(
    n: int, d: int, seed: int, *, latent: int = 6, components: int = 16, noise: float = 0.03
) -> np.ndarray:
    """Low intrinsic dimension: a Gaussian mixture in `latent` dims mapped linearly to `d`.

    Components have random means (spread 4), random scales (0.3 to 1.2) and Dirichlet weights;
    the map is a random Gaussian ``latent x d`` matrix; isotropic noise of `noise` times the
    signal's standard deviation is added; then every feature is min-max scaled to [0, 1].
    Returns float32 of shape (n, d).
    """
    rng = np.random.default_rng(seed)
    latent = min(latent, d)
    means = rng.normal(0.0, 4.0, size=(components, latent))
    scales = rng.uniform(0.3, 1.2, size=components)
    weights = rng.dirichlet(np.full(components, 2.0))
    comp = rng.choice(components, size=n, p=weights)
    z = means[comp] + rng.standard_normal((n, latent)) * scales[comp, None]
    x = z @ (rng.standard_normal((latent, d)) / math.sqrt(latent))
    x += noise * float(x.std()) * rng.standard_normal((n, d))
    lo, hi = x.min(axis=0), x.max(axis=0)
    x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.ascontiguousarray(x, dtype=np.float32)


GENERATORS: dict[str, Callable[[int, int, int], np.ndarray]] = {
    "uniform": uniform,
    "clustered": clustered,
}


def make_data(generator: str, n: int, d: int) -> np.ndarray:
    """Seeded data of one generator; the seed depends on (generator, n, d) only."""
    ids = [sorted(GENERATORS).index(generator), n, d]
    seed = int(np.random.SeedSequence(ids).generate_state(1)[0])
    return GENERATORS[generator](n, d, seed)


# ----------------------------------------------------------------------------- workers


def _timed(fn: Callable[[], Any], repeat: bool) -> tuple[Any, dict[str, Any]]:
    """Call fn; when `repeat`, call it 3 to 5 times (see MIN_TOTAL_S, MAX_TOTAL_S).

    Returns the last result and {time_s (the minimum), times_s, cpu_s (of the fastest call),
    other_cpu_s, steal_s, rss_before_mib, peak_rss_mib, peak_reset}.
    """
    peak_reset = reset_peak()
    rss_before = rss_now()
    times, cpus = [], []
    result = None
    busy0, steal0 = system_cpu()
    own0 = cpu_s()
    while True:
        c0, t0 = cpu_s(), time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpus.append(cpu_s() - c0)
        n, total = len(times), sum(times)
        if (
            not repeat
            or n >= MAX_REPEAT
            or total >= MAX_TOTAL_S
            or (n >= 3 and total >= MIN_TOTAL_S)
        ):
            break
    busy1, steal1 = system_cpu()
    best = int(np.argmin(times))
    return result, {
        # CPU seconds that other processes of this machine used while this was measured,
        # and time stolen by the hypervisor: both signs of a noisy measurement.
        "other_cpu_s": max(0.0, (busy1 - busy0) - (cpu_s() - own0)),
        "steal_s": steal1 - steal0,
        "time_s": times[best],
        "times_s": times,
        "cpu_s": cpus[best],
        "rss_before_mib": rss_before / MIB,
        "peak_rss_mib": peak_rss() / MIB,
        "peak_reset": peak_reset,
    }


def _index_spec(spec: dict[str, Any]) -> Any:
    import datagauge

    kind = spec["kind"]
    if kind == "hnsw":
        return datagauge.HNSW(
            m=spec.get("m", 32),
            ef_search=spec.get("ef_search"),
            ef_construction=spec.get("ef_construction", 64),
        )
    if kind == "ivf":
        return datagauge.IVF(nlist=spec.get("nlist"), nprobe=spec.get("nprobe"), random_state=0)
    return kind  # "exact", "kdtree", "flat"


def worker_datagauge(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """datagauge.coverage for each of job["methods"]; files <name>-<method>.npy."""
    import datagauge

    x = np.load(job["data"])
    index = _index_spec(job.get("index", {"kind": "exact"}))
    runs = {}
    for method in job["methods"]:
        res, stats = _timed(
            lambda m=method: datagauge.coverage(
                x, k=job["k"], radius_type=m, percent=job["percent"], index=index
            ),
            repeat=job.get("repeat", True),
        )
        np.save(out / f"uncovered-{method}.npy", np.asarray(res.uncovered_indices, np.int64))
        np.save(out / f"radii-{method}.npy", np.asarray(res.critical_value_radii, np.float32))
        stats["coverage_radius"] = float(res.coverage_radius)
        stats["n_uncovered"] = len(res.uncovered_indices)
        runs[method] = stats
    if job.get("sample"):
        # Recall needs neighbour indices, which coverage() does not return: a second,
        # separately timed kneighbors() run with the same index settings.
        sample = np.load(job["sample"])
        (dist, idx), stats = _timed(
            lambda: datagauge.kneighbors(x, job["k"], index=index), repeat=False
        )
        runs["kneighbors"] = stats
        np.save(out / "sample_idx.npy", np.ascontiguousarray(idx[sample]))
        np.save(out / "sample_dist.npy", np.ascontiguousarray(dist[sample]))
    return {"runs": runs}


def worker_dataeval(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """DataEval coverage_adaptive / coverage_naive for each of job["methods"]."""
    import dataeval
    from dataeval.config import set_max_processes
    from dataeval.core import coverage_adaptive, coverage_naive

    set_max_processes(job["processes"])
    x = np.load(job["data"])
    calls = {
        "adaptive": lambda: coverage_adaptive(x, job["k"], job["percent"]),
        "naive": lambda: coverage_naive(x, job["k"]),
    }
    runs = {}
    for method in job["methods"]:
        res, stats = _timed(calls[method], repeat=True)
        np.save(out / f"uncovered-{method}.npy", np.asarray(res["uncovered_indices"], np.int64))
        np.save(out / f"radii-{method}.npy", np.asarray(res["critical_value_radii"], np.float32))
        stats["coverage_radius"] = float(res["coverage_radius"])
        stats["n_uncovered"] = len(res["uncovered_indices"])
        runs[method] = stats
    return {"runs": runs, "dataeval_version": dataeval.__version__}


def worker_sklearn(job: dict[str, Any], out: Path) -> dict[str, Any]:
    from sklearn.neighbors import NearestNeighbors

    x = np.load(job["data"])

    def run() -> Any:
        nn = NearestNeighbors(n_neighbors=job["k"], algorithm="kd_tree", n_jobs=job["n_jobs"])
        return nn.fit(x).kneighbors()  # self-query: each point itself excluded

    (dist, _), stats = _timed(run, repeat=True)
    np.save(out / "radii-knn.npy", dist[:, -1].astype(np.float32))
    return {"runs": {"knn": stats}}


def worker_versions(job: dict[str, Any], out: Path) -> dict[str, Any]:
    from importlib import metadata

    found = {}
    for name in job["packages"]:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return {"python": platform.python_version(), "packages": found}


WORKERS = {
    "datagauge": worker_datagauge,
    "dataeval": worker_dataeval,
    "sklearn": worker_sklearn,
    "versions": worker_versions,
}


# ----------------------------------------------------------------------------- parent side


def run_worker(
    kind: str, job: dict[str, Any], tmp: Path, timeout: float, python: str = sys.executable
) -> tuple[dict[str, Any] | None, Path]:
    """Run one measurement in a fresh process; returns (stats or None on failure, job dir)."""
    job_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=tmp))
    write_text(job_dir / "job.json", json.dumps(job))
    cmd = [python, str(Path(__file__).resolve()), "--worker", kind, "--job-dir", str(job_dir)]
    load_before = os.getloadavg()[0]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"    {kind}: timed out after {timeout:.0f} s", flush=True)
        return {"error": f"timed out after {timeout:.0f} s"}, job_dir
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        print(f"    {kind} FAILED (exit {proc.returncode}):\n      " + "\n      ".join(tail))
        return {"error": "\n".join(tail), "returncode": proc.returncode}, job_dir
    stats = json.loads((job_dir / "stats.json").read_text())
    for run in stats.get("runs", {}).values():
        run["loadavg_1min_before"] = load_before
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
        "modified": git("status", "--porcelain", "--", "python", "cpp").splitlines(),
    }


def library_versions(tmp: Path, dataeval: bool) -> dict[str, Any]:
    ours, _ = run_worker(
        "versions",
        {"packages": ["datagauge", "numpy", "faiss-cpu", "scikit-learn", "numba"]},
        tmp,
        120,
    )
    out: dict[str, Any] = {"datagauge_env": ours}
    if dataeval:
        theirs, _ = run_worker(
            "versions",
            {"packages": ["dataeval", "torch", "numpy", "scikit-learn", "scipy"]},
            tmp,
            120,
            python=str(VENV_PYTHON),
        )
        out["dataeval_env"] = theirs
    return out


def compare(dg_dir: Path, de_dir: Path, method: str) -> dict[str, Any]:
    """Agreement of a datagauge and a DataEval result of one method on one dataset."""
    dg_unc = np.load(dg_dir / f"uncovered-{method}.npy")
    de_unc = np.load(de_dir / f"uncovered-{method}.npy")
    dg_r, de_r = np.load(dg_dir / f"radii-{method}.npy"), np.load(de_dir / f"radii-{method}.npy")
    only_dg = np.setdiff1d(dg_unc, de_unc)
    only_de = np.setdiff1d(de_unc, dg_unc)
    diff = np.abs(dg_r.astype(np.float64) - de_r.astype(np.float64))
    out: dict[str, Any] = {
        "same_set": bool(only_dg.size == 0 and only_de.size == 0 and dg_unc.size == de_unc.size),
        "same_order": bool(np.array_equal(dg_unc, de_unc)),
        "n_uncovered": [int(dg_unc.size), int(de_unc.size)],
        "radii_max_abs_diff": float(diff.max()),
        "radii_max_rel_diff": float((diff / np.maximum(de_r, 1e-30)).max()),
    }
    if not out["same_set"]:
        mism = np.concatenate([only_dg, only_de])[:20]
        out["mismatch"] = {
            "only_datagauge": only_dg[:20].tolist(),
            "only_dataeval": only_de[:20].tolist(),
            "radius_datagauge": dg_r[mism].tolist(),
            "radius_dataeval": de_r[mism].tolist(),
        }
    return out


def side_by_side(
    args: argparse.Namespace,
    tmp: Path,
    use_dataeval: bool,
    rows: list[dict[str, Any]],
    save: Callable[[], None],
) -> None:
    """Append one row per (generator, n, d) to `rows`, calling `save` after each."""
    cases = [(g, n, d) for g in args.generators for d in (10, 64) for n in args.sizes]
    if not args.quick and args.extra_d10_size:
        cases += [(g, args.extra_d10_size, 10) for g in args.generators]
    cases.sort(key=lambda c: (c[0], c[2], c[1]))
    for gen, n, d in cases:
        print(f"[side by side] {gen} n={n} d={d}", flush=True)
        path = tmp / f"{gen}-{n}x{d}.npy"
        np.save(path, make_data(gen, n, d))
        row: dict[str, Any] = {"generator": gen, "n": n, "d": d}
        methods = ["adaptive", "naive"]
        job = {"data": str(path), "k": K, "percent": PERCENT, "methods": methods}
        libs = [("datagauge", sys.executable, job)]
        if use_dataeval:
            job_de = {**job, "processes": args.dataeval_processes}
            libs.append(("dataeval", str(VENV_PYTHON), job_de))
        if n * d <= args.sklearn_max_nd or d <= 16:
            libs.append(("sklearn", sys.executable, {"data": str(path), "k": K, "n_jobs": 2}))
        dirs: dict[str, Path] = {}
        for lib, python, lib_job in libs:
            stats, dirs[lib] = run_worker(lib, lib_job, tmp, args.timeout, python=python)
            for name in ["knn"] if lib == "sklearn" else methods:
                key = "sklearn_kd_tree_knn" if lib == "sklearn" else f"{lib}_{name}"
                row[key] = stats["runs"][name] if "runs" in stats else stats
        for method in methods if use_dataeval else []:
            if all("error" not in row[f"{lib}_{method}"] for lib in ("datagauge", "dataeval")):
                row[f"check_{method}"] = compare(dirs["datagauge"], dirs["dataeval"], method)
        sk = row.get("sklearn_kd_tree_knn")
        if sk is not None and "error" not in sk and "error" not in row["datagauge_adaptive"]:
            a = np.load(dirs["sklearn"] / "radii-knn.npy").astype(np.float64)
            b = np.load(dirs["datagauge"] / "radii-adaptive.npy").astype(np.float64)
            sk["radii_max_abs_diff_vs_datagauge"] = float(np.abs(a - b).max())
        print("    " + summary_line(row), flush=True)
        rows.append(row)
        save()
        path.unlink()


def exact_reference(x: np.ndarray, sample: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest other rows of x[sample] by chunked brute force in float64.

    Returns (distances float64 (m, k), indices int64 (m, k)), sorted by (distance, index).
    """
    q = x[sample].astype(np.float64)
    q2 = (q * q).sum(axis=1)
    keep = k + 1 + 8  # a margin over k + 1 (the query itself) for rounding in the expansion
    best_d = np.full((q.shape[0], 0), np.inf)
    best_i = np.zeros((q.shape[0], 0), dtype=np.int64)
    for s in range(0, x.shape[0], 32768):
        block = x[s : s + 32768].astype(np.float64)
        d2 = q2[:, None] + (block * block).sum(axis=1)[None, :] - 2.0 * (q @ block.T)
        all_d = np.concatenate([best_d, d2], axis=1)
        all_i = np.concatenate(
            [best_i, np.broadcast_to(np.arange(s, s + block.shape[0]), d2.shape)], axis=1
        )
        top = min(keep, all_d.shape[1])
        part = np.argpartition(all_d, top - 1, axis=1)[:, :top]
        best_d = np.take_along_axis(all_d, part, axis=1)
        best_i = np.take_along_axis(all_i, part, axis=1)
    cand_idx = best_i
    # Exact distances of every candidate, the query itself excluded, then (distance, index) order.
    dist = np.sqrt(((x[cand_idx].astype(np.float64) - q[:, None, :]) ** 2).sum(axis=2))
    dist[cand_idx == sample[:, None]] = np.inf
    order = np.lexsort((cand_idx, dist), axis=1)[:, :k]
    rows = np.arange(q.shape[0])[:, None]
    return dist[rows, order], cand_idx[rows, order].astype(np.int64)


def large_configs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The datagauge-only runs at scale: (generator, n, d, index spec, label)."""
    n = args.large_n
    out = []
    for gen in args.generators:
        out.append({"generator": gen, "n": n, "d": 10, "index": {"kind": "exact"}})
    d = 64
    if args.quick:
        approx = {
            "clustered": [{"kind": "ivf"}, {"kind": "hnsw"}],
            "uniform": [{"kind": "ivf"}, {"kind": "hnsw"}],
        }
    else:
        approx = {
            "clustered": [
                {"kind": "exact"},
                {"kind": "ivf", "nprobe": 8},
                {"kind": "ivf", "nprobe": 16},
                {"kind": "ivf"},
                {"kind": "hnsw", "m": 16},
                {"kind": "hnsw"},
            ],
            "uniform": [
                {"kind": "ivf"},
                {"kind": "ivf", "nprobe": 256},
                {"kind": "hnsw"},
                {"kind": "hnsw", "ef_search": 256},
            ],
        }
    for gen in args.generators:
        for spec in approx[gen]:
            out.append({"generator": gen, "n": n, "d": d, "index": spec})
    if args.large_only:
        wanted = set(args.large_only)
        out = [c for c in out if spec_label(c) in wanted]
    return out


def ivf_default_nlist(n: int) -> int:
    """The nlist that ``datagauge.IVF()`` documents for n points."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def spec_text(spec: dict[str, Any], n: int) -> str:
    if spec["kind"] == "ivf":
        nlist = spec.get("nlist") or ivf_default_nlist(n)
        nprobe = spec.get("nprobe") or "tuned to recall 0.95 (default)"
        return f"nlist={nlist}, nprobe={nprobe}"
    if spec["kind"] == "hnsw":
        ef = spec.get("ef_search") or "tuned to recall 0.95 (default)"
        efc = spec.get("ef_construction", 64)
        return f"m={spec.get('m', 32)}, ef_search={ef}, ef_c={efc}"
    return "exact (auto engine)" if spec["kind"] == "exact" else spec["kind"]


def spec_label(cfg: dict[str, Any]) -> str:
    spec = cfg["index"]
    parts = [cfg["generator"], f"d{cfg['d']}", spec["kind"]]
    parts += [f"{k}{v}" for k, v in sorted(spec.items()) if k != "kind"]
    return "-".join(parts)


def at_scale(
    args: argparse.Namespace, tmp: Path, rows: list[dict[str, Any]], save: Callable[[], None]
) -> None:
    """Append one row per at-scale configuration to `rows`, calling `save` after each."""
    configs = large_configs(args)
    data_key = None
    for cfg in configs:
        gen, n, d = cfg["generator"], cfg["n"], cfg["d"]
        if data_key != (gen, n, d):
            data_key = (gen, n, d)
            print(f"[at scale] generating {gen} n={n} d={d}", flush=True)
            x = make_data(gen, n, d)
            path = tmp / f"large-{gen}-{n}x{d}.npy"
            for old in tmp.glob("large-*.npy"):
                old.unlink()
            np.save(path, x)
            rng = np.random.default_rng(12345)
            sample = np.sort(rng.choice(n, size=min(N_SAMPLE, n), replace=False))
            sample_path = tmp / "sample.npy"
            np.save(sample_path, sample)
            t0 = time.perf_counter()
            ref_dist, ref_idx = exact_reference(x, sample, K)
            ref_s = time.perf_counter() - t0
            print(f"    exact reference on {sample.size} queries: {ref_s:.1f} s", flush=True)
            del x
        label = spec_label(cfg)
        print(f"[at scale] {label} ({spec_text(cfg['index'], n)})", flush=True)
        job = {
            "data": str(path),
            "k": K,
            "percent": PERCENT,
            "methods": ["adaptive"],
            "index": cfg["index"],
            "sample": str(sample_path),
            "repeat": False,
        }
        out, job_dir = run_worker("datagauge", job, tmp, args.large_timeout)
        stats = out["runs"]["adaptive"] if "runs" in out else out
        row = {**cfg, "label": label, "settings": spec_text(cfg["index"], n), "stats": stats}
        row["kneighbors"] = out["runs"]["kneighbors"] if "runs" in out else out
        row["reference_s"] = ref_s
        if "error" not in stats:
            import datagauge

            idx = np.load(job_dir / "sample_idx.npy")
            radii = np.load(job_dir / "radii-adaptive.npy")[sample].astype(np.float64)
            exact_r = ref_dist[:, -1]
            rel = (radii - exact_r) / exact_r
            row["recall_at_20"] = datagauge.recall_at_k(idx, ref_idx)
            row["radius_rel_err_max"] = float(np.abs(rel).max())
            row["radius_rel_err_mean"] = float(np.abs(rel).mean())
            row["radius_rel_err_min_signed"] = float(rel.min())
            row["radius_rel_err_p99"] = float(np.quantile(np.abs(rel), 0.99))
            row["frac_radius_rel_err_gt_1pct"] = float((np.abs(rel) > 0.01).mean())
            # The points coverage cares about: the 1% of the sample with the largest exact radius.
            top = exact_r >= np.quantile(exact_r, 0.99)
            row["radius_rel_err_max_top1pct"] = float(np.abs(rel[top]).max())
            kn_dist = np.load(job_dir / "sample_dist.npy").astype(np.float64)
            row["kneighbors_dist_max_abs_err"] = float(np.abs(kn_dist - ref_dist).max())
            row["meets_target"] = bool(
                row["recall_at_20"] >= RECALL_TARGET and stats["time_s"] <= TIME_TARGET_S
            )
        print("    " + large_line(row), flush=True)
        rows.append(row)
        save()
    for old in tmp.glob("large-*.npy"):
        old.unlink()


# ----------------------------------------------------------------------------- reporting


def _t(stats: dict[str, Any] | None, key: str = "time_s") -> str:
    if not stats:
        return "-"
    if "error" in stats:
        return "error"
    return f"{stats[key]:.3f}" if stats[key] < 10 else f"{stats[key]:.1f}"


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if not a or not b or "error" in a or "error" in b:
        return "-"
    return f"{a['time_s'] / b['time_s']:.1f}x"


def _mem(stats: dict[str, Any] | None) -> str:
    if not stats or "error" in stats:
        return "-"
    extra = stats["peak_rss_mib"] - stats["rss_before_mib"]
    return f"{stats['peak_rss_mib']:.0f} (+{max(extra, 0):.0f})"


def _check(row: dict[str, Any]) -> str:
    out = []
    for method in ("adaptive", "naive"):
        c = row.get(f"check_{method}")
        if c is None:
            out.append("-")
        else:
            n_dg, n_de = c["n_uncovered"]
            if c["same_set"]:
                out.append(f"yes ({n_dg})")
            else:
                out.append(f"NO ({n_dg} vs {n_de})")
    return " / ".join(out)


def _radii(row: dict[str, Any]) -> str:
    checks = [row[f"check_{m}"] for m in ("adaptive", "naive") if f"check_{m}" in row]
    vals = [c["radii_max_abs_diff"] for c in checks]
    return f"{max(vals):.1e}" if vals else "-"


def summary_line(row: dict[str, Any]) -> str:
    dg_a, de_a = row.get("datagauge_adaptive"), row.get("dataeval_adaptive")
    dg_n, de_n = row.get("datagauge_naive"), row.get("dataeval_naive")
    return (
        f"adaptive: datagauge {_t(dg_a)} s, DataEval {_t(de_a)} s ({_ratio(de_a, dg_a)}); "
        f"naive: {_t(dg_n)} s, {_t(de_n)} s ({_ratio(de_n, dg_n)}); "
        f"sklearn k-NN {_t(row.get('sklearn_kd_tree_knn'))} s; match {_check(row)}"
    )


def large_line(row: dict[str, Any]) -> str:
    s = row["stats"]
    if not s or "error" in s:
        return f"error: {s.get('error') if s else 'no result'}"
    return (
        f"coverage {s['time_s']:.1f} s, kneighbors {row['kneighbors']['time_s']:.1f} s, "
        f"peak {s['peak_rss_mib']:.0f} MiB, recall@20 {row['recall_at_20']:.4f}, "
        f"max rel radius err {row['radius_rel_err_max']:.2e}"
    )


def _all_runs(result: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for r in result["side_by_side"]:
        for key, stats in r.items():
            if isinstance(stats, dict) and "times_s" in stats:
                yield f"{r['generator']} {r['n']}x{r['d']} {key}", stats
    for r in result["at_scale"]:
        for key in ("stats", "kneighbors"):
            if "times_s" in (r.get(key) or {}):
                yield f"{r['label']} {key}", r[key]


def noise_note(result: dict[str, Any]) -> str:
    """A sentence on CPU time other processes (and the hypervisor) took during measurements."""
    noisy = []
    worst = 0.0
    for name, stats in _all_runs(result):
        # Share of one CPU that others used while this was measured (2 cores: up to ~2).
        share = (stats["other_cpu_s"] + stats["steal_s"]) / max(sum(stats["times_s"]), 1e-9)
        worst = max(worst, share)
        if share > 0.1 and sum(stats["times_s"]) > 0.5:
            noisy.append(f"{name} ({share:.2f})")
    text = (
        "Noise check: CPU time used by other processes plus hypervisor steal during each "
        f"measurement, as a share of one CPU: at most {worst:.2f}."
    )
    if noisy:
        text += " Above 0.1 (numbers may be inflated): " + ", ".join(noisy) + "."
    return text


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    v = result["versions"]
    lines = [
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs ({m['logical_cpus']} logical), "
        f"{m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}.",
    ]
    ours = (v.get("datagauge_env") or {}).get("packages", {})
    lines.append("datagauge env: " + ", ".join(f"{k} {x}" for k, x in ours.items()) + ".")
    theirs = (v.get("dataeval_env") or {}).get("packages")
    if theirs:
        lines.append("DataEval env: " + ", ".join(f"{k} {x}" for k, x in theirs.items()) + ".")
    lines.append(
        f"k={K}, percent={PERCENT}; datagauge index='exact' with all usable CPUs; DataEval "
        f"max_processes={result['args']['dataeval_processes']}; scikit-learn "
        "NearestNeighbors(kd_tree, n_jobs=2) fit + self-query."
    )
    if result["side_by_side"]:
        lines += [
            "",
            "Times in seconds: the minimum of 3 calls (5 when all took under 2 s; fewer once 60 s "
            "were spent). Ratio = DataEval "
            "time / datagauge time. Peak RSS in MiB of the measuring process (in parentheses: "
            "growth over its RSS just before the call). Match = uncovered set identical to "
            "DataEval's (adaptive / naive; count in parentheses). Radii diff = max |datagauge "
            "- DataEval| critical radius.",
            "",
            "| data | n | d | datagauge adaptive | DataEval adaptive | ratio | datagauge naive "
            "| DataEval naive | ratio | sklearn kd_tree k-NN | datagauge peak RSS | DataEval "
            "peak RSS | match | radii diff |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for r in result["side_by_side"]:
            lines.append(
                f"| {r['generator']} | {r['n']:,} | {r['d']} "
                f"| {_t(r.get('datagauge_adaptive'))} | {_t(r.get('dataeval_adaptive'))} "
                f"| {_ratio(r.get('dataeval_adaptive'), r.get('datagauge_adaptive'))} "
                f"| {_t(r.get('datagauge_naive'))} | {_t(r.get('dataeval_naive'))} "
                f"| {_ratio(r.get('dataeval_naive'), r.get('datagauge_naive'))} "
                f"| {_t(r.get('sklearn_kd_tree_knn'))} "
                f"| {_mem(r.get('datagauge_adaptive'))} | {_mem(r.get('dataeval_adaptive'))} "
                f"| {_check(r)} | {_radii(r)} |"
            )
    if result["at_scale"]:
        lines += [
            "",
            f"datagauge alone, adaptive coverage, k={K}. Coverage time = one coverage() call; "
            "k-NN time = a separate kneighbors() call with the same settings (for recall). "
            f"Recall@{K} and critical-radius error against exact brute force on {N_SAMPLE} "
            "random query points (relative error |r - r_exact| / r_exact; the last column over "
            "the 1% of those points with the largest exact radius, the ones coverage flags). "
            "Peak RSS includes the data.",
            "",
            "| data | n | d | index | settings | coverage s | k-NN s | peak RSS MiB | "
            "recall@20 | max rel radius err | mean rel radius err | share err > 1% "
            "| max err, top 1% radii |",
            "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in result["at_scale"]:
            s = r["stats"] or {}
            if "error" in s or not s:
                lines.append(
                    f"| {r['generator']} | {r['n']:,} | {r['d']} | {r['index']['kind']} "
                    f"| {r['settings']} | error: {str(s.get('error', ''))[:60]} | | | | | | | |"
                )
                continue
            lines.append(
                f"| {r['generator']} | {r['n']:,} | {r['d']} | {r['index']['kind']} "
                f"| {r['settings']} | {s['time_s']:.1f} | {r['kneighbors']['time_s']:.1f} "
                f"| {s['peak_rss_mib']:.0f} | {r['recall_at_20']:.4f} "
                f"| {r['radius_rel_err_max']:.2e} | {r['radius_rel_err_mean']:.2e} "
                f"| {r['frac_radius_rel_err_gt_1pct']:.3f} "
                f"| {r['radius_rel_err_max_top1pct']:.2e} |"
            )
    lines += ["", noise_note(result)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes only (smoke test)")
    p.add_argument("--sizes", type=int, nargs="+", help="n of the side-by-side runs")
    p.add_argument(
        "--generators", nargs="+", choices=sorted(GENERATORS), default=["uniform", "clustered"]
    )
    p.add_argument("--extra-d10-size", type=int, default=100_000, help="extra n at d=10")
    p.add_argument("--large-n", type=int, help="n of the datagauge-only runs (default 1M)")
    p.add_argument("--large-only", nargs="+", help="run only these at-scale labels")
    p.add_argument("--skip-large", action="store_true")
    p.add_argument("--skip-side", action="store_true")
    p.add_argument("--no-dataeval", action="store_true")
    p.add_argument("--dataeval-processes", type=int, default=2)
    p.add_argument(
        "--sklearn-max-nd",
        type=int,
        default=10_000 * 64,
        help="run the scikit-learn kd-tree above d=16 only while n*d is at most this",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="per side-by-side worker, s")
    p.add_argument("--large-timeout", type=float, default=1800.0, help="per at-scale worker, s")
    p.add_argument("--out", type=Path, help="JSON result path")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--job-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = [2000] if args.quick else [2000, 10_000, 50_000]
    if args.large_n is None:
        args.large_n = 10_000 if args.quick else 1_000_000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_job(WORKERS, args.worker, args.job_dir)
        return 0
    use_dataeval = not args.no_dataeval
    if use_dataeval and not VENV_PYTHON.exists():
        print(
            f"DataEval virtualenv not found at {VENV_PYTHON}; skipping DataEval. Create it "
            f"from the repository root with:\n\n{SETUP_COMMANDS}\n",
            flush=True,
        )
        use_dataeval = False
    started = time.strftime("%Y%m%d-%H%M%S")
    with temp_dir("bench-coverage-") as tmp:
        result: dict[str, Any] = {
            "benchmark": "coverage",
            "started": started,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": machine_info(),
            "versions": library_versions(tmp, use_dataeval),
            "source": source_state(),
            "loadavg_start": os.getloadavg(),
        }
        print(json.dumps(result["machine"]), flush=True)
        out = args.out or RESULTS_DIR / f"coverage-{'quick-' if args.quick else ''}{started}.json"
        out.parent.mkdir(parents=True, exist_ok=True)

        def save() -> None:  # after every row, so an interrupted run keeps what it measured
            write_text(out, json.dumps(result, indent=1))

        result["side_by_side"], result["at_scale"] = [], []
        if not args.skip_side:
            side_by_side(args, tmp, use_dataeval, result["side_by_side"], save)
        if not args.skip_large:
            at_scale(args, tmp, result["at_scale"], save)
        result["loadavg_end"] = os.getloadavg()
        result["finished"] = time.strftime("%Y%m%d-%H%M%S")
        save()
    table = markdown(result)
    write_text(out.with_suffix(".md"), table + "\n")
    print("\n" + table + f"\n\nWrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
