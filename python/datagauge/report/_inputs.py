"""What a report is made from: embeddings plus whatever else the source provides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ArrayRows", "ReportInputs"]


@dataclass(slots=True)
class ReportInputs:
    """Everything the report's sections read; optional parts switch sections on.

    Attributes
    ----------
    name : str
        What the data are, for the title.
    embeddings : ndarray of float32, shape (n, d)
    labels : ndarray, shape (n,), or None
    images : ndarray, shape (n, H, W) or (n, H, W, 3), values in [0, 1], or None
        For thumbnails and the image-property tags.
    is_train : ndarray of bool, shape (n,), or None
        The training split; familiarity compares it with the rest.
    predictions : ndarray, shape (n,), or None
        The model's predicted label of each sample (out-of-sample where possible).
    confidence : ndarray of float, shape (n,), or None
        The model's probability of the true label.
    tags, tag_names : bool ndarray (n, t) (or a DataFrame of metadata) and list of str, or None
        Tags for the bias search.
    concept_scores : (ndarray (n, c), list of str) or None
        Concept scores per image (e.g. image properties) for the per-class concept bias.
    model : torch.nn.Module or None
        The classifier, for saliency maps; it takes `model_inputs`.
    model_inputs : ndarray or None
        The images as the model takes them, shape (n, C, H, W) float32.
    class_names : tuple of str
    sufficiency : callable or None
        Builds the sufficiency experiment: returns (experiment, train_ds, test_ds, note), the
        experiment a Sufficiency or anything with its ``evaluate(train_ds, test_ds, *,
        progress, random_state)`` (the report's CNN experiment collects a worker's run).
    sufficiency_targets : tuple of float
        Metric values the sufficiency section says the training-set size for (empty: a few
        chosen from the measured curve).
    notes : list of str
        How the inputs were made (model, training, accuracy), shown at the top.
    """

    name: str
    embeddings: NDArray[np.float32]
    labels: NDArray[Any] | None = None
    images: NDArray[np.float32] | None = None
    is_train: NDArray[np.bool_] | None = None
    predictions: NDArray[Any] | None = None
    confidence: NDArray[np.float64] | None = None
    tags: Any = None
    tag_names: list[str] | None = None
    concept_scores: tuple[NDArray[np.float32], list[str]] | None = None
    model: Any = None
    model_inputs: NDArray[np.float32] | None = None
    class_names: tuple[str, ...] = ()
    sufficiency: Any = None
    sufficiency_targets: tuple[float, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def correct(self) -> NDArray[np.bool_] | None:
        if self.predictions is None or self.labels is None:
            return None
        out: NDArray[np.bool_] = np.asarray(self.predictions) == np.asarray(self.labels)
        return out

    def label_name(self, label: Any) -> str:
        if self.class_names and isinstance(label, (int, np.integer)):
            i = int(label)
            if 0 <= i < len(self.class_names):
                return self.class_names[i]
        return str(label)


class ArrayRows:
    """Rows of two arrays (inputs, labels) as a dataset for the sufficiency strategies."""

    def __init__(self, x: NDArray[Any], y: NDArray[Any]) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return int(self.x.shape[0])
