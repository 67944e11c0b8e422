"""The typed registry that plugins push backends into, and lazy loading of backend classes."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING

from orchestrator.canonical import catalogue

if TYPE_CHECKING:
    from orchestrator.contract.backend import Backend, Resources
    from orchestrator.contract.task import Task


class RegistryError(ValueError):
    """An unknown, duplicate or malformed registration, or an unavailable backend."""


class DuplicateError(RegistryError):
    """A backend or task name that another plugin registered first."""


class DuplicateComponent(DuplicateError):
    """A component name that the catalogue already defines."""


@dataclass(frozen=True)
class BackendInfo:
    """What a plugin declares about one backend, without importing its framework.

    ``loader`` is ``"module:Class"`` naming a subclass of ``orchestrator.contract.backend.Backend``.
    ``components`` maps each kind of ``orchestrator.canonical.catalogue.KINDS`` to the canonical names the
    backend implements. ``distributions`` are the framework packages whose installed versions
    ``orchestrator plugins`` shows; ``alternatives`` names, per distribution, the other names
    the same framework ships under (CPU-only or platform builds: ``{"tensorflow":
    ("tensorflow-cpu", ...)}``), tried in order when the distribution itself is not installed.
    """

    name: str
    loader: str
    components: Mapping[str, tuple[str, ...]]
    distributions: tuple[str, ...] = ()
    summary: str = ""
    alternatives: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    plugin: str = field(default="", compare=False)  # set by the registry: who registered it

    def provides(self, kind: str, name: str) -> bool:
        return name in self.components.get(kind, ())

    def missing(self) -> dict[str, tuple[str, ...]]:
        """The lecture's components this backend does not declare, by kind (components that
        plugins add are optional)."""
        out = {}
        for kind, names in catalogue.core_names().items():
            absent = tuple(n for n in names if n not in self.components.get(kind, ()))
            if absent:
                out[kind] = absent
        return out

    def unavailable(self) -> str | None:
        """Why this backend cannot be used here (its framework is not installed), or None.

        Read from package metadata, like ``versions``: a backend is listed (and its plugin
        checked) whether or not its framework is installed, and fails only when it is used.
        """
        absent = [dist for dist, version in self.versions().items() if version is None]
        if not absent:
            return None
        return (f"{' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed "
                f"(pip install {' '.join(absent)})")

    def versions(self) -> dict[str, str | None]:
        """Installed versions of ``distributions`` (None where not installed), read from package
        metadata so that no framework is imported."""
        found: dict[str, str | None] = {}
        for dist in self.distributions:
            try:
                found[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                found[dist] = _first_installed(tuple(self.alternatives.get(dist, ())))
        return found


def _first_installed(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


class BackendRegistry:
    """Backends by name. Plugins call ``add_backend`` from ``orchestrator_add_backends``."""

    def __init__(self) -> None:
        self._infos: dict[str, BackendInfo] = {}
        self._current_plugin = ""
        # backend -> (kind, name) -> "module:attr" of a component table entry a plugin adds
        self._implementations: dict[str, dict[tuple[str, str], str]] = {}

    def add_backend(self, info: BackendInfo) -> None:
        if not isinstance(info, BackendInfo):
            raise RegistryError(f"add_backend expects a BackendInfo, got {type(info).__name__}")
        if info.name in self._infos:
            other = self._infos[info.name].plugin or "another plugin"
            raise DuplicateError(f"backend {info.name!r} is already registered by {other}")
        if ":" not in info.loader:
            raise RegistryError(f"backend {info.name!r}: loader must be 'module:Class', "
                                f"got {info.loader!r}")
        for kind, names in info.components.items():
            for name in names:
                catalogue.get(kind, name)  # rejects unknown kinds and names
        object.__setattr__(info, "plugin", self._current_plugin)
        self._infos[info.name] = info

    def names(self) -> tuple[str, ...]:
        return tuple(self._infos)

    def infos(self) -> tuple[BackendInfo, ...]:
        return tuple(self._infos.values())

    def available_names(self) -> tuple[str, ...]:
        """The backends whose frameworks are installed: what an experiment runs on by default."""
        return tuple(info.name for info in self._infos.values() if info.unavailable() is None)

    def check_available(self, name: str) -> BackendInfo:
        """The backend's info; a RegistryError (one line) if it is unknown or unavailable."""
        info = self.info(name)
        reason = info.unavailable()
        if reason:
            raise RegistryError(f"backend {name!r} is unavailable: {reason}")
        return info

    def info(self, name: str) -> BackendInfo:
        try:
            return self._infos[name]
        except KeyError:
            message = catalogue.unknown_message("backend", name, self.names())
            if catalogue.closest(name, self.names()) is None:  # not a typo: a missing plugin
                message += (f"; no installed plugin provides {name!r} (install its package; "
                            "`orchestrator plugins` lists the installed ones)")
            raise RegistryError(message) from None

    def backend_class(self, name: str) -> type[Backend]:
        """Import and return the backend's class (this imports its framework)."""
        from orchestrator.contract.backend import Backend

        module_name, _, attr = self.check_available(name).loader.partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise RegistryError(f"backend {name!r}: {self.info(name).loader} is not a Backend")
        self._add_implementations(name, cls)
        return cls

    def add_implementation(self, backend: str, kind: str, name: str, loader: str) -> bool:
        """Give the registered ``backend`` the component ``kind``/``name`` (see
        ``ComponentRegistry.add_implementation``); False if no such backend is registered."""
        catalogue.get(kind, name)  # a known component (the lecture's or a plugin's)
        if ":" not in loader:
            raise RegistryError(f"{kind} {name!r} for backend {backend!r}: loader must be "
                                f"'module:attribute', got {loader!r}")
        info = self._infos.get(backend)
        if info is None:
            return False
        self._implementations.setdefault(backend, {})[(kind, name)] = loader
        if not info.provides(kind, name):
            components = {k: tuple(v) for k, v in info.components.items()}
            components[kind] = (*components.get(kind, ()), name)
            object.__setattr__(info, "components", components)
        return True

    def _add_implementations(self, backend: str, cls: type[Backend]) -> None:
        """Put the entries plugins added for ``backend`` into its class's component tables (a
        copy of each table: the class's own mapping is never mutated in place)."""
        from orchestrator.contract.backend import TABLES

        for (kind, name), loader in self._implementations.get(backend, {}).items():
            table = getattr(cls, TABLES[kind])
            if name in table:
                continue
            module_name, _, attr = loader.partition(":")
            entry = getattr(importlib.import_module(module_name), attr)
            setattr(cls, TABLES[kind], {**table, name: entry})

    def load(self, name: str, resources: Resources | None = None) -> Backend:
        """An instance of the named backend, given its share of the machine."""
        return self.backend_class(name)(resources)


class ComponentRegistry:
    """Components added by plugins, and their implementations for registered backends.
    Plugins call ``add_component`` and ``add_implementation`` from ``orchestrator_add_components``
    (called after every plugin's ``orchestrator_add_backends``)."""

    def __init__(self, backends: BackendRegistry) -> None:
        self._backends = backends
        self._current_plugin = ""
        self.added: list[catalogue.ComponentDef] = []

    def add_component(self, definition: catalogue.ComponentDef) -> None:
        """A new catalogue entry (``orchestrator.catalogue.ComponentDef``: kind, canonical
        name, summary, formula, hyperparameters, target kind, and ``reference``, its NumPy
        formula, which the conformance kit checks every implementation against)."""
        try:
            self.added.append(catalogue.register(definition, self._current_plugin))
        except catalogue.DuplicateComponentError as exc:
            raise DuplicateComponent(str(exc)) from None

    def add_implementation(self, backend: str, kind: str, name: str, loader: str) -> None:
        """``loader`` ("module:attribute", imported when the backend is loaded) is the entry of
        ``backend``'s component table for ``kind``/``name`` (for a loss: a builder ``spec ->
        (y_true, y_pred) -> mean loss`` in the backend's framework). The backend then declares
        the component. A backend that is not registered (its plugin not installed) is skipped."""
        self._backends.add_implementation(backend, kind, name, loader)


class TaskRegistry:
    """Task classes by name. Plugins call ``add_task`` from ``orchestrator_add_tasks``.

    Task classes live in import-light modules (no framework import), so validation can read
    their option schemas.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, type[Task]] = {}
        self._plugins: dict[str, str] = {}
        self._current_plugin = ""

    def add_task(self, task: type[Task]) -> None:
        from orchestrator.contract.task import Task

        if not (isinstance(task, type) and issubclass(task, Task)):
            raise RegistryError(f"add_task expects a Task subclass, got {task!r}")
        if task.name in self._tasks:
            raise DuplicateError(f"task {task.name!r} is already registered by "
                                f"{self._plugins[task.name] or 'another plugin'}")
        self._tasks[task.name] = task
        self._plugins[task.name] = self._current_plugin

    def names(self) -> tuple[str, ...]:
        return tuple(self._tasks)

    def plugin(self, name: str) -> str:
        return self._plugins[name]

    def get(self, name: str) -> type[Task]:
        try:
            return self._tasks[name]
        except KeyError:
            raise RegistryError(catalogue.unknown_message("task", name, self.names())) from None


@dataclass(frozen=True)
class ExecutorInfo:
    """What a plugin declares about one executor, without importing it.

    ``loader`` is ``"module:Class"`` naming a subclass of
    ``orchestrator.orchestration.executors.base.Executor``; ``distributions`` are the packages it
    needs (``ray``, ``submitit``), whose installed versions ``orchestrator plugins`` shows.
    """

    name: str
    loader: str
    distributions: tuple[str, ...] = ()
    summary: str = ""
    plugin: str = field(default="", compare=False)

    def versions(self) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for dist in self.distributions:
            try:
                found[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                found[dist] = None
        return found


class ExecutorRegistry:
    """Executors by name. Plugins call ``add_executor`` from ``orchestrator_add_executors``."""

    def __init__(self) -> None:
        self._infos: dict[str, ExecutorInfo] = {}
        self._current_plugin = ""

    def add_executor(self, info: ExecutorInfo) -> None:
        if not isinstance(info, ExecutorInfo):
            raise RegistryError(f"add_executor expects an ExecutorInfo, got "
                                f"{type(info).__name__}")
        if info.name in self._infos:
            other = self._infos[info.name].plugin or "another plugin"
            raise DuplicateError(f"executor {info.name!r} is already registered by {other}")
        if ":" not in info.loader:
            raise RegistryError(f"executor {info.name!r}: loader must be 'module:Class', "
                                f"got {info.loader!r}")
        object.__setattr__(info, "plugin", self._current_plugin)
        self._infos[info.name] = info

    def names(self) -> tuple[str, ...]:
        return tuple(self._infos)

    def infos(self) -> tuple[ExecutorInfo, ...]:
        return tuple(self._infos.values())

    def info(self, name: str) -> ExecutorInfo:
        try:
            return self._infos[name]
        except KeyError:
            raise RegistryError(catalogue.unknown_message("executor", name, self.names())
                                ) from None

    def executor_class(self, name: str) -> type:
        """Import and return the executor's class."""
        module_name, _, attr = self.info(name).loader.partition(":")
        return getattr(importlib.import_module(module_name), attr)
