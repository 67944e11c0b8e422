"""`orchestrator compare` on a real store: 3 seeds of a small digits experiment on both backends.

Every number the comparison prints is recomputed here straight from `mlflow.search_runs` and
pandas/scipy; the paired test runs on matched seeds; a seed missing on one backend is reported;
the HTML report is opened in headless Chromium; a real `mlflow server` serves the comparison run;
bad input is one line, exit status 2, and writes nothing.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from scipy import stats

from orchestrator.cli import main
from servers import answers, refused_port, serve

CONFIG = {
    "name": "cmp-small",
    "description": "digits, 3 seeds on both backends, for the comparison tests",
    "task": "digits",
    "data": {"loss_threshold": 0.01},  # never reached in 2 epochs: no value, a tag says why
    "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
    "optimizer": {"name": "adam"},
    "train": {"epochs": 2, "batch_size": 128},
    "backends": ["torch", "tensorflow"],
    "seeds": [0, 1, 2],
}


def _env(root: Path) -> dict[str, str]:
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real invocation: 6 runs; returns (root, the run command's output, the yaml path)."""
    tmp = tmp_path_factory.mktemp("compare")
    path = tmp / "cmp-small.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    done = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--quiet", str(path)],
                          capture_output=True, text=True, env=_env(tmp / "mlruns"), timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return tmp / "mlruns", done.stdout, path


@pytest.fixture
def uri(store, monkeypatch) -> str:
    root = store[0]
    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{root / 'mlflow.db'}"


def _direct_runs(uri: str) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["cmp-small"],
                              filter_string="tags.`orchestrator.kind` = 'run'")
    runs["backend"] = runs["params.backend"]
    runs["seed"] = runs["params.seed"].astype(int)
    return runs


def _compare_json(capsys, *args: str) -> dict:
    assert main(["compare", *args, "--format", "json", "--no-log"]) == 0
    return json.loads(capsys.readouterr().out)


def _t_interval(values: np.ndarray) -> tuple[float, float, float, float]:
    n, mean, std = len(values), values.mean(), values.std(ddof=1)
    half = stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def test_run_closes_with_the_comparison_table_and_logs_a_comparison_run(store) -> None:
    root, out, _ = store
    assert "tensorflow - torch (paired)" in out and "test/accuracy" in out
    assert "Summary" not in out  # the per-run table is replaced
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cmp-small")
    assert experiment.tags["mlflow.note.content"] == CONFIG["description"]
    runs = client.search_runs([experiment.experiment_id])
    trained = {r.info.run_id for r in runs if r.data.tags["orchestrator.kind"] == "run"}
    comparison = min((r for r in runs if r.data.tags["orchestrator.kind"] == "comparison"),
                     key=lambda r: r.info.start_time)  # the one the run command logged
    assert set(comparison.data.tags["orchestrator.compared_runs"].split(",")) == trained
    assert comparison.data.metrics == {}  # no chart per summary number
    assert "| test/accuracy |" in comparison.data.tags["mlflow.note.content"]


def test_every_number_equals_a_direct_mlflow_and_pandas_computation(uri, store, capsys) -> None:
    runs = _direct_runs(uri)
    assert len(runs) == 6
    result = _compare_json(capsys, str(store[2]))
    (exp,) = result["experiments"]
    assert exp["backends"] == ["torch", "tensorflow"] and exp["main_metric"] == "test/accuracy"
    metrics = {(r["metric"], r["backend"]): r for r in exp["metrics"]}
    diffs = {r["metric"]: r for r in exp["differences"]}
    assert {m for m, _ in metrics} == {"test/accuracy", "test/macro_f1"}
    assert main(["compare", str(store[2]), "--format", "markdown", "--no-log"]) == 0
    table = capsys.readouterr().out
    for metric in ("test/accuracy", "test/macro_f1"):
        for backend in ("torch", "tensorflow"):
            values = runs[runs["backend"] == backend][f"metrics.{metric}"].to_numpy()
            expected = _t_interval(values)
            row = metrics[(metric, backend)]
            assert row["n"] == 3
            assert [row["mean"], row["std"], row["low"], row["high"]] == pytest.approx(
                expected, rel=1e-12, abs=1e-15)
            for number in expected:
                assert f"{number:.4f}" in table
        wide = runs.pivot(index="seed", columns="backend", values=f"metrics.{metric}")
        d = (wide["tensorflow"] - wide["torch"]).to_numpy()
        row = diffs[metric]
        assert row["n"] == 3 and row["reference"] == "torch"
        assert row["mean"] == pytest.approx(d.mean(), abs=1e-15)
        assert row["std"] == pytest.approx(d.std(ddof=1), rel=1e-12, abs=1e-15)
        if d.std(ddof=1) > 0:
            p_t = stats.ttest_rel(wide["tensorflow"], wide["torch"]).pvalue
            assert row["p_t"] == pytest.approx(p_t, rel=1e-9)
            assert f"paired t p={p_t:.3g}" in table
        if np.any(d != 0):
            p_w = stats.wilcoxon(wide["tensorflow"], wide["torch"], zero_method="zsplit").pvalue
            assert row["p_wilcoxon"] == pytest.approx(p_w, rel=1e-9)
        assert f"{d.mean():+.4f}" in table or f"{d.mean():+.2e}" in table
    # curve agreement: per epoch |tensorflow - torch| / |torch| of train/loss, seed by seed
    client = MlflowClient(uri)
    loss = {(r.backend, r.seed): [m.value for m in client.get_metric_history(r.run_id,
                                                                            "train/loss")]
            for r in runs.itertuples()}
    relative = np.array([[abs(t - a) / abs(a) for a, t in zip(loss[("torch", s)],
                                                              loss[("tensorflow", s)])]
                         for s in (0, 1, 2)])
    (agreement,) = exp["curve_agreement"]
    assert agreement["units"] == 3 and agreement["epochs"] == 2
    assert agreement["first_epoch_difference"] == pytest.approx(relative[:, 0].max(), rel=1e-9)
    assert agreement["max_difference"] == pytest.approx(relative.max(), rel=1e-9)
    over = np.argwhere(relative > 1e-3)
    assert agreement["first_epoch_over_rtol"] == (int(over[:, 1].min()) + 1 if len(over)
                                                  else None)
    # speed and memory: each run's median over epochs, then the mean over seeds
    for row in exp["speed"]:
        mine = runs[runs["backend"] == row["backend"]]
        speeds = [np.median([m.value for m in client.get_metric_history(r, "system/"
                                                                       "samples_per_second")])
                  for r in mine["run_id"]]
        peaks = [max(m.value for m in client.get_metric_history(r, "system/peak_rss_mb"))
                 for r in mine["run_id"]]
        assert row["runs"] == 3
        assert row["samples_per_second"] == pytest.approx(np.mean(speeds), rel=1e-9)
        assert row["peak_rss_mb"] == pytest.approx(np.mean(peaks), rel=1e-9)


def test_a_seed_on_one_backend_only_is_reported_and_left_out_of_the_pairs(uri, capsys
                                                                           ) -> None:
    runs = _direct_runs(uri)
    dropped = runs[(runs["backend"] == "tensorflow") & (runs["seed"] == 2)]["run_id"].iloc[0]
    kept = [r for r in runs["run_id"] if r != dropped]
    result = _compare_json(capsys, "--runs", *kept)
    (exp,) = result["experiments"]
    counts = {(r["metric"], r["backend"]): r["n"] for r in exp["metrics"]}
    assert counts[("test/accuracy", "torch")] == 3
    assert counts[("test/accuracy", "tensorflow")] == 2
    row = next(r for r in exp["differences"] if r["metric"] == "test/accuracy")
    assert row["n"] == 2 and row["only_reference"] == ["seed 2"] and row["only_other"] == []
    wide = runs[runs["run_id"].isin(kept)].pivot(index="seed", columns="backend",
                                                 values="metrics.test/accuracy").dropna()
    assert list(wide.index) == [0, 1]
    d = wide["tensorflow"] - wide["torch"]
    assert row["mean"] == pytest.approx(d.mean(), abs=1e-15)
    if d.std() > 0:
        assert row["p_t"] == pytest.approx(stats.ttest_rel(wide["tensorflow"],
                                                           wide["torch"]).pvalue, rel=1e-9)
    assert any("seed 2 only on torch" in note for note in exp["notes"])
    assert main(["compare", "--runs", *kept, "--no-log"]) == 0
    assert "seed 2 only on torch" in capsys.readouterr().out


def test_runs_log_no_nan_no_step_twice_and_named_linked_models(uri) -> None:
    client = MlflowClient(uri)
    for run in _direct_runs(uri).itertuples():
        tags = client.get_run(run.run_id).data.tags
        assert "train/epochs_to_threshold" not in client.get_run(run.run_id).data.metrics
        assert tags["orchestrator.no_value.train/epochs_to_threshold"] == \
            "train/loss never reached 0.01 in 2 epoch(s)"
        for key in client.get_run(run.run_id).data.metrics:
            steps = [m.step for m in client.get_metric_history(run.run_id, key)]
            assert len(steps) == len(set(steps)), (key, steps)
        model = client.get_logged_model(tags["orchestrator.model_uri"].removeprefix("models:/"))
        assert model.name == f"cmp-small-{run.backend}"
        assert model.source_run_id == run.run_id
        assert {"test/accuracy", "train/loss", "val/accuracy"} <= {m.key for m in model.metrics}


# --- the HTML report in a real browser ----------------------------------------------------


def _chromium() -> str:
    """The chromium binary, installed with apt-get when missing (root in CI); skip, saying
    why, where it cannot be installed."""
    found = shutil.which("chromium")
    if found:
        return found
    command = ["apt-get", "install", "-y", "-o", "DPkg::Lock::Timeout=600", "chromium",
               "chromium-driver"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    except (OSError, subprocess.SubprocessError) as exc:
        reason = [str(exc)]
    found = shutil.which("chromium")
    if not found:
        print(f"chromium could not be installed: {reason[0]}")
        pytest.skip(f"chromium could not be installed: {reason[0]}")
    return found


def test_html_report_renders_in_headless_chromium(store, uri, tmp_path, capsys) -> None:
    from PIL import Image

    exp = _compare_json(capsys, str(store[2]))["experiments"][0]
    assert main(["compare", str(store[2]), "--html", str(tmp_path / "report"), "--no-log"]) == 0
    capsys.readouterr()
    (page,) = (tmp_path / "report").glob("comparison-*.html")
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # nothing fetched to open it
    assert text.count("data:image/png;base64,") >= 4
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, "--window-size=1280,2400", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=180, check=True)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2400, 1280) and pixels.std() > 20, pixels.std()
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=180, check=True).stdout
    assert "torch" in dom and "tensorflow" in dom
    for row in exp["metrics"]:
        assert f"{row['mean']:.4f}" in dom and f"{row['low']:.4f}" in dom


# --- the comparison run through a real tracking server --------------------------------------


def _get(base: str, route: str, **query: str) -> bytes:
    url = f"{base}{route}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def test_a_real_mlflow_server_serves_the_comparison_run(store, uri, capsys) -> None:
    assert main(["compare", "cmp-small"]) == 0
    logged = capsys.readouterr().err
    run_id = logged.split("comparison run ")[1].split()[0]
    root = store[0]
    server, port = serve(
        lambda port: subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True),
        lambda port: answers(f"http://127.0.0.1:{port}/health"), timeout=180,
        what="mlflow server")
    base = f"http://127.0.0.1:{port}"
    try:
        run = json.loads(_get(base, "/api/2.0/mlflow/runs/get", run_id=run_id))["run"]
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        assert tags["orchestrator.kind"] == "comparison"
        compared = tags["orchestrator.compared_runs"].split(",")
        assert sorted(compared) == sorted(_direct_runs(uri)["run_id"])
        for other in compared:
            info = json.loads(_get(base, "/api/2.0/mlflow/runs/get", run_id=other))["run"]
            assert info["info"]["status"] == "FINISHED"
            assert info["info"]["experiment_id"] == run["info"]["experiment_id"]
        listed = json.loads(_get(base, "/api/2.0/mlflow/artifacts/list", run_id=run_id))
        assert {"report.html", "plots", "tables"} <= {f["path"] for f in listed["files"]}
        report = _get(base, "/get-artifact", path="report.html", run_uuid=run_id).decode()
        assert "tensorflow" in report and "data:image/png;base64," in report
        table = _get(base, "/get-artifact", path="tables/metrics.csv", run_uuid=run_id)
        frame = pd.read_csv(io.BytesIO(table))
        assert set(frame["backend"]) == {"torch", "tensorflow"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


# --- bad input: one line, exit status 2, nothing written --------------------------------------


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _bad(capsys, monkeypatch, args: list[str], words: str, watch: Path, *,
         uri: str | None = None) -> None:
    if uri is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    before = _snapshot(watch)
    assert main(["compare", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert _snapshot(watch) == before


def test_bad_input_is_one_line_exit_2_and_writes_nothing(store, uri, tmp_path, capsys,
                                                         monkeypatch) -> None:
    root = store[0]
    html = ["--html", str(tmp_path / "html")]
    empty = tmp_path / "empty.yaml"
    empty.write_text(yaml.safe_dump({**CONFIG, "name": "never-run"}))
    _bad(capsys, monkeypatch, ["no-such-experiment", *html],
         "experiment 'no-such-experiment' has no runs", root)
    _bad(capsys, monkeypatch, [str(empty), *html], "experiment 'never-run' has no runs", root)
    _bad(capsys, monkeypatch, [str(store[2]), "-o", "train.epochs=7", *html],
         "has no finished runs of this configuration", root)
    _bad(capsys, monkeypatch, ["--runs", "0123456789abcdef", *html],
         "no run '0123456789abcdef'", root)
    assert not (tmp_path / "html").exists()
    # runs of two experiments (in a copy of the store holding a second experiment's run)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(root / "mlflow.db", copy / "mlflow.db")
    copy_uri = f"sqlite:///{copy / 'mlflow.db'}"
    client = MlflowClient(copy_uri)
    other = client.create_run(client.create_experiment("other"), tags={"orchestrator.kind": "run"})
    client.set_terminated(other.info.run_id)
    one = _direct_runs(uri)["run_id"].iloc[0]
    _bad(capsys, monkeypatch, ["--runs", one, other.info.run_id], "different experiments "
         "(cmp-small, other)", copy, uri=copy_uri)
    # stores that cannot be opened: missing, not a database, a server nobody runs
    missing = tmp_path / "missing" / "mlflow.db"
    _bad(capsys, monkeypatch, ["cmp-small"], "no MLflow store at", tmp_path,
         uri=f"sqlite:///{missing}")
    assert not missing.parent.exists()
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    _bad(capsys, monkeypatch, ["cmp-small"], "cannot open the tracking store", tmp_path,
         uri=f"sqlite:///{junk}")
    with refused_port() as nobody:
        _bad(capsys, monkeypatch, ["cmp-small"], "cannot open the tracking store", tmp_path,
             uri=f"http://127.0.0.1:{nobody}")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    (tmp_path / "a-file").write_text("")
    _bad(capsys, monkeypatch, ["cmp-small", "--html", str(tmp_path / "a-file")],
         "exists and is not a folder", root)


def test_every_comparison_plot_has_whole_epoch_ticks() -> None:
    from orchestrator.comparison import plots
    from orchestrator.evaluation.plots import learning_curves

    means = pd.DataFrame({"variant": "-", "backend": ["torch"] * 3 + ["tensorflow"] * 3,
                          "step": [1, 2, 3] * 2, "mean": [3.0, 2.0, 1.5] * 2,
                          "low": [2.9, 1.9, 1.4] * 2, "high": [3.1, 2.1, 1.6] * 2, "n": 3})
    epochs = pd.DataFrame({"variant": "-", "backend": "tensorflow", "unit": "seed 0",
                           "epoch": [1, 2, 3], "relative_difference": [0.0, 1e-9, 1e-7]})
    figures = [plots.curves_figure(means, ["-"], ["torch", "tensorflow"], key="train/loss",
                                   title="t"),
               plots.difference_figure(epochs, ["-"], 1e-3, title="t"),
               learning_curves({"train/loss": [3.0, 2.0, 1.5], "val/accuracy": [0.1, 0.5, 0.7]})]
    for figure in figures:
        figure.canvas.draw()
        for ax in figure.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
