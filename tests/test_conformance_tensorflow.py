"""The TensorFlow backend against the conformance kit, exactly as a third-party backend would be."""

from orchestrator.testing import BackendConformance


class TestTensorFlowBackend(BackendConformance):
    backend_name = "tensorflow"
