"""Run a function in a fresh process, one per backend run.

Frameworks do not always coexist in one process (a CUDA build of torch can segfault when its
lazy import of triton follows a TensorFlow import), and a crashed framework must not take the
orchestrator down. ``run_isolated`` spawns a clean interpreter (``spawn``, never ``fork``: forked
framework thread pools deadlock), runs ``fn`` there and returns its result or re-raises its error.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")


class IsolatedProcessDied(RuntimeError):
    """The child process died without returning (a segfault, the OOM killer, SIGKILL)."""


def run_processes(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """Start ``processes`` and wait for all of them. SIGTERM stops them as Ctrl-C does: each is
    terminated (its own handler marks its run KILLED or re-enqueues its trial), given 60 s,
    then killed; the interrupt is re-raised."""
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        with quiet_start():  # no traceback from a Ctrl-C while a child imports
            for process in processes:
                process.start()
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(60)
            if process.is_alive():
                process.kill()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sigterm_as_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_isolated(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a new process; ``fn`` must be importable (module level)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            with quiet_start():
                future = pool.submit(fn, *args, **kwargs)
            return future.result()
        except BrokenProcessPool as exc:
            raise IsolatedProcessDied(
                f"the process running {getattr(fn, '__name__', fn)} died unexpectedly") from exc


@contextlib.contextmanager
def quiet_start() -> Iterator[None]:
    """Start child processes with Ctrl-C held back until they install their own handlers: a
    spawned child imports its modules before its target runs, and a Ctrl-C in that window printed
    a KeyboardInterrupt traceback from multiprocessing's bootstrap. SIGINT is blocked, not
    ignored: the child inherits the blocked signal across the exec and takes a pending Ctrl-C
    as a held stop in ``interrupts.install``; this process gets its Ctrl-C as soon as the block
    ends (ignoring it here lost a Ctrl-C that came while a worker started)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # The mask is read first, and blocked inside the try: pthread_sigmask runs pending signal
    # handlers when it returns, and one that raises there (SIGTERM as KeyboardInterrupt) must
    # not leave SIGINT blocked in this process and in every child it starts from then on.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
