"""Embeddings: one flattened layer output per image, streamed into a preallocated array."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from .._progress import Progress, ProgressArg
from .._results import EmbeddingResult
from .._validation import check_image_array, check_int, check_out_array, images_to_nchw
from ._deps import require_torch

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["embed", "find_layer", "resolve_device"]


class _LayerCaptured(Exception):
    """Raised by the forward hook to stop the forward pass once the layer's output is in."""


# --------------------------------------------------------------------------- helpers


def resolve_device(device: Any) -> torch.device:
    """``device`` as a torch.device; None means CUDA when available, else the CPU."""
    require_torch()
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device {device!r} is not a torch device; pass 'cpu', 'cuda', 'cuda:0' or None "
            "(CUDA when available)."
        ) from exc


def find_layer(model: nn.Module, layer: str) -> nn.Module:
    """The submodule of ``model`` named ``layer`` (as in ``model.named_modules()``)."""
    if not isinstance(layer, str):
        raise TypeError(
            f"layer must be a module name (str) such as 'fc1' or 'features.3', got "
            f"{type(layer).__name__}."
        )
    modules = dict(model.named_modules())
    modules.pop("", None)
    if layer not in modules:
        names = list(modules)
        shown = ", ".join(repr(n) for n in names[:60])
        more = f" and {len(names) - 60} more" if len(names) > 60 else ""
        raise ValueError(
            f"layer {layer!r} is not a module of this {type(model).__name__}; valid names "
            f"(from model.named_modules()) are: {shown}{more}."
        )
    found: nn.Module = modules[layer]
    return found


def _check_model(model: Any) -> nn.Module:
    require_torch()
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}; wrap a plain "
            "function in an nn.Module whose forward calls it."
        )
    return model


def flatten_output(value: Any, batch: int, what: str) -> torch.Tensor:
    """A layer or model output as a (batch, features) tensor, or a clear error."""
    require_torch()
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{what} is a {type(value).__name__}, not a tensor, so it cannot be flattened into "
            "one embedding per image; pass layer= naming a module whose output is a tensor, "
            "or wrap the model so that forward returns one tensor."
        )
    if value.ndim == 0 or value.shape[0] != batch:
        raise ValueError(
            f"{what} has shape {tuple(value.shape)}, which cannot be flattened into one row per "
            f"image for a batch of {batch}; its first axis must be the batch axis. Pass layer= "
            "naming a module that keeps the batch axis first."
        )
    return value.reshape(batch, -1)


# --------------------------------------------------------------------------- data sources


def _image_to_chw(image: Any, index: int) -> NDArray[np.float32]:
    """One image (tensor, ndarray, PIL image, nested list) as float32 (C, H, W)."""
    require_torch()
    import torch

    if isinstance(image, torch.Tensor):
        arr = image.detach().cpu().numpy()
    else:
        try:
            arr = np.asarray(image)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"image {index} could not be read as an array ({exc}); the data must yield "
                "tensors, numpy arrays or PIL images (pass transform= to convert them)."
            ) from exc
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(
            f"image {index} has dtype {arr.dtype}, not real numbers; the data must yield "
            "numeric images (pass transform= to convert them)."
        )
    if arr.ndim in (2, 3):
        if arr.ndim == 2:
            layout = "NHW"
        elif arr.shape[2] in (1, 3, 4) and arr.shape[0] not in (1, 3, 4):
            layout = "NHWC"
        else:
            layout = "NCHW"
        chw: NDArray[np.float32] = images_to_nchw(arr[None], layout, first_index=index)[0]
        return chw
    raise ValueError(
        f"image {index} has shape {arr.shape}; each image must be (H, W), (C, H, W) or "
        "(H, W, C). Pass transform= to convert it."
    )


def _label_value(label: Any) -> Any:
    """An int for integer-like or one-hot/score labels, str for strings, else the object."""
    require_torch()
    import torch

    if isinstance(label, torch.Tensor):
        label = label.detach().cpu().numpy()
    if isinstance(label, (str, np.str_)):
        return str(label)
    if isinstance(label, (bool, np.bool_)):
        return label
    if isinstance(label, (int, np.integer)):
        return int(label)
    if isinstance(label, np.ndarray) and label.dtype != object:
        if label.ndim == 0 and np.issubdtype(label.dtype, np.integer):
            return int(label)
        if label.ndim == 1 and label.size > 1 and np.issubdtype(label.dtype, np.number):
            return int(np.argmax(label))  # one-hot or class scores (MAITE's convention)
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        return int(label)
    return label


def _labels_array(values: list[Any]) -> NDArray[Any]:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=str)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@dataclass
class _Batch:
    images: NDArray[np.float32]
    labels: list[Any] | None
    metadata: list[Any] | None


def _array_batches(
    arr: NDArray[Any],
    layout: str,
    batch_size: int,
    transform: Callable[[Any], Any] | None,
) -> Iterator[_Batch]:
    n = len(arr)
    for start in range(0, n, batch_size):
        chunk = arr[start : start + batch_size]
        if transform is None:
            images = images_to_nchw(chunk, layout, first_index=start)
        else:
            images = _stack([_image_to_chw(transform(im), start + i) for i, im in enumerate(chunk)])
        yield _Batch(images, None, None)


def _stack(images: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"images in one batch have different shapes {sorted(shapes)}; pass transform= that "
            "resizes them to one size (C, H, W)."
        )
    return np.ascontiguousarray(np.stack(images), dtype=np.float32)


def _item_batches(
    data: Any,
    n: int,
    batch_size: int,
    transform: Callable[[Any], Any] | None,
) -> Iterator[_Batch]:
    for start in range(0, n, batch_size):
        images: list[NDArray[np.float32]] = []
        labels: list[Any] = []
        metadata: list[Any] = []
        has_label = False
        for i in range(start, min(start + batch_size, n)):
            item = data[i]
            if isinstance(item, tuple):
                if len(item) == 0:
                    raise ValueError(
                        f"item {i} of the data is an empty tuple; expected (image, ...)."
                    )
                image = item[0]
                if len(item) >= 2:
                    has_label = True
                    labels.append(_label_value(item[1]))
                else:
                    labels.append(None)
                rest = item[2:]
                metadata.append(None if not rest else rest[0] if len(rest) == 1 else tuple(rest))
            else:
                image = item
                labels.append(None)
                metadata.append(None)
            if transform is not None:
                image = transform(image)
            images.append(_image_to_chw(image, i))
        yield _Batch(
            _stack(images),
            labels if has_label else None,
            metadata if any(m is not None for m in metadata) else None,
        )


# --------------------------------------------------------------------------- embed


@overload
def embed(
    data: Any,
    model: nn.Module,
    *,
    layer: str | None = ...,
    batch_size: int = ...,
    device: Any = ...,
    transform: Callable[[Any], Any] | None = ...,
    progress: ProgressArg = ...,
    out: NDArray[np.float32] | None = ...,
    return_labels: Literal[False] = ...,
) -> NDArray[np.float32]: ...


@overload
def embed(
    data: Any,
    model: nn.Module,
    *,
    layer: str | None = ...,
    batch_size: int = ...,
    device: Any = ...,
    transform: Callable[[Any], Any] | None = ...,
    progress: ProgressArg = ...,
    out: NDArray[np.float32] | None = ...,
    return_labels: Literal[True],
) -> EmbeddingResult: ...


def embed(
    data: Any,
    model: nn.Module,
    *,
    layer: str | None = None,
    batch_size: int = 64,
    device: Any = None,
    transform: Callable[[Any], Any] | None = None,
    progress: ProgressArg = True,
    out: NDArray[np.float32] | None = None,
    return_labels: bool = False,
) -> NDArray[np.float32] | EmbeddingResult:
    """Embed images with a torch model: one flattened layer output per image.

    Parameters
    ----------
    data : ndarray, torch Tensor, torch Dataset or sequence of items
        Either a stack of images, shape ``(n, H, W)`` (grayscale), ``(n, C, H, W)`` or
        ``(n, H, W, C)`` (channels last when the last axis has 1, 3 or 4 entries and the second
        does not), any real dtype, converted to float32 *unchanged* (scale uint8 yourself or
        with ``transform``); a ``np.memmap`` is read one batch at a time. Or anything with
        ``__len__`` and ``__getitem__`` (a map-style torch Dataset, a list) whose items are an
        image or a tuple ``(image, label, *metadata)`` as DataEval and MAITE datasets yield;
        images are tensors, arrays or PIL images, ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)``.
    model : torch.nn.Module
        Any module taking a float32 batch ``(b, C, H, W)``.
    layer : str, optional
        Name of the submodule whose output is captured with a forward hook (a name from
        ``model.named_modules()``, e.g. ``"fc1"`` or ``"features.3"``); the forward pass stops
        once it has run. None (default) takes the model's output.
    batch_size : int, default 64
        Images per forward pass.
    device : str or torch.device, optional
        Where to run; None means CUDA when available, else the CPU. The model is moved there
        and moved back afterwards.
    transform : callable, optional
        Applied to every image before batching (e.g. resize and normalise); it returns a
        tensor or array ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)``.
    progress : bool or callable, default True
        Show a progress bar on stderr (tqdm when installed), or call ``progress(done, total)``
        after every batch.
    out : ndarray of float32, shape (n, d), optional
        Preallocated output, e.g. ``np.lib.format.open_memmap(path, mode="w+", ...)``; batches
        are written into it as they are computed, so the embeddings never sit in memory twice.
    return_labels : bool, default False
        Return an :class:`EmbeddingResult` with the labels and metadata the data yields.

    Returns
    -------
    ndarray of float32, shape (n, d), or EmbeddingResult
        ``out`` itself when given. ``d`` is the product of the layer's per-image output shape.

    Raises
    ------
    ValueError
        Unknown ``layer`` (the message lists the valid names), an output that cannot be
        flattened to one row per image, images of different sizes, NaN pixels, a wrong ``out``.
    TypeError
        ``model`` is not an ``nn.Module``, the output is not a tensor.

    Notes
    -----
    Runs under ``torch.inference_mode()`` with the model in eval mode. Every submodule's
    train/eval flag, the model's device and the hook are restored in ``finally``, so an
    exception leaves the model as it was.
    """
    require_torch()
    import torch

    model = _check_model(model)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if transform is not None and not callable(transform):
        raise TypeError(f"transform must be callable or None, got {type(transform).__name__}.")
    if not (isinstance(progress, bool) or callable(progress)):
        raise TypeError(
            f"progress must be True, False or a callable(done, total), got {progress!r}."
        )
    target_layer = find_layer(model, layer) if layer is not None else None
    dev = resolve_device(device)

    batches: Iterator[_Batch]
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if isinstance(data, np.ndarray):
        arr, layout = check_image_array(data, name="data")
        n = len(arr)
        batches = _array_batches(arr, layout, batch_size, transform)
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, str):
        n = len(data)
        if n == 0:
            raise ValueError("data is empty; pass at least one image.")
        batches = _item_batches(data, n, batch_size, transform)
    else:
        raise TypeError(
            f"data must be an array of images, a torch Dataset with __len__ or a sequence of "
            f"(image, label, ...) tuples, got {type(data).__name__}."
        )
    if out is not None:
        out = check_out_array(out, n)

    captured: list[Any] = []

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        captured.append(output)
        raise _LayerCaptured

    states = [(m, m.training) for m in model.modules()]
    first: torch.Tensor | None = next(iter(model.parameters()), None)
    if first is None:
        first = next(iter(model.buffers()), None)
    home = first.device if first is not None else None
    labels: list[Any] | None = [] if return_labels else None
    metadata: list[Any] | None = [] if return_labels else None
    saw_labels = saw_metadata = False
    bar = Progress(progress, n, desc="embedding", unit="image")
    handle = None
    try:
        model.eval()
        if home is not None and home != dev:
            model.to(dev)
        if target_layer is not None:
            handle = target_layer.register_forward_hook(hook)
        what = f"the output of layer {layer!r}" if layer is not None else "the model's output"
        start = 0
        with torch.inference_mode():
            for batch in batches:
                b = len(batch.images)
                x = torch.from_numpy(batch.images).to(dev)
                captured.clear()
                try:
                    result = model(x)
                except _LayerCaptured:
                    result = None
                if target_layer is not None:
                    if not captured:
                        raise ValueError(
                            f"layer {layer!r} did not run during the forward pass, so nothing "
                            "was captured; pick a module that forward() calls."
                        )
                    result = captured[0]
                flat = flatten_output(result, b, what)
                rows = flat.to(device="cpu", dtype=torch.float32).numpy()
                if out is None:
                    out = np.empty((n, rows.shape[1]), dtype=np.float32)
                elif out.shape[1] != rows.shape[1]:
                    raise ValueError(
                        f"out has {out.shape[1]} columns but {what} has {rows.shape[1]} "
                        f"features per image; allocate out with shape ({n}, {rows.shape[1]})."
                    )
                out[start : start + b] = rows
                if labels is not None and metadata is not None:
                    saw_labels |= batch.labels is not None
                    saw_metadata |= batch.metadata is not None
                    labels.extend(batch.labels if batch.labels is not None else [None] * b)
                    metadata.extend(batch.metadata if batch.metadata is not None else [None] * b)
                start += b
                bar.update(b)
    finally:
        bar.close()
        if handle is not None:
            handle.remove()
        if home is not None and home != dev:
            model.to(home)
        for module, training in states:
            module.training = training
    if out is None:  # pragma: no cover - n >= 1 guarantees one batch
        raise RuntimeError("no batch was processed")
    if not return_labels:
        return out
    return EmbeddingResult(
        embeddings=out,
        labels=_labels_array(labels) if saw_labels and labels is not None else None,
        metadata=tuple(metadata) if saw_metadata and metadata is not None else None,
    )
