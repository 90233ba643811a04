"""The command line: the main job on the embedded dataset, and user files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import datagauge
from datagauge.cli import main


def test_default_dataset_prints_least_covered_table(tmp_path, capsys):
    out_json = tmp_path / "cov.json"
    assert main(["coverage", "--top", "4", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "digits (1797 real 8x8 images" in text
    assert "17 of 1797 images uncovered" in text  # adaptive, percent=0.01 -> int(17.97) = 17
    table = text.split("Least covered images")[1].split("\n\n")[0].splitlines()[2:]
    assert len(table) == 4
    saved = json.loads(out_json.read_text())
    # The table lists the saved uncovered indices, most isolated first, with their radii.
    for row, idx in zip(table, saved["uncovered_indices"][:4], strict=True):
        _rank, index, _label, radius = row.split()
        assert int(index) == idx
        assert float(radius) == pytest.approx(saved["critical_value_radii"][idx], abs=1e-4)
    radii = np.array([saved["critical_value_radii"][i] for i in saved["uncovered_indices"]])
    assert np.all(np.diff(radii) <= 0)
    assert len(saved["per_class"]["labels"]) == 10
    assert "Per class:" in text


def test_user_embeddings_and_labels(tmp_path, capsys):
    rng = np.random.default_rng(3)
    x = rng.random((300, 5)).astype(np.float32)
    y = np.arange(300) % 2
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    code = main(
        ["coverage", "--embeddings", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "3 of 300 images uncovered" in text


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.ones(10))
    assert main(["coverage", "--embeddings", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "must be 2-D" in err
    assert "Traceback" not in err
    assert main(["coverage", "--labels", str(tmp_path / "x.npy")]) == 2
    assert "--labels goes with --embeddings" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "datagauge", "coverage", "--top", "1", "--radius-type", "naive"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "naive radius" in proc.stdout


@pytest.mark.parametrize("index", ["brute", "kdtree"])
def test_index_choice_gives_the_same_table(tmp_path, capsys, index):
    x = np.random.default_rng(4).random((400, 20)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / f"{index}.json"
    args = ["coverage", "--embeddings", str(tmp_path / "x.npy"), "--json", str(out)]
    assert main([*args, "--index", index]) == 0
    expected = datagauge.coverage(x, 20)
    got = json.loads(out.read_text())
    assert got["uncovered_indices"] == expected.uncovered_indices.tolist()
    assert "4 of 400 images uncovered" in capsys.readouterr().out
