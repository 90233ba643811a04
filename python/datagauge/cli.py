"""Command-line entry point: ``datagauge report`` (the main job) and one command per analysis.

``report`` writes an HTML and a JSON report of every analysis; ``coverage``, ``duplicates``,
``outliers`` and ``label-errors`` print a short table (``--json`` writes every number);
``graph`` searches the k-NN graph once and saves it for the analyses (``--graph DIR``);
``compare`` compares two sets of embeddings (familiarity gap, divergence, drift test). With
no data arguments they run on the embedded default dataset, scikit-learn's 1,797 real 8x8
digits.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._atomic import save_json
from ._validation import check_class_labels, check_embeddings, read_npy
from .coverage import coverage

__all__ = ["main"]

_SHADES = " .:-=+*#%@"
_INDEXES = ["exact", "kdtree", "brute", "flat", "hnsw", "ivf"]
_INDEX_HELP = "k-NN engine (default exact: kd-tree or brute force, chosen by a probe)"


def _add_source(cmd: argparse.ArgumentParser, *, graph: bool = True) -> None:
    """--dataset / --embeddings (/ --graph), one of them, and the options every analysis has."""
    src = cmd.add_mutually_exclusive_group()
    src.add_argument("--dataset", default="digits", choices=["digits"], help="embedded dataset")
    src.add_argument("--embeddings", type=Path, help=".npy file of shape (n_samples, n_features)")
    if graph:
        src.add_argument(
            "--graph", type=Path, help="a graph folder saved by `datagauge graph` (no search)"
        )
    # None: "exact" where something is searched; given with --graph, an error (no search)
    cmd.add_argument("--index", default=None, choices=_INDEXES, help=_INDEX_HELP)
    cmd.add_argument("--n-jobs", type=int, default=None, help="threads (default: all CPUs)")


def _add_output(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--top", type=int, default=10, help="rows of the table (default 10)")
    cmd.add_argument("--json", type=Path, help="also write every number to this JSON file")


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
    _add_source(cov, graph=False)
    cov.add_argument("--labels", type=Path, help=".npy labels (n_samples,)")
    cov.add_argument("-k", "--k", type=int, default=20, help="neighbours needed (default 20)")
    cov.add_argument("--radius-type", default="adaptive", choices=["adaptive", "naive"])
    cov.add_argument("--percent", type=float, default=0.01, help="adaptive: fraction uncovered")
    cov.add_argument("--normalize", action="store_true", help="min-max scale features first")
    _add_output(cov)

    dup = sub.add_parser(
        "duplicates",
        help="find exact and near-duplicate images, and leaks across splits",
        description="Exact duplicates (identical embeddings, by hashing) and near duplicates "
        "(groups linked by neighbour distances <= --threshold); with --splits, the groups "
        "that cross splits (train/test leaks). Runs on scikit-learn's 8x8 digits unless "
        "--embeddings or --graph is given.",
    )
    _add_source(dup)
    dup.add_argument("--labels", type=Path, help=".npy labels (n_samples,), shown in the table")
    dup.add_argument(
        "--splits", type=Path, help='.npy split of every sample ("train", "test", ... or ints)'
    )
    dup.add_argument("-k", "--k", type=int, default=10, help="neighbours searched (default 10)")
    dup.add_argument(
        "--threshold",
        type=float,
        help="near-duplicate distance (default: 0.05 x the median nearest-distinct distance)",
    )
    _add_output(dup)

    out = sub.add_parser(
        "outliers",
        help="score every image by how far it lies from its neighbours",
        description="Outlier scores (local outlier factor, or the distance to the k-th "
        "neighbour) and the flagged outliers. Runs on scikit-learn's 8x8 digits unless "
        "--embeddings or --graph is given.",
    )
    _add_source(out)
    out.add_argument("--labels", type=Path, help=".npy labels (n_samples,), shown in the table")
    out.add_argument("-k", "--k", type=int, default=20, help="neighbours (default 20)")
    out.add_argument("--method", default="lof", choices=["lof", "knn_distance"])
    flag = out.add_mutually_exclusive_group()
    flag.add_argument("--contamination", type=float, help="share to flag, in (0, 0.5]")
    flag.add_argument(
        "--threshold", type=float, help="flag scores above this (default: 1.5 for lof)"
    )
    _add_output(out)

    lab = sub.add_parser(
        "label-errors",
        help="find images whose labels their neighbours contradict",
        description="Suspected label errors and the label the neighbours suggest. Runs on "
        "scikit-learn's 8x8 digits (with their labels) unless --embeddings or --graph is "
        "given, which need --labels.",
    )
    _add_source(lab)
    lab.add_argument("--labels", type=Path, help=".npy labels (n_samples,)")
    lab.add_argument("-k", "--k", type=int, default=50, help="neighbours (default 50)")
    lab.add_argument(
        "--method",
        choices=["distance_ratio", "knn_vote"],
        help="default distance_ratio; knn_vote with --graph (the ratio needs the embeddings)",
    )
    _add_output(lab)

    gra = sub.add_parser(
        "graph",
        help="search the k-NN graph once and save it for the analyses",
        description="Search every image's k nearest neighbours once and save the graph in a "
        "folder; pass it to duplicates, outliers and label-errors with --graph, or load it "
        "with datagauge.NeighborGraph.load. Runs on scikit-learn's 8x8 digits unless "
        "--embeddings is given.",
    )
    _add_source(gra, graph=False)
    gra.add_argument(
        "-k",
        "--k",
        type=int,
        default=50,
        help="neighbours per image (default 50: enough for every analysis's default)",
    )
    gra.add_argument("--out", type=Path, required=True, help="folder to create")
    gra.add_argument(
        "--overwrite", action="store_true", help="replace --out if it holds a saved graph"
    )

    cmp = sub.add_parser(
        "compare",
        help="compare two sets of embeddings: familiarity gap, divergence and a drift test",
        description="How far dataset B is from dataset A (e.g. train vs test, last month vs "
        "this month, real vs synthetic): the familiarity gap of B under a density model of A "
        "(likelihood ratio and DeepView's band), the Henze-Penrose divergence and a "
        "two-sample drift test with the samples (or features) that drift most. With no files "
        "it compares two seeded random halves of scikit-learn's 8x8 digits (no gap expected).",
    )
    cmp.add_argument("a", type=Path, nargs="?", help=".npy embeddings of A (the reference)")
    cmp.add_argument("b", type=Path, nargs="?", help=".npy embeddings of B (the one compared)")
    cmp.add_argument("--labels-a", type=Path, help=".npy labels of A (with --labels-b: per class)")
    cmp.add_argument("--labels-b", type=Path, help=".npy labels of B")
    cmp.add_argument(
        "--drift", default="knn", choices=["knn", "mmd", "ks"], help="drift test (default knn)"
    )
    cmp.add_argument(
        "--divergence",
        default="fnn",
        choices=["fnn", "mst"],
        help="divergence estimate: nearest neighbour (default) or spanning tree",
    )
    cmp.add_argument("--alpha", type=float, default=0.05, help="drift test level (default 0.05)")
    cmp.add_argument("-k", "--k", type=int, default=None, help="knn drift: neighbours (default 10)")
    cmp.add_argument(
        "--n-components", type=int, default=5, help="density model components (default 5)"
    )
    cmp.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    cmp.add_argument("--index", default=None, choices=_INDEXES, help=_INDEX_HELP)
    cmp.add_argument("--n-jobs", type=int, default=None, help="threads (default: all CPUs)")
    _add_output(cmp)

    rep = sub.add_parser(
        "report",
        help="run every analysis and write report.html and report.json",
        description="Run every analysis (coverage, duplicates, outliers, label errors, "
        "familiarity, sufficiency, bias, saliency) on a dataset and write a self-contained "
        "report.html plus report.json. With no data arguments it runs on scikit-learn's 8x8 "
        "digits, training a small CNN on the CPU.",
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
    rep.add_argument(
        "--target",
        dest="targets",
        type=float,
        action="append",
        help="accuracy to size the training set for in the sufficiency section (repeatable, "
        "e.g. --target 0.9 --target 0.95)",
    )
    rep.add_argument(
        "--random-state",
        "--seed",
        dest="random_state",
        type=int,
        default=0,
        help="seed of the slice, splits and training (--seed is the old name)",
    )
    rep.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _run_report(args: argparse.Namespace) -> int:
    from .report import build_report
    from .report._sources import load_inputs

    if args.embeddings is None and any(
        p is not None for p in (args.labels, args.predictions, args.tags)
    ):
        raise ValueError("--labels, --predictions and --tags go with --embeddings.")
    for option in ("embeddings", "labels", "predictions", "tags"):
        _check_input_file(getattr(args, option), f"--{option}")
    _refuse_inputs_in_outputs(args)
    inputs = load_inputs(
        dataset=args.dataset,
        images=args.images,
        embeddings=args.embeddings,
        labels=args.labels,
        predictions=args.predictions,
        tags=args.tags,
        limit=args.limit,
        seed=args.random_state,
        progress=not args.no_progress,
    )
    if args.targets:
        from ._validation import check_targets

        inputs.sufficiency_targets = tuple(
            check_targets(args.targets, bounded=True, name="--target").tolist()
        )
    html_path, json_path = build_report(inputs, args.out, progress=not args.no_progress)
    print(f"wrote {html_path} and {json_path}")
    return 0


def _refuse_inputs_in_outputs(args: argparse.Namespace) -> None:
    """The report writes embeddings.npy and the other REPORT_FILES in --out: none of them may
    be an input file (re-running a report on its own saved embeddings with --limit would
    cut them down)."""
    from .report._pipeline import REPORT_FILES, check_out_dir

    out = Path(args.out)
    check_out_dir(out)
    for flag in ("embeddings", "labels", "predictions", "tags"):
        given = getattr(args, flag)
        if given is None:
            continue
        for name in REPORT_FILES:
            if (out / name).exists() and Path(given).exists() and (out / name).samefile(given):
                raise FileExistsError(
                    f"--{flag} {given} is the file the report writes as {out / name}; "
                    "choose another --out folder (or copy the input elsewhere first)."
                )


def _load(
    args: argparse.Namespace,
) -> tuple[str, NDArray[Any], NDArray[Any] | None, NDArray[Any] | None]:
    """(name, embeddings, labels, images or None)."""
    if args.embeddings is not None:
        x = read_npy(args.embeddings, "--embeddings")
        labels = getattr(args, "labels", None)  # `graph` takes none
        y = None if labels is None else read_npy(labels, "--labels")
        return str(args.embeddings), x, y, None
    if getattr(args, "labels", None) is not None:
        raise ValueError(
            "--labels goes with --embeddings (or --graph); the embedded dataset has labels."
        )
    from .datasets import load_digits

    ds = load_digits()
    return (
        f"{ds.name} ({len(ds.labels)} real 8x8 images, scikit-learn)",
        ds.flat(),
        ds.labels,
        ds.images,
    )


def _load_source(
    args: argparse.Namespace,
) -> tuple[str, Any, int, NDArray[Any] | None, NDArray[Any] | None]:
    """(name, embeddings or NeighborGraph, n_samples, labels, images) of an analysis command.

    Labels are checked for length here, so a wrong file is named in the error.
    """
    if args.graph is None:
        name, x, y, images = _load(args)
        if args.embeddings is not None:
            x = check_embeddings(x, name=f"--embeddings {args.embeddings}")
        n = int(x.shape[0])
        data: Any = x
    else:
        from .graph import NeighborGraph

        data = NeighborGraph.load(args.graph)
        n = data.n_samples
        name = f"{args.graph} (saved graph, k={data.k}, {n} samples)"
        y = None if args.labels is None else read_npy(args.labels, "--labels")
        images = None
    if y is not None:
        check_class_labels(y, n, name=f"--labels {args.labels}" if args.labels else "labels")
    return name, data, n, y, images


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


def _label(y: NDArray[Any] | None, i: int) -> str:
    return "-" if y is None else str(y[i])


def _check_output_file(path: Path | None, option: str) -> None:
    """Before any analysis runs: `path` can be written as a file.

    A missing parent folder is fine (:func:`_write_json` creates it, as ``report --out``
    creates its folder); a path that is a folder, or below a file, is an error.
    """
    if path is None:
        return
    if path.is_dir():
        raise IsADirectoryError(
            f"{option} {path} is a folder; give a file path, e.g. {path / 'results.json'}."
        )
    ancestor = path.parent
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NotADirectoryError(
            f"{option} {path}: {ancestor} is a file, not a folder, so nothing can be written "
            "below it; choose another path."
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{option} {path}: no permission to write in {ancestor}; choose another folder."
        )


def _check_input_file(path: Path | None, option: str) -> None:
    """An input file the user named exists (the same message as for ``.npy`` inputs)."""
    if path is None or path.is_file():
        return
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path} is a folder; give a file.")
    raise FileNotFoundError(f"{option} {path}: no such file.")


def _write_json(path: Path | None, obj: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)  # checked by _check_output_file
        save_json(path, obj)  # atomic: a temporary file renamed into place
        print(f"\nwrote {path}")


def _run_coverage(args: argparse.Namespace) -> int:
    name, x, y, images = _load(args)
    res = coverage(
        x,
        args.k,
        radius_type=args.radius_type,
        percent=args.percent,
        labels=y,
        normalize=args.normalize,
        index="exact" if args.index is None else args.index,
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
    _write_json(args.json, res.to_dict())
    return 0


def _run_duplicates(args: argparse.Namespace) -> int:
    from .duplicates import duplicates

    name, data, n, y, images = _load_source(args)
    splits = None
    if args.splits is not None:
        splits = read_npy(args.splits, "--splits")
        check_class_labels(splits, n, name=f"--splits {args.splits}", what="split name")
    res = duplicates(
        data,
        threshold=args.threshold,
        splits=splits,
        k=args.k,
        index=args.index,
        n_jobs=args.n_jobs,
    )
    groups = [*(("exact", g) for g in res.exact), *(("near", g) for g in res.near)]
    print(f"datagauge duplicates: {name}")
    print(
        f"k={res.k}, threshold {res.threshold:.4g}: {len(res.exact)} exact groups "
        f"({sum(g.size for g in res.exact)} images), {len(res.near)} near-duplicate groups "
        f"({sum(g.size for g in res.near)} images)"
    )
    if splits is not None:
        crossing = ", ".join(f"{a}/{b}: {c}" for (a, b), c in res.leak_counts.items())
        print(f"leaks: {len(res.leaks)} groups cross splits ({crossing or 'one split only'})")
    top = groups[: max(args.top, 0)]
    if top:
        print("\nGroups (exact first, then near; largest first):")
        print(f"{'rank':>4}  {'kind':<5}  {'size':>5}  {'labels':<12}  members")
        for rank, (kind, g) in enumerate(top, 1):
            labels = ",".join(sorted({_label(y, int(i)) for i in g}))
            members = " ".join(str(int(i)) for i in g[:10]) + (" ..." if g.size > 10 else "")
            leak = ""
            if splits is not None and np.unique(splits[g]).size > 1:
                leak = "  (leak: " + ",".join(sorted(map(str, np.unique(splits[g])))) + ")"
            print(f"{rank:>4}  {kind:<5}  {g.size:>5}  {labels:<12}  {members}{leak}")
        if images is not None:
            pair = [int(i) for _, g in top[:3] for i in g[:2]]
            print("\nFirst two images of the first groups:\n" + _thumbnails(images, pair))
    else:
        print("\nNo duplicate groups.")
    _write_json(args.json, res.to_dict())
    return 0


def _run_outliers(args: argparse.Namespace) -> int:
    from .outliers import outliers

    if args.graph is not None:
        options = (("--index", args.index), ("--n-jobs", args.n_jobs))
        given = [opt for opt, value in options if value is not None]
        if given:
            raise ValueError(
                f"{' and '.join(given)} set{'s' if len(given) == 1 else ''} up the k-NN "
                "search, but with --graph the saved graph's neighbours are used and nothing "
                f"is searched: drop {' and '.join(given)}, or pass --embeddings instead of "
                "--graph to search with them."
            )
    name, data, n, y, images = _load_source(args)
    res = outliers(
        data,
        method=args.method,
        k=args.k,
        contamination=args.contamination,
        threshold=args.threshold,
        index=args.index,
        n_jobs=args.n_jobs,
    )
    m = res.flagged.size
    print(f"datagauge outliers: {name}")
    print(
        f"method {res.method}, k={res.k}, threshold {res.threshold:.4g}: {m} of {n} images "
        f"flagged ({100 * m / n:.1f}%)"
    )
    top = res.indices[: max(args.top, 0)]
    flagged = set(res.flagged.tolist())
    print("\nMost outlying images:")
    print(f"{'rank':>4}  {'index':>7}  {'label':>6}  {'score':>9}  flagged")
    for rank, i in enumerate(top, 1):
        mark = "yes" if int(i) in flagged else "no"
        print(f"{rank:>4}  {i:>7}  {_label(y, int(i)):>6}  {res.scores[i]:>9.4f}  {mark}")
    if images is not None and top.size:
        print("\n" + _thumbnails(images, [int(i) for i in top]))
    _write_json(args.json, res.to_dict())
    return 0


def _run_label_errors(args: argparse.Namespace) -> int:
    from .label_errors import label_errors

    name, data, n, y, images = _load_source(args)
    if y is None:
        raise ValueError(
            "label-errors needs labels: pass --labels y.npy (one label per row of the "
            "embeddings or graph)."
        )
    method = args.method
    if method is None:  # the distance ratio needs the embeddings; a graph serves the vote
        method = "knn_vote" if args.graph is not None else "distance_ratio"
    res = label_errors(data, y, k=args.k, method=method, index=args.index, n_jobs=args.n_jobs)
    m = res.flagged.size
    print(f"datagauge label-errors: {name}")
    print(f"method {res.method}, k={res.k}: {m} of {n} images flagged ({100 * m / n:.1f}%)")
    print("(suggested: the label the neighbours point to; - where they suggest none)")
    top = res.indices[: max(args.top, 0)]
    flagged = set(res.flagged.tolist())
    print("\nMost suspect labels:")
    print(f"{'rank':>4}  {'index':>7}  {'label':>6}  {'suggested':>9}  {'score':>9}  flagged")
    for rank, i in enumerate(top, 1):
        mark = "yes" if int(i) in flagged else "no"
        other = "-" if res.suggested[i] == res.labels[i] else str(res.suggested[i])
        print(f"{rank:>4}  {i:>7}  {res.labels[i]!s:>6}  {other:>9}  {res.scores[i]:>9.4f}  {mark}")
    if images is not None and top.size:
        print("\n" + _thumbnails(images, [int(i) for i in top]))
    _write_json(args.json, res.to_dict())
    return 0


def _run_graph(args: argparse.Namespace) -> int:
    from .graph import check_save_target, neighbor_graph

    target: Path = args.out
    check_save_target(target, args.overwrite)  # before the search, not after it
    name, x, _, _ = _load(args)
    graph = neighbor_graph(x, args.k, index=args.index or "exact", n_jobs=args.n_jobs)
    graph.save(target, overwrite=args.overwrite)
    copies = int(np.count_nonzero(graph.duplicate_of != np.arange(graph.n_samples)))
    recall = "" if graph.recall is None else f", recall@k {graph.recall:.3f}"
    print(f"datagauge graph: {name}")
    print(
        f"wrote {target}: {graph.n_samples} samples, k={graph.k} neighbours "
        f"({graph.engine}{recall}), {copies} rows exact copies of earlier ones"
    )
    print(f"use it with: datagauge outliers --graph {target}  (or duplicates, label-errors)")
    return 0


def _compare_inputs(
    args: argparse.Namespace,
) -> tuple[str, NDArray[Any], NDArray[Any], NDArray[Any] | None, NDArray[Any] | None]:
    """(description, A, B, labels of A, labels of B) of ``datagauge compare``."""
    if (args.a is None) != (args.b is None):
        raise ValueError("compare takes two .npy files, A and B (or none for the digits demo).")
    if (args.labels_a is None) != (args.labels_b is None):
        raise ValueError(
            "--labels-a and --labels-b go together (the per-class gap needs both datasets' "
            "labels); pass both or neither."
        )
    if args.a is None:
        if args.labels_a is not None:
            raise ValueError("--labels-a/--labels-b go with the files A and B.")
        from .datasets import load_digits

        ds = load_digits()
        x, y = ds.flat(), ds.labels
        half = np.random.default_rng(args.random_state).permutation(x.shape[0])
        first, second = np.sort(half[: x.shape[0] // 2]), np.sort(half[x.shape[0] // 2 :])
        name = f"two random halves of {ds.name} (seed {args.random_state})"
        return name, x[first], x[second], y[first], y[second]
    a = check_embeddings(read_npy(args.a, "A"), name=f"A {args.a}")
    b = check_embeddings(read_npy(args.b, "B"), name=f"B {args.b}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"A {args.a} has {a.shape[1]} features but B {args.b} has {b.shape[1]}; compare "
            "embeddings from the same model and layer (the same number of columns)."
        )
    ya = yb = None
    if args.labels_a is not None:
        ya, yb = read_npy(args.labels_a, "--labels-a"), read_npy(args.labels_b, "--labels-b")
        check_class_labels(ya, a.shape[0], name=f"--labels-a {args.labels_a}")
        check_class_labels(yb, b.shape[0], name=f"--labels-b {args.labels_b}")
    return f"A {args.a} vs B {args.b}", a, b, ya, yb


def _run_compare(args: argparse.Namespace) -> int:
    from .divergence import divergence
    from .drift import drift
    from .familiarity import compare_datasets

    name, a, b, ya, yb = _compare_inputs(args)
    gap = compare_datasets(
        a,
        b,
        fit_labels=ya,
        predict_labels=yb,
        n_components=args.n_components,
        random_state=args.random_state,
        n_jobs=args.n_jobs,
    )
    engine = args.index or "exact"
    div = divergence(a, b, method=args.divergence, index=engine, n_jobs=args.n_jobs)
    test = drift(
        a,
        b,
        method=args.drift,
        alpha=args.alpha,
        k=args.k,
        random_state=args.random_state,
        index=args.index if args.drift == "knn" else None,  # --index also sets the divergence's
        n_jobs=args.n_jobs,
    )
    print(f"datagauge compare: {name}")
    print(f"A: {a.shape[0]} samples, B: {b.shape[0]} samples, {a.shape[1]} features")
    print(
        f"\nfamiliarity gap: likelihood ratio L(A->B) = {gap.likelihood_ratio:.4g} "
        f"({gap.band}); {100 * gap.fraction_below_p5:.1f}% of B below A's 5th percentile"
    )
    print(f"  {gap.note}")
    print(
        f"divergence ({div.method}): {div.divergence:.4f} (0: same distribution, 1: separate); "
        f"{div.errors} cross-sample {'neighbours' if div.method == 'fnn' else 'edges'}"
    )
    verdict = "drift" if test.drifted else "no drift"
    print(
        f"drift test ({test.method}): {verdict} at alpha {test.alpha:g}, p = {test.p_value:.4g}, "
        f"statistic {test.statistic:.4g}"
    )
    top = max(args.top, 0)
    if test.samples is not None and test.sample_scores is not None and top:
        shown = ", ".join(
            f"{int(i)} ({test.sample_scores[i]:+.3f})" for i in test.samples[:top].tolist()
        )
        print(f"  rows of B most unlike A (score): {shown}")
    if test.features is not None and test.feature_p_values is not None and top:
        shown = ", ".join(
            f"{int(j)} (p {test.feature_p_values[j]:.2g})" for j in test.features[:top].tolist()
        )
        print(f"  features that drift (p): {shown if shown else 'none'}")
    if gap.per_class is not None:
        pc = gap.per_class
        print("\nper class (class c of B against a model of class c of A):")
        print(f"{'class':>8}  {'n A':>6}  {'n B':>6}  {'L(A->B)':>9}  band")
        for i, label in enumerate(pc.labels.tolist()):
            ratio = f"{pc.likelihood_ratio[i]:.4g}" if pc.compared[i] else "-"
            print(f"{label!s:>8}  {pc.n_fit[i]:>6}  {pc.n_predict[i]:>6}  {ratio:>9}  {pc.band[i]}")
    _write_json(
        args.json,
        {"data": name, "gap": gap.to_dict(), "divergence": div.to_dict(), "drift": test.to_dict()},
    )
    return 0


_COMMANDS = {
    "coverage": _run_coverage,
    "duplicates": _run_duplicates,
    "outliers": _run_outliers,
    "label-errors": _run_label_errors,
    "graph": _run_graph,
    "compare": _run_compare,
    "report": _run_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    run = _COMMANDS.get(args.command)
    if run is None:  # pragma: no cover - argparse checks the choices
        parser.error(f"unknown command {args.command!r}")
    try:
        _check_output_file(getattr(args, "json", None), "--json")
        return run(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"datagauge: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
