"""Coverage on wide data (exact k-NN past the float32 bound): datagauge vs DataEval 1.1.4.

Three datasets, k = 20, adaptive radius (``percent=0.01``):

- ``fmnist-70000x784``: the 70,000 Fashion-MNIST images (train + test) as the loader gives
  them, pixels / 255 in float32 (Debian ``dataset-fashion-mnist``);
- ``clustered-100000x512``: bench_coverage's clustered generator (a 6-d Gaussian mixture mapped
  to 512-d plus noise: low intrinsic dimension, like CLIP embeddings);
- ``uniform-100000x64``: uniform random in [0, 1]^64.

datagauge runs with the default engine (``index="exact"``: ``Exact(engine="auto")``) and, for
reference, with the float32 brute-force tiles (``index="brute"``) and the int8 screening
(``index="screen"``); DataEval 1.1.4's ``coverage_adaptive`` runs in its own virtualenv. Every
measurement is its own subprocess (the workers of bench_coverage.py); wall and CPU seconds are
recorded with the machine's load, and the uncovered sets and radii are compared.

Run (from the repository root)::

    python benchmarks/bench_wide.py                       # all three (about 10 minutes)
    python benchmarks/bench_wide.py --cases fmnist-70000x784 --no-reference
    python benchmarks/bench_wide.py --cases uniform-100000x64 --reference brute

DataEval's Python is ``$DATAEVAL_PYTHON``, else ``benchmarks/.venv-dataeval/bin/python``.
Results go to ``benchmarks/results/wide-<timestamp>.json`` and the table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import bench_coverage as bc
from _harness import machine_info, temp_dir, write_text

K = 20
CASES = ("fmnist-70000x784", "clustered-100000x512", "uniform-100000x64")


def load_case(name: str) -> np.ndarray:
    gen, shape = name.split("-")
    n, d = (int(v) for v in shape.split("x"))
    if gen == "fmnist":
        from datagauge.datasets import load_fashion_mnist

        images = load_fashion_mnist("all").images[:n]
        return np.ascontiguousarray(images.reshape(images.shape[0], -1), dtype=np.float32)
    return bc.make_data(gen, n, d)


def dataeval_python() -> str:
    env = os.environ.get("DATAEVAL_PYTHON")
    return env if env else str(bc.VENV_PYTHON)


def engine_facts(x: np.ndarray) -> dict[str, Any]:
    """What datagauge's "auto" sees: SIMD level and whether the int8 screening pays."""
    from datagauge import _core, neighbors

    t0 = time.perf_counter()
    pays = neighbors.screen_pays(x, K)
    return {
        "simd_level": _core.simd_level(),
        "screen_pays": pays,
        "screen_pays_s": time.perf_counter() - t0,
    }


def run_case(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    x = load_case(name)
    path = tmp / f"{name}.npy"
    np.save(path, x)
    row: dict[str, Any] = {"case": name, "n": x.shape[0], "d": x.shape[1], **engine_facts(x)}
    del x
    job = {"data": str(path), "k": K, "percent": bc.PERCENT, "methods": ["adaptive"]}
    job["repeat"] = False
    indexes = ["exact"] + ([] if args.no_reference else list(args.reference))
    dirs: dict[str, Path] = {}
    for index in indexes:
        print(f"[{name}] datagauge index={index}", flush=True)
        stats, dirs[index] = bc.run_worker(
            "datagauge", {**job, "index": {"kind": index}}, tmp, args.timeout
        )
        row[f"datagauge_{index}"] = stats["runs"]["adaptive"] if "runs" in stats else stats
    if not args.no_dataeval:
        print(f"[{name}] DataEval", flush=True)
        de_job = {**job, "processes": 2}
        stats, dirs["dataeval"] = bc.run_worker(
            "dataeval", de_job, tmp, args.timeout, python=dataeval_python()
        )
        row["dataeval"] = stats["runs"]["adaptive"] if "runs" in stats else stats
        if "error" not in row["dataeval"] and "error" not in row["datagauge_exact"]:
            row["check"] = bc.compare(dirs["exact"], dirs["dataeval"], "adaptive")
    for index in indexes[1:]:
        if "error" not in row[f"datagauge_{index}"]:
            row[f"same_as_exact_{index}"] = bc.compare(dirs["exact"], dirs[index], "adaptive")
    path.unlink()
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| data | auto engine input | datagauge wall s (CPU s) | screen s (CPU) | brute fp32 s "
        "(CPU) | DataEval wall s (CPU s) | ratio wall | ratio CPU | same uncovered set | "
        "load (1 min) |\n|---|---|---:|---:|---:|---:|---:|---:|---|---:|"
    )
    lines = [head]

    def cell(r: dict[str, Any] | None) -> str:
        if not r:
            return "-"
        if "error" in r:
            return str(r["error"]).splitlines()[0][:40]
        return f"{r['time_s']:.2f} ({r['cpu_s']:.1f})"

    for row in rows:
        dg, de = row.get("datagauge_exact"), row.get("dataeval")
        ok = dg and de and "error" not in dg and "error" not in de
        wall = f"**{de['time_s'] / dg['time_s']:.1f}x**" if ok else "-"  # type: ignore[index]
        cpu = f"{de['cpu_s'] / dg['cpu_s']:.1f}x" if ok else "-"  # type: ignore[index]
        check = row.get("check", {})
        same = "yes" if check.get("same_set") else ("-" if not check else "NO")
        load = dg.get("loadavg_1min_before", float("nan")) if dg else float("nan")
        facts = f"{row['simd_level']}, int8 pays: {row['screen_pays']}"
        lines.append(
            f"| {row['case']} | {facts} | {cell(dg)} | {cell(row.get('datagauge_screen'))} | "
            f"{cell(row.get('datagauge_brute'))} | {cell(de)} | {wall} | {cpu} | {same} | "
            f"{load:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    p.add_argument("--no-dataeval", action="store_true")
    p.add_argument("--no-reference", action="store_true", help="skip index=screen and brute")
    p.add_argument(
        "--reference",
        nargs="+",
        default=["screen", "brute"],
        choices=["screen", "brute"],
        help="reference engines run besides the default one",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="per worker, s")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    out = args.out or bc.RESULTS_DIR / f"wide-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "machine": machine_info(),
        "source": bc.source_state(),
        "rows": [],
    }
    with temp_dir("bench-wide-") as tmp:
        for name in args.cases:
            result["rows"].append(run_case(name, args, tmp))
            write_text(out, json.dumps(result, indent=1))
            print(table(result["rows"][-1:]), flush=True)
    print(table(result["rows"]))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
