"""Statistics over repeated runs: t-intervals and paired comparisons, against hand-computed
values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchestrator.evaluation.statistics import paired, summarize


def test_summary_is_the_student_t_interval() -> None:
    s = summarize([1.0, 2.0, 3.0])
    assert (s.n, s.mean, s.std) == (3, 2.0, 1.0)
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2 dof)
    assert s.low == pytest.approx(2.0 - half) and s.high == pytest.approx(2.0 + half)
    wide = summarize([1.0, 2.0, 3.0], confidence=0.99)
    assert wide.low < s.low and wide.high > s.high


def test_one_value_has_no_interval() -> None:
    s = summarize([0.9])
    assert s.mean == 0.9 and math.isnan(s.low) and "no interval" in str(s)
    p = paired([0.9], [0.8])
    assert p.mean == pytest.approx(0.1) and math.isnan(p.p_t)
    assert p.verdict.startswith("no test possible")
    with pytest.raises(ValueError, match="NaN"):
        summarize([1.0, float("nan")])


def test_paired_difference_and_tests() -> None:
    a = np.array([0.91, 0.93, 0.92, 0.94, 0.95])
    b = np.array([0.90, 0.91, 0.92, 0.92, 0.93])
    p = paired(a, b)
    d = a - b
    assert p.mean == pytest.approx(d.mean()) and p.std == pytest.approx(d.std(ddof=1))
    half = 2.7764451051977987 * d.std(ddof=1) / math.sqrt(5)  # t(0.975, 4 dof)
    assert (p.low, p.high) == (pytest.approx(d.mean() - half), pytest.approx(d.mean() + half))
    t = d.mean() / (d.std(ddof=1) / math.sqrt(5))
    from scipy import stats

    assert p.p_t == pytest.approx(2 * stats.t.sf(abs(t), 4))
    assert 0 < p.p_wilcoxon <= 1
    assert p.verdict.startswith("a > b")
    # the other way round flips the sign and the verdict, not the p-values
    q = paired(b, a)
    assert q.mean == pytest.approx(-p.mean) and q.p_t == pytest.approx(p.p_t)
    assert q.verdict.startswith("a < b")
    with pytest.raises(ValueError, match="same length"):
        paired([1.0, 2.0], [1.0])
