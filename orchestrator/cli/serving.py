"""Running an MLflow server as a child: the store through the environment, a free port checked
first, and the whole process group stopped with the command.

The backend store URI goes to ``mlflow server`` as ``MLFLOW_BACKEND_STORE_URI`` (MLflow hands it
on to its uvicorn workers through the environment too), never as an argument: arguments are
visible to every user in ``ps``. The server runs in a process group of its own; Ctrl-C, SIGTERM
or SIGHUP on this command stops the group (SIGTERM, then SIGKILL after 10 s), so no uvicorn
worker is left serving.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys

STOP_GRACE_S = 10.0


class PortError(ValueError):
    """The port is out of range or taken."""


def check_port(host: str, port: int) -> None:
    """A one-line error unless ``port`` is valid and free on ``host``."""
    if not 1 <= port <= 65535:
        raise PortError(f"--port {port} is out of range; give a port from 1 to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortError(f"port {port} on {host} is already in use; stop what listens "
                                f"there or choose another with --port") from None
            if error.errno == errno.EACCES:
                raise PortError(f"port {port} on {host} needs privileges; choose a port "
                                f"above 1023 with --port") from None
            raise PortError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def serve(args: list[str], store_uri: str, extra_env: dict[str, str] | None = None) -> int:
    """Run ``mlflow server ARGS`` against ``store_uri`` until it ends or this command is
    stopped; returns its exit status (0 when stopped by a signal or Ctrl-C)."""
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": store_uri,
           # MLflow's background job runner (GenAI jobs) starts a dozen processes we never use
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(extra_env or {})}
    child = subprocess.Popen([sys.executable, "-m", "mlflow", "server", *args], env=env,
                             start_new_session=True)
    stopped: list[int] = []

    def on_signal(signum, _frame):
        stopped.append(signum)
        _stop_group(child)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        code = child.wait()
    except KeyboardInterrupt:
        stopped.append(signal.SIGINT)
    finally:
        _stop_group(child)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if stopped else code


def _stop_group(child: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL to what is left after the grace."""
    try:
        os.killpg(child.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:  # uvicorn workers that outlive the master (or a master that ignored SIGTERM)
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        child.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
