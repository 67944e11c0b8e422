"""The built-in executors, registered through the ``executors`` entry point like any plugin's:
``local`` (warm worker processes on this machine, the default), ``ray`` (a Ray task per run)
and ``slurm`` (a submitit job per run). Import-light: the classes load when chosen."""

from orchestrator.plugins.hookspecs import hookimpl
from orchestrator.plugins.registry import ExecutorInfo, ExecutorRegistry

PLUGIN_API_VERSION = "1"

_BUILT_IN = (
    ExecutorInfo("local", "orchestrator.orchestration.executors.local:LocalExecutor",
                 summary="warm worker processes on this machine (the default)"),
    ExecutorInfo("ray", "orchestrator.orchestration.executors.ray:RayExecutor",
                 distributions=("ray",),
                 summary="every run a Ray task in a fresh process (extra orchestrator[ray])"),
    ExecutorInfo("slurm", "orchestrator.orchestration.executors.slurm:SlurmExecutor",
                 distributions=("submitit",),
                 summary="every run a Slurm job through submitit (extra orchestrator[slurm])"),
)


@hookimpl
def orchestrator_add_executors(registry: ExecutorRegistry) -> None:
    for info in _BUILT_IN:
        registry.add_executor(info)
