"""Real datasets that ship inside installed packages (nothing is downloaded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["ImageDataset", "load_digits"]


@dataclass(frozen=True, slots=True)
class ImageDataset:
    """Images with labels.

    Attributes
    ----------
    name : str
    images : ndarray of float32, shape (n, height, width), values in [0, 1]
    labels : ndarray of int64, shape (n,)
    class_names : tuple of str
    """

    name: str
    images: NDArray[np.float32]
    labels: NDArray[np.int64]
    class_names: tuple[str, ...]

    def flat(self) -> NDArray[np.float32]:
        """Images flattened to (n, height * width) float32."""
        return self.images.reshape(len(self.images), -1)


def load_digits() -> ImageDataset:
    """scikit-learn's 1,797 real 8x8 handwritten digits (shipped inside scikit-learn).

    Pixel values 0..16 are scaled to [0, 1].
    """
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as exc:
        raise ImportError(
            "the default dataset comes with scikit-learn; install it with "
            "`pip install scikit-learn` (or `pip install 'datagauge[report]'`)."
        ) from exc
    bunch = _load()
    images = (np.asarray(bunch.images, dtype=np.float32) / 16.0).astype(np.float32)
    return ImageDataset(
        name="digits",
        images=images,
        labels=np.asarray(bunch.target, dtype=np.int64),
        class_names=tuple(str(c) for c in bunch.target_names),
    )
