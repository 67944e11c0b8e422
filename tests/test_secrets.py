"""No password of a storage or tracking URL in any output: MLflow params, tags and artifacts,
the terminal, or a child process's command line. Real PostgreSQL (trust authentication accepts
any password), real runs, a real tuning study, the real MLflow UI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.redaction import redact, redact_text, secrets_of
from orchestrator.tracking.store import with_driver
from pg_service import HOST, PORT, fresh_database

EXPERIMENT = {
    "task": "digits",
    "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
    "optimizer": {"name": "adam"},
    "train": {"epochs": 1, "batch_size": 256},
    "backends": ["torch"],
}


@pytest.mark.parametrize("url, password", [
    ("postgresql://u:pa:ss@w0rd@h:5432/db", "pa:ss@w0rd"),
    ("postgresql+psycopg2://u:Pw%2F1x@h/db?sslpassword=Ssl9x&sslmode=require", "Pw%2F1x"),
    ("postgresql://h/db?user=u&PassWord=Qq1x", "Qq1x"),
    ("mysql://h/db?pwd=Zz2x&API_KEY=Kk3x", "Zz2x"),
    ("http://tok:Tt4x@h:5000", "Tt4x"),
    ("postgresql://h/db?token=Tk5x#frag", "Tk5x"),
])
def test_redact_removes_the_password_of_every_url_form(url: str, password: str) -> None:
    shown = redact(url)
    assert password not in shown and "***" in shown
    assert password in secrets_of(url)
    for value in secrets_of(url):
        assert value not in shown
    # in free text, as a driver's error message echoes it
    text = f'(psycopg2.OperationalError) connection to "{url}" failed for {password}'
    assert password not in redact_text(text, secrets_of(url))


def test_redact_keeps_urls_without_secrets() -> None:
    for url in ("sqlite:////tmp/a.db", "journal:/tmp/x.log", "postgresql://u@h/db",
                "http://127.0.0.1:5000", "postgresql://h/db?sslmode=require"):
        assert redact(url) == url


@pytest.mark.parametrize("name", ["password", "sslpassword", "PGPASSWORD", "pwd", "api_key",
                                  "API-KEY", "sslkey", "AWS_SECRET_ACCESS_KEY", "access_token",
                                  "client.secret", "keys"])
def test_a_value_whose_name_says_secret_is_masked_in_text(name: str) -> None:
    assert redact_text(f"failed: {name}=hunter22 at x", known=False) == f"failed: {name}=*** at x"


@pytest.mark.parametrize("text", ["-o model.monkey=3", "data.tokenizer=char", "user=alice",
                                  "optimizer.keystone=1", "sslmode=require", "turkey=brined"])
def test_a_value_whose_name_only_contains_a_secret_word_is_kept(text: str) -> None:
    assert redact_text(text, known=False) == text


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="Linux's /proc only")
def test_ps_shows_no_password_of_the_command_nor_of_a_child_before_its_exec() -> None:
    url = "postgresql://u:Cmd-5v8nq@h/db"
    override = "tune.storage=postgresql://h/db?user=p&sslpassword=Cmd-2k7wd"
    # a forked child shows its parent's command line until it execs: the window in which
    # `tune` once leaked its --storage through a spawned worker
    script = ("import os, sys, time\n"
              "from orchestrator.redaction import redact_command_line\n"
              "redact_command_line()\n"
              "child = os.fork()\n"
              "if child == 0:\n    time.sleep(60)\n    os._exit(0)\n"
              "print(child, sys.argv[2], flush=True)\n"
              "sys.stdin.read()\n"
              "os.kill(child, 9)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, "--storage", url, "-o", override,
                             "--short", "x:ab@"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parents[1])
    try:
        child, seen = proc.stdout.readline().split()
        assert seen == url  # the command itself still has the real value
        for pid in (proc.pid, int(child)):
            shown = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            assert [a.decode() for a in shown[3:]] == [
                "--storage", "postgresql://u:***@h/db",
                "-o", "tune.storage=postgresql://h/db?user=p&sslpassword=***", "--short", "x:ab@"]
    finally:
        proc.communicate("", timeout=30)
    assert proc.returncode == 0


class _Commandlines:
    """Every process command line that holds a secret, sampled while the commands run, and
    the last line sampled of each orchestrator process."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets, self.found, self._stop = secrets, {}, threading.Event()
        self.last: dict[int, str] = {}
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    raw = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                line = raw.replace(b"\0", b" ").decode(errors="replace")
                if any(s in line for s in self.secrets):
                    self.found[int(entry.name)] = line
                if "orchestrator" in line:
                    self.last[int(entry.name)] = line
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _ps_leaks(found: dict[int, str], typed_by_user: set[int]) -> dict[int, str]:
    """Command lines with a secret, but for those the user typed (the secret given as an
    argument is the user's choice; the children must not repeat it)."""
    return {pid: line for pid, line in found.items() if pid not in typed_by_user}


def _mlflow_text(uri: str, into: Path) -> str:
    """Every param, tag, metric key and artifact of every run and experiment, as one text."""
    client = MlflowClient(uri)
    parts = []
    for experiment in client.search_experiments():
        parts += [str(experiment.tags), experiment.name, experiment.artifact_location]
        for run in client.search_runs([experiment.experiment_id], max_results=1000):
            parts += [str(run.data.params), str(run.data.tags), str(run.data.metrics),
                      run.info.run_name or ""]
            folder = into / run.info.run_id
            folder.mkdir(parents=True)
            client.download_artifacts(run.info.run_id, "", str(folder))
    for path in into.rglob("*"):
        if path.is_file():
            parts.append(path.read_bytes().decode(errors="replace"))
    assert len(parts) > 20, "nothing was logged: the search would pass for the wrong reason"
    return "\n".join(parts)


def test_no_password_in_any_output_of_run_tune_worker_and_ui(tmp_path) -> None:
    passwords = ["Trk-9f3kq", "Sto-7x2mw", "Yml-4p8zr", "Ovr-3h6jt"]
    with fresh_database("trk") as tracking_db, fresh_database("sto") as storage_db:
        tracking = f"postgresql://postgres:{passwords[0]}@{HOST}:{PORT}/{tracking_db}"
        client_uri = with_driver(tracking)
        # the storage as query parameters, the YAML's and -o's as SQLAlchemy URLs
        storage = (f"postgresql://{HOST}:{PORT}/{storage_db}?user=postgres"
                   f"&password={passwords[1]}")
        in_yaml = (f"postgresql+psycopg2://postgres:{passwords[2]}@{HOST}:{PORT}/{storage_db}"
                   f"?sslmode=disable")
        override = f"postgresql://{HOST}:{PORT}/{storage_db}?user=postgres&sslpassword=" \
                   f"{passwords[3]}"
        env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(tmp_path / "mlruns"),
               "MLFLOW_TRACKING_URI": tracking}
        (tmp_path / "plain.yaml").write_text(yaml.safe_dump({**EXPERIMENT, "name": "plain"}))
        tune = {**EXPERIMENT, "name": "tuned",
                "tune": {"metric": "val/loss", "direction": "minimize", "trials": 1,
                         "storage": in_yaml, "sampler": {"name": "random", "seed": 1},
                         "space": {"optimizer.lr": {"type": "float", "low": 1e-3,
                                                    "high": 1e-2, "log": True}},
                         "verdict": None}}
        (tmp_path / "tuned.yaml").write_text(yaml.safe_dump(tune))
        (tmp_path / "other.yaml").write_text(yaml.safe_dump({**tune, "name": "never-tuned"}))
        commands = [["run", "-q", "plain.yaml"],
                    ["tune", "tuned.yaml", "--storage", storage, "--workers", "1"],
                    ["tune", "tuned.yaml", "-o", f"tune.storage={override}", "--dry-run"],
                    ["worker", "other.yaml", "--storage", storage]]
        outputs, typed, pids = [], set(), []
        with _Commandlines(passwords) as ps:
            for args in commands:
                started = time.monotonic()
                proc = subprocess.Popen([sys.executable, "-m", "orchestrator", *args], cwd=tmp_path,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
                typed.add(proc.pid)
                pids.append(proc.pid)
                out, err = proc.communicate(timeout=600)
                outputs.append((args, proc.returncode, out + err))
                print(args[0], f"{time.monotonic() - started:.1f} s", flush=True)
            ui_out = _ui_output(tmp_path, env, typed)
        assert [code for _, code, _ in outputs] == [0, 0, 0, 2], outputs
        assert "no study 'never-tuned-torch'" in outputs[3][2]
        assert "sslpassword=***" in outputs[2][2]  # the dry run shows the -o storage, redacted
        terminal = "\n".join(text for *_, text in outputs) + ui_out
        stored = _mlflow_text(client_uri, tmp_path / "artifacts")
        files = "\n".join(p.read_bytes().decode(errors="replace")
                          for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".yaml")
        for password in passwords:
            assert password not in terminal, terminal
            assert password not in stored
            assert password not in files
        assert not _ps_leaks(ps.found, typed), _ps_leaks(ps.found, typed)
        # the 13-second tune: typed with the password, shown without it once it has started
        assert ps.last[pids[1]].rstrip().endswith("&password=*** --workers 1"), ps.last[pids[1]]
        # what was redacted is still there, in a form that says what it was
        client = MlflowClient(client_uri)
        study = client.search_runs([client.get_experiment_by_name("tuned").experiment_id],
                                   filter_string="tags.`orchestrator.kind` = 'study'")[0]
        assert study.data.tags["optuna.storage"].endswith("&password=***")
        assert "postgres:***@" in (tmp_path / "artifacts").joinpath(
            study.info.run_id, "tune.json").read_text()


def _ui_output(tmp_path: Path, env: dict, typed: set[int]) -> str:
    """``orchestrator ui`` on the tracking URI: its banner, and its server's command line while
    it serves; SIGTERM then leaves nothing listening."""
    import socket

    from servers import answers, serve

    def start(port: int) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "ui", "--port",
                                 str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        typed.add(proc.pid)
        return proc

    proc, port = serve(start, lambda port: answers(f"http://127.0.0.1:{port}/health"),
                       timeout=300, what="the UI")
    proc.send_signal(signal.SIGTERM)  # once it serves
    out, _ = proc.communicate(timeout=60)
    with socket.socket() as probe:  # the server's process group is gone with it
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the MLflow server still serves"
    return out
