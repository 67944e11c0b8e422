"""Hostile input: each case is refused by ``validate`` with exit status 2 and exactly the line
expected, quickly and with bounded memory, before any MLflow run or store exists.

Most cases run ``validate`` in-process (fast); a few go through the real command line in a
subprocess and check the exit status, the single line and that no traceback is printed.
``{file}`` in an expected line stands for the experiment file's path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.config import limits

BASE = {
    "task": "digits",
    "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
    "optimizer": {"name": "adam"},
    "train": {"epochs": 1},
    "backends": ["torch"],
}
HEAD = yaml.safe_dump(BASE, sort_keys=False)
IMBALANCED = {**BASE, "task": "imbalanced",
              "loss": {"name": "binary_crossentropy", "from_logits": True}}
VANISHING = {**BASE, "task": "vanishing"}


def _with(base: dict = BASE, **changes: object) -> str:
    """``base`` with dotted changes (``optimizer__lr=...``) as YAML text."""
    config = yaml.safe_load(yaml.safe_dump(base))
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return yaml.safe_dump(config, sort_keys=False, width=10**6)


def _edit(old: str, new: str) -> str:
    assert old in HEAD
    return HEAD.replace(old, new)


# a 1 KB "billion laughs": nine levels of nine aliases, 9**9 strings once expanded
BOMB = "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9) if p else ', '.join(['lol'] * 9)}]\n"
               for p, c in zip([None, *"abcdefgh"], "abcdefghi")) + HEAD + "description: *i\n"
DEEP = HEAD + "description: " + "[" * 100_000 + "]" * 100_000 + "\n"
LONG_KEY = "k" * 2000
LONG_TASK = "t" * 10_000

# (id, file text, extra command-line arguments, the exact error line after "error: ")
CASES = [
    # --- the file itself -----------------------------------------------------------------
    ("alias-bomb", BOMB, [],
     '{file}: invalid YAML: line 1, column 1: expands to more than 100,000 values (aliases '
     'repeat what they name)'),
    ("too-many-aliases", "x: &x 1\ndescription: [" + ", ".join(["*x"] * 101) + "]\n" + HEAD, [],
     '{file}: invalid YAML: line 2, column 415: more than 100 aliases (*name)'),
    ("deep-brackets", DEEP, [],
     '{file}: invalid YAML: line 11, column 1013: nested deeper than 64 levels'),
    ("deep-mappings", HEAD + "data: " + "{a: " * 100 + "1" + "}" * 100 + "\n", [],
     '{file}: invalid YAML: line 11, column 259: nested deeper than 64 levels'),
    ("duplicate-top-key", HEAD + "task: text\n", [],
     "{file}: invalid YAML: line 11, column 1: duplicate key 'task' (first on line 1)"),
    ("duplicate-nested-key", _edit("  name: adam\n", "  name: adam\n  lr: 0.1\n  lr: 0.2\n"),
     [],
     "{file}: invalid YAML: line 8, column 3: duplicate key 'lr' (first on line 7)"),
    ("empty-file", "", [],
     '{file}: empty file; an experiment needs at least task, loss, optimizer and train'),
    ("comments-only", "# nothing here\n", [],
     '{file}: empty file; an experiment needs at least task, loss, optimizer and train'),
    ("top-level-list", "- task: digits\n", [],
     '{file}: the top level must be a mapping of keys, got list'),
    ("top-level-scalar", "digits\n", [],
     '{file}: the top level must be a mapping of keys, got str'),
    ("yaml-syntax", "task: digits\nloss: {name: bce\n", [],
     "{file}: invalid YAML: line 3, column 1: did not find expected ',' or '}'"),
    ("python-tag", HEAD + "description: !!python/object/apply:os.system [echo hi]\n", [],
     '{file}: invalid YAML: line 11, column 14: could not determine a constructor for the '
     "tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("nul-bytes", HEAD + "description: a\x00b\n", [],
     '{file}: not a text file (it holds NUL bytes)'),
    # --- wrong types for every top-level key --------------------------------------------
    ("task-number", _with(task=3), [],
     '{file}: task: must be a valid string (got 3)'),
    ("loss-string", _with(loss="adam"), [],
     "{file}: loss: must be a mapping of keys to values (got 'adam')"),
    ("optimizer-list", _with(optimizer=["adam"]), [],
     "{file}: optimizer: must be a mapping of keys to values (got ['adam'])"),
    ("train-number", _with(train=5), [],
     '{file}: train: must be a mapping of keys to values (got 5)'),
    ("backends-string", _with(backends="torch"), [],
     "{file}: backends: must be a valid list (got 'torch')"),
    ("seeds-number", _with(seeds=3), [],
     '{file}: seeds: must be a valid list (got 3)'),
    ("cv-number", _with(cv=5), [],
     '{file}: cv: must be a mapping of keys to values (got 5)'),
    ("matrix-list", _with(matrix=[1, 2]), [],
     '{file}: matrix: must be a mapping of keys to values (got [1, 2])'),
    ("tune-boolean", _with(tune=True), [],
     '{file}: tune: must be a mapping of keys to values (got True)'),
    ("executor-number", _with(executor=3), [],
     '{file}: executor: must be a mapping of keys to values (got 3)'),
    ("resources-string", _with(resources="big"), [],
     "{file}: resources: must be a mapping of keys to values (got 'big')"),
    ("name-number", _with(name=42), [],
     '{file}: name: must be a valid string (got 42)'),
    ("name-slash", _with(name="../../etc/x"), [],
     "{file}: name: a name has no slash, backslash, control character or surrounding space "
     "(it names files and MLflow experiments)"),
    ("name-2000-characters", _with(name="n" * 2000), [],
     "{file}: name: must have at most 200 characters (got '" + "n" * 79 + "...)"),
    ("description-too-long", _with(description="d" * 10_000), [],
     "{file}: description: must have at most 5000 characters (got '" + "d" * 79 + "...)"),
    ("description-list", _with(description=["a"]), [],
     "{file}: description: must be a valid string (got ['a'])"),
    ("data-string", _with(data="x"), [],
     "{file}: data: must be a mapping of keys to values (got 'x')"),
    ("model-number", _with(model=5), [],
     '{file}: model: must be a mapping of keys to values (got 5)'),
    # --- unknown keys and components ------------------------------------------------------
    ("unknown-top-key", _with(trian={"epochs": 1}), [],
     "{file}: trian: unknown key 'trian' (did you mean 'train'?); allowed: name, "
     'description, task, data, model, loss, optimizer, train, backends, seeds, cv, matrix, '
     'tune, executor, resources'),
    ("unknown-train-key", _with(train__epoch=3), [],
     "{file}: train.epoch: unknown key 'epoch' (did you mean 'epochs'?); allowed: epochs, "
     'batch_size, dtype, early_stopping, schedule, eval_batch_size'),
    ("unknown-optimizer", _with(optimizer__name="adamm"), [],
     "{file}: optimizer.name: unknown optimizer 'adamm' (did you mean 'adam'?); allowed: "
     'gd, sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw'),
    ("unknown-loss", _with(loss__name="hinge"), [],
     "{file}: loss.name: unknown loss 'hinge'; allowed: binary_crossentropy, "
     'categorical_crossentropy, sparse_categorical_crossentropy, binary_focal, '
     'categorical_focal, triplet'),
    ("unknown-task", _with(task="digit"), [],
     "{file}: task: unknown task 'digit' (did you mean 'digits'?); allowed: digits, "
     'imbalanced, embedding, har, text, vanishing'),
    ("unknown-backend", _with(backends=["troch"]), [],
     "{file}: backends[0]: unknown backend 'troch' (did you mean 'torch'?); allowed: torch, "
     'tensorflow'),
    ("unknown-model-key", _with(model={"layers": [3]}), [],
     "{file}: model.layers: unknown key 'layers'; allowed: norm, hidden, activation"),
    ("unknown-schedule", _with(train__schedule={"name": "linear"}), [],
     "{file}: train.schedule.name: must be 'constant', 'cosine' or 'step' (got 'linear')"),
    ("unknown-executor", _with(executor="nonexistent"), [],
     "{file}: executor.name: unknown executor 'nonexistent'; allowed: local, ray, slurm"),
    ("integer-top-key", HEAD + "1: 2\n", [], "{file}: keys must be strings, got 1"),
    ("null-hyperparameter-key", _edit("name: adam\n", "name: adam\n  null: 1\n"), [],
     "{file}: optimizer: keys must be strings, got None"),
    ("study-name-slash", _with(tune={"metric": "val/loss", "direction": "minimize", "trials": 2,
                                     "study_name": "../x",
                                     "space": {"optimizer.lr": {"type": "float", "low": 1e-4,
                                                                "high": 1e-1}}}), [],
     "{file}: tune.study_name: a name has no slash, backslash, control character or "
     "surrounding space (it names files and MLflow experiments)"),
    ("long-unknown-key", _with(**{LONG_KEY: 1}), [],  # the key path cut at 200, values at 80
     "{file}: " + "k" * 200 + "...: unknown key '" + "k" * 79 + "...; allowed: name, "
     "description, task, data, model, loss, optimizer, train, backends, seeds, cv, matrix, "
     "tune, executor, resources"),
    ("long-task-name", _with(task=LONG_TASK), [],
     '{file}: task: unknown task '
     "'ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt...; "
     'allowed: digits, imbalanced, embedding, har, text, vanishing'),
    # --- numbers ----------------------------------------------------------------------------
    ("lr-inf", _edit("name: adam\n", "name: adam\n  lr: .inf\n"), [],
     '{file}: optimizer.lr: inf is not allowed (a finite number)'),
    ("lr-nan", _edit("name: adam\n", "name: adam\n  lr: .nan\n"), [],
     '{file}: optimizer.lr: nan is not allowed (a finite number)'),
    ("lr-1e308", _edit("name: adam\n", "name: adam\n  lr: 1e308\n"), [],
     '{file}: optimizer.lr: 1e+308 is not allowed (0 < lr <= 10)'),
    ("lr-negative", _with(optimizer__lr=-0.1), [],
     '{file}: optimizer.lr: -0.1 is not allowed (0 < lr <= 10)'),
    ("lr-string", _with(optimizer__lr="fast"), [],
     "{file}: optimizer.lr: expected a number, got 'fast'"),
    ("lr-boolean", _with(optimizer__lr=True), [],
     '{file}: optimizer.lr: expected a number, got True'),
    ("beta1-one", _with(optimizer__beta1=1.0), [],
     '{file}: optimizer.beta1: 1.0 is not allowed (0 <= beta1 < 1)'),
    ("eps-zero", _with(optimizer__eps=0.0), [],
     '{file}: optimizer.eps: 0.0 is not allowed (must be > 0)'),
    ("weight-decay-negative", _with(optimizer={"name": "adamw", "weight_decay": -1.0}), [],
     '{file}: optimizer.weight_decay: -1.0 is not allowed (must be >= 0)'),
    ("from-logits-string", _with(loss__from_logits="yes"), [],
     "{file}: loss.from_logits: expected true or false, got 'yes'"),
    ("epochs-boolean", _with(train__epochs=True), [],
     '{file}: train.epochs: must be a valid integer (got true: a boolean)'),
    ("epochs-zero", _with(train__epochs=0), [],
     '{file}: train.epochs: must be greater than or equal to 1 (got 0)'),
    ("epochs-fraction", _with(train__epochs=1.5), [],
     '{file}: train.epochs: must be a valid integer (got 1.5)'),
    ("epochs-string", _with(train__epochs="3"), [],
     "{file}: train.epochs: must be a valid integer (got '3')"),
    ("epochs-over-limit", _with(train__epochs=10**6), [],
     '{file}: train.epochs: must be less than or equal to 100000 (got 1000000)'),
    ("epochs-1e400", _edit("epochs: 1\n", "epochs: 1e400\n"), [],
     '{file}: train.epochs: must be a valid integer (got inf)'),
    ("epochs-huge-integer", _with(train__epochs=10**400), [],
     '{file}: train.epochs: must be less than or equal to 100000 (got <an integer of 1329 '
     'bits>)'),
    ("batch-negative", _with(train__batch_size=-8), [],
     '{file}: train.batch_size: must be greater than or equal to 1 (got -8)'),
    ("batch-zero", _with(train__batch_size=0), [],
     '{file}: train.batch_size: must be greater than or equal to 1 (got 0)'),
    ("dtype-float16", _with(train__dtype="float16"), [],
     "{file}: train.dtype: must be 'float32' or 'float64' (got 'float16')"),
    ("patience-zero", _with(train__early_stopping={"patience": 0}), [],
     '{file}: train.early_stopping.patience: must be greater than or equal to 1 (got 0)'),
    ("seed-negative", _with(seeds=[-1]), [],
     '{file}: seeds[0]: must be greater than or equal to 0 (got -1)'),
    ("seed-2-to-32", _with(seeds=[2**32]), [],
     '{file}: seeds[0]: must be less than or equal to 4294967295 (got 4294967296)'),
    ("seed-boolean", _with(seeds=[True]), [],
     '{file}: seeds[0]: must be a valid integer (got true: a boolean)'),
    ("seed-twice", _with(seeds=[0, 0]), [],
     '{file}: seeds: lists a seed twice'),
    ("too-many-seeds", _with(seeds=list(range(1001))), [],
     '{file}: seeds: must have at most 1000 items, not 1001 (got [0, 1, 2, 3, 4, 5, 6, 7, '
     '8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 2...)'),
    ("no-seeds", _with(seeds=[]), [],
     '{file}: seeds: must have at least 1 item, not 0 (got [])'),
    ("folds-one", _with(cv={"folds": 1}), [],
     '{file}: cv.folds: must be greater than or equal to 2 (got 1)'),
    ("hidden-zero", _with(model={"hidden": [0]}), [],
     '{file}: model.hidden[0]: must be greater than 0 (got 0)'),
    ("hidden-negative", _with(model={"hidden": [64, -5]}), [],
     '{file}: model.hidden[1]: must be greater than 0 (got -5)'),
    ("hidden-boolean", _with(model={"hidden": [True]}), [],
     '{file}: model.hidden[0]: must be a valid integer (got true: a boolean)'),
    ("hidden-1e9", _edit("backends:", "model: {hidden: [1e9]}\nbackends:"), [],
     '{file}: model: its weights would need 589 GiB (7.9e+10 numbers in float64; the '
     'largest array alone 477 GiB); the limit is {limit} (docs/experiments.md, Limits)'),
    ("dropout-one", _with(IMBALANCED, model={"dropout": 1.0}), [],
     '{file}: model.dropout: must be less than 1 (got 1.0)'),
    ("test-size-one", _with(data={"test_size": 1.0}), [],
     '{file}: data.test_size: must be less than 1 (got 1.0)'),
    ("vanishing-n-train-huge", _with(VANISHING, data={"n_train": 10**12}), [],
     '{file}: data.n_train: must be less than or equal to 1000000 (got 1000000000000)'),
    # --- metrics the task never reports -----------------------------------------------------
    ("early-stopping-metric", _with(train__early_stopping={"metric": "val/auc"}), [],
     "{file}: train.early_stopping.metric: 'val/auc' is not reported per epoch by task "
     "'digits' (did you mean 'val/accuracy'?); it reports: train/loss, val/loss, "
     'val/accuracy'),
    ("tune-metric", _with(tune={"metric": "val/f1", "direction": "maximize", "trials": 2,
                                "space": {"optimizer.lr": {"type": "float", "low": 1e-4,
                                                           "high": 1e-1}}}), [],
     "{file}: tune.metric: 'val/f1' is not reported per epoch by task 'digits' (did you "
     "mean 'val/loss'?); it reports: train/loss, val/loss, val/accuracy"),
    ("tune-trials", _with(tune={"metric": "val/loss", "direction": "minimize",
                                "trials": 10**6,
                                "space": {"optimizer.lr": {"type": "float", "low": 1e-4,
                                                           "high": 1e-1}}}), [],
     '{file}: tune.trials: must be less than or equal to 10000 (got 1000000)'),
    ("tune-sampler-seed", _with(tune={"metric": "val/loss", "direction": "minimize",
                                      "trials": 2, "sampler": {"seed": -1},
                                      "space": {"optimizer.lr": {"type": "float",
                                                                 "low": 1e-4, "high": 1e-1}}}),
     [],
     '{file}: tune.sampler.seed: must be greater than or equal to 0 (got -1)'),
    ("validation-metric-without-validation",
     _with(data={"val_size": 0.0}, train__early_stopping={"metric": "val/accuracy"}), [],
     "{file}: train.early_stopping.metric: 'val/accuracy' needs a validation part, and task "
     "'digits' builds none with these data options (set data.val_size)"),
    ("verdict-metric", _with(tune={"metric": "val/loss", "direction": "minimize", "trials": 2,
                                   "verdict": {"metric": "test/auc"},
                                   "space": {"optimizer.lr": {"type": "float", "low": 1e-4,
                                                              "high": 1e-1}}}), [],
     "{file}: tune.verdict.metric: 'test/auc' is not reported on the test part by task "
     "'digits' (did you mean 'test/macro_f1'?); it reports: test/accuracy, test/macro_f1"),
    ("tune-choices", _with(tune={"metric": "val/loss", "direction": "minimize", "trials": 2,
                                 "space": {"optimizer.lr": {"type": "categorical",
                                                            "choices": [0.01] * 1001}}}), [],
     "{file}: tune.space.optimizer.lr.choices: must have at most 1000 items, not 1001 (got "
     "[0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0...)"),
    ("tune-probes", _with(tune={"metric": "val/loss", "direction": "minimize", "trials": 2,
                                "space": {
                                    "optimizer.lr": {"type": "categorical", "choices": [
                                        round(0.001 + i * 1e-6, 6) for i in range(1000)]},
                                    "optimizer.beta1": {"type": "categorical", "choices": [
                                        round(0.5 + i * 1e-4, 4) for i in range(1000)]},
                                    "optimizer.eps": {"type": "float", "low": 1e-8,
                                                      "high": 1e-6}}}), [],
     "{file}: tune.space: checking it needs 2,002 configs (variants x values to try); at most "
     "2,000: fewer variants or categorical choices"),
    ("grid-of-a-million", _with(tune={"metric": "val/loss", "direction": "minimize",
                                      "trials": 2, "sampler": {"name": "grid"},
                                      "space": {"optimizer.lr": {"type": "float", "low": 1e-4,
                                                                 "high": 1e-1, "step": 1e-7}}}),
     [], "{file}: tune.space.optimizer.lr: a grid of 999,001 points; at most 1,000 per "
         "dimension (a larger step)"),
    ("resources-cpus", _with(resources={"cpus": 1e308}), [],
     "{file}: resources.cpus: must be less than or equal to 4096 (got 1e+308)"),
    ("executor-retries", _with(executor={"name": "local", "retries": 10**9}), [],
     "{file}: executor.retries: must be less than or equal to 100 (got 1000000000)"),
    # --- matrices -----------------------------------------------------------------------------
    ("matrix-million", _with(matrix={f"model.x{i}": list(range(10)) for i in range(6)}), [],
     '{file}: matrix: expands to 1,000,000 variants (10 x 10 x 10 x 10 x 10 x 10); at most '
     '1,000 per file'),
    ("matrix-hides-bad-lr", _edit("name: adam\n", "name: adam\n  lr: .inf\n")
     + "matrix:\n  optimizer.lr: [0.1, 0.01]\n", [],
     '{file} (as written, before the matrix): optimizer.lr: inf is not allowed (a finite '
     'number)'),
    ("matrix-empty-axis", _with(matrix={"model.norm": []}), [],
     '{file}: matrix: matrix.model.norm has no values'),
    ("matrix-bad-value", _with(matrix={"model.norm": ["batch", "group"]}), [],
     "{file} (variant norm=group): model.norm: must be 'none', 'batch' or 'layer' (got "
     "'group')"),
    # --- the command line -----------------------------------------------------------------------
    ("override-no-equals", HEAD, ["-o", "train.epochs"],
     'command line: -o train.epochs: overrides look like section.setting=VALUE, e.g. '
     'train.epochs=3'),
    ("override-no-key", HEAD, ["-o", "=3"],
     'command line: -o =3: overrides look like section.setting=VALUE, e.g. train.epochs=3'),
    ("override-empty-part", HEAD, ["-o", "train..epochs=3"],
     'command line: -o train..epochs=3: the dotted path has an empty part; overrides look '
     'like section.setting=VALUE, e.g. train.epochs=3'),
    ("override-bad-yaml", HEAD, ["-o", "optimizer.lr=["],
     "command line: -o optimizer.lr=[: value is not valid YAML: did not find expected node "
     "content"),
    ("override-boolean-epochs", HEAD, ["-o", "train.epochs=true"],
     '{file}: train.epochs: must be a valid integer (got true: a boolean)'),
    ("override-through-scalar", HEAD, ["-o", "train.epochs.max=3"],
     '{file}: train.epochs: is int, cannot set train.epochs.max'),
    ("override-lr-inf", HEAD, ["-o", "optimizer.lr=.inf"],
     '{file}: optimizer.lr: inf is not allowed (a finite number)'),
]


def _validate(tmp_path: Path, content: str | bytes, args: list[str], capsys
              ) -> tuple[int, str, Path]:
    path = tmp_path / "experiment.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    code = main(["validate", str(path), *args])
    return code, capsys.readouterr().err, path


@pytest.fixture(autouse=True)
def _no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path / "mlruns"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    assert not (tmp_path / "mlruns").exists(), "the tracking store was touched"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_file_gives_the_exact_line(case, tmp_path: Path, capsys) -> None:
    _id, content, args, expected = case
    began = time.process_time()
    code, err, path = _validate(tmp_path, content, args, capsys)
    seconds = time.process_time() - began
    limit = limits.gib(limits.weight_limit_bytes())
    expected = expected.replace("{file}", str(path)).replace("{limit}", limit)
    assert err == f"error: {expected}\n", err[:2000]
    assert code == 2
    assert seconds < 1.0, f"{_id}: {seconds:.2f} s of CPU time"


def _special(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "experiment.yaml"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "latin-1":
        path.write_bytes(HEAD.encode() + "description: caf\u00e9\n".encode("latin-1"))
    elif kind == "too-large":
        path.write_text(HEAD + "#" * limits.MAX_FILE_BYTES + "\n")
    return path


@pytest.mark.parametrize("kind, message", [
    ("directory", "not a regular file (a directory)"),
    ("fifo", "not a regular file (a FIFO)"),  # opening it would wait for a writer forever
    ("latin-1", "not a UTF-8 text file"),
    ("too-large", f"{len(HEAD) + limits.MAX_FILE_BYTES + 1:,} bytes; an experiment file is at "
                  f"most {limits.MAX_FILE_BYTES:,} bytes"),
    ("missing", "file not found"),
])
def test_what_is_not_an_experiment_file(kind, message, tmp_path: Path, capsys) -> None:
    path = _special(tmp_path, kind)
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == f"error: {path}: {message}\n"


def test_numbers_as_people_write_them(tmp_path: Path) -> None:
    """``1e-3`` is a float in the file and in ``-o`` (YAML 1.1 would read a string), and an
    exact integral float fills an integer field."""
    from orchestrator.config.loader import load

    path = tmp_path / "experiment.yaml"
    path.write_text(_edit("name: adam\n", "name: adam\n  lr: 1e-3\n")
                    .replace("backends:", "model: {hidden: [1e2, 32]}\nbackends:"))
    (experiment,) = load([path])
    assert experiment.optimizer.params["lr"] == 0.001
    assert experiment.model.hidden == (100, 32) and isinstance(experiment.model.hidden[0], int)
    (overridden,) = load([path], ["optimizer.lr=2E-4", "train.epochs=3", "seeds=[1, 2]"])
    assert overridden.optimizer.params["lr"] == 0.0002
    assert overridden.train.epochs == 3 and overridden.seeds == (1, 2)


def test_infinite_data_cells_fail_the_data_check_before_any_run(tmp_path: Path,
                                                                capsys) -> None:
    table = tmp_path / "table.csv"
    table.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
                     + "1,inf,0\n")
    path = tmp_path / "experiment.yaml"
    path.write_text(_with(IMBALANCED, data={"source": str(table), "label": "y"}))
    assert main(["run", "--quiet", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {path}: data.source: {table}: feature column 'b' has 1 infinite "
                   "value(s) (first at row 40: inf); give finite numbers, or leave the cell "
                   "empty for a missing value\n")


def test_a_part_with_one_class_is_warned_about_not_a_silent_nan() -> None:
    import numpy as np

    from orchestrator.contract.task import Split
    from orchestrator.tasks.imbalanced import ImbalancedData, _warn_single_class

    x = np.zeros((4, 2))
    split = Split(x, np.array([0, 1, 0, 1]), None, None, x[:3], np.array([0, 0, 0]))
    with pytest.warns(UserWarning, match=r"^data: the test part has 3 example\(s\), 0 positive: "
                                         r"average precision and ROC AUC need both classes"):
        _warn_single_class([split], ImbalancedData())


# --- through the real command line ------------------------------------------------------------


# Runs the command as its own child and reports that child's exit status, CPU seconds and peak
# memory. A small fresh interpreter in between, because Linux carries a process's peak RSS across
# fork + exec into the child's ru_maxrss: measured straight from pytest (a worker that imported
# torch and TensorFlow), every child would "peak" at the worker's size.
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "orchestrator", *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_utime + usage.ru_stime} "
            f"{usage.ru_maxrss}")
"""


def _cli(tmp_path: Path, *args: str) -> tuple[int, str, str, float, int]:
    """The command in a subprocess: exit status, stdout, stderr, and the CPU seconds and peak
    memory (KiB) of that process alone (``os.wait4`` in a fresh parent, see ``_MEASURE``)."""
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(tmp_path / "mlruns")}
    env.pop("MLFLOW_TRACKING_URI", None)
    out, err, usage = tmp_path / "stdout", tmp_path / "stderr", tmp_path / "usage"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        subprocess.run([sys.executable, "-c", _MEASURE, str(usage), *args], env=env,
                       stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, check=True)
    code, cpu, peak = usage.read_text().split()
    return int(code), out.read_text(), err.read_text(), float(cpu), int(peak)


@pytest.mark.parametrize("kind", ["alias-bomb", "deep-brackets", "fifo", "latin-1",
                                  "override-bad-yaml"])
def test_the_command_line_says_no_in_one_line_without_a_traceback(kind, tmp_path: Path) -> None:
    path = tmp_path / "experiment.yaml"
    args: list[str] = []
    if kind == "alias-bomb":
        path.write_text(BOMB)
    elif kind == "deep-brackets":
        path.write_text(DEEP)
    elif kind == "override-bad-yaml":
        path.write_text(HEAD)
        args = ["-o", "optimizer.lr=["]
    else:
        _special(tmp_path, kind)
    code, stdout, stderr, cpu, peak_kib = _cli(tmp_path, "validate", str(path), *args)
    assert code == 2, stderr
    assert "Traceback" not in stderr and stdout == ""
    assert len(stderr.splitlines()) == 1 and stderr.startswith("error: ")
    assert len(stderr) < limits.MAX_ERROR_CHARS + 400
    # the command's start-up (Python, pydantic, the plugins) is most of this
    assert cpu < 5, f"{cpu:.1f} s of CPU time"
    assert peak_kib < 300 * 1024, f"{peak_kib / 1024:.0f} MiB"
    assert not (tmp_path / "mlruns").exists()


def test_a_tune_metric_no_trial_reports_makes_tune_exit_non_zero(tmp_path: Path, capsys,
                                                                 monkeypatch) -> None:
    """A metric validate cannot rule out (the validation part of this table holds negatives
    only, so val/average_precision is never reported): every trial fails on it, and ``tune``
    says so and exits 1 instead of 0."""
    monkeypatch.setenv("ORCHESTRATOR_THREADS", "1")
    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path / "store"))  # this one runs
    table = tmp_path / "table.csv"
    table.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 5},{int(i < 12)}\n"
                                         for i in range(120)))
    path = tmp_path / "experiment.yaml"
    path.write_text(_with(IMBALANCED, name="no-metric",
                          data={"source": str(table), "label": "y", "test_size": 0.5,
                                "val_size": 0.05},
                          model={"hidden": [2]}, train={"epochs": 1, "batch_size": 64},
                          tune={"metric": "val/average_precision", "direction": "maximize",
                                "trials": 1, "verdict": None,
                                "space": {"optimizer.lr": {"type": "float", "low": 1e-3,
                                                           "high": 1e-2}}}))
    with pytest.warns(UserWarning, match="the validation part has 3 example"):
        code = main(["tune", str(path)])
    out = capsys.readouterr()
    assert code == 1, out.err
    assert ("error: study no-metric-torch has no complete trial (1 failed, 1 done); the "
            "trials' fail_reason says why: ") in out.out



@pytest.mark.parametrize("loader", ["BoundedLoader", "FastLoader"])
@pytest.mark.parametrize("text, problem", [
    (BOMB, "expands to more than 100,000 values"),
    (DEEP, "nested deeper than 64 levels"),
    ("x: &x 1\ny: [" + ", ".join(["*x"] * 101) + "]\n", "more than 100 aliases"),
    ("a: 1\nb: {c: 1, c: 2}\n", "duplicate key 'c' (first on line 2)"),
])
def test_both_yaml_loaders_keep_the_limits(loader: str, text: str, problem: str) -> None:
    """The libyaml loader (used when PyYAML has it) and the pure-Python fallback."""
    import yaml as pyyaml

    from orchestrator.config import yaml_reader

    cls = getattr(yaml_reader, loader)
    if cls is None:
        pytest.skip("PyYAML was built without libyaml")  # then BoundedLoader is what runs
    began = time.process_time()
    with pytest.raises(yaml_reader.YamlLimitError, match=re.escape(problem)):
        if cls is yaml_reader.FastLoader:
            yaml_reader.load(text)
        else:
            pyyaml.load(text, Loader=cls)  # noqa: S506
    assert time.process_time() - began < 1.0
    assert yaml_reader.load("a: 1e-3\nb: [1E5, .5e1]\n") == {"a": 0.001, "b": [1e5, 5.0]}
