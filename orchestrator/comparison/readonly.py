"""Opening a tracking store for reading only: a store that is missing, is not an MLflow store or
cannot be reached is one line of error, and nothing is created or migrated on the way.

MLflow itself creates an SQLite file that does not exist, migrates a database that has no
tables yet, and retries an unreachable server for minutes; a read-only command must do none of
that, so the store is checked first with a plain SQLAlchemy connection (or one quick HTTP try).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.redaction import redact
from orchestrator.tracking.store import mlflow_settings


class CompareError(ValueError):
    """Bad input for a comparison: ``str()`` is one line saying what and where."""


DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def describe(uri: str) -> str:
    """The store as shown to the user: the SQLite path, else the URI without its password."""
    if uri.startswith("sqlite:///"):
        return uri.removeprefix("sqlite:///")
    return redact(uri)


def _check_database(uri: str) -> None:
    """The database exists and holds MLflow's tables (checked without writing to it)."""
    import sqlalchemy

    where = describe(uri)
    if uri.startswith("sqlite:"):
        path = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
        if path is None or not path.is_file():
            raise CompareError(f"no MLflow store at {where} (run experiments first, or point "
                               "MLFLOW_TRACKING_URI / ORCHESTRATOR_MLRUNS at a store)")
        engine = sqlalchemy.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    else:
        engine = sqlalchemy.create_engine(uri, connect_args=_connect_timeout(uri))
    try:
        with engine.connect() as connection:
            tables = set(sqlalchemy.inspect(connection).get_table_names())
    except sqlalchemy.exc.SQLAlchemyError as exc:
        message = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()
        raise CompareError(f"cannot open the tracking store {where}: "
                           f"{message[0] if message else type(exc).__name__}") from None
    finally:
        engine.dispose()
    if not {"runs", "experiments", "metrics"} <= tables:
        raise CompareError(f"{where} is not an MLflow tracking store (no runs table)")


def _connect_timeout(uri: str) -> dict[str, Any]:
    return {"connect_timeout": 10} if uri.startswith(("postgresql", "mysql")) else {}


def open_store(uri: str) -> Any:
    """An ``MlflowClient`` on ``uri`` once the store is known to exist; ``CompareError`` else."""
    from mlflow.tracking import MlflowClient

    scheme = uri.split(":", 1)[0].split("+", 1)[0]
    if scheme in DB_SCHEMES:
        _check_database(uri)
    client = MlflowClient(uri)
    try:
        # one try with a short timeout (MLflow otherwise retries with backoff for minutes)
        with mlflow_settings(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
                             MLFLOW_HTTP_REQUEST_TIMEOUT="10"):
            client.search_experiments(max_results=1)
    except Exception as exc:  # MlflowException, connection errors: all mean "cannot open"
        message = str(exc).strip().splitlines()
        raise CompareError(f"cannot open the tracking store {describe(uri)}: "
                           f"{message[0] if message else type(exc).__name__}") from None
    return client
