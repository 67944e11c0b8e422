"""The PyTorch backend against the conformance kit, exactly as a third-party backend would be."""

from orchestrator.testing import BackendConformance


class TestTorchBackend(BackendConformance):
    backend_name = "torch"
