"""Saliency maps with captum, one (H, W) map per image whatever the method, and PNG overlays."""

from __future__ import annotations

import io
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .._atomic import write_bytes
from .._validation import (
    check_choice,
    check_image_array,
    check_int,
    check_new_file,
    images_to_nchw,
    seed_from,
)
from ._deps import require_captum, require_torch
from ._embed import find_layer

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["SALIENCY_METHODS", "saliency", "save_saliency"]

SALIENCY_METHODS = (
    "integrated_gradients",
    "gradient_shap",
    "deep_lift",
    "deep_lift_shap",
    "layer_conductance",
    "neuron_conductance",
    "noise_tunnel",
    "layer_grad_cam",
)
_NEEDS_LAYER = ("layer_conductance", "neuron_conductance", "layer_grad_cam")
_DISTRIBUTION = ("gradient_shap", "deep_lift_shap")

# Notes captum emits on every call of some methods; they say nothing about the user's input.
_CAPTUM_NOTES = (
    r"Setting forward, backward hooks and attributes on non-linear",
    r"Input Tensor \d+ did not already require gradients",
)


def _images_tensor(images: Any, device: torch.device) -> torch.Tensor:
    require_torch()
    import torch

    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    arr, layout = check_image_array(images, name="images")
    return torch.from_numpy(images_to_nchw(arr, layout)).to(device)


def _baselines(baseline: Any, x: torch.Tensor, method: str) -> torch.Tensor:
    """Reference images (m, C, H, W) for the method; see :func:`saliency` for the defaults."""
    require_torch()
    import torch

    n, c, h, w = x.shape
    if baseline is None:
        zeros = torch.zeros((1, c, h, w), dtype=x.dtype, device=x.device)
        if method in _DISTRIBUTION:
            flat = x.mean(dim=(0, 2, 3), keepdim=True).expand(1, c, h, w)
            return torch.cat([zeros, flat], dim=0)
        return zeros
    if isinstance(baseline, (int, float, np.integer, np.floating)) and not isinstance(
        baseline, (bool, np.bool_)
    ):
        if not math.isfinite(float(baseline)):
            raise ValueError(f"baseline must be finite, got {baseline}.")
        ref = torch.full((1, c, h, w), float(baseline), dtype=x.dtype, device=x.device)
        if method == "deep_lift_shap":
            raise ValueError(
                "deep_lift_shap needs a distribution of at least 2 baseline images, shape "
                f"(m, {c}, {h}, {w}) with m >= 2; a single value was given. Pass baseline=None "
                "for the default (a black and a mean-grey image)."
            )
        return ref
    if isinstance(baseline, torch.Tensor):
        baseline = baseline.detach().cpu().numpy()
    arr = np.asarray(baseline)
    wanted = (
        f"baseline must be a number, one image ({c}, {h}, {w}) or ({h}, {w}, {c}), one per "
        f"image, or a stack (m, {c}, {h}, {w}), the same size as the images"
    )
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{wanted}; got dtype {arr.dtype}.")
    if arr.ndim == 2 and c == 1 and arr.shape == (h, w):
        stack = arr[None, None]
    elif arr.ndim == 3 and arr.shape == (c, h, w):
        stack = arr[None]
    elif arr.ndim == 3 and arr.shape == (h, w, c):
        stack = arr.transpose(2, 0, 1)[None]
    elif arr.ndim == 3 and c == 1 and arr.shape[1:] == (h, w):
        stack = arr[:, None]
    elif arr.ndim == 4 and arr.shape[1:] == (c, h, w):
        stack = arr
    elif arr.ndim == 4 and arr.shape[1:] == (h, w, c):
        stack = arr.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"{wanted}; got shape {arr.shape}.")
    if len(stack) == 0:
        raise ValueError(f"{wanted}; got an empty stack.")
    ref = torch.from_numpy(images_to_nchw(stack, "NCHW", name="baseline")).to(x.device)
    m = ref.shape[0]
    if method == "deep_lift_shap" and m < 2:
        raise ValueError(
            f"deep_lift_shap needs a distribution of at least 2 baseline images (m, {c}, {h}, "
            f"{w}); got {m}."
        )
    if method not in _DISTRIBUTION and m not in (1, n):
        raise ValueError(
            f"{method} takes one baseline image or one per image ({n}); got {m}. Only "
            "gradient_shap and deep_lift_shap take a distribution of baselines."
        )
    return ref


def _targets(model: nn.Module, x: torch.Tensor, target: Any) -> torch.Tensor:
    require_torch()
    import torch

    with torch.no_grad():
        logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != len(x):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"saliency needs a classifier whose output is (n_images, n_classes); this model "
            f"returns {shape}. Wrap it so that forward returns class scores."
        )
    n_classes = logits.shape[1]
    if target is None:
        return logits.argmax(dim=1)
    if isinstance(target, torch.Tensor):
        target = target.detach().cpu().numpy()
    arr = np.asarray(target)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"target must be a class index (int) or one per image, got dtype {arr.dtype}; "
            "pass integers, or None for the predicted class."
        )
    if arr.ndim == 0:
        arr = np.full(len(x), int(arr), dtype=np.int64)
    if arr.ndim != 1 or len(arr) != len(x):
        raise ValueError(
            f"target must be one int or one per image ({len(x)}), got shape {arr.shape}."
        )
    if arr.min() < 0 or arr.max() >= n_classes:
        raise ValueError(
            f"target values must be class indices in [0, {n_classes - 1}], got "
            f"{int(arr.min())}..{int(arr.max())}."
        )
    return torch.as_tensor(arr, dtype=torch.int64, device=x.device)


def _neuron(neuron_index: Any) -> int | tuple[int, ...]:
    if isinstance(neuron_index, Sequence) and not isinstance(neuron_index, str):
        return tuple(check_int(i, "neuron_index entry", minimum=0) for i in neuron_index)
    return check_int(neuron_index, "neuron_index", minimum=0)


def saliency(
    model: nn.Module,
    images: Any,
    *,
    target: Any = None,
    method: str = "integrated_gradients",
    baseline: Any = None,
    n_samples: int = 5,
    n_steps: int = 50,
    internal_batch_size: int | None = 1,
    stdevs: float = 1e-4,
    neuron_index: int | Sequence[int] | None = None,
    layer: str | None = None,
    random_state: int | np.random.Generator | None = 0,
) -> NDArray[np.float32]:
    """Saliency maps of a classifier's decision, one (H, W) map per image, with captum.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier: float32 images ``(n, C, H, W)`` in, class scores ``(n, n_classes)`` out.
    images : ndarray or torch Tensor, shape (n, H, W), (n, C, H, W) or (n, H, W, C)
        The model's inputs (already normalised as the model expects), float32 after conversion.
    target : int or array-like of int, shape (n,), optional
        Class whose score is explained; None (default) uses each image's predicted class.
    method : str, default "integrated_gradients"
        One of ``"integrated_gradients"``, ``"gradient_shap"``, ``"deep_lift"``,
        ``"deep_lift_shap"``, ``"layer_conductance"``, ``"neuron_conductance"``,
        ``"noise_tunnel"`` (SmoothGrad over integrated gradients) or ``"layer_grad_cam"``.
    baseline : float, ndarray or Tensor, optional
        Reference input: a number (a constant image), one image ``(C, H, W)`` / ``(H, W)``, one
        per image, or for ``gradient_shap``/``deep_lift_shap`` a distribution ``(m, C, H, W)``
        (``m >= 2`` for ``deep_lift_shap``). Default: an all-zero image, and for the two SHAP
        methods the pair {all-zero image, image of each channel's mean over ``images``}.
    n_samples : int, default 5
        Random samples for ``gradient_shap`` and ``noise_tunnel``.
    n_steps : int, default 50
        Integration steps for the integrated-gradients family (incl. conductances, noise tunnel).
    internal_batch_size : int or None, default 1
        Integration steps evaluated per forward pass, for all images (and noise samples) at
        once (None: all steps at once; larger is faster and uses more memory). At least 2 for
        ``layer_conductance``, which differences consecutive steps.
    stdevs : float, default 1e-4
        Standard deviation of the Gaussian noise of ``gradient_shap`` and ``noise_tunnel``.
    neuron_index : int or tuple of int, optional
        Index of the neuron in ``layer``'s output (batch axis excluded); needed by
        ``neuron_conductance``.
    layer : str, optional
        Module name (from ``model.named_modules()``) for ``layer_conductance``,
        ``neuron_conductance`` and ``layer_grad_cam``; for the two layer methods its output must
        be a feature map ``(n, C', h, w)``.
    random_state : int, numpy Generator or None, default 0
        Seed of the random draws (noise, SHAP baselines); torch's and numpy's global RNG states
        (captum draws from both) are restored afterwards.

    Returns
    -------
    ndarray of float32, shape (n, H, W)
        Attributions summed over the input channels, signed (positive: evidence for the target).
        Summing keeps integrated gradients' completeness: ``maps[i].sum()`` equals the target
        score at the image minus that at the baseline. Layer methods (``layer_conductance``,
        ``layer_grad_cam``) sum over the layer's channels and are upsampled bilinearly to
        (H, W); Grad-CAM maps are non-negative (ReLU applied, as in the paper).

    Raises
    ------
    ValueError
        A method needing ``layer`` or ``neuron_index`` without it, an unknown layer (valid names
        listed), a baseline of the wrong shape, a target out of range.
    ImportError
        captum or torch is missing (the message says what to install).

    Notes
    -----
    The model runs in eval mode on its own device; every submodule's train/eval flag is restored
    afterwards, even after an error.
    """
    require_torch()
    import torch

    attr = require_captum()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    method = check_choice(method, "method", SALIENCY_METHODS)
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    n_steps = check_int(n_steps, "n_steps", minimum=1)
    if internal_batch_size is not None:
        internal_batch_size = check_int(internal_batch_size, "internal_batch_size", minimum=1)
    if not isinstance(stdevs, (int, float, np.integer, np.floating)) or not float(stdevs) >= 0:
        raise ValueError(f"stdevs must be a number >= 0 (a noise level), got {stdevs!r}.")
    seed = seed_from(random_state)
    if method in _NEEDS_LAYER and layer is None:
        raise ValueError(
            f"method {method!r} needs layer=, the name of a module (from "
            "model.named_modules()), e.g. the last convolution for layer_grad_cam."
        )
    module = find_layer(model, layer) if layer is not None else None
    neuron: int | tuple[int, ...] | None = None
    if method == "neuron_conductance":
        if neuron_index is None:
            raise ValueError(
                "method 'neuron_conductance' needs neuron_index=, the index of a neuron in "
                f"the output of layer {layer!r} (batch axis excluded), e.g. 0 or (channel, y, x)."
            )
        neuron = _neuron(neuron_index)

    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    x = _images_tensor(images, device)
    _, _, h, w = x.shape
    states = [(m, m.training) for m in model.modules()]
    numpy_state: Any = None
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        model.eval()
        targets = _targets(model, x, target)
        refs = _baselines(baseline, x, method)
        inputs = x.clone().requires_grad_(True)
        numpy_state = np.random.get_state()  # noqa: NPY002 - captum's gradient_shap uses it
        with (
            torch.random.fork_rng(devices=rng_devices),
            torch.enable_grad(),
            warnings.catch_warnings(),
        ):
            for note in _CAPTUM_NOTES:
                warnings.filterwarnings("ignore", message=note, category=UserWarning)
            torch.manual_seed(seed)
            np.random.seed(seed)  # noqa: NPY002 - restored in finally
            maps = _attribute(
                attr,
                method,
                model,
                module,
                inputs,
                targets,
                refs,
                neuron,
                n_samples=n_samples,
                n_steps=n_steps,
                internal_batch_size=internal_batch_size,
                stdevs=float(stdevs),
            )
    finally:
        if numpy_state is not None:
            np.random.set_state(numpy_state)  # noqa: NPY002
        for m, training in states:
            m.training = training
    maps = maps.detach()
    if maps.ndim != 4:
        raise ValueError(
            f"layer {layer!r} gives attributions of shape {tuple(maps.shape)}, not a feature "
            "map (n, C, h, w), so they cannot be drawn on the image; pick a convolutional layer."
        )
    summed = maps.sum(dim=1, keepdim=True)
    if summed.shape[-2:] != (h, w):
        summed = torch.nn.functional.interpolate(
            summed, size=(h, w), mode="bilinear", align_corners=False
        )
    out: NDArray[np.float32] = np.ascontiguousarray(
        summed[:, 0].to(device="cpu", dtype=torch.float32).numpy()
    )
    return out


def _attribute(
    attr: Any,
    method: str,
    model: nn.Module,
    module: nn.Module | None,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    refs: torch.Tensor,
    neuron: int | tuple[int, ...] | None,
    *,
    n_samples: int,
    n_steps: int,
    internal_batch_size: int | None,
    stdevs: float,
) -> torch.Tensor:
    result: torch.Tensor
    if internal_batch_size is not None:
        # captum's internal_batch_size counts examples (inputs x steps) per forward pass.
        steps = (
            max(internal_batch_size, 2) if method == "layer_conductance" else internal_batch_size
        )
        examples = len(inputs) * (n_samples if method == "noise_tunnel" else 1)
        internal_batch_size = steps * examples
    if method == "integrated_gradients":
        result = attr.IntegratedGradients(model).attribute(
            inputs,
            baselines=refs,
            target=targets,
            n_steps=n_steps,
            internal_batch_size=internal_batch_size,
        )
    elif method == "gradient_shap":
        result = attr.GradientShap(model).attribute(
            inputs, baselines=refs, target=targets, n_samples=n_samples, stdevs=stdevs
        )
    elif method == "deep_lift":
        result = attr.DeepLift(model).attribute(inputs, baselines=refs, target=targets)
    elif method == "deep_lift_shap":
        result = attr.DeepLiftShap(model).attribute(inputs, baselines=refs, target=targets)
    elif method == "noise_tunnel":
        result = attr.NoiseTunnel(attr.IntegratedGradients(model)).attribute(
            inputs,
            nt_type="smoothgrad",
            nt_samples=n_samples,
            stdevs=stdevs,
            baselines=refs,
            target=targets,
            n_steps=n_steps,
            internal_batch_size=internal_batch_size,
        )
    elif method == "layer_conductance":
        result = attr.LayerConductance(model, module).attribute(
            inputs,
            baselines=refs,
            target=targets,
            n_steps=n_steps,
            internal_batch_size=internal_batch_size,
        )
    elif method == "neuron_conductance":
        try:
            result = attr.NeuronConductance(model, module).attribute(
                inputs,
                neuron_selector=neuron,
                baselines=refs,
                target=targets,
                n_steps=n_steps,
                internal_batch_size=internal_batch_size,
            )
        except (IndexError, RuntimeError) as exc:
            raise ValueError(
                f"neuron_index {neuron!r} does not address one neuron of the layer's output "
                f"(per-image shape without the batch axis); {exc}"
            ) from exc
    else:  # layer_grad_cam
        result = attr.LayerGradCam(model, module).attribute(
            inputs, target=targets, relu_attributions=True
        )
    return result


# --------------------------------------------------------------------------- overlays


def _display(image: NDArray[np.float32]) -> NDArray[np.float32]:
    """(C, H, W) image -> (H, W, 3) in [0, 1], min-max scaled."""
    if image.shape[0] >= 3:
        rgb = image[:3].transpose(1, 2, 0)
    else:
        rgb = np.repeat(image[0][:, :, None], 3, axis=2)
    lo, hi = float(rgb.min()), float(rgb.max())
    out: NDArray[np.float32] = ((rgb - lo) / (hi - lo) if hi > lo else np.zeros_like(rgb)).astype(
        np.float32
    )
    return out


def _as_numpy(value: Any) -> Any:
    """A torch tensor as a numpy array (torch only consulted when already imported)."""
    torch: Any = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


def save_saliency(
    images: Any,
    maps: Any,
    path: str | Path,
    *,
    prefix: str = "saliency",
    min_size: int = 128,
    overwrite: bool = False,
) -> list[Path]:
    """Write one PNG per image: the image and, beside it, the saliency map over it.

    Parameters
    ----------
    images : ndarray or Tensor, shape (n, H, W), (n, C, H, W) or (n, H, W, C)
        The images (any value range; each is min-max scaled for display).
    maps : ndarray, shape (n, H, W)
        Saliency maps, e.g. from :func:`saliency`. Positive values are drawn red, negative blue,
        opacity proportional to ``|value| / max |value|`` of that map.
    path : str or Path
        Folder to write into (created when missing).
    prefix : str, default "saliency"
        File names are ``{prefix}_{i:04d}.png``.
    min_size : int, default 128
        Small images are enlarged (nearest neighbour) to at least this many pixels a side.
    overwrite : bool, default False
        Replace files of those names already in `path`; otherwise they raise
        FileExistsError before anything is written.

    Returns
    -------
    list of Path, length n
        The files written, in image order.
    """
    images = _as_numpy(images)
    maps = _as_numpy(maps)
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "save_saliency needs Pillow; install it with `pip install pillow`."
        ) from exc
    arr, layout = check_image_array(images, name="images")
    x = images_to_nchw(arr, layout)
    m = np.asarray(maps, dtype=np.float32)
    n, _, h, w = x.shape
    if m.shape != (n, h, w):
        raise ValueError(
            f"maps must have shape (n, H, W) = {(n, h, w)} to match the images, got {m.shape}."
        )
    if not np.isfinite(m).all():
        raise ValueError("maps contain NaN or infinite values; they cannot be drawn.")
    min_size = check_int(min_size, "min_size", minimum=1)
    folder = Path(path)
    targets = [folder / f"{prefix}_{i:04d}.png" for i in range(n)]
    for target in targets:  # all checked before any is written
        check_new_file(target, overwrite=overwrite, name="saliency file")
    folder.mkdir(parents=True, exist_ok=True)
    scale = max(1, math.ceil(min_size / min(h, w)))
    red = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    blue = np.array([0.0, 0.3, 1.0], dtype=np.float32)
    written = []
    for i in range(n):
        base = _display(x[i])
        peak = float(np.abs(m[i]).max())
        v = m[i] / peak if peak > 0 else np.zeros_like(m[i])
        alpha = (0.75 * np.abs(v))[:, :, None]
        colour = np.where((v >= 0)[:, :, None], red, blue)
        over = (1 - alpha) * base + alpha * colour
        gap = np.ones((h, max(1, w // 16), 3), dtype=np.float32)
        pair = np.concatenate([base, gap, over], axis=1)
        img = Image.fromarray(np.round(pair * 255).astype(np.uint8))
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
        target = targets[i]
        buffer = io.BytesIO()
        img.save(buffer, format="PNG")
        write_bytes(target, buffer.getvalue())
        written.append(target)
    return written
