"""Optuna samplers by name, seeded: random, grid, tpe and nsga2 (several objectives)."""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna

SAMPLERS = ("random", "grid", "tpe", "nsga2")


def grid_size(grid: Mapping[str, Sequence[Any]]) -> int:
    return math.prod(len(choices) for choices in grid.values())


def make_sampler(name: str, seed: int, grid: Mapping[str, Sequence[Any]] | None = None,
                 n_trials: int | None = None) -> optuna.samplers.BaseSampler:
    """The sampler ``name``, seeded with ``seed``. ``grid`` (parameter -> choices) is required for
    ``grid``; a grid larger than ``n_trials`` gets a warning saying which part of it will be visited."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}")
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if not grid:
        raise ValueError("the grid sampler needs a grid (parameter -> choices); this search space has none")
    size = grid_size(grid)
    if n_trials is not None and size > n_trials:
        warnings.warn(f"the grid has {size:,} points but the budget is {n_trials} trials: the grid sampler visits "
                      f"{n_trials} of them, drawn without replacement in a seeded random order (seed {seed})",
                      stacklevel=2)
    return optuna.samplers.GridSampler({key: list(choices) for key, choices in grid.items()}, seed=seed)
