"""An external JAX backend for orchestrator (entry module: import-light, no jax import here).

Installed with ``pip install examples/orchestrator-jax``, it registers the backend ``jax``
through the ``orchestrator`` entry-point group. It uses only the public API
(``orchestrator.__all__``) and JAX; the core knows nothing about it.
"""

from orchestrator import BackendInfo, hookimpl

PLUGIN_API_VERSION = "1"

# The lecture's components, named here rather than taken from ``catalogue.all_names()``: a plugin
# may add components to the catalogue (``orchestrator_add_components``) that this backend does
# not implement. ``orchestrator_jax.backend`` checks its tables against this list.
COMPONENTS = {
    "loss": ("binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
             "binary_focal", "categorical_focal", "triplet"),
    "optimizer": ("gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"),
    "norm": ("none", "batch", "layer"),
    "recurrent": ("rnn", "lstm", "bilstm"),
}


@hookimpl
def orchestrator_add_backends(registry):
    registry.add_backend(BackendInfo(
        name="jax",
        loader="orchestrator_jax.backend:JaxBackend",  # imported only when the backend is used
        components=COMPONENTS,
        distributions=("jax", "jaxlib"),
        summary="JAX (example plugin): jit-compiled step, lax.scan recurrent layers",
    ))
