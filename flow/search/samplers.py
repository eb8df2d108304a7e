"""Optuna samplers by name, seeded: random, grid, tpe and nsga2 (several objectives)."""
from __future__ import annotations

import math
import random
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
    return LazyGridSampler(grid, seed)


class LazyGridSampler(optuna.samplers.BaseSampler):
    """Grid search without listing the grid: each trial takes a grid point not visited yet, drawn
    by its index (seeded per trial number, so reruns and several workers agree), and decodes its
    parameters from that index. Optuna's GridSampler lists every point first, which for the
    architecture space (1.7e17 points with its Linear/Identity choices) exhausts memory."""

    def __init__(self, grid: Mapping[str, Sequence[Any]], seed: int = 0) -> None:
        self.names = sorted(grid)
        self.choices = {name: list(grid[name]) for name in self.names}
        self.size = grid_size(grid)
        self.seed = seed

    def point(self, index: int) -> dict[str, Any]:
        """The grid point at ``index`` (mixed radix over the sorted parameter names)."""
        values = {}
        for name in self.names:
            index, digit = divmod(index, len(self.choices[name]))
            values[name] = self.choices[name][digit]
        return values

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        visited = {t.system_attrs.get("grid_index") for t in study.get_trials(deepcopy=False)}
        if len(visited - {None}) >= self.size:
            raise ValueError(f"every one of the grid's {self.size} points has been visited; lower the budget")
        rng = random.Random(self.seed * 1_000_003 + trial.number)
        index = rng.randrange(self.size)
        while index in visited:
            index = rng.randrange(self.size)
        study._storage.set_trial_system_attr(trial._trial_id, "grid_index", index)

    def infer_relative_search_space(self, study, trial):  # noqa: ANN001, ANN201 - Optuna's signature
        return {}

    def sample_relative(self, study, trial, search_space):  # noqa: ANN001, ANN201
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):  # noqa: ANN001, ANN201
        if param_name not in self.choices:
            raise ValueError(f"parameter {param_name!r} is not in the grid ({len(self.names)} parameters); add it")
        return self.point(trial.system_attrs["grid_index"])[param_name]
