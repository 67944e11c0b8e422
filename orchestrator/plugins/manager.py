"""The pluggy plugin manager: entry-point discovery, failure isolation and the backend registry."""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any

import pluggy

from orchestrator.plugins import hookspecs
from orchestrator.plugins.registry import BackendRegistry, TaskRegistry

ENTRY_POINT_GROUP = "orchestrator"
DISABLE_AUTOLOAD_ENV = "ORCHESTRATOR_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV = "ORCHESTRATOR_BLOCK_PLUGINS"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or registered, and why."""

    name: str
    target: str  # entry point value, e.g. "mypkg.plugin"
    stage: str  # "import" or the hook that raised
    error: str  # one line: exception type and message
    details: str  # full traceback, for --verbose


@dataclass(frozen=True)
class PluginState:
    manager: pluggy.PluginManager
    backends: BackendRegistry
    tasks: TaskRegistry
    failures: tuple[PluginFailure, ...]
    loaded: tuple[tuple[str, str, str | None], ...]  # (name, target, distribution version)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _blocked() -> set[str]:
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


def _failure(name: str, target: str, stage: str, exc: BaseException) -> PluginFailure:
    message = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return PluginFailure(name, target, stage, message, traceback.format_exc())


def build(*, autoload: bool | None = None, extra_plugins: tuple[tuple[str, Any], ...] = ()
          ) -> PluginState:
    """Load plugins and collect their registrations. Never raises for a faulty plugin.

    ``autoload`` defaults to on unless ``ORCHESTRATOR_DISABLE_PLUGIN_AUTOLOAD`` is set.
    ``extra_plugins`` are ``(name, plugin object)`` pairs registered directly (tests, embedding).
    """
    if autoload is None:
        autoload = not _env_flag(DISABLE_AUTOLOAD_ENV)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    failures: list[PluginFailure] = []
    loaded: list[tuple[str, str, str | None]] = []
    plugins: list[tuple[str, str, Any]] = []
    if autoload:
        blocked = _blocked()
        seen: set[str] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or ep.name in seen:
                continue  # the same distribution can be visible twice on sys.path
            seen.add(ep.name)
            try:
                plugins.append((ep.name, ep.value, ep.load()))
                loaded.append((ep.name, ep.value, ep.dist.version if ep.dist else None))
            except Exception as exc:  # a broken plugin must not take the others down
                failures.append(_failure(ep.name, ep.value, "import", exc))
    plugins.extend((name, repr(obj), obj) for name, obj in extra_plugins)
    for name, _target, obj in plugins:
        try:
            pm.register(obj, name=name)
        except Exception as exc:
            failures.append(_failure(name, _target, "register", exc))

    backend_registry = BackendRegistry()
    _call_each(pm, "orchestrator_add_backends", {"registry": backend_registry},
               backend_registry, failures)
    task_registry = TaskRegistry()
    _call_each(pm, "orchestrator_add_tasks", {"registry": task_registry}, task_registry, failures)
    return PluginState(pm, backend_registry, task_registry, tuple(failures), tuple(loaded))


def _call_each(pm: pluggy.PluginManager, hook_name: str, kwargs: dict[str, Any],
               registry: BackendRegistry | TaskRegistry, failures: list[PluginFailure]) -> None:
    """Call a registration hook plugin by plugin, so that one raising is reported and skipped."""
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():  # in registration order
        registry._current_plugin = impl.plugin_name
        try:
            impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except Exception as exc:
            failures.append(_failure(impl.plugin_name, "", hook_name, exc))
        finally:
            registry._current_plugin = ""


@lru_cache(maxsize=1)
def state() -> PluginState:
    """The process-wide plugin state (built once)."""
    return build()


def backends() -> BackendRegistry:
    return state().backends


def tasks() -> TaskRegistry:
    return state().tasks


def reset() -> None:
    """Forget the cached plugin state (tests that install plugins at run time)."""
    state.cache_clear()
