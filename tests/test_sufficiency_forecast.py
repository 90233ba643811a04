"""LearningCurve.forecast: the late-weighted power law behind the accuracy forecast."""

from __future__ import annotations

import dataclasses
import itertools
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


def log_loss(steps, err, w, c, m, c0):
    return float(np.sum(w * (np.log(err) - np.log(c0 + c * (steps / steps.min()) ** -m)) ** 2))


def log_oracle(steps, err, w):
    """Oracle of the log-space fit: scipy's bounded least squares on (ln c, m, c0) from many
    starts (exponents and asymptotes on a grid); the smallest loss of the log error."""
    from scipy.optimize import least_squares

    x = np.log(steps / steps.min())
    sw = np.sqrt(w)
    ln_err = np.log(err)
    e_min = float(err.min())

    def resid(p):
        return sw * (ln_err - np.log(p[2] + np.exp(p[0] - p[1] * x)))

    best = np.inf
    for m0 in (0.05, 0.2, 0.5, 1.0, 2.0):
        for f in (0.0, 0.3, 0.6, 0.9, 0.99):
            c0 = f * e_min
            start = [np.log(max(err[0] - c0, 1e-12)), m0, c0]
            fit = least_squares(
                resid,
                start,
                bounds=([-np.inf, 0.0, 0.0], [np.inf, np.inf, e_min * (1 - 1e-12)]),
                xtol=1e-15,
                ftol=1e-15,
                gtol=1e-15,
            )
            best = min(best, 2.0 * fit.cost)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_log_fit_reaches_the_oracle_minimum(seed):
    rng = np.random.default_rng(100 + seed)
    c, m, c0 = rng.uniform(0.3, 3.0), rng.uniform(0.1, 1.2), rng.uniform(0.0, 0.2)
    steps, values = noisy(c, m, c0, noise=0.01, seed=seed)
    steps = steps.astype(np.float64)
    err = 1.0 - values.mean(axis=0)
    assert (err > 0).all()
    w = (steps / steps.max()) ** suff.FORECAST_POWER
    p = suff._log_pow3_many(steps, err, steps**suff.FORECAST_POWER)[0]
    assert p[1] >= 0.0
    assert 0.0 <= p[2] < err.min()
    oracle = log_oracle(steps, err, w)
    assert log_loss(steps, err, w, *p) <= oracle * (1 + 1e-6) + 1e-14
    # the weights count: unweighted, the minimum is another one
    flat = suff._log_pow3_many(steps, err, np.ones_like(steps))[0]
    assert log_loss(steps, err, w, *flat) > log_loss(steps, err, w, *p)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0), noise=st.floats(0.0, 0.01))
def test_log_fit_is_covariant_with_the_errors_scale(seed, scale, noise):
    # residuals of ln err: multiplying every error by k shifts them all by ln k, so the fit
    # is the same curve times k (c and c0 times k, the same exponent)
    steps, values = noisy(0.8, 0.5, 0.05, noise=noise, seed=seed)
    steps = steps.astype(np.float64)
    err = 1.0 - values.mean(axis=0)
    assume((err > 1e-3).all())
    w = steps**suff.FORECAST_POWER
    # an unbounded metric (hi = inf): an asymptote above 1 is no constraint there
    c, m, c0 = suff._log_pow3_many(steps, err, w, np.inf)[0]
    kc, km, kc0 = suff._log_pow3_many(steps, scale * err, w, np.inf)[0]
    # the same curve up to the precision of an iterated minimum (the asymptote and the
    # exponent trade off along a flat valley of the weighted loss, flattest at the smallest,
    # least weighted sizes: compare the curves; 100 polish steps left this 5-8% apart)
    assert km == pytest.approx(m, rel=1e-4, abs=1e-6)
    x = np.geomspace(1.0, 10.0 * steps[-1] / steps[0], 9)
    np.testing.assert_allclose(kc0 + kc * x**-km, scale * (c0 + c * x**-m), rtol=1e-5)


def test_forecast_falls_back_to_the_linear_fit_without_a_positive_error(monkeypatch):
    steps, values = noisy(0.9, 0.45, 0.04, noise=0.004, seed=3)
    s = steps.astype(np.float64)
    perfect = values.copy()
    perfect[:, -1] = 1.0  # an error of 0 at the largest size: no log error there
    err = 1.0 - perfect.mean(axis=0)
    linear = suff._weighted_pow3(s, err, s**suff.FORECAST_POWER, 0.0, 1.0)
    fit = fit_learning_curve(steps, perfect)
    assert fit._forecast_params() == linear
    # ... while a positive curve takes the log fit, unless FORECAST_SPACE says "linear"
    err = 1.0 - values.mean(axis=0)
    fit = fit_learning_curve(steps, values)
    logp = tuple(float(x) for x in suff._log_pow3_many(s, err, s**suff.FORECAST_POWER)[0])
    assert fit._forecast_params() == logp
    monkeypatch.setattr(suff, "FORECAST_SPACE", "linear")
    lin = suff._weighted_pow3(s, err, s**suff.FORECAST_POWER, 0.0, 1.0)
    assert fit._forecast_params() == lin != logp
    monkeypatch.setattr(suff, "FORECAST_SPACE", "logit")
    with pytest.raises(ValueError, match="FORECAST_SPACE must be one of"):
        fit.forecast(1000)


def test_forecast_is_the_weighted_fit_at_the_sizes():
    steps, values = noisy(0.9, 0.45, 0.04, noise=0.004, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoorFitWarning)
        fit = fit_learning_curve(steps, values)
    s = steps.astype(np.float64)
    c, m, c0 = suff._log_pow3_many(s, 1.0 - values.mean(axis=0), s**2.0)[0]
    sizes = np.array([10.0, 700.0, 5000.0, 40000.0])
    direct = 1.0 - np.clip(c0 + c * (sizes / s.min()) ** -m, 0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        np.testing.assert_allclose(fit.forecast(sizes), direct, rtol=0, atol=1e-15)


def test_without_weights_forecast_is_the_unweighted_fit(monkeypatch):
    # power 0 in linear space: every point counts the same, the least squares of project()
    monkeypatch.setattr(suff, "FORECAST_POWER", 0.0)
    monkeypatch.setattr(suff, "FORECAST_SPACE", "linear")
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
    # the same fit of errors equal up to rounding (1 - mean against the mean of 1 - values);
    # the log-space fit is an iterated minimum, fixed to ~1e-7 along its flattest direction
    np.testing.assert_allclose(acc.forecast(sizes), 1.0 - err.forecast(sizes), atol=1e-6)
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


def brute_force_size(fit, target, n_max, curve="forecast"):
    """Oracle: the first n in 1..n_max whose forecast (or `curve`: "trend") reaches the
    target (-1 if none)."""
    n = np.arange(1, n_max + 1, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        v = getattr(fit, curve)(n)
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


# ----------------------------------------------------------------------------- size_needed


def resampled_errors(values, n_bootstrap, random_state):
    """Oracle of the bootstrap's resamples: the mean error of runs drawn with replacement,
    drawn as fit_learning_curve documents (one Generator from random_state, rows of run
    indices)."""
    rng = np.random.default_rng(random_state)
    runs = values.shape[0]
    pick = rng.integers(0, runs, size=(n_bootstrap, runs))
    return np.stack([1.0 - values[p].mean(axis=0) for p in pick])


@pytest.mark.parametrize(("seed", "boot_steps"), [(0, None), (1, None), (2, None), (0, 0)])
def test_forecast_bootstrap_rows_are_the_weighted_fit_of_each_resample(
    seed, boot_steps, monkeypatch
):
    if boot_steps is not None:  # the resamples' polish limit reaches their fits
        monkeypatch.setattr(suff, "_FORECAST_BOOT_STEPS", boot_steps)
    steps, values = noisy(0.9, 0.5, 0.05, noise=0.01, seed=seed, runs=6)
    fit = fit_learning_curve(steps, values, random_state=seed, n_bootstrap=12)
    s = steps.astype(np.float64)
    errs = resampled_errors(values, 12, seed)
    assert fit.forecast_bootstrap.shape == (12, 3)
    assert (errs > 0).all()  # the log-space fit for every resample
    for row, err in zip(fit.forecast_bootstrap, errs, strict=True):
        # the same code refitted on that resample alone: the same numbers, bit for bit
        boot = suff._log_pow3_many(s, err, s**suff.FORECAST_POWER, 1.0, suff._FORECAST_BOOT_STEPS)
        assert tuple(row) == tuple(boot[0])
    if boot_steps == 0:  # the start alone: not the minimum
        polished = suff._log_pow3_many(s, errs, s**suff.FORECAST_POWER)
        assert not np.array_equal(fit.forecast_bootstrap, polished)
        return
    # ... and each reaches the weighted least-squares minimum of an independent oracle
    w = (s / s.max()) ** suff.FORECAST_POWER
    for row, err in list(zip(fit.forecast_bootstrap, errs, strict=True))[:3]:
        assert log_loss(s, err, w, *row) <= log_oracle(s, err, w) * (1 + 1e-6) + 1e-14
    # the pow3 bootstrap saw the same resamples: its rows are pow3 fits of the same means
    from datagauge._kernels.families import fit_family

    for row, err in list(zip(fit.bootstrap, errs, strict=True))[:3]:
        p = fit_family(0, np.log(s), np.ascontiguousarray(err), 0.0, 1.0)
        np.testing.assert_allclose(row, p[:3], rtol=1e-6, atol=1e-9)


def test_forecast_bootstrap_takes_the_log_or_linear_fit_row_by_row():
    # one run is perfect at the largest size: the resamples drawing only that run have an
    # error of 0 there (the linear fit), the others a positive error everywhere (the log fit)
    steps, values = noisy(0.9, 0.5, 0.05, noise=0.005, seed=11, runs=2)
    values[0, -1] = 1.0
    values[1, -1] = 0.97
    fit = fit_learning_curve(steps, values, random_state=3, n_bootstrap=16)
    s = steps.astype(np.float64)
    errs = resampled_errors(values, 16, 3)
    zero = (errs <= 0).any(axis=1)
    assert zero.any()
    assert not zero.all()
    w = s**suff.FORECAST_POWER
    for row, err, z in zip(fit.forecast_bootstrap, errs, zero, strict=True):
        if z:
            expected = suff._weighted_pow3(s, err, w, 0.0, 1.0)
        else:
            expected = tuple(suff._log_pow3_many(s, err, w, 1.0, suff._FORECAST_BOOT_STEPS)[0])
        assert tuple(row) == tuple(expected)


def test_forecast_bootstrap_sizes_solve_each_fit():
    steps, values = noisy(0.9, 0.5, 0.05, noise=0.01, seed=4, runs=5)
    fit = fit_learning_curve(steps, values)
    targets = np.array([0.6, 0.85, 0.9, 0.999, 1.0])
    bs = fit._pow3_boot_sizes(targets, fit.forecast_bootstrap)
    n1 = float(steps.min())
    for (c, m, c0), sizes in zip(fit.forecast_bootstrap, bs, strict=True):
        for t, n in zip(targets, sizes, strict=True):
            goal = 1.0 - t
            if not np.isfinite(n):  # never: at or beyond this fit's asymptote, or too far
                assert goal <= c0 or c0 + c * (suff.MAX_SIZE / n1) ** -m > goal
            elif n > 1.0:  # the forecast meets the target exactly there
                assert c0 + c * (n / n1) ** -m == pytest.approx(goal, rel=1e-9)
            else:
                assert c0 + c * (1.0 / n1) ** -m <= goal + 1e-12


def test_size_needed_is_centred_on_the_trend():
    steps, values = noisy(0.9, 0.45, 0.04, noise=0.01, seed=5, runs=5)
    fit = fit_learning_curve(steps, values)
    targets = [0.8, 0.9, 0.93, 0.95]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        est = fit.size_needed(targets)
        fore = fit.size_needed(targets, method="forecast")
        np.testing.assert_array_equal(fore.size, fit.forecast_size(targets))
        old = fit.size_needed(targets, method="project")
        np.testing.assert_array_equal(old.size, fit.inv_project(targets))
    assert (est.method, fore.method, old.method) == ("trend", "forecast", "project")
    for t, n in zip(targets, est.size.tolist(), strict=True):
        assert n == brute_force_size(fit, t, 200_000, "trend")
    # on this curve the fits disagree, so the answers really differ
    assert len({tuple(e.size.tolist()) for e in (est, fore, old)}) == 3


def test_trend_is_the_power_law_through_the_last_points():
    steps, values = noisy(0.9, 0.45, 0.04, noise=0.01, seed=5, runs=5)
    fit = fit_learning_curve(steps, values)
    k = suff.TREND_POINTS
    err = 1.0 - values.mean(axis=0)
    a = suff.TREND_ASYMPTOTE * fit._forecast_params()[2]
    slope, icpt = np.polyfit(np.log(steps[-k:]), np.log(err[-k:] - a), 1)  # the oracle
    assert slope < 0
    n = np.array([steps[-1], 3.0 * steps[-1]])
    np.testing.assert_allclose(fit.trend(n), 1.0 - (a + np.exp(icpt) * n**slope), rtol=1e-12)
    # the bootstrap: the same fit to each resample, with that resample's forecast asymptote
    assert fit.trend_bootstrap.shape == (suff.N_BOOTSTRAP, 3)
    np.testing.assert_allclose(
        fit.trend_bootstrap[:, 2], suff.TREND_ASYMPTOTE * fit.forecast_bootstrap[:, 2]
    )
    # the bootstrap rows the same way (the oracle on the first resample's own runs)
    rng = np.random.default_rng(0)  # fit_learning_curve's default random_state
    pick = rng.integers(0, values.shape[0], size=(suff.N_BOOTSTRAP, values.shape[0]))
    err0 = 1.0 - values[pick[0]].mean(axis=0)
    a0 = fit.trend_bootstrap[0, 2]
    slope0, icpt0 = np.polyfit(np.log(steps[-k:] / steps[0]), np.log(err0[-k:] - a0), 1)
    np.testing.assert_allclose(fit.trend_bootstrap[0, :2], [np.exp(icpt0), -slope0], rtol=1e-9)


def test_trend_with_another_asymptote_follows_the_oracle():
    """The back-tests' what-ifs: the trend with another share of the forecast's asymptote is
    the same least squares with that asymptote; None is the shipped TREND_ASYMPTOTE."""
    steps, values = noisy(0.9, 0.45, 0.1, noise=0.002, seed=5, runs=5)
    fit = fit_learning_curve(steps, values)
    err = 1.0 - values.mean(axis=0)
    fc = np.array([fit._forecast_params()])
    assert fc[0, 2] > 0.05  # an asymptote to take shares of
    assert suff._trend_fit_many(steps, err, fc, asymptote=None)[0].tolist() == list(
        fit._trend_params()
    )
    k = suff.TREND_POINTS
    fits = []
    for share in (0.0, 0.5, 0.9):
        a = share * fc[0, 2]
        slope, icpt = np.polyfit(np.log(steps[-k:] / steps[0]), np.log(err[-k:] - a), 1)
        got = suff._trend_fit_many(steps, err, fc, asymptote=share)[0]
        np.testing.assert_allclose(got, [np.exp(icpt), -slope, a], rtol=1e-9)
        fits.append(got)
    assert fits[0][1] < fits[1][1] < fits[2][1]  # nearer the asymptote, the steeper


@pytest.mark.parametrize(
    "last",
    [
        [0.8, 0.8, 0.8],  # a plateau: the last errors do not fall
        [0.99, 1.0, 1.0],  # a perfect score: an error at or below the trend's asymptote
    ],
)
def test_trend_without_a_local_power_law_is_the_forecast(last):
    steps = np.array([100, 200, 400, 800, 1600, 3200], dtype=np.float64)
    first = np.array([0.5, 0.7, 0.75]) if last[0] < 0.9 else np.array([0.9, 0.95, 0.98])
    curve = np.concatenate([first, last])
    noise = np.where(curve < 1.0, 0.002, 0.0)  # a perfect score in every run
    values = np.stack([curve, curve + noise, curve - noise])
    fit = fit_learning_curve(steps, values)
    assert fit._trend_params() == fit._forecast_params()
    n = np.array([150.0, 1000.0, 3200.0])
    np.testing.assert_array_equal(fit.trend(n), fit.forecast(n))
    t = [float(first[1]), float(first[2])]  # reached inside the measured range
    np.testing.assert_array_equal(fit.trend_size(t), fit.forecast_size(t))
    assert (fit.trend_size(t) > steps[0]).all()  # not "1", as a flat trend would say


def _method_parts(fit, method):
    """(bootstrap sizes of targets, (kappa, tau, floor), (c, m, c0)) of a size_needed method."""
    if method == "trend":
        return (
            lambda t: fit._pow3_boot_sizes(t, fit.trend_bootstrap),
            (suff.TREND_RANGE_KAPPA, suff.TREND_RANGE_TAU, suff.TREND_RANGE_FLOOR),
            fit._trend_params(),
        )
    return (
        lambda t: fit._pow3_boot_sizes(t, fit.forecast_bootstrap),
        (suff.FORECAST_RANGE_KAPPA, suff.FORECAST_RANGE_TAU, suff.FORECAST_RANGE_FLOOR),
        fit._forecast_params(),
    )


@pytest.mark.parametrize("method", ["trend", "forecast"])
def test_size_needed_range_follows_its_documented_formula(method):
    from statistics import NormalDist

    steps, values = noisy(0.9, 0.45, 0.04, noise=0.01, seed=6, runs=5)
    fit = fit_learning_curve(steps, values)
    t = np.array([0.88, 0.92] if method == "forecast" else [0.915, 0.925])
    est = fit.size_needed(t, level=0.8, method=method)
    boot_sizes, (kappa, tau, floor), _ = _method_parts(fit, method)
    bs = boot_sizes(t)
    assert np.isfinite(bs).all()  # near targets: every resample's fit reaches them
    z = NormalDist().inv_cdf(0.9)
    top = float(steps[-1])
    for i in range(t.size):
        ln_b = np.log(bs[:, i])
        s_boot = (np.percentile(ln_b, 84) - np.percentile(ln_b, 16)) / 2.0
        centre = np.log(est.size[i])
        x = max(0.0, centre - np.log(top))
        s = np.sqrt((kappa * s_boot) ** 2 + (tau * x) ** 2 + floor**2)
        assert est.lower[i] == max(1, int(np.floor(np.exp(centre - z * s))))
        assert est.upper[i] == int(np.ceil(np.exp(centre + z * s)))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    noise=st.floats(0.002, 0.03),
    q=st.lists(st.floats(0.05, 1.2), min_size=1, max_size=4),
)
def test_size_needed_range_properties(seed, noise, q):
    steps, values = noisy(0.8, 0.4, 0.08, noise=noise, seed=seed, runs=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoorFitWarning)
        fit = fit_learning_curve(steps, values, random_state=seed)
        again = fit_learning_curve(steps, values, random_state=seed)
    top = float(values.mean(axis=0)[-1])
    # from below the last measured point to beyond the asymptote (q > 1)
    targets = np.clip(top + (np.asarray(q) - 0.5) * 0.1, 0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        ests = [fit.size_needed(targets, level=lv) for lv in (0.5, 0.8, 0.95)]
        assert again.size_needed(targets, level=0.8).to_dict() == ests[1].to_dict()
    for est in ests:
        for n, lo, hi in zip(est.size, est.lower, est.upper, strict=True):
            assert lo >= 1  # every target gets a lower end
            if n > 0:
                assert lo <= n
                assert hi == -1 or n <= hi
            else:
                assert hi == -1  # never reached by the fit: "at least lo, maybe never"
                assert lo > steps[-1]
    for narrow, wide in itertools.pairwise(ests):  # monotone in the level
        np.testing.assert_array_equal(narrow.size, wide.size)
        assert (wide.lower <= narrow.lower).all()
        assert ((wide.upper == -1) | ((narrow.upper != -1) & (wide.upper >= narrow.upper))).all()


@pytest.mark.parametrize("method", ["trend", "forecast"])
def test_size_needed_of_unreached_targets_gives_a_lower_end(method):
    import math
    from statistics import NormalDist

    steps, values = noisy(0.8, 0.5, 0.12, noise=0.02, seed=9, runs=5, n=4000, substeps=8)
    fit = fit_learning_curve(steps, values, random_state=1)
    boot_sizes, (_, tau, floor), params = _method_parts(fit, method)
    best = 1.0 - params[2]  # the asymptote of the curve the sizes come from
    targets = [best + 0.002, best + 0.02, 1.0]
    assert targets[1] < 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        est = fit.size_needed(targets, level=0.8, method=method)
    assert (est.size == -1).all()
    assert not est.reachable.any()
    assert (est.upper == -1).all()
    top = float(steps[-1])
    z = NormalDist().inv_cdf(0.9)
    bs = boot_sizes(np.array(targets))
    each = []
    for i in range(len(targets)):
        q = np.sort(bs[:, i])[math.floor(0.1 * bs.shape[0])]
        if not np.isfinite(q) and np.isfinite(bs[:, i]).any():
            q = bs[np.isfinite(bs[:, i]), i].max()  # too few reach it: the largest finite
        expected = math.floor(top) + 1
        if np.isfinite(q):
            s = math.hypot(tau * max(0.0, math.log(q / top)), floor)
            expected = max(expected, math.floor(q * math.exp(-z * s)))
        each.append(expected)
    # each target's own lower end, then never below an easier target's (_monotone_range)
    np.testing.assert_array_equal(est.lower, np.maximum.accumulate(each))
    assert np.isfinite(bs[:, :2]).mean(axis=0).min() > 0.1  # some resamples reach these
    assert est.lower[1] > math.floor(top) + 1  # the quantile, not the measured size, decides
    assert not np.isfinite(bs[:, -1]).any()
    assert each[-1] == math.floor(top) + 1  # no fit reaches an error of 0: just above top,
    assert est.lower[-1] == est.lower.max()  # raised to the easier targets' lower ends


def test_size_needed_needs_runs_and_a_known_method():
    steps, values = noisy(0.8, 0.5, 0.05, noise=0.01, seed=8, runs=3)
    with pytest.raises(ValueError, match="single run"):
        fit_learning_curve(steps, values[0]).size_needed(0.9)
    with pytest.raises(ValueError, match="single run"):
        fit_learning_curve(steps, values, n_bootstrap=0).size_needed(0.9)
    fit = fit_learning_curve(steps, values)
    with pytest.raises(ValueError, match="method must be one of"):
        fit.size_needed(0.9, method="dataeval")
    # a curve built by hand with a bootstrap of its fit but none of its forecast
    hand = dataclasses.replace(fit, forecast_bootstrap=None)
    with pytest.raises(ValueError, match=r"bootstrap of its forecast.*method=.project."):
        hand.size_needed(0.9, method="forecast")
    assert hand.size_needed(0.9, method="project").size.tolist() == fit.inv_project(0.9).tolist()
    hand = dataclasses.replace(fit, trend_bootstrap=None)
    with pytest.raises(ValueError, match=r"bootstrap of its trend.*method=.project."):
        hand.size_needed(0.9)


def test_inv_project_keeps_dataevals_meaning(monkeypatch):
    # inv_project is the unweighted least-squares fit's smallest size (DataEval's meaning):
    # nothing about the forecast changes it, while the forecast's sizes move with its weights
    steps, values = noisy(0.9, 0.45, 0.04, noise=0.01, seed=9, runs=5)
    targets = [0.85, 0.9, 0.93]
    fit = fit_learning_curve(steps, values)
    sizes, fsizes = fit.inv_project(targets), fit.forecast_size(targets)
    monkeypatch.setattr(suff, "FORECAST_POWER", 6.0)
    refit = fit_learning_curve(steps, values)
    np.testing.assert_array_equal(refit.inv_project(targets), sizes)
    assert refit.params == fit.params
    np.testing.assert_array_equal(refit.bootstrap, fit.bootstrap)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        assert refit.forecast_size(targets).tolist() != fsizes.tolist()
    # the smallest size of the unweighted curve: it reaches the target there, not one before
    for t, n in zip(targets, sizes.tolist(), strict=True):
        assert refit.project(n)[0] >= t > refit.project(n - 1)[0]


def test_log_fit_polish_steps_only_lower_the_loss():
    # a curve that levels off above its smallest error (a flat, curved valley of c0 against
    # the exponent, where the polish crawls): fewer steps stop higher, never above the start
    s = geometric_steps(10_000, 14).astype(np.float64)
    rng = np.random.default_rng(8)  # 546 steps to the minimum
    err = 0.27 + 0.5 * (s / s[0]) ** -1.8 + rng.normal(0.0, 0.004, s.size)
    w = s**suff.FORECAST_POWER
    wn = (s / s.max()) ** suff.FORECAST_POWER
    losses = []
    for steps in (0, 5, suff._FORECAST_BOOT_STEPS, suff._FORECAST_STEPS):
        c, m, c0 = suff._log_pow3_many(s, err, w, 1.0, steps)[0]
        assert c > 0.0
        assert m >= 0.0
        assert 0.0 <= c0 <= 1.0
        losses.append(log_loss(s, err, wn, c, m, c0))
    assert losses == sorted(losses, reverse=True)
    assert losses[0] > losses[-1]  # the polish matters here
    assert losses[-1] <= log_oracle(s, err, wn) * (1 + 1e-6) + 1e-14
    # a well-behaved curve converges long before the resamples' limit: the same answer
    smooth = 0.05 + 0.8 * (s / s[0]) ** -0.5
    short = suff._log_pow3_many(s, smooth, w, 1.0, suff._FORECAST_BOOT_STEPS)
    np.testing.assert_array_equal(short, suff._log_pow3_many(s, smooth, w))


@pytest.mark.parametrize("higher", [True, False])
def test_forecast_limit_is_where_the_forecast_tends(higher):
    steps, values = noisy(0.8, 0.6, 0.08, noise=0.003, seed=2)
    metric = values if higher else 1.0 - values
    fit = fit_learning_curve(steps, metric, higher_is_better=higher, n_bootstrap=0)
    limit = fit.forecast_limit
    _, m, c0 = fit._forecast_params()
    assert m > 0.2
    assert limit == pytest.approx(1.0 - c0 if higher else c0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        far = float(fit.forecast(1e15)[0])
        assert far == pytest.approx(limit, abs=1e-6)
        beyond = limit + (1e-3 if higher else -1e-3)
        short = limit - (1e-3 if higher else -1e-3)
        sizes = fit.forecast_size([beyond, short])
    assert sizes[0] == -1  # past the limit: never
    assert sizes[1] > steps[-1]


def test_report_default_targets_lie_below_the_forecast_limit():
    from datagauge.report._sections import _default_targets

    # the pow3 fit's asymptote (0.970) lies above the forecast's (0.943): targets between the
    # two would read "not reached" in a report whose sizes come from the forecast
    steps, values = noisy(0.8, 0.3, 0.02, noise=0.006, seed=2)
    fit = fit_learning_curve(steps, values, n_bootstrap=0)
    assert 1.0 - fit.c0 > fit.forecast_limit + 0.02
    targets = _default_targets(fit)
    assert targets  # the curve still gains
    assert all(fit.mean[-1] < t < fit.forecast_limit for t in targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        assert (fit.forecast_size(targets) > 0).all()  # each is reached by the forecast


@pytest.mark.parametrize(("values", "higher"), [([0.3] * 4, True), ([0.7] * 4, False)])
def test_forecast_limit_of_a_flat_curve_is_its_value(values, higher):
    fit = fit_learning_curve([10, 20, 40, 80], values, higher_is_better=higher, n_bootstrap=0)
    assert fit.forecast_limit == pytest.approx(values[0], abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        assert fit.forecast([1e9])[0] == pytest.approx(fit.forecast_limit, abs=1e-9)


def test_forecast_limit_of_a_curve_that_gets_worse_is_flat():
    fit = fit_learning_curve([50, 100, 200, 400], [0.5, 0.45, 0.35, 0.2], n_bootstrap=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        far = float(fit.forecast([1e12])[0])
    assert fit.forecast_limit == pytest.approx(far, abs=1e-6)
    assert fit.forecast_limit <= 0.5


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), higher=st.booleans())
def test_size_ranges_never_fall_as_the_target_gets_harder(seed, higher):
    rng = np.random.default_rng(seed)
    steps = np.unique(np.geomspace(rng.integers(5, 50), rng.integers(500, 5000), 7).astype(int))
    err = rng.uniform(0, 0.3) + rng.uniform(0.3, 3) * steps.astype(float) ** -rng.uniform(0.1, 1.2)
    noise = rng.normal(scale=rng.choice([0.001, 0.01, 0.03]), size=(3, steps.size))
    acc = np.clip(1 - err[None, :] + noise, 0, 1)
    values = acc if higher else 1.0 - acc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_learning_curve(steps, values, higher_is_better=higher, random_state=seed)
        limit = fit.forecast_limit
        last = float(fit.mean[-1])
        # reachable, then (past the forecast's limit) not
        targets = np.clip(np.linspace(last, limit + (limit - last) * 0.5, 9), 0.0, 1.0)
        est = fit.size_needed(targets)
    order = np.argsort(targets if higher else -targets)
    assert np.all(np.diff(est.lower[order]) >= 0)
    upper = np.where(est.upper < 0, np.iinfo(np.int64).max, est.upper)[order]
    assert np.all(np.diff(upper) >= 0)


def test_size_range_of_an_unreachable_target_is_not_below_a_reachable_ones():
    # the bug-bash's curve: 0.968 is reachable (lower end 22M), 0.969 not ("at least 273k")
    rng = np.random.default_rng(59)
    steps = np.unique(
        np.geomspace(rng.integers(5, 50), rng.integers(500, 5000), rng.integers(4, 9)).astype(int)
    )
    c0, c, m = rng.uniform(0, 0.3), rng.uniform(0.3, 3), rng.uniform(0.1, 1.2)
    runs = int(rng.integers(2, 6))
    err = c0 + c * steps**-m
    noise = rng.normal(scale=rng.choice([0.001, 0.01, 0.03]), size=(runs, steps.size))
    fit = fit_learning_curve(steps, np.clip(1 - err[None, :] + noise, 0, 1), random_state=59)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        est = fit.size_needed([0.968, 0.969, 0.98], method="forecast")
    assert est.reachable.tolist() == [True, False, False]
    assert est.lower[1] >= est.lower[0]
    assert est.lower[2] >= est.lower[1]


def test_forecast_size_of_a_flat_curve_returns():
    """A curve flat to within rounding: the closed form says "the first step" while the
    forecast, a few ulps below the target, never reaches it. Found on a real (LCDB) curve,
    where the search stepped up one sample at a time, for ever."""
    steps = np.array([16, 23, 32, 45, 64, 91, 128], dtype=np.float64)
    fit = fit_learning_curve(steps, np.full((125, steps.size), 0.1), n_bootstrap=0)
    target = 0.09999999999999977  # a mean of the runs, summed in another order
    assert fit.forecast(1)[0] < target  # the path that hung: missed at n = 1 ...
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        assert fit.forecast(suff.MAX_SIZE)[0] < target  # ... and everywhere
    assert fit.forecast_size(target)[0] == -1


@settings(max_examples=200, deadline=None)
@given(
    first=st.integers(2, suff.MAX_SIZE),
    guess=st.integers(1, suff.MAX_SIZE),
)
def test_first_reaching_finds_the_threshold_from_any_guess(first, guess):
    calls = []

    def reaches(n):
        calls.append(n)
        return n >= first

    assert suff._first_reaching(reaches, guess) == first
    assert len(calls) <= 4 * 47  # galloping then bisection over [1, 2**46]
    assert suff._first_reaching(lambda n: False, guess) == -1
