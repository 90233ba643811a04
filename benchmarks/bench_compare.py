"""Comparing datasets: datagauge side by side with DataEval 1.1.4 (project issue 13).

Measures, in one run, on seeded 64-d data at n = 10k, 100k and 1M, each a whole call as a user
times it:

=================  ====================================================  =======================
measure            datagauge                                             DataEval 1.1.4
=================  ====================================================  =======================
BER k-NN           ``bayes_error(x, y, method="knn", k=1)``              ``ber_knn(x, y, 1)``
BER MST            ``bayes_error(x, y, method="mst", tree=...)``         ``ber_mst(x, y)``
divergence FNN     ``divergence(a, b, method="fnn")``                    ``divergence_fnn(a, b)``
divergence MST     ``divergence(a, b, method="mst", tree=...)``          ``divergence_mst(a, b)``
MMD drift          ``drift(a, b, method="mmd", n_permutations=100)``     ``DriftMMD(n_permutations
                                                                         =100).fit(a).predict(b)``
=================  ====================================================  =======================

The MST measures run twice on datagauge's side: ``tree="exact"`` (the default, the Euclidean
minimum spanning tree) and ``tree="knn"`` (DataEval's spanning tree of the 15-NN graph, step
for step), both against the one DataEval run. With ``tree="knn"`` and on the k-NN measures the
values must equal DataEval's; with ``tree="exact"`` both are reported (DataEval's tree is not
always the minimum one). MMD is quadratic in n for both tools and runs up to ``--mmd-max-n``
(100k); both use 100 permutations (DataEval's default, and datagauge's for MMD).

Data: for the Bayes error, a 10-class Gaussian mixture in 8 latent dimensions mapped linearly
to 64 plus isotropic noise; the classes overlap somewhat (1-NN error about 0.1). For divergence
and MMD, two samples of n/2 each from two slightly different mixtures (the second one's means
shifted by 0.5 latent units and its weights perturbed; divergence about 0.07).

Every measurement runs in its own subprocess (its own peak RSS, via ``_harness.run_job``);
DataEval runs with the Python of its own virtualenv, with a timeout and an address-space cap,
and one that times out or runs out of memory is recorded as such. Data travel as temporary
``.npy`` files. Each worker first runs its call once on 1,000 rows (imports, Numba
compilation), untimed. Times are the fastest of up to 5 calls below 1M (fewer once 60 s are
spent), one call at 1M.

Set-up (DataEval in its own virtualenv; torch pinned to the local CPU wheel)::

    python3 -m venv benchmarks/.venv-dataeval
    benchmarks/.venv-dataeval/bin/pip install torch==2.13.0
    benchmarks/.venv-dataeval/bin/pip install dataeval==1.1.4 psutil

Run (from the repository root, with datagauge importable)::

    python benchmarks/bench_compare.py --quick        # 10k only, a few minutes
    python benchmarks/bench_compare.py                # 10k, 100k, 1M (hours: DataEval at 1M)
    python benchmarks/bench_compare.py --sizes 100000 --measures ber_mst div_mst

Results go to ``benchmarks/results/compare-<timestamp>.json`` (and ``.md``); the markdown
tables are also printed (``--render FILE.json`` prints them again). This file is also its own
worker (``--worker``); a worker imports only the library it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _harness import (
    MIB,
    cpu_s,
    machine_info,
    peak_rss,
    reset_peak,
    rss_now,
    run_job,
    system_cpu,
    temp_dir,
    write_text,
)

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
VENV_PYTHON = HERE / ".venv-dataeval" / "bin" / "python"
SETUP_COMMANDS = (
    "python3 -m venv benchmarks/.venv-dataeval\n"
    "benchmarks/.venv-dataeval/bin/pip install torch==2.13.0\n"
    "benchmarks/.venv-dataeval/bin/pip install dataeval==1.1.4 psutil"
)

D = 64
LATENT = 8
CLASSES = 10
SPREAD = 1.5  # std of the class means in latent units (class scales 0.6 to 1.2)
NOISE = 0.05  # isotropic noise per feature, on top of the 8-d signal
SHIFT = 0.5  # latent mean shift of the second sample (divergence, MMD)
N_PERMUTATIONS = 100
WARMUP_ROWS = 1000
# Repeated calls: at least 3 (fewer once MAX_TOTAL_S is spent), up to 5 while under MIN_TOTAL_S.
MIN_TOTAL_S = 2.0
MAX_TOTAL_S = 60.0
MAX_REPEAT = 5
TARGET_N = 100_000
TARGETS = {"ber_knn": 5.0, "div_fnn": 5.0, "ber_mst": 20.0, "div_mst": 20.0}

# measure -> (data kind, datagauge variants)
MEASURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ber_knn": ("labelled", ("knn",)),
    "ber_mst": ("labelled", ("exact", "knn")),
    "div_fnn": ("two", ("fnn",)),
    "div_mst": ("two", ("exact", "knn")),
    "mmd": ("two", ("mmd",)),
}
NAMES = {
    "ber_knn": "BER k-NN (k=1)",
    "ber_mst": "BER MST",
    "div_fnn": "divergence FNN",
    "div_mst": "divergence MST",
    "mmd": f"MMD drift ({N_PERMUTATIONS} perm.)",
}
DG_CALLS = {
    ("ber_knn", "knn"): 'bayes_error(method="knn", k=1)',
    ("ber_mst", "exact"): 'bayes_error(method="mst") (tree="exact")',
    ("ber_mst", "knn"): 'bayes_error(method="mst", tree="knn")',
    ("div_fnn", "fnn"): 'divergence(method="fnn")',
    ("div_mst", "exact"): 'divergence(method="mst") (tree="exact")',
    ("div_mst", "knn"): 'divergence(method="mst", tree="knn")',
    ("mmd", "mmd"): 'drift(method="mmd")',
}

# ----------------------------------------------------------------------------- data


def _mixture(seed: int) -> dict[str, np.ndarray]:
    """Class means (CLASSES, LATENT), scales, weights and the LATENT x D map."""
    rng = np.random.default_rng(seed)
    return {
        "means": rng.normal(0.0, SPREAD, size=(CLASSES, LATENT)),
        "scales": rng.uniform(0.6, 1.2, size=CLASSES),
        "weights": rng.dirichlet(np.full(CLASSES, 5.0)),
        "proj": rng.standard_normal((LATENT, D)) / math.sqrt(LATENT),
    }


def _draw(rng: np.random.Generator, n: int, mix: dict[str, np.ndarray]) -> tuple[Any, Any]:
    """n points of the mixture: (float32 (n, D), int64 component labels (n,))."""
    comp = rng.choice(CLASSES, size=n, p=mix["weights"])
    z = mix["means"][comp] + rng.standard_normal((n, LATENT)) * mix["scales"][comp, None]
    x = z @ mix["proj"] + NOISE * rng.standard_normal((n, D))
    return np.ascontiguousarray(x, dtype=np.float32), comp.astype(np.int64)


def labelled_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded Bayes-error data: (float32 (n, 64), int64 labels in 0..9 (n,))."""
    seed = int(np.random.SeedSequence([0xBE5, n]).generate_state(1)[0])
    return _draw(np.random.default_rng([seed, 1]), n, _mixture(seed))


def two_samples(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded divergence / drift data: two float32 (n // 2, 64) samples of slightly different
    mixtures (the second one's means shifted by SHIFT latent units in one random direction,
    its weights drawn from a Dirichlet around the first one's)."""
    seed = int(np.random.SeedSequence([0xD1F, n]).generate_state(1)[0])
    mix = _mixture(seed)
    rng = np.random.default_rng([seed, 1])
    direction = rng.standard_normal(LATENT)
    shifted = {
        **mix,
        "means": mix["means"] + SHIFT * direction / np.linalg.norm(direction),
        "weights": rng.dirichlet(200.0 * mix["weights"]),
    }
    a, _ = _draw(rng, n // 2, mix)
    b, _ = _draw(rng, n - n // 2, shifted)
    return a, b


# ----------------------------------------------------------------------------- measuring


def _begin() -> tuple[float, float, float, float]:
    busy, steal = system_cpu()
    return time.perf_counter(), cpu_s(), busy, steal


def _sample(t0: float, c0: float, busy0: float, steal0: float) -> dict[str, Any]:
    """Wall and CPU seconds since (t0, c0), and CPU time others used meanwhile."""
    wall, own = time.perf_counter() - t0, cpu_s() - c0
    busy1, steal1 = system_cpu()
    return {
        "time_s": wall,
        "cpu_s": own,
        "other_cpu_s": max(0.0, (busy1 - busy0) - own),
        "steal_s": steal1 - steal0,
    }


def _timed(fn: Callable[[], Any], repeat: bool) -> tuple[Any, dict[str, Any]]:
    """Call fn (3 to 5 times when `repeat`, see MIN_TOTAL_S / MAX_TOTAL_S); the fastest call's
    times, the last result, the peak RSS over all calls and the RSS before them."""
    peak_reset = reset_peak()
    rss_before = rss_now()
    calls, result = [], None
    while True:
        start = _begin()
        result = fn()
        calls.append(_sample(*start))
        total = sum(c["time_s"] for c in calls)
        if (
            not repeat
            or len(calls) >= MAX_REPEAT
            or total >= MAX_TOTAL_S
            or (len(calls) >= 3 and total >= MIN_TOTAL_S)
        ):
            break
    best = min(calls, key=lambda c: c["time_s"])
    return result, {
        **best,
        "times_s": [c["time_s"] for c in calls],
        "rss_before_mib": rss_before / MIB,
        "peak_rss_mib": peak_rss() / MIB,
        "peak_reset": peak_reset,
    }


def _inputs(job: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(x, labels) or (a, b) of the job."""
    return np.load(job["first"]), np.load(job["second"])


def _warm_inputs(job: dict[str, Any], first: Any, second: Any) -> tuple[Any, Any]:
    """The first WARMUP_ROWS rows (two samples: half from each)."""
    if MEASURES[job["measure"]][0] == "labelled":
        return first[:WARMUP_ROWS], second[:WARMUP_ROWS]
    return first[: WARMUP_ROWS // 2], second[: WARMUP_ROWS // 2]


def _measure(job: dict[str, Any], call: Callable[[Any, Any], Any]) -> tuple[Any, dict[str, Any]]:
    """Warm-up on WARMUP_ROWS rows, then the timed calls on the whole data."""
    first, second = _inputs(job)
    start = _begin()
    call(*_warm_inputs(job, first, second))
    warmup = _sample(*start)
    res, stats = _timed(lambda: call(first, second), job["repeat"])
    stats["warmup"] = warmup
    stats["n"] = int(first.shape[0] + (0 if job["measure"].startswith("ber") else second.shape[0]))
    return res, stats


def worker_datagauge(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """One datagauge call (job["measure"], job["variant"]), timed; its values in the stats."""
    import datagauge

    measure, variant = job["measure"], job["variant"]
    calls: dict[str, Callable[[Any, Any], Any]] = {
        "ber_knn": lambda x, y: datagauge.bayes_error(x, y, method="knn", k=1),
        "ber_mst": lambda x, y: datagauge.bayes_error(x, y, method="mst", tree=variant),
        "div_fnn": lambda a, b: datagauge.divergence(a, b, method="fnn"),
        "div_mst": lambda a, b: datagauge.divergence(a, b, method="mst", tree=variant),
        "mmd": lambda a, b: datagauge.drift(
            a, b, method="mmd", n_permutations=job["n_permutations"], random_state=0
        ),
    }
    res, stats = _measure(job, calls[measure])
    if measure.startswith("ber"):
        stats["values"] = {"upper": res.upper, "lower": res.lower, "errors": res.errors}
    elif measure.startswith("div"):
        stats["values"] = {"divergence": res.divergence, "errors": res.errors}
    else:
        stats["values"] = {
            "p_value": res.p_value,
            "statistic": res.statistic,
            "threshold": res.threshold,
            "sigma": res.sigma,
            "drifted": bool(res.drifted),
        }
    if measure.endswith("mst") and job.get("tree_stats"):
        # Untimed extra: the tree alone (its length shows how far DataEval's is from minimal).
        first, second = _inputs(job)
        x = first if measure == "ber_mst" else np.concatenate([first, second])
        start = _begin()
        tree = datagauge.minimum_spanning_tree(x, method=variant)
        stats["tree"] = {
            **_sample(*start),
            "total_length": tree.total_length,
            "n_searched": tree.n_searched,
        }
    return stats


def _memory_error(exc: BaseException) -> dict[str, Any]:
    return {
        "error": f"MemoryError: {str(exc)[:300]}",
        "memory_error": True,
        "peak_rss_mib": peak_rss() / MIB,
    }


def worker_dataeval(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """One DataEval 1.1.4 call (job["measure"]), timed, under an address-space cap."""
    limit = job.get("mem_limit_bytes")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import dataeval
    import torch
    from dataeval.config import set_max_processes
    from dataeval.core import ber_knn, ber_mst, divergence_fnn, divergence_mst
    from dataeval.shift import DriftMMD

    set_max_processes(job["processes"])
    torch.set_num_threads(job["processes"])
    torch.manual_seed(0)

    def mmd(a: Any, b: Any) -> Any:
        detector = DriftMMD(n_permutations=job["n_permutations"]).fit(a)
        return detector, detector.predict(b)

    calls: dict[str, Callable[[Any, Any], Any]] = {
        "ber_knn": lambda x, y: ber_knn(x, y, 1),
        "ber_mst": ber_mst,
        "div_fnn": divergence_fnn,
        "div_mst": divergence_mst,
        "mmd": mmd,
    }
    measure = job["measure"]
    try:
        res, stats = _measure(job, calls[measure])
    except MemoryError as exc:
        return _memory_error(exc)
    except RuntimeError as exc:  # torch's allocator: "DefaultCPUAllocator: can't allocate ..."
        if "alloc" in str(exc).lower():
            return _memory_error(exc)
        raise
    if measure.startswith("ber"):
        upper = float(res["upper_bound"])
        # ber_knn: upper = misclassified / n; ber_mst: upper = 2 deltas = mismatches / n.
        stats["values"] = {
            "upper": upper,
            "lower": float(res["lower_bound"]),
            "errors": round(upper * stats["n"]),
        }
    elif measure.startswith("div"):
        stats["values"] = {"divergence": float(res["divergence"]), "errors": int(res["errors"])}
    else:
        detector, output = res
        stats["values"] = {
            "p_value": float(output.details["p_val"]),
            "statistic": float(output.distance),
            "threshold": float(output.details["distance_threshold"]),
            "sigma": float(detector._kernel.sigma.reshape(-1)[0]),
            "drifted": bool(output.drifted),
        }
    stats["dataeval_version"] = dataeval.__version__
    stats["torch_threads"] = torch.get_num_threads()
    return stats


def worker_versions(job: dict[str, Any], out: Path) -> dict[str, Any]:
    from importlib import metadata

    found = {}
    for name in job["packages"]:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return {"python": platform.python_version(), "packages": found}


WORKERS = {
    "datagauge": worker_datagauge,
    "dataeval": worker_dataeval,
    "versions": worker_versions,
}


# ----------------------------------------------------------------------------- parent side


def run_worker(
    kind: str, job: dict[str, Any], tmp: Path, timeout: float, python: str = sys.executable
) -> dict[str, Any]:
    """Run one measurement in a fresh process; returns its stats or {"error": ...}."""
    job_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=tmp))
    write_text(job_dir / "job.json", json.dumps(job))
    cmd = [python, str(Path(__file__).resolve()), "--worker", kind, "--job-dir", str(job_dir)]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"    {kind}: timed out after {timeout:.0f} s", flush=True)
        return {
            "error": f"timed out after {timeout:.0f} s",
            "timed_out": True,
            "timeout_s": timeout,
        }
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        if proc.returncode < 0:
            tail.append(f"killed by signal {-proc.returncode} (out of memory?)")
        print(f"    {kind} FAILED (exit {proc.returncode}):\n      " + "\n      ".join(tail))
        return {"error": "\n".join(tail), "returncode": proc.returncode, "killed": True}
    stats = dict(json.loads((job_dir / "stats.json").read_text()))
    stats["loadavg_1min_before"] = load_before
    stats["process_wall_s"] = time.perf_counter() - t0
    return stats


def source_state() -> dict[str, Any]:
    """Git commit and locally modified files of datagauge's sources (the editable install)."""

    def git(*cmd: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(HERE.parent), *cmd], capture_output=True, text=True, check=False
        )
        return proc.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "commit_short": git("rev-parse", "--short", "HEAD"),
        "modified": git("status", "--porcelain", "--", "python", "cpp").splitlines(),
    }


def library_versions(tmp: Path, dataeval: bool) -> dict[str, Any]:
    out = {
        "datagauge_env": run_worker(
            "versions",
            {"packages": ["datagauge", "numpy", "scipy", "faiss-cpu", "numba"]},
            tmp,
            300,
        )
    }
    if dataeval:
        packages = ["dataeval", "torch", "numpy", "scikit-learn", "scipy", "numba"]
        out["dataeval_env"] = run_worker(
            "versions", {"packages": packages}, tmp, 300, python=str(VENV_PYTHON)
        )
    return out


def compare(measure: str, dg: dict[str, Any], de: dict[str, Any]) -> dict[str, Any]:
    """datagauge's values against DataEval's on one data set."""
    a, b = dg["values"], de["values"]
    if measure == "mmd":
        return {
            "statistic_abs_diff": abs(a["statistic"] - b["statistic"]),
            "statistic_rel_diff": abs(a["statistic"] - b["statistic"]) / abs(b["statistic"]),
            "sigma_rel_diff": abs(a["sigma"] - b["sigma"]) / b["sigma"],
            "same_decision": a["drifted"] == b["drifted"],
        }
    keys = ("upper", "lower", "errors") if measure.startswith("ber") else ("divergence", "errors")
    return {
        "equal": all(a[k] == b[k] for k in keys),
        "max_abs_diff": max(abs(a[k] - b[k]) for k in keys if k != "errors"),
        "errors_diff": a["errors"] - b["errors"],
    }


def one_size(
    n: int,
    args: argparse.Namespace,
    tmp: Path,
    dataeval: bool,
    rows: list[dict[str, Any]],
    save: Callable[[], None],
) -> None:
    """Append a row per measure at size n to `rows`, calling `save` after each."""
    print(f"[n={n:,}] generating", flush=True)
    paths = {}
    for kind, make in (("labelled", labelled_data), ("two", two_samples)):
        if any(MEASURES[m][0] == kind for m in args.measures):
            first, second = make(n)
            paths[kind] = (tmp / f"{kind}-{n}-0.npy", tmp / f"{kind}-{n}-1.npy")
            np.save(paths[kind][0], first)
            np.save(paths[kind][1], second)
            del first, second
    for measure in args.measures:
        kind, variants = MEASURES[measure]
        row: dict[str, Any] = {"measure": measure, "n": n, "datagauge": {}, "check": {}}
        if measure == "mmd" and n > args.mmd_max_n:
            row["skipped"] = f"n > --mmd-max-n ({args.mmd_max_n:,}): quadratic in n for both"
            rows.append(row)
            save()
            continue
        job = {
            "measure": measure,
            "first": str(paths[kind][0]),
            "second": str(paths[kind][1]),
            "repeat": n < args.no_repeat_from,
            "n_permutations": N_PERMUTATIONS,
            "tree_stats": n <= args.tree_stats_max_n,
            "processes": args.dataeval_processes,
            "mem_limit_bytes": int(args.peer_mem_gib * 2**30),
        }
        for variant in variants:
            print(f"[n={n:,}] {measure} datagauge {variant}", flush=True)
            stats = run_worker("datagauge", {**job, "variant": variant}, tmp, args.dg_timeout)
            row["datagauge"][variant] = stats
            print("    " + _line(stats), flush=True)
        if dataeval:
            print(f"[n={n:,}] {measure} DataEval", flush=True)
            row["dataeval"] = run_worker("dataeval", job, tmp, args.timeout, str(VENV_PYTHON))
            print("    " + _line(row["dataeval"]), flush=True)
            for variant, stats in row["datagauge"].items():
                if "error" not in stats and "error" not in row["dataeval"]:
                    row["check"][variant] = compare(measure, stats, row["dataeval"])
        rows.append(row)
        save()
    for pair in paths.values():
        for p in pair:
            p.unlink()


# ----------------------------------------------------------------------------- reporting


def _s(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _t(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "not run"
    if "error" in stats:
        if stats.get("timed_out"):
            return f"timed out ({stats['timeout_s']:.0f} s)"
        if stats.get("memory_error"):
            return "MemoryError"
        return "killed" if stats.get("returncode", 0) < 0 else "error"
    return _s(stats["time_s"])


def _ratio(peer: dict[str, Any] | None, ours: dict[str, Any] | None) -> str:
    """peer time / our time, wall (CPU); a lower bound for a peer that timed out."""
    if not peer or not ours or "error" in ours:
        return "-"
    if peer.get("timed_out"):
        return f"> {peer['timeout_s'] / ours['time_s']:.0f}x"
    if "error" in peer:
        return "-"
    return f"{peer['time_s'] / ours['time_s']:.1f}x ({peer['cpu_s'] / ours['cpu_s']:.1f}x)"


def _ratio_value(peer: dict[str, Any] | None, ours: dict[str, Any] | None) -> float | None:
    """peer / our wall time (the timeout for a peer that timed out); None when unknown."""
    if not peer or not ours or "error" in ours:
        return None
    if peer.get("timed_out"):
        return float(peer["timeout_s"] / ours["time_s"])
    if "error" in peer:
        return None
    return float(peer["time_s"] / ours["time_s"])


def _mem(stats: dict[str, Any] | None) -> str:
    if not stats or "peak_rss_mib" not in stats:
        return "-"
    return f"{stats['peak_rss_mib']:.0f}"


def _value(measure: str, stats: dict[str, Any] | None) -> str:
    if not stats or "values" not in stats:
        return "-"
    v = stats["values"]
    if measure.startswith("ber"):
        return f"{v['upper']:.4f} / {v['lower']:.4f} ({v['errors']:,})"
    if measure.startswith("div"):
        return f"{v['divergence']:.4f} ({v['errors']:,})"
    return f"{v['statistic']:.4e}, p {v['p_value']:.3g}, sigma {v['sigma']:.4g}"


def _same(measure: str, variant: str, check: dict[str, Any] | None) -> str:
    if check is None:
        return "-"
    if measure == "mmd":
        return (
            f"statistic diff {check['statistic_abs_diff']:.1e} "
            f"(rel. {check['statistic_rel_diff']:.1e}), "
            f"sigma {check['sigma_rel_diff']:.1e}"
            + ("" if check["same_decision"] else ", DIFFERENT decision")
        )
    if variant == "exact":
        d = check["errors_diff"]
        return "same" if check["equal"] else f"exact tree: errors {d:+,} vs DataEval's tree"
    if check["equal"]:
        return "yes"
    return f"NO (errors {check['errors_diff']:+,}, max diff {check['max_abs_diff']:.1e})"


def _line(stats: dict[str, Any]) -> str:
    if "error" in stats:
        return _t(stats) + ": " + stats["error"].splitlines()[-1][:200]
    text = f"{_s(stats['time_s'])} s, peak {stats['peak_rss_mib']:.0f} MiB, {stats['values']}"
    if "tree" in stats:
        tr = stats["tree"]
        text += f"; tree alone {_s(tr['time_s'])} s, length {tr['total_length']:.6g}"
        if tr["n_searched"] is not None:
            text += f", {tr['n_searched']:,} points searched"
    return text


def _targets(result: dict[str, Any]) -> list[str]:
    rows = [r for r in result["rows"] if r["n"] == TARGET_N and r["measure"] in TARGETS]
    if not rows:
        return []
    lines = [
        "",
        f"Targets of issue 13 at {TARGET_N:,} x {D} on 2 cores (DataEval wall time / datagauge's):",
        "",
        "| measure | datagauge call | ratio | target | met |",
        "|---|---|---:|---:|---|",
    ]
    for r in rows:
        target = TARGETS[r["measure"]]
        for variant, stats in r["datagauge"].items():
            ratio = _ratio_value(r.get("dataeval"), stats)
            met = "-" if ratio is None else ("yes" if ratio >= target else "**no**")
            if ratio is not None and r.get("dataeval", {}).get("timed_out"):
                met += " (DataEval timed out)"
            shown = "-" if ratio is None else f"{ratio:.1f}x"
            lines.append(
                f"| {NAMES[r['measure']]} | `{DG_CALLS[(r['measure'], variant)]}` | {shown} "
                f"| {target:.0f}x | {met} |"
            )
    return lines


def _trees(result: dict[str, Any]) -> list[str]:
    lines = []
    for r in result["rows"]:
        dg = r["datagauge"]
        if not r["measure"].endswith("mst") or any("tree" not in dg.get(v, {}) for v in dg):
            continue
        ex, kn = dg["exact"], dg["knn"]
        lines.append(
            f"| {NAMES[r['measure']]} | {r['n']:,} | {ex['tree']['total_length']:.6g} "
            f"| {kn['tree']['total_length']:.6g} "
            f"| {kn['tree']['total_length'] / ex['tree']['total_length'] - 1:.2e} "
            f"| {ex['values']['errors']:,} / {kn['values']['errors']:,} "
            f"| {_s(ex['tree']['time_s'])} / {_s(kn['tree']['time_s'])} "
            f"| {ex['tree']['n_searched']:,} |"
        )
    if not lines:
        return []
    return [
        "",
        "The two trees (untimed extra call of `minimum_spanning_tree` on the same data): total "
        'length of the exact Euclidean MST and of DataEval\'s 15-NN-graph tree (`tree="knn"`, '
        "equal to DataEval's when the values above match), the excess of the latter, the "
        "measure's error count from each, the time of each tree alone, and how many points the "
        "exact tree had to search beyond the k-NN lists.",
        "",
        "| measure | n | exact length | DataEval-tree length | excess | errors exact / knn "
        "| tree s exact / knn | points searched |",
        "|---|---:|---:|---:|---:|---|---|---:|",
        *lines,
    ]


def markdown(result: dict[str, Any]) -> str:
    m, src = result["machine"], result["source"]
    lines = [
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs ({m['logical_cpus']} logical), "
        f"{m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}; load average at start "
        f"{m['load_1min_at_start']}. Commit {src['commit_short']}"
        + (" (with local changes)" if src["modified"] else "")
        + f"; run {result['started']}.",
    ]
    for env, v in result["versions"].items():
        if "packages" in v:
            pk = ", ".join(f"{k} {x}" for k, x in v["packages"].items())
            lines.append(f"{env}: {pk}.")
    args = result["args"]
    lines += [
        "",
        f"Data: {D}-d, a {CLASSES}-component Gaussian mixture in {LATENT} latent dimensions "
        f"(means spread {SPREAD}) mapped linearly to {D}, plus noise {NOISE} per feature; "
        f"BER: labels = component; divergence and MMD: two samples of n/2, the second from "
        f"the mixture with its means shifted by {SHIFT} and its weights perturbed. Times in "
        "seconds of the whole call: fastest of up to 5 calls below "
        f"{args['no_repeat_from']:,}, one call from there, after an untimed warm-up on "
        f"{WARMUP_ROWS:,} rows. datagauge on all usable CPUs; DataEval with "
        f"max_processes={args['dataeval_processes']} and as many torch threads, a "
        f"{args['timeout']:.0f} s timeout and a {args['peer_mem_gib']:.0f} GiB address-space cap. "
        f"MMD: {N_PERMUTATIONS} permutations on both sides (DataEval's default), seed 0 "
        "(datagauge: NumPy's permutations; DataEval: torch's, so the p-values differ by "
        "permutation noise). Ratio: DataEval's wall time over datagauge's (CPU seconds in "
        "parentheses); '> Nx': DataEval timed out. Values: BER upper / lower (error count); "
        "divergence (error count); MMD squared statistic, p-value, bandwidth. Peak RSS in MiB "
        "of the measuring process (includes the data).",
        "",
        "| measure | n | datagauge call | datagauge s | DataEval s | ratio | datagauge value "
        "| DataEval value | same values | peak RSS datagauge / DataEval |",
        "|---|---:|---|---:|---:|---:|---|---|---|---|",
    ]
    for r in result["rows"]:
        name = NAMES[r["measure"]]
        if "skipped" in r:
            lines.append(f"| {name} | {r['n']:,} | not run: {r['skipped']} | | | | | | | |")
            continue
        de = r.get("dataeval")
        for variant, stats in r["datagauge"].items():
            lines.append(
                f"| {name} | {r['n']:,} | `{DG_CALLS[(r['measure'], variant)]}` | {_t(stats)} "
                f"| {_t(de)} | {_ratio(de, stats)} | {_value(r['measure'], stats)} "
                f"| {_value(r['measure'], de)} "
                f"| {_same(r['measure'], variant, r['check'].get(variant))} "
                f"| {_mem(stats)} / {_mem(de)} |"
            )
    lines += _targets(result)
    lines += _trees(result)
    lines += ["", noise_note(result)]
    return "\n".join(lines)


def noise_note(result: dict[str, Any]) -> str:
    """A sentence on CPU time other processes (and the hypervisor) took during measurements."""
    worst, noisy = 0.0, []
    for r in result["rows"]:
        cases = [(f"{r['measure']} {r['n']} datagauge {v}", s) for v, s in r["datagauge"].items()]
        cases.append((f"{r['measure']} {r['n']} DataEval", r.get("dataeval")))
        for name, s in cases:
            if not s or "error" in s:
                continue
            share = (s["other_cpu_s"] + s["steal_s"]) / max(s["time_s"], 1e-9)
            worst = max(worst, share)
            if share > 0.1 and s["time_s"] > 0.5:
                noisy.append(f"{name} ({share:.2f})")
    text = (
        "Noise check: CPU time other processes used (plus hypervisor steal) during the fastest "
        f"call, as a share of one CPU: at most {worst:.2f}."
    )
    if noisy:
        text += " Above 0.1 (numbers may be inflated): " + ", ".join(noisy) + "."
    return text


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10k only (smoke test)")
    p.add_argument("--sizes", type=int, nargs="+", help="n (default 10k, 100k, 1M)")
    p.add_argument("--measures", nargs="+", choices=list(MEASURES), default=list(MEASURES))
    p.add_argument("--mmd-max-n", type=int, default=100_000, help="largest n of the MMD test")
    p.add_argument("--no-repeat-from", type=int, default=1_000_000, help="one call from this n")
    p.add_argument(
        "--tree-stats-max-n", type=int, default=100_000, help="largest n of the tree extras"
    )
    p.add_argument("--no-dataeval", action="store_true")
    p.add_argument("--dataeval-processes", type=int, default=2)
    p.add_argument("--timeout", type=float, default=1200.0, help="per DataEval worker, s")
    p.add_argument("--dg-timeout", type=float, default=3600.0, help="per datagauge worker, s")
    p.add_argument("--peer-mem-gib", type=float, default=16.0, help="DataEval address-space cap")
    p.add_argument("--out", type=Path, help="JSON result path")
    p.add_argument("--render", type=Path, help="print the tables of a saved JSON result and exit")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--job-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = [10_000] if args.quick else [10_000, 100_000, 1_000_000]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_job(WORKERS, args.worker, args.job_dir)
        return 0
    if args.render:
        print(markdown(json.loads(args.render.read_text())))
        return 0
    dataeval = not args.no_dataeval
    if dataeval and not VENV_PYTHON.exists():
        print(
            f"DataEval virtualenv not found at {VENV_PYTHON}; skipping DataEval. Create it "
            f"from the repository root with:\n\n{SETUP_COMMANDS}\n",
            flush=True,
        )
        dataeval = False
    started = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"compare-{'quick-' if args.quick else ''}{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with temp_dir("bench-compare-") as tmp:
        result: dict[str, Any] = {
            "benchmark": "compare",
            "started": started,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": machine_info(),
            "source": source_state(),
            "versions": library_versions(tmp, dataeval),
            "rows": [],
        }
        print(json.dumps(result["machine"]), flush=True)

        def save() -> None:  # after every measure, so an interrupted run keeps what it measured
            write_text(out, json.dumps(result, indent=1))

        for n in args.sizes:
            one_size(n, args, tmp, dataeval, result["rows"], save)
        result["finished"] = time.strftime("%Y%m%d-%H%M%S")
        result["loadavg_end"] = os.getloadavg()
        write_text(out, json.dumps(result, indent=1))
    table = markdown(result)
    write_text(out.with_suffix(".md"), table + "\n")
    print("\n" + table + f"\n\nWrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
