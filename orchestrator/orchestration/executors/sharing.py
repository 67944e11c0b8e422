"""Checks that a remote executor's nodes can share the tracking store and the Optuna storage,
made before anything starts: each failure is one line that says what to do."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from orchestrator.orchestration.executors.base import ExecutorError
from orchestrator.redaction import redact

SERVER_HINT = ("start a tracking server every node reaches (`orchestrator server --backend-store "
               "postgresql://...`) and export the MLFLOW_TRACKING_URI it prints")
PROBE_SECONDS = 5.0


def check_shared_tracking(executor: str, uri: str) -> None:
    """A remote executor needs a tracking server (http/https) or a database server URL; an
    SQLite file or a local path lives on this machine only. A server must answer."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("", "file", "sqlite"):
        raise ExecutorError(f"executor {executor}: the tracking store {redact(uri)} is local to "
                            f"this machine, which the cluster's nodes cannot share; "
                            f"{SERVER_HINT}")
    if scheme in ("http", "https"):
        check_server_answers(uri)


def check_server_answers(uri: str) -> None:
    """The tracking server at ``uri`` answers its health check within a few seconds."""
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_SECONDS) as response:
            if response.status == 200:
                return
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        problem = f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        problem = str(getattr(error, "reason", error))
    raise ExecutorError(f"the tracking server {redact(uri)} does not answer ({problem}); start "
                        f"it (`orchestrator server`) or fix MLFLOW_TRACKING_URI")


def check_shared_storage(executor: str, storage: str) -> None:
    """Tuning workers on a cluster share one Optuna storage: it must be a database server."""
    scheme = urlsplit(storage).scheme.lower().split("+")[0]
    if scheme in ("", "sqlite", "journal", "file"):
        raise ExecutorError(f"executor {executor}: the Optuna storage {redact(storage)} is local "
                            f"to this machine; give --storage postgresql://... (or mysql://...) "
                            f"that every node reaches")
