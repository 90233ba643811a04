"""Wall and CPU seconds of ``datagauge report`` per phase, on a shipped dataset.

Runs what ``datagauge report --dataset NAME`` runs, with each phase timed: the CNN's
training, its forward pass (predictions and embeddings), the image tags, and every section.
CPU seconds are this process's (all its threads) and, separately, those of the worker
processes a phase waited for (the map's layout, the CNN sufficiency experiment). The load
average of the machine is printed before and after: on a shared machine it moves the wall
time (and, with spinning thread pools, the CPU seconds).

```bash
python benchmarks/bench_report.py --dataset fashion-mnist --out /tmp/report-fm
```
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Row = tuple[str, float, float, float]


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def _timed(name: str, fn: Callable[..., Any], rows: list[Row]) -> Callable[..., Any]:
    """`fn` recording (name, wall, own CPU, waited-for workers' CPU) in `rows` per call."""

    def run(*args: Any, **kwargs: Any) -> Any:
        wall, (own, kids) = time.perf_counter(), _cpu()
        try:
            return fn(*args, **kwargs)
        finally:
            own1, kids1 = _cpu()
            rows.append((name, time.perf_counter() - wall, own1 - own, kids1 - kids))

    for attribute in ("start", "after"):  # a section that starts early keeps doing so
        if hasattr(fn, attribute):
            setattr(run, attribute, getattr(fn, attribute))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("report-bench"))
    args = parser.parse_args()
    start = time.perf_counter()
    print("load average before:", os.getloadavg())

    from datagauge.embeddings import models
    from datagauge.report import _pipeline, _sections, _sources

    rows: list[Row] = []
    models.train_classifier = _timed("CNN training", models.train_classifier, rows)
    _sources._predict_embed = _timed("forward pass", _sources._predict_embed, rows)
    _sources._image_tags = _timed("image tags", _sources._image_tags, rows)
    steps = [(a, t, _timed(f"section {a}", run, rows)) for a, t, run in _sections.SECTIONS]
    inputs = _timed("inputs (all of the above)", _sources.load_inputs, rows)(
        dataset=args.dataset, limit=args.limit, progress=False
    )
    _timed("report (all sections, writing)", _pipeline.build_report, rows)(
        inputs, args.out, progress=False, sections=lambda: steps
    )
    totals: dict[str, list[float]] = {}
    for name, wall, own, kids in rows:
        acc = totals.setdefault(name, [0.0, 0.0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += wall
        acc[2] += own
        acc[3] += kids
    print("| phase | calls | wall (s) | CPU-s here | CPU-s of workers |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (calls, wall, own, kids) in totals.items():
        print(f"| {name} | {calls:.0f} | {wall:.1f} | {own:.1f} | {kids:.1f} |")
    own, kids = _cpu()
    whole = time.perf_counter() - start
    print(f"whole: {whole:.1f} s wall, {own:.1f} CPU-s here, {kids:.1f} CPU-s in workers")
    print("load average after:", os.getloadavg())


if __name__ == "__main__":
    main()
