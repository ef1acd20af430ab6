"""Statistics over seeds: t-intervals, Wilcoxon signed-rank, Holm, the area under the curve."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.integrate import trapezoid

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """Mean of n values with its sample standard deviation and a t-based confidence interval."""

    mean: float
    std: float
    n: int
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def contains(self, value: float) -> bool | None:
        """Whether `value` lies in the interval; None without an interval (n < 2)."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return None
        return self.low <= value <= self.high

    def text(self, digits: int = 4) -> str:
        if self.n == 0:
            return "—"
        if not math.isfinite(self.half_width):
            return f"{self.mean:.{digits}f} (n={self.n}, no CI)"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f} (n={self.n})"


def t_estimate(values: Iterable[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean, std (ddof=1) and the t-interval of the mean; n=1 gives NaN std and interval."""
    x = np.asarray(list(values), dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, 1, math.nan, math.nan)
    std = float(x.std(ddof=1))
    sem = float(stats.sem(x))
    if sem == 0.0:  # all equal: scipy refuses scale=0, the interval is the point itself
        return Estimate(mean, std, n, mean, mean)
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sem)
    return Estimate(mean, std, n, float(low), float(high))


def wilcoxon_p(differences: Sequence[float]) -> tuple[float, str]:
    """Two-sided Wilcoxon signed-rank p-value of paired differences, or NaN with a reason."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return math.nan, f"{len(d)} paired seed(s): no test"
    if np.all(np.isclose(d, 0.0, atol=1e-12)):
        return math.nan, "all differences are zero: no test"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.wilcoxon(d)
    return float(result.pvalue), ""


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment; NaN p-values stay NaN and are not counted in the family."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(len(p), math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    running = 0.0
    for rank, i in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def normalised_aulc(steps: Sequence[int], values: Sequence[float]) -> float:
    """Trapezoid area under accuracy-vs-labels divided by the x range: the curve's mean level."""
    if len(steps) == 0:
        return math.nan
    if len(steps) == 1:
        return float(values[0])
    return float(trapezoid(values, steps) / (steps[-1] - steps[0]))


def labels_to_reach(steps: Sequence[int], means: Sequence[float], target: float) -> int | None:
    """The first labelled count at which the mean curve reaches `target`, else None."""
    for step, value in zip(steps, means, strict=True):
        if value >= target:
            return int(step)
    return None
