"""Time of ``import datagauge`` in a fresh interpreter (best of several runs).

The package imports neither torch, FAISS, Dask, SciPy nor pandas (tests/test_package.py checks
that); this measures what the import itself costs, on the machine it runs on.

    python benchmarks/bench_import.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _harness import machine_info

_PROBE = """
import json, time
t0 = time.perf_counter()
import datagauge
print(json.dumps({"elapsed": time.perf_counter() - t0}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
        )
        times.append(json.loads(out.stdout.strip().splitlines()[-1])["elapsed"])
    print(f"machine: {machine_info()}")
    print(
        f"import datagauge: best {min(times):.3f} s, median {sorted(times)[len(times) // 2]:.3f} s"
    )


if __name__ == "__main__":
    main()
