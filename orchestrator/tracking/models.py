"""Log a trained model with its framework's MLflow flavour, so ``mlflow.<flavour>.load_model``
gives it back.

The flavour is a backend attribute (``Backend.mlflow_flavor``); backends themselves never import
MLflow. Pip requirements are given explicitly: MLflow's inference of them imports the model in a
subprocess and costs many seconds per run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from orchestrator.backend import Backend, BackendModel


def log_model(uri: str, run_id: str, backend: Backend, model: BackendModel,
              example: np.ndarray) -> str | None:
    """Log ``model`` under the run's ``model`` artifact path and finish the run (MLflow's model
    logging needs the run active, and leaving the active-run context ends it as FINISHED: call
    this last). Returns the flavour used, or None when the backend has none."""
    import importlib
    import warnings

    import mlflow

    flavor = getattr(backend, "mlflow_flavor", None)
    if flavor is None:
        return None
    mlflow.set_tracking_uri(uri)
    flavor_module: Any = importlib.import_module(f"mlflow.{flavor}")
    requirements = [f"{name}=={version}" for name, version in
                    backend.framework_versions().items()]
    with warnings.catch_warnings():  # hints about integer columns; our inputs are exact
        warnings.simplefilter("ignore", UserWarning)
        signature = mlflow.models.infer_signature(example, model.predict(example))
    with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        flavor_module.log_model(model.native, name="model", signature=signature, pip_requirements=requirements)
    return flavor
