"""The built-in tasks, registered through the ``tasks`` entry point like any plugin's.

Each module defines one ``Task`` (import-light: no framework import at module level).
"""

from orchestrator.hookspecs import hookimpl
from orchestrator.registry import TaskRegistry


@hookimpl
def orchestrator_add_tasks(registry: TaskRegistry) -> None:
    from orchestrator.tasks.digits import DigitsTask
    from orchestrator.tasks.embedding import EmbeddingTask
    from orchestrator.tasks.imbalanced import ImbalancedTask

    for task in (DigitsTask, ImbalancedTask, EmbeddingTask):
        registry.add_task(task)
