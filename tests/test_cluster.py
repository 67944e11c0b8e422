"""Scale-out with real engines started here: a two-node Ray cluster on 127.0.0.1 (each node its
own `ray start`), an MLflow server started by `orchestrator server` on a PostgreSQL database made
for the module, and Slurm through submitit's local executor (real subprocess jobs).

One cluster and one server for the whole module (Ray starts slowly); the test that kills the
second node runs last. Bad input: one line, exit status 2, nothing left RUNNING.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from servers import answers, refused_port, serve

pytest.importorskip("ray")
pytest.importorskip("submitit")

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
DIGITS = {
    "task": "digits",
    "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
    "optimizer": {"name": "adam"},
    "train": {"epochs": 2, "batch_size": 64},
    "backends": ["torch"],
}


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _kill_tree(process: subprocess.Popen) -> None:
    for pid in reversed(_descendants(process.pid)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def database():
    """Fresh databases on the PostgreSQL the docs promise; its absence fails (pg_service)."""
    from pg_service import fresh_database

    with fresh_database("orchestrator_cluster") as name:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="module")
def optuna_storage():
    from pg_service import fresh_database

    with fresh_database("orchestrator_optuna") as name:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="module")
def server(database, tmp_path_factory):
    """`orchestrator server` on the module's PostgreSQL database; its tracking URI."""
    root = tmp_path_factory.mktemp("server")
    log = root / "server.log"  # a file: a pipe nobody reads would fill and block the server

    def start(port: int) -> subprocess.Popen:
        with open(log, "w") as output:
            return subprocess.Popen(
                [sys.executable, "-m", "orchestrator", "server", "--backend-store", database,
                 "--port", str(port), "--artifacts", str(root / "artifacts"), "--workers", "1"],
                cwd=root, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    process, port = serve(start, lambda port: answers(f"http://127.0.0.1:{port}/health"),
                          timeout=240, what="the tracking server", log=log.read_text)
    uri = f"http://127.0.0.1:{port}"
    try:
        assert f"export MLFLOW_TRACKING_URI={uri}" in log.read_text()
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def _ray_start(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "ray"), "start", "--block", "--num-cpus", "1",
                             "--node-ip-address", "127.0.0.1", "--disable-usage-stats", *args],
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _alive_nodes(address: str) -> int:
    code = ("import ray; ray.init(address=%r, log_to_driver=False); "
            "print('ALIVE', sum(n['Alive'] for n in ray.nodes()))" % address)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    # Ray prints its own notes (a node marked dead...) on stdout too
    counts = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("ALIVE ")]
    return int(counts[-1]) if done.returncode == 0 and counts else 0


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of one CPU each on 127.0.0.1; (address, head, second node)."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    head, port = serve(lambda port: _ray_start("--head", "--port", str(port),
                                               "--include-dashboard=false", "--temp-dir", temp),
                       _port_open, timeout=180, what="the Ray head")
    address = f"127.0.0.1:{port}"
    nodes = [head]
    try:
        nodes.append(_ray_start("--address", address))
        _wait(lambda: _alive_nodes(address) == 2, 240, "two Ray nodes did not come up")
        yield address, head, nodes[1]
    finally:
        for node in reversed(nodes):
            _kill_tree(node)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 1):
            return True
    except OSError:
        return False


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _env(tmp_path: Path, uri: str | None) -> dict[str, str]:
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(tmp_path / "mlruns")}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    return env


def _orchestrator(tmp_path: Path, uri: str | None, *args: str, timeout: float = 900
                  ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=tmp_path,
                          env=_env(tmp_path, uri), capture_output=True, text=True,
                          timeout=timeout)


def _runs(uri: str, experiment: str, kind: str = "run") -> list:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs([found.experiment_id], max_results=1000,
                              order_by=["attributes.start_time ASC"])
    return [r for r in runs if r.data.tags.get("orchestrator.kind") == kind]


def test_runs_on_both_ray_nodes_finish_with_metrics_and_artifacts(tmp_path, server,
                                                                  cluster) -> None:
    address, _, _ = cluster
    config = {**DIGITS, "name": "ray-both", "backends": ["torch", "tensorflow"]}
    done = _orchestrator(tmp_path, server, "run", "--quiet", str(_write(tmp_path, config)),
                         "--executor", "ray", "--address", address)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = _runs(server, "ray-both")
    assert sorted(r.data.tags["orchestrator.contract.backend"] for r in runs) == [
        "tensorflow", "torch"]
    assert len({r.data.tags["orchestrator.node"] for r in runs}) == 2  # one run on each node
    client = MlflowClient(server)
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["orchestrator.executor"] == "ray"
        assert run.data.metrics["test/accuracy"] > 0.5
        assert run.data.metrics["system/overhead_seconds"] >= 0
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.json", "model_example.npz", "plots"} <= artifacts
        models = client.search_logged_models(
            [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
        backend = run.data.tags["orchestrator.contract.backend"]
        # named after experiment and backend, logged through the server's artifact proxy
        assert [m.name for m in models] == [f"ray-both-{backend}"]
    assert "FINISHED" in done.stdout and "ray-both: mean ± std" in done.stdout  # closing table


def test_bad_input_is_one_line_and_exit_2(tmp_path, server, cluster) -> None:
    address, _, _ = cluster
    path = _write(tmp_path, {**DIGITS, "name": "refused"})
    big = _write(tmp_path, {**DIGITS, "name": "too-big", "resources": {"cpus": 8}})
    with contextlib.ExitStack() as held:
        nobody, silent = (held.enter_context(refused_port()) for _ in range(2))
        cases = [
            (server, ("--executor", "ray", "--address", f"127.0.0.1:{nobody}"), path,
             "no Ray cluster answers at"),
            (server, ("--executor", "ray", "--address", address), big,
             "resources: no node of the Ray cluster has cpus 8"),
            (None, ("--executor", "ray", "--address", address), path,
             "is local to this machine"),
            (None, ("--executor", "slurm"), path, "is local to this machine"),
            (f"http://127.0.0.1:{silent}", ("--executor", "ray", "--address", address),
             path, "does not answer"),
        ]
        for uri, options, file, words in cases:
            done = _orchestrator(tmp_path, uri, "run", "--quiet", str(file), *options,
                                 timeout=300)
            assert done.returncode == 2, (options, done.stdout, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and words in lines[0], (options, done.stderr)
    assert _runs(server, "refused") == [] and _runs(server, "too-big") == []


def test_a_ray_node_without_the_project_is_refused(tmp_path, server, cluster) -> None:
    """A third node whose Python cannot import orchestrator: a package of the same name that
    fails to import stands first on its path."""
    address, _, _ = cluster
    blocker = tmp_path / "blocker" / "orchestrator"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('orchestrator is not installed')\n")
    third = _ray_start("--address", address, env={"PYTHONPATH": str(blocker.parent)})
    try:
        _wait(lambda: _alive_nodes(address) == 3, 240, "the third node did not come up")
        done = _orchestrator(tmp_path, server, "run", "--quiet",
                             str(_write(tmp_path, {**DIGITS, "name": "no-project"})),
                             "--executor", "ray", "--address", address, timeout=300)
    finally:
        _kill_tree(third)
    # the tests after this one need Ray to have seen the third node die
    _wait(lambda: _alive_nodes(address) == 2, 300, "Ray did not mark the third node dead")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot import orchestrator" in done.stderr and len(done.stderr.splitlines()) == 1
    assert _runs(server, "no-project") == []


def _tune_config(name: str, budget: int) -> dict:
    return {**DIGITS, "name": name, "train": {"epochs": 30, "batch_size": 64},
            "tune": {"metric": "val/loss", "direction": "minimize", "trials": budget,
                     "sampler": {"name": "random", "seed": 1}, "pruner": {"name": "none"},
                     "heartbeat": {"interval": 1, "grace": 4, "max_retry": 3},
                     "space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1,
                                                "log": True}}}}


def _tune_and_kill_a_worker(tmp_path: Path, server: str, storage: str, name: str,
                            *options: str) -> None:
    """`tune --workers 2` with ``options``; one worker SIGKILLed mid-trial; the exact budget,
    the killed trial retried with the same parameters, the MLflow tree intact."""
    import optuna

    from orchestrator.tuning.study import _driver

    budget = 4
    path = _write(tmp_path, _tune_config(name, budget))
    driver = subprocess.Popen([sys.executable, "-m", "orchestrator", "tune", str(path),
                               "--workers", "2", "--storage", storage, *options],
                              cwd=tmp_path, env=_env(tmp_path, server), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    study_name = f"{name}-torch"

    def a_trial_in_training():
        assert driver.poll() is None, driver.communicate()[0][-4000:]
        try:
            study = optuna.load_study(study_name=study_name, storage=_driver(storage))
        except KeyError:
            return None
        running = [t for t in study.get_trials(deepcopy=False)
                   if t.state == optuna.trial.TrialState.RUNNING and t.intermediate_values]
        return running[0] if running else None

    victim = _wait(a_trial_in_training, 600, "no trial started training")
    client = MlflowClient(server)
    pid = int(client.get_run(victim.user_attrs["mlflow_run_id"]).data.tags["orchestrator.pid"])
    os.kill(pid, signal.SIGKILL)  # the worker's process, mid-trial
    out, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, out[-4000:]
    trials = optuna.load_study(study_name=study_name, storage=_driver(storage)).get_trials()
    states = [t.state for t in trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == budget, states
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].params == victim.params
    assert client.get_run(victim.user_attrs["mlflow_run_id"]).info.status == "KILLED"
    (parent,) = _runs(server, name, kind="study")
    assert parent.info.status == "FINISHED"
    children = _runs(server, name, kind="trial")
    assert len(children) == len(trials)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert not [r for r in children if r.info.status == "RUNNING"]


def test_tuning_workers_on_ray_keep_the_exact_budget_when_one_dies(tmp_path, server, cluster,
                                                                   optuna_storage) -> None:
    address, _, _ = cluster
    _tune_and_kill_a_worker(tmp_path, server, optuna_storage, "tune-ray",
                            "--executor", "ray", "--address", address)


SLURM_LOCAL = {"name": "slurm", "cluster": "local", "time_minutes": 30}


def test_slurm_jobs_run_and_a_killed_job_is_requeued(tmp_path, server) -> None:
    config = {**DIGITS, "name": "slurm-runs", "executor": SLURM_LOCAL, "seeds": [0, 1],
              "train": {"epochs": 40, "batch_size": 64}}
    driver = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "--quiet",
                               str(_write(tmp_path, config))], cwd=tmp_path,
                              env=_env(tmp_path, server), text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)

    def a_run_in_training():
        assert driver.poll() is None, driver.communicate()[0][-4000:]
        trained = [r for r in _runs(server, "slurm-runs")
                   if r.info.status == "RUNNING" and "train/loss" in r.data.metrics]
        return trained[0] if trained else None

    victim = _wait(a_run_in_training, 600, "no job started training")
    os.kill(int(victim.data.tags["orchestrator.pid"]), signal.SIGKILL)
    out, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, out[-4000:]
    runs = _runs(server, "slurm-runs")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["orchestrator.plan_index"] for r in finished) == ["0", "1"]
    dead = MlflowClient(server).get_run(victim.info.run_id)
    assert dead.info.status == "KILLED" and "retried" in dead.data.tags[
        "orchestrator.killed_reason"]
    assert len(runs) == 3  # two planned runs, one of them twice
    assert all(r.data.tags["orchestrator.executor"] == "slurm" for r in runs)


def test_a_two_worker_study_on_slurm_jobs(tmp_path, server, optuna_storage) -> None:
    _tune_and_kill_a_worker(tmp_path, server, optuna_storage, "tune-slurm",
                            "--executor", "slurm")


def test_sigterm_on_the_driver_cancels_the_ray_tasks_and_kills_their_runs(tmp_path, server,
                                                                           cluster) -> None:
    address, _, _ = cluster
    config = {**DIGITS, "name": "ray-stopped", "seeds": [0, 1],
              "train": {"epochs": 500, "batch_size": 64}}
    driver = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "--quiet",
                               str(_write(tmp_path, config)), "--executor", "ray",
                               "--address", address], cwd=tmp_path, env=_env(tmp_path, server),
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _wait(lambda: len([r for r in _runs(server, "ray-stopped")
                       if "train/loss" in r.data.metrics]) == 2, 600, "two runs did not train")
    driver.send_signal(signal.SIGTERM)
    out, _ = driver.communicate(timeout=300)
    assert driver.returncode == 130, out[-4000:]
    runs = _runs(server, "ray-stopped")
    assert len(runs) == 2 and all(r.info.status == "KILLED" for r in runs), [
        (r.info.status, r.data.tags) for r in runs]
    assert "interrupted: 2 of 2 run(s) done or stopped" in out


def test_a_dead_ray_node_s_run_is_retried_once_and_its_attempt_killed(tmp_path, server,
                                                                      cluster) -> None:
    """Last: kills the second node. Every planned run ends FINISHED exactly once; the attempt
    that died with its node is KILLED, not RUNNING."""
    address, _, second = cluster
    config = {**DIGITS, "name": "ray-node-dies", "seeds": [0, 1, 2],
              "train": {"epochs": 40, "batch_size": 64}}
    driver = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "--quiet",
                               str(_write(tmp_path, config)), "--executor", "ray",
                               "--address", address], cwd=tmp_path, env=_env(tmp_path, server),
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def a_run_training_on_the_second_node():
        assert driver.poll() is None, driver.communicate()[0][-4000:]
        for run in _runs(server, "ray-node-dies"):
            if run.info.status == "RUNNING" and "train/loss" in run.data.metrics and int(
                    run.data.tags["orchestrator.pid"]) in set(_descendants(second.pid)):
                return run
        return None

    victim = _wait(a_run_training_on_the_second_node, 600, "no run trained on the 2nd node")
    _kill_tree(second)  # the node's raylet, its workers, everything: no chance to clean up
    out, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, out[-4000:]
    runs = _runs(server, "ray-node-dies")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["orchestrator.plan_index"] for r in finished) == ["0", "1", "2"]
    dead = MlflowClient(server).get_run(victim.info.run_id)
    assert dead.info.status == "KILLED", dead.data.tags
    assert not [r for r in runs if r.info.status == "RUNNING"]
