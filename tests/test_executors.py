"""Executors as plugins (``orchestrator_add_executors``), their settings from the files and the
command line, and the checks every remote executor makes before anything starts (fast: no
cluster here; tests/test_cluster.py runs the real engines)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from orchestrator.config.loader import ConfigError, resolve
from orchestrator.orchestration.executors.base import (ExecutorError, ExecutorSettings,
                                                       load_executor, settings_for)
from orchestrator.orchestration.executors.sharing import (check_shared_storage,
                                                          check_shared_tracking)
from orchestrator.plugins import manager as plugin_manager

DIGITS = {"task": "digits", "loss": {"name": "sparse_categorical_crossentropy",
                                     "from_logits": True},
          "optimizer": {"name": "adam"}, "train": {"epochs": 1}, "backends": ["torch"]}


def test_hook_orchestrator_add_executors_registers_the_built_ins_and_third_parties() -> None:
    from orchestrator import hookimpl
    from orchestrator.plugins.registry import ExecutorInfo

    class ThirdParty:
        @hookimpl
        def orchestrator_add_executors(self, registry):
            registry.add_executor(ExecutorInfo(
                "mine", "orchestrator.orchestration.executors.local:LocalExecutor"))
            registry.add_executor(ExecutorInfo(
                "ray", "orchestrator.orchestration.executors.local:LocalExecutor"))

    state = plugin_manager.build(extra_plugins=(("third", ThirdParty()),))
    assert {"local", "ray", "slurm", "mine"} <= set(state.executors.names())
    builtin = {p.name: p.target for p in state.loaded if p.builtin}
    assert builtin["executors"] == "orchestrator.orchestration.executors"
    assert state.executors.info("ray").distributions == ("ray",)  # the first one stays
    assert state.executors.info("mine").plugin == "third"
    (clash,) = [f for f in state.failures if f.name == "third"]
    assert clash.kind == "duplicate" and "executor 'ray' is already registered" in clash.error
    assert load_executor(ExecutorSettings()).remote is False
    with pytest.raises(ExecutorError, match="unknown executor 'rey' \\(did you mean 'ray'"):
        load_executor(ExecutorSettings(name="rey"))


def test_settings_come_from_the_files_then_the_command_line() -> None:
    ray = resolve({**DIGITS, "name": "a", "executor": {"name": "ray", "address": "h:1"},
                   "resources": {"cpus": 2, "memory_gb": 1.5}}, "a.yaml")
    assert ray[0].resources.cpus == 2 and ray[0].resources.memory_gb == 1.5
    assert settings_for(ray) == ExecutorSettings(name="ray", address="h:1")
    assert settings_for(ray, name="slurm", address=None).name == "slurm"
    assert settings_for(resolve({**DIGITS, "name": "b"}, "b.yaml")) == ExecutorSettings()
    short = resolve({**DIGITS, "name": "c", "executor": "slurm"}, "c.yaml")
    with pytest.raises(ConfigError, match="c.yaml: executor: differs from a.yaml's"):
        settings_for([*ray, *short])
    with pytest.raises(ConfigError, match="resources.cpus"):
        resolve({**DIGITS, "name": "d", "resources": {"cpus": 0}}, "d.yaml")


@pytest.mark.parametrize("uri", ["sqlite:////tmp/x/mlflow.db", "/tmp/mlruns", "file:///tmp/m"])
def test_a_remote_executor_refuses_a_tracking_store_on_this_machine(uri: str) -> None:
    with pytest.raises(ExecutorError, match="is local to this machine, which the cluster's "
                                            "nodes cannot share; start a tracking server"):
        check_shared_tracking("ray", uri)
    check_shared_tracking("ray", "postgresql://user@db:5432/mlflow")  # a server: fine


def test_a_tracking_server_that_does_not_answer_is_refused() -> None:
    from servers import refused_port

    with refused_port() as port, pytest.raises(ExecutorError,
                                               match=f"127.0.0.1:{port} does not answer"):
        check_shared_tracking("slurm", f"http://127.0.0.1:{port}")


def test_cluster_tuning_workers_need_a_database_storage() -> None:
    for storage in ("sqlite:///optuna.db", "journal:/tmp/optuna.log"):
        with pytest.raises(ExecutorError, match="is local to this machine; give --storage"):
            check_shared_storage("ray", storage)
    check_shared_storage("ray", "postgresql+psycopg2://u@db/optuna")


def test_run_with_an_unknown_executor_or_a_local_store_is_one_line_and_exit_2(tmp_path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump({**DIGITS, "name": "x"}))
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(tmp_path / "mlruns")}
    env.pop("MLFLOW_TRACKING_URI", None)
    for options, words in ((["--executor", "nope"], "unknown executor 'nope'"),
                           (["--executor", "slurm"], "is local to this machine")):
        done = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(path),
                               *options], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr
    assert not (tmp_path / "mlruns").exists()  # refused before the store was touched


def test_the_slurm_job_folder_is_created_private(tmp_path) -> None:
    """Its pickled jobs carry the URLs, passwords included: a new folder is the owner's only;
    an existing one keeps its mode."""
    pytest.importorskip("submitit")
    from orchestrator.config.schema import RunResources
    from orchestrator.orchestration.executors.slurm import SlurmExecutor

    new = tmp_path / "shared" / "jobs"
    SlurmExecutor(ExecutorSettings("slurm", folder=str(new), cluster="local"))._executor(
        RunResources(), "x")
    assert new.is_dir() and new.stat().st_mode & 0o777 == 0o700
    existing = tmp_path / "team"
    existing.mkdir(mode=0o775)
    existing.chmod(0o775)
    SlurmExecutor(ExecutorSettings("slurm", folder=str(existing), cluster="local"))._executor(
        RunResources(), "x")
    assert existing.stat().st_mode & 0o777 == 0o775
