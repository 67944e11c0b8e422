"""The parent of an invocation: check data, prepare the store, run each planned run in its own
process, keep run statuses truthful under signals, and summarize.

Order of work, so that bad input never leaves a run behind: configs are validated (by the caller),
then every experiment's data is loaded and checked here, and only then is the MLflow store
touched. Runs go up to ``jobs`` side by side, one process each, the longest known first (see
``start_order``). SIGTERM and Ctrl-C stop the runs under way (each worker marks its run KILLED),
keep the runs already completed, and skip the rest.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable
from typing import Any

from orchestrator.config.loader import ResolvedExperiment
from orchestrator.orchestration.worker import RunOutcome, execute_run
from orchestrator.orchestration.plan import PlannedRun, make_plan
from orchestrator.orchestration.progress import ProgressBoard

GRACE_SECONDS = 60.0
JOBS_ENV = "ORCHESTRATOR_JOBS"
MAX_DEFAULT_JOBS = 4


def check_data(experiments: list[ResolvedExperiment]) -> None:
    """Load every experiment's data once (filling the cache the workers read); raises
    ``DataError`` before any run exists."""
    from orchestrator.plugins import manager as plugin_manager
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


def default_jobs() -> int:
    """Runs side by side by default: ``ORCHESTRATOR_JOBS``, else the usable cores, at most 4
    (each run is one process with one compute thread; past a few, they compete for memory
    bandwidth and the store more than they gain)."""
    text = os.environ.get(JOBS_ENV, "").strip()
    if text:
        try:
            return parse_jobs(text)
        except ValueError as error:
            raise ValueError(f"{JOBS_ENV} {error}") from None
    return max(1, min(len(os.sched_getaffinity(0)), MAX_DEFAULT_JOBS))


def parse_jobs(text: str) -> int:
    """A number of runs side by side (``--jobs``, ``ORCHESTRATOR_JOBS``): a whole number >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _child(run: PlannedRun, uri: str, interactive: bool, channel: Any, threads: int | None
           ) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    display = (lambda event: channel.put(("progress", event))) if interactive else False
    outcome = execute_run(run, uri, threads=threads, display=display,
                          on_start=lambda run_id: channel.put(("started", run_id)))
    channel.put(("done", outcome))


class _Interrupted(KeyboardInterrupt):
    pass


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise _Interrupted(signal.Signals(signum).name)


class _Worker:
    """One planned run in its own process, and what it has reported so far."""

    def __init__(self, context: Any, run: PlannedRun, uri: str, interactive: bool,
                 threads: int | None) -> None:
        self.run = run
        self.channel = context.Queue()
        self.process = context.Process(target=_child,
                                       args=(run, uri, interactive, self.channel, threads),
                                       name=f"orchestrator-{run.run_name}")
        self.run_id: str | None = None
        self.started = time.perf_counter()
        self.process.start()

    def poll(self, board: Any, timeout: float) -> RunOutcome | None:
        """Apply what the worker reported (waiting up to ``timeout`` for the first message);
        its outcome once it is done or dead."""
        while True:
            try:
                kind, payload = self.channel.get(timeout=timeout)
            except queue.Empty:
                if not self.process.is_alive():
                    return _died(self.process, self.run_id, self.run, self.started)
                return None
            timeout = 0.0
            if kind == "started":
                self.run_id = payload
            elif kind == "progress":
                if board is not None:
                    board.handle(id(self), payload)
            else:
                self.process.join()
                return payload

    def stop(self, exc: BaseException) -> RunOutcome:
        """Forward the stop to the worker (its run ends KILLED) and collect what it reports."""
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline:
            try:
                kind, payload = self.channel.get(timeout=0.5)
            except queue.Empty:
                if not self.process.is_alive():
                    break
                continue
            except KeyboardInterrupt:
                continue  # a second Ctrl-C while the worker cleans up
            if kind == "started":
                self.run_id = payload
            elif kind == "done":
                self.process.join(5)
                return payload
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        return _died(self.process, self.run_id, self.run, self.started, status="KILLED",
                     reason=f"stopped by {exc or 'interrupt'}")


def start_order(plan: list[PlannedRun], uri: str) -> list[int]:
    """The order in which to start the plan's runs (indices into ``plan``) when several go side
    by side: runs never finished before first, in plan order, then the others longest first by
    their last finished duration (same config digest, backend and seed), so that a long run
    does not start last and run alone at the end. Plan order if the store cannot tell."""
    from mlflow.exceptions import MlflowException

    try:
        durations = _last_durations(plan, uri)
    except MlflowException:
        durations = {}
    keys = [_run_key(run) for run in plan]
    unknown = [i for i, key in enumerate(keys) if key not in durations]
    known = sorted((i for i, key in enumerate(keys) if key in durations),
                   key=lambda i: -durations[keys[i]])
    return unknown + known


def _run_key(run: PlannedRun) -> tuple[str, str, str]:
    return run.experiment.digest, run.backend, str(run.seed)


def _last_durations(plan: list[PlannedRun], uri: str) -> dict[tuple[str, str, str], float]:
    """Seconds taken by the latest FINISHED run of each planned run's key, where there is one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    wanted = {_run_key(run) for run in plan}
    durations: dict[tuple[str, str, str], float] = {}
    for name in dict.fromkeys(run.experiment.name for run in plan):
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            continue
        runs = client.search_runs(
            [experiment.experiment_id],
            "tags.`orchestrator.kind` = 'run' AND attributes.status = 'FINISHED'",
            max_results=1000, order_by=["attributes.start_time DESC"])
        for r in runs:
            tags = r.data.tags
            key = (tags.get("orchestrator.config_digest"), tags.get("orchestrator.contract.backend"),
                   tags.get("orchestrator.seed"))
            if key in wanted and key not in durations and r.info.end_time:
                durations[key] = (r.info.end_time - r.info.start_time) / 1000
    return durations


def run_plan(plan: list[PlannedRun], uri: str, *, interactive: bool, jobs: int = 1,
             order: list[int] | None = None,
             report: Callable[[RunOutcome], None] = lambda outcome: None) -> list[RunOutcome]:
    """Run every planned run, each in its own process, up to ``jobs`` at a time, started in
    ``order`` (indices into ``plan``; default: plan order); returns the outcomes in plan order
    (those stopped KILLED, the ones never started missing, if the invocation was interrupted).
    ``report`` sees each outcome as it comes."""
    context = multiprocessing.get_context("spawn")
    jobs = max(1, min(jobs, len(plan) or 1))
    threads = max(1, len(os.sched_getaffinity(0)) // jobs) if jobs > 1 else None
    outcomes: dict[int, RunOutcome] = {}
    pending = [(index, plan[index]) for index in (order or range(len(plan)))][::-1]
    active: dict[int, _Worker] = {}
    board = ProgressBoard() if interactive else None
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with board if board is not None else contextlib.nullcontext():
            try:
                while pending or active:
                    while pending and len(active) < jobs:
                        index, run = pending.pop()
                        active[index] = _Worker(context, run, uri, interactive, threads)
                    wait = 0.5 / len(active)
                    for index, worker in list(active.items()):
                        outcome = worker.poll(board, wait)
                        if outcome is not None:
                            del active[index]
                            if board is not None:
                                board.close(id(worker))
                            outcomes[index] = outcome
                            report(outcome)
            except KeyboardInterrupt as exc:
                for worker in active.values():
                    if worker.process.is_alive():
                        worker.process.terminate()  # SIGTERM: the worker marks its run KILLED
                for index, worker in active.items():
                    outcomes[index] = worker.stop(exc)
                    report(outcomes[index])
    finally:
        signal.signal(signal.SIGTERM, previous)
    return [outcomes[index] for index in sorted(outcomes)]


def _died(process: Any, run_id: str | None, run: PlannedRun, started: float,
          status: str | None = None, reason: str | None = None) -> RunOutcome:
    """A worker that vanished without reporting: mark its run (if it had one) ourselves."""
    code = process.exitcode
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
                    jobs: int = 1,
                    report: Callable[[RunOutcome], None] = lambda outcome: None
                    ) -> list[RunOutcome]:
    """Check data, prepare the store, mark dead runs, run the plan."""
    from orchestrator.tracking.recovery import mark_dead_runs
    from orchestrator.tracking.store import ensure_store

    check_data(experiments)
    uri = ensure_store()
    mark_dead_runs(uri)
    plan = make_plan(experiments)
    order = start_order(plan, uri) if jobs > 1 else None
    outcomes = run_plan(plan, uri, interactive=interactive, jobs=jobs, order=order,
                        report=report)
    return outcomes
