"""Fuzzing the experiment schema with Hypothesis: every key of every section (found by walking
the pydantic models, the task's option classes and the catalogue's hyperparameters) gets values
of the wrong type, range and size; ``validate`` must answer exit 0, or exit 2 with one line,
and never raise (a traceback) or take long.
"""

from __future__ import annotations

import math
import time
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from orchestrator.canonical import catalogue
from orchestrator.cli import main
from orchestrator.config.schema import Experiment
from orchestrator.tasks.digits import DigitsData, DigitsModel

# a valid file that uses every section, so a change to any key reaches that key's own checks
BASE: dict[str, Any] = {
    "name": "fuzz",
    "description": "schema fuzz",
    "task": "digits",
    "data": {"test_size": 0.2, "val_size": 0.1},
    "model": {"norm": "batch", "hidden": [8]},
    "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 2, "batch_size": 16, "early_stopping": {"metric": "val/loss"},
              "schedule": {"name": "cosine"}},
    "backends": ["torch"],
    "seeds": [0, 1],
    "cv": {"folds": 3},
    "matrix": {"model.norm": ["none", "batch"]},
    "tune": {"metric": "val/loss", "direction": "minimize", "trials": 4,
             "sampler": {"name": "random"}, "pruner": {"name": "median"},
             "space": {"optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1,
                                        "log": True}},
             "verdict": {"seeds": 2}},
    "executor": {"name": "local"},
    "resources": {"cpus": 1},
}


def _model_paths(model: type[BaseModel], prefix: str) -> list[str]:
    """Every dotted key of ``model``, descending into nested models."""
    paths = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        for inner in _models_in(info.annotation):
            paths.extend(_model_paths(inner, f"{path}."))
    return paths


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    return []


def _all_paths() -> list[str]:
    paths = _model_paths(Experiment, "")
    paths += [f"data.{k}" for k in DigitsData.model_fields]
    paths += [f"model.{k}" for k in DigitsModel.model_fields]
    paths += [f"optimizer.{p.name}" for p in catalogue.get("optimizer", "adam").params]
    paths += [f"loss.{p.name}" for p in
              catalogue.get("loss", "sparse_categorical_crossentropy").params]
    paths += ["tune.space.optimizer.lr.low", "tune.space.optimizer.lr.high",
              "tune.space.optimizer.lr.type", "tune.space.optimizer.lr.step",
              "matrix.model.norm", "matrix.optimizer.lr", "matrix.train.epochs"]
    return sorted(set(paths))


PATHS = _all_paths()

_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**32, 2**63, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 1e-3, 0.5, 1.0, math.inf, -math.inf, math.nan]),
    st.text(max_size=20),
    st.sampled_from(["", "x", "1e-3", ".inf", "true", "null", "val/loss", "test/accuracy",
                     "adam", "torch", "batch", "x" * 5000, "\u00e9\u4e2d\U0001f600"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["name", "x", "lr", "epochs",
                                                             "metric", "type", "0"]),
                                            inner, max_size=3)),
    max_leaves=8,
) | st.sampled_from([[1] * 2000, list(range(1500)), {"k" * 300: 1}, [[[[[[[1]]]]]]]])


def _set(config: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path``; a dotted key inside tune.space / matrix is one key (``optimizer.lr``)."""
    for holder in ("tune.space.", "matrix."):
        if path.startswith(holder):
            rest = path.removeprefix(holder)
            node = config
            for part in holder.rstrip(".").split("."):
                node = node.setdefault(part, {})
            if holder == "matrix.":
                node[rest] = value
            else:  # "optimizer.lr.low": the dimension optimizer.lr, its field low
                dim, _, field = rest.rpartition(".")
                node.setdefault(dim, {})[field] = value
            return
    node = config
    *parents, last = path.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_every_schema_key_is_reached() -> None:
    """The walk finds the keys it should (so the fuzzing covers the whole schema)."""
    for path in ("train.early_stopping.patience", "tune.sampler.seed", "tune.verdict.seeds",
                 "tune.nested.folds", "tune.heartbeat.grace", "executor.retries",
                 "resources.memory_gb", "cv.split", "optimizer.beta2", "model.hidden",
                 "data.val_size", "loss.from_logits"):
        assert path in PATHS
    assert len(PATHS) > 80


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), _values), min_size=1, max_size=3))
def test_any_value_anywhere_is_ok_or_one_line_exit_2(changes, folder: Path, capsys,
                                                     monkeypatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(folder / "mlruns"))
    config = yaml.safe_load(yaml.safe_dump(BASE))
    for path, value in changes:
        _set(config, path, value)
    file = folder / "fuzz.yaml"
    file.write_text(yaml.safe_dump(config, allow_unicode=True, width=10**9))
    began = time.process_time()
    code = main(["validate", str(file)])
    seconds = time.process_time() - began
    out = capsys.readouterr()
    assert code in (0, 2), (code, out)
    if code == 2:
        assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err[:3000]
        assert len(out.err) < 1500, out.err[:3000]
        assert "Traceback" not in out.err
    else:
        assert out.err == ""
    assert seconds < 2.0, f"{seconds:.2f} s for {changes!r:.300}"
    assert not (folder / "mlruns").exists()


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=st.one_of(
    st.text(max_size=300),
    st.builds(lambda head, tail: head + tail,
              st.sampled_from([yaml.safe_dump(BASE), "task: digits\n", "a: &a [1]\n", ""]),
              st.text(alphabet=st.sampled_from(list("[]{}:,-&*!|>'\"#%@`?\n\t 0a\x00\x85\ufeff")),
                      max_size=200))))
def test_any_text_is_ok_or_one_line_exit_2(text, folder: Path, capsys) -> None:
    """Arbitrary text as an experiment file (the YAML reader's own errors included)."""
    file = folder / "text.yaml"
    file.write_text(text, encoding="utf-8", errors="surrogatepass")
    code = main(["validate", str(file)])
    out = capsys.readouterr()
    assert code in (0, 2), (code, out)
    if code == 2:
        assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err[:3000]
