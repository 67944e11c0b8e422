"""The conformance kit fails every deliberately broken backend, on the tests about what it broke.

The broken backends (``tests/broken_backends``) are installed as a real plugin (a .dist-info with
an entry point); one pytest subprocess runs the kit's relevant classes against each, selected
with ``-k`` to keep the run short, and its JUnit report says which tests failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

import pytest

from broken_backends import BROKEN, install

# backend -> (kit classes to run, -k expression, does a failed test belong to the breakage?,
#             tests that must fail)
Expectation = tuple[str, str, Callable[[str], bool], tuple[str, ...]]
OPTIMIZER_TESTS = "test_trajectory or test_training_follows_the_optimizer"
EXPECTED: dict[str, Expectation] = {
    "broken_sgd_only": (
        "OptimizerTests, ModelTests", OPTIMIZER_TESTS,
        lambda t: t.startswith("test_training_follows_the_optimizer")
        and not t.startswith(("test_training_follows_the_optimizer[sgd",
                              "test_training_follows_the_optimizer[gd")),
        ("test_training_follows_the_optimizer[momentum]",
         "test_training_follows_the_optimizer[adam]",
         "test_training_follows_the_optimizer[rmsprop]")),
    "broken_lr_outside_velocity": (
        "OptimizerTests, ModelTests", OPTIMIZER_TESTS,
        lambda t: "[momentum" in t and not t.startswith("test_trajectory["),
        ("test_trajectory_under_a_schedule[momentum]",
         "test_training_follows_the_optimizer[momentum-momentum0.5]")),
    "broken_unscaled_dropout": (
        "DropoutTests, WorkedNumberTests", "dropout or lecture",
        lambda t: t.startswith("test_inverted_dropout"),
        ("test_inverted_dropout[0.25-float64]", "test_inverted_dropout[0.6-float32]")),
    "broken_dropout_rate": (
        "DropoutTests, WorkedNumberTests", "dropout or lecture",
        lambda t: t.startswith("test_inverted_dropout"),
        ("test_inverted_dropout[0.25-float64]", "test_inverted_dropout[0.6-float32]")),
    "broken_adamw_decay_after": (
        "OptimizerTests, ModelTests", OPTIMIZER_TESTS, lambda t: "[adamw" in t,
        ("test_trajectory[adamw-weight_decay0.5-lr0.3-1-float64]",
         "test_trajectory_under_a_schedule[adamw-weight_decay0.5-lr0.3]",
         "test_training_follows_the_optimizer[adamw-weight_decay0.5-lr0.3]")),
    "broken_loose_targets": (
        "TargetTests, LossTests", "target or binary_crossentropy",
        lambda t: t.startswith("test_wrong_target_shape_is_rejected"),
        ("test_wrong_target_shape_is_rejected[binary-flat-for-a-column]",
         "test_wrong_target_shape_is_rejected[sparse-given-a-column]")),
    "broken_layer_norm_ignores_eps": (
        "LayerTests", "norm", lambda t: "norm-layer" in t,
        ("test_forward_and_state[norm-layer-eps0.5-eval-float64]",
         "test_forward_and_state[norm-layer-eps0.5-train-float32]",
         "test_backpropagation[norm-layer-eps0.5-train]")),
    "broken_layer_norm_eps_outside": (
        "LayerTests", "norm", lambda t: "norm-layer" in t,
        ("test_forward_and_state[norm-layer-eps0.5-eval-float64]",
         "test_forward_and_state[norm-layer-rank2-train-float64]",
         "test_backpropagation[norm-layer-eps0.5-train]")),
    "broken_float16_gradients": (
        "ModelTests, LayerTests", "test_training_follows_the_optimizer or rank2",
        lambda t: t.startswith("test_training_follows_the_optimizer") and t.endswith("float32]"),
        ("test_training_follows_the_optimizer[sgd-lr0.05-float32]",
         "test_training_follows_the_optimizer[gd-float32]")),
}


def _class_name(backend: str) -> str:
    return "Test" + "".join(part.title() for part in backend.split("_"))


@pytest.fixture(scope="module")
def kit_report(tmp_path_factory) -> dict[str, dict[str, str]]:
    """{backend: {test name: "passed" | "failed" | "skipped"}} from one pytest subprocess."""
    assert set(EXPECTED) == set(BROKEN)
    root = tmp_path_factory.mktemp("broken")
    site = install(root / "site")
    classes, selections = [], []
    for backend, (bases, keyword, _, _) in EXPECTED.items():
        name = _class_name(backend)
        classes.append(f"class {name}({bases}):\n    backend_name = {backend!r}\n")
        selections.append(f"({name} and ({keyword}))")
    module = root / "test_broken_kit.py"
    module.write_text("from orchestrator.testing import (DropoutTests, LayerTests, LossTests, "
                      "ModelTests, OptimizerTests, TargetTests, WorkedNumberTests)\n\n\n"
                      + "\n\n".join(classes))
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    report = root / "report.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--junitxml={report}", "-k", " or ".join(selections), str(module)],
        cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    outcomes: dict[str, dict[str, str]] = {backend: {} for backend in EXPECTED}
    by_class = {_class_name(b): b for b in EXPECTED}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        backend = by_class[case.get("classname").rsplit(".", 1)[-1]]
        outcome = ("failed" if case.find("failure") is not None or case.find("error") is not None
                   else "skipped" if case.find("skipped") is not None else "passed")
        outcomes[backend][case.get("name")] = outcome
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("backend", list(EXPECTED))
def test_the_kit_fails_the_broken_backend_on_the_right_tests(kit_report, backend: str) -> None:
    _, _, belongs, must_fail = EXPECTED[backend]
    outcomes = kit_report[backend]
    failed = {name for name, outcome in outcomes.items() if outcome == "failed"}
    assert failed, f"the kit passed {backend} ({BROKEN[backend][1]})"
    unrelated = sorted(name for name in failed if not belongs(name))
    assert not unrelated, f"{backend} failed tests unrelated to its breakage: {unrelated}"
    missing = [name for name in must_fail if outcomes.get(name) != "failed"]
    assert not missing, f"{backend}: expected failures that did not fail: {missing}"
    assert any(outcome == "passed" for outcome in outcomes.values()), \
        f"{backend}: no selected test passed, so the selection shows nothing"


def test_broken_backends_install_as_a_real_plugin(tmp_path: Path) -> None:
    """Through entry points: ``orchestrator plugins`` lists every one of them."""
    import json

    site = install(tmp_path / "site")
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "plugins", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = {b["name"] for b in json.loads(proc.stdout)["backends"]}
    assert set(BROKEN) <= names


def test_constructing_the_backend_differently_raises_no_deprecation(tmp_path: Path) -> None:
    """The documented ways (``create_backend``, or the fixture as a classmethod) run the kit
    under ``-W error`` for pytest's deprecation of instance-method class fixtures."""
    module = tmp_path / "test_custom_backend.py"
    module.write_text(
        "import pytest\n"
        "from orchestrator.contract.backend import Resources\n"
        "from orchestrator.testing import ComponentListTests\n"
        "from orchestrator_torch.backend import TorchBackend\n\n\n"
        "class TestCreateBackend(ComponentListTests):\n"
        "    backend_name = 'torch'\n\n"
        "    @classmethod\n"
        "    def create_backend(cls, info):\n"
        "        return TorchBackend(Resources(threads=1, device='cpu'))\n\n\n"
        "class TestFixtureOverride(ComponentListTests):\n"
        "    backend_name = 'torch'\n\n"
        "    @pytest.fixture(scope='class')\n"
        "    @classmethod\n"
        "    def backend(cls, info):\n"
        "        return TorchBackend(Resources(threads=1))\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-W", "error::pytest.PytestRemovedIn10Warning", str(module)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "6 passed" in proc.stdout
