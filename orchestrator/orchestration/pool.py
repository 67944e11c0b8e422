"""Warm worker processes: one backend each, started once and given run after run.

A run's fixed cost used to be mostly the start of its process (the interpreter, the framework,
MLflow, matplotlib: 5-10 s). A ``WarmWorker`` pays that once: its process imports one backend's
framework and the tracking code (``worker.warm_up``), then takes planned runs from its inbox one
at a time and reports on its outbox, exactly as a one-run process did ("started", "progress",
"done"). Each run is still isolated: ``execute_run`` seeds it afresh, builds a fresh model,
constructs a fresh backend (which applies the run's thread share) and asks the backend to clear
the framework state a previous run left (``Backend.reset_state``: Keras' session...).

One framework per process: a worker serves ONE backend (a CUDA torch can crash when it follows
TensorFlow in an interpreter). A crash costs only its run: the parent sees the process gone,
marks the run FAILED and starts a new worker for the next run. A stop (SIGTERM, Ctrl-C) ends the
run under way KILLED and the worker with it; an idle worker just exits.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from typing import Any

from orchestrator.orchestration.plan import PlannedRun
from orchestrator.orchestration.worker import RunOutcome
from orchestrator.tracking.interrupts import stop_reason

READY, STARTED, PROGRESS, DONE, STOPPED = "ready", "started", "progress", "done", "stopped"


def serve(backend: str, uri: str, interactive: bool, threads: int | None, inbox: Any,
          outbox: Any) -> None:
    """The worker process: warm up, then run what the inbox brings until it brings None, a stop
    arrives, or a run ends KILLED (the stop was meant for the whole invocation)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    from orchestrator.orchestration.worker import die_with_parent, execute_run, warm_up
    from orchestrator.tracking import interrupts

    from orchestrator.redaction import redact_stderr

    redact_stderr()  # a traceback or a library's warning here may echo the tracking URI
    die_with_parent()
    interrupts.install()  # a stop while idle or warming up: KeyboardInterrupt, then exit
    try:
        warm_up(backend, uri, threads)
        interrupts.raise_held()  # a Ctrl-C that came while this process started: no run
        outbox.put((READY, os.getpid()))
        while True:
            message = inbox.get()
            if message is None:
                return
            run, run_threads, digest = message

            def display(event: Any) -> None:
                outbox.put((PROGRESS, event))

            outcome = execute_run(run, uri, threads=run_threads, expected_digest=digest,
                                  display=display if interactive else False,
                                  on_start=lambda run_id: outbox.put((STARTED, run_id)))
            outbox.put((DONE, outcome))
            if outcome.status == "KILLED":
                return
            _tidy()
    except KeyboardInterrupt as exc:
        # a stop while warming up or idle: the invocation's, so say so (the parent stops
        # every run, even if its own copy of the Ctrl-C never reached it)
        outbox.put((STOPPED, str(exc)))
        return


def _tidy() -> None:
    """What a run may leave in the interpreter itself: open figures, garbage."""
    import gc
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
    gc.collect()


def died(process: Any, run_id: str | None, run: PlannedRun, started: float,
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


class WarmWorker:
    """The parent's handle on one worker process of ``backend``, sized for ``threads``."""

    def __init__(self, context: Any, backend: str, uri: str, interactive: bool,
                 threads: int | None, number: int) -> None:
        self.backend, self.threads = backend, threads
        self.inbox, self.outbox = context.SimpleQueue(), context.Queue()
        self.process = context.Process(target=serve, name=f"orchestrator-{backend}-{number}",
                                       args=(backend, uri, interactive, threads, self.inbox,
                                             self.outbox))
        from orchestrator.orchestration.isolation import quiet_start

        with quiet_start():  # no traceback from a Ctrl-C while the child imports
            self.process.start()
        self.run: PlannedRun | None = None
        self.run_id: str | None = None
        self.started = 0.0
        self.runs_taken = 0
        self.idle_since = time.monotonic()

    def take(self, run: PlannedRun, threads: int | None, digest: str | None = None) -> None:
        """Hand the worker its next run (``digest``: the data set digest it must find)."""
        self.run, self.run_id, self.started = run, None, time.perf_counter()
        self.runs_taken += 1
        self.inbox.put((run, threads, digest))

    def alive(self) -> bool:
        return self.process.is_alive()

    def poll(self, board: Any, key: Any, timeout: float) -> RunOutcome | None:
        """Apply what the worker reported (waiting up to ``timeout`` for the first message);
        the run's outcome once it is done, or once the process has died without one."""
        while True:
            try:
                kind, payload = self.outbox.get(timeout=timeout)
            except queue.Empty:
                if not self.process.is_alive():
                    return self._finish(died(self.process, self.run_id, self.run, self.started))
                return None
            timeout = 0.0
            if kind == STARTED:
                self.run_id = payload
            elif kind == PROGRESS:
                if board is not None:
                    board.handle(key, payload)
            elif kind == DONE:
                return self._finish(payload)
            elif kind == STOPPED:
                raise KeyboardInterrupt(payload)

    def _finish(self, outcome: RunOutcome) -> RunOutcome:
        self.run, self.idle_since = None, time.monotonic()
        if outcome.status == "KILLED":  # the worker exits after a stop
            self.process.join(5)
        return outcome

    def stop(self, exc: BaseException, grace: float) -> RunOutcome | None:
        """After SIGTERM: collect the KILLED outcome of the run under way (None if idle), then
        make sure the process is gone."""
        outcome = None
        deadline = time.monotonic() + grace
        while self.run is not None and time.monotonic() < deadline:
            try:
                kind, payload = self.outbox.get(timeout=0.5)
            except queue.Empty:
                if not self.process.is_alive():
                    break
                continue
            except KeyboardInterrupt:
                continue  # a second Ctrl-C while the worker cleans up
            if kind == STARTED:
                self.run_id = payload
            elif kind == DONE:
                outcome = payload
                self.run = None
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        if self.run is not None:
            outcome = died(self.process, self.run_id, self.run, self.started, status="KILLED",
                           reason=stop_reason(exc))
            self.run = None
        return outcome

    def close(self) -> None:
        """No more runs: let the process end (it is idle)."""
        if self.process.is_alive():
            try:
                self.inbox.put(None)
            except (OSError, ValueError):
                pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
