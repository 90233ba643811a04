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
import contextlib
import hashlib
import json
import math
import os
import select
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from _harness import machine_info, write_text

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
    """Runs in DataEval's virtualenv: fits curves one at a time, one JSON line in and one out
    (the driver times each fit out on its own, see :func:`dataeval_fits`)."""
    from dataeval.performance._output import calc_params, inv_project_steps, project_steps

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        spec = json.loads(line)
        steps = np.asarray(spec["steps"], dtype=np.int64)
        mean = np.asarray(spec["values"], dtype=np.float64).mean(axis=0)
        np.random.seed(0)  # noqa: NPY002 - DataEval's basinhopping draws from the global RNG
        t0, c0 = time.perf_counter(), time.process_time()
        params = calc_params(1 - mean, steps, spec["niter"], True)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        err = (1 - mean) - (params[0] * steps.astype(float) ** -params[1] + params[2])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inv = inv_project_steps(params, np.asarray(spec["targets"], dtype=np.float64))
        out = {
            "params": params.tolist(),
            "loss": float(np.sum(err**2)),
            "projection": project_steps(params, np.asarray(spec["sizes"], float)).tolist(),
            "inv_project": np.asarray(inv).astype(np.int64).tolist(),
            "seconds": elapsed,
            "cpu_seconds": cpu,
        }
        print(json.dumps(out), flush=True)


class _DataEvalWorker:
    """DataEval's interpreter running :func:`worker_dataeval`, restarted after a timeout."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [str(VENV_PYTHON), str(Path(__file__).resolve()), "--worker", "dataeval"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._read(proc, None) is None:
            raise RuntimeError(f"DataEval's worker ({VENV_PYTHON}) exited before it was ready.")
        return proc

    @staticmethod
    def _read(proc: subprocess.Popen[str], timeout: float | None) -> dict[str, Any] | None:
        """The worker's next line, or None when it exited or `timeout` seconds passed."""
        stdout = proc.stdout
        if stdout is None:
            raise RuntimeError("DataEval's worker was started without a stdout pipe.")
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            return None
        line = stdout.readline()
        return json.loads(line) if line else None

    def fit(self, spec: dict[str, Any], timeout: float | None) -> dict[str, Any] | None:
        """DataEval's fit of one curve, or None when it ran past `timeout` seconds (the
        worker is then killed; the next fit starts a new one)."""
        if self.proc is None:
            self.proc = self._start()
        stdin = self.proc.stdin
        if stdin is None:
            raise RuntimeError("DataEval's worker was started without a stdin pipe.")
        stdin.write(json.dumps({**spec, "niter": NITER}) + "\n")
        stdin.flush()
        out = self._read(self.proc, timeout)
        if out is None:
            self.close()
        return out

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def dataeval_fits(
    curves: list[dict[str, Any]],
    *,
    timeout: float | None = None,
    cache: Path | None = None,
    cached_only: bool = False,
) -> list[dict[str, Any] | None] | None:
    """DataEval's fit of each curve (``steps``, ``values``, ``sizes``, ``targets``), one at a
    time in its own interpreter; None for a fit that ran past `timeout` seconds. With `cache`,
    finished fits and timeouts are kept there by their inputs and not repeated (a timeout is
    retried only with a longer `timeout`). None when DataEval is not installed. With
    `cached_only`, only the fits in `cache` (None for the others; DataEval is not run)."""
    if cached_only:
        store = json.loads(cache.read_text()).get("fits", {}) if cache and cache.exists() else {}
        keys = [
            hashlib.sha256(
                json.dumps(
                    [{k: c[k] for k in ("steps", "values", "sizes", "targets")}, NITER]
                ).encode()
            ).hexdigest()
            for c in curves
        ]
        hits = [store.get(key) for key in keys]
        return [None if h is None or "timed_out_after" in h else h for h in hits]
    if not VENV_PYTHON.exists():
        print(
            f"DataEval skipped: no interpreter at {VENV_PYTHON}. Set it up with\n"
            f"{SETUP_COMMANDS}\nor point $DATAEVAL_PYTHON at one.",
            file=sys.stderr,
        )
        return None
    from datagauge._atomic import save_json

    store: dict[str, Any] = {}
    if cache is not None and cache.exists():
        store = json.loads(cache.read_text()).get("fits", {})
    worker = _DataEvalWorker()
    out: list[dict[str, Any] | None] = []
    try:
        for i, curve in enumerate(curves):
            spec = {k: curve[k] for k in ("steps", "values", "sizes", "targets")}
            key = hashlib.sha256(json.dumps([spec, NITER]).encode()).hexdigest()
            hit = store.get(key)
            limit = math.inf if timeout is None else timeout
            if hit is None or (hit.get("timed_out_after", math.inf) < limit):
                t0 = time.perf_counter()
                fit = worker.fit(spec, timeout)
                hit = fit if fit is not None else {"timed_out_after": timeout}
                store[key] = hit
                print(
                    f"DataEval fit {i + 1}/{len(curves)}: "
                    f"{'timed out' if fit is None else 'done'} after "
                    f"{time.perf_counter() - t0:.1f} s",
                    file=sys.stderr,
                )
                if cache is not None:
                    cache.parent.mkdir(exist_ok=True)
                    save_json(cache, {"dataeval": "1.1.4", "niter": NITER, "fits": store})
            out.append(None if "timed_out_after" in hit else hit)
    finally:
        worker.close()
    return out


def datagauge_fits(curves: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    import datagauge as dg

    t0 = time.perf_counter()  # first call: Numba compiles (or loads its cache)
    dg.fit_learning_curve(curves[0]["steps"], curves[0]["values"], model="pow3")
    first = time.perf_counter() - t0
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.DatagaugeWarning)
        for curve in curves:
            times, cpu_times, boot_times = [], [], []
            for _ in range(REPEATS):
                t0, c0 = time.perf_counter(), time.process_time()
                fit = dg.fit_learning_curve(
                    curve["steps"], curve["values"], model="pow3", n_bootstrap=0
                )
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
            for _ in range(3):
                t0 = time.perf_counter()
                dg.fit_learning_curve(curve["steps"], curve["values"], model="pow3")
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


# ----------------------------------------------------------------------------- back-test

CUTOFFS = (0.10, 0.25)
FAMILIES = ("pow3", "pow4", "mmf4", "auto")
MIN_GAIN = 0.01  # size measures only where the learner still gains this much after the cut-off
LEVEL = 0.8
# The range's calibration grid: (RANGE_TAU, RANGE_FLOOR) pairs, keyed "tau/floor".
TAUS = tuple(
    f"{round(0.05 * i, 2)}/{round(0.1 * j, 1)}" for i in range(4, 21) for j in range(0, 11)
)
# ... and of the forecast-centred range (FORECAST_RANGE_TAU, FORECAST_RANGE_FLOOR): the same
# grid reaching down to tau 0 and up to floor 1.2 (its sizes are nearer the truth).
FORECAST_TAUS = tuple(
    f"{round(0.05 * i, 2)}/{round(0.1 * j, 1)}" for i in range(0, 21) for j in range(0, 13)
)


def _range_key(tau: float, floor: float) -> str:
    return f"{round(tau, 2)}/{round(floor, 1)}"


def true_size(steps: np.ndarray, mean: np.ndarray, start: int, target: float) -> float:
    """First size after index `start` where the measured mean curve reaches `target`
    (log-linear between the two steps around the crossing)."""
    for j in range(start + 1, steps.size):
        if mean[j] >= target:
            lo, hi = mean[j - 1], mean[j]
            frac = 1.0 if hi <= lo else min(max((target - lo) / (hi - lo), 0.0), 1.0)
            a, b = math.log(steps[j - 1]), math.log(steps[j])
            return math.exp(a + frac * (b - a))
    return math.inf


def backtest_cases(curves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each curve cut at each cut-off: the points fitted and what the learner really reached."""
    import _suff_curves
    import datagauge as dg

    cases = []
    for curve in curves:
        steps = np.asarray(curve["steps"], dtype=np.float64)
        values = np.asarray(curve["values"], dtype=np.float64)
        mean = values.mean(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.DatagaugeWarning)
            m_full = dg.fit_learning_curve(steps, values, model="pow3", n_bootstrap=0).m
        for cut in CUTOFFS:
            k = int(np.searchsorted(steps, cut * steps[-1], side="right"))
            if k < 5:
                continue
            a_c, a_n = float(mean[k - 1]), float(mean[-1])
            gain = a_n - a_c
            targets = [a_c + 0.5 * gain, a_c + 0.95 * gain]
            truth = [true_size(steps, mean, k - 1, t) for t in targets]
            cases.append(
                {
                    "dataset": curve["dataset"],
                    "group": "tabular" if curve["dataset"] in _suff_curves.TABULAR else "image",
                    "learner": curve["learner"],
                    "m_full": m_full,
                    "cutoff": cut,
                    "steps": steps[:k].tolist(),
                    "values": values[:, :k].tolist(),
                    "largest": float(steps[-1]),
                    "acc_largest": a_n,
                    "acc_cut": a_c,
                    "gain": gain,
                    "targets": targets,
                    "true_sizes": truth,
                    "sized": bool(gain >= MIN_GAIN),
                }
            )
    return cases


def size_ranges(fit: Any, targets: np.ndarray, method: str) -> dict[str, list[list[int]]]:
    """`fit.size_needed(targets, method=method)`'s 80% range for every calibration pair of
    the grid (TAUS for "project", FORECAST_TAUS for "forecast"), keyed "tau/floor"."""
    import datagauge as dg

    mod = dg.sufficiency
    names, keys = {
        "project": (("RANGE_TAU", "RANGE_FLOOR"), TAUS),
        "forecast": (("FORECAST_RANGE_TAU", "FORECAST_RANGE_FLOOR"), FORECAST_TAUS),
    }[method]
    shipped = [getattr(mod, n) for n in names]
    ranges = {}
    try:
        for key in keys:
            for n, v in zip(names, key.split("/"), strict=True):
                setattr(mod, n, float(v))
            est = fit.size_needed(targets, level=LEVEL, method=method)
            ranges[key] = [est.lower.tolist(), est.upper.tolist()]
    finally:
        for n, v in zip(names, shipped, strict=True):
            setattr(mod, n, v)
    return ranges


def fit_case(case: dict[str, Any], model: str) -> dict[str, Any]:
    """Fit one cut curve with datagauge: the projected accuracy, sizes and ranges (centred on
    `inv_project`, ``size_needed(method="project")``)."""
    import datagauge as dg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.DatagaugeWarning)
        fit = dg.fit_learning_curve(case["steps"], case["values"], model=model)
        targets = np.clip(case["targets"], 0.0, 1.0)
        return {
            "model": fit.model,
            "acc_largest": float(fit.project(case["largest"])[0]),
            "sizes": fit.inv_project(targets).tolist(),
            "ranges": size_ranges(fit, targets, "project"),
        }


# The forecast's fits measured side by side, each "space/power" (FORECAST_SPACE,
# FORECAST_POWER); one is chosen leave one dataset out by _forecast_score, and its range's
# FORECAST_RANGE_TAU / FORECAST_RANGE_FLOOR after it, in the same fold.
FORECAST_FITS = tuple(f"{sp}/{p}" for sp in ("log", "linear") for p in (1.5, 2.0, 2.5))
# The forecast before 2026-12-01 (linear space, power 2) and its range's constants then.
FORECAST_BEFORE = "linear/2.0"
FORECAST_BEFORE_TAU = "0.5/0.2"


@contextlib.contextmanager
def forecast_settings(key: str | None) -> Iterator[None]:
    """The library's FORECAST_SPACE and FORECAST_POWER set to `key` ("space/power", None: as
    shipped) inside the block, restored after it."""
    import datagauge as dg

    mod = dg.sufficiency
    shipped = (mod.FORECAST_SPACE, mod.FORECAST_POWER)
    try:
        if key is not None:
            space, power = key.split("/")
            mod.FORECAST_SPACE, mod.FORECAST_POWER = space, float(power)
        yield
    finally:
        mod.FORECAST_SPACE, mod.FORECAST_POWER = shipped


def forecast_case(case: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """The late-weighted fit of `LearningCurve.forecast` (as shipped, or with the space and
    power of `key`): its accuracy, sizes and the ranges of ``size_needed`` (method
    "forecast", the default) around them."""
    import datagauge as dg

    with warnings.catch_warnings(), forecast_settings(key):
        warnings.simplefilter("ignore", dg.DatagaugeWarning)
        fit = dg.fit_learning_curve(case["steps"], case["values"], model="pow3")
        targets = np.clip(case["targets"], 0.0, 1.0)
        sizes = fit.forecast_size(targets)
        est = fit.size_needed(targets, level=LEVEL, method="forecast")
        if est.size.tolist() != sizes.tolist():
            raise RuntimeError('size_needed(method="forecast") no longer gives forecast_size.')
        return {
            "acc_largest": float(fit.forecast(case["largest"])[0]),
            "sizes": sizes.tolist(),
            "ranges": size_ranges(fit, targets, "forecast"),
        }


def trend_case(case: dict[str, Any]) -> dict[str, Any]:
    """``LearningCurve.trend`` (the power law through the last measured sizes): its accuracy,
    the sizes of ``trend_size`` and the range of ``size_needed()`` (method "trend", the
    default) with the shipped constants, keyed "shipped"."""
    import datagauge as dg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.DatagaugeWarning)
        fit = dg.fit_learning_curve(case["steps"], case["values"], model="pow3")
        targets = np.clip(case["targets"], 0.0, 1.0)
        est = fit.size_needed(targets, level=LEVEL)
        if est.method != "trend" or est.size.tolist() != fit.trend_size(targets).tolist():
            raise RuntimeError("size_needed no longer answers with trend_size by default.")
        return {
            "acc_largest": float(fit.trend(case["largest"])[0]),
            "sizes": est.size.tolist(),
            "ranges": {"shipped": [est.lower.tolist(), est.upper.tolist()]},
        }


# Accuracy-only alternatives to one pow3 fit, tried for the accuracy target (the issue's
# ideas and CVPR 2022 "How Much More Data Do I Need?"); each gives the accuracy at the
# largest size only, and one is chosen leave-one-dataset-out like the family.
ALTERNATIVES = (
    "pow3",
    "pow3-late",
    "family-mean",
    "cv-weighted",
    "bootstrap-median",
    "pooled-bootstrap-median",
    "bootstrap+cv",
    "pow3-prior",
)
# "pow3-prior": pow3 with a log-normal prior on the exponent, ln m ~ N(ln m0, width**2), at
# its maximum a posteriori under Gaussian noise of unknown variance (profile likelihood over
# a grid of m, c and c0 exact for each m). m0 is the median exponent of pow3 fitted to the
# whole curves of the design datasets; the width (inf: no prior, plain pow3 on the grid) is
# chosen on them too. Both are chosen leave one dataset out, like everything else here.
PRIOR_WIDTHS = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, math.inf)
PRIOR_GRID = 4000  # exponents, geometric from 1e-3 to pow3's own upper end


def pow3_profile(steps: np.ndarray, values: np.ndarray, big: float) -> dict[str, np.ndarray]:
    """pow3 least squares on a grid of exponents: ln m, the negative profile log-likelihood
    ``k/2 ln SSE(m)`` (c, c0 exact for each m, 0 <= c0 <= 1) and the projection at `big`."""
    err = 1.0 - values.mean(axis=0)
    k = steps.size
    m = np.geomspace(1e-3, 40.0 / math.log(steps[1] / steps[0]), PRIOR_GRID)
    # (n / n_1)**-m: the first column is 1, so nothing underflows where it matters
    x = (steps[None, :] / steps[0]) ** -m[:, None]
    xc = x - x.mean(axis=1, keepdims=True)
    c = (xc @ (err - err.mean())) / (xc**2).sum(axis=1)
    c0 = err.mean() - c * x.mean(axis=1)
    # outside [0, 1] the constrained optimum is on the nearer bound (convex in c0)
    c0b = np.clip(c0, 0.0, 1.0)
    c = np.where(c0b != c0, (x @ err - c0b * x.sum(axis=1)) / (x**2).sum(axis=1), c)
    sse = ((c[:, None] * x + c0b[:, None] - err) ** 2).sum(axis=1)
    return {
        "ln_m": np.log(m),
        "nll": 0.5 * k * np.log(np.maximum(sse, 1e-300)),
        "at_largest": 1.0 - np.clip(c * (big / steps[0]) ** -m + c0b, 0.0, 1.0),
    }


def prior_projection(profile: dict[str, np.ndarray], m0: float, width: float) -> float:
    """The pow3-prior's accuracy at the largest size (its MAP exponent on the grid)."""
    obj = profile["nll"]
    if math.isfinite(width):
        obj = obj + (profile["ln_m"] - math.log(m0)) ** 2 / (2.0 * width**2)
    return float(profile["at_largest"][int(np.argmin(obj))])


def alternatives(case: dict[str, Any]) -> dict[str, float]:
    """Each alternative's accuracy at the largest size, from the cut curve."""
    import datagauge as dg

    steps = np.asarray(case["steps"], dtype=np.float64)
    values = np.asarray(case["values"], dtype=np.float64)
    big = case["largest"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {m: dg.fit_learning_curve(steps, values, model=m) for m in dg.sufficiency.MODELS}
        at = {m: float(f.project(big)[0]) for m, f in fits.items()}
        late = float(fits["pow3"].forecast(big)[0])  # pow3 with weights (n / n_last)**2
        # extrapolation CV as "auto" scores it: fit the first points, predict the later ones
        k = steps.size
        cv = {}
        for m in dg.sufficiency.MODELS:
            total = 0.0
            for j in sorted({max(4, math.ceil(0.5 * k)), max(4, math.ceil(0.7 * k))}):
                if j < k:
                    part = dg.fit_learning_curve(steps[:j], values[:, :j], model=m, n_bootstrap=0)
                    total += float(np.mean((part.project(steps[j:]) - values[:, j:].mean(0)) ** 2))
            cv[m] = total
    w = np.array([1.0 / (cv[m] + 1e-6) for m in dg.sufficiency.MODELS])
    boot_median = float(np.median(_bootstrap_projections(fits["pow3"], big)))
    cv_weighted = float(w @ [at[m] for m in dg.sufficiency.MODELS] / w.sum())
    pooled = np.concatenate([_bootstrap_projections(f, big) for f in fits.values()])
    return {
        "pow3": at["pow3"],
        "pow3-late": late,
        "family-mean": float(np.mean(list(at.values()))),
        "cv-weighted": cv_weighted,
        "bootstrap-median": boot_median,
        "pooled-bootstrap-median": float(np.median(pooled)),
        "bootstrap+cv": 0.5 * (boot_median + cv_weighted),
    }


def _bootstrap_projections(fit: Any, big: float) -> np.ndarray:
    """Accuracy at `big` of each bootstrap fit of a curve (its own fit without a bootstrap)."""
    from datagauge._kernels.families import error_at
    from datagauge.sufficiency import _FAMILY

    rows = fit.bootstrap if fit.bootstrap is not None else np.array([fit.params])
    logn = np.array([math.log(big)])
    code = _FAMILY[fit.model]
    out = [error_at(code, *[*map(float, r), 0.0][:4], logn)[0] for r in rows]
    return np.asarray(1.0 - np.clip(out, 0.0, 1.0))


def _prior_choice(cases: list[dict[str, Any]], score: Any) -> tuple[float, float]:
    """(m0, width) of pow3-prior chosen on `cases`: m0 the median whole-curve exponent of
    their curves, the width the one with the best `score`."""
    by_curve = {(c["dataset"], c["learner"]): c["m_full"] for c in cases}
    m0 = float(np.median(list(by_curve.values())))
    width = min(
        PRIOR_WIDTHS, key=lambda w: score(cases, lambda c: prior_projection(c["prior"], m0, w))
    )
    return m0, width


# The forecast's weights (n / n_max)**power: powers tried, and blends with pow3's projection
# (the forecast's share of the accuracy), each chosen leave one dataset out.
FORECAST_POWERS = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
FORECAST_BLENDS = (0.25, 0.5, 0.75, 1.0)
ACCURACY_TARGETS = {0.10: 0.0175, 0.25: 0.0105}  # the issue's, per cut-off


def forecast_powers(case: dict[str, Any]) -> dict[float, float]:
    """The weighted fit's accuracy at the largest size for each power of its weights."""
    from datagauge.sufficiency import _weighted_pow3

    steps = np.asarray(case["steps"], dtype=np.float64)
    err = 1.0 - np.asarray(case["values"], dtype=np.float64).mean(axis=0)
    out = {}
    for power in FORECAST_POWERS:
        c, m, c0 = _weighted_pow3(steps, err, steps**power, 0.0, 1.0)
        e = c0 + c * (case["largest"] / steps.min()) ** -m
        out[power] = 1.0 - min(max(e, 0.0), 1.0)
    return out


# Other ideas for the forecast's accuracy (issue #15), each on top of the shipped forecast
# and each with its own grid, the identity included (scale 1, no variance term, share 0), so
# that a fold can keep the forecast as it is: a scale on the gain the forecast expects past
# the last measured size (CVPR 2022 "How Much More Data Do I Need?" corrects its estimate by
# a factor); inverse-variance weights (the run spread of each measured mean, relative to its
# error, with a floor) times the late weights; a local power law through the last 3 or 4
# measured means (a line in log-log, no asymptote) blended with the forecast; and the median
# of the forecast, that local power law and pow3's projection.
IDEA_SCALES = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1)
IDEA_VARIANCE_FLOORS = (math.inf, 0.05, 0.02, 0.01)  # inf: no variance term
IDEA_LOCAL = tuple(f"{k}/{a}" for k in (3, 4) for a in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5))


def forecast_ideas(case: dict[str, Any], pow3_acc: float) -> dict[str, dict[str, float]]:
    """The accuracy at the largest size of each idea on each point of its grid."""
    import datagauge as dg
    from datagauge.sufficiency import FORECAST_POWER, _log_pow3_many

    steps = np.asarray(case["steps"], dtype=np.float64)
    values = np.asarray(case["values"], dtype=np.float64)
    big = case["largest"]
    err = 1.0 - values.mean(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.DatagaugeWarning)
        fit = dg.fit_learning_curve(steps, values, model="pow3", n_bootstrap=0)
        at_big, at_last = (float(v) for v in fit.forecast([big, steps[-1]]))
    out: dict[str, dict[str, float]] = {
        "scale": {str(s): at_last + s * (at_big - at_last) for s in IDEA_SCALES}
    }
    # the spread of each mean over runs, relative to its error (the log error's noise)
    rel_se = values.std(axis=0, ddof=1) / math.sqrt(values.shape[0]) / np.maximum(err, 1e-12)
    late = steps**FORECAST_POWER
    out["variance"] = {}
    for floor in IDEA_VARIANCE_FLOORS:
        if not math.isfinite(floor) or not (err > 0).all():
            out["variance"][str(floor)] = at_big
            continue
        c, m, c0 = _log_pow3_many(steps, err, late / (rel_se**2 + floor**2))[0]
        out["variance"][str(floor)] = 1.0 - min(max(c0 + c * (big / steps[0]) ** -m, 0.0), 1.0)
    local = {}
    for k in (3, 4):
        x, y = np.log(steps[-k:]), np.log(np.maximum(err[-k:], 1e-6))
        slope, icpt = np.polyfit(x, y, 1)
        local[k] = 1.0 - min(max(math.exp(icpt + min(slope, 0.0) * math.log(big)), 0.0), 1.0)
    out["local"] = {}
    for key in IDEA_LOCAL:
        k, share = key.split("/")
        out["local"][key] = (1.0 - float(share)) * at_big + float(share) * local[int(k)]
    out["median"] = {"3": float(np.median([at_big, local[4], pow3_acc]))}
    return out


def forecast_ideas_table(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Median abs error of the accuracy at the largest size for every idea and grid point
    (on all curves), and each idea held out: the grid point with the smallest sum over both
    cut-offs of the median error divided by the issue's target on the other datasets."""

    def med(sub: list[dict[str, Any]], pick: Any) -> float:
        return float(np.median([abs(pick(c) - c["acc_largest"]) for c in sub]))

    def score(sub: list[dict[str, Any]], idea: str, key: str) -> float:
        return sum(
            med([c for c in sub if c["cutoff"] == t], lambda c: c["ideas"][idea][key]) / v
            for t, v in ACCURACY_TARGETS.items()
        )

    datasets = sorted({c["dataset"] for c in cases})
    ideas = cases[0]["ideas"]
    folds = {
        idea: {
            held: min(
                grid, key=lambda k, i=idea: score([c for c in cases if c["dataset"] != held], i, k)
            )
            for held in datasets
        }
        for idea, grid in ideas.items()
    }
    rows: dict[str, dict[str, float]] = {}
    for idea, grid in ideas.items():
        for key in grid:
            rows[f"{idea} {key}"] = {
                str(cut): med(
                    [c for c in cases if c["cutoff"] == cut],
                    lambda c, i=idea, k=key: c["ideas"][i][k],
                )
                for cut in CUTOFFS
            }
        rows[f"{idea}, held out"] = {
            str(cut): med(
                [c for c in cases if c["cutoff"] == cut],
                lambda c, i=idea: c["ideas"][i][folds[i][c["dataset"]]],
            )
            for cut in CUTOFFS
        }
    return {"folds": folds, "rows": rows}


def forecast_power_table(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Median abs error of the accuracy at the largest size for each power of the forecast's
    weights (on all curves), and held out: the power, or the (power, blend with pow3's
    projection), with the smallest sum over both cut-offs of the median error divided by the
    issue's target on the other datasets, judged on the held-out one."""

    def pred(c: dict[str, Any], key: tuple[float, float]) -> float:
        power, share = key
        return share * c["powers"][power] + (1.0 - share) * c["pow3"]["acc_largest"]

    def med(sub: list[dict[str, Any]], key: Any) -> float:
        return float(np.median([abs(pred(c, key(c)) - c["acc_largest"]) for c in sub]))

    def score(sub: list[dict[str, Any]], key: tuple[float, float]) -> float:
        return sum(
            med([c for c in sub if c["cutoff"] == t], lambda c: key) / v
            for t, v in ACCURACY_TARGETS.items()
        )

    grids = {
        "power": [(p, 1.0) for p in FORECAST_POWERS],
        "power and blend": [(p, a) for p in FORECAST_POWERS for a in FORECAST_BLENDS],
    }
    datasets = sorted({c["dataset"] for c in cases})
    folds = {
        name: {
            held: min(keys, key=lambda k: score([c for c in cases if c["dataset"] != held], k))
            for held in datasets
        }
        for name, keys in grids.items()
    }
    rows = {}
    for cut in CUTOFFS:
        here = [c for c in cases if c["cutoff"] == cut]
        row = {str(p): med(here, lambda c, p=p: (p, 1.0)) for p in FORECAST_POWERS}
        for name, chosen in folds.items():
            row[f"{name}, held out"] = med(here, lambda c, chosen=chosen: chosen[c["dataset"]])
        rows[str(cut)] = row
    return {
        "folds": {k: {h: list(v) for h, v in f.items()} for k, f in folds.items()},
        "rows": rows,
    }


def alternatives_table(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Median abs error of each alternative per cut-off (and per dataset group), and the
    leave-one-dataset-out pick (the alternative with the smallest sum over both cut-offs of
    the median error divided by the issue's target, on the other datasets); pow3-prior's
    m0 and width are chosen the same way, inside each fold."""
    targets = ACCURACY_TARGETS

    def med_of(sub: list[dict[str, Any]], pred: Any) -> float:
        return float(np.median([abs(pred(c) - c["acc_largest"]) for c in sub]))

    def score(sub: list[dict[str, Any]], pred: Any) -> float:
        return sum(
            med_of([c for c in sub if c["cutoff"] == t], pred) / v for t, v in targets.items()
        )

    def predictor(alt: str, prior: tuple[float, float]) -> Any:
        if alt == "pow3-prior":
            return lambda c: prior_projection(c["prior"], *prior)
        return lambda c: c["alt"][alt]

    folds, priors = {}, {}
    for held in sorted({c["dataset"] for c in cases}):
        design = [c for c in cases if c["dataset"] != held]
        priors[held] = _prior_choice(design, score)
        folds[held] = min(ALTERNATIVES, key=lambda a: score(design, predictor(a, priors[held])))
    everywhere = _prior_choice(cases, score)
    rows = {}
    for cut in CUTOFFS:
        for group in ("all", *sorted({c["group"] for c in cases})):
            here = [c for c in cases if c["cutoff"] == cut and group in ("all", c["group"])]
            if not here:
                continue
            row = {alt: med_of(here, predictor(alt, everywhere)) for alt in ALTERNATIVES}
            row["pow3-prior held out"] = med_of(
                here, lambda c: prior_projection(c["prior"], *priors[c["dataset"]])
            )
            row["held-out choice"] = med_of(
                here, lambda c: predictor(folds[c["dataset"]], priors[c["dataset"]])(c)
            )
            row["curves"] = len(here)
            rows[f"{cut}/{group}"] = row
    return {
        "folds": folds,
        "prior_folds": {k: [round(v[0], 3), v[1]] for k, v in priors.items()},
        "prior_everywhere": [round(everywhere[0], 3), everywhere[1]],
        "rows": rows,
    }


def _within2(pred: float, true: float) -> bool:
    return pred > 0 and math.isfinite(true) and true / 2 <= pred <= 2 * true


def _covered(lower: int, upper: int, true: float) -> bool:
    hi = math.inf if upper < 0 else upper
    return lower > 0 and lower <= true <= hi


def _best_range(cases: list[dict[str, Any]], family: str) -> str:
    """The (tau, floor) key whose coverage is nearest LEVEL at both cut-offs: RANGE_TAU and
    RANGE_FLOOR for a family (its range centred on `inv_project`), FORECAST_RANGE_TAU and
    FORECAST_RANGE_FLOOR for "forecast"."""

    def miss(key: str) -> float:
        return max(
            abs(
                summarise([c for c in cases if c["cutoff"] == cut], family, key)["range_coverage"]
                - LEVEL
            )
            for cut in CUTOFFS
        )

    return min(FORECAST_TAUS if family == "forecast" else TAUS, key=miss)


def summarise(cases: list[dict[str, Any]], method: str, tau: str | None) -> dict[str, Any]:
    """The issue's measures for one method over some cases."""
    errs = [abs(c[method]["acc_largest"] - c["acc_largest"]) for c in cases]
    sized = [c for c in cases if c["sized"] and all(map(math.isfinite, c["true_sizes"]))]
    out: dict[str, Any] = {
        "cases": len(cases),
        "sized": len(sized),
        "median_abs_error": float(np.median(errs)) if errs else math.nan,
    }
    for i, name in ((0, "half"), (1, "p95")):
        hits = [_within2(c[method]["sizes"][i], c["true_sizes"][i]) for c in sized]
        out[f"{name}_within_2x"] = float(np.mean(hits)) if hits else math.nan
        ratio = [
            c[method]["sizes"][i] / c["true_sizes"][i] for c in sized if c[method]["sizes"][i] > 0
        ]
        out[f"{name}_median_ratio"] = float(np.median(ratio)) if ratio else math.nan
    out["p95_unreachable"] = (
        float(np.mean([c[method]["sizes"][1] < 0 for c in sized])) if sized else math.nan
    )
    if tau is not None and "ranges" in cases[0][method]:
        cover = [
            _covered(c[method]["ranges"][tau][0][i], c[method]["ranges"][tau][1][i], t)
            for c in sized
            for i, t in enumerate(c["true_sizes"])
        ]
        out["range_coverage"] = float(np.mean(cover)) if cover else math.nan
        # the same over the targets the fit reaches (lower > 0): no tau covers the others
        given = [
            _covered(c[method]["ranges"][tau][0][i], c[method]["ranges"][tau][1][i], t)
            for c in sized
            for i, t in enumerate(c["true_sizes"])
            if c[method]["ranges"][tau][0][i] > 0
        ]
        out["range_coverage_reached"] = float(np.mean(given)) if given else math.nan
        widths = [
            c[method]["ranges"][tau][1][i] / c[method]["ranges"][tau][0][i]
            for c in sized
            for i in range(2)
            if c[method]["ranges"][tau][1][i] > 0 and c[method]["ranges"][tau][0][i] > 0
        ]
        out["range_median_width"] = float(np.median(widths)) if widths else math.nan
        out["range_open"] = float(
            np.mean([c[method]["ranges"][tau][1][i] < 0 for c in sized for i in range(2)])
        )
    return out


def _forecast_score(cases: list[dict[str, Any]], method: str) -> float:
    """Design score of a forecast fit over both cut-offs: the accuracy error in units of the
    issue's target there, minus the shares of sizes within 2x (lower is better)."""
    total = 0.0
    for cut, target in ACCURACY_TARGETS.items():
        s = summarise([c for c in cases if c["cutoff"] == cut], method, None)
        total += s["median_abs_error"] / target - s["half_within_2x"] - s["p95_within_2x"]
    return total


def _score(s: dict[str, Any]) -> float:
    """Design score of a method: the issue's accuracy error (in units of its 10% target) and
    the shares of sizes within 2x, equally weighted."""
    return s["median_abs_error"] / 0.0175 - s["half_within_2x"] - s["p95_within_2x"]


def _runs25(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """25 runs per size resampled from a real curve's runs, each shifted by its own noise."""
    noise = values.std(axis=0)
    runs = values[rng.integers(0, values.shape[0], 25)] + rng.normal(0, 1, (25, 1)) * noise
    return np.clip(runs, 0.0, 1.0)


def backtest_timing(
    curves: list[dict[str, Any]], model: str, method: str = "trend"
) -> dict[str, Any]:
    """Fit (with both bootstraps) + size range (``size_needed(method=method)``) per curve
    with 25 runs per size (runs resampled from a real curve)."""
    import datagauge as dg
    from _harness import cpu_s

    rng = np.random.default_rng(0)
    times, cpus = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.DatagaugeWarning)
        for curve in curves:
            values = np.asarray(curve["values"])
            runs = _runs25(values, rng)
            target = float(np.clip(values.mean(axis=0)[-1] + 0.005, 0.0, 1.0))
            dg.fit_learning_curve(curve["steps"], runs, model=model).size_needed(
                target, method=method
            )
            for _ in range(5):
                t0, c0 = time.perf_counter(), cpu_s()
                fit = dg.fit_learning_curve(curve["steps"], runs, model=model)
                fit.size_needed([target, target - 0.01], method=method)
                times.append(time.perf_counter() - t0)
                cpus.append(cpu_s() - c0)
    return {
        "model": model,
        "method": method,
        "curves": len(curves),
        "median_ms": 1e3 * statistics.median(times),
        "p90_ms": 1e3 * float(np.percentile(times, 90)),
        "median_cpu_ms": 1e3 * statistics.median(cpus),
    }


def alternatives_timing(curves: list[dict[str, Any]]) -> dict[str, float]:
    """CPU ms per curve (25 runs per size, median) of what each cheap accuracy alternative
    adds to one pow3 fit + range: the other families' fits with their bootstrap (the pooled
    median), the exponent grid of pow3-prior."""
    import datagauge as dg
    from _harness import cpu_s

    rng = np.random.default_rng(1)
    pooled, prior, late = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.DatagaugeWarning)
        for curve in curves:
            values = np.asarray(curve["values"])
            runs = _runs25(values, rng)
            steps = np.asarray(curve["steps"], dtype=np.float64)
            big = 10.0 * steps[-1]
            for _ in range(3):
                c0 = cpu_s()
                fits = [dg.fit_learning_curve(steps, runs, model=m) for m in ("pow4", "mmf4")]
                np.median(np.concatenate([_bootstrap_projections(f, big) for f in fits]))
                pooled.append(cpu_s() - c0)
                c0 = cpu_s()
                prior_projection(pow3_profile(steps, runs, big), 0.5, 0.5)
                prior.append(cpu_s() - c0)
                fit = dg.fit_learning_curve(steps, runs, model="pow3", n_bootstrap=0)
                c0 = cpu_s()
                fit.forecast(big)
                late.append(cpu_s() - c0)
    return {
        "pooled_extra_cpu_ms": 1e3 * statistics.median(pooled),
        "prior_cpu_ms": 1e3 * statistics.median(prior),
        "forecast_cpu_ms": 1e3 * statistics.median(late),
    }


def run_backtest(args: argparse.Namespace) -> int:
    import _suff_curves
    import datagauge as dg
    from datagauge._atomic import save_json

    tau_shipped = _range_key(dg.sufficiency.RANGE_TAU, dg.sufficiency.RANGE_FLOOR)
    forecast_tau_shipped = _range_key(
        dg.sufficiency.FORECAST_RANGE_TAU, dg.sufficiency.FORECAST_RANGE_FLOOR
    )
    if forecast_tau_shipped not in FORECAST_TAUS:
        raise ValueError(f"the shipped forecast range {forecast_tau_shipped} is not on the grid.")

    curves = _suff_curves.load()
    if args.measure or not curves:
        curves = _suff_curves.measure(budget_s=args.budget)
    cases = backtest_cases(curves)
    for case in cases:
        for model in FAMILIES:
            case[model] = fit_case(case, model)
        case["forecast"] = forecast_case(case)
        case["trend"] = trend_case(case)
        for key in FORECAST_FITS:
            case[f"forecast:{key}"] = forecast_case(case, key)
        case["forecast-before"] = case[f"forecast:{FORECAST_BEFORE}"]
        last = case["acc_cut"]
        case["last"] = {"acc_largest": last, "sizes": [-1, -1]}
        case["alt"] = alternatives(case)
        case["prior"] = pow3_profile(
            np.asarray(case["steps"]), np.asarray(case["values"]), case["largest"]
        )
    dataeval_timed_out = None
    if not args.no_dataeval:
        de_in = [
            {
                "steps": c["steps"],
                "values": c["values"],
                "sizes": [c["largest"]],
                "targets": np.clip(c["targets"], 0.0, 1.0).tolist(),
            }
            for c in cases
        ]
        # DataEval's basinhopping takes up to minutes a curve under load: each fit runs with
        # a time limit, and finished fits (and timeouts) are cached beside the curves
        theirs = dataeval_fits(
            de_in,
            timeout=args.dataeval_timeout,
            cache=RESULTS_DIR / "sufficiency-dataeval-fits.json",
            cached_only=args.dataeval_cached,
        )
        if theirs is not None:
            for c, de in zip(cases, theirs, strict=True):
                if de is not None:
                    c["dataeval"] = {"acc_largest": de["projection"][0], "sizes": de["inv_project"]}
            dataeval_timed_out = sum(de is None for de in theirs)
    has_de = any("dataeval" in c for c in cases)
    methods = [*FAMILIES, "forecast", "trend", "forecast-before", "last"] + (
        ["dataeval"] if has_de else []
    )
    datasets = sorted({c["dataset"] for c in cases})
    # Leave one dataset out: the design choices (the family, the range's RANGE_TAU and
    # RANGE_FLOOR, the forecast range's FORECAST_RANGE_TAU and FORECAST_RANGE_FLOOR) are made
    # on the other datasets' curves, then judged on the held-out dataset's. A range's pair is
    # the one whose coverage is nearest LEVEL at both cut-offs (the larger of the two misses
    # is smallest).
    folds = {}
    for held in datasets:
        design = [c for c in cases if c["dataset"] != held]
        best_family = min(FAMILIES, key=lambda m: _score(summarise(design, m, None)))
        best_fit = min(FORECAST_FITS, key=lambda k: _forecast_score(design, f"forecast:{k}"))
        folds[held] = {
            "family": best_family,
            "tau": _best_range(design, best_family),
            "forecast_fit": best_fit,
            "forecast_tau": _best_range(design, f"forecast:{best_fit}"),
        }
    # the same choice on every curve: what the library ships (DEFAULT_MODEL, RANGE_TAU,
    # RANGE_FLOOR, FORECAST_RANGE_TAU, FORECAST_RANGE_FLOOR)
    everything = min(FAMILIES, key=lambda m: _score(summarise(cases, m, None)))
    fit_everywhere = min(FORECAST_FITS, key=lambda k: _forecast_score(cases, f"forecast:{k}"))
    shipped_choice = {
        "family": everything,
        "tau": _best_range(cases, everything),
        "forecast_fit": fit_everywhere,
        "forecast_tau": _best_range(cases, f"forecast:{fit_everywhere}"),
    }
    shipped_tau = {
        **dict.fromkeys(FAMILIES, tau_shipped),
        "forecast": forecast_tau_shipped,
        "trend": "shipped",
        "forecast-before": FORECAST_BEFORE_TAU,
    }
    table: dict[str, dict[str, Any]] = {}
    for cut in CUTOFFS:
        here = [c for c in cases if c["cutoff"] == cut]
        row = {m: summarise(here, m, shipped_tau.get(m)) for m in methods if m != "dataeval"}
        if has_de:  # on the curves whose DataEval fit finished within its time limit
            row["dataeval"] = summarise([c for c in here if "dataeval" in c], "dataeval", None)
        chosen = []
        for c in here:
            f = folds[c["dataset"]]
            chosen.append({**c, "lodo": {**c[f["family"]], "ranges": c[f["family"]]["ranges"]}})
        # the held-out choice: each dataset judged with the family and tau its design fold chose
        row["lodo"] = summarise(chosen, "lodo", None)
        cover = [
            _covered(
                c["lodo"]["ranges"][folds[c["dataset"]]["tau"]][0][i],
                c["lodo"]["ranges"][folds[c["dataset"]]["tau"]][1][i],
                t,
            )
            for c in chosen
            if c["sized"] and all(map(math.isfinite, c["true_sizes"]))
            for i, t in enumerate(c["true_sizes"])
        ]
        row["lodo"]["range_coverage"] = float(np.mean(cover)) if cover else math.nan
        # the forecast held out: the fold's fit (space and power), and its range's pair
        held = []
        for c in here:
            f = folds[c["dataset"]]
            chosen_fit = c[f"forecast:{f['forecast_fit']}"]
            ranges = chosen_fit["ranges"][f["forecast_tau"]]
            held.append({**c, "lodo-forecast": {**chosen_fit, "ranges": {"held": ranges}}})
        row["lodo-forecast"] = summarise(held, "lodo-forecast", "held")
        table[str(cut)] = row
    fits_table = {
        key: {
            str(cut): summarise([c for c in cases if c["cutoff"] == cut], f"forecast:{key}", None)
            for cut in CUTOFFS
        }
        for key in FORECAST_FITS
    }
    groups = {}
    for cut in CUTOFFS:
        for group in sorted({c["group"] for c in cases}):
            here = [c for c in cases if c["cutoff"] == cut and c["group"] == group]
            groups[f"{cut}/{group}/pow3"] = summarise(here, "pow3", str(tau_shipped))
            groups[f"{cut}/{group}/forecast"] = summarise(here, "forecast", forecast_tau_shipped)
            groups[f"{cut}/{group}/trend"] = summarise(here, "trend", "shipped")
            groups[f"{cut}/{group}/forecast-before"] = summarise(
                here, "forecast-before", FORECAST_BEFORE_TAU
            )
    alt_table = alternatives_table(cases)
    for case in cases:
        case["powers"] = forecast_powers(case)
    power_table = forecast_power_table(cases)
    for case in cases:
        case["ideas"] = forecast_ideas(case, case["pow3"]["acc_largest"])
    ideas_table = forecast_ideas_table(cases)
    for case in cases:
        del case["prior"]  # arrays of the grid: only the choice above needs them
    timing = backtest_timing(curves, "auto")
    timing_pow3 = backtest_timing(curves, "pow3")
    timing_project = backtest_timing(curves, "pow3", method="project")
    timing_alt = alternatives_timing(curves)
    result = {
        "machine": machine_info(),
        "curves": [{k: c[k] for k in ("dataset", "learner", "wall_s", "cpu_s")} for c in curves],
        "n_cases": len(cases),
        "folds": folds,
        "all_curves_choice": shipped_choice,
        "tau_shipped": tau_shipped,
        "forecast_tau_shipped": forecast_tau_shipped,
        "default_model": dg.sufficiency.DEFAULT_MODEL,
        "dataeval_timeout_s": None if args.no_dataeval else args.dataeval_timeout,
        "dataeval_cached_only": bool(args.dataeval_cached),
        "dataeval_timed_out": dataeval_timed_out,
        "table": table,
        "timing": [timing, timing_pow3, timing_project],
        "timing_alternatives": timing_alt,
        "groups": groups,
        "alternatives": alt_table,
        "forecast_powers": power_table,
        "forecast_fits": fits_table,
        "forecast_ideas": ideas_table,
        "cases": cases,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    md = backtest_markdown(result, methods)
    print(md)
    write_text(RESULTS_DIR / f"sufficiency-backtest-{stamp}.md", md)
    save_json(RESULTS_DIR / f"sufficiency-backtest-{stamp}.json", _finite(result))
    return 0


def _finite(obj: Any) -> Any:
    """`obj` with every non-finite float (an unreachable size, an empty share) as None."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def backtest_markdown(result: dict[str, Any], methods: list[str]) -> str:
    m = result["machine"]
    lines = [
        f"## Sufficiency back-test: {len(result['curves'])} measured curves, "
        f"{result['n_cases']} cut curves",
        "",
        f"Machine: {m.get('cpu', '?')}, {m.get('usable_cpus', '?')} CPUs, load "
        f"{m.get('load_1min_at_start', '?')} at start. Folds (family, range "
        "RANGE_TAU/RANGE_FLOOR around `inv_project`, forecast range "
        "FORECAST_RANGE_TAU/FORECAST_RANGE_FLOOR around `forecast_size`, chosen without the "
        f"held-out dataset): {result['folds']}. Chosen on all curves: "
        f"{result['all_curves_choice']}; shipped: DEFAULT_MODEL = "
        f"{result['default_model']!r}, RANGE_TAU/RANGE_FLOOR = {result['tau_shipped']}, "
        f"FORECAST_RANGE_TAU/FORECAST_RANGE_FLOOR = {result['forecast_tau_shipped']}.",
        "",
        "Columns pow3 ... auto: sizes from `inv_project` and the range of "
        '`size_needed(method="project")` around them (the old `size_needed`); forecast: sizes '
        'from `forecast_size` and the range of `size_needed(method="forecast")`; trend: sizes '
        'from `trend_size` and the range of `size_needed()` (method "trend", the default now; '
        "its constants TREND_RANGE_* set on these curves and LCDB's together, so not held "
        "out); the shipped constants; forecast-before: the same with the forecast "
        f"as before 2026-12-01 ({FORECAST_BEFORE}: residuals of the error itself, weights "
        f"(n / n_max)**2; its range's constants then, {FORECAST_BEFORE_TAU}). Held-out "
        "choice: each dataset judged with the family and RANGE_TAU/RANGE_FLOOR chosen "
        "without it; forecast, held out: the forecast with its fit (space and power) and "
        "then FORECAST_RANGE_TAU/FORECAST_RANGE_FLOOR chosen without it.",
        "",
    ]
    if result.get("dataeval_cached_only"):
        lines += [
            f"DataEval 1.1.4 (basinhopping, {NITER} iterations): only the fits cached in "
            f"results/sufficiency-dataeval-fits.json were used (not run again); "
            f"{result['n_cases'] - result['dataeval_timed_out']} of {result['n_cases']} cut "
            "curves have one, and its column is over those only.",
            "",
        ]
    elif result.get("dataeval_timed_out") is not None:
        lines += [
            f"DataEval 1.1.4 (basinhopping, {NITER} iterations), each fit limited to "
            f"{result['dataeval_timeout_s']:.0f} s wall: {result['dataeval_timed_out']} of "
            f"{result['n_cases']} cut curves timed out; its column is over the others.",
            "",
        ]
    rows = [
        ("accuracy at the largest size, median abs error", "median_abs_error", "{:.4f}"),
        ("size for half the remaining gain, within 2x", "half_within_2x", "{:.0%}"),
        ("  its median ratio predicted / true", "half_median_ratio", "{:.2f}"),
        ("size for 95% of the remaining gain, within 2x", "p95_within_2x", "{:.0%}"),
        ("  its median ratio predicted / true", "p95_median_ratio", "{:.2f}"),
        ("share of the 95% targets called unreachable", "p95_unreachable", "{:.0%}"),
        ("80% range holds the true size", "range_coverage", "{:.0%}"),
        ("  the same, of the targets the fit reaches", "range_coverage_reached", "{:.0%}"),
        ("  median width upper / lower", "range_median_width", "{:.1f}"),
        ("  share open-ended (at least lower, maybe never)", "range_open", "{:.0%}"),
    ]
    for cut, row in result["table"].items():
        first = row[methods[0]]
        lines += [
            f"### cut-off {float(cut):.0%} ({first['cases']} curves, {first['sized']} with a "
            f"gain >= {MIN_GAIN} after it)",
            "",
            "| measure | " + " | ".join([*methods, "held-out choice", "forecast, held out"]) + " |",
            "|---|" + "---|" * (len(methods) + 2),
        ]
        for label, key, fmt in rows:
            cells = []
            for meth in [*methods, "lodo", "lodo-forecast"]:
                v = row[meth].get(key)
                cells.append(
                    "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)
                )
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "### pow3 and the forecast per dataset group (shipped constants)",
        "",
        "| cut-off | group | method | curves | accuracy, median abs error | half within 2x | "
        "95% within 2x | 80% range holds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, g in result["groups"].items():
        cut, group, meth = key.split("/")
        cover = g.get("range_coverage")
        lines.append(
            f"| {float(cut):.0%} | {group} | {meth} | {g['cases']} | "
            f"{g['median_abs_error']:.4f} | {g['half_within_2x']:.0%} | {g['p95_within_2x']:.0%} "
            f"| {'-' if cover is None else f'{cover:.0%}'} |"
        )
    alt = result["alternatives"]
    cols = [*ALTERNATIVES, "pow3-prior held out", "held-out choice"]
    lines += [
        "",
        "### Accuracy at the largest size: alternatives to one pow3 fit (median abs error)",
        "",
        f"Leave-one-dataset-out choices: {alt['folds']}. pow3-prior (m0, width) per fold: "
        f"{alt['prior_folds']}; on all curves (its column): {alt['prior_everywhere']}.",
        "",
        "| cut-off | group | curves | " + " | ".join(cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for key, row in alt["rows"].items():
        cut, group = key.split("/")
        cells = [f"{row[a]:.4f}" for a in cols]
        lines.append(
            f"| {float(cut):.0%} | {group} | {row['curves']} | " + " | ".join(cells) + " |"
        )
    lines.append("")
    ff = result["forecast_fits"]
    lines += [
        "### The forecast's fit: residuals in log or linear space, weights (n / n_max)**power",
        "",
        "Chosen leave one dataset out by the accuracy error over the issue's target minus the "
        "two within-2x shares, summed over both cut-offs (the column 'forecast, held out' "
        "above is each dataset judged with its fold's choice). Per fold: "
        f"{ {h: f['forecast_fit'] for h, f in result['folds'].items()} }; on all curves: "
        f"{result['all_curves_choice']['forecast_fit']}.",
        "",
        "| space / power | 10%: accuracy error | half within 2x | 95% within 2x | "
        "25%: accuracy error | half within 2x | 95% within 2x |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, by_cut in ff.items():
        cells = []
        for cut in CUTOFFS:
            s = by_cut[str(cut)]
            cells += [
                f"{s['median_abs_error']:.4f}",
                f"{s['half_within_2x']:.0%}",
                f"{s['p95_within_2x']:.0%}",
            ]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("")
    fi = result["forecast_ideas"]
    lines += [
        "### Other ideas on top of the forecast (accuracy at the largest size, median abs error)",
        "",
        "scale s: the forecast's gain past the last measured size times s; variance f: weights "
        "(n / n_max)**2 / (se**2 + f**2), se the standard error of each mean relative to its "
        "error (inf: none); local k/a: a share a of a power law through the last k means "
        "(a line in log-log, no asymptote); median: of the forecast, local 4 and pow3's "
        "projection. Held out: the grid point chosen without the dataset (accuracy over the "
        f"issue's targets, both cut-offs). Per fold: {fi['folds']}.",
        "",
        "| idea | 10% | 25% |",
        "|---|---|---|",
    ]
    for key, by_cut in fi["rows"].items():
        lines.append(f"| {key} | " + " | ".join(f"{by_cut[str(c)]:.4f}" for c in CUTOFFS) + " |")
    lines.append("")
    fp = result["forecast_powers"]
    cols = [*map(str, FORECAST_POWERS), "power, held out", "power and blend, held out"]
    lines += [
        "### The linear-space fit's weights (n / n_max)**power, and blends with pow3 "
        "(median abs error)",
        "",
        f"Held-out choices (power, the forecast's share of a blend with pow3's projection): "
        f"{fp['folds']}.",
        "",
        "| cut-off | " + " | ".join(f"power {c}" if c[0].isdigit() else c for c in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for cut, row in fp["rows"].items():
        lines.append(f"| {float(cut):.0%} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |")
    lines.append("")
    ta = result["timing_alternatives"]
    lines.append(
        f"CPU per curve with 25 runs per size, on top of one pow3 fit + range: pow4 and mmf4 "
        f"with their bootstraps (pooled-bootstrap-median) {ta['pooled_extra_cpu_ms']:.2f} ms; "
        f"pow3-prior's grid {ta['prior_cpu_ms']:.2f} ms; pow3-late "
        f"(`LearningCurve.forecast`) {ta['forecast_cpu_ms']:.2f} ms (medians)."
    )
    for t in result["timing"]:
        lines.append(
            f"Fit + 80% size range, 25 runs per size, model={t['model']!r}, "
            f"method={t.get('method', 'project')!r}: median "
            f"{t['median_ms']:.2f} ms wall ({t['median_cpu_ms']:.2f} ms CPU), 90th percentile "
            f"{t['p90_ms']:.2f} ms, over {t['curves']} curves x 5."
        )
    return "\n".join(lines) + "\n"


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
    p.add_argument(
        "--backtest",
        action="store_true",
        help="the back-test on measured real curves (benchmarks/_suff_curves.py, cached)",
    )
    p.add_argument("--measure", action="store_true", help="measure missing curves first")
    p.add_argument("--budget", type=float, default=900.0, help="seconds for --measure")
    p.add_argument(
        "--dataeval-timeout",
        type=float,
        default=120.0,
        help="seconds each DataEval fit of the back-test may take (wall)",
    )
    p.add_argument(
        "--dataeval-cached",
        action="store_true",
        help="back-test: DataEval's column from its cached fits only (run none)",
    )
    p.add_argument("--worker", choices=["dataeval"], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "dataeval":
        worker_dataeval()
        return 0
    if args.backtest:
        return run_backtest(args)
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
    if theirs is not None and any(t is None for t in theirs):
        raise RuntimeError("DataEval's worker exited before it fitted every curve.")
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
    write_text(RESULTS_DIR / f"sufficiency-{stamp}.json", json.dumps(result, indent=1) + "\n")
    write_text(RESULTS_DIR / f"sufficiency-{stamp}.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
