"""Sufficiency back-test on LCDB: the issue's measures on the issue's own kind of curves.

LCDB (the Learning Curve Database, Mohr et al. 2022; PyPI ``lcdb`` 0.1.0, MIT) holds the
accuracy of 20 scikit-learn learners on 248 OpenML datasets at training sizes 16, 23, 32, 45,
... (a factor sqrt(2) apart), each measured on 25 splits (5 outer x 5 inner seeds), scored on
the validation fold (``score_valid``). Its 4,367 curves are, as far as we can tell, the
"4,187 real learning curves: 20 scikit-learn learners on 246 public datasets" that issue #15
measured its targets on: its table is reproduced here within a point or two (the pow3 fit's
accuracy error, the "last value" baseline and pow3's sizes).

Protocol (as ``bench_sufficiency.py --backtest``): each curve is cut at 10% and at 25% of its
largest size (at least 5 sizes before the cut); the runs measured at every size before the cut
are fitted (a curve whose sizes before the cut share fewer than 2 runs is fitted to its mean
alone and gets no range); the accuracy at the largest size is compared with the measured mean
there; the sizes for half and for 95% of the gain still to come (the measured mean at the
largest size minus that at the cut) are compared with the first size where the measured mean
curve reaches them (log-linear between sizes), on the curves that gain at least 0.01.

Nothing in datagauge was designed on these curves except the trend's range constants
(``TREND_RANGE_*``, chosen on them and the 182 curves of ``bench_sufficiency.py --backtest``
together) and the trend's two constants (``TREND_POINTS``, ``TREND_ASYMPTOTE``, looked at on
both). The held-out check of the range: the triple is chosen again on the curves of a random
half of the datasets and judged on the other half, both ways round.

The limits section says how far the size measures can go: how often the true size measured
on the runs resampled lies within 2x of the one measured on all of them (what knowing each
learner's expected curve exactly would score against truths this noisy), the trend with its
asymptote chosen per curve with hindsight from ``ASYMPTOTES`` (an upper bound for any rule
choosing it), and how near the largest size the true sizes lie (the targets are fractions
of the gain up to the largest size, so their truths cannot lie beyond it).

Set-up (the database ships inside the package; only its CSV is read)::

    pip download --no-deps lcdb==0.1.0 -d /tmp/lcdb
    tar xzf /tmp/lcdb/lcdb-0.1.0.tar.gz -C /tmp/lcdb

Run (from the repository root, datagauge importable; about 5 minutes on 2 cores)::

    python benchmarks/bench_sufficiency_lcdb.py --lcdb /tmp/lcdb/lcdb-0.1.0/lcdb

or with ``pip install --no-deps lcdb==0.1.0`` done, without ``--lcdb``. Results go to
``benchmarks/results/sufficiency-lcdb-<timestamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from _harness import machine_info, write_text
from bench_sufficiency import _covered, _within2, true_size

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
CUTOFFS = (0.10, 0.25)
MIN_STEPS = 5  # sizes before the cut
MIN_GAIN = 0.01  # size measures only where the learner still gains this much after the cut
LEVEL = 0.8
FAMILIES = ("pow3", "pow4", "mmf4", "auto")
# the issue's table (its 4,187 curves) and targets, for the side-by-side
ISSUE = {
    "last": {"0.1": 0.0307, "0.25": 0.0172},
    "pow3": {"0.1": 0.0192, "0.25": 0.0130},
    "pow4": {"0.1": 0.0209, "0.25": 0.0113},
}
ISSUE_SIZES = {"half": (0.44, 0.51), "p95": (0.25, 0.35), "unreachable": (0.28, 0.16)}
TARGETS = {"accuracy": (0.0175, 0.0105), "half": 0.60, "p95": 0.45, "coverage": (0.75, 0.85)}
# the limits section: resamples of the runs for the truth's own spread, and the trend's
# asymptote (times the forecast's) tried with hindsight
TRUTH_RESAMPLES = 40
ASYMPTOTES = tuple(round(0.1 * a, 1) for a in range(11))
# the range's calibration grid: (kappa, tau, floor)
GRID = tuple(
    (k, round(0.1 * t, 1), round(0.1 * f, 1))
    for k in (0.5, 1.0)
    for t in range(0, 9)
    for f in range(0, 9)
)


def database(path: str | None) -> Path:
    """LCDB's accuracy table: in `path`, or in the installed ``lcdb`` package."""
    if path is None:
        spec = importlib.util.find_spec("lcdb")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(
                "LCDB not found: pass --lcdb DIR (the lcdb/ folder of PyPI's lcdb-0.1.0 "
                "sdist) or pip install --no-deps lcdb==0.1.0. See this file's docstring."
            )
        path = next(iter(spec.submodule_search_locations))
    csv = Path(path) / "database-accuracy.csv"
    if not csv.is_file():
        raise SystemExit(f"{csv} does not exist: --lcdb must name the folder that holds it.")
    return csv


def load_cases(csv: Path) -> tuple[int, list[dict[str, Any]]]:
    """Every LCDB curve cut at each cut-off: the runs fitted and what the learner reached."""
    import pandas as pd

    df = pd.read_csv(csv, usecols=["openmlid", "learner", "size_train", "outer_seed",
                                   "inner_seed", "score_valid"])  # fmt: skip
    cases = []
    n_curves = 0
    rng = np.random.default_rng(0)
    for (dataset, learner), g in df.groupby(["openmlid", "learner"], sort=True):
        n_curves += 1
        runs = g.pivot_table(
            index=["outer_seed", "inner_seed"], columns="size_train", values="score_valid"
        )
        steps = runs.columns.to_numpy(dtype=np.float64)
        mean = runs.mean(axis=0).to_numpy()
        for cut in CUTOFFS:
            k = int(np.searchsorted(steps, cut * steps[-1], side="right"))
            if k < MIN_STEPS:
                continue
            full = runs.iloc[:, :k].dropna(axis=0).to_numpy()
            a_c, a_n = float(mean[k - 1]), float(mean[-1])
            gain = a_n - a_c
            targets = [a_c + 0.5 * gain, a_c + 0.95 * gain]
            cases.append(
                {
                    "dataset": int(dataset),
                    "learner": str(learner),
                    "cutoff": cut,
                    "steps": steps[:k],
                    "values": full if full.shape[0] >= 2 else mean[:k],
                    "largest": float(steps[-1]),
                    "acc_largest": a_n,
                    "acc_cut": a_c,
                    "gain": gain,
                    "targets": targets,
                    "true_sizes": [true_size(steps, mean, k - 1, t) for t in targets],
                }
            )
            cases[-1]["truth_spread"] = (
                truth_spread(steps, runs.to_numpy(), k - 1, targets, cases[-1]["true_sizes"], rng)
                if _sized(cases[-1])
                else None  # not among the size measures
            )
    return n_curves, cases


def truth_spread(
    steps: np.ndarray,
    runs: np.ndarray,
    start: int,
    targets: list[float],
    truth: list[float],
    rng: np.random.Generator,
) -> list[float]:
    """How often the true size measured on the runs resampled (with replacement) lies within
    2x of the one measured on all of them, for each target: the share a method knowing the
    learner's expected curve exactly could reach against truths measured with this noise."""
    hits = np.zeros(len(targets))
    for _ in range(TRUTH_RESAMPLES):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a size no resampled run has
            mean = np.nanmean(runs[rng.integers(0, len(runs), len(runs))], axis=0)
        again = [true_size(steps, mean, start, t) for t in targets]
        hits += [_within2(a, s) for a, s in zip(again, truth, strict=True)]
    return (hits / TRUTH_RESAMPLES).tolist()


def fit_case(case: dict[str, Any]) -> dict[str, Any]:
    """Every answer datagauge gives for one cut curve."""
    import datagauge as dg

    out: dict[str, Any] = {}
    t = np.clip(case["targets"], 0.0, 1.0)
    big = case["largest"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.DatagaugeWarning)
        for model in FAMILIES:
            fit = dg.fit_learning_curve(case["steps"], case["values"], model=model)
            out[model] = {
                "acc": float(fit.project(big)[0]),
                "sizes": fit.inv_project(t).tolist(),
            }
            if model != "pow3":
                continue
            out["forecast"] = {
                "acc": float(fit.forecast(big)[0]),
                "sizes": fit.forecast_size(t).tolist(),
            }
            out["trend"] = {"acc": float(fit.trend(big)[0]), "sizes": fit.trend_size(t).tolist()}
            out["asymptotes"] = trend_asymptote_sizes(fit, t)
            if fit.trend_bootstrap is None:  # a single run: no range
                continue
            default = fit.size_needed(t, level=LEVEL)
            if default.method != "trend" or default.size.tolist() != out["trend"]["sizes"]:
                raise RuntimeError("size_needed no longer answers with trend_size by default.")
            out["trend"]["range"] = [default.lower.tolist(), default.upper.tolist()]
            for method, key in (("forecast", "forecast"), ("project", "pow3")):
                est = fit.size_needed(t, level=LEVEL, method=method)
                out[key]["range"] = [est.lower.tolist(), est.upper.tolist()]
            # what the trend's range is made of, for the calibration check
            out["trend"]["boot"] = fit._pow3_boot_sizes(t, fit.trend_bootstrap)
            out["top"] = float(fit.steps[-1])
    return out


def trend_asymptote_sizes(fit: Any, t: np.ndarray) -> list[list[int]]:
    """trend_size of the pow3 `fit` with its asymptote at each of ASYMPTOTES times the
    forecast's (TREND_ASYMPTOTE ships): one row of sizes per asymptote."""
    from datagauge import sufficiency as suff

    forecast = np.array([fit._forecast_params()])
    err = 1.0 - fit.mean
    rows = []
    for a in ASYMPTOTES:
        c, m, c0 = suff._trend_fit_many(fit.steps, err, forecast, asymptote=a)[0]
        rows.append(fit._pow3_sizes(t, (float(c), float(m), float(c0))).tolist())
    return rows


def limits(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """How far the size measures can go on these cut curves (the sized ones): the truth's own
    spread under the runs' noise, the trend with the asymptote chosen with hindsight (per
    curve, and the best one for all), and how near the largest size the true sizes lie."""
    sized = [c for c in cases if _sized(c)]
    out: dict[str, Any] = {"sized": len(sized)}
    for i, name in ((0, "half"), (1, "p95")):
        truth = np.array([c["true_sizes"][i] for c in sized])
        hits = np.array(
            [[_within2(r[i], c["true_sizes"][i]) for r in c["fit"]["asymptotes"]] for c in sized]
        )
        ratio = truth / np.array([c["steps"][-1] for c in sized])
        out[name] = {
            "truth_spread_within_2x": float(np.mean([c["truth_spread"][i] for c in sized])),
            "hindsight_asymptote_within_2x": float(hits.any(axis=1).mean()),
            "best_asymptote": float(ASYMPTOTES[int(hits.mean(axis=0).argmax())]),
            "best_asymptote_within_2x": float(hits.mean(axis=0).max()),
            "truth_over_top_median": float(np.median(ratio)),
            "truth_at_5x_top_or_more": float(np.mean(ratio >= 5.0)),
        }
    return out


def _sized(case: dict[str, Any]) -> bool:
    return case["gain"] >= MIN_GAIN and all(map(math.isfinite, case["true_sizes"]))


def summarise(cases: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """The issue's measures for one method over some cases."""
    if method == "last":
        errs = [abs(c["acc_cut"] - c["acc_largest"]) for c in cases]
        return {"cases": len(cases), "median_abs_error": float(np.median(errs))}
    errs = [abs(c["fit"][method]["acc"] - c["acc_largest"]) for c in cases]
    sized = [c for c in cases if _sized(c)]
    out: dict[str, Any] = {
        "cases": len(cases),
        "sized": len(sized),
        "median_abs_error": float(np.median(errs)),
    }
    for i, name in ((0, "half"), (1, "p95")):
        sizes = [(c["fit"][method]["sizes"][i], c["true_sizes"][i]) for c in sized]
        out[f"{name}_within_2x"] = float(np.mean([_within2(p, t) for p, t in sizes]))
        ratios = [p / t for p, t in sizes if p > 0]
        out[f"{name}_median_ratio"] = float(np.median(ratios)) if ratios else math.nan
    out["p95_unreachable"] = float(np.mean([c["fit"][method]["sizes"][1] < 0 for c in sized]))
    ranged = [c for c in sized if "range" in c["fit"][method]]
    if ranged:
        cover, widths = [], []
        for c in ranged:
            (lo, up) = c["fit"][method]["range"]
            for i, t in enumerate(c["true_sizes"]):
                cover.append(_covered(lo[i], up[i], t))
                if lo[i] > 0 and up[i] > 0:
                    widths.append(up[i] / lo[i])
        out["ranged"] = len(ranged)
        out["range_coverage"] = float(np.mean(cover))
        out["range_median_width"] = float(np.median(widths)) if widths else math.nan
    return out


def range_coverage(cases: list[dict[str, Any]], triple: tuple[float, float, float]) -> list[float]:
    """Coverage of the trend's range with calibration `triple` (kappa, tau, floor) at each
    cut-off, through the library's own range functions."""
    from statistics import NormalDist

    from datagauge import sufficiency as suff

    z = NormalDist().inv_cdf(0.5 + LEVEL / 2.0)
    out = []
    for cut in CUTOFFS:
        hits = []
        for c in cases:
            if c["cutoff"] != cut:
                continue
            f = c["fit"]
            t = np.clip(c["targets"], 0.0, 1.0)
            size = np.asarray(f["trend"]["sizes"], dtype=np.int64)
            lo, up = suff._size_range(
                size, f["trend"]["boot"], [], f["top"], z, (1.0 - LEVEL) / 2.0, *triple
            )
            lo, up = suff._monotone_range(t, lo, up, True)
            hits += [_covered(int(lo[i]), int(up[i]), c["true_sizes"][i]) for i in range(2)]
        out.append(float(np.mean(hits)))
    return out


def _miss(cover: list[float]) -> float:
    return max(abs(x - LEVEL) for x in cover)


def held_out_range(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The range's triple chosen on half of the datasets, judged on the other half."""
    ranged = [c for c in cases if _sized(c) and "boot" in c["fit"]["trend"]]
    datasets = sorted({c["dataset"] for c in ranged})
    perm = np.random.default_rng(0).permutation(datasets)
    half = set(perm[: len(perm) // 2].tolist())
    out = []
    for name, design_in in (("A", True), ("B", False)):
        design = [c for c in ranged if (c["dataset"] in half) == design_in]
        judged = [c for c in ranged if (c["dataset"] in half) != design_in]
        best = min(GRID, key=lambda g: (round(_miss(range_coverage(design, g)), 3), g))
        out.append(
            {
                "design_half": name,
                "chosen": best,
                "design_coverage": range_coverage(design, best),
                "held_out_coverage": range_coverage(judged, best),
            }
        )
    return out


def timing(cases: list[dict[str, Any]], n: int = 300) -> dict[str, float]:
    """Fit (with its bootstraps) + size_needed of two targets per curve, 25 runs per size,
    one thread: wall ms, median and 90th percentile over `n` curves (3 repeats each)."""
    import datagauge as dg

    pool = [c for c in cases if np.ndim(c["values"]) == 2 and c["values"].shape[0] == 25]
    pick = np.random.default_rng(1).choice(len(pool), min(n, len(pool)), replace=False)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.DatagaugeWarning)
        for i in pick.tolist():
            c = pool[i]
            t = np.clip(c["targets"], 0.0, 1.0)
            dg.fit_learning_curve(c["steps"], c["values"]).size_needed(t)
            for _ in range(3):
                t0 = time.perf_counter()
                dg.fit_learning_curve(c["steps"], c["values"]).size_needed(t)
                times.append(time.perf_counter() - t0)
    return {
        "curves": len(pick),
        "median_ms": 1e3 * statistics.median(times),
        "p90_ms": 1e3 * float(np.percentile(times, 90)),
    }


def _fit_all(cases: list[dict[str, Any]], jobs: int) -> list[dict[str, Any]]:
    if jobs == 1:
        return [fit_case(c) for c in cases]
    with mp.get_context("spawn").Pool(jobs) as pool:
        return pool.map(fit_case, cases, chunksize=25)


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Sufficiency back-test on LCDB ({result['date']}, commit {result['commit']})",
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable cores, load {m['load_1min_at_start']}. "
        "LCDB 0.1.0: "
        f"{result['curves']} curves, {result['cases']} cut curves; score_valid, 25 runs per "
        "size. Sized: the curves that gain >= 0.01 after the cut.",
        "",
    ]
    methods = ["last", *FAMILIES, "forecast", "trend"]
    for cut in ("0.1", "0.25"):
        row = result["table"][cut]
        i = 0 if cut == "0.1" else 1
        lines += [
            f"## Cut at {float(cut):.0%} of the largest size "
            f"({row['pow3']['cases']} curves, {row['pow3']['sized']} sized)",
            "",
            "| method | accuracy at largest, median abs error | half the gain within 2x "
            "| 95% within 2x | 95% called unreachable | 80% range holds the truth "
            "| median width |",
            "|---|---|---|---|---|---|---|",
        ]
        for meth in methods:
            s = row[meth]
            issue = ISSUE.get(meth, {}).get(cut)
            acc = f"{s['median_abs_error']:.4f}" + (f" (issue: {issue:.4f})" if issue else "")
            if meth == "last":
                lines.append(f"| last measured value | {acc} | | | | | |")
                continue
            sizes = [
                f"{s['half_within_2x']:.0%}",
                f"{s['p95_within_2x']:.0%}",
                f"{s['p95_unreachable']:.0%}",
            ]
            if meth == "pow3":
                sizes = [
                    f"{sizes[k]} (issue: {ISSUE_SIZES[n][i]:.0%})"
                    for k, n in enumerate(("half", "p95", "unreachable"))
                ]
            cov = f"{s['range_coverage']:.0%}" if "range_coverage" in s else ""
            width = f"{s['range_median_width']:.1f}x" if "range_median_width" in s else ""
            name = {
                "pow3": "pow3 (project / inv_project)",
                "forecast": "forecast / forecast_size",
                "trend": "trend / trend_size = size_needed (default)",
            }.get(meth, meth)
            lines.append(f"| {name} | {acc} | {' | '.join(sizes)} | {cov} | {width} |")
        lines.append("")
    acc_t = TARGETS["accuracy"]
    lines += [
        f"Issue targets: accuracy error <= {acc_t[0]} / {acc_t[1]}; half within 2x >= "
        f"{TARGETS['half']:.0%}; 95% within 2x >= {TARGETS['p95']:.0%}; 80% range holds "
        f"the truth on {TARGETS['coverage'][0]:.0%}-{TARGETS['coverage'][1]:.0%}.",
        "",
        "Range of the trend with its triple (kappa, tau, floor) chosen on half of the datasets:",
        "",
        "| design half | chosen | coverage there (10% / 25%) | held out (10% / 25%) |",
        "|---|---|---|---|",
    ]
    for h in result["held_out_range"]:
        d, o = h["design_coverage"], h["held_out_coverage"]
        lines.append(
            f"| {h['design_half']} | {tuple(h['chosen'])} | {d[0]:.1%} / {d[1]:.1%} "
            f"| {o[0]:.1%} / {o[1]:.1%} |"
        )
    lines += [
        "",
        "How far the size measures can go (sized curves; within 2x of the measured true size):",
        "",
        "| cut | target | truth resampled over runs | trend, asymptote with hindsight per curve "
        "| best single asymptote | shipped trend | median truth / largest fitted size "
        "| truth >= 5x the largest fitted size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cut in ("0.1", "0.25"):
        for name in ("half", "p95"):
            b = result["limits"][cut][name]
            shipped = result["table"][cut]["trend"][f"{name}_within_2x"]
            lines.append(
                f"| {float(cut):.0%} | {'half' if name == 'half' else '95%'} "
                f"| {b['truth_spread_within_2x']:.0%} | {b['hindsight_asymptote_within_2x']:.0%} "
                f"| {b['best_asymptote_within_2x']:.0%} (x{b['best_asymptote']}) "
                f"| {shipped:.0%} | {b['truth_over_top_median']:.1f} "
                f"| {b['truth_at_5x_top_or_more']:.0%} |"
            )
    tm = result["timing"]
    lines += [
        "",
        f"Fit + size_needed (two targets), 25 runs per size, one thread, {tm['curves']} curves: "
        f"{tm['median_ms']:.1f} ms median, {tm['p90_ms']:.1f} ms at the 90th percentile.",
        "",
    ]
    return "\n".join(lines)


def _plain(obj: Any) -> Any:
    """JSON-ready: arrays as lists, non-finite floats as None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--lcdb", help="the folder holding LCDB's database-accuracy.csv")
    p.add_argument("--limit", type=int, help="a random subset of this many cut curves")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = p.parse_args(argv)
    import subprocess

    from datagauge._atomic import save_json

    csv = database(args.lcdb)
    t0 = time.perf_counter()
    n_curves, cases = load_cases(csv)
    if args.limit:
        pick = np.random.default_rng(0).choice(len(cases), args.limit, replace=False)
        cases = [cases[i] for i in sorted(pick.tolist())]
    print(f"{n_curves} curves, {len(cases)} cut curves ({time.perf_counter() - t0:.0f} s)")
    for case, fit in zip(cases, _fit_all(cases, args.jobs), strict=True):
        case["fit"] = fit
    table = {
        str(cut): {
            m: summarise([c for c in cases if c["cutoff"] == cut], m)
            for m in ["last", *FAMILIES, "forecast", "trend"]
        }
        for cut in CUTOFFS
    }
    bounds = {str(cut): limits([c for c in cases if c["cutoff"] == cut]) for cut in CUTOFFS}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit or "?",
        "machine": machine_info(),
        "curves": n_curves,
        "cases": len(cases),
        "table": table,
        "limits": bounds,
        "held_out_range": held_out_range(cases),
        "shipped_range_all": range_coverage(
            [c for c in cases if _sized(c) and "boot" in c["fit"]["trend"]],
            _shipped_triple(),
        ),
        "timing": timing(cases),
        "elapsed_s": time.perf_counter() - t0,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    md = markdown(result)
    print(md)
    write_text(RESULTS_DIR / f"sufficiency-lcdb-{stamp}.md", md)
    save_json(RESULTS_DIR / f"sufficiency-lcdb-{stamp}.json", _plain(result))
    return 0


def _shipped_triple() -> tuple[float, float, float]:
    from datagauge import sufficiency as suff

    return (suff.TREND_RANGE_KAPPA, suff.TREND_RANGE_TAU, suff.TREND_RANGE_FLOOR)


if __name__ == "__main__":
    sys.exit(main())
