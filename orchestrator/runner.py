"""The parent of an invocation: check data, prepare the store, run each planned run in its own
process, keep run statuses truthful under signals, and summarize.

Order of work, so that bad input never leaves a run behind: configs are validated (by the caller),
then every experiment's data is loaded and checked here, and only then is the MLflow store
touched. SIGTERM and Ctrl-C stop the current run (its worker marks it KILLED), keep the runs
already completed, and skip the rest.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable
from typing import Any

from orchestrator.config.loader import ResolvedExperiment
from orchestrator.execute import RunOutcome, execute_run
from orchestrator.plan import PlannedRun, make_plan

GRACE_SECONDS = 60.0


def check_data(experiments: list[ResolvedExperiment]) -> None:
    """Load every experiment's data once (filling the cache the workers read); raises
    ``DataError`` before any run exists."""
    from orchestrator import plugin_manager
    from orchestrator.data.errors import DataError

    tasks = plugin_manager.tasks()
    seen = set()
    for exp in experiments:
        for seed in exp.seeds:
            # options as JSON: a list-valued option must not make the key unhashable
            key = (exp.task, exp.data.model_dump_json(), seed, exp.folds)
            if key in seen:
                continue
            seen.add(key)
            try:
                tasks.get(exp.task)().prepare(exp.data, seed=seed, folds=exp.folds)
            except DataError as exc:  # name the experiment file too
                raise DataError(f"{exp.file}: {exc}") from None


def _child(run: PlannedRun, uri: str, interactive: bool, channel: Any) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    outcome = execute_run(run, uri, interactive=interactive,
                          on_start=lambda run_id: channel.put(("started", run_id)))
    channel.put(("done", outcome))


class _Interrupted(KeyboardInterrupt):
    pass


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def run_plan(plan: list[PlannedRun], uri: str, *, interactive: bool,
             report: Callable[[RunOutcome], None] = lambda outcome: None) -> list[RunOutcome]:
    """Run every planned run, one worker process at a time; returns the outcomes so far (the
    last one KILLED if the invocation was interrupted)."""
    context = multiprocessing.get_context("spawn")
    outcomes: list[RunOutcome] = []
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for run in plan:
            channel = context.Queue()
            worker = context.Process(target=_child, args=(run, uri, interactive, channel),
                                     name=f"orchestrator-{run.run_name}")
            started = time.perf_counter()
            worker.start()
            run_id: list[str | None] = [None]
            try:
                outcome = _wait(worker, channel, run_id, run, started)
            except KeyboardInterrupt as exc:
                outcome = _stop(worker, channel, run_id, run, started, exc)
                outcomes.append(outcome)
                report(outcome)
                raise
            outcomes.append(outcome)
            report(outcome)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return outcomes


def _wait(worker: Any, channel: Any, run_id: list[str | None], run: PlannedRun,
          started: float) -> RunOutcome:
    while True:
        try:
            kind, payload = channel.get(timeout=0.5)
        except queue.Empty:
            if not worker.is_alive():
                return _died(worker, run_id[0], run, started)
            continue
        if kind == "started":
            run_id[0] = payload
        else:
            worker.join()
            return payload


def _stop(worker: Any, channel: Any, run_id: list[str | None], run: PlannedRun, started: float,
          exc: BaseException) -> RunOutcome:
    """Forward the stop to the worker (its run ends KILLED) and collect what it reports."""
    if worker.is_alive():
        worker.terminate()  # SIGTERM: the worker raises KeyboardInterrupt and marks KILLED
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        try:
            kind, payload = channel.get(timeout=0.5)
        except queue.Empty:
            if not worker.is_alive():
                break
            continue
        except KeyboardInterrupt:
            continue  # a second Ctrl-C while the worker cleans up
        if kind == "started":
            run_id[0] = payload
        else:
            worker.join(5)
            return payload
    if worker.is_alive():
        worker.kill()
        worker.join(5)
    return _died(worker, run_id[0], run, started, status="KILLED",
                 reason=f"stopped by {exc or 'interrupt'}")


def _died(worker: Any, run_id: str | None, run: PlannedRun, started: float,
          status: str | None = None, reason: str | None = None) -> RunOutcome:
    """A worker that vanished without reporting: mark its run (if it had one) ourselves."""
    code = worker.exitcode
    if status is None:
        status = "KILLED" if code in (-signal.SIGKILL, -signal.SIGTERM, -signal.SIGINT) \
            else "FAILED"
    if reason is None:
        reason = (f"worker process died with signal {signal.Signals(-code).name}"
                  if code is not None and code < 0 else f"worker process exited with {code}")
    if run_id is not None:
        from mlflow.tracking import MlflowClient

        from orchestrator.tracking.store import tracking_uri

        client = MlflowClient(tracking_uri())
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_tag(run_id, "orchestrator.error", reason)
            client.set_terminated(run_id, status)
    return RunOutcome(run.label, run_id, status, "", None, time.perf_counter() - started, reason)


def run_experiments(experiments: list[ResolvedExperiment], *, interactive: bool,
                    report: Callable[[RunOutcome], None] = lambda outcome: None
                    ) -> list[RunOutcome]:
    """Check data, prepare the store, mark dead runs, run the plan, log summaries."""
    from orchestrator.compare import log_summaries
    from orchestrator.tracking.recovery import mark_dead_runs
    from orchestrator.tracking.store import ensure_store

    check_data(experiments)
    uri = ensure_store()
    mark_dead_runs(uri)
    plan = make_plan(experiments)
    outcomes = run_plan(plan, uri, interactive=interactive, report=report)
    log_summaries(uri, plan, outcomes)
    return outcomes
