"""Every user-facing input check and its error message.

Checks run once, at the public entry points, before anything reaches the compiled core.
Messages are sentences that say what was wrong and how to fix it.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Collection
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FEEDBACK_FORMAT",
    "NotFittedError",
    "check_bool",
    "check_choice",
    "check_concept_feedback",
    "check_dask_matrix",
    "check_embeddings",
    "check_features",
    "check_image_array",
    "check_images",
    "check_int",
    "check_is_fitted",
    "check_k",
    "check_labels",
    "check_learning_curve",
    "check_nonnegative",
    "check_option_applies",
    "check_out_array",
    "check_outcome",
    "check_quantiles",
    "check_real",
    "check_samples",
    "check_sizes",
    "check_tag_count",
    "check_tag_names",
    "check_tags",
    "check_targets",
    "check_unit_fraction",
    "image_layout",
    "images_to_nchw",
]


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit`` (scikit-learn's wording and base classes)."""


def check_is_fitted(estimator: Any, attribute: str) -> None:
    """Raise NotFittedError unless `estimator` has the learned `attribute`."""
    if getattr(estimator, attribute, None) is None:
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )


def check_features(n_features: int, expected: int, name: str, owner: str) -> None:
    """The feature count seen at fit time must match the one given now."""
    if n_features != expected:
        raise ValueError(
            f"{name} has {n_features} features, but {owner} was fitted with {expected} "
            "features; pass embeddings from the same model and layer as at fit time."
        )


def check_nonnegative(value: Any, name: str) -> float:
    """A finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0, got {value!r} ({_describe(value)}).")
    out = float(value)
    if not (out >= 0.0 and np.isfinite(out)):
        raise ValueError(f"{name} must be a finite number >= 0, got {out}.")
    return out


def _describe(x: Any) -> str:
    return type(x).__name__


def check_samples(x: Any, *, name: str = "X", min_samples: int = 1) -> NDArray[Any]:
    """Like :func:`check_embeddings`, but float64 input stays float64 (an exact path).

    Returns C-contiguous float64 for float64 input and float32 for every other numeric dtype.
    """
    return _check_matrix(x, name=name, min_samples=min_samples, keep_float64=True)


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
    out: NDArray[np.float32] = _check_matrix(
        x, name=name, min_samples=min_samples, keep_float64=False
    )
    return out


def _from_container(x: Any, name: str) -> Any:
    """Array-likes NumPy reads badly, made plain or refused with a message that says how.

    A scipy sparse matrix is refused (densifying could need far more memory than the sparse
    data: the caller decides with ``.toarray()``); a pandas DataFrame or Series with nullable
    extension columns (``Float64``, ``Int64``) becomes float64 with NaN for missing values
    (then reported by the NaN check); a torch tensor is detached and moved to the CPU.
    """
    module = type(x).__module__
    if module.startswith("scipy.sparse") or (
        hasattr(x, "tocsr") and hasattr(x, "toarray") and hasattr(x, "nnz")
    ):
        shape = tuple(getattr(x, "shape", ()))
        size = float(np.prod(shape)) * 4 / 2**30 if shape else 0.0
        raise TypeError(
            f"{name} is a scipy sparse matrix (shape {shape}); embeddings must be a dense "
            f"array: pass {name}.toarray() (about {size:.3g} GiB as float32)."
        )
    if module.startswith("pandas") and hasattr(x, "to_numpy"):
        dtypes: list[Any] = list(x.dtypes) if hasattr(x, "columns") else [x.dtype]
        if any(not isinstance(dt, np.dtype) for dt in dtypes):  # nullable extension columns
            from pandas.api.types import is_bool_dtype, is_numeric_dtype

            if dtypes and all(is_numeric_dtype(dt) and not is_bool_dtype(dt) for dt in dtypes):
                return x.to_numpy(dtype=np.float64, na_value=np.nan)
    if module.startswith("torch") and hasattr(x, "detach"):
        t = x.detach().cpu()
        try:
            return t.numpy()
        except (TypeError, RuntimeError) as exc:  # bfloat16, for instance
            raise TypeError(
                f"{name} is a torch tensor of dtype {t.dtype}, which NumPy cannot read ({exc}); "
                f"pass {name}.detach().float().cpu().numpy()."
            ) from exc
    return x


def _check_matrix(x: Any, *, name: str, min_samples: int, keep_float64: bool) -> NDArray[Any]:
    if x is None:
        raise TypeError(f"{name} is None; pass an array of shape (n_samples, n_features).")
    x = _from_container(x, name)
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
    if keep_float64 and arr.dtype == np.float64:
        return np.ascontiguousarray(arr)
    with np.errstate(over="ignore"):  # overflow is reported below, as an error that says why
        out = np.ascontiguousarray(arr, dtype=np.float32)
    if out.dtype != arr.dtype:
        # Values beyond float32's range (about 3.4e38) become inf when converted.
        _check_finite(out, name, after_cast=True)
    return out


def _check_finite(arr: NDArray[Any], name: str, *, after_cast: bool) -> None:
    # A finite total means every value is finite (NaN and inf carry into it): one reduction,
    # no boolean copy of the data. Only a non-finite total (or one that overflowed from
    # large finite values) takes the element-wise check.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return
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


def check_bool(value: Any, name: str) -> bool:
    """An on/off option: a Python bool or a numpy.bool_, returned as a Python bool.

    Anything else (the strings ``"False"`` or ``"no"``, 0 and 1, None) is a TypeError rather
    than being read by its truthiness, which would make the string ``"False"`` mean True.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    hint = ""
    if isinstance(value, str):
        hint = f" (the string {value!r} is not a boolean)"
    raise TypeError(
        f"{name} must be True or False, got {value!r} ({_describe(value)}){hint}; pass "
        f"{name}=True or {name}=False."
    )


def check_option_applies(
    value: Any, name: str, method: str, applies_to: tuple[str, ...], meaning: str
) -> None:
    """An option of some methods given with another is a ValueError, not silently ignored
    (None, the default, always passes). `meaning` says what the option is for."""
    if value is None or method in applies_to:
        return
    which = " or ".join(f"method={m!r}" for m in applies_to)
    raise ValueError(
        f"{name} applies only to {which} ({meaning}), not to method={method!r}; drop "
        f"{name}, or use {which}."
    )


def check_k(k: Any, n_samples: int, *, name: str = "k") -> int:
    """Number of neighbours: an integer in [1, n_samples - 1]."""
    out = check_int(k, name)
    if out < 1:
        raise ValueError(f"{name} must be >= 1 (the number of neighbours), got {out}.")
    if n_samples < 2:
        raise ValueError(
            f"there {'is 1 sample' if n_samples == 1 else 'are no samples'}, and neighbours "
            "need at least 2; add data."
        )
    if out >= n_samples:
        raise ValueError(
            f"{name}={out} must be less than the number of samples ({n_samples}): every point "
            f"needs {name} other points. Use {name} <= {n_samples - 1} or add data."
        )
    return out


def check_unit_fraction(value: Any, name: str, *, allow_one: bool = False) -> float:
    """A float strictly between 0 and 1 (or in (0, 1] with `allow_one`)."""
    interval = "(0, 1]" if allow_one else "(0, 1)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number in {interval}, got {value!r} ({_describe(value)})."
        )
    out = float(value)
    if not (0.0 < out < 1.0 or (allow_one and out == 1.0)):
        between = "in (0, 1]" if allow_one else "strictly between 0 and 1"
        raise ValueError(f"{name} must be {between} (a fraction, e.g. 0.01 for 1%), got {out}.")
    return out


def check_choice(value: Any, name: str, choices: Collection[str]) -> str:
    """One of a fixed set of option strings."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; got {value!r}.")
    return value


def check_labels(labels: Any, n_samples: int, *, name: str = "labels") -> NDArray[Any]:
    """Per-sample labels: a 1-D array of length n_samples, no missing values.

    Object arrays, pandas Series and Categoricals (of strings, as users have them) are
    accepted and returned as a plain NumPy array of their values (str when they are all
    strings), so the label names are kept in the results. Missing values (None, NaN,
    pandas.NA) are an error, also in a list mixing them with strings; a NumPy string array
    holding the string ``"nan"`` (what ``np.array([np.nan, "a"])`` makes of NaN) gets a
    warning, and the class "nan" is kept.
    """
    from_list = _check_missing_items(labels, name, "label")
    if _is_object_like(labels):
        values = np.asarray(labels, dtype=object).ravel().tolist()
        odd = next(
            (v for v in values if not (_is_missing(v) or isinstance(v, (str, numbers.Real)))),
            None,
        )
        if odd is not None:
            raise TypeError(
                f"{name} must be integers, strings or floats, got a {type(odd).__name__}; "
                f"convert them, e.g. np.asarray({name}, dtype=str)."
            )
        classes, codes = check_class_labels(labels, n_samples, name=name)
        if classes.dtype == object and all(isinstance(c, str) for c in classes.tolist()):
            classes = classes.astype(str)
        elif classes.dtype == object and all(
            isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes.tolist()
        ):
            classes = classes.astype(np.int64)
        out: NDArray[Any] = classes[codes]
        return out
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
    if not from_list:
        _warn_nan_strings(arr, name, "label")
    return arr


def _is_object_like(labels: Any) -> bool:
    """An object array, or a pandas Categorical / Series / Index of one kind or another."""
    dtype = getattr(labels, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(labels).dtype
        except (TypeError, ValueError):
            return False
    return str(dtype) == "category" or getattr(dtype, "kind", "") == "O"


def check_real(value: Any, name: str, *, minimum: float | None = None) -> float:
    """A finite real number (not a bool), optionally >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({_describe(value)}).")
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}.")
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}.")
    return out


def _one_hot_frame(frame: Any) -> tuple[NDArray[np.bool_], list[str]]:
    """One-hot encode every column of a DataFrame of categorical metadata as "column=value"."""
    columns: list[NDArray[np.bool_]] = []
    names: list[str] = []
    for col in frame.columns:
        series = frame[col]
        missing = np.asarray(series.isna(), dtype=bool)
        values = np.asarray(series.astype(object), dtype=object)
        present = values[~missing]
        distinct = set(present.tolist())
        try:
            uniques = sorted(distinct)
        except TypeError:  # mixed types: order by type, then text
            uniques = sorted(distinct, key=lambda v: (str(type(v)), str(v)))
        for v in uniques:
            columns.append(~missing & (values == v))
            names.append(f"{col}={v}")
    if not columns:
        raise ValueError(
            "the tag DataFrame has no values to encode (no columns, or only missing values); "
            "pass at least one column of categorical metadata."
        )
    return np.ascontiguousarray(np.stack(columns, axis=1)), names


def check_tags(
    tags: Any, tag_names: Any, *, max_columns: int, row_offset: int = 0
) -> tuple[NDArray[np.bool_], list[str]]:
    """Validate a tag matrix: (n, t) booleans or 0/1 numbers, or a DataFrame to one-hot encode.

    Returns the matrix as C-contiguous bool (n, t) and one name per column. `row_offset` is
    added to row numbers in messages (for a block of rows of a larger matrix).
    """
    if tags is None:
        raise TypeError("tags is None; pass an (n_samples, n_tags) boolean matrix or a DataFrame.")
    if hasattr(tags, "columns") and hasattr(tags, "iloc"):  # a pandas DataFrame
        if tag_names is not None:
            raise ValueError(
                "tag_names must be None when tags is a DataFrame: the names are built as "
                '"column=value" from the DataFrame itself.'
            )
        if len(tags) == 0:
            raise ValueError("tags is empty (0 rows); pass one row of metadata per sample.")
        arr, names = _one_hot_frame(tags)
    else:
        try:
            arr0 = np.asarray(tags)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"tags could not be read as an array ({exc}); pass a rectangular (n_samples, "
                "n_tags) matrix of booleans or 0/1."
            ) from exc
        if arr0.ndim != 2:
            raise ValueError(
                f"tags must be 2-D of shape (n_samples, n_tags), got shape {arr0.shape}; for a "
                "single tag use tags.reshape(-1, 1)."
            )
        if arr0.shape[0] == 0 or arr0.shape[1] == 0:
            raise ValueError(
                f"tags is empty (shape {arr0.shape}); it needs at least one sample and one tag."
            )
        if arr0.dtype == np.bool_:
            arr = np.ascontiguousarray(arr0)
        elif np.issubdtype(arr0.dtype, np.integer) or np.issubdtype(arr0.dtype, np.floating):
            binary = (arr0 == 0) | (arr0 == 1)
            if not binary.all():
                row, col = (int(i) for i in np.argwhere(~binary)[0])
                raise ValueError(
                    "tags must be binary (True/False or 0/1), but "
                    f"tags[{row_offset + row}, {col}] = {arr0[row, col].item()!r}; threshold "
                    "scores first (e.g. tags = scores > 0.5, or datagauge.tagging.property_tags) "
                    "or pass categorical metadata as a DataFrame."
                )
            arr = np.ascontiguousarray(arr0 == 1)
        else:
            raise TypeError(
                f"tags must hold booleans or 0/1 numbers, got dtype {arr0.dtype}; pass "
                "categorical metadata as a pandas DataFrame to one-hot encode it."
            )
        names = check_tag_names(tag_names, arr.shape[1])
    check_tag_count(arr.shape[1], max_columns)
    return arr, names


def check_tag_names(tag_names: Any, n_tags: int) -> list[str]:
    """One distinct name per tag column (default ``"tag0"``, ``"tag1"``, ...)."""
    if tag_names is None:
        return [f"tag{j}" for j in range(n_tags)]
    names = [str(v) for v in tag_names]
    if len(names) != n_tags:
        raise ValueError(
            f"tag_names has {len(names)} names but tags has {n_tags} columns; give one name "
            "per column."
        )
    if len(set(names)) != len(names):
        raise ValueError("tag_names must be distinct; rename the repeated names.")
    return names


def check_tag_count(n_tags: int, max_columns: int) -> None:
    """At most `max_columns` tag columns."""
    if n_tags > max_columns:
        raise ValueError(
            f"tags has {n_tags} columns, more than the {max_columns} the subgroup search "
            "supports; drop rare or uninformative tags, or split the search over groups of tags."
        )


def check_dask_matrix(
    x: Any, *, name: str, in_memory: str, columns: str = "n_features", allow_bool: bool = False
) -> Any:
    """A 2-D Dask array with known chunk sizes, for the functions of :mod:`datagauge.dask`.

    Checks what can be checked without computing (type, dtype, shape, chunk sizes); the
    values are checked chunk by chunk when the chunks are computed. Returns `x`, rechunked so
    that every row chunk holds all columns when the columns were split over chunks.
    `in_memory` names the function to use for in-memory data.
    """
    import dask.array

    if not isinstance(x, dask.array.Array):
        raise TypeError(
            f"{name} must be a dask array, got {type(x).__name__}; for in-memory data use "
            f"{in_memory}, or wrap it with dask.array.from_array({name}, chunks=(100_000, -1))."
        )
    if x.dtype == np.bool_ and not allow_bool:
        raise TypeError(
            f"{name} must hold real numbers, got dtype bool; convert it, e.g. "
            f"{name}.astype(np.float32)."
        )
    if not (
        x.dtype == np.bool_
        or np.issubdtype(x.dtype, np.integer)
        or np.issubdtype(x.dtype, np.floating)
    ):
        raise TypeError(
            f"{name} must hold {'booleans or ' if allow_bool else ''}real numbers, got dtype "
            f"{x.dtype}; convert it, e.g. {name}.astype(np.float32)."
        )
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, {columns}), got {x.ndim}-D with shape "
            f"{x.shape}; reshape it, e.g. {name}.reshape(-1, 1) for one column."
        )
    if any(np.isnan(c) for c in x.chunks[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes (rows filtered by a condition, say); call "
            f"{name}.compute_chunk_sizes() first."
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"{name} is empty (shape {x.shape}); it needs at least one sample and one column."
        )
    out: Any = x
    if len(x.chunks[1]) > 1:  # a row of a chunk must be a whole sample
        out = out.rechunk({1: -1})
    return out


def check_outcome(
    outcome: Any, n_samples: int, *, metric: str, name: str = "correct"
) -> NDArray[np.float64]:
    """Per-sample outcome: 0/1 correctness (metric="accuracy") or a real confidence.

    Returns float64 (n,). Raises when the outcome has no variation (all correct, all wrong,
    or one constant confidence): there is nothing to explain.
    """
    try:
        arr = np.asarray(outcome)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be read as an array ({exc}).") from exc
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D with one value per sample, got shape {arr.shape}; use "
            f"np.ravel({name}) if it is a column."
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but tags has {n_samples} rows; pass one outcome "
            "per sample, in the same order."
        )
    if n_samples == 0:
        raise ValueError(f"{name} is empty; pass one outcome per sample.")
    if not (
        arr.dtype == np.bool_
        or np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name} must be booleans or numbers, got dtype {arr.dtype}.")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values; every sample needs an outcome.")
    if metric == "accuracy":
        if not ((out == 0) | (out == 1)).all():
            raise ValueError(
                f'{name} must be booleans or 0/1 for metric="accuracy" (True = the model was '
                'right); for per-sample confidences pass metric="confidence".'
            )
        if out.min() == out.max():
            what = "correct" if out[0] == 1 else "wrong"
            raise ValueError(
                f"{name} is all {what}: with no {'errors' if out[0] == 1 else 'correct answers'}"
                " there is no bias to find; pass the outcomes of a model that makes mistakes."
            )
    elif out.min() == out.max():
        raise ValueError(
            f"{name} is constant ({out[0]}); with no variation there is no bias to find."
        )
    return out


def check_images(images: Any, *, name: str = "images") -> NDArray[Any]:
    """Images (n, H, W) grey or (n, H, W, 3) RGB, uint8 or floats in [0, 1]; H, W >= 3."""
    if images is None:
        raise TypeError(f"{name} is None; pass an array of shape (n, H, W) or (n, H, W, 3).")
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[-1] != 3:
        raise ValueError(
            f"{name} has shape {arr.shape}; colour images must be (n, H, W, 3) with RGB last "
            "(for channels-first data use np.moveaxis(images, 1, -1))."
        )
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be (n, H, W) grey or (n, H, W, 3) colour images, got shape "
            f"{arr.shape}; a single image needs a leading axis: images[None]."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; pass at least one image.")
    if arr.shape[1] < 3 or arr.shape[2] < 3:
        raise ValueError(f"{name} must be at least 3 x 3 pixels, got {arr.shape[1:3]}.")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be uint8 or floats in [0, 1], got dtype {arr.dtype}.")
    out = arr.astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite pixels.")
    if out.min() < 0 or out.max() > 1:
        raise ValueError(
            f"{name} must be uint8 or floats in [0, 1], but the pixels range over "
            f"[{float(out.min()):.4g}, {float(out.max()):.4g}]; divide 0..255 data by 255 or "
            "pass it as uint8."
        )
    return out


def check_quantiles(quantiles: Any) -> tuple[float, float]:
    """Two quantile levels q_lo <= q_hi, both in (0, 1)."""
    try:
        values = [float(q) for q in quantiles]
    except (TypeError, ValueError) as exc:
        raise TypeError("quantiles must be two numbers, e.g. (1/3, 2/3).") from exc
    if len(values) != 2:
        raise ValueError(f"quantiles must be two numbers (low, high), got {len(values)}.")
    lo, hi = values
    if not (0 < lo <= hi < 1):
        raise ValueError(
            f"quantiles must satisfy 0 < low <= high < 1, got ({lo}, {hi}); e.g. (1/3, 2/3)."
        )
    return lo, hi


FEEDBACK_FORMAT = "datagauge-concept-bias-query"


def check_concept_feedback(
    data: Any, classes: Collection[str], concepts: Collection[str], source: str
) -> dict[tuple[str, str], bool | None]:
    """Parse a concept-bias feedback document (see :class:`datagauge.ConceptBias`).

    Returns ``{(str(class), concept): relevant}`` for every entry of the file. Every problem
    is a ValueError naming the file and the JSON path of the bad entry.
    """
    where = f"feedback file {source}"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: the top level must be a JSON object with a 'classes' list.")
    fmt = data.get("format")
    if fmt != FEEDBACK_FORMAT:
        raise ValueError(
            f"{where}: 'format' must be {FEEDBACK_FORMAT!r}, got {fmt!r}; start from the query "
            "file written by potential_biases()."
        )
    entries = data.get("classes")
    if not isinstance(entries, list):
        raise ValueError(f"{where}: 'classes' must be a list, got {type(entries).__name__}.")
    known_classes = set(classes)
    known_concepts = set(concepts)
    out: dict[tuple[str, str], bool | None] = {}
    for i, entry in enumerate(entries):
        path = f"classes[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: {path} must be an object with 'class' and 'concepts'.")
        if "class" not in entry:
            raise ValueError(f"{where}: {path} has no 'class'.")
        label = str(entry["class"])
        if label not in known_classes:
            raise ValueError(
                f"{where}: {path}.class = {entry['class']!r} is not a class of the fitted data "
                f"(known: {', '.join(sorted(known_classes))})."
            )
        items = entry.get("concepts")
        if not isinstance(items, list):
            raise ValueError(f"{where}: {path}.concepts must be a list.")
        for j, item in enumerate(items):
            ipath = f"{path}.concepts[{j}]"
            if not isinstance(item, dict):
                raise ValueError(f"{where}: {ipath} must be an object with 'concept', 'relevant'.")
            concept = item.get("concept")
            if not isinstance(concept, str) or concept not in known_concepts:
                raise ValueError(
                    f"{where}: {ipath}.concept = {concept!r} is not a concept of the fitted data."
                )
            if "relevant" not in item:
                raise ValueError(
                    f"{where}: {ipath} has no 'relevant'; set it to true (the concept belongs "
                    "to the class, not a bias), false (spurious: a bias) or null (not reviewed)."
                )
            relevant = item["relevant"]
            if relevant is not None and not isinstance(relevant, bool):
                raise ValueError(
                    f"{where}: {ipath}.relevant must be true, false or null, got {relevant!r}."
                )
            key = (label, concept)
            if key in out:
                raise ValueError(
                    f"{where}: {ipath} repeats concept {concept!r} of class {label!r}; keep one."
                )
            out[key] = relevant
    return out


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


# --------------------------------------------------------------------------- graph analyses


__all__ += [  # checks of the graph analyses: outliers, label errors, duplicates
    "check_class_counts",
    "check_class_labels",
    "check_contamination",
    "check_not_both",
    "check_not_graph",
]


def _is_missing(value: Any) -> bool:
    """None, NaN, or a value that cannot say whether it equals itself (pandas.NA, NaT)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # bool(pandas.NA) raises TypeError
        return True


def _missing_error(name: str, what: str, missing: list[int]) -> ValueError:
    return ValueError(
        f"{name} contains {len(missing)} missing values (None, NaN or pandas.NA; first "
        f"at index {missing[0]}); every sample needs a {what}: drop those samples or "
        "give them one."
    )


def _check_missing_items(labels: Any, name: str, what: str) -> bool:
    """Missing values (None, NaN, pandas.NA) in a list or tuple, found before NumPy converts
    it: ``np.asarray([np.nan, "a"])`` would turn NaN into the string ``"nan"``, a class.

    Returns whether `labels` was a list or tuple (its strings, "nan" included, are the user's
    own, so :func:`_warn_nan_strings` does not apply).
    """
    if not isinstance(labels, (list, tuple)):
        return False
    missing = [
        i
        for i, v in enumerate(labels)
        if not isinstance(v, (str, bytes, list, tuple, np.ndarray)) and _is_missing(v)
    ]
    if missing:
        raise _missing_error(name, what, missing)
    return True


def _warn_nan_strings(arr: NDArray[Any], name: str, what: str) -> None:
    """Warn when a NumPy string array holds the exact string ``"nan"``.

    ``np.array([np.nan, "a"])`` turns NaN into ``"nan"``, so such a class very likely marks
    missing values; but a class may really be called "nan", so it is kept (a warning, not an
    error). Lists and tuples never get here with a NaN: :func:`_check_missing_items` finds it.
    """
    if arr.dtype.kind not in "SU" or arr.size == 0:
        return
    token: Any = b"nan" if arr.dtype.kind == "S" else "nan"
    hits = np.flatnonzero(arr == token)
    if hits.size:
        from ._warnings import DatagaugeWarning

        warnings.warn(
            f"{name} holds the string 'nan' ({hits.size} sample(s), first at index "
            f"{int(hits[0])}), kept as a {what} named 'nan'. If it came from a missing value "
            "(np.array([np.nan, 'a']) turns NaN into 'nan'), drop those samples or give them a "
            f"{what}; pass the {what}s as a list or object array to have missing values "
            "reported as such.",
            DatagaugeWarning,
            stacklevel=4,
        )


def check_class_labels(
    labels: Any, n_samples: int, *, name: str = "labels", what: str = "label"
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Per-sample categories of any kind: integers, booleans, finite floats, strings, or an
    object array / pandas Categorical or Series of strings.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        One category per sample; no missing values (None, NaN, pandas.NA), also not in a
        list that mixes them with strings. A NumPy string array holding the string
        ``"nan"`` (what ``np.array([np.nan, "a"])`` makes of NaN) gets a DatagaugeWarning;
        the class "nan" is kept, as it may be a real one.
    n_samples : int
        Number of samples the labels must cover.
    name, what : str
        Name of the argument and of one entry (``"label"``, ``"split name"``) in messages.

    Returns
    -------
    classes : ndarray, shape (n_classes,)
        The distinct values, sorted (``np.unique``), with the dtype of ``np.asarray(labels)``.
    codes : ndarray of int64, shape (n_samples,)
        Position of every sample's value in `classes`.
    """
    if labels is None:
        raise TypeError(f"{name} is None; pass one {what} per sample, an array of shape (n,).")
    from_list = _check_missing_items(labels, name, what)
    try:
        arr = np.asarray(labels)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} could not be read as an array ({exc}); pass one {what} per sample as a "
            "1-D list or array."
        ) from exc
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D with one {what} per sample, got shape {arr.shape}; for one-hot "
            f"labels pass {name}.argmax(axis=1), for a column use np.ravel({name})."
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but there are {n_samples} samples; pass one "
            f"{what} per sample, in the same order as the embeddings."
        )
    kind = arr.dtype.kind
    if kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(
                f"{name} contains {int(bad.sum())} NaN or infinite values (first at index "
                f"{int(np.flatnonzero(bad)[0])}); every sample needs a {what}: drop those "
                "samples or give them one."
            )
    elif kind == "O":
        missing = [i for i, v in enumerate(arr.tolist()) if _is_missing(v)]
        if missing:
            raise _missing_error(name, what, missing)
    elif kind in "SU":
        if not from_list:
            _warn_nan_strings(arr, name, what)
    elif kind not in "biu":
        raise TypeError(
            f"{name} must be integers, strings, booleans or floats, got dtype {arr.dtype}; "
            f"convert them, e.g. np.asarray({name}, dtype=str)."
        )
    try:
        classes, codes = np.unique(arr, return_inverse=True)
    except TypeError as exc:  # an object array mixing types that do not compare (str and int)
        raise TypeError(
            f"{name} mixes values that cannot be sorted together ({exc}); give every {what} "
            f"the same type, e.g. np.asarray({name}, dtype=str)."
        ) from exc
    return classes, np.ascontiguousarray(codes.reshape(-1), dtype=np.int64)


def check_class_counts(classes: NDArray[Any], counts: NDArray[np.int64], *, method: str) -> None:
    """At least two classes, and at least two samples in every class."""
    if classes.size < 2:
        raise ValueError(
            f"labels hold a single class ({classes.tolist()[0]!r}); method={method!r} compares a "
            "sample's own class with the others, so it needs at least two classes."
        )
    if counts.min() < 2:
        lone = classes[counts < 2].tolist()
        raise ValueError(
            f"{len(lone)} class(es) have a single sample (first: {lone[0]!r}); method={method!r} "
            "needs at least 2 samples per class (a sample's nearest neighbours in its own "
            "class); drop or relabel those samples, or use method='knn_vote'."
        )


def check_contamination(value: Any, name: str = "contamination") -> float:
    """The expected share of outliers, in (0, 0.5] (scikit-learn's range)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in (0, 0.5], got {value!r} ({_describe(value)}).")
    out = float(value)
    if not 0.0 < out <= 0.5:
        raise ValueError(
            f"{name} must be in (0, 0.5] (the share of samples to flag, e.g. 0.01 for 1%), "
            f"got {out}."
        )
    return out


def check_not_both(first: Any, first_name: str, second: Any, second_name: str) -> None:
    """At most one of two mutually exclusive options is given (not None)."""
    if first is not None and second is not None:
        raise ValueError(
            f"give either {first_name} or {second_name}, not both: {first_name} flags the "
            f"samples above a fixed score, {second_name} a fixed share of them."
        )


def check_not_graph(is_graph: bool, what: str, hint: str) -> None:
    """Raise TypeError when a NeighborGraph is given where the embeddings themselves are needed."""
    if is_graph:
        raise TypeError(f"{what} needs the embeddings themselves, not a NeighborGraph: {hint}")


# --------------------------------------------------------------- concept bias and sufficiency


__all__ += [  # files, renamed parameters and seeds of concept bias and sufficiency
    "check_class_share",
    "check_distinct_files",
    "check_feedback_json",
    "check_new_file",
    "check_random_state",
    "check_renamed",
    "seed_from",
]


def check_renamed(given: Collection[str], renamed: dict[str, str], owner: str) -> None:
    """Reject leftover keyword arguments: a renamed parameter's message names its new name.

    `given` are the names a function caught with ``**kwargs``; `renamed` maps an old name to
    the sentence that explains its replacement; `owner` is the function, e.g.
    ``"ConceptBias.final_results"``.
    """
    for name in given:
        if name in renamed:
            raise TypeError(f"{owner}() has no parameter {name!r}: {renamed[name]}")
        raise TypeError(f"{owner}() got an unexpected keyword argument {name!r}")


def check_class_share(fraction: Any, n_images: Any) -> tuple[float | None, int | None]:
    """Images at each end of a class's ranking: a share of the class or a count, not both.

    Returns ``(fraction, None)``, ``(None, n_images)`` or ``(None, None)`` (the caller's
    default).
    """
    if fraction is not None and n_images is not None:
        raise ValueError(
            f"give fraction or n_images, not both (got fraction={fraction!r}, "
            f"n_images={n_images!r}): fraction=0.2 takes the top and bottom 20% of each class, "
            "n_images=30 the top and bottom 30 images."
        )
    if n_images is not None:
        return None, check_int(n_images, "n_images", minimum=1)
    if fraction is None:
        return None, None
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
        raise TypeError(
            f"fraction must be a number in (0, 0.5] (a share of each class), got {fraction!r} "
            f"({_describe(fraction)})."
        )
    out = float(fraction)
    if not 0.0 < out <= 0.5:
        fix = (
            f"for {int(out)} images at each end use n_images={int(out)} instead"
            if out >= 1 and out.is_integer()
            else "e.g. fraction=0.2 for the top and bottom 20%"
        )
        raise ValueError(
            f"fraction must be in (0, 0.5] (a share of each class, at most half so that the "
            f"top and bottom never overlap), got {fraction!r}; {fix}."
        )
    return out, None


def check_new_file(path: Any, *, overwrite: Any, name: str, hint: str = "") -> None:
    """Refuse to replace an existing file unless ``overwrite=True`` (the write re-checks)."""
    overwrite = check_bool(overwrite, "overwrite")
    import os

    target = os.fspath(path)
    if not overwrite and (os.path.exists(target) or os.path.islink(target)):
        raise FileExistsError(
            f"{name} {target} already exists{hint}; pass overwrite=True to replace it, or "
            "choose another path."
        )
    if os.path.isdir(target):
        raise IsADirectoryError(
            f"{name} {target} is a folder; give a file path, e.g. ending .json."
        )


def check_distinct_files(output: Any, feedback: Any) -> None:
    """The results must not be written over the feedback file that holds the user's marks."""
    if output is None or feedback is None:
        return
    from pathlib import Path

    if Path(output).resolve() == Path(feedback).resolve():
        raise ValueError(
            f"output_file is the feedback file {feedback}; writing the results there would "
            "replace your review marks. Choose another output_file."
        )


def check_feedback_json(raw: bytes, source: str) -> Any:
    """Decode and parse a feedback file's bytes: UTF-8 JSON (a UTF-8 BOM is allowed)."""
    import json

    where = f"feedback file {source}"
    fix = (
        "save it as UTF-8 JSON (in the editor's Save As, choose the encoding UTF-8), or "
        "start again from the query file written by potential_biases()"
    )
    encoding = json.detect_encoding(raw)
    if encoding.startswith(("utf-16", "utf-32")):
        raise ValueError(f"{where} is {encoding.upper()[:6]} text, not UTF-8; {fix}.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{where} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start}); "
            f"{fix}."
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from exc
    except RecursionError as exc:
        raise ValueError(
            f"{where} is nested too deeply to read (lists or objects inside each other "
            "thousands of levels deep); a feedback file is four levels deep. Start again from "
            "the query file written by potential_biases()."
        ) from exc


def check_random_state(value: Any, name: str = "random_state") -> int | np.random.Generator | None:
    """A seed as scikit-learn takes it: None, an int >= 0, or a numpy Generator."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be None, an int >= 0 or a numpy Generator "
            f"(np.random.default_rng(seed)), got {value!r} ({_describe(value)})."
        )
    out = int(value)
    if out < 0:
        raise ValueError(f"{name} must be >= 0 (a numpy seed), got {out}.")
    return out


def seed_from(value: Any, name: str = "random_state") -> int:
    """An int seed (for torch and FAISS, which take ints) from a `random_state` as
    scikit-learn takes it: an int is used as it is, a Generator gives a draw, None a fresh
    seed from the operating system's entropy."""
    state = check_random_state(value, name)
    if isinstance(state, int):
        if state >= 2**32:
            raise ValueError(
                f"{name} must be from 0 to 2**32 - 1 here (torch, captum and FAISS take 32-bit "
                f"seeds), got {state}; pass a smaller int or a numpy Generator."
            )
        return state
    rng = state if state is not None else np.random.default_rng()
    return int(rng.integers(0, 2**31 - 1))


# --------------------------------------------------------------- familiarity and bias


__all__ += ["read_npy"]  # a user's .npy file, read with clear errors
__all__ += [  # mixture parameters, thread counts and p-values
    "check_n_threads",
    "check_positive_diagonal",
    "check_precisions",
    "check_pvalues",
    "check_statistics_finite",
]


def check_n_threads(value: Any, maximum: int, name: str = "n_threads") -> int:
    """A thread count for the compiled core: 0 for every CPU, or 1..`maximum`."""
    out = check_int(value, name)
    if not 0 <= out <= maximum:
        raise ValueError(
            f"{name} must be 0 (every CPU) or a thread count from 1 to {maximum}, got {out}."
        )
    return out


def check_precisions(prec: NDArray[np.float64], covariance_type: str, name: str) -> None:
    """Precisions as scikit-learn's ``_check_precisions`` accepts them: > 0 (diag, spherical);
    symmetric (``np.isclose(P, P.T)``) with eigenvalues > 0 (full: each (d, d) matrix; tied)."""
    if covariance_type in ("diag", "spherical"):
        bad = np.argwhere(~(prec > 0))
        if bad.size:
            at = tuple(int(i) for i in bad[0])
            where = f"{name}[{', '.join(str(i) for i in at)}]"
            raise ValueError(
                f"{name} must be > 0 for covariance_type='{covariance_type}' (precisions are "
                f"inverse variances), got {where} = {float(prec[at]):.6g}; pass 1 / variance."
            )
        return
    mats = prec[None] if prec.ndim == 2 else prec
    for k, p in enumerate(mats):
        where = name if prec.ndim == 2 else f"{name}[{k}]"
        if not np.isclose(p, p.T).all():
            i, j = (int(v) for v in np.unravel_index(int(np.argmax(np.abs(p - p.T))), p.shape))
            raise ValueError(
                f"{where} must be symmetric, but [{i}, {j}] = {p[i, j]:.6g} and [{j}, {i}] = "
                f"{p[j, i]:.6g}; pass a symmetric matrix, e.g. (P + P.T) / 2."
            )
        smallest = float(np.linalg.eigvalsh(p)[0])
        if not smallest > 0:
            raise ValueError(
                f"{where} must be positive definite, but its smallest eigenvalue is "
                f"{smallest:.6g}; pass the inverse of a covariance matrix, e.g. "
                "np.linalg.inv(np.cov(X, rowvar=False)), or add a multiple of the identity."
            )


def check_positive_diagonal(
    prec_chol: NDArray[np.float64], covariance_type: str, name: str
) -> None:
    """Cholesky factors of precisions, as a fitted mixture holds them: a positive diagonal
    (full: each (d, d) factor; tied), or positive entries (diag, spherical)."""
    if covariance_type == "full" and prec_chol.ndim == 3:
        diag = np.diagonal(prec_chol, axis1=1, axis2=2)
    elif covariance_type == "tied" and prec_chol.ndim == 2:
        diag = np.diagonal(prec_chol)
    else:
        diag = prec_chol
    bad = ~(diag > 0)
    if bad.any():
        raise ValueError(
            f"{name} must have a positive diagonal (upper-triangular Cholesky factors of the "
            "precisions, as scikit-learn's GaussianMixture.precisions_cholesky_), but it has "
            f"{float(diag[bad].flat[0]):.6g} there; it was set after fit: refit the model, or "
            f"copy it from a model fitted with covariance_type='{covariance_type}'."
        )


def check_statistics_finite(*arrays: NDArray[Any]) -> None:
    """EM statistics (sums of centred squares of the data) and the parameters made from them
    are finite; an overflow means the embeddings' values are too large for float64."""
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError(
            "The embeddings' values are too large for the Gaussian mixture: their squares, "
            "summed over the rows, overflow float64 (1.8e308). Scale them first: divide the "
            "embeddings by a constant, e.g. X / np.abs(X).max(), or standardise them with "
            "sklearn.preprocessing.StandardScaler."
        )


def check_pvalues(p: Any, name: str = "p") -> NDArray[np.float64]:
    """p-values in [0, 1], flattened to float64; NaN is refused, as
    ``scipy.stats.false_discovery_control`` refuses it."""
    try:
        arr = np.asarray(p, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be an array of p-values (numbers in [0, 1]), got {_describe(p)}."
        ) from exc
    nan = np.isnan(arr)
    if nan.any():
        raise ValueError(
            f"{name} has {int(nan.sum())} NaN p-values (first at index {int(np.argmax(nan))}); "
            "a correction needs the p-value of every test. For tests that were not run, drop "
            "them, adjust the rest and put NaN back: out = np.full_like(p, np.nan); "
            "ok = ~np.isnan(p); out[ok] = adjust_pvalues(p[ok])."
        )
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"p-values must be in [0, 1], got {name}[{first}] = {arr[first]:.6g} "
            f"({int(bad.sum())} outside); pass probabilities, not test statistics or log "
            "p-values."
        )
    return arr


__all__ += [  # checks of the distribution comparisons: Bayes error, divergence, drift
    "check_n_classes",
    "check_positive",
    "check_two_samples",
]


def check_two_samples(
    a: Any, b: Any, *, names: tuple[str, str], min_samples: int = 1, why: str = ""
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Two (n, d) matrices of one feature count, each validated as :func:`check_embeddings`
    and with at least `min_samples` rows (`why` says what needs them)."""
    first, second = names
    x_a = check_embeddings(a, name=first)
    x_b = check_embeddings(b, name=second)
    if x_a.shape[1] != x_b.shape[1]:
        raise ValueError(
            f"{first} has {x_a.shape[1]} features but {second} has {x_b.shape[1]}; compare "
            "embeddings from the same model and layer (the same number of columns)."
        )
    for name, x in ((first, x_a), (second, x_b)):
        if x.shape[0] < min_samples:
            raise ValueError(
                f"{name} has {x.shape[0]} sample(s) but at least {min_samples} are needed"
                f"{why}; add samples."
            )
    return x_a, x_b


def check_n_classes(classes: NDArray[Any], what: str) -> None:
    """At least two distinct labels."""
    if classes.size < 2:
        raise ValueError(
            f"labels hold a single class ({classes.tolist()[0]!r}); {what} compares classes, so "
            "it needs samples of at least two."
        )


def check_positive(value: Any, name: str) -> float:
    """A finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number > 0, got {value!r} ({_describe(value)}).")
    out = float(value)
    if not (out > 0.0 and np.isfinite(out)):
        raise ValueError(f"{name} must be a finite number > 0, got {out}.")
    return out


def read_npy(path: Any, option: str) -> NDArray[Any]:
    """An array from a ``.npy`` file a user named (`option`: how they named it, e.g.
    ``"--embeddings"``), with errors that say what is wrong with the file."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(f"{option} {path} is a folder; give a .npy file.")
        raise FileNotFoundError(f"{option} {path}: no such file.")
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head and head != b"\x93NUMPY" and not head.startswith(b"PK"):
        raise ValueError(
            f"{option} {path} is not a NumPy .npy file (datagauge reads arrays saved with "
            "np.save(path, array), ending .npy). Convert it first, e.g. for a CSV of numbers: "
            f"np.save('x.npy', np.loadtxt({str(path)!r}, delimiter=',')), or with pandas: "
            f"np.save('x.npy', pd.read_csv({str(path)!r}).to_numpy()); for labels, "
            "np.save('y.npy', np.asarray(values, dtype=str))."
        )
    try:
        arr = np.load(path, allow_pickle=False)
    except EOFError as exc:
        raise ValueError(
            f"{option} {path} is empty (0 bytes of array data); write it with np.save(path, array)."
        ) from exc
    except (ValueError, OSError) as exc:
        raise ValueError(
            f"{option} {path} is not a plain .npy array ({exc}); save it with "
            "np.save(path, array), strings as np.asarray(values, dtype=str), not as objects."
        ) from exc
    if not isinstance(arr, np.ndarray):  # an .npz archive
        arr.close()
        raise ValueError(f"{option} {path} is an .npz archive; pass one .npy array.")
    return arr


def check_membership(
    values: Any, n: int, *, name: str, first: str, second: str
) -> NDArray[np.bool_]:
    """Which rows of a pooled graph belong to the second sample: a boolean (or 0/1) array of
    length `n` with both values present (True or 1 marks `second`)."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"{name} must be a 1-D array with one entry per row of the graph ({n}); got shape "
            f"{arr.shape}. Pass True (or 1) for the rows of {second} and False (or 0) for "
            f"those of {first}."
        )
    if arr.dtype != np.bool_:
        if arr.dtype.kind not in "iu" or not np.isin(arr, (0, 1)).all():
            raise ValueError(
                f"{name} must be boolean (or 0/1): True marks the rows of {second}, False "
                f"those of {first}; got dtype {arr.dtype} with values other than 0 and 1."
            )
        arr = arr.astype(bool)
    m = int(np.count_nonzero(arr))
    if m == 0 or m == n:
        empty = second if m == 0 else first
        raise ValueError(
            f"{name} puts every row of the graph in one sample, so {empty} is empty; mark the "
            f"rows of {second} True and those of {first} False."
        )
    return np.ascontiguousarray(arr)
