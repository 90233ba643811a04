"""Sufficiency: learning-curve fits (oracles: DataEval 1.1.4's stored fits, scipy), the runner,
properties, and one test per bad input."""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from datagauge import (
    DatagaugeWarning,
    ExtrapolationWarning,
    LearningCurve,
    PoorFitWarning,
    Sufficiency,
    SufficiencyResult,
    fit_learning_curve,
    geometric_steps,
    sufficiency,
)
from datagauge._kernels import curves as kernels
from datagauge.datasets import load_digits
from datagauge.sufficiency import N_BOOTSTRAP

REFERENCE = Path(__file__).parent / "data" / "sufficiency_dataeval.json"


def power_metric(n, c, m, c0):
    return 1.0 - (c * np.asarray(n, dtype=np.float64) ** -m + c0)


def synthetic(c=0.8, m=0.5, c0=0.05, noise=0.003, runs=3, seed=0, n=5000, substeps=10):
    steps = geometric_steps(n, substeps)
    rng = np.random.default_rng(seed)
    values = power_metric(steps, c, m, c0) + rng.normal(0.0, noise, (runs, steps.size))
    return steps, np.clip(values, 0.0, 1.0)


# ----------------------------------------------------------------------------- strategies
# Module level, so that they pickle and can run in worker processes.


class Arrays:
    """A minimal dataset: features and labels, sized and indexable."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class Centroids:
    """A nearest-centroid classifier in numpy (fast, deterministic, picklable)."""

    def __init__(self):
        self.labels = None
        self.centres = None


class CentroidTrain:
    def train(self, model, dataset, indices):
        x, y = dataset.x[indices], dataset.y[indices]
        model.labels = np.unique(y)
        model.centres = np.stack([x[y == k].mean(axis=0) for k in model.labels])


class CentroidEval:
    def evaluate(self, model, dataset):
        d = ((dataset.x[:, None, :] - model.centres[None]) ** 2).sum(axis=2)
        pred = model.labels[d.argmin(axis=1)]
        return {
            "accuracy": float(np.mean(pred == dataset.y)),
            "error": float(np.mean(pred != dataset.y)),
        }


class Recorder:
    """A 'model' that records what it was trained on."""

    def __init__(self):
        self.seen = []


class RecordTrain:
    def train(self, model, dataset, indices):
        model.seen.append(np.asarray(indices).copy())


class RecordEval:
    def evaluate(self, model, dataset):
        total = sum(len(s) for s in model.seen)
        return {"trainings": float(len(model.seen)), "samples": float(total)}


class ConstEval:
    def __init__(self, value):
        self.value = value

    def evaluate(self, model, dataset):
        return self.value


def digits_split(n_train=300, n_test=300):
    digits = load_digits()
    x, y = digits.flat().astype(np.float64), digits.labels
    order = np.random.default_rng(0).permutation(len(x))
    tr, te = order[:n_train], order[n_train : n_train + n_test]
    return Arrays(x[tr], y[tr]), Arrays(x[te], y[te])


# ----------------------------------------------------------------------------- oracles


def _reference():
    return json.loads(REFERENCE.read_text())["curves"]


@pytest.mark.parametrize("curve", _reference(), ids=lambda c: c["name"])
def test_fit_matches_dataeval(curve):
    de = curve["dataeval"]
    fit = fit_learning_curve(curve["steps"], curve["values"], model="pow3")
    # the same minimum (or a lower one) ...
    assert fit.loss <= de["loss"] * (1 + 1e-6) + 1e-15
    # ... so the same projections, out to 10x the largest measured size
    np.testing.assert_allclose(fit.project(curve["sizes"]), de["projection"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(fit.params, de["params"], rtol=0.05, atol=2e-3)


@pytest.mark.parametrize("curve", _reference(), ids=lambda c: c["name"])
def test_inv_project_reaches_target_where_dataeval_falls_short(curve):
    fit = fit_learning_curve(curve["steps"], curve["values"], model="pow3")
    targets = np.asarray(curve["targets"])
    ours = fit.inv_project(targets)
    theirs = np.asarray(curve["dataeval"]["inv_project"])
    np.testing.assert_array_equal(ours == -1, theirs == -1)
    for t, n, d in zip(targets, ours, theirs, strict=True):
        if n == -1:
            assert t >= 1.0 - fit.c0  # at or beyond the asymptote
            continue
        assert fit.project(n)[0] >= t
        if n > 1:
            assert fit.project(n - 1)[0] < t
        # DataEval truncates: its size is one short and misses the target
        assert d == n - 1
        assert fit.project(d)[0] < t


def _scipy_best(steps, err, bounded):
    from scipy.optimize import least_squares

    lo = [-np.inf, 0.0, 0.0 if bounded else -np.inf]
    hi = [np.inf, np.inf, 1.0 if bounded else np.inf]
    best = np.inf
    for c in (0.1, 1.0, 10.0):
        for m in (0.05, 0.3, 1.0, 3.0):
            for c0 in (0.0, 0.1, 0.5):
                res = least_squares(
                    lambda p: p[0] * steps ** -p[1] + p[2] - err,
                    [c, m, c0],
                    bounds=(lo, hi),
                    xtol=1e-14,
                    ftol=1e-14,
                    gtol=1e-14,
                )
                best = min(best, 2 * res.cost)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_fit_reaches_scipy_multistart_minimum(seed):
    rng = np.random.default_rng(seed)
    c, m, c0 = rng.uniform(0.3, 3.0), rng.uniform(0.1, 1.2), rng.uniform(0.0, 0.2)
    steps, values = synthetic(c, m, c0, noise=0.01, runs=1, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoorFitWarning)  # noisy on purpose: the minimum counts
        fit = fit_learning_curve(steps, values[0], model="pow3")
    best = _scipy_best(steps.astype(float), 1.0 - values[0], True)
    assert fit.loss <= best * (1 + 1e-6) + 1e-14


def test_gradient_matches_finite_differences():
    steps, values = synthetic(runs=1)
    logn, y = np.log(steps.astype(float)), 1.0 - values[0]
    p = np.array([0.7, 0.45, 0.06])
    g = kernels.gradient(p, logn, y)
    for i in range(3):
        h = np.zeros(3)
        h[i] = 1e-6
        fd = (kernels.loss(p + h, logn, y) - kernels.loss(p - h, logn, y)) / 2e-6
        assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-10)


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("seed", range(4))
def test_fit_recovers_parameters_of_noisy_power_law(seed):
    steps, values = synthetic(0.8, 0.5, 0.05, noise=5e-4, runs=5, seed=seed, n=20000, substeps=15)
    fit = fit_learning_curve(steps, values, model="pow3")
    assert fit.c == pytest.approx(0.8, rel=0.1)
    assert fit.m == pytest.approx(0.5, abs=0.02)
    assert fit.c0 == pytest.approx(0.05, abs=0.002)
    assert fit.r2 > 0.99


def test_exact_power_law_is_recovered_exactly():
    steps = geometric_steps(1000, 8)
    fit = fit_learning_curve(steps, power_metric(steps, 1.3, 0.7, 0.1), model="pow3")
    np.testing.assert_allclose(fit.params, (1.3, 0.7, 0.1), rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    c=st.floats(0.2, 5.0),
    m=st.floats(0.1, 1.5),
    c0=st.floats(0.0, 0.3),
    seed=st.integers(0, 10_000),
)
def test_projection_monotone_and_inverse_round_trips(c, m, c0, seed):
    assume(c * 50.0**-m > 0.02)  # a curve, not noise around a plateau
    steps, values = synthetic(c, m, c0, noise=0.002, runs=1, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoorFitWarning)
        fit = fit_learning_curve(steps, values[0], model="pow3")
    sizes = np.unique(np.geomspace(1, 10 * steps[-1], 60).astype(np.int64))
    proj = fit.project(sizes)
    # rising for c > 0 (the usual case), falling for c < 0
    assert np.all(np.sign(fit.c) * np.diff(proj) >= -1e-12)
    if fit.c > 0 and fit.m > 0:
        for n in (int(steps[0]), int(steps[len(steps) // 2]), int(steps[-1]), 3 * int(steps[-1])):
            if not 0.0 < fit.project(n)[0] < 1.0:
                continue  # clipped to the unit interval there: no single size maps to it
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExtrapolationWarning)  # below the first step
                back = fit.inv_project(fit.project(n))[0]
            assert abs(back - n) <= 1
            assert fit.project(back)[0] >= fit.project(n)[0]


def test_inv_project_minus_one_only_for_unreachable_targets():
    steps = geometric_steps(1000, 8)
    fit = fit_learning_curve(steps, power_metric(steps, 0.8, 0.5, 0.05), model="pow3")
    best = 1.0 - fit.c0
    # reachable, beyond the asymptote, needing > 2**48 samples, already reached by 1 sample
    targets = [0.9, best + 0.01, best - 1e-12, 0.0]
    with pytest.warns(ExtrapolationWarning, match="below the smallest measured size"):
        out = fit.inv_project(targets)
    assert out[0] > 0
    assert fit.project(out[0])[0] >= 0.9 > fit.project(out[0] - 1)[0]
    assert out[1] == -1
    assert out[2] == -1
    assert out[3] == 1


def test_lower_is_better_metric():
    steps = geometric_steps(2000, 8)
    loss = 2.0 * steps.astype(float) ** -0.4 + 0.3  # a loss above 1: unbounded
    fit = fit_learning_curve(steps, loss, model="pow3", higher_is_better=False, bounded=False)
    np.testing.assert_allclose(fit.params, (2.0, 0.4, 0.3), rtol=1e-5)
    proj = fit.project([10, 100, 1000, 10000])
    assert np.all(np.diff(proj) < 0)
    n = fit.inv_project(0.4)[0]
    assert fit.project(n)[0] <= 0.4 < fit.project(n - 1)[0]


def test_bootstrap_band_and_determinism():
    steps, values = synthetic(noise=0.01, runs=5)
    a = fit_learning_curve(steps, values, model="pow3", random_state=3)
    b = fit_learning_curve(steps, values, model="pow3", random_state=3)
    assert a.to_dict() == b.to_dict()
    assert a.bootstrap is not None
    assert a.bootstrap.shape == (N_BOOTSTRAP, 3)
    lower, upper = a.band(steps)
    assert np.all(lower <= upper)
    assert np.all(upper - lower > 0)
    # the band widens away from the data
    lo_far, hi_far = a.band(10 * steps[-1])
    assert hi_far[0] - lo_far[0] > upper[-1] - lower[-1]
    with pytest.raises(ValueError, match="single run"):
        fit_learning_curve(steps, values[0]).band(steps)


def test_warnings_for_poor_fit_and_far_extrapolation():
    steps = geometric_steps(1000, 8)
    noise = np.random.default_rng(0).uniform(0.4, 0.6, steps.size)
    with pytest.warns(PoorFitWarning, match="R\\^2"):
        fit_learning_curve(steps, noise)
    fit = fit_learning_curve(steps, power_metric(steps, 0.8, 0.5, 0.05))
    with pytest.warns(ExtrapolationWarning, match="times the largest measured"):
        fit.project(100 * steps[-1])
    assert issubclass(ExtrapolationWarning, DatagaugeWarning)


def test_geometric_steps_follow_dataeval_and_never_hit_zero():
    # DataEval: np.geomspace(0.01 * n, n, substeps, dtype=np.intp)
    for n, k in ((1000, 10), (5000, 7), (1797, 5)):
        np.testing.assert_array_equal(
            geometric_steps(n, k), np.geomspace(0.01 * n, n, k, dtype=np.intp)
        )
    small = geometric_steps(50, 10)
    assert small.min() >= 1
    assert np.all(np.diff(small) > 0)
    assert small[-1] == 50


# ----------------------------------------------------------------------------- the runner


def test_reset_before_every_step_and_without_replacement():
    train = Arrays(np.zeros((200, 1)), np.zeros(200))
    cfg = Sufficiency.Config(RecordTrain(), RecordEval(), runs=2, substeps=5, unit_interval=False)
    res = Sufficiency(Recorder(), cfg).evaluate(
        train, train, n_jobs=1, progress=False, random_state=1
    )
    # a fresh model at every step: one training each, on exactly `step` samples
    np.testing.assert_array_equal(res.measures["trainings"], 1.0)
    np.testing.assert_array_equal(res.measures["samples"], np.tile(res.steps, (2, 1)))
    # DataEval's behaviour on request: one model trained further at each step
    cfg2 = Sufficiency.Config(
        RecordTrain(), RecordEval(), runs=1, substeps=5, unit_interval=False, reset_each_step=False
    )
    res2 = Sufficiency(Recorder(), cfg2).evaluate(train, train, progress=False, random_state=1)
    np.testing.assert_array_equal(res2.measures["trainings"][0], np.arange(1, 6))


def test_subsets_are_nested_prefixes_of_one_shuffle_without_replacement():
    seen = []

    class Spy:
        def train(self, model, dataset, indices):
            seen.append(np.asarray(indices).copy())

    train = Arrays(np.zeros((300, 1)), np.zeros(300))
    cfg = Sufficiency.Config(Spy(), RecordEval(), runs=1, substeps=4, unit_interval=False)
    Sufficiency(Recorder(), cfg).evaluate(train, train, progress=False, random_state=0)
    assert seen[-1].size == 300
    assert np.unique(seen[-1]).size == 300  # a permutation: no sample twice
    for a, b in itertools.pairwise(seen):
        np.testing.assert_array_equal(b[: a.size], a)
    seen.clear()
    cfg_r = Sufficiency.Config(
        Spy(), RecordEval(), runs=1, substeps=4, unit_interval=False, replace=True
    )
    Sufficiency(Recorder(), cfg_r).evaluate(train, train, progress=False, random_state=0)
    assert np.unique(seen[-1]).size < 300


def test_runner_is_deterministic_and_records_its_seed():
    train, test = digits_split(200, 200)
    cfg = Sufficiency.Config(CentroidTrain(), CentroidEval(), runs=2, substeps=5)
    kw = {"n_jobs": 1, "progress": False}
    a = Sufficiency(Centroids(), cfg).evaluate(train, test, random_state=7, **kw)
    b = Sufficiency(Centroids(), cfg).evaluate(train, test, random_state=7, **kw)
    assert a.to_dict() == b.to_dict()
    c = Sufficiency(Centroids(), cfg).evaluate(train, test, **kw)
    d = Sufficiency(Centroids(), cfg).evaluate(train, test, random_state=c.random_state, **kw)
    assert c.to_dict() == d.to_dict()


def test_parallel_runs_equal_serial_runs():
    train, test = digits_split(200, 200)
    cfg = Sufficiency.Config(CentroidTrain(), CentroidEval(), runs=2, substeps=5)
    serial = Sufficiency(Centroids(), cfg).evaluate(train, test, progress=False, random_state=3)
    parallel = Sufficiency(Centroids(), cfg).evaluate(
        train, test, n_jobs=2, progress=False, random_state=3
    )
    assert serial.to_dict() == parallel.to_dict()


def test_unpicklable_strategies_run_serially_with_a_note():
    class LocalEval:  # defined in a function: cannot be pickled
        def evaluate(self, model, dataset):
            return {"accuracy": 0.5}

    train = Arrays(np.zeros((100, 1)), np.zeros(100))
    cfg = Sufficiency.Config(RecordTrain(), LocalEval(), runs=2, substeps=3)
    with pytest.warns(DatagaugeWarning, match="serially"):
        res = Sufficiency(Recorder(), cfg).evaluate(train, train, n_jobs=2, progress=False)
    assert res.measures["accuracy"].shape == (2, 3)


def test_progress_counter_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails: fallback counter
    train = Arrays(np.zeros((100, 1)), np.zeros(100))
    cfg = Sufficiency.Config(RecordTrain(), RecordEval(), runs=2, substeps=3, unit_interval=False)
    Sufficiency(Recorder(), cfg).evaluate(train, train, n_jobs=1, random_state=0)
    assert "sufficiency: 6/6 steps" in capsys.readouterr().err


def test_sklearn_logistic_regression_on_digits_end_to_end():
    pytest.importorskip("sklearn")
    pd = pytest.importorskip("pandas")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    class Train:
        def train(self, model, dataset, indices):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(dataset.x[indices], dataset.y[indices])

    class Evaluate:
        def evaluate(self, model, dataset):
            return {"accuracy": model.score(dataset.x, dataset.y)}

    train, test = digits_split(400, 300)
    cfg = Sufficiency.Config(Train(), Evaluate(), runs=2, substeps=6)
    res = Sufficiency(LogisticRegression(max_iter=100), cfg).evaluate(
        train, test, progress=False, random_state=0
    )
    acc = res.measures["accuracy"]
    assert acc.shape == (2, 6)
    np.testing.assert_array_equal(res.steps, geometric_steps(400, 6))
    assert res.mean["accuracy"][-1] > res.mean["accuracy"][0] + 0.2
    curve = res.fit()["accuracy"]
    assert curve.r2 > 0.8
    assert 0.0 <= curve.c0 <= 1.0
    table = res.project([400, 2000])
    assert list(table.columns) == [
        "size",
        "accuracy",
        "accuracy_lower",
        "accuracy_upper",
    ]
    assert table["accuracy"].is_monotonic_increasing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        needed = res.inv_project([0.6, 0.999])
    assert needed["accuracy"].dtype == pd.Int64Dtype()
    assert 1 <= needed["accuracy"][0] <= 400
    frame = res.to_dataframe()
    assert list(frame.columns) == ["run", "step", "accuracy"]
    assert len(frame) == 12
    again = SufficiencyResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert again.to_dict() == res.to_dict()
    np.testing.assert_array_equal(again.measures["accuracy"], acc)


def test_inv_project_with_per_metric_targets():
    pytest.importorskip("pandas")
    steps, values = synthetic(runs=2)
    res = SufficiencyResult(
        steps=steps, measures={"a": values, "e": 1.0 - values}, lower_is_better=("e",)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)  # 0.2 is met below the first step
        table = res.inv_project({"a": [0.9], "e": [0.1, 0.2]})
    assert table["target"].tolist() == [0.1, 0.2, 0.9]
    assert table["a"].isna().tolist() == [True, True, False]
    curves = res.fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        assert table["e"].tolist()[:2] == curves["e"].inv_project([0.1, 0.2]).tolist()


def test_plot_draws_one_panel_per_metric():
    pytest.importorskip("matplotlib")
    steps, values = synthetic(runs=3)
    res = SufficiencyResult(steps=steps, measures={"a": values, "b": values * 0.9})
    fig = res.plot(projection=[10_000, 50_000])
    assert len(fig.axes) == 2
    assert fig.axes[0].get_xscale() == "log"


def test_tiny_torch_cnn_run():
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.head = torch.nn.Linear(4 * 4 * 4, 10)

        def forward(self, x):
            h = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
            return self.head(h.flatten(1))

    class Train:
        def train(self, model, dataset, indices):
            torch.manual_seed(0)
            x = torch.as_tensor(dataset.x[indices], dtype=torch.float32).reshape(-1, 1, 8, 8)
            y = torch.as_tensor(dataset.y[indices])
            opt = torch.optim.SGD(model.parameters(), lr=0.5)
            model.train()
            for _ in range(20):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()

    class Evaluate:
        def evaluate(self, model, dataset):
            model.eval()
            with torch.inference_mode():
                x = torch.as_tensor(dataset.x, dtype=torch.float32).reshape(-1, 1, 8, 8)
                pred = model(x).argmax(1).numpy()
            return {"accuracy": float(np.mean(pred == dataset.y))}

    torch.manual_seed(0)
    train, test = digits_split(300, 200)
    cfg = Sufficiency.Config(Train(), Evaluate(), runs=2, substeps=3)
    res = Sufficiency(Net(), cfg).evaluate(train, test, progress=False, random_state=0)
    acc = res.measures["accuracy"]
    assert acc.shape == (2, 3)
    assert np.isfinite(acc).all()
    assert res.mean["accuracy"][-1] > res.mean["accuracy"][0]


# ----------------------------------------------------------------------------- fitted once, n_jobs


def _two_metrics():
    steps, values = synthetic(runs=3)
    return SufficiencyResult(
        steps=steps, measures={"a": values, "e": 1.0 - values}, lower_is_better=("e",)
    )


def test_curves_are_fitted_once_per_result(monkeypatch):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    reference = _two_metrics()
    want_project = reference.project([6000, 10_000])
    want_inv = reference.inv_project({"a": [0.85, 0.9], "e": [0.15, 0.1]})
    calls = {"fits": 0}
    original = sufficiency._fit_curve

    def counting(*args):
        calls["fits"] += 1
        return original(*args)

    monkeypatch.setattr(sufficiency, "_fit_curve", counting)
    res = _two_metrics()
    first = res.project([6000, 10_000])
    inv = res.inv_project({"a": [0.85, 0.9], "e": [0.15, 0.1]})
    res.plot(projection=[10_000])
    curves = res.fit()
    second = res.project([6000, 10_000])
    # one fit (with its bootstrap) per metric, whatever is asked afterwards
    res.size_needed([0.9], metrics="a")
    assert calls == {"fits": 2}
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, want_project)
    pd.testing.assert_frame_equal(inv, want_inv)
    assert res.fit("a")["a"] is curves["a"]
    assert curves["a"].to_dict() == reference.fit("a")["a"].to_dict()
    # another seed is another fit; None or a Generator asks for fresh draws: never cached
    res.fit("a", random_state=1)
    res.fit("a", random_state=1)
    assert calls["fits"] == 3
    res.fit("a", random_state=None)
    res.fit("a", random_state=np.random.default_rng(0))
    assert calls["fits"] == 5
    # the cache is not data: not in to_dict, not compared
    assert set(res.to_dict()) == set(reference.to_dict())
    assert SufficiencyResult.from_dict(res.to_dict()).to_dict() == reference.to_dict()


def test_cached_poor_fit_still_warns_every_time():
    steps = geometric_steps(1000, 8)
    noise = np.random.default_rng(0).uniform(0.4, 0.6, (2, steps.size))
    res = SufficiencyResult(steps=steps, measures={"a": noise})
    for _ in range(2):
        with pytest.warns(PoorFitWarning, match="R\\^2"):
            res.fit()


POOL_SIZES = []


class _InlinePool:
    """Stands in for the process pool: records its size, runs each submission at once."""

    def __init__(self, max_workers, mp_context=None):
        POOL_SIZES.append(max_workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        import concurrent.futures

        future = concurrent.futures.Future()
        future.set_result(fn(*args))
        return future


def test_n_jobs_none_means_every_cpu(monkeypatch):
    import concurrent.futures

    import datagauge._threads

    monkeypatch.setattr(datagauge._threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", _InlinePool)
    POOL_SIZES.clear()
    train, test = digits_split(200, 200)
    cfg = Sufficiency.Config(CentroidTrain(), CentroidEval(), runs=3, substeps=5)
    serial = Sufficiency(Centroids(), cfg).evaluate(
        train, test, n_jobs=1, progress=False, random_state=3
    )
    assert POOL_SIZES == []
    default = Sufficiency(Centroids(), cfg).evaluate(train, test, progress=False, random_state=3)
    assert POOL_SIZES == [3]  # min(4 CPUs, 3 runs)
    assert default.to_dict() == serial.to_dict()


def test_n_jobs_none_with_unpicklable_strategies_runs_serially_without_a_warning():
    class LocalEval:  # defined in a function: cannot be pickled
        def evaluate(self, model, dataset):
            return {"accuracy": 0.5}

    train = Arrays(np.zeros((100, 1)), np.zeros(100))
    cfg = Sufficiency.Config(RecordTrain(), LocalEval(), runs=2, substeps=3)
    res = Sufficiency(Recorder(), cfg).evaluate(train, train, progress=False, random_state=0)
    assert res.measures["accuracy"].shape == (2, 3)


def test_thread_counts_set_for_the_runs_and_restored():
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    seen = []

    class Spy:
        def train(self, model, dataset, indices):
            seen.append(numba.get_num_threads())
            if len(seen) == 5:
                raise RuntimeError("training failed")

    train = Arrays(np.zeros((100, 1)), np.zeros(100))
    cfg = Sufficiency.Config(Spy(), RecordEval(), runs=1, substeps=3, unit_interval=False)
    Sufficiency(Recorder(), cfg).evaluate(train, train, n_jobs=1, progress=False, random_state=0)
    assert seen == [1, 1, 1]
    assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError, match="training failed"):
        Sufficiency(Recorder(), cfg).evaluate(
            train, train, n_jobs=1, progress=False, random_state=0
        )
    assert numba.get_num_threads() == before


def test_random_state_takes_a_generator():
    train = Arrays(np.zeros((200, 1)), np.zeros(200))
    cfg = Sufficiency.Config(RecordTrain(), RecordEval(), runs=2, substeps=4, unit_interval=False)

    def run(random_state):
        seen = Sufficiency(Recorder(), cfg).evaluate(
            train, train, n_jobs=1, progress=False, random_state=random_state
        )
        return seen

    a = run(np.random.default_rng(5))
    b = run(np.random.default_rng(5))
    assert a.to_dict() == b.to_dict()
    assert isinstance(a.random_state, int)
    assert run(a.random_state).to_dict() == a.to_dict()  # the recorded seed repeats it
    for bad in (1.5, np.random.RandomState(0), "0"):
        with pytest.raises(TypeError, match="random_state must be None, an int >= 0 or a numpy"):
            run(bad)
    res = _two_metrics()
    curves = res.fit(random_state=np.random.default_rng(0))
    again = res.fit(random_state=np.random.default_rng(0))
    np.testing.assert_array_equal(curves["a"].bootstrap, again["a"].bootstrap)
    with pytest.raises(TypeError, match="numpy Generator"):
        res.fit(random_state=0.5)


# ----------------------------------------------------------------------------- bad input


def _run(evaluation, n=60, substeps=3, **kw):
    train = Arrays(np.zeros((n, 1)), np.zeros(n))
    cfg = Sufficiency.Config(RecordTrain(), evaluation, runs=1, substeps=substeps, **kw)
    return Sufficiency(Recorder(), cfg).evaluate(train, train, progress=False, random_state=0)


def test_bad_metric_not_finite():
    with pytest.raises(ValueError, match=r"'accuracy' is nan.*must be finite"):
        _run(ConstEval({"accuracy": math.nan}))


def test_bad_evaluate_returns_wrong_type():
    with pytest.raises(TypeError, match=r"returned list.*dict of metric name -> float"):
        _run(ConstEval([0.5]))


def test_bad_metric_value_type():
    with pytest.raises(TypeError, match="single number"):
        _run(ConstEval({"accuracy": "high"}))


def test_bad_reset_returns_none():
    with pytest.raises(TypeError, match="reset_strategy returned None"):
        _run(ConstEval({"accuracy": 0.5}), reset_strategy=lambda model: None)


def test_bad_metric_names_change():
    class Flip:
        calls = 0

        def evaluate(self, model, dataset):
            Flip.calls += 1
            return {"a": 0.5} if Flip.calls == 1 else {"b": 0.5}

    with pytest.raises(ValueError, match="same names"):
        _run(Flip())


def test_bad_fewer_than_three_steps():
    with pytest.raises(ValueError, match="at least 3 distinct"):
        fit_learning_curve([10, 100], [0.5, 0.7])
    with pytest.raises(ValueError, match="at least 3 distinct"):
        fit_learning_curve([10, 10, 100], [0.5, 0.6, 0.7])


def test_bad_targets_outside_range():
    steps = geometric_steps(1000, 8)
    fit = fit_learning_curve(steps, power_metric(steps, 0.8, 0.5, 0.05))
    with pytest.raises(ValueError, match="outside the metric's range"):
        fit.inv_project([0.9, 95])
    with pytest.raises(ValueError, match="NaN"):
        fit.inv_project(math.nan)


def test_bad_substeps_larger_than_dataset():
    with pytest.raises(ValueError, match="larger than the training set"):
        _run(ConstEval({"accuracy": 0.5}), n=5, substeps=8)


def test_small_dataset_repeated_sizes_warn():
    with pytest.warns(DatagaugeWarning, match="distinct sizes"):
        res = _run(ConstEval({"accuracy": 0.5}), n=50, substeps=10)
    assert res.steps.min() >= 1
    assert np.all(np.diff(res.steps) > 0)


def test_bad_values_outside_unit_interval():
    with pytest.raises(ValueError, match="bounded=False"):
        fit_learning_curve([10, 100, 1000], [0.5, 1.5, 2.0])


def test_bad_values_shape_and_sizes():
    with pytest.raises(ValueError, match="one value per step"):
        fit_learning_curve([10, 100, 1000], [0.5, 0.6])
    fit = fit_learning_curve([10, 100, 1000], [0.5, 0.6, 0.65])
    with pytest.raises(ValueError, match=">= 1"):
        fit.project([0, 10])


def test_bad_config():
    with pytest.raises(TypeError, match="train\\(model, dataset, indices\\)"):
        Sufficiency.Config(object(), CentroidEval())
    with pytest.raises(ValueError, match="runs must be >= 1"):
        Sufficiency.Config(CentroidTrain(), CentroidEval(), runs=0)
    with pytest.raises(TypeError, match=r"Sufficiency\.Config"):
        Sufficiency(Centroids(), {"runs": 2})
    with pytest.raises(ValueError, match="steps <= 60"):
        _run(ConstEval({"accuracy": 0.5}), steps=[10, 20, 100])


def test_bad_dataset_without_length():
    cfg = Sufficiency.Config(RecordTrain(), RecordEval())
    with pytest.raises(TypeError, match="must have a length"):
        Sufficiency(Recorder(), cfg).evaluate(iter(range(10)), [1, 2], progress=False)


def test_config_is_frozen_and_pickles():
    import dataclasses
    import pickle

    cfg = Sufficiency.Config(CentroidTrain(), CentroidEval(), runs=2, lower_is_better=["error"])
    assert cfg.lower_is_better == ("error",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.runs = 3
    again = pickle.loads(pickle.dumps(cfg))
    assert type(again) is Sufficiency.Config
    assert again.runs == 2
    assert "Sufficiency.Config" in repr(cfg)


def test_flat_and_perfect_curves():
    steps = geometric_steps(1000, 6)
    perfect = fit_learning_curve(steps, np.ones(steps.size))
    np.testing.assert_allclose(perfect.project([10, 10_000]), 1.0)
    with pytest.warns(ExtrapolationWarning, match="below the smallest measured size"):
        assert perfect.inv_project(1.0)[0] == 1
    flat = fit_learning_curve(steps, np.full(steps.size, 0.7))
    np.testing.assert_allclose(flat.project([5, 5000]), 0.7)
    with pytest.warns(ExtrapolationWarning, match="below the smallest measured size"):
        np.testing.assert_array_equal(flat.inv_project([0.6, 0.8]), [1, -1])


# ----------------------------------------------------------------------------- issue 15


def test_inv_project_of_a_falling_curve_never_answers_below_the_measured_range():
    # the metric falls with n (c < 0): a target above every measured value is out of reach,
    # not "1 sample" (the curve passes it only below the smallest measured size)
    steps = geometric_steps(2000, 8)
    values = power_metric(steps, -0.4, 0.3, 0.5)  # 0.5 + 0.4 n^-0.3, falling
    fit = fit_learning_curve(steps, values, model="pow3")
    assert fit.c < 0
    target = float(values.max()) + 0.01
    assert fit.inv_project(target)[0] == -1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        est = fit_learning_curve(steps, np.stack([values, values]), model="pow3").size_needed(
            target
        )
    assert est.size[0] == -1
    assert not est.reachable[0]
    # a rising curve answering below the smallest measured size says so
    rising = fit_learning_curve(steps, power_metric(steps, 0.8, 0.5, 0.05), model="pow3")
    low = float(rising.project(steps[0])[0]) - 0.05
    with pytest.warns(ExtrapolationWarning, match="below the smallest measured size"):
        n = rising.inv_project(low)[0]
    assert 1 <= n < steps[0]


def test_negative_exponent_is_rejected_clearly():
    steps = np.array([10.0, 100.0, 1000.0])
    values = np.array([[0.5, 0.6, 0.7]])
    kw = dict(c0=0.1, steps=steps, values=values, higher_is_better=True, bounded=True)
    with pytest.raises(ValueError, match="exponent m must be >= 0"):
        LearningCurve(c=0.5, m=-0.3, loss=0.0, r2=1.0, **kw)
    with pytest.raises(ValueError, match="model must be one of"):
        LearningCurve(c=0.5, m=0.3, loss=0.0, r2=1.0, model="pow5", **kw)
    with pytest.raises(ValueError, match="'auto' chooses"):
        fit_learning_curve(steps, values[0], model="pow5")


def _profile_loss_numpy(steps, err, m):
    """Least-squares loss of c * n**-m + c0 (0 <= c0 <= 1) at a fixed m, by numpy."""
    u = (steps / steps[0]) ** (-m)  # scaled, so lstsq stays well conditioned
    a = np.stack([u, np.ones_like(u)], axis=1)
    (c, c0), *_ = np.linalg.lstsq(a, err, rcond=None)
    if not 0.0 <= c0 <= 1.0:
        c0 = min(max(c0, 0.0), 1.0)
        c = float(u @ (err - c0) / (u @ u))
    return float(np.sum((err - c * u - c0) ** 2))


def test_step_like_curve_is_not_cut_off_by_an_exponent_cap():
    # all of the gain between the first two sizes: the least-squares exponent is far above
    # the old cap min(40 / ln(n_max / n_min), 20) = 5.8, where the loss was much larger
    steps = geometric_steps(100_000, 8).astype(float)
    values = np.full(steps.size, 0.9)
    values[0] = 0.3
    values[1:] += np.array([0.001, -0.001, 0.0005, 0.0, -0.0005, 0.001, -0.001])
    fit = fit_learning_curve(steps, values, model="pow3")
    err = 1.0 - values
    grid = np.concatenate([np.linspace(0, 10, 2001), np.geomspace(10, 200, 2000)])
    oracle = min(_profile_loss_numpy(steps, err, m) for m in grid)
    assert fit.loss <= oracle * (1 + 1e-6) + 1e-15
    old_cap = min(40.0 / math.log(steps[-1] / steps[0]), 20.0)
    assert fit.m > 2 * old_cap
    assert fit.loss < 0.5 * _profile_loss_numpy(steps, err, old_cap)


def test_projection_below_the_measured_range_stays_in_the_unit_interval():
    steps = geometric_steps(10_000, 8)
    fit = fit_learning_curve(steps, power_metric(steps, 30.0, 0.9, 0.02), model="pow3")
    # the raw power law gives 1 - 30 * 10**-0.9 - 0.02 = -2.8 at n = 10
    assert 1.0 - (fit.c * 10.0**-fit.m + fit.c0) < 0.0
    proj = fit.project([1, 10, 50, steps[0]])
    assert np.all((proj >= 0.0) & (proj <= 1.0))
    assert np.all(np.diff(proj) >= 0.0)


def test_smallest_size_promise_holds_up_to_the_stated_limit():
    from datagauge.sufficiency import MAX_SIZE

    steps = np.array([10.0, 100.0, 1000.0])
    curve = LearningCurve(
        c=1.0, m=0.05, c0=0.0, steps=steps, values=np.array([[0.1, 0.2, 0.3]]),
        higher_is_better=True, bounded=True, loss=0.0, r2=1.0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        # beyond the stated limit (near 3e15 float64 answers some 20 samples short): -1
        for n_true in (3e15, 1e15, 2.0 * MAX_SIZE):
            assert curve.inv_project(float(1.0 - n_true**-0.05))[0] == -1
        for n_true in (1e13, 1e9, 1e6, 1234.0):
            t = float(1.0 - n_true**-0.05)
            n = int(curve.inv_project(t)[0])
            assert abs(n - n_true) <= 1
            assert curve.project(n)[0] >= t > curve.project(n - 1)[0]
            assert math.log(n - 1) < math.log(n)
    assert MAX_SIZE == 2**46
    assert math.log(MAX_SIZE) < 32  # ln n keeps a step of 2**-48, below 1 / MAX_SIZE


def test_families_reach_a_scipy_multistart_minimum():
    from scipy.optimize import least_squares

    steps = geometric_steps(20_000, 12).astype(float)
    rng = np.random.default_rng(0)
    shapes = {
        "pow4": lambda n: 3.0 * (n + 300.0) ** -0.6 + 0.05,
        "mmf4": lambda n: 0.05 + 0.8 / (1.0 + (n / 500.0) ** 1.3),
    }
    for model, f in shapes.items():
        err = f(steps) + rng.normal(0, 0.002, steps.size)
        fit = fit_learning_curve(steps, 1.0 - err, model=model)
        assert fit.model == model
        if model == "pow4":

            def res(p, err=err):
                return p[0] * (steps + p[3]) ** -p[1] + p[2] - err
        else:

            def res(p, err=err):
                return p[2] + p[0] / (1.0 + (steps / p[3]) ** p[1]) - err

        best = np.inf
        for m0 in (0.3, 0.8, 2.0):
            for d0 in (10.0, 300.0, 3000.0):
                for c_0 in (0.5, 3.0):
                    r = least_squares(
                        res,
                        [c_0, m0, 0.05, d0],
                        bounds=([-np.inf, 0, 0, 1e-9], [np.inf, 50, 1, 1e7]),
                        xtol=1e-12,
                        ftol=1e-12,
                    )
                    best = min(best, 2 * r.cost)
        assert fit.loss <= best * 1.01 + 1e-12, model
        # projections and sizes use the same family
        np.testing.assert_allclose(fit.project(steps), 1.0 - err, atol=0.01)


def test_auto_picks_the_family_that_extrapolates():
    steps = geometric_steps(20_000, 12).astype(float)
    truth = 0.03 + 0.8 / (1.0 + (steps / 300.0) ** 1.5)  # an mmf4 error curve
    rng = np.random.default_rng(1)
    runs = 1.0 - truth + rng.normal(0, 0.002, (5, steps.size))
    auto = fit_learning_curve(steps, runs, model="auto")
    pow3 = fit_learning_curve(steps, runs, model="pow3")
    # a sigmoid in ln n: pow4 (whose tail is the same power) or mmf4 predicts it, pow3 does not
    assert auto.model in ("pow4", "mmf4")
    assert set(auto.candidates) == {"pow3", "pow4", "mmf4"}
    assert auto.candidates[auto.model] == min(auto.candidates.values())
    assert auto.candidates["pow3"] > 2 * auto.candidates[auto.model]
    assert auto.alternatives.shape == (3, 5)
    far = 1.0 - (0.03 + 0.8 / (1.0 + (200_000 / 300.0) ** 1.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        assert abs(auto.project(200_000)[0] - far) < abs(pow3.project(200_000)[0] - far)
    # fewer than 5 sizes: no room to compare families, the power law is fitted
    few = fit_learning_curve(steps[:4], runs[:, :4], model="auto")
    assert few.model == "pow3"
    assert few.candidates == {}


@pytest.mark.parametrize("method", ["forecast", "project"])
def test_size_needed_range_brackets_the_size_and_is_deterministic(method):
    steps, values = synthetic(noise=0.01, runs=5, n=20_000, substeps=12)
    a = fit_learning_curve(steps, values, random_state=0)
    b = fit_learning_curve(steps, values, random_state=0)
    targets = [0.85, 0.9, 0.93, 0.999]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        est = a.size_needed(targets, level=0.8, method=method)
        again = b.size_needed(targets, level=0.8, method=method)
        wide = a.size_needed(targets, level=0.95, method=method)
        sizes = a.forecast_size(targets) if method == "forecast" else a.inv_project(targets)
    assert est.method == method
    assert est.model == "pow3"
    assert est.to_dict() == again.to_dict()
    np.testing.assert_array_equal(est.size, sizes)
    np.testing.assert_array_equal(est.reachable, sizes > 0)
    for i in range(len(targets)):
        if est.size[i] > 0:
            assert 1 <= est.lower[i] <= est.size[i]
            assert est.upper[i] == -1 or est.upper[i] >= est.size[i]
            assert wide.lower[i] <= est.lower[i]
            assert wide.upper[i] == -1 or (est.upper[i] != -1 and wide.upper[i] >= est.upper[i])
    assert est.size[-1] == -1  # beyond the asymptote
    assert est.upper[-1] == -1
    assert est.lower[-1] > steps[-1]  # at least more than measured, maybe never
    frame = est.to_dataframe()
    assert list(frame.columns) == ["target", "size", "lower", "upper", "reachable"]
    # the range grows with the spread of the runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatagaugeWarning)
        noisy = fit_learning_curve(steps, synthetic(noise=0.04, runs=5, n=20_000, substeps=12)[1])
        e_noisy = noisy.size_needed(0.9, method=method)
        e_calm = a.size_needed(0.9, method=method)
    assert e_noisy.upper[0] > 0
    assert e_calm.upper[0] > 0
    assert e_noisy.upper[0] / e_noisy.lower[0] > e_calm.upper[0] / e_calm.lower[0]
    with pytest.raises(ValueError, match="single run"):
        fit_learning_curve(steps, values[0]).size_needed(0.9, method=method)


def test_sufficiency_result_size_needed_and_progress_callback():
    pytest.importorskip("pandas")
    train, test = digits_split(200, 100)
    seen = []
    cfg = Sufficiency.Config(CentroidTrain(), CentroidEval(), runs=2, substeps=6)
    res = Sufficiency(Centroids(), cfg).evaluate(
        train, test, progress=lambda d, t: seen.append((d, t)), random_state=0, n_jobs=1
    )
    assert seen == [(k, 12) for k in range(1, 13)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatagaugeWarning)
        frame = res.size_needed([0.8, 0.85], metrics="accuracy")
        curve = res.fit()["accuracy"]
        est = curve.size_needed([0.8, 0.85])
    assert list(frame.columns) == [
        "metric", "target", "size", "lower", "upper", "reachable", "model", "method"
    ]  # fmt: skip
    assert frame["size"].tolist() == est.size.tolist()
    assert frame["lower"].tolist() == est.lower.tolist()
    assert frame["upper"].tolist() == est.upper.tolist()
    assert frame["model"].tolist() == [curve.model] * 2
    assert frame["method"].tolist() == ["trend"] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatagaugeWarning)
        old = res.size_needed([0.8, 0.85], metrics="accuracy", method="project")
        assert old["size"].tolist() == curve.inv_project([0.8, 0.85]).tolist()
    assert old["method"].tolist() == ["project"] * 2
    with pytest.raises(ValueError, match="method must be one of"):
        res.size_needed(0.8, method="dataeval")


def test_size_needed_gives_unreached_targets_a_lower_end():
    """A target the fitted curve never reaches: "at least lower, maybe never", with lower the
    (1 - level) / 2 quantile of the bootstrap fits' sizes (the largest finite one where fewer
    fits reach it) widened as every range is, and just above the largest measured size where
    no fit reaches it (the range around
    inv_project; the forecast's: tests/test_sufficiency_forecast.py)."""
    import math
    from statistics import NormalDist

    from datagauge import sufficiency as suff
    from datagauge._kernels.families import sizes_many

    steps, values = synthetic(noise=0.03, runs=5, n=4_000, substeps=8)
    fit = fit_learning_curve(steps, values, random_state=1)
    best = 1.0 - fit.c0  # the fitted asymptote
    targets = [best + 0.002, best + 0.02, 1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        est = fit.size_needed(targets, level=0.8, method="project")
    assert (est.size == -1).all()
    assert not est.reachable.any()
    assert (est.upper == -1).all()
    top = float(steps[-1])
    boot = np.zeros((fit.bootstrap.shape[0], 4))
    boot[:, :3] = fit.bootstrap
    sizes = np.asarray(
        sizes_many(0, boot, np.array(targets), True, suff.MAX_SIZE, *fit._clip), dtype=float
    )
    sizes[sizes < 1] = np.inf
    z = NormalDist().inv_cdf(0.9)
    each = []
    for i in range(len(targets)):
        ranked = np.sort(sizes[:, i])
        q = ranked[math.floor(0.1 * ranked.size)]
        if not np.isfinite(q) and np.isfinite(ranked).any():
            q = ranked[np.isfinite(ranked)].max()
        if np.isfinite(q):
            x = max(0.0, math.log(q / top))
            s = math.sqrt((suff.RANGE_TAU * x) ** 2 + suff.RANGE_FLOOR**2)
            expected = max(math.floor(top) + 1, math.floor(q * math.exp(-z * s)))
        else:
            expected = math.floor(top) + 1
        each.append(expected)
    # each target's own lower end, then never below an easier target's (_monotone_range)
    np.testing.assert_array_equal(est.lower, np.maximum.accumulate(each))
    assert np.isfinite(sizes[:, 0]).mean() > 0.1  # the near target: some fits reach it
    assert est.lower[0] > math.floor(top) + 1
    assert each[-1] == math.floor(top) + 1  # no fit reaches an error of 0: just above top,
    assert est.lower[-1] == est.lower.max()  # raised to the easier targets' lower ends


_SCRIPT = """
import warnings
from datagauge import Sufficiency
from test_sufficiency import CentroidEval, Centroids, CentroidTrain, digits_split

def main():
    train, test = digits_split(200, 200)
    cfg = Sufficiency.Config(CentroidTrain(), CentroidEval(), runs=2, substeps=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = Sufficiency(Centroids(), cfg).evaluate(
            train, test, n_jobs=N_JOBS, progress=False, random_state=1
        )
    print("WARNINGS", [str(w.message) for w in caught])
    print("RESULT", res.measures["accuracy"].round(12).tolist())
"""


@pytest.mark.parametrize(("guarded", "n_jobs"), [(False, None), (False, 2), (True, 2)])
def test_a_script_without_a_main_guard_runs_serially(tmp_path, guarded, n_jobs):
    # spawn runs the main script again in every worker: without the guard each worker would
    # call evaluate again and die (BrokenProcessPool); the runs go serially instead
    import subprocess

    body = _SCRIPT.replace("N_JOBS", repr(n_jobs))
    body += '\nif __name__ == "__main__":\n    main()\n' if guarded else "\nmain()\n"
    script = tmp_path / "script.py"
    script.write_text(body)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=True,
        env=env,
    ).stdout  # fmt: skip
    warned = next(line for line in out.splitlines() if line.startswith("WARNINGS"))
    result = next(line for line in out.splitlines() if line.startswith("RESULT"))
    if guarded:
        assert "serially" not in warned  # the runs went to worker processes
    else:
        assert ("__main__" in warned) == (n_jobs is not None)  # said only when asked for
    # the same numbers whichever way the runs went
    base = _SCRIPT.replace("N_JOBS", "1") + "\nmain()\n"
    (tmp_path / "serial.py").write_text(base)
    serial = subprocess.run(
        [sys.executable, str(tmp_path / "serial.py")],
        capture_output=True, text=True, timeout=300, check=True, env=env,
    ).stdout  # fmt: skip
    assert result == next(line for line in serial.splitlines() if line.startswith("RESULT"))


def test_unguarded_main_reads_the_main_program(tmp_path, monkeypatch):
    import types

    from datagauge.sufficiency import _unguarded_main

    def main_from(text):
        path = tmp_path / "prog.py"
        path.write_text(text)
        mod = types.ModuleType("__main__")
        mod.__file__ = str(path)
        monkeypatch.setitem(sys.modules, "__main__", mod)
        return _unguarded_main()

    assert main_from('if __name__ == "__main__":\n    run()\n') is None
    assert main_from("if '__main__' == __name__:\n    run()\n") is None
    assert "guard" in main_from("run()\n")
    assert "guard" in main_from('def f():\n    if __name__ == "__main__":\n        run()\n')
    assert "could not be read" in main_from("def broken(:\n")
    interactive = types.ModuleType("__main__")  # a REPL or notebook: no file runs again
    monkeypatch.setitem(sys.modules, "__main__", interactive)
    assert _unguarded_main() is None


class DieInWorker:
    """Trains like CentroidTrain, but kills the worker process it runs in."""

    def train(self, model, dataset, indices):
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            os._exit(3)
        CentroidTrain().train(model, dataset, indices)


def test_a_dead_worker_leaves_the_runs_to_this_process():
    train, test = digits_split(200, 200)
    cfg = Sufficiency.Config(DieInWorker(), CentroidEval(), runs=2, substeps=4)
    serial = Sufficiency(Centroids(), cfg).evaluate(
        train, test, n_jobs=1, progress=False, random_state=5
    )
    with pytest.warns(DatagaugeWarning, match="worker process died"):
        pooled = Sufficiency(Centroids(), cfg).evaluate(
            train, test, n_jobs=2, progress=False, random_state=5
        )
    assert pooled.to_dict() == serial.to_dict()
