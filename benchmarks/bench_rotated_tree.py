"""The kd-tree in the data's principal axes against the plain kd-tree (exact self k-NN).

Both trees give the same lists (checked here, bit for bit); the rotated one prunes along the
directions the data vary in and stops its scans early. Data: the 64-d Gaussian mixture of
``bench_compare.py`` (8 latent dimensions, noise on every feature) and the clustered 512-d
data of ``bench_ivf_wide.py`` (32 latent dimensions). Each measurement is the whole call as
``Exact(engine="kdtree")`` runs it (frame, build and self-query), on all usable CPUs, with the
plain tree at its old leaf size (128) and the rotated one at the new default (n / 128,
from 64 to 512).

    python benchmarks/bench_rotated_tree.py                 # 100k x 64 and 50k x 512, k = 1, 20
    python benchmarks/bench_rotated_tree.py --n64 20000 --n512 10000 --k 5   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import cpu_s, machine_info, write_text
from bench_compare import labelled_data
from bench_ivf_wide import clustered
from datagauge import _core
from datagauge import neighbors as nb


def measure(x: np.ndarray, k: int, rotated: bool) -> tuple[dict[str, Any], Any]:
    t0, c0 = time.perf_counter(), cpu_s()
    if rotated:
        frame = nb.principal_frame(x)
        leaf = nb.resolve_leaf_size(nb.Exact(), x.shape[1], True, x.shape[0])
        tree = nb.build_tree(x, leaf, 0, frame)
    else:
        tree = _core.KDTree(x, 128, 0)
    lists = tree.self_query(k, 0)
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    share = nb.tree_share(tree, k, x.shape[0])
    return {"wall_s": wall, "cpu_s": cpu, "probe_share": share}, lists


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n64", type=int, default=100_000)
    p.add_argument("--n512", type=int, default=50_000)
    p.add_argument("--k", type=int, nargs="+", default=[1, 20])
    p.add_argument("--out", help="JSON result path")
    args = p.parse_args()
    info = machine_info()
    print(json.dumps(info))
    data = {
        f"mixture {args.n64:,} x 64 (8 latent)": lambda: labelled_data(args.n64)[0],
        f"clustered {args.n512:,} x 512 (32 latent)": lambda: clustered(args.n512),
    }
    rows = []
    for name, make in data.items():
        x = np.ascontiguousarray(make(), dtype=np.float32)
        for k in args.k:
            plain, a = measure(x, k, False)
            rot, b = measure(x, k, True)
            same = bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))
            rows.append({"data": name, "k": k, "plain": plain, "rotated": rot, "same": same})
            print(json.dumps(rows[-1]), flush=True)
    print()
    print(
        "| data | k | plain tree wall s (CPU s) | rotated tree wall s (CPU s) | CPU ratio "
        "| probe share plain / rotated | same lists |"
    )
    print("|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        pl, ro = r["plain"], r["rotated"]
        print(
            f"| {r['data']} | {r['k']} | {pl['wall_s']:.2f} ({pl['cpu_s']:.2f}) | "
            f"{ro['wall_s']:.2f} ({ro['cpu_s']:.2f}) | {pl['cpu_s'] / ro['cpu_s']:.1f}x | "
            f"{pl['probe_share']:.3f} / {ro['probe_share']:.3f} | {'yes' if r['same'] else 'no'} |"
        )
    if args.out:
        write_text(args.out, json.dumps({"machine": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
