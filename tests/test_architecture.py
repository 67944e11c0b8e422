"""The architecture as tests: the layering contract (import-linter, configured in
pyproject.toml) and the extension manual (every hook documented and exercised by a test)."""

from __future__ import annotations

import ast
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.plugins import hookspecs

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's contracts of ``root/pyproject.toml`` on the package under ``root``."""
    code = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=root, text=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(root)},
                          timeout=300)


def test_layers_are_kept() -> None:
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "core layers KEPT" in proc.stdout


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    """The contract is not vacuous: the canonical math (the bottom layer but one) importing
    the CLI (the top) fails it."""
    shutil.copytree(ROOT / "orchestrator", tmp_path / "orchestrator",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    upward = tmp_path / "orchestrator" / "canonical" / "upward.py"
    upward.write_text('"""An import against the layers."""\n\nfrom orchestrator.cli import main\n')
    proc = lint_imports(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "orchestrator.canonical is not allowed to import orchestrator.cli" in proc.stdout
    assert "orchestrator.canonical.upward -> orchestrator.cli" in proc.stdout


def _hooks() -> dict[str, object]:
    return {name: fn for name, fn in vars(hookspecs).items()
            if name.startswith(f"{hookspecs.PROJECT}_") and callable(fn)}


def _test_functions() -> set[str]:
    names = set()
    for path in TESTS.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
    return names


def test_hookspecs_declare_hooks() -> None:
    assert set(_hooks()) == {"orchestrator_add_backends", "orchestrator_add_components",
                             "orchestrator_add_tasks", "orchestrator_add_executors"}


@pytest.mark.parametrize("hook", sorted(_hooks()))
def test_every_hook_is_documented(hook: str) -> None:
    """A docstring in the extension manual (with an example), and a mention in docs/plugins.md."""
    doc = inspect.getdoc(_hooks()[hook]) or ""
    assert len(doc.splitlines()) >= 5 and "@hookimpl" in doc, f"{hook} needs a docstring"
    assert hook in (ROOT / "docs" / "plugins.md").read_text(), f"docs/plugins.md: {hook}"


@pytest.mark.parametrize("hook", sorted(_hooks()))
def test_every_hook_is_exercised_by_a_test(hook: str) -> None:
    """As datasette does: each hook has a test named ``test_hook_<hook name>...``."""
    assert any(name.startswith(f"test_hook_{hook}") for name in _test_functions()), (
        f"no test named test_hook_{hook}... in tests/")
