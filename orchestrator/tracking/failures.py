"""A broken MLflow store or Optuna storage in one line: what failed, where, and the fix.

Drivers and MLflow raise their own exception types, nested several deep (an MLflow exception
around SQLAlchemy's around psycopg2's). ``store_problem`` walks the chain and answers a line
for the command line (``error: ...``, exit 2), or None when the exception is not a store's.
URLs in the line are redacted by the caller (``redaction.redact_text``).
"""

from __future__ import annotations

import errno

_DRIVERS = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]", "pymysql": "pymysql",
            "MySQLdb": "mysqlclient", "pyodbc": "pyodbc", "pymssql": "pymssql",
            "cx_Oracle": "cx_Oracle", "oracledb": "oracledb"}
# (what the message says, the fix) -- the first that matches the message chain wins
_HINTS = (
    ("database is locked", "another process holds the SQLite store's lock beyond the retry "
                           "limit; wait for it or use a database server"),
    ("file is not a database", "the SQLite file is corrupt or not a database; move it away "
                               "(a new one is created)"),
    ("database disk image is malformed", "the SQLite file is corrupt; move it away (a new one "
                                         "is created)"),
    ("readonly database", "the store is read-only; make its folder writable or set "
                          "ORCHESTRATOR_MLRUNS to a writable folder"),
    ("unable to open database file", "the store's folder is missing or not writable; set "
                                     "ORCHESTRATOR_MLRUNS to a writable folder"),
    ("disk is full", "the disk is full; free space and rerun"),
    ("no space left", "the disk is full; free space and rerun"),
    ("does not exist", "create the database (e.g. `createdb NAME`) or fix the URL"),
    ("could not find a registered", "use sqlite:///FILE, postgresql://..., mysql://... or "
                                    "http(s)://SERVER"),
    ("can't load plugin", "use sqlite:///FILE, postgresql://..., mysql://..., "
                          "journal:/path/file.log"),
    ("could not parse", "write it as dialect[+driver]://user:password@host:port/database"),
    ("invalid url", "write it as dialect[+driver]://user:password@host:port/database"),
    ("connection refused", "nothing listens there; start the server or fix the URL"),
    ("max retries exceeded", "the tracking server does not answer; start it or fix "
                             "MLFLOW_TRACKING_URI"),
    ("timed out", "the server does not answer in time; check it or fix the URL"),
    ("timeout", "the server does not answer in time; check it or fix the URL"),
    ("could not translate host name", "unknown host; fix the URL"),
    ("password authentication failed", "fix the user or password"),
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 20:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _is_store_error(exc: BaseException) -> bool:
    import sqlite3

    names = {f"{c.__module__}.{c.__name__}" for c in type(exc).__mro__}
    if isinstance(exc, sqlite3.Error):
        return True
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in _DRIVERS:
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
        return True
    prefixes = ("sqlalchemy.", "mlflow.exceptions.", "optuna.exceptions.StorageInternalError",
                "requests.exceptions.", "urllib3.exceptions.", "psycopg2.", "psycopg.",
                "pymysql.", "optuna.storages")
    return any(n.startswith(prefixes) for n in names)


def store_problem(exc: BaseException) -> str | None:
    """One line for an exception raised by the tracking store or the tuning storage."""
    chain = _chain(exc)
    if not any(_is_store_error(e) for e in chain):
        return None
    for e in chain:
        if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] in _DRIVERS:
            module = (e.name or "").split(".")[0]
            return (f"the database driver {module} is not installed; pip install "
                    f"{_DRIVERS[module]}")
    messages = [_first_line(e) for e in chain]
    text = " ".join(messages).lower()
    root = next((m for m in reversed(messages) if m), messages[0] if messages else "")
    for needle, fix in _HINTS:
        if needle in text:
            return f"store or storage failed: {root}; {fix}"
    return f"store or storage failed: {root}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0].strip()
    # SQLAlchemy: "(sqlite3.OperationalError) database is locked" -- keep the driver's words
    return line[:300]
