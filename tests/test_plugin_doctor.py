"""``orchestrator plugins doctor`` on real installed entry points: each problem is found and
fails the command; a clean installation passes. Also the manager's checks behind it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plugin_helpers import backend_plugin, install_fake_distribution, run_cli

from orchestrator.plugins import manager as plugin_manager
from orchestrator.plugins.hookspecs import PLUGIN_API_VERSION, hookimpl

MISSPELLED = """
from orchestrator import hookimpl

PLUGIN_API_VERSION = "1"


@hookimpl
def orchestrator_add_backend(registry):  # the hook is orchestrator_add_backends
    raise AssertionError("never called")
"""

UNMARKED = """
PLUGIN_API_VERSION = "1"


def orchestrator_add_tasks(registry):  # not marked @hookimpl: pluggy ignores it
    raise AssertionError("never called")
"""

# name -> (entry points, modules, the problem the doctor names, words of its detail)
PROBLEMS = {
    "fails-to-import": (
        {"broken": "broken_plugin"},
        {"broken_plugin": "import not_a_module_anywhere\n"},
        "failed to load", "No module named 'not_a_module_anywhere'"),
    "missing-components": (
        {"partial": "partial_plugin"},
        backend_plugin("partial_plugin", "partial", components=(
            '{"loss": ("binary_crossentropy",), "optimizer": ("sgd",), "norm": ("none",), '
            '"recurrent": ("lstm",)}')),
        "missing components", "backend 'partial' lacks loss: categorical_crossentropy"),
    "same-name-twice": (
        {"first": "first_plugin", "second": "second_plugin"},
        {**backend_plugin("first_plugin", "twin"), **backend_plugin("second_plugin", "twin")},
        "name registered twice", "backend 'twin' is already registered by first"),
    "same-name-as-a-builtin": (
        {"torchlike": "torchlike_plugin"},
        backend_plugin("torchlike_plugin", "torch"),
        "name registered twice", "backend 'torch' is already registered by torch"),
    "misspelled-hook": (
        {"misspelled": "misspelled_plugin"}, {"misspelled_plugin": MISSPELLED},
        "hook matches no hook",
        "unknown hook 'orchestrator_add_backend', never called: did you mean "
        "'orchestrator_add_backends'?"),
    "unmarked-hook": (
        {"unmarked": "unmarked_plugin"}, {"unmarked_plugin": UNMARKED},
        "hook matches no hook", "orchestrator_add_tasks is not marked @orchestrator.hookimpl"),
    "api-version-mismatch": (
        {"future": "future_plugin"}, backend_plugin("future_plugin", "future", api="2"),
        "plugin API version mismatch",
        f"written for plugin API version 2, this orchestrator provides {PLUGIN_API_VERSION}"),
}


def test_a_clean_installation_passes() -> None:
    proc = run_cli("plugins", "doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no problems" in proc.stdout
    assert "torch (built-in, API 1)" in proc.stdout


@pytest.mark.parametrize("case", PROBLEMS)
def test_each_problem_is_found_through_real_entry_points(tmp_path: Path, case: str) -> None:
    entry_points, modules, problem, detail = PROBLEMS[case]
    site = install_fake_distribution(tmp_path, f"plugin-{case}", entry_points, modules)
    proc = run_cli("plugins", "doctor", "--json", extra_path=site)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    findings = [f for f in json.loads(proc.stdout)["findings"] if f["severity"] == "problem"]
    assert [f["problem"] for f in findings] == [problem], findings
    assert detail in findings[0]["message"]

    table = run_cli("plugins", "doctor", extra_path=site)
    assert table.returncode == 1
    assert problem in table.stdout and "1 problem(s)" in table.stdout


def test_api_version_mismatch_is_not_registered_and_no_version_is_a_warning(
        tmp_path: Path) -> None:
    site = install_fake_distribution(tmp_path / "both", "plugins", {
        "future": "future_plugin", "unversioned": "unversioned_plugin"}, {
        **backend_plugin("future_plugin", "future", api="2"),
        **backend_plugin("unversioned_plugin", "unversioned", api=None)})
    listing = json.loads(run_cli("plugins", "--json", extra_path=site).stdout)
    assert "future" not in {b["name"] for b in listing["backends"]}
    assert "unversioned" in {b["name"] for b in listing["backends"]}
    assert {f["name"]: f["kind"] for f in listing["failures"]} == {"future": "api-version"}

    site = install_fake_distribution(tmp_path / "unversioned", "unversioned", {
        "unversioned": "unversioned_plugin"},
        backend_plugin("unversioned_plugin", "unversioned", api=None))
    proc = run_cli("plugins", "doctor", "--json", extra_path=site)
    assert proc.returncode == 0, proc.stdout
    findings = json.loads(proc.stdout)["findings"]
    assert [(f["severity"], f["problem"], f["plugin"]) for f in findings] == [
        ("warning", "no plugin API version", "unversioned")]


def test_doctor_import_finds_a_backend_class_that_does_not_load(tmp_path: Path) -> None:
    modules = backend_plugin("lost_plugin", "lost")
    del modules["lost_plugin_backend"]  # the loader names a module that is not there
    site = install_fake_distribution(tmp_path, "lost", {"lost": "lost_plugin"}, modules)
    assert run_cli("plugins", "doctor", extra_path=site).returncode == 0  # imports no backend
    proc = run_cli("plugins", "doctor", "--import", "--json", extra_path=site,
                   env={"ORCHESTRATOR_BLOCK_PLUGINS": "torch,tensorflow"})
    assert proc.returncode == 1
    [finding] = json.loads(proc.stdout)["findings"]
    assert finding["problem"] == "backend class fails to load"
    assert "No module named 'lost_plugin_backend'" in finding["message"]


def test_every_unknown_hook_of_a_plugin_is_a_failure_and_its_known_hooks_still_run() -> None:
    class Plugin:
        PLUGIN_API_VERSION = "1"

        @staticmethod
        @hookimpl
        def orchestrator_add_tasks(registry):
            pass

        @staticmethod
        @hookimpl
        def orchestrator_add_task(registry):
            pass

        @staticmethod
        @hookimpl
        def orchestrator_add_backendz(registry):
            pass

    state = plugin_manager.build(autoload=False, extra_plugins=(("mixed", Plugin()),))
    failures = [f for f in state.failures if f.name == "mixed"]
    assert [(f.kind, f.error) for f in failures] == [
        ("unknown-hook", "unknown hook 'orchestrator_add_backendz', never called: did you mean "
                         "'orchestrator_add_backends'?"),
        ("unknown-hook", "unknown hook 'orchestrator_add_task', never called: did you mean "
                         "'orchestrator_add_tasks'?")]
    assert "mixed" in [name for name, _ in state.manager.list_name_plugin()]
