"""The built-in tasks: a plugin like any other, registered by the plugin manager itself.

Each module defines one ``Task`` (import-light: no framework import at module level).
"""

from orchestrator.plugins.hookspecs import hookimpl
from orchestrator.plugins.registry import TaskRegistry

PLUGIN_API_VERSION = "1"


@hookimpl
def orchestrator_add_tasks(registry: TaskRegistry) -> None:
    from orchestrator.tasks.digits import DigitsTask
    from orchestrator.tasks.embedding import EmbeddingTask
    from orchestrator.tasks.har import HarTask
    from orchestrator.tasks.imbalanced import ImbalancedTask
    from orchestrator.tasks.text import TextTask
    from orchestrator.tasks.vanishing import VanishingTask

    for task in (DigitsTask, ImbalancedTask, EmbeddingTask, HarTask, TextTask, VanishingTask):
        registry.add_task(task)
