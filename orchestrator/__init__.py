"""Run, tune and compare deep-learning experiments across frameworks.

One canonical meaning per component and hyperparameter (``orchestrator.catalogue``), backends
and tasks as pluggy plugins (``orchestrator.plugins.hookspecs``, the extension manual), a
conformance kit for backends (``orchestrator.testing``).

The public API for plugin authors is ``__all__`` below (and ``orchestrator.testing.__all__``);
every other module is internal and may change without notice. The names are imported lazily,
on first use, so ``import orchestrator`` imports nothing heavy (no NumPy, no framework).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it ("" after the colon: the module itself)
_PUBLIC = {
    # plugin machinery (orchestrator.plugins.hookspecs documents the hooks)
    "PLUGIN_API_VERSION": "orchestrator.plugins.hookspecs:PLUGIN_API_VERSION",
    "hookimpl": "orchestrator.plugins.hookspecs:hookimpl",
    "BackendInfo": "orchestrator.plugins.registry:BackendInfo",
    "BackendRegistry": "orchestrator.plugins.registry:BackendRegistry",
    "TaskRegistry": "orchestrator.plugins.registry:TaskRegistry",
    "ComponentRegistry": "orchestrator.plugins.registry:ComponentRegistry",
    "RegistryError": "orchestrator.plugins.registry:RegistryError",
    # the backend contract
    "Backend": "orchestrator.contract.backend:Backend",
    "BackendModel": "orchestrator.contract.model:BackendModel",
    "TrainingSession": "orchestrator.contract.session:TrainingSession",
    "Optimizer": "orchestrator.contract.optimizer:Optimizer",
    "Resources": "orchestrator.contract.backend:Resources",
    "VJP": "orchestrator.contract.model:VJP",
    # the task contract
    "Task": "orchestrator.contract.task:Task",
    "Options": "orchestrator.contract.task:Options",
    "Split": "orchestrator.contract.task:Split",
    "Prepared": "orchestrator.contract.task:Prepared",
    "Evaluation": "orchestrator.contract.task:Evaluation",
    "DataError": "orchestrator.data.errors:DataError",
    "metrics": "orchestrator.evaluation.metrics:",
    # the canonical math: components, network specs, initial weights
    "catalogue": "orchestrator.canonical.catalogue:",
    "ComponentSpec": "orchestrator.canonical.catalogue:ComponentSpec",
    "ComponentError": "orchestrator.canonical.catalogue:ComponentError",
    "specs": "orchestrator.canonical.specs:",
    "ModelSpec": "orchestrator.canonical.specs:ModelSpec",
    "Dense": "orchestrator.canonical.specs:Dense",
    "Activation": "orchestrator.canonical.specs:Activation",
    "Dropout": "orchestrator.canonical.specs:Dropout",
    "Embedding": "orchestrator.canonical.specs:Embedding",
    "init_weights": "orchestrator.canonical.initializers:init_weights",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    try:
        module_name, _, attr = _PUBLIC[name].partition(":")
    except KeyError:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})

