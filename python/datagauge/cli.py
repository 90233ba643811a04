"""Command-line entry point: ``datagauge report`` (the main job) and ``datagauge coverage``.

With no data arguments both run on the embedded default dataset, scikit-learn's 1,797 real
8x8 digits: ``report`` writes an HTML and a JSON report of every analysis, ``coverage``
prints the least covered images as a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .coverage import coverage

__all__ = ["main"]

_SHADES = " .:-=+*#%@"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datagauge", description="What is wrong with an image dataset, from its embeddings."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cov = sub.add_parser(
        "coverage",
        help="find the under-sampled (least covered) images",
        description="k-NN coverage: the images farthest from their k-th nearest neighbour. "
        "Runs on scikit-learn's 8x8 digits unless --embeddings is given.",
    )
    src = cov.add_mutually_exclusive_group()
    src.add_argument("--dataset", default="digits", choices=["digits"], help="embedded dataset")
    src.add_argument("--embeddings", type=Path, help=".npy file of shape (n_samples, n_features)")
    cov.add_argument("--labels", type=Path, help=".npy labels (n_samples,)")
    cov.add_argument("-k", "--k", type=int, default=20, help="neighbours needed (default 20)")
    cov.add_argument("--radius-type", default="adaptive", choices=["adaptive", "naive"])
    cov.add_argument("--percent", type=float, default=0.01, help="adaptive: fraction uncovered")
    cov.add_argument("--normalize", action="store_true", help="min-max scale features first")
    cov.add_argument(
        "--index",
        default="exact",
        choices=["exact", "kdtree", "brute", "flat", "hnsw", "ivf"],
        help="k-NN engine (default exact: kd-tree or brute force, chosen by a probe)",
    )
    cov.add_argument("--top", type=int, default=10, help="rows of the table (default 10)")
    cov.add_argument("--json", type=Path, help="also write every number to this JSON file")
    cov.add_argument("--n-jobs", type=int, default=None, help="threads (default: all CPUs)")
    rep = sub.add_parser(
        "report",
        help="run every analysis and write report.html and report.json",
        description="Run coverage, familiarity, sufficiency, bias and saliency on a dataset and "
        "write a self-contained report.html plus report.json. With no data arguments it runs "
        "on scikit-learn's 8x8 digits, training a small CNN on the CPU.",
    )
    rsrc = rep.add_mutually_exclusive_group()
    rsrc.add_argument(
        "--dataset",
        choices=["digits", "mnist-5k", "fashion-mnist"],
        help="a dataset shipped inside a package (default: digits)",
    )
    rsrc.add_argument("--images", type=Path, help="folder of images in class subfolders")
    rsrc.add_argument("--embeddings", type=Path, help=".npy file of shape (n_samples, n_features)")
    rep.add_argument("--labels", type=Path, help="with --embeddings: .npy labels (n_samples,)")
    rep.add_argument("--predictions", type=Path, help="with --embeddings: .npy predicted labels")
    rep.add_argument("--tags", type=Path, help="with --embeddings: .npy 0/1 tags or a .csv")
    rep.add_argument("--out", type=Path, default=Path("report-out"), help="output folder")
    rep.add_argument("--limit", type=int, help="use only this many samples (a quick look)")
    rep.add_argument("--seed", type=int, default=0, help="seed of splits and training")
    rep.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _run_report(args: argparse.Namespace) -> int:
    from .report import build_report
    from .report._sources import load_inputs

    if args.embeddings is None and any(
        p is not None for p in (args.labels, args.predictions, args.tags)
    ):
        raise ValueError("--labels, --predictions and --tags go with --embeddings.")
    inputs = load_inputs(
        dataset=args.dataset,
        images=args.images,
        embeddings=args.embeddings,
        labels=args.labels,
        predictions=args.predictions,
        tags=args.tags,
        limit=args.limit,
        seed=args.seed,
        progress=not args.no_progress,
    )
    html_path, json_path = build_report(inputs, args.out, progress=not args.no_progress)
    print(f"wrote {html_path} and {json_path}")
    return 0


def _load(
    args: argparse.Namespace,
) -> tuple[str, NDArray[Any], NDArray[Any] | None, NDArray[Any] | None]:
    """(name, embeddings, labels, images or None)."""
    if args.embeddings is not None:
        x = np.load(args.embeddings, allow_pickle=False)
        y = None if args.labels is None else np.load(args.labels, allow_pickle=False)
        return str(args.embeddings), x, y, None
    if args.labels is not None:
        raise ValueError("--labels goes with --embeddings; the embedded dataset has labels.")
    from .datasets import load_digits

    ds = load_digits()
    return (
        f"{ds.name} ({len(ds.labels)} real 8x8 images, scikit-learn)",
        ds.flat(),
        ds.labels,
        ds.images,
    )


def _thumbnails(images: NDArray[Any], indices: Sequence[int], width: int = 6) -> str:
    """Small images side by side as text, darkest pixel '@'."""
    rows = []
    picked = [images[i] for i in indices[:width]]
    for r in range(picked[0].shape[0]):
        line = []
        for img in picked:
            levels = np.clip((img[r] * (len(_SHADES) - 1)).round().astype(int), 0, len(_SHADES) - 1)
            line.append("".join(_SHADES[v] * 2 for v in levels))
        rows.append("  " + "   ".join(line))
    header = "  " + "   ".join(f"#{i:<{2 * picked[0].shape[1] - 1}}" for i in indices[:width])
    return "\n".join([header, *rows])


def _run_coverage(args: argparse.Namespace) -> int:
    name, x, y, images = _load(args)
    res = coverage(
        x,
        args.k,
        radius_type=args.radius_type,
        percent=args.percent,
        labels=y,
        normalize=args.normalize,
        index=args.index,
        n_jobs=args.n_jobs,
    )
    n = len(res.critical_value_radii)
    print(f"datagauge coverage: {name}")
    print(
        f"k={res.k}, {res.radius_type} radius {res.coverage_radius:.4f}: "
        f"{res.uncovered_indices.size} of {n} images uncovered "
        f"({100 * res.uncovered_indices.size / n:.1f}%)"
    )
    top = res.uncovered_indices[: max(args.top, 0)]
    print("\nLeast covered images (most isolated first):")
    print(f"{'rank':>4}  {'index':>7}  {'label':>6}  {'radius':>8}")
    for rank, i in enumerate(top, 1):
        label = "-" if y is None else str(y[i])
        print(f"{rank:>4}  {i:>7}  {label:>6}  {res.critical_value_radii[i]:>8.4f}")
    if images is not None and top.size:
        print("\n" + _thumbnails(images, [int(i) for i in top]))
    if res.per_class is not None:
        print("\nPer class:")
        print(f"{'label':>6}  {'count':>6}  {'uncovered':>9}  {'fraction':>8}  {'own radius':>10}")
        for lab, c, u, f, r in res.per_class.rows():
            print(f"{lab!s:>6}  {c:>6}  {u:>9}  {f:>8.3f}  {r:>10.4f}")
    if args.json is not None:
        args.json.write_text(json.dumps(res.to_dict()))
        print(f"\nwrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "coverage":
            return _run_coverage(args)
        if args.command == "report":
            return _run_report(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"datagauge: error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")  # exits; argparse checks choices


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
