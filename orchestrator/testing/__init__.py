"""The conformance kit: pytest classes that hold any backend to the canonical math.

Usage in a plugin's test suite (see ``conformance`` for what is checked)::

    from orchestrator.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend_name = "mybackend"

The parts can be used one by one too: ``ComponentListTests``, ``WorkedNumberTests``,
``LossTests``, ``LayerTests``, ``OptimizerTests``, ``ModelTests``.
"""

from orchestrator.testing.assertions import TOLERANCES, Tolerances, assert_close
from orchestrator.testing.conformance import (
    BackendConformance,
    ComponentListTests,
    LayerTests,
    LossTests,
    ModelTests,
    OptimizerTests,
    WorkedNumberTests,
)

__all__ = [
    "TOLERANCES", "BackendConformance", "ComponentListTests", "LayerTests", "LossTests",
    "ModelTests", "OptimizerTests", "Tolerances", "WorkedNumberTests", "assert_close",
]
