"""Learning-curve kernels: least-squares fit of ``y(n) = c * n**(-m) + c0``.

``y`` is the error (``1 - metric`` for a higher-is-better metric, the metric itself otherwise).
The fit minimises the sum of squared residuals over ``m >= 0``, any ``c`` and ``c0`` in
``[lo, hi]`` (``[0, 1]`` for unit-interval metrics, unbounded otherwise), the same problem
DataEval solves with ``scipy.optimize.basinhopping``.

For a fixed exponent ``m`` the model is linear in ``(c, c0)``, and the loss is a convex
quadratic whose minimum over the slab ``lo <= c0 <= hi`` is found in closed form (clamping
``c0`` is exact: the loss profiled over ``c`` is a convex parabola in ``c0``). The search is
then one-dimensional, over ``m``: a fixed grid (the multistart), a golden-section refinement of
every grid-local minimum, and a projected Levenberg-Marquardt polish of the best one on all
three parameters. Deterministic, no random numbers.

Internally the basis is ``u = (n / n_ref) ** (-m)`` with ``n_ref`` the smallest size, so
``u`` lies in ``(0, 1]`` whatever ``m`` is; ``c = c_ref * n_ref ** m``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Exponents searched: m * ln(n_2 / n_1) from 0 to T_MAX (n_1 < n_2 the two smallest sizes):
# there every other size's term weighs under exp(-T_MAX) of the smallest's, so the curve is a
# step from the first point to the rest and larger exponents change nothing.
T_MAX = 40.0
# ... and m * ln(n_min) <= C_LOG_MAX, so that c = c_ref * n_min**m is a finite float64.
C_LOG_MAX = 700.0
N_GRID = 160
_GOLD = 0.3819660112501051


@njit(cache=True)
def loss(params, logn, y):  # type: ignore[no-untyped-def]
    """Sum of squared residuals of ``y - (c * n**-m + c0)``; params = (c, m, c0), logn = ln n."""
    c, m, c0 = params[0], params[1], params[2]
    s = 0.0
    for i in range(logn.shape[0]):
        r = y[i] - (c * math.exp(-m * logn[i]) + c0)
        s += r * r
    return s


@njit(cache=True)
def gradient(params, logn, y):  # type: ignore[no-untyped-def]
    """Gradient of :func:`loss` with respect to (c, m, c0), float64 (3,)."""
    c, m, c0 = params[0], params[1], params[2]
    g = np.zeros(3)
    for i in range(logn.shape[0]):
        u = math.exp(-m * logn[i])
        r = y[i] - (c * u + c0)
        g[0] += -2.0 * r * u
        g[1] += 2.0 * r * c * u * logn[i]
        g[2] += -2.0 * r
    return g


@njit(cache=True)
def _profile(m, dlog, y, lo, hi):  # type: ignore[no-untyped-def]
    """Best (loss, c_ref, c0) for a fixed m; dlog = ln(n / n_ref) >= 0."""
    n = dlog.shape[0]
    su = 0.0
    suu = 0.0
    sy = 0.0
    suy = 0.0
    for i in range(n):
        u = math.exp(-m * dlog[i])
        su += u
        suu += u * u
        sy += y[i]
        suy += u * y[i]
    ubar = su / n
    ybar = sy / n
    var_u = suu / n - ubar * ubar
    if var_u > 1e-14 * max(suu / n, 1e-300):
        c_ref = (suy / n - ubar * ybar) / var_u
        c0 = ybar - c_ref * ubar
        if c0 < lo or c0 > hi:
            c0 = lo if c0 < lo else hi
            c_ref = (suy - c0 * su) / suu
    else:  # u constant (m = 0): only c_ref + c0 is identified; keep c0 as the constant
        c0 = min(max(ybar, lo), hi)
        c_ref = (ybar - c0) / ubar
    s = 0.0
    for i in range(n):
        r = y[i] - (c_ref * math.exp(-m * dlog[i]) + c0)
        s += r * r
    return s, c_ref, c0


@njit(cache=True)
def _golden(a, b, dlog, y, lo, hi):  # type: ignore[no-untyped-def]
    """Minimise the profile loss over m in [a, b] by golden-section search; returns (f, m)."""
    x1 = a + _GOLD * (b - a)
    x2 = b - _GOLD * (b - a)
    f1 = _profile(x1, dlog, y, lo, hi)[0]
    f2 = _profile(x2, dlog, y, lo, hi)[0]
    for _ in range(200):
        if b - a <= 1e-13 * (1.0 + abs(a) + abs(b)):
            break
        if f1 <= f2:
            b = x2
            x2 = x1
            f2 = f1
            x1 = a + _GOLD * (b - a)
            f1 = _profile(x1, dlog, y, lo, hi)[0]
        else:
            a = x1
            x1 = x2
            f1 = f2
            x2 = b - _GOLD * (b - a)
            f2 = _profile(x2, dlog, y, lo, hi)[0]
    if f1 <= f2:
        return f1, x1
    return f2, x2


@njit(cache=True)
def _loss_ref(c_ref, m, c0, dlog, y):  # type: ignore[no-untyped-def]
    s = 0.0
    for i in range(dlog.shape[0]):
        r = y[i] - (c_ref * math.exp(-m * dlog[i]) + c0)
        s += r * r
    return s


@njit(cache=True)
def _damped_solve(jtj, jtr, lam):  # type: ignore[no-untyped-def]
    """Levenberg-Marquardt's step: ``(jtj + lam * diag(jtj)) step = jtr`` (3 x 3, Marquardt's
    scaling, a tiny floor on the diagonal); (step, solved)."""
    a_mat = jtj.copy()
    for k in range(3):
        a_mat[k, k] += lam * (jtj[k, k] + 1e-12)
    return _solve3(a_mat, jtr)


@njit(cache=True)
def _solve3(a, b):  # type: ignore[no-untyped-def]
    """Solve the 3x3 system a x = b by Gaussian elimination with partial pivoting."""
    m = a.copy()
    v = b.copy()
    for k in range(3):
        p = k
        for i in range(k + 1, 3):
            if abs(m[i, k]) > abs(m[p, k]):
                p = i
        if m[p, k] == 0.0:
            return v * 0.0, False
        if p != k:
            for j in range(3):
                tmp = m[k, j]
                m[k, j] = m[p, j]
                m[p, j] = tmp
            tmp = v[k]
            v[k] = v[p]
            v[p] = tmp
        for i in range(k + 1, 3):
            f = m[i, k] / m[k, k]
            for j in range(k, 3):
                m[i, j] -= f * m[k, j]
            v[i] -= f * v[k]
    x = np.zeros(3)
    for k in range(2, -1, -1):
        s = v[k]
        for j in range(k + 1, 3):
            s -= m[k, j] * x[j]
        x[k] = s / m[k, k]
    return x, True


@njit(cache=True)
def _polish(c_ref, m, c0, dlog, y, lo, hi, m_max):  # type: ignore[no-untyped-def]
    """Projected Levenberg-Marquardt on (c_ref, m, c0); only steps that lower the loss count."""
    f = _loss_ref(c_ref, m, c0, dlog, y)
    lam = 1e-3
    jtj = np.zeros((3, 3))
    jtr = np.zeros(3)
    for _ in range(50):
        jtj[:, :] = 0.0
        jtr[:] = 0.0
        for i in range(dlog.shape[0]):
            u = math.exp(-m * dlog[i])
            r = y[i] - (c_ref * u + c0)
            j0 = u
            j1 = -c_ref * u * dlog[i]
            j2 = 1.0
            jr = (j0, j1, j2)
            for a in range(3):
                jtr[a] += jr[a] * r
                for b in range(3):
                    jtj[a, b] += jr[a] * jr[b]
        improved = False
        for _try in range(8):
            step, ok = _damped_solve(jtj, jtr, lam)
            if not ok:
                lam *= 10.0
                continue
            nc = c_ref + step[0]
            nm = min(max(m + step[1], 0.0), m_max)
            nc0 = min(max(c0 + step[2], lo), hi)
            nf = _loss_ref(nc, nm, nc0, dlog, y)
            if nf < f:
                rel = (f - nf) / max(f, 1e-300)
                c_ref, m, c0, f = nc, nm, nc0, nf
                lam = max(lam * 0.3, 1e-12)
                improved = True
                if rel < 1e-14:
                    return c_ref, m, c0, f
                break
            lam *= 10.0
        if not improved:
            break
    return c_ref, m, c0, f


@njit(cache=True)
def fit_power_law(logn, y, lo, hi):  # type: ignore[no-untyped-def]
    """Global least-squares fit of ``y = c * n**-m + c0``, m >= 0, lo <= c0 <= hi.

    Parameters
    ----------
    logn : float64 (n_steps,)
        ln of the sizes, at least two distinct values.
    y : float64 (n_steps,)
        Errors to fit.
    lo, hi : float
        Bounds on c0 (``-inf``/``inf`` for none).

    Returns
    -------
    float64 (4,)
        ``(c, m, c0, loss)``.
    """
    ref = logn.min()
    dlog = logn - ref
    # Beyond m * ln(n_2 / n_1) = T_MAX (n_1 < n_2 the two smallest sizes) every point but the
    # first has a term below e**-T_MAX of the first's: every larger m is the same step.
    gap = np.inf
    for i in range(dlog.shape[0]):
        if dlog[i] > 0.0 and dlog[i] < gap:
            gap = dlog[i]
    m_max = T_MAX / gap
    if ref > 0.0:  # and c = c_ref * n_min**m stays a finite float64
        m_max = min(m_max, C_LOG_MAX / ref)
    grid = np.empty(N_GRID + 1)
    grid[0] = 0.0
    lo_t = math.log(1e-4)
    hi_t = math.log(m_max)
    for k in range(N_GRID):
        grid[k + 1] = math.exp(lo_t + (hi_t - lo_t) * k / (N_GRID - 1))
    fg = np.empty(N_GRID + 1)
    for k in range(N_GRID + 1):
        fg[k] = _profile(grid[k], dlog, y, lo, hi)[0]
    best_f = np.inf
    best_m = 0.0
    for k in range(N_GRID + 1):
        left = fg[k - 1] if k > 0 else np.inf
        right = fg[k + 1] if k < N_GRID else np.inf
        if fg[k] <= left and fg[k] <= right:  # a grid-local minimum: refine around it
            a = grid[k - 1] if k > 0 else grid[0]
            b = grid[k + 1] if k < N_GRID else grid[N_GRID]
            f, mk = _golden(a, b, dlog, y, lo, hi)
            if fg[k] < f:
                f, mk = fg[k], grid[k]
            if f < best_f:
                best_f = f
                best_m = mk
    _, c_ref, c0 = _profile(best_m, dlog, y, lo, hi)
    c_ref, m, c0, f = _polish(c_ref, best_m, c0, dlog, y, lo, hi, m_max)
    out = np.empty(4)
    out[0] = c_ref * math.exp(m * ref)
    out[1] = m
    out[2] = c0
    out[3] = f
    return out


@njit(cache=True)
def fit_many(logn, ys, lo, hi):  # type: ignore[no-untyped-def]
    """:func:`fit_power_law` on every row of ys (n_fits, n_steps); returns float64 (n_fits, 4)."""
    out = np.empty((ys.shape[0], 4))
    for b in range(ys.shape[0]):
        out[b] = fit_power_law(logn, ys[b], lo, hi)
    return out


@njit(cache=True)
def error_at(c, m, c0, logn):  # type: ignore[no-untyped-def]
    """``c * n**-m + c0`` at ln-sizes logn, float64."""
    out = np.empty(logn.shape[0])
    for i in range(logn.shape[0]):
        if c == 0.0:
            out[i] = c0
        else:
            # in log space, so a large c with a large m does not overflow
            t = math.log(abs(c)) - m * logn[i]
            out[i] = math.copysign(math.exp(t), c) + c0
    return out


@njit(cache=True)
def smallest_size(c, m, c0, targets, higher_is_better, n_max):  # type: ignore[no-untyped-def]
    """Smallest integer n in [1, n_max] whose projected metric reaches each target, else -1.

    The metric is ``1 - error`` when higher_is_better (reached when >= target), the error
    itself otherwise (reached when <= target). Every answer is checked with the same formula
    as the projection, so ``project(smallest_size(t)) >= t`` holds exactly.
    """
    out = np.empty(targets.shape[0], dtype=np.int64)
    one = np.zeros(1)
    for i in range(targets.shape[0]):
        t = targets[i]
        goal = 1.0 - t if higher_is_better else t  # reached when error <= goal (up to rounding)
        one[0] = 0.0
        if _reaches(c, m, c0, one, t, higher_is_better):
            out[i] = 1
            continue
        if c <= 0.0 or m <= 0.0 or goal <= c0:
            out[i] = -1  # the error never decreases below goal
            continue
        ln_n = (math.log(c) - math.log(goal - c0)) / m
        if ln_n > math.log(float(n_max)):
            out[i] = -1
            continue
        n = max(1.0, math.ceil(math.exp(ln_n)))
        # repair rounding in either direction, with the projection's own arithmetic
        for _ in range(64):
            one[0] = math.log(n)
            if _reaches(c, m, c0, one, t, higher_is_better) or n >= n_max:
                break
            n += 1.0
        for _ in range(64):
            if n <= 1.0:
                break
            one[0] = math.log(n - 1.0)
            if not _reaches(c, m, c0, one, t, higher_is_better):
                break
            n -= 1.0
        one[0] = math.log(n)
        out[i] = np.int64(n) if _reaches(c, m, c0, one, t, higher_is_better) else -1
    return out


@njit(cache=True)
def _reaches(c, m, c0, logn1, t, higher_is_better):  # type: ignore[no-untyped-def]
    e = error_at(c, m, c0, logn1)[0]
    if higher_is_better:
        return 1.0 - e >= t
    return e <= t


@njit(cache=True)
def _weighted_solve(sw, sx, sxx, sy, sxy, lo, hi):  # type: ignore[no-untyped-def]
    """(c, c0) minimising ``sum w (c0 + c u - err)**2`` with ``lo <= c0 <= hi``, from the
    weighted sums ``sw = sum w``, ``sx = sum w u``, ``sxx = sum w u**2``, ``sy = sum w err``,
    ``sxy = sum w u err``."""
    det = sw * sxx - sx * sx
    flat = det <= 1e-12 * sw * sxx  # u constant (m = 0): the model is the constant c + c0
    c = 0.0 if flat else (sw * sxy - sx * sy) / det
    c0 = (sy - c * sx) / sw
    if c0 < lo or c0 > hi:  # the loss is convex: the constrained optimum is on the nearer bound
        c0 = lo if c0 < lo else hi
        c = 0.0 if flat else (sxy - c0 * sx) / sxx
    return c, c0


@njit(cache=True)
def _weighted_at(m, x_log, err, w, lo, hi):  # type: ignore[no-untyped-def]
    """(c, c0, loss) of the weighted fit ``err = c0 + c * x**-m`` (``x_log = ln x``,
    ``x = n / n_1``, so ``x**-m`` is 1 at the smallest size) for one exponent m."""
    sw = 0.0
    sy = 0.0
    sx = 0.0
    sxx = 0.0
    sxy = 0.0
    for i in range(x_log.shape[0]):
        u = math.exp(-m * x_log[i])
        sw += w[i]
        sy += w[i] * err[i]
        sx += w[i] * u
        sxx += w[i] * u * u
        sxy += w[i] * u * err[i]
    c, c0 = _weighted_solve(sw, sx, sxx, sy, sxy, lo, hi)
    s = 0.0
    for i in range(x_log.shape[0]):
        r = c0 + c * math.exp(-m * x_log[i]) - err[i]
        s += w[i] * r * r
    return c, c0, s


@njit(cache=True)
def weighted_fit_many(x_log, errs, w, lo, hi, grid):  # type: ignore[no-untyped-def]
    """Weighted power-law fits ``err = c0 + c * x**-m`` of every row of errs (n_fits, k).

    For each row: the exponent in `grid` (ascending, ``grid[0] = 0``) with the smallest
    weighted loss, ``(c, c0)`` exact for each, then a golden-section search of ``ln m``
    between the best grid point's neighbours (40 steps); the polished point is kept when its
    loss is not larger. The basis on the grid and its row-independent sums are computed once
    for all rows. Returns float64 (n_fits, 3): ``(c, m, c0)``. Deterministic: a row's answer
    does not depend on the other rows.
    """
    g = grid.shape[0]
    k = x_log.shape[0]
    basis = np.empty((g, k))
    sx = np.zeros(g)
    sxx = np.zeros(g)
    sw = 0.0
    for i in range(k):
        sw += w[i]
    for q in range(g):
        for i in range(k):
            u = math.exp(-grid[q] * x_log[i])
            basis[q, i] = u
            sx[q] += w[i] * u
            sxx[q] += w[i] * u * u
    out = np.empty((errs.shape[0], 3))
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    for b in range(errs.shape[0]):
        err = errs[b]
        sy = 0.0
        for i in range(k):
            sy += w[i] * err[i]
        best = np.inf
        j = 0
        bc = 0.0
        bc0 = 0.0
        for q in range(g):
            sxy = 0.0
            for i in range(k):
                sxy += w[i] * basis[q, i] * err[i]
            c, c0 = _weighted_solve(sw, sx[q], sxx[q], sy, sxy, lo, hi)
            s = 0.0
            for i in range(k):
                r = c0 + c * basis[q, i] - err[i]
                s += w[i] * r * r
            if s < best:
                best, j, bc, bc0 = s, q, c, c0
        out[b, 0], out[b, 1], out[b, 2] = bc, grid[j], bc0
        if j == 0:
            continue
        a = math.log(grid[j - 1]) if j > 1 else math.log(grid[1]) - 1.0
        z = math.log(grid[min(j + 1, g - 1)])
        u1 = z - inv_phi * (z - a)
        u2 = a + inv_phi * (z - a)
        f1 = _weighted_at(math.exp(u1), x_log, err, w, lo, hi)[2]
        f2 = _weighted_at(math.exp(u2), x_log, err, w, lo, hi)[2]
        for _ in range(40):  # the bracket, 2 grid cells of ln m, shrinks to about 1e-9
            if f1 <= f2:
                z, u2, f2 = u2, u1, f1
                u1 = z - inv_phi * (z - a)
                f1 = _weighted_at(math.exp(u1), x_log, err, w, lo, hi)[2]
            else:
                a, u1, f1 = u1, u2, f2
                u2 = a + inv_phi * (z - a)
                f2 = _weighted_at(math.exp(u2), x_log, err, w, lo, hi)[2]
        u = u1 if f1 <= f2 else u2
        c, c0, s = _weighted_at(math.exp(u), x_log, err, w, lo, hi)
        if s <= best:
            out[b, 0], out[b, 1], out[b, 2] = c, math.exp(u), c0
    return out


@njit(cache=True)
def _log_line(v, x_log, err, ln_err, w, e_min, y):  # type: ignore[no-untyped-def]
    """(c, m, c0, loss) of the log-space fit for one asymptote ``c0 = e_min * (1 - exp(-v))``
    (``v >= 0``, so ``0 <= c0 < e_min``, the smallest error): the weighted least-squares line
    ``ln(err - c0) = ln c - m x`` (``x = x_log``, ``m >= 0``), and its loss in log space,
    ``sum w (ln err - ln(c0 + c exp(-m x)))**2``. `y` (k,) is scratch space."""
    k = x_log.shape[0]
    c0 = e_min * -math.expm1(-v)
    sw = 0.0
    sx = 0.0
    sy = 0.0
    for i in range(k):
        y[i] = math.log(err[i] - c0)
        sw += w[i]
        sx += w[i] * x_log[i]
        sy += w[i] * y[i]
    xm = sx / sw
    ym = sy / sw
    sxx = 0.0
    sxy = 0.0
    for i in range(k):
        dx = x_log[i] - xm
        sxx += w[i] * dx * dx
        sxy += w[i] * dx * (y[i] - ym)
    slope = sxy / sxx if sxx > 0.0 else 0.0
    if slope > 0.0:  # the error grows with n: the best flat curve (m = 0)
        slope = 0.0
    a = ym - slope * xm
    s = 0.0
    for i in range(k):
        r = ln_err[i] - math.log(c0 + math.exp(a + slope * x_log[i]))
        s += w[i] * r * r
    return math.exp(a), -slope, c0, s


@njit(cache=True)
def _log_loss(a, m, c0, x_log, ln_err, w):  # type: ignore[no-untyped-def]
    """``sum w (ln err - ln(c0 + exp(a - m x)))**2``."""
    s = 0.0
    for i in range(x_log.shape[0]):
        r = ln_err[i] - math.log(c0 + math.exp(a - m * x_log[i]))
        s += w[i] * r * r
    return s


@njit(cache=True)
def _log_polish(a, m, c0, x_log, ln_err, w, hi, m_max, max_steps):  # type: ignore[no-untyped-def]
    """Projected Levenberg-Marquardt on ``(a = ln c, m, c0)`` of the log-space loss, with
    ``0 <= m <= m_max`` and ``0 <= c0 <= hi``; only steps that lower the loss count, and it
    stops when none does (or after `max_steps`): the valley of ``c0`` against ``m`` can be
    long, curved and flat, and stopping on a small gain (or after 100 steps) left fits of
    errors equal up to rounding 1e-4 apart."""
    f = _log_loss(a, m, c0, x_log, ln_err, w)
    lam = 1e-3
    jtj = np.zeros((3, 3))
    jtr = np.zeros(3)
    for _ in range(max_steps):
        jtj[:, :] = 0.0
        jtr[:] = 0.0
        for i in range(x_log.shape[0]):
            g = math.exp(a - m * x_log[i])
            d = c0 + g
            r = ln_err[i] - math.log(d)
            jr = (g / d, -x_log[i] * g / d, 1.0 / d)
            for p in range(3):
                jtr[p] += w[i] * jr[p] * r
                for q in range(3):
                    jtj[p, q] += w[i] * jr[p] * jr[q]
        improved = False
        for _try in range(12):
            step, ok = _damped_solve(jtj, jtr, lam)
            if not ok:
                lam *= 10.0
                continue
            na = a + step[0]
            nm = min(max(m + step[1], 0.0), m_max)
            nc0 = min(max(c0 + step[2], 0.0), hi)
            nf = _log_loss(na, nm, nc0, x_log, ln_err, w)
            if nf < f:
                a, m, c0, f = na, nm, nc0, nf
                lam = max(lam * 0.3, 1e-12)
                improved = True
                break
            lam *= 10.0
        if not improved:
            break
    return a, m, c0, f


@njit(cache=True)
def log_fit_many(x_log, errs, w, v_grid, hi, m_max, max_steps):  # type: ignore[no-untyped-def]
    """Weighted power-law fits ``err = c0 + c * x**-m`` in log space, one per row of errs
    (n_fits, k), every entry > 0.

    Minimises ``sum w (ln err - ln(c0 + c * x**-m))**2`` (``x_log = ln x``) over ``c > 0``,
    ``0 <= m <= m_max`` and ``0 <= c0 <= hi``. The start: for each asymptote below the
    smallest error the excess ``err - c0`` is a power law, a straight line in log-log,
    solved exactly (weighted least squares) and scored by the loss; the asymptote is
    searched over ``c0 = min(err) * (1 - exp(-v))`` for ``v`` in `v_grid` (ascending,
    ``v_grid[0] = 0``, i.e. ``c0 = 0``) and refined by a golden-section search of ``v``
    between the best grid point's neighbours (40 steps). Then a projected Levenberg-Marquardt
    polish of all three parameters (the line through the excess is not itself the minimum),
    kept when its loss is not larger (at most `max_steps` steps). Returns float64
    (n_fits, 3): ``(c, m, c0)``.
    Deterministic; a row's answer does not depend on the other rows.
    """
    g = v_grid.shape[0]
    k = x_log.shape[0]
    out = np.empty((errs.shape[0], 3))
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    ln_err = np.empty(k)
    y = np.empty(k)
    for b in range(errs.shape[0]):
        err = errs[b]
        e_min = err[0]
        for i in range(k):
            ln_err[i] = math.log(err[i])
            e_min = min(e_min, err[i])
        best = np.inf
        j = 0
        for q in range(g):
            c, m, c0, s = _log_line(v_grid[q], x_log, err, ln_err, w, e_min, y)
            if s < best:
                best, j = s, q
                out[b, 0], out[b, 1], out[b, 2] = c, m, c0
        a = v_grid[max(j - 1, 0)]
        z = v_grid[min(j + 1, g - 1)]
        if z <= a:
            continue
        u1 = z - inv_phi * (z - a)
        u2 = a + inv_phi * (z - a)
        f1 = _log_line(u1, x_log, err, ln_err, w, e_min, y)[3]
        f2 = _log_line(u2, x_log, err, ln_err, w, e_min, y)[3]
        for _ in range(40):  # the bracket, 2 grid cells of v, shrinks to about 1e-9 of them
            if f1 <= f2:
                z, u2, f2 = u2, u1, f1
                u1 = z - inv_phi * (z - a)
                f1 = _log_line(u1, x_log, err, ln_err, w, e_min, y)[3]
            else:
                a, u1, f1 = u1, u2, f2
                u2 = a + inv_phi * (z - a)
                f2 = _log_line(u2, x_log, err, ln_err, w, e_min, y)[3]
        c, m, c0, s = _log_line(u1 if f1 <= f2 else u2, x_log, err, ln_err, w, e_min, y)
        if s <= best:
            out[b, 0], out[b, 1], out[b, 2] = c, m, c0
    for b in range(errs.shape[0]):
        err = errs[b]
        for i in range(k):
            ln_err[i] = math.log(err[i])
        c, m, c0 = out[b, 0], out[b, 1], out[b, 2]
        m = min(m, m_max)
        start = _log_loss(math.log(c), m, c0, x_log, ln_err, w)
        a, pm, pc0, s = _log_polish(math.log(c), m, c0, x_log, ln_err, w, hi, m_max, max_steps)
        if s <= start:
            out[b, 0], out[b, 1], out[b, 2] = math.exp(a), pm, pc0
    return out
