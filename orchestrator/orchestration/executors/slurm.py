"""The ``slurm`` executor: every planned run a Slurm job through submitit (extra
``orchestrator[slurm]``), with the run's ``resources:`` and the partition and time limit from
``executor:`` or the command line; tuning workers as jobs too.

Jobs and their logs live under ``executor.folder`` (default ``mlruns/slurm``, on the shared file
system a Slurm cluster has; made readable by its owner only when it is created: the pickled jobs
carry the tracking and storage URLs); each attempt writes its messages (run started, progress)
to a file there, which the driver reads for its board. A job that dies without an outcome (its
node died, it was killed) is submitted again, up to ``retries`` times, as Slurm's requeue would;
the dead attempt's MLflow run is marked KILLED (``remote.Attempts``). Ctrl-C or SIGTERM cancels
the jobs (SIGINT to each: its run ends KILLED). ``cluster: local`` runs the jobs as processes of
this machine (submitit's local executor, what the tests use where there is no Slurm).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from orchestrator.orchestration.executors.base import Executor, ExecutorError
from orchestrator.orchestration.executors.remote import Attempts, RemoteJob, jobs_for, run_job
from orchestrator.orchestration.plan import PlannedRun
from orchestrator.orchestration.progress import ProgressBoard
from orchestrator.orchestration.worker import RunOutcome
from orchestrator.tracking.interrupts import stop_reason

CANCEL_GRACE_SECONDS = 30.0


class _FileSink:
    """Messages of one attempt, one JSON line each, in a file the driver reads."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, message: tuple) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(message) + "\n")


def _slurm_job(job: RemoteJob, events: str) -> RunOutcome:
    """A submitit job: one planned run on the node Slurm chose."""
    import socket

    import submitit

    try:
        node = f"{socket.gethostname()}:{submitit.JobEnvironment().job_id}"
    except RuntimeError:
        node = socket.gethostname()
    return run_job(job, _FileSink(events), node)


class SlurmExecutor(Executor):
    name: ClassVar[str] = "slurm"

    def _executor(self, resources: Any, name: str) -> Any:
        import submitit

        from orchestrator.tracking.store import mlruns_root

        folder = Path(self.settings.folder or mlruns_root() / "slurm")
        if not folder.exists():  # a folder that exists is the user's to set up; leave it as is
            # the pickled jobs carry the tracking and Optuna storage URLs, passwords included
            folder.mkdir(parents=True, mode=0o700)
        try:
            executor = submitit.AutoExecutor(folder=folder / "%j", cluster=self.settings.cluster)
        except RuntimeError as error:  # no sbatch here
            raise ExecutorError(f"executor slurm: {error}") from None
        parameters: dict[str, Any] = {
            "name": name, "timeout_min": self.settings.time_minutes or 60,
            "cpus_per_task": max(1, int(resources.cpus)), "nodes": 1, "tasks_per_node": 1}
        if resources.gpus:
            parameters["gpus_per_node"] = int(resources.gpus)
        if resources.memory_gb:
            parameters["mem_gb"] = resources.memory_gb
        if self.settings.partition:
            parameters["slurm_partition"] = self.settings.partition
        executor.update_parameters(**parameters)
        return executor, folder

    def run_plan(self, plan: list[PlannedRun], uri: str, *, interactive: bool, jobs: int,
                 order: list[int] | None, digests: dict[int, str],
                 report: Callable[[RunOutcome], None]) -> list[RunOutcome]:
        import contextlib

        remote_jobs = jobs_for(plan, uri, self.name, digests)
        board = ProgressBoard() if interactive else None
        attempts = Attempts(uri, remote_jobs[0].invocation if remote_jobs else "", board)
        submitted: dict[int, tuple[Any, _Tail]] = {}
        tries: dict[int, int] = {}

        def submit(index: int) -> None:
            executor, folder = self._executor(plan[index].experiment.resources,
                                              f"orchestrator-{plan[index].run_name}")
            tries[index] = tries.get(index, 0) + 1
            events = folder / f"events-{remote_jobs[index].invocation}-{index}-{tries[index]}"
            job = executor.submit(_slurm_job, remote_jobs[index], str(events))
            submitted[index] = (job, _Tail(events))

        for index in order or range(len(plan)):
            submit(index)
        outcomes: dict[int, RunOutcome] = {}
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            with board if board is not None else contextlib.nullcontext():
                try:
                    while submitted:
                        time.sleep(0.5)
                        for index, (job, tail) in list(submitted.items()):
                            tail.read(attempts)
                            if not job.done():
                                continue
                            del submitted[index]
                            outcome = _result(job)
                            tail.read(attempts)
                            if outcome is not None:
                                outcomes[index] = attempts.finished(index, outcome)
                            elif tries[index] <= self.settings.retries:
                                submit(index)  # the job died: requeue it as a new attempt
                                continue
                            else:
                                outcomes[index] = attempts.lost(
                                    plan[index], index, f"job {job.job_id} died "
                                    f"{tries[index]} time(s) without an outcome")
                            report(outcomes[index])
                except KeyboardInterrupt as exc:
                    for index, outcome in self._cancel(submitted, plan, attempts, exc).items():
                        outcomes[index] = outcome
                        report(outcome)
        finally:
            signal.signal(signal.SIGTERM, previous)
            attempts.sweep("its invocation ended while it was RUNNING (its job was lost)")
        return [outcomes[index] for index in sorted(outcomes)]

    def _cancel(self, submitted: dict[int, tuple[Any, _Tail]], plan: list[PlannedRun],
                attempts: Attempts, exc: BaseException) -> dict[int, RunOutcome]:
        for job, _ in submitted.values():
            job.cancel(check=False)  # SIGINT (local) / scancel: the run ends KILLED
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        outcomes = {}
        while submitted and time.monotonic() < deadline:
            time.sleep(0.5)
            for index, (job, tail) in list(submitted.items()):
                tail.read(attempts)
                if job.done():
                    del submitted[index]
                    outcome = _result(job)
                    outcomes[index] = (attempts.finished(index, outcome) if outcome else
                                       attempts.lost(plan[index], index, stop_reason(exc),
                                                     "KILLED"))
        for index in submitted:
            outcomes[index] = attempts.lost(plan[index], index, stop_reason(exc), "KILLED")
        return outcomes

    def run_workers(self, target: Callable[..., Any], args: tuple, workers: int,
                    name: str) -> None:
        exp = args[0]
        executor, _ = self._executor(exp.resources, name)
        jobs = [executor.submit(target, *args) for _ in range(workers)]
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            while not all(job.done() for job in jobs):
                time.sleep(0.5)  # a dead worker's trial is retried by the others
        except KeyboardInterrupt:
            for job in jobs:
                job.cancel(check=False)  # each fails and re-enqueues its trial
            deadline = time.monotonic() + CANCEL_GRACE_SECONDS
            while time.monotonic() < deadline and not all(job.done() for job in jobs):
                time.sleep(0.5)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)


class _Tail:
    """Reads the new lines of an attempt's message file."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def read(self, attempts: Attempts) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                handle.seek(self.offset)
                text = handle.read()
        except FileNotFoundError:
            return
        complete = text[:text.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            index, kind, payload = json.loads(line)
            attempts.handle((index, kind, tuple(payload) if kind == "progress" else payload))


def _result(job: Any) -> RunOutcome | None:
    """The job's outcome, or None if it died without one."""
    try:
        return job.result()
    except Exception:  # noqa: BLE001  (UncompletedJobError, FailedJobError: the job died)
        return None


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)
