"""The measurements of ``make bench``, one function per section, each run in a process of its own
by ``benchmarks/bench.py`` (``--section NAME``) and returning plain JSON-able data.

Training-step sections time blocks of steps of several contenders alternately in one process
(``contenders.race``), so machine noise hits every contender alike: only ratios inside one
section are meant to be read. The other sections time whole commands or functions.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import contenders as C

ROOT = Path(__file__).resolve().parent.parent
SHORT_EXPERIMENTS = ("normalization.yaml", "imbalanced.yaml", "embedding.yaml", "vanishing.yaml")
QUICK_EXPERIMENTS = ("normalization.yaml", "imbalanced.yaml", "embedding.yaml")


def _quiet_mlflow() -> None:
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def race(model: str, threads: int, block: int, rounds: int) -> dict[str, Any]:
    """Both backends, tracked and not, and their hand-written twins, in one process."""
    _quiet_mlflow()
    m = C.case(model)
    settings = C.configure_threads(threads, ("torch", "tensorflow"))
    field = [C.ours("torch", m, threads), C.ours("torch", m, threads, tracked=True),
             C.plain_torch(m), C.ours("tensorflow", m, threads),
             C.ours("tensorflow", m, threads, tracked=True), C.plain_tensorflow(m)]
    return {"threads": settings, **C.race(field, m, block=block, rounds=rounds)}


def keras_torch(model: str, threads: int, block: int, rounds: int) -> dict[str, Any]:
    """Keras 3 on its torch backend against the torch backend (run with KERAS_BACKEND=torch)."""
    _quiet_mlflow()
    m = C.case(model)
    settings = C.configure_threads(threads, ("torch",))
    field = [C.ours("torch", m, threads), C.keras_torch(m)]
    return {"threads": settings, **C.race(field, m, block=block, rounds=rounds)}


def tf_variants(model: str, threads: int, block: int, rounds: int,
                timesteps: int | None = None) -> dict[str, Any]:
    """TensorFlow's recurrent path: the backend's step as shipped, the same step compiled by
    XLA (``jit_compile=True``), Keras' ``unroll=True`` (short sequences only), and the
    hand-written Keras step with XLA, against the torch backend."""
    m = C.case(model, timesteps)
    settings = C.configure_threads(threads, ("torch", "tensorflow"))
    field = [C.ours("torch", m, threads), C.ours("tensorflow", m, threads),
             _tf_xla(m, threads), C.plain_tensorflow(m, jit_compile=True)]
    if m.timesteps <= 50:
        field.append(_tf_unrolled(m, threads))
    return {"threads": settings, "timesteps": m.timesteps, "onednn":
            os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
            **C.race(field, m, block=block, rounds=rounds)}


def _tf_xla(m: C.ModelCase, threads: int) -> C.Contender:
    import tensorflow as tf

    from orchestrator.canonical import catalogue
    from orchestrator.contract.backend import Resources
    from orchestrator.plugins import manager as plugin_manager

    backend = plugin_manager.backends().load("tensorflow", Resources(threads=threads))
    built = backend.build_model(m.spec(), C.weights(m))
    session = backend.training_session(
        built, m.loss_spec(), catalogue.resolve("optimizer", "adam", {"lr": C.LR}),
        n_train=m.batch * 1000)
    session._step = tf.function(session._step_impl, jit_compile=True)
    return _session_contender("ours:tensorflow+xla", session)


def _tf_unrolled(m: C.ModelCase, threads: int) -> C.Contender:
    from orchestrator.canonical import catalogue
    from orchestrator.contract.backend import Resources
    from orchestrator.plugins import manager as plugin_manager

    backend = plugin_manager.backends().load("tensorflow", Resources(threads=threads))
    built = backend.build_model(m.spec(), C.weights(m))
    for layer in built.keras_model.layers:  # before the first trace: the loop is unrolled then
        for inner in (layer, getattr(layer, "forward_layer", None),
                      getattr(layer, "backward_layer", None)):
            if inner is not None and hasattr(inner, "unroll"):
                inner.unroll = True
    session = backend.training_session(
        built, m.loss_spec(), catalogue.resolve("optimizer", "adam", {"lr": C.LR}),
        n_train=m.batch * 1000)
    return _session_contender("ours:tensorflow+unroll", session)


def _session_contender(name: str, session: Any) -> C.Contender:
    def run(xs: list, ys: list) -> None:
        for x, y in zip(xs, ys):
            session.train_step(x, y)
        session.end_epoch()
    return C.Contender(name, run, lambda x, y: session.evaluate(x, y)["loss"])


def seqlen(threads: int, block: int, rounds: int, lengths: tuple[int, ...] = (100, 200, 400)
           ) -> dict[str, Any]:
    """Seconds per step of the HAR network at several sequence lengths, both backends, every
    (length, backend) pair alternating in each round; the fitted exponent of time ~ length^k."""
    import numpy as np

    settings = C.configure_threads(threads, ("torch", "tensorflow"))
    cases = {t: C.case("har", t) for t in lengths}
    fields = {(t, b): C.ours(b, cases[t], threads) for t in lengths
              for b in ("torch", "tensorflow")}
    data = {t: cases[t].batches(block) for t in lengths}
    for (t, _), c in fields.items():
        c.run(data[t][0][:2], data[t][1][:2])
    times: dict[str, list[float]] = {f"{b}@{t}": [] for (t, b) in fields}
    for _ in range(rounds):
        for (t, b), c in fields.items():
            started = time.perf_counter()
            c.run(*data[t])
            times[f"{b}@{t}"].append((time.perf_counter() - started) / block)
    exponents = {}
    for b in ("torch", "tensorflow"):
        med = [statistics.median(times[f"{b}@{t}"]) for t in lengths]
        exponents[b] = float(np.polyfit(np.log(lengths), np.log(med), 1)[0])
    return {"threads": settings, "seconds_per_step": times, "exponent": exponents,
            "lengths": list(lengths)}


def overhead(quick: bool, jobs: int = 2) -> dict[str, Any]:
    """``orchestrator run`` on the shipped short experiments (one seed, one epoch: the fixed
    cost does not depend on either) into a temporary store; every run's
    ``system/overhead_seconds`` (and its CPU time) read back, and the invocation's wall time
    against its ideal."""
    _quiet_mlflow()
    files = [str(ROOT / "experiments" / f) for f in (QUICK_EXPERIMENTS if quick
                                                       else SHORT_EXPERIMENTS)]
    folder = tempfile.mkdtemp(prefix="orchestrator-bench-runs-")
    uri = f"sqlite:///{folder}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "ORCHESTRATOR_JOBS": str(jobs)}
    env.pop("ORCHESTRATOR_THREADS", None)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "orchestrator", "run", *files, "-q", "--jobs",
                           str(jobs), "-o", "seeds=[0]", "-o", "train.epochs=1"],
                          env=env, capture_output=True, text=True, cwd=folder)
    elapsed = time.perf_counter() - started
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = []
    for experiment in client.search_experiments():
        for r in client.search_runs([experiment.experiment_id],
                                    "tags.`orchestrator.kind` = 'run'", max_results=1000):
            metrics = r.data.metrics
            runs.append({"experiment": experiment.name, "name": r.info.run_name,
                         "status": r.info.status,
                         "overhead": metrics.get("system/overhead_seconds"),
                         "overhead_cpu": metrics.get("system/overhead_cpu_seconds")})
    shutil.rmtree(folder, ignore_errors=True)
    found = re.search(r"wall time ([\d.]+) s, ideal ([\d.]+) s", done.stdout)
    return {"runs": runs, "returncode": done.returncode, "command_seconds": elapsed,
            "files": [Path(f).name for f in files], "jobs": jobs,
            "wall": float(found.group(1)) if found else None,
            "ideal": float(found.group(2)) if found else None,
            "stderr_tail": done.stderr[-2000:] if done.returncode else ""}


DATA_FILES = {"har": "har_lecture.yaml", "har_better": "har_better.yaml",
              "imbalanced": "imbalanced.yaml", "text": "text.yaml"}


def prepare_once(task_name: str) -> float:
    """Seconds of one ``Task.prepare`` of the shipped experiment's data (in this process, its
    libraries imported first: a warm worker has them already)."""
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from orchestrator.config import loader
    from orchestrator.plugins import manager as plugin_manager

    exp = loader.load([ROOT / "experiments" / DATA_FILES[task_name]])[0]
    task = plugin_manager.tasks().get(exp.task)()
    started = time.perf_counter()
    task.prepare(exp.data, seed=0, folds=exp.folds)
    return time.perf_counter() - started


def data(tasks: tuple[str, ...], repeats: int = 3) -> dict[str, Any]:
    """First build (an empty cache folder) against from cache (the same folder again), each in
    a fresh process, per task; ``repeats`` times with a new folder each, the lowest of each
    (other processes, and this VM's first touch of fresh memory pages, only ever add time)."""
    out = {}
    for name in tasks:
        firsts, cached = [], []
        for _ in range(repeats):
            folder = tempfile.mkdtemp(prefix="orchestrator-bench-cache-")
            env = {**os.environ, "ORCHESTRATOR_CACHE_DIR": folder}
            firsts.append(_child_seconds(["--section", "prepare", "--task", name], env))
            cached.append(_child_seconds(["--section", "prepare", "--task", name], env))
            shutil.rmtree(folder, ignore_errors=True)
        out[name] = {"first_build": min(firsts), "from_cache": min(cached),
                     "first_build_samples": firsts, "from_cache_samples": cached}
    return out


def _child_seconds(args: list[str], env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("bench.py")), *args],
                          env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


CLI = {"--help": ["--help"], "plugins": ["plugins"], "validate": ["validate"]}


def cli(repeats: int = 3) -> dict[str, Any]:
    """CPU seconds (user + system of the child) of the fast commands; the lowest of
    ``repeats`` runs (other processes on the machine only ever add CPU time)."""
    experiments = sorted(str(p) for p in (ROOT / "experiments").glob("*.yaml"))
    out: dict[str, Any] = {}
    for name, args in CLI.items():
        command = [sys.executable, "-m", "orchestrator", *args,
                   *(experiments if name == "validate" else [])]
        samples = []
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out[name] = {"cpu_seconds": samples, "min": min(samples)}
    return out


def cpu(repeats: int = 3) -> dict[str, Any]:
    """The machine's speed in one plain figure: a Python loop of 10 M additions."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        samples.append(time.perf_counter() - started)
    return {"seconds": samples, "min": min(samples), "cpu_model": _cpu_model(),
            "cores": len(os.sched_getaffinity(0))}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
