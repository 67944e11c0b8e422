"""The built-in PyTorch backend plugin (entry module: import-light, no torch import here)."""

from orchestrator.canonical import catalogue
from orchestrator.plugins.hookspecs import hookimpl
from orchestrator.plugins.registry import BackendInfo, BackendRegistry

PLUGIN_API_VERSION = "1"


@hookimpl
def orchestrator_add_backends(registry: BackendRegistry) -> None:
    registry.add_backend(BackendInfo(
        name="torch",
        loader="orchestrator_torch.backend:TorchBackend",
        components=catalogue.core_names(),
        distributions=("torch",),
        summary="PyTorch: fused nn.LSTM/nn.RNN kernels, foreach optimizer updates",
    ))
