"""Package-level behaviour: a light, fast import and a consistent public namespace."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import datagauge

HEAVY = (
    "torch",
    "faiss",
    "dask",
    "distributed",
    "scipy",
    "pandas",
    "sklearn",
    "matplotlib",
    "umap",
)

_PROBE = """
import json, sys
import datagauge
print(json.dumps({"loaded": sorted(m for m in %r if m in sys.modules)}))
"""


def _import_in_fresh_interpreter() -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE % (HEAVY,)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_dependency():
    # How long the import takes is measured in benchmarks/bench_import.py, not here.
    loaded = _import_in_fresh_interpreter()["loaded"]
    assert loaded == [], f"importing datagauge loaded {loaded}"


def test_all_names_exist():
    assert len(set(datagauge.__all__)) == len(datagauge.__all__)
    for name in datagauge.__all__:
        assert hasattr(datagauge, name), name


def test_public_api_is_exported():
    for name in (
        "coverage",
        "kneighbors",
        "merge_neighbors",
        "recall_at_k",
        "naive_radius",
        "Exact",
        "HNSW",
        "IVF",
        "CoverageResult",
        "ClassCoverage",
        "Familiarity",
        "familiarity",
        "compare_datasets",
        "DensityStrategy",
        "FamiliarityResult",
        "ClassFamiliarity",
        "DatasetComparison",
        "ClassComparison",
        "NotFittedError",
        "embed",
        "saliency",
        "save_saliency",
        "EmbeddingResult",
        "Sufficiency",
        "SufficiencyResult",
        "LearningCurve",
        "fit_learning_curve",
        "geometric_steps",
        "TrainingStrategy",
        "EvaluationStrategy",
        "ResetStrategy",
        "DatagaugeWarning",
        "PoorFitWarning",
        "ExtrapolationWarning",
    ):
        assert name in datagauge.__all__


def test_version_matches_metadata():
    assert datagauge.__version__ == importlib.metadata.version("datagauge")


def test_core_module_has_docstrings():
    from datagauge import _core

    for obj in (
        _core.KDTree,
        _core.KDTree.query,
        _core.KDTree.self_query,
        _core.merge_topk,
        _core.refine_candidates,
        _core.coverage_adaptive,
        _core.coverage_threshold,
        _core.GmmStats,
        _core.gmm_accumulate,
        _core.gmm_accumulate_resp,
        _core.gmm_score,
        _core.gmm_m_step,
    ):
        assert obj.__doc__, obj
        assert len(obj.__doc__.strip()) > 20, obj
