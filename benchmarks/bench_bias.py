"""Bias (slice) discovery benchmark: datagauge.find_biases side by side with SliceLine.

On the planted-slice data of ``datagauge._synthetic.planted_slices`` (n samples, t
independent tags with p in [0.1, 0.5], base error 0.1, two planted slices of 2 and 3 tags
with error 0.6), both tools search every combination of up to ``max_tags`` tags. Measured in
one run, per (n, t):

- wall time of the whole search (datagauge: packing, counts, tests, correction, filtering;
  SliceLine: ``Slicefinder.fit``), the fastest of up to 3 calls;
- peak resident memory of the process, and its growth over the data already loaded;
- the rank of each planted slice in each tool's output (datagauge: the report sorted by
  effect; SliceLine: its top-k slices by score); "-" when not found;
- the time ratio SliceLine / datagauge where SliceLine runs at all.

Every measurement runs in its own subprocess, so its peak memory is its own. SliceLine runs
with the Python of its own virtualenv, under an address-space limit (``--sliceline-mem-gib``)
so that it fails with MemoryError instead of exhausting the machine; failures are reported.

Set-up (SliceLine in its own virtualenv)::

    python3 -m venv --system-site-packages benchmarks/.venv-sliceline
    benchmarks/.venv-sliceline/bin/pip install sliceline psutil

Run (from the repository root, with datagauge importable)::

    python benchmarks/bench_bias.py --quick            # smoke test, well under a minute
    python benchmarks/bench_bias.py                    # n = 10k, 100k, 1M; t = 30, 50, 100
    python benchmarks/bench_bias.py --sizes 10000 --tags 30

Results go to ``benchmarks/results/bias-<timestamp>.json`` (and ``.md``); the markdown table
is also printed. This file is also its own worker (``--worker``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _harness import MIB, machine_info, peak_rss, reset_peak, rss_now, run_job, temp_dir, write_text

HERE = Path(__file__).resolve().parent
SLICELINE_PYTHON = HERE / ".venv-sliceline" / "bin" / "python"
RESULTS_DIR = HERE / "results"
REPEAT = 3
MAX_TOTAL_S = 60.0

# ----------------------------------------------------------------------------- measuring


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, dict[str, Any]]:
    """Call fn up to `repeat` times (fewer once MAX_TOTAL_S is spent); the fastest counts."""
    reset = reset_peak()
    before = rss_now()
    times: list[float] = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        if sum(times) >= MAX_TOTAL_S:
            break
    peak = peak_rss()
    return result, {
        "time_s": min(times),
        "times_s": times,
        "rss_before_mib": before / MIB,
        "peak_rss_mib": peak / MIB,
        "peak_growth_mib": (peak - before) / MIB if reset else None,
    }


# ----------------------------------------------------------------------------- workers


def worker_datagauge(job: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    import datagauge

    tags = np.load(job_dir / "tags.npy")
    correct = np.load(job_dir / "correct.npy")
    names = [f"tag{j}" for j in range(tags.shape[1])]

    def run() -> Any:
        return datagauge.find_biases(
            tags, correct, tag_names=names, max_tags=job["max_tags"], min_support=10
        )

    report, stats = _timed(run, job["repeat"])
    found = [tuple(c) for c in report.combinations]
    ranks = []
    for s in job["slices"]:
        key = tuple(names[j] for j in s)
        ranks.append(found.index(key) + 1 if key in found else None)
    stats.update(ranks=ranks, n_reported=len(found), n_tested=report.n_tested)
    return stats


def worker_sliceline(job: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    limit = job.get("mem_limit_bytes")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from sliceline import Slicefinder

    tags = np.load(job_dir / "tags.npy").astype(np.int8)
    errors = 1.0 - np.load(job_dir / "correct.npy").astype(np.float64)

    def run() -> Any:
        sf = Slicefinder(alpha=0.95, k=job["k"], max_l=job["max_tags"], min_sup=10, verbose=False)
        sf.fit(tags, errors)
        return sf

    try:
        sf, stats = _timed(run, job["repeat"])
    except MemoryError:
        return {"error": "MemoryError", "peak_rss_mib": peak_rss() / MIB}
    ranks = []
    t = tags.shape[1]
    for s in job["slices"]:
        rank = None
        for i, row in enumerate(sf.top_slices_):
            used = {j for j in range(t) if row[j] is not None}
            if used == set(s) and all(int(row[j]) == 1 for j in s):
                rank = i + 1
                break
        ranks.append(rank)
    stats.update(ranks=ranks, n_reported=len(sf.top_slices_))
    return stats


def worker_versions(job: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    from importlib import metadata

    out = {}
    for name in job["packages"]:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


WORKERS = {
    "datagauge": worker_datagauge,
    "sliceline": worker_sliceline,
    "versions": worker_versions,
}


# ----------------------------------------------------------------------------- parent side


def run_worker(
    kind: str, job: dict[str, Any], job_dir: Path, timeout: float, python: str = sys.executable
) -> dict[str, Any]:
    write_text(job_dir / "job.json", json.dumps(job))
    cmd = [python, str(Path(__file__).resolve()), "--worker", kind, "--job-dir", str(job_dir)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        if proc.returncode < 0:
            tail.append(f"killed by signal {-proc.returncode} (out of memory?)")
        return {"error": "\n".join(tail), "returncode": proc.returncode}
    return dict(json.loads((job_dir / "stats.json").read_text()))


def one_config(
    n: int, t: int, args: argparse.Namespace, tmp: Path, sliceline: bool
) -> dict[str, Any]:
    from datagauge._synthetic import planted_slices

    data = planted_slices(n, t, seed=n * 1000 + t)
    job_dir = Path(tempfile.mkdtemp(prefix=f"n{n}-t{t}-", dir=tmp))
    np.save(job_dir / "tags.npy", data.tags)
    np.save(job_dir / "correct.npy", data.correct)
    job = {
        "max_tags": args.max_tags,
        "slices": [list(s) for s in data.slices],
        "repeat": args.repeat,
        "k": args.sliceline_k,
        "mem_limit_bytes": int(args.sliceline_mem_gib * 2**30),
    }
    row: dict[str, Any] = {"n": n, "t": t, "max_tags": args.max_tags, "slices": job["slices"]}
    print(f"  n={n:,} t={t}: datagauge ...", flush=True)
    row["datagauge"] = run_worker("datagauge", job, job_dir, args.timeout)
    if sliceline and n <= args.sliceline_max_n:
        print(f"  n={n:,} t={t}: SliceLine ...", flush=True)
        row["sliceline"] = run_worker(
            "sliceline", job, job_dir, args.timeout, python=str(SLICELINE_PYTHON)
        )
    else:
        row["sliceline"] = {"error": "not run"}
    for f in job_dir.iterdir():
        f.unlink()
    job_dir.rmdir()
    return row


# ----------------------------------------------------------------------------- report


def _t(stats: dict[str, Any]) -> str:
    return (
        f"{stats['time_s']:.3f}" if "time_s" in stats else stats.get("error", "-").split("\n")[-1]
    )


def _mem(stats: dict[str, Any]) -> str:
    if "peak_rss_mib" not in stats:
        return "-"
    growth = stats.get("peak_growth_mib")
    extra = f" (+{growth:.0f})" if growth is not None else ""
    return f"{stats['peak_rss_mib']:.0f}{extra}"


def _ranks(stats: dict[str, Any]) -> str:
    if "ranks" not in stats:
        return "-"
    return ", ".join("-" if r is None else str(r) for r in stats["ranks"])


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs, {m['ram_gib']} GiB RAM, "
        f"{m['os']}, Python {m['python']}; load average at start {m['loadavg'][0]:.2f}.",
        f"Versions: {result['versions']}.",
        "",
        "| n | t | max_tags | datagauge s | datagauge peak MiB (+growth) | datagauge ranks "
        "| SliceLine s | SliceLine peak MiB (+growth) | SliceLine ranks | SliceLine / datagauge |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for row in result["rows"]:
        dg, sl = row["datagauge"], row["sliceline"]
        ratio = f"{sl['time_s'] / dg['time_s']:.0f}x" if "time_s" in sl and "time_s" in dg else "-"
        lines.append(
            f"| {row['n']:,} | {row['t']} | {row['max_tags']} | {_t(dg)} | {_mem(dg)} | "
            f"{_ranks(dg)} | {_t(sl)} | {_mem(sl)} | {_ranks(sl)} | {ratio} |"
        )
    lines.append("")
    lines.append(
        "Ranks: position of the planted 2-tag and 3-tag slices in each tool's output (1 = top); "
        "'-' not found. SliceLine returns its top-k slices by score (k = "
        f"{result['args']['sliceline_k']}, alpha = 0.95)."
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes only (smoke test)")
    p.add_argument("--sizes", type=int, nargs="+", help="n (default 10k 100k 1M)")
    p.add_argument("--tags", type=int, nargs="+", help="t (default 30 50 100)")
    p.add_argument("--max-tags", type=int, default=3)
    p.add_argument("--repeat", type=int, default=REPEAT)
    p.add_argument("--no-sliceline", action="store_true")
    p.add_argument("--sliceline-max-n", type=int, default=100_000, help="largest n for SliceLine")
    p.add_argument("--sliceline-k", type=int, default=10, help="SliceLine's top-k")
    p.add_argument("--sliceline-mem-gib", type=float, default=16.0, help="its address-space cap")
    p.add_argument("--timeout", type=float, default=1800.0, help="per worker, s")
    p.add_argument("--out", type=Path, help="JSON result path")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--job-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = args.sizes or [2000]
        args.tags = args.tags or [12]
        args.sliceline_mem_gib = min(args.sliceline_mem_gib, 4.0)
    args.sizes = args.sizes or [10_000, 100_000, 1_000_000]
    args.tags = args.tags or [30, 50, 100]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_job(WORKERS, args.worker, args.job_dir)
        return 0
    sliceline = not args.no_sliceline
    if sliceline and not SLICELINE_PYTHON.exists():
        print(f"SliceLine skipped: no {SLICELINE_PYTHON}; see the set-up in this file's docstring.")
        sliceline = False
    result: dict[str, Any] = {
        "machine": machine_info(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "rows": [],
    }
    with temp_dir("bench-bias-") as tmp:
        versions = {"datagauge_env": run_worker("versions", {"packages": [
            "datagauge", "numpy"]}, Path(tempfile.mkdtemp(dir=tmp)), 120)}  # fmt: skip
        if sliceline:
            versions["sliceline_env"] = run_worker(
                "versions",
                {"packages": ["sliceline", "numpy", "scipy", "scikit-learn"]},
                Path(tempfile.mkdtemp(dir=tmp)),
                120,
                python=str(SLICELINE_PYTHON),
            )
        result["versions"] = versions
        for n in args.sizes:
            for t in args.tags:
                result["rows"].append(one_config(n, t, args, tmp, sliceline))
    RESULTS_DIR.mkdir(exist_ok=True)
    out = args.out or RESULTS_DIR / f"bias-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_text(out, json.dumps(result, indent=2))
    md = markdown(result)
    write_text(out.with_suffix(".md"), md + "\n")
    print(md)
    print(f"\nSaved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
