"""Spread over seeds, binomial intervals of an accuracy, and when two results really differ:
the labs call a result better only where its interval separates from the other's."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from flow.labs.common import CHANCE

Z95 = 1.96


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, min and max over seeds (the error bars of the lab figures)."""
    if not values:
        raise ValueError("no values to summarize; run at least one seed")
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values), "n": len(values)}


def coin_bound(reviews: int) -> float:
    """The top of a fair coin's 95 % interval on ``reviews`` balanced reviews: an accuracy at or below
    it is indistinguishable from guessing."""
    return 0.5 + binomial_halfwidth(0.5, reviews)


def binomial_halfwidth(accuracy: float, reviews: int) -> float:
    """Half the 95 % normal interval of an accuracy measured on ``reviews`` independent reviews:
    the noise of the finite split alone (the seed adds more)."""
    return Z95 * math.sqrt(max(accuracy * (1 - accuracy), 1e-12) / reviews)


def interval(accuracy: float, reviews: int) -> tuple[float, float]:
    half = binomial_halfwidth(accuracy, reviews)
    return accuracy - half, accuracy + half


def separated(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals (low, high) do not overlap: only then is one result better."""
    return a[1] < b[0] or b[1] < a[0]


def at_chance(values: Sequence[float]) -> int:
    """How many accuracies are at chance (at or below CHANCE)."""
    return sum(1 for v in values if v <= CHANCE)
