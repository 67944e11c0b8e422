"""The ``local`` executor: warm worker processes on this machine (``orchestration.pool``), and
tuning workers as processes of their own; what ``orchestrator run`` always did, the default."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any, ClassVar

from orchestrator.orchestration.executors.base import Executor
from orchestrator.orchestration.plan import PlannedRun
from orchestrator.orchestration.worker import RunOutcome


class LocalExecutor(Executor):
    name: ClassVar[str] = "local"
    remote: ClassVar[bool] = False

    def run_plan(self, plan: list[PlannedRun], uri: str, *, interactive: bool, jobs: int,
                 order: list[int] | None, digests: dict[int, str],
                 report: Callable[[RunOutcome], None]) -> list[RunOutcome]:
        from orchestrator.orchestration.parent import run_plan

        return run_plan(plan, uri, interactive=interactive, jobs=jobs, order=order,
                        report=report, digests=digests)

    def run_workers(self, target: Callable[..., Any], args: tuple, workers: int,
                    name: str) -> None:
        if workers <= 0:
            return
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=target, args=args, name=f"{name}-{i}")
                     for i in range(workers)]
        from orchestrator.orchestration.isolation import run_processes

        run_processes(processes)  # each cleans up (a tuning worker re-enqueues its trial)
