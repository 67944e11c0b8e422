"""The conformance kit against the installed ``jax`` backend (``pip install -e .`` first)."""

from orchestrator.testing import BackendConformance


class TestJaxBackend(BackendConformance):
    backend_name = "jax"
