"""The parent of an invocation: check data, prepare the store, hand the planned runs to warm
worker processes, keep run statuses truthful under signals, and summarize.

Order of work, so that bad input never leaves a run behind: configs are validated (by the caller),
then every experiment's data is loaded and checked here, and only then is the MLflow store
touched. Runs go up to ``jobs`` side by side, each in a worker process of its backend that takes
run after run (``orchestration.pool``), the longest known first (see ``start_order``). SIGTERM
and Ctrl-C stop the runs under way (each worker marks its run KILLED), keep the runs already
completed, and skip the rest.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.config.loader import ResolvedExperiment
from orchestrator.orchestration.pool import WarmWorker
from orchestrator.orchestration.worker import RunOutcome
from orchestrator.orchestration.plan import PlannedRun, make_plan
from orchestrator.orchestration.progress import ProgressBoard

GRACE_SECONDS = 60.0
JOBS_ENV = "ORCHESTRATOR_JOBS"
MAX_DEFAULT_JOBS = 4
RUNS_PER_WORKER_ENV = "ORCHESTRATOR_RUNS_PER_WORKER"


def check_data(experiments: list[ResolvedExperiment]) -> dict[tuple, str]:
    """Load every experiment's data once (filling the cache the workers read); raises
    ``DataError`` before any run exists. Returns each data set's digest by ``data_key``."""
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.data.errors import DataError

    tasks = plugin_manager.tasks()
    digests: dict[tuple, str] = {}
    for exp in experiments:
        for seed in exp.seeds:
            key = data_key(exp, seed)
            if key in digests:
                continue
            try:
                prepared = tasks.get(exp.task)().prepare(exp.data, seed=seed, folds=exp.folds)
            except DataError as exc:  # name the experiment file too
                raise DataError(f"{exp.file}: {exc}") from None
            digests[key] = prepared.digest
    return digests


def data_key(exp: ResolvedExperiment, seed: int) -> tuple:
    """What determines a run's data set (options as JSON: a list-valued option must not make
    the key unhashable)."""
    return exp.task, exp.data.model_dump_json(), seed, exp.folds


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


class _Interrupted(KeyboardInterrupt):
    pass


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise _Interrupted(signal.Signals(signum).name)


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


def run_threads(cores: int, jobs: int, busy: list[int | None], waiting: bool) -> int | None:
    """Compute threads for a run starting now (``Resources.threads``): None with one job (the
    backend's own default); cores / jobs while other runs wait to start; once none waits, every
    core the runs under way (``busy``: their threads) do not hold, at least the share. So the
    last run of an invocation that starts alone gets the whole machine; a run already under way
    keeps what it started with (TensorFlow cannot resize its pools)."""
    if jobs <= 1:
        return None
    share = max(1, cores // jobs)
    if waiting:
        return share
    return max(share, cores - sum(share if t is None else t for t in busy))


def run_plan(plan: list[PlannedRun], uri: str, *, interactive: bool, jobs: int = 1,
             order: list[int] | None = None,
             report: Callable[[RunOutcome], None] = lambda outcome: None,
             runs_per_worker: int | None = None,
             digests: dict[int, str] | None = None) -> list[RunOutcome]:
    """Run every planned run in warm worker processes (``orchestration.pool``), up to ``jobs``
    at a time, started in ``order`` (indices into ``plan``; default: plan order); returns the
    outcomes in plan order (those stopped KILLED, the ones never started missing, if the
    invocation was interrupted). ``report`` sees each outcome as it comes. ``runs_per_worker``
    caps the runs one process takes (default: ``ORCHESTRATOR_RUNS_PER_WORKER``, else no cap;
    1: a fresh process per run, as before warm workers). ``digests[i]``: the data set digest
    run ``i`` must find (``check_data``)."""
    context = multiprocessing.get_context("spawn")
    jobs = max(1, min(jobs, len(plan) or 1))
    cores = len(os.sched_getaffinity(0))
    held: dict[int, int | None] = {}  # threads of the runs under way
    if runs_per_worker is None:
        runs_per_worker = runs_per_worker_default()
    outcomes: dict[int, RunOutcome] = {}
    pending = [(index, plan[index]) for index in (order or range(len(plan)))][::-1]
    busy: dict[int, WarmWorker] = {}
    idle: list[WarmWorker] = []
    started = [0]
    board = ProgressBoard() if interactive else None

    def worker_for(backend: str, threads: int | None) -> WarmWorker:
        # a worker's framework may fix its thread pools at its first run (TensorFlow does):
        # only a worker sized like this run takes it
        for worker in idle:
            if worker.backend == backend and worker.threads == threads and worker.alive():
                idle.remove(worker)
                return worker
        # keep at most one idle worker beside the busy ones: retire the longest idle
        while idle and len(idle) + len(busy) > jobs:
            idle.pop(0).close()
        started[0] += 1
        return WarmWorker(context, backend, uri, interactive, threads, started[0])

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with board if board is not None else contextlib.nullcontext():
            try:
                while pending or busy:
                    while pending and len(busy) < jobs:
                        index, run = pending.pop()
                        threads = run_threads(cores, jobs, list(held.values()), bool(pending))
                        held[index] = threads
                        busy[index] = worker_for(run.backend, threads)
                        busy[index].take(run, threads, (digests or {}).get(index))
                    wait = 0.5 / len(busy)
                    for index, worker in list(busy.items()):
                        outcome = worker.poll(board, index, wait)
                        if outcome is None:
                            continue
                        del busy[index]
                        held.pop(index, None)
                        if board is not None:
                            board.close(index)
                        if worker.alive() and worker.runs_taken < (runs_per_worker or 1 << 62):
                            idle.append(worker)
                        else:
                            worker.close()
                        outcomes[index] = outcome
                        report(outcome)
            except KeyboardInterrupt as exc:
                for worker in [*busy.values(), *idle]:
                    if worker.alive():
                        worker.process.terminate()  # SIGTERM: the worker marks its run KILLED
                for index, worker in busy.items():
                    outcome = worker.stop(exc, GRACE_SECONDS)
                    if outcome is not None:
                        outcomes[index] = outcome
                        report(outcome)
                for worker in idle:
                    worker.stop(exc, GRACE_SECONDS)
                idle.clear()
    finally:
        for worker in idle:
            worker.close()
        signal.signal(signal.SIGTERM, previous)
    return [outcomes[index] for index in sorted(outcomes)]


@dataclass(frozen=True)
class Schedule:
    """How well an invocation used its jobs: its wall time against the ideal (the sum of its
    runs' times divided by the jobs, or the longest run if that is longer), and the median
    fixed cost of its runs (``system/overhead_seconds``)."""

    wall_seconds: float
    ideal_seconds: float
    jobs: int
    median_overhead: float | None = None

    @classmethod
    def of(cls, outcomes: list[RunOutcome], jobs: int, wall_seconds: float) -> Schedule:
        import statistics

        times = [o.seconds for o in outcomes]
        ideal = max(sum(times) / max(jobs, 1), max(times, default=0.0))
        overheads = [o.overhead for o in outcomes if o.overhead is not None]
        return cls(wall_seconds, ideal, jobs,
                   statistics.median(overheads) if overheads else None)

    @property
    def ratio(self) -> float:
        return self.wall_seconds / self.ideal_seconds if self.ideal_seconds > 0 else float("nan")

    def line(self) -> str:
        text = (f"wall time {self.wall_seconds:.1f} s, ideal {self.ideal_seconds:.1f} s (the "
                f"runs' times over {self.jobs} job(s), or the longest run): {self.ratio:.2f} x")
        if self.median_overhead is not None:
            text += f"; fixed cost per run (median) {self.median_overhead:.2f} s"
        return text

    def metrics(self) -> dict[str, float]:
        found = {"schedule/wall_seconds": self.wall_seconds,
                 "schedule/ideal_seconds": self.ideal_seconds,
                 "schedule/wall_over_ideal": self.ratio, "schedule/jobs": float(self.jobs)}
        if self.median_overhead is not None:
            found["schedule/median_overhead_seconds"] = self.median_overhead
        return found


def runs_per_worker_default() -> int | None:
    """``ORCHESTRATOR_RUNS_PER_WORKER``: the most runs one worker process takes (1: a fresh
    process per run); unset: no limit."""
    text = os.environ.get(RUNS_PER_WORKER_ENV, "").strip()
    if not text:
        return None
    try:
        return parse_jobs(text)
    except ValueError as error:
        raise ValueError(f"{RUNS_PER_WORKER_ENV} {error}") from None


def run_experiments(experiments: list[ResolvedExperiment], *, interactive: bool,
                    jobs: int = 1,
                    report: Callable[[RunOutcome], None] = lambda outcome: None,
                    executor: Any = None) -> list[RunOutcome]:
    """Check the executor (default: local), check data, prepare the store, mark dead runs, run
    the plan with the executor."""
    from orchestrator.orchestration.executors.base import ExecutorSettings, load_executor
    from orchestrator.tracking.recovery import mark_dead_runs
    from orchestrator.tracking.store import ensure_store, experiment_id, tracking_uri

    executor = executor or load_executor(ExecutorSettings())
    try:
        executor.check(experiments, tracking_uri())  # before data and store: nothing touched
        digests = check_data(experiments)
        uri = ensure_store()
        mark_dead_runs(uri)
        for name in sorted({e.name for e in experiments}):  # a store that takes no write
            experiment_id(name, uri)                          # fails here, before any run
        plan = make_plan(experiments)
        order = start_order(plan, uri) if jobs > 1 or executor.remote else None
        expected = {i: digests[data_key(run.experiment, run.seed)] for i, run in enumerate(plan)}
        return executor.run_plan(plan, uri, interactive=interactive, jobs=jobs, order=order,
                                 digests=expected, report=report)
    finally:
        executor.close()
