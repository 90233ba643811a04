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


def test_compare_default_digits_halves_read_no_gap(tmp_path, capsys):
    out_json = tmp_path / "cmp.json"
    assert main(["compare", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "two random halves of digits (seed 0)" in text
    assert "(no significant gap)" in text
    saved = json.loads(out_json.read_text())
    assert saved["gap"]["band"] == "no significant gap"
    assert saved["divergence"]["divergence"] < 0.1
    assert saved["drift"]["method"] == "knn"
    assert not saved["drift"]["drifted"]
    assert len(saved["gap"]["per_class"]["labels"]) == 10  # the digits have labels


@pytest.mark.parametrize("test_method", ["knn", "mmd", "ks"])
def test_compare_files_finds_a_shift(tmp_path, capsys, test_method):
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(200, 4))
    b[:, 2] += 3.0
    np.save(tmp_path / "a.npy", a.astype(np.float32))
    np.save(tmp_path / "b.npy", b.astype(np.float32))
    out_json = tmp_path / "cmp.json"
    argv = ["compare", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--drift", test_method]
    assert main([*argv, "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "(huge gap)" in text
    assert "drift test (" + test_method + "): drift at alpha 0.05" in text
    saved = json.loads(out_json.read_text())
    # the numbers printed are those of the library
    want = datagauge.divergence(a, b)
    assert saved["divergence"]["errors"] == want.errors
    if test_method == "ks":
        assert "features that drift (p): 2 (" in text
        assert saved["drift"]["features"][0] == 2
    else:
        assert "rows of B most unlike A" in text


def test_compare_bad_input(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.zeros((20, 3), dtype=np.float32))
    np.save(tmp_path / "b.npy", np.zeros((20, 4), dtype=np.float32))
    np.save(tmp_path / "ya.npy", np.arange(19))
    a, b = str(tmp_path / "a.npy"), str(tmp_path / "b.npy")
    cases = [
        (["compare", a], "two .npy files"),
        (["compare", a, b], "has 3 features but B"),
        (["compare", a, a, "--labels-a", str(tmp_path / "ya.npy")], "go together"),
        (
            [
                "compare",
                a,
                a,
                "--labels-a",
                str(tmp_path / "ya.npy"),
                "--labels-b",
                str(tmp_path / "ya.npy"),
            ],
            "--labels-a",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "datagauge: error:" in err, (argv, err)
        assert message in err, (argv, err)
