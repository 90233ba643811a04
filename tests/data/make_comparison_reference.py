"""Write ``comparison_dataeval.json``: DataEval 1.1.4's Bayes error, divergence, spanning tree
and drift outputs on fixed data.

The tests ``tests/test_bayes_error.py``, ``test_divergence.py``, ``test_mst.py`` and
``test_drift.py`` rebuild the same data with the functions below (this file is imported there;
a checksum of every array guards against drift of the generators) and compare datagauge with
these outputs, so they need no DataEval. Run from the repository root, with scikit-learn
importable and DataEval installed in ``benchmarks/.venv-dataeval`` or at ``$DATAEVAL_PYTHON``
(set-up: see ``benchmarks/bench_coverage.py``)::

    python tests/data/make_comparison_reference.py

What is recorded (DataEval function: source file in DataEval 1.1.4):

- ``ber``: ``ber_knn`` (several k) and ``ber_mst``: ``dataeval/core/_ber.py``;
- ``divergence``: ``divergence_fnn`` and ``divergence_mst``: ``dataeval/core/_divergence.py``;
- ``mst``: the edges of ``minimum_spanning_tree`` (k = 15): ``dataeval/core/_mst.py``;
- ``mmd``: ``DriftMMD().fit(ref).predict(test)``: the statistic (``distance``), the bandwidth
  it chose (``_kernel.sigma``) and its p-value: ``dataeval/shift/_drift/_mmd.py``;
- ``ks``: ``DriftUnivariate(method="ks", correction=...)``: per-feature p-values and
  statistics, the decision and its threshold: ``dataeval/shift/_drift/_univariate.py``.

Every array is handed to DataEval as the float32 array datagauge converts it to. Digits are
scikit-learn's 8x8 digits divided by 16 plus Gaussian noise of 1e-3 (no tied distances).
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
OUT = HERE / "comparison_dataeval.json"


def checksum(*arrays: np.ndarray) -> str:
    """sha256 of the arrays' bytes (float arrays as float32, integer arrays as int64)."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        dtype = np.float32 if a.dtype.kind == "f" else np.int64
        digest.update(np.ascontiguousarray(a, dtype=dtype).tobytes())
    return digest.hexdigest()


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits / 16 plus N(0, 1e-3) noise (float32), and their labels."""
    from sklearn.datasets import load_digits

    data, target = load_digits(return_X_y=True)
    noise = np.random.default_rng(7).normal(0.0, 1e-3, data.shape)
    return (data / 16.0 + noise).astype(np.float32), target.astype(np.int64)


def dataeval_blobs() -> dict[str, np.ndarray]:
    """The datasets of DataEval's divergence docstring (make_blobs, random_state=712)."""
    from sklearn.datasets import make_blobs

    a = make_blobs(
        n_samples=50, centers=np.array([(-1, -1), (1, 1)]), cluster_std=0.3, random_state=712
    )[0]
    b = (
        make_blobs(
            n_samples=50,
            centers=np.array([(-0.5, -0.5), (1, 1)]),
            cluster_std=0.3,
            random_state=712,
        )[0]
        + 0.05
    )
    c = make_blobs(
        n_samples=50, centers=np.array([(-0.5, 0.5), (1, -1)]), cluster_std=0.3, random_state=712
    )[0]
    return {k: v.astype(np.float32) for k, v in {"a": a, "b": b, "c": c}.items()}


def three_clusters() -> np.ndarray:
    """Three tight clusters, A nearer B than C, whose minimum tree joins A to C: DataEval's
    second pass offers A only its edges to B, so its tree is longer than the minimum."""
    rng = np.random.default_rng(3)
    centers = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.5]])
    return np.concatenate([c + rng.normal(0, 0.01, (20, 2)) for c in centers]).astype(np.float32)


def ber_cases() -> list[dict]:
    """name, x (float32), y (int64), ks (ber_knn's k values)."""
    from sklearn.datasets import make_blobs

    out = []
    x, y = make_blobs(n_samples=50, centers=2, n_features=2, random_state=0)
    out.append({"name": "dataeval_docstring", "x": x.astype(np.float32), "y": y, "ks": [1]})
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.7]])
    sizes = [150, 120, 90]
    x = np.concatenate([rng.normal(c, 1.0, (s, 2)) for c, s in zip(centers, sizes, strict=True)])
    y = np.repeat(np.arange(3), sizes)
    out.append({"name": "blobs_3class_2d", "x": x.astype(np.float32), "y": y, "ks": [1, 2, 4, 7]})
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0.0, 1.0, (200, 5)), rng.normal(0.8, 1.0, (160, 5))])
    y = np.repeat([0, 1], [200, 160])
    perm = rng.permutation(y.size)
    out.append(
        {
            "name": "two_class_5d",
            "x": x[perm].astype(np.float32),
            "y": y[perm],
            "ks": [1, 2, 3, 4, 6, 9],
        }
    )
    x, y = digits()
    out.append({"name": "digits", "x": x, "y": y, "ks": [1, 3, 5]})
    x = three_clusters()
    out.append({"name": "three_clusters", "x": x, "y": np.repeat([0, 1, 2], 20), "ks": [1]})
    return out


def divergence_cases() -> list[dict]:
    """name, a, b (float32)."""
    blobs = dataeval_blobs()
    out = [
        {"name": "dataeval_docstring_ab", "a": blobs["a"], "b": blobs["b"]},
        {"name": "dataeval_docstring_ac", "a": blobs["a"], "b": blobs["c"]},
    ]
    rng = np.random.default_rng(4)
    out.append(
        {
            "name": "gaussian_shift_8d",
            "a": rng.normal(0.0, 1.0, (400, 8)).astype(np.float32),
            "b": rng.normal(0.5, 1.0, (300, 8)).astype(np.float32),
        }
    )
    x, y = digits()
    out.append({"name": "digits_low_vs_high", "a": x[y < 5], "b": x[y >= 5]})
    x = three_clusters()
    out.append({"name": "three_clusters", "a": x[:20], "b": x[20:]})
    return out


def mst_cases() -> list[dict]:
    """name, x (float32)."""
    rng = np.random.default_rng(5)
    return [
        {"name": "gaussian_2d", "x": rng.normal(size=(500, 2)).astype(np.float32)},
        {"name": "gaussian_8d", "x": rng.normal(size=(600, 8)).astype(np.float32)},
        {
            "name": "separated_blobs_3d",
            "x": np.concatenate([rng.normal(c, 0.3, (150, 3)) for c in (0.0, 5.0, 10.0)]).astype(
                np.float32
            ),
        },
        {"name": "digits", "x": digits()[0]},
        {"name": "three_clusters", "x": three_clusters()},
    ]


def drift_cases() -> list[dict]:
    """name, reference, test (float32)."""
    rng = np.random.default_rng(6)
    ref = rng.normal(0.0, 1.0, (120, 5)).astype(np.float32)
    out = [
        {
            "name": "null_5d",
            "reference": ref,
            "test": rng.normal(0.0, 1.0, (90, 5)).astype(np.float32),
        },
        {
            "name": "shift_5d",
            "reference": ref,
            "test": rng.normal(0.4, 1.0, (90, 5)).astype(np.float32),
        },
        {"name": "same_array", "reference": ref, "test": ref.copy()},
    ]
    x, y = digits()
    out.append({"name": "digits_first_vs_rest", "reference": x[:600], "test": x[600:1000]})
    out.append({"name": "digits_classes", "reference": x[y < 7][:500], "test": x[y >= 3][:400]})
    feats = rng.normal(0.0, 1.0, (300, 12)).astype(np.float32)
    moved = rng.normal(0.0, 1.0, (250, 12)).astype(np.float32)
    moved[:, 3] += 0.5
    moved[:, 7] *= 1.6
    out.append({"name": "two_features_moved", "reference": feats, "test": moved})
    return out


WORKER = r"""
import json, sys, time
import numpy as np
import torch
from dataeval.core import ber_knn, ber_mst, divergence_fnn, divergence_mst
from dataeval.core._mst import minimum_spanning_tree
from dataeval.shift import DriftMMD, DriftUnivariate

def arr(spec):
    n, d = spec["shape"]
    return np.frombuffer(bytes.fromhex(spec["hex"]), dtype=np.float32).reshape(n, d).copy()

spec = json.load(sys.stdin)
out = {"ber": [], "divergence": [], "mst": [], "mmd": [], "ks": []}
for case in spec["ber"]:
    x, y = arr(case["x"]), np.asarray(case["y"], dtype=np.int64)
    knn = {str(k): ber_knn(x, y, k) for k in case["ks"]}
    out["ber"].append({"name": case["name"], "knn": knn, "mst": ber_mst(x, y)})
for case in spec["divergence"]:
    a, b = arr(case["a"]), arr(case["b"])
    fnn, mst = divergence_fnn(a, b), divergence_mst(a, b)
    out["divergence"].append({
        "name": case["name"],
        "fnn": {"divergence": float(fnn["divergence"]), "errors": int(fnn["errors"])},
        "mst": {"divergence": float(mst["divergence"]), "errors": int(mst["errors"])},
    })
for case in spec["mst"]:
    x = arr(case["x"])
    t0 = time.perf_counter()
    res = minimum_spanning_tree(x)
    elapsed = time.perf_counter() - t0
    s, t = res["source"], res["target"]
    edges = sorted(zip(np.minimum(s, t).tolist(), np.maximum(s, t).tolist()))
    length = float(np.sqrt(((x[s].astype(np.float64) - x[t]) ** 2).sum(axis=1)).sum())
    out["mst"].append({"name": case["name"], "edges": edges, "total_length": length,
                       "seconds": elapsed})
for case in spec["drift"]:
    ref, tst = arr(case["reference"]), arr(case["test"])
    torch.manual_seed(0)
    det = DriftMMD().fit(ref)
    res = det.predict(tst)
    out["mmd"].append({
        "name": case["name"], "mmd2": float(res.distance),
        "sigma": float(det._kernel.sigma.detach().cpu().numpy().ravel()[0]),
        "p_val": float(res.details["p_val"]),
        "distance_threshold": float(res.details["distance_threshold"]),
        "drifted": bool(res.drifted),
    })
    for correction in ("bonferroni", "fdr"):
        det = DriftUnivariate(method="ks", correction=correction).fit(ref)
        res = det.predict(tst)
        out["ks"].append({
            "name": case["name"], "correction": correction,
            "p_vals": np.asarray(res.details["p_vals"], dtype=float).tolist(),
            "distances": np.asarray(res.details["distances"], dtype=float).tolist(),
            "distance": float(res.distance), "drifted": bool(res.drifted),
            "threshold": float(res.threshold),
        })
json.dump(out, sys.stdout)
"""


def _hex(x: np.ndarray) -> dict:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return {"shape": list(x.shape), "hex": x.tobytes().hex()}


def main() -> None:
    if not VENV_PYTHON.exists():
        raise SystemExit(f"DataEval's virtualenv is missing: {VENV_PYTHON}")
    ber, div, msts, drifts = ber_cases(), divergence_cases(), mst_cases(), drift_cases()
    spec = {
        "ber": [
            {"name": c["name"], "x": _hex(c["x"]), "y": c["y"].tolist(), "ks": c["ks"]} for c in ber
        ],
        "divergence": [{"name": c["name"], "a": _hex(c["a"]), "b": _hex(c["b"])} for c in div],
        "mst": [{"name": c["name"], "x": _hex(c["x"])} for c in msts],
        "drift": [
            {"name": c["name"], "reference": _hex(c["reference"]), "test": _hex(c["test"])}
            for c in drifts
        ],
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(VENV_PYTHON), "-c", WORKER],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout)
    for group, cases in (("ber", ber), ("divergence", div), ("mst", msts)):
        for case, rec in zip(cases, result[group], strict=True):
            arrays = [case[key] for key in ("x", "y", "a", "b") if key in case]
            rec["checksum"] = checksum(*arrays)
    by_name = {c["name"]: checksum(c["reference"], c["test"]) for c in drifts}
    for group in ("mmd", "ks"):
        for rec in result[group]:
            rec["checksum"] = by_name[rec["name"]]
    payload = {
        "generator": "tests/data/make_comparison_reference.py",
        "dataeval_version": "1.1.4",
        "functions": {
            "ber": "dataeval.core.ber_knn, ber_mst (dataeval/core/_ber.py)",
            "divergence": "dataeval.core.divergence_fnn, divergence_mst "
            "(dataeval/core/_divergence.py)",
            "mst": "dataeval.core._mst.minimum_spanning_tree, k=15 (dataeval/core/_mst.py)",
            "mmd": "dataeval.shift.DriftMMD (dataeval/shift/_drift/_mmd.py), torch seed 0",
            "ks": "dataeval.shift.DriftUnivariate(method='ks') "
            "(dataeval/shift/_drift/_univariate.py)",
        },
        **result,
    }
    OUT.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} (DataEval took {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
