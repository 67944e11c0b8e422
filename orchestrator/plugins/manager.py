"""The pluggy plugin manager: built-in and entry-point plugins, failure isolation, registries.

As pytest does with its default plugins, the built-in plugins (the tasks, the torch and
tensorflow backends and the executors, whose entry modules import no framework) are registered by the manager
itself; the ``orchestrator`` entry-point group is for third-party plugins only. So
``ORCHESTRATOR_DISABLE_PLUGIN_AUTOLOAD=1`` disables the third-party plugins and keeps the
built-ins, and ``ORCHESTRATOR_BLOCK_PLUGINS=a,b`` blocks plugins (built-in or not) by name.

Every problem with a plugin becomes a ``PluginFailure`` (never an exception): it failed to
import, was written for another plugin API version, could not be registered, raised in a hook,
registered a name another plugin registered first, or implements a hook that does not exist.
"""

from __future__ import annotations

import importlib
import inspect
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from typing import Any, Literal

import pluggy

from orchestrator.canonical import catalogue
from orchestrator.plugins import hookspecs
from orchestrator.plugins.registry import (BackendRegistry, ComponentRegistry, DuplicateError,
                                           ExecutorRegistry, TaskRegistry)

ENTRY_POINT_GROUP = "orchestrator"
DISABLE_AUTOLOAD_ENV = "ORCHESTRATOR_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV = "ORCHESTRATOR_BLOCK_PLUGINS"
# (name, import-light module): registered directly, before any entry point.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("tasks", "orchestrator.tasks"),
    ("torch", "orchestrator_torch"),
    ("tensorflow", "orchestrator_tensorflow"),
    ("executors", "orchestrator.orchestration.executors"),
)

FailureKind = Literal["import", "api-version", "register", "hook", "duplicate", "unknown-hook"]


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or registered, or misbehaved, and why."""

    name: str
    target: str  # entry point value, e.g. "mypkg.plugin"
    stage: str  # "entry point", "import", "api-version", "register", "check" or a hook's name
    error: str  # one line: exception type and message
    details: str  # full traceback, for --verbose
    kind: FailureKind = "import"


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin that was imported: built-in or found through an entry point."""

    name: str
    target: str  # module (or object) it was loaded from
    version: str | None  # its distribution's version (the orchestrator's for built-ins)
    builtin: bool
    api_version: str | None  # the PLUGIN_API_VERSION it states; None: it states none


@dataclass(frozen=True)
class PluginState:
    manager: pluggy.PluginManager
    backends: BackendRegistry
    tasks: TaskRegistry
    failures: tuple[PluginFailure, ...]
    loaded: tuple[LoadedPlugin, ...]
    executors: ExecutorRegistry = field(default_factory=ExecutorRegistry)
    components: tuple[catalogue.ComponentDef, ...] = ()  # added by plugins


@dataclass(frozen=True)
class _Candidate:
    name: str
    target: str
    load: Callable[[], Any]
    version: str | None
    builtin: bool


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _blocked() -> set[str]:
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


def _failure(name: str, target: str, stage: str, exc: BaseException | str,
             kind: FailureKind) -> PluginFailure:
    if isinstance(exc, str):
        return PluginFailure(name, target, stage, exc, exc, kind)
    message = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return PluginFailure(name, target, stage, message, traceback.format_exc(), kind)


def _candidates(autoload: bool, failures: list[PluginFailure]) -> list[_Candidate]:
    """The built-ins, then the entry points (each name once; clashes become failures)."""
    from orchestrator import __version__

    blocked = _blocked()
    found = [_Candidate(name, module, lambda module=module: importlib.import_module(module),
                        __version__, True)
             for name, module in BUILTIN_PLUGINS if name not in blocked]
    if not autoload:
        return found
    targets = {name: module for name, module in BUILTIN_PLUGINS}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in blocked:
            continue
        if ep.name in targets:
            # the same distribution visible twice on sys.path, or an install made when the
            # built-ins were still entry points: the same plugin, loaded once
            if targets[ep.name] != ep.value:
                owner = ("the built-in plugin" if ep.name in dict(BUILTIN_PLUGINS)
                         else "another entry point")
                failures.append(_failure(ep.name, ep.value, "entry point", (
                    f"plugin name {ep.name!r} is already taken by {owner} "
                    f"({targets[ep.name]}); rename the entry point"), "duplicate"))
            continue
        targets[ep.name] = ep.value
        found.append(_Candidate(ep.name, ep.value, ep.load,
                                ep.dist.version if ep.dist else None, False))
    return found


def build(*, autoload: bool | None = None, extra_plugins: tuple[tuple[str, Any], ...] = ()
          ) -> PluginState:
    """Load plugins and collect their registrations. Never raises for a faulty plugin.

    ``autoload`` (entry points) defaults to on unless ``ORCHESTRATOR_DISABLE_PLUGIN_AUTOLOAD``
    is set; the built-ins are always registered unless blocked by name.
    ``extra_plugins`` are ``(name, plugin object)`` pairs registered directly (tests, embedding).
    """
    if autoload is None:
        autoload = not _env_flag(DISABLE_AUTOLOAD_ENV)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    failures: list[PluginFailure] = []
    loaded: list[LoadedPlugin] = []
    candidates = _candidates(autoload, failures)
    candidates += [_Candidate(name, repr(obj), lambda obj=obj: obj, None, False)
                   for name, obj in extra_plugins]
    for candidate in candidates:
        try:
            obj = candidate.load()
        except Exception as exc:  # a broken plugin must not take the others down
            failures.append(_failure(candidate.name, candidate.target, "import", exc, "import"))
            continue
        api = getattr(obj, "PLUGIN_API_VERSION", None)
        api = None if api is None else str(api)
        loaded.append(LoadedPlugin(candidate.name, candidate.target, candidate.version,
                                   candidate.builtin, api))
        if api is not None and api != hookspecs.PLUGIN_API_VERSION:
            failures.append(_failure(candidate.name, candidate.target, "api-version", (
                f"written for plugin API version {api}, this orchestrator provides "
                f"{hookspecs.PLUGIN_API_VERSION}: install a version of the plugin made for it"),
                "api-version"))
            continue  # its hooks may expect another contract: not registered
        try:
            pm.register(obj, name=candidate.name)
        except Exception as exc:
            failures.append(_failure(candidate.name, candidate.target, "register", exc,
                                     "register"))
            continue
        failures.extend(_unknown_hooks(pm, candidate.name, candidate.target, obj))

    catalogue.unregister_plugins()  # the catalogue holds the components of this state only
    backend_registry = BackendRegistry()
    _call_each(pm, "orchestrator_add_backends", {"registry": backend_registry},
               backend_registry, failures)
    component_registry = ComponentRegistry(backend_registry)
    _call_each(pm, "orchestrator_add_components", {"registry": component_registry},
               component_registry, failures)
    task_registry = TaskRegistry()
    _call_each(pm, "orchestrator_add_tasks", {"registry": task_registry}, task_registry, failures)
    executor_registry = ExecutorRegistry()
    _call_each(pm, "orchestrator_add_executors", {"registry": executor_registry},
               executor_registry, failures)
    return PluginState(pm, backend_registry, task_registry, tuple(failures), tuple(loaded),
                       executor_registry, tuple(component_registry.added))


def _unknown_hooks(pm: pluggy.PluginManager, name: str, target: str, plugin: Any
                   ) -> list[PluginFailure]:
    """What ``pm.check_pending()`` raises on, one failure per implementation instead of an
    exception at the first: hook implementations matching no hook (a misspelled name), and
    functions named like a hook but not marked ``@hookimpl`` (pluggy never calls them)."""
    hooks = sorted(n for n in vars(pm.hook) if not n.startswith("_")
                   and getattr(pm.hook, n).has_spec())
    found = []
    for attr in sorted(vars(pm.hook)):
        caller = getattr(pm.hook, attr)
        if attr.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not impl.optionalhook:
                hint = catalogue.closest(attr, hooks)
                found.append(_failure(name, target, "check", (
                    f"unknown hook {attr!r}, never called: "
                    + (f"did you mean {hint!r}?" if hint else f"the hooks are {', '.join(hooks)}")
                ), "unknown-hook"))
    for attr in sorted(dir(plugin)):
        if not attr.startswith(f"{hookspecs.PROJECT}_") or pm.parse_hookimpl_opts(plugin, attr):
            continue
        if inspect.isroutine(inspect.getattr_static(plugin, attr, None)):
            found.append(_failure(name, target, "check", (
                f"{attr} is not marked @orchestrator.hookimpl (never called)"), "unknown-hook"))
    return found


def _call_each(pm: pluggy.PluginManager, hook_name: str, kwargs: dict[str, Any],
               registry: BackendRegistry | ComponentRegistry | TaskRegistry | ExecutorRegistry,
               failures: list[PluginFailure]) -> None:
    """Call a registration hook plugin by plugin, so that one raising is reported and skipped."""
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():  # in registration order
        registry._current_plugin = impl.plugin_name
        try:
            impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except DuplicateError as exc:
            failures.append(_failure(impl.plugin_name, "", hook_name, str(exc), "duplicate"))
        except Exception as exc:
            failures.append(_failure(impl.plugin_name, "", hook_name, exc, "hook"))
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


def executors() -> ExecutorRegistry:
    return state().executors


def reset() -> None:
    """Forget the cached plugin state (tests that install plugins at run time)."""
    state.cache_clear()
