"""The mixture and k-means kernels under every instruction set (``DATAGAUGE_SIMD``): the
AVX2 and baseline fallbacks give the numbers the widest kernels give, for both dtypes and
every covariance type."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from datagauge import _core

COVS = ["full", "tied", "diag", "spherical"]

# Runs every kernel entry point on fixed data and prints the results as JSON.
_CHILD = """
import json, math, numpy as np
from datagauge import _core
rng = np.random.default_rng(5)
centres = rng.normal(scale=4.0, size=(6, 11)) + 3.0
x64 = centres[rng.integers(6, size=701)] + rng.normal(size=(701, 11))
out = {"level": _core.gmm_kernel_level()}
for name, x in (("f64", x64), ("f32", x64.astype(np.float32))):
    k = 6
    draws = np.random.default_rng(1).random((k - 1, 2 + int(math.log(k))))
    seeds, idx = _core.kmeans_plusplus(x, 3, draws, 2)
    moved, it = _core.kmeans_lloyd(x, seeds, 50, 1e-4, 2)
    res = {"idx": idx.tolist(), "lloyd": moved.tolist(), "it": it}
    for cov in ("full", "tied", "diag", "spherical"):
        shift = moved if cov != "tied" else np.repeat(moved.mean(0, keepdims=True), k, 0)
        shift = np.ascontiguousarray(shift)
        near = _core.gmm_accumulate_nearest(x, moved, cov, shift, 2)
        w, mu, cv, pc = _core.gmm_m_step(near, 1e-6)
        st = _core.gmm_accumulate(x, w, mu, pc, cov, np.ascontiguousarray(mu), 2)
        ll, resp = _core.gmm_score(x, w, mu, pc, cov, True, 2)
        res[cov] = {
            "near": [near.nk.tolist(), near.s.tolist(), near.q.tolist()],
            "stats": [st.loglik, st.nk.tolist(), st.s.tolist(), st.q.tolist()],
            "ll": ll.tolist(), "resp": resp.tolist(),
        }
    out[name] = res
print(json.dumps(out))
"""


def _run(value: str | None) -> dict:
    env = dict(os.environ)
    env.pop("DATAGAUGE_SIMD", None)
    if value is not None:
        env["DATAGAUGE_SIMD"] = value
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def widest() -> dict:
    return _run(None)


def test_kernel_level_names_the_cpus_best_by_default(widest):
    assert widest["level"] == _core.gmm_kernel_level()
    assert widest["level"] in ("avx512", "avx2", "scalar")


@pytest.mark.parametrize("value", ["avx2", "scalar"])
def test_fallback_kernels_give_the_same_numbers(widest, value):
    order = ["scalar", "avx2", "avx512"]
    got = _run(value)
    # a cap above what the CPU has gives what the CPU has
    expected_level = order[min(order.index(value), order.index(widest["level"]))]
    assert got["level"] == expected_level
    for name, tol in (("f64", 1e-12), ("f32", 1e-5)):
        a, b = got[name], widest[name]
        assert a["idx"] == b["idx"]  # exact float64 differences: the same seeds
        assert a["it"] == b["it"]
        np.testing.assert_allclose(a["lloyd"], b["lloyd"], rtol=1e-12, atol=1e-12)
        for cov in COVS:
            for key in ("near", "stats", "ll", "resp"):
                for u, v in zip(a[cov][key], b[cov][key], strict=True):
                    v = np.asarray(v, dtype=np.float64)
                    np.testing.assert_allclose(
                        u,
                        v,
                        rtol=tol,
                        atol=tol * max(1.0, float(np.abs(v).max())),
                        err_msg=f"{value} {name} {cov} {key}",
                    )


def test_fallback_kernels_match_the_numpy_oracle():
    """The baseline kernels against brute force: nearest-centre statistics and scores."""
    got = _run("scalar")["f64"]
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=4.0, size=(6, 11)) + 3.0
    x = centres[rng.integers(6, size=701)] + rng.normal(size=(701, 11))
    moved = np.array(got["lloyd"])
    labels = np.argmin(((x[:, None, :] - moved[None]) ** 2).sum(-1), axis=1)
    nk = np.bincount(labels, minlength=6)
    s = np.stack([(x[labels == k] - moved[k]).sum(0) for k in range(6)])
    q = np.stack([((x[labels == k] - moved[k]) ** 2).sum(0) for k in range(6)])
    near = got["diag"]["near"]
    np.testing.assert_array_equal(near[0], nk)
    np.testing.assert_allclose(near[1], s, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(near[2], q, rtol=1e-12, atol=1e-9)
    # the diagonal model's log-likelihood of every row, by brute force
    w = nk / nk.sum()
    var = q / nk[:, None] + 1e-6
    logp = (
        np.log(w)
        - 0.5 * (((x[:, None, :] - moved[None]) ** 2) / var[None]).sum(-1)
        - 0.5 * np.log(var).sum(1)
        - 0.5 * x.shape[1] * math.log(2 * math.pi)
    )
    top = logp.max(1, keepdims=True)
    ll = (top + np.log(np.exp(logp - top).sum(1, keepdims=True)))[:, 0]
    np.testing.assert_allclose(got["diag"]["ll"], ll, rtol=1e-10)


def test_invalid_simd_switch_is_a_clear_error_for_the_mixture():
    code = "from datagauge import _core; _core.gmm_kernel_level()"
    env = dict(os.environ, DATAGAUGE_SIMD="sse9")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0
    assert "DATAGAUGE_SIMD must be 'auto', 'avx512', 'avx2' or 'scalar'" in proc.stderr
