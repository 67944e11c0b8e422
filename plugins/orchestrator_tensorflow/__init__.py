"""The built-in TensorFlow/Keras 3 backend plugin (entry module: import-light, no tensorflow
import here)."""

from orchestrator.canonical import catalogue
from orchestrator.plugins.hookspecs import hookimpl
from orchestrator.plugins.registry import BackendInfo, BackendRegistry

PLUGIN_API_VERSION = "1"


@hookimpl
def orchestrator_add_backends(registry: BackendRegistry) -> None:
    registry.add_backend(BackendInfo(
        name="tensorflow",
        loader="orchestrator_tensorflow.backend:TensorFlowBackend",
        components=catalogue.core_names(),
        distributions=("tensorflow", "keras"),
        # CPU-only and platform builds ship TensorFlow under other distribution names
        alternatives={"tensorflow": ("tensorflow-cpu", "tensorflow-macos", "tf-nightly")},
        summary="TensorFlow + Keras 3: tf.function training step, canonical losses/optimizers",
    ))
