"""A backend without an MLflow flavour still gets its model logged: a generic pyfunc (canonical
weights + model spec) that loads back and predicts with no backend and no framework installed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from orchestrator.canonical import specs
from orchestrator.canonical.initializers import init_weights
from orchestrator.canonical.networks import char_network, normalization_network


@pytest.fixture(scope="module")
def flavorless():
    from orchestrator_torch.backend import TorchBackend

    class FlavorlessBackend(TorchBackend):
        """The torch backend, as a framework MLflow has no flavour for would be."""

        name = "flavorless"
        mlflow_flavor = None

    return FlavorlessBackend()


# Loads the model where torch (and tensorflow) cannot be imported: only the pyfunc path is left.
LOAD = textwrap.dedent("""
    import json, sys
    sys.modules["torch"] = None
    sys.modules["tensorflow"] = None
    import numpy as np
    import mlflow

    mlflow.set_tracking_uri(sys.argv[1])
    model = mlflow.pyfunc.load_model(sys.argv[2])
    x = np.load(sys.argv[3])
    print(json.dumps({"y": np.asarray(model.predict(x)).tolist(),
                      "flavors": sorted(model.metadata.flavors)}))
""")


@pytest.mark.parametrize("spec", [
    normalization_network(8, 3, norm="batch"),
    specs.ModelSpec((5,), char_network(12, 5, embedding_dim=4, units=6).layers,
                    input_dtype="int", name="char"),
], ids=["normalization", "char-lstm"])
def test_model_without_flavor_is_logged_as_a_canonical_pyfunc(tmp_path: Path, flavorless,
                                                               spec: specs.ModelSpec) -> None:
    from mlflow.tracking import MlflowClient

    from orchestrator.tracking.model_logging import log_model
    from orchestrator.tracking.store import ensure_store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_store(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("pyfunc", (tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    rng = np.random.default_rng(0)
    model = flavorless.build_model(spec, init_weights(spec, 3))
    if spec.input_dtype == "int":
        x = rng.integers(0, 12, (4, 5))
    else:
        x = rng.normal(size=(4, 8)).astype(np.float32)
        model.predict(rng.normal(size=(16, 8)), training=True)  # running statistics moved
    assert log_model(uri, run_id, flavorless, model, x) == "python_function"
    assert client.get_run(run_id).info.status == "FINISHED"

    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([sys.executable, "-c", LOAD, uri, f"runs:/{run_id}/model",
                           str(tmp_path / "x.npy")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["flavors"] == ["python_function"]
    np.testing.assert_allclose(np.array(loaded["y"]), model.predict(x), rtol=1e-5, atol=1e-6)
