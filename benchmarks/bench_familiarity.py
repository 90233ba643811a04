"""Familiarity benchmark: datagauge's Gaussian mixture side by side with scikit-learn's.

Measures, in one run, for every (n, K, covariance type) at d = 40:

* whole fit (``--mode whole``, the default with ``iter``): ``GaussianMixture(n_components=K,
  covariance_type=cov, random_state=0).fit(X)`` (its default k-means initialisation, tol 1e-3)
  against ``Familiarity(..., init=..., random_state=0).fit(X)`` (its default k-means
  initialisation, or ``--init k-means++``; initialisation included: what
  users time), wall and CPU seconds, iterations and the final mean log-likelihood of each (the
  two start from different random k-means runs, so they may end in different local optima:
  both numbers are shown);
* per EM iteration (``--mode iter``): ``datagauge.Familiarity`` and
  ``sklearn.mixture.GaussianMixture`` from the same initial
  parameters (``weights_init``, ``means_init``, ``precisions_init``), a fixed number of EM
  iterations (``tol=0``), so the time per EM iteration and the final log-likelihood
  (``lower_bound_``) compare like for like;
* scoring: ``score_samples`` on the training data;
* peak memory (RSS) of the measuring process.

datagauge runs twice: on float64 input (the exact path, same arithmetic as scikit-learn) and
on float32 input (its fast path: float32 arithmetic, float64 statistics). scikit-learn runs on
float64 (its default). DeepView 3.9.6 is not measured: its Familiarity calls scikit-learn's
GaussianMixture, which is measured here directly.

Every measurement runs in its own subprocess, so its peak RSS is its own; data travel as
temporary ``.npy`` files.

Run (from the repository root, with datagauge and scikit-learn importable)::

    python benchmarks/bench_familiarity.py --quick     # smoke test, well under a minute
    python benchmarks/bench_familiarity.py             # n = 10k, 100k, 1M; K = 5, 20; diag, full
    python benchmarks/bench_familiarity.py --sizes 10000 100000 --components 20 --covs full

Results go to ``benchmarks/results/familiarity-<timestamp>.json`` (and ``.md``); the
markdown table is also printed.
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
import warnings
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
    system_cpu,
    temp_dir,
    write_text,
)

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
D = 40

# ----------------------------------------------------------------------------- data


def mixture_data(n: int, d: int, seed: int, components: int = 20) -> np.ndarray:
    """Embeddings-like data: a Gaussian mixture with random means, scales and correlations.

    Component means spread 3, per-component random linear maps (so full covariances differ
    from diagonal ones), an offset of 5 on every feature. float64 of shape (n, d).
    """
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 3.0, size=(components, d)) + 5.0
    scales = rng.uniform(0.3, 1.2, (components, 1, 1))
    maps = rng.normal(size=(components, d, d)) / math.sqrt(d) * scales
    weights = rng.dirichlet(np.full(components, 2.0))
    comp = rng.choice(components, size=n, p=weights)
    x = np.empty((n, d))
    for c in range(components):
        idx = np.flatnonzero(comp == c)
        x[idx] = means[c] + rng.standard_normal((idx.size, d)) @ maps[c]
    return x


def initial_params(x: np.ndarray, k: int, cov: str, seed: int) -> dict[str, np.ndarray]:
    """Same start for both libraries: k random rows as means, equal weights, and the data's
    per-feature precision (diagonal; as a matrix for full)."""
    rng = np.random.default_rng(seed)
    means = x[rng.choice(x.shape[0], size=k, replace=False)].astype(np.float64)
    prec = 1.0 / x.var(axis=0)
    if cov == "full":
        precisions = np.repeat(np.diag(prec)[None], k, axis=0)
    elif cov == "diag":
        precisions = np.repeat(prec[None], k, axis=0)
    elif cov == "tied":
        precisions = np.diag(prec)
    else:
        precisions = np.full(k, prec.mean())
    return {"weights_init": np.full(k, 1.0 / k), "means_init": means, "precisions_init": precisions}


# ----------------------------------------------------------------------------- workers


def _timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """One call: wall and CPU time, CPU others used meanwhile, peak RSS during the call."""
    peak_reset = reset_peak()
    rss_before = rss_now()
    busy0, steal0 = system_cpu()
    c0, t0 = cpu_s(), time.perf_counter()
    result = fn()
    wall = time.perf_counter() - t0
    cpu = cpu_s() - c0
    busy1, steal1 = system_cpu()
    return result, {
        "time_s": wall,
        "cpu_s": cpu,
        "other_cpu_s": max(0.0, (busy1 - busy0) - cpu),
        "steal_s": steal1 - steal0,
        "rss_before_mib": rss_before / MIB,
        "peak_rss_mib": peak_rss() / MIB,
        "peak_reset": peak_reset,
    }


def worker_fit(job: dict[str, Any]) -> dict[str, Any]:
    """Fit (fixed iterations) then score with one library; returns timings and results."""
    x = np.load(job["data"])
    init = {k: np.load(v) for k, v in job["init"].items()}
    kw = {
        "n_components": job["k"],
        "covariance_type": job["cov"],
        "max_iter": job["iters"],
        "tol": 0.0,
        **init,
    }
    if job["lib"] == "sklearn":
        from sklearn.mixture import GaussianMixture

        model: Any = GaussianMixture(**kw)
    else:
        import datagauge

        model = datagauge.Familiarity(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # did not converge: expected, iterations are fixed
        # Warm-up on a few rows (imports, thread pools, first-call costs), then the timed fit.
        model.set_params(max_iter=1).fit(x[: min(len(x), 2000)])
        model.set_params(max_iter=job["iters"])
        _, fit = _timed(lambda: model.fit(x))
    scores, score = _timed(lambda: model.score_samples(x))
    return {
        "fit": fit,
        "score": score,
        "n_iter": int(model.n_iter_),
        "lower_bound": float(model.lower_bound_),
        "mean_score": float(np.mean(scores)),
        "dtype": str(x.dtype),
        "worker_peak_rss_mib": peak_rss() / MIB,
    }


def worker_whole(job: dict[str, Any]) -> dict[str, Any]:
    """One whole fit (initialisation + EM to convergence) with one library."""
    x = np.load(job["data"])
    if job["lib"] == "sklearn":
        from sklearn.mixture import GaussianMixture

        def make(max_iter: int) -> Any:
            return GaussianMixture(
                n_components=job["k"],
                covariance_type=job["cov"],
                random_state=job.get("seed", 0),
                max_iter=max_iter,
            )
    else:
        import datagauge

        def make(max_iter: int) -> Any:
            return datagauge.Familiarity(
                n_components=job["k"],
                covariance_type=job["cov"],
                init=job["init"],
                random_state=job.get("seed", 0),
                max_iter=max_iter,
            )

    limits: Any = contextlib.nullcontext()
    if job.get("threads"):  # both libraries on this many threads (BLAS, OpenMP, n_jobs)
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(job["threads"])
    with warnings.catch_warnings(), limits:
        warnings.simplefilter("ignore")  # a warm-up fit of 2 iterations does not converge
        make(2).fit(x[: min(len(x), 2000)])  # imports, thread pools, first-call costs
        model = make(job["max_iter"])
        if job["lib"] != "sklearn" and job.get("threads"):
            model.set_params(n_jobs=job["threads"])
        _, fit = _timed(lambda: model.fit(x))
    return {
        "fit": fit,
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "lower_bound": float(model.lower_bound_),
        "dtype": str(x.dtype),
        "worker_peak_rss_mib": peak_rss() / MIB,
    }


def worker_versions(job: dict[str, Any]) -> dict[str, Any]:
    import importlib.metadata as md

    found = {}
    for name in job["packages"]:
        with contextlib.suppress(md.PackageNotFoundError):
            found[name] = md.version(name)
    return {"python": platform.python_version(), "packages": found}


WORKERS = {"fit": worker_fit, "whole": worker_whole, "versions": worker_versions}


def run_worker(kind: str, job: dict[str, Any], tmp: Path, timeout: float) -> dict[str, Any] | None:
    job_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=tmp))
    write_text(job_dir / "job.json", json.dumps(job))
    script = str(Path(__file__).resolve())
    cmd = [sys.executable, script, "--worker", kind, "--job-dir", str(job_dir)]
    load_before = os.getloadavg()[0]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"    {kind}: timed out after {timeout:.0f} s", flush=True)
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        print(f"    {kind} FAILED (exit {proc.returncode}):\n      " + "\n      ".join(tail))
        return {"error": "\n".join(tail), "returncode": proc.returncode}
    stats: dict[str, Any] = json.loads((job_dir / "stats.json").read_text())
    stats["loadavg_1min_before"] = load_before
    return stats


def worker_main(kind: str, job_dir: Path) -> None:
    job = json.loads((job_dir / "job.json").read_text())
    write_text(job_dir / "stats.json", json.dumps(WORKERS[kind](job)))


# ----------------------------------------------------------------------------- parent


def source_state() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(HERE.parent), *cmd], capture_output=True, text=True, check=False
        )
        return proc.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "modified": git("status", "--porcelain", "--", "python", "cpp").splitlines(),
    }


LIBS = ("sklearn", "datagauge_f64", "datagauge_f32")


def run_config(
    args: argparse.Namespace,
    tmp: Path,
    files: dict[str, str],
    x: np.ndarray,
    n: int,
    k: int,
    cov: str,
) -> dict[str, Any]:
    init = initial_params(x, k, cov, seed=k)
    init_files = {}
    for name, value in init.items():
        path = tmp / f"init-{n}-{k}-{cov}-{name}.npy"
        np.save(path, value)
        init_files[name] = str(path)
    row: dict[str, Any] = {"n": n, "d": D, "k": k, "cov": cov, "iters": args.iters}
    for lib, base in _lib_jobs(args, files, k, cov):
        job = {**base, "init": init_files, "iters": args.iters}
        print(f"  n={n:,} K={k} {cov}: {lib} ...", flush=True)
        row[lib] = run_worker("fit", job, tmp, args.timeout)
    return row


def _lib_jobs(
    args: argparse.Namespace, files: dict[str, str], k: int, cov: str
) -> list[tuple[str, dict[str, Any]]]:
    """Each library measured (scikit-learn unless skipped) with the job fields both modes share."""
    return [
        (
            lib,
            {
                "lib": "sklearn" if lib == "sklearn" else "datagauge",
                "data": files["f32" if lib == "datagauge_f32" else "f64"],
                "k": k,
                "cov": cov,
            },
        )
        for lib in LIBS
        if not (lib == "sklearn" and args.skip_sklearn)
    ]


def run_whole(
    args: argparse.Namespace, tmp: Path, files: dict[str, str], n: int, k: int, cov: str
) -> dict[str, Any]:
    row: dict[str, Any] = {"n": n, "d": D, "k": k, "cov": cov, "init": args.init}
    for lib, base in _lib_jobs(args, files, k, cov):
        job = {
            **base,
            "init": args.init,
            "max_iter": 100 if lib == "sklearn" else 200,  # each library's default
            "threads": args.threads,
        }
        print(f"  whole fit n={n:,} K={k} {cov}: {lib} ...", flush=True)
        row[lib] = run_worker("whole", job, tmp, args.timeout)
        if args.seeds > 1:  # more random starts: where each library's optima lie
            runs = [row[lib]]
            for seed in range(1, args.seeds):
                print(f"  whole fit n={n:,} K={k} {cov}: {lib} seed {seed} ...", flush=True)
                runs.append(run_worker("whole", {**job, "seed": seed}, tmp, args.timeout))
            row[f"{lib}_seeds"] = runs
    return row


def _wall(s: dict[str, Any] | None) -> float | None:
    return None if not s or "error" in s else float(s["fit"]["time_s"])


def _cpu(s: dict[str, Any] | None) -> float | None:
    return None if not s or "error" in s else float(s["fit"]["cpu_s"])


def _ll(s: dict[str, Any] | None) -> str:
    if not s or "error" in s:
        return "-"
    return f"{s['lower_bound']:.4f} ({s['n_iter']}{'' if s['converged'] else ', not conv.'})"


def markdown_whole(result: dict[str, Any]) -> str:
    rows = result.get("whole_rows", [])
    if not rows:
        return ""
    lines = [
        "Whole fit: `GaussianMixture(n_components=K, covariance_type=cov, random_state=0).fit(X)`"
        " (k-means initialisation, tol 1e-3, max_iter 100) against `Familiarity(n_components=K, "
        f"covariance_type=cov, init={rows[0]['init']!r}, random_state=0).fit(X)` (tol 1e-3, "
        "max_iter 200), initialisation included, after a warm-up fit on 2,000 rows. Wall and "
        "CPU seconds of the fit; ratio = sklearn / datagauge. LL = final mean log-likelihood "
        "(lower_bound_), EM iterations in parentheses; LL diff = |datagauge's - sklearn's| / "
        "|sklearn's|. The data: n rows of a K-component mixture (``mixture_data(n, 40, seed=n "
        "+ K, components=K)``), so both can find the same optimum from their own random "
        "k-means starts."
        + (
            f" Both libraries limited to {result['args']['threads']} thread(s)."
            if result["args"].get("threads")
            else ""
        ),
        "",
        "| n | K | cov | sklearn wall s (CPU) | dg f64 wall s (CPU) | dg f32 wall s (CPU) "
        "| wall ratio f64 / f32 | CPU ratio f64 / f32 | sklearn LL (iter) | dg f64 LL (iter) "
        "| dg f32 LL (iter) | LL diff f64 / f32 |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        sk, a, b = r.get("sklearn"), r.get("datagauge_f64"), r.get("datagauge_f32")

        def wc(s: dict[str, Any] | None) -> str:
            return f"{_fmt(_wall(s))} ({_fmt(_cpu(s))})"

        lines.append(
            f"| {r['n']:,} | {r['k']} | {r['cov']} | {wc(sk)} | {wc(a)} | {wc(b)} "
            f"| {_ratio(_wall(sk), _wall(a))} / {_ratio(_wall(sk), _wall(b))} "
            f"| {_ratio(_cpu(sk), _cpu(a))} / {_ratio(_cpu(sk), _cpu(b))} "
            f"| {_ll(sk)} | {_ll(a)} | {_ll(b)} | {_rel(a, sk)} / {_rel(b, sk)} |"
        )
    if any(f"{lib}_seeds" in r for r in rows for lib in LIBS):
        lines += [
            "",
            "Over random_state = 0, 1, ...: final mean log-likelihood (mean, and min .. max) "
            "and median CPU seconds of the fit:",
            "",
            "| n | K | cov | seeds | sklearn LL | dg f64 LL | dg f32 LL | sklearn CPU s "
            "| dg f64 CPU s | dg f32 CPU s |",
            "|---:|---:|---|---:|---|---|---|---:|---:|---:|",
        ]
        for r in rows:
            runs = [_ok(r.get(f"{lib}_seeds", [])) for lib in LIBS]
            lls = [np.array([s["lower_bound"] for s in x]) for x in runs]
            cpus = [np.array([s["fit"]["cpu_s"] for s in x]) for x in runs]
            ll_txt = [
                f"{v.mean():.3f} ({v.min():.3f} .. {v.max():.3f})" if v.size else "-" for v in lls
            ]
            cpu_txt = [_fmt(float(np.median(v))) if v.size else "-" for v in cpus]
            n_seeds = max(len(x) for x in runs)
            lines.append(
                f"| {r['n']:,} | {r['k']} | {r['cov']} | {n_seeds} | "
                + " | ".join(ll_txt + cpu_txt)
                + " |"
            )
    return "\n".join(lines)


def _ok(runs: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [s for s in runs if s and "error" not in s]


def _per_iter(s: dict[str, Any] | None) -> float | None:
    if not s or "error" in s:
        return None
    return float(s["fit"]["time_s"]) / max(int(s["n_iter"]), 1)


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b <= 0 else f"{a / b:.1f}x"


def _score_t(s: dict[str, Any] | None) -> float | None:
    return None if not s or "error" in s else float(s["score"]["time_s"])


def _peak(s: dict[str, Any] | None) -> str:
    return "-" if not s or "error" in s else f"{s['worker_peak_rss_mib']:.0f}"


def _rel(s: dict[str, Any] | None, ref: dict[str, Any] | None) -> str:
    if not s or not ref or "error" in s or "error" in ref:
        return "-"
    return f"{abs(s['lower_bound'] - ref['lower_bound']) / abs(ref['lower_bound']):.1e}"


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    v = result["versions"].get("packages", {})
    head = [
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs ({m['logical_cpus']} logical), "
        f"{m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}.",
        "Versions: " + ", ".join(f"{a} {b}" for a, b in v.items()) + ".",
        f"Commit: {result['source']['commit'][:7]}"
        + (" (modified)" if result["source"]["modified"] else "")
        + f"; load average at start {result['loadavg_start'][0]:.2f}.",
        "",
    ]
    whole = markdown_whole(result)
    if not result["rows"]:
        return "\n".join(head) + whole
    lines = [
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs ({m['logical_cpus']} logical), "
        f"{m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}.",
        "Versions: " + ", ".join(f"{a} {b}" for a, b in v.items()) + ".",
        f"d = {D}; both libraries start from the same parameters and run "
        f"{result['args']['iters']} EM iterations (tol=0), after a warm-up fit on 2,000 rows. "
        "Fit s/iter = fit time / iterations (includes input checks). Score = score_samples on "
        "the training data. sklearn runs on float64; datagauge on float64 (f64) and float32 "
        "(f32) input. Speed-up = sklearn time / datagauge time. LL rel diff = |lower_bound_ - "
        "sklearn's| / |sklearn's|. Peak RSS of "
        "each measuring process, MiB (includes the data: 8 or 4 bytes x n x d).",
        "",
        "| n | K | cov | sklearn fit s/iter | dg f64 s/iter | dg f32 s/iter | speed-up f64 "
        "| speed-up f32 | sklearn score s | dg f64 score s | dg f32 score s | speed-up f64 "
        "| speed-up f32 | sklearn LL | LL rel diff f64 | LL rel diff f32 | peak RSS sklearn "
        "| peak RSS f64 | peak RSS f32 |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        sk, a, b = r.get("sklearn"), r.get("datagauge_f64"), r.get("datagauge_f32")
        ll = "-" if not sk or "error" in sk else f"{sk['lower_bound']:.6g}"
        lines.append(
            f"| {r['n']:,} | {r['k']} | {r['cov']} | {_fmt(_per_iter(sk))} "
            f"| {_fmt(_per_iter(a))} | {_fmt(_per_iter(b))} "
            f"| {_ratio(_per_iter(sk), _per_iter(a))} | {_ratio(_per_iter(sk), _per_iter(b))} "
            f"| {_fmt(_score_t(sk))} | {_fmt(_score_t(a))} | {_fmt(_score_t(b))} "
            f"| {_ratio(_score_t(sk), _score_t(a))} | {_ratio(_score_t(sk), _score_t(b))} "
            f"| {ll} | {_rel(a, sk)} | {_rel(b, sk)} | {_peak(sk)} | {_peak(a)} | {_peak(b)} |"
        )
    worst = 0.0
    for r in result["rows"]:
        for lib in LIBS:
            s = r.get(lib)
            if s and "error" not in s:
                t = s["fit"]["time_s"] + s["score"]["time_s"]
                other = s["fit"]["other_cpu_s"] + s["score"]["other_cpu_s"]
                worst = max(worst, other / max(t, 1e-9))
    lines += [
        "",
        "Noise check: CPU time other processes used during a measurement, as a share of one "
        f"CPU: at most {worst:.2f}" + (" (numbers may be inflated)." if worst > 0.1 else "."),
    ]
    return "\n".join(head) + (whole + "\n\n" if whole else "") + "\n".join(lines[2:])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes only (smoke test)")
    p.add_argument("--sizes", type=int, nargs="+", help="n values (default 10k 100k 1M)")
    p.add_argument("--components", type=int, nargs="+", default=[5, 20], help="K values")
    p.add_argument(
        "--covs", nargs="+", default=["diag", "full"], choices=["full", "tied", "diag", "spherical"]
    )
    p.add_argument("--iters", type=int, help="EM iterations per fit (default 5; quick 3)")
    p.add_argument(
        "--mode",
        nargs="+",
        default=["whole", "iter"],
        choices=["whole", "iter"],
        help="whole fits (initialisation included) and/or EM iterations from the same start",
    )
    p.add_argument(
        "--init", default="kmeans", choices=["kmeans", "k-means++"], help="datagauge's init"
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="whole fits: random_state 0 .. seeds-1 for each library (LL spread over starts)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="whole fits: limit both libraries to this many threads (default: all CPUs)",
    )
    p.add_argument("--skip-sklearn", action="store_true")
    p.add_argument("--timeout", type=float, default=3600.0, help="per worker, s")
    p.add_argument("--out", type=Path, help="JSON result path")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--job-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = [5000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.iters is None:
        args.iters = 3 if args.quick else 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.job_dir)
        return 0
    started = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"familiarity-{'quick-' if args.quick else ''}{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with temp_dir("bench-familiarity-") as tmp:
        result: dict[str, Any] = {
            "benchmark": "familiarity",
            "started": started,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": machine_info(),
            "versions": run_worker(
                "versions",
                {"packages": ["datagauge", "numpy", "scikit-learn", "scipy"]},
                tmp,
                120,
            )
            or {},
            "source": source_state(),
            "loadavg_start": os.getloadavg(),
            "rows": [],
            "whole_rows": [],
        }
        print(json.dumps(result["machine"]), flush=True)

        def save() -> None:  # after every row, so an interrupted run keeps what it measured
            write_text(out, json.dumps(result, indent=1))

        for n in args.sizes:
            x = mixture_data(n, D, seed=n)
            files = {"f64": str(tmp / f"x-{n}-f64.npy"), "f32": str(tmp / f"x-{n}-f32.npy")}
            np.save(files["f64"], x)
            np.save(files["f32"], x.astype(np.float32))
            for k in args.components:
                if "whole" in args.mode:  # data of K components: both fits can find the optimum
                    xk = mixture_data(n, D, seed=n + k, components=k)
                    kfiles = {
                        "f64": str(tmp / f"xk-{n}-f64.npy"),
                        "f32": str(tmp / f"xk-{n}-f32.npy"),
                    }
                    np.save(kfiles["f64"], xk)
                    np.save(kfiles["f32"], xk.astype(np.float32))
                    del xk
                for cov in args.covs:
                    if "whole" in args.mode:
                        result["whole_rows"].append(run_whole(args, tmp, kfiles, n, k, cov))
                        save()
                    if "iter" in args.mode:
                        result["rows"].append(run_config(args, tmp, files, x, n, k, cov))
                        save()
            del x
        result["loadavg_end"] = os.getloadavg()
        result["finished"] = time.strftime("%Y%m%d-%H%M%S")
        save()
    table = markdown(result)
    write_text(out.with_suffix(".md"), table + "\n")
    print("\n" + table + f"\n\nWrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
