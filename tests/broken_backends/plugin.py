"""The plugin registering every deliberately broken backend (entry point ``broken_backends``)."""

from orchestrator.canonical import catalogue
from orchestrator.plugins.hookspecs import hookimpl
from orchestrator.plugins.registry import BackendInfo, BackendRegistry

from broken_backends import BROKEN


@hookimpl
def orchestrator_add_backends(registry: BackendRegistry) -> None:
    for name, (cls, summary) in BROKEN.items():
        registry.add_backend(BackendInfo(
            name=name, loader=f"broken_backends.backends:{cls}",
            components=catalogue.all_names(), distributions=("torch",), summary=summary))
