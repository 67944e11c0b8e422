"""The one place that touches Optuna's private attributes (a new Optuna release breaks here,
nowhere else): the study's storage, the atomic pop of a waiting trial, the heartbeat thread.

Why the pop is ours: Optuna's ``Study._pop_waiting_trial_id`` reads the WAITING trials, then
sets one RUNNING with ``SELECT ... FOR UPDATE`` and a state check. SQLite ignores ``FOR UPDATE``
and pysqlite starts the transaction only at the write, so two workers that read the same WAITING
trial both set it RUNNING and both run it (seen in 2 of 5 starts of two workers). Here the pop is
one conditional ``UPDATE ... SET state = RUNNING WHERE trial_id = ? AND state = WAITING``: a
compare-and-set that SQLite serialises (one writer at a time) and that PostgreSQL and MySQL
re-check after the row lock, so exactly one worker gets each trial on every database. Journal
storages (``journal:``) keep Optuna's pop, which their log already makes atomic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def storage_of(study: Any) -> Any:
    """The storage a study reads and writes (Optuna wraps databases in a cache)."""
    return study._storage


def rdb_backend(study: Any) -> Any | None:
    """The ``RDBStorage`` under the study's storage, None for journal or in-memory ones."""
    from optuna.storages import RDBStorage

    storage = storage_of(study)
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, RDBStorage) else None


def pop_waiting_trial(study: Any) -> int | None:
    """Set one WAITING trial of the study RUNNING and return its id; None when none waits. At
    most one caller, in any number of processes, ever gets a given trial."""
    from optuna.trial import TrialState

    backend = rdb_backend(study)
    if backend is None:
        return study._pop_waiting_trial_id()
    import sqlalchemy

    from optuna.storages._rdb import models

    waiting = storage_of(study).get_all_trials(study._study_id, deepcopy=False,
                                               states=(TrialState.WAITING,))
    for trial in waiting:
        statement = (sqlalchemy.update(models.TrialModel)
                     .where(models.TrialModel.trial_id == trial._trial_id,
                            models.TrialModel.state == TrialState.WAITING)
                     .values(state=TrialState.RUNNING, datetime_start=datetime.now())
                     .execution_options(synchronize_session=False))
        with backend.engine.begin() as connection:
            taken = connection.execute(statement).rowcount == 1
        if taken:
            # a first heartbeat at once: a worker killed before its heartbeat thread beats
            # would leave the trial RUNNING with none, and Optuna never calls such a trial
            # stale (a resumed search then waits for it forever)
            if backend.get_heartbeat_interval() is not None:
                backend.record_heartbeat(trial._trial_id)
            return trial._trial_id
    return None


def release_trial(study: Any, trial_id: int) -> None:
    """Give a trial popped by this process back (RUNNING -> WAITING) before it ran: a stop
    that came between the pop and the trial's start must not leave it RUNNING."""
    from optuna.trial import TrialState

    backend = rdb_backend(study)
    if backend is None:
        storage_of(study).set_trial_state_values(trial_id, TrialState.WAITING)
        return
    import sqlalchemy

    from optuna.storages._rdb import models

    statement = (sqlalchemy.update(models.TrialModel)
                 .where(models.TrialModel.trial_id == trial_id,
                        models.TrialModel.state == TrialState.RUNNING)
                 .values(state=TrialState.WAITING, datetime_start=None)
                 .execution_options(synchronize_session=False))
    with backend.engine.begin() as connection:
        connection.execute(statement)


def heartbeat_thread(study: Any, trial_id: int) -> Any:
    """A context manager that beats the trial's heartbeat while it runs (database storages)."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    return get_heartbeat_thread(trial_id, storage_of(study))


def frozen_trial(study: Any, trial: Any) -> Any:
    """The trial as stored now (state, attributes), read from the storage, not the cache."""
    return storage_of(study).get_trial(trial._trial_id)


def trial_id(trial: Any) -> int:
    return trial._trial_id
