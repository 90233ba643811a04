"""LearningCurve.forecast: the late-weighted power law behind the accuracy forecast."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from datagauge import ExtrapolationWarning, PoorFitWarning, fit_learning_curve, geometric_steps
from datagauge import sufficiency as suff


def power_metric(n, c, m, c0):
    return 1.0 - (c * np.asarray(n, dtype=np.float64) ** -m + c0)


def noisy(c, m, c0, noise, seed, runs=3, n=5000, substeps=10):
    steps = geometric_steps(n, substeps)
    rng = np.random.default_rng(seed)
    values = power_metric(steps, c, m, c0) + rng.normal(0.0, noise, (runs, steps.size))
    return steps, np.clip(values, 0.0, 1.0)


def weighted_loss(steps, err, w, c, m, c0):
    return float(np.sum(w * (c0 + c * (steps / steps.min()) ** -m - err) ** 2))


def profile_oracle(steps, err, w):
    """Oracle: for each exponent on a dense grid, scipy's bounded linear least squares for
    (c, c0), then a bounded scalar polish of the best cell; the smallest weighted loss."""
    from scipy.optimize import lsq_linear, minimize_scalar

    x = steps / steps.min()
    sw = np.sqrt(w)

    def profile(m):
        design = np.column_stack([x**-m, np.ones_like(x)]) * sw[:, None]
        return 2.0 * lsq_linear(design, sw * err, bounds=([-np.inf, 0.0], [np.inf, 1.0])).cost

    grid = np.geomspace(1e-4, 40.0 / np.log(np.unique(x)[1]), 1500)
    losses = np.array([profile(m) for m in grid])
    j = int(np.argmin(losses))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
    polish = minimize_scalar(profile, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
    return min(losses[j], polish.fun)


@pytest.mark.parametrize("seed", range(6))
def test_weighted_fit_reaches_the_profile_oracle_minimum(seed):
    rng = np.random.default_rng(seed)
    c, m, c0 = rng.uniform(0.3, 3.0), rng.uniform(0.1, 1.2), rng.uniform(0.0, 0.2)
    steps, values = noisy(c, m, c0, noise=0.01, seed=seed)
    steps = steps.astype(np.float64)
    err = 1.0 - values.mean(axis=0)
    w = (steps / steps.max()) ** suff.FORECAST_POWER
    p = suff._weighted_pow3(steps, err, steps**suff.FORECAST_POWER, 0.0, 1.0)
    assert p[1] >= 0.0
    assert 0.0 <= p[2] <= 1.0
    assert weighted_loss(steps, err, w, *p) <= profile_oracle(steps, err, w) * (1 + 1e-6) + 1e-14


def test_forecast_is_the_weighted_fit_at_the_sizes():
    steps, values = noisy(0.9, 0.45, 0.04, noise=0.004, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoorFitWarning)
        fit = fit_learning_curve(steps, values)
    s = steps.astype(np.float64)
    c, m, c0 = suff._weighted_pow3(s, 1.0 - values.mean(axis=0), s**2.0, 0.0, 1.0)
    sizes = np.array([10.0, 700.0, 5000.0, 40000.0])
    direct = 1.0 - np.clip(c0 + c * (sizes / s.min()) ** -m, 0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        np.testing.assert_allclose(fit.forecast(sizes), direct, rtol=0, atol=1e-15)


def test_without_weights_forecast_is_the_unweighted_fit(monkeypatch):
    # power 0: every point counts the same, the least squares of project() (DataEval's)
    monkeypatch.setattr(suff, "FORECAST_POWER", 0.0)
    for seed in range(4):
        steps, values = noisy(1.2, 0.6, 0.08, noise=0.003, seed=seed)
        fit = fit_learning_curve(steps, values, model="pow3")
        sizes = np.geomspace(steps[0], 8 * steps[-1], 9)
        np.testing.assert_allclose(fit.forecast(sizes), fit.project(sizes), rtol=0, atol=2e-6)


def test_forecast_differs_from_project_on_a_curve_that_bends():
    # a curve that flattens late: the weighted fit follows the largest sizes
    steps = geometric_steps(20000, 12).astype(np.float64)
    err = 0.5 * steps**-0.2 + 0.4 * steps**-0.9
    fit = fit_learning_curve(steps, 1.0 - err, model="pow3")
    far = 10 * steps[-1]
    truth = 1.0 - (0.5 * far**-0.2 + 0.4 * far**-0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        assert abs(fit.forecast(far)[0] - truth) < abs(fit.project(far)[0] - truth)


@settings(max_examples=30, deadline=None)
@given(
    c=st.floats(0.2, 5.0),
    m=st.floats(0.1, 1.5),
    c0=st.floats(0.0, 0.3),
    scale=st.floats(0.5, 50.0),
)
def test_exact_power_law_is_forecast_exactly_and_scale_covariant(c, m, c0, scale):
    assume(c * 20.0**-m > 0.02)  # a curve, not a plateau
    steps = geometric_steps(5000, 10).astype(np.float64)
    values = np.clip(power_metric(steps, c, m, c0), 0.0, 1.0)
    assume(np.all((values > 0.0) & (values < 1.0)))
    sizes = np.array([steps[-1], 3 * steps[-1], 9 * steps[-1]])
    fit = fit_learning_curve(steps, values, model="pow3", n_bootstrap=0)
    np.testing.assert_allclose(fit.forecast(sizes), power_metric(sizes, c, m, c0), atol=1e-6)
    # the same curve measured on sizes `scale` times larger: the same forecast there
    scaled = fit_learning_curve(scale * steps, values, model="pow3", n_bootstrap=0)
    np.testing.assert_allclose(scaled.forecast(scale * sizes), fit.forecast(sizes), atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), noise=st.floats(0.0, 0.02))
def test_lower_is_better_mirrors_higher_is_better(seed, noise):
    steps, values = noisy(0.8, 0.5, 0.05, noise=noise, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoorFitWarning)
        acc = fit_learning_curve(steps, values, n_bootstrap=0)
        err = fit_learning_curve(steps, 1.0 - values, higher_is_better=False, n_bootstrap=0)
    sizes = np.geomspace(steps[0], 5 * steps[-1], 7)
    np.testing.assert_allclose(acc.forecast(sizes), 1.0 - err.forecast(sizes), atol=1e-12)
    assert np.all((acc.forecast(sizes) >= 0.0) & (acc.forecast(sizes) <= 1.0))


def test_unbounded_metric_and_flat_curve():
    steps = geometric_steps(3000, 8)
    loss = 3.0 + 5.0 * steps.astype(np.float64) ** -0.5  # a loss above 1: c0 = 3 is allowed
    fit = fit_learning_curve(steps, loss, higher_is_better=False, bounded=False)
    assert fit.forecast(steps[-1])[0] == pytest.approx(loss[-1], abs=1e-6)
    flat = fit_learning_curve(steps, np.full(steps.size, 0.7), n_bootstrap=0)
    np.testing.assert_allclose(flat.forecast([10, 10_000]), 0.7, atol=1e-12)


def test_far_forecast_warns():
    steps, values = noisy(0.8, 0.5, 0.05, noise=0.002, seed=1)
    fit = fit_learning_curve(steps, values)
    with pytest.warns(ExtrapolationWarning, match="forecasting at"):
        fit.forecast(100 * steps[-1])


def test_result_forecast_is_each_metrics_curve_forecast():
    pytest.importorskip("pandas")
    from datagauge import SufficiencyResult

    steps, values = noisy(0.8, 0.5, 0.05, noise=0.003, seed=2)
    res = SufficiencyResult(
        steps=steps, measures={"a": values, "e": 1.0 - values}, lower_is_better=("e",)
    )
    sizes = [1000, 8000]
    table = res.forecast(sizes)
    curves = res.fit()
    assert table["size"].tolist() == sizes
    np.testing.assert_array_equal(table["a"], curves["a"].forecast(sizes))
    np.testing.assert_array_equal(table["e"], curves["e"].forecast(sizes))
    np.testing.assert_allclose(table["a"], 1.0 - table["e"], atol=1e-12)
    assert res.forecast(sizes, metrics="e").columns.tolist() == ["size", "e"]


def brute_force_size(fit, target, n_max):
    """Oracle: the first n in 1..n_max whose forecast reaches the target (-1 if none)."""
    n = np.arange(1, n_max + 1, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        v = fit.forecast(n)
    hit = np.flatnonzero(v >= target if fit.higher_is_better else v <= target)
    return int(hit[0]) + 1 if hit.size else -1


@pytest.mark.parametrize("seed", range(4))
def test_forecast_size_matches_brute_force(seed):
    steps, values = noisy(0.9, 0.5, 0.05, noise=0.004, seed=seed, n=3000)
    fit = fit_learning_curve(steps, values)
    lerr = fit_learning_curve(steps, 1.0 - values, higher_is_better=False)
    n_max = 60_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        top = float(fit.forecast(n_max)[0])
        targets = [
            max(0.0, float(fit.forecast(1)[0]) - 0.01),
            float(fit.forecast(5)[0]),
            float(fit.forecast(700)[0]) + 1e-4,
            top - 1e-3,
        ]
        sizes = fit.forecast_size(targets)
        lsizes = lerr.forecast_size([1.0 - t for t in targets])
    for t, n, ln in zip(targets, sizes.tolist(), lsizes.tolist(), strict=True):
        assert n == brute_force_size(fit, t, n_max)
        assert ln == brute_force_size(lerr, 1.0 - t, n_max)
    assert sizes[0] == 1  # met below the measured range


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), q=st.floats(0.05, 0.999))
def test_forecast_size_is_the_smallest_reaching_size(seed, q):
    steps, values = noisy(0.8, 0.4, 0.08, noise=0.003, seed=seed)
    fit = fit_learning_curve(steps, values, n_bootstrap=0)
    c, m, c0 = fit._forecast_params()
    assume(c > 0 and m > 0)
    lo = float(fit.forecast(steps[0])[0])
    target = lo + q * (1.0 - c0 - lo)  # between the first point and the asymptote
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        n = int(fit.forecast_size(target)[0])
        assume(n > 0)  # beyond MAX_SIZE for q near 1 and a slow curve
        assert fit.forecast(n)[0] >= target
        if n > 1:
            assert fit.forecast(n - 1)[0] < target
        # beyond the asymptote: never
        assert fit.forecast_size(min(1.0, 1.0 - c0 + 1e-9))[0] == -1


def test_forecast_size_of_a_flat_curve():
    steps = geometric_steps(3000, 8)
    flat = fit_learning_curve(steps, np.full(steps.size, 0.7), n_bootstrap=0)
    with pytest.warns(ExtrapolationWarning, match="below the smallest measured size"):
        assert flat.forecast_size([0.6, 0.7, 0.71]).tolist() == [1, 1, -1]
