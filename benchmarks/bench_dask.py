"""Dask benchmark: ``datagauge.dask`` side by side with the in-memory functions it mirrors.

For every size n and chunk count, on the same data in one run:

* k-NN: ``datagauge.dask.kneighbors`` (d = 8, kd-tree per chunk; d = 32, the probe's choice
  per chunk: the kd-tree on this clustered data) against ``datagauge.kneighbors`` on the
  computed array, k = 20;
* coverage: ``datagauge.dask.coverage`` against ``datagauge.coverage`` (d = 8);
* familiarity: ``datagauge.dask.fit_familiarity`` against ``Familiarity.fit`` (d = 16, K = 5,
  diag, 20 EM iterations, ``tol=0``);
* bias: ``datagauge.dask.find_biases`` against ``datagauge.find_biases`` (24 tags, 3 per
  combination).

The in-memory function is the peer: the Dask path must give the same answer (checked, and
reported as ``same``), and its cost is the ratio of the two wall times. Dask runs on its
threaded scheduler with ``n_jobs=1`` per task; the in-memory functions use every core. Wall
times only (one process; memory is not measured here).

Run (from the repository root, with datagauge and dask importable)::

    python benchmarks/bench_dask.py --quick         # smoke test, a few seconds
    python benchmarks/bench_dask.py                 # n = 20k, 100k; 4 and 16 chunks
    python benchmarks/bench_dask.py --sizes 50000 --chunks 8

Results go to ``benchmarks/results/dask-<timestamp>.json`` (and ``.md``); the markdown table
is also printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

import datagauge
import datagauge.dask as dgd
from _harness import machine_info, write_text

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
K = 20


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def clustered(n: int, d: int, seed: int) -> np.ndarray:
    """Embeddings-like data: 30 Gaussian clusters of random scales."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(30, d))
    scales = rng.uniform(0.3, 1.5, size=30)
    label = rng.integers(0, 30, n)
    x = centres[label] + rng.normal(size=(n, d)) * scales[label, None]
    return x.astype(np.float32)


def knn_case(x: np.ndarray, xd: Any) -> tuple[float, float, bool]:
    t_mem, (m_dist, m_idx) = timed(lambda: datagauge.kneighbors(x, K))
    t_dask, (dist, idx) = timed(lambda: dask.compute(*dgd.kneighbors(xd, K)))
    same = bool(np.array_equal(dist, m_dist) and np.array_equal(idx, m_idx))
    return t_mem, t_dask, same


def coverage_case(x: np.ndarray, xd: Any) -> tuple[float, float, bool]:
    t_mem, a = timed(lambda: datagauge.coverage(x, K))
    t_dask, b = timed(lambda: dgd.coverage(xd, K))
    same = bool(
        np.array_equal(a.uncovered_indices, b.uncovered_indices)
        and np.array_equal(a.critical_value_radii, b.critical_value_radii)
    )
    return t_mem, t_dask, same


def familiarity_case(x: np.ndarray, xd: Any) -> tuple[float, float, bool]:
    params = {"n_components": 5, "random_state": 0, "tol": 0.0, "max_iter": 20}
    with warnings.catch_warnings():  # tol=0: a fixed number of iterations, never converged
        warnings.simplefilter("ignore", datagauge.ConvergenceWarning)
        t_mem, a = timed(lambda: datagauge.Familiarity(**params).fit(x.astype(np.float64)))
        t_dask, b = timed(lambda: dgd.fit_familiarity(xd.astype(np.float64), **params))
    same = bool(np.allclose(a.means_, b.means_, rtol=1e-9, atol=1e-12))
    return t_mem, t_dask, same


def bias_case(tags: np.ndarray, correct: np.ndarray, td: Any) -> tuple[float, float, bool]:
    t_mem, a = timed(lambda: datagauge.find_biases(tags, correct, max_tags=3))
    t_dask, b = timed(lambda: dgd.find_biases(td, correct, max_tags=3))
    same = a.combinations == b.combinations and bool(np.array_equal(a.p_value, b.p_value))
    return t_mem, t_dask, same


def one_size(n: int, n_chunks: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    chunk = -(-n // n_chunks)

    def add(case: str, d: int, result: tuple[float, float, bool]) -> None:
        t_mem, t_dask, same = result
        rows.append(
            {
                "case": case,
                "n": n,
                "d": d,
                "chunks": n_chunks,
                "in_memory_s": round(t_mem, 4),
                "dask_s": round(t_dask, 4),
                "ratio": round(t_dask / t_mem, 2),
                "same": same,
            }
        )
        print(f"  {case:12s} n={n} d={d} chunks={n_chunks}: {t_mem:.3f} s vs {t_dask:.3f} s")

    for d in (8, 32):
        x = clustered(n, d, seed=d)
        xd = da.from_array(x, chunks=(chunk, -1)).persist()
        add("kneighbors", d, knn_case(x, xd))
        if d == 8:
            add("coverage", d, coverage_case(x, xd))
    x = clustered(n, 16, seed=16)
    add("familiarity", 16, familiarity_case(x, da.from_array(x, chunks=(chunk, -1)).persist()))
    rng = np.random.default_rng(1)
    tags = rng.random((n, 24)) < 0.2
    correct = rng.random(n) > np.where(tags[:, 0] & tags[:, 1], 0.5, 0.1)
    td = da.from_array(tags, chunks=(chunk, -1)).persist()
    add("find_biases", 24, bias_case(tags, correct, td))
    return rows


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs, {m['ram_gib']} GiB, {m['os']}, "
        f"Python {m['python']}; dask {result['versions']['dask']}, threaded scheduler.",
        "",
        "| case | n | d | chunks | in-memory (s) | dask (s) | dask / in-memory | same |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['case']} | {r['n']:,} | {r['d']} | {r['chunks']} | {r['in_memory_s']:.3f} "
            f"| {r['dask_s']:.3f} | {r['ratio']:.2f} | {'yes' if r['same'] else 'NO'} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--chunks", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--quick", action="store_true", help="n = 5000, 4 chunks (smoke test)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.chunks = [5000], [4]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result: dict[str, Any] = {
        "machine": machine_info(),
        "versions": {"datagauge": datagauge.__version__, "dask": dask.__version__},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "rows": [],
    }
    with dask.config.set(scheduler="threads"):
        warm = da.from_array(clustered(200, 32, seed=0), chunks=(100, -1))
        dask.compute(*dgd.kneighbors(warm, K))  # load FAISS and the core before timing
        datagauge.kneighbors(warm.compute(), K)
        for n in args.sizes:
            for n_chunks in args.chunks:
                result["rows"].extend(one_size(n, n_chunks))
    RESULTS_DIR.mkdir(exist_ok=True)
    out = args.out or RESULTS_DIR / f"dask-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_text(out, json.dumps(result, indent=2))
    md = markdown(result)
    write_text(out.with_suffix(".md"), md + "\n")
    print(md)
    print(f"\nSaved {out}")
    return 0 if all(r["same"] for r in result["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
