"""GPU FAISS flat against the CPU engines: same answers, and the whole call's time.

Needs faiss with GPU support and a CUDA GPU (``datagauge.neighbors.gpu_available()``):

    python benchmarks/bench_gpu.py [--out results/gpu.json]

1. On 20,000 points (64 and 512 features) the GPU flat engine's lists must equal the CPU
   flat engine's and the default exact engine's, bit for bit, and coverage must give the same
   radii and uncovered set.
2. Timings of ``kneighbors(x, 10, index="flat", device="gpu")`` at 100k x 256 (beside the
   CPU's default exact engine), 1M x 128 and 1M x 512, each checked on 500 rows against float64
   brute force.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import datagauge
from _harness import machine_info, write_text
from datagauge.neighbors import gpu_available, kneighbors


def same_answers(rng: np.random.Generator, d: int) -> dict[str, object]:
    x = rng.standard_normal((20_000, d)).astype(np.float32)
    dg, ig = kneighbors(x, 10, index="flat", device="gpu")
    dc, ic = kneighbors(x, 10, index="flat", device="cpu")
    de, ie = kneighbors(x, 10, index="exact", device="cpu")
    cg = datagauge.coverage(x, 10, index="flat", device="gpu")
    cc = datagauge.coverage(x, 10, index="flat", device="cpu")
    return {
        "n": 20_000,
        "d": d,
        "gpu_equals_cpu_flat": bool(np.array_equal(dg, dc) and np.array_equal(ig, ic)),
        "gpu_equals_exact": bool(np.array_equal(dg, de) and np.array_equal(ig, ie)),
        "coverage_equal": bool(
            np.array_equal(cg.critical_value_radii, cc.critical_value_radii)
            and np.array_equal(cg.uncovered_indices, cc.uncovered_indices)
        ),
    }


def timed(rng: np.random.Generator, n: int, d: int, cpu_threads: int | None) -> dict[str, object]:
    x = rng.standard_normal((n, d)).astype(np.float32)
    kneighbors(x[:5000], 10, index="flat", device="gpu")  # CUDA context and kernels
    t = time.perf_counter()
    dist, _ = kneighbors(x, 10, index="flat", device="gpu")
    row = {"n": n, "d": d, "gpu_flat_s": time.perf_counter() - t}
    sub = rng.choice(n, 500, replace=False)
    xs = x[sub].astype(np.float64)
    x64 = x.astype(np.float64)
    sq = (xs**2).sum(1)[:, None] - 2 * xs @ x64.T + (x64**2).sum(1)[None, :]
    sq[np.arange(sub.size), sub] = np.inf
    want = np.sort(np.partition(sq, 10, axis=1)[:, :10], axis=1)
    err = np.abs(dist[sub].astype(np.float64) ** 2 - want).max() / want.max()
    row["max_rel_err_sq"] = float(err)
    if cpu_threads:
        t = time.perf_counter()
        kneighbors(x, 10, index="exact", device="cpu", n_jobs=cpu_threads)
        row[f"cpu_exact_{cpu_threads}_threads_s"] = time.perf_counter() - t
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the results here as JSON")
    args = parser.parse_args()
    if not gpu_available():
        raise SystemExit("needs faiss with GPU support and a CUDA GPU")
    rng = np.random.default_rng(0)
    result = {
        "machine": machine_info(),
        "same_answers": [same_answers(rng, d) for d in (64, 512)],
        "timings": [timed(rng, 100_000, 256, 16), timed(rng, 1_000_000, 128, None),
                    timed(rng, 1_000_000, 512, None)],
    }  # fmt: skip
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
