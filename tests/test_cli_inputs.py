"""The command line's input and output files: clear errors, checked before any analysis."""

from __future__ import annotations

import json

import numpy as np
import pytest

from datagauge import cli
from datagauge.cli import main


@pytest.fixture
def embeddings(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).random((60, 3)).astype(np.float32))
    return path


def _never(*args, **kwargs):  # stands in for an analysis that must not run
    raise AssertionError("the analysis ran before the output path was checked")


def test_json_in_a_missing_folder_is_created(tmp_path, embeddings, capsys):
    out = tmp_path / "no" / "such" / "dir" / "o.json"
    assert main(["coverage", "--embeddings", str(embeddings), "-k", "3", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["k"] == 3
    assert f"wrote {out}" in capsys.readouterr().out


def test_json_below_a_file_fails_before_the_analysis(tmp_path, embeddings, capsys, monkeypatch):
    monkeypatch.setattr(cli, "coverage", _never)
    out = embeddings / "sub" / "o.json"
    assert main(["coverage", "--embeddings", str(embeddings), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--json {out}: {embeddings} is a file, not a folder" in err
    assert "Errno" not in err
    assert ".tmp" not in err


def test_json_that_is_a_folder_fails_before_the_analysis(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "coverage", _never)
    assert main(["coverage", "--json", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--json {tmp_path} is a folder; give a file path" in err


@pytest.mark.parametrize("command", ["duplicates", "outliers", "label-errors"])
def test_every_json_option_is_checked(tmp_path, embeddings, capsys, command):
    out = embeddings / "o.json"
    assert main([command, "--json", str(out)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--tags", "--labels", "--predictions"])
def test_report_missing_input_file(tmp_path, embeddings, capsys, option):
    missing = tmp_path / "nope.csv"
    extra = ["--labels", str(embeddings)] if option == "--predictions" else []
    argv = ["report", "--embeddings", str(embeddings), *extra, option, str(missing)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{option} {missing}: no such file." in err
    assert "Errno" not in err
    assert not (tmp_path / "out").exists()


def test_report_missing_embeddings(tmp_path, capsys):
    missing = tmp_path / "nope.npy"
    assert main(["report", "--embeddings", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert f"--embeddings {missing}: no such file." in capsys.readouterr().err


@pytest.mark.parametrize("text", ["0.1,0.2\n0.3,0.4\n", "hello\n", "a,b\n1,2\n"])
def test_embeddings_csv_says_which_format_is_read(tmp_path, capsys, text):
    path = tmp_path / "x.csv"
    path.write_text(text)
    assert main(["coverage", "--embeddings", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--embeddings {path} is not a NumPy .npy file" in err
    assert "np.save(path, array)" in err
    assert "np.loadtxt(" in err
    assert "pickled" not in err


def test_labels_text_file_says_which_format_is_read(tmp_path, embeddings, capsys):
    path = tmp_path / "y.txt"
    path.write_text("a\nb\n")
    assert main(["coverage", "--embeddings", str(embeddings), "--labels", str(path)]) == 2
    assert f"--labels {path} is not a NumPy .npy file" in capsys.readouterr().err


def test_object_npy_keeps_its_own_message(tmp_path, capsys):
    path = tmp_path / "x.npy"
    np.save(path, np.array([[1, "a"]], dtype=object), allow_pickle=True)
    assert main(["coverage", "--embeddings", str(path)]) == 2
    assert "is not a plain .npy array" in capsys.readouterr().err


def test_embeddings_folder(tmp_path, capsys):
    assert main(["coverage", "--embeddings", str(tmp_path)]) == 2
    assert f"--embeddings {tmp_path} is a folder; give a .npy file." in capsys.readouterr().err
