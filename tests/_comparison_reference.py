"""DataEval 1.1.4's recorded answers for the dataset comparisons (tests/data), and the
generator of the data they were recorded on (imported, not run: no DataEval at test time)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "comparison_dataeval.json").read_text())

_spec = importlib.util.spec_from_file_location(
    "make_comparison_reference", DATA / "make_comparison_reference.py"
)
if _spec is None or _spec.loader is None:  # pragma: no cover - the file ships with the tests
    raise ImportError("tests/data/make_comparison_reference.py is missing")
make_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_ref)
