"""The conformance kit: pytest classes that hold any backend to the canonical math.

Usage in a plugin's test suite (see ``conformance`` for what is checked)::

    from orchestrator.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend_name = "mybackend"

The parts can be used one by one too: ``ComponentListTests``, ``WorkedNumberTests``,
``LossTests``, ``TargetTests``, ``LayerTests``, ``DropoutTests``, ``OptimizerTests``,
``ModelTests``. To construct the backend differently, override the classmethod
``create_backend`` (see ``orchestrator.testing.fixtures``).
"""

from orchestrator.testing.assertions import TOLERANCES, Tolerances, assert_close
from orchestrator.testing.conformance import (
    BackendConformance,
    ComponentListTests,
    DropoutTests,
    LayerTests,
    LossTests,
    ModelTests,
    OptimizerTests,
    TargetTests,
    WorkedNumberTests,
)
from orchestrator.testing.fixtures import BackendFixtures

__all__ = [
    "TOLERANCES", "BackendConformance", "BackendFixtures", "ComponentListTests", "DropoutTests",
    "LayerTests", "LossTests", "ModelTests", "OptimizerTests", "TargetTests", "Tolerances",
    "WorkedNumberTests", "assert_close",
]
