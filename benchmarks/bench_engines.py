"""Break-even of ``Exact(engine="auto")``: the exact engines timed side by side on one dataset.

For each case: the kd-tree probe share (``neighbors.tree_share``, what "auto" reads), the int8
plan (``neighbors.screen_plan``), and the wall and CPU seconds of a whole self-query by the
kd-tree (build + ``self_query``), the float32 tiles (``engine="brute"``, kernel
``_core.fp32_tile_kernel()``) and the int8 screening (``engine="screen"``, only where the plan
exists). Every engine answers the same (checked here: equal distances). One process, the
engines one after the other, all usable CPUs each.

Cases (``--cases``):

- ``fmnist-pca64`` / ``fmnist-pca128``: the first 30,000 Fashion-MNIST images projected on
  their 64 / 128 leading principal axes (float64 SVD, then float32);
- ``clustered512``: bench_coverage's clustered generator at 30,000 x 512 (latent dimension 6);
- ``compare64``: bench_compare's Bayes-error data at 100,000 x 64 (latent dimension 8);
- ``clustered512-100k``: bench_wide's 100,000 x 512 clustered case (slow: minutes).

Run (from the repository root)::

    python benchmarks/bench_engines.py --cases fmnist-pca64 clustered512 --k 20
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import bench_coverage as bc
from _harness import cpu_s, machine_info

CASES = ("fmnist-pca64", "fmnist-pca128", "clustered512", "compare64", "clustered512-100k")


def load_case(name: str) -> np.ndarray:
    if name.startswith("fmnist-pca"):
        from datagauge.datasets import load_fashion_mnist

        images = load_fashion_mnist("all").images[:30_000]
        x = images.reshape(images.shape[0], -1).astype(np.float64)
        x -= x.mean(axis=0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        dims = int(name.removeprefix("fmnist-pca"))
        return np.ascontiguousarray(x @ vt[:dims].T, dtype=np.float32)
    if name == "compare64":
        import bench_compare

        return bench_compare.labelled_data(100_000)[0]
    n = 100_000 if name.endswith("100k") else 30_000
    return bc.make_data("clustered", n, 512)


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    c0, t0 = cpu_s(), time.perf_counter()
    out = fn()
    return out, {"wall_s": time.perf_counter() - t0, "cpu_s": cpu_s() - c0}


def run_case(name: str, k: int, engines: list[str]) -> dict[str, Any]:
    from datagauge import Exact, _core, neighbors
    from datagauge._threads import resolve_n_jobs

    x = load_case(name)
    n, d = x.shape
    threads = resolve_n_jobs(None)
    row: dict[str, Any] = {"case": name, "n": n, "d": d, "k": k}
    tree = _core.KDTree(x, neighbors.resolve_leaf_size(Exact(), d), 0)
    row["tree_share"] = neighbors.tree_share(tree, k, n)
    del tree
    plan = neighbors.screen_plan(x, k)
    row["int8_plan"] = plan
    row["fp32_kernel"] = _core.fp32_tile_kernel()
    answers = {}
    for engine in engines:
        if engine == "screen" and plan is None:
            continue
        print(f"[{name}] {engine}", flush=True)
        if engine == "kdtree":
            leaf = neighbors.resolve_leaf_size(Exact(), d)
            out, row[engine] = timed(
                lambda leaf=leaf: _core.KDTree(x, leaf, 0).self_query(k, threads)
            )
        else:
            spec = Exact(engine=engine)  # type: ignore[arg-type]
            screen = (plan or 0) if engine == "screen" else 0
            out, row[engine] = timed(
                lambda spec=spec, screen=screen: neighbors._brute_knn(x, k, spec, threads, screen)
            )
        answers[engine] = out[0]
    first = next(iter(answers.values()))
    row["same_distances"] = all(np.array_equal(first, a) for a in answers.values())
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| data | n x d | k | kd-tree probe share | int8 plan | kd-tree | int8 screening | "
        "float32 tiles | same distances |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]

    def cell(r: dict[str, float] | None) -> str:
        return "-" if not r else f"{r['wall_s']:.2f} ({r['cpu_s']:.1f})"

    for r in rows:
        lines.append(
            f"| {r['case']} | {r['n']:,} x {r['d']} | {r['k']} | {r['tree_share']:.3f} | "
            f"{r['int8_plan']} | {cell(r.get('kdtree'))} | {cell(r.get('screen'))} | "
            f"{cell(r.get('brute'))} ({r['fp32_kernel']}) | {r['same_distances']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", nargs="+", default=list(CASES[:3]), choices=CASES)
    p.add_argument("--k", type=int, nargs="+", default=[20])
    p.add_argument(
        "--engines",
        nargs="+",
        default=["kdtree", "screen", "brute"],
        choices=["kdtree", "screen", "brute"],
    )
    args = p.parse_args(argv)
    print(json.dumps(machine_info()))
    rows = [run_case(c, k, args.engines) for c in args.cases for k in args.k]
    print(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
