"""Hook specifications: the extension manual of the orchestrator.

A plugin is any importable object (usually a module) exposing functions decorated with
``orchestrator.hookimpl`` whose names match the hooks below. It is found through the
``orchestrator`` entry-point group of an installed distribution::

    # pyproject.toml of a third-party package
    [project.entry-points.orchestrator]
    mybackend = "mybackend_plugin"

The built-in ``torch`` and ``tensorflow`` backends are registered in exactly this way (see this
project's own ``pyproject.toml``), so anything they can do, a third-party plugin can do.

Rules that keep the tool fast and robust:

- The entry module must be import-light: no framework import at module level. ``orchestrator
  plugins``, ``--help`` and config validation load every plugin, and must stay instant. Point
  ``BackendInfo.loader`` at the module holding the heavy code; it is imported only when the backend
  is used.
- A plugin that fails to import or raises in a registration hook is reported (``orchestrator
  plugins`` shows it) and skipped; the other plugins still load.
- Setting ``ORCHESTRATOR_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points altogether (tests,
  debugging); ``ORCHESTRATOR_BLOCK_PLUGINS=a,b`` skips the named entry points.

Hook arguments may be added in later versions, never removed; an implementation may accept any
subset of a hook's arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from orchestrator.plugins.registry import BackendRegistry, TaskRegistry

PROJECT = "orchestrator"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def orchestrator_add_backends(registry: BackendRegistry) -> None:
    """Register the backends this plugin provides.

    Called once per plugin manager. Push one ``orchestrator.plugins.registry.BackendInfo`` per backend::

        @hookimpl
        def orchestrator_add_backends(registry):
            registry.add_backend(BackendInfo(
                name="mybackend",
                loader="mybackend_plugin.backend:MyBackend",  # a Backend subclass, loaded lazily
                distributions=("myframework",),                # versions shown by `plugins`
                components={"loss": ("binary_crossentropy",), "optimizer": ("sgd", "adam"),
                            "norm": ("none", "batch"), "recurrent": ("lstm",)},
                summary="My framework",
            ))

    ``components`` declares, by canonical name (``orchestrator.canonical.catalogue``), what the backend
    implements; configs naming anything else are rejected before a run starts. The backend class
    must implement ``orchestrator.contract.backend.Backend``; test it by subclassing the conformance kit in
    ``orchestrator.testing``.

    A name already registered by another plugin is an error reported against this plugin.
    """


@hookspec
def orchestrator_add_tasks(registry: TaskRegistry) -> None:
    """Register the tasks (kinds of experiment) this plugin provides.

    Push ``orchestrator.contract.task.Task`` subclasses::

        @hookimpl
        def orchestrator_add_tasks(registry):
            registry.add_task(MyTask)

    The class is imported with the plugin, so its module must not import a framework. An
    experiment YAML selects it with ``task: <MyTask.name>``; its ``DataOptions`` and
    ``ModelOptions`` validate the ``data:`` and ``model:`` sections. The built-in tasks
    (``orchestrator/tasks/``) are registered through this hook by the ``tasks`` entry point.
    """
