"""datagauge: what is wrong with an image dataset, from its embeddings.

Importing datagauge loads neither torch nor FAISS; they load when an analysis needs them.
"""

from ._results import ClassCoverage, CoverageResult
from ._warnings import DatagaugeWarning, ExtrapolationWarning, PoorFitWarning
from .coverage import coverage, naive_radius
from .neighbors import HNSW, IVF, Exact, kneighbors, merge_neighbors, recall_at_k
from .sufficiency import (
    EvaluationStrategy,
    LearningCurve,
    ResetStrategy,
    Sufficiency,
    SufficiencyResult,
    TrainingStrategy,
    fit_learning_curve,
    geometric_steps,
)

__version__ = "0.1.0"

__all__ = [
    "HNSW",
    "IVF",
    "ClassCoverage",
    "CoverageResult",
    "DatagaugeWarning",
    "EvaluationStrategy",
    "Exact",
    "ExtrapolationWarning",
    "LearningCurve",
    "PoorFitWarning",
    "ResetStrategy",
    "Sufficiency",
    "SufficiencyResult",
    "TrainingStrategy",
    "__version__",
    "coverage",
    "fit_learning_curve",
    "geometric_steps",
    "kneighbors",
    "merge_neighbors",
    "naive_radius",
    "recall_at_k",
]
