"""Broken tracking stores, real ones: every problem is one line on stderr and a non-zero exit,
bounded in time, and no run is left RUNNING; a lock held by another process only delays a run.

Real SQLite files and locks, a read-only and a full file system (tmpfs, mounted when the tests
run as root; a read-only folder and a filled disk image cannot be faked otherwise), PostgreSQL
at 127.0.0.1:5432, a socket that accepts and never answers, a real `mlflow server` killed in the
middle of a run."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from pg_service import HOST, PORT
from servers import answers, serve

TINY = {"name": "tiny", "task": "digits",
        "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
        "optimizer": {"name": "adam"}, "train": {"epochs": 1, "batch_size": 256},
        "backends": ["torch"]}


def _setup(tmp_path: Path, **train) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], **train}}))
    return path


def _env(root: Path, uri: str | None = None) -> dict[str, str]:
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(root), "ORCHESTRATOR_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    return env


def _run(tmp_path: Path, env: dict, *args: str, timeout: float = 300
         ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", "run", "-q", "tiny.yaml", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def _one_line(done: subprocess.CompletedProcess, expected: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


def _statuses(uri: str) -> list[str]:
    client = MlflowClient(uri)
    return [r.info.status for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id])]


@pytest.mark.parametrize("uri, expected", [
    ("foo://somewhere/x", "unknown scheme 'foo'"),
    ("mysql://u:Pw-3kx@127.0.0.1/db", "the database driver MySQLdb is not installed"),
    (f"postgresql://postgres:Pw-3kx@{HOST}:{PORT}/no_such_database_x",
     'database "no_such_database_x" does not exist'),
])
def test_unusable_tracking_uris_are_one_line(tmp_path, uri: str, expected: str) -> None:
    _setup(tmp_path)
    done = _run(tmp_path, _env(tmp_path / "mlruns", uri))
    _one_line(done, expected)
    assert "Pw-3kx" not in done.stdout + done.stderr


def test_a_corrupt_sqlite_store_is_one_line(tmp_path) -> None:
    _setup(tmp_path)
    (tmp_path / "mlruns").mkdir()
    (tmp_path / "mlruns" / "mlflow.db").write_bytes(os.urandom(8192))
    _one_line(_run(tmp_path, _env(tmp_path / "mlruns")), "is not an SQLite database")


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (root only); unmounted afterwards."""
    mounted = []

    def mount(name: str, options: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        if os.geteuid() != 0:
            pytest.fail("the store tests mount a tmpfs and need root (as in CI); "
                        "run them as root")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                       check=True)
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_store_is_one_line(tmp_path, tmpfs) -> None:
    _setup(tmp_path)
    folder = tmpfs("ro", "ro,size=1m")
    _one_line(_run(tmp_path, _env(folder / "mlruns")), "is read-only")


def test_a_full_disk_is_one_line_and_leaves_nothing_running(tmp_path, tmpfs) -> None:
    _setup(tmp_path)
    folder = tmpfs("small", "size=4m")
    root = folder / "mlruns"
    created = subprocess.run([sys.executable, "-c", "from orchestrator.tracking.store import "
                              "ensure_store; ensure_store()"], env=_env(root), text=True,
                             capture_output=True, timeout=300)
    assert created.returncode == 0, created.stderr
    with open(folder / "filler", "wb") as filler:  # the rest of the disk
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass
    done = _run(tmp_path, _env(root))
    _one_line(done, "disk is full")
    os.remove(folder / "filler")
    assert "RUNNING" not in _statuses(f"sqlite:///{root / 'mlflow.db'}")


def test_a_lock_held_by_another_process_delays_the_run_without_failing_it(tmp_path) -> None:
    """MLflow's own SQLite timeout is 5 s; a lock held three times as long must only wait."""
    _setup(tmp_path, epochs=3)
    root = tmp_path / "mlruns"
    env = _env(root)
    created = subprocess.run([sys.executable, "-c", "from orchestrator.tracking.store import "
                              "ensure_store; ensure_store()"], env=env, text=True,
                             capture_output=True, timeout=300)
    assert created.returncode == 0, created.stderr
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(root / 'mlflow.db')!r}, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(15)\n"
        "db.execute('COMMIT')\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    done = _run(tmp_path, env)
    holder.wait(timeout=60)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert time.monotonic() - started > 10  # it did meet the lock
    assert _statuses(f"sqlite:///{root / 'mlflow.db'}") == ["FINISHED"]
    with sqlite3.connect(root / "mlflow.db") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 1


def test_two_invocations_on_a_fresh_store_do_not_race_on_its_creation(tmp_path) -> None:
    """What `run`, `tune` and `worker` do first (``ensure_store``), in two processes released
    together: without the file lock the second crashed in MLflow's migrations."""
    root = tmp_path / "mlruns"
    code = ("import sys, time\n"
            "from orchestrator.tracking.store import ensure_store, experiment_id\n"
            "while time.time() < float(sys.argv[1]): pass\n"  # released together
            "uri = ensure_store()\n"
            "print(experiment_id('raced', uri))\n")
    for attempt in range(2):  # two fresh stores (without the lock the first one failed)
        store = root / str(attempt)
        start = time.time() + 8  # both have imported by then, even on a busy machine
        procs = [subprocess.Popen([sys.executable, "-c", code, str(start)], env=_env(store),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert time.time() > start  # they did start together, not one after the other
        assert outs[0][0] == outs[1][0]  # one experiment, seen by both


def test_a_tracking_server_that_never_answers_fails_within_30_s(tmp_path) -> None:
    _setup(tmp_path)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        started = time.monotonic()
        done = _run(tmp_path, _env(tmp_path / "mlruns", f"http://127.0.0.1:{port}"))
        took = time.monotonic() - started
    _one_line(done, f"the tracking server http://127.0.0.1:{port} does not answer")
    assert took < 30 + 15  # 10 s of waiting, plus the start-up of Python on a busy machine


def test_a_tracking_server_that_dies_mid_run_fails_the_command_in_bounded_time(tmp_path
                                                                                ) -> None:
    _setup(tmp_path, epochs=400)
    store = tmp_path / "server"
    store.mkdir()
    server, port = serve(
        lambda port: subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(port), "--workers", "1", "--artifacts-destination", str(store / "artifacts")],
            env={**_env(store), "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{store / 'mlflow.db'}",
                 "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True),
        lambda port: answers(f"http://127.0.0.1:{port}/health"), timeout=300,
        what="mlflow server")
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    try:
        run = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "-q", "tiny.yaml"],
                               cwd=tmp_path, env=_env(tmp_path / "mlruns", uri),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
        while True:  # training: metrics are arriving
            assert time.monotonic() < deadline and run.poll() is None, run.communicate()
            runs = [r for e in client.search_experiments()
                    for r in client.search_runs([e.experiment_id])]
            if runs and client.get_metric_history(runs[0].info.run_id, "train/loss"):
                break
            time.sleep(0.5)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        killed = time.monotonic()
        out, err = run.communicate(timeout=300)
        took = time.monotonic() - killed
    finally:
        for proc in (server,):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert run.returncode != 0, out + err
    assert took < 120, took
    assert "Traceback" not in err, err[-3000:]
