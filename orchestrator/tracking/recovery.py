"""Runs left RUNNING by a process that died (SIGKILL, power loss) are found and marked KILLED.

MLflow has no heartbeat: a run whose process was killed stays RUNNING forever. Every run this
tool starts carries the host name, process id and process start time of its worker; at the next
start, a RUNNING run from this host whose process is gone (or whose pid now belongs to another
process) is marked KILLED. Runs from other hosts are marked once their heartbeat tag (refreshed
every epoch) is older than ``stale_after`` seconds.
"""

from __future__ import annotations

import os
import socket
import time

HOST_TAG = "orchestrator.host"
PID_TAG = "orchestrator.pid"
STARTED_TAG = "orchestrator.pid_started"
HEARTBEAT_TAG = "orchestrator.heartbeat"
REASON_TAG = "orchestrator.killed_reason"


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "unknown"
        return "unknown"


def identity_tags() -> dict[str, str]:
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid),
            STARTED_TAG: process_start_time(pid) or "unknown",
            HEARTBEAT_TAG: str(int(time.time()))}


def _is_dead(tags: dict[str, str], host: str, stale_after: float) -> str | None:
    if tags.get(HOST_TAG) == host and PID_TAG in tags:
        pid = int(tags[PID_TAG])
        started = process_start_time(pid)
        if started is None:
            return f"its process {pid} on {host} no longer exists"
        recorded = tags.get(STARTED_TAG)
        if recorded not in (None, "unknown") and started not in ("unknown", recorded):
            return f"process id {pid} on {host} now belongs to another process"
        return None
    heartbeat = tags.get(HEARTBEAT_TAG)
    if heartbeat and time.time() - float(heartbeat) > stale_after:
        return f"no heartbeat from {tags.get(HOST_TAG, 'its host')} for over {stale_after:.0f} s"
    return None


def mark_dead_runs(uri: str, experiment_ids: list[str] | None = None,
                   stale_after: float = 3600.0) -> list[str]:
    """Mark RUNNING runs of dead processes KILLED; return their run ids."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    if experiment_ids is None:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        return []
    host = socket.gethostname()
    marked = []
    runs = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'",
                              run_view_type=ViewType.ACTIVE_ONLY, max_results=5000)
    for run in runs:
        reason = _is_dead(run.data.tags, host, stale_after)
        if reason is None:
            continue
        client.set_tag(run.info.run_id, REASON_TAG, f"found RUNNING at a later start: {reason}")
        client.set_terminated(run.info.run_id, "KILLED")
        marked.append(run.info.run_id)
    return marked
