"""Ports for the tests that start real servers or need a port that nobody serves.

A port chosen by binding port 0 and closing the socket can be taken by another process before
the server binds it. So: a port that must refuse connections stays held (bound, never
listening) for as long as the test needs it, and a server is started through ``serve``, which
starts it again on another port if it exits before it is ready (its port was taken)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections until the block ends: bound here and never
    listening, so no other process can take it meanwhile."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(start: Callable[[int], subprocess.Popen], ready: Callable[[int], bool], *,
          timeout: float, what: str, tries: int = 3,
          log: Callable[[], str] = lambda: "") -> tuple[subprocess.Popen, int]:
    """``start(port)`` on an unused port until ``ready(port)``, within ``timeout`` seconds in
    all; a server that exits before it is ready is started again on another port (``tries`` in
    all). The running process and its port; ``what`` and ``log()`` explain a failure."""
    deadline = time.monotonic() + timeout
    exits = []
    for _ in range(tries):
        port = _unused_port()
        process = start(port)
        while process.poll() is None:
            if ready(port):
                return process, port
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise AssertionError(f"{what}: not ready within {timeout:.0f} s\n{log()}")
            time.sleep(0.3)
        exits.append(f"port {port}: exit {process.returncode}")
    raise AssertionError(f"{what}: exited before it was ready ({'; '.join(exits)})\n{log()}")


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 within 2 s."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
