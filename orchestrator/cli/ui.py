"""``ui``: the MLflow UI on 127.0.0.1 against the same store."""

from __future__ import annotations

import argparse


def _cmd_ui(args: argparse.Namespace) -> int:
    from orchestrator.cli.common import bad_input
    from orchestrator.cli.serving import PortError, check_port, serve
    from orchestrator.redaction import redact
    from orchestrator.tracking.store import ensure_store, is_embedded, mlruns_root

    try:
        check_port("127.0.0.1", args.port)
    except PortError as error:
        return bad_input(error)
    uri = ensure_store()
    command = ["--host", "127.0.0.1", "--port", str(args.port)]
    if is_embedded(uri):
        # clients that log through this server (MLFLOW_TRACKING_URI=http://...) upload their
        # artifacts here too, not to ./mlartifacts wherever the server was started
        command += ["--artifacts-destination", str(mlruns_root() / "artifacts")]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store: {redact(uri)}); Ctrl-C stops it",
          flush=True)
    return serve(command, uri)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 against the same store")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=_cmd_ui)
