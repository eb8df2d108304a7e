"""flow.cluster: the executor gives results in job order on every kind, and bad input is one line."""
from __future__ import annotations

import time

import pytest

from flow.cluster import ClusterError, open_executor


def _square(x: int) -> int:
    return x * x


def test_serial_runs_in_order() -> None:
    lines: list[str] = []
    with open_executor("serial", log=lines.append) as ex:
        assert list(ex.map(_square, range(5))) == [0, 1, 4, 9, 16]
    assert lines == [f"[serial] done {i}" for i in range(5)]


def test_local_cluster_gives_job_order_and_names_workers() -> None:
    lines: list[str] = []
    with open_executor("local:2", log=lines.append) as ex:
        assert list(ex.map(_square, range(6))) == [0, 1, 4, 9, 16, 25]
    assert "dashboard" in lines[0]
    done = [line for line in lines if " done " in line]
    assert len(done) == 6 and all(line.startswith("[tcp://") for line in done)


def test_unreachable_scheduler_is_one_line_and_quick() -> None:
    start = time.monotonic()
    with pytest.raises(ClusterError) as err:
        open_executor("tcp://127.0.0.1:9")
    assert time.monotonic() - start < 15
    message = str(err.value)
    assert "\n" not in message and "tcp://127.0.0.1:9" in message and "dask scheduler" in message


@pytest.mark.parametrize("spec", ["local:0", "local:x", "slurm://x"])
def test_bad_spec_is_one_line(spec: str) -> None:
    with pytest.raises(ClusterError) as err:
        open_executor(spec)
    assert "\n" not in str(err.value) and spec in str(err.value)


def test_unreachable_database_is_one_line_within_ten_seconds() -> None:
    from flow.search import open_storage

    start = time.monotonic()
    with pytest.raises(ValueError) as err:
        open_storage("postgresql://flow:pw@127.0.0.1:9/studies")
    assert time.monotonic() - start < 12
    message = str(err.value)
    assert "\n" not in message and "127.0.0.1:9/studies" in message and "pw" not in message


def test_unknown_storage_kind_lists_the_kinds() -> None:
    from flow.search import open_storage

    with pytest.raises(ValueError) as err:
        open_storage("redis://localhost/0")
    message = str(err.value)
    assert "\n" not in message and "journal:" in message and "postgresql://" in message and ".db" in message


def test_study_on_postgres_started_by_the_test(tmp_path) -> None:
    """Two processes' worth of trials on one study in a real PostgreSQL server from the pgserver wheel."""
    import optuna
    import pgserver

    from flow.search import open_storage

    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    url = server.get_uri()
    first = optuna.create_study(study_name="s", storage=open_storage(url), sampler=optuna.samplers.RandomSampler(seed=0))
    first.optimize(lambda t: t.suggest_float("a", 0, 1), n_trials=4)
    second = optuna.load_study(study_name="s", storage=open_storage(url))
    second.optimize(lambda t: t.suggest_float("a", 0, 1), n_trials=3)
    numbers = sorted(t.number for t in first.get_trials() if t.state.name == "COMPLETE")
    assert numbers == list(range(7))


def _objective_killing_task_3(trial) -> float:
    """Tiny objective; on task 3's first attempt it kills its own worker process mid-trial."""
    import os
    import signal

    x = trial.suggest_float("x", -1.0, 1.0)
    if trial.user_attrs["task"] == 3 and trial.user_attrs["attempts"] == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def _killed_worker_study(storage: str) -> None:
    import optuna
    from optuna.trial import TrialState

    from flow.search import open_storage
    from flow.search.tasks import run_trials

    optuna.create_study(study_name="kill", storage=open_storage(storage))
    lines: list[str] = []
    with open_executor("local:2", log=lines.append) as ex:
        results = run_trials(ex, storage, "kill", 10, _objective_killing_task_3)
    study = optuna.load_study(study_name="kill", storage=open_storage(storage))
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["task"] for t in complete) == list(range(10))
    assert len({t.number for t in complete}) == 10 and len({t.params["x"] for t in complete}) == 10
    failed = [t for t in study.get_trials() if t.state != TrialState.COMPLETE]
    assert [(t.user_attrs["task"], t.state) for t in failed] == [(3, TrialState.FAIL)]
    rerun = next(t for t in complete if t.user_attrs["task"] == 3)
    assert rerun.user_attrs["attempts"] == 2
    assert [r[0] for r in results] == list(range(10))
    assert sum(" done kill trial task " in line for line in lines) == 10


def test_killed_worker_loses_nothing_on_sqlite(tmp_path) -> None:
    _killed_worker_study(str(tmp_path / "s.db"))


def test_killed_worker_loses_nothing_on_postgres(tmp_path) -> None:
    import pgserver

    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    _killed_worker_study(server.get_uri())


def _two_objectives(trial) -> tuple[float, float]:
    x = trial.suggest_float("x", -1.0, 1.0)
    return x * x, abs(x)


def test_run_study_on_a_cluster_resumes_a_serial_start_and_keeps_the_budget(tmp_path) -> None:
    """Two trials run serially first; the cluster runs the other four as tasks, random sampler seeded per task."""
    import optuna

    from flow.search import StudySpec, open_storage, run_study

    storage = str(tmp_path / "s.db")
    spec = StudySpec("multi", storage, "random", seed=0, n_trials=2, directions=("minimize", "minimize"))
    run_study(spec, _two_objectives, log=lambda _: None)
    lines: list[str] = []
    with open_executor("local:2", log=lines.append) as ex:
        spec.n_trials = 6
        study = run_study(spec, _two_objectives, log=lines.append, executor=ex)
    complete = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert len(complete) == 6 and len({t.params["x"] for t in complete}) == 6
    assert sorted(t.user_attrs.get("task", -1) for t in complete) == [-1, -1, 2, 3, 4, 5]
    assert all("commit" in t.user_attrs and "seconds" in t.user_attrs for t in complete)
    assert sum(" done multi trial task " in line for line in lines) == 4
    again = optuna.load_study(study_name="multi", storage=open_storage(storage))
    with open_executor("local:2", log=lines.append) as ex:
        run_study(spec, _two_objectives, log=lines.append, executor=ex)  # nothing left to do
    assert len(again.get_trials()) == 6
