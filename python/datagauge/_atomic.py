"""The one way datagauge writes files: atomically (temporary file, fsync, rename).

A crash, a full disk or Ctrl-C while writing leaves either the old file or the new one, never
a half-written file: the data go to a temporary file in the same folder, which is flushed and
fsynced, then renamed over the target (``os.replace``, atomic on POSIX and Windows). A folder
(a saved :class:`datagauge.NeighborGraph`) is written as a temporary folder and renamed the
same way.

``overwrite=False`` refuses to replace an existing file; the check and the rename are not one
operation, so two processes writing the same path at once may still race (the last rename
wins, and each file is whole).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "atomic_dir",
    "atomic_open",
    "fsync_tree",
    "save_figure",
    "save_json",
    "save_npy",
    "write_bytes",
    "write_text",
]


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if not overwrite and (path.exists() or path.is_symlink()):
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True to replace it (or choose another path)."
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _usual_mode(path: str | os.PathLike[str], *, folder: bool) -> None:
    """Give a temporary file or folder (created 0600 / 0700) the mode a plain ``open`` or
    ``mkdir`` would: 0666 or 0777 less the umask."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Open a temporary binary file next to `path`; on a clean exit it replaces `path`.

    On an exception the temporary file is removed and `path` is left as it was.
    """
    target = Path(path)
    _refuse_existing(target, overwrite)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _refuse_existing(target, overwrite)
        _usual_mode(tmp, folder=False)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, overwrite=overwrite) as f:
        f.write(data)


def write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def save_json(
    path: str | os.PathLike[str], obj: Any, *, overwrite: bool = True, indent: int | None = None
) -> None:
    """Write `obj` as strict JSON (no NaN or infinity) to `path` atomically."""
    write_text(path, json.dumps(obj, indent=indent, allow_nan=False), overwrite=overwrite)


def save_npy(path: str | os.PathLike[str], array: NDArray[Any], *, overwrite: bool = True) -> None:
    """Write `array` in NumPy's ``.npy`` format to `path` atomically (no ``.npy`` appended)."""
    with atomic_open(path, overwrite=overwrite) as f:
        np.save(f, array, allow_pickle=False)


def save_figure(path: str | os.PathLike[str], figure: Any, **kwargs: Any) -> None:
    """Save a matplotlib figure to `path` atomically (format from the suffix)."""
    buffer = io.BytesIO()
    fmt = Path(path).suffix.lstrip(".") or "png"
    figure.savefig(buffer, format=fmt, **kwargs)
    write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary folder next to `path`; on a clean exit it becomes `path`.

    Files written into it should be fsynced by the caller (:func:`fsync_tree` does it for
    all). An existing `path` is replaced only with ``overwrite=True``: it is first renamed
    aside, then removed once the new folder is in place.
    """
    target = Path(path)
    _refuse_existing(target, overwrite)
    folder = target.parent if str(target.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder))
    try:
        yield tmp
        fsync_tree(tmp)
        _usual_mode(tmp, folder=True)
        _refuse_existing(target, overwrite)
        old = None
        if target.exists() or target.is_symlink():
            if not target.is_dir() or target.is_symlink():
                raise FileExistsError(
                    f"{target} exists and is not a folder; remove it or choose another path."
                )
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=folder))
            os.rmdir(old)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(folder)


def fsync_tree(folder: Path) -> None:
    """fsync every file directly in `folder`, then the folder itself."""
    for entry in folder.iterdir():
        if entry.is_file():
            fd = os.open(entry, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)
