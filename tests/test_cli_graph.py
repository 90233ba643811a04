"""The command line's graph analyses: duplicates, outliers, label-errors and graph."""

from __future__ import annotations

import json

import numpy as np
import pytest

import datagauge
from datagauge.cli import main
from datagauge.duplicates import duplicates
from datagauge.label_errors import label_errors
from datagauge.outliers import outliers


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two clusters with an exact copy, a near copy across splits, a far point and a
    flipped label, saved as .npy files."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0, 1, (150, 6)), rng.normal(8, 1, (150, 6))])
    x = x.astype(np.float32)
    x[1] = x[0]  # exact copy
    x[3] = x[2] + 1e-4  # near copy
    x[299] = 40.0  # far from everything
    y = np.repeat(np.array(["cat", "dog"]), 150)
    y[5] = "dog"  # a cat labelled dog
    splits = np.where(np.arange(300) % 2 == 0, "train", "test")  # rows 2 and 3 cross
    folder = tmp_path_factory.mktemp("cli")
    paths = {}
    for name, arr in [("x", x), ("y", y), ("splits", splits)]:
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], arr)
    paths["folder"] = folder
    return paths


def _table(text: str, title: str) -> list[str]:
    return text.split(title)[1].split("\n\n")[0].splitlines()[2:]


def test_duplicates_on_files(data, tmp_path, capsys):
    out = tmp_path / "dup.json"
    argv = ["duplicates", "--embeddings", str(data["x"]), "--splits", str(data["splits"])]
    assert main([*argv, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 exact groups (2 images), 1 near-duplicate groups (2 images)" in text
    assert "leaks: 2 groups cross splits (test/train: 2)" in text
    rows = _table(text, "Groups (exact first")
    assert rows[0].split()[:5] == ["1", "exact", "2", "-", "0"]
    assert "(leak: test,train)" in rows[1]
    saved = json.loads(out.read_text())
    expected = duplicates(np.load(data["x"]), splits=np.load(data["splits"]))
    assert saved == json.loads(json.dumps(expected.to_dict()))
    assert saved["exact"] == [[0, 1]]
    assert saved["near"] == [[2, 3]]
    assert saved["leak_counts"] == [{"splits": ["test", "train"], "groups": 2}]
    assert [p.name for p in tmp_path.iterdir()] == ["dup.json"]  # no temporary file left


def test_outliers_on_files(data, tmp_path, capsys):
    out = tmp_path / "out.json"
    argv = ["outliers", "--embeddings", str(data["x"]), "--labels", str(data["y"])]
    assert main([*argv, "--top", "3", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "method lof, k=20, threshold 1.5:" in text
    rows = _table(text, "Most outlying images")
    assert len(rows) == 3
    rank, index, label, score, flagged = rows[0].split()
    assert (rank, index, label, flagged) == ("1", "299", "dog", "yes")
    saved = json.loads(out.read_text())
    expected = outliers(np.load(data["x"]))
    assert saved["indices"] == expected.indices.tolist()
    assert saved["flagged"] == expected.flagged.tolist()
    assert float(score) == pytest.approx(saved["scores"][299], abs=1e-4)


def test_outliers_contamination_and_method(data, tmp_path, capsys):
    out = tmp_path / "o.json"
    argv = ["outliers", "--embeddings", str(data["x"]), "--method", "knn_distance"]
    assert main([*argv, "--contamination", "0.05", "-k", "5", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["method"] == "knn_distance"
    assert saved["k"] == 5
    assert len(saved["flagged"]) == 15  # 5% of 300
    assert "15 of 300 images flagged (5.0%)" in capsys.readouterr().out


def test_label_errors_on_files(data, tmp_path, capsys):
    out = tmp_path / "le.json"
    argv = ["label-errors", "--embeddings", str(data["x"]), "--labels", str(data["y"])]
    assert main([*argv, "--top", "2", "-k", "20", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "method distance_ratio, k=20:" in text
    rank, index, label, suggested, _score, flagged = _table(text, "Most suspect labels")[0].split()
    assert (rank, index, label, suggested, flagged) == ("1", "5", "dog", "cat", "yes")
    saved = json.loads(out.read_text())
    expected = label_errors(np.load(data["x"]), np.load(data["y"]), k=20)
    assert saved == json.loads(json.dumps(expected.to_dict()))
    assert saved["suggested"][5] == "cat"


def test_graph_is_built_once_and_reused(data, tmp_path, capsys):
    folder = tmp_path / "g"
    argv = ["graph", "--embeddings", str(data["x"]), "--k", "30", "--out", str(folder)]
    assert main(argv) == 0
    assert f"wrote {folder}: 300 samples, k=30 neighbours (exact)" in capsys.readouterr().out
    x = np.load(data["x"])
    graph = datagauge.NeighborGraph.load(folder, embeddings=x)
    expected = datagauge.neighbor_graph(x, k=30)
    np.testing.assert_array_equal(graph.indices, expected.indices)
    np.testing.assert_array_equal(graph.distances, expected.distances)
    # The analyses read the saved graph and answer as on the embeddings.
    for cmd, extra in [
        ("outliers", []),
        ("duplicates", ["--splits", str(data["splits"])]),
        ("label-errors", ["--labels", str(data["y"]), "-k", "30"]),
    ]:
        from_graph, from_x = tmp_path / f"{cmd}-g.json", tmp_path / f"{cmd}-x.json"
        assert main([cmd, "--graph", str(folder), *extra, "--json", str(from_graph)]) == 0
        if cmd == "label-errors":  # with a graph the default method is the neighbour vote
            extra = [*extra, "--method", "knn_vote"]
        assert main([cmd, "--embeddings", str(data["x"]), *extra, "--json", str(from_x)]) == 0
        assert json.loads(from_graph.read_text()) == json.loads(from_x.read_text()), cmd
    assert "saved graph, k=30, 300 samples" in capsys.readouterr().out


def test_graph_refuses_to_overwrite(data, tmp_path, capsys):
    folder = tmp_path / "g"
    base = ["graph", "--embeddings", str(data["x"])]
    assert main([*base, "-k", "5", "--out", str(folder)]) == 0
    capsys.readouterr()
    assert main([*base, "-k", "5", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "already exists; pass overwrite=True (--overwrite)" in err
    assert "Traceback" not in err
    assert main([*base, "-k", "7", "--out", str(folder), "--overwrite"]) == 0
    assert datagauge.NeighborGraph.load(folder).k == 7
    # --overwrite replaces a saved graph, never another folder.
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main([*base, "-k", "5", "--out", str(other), "--overwrite"]) == 2
    assert "is not a saved graph" in capsys.readouterr().err
    assert (other / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("command", ["duplicates", "outliers", "label-errors", "graph"])
def test_default_dataset(command, tmp_path, capsys):
    extra = ["--out", str(tmp_path / "g")] if command == "graph" else ["--top", "2"]
    assert main([command, *extra]) == 0
    text = capsys.readouterr().out
    assert "digits (1797 real 8x8 images, scikit-learn)" in text
    if command in ("outliers", "label-errors"):
        assert "#" in text.split("\n\n")[-1]  # thumbnails of the table's images


def test_bad_input_is_a_clear_error_not_a_traceback(data, tmp_path, capsys):
    x, y, splits = (str(data[k]) for k in ("x", "y", "splits"))
    short = tmp_path / "short.npy"
    np.save(short, np.load(data["y"])[:50])
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array(["a", 1, None] * 100, dtype=object), allow_pickle=True)
    cases = [
        (["outliers", "--embeddings", str(tmp_path / "nope.npy")], "no such file"),
        (["duplicates", "--embeddings", x, "--splits", str(short)], "--splits"),
        (["label-errors", "--embeddings", x, "--labels", str(short)], "--labels"),
        (["outliers", "--embeddings", x, "--labels", str(short)], "has 50 entries"),
        (["duplicates", "--embeddings", x, "--splits", str(objects)], "not a plain .npy"),
        (["label-errors", "--embeddings", x], "label-errors needs labels"),
        (["label-errors", "--labels", y], "--labels goes with --embeddings"),
        (["outliers", "--graph", str(tmp_path)], "not a saved NeighborGraph"),
        (["outliers", "--embeddings", x, "-k", "300"], "must be less than the number"),
        (["duplicates", "--embeddings", x, "--threshold", "-1"], "threshold"),
        (["outliers", "--embeddings", x, "--contamination", "0.9"], "(0, 0.5]"),
        (["duplicates", "--embeddings", splits], "--embeddings"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
        assert "Traceback" not in err


def test_contamination_and_threshold_exclude_each_other(data, capsys):
    argv = ["outliers", "--embeddings", str(data["x"]), "--contamination", "0.1"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--threshold", "2"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_outliers_refuses_search_options_with_a_saved_graph(data, tmp_path, capsys):
    """With --graph nothing is searched: --index and --n-jobs were once silently ignored."""
    folder = tmp_path / "g"
    assert main(["graph", "--embeddings", str(data["x"]), "-k", "20", "--out", str(folder)]) == 0
    capsys.readouterr()
    for extra, named in [
        (["--index", "hnsw"], "--index sets"),
        (["--index", "exact"], "--index sets"),
        (["--n-jobs", "2"], "--n-jobs sets"),
        (["--index", "flat", "--n-jobs", "1"], "--index and --n-jobs set"),
    ]:
        assert main(["outliers", "--graph", str(folder), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert named in err, err
        assert "drop" in err
        assert "--embeddings" in err
        assert "Traceback" not in err
    # without them the graph is used, and with --embeddings --index still works
    assert main(["outliers", "--graph", str(folder), "--json", str(tmp_path / "g.json")]) == 0
    argv = ["outliers", "--embeddings", str(data["x"]), "--index", "exact"]
    assert main([*argv, "--json", str(tmp_path / "x.json")]) == 0
    assert json.loads((tmp_path / "g.json").read_text()) == json.loads(
        (tmp_path / "x.json").read_text()
    )
    assert main(["outliers", "--embeddings", str(data["x"]), "--index", "hnsw", "--top", "1"]) == 0


def test_index_with_a_saved_graph_is_refused_by_every_subcommand(data, tmp_path, capsys):
    """duplicates and label-errors read a saved graph's lists: an --index there searches
    nothing, and is an error (it was silently ignored), as for outliers."""
    folder = tmp_path / "g"
    assert main(["graph", "--embeddings", str(data["x"]), "-k", "20", "--out", str(folder)]) == 0
    capsys.readouterr()
    for cmd in (["duplicates"], ["label-errors", "--labels", str(data["y"]), "-k", "20"]):
        assert main([*cmd, "--graph", str(folder), "--index", "exact"]) == 2, cmd
        err = capsys.readouterr().err
        assert "nothing is searched" in err, err
        assert main([*cmd, "--graph", str(folder)]) == 0, cmd
        capsys.readouterr()


def test_compare_refuses_k_for_a_drift_test_without_neighbours(data, capsys):
    argv = ["compare", str(data["x"]), str(data["x"])]
    assert main([*argv, "--drift", "mmd", "-k", "5"]) == 2
    assert "k applies only to method='knn'" in capsys.readouterr().err
