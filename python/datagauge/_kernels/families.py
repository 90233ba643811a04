"""Learning-curve families beyond the power law: least-squares fits, values and inverses.

Every family is ``error(n) = c0 + c * phi(n; m, d)`` with ``phi -> 0`` as ``n -> inf`` (so
``c0`` is the asymptote) and family code ``fam``:

- 0 ``pow3``: ``phi = n**-m`` (DataEval's power law; fitted by :mod:`.curves`);
- 1 ``pow4``: ``phi = (n + d)**-m``, ``d >= 0`` (a power law whose start is flattened);
- 2 ``mmf4``: ``phi = 1 / (1 + (n / d)**m)``, ``d > 0`` (Morgan-Mercer-Flodin: a sigmoid in
  ``ln n`` with its knee at ``n = d``).

For fixed ``(m, d)`` the model is linear in ``(c, c0)``, so the fits search a grid over the
two non-linear parameters with ``(c, c0)`` solved exactly (``c0`` clamped to ``[lo, hi]``), then
refine the best cell by alternating golden-section searches. Deterministic.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .curves import fit_power_law

POW3, POW4, MMF4 = 0, 1, 2
T_MAX = 40.0  # the largest m * (range of ln phi's argument) searched
_GOLD = 0.3819660112501051


@njit(cache=True)
def log_phi(fam, m, d, logn):  # type: ignore[no-untyped-def]
    """ln phi at ln-size logn (a scalar)."""
    if fam == POW3:
        return -m * logn
    if fam == POW4:
        return -m * math.log(math.exp(logn) + d)
    z = m * (logn - math.log(d))
    if z > 0.0:  # ln(1 / (1 + e^z)) = -z - ln(1 + e^-z), stable for large z
        return -z - math.log1p(math.exp(-z))
    return -math.log1p(math.exp(z))


@njit(cache=True)
def error_at(fam, c, m, c0, d, logn):  # type: ignore[no-untyped-def]
    """``c0 + c * phi`` at ln-sizes logn (float64 (k,)), computed in log space."""
    out = np.empty(logn.shape[0])
    for i in range(logn.shape[0]):
        if c == 0.0:
            out[i] = c0
        else:
            t = math.log(abs(c)) + log_phi(fam, m, d, logn[i])
            out[i] = math.copysign(math.exp(min(t, 700.0)), c) + c0
    return out


@njit(cache=True)
def _profile(fam, m, d, logn, y, lo, hi, ref):  # type: ignore[no-untyped-def]
    """Best (loss, c_ref, c0) for fixed (m, d); the basis is phi / phi(n_ref)."""
    n = logn.shape[0]
    base = log_phi(fam, m, d, ref)
    su = 0.0
    suu = 0.0
    sy = 0.0
    suy = 0.0
    u = np.empty(n)
    for i in range(n):
        u[i] = math.exp(log_phi(fam, m, d, logn[i]) - base)
        su += u[i]
        suu += u[i] * u[i]
        sy += y[i]
        suy += u[i] * y[i]
    ubar = su / n
    ybar = sy / n
    var_u = suu / n - ubar * ubar
    if var_u > 1e-14 * max(suu / n, 1e-300):
        c_ref = (suy / n - ubar * ybar) / var_u
        c0 = ybar - c_ref * ubar
        if c0 < lo or c0 > hi:
            c0 = lo if c0 < lo else hi
            c_ref = (suy - c0 * su) / suu
    else:
        c0 = min(max(ybar, lo), hi)
        c_ref = (ybar - c0) / ubar
    s = 0.0
    for i in range(n):
        r = y[i] - (c_ref * u[i] + c0)
        s += r * r
    return s, c_ref, c0


@njit(cache=True)
def _m_of(fam, t, d, lmin, lmax):  # type: ignore[no-untyped-def]
    """The exponent for grid coordinate t: m * (span of the basis's log argument) = t."""
    if fam == POW4:
        span = math.log((math.exp(lmax) + d) / (math.exp(lmin) + d))
        return t / max(span, 1e-12)
    return t  # mmf4: m is the slope in ln n already


@njit(cache=True)
def _eval(fam, lt, ld, logn, y, lo, hi, lmin, lmax):  # type: ignore[no-untyped-def]
    d = math.exp(ld) if ld > -700.0 else 0.0
    m = _m_of(fam, math.exp(lt), d, lmin, lmax)
    if -log_phi(fam, m, d, lmin) > 700.0:
        return np.inf  # c = c_ref / phi(n_min) would overflow float64
    return _profile(fam, m, d, logn, y, lo, hi, lmin)[0]


@njit(cache=True)
def _golden_axis(fam, axis, a, b, other, logn, y, lo, hi, lmin, lmax):  # type: ignore[no-untyped-def]
    """Minimise over one log-coordinate in [a, b], the other fixed; returns (f, x)."""
    x1 = a + _GOLD * (b - a)
    x2 = b - _GOLD * (b - a)
    if axis == 0:
        f1 = _eval(fam, x1, other, logn, y, lo, hi, lmin, lmax)
        f2 = _eval(fam, x2, other, logn, y, lo, hi, lmin, lmax)
    else:
        f1 = _eval(fam, other, x1, logn, y, lo, hi, lmin, lmax)
        f2 = _eval(fam, other, x2, logn, y, lo, hi, lmin, lmax)
    for _ in range(40):
        if b - a <= 1e-4:
            break
        if f1 <= f2:
            b = x2
            x2 = x1
            f2 = f1
            x1 = a + _GOLD * (b - a)
            if axis == 0:
                f1 = _eval(fam, x1, other, logn, y, lo, hi, lmin, lmax)
            else:
                f1 = _eval(fam, other, x1, logn, y, lo, hi, lmin, lmax)
        else:
            a = x1
            x1 = x2
            f1 = f2
            x2 = b - _GOLD * (b - a)
            if axis == 0:
                f2 = _eval(fam, x2, other, logn, y, lo, hi, lmin, lmax)
            else:
                f2 = _eval(fam, other, x2, logn, y, lo, hi, lmin, lmax)
    if f1 <= f2:
        return f1, x1
    return f2, x2


@njit(cache=True)
def fit_family(fam, logn, y, lo, hi):  # type: ignore[no-untyped-def]
    """Least-squares fit of a family to errors y at ln-sizes logn.

    Returns float64 (5,): ``(c, m, c0, d, loss)``.
    """
    out = np.empty(5)
    if fam == POW3:
        p = fit_power_law(logn, y, lo, hi)
        out[0], out[1], out[2], out[3], out[4] = p[0], p[1], p[2], 0.0, p[3]
        return out
    lmin = logn.min()
    lmax = logn.max()
    nt = 18
    nd = 12
    lts = np.empty(nt)
    for k in range(nt):  # t = m * span from 0.01 to T_MAX (pow4); m from 0.05 to 12 (mmf4)
        if fam == POW4:
            lts[k] = math.log(0.01) + (math.log(T_MAX) - math.log(0.01)) * k / (nt - 1)
        else:
            lts[k] = math.log(0.05) + (math.log(12.0) - math.log(0.05)) * k / (nt - 1)
    lds = np.empty(nd)
    for k in range(nd):
        if fam == POW4:  # d = 0 (the power law), then 0.05 n_min .. 3 n_max
            if k == 0:
                lds[k] = -1000.0
            else:
                a = lmin + math.log(0.05)
                b = lmax + math.log(3.0)
                lds[k] = a + (b - a) * (k - 1) / (nd - 2)
        else:  # the knee from n_min / 20 to 20 n_max
            a = lmin - math.log(20.0)
            b = lmax + math.log(20.0)
            lds[k] = a + (b - a) * k / (nd - 1)
    best = np.inf
    bi = 0
    bj = 0
    for i in range(nt):
        for j in range(nd):
            f = _eval(fam, lts[i], lds[j], logn, y, lo, hi, lmin, lmax)
            if f < best:
                best, bi, bj = f, i, j
    lt = lts[bi]
    ld = lds[bj]
    # refine: alternate golden searches over the neighbouring cells
    ta = lts[max(bi - 1, 0)]
    tb = lts[min(bi + 1, nt - 1)]
    if not (fam == POW4 and bj == 0):
        da = lds[max(bj - 1, 1 if fam == POW4 else 0)]
        db = lds[min(bj + 1, nd - 1)]
    else:
        da = db = ld
    p = _refine(fam, logn, y, lo, hi, lt, ld, ta, tb, da, db, best)
    if fam == POW4 and p[3] == 0.0:
        return p
    # polish: Nelder-Mead on (ln t, ln d); m and d are correlated, which the alternating
    # searches above only approach slowly
    d = p[3]
    lt = math.log(max(p[1], 1e-300))
    if fam == POW4:
        span = math.log((math.exp(lmax) + d) / (math.exp(lmin) + d))
        lt = math.log(max(p[1] * max(span, 1e-12), 1e-300))
    q = _nelder_mead(fam, logn, y, lo, hi, lt, math.log(d), lmin, lmax)
    if q[4] < p[4]:
        return q
    return p


@njit(cache=True)
def _nelder_mead(fam, logn, y, lo, hi, lt, ld, lmin, lmax):  # type: ignore[no-untyped-def]
    """Nelder-Mead over (ln t, ln d) from a start; returns (c, m, c0, d, loss)."""
    xs = np.empty((3, 2))
    fs = np.empty(3)
    xs[0, 0], xs[0, 1] = lt, ld
    xs[1, 0], xs[1, 1] = lt + 0.05, ld
    xs[2, 0], xs[2, 1] = lt, ld + 0.1
    for k in range(3):
        fs[k] = _eval(fam, xs[k, 0], xs[k, 1], logn, y, lo, hi, lmin, lmax)
    for _ in range(200):
        order = np.argsort(fs)
        xs = xs[order].copy()
        fs = fs[order].copy()
        if fs[2] - fs[0] <= 1e-12 * (abs(fs[0]) + 1e-300) and abs(xs[2, 0] - xs[0, 0]) < 1e-9:
            break
        cx = 0.5 * (xs[0, 0] + xs[1, 0])
        cy = 0.5 * (xs[0, 1] + xs[1, 1])
        rx, ry = cx + (cx - xs[2, 0]), cy + (cy - xs[2, 1])
        fr = _eval(fam, rx, ry, logn, y, lo, hi, lmin, lmax)
        if fr < fs[0]:
            ex, ey = cx + 2.0 * (cx - xs[2, 0]), cy + 2.0 * (cy - xs[2, 1])
            fe = _eval(fam, ex, ey, logn, y, lo, hi, lmin, lmax)
            if fe < fr:
                xs[2, 0], xs[2, 1], fs[2] = ex, ey, fe
            else:
                xs[2, 0], xs[2, 1], fs[2] = rx, ry, fr
        elif fr < fs[1]:
            xs[2, 0], xs[2, 1], fs[2] = rx, ry, fr
        else:
            kx, ky = cx + 0.5 * (xs[2, 0] - cx), cy + 0.5 * (xs[2, 1] - cy)
            fk = _eval(fam, kx, ky, logn, y, lo, hi, lmin, lmax)
            if fk < fs[2]:
                xs[2, 0], xs[2, 1], fs[2] = kx, ky, fk
            else:
                for k in (1, 2):
                    xs[k, 0] = xs[0, 0] + 0.5 * (xs[k, 0] - xs[0, 0])
                    xs[k, 1] = xs[0, 1] + 0.5 * (xs[k, 1] - xs[0, 1])
                    fs[k] = _eval(fam, xs[k, 0], xs[k, 1], logn, y, lo, hi, lmin, lmax)
    k = int(np.argmin(fs))
    lt, ld = xs[k, 0], xs[k, 1]
    if fam == MMF4:
        lt = min(max(lt, math.log(1e-6)), math.log(1e3))
    d = math.exp(min(ld, 700.0))
    m = _m_of(fam, math.exp(min(lt, 50.0)), d, lmin, lmax)
    loss, c_ref, c0 = _profile(fam, m, d, logn, y, lo, hi, lmin)
    c = math.copysign(math.exp(math.log(abs(c_ref) + 1e-300) - log_phi(fam, m, d, lmin)), c_ref)
    if c_ref == 0.0:
        c = 0.0
    out = np.empty(5)
    out[0], out[1], out[2], out[3], out[4] = c, m, c0, d, loss
    return out


@njit(cache=True)
def _refine(fam, logn, y, lo, hi, lt, ld, ta, tb, da, db, best):  # type: ignore[no-untyped-def]
    """Alternating golden searches of ln t in [ta, tb] and ln d in [da, db]; (c, m, c0, d, loss)."""
    lmin = logn.min()
    lmax = logn.max()
    for _ in range(2):
        f, x = _golden_axis(fam, 0, ta, tb, ld, logn, y, lo, hi, lmin, lmax)
        if f <= best:
            best, lt = f, x
        if db > da:
            f, x = _golden_axis(fam, 1, da, db, lt, logn, y, lo, hi, lmin, lmax)
            if f <= best:
                best, ld = f, x
    d = math.exp(ld) if ld > -700.0 else 0.0
    m = _m_of(fam, math.exp(lt), d, lmin, lmax)
    loss, c_ref, c0 = _profile(fam, m, d, logn, y, lo, hi, lmin)
    # c = c_ref / phi(n_ref), in log space
    c = math.copysign(math.exp(math.log(abs(c_ref) + 1e-300) - log_phi(fam, m, d, lmin)), c_ref)
    if c_ref == 0.0:
        c = 0.0
    out = np.empty(5)
    out[0], out[1], out[2], out[3], out[4] = c, m, c0, d, loss
    return out


@njit(cache=True)
def fit_family_near(fam, logn, y, lo, hi, m0, d0):  # type: ignore[no-untyped-def]
    """:func:`fit_family` searched only near a previous fit ``(m0, d0)`` (for the bootstrap:
    resampled curves lie close to the full one). pow3 gets its full global fit."""
    if fam == POW3:
        return fit_family(fam, logn, y, lo, hi)
    lmin = logn.min()
    lmax = logn.max()
    if fam == POW4:
        span = math.log((math.exp(lmax) + d0) / (math.exp(lmin) + d0))
        lt = math.log(max(m0 * max(span, 1e-12), 1e-300))
    else:
        lt = math.log(max(m0, 1e-300))
    ld = math.log(d0) if d0 > 0.0 else -1000.0
    best = _eval(fam, lt, ld, logn, y, lo, hi, lmin, lmax)
    if ld > -700.0:
        da, db = ld - 0.7, ld + 0.7
    else:
        da = db = ld
    return _refine(fam, logn, y, lo, hi, lt, ld, lt - 0.5, lt + 0.5, da, db, best)


@njit(cache=True)
def fit_family_many(fam, logn, ys, lo, hi, m0, d0):  # type: ignore[no-untyped-def]
    """:func:`fit_family_near` on every row of ys (n_fits, n_steps); float64 (n_fits, 5)."""
    out = np.empty((ys.shape[0], 5))
    for b in range(ys.shape[0]):
        out[b] = fit_family_near(fam, logn, ys[b], lo, hi, m0, d0)
    return out


@njit(cache=True)
def _reaches(fam, c, m, c0, d, logn, t, higher_is_better, lo, hi):  # type: ignore[no-untyped-def]
    one = np.empty(1)
    one[0] = logn
    e = min(max(error_at(fam, c, m, c0, d, one)[0], lo), hi)
    if higher_is_better:
        return 1.0 - e >= t
    return e <= t


@njit(cache=True)
def smallest_size(fam, c, m, c0, d, targets, higher_is_better, n_max, lo, hi):  # type: ignore[no-untyped-def]
    """Smallest integer n in [1, n_max] whose (clipped) projection reaches each target, else -1.

    Only for curves whose error falls with n (c > 0, m > 0); checked with the projection's own
    arithmetic, so ``project(n)`` reaches the target and ``project(n - 1)`` does not.
    """
    out = np.empty(targets.shape[0], dtype=np.int64)
    for i in range(targets.shape[0]):
        t = targets[i]
        goal = 1.0 - t if higher_is_better else t
        if _reaches(fam, c, m, c0, d, 0.0, t, higher_is_better, lo, hi):
            out[i] = 1
            continue
        if c <= 0.0 or m <= 0.0 or goal <= c0:
            out[i] = -1
            continue
        lr = math.log(goal - c0) - math.log(c)  # ln phi(n) = lr
        if fam == POW3:
            ln_n = -lr / m
        elif fam == POW4:
            v = -lr / m
            if v > 700.0:
                out[i] = -1
                continue
            x = math.exp(v) - d
            ln_n = math.log(x) if x > 1.0 else 0.0
        else:
            if lr >= 0.0:
                out[i] = 1
                continue
            # 1 / (1 + (n/d)^m) = r  ->  ln n = ln d + ln(1/r - 1) / m
            q = -lr  # ln(1/r) > 0
            w = q + math.log(-math.expm1(-q))  # ln(1/r - 1)
            ln_n = math.log(d) + w / m
        if ln_n > math.log(float(n_max)):
            out[i] = -1
            continue
        n = max(1.0, math.ceil(math.exp(ln_n)))
        for _ in range(64):
            if _reaches(fam, c, m, c0, d, math.log(n), t, higher_is_better, lo, hi) or n >= n_max:
                break
            n += 1.0
        for _ in range(64):
            if n <= 1.0:
                break
            if not _reaches(fam, c, m, c0, d, math.log(n - 1.0), t, higher_is_better, lo, hi):
                break
            n -= 1.0
        ok = _reaches(fam, c, m, c0, d, math.log(n), t, higher_is_better, lo, hi)
        out[i] = np.int64(n) if ok else -1
    return out


@njit(cache=True)
def sizes_many(fam, params, targets, higher_is_better, n_max, lo, hi):  # type: ignore[no-untyped-def]
    """:func:`smallest_size` for every row (c, m, c0, d, ...) of params; int64 (rows, k)."""
    out = np.empty((params.shape[0], targets.shape[0]), dtype=np.int64)
    for b in range(params.shape[0]):
        p = params[b]
        out[b] = smallest_size(
            fam, p[0], p[1], p[2], p[3], targets, higher_is_better, n_max, lo, hi
        )
    return out
