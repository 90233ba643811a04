"""A small writer of one self-contained HTML page: sections, tables, images and plots.

Every image (dataset thumbnails, matplotlib figures) is embedded as a base64 PNG, so the
report is a single file that opens anywhere without a server or network.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["HtmlReport", "Section", "png_bytes"]

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { margin-bottom: .2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2em;
       margin-top: 2em; } h3 { margin-bottom: .3em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
.grid { display: flex; flex-wrap: wrap; gap: .6em; margin: .4em 0 1em; }
.grid figure { margin: 0; text-align: center; font-size: .75em; color: #555; }
.grid img { image-rendering: pixelated; border: 1px solid #bbb; display: block; }
.plot img { max-width: 100%; }
.note { color: #555; font-size: .9em; }
.warn { background: #fff4e5; border-left: 4px solid #f0a020; padding: .4em .8em; }
.error { background: #fdecea; border-left: 4px solid #d33; padding: .4em .8em; }
"""


def _to_uint8(image: NDArray[Any]) -> NDArray[np.uint8]:
    """An image as uint8 for PNG: floats are taken to be in [0, 1] and clipped."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr
    return (np.clip(np.nan_to_num(arr.astype(np.float64)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def png_bytes(image: NDArray[Any]) -> bytes:
    """Encode an (H, W) grayscale or (H, W, 3|4) colour image as PNG bytes.

    Parameters
    ----------
    image : ndarray, shape (H, W), (H, W, 3) or (H, W, 4)
        uint8, or floats in [0, 1] (clipped). A single-channel (H, W, 1) image is squeezed.
    """
    from PIL import Image

    arr = _to_uint8(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _cell(value: Any) -> tuple[str, str]:
    """(html text, css class) of one table cell."""
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), "text"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", ""
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not np.isfinite(v):
            return "n/a", ""
        if v != 0.0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.2e}", ""
        return f"{v:.4g}", ""
    return html.escape(str(value)), "text"


class Section:
    """One titled part of the report; add paragraphs, tables, image grids and plots."""

    def __init__(self, anchor: str, title: str) -> None:
        self.anchor = anchor
        self.title = title
        self._parts: list[str] = []

    def paragraph(self, text: str, *, css: str | None = None) -> None:
        """A paragraph of plain text (escaped); `css` is 'note', 'warn' or 'error'."""
        cls = f' class="{css}"' if css else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def heading(self, text: str) -> None:
        self._parts.append(f"<h3>{html.escape(text)}</h3>")

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        caption: str | None = None,
    ) -> None:
        """A table; numbers are right-aligned and formatted, text left-aligned."""
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        header = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        out.append(f"<tr>{header}</tr>")
        for row in rows:
            cells = []
            for value in row:
                text, cls = _cell(value)
                cells.append(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        self._parts.append("".join(out))

    def image_grid(
        self,
        images: Sequence[NDArray[Any]] | NDArray[Any],
        captions: Sequence[str],
        *,
        title: str | None = None,
        size: int = 72,
    ) -> None:
        """Images side by side, each `size` pixels wide (small images are scaled up crisply)."""
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} captions")
        if title:
            self.heading(title)
        figs = []
        for image, cap in zip(images, captions, strict=True):
            uri = _data_uri(png_bytes(np.asarray(image)))
            alt = html.escape(cap, quote=True)
            figs.append(
                f'<figure><img src="{uri}" width="{size}" alt="{alt}">'
                f"<figcaption>{html.escape(cap)}</figcaption></figure>"
            )
        self._parts.append('<div class="grid">' + "".join(figs) + "</div>")

    def figure(self, fig: Figure, *, alt: str) -> None:
        """A matplotlib figure, embedded as PNG; the figure is closed afterwards."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        finally:
            plt.close(fig)
        uri = _data_uri(buf.getvalue())
        self._parts.append(
            f'<div class="plot"><img src="{uri}" alt="{html.escape(alt, quote=True)}"></div>'
        )

    def render(self) -> str:
        body = "\n".join(self._parts)
        return (
            f'<section id="{html.escape(self.anchor, quote=True)}">'
            f"<h2>{html.escape(self.title)}</h2>\n{body}\n</section>"
        )


class HtmlReport:
    """A titled page made of sections, rendered to one self-contained HTML string."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self.sections: list[Section] = []

    def section(self, anchor: str, title: str) -> Section:
        sec = Section(anchor, title)
        self.sections.append(sec)
        return sec

    def render(self) -> str:
        nav = " ".join(
            f'<a href="#{html.escape(s.anchor, quote=True)}">{html.escape(s.title)}</a>'
            for s in self.sections
        )
        body = "\n".join(s.render() for s in self.sections)
        sub = f'<p class="note">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>\n"
            f"<body><h1>{html.escape(self.title)}</h1>{sub}<nav>{nav}</nav>\n{body}\n"
            "</body></html>\n"
        )
