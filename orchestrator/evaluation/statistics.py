"""Statistics over repeated runs: a mean with its confidence interval, and paired differences.

Shared by tuning (the verdict after a study) and comparison (backends over matched seeds), which
do not import each other. Small samples (3-10 seeds or folds) are the rule here, so intervals use
Student's t with n - 1 degrees of freedom, and a paired comparison reports the interval of the
mean difference with two tests on the same pairs: the paired t-test and the Wilcoxon signed-rank
test (exact for small n, no normality assumed). With one value there is no interval and no test:
the fields are NaN and ``note`` says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (ddof 1) and a t-interval of the mean over ``n`` values."""

    n: int
    mean: float
    std: float
    low: float
    high: float
    confidence: float = CONFIDENCE
    note: str = ""

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in asdict(self).items() if k != "note"}

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.4f} (n={self.n}, no interval)"
        return (f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}] "
                f"(n={self.n}, {self.confidence:.0%} t-interval)")


@dataclass(frozen=True)
class Paired:
    """``a - b`` over matched pairs: the mean difference and its t-interval, the paired t-test's
    p-value and the Wilcoxon signed-rank test's p-value (two-sided)."""

    n: int
    mean: float
    std: float
    low: float
    high: float
    p_t: float
    p_wilcoxon: float
    confidence: float = CONFIDENCE
    note: str = ""

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in asdict(self).items() if k != "note"}

    @property
    def verdict(self) -> str:
        """In words: which side is ahead, and whether the interval excludes zero."""
        if self.n < 2 or math.isnan(self.low):
            return "no test possible (one pair)"
        if self.low > 0:
            return "a > b (interval above 0)"
        if self.high < 0:
            return "a < b (interval below 0)"
        return "no difference shown (interval contains 0)"

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:+.4f} (n={self.n}, no test possible)"
        return (f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}] (n={self.n}, paired t "
                f"p={self.p_t:.3g}, Wilcoxon p={self.p_wilcoxon:.3g})")


def _t_quantile(confidence: float, dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, dof))


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean and t-interval of ``values`` (NaN values are an error: say which run has none)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values to summarize")
    if np.isnan(x).any():
        raise ValueError("a value is NaN; summarize finite values only")
    n = int(x.size)
    mean = float(x.mean())
    if n < 2:
        nan = float("nan")
        return Summary(n, mean, nan, nan, nan, confidence, "one value: no interval")
    std = float(x.std(ddof=1))
    half = _t_quantile(confidence, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half, confidence)


def paired(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Paired:
    """Compare ``a`` and ``b`` over matched pairs (``a[i]`` and ``b[i]`` share a seed or fold)."""
    from scipy import stats

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired values need two sequences of the same length, got {x.shape} "
                         f"and {y.shape}")
    d = x - y
    s = summarize(d, confidence)
    nan = float("nan")
    if s.n < 2:
        return Paired(s.n, s.mean, nan, nan, nan, nan, nan, confidence, s.note)
    if s.std == 0:  # identical differences: the t statistic is undefined
        p_t = 1.0 if s.mean == 0 else 0.0
    else:
        p_t = float(stats.ttest_rel(x, y).pvalue)
    if np.all(d == 0):
        p_w = 1.0
    else:
        p_w = float(stats.wilcoxon(x, y, zero_method="zsplit").pvalue)
    return Paired(s.n, s.mean, s.std, s.low, s.high, p_t, p_w, confidence)
