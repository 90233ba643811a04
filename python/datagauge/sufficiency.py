"""Sufficiency: how a model's metrics grow with training data, projected to larger datasets.

Follows DataEval's ``Sufficiency`` (Hestness et al., "Deep learning scaling is predictable,
empirically", 2017): train on growing subsets of the training set, evaluate each time, and fit
the power law ``error(n) = c * n**(-m) + c0`` to ``1 - metric``. The fit reaches the same
least-squares minimum as DataEval's basin hopping, deterministically and without scipy (Numba
kernels in ``datagauge._kernels.curves``), and fixes what DataEval gets wrong:

- ``inv_project`` returns the smallest size whose projection reaches the target (DataEval
  truncates, so its size falls just short) and -1 only for the unreachable targets (DataEval's
  overflow check turns every target of the call into -1 when one overflows);
- no step of size 0 on datasets under 100 samples;
- subsets are drawn without replacement and the model is reset before every step (DataEval
  draws with replacement and keeps training one model across the steps of a run);
- confidence bands from a bootstrap over runs, and warnings for a poor fit or a projection far
  beyond the measured sizes;
- a :class:`SufficiencyResult` fits each metric's curve once and keeps it (DataEval refits on
  every projection).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ._progress import Progress, ProgressArg
from ._results import ResultBase, _frame, _plain
from ._threads import resolve_n_jobs, thread_limits
from ._validation import (
    check_bool,
    check_choice,
    check_int,
    check_learning_curve,
    check_random_state,
    check_sizes,
    check_targets,
    check_unit_fraction,
)
from ._warnings import DatagaugeWarning, ExtrapolationWarning, PoorFitWarning

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "EvaluationStrategy",
    "LearningCurve",
    "ResetStrategy",
    "SizeEstimate",
    "Sufficiency",
    "SufficiencyResult",
    "TrainingStrategy",
    "fit_learning_curve",
    "geometric_steps",
]

#: A projection beyond this many times the largest measured size warns (ExtrapolationWarning).
FAR_EXTRAPOLATION = 10.0
#: A fit whose R^2 on the mean curve is below this warns (PoorFitWarning).
MIN_R2 = 0.8
#: Sizes above this (2**46, about 7.0e13) count as unreachable. Sizes are found with the
#: projection's own float64 arithmetic in ln n; from e**32 (7.9e13) on, ln n is rounded to a
#: step of 2**-47 while ln(n) - ln(n - 1) = 1/n is about as small, so neighbouring sizes share
#: one projection and "the smallest size that reaches the target" is no longer exact (near
#: 3e15 the answer is some 20 samples below the true one).
MAX_SIZE = 2**46
#: Bootstrap resamples of the runs kept with a fitted curve (its band and size ranges).
N_BOOTSTRAP = 32
#: The most bootstrap resamples :func:`fit_learning_curve` takes: each is a full fit, and
#: the resampled runs are held in memory at once (far more than enough for a 90% band).
MAX_BOOTSTRAP = 100_000
#: The curve families :func:`fit_learning_curve` knows (``model=``), besides ``"auto"``.
MODELS = ("pow3", "pow4", "mmf4")
#: The default family choice of :func:`fit_learning_curve` (chosen by the back-test in
#: ``benchmarks/bench_sufficiency.py --backtest``; see benchmarks/README.md).
DEFAULT_MODEL = "pow3"
_FAMILY = {"pow3": 0, "pow4": 1, "mmf4": 2}
#: Calibration of :meth:`LearningCurve.size_needed`'s range with ``method="project"`` (centred
#: on :meth:`LearningCurve.inv_project`; see there): the bootstrap spread is scaled by
#: RANGE_KAPPA, each unit of ln(size / largest measured size) adds RANGE_TAU to the standard
#: deviation of ln(size), and every range has at least RANGE_FLOOR. RANGE_TAU and RANGE_FLOOR
#: were chosen leave one dataset out on the back-test's 182 real curves (the pair on a grid,
#: tau 0.2-1.0 and floor 0-1.0, whose coverage is nearest 80% at both cut-offs; (0.45, 1.0) on
#: all of them since an unreached target's lower end became monotone in the level, (0.45, 0.9)
#: before), where the held-out ranges hold the true size 80% / 79% of the time from 10% / 25%
#: of the sizes (benchmarks/README.md).
RANGE_KAPPA = 1.0
RANGE_TAU = 0.45
RANGE_FLOOR = 1.0
#: The same three for the default ``method="forecast"`` (centred on
#: :meth:`LearningCurve.forecast_size`, its bootstrap the weighted fit's on the same
#: resamples). FORECAST_RANGE_KAPPA is kept at 1 (the bootstrap spread as it is);
#: FORECAST_RANGE_TAU and FORECAST_RANGE_FLOOR were chosen the same way as RANGE_TAU and
#: RANGE_FLOOR, on a grid (tau 0-1.0, floor 0-1.2) leave one dataset out on the back-test's
#: 182 real curves, re-chosen for the log-space forecast (FORECAST_SPACE): (0.35, 0.5) on all
#: of them and in 8 of the 18 folds (the others 0.35-0.45 / 0.2-0.6); held out the range
#: holds the true size 77% / 82% of the time from 10% / 25% of the sizes, with a median
#: width upper / lower of 6.1 / 5.4 (benchmarks/README.md). Its sizes are nearer the truth,
#: so it needs a smaller floor than the range around inv_project. (The linear-space
#: forecast before had (0.5, 0.2).)
FORECAST_RANGE_KAPPA = 1.0
FORECAST_RANGE_TAU = 0.35
FORECAST_RANGE_FLOOR = 0.5
#: What :meth:`LearningCurve.size_needed` can centre its answer on.
SIZE_METHODS = ("trend", "forecast", "project")
#: :meth:`LearningCurve.trend` is the power law through the mean errors of the last
#: TREND_POINTS measured sizes (least squares of ln(error - asymptote) on ln n) ...
TREND_POINTS = 3
#: ... tending to TREND_ASYMPTOTE times the asymptote of :meth:`LearningCurve.forecast`: the
#: forecast's asymptote, fitted mostly to small sizes, is too pessimistic for sizes (on LCDB
#: 33% / 22% of the 95%-of-the-gain targets that the learners really reached lie beyond it,
#: from 10% / 25% of the sizes), and none at all (0) would call every target short of a
#: perfect score reachable. 3 points and 0.5 were chosen on the 182 curves of
#: ``benchmarks/bench_sufficiency.py --backtest`` and LCDB's 4,367
#: (``benchmarks/bench_sufficiency_lcdb.py``), where the asymptote costs about 2 points of
#: "within 2x" at most against none (benchmarks/README.md).
TREND_ASYMPTOTE = 0.5
#: The calibration of the default ``method="trend"``'s range (as RANGE_KAPPA, RANGE_TAU and
#: RANGE_FLOOR below, for the range centred on :meth:`LearningCurve.trend_size`, its bootstrap
#: the trend of the same resamples): chosen on a grid (kappa 0.5 or 1, tau 0-0.8, floor
#: 0-0.8) as the triple whose coverage is nearest 80% in the worst of four cells, from 10% and
#: from 25% of the sizes on the back-test's 182 curves and on LCDB's. There the 80% range holds
#: the true size 75% / 86% (182 curves) and 81% / 84% (LCDB) of the time; chosen on half of
#: LCDB's datasets alone, the other half's are held 77-80% / 82-83% (benchmarks/README.md). The
#: true sizes lie above the trend's more often than below it, and the more so the farther it
#: extrapolates, so tau is larger and the bootstrap spread counts less than around the
#: forecast.
TREND_RANGE_KAPPA = 0.5
TREND_RANGE_TAU = 0.6
TREND_RANGE_FLOOR = 0.1
#: :meth:`LearningCurve.forecast` weighs each measured point's squared residual by
#: ``(n / n_max)**FORECAST_POWER``: the largest sizes count most (set on the back-test's 32
#: image curves, confirmed on its 150 tabular ones, and chosen again with FORECAST_SPACE
#: leave one dataset out on all 182: benchmarks/README.md).
FORECAST_POWER = 2.0
#: Where :meth:`LearningCurve.forecast` measures its residuals: ``"log"``, of the log error
#: ``ln err - ln(c0 + c * n**-m)`` (the relative error of the error; a curve with every mean
#: error > 0), or ``"linear"``, of the error itself (the fit before 2026-12-01, and the
#: fallback of a curve with an error <= 0). Chosen with FORECAST_POWER leave one dataset out
#: on the back-test's 182 real curves (benchmarks/README.md).
FORECAST_SPACE = "log"
#: The spaces FORECAST_SPACE can name.
FORECAST_SPACES = ("log", "linear")
#: Exponents in the grid of the linear-space weighted fit behind :meth:`LearningCurve.forecast`.
_FORECAST_GRID = 512
#: The log-space fit's asymptotes ``c0 = min(err) * (1 - exp(-v))``: v on a uniform grid of
#: _FORECAST_V_GRID points from 0 (c0 = 0) to _FORECAST_V_MAX (c0 within 1e-6 of min(err)),
#: the start of the polish. 64: on the back-test's resampled curves 256 points give the same
#: minimum (losses within 1e-4 of each other, either way as often) in 2.5x the time.
_FORECAST_V_GRID = 64
_FORECAST_V_MAX = 14.0
#: Steps of the log-space fit's Levenberg-Marquardt polish, at most: for the forecast itself
#: until no step lowers the loss (5000 is never reached on the back-test's curves but in flat
#: valleys), for the resamples behind the range _FORECAST_BOOT_STEPS (their sizes are read
#: only as quantiles; on the back-test 98% of resampled fits stop before 200 steps).
_FORECAST_STEPS = 5000
_FORECAST_BOOT_STEPS = 200


# ----------------------------------------------------------------------------- curve fit


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class SizeEstimate(ResultBase):
    """Training-set sizes needed to reach targets, with a calibrated range.

    Made by :meth:`LearningCurve.size_needed`.

    Attributes
    ----------
    targets : ndarray of float64, shape (n_targets,)
        The metric values asked for.
    size : ndarray of int64, shape (n_targets,)
        The smallest size reaching each target: :meth:`LearningCurve.trend_size` (the power
        law through the last measured sizes) with ``method="trend"`` (the default),
        :meth:`LearningCurve.forecast_size` (the late-weighted power law) with
        ``method="forecast"``, :meth:`LearningCurve.inv_project`
        (the plain least-squares fit, DataEval's meaning) with ``method="project"``; -1 where
        that fit never does.
    lower, upper : ndarray of int64, shape (n_targets,)
        The range holding the true size with probability about `level` (calibrated on real
        curves, see :meth:`LearningCurve.size_needed`). ``upper`` is -1 when the range is
        open-ended (too many plausible curves never reach the target: "at least `lower`,
        maybe never"), which is always so for a target the fitted curve never reaches.
    reachable : ndarray of bool, shape (n_targets,)
        Whether the fitted curve reaches the target (``size >= 1``).
    level : float
        Nominal coverage of the range.
    model : str
        The curve family the sizes come from (``"pow3"`` with ``method="trend"`` or
        ``"forecast"``: both are power laws).
    method : str
        Which fit centred the answer: ``"trend"`` (:meth:`LearningCurve.trend`, the power law
        through the last measured sizes), ``"forecast"`` (:meth:`LearningCurve.forecast`, the power
        law with the largest measured sizes weighted most) or ``"project"``
        (:meth:`LearningCurve.project`, the unweighted fit).
    """

    targets: NDArray[np.float64]
    size: NDArray[np.int64]
    lower: NDArray[np.int64]
    upper: NDArray[np.int64]
    reachable: NDArray[np.bool_]
    level: float
    model: str
    method: str = "trend"

    def to_dataframe(self) -> pd.DataFrame:
        """One row per target: target, size, lower, upper, reachable."""
        return _frame(
            {
                "target": self.targets,
                "size": self.size,
                "lower": self.lower,
                "upper": self.upper,
                "reachable": self.reachable,
            }
        )


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class LearningCurve(ResultBase):
    """A fitted learning curve ``metric(n) = 1 - error(n)``.

    ``error(n) = c0 + c * phi(n)`` where ``phi`` is the family's shape (``model``):

    - ``"pow3"``: ``phi = n**(-m)``, DataEval's power law ``c * n**(-m) + c0``;
    - ``"pow4"``: ``phi = (n + d)**(-m)``, a power law flattened below ``n ~ d``;
    - ``"mmf4"``: ``phi = 1 / (1 + (n / d)**m)``, Morgan-Mercer-Flodin, a sigmoid in ``ln n``
      with its knee at ``n = d``.

    For a lower-is-better metric (a loss, an error rate) the curve is the metric itself,
    ``metric(n) = error(n)``. For a bounded metric projections are clipped to [0, 1] (so sizes
    below the measured range never give a negative accuracy). Made by
    :func:`fit_learning_curve`.

    Attributes
    ----------
    c : float
        Scale of the curve.
    m : float
        Exponent, >= 0: how fast the error falls with more data.
    c0 : float
        Asymptote of the error (``1 - c0`` is the best metric any size reaches, for a
        higher-is-better metric); in [0, 1] when ``bounded``.
    steps : ndarray of float64, shape (n_steps,)
        Measured training-set sizes, ascending.
    values : ndarray of float64, shape (runs, n_steps)
        Measured metric values (one row per run); the fit is to their mean over runs.
    higher_is_better : bool
        Whether larger metric values are better.
    bounded : bool
        Whether the metric lies in [0, 1] (then ``0 <= c0 <= 1``).
    loss : float
        Sum of squared residuals of the fit on the mean curve.
    r2 : float
        Coefficient of determination of the fit on the mean curve.
    bootstrap : ndarray of float64, shape (n_bootstrap, 3) or (n_bootstrap, 4), or None
        :attr:`params` fitted to the mean of runs resampled with replacement; gives
        :meth:`band` and the range of ``size_needed(method="project")``. None with a single
        run.
    forecast_bootstrap : ndarray of float64, shape (n_bootstrap, 3), or None
        The weighted fit of :meth:`forecast` on the same resamples, each row ``(c, m, c0)`` of
        ``error(n) = c0 + c * (n / n_1)**(-m)`` (``n_1`` the smallest measured size); gives
        the range of ``size_needed(method="forecast")``. None with a single run.
    trend_bootstrap : ndarray of float64, shape (n_bootstrap, 3), or None
        :meth:`trend` on the same resamples (each with its own forecast), rows
        ``(c, m, c0)`` as for :attr:`forecast_bootstrap`; gives :meth:`size_needed`'s range.
        None with a single run.
    model : str
        The family: ``"pow3"``, ``"pow4"`` or ``"mmf4"``.
    d : float
        The family's offset (``pow4``) or knee (``mmf4``); 0 for ``pow3``.
    candidates : dict of str to float
        With ``model="auto"``: each family's extrapolation score (mean squared error of the
        later measured points predicted from fits to the earlier ones, lower is better); the
        family with the lowest was chosen. Empty otherwise.
    alternatives : ndarray of float64, shape (n_candidates, 5)
        With ``model="auto"``: each candidate family's ``(code, c, m, c0, d)`` fitted to all
        points (code 0 pow3, 1 pow4, 2 mmf4); their spread widens :meth:`size_needed`'s
        range. Shape (0, 5) otherwise.
    """

    c: float
    m: float
    c0: float
    steps: NDArray[np.float64]
    values: NDArray[np.float64]
    higher_is_better: bool
    bounded: bool
    loss: float
    r2: float
    bootstrap: NDArray[np.float64] | None = None
    model: str = "pow3"
    d: float = 0.0
    candidates: dict[str, float] = dataclasses.field(default_factory=dict)
    alternatives: NDArray[np.float64] = dataclasses.field(default_factory=lambda: np.zeros((0, 5)))
    forecast_bootstrap: NDArray[np.float64] | None = None
    trend_bootstrap: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "higher_is_better", check_bool(self.higher_is_better, "higher_is_better")
        )
        object.__setattr__(self, "bounded", check_bool(self.bounded, "bounded"))
        if self.model not in _FAMILY:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}.")
        for name in ("c", "m", "c0", "d"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}.")
        if self.m < 0:
            raise ValueError(
                f"the exponent m must be >= 0, got {self.m}: with m < 0 the error would grow "
                "without bound as data is added. Fit the curve with fit_learning_curve (which "
                "keeps m >= 0), or describe a curve that gets worse with data by c < 0."
            )
        if self.d < 0 or (self.model == "mmf4" and self.d <= 0):
            raise ValueError(
                f"d must be {'> 0 (the knee size)' if self.model == 'mmf4' else '>= 0'} for "
                f"model={self.model!r}, got {self.d}."
            )
        ResultBase.__post_init__(self)

    @property
    def params(self) -> tuple[float, ...]:
        """``(c, m, c0)`` (DataEval's order) for ``pow3``; ``(c, m, c0, d)`` otherwise."""
        if self.model == "pow3":
            return (self.c, self.m, self.c0)
        return (self.c, self.m, self.c0, self.d)

    @property
    def mean(self) -> NDArray[np.float64]:
        """Mean measured value per step over runs, float64 (n_steps,)."""
        return np.asarray(self.values.mean(axis=0), dtype=np.float64)

    @property
    def _clip(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.bounded else (-math.inf, math.inf)

    def _metric(self, params: Any, sizes: NDArray[np.float64], fam: int | None = None) -> Any:
        from ._kernels.families import error_at

        p = [float(x) for x in params] + [0.0]
        code = _FAMILY[self.model] if fam is None else fam
        err = np.clip(error_at(code, p[0], p[1], p[2], p[3], np.log(sizes)), *self._clip)
        return 1.0 - err if self.higher_is_better else err

    def _warn_far(self, largest: float, what: str) -> None:
        top = float(self.steps[-1])
        if largest > FAR_EXTRAPOLATION * top:
            warnings.warn(
                f"{what} {largest:.6g} samples, {largest / top:.3g} times the largest measured "
                f"size ({top:.6g}); projections this far out are unreliable. Measure larger "
                "subsets, or silence this with warnings.filterwarnings('ignore', "
                "category=datagauge.ExtrapolationWarning).",
                ExtrapolationWarning,
                stacklevel=3,
            )

    def project(self, sizes: Any) -> NDArray[np.float64]:
        """Projected metric at the given training-set sizes.

        Parameters
        ----------
        sizes : int, float or array-like of shape (n_sizes,)
            Training-set sizes, >= 1.

        Returns
        -------
        ndarray of float64, shape (n_sizes,)
            Clipped to [0, 1] for a bounded metric (below the smallest measured size a curve
            fitted to the measured range can otherwise leave it).

        Warns
        -----
        ExtrapolationWarning
            When a size is more than ``FAR_EXTRAPOLATION`` (10) times the largest measured one.
        """
        n = check_sizes(sizes)
        self._warn_far(float(n.max()), "projecting to")
        out: NDArray[np.float64] = self._metric(self.params, n)
        return out

    def forecast(self, sizes: Any) -> NDArray[np.float64]:
        """Best estimate of the metric a model trained on `sizes` samples will reach.

        The power law ``error(n) = c0 + c * n**(-m)`` refitted to the mean curve by least
        squares of the log error, ``sum w (ln error_i - ln(c0 + c * n_i**(-m)))**2``, with
        weights ``w = (n / n_max)**FORECAST_POWER`` (``n_max`` the largest measured size), so
        the points nearest the sizes asked about count most and each point's error counts
        relative to its size; ``c > 0``, ``m >= 0``, ``0 <= c0 <= 1`` for a bounded metric
        (``c0 >= 0`` otherwise), so a curve that gets worse with data is forecast flat. A
        curve with a mean error <= 0 somewhere (a perfect score, a loss that crosses 0) has no
        log error, and gets the same weights on the error itself (the forecast before
        2026-12-01; ``FORECAST_SPACE = "linear"`` asks for it always).
        On 182 measured learning curves (18 datasets, tabular and image) cut at 10% and 25% of
        their largest size it predicts the accuracy at the largest size better than
        :meth:`project` (median abs error 0.0222 / 0.0127 against 0.0260 / 0.0191, and
        0.0246 / 0.0133 with the residuals of the error itself; benchmarks/README.md): the
        unweighted fit follows the small sizes and underestimates what the learner reaches.
        On LCDB's 4,367 curves (20 scikit-learn learners on 248 datasets, never used to
        design it) it is off by 0.0153 / 0.0087, against 0.0195 / 0.0133 for :meth:`project`
        and 0.0309 / 0.0178 for "the last measured value".
        :meth:`forecast_size` inverts it; :meth:`size_needed` answers with :meth:`trend`, whose
        sizes back-test closer to the true ones.
        :meth:`project`, :meth:`inv_project` and :meth:`band` keep the unweighted fit
        (DataEval's meaning). Whatever :attr:`model` is, the forecast is the power law.

        Takes, returns and warns as :meth:`project` does: `sizes` (n_sizes,) >= 1 in, float64
        (n_sizes,) out (clipped to [0, 1] for a bounded metric), an ExtrapolationWarning beyond
        ``FAR_EXTRAPOLATION`` (10) times the largest measured size.
        """
        n = check_sizes(sizes)
        self._warn_far(float(n.max()), "forecasting at")
        return self._forecast_at(self._forecast_params(), n)

    @property
    def forecast_limit(self) -> float:
        """The metric the :meth:`forecast` tends to with unlimited data: ``1 - c0`` of its fit
        where higher is better (accuracy), ``c0`` otherwise; for a forecast that does not
        improve with data (``c <= 0`` or ``m = 0``: flat) its one value. :meth:`forecast_size`
        (and :meth:`size_needed`) never reach a target beyond it (-1)."""
        c, m, c0 = self._forecast_params()
        err = c0 if (c > 0.0 and m > 0.0) else c0 + c  # (n / n_1)**-m -> 0, or 1 when m = 0
        err = float(np.clip(err, *self._clip))
        return 1.0 - err if self.higher_is_better else err

    def trend(self, sizes: Any) -> NDArray[np.float64]:
        """The metric along the local trend that :meth:`size_needed` reads its sizes from.

        The power law ``error(n) = a + c * n**(-m)`` through the mean errors of the last
        ``TREND_POINTS`` (3) measured sizes (least squares of ``ln(error - a)`` on ``ln n``),
        with its asymptote ``a`` at ``TREND_ASYMPTOTE`` (half) of :meth:`forecast`'s. Where
        those errors do not fall with n, or one is at or below ``a`` (a perfect score, a loss
        below 0), there is no such trend and it is the :meth:`forecast`.

        Why a second curve: on real learning curves (the 182 of the back-test and the 4,367
        of LCDB, cut at 10% and 25% of their largest size) the sizes of this trend fall
        within 2x of the true ones more often than :meth:`forecast_size`'s (half of the gain
        still to come: 65% / 80% against 62% / 68%, and 66% / 76% against 55% / 69% on LCDB;
        benchmarks/README.md). The forecast's asymptote, fitted mostly to the smaller
        sizes, is too pessimistic for sizes: it calls up to a third of the targets the
        learners really reached unreachable. :meth:`forecast` stays the better estimate of
        the metric at a given size.

        Takes, returns and warns as :meth:`forecast`.
        """
        n = check_sizes(sizes)
        self._warn_far(float(n.max()), "reading the trend at")
        return self._forecast_at(self._trend_params(), n)

    def trend_size(self, targets: Any) -> NDArray[np.int64]:
        """Smallest training-set size whose :meth:`trend` reaches each target.

        As :meth:`forecast_size` (same targets, -1 and warnings), on :meth:`trend`:
        :meth:`size_needed` gives the same sizes with a range.
        """
        t = check_targets(targets, bounded=self.bounded)
        out = self._pow3_sizes(t, self._trend_params())
        if (out > 0).any():
            self._warn_far(float(out.max()), "reaching a target needs")
            self._warn_below(out, stacklevel=3)
        return out

    def _trend_params(self) -> tuple[float, float, float]:
        """(c, m, c0) of :meth:`trend`, ``error = c0 + c * (n / n_1)**(-m)``."""
        mean = self.mean
        err = 1.0 - mean if self.higher_is_better else mean
        fc = np.array([self._forecast_params()])
        c, m, a = _trend_fit_many(self.steps, err, fc)[0]
        return float(c), float(m), float(a)

    def _forecast_params(self) -> tuple[float, float, float]:
        """(c, m, c0) of the forecast's weighted fit, ``error = c0 + c * (n / n_1)**(-m)``."""
        mean = self.mean
        err = 1.0 - mean if self.higher_is_better else mean
        c, m, c0 = _forecast_fit_many(self.steps, err, *self._clip)[0]
        return float(c), float(m), float(c0)

    def _forecast_at(
        self, params: tuple[float, float, float], n: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        c, m, c0 = params
        out = np.clip(c0 + c * (n / self.steps.min()) ** -m, *self._clip)
        return np.asarray(1.0 - out if self.higher_is_better else out, dtype=np.float64)

    def forecast_size(self, targets: Any) -> NDArray[np.int64]:
        """Smallest training-set size whose :meth:`forecast` reaches each target.

        :meth:`inv_project` (same targets, same -1 and warnings) on the late-weighted fit of
        :meth:`forecast`: on the back-test's 182 curves its sizes fall within 2x of the true
        ones more often than :meth:`inv_project`'s (benchmarks/README.md).
        :meth:`size_needed` gives the same sizes with a range.

        Returns
        -------
        ndarray of int64, shape (n_targets,)
            The smallest ``n >= 1`` with ``forecast(n)`` reaching the target; -1 where it never
            does (beyond the asymptote or ``MAX_SIZE``; for a forecast that does not improve
            with data, a target it misses at the smallest measured size).
        """
        t = check_targets(targets, bounded=self.bounded)
        out = self._pow3_sizes(t, self._forecast_params())
        if (out > 0).any():
            self._warn_far(float(out.max()), "reaching a target needs")
            self._warn_below(out, stacklevel=3)
        return out

    def _pow3_sizes(
        self, t: NDArray[np.float64], params: tuple[float, float, float]
    ) -> NDArray[np.int64]:
        """Smallest sizes reaching checked targets on the curve
        ``error = c0 + c * (n / n_1)**(-m)`` of `params` ``(c, m, c0)`` (the forecast's or the
        trend's), without warnings; -1 where it never does."""
        c, m, c0 = params
        n1 = float(self.steps.min())

        def reaches(n: float, goal: float) -> bool:
            v = float(self._forecast_at(params, np.array([float(n)]))[0])
            return bool(v >= goal if self.higher_is_better else v <= goal)

        out = np.full(t.size, -1, dtype=np.int64)
        for i, goal in enumerate(t.tolist()):
            if not (c > 0.0 and m > 0.0):  # flat, or worse with more data
                out[i] = 1 if reaches(n1, goal) else -1
                continue
            if reaches(1.0, goal):
                out[i] = 1
                continue
            e = 1.0 - goal if self.higher_is_better else goal  # the error to get down to
            ln_n = float(_log_size(c, m, c0, e, n1))
            if ln_n > math.log(MAX_SIZE):
                continue  # at or beyond the asymptote (inf), or too far
            guess = min(max(1, math.ceil(math.exp(ln_n))), MAX_SIZE)
            out[i] = _first_reaching(functools.partial(reaches, goal=goal), guess)
        return out

    def _pow3_boot_sizes(
        self, t: NDArray[np.float64], fb: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Size reaching each target under each row ``(c, m, c0)`` of `fb`
        (:attr:`forecast_bootstrap` or :attr:`trend_bootstrap`), float64 (n_bootstrap,
        n_targets), +inf where a fit never does. In closed form, not rounded to an integer
        (only the spread of their logarithms is used)."""
        c, m, c0 = (fb[:, j : j + 1] for j in range(3))
        lo, hi = self._clip
        n1 = float(self.steps.min())
        e = 1.0 - t[None, :] if self.higher_is_better else t[None, :]
        first = np.clip(c0 + c, lo, hi)  # the error at n_1
        falls = (c > 0.0) & (m > 0.0)
        ln_n = np.maximum(_log_size(c, m, c0, e, n1), 0.0)
        # a forecast that does not improve: the target is met from the start or never
        ln_n = np.where(falls, ln_n, np.where(first <= e, 0.0, np.inf))
        ln_n[ln_n > math.log(MAX_SIZE)] = np.inf
        return np.asarray(np.exp(ln_n), dtype=np.float64)

    def band(
        self, sizes: Any, level: float = 0.9
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Confidence band of the projection: percentiles of the bootstrap fits.

        Parameters
        ----------
        sizes : int, float or array-like of shape (n_sizes,)
            Training-set sizes, >= 1.
        level : float in (0, 1)
            Coverage of the band (0.9: the 5th to the 95th percentile).

        Returns
        -------
        lower, upper : ndarray of float64, shape (n_sizes,)

        Raises
        ------
        ValueError
            Without a bootstrap (the curve was fitted to a single run).
        """
        level = check_unit_fraction(level, "level")
        boot = self._require_bootstrap("a confidence band")
        n = check_sizes(sizes)
        self._warn_far(float(n.max()), "projecting to")
        curves = np.stack([self._metric(p, n) for p in boot])
        tail = 50.0 * (1.0 - level)
        lower = np.percentile(curves, tail, axis=0)
        upper = np.percentile(curves, 100.0 - tail, axis=0)
        return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)

    def _require_bootstrap(
        self, what: str, forecast: bool = False, trend: bool = False
    ) -> NDArray[np.float64]:
        """:attr:`bootstrap` (:attr:`forecast_bootstrap` with `forecast`,
        :attr:`trend_bootstrap` with `trend`), or a ValueError saying how to get one."""
        boot = (
            self.trend_bootstrap
            if trend
            else self.forecast_bootstrap
            if forecast
            else self.bootstrap
        )
        if boot is None and self.bootstrap is not None:
            which = "trend" if trend else "forecast"
            raise ValueError(
                f"this curve has no bootstrap of its {which}, so it has no {what} around the "
                f"{which}; fit it with fit_learning_curve (which keeps one), or ask for the "
                "range around inv_project with method='project'."
            )
        if boot is None:
            raise ValueError(
                f"this curve was fitted to a single run, so it has no {what}; fit the "
                "per-run values of shape (runs, n_steps) with runs >= 2 (and n_bootstrap > 0)."
            )
        return boot

    def _sizes(
        self, params: Any, targets: NDArray[np.float64], fam: int | None = None
    ) -> NDArray[np.int64]:
        """Smallest sizes reaching `targets` under `params` (no warnings); -1 if never."""
        from ._kernels.families import smallest_size

        p = [float(x) for x in params] + [0.0]
        code = _FAMILY[self.model] if fam is None else fam
        lo, hi = self._clip
        falls = p[0] > 0 and p[1] > 0  # the error falls with n
        out = np.asarray(
            smallest_size(
                code, p[0], p[1], p[2], p[3], targets, self.higher_is_better, MAX_SIZE, lo, hi
            ),
            dtype=np.int64,
        )
        if not falls:
            # More data never helps: a target the curve misses at the smallest measured size
            # is out of reach (the curve "reaches" it only below the measured range).
            first = self._metric(params, self.steps[:1], code)[0]
            met = first >= targets if self.higher_is_better else first <= targets
            out = np.where(met, out, -1)
        return out

    def inv_project(self, targets: Any) -> NDArray[np.int64]:
        """Smallest training-set size whose projected metric reaches each target.

        Parameters
        ----------
        targets : float or array-like of shape (n_targets,)
            Metric values to reach (at least, for a higher-is-better metric; at most, for a
            lower-is-better one). In [0, 1] for a bounded metric.

        Returns
        -------
        ndarray of int64, shape (n_targets,)
            The smallest integer ``n >= 1`` with ``project(n)`` reaching the target, so
            ``project(n - 1)`` does not (unless n is 1). -1 where the curve never reaches the
            target: beyond its asymptote, beyond ``MAX_SIZE`` (2**46) samples, or, for a curve
            that does not improve with data (``c <= 0`` or ``m == 0``), any target it misses
            at the smallest measured size. The other targets of the call keep their sizes.
            Above 2**46 the float64 ln n that the projection uses cannot always tell n from
            n - 1, so the "smallest" promise holds only up to there.

        Warns
        -----
        ExtrapolationWarning
            When a size is more than 10 times the largest measured one, or below the smallest
            measured one (the target is reached before the measured range starts, where the
            curve is an extrapolation too).
        """
        t = check_targets(targets, bounded=self.bounded)
        out = self._sizes(self.params, t)
        if (out > 0).any():
            self._warn_far(float(out.max()), "reaching a target needs")
            self._warn_below(out, stacklevel=3)
        return out

    def _warn_below(self, sizes: NDArray[np.int64], stacklevel: int) -> None:
        first = float(self.steps[0])
        low = sizes[(sizes > 0) & (sizes < first)]
        if low.size:
            warnings.warn(
                f"a target is reached at {int(low.min())} samples, below the smallest measured "
                f"size ({first:.6g}): the curve is extrapolated backwards there, and the "
                "measured data already reach the target. Ask for a higher target.",
                ExtrapolationWarning,
                stacklevel=stacklevel + 1,
            )

    def size_needed(
        self, targets: Any, *, level: float = 0.8, method: str = "trend"
    ) -> SizeEstimate:
        """Training-set sizes needed to reach targets, with a calibrated range.

        The size is :meth:`trend_size`'s (``method="trend"``, the default: the power law through
        the last measured sizes, whose sizes back-test closest to the true ones),
        :meth:`forecast_size`'s (``method="forecast"``: the power law fitted with the largest
        measured sizes weighted most, which forecasts the metric best) or
        :meth:`inv_project`'s (``method="project"``: DataEval's meaning, the unweighted fit).
        The range is ``exp(ln size +- z * s)`` with ``z`` the normal quantile of `level` and
        ``s**2 = (kappa * s_boot)**2 + s_family**2 + (tau * x)**2 + floor**2``:

        - ``s_boot``: the spread (half the 16th-84th percentile distance) of ln size over the
          bootstrap fits of the same kind (:attr:`trend_bootstrap`, :attr:`forecast_bootstrap`
          or :attr:`bootstrap`), that is over resampled runs;
        - ``s_family``: the standard deviation of ln size over the candidate families (with
          ``model="auto"``), so a choice the families disagree on gets a wider range;
        - ``x = max(0, ln(size / largest measured size))``: how far the answer extrapolates;
        - ``floor``: a spread every range has (the curve's family is itself a guess, even close
          to the measured sizes).

        ``(kappa, tau, floor)`` are ``TREND_RANGE_KAPPA``, ``TREND_RANGE_TAU`` and
        ``TREND_RANGE_FLOOR`` for the trend, ``FORECAST_RANGE_KAPPA``, ``FORECAST_RANGE_TAU``
        and ``FORECAST_RANGE_FLOOR`` for the forecast, ``RANGE_KAPPA``, ``RANGE_TAU`` and
        ``RANGE_FLOOR`` for the projection: the last two pairs (tau, floor) chosen leave one
        dataset out on the 182 real curves of ``benchmarks/bench_sufficiency.py --backtest``,
        the trend's triple on those and LCDB's 4,367 together; the ranges hold the true size
        about 80% of the time from 10% and from 25% of the sizes (75-86%;
        benchmarks/README.md). When more than ``(1 - level) / 2`` of the bootstrap fits
        never reach a target, its range is open-ended (``upper = -1``). A target the fit never
        reaches (``size = -1``) still gets the lower end, "at least this many, maybe never":
        the ``(1 - level) / 2`` quantile of the bootstrap fits' sizes (the largest size any of
        them needs when fewer than that share reach the target), widened for extrapolation as
        above, and never below the largest measured size plus one (which it is when no fit
        reaches the target). A wider `level` never gives a larger lower end.

        Parameters
        ----------
        targets : float or array-like of shape (n_targets,)
            Metric values to reach, as for :meth:`inv_project`.
        level : float in (0, 1), default 0.8
            Nominal coverage of the range.
        method : {"trend", "forecast", "project"}, default "trend"
            The fit the answer is centred on (recorded in :attr:`SizeEstimate.method`).

        Returns
        -------
        SizeEstimate

        Raises
        ------
        ValueError
            Without a bootstrap (a single run: the spread of the measurements is unknown), or
            for an unknown `method`.

        Warns
        -----
        ExtrapolationWarning
            As :meth:`inv_project`.
        """
        from statistics import NormalDist

        method = check_choice(method, "method", SIZE_METHODS)
        level = check_unit_fraction(level, "level")
        t = check_targets(targets, bounded=self.bounded)
        if method == "trend":
            tb = self._require_bootstrap("size range", trend=True)
            size = self._pow3_sizes(t, self._trend_params())
            bs = self._pow3_boot_sizes(t, tb)
            calib = (TREND_RANGE_KAPPA, TREND_RANGE_TAU, TREND_RANGE_FLOOR)
            model = "pow3"
        elif method == "forecast":
            fb = self._require_bootstrap("size range", forecast=True)
            size = self._pow3_sizes(t, self._forecast_params())
            bs = self._pow3_boot_sizes(t, fb)
            calib = (FORECAST_RANGE_KAPPA, FORECAST_RANGE_TAU, FORECAST_RANGE_FLOOR)
            model = "pow3"
        else:
            boot = self._require_bootstrap("size range")
            size = self._sizes(self.params, t)
            bs = self._boot_sizes(boot, t)
            calib = (RANGE_KAPPA, RANGE_TAU, RANGE_FLOOR)
            model = self.model
        if (size > 0).any():
            self._warn_far(float(size.max()), "reaching a target needs")
            self._warn_below(size, stacklevel=2)
        fam_sizes = [
            self._sizes(row[1:], t, int(row[0])).astype(np.float64) for row in self.alternatives
        ]
        lower, upper = _size_range(
            size,
            bs,
            fam_sizes,
            float(self.steps[-1]),
            NormalDist().inv_cdf(0.5 + level / 2.0),
            (1.0 - level) / 2.0,
            *calib,
        )
        lower, upper = _monotone_range(t, lower, upper, self.higher_is_better)
        return SizeEstimate(
            targets=t,
            size=size,
            lower=lower,
            upper=upper,
            reachable=size > 0,
            level=float(level),
            model=model,
            method=method,
        )

    def _boot_sizes(self, boot: NDArray[np.float64], t: NDArray[np.float64]) -> NDArray[np.float64]:
        """Smallest size reaching each target under each bootstrap fit of :attr:`params`,
        float64 (n_bootstrap, n_targets), +inf where a fit never does."""
        from ._kernels.families import sizes_many

        lo_c, hi_c = self._clip
        bp = np.zeros((boot.shape[0], 4))
        bp[:, : boot.shape[1]] = boot
        bs = np.asarray(
            sizes_many(_FAMILY[self.model], bp, t, self.higher_is_better, MAX_SIZE, lo_c, hi_c),
            dtype=np.float64,
        )
        bs[bs < 1] = np.inf
        return bs

    def to_dataframe(self) -> pd.DataFrame:
        """One row per measured step: step, mean, std (over runs), fitted."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtrapolationWarning)
            fitted = self.project(self.steps)
        return _frame(
            {
                "step": self.steps,
                "mean": self.mean,
                "std": self.values.std(axis=0),
                "fitted": fitted,
            }
        )


def _size_range(
    size: NDArray[np.int64],
    bs: NDArray[np.float64],
    fam_sizes: list[NDArray[np.float64]],
    top: float,
    z: float,
    tail: float,
    kappa: float,
    tau: float,
    floor: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(lower, upper) of :meth:`LearningCurve.size_needed`'s range around `size` (n_targets,),
    from the bootstrap fits' sizes `bs` (n_bootstrap, n_targets; +inf for never), the candidate
    families' sizes (each (n_targets,), -1 for never), the largest measured size `top`, the
    normal quantile `z` and tail share `tail` of the level, and the calibration
    ``(kappa, tau, floor)``; -1 for an end that is not given."""
    n_t = size.size
    lower = np.full(n_t, -1, dtype=np.int64)
    upper = np.full(n_t, -1, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        q16, q84 = np.percentile(np.log(bs), [16.0, 84.0], axis=0)
    open_share = np.mean(~np.isfinite(bs), axis=0)
    ranked = np.sort(bs, axis=0)  # never (+inf) last
    for i in range(n_t):
        fam = np.array([f[i] for f in fam_sizes if f[i] > 0])
        if size[i] > 0:
            centre = math.log(float(size[i]))
        elif fam.size:
            centre = float(np.mean(np.log(fam)))
        else:
            lower[i] = _never_lower(ranked[:, i], tail, z, top, tau, floor)
            continue
        s_boot = (q84[i] - q16[i]) / 2.0 if np.isfinite(q84[i]) else 0.0
        s_fam = float(np.std(np.log(fam))) if fam.size > 1 else 0.0
        x = max(0.0, centre - math.log(top))
        s = math.sqrt((kappa * s_boot) ** 2 + s_fam**2 + (tau * x) ** 2 + floor**2)
        lower[i] = max(1, math.floor(math.exp(centre - z * s)))
        if size[i] > 0 and open_share[i] <= tail:
            upper[i] = min(MAX_SIZE, math.ceil(math.exp(centre + z * s)))
    return lower, upper


def _monotone_range(
    t: NDArray[np.float64],
    lower: NDArray[np.int64],
    upper: NDArray[np.int64],
    higher_is_better: bool,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The ranges of several targets made consistent: a harder target (higher where higher is
    better) needs at least what an easier one needs, so neither end of its range lies below
    the easier target's (an open upper end, -1, stays open for every harder target). Each
    range is computed on its own (``_size_range``), and near the asymptote the ends of a
    reachable target (around a huge size) and of an unreachable one ("at least this, maybe
    never", from the resamples) can cross."""
    order = np.argsort(t if higher_is_better else -t, kind="stable")
    lo = np.maximum.accumulate(lower[order])
    hi = np.where(upper[order] < 0, np.iinfo(np.int64).max, upper[order])
    hi = np.maximum.accumulate(hi)
    out_lo, out_hi = np.empty_like(lower), np.empty_like(upper)
    out_lo[order] = lo
    out_hi[order] = np.where(hi == np.iinfo(np.int64).max, -1, hi)
    return out_lo, out_hi


def _never_lower(
    ranked: NDArray[np.float64], tail: float, z: float, top: float, tau: float, floor: float
) -> int:
    """The lower end of the range of a target the fit never reaches ("at least this, maybe
    never"): the `tail` quantile of the bootstrap fits' sizes (`ranked`, ascending, +inf for a
    fit that never reaches it), widened for extrapolation as every range is (`tau`, `floor`),
    and above the largest measured size `top` (the measured curve does not reach the target
    there). Where fewer than `tail` of the fits reach it, the largest size any of them needs
    stands for the quantile (so a wider level never gives a larger lower end); where none
    does: just above `top`."""
    finite = ranked[np.isfinite(ranked)]
    floor_size = math.floor(top) + 1
    if not finite.size:
        return floor_size
    q = float(finite[min(finite.size - 1, math.floor(tail * ranked.size))])
    x = max(0.0, math.log(q) - math.log(top))
    s = math.hypot(tau * x, floor)
    return min(MAX_SIZE, max(floor_size, math.floor(math.exp(math.log(q) - z * s))))


def fit_learning_curve(
    steps: Any,
    values: Any,
    *,
    model: str = DEFAULT_MODEL,
    higher_is_better: bool = True,
    bounded: bool = True,
    n_bootstrap: int = N_BOOTSTRAP,
    random_state: int | np.random.Generator | None = 0,
    name: str = "the metric",
) -> LearningCurve:
    """Fit a learning curve ``metric(n) = 1 - error(n)`` to measured points by least squares.

    Parameters
    ----------
    steps : array-like of int, shape (n_steps,)
        Training-set sizes, >= 1, at least 3 distinct (5 for ``model="auto"`` to compare
        families; with fewer it fits ``"pow3"``).
    values : array-like of float, shape (n_steps,) or (runs, n_steps)
        The metric measured at each size; with several runs the mean is fitted and the runs
        give a bootstrap confidence band and the range of :meth:`LearningCurve.size_needed`.
    model : {"pow3", "auto", "pow4", "mmf4"}
        The curve family (see :class:`LearningCurve`). ``"pow3"`` (the default: it
        back-tests best on 182 real curves, ahead of "auto", pow4 and mmf4, in every
        leave-one-dataset-out fold; see benchmarks/README.md) is DataEval's power law
        ``error = c * n**(-m) + c0`` with DataEval's least-squares minimum (``m >= 0``,
        ``0 <= c0 <= 1`` for a bounded metric, ``c`` free), found by a deterministic grid over
        ``m`` with the linear parameters solved exactly, refined and polished (Numba).
        ``"auto"`` fits every family to the earlier points, scores how well each predicts the
        later measured points, and keeps the best one: extrapolation-aware cross-validation,
        not in-sample fit.
    higher_is_better : bool
        True for accuracy-like metrics (the error ``1 - metric`` is fitted); False for losses
        and error rates (the metric itself is fitted).
    bounded : bool
        True for metrics in [0, 1] (the asymptote ``c0`` is then kept in [0, 1]).
    n_bootstrap : int
        Resamples of the runs for the band and the size range (0 for none; ignored with a
        single run); at most ``MAX_BOOTSTRAP`` (100,000).
    random_state : int, Generator or None
        Seed of the bootstrap.
    name : str
        The metric's name, used in warnings.

    Returns
    -------
    LearningCurve

    Raises
    ------
    ValueError
        Fewer than 3 distinct steps, mismatched shapes, non-finite values, values outside
        [0, 1] when ``bounded``, an unknown `model`, or `n_bootstrap` above
        ``MAX_BOOTSTRAP``.
    TypeError
        `higher_is_better` or `bounded` is not True or False (a string such as ``"False"``
        is refused, not read as true).

    Warns
    -----
    PoorFitWarning
        When the fit's R^2 on the mean curve is below ``MIN_R2`` (0.8).

    Notes
    -----
    Exponent range: pow3 searches every ``m`` with ``m * ln(n_2 / n_1) <= 40`` (``n_1 < n_2``
    the two smallest sizes). Beyond it every other point's term is below ``e**-40`` of the
    smallest's, so the curve is the same step from the first point to the rest: nothing is
    cut off (earlier versions capped ``m`` at ``min(40 / ln(n_max / n_1), 20)``, which left
    step-like curves far from their least-squares fit). pow4 searches
    ``m * ln((n_max + d) / (n_1 + d)) <= 40`` and mmf4 slopes ``m`` up to 12 in ``ln n``.
    """
    curve = _fit_curve(steps, values, higher_is_better, bounded, n_bootstrap, random_state, model)
    _warn_poor_fit(curve, name, stacklevel=3)
    return curve


def _fit_family(
    code: int, logn: NDArray[np.float64], err: NDArray[np.float64], lo: float, hi: float
) -> NDArray[np.float64]:
    """(c, m, c0, d, loss) of one family."""
    from ._kernels.families import fit_family

    return np.asarray(fit_family(code, logn, np.ascontiguousarray(err), lo, hi))


def _choose_family(
    logn: NDArray[np.float64], err: NDArray[np.float64], lo: float, hi: float
) -> tuple[str, dict[str, float]]:
    """The family that best predicts the later points from the earlier ones, and all scores."""
    from ._kernels.families import error_at

    k = logn.size
    splits = sorted({max(4, math.ceil(0.5 * k)), max(4, math.ceil(0.7 * k))})
    splits = [j for j in splits if j < k]
    scores: dict[str, float] = {}
    for name in MODELS:
        code = _FAMILY[name]
        total = 0.0
        for j in splits:
            p = _fit_family(code, logn[:j], err[:j], lo, hi)
            pred = np.clip(error_at(code, p[0], p[1], p[2], p[3], logn[j:]), lo, hi)
            total += float(np.mean((pred - err[j:]) ** 2))
        scores[name] = total / max(len(splits), 1)
    best = min(MODELS, key=lambda nm: (scores[nm], MODELS.index(nm)))
    return best, scores


def _fit_curve(
    steps: Any,
    values: Any,
    higher_is_better: bool,
    bounded: bool,
    n_bootstrap: int,
    random_state: int | np.random.Generator | None,
    model: str = DEFAULT_MODEL,
) -> LearningCurve:
    """:func:`fit_learning_curve` without its warning (callers that cache fits warn each time)."""
    from ._kernels.families import fit_family_many

    if model not in (*MODELS, "auto"):
        raise ValueError(
            f"model must be one of {(*MODELS, 'auto')}, got {model!r}; 'auto' chooses the "
            "family that best predicts the later measured points from the earlier ones."
        )
    higher_is_better = check_bool(higher_is_better, "higher_is_better")
    bounded = check_bool(bounded, "bounded")
    s, v = check_learning_curve(steps, values, bounded=bounded)
    n_bootstrap = check_int(n_bootstrap, "n_bootstrap", minimum=0)
    if n_bootstrap > MAX_BOOTSTRAP:
        raise ValueError(
            f"n_bootstrap={n_bootstrap:,} is more than the {MAX_BOOTSTRAP:,} resamples "
            "supported: each is a full curve fit, and all are held in memory at once. A few "
            f"hundred give a stable band (the default is {N_BOOTSTRAP}); pass n_bootstrap <= "
            f"{MAX_BOOTSTRAP}."
        )
    random_state = check_random_state(random_state)
    order = np.argsort(s, kind="stable")
    s, v = np.ascontiguousarray(s[order]), np.ascontiguousarray(v[:, order])
    lo, hi = (0.0, 1.0) if bounded else (-math.inf, math.inf)
    logn = np.log(s)
    mean = v.mean(axis=0)
    err = np.ascontiguousarray(1.0 - mean if higher_is_better else mean)
    candidates: dict[str, float] = {}
    alternatives = np.zeros((0, 5))
    chosen = model
    fits: dict[str, NDArray[np.float64]] = {}
    if model == "auto":
        if np.unique(s).size >= 5:
            chosen, candidates = _choose_family(logn, err, lo, hi)
            for name in MODELS:
                fits[name] = _fit_family(_FAMILY[name], logn, err, lo, hi)
            alternatives = np.array([[_FAMILY[nm], *fits[nm][:4]] for nm in MODELS])
        else:
            chosen = "pow3"
    code = _FAMILY[chosen]
    p = fits[chosen] if chosen in fits else _fit_family(code, logn, err, lo, hi)
    c, m, c0, d, loss = (float(x) for x in p)
    sst = float(np.sum((mean - mean.mean()) ** 2))
    r2 = 1.0 - loss / sst if sst > 0 else (1.0 if loss <= 1e-24 else 0.0)
    boot = fboot = tboot = None
    runs = v.shape[0]
    if runs >= 2 and n_bootstrap > 0:
        rng = np.random.default_rng(random_state)
        pick = rng.integers(0, runs, size=(n_bootstrap, runs))
        means = v[pick].mean(axis=1)
        errs = np.ascontiguousarray(1.0 - means if higher_is_better else means)
        width = 3 if chosen == "pow3" else 4
        boot = np.ascontiguousarray(fit_family_many(code, logn, errs, lo, hi, m, d)[:, :width])
        # the forecast's weighted fit on the same resamples, and the trend on each (the
        # ranges of size_needed)
        fboot = _forecast_fit_many(s, errs, lo, hi, _FORECAST_BOOT_STEPS)
        tboot = _trend_fit_many(s, errs, fboot)
    return LearningCurve(
        c=c,
        m=m,
        c0=c0,
        steps=s,
        values=v,
        higher_is_better=higher_is_better,
        bounded=bounded,
        loss=loss,
        r2=r2,
        bootstrap=boot,
        model=chosen,
        d=d,
        candidates=candidates,
        alternatives=alternatives,
        forecast_bootstrap=fboot,
        trend_bootstrap=tboot,
    )


def _first_reaching(reaches: Callable[[int], bool], guess: int) -> int:
    """Smallest ``n`` in [1, MAX_SIZE] with ``reaches(n)`` for a `reaches` false at 1 and
    monotone in n, -1 if none: a galloping search from `guess` (the closed form, off by the
    rounding of the fitted curve's arithmetic, or by far where the curve is flat to within
    that rounding), then bisection, so O(log MAX_SIZE) evaluations either way."""
    step = 1
    if reaches(guess):
        hi = guess  # reaches; step down until a size that does not
        lo = max(1, hi - step)
        while lo > 1 and reaches(lo):
            hi, step = lo, 2 * step
            lo = max(1, hi - step)
    else:
        lo = guess  # does not reach; step up until a size that does
        hi = min(lo + step, MAX_SIZE)
        while not reaches(hi):
            if hi >= MAX_SIZE:
                return -1
            lo, step = hi, 2 * step
            hi = min(lo + step, MAX_SIZE)
    while hi - lo > 1:  # lo does not reach (or is 1, which does not), hi reaches
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return hi


def _log_size(c: Any, m: Any, c0: Any, e: Any, n1: float) -> NDArray[np.float64]:
    """ln of the size at which the error ``c0 + c * (n / n1)**(-m)`` falls to `e` (the pow3
    curve inverted in closed form, unrounded; arrays broadcast), +inf where it never does:
    ``e <= c0`` (at or beyond the asymptote), or a curve that does not fall (``c <= 0`` or
    ``m <= 0``)."""
    c, m, c0, e = (np.asarray(v, dtype=np.float64) for v in (c, m, c0, e))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ln_n = math.log(n1) + np.log(c / (e - c0)) / m
        return np.asarray(np.where((c > 0.0) & (m > 0.0) & (e > c0), ln_n, np.inf))


def _trend_fit_many(
    steps: NDArray[np.float64],
    errs: NDArray[np.float64],
    forecasts: NDArray[np.float64],
    asymptote: float | None = None,
) -> NDArray[np.float64]:
    """:meth:`LearningCurve.trend` of every row of `errs` (n_fits, n_steps), or of one curve
    (n_steps,), each with its forecast's ``(c, m, c0)`` in `forecasts` (n_fits, 3): float64
    (n_fits, 3), rows ``(c, m, c0)`` of ``err = c0 + c * (n / n_1)**(-m)``, ``c0`` being
    `asymptote` (TREND_ASYMPTOTE when None; other values for the back-tests' what-ifs) times
    the forecast's. A row whose last errors do not fall, or are not all above that ``c0``,
    keeps its forecast."""
    rows = np.atleast_2d(np.asarray(errs, dtype=np.float64))
    fc = np.atleast_2d(np.asarray(forecasts, dtype=np.float64))
    k = min(TREND_POINTS, steps.size)
    x = np.log(steps[-k:] / steps[0])
    last = rows[:, -k:]
    base = (TREND_ASYMPTOTE if asymptote is None else asymptote) * fc[:, 2]
    above = last - base[:, None]
    ok = np.all(above > 0.0, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(np.where(ok[:, None], above, 1.0))
    xc = x - x.mean()
    sxx = float(xc @ xc)
    slope = (y - y.mean(axis=1, keepdims=True)) @ xc / sxx if sxx > 0 else np.zeros(len(rows))
    falls = ok & (slope < 0.0)
    c = np.exp(y.mean(axis=1) - slope * x.mean())
    out = np.column_stack([c, -slope, base])
    return np.where(falls[:, None], out, fc)


def _forecast_fit_many(
    steps: NDArray[np.float64],
    errs: NDArray[np.float64],
    lo: float,
    hi: float,
    max_steps: int = _FORECAST_STEPS,
) -> NDArray[np.float64]:
    """The fit of :meth:`LearningCurve.forecast` to every row of `errs` (n_fits, n_steps), or
    to one curve (n_steps,): float64 (n_fits, 3), each row ``(c, m, c0)`` of
    ``err = c0 + c * (n / n_1)**(-m)``. Weights ``(n / n_max)**FORECAST_POWER``; residuals in
    FORECAST_SPACE (:func:`_log_pow3_many`, or :func:`_weighted_pow3_many` for ``"linear"`` and
    for the rows with an error <= 0); the log-space polish takes at most `max_steps`."""
    space = check_choice(FORECAST_SPACE, "FORECAST_SPACE", FORECAST_SPACES)
    rows = np.ascontiguousarray(np.atleast_2d(errs), dtype=np.float64)
    weights = steps**FORECAST_POWER
    if space == "linear":
        return _weighted_pow3_many(steps, rows, weights, lo, hi)
    positive = np.all(rows > 0.0, axis=1)
    out = np.empty((rows.shape[0], 3))
    if positive.any():
        out[positive] = _log_pow3_many(steps, rows[positive], weights, hi, max_steps)
    if not positive.all():
        out[~positive] = _weighted_pow3_many(steps, rows[~positive], weights, lo, hi)
    return out


def _log_pow3_many(
    steps: NDArray[np.float64],
    errs: NDArray[np.float64],
    weights: NDArray[np.float64],
    hi: float = 1.0,
    max_steps: int = _FORECAST_STEPS,
) -> NDArray[np.float64]:
    """Weighted least squares of the log error: ``(c, m, c0)`` minimising
    ``sum w (ln err - ln(c0 + c * (n / n_1)**(-m)))**2`` over ``c > 0``, ``m >= 0`` (up to
    ``m * ln(n_2 / n_1) = 40``, as the linear fit) and ``0 <= c0 <= hi`` for every row of
    `errs` (n_fits, n_steps), each entry > 0; float64 (n_fits, 3). Started from the best
    asymptote below the smallest error (for each, the excess ``err - c0`` a line in log-log,
    solved exactly; a grid and a golden-section search), then polished by projected
    Levenberg-Marquardt (Numba, ``datagauge._kernels.curves.log_fit_many``; at most
    `max_steps` steps). Weights are normalised (only their ratios matter). Deterministic."""
    from ._kernels.curves import log_fit_many

    x_log, w, m_max, rows = _weighted_inputs(steps, errs, weights)
    grid = np.linspace(0.0, _FORECAST_V_MAX, _FORECAST_V_GRID)
    out = log_fit_many(x_log, rows, w, grid, hi, m_max, max_steps)
    return np.asarray(out, dtype=np.float64)


def _weighted_inputs(
    steps: NDArray[np.float64], errs: NDArray[np.float64], weights: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, NDArray[np.float64]]:
    """What the weighted fits' kernels take: ``ln(n / n_1)``, the weights normalised to a
    largest of 1, the largest exponent (``m * ln(n_2 / n_1) = 40``) and the rows of `errs`
    as a C-contiguous float64 (n_fits, n_steps) array."""
    x_log = np.log(steps / steps.min())
    w = np.ascontiguousarray(weights / weights.max(), dtype=np.float64)
    m_max = float(40.0 / np.unique(x_log)[1])
    rows = np.ascontiguousarray(np.atleast_2d(errs), dtype=np.float64)
    return x_log, w, m_max, rows


def _weighted_pow3_many(
    steps: NDArray[np.float64],
    errs: NDArray[np.float64],
    weights: NDArray[np.float64],
    lo: float,
    hi: float,
) -> NDArray[np.float64]:
    """:func:`_weighted_pow3` of every row of `errs` (n_fits, n_steps), one Numba call:
    float64 (n_fits, 3), each row ``(c, m, c0)``."""
    from ._kernels.curves import weighted_fit_many

    x_log, w, m_max, rows = _weighted_inputs(steps, errs, weights)
    grid = np.concatenate(([0.0], np.geomspace(m_max * 1e-7, m_max, _FORECAST_GRID)))
    return np.asarray(weighted_fit_many(x_log, rows, w, lo, hi, grid), dtype=np.float64)


def _weighted_pow3(
    steps: NDArray[np.float64],
    err: NDArray[np.float64],
    weights: NDArray[np.float64],
    lo: float,
    hi: float,
) -> tuple[float, float, float]:
    """(c, m, c0) of ``err(n) = c0 + c * (n / n_1)**(-m)`` (``n_1`` the smallest step) at the
    weighted least-squares minimum, ``m >= 0``, ``lo <= c0 <= hi``: a grid over ``m`` (up to
    ``m * ln(n_2 / n_1) = 40``, as :func:`fit_learning_curve`), with ``(c, c0)`` exact for each
    ``m``, refined by golden-section search in ``ln m`` around the best grid point (Numba,
    ``datagauge._kernels.curves.weighted_fit_many``). Weights are normalised (only their ratios
    matter). Deterministic; the bootstrap of the forecast runs the same code on each resample."""
    c, m, c0 = _weighted_pow3_many(steps, err, weights, lo, hi)[0]
    return float(c), float(m), float(c0)


def _warn_poor_fit(curve: LearningCurve, name: str, *, stacklevel: int) -> None:
    if curve.r2 < MIN_R2:
        warnings.warn(
            f"the {curve.model} curve fits {name} poorly (R^2 = {curve.r2:.3f} on "
            f"{curve.steps.size} points); its projections are unreliable. Check the measured "
            "points (to_dataframe()), add runs to average out noise, or measure more steps.",
            PoorFitWarning,
            stacklevel=stacklevel,
        )


# ----------------------------------------------------------------------------- strategies


@runtime_checkable
class TrainingStrategy(Protocol):
    """Trains a model in place on ``dataset[indices]``."""

    def train(self, model: Any, dataset: Any, indices: NDArray[np.int64]) -> None:
        """Train `model` on the samples ``indices`` (int64, shape (n,)) of `dataset`."""
        ...


@runtime_checkable
class EvaluationStrategy(Protocol):
    """Evaluates a trained model: named metrics, each a finite float."""

    def evaluate(self, model: Any, dataset: Any) -> Mapping[str, float]:
        """Metrics of `model` on `dataset`, e.g. ``{"accuracy": 0.93}``."""
        ...


@runtime_checkable
class ResetStrategy(Protocol):
    """Returns a model in its initial, untrained state."""

    def reset(self, model: Any) -> Any:
        """A fresh, untrained model (for instance a deep copy of an untrained template)."""
        ...


def geometric_steps(n_samples: int, substeps: int) -> NDArray[np.int64]:
    """DataEval's schedule: ``substeps`` sizes geometric from 1% of n_samples to all of it.

    ``np.geomspace(0.01 * n_samples, n_samples, substeps)`` truncated to integers as DataEval
    does, but never below 1, and without repeats (small datasets repeat sizes).

    Returns
    -------
    ndarray of int64, shape (<= substeps,), ascending
    """
    n = check_int(n_samples, "n_samples", minimum=1)
    k = check_int(substeps, "substeps", minimum=1)
    if k > n:
        raise ValueError(
            f"substeps={k} is larger than the training set ({n} samples): there are not {k} "
            f"distinct subset sizes. Use substeps <= {n}, or pass explicit steps."
        )
    raw = np.geomspace(0.01 * n, n, k) if k > 1 else np.array([float(n)])
    return np.unique(np.clip(raw.astype(np.int64), 1, n))


@dataclass(frozen=True)
class _Config:
    """Settings of a :class:`Sufficiency` analysis (``Sufficiency.Config``).

    Attributes
    ----------
    training_strategy : TrainingStrategy
        ``train(model, dataset, indices)`` trains `model` in place on ``dataset[indices]``.
    evaluation_strategy : EvaluationStrategy
        ``evaluate(model, dataset) -> dict[str, float]``: any number of named metrics.
    reset_strategy : ResetStrategy, callable or None
        ``reset(model) -> model`` (or a plain callable ``model -> model``) giving an untrained
        model; None deep-copies the model as it was when the analysis was created.
    runs : int
        Independent runs, each with its own shuffle of the training set.
    substeps : int
        Sizes per run, geometric from 1% of the training set to all of it (DataEval's
        spacing); ignored when `steps` is given.
    steps : sequence of int or None
        Explicit training-set sizes instead of the geometric schedule.
    lower_is_better : sequence of str
        Names of metrics where smaller is better (losses, error rates); kept as a tuple.
    unit_interval : bool
        Whether the metrics lie in [0, 1] (accuracy, precision, ...); bounds the asymptote.
    reset_each_step : bool
        Reset the model before every step (default) rather than only at the start of a run,
        training one model further at each step as DataEval does.
    replace : bool
        Draw each run's samples with replacement (DataEval's behaviour); default without.
    """

    training_strategy: TrainingStrategy
    evaluation_strategy: EvaluationStrategy
    reset_strategy: ResetStrategy | Callable[[Any], Any] | None = None
    runs: int = 5
    substeps: int = 10
    steps: Sequence[int] | None = None
    lower_is_better: Sequence[str] = ()
    unit_interval: bool = True
    reset_each_step: bool = True
    replace: bool = False

    def __post_init__(self) -> None:
        if not callable(getattr(self.training_strategy, "train", None)):
            raise TypeError(
                "training_strategy needs a method train(model, dataset, indices); got "
                f"{type(self.training_strategy).__name__}."
            )
        if not callable(getattr(self.evaluation_strategy, "evaluate", None)):
            raise TypeError(
                "evaluation_strategy needs a method evaluate(model, dataset) returning a dict "
                f"of metric name -> float; got {type(self.evaluation_strategy).__name__}."
            )
        r = self.reset_strategy
        if r is not None and not callable(getattr(r, "reset", None)) and not callable(r):
            raise TypeError(
                "reset_strategy must have a method reset(model) -> model, be a callable "
                f"model -> model, or be None (deep copy); got {type(r).__name__}."
            )
        check_int(self.runs, "runs", minimum=1)
        check_int(self.substeps, "substeps", minimum=1)
        for flag in ("unit_interval", "reset_each_step", "replace"):
            object.__setattr__(self, flag, check_bool(getattr(self, flag), flag))
        if isinstance(self.lower_is_better, str):
            object.__setattr__(self, "lower_is_better", (self.lower_is_better,))
        object.__setattr__(self, "lower_is_better", tuple(self.lower_is_better))
        if self.steps is not None:
            arr = np.asarray(self.steps)
            if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(
                    f"steps must be a non-empty 1-D list of integers (training-set sizes), got "
                    f"{self.steps!r}."
                )
            if (arr < 1).any():
                raise ValueError(f"steps are training-set sizes and must be >= 1, got {arr.min()}.")


def _reset(reset: Any, template: Any) -> Any:
    if reset is None:
        return copy.deepcopy(template)
    model = reset.reset(template) if callable(getattr(reset, "reset", None)) else reset(template)
    if model is None:
        raise TypeError(
            "reset_strategy returned None; it must return the untrained model to train "
            "(e.g. `return copy.deepcopy(model)`)."
        )
    return model


def _read_metrics(raw: Any, where: str) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise TypeError(
            f"evaluation_strategy.evaluate returned {type(raw).__name__} {where}; it must return "
            'a dict of metric name -> float, e.g. {"accuracy": 0.93}.'
        )
    if not raw:
        raise ValueError(f"evaluation_strategy.evaluate returned no metrics {where}.")
    out: dict[str, float] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise TypeError(f"metric names must be strings, got {key!r} {where}.")
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"metric {key!r} is {type(value).__name__} {where}; each metric must be a "
                "single number (use float(x) or tensor.item())."
            ) from exc
        if not math.isfinite(number):
            raise ValueError(
                f"metric {key!r} is {number} {where}; metrics must be finite. Check the "
                "evaluation (an empty class, a division by zero, a diverged model)."
            )
        out[key] = number
    return out


def _one_run(
    template: Any,
    config: _Config,
    train_ds: Any,
    test_ds: Any,
    steps: NDArray[np.int64],
    seed: np.random.SeedSequence,
    run: int,
    tick: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Train and evaluate one run at every step; metric name -> value per step."""
    n = len(train_ds)
    rng = np.random.default_rng(seed)
    if config.replace:
        order = rng.integers(0, n, size=n, dtype=np.int64)
    else:
        order = rng.permutation(n).astype(np.int64)
    values: dict[str, list[float]] = {}
    model = None
    for j, size in enumerate(steps):
        if model is None or config.reset_each_step:
            model = _reset(config.reset_strategy, template)
        config.training_strategy.train(model, train_ds, order[: int(size)])
        where = f"at step {int(size)} of run {run}"
        metrics = _read_metrics(config.evaluation_strategy.evaluate(model, test_ds), where)
        if j == 0:
            values = {k: [v] for k, v in metrics.items()}
        elif set(metrics) != set(values):
            raise ValueError(
                f"evaluation_strategy.evaluate returned metrics {sorted(metrics)} {where}, "
                f"but {sorted(values)} before; it must return the same names every time."
            )
        else:
            for k, v in metrics.items():
                values[k].append(v)
        if tick is not None:
            tick()
    return values


def _pooled_run(threads: int, *args: Any) -> dict[str, list[float]]:
    """:func:`_one_run` in a worker process, on its share of the CPUs (thread counts set)."""
    with thread_limits(threads, torch=True):
        return _one_run(*args)


def _dataset_len(ds: Any, name: str) -> int:
    try:
        n = len(ds)
    except TypeError as exc:
        raise TypeError(
            f"{name} must have a length (len({name})) and be indexable; got {type(ds).__name__}."
        ) from exc
    if n < 1:
        raise ValueError(f"{name} is empty; it needs at least one sample.")
    return int(n)


def _unpicklable(objects: Iterable[Any]) -> str | None:
    """Why these objects cannot go to another process, or None when they can."""
    import pickle

    for obj in objects:
        cls = type(obj)
        if cls.__module__ == "__main__" and not hasattr(sys.modules["__main__"], "__file__"):
            return f"{cls.__name__} is defined interactively (in __main__)"
        try:
            pickle.dumps(obj)
        except Exception as exc:  # any pickling failure means: run serially
            return f"{cls.__name__} cannot be pickled ({exc})"
    return None


def _unguarded_main() -> str | None:
    """Why worker processes would run the caller's program again, or None when they would not.

    A "spawn" worker starts by importing the main module (the script, or the module run with
    ``python -m``) under another name: its top level runs again in every worker, and a call to
    ``evaluate`` there starts workers from the worker, which multiprocessing refuses (the
    worker dies). The usual cure is the ``if __name__ == "__main__":`` guard; a main module
    whose source has none at its top level (or cannot be read) counts as unguarded. An
    interactive session has no main file: nothing runs again.
    """
    import ast

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    path = getattr(spec, "origin", None) or getattr(main, "__file__", None)
    if main is None or path is None:
        return None
    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return f"the main program ({path}) could not be read to find its __main__ guard"
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [node.test.left, *node.test.comparators]
            if {ast.dump(v) for v in names} == {
                ast.dump(ast.Name("__name__", ast.Load())),
                ast.dump(ast.Constant("__main__")),
            }:
                return None
    return (
        f"the main program ({path}) has no 'if __name__ == \"__main__\":' guard, so every "
        "worker process would run it again"
    )


class Sufficiency:
    """How much training data a model needs: train on growing subsets, fit, project.

    Parameters
    ----------
    model : object
        The untrained model (a torch module, a scikit-learn estimator, anything the
        strategies understand). It is deep-copied once, so later changes to it do not leak in.
    config : Sufficiency.Config
        Strategies and schedule.

    Examples
    --------
    >>> cfg = Sufficiency.Config(Train(), Evaluate(), runs=3, substeps=8)  # doctest: +SKIP
    >>> result = Sufficiency(model, cfg).evaluate(train_ds, test_ds)  # doctest: +SKIP
    >>> result.project([10_000, 100_000])  # doctest: +SKIP
    >>> result.inv_project(0.95)  # doctest: +SKIP
    """

    Config = _Config

    def __init__(self, model: Any, config: _Config) -> None:
        if not isinstance(config, _Config):
            raise TypeError(
                f"config must be a Sufficiency.Config, got {type(config).__name__}; build one "
                "with Sufficiency.Config(training_strategy, evaluation_strategy, ...)."
            )
        if model is None:
            raise TypeError("model is None; pass the untrained model to analyse.")
        self.model = copy.deepcopy(model)
        self.config = config

    def _steps(self, n: int) -> NDArray[np.int64]:
        cfg = self.config
        if cfg.steps is None:
            steps = geometric_steps(n, cfg.substeps)
            if steps.size < cfg.substeps:
                warnings.warn(
                    f"the training set ({n} samples) gives only {steps.size} distinct sizes for "
                    f"substeps={cfg.substeps} (sizes are whole samples, at least 1); measuring "
                    f"{steps.tolist()}. Use fewer substeps or a larger training set.",
                    DatagaugeWarning,
                    stacklevel=3,
                )
            return steps
        steps = np.unique(np.asarray(cfg.steps, dtype=np.int64))
        if steps.max() > n:
            raise ValueError(
                f"steps go up to {steps.max()} but the training set has {n} samples; use "
                f"steps <= {n}."
            )
        return steps

    def evaluate(
        self,
        train_ds: Any,
        test_ds: Any,
        *,
        n_jobs: int | None = None,
        progress: ProgressArg = True,
        random_state: int | np.random.Generator | None = None,
    ) -> SufficiencyResult:
        """Train at every size of every run, evaluate, and collect the metrics.

        Each run shuffles the training set with its own seed, then for each size ``s``
        resets the model, trains it on the first ``s`` shuffled samples and evaluates it on
        `test_ds`.

        Parameters
        ----------
        train_ds, test_ds : sized, indexable datasets
            Anything with ``len()`` that the strategies can index (arrays, torch datasets).
        n_jobs : int or None
            CPUs to use; None (the default) or -1 means every available CPU, as everywhere
            in datagauge. With two or more runs and CPUs, the runs go to
            ``min(n_jobs, runs)`` worker processes (spawned) when the model, strategies and
            datasets pickle, each worker with ``n_jobs // workers`` threads (torch, Numba,
            FAISS); otherwise the runs go serially with `n_jobs` threads. When they do not
            pickle (e.g. classes defined in a notebook, or a lambda), the runs go serially:
            silently for the default None, with a DatagaugeWarning saying why when `n_jobs`
            was given. The same holds for a script without an ``if __name__ == "__main__":``
            guard (spawned workers would run it again). A worker that dies leaves the runs not
            yet returned to this process, with a DatagaugeWarning (the same result).
            Each worker holds its own copy of the model and the datasets (a model
            on a GPU sits there once per worker); ``n_jobs=1`` runs everything in this
            process on one thread. Thread counts are restored afterwards, also when a run
            raises. The results do not depend on `n_jobs`.
        progress : bool or callable
            Show a progress bar (tqdm if installed, else a counter on stderr), or call
            ``progress(done, total)`` as steps finish (after every step when the runs go
            serially, after every run when they go to worker processes).
        random_state : int, numpy Generator or None
            Seed of the shuffles; a Generator or None draws one (from the Generator, or
            fresh entropy), which the result records (``result.random_state``), so every
            analysis can be repeated exactly.

        Returns
        -------
        SufficiencyResult
        """
        if not callable(progress):
            check_bool(progress, "progress")
        n = _dataset_len(train_ds, "train_ds")
        _dataset_len(test_ds, "test_ds")
        steps = self._steps(n)
        jobs = resolve_n_jobs(n_jobs)
        rs = check_random_state(random_state)
        if rs is None:
            entropy = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
        elif isinstance(rs, np.random.Generator):
            entropy = int(rs.integers(0, 2**63 - 1))
        else:
            entropy = rs
        seeds = np.random.SeedSequence(entropy).spawn(self.config.runs)
        cfg = self.config
        workers = min(jobs, cfg.runs)
        if workers > 1:
            unguarded = _unguarded_main()
            reason = unguarded or _unpicklable(
                (self.model, cfg.training_strategy, cfg.evaluation_strategy)
                + ((cfg.reset_strategy,) if cfg.reset_strategy is not None else ())
                + (train_ds, test_ds)
            )
            if reason is not None:
                if n_jobs is not None:
                    cure = (
                        "Put the program's work under that guard"
                        if unguarded
                        else "Define the strategies at module level (importable)"
                    )
                    warnings.warn(
                        f"running the {cfg.runs} runs serially, not in {workers} processes: "
                        f"{reason}. {cure} to run them in parallel.",
                        DatagaugeWarning,
                        stacklevel=2,
                    )
                workers = 1
        bar = Progress(progress, cfg.runs * steps.size, desc="sufficiency", unit="step")
        runs: list[dict[str, list[float]]] = []
        try:
            if workers > 1:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor
                from concurrent.futures.process import BrokenProcessPool

                threads = max(1, jobs // workers)
                ctx = multiprocessing.get_context("spawn")
                try:
                    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                        futures = [
                            ex.submit(
                                _pooled_run, threads, self.model, cfg, train_ds, test_ds, steps,
                                s, r,
                            )
                            for r, s in enumerate(seeds)
                        ]  # fmt: skip
                        for fut in futures:
                            runs.append(fut.result())
                            bar.update(steps.size)
                except BrokenProcessPool as exc:
                    # a worker died (out of memory, killed, or it could not start): each run
                    # has its own seed, so the runs not yet returned give the same result here
                    warnings.warn(
                        f"a worker process died ({exc}); running the {cfg.runs - len(runs)} "
                        "runs left serially in this process (the same result).",
                        DatagaugeWarning,
                        stacklevel=2,
                    )
                    bar.note("a worker process died: running serially")
                    workers = 1
            if workers == 1:
                with thread_limits(jobs, torch=True):
                    for r, s in list(enumerate(seeds))[len(runs) :]:
                        runs.append(
                            _one_run(self.model, cfg, train_ds, test_ds, steps, s, r, bar.update)
                        )
        finally:
            bar.close()
        names = list(runs[0])
        for r, values in enumerate(runs[1:], start=1):
            if set(values) != set(names):
                raise ValueError(
                    f"run {r} returned metrics {sorted(values)} but run 0 {sorted(names)}; "
                    "evaluate must return the same names every time."
                )
        measures = {k: np.array([run[k] for run in runs], dtype=np.float64) for k in names}
        unknown = [k for k in cfg.lower_is_better if k not in measures]
        if unknown:
            warnings.warn(
                f"lower_is_better names {unknown} are not among the measured metrics "
                f"{names}; they are ignored.",
                DatagaugeWarning,
                stacklevel=2,
            )
        return SufficiencyResult(
            steps=steps,
            measures=measures,
            lower_is_better=tuple(k for k in cfg.lower_is_better if k in measures),
            unit_interval=cfg.unit_interval,
            n_train=n,
            random_state=entropy,
        )


_Config.__name__ = "Config"
_Config.__qualname__ = "Sufficiency.Config"  # pickles by this path, which resolves to _Config

# ----------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class SufficiencyResult(ResultBase):
    """Result of :meth:`Sufficiency.evaluate`: every run's metrics at every size.

    Attributes
    ----------
    steps : ndarray of int64, shape (n_steps,)
        Training-set sizes, ascending.
    measures : dict of str to ndarray of float64, shape (runs, n_steps)
        Each metric's raw values, one row per run.
    lower_is_better : tuple of str
        Metrics where smaller is better.
    unit_interval : bool
        Whether the metrics lie in [0, 1].
    n_train : int or None
        Size of the training set measured.
    random_state : int or None
        Seed that reproduces the shuffles.

    Notes
    -----
    Each metric's learning curve is fitted (with its bootstrap) on first use by
    :meth:`fit`, :meth:`project`, :meth:`inv_project` or :meth:`plot`, and kept with the
    result for that ``random_state``; later calls reuse it, so they give identical answers
    without refitting. The kept curves are not data: :meth:`to_dict` and equality ignore
    them.
    """

    steps: NDArray[np.int64]
    measures: dict[str, NDArray[np.float64]]
    lower_is_better: tuple[str, ...] = ()
    unit_interval: bool = True
    n_train: int | None = None
    random_state: int | None = None
    # (metric, bootstrap seed, model) -> fitted curve; filled by _curves()
    _fits: dict[tuple[str, int, str], LearningCurve] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        steps = np.asarray(self.steps)
        if steps.ndim != 1 or not np.issubdtype(steps.dtype, np.integer):
            raise TypeError(f"steps must be a 1-D integer array, got {steps.dtype} {steps.shape}.")
        if not isinstance(self.measures, Mapping) or not self.measures:
            raise TypeError("measures must be a non-empty dict of metric name -> (runs, n_steps).")
        frozen: dict[str, NDArray[np.float64]] = {}
        for name, raw in self.measures.items():
            arr = np.array(raw, dtype=np.float64, ndmin=2)
            if arr.ndim != 2 or arr.shape[1] != steps.size:
                raise ValueError(
                    f"measures[{name!r}] has shape {arr.shape}; it must be (runs, {steps.size})."
                )
            arr.flags.writeable = False
            frozen[name] = arr
        unknown = [k for k in self.lower_is_better if k not in frozen]
        if unknown:
            raise ValueError(f"lower_is_better names {unknown} are not metrics of {list(frozen)}.")
        object.__setattr__(self, "steps", steps.astype(np.int64))
        object.__setattr__(self, "measures", frozen)
        object.__setattr__(self, "lower_is_better", tuple(self.lower_is_better))
        object.__setattr__(self, "unit_interval", check_bool(self.unit_interval, "unit_interval"))
        ResultBase.__post_init__(self)

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{k!r}: <{v.shape[0]} runs x {v.shape[1]} steps>" for k, v in self.measures.items()
        )
        return (
            f"SufficiencyResult(steps={self.steps.tolist()}, measures={{{shapes}}}, "
            f"lower_is_better={self.lower_is_better!r}, unit_interval={self.unit_interval}, "
            f"n_train={self.n_train}, random_state={self.random_state})"
        )

    @property
    def metrics(self) -> list[str]:
        """Metric names, in measurement order."""
        return list(self.measures)

    @property
    def runs(self) -> int:
        """Number of runs."""
        return int(next(iter(self.measures.values())).shape[0])

    @property
    def mean(self) -> dict[str, NDArray[np.float64]]:
        """Each metric's mean over runs, float64 (n_steps,)."""
        return {k: np.asarray(v.mean(axis=0), dtype=np.float64) for k, v in self.measures.items()}

    def _names(self, metrics: str | Sequence[str] | None) -> list[str]:
        if metrics is None:
            return self.metrics
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        for k in names:
            if k not in self.measures:
                raise ValueError(f"unknown metric {k!r}; the measured metrics are {self.metrics}.")
        return names

    def fit(
        self,
        metrics: str | Sequence[str] | None = None,
        *,
        random_state: int | np.random.Generator | None = 0,
        model: str = DEFAULT_MODEL,
    ) -> dict[str, LearningCurve]:
        """A fitted learning curve per metric (see :func:`fit_learning_curve`).

        Parameters
        ----------
        metrics : str, sequence of str or None
            Which metrics (default all).
        model : {"auto", "pow3", "pow4", "mmf4"}
            The curve family (see :func:`fit_learning_curve`); :meth:`project`,
            :meth:`inv_project`, :meth:`size_needed` and :meth:`plot` use the default.
        random_state : int, numpy Generator or None
            Seed of the bootstrap band. With an int (default 0, the seed :meth:`project`,
            :meth:`inv_project` and :meth:`plot` use) each curve is fitted once and kept;
            a Generator or None asks for fresh draws, so those curves are refitted.

        Returns
        -------
        dict of str to LearningCurve

        Warns
        -----
        PoorFitWarning
            On every call, for each metric whose fit has R^2 below ``MIN_R2`` (0.8).
        """
        return self._curves(self._names(metrics), random_state, model)

    def _curves(
        self,
        names: list[str],
        random_state: int | np.random.Generator | None = 0,
        model: str = DEFAULT_MODEL,
    ) -> dict[str, LearningCurve]:
        """Each named metric's curve, fitted on first use for an int seed and kept."""
        rs = check_random_state(random_state)
        out: dict[str, LearningCurve] = {}
        for k in names:
            key = (k, rs, model) if isinstance(rs, int) else None
            curve = self._fits.get(key) if key is not None else None
            if curve is None:
                curve = _fit_curve(
                    self.steps,
                    self.measures[k],
                    k not in self.lower_is_better,
                    self.unit_interval,
                    N_BOOTSTRAP,
                    rs,
                    model,
                )
                if key is not None:
                    self._fits[key] = curve
            _warn_poor_fit(curve, repr(k), stacklevel=4)  # user -> fit/project -> here -> warn
            out[k] = curve
        return out

    def project(
        self, sizes: Any, *, metrics: str | Sequence[str] | None = None, level: float = 0.9
    ) -> pd.DataFrame:
        """Projected metrics at larger training-set sizes (a pandas DataFrame).

        Columns: ``size``, then per metric its projection and, with two or more runs,
        ``<metric>_lower`` / ``<metric>_upper``, the bootstrap band of coverage `level`.
        """
        n = check_sizes(sizes)
        columns: dict[str, Any] = {"size": n}
        for k, curve in self._curves(self._names(metrics)).items():
            columns[k] = curve.project(n)
            if curve.bootstrap is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ExtrapolationWarning)  # warned just above
                    columns[f"{k}_lower"], columns[f"{k}_upper"] = curve.band(n, level)
        return _frame(columns)

    def forecast(self, sizes: Any, *, metrics: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Best estimate of each metric at larger training-set sizes (a pandas DataFrame).

        Columns: ``size``, then per metric :meth:`LearningCurve.forecast` (the power law fitted
        with the largest sizes weighted most: it back-tests closer to the metric reached than
        :meth:`project`'s DataEval fit).
        """
        n = check_sizes(sizes)
        columns: dict[str, Any] = {"size": n}
        for k, curve in self._curves(self._names(metrics)).items():
            columns[k] = curve.forecast(n)
        return _frame(columns)

    def inv_project(self, targets: Any) -> pd.DataFrame:
        """Training-set sizes needed to reach target metric values (a pandas DataFrame).

        Parameters
        ----------
        targets : float, array-like, or dict of metric name to float or array-like
            The same targets for every metric, or each metric's own.

        Returns
        -------
        pandas.DataFrame
            Column ``target`` (sorted), then one nullable-integer column per metric: the
            smallest size reaching the target, -1 when the curve never does, and missing
            where a metric was not given that target.
        """
        if isinstance(targets, Mapping):
            asked = {k: check_targets(v, bounded=self.unit_interval) for k, v in targets.items()}
            self._names(list(asked))
        else:
            t = check_targets(targets, bounded=self.unit_interval)
            asked = dict.fromkeys(self.metrics, t)
        rows = np.unique(np.concatenate(list(asked.values())))
        columns: dict[str, Any] = {"target": rows}
        curves = self._curves(self._names(list(asked)))
        for k, t in asked.items():
            sizes = curves[k].inv_project(t)
            lookup = dict(zip(t.tolist(), sizes.tolist(), strict=True))
            columns[k] = [lookup.get(x) for x in rows.tolist()]
        frame = _frame(columns)
        for k in asked:
            frame[k] = frame[k].astype("Int64")
        return frame

    def size_needed(
        self,
        targets: Any,
        *,
        metrics: str | Sequence[str] | None = None,
        level: float = 0.8,
        method: str = "trend",
    ) -> pd.DataFrame:
        """Training-set sizes needed for target metric values, with calibrated ranges.

        See :meth:`LearningCurve.size_needed` (`level`, `method`). With a single run there is
        no range (``lower``/``upper`` are -1).

        Returns
        -------
        pandas.DataFrame
            One row per metric and target: ``metric``, ``target``, ``size``, ``lower``,
            ``upper``, ``reachable``, ``model`` (the family the sizes come from), ``method``
            (the fit that centred them).
        """
        method = check_choice(method, "method", SIZE_METHODS)
        columns = ("metric", "target", "size", "lower", "upper", "reachable", "model", "method")
        rows: dict[str, list[Any]] = {k: [] for k in columns}
        for k, curve in self._curves(self._names(metrics)).items():
            t = check_targets(targets, bounded=self.unit_interval)
            if curve.bootstrap is None:
                size = {
                    "trend": curve.trend_size,
                    "forecast": curve.forecast_size,
                    "project": curve.inv_project,
                }[method](t)
                est = SizeEstimate(
                    targets=t,
                    size=size,
                    lower=np.full(t.size, -1, dtype=np.int64),
                    upper=np.full(t.size, -1, dtype=np.int64),
                    reachable=size > 0,
                    level=float(level),
                    model=curve.model if method == "project" else "pow3",
                    method=method,
                )
            else:
                est = curve.size_needed(t, level=level, method=method)
            for i in range(t.size):
                rows["metric"].append(k)
                rows["target"].append(float(t[i]))
                rows["size"].append(int(est.size[i]))
                rows["lower"].append(int(est.lower[i]))
                rows["upper"].append(int(est.upper[i]))
                rows["reachable"].append(bool(est.reachable[i]))
                rows["model"].append(est.model)
                rows["method"].append(est.method)
        return _frame(rows)

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python objects (the kept curves left out)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init}

    def to_dataframe(self) -> pd.DataFrame:
        """One row per run and step: run, step, then one column per metric."""
        runs, steps = self.runs, self.steps.size
        columns: dict[str, Any] = {
            "run": np.repeat(np.arange(runs), steps),
            "step": np.tile(self.steps, runs),
        }
        for k, v in self.measures.items():
            columns[k] = v.reshape(-1)
        return _frame(columns)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SufficiencyResult:
        """Rebuild a result from :meth:`to_dict` output (e.g. after ``json.loads``)."""
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(
                f"unknown keys {sorted(unknown)}; expected a subset of {sorted(fields)}."
            )
        return cls(
            steps=np.asarray(data["steps"], dtype=np.int64),
            measures={k: np.asarray(v, dtype=np.float64) for k, v in data["measures"].items()},
            lower_is_better=tuple(data.get("lower_is_better", ())),
            unit_interval=data.get("unit_interval", True),
            n_train=data.get("n_train"),
            random_state=data.get("random_state"),
        )

    def plot(
        self,
        metrics: str | Sequence[str] | None = None,
        *,
        projection: Any = None,
        level: float = 0.9,
    ) -> Figure:
        """Measured points with their run spread, the fitted curve, its band and projections.

        Parameters
        ----------
        metrics : str, sequence of str or None
            Which metrics (default all), one panel each.
        projection : int or array-like of int, optional
            Sizes to project to; the curve is drawn out to the largest and they are marked.
        level : float
            Coverage of the shaded band (with two or more runs).

        Returns
        -------
        matplotlib.figure.Figure
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "plot() needs matplotlib; install it with `pip install matplotlib` "
                "(or `pip install 'datagauge[report]'`)."
            ) from exc
        names = self._names(metrics)
        proj = None if projection is None else check_sizes(projection, "projection")
        curves = self._curves(names)
        fig = Figure(figsize=(5.5 * len(names), 4.0), layout="constrained")
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        top = float(self.steps.max()) if proj is None else max(float(proj.max()), self.steps.max())
        xs = np.geomspace(float(self.steps.min()), top, 200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtrapolationWarning)
            for ax, k in zip(axes, names, strict=True):
                curve, raw = curves[k], self.measures[k]
                for row in raw:
                    ax.scatter(self.steps, row, s=10, color="0.6", alpha=0.6, zorder=1)
                ax.errorbar(
                    self.steps,
                    raw.mean(axis=0),
                    yerr=raw.std(axis=0),
                    fmt="o",
                    color="C0",
                    capsize=3,
                    label=f"measured (mean ± std, {raw.shape[0]} runs)",
                    zorder=3,
                )
                ax.plot(xs, curve.project(xs), color="C1", label=f"fitted {curve.model}", zorder=2)
                if curve.bootstrap is not None:
                    lower, upper = curve.band(xs, level)
                    ax.fill_between(
                        xs, lower, upper, color="C1", alpha=0.2, label=f"{level:.0%} band"
                    )
                if proj is not None:
                    ax.plot(proj, curve.project(proj), "x", color="C3", ms=8, label="projection")
                ax.set_xscale("log")
                ax.set_xlabel("training-set size")
                ax.set_ylabel(k)
                ax.set_title(f"{k}: {curve.model}, R² = {curve.r2:.3f}")
                ax.legend(fontsize="small")
        return fig
