"""Adds the task ``two_spirals`` (entry module: import-light; the task itself is NumPy only)."""

from orchestrator import hookimpl

PLUGIN_API_VERSION = "1"


@hookimpl
def orchestrator_add_tasks(registry):
    from orchestrator_two_spirals.task import TwoSpiralsTask

    registry.add_task(TwoSpiralsTask)
