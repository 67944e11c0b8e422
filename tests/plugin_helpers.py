"""Shared by the plugin tests: installed distributions with real entry points, and the CLI in a
child process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ORCHESTRATOR = [sys.executable, "-m", "orchestrator"]


def install_fake_distribution(root: Path, dist: str, entry_points: dict[str, str],
                              modules: dict[str, str]) -> Path:
    """Write an installed distribution (a ``.dist-info`` with an ``entry_points.txt``) and its
    modules into ``root``: what ``pip install`` leaves behind, found by importlib.metadata once
    ``root`` is on ``sys.path`` (``run_cli(extra_path=root)``, ``monkeypatch.syspath_prepend``).
    """
    root.mkdir(parents=True, exist_ok=True)
    # the folder name is the normalized name (PEP 427/503: "-" -> "_"): importlib.metadata reads
    # the distribution name from it and dedupes on it, so "orchestrator-x-1.0.dist-info" would
    # pass for "orchestrator" and be hidden by the project's own metadata on sys.path
    info = root / f"{re.sub(r'[-_.]+', '_', dist).lower()}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[orchestrator]\n{lines}\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root


def run_cli(*args: str, extra_path: Path | None = None, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m orchestrator ARGS`` in a child process, ``extra_path`` first on its path."""
    environ = {**os.environ, **(env or {})}
    if extra_path is not None:
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(extra_path), *filter(None, [environ.get("PYTHONPATH")])])
    return subprocess.run([*ORCHESTRATOR, *args], capture_output=True, text=True, env=environ,
                          timeout=timeout)


# A backend plugin whose backend is the torch backend under another name, declaring every
# canonical component; filled in by ``backend_plugin``.
BACKEND_PLUGIN = """
from orchestrator import BackendInfo, catalogue, hookimpl

{api}


@hookimpl
def orchestrator_add_backends(registry):
    registry.add_backend(BackendInfo(
        name={name!r},
        loader="{module}_backend:Backend",
        components={components},
        distributions=("torch",),
        summary="the torch backend under another name",
    ))
"""

MIRROR_BACKEND = """
from orchestrator_torch.backend import TorchBackend


class Backend(TorchBackend):
    name = {name!r}
"""


def backend_plugin(module: str, name: str, *, api: str | None = "1",
                   components: str = "catalogue.all_names()") -> dict[str, str]:
    """The modules of a third-party backend plugin ``module`` registering backend ``name``,
    stating plugin API version ``api`` (None: stating none)."""
    api_line = "" if api is None else f"PLUGIN_API_VERSION = {api!r}"
    return {module: BACKEND_PLUGIN.format(module=module, name=name, api=api_line,
                                          components=components),
            f"{module}_backend": MIRROR_BACKEND.format(name=name)}
