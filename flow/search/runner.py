"""Run an Optuna study to a fixed trial budget: resumable, several workers at once, one progress
line per trial.

- **Budget.** A trial runs only while fewer than ``n_trials`` trials with smaller numbers are
  complete, running or waiting; Optuna numbers trials atomically in the storage, so several
  workers together finish exactly ``n_trials`` (a worker that draws a trial past the budget
  marks it pruned and stops).
- **Resume.** Studies are loaded when they exist. A run that is not a ``worker`` first marks the
  study's RUNNING trials (left by a killed run) FAILED and queues their parameters again, so a
  killed study continues from its stored trials. Start workers after the main run.
- **Pairing.** ``enqueue`` lists parameters a new study runs first, in order, whatever its
  sampler: a study that must compare with another on the same architectures queues that
  study's trials, and several workers then share the queue instead of sampling their own.
- **Commits.** Every trial stores the commit of the code that ran it (user attribute ``commit``),
  so a study resumed on newer code says which trials ran on which.
- **Seeds.** Each worker seeds its sampler with ``seed + 1000 * worker``, so two workers never
  propose the same random sequence; with several workers the order of trials is not reproducible.
- **Cluster.** Given an executor that is not serial (``--cluster local:N`` or ``tcp://...``), the
  missing trials run as tasks on it (flow.search.tasks): task i owns one trial, a task whose
  worker died is retried elsewhere, and the study ends with exactly the budget. The storage must
  be one every worker reaches (PostgreSQL, or SQLite/journal on a shared disk).
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from flow.cluster import Executor
from flow.paths import current_commit
from flow.search.samplers import make_sampler
from flow.search.storage import open_storage
from flow.search.tasks import SamplerSpec, run_trials

SLOT_STATES = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)


@dataclass
class StudySpec:
    """One study: its name, storage, sampler, seed, budget and direction(s)."""

    name: str
    storage: str
    sampler: str = "tpe"
    seed: int = 0
    n_trials: int = 20
    directions: tuple[str, ...] = ("maximize",)
    grid: dict[str, list[Any]] | None = None
    worker: int = 0  # 0: the main run (recovers killed trials); 1, 2, ...: extra workers
    attrs: dict[str, Any] = field(default_factory=dict)  # stored as study user attributes
    enqueue: list[dict[str, Any]] = field(default_factory=list)  # parameters a new study runs first, in order

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be at least 1, got {self.n_trials}")


def _load(spec: StudySpec) -> optuna.Study:
    sampler = make_sampler(spec.sampler, spec.seed + 1000 * spec.worker, spec.grid, spec.n_trials)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(spec.storage)
    if spec.worker:
        try:
            return optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler)
        except KeyError:
            raise ValueError(f"no study {spec.name!r} in {spec.storage}; start the main run first, then the "
                             f"workers") from None
    study = optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler, load_if_exists=True,
                                directions=list(spec.directions))
    for key, value in {"sampler": spec.sampler, "seed": spec.seed, "n_trials": spec.n_trials, **spec.attrs}.items():
        study.set_user_attr(key, value)
    if spec.enqueue and not study.get_trials(deepcopy=False):  # only a new study: a resumed one has its queue
        for params in spec.enqueue[:spec.n_trials]:
            study.enqueue_trial(params, skip_if_exists=False)
    return study


def recover_killed(study: optuna.Study) -> int:
    """Mark RUNNING trials FAILED and queue their parameters again; returns how many."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    return len(stale)


def slots_before(study: optuna.Study, number: int) -> int:
    """Trials numbered below ``number`` that hold a budget slot (complete, running or waiting)."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=SLOT_STATES) if t.number < number)


def trial_commits(study: optuna.Study) -> list[str]:
    """The commits whose code ran the study's complete trials (``unrecorded`` for trials run before
    flow stored a commit per trial)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted({t.user_attrs.get("commit") or "unrecorded" for t in trials})


def done(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def best_so_far(study: optuna.Study, objective: int = 0) -> list[float]:
    """The best value after each completed trial, in trial-number order (maximizing)."""
    best, curve = float("-inf"), []
    for trial in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number):
        best = max(best, trial.values[objective])
        curve.append(best)
    return curve


def _format_params(params: dict[str, Any], limit: int = 6) -> str:
    items = [f"{k}={v}" for k, v in params.items()]
    return ", ".join(items[:limit]) + (f", ... ({len(items)} parameters)" if len(items) > limit else "")


@dataclass(frozen=True)
class Timed:
    """An objective that stores, on each trial, the commit that ran it and its seconds (picklable,
    so it can travel to a cluster's workers)."""

    objective: Callable[[optuna.Trial], float | tuple[float, ...]]

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        trial.set_user_attr("commit", current_commit())  # a resumed study may mix commits: each trial names its own
        start = time.perf_counter()
        value = self.objective(trial)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
        return value


def _run_on_cluster(spec: StudySpec, study: optuna.Study, objective: Callable[[optuna.Trial], Any],
                    executor: Executor, log: Callable[[str], None]) -> optuna.Study:
    """The missing trials as tasks on ``executor``; trials completed before without a task tag
    keep their budget slots (tasks are numbered after them)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    untagged = sum(1 for t in complete if "task" not in t.user_attrs)
    log(f"[{spec.name}] trials {untagged}..{spec.n_trials - 1} as tasks on {executor.spec}")
    sampler = SamplerSpec(spec.sampler, spec.seed + 1000 * spec.worker, spec.grid, spec.n_trials)
    for index, number, values in run_trials(executor, spec.storage, spec.name, spec.n_trials, Timed(objective),
                                            sampler, first=untagged):
        shown = " ".join(f"{v:.4f}" for v in (values if isinstance(values, tuple) else (values,)))
        log(f"[{spec.name}] task {index}: trial {number} value {shown}")
    return optuna.load_study(study_name=spec.name, storage=open_storage(spec.storage))


def run_study(spec: StudySpec, objective: Callable[[optuna.Trial], float | tuple[float, ...]],
              log: Callable[[str], None] = print, executor: Executor | None = None) -> optuna.Study:
    """Run ``objective`` until the study holds ``spec.n_trials`` complete trials (see the module
    docstring); on a cluster executor, as one task per missing trial."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = _load(spec)
    for warning in caught:
        if not issubclass(warning.category, optuna.exceptions.ExperimentalWarning):
            log(f"[{spec.name}] warning: {warning.message}")
    if not spec.worker:
        recovered = recover_killed(study)
        if recovered:
            log(f"[{spec.name}] {recovered} trial(s) left running by a killed run: queued again")
    if done(study) >= spec.n_trials:
        log(f"[{spec.name}] already has {done(study)} complete trials (budget {spec.n_trials})")
        return study
    if executor is not None and executor.client is not None:
        return _run_on_cluster(spec, study, objective, executor, log)
    timed = Timed(objective)

    def guarded(trial: optuna.Trial) -> float | tuple[float, ...]:
        if slots_before(study, trial.number) >= spec.n_trials:
            study.stop()
            raise optuna.TrialPruned(f"budget of {spec.n_trials} trials reached")
        return timed(trial)

    def progress(study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state is not TrialState.COMPLETE:
            if trial.state is TrialState.FAIL:
                log(f"[{spec.name}] trial {trial.number} failed")
            return
        values = " ".join(f"{v:.4f}" for v in trial.values)
        best = best_so_far(study)[-1] if len(spec.directions) == 1 else None
        log(f"[{spec.name}] trial {trial.number} ({done(study)}/{spec.n_trials}) value {values}"
            + (f" | best {best:.4f}" if best is not None else "")
            + f" | {trial.user_attrs.get('seconds', 0):.0f} s | {_format_params(trial.params)}")

    while done(study) < spec.n_trials:
        before = done(study)
        study.optimize(guarded, n_trials=spec.n_trials - done(study), callbacks=[progress], catch=())
        if done(study) == before:  # every slot is held by another worker's running trial
            break
    return study
