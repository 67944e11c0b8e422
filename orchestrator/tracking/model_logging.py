"""Log a trained model with its framework's MLflow flavour, so ``mlflow.<flavour>.load_model``
gives it back (and ``mlflow.pyfunc.load_model`` predicts with it).

The flavour and its options are backend attributes (``Backend.mlflow_flavor``,
``Backend.mlflow_options``); backends themselves never import MLflow. A backend without a
flavour (``mlflow_flavor = None``) gets a generic pyfunc model instead: the canonical weights and
the model spec, predicted by the NumPy reference (``orchestrator.tracking.canonical_model``), so
it loads and predicts without the backend installed. Pip requirements are given explicitly:
MLflow's inference of them imports the model in a subprocess and costs many seconds per run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.contract.backend import Backend
from orchestrator.contract.model import BackendModel
from orchestrator.tracking.interrupts import shielded


def log_model(uri: str, run_id: str, backend: Backend, model: BackendModel,
              example: np.ndarray, *, name: str = "model", step: int = 0) -> str:
    """Log ``model`` as an MLflow LoggedModel called ``name`` (the runs name it after
    experiment, variant and backend) and finish the run (MLflow's model logging needs the run
    active, and leaving the active-run context ends it as FINISHED: call this last). The run's
    metrics at ``step`` (the last epoch's and the evaluation's) are linked to the model, so the
    UI's model page shows them; the run's tag ``orchestrator.model_uri`` says where the model
    is (``models:/<model id>``). Returns the flavour used: the backend's, or
    ``"python_function"`` for the generic canonical pyfunc of a backend without one."""
    import importlib
    import tempfile
    import warnings

    import mlflow

    flavor = backend.mlflow_flavor
    mlflow.set_tracking_uri(uri)
    predictions = model.predict(example)
    with warnings.catch_warnings():  # hints about integer columns; our inputs are exact
        warnings.simplefilter("ignore", UserWarning)
        signature = mlflow.models.infer_signature(example, predictions)
    with shielded(), tempfile.TemporaryDirectory() as folder:  # a stop waits for the store
        _log_example(uri, run_id, example, predictions)
        with mlflow.start_run(run_id=run_id), warnings.catch_warnings(), \
                _quiet(f"mlflow.{flavor or 'pyfunc'}"):
            warnings.simplefilter("ignore", UserWarning)
            if flavor is None:
                from orchestrator.tracking import canonical_model

                data = canonical_model.save(Path(folder) / "canonical", model.spec,
                                            model.get_weights())
                info = mlflow.pyfunc.log_model(
                    name=name, loader_module=canonical_model.__name__, data_path=str(data),
                    signature=signature, pip_requirements=[f"numpy=={np.__version__}"],
                    step=step)
            else:
                flavor_module: Any = importlib.import_module(f"mlflow.{flavor}")
                requirements = [f"{package}=={version}" for package, version in
                                backend.framework_versions().items()]
                info = flavor_module.log_model(model.native, name=name, signature=signature,
                                               pip_requirements=requirements, step=step,
                                               **dict(backend.mlflow_options))
            mlflow.set_tag(MODEL_URI_TAG, f"models:/{info.model_id}")
    return flavor or "python_function"


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Only errors from ``logger_name`` (MLflow's pytorch flavour warns on every pickled model,
    which is the torch backend's deliberate choice: see its ``mlflow_options``)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _log_example(uri: str, run_id: str, example: np.ndarray, predictions: np.ndarray) -> None:
    """Inputs and the model's outputs before logging, so that a reload can be checked."""
    import tempfile

    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / EXAMPLE_FILE
        np.savez(path, x=example, y=predictions)
        MlflowClient(uri).log_artifact(run_id, str(path))


EXAMPLE_FILE = "model_example.npz"
MODEL_URI_TAG = "orchestrator.model_uri"

