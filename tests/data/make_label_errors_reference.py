"""Write ``label_errors_dataeval.json``: DataEval 1.1.4's ``label_errors`` on fixed data.

The test ``tests/test_label_errors.py`` rebuilds the same data with :func:`cases` (this file
is imported there; a checksum of every case guards against drift) and compares datagauge's
``method="distance_ratio"`` with these outputs, so it needs no DataEval. Run from the
repository root, with scikit-learn importable and DataEval installed in
``benchmarks/.venv-dataeval`` or at ``$DATAEVAL_PYTHON`` (set-up: see
``benchmarks/bench_coverage.py``)::

    python tests/data/make_label_errors_reference.py

The cases: Gaussian blobs in 2-d (overlapping), 5-d classes of unequal sizes with one class
of 8 samples (DataEval then uses k = 7), and scikit-learn's digits with 30 planted label flips,
once as real numbers (pixels / 16 plus a little noise: no tied distances) and once as the raw
integer pixels (many tied distances). DataEval gets the same float32 arrays datagauge
searches. Besides DataEval's output, the file lists for every case the samples whose
suggestion depends on the order of two equal vote shares (DataEval sorts them with NumPy's
unstable argsort, whose order of ties differs between machines).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV_PYTHON = Path(
    os.environ.get("DATAEVAL_PYTHON", ROOT / "benchmarks" / ".venv-dataeval" / "bin" / "python")
)
OUT = HERE / "label_errors_dataeval.json"
N_FLIPS = 30


def checksum(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the float32 data and the int64 labels."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return digest.hexdigest()


def plant_flips(y: np.ndarray, n_flips: int, n_classes: int, seed: int) -> tuple:
    """Labels with `n_flips` samples moved to another class (seeded); (labels, flipped)."""
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(y.size, size=n_flips, replace=False))
    out = y.copy()
    out[flipped] = (y[flipped] + rng.integers(1, n_classes, size=n_flips)) % n_classes
    return out, flipped


def digits(raw: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x float32, planted labels, true labels, flipped indices) for scikit-learn's digits."""
    from sklearn.datasets import load_digits

    data, target = load_digits(return_X_y=True)
    if raw:
        x = data.astype(np.float32)
    else:
        noise = np.random.default_rng(7).normal(0.0, 1e-3, data.shape)
        x = (data / 16.0 + noise).astype(np.float32)
    y_true = target.astype(np.int64)
    y, flipped = plant_flips(y_true, N_FLIPS, 10, seed=11)
    return x, y, y_true, flipped


def cases() -> list[dict]:
    """Every case: name, x (float32 (n, d)), y (int64 (n,)), k."""
    out = []
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 0.0], [2.5, 0.0], [1.2, 2.0]])
    sizes = [120, 100, 80]
    x = np.concatenate([rng.normal(c, 1.0, (s, 2)) for c, s in zip(centers, sizes, strict=True)])
    y = np.repeat(np.arange(3), sizes)
    out.append({"name": "blobs_2d", "x": x.astype(np.float32), "y": y, "k": 10})

    rng = np.random.default_rng(2)
    sizes = [60, 50, 40, 8]
    x = np.concatenate([rng.normal(1.5 * c, 1.0, (s, 5)) for c, s in enumerate(sizes)])
    y = np.repeat(np.arange(4), sizes)
    perm = rng.permutation(y.size)
    out.append({"name": "small_class_5d", "x": x[perm].astype(np.float32), "y": y[perm], "k": 50})

    x, y, _, _ = digits(raw=False)
    out.append({"name": "digits_flips", "x": x, "y": y, "k": 50})
    x, y, _, _ = digits(raw=True)
    out.append({"name": "digits_raw_flips", "x": x, "y": y, "k": 20})
    return out


WORKER = r"""
import json, sys, time
import numpy as np
from dataeval.core import label_errors
from dataeval.core._label_errors import _compute_label_scores

spec = json.load(sys.stdin)
out = []
for case in spec["cases"]:
    n, d = case["shape"]
    x = np.frombuffer(bytes.fromhex(case["x"]), dtype=np.float32).reshape(n, d)
    y = np.asarray(case["y"], dtype=np.int64)
    t0 = time.perf_counter()
    res = label_errors(x, y, k=case["k"])
    elapsed = time.perf_counter() - t0
    # Vote shares as DataEval's _suggest_labels computes them, to find order-dependent ties.
    _, nbr = _compute_label_scores(x, y, k=case["k"])
    kk = nbr.shape[1]
    w = np.ceil(np.linspace(kk, 1, kk) / 3)
    votes = np.zeros((n, int(y.max()) + 1))
    np.add.at(votes, (np.repeat(np.arange(n), kk), nbr.ravel()), np.tile(w, n))
    conf = votes / w.sum()
    s = -np.sort(-conf, axis=1)
    ambiguous = s[:, 0] - s[:, 1] < 0.2
    tie = (s[:, 0] >= 0.4) & ((s[:, 0] == s[:, 1]) | (ambiguous & (s[:, 1] == s[:, 2])))
    out.append({
        "name": case["name"],
        "k_used": int(kk),
        "scores": res["scores"].astype(float).tolist(),
        "error_rank": res["error_rank"].tolist(),
        "errors": {str(i): [int(a), [int(v) for v in b]] for i, (a, b) in res["errors"].items()},
        "tie_order_dependent": np.flatnonzero(tie).tolist(),
        "seconds": elapsed,
    })
json.dump(out, sys.stdout)
"""


def dataeval_outputs(specs: list[dict]) -> list[dict]:
    if not VENV_PYTHON.exists():
        raise SystemExit(f"DataEval's virtualenv is missing: {VENV_PYTHON}")
    proc = subprocess.run(
        [str(VENV_PYTHON), "-c", WORKER],
        input=json.dumps({"cases": specs}),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def main() -> None:
    all_cases = cases()
    specs = [
        {
            "name": c["name"],
            "shape": list(c["x"].shape),
            "x": np.ascontiguousarray(c["x"], dtype=np.float32).tobytes().hex(),
            "y": c["y"].tolist(),
            "k": c["k"],
        }
        for c in all_cases
    ]
    t0 = time.perf_counter()
    outputs = dataeval_outputs(specs)
    records = []
    for case, result in zip(all_cases, outputs, strict=True):
        data = {"k": case["k"], "shape": list(case["x"].shape)}
        records.append({**data, "checksum": checksum(case["x"], case["y"]), **result})
    payload = {
        "generator": "tests/data/make_label_errors_reference.py",
        "dataeval_version": "1.1.4",
        "function": "dataeval.core.label_errors (dataeval/core/_label_errors.py)",
        "cases": records,
    }
    OUT.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({len(records)} cases, DataEval took {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
