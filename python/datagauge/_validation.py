"""Every user-facing input check and its error message.

Checks run once, at the public entry points, before anything reaches the compiled core.
Messages are sentences that say what was wrong and how to fix it.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "check_choice",
    "check_embeddings",
    "check_image_array",
    "check_int",
    "check_k",
    "check_labels",
    "check_out_array",
    "check_unit_fraction",
    "image_layout",
    "images_to_nchw",
]


def _describe(x: Any) -> str:
    return type(x).__name__


def check_embeddings(
    x: Any, *, name: str = "embeddings", min_samples: int = 1
) -> NDArray[np.float32]:
    """Validate an (n_samples, n_features) matrix and return it as C-contiguous float32.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
        Real numbers, finite.
    name : str
        Name used in error messages.
    min_samples : int
        Smallest acceptable number of rows.

    Returns
    -------
    ndarray of float32, shape (n_samples, n_features), C-contiguous
        `x` itself when it already is one, otherwise one converted copy.

    Raises
    ------
    TypeError
        If `x` is not numeric.
    ValueError
        If `x` is not 2-D, is empty, has too few rows, or holds NaN or infinity.
    """
    if x is None:
        raise TypeError(f"{name} is None; pass an array of shape (n_samples, n_features).")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nested lists, for instance
        raise TypeError(
            f"{name} could not be read as an array ({exc}); pass a rectangular numeric array "
            "of shape (n_samples, n_features)."
        ) from exc
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(
            f"{name} must hold real numbers, got dtype {arr.dtype}; convert it, e.g. "
            f"np.asarray({name}, dtype=np.float32)."
        )
    if arr.ndim != 2:
        if arr.ndim < 2:
            hint = (
                f"reshape it with {name}.reshape(-1, 1) for one feature per sample, or "
                f"{name}.reshape(1, -1) for a single sample"
            )
        else:
            hint = f"flatten each sample with {name}.reshape(len({name}), -1)"
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_features), got {arr.ndim}-D with shape "
            f"{arr.shape}; {hint}."
        )
    n, d = arr.shape
    if n == 0 or d == 0:
        raise ValueError(
            f"{name} is empty (shape {arr.shape}); it needs at least one sample and one feature."
        )
    if n < min_samples:
        raise ValueError(f"{name} has {n} samples; at least {min_samples} are needed.")
    if np.issubdtype(arr.dtype, np.floating):
        _check_finite(arr, name, after_cast=False)
    with np.errstate(over="ignore"):  # overflow is reported below, as an error that says why
        out = np.ascontiguousarray(arr, dtype=np.float32)
    if out.dtype != arr.dtype:
        # Values beyond float32's range (about 3.4e38) become inf when converted.
        _check_finite(out, name, after_cast=True)
    return out


def _check_finite(arr: NDArray[Any], name: str, *, after_cast: bool) -> None:
    finite = np.isfinite(arr)
    if finite.all():
        return
    bad = ~finite
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(bad.sum()) - n_nan
    row = int(np.argwhere(bad)[0][0])
    if after_cast:
        raise ValueError(
            f"{name} has values too large for float32 (|x| > 3.4e38), first in row {row}; "
            "rescale the embeddings."
        )
    raise ValueError(
        f"{name} contains {n_nan} NaN and {n_inf} infinite values (first in row {row}); remove "
        "or impute those rows, e.g. keep = np.isfinite(x).all(axis=1); x = x[keep]."
    )


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """Return `value` as a Python int, rejecting bools, floats and strings."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({_describe(value)}).")
    out = int(value)
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}.")
    return out


def check_k(k: Any, n_samples: int, *, name: str = "k") -> int:
    """Number of neighbours: an integer in [1, n_samples - 1]."""
    out = check_int(k, name)
    if out < 1:
        raise ValueError(f"{name} must be >= 1 (the number of neighbours), got {out}.")
    if out >= n_samples:
        raise ValueError(
            f"{name}={out} must be less than the number of samples ({n_samples}): every point "
            f"needs {name} other points. Use {name} <= {n_samples - 1} or add data."
        )
    return out


def check_unit_fraction(value: Any, name: str) -> float:
    """A float strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in (0, 1), got {value!r} ({_describe(value)}).")
    out = float(value)
    if not (0.0 < out < 1.0):
        raise ValueError(
            f"{name} must be strictly between 0 and 1 (a fraction, e.g. 0.01 for 1%), got {out}."
        )
    return out


def check_choice(value: Any, name: str, choices: Collection[str]) -> str:
    """One of a fixed set of option strings."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; got {value!r}.")
    return value


def check_labels(labels: Any, n_samples: int, *, name: str = "labels") -> NDArray[Any]:
    """Per-sample labels: a 1-D array of length n_samples, no missing values."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D with one label per sample, got shape {arr.shape}; for one-hot "
            f"labels pass {name}.argmax(axis=1)."
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but the embeddings have {n_samples} rows; pass "
            "one label per embedding, in the same order."
        )
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.str_)
        or arr.dtype == np.bool_
    ):
        raise TypeError(
            f"{name} must be integers, strings or floats, got dtype {arr.dtype}; convert them, "
            f"e.g. np.asarray({name}, dtype=str)."
        )
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values; every sample needs a label.")
    return arr


_CHANNEL_COUNTS = (1, 3, 4)


def image_layout(shape: tuple[int, ...], name: str = "images") -> str:
    """Axis order of a stack of images: ``"NHW"``, ``"NCHW"`` or ``"NHWC"``.

    3-D arrays are grayscale ``(n, H, W)``. 4-D arrays are ``(n, C, H, W)`` unless the last
    axis has 1, 3 or 4 entries and the second does not, in which case they are
    ``(n, H, W, C)``.
    """
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4:
        if shape[3] in _CHANNEL_COUNTS and shape[1] not in _CHANNEL_COUNTS:
            return "NHWC"
        return "NCHW"
    raise ValueError(
        f"{name} must be 3-D (n, H, W) or 4-D (n, C, H, W) / (n, H, W, C), got {len(shape)}-D "
        f"with shape {shape}; for a single image add the batch axis with {name}[None]."
    )


def check_image_array(x: Any, *, name: str = "images") -> tuple[NDArray[Any], str]:
    """Validate a stack of images without copying it; return it and its layout.

    Parameters
    ----------
    x : array-like of shape (n, H, W), (n, C, H, W) or (n, H, W, C)
        Real numbers (any integer or float dtype). A ``np.memmap`` stays a memmap.
    name : str
        Name used in error messages.

    Returns
    -------
    images : ndarray
        ``x`` as an ndarray (no copy when it already is one).
    layout : str
        ``"NHW"``, ``"NCHW"`` or ``"NHWC"``; see :func:`image_layout`.
    """
    if x is None:
        raise TypeError(f"{name} is None; pass an array of shape (n, H, W) or (n, C, H, W).")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} could not be read as an array ({exc}); pass images of one size as a "
            "numeric array of shape (n, H, W) or (n, C, H, W)."
        ) from exc
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(
            f"{name} must hold real numbers, got dtype {arr.dtype}; convert them, e.g. "
            f"np.asarray({name}, dtype=np.float32)."
        )
    layout = image_layout(arr.shape, name)
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass at least one image.")
    return arr, layout


def images_to_nchw(
    batch: NDArray[Any], layout: str, *, name: str = "images", first_index: int = 0
) -> NDArray[np.float32]:
    """One batch of a validated image stack as C-contiguous float32 ``(b, C, H, W)``.

    Values are converted unchanged (uint8 stays 0..255); NaN or infinity is an error. The
    result is writable (a view of ``batch`` when no conversion is needed and ``batch`` is
    writable, otherwise a copy).
    """
    if layout == "NHW":
        batch = batch[:, None, :, :]
    elif layout == "NHWC":
        batch = batch.transpose(0, 3, 1, 2)
    if np.issubdtype(batch.dtype, np.floating):
        finite = np.isfinite(batch).reshape(len(batch), -1).all(axis=1)
        if not finite.all():
            first = first_index + int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"{name} contains NaN or infinite pixel values (first in image {first}); "
                "remove or repair those images."
            )
    out = np.ascontiguousarray(batch, dtype=np.float32)
    if not out.flags.writeable:  # a read-only memmap: torch.from_numpy needs writable memory
        out = out.copy()
    return out


def check_out_array(out: Any, n_samples: int, *, name: str = "out") -> NDArray[np.float32]:
    """A preallocated (n_samples, d) float32 output array (``np.memmap`` allowed), writable."""
    if not isinstance(out, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array or np.memmap of shape (n_samples, d) and dtype "
            f"float32, got {_describe(out)}; create it with np.empty((n, d), np.float32) or "
            "np.lib.format.open_memmap(path, mode='w+', dtype=np.float32, shape=(n, d))."
        )
    if out.dtype != np.float32:
        raise TypeError(
            f"{name} must have dtype float32, got {out.dtype}; allocate it with dtype=np.float32."
        )
    if out.ndim != 2 or out.shape[0] != n_samples:
        raise ValueError(
            f"{name} must have shape ({n_samples}, d), one row per image, got {out.shape}."
        )
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; open the memmap with mode='w+' or 'r+'.")
    return out
