"""A catalogue of malformed inputs: each gives one line naming the file and the key, exit status 2,
and leaves no MLflow run (no store at all) behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main

VALID = {
    "task": "digits",
    "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
    "optimizer": {"name": "adam"},
    "train": {"epochs": 1},
    "backends": ["torch"],
}


def _with(**changes) -> dict:
    config = yaml.safe_load(yaml.safe_dump(VALID))
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        if value is _DELETE:
            node.pop(last)
        else:
            node[last] = value
    return config


_DELETE = object()

HYPO = {"task": "imbalanced", "loss": {"name": "binary_crossentropy", "from_logits": True},
        "optimizer": {"name": "adam"}, "train": {"epochs": 1}, "backends": ["torch"]}
HAR = {"task": "har", "loss": {"name": "categorical_crossentropy"},
       "optimizer": {"name": "adam"}, "train": {"epochs": 1}, "backends": ["torch"]}


def _table(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


# (id, config or raw text, extra CLI args, key path expected in the message, words expected)
CASES = [
    ("yaml-syntax", "task: digits\nloss: {name: bce\n", [], "", "invalid YAML: line"),
    ("empty-file", "", [], "", "empty file"),
    ("top-level-list", "- task: digits\n", [], "", "top level must be a mapping"),
    ("unknown-top-key", _with(trian={"epochs": 1}), [], "trian",
     "unknown key 'trian' (did you mean 'train'?)"),
    ("missing-task", _with(task=_DELETE), [], "task", "is required"),
    ("unknown-task", _with(task="digit"), [], "task", "did you mean 'digits'"),
    ("unknown-loss", _with(loss__name="sparse_categorical_crossentropi"), [], "loss.name",
     "did you mean 'sparse_categorical_crossentropy'"),
    ("unknown-optimizer", _with(optimizer__name="adamm"), [], "optimizer.name",
     "did you mean 'adam'"),
    ("unknown-backend", _with(backends=["troch"]), [], "backends[0]",
     "did you mean 'torch'"),
    ("negative-epochs", _with(train__epochs=-3), [], "train.epochs",
     "greater than or equal to 1"),
    ("wrong-type-batch", _with(train__batch_size="big"), [], "train.batch_size", "'big'"),
    ("wrong-type-lr", _with(optimizer__lr="fast"), [], "optimizer.lr", "expected a number"),
    ("unknown-hyperparameter", _with(optimizer__betas=[0.9, 0.99]), [], "optimizer",
     "no hyperparameter 'betas'"),
    ("out-of-range-hyperparameter", _with(optimizer__beta1=1.5), [], "optimizer.beta1",
     "0 <= beta1 < 1"),
    ("unknown-model-key", _with(model={"norms": "batch"}), [], "model.norms",
     "did you mean 'norm'"),
    ("bad-model-choice", _with(model={"norm": "group"}), [], "model.norm", "'batch'"),
    ("loss-does-not-fit-task", _with(loss={"name": "binary_crossentropy", "from_logits": True}),
     [], "loss.name", "does not fit task 'digits'"),
    ("probabilities-into-logits", _with(loss__from_logits=False), [], "loss.from_logits",
     "must be true"),
    ("empty-matrix-axis", _with(matrix={"model.norm": []}), [], "matrix", "has no values"),
    ("matrix-unknown-section", _with(matrix={"modle.norm": ["batch"]}), [], "matrix.modle.norm",
     "did you mean 'model'"),
    ("bad-dtype", _with(train__dtype="float16"), [], "train.dtype", "float32"),
    ("zero-patience", _with(train__early_stopping={"patience": 0}), [],
     "train.early_stopping.patience", "greater than or equal to 1"),
    ("one-fold", _with(cv={"folds": 1}), [], "cv.folds", "greater than or equal to 2"),
    ("no-seeds", _with(seeds=[]), [], "seeds", "at least 1"),
    ("duplicate-backend", _with(backends=["torch", "torch"]), [], "backends", "twice"),
    ("override-syntax", VALID, ["-o", "train.epochs"], "-o train.epochs",
     "section.setting=VALUE"),
    ("override-through-scalar", VALID, ["-o", "train.epochs.max=3"], "train.epochs",
     "cannot set"),
    ("override-negative-epochs", VALID, ["-o", "train.epochs=-1"], "train.epochs",
     "greater than or equal to 1"),
    ("focal-alpha-out-of-range", {**HYPO, "loss": {"name": "binary_focal", "alpha": 1.5,
                                                     "from_logits": True}},
     [], "loss.alpha", "0 <= alpha <= 1"),
    ("missing-data-file", {**HYPO, "data": {"source": "/nonexistent/table.csv",
                                            "label": "y"}}, [], "data", "not found"),
    ("window-larger-than-recordings", {**HAR, "data": {"window": 3000, "stride": 100}}, [],
     "data.window", "longest recording"),
]


def _data_cases(tmp: Path) -> list:
    """Cases that need a file on disk (the user's own data)."""
    return [
        ("non-numeric-column", {**HYPO, "data": {"source": _table(
            tmp, "t.csv", "a,b,y\n1,2,0\n3,oops,1\n4,5,0\n"), "label": "y"}}, [], "data",
         "'b'"),
        ("label-column-absent", {**HYPO, "data": {"source": _table(
            tmp, "u.csv", "a,b,Target\n1,2,0\n3,4,1\n"), "label": "target"}}, [], "data",
         "did you mean 'Target'"),
        ("empty-data-file", {**HYPO, "data": {"source": _table(tmp, "e.csv", ""),
                                              "label": "y"}}, [], "data", "empty"),
    ]


def _run_case(tmp_path: Path, monkeypatch, capsys, config, args, command="run"):
    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path / "mlruns"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "experiment.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    code = main([command, "--quiet", str(path), *args] if command == "run"
                else [command, str(path), *args])
    return code, capsys.readouterr(), path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_input_is_one_line_exit_2_and_no_run(case, tmp_path, monkeypatch, capsys):
    _check(case, tmp_path, monkeypatch, capsys)


def test_malformed_user_data(tmp_path, monkeypatch, capsys):
    for case in _data_cases(tmp_path):
        _check(case, tmp_path, monkeypatch, capsys)


def _check(case, tmp_path, monkeypatch, capsys) -> None:
    _id, config, args, key, words = case
    code, out, path = _run_case(tmp_path, monkeypatch, capsys, config, args)
    lines = out.err.strip().splitlines()
    assert code == 2, f"{_id}: exit {code}\n{out.err}\n{out.out}"
    assert len(lines) == 1, f"{_id}: {out.err}"
    message = lines[0]
    where = "command line" if _id == "override-syntax" else str(path)
    assert where in message, message
    assert key in message and words in message, message
    assert not (tmp_path / "mlruns").exists(), f"{_id}: the tracking store was touched"


def test_missing_experiment_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path / "mlruns"))
    code = main(["validate", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "nope.yaml: file not found" in err


def test_duplicate_experiment_names_across_files(tmp_path, capsys):
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump({**VALID, "name": "same"}))
    code = main(["validate", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "'same' is also the name of the experiment in" in err


def test_every_shipped_experiment_validates(capsys):
    files = sorted(str(p) for p in Path("experiments").rglob("*.yaml"))
    assert files, "no experiment files found"
    assert main(["validate", *files]) == 0, capsys.readouterr().err


def test_plan_prints_the_matrix_without_touching_the_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path / "mlruns"))
    code, out, _ = _run_case(tmp_path, monkeypatch, capsys,
                             {**VALID, "backends": ["torch", "tensorflow"], "seeds": [0, 1],
                              "matrix": {"model.norm": ["none", "batch"]}}, ["--dry-run"])
    assert code == 0
    assert "8 run(s)" in out.out
    assert out.out.count("norm=batch") == 4
    assert not (tmp_path / "mlruns").exists()
