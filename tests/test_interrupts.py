"""A stop in a worker is held during a store write and raised right after it (an interrupted
SQLite write can keep the database locked for the runs beside it)."""

from __future__ import annotations

import os
import signal

import pytest

from orchestrator.tracking import interrupts


@pytest.fixture
def installed():
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    interrupts.install()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_a_stop_outside_a_write_is_raised_at_once(installed) -> None:
    with pytest.raises(KeyboardInterrupt, match="received signal SIGTERM"):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next line
        pytest.fail("not interrupted")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_during_a_write_waits_for_the_outermost_block(installed, signum) -> None:
    done = []
    with pytest.raises(KeyboardInterrupt, match=signal.Signals(signum).name):
        with interrupts.shielded():
            with interrupts.shielded():
                os.kill(os.getpid(), signum)
                done.append("inner write")
            done.append("outer write")  # the inner block's end did not raise
        done.append("after")  # never reached
    assert done == ["inner write", "outer write"]
    with interrupts.shielded():  # nothing held any more
        done.append("next write")
    assert done[-1] == "next write"


def test_shielded_client_passes_calls_and_attributes_through(installed) -> None:
    class Client:
        uri = "sqlite:///x.db"

        def write(self, value: int) -> int:
            os.kill(os.getpid(), signal.SIGTERM)
            return value + 1

    client = interrupts.ShieldedClient(Client())
    assert client.uri == "sqlite:///x.db"
    with pytest.raises(KeyboardInterrupt) as caught:
        client.write(1)
    # raised after the call returned: the traceback ends in shielded(), not in write()
    assert caught.traceback[-1].name == "shielded"
