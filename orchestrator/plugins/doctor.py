"""What is wrong with the installed plugins: the findings of ``orchestrator plugins doctor``.

Problems (the command exits 1 on any): a plugin that failed to import or register or raised in
a hook, one written for another plugin API version, two plugins registering one name, a hook
implementation that matches no hook, a backend that lacks canonical components, and (with
``load=True``) a backend whose class cannot be imported. Warnings (exit 0): a backend whose
framework is not installed, a plugin that does not state its plugin API version.

Imports no framework unless ``load=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator.plugins.hookspecs import PLUGIN_API_VERSION
from orchestrator.plugins.manager import PluginState

Severity = Literal["problem", "warning"]

# failure kind -> what the doctor calls it
_PROBLEMS = {
    "import": "failed to load",
    "register": "failed to load",
    "hook": "raised in a hook",
    "api-version": "plugin API version mismatch",
    "duplicate": "name registered twice",
    "unknown-hook": "hook matches no hook",
}


@dataclass(frozen=True)
class Finding:
    severity: Severity
    problem: str  # e.g. "failed to load", "missing components"
    plugin: str  # the plugin (entry point) name
    message: str  # one line
    details: str = ""  # a traceback, for --verbose


def examine(state: PluginState, *, load: bool = False) -> list[Finding]:
    """Every finding about ``state``, problems first."""
    found = [Finding("problem", _PROBLEMS.get(f.kind, f.kind), f.name,
                     f"{f.stage}: {f.error}" if f.kind in ("import", "register", "hook")
                     else f.error, f.details if f.details != f.error else "")
             for f in state.failures]
    for info in state.backends.infos():
        missing = info.missing()
        if missing:
            listing = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in missing.items())
            found.append(Finding("problem", "missing components", info.plugin,
                                 f"backend {info.name!r} lacks {listing}"))
        reason = info.unavailable()
        if reason:
            found.append(Finding("warning", "backend unavailable", info.plugin,
                                 f"backend {info.name!r}: {reason}"))
        elif load:
            found += _load(state, info.name, info.plugin)
    for plugin in state.loaded:
        if plugin.api_version is None:
            found.append(Finding("warning", "no plugin API version", plugin.name, (
                f"{plugin.target} does not state PLUGIN_API_VERSION (this orchestrator "
                f"provides {PLUGIN_API_VERSION!r})")))
    return sorted(found, key=lambda f: f.severity != "problem")


def _load(state: PluginState, name: str, plugin: str) -> list[Finding]:
    import traceback

    try:
        state.backends.backend_class(name)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return [Finding("problem", "backend class fails to load", plugin,
                        f"backend {name!r} ({state.backends.info(name).loader}): {message}",
                        traceback.format_exc())]
    return []
