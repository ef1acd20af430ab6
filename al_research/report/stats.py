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


@dataclass(frozen=True)
class SignedRankTest:
    """A two-sided Wilcoxon signed-rank test of paired differences, and how it was computed."""

    p: float
    method: str  # "exact", "exact permutation (ties)", "normal approximation (...)", or ""
    n: int  # non-zero differences: the pairs the test ranks
    note: str = ""

    @property
    def min_p(self) -> float:
        """The smallest two-sided p any outcome of n non-zero pairs can give: 2 / 2^n."""
        return min(1.0, 2.0 / 2.0 ** self.n) if self.n else math.nan


WILCOXON_EXACT_MAX_N = 50  # scipy's own limit for its exact null distribution
PERMUTATION_MAX_N = 13  # 2^13 sign flips < scipy's default 9999 resamples: every flip, exact
DIGITS = 10  # differences of accuracies (k/400) are rounded here before looking for ties


def wilcoxon_test(differences: Sequence[float], alpha: float = 1 - CONFIDENCE) -> SignedRankTest:
    """Two-sided Wilcoxon signed-rank test of paired differences (zeros dropped, Wilcoxon's way).

    Without ties the p-value is exact (scipy `method="exact"`). With tied |differences| the exact
    null distribution does not apply: up to 13 pairs every sign flip is enumerated (an exact
    permutation p-value), beyond that the normal approximation with tie correction is used. A
    note says when n is so small that no outcome could reach `alpha`.
    """
    d = np.round(np.asarray(differences, dtype=float), DIGITS)
    if len(d) < 2:
        return SignedRankTest(math.nan, "", len(d), f"{len(d)} paired seed(s): no test")
    nonzero = d[d != 0.0]
    n = len(nonzero)
    if n == 0:
        return SignedRankTest(math.nan, "", 0, "all differences are zero: no test")
    zeros = len(d) - n
    dropped = f"{zeros} zero difference(s) dropped" if zeros else ""
    ties = len(np.unique(np.abs(nonzero))) < n
    if not ties and n <= WILCOXON_EXACT_MAX_N:
        method, scipy_method = "exact", "exact"
    elif ties and n <= PERMUTATION_MAX_N:
        method, scipy_method = "exact permutation (ties)", stats.PermutationMethod()
    else:
        why = "ties" if ties else f"n > {WILCOXON_EXACT_MAX_N}"
        method, scipy_method = f"normal approximation ({why})", "asymptotic"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.wilcoxon(nonzero, method=scipy_method).pvalue)
    test = SignedRankTest(min(p, 1.0), method, n)
    small = (f"n={n}: the smallest possible p is {test.min_p:.3g}, the test cannot reach "
             f"{alpha:g}") if test.min_p > alpha else ""
    return SignedRankTest(test.p, method, n, "; ".join(filter(None, [dropped, small])))


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


def prediction_interval(values: Iterable[float],
                        confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The t-based interval for one more run: mean ± t(n-1) s sqrt(1 + 1/n); NaN for n < 2."""
    x = np.asarray(list(values), dtype=float)
    n = len(x)
    if n < 2:
        return math.nan, math.nan
    mean, std = float(x.mean()), float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std * math.sqrt(1 + 1 / n)
    return mean - half, mean + half


def labels_to_reach(steps: Sequence[int], means: Sequence[float], target: float) -> int | None:
    """The first labelled count at which the mean curve reaches `target`, else None."""
    for step, value in zip(steps, means, strict=True):
        if value >= target:
            return int(step)
    return None
