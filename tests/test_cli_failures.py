"""The command line under misuse: ports, thread variables, Ctrl-C while workers start. Each is
one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

TINY = {"name": "tiny", "task": "digits",
        "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
        "optimizer": {"name": "adam"}, "train": {"epochs": 1, "batch_size": 256},
        "backends": ["torch"]}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(tmp_path / "mlruns"), **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=tmp_path,
                          env=_env(tmp_path, **extra), capture_output=True, text=True,
                          timeout=300)


def _one_line(done: subprocess.CompletedProcess, expected: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


@pytest.mark.parametrize("port", ["0", "70000", "-5"])
def test_ui_refuses_a_port_out_of_range(tmp_path, port: str) -> None:
    _one_line(_cli(tmp_path, "ui", "--port", port), "is out of range")


def test_ui_refuses_a_port_in_use(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = _cli(tmp_path, "ui", "--port", str(port))
    _one_line(done, f"port {port} on 127.0.0.1 is already in use")
    assert not (tmp_path / "mlruns").exists()  # refused before the store was touched


@pytest.mark.parametrize("name, value", [("ORCHESTRATOR_THREADS", "abc"),
                                         ("OMP_NUM_THREADS", "0"),
                                         ("TF_NUM_INTRAOP_THREADS", "-2"),
                                         ("ORCHESTRATOR_THREADS", "\u00b2")])
def test_a_bad_thread_variable_is_one_line(tmp_path, name: str, value: str) -> None:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    _one_line(_cli(tmp_path, "run", "tiny.yaml", **{name: value}),
              f"{name}={value!r}: must be a whole number >= 1")


@pytest.mark.parametrize("value", ["big", "-1", "1.5", "\u00b2"])
def test_a_bad_cache_bound_is_one_line(tmp_path, value: str) -> None:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    _one_line(_cli(tmp_path, "run", "tiny.yaml", ORCHESTRATOR_CACHE_MAX_MB=value),
              f"ORCHESTRATOR_CACHE_MAX_MB={value!r}: must be a whole number of megabytes")
    assert not (tmp_path / "mlruns").exists()


# On PYTHONPATH as sitecustomize: a process that multiprocessing spawned (a warm worker) marks
# that it is starting, then takes 2 s more to start: a Ctrl-C sent once the mark exists lands
# in the child's start-up by construction, not by timing.
SLOW_START = """
import os
import time
from pathlib import Path

with open("/proc/self/cmdline", "rb") as _f:
    if b"spawn_main" in _f.read() and os.environ.get("SLOW_START_DIR"):
        (Path(os.environ["SLOW_START_DIR"]) / f"started-{os.getpid()}").touch()
        time.sleep(2)
"""


def _as_from_a_terminal() -> None:
    # a foreground command gets Ctrl-C: SIGINT at its default (a test runner started as a
    # background job passes SIG_IGN down, and an ignored SIGINT is rightly respected)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _blocked_by_the_launcher() -> None:
    _as_from_a_terminal()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


@pytest.mark.parametrize("launcher", ["terminal", "blocking"])
def test_ctrl_c_while_the_workers_start_is_clean(tmp_path, launcher: str) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the warm worker
    process starts: no traceback, exit 130, and any run that was created says what stopped it.
    Also when the launcher left SIGINT blocked (the mask is inherited across exec)."""
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "train": {"epochs": 50}}))
    site, marks = tmp_path / "site", tmp_path / "marks"
    site.mkdir()
    marks.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_START)
    env = _env(tmp_path, SLOW_START_DIR=str(marks))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "-q", "tiny.yaml"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_blocked_by_the_launcher if launcher == "blocking"
                            else _as_from_a_terminal)
    deadline = time.monotonic() + 300
    while not any(marks.iterdir()):  # the warm worker is starting
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in out + err, err
    assert proc.returncode == 130, (proc.returncode, out, err)
    db = tmp_path / "mlruns" / "mlflow.db"
    if db.exists():
        client = MlflowClient(f"sqlite:///{db}")
        for experiment in client.search_experiments():
            for run in client.search_runs([experiment.experiment_id]):
                assert run.info.status != "RUNNING"
                reason = run.data.tags.get("orchestrator.killed_reason", "")
                assert reason.strip() != "stopped by", reason
