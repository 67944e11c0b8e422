"""Hook specifications: the extension manual of the orchestrator.

A plugin is any importable object (usually a module) exposing functions decorated with
``orchestrator.hookimpl`` whose names match the hooks below, and stating the plugin API version
it was written for. A third-party plugin is found through the ``orchestrator`` entry-point group
of an installed distribution::

    # pyproject.toml of a third-party package
    [project.entry-points.orchestrator]
    mybackend = "mybackend_plugin"

    # mybackend_plugin/__init__.py
    PLUGIN_API_VERSION = "1"   # the orchestrator.PLUGIN_API_VERSION this plugin was written for

The built-in plugins (``tasks``, ``torch``, ``tensorflow``, ``executors``) use the same hooks, but the plugin
manager registers them itself, as pytest does with its default plugins: anything they can do, a
third-party plugin can do.

The plugin API version (``PLUGIN_API_VERSION`` below, also ``orchestrator.PLUGIN_API_VERSION``)
names the contract between the core and its plugins: these hooks, the registries, the classes of
``orchestrator.__all__`` and ``orchestrator.testing``. It changes only when that contract changes
incompatibly (a hook argument removed, a contract method's meaning changed). A plugin states the
version it was written for as a module attribute ``PLUGIN_API_VERSION`` (a string) of its entry
module. A plugin stating another version is not registered, and is reported as failed by
``orchestrator plugins`` and ``orchestrator plugins doctor``; a plugin stating none is loaded,
and ``plugins doctor`` warns about it.

Rules that keep the tool fast and robust:

- The entry module must be import-light: no framework import at module level. ``orchestrator
  plugins``, ``--help`` and config validation load every plugin, and must stay instant. Point
  ``BackendInfo.loader`` at the module holding the heavy code; it is imported only when the backend
  is used. A backend whose framework (``BackendInfo.distributions``) is not installed is listed
  as unavailable and fails only when an experiment names it.
- A plugin that fails to import or raises in a registration hook is reported (``orchestrator
  plugins`` shows it) and skipped; the other plugins still load.
- A function named ``orchestrator_*`` that matches no hook below (a misspelling such as
  ``orchestrator_add_backend``), or that is not marked ``@hookimpl``, would never be called: it
  is reported as a failure of its plugin (pytest's ``check_pending``), not silently ignored.
- ``orchestrator plugins doctor`` reports every problem above and exits 1 if there is one;
  ``orchestrator plugins check NAME`` runs the conformance kit against an installed backend.
- Setting ``ORCHESTRATOR_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points (the third-party plugins;
  the built-ins stay); ``ORCHESTRATOR_BLOCK_PLUGINS=a,b`` skips the named plugins, built-in or not.

Hook arguments may be added in later versions, never removed; an implementation may accept any
subset of a hook's arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from orchestrator.plugins.registry import (BackendRegistry, ComponentRegistry,
                                               ExecutorRegistry, TaskRegistry)

PROJECT = "orchestrator"
PLUGIN_API_VERSION = "1"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def orchestrator_add_backends(registry: BackendRegistry) -> None:
    """Register the backends this plugin provides.

    Called once per plugin manager. Push one ``orchestrator.BackendInfo`` per backend::

        @hookimpl
        def orchestrator_add_backends(registry):
            registry.add_backend(BackendInfo(
                name="mybackend",
                loader="mybackend_plugin.backend:MyBackend",  # a Backend subclass, loaded lazily
                distributions=("myframework",),  # versions shown by `plugins`; if one is not
                                                 # installed, the backend is unavailable
                components={"loss": ("binary_crossentropy",), "optimizer": ("sgd", "adam"),
                            "norm": ("none", "batch"), "recurrent": ("lstm",)},
                summary="My framework",
            ))

    ``components`` declares, by canonical name (``orchestrator.canonical.catalogue``), what the
    backend implements; configs naming anything else are rejected before a run starts, and
    ``orchestrator plugins doctor`` reports a backend that lacks any canonical component. The
    backend class must implement ``orchestrator.Backend``; test it by subclassing the conformance
    kit in ``orchestrator.testing``, or with ``orchestrator plugins check NAME``.

    A name already registered by another plugin is an error reported against this plugin.
    """


@hookspec
def orchestrator_add_components(registry: ComponentRegistry) -> None:
    """Add components to the canonical catalogue, and implementations of them to backends.

    Called once per plugin manager, after every plugin's ``orchestrator_add_backends``. A new
    component is a ``orchestrator.catalogue.ComponentDef``: its canonical meaning (kind, name,
    summary, one-line formula, hyperparameters with their defaults), its target kind (losses:
    what ``y_true`` holds, one of ``catalogue.TARGETS``) and ``reference``, the formula in
    float64 NumPy, against which ``orchestrator plugins check`` and the conformance kit hold
    every backend that implements it. Only losses can be added (the kit checks them
    generically: probabilities and logits, sequences, a batch of one, each of ``examples``)::

        @hookimpl
        def orchestrator_add_components(registry):
            from orchestrator import catalogue
            from my_plugin.reference import smoothed_cce  # NumPy only: no framework here

            registry.add_component(catalogue.ComponentDef(
                "loss", "label_smoothing", "categorical cross entropy, smoothed targets",
                "-sum_i ((1 - s) y_i + s / K) log p_i",
                (catalogue.Param("smoothing", 0.1, "s", float, lambda v: 0 <= v < 1, "[0, 1)"),),
                target="one_hot", reference=smoothed_cce))
            registry.add_implementation("torch", "loss", "label_smoothing",
                                        "my_plugin.torch_loss:build")

    ``add_implementation(backend, kind, name, loader)`` names the entry of ``backend``'s
    component table (``"module:attribute"``, imported when the backend is loaded; for a loss, a
    builder ``spec -> (y_true, y_pred) -> mean loss`` on framework arrays); the backend then
    declares the component, and experiments may name it on that backend. It may also give a
    backend a component of the lecture it lacks. A backend that is not registered is skipped
    (its plugin is not installed). A plugin's components are optional: ``plugins doctor``
    does not count them missing on backends without them.

    A name (or alias) that another plugin or the lecture's catalogue defines is an error
    reported against this plugin.
    """


@hookspec
def orchestrator_add_tasks(registry: TaskRegistry) -> None:
    """Register the tasks (kinds of experiment) this plugin provides.

    Push ``orchestrator.Task`` subclasses::

        @hookimpl
        def orchestrator_add_tasks(registry):
            registry.add_task(MyTask)

    The class is imported with the plugin, so its module must not import a framework. An
    experiment YAML selects it with ``task: <MyTask.name>``; its ``DataOptions`` and
    ``ModelOptions`` validate the ``data:`` and ``model:`` sections. The built-in tasks
    (``orchestrator/tasks/``) are registered through this hook by the built-in ``tasks`` plugin.

    A task name already registered by another plugin is an error reported against this plugin.
    """


@hookspec
def orchestrator_add_executors(registry: ExecutorRegistry) -> None:
    """Register executors: where the planned runs and tuning workers of an invocation run.

    Push one ``orchestrator.plugins.registry.ExecutorInfo`` per executor::

        @hookimpl
        def orchestrator_add_executors(registry):
            registry.add_executor(ExecutorInfo(
                name="mycluster",
                loader="mycluster_plugin.executor:MyClusterExecutor",  # imported when chosen
                distributions=("mycluster-client",),                   # shown by `plugins`
                summary="runs on My Cluster",
            ))

    The class implements ``orchestrator.orchestration.executors.base.Executor``: ``check``
    (refuse, with one line, what cannot work: an unreachable cluster, resources no node has, a
    tracking store the nodes cannot share), ``run_plan`` (every planned run exactly once, each
    outcome truthful: FINISHED, FAILED with its error, KILLED) and ``run_workers`` (N tuning
    workers that pull trials from a shared Optuna storage). ``orchestrator run --executor NAME``
    or ``executor:`` in an experiment file chooses one; ``local`` (worker processes on this
    machine) is the default. The built-in ``local``, ``ray`` and ``slurm`` executors register
    through this hook (the built-in ``executors`` plugin).
    """
