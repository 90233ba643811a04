"""The benchmarks' standard-library atomic write (``benchmarks/_harness.write_text``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _harness


def test_write_text_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "result.json"
    _harness.write_text(target, "first\n")
    _harness.write_text(str(target), "sécond\n")
    assert target.read_text(encoding="utf-8") == "sécond\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_write_text_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "result.md"
    _harness.write_text(target, "kept")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(_harness.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        _harness.write_text(target, "lost")
    assert target.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["result.md"]
