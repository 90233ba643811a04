"""The mixture's initialisation in the core: k-means++ seeding, Lloyd iterations and the
nearest-centre statistics, against scikit-learn and numpy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.mixture import GaussianMixture
from sklearn.mixture._gaussian_mixture import (
    _compute_precision_cholesky,
    _estimate_gaussian_parameters,
)

from datagauge import ConvergenceWarning, Familiarity, _core

COVS = ["full", "tied", "diag", "spherical"]


def clustered(n, d, k, seed, offset=0.0, spread=4.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(k, d)) + offset
    return centres[rng.integers(k, size=n)] + rng.normal(size=(n, d))


def sklearn_draws(n, k, seed):
    """The random numbers scikit-learn's kmeans_plusplus draws from RandomState(seed): the
    first centre (choice with equal weights) and (k - 1) x trials uniforms."""
    rs = np.random.RandomState(seed)
    cdf = np.full(n, 1.0 / n).cumsum()
    cdf /= cdf[-1]
    first = int(cdf.searchsorted(rs.random_sample(), side="right"))
    trials = 2 + int(np.log(k))
    draws = np.array([rs.uniform(size=trials) for _ in range(k - 1)]).reshape(k - 1, trials)
    return first, draws


def numpy_plusplus(x, first, draws):
    """Greedy k-means++ in numpy with exact squared differences (the oracle)."""
    x = x.astype(np.float64)
    n = len(x)
    centres = [x[first]]
    closest = ((x - x[first]) ** 2).sum(axis=1)
    for u in draws:
        cum = np.cumsum(closest)
        if cum[-1] > 0:
            idx = np.minimum(np.searchsorted(cum, u * cum[-1]), n - 1)
        else:
            idx = np.minimum((u * n).astype(np.int64), n - 1)
        dist = np.minimum(closest[:, None], ((x[:, None, :] - x[idx][None]) ** 2).sum(axis=-1))
        best = int(np.argmin(dist.sum(axis=0)))
        closest = dist[:, best]
        centres.append(x[idx[best]])
    return np.array(centres)


# --------------------------------------------------------------------------- oracles


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_plusplus_picks_sklearns_rows_for_sklearns_draws(seed, dtype):
    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(30, 400)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    x = clustered(n, d, 4, seed).astype(dtype)
    ref = x.astype(np.float64)  # the core computes in float64 for both dtypes
    centres_sk, idx_sk = kmeans_plusplus(ref, k, random_state=np.random.RandomState(seed))
    first, draws = sklearn_draws(n, k, seed)
    centres, idx = _core.kmeans_plusplus(x, first, draws, 2)
    np.testing.assert_array_equal(idx, idx_sk)
    np.testing.assert_array_equal(centres, centres_sk)
    np.testing.assert_array_equal(centres, numpy_plusplus(x, first, draws))


@pytest.mark.parametrize("seed", range(6))
def test_lloyd_equals_sklearn_kmeans_from_the_same_centres(seed):
    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(50, 600)), int(rng.integers(1, 7)), int(rng.integers(1, 8))
    x = clustered(n, d, 5, seed, offset=10.0)
    start = x[rng.choice(n, size=k, replace=False)]
    km = KMeans(k, init=start, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(x)
    centres, n_iter = _core.kmeans_lloyd(x, start, 300, 1e-4, 2)
    assert n_iter == km.n_iter_
    np.testing.assert_allclose(centres, km.cluster_centers_, rtol=1e-12, atol=1e-12)
    labels = np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(labels, km.labels_)


def test_lloyd_relocates_an_empty_cluster_as_sklearn():
    x = clustered(200, 3, 3, seed=4)
    start = np.concatenate([x[:2], np.full((1, 3), 1e3)])  # the third centre gets no row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = KMeans(3, init=start, n_init=1, max_iter=1, tol=0, algorithm="lloyd").fit(x)
    centres, _ = _core.kmeans_lloyd(x, start, 1, 0.0, 1)
    np.testing.assert_allclose(centres, km.cluster_centers_, rtol=1e-12, atol=1e-12)
    assert np.all(np.abs(centres) < 100)  # the far centre moved onto the data


@pytest.mark.parametrize("cov", COVS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nearest_statistics_equal_one_hot_responsibilities(cov, dtype):
    x = clustered(1000, 5, 4, seed=7, offset=50.0).astype(dtype)
    centres = x[[0, 10, 20, 30]].astype(np.float64)
    shift = np.ascontiguousarray(centres if cov != "tied" else np.repeat(centres[:1], 4, 0))
    xd = x.astype(np.float64)
    labels = np.argmin(((xd[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    resp = np.eye(4)[labels]
    a = _core.gmm_accumulate_nearest(x, centres, cov, shift, 2)
    b = _core.gmm_accumulate_resp(x, resp, cov, shift, 2)
    np.testing.assert_array_equal(a.nk, np.bincount(labels, minlength=4))
    assert a.n_samples == 1000
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for name in ("s", "q"):
        np.testing.assert_allclose(
            getattr(a, name), getattr(b, name), rtol=tol, atol=tol * np.abs(getattr(b, name)).max()
        )


@pytest.mark.parametrize("cov", COVS)
def test_fit_starts_from_the_kmeans_labels_as_sklearn_would(cov):
    """One EM step of Familiarity(init="kmeans") equals scikit-learn's from the parameters
    of the same k-means labels (seeds from the same draws, Lloyd on all rows)."""
    x = clustered(600, 4, 3, seed=11, offset=5.0)
    k, seed = 3, 3
    rng = np.random.default_rng(seed)
    first = int(rng.integers(len(x)))
    draws = rng.random((k - 1, 2 + int(math.log(k))))
    seeds = numpy_plusplus(x, first, draws)
    km = KMeans(k, init=seeds, n_init=1, max_iter=100, tol=1e-4, algorithm="lloyd").fit(x)
    resp = np.eye(k)[km.labels_]
    weights, means, covs = _estimate_gaussian_parameters(x, resp, 1e-6, cov)
    prec_chol = _compute_precision_cholesky(covs, cov)
    if cov == "full":
        prec = np.einsum("kij,klj->kil", prec_chol, prec_chol)
    elif cov == "tied":
        prec = prec_chol @ prec_chol.T
    else:
        prec = prec_chol**2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = GaussianMixture(
            k,
            covariance_type=cov,
            max_iter=1,
            weights_init=weights / len(x),
            means_init=means,
            precisions_init=prec,
        ).fit(x)
    with pytest.warns(ConvergenceWarning):
        f = Familiarity(
            n_components=k, covariance_type=cov, init="kmeans", max_iter=1, random_state=seed
        ).fit(x)
    assert f.lower_bound_ == pytest.approx(g.lower_bound_, rel=1e-10)
    np.testing.assert_allclose(f.means_, g.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(f.covariances_, g.covariances_, rtol=1e-8, atol=1e-10)


def test_default_fit_matches_sklearn_loglik_and_responsibilities():
    x = clustered(3000, 6, 4, seed=2, offset=3.0, spread=10.0)  # one optimum, found by both
    kw = {"covariance_type": "diag", "random_state": 0, "tol": 1e-9, "max_iter": 2000}
    g = GaussianMixture(4, **kw).fit(x)
    f = Familiarity(n_components=4, init="kmeans", **kw).fit(x)
    assert g.converged_
    assert f.converged_
    assert f.lower_bound_ == pytest.approx(g.lower_bound_, rel=1e-9)
    order = [int(np.argmin(((g.means_ - m) ** 2).sum(1))) for m in f.means_]
    np.testing.assert_allclose(f.predict_proba(x), g.predict_proba(x)[:, order], atol=1e-7)


# --------------------------------------------------------------------------- properties


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 40),
    d=st.integers(1, 4),
    k=st.integers(1, 6),
    dup=st.integers(1, 4),
    threads=st.integers(1, 4),
)
def test_plusplus_and_lloyd_on_duplicates_and_tiny_data(seed, n, d, k, dup, threads):
    rng = np.random.default_rng(seed)
    distinct = rng.integers(-2, 3, size=(max(1, n // dup), d)).astype(np.float64)
    x = np.ascontiguousarray(distinct[rng.integers(len(distinct), size=n)])
    k = min(k, n)
    first = int(rng.integers(n))
    draws = rng.random((k - 1, 2 + int(math.log(k))))
    centres, idx = _core.kmeans_plusplus(x, first, draws, threads)
    np.testing.assert_array_equal(centres, x[idx])  # centres are rows
    np.testing.assert_array_equal(centres, numpy_plusplus(x, first, draws))
    one, _ = _core.kmeans_plusplus(x, first, draws, 1)
    np.testing.assert_array_equal(one, centres)  # the thread count does not matter
    n_distinct = len(np.unique(x, axis=0))
    assert len(np.unique(centres, axis=0)) == min(k, n_distinct)  # new rows while there are any
    moved, it = _core.kmeans_lloyd(x, centres, 50, 1e-4, threads)
    assert 1 <= it <= 50
    assert np.isfinite(moved).all()
    np.testing.assert_array_equal(_core.kmeans_lloyd(x, centres, 50, 1e-4, 1)[0], moved)


def test_k_equal_n_picks_every_row():
    x = clustered(12, 3, 3, seed=1)
    draws = np.random.default_rng(0).random((11, 2 + int(math.log(12))))
    _, idx = _core.kmeans_plusplus(x, 5, draws, 2)
    assert sorted(idx.tolist()) == list(range(12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        f = Familiarity(n_components=12, init="kmeans", random_state=0, max_iter=5).fit(x)
    assert np.isfinite(f.score_samples(x)).all()


@pytest.mark.parametrize("init", ["k-means++", "kmeans"])
def test_constant_columns_and_constant_data(init):
    x = clustered(300, 4, 3, seed=5)
    x[:, 1] = 7.0
    f = Familiarity(n_components=3, covariance_type="diag", init=init, random_state=0).fit(x)
    assert np.all(f.means_[:, 1] == pytest.approx(7.0))
    flat = np.full((50, 3), -2.5)
    g = Familiarity(n_components=2, init=init, random_state=0).fit(flat)
    # every row goes to the first seed; the other component is empty, as in scikit-learn
    np.testing.assert_allclose(g.means_[0], -2.5)
    assert g.weights_[0] == pytest.approx(1.0)
    assert np.isfinite(g.score_samples(flat)).all()


def test_thread_count_does_not_change_the_initialisation():
    x = clustered(30_000, 8, 6, seed=9).astype(np.float32)
    fits = []
    for j in (1, 2, 3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(
                Familiarity(
                    n_components=6, init="kmeans", random_state=0, n_jobs=j, max_iter=1
                ).fit(x)
            )
    for f in fits[1:]:
        np.testing.assert_array_equal(f.means_, fits[0].means_)
        np.testing.assert_array_equal(f.covariances_, fits[0].covariances_)


# --------------------------------------------------------------------------- bad input


def test_core_kmeans_checks_its_inputs():
    x = np.zeros((5, 2))
    draws = np.full((1, 2), 0.5)
    with pytest.raises(TypeError):  # strict dtypes: no hidden conversion
        _core.kmeans_plusplus(x.astype(np.int64), 0, draws)
    with pytest.raises(ValueError, match="first must index a row"):
        _core.kmeans_plusplus(x, 5, draws)
    with pytest.raises(ValueError, match=r"uniform numbers in \[0, 1\)"):
        _core.kmeans_plusplus(x, 0, np.full((1, 2), 1.0))
    with pytest.raises(ValueError, match=r"uniform numbers in \[0, 1\)"):
        _core.kmeans_plusplus(x, 0, np.full((1, 2), np.nan))
    with pytest.raises(ValueError, match="at most n_samples centres"):
        _core.kmeans_plusplus(x, 0, np.full((5, 2), 0.5))
    with pytest.raises(ValueError, match="at least one column"):
        _core.kmeans_plusplus(x, 0, np.zeros((1, 0)))
    with pytest.raises(ValueError, match="X is empty"):
        _core.kmeans_plusplus(np.zeros((0, 2)), 0, draws)
    with pytest.raises(ValueError, match="1 to n_samples centres"):
        _core.kmeans_lloyd(x, np.zeros((6, 2)), 10)
    with pytest.raises(ValueError, match=r"centres must have shape \(2, 2\)"):
        _core.kmeans_lloyd(x, np.zeros((2, 3)), 10)
    with pytest.raises(ValueError, match="centres holds NaN"):
        _core.kmeans_lloyd(x, np.full((2, 2), np.inf), 10)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        _core.kmeans_lloyd(x, np.zeros((2, 2)), 0)
    with pytest.raises(ValueError, match="tol must be"):
        _core.kmeans_lloyd(x, np.zeros((2, 2)), 10, -1.0)
    with pytest.raises(ValueError, match=r"centres must have shape \(2, 2\)"):
        _core.gmm_accumulate_nearest(x, np.zeros((2, 3)), "diag", np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"shift must have shape \(2, 2\)"):
        _core.gmm_accumulate_nearest(x, np.zeros((2, 2)), "diag", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="covariance_type must be"):
        _core.gmm_accumulate_nearest(x, np.zeros((2, 2)), "round", np.zeros((2, 2)))
