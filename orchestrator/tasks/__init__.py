"""The built-in tasks, registered through the ``tasks`` entry point like any plugin's.

Each module defines one ``Task`` (import-light: no framework import at module level).
"""

from orchestrator.hookspecs import hookimpl
from orchestrator.registry import TaskRegistry


@hookimpl
def orchestrator_add_tasks(registry: TaskRegistry) -> None:
    from orchestrator.tasks.digits import DigitsTask

    for task in (DigitsTask,):
        registry.add_task(task)
