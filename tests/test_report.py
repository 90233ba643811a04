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
