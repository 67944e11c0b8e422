"""Stops (SIGTERM, Ctrl-C) in a worker process: raised as KeyboardInterrupt between writes to the
tracking store or the Optuna storage, never inside one.

An interrupt raised in the middle of an SQLite write can leave that connection holding the
database lock: the interrupted worker then waits on its own lock when it marks its run KILLED,
and the runs beside it, which write to the same file, fail with "database is locked". So a
worker installs ``install()`` and makes its writes under ``shielded()``: a stop that arrives
during one is held, and raised as soon as the outermost shielded block is left.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

_depth = 0
_held: list[str] = []  # the name of a signal that came during a shielded block


def _stop(signum: int, _frame: Any) -> None:
    name = signal.Signals(signum).name
    if _depth:
        _held[:] = [name]
        return
    raise KeyboardInterrupt(f"received signal {name}")


def raise_held() -> None:
    """Raise the stop held so far, if any (a Ctrl-C from start-up, see ``install``)."""
    if _held:
        name = _held.pop()
        raise KeyboardInterrupt(f"received signal {name}")


def install() -> None:
    """SIGTERM and SIGINT raise KeyboardInterrupt, except inside ``shielded()``. A stop still
    held from before (start-up) is kept: ``raise_held`` or the next shielded block raises it."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    # A process started by ``isolation.quiet_start`` begins with SIGINT blocked; a Ctrl-C that
    # came before this point is pending. It becomes a held stop (raised where the next shielded
    # write ends), never a traceback from start-up code.
    if signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, ()):
        if signal.SIGINT in signal.sigpending():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # discards the pending one
            _held[:] = ["SIGINT"]
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, _stop)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold stops until the block is done (blocks nest; the outermost one raises)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth:
            raise_held()


class ShieldedClient:
    """An ``MlflowClient`` whose every call runs under ``shielded()``."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with shielded():
                return attribute(*args, **kwargs)

        return call


def stop_reason(exc: BaseException | None) -> str:
    """What stopped a run, for its ``killed_reason``: the signal's name, or Ctrl-C (a
    KeyboardInterrupt raised by Python's own handler carries no message)."""
    text = str(exc).strip() if exc is not None else ""
    return f"stopped by {text or 'Ctrl-C (SIGINT)'}"
