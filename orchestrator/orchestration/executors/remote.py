"""What the remote executors (Ray, Slurm) share: the job a node runs for one planned run, the
tags that tie each attempt to its planned run, and the driver's book of attempts.

A node runs ``run_job``: the planned run through the same ``execute_run`` as a local worker,
tagged with the invocation, its index in the plan, the attempt and the node, and reporting
("started", run id) and ("progress", event) messages through a sink (a Ray queue, a file).
The driver keeps an ``Attempts`` book: when a run's node dies, the engine starts it again
(Ray retries the task, the driver resubmits the Slurm job); the new attempt is a new MLflow run,
and the dead attempt's run, left RUNNING, is marked KILLED as soon as the next attempt starts,
or when the engine gives up, or at the end (a sweep of the invocation's runs): every planned
run ends exactly once, and nothing is left RUNNING.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.orchestration.plan import PlannedRun
from orchestrator.orchestration.worker import RunOutcome

INVOCATION_TAG = "orchestrator.invocation"
INDEX_TAG = "orchestrator.plan_index"
ATTEMPT_TAG = "orchestrator.attempt"
NODE_TAG = "orchestrator.node"
EXECUTOR_TAG = "orchestrator.executor"
KILLED_REASON_TAG = "orchestrator.killed_reason"


@dataclass(frozen=True)
class RemoteJob:
    """One planned run as a node receives it."""

    run: PlannedRun
    uri: str
    index: int
    invocation: str
    executor: str
    digest: str | None
    threads: int | None


def jobs_for(plan: list[PlannedRun], uri: str, executor: str, digests: dict[int, str]
             ) -> list[RemoteJob]:
    invocation = uuid.uuid4().hex[:12]
    return [RemoteJob(run, uri, index, invocation, executor, digests.get(index),
                      max(1, int(run.experiment.resources.cpus)))
            for index, run in enumerate(plan)]


def run_job(job: RemoteJob, sink: Callable[[tuple], None], node: str) -> RunOutcome:
    """On the node: run ``job`` and return its outcome; messages ``(index, kind, payload)`` go
    to ``sink``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from orchestrator.orchestration.worker import execute_run

    tags = {INVOCATION_TAG: job.invocation, INDEX_TAG: str(job.index), NODE_TAG: node,
            EXECUTOR_TAG: job.executor, ATTEMPT_TAG: uuid.uuid4().hex[:8]}
    return execute_run(job.run, job.uri, threads=job.threads, expected_digest=job.digest,
                       display=lambda event: sink((job.index, "progress", event)),
                       on_start=lambda run_id: sink((job.index, "started", run_id)),
                       extra_tags=tags)


class Attempts:
    """The driver's book of the MLflow runs each planned run's attempts made."""

    def __init__(self, uri: str, invocation: str, board: Any = None) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(uri)
        self.invocation = invocation
        self.board = board
        self.runs: dict[int, list[str]] = {}
        self.started_at: dict[int, float] = {}

    def handle(self, message: tuple) -> None:
        """A message from a node: a run started (ending its dead predecessors), or progress."""
        index, kind, payload = message
        if kind == "started":
            self._end_others(index, keep=payload,
                             reason=f"its worker or node died; retried as run {payload}")
            self.runs.setdefault(index, []).append(payload)
            self.started_at.setdefault(index, time.perf_counter())
        elif kind == "progress" and self.board is not None:
            self.board.handle(index, payload)

    def finished(self, index: int, outcome: RunOutcome) -> RunOutcome:
        """The engine's last word on a planned run: no other attempt stays RUNNING."""
        self._end_others(index, keep=outcome.run_id,
                         reason=f"its worker or node died; ended as run {outcome.run_id}")
        if self.board is not None:
            self.board.close(index)
        return outcome

    def lost(self, run: PlannedRun, index: int, reason: str, status: str = "FAILED"
             ) -> RunOutcome:
        """The engine gave up on a planned run (every attempt died, or a stop): its attempts'
        runs end ``status`` (a run that had ended keeps its status)."""
        self._end_others(index, keep=None, reason=reason, status=status)
        if self.board is not None:
            self.board.close(index)
        ids = self.runs.get(index, [])
        seconds = time.perf_counter() - self.started_at.get(index, time.perf_counter())
        return RunOutcome(run.label, ids[-1] if ids else None, status, "", None, seconds,
                          reason)

    def sweep(self, reason: str) -> list[str]:
        """Mark KILLED every run of this invocation still RUNNING (attempts whose "started"
        never reached the driver)."""
        ended = []
        for experiment in self.client.search_experiments():
            for found in self.client.search_runs(
                    [experiment.experiment_id],
                    f"tags.`{INVOCATION_TAG}` = '{self.invocation}' AND "
                    "attributes.status = 'RUNNING'", max_results=1000):
                self._end(found.info.run_id, reason, "KILLED")
                ended.append(found.info.run_id)
        return ended

    def _end_others(self, index: int, keep: str | None, reason: str,
                    status: str = "KILLED") -> None:
        for run_id in self.runs.get(index, []):
            if run_id != keep:
                self._end(run_id, reason, status)

    def _end(self, run_id: str, reason: str, status: str) -> None:
        if self.client.get_run(run_id).info.status == "RUNNING":
            self.client.set_tag(run_id, KILLED_REASON_TAG if status == "KILLED"
                                else "orchestrator.error", reason)
            self.client.set_terminated(run_id, status)
