"""Run every analysis on a dataset and write ``report.html`` and ``report.json``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .._atomic import save_json, save_npy, write_text
from .._progress import Progress
from .._results import _plain
from ._common import Shared, StartsEarly
from ._html import HtmlReport, Section
from ._inputs import ReportInputs
from ._sections import DEFERRED, SECTIONS

__all__ = ["build_report"]


def _overview(inputs: ReportInputs, sec: Section) -> dict[str, Any]:
    n, d = inputs.embeddings.shape
    info: dict[str, Any] = {"name": inputs.name, "n_samples": n, "n_features": d}
    rows: list[list[Any]] = [["samples", n], ["embedding dimensions", d]]
    if inputs.labels is not None:
        classes, counts = np.unique(inputs.labels, return_counts=True)
        info["classes"] = {
            inputs.label_name(c): int(m) for c, m in zip(classes, counts, strict=True)
        }
        rows.append(["classes", len(classes)])
    if inputs.is_train is not None:
        info["n_train"] = int(inputs.is_train.sum())
        rows.append(["training split", info["n_train"]])
    correct = inputs.correct
    if correct is not None:
        info["accuracy"] = float(correct.mean())
        rows.append(["model accuracy (out of sample)", info["accuracy"]])
    sec.table(["", "value"], rows)
    for note in inputs.notes:
        sec.paragraph(note, css="note")
    info["notes"] = list(inputs.notes)
    return info


#: The files build_report writes in its folder besides the sections' own (which guard theirs).
REPORT_FILES = ("report.html", "report.json", "embeddings.npy", "labels.npy")


def check_out_dir(out: Path) -> None:
    """Refuse a report folder whose files build_report would replace though no report wrote
    them: a folder without ``report.json`` that holds any of :data:`REPORT_FILES` (the
    user's own embeddings.npy, say). A previous report's folder is written over."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"the report folder {out} is a file; choose a folder.")
    if (out / "report.json").is_file():
        return
    clash = [name for name in REPORT_FILES if (out / name).exists()]
    if clash:
        raise FileExistsError(
            f"{out} already holds {', '.join(clash)}, which the report would replace, and no "
            "report.json (it is not a previous report's folder); choose another output folder."
        )


def build_report(
    inputs: ReportInputs,
    out_dir: str | Path,
    *,
    progress: bool = True,
    sections: Callable[[], list[Any]] | None = None,
) -> tuple[Path, Path]:
    """Run the analyses on `inputs` and write ``report.html`` and ``report.json`` in `out_dir`.

    Parameters
    ----------
    inputs : ReportInputs
        Embeddings and what else is known; sections whose inputs are missing say so.
    out_dir : str or Path
        Created when missing. Besides the report it receives ``embeddings.npy`` (and
        ``labels.npy``), the concept-bias query file and the saliency PNGs. Every file is
        written atomically (a temporary file renamed into place). A folder that holds any of
        those files but no ``report.json`` (files no report wrote, such as the inputs) is
        refused before anything runs; a previous report's folder is written over.
    progress : bool
        Show a progress bar on stderr.
    sections : callable, optional
        Returns the ``(anchor, title, run)`` sections to run instead of the default ones.
        They are drawn in that order; those whose anchor is in ``DEFERRED`` (the map) run
        after the others, since they show what the others found. A `run` with a
        ``start(inputs, shared)`` method and an ``after`` set of anchors (the map) is started
        (in the background) as soon as those of its ``after`` sections that run here have
        run.

    Returns
    -------
    (Path, Path)
        The HTML and JSON files written.
    """
    out = Path(out_dir)
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = SECTIONS if sections is None else sections()
    n, d = inputs.embeddings.shape
    report = HtmlReport(
        f"datagauge report: {inputs.name}",
        f"{n:,} samples, {d} embedding dimensions; generated {time.strftime('%Y-%m-%d %H:%M')}",
    )
    overview = _overview(inputs, report.section("overview", "Data"))
    placed = [(anchor, run, report.section(anchor, title)) for anchor, title, run in steps]
    order = [p for p in placed if p[0] not in DEFERRED] + [p for p in placed if p[0] in DEFERRED]
    shared = Shared()
    parts: dict[str, dict[str, Any]] = {}
    present = {anchor for anchor, _, _ in placed}
    waiting = [run for _, run, _ in placed if isinstance(run, StartsEarly)]
    bar = Progress(progress, len(steps), desc="datagauge report", unit="step")
    # BLAS on one thread here: the sections' matrix products are small, and the map's layout
    # (and the CNN sufficiency experiment) run in worker processes on the other core, where
    # a second BLAS thread would only wait for the CPU (and spin). Restored afterwards.
    blas = threadpool_limits(1, user_api="blas")
    try:
        for i, (anchor, run, sec) in enumerate(order):
            for early in [w for w in waiting if (w.after & present) <= parts.keys()]:
                waiting.remove(early)
                early.start(inputs, shared)  # runs beside the sections still to come
            t0 = time.perf_counter()
            bar.note(anchor)
            shared.progress = bar.part(i)  # long sections (sufficiency) move the bar as they go
            part = run(inputs, sec, out, shared)
            shared.progress = None
            bar.to(i + 1)
            part["seconds"] = round(time.perf_counter() - t0, 3)
            parts[anchor] = part
    finally:
        blas.restore_original_limits()
        shared.close()
        bar.close()
    result: dict[str, Any] = {"overview": overview}
    result.update((anchor, parts[anchor]) for anchor, _, _ in placed)
    # The embeddings the numbers came from, so any result can be recomputed or explored.
    save_npy(out / "embeddings.npy", inputs.embeddings)
    if inputs.labels is not None:
        save_npy(out / "labels.npy", np.asarray(inputs.labels))
    html_path, json_path = out / "report.html", out / "report.json"
    write_text(html_path, report.render())
    save_json(json_path, _plain(result))
    return html_path, json_path
