"""Figures for the Ray executor, measured side by side in one sitting on this machine:

- per-run fixed cost of the Ray executor over the local one (``system/overhead_seconds``,
  median of N short runs, one at a time: a Ray run starts a fresh process, a local run goes to a
  warm worker);
- throughput of two one-CPU Ray nodes against one (runs per hour, ratio);
- the same for tuning workers (trials per hour, 2 workers on 2 nodes against 1 on 1).

Starts (and stops) its own Ray nodes on 127.0.0.1, an `orchestrator server` on a fresh
PostgreSQL database and an Optuna database; needs PostgreSQL on 127.0.0.1:5432.

    .venv/bin/python benchmarks/cluster_scaling.py [--runs 10] [--trials 6]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
RUN = {"task": "digits", "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
       "optimizer": {"name": "adam"}, "train": {"epochs": 3, "batch_size": 64},
       "backends": ["torch"]}


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for a service")
        time.sleep(1)


def _database(name: str) -> str:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc",
                    f"CREATE DATABASE {name}"], check=True)
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def _drop(name: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc",
                    f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)


def _ray_node(*args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "ray"), "start", "--block", "--num-cpus", "1",
                             "--node-ip-address", "127.0.0.1", "--disable-usage-stats", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def _nodes(address: str) -> int:
    code = ("import ray; ray.init(address=%r, log_to_driver=False); "
            "print('ALIVE', sum(n['Alive'] for n in ray.nodes()))" % address)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    counts = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("ALIVE ")]
    return int(counts[-1]) if out.returncode == 0 and counts else 0


def _orchestrator(folder: Path, env: dict, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=folder, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _overheads(uri: str, experiment: str) -> list[float]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], "tags.`orchestrator.kind` = 'run'")
    return [r.data.metrics["system/overhead_seconds"] for r in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=6)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="scaling"))
    tag = uuid.uuid4().hex[:8]
    tracking_db, optuna_db = f"scaling_mlflow_{tag}", f"scaling_optuna_{tag}"
    processes: list[subprocess.Popen] = []
    figures: dict[str, float] = {}
    try:
        port = _port()
        server = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "server", "--backend-store",
             _database(tracking_db), "--port", str(port), "--workers", "1",
             "--artifacts", str(folder / "artifacts")], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        processes.append(server)
        uri = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200
            except OSError:
                return False

        _wait(healthy, 300)
        storage = _database(optuna_db)
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "ORCHESTRATOR_MLRUNS": str(folder)}
        head_port = _port()
        head = _ray_node("--head", "--port", str(head_port), "--include-dashboard=false",
                         "--temp-dir", tempfile.mkdtemp(prefix="ray", dir="/tmp"))
        processes.append(head)
        address = f"127.0.0.1:{head_port}"
        _wait(lambda: _nodes(address) == 1, 300)
        seeds = list(range(args.runs))

        def experiment(name: str, **extra) -> Path:
            path = folder / f"{name}.yaml"
            path.write_text(yaml.safe_dump({**RUN, "name": name, "seeds": seeds, **extra}))
            return path

        local = _orchestrator(folder, env, "run", "-q", "--jobs", "1",
                              str(experiment("scaling-local")))
        one = _orchestrator(folder, env, "run", "-q", "--executor", "ray", "--address",
                            address, str(experiment("scaling-ray1")))
        tune_config = {"tune": {"metric": "val/loss", "direction": "minimize",
                                "trials": args.trials, "sampler": {"name": "random"},
                                "pruner": {"name": "none"},
                                "space": {"optimizer.lr": {"type": "float", "low": 1e-3,
                                                           "high": 1e-1, "log": True}}}}
        tune_one = _orchestrator(folder, env, "tune", str(experiment("scaling-tune1",
                                                                     **tune_config)),
                                 "--executor", "ray", "--address", address, "--workers", "1",
                                 "--storage", storage)
        processes.append(_ray_node("--address", address))
        _wait(lambda: _nodes(address) == 2, 300)
        two = _orchestrator(folder, env, "run", "-q", "--executor", "ray", "--address",
                            address, str(experiment("scaling-ray2")))
        tune_two = _orchestrator(folder, env, "tune", str(experiment("scaling-tune2",
                                                                     **tune_config)),
                                 "--executor", "ray", "--address", address, "--workers", "2",
                                 "--storage", storage)
        local_overhead = statistics.median(_overheads(uri, "scaling-local"))
        ray_overhead = statistics.median(_overheads(uri, "scaling-ray1"))
        figures = {
            "runs": args.runs, "trials": args.trials,
            "local_median_overhead_s": local_overhead,
            "ray_median_overhead_s": ray_overhead,
            "ray_over_local_overhead_s": ray_overhead - local_overhead,
            "local_wall_s": local, "ray_1_node_wall_s": one, "ray_2_nodes_wall_s": two,
            "ray_1_node_runs_per_hour": args.runs * 3600 / one,
            "ray_2_nodes_runs_per_hour": args.runs * 3600 / two,
            "runs_throughput_ratio": one / two,
            "tune_1_worker_trials_per_hour": args.trials * 3600 / tune_one,
            "tune_2_workers_trials_per_hour": args.trials * 3600 / tune_two,
            "tune_throughput_ratio": tune_one / tune_two,
        }
        print(json.dumps(figures, indent=2))
    finally:
        for process in reversed(processes):
            _stop(process)
        _drop(tracking_db)
        _drop(optuna_db)


if __name__ == "__main__":
    main()
