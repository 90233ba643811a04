"""datagauge: what is wrong with an image dataset, from its embeddings.

Importing datagauge loads neither torch nor FAISS; they load when an analysis needs them.
"""

from ._results import ClassCoverage, CoverageResult, EmbeddingResult
from .coverage import coverage, naive_radius
from .embeddings import SALIENCY_METHODS, embed, saliency, save_saliency
from .neighbors import HNSW, IVF, Exact, kneighbors, merge_neighbors, recall_at_k

__version__ = "0.1.0"

__all__ = [
    "HNSW",
    "IVF",
    "SALIENCY_METHODS",
    "ClassCoverage",
    "CoverageResult",
    "EmbeddingResult",
    "Exact",
    "__version__",
    "coverage",
    "embed",
    "kneighbors",
    "merge_neighbors",
    "naive_radius",
    "recall_at_k",
    "saliency",
    "save_saliency",
]
