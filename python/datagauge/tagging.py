"""A built-in tagger of simple image properties, computed from the pixels with numpy only.

No model and no download: each property is a number per image (brightness, contrast,
sharpness, ...). :func:`property_tags` turns the numbers into boolean tags
(``"brightness=low"``, ``"brightness=high"``) for :func:`datagauge.find_biases`, and the raw
scores can serve as concept scores for :class:`datagauge.ConceptBias`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._validation import check_images, check_quantiles

__all__ = ["COLOUR_PROPERTIES", "GRAY_PROPERTIES", "image_properties", "property_tags"]

#: Properties of every image, in column order.
GRAY_PROPERTIES: tuple[str, ...] = (
    "brightness",
    "contrast",
    "ink_area",
    "stroke_thickness",
    "slant",
    "sharpness",
    "center_offset",
    "aspect",
)
#: Extra properties of colour images, after the grey ones.
COLOUR_PROPERTIES: tuple[str, ...] = ("colourfulness",)

_CHUNK = 2048  # images per block, bounds the temporary memory


def image_properties(images: Any) -> tuple[NDArray[np.float32], list[str]]:
    """Simple properties of each image, from its pixels.

    Parameters
    ----------
    images : array-like of shape (n, H, W) or (n, H, W, 3)
        Grey or RGB images, uint8 (0..255) or floats in [0, 1]. H, W >= 3.

    Returns
    -------
    scores : ndarray of float32, shape (n, c)
        One column per property:

        - ``brightness``: mean grey level (luma 0.299 R + 0.587 G + 0.114 B for colour).
        - ``contrast``: standard deviation of the grey levels.
        - ``ink_area``: fraction of foreground pixels. The background level is the median of
          the image border; a pixel is foreground when it differs from it by more than half
          the image's largest difference (0 for a flat image).
        - ``stroke_thickness``: foreground pixels per foreground boundary pixel (a boundary
          pixel has a 4-neighbour in the background); grows with stroke width.
        - ``slant``: shear of the foreground from second moments, ``mu11 / mu02`` with x the
          column and y the row (downwards): positive when the shape leans down-right /
          up-left (i.e. a backslash), negative for a forward slash.
        - ``sharpness``: variance of the 4-neighbour Laplacian of the grey image (low = blurry).
        - ``center_offset``: distance of the foreground's centre of mass (weighted by the
          difference to the background) from the image centre, over half the diagonal.
        - ``aspect``: width / height of the foreground's bounding box (1 for a flat image).
        - ``colourfulness`` (colour images only): Hasler and Suesstrunk's metric,
          ``sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)`` with
          rg = R - G, yb = (R + G) / 2 - B.
    names : list of str
        The property names, in column order.

    Raises
    ------
    TypeError, ValueError
        If the images have the wrong shape, dtype or range.
    """
    x = check_images(images)
    colour = x.ndim == 4
    names = list(GRAY_PROPERTIES) + (list(COLOUR_PROPERTIES) if colour else [])
    out = np.empty((x.shape[0], len(names)), dtype=np.float32)
    for start in range(0, x.shape[0], _CHUNK):
        block = x[start : start + _CHUNK]
        out[start : start + block.shape[0]] = _block_properties(block, colour)
    return out, names


def _to_unit(block: NDArray[Any]) -> NDArray[np.float64]:
    if block.dtype == np.uint8:
        return block.astype(np.float64) / 255.0
    return block.astype(np.float64)


def _block_properties(block: NDArray[Any], colour: bool) -> NDArray[np.float64]:
    img = _to_unit(block)
    gray = img @ np.array([0.299, 0.587, 0.114]) if colour else img
    n, h, w = gray.shape
    flat = gray.reshape(n, -1)
    cols: list[NDArray[np.float64]] = [flat.mean(axis=1), flat.std(axis=1)]

    border = np.concatenate(
        [gray[:, 0, :], gray[:, -1, :], gray[:, 1:-1, 0], gray[:, 1:-1, -1]], axis=1
    )
    background = np.median(border, axis=1)
    dev = np.abs(gray - background[:, None, None])
    peak = dev.reshape(n, -1).max(axis=1)
    fg = (dev > 0.5 * peak[:, None, None]) & (peak[:, None, None] > 1e-6)
    count = fg.reshape(n, -1).sum(axis=1).astype(np.float64)
    cols.append(count / (h * w))

    padded = np.pad(fg, ((0, 0), (1, 1), (1, 1)), constant_values=False)
    interior = (
        padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    )
    boundary = (fg & ~interior).reshape(n, -1).sum(axis=1)
    cols.append(np.where(boundary > 0, count / np.maximum(boundary, 1), 0.0))

    ys = np.arange(h, dtype=np.float64)[None, :, None]
    xs = np.arange(w, dtype=np.float64)[None, None, :]
    wsum = dev.reshape(n, -1).sum(axis=1)
    safe = np.maximum(wsum, 1e-12)
    cy = (dev * ys).reshape(n, -1).sum(axis=1) / safe
    cx = (dev * xs).reshape(n, -1).sum(axis=1) / safe
    dy = ys - cy[:, None, None]
    dx = xs - cx[:, None, None]
    mu11 = (dev * dx * dy).reshape(n, -1).sum(axis=1) / safe
    mu02 = (dev * dy * dy).reshape(n, -1).sum(axis=1) / safe
    flat_img = wsum <= 1e-12
    cols.append(np.where(flat_img | (mu02 <= 1e-12), 0.0, mu11 / np.maximum(mu02, 1e-12)))

    lap = (
        gray[:, :-2, 1:-1]
        + gray[:, 2:, 1:-1]
        + gray[:, 1:-1, :-2]
        + gray[:, 1:-1, 2:]
        - 4 * gray[:, 1:-1, 1:-1]
    )
    cols.append(lap.reshape(n, -1).var(axis=1))

    half_diag = 0.5 * np.hypot(h - 1, w - 1)
    offset = np.hypot(cy - (h - 1) / 2, cx - (w - 1) / 2) / max(half_diag, 1e-12)
    cols.append(np.where(flat_img, 0.0, offset))

    rows_any = fg.any(axis=2)
    cols_any = fg.any(axis=1)
    height = np.where(
        rows_any.any(axis=1), h - rows_any[:, ::-1].argmax(axis=1) - rows_any.argmax(axis=1), 0
    )
    width = np.where(
        cols_any.any(axis=1), w - cols_any[:, ::-1].argmax(axis=1) - cols_any.argmax(axis=1), 0
    )
    cols.append(np.where(height > 0, width / np.maximum(height, 1), 1.0))

    if colour:
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        rg = (r - g).reshape(n, -1)
        yb = (0.5 * (r + g) - b).reshape(n, -1)
        cols.append(
            np.sqrt(rg.std(axis=1) ** 2 + yb.std(axis=1) ** 2)
            + 0.3 * np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
        )
    return np.stack(cols, axis=1)


def property_tags(
    scores: Any, names: Sequence[str], quantiles: Sequence[float] = (1 / 3, 2 / 3)
) -> tuple[NDArray[np.bool_], list[str]]:
    """Boolean "low" / "high" tags from property scores, by quantiles over the data set.

    Parameters
    ----------
    scores : array-like of shape (n, c)
        E.g. the scores of :func:`image_properties`; finite.
    names : sequence of str, length c
        Property names.
    quantiles : (float, float), default (1/3, 2/3)
        ``q_lo <= q_hi`` in (0, 1). ``"name=low"``: score <= the q_lo quantile;
        ``"name=high"``: score >= the q_hi quantile and not low.

    Returns
    -------
    tags : ndarray of bool, shape (n, m)
        Columns that would be constant (all true or all false) are left out.
    tag_names : list of str, length m
        ``"name=low"`` / ``"name=high"``, in property order.
    """
    from ._validation import check_embeddings

    s = check_embeddings(scores, name="scores").astype(np.float64)
    names = [str(v) for v in names]
    if len(names) != s.shape[1]:
        raise ValueError(
            f"names has {len(names)} entries but scores has {s.shape[1]} columns; give one "
            "name per column."
        )
    q_lo, q_hi = check_quantiles(quantiles)
    lo = np.quantile(s, q_lo, axis=0)
    hi = np.quantile(s, q_hi, axis=0)
    cols: list[NDArray[np.bool_]] = []
    out_names: list[str] = []
    for j, name in enumerate(names):
        low = s[:, j] <= lo[j]
        high = (s[:, j] >= hi[j]) & ~low
        for tag, label in ((low, "low"), (high, "high")):
            if tag.any() and not tag.all():
                cols.append(tag)
                out_names.append(f"{name}={label}")
    if not cols:
        return np.zeros((s.shape[0], 0), dtype=bool), []
    return np.ascontiguousarray(np.stack(cols, axis=1)), out_names
