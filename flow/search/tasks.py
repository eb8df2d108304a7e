"""Search trials as independent tasks (one Optuna trial each) that survive a killed worker.

Task ``i`` of a study owns the trial tagged ``task=i``. It loads the study from the shared storage
(SQLite, journal or PostgreSQL), returns at once if its trial is already COMPLETE (a retry after the
result was stored writes nothing twice), marks a trial it left RUNNING on a worker that died as
FAIL, then asks a fresh trial, tags it (``task``, ``attempts``) and runs the objective. However
workers die, the study ends with exactly one COMPLETE trial per task.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from flow.cluster import Executor
from flow.search.samplers import make_sampler
from flow.search.storage import open_storage

Values = float | tuple[float, ...]


@dataclass(frozen=True)
class SamplerSpec:
    """How a task rebuilds its study's sampler; task i seeds it with ``seed + i``, so random
    samplers on different tasks never draw the same sequence."""

    name: str
    seed: int
    grid: dict[str, list[Any]] | None = None
    n_trials: int | None = None


@dataclass(frozen=True)
class TrialTask:
    """One task: which study, which storage, which slot, and the objective to run in it."""

    storage: str
    study_name: str
    index: int
    objective: Callable[[optuna.Trial], Values]
    sampler: SamplerSpec | None = None  # None: Optuna's default


def _values(trial: optuna.trial.FrozenTrial) -> Values:
    return float(trial.values[0]) if len(trial.values) == 1 else tuple(float(v) for v in trial.values)


def run_trial_task(task: TrialTask) -> tuple[int, int, Values]:
    """Runs (or finds) the task's trial; returns (task index, trial number, value or values)."""
    spec = task.sampler
    sampler = make_sampler(spec.name, spec.seed + task.index, spec.grid, spec.n_trials) if spec else None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=task.study_name, storage=open_storage(task.storage), sampler=sampler)
    mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("task") == task.index]
    for trial in mine:
        if trial.state == TrialState.COMPLETE:
            return task.index, trial.number, _values(trial)
    for trial in mine:
        if trial.state == TrialState.RUNNING:  # left by a worker that died mid-trial
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    trial = study.ask()
    trial.set_user_attr("task", task.index)
    trial.set_user_attr("attempts", len(mine) + 1)
    value = task.objective(trial)
    study.tell(trial, value)
    return task.index, trial.number, float(value) if isinstance(value, int | float) else tuple(map(float, value))


def run_trials(executor: Executor, storage: str, study_name: str, n_trials: int,
               objective: Callable[[optuna.Trial], Values], sampler: SamplerSpec | None = None,
               first: int = 0) -> list[tuple[int, int, Values]]:
    """Runs tasks ``first``..n_trials-1 of a study that exists in ``storage``; results in task order."""
    tasks: Sequence[TrialTask] = [TrialTask(storage, study_name, i, objective, sampler) for i in range(first, n_trials)]
    return list(executor.map(run_trial_task, tasks, label=lambda t: f"{study_name} trial task {t.index}"))
