"""Embeddings and saliency maps from torch models (the ``datagauge[torch]`` extra).

Importing this package does not import torch: :func:`embed`, :func:`saliency` and
:func:`save_saliency` import torch (and captum) when called, and the models in
:mod:`datagauge.embeddings.models` (which imports torch) load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

from .._results import EmbeddingResult
from ._embed import embed
from ._saliency import SALIENCY_METHODS, saliency, save_saliency

__all__ = [
    "SALIENCY_METHODS",
    "EmbeddingResult",
    "MnistCNN",
    "SmallCNN",
    "embed",
    "load_efficientnet_lite0",
    "load_mnist_cnn",
    "preprocess_imagenet",
    "preprocess_mnist",
    "saliency",
    "save_saliency",
    "train_classifier",
]

_FROM_MODELS = {
    "MnistCNN",
    "SmallCNN",
    "load_efficientnet_lite0",
    "load_mnist_cnn",
    "preprocess_imagenet",
    "preprocess_mnist",
    "train_classifier",
}


def __getattr__(name: str) -> Any:
    if name in _FROM_MODELS:
        from ._deps import require_torch

        require_torch()
        return getattr(importlib.import_module(".models", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
