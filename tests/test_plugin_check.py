"""``orchestrator plugins check NAME``: the conformance kit against an installed backend, as a
table per component with the measured errors; and the error recording behind it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from plugin_helpers import backend_plugin, install_fake_distribution, run_cli

from orchestrator.testing.assertions import (
    TOLERANCES,
    Measurement,
    assert_close,
    assert_weights_close,
    record_errors,
)

# A few checks of each kind, so that the test stays short (the whole kit runs in
# tests/test_conformance_*.py).
SELECTION = ("binary_crossentropy-probs or binary_focal-logits or sgd-lr or momentum-1- "
             "or norm-layer-rank2 or rnn-tanh-seq-b3 or one_training_step and rnn")

# The torch backend with a binary cross entropy gradient 1 % too large: a wrong formula that
# every other component hides.
SKEWED = """
from orchestrator_torch.backend import TorchBackend


class Backend(TorchBackend):
    name = "skewed"

    def loss_value_and_grad(self, loss, y_true, y_pred, *, dtype="float64"):
        value, grad = super().loss_value_and_grad(loss, y_true, y_pred, dtype=dtype)
        if loss.name == "binary_crossentropy" and not loss["from_logits"]:
            grad = grad * 1.01
        return value, grad
"""


def _rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) == 8 and cells[0] not in ("kind", ""):
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


def test_check_prints_a_table_per_component_with_measured_errors() -> None:
    proc = run_cli("plugins", "check", "torch", "-k", SELECTION, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _rows(proc.stdout)
    for key in [("loss", "binary_crossentropy"), ("loss", "binary_focal"),
                ("optimizer", "sgd"), ("optimizer", "momentum"), ("norm", "layer"),
                ("recurrent", "rnn"), ("model", "rnn")]:
        result, passed, failed, _skipped, float64, _float32 = rows[key]
        assert result == "pass" and int(passed) > 0 and failed == "0", (key, rows[key])
        error, tol = (float(x) for x in float64.split(" / "))
        assert 0 <= error <= tol, (key, float64)
    assert rows[("loss", "binary_crossentropy")][5]  # float32 measured too
    assert re.search(r"torch: \d+ passed$", proc.stdout.strip())


def test_check_fails_a_wrong_backend_and_names_the_component(tmp_path: Path) -> None:
    modules = backend_plugin("skewed_plugin", "skewed")
    modules["skewed_plugin_backend"] = SKEWED
    site = install_fake_distribution(tmp_path, "skewed", {"skewed": "skewed_plugin"}, modules)
    proc = run_cli("plugins", "check", "skewed", "-k",
                   "binary_crossentropy-probs or binary_crossentropy-logits or sgd-lr",
                   extra_path=site, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = _rows(proc.stdout)
    bce = rows[("loss", "binary_crossentropy")]
    assert bce[0] == "FAIL" and int(bce[1]) == 2 and int(bce[2]) == 2, bce  # logits pass
    error, tol = (float(x) for x in bce[4].split(" / "))
    assert error == pytest.approx(0.01, rel=0.05) and tol < error
    assert rows[("optimizer", "sgd")][0] == "pass"
    assert (f"binary_crossentropy-probs gradient: relative error 0.01 > "
            f"{TOLERANCES['float64'].grad:g}") in proc.stdout


def test_check_of_an_unknown_backend_is_bad_input() -> None:
    proc = run_cli("plugins", "check", "troch")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: unknown backend 'troch' (did you mean 'torch'?); "
                                   "allowed: torch, tensorflow")


def test_comparisons_record_what_they_measure() -> None:
    with record_errors() as outer:
        assert_close(1.0, 1.0, 1e-6, "exact")
        with record_errors() as inner:
            with pytest.raises(AssertionError, match="off: relative error 0.5 > 0.1"):
                assert_close(np.array([1.5]), np.array([1.0]), 0.1, "off")
        assert_weights_close({"w": np.array([2.0, 4.0])}, {"w": np.array([2.0, 4.2])}, 0.1,
                             "set")
    assert inner == [Measurement("off", 0.5, 0.1)]
    assert outer[:2] == [Measurement("exact", 0.0, 1e-6), Measurement("off", 0.5, 0.1)]
    assert outer[2].what == "set [w]" and outer[2].error == pytest.approx(0.2 / 4.2)
    assert_close(1.0, 2.0, 1.0, "outside any block")  # recorded nowhere, raises nothing
    assert len(outer) == 3
