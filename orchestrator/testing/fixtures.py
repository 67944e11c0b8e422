"""The fixtures every conformance class shares: the backend under test and its declaration.

``backend`` calls the classmethod ``create_backend``: override that (a plain classmethod, no
pytest decorator) to construct your backend differently, e.g. on a device::

    class TestMyBackendOnGPU(BackendConformance):
        backend_name = "mybackend"

        @classmethod
        def create_backend(cls, info):
            return MyBackend(Resources(device="cuda:0"))

Overriding the ``backend`` fixture itself also works, declared as the kit declares it:
``@pytest.fixture(scope="class")`` above ``@classmethod``. A class-scoped fixture written as an
instance method (``def backend(self)``) is deprecated by pytest (``PytestRemovedIn10Warning``):
the fixture runs once per class but every test gets a new instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest

from orchestrator.contract.backend import Backend
from orchestrator.plugins.registry import BackendInfo


class BackendFixtures:
    """``info`` (the registered ``BackendInfo`` of ``backend_name``) and ``backend``."""

    backend_name: ClassVar[str]
    required_components: ClassVar[Mapping[str, tuple[str, ...]] | None] = None  # None: all

    @classmethod
    def create_backend(cls, info: BackendInfo) -> Backend:
        """The backend under test; default: the registry's, with default resources."""
        from orchestrator.plugins import manager as plugin_manager

        return plugin_manager.backends().load(info.name)

    @pytest.fixture(scope="class")
    @classmethod
    def info(cls) -> BackendInfo:
        from orchestrator.plugins import manager as plugin_manager

        return plugin_manager.backends().info(cls.backend_name)

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls, info: BackendInfo) -> Backend:
        return cls.create_backend(info)

    @staticmethod
    def require(info: BackendInfo, kind: str, name: str) -> None:
        if not info.provides(kind, name):
            pytest.skip(f"backend {info.name!r} does not declare {kind} {name!r}")
