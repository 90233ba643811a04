"""The one place that imports torch and captum, lazily, with errors that name what to install."""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["require_captum", "require_torch"]

_TORCH_HINT = (
    "datagauge's embeddings and saliency maps need PyTorch; install the CPU build with "
    "`pip install torch==2.13.0` (or `pip install 'datagauge[torch]'`)."
)


def require_torch() -> ModuleType:
    """Return the torch module, or raise ImportError saying how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(_TORCH_HINT) from exc
    return torch


def require_captum() -> Any:
    """Return the ``captum.attr`` module, or raise ImportError saying how to install it."""
    require_torch()
    try:
        import captum.attr  # type: ignore[import-untyped, unused-ignore]
    except ImportError as exc:
        raise ImportError(
            "datagauge's saliency maps need captum; install it with `pip install captum` "
            "(or `pip install 'datagauge[torch]'`)."
        ) from exc
    return captum.attr
