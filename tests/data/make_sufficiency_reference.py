"""Write ``sufficiency_dataeval.json``: DataEval 1.1.4's learning-curve fits on fixed curves.

The test ``tests/test_sufficiency.py`` compares datagauge's fits with these, so it needs no
DataEval. Run from the repository root, with scikit-learn importable and DataEval installed in
``benchmarks/.venv-dataeval`` or at ``$DATAEVAL_PYTHON`` (set-up: see
``benchmarks/bench_coverage.py``)::

    python tests/data/make_sufficiency_reference.py

The curves: four noisy synthetic power laws of different shapes (3 runs each) and one real
curve, a scikit-learn LogisticRegression's test accuracy on growing subsets of the digits
(3 runs). DataEval fits the mean over runs (``calc_params``, basinhopping with its defaults,
1000 iterations) with numpy's global RNG seeded to 0 before each curve.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# DataEval's interpreter: $DATAEVAL_PYTHON, else the benchmarks' virtualenv
VENV_PYTHON = Path(
    os.environ.get("DATAEVAL_PYTHON", ROOT / "benchmarks" / ".venv-dataeval" / "bin" / "python")
)
OUT = HERE / "sufficiency_dataeval.json"

# name: (c, m, c0, noise); the metric is 1 - (c * n**-m + c0) plus noise, clipped to [0, 1]
SHAPES = {
    "standard": (0.8, 0.5, 0.05, 0.005),
    "slow": (0.5, 0.15, 0.1, 0.003),
    "fast": (3.0, 1.0, 0.02, 0.003),
    "saturating": (0.6, 0.7, 0.0, 0.002),
}


def geometric_steps(n: int, substeps: int) -> np.ndarray:
    """DataEval's spacing: np.geomspace(1% of n, n, substeps) cast to int, at least 1."""
    return np.maximum(np.geomspace(0.01 * n, n, substeps).astype(np.int64), 1)


def synthetic_curves(runs: int = 3) -> list[dict]:
    curves = []
    steps = geometric_steps(5000, 10)
    for i, (name, (c, m, c0, noise)) in enumerate(SHAPES.items()):
        rng = np.random.default_rng(100 + i)
        clean = 1.0 - (c * steps.astype(float) ** -m + c0)
        values = np.clip(clean + rng.normal(0.0, noise, (runs, steps.size)), 0.0, 1.0)
        curves.append({"name": name, "steps": steps.tolist(), "values": values.tolist()})
    return curves


def digits_curve(runs: int = 3) -> dict:
    """LogisticRegression test accuracy on the digits, trained from scratch at every size."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    split = np.random.default_rng(0).permutation(len(x))
    train, test = split[:1200], split[1200:]
    steps = geometric_steps(train.size, 10)
    values = np.empty((runs, steps.size))
    for r in range(runs):
        order = np.random.default_rng(r).permutation(train)
        for j, s in enumerate(steps):
            idx = order[:s]
            if np.unique(y[idx]).size < 2:
                values[r, j] = float(np.mean(y[test] == y[idx][0]))
                continue
            model = LogisticRegression(max_iter=2000).fit(x[idx], y[idx])
            values[r, j] = float(model.score(x[test], y[test]))
    return {"name": "digits_logreg", "steps": steps.tolist(), "values": values.tolist()}


WORKER = r"""
import json, sys, time, warnings
import numpy as np
from dataeval.performance._output import calc_params, project_steps, inv_project_steps
spec = json.load(sys.stdin)
out = []
for curve in spec["curves"]:
    steps = np.asarray(curve["steps"], dtype=np.int64)
    mean = np.asarray(curve["values"], dtype=np.float64).mean(axis=0)
    np.random.seed(0)
    t0 = time.perf_counter()
    params = calc_params(1 - mean, steps, spec["niter"], True)
    elapsed = time.perf_counter() - t0
    sizes = np.asarray(curve["sizes"], dtype=np.float64)
    loss = float(np.sum(np.square((1 - mean) - (params[0] * steps ** -params[1] + params[2]))))
    targets = np.asarray(curve["targets"], dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inv = inv_project_steps(params, targets)
    out.append({"name": curve["name"], "params": params.tolist(), "loss": loss,
                "projection": project_steps(params, sizes).tolist(),
                "inv_project": np.asarray(inv).tolist(), "seconds": elapsed})
json.dump(out, sys.stdout)
"""


def dataeval_fits(curves: list[dict], niter: int = 1000) -> list[dict]:
    if not VENV_PYTHON.exists():
        raise SystemExit(f"DataEval's virtualenv is missing: {VENV_PYTHON}")
    proc = subprocess.run(
        [str(VENV_PYTHON), "-c", WORKER],
        input=json.dumps({"curves": curves, "niter": niter}),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def main() -> None:
    curves = [*synthetic_curves(), digits_curve()]
    for curve in curves:
        steps = np.asarray(curve["steps"])
        mean = np.asarray(curve["values"]).mean(axis=0)
        curve["sizes"] = [
            *steps.tolist(),
            int(steps[-1] * 2),
            int(steps[-1] * 5),
            int(steps[-1] * 10),
        ]
        # targets between the best measured value and a little beyond
        top = float(mean[-1])
        curve["targets"] = [
            round(float(t), 4) for t in (mean[2], mean[5], top, top + 0.5 * (1 - top) * 0.1)
        ]
    t0 = time.perf_counter()
    fits = dataeval_fits(curves)
    for curve, fit in zip(curves, fits, strict=True):
        curve["dataeval"] = fit
    payload = {
        "generator": "tests/data/make_sufficiency_reference.py",
        "dataeval_version": "1.1.4",
        "seed": "np.random.seed(0) before each calc_params call",
        "curves": curves,
    }
    OUT.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {OUT} ({len(curves)} curves, DataEval took {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
