"""datagauge: what is wrong with an image dataset, from its embeddings.

Importing datagauge loads neither torch nor FAISS; they load when an analysis needs them.
"""

from . import tagging
from ._results import ClassCoverage, CoverageResult
from .bias import BiasReport, adjust_pvalues, find_biases
from .concept_bias import ConceptBias, ConceptBiasResult
from .coverage import coverage, naive_radius
from .neighbors import HNSW, IVF, Exact, kneighbors, merge_neighbors, recall_at_k

__version__ = "0.1.0"

__all__ = [
    "HNSW",
    "IVF",
    "BiasReport",
    "ClassCoverage",
    "ConceptBias",
    "ConceptBiasResult",
    "CoverageResult",
    "Exact",
    "__version__",
    "adjust_pvalues",
    "coverage",
    "find_biases",
    "kneighbors",
    "merge_neighbors",
    "naive_radius",
    "recall_at_k",
    "tagging",
]
