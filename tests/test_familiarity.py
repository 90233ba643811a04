"""Familiarity (Gaussian mixture density) against scikit-learn's GaussianMixture."""

from __future__ import annotations

import itertools
import json
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity

import datagauge
from datagauge import (
    ClassComparison,
    ClassFamiliarity,
    ConvergenceWarning,
    DatasetComparison,
    Familiarity,
    FamiliarityResult,
    NotFittedError,
)
from datagauge.familiarity import likelihood_ratio_band

COVS = ["full", "tied", "diag", "spherical"]


def blobs(n=300, d=4, offset=0.0, seed=0):
    """Three clusters of different spread, far from the origin when offset is large."""
    rng = np.random.default_rng(seed)
    sizes = [n // 2, n // 3, n - n // 2 - n // 3]
    parts = [
        rng.normal(size=(s, d)) * scale + centre
        for s, scale, centre in zip(sizes, (1.0, 0.5, 2.0), (0.0, 4.0, -3.0), strict=True)
    ]
    x = np.concatenate(parts) + offset
    return x[rng.permutation(n)]


def sklearn_start(x, cov, k=3, seed=0):
    """Initial parameters: scikit-learn after one EM step from its k-means start."""
    with pytest.warns(SkConvergenceWarning):
        g = GaussianMixture(k, covariance_type=cov, max_iter=1, random_state=seed).fit(x)
    return {"weights_init": g.weights_, "means_init": g.means_, "precisions_init": g.precisions_}


def adopt(model, g):
    """Give a fitted Familiarity scikit-learn's fitted parameters."""
    model.weights_ = g.weights_
    model.means_ = g.means_
    model.precisions_cholesky_ = g.precisions_cholesky_
    return model


def fitted(cov, x, k=3, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Familiarity(n_components=k, covariance_type=cov, max_iter=1, **kw).fit(x)


# --------------------------------------------------------------------------- the oracle


@pytest.mark.parametrize("cov", COVS)
def test_em_steps_match_sklearn(cov):
    x = blobs(offset=50.0)  # far from the origin: no E[xx^T] - mu mu^T cancellation allowed
    start = sklearn_start(x, cov)
    with pytest.warns(SkConvergenceWarning):
        g = GaussianMixture(3, covariance_type=cov, max_iter=8, tol=0, **start).fit(x)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        f = Familiarity(n_components=3, covariance_type=cov, max_iter=8, tol=0, **start).fit(x)
    assert len(f.lower_bounds_) == 8
    np.testing.assert_allclose(f.lower_bounds_, g.lower_bounds_, rtol=1e-5)
    np.testing.assert_allclose(f.lower_bounds_, g.lower_bounds_, rtol=1e-10)  # in fact
    assert f.lower_bound_ == pytest.approx(g.lower_bound_, rel=1e-10)
    assert f.n_iter_ == g.n_iter_ == 8
    assert not f.converged_
    np.testing.assert_allclose(f.weights_, g.weights_, rtol=1e-8)
    np.testing.assert_allclose(f.means_, g.means_, rtol=1e-10)
    np.testing.assert_allclose(f.covariances_, g.covariances_, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(f.precisions_cholesky_, g.precisions_cholesky_, rtol=1e-7)
    np.testing.assert_allclose(f.precisions_, g.precisions_, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("cov", COVS)
def test_converges_like_sklearn(cov):
    x = blobs(d=3, seed=1)
    start = sklearn_start(x, cov)
    g = GaussianMixture(3, covariance_type=cov, tol=1e-4, max_iter=500, **start).fit(x)
    f = Familiarity(n_components=3, covariance_type=cov, tol=1e-4, max_iter=500, **start).fit(x)
    assert f.converged_
    assert f.n_iter_ == g.n_iter_
    assert f.lower_bound_ == pytest.approx(g.lower_bound_, rel=1e-9)


@pytest.mark.parametrize("cov", COVS)
def test_scores_match_sklearn_for_the_same_parameters(cov):
    x = blobs(offset=20.0, seed=2)
    g = GaussianMixture(3, covariance_type=cov, random_state=0).fit(x)
    f = adopt(fitted(cov, x), g)
    q = blobs(n=120, offset=20.0, seed=3)
    np.testing.assert_allclose(f.score_samples(q), g.score_samples(q), rtol=1e-12)
    np.testing.assert_allclose(f.predict_proba(q), g.predict_proba(q), rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(f.predict(q), g.predict(q))
    assert f.score(q) == pytest.approx(g.score(q), rel=1e-12)
    assert f.bic(q) == pytest.approx(g.bic(q), rel=1e-12)
    assert f.aic(q) == pytest.approx(g.aic(q), rel=1e-12)
    # float32 input runs the float32 path: same numbers to float32 accuracy.
    s32 = f.score_samples(q.astype(np.float32))
    exact = g.score_samples(q.astype(np.float32).astype(np.float64))  # same rounded input
    np.testing.assert_allclose(s32, exact, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cov", ["full", "diag"])
def test_float32_fit_matches_float64(cov):
    x = blobs(d=5, offset=10.0, seed=4)
    start = sklearn_start(x, cov)
    with pytest.warns(ConvergenceWarning):
        f64 = Familiarity(n_components=3, covariance_type=cov, max_iter=5, tol=0, **start).fit(x)
    with pytest.warns(ConvergenceWarning):
        f32 = Familiarity(n_components=3, covariance_type=cov, max_iter=5, tol=0, **start).fit(
            x.astype(np.float32)
        )
    np.testing.assert_allclose(f32.lower_bounds_, f64.lower_bounds_, rtol=1e-5)
    np.testing.assert_allclose(f32.means_, f64.means_, rtol=1e-5)


@pytest.mark.parametrize("cov", COVS)
@pytest.mark.parametrize("init", ["k-means++", "kmeans", "random"])
def test_fit_from_own_initialisation(cov, init):
    x = blobs(d=3, seed=5)
    f = Familiarity(n_components=3, covariance_type=cov, init=init, random_state=0).fit(x)
    assert f.converged_
    assert np.all(np.diff(f.lower_bounds_) > -1e-9)  # EM never decreases the likelihood
    assert f.weights_.sum() == pytest.approx(1.0)
    assert f.lower_bound_ == pytest.approx(f.score(x), abs=f.tol * 10)
    again = Familiarity(n_components=3, covariance_type=cov, init=init, random_state=0).fit(x)
    np.testing.assert_array_equal(again.means_, f.means_)  # seeded: deterministic


def test_kmeans_init_reaches_sklearn_optimum():
    x = blobs(d=2, seed=6)
    g = GaussianMixture(3, covariance_type="full", random_state=0).fit(x)
    f = Familiarity(n_components=3, covariance_type="full", init="kmeans", random_state=0).fit(x)
    assert f.lower_bound_ == pytest.approx(g.lower_bound_, abs=1e-3)


def test_n_init_keeps_the_best():
    x = blobs(d=2, seed=7)
    runs = [
        Familiarity(n_components=3, init="random", random_state=s, covariance_type="full").fit(x)
        for s in range(4)
    ]
    best = Familiarity(n_components=3, init="random", n_init=4, covariance_type="full")
    best.set_params(random_state=np.random.default_rng(0)).fit(x)
    assert best.lower_bound_ >= min(r.lower_bound_ for r in runs) - 1e-12


def test_partial_fit_steps_equal_fit_steps():
    x = blobs(seed=8)
    start = sklearn_start(x, "full")
    stepped = Familiarity(covariance_type="full", n_components=3, **start)
    for _ in range(3):
        stepped.partial_fit(x)
    whole = Familiarity(covariance_type="full", n_components=3, max_iter=3, tol=0, **start)
    with pytest.warns(ConvergenceWarning):
        whole.fit(x)
    np.testing.assert_allclose(stepped.lower_bounds_, whole.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(stepped.means_, whole.means_, rtol=1e-12)
    assert stepped.n_iter_ == 3


def test_reduce_dim_is_pca():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 5
    f = Familiarity(n_components=2, reduce_dim=3, random_state=0).fit(x)
    assert f.components_.shape == (3, 6)
    assert f.means_.shape == (2, 3)
    vals, vecs = np.linalg.eigh(np.cov(x, rowvar=False))
    top = vecs[:, np.argsort(vals)[::-1][:3]].T
    np.testing.assert_allclose(np.abs(f.components_), np.abs(top), atol=1e-8)
    np.testing.assert_allclose(f.mean_, x.mean(axis=0), rtol=1e-12)
    for row in f.components_:  # sign convention: largest |entry| positive
        assert row[np.argmax(np.abs(row))] > 0
    z = (x - f.mean_) @ f.components_.T
    g = GaussianMixture(2, covariance_type="diag").fit(z)
    adopt(f, g)
    np.testing.assert_allclose(f.score_samples(x), g.score_samples(z), rtol=1e-10)
    narrow = Familiarity(n_components=2, reduce_dim=10, random_state=0).fit(x)
    assert narrow.components_ is None  # 6 features <= 10: nothing to reduce
    start = {"means_init": f.means_, "weights_init": f.weights_, "precisions_init": f.precisions_}
    kw = {"n_components": 2, "reduce_dim": 3, "max_iter": 2, "tol": 0, **start}
    with pytest.warns(ConvergenceWarning):
        whole = Familiarity(**kw).fit(x)
    with pytest.warns(ConvergenceWarning):
        batched = Familiarity(block_size=64, **kw).fit([x[:150], x[150:]])
    np.testing.assert_allclose(batched.components_, whole.components_, atol=1e-10)
    np.testing.assert_allclose(batched.lower_bounds_, whole.lower_bounds_, rtol=1e-10)


# --------------------------------------------------------------------------- out of core


def test_batches_memmap_and_one_block_agree(tmp_path):
    x = blobs(n=1000, d=5, offset=3.0, seed=10)
    start = sklearn_start(x, "full")
    kw = {"n_components": 3, "covariance_type": "full", "max_iter": 4, "tol": 0, **start}
    with pytest.warns(ConvergenceWarning):
        one = Familiarity(**kw).fit(x)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    batches = [x[:123], x[123:700], x[700:]]
    for source in (batches, mm, lambda: iter(batches)):
        with pytest.warns(ConvergenceWarning):
            other = Familiarity(block_size=97, **kw).fit(source)
        np.testing.assert_allclose(other.lower_bounds_, one.lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(other.means_, one.means_, rtol=1e-11)
        np.testing.assert_allclose(other.covariances_, one.covariances_, rtol=1e-9)
    np.testing.assert_allclose(one.score_samples(mm), one.score_samples(x), rtol=1e-13)


@pytest.mark.parametrize("init", ["kmeans", "random"])
def test_projected_once_equals_projecting_every_pass(monkeypatch, tmp_path, init):
    # With reduce_dim an in-memory or memory-mapped fit projects its blocks once and reuses
    # them in every EM pass: the fit is bit for bit the one that projects each pass, and the
    # projected data are not kept on the estimator afterwards.
    from datagauge import _gmm

    x = blobs(n=900, d=12, offset=2.0, seed=12)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    kw = {"n_components": 3, "reduce_dim": 4, "init": init, "random_state": 3, "block_size": 101}
    calls: list[int] = []
    real = Familiarity._transform

    def counting(self, blk):
        calls.append(blk.shape[0])
        return real(self, blk)

    monkeypatch.setattr(Familiarity, "_transform", counting)
    for source in (x, mm):
        calls.clear()
        cached = Familiarity(**kw).fit(source)
        projected_rows = sum(calls)
        assert cached._projected is None
        with monkeypatch.context() as m:
            m.setattr(_gmm, "_PROJECTED_BYTES", 0)  # every pass projects its blocks again
            calls.clear()
            plain = Familiarity(**kw).fit(source)
        # Once (plus the seeding sample), not once per pass.
        assert projected_rows <= 2 * x.shape[0] < sum(calls)
        assert cached.lower_bounds_ == plain.lower_bounds_
        for name in ("weights_", "means_", "covariances_", "components_", "mean_"):
            np.testing.assert_array_equal(getattr(cached, name), getattr(plain, name))


def test_statistics_merge_and_pickle():
    x = blobs(n=600, seed=11)
    f = Familiarity(n_components=3, covariance_type="full", random_state=0).fit(x)
    whole = f.sufficient_statistics(x)
    a = f.sufficient_statistics(x[:250])
    b = pickle.loads(pickle.dumps(f.sufficient_statistics(x[250:])))
    a.merge(b)
    assert a.n_samples == whole.n_samples == 600
    assert a.loglik == pytest.approx(whole.loglik, rel=1e-12)
    for name in ("nk", "s", "q"):
        np.testing.assert_allclose(getattr(a, name), getattr(whole, name), rtol=1e-10, atol=1e-9)
    other = Familiarity(n_components=3, covariance_type="diag", random_state=0).fit(x)
    with pytest.raises(ValueError, match="different"):
        a.merge(other.sufficient_statistics(x))
    step = pickle.loads(pickle.dumps(f)).apply_statistics(a)
    assert step.lower_bounds_[-1] == pytest.approx(whole.loglik / 600, rel=1e-12)


def test_thread_count_does_not_change_results():
    x = blobs(n=20_000, d=6, seed=12).astype(np.float32)
    fits = [
        Familiarity(n_components=4, covariance_type="full", random_state=0, n_jobs=j).fit(x)
        for j in (1, 2)
    ]
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)
    np.testing.assert_array_equal(fits[0].lower_bounds_, fits[1].lower_bounds_)


# --------------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cov=st.sampled_from(COVS),
    shift=st.floats(-1e3, 1e3),
    d=st.integers(1, 5),
)
def test_scores_invariant_to_row_order_and_translation(seed, cov, shift, d):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, d)) * rng.uniform(0.5, 2, size=d)
    f = fitted(cov, x, k=2, random_state=seed)
    s = f.score_samples(x)
    perm = rng.permutation(60)
    np.testing.assert_array_equal(f.score_samples(x[perm]), s[perm])
    t = shift * rng.uniform(-1, 1, size=d)
    moved = fitted(cov, x, k=2, random_state=seed)
    moved.means_ = f.means_ + t
    np.testing.assert_allclose(moved.score_samples(x + t), s, rtol=1e-8, atol=1e-8)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), cov=st.sampled_from(COVS), shift=st.floats(-1e4, 1e4))
def test_fit_equivariant_to_translation_and_row_order(seed, cov, shift):
    rng = np.random.default_rng(seed)
    x = blobs(n=90, d=2, seed=seed)
    start = sklearn_start(x, cov, k=2)
    kw = {"n_components": 2, "covariance_type": cov, "max_iter": 3, "tol": 0}
    with pytest.warns(ConvergenceWarning):
        base = Familiarity(**kw, **start).fit(x)
    moved_start = {**start, "means_init": start["means_init"] + shift}
    perm = rng.permutation(90)
    with pytest.warns(ConvergenceWarning):
        moved = Familiarity(**kw, **moved_start).fit(x[perm] + shift)
    np.testing.assert_allclose(moved.lower_bounds_, base.lower_bounds_, rtol=1e-7)
    np.testing.assert_allclose(moved.means_ - shift, base.means_, atol=1e-7 * (1 + abs(shift)))
    np.testing.assert_allclose(moved.covariances_, base.covariances_, rtol=1e-5, atol=1e-9)


# --------------------------------------------------------------------------- degenerate input


def test_duplicate_rows_and_identical_points():
    x = np.repeat(blobs(n=40, d=3, seed=13), 3, axis=0)
    f = Familiarity(n_components=3, covariance_type="full", random_state=0).fit(x)
    assert np.isfinite(f.score_samples(x)).all()
    same = np.ones((50, 2))
    g = Familiarity(n_components=3, covariance_type="diag", random_state=0).fit(same)
    assert np.isfinite(g.score_samples(same)).all()
    np.testing.assert_allclose(g.covariances_[np.argmax(g.weights_)], 1e-6)


def test_component_collapsing_onto_one_point_is_regularised():
    x = np.concatenate([blobs(n=99, d=2, seed=14), [[1e3, 1e3]]])
    f = Familiarity(n_components=4, covariance_type="full", init="kmeans", random_state=0)
    f.fit(x)
    lonely = np.argmin(np.abs(f.means_ - 1e3).sum(axis=1))
    np.testing.assert_allclose(f.covariances_[lonely], 1e-6 * np.eye(2), atol=1e-9)
    assert np.isfinite(f.score_samples(x)).all()


def test_collapse_without_regularisation_is_a_clear_error():
    x = np.repeat(np.arange(10.0)[:, None], 2, axis=1)  # on a line: singular covariance
    with pytest.raises(ValueError, match=r"ill-defined empirical covariance.*increase reg_covar"):
        Familiarity(n_components=2, covariance_type="full", reg_covar=0, random_state=0).fit(x)


def test_one_dimensional_data():
    x = blobs(n=200, d=1, seed=15)
    start = sklearn_start(x, "full")
    with pytest.warns(SkConvergenceWarning):
        g = GaussianMixture(3, max_iter=5, tol=0, **start).fit(x)
    with pytest.warns(ConvergenceWarning):
        f = Familiarity(n_components=3, covariance_type="full", max_iter=5, tol=0, **start).fit(x)
    np.testing.assert_allclose(f.lower_bounds_, g.lower_bounds_, rtol=1e-10)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match=r"n_components=5 needs at least 5 samples, got 4"):
        Familiarity(n_components=5).fit(np.zeros((4, 2)))


# --------------------------------------------------------------------------- estimator contract


def test_init_only_stores_and_clone_works():
    from sklearn.base import clone

    f = Familiarity(n_components=-3, covariance_type="nope")  # checked at fit, not here
    assert f.get_params()["n_components"] == -3
    c = clone(Familiarity(n_components=2, reduce_dim=4))
    assert c.get_params()["reduce_dim"] == 4
    assert "n_components=2" in repr(c)
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        c.set_params(bogus=1)


def test_not_fitted():
    f = Familiarity()
    for method in (f.score_samples, f.predict, f.predict_proba, f.score, f.bic):
        with pytest.raises(NotFittedError, match="This Familiarity instance is not fitted yet"):
            method(np.zeros((3, 2)))
    assert issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, AttributeError)


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def x():
    return blobs(n=60, d=3, seed=16)


def test_nan(x):
    x[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN .* row 5"):
        Familiarity(n_components=2).fit(x)


def test_inf_at_scoring(x):
    f = Familiarity(n_components=2, random_state=0).fit(x)
    x[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"1 infinite .* row 7"):
        f.score_samples(x)


def test_wrong_dimensionality(x):
    with pytest.raises(ValueError, match=r"must be 2-D.*reshape\(-1, 1\)"):
        Familiarity(n_components=2).fit(x[:, 0])


def test_feature_count_differs_from_fit(x):
    f = Familiarity(n_components=2, random_state=0).fit(x)
    with pytest.raises(ValueError, match=r"has 2 features, but Familiarity was fitted with 3"):
        f.score_samples(x[:, :2])


def test_empty_input(x):
    with pytest.raises(ValueError, match="is empty"):
        Familiarity(n_components=2).fit(np.zeros((0, 3)))


@pytest.mark.parametrize("k", [0, -1])
def test_n_components_below_one(x, k):
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        Familiarity(n_components=k).fit(x)


def test_unknown_covariance_type(x):
    with pytest.raises(ValueError, match=r"covariance_type must be one of 'full'.*got 'ful'"):
        Familiarity(covariance_type="ful").fit(x)


def test_one_pass_iterator(x):
    with pytest.raises(TypeError, match=r"one-pass iterator.*partial_fit"):
        Familiarity(n_components=2).fit(b for b in (x[:30], x[30:]))


def test_batches_with_different_widths(x):
    with pytest.raises(ValueError, match="batch 1 has 2 features but the first batch has 3"):
        Familiarity(n_components=2).fit([x[:30], x[30:, :2]])


def test_bad_initial_parameters(x):
    with pytest.raises(ValueError, match=r"means_init must have shape \(2, 3\)"):
        Familiarity(n_components=2, means_init=np.zeros((3, 3))).fit(x)
    with pytest.raises(ValueError, match="weights_init must be positive and sum to 1"):
        Familiarity(n_components=2, weights_init=[0.7, 0.7]).fit(x)


def test_bad_random_state(x):
    with pytest.raises(TypeError, match="random_state must be None, an int or a numpy Generator"):
        Familiarity(n_components=2, random_state="seed").fit(x)


def test_bad_strategy(x):
    with pytest.raises(TypeError, match="strategy must be a density model with fit"):
        datagauge.familiarity(x, strategy=object())


def test_labels_of_the_wrong_length(x):
    with pytest.raises(ValueError, match="labels has 10 entries"):
        datagauge.familiarity(x, labels=np.zeros(10), n_components=2)


def test_compare_feature_mismatch(x):
    with pytest.raises(ValueError, match="predict_embeddings has 2 features"):
        datagauge.compare_datasets(x, x[:, :2], n_components=2)


def test_compare_one_side_labelled(x):
    with pytest.raises(ValueError, match="pass both fit_labels and predict_labels"):
        datagauge.compare_datasets(x, x, fit_labels=np.zeros(60), n_components=2)


# --------------------------------------------------------------------------- analyses


def test_familiarity_scores_and_extremes():
    x = blobs(n=300, d=3, seed=17)
    x[42] = [30.0, -30.0, 30.0]  # far from everything
    res = datagauge.familiarity(x, n_components=3, random_state=0, n_extremes=5)
    assert isinstance(res, FamiliarityResult)
    model = Familiarity(n_components=3, random_state=0).fit(x)
    np.testing.assert_array_equal(res.scores, model.score_samples(x))
    assert res.least_familiar[0] == 42
    np.testing.assert_array_equal(res.least_familiar, np.argsort(res.scores)[:5])
    np.testing.assert_array_equal(res.most_familiar, np.argsort(res.scores)[::-1][:5])
    assert not res.scores.flags.writeable
    json.dumps(res.to_dict())
    frame = res.to_dataframe()
    assert frame.shape == (300, 3)
    assert frame.loc[42, "rank"] == 1


def test_familiarity_per_class():
    x = blobs(n=300, d=2, seed=18)
    y = np.where(x[:, 0] > 1, "five", "three")
    y[:4] = "rare"  # too small for a model: reported, not dropped
    res = datagauge.familiarity(x, y, n_components=2, random_state=0, min_class_size=10)
    pc = res.per_class
    assert isinstance(pc, ClassFamiliarity)
    assert pc.labels.tolist() == ["five", "rare", "three"]
    assert pc.modelled.tolist() == [True, False, True]
    assert pc.count.tolist() == [int((y == c).sum()) for c in pc.labels]
    assert np.isnan(pc.class_scores[:, 1]).all()
    members = np.flatnonzero(y == "five")
    five = Familiarity(n_components=2, random_state=0).fit(x[members])
    np.testing.assert_allclose(pc.class_scores[:, 0], five.score_samples(x), rtol=1e-12)
    np.testing.assert_allclose(pc.own_scores[members], pc.class_scores[members, 0])
    fivelike = pc.most_like("three", "five", n=3)
    threes = np.flatnonzero(y == "three")
    best = threes[np.argsort(-pc.class_scores[threes, 0], kind="stable")[:3]]
    np.testing.assert_array_equal(fivelike, best)
    with pytest.raises(ValueError, match="fewer than min_class_size=10"):
        pc.most_like("three", "rare")
    assert pc.to_dataframe()["modelled"].tolist() == [True, False, True]
    json.dumps(res.to_dict())


def test_compare_same_and_shifted_distributions():
    rng = np.random.default_rng(19)
    train = rng.normal(size=(1000, 3))
    same = datagauge.compare_datasets(
        train, rng.normal(size=(1000, 3)), n_components=1, random_state=0
    )
    assert isinstance(same, DatasetComparison)
    assert same.band == "no significant gap"
    assert same.ratio_meaningful
    assert abs(same.loglik_difference_per_dim) < 0.05
    assert same.fraction_below_p5 == pytest.approx(0.05, abs=0.03)
    moved = datagauge.compare_datasets(
        train, rng.normal(size=(500, 3)) + 3, n_components=1, random_state=0
    )
    assert moved.band == "huge gap"
    assert moved.likelihood_ratio < 0.6
    assert moved.fraction_below_p1 > 0.5
    per_dim = (np.median(moved.predict_scores) - np.median(moved.fit_scores)) / 3
    assert moved.loglik_difference_per_dim == pytest.approx(per_dim)
    assert moved.likelihood_ratio == pytest.approx(np.exp(per_dim))
    # DeepView's literal ratio of log-likelihoods, kept under its own name, reads backwards.
    assert moved.loglik_ratio == pytest.approx(
        moved.predict_scores.mean() / moved.fit_scores.mean()
    )
    assert moved.loglik_ratio > 1.2
    assert moved.to_dataframe().shape[0] == 1
    json.dumps(moved.to_dict())


def test_likelihood_ratio_is_about_one_for_one_distribution():
    rng = np.random.default_rng(30)
    for d in (2, 8, 32):
        res = datagauge.compare_datasets(
            rng.normal(size=(4000, d)), rng.normal(size=(4000, d)), n_components=1, random_state=0
        )
        assert res.likelihood_ratio == pytest.approx(1.0, abs=0.03)
        assert res.band == "no significant gap"


def test_likelihood_ratio_falls_with_the_shift_into_a_huge_gap():
    rng = np.random.default_rng(31)
    d = 10
    train, test = rng.normal(size=(3000, d)), rng.normal(size=(1000, d))
    ratios, bands = [], []
    for shift in (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0):
        res = datagauge.compare_datasets(train, test + shift, n_components=1, random_state=0)
        ratios.append(res.likelihood_ratio)
        bands.append(res.band)
    assert all(a > b for a, b in itertools.pairwise(ratios))
    assert bands[0] == "no significant gap"
    assert bands[-1] == "huge gap"  # DeepView's formula read a 30-sigma shift as "gap" (322)
    # For Gaussians a shift of s in every one of d dimensions gives L = exp(-s^2 / 2).
    assert ratios[2] == pytest.approx(np.exp(-(2.0**2) / 2), rel=0.15)


def test_likelihood_ratio_does_not_change_with_units():
    rng = np.random.default_rng(32)
    a, b = rng.normal(size=(800, 4)), rng.normal(size=(500, 4)) * 1.3 + 0.5
    # reg_covar adds a constant to the variances: tiny, so that the model scales with the data.
    model = Familiarity(n_components=2, reg_covar=1e-15, random_state=0)
    base = datagauge.compare_datasets(a, b, strategy=model, random_state=0)
    for scale in (1000.0, 1e-3):
        scaled = datagauge.compare_datasets(a * scale, b * scale, strategy=model, random_state=0)
        assert scaled.likelihood_ratio == pytest.approx(base.likelihood_ratio, rel=1e-4)
        assert scaled.band == base.band
        assert scaled.ratio_meaningful
    # The literal ratio of log-likelihoods does change with units.
    small = datagauge.compare_datasets(a * 1e-3, b * 1e-3, strategy=model, random_state=0)
    assert small.loglik_ratio != pytest.approx(base.loglik_ratio, rel=0.1)


def test_likelihood_ratio_above_one_point_two_only_for_a_more_concentrated_set():
    rng = np.random.default_rng(33)
    train = rng.normal(size=(3000, 6))
    readings = {}
    for name, test in {
        "concentrated": rng.normal(size=(1000, 6)) * 0.5,
        "same": rng.normal(size=(1000, 6)),
        "wider": rng.normal(size=(1000, 6)) * 2.0,
        "shifted": rng.normal(size=(1000, 6)) + 1.5,
    }.items():
        readings[name] = datagauge.compare_datasets(train, test, n_components=1, random_state=0)
    assert readings["concentrated"].likelihood_ratio > 1.2
    assert readings["concentrated"].band == "gap"
    for name in ("same", "wider", "shifted"):
        assert readings[name].likelihood_ratio <= 1.2, name


def test_compare_per_class():
    rng = np.random.default_rng(21)
    xf = rng.normal(size=(400, 2))
    yf = np.repeat([0, 1], 200)
    xf[yf == 1] += 5
    xp = rng.normal(size=(200, 2))
    yp = np.repeat([0, 1, 2], [100, 95, 5])
    xp[yp == 1] += 8  # class 1 drifted; class 2 never seen at fit time
    res = datagauge.compare_datasets(
        xf, xp, fit_labels=yf, predict_labels=yp, n_components=1, random_state=0
    )
    pc = res.per_class
    assert isinstance(pc, ClassComparison)
    assert pc.labels.tolist() == [0, 1, 2]
    assert pc.compared.tolist() == [True, True, False]
    assert pc.band.tolist()[0] == "no significant gap"
    assert pc.band.tolist()[1] in ("gap", "huge gap")
    assert pc.band.tolist()[2] == "not compared"
    assert np.isnan(pc.likelihood_ratio[2])
    assert pc.fraction_below_p5[1] > 0.9
    assert pc.to_dataframe().shape == (3, 11)


def test_user_strategy_kernel_density():
    rng = np.random.default_rng(22)
    a, b = rng.normal(size=(300, 2)), rng.normal(size=(200, 2))
    kde = KernelDensity(bandwidth=0.4)
    res = datagauge.compare_datasets(a, b, strategy=kde, n_folds=3, random_state=5)
    # cross-fitted as the docstring says: the folds drawn from random_state, each fold of `a`
    # scored by a KDE of the others, `b` by the mean of the three
    folds = np.random.default_rng(5).permutation(300) % 3
    want_a, want_b = np.empty(300), np.zeros(200)
    for j in range(3):
        ref = KernelDensity(bandwidth=0.4).fit(a[folds != j])
        want_a[folds == j] = ref.score_samples(a[folds == j])
        want_b += ref.score_samples(b) / 3
    np.testing.assert_allclose(res.fit_scores, want_a)
    np.testing.assert_allclose(res.predict_scores, want_b)
    ref = KernelDensity(bandwidth=0.4).fit(a)
    assert not hasattr(kde, "tree_")  # the analyses fit copies
    one = datagauge.familiarity(a, strategy=kde, n_extremes=3)
    np.testing.assert_allclose(one.scores, ref.score_samples(a))
    assert "KernelDensity" in one.strategy


def test_likelihood_ratio_bands():
    assert likelihood_ratio_band(0.5) == "huge gap"
    assert likelihood_ratio_band(0.7) == "small gap"
    assert likelihood_ratio_band(1.0) == "no significant gap"
    assert likelihood_ratio_band(1.3) == "gap"
    assert likelihood_ratio_band(float("nan")) == "not meaningful"


# --------------------------------------------------------------------------- compiled core


def test_core_checks_its_inputs():
    from datagauge import _core

    x = np.zeros((5, 2))
    w, mu, pc = np.full(2, 0.5), np.zeros((2, 2)), np.ones((2, 2))
    with pytest.raises(TypeError):  # strict dtypes: no hidden conversion
        _core.gmm_score(x.astype(np.int64), w, mu, pc, "diag")
    with pytest.raises(ValueError, match=r"means must have shape \(2, 2\)"):
        _core.gmm_score(x, w, np.zeros((3, 2)), pc, "diag")
    with pytest.raises(ValueError, match="covariance_type must be"):
        _core.gmm_score(x, w, mu, pc, "round")
    with pytest.raises(ValueError, match="positive diagonal"):
        _core.gmm_score(x, w, mu, -pc, "diag")
    with pytest.raises(ValueError, match="weights must be positive"):
        _core.gmm_score(x, np.array([1.0, 0.0]), mu, pc, "diag")
    a = _core.gmm_accumulate(x, w, mu, pc, "diag", mu)
    b = _core.gmm_accumulate(x, w, mu, pc, "diag", mu + 1)
    with pytest.raises(ValueError, match="different shifts"):
        a.merge(b)
    with pytest.raises(ValueError, match=r"q must have shape \(2, 2\)"):
        _core.GmmStats("diag", 1.0, 0.0, mu, np.ones(2), mu, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="reg_covar"):
        _core.gmm_m_step(a, -1.0)


# --------------------------------------------------------------------------- issue 16


@pytest.mark.parametrize("cov", ["full", "tied"])
def test_precisions_init_must_be_symmetric(x, cov):
    p = np.array([[2.0, 0.5, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])  # upper triangle only
    prec = p if cov == "tied" else np.stack([np.eye(3), p])
    where = r"precisions_init" if cov == "tied" else r"precisions_init\[1\]"
    with pytest.raises(ValueError, match=where + r" must be symmetric.*\(P \+ P\.T\) / 2"):
        Familiarity(n_components=2, covariance_type=cov, precisions_init=prec).fit(x)


@pytest.mark.parametrize("cov", ["full", "tied"])
def test_precisions_init_must_be_positive_definite(x, cov):
    p = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # eigenvalues 3, 1, -1
    prec = p if cov == "tied" else np.stack([p, np.eye(3)])
    with pytest.raises(ValueError, match=r"must be positive definite.*smallest eigenvalue is -1"):
        Familiarity(n_components=2, covariance_type=cov, precisions_init=prec).fit(x)


@pytest.mark.parametrize(("cov", "prec"), [("diag", [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]),
                                           ("spherical", [1.0, -2.0])])  # fmt: skip
def test_precisions_init_must_be_positive(x, cov, prec):
    with pytest.raises(
        ValueError, match=rf"precisions_init must be > 0 for covariance_type='{cov}'"
    ):
        Familiarity(n_components=2, covariance_type=cov, precisions_init=prec).fit(x)


def twin_clusters(n=200, d=3, gap=40.0, seed=21):
    """Two clusters, the second an exact translate of the first: k-means finds them, and
    either labelling gives every component the same weight and covariance."""
    a = np.random.default_rng(seed).normal(size=(n, d)) * [1.0, 2.0, 0.5][:d]
    return np.concatenate([a, a + gap])


@pytest.mark.parametrize("cov", COVS)
def test_means_init_alone_starts_like_sklearn(cov):
    x = twin_clusters()
    means = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # both inside the first cluster
    kw = {"covariance_type": cov, "means_init": means, "random_state": 0}
    with pytest.warns(SkConvergenceWarning):
        g1 = GaussianMixture(2, init_params="kmeans", max_iter=1, **kw).fit(x)
    with pytest.warns(ConvergenceWarning):
        f1 = Familiarity(n_components=2, init="kmeans", max_iter=1, **kw).fit(x)
    # the first lower bound is the log-likelihood of the starting parameters
    assert f1.lower_bounds_[0] == pytest.approx(g1.lower_bounds_[0], rel=1e-9)
    g = GaussianMixture(2, init_params="kmeans", tol=1e-6, max_iter=500, **kw).fit(x)
    f = Familiarity(n_components=2, init="kmeans", tol=1e-6, max_iter=500, **kw).fit(x)
    assert f.lower_bound_ == pytest.approx(g.lower_bound_, rel=1e-9)
    assert f.n_iter_ == g.n_iter_


@pytest.mark.parametrize("cov", COVS)
def test_float32_scores_of_huge_rows_are_computed_in_float64(cov):
    x = blobs(d=3, seed=22)
    f = Familiarity(n_components=3, covariance_type=cov, random_state=0).fit(x.astype(np.float32))
    far = np.array([[1e20, -1e20, 3e19], [2e20, 0.0, 1.0]], dtype=np.float32)
    q = np.concatenate([x[:4].astype(np.float32), far])
    s32 = f.score_samples(q)
    s64 = f.score_samples(q.astype(np.float64))
    assert np.isfinite(s32).all()
    assert s64[-1] < -1e38  # about -4e39 for this model: beyond float32's range
    np.testing.assert_allclose(s32, s64, rtol=1e-5)
    np.testing.assert_allclose(f.predict_proba(q), f.predict_proba(q.astype(np.float64)), atol=1e-5)


@pytest.mark.parametrize(
    ("cov", "source", "extra"),
    [(c, "array", {}) for c in COVS]
    + [("full", "batches", {}), ("diag", "array", {"reduce_dim": 2, "init": "kmeans"})],
)
def test_float32_fit_on_huge_values_matches_float64(cov, source, extra):
    x = (blobs(d=3, seed=23) * 1e19).astype(np.float32)  # squares overflow float32
    kw = {"n_components": 2, "covariance_type": cov, "init": "random", "random_state": 0}
    kw.update(extra)
    f32 = Familiarity(**kw).fit(x if source == "array" else [x[:100], x[100:]])
    f64 = Familiarity(**kw).fit(x.astype(np.float64))
    assert f32.lower_bound_ == pytest.approx(f64.lower_bound_, rel=1e-5)
    np.testing.assert_allclose(f32.score_samples(x), f64.score_samples(x.astype(float)), rtol=1e-5)


def test_compare_datasets_with_huge_float32_rows_is_finite():
    x = blobs(d=3, seed=24).astype(np.float32)
    far = np.concatenate([x[:50], np.full((2, 3), 1e20, dtype=np.float32)])
    res = datagauge.compare_datasets(x, far, n_components=2, random_state=0)
    assert np.isfinite(res.predict_scores).all()
    assert np.isfinite(res.predict_mean_loglik)
    assert "infinite" not in res.note


def test_float64_scores_beyond_float64_range_are_minus_infinity():
    x = blobs(d=3, seed=25)
    f = Familiarity(n_components=2, random_state=0).fit(x)
    s = f.score_samples(np.array([[1e160, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    assert s[0] == -np.inf
    assert np.isfinite(s[1])


def test_apply_statistics_from_another_feature_count():
    rng = np.random.default_rng(26)
    other = Familiarity(n_components=2, random_state=0).fit(rng.normal(size=(100, 4)))
    stats = other.sufficient_statistics(rng.normal(size=(50, 4)))
    model = Familiarity(n_components=2, random_state=0).fit(rng.normal(size=(100, 3)))
    with pytest.raises(ValueError, match=r"stats have 4 features but this model has 3"):
        model.apply_statistics(stats)
    assert model.means_.shape == (2, 3)


@pytest.mark.parametrize("n_jobs", [2**31, 2**64])
def test_n_jobs_too_large(x, n_jobs):
    with pytest.raises(ValueError, match=rf"n_jobs={n_jobs} .* use None or -1"):
        Familiarity(n_components=2, n_jobs=n_jobs).fit(x)
    with pytest.raises(ValueError, match=rf"n_jobs={n_jobs} "):
        datagauge.familiarity(x, n_components=2, n_jobs=n_jobs)


@pytest.mark.parametrize("k", [2**31, 2**64])
def test_n_components_huge(x, k):
    y = np.repeat([0, 1], 30)
    for call in (
        lambda: Familiarity(n_components=k).fit(x),
        lambda: Familiarity(n_components=k).partial_fit(x),
        lambda: datagauge.familiarity(x, y, n_components=k),
        lambda: datagauge.compare_datasets(x, x, fit_labels=y, predict_labels=y, n_components=k),
    ):
        with pytest.raises(ValueError, match=rf"n_components={k} needs at least {k} samples"):
            call()


@pytest.mark.parametrize("cov", COVS)
def test_overflowing_covariance_is_a_clear_error(cov):
    x = blobs(d=3, seed=27) * 1e154  # finite, but the squares overflow float64
    with pytest.raises(ValueError, match=r"too large.*divide the embeddings"):
        Familiarity(n_components=2, covariance_type=cov, init="random", random_state=0).fit(x)


def test_hand_set_precisions_cholesky_must_have_a_positive_diagonal(x):
    f = Familiarity(n_components=2, random_state=0).fit(x)
    f.precisions_cholesky_ = -f.precisions_cholesky_
    with pytest.raises(
        ValueError, match=r"precisions_cholesky_ must have a positive diagonal.*refit"
    ):
        f.score_samples(x)


def test_gap_on_real_digits_reads_the_right_way():
    """Two random halves of the 8x8 digits (nearly constant pixels, heavy-tailed
    log-likelihoods) read "no significant gap"; digits 0-4 against 5-9 read "huge gap"."""
    from datagauge.datasets import load_digits

    ds = load_digits()
    x, y = ds.flat(), ds.labels
    for seed in range(3):
        half = np.random.default_rng(seed).permutation(x.shape[0])
        a, b = half[: x.shape[0] // 2], half[x.shape[0] // 2 :]
        res = datagauge.compare_datasets(x[a], x[b], random_state=seed)
        assert res.band == "no significant gap", (seed, res.likelihood_ratio)
        assert res.fraction_below_p5 == pytest.approx(0.05, abs=0.03)
    low = y < 5
    apart = datagauge.compare_datasets(x[low], x[~low], random_state=0)
    assert apart.band == "huge gap"
    assert apart.fraction_below_p5 > 0.3


def test_analyses_are_deterministic_by_default():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(200, 4)) + 0.2
    first, second = datagauge.compare_datasets(a, b), datagauge.compare_datasets(a, b)
    assert first.likelihood_ratio == second.likelihood_ratio
    np.testing.assert_array_equal(datagauge.familiarity(a).scores, datagauge.familiarity(a).scores)
