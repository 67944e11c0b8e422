"""``ui``: the MLflow UI on 127.0.0.1 against the same store."""

from __future__ import annotations

import argparse
import sys


def _cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    from orchestrator.tracking.store import ensure_store, is_embedded, mlruns_root

    uri = ensure_store()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(args.port)]
    if is_embedded(uri):
        # clients that log through this server (MLFLOW_TRACKING_URI=http://...) upload their
        # artifacts here too, not to ./mlartifacts wherever the server was started
        command += ["--artifacts-destination", str(mlruns_root() / "artifacts")]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store: {uri}); Ctrl-C stops it",
          flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0



def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 against the same store")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=_cmd_ui)
