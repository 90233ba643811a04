"""datagauge: what is wrong with an image dataset, from its embeddings.

Importing datagauge loads neither torch nor FAISS; they load when an analysis needs them.
"""

from . import tagging
from ._results import (
    BayesErrorResult,
    ClassCoverage,
    CoverageResult,
    DivergenceResult,
    DriftResult,
    DuplicateResult,
    EmbeddingResult,
    LabelErrorResult,
    OutlierResult,
    SpanningTree,
)
from ._validation import NotFittedError
from ._warnings import DatagaugeWarning, ExtrapolationWarning, PoorFitWarning
from .bayes_error import bayes_error
from .bias import BiasReport, adjust_pvalues, find_biases
from .concept_bias import ConceptBias, ConceptBiasResult
from .coverage import coverage, naive_radius
from .divergence import divergence
from .drift import drift
from .duplicates import duplicates
from .embeddings import SALIENCY_METHODS, embed, saliency, save_saliency
from .familiarity import (
    ClassComparison,
    ClassFamiliarity,
    ConvergenceWarning,
    DatasetComparison,
    DensityStrategy,
    Familiarity,
    FamiliarityResult,
    compare_datasets,
    familiarity,
)
from .graph import NeighborGraph, neighbor_graph
from .label_errors import label_errors
from .mst import minimum_spanning_tree
from .neighbors import HNSW, IVF, Exact, kneighbors, merge_neighbors, recall_at_k
from .outliers import outliers
from .sufficiency import (
    EvaluationStrategy,
    LearningCurve,
    ResetStrategy,
    SizeEstimate,
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
    "SALIENCY_METHODS",
    "BayesErrorResult",
    "BiasReport",
    "ClassComparison",
    "ClassCoverage",
    "ClassFamiliarity",
    "ConceptBias",
    "ConceptBiasResult",
    "ConvergenceWarning",
    "CoverageResult",
    "DatagaugeWarning",
    "DatasetComparison",
    "DensityStrategy",
    "DivergenceResult",
    "DriftResult",
    "DuplicateResult",
    "EmbeddingResult",
    "EvaluationStrategy",
    "Exact",
    "ExtrapolationWarning",
    "Familiarity",
    "FamiliarityResult",
    "LabelErrorResult",
    "LearningCurve",
    "NeighborGraph",
    "NotFittedError",
    "OutlierResult",
    "PoorFitWarning",
    "ResetStrategy",
    "SizeEstimate",
    "SpanningTree",
    "Sufficiency",
    "SufficiencyResult",
    "TrainingStrategy",
    "__version__",
    "adjust_pvalues",
    "bayes_error",
    "compare_datasets",
    "coverage",
    "divergence",
    "drift",
    "duplicates",
    "embed",
    "familiarity",
    "find_biases",
    "fit_learning_curve",
    "geometric_steps",
    "kneighbors",
    "label_errors",
    "merge_neighbors",
    "minimum_spanning_tree",
    "naive_radius",
    "neighbor_graph",
    "outliers",
    "recall_at_k",
    "saliency",
    "save_saliency",
    "tagging",
]
