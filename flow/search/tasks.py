"""Search trials as independent tasks (one Optuna trial each) that survive a killed worker.

Task ``i`` of a study owns the trial tagged ``task=i``. It loads the study from the shared storage
(SQLite, journal or PostgreSQL), returns at once if its trial is already COMPLETE (a retry after the
result was stored writes nothing twice), marks a trial it left RUNNING on a worker that died as
FAIL, then asks a fresh trial, tags it (``task``, ``attempts``) and runs the objective. However
workers die, the study ends with exactly one COMPLETE trial per task.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from flow.cluster import Executor
from flow.search.storage import open_storage


@dataclass(frozen=True)
class TrialTask:
    """One task: which study, which storage, which slot, and the objective to run in it."""

    storage: str
    study_name: str
    index: int
    objective: Callable[[optuna.Trial], float]


def run_trial_task(task: TrialTask) -> tuple[int, int, float]:
    """Runs (or finds) the task's trial; returns (task index, trial number, value)."""
    study = optuna.load_study(study_name=task.study_name, storage=open_storage(task.storage))
    mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("task") == task.index]
    for trial in mine:
        if trial.state == TrialState.COMPLETE:
            return task.index, trial.number, float(trial.value)
    for trial in mine:
        if trial.state == TrialState.RUNNING:  # left by a worker that died mid-trial
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    trial = study.ask()
    trial.set_user_attr("task", task.index)
    trial.set_user_attr("attempts", len(mine) + 1)
    value = float(task.objective(trial))
    study.tell(trial, value)
    return task.index, trial.number, value


def run_trials(executor: Executor, storage: str, study_name: str, n_trials: int,
               objective: Callable[[optuna.Trial], float]) -> list[tuple[int, int, float]]:
    """Runs tasks 0..n_trials-1 of a study that exists in ``storage``; results in task order."""
    tasks = [TrialTask(storage, study_name, i, objective) for i in range(n_trials)]
    return list(executor.map(run_trial_task, tasks, label=lambda t: f"trial task {t.index}"))
