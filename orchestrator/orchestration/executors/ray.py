"""The ``ray`` executor: every planned run a Ray task in a fresh worker process
(``max_calls=1``), with the run's ``resources:`` (cpus, gpus, memory_gb); tuning workers as
Ray tasks too. Extra ``orchestrator[ray]``.

It joins the cluster at ``--address`` / ``executor.address`` / ``RAY_ADDRESS``, or starts a
local Ray instance. Before anything starts it checks that the address answers, that the
cluster's workers can import this project, and that some node has the resources each run asks
for. A node that dies under a run makes Ray run the task again (``retries``); the driver marks
the dead attempt's MLflow run KILLED (``remote.Attempts``). Progress reaches the driver's board
through a Ray queue.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any, ClassVar

from orchestrator.config.loader import ResolvedExperiment
from orchestrator.orchestration.executors.base import Executor, ExecutorError
from orchestrator.orchestration.executors.remote import Attempts, RemoteJob, jobs_for, run_job
from orchestrator.orchestration.plan import PlannedRun
from orchestrator.orchestration.progress import ProgressBoard
from orchestrator.orchestration.worker import RunOutcome
from orchestrator.tracking.interrupts import stop_reason

PROBE_SECONDS = 5.0
CANCEL_GRACE_SECONDS = 30.0
# defined by source, so that Ray ships it by value: a worker without this project runs it too
_PROBE_SOURCE = """
def probe():
    try:
        import orchestrator
    except ImportError as error:
        return f"missing: {error}"
    return orchestrator.__version__
"""


def _ray_job(job: RemoteJob, queue: Any) -> RunOutcome:
    """A Ray task: one planned run on whatever node Ray chose."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    return run_job(job, queue.put, node)


class RayExecutor(Executor):
    name: ClassVar[str] = "ray"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._connected = False

    # --- checks ------------------------------------------------------------------------------

    def check(self, experiments: list[ResolvedExperiment], uri: str) -> None:
        super().check(experiments, uri)
        self._connect()
        self._check_project_on_workers()
        self._check_resources(experiments)

    def _connect(self) -> None:
        if self._connected:
            return
        import ray

        address = self.settings.address or os.environ.get("RAY_ADDRESS") or None
        if address and address != "auto":
            _probe_address(address)
        with _quiet_stderr():
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False,
                         include_dashboard=False if address is None else None)
            except (ConnectionError, RuntimeError) as error:
                raise ExecutorError(f"executor ray: cannot join the Ray cluster at "
                                    f"{address or 'a local instance'}: "
                                    f"{str(error).splitlines()[0]}") from None
        self._connected = True

    def _check_project_on_workers(self) -> None:
        import ray

        namespace: dict[str, Any] = {}
        exec(_PROBE_SOURCE, namespace)  # noqa: S102  (our own constant source)
        probe = ray.remote(num_cpus=0, max_calls=1)(namespace["probe"])
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
                              ).remote() for node in nodes]
        for node, ref in zip(nodes, refs):
            try:
                answer = ray.get(ref, timeout=120)
            except ray.exceptions.RayError:  # a node dying as we ask: it will take no run
                continue
            if str(answer).startswith("missing"):
                raise ExecutorError(f"executor ray: the workers of node {node[:12]} cannot "
                                    f"import orchestrator ({answer}); install this project "
                                    f"(pip install 'orchestrator[ray]') on every node")

    def _check_resources(self, experiments: list[ResolvedExperiment]) -> None:
        import ray

        nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
        for exp in experiments:
            wanted = {"CPU": exp.resources.cpus, "GPU": exp.resources.gpus,
                      "memory": (exp.resources.memory_gb or 0) * 2**30}
            if any(all(node.get(k, 0) >= v for k, v in wanted.items() if v) for node in nodes):
                continue
            largest = {k: max((node.get(k, 0) for node in nodes), default=0) for k in wanted}
            raise ExecutorError(
                f"{exp.file}: resources: no node of the Ray cluster has cpus "
                f"{exp.resources.cpus:g}, gpus {exp.resources.gpus:g}, memory_gb "
                f"{exp.resources.memory_gb or 0:g} (the largest have {largest['CPU']:g} CPUs, "
                f"{largest['GPU']:g} GPUs, {largest['memory'] / 2**30:.1f} GB); ask for less "
                f"or add a larger node")

    # --- runs --------------------------------------------------------------------------------

    def run_plan(self, plan: list[PlannedRun], uri: str, *, interactive: bool, jobs: int,
                 order: list[int] | None, digests: dict[int, str],
                 report: Callable[[RunOutcome], None]) -> list[RunOutcome]:
        import ray
        from ray.util.queue import Queue

        self._connect()
        remote_jobs = jobs_for(plan, uri, self.name, digests)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # the queue of run messages lives on the driver's node: on any other node it would
        # die with that node and take the driver down with it (ActorUnavailableError)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                              soft=False)
        queue = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
        task = ray.remote(max_calls=1)(_ray_job)  # a fresh worker process for every run
        board = ProgressBoard() if interactive else None
        attempts = Attempts(uri, remote_jobs[0].invocation if remote_jobs else "", board)
        refs: dict[Any, int] = {}
        for index in order or range(len(plan)):
            resources = plan[index].experiment.resources
            options: dict[str, Any] = {"num_cpus": resources.cpus, "num_gpus": resources.gpus,
                                       "max_retries": self.settings.retries,
                                       "retry_exceptions": False}
            if resources.memory_gb:
                options["memory"] = int(resources.memory_gb * 2**30)
            refs[task.options(**options).remote(remote_jobs[index], queue)] = index
        outcomes: dict[int, RunOutcome] = {}
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            with board if board is not None else contextlib.nullcontext():
                try:
                    while refs:
                        ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                        _drain(queue, attempts)
                        for ref in ready:
                            index = refs.pop(ref)
                            outcomes[index] = self._outcome(ref, plan[index], index, attempts)
                            report(outcomes[index])
                except KeyboardInterrupt as exc:
                    for index, outcome in self._cancel(refs, plan, queue, attempts, exc).items():
                        outcomes[index] = outcome
                        report(outcome)
        finally:
            signal.signal(signal.SIGTERM, previous)
            attempts.sweep("its invocation ended while it was RUNNING (its worker was lost)")
            with contextlib.suppress(Exception):
                queue.shutdown()
        return [outcomes[index] for index in sorted(outcomes)]

    def _outcome(self, ref: Any, run: PlannedRun, index: int, attempts: Attempts
                 ) -> RunOutcome:
        import ray

        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayError as error:  # every attempt's worker or node died
            reason = f"lost on the Ray cluster: {str(error).splitlines()[0]}"
            return attempts.lost(run, index, reason[:500])
        return attempts.finished(index, outcome)

    def _cancel(self, refs: dict[Any, int], plan: list[PlannedRun], queue: Any,
                attempts: Attempts, exc: BaseException) -> dict[int, RunOutcome]:
        """A stop: ask every task to stop (KeyboardInterrupt inside it: its run ends KILLED),
        then force what is left and mark its runs KILLED."""
        import ray

        for ref in refs:
            ray.cancel(ref, force=False)
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        outcomes = {}
        while refs and time.monotonic() < deadline:
            with contextlib.suppress(KeyboardInterrupt):
                ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=1.0)
                _drain(queue, attempts)
                for ref in ready:
                    index = refs.pop(ref)
                    try:
                        outcome = attempts.finished(index, ray.get(ref))
                    except ray.exceptions.RayError:
                        outcome = attempts.lost(plan[index], index, stop_reason(exc),
                                                "KILLED")
                    outcomes[index] = outcome
        for ref, index in refs.items():
            ray.cancel(ref, force=True)
            outcomes[index] = attempts.lost(plan[index], index, stop_reason(exc), "KILLED")
        return outcomes

    # --- tuning workers ----------------------------------------------------------------------

    def run_workers(self, target: Callable[..., Any], args: tuple, workers: int,
                    name: str) -> None:
        import ray

        self._connect()
        exp = args[0]
        resources = getattr(exp, "resources", None)
        options: dict[str, Any] = {"max_retries": self.settings.retries,
                                   "num_cpus": resources.cpus if resources else 1}
        task = ray.remote(max_calls=1)(target).options(**options)
        refs = [task.remote(*args) for _ in range(workers)]
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                for ref in ready:
                    with contextlib.suppress(ray.exceptions.RayError):
                        ray.get(ref)  # a lost worker's trial is retried by the others
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=False)  # each fails and re-enqueues its trial
            with contextlib.suppress(Exception):
                ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_SECONDS)
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)

    def close(self) -> None:
        if self._connected:
            import ray

            ray.shutdown()
            self._connected = False


def _drain(queue: Any, attempts: Attempts) -> None:
    while not queue.empty():
        for message in queue.get_nowait_batch(queue.qsize()):
            attempts.handle(message)


def _probe_address(address: str) -> None:
    """A plain TCP connection to the head's port, so a wrong address fails in seconds."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), PROBE_SECONDS):
            return
    except (OSError, ValueError) as error:
        raise ExecutorError(f"executor ray: no Ray cluster answers at {address} ({error}); "
                            f"start one (`ray start --head`) or fix --address / "
                            f"RAY_ADDRESS") from None


@contextlib.contextmanager
def _quiet_stderr():
    """Ray's start-up notes on the terminal are noise for an `orchestrator run`."""
    yield


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)
