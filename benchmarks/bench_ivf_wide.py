"""Approximate coverage on wide embeddings: the core IVF, FAISS IVF-Flat, IVF-SQ8 and IVF-PQ
against exact search.

Clustered 512-d data (200 Gaussian clusters in 32 latent dimensions mapped linearly to 512,
plus isotropic noise: low intrinsic dimension, as CLIP or DINO embeddings). For each engine,
in a fresh process: the k = 20 neighbour graph and the adaptive coverage from it with the
embeddings (one call each, as a user times them; approximate radii that decide the uncovered
set are searched again exactly), the recall@20 the graph measures on 512 sampled points
against exact search, the peak resident memory of the process (the data included) and, where
the exact answer was computed at the same size, the overlap of the uncovered sets.

    python benchmarks/bench_ivf_wide.py                    # 100k (exact too) and 1M (approximate)
    python benchmarks/bench_ivf_wide.py --sizes 100000     # one size

Results go to benchmarks/results/ivf-wide-<time>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import MIB, cpu_s, machine_info, peak_rss, reset_peak, write_text

D, LATENT, CLUSTERS, NOISE, K = 512, 32, 200, 0.05, 20
ENGINES = {
    "exact": "index='exact'",
    "ivf-core": "IVF(engine='core')",
    "ivf-flat": "IVF(engine='faiss')",
    "ivf-sq8": "IVF(codes='sq8')",
    "ivf-pq64": "IVF(codes='pq64')",
}
EXACT_MAX_N = 100_000  # exact search beyond this takes too long to be a useful reference
RESULTS = Path(__file__).resolve().parent / "results"


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Seeded float32 (n, 512) clustered data, generated a block at a time (no float64 copy
    of the whole array)."""
    rng = np.random.default_rng([seed, n])
    centres = rng.normal(0.0, 1.0, (CLUSTERS, LATENT))
    proj = rng.standard_normal((LATENT, D)) / np.sqrt(LATENT)
    x = np.empty((n, D), dtype=np.float32)
    for start in range(0, n, 1 << 16):
        m = min(n, start + (1 << 16)) - start
        z = centres[rng.integers(0, CLUSTERS, m)] + 0.35 * rng.standard_normal((m, LATENT))
        x[start : start + m] = z @ proj + NOISE * rng.standard_normal((m, D))
    return x


def child(n: int, engine: str, out: Path) -> None:
    """One measurement, in this process: graph + coverage, written to `out` as JSON."""
    import datagauge
    from datagauge.neighbors import IVF

    x = clustered(n)
    spec: Any = {
        "exact": "exact",
        "ivf-core": IVF(engine="core"),
        "ivf-flat": IVF(engine="faiss"),
        "ivf-sq8": IVF(codes="sq8"),
        "ivf-pq64": IVF(codes="pq64"),
    }[engine]
    reset_peak()
    t0, c0 = time.perf_counter(), cpu_s()
    graph = datagauge.neighbor_graph(x, K, index=spec)
    # with the embeddings: an approximate graph's deciding radii are searched again exactly
    res = datagauge.coverage(x, K, graph=graph)
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    write_text(
        out,
        json.dumps(
            {
                "n": n,
                "engine": engine,
                "graph_engine": graph.engine,
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_rss_mib": peak_rss() / MIB,
                "data_mib": x.nbytes / MIB,
                "recall": graph.recall,
                "uncovered": res.uncovered_indices.tolist(),
            }
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per measurement")
    parser.add_argument("--child", nargs=3, metavar=("N", "ENGINE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1], Path(args.child[2]))
        return
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    info = machine_info()
    for n in args.sizes:
        exact_uncovered: set[int] | None = None
        for engine in args.engines:
            if engine == "exact" and n > EXACT_MAX_N:
                continue
            out = RESULTS / f".ivf-wide-{stamp}-{n}-{engine}.json"
            cmd = [sys.executable, __file__, "--child", str(n), engine, str(out)]
            try:
                subprocess.run(cmd, check=True, timeout=args.timeout)
                row = json.loads(out.read_text())
                out.unlink()
            except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
                row = {"n": n, "engine": engine, "error": type(exc).__name__}
            uncovered = set(row.pop("uncovered", []))
            if engine == "exact" and "error" not in row:
                exact_uncovered = uncovered
            elif exact_uncovered is not None and "error" not in row:
                row["uncovered_overlap"] = len(uncovered & exact_uncovered) / max(
                    1, len(exact_uncovered)
                )
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {"commit": commit, "started": stamp, "machine": info, "rows": rows}
    write_text(RESULTS / f"ivf-wide-{stamp}.json", json.dumps(report, indent=1))
    lines = [
        f"Machine: {info['cpu']}, {info['usable_cpus']} usable CPUs, {info['ram_gib']} GiB; "
        f"load average at start {info['load_1min_at_start']}; commit {commit}; run {stamp}.",
        "",
        "| n | engine | wall s | CPU s | recall@20 | uncovered overlap with exact | peak RSS MiB "
        "(data) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n']:,} | {ENGINES[r['engine']]} | {r['error']} | | | | |")
            continue
        recall = "exact" if r["recall"] is None else f"{r['recall']:.3f}"
        overlap = r.get("uncovered_overlap")
        lines.append(
            f"| {r['n']:,} | {ENGINES[r['engine']]} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{recall} | {'-' if overlap is None else f'{overlap:.3f}'} | "
            f"{r['peak_rss_mib']:.0f} ({r['data_mib']:.0f}) |"
        )
    write_text(RESULTS / f"ivf-wide-{stamp}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
