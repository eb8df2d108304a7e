"""flow.labs.stats: spread over seeds, binomial intervals, and "better" only when intervals separate."""
import pytest

from flow.labs import stats


def test_spread_and_chance():
    assert stats.spread([0.80, 0.82, 0.84]) == pytest.approx({"mean": 0.82, "min": 0.80, "max": 0.84, "n": 3})
    assert stats.at_chance([0.50, 0.52, 0.521, 0.8]) == 2
    with pytest.raises(ValueError, match="no values to summarize; run at least one seed"):
        stats.spread([])


def test_binomial_interval_shrinks_with_reviews():
    assert stats.binomial_halfwidth(0.5, 1000) == pytest.approx(0.0310, abs=1e-4)
    assert stats.binomial_halfwidth(0.81, 25000) == pytest.approx(0.00486, abs=1e-5)
    low, high = stats.interval(0.8149, 25000)
    assert low < 0.8149 < high and high - low == pytest.approx(2 * stats.binomial_halfwidth(0.8149, 25000))


def test_better_only_when_intervals_separate():
    assert not stats.separated(stats.interval(0.8153, 25000), stats.interval(0.8149, 25000))
    assert stats.separated(stats.interval(0.7944, 25000), stats.interval(0.8149, 25000))
    assert not stats.separated((0.649, 0.665), (0.627, 0.664))
