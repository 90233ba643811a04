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
    "check_int",
    "check_k",
    "check_labels",
    "check_learning_curve",
    "check_sizes",
    "check_targets",
    "check_unit_fraction",
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


def _real_vector(x: Any, name: str, hint: str) -> NDArray[np.float64]:
    """A 1-D array of finite real numbers, as float64."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be read as an array ({exc}); {hint}.") from exc
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}; {hint}.")
    out = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values; {hint}.")
    return out


def check_sizes(sizes: Any, name: str = "sizes") -> NDArray[np.float64]:
    """Dataset sizes: a number or 1-D array of finite numbers >= 1, returned as float64 (n,)."""
    arr = _real_vector(sizes, name, "pass sample counts such as [1000, 10000]")
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D list, got shape {arr.shape}.")
    if (arr < 1).any():
        bad = float(arr[arr < 1][0])
        raise ValueError(f"{name} are numbers of samples and must be >= 1, got {bad}.")
    return arr


def check_learning_curve(
    steps: Any, values: Any, *, bounded: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Measured learning-curve points: steps (n_steps,) and values (n_steps,) or (runs, n_steps).

    Returns float64 steps and float64 values of shape (runs, n_steps) (one run for 1-D input).
    """
    s = _real_vector(steps, "steps", "pass the training-set sizes as a 1-D list of integers")
    if s.ndim != 1:
        raise ValueError(f"steps must be 1-D (one training-set size per point), got {s.shape}.")
    if (s < 1).any():
        raise ValueError(f"steps are training-set sizes and must be >= 1, got {s.min()}.")
    n_distinct = np.unique(s).size
    if n_distinct < 3:
        raise ValueError(
            f"a learning curve needs at least 3 distinct training-set sizes to fit its 3 "
            f"parameters (c, m, c0), got {n_distinct}; measure more steps (e.g. substeps >= 5)."
        )
    v = _real_vector(
        values, "values", "every measured metric must be a finite number; re-run the failed steps"
    )
    if v.ndim == 1:
        v = v.reshape(1, -1)
    if v.ndim != 2 or v.shape[1] != s.size:
        raise ValueError(
            f"values must have shape (n_steps,) or (runs, n_steps) with n_steps={s.size} "
            f"(one value per step), got {v.shape}."
        )
    if v.shape[0] == 0:
        raise ValueError("values has no runs; pass at least one measured curve.")
    if bounded and ((v < 0).any() or (v > 1).any()):
        raise ValueError(
            f"values lie in [{v.min():.6g}, {v.max():.6g}], outside [0, 1]; for a metric that "
            "is not a fraction (a loss, PSNR, ...) pass bounded=False."
        )
    return s, v


def check_targets(targets: Any, *, bounded: bool, name: str = "targets") -> NDArray[np.float64]:
    """Target metric values: a number or 1-D array of finite numbers, in [0, 1] if bounded."""
    arr = _real_vector(targets, name, "pass metric values such as [0.9, 0.95]")
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D list, got shape {arr.shape}.")
    if bounded and ((arr < 0).any() or (arr > 1).any()):
        bad = float(arr[(arr < 0) | (arr > 1)][0])
        raise ValueError(
            f"{name} include {bad}, outside the metric's range [0, 1]; give targets as "
            "fractions (0.95, not 95), or fit with bounded=False for an unbounded metric."
        )
    return arr
