"""Sufficiency benchmark: learning-curve fits, datagauge side by side with DataEval 1.1.4.

On the same measured curves (noisy synthetic power laws of several shapes, and a real curve:
a scikit-learn LogisticRegression's test accuracy on growing subsets of the digits, measured
with ``datagauge.Sufficiency``), both libraries fit ``error(n) = c * n**(-m) + c0`` to
``1 - mean accuracy``:

- DataEval: ``dataeval.performance._output.calc_params`` (scipy basinhopping, 1000 iterations,
  its defaults; numpy's global RNG seeded to 0 before each curve);
- datagauge: ``datagauge.fit_learning_curve`` (Numba grid + refinement), timed without the
  bootstrap band (the same work as DataEval) and with it (200 resamples of the runs).

Reported per curve: fit time of each and their ratio, the least-squares loss each reached,
the largest difference of the projections (at the measured sizes and at 2x, 5x, 10x the
largest), and the sizes each says a few targets need (DataEval's falls one short: it
truncates; datagauge's is checked to reach the target).

Set-up (DataEval in its own virtualenv)::

    python3 -m venv benchmarks/.venv-dataeval
    benchmarks/.venv-dataeval/bin/pip install torch==2.13.0
    benchmarks/.venv-dataeval/bin/pip install dataeval==1.1.4 psutil

Run (from the repository root, datagauge and scikit-learn importable)::

    python benchmarks/bench_sufficiency.py --quick    # 3 synthetic curves, a small real one
    python benchmarks/bench_sufficiency.py            # 8 synthetic curves, the full real one

``$DATAEVAL_PYTHON`` overrides DataEval's interpreter. Without it, DataEval is skipped with a
message. Results go to ``benchmarks/results/sufficiency-<timestamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from _harness import machine_info

HERE = Path(__file__).resolve().parent
VENV_PYTHON = Path(os.environ.get("DATAEVAL_PYTHON", HERE / ".venv-dataeval" / "bin" / "python"))
RESULTS_DIR = HERE / "results"
SETUP_COMMANDS = (
    "python3 -m venv benchmarks/.venv-dataeval\n"
    "benchmarks/.venv-dataeval/bin/pip install torch==2.13.0\n"
    "benchmarks/.venv-dataeval/bin/pip install dataeval==1.1.4 psutil"
)
NITER = 1000
REPEATS = 20  # datagauge fits per curve timed (median reported)

# name: (c, m, c0, noise); metric = 1 - (c * n**-m + c0) + noise, clipped to [0, 1]
SHAPES = {
    "standard": (0.8, 0.5, 0.05, 0.005),
    "slow": (0.5, 0.15, 0.1, 0.003),
    "fast": (3.0, 1.0, 0.02, 0.003),
    "saturating": (0.6, 0.7, 0.0, 0.002),
}

# ----------------------------------------------------------------------------- curves


def geometric_steps(n: int, substeps: int) -> np.ndarray:
    """DataEval's spacing: np.geomspace(1% of n, n, substeps) cast to int, at least 1."""
    return np.maximum(np.geomspace(0.01 * n, n, substeps).astype(np.int64), 1)


def synthetic_curves(seeds: int, runs: int = 3) -> list[dict[str, Any]]:
    curves = []
    steps = geometric_steps(5000, 10)
    for i, (name, (c, m, c0, noise)) in enumerate(SHAPES.items()):
        for seed in range(seeds):
            rng = np.random.default_rng([i, seed])
            clean = 1.0 - (c * steps.astype(float) ** -m + c0)
            values = np.clip(clean + rng.normal(0.0, noise, (runs, steps.size)), 0.0, 1.0)
            curves.append(
                {"name": f"{name}-{seed}", "steps": steps.tolist(), "values": values.tolist()}
            )
    return curves


def digits_curve(n_train: int, substeps: int, runs: int) -> dict[str, Any]:
    """LogisticRegression accuracy on the digits, measured with datagauge.Sufficiency."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    import datagauge as dg
    from datagauge.datasets import load_digits

    class Arrays:
        def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
            self.x, self.y = x, y

        def __len__(self) -> int:
            return len(self.x)

    class Train:
        def train(self, model: Any, ds: Arrays, indices: np.ndarray) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(ds.x[indices], ds.y[indices])

    class Evaluate:
        def evaluate(self, model: Any, ds: Arrays) -> dict[str, float]:
            return {"accuracy": float(model.score(ds.x, ds.y))}

    digits = load_digits()
    x, y = digits.flat().astype(np.float64), digits.labels
    order = np.random.default_rng(0).permutation(len(x))
    train = Arrays(x[order[:n_train]], y[order[:n_train]])
    test = Arrays(x[order[n_train:]], y[order[n_train:]])
    cfg = dg.Sufficiency.Config(Train(), Evaluate(), runs=runs, substeps=substeps)
    t0 = time.perf_counter()
    res = dg.Sufficiency(LogisticRegression(max_iter=300), cfg).evaluate(
        train, test, progress=False, random_state=0
    )
    print(
        f"measured the digits curve ({runs} runs x {res.steps.size} steps) in "
        f"{time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return {
        "name": f"digits-logreg-{n_train}",
        "steps": res.steps.tolist(),
        "values": res.measures["accuracy"].tolist(),
    }


def add_queries(curve: dict[str, Any]) -> None:
    steps = np.asarray(curve["steps"])
    mean = np.asarray(curve["values"]).mean(axis=0)
    top = int(steps[-1])
    curve["sizes"] = [*steps.tolist(), 2 * top, 5 * top, 10 * top]
    curve["targets"] = [round(float(mean[len(mean) // 2]), 4), round(float(mean[-1]), 4)]


# ----------------------------------------------------------------------------- fits


def worker_dataeval() -> None:
    """Runs in DataEval's virtualenv: fit every curve of the JSON on stdin."""
    from dataeval.performance._output import calc_params, inv_project_steps, project_steps

    spec = json.load(sys.stdin)
    out = []
    for curve in spec["curves"]:
        steps = np.asarray(curve["steps"], dtype=np.int64)
        mean = np.asarray(curve["values"], dtype=np.float64).mean(axis=0)
        np.random.seed(0)  # noqa: NPY002 - DataEval's basinhopping draws from the global RNG
        t0, c0 = time.perf_counter(), time.process_time()
        params = calc_params(1 - mean, steps, spec["niter"], True)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        err = (1 - mean) - (params[0] * steps.astype(float) ** -params[1] + params[2])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inv = inv_project_steps(params, np.asarray(curve["targets"], dtype=np.float64))
        out.append(
            {
                "params": params.tolist(),
                "loss": float(np.sum(err**2)),
                "projection": project_steps(params, np.asarray(curve["sizes"], float)).tolist(),
                "inv_project": np.asarray(inv).astype(np.int64).tolist(),
                "seconds": elapsed,
                "cpu_seconds": cpu,
            }
        )
    json.dump(out, sys.stdout)


def dataeval_fits(curves: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    if not VENV_PYTHON.exists():
        print(
            f"DataEval skipped: no interpreter at {VENV_PYTHON}. Set it up with\n"
            f"{SETUP_COMMANDS}\nor point $DATAEVAL_PYTHON at one.",
            file=sys.stderr,
        )
        return None
    proc = subprocess.run(
        [str(VENV_PYTHON), str(Path(__file__).resolve()), "--worker", "dataeval"],
        input=json.dumps({"curves": curves, "niter": NITER}),
        capture_output=True,
        text=True,
        check=True,
    )
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def datagauge_fits(curves: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    import datagauge as dg

    t0 = time.perf_counter()  # first call: Numba compiles (or loads its cache)
    dg.fit_learning_curve(curves[0]["steps"], curves[0]["values"])
    first = time.perf_counter() - t0
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.DatagaugeWarning)
        for curve in curves:
            times, cpu_times, boot_times = [], [], []
            for _ in range(REPEATS):
                t0, c0 = time.perf_counter(), time.process_time()
                fit = dg.fit_learning_curve(curve["steps"], curve["values"], n_bootstrap=0)
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
            for _ in range(3):
                t0 = time.perf_counter()
                dg.fit_learning_curve(curve["steps"], curve["values"])
                boot_times.append(time.perf_counter() - t0)
            inv = fit.inv_project(curve["targets"])
            out.append(
                {
                    "params": list(fit.params),
                    "loss": fit.loss,
                    "r2": fit.r2,
                    "projection": fit.project(curve["sizes"]).tolist(),
                    "inv_project": inv.tolist(),
                    "inv_reaches": [
                        bool(n > 0 and fit.project(n)[0] >= t)
                        for n, t in zip(inv.tolist(), curve["targets"], strict=True)
                    ],
                    "seconds": statistics.median(times),
                    "cpu_seconds": statistics.median(cpu_times),
                    "seconds_with_band": statistics.median(boot_times),
                }
            )
    return out, first


def reaches(curve: dict[str, Any], params: list[float], n: int, target: float) -> bool:
    """Whether a DataEval size reaches the target on DataEval's own curve."""
    c, m, c0 = params
    return n > 0 and 1.0 - (c * float(n) ** -m + c0) >= target


# ----------------------------------------------------------------------------- report


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"## Sufficiency: learning-curve fit, datagauge vs DataEval {result['dataeval_version']}",
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs, load {m['load_1min_at_start']} "
        f"at start; Python {m['python']}. datagauge's first call (Numba compile or cache "
        f"load): {result['datagauge_first_call_s']:.2f} s, not counted below.",
        "",
        "Fit times are wall (CPU) seconds; the ratio is of wall times (of CPU times). "
        "datagauge's are medians of 20 fits.",
        "",
        "| curve | DataEval fit | datagauge fit | ratio | datagauge + band | loss DataEval | "
        "loss datagauge | max abs proj. diff | sizes for targets (DataEval / datagauge) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        dg, de = row["datagauge"], row.get("dataeval")
        if de is None:
            lines.append(
                f"| {row['name']} | - | {dg['seconds'] * 1e3:.2f} ms | - | "
                f"{dg['seconds_with_band'] * 1e3:.1f} ms | - | {dg['loss']:.4g} | - | "
                f"- / {dg['inv_project']} |"
            )
            continue
        sizes = ", ".join(
            f"{t}: {a}{' (misses)' if a > 0 and not ok else ''} / {b}"
            for t, a, ok, b in zip(
                row["targets"],
                de["inv_project"],
                row["dataeval_reaches"],
                dg["inv_project"],
                strict=True,
            )
        )
        lines.append(
            f"| {row['name']} | {de['seconds']:.3f} s ({de['cpu_seconds']:.3f}) | "
            f"{dg['seconds'] * 1e3:.2f} ms ({dg['cpu_seconds'] * 1e3:.2f}) | "
            f"{de['seconds'] / dg['seconds']:.0f}x "
            f"({de['cpu_seconds'] / max(dg['cpu_seconds'], 1e-9):.0f}x) | "
            f"{dg['seconds_with_band'] * 1e3:.1f} ms | "
            f"{de['loss']:.6g} | {dg['loss']:.6g} | {row['max_projection_diff']:.2g} | "
            f"{sizes} |"
        )
    s = result.get("summary")
    if s:
        lines += [
            "",
            f"Median fit time: DataEval {s['dataeval_median_s']:.3f} s, datagauge "
            f"{s['datagauge_median_s'] * 1e3:.2f} ms (ratio {s['median_ratio']:.0f}x; smallest "
            f"{s['min_ratio']:.0f}x; median CPU-time ratio {s['median_cpu_ratio']:.0f}x). "
            "Largest projection difference over all curves: "
            f"{s['max_projection_diff']:.2g}. datagauge's loss <= DataEval's on "
            f"{s['loss_not_worse']}/{s['curves']} curves.",
        ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 synthetic curves, a small real one")
    p.add_argument("--seeds", type=int, help="noisy copies of each synthetic shape (default 2)")
    p.add_argument("--no-digits", action="store_true", help="skip the measured digits curve")
    p.add_argument("--no-dataeval", action="store_true")
    p.add_argument("--worker", choices=["dataeval"], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "dataeval":
        worker_dataeval()
        return 0
    seeds = args.seeds or (1 if args.quick else 2)
    curves = synthetic_curves(seeds)
    if args.quick:
        curves = curves[:3]
    if not args.no_digits:
        curves.append(digits_curve(400, 8, 2) if args.quick else digits_curve(1200, 10, 3))
    for curve in curves:
        add_queries(curve)
    ours, first = datagauge_fits(curves)
    theirs = None if args.no_dataeval else dataeval_fits(curves)
    rows = []
    for i, curve in enumerate(curves):
        row: dict[str, Any] = {
            "name": curve["name"],
            "steps": curve["steps"],
            "sizes": curve["sizes"],
            "targets": curve["targets"],
            "datagauge": ours[i],
        }
        if theirs is not None:
            de = theirs[i]
            row["dataeval"] = de
            row["max_projection_diff"] = float(
                np.max(np.abs(np.subtract(de["projection"], ours[i]["projection"])))
            )
            row["dataeval_reaches"] = [
                reaches(curve, de["params"], n, t)
                for n, t in zip(de["inv_project"], curve["targets"], strict=True)
            ]
        rows.append(row)
    result: dict[str, Any] = {
        "machine": machine_info(),
        "dataeval_version": "1.1.4",
        "niter": NITER,
        "datagauge_first_call_s": first,
        "rows": rows,
    }
    if theirs is not None:
        ratios = [r["dataeval"]["seconds"] / r["datagauge"]["seconds"] for r in rows]
        result["summary"] = {
            "curves": len(rows),
            "dataeval_median_s": statistics.median(r["dataeval"]["seconds"] for r in rows),
            "datagauge_median_s": statistics.median(r["datagauge"]["seconds"] for r in rows),
            "median_ratio": statistics.median(ratios),
            "min_ratio": min(ratios),
            "median_cpu_ratio": statistics.median(
                r["dataeval"]["cpu_seconds"] / max(r["datagauge"]["cpu_seconds"], 1e-9)
                for r in rows
            ),
            "max_projection_diff": max(r["max_projection_diff"] for r in rows),
            "loss_not_worse": sum(
                r["datagauge"]["loss"] <= r["dataeval"]["loss"] * (1 + 1e-6) for r in rows
            ),
        }
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    md = markdown(result)
    (RESULTS_DIR / f"sufficiency-{stamp}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS_DIR / f"sufficiency-{stamp}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
