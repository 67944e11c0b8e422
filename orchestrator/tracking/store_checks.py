"""A tracking store checked before anything is written to it, and bounded waits on it.

MLflow, left alone, retries an unreachable database for minutes, an HTTP server that never
answers for about four, gives up on an SQLite lock after 5 s (a run that had trained for an hour
failed because another process held the file for 25 s), and lets two processes that create one
fresh store race on its migrations. Here:

- ``check_store``: an unknown scheme, a driver that is not installed, a database that does not
  exist or does not answer (10 s), an HTTP server that does not answer (10 s), an SQLite file
  that is not a database, a store folder that cannot be written: each one line
  (``StoreError``), before any run exists;
- ``bounded_waits``: SQLite connections wait up to ``SQLITE_LOCK_TIMEOUT_S`` for another
  process's lock (a busy timeout on every connection of the process), and MLflow's HTTP client
  tries a silent server 3 times with 10 s each (about 35 s in all, not 4 minutes), unless
  ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``MLFLOW_HTTP_REQUEST_TIMEOUT`` say otherwise;
- ``store_lock``: store creation holds an exclusive file lock, so the second of two invocations
  started together on a fresh store waits for the first one's migrations instead of crashing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.redaction import redact, redact_text, secrets_of

SQLITE_LOCK_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
DATABASES = ("postgresql", "mysql", "mssql", "oracle")
SCHEMES = ("sqlite", "http", "https", "file", "databricks", *DATABASES)
_installed = False


class StoreError(ValueError):
    """A tracking store that cannot be used: one line, the URL redacted."""


def bounded_waits() -> None:
    """Busy timeout on every SQLite connection of this process, bounded HTTP retries (also for
    the child processes, which inherit the environment). Idempotent."""
    global _installed
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if _installed:
        return
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _busy_timeout(connection, _record) -> None:  # noqa: ANN001  (DBAPI connection)
        if isinstance(connection, sqlite3.Connection):
            connection.execute(f"PRAGMA busy_timeout = {SQLITE_LOCK_TIMEOUT_S * 1000}")

    _installed = True


def _where(uri: str) -> str:
    return uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else redact(uri)


def check_store(uri: str, root: Path | None = None) -> None:
    """Raise ``StoreError`` (one line) when the store at ``uri`` cannot be used."""
    scheme = urlsplit(uri).scheme.lower().split("+")[0]
    if scheme not in SCHEMES:
        raise StoreError(f"MLFLOW_TRACKING_URI {redact(uri)}: unknown scheme {scheme!r}; use "
                         f"sqlite:///FILE, postgresql://..., mysql://... or http(s)://SERVER")
    if scheme == "sqlite":
        _check_sqlite(uri)
    elif scheme in DATABASES:
        _check_database(uri)
    elif scheme in ("http", "https"):
        _check_server(uri)


def _check_sqlite(uri: str) -> None:
    path = Path(uri.removeprefix("sqlite:///").split("?")[0])
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if path.exists():
        with open(path, "rb") as handle:
            header = handle.read(16)
        if header and header != b"SQLite format 3\x00":
            raise StoreError(f"the tracking store {path} is not an SQLite database (corrupt?); "
                             f"move it away and a new store is created")
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            raise StoreError(f"the tracking store {path} is read-only; make it and its folder "
                             f"writable or set ORCHESTRATOR_MLRUNS to a writable folder")
    elif not os.access(folder, os.W_OK):
        raise StoreError(f"cannot create the tracking store {path}: {folder} is read-only; set "
                         f"ORCHESTRATOR_MLRUNS to a writable folder")


def _check_database(uri: str) -> None:
    from orchestrator.tracking.failures import store_problem

    try:
        import sqlalchemy

        args = {"connect_timeout": CONNECT_TIMEOUT_S} \
            if uri.startswith(("postgresql", "mysql")) else {}
        engine = sqlalchemy.create_engine(uri, connect_args=args)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except Exception as error:  # noqa: BLE001  (any driver's connection error)
        why = (store_problem(error) or str(error)).removeprefix("store or storage failed: ")
        raise StoreError(redact_text(f"the tracking store {redact(uri)} cannot be used: {why}",
                                     secrets_of(uri))) from None


def _check_server(uri: str) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=CONNECT_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # it answers (a proxy, an older server without /health): MLflow will tell
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise StoreError(redact_text(f"the tracking server {redact(uri)} does not answer "
                                     f"({reason}); start it (`orchestrator server`) or fix "
                                     f"MLFLOW_TRACKING_URI", secrets_of(uri))) from None


@contextlib.contextmanager
def store_lock(root: Path | None) -> Iterator[None]:
    """An exclusive lock on ``root/.store.lock`` while the store is created (no-op without a
    folder, or where the folder cannot hold it: the store check reports that)."""
    import fcntl

    if root is None:
        yield
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(root / ".store.lock", "a")  # noqa: SIM115  (held across the yield)
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
