"""The generic MLflow pyfunc model: canonical weights plus the model spec, predicted in NumPy.

A backend whose framework has no MLflow flavour (``Backend.mlflow_flavor = None``) still gets its
trained model logged: ``save`` writes the canonical weights (``weights.npz``) and the spec
(``spec.json``, ``orchestrator.canonical.serialization``) into a folder that
``mlflow.pyfunc.log_model(loader_module=__name__, data_path=...)`` stores with the run.
``mlflow.pyfunc.load_model`` then calls ``_load_pyfunc`` here, and ``predict`` runs the NumPy
reference forward pass (``orchestrator.canonical.reference``): any spec, in float64, on any
machine where this package is installed, with no backend and no framework. This module imports
no MLflow (MLflow imports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.canonical.serialization import spec_from_json, spec_to_json
from orchestrator.canonical.specs import ModelSpec, check_weights

WEIGHTS_FILE = "weights.npz"
SPEC_FILE = "spec.json"


def save(folder: Path, spec: ModelSpec, weights: Mapping[str, np.ndarray]) -> Path:
    """Write ``spec`` and its canonical ``weights`` (checked) into ``folder``; return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / WEIGHTS_FILE, **check_weights(spec, weights))
    (folder / SPEC_FILE).write_text(spec_to_json(spec))
    return folder


class CanonicalModel:
    """A spec and its weights; ``predict`` is the reference forward pass in evaluation mode."""

    def __init__(self, spec: ModelSpec, weights: Mapping[str, np.ndarray]) -> None:
        self.spec = spec
        self.weights = check_weights(spec, weights)

    @classmethod
    def load(cls, folder: str | Path) -> CanonicalModel:
        folder = Path(folder)
        spec = spec_from_json((folder / SPEC_FILE).read_text())
        with np.load(folder / WEIGHTS_FILE) as arrays:
            return cls(spec, {name: arrays[name] for name in arrays.files})

    def predict(self, model_input: Any, params: Mapping[str, Any] | None = None) -> np.ndarray:
        from orchestrator.canonical.reference import forward

        x = np.asarray(getattr(model_input, "values", model_input))  # a DataFrame's values
        return forward(self.spec, self.weights, x, training=False)[0]


def _load_pyfunc(data_path: str) -> CanonicalModel:
    """MLflow's entry point for a pyfunc model logged with ``loader_module`` = this module."""
    return CanonicalModel.load(data_path)
