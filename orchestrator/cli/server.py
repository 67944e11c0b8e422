"""``server``: an MLflow tracking server that every node of a cluster can share.

Runs, metrics and tags go to a database server (PostgreSQL, or any SQLAlchemy URL), artifacts
through the server itself (``--serve-artifacts``: nodes need no shared file system nor object
store credentials). It binds 127.0.0.1 unless ``--host`` says otherwise, and prints the
``MLFLOW_TRACKING_URI`` to export on the driver and on every node.
"""

from __future__ import annotations

import argparse
import socket


def _check_backend_store(url: str) -> str | None:
    """A database URL that cannot be reached: why, in one line (None when it answers)."""
    if not url.startswith(("postgresql", "mysql", "mssql")):
        return None
    from orchestrator.redaction import secrets_of

    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5}
                                          if url.startswith("postgresql") else {})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as error:  # noqa: BLE001  (any driver's connection error)
        from orchestrator.redaction import redact_text

        return redact_text(str(error).strip().splitlines()[0], secrets_of(url))
    return None


def _cmd_server(args: argparse.Namespace) -> int:
    from orchestrator.cli.common import bad_input
    from orchestrator.redaction import redact
    from orchestrator.tracking.store import ensure_store, mlruns_root

    from orchestrator.tuning.study import _driver

    store = _driver(args.backend_store or ensure_store(f"sqlite:///{mlruns_root() / 'mlflow.db'}"))
    problem = _check_backend_store(store)
    if problem:
        return bad_input(ValueError(f"--backend-store {redact(store)} does not answer "
                                    f"({problem}); create the database or fix the URL"))
    from orchestrator.cli.serving import PortError, check_port, serve

    try:
        check_port(args.host, args.port)
    except PortError as error:
        return bad_input(error)
    artifacts = args.artifacts or str(mlruns_root() / "artifacts")
    shown = args.host if args.host not in ("0.0.0.0", "::") else socket.getfqdn()
    uri = f"http://{shown}:{args.port}"
    # the store's URL (and its password) reaches the server through the environment, not argv
    command = ["--serve-artifacts", "--artifacts-destination", artifacts,
               "--host", args.host, "--port", str(args.port), "--workers", str(args.workers)]
    if args.host not in ("127.0.0.1", "localhost"):
        command += ["--allowed-hosts", "*"]  # nodes reach it by whatever name they know
    print(f"MLflow tracking server on {uri} (runs: {redact(store)}; artifacts: {artifacts})\n"
          f"export MLFLOW_TRACKING_URI={uri}   # on the driver and on every node; Ctrl-C stops "
          f"it", flush=True)
    return serve(command, store)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("server", help="start a tracking server for a cluster (PostgreSQL...)",
                       description="Start an MLflow tracking server with proxied artifacts, "
                                   "backed by a database every node shares, and print the "
                                   "MLFLOW_TRACKING_URI to export (docs/cluster.md).")
    p.add_argument("--backend-store", metavar="URL",
                   help="SQLAlchemy URL of the runs' database, e.g. "
                        "postgresql://user@host:5432/mlflow (default: the embedded SQLite "
                        "store under mlruns/)")
    p.add_argument("--artifacts", metavar="DIR_OR_URI",
                   help="where the server keeps artifacts (default: mlruns/artifacts)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1; 0.0.0.0 for a cluster)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2, help="server worker processes")
    p.set_defaults(func=_cmd_server)
