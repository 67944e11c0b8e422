"""What an executor is: the place an invocation's runs and tuning workers run, behind one small
interface, chosen by ``--executor`` or ``executor:`` (``orchestrator_add_executors`` registers
them).

Every executor keeps the same promises as the local one: every planned run ends exactly once
with a truthful status (FINISHED, FAILED with its error, KILLED), a stop (Ctrl-C, SIGTERM)
ends the runs under way KILLED, and bad input is refused before anything starts, with one line
(``ExecutorError``, exit status 2).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from orchestrator.config.loader import ResolvedExperiment
from orchestrator.orchestration.plan import PlannedRun
from orchestrator.orchestration.worker import RunOutcome


class ExecutorError(ValueError):
    """An executor cannot run this invocation (unreachable cluster, impossible resources, a
    tracking store the nodes cannot share): one line that says what to do."""


@dataclass(frozen=True)
class ExecutorSettings:
    """The executor's options: from ``executor:`` in the files, overridden by the command line."""

    name: str = "local"
    address: str | None = None  # ray
    partition: str | None = None  # slurm
    time_minutes: int | None = None  # slurm
    retries: int = 2  # new attempts of a run whose node died
    folder: str | None = None  # slurm: where submitit keeps jobs and logs
    cluster: str | None = None  # slurm: "local" runs the jobs as local processes (tests)


class Executor(ABC):
    """Runs planned runs (and tuning workers) somewhere. ``remote`` executors run them on other
    machines: the tracking store and the Optuna storage must then be servers every node
    reaches (checked by ``check``)."""

    name: ClassVar[str]
    remote: ClassVar[bool] = True

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings

    def check(self, experiments: list[ResolvedExperiment], uri: str) -> None:
        """Refuse what cannot work, before any run exists: raise ``ExecutorError``."""
        if self.remote:
            from orchestrator.orchestration.executors.sharing import check_shared_tracking

            check_shared_tracking(self.name, uri)

    @abstractmethod
    def run_plan(self, plan: list[PlannedRun], uri: str, *, interactive: bool, jobs: int,
                 order: list[int] | None, digests: dict[int, str],
                 report: Callable[[RunOutcome], None]) -> list[RunOutcome]:
        """Run every planned run once (retrying runs whose node died as new runs); outcomes in
        plan order. ``digests[i]`` is the data set digest run ``i`` must find on its node."""

    @abstractmethod
    def run_workers(self, target: Callable[..., Any], args: tuple, workers: int,
                    name: str) -> None:
        """Run ``workers`` copies of ``target(*args)`` (a module-level function: tuning
        workers that pull trials from a shared Optuna storage) until each returns. A stop
        (KeyboardInterrupt here) stops them, each given the chance to clean up; then raise."""

    def close(self) -> None:
        """Release the cluster connection."""


def load_executor(settings: ExecutorSettings) -> Executor:
    """The registered executor named in ``settings``; ``ExecutorError`` for an unknown name or
    one whose package is not installed."""
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.plugins.registry import RegistryError

    registry = plugin_manager.executors()
    try:
        info = registry.info(settings.name)
    except RegistryError as error:
        raise ExecutorError(f"executor: {error}") from None
    missing = [dist for dist, version in info.versions().items() if version is None]
    if missing:
        raise ExecutorError(f"executor {settings.name!r} needs {', '.join(missing)}: "
                            f"pip install 'orchestrator[{settings.name}]'")
    return registry.executor_class(settings.name)(settings)


def settings_for(experiments: list[ResolvedExperiment], **command_line: Any) -> ExecutorSettings:
    """The invocation's executor settings: the files' ``executor:`` sections (which must agree),
    then the command line's options where given."""
    from orchestrator.config.loader import ConfigError

    sections = {e.file: e.executor for e in experiments if e.executor is not None}
    chosen = None
    for file, section in sections.items():
        if chosen is not None and section != chosen[1]:
            raise ConfigError(file, "executor", f"differs from {chosen[0]}'s; one invocation "
                                                "uses one executor")
        chosen = (file, section)
    values: dict[str, Any] = chosen[1].model_dump() if chosen else {}
    values.update({k: v for k, v in command_line.items() if v is not None})
    return ExecutorSettings(**values)
